use super::*;
use crate::{partial, tests::cluster};
use commonware_utils::rng::TestRng;

fn targets(n: u8) -> Vec<Digest> {
    (0..n).map(|i| hash_parts(&[b"target", &[i]])).collect()
}

fn context(targets: &[Digest]) -> TargetsContext<'_> {
    TargetsContext {
        cluster_id: hash_parts(&[b"cluster"]),
        read_id: hash_parts(&[b"request"]),
        targets,
    }
}

#[test]
fn a_batch_envelope_opens_to_the_partials_in_order() {
    let (_, shares) = cluster(1);
    let targets = targets(3);
    let context = context(&targets);
    let mut rng = TestRng::new(2);
    let reader = ReaderKey::generate(&mut rng);
    let sent: Vec<_> = targets.iter().map(|t| partial(&shares[1], t)).collect();
    let envelope = seal_partials(&mut rng, &reader.public(), &context, &sent).expect("seals");
    assert_eq!(
        reader.open_partials(&context, &envelope).expect("opens"),
        sent
    );
}

#[test]
fn an_envelope_opens_for_no_other_request_nor_reordered_targets() {
    let (_, shares) = cluster(3);
    let targets = targets(2);
    let mut rng = TestRng::new(4);
    let reader = ReaderKey::generate(&mut rng);
    let sent: Vec<_> = targets.iter().map(|t| partial(&shares[0], t)).collect();
    let envelope =
        seal_partials(&mut rng, &reader.public(), &context(&targets), &sent).expect("seals");
    let reversed: Vec<_> = targets.iter().rev().copied().collect();
    assert!(matches!(
        reader.open_partials(&context(&reversed), &envelope),
        Err(EnvelopeError::OtherContext { .. })
    ));
    let other = TargetsContext {
        read_id: hash_parts(&[b"other request"]),
        ..context(&targets)
    };
    assert!(matches!(
        reader.open_partials(&other, &envelope),
        Err(EnvelopeError::OtherContext { .. })
    ));
    // A single partial's envelope is never read as a batch's.
    assert!(matches!(
        reader.open_partials(&context(&targets), &[crate::ENVELOPE_VERSION]),
        Err(EnvelopeError::Version(1))
    ));
}

#[test]
fn wrong_counts_are_refused_on_both_sides() {
    let (_, shares) = cluster(5);
    let targets = targets(3);
    let context = context(&targets);
    let mut rng = TestRng::new(6);
    let reader = ReaderKey::generate(&mut rng);
    let two: Vec<_> = targets[..2]
        .iter()
        .map(|t| partial(&shares[0], t))
        .collect();
    assert!(matches!(
        seal_partials(&mut rng, &reader.public(), &context, &two),
        Err(EnvelopeError::WrongCount {
            found: 2,
            expected: 3
        })
    ));
    // A sender that seals two partials for a three-target request (bypassing the check).
    let (encapped, ciphertext) = suite::seal(
        &mut rng,
        &reader.public(),
        &context.info(),
        &[TARGETS_ENVELOPE_VERSION],
        &two.encode(),
    )
    .expect("seals");
    let mut envelope = Vec::new();
    Envelope {
        reader: reader.public(),
        context: context.digest(),
        encapped,
        ciphertext,
    }
    .write_versioned(TARGETS_ENVELOPE_VERSION, &mut envelope);
    assert!(matches!(
        reader.open_partials(&context, &envelope),
        Err(EnvelopeError::WrongCount {
            found: 2,
            expected: 3
        })
    ));
    let too_many = vec![hash_parts(&[b"t"]); MAX_TARGETS + 1];
    assert!(matches!(
        seal_partials(&mut rng, &reader.public(), &self::context(&too_many), &[]),
        Err(EnvelopeError::TooManyTargets(_))
    ));
}

#[test]
fn the_batch_envelope_encoding_is_frozen() {
    let (_, shares) = cluster(16);
    let targets = targets(2);
    let context = context(&targets);
    let mut rng = TestRng::new(17);
    let reader = ReaderKey::generate(&mut rng);
    let sent: Vec<_> = targets.iter().map(|t| partial(&shares[0], t)).collect();
    let envelope = seal_partials(&mut rng, &reader.public(), &context, &sent).expect("seals");
    assert_eq!(envelope[0], TARGETS_ENVELOPE_VERSION);
    assert_eq!(
        hex::encode(hash_parts(&[&envelope])),
        FROZEN_TARGETS_ENVELOPE_HASH,
        "the batch envelope encoding changed: bump TARGETS_ENVELOPE_VERSION"
    );
}

/// The hash of the frozen batch envelope fixture.
const FROZEN_TARGETS_ENVELOPE_HASH: &str =
    "b98337884863bec8877de58edfa766efd2058cd50aa3f613d60c6e397fbdd2a0";
