//! `welkin bench --workload dkg`: dealerless key generation and resharing rounds for 4, 7 and
//! 10 nodes, run in this process with every message delivered at once (`welkin_dkg`).
//!
//! What it measures is the computation of a whole round (every node's dealing, checking,
//! acknowledging, log checking and share computation) on one thread, with no network: a
//! lower bound for a round on real machines, where the nodes compute in parallel but wait for
//! each other's messages. Issue 15 asks for rounds under 5 s for 10 nodes.
//!
//! Then it starts fresh dealerless clusters of 4, 7 and 10 real node processes on loopback
//! (as `welkin dev` does) and measures the whole bootstrap as a user sees it: from spawning
//! the processes to every API answering, and to the cluster key proven from the genesis (the
//! dealings over p2p, the logs through consensus, the decision, every node's share, and a
//! checkpoint certified under the key). All processes share this machine's cores. Each size
//! starts `WELKIN_BENCH_DKG_RUNS` clusters (default 3) and reports the median of each figure:
//! the first block's time varies by seconds from run to run (p2p links coming up, leader
//! timeouts), and the key cannot come before it. `WELKIN_BENCH_DKG_PROCESSES=0` skips them.
//!
//! With `WELKIN_BENCH_GOLDEN=1` it also runs commonware's `golden` construction (one public,
//! verifiable message per dealer, no synchrony assumption) for comparison: minutes per row.

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
    /// The same first key with commonware's `golden` (non-interactive, publicly verifiable,
    /// no synchrony assumption): every dealer deals, every player checks all dealings and
    /// computes its share. Its keys are MinPk, not Welkin's MinSig.
    /// Only with `WELKIN_BENCH_GOLDEN=1` (minutes per row).
    golden_dkg_s: Option<f64>,
    /// `golden`'s one-off setup for this many players (reusable across rounds).
    golden_setup_s: Option<f64>,
    /// Bytes of one `golden` dealer message (what a dealer would put in a block).
    golden_dealing_bytes: Option<usize>,
}

/// A dealerless cluster of real processes bootstrapping its key.
#[derive(Serialize)]
struct ProcessRow {
    nodes: usize,
    /// Clusters started; each figure is the median over them.
    runs: usize,
    /// From spawning the processes until every node's API answers.
    apis_ready_s: f64,
    /// From spawning the processes until the first node has applied block 1 (consensus
    /// running; the dealer logs ride in the first blocks).
    first_block_s: f64,
    /// From spawning the processes until the key is proven from the genesis (the selected
    /// logs check and a checkpoint verifies under the key).
    key_proven_s: f64,
    /// A fifth process joins (4-node clusters only): from the operator's approval being
    /// committed until every dealer's resharing log is on the chain (the resharing itself:
    /// dealings to the five players over p2p, acknowledgements, logs through consensus).
    reshare_logs_s: Option<f64>,
    /// From the approval until the new node is a member (the resharing, then the wait for
    /// the epoch's last block: `welkin dev`'s epochs are 100 blocks).
    join_effective_s: Option<f64>,
}

#[derive(Serialize)]
struct Report {
    workload: &'static str,
    construction: &'static str,
    network: &'static str,
    cores: usize,
    rows: Vec<Row>,
    /// Real processes on loopback (`welkin dev`'s setup), one cluster per size.
    processes: Vec<ProcessRow>,
}

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let mut rng = commonware_utils::sys_rng();
    let cluster = Digest::from([0; 32]);
    let mut rows = Vec::new();
    let with_golden = std::env::var("WELKIN_BENCH_GOLDEN").is_ok_and(|v| v == "1");
    if with_golden {
        println!("nodes   dkg s   reshare s   golden s  golden setup s  golden dealing bytes");
    } else {
        println!("nodes   dkg s   reshare s   (WELKIN_BENCH_GOLDEN=1 adds commonware's golden)");
    }
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
        let golden = if with_golden {
            Some(golden_round(n)?)
        } else {
            None
        };
        match &golden {
            Some(g) => println!(
                "{n:>5} {dkg_s:>7.3} {reshare_s:>11.3} {:>10.3} {:>14.3} {:>20}",
                g.dkg_s, g.setup_s, g.dealing_bytes
            ),
            None => println!("{n:>5} {dkg_s:>7.3} {reshare_s:>11.3}"),
        }
        rows.push(Row {
            nodes: n,
            dkg_s,
            reshare_s,
            golden_dkg_s: golden.as_ref().map(|g| g.dkg_s),
            golden_setup_s: golden.as_ref().map(|g| g.setup_s),
            golden_dealing_bytes: golden.as_ref().map(|g| g.dealing_bytes),
        });
    }
    let mut processes = Vec::new();
    if std::env::var("WELKIN_BENCH_DKG_PROCESSES").map_or(true, |v| v != "0") {
        println!("real processes on loopback: nodes   apis ready s   first block s   key proven s");
        let runs: usize = std::env::var("WELKIN_BENCH_DKG_RUNS")
            .ok()
            .and_then(|v| v.parse().ok())
            .filter(|&runs| runs > 0)
            .unwrap_or(3);
        for n in [4, 7, 10] {
            let mut all = Vec::with_capacity(runs);
            for _ in 0..runs {
                all.push(bootstrap(n)?);
            }
            let median = |figure: fn(&ProcessRow) -> f64| {
                let mut values: Vec<f64> = all.iter().map(figure).collect();
                values.sort_by(f64::total_cmp);
                values[values.len() / 2]
            };
            let joins: Vec<&ProcessRow> =
                all.iter().filter(|r| r.reshare_logs_s.is_some()).collect();
            let median_of = |figure: fn(&ProcessRow) -> Option<f64>| {
                let mut values: Vec<f64> = joins.iter().filter_map(|r| figure(r)).collect();
                values.sort_by(f64::total_cmp);
                values.get(values.len() / 2).copied()
            };
            let row = ProcessRow {
                nodes: n,
                runs,
                apis_ready_s: median(|r| r.apis_ready_s),
                first_block_s: median(|r| r.first_block_s),
                key_proven_s: median(|r| r.key_proven_s),
                reshare_logs_s: median_of(|r| r.reshare_logs_s),
                join_effective_s: median_of(|r| r.join_effective_s),
            };
            println!(
                "{:>34} {:>14.2} {:>15.2} {:>14.2}",
                row.nodes, row.apis_ready_s, row.first_block_s, row.key_proven_s
            );
            if let (Some(logs), Some(effective)) = (row.reshare_logs_s, row.join_effective_s) {
                println!(
                    "{:>34} a fifth node joins: resharing logs in {logs:.2} s, a member after \
                     {effective:.2} s (epochs of 100 blocks)",
                    ""
                );
            }
            processes.push(row);
        }
    }
    let report = Report {
        workload: "dkg",
        construction: "commonware feldman_desmedt (Joint-Feldman DKG, Desmedt resharing), \
                       BLS12-381 MinSig; beside it commonware golden (eVRF, MinPk)",
        network: "rows: none (one process, one thread, every message delivered at once); \
                  processes: real node processes on loopback",
        cores: cores(),
        rows,
        processes,
    };
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Starts a fresh dealerless cluster of `n` node processes and times its bootstrap.
fn bootstrap(n: usize) -> anyhow::Result<ProcessRow> {
    let dir = std::env::temp_dir().join(format!("welkin-bench-dkg-{}-{n}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let offsets: Vec<u16> = (0..n as u16)
        .flat_map(|i| [i, 100 + i, 200 + i, 300 + i])
        .collect();
    let base = super::ports::free_base(&offsets)?;
    let cluster = super::dev::LocalCluster::create_or_load(&dir, n, base)?;
    let started = Instant::now();
    let mut processes = cluster.start_nodes(true)?;
    let apis_ready_s = started.elapsed().as_secs_f64();
    let first = welkin_client::Client::new(&cluster.apis()[0]);
    let deadline = Instant::now() + std::time::Duration::from_secs(120);
    while first.status().map_or(true, |s| s.height < 1) {
        anyhow::ensure!(Instant::now() < deadline, "no block within 120 s");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let first_block_s = started.elapsed().as_secs_f64();
    cluster.wait_for_key(&mut processes, true)?;
    let key_proven_s = started.elapsed().as_secs_f64();
    let joined = if n == 4 {
        Some(join_fifth(&dir, &cluster, base)?)
    } else {
        None
    };
    processes.stop();
    drop(processes);
    let _ = std::fs::remove_dir_all(&dir);
    Ok(ProcessRow {
        nodes: n,
        runs: 1,
        apis_ready_s,
        first_block_s,
        key_proven_s,
        reshare_logs_s: joined.as_ref().map(|j| j.0),
        join_effective_s: joined.as_ref().map(|j| j.1),
    })
}

/// A fifth node process joins the 4-node dev cluster in `dir`: it starts, asks to join, the
/// dev operator approves. Returns the seconds from the approval until every dealer's
/// resharing log is on the chain, and until the node is a member.
fn join_fifth(
    dir: &std::path::Path,
    cluster: &super::dev::LocalCluster,
    base: u16,
) -> anyhow::Result<(f64, f64)> {
    use welkin_types::{IndexedKey, Payload, Sender, Transaction, membership::MembershipOp};
    let mut rng = commonware_utils::sys_rng();
    let name = "node4";
    let home = dir.join(name);
    std::fs::create_dir_all(&home)?;
    let key = welkin_node::ceremony::NodeKey::generate(&mut rng);
    crate::cmd::write_secret(&home.join("node.key"), &key.to_json())?;
    let registration = key.register(
        name.into(),
        format!("127.0.0.1:{}", base as usize + 104).parse()?,
        format!("127.0.0.1:{}", base as usize + 4).parse()?,
        "host-4".into(),
    );
    // The registration as `welkin key register` writes it.
    std::fs::write(
        home.join("registration.json"),
        serde_json::to_string_pretty(&registration)?,
    )?;
    std::fs::write(
        home.join("node.toml"),
        "data_dir = \"data\"\nkey_file = \"node.key\"\ngenesis_file = \"../genesis.json\"\n\
         registration_file = \"registration.json\"\n",
    )?;
    let mut node = cluster.node_command(name)?.spawn()?;
    let genesis = &cluster.genesis;
    let cluster_id = genesis.cluster_id();
    let client = welkin_client::Client::new(&cluster.apis()[0]);
    let expiry_ms = crate::cmd::now_ms() + 60_000;
    let join = Transaction {
        sender: Sender::Key(key.public_key()),
        nonce: 1,
        expiry_ms,
        payload: Payload::Membership(Box::new(MembershipOp::Join {
            registration: Box::new(registration.clone()),
            evidence: Vec::new(),
        })),
    }
    .sign(&key.signer, &cluster_id);
    client.submit(&join, Some(std::time::Duration::from_secs(30)))?;
    let operator = welkin_node::ceremony::NodeKey::from_json(&std::fs::read_to_string(
        dir.join("operator.key"),
    )?)?;
    let approve = Transaction {
        sender: Sender::Identifier {
            prefix: crate::cmd::signing::non_transferable_prefix(&operator.signer),
            signers: vec![IndexedKey {
                index: 0,
                key: operator.public_key(),
            }],
        },
        nonce: 2,
        expiry_ms,
        payload: Payload::Membership(Box::new(MembershipOp::Approve {
            request: welkin_types::membership::request_id(&registration),
        })),
    }
    .sign(&operator.signer, &cluster_id);
    let status = client.submit(&approve, Some(std::time::Duration::from_secs(30)))?;
    anyhow::ensure!(status.receipt.is_some(), "the approval did not commit");
    let approved = Instant::now();
    let deadline = approved + std::time::Duration::from_secs(300);
    let mut logs_in = None;
    let effective = loop {
        anyhow::ensure!(
            Instant::now() < deadline,
            "the join took no effect in 300 s"
        );
        let epochs = client.epoch_status()?;
        if logs_in.is_none()
            && let Some(reshare) = &epochs.reshare
            && reshare.players.len() == 5
            && reshare.logs.len() == reshare.dealers.len()
        {
            logs_in = Some(approved.elapsed().as_secs_f64());
        }
        if epochs.members.iter().any(|m| m == name) {
            break approved.elapsed().as_secs_f64();
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let _ = node.kill();
    let _ = node.wait();
    Ok((logs_in.unwrap_or(effective), effective))
}

/// What one `golden` round cost.
struct Golden {
    setup_s: f64,
    dkg_s: f64,
    dealing_bytes: usize,
}

/// A first key among `n` nodes with commonware's `golden`: every node deals, and every node
/// checks every dealing and computes its share.
fn golden_round(n: u64) -> anyhow::Result<Golden> {
    use commonware_codec::Encode as _;
    use commonware_cryptography::{Signer as _, bls12381::dkg::golden};
    use commonware_math::algebra::Random as _;
    use commonware_parallel::Sequential;
    use std::collections::BTreeMap;

    let mut rng = commonware_utils::sys_rng();
    let players = std::num::NonZeroU32::new(n as u32).context("at least one node")?;
    let started = Instant::now();
    let setup = golden::Setup::new(players);
    let setup_s = started.elapsed().as_secs_f64();
    let keys: Vec<golden::PrivateKey> = (0..n)
        .map(|_| golden::PrivateKey::random(&mut rng))
        .collect();
    let set = commonware_utils::ordered::Set::try_from(
        keys.iter().map(|k| k.public_key()).collect::<Vec<_>>(),
    )
    .map_err(|_| anyhow::anyhow!("two golden keys are equal"))?;
    let info = golden::Info::new::<commonware_utils::N3f1>(
        b"welkin/bench/golden",
        0,
        None,
        set.clone(),
        set,
    )
    .map_err(|e| anyhow::anyhow!("golden round: {e:?}"))?;
    let started = Instant::now();
    let mut logs = BTreeMap::new();
    let mut dealing_bytes = 0;
    for key in &keys {
        let signed = golden::deal(&mut rng, &setup, &info, key, None, &Sequential)
            .map_err(|e| anyhow::anyhow!("golden deal: {e:?}"))?;
        dealing_bytes = signed.encode().len();
        let (dealer, log) = signed
            .identify(&info)
            .context("a golden dealing does not verify")?;
        logs.insert(dealer, log);
    }
    let mut public = None;
    for key in &keys {
        let (output, _share) =
            golden::play(&mut rng, &setup, &info, logs.clone(), key, &Sequential)
                .map_err(|e| anyhow::anyhow!("golden play: {e:?}"))?;
        let key = output.public().public().encode();
        anyhow::ensure!(
            public.get_or_insert_with(|| key.clone()) == &key,
            "golden players disagree on the key"
        );
    }
    Ok(Golden {
        setup_s,
        dkg_s: started.elapsed().as_secs_f64(),
        dealing_bytes,
    })
}
