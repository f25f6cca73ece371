//! The store's limits, checked once when it opens.

use std::num::{NonZeroU64, NonZeroUsize};

use crate::header::{BLOCK_ALIGN, Geometry, HASH_LEN, HEADER_LEN};

/// How much a store may hold and do at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreLimits {
    /// Bytes of shard files (headers, hash lists and blocks) the store may hold, counting
    /// shards being written. This is the capacity the node advertises to placement.
    pub capacity_bytes: u64,
    /// The largest shard file accepted for writing, in bytes. Shards already on disk are
    /// served whatever their size, within the format's own limits. Default 4 GiB.
    pub max_shard_bytes: NonZeroU64,
    /// Shards being written at once (each holds a file descriptor and a reservation).
    /// Default 64.
    pub max_open_writers: NonZeroUsize,
    /// How many quarantined or failed files a report lists by name; the rest are counted.
    /// Default 64.
    pub max_reported_files: usize,
}

impl StoreLimits {
    /// Limits with the defaults and the given capacity.
    pub fn with_capacity(capacity_bytes: u64) -> Self {
        Self {
            capacity_bytes,
            max_shard_bytes: NonZeroU64::new(4 << 30).expect("nonzero"),
            max_open_writers: NonZeroUsize::new(64).expect("nonzero"),
            max_reported_files: 64,
        }
    }

    /// Checks that the limits admit at least the smallest shard.
    pub fn validate(&self) -> Result<(), LimitsError> {
        let smallest = Geometry::new(1, BLOCK_ALIGN, BLOCK_ALIGN)
            .expect("valid")
            .file_len();
        debug_assert_eq!(
            smallest,
            (HEADER_LEN + HASH_LEN) as u64 + u64::from(BLOCK_ALIGN)
        );
        if self.max_shard_bytes.get() < smallest {
            return Err(LimitsError::MaxShardBytes {
                max: self.max_shard_bytes.get(),
                smallest,
            });
        }
        Ok(())
    }
}

/// Limits that cannot work.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LimitsError {
    /// A shard size limit below the smallest possible shard file.
    #[error("max shard bytes {max} is below the smallest shard file ({smallest} bytes)")]
    MaxShardBytes {
        /// The configured limit.
        max: u64,
        /// The smallest shard file.
        smallest: u64,
    },
}
