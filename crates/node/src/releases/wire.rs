//! The release channel's message: a node's envelopes for the reads of one block.
//!
//! ```text
//! ReleaseBatch := 0x01 | count varint (<= MAX_BATCH) | (read_id [32] | envelope varint-len)*
//! ```

use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write, varint::UInt,
};
use welkin_types::TxId;

const VERSION: u8 = 1;
/// Most envelopes in one batch: a block's transactions at most.
pub(crate) const MAX_BATCH: usize = welkin_types::limits::MAX_BLOCK_TXS;
/// Largest envelope: a transit request's batch envelope (a KV read's, an HPKE-sealed partial
/// signature, is about 150 bytes).
pub(crate) const MAX_ENVELOPE_BYTES: usize = welkin_sealed::MAX_TARGETS_ENVELOPE_BYTES;
/// Most bytes of envelopes the releaser puts in one message, well under the channel's
/// [`crate::MAX_MESSAGE_BYTES`]: a block of large transit batches goes out in several.
pub(crate) const MAX_BATCH_BYTES: usize = crate::MAX_MESSAGE_BYTES as usize / 2;

/// A node's envelopes for a batch of reads.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ReleaseBatch {
    /// (read id, envelope) pairs.
    pub envelopes: Vec<(TxId, Vec<u8>)>,
}

impl Write for ReleaseBatch {
    fn write(&self, buf: &mut impl BufMut) {
        VERSION.write(buf);
        UInt(self.envelopes.len() as u32).write(buf);
        for (id, envelope) in &self.envelopes {
            id.write(buf);
            envelope.write(buf);
        }
    }
}

impl EncodeSize for ReleaseBatch {
    fn encode_size(&self) -> usize {
        1 + UInt(self.envelopes.len() as u32).encode_size()
            + self
                .envelopes
                .iter()
                .map(|(id, e)| id.encode_size() + e.encode_size())
                .sum::<usize>()
    }
}

impl Read for ReleaseBatch {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != VERSION {
            return Err(CodecError::Invalid("ReleaseBatch", "unknown version"));
        }
        let count = UInt::<u32>::read(buf)?.0 as usize;
        if count > MAX_BATCH {
            return Err(CodecError::InvalidLength(count));
        }
        let cfg: RangeCfg<usize> = (1..=MAX_ENVELOPE_BYTES).into();
        let mut envelopes = Vec::with_capacity(count.min(1024));
        for _ in 0..count {
            let id = TxId::read(buf)?;
            let envelope = Vec::<u8>::read_cfg(buf, &(cfg, ()))?;
            envelopes.push((id, envelope));
        }
        Ok(ReleaseBatch { envelopes })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode as _;
    use welkin_types::{decode, hash_parts};

    #[test]
    fn batches_round_trip_and_bounds_hold() {
        let batch = ReleaseBatch {
            envelopes: vec![(hash_parts(&[b"a"]), vec![1, 2, 3])],
        };
        assert_eq!(decode::<ReleaseBatch>(&batch.encode()).ok(), Some(batch));
        let transit = ReleaseBatch {
            envelopes: vec![(hash_parts(&[b"a"]), vec![7; 13_000])],
        };
        assert_eq!(
            decode::<ReleaseBatch>(&transit.encode()).ok(),
            Some(transit)
        );
        let big = ReleaseBatch {
            envelopes: vec![(hash_parts(&[b"a"]), vec![0; MAX_ENVELOPE_BYTES + 1])],
        };
        assert!(decode::<ReleaseBatch>(&big.encode()).is_err());
        let empty = ReleaseBatch {
            envelopes: vec![(hash_parts(&[b"a"]), vec![])],
        };
        assert!(decode::<ReleaseBatch>(&empty.encode()).is_err());
    }
}
