//! Partial signatures released to a reader's one-time key.
//!
//! A read is a transaction committed to the log before anything is released; it names a
//! one-time X25519 key of the reader's ([`ReaderKey`]). Each node then checks the policy at the
//! read's height and, if it allows the read, sends its partial signature over the value's
//! target sealed to that key with HPKE ([`seal_partial`]), so only the reader can use it. The
//! reader opens each envelope ([`ReaderKey::open_partial`]) and hands the partial to an
//! [`Opener`](crate::Opener), which verifies it against its sender's share commitment.
//!
//! The [`ReleaseContext`] (cluster, read transaction, target) is HPKE's `info`, after the
//! namespace [`welkin_types::namespace::RELEASE`]: an envelope made for one read does not open
//! as another's, nor in another cluster, nor for another value. The envelope also carries the
//! reader's public key and the context's digest in the clear, so that an envelope for another
//! key or read is refused with that reason rather than as altered; HPKE still authenticates
//! both.
//!
//! ```text
//! envelope = version (1) | reader public key (32) | context digest (32)
//!          | encapsulated key (32) | varint length | HPKE ciphertext of the encoded partial
//! ```

use crate::{
    suite::{self, KEY_BYTES, SecretKey},
    value::TAG_BYTES,
};
use bytes::BufMut;
use commonware_codec::{
    Buf, Encode as _, EncodeSize, Error as CodecError, FixedSize, MaxEncodeSize as _, Read,
    ReadExt as _, Write, varint::UInt,
};
use commonware_cryptography::bls12381::primitives::variant::{
    PartialSignature, Variant as VariantTrait,
};
use rand_core::CryptoRng;
use std::fmt;
use welkin_types::{Digest, Variant, hash_parts, namespace};

/// The version of the envelope encoding.
pub const ENVELOPE_VERSION: u8 = 1;
/// The longest encoded partial signature: a varint index and a signature.
const MAX_PARTIAL_BYTES: usize =
    UInt::<u32>::MAX_ENCODE_SIZE + <<Variant as VariantTrait>::Signature as FixedSize>::SIZE;
/// The longest envelope: the fixed header, a varint length and the longest ciphertext.
pub const MAX_ENVELOPE_BYTES: usize = 1
    + KEY_BYTES
    + Digest::SIZE
    + KEY_BYTES
    + UInt::<u32>::MAX_ENCODE_SIZE
    + MAX_PARTIAL_BYTES
    + TAG_BYTES;

/// What a released partial is for; both sides must name the same.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ReleaseContext {
    /// The cluster's id (its genesis digest).
    pub cluster_id: Digest,
    /// The id of the committed read transaction.
    pub read_id: Digest,
    /// The target of the value being read.
    pub target: Digest,
}

impl ReleaseContext {
    /// HPKE's `info`: the namespace and the three digests (fixed lengths, so plain
    /// concatenation is unambiguous).
    fn info(&self) -> Vec<u8> {
        [
            namespace::RELEASE,
            self.cluster_id.as_ref(),
            self.read_id.as_ref(),
            self.target.as_ref(),
        ]
        .concat()
    }

    /// The digest an envelope carries in the clear, to name the context it was made for.
    pub fn digest(&self) -> Digest {
        hash_parts(&[
            namespace::RELEASE,
            self.cluster_id.as_ref(),
            self.read_id.as_ref(),
            self.target.as_ref(),
        ])
    }
}

/// A reader's one-time X25519 key: generated for one read, named in the read transaction, and
/// dropped once the value is open. The secret is zeroized on drop and never printed.
pub struct ReaderKey {
    secret: SecretKey,
    public: [u8; KEY_BYTES],
}

impl ReaderKey {
    /// A fresh key from `rng`.
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let secret = suite::generate(rng);
        let public = suite::public(&secret);
        Self { secret, public }
    }

    /// The public key the read transaction names.
    pub fn public(&self) -> [u8; KEY_BYTES] {
        self.public
    }

    /// Opens an envelope sealed to this key for `context` and decodes the partial inside. The
    /// partial is not yet verified: give it to an [`Opener`](crate::Opener).
    pub fn open_partial(
        &self,
        context: &ReleaseContext,
        envelope: &[u8],
    ) -> Result<PartialSignature<Variant>, EnvelopeError> {
        if envelope.len() > MAX_ENVELOPE_BYTES {
            return Err(EnvelopeError::TooLarge(envelope.len()));
        }
        match envelope.first() {
            Some(&version) if version != ENVELOPE_VERSION => {
                return Err(EnvelopeError::Version(version));
            }
            _ => {}
        }
        let decoded = welkin_types::decode::<Envelope>(envelope).map_err(|error| {
            EnvelopeError::Malformed {
                len: envelope.len(),
                error,
            }
        })?;
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
            &[ENVELOPE_VERSION],
            &decoded.ciphertext,
        )
        .ok_or(EnvelopeError::DoesNotOpen)?;
        welkin_types::decode::<PartialSignature<Variant>>(&plaintext)
            .map_err(EnvelopeError::BadPartial)
    }
}

impl fmt::Debug for ReaderKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReaderKey")
            .field("public", &hex::encode(self.public))
            .finish_non_exhaustive()
    }
}

// The secret is an `x25519_dalek::StaticSecret` (inside hpke's key), which zeroizes itself on
// drop; nothing else here holds secret bytes.
impl zeroize::ZeroizeOnDrop for ReaderKey {}

/// Why an envelope could not be made or opened.
#[derive(Debug, thiserror::Error)]
pub enum EnvelopeError {
    /// The reader's public key is a low-order point: no shared secret exists with it.
    #[error("reader key {0} is not a usable x25519 public key")]
    InvalidReaderKey(String),
    /// The envelope is longer than any this version writes.
    #[error("envelope of {0} bytes is over the {MAX_ENVELOPE_BYTES}-byte limit")]
    TooLarge(usize),
    /// The envelope is of another version.
    #[error("envelope version {0} is not {ENVELOPE_VERSION}")]
    Version(u8),
    /// The envelope does not decode.
    #[error("envelope of {len} bytes does not decode: {error}")]
    Malformed {
        /// Its length.
        len: usize,
        /// What is wrong.
        error: CodecError,
    },
    /// The envelope is sealed to another reader key.
    #[error("envelope is for reader key {envelope}, not {key}")]
    OtherReader {
        /// The key it names.
        envelope: String,
        /// This reader's key.
        key: String,
    },
    /// The envelope was made for another read, target or cluster.
    #[error("envelope is for release context {envelope}, not {expected}")]
    OtherContext {
        /// The context digest it names.
        envelope: String,
        /// The digest of the context the reader expects.
        expected: String,
    },
    /// HPKE refused it: altered, or sealed under another key or context than it names.
    #[error("envelope does not open: altered, or sealed for another key or context than it names")]
    DoesNotOpen,
    /// It opened, but what is inside is not a partial signature (its sender is faulty).
    #[error("envelope holds no partial signature: {0}")]
    BadPartial(CodecError),
    /// A batch envelope holds another number of partials than the request has targets.
    #[error("envelope holds {found} partials for {expected} targets")]
    WrongCount {
        /// Partials in the envelope.
        found: usize,
        /// Targets of the request.
        expected: usize,
    },
    /// More targets than one envelope may carry.
    #[error("{0} targets are over the limit of {MAX_TARGETS}")]
    TooManyTargets(usize),
}

/// Seals `partial` to the reader's one-time key `reader_public` for `context`.
pub fn seal_partial(
    rng: &mut impl CryptoRng,
    reader_public: &[u8; KEY_BYTES],
    context: &ReleaseContext,
    partial: &PartialSignature<Variant>,
) -> Result<Vec<u8>, EnvelopeError> {
    let (encapped, ciphertext) = suite::seal(
        rng,
        reader_public,
        &context.info(),
        &[ENVELOPE_VERSION],
        &partial.encode(),
    )
    .ok_or_else(|| EnvelopeError::InvalidReaderKey(hex::encode(reader_public)))?;
    let envelope = Envelope {
        reader: *reader_public,
        context: context.digest(),
        encapped,
        ciphertext,
    };
    Ok(envelope.encode().to_vec())
}

/// The decoded envelope (one partial, or a batch's: see [`targets`]).
struct Envelope {
    reader: [u8; KEY_BYTES],
    context: Digest,
    encapped: [u8; KEY_BYTES],
    ciphertext: Vec<u8>,
}

impl Envelope {
    fn write_versioned(&self, version: u8, buf: &mut impl BufMut) {
        version.write(buf);
        self.reader.write(buf);
        self.context.write(buf);
        self.encapped.write(buf);
        self.ciphertext.write(buf);
    }

    /// Reads an envelope of `version` whose ciphertext holds at most `max_plaintext` bytes.
    fn read_versioned(
        buf: &mut impl Buf,
        version: u8,
        max_plaintext: usize,
    ) -> Result<Self, CodecError> {
        let found = u8::read(buf)?;
        if found != version {
            return Err(CodecError::InvalidEnum(found));
        }
        Ok(Self {
            reader: <[u8; KEY_BYTES]>::read(buf)?,
            context: Digest::read(buf)?,
            encapped: <[u8; KEY_BYTES]>::read(buf)?,
            ciphertext: Vec::<u8>::read_cfg(
                buf,
                &((TAG_BYTES + 1..=TAG_BYTES + max_plaintext).into(), ()),
            )?,
        })
    }
}

impl Write for Envelope {
    fn write(&self, buf: &mut impl BufMut) {
        ENVELOPE_VERSION.write(buf);
        self.reader.write(buf);
        self.context.write(buf);
        self.encapped.write(buf);
        self.ciphertext.write(buf);
    }
}

impl EncodeSize for Envelope {
    fn encode_size(&self) -> usize {
        1 + KEY_BYTES + Digest::SIZE + KEY_BYTES + self.ciphertext.encode_size()
    }
}

impl Read for Envelope {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != ENVELOPE_VERSION {
            return Err(CodecError::InvalidEnum(version));
        }
        Ok(Self {
            reader: <[u8; KEY_BYTES]>::read(buf)?,
            context: Digest::read(buf)?,
            encapped: <[u8; KEY_BYTES]>::read(buf)?,
            ciphertext: Vec::<u8>::read_cfg(
                buf,
                &((TAG_BYTES + 1..=TAG_BYTES + MAX_PARTIAL_BYTES).into(), ()),
            )?,
        })
    }
}

mod targets;

pub use targets::{
    MAX_TARGETS, MAX_TARGETS_ENVELOPE_BYTES, TARGETS_ENVELOPE_VERSION, TargetsContext,
    seal_partials,
};

#[cfg(test)]
mod tests;
