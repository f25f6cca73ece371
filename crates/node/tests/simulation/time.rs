//! Certified time on the deterministic runtime, with per-node clocks: honest clocks skewed
//! within their radius (one free-running, with no host synchronisation, and drifting), and
//! liars. True time is the simulation's own clock.
//!
//! - With `f` liars (one consistently 2 s ahead with a 5 ms radius, one telling each
//!   coordinator a different time), every certificate any honest node gets contains true
//!   time, verifies under the cluster key, and every honest coordinator ends up
//!   quarantining both liars.
//! - With more than `f` liars (each lying differently), certificates are refused, never
//!   wrong.

use crate::{harness::*, runner, tamper::Lie};
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _};
use std::time::{Duration, SystemTime};
use welkin_node::time::{ClockState, TimeFailure};

fn ns(time: SystemTime) -> u64 {
    u64::try_from(
        time.duration_since(SystemTime::UNIX_EPOCH)
            .expect("after the epoch")
            .as_nanos(),
    )
    .expect("fits")
}

/// Asks `node` for `rounds` certificates one after another and checks each that comes:
/// it answers the nonce, verifies under the cluster key, and its interval holds true time
/// at some instant between the request and the answer. Returns (certified, refused).
async fn ask(context: &Ctx, fixture: &Fixture, node: &Node, who: usize, rounds: u32) -> (u32, u32) {
    let cluster_id = fixture.genesis.cluster_id();
    let cluster_key = fixture.dealt_key();
    let (mut certified, mut refused) = (0, 0);
    for round in 0..rounds {
        let mut nonce = [0u8; 32];
        nonce[..8].copy_from_slice(&(who as u64).to_be_bytes());
        nonce[8..12].copy_from_slice(&round.to_be_bytes());
        let asked = ns(context.current());
        let answer = node.certify_time(nonce).await;
        let answered = ns(context.current());
        match answer {
            Ok(time) => {
                time.verify_for(&nonce, &cluster_id, cluster_key)
                    .expect("the certificate verifies under the cluster key");
                let certificate = &time.certificate;
                assert!(
                    certificate.earliest_ns <= answered && certificate.latest_ns >= asked,
                    "node {who}: certified [{}, {}] misses true time [{asked}, {answered}]",
                    certificate.earliest_ns,
                    certificate.latest_ns
                );
                certified += 1;
            }
            Err(TimeFailure::Refused(reason)) => {
                assert!(!reason.is_empty(), "a refusal says why");
                refused += 1;
            }
            Err(other) => panic!("node {who}: unexpected failure {other}"),
        }
        context.sleep(Duration::from_millis(50)).await;
    }
    (certified, refused)
}

/// `n = 7`: two liars of two kinds, five honest clocks (one free-running).
pub(crate) fn time_with_f_liars(seed: u64) {
    runner(seed).start(|context| async move {
        let n = 7;
        let fixture = Fixture::new(n, seed);
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(10, 100)).await;
        let (steady_liar, two_faced) = (5, 6);
        let roles: Vec<Role> = (0..n)
            .map(|i| match i {
                // Honest clocks within their 5 ms radius, each off differently.
                0 => Role::Honest(-3),
                1 => Role::Honest(2),
                2 => Role::Honest(0),
                3 => Role::Honest(4),
                // Free-running and drifting (300 ppm): no kernel bound, so its first readings
                // are a second wide, and later ones grow at 500 ppm between agreements.
                4 => Role::Drifting(40, 300),
                // Claims a 5 ms radius while 2 s ahead.
                5 => Role::BrokenClock(2_000),
                _ => Role::Lying(Lie::TimePerPeer {
                    key: Box::new(fixture.keys[i].clone()),
                    cluster_id: fixture.genesis.cluster_id(),
                    members: fixture.keys.iter().map(|k| k.public_key()).collect(),
                }),
            })
            .collect();
        let cluster = start_roles(&context, &net, &fixture, &roles).await;
        context.sleep(Duration::from_secs(2)).await;
        let honest: Vec<(usize, Node)> = cluster
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.clone().map(|n| (i, n)))
            .collect();
        let (context_ref, fixture_ref) = (&context, &fixture);
        let asks = honest
            .iter()
            .map(|(i, node)| async move { ask(context_ref, fixture_ref, node, *i, 12).await });
        let results = futures::future::join_all(asks).await;
        for ((i, _), (certified, refused)) in honest.iter().zip(&results) {
            assert_eq!(
                (*certified, *refused),
                (12, 0),
                "node {i}: every request with at most f liars is certified"
            );
        }
        for (i, node) in &honest {
            let status = node.time().status();
            for liar in [steady_liar, two_faced] {
                assert_eq!(
                    status.nodes[liar].state,
                    ClockState::Quarantined,
                    "node {i} quarantines liar {liar}: {:?}",
                    status.nodes[liar]
                );
                assert!(status.nodes[liar].disagreements >= 3);
            }
            for other in 0..5 {
                assert_ne!(
                    status.nodes[other].state,
                    ClockState::Quarantined,
                    "node {i} never quarantines honest node {other}"
                );
                assert_eq!(
                    status.nodes[other].disagreements, 0,
                    "node {i} on node {other}"
                );
            }
            // The certified interval, carried forward on this node's clock, holds true time.
            let now = ns(context.current());
            let (earliest, latest) = node.certified_now().expect("a recent certificate");
            assert!(
                earliest <= now && now <= latest,
                "node {i}: [{earliest}, {latest}] misses {now}"
            );
        }
        // The quarantines are in the audit log as evidence anyone can check with the genesis
        // file: each liar's own signed reading and a certificate it misses.
        let members: Vec<_> = fixture.keys.iter().map(|k| k.public_key()).collect();
        let node = &honest[0].1;
        let mut flagged = std::collections::BTreeMap::<u32, u32>::new();
        let deadline = context.current() + Duration::from_secs(10);
        while flagged.len() < 2 {
            assert!(
                context.current() < deadline,
                "both liars are flagged in the log: {flagged:?}"
            );
            context.sleep(Duration::from_millis(500)).await;
            let size = node.status().log_size;
            if size == 0 {
                continue;
            }
            flagged.clear();
            for bytes in node.log_entries(0, size).await.expect("entries") {
                let entry = welkin_types::LogEntry::from_bytes(&bytes).expect("an entry");
                let welkin_types::Payload::Record {
                    media_type,
                    content,
                } = &entry.tx.tx.payload
                else {
                    continue;
                };
                if media_type != welkin_time::CLOCK_FAULT_MEDIA_TYPE {
                    continue;
                }
                let fault: welkin_time::ClockFault =
                    welkin_types::decode(content).expect("a clock fault decodes");
                let by = fault
                    .verify(&fixture.genesis.cluster_id(), fixture.dealt_key(), &members)
                    .expect("logged evidence checks out");
                assert!(
                    by.unsigned_abs() > 100_000_000,
                    "a liar is off by more than 100 ms: {by}"
                );
                *flagged.entry(fault.reading.signer).or_default() += 1;
            }
        }
        assert_eq!(
            flagged.keys().copied().collect::<Vec<_>>(),
            vec![steady_liar as u32, two_faced as u32],
            "only the liars are flagged"
        );
        // The free-running node learned its error from its certificates: far below its
        // initial second.
        let unsynced = &honest
            .iter()
            .find(|(i, _)| *i == 4)
            .expect("node 4 is honest")
            .1;
        let radius = unsynced.time().status().reading.radius_ns;
        assert!(radius < 100_000_000, "radius {radius} ns after agreeing");
        assert!(
            radius >= 40_000_000 - 5_000_000,
            "radius {radius} ns covers its 40 ms offset"
        );
    });
}

/// `n = 4`: two liars (more than `f = 1`), each lying differently: no certificate is made.
pub(crate) fn time_with_too_many_liars(seed: u64) {
    runner(seed).start(|context| async move {
        let n = 4;
        let fixture = Fixture::new(n, seed);
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(10, 100)).await;
        let roles = vec![
            Role::Honest(1),
            Role::Honest(-2),
            Role::BrokenClock(2_000),
            Role::BrokenClock(-1_500),
        ];
        let cluster = start_roles(&context, &net, &fixture, &roles).await;
        context.sleep(Duration::from_secs(1)).await;
        for (i, node) in cluster.nodes.iter().enumerate() {
            let Some(node) = node else { continue };
            let (certified, refused) = ask(&context, &fixture, node, i, 5).await;
            assert_eq!(
                (certified, refused),
                (0, 5),
                "node {i} refuses rather than guess"
            );
        }
    });
}
