//! Ed25519 checkpoint cosignatures, version 1 (<https://c2sp.org/tlog-cosignature>).
//!
//! A cosignature is a note signature, added to a checkpoint by a cosigner (a witness), stating
//! that as of a time this is the largest consistent tree it has seen for the log of the origin.
//!
//! The signed message is two header lines followed by the whole checkpoint note text (final
//! newline included, extension lines included, signature lines excluded):
//!
//! ```text
//! cosignature/v1\n
//! time 1679315147\n                                 POSIX seconds, decimal, no leading zeros
//! example.com/behind-the-sofa\n
//! 20852163\n
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n
//! ```
//!
//! The bytes in the signature line after the key ID are a `timestamped_signature`:
//!
//! ```text
//! timestamp (8 bytes, big-endian u64, at most 2^63 - 1) || Ed25519 signature (64 bytes)
//! ```
//!
//! so the base64 of a cosignature line always encodes 4 + 8 + 64 = 76 bytes. The key ID uses
//! signature type [`COSIGNATURE_V1_SIGNATURE_TYPE`] (0x04):
//! `SHA-256(name || 0x0A || 0x04 || public key)[:4]`, and cosigner keys are verifier key
//! strings with that type byte, e.g.
//! `remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2`.
//!
//! The message does not commit to the cosigner's name, so one Ed25519 key must not serve two
//! cosigners. The ML-DSA-44 variant of the spec (type 0x06) is not implemented.

use std::fmt;
use std::str::FromStr;

use crate::checkpoint::{Checkpoint, CheckpointError};
use crate::key::{
    COSIGNATURE_V1_SIGNATURE_TYPE, ED25519_KEY_SIZE, ED25519_SIGNATURE_SIZE, KeyError, KeyRef,
    SignerCore, VerifierCore,
};
use crate::note::{Note, NoteSignature};

/// The first line of the signed message, newline included: domain separation.
pub const COSIGNATURE_V1_HEADER: &str = "cosignature/v1\n";

/// The largest timestamp a cosignature may carry: 2^63 - 1.
pub const MAX_TIMESTAMP: u64 = i64::MAX as u64;

/// The length of a `timestamped_signature`: an 8-byte timestamp and a 64-byte signature.
pub const COSIGNATURE_SIZE: usize = 8 + ED25519_SIGNATURE_SIZE;

/// A reason for rejecting a cosignature or refusing to make one.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CosignatureError {
    /// The cosigned text is not a valid checkpoint.
    #[error(transparent)]
    Checkpoint(#[from] CheckpointError),
    /// The timestamp is above 2^63 - 1.
    #[error("timestamp {timestamp} is above the maximum of 2^63 - 1")]
    TimestampTooLarge {
        /// The rejected timestamp.
        timestamp: u64,
    },
    /// A signature was checked against a cosigner of another key.
    #[error("cosignature from {found} checked against the cosigner {expected}")]
    KeyMismatch {
        /// The key of the cosigner.
        expected: KeyRef,
        /// The key named by the signature.
        found: KeyRef,
    },
    /// The signature is not an 8-byte timestamp and a 64-byte signature.
    #[error("cosignature from {key} is {len} bytes, want 72")]
    InvalidLength {
        /// The key named by the signature.
        key: KeyRef,
        /// The length after the key ID.
        len: usize,
    },
    /// The signature does not verify.
    #[error("invalid cosignature from {key} with timestamp {timestamp}")]
    InvalidSignature {
        /// The key of the cosigner.
        key: KeyRef,
        /// The timestamp the signature claims.
        timestamp: u64,
    },
    /// The cosigner signed the note more than once.
    #[error("duplicate cosignature from {key}")]
    DuplicateSignature {
        /// The key of the cosigner.
        key: KeyRef,
    },
}

/// The message an Ed25519 v1 cosignature signs: `cosignature/v1\ntime <timestamp>\n` and the
/// checkpoint note text.
///
/// `checkpoint_text` is used as is; [`CosignatureSigner`] and [`CosignatureVerifier`] only
/// pass texts that parse as checkpoints.
pub fn cosigned_message(timestamp: u64, checkpoint_text: &str) -> String {
    format!("{COSIGNATURE_V1_HEADER}time {timestamp}\n{checkpoint_text}")
}

/// A decoded `timestamped_signature`: when the cosigner signed, and the Ed25519 signature.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Cosignature {
    /// The POSIX time of signing, in seconds.
    pub timestamp: u64,
    /// The Ed25519 signature of the [`cosigned_message`].
    pub signature: [u8; ED25519_SIGNATURE_SIZE],
}

impl Cosignature {
    /// Decodes the bytes after the key ID of a cosignature line. It checks the length and
    /// the timestamp range, not the signature.
    pub fn from_note_signature(signature: &NoteSignature) -> Result<Self, CosignatureError> {
        let bytes: &[u8; COSIGNATURE_SIZE] =
            signature.signature.as_slice().try_into().map_err(|_| {
                CosignatureError::InvalidLength {
                    key: signature.key(),
                    len: signature.signature.len(),
                }
            })?;
        let (timestamp, sig) = bytes.split_at(8);
        let timestamp = u64::from_be_bytes(timestamp.try_into().expect("split_at(8)"));
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampTooLarge { timestamp });
        }
        Ok(Self {
            timestamp,
            signature: sig.try_into().expect("72 - 8 = 64 bytes"),
        })
    }

    /// Encodes the `timestamped_signature`: big-endian timestamp, then the signature.
    pub fn to_bytes(&self) -> [u8; COSIGNATURE_SIZE] {
        let mut out = [0; COSIGNATURE_SIZE];
        out[..8].copy_from_slice(&self.timestamp.to_be_bytes());
        out[8..].copy_from_slice(&self.signature);
        out
    }
}

/// Makes Ed25519 v1 cosignatures of checkpoints (signature type 0x04).
///
/// Built from the cosigner's name and 32-byte Ed25519 seed, which is the secret: the copy
/// kept here is zeroized on drop, and `Debug` shows only the name and key ID.
#[derive(Debug)]
pub struct CosignatureSigner(SignerCore);

impl CosignatureSigner {
    /// Makes a cosigner from a key name and an Ed25519 seed (the RFC 8032 private key).
    ///
    /// The caller keeps ownership of `seed` and should zeroize its own copy.
    pub fn new(name: &str, seed: &[u8; ED25519_KEY_SIZE]) -> Result<Self, KeyError> {
        SignerCore::new(name, seed, COSIGNATURE_V1_SIGNATURE_TYPE).map(Self)
    }

    /// The cosigner's name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The key ID, computed with signature type 0x04.
    pub fn key_id(&self) -> [u8; 4] {
        self.0.key_id()
    }

    /// The name and key ID, as its signature lines name it.
    pub fn key(&self) -> KeyRef {
        self.0.verifier().key()
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.0.public_key()
    }

    /// The verifier of this cosigner's signatures.
    pub fn verifier(&self) -> CosignatureVerifier {
        CosignatureVerifier(self.0.verifier())
    }

    /// The verifier key string (type 0x04) to hand to clients.
    pub fn verifier_key(&self) -> String {
        self.verifier().to_string()
    }

    /// Cosigns a checkpoint as of `timestamp` (POSIX seconds, at most 2^63 - 1).
    ///
    /// The caller supplies the time, which keeps this a pure function; the checkpoint must
    /// be consistent with everything this cosigner signed before, which is the caller's to
    /// check.
    pub fn sign(
        &self,
        checkpoint: &Checkpoint,
        timestamp: u64,
    ) -> Result<NoteSignature, CosignatureError> {
        self.sign_text(&checkpoint.format()?, timestamp)
    }

    /// Cosigns the checkpoint of a note and adds the signature, replacing an earlier one from
    /// this cosigner.
    pub fn cosign_note(&self, note: &mut Note, timestamp: u64) -> Result<(), CosignatureError> {
        Checkpoint::parse(&note.text)?;
        let signature = self.sign_text(&note.text, timestamp)?;
        note.add_signature(signature);
        Ok(())
    }

    fn sign_text(&self, text: &str, timestamp: u64) -> Result<NoteSignature, CosignatureError> {
        if timestamp > MAX_TIMESTAMP {
            return Err(CosignatureError::TimestampTooLarge { timestamp });
        }
        let cosignature = Cosignature {
            timestamp,
            signature: self.0.sign(cosigned_message(timestamp, text).as_bytes()),
        };
        Ok(NoteSignature {
            name: self.0.name().to_owned(),
            key_id: self.0.key_id(),
            signature: cosignature.to_bytes().to_vec(),
        })
    }
}

/// Verifies Ed25519 v1 cosignatures (signature type 0x04) of one cosigner.
///
/// Parse it from a verifier key string with type byte 0x04 (`FromStr`); `Display` gives the
/// string back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CosignatureVerifier(VerifierCore);

impl CosignatureVerifier {
    /// Makes a verifier from a cosigner name and a 32-byte Ed25519 public key.
    pub fn new(name: &str, public_key: &[u8; ED25519_KEY_SIZE]) -> Result<Self, KeyError> {
        VerifierCore::new(name, public_key, COSIGNATURE_V1_SIGNATURE_TYPE).map(Self)
    }

    /// Parses a verifier key string `<name>+<hex key ID>+<base64(0x04 || public key)>`.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        VerifierCore::parse(vkey, COSIGNATURE_V1_SIGNATURE_TYPE).map(Self)
    }

    /// The cosigner's name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The key ID, computed with signature type 0x04.
    pub fn key_id(&self) -> [u8; 4] {
        self.0.key_id()
    }

    /// The name and key ID, as signature lines name this cosigner.
    pub fn key(&self) -> KeyRef {
        self.0.key()
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.0.public_key()
    }

    /// Checks a cosignature of a checkpoint and returns its timestamp.
    ///
    /// Whether the timestamp is recent enough, or in the future, is the caller's policy.
    pub fn verify(
        &self,
        checkpoint: &Checkpoint,
        signature: &NoteSignature,
    ) -> Result<u64, CosignatureError> {
        self.verify_text(&checkpoint.format()?, signature)
    }

    /// Finds and checks this cosigner's signature in a checkpoint note.
    ///
    /// Returns `Ok(None)` if the note has no signature with this cosigner's name and key ID,
    /// and the timestamp if it has one that verifies. A signature from this cosigner that does
    /// not verify, or two of them, reject the note, as do a text that is not a checkpoint.
    pub fn verify_note(&self, note: &Note) -> Result<Option<u64>, CosignatureError> {
        Checkpoint::parse(&note.text)?;
        let mut found = None;
        for signature in note.signatures.iter().filter(|s| self.0.matches(s)) {
            if found.is_some() {
                return Err(CosignatureError::DuplicateSignature { key: self.key() });
            }
            found = Some(self.verify_text(&note.text, signature)?);
        }
        Ok(found)
    }

    fn verify_text(&self, text: &str, signature: &NoteSignature) -> Result<u64, CosignatureError> {
        if !self.0.matches(signature) {
            return Err(CosignatureError::KeyMismatch {
                expected: self.key(),
                found: signature.key(),
            });
        }
        let cosignature = Cosignature::from_note_signature(signature)?;
        let message = cosigned_message(cosignature.timestamp, text);
        if self.0.verify(message.as_bytes(), &cosignature.signature) {
            Ok(cosignature.timestamp)
        } else {
            Err(CosignatureError::InvalidSignature {
                key: self.key(),
                timestamp: cosignature.timestamp,
            })
        }
    }
}

impl FromStr for CosignatureVerifier {
    type Err = KeyError;

    fn from_str(vkey: &str) -> Result<Self, Self::Err> {
        Self::parse(vkey)
    }
}

impl fmt::Display for CosignatureVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.format(f, COSIGNATURE_V1_SIGNATURE_TYPE)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::checkpoint::tests::{SPEC_TEXT, checkpoint_strategy};
    use crate::key::{NoteVerifier, NoteVerifiers, VerifyError, key_id};
    use proptest::prelude::*;

    /// A checkpoint of the arche2025h1.staging.ct.transparency.dev log with its own Ed25519
    /// and RFC 6962 signatures and four witness cosignatures, as published in the tests of
    /// florolf/tlog-scales (tests/test_signing.py).
    const ARCHE_NOTE: &str = "arche2025h1.staging.ct.transparency.dev
1432088532
U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=

— arche2025h1.staging.ct.transparency.dev zTM8sQAAAZ5W0WdjBAMARjBEAiBjW5IQf9pvsYLfQFX6hoGREPMHbdQ3urbllzalApkptQIgIpwtEroeW2BXaHAI4kJXFbon5Ch9MNL5zRNZ55lvGt0=
— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwhUkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=
— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ==
— witness1.smartit.nu/witness1 pIyCDwAAAABqEiEghIp82KWebrw7/oHQwlTAm3g2RKS4+eebl8eO0WH+/iEcxZ75W3u5hNI7TOQtmJbqmNWVuE0tgh0XwzdZsDsUAQ==
— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIobWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw==
— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg==
";
    /// The log's Ed25519 key, from the same test.
    const ARCHE_VKEY: &str = "arche2025h1.staging.ct.transparency.dev+ba2f06c0+AU0vHmlGCS/PdN8b2OaGmKprLI8HKM+dJ472xgFYh15f";
    /// The remora.n621.de witness key (type 0x04), from the same test and from
    /// transparency-dev/formats note/note_cosigv1_test.go.
    const REMORA_VKEY: &str =
        "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2";

    /// The cosignature line of the c2sp.org/tlog-cosignature example.
    const SPEC_COSIGNATURE: &str = "— witness.example.com/w1 jWbPPwAAAABkGFDLEZMHwSRaJNiIDoe9DYn/zXcrtPHeolMI5OWXEhZCB9dlrDJsX3b2oyin1nPZqhf5nNo0xUe+mbIUBkBIfZ+qnA==";

    fn remora() -> CosignatureVerifier {
        CosignatureVerifier::parse(REMORA_VKEY).expect("valid vkey")
    }

    fn key(name: &str, id: u32) -> KeyRef {
        KeyRef {
            name: name.into(),
            key_id: id.to_be_bytes(),
        }
    }

    #[test]
    fn verifies_a_published_witnessed_checkpoint() {
        let note = Note::parse(ARCHE_NOTE.as_bytes()).expect("valid note");
        assert_eq!(note.format().expect("formats"), ARCHE_NOTE);
        let checkpoint = Checkpoint::parse(&note.text).expect("valid checkpoint");
        assert_eq!(checkpoint.origin, "arche2025h1.staging.ct.transparency.dev");
        assert_eq!(checkpoint.size, 1432088532);

        // The log's own Ed25519 signature; everything else is ignored as unknown, including
        // the log's RFC 6962 signature under the same name and another key ID.
        let log =
            NoteVerifiers::new([NoteVerifier::parse(ARCHE_VKEY).expect("valid")]).expect("one");
        let outcome = log.verify(&note).expect("log signature verifies");
        assert_eq!(
            outcome.verified,
            vec![key("arche2025h1.staging.ct.transparency.dev", 0xba2f06c0)]
        );
        assert_eq!(
            outcome.unknown,
            vec![
                key("arche2025h1.staging.ct.transparency.dev", 0xcd333cb1),
                key("transparency.dev/DEV:witness-little-garden", 0xd8042a87),
                key("witness1.smartit.nu/witness1", 0xa48c820f),
                key("remora.n621.de", 0xda77ade7),
                key("witness.stagemole.eu", 0x67f7aea0),
            ]
        );

        // The remora.n621.de witness cosignature.
        assert_eq!(remora().verify_note(&note), Ok(Some(1779573024)));
        let line = &note.signatures[4];
        assert_eq!(remora().verify(&checkpoint, line), Ok(1779573024));

        // Another size does not verify.
        let other = Checkpoint {
            size: 42,
            ..checkpoint
        };
        assert_eq!(
            remora().verify(&other, line),
            Err(CosignatureError::InvalidSignature {
                key: key("remora.n621.de", 0xda77ade7),
                timestamp: 1779573024
            })
        );
    }

    #[test]
    fn parses_published_cosigner_key() {
        let verifier = remora();
        assert_eq!(verifier.key(), key("remora.n621.de", 0xda77ade7));
        assert_eq!(verifier.to_string(), REMORA_VKEY);
        assert_eq!(
            key_id(
                "remora.n621.de",
                COSIGNATURE_V1_SIGNATURE_TYPE,
                &verifier.public_key()
            ),
            [0xda, 0x77, 0xad, 0xe7]
        );
        // Signature types are not interchangeable.
        assert_eq!(
            NoteVerifier::parse(REMORA_VKEY),
            Err(KeyError::WrongSignatureType {
                found: COSIGNATURE_V1_SIGNATURE_TYPE,
                expected: crate::ED25519_SIGNATURE_TYPE
            })
        );
        assert_eq!(
            CosignatureVerifier::parse(ARCHE_VKEY),
            Err(KeyError::WrongSignatureType {
                found: crate::ED25519_SIGNATURE_TYPE,
                expected: COSIGNATURE_V1_SIGNATURE_TYPE
            })
        );
    }

    #[test]
    fn decodes_spec_example_cosignature() {
        let line = NoteSignature::parse_line(SPEC_COSIGNATURE).expect("valid line");
        assert_eq!(line.key_id, [0x8d, 0x66, 0xcf, 0x3f]);
        let cosignature = Cosignature::from_note_signature(&line).expect("72 bytes");
        // The time of the spec's example message.
        assert_eq!(cosignature.timestamp, 1679315147);
        assert_eq!(cosignature.to_bytes().as_slice(), line.signature.as_slice());
    }

    #[test]
    fn cosigned_message_matches_spec_example() {
        assert_eq!(
            cosigned_message(1679315147, SPEC_TEXT),
            "cosignature/v1\ntime 1679315147\nexample.com/behind-the-sofa\n20852163\n\
             CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
        );
        assert_eq!(cosigned_message(0, "o\n"), "cosignature/v1\ntime 0\no\n");
    }

    #[test]
    fn sign_and_verify_round_trip() {
        let signer = CosignatureSigner::new("witness.example/w1", &[42; 32]).expect("valid");
        let verifier = CosignatureVerifier::parse(&signer.verifier_key()).expect("valid vkey");
        assert_eq!(verifier, signer.verifier());
        assert_eq!(verifier.key(), signer.key());
        assert_eq!(
            signer.key_id(),
            key_id(
                "witness.example/w1",
                COSIGNATURE_V1_SIGNATURE_TYPE,
                &signer.public_key()
            )
        );

        let mut note = Note::new(SPEC_TEXT).expect("valid text");
        signer.cosign_note(&mut note, 1679315147).expect("cosigns");
        let line = &note.signatures[0];
        assert_eq!(line.signature.len(), COSIGNATURE_SIZE);
        assert_eq!(line.signature[..8], 1679315147u64.to_be_bytes());
        let encoded = note.format().expect("formats");
        let parsed = Note::parse(encoded.as_bytes()).expect("parses");
        assert_eq!(verifier.verify_note(&parsed), Ok(Some(1679315147)));

        // Another cosigner's verifier finds nothing; a note verifier with the same key and
        // name does not take the cosignature (its key ID differs).
        let other = CosignatureSigner::new("witness.example/w2", &[43; 32]).expect("valid");
        assert_eq!(other.verifier().verify_note(&parsed), Ok(None));
        let plain = NoteVerifier::new("witness.example/w1", &signer.public_key()).expect("ok");
        assert!(matches!(
            NoteVerifiers::new([plain]).expect("one").verify(&parsed),
            Err(VerifyError::NoKnownSignature { .. })
        ));
        assert_eq!(
            other
                .verifier()
                .verify(&Checkpoint::parse(SPEC_TEXT).expect("ok"), line),
            Err(CosignatureError::KeyMismatch {
                expected: other.key(),
                found: signer.key()
            })
        );

        // Cosigning again replaces the earlier cosignature.
        signer.cosign_note(&mut note, 1679315148).expect("cosigns");
        assert_eq!(note.signatures.len(), 1);
        assert_eq!(verifier.verify_note(&note), Ok(Some(1679315148)));
    }

    #[test]
    fn rejects_bad_cosignatures() {
        let signer = CosignatureSigner::new("w", &[1; 32]).expect("valid");
        let verifier = signer.verifier();
        let checkpoint = Checkpoint::parse(SPEC_TEXT).expect("valid");
        let good = signer.sign(&checkpoint, 1000).expect("signs");

        // A changed timestamp.
        let mut tampered = good.clone();
        tampered.signature[7] ^= 1;
        assert_eq!(
            verifier.verify(&checkpoint, &tampered),
            Err(CosignatureError::InvalidSignature {
                key: signer.key(),
                timestamp: 1001
            })
        );

        // Truncated and extended signatures.
        for len in [64, 71, 73] {
            let mut wrong = good.clone();
            wrong.signature.resize(len, 0);
            assert_eq!(
                verifier.verify(&checkpoint, &wrong),
                Err(CosignatureError::InvalidLength {
                    key: signer.key(),
                    len
                })
            );
        }

        // Timestamps above 2^63 - 1, signed or claimed.
        assert_eq!(
            signer.sign(&checkpoint, MAX_TIMESTAMP + 1),
            Err(CosignatureError::TimestampTooLarge {
                timestamp: MAX_TIMESTAMP + 1
            })
        );
        assert!(signer.sign(&checkpoint, MAX_TIMESTAMP).is_ok());
        let mut huge = good.clone();
        huge.signature[..8].copy_from_slice(&u64::MAX.to_be_bytes());
        assert_eq!(
            verifier.verify(&checkpoint, &huge),
            Err(CosignatureError::TimestampTooLarge {
                timestamp: u64::MAX
            })
        );

        // Two cosignatures from one cosigner.
        let note = Note {
            text: SPEC_TEXT.into(),
            signatures: vec![good.clone(), good.clone()],
        };
        assert_eq!(
            verifier.verify_note(&note),
            Err(CosignatureError::DuplicateSignature { key: signer.key() })
        );

        // A note whose text is not a checkpoint.
        let mut not_checkpoint = Note::new("hello\n").expect("valid text");
        assert_eq!(
            signer.cosign_note(&mut not_checkpoint, 1),
            Err(CosignatureError::Checkpoint(CheckpointError::MissingLine {
                line: "tree size"
            }))
        );
        not_checkpoint.signatures.push(good);
        assert_eq!(
            verifier.verify_note(&not_checkpoint),
            Err(CosignatureError::Checkpoint(CheckpointError::MissingLine {
                line: "tree size"
            }))
        );
    }

    #[test]
    fn cosignature_covers_extension_lines() {
        let signer = CosignatureSigner::new("w", &[2; 32]).expect("valid");
        let mut checkpoint = Checkpoint::parse(SPEC_TEXT).expect("valid");
        checkpoint.extensions = vec!["extension 1".into(), "extension 2".into()];
        let line = signer.sign(&checkpoint, 5).expect("signs");
        assert_eq!(signer.verifier().verify(&checkpoint, &line), Ok(5));
        checkpoint.extensions[1] = "extension X".into();
        assert!(matches!(
            signer.verifier().verify(&checkpoint, &line),
            Err(CosignatureError::InvalidSignature { .. })
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(32))]

        #[test]
        fn random_checkpoints_cosign_and_verify(
            checkpoint in checkpoint_strategy(),
            timestamp in 0..=MAX_TIMESTAMP,
            seed in any::<[u8; 32]>(),
            index in any::<prop::sample::Index>(),
            bit in 0..8u8,
        ) {
            let signer = CosignatureSigner::new("witness.example/w", &seed).expect("valid");
            let verifier = signer.verifier();
            let line = signer.sign(&checkpoint, timestamp).expect("signs");
            prop_assert_eq!(verifier.verify(&checkpoint, &line), Ok(timestamp));

            let mut tampered = line.clone();
            let i = index.index(tampered.signature.len());
            tampered.signature[i] ^= 1 << bit;
            prop_assert!(verifier.verify(&checkpoint, &tampered).is_err());
        }
    }
}
