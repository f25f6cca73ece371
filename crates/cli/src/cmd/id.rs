//! `welkin id`: KERI identifiers witnessed by the cluster.
//!
//! Each command builds and signs a KERI event with keys from the local keystore, submits it
//! as a `key_event` transaction (the envelope is signed by a fresh throwaway key: the event
//! carries its own signatures), waits for the commit and reports the cluster's verdict.

use crate::{
    cli::{
        IdDelegateArgs, IdExportArgs, IdInceptArgs, IdInteractArgs, IdKelArgs, IdNameArgs,
        IdRecoverArgs, IdShowArgs, IdVerifyArgs, KeystoreArgs,
    },
    output,
};
use anyhow::{Context as _, bail};
use std::time::Duration;
use welkin_client::Client;
use welkin_keri::{
    Digest, EventSeal, InceptionBuilder, Kevery, KeveryConfig, KeyState, Message,
    Outcome as KeveryOutcome, Prefix, RotationBuilder, Signer, Threshold, seal_anchors, sign,
    signed,
};
use welkin_keystore::{Identity, Keystore};
use welkin_node::ceremony::{NodeKey, random_seed};
use welkin_types::{
    Outcome, Payload, Sender, Transaction,
    api::{ExportedEvent, KEL_EXPORT_KIND, KelEvent, KelExport, TxStatus},
};
use zeroize::Zeroizing;

fn passphrase(args: &KeystoreArgs) -> anyhow::Result<Zeroizing<String>> {
    if let Some(path) = &args.passphrase_file {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read passphrase file {}", path.display()))?;
        return Ok(Zeroizing::new(
            text.trim_end_matches(['\r', '\n']).to_string(),
        ));
    }
    match std::env::var("WELKIN_PASSPHRASE") {
        Ok(value) if !value.is_empty() => Ok(Zeroizing::new(value)),
        _ => bail!(
            "the keystore needs a passphrase: set WELKIN_PASSPHRASE or pass --passphrase-file"
        ),
    }
}

pub(crate) fn open_keystore(args: &KeystoreArgs) -> anyhow::Result<Keystore> {
    Ok(Keystore::open_or_create(
        &args.keystore,
        &passphrase(args)?,
    )?)
}

fn signers(seeds: &[[u8; 32]]) -> Vec<Signer> {
    seeds.iter().map(Signer::new).collect()
}

/// Submits a key event message and waits for its verdict; fails with the cluster's reason
/// unless the outcome is one of `expected`.
fn submit_expecting(
    client: &Client,
    message: &Message,
    expected: &[Outcome],
) -> anyhow::Result<TxStatus> {
    let bytes = message
        .to_bytes()
        .map_err(|e| anyhow::anyhow!("cannot encode the event: {e}"))?;
    let cluster_id = super::signing::cluster_id(client)?;
    let submitter = NodeKey::generate(&mut commonware_utils::sys_rng());
    let tx = Transaction {
        sender: Sender::Key(submitter.public_key()),
        nonce: 0,
        expiry_ms: super::now_ms() + 300_000,
        payload: Payload::KeyEvent(bytes),
    }
    .sign(&submitter.signer, &cluster_id);
    let status = client.submit(&tx, Some(Duration::from_secs(30)))?;
    let outcome = status.receipt.map(|r| r.outcome);
    match outcome {
        Some(outcome) if expected.contains(&outcome) => Ok(status),
        Some(other) => bail!(
            "the cluster did not accept the event ({other:?}): {}",
            status.detail.as_deref().unwrap_or("no detail")
        ),
        None => bail!(
            "the event was not committed in time; check later with `welkin tx status {}`",
            status.tx_id
        ),
    }
}

/// Submits a key event message that must be accepted at once.
fn submit(client: &Client, message: &Message) -> anyhow::Result<TxStatus> {
    submit_expecting(client, message, &[Outcome::Applied])
}

fn report(json: bool, verb: &str, name: &str, state: &KeyState) -> anyhow::Result<()> {
    if json {
        return output::json(&serde_json::json!({ "name": name, "state": state }));
    }
    println!("{verb} {name}");
    println!("identifier   {}", state.prefix);
    println!("sequence     {}", state.sn);
    println!("event        {} ({})", state.digest.qb64(), state.ilk);
    Ok(())
}

pub(crate) fn incept(args: IdInceptArgs) -> anyhow::Result<()> {
    let IdInceptArgs {
        id: args,
        delegator,
        witnessed,
    } = args;
    let mut keystore = open_keystore(&args.keystore)?;
    if keystore.get(&args.name).is_ok() {
        bail!(
            "an identity named {:?} is already in {}",
            args.name,
            args.keystore.keystore.display()
        );
    }
    let current = random_seed();
    let next = random_seed();
    let mut builder = InceptionBuilder::new(vec![Signer::new(&current).verkey()]).next(
        vec![Signer::new(&next).verkey().next_digest()],
        Threshold::Simple(1),
    );
    let client = Client::new(&args.api.api);
    if witnessed {
        let pool = client.witnesses()?;
        let witnesses = pool
            .witnesses
            .iter()
            .map(|w| Prefix::from_qb64(w))
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| anyhow::anyhow!("the node listed a bad witness identifier: {e}"))?;
        builder = builder.witnesses(witnesses, u64::from(pool.threshold));
    }
    if let Some(delegator) = &delegator {
        let delegator = Prefix::from_qb64(delegator)
            .map_err(|e| anyhow::anyhow!("--delegator is not an identifier prefix: {e}"))?;
        builder = builder.delegator(delegator);
    }
    let event = builder.build();
    let prefix = event.prefix();
    // Keep the keys before submitting: a crash after the commit must not lose them.
    keystore.insert(
        &args.name,
        Identity {
            prefix: prefix.qb64(),
            current: vec![*current],
            next: vec![*next],
            pending_next: vec![],
            encryption: vec![],
        },
    )?;
    keystore.save()?;
    let signatures = sign(&event, &[Signer::new(&current)]);
    let message = signed(event, signatures);
    if delegator.is_some() {
        let seal = message.event.seal();
        // Committed but waiting in escrow until the delegator anchors it.
        submit_expecting(&client, &message, &[Outcome::Escrowed, Outcome::Applied])?;
        println!(
            "submitted; waiting for the delegator to anchor it: \
             welkin id interact --name <delegator> --anchor {}:{:x}:{}",
            seal.prefix,
            seal.sn,
            seal.said.qb64()
        );
        return Ok(());
    }
    submit(&client, &message)?;
    let state = client.key_state(&prefix.qb64())?;
    report(args.api.json, "incepted", &args.name, &state)
}

/// The seed a rotation will commit to as the next key: a pending one from an interrupted
/// rotation (so retrying is safe), or a fresh one saved as pending before anything is sent.
fn next_commitment(keystore: &mut Keystore, name: &str) -> anyhow::Result<[u8; 32]> {
    let identity = keystore.get(name)?;
    if identity.next.is_empty() {
        bail!("{name} has no pre-committed next keys: it cannot rotate");
    }
    if let Some(pending) = identity.pending_next.first() {
        return Ok(*pending);
    }
    let seed = random_seed();
    keystore.get_mut(name)?.pending_next = vec![*seed];
    keystore.save()?;
    Ok(*seed)
}

/// Rotates `name` from the key state `prior` (the current one, or for a recovery the one
/// before the first superseded interaction) unless `current` shows the rotation already
/// committed, then records the new keys in the keystore.
fn rotate_from(
    client: &Client,
    keystore: &mut Keystore,
    name: &str,
    prior: &KeyState,
    current: &KeyState,
) -> anyhow::Result<()> {
    let after = next_commitment(keystore, name)?;
    let identity = keystore.get(name)?.clone();
    let revealed = signers(&identity.next);
    let revealed_keys: Vec<_> = revealed.iter().map(Signer::verkey).collect();
    let committed = vec![Signer::new(&after).verkey().next_digest()];
    // A rotation committed before a crash kept the keystore from recording it: finish it.
    let already_rotated =
        current.signing.keys == revealed_keys && current.signing.next == committed;
    if !already_rotated {
        let event = RotationBuilder::new(prior, revealed_keys)
            .next(committed, Threshold::Simple(1))
            .build();
        let signatures = sign(&event, &revealed);
        submit(client, &signed(event, signatures))?;
    }
    let stored = keystore.get_mut(name)?;
    stored.current = stored.next.clone();
    stored.next = vec![after];
    stored.pending_next.clear();
    keystore.save()?;
    Ok(())
}

pub(crate) fn rotate(args: IdNameArgs) -> anyhow::Result<()> {
    let mut keystore = open_keystore(&args.keystore)?;
    let prefix = keystore.get(&args.name)?.prefix.clone();
    let client = Client::new(&args.api.api);
    let state = client.key_state(&prefix)?;
    rotate_from(&client, &mut keystore, &args.name, &state, &state)?;
    let state = client.key_state(&prefix)?;
    report(args.api.json, "rotated", &args.name, &state)
}

pub(crate) fn recover(args: IdRecoverArgs) -> anyhow::Result<()> {
    let IdRecoverArgs { id: args, from } = args;
    let mut keystore = open_keystore(&args.keystore)?;
    let prefix = keystore.get(&args.name)?.prefix.clone();
    let client = Client::new(&args.api.api);
    let current = client.key_state(&prefix)?;
    let last_establishment = current.last_establishment_sn;
    // Finishing a recovery whose commit the keystore missed: nothing is left to supersede,
    // and the rotation is the latest establishment event.
    let identity = keystore.get(&args.name)?;
    let revealed: Vec<_> = signers(&identity.next).iter().map(Signer::verkey).collect();
    if current.signing.keys == revealed && !identity.pending_next.is_empty() {
        rotate_from(&client, &mut keystore, &args.name, &current, &current)?;
        return report(args.api.json, "recovered", &args.name, &current);
    }
    let from = from.unwrap_or(last_establishment + 1);
    if from <= last_establishment {
        bail!(
            "a recovery supersedes interactions only: sequence number {from} is at or before              {}'s latest establishment event ({last_establishment})",
            args.name
        );
    }
    if from > current.sn {
        bail!(
            "{} has no interaction at sequence number {from} (its latest event is {}): nothing              to supersede; to rotate, use `welkin id rotate`",
            args.name,
            current.sn
        );
    }
    // The key state after event from-1, rebuilt from the served log by KERI's rules.
    let kel = client.kel_cesr(&prefix)?;
    let mut kevery = Kevery::new(KeveryConfig {
        require_witness_receipts: false,
        ..KeveryConfig::default()
    });
    kevery
        .process_stream(kel.as_bytes())
        .map_err(|e| anyhow::anyhow!("the node served an unreadable key event log: {e}"))?;
    let parsed = Prefix::from_qb64(&prefix)
        .map_err(|e| anyhow::anyhow!("the keystore holds a bad identifier: {e}"))?;
    let prior = kevery
        .log(&parsed)
        .get(usize::try_from(from - 1).unwrap_or(usize::MAX))
        .map(|accepted| accepted.state.clone())
        .ok_or_else(|| anyhow::anyhow!("the served key event log has no event {}", from - 1))?;
    rotate_from(&client, &mut keystore, &args.name, &prior, &current)?;
    let state = client.key_state(&prefix)?;
    report(args.api.json, "recovered", &args.name, &state)
}

fn parse_seal(text: &str) -> anyhow::Result<EventSeal> {
    let usage = || format!("--anchor wants PREFIX:SN:SAID (SN in hex), got {text:?}");
    let mut parts = text.split(':');
    let (Some(prefix), Some(sn), Some(said), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!(usage());
    };
    Ok(EventSeal {
        prefix: Prefix::from_qb64(prefix).map_err(|e| anyhow::anyhow!("{}: {e}", usage()))?,
        sn: u64::from_str_radix(sn, 16).map_err(|e| anyhow::anyhow!("{}: {e}", usage()))?,
        said: Digest::from_qb64(said).map_err(|e| anyhow::anyhow!("{}: {e}", usage()))?,
    })
}

pub(crate) fn interact(args: IdInteractArgs) -> anyhow::Result<()> {
    let seals = args
        .anchors
        .iter()
        .map(|a| parse_seal(a))
        .collect::<anyhow::Result<Vec<_>>>()?;
    anchor(&args.id, &seals, "interacted as")
}

/// Submits an interaction of the named identity anchoring `seals`.
fn anchor(args: &IdNameArgs, seals: &[EventSeal], verb: &str) -> anyhow::Result<()> {
    let keystore = open_keystore(&args.keystore)?;
    let identity = keystore.get(&args.name)?;
    let client = Client::new(&args.api.api);
    let state = client.key_state(&identity.prefix)?;
    let event = welkin_keri::interact(&state, seal_anchors(seals));
    let signatures = sign(&event, &signers(&identity.current));
    submit(&client, &signed(event, signatures))?;
    let state = client.key_state(&identity.prefix)?;
    report(args.api.json, verb, &args.name, &state)
}

pub(crate) fn delegate(args: IdDelegateArgs) -> anyhow::Result<()> {
    let keystore = open_keystore(&args.id.keystore)?;
    let delegator = keystore.get(&args.id.name)?.prefix.clone();
    drop(keystore);
    let client = Client::new(&args.id.api.api);
    let pending = client.pending_cesr(&args.approve)?;
    let messages = welkin_keri::parse_stream(pending.as_bytes())
        .map_err(|e| anyhow::anyhow!("the node sent an unreadable pending event: {e}"))?;
    let delegated_by_us = |m: &Message| match m.event.body() {
        welkin_keri::EventBody::Inception(i) => i.delegator.is_some_and(|d| d.qb64() == delegator),
        welkin_keri::EventBody::Rotation(r) => r.delegated,
        _ => false,
    };
    let Some(waiting) = messages.iter().rev().find(|m| delegated_by_us(m)) else {
        bail!(
            "{} has no event waiting for {}'s approval (the delegate submits it first)",
            args.approve,
            args.id.name
        );
    };
    let seal = waiting.event.seal();
    eprintln!(
        "approving {} event {} of {} (sn {})",
        waiting.event.ilk().as_str(),
        seal.said.qb64(),
        seal.prefix,
        seal.sn
    );
    anchor(&args.id, &[seal], "approved as")
}

/// A prefix given directly, or the prefix of a keystore name.
fn resolve(args: &IdShowArgs) -> anyhow::Result<String> {
    if Prefix::from_qb64(&args.identifier).is_ok() {
        return Ok(args.identifier.clone());
    }
    let keystore = open_keystore(&args.keystore).with_context(|| {
        format!(
            "{:?} is not an identifier prefix, so it was looked up as a keystore name",
            args.identifier
        )
    })?;
    Ok(keystore.get(&args.identifier)?.prefix.clone())
}

/// The current signing keys, comma-separated.
fn keys_text(state: &KeyState) -> String {
    state
        .signing
        .keys
        .iter()
        .map(|k| k.qb64())
        .collect::<Vec<_>>()
        .join(", ")
}

pub(crate) fn show(args: IdShowArgs) -> anyhow::Result<()> {
    let prefix = resolve(&args)?;
    let state = Client::new(&args.api.api).key_state(&prefix)?;
    if args.api.json {
        return output::json(&state);
    }
    println!("identifier   {}", state.prefix);
    println!(
        "sequence     {} (latest {} {})",
        state.sn,
        state.ilk,
        state.digest.qb64()
    );
    println!(
        "keys         {} (threshold {})",
        keys_text(&state),
        state.signing.kt.to_json().to_compact()
    );
    println!(
        "next         {} committed (threshold {})",
        state.signing.next.len(),
        state.signing.nt.to_json().to_compact()
    );
    if let Some(delegator) = &state.delegator {
        println!("delegator    {delegator}");
    }
    Ok(())
}

/// Every event of an identifier's log, page by page.
fn all_events(client: &Client, prefix: &str) -> anyhow::Result<Vec<KelEvent>> {
    let mut events: Vec<KelEvent> = Vec::new();
    loop {
        let page = client.kel(prefix, events.len() as u64)?;
        let got = page.events.len() as u64;
        events.extend(page.events);
        if got == 0 || events.len() as u64 > page.sn {
            return Ok(events);
        }
    }
}

pub(crate) fn kel(args: IdKelArgs) -> anyhow::Result<()> {
    let prefix = resolve(&args.show)?;
    let client = Client::new(&args.show.api.api);
    if args.cesr {
        print!("{}", client.kel_cesr(&prefix)?);
        return Ok(());
    }
    let events = all_events(&client, &prefix)?;
    output::json(&serde_json::json!({ "prefix": prefix, "events": events }))
}

pub(crate) fn export(args: IdExportArgs) -> anyhow::Result<()> {
    let prefix = resolve(&args.show)?;
    let client = Client::new(&args.show.api.api);
    let mut events = Vec::new();
    for event in all_events(&client, &prefix)? {
        let Some(tx) = &event.tx_id else {
            bail!(
                "the node did not say which transaction carried event {}",
                event.sn
            );
        };
        let tx = welkin_types::hexser::decode_hex::<welkin_types::TxId>(tx)
            .map_err(|e| anyhow::anyhow!("the node sent a bad transaction id: {e}"))?;
        events.push(ExportedEvent {
            message: format!("{}{}", event.event.get(), event.attachments),
            receipt: super::log::certified_receipt(&client, &tx)?,
        });
    }
    let export = KelExport {
        kind: KEL_EXPORT_KIND.into(),
        prefix: prefix.clone(),
        events,
    };
    std::fs::write(&args.out, serde_json::to_string_pretty(&export)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    if args.show.api.json {
        return output::json(&serde_json::json!({
            "prefix": prefix,
            "events": export.events.len(),
            "path": args.out,
        }));
    }
    println!(
        "wrote {} events of {prefix} with their log receipts to {}",
        export.events.len(),
        args.out.display()
    );
    Ok(())
}

/// One exported event whose log receipt verified: where the log has it, and how to name it.
#[derive(Clone)]
struct Logged {
    sn: u64,
    log_index: u64,
    name: String,
}

/// Refuses an exported event that a later one in the export superseded: the cluster applies
/// an event at a sequence number it had already accepted (or passed) only as a recovery
/// rotation, which supersedes the accepted events from that number on. So an applied event
/// logged before an applied event of the same identifier at the same or a lower sequence
/// number was superseded by it.
fn refuse_superseded(logged: &[Logged]) -> anyhow::Result<()> {
    let mut by_log: Vec<usize> = (0..logged.len()).collect();
    by_log.sort_by_key(|&i| std::cmp::Reverse(logged[i].log_index));
    // For each event, the lowest-numbered event logged after it, if that one is at the same
    // or a lower sequence number: its superseder. Reported for the first event in the export.
    let mut superseded_by: Vec<Option<usize>> = vec![None; logged.len()];
    let mut lowest_later: Option<usize> = None;
    for i in by_log {
        if let Some(r) = lowest_later
            && logged[r].sn <= logged[i].sn
        {
            superseded_by[i] = Some(r);
        }
        if lowest_later.is_none_or(|l| logged[i].sn < logged[l].sn) {
            lowest_later = Some(i);
        }
    }
    if let Some((i, r)) = superseded_by
        .iter()
        .enumerate()
        .find_map(|(i, r)| r.map(|r| (i, r)))
    {
        bail!(
            "{} was superseded by the recovery rotation {}: an export must hold the log as it \
             stands, without superseded events",
            logged[i].name,
            logged[r].name
        );
    }
    Ok(())
}

/// Refuses an exported event whose log entry (at `log_index`) says the cluster did not
/// apply it, naming the event (`name`), the outcome and the cluster's reason.
fn require_applied(
    name: &str,
    entry: &welkin_types::LogEntry,
    log_index: u64,
) -> anyhow::Result<()> {
    let why = if entry.detail.is_empty() {
        String::new()
    } else {
        format!(": {}", entry.detail)
    };
    match entry.outcome {
        Outcome::Applied => Ok(()),
        Outcome::Duplicity => bail!(
            "{name} is duplicitous: the cluster refused it because it had accepted another \
             event at that sequence number (log entry {log_index}{why})"
        ),
        other => bail!(
            "{name} was not applied by the cluster: its log entry {log_index} says {}{why}",
            other.name()
        ),
    }
}

/// Checks one exported log into `kevery`; returns the height of its last commit.
///
/// Every event must come with a certified log receipt whose entry says the cluster applied
/// it: a duplicitous, refused or superseded event is named and refused, even though the
/// cluster logged (and certified) its transaction.
fn verify_export(
    kevery: &mut Kevery,
    export: &KelExport,
    genesis: &welkin_types::Genesis,
) -> anyhow::Result<u64> {
    if export.kind != KEL_EXPORT_KIND {
        bail!("not an exported key event log (kind {:?})", export.kind);
    }
    let cluster_id = genesis.cluster_id();
    let mut height = 0;
    let mut messages = Vec::with_capacity(export.events.len());
    let mut logged = Vec::with_capacity(export.events.len());
    for (i, event) in export.events.iter().enumerate() {
        let key = welkin_client::key_from_proof(genesis, event.receipt.cluster_key_proof.as_ref())
            .map_err(|e| anyhow::anyhow!("event {i}: {e}"))?;
        let (certified, entry) =
            welkin_client::verify_log_receipt(&event.receipt, &cluster_id, key.public())
                .map_err(|e| anyhow::anyhow!("event {i}: its log receipt does not verify: {e}"))?;
        height = height.max(certified.checkpoint.height);
        let Payload::KeyEvent(bytes) = &entry.tx.tx.payload else {
            bail!("event {i}: the logged transaction is not a key event");
        };
        if bytes.as_slice() != event.message.as_bytes() {
            bail!("event {i}: the logged transaction carries a different event");
        }
        let (message, _) =
            welkin_keri::parse_message(bytes).map_err(|e| anyhow::anyhow!("event {i}: {e}"))?;
        if message.event.prefix().qb64() != export.prefix {
            bail!(
                "event {i} belongs to {}, not {}",
                message.event.prefix(),
                export.prefix
            );
        }
        let sn = message.event.sn();
        let name = format!("event {i} (sn {sn}, {})", message.event.said());
        require_applied(&name, &entry, event.receipt.log_index)?;
        logged.push(Logged {
            sn,
            log_index: event.receipt.log_index,
            name,
        });
        messages.push(message);
    }
    refuse_superseded(&logged)?;
    for (i, message) in messages.into_iter().enumerate() {
        let sn = message.event.sn();
        match kevery.process(message) {
            Ok(KeveryOutcome::Accepted { .. } | KeveryOutcome::Duplicate) => {}
            Ok(KeveryOutcome::Escrowed(reason)) => bail!(
                "event {i} (sn {sn}) cannot be checked yet: {reason:?}; for a delegated \
                 identifier, pass the delegator's export with --with"
            ),
            Ok(KeveryOutcome::Receipted) => bail!("event {i} is a receipt, not a key event"),
            Err(e) => bail!("event {i} (sn {sn}) breaks a KERI rule: {e}"),
        }
    }
    Ok(height)
}

pub(crate) fn verify(args: IdVerifyArgs) -> anyhow::Result<()> {
    let genesis = super::log::read_genesis(&args.genesis)?;
    let read = |path: &std::path::Path| -> anyhow::Result<KelExport> {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        serde_json::from_str(&text)
            .with_context(|| format!("{} is not an exported key event log", path.display()))
    };
    // The cluster already accepted these events; witness receipts are not needed here.
    let mut kevery = Kevery::new(KeveryConfig {
        require_witness_receipts: false,
        ..KeveryConfig::default()
    });
    for path in &args.with {
        verify_export(&mut kevery, &read(path)?, &genesis)
            .with_context(|| format!("in {}", path.display()))?;
    }
    let export = read(&args.file)?;
    let height = verify_export(&mut kevery, &export, &genesis)?;
    let prefix = Prefix::from_qb64(&export.prefix)
        .map_err(|e| anyhow::anyhow!("the export names a bad identifier: {e}"))?;
    let state = kevery
        .state(&prefix)
        .ok_or_else(|| anyhow::anyhow!("the export holds no inception of {prefix}"))?;
    if args.json {
        return output::json(&serde_json::json!({
            "verified": true,
            "events": export.events.len(),
            "committed_by_height": height,
            "state": state,
        }));
    }
    println!(
        "verified {} events of {prefix}: every one applied by the cluster (certified \
         checkpoints up to height {height}) and valid under KERI's rules",
        export.events.len()
    );
    println!("sequence     {} ({})", state.sn, state.digest.qb64());
    println!("keys         {}", keys_text(state));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;
    use welkin_types::{LogEntry, PrivateKey, hash_parts};

    fn entry(outcome: Outcome, detail: &str) -> LogEntry {
        let key = PrivateKey::from_seed(1);
        let tx = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: 1,
            expiry_ms: 1,
            payload: Payload::KeyEvent(b"{}".to_vec()),
        }
        .sign(&key, &hash_parts(&[b"c"]));
        LogEntry {
            height: 1,
            index: 0,
            outcome,
            detail: detail.into(),
            tx,
        }
    }

    #[test]
    fn only_applied_entries_pass_and_refusals_name_the_event() {
        let name = "event 2 (sn 1, EAbc)";
        assert!(require_applied(name, &entry(Outcome::Applied, ""), 7).is_ok());
        let duplicity = require_applied(name, &entry(Outcome::Duplicity, "not a recovery"), 7)
            .expect_err("duplicity")
            .to_string();
        assert_eq!(
            duplicity,
            "event 2 (sn 1, EAbc) is duplicitous: the cluster refused it because it had \
             accepted another event at that sequence number (log entry 7: not a recovery)"
        );
        let superseded = "event EAbc at sequence number 1 of E1 was superseded by a recovery \
                          rotation";
        let rejected = require_applied(name, &entry(Outcome::Rejected, superseded), 9)
            .expect_err("rejected")
            .to_string();
        assert!(
            rejected.starts_with(
                "event 2 (sn 1, EAbc) was not applied by the cluster: its log \
                 entry 9 says rejected: event EAbc"
            ) && rejected.contains("superseded"),
            "{rejected}"
        );
        for outcome in [Outcome::Escrowed, Outcome::Replay, Outcome::Expired] {
            assert!(require_applied(name, &entry(outcome, ""), 1).is_err());
        }
    }

    fn logged(sn: u64, log_index: u64, name: &str) -> Logged {
        Logged {
            sn,
            log_index,
            name: name.into(),
        }
    }

    #[test]
    fn events_a_later_recovery_superseded_are_named() {
        // icp, ixn 1, ixn 2 (the thief's), then the recovery rotation at 1.
        let export = [
            logged(0, 10, "icp"),
            logged(1, 11, "ixn1"),
            logged(2, 12, "ixn2"),
            logged(1, 20, "rot1"),
        ];
        let error = refuse_superseded(&export).expect_err("superseded");
        assert!(
            error
                .to_string()
                .starts_with("ixn1 was superseded by the recovery rotation rot1"),
            "{error}"
        );
        let only_ixn2 = [export[0].clone(), export[2].clone(), export[3].clone()];
        let error = refuse_superseded(&only_ixn2).expect_err("superseded");
        assert!(
            error.to_string().starts_with("ixn2 was superseded by"),
            "{error}"
        );
        // The log as it stands after the recovery, in any order.
        let current = [
            logged(1, 20, "rot1"),
            logged(0, 10, "icp"),
            logged(2, 30, "ixn"),
        ];
        assert!(refuse_superseded(&current).is_ok());
    }
}
