//! How an object is cut: segments of ciphertext, and each segment's blocks.

use std::ops::Range;

/// The AEAD tag at the end of every segment's ciphertext (ChaCha20-Poly1305's).
pub const TAG_BYTES: u32 = 16;
/// Every block's length is a multiple of this: the Reed-Solomon coder's unit, and small enough
/// that a tiny object costs little.
pub const BLOCK_ALIGN: u32 = 64;
/// `segment_bytes` is a multiple of this, and at least this.
pub const SEGMENT_ALIGN: u32 = 64 * 1024;
/// The largest `segment_bytes`: bounds every buffer a reader or writer holds.
pub const MAX_SEGMENT_BYTES: u32 = 4 * 1024 * 1024;
/// The default `segment_bytes` (1 MiB): a tag, a hash per shard and a tree leaf per MiB is
/// noise, a stream holds a few MiB, and a range read fetches at most 1 MiB it does not need.
pub const DEFAULT_SEGMENT_BYTES: u32 = 1024 * 1024;
/// The most shards an object has (`k + m`).
pub const MAX_SHARDS: u16 = 64;
/// The most segments an object has: bounds every shard tree's depth at 32.
pub const MAX_SEGMENTS: u64 = 1 << 32;

/// The shape of one object: `k` data and `m` parity shards, cut in segments of
/// `segment_bytes` bytes of ciphertext (the last segment may be shorter).
///
/// A full segment holds `segment_bytes - 16` bytes of plaintext and its 16-byte tag, so that a
/// full segment's blocks are `segment_bytes / k` bytes (rounded up to 64) and line up with
/// pages on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Layout {
    /// Data shards: any `k` of the `k + m` blocks of a segment rebuild it.
    pub k: u16,
    /// Parity shards: the blocks a segment can lose.
    pub m: u16,
    /// Ciphertext bytes of a full segment (plaintext plus tag): a multiple of 64 KiB, from
    /// 64 KiB to 4 MiB.
    pub segment_bytes: u32,
}

/// Why a layout, a size or a range does not fit.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LayoutError {
    /// `k` is zero.
    #[error("k (data shards) must be at least 1, got 0")]
    NoDataShards,
    /// `m` is zero.
    #[error("m (parity shards) must be at least 1, got 0")]
    NoParityShards,
    /// `k + m` is above [`MAX_SHARDS`].
    #[error("k + m must be at most {MAX_SHARDS}, got {} (k {k}, m {m})", u32::from(*k) + u32::from(*m))]
    TooManyShards {
        /// Data shards asked for.
        k: u16,
        /// Parity shards asked for.
        m: u16,
    },
    /// `segment_bytes` is not a multiple of 64 KiB within 64 KiB..=4 MiB.
    #[error(
        "segment_bytes must be a multiple of {SEGMENT_ALIGN} from {SEGMENT_ALIGN} to \
         {MAX_SEGMENT_BYTES}, got {0}"
    )]
    SegmentBytes(u32),
    /// The object needs more than [`MAX_SEGMENTS`] segments.
    #[error(
        "an object of {size} bytes needs more than {MAX_SEGMENTS} segments of {segment_bytes} bytes"
    )]
    TooLarge {
        /// The object's size.
        size: u64,
        /// The layout's segment size.
        segment_bytes: u32,
    },
    /// A segment index past the object's last segment.
    #[error("segment {segment} is out of range: the object has {segments} segments")]
    SegmentOutOfRange {
        /// The index asked for.
        segment: u64,
        /// The object's segment count.
        segments: u64,
    },
    /// A byte range that is inverted or past the end.
    #[error("range {start}..{end} is not within an object of {size} bytes")]
    Range {
        /// First byte asked for.
        start: u64,
        /// One past the last byte asked for.
        end: u64,
        /// The object's size.
        size: u64,
    },
}

impl Layout {
    /// A layout for a cluster of `nodes` with one shard per node, and 1 MiB segments.
    ///
    /// `m = f + 1` parity shards, where `f = (nodes - 1) / 3` is how many nodes may be
    /// byzantine: an object survives `f` holders that lie or withhold plus one more lost while
    /// repair runs. `k = nodes - m` uses every node. So 4 nodes give (2, 2) (2x the bytes),
    /// 7 give (4, 3) (1.75x) and 10 give (6, 4) (1.67x). Under 4 nodes `f` is 0: 1 to 2
    /// nodes get (1, 1), 3 get (2, 1). Above 64 nodes, the values for 64.
    pub fn default_for(nodes: u16) -> Self {
        let nodes = nodes.clamp(2, MAX_SHARDS);
        let m = (nodes - 1) / 3 + 1;
        Self {
            k: nodes - m,
            m,
            segment_bytes: DEFAULT_SEGMENT_BYTES,
        }
    }

    /// Checks the layout's bounds.
    pub fn validate(&self) -> Result<(), LayoutError> {
        if self.k == 0 {
            return Err(LayoutError::NoDataShards);
        }
        if self.m == 0 {
            return Err(LayoutError::NoParityShards);
        }
        if u32::from(self.k) + u32::from(self.m) > u32::from(MAX_SHARDS) {
            return Err(LayoutError::TooManyShards {
                k: self.k,
                m: self.m,
            });
        }
        if !self.segment_bytes.is_multiple_of(SEGMENT_ALIGN)
            || !(SEGMENT_ALIGN..=MAX_SEGMENT_BYTES).contains(&self.segment_bytes)
        {
            return Err(LayoutError::SegmentBytes(self.segment_bytes));
        }
        Ok(())
    }

    /// Checks the layout and that an object of `size` bytes fits in [`MAX_SEGMENTS`].
    pub fn validate_size(&self, size: u64) -> Result<(), LayoutError> {
        self.validate()?;
        if self.segments(size) > MAX_SEGMENTS {
            return Err(LayoutError::TooLarge {
                size,
                segment_bytes: self.segment_bytes,
            });
        }
        Ok(())
    }

    /// `k + m`: the number of shards, and of blocks in every segment.
    pub fn shards(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// Plaintext bytes in a full segment (`segment_bytes - 16`; at least 1 even for a layout
    /// that does not validate, so that nothing here divides by zero).
    pub fn plaintext_per_segment(&self) -> u64 {
        u64::from(self.segment_bytes.saturating_sub(TAG_BYTES).max(1))
    }

    /// Segments of an object of `size` bytes; an empty object is one empty final segment.
    pub fn segments(&self, size: u64) -> u64 {
        size.div_ceil(self.plaintext_per_segment()).max(1)
    }

    /// Plaintext bytes in segment `segment` of an object of `size` bytes.
    pub fn segment_len(&self, size: u64, segment: u64) -> Result<u32, LayoutError> {
        self.validate()?;
        let segments = self.segments(size);
        if segment >= segments {
            return Err(LayoutError::SegmentOutOfRange { segment, segments });
        }
        let start = segment * self.plaintext_per_segment();
        let len = (size - start).min(self.plaintext_per_segment());
        Ok(u32::try_from(len).expect("a segment holds less than 4 MiB"))
    }

    /// Bytes of each block of segment `segment`: its ciphertext (plaintext and tag) split in
    /// `k`, rounded up to a multiple of 64. Never zero.
    pub fn block_bytes(&self, size: u64, segment: u64) -> Result<u32, LayoutError> {
        let ciphertext = self.segment_len(size, segment)? + TAG_BYTES;
        Ok(self.block_bytes_for(ciphertext))
    }

    /// Block bytes for a segment of `ciphertext` bytes.
    pub(crate) fn block_bytes_for(&self, ciphertext: u32) -> u32 {
        ciphertext
            .div_ceil(u32::from(self.k))
            .next_multiple_of(BLOCK_ALIGN)
    }

    /// Bytes of one shard of an object of `size` bytes: the sum of its blocks.
    pub fn shard_bytes(&self, size: u64) -> Result<u64, LayoutError> {
        let segments = self.segments(size);
        let last = self.block_bytes(size, segments - 1)?;
        let full = u64::from(self.block_bytes_for(self.segment_bytes));
        Ok((segments - 1) * full + u64::from(last))
    }

    /// The segments that hold bytes `start..end` of an object of `size` bytes (none for an
    /// empty range), for range reads.
    pub fn segment_range(
        &self,
        size: u64,
        start: u64,
        end: u64,
    ) -> Result<Range<u64>, LayoutError> {
        self.validate()?;
        if start > end || end > size {
            return Err(LayoutError::Range { start, end, size });
        }
        if start == end {
            let at = start / self.plaintext_per_segment();
            return Ok(at..at);
        }
        Ok(start / self.plaintext_per_segment()..end.div_ceil(self.plaintext_per_segment()))
    }

    /// The offset in the plaintext where segment `segment` begins.
    pub fn segment_offset(&self, segment: u64) -> u64 {
        segment * self.plaintext_per_segment()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MIB: u32 = 1024 * 1024;

    fn layout(k: u16, m: u16) -> Layout {
        Layout {
            k,
            m,
            segment_bytes: MIB,
        }
    }

    #[test]
    fn validation_names_the_bad_value() {
        assert_eq!(layout(0, 2).validate(), Err(LayoutError::NoDataShards));
        assert_eq!(layout(2, 0).validate(), Err(LayoutError::NoParityShards));
        assert_eq!(
            layout(40, 30).validate().expect_err("refused").to_string(),
            "k + m must be at most 64, got 70 (k 40, m 30)"
        );
        assert!(layout(32, 32).validate().is_ok());
        for bad in [0, 1000, 32 * 1024, 96 * 1024 + 1, 8 * MIB] {
            let wrong = Layout {
                segment_bytes: bad,
                ..layout(2, 2)
            };
            assert_eq!(wrong.validate(), Err(LayoutError::SegmentBytes(bad)));
        }
        for good in [64 * 1024, 128 * 1024, MIB, 4 * MIB] {
            let right = Layout {
                segment_bytes: good,
                ..layout(2, 2)
            };
            assert!(right.validate().is_ok());
        }
    }

    #[test]
    fn defaults_take_f_plus_one_parity_shards() {
        let pairs = [
            (1, (1, 1)),
            (3, (2, 1)),
            (4, (2, 2)),
            (7, (4, 3)),
            (10, (6, 4)),
        ];
        for (nodes, (k, m)) in pairs {
            let chosen = Layout::default_for(nodes);
            assert_eq!((chosen.k, chosen.m), (k, m), "{nodes} nodes");
            assert!(chosen.validate().is_ok());
        }
        assert!(Layout::default_for(200).validate().is_ok());
    }

    #[test]
    fn an_invalid_layout_is_refused_not_divided_by() {
        let zero = Layout {
            k: 0,
            m: 0,
            segment_bytes: 0,
        };
        assert_eq!(zero.segments(100), 100);
        assert_eq!(zero.block_bytes(100, 0), Err(LayoutError::NoDataShards));
        assert_eq!(zero.shard_bytes(100), Err(LayoutError::NoDataShards));
        assert_eq!(
            zero.segment_range(100, 0, 1),
            Err(LayoutError::NoDataShards)
        );
    }

    #[test]
    fn an_empty_object_is_one_empty_segment_of_64_byte_blocks() {
        let l = layout(2, 2);
        assert_eq!(l.segments(0), 1);
        assert_eq!(l.segment_len(0, 0), Ok(0));
        assert_eq!(l.block_bytes(0, 0), Ok(64));
        assert_eq!(l.shard_bytes(0), Ok(64));
    }

    #[test]
    fn full_segments_have_aligned_blocks_and_the_last_is_short() {
        let l = layout(2, 2);
        let per = l.plaintext_per_segment();
        assert_eq!(per, u64::from(MIB - 16));
        let size = 3 * per + 100;
        assert_eq!(l.segments(size), 4);
        assert_eq!(l.block_bytes(size, 0), Ok(MIB / 2));
        // 100 bytes of plaintext and 16 of tag, halved and rounded up to 64.
        assert_eq!(l.block_bytes(size, 3), Ok(64));
        assert_eq!(l.shard_bytes(size), Ok(3 * u64::from(MIB / 2) + 64));
        assert_eq!(
            l.block_bytes(size, 4),
            Err(LayoutError::SegmentOutOfRange {
                segment: 4,
                segments: 4
            })
        );
        assert_eq!(l.segments(2 * per), 2);
        // k = 3 does not divide 1 MiB: rounded up to 64.
        assert_eq!(layout(3, 2).block_bytes(per, 0), Ok(349_568));
    }

    #[test]
    fn ranges_map_to_the_segments_that_hold_them() {
        let l = layout(2, 2);
        let per = l.plaintext_per_segment();
        let size = 3 * per;
        assert_eq!(l.segment_range(size, 0, size), Ok(0..3));
        assert_eq!(l.segment_range(size, per - 1, per + 1), Ok(0..2));
        assert_eq!(l.segment_range(size, per, 2 * per), Ok(1..2));
        assert_eq!(l.segment_range(size, 5, 5), Ok(0..0));
        assert_eq!(
            l.segment_range(size, 5, size + 1)
                .expect_err("refused")
                .to_string(),
            format!(
                "range 5..{} is not within an object of {size} bytes",
                size + 1
            )
        );
        assert!(l.segment_range(size, 6, 5).is_err());
    }

    #[test]
    fn sizes_beyond_the_segment_limit_are_refused() {
        let l = Layout {
            segment_bytes: SEGMENT_ALIGN,
            ..layout(2, 2)
        };
        let per = l.plaintext_per_segment();
        assert!(l.validate_size(MAX_SEGMENTS * per).is_ok());
        assert!(matches!(
            l.validate_size(MAX_SEGMENTS * per + 1),
            Err(LayoutError::TooLarge { .. })
        ));
        assert!(l.validate_size(u64::MAX).is_err());
    }
}
