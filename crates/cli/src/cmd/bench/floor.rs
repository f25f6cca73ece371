//! `welkin bench --floor`: the cost of a block with nothing in it.
//!
//! A fresh cluster runs with `idle_wait_ms = 0`, so its leaders propose empty blocks back to
//! back; nothing is submitted. The blocks finalized per second and the per-block stages are
//! the floor every transaction's latency sits on: consensus, marshal's durable delivery, an
//! empty execution and commit, and the checkpoint of every height.

use super::{interrupted, stages, welkin::FreshCluster};
use anyhow::bail;
use serde::Serialize;
use std::{
    path::Path,
    time::{Duration, Instant},
};
use welkin_client::Client;

/// The node setting that makes leaders propose at once, with or without transactions.
const BACK_TO_BACK: &str = "idle_wait_ms = 0";

#[derive(Serialize)]
struct Floor {
    nodes: usize,
    duration_s: f64,
    /// Heights finalized (and applied by the first node) per second.
    blocks_per_s: f64,
    #[serde(flatten)]
    metrics: stages::Breakdown,
    cores: usize,
}

pub(super) fn run(duration: Duration, out: &Path) -> anyhow::Result<()> {
    let cluster = FreshCluster::start_with(BACK_TO_BACK)?;
    let client = Client::new(&cluster.apis[0]);
    let cluster_id = super::super::signing::node_cluster_id(&client)?;
    super::welkin::first_commit(&cluster.apis[0], &cluster_id)?;
    let mut probe = stages::Probe::new(&cluster.apis);
    let before = probe.snapshot();
    let first = client.status()?.height;
    let started = Instant::now();
    eprintln!(
        "measuring the consensus floor for {} s: empty blocks back to back",
        duration.as_secs()
    );
    while started.elapsed() < duration {
        if interrupted() {
            bail!("interrupted");
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    let last = client.status()?.height;
    let elapsed = started.elapsed().as_secs_f64();
    let mut metrics = probe.breakdown(&before);
    // No transactions: only the per-block stages have observations.
    metrics.stages.retain(|figure| figure.count > 0.0);
    let floor = Floor {
        nodes: cluster.apis.len(),
        duration_s: elapsed,
        blocks_per_s: last.saturating_sub(first) as f64 / elapsed,
        metrics,
        cores: super::cores(),
    };
    println!(
        "consensus floor: {:.1} blocks/s ({} blocks in {elapsed:.1} s, empty, back to back)",
        floor.blocks_per_s,
        last.saturating_sub(first)
    );
    if !floor.metrics.is_empty() {
        println!("per block, summed over nodes:");
        stages::print(&floor.metrics);
    }
    std::fs::write(out, serde_json::to_string_pretty(&floor)?)?;
    println!("wrote {}", out.display());
    Ok(())
}
