//! Whole-crate tests: batches of mixed versions verified as a client would, refusals counted,
//! and random or mutated packets thrown at the server without a panic.

use std::sync::atomic::Ordering::Relaxed;

use ed25519_dalek::SigningKey;
use proptest::prelude::*;

use crate::{
    Counters, Keys, MIN_RFC_RADIUS_S, Reading, VerifyError, Version, request, respond,
    verify_response,
};

const NOW: Reading = Reading {
    midpoint_ns: 1_795_000_000_123_456_789,
    radius_ns: 2_000_000,
};

fn keys() -> Keys {
    Keys::new(SigningKey::from_bytes(&[42; 32]))
}

fn nonce(i: u8) -> [u8; 32] {
    [i; 32]
}

#[test]
fn a_mixed_batch_is_answered_each_in_its_own_version() {
    let mut keys = keys();
    let public = keys.public_key();
    let versions = [Version::Draft07, Version::Rfc1, Version::Draft12];
    let requests: Vec<Vec<u8>> = (0..13u8)
        .map(|i| request(versions[i as usize % 3], &nonce(i), Some(&public)))
        .collect();
    let batch: Vec<&[u8]> = requests.iter().map(Vec::as_slice).collect();
    let counters = Counters::default();
    let replies = respond(&batch, Some(NOW), &mut keys, &counters);
    assert_eq!(counters.answered.load(Relaxed), 13);
    // One signature per version in the batch.
    assert_eq!(counters.signatures.load(Relaxed), 3);
    for (i, (request, reply)) in requests.iter().zip(&replies).enumerate() {
        let reply = reply.as_ref().expect("a reply");
        assert!(reply.len() <= request.len());
        let reading = verify_response(request, reply, &public).expect("verifies");
        let lower = reading.midpoint_ns - reading.radius_ns;
        let upper = reading.midpoint_ns + reading.radius_ns;
        assert!(
            lower <= NOW.midpoint_ns - NOW.radius_ns && NOW.midpoint_ns + NOW.radius_ns <= upper,
            "request {i}: {reading:?} does not contain {NOW:?}"
        );
        if versions[i % 3] != Version::Draft07 {
            assert!(reading.radius_ns >= u64::from(MIN_RFC_RADIUS_S) * 1_000_000_000);
        }
        // A reply proves nothing for another request.
        let other = &requests[(i + 3) % requests.len()];
        assert!(verify_response(other, reply, &public).is_err());
    }
}

#[test]
fn replies_do_not_verify_with_another_key_or_when_altered() {
    let mut keys = keys();
    let public = keys.public_key();
    let stranger = SigningKey::from_bytes(&[7; 32]).verifying_key();
    for version in [Version::Draft07, Version::Rfc1, Version::Draft12] {
        let sent = request(version, &nonce(1), None);
        let replies = respond(&[&sent], Some(NOW), &mut keys, &Counters::default());
        let reply = replies[0].clone().expect("a reply");
        assert_eq!(
            verify_response(&sent, &reply, &stranger),
            Err(VerifyError::Delegation)
        );
        for at in (12..reply.len()).step_by(7) {
            let mut altered = reply.clone();
            altered[at] ^= 0x10;
            assert!(
                verify_response(&sent, &altered, &public).is_err(),
                "{version:?}: flipping byte {at} went unnoticed"
            );
        }
    }
}

#[test]
fn without_certified_time_nothing_is_answered() {
    let mut keys = keys();
    let sent = request(Version::Rfc1, &nonce(1), None);
    let counters = Counters::default();
    assert_eq!(respond(&[&sent], None, &mut keys, &counters), vec![None]);
    assert_eq!(counters.no_time.load(Relaxed), 1);
    assert_eq!(counters.answered.load(Relaxed), 0);
}

#[test]
fn refusals_are_counted_by_kind() {
    let mut keys = keys();
    let stranger = SigningKey::from_bytes(&[7; 32]).verifying_key();
    let good = request(Version::Rfc1, &nonce(1), None);
    let mut unknown = request(Version::Draft07, &nonce(2), None);
    let at = unknown
        .windows(4)
        .position(|w| w == 0x8000_0007u32.to_le_bytes())
        .expect("the version in the packet");
    unknown[at..at + 4].copy_from_slice(&0x8000_0003u32.to_le_bytes());
    let other = request(Version::Rfc1, &nonce(3), Some(&stranger));
    let mut garbage = vec![0xa5u8; 1100];
    garbage[..8].copy_from_slice(b"ROUGHTIM");
    let oversized = vec![0u8; 2000];
    let batch: [&[u8]; 6] = [&good, &good[..500], &unknown, &other, &garbage, &oversized];
    let counters = Counters::default();
    let replies = respond(&batch, Some(NOW), &mut keys, &counters);
    assert!(replies[0].is_some());
    assert!(replies[1..].iter().all(Option::is_none));
    assert_eq!(counters.answered.load(Relaxed), 1);
    assert_eq!(counters.too_small.load(Relaxed), 1);
    assert_eq!(counters.unsupported_version.load(Relaxed), 1);
    assert_eq!(counters.other_server.load(Relaxed), 1);
    assert_eq!(counters.malformed.load(Relaxed), 2);
}

/// A valid request of each version, for mutation.
fn seeds() -> Vec<Vec<u8>> {
    [Version::Draft07, Version::Rfc1, Version::Draft12]
        .into_iter()
        .map(|v| request(v, &nonce(5), None))
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    #[test]
    fn random_packets_never_panic(packet in proptest::collection::vec(any::<u8>(), 0..1600)) {
        let mut keys = keys();
        let counters = Counters::default();
        let replies = respond(&[&packet], Some(NOW), &mut keys, &counters);
        let counted = counters.answered.load(Relaxed) + counters.malformed.load(Relaxed)
            + counters.too_small.load(Relaxed) + counters.unsupported_version.load(Relaxed)
            + counters.other_server.load(Relaxed);
        prop_assert_eq!(counted, 1);
        prop_assert_eq!(replies[0].is_some(), counters.answered.load(Relaxed) == 1);
    }

    #[test]
    fn mutated_requests_never_panic_and_replies_stay_small(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
        cut in 0usize..1100,
    ) {
        let mut packet = seeds()[which].clone();
        for (at, value) in edits {
            let at = usize::from(at) % packet.len();
            packet[at] = value;
        }
        packet.truncate(cut.max(1000));
        let mut keys = keys();
        let counters = Counters::default();
        let replies = respond(&[&packet], Some(NOW), &mut keys, &counters);
        if let Some(reply) = &replies[0] {
            prop_assert!(reply.len() <= packet.len());
        }
    }

    #[test]
    fn mutated_replies_never_panic_the_verifier(
        which in 0usize..3,
        edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 1..8),
    ) {
        let sent = seeds()[which].clone();
        let mut keys = keys();
        let public = keys.public_key();
        let replies = respond(&[&sent], Some(NOW), &mut keys, &Counters::default());
        let mut reply = replies[0].clone().expect("a reply");
        for (at, value) in edits {
            let at = usize::from(at) % reply.len();
            reply[at] = value;
        }
        let _ = verify_response(&sent, &reply, &public);
    }
}

/// How fast `respond` answers, one request at a time and in full batches (no sockets):
/// `cargo test -p welkin-roughtime --release -- --ignored --nocapture timing_respond`.
#[test]
#[ignore]
fn timing_respond() {
    use std::time::Instant;

    const REQUESTS: usize = 64 * 200;
    let mut keys = keys();
    let requests: Vec<Vec<u8>> = (0..REQUESTS)
        .map(|i| request(Version::Rfc1, &[i as u8; 32], None))
        .collect();
    let mut figures = Vec::new();
    for batch_size in [1usize, 8, 64] {
        let counters = Counters::default();
        let start = Instant::now();
        for chunk in requests.chunks(batch_size) {
            let batch: Vec<&[u8]> = chunk.iter().map(Vec::as_slice).collect();
            let replies = respond(&batch, Some(NOW), &mut keys, &counters);
            assert!(replies.iter().all(Option::is_some));
        }
        let per_second = REQUESTS as f64 / start.elapsed().as_secs_f64();
        println!("batch {batch_size:>2}: {per_second:.0} requests/s");
        figures.push(format!(
            "{{\"batch\": {batch_size}, \"requests_per_second\": {per_second:.0}}}"
        ));
    }
    let path = std::env::temp_dir().join("welkin-roughtime-respond.json");
    std::fs::write(&path, format!("[{}]\n", figures.join(", "))).expect("figures written");
    println!("written to {}", path.display());
}
