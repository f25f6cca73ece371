use super::*;
use commonware_codec::Encode as _;
use commonware_cryptography::bls12381::{
    dkg::feldman_desmedt::deal_anonymous,
    primitives::{ops, sharing::Mode},
};
use commonware_utils::{N3f1, NZU32, test_rng};

/// A 4-node cluster (threshold 3): its public polynomial and every share.
pub(crate) fn cluster(seed: u64) -> (Sharing, Vec<Share>) {
    let (sharing, shares) = deal_anonymous::<Variant, N3f1>(
        commonware_utils::rng::TestRng::new(seed),
        Mode::NonZeroCounter,
        NZU32!(4),
    );
    (sharing, shares)
}

pub(crate) fn sealed(sharing: &Sharing, plaintext: &[u8]) -> SealedValue {
    // The plaintext names the test value, so that two values in one test differ in target.
    let name: [&[u8]; 3] = [b"secret/", plaintext, &1u64.to_be_bytes()];
    seal(
        &mut test_rng(),
        sharing.public(),
        target(&name, &[7; 32]),
        plaintext,
    )
    .expect("seals")
}

#[test]
fn a_threshold_of_verified_partials_opens_it_and_fewer_do_not() {
    let (sharing, shares) = cluster(1);
    let value = sealed(&sharing, b"hunter2");
    let mut opener = Opener::new(&sharing, value.target);
    for share in &shares[..2] {
        opener.add(partial(share, &value.target)).expect("valid");
    }
    // f + 1 = 2 shares (more than any f nodes hold together) do not open it.
    assert!(!opener.ready());
    assert_eq!(
        opener.open(&value),
        Err(OpenError::NotEnough { have: 2, need: 3 })
    );
    opener
        .add(partial(&shares[3], &value.target))
        .expect("valid");
    assert_eq!(opener.open(&value).expect("opens").as_slice(), b"hunter2");
}

#[test]
fn f_lying_nodes_are_named_and_cannot_stop_the_honest_threshold() {
    let (sharing, shares) = cluster(2);
    let value = sealed(&sharing, b"the value");
    let mut opener = Opener::new(&sharing, value.target);
    // Node 0 lies: a partial over another target, under its own index.
    let lie = partial(&shares[0], &hash_parts(&[b"another target"]));
    assert_eq!(
        opener.add(lie),
        Err(PartialError::Invalid(shares[0].index.get()))
    );
    // An index no member has is refused and not remembered.
    let mut stranger = partial(&shares[1], &value.target);
    stranger.index = commonware_utils::Participant::new(9);
    assert_eq!(opener.add(stranger), Err(PartialError::Invalid(9)));
    assert_eq!(opener.refused.len(), 1);
    // Its slot is closed: a second message from it is refused, even a valid one.
    assert_eq!(
        opener.add(partial(&shares[0], &value.target)),
        Err(PartialError::Duplicate(shares[0].index.get()))
    );
    for share in &shares[1..] {
        opener.add(partial(share, &value.target)).expect("valid");
    }
    assert_eq!(opener.open(&value).expect("opens").as_slice(), b"the value");
}

#[test]
fn signatures_made_for_anything_else_open_nothing() {
    let (sharing, shares) = cluster(3);
    let value = sealed(&sharing, b"secret");
    let recover = |namespace: &[u8], message: &[u8]| {
        let partials: Vec<_> = shares[..3]
            .iter()
            .map(|s| threshold::sign_message::<Variant>(s, namespace, message))
            .collect();
        threshold::recover::<Variant, _>(&sharing, &partials, &commonware_parallel::Sequential)
            .expect("recovers")
    };
    // The cluster's signature over the same bytes as a checkpoint, or in consensus: no.
    for other in [namespace::CHECKPOINT, namespace::CONSENSUS] {
        assert_eq!(
            open_with(&recover(other, value.target.as_ref()), &value),
            Err(OpenError::Corrupt)
        );
    }
    // The signature that opens another value (another target) does not open this one.
    let other = sealed(&sharing, b"other");
    assert_ne!(
        other.target, value.target,
        "another name makes another target"
    );
    let key = recover(namespace::SEAL, other.target.as_ref());
    assert_eq!(open_with(&key, &other).expect("opens").as_slice(), b"other");
    assert_eq!(open_with(&key, &value), Err(OpenError::Corrupt));
    // And the right one does.
    let right = recover(namespace::SEAL, value.target.as_ref());
    assert_eq!(
        open_with(&right, &value).expect("opens").as_slice(),
        b"secret"
    );
}

#[test]
fn a_whole_share_or_another_clusters_key_does_not_open_it() {
    let (sharing, shares) = cluster(4);
    let value = sealed(&sharing, b"secret");
    // One node's share used as if it were the cluster key: its signature over the target.
    let alone =
        ops::sign_message::<Variant>(&shares[0].private, namespace::SEAL, value.target.as_ref());
    assert_eq!(open_with(&alone, &value), Err(OpenError::Corrupt));
    // Partials of another cluster do not verify here.
    let (_, strangers) = cluster(5);
    let mut opener = Opener::new(&sharing, value.target);
    for (i, share) in strangers.iter().enumerate() {
        assert!(
            opener.add(partial(share, &value.target)).is_err(),
            "stranger {i}"
        );
    }
}

#[test]
fn altered_ciphertext_or_target_is_refused() {
    let (sharing, shares) = cluster(6);
    let value = sealed(&sharing, b"secret");
    let signature = {
        let partials: Vec<_> = shares[..3]
            .iter()
            .map(|s| partial(s, &value.target))
            .collect();
        threshold::recover::<Variant, _>(&sharing, &partials, &commonware_parallel::Sequential)
            .expect("recovers")
    };
    let mut flipped = value.clone();
    flipped.ciphertext[0] ^= 1;
    assert_eq!(open_with(&signature, &flipped), Err(OpenError::Corrupt));
    let mut moved = value.clone();
    moved.target = hash_parts(&[b"elsewhere"]);
    let opener = Opener::new(&sharing, value.target);
    assert_eq!(opener.open(&moved), Err(OpenError::OtherTarget));
    assert_eq!(open_with(&signature, &moved), Err(OpenError::Corrupt));
}

#[test]
fn the_encoding_round_trips_and_refuses_truncation_versions_and_oversize() {
    let (sharing, _) = cluster(7);
    let value = sealed(&sharing, b"secret");
    let bytes = value.encode().to_vec();
    assert_eq!(bytes.len(), value.encode_size());
    assert_eq!(
        welkin_types::decode::<SealedValue>(&bytes).expect("decodes"),
        value
    );
    for cut in 0..bytes.len() {
        assert!(
            welkin_types::decode::<SealedValue>(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut other_version = bytes.clone();
    other_version[0] = 2;
    assert!(welkin_types::decode::<SealedValue>(&other_version).is_err());
    assert_eq!(
        seal(
            &mut test_rng(),
            sharing.public(),
            value.target,
            &vec![0; MAX_PLAINTEXT_BYTES + 1]
        ),
        Err(SealError::TooLarge(MAX_PLAINTEXT_BYTES + 1))
    );
}

#[test]
fn the_encoding_is_frozen() {
    // A fixed cluster, target, rng and plaintext give fixed bytes: the layout (version,
    // target, tle ciphertext, nonce, length, AEAD ciphertext) must not change silently.
    let (sharing, shares) = cluster(8);
    let value = seal(
        &mut commonware_utils::rng::TestRng::new(9),
        sharing.public(),
        target(&[b"secret/", b"fixture"], &[1; 32]),
        b"frozen",
    )
    .expect("seals");
    let bytes = value.encode();
    assert_eq!(bytes[0], VERSION);
    assert_eq!(
        bytes.len(),
        1 + 32 + value.key.encode_size() + 12 + 1 + 6 + 16
    );
    assert_eq!(
        hex::encode(hash_parts(&[&bytes])),
        FROZEN_FIXTURE_HASH,
        "the encoding changed: bump VERSION and keep a decoder for version 1"
    );
    let mut opener = Opener::new(&sharing, value.target);
    for share in &shares[..3] {
        opener.add(partial(share, &value.target)).expect("valid");
    }
    assert_eq!(opener.open(&value).expect("opens").as_slice(), b"frozen");
}

/// The hash of the frozen fixture's encoding.
const FROZEN_FIXTURE_HASH: &str =
    "cc4d0969b6e31278924c9b5c8ea1f3b537a3444cee80a091b23d61c590002477";
