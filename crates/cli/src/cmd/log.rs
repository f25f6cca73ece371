//! `welkin log`: records, receipts and proofs of the audit log.

use super::signing::Signing;
use crate::{
    cli::{
        LogAppendArgs, LogCheckpointArgs, LogGetArgs, LogProofArgs, LogVerifyArgs, LogWatchArgs,
    },
    output,
};
use anyhow::{Context as _, bail};
use commonware_cryptography::Hasher as _;
use std::time::{Duration, Instant};
use welkin_client::{Client, ClientError, NoteAt, ReceiptError, verify_applied_log_receipt};
use welkin_types::{Genesis, Payload, api::LogReceipt, limits::MAX_RECORD_BYTES};

/// The media type suffix that marks a record holding a SHA-256 digest of the content.
const DIGEST_SUFFIX: &str = ";digest=sha256";

fn record_for(file: &[u8], media_type: &str, inline: bool) -> anyhow::Result<Payload> {
    if inline {
        if file.len() > MAX_RECORD_BYTES {
            bail!(
                "the file is {} bytes; --inline records hold at most {MAX_RECORD_BYTES} (drop --inline to record its hash)",
                file.len()
            );
        }
        return Ok(Payload::Record {
            media_type: media_type.to_string(),
            content: file.to_vec(),
        });
    }
    let digest = welkin_types::Hasher::hash(&[file]);
    Ok(Payload::Record {
        media_type: format!("{media_type}{DIGEST_SUFFIX}"),
        content: digest.as_ref().to_vec(),
    })
}

pub(crate) fn append(args: LogAppendArgs) -> anyhow::Result<()> {
    let signing = Signing::load(&args.signer)?;
    let file = std::fs::read(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?;
    let payload = record_for(&file, &args.media_type, args.inline)?;
    let client = Client::new(&args.api.api);
    let cluster_id = super::signing::cluster_id(&client)?;
    let tx = signing.sign(
        &cluster_id,
        welkin_node::ceremony::random_u64(),
        super::now_ms() + 300_000,
        payload,
    );
    client.submit(&tx, Some(Duration::from_secs(30)))?;
    let receipt = certified_receipt(&client, &tx.id())?;
    let out = args.out.unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".receipt.json");
        name.into()
    });
    std::fs::write(&out, serde_json::to_string_pretty(&receipt)?)?;
    if args.api.json {
        return output::json(&receipt);
    }
    println!(
        "recorded {} as log entry {}",
        args.file.display(),
        receipt.log_index
    );
    println!("transaction  {}", receipt.tx_id);
    println!(
        "receipt      {} (check it with `welkin log verify {} --genesis genesis.json`)",
        out.display(),
        out.display()
    );
    Ok(())
}

/// The log receipt of a committed transaction, waiting (up to 30 s) for the checkpoint of its
/// height, which the cluster certifies a moment after the commit.
pub(crate) fn certified_receipt(
    client: &Client,
    id: &welkin_types::TxId,
) -> anyhow::Result<LogReceipt> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match client.log_receipt(id) {
            Ok(receipt) => return Ok(receipt),
            Err(ClientError::Api { code, .. })
                if code == "not_certified" && Instant::now() < deadline =>
            {
                std::thread::sleep(Duration::from_millis(100));
            }
            Err(e) => return Err(e.into()),
        }
    }
}

pub(crate) fn verify(args: LogVerifyArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.receipt)
        .with_context(|| format!("cannot read {}", args.receipt.display()))?;
    let receipt: LogReceipt = serde_json::from_str(&text)
        .with_context(|| format!("{} is not a log receipt", args.receipt.display()))?;
    let genesis = Genesis::from_json(
        &std::fs::read_to_string(&args.genesis)
            .with_context(|| format!("cannot read {}", args.genesis.display()))?,
    )?;
    // For a dealerless cluster the receipt carries the proof of the key; its certified
    // checkpoint, checked below, completes it.
    let key = welkin_client::key_from_proof(&genesis, receipt.cluster_key_proof.as_ref())
        .map_err(|e| anyhow::anyhow!("receipt does not verify: {e}"))?;
    let (certified, entry) =
        verify_applied_log_receipt(&receipt, &genesis.cluster_id(), key.public()).map_err(|e| {
            match e {
                ReceiptError::NotApplied { .. } => anyhow::anyhow!("receipt verifies, but {e}"),
                e => anyhow::anyhow!("receipt does not verify: {e}"),
            }
        })?;
    let tx = entry.tx;
    let Payload::Record {
        media_type,
        content,
    } = &tx.tx.payload
    else {
        bail!(
            "receipt verifies, but the entry is a {} transaction, not a record",
            tx.tx.payload.kind()
        );
    };
    if let Some(path) = &args.file {
        let file =
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
        let matches = if media_type.ends_with(DIGEST_SUFFIX) {
            welkin_types::Hasher::hash(&[&file]).as_ref() == content.as_slice()
        } else {
            &file == content
        };
        if !matches {
            bail!(
                "receipt verifies, but {} is not the recorded content",
                path.display()
            );
        }
    }
    let signer = tx.tx.sender.to_string();
    if args.json {
        return output::json(&serde_json::json!({
            "verified": true,
            "outcome": entry.outcome,
            "log_index": receipt.log_index,
            "log_size": certified.checkpoint.log_size,
            "height": certified.checkpoint.height,
            "media_type": media_type,
            "signer": signer,
            "file_matches": args.file.is_some(),
        }));
    }
    println!(
        "verified: entry {} of the log of {} entries certified at height {}, applied",
        receipt.log_index, certified.checkpoint.log_size, certified.checkpoint.height
    );
    println!("record    {media_type}, signed by {signer}");
    if let Some(path) = &args.file {
        println!("file      {} matches the record", path.display());
    }
    Ok(())
}

pub(crate) fn get(args: LogGetArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api.api);
    let entries = client.log_entries(args.index, args.index + 1)?;
    let entry = entries
        .entries
        .first()
        .ok_or_else(|| anyhow::anyhow!("no entry {}", args.index))?;
    let logged = welkin_types::LogEntry::from_bytes(&hex::decode(entry)?)?;
    let tx = &logged.tx;
    if args.api.json {
        return output::json(&serde_json::json!({
            "index": args.index,
            "entry": entry,
            "height": logged.height,
            "outcome": logged.outcome,
            "detail": logged.detail,
            "tx_id": hex::encode(tx.id()),
            "kind": tx.tx.payload.kind(),
            "signer": tx.tx.sender.to_string(),
            "nonce": tx.tx.nonce,
        }));
    }
    println!("entry        {}", args.index);
    println!("height       {}", logged.height);
    println!("outcome      {}", logged.outcome.name());
    if !logged.detail.is_empty() {
        println!("detail       {}", logged.detail);
    }
    println!("transaction  {}", hex::encode(tx.id()));
    println!("kind         {}", tx.tx.payload.kind());
    println!("signer       {}", tx.tx.sender);
    if let Payload::Record {
        media_type,
        content,
    } = &tx.tx.payload
    {
        println!("media type   {media_type}");
        println!("content      {}", hex::encode(content));
    }
    Ok(())
}

pub(crate) fn proof(args: LogProofArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api.api);
    let size = match args.size {
        Some(size) => size,
        None => client.latest_log_size()?,
    };
    let proof = match (args.index, args.old) {
        (Some(index), None) => client.inclusion_proof(index, size)?,
        (None, Some(old)) => client.consistency_proof(old, size)?,
        _ => bail!("give --index (inclusion) or --old (consistency)"),
    };
    output::json(&proof)
}

/// The exit code of `welkin log watch` when it sees a split view.
const SPLIT_VIEW_EXIT: i32 = 3;

fn fetch_note(api: &str) -> anyhow::Result<String> {
    Client::new(api)
        .checkpoint_note(NoteAt::Latest)
        .map_err(|e| anyhow::anyhow!("cannot fetch the checkpoint from {api}: {e}"))
}

pub(crate) fn read_genesis(path: &std::path::Path) -> anyhow::Result<Genesis> {
    Ok(Genesis::from_json(
        &std::fs::read_to_string(path)
            .with_context(|| format!("cannot read {}", path.display()))?,
    )?)
}

pub(crate) fn checkpoint(args: LogCheckpointArgs) -> anyhow::Result<()> {
    let at = match (args.size, args.height) {
        (Some(size), _) => NoteAt::Size(size),
        (None, Some(height)) => NoteAt::Height(height),
        (None, None) => NoteAt::Latest,
    };
    let client = Client::new(&args.api.api);
    let note = client.checkpoint_note(at)?;
    let verified = match &args.genesis {
        Some(path) => {
            let genesis = read_genesis(path)?;
            let key = client.trusted(&genesis)?.cluster_key;
            let (certified, cosigners) =
                welkin_client::verify_checkpoint_note(&note, &genesis, &key)
                    .map_err(|e| anyhow::anyhow!("the checkpoint does not verify: {e}"))?;
            Some((certified, cosigners))
        }
        None => None,
    };
    if args.api.json {
        let mut out = serde_json::json!({ "note": note });
        if let Some((certified, cosigners)) = &verified {
            let c = certified.checkpoint;
            out["verified"] = serde_json::json!(true);
            out["height"] = serde_json::json!(c.height);
            out["log_size"] = serde_json::json!(c.log_size);
            out["log_root"] = serde_json::json!(hex::encode(c.log_root));
            out["cosigners"] = serde_json::json!(cosigners);
        }
        return output::json(&out);
    }
    print!("{note}");
    if let Some((_, cosigners)) = verified {
        eprintln!(
            "verified: cluster signature, and cosignatures of {}",
            cosigners.join(", ")
        );
    }
    Ok(())
}

/// How two cluster-signed checkpoints relate, as far as the watched nodes can show.
#[derive(Debug, PartialEq, Eq)]
enum Relation {
    /// The larger log extends the smaller (a consistency proof verified, or same size and
    /// root).
    Consistent,
    /// They cannot both be true: same size with different roots, or no node could prove the
    /// larger extends the smaller and some node's proof failed.
    SplitView(String),
    /// No node answered with a proof; try again next round.
    Unresolved(String),
}

/// Relates `smaller` and `larger` (by log size), asking the nodes for consistency proofs.
fn relate(
    smaller: &welkin_types::Checkpoint,
    larger: &welkin_types::Checkpoint,
    apis: &[String],
) -> Relation {
    if smaller.log_size == larger.log_size {
        return if smaller.log_root == larger.log_root {
            Relation::Consistent
        } else {
            Relation::SplitView(format!(
                "two roots for the same log size {}",
                smaller.log_size
            ))
        };
    }
    let mut failed = Vec::new();
    let mut unanswered = Vec::new();
    for api in apis {
        let proof = Client::new(api)
            .consistency_proof(smaller.log_size, larger.log_size)
            .map_err(|e| e.to_string())
            .and_then(|p| welkin_client::proof_hashes(&p.proof).map_err(|e| e.to_string()));
        match proof {
            Ok(proof) => match welkin_merkle::verify_consistency(
                smaller.log_size,
                larger.log_size,
                &smaller.log_root.0,
                &larger.log_root.0,
                &proof,
            ) {
                Ok(()) => return Relation::Consistent,
                Err(e) => failed.push(format!("{api}: {e}")),
            },
            Err(e) => unanswered.push(format!("{api}: {e}")),
        }
    }
    let sizes = format!("sizes {} and {}", smaller.log_size, larger.log_size);
    if failed.is_empty() {
        Relation::Unresolved(format!(
            "no node proved consistency between {sizes}: {}",
            unanswered.join("; ")
        ))
    } else {
        Relation::SplitView(format!(
            "no node could prove that size {} extends size {}; failed proofs: {}",
            larger.log_size,
            smaller.log_size,
            failed.join("; ")
        ))
    }
}

/// A checkpoint the watcher accepted, with where it came from.
struct Seen {
    certified: welkin_types::CertifiedCheckpoint,
    note: String,
    api: String,
}

/// The cluster key of `genesis`, proven through the first of `apis` that answers (the proof
/// does not depend on which node serves it).
fn trusted_key(apis: &[String], genesis: &Genesis) -> anyhow::Result<welkin_types::ClusterKey> {
    let mut last = None;
    for api in apis {
        match Client::new(api).trusted(genesis) {
            Ok(trusted) => return Ok(trusted.cluster_key),
            Err(e) => last = Some(format!("{api}: {e}")),
        }
    }
    bail!(
        "no node proved the cluster key ({})",
        last.unwrap_or_else(|| "no node given".into())
    )
}

pub(crate) fn watch(args: LogWatchArgs) -> anyhow::Result<()> {
    let genesis = read_genesis(&args.genesis)?;
    let key = trusted_key(&args.api, &genesis)?;
    // The largest checkpoint seen so far; every other one must be consistent with it.
    let mut accepted: Option<Seen> = None;
    let mut round = 0;
    loop {
        for api in &args.api {
            let note = match fetch_note(api) {
                Ok(note) => note,
                Err(e) => {
                    eprintln!("welkin: {e:#}; retrying next round");
                    continue;
                }
            };
            let (certified, cosigners) =
                welkin_client::verify_checkpoint_note(&note, &genesis, &key).map_err(|e| {
                    anyhow::anyhow!("{api} served a checkpoint that does not verify: {e}")
                })?;
            let new = certified.checkpoint;
            if let Some(seen) = &accepted {
                let old = seen.certified.checkpoint;
                let relation = if new.log_size >= old.log_size {
                    relate(&old, &new, &args.api)
                } else {
                    relate(&new, &old, &args.api)
                };
                match relation {
                    Relation::Consistent => {}
                    Relation::Unresolved(why) => {
                        eprintln!("welkin: {why}; retrying next round");
                        continue;
                    }
                    Relation::SplitView(why) => {
                        eprintln!(
                            "welkin: SPLIT VIEW: two cluster-signed checkpoints disagree: {why}"
                        );
                        for (from, checkpoint, text) in
                            [(&seen.api, &old, &seen.note), (api, &new, &note)]
                        {
                            eprintln!(
                                "--- from {from}: height {} size {} root {} ---\n{text}",
                                checkpoint.height,
                                checkpoint.log_size,
                                hex::encode(checkpoint.log_root)
                            );
                        }
                        std::process::exit(SPLIT_VIEW_EXIT);
                    }
                }
                if new.log_size <= old.log_size {
                    continue;
                }
            }
            if args.json {
                println!(
                    "{}",
                    serde_json::json!({
                        "api": api,
                        "height": new.height,
                        "log_size": new.log_size,
                        "log_root": hex::encode(new.log_root),
                        "cosigners": cosigners,
                        "consistent_with_previous": accepted.is_some(),
                    })
                );
            } else {
                println!(
                    "height {:>8}  log size {:>10}  root {}  cosigned by {}{}",
                    new.height,
                    new.log_size,
                    hex::encode(new.log_root),
                    cosigners.join(","),
                    if accepted.is_some() {
                        "  consistent"
                    } else {
                        ""
                    }
                );
            }
            accepted = Some(Seen {
                certified,
                note,
                api: api.clone(),
            });
        }
        round += 1;
        if args.rounds.is_some_and(|rounds| round >= rounds) {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(args.interval_ms));
    }
}
