//! `welkin bench`: committed transactions per second and latency through the HTTP API.
//!
//! Transactions are signed before the clock starts (signing is the client's cost, reported
//! separately), then `concurrency` clients each submit batches with `wait=true` to the nodes
//! in turn. A transaction counts when its receipt comes back; its latency is the round trip
//! of the request that carried it (submit to commit, as the client sees it).

use super::dev::LocalCluster;
use crate::cli::{BenchArgs, Workload};
use anyhow::bail;
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use serde::Serialize;
use std::{
    sync::{
        Arc, Mutex,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};
use welkin_client::Client;
use welkin_types::{Payload, PrivateKey, Sender, Transaction, api::TxState};

#[derive(Serialize)]
struct Report {
    workload: Workload,
    nodes: usize,
    concurrency: usize,
    batch: usize,
    duration_s: f64,
    signed: usize,
    signing_per_s: f64,
    submitted: usize,
    committed: usize,
    rejected: usize,
    committed_per_s: f64,
    latency_ms: Latency,
    /// Key-state lookups per second on one node (key-events workload).
    #[serde(skip_serializing_if = "Option::is_none")]
    lookups_per_s: Option<f64>,
    cores: usize,
}

/// The inception of a new single-key identifier, as a key event payload; and its prefix.
fn inception(seed: &[u8; 32]) -> (Payload, String) {
    use welkin_keri::{InceptionBuilder, Signer, Threshold, sign, signed};
    let current = Signer::new(seed);
    let mut next_seed = *seed;
    next_seed[0] ^= 0xff;
    let event = InceptionBuilder::new(vec![current.verkey()])
        .next(
            vec![Signer::new(&next_seed).verkey().next_digest()],
            Threshold::Simple(1),
        )
        .build();
    let prefix = event.prefix().qb64();
    let signatures = sign(&event, &[current]);
    let bytes = signed(event, signatures)
        .to_bytes()
        .expect("a built event encodes");
    (Payload::KeyEvent(bytes), prefix)
}

/// Incepts `count` single-key identifiers and waits for them: the senders of the
/// identity-memo workload, with their signing keys.
fn incept_senders(
    client: &Client,
    cluster_id: &welkin_types::Digest,
    count: usize,
) -> anyhow::Result<Vec<(Sender, PrivateKey)>> {
    eprintln!("incepting {count} identifiers to send from...");
    let submitter =
        welkin_node::ceremony::NodeKey::generate(&mut commonware_utils::sys_rng()).signer;
    let run_seed = welkin_node::ceremony::random_seed();
    let mut senders = Vec::with_capacity(count);
    let mut batch = Vec::with_capacity(count);
    for i in 0..count {
        let mut seed = *run_seed;
        seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let (payload, prefix) = inception(&seed);
        let key = welkin_types::decode::<PrivateKey>(&seed)
            .map_err(|e| anyhow::anyhow!("a 32-byte seed is an ed25519 key: {e}"))?;
        let tx = Transaction {
            sender: Sender::Key(submitter.public_key()),
            nonce: i as u64,
            expiry_ms: super::now_ms() + 120_000,
            payload,
        }
        .sign(&submitter, cluster_id);
        batch.push(hex::encode(tx.encode()));
        let signers = vec![welkin_types::IndexedKey {
            index: 0,
            key: key.public_key(),
        }];
        senders.push((Sender::Identifier { prefix, signers }, key));
    }
    let result = client.submit_encoded(batch, Some(Duration::from_secs(60)))?;
    let applied = result
        .results
        .iter()
        .filter(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.receipt.is_some_and(|r| r.outcome.is_applied()))
        })
        .count();
    if applied != count {
        bail!("only {applied} of {count} sender identifiers were incepted");
    }
    Ok(senders)
}

/// Key-state lookups per second against `api` for `seconds`, from `concurrency` clients.
fn lookups(api: &str, prefixes: &[String], concurrency: usize, seconds: u64) -> f64 {
    let prefixes = Arc::new(prefixes.to_vec());
    let done = Arc::new(AtomicUsize::new(0));
    let deadline = Instant::now() + Duration::from_secs(seconds);
    let started = Instant::now();
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let (client, prefixes, done) = (Client::new(api), prefixes.clone(), done.clone());
            std::thread::spawn(move || {
                let mut i = w;
                while Instant::now() < deadline {
                    if client.key_state(&prefixes[i % prefixes.len()]).is_ok() {
                        done.fetch_add(1, Ordering::Relaxed);
                    }
                    i += concurrency;
                }
            })
        })
        .collect();
    for worker in workers {
        let _ = worker.join();
    }
    done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64()
}

#[derive(Serialize)]
struct Latency {
    p50: f64,
    p90: f64,
    p99: f64,
    max: f64,
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

pub(crate) fn run(args: BenchArgs) -> anyhow::Result<()> {
    if args.concurrency == 0
        || args.batch == 0
        || args.batch > welkin_types::limits::MAX_SUBMIT_BATCH
    {
        bail!(
            "--concurrency must be positive and --batch between 1 and {}",
            welkin_types::limits::MAX_SUBMIT_BATCH
        );
    }
    let temp;
    let mut processes = None;
    let apis = if args.api.is_empty() {
        temp = std::env::temp_dir().join(format!("welkin-bench-{}", std::process::id()));
        let cluster = LocalCluster::create_or_load(&temp, 4, 18_700)?;
        eprintln!("starting a fresh 4-node cluster in {}", temp.display());
        processes = Some(cluster.spawn(false)?);
        cluster.apis()
    } else {
        args.api.clone()
    };
    let cluster_id = super::signing::node_cluster_id(&Client::new(&apis[0]))?;

    let rate = match args.workload {
        Workload::Memo | Workload::IdentityMemo => 12_000,
        Workload::KeyEvents => 3_000,
    };
    let identities = if args.workload == Workload::IdentityMemo {
        incept_senders(&Client::new(&apis[0]), &cluster_id, 64)?
    } else {
        Vec::new()
    };
    let total = args.transactions.unwrap_or(rate * args.duration as usize);
    let mut prefixes = Vec::new();
    eprintln!("signing {total} transactions...");
    let signers: Vec<PrivateKey> = (0..64)
        .map(|_| welkin_node::ceremony::NodeKey::generate(&mut commonware_utils::sys_rng()).signer)
        .collect();
    let expiry = super::now_ms() + 540_000;
    let start = Instant::now();
    let run_seed = welkin_node::ceremony::random_seed();
    let encoded: Vec<String> = (0..total)
        .map(|i| {
            let (sender, key) = match identities.get(i % 64) {
                Some((sender, key)) => (sender.clone(), key),
                None => {
                    let key = &signers[i % signers.len()];
                    (Sender::Key(key.public_key()), key)
                }
            };
            let payload = match args.workload {
                Workload::Memo | Workload::IdentityMemo => {
                    Payload::Memo((i as u64).to_be_bytes().to_vec())
                }
                Workload::KeyEvents => {
                    let mut seed = *run_seed;
                    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    let (payload, prefix) = inception(&seed);
                    if prefixes.len() < 10_000 {
                        prefixes.push(prefix);
                    }
                    payload
                }
            };
            let tx = Transaction {
                sender,
                nonce: i as u64,
                expiry_ms: expiry,
                payload,
            }
            .sign(key, &cluster_id);
            hex::encode(tx.encode())
        })
        .collect();
    let signing = start.elapsed().as_secs_f64();
    eprintln!(
        "signed in {signing:.1} s ({:.0}/s); driving load for {} s at concurrency {} with batches of {}",
        total as f64 / signing,
        args.duration,
        args.concurrency,
        args.batch
    );

    let batches: Arc<Vec<Vec<String>>> =
        Arc::new(encoded.chunks(args.batch).map(|c| c.to_vec()).collect());
    let next = Arc::new(AtomicUsize::new(0));
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let counts = Arc::new(Mutex::new((0usize, 0usize, 0usize)));
    let deadline = Instant::now() + Duration::from_secs(args.duration);
    let started = Instant::now();
    let workers: Vec<_> = (0..args.concurrency)
        .map(|w| {
            let client = Client::new(&apis[w % apis.len()]);
            let (batches, next, latencies, counts) = (
                batches.clone(),
                next.clone(),
                latencies.clone(),
                counts.clone(),
            );
            std::thread::spawn(move || {
                while Instant::now() < deadline {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    let Some(batch) = batches.get(index) else {
                        break;
                    };
                    let sent = Instant::now();
                    let result =
                        client.submit_encoded(batch.clone(), Some(Duration::from_secs(30)));
                    let latency = sent.elapsed().as_secs_f64() * 1000.0;
                    let mut committed = 0;
                    if let Ok(result) = &result {
                        // Committed and applied: a key event the identity module refused
                        // does not count.
                        committed = result
                            .results
                            .iter()
                            .filter(|r| {
                                r.status.as_ref().is_some_and(|s| {
                                    s.state == TxState::Committed
                                        && s.receipt.is_some_and(|r| r.outcome.is_applied())
                                })
                            })
                            .count();
                    }
                    latencies
                        .lock()
                        .expect("latency lock")
                        .extend(std::iter::repeat_n(latency, committed));
                    let mut counts = counts.lock().expect("count lock");
                    counts.0 += batch.len();
                    counts.1 += committed;
                    counts.2 += batch.len() - committed;
                }
            })
        })
        .collect();
    let mut last = 0;
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_secs(1));
        let committed = counts.lock().expect("count lock").1;
        eprint!(
            "\r{:>4.0} s  committed {committed:>9}  ({:>7.0}/s now)",
            started.elapsed().as_secs_f64(),
            (committed - last) as f64
        );
        last = committed;
    }
    eprintln!();
    for worker in workers {
        let _ = worker.join();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (submitted, committed, rejected) = *counts.lock().expect("count lock");
    let lookups_per_s = (args.workload == Workload::KeyEvents && committed > 0).then(|| {
        eprintln!(
            "measuring key-state lookups on {} for 10 s at concurrency {}",
            apis[0], args.concurrency
        );
        let accepted = &prefixes[..prefixes.len().min(committed)];
        lookups(&apis[0], accepted, args.concurrency, 10)
    });
    let mut sorted = latencies.lock().expect("latency lock").clone();
    sorted.sort_by(|a, b| a.total_cmp(b));
    let report = Report {
        workload: args.workload,
        nodes: apis.len(),
        concurrency: args.concurrency,
        batch: args.batch,
        duration_s: elapsed,
        signed: total,
        signing_per_s: total as f64 / signing,
        submitted,
        committed,
        rejected,
        committed_per_s: committed as f64 / elapsed,
        latency_ms: Latency {
            p50: percentile(&sorted, 0.50),
            p90: percentile(&sorted, 0.90),
            p99: percentile(&sorted, 0.99),
            max: sorted.last().copied().unwrap_or(0.0),
        },
        lookups_per_s,
        cores: std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(1),
    };
    println!(
        "committed {committed} of {submitted} transactions in {elapsed:.1} s: {:.0} tx/s",
        report.committed_per_s
    );
    println!(
        "latency ms (submit to commit): p50 {:.1}  p90 {:.1}  p99 {:.1}  max {:.1}",
        report.latency_ms.p50, report.latency_ms.p90, report.latency_ms.p99, report.latency_ms.max
    );
    if let Some(rate) = report.lookups_per_s {
        println!("key-state lookups on one node: {rate:.0}/s");
    }
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", args.out.display());
    if let Some(mut processes) = processes.take() {
        processes.stop();
    }
    if args.api.is_empty() {
        let _ = std::fs::remove_dir_all(
            std::env::temp_dir().join(format!("welkin-bench-{}", std::process::id())),
        );
    }
    Ok(())
}
