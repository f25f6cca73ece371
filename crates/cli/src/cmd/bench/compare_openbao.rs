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
    cores, crypto_cost, interrupted,
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
    /// Measured: CPU milliseconds (user and system) all of a side's server processes spent
    /// per operation counted during the load; absent for a cluster given with --api.
    welkin_cpu_ms_per_op: Option<f64>,
    openbao_cpu_ms_per_op: Option<f64>,
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
    /// The crypto of a write and a read, measured in the same run, and the ceiling it implies.
    crypto: crypto_cost::CryptoCosts,
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
    // Measured first, while no cluster runs, so that the figures are the steps' own.
    eprintln!("measuring the crypto of a write and a read (a few seconds)");
    let crypto = crypto_cost::measure(cores())?;
    let openbao = {
        let cluster = openbao::OpenBao::start(&bao)?;
        run_side(
            "openbao",
            &cluster.addrs,
            &cluster.token,
            &cluster.pids(),
            duration,
        )?
    };
    let (welkin_nodes, welkin) = match external_token {
        Some(token) => (
            args.api.len(),
            run_side("welkin", &args.api, &token, &[], duration)?,
        ),
        None => {
            let cluster = welkin::FreshCluster::start()?;
            let token = cluster.root_token()?;
            let results = run_side("welkin", &cluster.apis, &token, &cluster.pids(), duration)?;
            (cluster.apis.len(), results)
        }
    };
    let loads = LOADS
        .iter()
        .zip(welkin.into_iter().zip(openbao))
        .map(
            |(&(op, clients), ((welkin, welkin_cpu), (openbao, openbao_cpu)))| Row {
                load: name(op, clients),
                welkin_cpu_ms_per_op: welkin_cpu,
                openbao_cpu_ms_per_op: openbao_cpu,
                op,
                clients,
                ratio: ratio(welkin.per_s, openbao.per_s),
                p50_ratio: ratio(welkin.latency_ms.p50, openbao.latency_ms.p50),
                p99_ratio: ratio(welkin.latency_ms.p99, openbao.latency_ms.p99),
                welkin,
                openbao,
            },
        )
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
        crypto,
    };
    print(&comparison);
    std::fs::write(&args.out, serde_json::to_string_pretty(&comparison)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// `welkin / openbao`, if OpenBao's figure is positive.
pub(super) fn ratio(welkin: f64, openbao: f64) -> Option<f64> {
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
/// in the order of [`LOADS`], with the CPU milliseconds the processes `pids` spent per
/// operation counted (none without pids).
fn run_side(
    side: &str,
    addrs: &[String],
    token: &str,
    pids: &[u32],
    duration: Duration,
) -> anyhow::Result<Vec<(LoadResult, Option<f64>)>> {
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
        let cpu_before = cpu_seconds(pids);
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
        let cpu = match (cpu_before, cpu_seconds(pids)) {
            (Some(before), Some(after)) if result.committed > 0 => {
                Some((after - before) * 1_000.0 / result.committed as f64)
            }
            _ => None,
        };
        results.push((result, cpu));
    }
    Ok(results)
}

/// Linux reports process CPU time in ticks of `USER_HZ`, which is 100 on every architecture
/// the kernel exposes to user space this way (`getconf CLK_TCK`).
const USER_HZ: f64 = 100.0;

/// User and system CPU seconds spent so far by the processes `pids` (all their threads), from
/// `/proc/PID/stat`; `None` without pids or where that is unreadable.
pub(super) fn cpu_seconds(pids: &[u32]) -> Option<f64> {
    if pids.is_empty() {
        return None;
    }
    let mut ticks = 0u64;
    for pid in pids {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        ticks += process_ticks(&stat)?;
    }
    Some(ticks as f64 / USER_HZ)
}

/// utime + stime (fields 14 and 15) of a `/proc/PID/stat` line; the command name (field 2)
/// is in parentheses and may hold spaces, so fields are counted after its closing one.
fn process_ticks(stat: &str) -> Option<u64> {
    let after_name = &stat[stat.rfind(')')? + 1..];
    let mut fields = after_name.split_whitespace().skip(11);
    let utime: u64 = fields.next()?.parse().ok()?;
    let stime: u64 = fields.next()?.parse().ok()?;
    Some(utime + stime)
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
    let heaviest = |op: Op| {
        comparison
            .loads
            .iter()
            .filter(|r| r.op == op)
            .max_by_key(|r| r.clients)
            .map(|r| r.welkin.per_s)
    };
    let cpu = |r: Option<f64>| r.map_or("-".to_string(), |ms| format!("{ms:.2}"));
    println!(
        "\nserver CPU per operation, measured (user + system time of all servers over the \
         load, per operation counted):"
    );
    println!("{:<18} {:>12} {:>12}", "load", "Welkin ms", "OpenBao ms");
    for row in &comparison.loads {
        println!(
            "{:<18} {:>12} {:>12}",
            row.load,
            cpu(row.welkin_cpu_ms_per_op),
            cpu(row.openbao_cpu_ms_per_op)
        );
    }
    crypto_cost::print(&comparison.crypto, heaviest(Op::Write), heaviest(Op::Read));
    for (op, crypto_ms) in [
        (Op::Write, comparison.crypto.write_cluster_ms),
        (Op::Read, comparison.crypto.read_cluster_ms),
    ] {
        let heaviest = comparison
            .loads
            .iter()
            .filter(|r| r.op == op)
            .max_by_key(|r| r.clients);
        if let Some((row, cpu)) = heaviest.and_then(|r| Some((r, r.welkin_cpu_ms_per_op?))) {
            println!(
                "measured: Welkin's nodes spent {cpu:.2} ms of CPU per operation in {}; the \
                 crypto above is {:.0}% of it",
                row.load,
                100.0 * crypto_ms / cpu
            );
        }
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

    #[test]
    fn process_cpu_is_user_plus_system_time_after_the_name() {
        // A command name with a space and a parenthesis, as the kernel writes it.
        let stat = "4242 (bao (x) y) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 75 0 0 20 0 9";
        assert_eq!(process_ticks(stat), Some(325));
        assert_eq!(process_ticks("4242 (cut short) S 1 2"), None);
        // This process's own figure reads.
        assert!(cpu_seconds(&[std::process::id()]).is_some());
        assert_eq!(cpu_seconds(&[]), None);
    }
}
