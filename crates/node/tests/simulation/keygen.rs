//! A dealerless cluster makes its key in the simulation: every node deals over the DKG
//! channel and commits its log through consensus, while one byzantine member sends a bad
//! share to one player and signs two different logs. The honest members exclude it, agree
//! on one key, each hold a share that matches it, and certify every later checkpoint under
//! the key the logs prove; the player it lied to blocks it.

use crate::{harness::*, runner, tamper::Lie};
use commonware_codec::Encode as _;
use commonware_runtime::{Clock as _, Runner as _};
use std::time::Duration;
use welkin_dkg::Participant;
use welkin_state::keygen::{GeneratedKey, Keygen};
use welkin_types::{Payload, Sender, Transaction, membership::MembershipOp};

/// Waits (up to 120 s) until every live node holds the cluster key.
async fn wait_for_keys(context: &Ctx, nodes: &[Option<Node>], what: &str) {
    let deadline = context.current() + Duration::from_secs(120);
    while nodes.iter().flatten().any(|n| n.cluster_keys().is_none()) {
        assert!(context.current() < deadline, "{what}");
        context.sleep(Duration::from_millis(100)).await;
    }
}

/// The generated key `node`'s state records, and its round's output.
async fn generated(node: &Node) -> (GeneratedKey, welkin_dkg::Output) {
    let bytes = node
        .value(welkin_state::keys::cluster_key())
        .await
        .expect("recorded");
    let generated = GeneratedKey::decode(&bytes).expect("decodes");
    let output = generated.output(4).expect("decodes");
    (generated, output)
}

/// Every live node is excused from certificates up to just past the highest height any has
/// now (before the key existed, nothing was certified).
pub(crate) fn gaps_until_now(nodes: &[Option<Node>]) -> Gaps {
    let ready = nodes
        .iter()
        .flatten()
        .map(|n| n.status().height)
        .max()
        .unwrap_or(0);
    (0..nodes.len())
        .map(|i| (i, (1..=ready + 1).collect()))
        .collect()
}

#[test]
fn a_dealerless_cluster_makes_its_key_despite_a_lying_dealer() {
    runner(42).start(|context| async move {
        let fixture = Fixture::new(4, 42).dealerless();
        let members = fixture.public_keys();
        let cluster_id = fixture.genesis.cluster_id();
        let (liar, victim) = (3, 0);
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(10, 100)).await;
        let roles: Vec<Role> = (0..4)
            .map(|i| {
                if i == liar {
                    Role::Lying(Lie::BadDealing {
                        victim: members[victim].clone(),
                        members: 4,
                    })
                } else {
                    Role::Honest(0)
                }
            })
            .collect();
        let cluster = start_roles(&context, &net, &fixture, &roles).await;
        let nodes = cluster.nodes;
        let entry = nodes[1].as_ref().expect("honest");

        // The liar also signs two different logs of round 0 and gets both in first.
        let round = Keygen::default()
            .round_of(&cluster_id, &members)
            .expect("round 0");
        let mut rng = commonware_utils::test_rng();
        for nonce in 1..=2u64 {
            let (mut second, _) =
                Participant::start(&mut rng, round.clone(), &fixture.keys[liar], None)
                    .expect("starts");
            let log = second.log().expect("a dealer's log").encode().to_vec();
            let tx = Transaction {
                sender: Sender::Key(members[liar].clone()),
                nonce,
                expiry_ms: welkin_node::now_ms(&context) + 60_000,
                payload: Payload::Membership(Box::new(MembershipOp::DealerLog { round: 0, log })),
            }
            .sign(&fixture.keys[liar], &cluster_id);
            entry.submit(tx).await.expect("admitted");
        }

        // Every honest node ends with the key and its share.
        wait_for_keys(&context, &nodes, "the honest nodes never all held the key").await;
        let gaps = gaps_until_now(&nodes);
        let live: Vec<&Node> = nodes.iter().flatten().collect();
        let key = fixture.cluster_key(&live).await;
        for node in &live {
            let keys = node.cluster_keys().expect("held");
            assert_eq!(keys.sharing.public(), &key, "one key everywhere");
            let share = keys
                .share
                .as_ref()
                .expect("every honest node holds a share");
            assert_eq!(
                keys.sharing.partial_public(share.index).expect("a player"),
                share.public::<welkin_types::Variant>(),
                "each share matches the proven polynomial"
            );
        }
        let (_, output) = generated(entry).await;
        assert!(
            output.dealers().position(&members[liar]).is_none(),
            "the equivocating dealer is left out"
        );
        assert!(
            nodes[victim]
                .as_ref()
                .expect("honest")
                .metrics()
                .lines()
                .any(|l| l.contains("peers_blocked") && l.contains("keygen") && !l.ends_with(" 0")),
            "the player that got a bad share blocks its dealer"
        );

        // The cluster serves and certifies under the key.
        let acked = workload(
            &context,
            &fixture,
            &nodes,
            &[0, 1, 2],
            1_000,
            40,
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(acked.len(), 40, "every transaction commits");
        let top = common_height(&nodes);
        assert!(wait_for_height(&context, &nodes, top + 2, Duration::from_secs(30)).await);
        check_invariants(&context, &fixture, &nodes, &acked, &gaps).await;
    });
}

/// A node that crashes in the middle of the round (after acknowledging dealings that the
/// dealers' logs name) takes its part up again from what it kept on disk, and ends with a
/// share of the same key as everyone else.
#[test]
fn a_node_that_crashes_during_key_generation_still_gets_its_share() {
    runner(43).start(|context| async move {
        let fixture = Fixture::new(4, 43).dealerless();
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(10, 100)).await;
        let roles: Vec<Role> = (0..4).map(|_| Role::Honest(0)).collect();
        let mut cluster = start_roles(&context, &net, &fixture, &roles).await;
        let victim = 2;
        // Crash it once the first log is recorded: every dealer that gave one had the
        // victim's acknowledgement.
        let deadline = context.current() + Duration::from_secs(60);
        loop {
            let watcher = cluster.nodes[0].as_ref().expect("up");
            let logs = match watcher.value(welkin_state::keys::keygen()).await {
                Some(bytes) => Keygen::decode(&bytes).expect("decodes").logs.len(),
                None => 0,
            };
            if logs > 0 {
                break;
            }
            assert!(context.current() < deadline, "no log was ever recorded");
            context.sleep(Duration::from_millis(20)).await;
        }
        let mut gaps = Gaps::new();
        crash(&mut cluster, victim, &mut gaps).await;
        context.sleep(Duration::from_millis(500)).await;
        let running = start_node_as(&context, &net, &fixture, victim, &Role::Honest(0), 1).await;
        cluster.nodes[victim] = Some(running.node);
        cluster.tasks[victim] = Some(running.task);
        let nodes = &cluster.nodes;
        wait_for_keys(&context, nodes, "not every node got the key").await;
        let live: Vec<&Node> = nodes.iter().flatten().collect();
        let key = fixture.cluster_key(&live).await;
        let (_, output) = generated(live[0]).await;
        let keys = nodes[victim]
            .as_ref()
            .expect("up")
            .cluster_keys()
            .expect("held");
        assert_eq!(keys.sharing.public(), &key);
        let share = keys
            .share
            .as_ref()
            .expect("the restarted node made its share from the dealings it kept");
        assert_eq!(
            output
                .public()
                .partial_public(share.index)
                .expect("a player"),
            share.public::<welkin_types::Variant>()
        );
    });
}

/// A member that is down when the cluster first starts: the others give their logs without
/// its acknowledgement (revealing its dealings in them), and the round is decided at its
/// deadline without its log. When it starts, it makes its share from those reveals, and the
/// cluster certifies under the key with all four.
#[test]
fn a_member_down_at_first_start_does_not_stop_key_generation() {
    runner(44).start(|context| async move {
        let fixture = Fixture::new(4, 44).dealerless();
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(10, 100)).await;
        let late = 3;
        let mut cluster = Cluster {
            nodes: Vec::new(),
            byzantine: std::collections::BTreeMap::new(),
            tasks: Vec::new(),
        };
        for index in 0..4 {
            if index == late {
                cluster.nodes.push(None);
                cluster.tasks.push(None);
                continue;
            }
            let running = start_node_as(&context, &net, &fixture, index, &Role::Honest(0), 0).await;
            cluster.nodes.push(Some(running.node));
            cluster.tasks.push(Some(running.task));
        }
        wait_for_keys(&context, &cluster.nodes, "the three never made the key").await;
        let members = fixture.public_keys();
        let (_, output) = generated(cluster.nodes[0].as_ref().expect("up")).await;
        assert!(
            output.dealers().position(&members[late]).is_none(),
            "no log from the absent member"
        );
        assert!(
            output.revealed().position(&members[late]).is_some(),
            "its dealings are revealed"
        );

        let running = start_node_as(&context, &net, &fixture, late, &Role::Honest(0), 0).await;
        cluster.nodes[late] = Some(running.node);
        cluster.tasks[late] = Some(running.task);
        wait_for_keys(
            &context,
            &cluster.nodes,
            "the late member never got the key",
        )
        .await;
        let keys = cluster.nodes[late]
            .as_ref()
            .expect("up")
            .cluster_keys()
            .expect("held");
        let share = keys
            .share
            .as_ref()
            .expect("a share from the revealed dealings");
        assert_eq!(
            output
                .public()
                .partial_public(share.index)
                .expect("a player"),
            share.public::<welkin_types::Variant>()
        );
        // From now on every node, the late one included, certifies every height.
        let gaps = gaps_until_now(&cluster.nodes);
        let acked = workload(
            &context,
            &fixture,
            &cluster.nodes,
            &[0, 1, 2, 3],
            1_000,
            20,
            Duration::from_secs(60),
        )
        .await;
        assert_eq!(acked.len(), 20, "every transaction commits");
        let top = common_height(&cluster.nodes);
        assert!(wait_for_height(&context, &cluster.nodes, top + 2, Duration::from_secs(30)).await);
        check_invariants(&context, &fixture, &cluster.nodes, &acked, &gaps).await;
    });
}
