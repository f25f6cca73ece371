//! Consensus across epochs: a cluster whose genesis has a membership policy runs one engine
//! per epoch; the engines hand over at every boundary, under load and with a crash, and
//! every invariant holds on every honest node across them.

use crate::{harness::*, runner};
use commonware_runtime::Runner as _;
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
