use super::*;
use crate::{
    Opener, partial,
    tests::{cluster, sealed},
};
use commonware_utils::{rng::TestRng, test_rng};
use rand_core::Rng as _;

fn context(target: Digest) -> ReleaseContext {
    ReleaseContext {
        cluster_id: hash_parts(&[b"cluster"]),
        read_id: hash_parts(&[b"read tx"]),
        target,
    }
}

/// Where the clear context digest sits in an envelope: after the version and the reader key.
const CONTEXT_AT: usize = 1 + KEY_BYTES;

/// A reader, the context of its read, and node 0's partial for it sealed to the reader (in
/// a cluster made from `seed`).
fn released(seed: u64) -> (ReaderKey, ReleaseContext, Vec<u8>) {
    let (sharing, shares) = cluster(seed);
    let value = sealed(&sharing, b"secret");
    let context = context(value.target);
    let mut rng = TestRng::new(seed);
    let reader = ReaderKey::generate(&mut rng);
    let envelope = seal_partial(
        &mut rng,
        &reader.public(),
        &context,
        &partial(&shares[0], &value.target),
    )
    .expect("seals");
    (reader, context, envelope)
}

#[test]
fn partials_opened_by_the_reader_are_accepted_by_the_opener_and_open_the_value() {
    let (sharing, shares) = cluster(10);
    let value = sealed(&sharing, b"hunter2");
    let context = context(value.target);
    let mut rng = test_rng();
    let reader = ReaderKey::generate(&mut rng);
    let mut opener = Opener::new(&sharing, value.target);
    for share in &shares[..3] {
        let sent = partial(share, &value.target);
        let envelope =
            seal_partial(&mut rng, &reader.public(), &context, &sent).expect("seals to the key");
        assert!(envelope.len() <= MAX_ENVELOPE_BYTES);
        let opened = reader.open_partial(&context, &envelope).expect("opens");
        assert_eq!(opened, sent);
        opener.add(opened).expect("the opened partial verifies");
    }
    assert_eq!(opener.open(&value).expect("opens").as_slice(), b"hunter2");
}

#[test]
fn another_reader_key_cannot_open_it() {
    let (_, context, envelope) = released(11);
    let thief = ReaderKey::generate(&mut test_rng());
    assert!(matches!(
        thief.open_partial(&context, &envelope),
        Err(EnvelopeError::OtherReader { .. })
    ));
    // Naming the thief's key in the clear does not help: HPKE binds the key it sealed to.
    let mut renamed = envelope.clone();
    renamed[1..1 + KEY_BYTES].copy_from_slice(&thief.public());
    assert!(matches!(
        thief.open_partial(&context, &renamed),
        Err(EnvelopeError::DoesNotOpen)
    ));
}

#[test]
fn an_envelope_for_another_read_target_or_cluster_is_refused() {
    let (reader, context, envelope) = released(12);
    let elsewhere = hash_parts(&[b"elsewhere"]);
    let others = [
        ReleaseContext {
            read_id: elsewhere,
            ..context
        },
        ReleaseContext {
            target: elsewhere,
            ..context
        },
        ReleaseContext {
            cluster_id: elsewhere,
            ..context
        },
    ];
    for other in others {
        assert!(
            matches!(
                reader.open_partial(&other, &envelope),
                Err(EnvelopeError::OtherContext { .. })
            ),
            "{other:?}"
        );
        // Rewriting the clear digest to the other context does not help: HPKE's info binds
        // the context it was sealed for.
        let mut replayed = envelope.clone();
        replayed[CONTEXT_AT..CONTEXT_AT + Digest::SIZE].copy_from_slice(other.digest().as_ref());
        assert!(
            matches!(
                reader.open_partial(&other, &replayed),
                Err(EnvelopeError::DoesNotOpen)
            ),
            "{other:?}"
        );
    }
}

#[test]
fn every_altered_byte_or_truncation_is_refused() {
    let (reader, context, envelope) = released(13);
    for at in 0..envelope.len() {
        let mut altered = envelope.clone();
        altered[at] ^= 0x01;
        assert!(
            reader.open_partial(&context, &altered).is_err(),
            "altered at {at}"
        );
    }
    // The encapsulated key and the ciphertext are what HPKE authenticates.
    let mut altered = envelope.clone();
    let last = altered.len() - 1;
    altered[last] ^= 0x80;
    assert!(matches!(
        reader.open_partial(&context, &altered),
        Err(EnvelopeError::DoesNotOpen)
    ));
    let mut other_version = envelope.clone();
    other_version[0] = 2;
    assert!(matches!(
        reader.open_partial(&context, &other_version),
        Err(EnvelopeError::Version(2))
    ));
    for cut in 0..envelope.len() {
        assert!(
            matches!(
                reader.open_partial(&context, &envelope[..cut]),
                Err(EnvelopeError::Malformed { .. })
            ),
            "cut at {cut}"
        );
    }
    let mut longer = envelope.clone();
    longer.push(0);
    assert!(matches!(
        reader.open_partial(&context, &longer),
        Err(EnvelopeError::Malformed { .. })
    ));
}

#[test]
fn garbage_and_oversize_input_are_errors_not_panics() {
    let context = context(hash_parts(&[b"target"]));
    let mut rng = TestRng::new(14);
    let reader = ReaderKey::generate(&mut rng);
    for round in 0..2_000 {
        let len = rng.next_u32() as usize % (MAX_ENVELOPE_BYTES + 16);
        let mut garbage = vec![0u8; len];
        rng.fill_bytes(&mut garbage);
        if round % 2 == 0 && len > 0 {
            // Half the rounds get past the version check.
            garbage[0] = ENVELOPE_VERSION;
        }
        assert!(
            reader.open_partial(&context, &garbage).is_err(),
            "{garbage:?}"
        );
    }
    assert!(matches!(
        reader.open_partial(&context, &[ENVELOPE_VERSION; MAX_ENVELOPE_BYTES + 1]),
        Err(EnvelopeError::TooLarge(n)) if n == MAX_ENVELOPE_BYTES + 1
    ));
}

#[test]
fn an_envelope_holding_something_else_is_named_a_bad_partial() {
    // A faulty node seals bytes that are not a partial to the reader: HPKE opens them (base
    // mode authenticates no sender), the decoder refuses them.
    let context = context(hash_parts(&[b"target"]));
    let mut rng = test_rng();
    let reader = ReaderKey::generate(&mut rng);
    let (encapped, ciphertext) = suite::seal(
        &mut rng,
        &reader.public(),
        &context.info(),
        &[ENVELOPE_VERSION],
        &[0xff; 20],
    )
    .expect("seals");
    let envelope = Envelope {
        reader: reader.public(),
        context: context.digest(),
        encapped,
        ciphertext,
    }
    .encode();
    assert!(matches!(
        reader.open_partial(&context, &envelope),
        Err(EnvelopeError::BadPartial(_))
    ));
}

#[test]
fn a_low_order_reader_key_is_refused_when_sealing() {
    let (sharing, shares) = cluster(15);
    let value = sealed(&sharing, b"secret");
    let error = seal_partial(
        &mut test_rng(),
        &[0; KEY_BYTES],
        &context(value.target),
        &partial(&shares[0], &value.target),
    )
    .expect_err("no shared secret with the zero point");
    assert_eq!(
        error.to_string(),
        format!(
            "reader key {} is not a usable x25519 public key",
            "00".repeat(32)
        )
    );
}

#[test]
fn debug_shows_the_public_key_and_never_the_secret() {
    use hpke::Serializable as _;
    let reader = ReaderKey::generate(&mut test_rng());
    let printed = format!("{reader:?}");
    assert!(printed.contains(&hex::encode(reader.public())), "{printed}");
    assert!(
        !printed.contains(&hex::encode(reader.secret.to_bytes())),
        "{printed}"
    );
}

#[test]
fn the_envelope_encoding_is_frozen() {
    // A fixed cluster, reader, rng and context give fixed bytes: the layout must not change
    // silently.
    let (_, shares) = cluster(16);
    let context = context(hash_parts(&[b"fixture target"]));
    let mut rng = TestRng::new(17);
    let reader = ReaderKey::generate(&mut rng);
    let sent = partial(&shares[0], &context.target);
    let envelope = seal_partial(&mut rng, &reader.public(), &context, &sent).expect("seals");
    assert_eq!(envelope[0], ENVELOPE_VERSION);
    assert_eq!(
        envelope.len(),
        1 + KEY_BYTES + Digest::SIZE + KEY_BYTES + 1 + sent.encode_size() + TAG_BYTES
    );
    assert_eq!(
        hex::encode(hash_parts(&[&envelope])),
        FROZEN_ENVELOPE_HASH,
        "the envelope encoding changed: bump ENVELOPE_VERSION"
    );
    assert_eq!(
        reader.open_partial(&context, &envelope).expect("opens"),
        sent
    );
}

/// The hash of the frozen envelope fixture.
const FROZEN_ENVELOPE_HASH: &str =
    "0a06cba58230d1663caca8b21bc879f24700cb9639a2625eb464235ab3d15c3a";
