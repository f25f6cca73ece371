//! Why a shard was not written.

use std::{io, path::PathBuf};

#[cfg(doc)]
use crate::ShardStore;
use crate::{ShardId, header::GeometryError};

/// Block hashes that do not form the root the object's manifest names.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "block hashes of shard {id} form root {}, not the manifest's {}",
    hex::encode(computed),
    hex::encode(root)
)]
pub struct RootMismatch {
    /// The shard.
    pub id: ShardId,
    /// The root the manifest names.
    pub root: [u8; 32],
    /// The root of the hashes given or of the blocks written.
    pub computed: [u8; 32],
}

/// Why a shard could not start being written.
#[derive(Debug, thiserror::Error)]
pub enum CreateError {
    /// A shape the format does not allow.
    #[error("shard {id}: {source}")]
    Geometry {
        /// The shard.
        id: ShardId,
        /// What is wrong with its shape.
        source: GeometryError,
    },
    /// The shard's file would exceed `max_shard_bytes`.
    #[error("shard {id} needs {bytes} bytes, more than the limit of {max}")]
    TooLarge {
        /// The shard.
        id: ShardId,
        /// Bytes its file needs.
        bytes: u64,
        /// The limit.
        max: u64,
    },
    /// The block hashes given do not form the root the manifest names.
    #[error(transparent)]
    RootMismatch(RootMismatch),
    /// The store already holds or is already writing this shard.
    #[error("shard {id} is already stored or being written")]
    Duplicate {
        /// The shard.
        id: ShardId,
    },
    /// As many shards are being written as the limit allows.
    #[error("too many shards being written: the limit is {max}")]
    TooManyWriters {
        /// The limit.
        max: usize,
    },
    /// Not enough capacity left for the shard.
    #[error("shard {id} needs {needed} bytes but only {free} are free")]
    NoSpace {
        /// The shard.
        id: ShardId,
        /// Bytes its file needs.
        needed: u64,
        /// Bytes free: capacity less stored and reserved bytes.
        free: u64,
    },
    /// The temporary file could not be created or written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The temporary file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Why a block was refused. A refused block is not written and the writer stays usable:
/// the caller may send the right block (from another source) or drop the writer.
#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    /// Every block has arrived already.
    #[error("shard {id} has all its {count} blocks; no more are accepted")]
    TooManyBlocks {
        /// The shard.
        id: ShardId,
        /// Its blocks.
        count: u32,
    },
    /// The block is not the length its position requires.
    #[error("block {segment} of shard {id} is {actual} bytes, not {expected}")]
    Length {
        /// The shard.
        id: ShardId,
        /// The block's position.
        segment: u32,
        /// Bytes a block at that position has.
        expected: u32,
        /// Bytes received.
        actual: usize,
    },
    /// The block does not match its hash.
    #[error(
        "block {segment} of shard {id} hashes to {}, not {}",
        hex::encode(actual),
        hex::encode(expected)
    )]
    Hash {
        /// The shard.
        id: ShardId,
        /// The block's position.
        segment: u32,
        /// The hash the hash list gives.
        expected: [u8; 32],
        /// The hash of what arrived.
        actual: [u8; 32],
    },
    /// An earlier write failed, so the file's contents are unknown.
    #[error("shard {id} failed an earlier write and accepts nothing more")]
    Failed {
        /// The shard.
        id: ShardId,
    },
    /// The temporary file could not be written.
    #[error("cannot write {}: {source}", path.display())]
    Io {
        /// The temporary file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// Why a written shard was not stored. Nothing of it is left: no file, no reservation.
#[derive(Debug, thiserror::Error)]
pub enum FinishError {
    /// Blocks are missing.
    #[error("shard {id} received {received} of its {expected} blocks")]
    Incomplete {
        /// The shard.
        id: ShardId,
        /// Blocks received.
        received: u32,
        /// Blocks it has.
        expected: u32,
    },
    /// The blocks written to a writer from [`ShardStore::create_without_hashes`] do not
    /// form the root the manifest names.
    #[error(transparent)]
    RootMismatch(RootMismatch),
    /// An earlier write failed.
    #[error("shard {id} failed an earlier write and cannot be finished")]
    Failed {
        /// The shard.
        id: ShardId,
    },
    /// Syncing, renaming or syncing the directory failed.
    #[error("cannot store {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}
