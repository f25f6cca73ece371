//! `welkin obj simulate`: a local failure simulation of storage on the real state machine.
//!
//! No cluster and no network: simulated nodes submit transactions to `welkin_state` exactly
//! as real nodes do, in blocks applied with [`welkin_state::apply_to_map`]. Placement,
//! audits, verdict counting, reputation and repair orders are the state machine's own code;
//! the simulation only plays the nodes:
//!
//! - **Failures.** Every epoch each node fails with probability `--fail-rate` (its disk is
//!   lost) and a failed node comes back, with an empty disk, with probability
//!   `--recover-rate`. A `--flap` node is down on odd epochs and up on even ones, its disk
//!   kept; a `--kill` node fails in the first epoch and never comes back.
//! - **Audits.** Each epoch starts with a certified checkpoint signed by 2f+1 nodes that are
//!   up (a real threshold key, dealt from `--seed`; with fewer up, no epoch starts and the
//!   open challenges fail later as unanswered). Every node that is up judges every holder
//!   that is up: it passes if the holder still has the shard on disk, else it fails with the
//!   reason. A holder that is down serves no proof.
//! - **Repairs.** A repair ordered to a node is acknowledged one epoch later if that node is
//!   up and `k` other shards of the object can be read from nodes that are up; the old
//!   holder drops its copy when the order moves the shard away.
//!
//! All randomness comes from `--seed`, so a run is reproducible. An object is lost when
//! fewer than `k` of its shards are left on any disk; `repair_bytes_moved` counts the `k`
//! shards each completed repair reads.

mod engine;

use crate::cli::ObjSimulateArgs;
use anyhow::bail;
use indicatif::{ProgressBar, ProgressStyle};
use serde::Serialize;
use std::io::IsTerminal as _;

/// Most nodes a simulation runs (audit verdicts are counted in a 128-bit set).
const MAX_NODES: u32 = 128;
/// Most objects a simulation stores.
const MAX_OBJECTS: u32 = 10_000;
/// Most epochs a simulation runs.
const MAX_EPOCHS: u64 = 10_000;

/// A checked simulation configuration.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    /// Nodes (2 to 128).
    pub(crate) nodes: u32,
    /// Failure domains: node `i` is in `zone-(i % domains)`.
    pub(crate) domains: u32,
    /// Bytes each node offers.
    pub(crate) capacity: u64,
    /// Objects put at the start.
    pub(crate) objects: u32,
    /// The largest object: sizes are drawn between half of it and all of it.
    pub(crate) object_size: u64,
    /// Data shards.
    pub(crate) k: u16,
    /// Parity shards.
    pub(crate) m: u16,
    /// Audit epochs run.
    pub(crate) epochs: u64,
    /// Chance per epoch that a node that is up fails, its disk lost.
    pub(crate) fail_rate: f64,
    /// Chance per epoch that a failed node comes back (with an empty disk).
    pub(crate) recover_rate: f64,
    /// Nodes down on odd epochs and up on even ones, their disks kept.
    pub(crate) flap: Vec<u32>,
    /// Nodes that fail in the first epoch and never come back.
    pub(crate) kill: Vec<u32>,
    /// The seed of every random choice.
    pub(crate) seed: u64,
}

impl Config {
    /// Checks the flags, with the layout default for the node count where k or m is unset.
    pub(crate) fn from_args(args: &ObjSimulateArgs) -> anyhow::Result<Config> {
        if !(2..=MAX_NODES).contains(&args.nodes) {
            bail!("--nodes {}: simulate 2 to {MAX_NODES} nodes", args.nodes);
        }
        let domains = args.domains.unwrap_or(args.nodes);
        if domains == 0 || domains > args.nodes {
            bail!(
                "--domains {domains}: give 1 to {} (one per node at most)",
                args.nodes
            );
        }
        let default = welkin_object::Layout::default_for(args.nodes as u16);
        let k = args.k.unwrap_or(default.k);
        let m = args.m.unwrap_or(default.m);
        if k == 0 || m == 0 || u32::from(k) + u32::from(m) > args.nodes {
            bail!(
                "--k {k} --m {m}: each must be at least 1 and k + m at most the {} nodes \
                 (a node never holds two shards of one object)",
                args.nodes
            );
        }
        if args.objects > MAX_OBJECTS {
            bail!("--objects {}: at most {MAX_OBJECTS}", args.objects);
        }
        if args.epochs > MAX_EPOCHS {
            bail!("--epochs {}: at most {MAX_EPOCHS}", args.epochs);
        }
        for (flag, rate) in [
            ("--fail-rate", args.fail_rate),
            ("--recover-rate", args.recover_rate),
        ] {
            if !(0.0..=1.0).contains(&rate) {
                bail!("{flag} {rate}: give a probability from 0 to 1");
            }
        }
        for (flag, node) in args
            .flap
            .iter()
            .map(|n| ("--flap", n))
            .chain(args.kill.iter().map(|n| ("--kill", n)))
        {
            if *node >= args.nodes {
                bail!("{flag} {node}: nodes are numbered 0 to {}", args.nodes - 1);
            }
        }
        Ok(Config {
            nodes: args.nodes,
            domains,
            capacity: args.capacity,
            objects: args.objects,
            object_size: args.object_size,
            k,
            m,
            epochs: args.epochs,
            fail_rate: args.fail_rate,
            recover_rate: args.recover_rate,
            flap: args.flap.clone(),
            kill: args.kill.clone(),
            seed: args.seed,
        })
    }
}

/// One node at the end of a simulation.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct NodeReport {
    /// Its index.
    pub(crate) member: u32,
    /// Its failure domain.
    pub(crate) domain: String,
    /// Whether it is up at the end.
    pub(crate) up: bool,
    /// Shards really on its disk.
    pub(crate) shards_on_disk: u64,
    /// Shards the state counts as acknowledged by it.
    pub(crate) shards_placed: u64,
    /// Its challenges passed.
    pub(crate) audits_passed: u64,
    /// Its challenges failed.
    pub(crate) audits_failed: u64,
    /// The share of its last 64 challenges passed (the state's reputation).
    pub(crate) reputation_percent: u8,
}

/// What a simulation found (the `--json` output).
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub(crate) struct Report {
    /// The seed, to run it again.
    pub(crate) seed: u64,
    /// Nodes.
    pub(crate) nodes: u32,
    /// Failure domains.
    pub(crate) domains: u32,
    /// Data shards.
    pub(crate) k: u16,
    /// Parity shards.
    pub(crate) m: u16,
    /// Epochs run.
    pub(crate) epochs: u64,
    /// Objects the cluster accepted.
    pub(crate) objects_stored: u64,
    /// Objects it refused for want of space.
    pub(crate) objects_refused: u64,
    /// Objects that at some point had fewer than k shards on any disk (unrecoverable).
    pub(crate) objects_lost: u64,
    /// Objects with every shard healthy, in the state and on disk, at the end.
    pub(crate) objects_at_full_strength: u64,
    /// The fewest shards of one object on disk at any point.
    pub(crate) min_healthy_shards: u64,
    /// Challenges passed, over all nodes.
    pub(crate) audits_passed: u64,
    /// Challenges failed, over all nodes.
    pub(crate) audits_failed: u64,
    /// Epochs that could not start: fewer than 2f+1 nodes were up to certify the checkpoint.
    pub(crate) epochs_without_seed: u64,
    /// Repair orders the state made.
    pub(crate) repair_orders_made: u64,
    /// Repairs acknowledged.
    pub(crate) repairs_completed: u64,
    /// Orders that expired unacknowledged.
    pub(crate) repairs_expired: u64,
    /// Orders still open at the end.
    pub(crate) open_repair_orders: u64,
    /// Bytes read by completed repairs (k shards each).
    pub(crate) repair_bytes_moved: u64,
    /// Transactions of the simulated nodes the state refused (0 unless the model is wrong).
    pub(crate) refused_transactions: u64,
    /// The first refusal's reason.
    pub(crate) first_refusal: Option<String>,
    /// Each node at the end.
    pub(crate) node_reports: Vec<NodeReport>,
}

impl Report {
    fn new(config: &Config) -> Report {
        Report {
            seed: config.seed,
            nodes: config.nodes,
            domains: config.domains,
            k: config.k,
            m: config.m,
            epochs: config.epochs,
            objects_stored: 0,
            objects_refused: 0,
            objects_lost: 0,
            objects_at_full_strength: 0,
            min_healthy_shards: 0,
            audits_passed: 0,
            audits_failed: 0,
            epochs_without_seed: 0,
            repair_orders_made: 0,
            repairs_completed: 0,
            repairs_expired: 0,
            open_repair_orders: 0,
            repair_bytes_moved: 0,
            refused_transactions: 0,
            first_refusal: None,
            node_reports: Vec::new(),
        }
    }
}

/// Runs a simulation, calling `on_epoch` after each epoch.
pub(crate) fn simulate(config: &Config, mut on_epoch: impl FnMut(u64)) -> Report {
    let mut sim = engine::Sim::new(config);
    sim.setup();
    for epoch in 1..=config.epochs {
        sim.epoch(epoch);
        on_epoch(epoch);
    }
    sim.finish()
}

/// `welkin obj simulate`.
pub(crate) fn run(args: ObjSimulateArgs) -> anyhow::Result<()> {
    let config = Config::from_args(&args)?;
    let progress = if !args.json && std::io::stderr().is_terminal() {
        let bar = ProgressBar::new(config.epochs);
        bar.set_style(
            ProgressStyle::with_template("epoch {pos}/{len} [{bar:30}] eta {eta}")
                .expect("a valid template")
                .progress_chars("=> "),
        );
        bar
    } else {
        ProgressBar::hidden()
    };
    let report = simulate(&config, |epoch| progress.set_position(epoch));
    progress.finish_and_clear();
    if args.json {
        return crate::output::json(&report);
    }
    print(&report);
    Ok(())
}

fn print(r: &Report) {
    use super::obj::bytes;
    println!(
        "{} nodes in {} failure domains, {}+{} shards, {} epochs, seed {}",
        r.nodes, r.domains, r.k, r.m, r.epochs, r.seed
    );
    println!(
        "objects    {} stored, {} refused (no room), {} LOST, {} at full strength at the end",
        r.objects_stored, r.objects_refused, r.objects_lost, r.objects_at_full_strength
    );
    println!(
        "shards     the fewest healthy shards of any object at any point: {} (k = {})",
        r.min_healthy_shards, r.k
    );
    println!(
        "audits     {} passed, {} failed; {} epochs without a certified seed",
        r.audits_passed, r.audits_failed, r.epochs_without_seed
    );
    println!(
        "repairs    {} ordered, {} completed, {} expired, {} open; {} read",
        r.repair_orders_made,
        r.repairs_completed,
        r.repairs_expired,
        r.open_repair_orders,
        bytes(r.repair_bytes_moved)
    );
    println!(
        "{:>5}  {:<8}  {:<4}  {:>7}  {:>7}  {:>13}  {:>10}",
        "node", "domain", "up", "on disk", "placed", "audits ok/bad", "reputation"
    );
    for node in &r.node_reports {
        println!(
            "{:>5}  {:<8}  {:<4}  {:>7}  {:>7}  {:>13}  {:>9}%",
            node.member,
            node.domain,
            if node.up { "yes" } else { "no" },
            node.shards_on_disk,
            node.shards_placed,
            format!("{}/{}", node.audits_passed, node.audits_failed),
            node.reputation_percent
        );
    }
    if let Some(reason) = &r.first_refusal {
        println!(
            "the state refused {} of the simulated nodes' transactions, first: {reason}",
            r.refused_transactions
        );
    }
}

#[cfg(test)]
mod tests;
