//! A node's on-disk shard store: durable writes, verified reads, a rebuilt index and garbage
//! collection.
//!
//! An object is split into segments and each segment is erasure-coded into k + m blocks;
//! shard `i` of an object is block `i` of every segment, in segment order. Every block is
//! named by its keyed BLAKE3 hash, and a shard's block hashes form a Merkle tree whose root
//! the object's manifest records. A node keeps each shard it holds in one file, accepts a
//! block only if it matches its hash, and never hands out a block that no longer does.
//! Bulk bytes reach this store from the network, never through consensus; the store is
//! synchronous `std::fs` code that the node calls from a blocking task.
//!
//! # Layout
//!
//! ```text
//! <dir>/LOCK                                  locked while a store has the directory open
//! <dir>/shards/<object hex>.<index>.shard     finished shards, one file each
//! <dir>/tmp/<object hex>.<index>.tmp          shards being written; emptied when the store opens
//! <dir>/quarantine/<name>.<ns>.<n>            files that failed a check; never read again
//! ```
//!
//! The object id is 64 lowercase hex digits and the index a decimal `u16` without leading
//! zeros; any other name in `shards/` is quarantined. The quarantine is the operator's: its
//! files can be inspected and deleted at any time (they are ciphertext, and not counted
//! against capacity). All four paths must be on one filesystem, since `rename` moves a
//! finished shard from `tmp/` to `shards/`.
//!
//! # Shard file format (version 1)
//!
//! Integers are little-endian. Reserved bytes are zero and checked.
//!
//! ```text
//! offset        bytes          field
//! 0             8              magic "WELKSHRD"
//! 8             2              format version, 1
//! 10            2              reserved
//! 12            32             object id
//! 44            2              shard index
//! 46            2              reserved
//! 48            4              block count n, 1 to 2^20
//! 52            4              block length L, a multiple of 64 from 64 to 64 MiB
//! 56            4              final block length F, a multiple of 64 from 64 to L
//! 60            4              reserved
//! 64            32             shard root (the Merkle root of the n block hashes)
//! 96            24             reserved
//! 120           8              header checksum: the first 8 bytes of BLAKE3 keyed with
//!                              derive_key("welkin/shard-file-header/v1") over bytes 0..120
//! 128           32 n           block hashes, in segment order
//! 128 + 32 n    (n-1) L + F    blocks, in segment order
//! ```
//!
//! A file is exactly `128 + 32 n + (n-1) L + F` bytes long, so block `s` is found with one
//! positioned read at `128 + 32 n + s L` and its hash at `128 + 32 s`.
//!
//! # Durability
//!
//! A shard is written in four steps, and only after the last is it stored:
//!
//! 1. [`ShardStore::create`] checks that the hashes form the manifest's root, reserves the
//!    file's bytes against capacity, and writes the header and hash list to `tmp/`.
//!    [`ShardWriter::write_block`] appends each block after checking its length and hash.
//!    (A writer from [`ShardStore::create_without_hashes`], for a repair that rebuilds a
//!    shard segment by segment, checks lengths as blocks arrive, and the root of their
//!    hashes before anything else in step 2; it then fills in the hash list.)
//! 2. [`ShardWriter::finish`] calls `fsync` on the file: its contents and length are on
//!    stable storage.
//! 3. It renames the file into `shards/`. A rename is atomic: the final name refers either
//!    to nothing or to the whole, already durable file.
//! 4. It calls `fsync` on `shards/`, which makes the new name itself durable. Only then is
//!    the shard indexed and `finish` returns, and only then may the node acknowledge it.
//!
//! A crash before step 3 leaves a file in `tmp/`, which the next [`ShardStore::open`]
//! deletes (that is also how an interrupted upload or repair is collected). A crash between
//! steps 3 and 4 leaves the shard either absent, which is fine since nobody was told it was
//! stored, or present and complete, because its contents were synced before it had its name.
//! If step 4 fails the file is unlinked again and `finish` fails: the shard is either stored
//! for certain or not at all. A writer dropped unfinished (an error, a client that went away)
//! deletes its temporary file and releases its reservation.
//!
//! What the disk does to a file later is caught by checks, not assumed away. On open every
//! file in `shards/` must have a valid header that names the shard its file name names, the
//! exact length the header implies, and a hash list whose root is the header's; a file that
//! fails (torn, truncated, misnamed, bit-flipped) is moved to `quarantine/`, reported in
//! [`ShardStore::opened`] and listed by [`ShardStore::corrupt_shards`] so the node can have
//! it repaired. Blocks are not read on open (that would read every byte stored); instead
//! every [`ShardStore::read_block`] re-hashes the block against its stored hash, and a
//! mismatch, a missing file or an unreadable sector quarantines the shard the same way.
//!
//! Deleting unlinks the file and syncs `shards/`, so a deletion survives a crash. It
//! overwrites nothing: see [`ShardStore::delete`] for why crypto-shredding does not need to.
//!
//! # Limits
//!
//! Everything a file or a peer controls is bounded: at most `max_open_writers` shards being
//! written, each at most `max_shard_bytes` and all within `capacity_bytes`; a header is a
//! fixed 128 bytes; a hash list read into memory is at most 2^20 hashes (32 MiB), and is
//! read only once the file's length has confirmed it; a block read is at most 64 MiB. The
//! index holds a fixed-size entry per stored shard, never per block, and reports list at
//! most `max_reported_files` names.
//!
//! # Concurrency
//!
//! [`ShardStore`] is cheap to clone and shared between threads. One mutex guards the index
//! and the accounting; data is read and written outside it, and the only file operations
//! under it are the renames and unlinks that must not interleave with a new writer of the
//! same shard. The `LOCK` file keeps a second store, in this process or another, out of the
//! directory.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod dirs;
mod hash;
mod header;
mod id;
mod limits;
mod open;
mod read;
mod store;
mod writer;

pub use header::{
    BLOCK_ALIGN, FORMAT_VERSION, GeometryError, HASH_LEN, HEADER_LEN, HeaderError, MAGIC,
    MAX_BLOCK_LEN, MAX_BLOCKS,
};
pub use id::ShardId;
pub use limits::{LimitsError, StoreLimits};
pub use open::{FileError, OpenError, OpenReport, QuarantinedFile};
pub use read::ReadError;
pub use store::{DeleteError, GcReport, ShardInfo, ShardStore, StoreUsage};
pub use writer::{CreateError, FinishError, RootMismatch, ShardWriter, WriteError};

#[cfg(test)]
mod tests;
