//! Writing a shard: checked blocks streamed to a temporary file, made durable, then renamed
//! into place and indexed.

mod errors;
mod reservation;

use std::{
    fs::{self, File},
    io::Write,
    os::unix::fs::FileExt,
    path::PathBuf,
};

pub use errors::{CreateError, FinishError, RootMismatch, WriteError};
use reservation::Reservation;

use crate::{
    ShardId, ShardStore,
    dirs::sync_dir,
    hash::{block_hash, shard_root},
    header::{Geometry, HASH_LEN, Header},
};

/// Bytes written between hints to start writeback: large enough for sequential writes, small
/// next to a shard.
const WRITEBACK_STEP: u64 = 8 << 20;

/// A shard being written. Send its blocks in segment order with
/// [`ShardWriter::write_block`], then call [`ShardWriter::finish`]. Dropping it unfinished
/// (an error, a client that went away) removes the temporary file and frees the reservation.
#[derive(Debug)]
pub struct ShardWriter {
    header: Header,
    /// The block hashes: all of them from the start when `listed`, else those of the blocks
    /// written so far.
    hashes: Vec<[u8; 32]>,
    /// Whether the hash list came first, so each block is checked as it arrives; otherwise
    /// the blocks are checked against the root in `finish`.
    listed: bool,
    file: File,
    tmp: PathBuf,
    next: u32,
    /// File offset up to which writeback has been started (see [`WRITEBACK_STEP`]).
    written_back: u64,
    failed: bool,
    /// Set once the temporary file no longer exists under its name.
    renamed: bool,
    /// Dropped after `drop` has removed the temporary file, so a new writer for the same
    /// shard cannot create that file before the old one is gone.
    reservation: Reservation,
}

impl ShardStore {
    /// Starts writing a shard whose manifest gives `root`, with its hash list first: checks
    /// the shape and that `hashes` (one per block, in segment order) form `root`, refuses a
    /// duplicate, a shard over the size limit or beyond the free capacity, and too many
    /// writers at once; then reserves the bytes and writes the header and hash list to a
    /// temporary file. Each block is then checked as it arrives, so a bad one is refused at
    /// once (and can be fetched again) rather than at the end.
    pub fn create(
        &self,
        id: ShardId,
        root: [u8; 32],
        block_len: u32,
        final_block_len: u32,
        hashes: Vec<[u8; 32]>,
    ) -> Result<ShardWriter, CreateError> {
        let geometry = Geometry::new(hashes.len() as u64, block_len, final_block_len)
            .map_err(|source| CreateError::Geometry { id, source })?;
        let computed = shard_root(&hashes).expect("a valid geometry has a block");
        if computed != root {
            return Err(CreateError::RootMismatch(RootMismatch {
                id,
                root,
                computed,
            }));
        }
        self.start(Header { id, geometry, root }, hashes, true)
    }

    /// Starts writing a shard whose hash list is not known in advance, as when a repair
    /// rebuilds a lost shard segment by segment or a client streams a shard while it encodes.
    /// The same refusals as [`ShardStore::create`]; blocks are hashed as they arrive and
    /// their root is checked against `root` in [`ShardWriter::finish`], which stores nothing
    /// if it differs. Only lengths can be refused block by block.
    pub fn create_without_hashes(
        &self,
        id: ShardId,
        root: [u8; 32],
        block_count: u32,
        block_len: u32,
        final_block_len: u32,
    ) -> Result<ShardWriter, CreateError> {
        let geometry = Geometry::new(block_count.into(), block_len, final_block_len)
            .map_err(|source| CreateError::Geometry { id, source })?;
        self.start(Header { id, geometry, root }, Vec::new(), false)
    }

    /// Reserves the shard's bytes and writes its header and hash list (zeros until `finish`
    /// when the list is not known yet) to its temporary file.
    fn start(
        &self,
        header: Header,
        hashes: Vec<[u8; 32]>,
        listed: bool,
    ) -> Result<ShardWriter, CreateError> {
        let id = header.id;
        let bytes = header.geometry.file_len();
        let max = self.inner.limits.max_shard_bytes.get();
        if bytes > max {
            return Err(CreateError::TooLarge { id, bytes, max });
        }
        let reservation = Reservation::take(&self.inner, id, bytes)?;
        let tmp = self.inner.dirs.temp(&id);
        // Truncating is safe: the reservation makes this the only writer of `id`, and the
        // store's lock file the only store in the directory.
        let file = File::create(&tmp).map_err(|source| CreateError::Io {
            path: tmp.clone(),
            source,
        })?;
        let mut writer = ShardWriter {
            header,
            hashes,
            listed,
            file,
            tmp,
            next: 0,
            written_back: 0,
            failed: false,
            renamed: false,
            reservation,
        };
        let placeholder;
        let list = match listed {
            true => writer.hashes.as_flattened(),
            false => {
                placeholder = vec![0u8; header.geometry.block_count as usize * HASH_LEN];
                &placeholder
            }
        };
        let written = writer
            .file
            .write_all(&header.encode())
            .and_then(|()| writer.file.write_all(list));
        written.map_err(|source| CreateError::Io {
            path: writer.tmp.clone(),
            source,
        })?;
        Ok(writer)
    }
}

impl ShardWriter {
    /// The shard being written.
    pub fn id(&self) -> ShardId {
        self.header.id
    }

    /// Blocks accepted so far; the next block written is this segment's.
    pub fn blocks_written(&self) -> u32 {
        self.next
    }

    /// Checks the next block's length and hash and appends it to the temporary file.
    pub fn write_block(&mut self, block: &[u8]) -> Result<(), WriteError> {
        let id = self.header.id;
        let geometry = self.header.geometry;
        if self.failed {
            return Err(WriteError::Failed { id });
        }
        let segment = self.next;
        if segment >= geometry.block_count {
            return Err(WriteError::TooManyBlocks {
                id,
                count: geometry.block_count,
            });
        }
        let expected = geometry.len_of(segment);
        if block.len() != expected as usize {
            return Err(WriteError::Length {
                id,
                segment,
                expected,
                actual: block.len(),
            });
        }
        let actual = block_hash(block);
        if self.listed {
            let expected = self.hashes[segment as usize];
            if actual != expected {
                return Err(WriteError::Hash {
                    id,
                    segment,
                    expected,
                    actual,
                });
            }
        }
        if let Err(source) = self.file.write_all(block) {
            self.failed = true;
            return Err(WriteError::Io {
                path: self.tmp.clone(),
                source,
            });
        }
        if !self.listed {
            self.hashes.push(actual);
        }
        self.next += 1;
        self.start_writeback(geometry.block_offset(segment) + u64::from(expected));
        Ok(())
    }

    /// Starts writing the file's pages up to `end` to disk once [`WRITEBACK_STEP`] bytes
    /// are waiting, without waiting for them. The disk then works while the rest of the shard
    /// arrives, and the sync in [`ShardWriter::finish`] has little left to do (otherwise a
    /// large shard sits in memory until that sync, and writing it all out comes after the
    /// last byte). Only a hint: a failure here is ignored, and `finish` still syncs.
    fn start_writeback(&mut self, end: u64) {
        if end - self.written_back < WRITEBACK_STEP {
            return;
        }
        #[cfg(target_os = "linux")]
        {
            // Linux starts writeback of the range's dirty pages (and drops its clean ones,
            // which this writer never reads back).
            let _ = rustix::fs::fadvise(
                &self.file,
                self.written_back,
                std::num::NonZeroU64::new(end - self.written_back),
                rustix::fs::Advice::DontNeed,
            );
        }
        self.written_back = end;
    }

    /// Stores the shard durably and indexes it: checks every block arrived, syncs the file,
    /// renames it into the shards directory and syncs that directory. Only then does the
    /// shard count as stored; on any failure nothing of it remains.
    pub fn finish(mut self) -> Result<ShardId, FinishError> {
        let id = self.header.id;
        if self.failed {
            return Err(FinishError::Failed { id });
        }
        let expected = self.header.geometry.block_count;
        if self.next != expected {
            return Err(FinishError::Incomplete {
                id,
                received: self.next,
                expected,
            });
        }
        let tmp = self.tmp.clone();
        if !self.listed {
            let root = self.header.root;
            let computed = shard_root(&self.hashes).expect("every block arrived");
            if computed != root {
                return Err(FinishError::RootMismatch(RootMismatch {
                    id,
                    root,
                    computed,
                }));
            }
            let at = self.header.geometry.hash_offset(0);
            let written = self.file.write_all_at(self.hashes.as_flattened(), at);
            written.map_err(|source| FinishError::Io {
                path: tmp.clone(),
                source,
            })?;
        }
        self.file.sync_all().map_err(|source| FinishError::Io {
            path: tmp.clone(),
            source,
        })?;
        let inner = self.reservation.inner.clone();
        let path = inner.dirs.shard(&id);
        fs::rename(&tmp, &path).map_err(|source| FinishError::Io { path: tmp, source })?;
        self.renamed = true;
        if let Err(source) = sync_dir(&inner.dirs.shards) {
            // Whether the rename survives a crash is unknown: take it back, so the shard is
            // either stored for certain or not at all.
            let _ = fs::remove_file(&path);
            return Err(FinishError::Io {
                path: inner.dirs.shards.clone(),
                source,
            });
        }
        self.reservation.commit(self.header);
        Ok(id)
    }
}

impl Drop for ShardWriter {
    fn drop(&mut self) {
        if !self.renamed {
            // Best effort: a file that cannot be removed now is removed when the store next
            // opens, and it holds no reservation meanwhile.
            let _ = fs::remove_file(&self.tmp);
        }
    }
}
