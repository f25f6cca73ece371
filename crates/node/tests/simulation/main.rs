//! Whole-cluster simulations on the deterministic runtime: healthy, lossy, partitioned,
//! quorum-less, crashed and byzantine clusters of 4 and 7 nodes, over links of varied
//! latency. Byzantine nodes equivocate votes (commonware's conflicter), send junk checkpoint
//! partials, gossip transactions with bad signatures, or propose invalid blocks (a clock far
//! beyond the tolerated skew); honest nodes run with skewed clocks within the tolerance, and
//! single nodes crash and restart at random times under load. Every run checks the safety
//! invariants on every honest node at every height (one finalized block per height, the
//! cluster's certificate over each node's own state and log, every acknowledged transaction
//! present everywhere) and liveness after healing; named scenarios also replay their seed and
//! require identical results.
//!
//! `WELKIN_SIM_SEEDS=N` sets how many seeds the sweep runs (default 48, every scenario four
//! times; about 20 s in a debug build); `WELKIN_SIM_SEED_BASE` moves the seeds.

mod epochs;
mod harness;
mod keygen;
mod secrets;
mod skew;
mod storage;
mod tamper;
mod time;
mod transit;

use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _, deterministic};
use harness::*;
use std::{cell::Cell, collections::BTreeMap, time::Duration};
use tamper::Lie;
use welkin_types::Digest;

/// Faults a scenario injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    Healthy,
    Lossy,
    PartitionOne,
    NoQuorum,
    /// Commonware's conflicter on the vote channel.
    Byzantine,
    /// A node whose checkpoint partials are junk (with valid cosignatures).
    JunkPartials,
    /// A node that gossips transactions with corrupted signatures.
    BadGossip,
    /// A node whose clock is three times the tolerated skew ahead: its blocks are invalid.
    BrokenClock,
    /// Every honest node's clock off by up to a third of the tolerated skew.
    Skewed,
    /// Single nodes crash and restart at random times under load.
    Crashes,
}

const FAULTS: [Fault; 10] = [
    Fault::Healthy,
    Fault::Lossy,
    Fault::PartitionOne,
    Fault::NoQuorum,
    Fault::Byzantine,
    Fault::JunkPartials,
    Fault::BadGossip,
    Fault::BrokenClock,
    Fault::Skewed,
    Fault::Crashes,
];

fn runner(seed: u64) -> deterministic::Runner {
    deterministic::Runner::new(
        deterministic::Config::new()
            .with_seed(seed)
            .with_timeout(Some(Duration::from_secs(900))),
    )
}

/// A small deterministic generator for scenario choices (times, victims, offsets).
struct Dice(u64);

impl Dice {
    fn roll(&mut self, below: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % below
    }
}

/// The roles of a scenario's nodes.
fn roles(n: usize, seed: u64, fault: Fault, fixture: &Fixture) -> Vec<Role> {
    let skew = fixture.genesis.chain.max_clock_skew_ms as i64;
    let mut dice = Dice(seed | 1);
    (0..n)
        .map(|i| match fault {
            Fault::Byzantine if i == n - 1 => Role::Conflicter,
            // The lowest index: recovery tries its partial first, so its lie is met early.
            Fault::JunkPartials if i == 0 => {
                Role::Lying(Lie::JunkPartials(fixture.shares[0].clone()))
            }
            Fault::BadGossip if i == n - 1 => Role::Lying(Lie::BadGossip),
            Fault::BrokenClock if i == n - 1 => Role::BrokenClock(3 * skew),
            Fault::Skewed => Role::Honest(dice.roll(2 * skew as u64 / 3) as i64 - skew / 3),
            _ => Role::Honest(0),
        })
        .collect()
}

/// The largest lag (in heights) between any honest node's applied and certified height,
/// sampled every 20 ms until `done`.
async fn certification_lag(context: &Ctx, nodes: &[Option<Node>], done: &Cell<bool>) -> u64 {
    let mut worst = 0;
    while !done.get() {
        for node in nodes.iter().flatten() {
            let status = node.status();
            // Height 1 waits for the cluster to connect; count from there.
            if status.certified_height > 0 {
                worst = worst.max(status.height.saturating_sub(status.certified_height));
            }
        }
        context.sleep(Duration::from_millis(20)).await;
    }
    worst
}

/// The blocks the honest nodes hold must all satisfy the timestamp rule against the time an
/// honest node first saw them: none is further ahead than the tolerated skew.
async fn assert_no_block_from_the_future(context: &Ctx, fixture: &Fixture, nodes: &[Option<Node>]) {
    let node = nodes.iter().flatten().next().expect("an honest node");
    let now = welkin_node::now_ms(context);
    let skew = fixture.genesis.chain.max_clock_skew_ms;
    for height in 1..=common_height(nodes) {
        let (block, _) = node.block(height).await.expect("finalized");
        assert!(
            block.timestamp_ms <= now + skew,
            "block {height} has timestamp {} beyond {now} + {skew} ms",
            block.timestamp_ms
        );
    }
}

/// Crashes random nodes among `victims` (one at a time) at random times, keeps each down for
/// a random while, and restarts it from its storage; `rounds` times. Returns the heights at
/// which each restarted node may lack a certificate.
async fn chaos(
    context: &Ctx,
    net: &Net,
    fixture: &Fixture,
    cluster: &mut Cluster,
    victims: &[usize],
    rounds: u32,
    dice: &mut Dice,
) -> Gaps {
    let mut gaps = Gaps::new();
    for life in 1..=rounds {
        context
            .sleep(Duration::from_millis(300 + dice.roll(1_500)))
            .await;
        let victim = victims[dice.roll(victims.len() as u64) as usize];
        let height = crash(cluster, victim, &mut gaps).await;
        context
            .sleep(Duration::from_millis(200 + dice.roll(2_000)))
            .await;
        let running = start_node_as(context, net, fixture, victim, &Role::Honest(0), life).await;
        assert!(
            running.node.status().height >= height,
            "node {victim} restarted at {} below its pre-crash height {height}",
            running.node.status().height,
        );
        cluster.nodes[victim] = Some(running.node);
        cluster.tasks[victim] = Some(running.task);
    }
    gaps
}

/// Runs one scenario and returns (history digest, auditor state) for replay checks.
fn scenario(n: usize, seed: u64, fault: Fault, txs: u64) -> (Digest, String) {
    runner(seed).start(|context| async move {
        let fixture = Fixture::new(n, seed);
        let net = Net::start(&context, &fixture).await;
        let success = if fault == Fault::Lossy { 90 } else { 100 };
        net.connect_varied(seed, success).await;
        let roles = roles(n, seed, fault, &fixture);
        let mut cluster = start_roles(&context, &net, &fixture, &roles).await;
        let honest: Vec<usize> = (0..n).filter(|&i| roles[i].is_honest()).collect();
        let patience = Duration::from_secs(120);
        let mut acked = BTreeMap::new();
        let mut gaps = Gaps::new();
        match fault {
            Fault::Healthy
            | Fault::Lossy
            | Fault::Byzantine
            | Fault::BrokenClock
            | Fault::Skewed => {
                let nodes = &cluster.nodes;
                acked.extend(workload(&context, &fixture, nodes, &honest, 0, txs, patience).await);
                assert_eq!(
                    acked.len() as u64,
                    txs,
                    "{fault:?}: every transaction must commit"
                );
            }
            Fault::JunkPartials => {
                let nodes = &cluster.nodes;
                let done = Cell::new(false);
                let (committed, lag) = futures::join!(
                    async {
                        let acked =
                            workload(&context, &fixture, nodes, &honest, 0, txs, patience).await;
                        done.set(true);
                        acked
                    },
                    certification_lag(&context, nodes, &done),
                );
                acked.extend(committed);
                assert_eq!(acked.len() as u64, txs, "every transaction must commit");
                println!(
                    "junk partials (seed {seed}, n={n}): largest certification lag {lag} heights"
                );
                assert!(
                    lag <= 3,
                    "junk partials delayed certification by {lag} heights"
                );
            }
            Fault::BadGossip => {
                // The liar's own API admits these, then it gossips them corrupted.
                let liar = &cluster.byzantine[&(n - 1)];
                for i in 0..5 {
                    let tx = transaction(&context, &fixture, i, 90_000 + i as u64);
                    liar.submit(tx)
                        .await
                        .expect("the liar's API admits a valid transaction");
                }
                let nodes = &cluster.nodes;
                acked.extend(workload(&context, &fixture, nodes, &honest, 0, txs, patience).await);
                assert_eq!(acked.len() as u64, txs, "every transaction must commit");
                let blocked = net.oracle.blocked().await.expect("network up");
                let liar_key = fixture.keys[n - 1].public_key();
                for &i in &honest {
                    assert!(
                        blocked.contains(&(fixture.keys[i].public_key(), liar_key.clone())),
                        "node {i} did not block the peer that gossiped bad signatures: {blocked:?}"
                    );
                }
            }
            Fault::Crashes => {
                // Node 0 takes the load and never crashes; the others crash in turn.
                let victims: Vec<usize> = (1..n).collect();
                let mut dice = Dice(seed | 1);
                let steady = vec![cluster.nodes[0].clone()];
                let (committed, crash_gaps) = futures::join!(
                    workload(&context, &fixture, &steady, &[0], 0, txs, patience),
                    chaos(
                        &context,
                        &net,
                        &fixture,
                        &mut cluster,
                        &victims,
                        3,
                        &mut dice
                    ),
                );
                acked.extend(committed);
                gaps = crash_gaps;
                assert_eq!(
                    acked.len() as u64,
                    txs,
                    "every transaction commits across crashes"
                );
            }
            Fault::PartitionOne => {
                let nodes = &cluster.nodes;
                let victim = 0;
                let others: Vec<usize> = (1..n).collect();
                acked.extend(
                    workload(&context, &fixture, nodes, &honest, 0, txs / 2, patience).await,
                );
                net.cut(&[victim], &others).await;
                let isolated_at = nodes[victim].as_ref().expect("honest").status().height;
                acked.extend(
                    workload(
                        &context,
                        &fixture,
                        nodes,
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
                    wait_for_height(&context, nodes, target, Duration::from_secs(120)).await,
                    "healed node catches up"
                );
            }
            Fault::NoQuorum => {
                let nodes = &cluster.nodes;
                acked.extend(
                    workload(&context, &fixture, nodes, &honest, 0, txs / 2, patience).await,
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
                        nodes,
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
                assert!(common_height(nodes) > stalled_at, "progress after heal");
            }
        }
        let nodes = &cluster.nodes;
        let target = nodes
            .iter()
            .flatten()
            .map(|n| n.status().height)
            .max()
            .unwrap_or(0);
        assert!(
            wait_for_height(&context, nodes, target, Duration::from_secs(60)).await,
            "all honest nodes converge"
        );
        // Named runs are long enough for the byzantine node to have acted (been elected
        // leader, had its junk partial used in a recovery); short sweep runs may not be.
        let long = txs >= 30;
        if fault == Fault::BrokenClock {
            // Enough views for the broken node to lead some (blocks carry many transactions,
            // so the workload alone takes only a few).
            if long {
                assert!(
                    wait_for_height(&context, nodes, 24, Duration::from_secs(120)).await,
                    "the cluster moves on past the broken leader"
                );
            }
            assert_no_block_from_the_future(&context, &fixture, nodes).await;
            let status = nodes[0].as_ref().expect("honest").status();
            assert!(
                !long || status.view > status.height,
                "the broken-clock leader's views were skipped (view {}, height {})",
                status.view,
                status.height
            );
        }
        if fault == Fault::JunkPartials {
            let blocked = net.oracle.blocked().await.expect("network up");
            let liar = fixture.keys[0].public_key();
            assert!(
                !long || blocked.iter().any(|(_, peer)| *peer == liar),
                "no honest node caught the junk partials: {blocked:?}"
            );
        }
        let history = check_invariants(&context, &fixture, nodes, &acked, &gaps).await;
        (history, context.auditor().state())
    })
}

/// Crashes every node uncleanly mid-run and restarts the whole cluster from its storage.
fn crash_and_restart(n: usize, seed: u64, txs: u64) -> (Digest, String) {
    let fixture = Fixture::new(n, seed);
    let phase_one = fixture.clone();
    let ((acked, height, gaps), checkpoint) =
        runner(seed).start_and_recover(|context| async move {
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
            // Each node restarts without the roots of heights it had not certified yet.
            let mut gaps = Gaps::new();
            for (i, node) in nodes.iter().enumerate() {
                let node = node.as_ref().expect("honest");
                let applied = node.status().height;
                for height in applied.saturating_sub(32).max(1)..applied {
                    if node.checkpoint(height).await.is_none() {
                        gaps.entry(i).or_default().insert(height);
                    }
                }
            }
            (acked, common_height(&nodes), gaps)
        });
    deterministic::Runner::from(checkpoint).start(|context| async move {
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(20, 100)).await;
        let nodes = start_cluster(&context, &net, &fixture, &[]).await;
        for (i, node) in nodes.iter().enumerate() {
            let restarted = node.as_ref().expect("honest").status().height;
            assert!(
                restarted >= height,
                "node {i} restarted at height {restarted}, below the {height} all had applied"
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
        let history = check_invariants(&context, &fixture, &nodes, &everything, &gaps).await;
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
                expiry_ms: welkin_node::now_ms(&context) + 120_000,
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
            matches!(refused, Err(welkin_node::SubmitError::Unauthorized(_))),
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
        let history =
            check_invariants(&context, &fixture, &nodes, &BTreeMap::new(), &Gaps::new()).await;
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

#[test]
fn junk_checkpoint_partials_do_not_delay_certification() {
    replays("junk-partials-4", || {
        scenario(4, 21, Fault::JunkPartials, 40)
    });
    scenario(7, 21, Fault::JunkPartials, 30);
}

#[test]
fn secret_reads_survive_false_partials_and_name_the_liar() {
    secrets::secrets_scenario(31, secrets::Releaser::Wrong);
}

#[test]
fn secret_reads_survive_a_silent_member() {
    secrets::secrets_scenario(32, secrets::Releaser::Silent);
}

#[test]
fn transit_key_generation_leaves_out_a_node_that_sends_bad_shares() {
    transit::transit_scenario(41, transit::Liar::KeyShares);
}

#[test]
fn transit_key_generation_completes_without_a_silent_node() {
    transit::transit_scenario(43, transit::Liar::Absent);
}

#[test]
fn transit_signatures_survive_a_signer_that_never_answers() {
    transit::transit_scenario(44, transit::Liar::SilentSigner);
}

#[test]
fn transit_signatures_survive_bad_signature_shares_and_block_the_liar() {
    transit::transit_scenario(42, transit::Liar::SignatureShares);
}

#[test]
fn time_certificates_hold_true_time_with_f_lying_clocks_and_quarantine_the_liars() {
    time::time_with_f_liars(41);
}

#[test]
fn time_certificates_are_refused_with_more_than_f_lying_clocks() {
    time::time_with_too_many_liars(42);
}

#[test]
fn invalid_gossip_gets_the_sender_blocked() {
    replays("bad-gossip-4", || scenario(4, 22, Fault::BadGossip, 30));
}

#[test]
fn byzantine_leader_invalid_blocks_are_refused() {
    replays("broken-clock-4", || scenario(4, 23, Fault::BrokenClock, 30));
}

#[test]
fn clock_skew_within_tolerance() {
    replays("skewed-4", || scenario(4, 24, Fault::Skewed, 30));
    scenario(7, 24, Fault::Skewed, 20);
}

#[test]
fn single_node_crashes_under_load() {
    replays("crashes-4", || scenario(4, 25, Fault::Crashes, 60));
    scenario(7, 25, Fault::Crashes, 40);
}

/// Every scenario (the faults, the whole-cluster crash, identity) over many seeds;
/// `WELKIN_SIM_SEEDS` sets the count and `WELKIN_SIM_SEED_BASE` the first seed.
#[test]
fn seed_sweep() {
    let env = |name: &str, default: u64| {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let seeds = env("WELKIN_SIM_SEEDS", 48);
    let base = env("WELKIN_SIM_SEED_BASE", 1_000);
    let kinds = FAULTS.len() as u64 + 2;
    for seed in base..base + seeds {
        let kind = seed % kinds;
        let n = if seed % 10 == 9 { 7 } else { 4 };
        let name = match FAULTS.get(kind as usize) {
            Some(fault) => format!("{fault:?}"),
            None if kind == FAULTS.len() as u64 => "CrashAndRestart".into(),
            None => "Identity".into(),
        };
        let result = std::panic::catch_unwind(|| match FAULTS.get(kind as usize) {
            Some(&fault) => {
                scenario(n, seed, fault, 10);
            }
            None if kind == FAULTS.len() as u64 => {
                crash_and_restart(n, seed, 10);
            }
            None => {
                identity_scenario(seed);
            }
        });
        if let Err(panic) = result {
            panic!(
                "seed {seed} ({name}, n={n}) failed: {:?}",
                panic
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
            );
        }
    }
}

#[test]
fn storage_audits_catch_a_byzantine_holder_and_repair_around_it() {
    replays("storage-liar-4", || storage::audits_catch_a_liar(41));
}

#[test]
fn storage_repairs_do_not_storm_when_a_node_flaps() {
    storage::flapping_node_does_not_storm(42);
}
