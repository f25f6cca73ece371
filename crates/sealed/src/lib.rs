//! Values sealed to the cluster key, opened only with a threshold of partial signatures
//! released to the reader's one-time key, or sealed to named recipients.
//!
//! A value is encrypted with a fresh 32-byte data key (ChaCha20-Poly1305, the target as
//! associated data); the data key is encrypted with commonware's BLS12-381 identity-based
//! encryption (`bls12381::tle`) to the cluster public key under the value's **target** in the
//! namespace [`welkin_types::namespace::SEAL`], which nothing else signs in. Opening needs the
//! cluster's signature over that target: 2f+1 partial signatures, one per node, each checked
//! against the node's share commitment before it counts. A consensus vote or a checkpoint
//! signature is in another namespace and opens nothing; a signature over one value's target
//! opens no other value.
//!
//! The plaintext and the data key exist only in the sealer's and the opener's memory; a
//! [`SealedValue`] (what state stores) holds ciphertext only.
//!
//! Two HPKE (RFC 9180) envelopes complete it, both in one suite (X25519, HKDF-SHA256,
//! ChaCha20-Poly1305, base mode):
//! - a node releases its partial for a committed read sealed to the reader's one-time key
//!   ([`seal_partial`], [`ReaderKey::open_partial`]), bound to the cluster, the read and the
//!   target;
//! - a value can instead be sealed to named recipients' X25519 keys
//!   ([`seal_to_recipients`], [`open_as_recipient`]), which the cluster cannot open.

use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt as _, Write, varint::UInt,
};
use commonware_cryptography::bls12381::{
    primitives::{group::Share, ops::threshold, variant::PartialSignature},
    tle,
};
use rand_core::CryptoRng;
use std::collections::{BTreeMap, BTreeSet};
use value::{NONCE_BYTES, TAG_BYTES};
use welkin_types::{ClusterKey, Digest, Sharing, Variant, hash_parts, namespace};
use zeroize::Zeroizing;

mod recipients;
mod release;
mod suite;
mod value;

pub use recipients::{
    MAX_RECIPIENTS, RECIPIENTS_VERSION, RecipientError, RecipientSealed, open_as_recipient,
    recipient_public_key, seal_to_recipients,
};
pub use release::{
    ENVELOPE_VERSION, EnvelopeError, MAX_ENVELOPE_BYTES, MAX_TARGETS, MAX_TARGETS_ENVELOPE_BYTES,
    ReaderKey, ReleaseContext, TARGETS_ENVELOPE_VERSION, TargetsContext, seal_partial,
    seal_partials,
};

/// The version of the [`SealedValue`] encoding.
pub const VERSION: u8 = 1;
/// The largest plaintext that can be sealed (1 MiB: a secret, not a file).
pub const MAX_PLAINTEXT_BYTES: usize = 1024 * 1024;

/// The target of a value: the hash of what names it (for example mount, path and version)
/// and a random nonce, so that no two seals share a target even under the same name.
pub fn target(name: &[&[u8]], nonce: &[u8; 32]) -> Digest {
    let mut parts: Vec<&[u8]> = Vec::with_capacity(name.len() + 2);
    parts.push(b"welkin/sealed/target/v1");
    parts.extend_from_slice(name);
    parts.push(nonce);
    hash_parts(&parts)
}

/// A value sealed to the cluster key: what state stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SealedValue {
    /// The target whose cluster signature opens it.
    pub target: Digest,
    key: tle::Ciphertext<Variant>,
    nonce: [u8; NONCE_BYTES],
    ciphertext: Vec<u8>,
}

/// Why a value could not be sealed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum SealError {
    /// The plaintext is over [`MAX_PLAINTEXT_BYTES`].
    #[error("value of {0} bytes is over the {MAX_PLAINTEXT_BYTES}-byte limit")]
    TooLarge(usize),
    /// The cluster key is the identity element (no real cluster has it).
    #[error("the cluster key is invalid")]
    InvalidClusterKey,
}

/// Seals `plaintext` to `cluster_key` under `target` (see [`target`]).
pub fn seal(
    rng: &mut impl CryptoRng,
    cluster_key: &ClusterKey,
    target: Digest,
    plaintext: &[u8],
) -> Result<SealedValue, SealError> {
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(SealError::TooLarge(plaintext.len()));
    }
    let data_key = value::data_key(rng);
    let key = tle::encrypt::<_, Variant>(
        rng,
        *cluster_key,
        (namespace::SEAL, target.as_ref()),
        &tle::Block::new(*data_key),
    )
    .map_err(|_| SealError::InvalidClusterKey)?;
    let (nonce, ciphertext) = value::encrypt(rng, &data_key, target.as_ref(), plaintext);
    Ok(SealedValue {
        target,
        key,
        nonce,
        ciphertext,
    })
}

/// A node's partial signature over `target`: its share of what opens the value. A node
/// sends it only for a read the committed state allows.
pub fn partial(share: &Share, target: &Digest) -> PartialSignature<Variant> {
    threshold::sign_message::<Variant>(share, namespace::SEAL, target.as_ref())
}

/// Why a partial was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PartialError {
    /// It does not verify under its sender's share commitment: the sender lies.
    #[error("partial from node {0} does not verify")]
    Invalid(u32),
    /// The sender already gave a partial for this target (one slot per sender).
    #[error("node {0} already gave a partial")]
    Duplicate(u32),
}

/// Why a value could not be opened.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum OpenError {
    /// Fewer verified partials than the threshold.
    #[error("{have} verified partials of the {need} needed")]
    NotEnough {
        /// Verified partials held.
        have: usize,
        /// The threshold.
        need: usize,
    },
    /// The value was sealed under another target than the partials sign.
    #[error("the partials are for another target")]
    OtherTarget,
    /// The recovered signature does not open the value: it was not sealed to this cluster
    /// key, or it was altered.
    #[error("the value does not open: not sealed to this cluster, or altered")]
    Corrupt,
}

/// Gathers verified partials for one target and opens the value with them.
pub struct Opener<'a> {
    sharing: &'a Sharing,
    target: Digest,
    valid: BTreeMap<u32, PartialSignature<Variant>>,
    refused: BTreeSet<u32>,
}

impl<'a> Opener<'a> {
    /// An opener for `target` under the cluster's public polynomial.
    pub fn new(sharing: &'a Sharing, target: Digest) -> Self {
        Self {
            sharing,
            target,
            valid: BTreeMap::new(),
            refused: BTreeSet::new(),
        }
    }

    /// Checks `partial` and keeps it if it verifies. An invalid partial names its sender
    /// (block it); the sender's slot is then closed. The caller must first check that the
    /// partial's index is the member that sent it (as the checkpoint tracker does): an index
    /// says whose share signed, not who delivered it.
    pub fn add(&mut self, partial: PartialSignature<Variant>) -> Result<(), PartialError> {
        let index = partial.index.get();
        if index >= self.sharing.total().get() {
            // No member has this index: nothing to remember, so the slots stay bounded by
            // the membership.
            return Err(PartialError::Invalid(index));
        }
        if self.valid.contains_key(&index) || self.refused.contains(&index) {
            return Err(PartialError::Duplicate(index));
        }
        if threshold::verify_message::<Variant>(
            self.sharing,
            namespace::SEAL,
            self.target.as_ref(),
            &partial,
        )
        .is_err()
        {
            self.refused.insert(index);
            return Err(PartialError::Invalid(index));
        }
        self.valid.insert(index, partial);
        Ok(())
    }

    /// Whether enough verified partials are held to open.
    pub fn ready(&self) -> bool {
        self.valid.len() >= self.threshold()
    }

    fn threshold(&self) -> usize {
        self.sharing.required() as usize
    }

    /// Opens `sealed` with the verified partials.
    pub fn open(&self, sealed: &SealedValue) -> Result<Zeroizing<Vec<u8>>, OpenError> {
        if sealed.target != self.target {
            return Err(OpenError::OtherTarget);
        }
        let need = self.threshold();
        if self.valid.len() < need {
            return Err(OpenError::NotEnough {
                have: self.valid.len(),
                need,
            });
        }
        let signature = threshold::recover::<Variant, _>(
            self.sharing,
            self.valid.values().take(need),
            &commonware_parallel::Sequential,
        )
        .map_err(|_| OpenError::Corrupt)?;
        open_with(&signature, sealed)
    }
}

/// Opens `sealed` with t partials that have **not** been verified: the fast path of a reader.
///
/// The signature recovered from them opens the value only if it is the cluster's signature
/// over the value's target (the data key's identity-based encryption and the AEAD check
/// that), so a wrong partial among them makes this fail, never open something else. On
/// failure, verify each partial ([`Opener::add`]) to find the liar, and open with the rest.
/// Saves the two pairings per partial that verifying each costs when every sender is honest.
pub fn open_unverified<'a>(
    sharing: &Sharing,
    partials: impl IntoIterator<Item = &'a PartialSignature<Variant>>,
    sealed: &SealedValue,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let partials: Vec<_> = partials.into_iter().collect();
    let need = sharing.required() as usize;
    if partials.len() < need {
        return Err(OpenError::NotEnough {
            have: partials.len(),
            need,
        });
    }
    let signature = threshold::recover::<Variant, _>(
        sharing,
        partials.into_iter().take(need),
        &commonware_parallel::Sequential,
    )
    .map_err(|_| OpenError::Corrupt)?;
    open_with(&signature, sealed)
}

/// Opens `sealed` with the cluster's signature over its target.
pub fn open_with(
    signature: &welkin_types::ClusterSignature,
    sealed: &SealedValue,
) -> Result<Zeroizing<Vec<u8>>, OpenError> {
    let data_key = tle::decrypt::<Variant>(signature, &sealed.key).ok_or(OpenError::Corrupt)?;
    let data_key = Zeroizing::new(
        <[u8; value::DATA_KEY_BYTES]>::try_from(data_key.as_ref())
            .map_err(|_| OpenError::Corrupt)?,
    );
    value::decrypt(
        &data_key,
        &sealed.nonce,
        sealed.target.as_ref(),
        &sealed.ciphertext,
    )
    .ok_or(OpenError::Corrupt)
}

impl Write for SealedValue {
    fn write(&self, buf: &mut impl BufMut) {
        VERSION.write(buf);
        self.target.write(buf);
        self.key.write(buf);
        buf.put_slice(&self.nonce);
        UInt(self.ciphertext.len() as u32).write(buf);
        buf.put_slice(&self.ciphertext);
    }
}

impl EncodeSize for SealedValue {
    fn encode_size(&self) -> usize {
        1 + Digest::SIZE
            + self.key.encode_size()
            + NONCE_BYTES
            + UInt(self.ciphertext.len() as u32).encode_size()
            + self.ciphertext.len()
    }
}

impl Read for SealedValue {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != VERSION {
            return Err(CodecError::InvalidEnum(version));
        }
        let target = Digest::read(buf)?;
        let key = tle::Ciphertext::<Variant>::read(buf)?;
        let nonce = <[u8; NONCE_BYTES]>::read(buf)?;
        let len: u32 = UInt::read(buf)?.into();
        let len = len as usize;
        if !(TAG_BYTES..=MAX_PLAINTEXT_BYTES + TAG_BYTES).contains(&len) {
            return Err(CodecError::InvalidLength(len));
        }
        if buf.remaining() < len {
            return Err(CodecError::EndOfBuffer);
        }
        let mut ciphertext = vec![0u8; len];
        buf.copy_to_slice(&mut ciphertext);
        Ok(Self {
            target,
            key,
            nonce,
            ciphertext,
        })
    }
}

#[cfg(test)]
mod tests;
