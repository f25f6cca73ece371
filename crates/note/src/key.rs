//! Ed25519 note keys in the verifier key ("vkey") format of c2sp.org/signed-note and Go's
//! `golang.org/x/mod/sumdb/note`, and verification of notes against a set of trusted keys.
//!
//! A verifier key is three parts joined by `+`:
//!
//! ```text
//! <key name>+<hex(key ID)>+<base64(signature type || public key)>
//! PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW
//! ```
//!
//! The key ID is eight lowercase hex digits, and is derived, never chosen:
//!
//! ```text
//! key ID = SHA-256(key name || 0x0A || signature type || public key)[:4]
//! ```
//!
//! The signature type is [`ED25519_SIGNATURE_TYPE`] (0x01) for plain Ed25519 note signatures,
//! which sign the note text as is (RFC 8032 Ed25519, no prefix, no prehash), and
//! [`COSIGNATURE_V1_SIGNATURE_TYPE`] (0x04) for the timestamped cosignatures of
//! [`cosignature`](crate::cosignature). The public key is the 32-byte RFC 8032 encoding.
//!
//! Verification follows the spec: a signature whose key name *and* key ID match no trusted key
//! is ignored (listed in [`Verification::unknown`]); a signature from a trusted key must verify
//! or the whole note is rejected; and a note with no verified signature is rejected.

use std::collections::BTreeMap;
use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use sha2::{Digest as _, Sha256};

use crate::note::{self, MAX_SIGNATURES, Note, NoteError, NoteSignature, excerpt, key_id_hex};

/// The signature type byte of plain Ed25519 note signatures (c2sp.org/signed-note).
pub const ED25519_SIGNATURE_TYPE: u8 = 0x01;

/// The signature type byte of timestamped Ed25519 checkpoint cosignatures
/// (c2sp.org/tlog-cosignature).
pub const COSIGNATURE_V1_SIGNATURE_TYPE: u8 = 0x04;

/// The length of an Ed25519 public key and of a seed.
pub const ED25519_KEY_SIZE: usize = 32;

/// The length of an Ed25519 signature.
pub const ED25519_SIGNATURE_SIZE: usize = 64;

/// Computes a key ID: `SHA-256(name || 0x0A || signature_type || public_key)[:4]`.
///
/// Both ends derive the ID from the key, so a signature line names its key without trusting
/// the note: a colliding ID can only lead to a failed verification.
pub fn key_id(name: &str, signature_type: u8, public_key: &[u8]) -> [u8; 4] {
    let digest = Sha256::new()
        .chain_update(name.as_bytes())
        .chain_update([b'\n', signature_type])
        .chain_update(public_key)
        .finalize();
    let mut id = [0; 4];
    id.copy_from_slice(&digest[..4]);
    id
}

/// A key as named by a signature line: key name and key ID.
///
/// It displays as `<name>+<hex key ID>`, the start of the verifier key, as Go prints it.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct KeyRef {
    /// The key name.
    pub name: String,
    /// The key ID.
    pub key_id: [u8; 4],
}

impl fmt::Display for KeyRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}+{}", excerpt(&self.name), key_id_hex(&self.key_id))
    }
}

/// A reason for rejecting a key name, a verifier key or a public key.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    /// The key name is empty or contains white space, `+` or a control character.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The start of the rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// The verifier key does not have three `+`-separated parts.
    #[error("verifier key {vkey:?} is not of the form <name>+<key id>+<key>")]
    MalformedVerifierKey {
        /// The start of the rejected verifier key.
        vkey: String,
    },
    /// The key ID part is not exactly eight lowercase hex digits.
    #[error("key id {value:?} is not 8 lowercase hex digits")]
    InvalidKeyIdHex {
        /// The start of the rejected key ID text.
        value: String,
    },
    /// The key part is not canonical padded standard base64.
    #[error("key {value:?} is not valid base64")]
    InvalidKeyBase64 {
        /// The start of the rejected base64 text.
        value: String,
    },
    /// The key has another signature type than the one expected.
    #[error("key has signature type {found:#04x}, want {expected:#04x}")]
    WrongSignatureType {
        /// The signature type byte of the key.
        found: u8,
        /// The signature type byte required.
        expected: u8,
    },
    /// The public key is not 32 bytes.
    #[error("public key is {len} bytes, want 32")]
    InvalidPublicKeyLength {
        /// The length of the public key, signature type byte excluded.
        len: usize,
    },
    /// The key ID of the verifier key is not the one derived from its name and key.
    #[error("key id {found} of {name:?} does not match its key, whose key id is {computed}")]
    KeyIdMismatch {
        /// The start of the key name.
        name: String,
        /// The key ID given, in hex.
        found: String,
        /// The key ID derived, in hex.
        computed: String,
    },
    /// The public key is not the encoding of a point of the curve.
    #[error("public key {key} is not a valid ed25519 point")]
    InvalidPublicKey {
        /// The public key, in base64.
        key: String,
    },
    /// The public key has small order: it would accept forged signatures.
    #[error("public key {key} is a weak ed25519 key of small order")]
    WeakPublicKey {
        /// The public key, in base64.
        key: String,
    },
}

/// A reason for rejecting a note or one of its signatures during verification.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The note is malformed.
    #[error(transparent)]
    Note(#[from] NoteError),
    /// Two trusted verifiers have the same key name and key ID.
    #[error("duplicate verifier {key}")]
    DuplicateVerifier {
        /// The key name and key ID shared.
        key: KeyRef,
    },
    /// A signature was checked against a verifier of another key.
    #[error("signature from {found} checked against the verifier of {expected}")]
    KeyMismatch {
        /// The key of the verifier.
        expected: KeyRef,
        /// The key named by the signature.
        found: KeyRef,
    },
    /// A signature from a trusted key is not 64 bytes long.
    #[error("signature from {key} is {len} bytes, want 64")]
    InvalidSignatureLength {
        /// The key of the signature.
        key: KeyRef,
        /// The length of the signature, key ID excluded.
        len: usize,
    },
    /// A signature from a trusted key does not verify.
    #[error("invalid signature from {key}")]
    InvalidSignature {
        /// The key of the signature.
        key: KeyRef,
    },
    /// A trusted key signed the note more than once.
    #[error("duplicate signature from {key}")]
    DuplicateSignature {
        /// The key of the signatures.
        key: KeyRef,
    },
    /// No signature of the note is from a trusted key.
    #[error("note has no signature from a known key (unknown signers: {})", list_keys(.unknown))]
    NoKnownSignature {
        /// The distinct keys of the signatures ignored.
        unknown: Vec<KeyRef>,
    },
}

fn list_keys(keys: &[KeyRef]) -> String {
    const SHOWN: usize = 4;
    if keys.is_empty() {
        return "none".to_owned();
    }
    let mut out = keys
        .iter()
        .take(SHOWN)
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join(", ");
    if keys.len() > SHOWN {
        out.push_str(&format!(" and {} more", keys.len() - SHOWN));
    }
    out
}

/// An Ed25519 signing key with its name and key ID, common to note signers and cosigners.
pub(crate) struct SignerCore {
    name: String,
    key_id: [u8; 4],
    signing_key: SigningKey,
}

impl SignerCore {
    pub(crate) fn new(
        name: &str,
        seed: &[u8; ED25519_KEY_SIZE],
        signature_type: u8,
    ) -> Result<Self, KeyError> {
        check_key_name(name)?;
        // `SigningKey` zeroizes its copy of the seed when dropped.
        let signing_key = SigningKey::from_bytes(seed);
        let public_key = signing_key.verifying_key().to_bytes();
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, signature_type, &public_key),
            signing_key,
        })
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    pub(crate) fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.signing_key.verifying_key().to_bytes()
    }

    pub(crate) fn verifier(&self) -> VerifierCore {
        VerifierCore {
            name: self.name.clone(),
            key_id: self.key_id,
            verifying_key: self.signing_key.verifying_key(),
        }
    }

    pub(crate) fn sign(&self, message: &[u8]) -> [u8; ED25519_SIGNATURE_SIZE] {
        self.signing_key.sign(message).to_bytes()
    }
}

impl fmt::Debug for SignerCore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("name", &self.name)
            .field("key_id", &key_id_hex(&self.key_id))
            .finish_non_exhaustive()
    }
}

/// An Ed25519 public key with its name and key ID, common to note verifiers and cosignature
/// verifiers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct VerifierCore {
    name: String,
    key_id: [u8; 4],
    verifying_key: VerifyingKey,
}

impl VerifierCore {
    pub(crate) fn new(
        name: &str,
        public_key: &[u8; ED25519_KEY_SIZE],
        signature_type: u8,
    ) -> Result<Self, KeyError> {
        check_key_name(name)?;
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id(name, signature_type, public_key),
            verifying_key: decode_public_key(public_key)?,
        })
    }

    /// Parses `<name>+<hex key ID>+<base64(signature type || public key)>`.
    pub(crate) fn parse(vkey: &str, signature_type: u8) -> Result<Self, KeyError> {
        let mut parts = vkey.splitn(3, '+');
        let (Some(name), Some(id_hex), Some(key_b64)) = (parts.next(), parts.next(), parts.next())
        else {
            return Err(KeyError::MalformedVerifierKey {
                vkey: excerpt(vkey),
            });
        };
        check_key_name(name)?;
        let found_id = parse_key_id_hex(id_hex)?;
        let raw = BASE64
            .decode(key_b64)
            .map_err(|_| KeyError::InvalidKeyBase64 {
                value: excerpt(key_b64),
            })?;
        let Some((&found_type, key)) = raw.split_first() else {
            return Err(KeyError::InvalidPublicKeyLength { len: 0 });
        };
        if found_type != signature_type {
            return Err(KeyError::WrongSignatureType {
                found: found_type,
                expected: signature_type,
            });
        }
        let key: &[u8; ED25519_KEY_SIZE] = key
            .try_into()
            .map_err(|_| KeyError::InvalidPublicKeyLength { len: key.len() })?;
        let computed = key_id(name, signature_type, key);
        if computed != found_id {
            return Err(KeyError::KeyIdMismatch {
                name: excerpt(name),
                found: key_id_hex(&found_id),
                computed: key_id_hex(&computed),
            });
        }
        Self::new(name, key, signature_type)
    }

    pub(crate) fn name(&self) -> &str {
        &self.name
    }

    pub(crate) fn key_id(&self) -> [u8; 4] {
        self.key_id
    }

    pub(crate) fn key(&self) -> KeyRef {
        KeyRef {
            name: self.name.clone(),
            key_id: self.key_id,
        }
    }

    pub(crate) fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.verifying_key.to_bytes()
    }

    pub(crate) fn matches(&self, signature: &NoteSignature) -> bool {
        signature.name == self.name && signature.key_id == self.key_id
    }

    /// Formats the verifier key string.
    pub(crate) fn format(&self, f: &mut fmt::Formatter<'_>, signature_type: u8) -> fmt::Result {
        let mut raw = [0; 1 + ED25519_KEY_SIZE];
        raw[0] = signature_type;
        raw[1..].copy_from_slice(self.verifying_key.as_bytes());
        write!(
            f,
            "{}+{}+{}",
            self.name,
            key_id_hex(&self.key_id),
            BASE64.encode(raw)
        )
    }

    /// Strict RFC 8032 verification, rejecting non-canonical and small-order encodings.
    pub(crate) fn verify(&self, message: &[u8], signature: &[u8; ED25519_SIGNATURE_SIZE]) -> bool {
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        self.verifying_key
            .verify_strict(message, &signature)
            .is_ok()
    }
}

fn decode_public_key(public_key: &[u8; ED25519_KEY_SIZE]) -> Result<VerifyingKey, KeyError> {
    let verifying_key =
        VerifyingKey::from_bytes(public_key).map_err(|_| KeyError::InvalidPublicKey {
            key: BASE64.encode(public_key),
        })?;
    if verifying_key.is_weak() {
        return Err(KeyError::WeakPublicKey {
            key: BASE64.encode(public_key),
        });
    }
    Ok(verifying_key)
}

fn parse_key_id_hex(value: &str) -> Result<[u8; 4], KeyError> {
    let invalid = || KeyError::InvalidKeyIdHex {
        value: excerpt(value),
    };
    if value.len() != 8
        || !value
            .bytes()
            .all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f'))
    {
        return Err(invalid());
    }
    let id = u32::from_str_radix(value, 16).map_err(|_| invalid())?;
    Ok(id.to_be_bytes())
}

fn check_key_name(name: &str) -> Result<(), KeyError> {
    match note::key_name_defect(name) {
        Some(reason) => Err(KeyError::InvalidKeyName {
            name: excerpt(name),
            reason,
        }),
        None => Ok(()),
    }
}

/// Signs note texts with an Ed25519 key (signature type 0x01).
///
/// It is built from a key name and the 32-byte Ed25519 seed, which is the secret: the copy
/// kept here is zeroized on drop, and `Debug` shows only the name and key ID. Signatures are
/// plain RFC 8032 Ed25519 over the note text, as Go's `note.Sign` makes them.
#[derive(Debug)]
pub struct NoteSigner(SignerCore);

impl NoteSigner {
    /// Makes a signer from a key name and an Ed25519 seed (the RFC 8032 private key).
    ///
    /// The caller keeps ownership of `seed` and should zeroize its own copy.
    pub fn new(name: &str, seed: &[u8; ED25519_KEY_SIZE]) -> Result<Self, KeyError> {
        SignerCore::new(name, seed, ED25519_SIGNATURE_TYPE).map(Self)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.0.key_id()
    }

    /// The key name and key ID, as its signature lines name it.
    pub fn key(&self) -> KeyRef {
        self.0.verifier().key()
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.0.public_key()
    }

    /// The verifier of this signer's signatures.
    pub fn verifier(&self) -> NoteVerifier {
        NoteVerifier(self.0.verifier())
    }

    /// The verifier key string to hand to verifiers, e.g. `PeterNeumann+c74f20a3+ARpc…`.
    pub fn verifier_key(&self) -> String {
        self.verifier().to_string()
    }

    /// Signs a note text, which must be valid (see [`note::validate_text`]).
    pub fn sign(&self, text: &str) -> Result<NoteSignature, NoteError> {
        note::validate_text(text)?;
        Ok(NoteSignature {
            name: self.0.name().to_owned(),
            key_id: self.0.key_id(),
            signature: self.0.sign(text.as_bytes()).to_vec(),
        })
    }

    /// Signs a note's text and adds the signature, replacing an earlier one from this key.
    pub fn sign_note(&self, note: &mut Note) -> Result<(), NoteError> {
        let signature = self.sign(&note.text)?;
        note.add_signature(signature);
        Ok(())
    }
}

/// Verifies plain Ed25519 note signatures (signature type 0x01) of one key.
///
/// Parse it from a verifier key string (`FromStr`), which checks the key ID against the key;
/// `Display` gives the string back.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NoteVerifier(VerifierCore);

impl NoteVerifier {
    /// Makes a verifier from a key name and a 32-byte Ed25519 public key.
    pub fn new(name: &str, public_key: &[u8; ED25519_KEY_SIZE]) -> Result<Self, KeyError> {
        VerifierCore::new(name, public_key, ED25519_SIGNATURE_TYPE).map(Self)
    }

    /// Parses a verifier key string `<name>+<hex key ID>+<base64(0x01 || public key)>`.
    pub fn parse(vkey: &str) -> Result<Self, KeyError> {
        VerifierCore::parse(vkey, ED25519_SIGNATURE_TYPE).map(Self)
    }

    /// The key name.
    pub fn name(&self) -> &str {
        self.0.name()
    }

    /// The key ID.
    pub fn key_id(&self) -> [u8; 4] {
        self.0.key_id()
    }

    /// The key name and key ID, as signature lines name this key.
    pub fn key(&self) -> KeyRef {
        self.0.key()
    }

    /// The 32-byte Ed25519 public key.
    pub fn public_key(&self) -> [u8; ED25519_KEY_SIZE] {
        self.0.public_key()
    }

    /// Checks one signature over a note text.
    ///
    /// The signature must name this key (else [`VerifyError::KeyMismatch`]), be 64 bytes and
    /// verify.
    pub fn verify(&self, text: &str, signature: &NoteSignature) -> Result<(), VerifyError> {
        if !self.0.matches(signature) {
            return Err(VerifyError::KeyMismatch {
                expected: self.key(),
                found: signature.key(),
            });
        }
        let bytes: &[u8; ED25519_SIGNATURE_SIZE] =
            signature.signature.as_slice().try_into().map_err(|_| {
                VerifyError::InvalidSignatureLength {
                    key: self.key(),
                    len: signature.signature.len(),
                }
            })?;
        if self.0.verify(text.as_bytes(), bytes) {
            Ok(())
        } else {
            Err(VerifyError::InvalidSignature { key: self.key() })
        }
    }
}

impl FromStr for NoteVerifier {
    type Err = KeyError;

    fn from_str(vkey: &str) -> Result<Self, Self::Err> {
        Self::parse(vkey)
    }
}

impl fmt::Display for NoteVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.format(f, ED25519_SIGNATURE_TYPE)
    }
}

/// The outcome of verifying a note: which keys verified, which signatures were ignored.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Verification {
    /// The trusted keys whose signature verified, in the order of their lines.
    pub verified: Vec<KeyRef>,
    /// The distinct keys of the signatures ignored because no trusted key has both their name
    /// and key ID, in the order of their first lines.
    pub unknown: Vec<KeyRef>,
}

/// A set of trusted note verifiers, each identified by key name and key ID.
#[derive(Clone, Debug, Default)]
pub struct NoteVerifiers {
    verifiers: BTreeMap<KeyRef, NoteVerifier>,
}

impl NoteVerifiers {
    /// Makes a set from verifiers, rejecting two with the same key name and key ID.
    pub fn new(verifiers: impl IntoIterator<Item = NoteVerifier>) -> Result<Self, VerifyError> {
        let mut set = Self::default();
        for verifier in verifiers {
            set.insert(verifier)?;
        }
        Ok(set)
    }

    /// Adds a verifier, rejecting it if one with the same key name and key ID is present:
    /// signature lines could not tell the two apart.
    pub fn insert(&mut self, verifier: NoteVerifier) -> Result<(), VerifyError> {
        let key = verifier.key();
        if self.verifiers.contains_key(&key) {
            return Err(VerifyError::DuplicateVerifier { key });
        }
        self.verifiers.insert(key, verifier);
        Ok(())
    }

    /// The verifier of a key name and key ID, if trusted.
    pub fn get(&self, name: &str, key_id: [u8; 4]) -> Option<&NoteVerifier> {
        // A linear scan avoids allocating a `KeyRef` per lookup; the set is small.
        self.verifiers
            .values()
            .find(|v| v.name() == name && v.key_id() == key_id)
    }

    /// The number of verifiers.
    pub fn len(&self) -> usize {
        self.verifiers.len()
    }

    /// Whether the set is empty.
    pub fn is_empty(&self) -> bool {
        self.verifiers.is_empty()
    }

    /// Verifies a note's signatures.
    ///
    /// Signatures from unknown keys are ignored and listed; every signature from a trusted key
    /// must be valid and appear once; at least one must be present. The note text must be
    /// valid and the note must have at most [`MAX_SIGNATURES`] signatures.
    pub fn verify(&self, note: &Note) -> Result<Verification, VerifyError> {
        note::validate_text(&note.text)?;
        if note.signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                count: note.signatures.len(),
                max: MAX_SIGNATURES,
            }
            .into());
        }
        let mut outcome = Verification::default();
        for signature in &note.signatures {
            let key = signature.key();
            match self.get(&signature.name, signature.key_id) {
                None => {
                    if !outcome.unknown.contains(&key) {
                        outcome.unknown.push(key);
                    }
                }
                Some(verifier) => {
                    if outcome.verified.contains(&key) {
                        return Err(VerifyError::DuplicateSignature { key });
                    }
                    verifier.verify(&note.text, signature)?;
                    outcome.verified.push(key);
                }
            }
        }
        if outcome.verified.is_empty() {
            return Err(VerifyError::NoKnownSignature {
                unknown: outcome.unknown,
            });
        }
        Ok(outcome)
    }

    /// Parses an encoded note and verifies it, like Go's `note.Open`.
    pub fn open(&self, encoded: &[u8]) -> Result<(Note, Verification), VerifyError> {
        let note = Note::parse(encoded)?;
        let outcome = self.verify(&note)?;
        Ok((note, outcome))
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::note::tests::{PETER_SIG, PETER_TEXT};
    use proptest::prelude::*;

    // Verifier and signer keys of Go's golang.org/x/mod/sumdb/note (note.go, note_test.go).
    pub(crate) const PETER_VKEY: &str =
        "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW";
    const PETER_SKEY: &str =
        "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz";
    const ENOCH_VKEY: &str = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop";
    const ENOCH_SIG: &str = "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox33WWd1RvMc+QQ=\n";

    // The example of c2sp.org/signed-note, section "Verifier keys".
    const SPEC_VKEY: &str = "example.com/foo+530d903a+AekyeRrm56hApGFkyQR4ZCbV54Id2LKaANYcrnKv3U2k";
    const SPEC_NOTE: &str = "This is an example message.\n\n— example.com/foo Uw2QOkn8srV1yJGh2VYRlL1Tnagv1YEq6TfXppzi2ONncAlTgK7Ztg1ERYNZXsYjOBH3mFXmRKuwHjG1Yu72IneyaQM=\n";

    // A type 0x01 key of transparency-dev/formats note/note_cosigv1_test.go whose base64 has
    // a '+'.
    const PLUS_VKEY: &str = "TEST+7997405c+AQcC+FTVKf0jlTdHDY3rbevmnKxxPjigCXlVtGe6RIr6";

    fn peter() -> NoteVerifier {
        NoteVerifier::parse(PETER_VKEY).expect("valid vkey")
    }

    fn enoch() -> NoteVerifier {
        NoteVerifier::parse(ENOCH_VKEY).expect("valid vkey")
    }

    fn key(name: &str, id: u32) -> KeyRef {
        KeyRef {
            name: name.into(),
            key_id: id.to_be_bytes(),
        }
    }

    /// The seed of Go's PeterNeumann signer key: base64 of 0x01 || seed.
    fn peter_seed() -> [u8; 32] {
        let raw = BASE64
            .decode(PETER_SKEY.splitn(5, '+').nth(4).expect("fixture"))
            .expect("fixture");
        assert_eq!(raw[0], ED25519_SIGNATURE_TYPE);
        raw[1..].try_into().expect("fixture")
    }

    #[test]
    fn parses_published_verifier_keys() {
        for (vkey, name, id) in [
            (PETER_VKEY, "PeterNeumann", 0xc74f20a3),
            (ENOCH_VKEY, "EnochRoot", 0xaf0cfe78),
            (SPEC_VKEY, "example.com/foo", 0x530d903a),
            (PLUS_VKEY, "TEST", 0x7997405c),
        ] {
            let verifier = NoteVerifier::parse(vkey).expect(vkey);
            assert_eq!(verifier.key(), key(name, id));
            assert_eq!(verifier.to_string(), vkey);
            assert_eq!(
                key_id(name, ED25519_SIGNATURE_TYPE, &verifier.public_key()),
                id.to_be_bytes()
            );
            assert_eq!(
                NoteVerifier::new(name, &verifier.public_key()),
                Ok(verifier)
            );
        }
        // The public key of the spec example, as florolf/tlog-scales tests decode it.
        let public_key = NoteVerifier::parse(SPEC_VKEY).expect("valid").public_key();
        assert_eq!(
            public_key
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>(),
            "e932791ae6e7a840a46164c904786426d5e7821dd8b29a00d61cae72afdd4da4"
        );
    }

    #[test]
    fn signer_reproduces_go_signature() {
        let signer = NoteSigner::new("PeterNeumann", &peter_seed()).expect("valid signer");
        assert_eq!(signer.verifier_key(), PETER_VKEY);
        assert_eq!(signer.key(), key("PeterNeumann", 0xc74f20a3));
        let mut note = Note::new(PETER_TEXT).expect("valid text");
        signer.sign_note(&mut note).expect("signs");
        assert_eq!(
            note.format().expect("formats"),
            format!("{PETER_TEXT}\n{PETER_SIG}")
        );
        // Re-signing replaces the signature rather than adding a duplicate.
        signer.sign_note(&mut note).expect("signs");
        assert_eq!(note.signatures.len(), 1);
        let debug = format!("{signer:?}");
        assert!(
            debug.contains("c74f20a3") && !debug.contains("signing_key"),
            "{debug}"
        );
    }

    #[test]
    fn verifies_spec_example() {
        let verifiers =
            NoteVerifiers::new([NoteVerifier::parse(SPEC_VKEY).expect("valid")]).expect("distinct");
        let (note, outcome) = verifiers.open(SPEC_NOTE.as_bytes()).expect("verifies");
        assert_eq!(note.text, "This is an example message.\n");
        assert_eq!(outcome.verified, vec![key("example.com/foo", 0x530d903a)]);
        assert!(outcome.unknown.is_empty());
    }

    #[test]
    fn verifies_go_notes() {
        let encoded = format!("{PETER_TEXT}\n{PETER_SIG}{ENOCH_SIG}");

        let only_peter = NoteVerifiers::new([peter()]).expect("distinct");
        let (note, outcome) = only_peter.open(encoded.as_bytes()).expect("verifies");
        assert_eq!(note.text, PETER_TEXT);
        assert_eq!(outcome.verified, vec![key("PeterNeumann", 0xc74f20a3)]);
        assert_eq!(outcome.unknown, vec![key("EnochRoot", 0xaf0cfe78)]);

        let both = NoteVerifiers::new([peter(), enoch()]).expect("distinct");
        let (_, outcome) = both.open(encoded.as_bytes()).expect("verifies");
        assert_eq!(
            outcome.verified,
            vec![
                key("PeterNeumann", 0xc74f20a3),
                key("EnochRoot", 0xaf0cfe78)
            ]
        );
        assert!(outcome.unknown.is_empty());

        let none = NoteVerifiers::default();
        let err = none.open(encoded.as_bytes()).expect_err("unverified");
        assert_eq!(
            err,
            VerifyError::NoKnownSignature {
                unknown: vec![
                    key("PeterNeumann", 0xc74f20a3),
                    key("EnochRoot", 0xaf0cfe78)
                ]
            }
        );
        assert_eq!(
            err.to_string(),
            "note has no signature from a known key \
             (unknown signers: PeterNeumann+c74f20a3, EnochRoot+af0cfe78)"
        );
    }

    #[test]
    fn rejects_bad_signatures_from_known_keys() {
        let verifiers = NoteVerifiers::new([peter()]).expect("distinct");
        let open = |sigs: &str| verifiers.open(format!("{PETER_TEXT}\n{sigs}").as_bytes());

        // Go's "invalid signature" case: "ABCD" spliced into the base64.
        let spliced = format!("{}ABCD{}", &PETER_SIG[..60], &PETER_SIG[60..]);
        assert_eq!(
            open(&spliced),
            Err(VerifyError::InvalidSignatureLength {
                key: key("PeterNeumann", 0xc74f20a3),
                len: 67
            })
        );

        // A flipped bit in the signature proper.
        let mut note = Note::parse(format!("{PETER_TEXT}\n{PETER_SIG}").as_bytes()).expect("ok");
        note.signatures[0].signature[10] ^= 1;
        let tampered = note.format().expect("formats");
        assert_eq!(
            verifiers.open(tampered.as_bytes()),
            Err(VerifyError::InvalidSignature {
                key: key("PeterNeumann", 0xc74f20a3)
            })
        );

        // A truncated signature: 63 bytes.
        let mut note = Note::parse(format!("{PETER_TEXT}\n{PETER_SIG}").as_bytes()).expect("ok");
        note.signatures[0].signature.pop();
        assert_eq!(
            verifiers.verify(&note),
            Err(VerifyError::InvalidSignatureLength {
                key: key("PeterNeumann", 0xc74f20a3),
                len: 63
            })
        );

        // The same key twice.
        assert_eq!(
            open(&format!("{PETER_SIG}{PETER_SIG}")),
            Err(VerifyError::DuplicateSignature {
                key: key("PeterNeumann", 0xc74f20a3)
            })
        );

        // A wrong key ID makes the signature unknown, and then nothing verifies.
        let mut note = Note::parse(format!("{PETER_TEXT}\n{PETER_SIG}").as_bytes()).expect("ok");
        note.signatures[0].key_id[3] ^= 1;
        assert_eq!(
            verifiers.verify(&note),
            Err(VerifyError::NoKnownSignature {
                unknown: vec![key("PeterNeumann", 0xc74f20a2)]
            })
        );

        // A wrong name likewise (Go's "CarmenSandiego" case).
        let misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego");
        assert_eq!(
            open(&misnamed),
            Err(VerifyError::NoKnownSignature {
                unknown: vec![key("CarmenSandiego", 0xc74f20a3)]
            })
        );

        // Unknown duplicates are ignored and listed once.
        let (_, outcome) = open(&format!("{ENOCH_SIG}{PETER_SIG}{ENOCH_SIG}")).expect("verifies");
        assert_eq!(outcome.unknown, vec![key("EnochRoot", 0xaf0cfe78)]);

        // A malformed note is reported as such.
        assert_eq!(
            verifiers.open(PETER_TEXT.as_bytes()),
            Err(VerifyError::Note(NoteError::MissingBlankLine))
        );
    }

    #[test]
    fn verifier_checks_the_key_of_the_signature() {
        let note = Note::parse(format!("{PETER_TEXT}\n{ENOCH_SIG}").as_bytes()).expect("ok");
        assert_eq!(
            peter().verify(&note.text, &note.signatures[0]),
            Err(VerifyError::KeyMismatch {
                expected: key("PeterNeumann", 0xc74f20a3),
                found: key("EnochRoot", 0xaf0cfe78)
            })
        );
        assert_eq!(enoch().verify(&note.text, &note.signatures[0]), Ok(()));
    }

    #[test]
    fn rejects_duplicate_verifiers() {
        assert_eq!(
            NoteVerifiers::new([peter(), enoch(), enoch()]).map(|v| v.len()),
            Err(VerifyError::DuplicateVerifier {
                key: key("EnochRoot", 0xaf0cfe78)
            })
        );
    }

    #[test]
    fn rejects_malformed_verifier_keys() {
        let cases = [
            (
                "PeterNeumann+c74f20a3",
                KeyError::MalformedVerifierKey {
                    vkey: "PeterNeumann+c74f20a3".into(),
                },
            ),
            (
                "Peter Neumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                KeyError::InvalidKeyName {
                    name: "Peter Neumann".into(),
                    reason: "it contains white space",
                },
            ),
            (
                "PeterNeumann+C74F20A3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                KeyError::InvalidKeyIdHex {
                    value: "C74F20A3".into(),
                },
            ),
            (
                "PeterNeumann+c74f20a+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                KeyError::InvalidKeyIdHex {
                    value: "c74f20a".into(),
                },
            ),
            (
                "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T",
                KeyError::InvalidKeyBase64 {
                    value: "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10T".into(),
                },
            ),
            (
                "PeterNeumann+c74f20a3+",
                KeyError::InvalidPublicKeyLength { len: 0 },
            ),
            (
                // Go's "wrong length key, with adjusted key hash". Its last base64 group has
                // non-zero padding bits, which Go's lenient decoder accepts; it fails earlier
                // here. The length check itself is tested below.
                "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==",
                KeyError::InvalidKeyBase64 {
                    value: "ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY==".into(),
                },
            ),
            (
                // Go's "unknown algorithm, with adjusted key hash".
                "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                KeyError::WrongSignatureType {
                    found: 0x65,
                    expected: ED25519_SIGNATURE_TYPE,
                },
            ),
            (
                "PeterNeumann+00000000+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW",
                KeyError::KeyIdMismatch {
                    name: "PeterNeumann".into(),
                    found: "00000000".into(),
                    computed: "c74f20a3".into(),
                },
            ),
        ];
        for (vkey, want) in cases {
            assert_eq!(NoteVerifier::parse(vkey), Err(want), "{vkey}");
        }

        // Keys of 31 and 33 bytes, with canonical base64 and adjusted key IDs.
        let public_key = peter().public_key();
        for len in [31, 33] {
            let mut key = public_key.to_vec();
            key.resize(len, 0);
            let mut raw = vec![ED25519_SIGNATURE_TYPE];
            raw.extend_from_slice(&key);
            let id = key_id("PeterNeumann", ED25519_SIGNATURE_TYPE, &key);
            let vkey = format!("PeterNeumann+{}+{}", key_id_hex(&id), BASE64.encode(&raw));
            assert_eq!(
                NoteVerifier::parse(&vkey),
                Err(KeyError::InvalidPublicKeyLength { len }),
                "{vkey}"
            );
        }
    }

    #[test]
    fn rejects_manglings_of_a_verifier_key() {
        // Go's TestNewVerifier: every proper substring and every single-byte increment fails.
        let bytes = PETER_VKEY.as_bytes();
        for i in 0..=bytes.len() {
            for j in i + 1..=bytes.len() {
                if (i, j) != (0, bytes.len()) {
                    let s = std::str::from_utf8(&bytes[i..j]).expect("ascii");
                    assert!(NoteVerifier::parse(s).is_err(), "{s}");
                }
            }
        }
        for i in 0..bytes.len() {
            let mut mangled = bytes.to_vec();
            mangled[i] += 1;
            let s = std::str::from_utf8(&mangled).expect("ascii");
            assert!(NoteVerifier::parse(s).is_err(), "{s}");
        }
    }

    #[test]
    fn rejects_invalid_and_weak_public_keys() {
        // y = 2 is not the y coordinate of a curve point.
        let mut not_on_curve = [0u8; 32];
        not_on_curve[0] = 2;
        assert!(matches!(
            NoteVerifier::new("k", &not_on_curve),
            Err(KeyError::InvalidPublicKey { .. })
        ));
        // The identity point (y = 1) has order 1.
        let mut identity = [0u8; 32];
        identity[0] = 1;
        assert!(matches!(
            NoteVerifier::new("k", &identity),
            Err(KeyError::WeakPublicKey { .. })
        ));
        let mut raw = vec![ED25519_SIGNATURE_TYPE];
        raw.extend_from_slice(&identity);
        let vkey = format!(
            "k+{}+{}",
            key_id_hex(&key_id("k", ED25519_SIGNATURE_TYPE, &identity)),
            BASE64.encode(&raw)
        );
        assert!(matches!(
            NoteVerifier::parse(&vkey),
            Err(KeyError::WeakPublicKey { .. })
        ));
    }

    #[test]
    fn rejects_invalid_signer_names() {
        for (name, reason) in [
            ("", "it is empty"),
            ("a b", "it contains white space"),
            ("a\u{a0}b", "it contains white space"),
            ("a+b", "it contains '+'"),
            ("a\nb", "it contains white space"),
        ] {
            assert_eq!(
                NoteSigner::new(name, &[7; 32]).map(|s| s.key()),
                Err(KeyError::InvalidKeyName {
                    name: name.into(),
                    reason
                }),
                "{name:?}"
            );
        }
    }

    #[test]
    fn signing_rejects_invalid_text() {
        let signer = NoteSigner::new("k", &[7; 32]).expect("valid");
        assert_eq!(
            signer.sign("no newline"),
            Err(NoteError::TextMissingNewline {
                text: "no newline".into()
            })
        );
    }

    fn note_text() -> impl Strategy<Value = String> {
        // Lines of printable text, some empty, always newline-terminated.
        prop::collection::vec("[^\\x00-\\x1f]{0,40}", 1..6)
            .prop_map(|lines| lines.iter().map(|l| format!("{l}\n")).collect())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]

        #[test]
        fn random_texts_sign_and_verify(text in note_text(), seed in any::<[u8; 32]>()) {
            let signer = NoteSigner::new("example.com/log", &seed).expect("valid name");
            let verifiers = NoteVerifiers::new([signer.verifier()]).expect("one");
            let mut note = Note::new(text.clone()).expect("valid text");
            signer.sign_note(&mut note).expect("signs");
            let encoded = note.format().expect("formats");
            let (parsed, outcome) = verifiers.open(encoded.as_bytes()).expect("verifies");
            prop_assert_eq!(&parsed, &note);
            prop_assert_eq!(outcome.verified, vec![signer.key()]);
        }

        #[test]
        fn flipping_any_bit_fails_verification(
            text in note_text(),
            seed in any::<[u8; 32]>(),
            index in any::<prop::sample::Index>(),
            bit in 0..8u8,
        ) {
            let signer = NoteSigner::new("example.com/log", &seed).expect("valid name");
            let verifiers = NoteVerifiers::new([signer.verifier()]).expect("one");
            let mut note = Note::new(text).expect("valid text");
            signer.sign_note(&mut note).expect("signs");

            // Any bit of the text.
            let mut text = note.text.clone().into_bytes();
            let i = index.index(text.len());
            text[i] ^= 1 << bit;
            if let Ok(text) = String::from_utf8(text) {
                let tampered = Note { text, signatures: note.signatures.clone() };
                prop_assert!(verifiers.verify(&tampered).is_err());
            }

            // Any bit of the key ID or the signature.
            let mut tampered = note.clone();
            let sig = &mut tampered.signatures[0];
            let i = index.index(4 + sig.signature.len());
            if i < 4 {
                sig.key_id[i] ^= 1 << bit;
            } else {
                sig.signature[i - 4] ^= 1 << bit;
            }
            prop_assert!(verifiers.verify(&tampered).is_err());

            // Any bit of the encoded note.
            let mut encoded = note.format().expect("formats").into_bytes();
            let i = index.index(encoded.len());
            encoded[i] ^= 1 << bit;
            prop_assert!(verifiers.open(&encoded).is_err());
        }
    }
}
