//! The store: its index, accounting, quarantine of corrupt shards, and deletion.

use std::{
    collections::{BTreeMap, BTreeSet},
    fs::{self, File},
    io,
    path::PathBuf,
    sync::{Arc, Mutex, MutexGuard, PoisonError},
};

use crate::{
    OpenReport, ReadError, ShardId, StoreLimits,
    dirs::{Dirs, sync_dir},
    header::{Geometry, Header},
};

/// A node's shards on disk. Cheap to share between threads (`&self` everywhere); every
/// method blocks on file I/O, so an async caller runs it on a blocking task.
#[derive(Debug, Clone)]
pub struct ShardStore {
    pub(crate) inner: Arc<Inner>,
}

/// What the store and its writers share.
#[derive(Debug)]
pub(crate) struct Inner {
    pub(crate) dirs: Dirs,
    pub(crate) limits: StoreLimits,
    pub(crate) state: Mutex<State>,
    pub(crate) opened: OpenReport,
    /// Held locked for the store's life so no second store opens the directory.
    pub(crate) _lock: File,
}

/// The in-memory index and accounting. Its size is bounded by the files on disk: an entry is
/// a few hundred bytes per shard file (or per shard being written, at most
/// `max_open_writers`), never per block.
#[derive(Debug, Default)]
pub(crate) struct State {
    /// Stored shards whose header and hash list passed their checks.
    pub(crate) shards: BTreeMap<ShardId, Entry>,
    /// Shards being written; each has its bytes in `reserved`.
    pub(crate) writing: BTreeSet<ShardId>,
    /// Shards lost to corruption since the store opened, until written again or deleted.
    pub(crate) corrupt: BTreeSet<ShardId>,
    /// Bytes of the files in `shards`.
    pub(crate) used: u64,
    /// Bytes promised to writers.
    pub(crate) reserved: u64,
    /// Tells a shard from a later one of the same id, so a slow reader of a replaced file
    /// never blames the new one.
    pub(crate) next_generation: u64,
}

/// One stored shard in the index.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Entry {
    pub(crate) header: Header,
    pub(crate) generation: u64,
}

impl State {
    pub(crate) fn insert(&mut self, header: Header) {
        let generation = self.next_generation;
        self.next_generation += 1;
        self.used += header.geometry.file_len();
        self.corrupt.remove(&header.id);
        let previous = self.shards.insert(header.id, Entry { header, generation });
        assert!(
            previous.is_none(),
            "a shard is indexed once: create refuses duplicates"
        );
    }

    fn remove(&mut self, id: &ShardId) -> Option<Entry> {
        let entry = self.shards.remove(id)?;
        self.used -= entry.header.geometry.file_len();
        Some(entry)
    }
}

/// The store's occupancy.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct StoreUsage {
    /// The configured capacity in bytes.
    pub capacity: u64,
    /// Bytes of stored shard files.
    pub used: u64,
    /// Bytes reserved by shards being written.
    pub reserved: u64,
    /// Stored shards.
    pub shards: u64,
}

impl StoreUsage {
    /// Bytes a new shard may still reserve (zero when a lowered capacity is already exceeded).
    pub fn free(&self) -> u64 {
        self.capacity.saturating_sub(self.used + self.reserved)
    }
}

/// What the store knows of one stored shard without reading it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ShardInfo {
    /// The Merkle root of its block hashes.
    pub root: [u8; 32],
    /// Blocks, one per segment.
    pub block_count: u32,
    /// Length of every block but the last.
    pub block_len: u32,
    /// Length of the last block.
    pub final_block_len: u32,
    /// Bytes of its file, as counted against capacity.
    pub file_bytes: u64,
}

/// Why a shard was not deleted.
#[derive(Debug, thiserror::Error)]
pub enum DeleteError {
    /// Neither stored nor quarantined.
    #[error("shard {id} is not stored")]
    NotFound {
        /// The shard asked for.
        id: ShardId,
    },
    /// The file or its directory could not be changed.
    #[error("cannot delete {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// What [`ShardStore::retain`] did.
#[derive(Debug, Default)]
pub struct GcReport {
    /// Stored shards the caller was asked about.
    pub examined: u64,
    /// Shards removed.
    pub removed: u64,
    /// Bytes those shards' files held.
    pub freed_bytes: u64,
    /// Shards that should have gone but could not be removed (they stay indexed).
    pub failed: u64,
    /// The first failures, at most `max_reported_files` of them.
    pub errors: Vec<DeleteError>,
}

impl Inner {
    pub(crate) fn state(&self) -> MutexGuard<'_, State> {
        // Every critical section leaves the state consistent before anything can panic, so a
        // panic elsewhere while the lock was held leaves nothing to repair.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// The index entry of a stored shard.
    pub(crate) fn entry(&self, id: &ShardId) -> Result<Entry, ReadError> {
        let state = self.state();
        match state.shards.get(id) {
            Some(entry) => Ok(*entry),
            None if state.corrupt.contains(id) => Err(ReadError::Quarantined { id: *id }),
            None => Err(ReadError::NotFound { id: *id }),
        }
    }

    /// Takes a shard found corrupt out of service: out of the index, its file into the
    /// quarantine, its id into the corrupt list. False when the entry is no longer the one
    /// that was read (deleted or replaced meanwhile), which is then not to blame.
    pub(crate) fn mark_corrupt(&self, id: &ShardId, generation: u64) -> bool {
        let mut state = self.state();
        if state.shards.get(id).map(|entry| entry.generation) != Some(generation) {
            return false;
        }
        state.remove(id);
        state.corrupt.insert(*id);
        // Moved under the lock: once the entry is gone a writer may put a new file at this
        // path, and it must not be the one moved.
        let moved = self.dirs.quarantine(&self.dirs.shard(id));
        drop(state);
        match moved {
            Ok(to) => {
                tracing::warn!(shard = %id, to = %to.display(), "corrupt shard quarantined");
                for dir in [&self.dirs.shards, &self.dirs.quarantine] {
                    if let Err(error) = sync_dir(dir) {
                        tracing::warn!(dir = %dir.display(), %error, "cannot sync directory");
                    }
                }
            }
            Err(error) => tracing::warn!(shard = %id, %error, "corrupt shard not quarantined"),
        }
        true
    }

    /// Unlinks a stored shard's file and drops it from the index; the caller syncs the
    /// directory. Returns the bytes freed.
    fn unlink(&self, id: &ShardId) -> Result<u64, DeleteError> {
        let mut state = self.state();
        if !state.shards.contains_key(id) {
            return match state.corrupt.remove(id) {
                true => Ok(0),
                false => Err(DeleteError::NotFound { id: *id }),
            };
        }
        let path = self.dirs.shard(id);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(error) if error.kind() == io::ErrorKind::NotFound => {}
            Err(source) => return Err(DeleteError::Io { path, source }),
        }
        let entry = state.remove(id).expect("checked above under the same lock");
        Ok(entry.header.geometry.file_len())
    }
}

impl ShardStore {
    /// Whether the store holds a shard (finished and not found corrupt).
    pub fn contains(&self, id: &ShardId) -> bool {
        self.inner.state().shards.contains_key(id)
    }

    /// What the store knows of a stored shard without reading it.
    pub fn info(&self, id: &ShardId) -> Option<ShardInfo> {
        let entry = *self.inner.state().shards.get(id)?;
        let Geometry {
            block_count,
            block_len,
            final_block_len,
        } = entry.header.geometry;
        let file_bytes = entry.header.geometry.file_len();
        Some(ShardInfo {
            root: entry.header.root,
            block_count,
            block_len,
            final_block_len,
            file_bytes,
        })
    }

    /// Every stored shard, in order.
    pub fn list(&self) -> Vec<ShardId> {
        self.inner.state().shards.keys().copied().collect()
    }

    /// Shards found corrupt (when the store opened or on a read) and quarantined, in order;
    /// each stays listed until it is written again, deleted or not retained.
    pub fn corrupt_shards(&self) -> Vec<ShardId> {
        self.inner.state().corrupt.iter().copied().collect()
    }

    /// Capacity, bytes used and reserved, and the number of stored shards.
    pub fn usage(&self) -> StoreUsage {
        let state = self.inner.state();
        StoreUsage {
            capacity: self.inner.limits.capacity_bytes,
            used: state.used,
            reserved: state.reserved,
            shards: state.shards.len() as u64,
        }
    }

    /// What the store found when it opened.
    pub fn opened(&self) -> &OpenReport {
        &self.inner.opened
    }

    /// Deletes a shard: unlinks its file, syncs the directory so the deletion survives a
    /// crash, and returns the bytes freed. Deleting a quarantined shard clears it from
    /// [`ShardStore::corrupt_shards`] and frees nothing.
    ///
    /// This is the node's part of crypto-shredding, and it overwrites nothing on purpose:
    /// every block is ciphertext under a per-object key, and shredding destroys that key in
    /// replicated state. Without the key the bytes cannot be decrypted whether or not they
    /// linger in free disk blocks (or in the quarantine directory), and overwriting would not
    /// reach copies in SSD remapping or filesystem journals anyway.
    pub fn delete(&self, id: &ShardId) -> Result<u64, DeleteError> {
        let freed = self.inner.unlink(id)?;
        let dir = &self.inner.dirs.shards;
        sync_dir(dir).map_err(|source| DeleteError::Io {
            path: dir.clone(),
            source,
        })?;
        Ok(freed)
    }

    /// Garbage collection: removes every stored shard for which `keep` is false (the node
    /// passes "some committed manifest names it") and forgets quarantined ids that are not
    /// kept. One directory sync covers all the removals. `keep` runs without the store's
    /// lock held, so it may call the store.
    pub fn retain(&self, mut keep: impl FnMut(&ShardId) -> bool) -> GcReport {
        let (stored, corrupt) = {
            let state = self.inner.state();
            let stored: Vec<ShardId> = state.shards.keys().copied().collect();
            (stored, state.corrupt.iter().copied().collect::<Vec<_>>())
        };
        let mut report = GcReport {
            examined: stored.len() as u64,
            ..GcReport::default()
        };
        let max_errors = self.inner.limits.max_reported_files;
        let note_error = |report: &mut GcReport, error: DeleteError| {
            report.failed += 1;
            if report.errors.len() < max_errors {
                report.errors.push(error);
            }
        };
        for id in stored.iter().filter(|id| !keep(id)) {
            match self.inner.unlink(id) {
                Ok(freed) => {
                    report.removed += 1;
                    report.freed_bytes += freed;
                }
                // Deleted by someone else meanwhile: the goal is met.
                Err(DeleteError::NotFound { .. }) => {}
                Err(error) => note_error(&mut report, error),
            }
        }
        let forget: Vec<ShardId> = corrupt.into_iter().filter(|id| !keep(id)).collect();
        self.inner.state().corrupt.retain(|id| !forget.contains(id));
        if report.removed > 0 {
            let dir = &self.inner.dirs.shards;
            if let Err(source) = sync_dir(dir) {
                note_error(
                    &mut report,
                    DeleteError::Io {
                        path: dir.clone(),
                        source,
                    },
                );
            }
        }
        report
    }
}
