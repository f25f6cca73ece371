//! The audit log store: every receipted transaction, in commit order, as a leaf of an
//! RFC 6962 Merkle tree.
//!
//! Two journals hold the log durably: leaf hashes (fixed size) and entries (the encoded
//! transactions). The tree's hashes are kept in memory ([`welkin_merkle::MemoryTree`]),
//! rebuilt from the leaf journal at start. The executor appends a block's entries and syncs
//! them *before* it commits the state that records the new log size, so after a crash the
//! journals hold at least the committed size; any excess (appended, never committed) is
//! discarded when the store reopens at the committed size.
//!
//! The store also refuses to fork: [`LogStore::check_consistent`] is called before every
//! checkpoint signature and fails if the tree does not extend the last tree this node signed
//! (kept in a small metadata store), so no honest node ever signs two inconsistent views.

use commonware_runtime::{Clock, Metrics, Spawner, Storage, buffer::paged::CacheRef};
use commonware_storage::{
    journal::contiguous::{Contiguous as _, Many, fixed, variable},
    metadata::{self, Metadata},
};
use commonware_utils::{NZU64, NZUsize, sequence::U64};
use welkin_merkle::{Hash, MemoryTree};
use welkin_types::{Digest, limits::MAX_TX_BYTES};

/// Why the log refused to sign.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ForkError {
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

/// The durable audit log of one node.
pub struct LogStore<E: Spawner + Clock + Storage + Metrics> {
    leaves: Option<fixed::Journal<E, Digest>>,
    entries: Option<variable::Journal<E, Vec<u8>>>,
    signed: Option<Metadata<E, U64, Vec<u8>>>,
    tree: MemoryTree,
}

fn to_hash(digest: &Digest) -> Hash {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(digest.as_ref());
    hash
}

/// Converts a tree hash to the crate-wide digest type.
pub fn to_digest(hash: &Hash) -> Digest {
    Digest::from(*hash)
}

impl<E: Spawner + Clock + Storage + Metrics> LogStore<E> {
    /// Opens the log at `committed` entries (the size the state records), discarding any
    /// entries appended after it by a run that crashed before committing.
    pub async fn init(context: E, prefix: &str, page_cache: &CacheRef, committed: u64) -> Self {
        let leaves = fixed::Journal::init_at_most(
            context.child("leaves"),
            fixed::Config {
                partition: format!("{prefix}-log-leaves"),
                items_per_blob: NZU64!(1 << 16),
                page_cache: page_cache.clone(),
                write_buffer: NZUsize!(1 << 16),
                replay_buffer: NZUsize!(1 << 16),
            },
            committed,
        )
        .await
        .expect("log leaf journal must open; is the data directory intact?");
        let entries = variable::Journal::init_at_most(
            context.child("entries"),
            variable::Config {
                partition: format!("{prefix}-log-entries"),
                items_per_section: NZU64!(1 << 14),
                compression: None,
                codec_config: ((0..=MAX_TX_BYTES).into(), ()),
                page_cache: page_cache.clone(),
                write_buffer: NZUsize!(1 << 16),
                replay_buffer: NZUsize!(1 << 16),
            },
            committed,
        )
        .await
        .expect("log entry journal must open; is the data directory intact?");
        assert_eq!(
            leaves.size(),
            committed,
            "log leaf journal lost committed entries"
        );
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
        let mut position = 0;
        while position < committed {
            let end = (position + 4096).min(committed);
            let positions: Vec<u64> = (position..end).collect();
            let hashes = leaves
                .read_many(&positions)
                .await
                .expect("committed log leaves are readable");
            for hash in &hashes {
                tree.append(to_hash(hash));
            }
            position = end;
        }
        Self {
            leaves: Some(leaves),
            entries: Some(entries),
            signed: Some(signed),
            tree,
        }
    }

    /// Entries in the log.
    pub fn size(&self) -> u64 {
        self.tree.size()
    }

    /// The current root.
    pub fn root(&self) -> Digest {
        to_digest(&self.tree.root())
    }

    /// The in-memory tree (for proofs).
    pub fn tree(&self) -> &MemoryTree {
        &self.tree
    }

    /// Appends entries and makes them durable.
    pub async fn append(&mut self, entries: &[Vec<u8>]) {
        if entries.is_empty() {
            return;
        }
        let hashes: Vec<Digest> = entries
            .iter()
            .map(|e| to_digest(&welkin_merkle::leaf_hash(e)))
            .collect();
        let leaves = self.leaves.take().expect("leaf journal present");
        let (leaves, _) = leaves
            .append_many(Many::Flat(&hashes))
            .await
            .expect("log leaf append must succeed");
        let leaves = leaves.sync().await.expect("log leaves must reach disk");
        self.leaves = Some(leaves);
        let mut journal = self.entries.take().expect("entry journal present");
        for entry in entries {
            journal = journal
                .append(entry)
                .await
                .expect("log entry append must succeed")
                .0;
        }
        let journal = journal.sync().await.expect("log entries must reach disk");
        self.entries = Some(journal);
        for hash in &hashes {
            self.tree.append(to_hash(hash));
        }
    }

    /// The entry at `index`.
    pub async fn entry(&self, index: u64) -> Option<Vec<u8>> {
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
    pub fn check_consistent(&self) -> Result<(), ForkError> {
        let signed = self.signed.as_ref().expect("metadata present");
        let Some(record) = signed.get(&U64::new(LAST_SIGNED)) else {
            return Ok(());
        };
        let size = u64::from_be_bytes(record[..8].try_into().expect("record holds a size"));
        let root: Hash = record[8..40].try_into().expect("record holds a root");
        check_extends(&self.tree, size, &root)
    }

    /// Records that this node signed the current tree.
    pub async fn record_signed(&mut self) {
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
pub fn check_extends(tree: &MemoryTree, size: u64, root: &Hash) -> Result<(), ForkError> {
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
