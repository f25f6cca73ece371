//! `welkin membership`: the members of the trusted cluster and how its key was made.

use super::{signing::Signing, trust};
use crate::{
    cli::{
        ApiArgs, KeystoreArgs, MembershipApproveArgs, MembershipAttestArgs, MembershipCommand,
        MembershipLeaveArgs, MembershipListArgs, MembershipProposeArgs, MembershipRemoveArgs,
        OperatorArgs, SenderArgs, SignerArgs,
    },
    output,
};
use anyhow::{Context as _, bail};
use commonware_codec::Encode as _;
use serde::Serialize;
use welkin_client::Client;
use welkin_types::Genesis;
use welkin_types::membership::MembershipOp;

pub(crate) fn run(command: MembershipCommand) -> anyhow::Result<()> {
    match command {
        MembershipCommand::List(args) => list(args),
        MembershipCommand::Keygen(args) => keygen(args),
        MembershipCommand::Epochs(args) => epochs(args),
        MembershipCommand::Propose(args) => propose(args),
        MembershipCommand::Approve(args) => approve(args),
        MembershipCommand::Attest(args) => attest(args),
        MembershipCommand::Leave(args) => leave(args),
        MembershipCommand::Remove(args) => remove(args),
        MembershipCommand::OperatorId(args) => {
            let key = super::signing::load_key_file(&args.key)?;
            println!("{}", super::signing::non_transferable_prefix(&key.signer));
            Ok(())
        }
    }
}

/// The operator that `args` names: a keystore identity, or a key file's own identifier.
fn operator(args: &OperatorArgs) -> anyhow::Result<Signing> {
    match (&args.key, &args.identity) {
        (Some(path), _) => Ok(Signing::non_transferable(
            super::signing::load_key_file(path)?.signer,
        )),
        (None, Some(name)) => Signing::load(&SignerArgs {
            sender: SenderArgs {
                key: None,
                identity: Some(name.clone()),
            },
            keystore: KeystoreArgs {
                keystore: args.keystore.keystore.clone(),
                passphrase_file: args.keystore.passphrase_file.clone(),
            },
        }),
        (None, None) => bail!("say which operator signs: --as NAME or --key FILE"),
    }
}

/// The one registration in `path`.
fn one_registration(path: &std::path::Path) -> anyhow::Result<welkin_types::NodeInfo> {
    let mut entries = super::genesis::read_registrations(path)?;
    if entries.len() != 1 {
        bail!(
            "{} holds {} registrations; a join request carries one",
            path.display(),
            entries.len()
        );
    }
    Ok(entries.remove(0))
}

/// Signs `payload` with `signing`, commits it, and prints the verified receipt and the
/// cluster's note about it.
fn commit(
    api: &ApiArgs,
    trust: &crate::cli::TrustArgs,
    signing: &Signing,
    payload: welkin_types::Payload,
) -> anyhow::Result<()> {
    let client = Client::new(&api.api);
    let trust = super::trust::cluster(&client, trust.genesis.as_deref())?;
    let tx = signing.sign(
        &trust.trusted.cluster_id,
        welkin_node::ceremony::random_u64(),
        super::now_ms() + 60_000,
        payload,
    );
    let status = client.submit(&tx, Some(std::time::Duration::from_secs(30)))?;
    let note = client
        .verified_outcome_detail(&tx.id(), &trust.trusted)
        .ok()
        .flatten()
        .map(|d| d.value);
    super::query::report_status(&client, &trust, &status, api.json)?;
    if let (Some(note), false) = (note, api.json) {
        println!("note         {note}");
    }
    Ok(())
}

fn propose(args: MembershipProposeArgs) -> anyhow::Result<()> {
    let key = super::signing::load_key_file(&args.key)?;
    let registration = one_registration(&args.registration)?;
    if registration.public_key != key.public_key() {
        bail!(
            "{} registers another key than {}: the joining node signs its own request",
            args.registration.display(),
            args.key.display()
        );
    }
    let evidence = match &args.evidence {
        Some(path) => {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?
        }
        None => Vec::new(),
    };
    let id = welkin_types::membership::request_id(&registration);
    if !args.api.json {
        println!("request      {}", hex::encode(id));
    }
    let signing = Signing::from_key_file(&args.key)?;
    commit(
        &args.api,
        &args.trust,
        &signing,
        welkin_types::Payload::Membership(Box::new(MembershipOp::Join {
            registration: Box::new(registration),
            evidence,
        })),
    )
}

/// `welkin node join`: the node's files, then its join request.
pub(crate) fn node_join(args: crate::cli::NodeJoinArgs) -> anyhow::Result<()> {
    let key = super::signing::load_key_file(&args.key)?;
    let registration = one_registration(&args.registration)?;
    if registration.public_key != key.public_key() {
        bail!(
            "{} registers another key than {}: the joining node signs its own request",
            args.registration.display(),
            args.key.display()
        );
    }
    let client = Client::new(&args.api.api);
    let trust = super::trust::cluster(&client, args.trust.genesis.as_deref())?;
    let genesis = trust.genesis(&client)?;
    if genesis.index_of(&registration.public_key).is_some() {
        bail!("this node is a genesis member already: run it with its own config");
    }
    if genesis.membership.is_none() {
        bail!(
            "the cluster at {} admits no nodes: its genesis names no membership policy",
            client.base()
        );
    }
    std::fs::create_dir_all(&args.dir)
        .with_context(|| format!("cannot create {}", args.dir.display()))?;
    let key_file = std::fs::canonicalize(&args.key)
        .with_context(|| format!("cannot resolve {}", args.key.display()))?;
    let files = [
        ("genesis.json", genesis.to_json()),
        (
            "registration.json",
            std::fs::read_to_string(&args.registration)
                .with_context(|| format!("cannot read {}", args.registration.display()))?,
        ),
        (
            "node.toml",
            format!(
                "# Written by `welkin node join`: a node that joins {} after genesis.\n\
                 data_dir = \"data\"\n\
                 key_file = {:?}\n\
                 genesis_file = \"genesis.json\"\n\
                 registration_file = \"registration.json\"\n",
                hex::encode(genesis.cluster_id()),
                key_file.display().to_string(),
            ),
        ),
    ];
    for (name, _) in &files {
        let path = args.dir.join(name);
        if path.exists() {
            bail!(
                "{} exists already; choose another --dir, or delete it if you mean to start \
                 over",
                path.display()
            );
        }
    }
    for (name, text) in &files {
        let path = args.dir.join(name);
        std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    }
    let config = args.dir.join("node.toml");
    let json = args.api.json;
    if !json {
        println!("wrote        {}", config.display());
    }
    propose(MembershipProposeArgs {
        key: args.key,
        registration: args.registration,
        evidence: args.evidence,
        api: args.api,
        trust: args.trust,
    })?;
    if !json {
        println!(
            "next: start the node (welkin node --config {}); once operators approve the \
             request (welkin membership approve ID), it joins at an epoch boundary \
             (welkin membership epochs)",
            config.display()
        );
    }
    Ok(())
}

/// `welkin node leave`.
pub(crate) fn node_leave(args: crate::cli::NodeLeaveArgs) -> anyhow::Result<()> {
    leave(MembershipLeaveArgs {
        key: args.key,
        api: args.api,
        trust: args.trust,
    })
}

fn remove(args: MembershipRemoveArgs) -> anyhow::Result<()> {
    let member = match welkin_types::hexser::decode_hex::<welkin_types::PublicKey>(&args.member) {
        Ok(key) => key,
        Err(_) => {
            let client = Client::new(&args.api.api);
            let trust = super::trust::cluster(&client, args.trust.genesis.as_deref())?;
            let genesis = trust.genesis(&client)?;
            genesis
                .nodes
                .iter()
                .find(|n| n.name == args.member)
                .map(|n| n.public_key.clone())
                .with_context(|| {
                    format!(
                        "{:?} is neither a genesis member's name nor a node key (64 hex \
                         characters); `welkin membership epochs` lists the members",
                        args.member
                    )
                })?
        }
    };
    let signing = operator(&args.operator)?;
    commit(
        &args.api,
        &args.trust,
        &signing,
        welkin_types::Payload::Membership(Box::new(MembershipOp::Remove { member })),
    )
}

fn approve(args: MembershipApproveArgs) -> anyhow::Result<()> {
    let request = welkin_types::hexser::decode_hex::<welkin_types::Digest>(&args.request)
        .map_err(|e| anyhow::anyhow!("the request id must be 64 hex characters: {e}"))?;
    let signing = operator(&args.operator)?;
    commit(
        &args.api,
        &args.trust,
        &signing,
        welkin_types::Payload::Membership(Box::new(MembershipOp::Approve { request })),
    )
}

fn leave(args: MembershipLeaveArgs) -> anyhow::Result<()> {
    let signing = Signing::from_key_file(&args.key)?;
    commit(
        &args.api,
        &args.trust,
        &signing,
        welkin_types::Payload::Membership(Box::new(MembershipOp::Leave)),
    )
}

fn attest(args: MembershipAttestArgs) -> anyhow::Result<()> {
    let registration = one_registration(&args.registration)?;
    let client = Client::new(&args.api.api);
    let trust = super::trust::cluster(&client, args.trust.genesis.as_deref())?;
    let signing = operator(&args.operator)?;
    let (sender, keys) = signing.parts();
    let welkin_types::Sender::Identifier { prefix, signers } = sender else {
        bail!("an operator statement is signed by an identifier");
    };
    let message = welkin_state::membership::OperatorStatement::message(
        &trust.trusted.cluster_id,
        &registration,
    );
    let signed: Vec<_> = signers
        .iter()
        .zip(keys)
        .map(|(signer, key)| {
            (
                signer.index,
                signer.key.clone(),
                commonware_cryptography::Signer::sign(
                    key,
                    welkin_types::namespace::ATTESTATION,
                    &message,
                ),
            )
        })
        .collect();
    let evidence = welkin_state::membership::OperatorStatement::evidence(prefix, &signed);
    std::fs::write(&args.out, &evidence)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!(
        "wrote {}'s statement about {} ({}) to {}",
        prefix,
        registration.name,
        hex::encode(registration.public_key.encode()),
        args.out.display()
    );
    Ok(())
}

/// One member, as `list --json` prints it.
#[derive(Serialize)]
struct Member {
    name: String,
    public_key: String,
    failure_domain: String,
    api_address: String,
    p2p_address: String,
    /// `selected`: its dealer log is one of those the key was computed from; `not selected`;
    /// `dealt`: a trusted dealer made the key.
    key_role: String,
    /// Some dealer's log revealed its dealing to this member.
    revealed: bool,
}

#[derive(Serialize)]
struct Listing {
    cluster_id: String,
    cluster_key: String,
    /// Where the key comes from: `dealt at genesis` or `generated by the members, round R`.
    key_source: String,
    threshold: u32,
    members: Vec<Member>,
}

fn list(args: MembershipListArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api.api);
    let trust = trust::cluster(&client, args.trust.genesis.as_deref())?;
    let genesis = trust.genesis(&client)?;
    let listing = listing(&client, &genesis)?;
    if listing.cluster_key != hex::encode(trust.trusted.cluster_key.encode()) {
        bail!(
            "the key proven from the genesis is not the trusted one ({})",
            trust.source
        );
    }
    if args.api.json {
        return output::json(&listing);
    }
    println!("cluster id   {}", listing.cluster_id);
    println!(
        "cluster key  {} (verified: {})",
        listing.cluster_key, listing.key_source
    );
    println!(
        "threshold    {} of {}",
        listing.threshold,
        listing.members.len()
    );
    println!();
    println!(
        "{:<12} {:<14} {:<22} {:<14} public key",
        "name", "domain", "api", "key role"
    );
    for member in &listing.members {
        let role = if member.revealed {
            format!("{}, revealed", member.key_role)
        } else {
            member.key_role.clone()
        };
        println!(
            "{:<12} {:<14} {:<22} {:<14} {}",
            member.name, member.failure_domain, member.api_address, role, member.public_key
        );
    }
    Ok(())
}

/// The members and their part in the key, the key proven from `genesis`.
fn listing(client: &Client, genesis: &Genesis) -> anyhow::Result<Listing> {
    let sharing = client.proven_sharing(genesis)?;
    let (key_source, selected, revealed) = if genesis.polynomial.is_some() {
        ("dealt at genesis".to_string(), Vec::new(), Vec::new())
    } else {
        // The round's output again, for its dealers and reveals (the proof may be served
        // again between the two calls: it must give the proven key).
        let proof = client.cluster_key_proof()?;
        let logs = proof
            .logs
            .iter()
            .map(hex::decode)
            .collect::<Result<Vec<_>, _>>()?;
        let round = welkin_dkg::check_first_key(
            &genesis.cluster_id(),
            proof.round,
            &genesis.member_keys(),
            &proof.excluded,
            &logs,
        )?;
        anyhow::ensure!(
            round.public() == &sharing,
            "the node served two proofs of different keys"
        );
        (
            format!("generated by the members, round {}", proof.round),
            round.dealers().iter().cloned().collect::<Vec<_>>(),
            round.revealed().iter().cloned().collect::<Vec<_>>(),
        )
    };
    let dealt = genesis.polynomial.is_some();
    let members = genesis
        .nodes
        .iter()
        .map(|node| Member {
            name: node.name.clone(),
            public_key: hex::encode(node.public_key.encode()),
            failure_domain: node.failure_domain.clone(),
            api_address: node.api_address.to_string(),
            p2p_address: node.p2p_address.to_string(),
            key_role: if dealt {
                "dealt".into()
            } else if selected.contains(&node.public_key) {
                "selected".into()
            } else {
                "not selected".into()
            },
            revealed: revealed.contains(&node.public_key),
        })
        .collect();
    Ok(Listing {
        cluster_id: hex::encode(genesis.cluster_id()),
        cluster_key: hex::encode(sharing.public().encode()),
        key_source,
        threshold: genesis.threshold,
        members,
    })
}

fn epochs(args: ApiArgs) -> anyhow::Result<()> {
    let status = Client::new(&args.api).epoch_status()?;
    if args.json {
        return output::json(&status);
    }
    println!(
        "epoch {} (from height {}, {} blocks each)",
        status.epoch, status.start_height, status.epoch_blocks
    );
    println!("members   {}", status.members.join(", "));
    if !status.retired.is_empty() {
        println!("retired   {}", status.retired.join(", "));
    }
    match &status.reshare {
        Some(r) => {
            println!(
                "resharing round {} (opened at height {}): {} dealers, makes {}",
                r.round,
                r.opened_height,
                r.dealers.len(),
                r.players.join(", ")
            );
            println!(
                "logs in from {}",
                if r.logs.is_empty() {
                    "nobody yet".into()
                } else {
                    r.logs.join(", ")
                }
            );
        }
        None => println!("no resharing in progress"),
    }
    for failure in &status.failures {
        println!("failed    {failure}");
    }
    Ok(())
}

fn keygen(args: ApiArgs) -> anyhow::Result<()> {
    let status = Client::new(&args.api).keygen_status()?;
    if args.json {
        return output::json(&status);
    }
    match status.state.as_str() {
        "dealt" => println!("the cluster key was dealt at genesis by a trusted dealer"),
        "generated" => {
            println!(
                "generated in round {} at height {} (the node's word; `welkin membership list` \
                 proves the key)",
                status.round,
                status.height.unwrap_or_default()
            );
            println!("selected dealers  {}", status.logs.join(", "));
            if !status.revealed.is_empty() {
                println!("revealed to       {}", status.revealed.join(", "));
            }
        }
        _ => {
            println!(
                "generating: round {} open since {} ms (block time)",
                status.round,
                status.started_ms.unwrap_or_default()
            );
            println!(
                "logs in from      {}",
                if status.logs.is_empty() {
                    "nobody yet".into()
                } else {
                    status.logs.join(", ")
                }
            );
        }
    }
    if !status.excluded.is_empty() {
        println!(
            "excluded          {} (equivocated)",
            status.excluded.join(", ")
        );
    }
    for failure in &status.failures {
        println!("earlier round     {failure}");
    }
    Ok(())
}
