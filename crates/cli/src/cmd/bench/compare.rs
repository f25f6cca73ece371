//! `welkin bench --compare etcd`: the same loads, from the same load generator, against a fresh
//! Welkin cluster and then a fresh three-member etcd cluster, printed side by side.
//!
//! Loads: 1, 16 and 64 clients with one transaction (or put) per request, then the batched
//! load (--concurrency clients × --batch transactions per request, Welkin only: etcd's JSON
//! gateway takes one put per request). The Welkin cluster is stopped before etcd starts, so
//! the two never share the machine.

use super::{
    MEMO_RATE, cores, etcd, interrupted,
    load::{self, LoadResult},
    stages, welkin,
};
use crate::cli::{BenchArgs, Workload};
use anyhow::bail;
use base64::Engine as _;
use serde::Serialize;
use std::{sync::Arc, time::Duration};
use welkin_client::Client;

/// Clients of the loads with one transaction per request.
const SINGLE_LOADS: [usize; 3] = [1, 16, 64];
/// Most requests one client completes per second with one transaction per request (a round
/// trip takes at least a millisecond): bounds what is signed for the light loads.
const MAX_REQUESTS_PER_CLIENT: usize = 1_000;

/// Each side gets this long of an unmeasured load first (connections, caches, first blocks).
const WARM_UP: Duration = Duration::from_secs(3);
/// Clients of the warm-up load (one transaction per request).
const WARM_UP_CLIENTS: usize = 4;

/// One load of the comparison.
#[derive(Clone, Copy)]
struct Load {
    clients: usize,
    batch: usize,
}

impl Load {
    fn name(&self) -> String {
        let clients = if self.clients == 1 {
            "1 client".to_string()
        } else {
            format!("{} clients", self.clients)
        };
        format!("{clients} x {}", self.batch)
    }

    /// Transactions to sign for `seconds` of this load.
    fn transactions(&self, seconds: u64) -> usize {
        let rate = if self.batch == 1 {
            MEMO_RATE.min(self.clients * MAX_REQUESTS_PER_CLIENT)
        } else {
            MEMO_RATE
        };
        rate * seconds as usize
    }
}

/// The Welkin side of one load.
#[derive(Serialize)]
struct WelkinSide {
    #[serde(flatten)]
    result: LoadResult,
    signed: usize,
    signing_per_s: f64,
    /// The per-stage breakdown and fsyncs per block from the nodes' metrics (empty if they
    /// serve none).
    #[serde(flatten)]
    metrics: stages::Breakdown,
}

/// Both sides of one load.
#[derive(Serialize)]
struct Row {
    load: String,
    clients: usize,
    batch: usize,
    welkin: WelkinSide,
    etcd: Option<LoadResult>,
    /// Welkin's committed tx/s over etcd's puts/s.
    ratio: Option<f64>,
}

#[derive(Serialize)]
struct Versions {
    welkin: &'static str,
    etcd: String,
}

/// The comparison, as written to --out.
#[derive(Serialize)]
struct Comparison {
    date: String,
    cores: usize,
    versions: Versions,
    welkin_nodes: usize,
    etcd_members: usize,
    value_bytes: usize,
    duration_per_load_s: u64,
    loads: Vec<Row>,
}

pub(super) fn run(args: &BenchArgs, duration: Duration) -> anyhow::Result<()> {
    if args.workload != Workload::Memo {
        bail!(
            "--compare etcd drives memo transactions (the counterpart of a put), got --workload {}",
            clap::ValueEnum::to_possible_value(&args.workload).map_or_else(
                || format!("{:?}", args.workload),
                |v| v.get_name().to_string()
            )
        );
    }
    // Checked first, so that a missing etcd fails before the long Welkin half.
    let etcd_version = etcd::ensure_installed()?;
    let mut loads: Vec<Load> = SINGLE_LOADS
        .iter()
        .map(|&clients| Load { clients, batch: 1 })
        .collect();
    loads.push(Load {
        clients: args.concurrency,
        batch: args.batch,
    });
    let (welkin_nodes, welkin) = run_welkin(args, &loads, duration)?;
    let etcd = run_etcd(&loads, duration)?;
    let rows: Vec<Row> = loads
        .iter()
        .zip(welkin)
        .enumerate()
        .map(|(i, (load, welkin))| {
            let etcd = (load.batch == 1).then(|| etcd.get(i).cloned()).flatten();
            let ratio = etcd
                .as_ref()
                .filter(|e| e.per_s > 0.0)
                .map(|e| welkin.result.per_s / e.per_s);
            Row {
                load: load.name(),
                clients: load.clients,
                batch: load.batch,
                welkin,
                etcd,
                ratio,
            }
        })
        .collect();
    let comparison = Comparison {
        date: utc_now(),
        cores: cores(),
        versions: Versions {
            welkin: env!("CARGO_PKG_VERSION"),
            etcd: etcd_version,
        },
        welkin_nodes,
        etcd_members: etcd::MEMBERS,
        value_bytes: welkin::MEMO_BYTES,
        duration_per_load_s: duration.as_secs(),
        loads: rows,
    };
    print(&comparison);
    std::fs::write(&args.out, serde_json::to_string_pretty(&comparison)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Runs every load on Welkin (a fresh cluster, or the nodes given with --api); returns the
/// number of nodes and each load's figures.
fn run_welkin(
    args: &BenchArgs,
    loads: &[Load],
    duration: Duration,
) -> anyhow::Result<(usize, Vec<WelkinSide>)> {
    let fresh = if args.api.is_empty() {
        Some(welkin::FreshCluster::start()?)
    } else {
        None
    };
    let apis = fresh.as_ref().map_or(args.api.clone(), |f| f.apis.clone());
    let cluster_id = super::super::signing::node_cluster_id(&Client::new(&apis[0]))?;
    welkin::first_commit(&apis[0], &cluster_id)?;
    let warm_up = Load {
        clients: WARM_UP_CLIENTS,
        batch: 1,
    };
    let signed = welkin::sign(
        Workload::Memo,
        warm_up.transactions(WARM_UP.as_secs()),
        1,
        &cluster_id,
        &[],
    );
    load::drive(
        "welkin warm-up",
        warm_up.clients,
        WARM_UP,
        interrupted,
        |w| welkin::submit_worker(&apis[w % apis.len()], signed.batches.clone()),
    );
    let mut probe = stages::Probe::new(&apis);
    let mut sides = Vec::with_capacity(loads.len());
    for load in loads {
        let count = args
            .transactions
            .unwrap_or(load.transactions(duration.as_secs()));
        let signed = welkin::sign(Workload::Memo, count, load.batch, &cluster_id, &[]);
        let before = probe.snapshot();
        let result = load::drive(
            &format!("welkin {}", load.name()),
            load.clients,
            duration,
            interrupted,
            |w| welkin::submit_worker(&apis[w % apis.len()], signed.batches.clone()),
        );
        let metrics = probe.breakdown(&before);
        if interrupted() {
            bail!("interrupted");
        }
        sides.push(WelkinSide {
            result,
            signed: signed.count,
            signing_per_s: signed.count as f64 / signed.seconds,
            metrics,
        });
    }
    Ok((apis.len(), sides))
}

/// Runs the loads with one put per request on a fresh etcd cluster.
fn run_etcd(loads: &[Load], duration: Duration) -> anyhow::Result<Vec<LoadResult>> {
    let cluster = etcd::Etcd::start()?;
    let value =
        Arc::new(base64::engine::general_purpose::STANDARD.encode([b'e'; welkin::MEMO_BYTES]));
    let put = |prefix: String| {
        let (cluster, value) = (&cluster, value.clone());
        move |w: usize| {
            etcd::put_worker(
                &cluster.clients[w % cluster.clients.len()],
                &prefix,
                value.clone(),
            )
        }
    };
    load::drive(
        "etcd warm-up",
        WARM_UP_CLIENTS,
        WARM_UP,
        interrupted,
        put("warm-up".into()),
    );
    let mut results = Vec::new();
    for load in loads.iter().filter(|l| l.batch == 1) {
        let result = load::drive(
            &format!("etcd {}", load.name()),
            load.clients,
            duration,
            interrupted,
            put(format!("bench/{}", load.clients)),
        );
        if interrupted() {
            bail!("interrupted");
        }
        results.push(result);
    }
    Ok(results)
}

/// Prints the side-by-side table, then each Welkin load's stage breakdown.
fn print(comparison: &Comparison) {
    println!(
        "\nWelkin {} ({} nodes) vs etcd {} ({} members), {} s per load, {}-byte values, {} cores",
        comparison.versions.welkin,
        comparison.welkin_nodes,
        comparison.versions.etcd,
        comparison.etcd_members,
        comparison.duration_per_load_s,
        comparison.value_bytes,
        comparison.cores
    );
    println!(
        "{:<16} {:>11} {:>8} {:>8}   {:>11} {:>8} {:>8}   {:>11}",
        "load", "Welkin tx/s", "p50 ms", "p99 ms", "etcd puts/s", "p50 ms", "p99 ms", "Welkin/etcd"
    );
    for row in &comparison.loads {
        let w = &row.welkin.result;
        let etcd = row.etcd.as_ref().map_or_else(
            || format!("{:>11} {:>8} {:>8}", "-", "-", "-"),
            |e| {
                format!(
                    "{:>11.0} {:>8.1} {:>8.1}",
                    e.per_s, e.latency_ms.p50, e.latency_ms.p99
                )
            },
        );
        let ratio = row.ratio.map_or("-".to_string(), |r| format!("{r:.2}"));
        println!(
            "{:<16} {:>11.0} {:>8.1} {:>8.1}   {etcd}   {ratio:>11}",
            row.load, w.per_s, w.latency_ms.p50, w.latency_ms.p99
        );
    }
    for row in &comparison.loads {
        let exhausted =
            row.welkin.result.exhausted || row.etcd.as_ref().is_some_and(|e| e.exhausted);
        if exhausted {
            println!(
                "{}: the prepared requests ran out early; pass a larger --transactions",
                row.load
            );
        }
    }
    for row in comparison
        .loads
        .iter()
        .filter(|r| !r.welkin.metrics.is_empty())
    {
        println!("Welkin stages at {}, summed over nodes:", row.load);
        stages::print(&row.welkin.metrics);
    }
}

/// The current UTC time as `YYYY-MM-DDTHH:MM:SSZ`.
pub(super) fn utc_now() -> String {
    let seconds = super::super::now_ms() / 1000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

/// The proleptic Gregorian date `days` after 1970-01-01 (Howard Hinnant's algorithm).
pub(crate) fn civil_from_days(days: u64) -> (u64, u64, u64) {
    let z = days + 719_468;
    let era = z / 146_097;
    let doe = z % 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + u64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn civil_dates_match_known_days() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_785), (2026, 11, 28));
    }

    #[test]
    fn light_loads_sign_what_their_clients_can_send() {
        assert_eq!(
            Load {
                clients: 1,
                batch: 1
            }
            .transactions(10),
            10_000
        );
        assert_eq!(
            Load {
                clients: 64,
                batch: 1
            }
            .transactions(10),
            MEMO_RATE * 10
        );
        assert_eq!(
            Load {
                clients: 1,
                batch: 1
            }
            .name(),
            "1 client x 1"
        );
        assert_eq!(
            Load {
                clients: 32,
                batch: 64
            }
            .name(),
            "32 clients x 64"
        );
    }
}
