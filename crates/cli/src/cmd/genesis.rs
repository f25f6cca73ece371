//! `welkin genesis`: the trusted-dealer key ceremony over signed node registrations.

use crate::cli::GenesisArgs;
use anyhow::{Context as _, bail};
use commonware_codec::Encode as _;
use std::path::Path;
use welkin_node::ceremony::{self, CeremonyNode};
use welkin_types::{ChainParams, NodeInfo, limits::MAX_NODES};

/// The largest registration file read (a registration is a few hundred bytes).
const MAX_REGISTRATION_FILE_BYTES: u64 = 1024 * 1024;

pub(crate) fn run(args: GenesisArgs) -> anyhow::Result<()> {
    let genesis_path = args.out_dir.join("genesis.json");
    let shares_dir = args.out_dir.join("shares");
    if genesis_path.exists() {
        bail!(
            "{} exists already; a genesis is made once per cluster and its nodes' shares belong \
             to it. Choose another --out-dir, or delete {} and {} only if you mean to start a \
             new cluster",
            genesis_path.display(),
            genesis_path.display(),
            shares_dir.display()
        );
    }
    let mut entries = Vec::new();
    for file in &args.nodes {
        entries.extend(read_registrations(file)?);
    }
    if entries.len() > MAX_NODES {
        bail!(
            "{} registrations; a cluster has at most {MAX_NODES} nodes",
            entries.len()
        );
    }
    for entry in &entries {
        let path = shares_dir.join(format!("{}.share", entry.name));
        if path.exists() {
            bail!(
                "{} exists already (left by an earlier ceremony?); delete it or choose another \
                 --out-dir",
                path.display()
            );
        }
    }
    let chain = ChainParams {
        name: args.name,
        ..ChainParams::default()
    };
    let mut rng = commonware_utils::sys_rng();
    let root_token = welkin_types::secrets::generate_token(&mut rng);
    let (genesis, shares) = ceremony::deal(
        &mut rng,
        entries,
        chain,
        super::now_ms(),
        Some(welkin_types::secrets::token_public_key(&root_token)),
    )?;
    let root_token_path = args.out_dir.join("root-token");
    super::write_secret(&root_token_path, &format!("{root_token}\n"))?;
    std::fs::create_dir_all(&shares_dir)
        .with_context(|| format!("cannot create {}", shares_dir.display()))?;
    for (node, share) in genesis.nodes.iter().zip(&shares) {
        let path = shares_dir.join(format!("{}.share", node.name));
        super::write_secret(&path, &serde_json::to_string_pretty(share)?)?;
    }
    super::sync_dir(&shares_dir)?;
    // The genesis file last: its presence means the ceremony finished.
    super::write_new(&genesis_path, &genesis.to_json(), 0o644)?;
    super::sync_dir(&args.out_dir)?;
    println!(
        "wrote the secrets root token to {} (readable by you only): keep it safe, it can do \
         anything; create narrower tokens with it and revoke it when done",
        root_token_path.display()
    );
    println!(
        "verified {} signed node registrations; wrote {} and {} sealed shares in {}",
        genesis.nodes.len(),
        genesis_path.display(),
        shares.len(),
        shares_dir.display()
    );
    println!("cluster id   {}", hex::encode(genesis.cluster_id()));
    println!(
        "cluster key  {}",
        hex::encode(genesis.cluster_key().encode())
    );
    println!(
        "threshold    {} of {}",
        genesis.threshold,
        genesis.nodes.len()
    );
    Ok(())
}

/// Reads one registration, or a JSON array of them, and verifies each one's signature.
fn read_registrations(file: &Path) -> anyhow::Result<Vec<NodeInfo>> {
    use std::io::Read as _;
    let mut text = String::new();
    std::fs::File::open(file)
        .and_then(|f| {
            f.take(MAX_REGISTRATION_FILE_BYTES + 1)
                .read_to_string(&mut text)
        })
        .with_context(|| format!("cannot read {}", file.display()))?;
    if text.len() as u64 > MAX_REGISTRATION_FILE_BYTES {
        bail!(
            "{} is larger than {MAX_REGISTRATION_FILE_BYTES} bytes; not a registration file",
            file.display()
        );
    }
    let value: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", file.display()))?;
    let listed = match value {
        serde_json::Value::Array(items) => items,
        one => vec![one],
    };
    listed
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let node: CeremonyNode = serde_json::from_value(item).with_context(|| {
                format!(
                    "{} entry {i} is not a node registration (see `welkin key register --help`)",
                    file.display()
                )
            })?;
            node.verified()
                .with_context(|| format!("{} refused", file.display()))
        })
        .collect()
}
