//! Verified reads: a block or hash list is returned only if it matches what the shard's
//! root vouches for.

use std::{
    fs::File,
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
};

use crate::{
    ShardId, ShardStore,
    hash::{block_hash, shard_root},
    header::{Geometry, HASH_LEN},
};

/// Why a block or hash list was not returned.
#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    /// The store does not hold the shard.
    #[error("shard {id} is not stored")]
    NotFound {
        /// The shard asked for.
        id: ShardId,
    },
    /// The store held the shard, found it corrupt and quarantined it; repair must restore it.
    #[error("shard {id} was quarantined as corrupt")]
    Quarantined {
        /// The shard asked for.
        id: ShardId,
    },
    /// A segment past the shard's last block.
    #[error("segment {segment} is out of range for shard {id} of {count} blocks")]
    OutOfRange {
        /// The shard asked for.
        id: ShardId,
        /// The segment asked for.
        segment: u32,
        /// The shard's blocks.
        count: u32,
    },
    /// The block on disk does not match its hash, or the file is gone, short or on sectors the
    /// device cannot read: nothing was returned, and the shard is now quarantined and listed
    /// by [`ShardStore::corrupt_shards`].
    #[error("block {segment} of shard {id} is corrupt; the shard is quarantined")]
    Corrupt {
        /// The shard asked for.
        id: ShardId,
        /// The corrupt block.
        segment: u32,
    },
    /// The hash list on disk no longer matches the root; the shard is quarantined.
    #[error("hash list of shard {id} is corrupt; the shard is quarantined")]
    CorruptHashes {
        /// The shard asked for.
        id: ShardId,
    },
    /// The file could not be read for a reason that says nothing about its contents (out of
    /// descriptors or memory, no permission); the shard stays in service.
    #[error("cannot read {}: {source}", path.display())]
    Io {
        /// The shard file.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// A block read back: verified, or something that is not the block.
enum Fetched {
    Verified(Vec<u8>),
    Bad,
}

impl ShardStore {
    /// Reads block `segment` of a shard with positioned reads and returns it only if it
    /// matches its hash. A block that does not (or a file that is gone, short or unreadable) takes the
    /// shard out of service: it is quarantined, listed by [`ShardStore::corrupt_shards`] for
    /// repair, and the read fails with [`ReadError::Corrupt`].
    pub fn read_block(&self, id: &ShardId, segment: u32) -> Result<Vec<u8>, ReadError> {
        // A second pass only when the shard was replaced between the lookup and the check.
        for _ in 0..2 {
            let entry = self.inner.entry(id)?;
            let geometry = entry.header.geometry;
            if segment >= geometry.block_count {
                let count = geometry.block_count;
                return Err(ReadError::OutOfRange {
                    id: *id,
                    segment,
                    count,
                });
            }
            let path = self.inner.dirs.shard(id);
            match fetch_block(&path, &geometry, segment) {
                Ok(Fetched::Verified(block)) => return Ok(block),
                Ok(Fetched::Bad) if self.inner.mark_corrupt(id, entry.generation) => {
                    return Err(ReadError::Corrupt { id: *id, segment });
                }
                Ok(Fetched::Bad) => continue,
                Err(source) => return Err(ReadError::Io { path, source }),
            }
        }
        Err(ReadError::NotFound { id: *id })
    }

    /// A shard's block hashes, read from disk and checked against its root (a mismatch
    /// quarantines the shard like a corrupt block does).
    pub fn block_hashes(&self, id: &ShardId) -> Result<Vec<[u8; 32]>, ReadError> {
        for _ in 0..2 {
            let entry = self.inner.entry(id)?;
            let path = self.inner.dirs.shard(id);
            let hashes = match read_hashes(&path, &entry.header.geometry) {
                Ok(hashes) => Some(hashes),
                Err(error) if is_damage(&error) => None,
                Err(source) => return Err(ReadError::Io { path, source }),
            };
            match hashes {
                Some(hashes) if shard_root(&hashes) == Some(entry.header.root) => {
                    return Ok(hashes);
                }
                _ if self.inner.mark_corrupt(id, entry.generation) => {
                    return Err(ReadError::CorruptHashes { id: *id });
                }
                _ => continue,
            }
        }
        Err(ReadError::NotFound { id: *id })
    }
}

/// `EIO`, the same number on Linux, the BSDs and macOS: the device could not read the data.
const EIO: i32 = 5;

/// Whether a read error means the file is damaged (gone, shorter than its header says, or
/// on sectors the device cannot read) rather than that the system is short of something
/// for now (descriptors, memory, permission), which must not cost a good shard.
pub(crate) fn is_damage(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::NotFound | io::ErrorKind::UnexpectedEof
    ) || error.raw_os_error() == Some(EIO)
}

/// Reads one block and its hash and compares them.
fn fetch_block(path: &Path, geometry: &Geometry, segment: u32) -> io::Result<Fetched> {
    let read = || -> io::Result<Fetched> {
        let file = File::open(path)?;
        let mut hash = [0u8; HASH_LEN];
        file.read_exact_at(&mut hash, geometry.hash_offset(segment))?;
        // Bounded by the format: a block is at most MAX_BLOCK_LEN bytes.
        let mut block = vec![0u8; geometry.len_of(segment) as usize];
        file.read_exact_at(&mut block, geometry.block_offset(segment))?;
        Ok(match block_hash(&block) == hash {
            true => Fetched::Verified(block),
            false => Fetched::Bad,
        })
    };
    match read() {
        Err(error) if is_damage(&error) => Ok(Fetched::Bad),
        other => other,
    }
}

/// Reads a shard's hash list.
fn read_hashes(path: &Path, geometry: &Geometry) -> io::Result<Vec<[u8; 32]>> {
    read_hashes_from(&File::open(path)?, geometry)
}

/// Reads the hash list from an open shard file: at most MAX_BLOCKS hashes (32 MiB), and the
/// caller has checked that the file is as long as its geometry says.
pub(crate) fn read_hashes_from(file: &File, geometry: &Geometry) -> io::Result<Vec<[u8; 32]>> {
    let mut hashes = vec![[0u8; HASH_LEN]; geometry.block_count as usize];
    file.read_exact_at(hashes.as_flattened_mut(), geometry.hash_offset(0))?;
    Ok(hashes)
}
