//! The messages that cross the log or the network, and their encodings.
//!
//! ```text
//! round-1 package   = version (1) | u16 count (2..=256) | count × coefficient commitment (32)
//!                     | proof of knowledge: R (32) | z (32)
//! round-2 package   = version (1) | signing share (32)                      (secret)
//! commitments       = version (1) | u16 count (1..=NONCE_POOL)
//!                     | count × (u64 id, increasing | hiding (32) | binding (32))
//! sign request      = version (1) | u32 length (..=64 KiB) | message
//!                     | u16 count (2..=256) | count × (u16 index, increasing
//!                     | u64 id | hiding (32) | binding (32))
//! signature share   = version (1) | z (32)
//! ```
//!
//! Integers are big-endian; points and scalars are FROST(Ed25519, SHA-512)'s 32-byte
//! encodings, checked when decoded (canonical, on the curve, of prime order, not the
//! identity). The sender is never in a message: it is the log entry's author or the
//! authenticated link's peer.

use crate::{
    Index, MAX_MESSAGE_BYTES, MAX_PARTICIPANTS, NONCE_POOL, ident,
    wire::{DecodeError, Reader, writer},
};
use frost_core::keys::{CoefficientCommitment, VerifiableSecretSharingCommitment};
use frost_ed25519::{
    Ed25519Sha512, Signature, SigningPackage,
    keys::{SigningShare, dkg},
    round1::{NonceCommitment, SigningCommitments},
    round2,
};
use std::collections::BTreeMap;
use zeroize::Zeroizing;

/// The version of every encoding in this crate.
pub const MESSAGES_VERSION: u8 = 1;

/// The length of a point or scalar.
const ELEMENT: usize = 32;
/// One commitment with its id: id, hiding, binding.
const COMMITMENT_BYTES: usize = 8 + 2 * ELEMENT;

/// A participant's public round-1 DKG package: commitments to its secret polynomial's
/// coefficients and a proof that it knows the constant term. Committed to the log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Round1Package(pub(crate) dkg::round1::Package);

impl Round1Package {
    /// The longest encoding: [`MAX_PARTICIPANTS`] commitments.
    pub const MAX_BYTES: usize = 1 + 2 + MAX_PARTICIPANTS as usize * ELEMENT + 2 * ELEMENT;

    /// How many coefficient commitments it holds (the threshold it was made for).
    pub fn commitment_count(&self) -> usize {
        self.0.commitment().coefficients().len()
    }

    /// The binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let coefficients = self.0.commitment().coefficients();
        let mut out = writer(2 + coefficients.len() * ELEMENT + 2 * ELEMENT);
        let count = u16::try_from(coefficients.len()).expect("a package holds at most 256");
        out.extend_from_slice(&count.to_be_bytes());
        for coefficient in coefficients {
            out.extend(
                coefficient
                    .serialize()
                    .expect("a checked commitment is no identity"),
            );
        }
        out.extend(
            self.0
                .proof_of_knowledge()
                .serialize()
                .expect("a checked proof has no identity"),
        );
        out
    }

    /// Decodes a package, checking every point and scalar (not the proof: see
    /// [`check_round1`](crate::check_round1)).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new("round-1 package", bytes, Self::MAX_BYTES)?;
        let count = reader.u16_in("commitment count", 2..=MAX_PARTICIPANTS, "2 to 256")?;
        let mut coefficients = Vec::with_capacity(count.into());
        for _ in 0..count {
            let bytes = reader.take("coefficient commitment", ELEMENT)?;
            let coefficient = CoefficientCommitment::<Ed25519Sha512>::deserialize(bytes)
                .map_err(|_| reader.invalid("coefficient commitment", bytes, "point"))?;
            coefficients.push(coefficient);
        }
        let proof = reader.take("proof of knowledge", 2 * ELEMENT)?;
        let proof = Signature::deserialize(proof)
            .map_err(|_| reader.invalid("proof of knowledge", proof, "signature"))?;
        reader.finish()?;
        Ok(Self(dkg::round1::Package::new(
            VerifiableSecretSharingCommitment::new(coefficients),
            proof,
        )))
    }
}

/// A secret round-2 DKG package: the sender's polynomial at the recipient's identifier. Sent
/// only over the authenticated, encrypted link to its recipient; zeroized when dropped.
#[derive(Clone, PartialEq, Eq)]
pub struct Round2Package(pub(crate) dkg::round2::Package);

impl std::fmt::Debug for Round2Package {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Round2Package(<redacted>)")
    }
}

impl Round2Package {
    /// The length of the encoding.
    pub const BYTES: usize = 1 + ELEMENT;

    /// The binary encoding, zeroized when dropped (it is a secret).
    pub fn encode(&self) -> Zeroizing<Vec<u8>> {
        let mut out = Zeroizing::new(writer(ELEMENT));
        out.extend(self.0.signing_share().serialize());
        out
    }

    /// Decodes a package, checking that the share is a canonical scalar.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new("round-2 package", bytes, Self::BYTES)?;
        let share = reader.take("signing share", ELEMENT)?;
        let share = SigningShare::deserialize(share)
            .map_err(|_| reader.invalid_secret("signing share", "scalar"))?;
        reader.finish()?;
        Ok(Self(dkg::round2::Package::new(share)))
    }
}

/// One nonce commitment a signer issued to a coordinator, with the id that names it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Commitment {
    pub(crate) id: u64,
    pub(crate) commitments: SigningCommitments,
}

impl Commitment {
    /// The id the signer gave it; a sign request names it.
    pub fn id(&self) -> u64 {
        self.id
    }

    fn write(&self, out: &mut Vec<u8>) {
        out.extend_from_slice(&self.id.to_be_bytes());
        let element = "a generated or decoded nonce commitment is no identity";
        out.extend(self.commitments.hiding().serialize().expect(element));
        out.extend(self.commitments.binding().serialize().expect(element));
    }

    fn read(reader: &mut Reader<'_>) -> Result<Self, DecodeError> {
        let id = reader.u64("commitment id")?;
        let mut point = |field| {
            let bytes = reader.take(field, ELEMENT)?;
            NonceCommitment::deserialize(bytes).map_err(|_| reader.invalid(field, bytes, "point"))
        };
        let hiding = point("hiding commitment")?;
        let binding = point("binding commitment")?;
        Ok(Self {
            id,
            commitments: SigningCommitments::new(hiding, binding),
        })
    }
}

/// A batch of commitments a signer sends to one coordinator, in increasing id order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Commitments(pub(crate) Vec<Commitment>);

impl Commitments {
    /// The longest encoding: a full pool.
    pub const MAX_BYTES: usize = 1 + 2 + NONCE_POOL * COMMITMENT_BYTES;

    /// The commitments, in increasing id order.
    pub fn as_slice(&self) -> &[Commitment] {
        &self.0
    }

    /// The binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = writer(2 + self.0.len() * COMMITMENT_BYTES);
        let count = u16::try_from(self.0.len()).expect("a batch is at most a pool");
        out.extend_from_slice(&count.to_be_bytes());
        for commitment in &self.0 {
            commitment.write(&mut out);
        }
        out
    }

    /// Decodes a batch: 1 to [`NONCE_POOL`] commitments with strictly increasing ids.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new("commitments", bytes, Self::MAX_BYTES)?;
        let max = u16::try_from(NONCE_POOL).expect("the pool fits a u16");
        let count = reader.u16_in("commitment count", 1..=max, "1 to the nonce pool size")?;
        let mut commitments: Vec<Commitment> = Vec::with_capacity(count.into());
        for _ in 0..count {
            let commitment = Commitment::read(&mut reader)?;
            if commitments
                .last()
                .is_some_and(|last| last.id >= commitment.id)
            {
                return Err(reader.out_of_range("commitment id", commitment.id, "increasing"));
            }
            commitments.push(commitment);
        }
        reader.finish()?;
        Ok(Self(commitments))
    }
}

/// What a coordinator asks each chosen signer to sign: the message and the chosen signers'
/// commitments, each with its id.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignRequest {
    pub(crate) message: Vec<u8>,
    pub(crate) signers: BTreeMap<Index, Commitment>,
}

impl SignRequest {
    /// The longest encoding: the longest message and [`MAX_PARTICIPANTS`] signers.
    pub const MAX_BYTES: usize =
        1 + 4 + MAX_MESSAGE_BYTES + 2 + MAX_PARTICIPANTS as usize * (2 + COMMITMENT_BYTES);

    /// The message to sign.
    pub fn message(&self) -> &[u8] {
        &self.message
    }

    /// The chosen signers and the commitment each is to use.
    pub fn signers(&self) -> &BTreeMap<Index, Commitment> {
        &self.signers
    }

    /// FROST's signing package: the message and the commitments under their identifiers.
    pub(crate) fn package(&self) -> SigningPackage {
        let commitments = self
            .signers
            .iter()
            .map(|(&index, commitment)| {
                let id = ident::identifier(index).expect("a request's indices are in range");
                (id, commitment.commitments)
            })
            .collect();
        SigningPackage::new(commitments, &self.message)
    }

    /// The binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = writer(4 + self.message.len() + 2 + self.signers.len() * 74);
        let length = u32::try_from(self.message.len()).expect("a message is at most 64 KiB");
        out.extend_from_slice(&length.to_be_bytes());
        out.extend_from_slice(&self.message);
        let count = u16::try_from(self.signers.len()).expect("at most 256 signers");
        out.extend_from_slice(&count.to_be_bytes());
        for (index, commitment) in &self.signers {
            out.extend_from_slice(&index.to_be_bytes());
            commitment.write(&mut out);
        }
        out
    }

    /// Decodes a request: a message of at most [`MAX_MESSAGE_BYTES`] and 2 to
    /// [`MAX_PARTICIPANTS`] signers in strictly increasing index order.
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new("sign request", bytes, Self::MAX_BYTES)?;
        let length = reader.u32("message length")?;
        if length as usize > MAX_MESSAGE_BYTES {
            return Err(reader.out_of_range("message length", length.into(), "at most 65536"));
        }
        let message = reader.take("message", length as usize)?.to_vec();
        let count = reader.u16_in("signer count", 2..=MAX_PARTICIPANTS, "2 to 256")?;
        let mut signers = BTreeMap::new();
        let mut last = None;
        for _ in 0..count {
            let index = reader.u16_in("signer index", 0..=MAX_PARTICIPANTS - 1, "0 to 255")?;
            if last.is_some_and(|last| last >= index) {
                return Err(reader.out_of_range("signer index", index.into(), "increasing"));
            }
            last = Some(index);
            signers.insert(index, Commitment::read(&mut reader)?);
        }
        reader.finish()?;
        Ok(Self { message, signers })
    }
}

/// A signer's share of a signature, for one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignatureShare(pub(crate) round2::SignatureShare);

impl SignatureShare {
    /// The length of the encoding.
    pub const BYTES: usize = 1 + ELEMENT;

    /// The binary encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = writer(ELEMENT);
        out.extend(self.0.serialize());
        out
    }

    /// Decodes a share, checking that it is a canonical scalar (not that it is right: see
    /// [`Session::verify_share`](crate::Session::verify_share)).
    pub fn decode(bytes: &[u8]) -> Result<Self, DecodeError> {
        let mut reader = Reader::new("signature share", bytes, Self::BYTES)?;
        let share = reader.take("share", ELEMENT)?;
        let share = round2::SignatureShare::deserialize(share)
            .map_err(|_| reader.invalid("share", share, "scalar"))?;
        reader.finish()?;
        Ok(Self(share))
    }
}

#[cfg(test)]
mod tests;
