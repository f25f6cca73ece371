//! `welkin bench --workload dkg`: dealerless key generation and resharing rounds for 4, 7 and
//! 10 nodes, run in this process with every message delivered at once (`welkin_dkg`).
//!
//! What it measures is the computation of a whole round (every node's dealing, checking,
//! acknowledging, log checking and share computation) on one thread, with no network: a
//! lower bound for a round on real machines, where the nodes compute in parallel but wait for
//! each other's messages. Issue 15 asks for rounds under 5 s for 10 nodes.

use super::cores;
use crate::cli::BenchArgs;
use anyhow::Context as _;
use commonware_cryptography::Signer as _;
use serde::Serialize;
use std::time::Instant;
use welkin_dkg::{Round, run_in_memory};
use welkin_types::{Digest, PrivateKey};

/// Cluster sizes measured.
const SIZES: [u64; 3] = [4, 7, 10];

#[derive(Serialize)]
struct Row {
    nodes: u64,
    /// A first key: every node deals to every node.
    dkg_s: f64,
    /// Resharing that key from the same nodes to the same nodes.
    reshare_s: f64,
}

#[derive(Serialize)]
struct Report {
    workload: &'static str,
    construction: &'static str,
    network: &'static str,
    cores: usize,
    rows: Vec<Row>,
}

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let mut rng = commonware_utils::sys_rng();
    let cluster = Digest::from([0; 32]);
    let mut rows = Vec::new();
    println!("nodes   dkg s   reshare s   (one thread, every message delivered at once)");
    for n in SIZES {
        let mut keys: Vec<PrivateKey> = (0..n).map(|i| PrivateKey::from_seed(1000 + i)).collect();
        keys.sort_by_key(|k| k.public_key());
        let publics: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
        let round = Round::new(&cluster, 0, None, publics.clone(), publics.clone())?;
        let started = Instant::now();
        let (output, shares) = run_in_memory(&mut rng, &round, &keys, &[])
            .with_context(|| format!("the {n}-node round failed"))?;
        let dkg_s = started.elapsed().as_secs_f64();
        let reshare = Round::new(&cluster, 1, Some(output.clone()), publics.clone(), publics)?;
        let previous: Vec<_> = shares.into_iter().map(Some).collect();
        let started = Instant::now();
        let (again, _) = run_in_memory(&mut rng, &reshare, &keys, &previous)
            .with_context(|| format!("the {n}-node reshare failed"))?;
        let reshare_s = started.elapsed().as_secs_f64();
        anyhow::ensure!(
            again.public().public() == output.public().public(),
            "the reshare changed the key"
        );
        println!("{n:>5} {dkg_s:>7.3} {reshare_s:>11.3}");
        rows.push(Row {
            nodes: n,
            dkg_s,
            reshare_s,
        });
    }
    let report = Report {
        workload: "dkg",
        construction: "commonware feldman_desmedt (Joint-Feldman DKG, Desmedt resharing), BLS12-381 MinSig",
        network: "none: one process, one thread, every message delivered at once",
        cores: cores(),
        rows,
    };
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
