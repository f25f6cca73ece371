//! `welkin bench --compare openbao`: KV v2 writes and reads through the Vault HTTP API, from the
//! same load generator, against a fresh three-server OpenBao cluster with integrated Raft and
//! then a fresh Welkin cluster, printed side by side.
//!
//! Loads: writes at 1 and 64 clients, then reads at 1 and 64 clients of keys written before
//! the clock started. OpenBao is stopped before Welkin starts, so the two never share the
//! machine. Clients go round-robin over the servers on both sides; OpenBao's standbys forward
//! every request to the active server, Welkin's nodes each order it through consensus.

use super::{
    compare::utc_now,
    cores, interrupted,
    load::{self, LoadResult},
    openbao, vault, welkin,
};
use crate::cli::BenchArgs;
use anyhow::{Context as _, bail};
use serde::Serialize;
use std::time::{Duration, Instant};

/// What a load does.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Write,
    Read,
}

/// The loads, in the order both sides run them: writes first, so that reads see a store with
/// data in it.
const LOADS: [(Op, usize); 4] = [
    (Op::Write, 1),
    (Op::Write, 64),
    (Op::Read, 1),
    (Op::Read, 64),
];
/// Keys written before the read loads, which read them in turn.
const READ_KEYS: usize = 256;
/// Clients that write the keys for the read loads.
const PREWRITE_CLIENTS: usize = 16;
/// Longest the keys for the read loads may take to write.
const PREWRITE_TIMEOUT: Duration = Duration::from_secs(120);
/// Each side gets this long of unmeasured writes first (connections, caches, first blocks).
const WARM_UP: Duration = Duration::from_secs(3);
/// Clients of the warm-up load.
const WARM_UP_CLIENTS: usize = 4;
/// How long a fresh side may take to accept its first write.
const FIRST_WRITE_TIMEOUT: Duration = Duration::from_secs(60);
/// The goals of issue 11, checked against what is measured.
const WRITE_RATIO_GOAL: f64 = 3.0;
const READS_GOAL: f64 = 2_000.0;
const READ_P50_GOAL_MS: f64 = 50.0;
/// What the table says about where requests go.
const ROUTING_NOTE: &str = "clients go round-robin over all servers on both sides; OpenBao's \
    standbys forward each request to the active server";

/// Both sides of one load.
#[derive(Serialize)]
struct Row {
    load: String,
    op: Op,
    clients: usize,
    welkin: LoadResult,
    openbao: LoadResult,
    /// Welkin's operations per second over OpenBao's.
    ratio: Option<f64>,
    /// Welkin's p50 and p99 latency over OpenBao's.
    p50_ratio: Option<f64>,
    p99_ratio: Option<f64>,
}

#[derive(Serialize)]
struct Versions {
    welkin: &'static str,
    openbao: &'static str,
}

/// The comparison, as written to --out.
#[derive(Serialize)]
struct Comparison {
    date: String,
    cores: usize,
    versions: Versions,
    welkin_nodes: usize,
    openbao_servers: usize,
    value_bytes: usize,
    read_keys: usize,
    duration_per_load_s: u64,
    routing: &'static str,
    loads: Vec<Row>,
}

pub(super) fn run(args: &BenchArgs, duration: Duration) -> anyhow::Result<()> {
    // With --api, the Welkin side is a running cluster and the token comes from the
    // environment, as for any Vault client; checked first so that a mistake fails at once.
    let external_token = if args.api.is_empty() {
        None
    } else {
        Some(
            std::env::var("VAULT_TOKEN")
                .context("--compare openbao with --api needs the cluster's token in VAULT_TOKEN")?,
        )
    };
    let bao = openbao::ensure_installed()?;
    let openbao = {
        let cluster = openbao::OpenBao::start(&bao)?;
        run_side("openbao", &cluster.addrs, &cluster.token, duration)?
    };
    let (welkin_nodes, welkin) = match external_token {
        Some(token) => (
            args.api.len(),
            run_side("welkin", &args.api, &token, duration)?,
        ),
        None => {
            let cluster = welkin::FreshCluster::start()?;
            let token = cluster.root_token()?;
            let results = run_side("welkin", &cluster.apis, &token, duration)?;
            (cluster.apis.len(), results)
        }
    };
    let loads = LOADS
        .iter()
        .zip(welkin.into_iter().zip(openbao))
        .map(|(&(op, clients), (welkin, openbao))| Row {
            load: name(op, clients),
            op,
            clients,
            ratio: ratio(welkin.per_s, openbao.per_s),
            p50_ratio: ratio(welkin.latency_ms.p50, openbao.latency_ms.p50),
            p99_ratio: ratio(welkin.latency_ms.p99, openbao.latency_ms.p99),
            welkin,
            openbao,
        })
        .collect();
    let comparison = Comparison {
        date: utc_now(),
        cores: cores(),
        versions: Versions {
            welkin: env!("CARGO_PKG_VERSION"),
            openbao: openbao::VERSION,
        },
        welkin_nodes,
        openbao_servers: openbao::SERVERS,
        value_bytes: vault::VALUE_BYTES,
        read_keys: READ_KEYS,
        duration_per_load_s: duration.as_secs(),
        routing: ROUTING_NOTE,
        loads,
    };
    print(&comparison);
    std::fs::write(&args.out, serde_json::to_string_pretty(&comparison)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// `welkin / openbao`, if OpenBao's figure is positive.
fn ratio(welkin: f64, openbao: f64) -> Option<f64> {
    (openbao > 0.0).then(|| welkin / openbao)
}

fn name(op: Op, clients: usize) -> String {
    let op = match op {
        Op::Write => "writes",
        Op::Read => "reads",
    };
    if clients == 1 {
        format!("{op}, 1 client")
    } else {
        format!("{op}, {clients} clients")
    }
}

/// Runs every load against the servers at `addrs` with `token`; returns each load's figures
/// in the order of [`LOADS`].
fn run_side(
    side: &str,
    addrs: &[String],
    token: &str,
    duration: Duration,
) -> anyhow::Result<Vec<LoadResult>> {
    let value = vault::value();
    first_write(side, &addrs[0], token)?;
    load::drive(
        &format!("{side} warm-up"),
        WARM_UP_CLIENTS,
        WARM_UP,
        interrupted,
        |w| vault::write_worker(&addrs[w % addrs.len()], token, "warm-up", value.clone()),
    );
    let mut results = Vec::with_capacity(LOADS.len());
    let mut prewritten = false;
    for &(op, clients) in &LOADS {
        if op == Op::Read && !prewritten {
            prewrite(side, addrs, token)?;
            prewritten = true;
        }
        let label = format!("{side} {}", name(op, clients));
        let result = match op {
            Op::Write => load::drive(&label, clients, duration, interrupted, |w| {
                let prefix = format!("c{clients}");
                vault::write_worker(&addrs[w % addrs.len()], token, &prefix, value.clone())
            }),
            Op::Read => load::drive(&label, clients, duration, interrupted, |w| {
                vault::read_worker(
                    &addrs[w % addrs.len()],
                    token,
                    "read",
                    READ_KEYS,
                    value.clone(),
                )
            }),
        };
        if interrupted() {
            bail!("interrupted");
        }
        results.push(result);
    }
    Ok(results)
}

/// Writes one key, retrying until it counts: a fresh side answers before it can commit.
fn first_write(side: &str, addr: &str, token: &str) -> anyhow::Result<()> {
    let mut write = vault::write_worker(addr, token, "first", vault::value());
    let deadline = Instant::now() + FIRST_WRITE_TIMEOUT;
    while write(0).is_none_or(|sent| sent.counted == 0) {
        if interrupted() {
            bail!("interrupted");
        }
        if Instant::now() > deadline {
            bail!(
                "{side} at {addr} did not accept a KV v2 write within {} s",
                FIRST_WRITE_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    Ok(())
}

/// Writes the [`READ_KEYS`] keys the read loads read, and checks that every one counted.
fn prewrite(side: &str, addrs: &[String], token: &str) -> anyhow::Result<()> {
    let value = vault::value();
    let written = load::drive(
        &format!("{side} writing {READ_KEYS} keys to read"),
        PREWRITE_CLIENTS,
        PREWRITE_TIMEOUT,
        interrupted,
        |w| {
            let mut write =
                vault::write_worker(&addrs[w % addrs.len()], token, "read", value.clone());
            move |index| {
                if index < READ_KEYS {
                    write(index)
                } else {
                    None
                }
            }
        },
    );
    if interrupted() {
        bail!("interrupted");
    }
    if written.committed != READ_KEYS {
        bail!(
            "{side}: only {} of the {READ_KEYS} keys to read were written",
            written.committed
        );
    }
    Ok(())
}

/// Prints the side-by-side table and how the figures stand against the goals.
fn print(comparison: &Comparison) {
    println!(
        "\nKV v2 through the Vault HTTP API: Welkin {} ({} nodes) vs OpenBao {} ({} servers, \
         integrated Raft), {} s per load, {}-byte values, {} cores",
        comparison.versions.welkin,
        comparison.welkin_nodes,
        comparison.versions.openbao,
        comparison.openbao_servers,
        comparison.duration_per_load_s,
        comparison.value_bytes,
        comparison.cores
    );
    println!("{}", comparison.routing);
    println!(
        "{:<18} {:>9} {:>8} {:>8} {:>6}   {:>9} {:>8} {:>8} {:>6}   {:>6} {:>6} {:>6}",
        "load",
        "Welkin/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "OpenBao/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "rate x",
        "p50 x",
        "p99 x"
    );
    println!(
        "{:<18} (x: Welkin over OpenBao; errors: requests that did not count)",
        ""
    );
    let side = |r: &LoadResult| {
        format!(
            "{:>9.0} {:>8.1} {:>8.1} {:>6}",
            r.per_s, r.latency_ms.p50, r.latency_ms.p99, r.rejected
        )
    };
    for row in &comparison.loads {
        let x = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
        println!(
            "{:<18} {}   {}   {:>6} {:>6} {:>6}",
            row.load,
            side(&row.welkin),
            side(&row.openbao),
            x(row.ratio),
            x(row.p50_ratio),
            x(row.p99_ratio)
        );
    }
    for row in comparison.loads.iter().filter(|r| r.op == Op::Write) {
        let met = row.ratio.is_some_and(|r| r >= WRITE_RATIO_GOAL);
        println!(
            "goal: Welkin {} at {WRITE_RATIO_GOAL}x OpenBao or more: {}",
            row.load,
            if met { "met" } else { "not met" }
        );
    }
    for row in comparison.loads.iter().filter(|r| r.op == Op::Read) {
        let met = row.welkin.per_s >= READS_GOAL && row.welkin.latency_ms.p50 < READ_P50_GOAL_MS;
        println!(
            "goal: Welkin {} at {READS_GOAL:.0}/s or more with p50 under {READ_P50_GOAL_MS:.0} ms: {}",
            row.load,
            if met { "met" } else { "not met" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loads_write_before_they_read_at_one_and_64_clients() {
        let names: Vec<String> = LOADS.iter().map(|&(op, c)| name(op, c)).collect();
        assert_eq!(
            names,
            [
                "writes, 1 client",
                "writes, 64 clients",
                "reads, 1 client",
                "reads, 64 clients"
            ]
        );
        let first_read = LOADS.iter().position(|&(op, _)| op == Op::Read);
        assert_eq!(first_read, Some(2));
    }
}
