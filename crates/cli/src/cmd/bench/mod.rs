//! `welkin bench`: committed transactions per second and latency through the HTTP API, alone
//! or side by side with etcd (`--compare etcd`); or KV v2 through the Vault HTTP API side by
//! side with OpenBao (`--compare openbao`); or transit encrypt, decrypt and sign side by side
//! with OpenBao (`--compare openbao-transit`); or put and get of one large object side by side
//! with Tahoe-LAFS (`--compare tahoe`); or, without a cluster, the object data path on one
//! core (`--workload object-codec`).
//!
//! Transactions are signed before the clock starts (signing is the client's cost, reported
//! separately), then `concurrency` clients each submit requests with `wait=true` to the nodes
//! in turn. A transaction counts when its receipt comes back; its latency is the round trip
//! of the request that carried it (submit to commit, as the client sees it).

mod compare;
mod compare_openbao;
mod compare_tahoe;
mod compare_time;
mod compare_transit;
mod crypto_cost;
mod dkg;
mod etcd;
mod floor;
mod load;
mod object;
mod openbao;
mod ports;
mod stages;
mod tahoe;
mod vault;
mod welkin;

pub(crate) use compare::civil_from_days;

use super::dev;
use crate::cli::{BenchArgs, CompareWith, Workload};
use anyhow::bail;
use serde::Serialize;
use std::{
    sync::atomic::{AtomicBool, Ordering},
    time::Duration,
};
use welkin_client::Client;

/// Seconds per load unless --duration says otherwise: one load alone, and each load of a
/// comparison (which runs seven).
const DEFAULT_DURATION: u64 = 20;
const DEFAULT_COMPARE_DURATION: u64 = 10;
/// Transactions signed per second of load, unless --transactions says otherwise: above what the
/// cluster commits, so that the clients never run out.
const MEMO_RATE: usize = 12_000;
const KEY_EVENT_RATE: usize = 3_000;
/// Seconds of key-state lookups measured after a key-events load.
const LOOKUP_SECONDS: u64 = 10;
/// Identifiers that send the identity-memo workload.
const IDENTITY_SENDERS: usize = 64;

/// Set once Ctrl-C is pressed: loads stop, and the clusters are stopped and removed.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);

fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::Relaxed)
}

/// Catches Ctrl-C so that the benchmark stops its loads and cleans up (the nodes and etcd
/// members, in the same process group, get the signal too); a second Ctrl-C exits at once.
fn watch_interrupts() {
    std::thread::spawn(|| {
        let Ok(runtime) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        runtime.block_on(async {
            while tokio::signal::ctrl_c().await.is_ok() {
                if INTERRUPTED.swap(true, Ordering::Relaxed) {
                    std::process::exit(130);
                }
                eprintln!(
                    "\ninterrupted: stopping the load and the clusters (Ctrl-C again to exit now)"
                );
            }
        });
    });
}

/// Machine cores, as reported with every result.
fn cores() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get())
}

#[derive(Serialize)]
struct Report {
    workload: Workload,
    nodes: usize,
    concurrency: usize,
    batch: usize,
    signed: usize,
    signing_per_s: f64,
    #[serde(flatten)]
    result: load::LoadResult,
    /// Key-state lookups per second on one node (key-events workload).
    #[serde(skip_serializing_if = "Option::is_none")]
    lookups_per_s: Option<f64>,
    /// The per-stage breakdown and fsyncs per block from the nodes' metrics.
    #[serde(flatten)]
    metrics: stages::Breakdown,
    cores: usize,
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.concurrency == 0
        || args.batch == 0
        || args.batch > welkin_types::limits::MAX_SUBMIT_BATCH
    {
        bail!(
            "--concurrency must be positive and --batch between 1 and {}, got {} and {}",
            welkin_types::limits::MAX_SUBMIT_BATCH,
            args.concurrency,
            args.batch
        );
    }
    if args.duration == Some(0) {
        bail!("--duration must be positive, got 0");
    }
    if args.object_mib.is_some() && args.compare != Some(CompareWith::Tahoe) {
        bail!("--object-mib applies only to --compare tahoe");
    }
    watch_interrupts();
    if args.workload == Workload::Dkg {
        if args.compare.is_some() || args.floor || !args.api.is_empty() {
            bail!("--workload dkg runs without a cluster: drop --compare, --floor and --api");
        }
        return dkg::run(&args);
    }
    if args.workload == Workload::ObjectCodec {
        if args.compare.is_some() || args.floor || !args.api.is_empty() {
            bail!(
                "--workload object-codec runs without a cluster: drop --compare, --floor and --api"
            );
        }
        return object::run(&args);
    }
    if args.floor {
        let duration = args.duration.unwrap_or(DEFAULT_COMPARE_DURATION);
        return floor::run(Duration::from_secs(duration), &args.out);
    }
    if args.compare.is_some() {
        let duration = args.duration.unwrap_or(DEFAULT_COMPARE_DURATION);
        return match args.compare {
            Some(CompareWith::OpenBao) => {
                compare_openbao::run(&args, Duration::from_secs(duration))
            }
            Some(CompareWith::OpenBaoTransit) => {
                compare_transit::run(&args, Duration::from_secs(duration))
            }
            Some(CompareWith::Tahoe) => compare_tahoe::run(&args),
            Some(CompareWith::Roughenough) => {
                compare_time::run(&args, Duration::from_secs(duration))
            }
            _ => compare::run(&args, Duration::from_secs(duration)),
        };
    }
    let duration = args.duration.unwrap_or(DEFAULT_DURATION);
    let fresh = if args.api.is_empty() {
        Some(welkin::FreshCluster::start()?)
    } else {
        None
    };
    let apis = fresh.as_ref().map_or(args.api.clone(), |f| f.apis.clone());
    let cluster_id = super::signing::node_cluster_id(&Client::new(&apis[0]))?;
    welkin::first_commit(&apis[0], &cluster_id)?;
    let identities = if args.workload == Workload::IdentityMemo {
        welkin::incept_senders(&Client::new(&apis[0]), &cluster_id, IDENTITY_SENDERS)?
    } else {
        Vec::new()
    };
    let rate = match args.workload {
        Workload::Memo | Workload::IdentityMemo => MEMO_RATE,
        Workload::KeyEvents => KEY_EVENT_RATE,
        Workload::ObjectCodec | Workload::Dkg => unreachable!("returned above"),
    };
    let total = args.transactions.unwrap_or(rate * duration as usize);
    let signed = welkin::sign(args.workload, total, args.batch, &cluster_id, &identities);
    eprintln!(
        "signed in {:.1} s ({:.0}/s); driving load for {duration} s at concurrency {} with \
         batches of {}",
        signed.seconds,
        total as f64 / signed.seconds,
        args.concurrency,
        args.batch
    );
    let mut probe = stages::Probe::new(&apis);
    let before = probe.snapshot();
    let result = load::drive(
        "welkin",
        args.concurrency,
        Duration::from_secs(duration),
        interrupted,
        |w| welkin::submit_worker(&apis[w % apis.len()], signed.batches.clone()),
    );
    let metrics = probe.breakdown(&before);
    if interrupted() {
        bail!("interrupted");
    }
    let lookups_per_s = (args.workload == Workload::KeyEvents && result.committed > 0).then(|| {
        eprintln!(
            "measuring key-state lookups on {} for {LOOKUP_SECONDS} s at concurrency {}",
            apis[0], args.concurrency
        );
        let prefixes = std::sync::Arc::new(signed.prefixes.clone());
        let accepted = prefixes.len().min(result.committed);
        load::drive(
            "lookups",
            args.concurrency,
            Duration::from_secs(LOOKUP_SECONDS),
            interrupted,
            |_| {
                let (client, prefixes) = (Client::new(&apis[0]), prefixes.clone());
                move |i: usize| {
                    let counted = client.key_state(&prefixes[i % accepted]).is_ok();
                    Some(load::Sent {
                        items: 1,
                        counted: usize::from(counted),
                    })
                }
            },
        )
        .per_s
    });
    let report = Report {
        workload: args.workload,
        nodes: apis.len(),
        concurrency: args.concurrency,
        batch: args.batch,
        signed: total,
        signing_per_s: total as f64 / signed.seconds,
        result,
        lookups_per_s,
        metrics,
        cores: cores(),
    };
    let result = &report.result;
    println!(
        "committed {} of {} transactions in {:.1} s: {:.0} tx/s",
        result.committed, result.submitted, result.duration_s, result.per_s
    );
    println!(
        "latency ms (submit to commit): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        result.latency_ms.p50, result.latency_ms.p90, result.latency_ms.p99, result.latency_ms.max
    );
    if result.exhausted {
        println!(
            "the signed transactions ran out before the deadline: pass a larger --transactions"
        );
    }
    if let Some(rate) = report.lookups_per_s {
        println!("key-state lookups on one node: {rate:.0}/s");
    }
    if !report.metrics.is_empty() {
        println!("stages, summed over nodes:");
        stages::print(&report.metrics);
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}
