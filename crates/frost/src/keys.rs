//! The outcome of a key generation: a participant's secret share and the group's public keys.
//!
//! ```text
//! public keys = version (1) | u16 threshold (2..=256) | group key (32)
//!               | u16 count (threshold..=256) | count × (u16 index, increasing | verifying share (32))
//! key share   = version (1) | u16 index | u16 threshold | signing share (32) | group key (32)
//! ```

use crate::{
    Index, MAX_PARTICIPANTS, PUBLIC_KEY_BYTES, ident,
    wire::{DecodeError, Reader, writer},
};
use frost_ed25519::{
    VerifyingKey,
    keys::{KeyPackage, PublicKeyPackage, SigningShare, VerifyingShare},
};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// A participant's share of a group key: its secret signing share, its index, the threshold
/// and the group key. Zeroized when dropped; never printed.
#[derive(Clone, PartialEq, Eq)]
pub struct KeyShare {
    pub(crate) index: Index,
    pub(crate) inner: KeyPackage,
}

impl std::fmt::Debug for KeyShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyShare")
            .field("index", &self.index)
            .field("threshold", &self.threshold())
            .field("group_key", &crate::wire::hex_string(&self.group_key()))
            .finish_non_exhaustive()
    }
}

impl KeyShare {
    /// The length of the encoding.
    pub const BYTES: usize = 1 + 2 + 2 + 32 + PUBLIC_KEY_BYTES;

    /// The node index of the participant holding it.
    pub fn index(&self) -> Index {
        self.index
    }

    /// How many shares a signature needs.
    pub fn threshold(&self) -> u16 {
        *self.inner.min_signers()
    }

    /// The group's Ed25519 public key.
    pub fn group_key(&self) -> [u8; PUBLIC_KEY_BYTES] {
        group_key_bytes(self.inner.verifying_key())
    }

    /// The secret encoding, to store sealed; zeroized when dropped.
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(writer(Self::BYTES - 1));
        out.extend_from_slice(&self.index.to_be_bytes());
        out.extend_from_slice(&self.threshold().to_be_bytes());
        out.extend(self.inner.signing_share().serialize());
        out.extend_from_slice(&self.group_key());
        out
    }

    /// Decodes a stored share; the verifying share is recomputed from the signing share.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new("key share", bytes, Self::BYTES)?;
        let index = reader.u16_in("index", 0..=MAX_PARTICIPANTS - 1, "0 to 255")?;
        let threshold = reader.u16_in("threshold", 2..=MAX_PARTICIPANTS, "2 to 256")?;
        let share = reader.take("signing share", 32)?;
        let share = SigningShare::deserialize(share)
            .map_err(|_| reader.invalid_secret("signing share", "scalar"))?;
        let group = reader.take("group key", PUBLIC_KEY_BYTES)?;
        let group = VerifyingKey::deserialize(group)
            .map_err(|_| reader.invalid("group key", group, "point"))?;
        reader.finish()?;
        let identifier = ident::identifier(index).expect("the index was checked in range");
        Ok(Self {
            index,
            inner: KeyPackage::new(
                identifier,
                share,
                VerifyingShare::from(share),
                group,
                threshold,
            ),
        })
    }
}

/// The group's public keys: the group Ed25519 key, the threshold and every participant's
/// verifying share (which checks that participant's signature shares). Committed to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PublicKeys {
    pub(crate) inner: PublicKeyPackage,
    pub(crate) threshold: u16,
    pub(crate) participants: Vec<Index>,
}

impl PublicKeys {
    /// The longest encoding: [`MAX_PARTICIPANTS`] verifying shares.
    pub const MAX_BYTES: usize =
        1 + 2 + PUBLIC_KEY_BYTES + 2 + MAX_PARTICIPANTS as usize * (2 + 32);

    /// Wraps FROST's package for `participants` (node indices, increasing).
    pub(crate) fn new(inner: PublicKeyPackage, threshold: u16, participants: Vec<Index>) -> Self {
        assert_eq!(
            inner.verifying_shares().len(),
            participants.len(),
            "one verifying share per participant"
        );
        Self {
            inner,
            threshold,
            participants,
        }
    }

    /// The group's Ed25519 public key: what any ordinary verifier checks signatures with.
    pub fn group_key(&self) -> [u8; PUBLIC_KEY_BYTES] {
        group_key_bytes(self.inner.verifying_key())
    }

    /// How many shares a signature needs.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    /// The participants' node indices, increasing.
    pub fn participants(&self) -> &[Index] {
        &self.participants
    }

    /// The verifying share of participant `index`, if it is one.
    pub fn verifying_share(&self, index: Index) -> Option<[u8; 32]> {
        let share = self
            .inner
            .verifying_shares()
            .get(&ident::identifier(index)?)?;
        Some(element_bytes(share.serialize()))
    }

    /// Whether `share` belongs to this group: same group key and threshold, and its
    /// verifying share is the one recorded for its index.
    pub fn holds(&self, share: &KeyShare) -> bool {
        let recorded = ident::identifier(share.index)
            .and_then(|id| self.inner.verifying_shares().get(&id).copied());
        share.inner.verifying_key() == self.inner.verifying_key()
            && share.threshold() == self.threshold
            && recorded.as_ref() == Some(share.inner.verifying_share())
    }

    /// The binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = writer(2 + PUBLIC_KEY_BYTES + 2 + self.participants.len() * 34);
        out.extend_from_slice(&self.threshold.to_be_bytes());
        out.extend_from_slice(&self.group_key());
        let count = u16::try_from(self.participants.len()).expect("at most 256 participants");
        out.extend_from_slice(&count.to_be_bytes());
        for &index in &self.participants {
            out.extend_from_slice(&index.to_be_bytes());
            out.extend(
                self.verifying_share(index)
                    .expect("every participant has a share"),
            );
        }
        out
    }

    /// Decodes public keys, checking every point, the index order and the threshold's bounds.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new("public keys", bytes, Self::MAX_BYTES)?;
        let threshold = reader.u16_in("threshold", 2..=MAX_PARTICIPANTS, "2 to 256")?;
        let group = reader.take("group key", PUBLIC_KEY_BYTES)?;
        let group = VerifyingKey::deserialize(group)
            .map_err(|_| reader.invalid("group key", group, "point"))?;
        let count = reader.u16_in(
            "participant count",
            threshold..=MAX_PARTICIPANTS,
            "the threshold to 256",
        )?;
        let mut shares = BTreeMap::new();
        let mut participants: Vec<Index> = Vec::with_capacity(count.into());
        for _ in 0..count {
            let index = reader.u16_in("participant index", 0..=MAX_PARTICIPANTS - 1, "0 to 255")?;
            if participants.last().is_some_and(|&last| last >= index) {
                return Err(reader.out_of_range("participant index", index.into(), "increasing"));
            }
            let share = reader.take("verifying share", 32)?;
            let share = VerifyingShare::deserialize(share)
                .map_err(|_| reader.invalid("verifying share", share, "point"))?;
            participants.push(index);
            let id = ident::identifier(index).expect("the index was checked in range");
            shares.insert(id, share);
        }
        reader.finish()?;
        let inner = PublicKeyPackage::new(shares, group, Some(threshold));
        Ok(Self::new(inner, threshold, participants))
    }
}

/// The 32 bytes of a group key.
fn group_key_bytes(key: &VerifyingKey) -> [u8; PUBLIC_KEY_BYTES] {
    element_bytes(key.serialize())
}

/// A serialized point as an array.
fn element_bytes(serialized: Result<Vec<u8>, frost_ed25519::Error>) -> [u8; 32] {
    serialized
        .expect("a key made by a DKG or decoded is no identity")
        .try_into()
        .expect("an Ed25519 point is 32 bytes")
}
