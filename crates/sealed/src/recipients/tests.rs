use super::*;
use commonware_codec::Encode as _;
use commonware_utils::{rng::TestRng, test_rng};
use rand_core::Rng as _;
use x25519_dalek::{PublicKey, StaticSecret};

/// `n` recipients' secret keys, made as the node makes its X25519 keys, and their public keys.
fn recipients(rng: &mut impl rand_core::Rng, n: usize) -> (Vec<[u8; 32]>, Vec<[u8; 32]>) {
    (0..n)
        .map(|_| {
            let mut bytes = [0u8; 32];
            rng.fill_bytes(&mut bytes);
            let secret = StaticSecret::from(bytes);
            (secret.to_bytes(), PublicKey::from(&secret).to_bytes())
        })
        .unzip()
}

const AAD: &[u8] = b"secret/data/app|3";

#[test]
fn each_recipient_opens_it_and_nobody_else_does() {
    let mut rng = test_rng();
    let (secrets, publics) = recipients(&mut rng, 3);
    let sealed = seal_to_recipients(&mut rng, &publics, AAD, b"the value").expect("seals");
    assert_eq!(sealed.recipients().copied().collect::<Vec<_>>(), publics);
    for secret in &secrets {
        assert_eq!(
            open_as_recipient(secret, AAD, &sealed)
                .expect("opens")
                .as_slice(),
            b"the value"
        );
    }
    let (stranger, stranger_public) = recipients(&mut rng, 1);
    assert_eq!(
        open_as_recipient(&stranger[0], AAD, &sealed),
        Err(RecipientError::NotARecipient(hex::encode(
            stranger_public[0]
        )))
    );
}

#[test]
fn the_public_key_of_a_secret_is_x25519s() {
    let mut rng = test_rng();
    let (secrets, publics) = recipients(&mut rng, 4);
    for (secret, public) in secrets.iter().zip(&publics) {
        assert_eq!(&recipient_public_key(secret), public);
    }
}

#[test]
fn other_associated_data_is_refused() {
    let mut rng = test_rng();
    let (secrets, publics) = recipients(&mut rng, 2);
    let sealed = seal_to_recipients(&mut rng, &publics, AAD, b"the value").expect("seals");
    for aad in [&b"secret/data/app|4"[..], b"", b"secret/data/app|3 "] {
        assert_eq!(
            open_as_recipient(&secrets[0], aad, &sealed),
            Err(RecipientError::DoesNotOpen)
        );
    }
}

#[test]
fn altered_ciphertext_wraps_or_recipient_list_are_refused() {
    let mut rng = test_rng();
    let (secrets, publics) = recipients(&mut rng, 3);
    let sealed = seal_to_recipients(&mut rng, &publics, AAD, b"the value").expect("seals");
    let refused = |altered: &RecipientSealed| {
        assert_eq!(
            open_as_recipient(&secrets[0], AAD, altered),
            Err(RecipientError::DoesNotOpen)
        );
    };
    let mut flipped = sealed.clone();
    flipped.ciphertext[0] ^= 1;
    refused(&flipped);
    let mut nonce = sealed.clone();
    nonce.nonce[0] ^= 1;
    refused(&nonce);
    let mut wrap = sealed.clone();
    wrap.wraps[0].key[0] ^= 1;
    refused(&wrap);
    let mut encapped = sealed.clone();
    encapped.wraps[0].encapped[0] ^= 1;
    refused(&encapped);
    // A recipient removed, or the list reordered: the list is bound, so nobody opens it.
    let mut removed = sealed.clone();
    removed.wraps.pop();
    refused(&removed);
    let mut reordered = sealed.clone();
    reordered.wraps.swap(1, 2);
    refused(&reordered);
    // A recipient's wrap taken from another value opens that value's key, not this one's.
    let other = seal_to_recipients(&mut rng, &publics, AAD, b"other").expect("seals");
    let mut moved = sealed.clone();
    moved.wraps[0] = other.wraps[0].clone();
    refused(&moved);
}

#[test]
fn bad_recipient_lists_and_oversize_values_are_refused() {
    let mut rng = test_rng();
    let (_, publics) = recipients(&mut rng, MAX_RECIPIENTS + 1);
    let seal = |rng: &mut TestRng, keys: &[[u8; 32]], value: &[u8]| {
        seal_to_recipients(rng, keys, AAD, value)
    };
    assert_eq!(seal(&mut rng, &[], b"v"), Err(RecipientError::NoRecipients));
    assert_eq!(
        seal(&mut rng, &publics, b"v"),
        Err(RecipientError::TooManyRecipients(MAX_RECIPIENTS + 1))
    );
    assert!(seal(&mut rng, &publics[..MAX_RECIPIENTS], b"v").is_ok());
    assert_eq!(
        seal(&mut rng, &[publics[0], publics[1], publics[0]], b"v"),
        Err(RecipientError::DuplicateRecipient(hex::encode(publics[0])))
    );
    assert_eq!(
        seal(&mut rng, &[publics[0], [0; 32]], b"v"),
        Err(RecipientError::InvalidRecipientKey("00".repeat(32)))
    );
    assert_eq!(
        seal(&mut rng, &publics[..1], &vec![0; MAX_PLAINTEXT_BYTES + 1]),
        Err(RecipientError::TooLarge(MAX_PLAINTEXT_BYTES + 1))
    );
}

#[test]
fn the_encoding_round_trips_and_refuses_truncation_versions_and_duplicates() {
    let mut rng = test_rng();
    let (secrets, publics) = recipients(&mut rng, 2);
    let sealed = seal_to_recipients(&mut rng, &publics, AAD, b"the value").expect("seals");
    let bytes = sealed.encode().to_vec();
    assert_eq!(bytes.len(), sealed.encode_size());
    let decoded = welkin_types::decode::<RecipientSealed>(&bytes).expect("decodes");
    assert_eq!(decoded, sealed);
    assert_eq!(
        open_as_recipient(&secrets[1], AAD, &decoded)
            .expect("opens")
            .as_slice(),
        b"the value"
    );
    for cut in 0..bytes.len() {
        assert!(
            welkin_types::decode::<RecipientSealed>(&bytes[..cut]).is_err(),
            "cut at {cut}"
        );
    }
    let mut other_version = bytes.clone();
    other_version[0] = 2;
    assert!(welkin_types::decode::<RecipientSealed>(&other_version).is_err());
    let mut twice = sealed.clone();
    twice.wraps[1].recipient = twice.wraps[0].recipient;
    assert!(welkin_types::decode::<RecipientSealed>(&twice.encode()).is_err());
    let mut none = sealed.clone();
    none.wraps.clear();
    assert!(welkin_types::decode::<RecipientSealed>(&none.encode()).is_err());
}

#[test]
fn decoding_garbage_is_an_error_not_a_panic() {
    let mut rng = TestRng::new(20);
    let (_, publics) = recipients(&mut rng, 2);
    let valid = seal_to_recipients(&mut rng, &publics, AAD, b"the value")
        .expect("seals")
        .encode()
        .to_vec();
    for round in 0..2_000 {
        let bytes = if round % 2 == 0 {
            let mut garbage = vec![0u8; rng.next_u32() as usize % 512];
            rng.fill_bytes(&mut garbage);
            garbage
        } else {
            // A valid encoding with one random byte changed: whatever decodes is canonical.
            let mut mutated = valid.clone();
            let at = rng.next_u32() as usize % mutated.len();
            mutated[at] = rng.next_u32() as u8;
            mutated
        };
        if let Ok(decoded) = welkin_types::decode::<RecipientSealed>(&bytes) {
            assert_eq!(decoded.encode().as_ref(), bytes.as_slice());
        }
    }
}

#[test]
fn the_encoding_is_frozen() {
    // A fixed rng, recipients, associated data and plaintext give fixed bytes: the layout
    // (version, wraps, nonce, ciphertext) must not change silently.
    let mut rng = TestRng::new(21);
    let (secrets, publics) = recipients(&mut rng, 2);
    let sealed = seal_to_recipients(&mut rng, &publics, AAD, b"frozen").expect("seals");
    let bytes = sealed.encode();
    assert_eq!(bytes[0], RECIPIENTS_VERSION);
    assert_eq!(
        bytes.len(),
        1 + 1 + 2 * Wrap::SIZE + NONCE_BYTES + 1 + 6 + TAG_BYTES
    );
    assert_eq!(
        hex::encode(hash_parts(&[&bytes])),
        FROZEN_FIXTURE_HASH,
        "the encoding changed: bump RECIPIENTS_VERSION and keep a decoder for version 1"
    );
    assert_eq!(
        open_as_recipient(&secrets[0], AAD, &sealed)
            .expect("opens")
            .as_slice(),
        b"frozen"
    );
}

/// The hash of the frozen fixture's encoding.
const FROZEN_FIXTURE_HASH: &str =
    "d22d6a4f60b0fdf99aae21baa371a5d174d5c606a3da1ccb432d7a83a0a066e7";
