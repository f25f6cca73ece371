use super::*;
use crate::{
    Coordinator, DkgConfig, KeyShare, PublicKeys,
    test_support::{dkg, rng, round1, shares_for, signers},
};
use rand_chacha::rand_core::Rng as _;

/// Every encoding, made from fixed seeds.
fn fixtures() -> Vec<(&'static str, Vec<u8>)> {
    let config = DkgConfig::new([0, 1, 2, 3], 3).expect("config");
    let (states, committed) = round1(&config, &mut rng(40));
    let state = states.into_iter().next().expect("node 0").1;
    let (_, outgoing) = state.round2(&committed).expect("round 2");
    let (shares, public) = dkg(&[0, 1, 2, 3], 3, 41);
    let mut coordinator = Coordinator::new();
    let mut rng = rng(42);
    let mut signers = signers(&shares, 2, &mut coordinator, &mut rng);
    let issued = signers
        .get_mut(&3)
        .expect("signer")
        .issue(2, 2, &mut rng)
        .expect("issue");
    let session = coordinator
        .session(&public, b"fixture", &Default::default())
        .expect("session");
    let sig_shares = shares_for(&session, 2, &shares, &mut signers, b"fixture");
    vec![
        ("round-1 package", committed[&0].encode()),
        ("round-2 package", outgoing[&1].encode().to_vec()),
        ("commitments", issued.encode()),
        ("sign request", session.request().encode()),
        ("signature share", sig_shares[&0].encode()),
        ("public keys", public.encode()),
        ("key share", shares[0].encode().to_vec()),
    ]
}

/// Decodes `bytes` as the message kind `what`, re-encoding what decodes.
fn decode(what: &str, bytes: &[u8]) -> Result<Vec<u8>, DecodeError> {
    Ok(match what {
        "round-1 package" => Round1Package::decode(bytes)?.encode(),
        "round-2 package" => Round2Package::decode(bytes)?.encode().to_vec(),
        "commitments" => Commitments::decode(bytes)?.encode(),
        "sign request" => SignRequest::decode(bytes)?.encode(),
        "signature share" => SignatureShare::decode(bytes)?.encode(),
        "public keys" => PublicKeys::decode(bytes)?.encode(),
        "key share" => KeyShare::decode(bytes)?.encode().to_vec(),
        other => unreachable!("no message kind {other}"),
    })
}

fn max_bytes(what: &str) -> usize {
    match what {
        "round-1 package" => Round1Package::MAX_BYTES,
        "round-2 package" => Round2Package::BYTES,
        "commitments" => Commitments::MAX_BYTES,
        "sign request" => SignRequest::MAX_BYTES,
        "signature share" => SignatureShare::BYTES,
        "public keys" => PublicKeys::MAX_BYTES,
        "key share" => KeyShare::BYTES,
        other => unreachable!("no message kind {other}"),
    }
}

/// The encodings of [`fixtures`], hex. Regenerate only on purpose: a change here is a change
/// of the wire and storage formats.
const FROZEN: [(&str, &str); 7] = [
    (
        "round-1 package",
        concat!(
            "01000306a21a657731726927afd3d2d86d61f103c02157e6488d6dc287dd37fe71957be3",
            "8bc6f8b6f2d5694bae34ef6f0eb48904a5de0a9614c5a13ae07ac1316e62562e619df669",
            "1d078e9c6422dadcb5471e0891b77301b9d1a7931244f1c0332a501cb0b70c044535efad",
            "cfe55a947d3f42e15f6eb021513aeb11a7a4983e32a9622f6da4fbb9497aa9fbdbaf94c8",
            "47dc18b138ca59e2f4545aba402190bd302708",
        ),
    ),
    (
        "round-2 package",
        "0131c402449c22435d00e2a75927da2ec6276c4a2bb64e3d7ed026e2c4db643609",
    ),
    (
        "commitments",
        concat!(
            "01000277e8cdc6b8468b4f3411c8e00d4080b362d82b95a5e3b739d69da13a326086303d",
            "35f277218612910fb581af0cd852db0e7a890d3ece28e7ee5b3f68e8e9888c6a4560fdfb",
            "60813d77e8cdc6b8468b5003bb0428747d21ba8fc5da6c2edb9f1afa55e50eb437c27f3d",
            "3a35970058ab3cd1e3adbf977729b71033af09d5b5df65916fcddf6709e47642a1127379",
            "afda02",
        ),
    ),
    (
        "sign request",
        concat!(
            "010000000766697874757265000300004683d8a23afefe3d035cd284d1c22f8c0cb12c0c",
            "40880ba1ed422e1bb463114ee3481e3e38c9ea8b8d9336e9b7ca2f5af24664168ae4b697",
            "0aba16a50b51dcd72b7c9783cd7797d200013623760dedf56d23f7c3b5ed2957e3cca9b5",
            "34fd345a9eeecd6019d99a5e2d6af5bc45b87cb5f115009b49d0d5d14b5369300e3745e4",
            "95bb9d1a9b0a2e644b5c299d04c0542143380002153382f67ad68d55899e0edb3a9899fa",
            "f99a319fce422661c199e0fc6d011dab1a90991218a54fab139a09aeab8bf3550574f573",
            "b02c8a6202533b8ccc3b4550a80b430dbd309187",
        ),
    ),
    (
        "signature share",
        "01759fd46b5f1ee3ef91b5aa1f946da13773ae17ad050162e4d9e3cc27f12a1901",
    ),
    (
        "public keys",
        concat!(
            "01000341c532a212d4de6db985ca60822ff5f2ad8de8d21b9a1011842b59b86460063500",
            "0400007f56800c5a8c9e51c2ab0f43b9d286d6791aed938209df8cae68bdfd59ef798d00",
            "01d1ef000681e27052fc5534feb41205692d44c7a43ede76651ac2a339574eb8ad000263",
            "89f81fe63e74ca28ef0d604a6fa924d6a8a5094ed5fd70767bb107a34c66b500037aa7bb",
            "52b065130e741e947d3a7e9a28e8a8cb1485379cdc2c993a6d3e1c3a08",
        ),
    ),
    (
        "key share",
        concat!(
            "01000000038907f2037c0db883d8332a1cf9d01fd7891357103fe5e5350bd3c041dacffd",
            "0c41c532a212d4de6db985ca60822ff5f2ad8de8d21b9a1011842b59b864600635",
        ),
    ),
];

#[test]
fn encodings_are_frozen() {
    for ((what, bytes), (frozen_what, frozen)) in fixtures().iter().zip(FROZEN) {
        assert_eq!(*what, frozen_what);
        assert_eq!(hex::encode(bytes), frozen, "the {what} encoding changed");
    }
}

#[test]
fn every_encoding_round_trips() {
    for (what, bytes) in fixtures() {
        assert_eq!(decode(what, &bytes).as_deref(), Ok(&bytes[..]), "{what}");
        assert!(bytes.len() <= max_bytes(what), "{what}");
    }
}

#[test]
fn every_truncation_is_refused_as_truncated() {
    for (what, bytes) in fixtures() {
        for len in 0..bytes.len() {
            match decode(what, &bytes[..len]) {
                Err(DecodeError::Truncated {
                    what: w,
                    at,
                    needed,
                    ..
                }) => {
                    assert_eq!(w, what);
                    assert!(at <= len && needed > 0, "{what} at {len}");
                }
                other => panic!("{what} cut at {len}: {other:?}"),
            }
        }
        assert_eq!(
            decode(what, &[]),
            Err(DecodeError::Truncated {
                what: leak(what),
                field: "version",
                at: 0,
                needed: 1
            })
        );
    }
}

/// The static name of a message kind (the decoders name themselves with these).
fn leak(what: &str) -> &'static str {
    [
        "round-1 package",
        "round-2 package",
        "commitments",
        "sign request",
        "signature share",
        "public keys",
        "key share",
    ]
    .into_iter()
    .find(|name| *name == what)
    .expect("a kind")
}

#[test]
fn another_version_trailing_bytes_and_oversized_input_are_refused() {
    for (what, bytes) in fixtures() {
        let mut other = bytes.clone();
        other[0] = 2;
        assert_eq!(
            decode(what, &other),
            Err(DecodeError::Version {
                what: leak(what),
                found: 2
            })
        );
        let max = max_bytes(what);
        let mut trailing = bytes.clone();
        trailing.push(0);
        // A fixed-size message with a byte more is over its size before anything is read.
        let expected = if bytes.len() == max {
            DecodeError::TooLarge {
                what: leak(what),
                len: max + 1,
                max,
            }
        } else {
            DecodeError::Trailing {
                what: leak(what),
                at: bytes.len(),
                count: 1,
            }
        };
        assert_eq!(decode(what, &trailing), Err(expected));
        let mut huge = bytes.clone();
        huge.resize(max + 1, 0);
        assert_eq!(
            decode(what, &huge),
            Err(DecodeError::TooLarge {
                what: leak(what),
                len: max + 1,
                max
            })
        );
    }
    assert_eq!(
        DecodeError::Version {
            what: "round-1 package",
            found: 2
        }
        .to_string(),
        "round-1 package: version 2 is not the supported version 1"
    );
}

#[test]
fn bad_points_and_scalars_are_refused_naming_the_field_and_value() {
    let fixtures = fixtures();
    let round1 = &fixtures[0].1;
    // The identity point (y = 1) in place of the first coefficient commitment.
    let mut identity = round1.clone();
    identity[3..35].copy_from_slice(&[1; 1].iter().chain(&[0; 31]).copied().collect::<Vec<_>>());
    let identity_hex = format!("01{}", "00".repeat(31));
    assert_eq!(
        Round1Package::decode(&identity),
        Err(DecodeError::Invalid {
            what: "round-1 package",
            field: "coefficient commitment",
            hex: identity_hex,
            kind: "point"
        })
    );
    // A scalar over the group order as a signature share.
    let over = [0xff; 32];
    let mut share = vec![MESSAGES_VERSION];
    share.extend(over);
    assert_eq!(
        SignatureShare::decode(&share),
        Err(DecodeError::Invalid {
            what: "signature share",
            field: "share",
            hex: "ff".repeat(32),
            kind: "scalar"
        })
    );
    // A secret share is refused without repeating its bytes.
    let mut secret = vec![MESSAGES_VERSION];
    secret.extend(over);
    let error = Round2Package::decode(&secret).expect_err("over the order");
    assert!(!error.to_string().contains("ffff"), "{error}");
}

#[test]
fn counts_lengths_and_orders_out_of_range_are_refused() {
    let fixtures = fixtures();
    let out_of_range = |what: &'static str, field: &'static str, value: u64| {
        move |error: DecodeError| match error {
            DecodeError::OutOfRange {
                what: w,
                field: f,
                value: v,
                ..
            } => assert_eq!((w, f, v), (what, field, value)),
            other => panic!("{what}: {other:?}"),
        }
    };
    // A round-1 package of one commitment (threshold 1 is not FROST).
    let mut one = fixtures[0].1.clone();
    one[1..3].copy_from_slice(&1u16.to_be_bytes());
    out_of_range("round-1 package", "commitment count", 1)(
        Round1Package::decode(&one).expect_err("one"),
    );
    // Commitments with ids not increasing.
    let mut batch = fixtures[2].1.clone();
    let (first, second) = (3, 3 + 72);
    let first_id: [u8; 8] = batch[first..first + 8].try_into().expect("id");
    batch[second..second + 8].copy_from_slice(&first_id);
    out_of_range("commitments", "commitment id", u64::from_be_bytes(first_id))(
        Commitments::decode(&batch).expect_err("repeated id"),
    );
    // A sign request whose message is over the limit, and one with a signer twice.
    let mut long = fixtures[3].1.clone();
    long[1..5].copy_from_slice(&(MAX_MESSAGE_BYTES as u32 + 1).to_be_bytes());
    out_of_range(
        "sign request",
        "message length",
        MAX_MESSAGE_BYTES as u64 + 1,
    )(SignRequest::decode(&long).expect_err("long"));
    let mut twice = fixtures[3].1.clone();
    let signers_at = 1 + 4 + b"fixture".len() + 2;
    let first_index = [twice[signers_at], twice[signers_at + 1]];
    twice[signers_at + 74..signers_at + 76].copy_from_slice(&first_index);
    out_of_range(
        "sign request",
        "signer index",
        u16::from_be_bytes(first_index).into(),
    )(SignRequest::decode(&twice).expect_err("twice"));
    // Public keys with fewer participants than the threshold.
    let mut few = fixtures[5].1.clone();
    few[35..37].copy_from_slice(&2u16.to_be_bytes());
    out_of_range("public keys", "participant count", 2)(PublicKeys::decode(&few).expect_err("few"));
    // A key share for an index past the bound.
    let mut far = fixtures[6].1.clone();
    far[1..3].copy_from_slice(&256u16.to_be_bytes());
    out_of_range("key share", "index", 256)(KeyShare::decode(&far).expect_err("far"));
}

#[test]
fn garbage_is_refused_without_panicking() {
    let mut rng = rng(43);
    let kinds: Vec<&str> = fixtures().iter().map(|(what, _)| *what).collect();
    for round in 0..2_000usize {
        let mut bytes = vec![0u8; (rng.next_u32() % 600) as usize];
        rng.fill_bytes(&mut bytes);
        if let Some(first) = bytes.first_mut() {
            // Half with the right version, to get past the first check.
            if round % 2 == 0 {
                *first = MESSAGES_VERSION;
            }
        }
        for what in &kinds {
            if let Ok(encoded) = decode(what, &bytes) {
                assert_eq!(encoded, bytes, "{what} decoded garbage into something else");
            }
        }
    }
}

#[test]
fn a_decoded_key_share_still_signs() {
    let (shares, public) = dkg(&[0, 1, 2], 2, 44);
    let restored: Vec<KeyShare> = shares
        .iter()
        .map(|share| KeyShare::decode(&share.encode()).expect("decodes"))
        .collect();
    assert_eq!(restored, shares);
    let decoded_public = PublicKeys::decode(&public.encode()).expect("decodes");
    assert!(restored.iter().all(|share| decoded_public.holds(share)));
    let mut rng = rng(45);
    let mut coordinator = Coordinator::new();
    let mut signers = signers(&restored, 1, &mut coordinator, &mut rng);
    let session = coordinator
        .session(&decoded_public, b"restored", &Default::default())
        .expect("session");
    let sig_shares = shares_for(&session, 1, &restored, &mut signers, b"restored");
    let signature = session.aggregate(&sig_shares).expect("aggregates");
    assert!(crate::test_support::dalek_verifies(
        &public.group_key(),
        b"restored",
        &signature
    ));
}
