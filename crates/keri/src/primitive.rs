//! Typed KERI primitives over [`Matter`]: digests, public keys, prefixes, signing keys.

use std::fmt;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::cesr::{CesrError, Code, Matter};

/// A Blake3-256 digest, qb64 code `E`: event SAIDs, next-key commitments, prefixes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Digest(pub [u8; 32]);

impl Digest {
    /// The Blake3-256 digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Digest {
        Digest(*blake3::hash(bytes).as_bytes())
    }

    /// The qb64 text (`E` + 43 characters).
    pub fn qb64(&self) -> String {
        Matter::new(Code::Blake3_256, &self.0)
            .expect("32 bytes")
            .qb64()
    }

    /// Reads a qb64 digest; any code other than `E` is an error.
    pub fn from_qb64(text: &str) -> Result<Digest, CesrError> {
        Digest::from_matter(&Matter::from_qb64(text)?)
    }

    fn from_matter(m: &Matter) -> Result<Digest, CesrError> {
        match m.code() {
            Code::Blake3_256 => Ok(Digest(m.raw().try_into().expect("checked length"))),
            other => Err(CesrError::UnexpectedCode {
                code: other.as_str().to_string(),
                expected: "Blake3-256 digest (E)",
            }),
        }
    }
}

/// An Ed25519 public key: code `D` (transferable) or `B` (non-transferable).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VerKey {
    /// The 32-byte Ed25519 public key.
    pub key: [u8; 32],
    /// `D` when true, `B` when false.
    pub transferable: bool,
}

impl VerKey {
    /// The qb64 text.
    pub fn qb64(&self) -> String {
        let code = if self.transferable {
            Code::Ed25519
        } else {
            Code::Ed25519N
        };
        Matter::new(code, &self.key).expect("32 bytes").qb64()
    }

    /// Reads a qb64 key; codes other than `D` and `B` are errors.
    pub fn from_qb64(text: &str) -> Result<VerKey, CesrError> {
        VerKey::from_matter(&Matter::from_qb64(text)?)
    }

    pub(crate) fn from_matter(m: &Matter) -> Result<VerKey, CesrError> {
        let transferable = match m.code() {
            Code::Ed25519 => true,
            Code::Ed25519N => false,
            other => {
                return Err(CesrError::UnexpectedCode {
                    code: other.as_str().to_string(),
                    expected: "Ed25519 public key (D or B)",
                });
            }
        };
        Ok(VerKey {
            key: m.raw().try_into().expect("checked length"),
            transferable,
        })
    }

    /// The next-key commitment to this key: Blake3-256 of its qb64 text, as keripy's
    /// `Diger(ser=verfer.qb64b)` computes it (the text, not the raw key bytes).
    pub fn next_digest(&self) -> Digest {
        Digest::of(self.qb64().as_bytes())
    }

    /// Whether `signature` is this key's Ed25519 signature of `message` (strict RFC 8032).
    pub fn verify(&self, message: &[u8], signature: &[u8; 64]) -> bool {
        let Ok(key) = VerifyingKey::from_bytes(&self.key) else {
            return false;
        };
        let signature = ed25519_dalek::Signature::from_bytes(signature);
        key.verify_strict(message, &signature).is_ok()
    }
}

/// An identifier prefix.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Prefix {
    /// `E`: the SAID of the inception event (self-addressing).
    SelfAddressing(Digest),
    /// `D` or `B`: the single inception key itself (basic); `B` cannot rotate.
    Basic(VerKey),
}

impl Prefix {
    /// The qb64 text.
    pub fn qb64(&self) -> String {
        match self {
            Prefix::SelfAddressing(d) => d.qb64(),
            Prefix::Basic(k) => k.qb64(),
        }
    }

    /// Reads a qb64 prefix (`E`, `D` or `B`).
    pub fn from_qb64(text: &str) -> Result<Prefix, CesrError> {
        Prefix::from_matter(&Matter::from_qb64(text)?)
    }

    pub(crate) fn from_matter(m: &Matter) -> Result<Prefix, CesrError> {
        match m.code() {
            Code::Blake3_256 => Ok(Prefix::SelfAddressing(Digest::from_matter(m)?)),
            Code::Ed25519 | Code::Ed25519N => Ok(Prefix::Basic(VerKey::from_matter(m)?)),
            other => Err(CesrError::UnexpectedCode {
                code: other.as_str().to_string(),
                expected: "identifier prefix (E, D or B)",
            }),
        }
    }

    /// False only for a `B` (non-transferable) prefix.
    pub fn is_transferable(&self) -> bool {
        !matches!(
            self,
            Prefix::Basic(VerKey {
                transferable: false,
                ..
            })
        )
    }
}

impl fmt::Display for Prefix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qb64())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qb64())
    }
}

impl fmt::Display for VerKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.qb64())
    }
}

macro_rules! qb64_serde {
    ($ty:ty) => {
        impl Serialize for $ty {
            fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(&self.qb64())
            }
        }

        impl<'de> Deserialize<'de> for $ty {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                let text = String::deserialize(d)?;
                <$ty>::from_qb64(&text).map_err(serde::de::Error::custom)
            }
        }
    };
}

qb64_serde!(Digest);
qb64_serde!(VerKey);
qb64_serde!(Prefix);

/// An Ed25519 signing key made from a 32-byte seed (the seed comes from secret storage).
#[derive(Clone)]
pub struct Signer {
    key: SigningKey,
    transferable: bool,
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("verkey", &self.verkey().qb64())
            .finish()
    }
}

impl Signer {
    /// A transferable (`D`) signer from its seed.
    pub fn new(seed: &[u8; 32]) -> Signer {
        Signer {
            key: SigningKey::from_bytes(seed),
            transferable: true,
        }
    }

    /// A non-transferable (`B`) signer from its seed: witnesses and one-shot identifiers.
    pub fn non_transferable(seed: &[u8; 32]) -> Signer {
        Signer {
            key: SigningKey::from_bytes(seed),
            transferable: false,
        }
    }

    /// The public key.
    pub fn verkey(&self) -> VerKey {
        VerKey {
            key: self.key.verifying_key().to_bytes(),
            transferable: self.transferable,
        }
    }

    /// The Ed25519 signature of `message`.
    pub fn sign(&self, message: &[u8]) -> [u8; 64] {
        self.key.sign(message).to_bytes()
    }
}
