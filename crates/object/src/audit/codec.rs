//! The wire format of an audit proof (commonware-codec, bounded on read).
//!
//! `version u8 (1) || samples: varint count (at most 256), then each sample:
//! segment u64 || chunk u32 || data: varint length (at most 1024) and bytes ||
//! block_path: varint count (at most 64) and 32-byte values || shard_path: the same`.
//! Integers are big-endian.

use super::{AuditProof, MAX_SAMPLES, SampleProof, proof::CHUNK_BYTES};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write};

/// The version this crate writes and reads.
pub const AUDIT_PROOF_VERSION: u8 = 1;
/// The most entries a block or shard path may have on the wire.
pub const MAX_PATH: usize = 64;

impl Write for SampleProof {
    fn write(&self, buf: &mut impl BufMut) {
        self.segment.write(buf);
        self.chunk.write(buf);
        self.data.write(buf);
        self.block_path.write(buf);
        self.shard_path.write(buf);
    }
}

impl EncodeSize for SampleProof {
    fn encode_size(&self) -> usize {
        self.segment.encode_size()
            + self.chunk.encode_size()
            + self.data.encode_size()
            + self.block_path.encode_size()
            + self.shard_path.encode_size()
    }
}

impl Read for SampleProof {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let path: (RangeCfg<usize>, ()) = ((..=MAX_PATH).into(), ());
        Ok(Self {
            segment: u64::read(buf)?,
            chunk: u32::read(buf)?,
            data: Vec::<u8>::read_cfg(buf, &((..=CHUNK_BYTES as usize).into(), ()))?,
            block_path: Vec::<[u8; 32]>::read_cfg(buf, &path)?,
            shard_path: Vec::<[u8; 32]>::read_cfg(buf, &path)?,
        })
    }
}

impl Write for AuditProof {
    fn write(&self, buf: &mut impl BufMut) {
        self.version.write(buf);
        self.samples.write(buf);
    }
}

impl EncodeSize for AuditProof {
    fn encode_size(&self) -> usize {
        self.version.encode_size() + self.samples.encode_size()
    }
}

impl Read for AuditProof {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != AUDIT_PROOF_VERSION {
            return Err(CodecError::Invalid("AuditProof", "unknown version"));
        }
        let samples =
            Vec::<SampleProof>::read_cfg(buf, &((..=usize::from(MAX_SAMPLES)).into(), ()))?;
        Ok(Self { version, samples })
    }
}
