//! `welkin genesis`: the trusted-dealer key ceremony.

use crate::cli::GenesisArgs;
use anyhow::Context as _;
use commonware_codec::Encode as _;
use welkin_node::ceremony::{self, CeremonyNode};
use welkin_types::ChainParams;

pub(crate) fn run(args: GenesisArgs) -> anyhow::Result<()> {
    let text = std::fs::read_to_string(&args.nodes)
        .with_context(|| format!("cannot read {}", args.nodes.display()))?;
    let nodes: Vec<CeremonyNode> = serde_json::from_str(&text).with_context(|| {
        format!(
            "{} is not a JSON array of nodes (see `welkin genesis --help`)",
            args.nodes.display()
        )
    })?;
    let chain = ChainParams {
        name: args.name,
        ..ChainParams::default()
    };
    let (genesis, shares) = ceremony::deal(
        &mut commonware_utils::sys_rng(),
        nodes,
        chain,
        super::now_ms(),
    )?;
    let shares_dir = args.out_dir.join("shares");
    std::fs::create_dir_all(&shares_dir)
        .with_context(|| format!("cannot create {}", shares_dir.display()))?;
    let genesis_path = args.out_dir.join("genesis.json");
    std::fs::write(&genesis_path, genesis.to_json())
        .with_context(|| format!("cannot write {}", genesis_path.display()))?;
    for (node, share) in genesis.nodes.iter().zip(&shares) {
        let path = shares_dir.join(format!("{}.share", node.name));
        super::write_secret(&path, &serde_json::to_string_pretty(share)?)?;
    }
    println!(
        "wrote {} and {} sealed shares in {}",
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
