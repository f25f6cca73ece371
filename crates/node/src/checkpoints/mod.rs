//! Collecting checkpoint partial signatures into certified checkpoints.
//!
//! After applying height `h`, every node signs a threshold partial over
//! (cluster id, h, state root, log size, log root) and sends it to all peers, again and again
//! (with backoff) until it holds the certificate for `h`, so that lost messages and peers that
//! were down do not leave a height uncertified.
//!
//! A receiver keeps one slot per sender per height, fixed by the sender's genesis position: a
//! partial under another node's share index is refused and its sender blocked, so a liar can
//! only ever waste its own slot. Partials are checked against the receiver's *own* root for
//! `h` (so a partial over a different root, from a diverged or lying node, never counts):
//! optimistically, by recovering the cluster signature from the first `t` and checking that
//! once (one pairing); only if that fails is every unchecked partial verified on its own, the
//! bad ones refused (and their senders blocked), and recovery retried from the good ones. `f`
//! bad senders therefore cost at most one failed recovery and `n` partial checks per height,
//! and can never prevent recovery from the honest partials. Partials for heights a little
//! ahead of the applied one wait in a bounded buffer (one message of each kind per sender per
//! height). A node that sends a partial for a height its peer has already certified gets the
//! certified checkpoint back, which is how a node that was down or catching up obtains
//! certificates.
//!
//! Each partial also carries the sender's tlog cosignature (c2sp.org/tlog-cosignature) of the
//! checkpoint's note body, under its ed25519 identity key. A receiver checks it against the
//! body of its *own* checkpoint for that height and keeps it, so the certificate is stored
//! with the cosignatures of the (at least `t`) nodes whose partials made it, and later
//! cosignatures are kept in memory for the window. A served checkpoint note thus carries
//! the cluster's signature and the cosignatures of 2f+1 or more nodes, which standard
//! witness tooling can check one by one.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};
use commonware_cryptography::bls12381::primitives::variant::PartialSignature;
use std::collections::BTreeMap;
use welkin_note::Cosignature;
use welkin_types::{CertifiedCheckpoint, Variant, limits::MAX_NODES};

mod tracker;

pub(crate) use tracker::{Action, Tracker, WINDOW, Witnesses};

/// Encoded size of a cosignature: timestamp and ed25519 signature.
const COSIGNATURE_BYTES: usize = 8 + 64;

fn write_cosignature(cosignature: &Cosignature, buf: &mut impl BufMut) {
    buf.put_slice(&cosignature.to_bytes());
}

fn read_cosignature(buf: &mut impl Buf) -> Result<Cosignature, CodecError> {
    let timestamp = u64::read(buf)?;
    let signature = <[u8; 64]>::read(buf)?;
    Ok(Cosignature {
        timestamp,
        signature,
    })
}

/// A certified checkpoint with the node cosignatures gathered for it, by genesis position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessedCheckpoint {
    /// The checkpoint and the cluster's signature.
    pub certified: CertifiedCheckpoint,
    /// Cosignatures of the checkpoint's note body, by signer position, at most one each.
    pub cosignatures: BTreeMap<u32, Cosignature>,
}

impl Write for WitnessedCheckpoint {
    fn write(&self, buf: &mut impl BufMut) {
        self.certified.write(buf);
        (self.cosignatures.len() as u32).write(buf);
        for (index, cosignature) in &self.cosignatures {
            index.write(buf);
            write_cosignature(cosignature, buf);
        }
    }
}

impl EncodeSize for WitnessedCheckpoint {
    fn encode_size(&self) -> usize {
        self.certified.encode_size() + 4 + self.cosignatures.len() * (4 + COSIGNATURE_BYTES)
    }
}

impl Read for WitnessedCheckpoint {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let certified = CertifiedCheckpoint::read(buf)?;
        let count = u32::read(buf)? as usize;
        if count > MAX_NODES {
            return Err(CodecError::Invalid(
                "WitnessedCheckpoint",
                "more cosignatures than nodes",
            ));
        }
        let mut cosignatures = BTreeMap::new();
        let mut last = None;
        for _ in 0..count {
            let index = u32::read(buf)?;
            if last.is_some_and(|last| index <= last) {
                return Err(CodecError::Invalid(
                    "WitnessedCheckpoint",
                    "cosigner positions must increase",
                ));
            }
            last = Some(index);
            cosignatures.insert(index, read_cosignature(buf)?);
        }
        Ok(Self {
            certified,
            cosignatures,
        })
    }
}

/// A message on the checkpoint channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointMessage {
    /// A node's partial signature for a height, with its cosignature of the note body.
    Partial {
        /// The height signed.
        height: u64,
        /// The partial signature (carries the signer's share index).
        partial: PartialSignature<Variant>,
        /// The signer's tlog cosignature of the checkpoint's note body.
        cosignature: Cosignature,
    },
    /// A recovered certificate, with the cosignatures its sender holds.
    Certified(WitnessedCheckpoint),
}

impl Write for CheckpointMessage {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Partial {
                height,
                partial,
                cosignature,
            } => {
                0u8.write(buf);
                height.write(buf);
                partial.write(buf);
                write_cosignature(cosignature, buf);
            }
            Self::Certified(witnessed) => {
                1u8.write(buf);
                witnessed.write(buf);
            }
        }
    }
}

impl EncodeSize for CheckpointMessage {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Partial { partial, .. } => 8 + partial.encode_size() + COSIGNATURE_BYTES,
            Self::Certified(witnessed) => witnessed.encode_size(),
        }
    }
}

impl Read for CheckpointMessage {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Self::Partial {
                height: u64::read(buf)?,
                partial: PartialSignature::read(buf)?,
                cosignature: read_cosignature(buf)?,
            }),
            1 => Ok(Self::Certified(WitnessedCheckpoint::read(buf)?)),
            tag => Err(CodecError::InvalidEnum(tag)),
        }
    }
}
