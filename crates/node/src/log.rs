//! The audit log store: every receipted transaction, in commit order, as a leaf of an
//! RFC 6962 Merkle tree.
//!
//! One journal holds the log durably: the entries (the encoded transactions). The tree's
//! hashes are kept in memory ([`welkin_merkle::MemoryTree`]), rebuilt by hashing the entries
//! at start. The executor appends a block's entries and makes their data durable (one
//! `commit`, a single data sync) *before* it commits the state that records the new log size,
//! so after a crash the journal holds at least the committed size; any excess (appended,
//! never committed) is discarded when the store reopens at the committed size. The journal's
//! recovery watermark is advanced (a full `sync`) only every [`SYNC_EVERY`] appends, which
//! bounds replay at start without a second sync per block.
//!
//! The store also refuses to fork: [`LogStore::check_consistent`] is called before every
//! checkpoint signature and fails if the tree does not extend the last tree this node signed
//! (kept in a small metadata store), so no honest node ever signs two inconsistent views.

use commonware_runtime::{Clock, Metrics, ReadOptions, Spawner, Storage, buffer::paged::CacheRef};
use commonware_storage::{
    journal::contiguous::{Contiguous as _, Many, variable},
    metadata::{self, Metadata},
};
use commonware_utils::{NZU64, NZUsize, sequence::U64};
use futures::TryStreamExt as _;
use welkin_merkle::{Hash, MemoryTree};
use welkin_types::{Digest, limits::MAX_LOG_ENTRY_BYTES};

/// Why the log refused to sign.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(crate) enum ForkError {
    /// The tree is smaller than one already signed.
    #[error("log shrank from {signed} to {now} entries since the last signed checkpoint")]
    Shrank {
        /// Size already signed.
        signed: u64,
        /// Size now.
        now: u64,
    },
    /// The tree's prefix differs from the tree already signed.
    #[error("log of {size} entries no longer has root {signed} (now {now}): history was rewritten")]
    Rewritten {
        /// Size already signed.
        size: u64,
        /// Root signed then.
        signed: String,
        /// Root of the same prefix now.
        now: String,
    },
}

/// Key of the last signed (size, root) in the metadata store.
const LAST_SIGNED: u64 = 0;

/// Appends between full syncs of the entry journal (which advance its recovery watermark).
pub(crate) const SYNC_EVERY: u64 = 64;

/// The durable audit log of one node.
pub(crate) struct LogStore<E: Spawner + Clock + Storage + Metrics> {
    entries: Option<variable::Journal<E, Vec<u8>>>,
    signed: Option<Metadata<E, U64, Vec<u8>>>,
    tree: MemoryTree,
    appends_since_sync: u64,
}

/// Converts a tree hash to the crate-wide digest type.
pub(crate) fn to_digest(hash: &Hash) -> Digest {
    Digest::from(*hash)
}

impl<E: Spawner + Clock + Storage + Metrics> LogStore<E> {
    /// Opens the log at `committed` entries (the size the state records), discarding any
    /// entries appended after it by a run that crashed before committing.
    pub(crate) async fn init(
        context: E,
        prefix: &str,
        page_cache: &CacheRef,
        committed: u64,
    ) -> Self {
        let entries: variable::Journal<E, Vec<u8>> = variable::Journal::init_at_most(
            context.child("entries"),
            variable::Config {
                partition: format!("{prefix}-log-entries"),
                items_per_section: NZU64!(1 << 14),
                compression: None,
                codec_config: ((0..=MAX_LOG_ENTRY_BYTES).into(), ()),
                page_cache: page_cache.clone(),
                write_buffer: NZUsize!(1 << 16),
                replay_buffer: NZUsize!(1 << 16),
            },
            committed,
        )
        .await
        .expect("log entry journal must open; is the data directory intact?");
        assert_eq!(
            entries.size(),
            committed,
            "log entry journal lost committed entries"
        );
        let signed = Metadata::init(
            context.child("signed"),
            metadata::Config {
                partition: format!("{prefix}-log-signed"),
                codec_config: ((0..=64).into(), ()),
            },
        )
        .await
        .expect("log metadata must open");
        let mut tree = MemoryTree::new();
        if committed > 0 {
            let stream = entries
                .replay(0..committed, NZUsize!(1 << 20), ReadOptions::DONT_CACHE)
                .await
                .expect("committed log entries are readable");
            let mut stream = std::pin::pin!(stream);
            while let Some(batch) = stream
                .try_next()
                .await
                .expect("committed log entries are readable")
            {
                for entry in &batch.items {
                    tree.append_entry(entry);
                }
            }
        }
        assert_eq!(tree.size(), committed, "log replay returned every entry");
        Self {
            entries: Some(entries),
            signed: Some(signed),
            tree,
            appends_since_sync: 0,
        }
    }

    /// Entries in the log.
    pub(crate) fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The current root.
    pub(crate) fn root(&self) -> Digest {
        to_digest(&self.tree.root())
    }

    /// The in-memory tree (for proofs).
    pub(crate) fn tree(&self) -> &MemoryTree {
        &self.tree
    }

    /// Appends entries and makes them durable.
    pub(crate) async fn append(&mut self, entries: &[Vec<u8>]) {
        if entries.is_empty() {
            return;
        }
        let journal = self.entries.take().expect("entry journal present");
        let (journal, _) = journal
            .append_many(Many::Flat(entries))
            .await
            .expect("log entry append must succeed");
        self.appends_since_sync += 1;
        let journal = if self.appends_since_sync >= SYNC_EVERY {
            self.appends_since_sync = 0;
            journal.sync().await
        } else {
            journal.commit().await
        }
        .expect("log entries must reach disk");
        self.entries = Some(journal);
        for entry in entries {
            self.tree.append_entry(entry);
        }
    }

    /// The entry at `index`.
    pub(crate) async fn entry(&self, index: u64) -> Option<Vec<u8>> {
        if index >= self.size() {
            return None;
        }
        self.entries
            .as_ref()
            .expect("entry journal present")
            .read(index)
            .await
            .ok()
    }

    /// Fails if the current tree does not extend the last tree this node signed.
    pub(crate) fn check_consistent(&self) -> Result<(), ForkError> {
        let signed = self.signed.as_ref().expect("metadata present");
        let Some(record) = signed.get(&U64::new(LAST_SIGNED)) else {
            return Ok(());
        };
        let size = u64::from_be_bytes(record[..8].try_into().expect("record holds a size"));
        let root: Hash = record[8..40].try_into().expect("record holds a root");
        check_extends(&self.tree, size, &root)
    }

    /// Records that this node signed the current tree.
    pub(crate) async fn record_signed(&mut self) {
        let mut record = self.size().to_be_bytes().to_vec();
        record.extend_from_slice(&self.tree.root());
        let signed = self.signed.take().expect("metadata present");
        let signed = signed
            .put_sync(U64::new(LAST_SIGNED), record)
            .await
            .expect("log metadata must reach disk");
        self.signed = Some(signed);
    }
}

/// Whether `tree` extends the tree of `size` entries with `root`.
pub(crate) fn check_extends(tree: &MemoryTree, size: u64, root: &Hash) -> Result<(), ForkError> {
    if tree.size() < size {
        return Err(ForkError::Shrank {
            signed: size,
            now: tree.size(),
        });
    }
    let now = welkin_merkle::root_at(tree, size).expect("size checked above");
    if &now != root {
        return Err(ForkError::Rewritten {
            size,
            signed: hex::encode(root),
            now: hex::encode(now),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(entries: &[&[u8]]) -> MemoryTree {
        let mut tree = MemoryTree::new();
        for entry in entries {
            tree.append_entry(entry);
        }
        tree
    }

    #[test]
    fn refuses_to_sign_a_conflicting_history() {
        let signed = tree(&[b"a", b"b", b"c"]);
        let root = signed.root();
        assert_eq!(
            check_extends(&tree(&[b"a", b"b", b"c", b"d"]), 3, &root),
            Ok(())
        );
        assert_eq!(check_extends(&signed, 3, &root), Ok(()));
        assert!(matches!(
            check_extends(&tree(&[b"a", b"b"]), 3, &root),
            Err(ForkError::Shrank { signed: 3, now: 2 })
        ));
        let forked = tree(&[b"a", b"x", b"c", b"d"]);
        assert!(matches!(
            check_extends(&forked, 3, &root),
            Err(ForkError::Rewritten { size: 3, .. })
        ));
    }
}
