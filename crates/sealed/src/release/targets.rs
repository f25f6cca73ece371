//! One envelope per reader for a request with several targets (a transit batch).
//!
//! A transit decryption or MAC names up to [`MAX_TARGETS`] targets; a node releases its partial
//! over each, in the request's order, in one HPKE envelope to the reader's one-time key. The
//! [`TargetsContext`] (cluster, request, every target in order) is HPKE's `info`, so an
//! envelope made for one request opens for no other, nor with the targets reordered.
//!
//! ```text
//! envelope  = 0x11 | reader public key (32) | context digest (32) | encapsulated key (32)
//!           | varint length | HPKE ciphertext of the plaintext
//! plaintext = count varint (= the number of targets) | partial*
//! ```

use super::{Envelope, EnvelopeError, MAX_PARTIAL_BYTES, ReaderKey};
use crate::suite::{self, KEY_BYTES};
use crate::value::TAG_BYTES;
use bytes::Buf as _;
use commonware_codec::{
    Copying, Decode as _, Encode as _, EncodeSize as _, FixedSize, MaxEncodeSize as _, RangeCfg,
    varint::UInt,
};
use commonware_cryptography::bls12381::primitives::variant::PartialSignature;
use rand_core::CryptoRng;
use welkin_types::{Digest, Variant, hash_parts, namespace};

/// The version byte of a batch envelope (distinct from a single partial's envelope, so one is
/// never read as the other).
pub const TARGETS_ENVELOPE_VERSION: u8 = 0x11;
/// The most targets one envelope carries: a transit request's batch limit.
pub const MAX_TARGETS: usize = 256;
/// The longest plaintext: a count and [`MAX_TARGETS`] partials.
const MAX_PLAINTEXT: usize = UInt::<u32>::MAX_ENCODE_SIZE + MAX_TARGETS * MAX_PARTIAL_BYTES;
/// The longest batch envelope.
pub const MAX_TARGETS_ENVELOPE_BYTES: usize = 1
    + KEY_BYTES
    + Digest::SIZE
    + KEY_BYTES
    + UInt::<u32>::MAX_ENCODE_SIZE
    + MAX_PLAINTEXT
    + TAG_BYTES;

/// What a batch of released partials is for; both sides must name the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct TargetsContext<'a> {
    /// The cluster's id (its genesis digest).
    pub cluster_id: Digest,
    /// The id of the committed request.
    pub read_id: Digest,
    /// The request's targets, in its order.
    pub targets: &'a [Digest],
}

impl TargetsContext<'_> {
    fn parts(&self) -> Vec<&[u8]> {
        let mut parts: Vec<&[u8]> = Vec::with_capacity(self.targets.len() + 4);
        parts.push(namespace::RELEASE);
        parts.push(b"/targets");
        parts.push(self.cluster_id.as_ref());
        parts.push(self.read_id.as_ref());
        parts.extend(self.targets.iter().map(|t| t.as_ref()));
        parts
    }

    /// HPKE's `info`: the namespace, a label, the two digests, the count and the targets
    /// (fixed lengths after the count, so concatenation is unambiguous).
    fn info(&self) -> Vec<u8> {
        let count = (self.targets.len() as u32).to_be_bytes();
        let mut parts = self.parts();
        parts.insert(4, &count);
        parts.concat()
    }

    /// The digest an envelope carries in the clear.
    pub fn digest(&self) -> Digest {
        hash_parts(&self.parts())
    }
}

/// Seals `partials` (one per target of `context`, in order) to the reader's one-time key.
pub fn seal_partials(
    rng: &mut impl CryptoRng,
    reader_public: &[u8; KEY_BYTES],
    context: &TargetsContext<'_>,
    partials: &[PartialSignature<Variant>],
) -> Result<Vec<u8>, EnvelopeError> {
    if context.targets.len() > MAX_TARGETS {
        return Err(EnvelopeError::TooManyTargets(context.targets.len()));
    }
    if partials.len() != context.targets.len() {
        return Err(EnvelopeError::WrongCount {
            found: partials.len(),
            expected: context.targets.len(),
        });
    }
    let plaintext = partials.to_vec().encode();
    let (encapped, ciphertext) = suite::seal(
        rng,
        reader_public,
        &context.info(),
        &[TARGETS_ENVELOPE_VERSION],
        &plaintext,
    )
    .ok_or_else(|| EnvelopeError::InvalidReaderKey(hex::encode(reader_public)))?;
    let envelope = Envelope {
        reader: *reader_public,
        context: context.digest(),
        encapped,
        ciphertext,
    };
    let mut out = Vec::with_capacity(envelope.encode_size());
    envelope.write_versioned(TARGETS_ENVELOPE_VERSION, &mut out);
    Ok(out)
}

impl ReaderKey {
    /// Opens a batch envelope sealed to this key for `context`: one partial per target, in
    /// order, none verified yet.
    pub fn open_partials(
        &self,
        context: &TargetsContext<'_>,
        envelope: &[u8],
    ) -> Result<Vec<PartialSignature<Variant>>, EnvelopeError> {
        if envelope.len() > MAX_TARGETS_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge(envelope.len()));
        }
        match envelope.first() {
            Some(&version) if version != TARGETS_ENVELOPE_VERSION => {
                return Err(EnvelopeError::Version(version));
            }
            _ => {}
        }
        let malformed = |error| EnvelopeError::Malformed {
            len: envelope.len(),
            error,
        };
        let mut buf = Copying(envelope);
        let decoded = Envelope::read_versioned(&mut buf, TARGETS_ENVELOPE_VERSION, MAX_PLAINTEXT)
            .map_err(malformed)?;
        if buf.remaining() > 0 {
            return Err(malformed(commonware_codec::Error::ExtraData(
                buf.remaining(),
            )));
        }
        if decoded.reader != self.public {
            return Err(EnvelopeError::OtherReader {
                envelope: hex::encode(decoded.reader),
                key: hex::encode(self.public),
            });
        }
        let digest = context.digest();
        if decoded.context != digest {
            return Err(EnvelopeError::OtherContext {
                envelope: hex::encode(decoded.context),
                expected: hex::encode(digest),
            });
        }
        let plaintext = suite::open(
            &self.secret,
            &decoded.encapped,
            &context.info(),
            &[TARGETS_ENVELOPE_VERSION],
            &decoded.ciphertext,
        )
        .ok_or(EnvelopeError::DoesNotOpen)?;
        let range: RangeCfg<usize> = (0..=MAX_TARGETS).into();
        let partials =
            Vec::<PartialSignature<Variant>>::decode_cfg(Copying(&plaintext), &(range, ()))
                .map_err(EnvelopeError::BadPartial)?;
        if partials.len() != context.targets.len() {
            return Err(EnvelopeError::WrongCount {
                found: partials.len(),
                expected: context.targets.len(),
            });
        }
        Ok(partials)
    }
}

#[cfg(test)]
mod tests;
