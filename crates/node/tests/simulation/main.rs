//! Whole-cluster simulations on the deterministic runtime: healthy, lossy, partitioned,
//! quorum-less, crashed and byzantine clusters of 4 and 7 nodes. Every run checks the safety
//! invariants (one finalized block per height, equal certified state roots, every acknowledged
//! transaction present everywhere) and liveness after healing; named scenarios also replay
//! their seed and require identical results.
//!
//! `WELKIN_SIM_SEEDS=N` sets how many seeds the sweep runs (default 200).

mod harness;

use commonware_runtime::{Clock as _, Runner as _, deterministic};
use harness::*;
use std::{collections::BTreeMap, time::Duration};
use welkin_types::Digest;

/// Faults a scenario injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Healthy,
    Lossy,
    PartitionOne,
    NoQuorum,
    Byzantine,
}

const FAULTS: [Fault; 5] = [
    Fault::Healthy,
    Fault::Lossy,
    Fault::PartitionOne,
    Fault::NoQuorum,
    Fault::Byzantine,
];

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(900))),
    )
}

/// Runs one scenario and returns (history digest, auditor state) for replay checks.
fn scenario(n: usize, seed: u64, fault: Fault, txs: u64) -> (Digest, String) {
    runner(seed).start(|context| async move {
        let fixture = Fixture::new(n, seed);
        let net = Net::start(&context, &fixture).await;
        let success = if fault == Fault::Lossy { 90 } else { 100 };
        net.connect_all(&link(20, success)).await;
        let byzantine: Vec<usize> = if fault == Fault::Byzantine {
            vec![n - 1]
        } else {
            vec![]
        };
        let nodes = start_cluster(&context, &net, &fixture, &byzantine).await;
        let honest: Vec<usize> = (0..n).filter(|i| !byzantine.contains(i)).collect();
        let patience = Duration::from_secs(120);
        let mut acked = BTreeMap::new();
        match fault {
            Fault::Healthy | Fault::Lossy | Fault::Byzantine => {
                acked.extend(workload(&context, &fixture, &nodes, &honest, 0, txs, patience).await);
                assert_eq!(
                    acked.len() as u64,
                    txs,
                    "{fault:?}: every transaction must commit"
                );
            }
            Fault::PartitionOne => {
                let victim = 0;
                let others: Vec<usize> = (1..n).collect();
                acked.extend(
                    workload(&context, &fixture, &nodes, &honest, 0, txs / 2, patience).await,
                );
                net.cut(&[victim], &others).await;
                let isolated_at = nodes[victim].as_ref().expect("honest").status().height;
                acked.extend(
                    workload(
                        &context,
                        &fixture,
                        &nodes,
                        &others,
                        10_000,
                        txs / 2,
                        patience,
                    )
                    .await,
                );
                assert_eq!(
                    acked.len() as u64,
                    txs / 2 * 2,
                    "the majority side keeps committing"
                );
                let isolated_now = nodes[victim].as_ref().expect("honest").status().height;
                assert!(
                    isolated_now <= isolated_at + 1,
                    "an isolated node cannot finalize alone"
                );
                net.connect(&[victim], &others, &link(20, 100)).await;
                net.connect(&others, &[victim], &link(20, 100)).await;
                let target = nodes
                    .iter()
                    .flatten()
                    .map(|n| n.status().height)
                    .max()
                    .unwrap_or(0);
                assert!(
                    wait_for_height(&context, &nodes, target, Duration::from_secs(120)).await,
                    "healed node catches up"
                );
            }
            Fault::NoQuorum => {
                acked.extend(
                    workload(&context, &fixture, &nodes, &honest, 0, txs / 2, patience).await,
                );
                let (left, right): (Vec<usize>, Vec<usize>) = (0..n).partition(|i| *i < n / 2);
                net.cut(&left, &right).await;
                let stalled_at = nodes
                    .iter()
                    .flatten()
                    .map(|n| n.status().height)
                    .max()
                    .unwrap_or(0);
                context.sleep(Duration::from_secs(10)).await;
                let during = nodes
                    .iter()
                    .flatten()
                    .map(|n| n.status().height)
                    .max()
                    .unwrap_or(0);
                assert!(
                    during <= stalled_at + 1,
                    "no side of a quorum-less partition may finalize ({stalled_at} -> {during})"
                );
                net.connect(&left, &right, &link(20, 100)).await;
                net.connect(&right, &left, &link(20, 100)).await;
                acked.extend(
                    workload(
                        &context,
                        &fixture,
                        &nodes,
                        &honest,
                        10_000,
                        txs / 2,
                        patience,
                    )
                    .await,
                );
                assert_eq!(
                    acked.len() as u64,
                    txs / 2 * 2,
                    "after healing every transaction commits"
                );
                assert!(common_height(&nodes) > stalled_at, "progress after heal");
            }
        }
        let target = nodes
            .iter()
            .flatten()
            .map(|n| n.status().height)
            .max()
            .unwrap_or(0);
        assert!(
            wait_for_height(&context, &nodes, target, Duration::from_secs(60)).await,
            "all honest nodes converge"
        );
        let history = check_invariants(&fixture, &nodes, &acked).await;
        (history, context.auditor().state())
    })
}

/// Crashes every node uncleanly mid-run and restarts the whole cluster from its storage.
fn crash_and_restart(n: usize, seed: u64, txs: u64) -> (Digest, String) {
    let fixture = Fixture::new(n, seed);
    let phase_one = fixture.clone();
    let ((acked, height), checkpoint) = runner(seed).start_and_recover(|context| async move {
        let fixture = phase_one;
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(20, 100)).await;
        let nodes = start_cluster(&context, &net, &fixture, &[]).await;
        let all: Vec<usize> = (0..n).collect();
        let acked = workload(
            &context,
            &fixture,
            &nodes,
            &all,
            0,
            txs,
            Duration::from_secs(120),
        )
        .await;
        assert_eq!(acked.len() as u64, txs);
        // More load in flight when the crash hits: none of it was acknowledged.
        for i in 0..20 {
            let node = nodes[i % n].as_ref().expect("honest");
            let _ = node
                .submit(transaction(&context, &fixture, i, 50_000 + i as u64))
                .await;
        }
        context.sleep(Duration::from_millis(150)).await;
        (acked, common_height(&nodes))
    });
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(20, 100)).await;
        let nodes = start_cluster(&context, &net, &fixture, &[]).await;
        for node in nodes.iter().flatten() {
            assert!(
                node.status().height >= height.saturating_sub(0).min(node.status().height),
                "restarted"
            );
        }
        assert!(
            wait_for_height(&context, &nodes, height, Duration::from_secs(60)).await,
            "recovers the pre-crash height"
        );
        let all: Vec<usize> = (0..n).collect();
        let more = workload(
            &context,
            &fixture,
            &nodes,
            &all,
            100_000,
            txs,
            Duration::from_secs(120),
        )
        .await;
        assert_eq!(
            more.len() as u64,
            txs,
            "the restarted cluster commits new transactions"
        );
        let target = nodes
            .iter()
            .flatten()
            .map(|n| n.status().height)
            .max()
            .unwrap_or(0);
        assert!(wait_for_height(&context, &nodes, target, Duration::from_secs(60)).await);
        let mut everything = acked.clone();
        everything.extend(more);
        let history = check_invariants(&fixture, &nodes, &everything).await;
        (history, context.auditor().state())
    })
}

fn replays(name: &str, run: impl Fn() -> (Digest, String)) {
    let first = run();
    let second = run();
    assert_eq!(
        first, second,
        "{name}: the same seed must replay identically"
    );
}

#[test]
fn healthy_four_nodes() {
    replays("healthy-4", || scenario(4, 1, Fault::Healthy, 60));
}

#[test]
fn healthy_seven_nodes() {
    replays("healthy-7", || scenario(7, 2, Fault::Healthy, 40));
}

#[test]
fn lossy_links_ten_percent() {
    replays("lossy-4", || scenario(4, 3, Fault::Lossy, 40));
    scenario(7, 3, Fault::Lossy, 30);
}

#[test]
fn one_node_partitioned_then_healed() {
    replays("partition-4", || scenario(4, 4, Fault::PartitionOne, 40));
    scenario(7, 4, Fault::PartitionOne, 30);
}

#[test]
fn partition_without_quorum_then_heal() {
    replays("no-quorum-4", || scenario(4, 5, Fault::NoQuorum, 40));
    scenario(7, 5, Fault::NoQuorum, 30);
}

#[test]
fn byzantine_conflicter() {
    replays("byzantine-4", || scenario(4, 6, Fault::Byzantine, 40));
    scenario(7, 6, Fault::Byzantine, 30);
}

/// Identity under a byzantine node: an identifier's controller (or a thief of its key) sends
/// two different, validly signed interactions at the same sequence number to two nodes, and
/// someone sends a third with a forged signature to another. Exactly one is accepted (first in
/// block order), the other is kept as duplicity evidence on every node, the forgery is
/// rejected, and all honest nodes hold byte-identical key states and evidence. Then the
/// identifier signs transactions: a memo by the key a concurrent rotation retires counts only
/// if ordered before it, and afterwards the old key is refused and the new one accepted.
fn identity_scenario(seed: u64) -> (Digest, String) {
    use welkin_keri::{InceptionBuilder, Signer, Threshold, interact, sign, signed};
    use welkin_types::{Outcome, Payload};
    runner(seed).start(|context| async move {
        let n = 4;
        let fixture = Fixture::new(n, seed);
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(20, 100)).await;
        let nodes = start_cluster(&context, &net, &fixture, &[n - 1]).await;
        let node = |i: usize| nodes[i].as_ref().expect("honest");
        let patience = Duration::from_secs(60);
        let key_event =
            |message: welkin_keri::Message| Payload::KeyEvent(message.to_bytes().expect("encodes"));
        let (current, next, thief) = (
            Signer::new(&[1; 32]),
            Signer::new(&[2; 32]),
            Signer::new(&[3; 32]),
        );
        let icp = InceptionBuilder::new(vec![current.verkey()])
            .next(vec![next.verkey().next_digest()], Threshold::Simple(1))
            .build();
        let prefix = icp.prefix();
        let sigs = sign(&icp, std::slice::from_ref(&current));
        let tx = transaction_with(&context, &fixture, 0, 1, key_event(signed(icp, sigs)));
        let receipt = commit(&context, node(0), tx, patience)
            .await
            .expect("committed");
        assert_eq!(receipt.outcome, Outcome::Applied);

        let qb64 = prefix.qb64();
        let key_state = || async {
            welkin_state::identity::stored_key_state(
                node(0)
                    .value(welkin_state::keys::id_state(&qb64))
                    .await
                    .as_deref(),
            )
            .expect("stored key states decode")
            .expect("incepted")
        };
        let state = key_state().await;
        let first = interact(&state, vec![]);
        let seal = welkin_keri::EventSeal {
            prefix,
            sn: 7,
            said: welkin_keri::Digest::of(b"another story"),
        };
        let second = interact(&state, welkin_keri::seal_anchors(&[seal]));
        let forged = interact(
            &state,
            welkin_keri::seal_anchors(&[welkin_keri::EventSeal { sn: 8, ..seal }]),
        );
        let messages = [
            (
                1,
                signed(first.clone(), sign(&first, std::slice::from_ref(&current))),
            ),
            (
                2,
                signed(
                    second.clone(),
                    sign(&second, std::slice::from_ref(&current)),
                ),
            ),
            (
                0,
                signed(forged.clone(), sign(&forged, std::slice::from_ref(&thief))),
            ),
        ];
        let mut waiters = Vec::new();
        for (client, (target, message)) in messages.into_iter().enumerate() {
            let tx = transaction_with(&context, &fixture, client + 1, 2, key_event(message));
            waiters.push(commit(&context, node(target), tx, patience));
        }
        let outcomes: Vec<Outcome> = futures::future::join_all(waiters)
            .await
            .into_iter()
            .map(|r| r.expect("committed").outcome)
            .collect();
        assert_eq!(outcomes[2], Outcome::Rejected, "the forgery is rejected");
        let mut pair = [outcomes[0], outcomes[1]];
        pair.sort_by_key(|o| *o as u8);
        assert_eq!(
            pair,
            [Outcome::Applied, Outcome::Duplicity],
            "first seen wins; the other is evidence"
        );

        // Transactions signed by the identifier. A rotation and a memo signed by the key it
        // rotates out race to two nodes: whichever order consensus picks, the memo counts
        // only if it was ordered before the rotation.
        let by_identifier = |seed: u8, nonce: u64, memo: &[u8]| {
            let key = welkin_types::decode::<welkin_types::PrivateKey>(&[seed; 32])
                .expect("a 32-byte seed is a key");
            welkin_types::Transaction {
                sender: welkin_types::Sender::Identifier {
                    prefix: qb64.clone(),
                    signers: vec![welkin_types::IndexedKey {
                        index: 0,
                        key: commonware_cryptography::Signer::public_key(&key),
                    }],
                },
                nonce,
                expiry_ms: welkin_node::application::now_ms(&context) + 120_000,
                payload: Payload::Memo(memo.to_vec()),
            }
            .sign(&key, &fixture.genesis.cluster_id())
        };
        let state = key_state().await;
        let rot = welkin_keri::RotationBuilder::new(&state, vec![next.verkey()])
            .next(
                vec![Signer::new(&[4; 32]).verkey().next_digest()],
                Threshold::Simple(1),
            )
            .build();
        let rot = signed(rot.clone(), sign(&rot, std::slice::from_ref(&next)));
        let rot_tx = transaction_with(&context, &fixture, 5, 3, key_event(rot));
        let (rotation, stale) = futures::future::join(
            commit(&context, node(0), rot_tx, patience),
            commit(&context, node(1), by_identifier(1, 1, b"old key"), patience),
        )
        .await;
        let (rotation, stale) = (rotation.expect("committed"), stale.expect("committed"));
        assert_eq!(rotation.outcome, Outcome::Applied);
        let stale_first = (stale.height, stale.index) < (rotation.height, rotation.index);
        assert_eq!(
            stale.outcome,
            if stale_first {
                Outcome::Applied
            } else {
                Outcome::Rejected
            },
            "the old key signs only before the rotation"
        );
        // Once every node has the rotation, admission refuses the old key; the new one signs.
        assert!(wait_for_height(&context, &nodes, rotation.height, patience).await);
        let refused = node(2).submit(by_identifier(1, 2, b"late")).await;
        assert!(
            matches!(
                refused,
                Err(welkin_node::handle::SubmitError::Unauthorized(_))
            ),
            "{refused:?}"
        );
        let fresh = commit(&context, node(2), by_identifier(2, 2, b"new key"), patience).await;
        assert_eq!(fresh.expect("committed").outcome, Outcome::Applied);

        let target = common_height(&nodes) + 1;
        assert!(wait_for_height(&context, &nodes, target, patience).await);
        let keys = [
            welkin_state::keys::id_state(&qb64),
            welkin_state::keys::id_duplicity_count(&qb64),
            welkin_state::keys::id_duplicity(&qb64, 0),
        ];
        let mut agreed = None;
        for i in 0..n - 1 {
            let values = node(i).values(keys.to_vec()).await;
            assert!(
                values.iter().all(Option::is_some),
                "node {i} lacks identity state"
            );
            match &agreed {
                None => agreed = Some(values),
                Some(agreed) => assert_eq!(agreed, &values, "node {i} disagrees"),
            }
        }
        let history = check_invariants(&fixture, &nodes, &BTreeMap::new()).await;
        (history, context.auditor().state())
    })
}

#[test]
fn identity_with_duplicity_and_forgery_under_a_byzantine_node() {
    replays("identity-4", || identity_scenario(11));
    // Seed 11 orders the old-key memo after the rotation, seed 12 before it.
    identity_scenario(12);
}

#[test]
fn unclean_crash_and_restart_of_every_node() {
    replays("crash-4", || crash_and_restart(4, 7, 30));
    crash_and_restart(7, 7, 20);
}

/// Many seeds, rotating through the faults; `WELKIN_SIM_SEEDS` overrides the count.
#[test]
fn seed_sweep() {
    let seeds: u64 = std::env::var("WELKIN_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 0..seeds {
        let fault = FAULTS[(seed % FAULTS.len() as u64) as usize];
        let n = if seed % 10 == 9 { 7 } else { 4 };
        let result = std::panic::catch_unwind(|| scenario(n, 1_000 + seed, fault, 10));
        if let Err(panic) = result {
            panic!(
                "seed {} ({fault:?}, n={n}) failed: {:?}",
                1_000 + seed,
                panic.downcast_ref::<String>()
            );
        }
    }
}
