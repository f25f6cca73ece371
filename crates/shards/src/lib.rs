//! A node's on-disk shard store: durable writes, verified reads, a rebuilt index and garbage
//! collection.
//!
//! TODO docs

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod dirs;
mod hash;
mod header;
mod id;
mod limits;
mod open;
mod store;
mod writer;

pub use header::{
    BLOCK_ALIGN, FORMAT_VERSION, GeometryError, HASH_LEN, HEADER_LEN, HeaderError, MAGIC,
    MAX_BLOCK_LEN, MAX_BLOCKS,
};
pub use id::ShardId;
pub use limits::{LimitsError, StoreLimits};
pub use open::{FileError, OpenError, OpenReport, QuarantinedFile};
pub use store::{DeleteError, GcReport, ReadError, ShardInfo, ShardStore, StoreUsage};
pub use writer::{CreateError, FinishError, ShardWriter, WriteError};

#[cfg(test)]
mod tests;
