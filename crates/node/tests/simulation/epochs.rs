//! Consensus across epochs: a cluster whose genesis has a membership policy runs one engine
//! per epoch; the engines hand over at every boundary, under load and with a crash, and
//! every invariant holds on every honest node across them.

use crate::{harness::*, runner};
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _};
use std::{collections::BTreeMap, time::Duration};
use welkin_state::epochs::EpochState;

/// Blocks per epoch in these simulations: a few seconds of simulated time.
const EPOCH_BLOCKS: u64 = 25;

/// A fixture whose genesis names one operator and short epochs.
pub(crate) fn with_epochs(mut fixture: Fixture) -> Fixture {
    fixture.genesis.membership = Some(welkin_types::genesis::MembershipPolicy {
        operators: vec!["BAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA".into()],
        approvals: 1,
        attestation: "none".into(),
        epoch_blocks: EPOCH_BLOCKS,
    });
    fixture.genesis.validate().expect("valid genesis");
    fixture
}

/// The epoch `node`'s applied state is in.
pub(crate) async fn epoch_of(node: &Node) -> EpochState {
    node.value(welkin_state::keys::epoch())
        .await
        .map(|bytes| EpochState::decode(&bytes).expect("decodes"))
        .unwrap_or_default()
}

#[test]
fn consensus_hands_over_at_every_epoch_boundary_under_load_and_a_crash() {
    runner(71).start(|context| async move {
        let fixture = with_epochs(Fixture::new(4, 71));
        let net = Net::start(&context, &fixture).await;
        net.connect_varied(71, 100).await;
        let roles = vec![Role::Honest(0); 4];
        let mut cluster = start_roles(&context, &net, &fixture, &roles).await;
        let patience = Duration::from_secs(120);
        let all: Vec<usize> = (0..4).collect();
        let mut acked = BTreeMap::new();
        let mut gaps = Gaps::new();
        acked.extend(workload(&context, &fixture, &cluster.nodes, &all, 0, 60, patience).await);
        // A member crashes and comes back a few epochs later: it catches up across them.
        crash(&mut cluster, 3, &mut gaps).await;
        let live = [0, 1, 2];
        acked.extend(workload(&context, &fixture, &cluster.nodes, &live, 100, 60, patience).await);
        let target = 4 * EPOCH_BLOCKS + 3;
        assert!(
            wait_for_height(&context, &cluster.nodes, target, Duration::from_secs(120)).await,
            "the cluster crosses four epoch boundaries"
        );
        let running = start_node_as(&context, &net, &fixture, 3, &Role::Honest(0), 1).await;
        cluster.nodes[3] = Some(running.node);
        cluster.tasks[3] = Some(running.task);
        acked.extend(workload(&context, &fixture, &cluster.nodes, &all, 200, 60, patience).await);
        assert_eq!(
            acked.len(),
            180,
            "every transaction commits across the boundaries"
        );
        let top = common_height(&cluster.nodes) + 2 * EPOCH_BLOCKS;
        assert!(
            wait_for_height(&context, &cluster.nodes, top, Duration::from_secs(120)).await,
            "the restarted member takes part in later epochs"
        );
        for node in cluster.nodes.iter().flatten() {
            let epochs = epoch_of(node).await;
            assert!(epochs.epoch >= 6, "epoch {}", epochs.epoch);
            assert!(epochs.failures.is_empty(), "{:?}", epochs.failures);
        }
        check_invariants(&context, &fixture, &cluster.nodes, &acked, &gaps).await;
    });
}

/// An operator's key and its non-transferable KERI identifier.
fn operator(seed: u64) -> (welkin_types::PrivateKey, String) {
    use commonware_codec::Encode as _;
    let key = welkin_types::PrivateKey::from_seed(seed);
    let bytes: [u8; 32] = key.encode().as_ref().try_into().expect("32-byte seed");
    let prefix = welkin_keri::Signer::non_transferable(&bytes)
        .verkey()
        .qb64();
    (key, prefix)
}

/// `n` + 1 keys, the genesis naming the first `n` (in key order), dealerless, with short
/// epochs and `operator` approving joins alone; the last key may join.
fn joinable(n: usize, seed: u64, operator: &str) -> Fixture {
    let mut fixture = Fixture::new(n + 1, seed);
    fixture.genesis.nodes.pop();
    fixture.genesis.threshold = welkin_types::genesis::quorum(n) as u32;
    fixture.genesis.polynomial = None;
    fixture.genesis.membership = Some(welkin_types::genesis::MembershipPolicy {
        operators: vec![operator.to_string()],
        approvals: 1,
        attestation: "none".into(),
        epoch_blocks: EPOCH_BLOCKS,
    });
    fixture.genesis.validate().expect("valid genesis");
    fixture.shares.clear();
    fixture
}

/// Signs `op` as `sender` with `keys` and commits it through `node`; returns the receipt's
/// outcome detail, panicking if it was refused.
async fn membership_op(
    context: &Ctx,
    fixture: &Fixture,
    node: &Node,
    sender: welkin_types::Sender,
    keys: &[welkin_types::PrivateKey],
    op: welkin_types::membership::MembershipOp,
) -> String {
    let tx = welkin_types::Transaction {
        sender,
        nonce: 1,
        expiry_ms: welkin_node::now_ms(context) + 60_000,
        payload: welkin_types::Payload::Membership(Box::new(op)),
    }
    .sign_all(keys, &fixture.genesis.cluster_id());
    let id = tx.id();
    let receipt = commit(context, node, tx, Duration::from_secs(60))
        .await
        .expect("the operation commits");
    let detail = node
        .value(welkin_state::keys::outcome_detail(&id))
        .await
        .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
        .unwrap_or_default();
    assert_eq!(
        receipt.outcome,
        welkin_types::Outcome::Applied,
        "refused: {detail}"
    );
    detail
}

#[test]
fn a_fifth_node_joins_through_a_resharing_and_the_key_stays() {
    runner(73).start(|context| async move {
        let (operator_key, prefix) = operator(900);
        let fixture = joinable(4, 73, &prefix);
        let joiner = 4;
        let net = Net::start(&context, &fixture).await;
        net.connect_varied(73, 100).await;
        let roles = vec![Role::Honest(0); 4];
        let mut cluster = start_roles(&context, &net, &fixture, &roles).await;
        // The joiner runs from the start, following the chain as a non-member.
        let running = start_node_as(&context, &net, &fixture, joiner, &Role::Honest(0), 0).await;
        cluster.nodes.push(Some(running.node));
        cluster.tasks.push(Some(running.task));
        let genesis_nodes: Vec<Option<Node>> = cluster.nodes[..4].to_vec();
        let deadline = context.current() + Duration::from_secs(120);
        while genesis_nodes
            .iter()
            .flatten()
            .any(|n| n.cluster_keys().is_none())
        {
            assert!(context.current() < deadline, "the first key is made");
            context.sleep(Duration::from_millis(100)).await;
        }
        let live: Vec<&Node> = genesis_nodes.iter().flatten().collect();
        let key = fixture.cluster_key(&live).await;
        // Nothing was certified before the key existed.
        let mut gaps = crate::keygen::gaps_until_now(&cluster.nodes);
        let entry = cluster.nodes[0].clone().expect("up");

        // The node asks to join; the operator approves.
        let registration = registration(&fixture.keys[joiner], joiner);
        let id = welkin_types::membership::request_id(&registration);
        membership_op(
            &context,
            &fixture,
            &entry,
            welkin_types::Sender::Key(fixture.keys[joiner].public_key()),
            std::slice::from_ref(&fixture.keys[joiner]),
            welkin_types::membership::MembershipOp::Join {
                registration: Box::new(registration),
                evidence: Vec::new(),
            },
        )
        .await;
        let admitted = membership_op(
            &context,
            &fixture,
            &entry,
            welkin_types::Sender::Identifier {
                prefix: prefix.clone(),
                signers: vec![welkin_types::IndexedKey {
                    index: 0,
                    key: operator_key.public_key(),
                }],
            },
            std::slice::from_ref(&operator_key),
            welkin_types::membership::MembershipOp::Approve { request: id },
        )
        .await;
        assert!(admitted.contains("admitted"), "{admitted}");

        // Load while the members reshare and the epoch changes.
        let all: Vec<usize> = (0..4).collect();
        let patience = Duration::from_secs(120);
        let mut acked = workload(&context, &fixture, &cluster.nodes, &all, 0, 60, patience).await;
        let deadline = context.current() + Duration::from_secs(180);
        loop {
            let epochs = epoch_of(&entry).await;
            if epochs.joined.len() == 1 {
                break;
            }
            assert!(
                context.current() < deadline,
                "the join takes effect: {:?}",
                epochs.failures
            );
            context.sleep(Duration::from_millis(200)).await;
        }
        // The new member votes: the five of them finalize with one genesis member down.
        let five: Vec<usize> = (0..5).collect();
        acked.extend(workload(&context, &fixture, &cluster.nodes, &five, 100, 40, patience).await);
        crash(&mut cluster, 1, &mut gaps).await;
        let four_of_five = [0, 2, 3, 4];
        acked.extend(
            workload(
                &context,
                &fixture,
                &cluster.nodes,
                &four_of_five,
                200,
                40,
                patience,
            )
            .await,
        );
        assert_eq!(
            acked.len(),
            140,
            "every transaction commits across the join"
        );
        let top = common_height(&cluster.nodes);
        for node in cluster.nodes.iter().flatten() {
            let epochs = epoch_of(node).await;
            assert_eq!(epochs.joined.len(), 1);
            assert!(epochs.failures.is_empty(), "{:?}", epochs.failures);
            let held = node.cluster_keys().expect("a key");
            assert_eq!(*held.sharing.public(), key, "the cluster key never changes");
            let share = held.share.clone().expect("every member holds a share");
            assert_eq!(
                held.sharing.partial_public(share.index).expect("a player"),
                share.public::<welkin_types::Variant>()
            );
        }
        // The joiner holds no certificate of the heights before it joined.
        let joined_at = epoch_of(&entry).await.start_height;
        gaps.entry(joiner)
            .or_default()
            .extend(1..joined_at.min(top + 1));
        check_invariants(&context, &fixture, &cluster.nodes, &acked, &gaps).await;
    });
}

/// The genesis of `fixture` names its first `n` keys; the others may join.
fn joinable_many(n: usize, joiners: usize, seed: u64, operator: &str) -> Fixture {
    let mut fixture = joinable(n + joiners - 1, seed, operator);
    fixture.genesis.nodes.truncate(n);
    fixture.genesis.threshold = welkin_types::genesis::quorum(n) as u32;
    fixture.genesis.validate().expect("valid genesis");
    fixture
}

/// What a membership scenario drives: the fixture, its operator, and a node to submit to.
struct Membership {
    fixture: Fixture,
    operator: (welkin_types::PrivateKey, String),
}

impl Membership {
    /// Submits node `joiner`'s join request and, in the same breath, the operator's approval;
    /// returns the two transactions' waiters once both are in.
    fn join_txs(&self, context: &Ctx, joiner: usize) -> Vec<welkin_types::SignedTransaction> {
        let key = &self.fixture.keys[joiner];
        let registration = registration(key, joiner);
        let id = welkin_types::membership::request_id(&registration);
        let cluster_id = self.fixture.genesis.cluster_id();
        let expiry_ms = welkin_node::now_ms(context) + 60_000;
        let join = welkin_types::Transaction {
            sender: welkin_types::Sender::Key(key.public_key()),
            nonce: 1,
            expiry_ms,
            payload: welkin_types::Payload::Membership(Box::new(
                welkin_types::membership::MembershipOp::Join {
                    registration: Box::new(registration),
                    evidence: Vec::new(),
                },
            )),
        }
        .sign(key, &cluster_id);
        let (operator_key, prefix) = &self.operator;
        let approve = welkin_types::Transaction {
            sender: welkin_types::Sender::Identifier {
                prefix: prefix.clone(),
                signers: vec![welkin_types::IndexedKey {
                    index: 0,
                    key: operator_key.public_key(),
                }],
            },
            nonce: joiner as u64,
            expiry_ms,
            payload: welkin_types::Payload::Membership(Box::new(
                welkin_types::membership::MembershipOp::Approve { request: id },
            )),
        }
        .sign(operator_key, &cluster_id);
        vec![join, approve]
    }

    /// A leave by member `member`.
    fn leave_tx(&self, context: &Ctx, member: usize) -> welkin_types::SignedTransaction {
        let key = &self.fixture.keys[member];
        welkin_types::Transaction {
            sender: welkin_types::Sender::Key(key.public_key()),
            nonce: 7,
            expiry_ms: welkin_node::now_ms(context) + 60_000,
            payload: welkin_types::Payload::Membership(Box::new(
                welkin_types::membership::MembershipOp::Leave,
            )),
        }
        .sign(key, &self.fixture.genesis.cluster_id())
    }
}

/// Commits `txs` through `node` in order, each after the last is in the mempool, and checks
/// every one applied.
async fn commit_all(context: &Ctx, node: &Node, txs: Vec<welkin_types::SignedTransaction>) {
    let mut waiters = Vec::new();
    for tx in txs {
        let id = tx.id();
        waiters.push((id, node.subscribe(id).expect("waiter room")));
        node.submit(tx).await.expect("admitted");
    }
    for (id, waiter) in waiters {
        let receipt = commonware_macros::select! {
            receipt = waiter => receipt.expect("a receipt"),
            _ = context.sleep(Duration::from_secs(60)) => panic!("not committed in time"),
        };
        let detail = node
            .value(welkin_state::keys::outcome_detail(&id))
            .await
            .map(|bytes| String::from_utf8_lossy(&bytes).into_owned())
            .unwrap_or_default();
        assert_eq!(
            receipt.outcome,
            welkin_types::Outcome::Applied,
            "refused: {detail}"
        );
    }
}

/// Waits (up to `seconds` of simulated time) until `node`'s epoch state satisfies `done`.
async fn wait_epochs(
    context: &Ctx,
    node: &Node,
    seconds: u64,
    what: &str,
    done: impl Fn(&EpochState) -> bool,
) -> EpochState {
    let deadline = context.current() + Duration::from_secs(seconds);
    loop {
        let epochs = epoch_of(node).await;
        if done(&epochs) {
            return epochs;
        }
        assert!(
            context.current() < deadline,
            "{what}: epoch {} failures {:?}",
            epochs.epoch,
            epochs.failures
        );
        context.sleep(Duration::from_millis(100)).await;
    }
}

/// Four members grow to five, then seven, then shrink to four, under load: one genesis
/// member deals bad shares to another in every round (the first key's and each
/// resharing's), a member crashes while a resharing runs and restarts after its boundary,
/// and a member is cut off across an epoch boundary. The cluster key never changes; every
/// honest node holds the same certificate, valid under it, at every height; every
/// acknowledged transaction is in every log.
#[test]
fn membership_goes_from_four_to_five_to_seven_to_four_through_faults() {
    runner(77).start(|context| async move {
        let operator = operator(901);
        let fixture = joinable_many(4, 3, 77, &operator.1);
        let membership = Membership {
            fixture: fixture.clone(),
            operator,
        };
        let (liar, victim) = (3, 0);
        let net = Net::start(&context, &fixture).await;
        net.connect_varied(77, 100).await;
        let roles: Vec<Role> = (0..4)
            .map(|i| {
                if i == liar {
                    Role::Lying(crate::tamper::Lie::BadDealing {
                        victim: fixture.keys[victim].public_key(),
                        members: 7,
                    })
                } else {
                    Role::Honest(0)
                }
            })
            .collect();
        let mut cluster = start_roles(&context, &net, &fixture, &roles).await;
        for joiner in 4..7 {
            let running =
                start_node_as(&context, &net, &fixture, joiner, &Role::Honest(0), 0).await;
            cluster.nodes.push(Some(running.node));
            cluster.tasks.push(Some(running.task));
        }
        let deadline = context.current() + Duration::from_secs(120);
        while cluster.nodes[..4]
            .iter()
            .flatten()
            .any(|n| n.cluster_keys().is_none())
        {
            assert!(context.current() < deadline, "the first key is made");
            context.sleep(Duration::from_millis(100)).await;
        }
        let live: Vec<&Node> = cluster.nodes[..4].iter().flatten().collect();
        let key = fixture.cluster_key(&live).await;
        let mut gaps = crate::keygen::gaps_until_now(&cluster.nodes);
        let entry = cluster.nodes[0].clone().expect("up");
        let patience = Duration::from_secs(180);
        let mut acked = BTreeMap::new();
        let mut nonce = 0;

        // 4 -> 5.
        commit_all(&context, &entry, membership.join_txs(&context, 4)).await;
        let members = [0, 1, 2];
        acked.extend(
            workload(
                &context,
                &fixture,
                &cluster.nodes,
                &members,
                nonce,
                30,
                patience,
            )
            .await,
        );
        nonce += 100;
        let at_five = wait_epochs(&context, &entry, 180, "4 -> 5", |e| e.joined.len() == 1).await;
        gaps.entry(4).or_default().extend(1..at_five.start_height);

        // 5 -> 7, with a member crashing while the resharing runs.
        let mut txs = membership.join_txs(&context, 5);
        txs.extend(membership.join_txs(&context, 6));
        commit_all(&context, &entry, txs).await;
        // Node 2 takes part (a log is in once the dealings are acknowledged), then crashes
        // before the boundary: after its restart it makes its share from what it kept.
        wait_epochs(&context, &entry, 60, "the resharing to 7 has a log", |e| {
            e.reshare
                .as_ref()
                .is_some_and(|r| r.players.len() == 7 && !r.logs.is_empty())
        })
        .await;
        crash(&mut cluster, 2, &mut gaps).await;
        let members = [0, 1, 4];
        acked.extend(
            workload(
                &context,
                &fixture,
                &cluster.nodes,
                &members,
                nonce,
                30,
                patience,
            )
            .await,
        );
        nonce += 100;
        let at_seven = wait_epochs(&context, &entry, 180, "5 -> 7", |e| e.joined.len() == 3).await;
        for joiner in [5, 6] {
            gaps.entry(joiner)
                .or_default()
                .extend(1..at_seven.start_height);
        }
        let running = start_node_as(&context, &net, &fixture, 2, &Role::Honest(0), 1).await;
        cluster.nodes[2] = Some(running.node);
        cluster.tasks[2] = Some(running.task);
        let restarted = cluster.nodes[2].clone().expect("up");
        let deadline = context.current() + Duration::from_secs(60);
        loop {
            let held = restarted.cluster_keys();
            let made = held.as_ref().is_some_and(|k| {
                k.share.as_ref().is_some_and(|s| {
                    k.sharing.total().get() == 7
                        && k.sharing.partial_public(s.index).ok()
                            == Some(s.public::<welkin_types::Variant>())
                })
            });
            if made {
                break;
            }
            assert!(
                context.current() < deadline,
                "the restarted member makes its share of the 7-member key"
            );
            context.sleep(Duration::from_millis(100)).await;
        }

        // 7 -> 4: three members leave, and one is cut off across the boundary.
        let leavers = [1, 4, 5];
        let txs = leavers
            .iter()
            .map(|&m| membership.leave_tx(&context, m))
            .collect();
        commit_all(&context, &entry, txs).await;
        wait_epochs(&context, &entry, 60, "the resharing to 4 opens", |e| {
            e.reshare.as_ref().is_some_and(|r| r.players.len() == 4)
        })
        .await;
        let everyone: Vec<usize> = (0..7).collect();
        net.cut(&[6], &everyone).await;
        let members = [0, 2, 4];
        acked.extend(
            workload(
                &context,
                &fixture,
                &cluster.nodes,
                &members,
                nonce,
                30,
                patience,
            )
            .await,
        );
        nonce += 100;
        context.sleep(Duration::from_secs(3)).await;
        net.connect_varied(77, 100).await;
        let at_four = wait_epochs(&context, &entry, 180, "7 -> 4", |e| e.retired.len() == 3).await;
        assert_eq!(at_four.retired.len(), 3);
        // The leavers are no longer members: they stop.
        for &m in &leavers {
            crash(&mut cluster, m, &mut gaps).await;
        }
        let members = [0, 2, 6];
        acked.extend(
            workload(
                &context,
                &fixture,
                &cluster.nodes,
                &members,
                nonce,
                30,
                patience,
            )
            .await,
        );
        assert_eq!(
            acked.len(),
            120,
            "every transaction commits across the changes"
        );
        let top = common_height(&cluster.nodes) + 10;
        assert!(
            wait_for_height(&context, &cluster.nodes, top, Duration::from_secs(120)).await,
            "the four members keep finalizing"
        );
        for node in cluster.nodes.iter().flatten() {
            let held = node.cluster_keys().expect("a key");
            assert_eq!(*held.sharing.public(), key, "the cluster key never changes");
            let epochs = epoch_of(node).await;
            assert_eq!(epochs.retired.len(), 3);
            println!("epoch {} failures {:?}", epochs.epoch, epochs.failures);
        }
        for i in [0, 6] {
            let held = cluster.nodes[i]
                .as_ref()
                .expect("up")
                .cluster_keys()
                .expect("a key");
            let share = held.share.clone().expect("a member holds a share");
            assert_eq!(
                held.sharing.partial_public(share.index).expect("a player"),
                share.public::<welkin_types::Variant>()
            );
        }
        check_invariants(&context, &fixture, &cluster.nodes, &acked, &gaps).await;
    });
}
