//! Reading perfect-subtree hashes, and an in-memory tree that caches all of them.
//!
//! Every proof and root in RFC 6962 is built from hashes of *perfect* subtrees: the `2^level`
//! leaves starting at leaf `index * 2^level`, addressed here as `(level, index)`. Level 0 holds
//! the leaf hashes. Such a hash is fixed forever once its last leaf is appended, so a store can
//! write it once and never touch it again. C2SP tlog tiles are exactly this address space cut
//! into 256-wide strips at every eighth level; [`MemoryTree`] keeps every level instead, so no
//! hash is ever recomputed.
//!
//! A root or proof for a tree of size `n` only ever needs the perfect subtrees named by the set
//! bits of `n` (and of its prefixes), so with a cache it costs `O(log n)` reads plus a few node
//! hashes along the right edge, independent of how many leaves the tree holds.

use crate::hash::{Hash, empty_root, node_hash};
use crate::tiles::TileError;

/// Why a hash could not be read or a proof could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    /// A proof was asked for a leaf the tree of that size does not contain.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The requested leaf index.
        index: u64,
        /// The tree size the proof was asked for.
        size: u64,
    },
    /// A root or proof was asked for a larger tree than the reader holds.
    #[error("tree size {requested} exceeds the {available} leaves available")]
    SizeBeyondTree {
        /// The tree size that was asked for.
        requested: u64,
        /// How many leaves the reader holds.
        available: u64,
    },
    /// A consistency proof was asked from a larger tree to a smaller one.
    #[error("old tree size {old_size} exceeds new tree size {new_size}")]
    OldSizeExceedsNewSize {
        /// The claimed older tree size.
        old_size: u64,
        /// The claimed newer tree size.
        new_size: u64,
    },
    /// The perfect subtree at `(level, index)` is not complete in the reader's tree.
    #[error("no complete subtree at level {level} index {index} in a tree of size {size}")]
    NodeOutOfRange {
        /// Height of the subtree above the leaves.
        level: u8,
        /// Position of the subtree among those of its level.
        index: u64,
        /// How many leaves the reader holds.
        size: u64,
    },
    /// The requested tile is malformed.
    #[error(transparent)]
    Tile(#[from] TileError),
    /// The requested tile has hashes the tree does not contain yet.
    #[error(
        "tile level {level} index {index} width {width} is not complete in a tree of size {size}"
    )]
    TileBeyondTree {
        /// The tile level.
        level: u8,
        /// The tile index within its level.
        index: u64,
        /// The number of hashes asked for.
        width: u16,
        /// How many leaves the reader holds.
        size: u64,
    },
    /// A backing store failed to produce a hash it should have (for example an I/O error).
    #[error("could not read the hash at level {level} index {index}: {reason}")]
    Read {
        /// Height of the subtree above the leaves.
        level: u8,
        /// Position of the subtree among those of its level.
        index: u64,
        /// What the store reported.
        reason: String,
    },
}

/// Read access to the hashes of a tree, so that proofs can be built from a store rather than
/// from a list of every leaf held in memory.
///
/// Implementors must provide [`size`](HashReader::size) and [`leaf`](HashReader::leaf). The
/// default [`hash_at`](HashReader::hash_at) rebuilds a subtree from its leaves, which costs
/// `2^level` reads; stores that keep interior hashes (like [`MemoryTree`] or a tile store)
/// should override it so proofs cost `O(log n)` reads.
pub trait HashReader {
    /// How many leaves the reader holds; roots and proofs can be built for any size up to this.
    fn size(&self) -> u64;

    /// The hash of leaf `index`, that is `leaf_hash(entry)`.
    fn leaf(&self, index: u64) -> Result<Hash, Error>;

    /// The hash of the perfect subtree of `2^level` leaves starting at leaf `index << level`.
    fn hash_at(&self, level: u8, index: u64) -> Result<Hash, Error> {
        check_node(self.size(), level, index)?;
        hash_from_leaves(self, level, index)
    }
}

/// Checks that the perfect subtree at `(level, index)` is complete in a tree of `size` leaves.
pub(crate) fn check_node(size: u64, level: u8, index: u64) -> Result<(), Error> {
    // `size >> level` counts the complete subtrees of that level; comparing against it avoids
    // computing `(index + 1) << level`, which can overflow.
    let complete = size.checked_shr(u32::from(level)).unwrap_or(0);
    if index < complete {
        Ok(())
    } else {
        Err(Error::NodeOutOfRange { level, index, size })
    }
}

fn hash_from_leaves<R: HashReader + ?Sized>(
    tree: &R,
    level: u8,
    index: u64,
) -> Result<Hash, Error> {
    if level == 0 {
        return tree.leaf(index);
    }
    // check_node ran first, so the children exist and `2 * index + 1` cannot overflow.
    let left = hash_from_leaves(tree, level - 1, 2 * index)?;
    let right = hash_from_leaves(tree, level - 1, 2 * index + 1)?;
    Ok(node_hash(&left, &right))
}

fn check_size<R: HashReader + ?Sized>(tree: &R, size: u64) -> Result<(), Error> {
    let available = tree.size();
    if size > available {
        return Err(Error::SizeBeyondTree {
            requested: size,
            available,
        });
    }
    Ok(())
}

/// The root of the first `size` leaves of `tree`, reading only cached subtree hashes.
///
/// Lets a log answer for any earlier tree size (an old checkpoint) without keeping old roots.
pub fn root_at<R: HashReader + ?Sized>(tree: &R, size: u64) -> Result<Hash, Error> {
    check_size(tree, size)?;
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(tree, 0, size)
}

/// `MTH(D[start..end])` for a non-empty range whose `start` is a multiple of the smallest power
/// of two at least `end - start`, which holds for every range the RFC recursion visits.
///
/// Such a range is a run of perfect subtrees of decreasing size, one per set bit of its length,
/// and its hash folds them together from the right.
pub(crate) fn range_hash<R: HashReader + ?Sized>(
    tree: &R,
    start: u64,
    end: u64,
) -> Result<Hash, Error> {
    debug_assert!(start < end, "range {start}..{end} is empty");
    debug_assert!(
        start == 0 || start.is_multiple_of((end - start).next_power_of_two()),
        "range {start}..{end} is not aligned like an RFC 6962 subtree"
    );
    let mut rest = end - start;
    // The lowest set bit is the rightmost, smallest subtree; each further bit adds a larger
    // subtree to the left of everything folded so far.
    let subtree = |rest: &mut u64| {
        let level = rest.trailing_zeros();
        *rest &= *rest - 1;
        // The bits still set in `rest` are the lengths of the subtrees to the left.
        let offset = start + *rest;
        let level_u8 = u8::try_from(level).expect("a u64 has fewer than 256 bits");
        tree.hash_at(level_u8, offset >> level)
    };
    let mut acc = subtree(&mut rest)?;
    while rest != 0 {
        acc = node_hash(&subtree(&mut rest)?, &acc);
    }
    Ok(acc)
}

impl HashReader for [Hash] {
    fn size(&self) -> u64 {
        self.len() as u64
    }

    fn leaf(&self, index: u64) -> Result<Hash, Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.get(i))
            .copied()
            .ok_or(Error::NodeOutOfRange {
                level: 0,
                index,
                size: self.size(),
            })
    }
}

impl HashReader for Vec<Hash> {
    fn size(&self) -> u64 {
        self.as_slice().size()
    }

    fn leaf(&self, index: u64) -> Result<Hash, Error> {
        self.as_slice().leaf(index)
    }
}

/// An append-only Merkle tree held in memory, with every perfect subtree hash cached.
///
/// Storage is "hash at (level, index)", the same address space as C2SP tlog tiles, so code
/// written against [`HashReader`] works unchanged when the hashes move to on-disk tiles.
/// Appending costs one leaf hash plus, amortised, one node hash; memory is about twice the
/// leaf hashes (64 bytes per leaf).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryTree {
    // levels[h][i] is the hash of the perfect subtree of 2^h leaves starting at leaf i << h;
    // levels[0] holds the leaf hashes. Only complete subtrees are stored, so entries are only
    // ever pushed, never rewritten.
    levels: Vec<Vec<Hash>>,
}

impl MemoryTree {
    /// An empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// How many leaves the tree holds.
    pub fn size(&self) -> u64 {
        self.leaf_hashes().len() as u64
    }

    /// Whether the tree has no leaves.
    pub fn is_empty(&self) -> bool {
        self.leaf_hashes().is_empty()
    }

    /// Appends a leaf hash and returns its index.
    pub fn append(&mut self, leaf_hash: Hash) -> u64 {
        let index = self.size();
        let mut hash = leaf_hash;
        let mut position = self.leaf_hashes().len();
        for level in 0.. {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(hash);
            // A left child (even position) has no sibling yet, so nothing above it completes.
            if position.is_multiple_of(2) {
                break;
            }
            let left = &self.levels[level][position - 1];
            hash = node_hash(left, &hash);
            position /= 2;
        }
        index
    }

    /// Hashes `entry` as a leaf, appends it and returns its index.
    pub fn append_entry(&mut self, entry: &[u8]) -> u64 {
        self.append(crate::hash::leaf_hash(entry))
    }

    /// The root of the whole tree, the value a checkpoint commits to.
    pub fn root(&self) -> Hash {
        root_at(self, self.size()).expect("every complete subtree of the tree is cached")
    }

    /// All leaf hashes, in order.
    pub fn leaf_hashes(&self) -> &[Hash] {
        self.levels.first().map_or(&[], Vec::as_slice)
    }
}

impl HashReader for MemoryTree {
    fn size(&self) -> u64 {
        MemoryTree::size(self)
    }

    fn leaf(&self, index: u64) -> Result<Hash, Error> {
        self.hash_at(0, index)
    }

    fn hash_at(&self, level: u8, index: u64) -> Result<Hash, Error> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.levels.get(usize::from(level))?.get(i))
            .copied()
            .ok_or(Error::NodeOutOfRange {
                level,
                index,
                size: self.size(),
            })
    }
}

impl Extend<Hash> for MemoryTree {
    fn extend<I: IntoIterator<Item = Hash>>(&mut self, leaf_hashes: I) {
        for leaf_hash in leaf_hashes {
            self.append(leaf_hash);
        }
    }
}

impl FromIterator<Hash> for MemoryTree {
    fn from_iter<I: IntoIterator<Item = Hash>>(leaf_hashes: I) -> Self {
        let mut tree = Self::new();
        tree.extend(leaf_hashes);
        tree
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{leaf_hash, root};
    use crate::reference;

    fn tree_of(entries: &[Vec<u8>]) -> MemoryTree {
        entries.iter().map(|e| leaf_hash(e)).collect()
    }

    /// A reader that only knows leaves, to exercise the default `hash_at`.
    struct LeavesOnly(Vec<Hash>);

    impl HashReader for LeavesOnly {
        fn size(&self) -> u64 {
            self.0.len() as u64
        }
        fn leaf(&self, index: u64) -> Result<Hash, Error> {
            self.0.as_slice().leaf(index)
        }
    }

    #[test]
    fn every_cached_subtree_matches_the_reference() {
        let entries = reference::entries(300);
        let tree = tree_of(&entries);
        for level in 0..9u8 {
            let width = 1usize << level;
            for index in 0..entries.len() / width {
                let want = reference::mth(&entries[index * width..(index + 1) * width]);
                assert_eq!(
                    tree.hash_at(level, index as u64),
                    Ok(want),
                    "({level}, {index})"
                );
            }
            let past = (entries.len() / width) as u64;
            assert_eq!(
                tree.hash_at(level, past),
                Err(Error::NodeOutOfRange {
                    level,
                    index: past,
                    size: 300
                })
            );
        }
    }

    #[test]
    fn root_at_matches_the_reference_for_every_prefix() {
        let entries = reference::entries(300);
        let tree = tree_of(&entries);
        let leaves = tree.leaf_hashes().to_vec();
        for size in 0..=300u64 {
            let want = reference::mth(&entries[..size as usize]);
            assert_eq!(root_at(&tree, size), Ok(want), "size {size}");
            assert_eq!(
                root_at(&leaves, size),
                Ok(want),
                "slice reader, size {size}"
            );
            assert_eq!(root(&leaves[..size as usize]), want, "root(), size {size}");
        }
        assert_eq!(tree.root(), reference::mth(&entries));
    }

    #[test]
    fn append_keeps_root_current() {
        let entries = reference::entries(70);
        let mut tree = MemoryTree::new();
        assert!(tree.is_empty());
        assert_eq!(tree.root(), empty_root());
        for (i, entry) in entries.iter().enumerate() {
            assert_eq!(tree.append_entry(entry), i as u64);
            assert_eq!(tree.size(), i as u64 + 1);
            assert_eq!(
                tree.root(),
                reference::mth(&entries[..=i]),
                "size {}",
                i + 1
            );
        }
    }

    #[test]
    fn default_hash_at_rebuilds_subtrees_from_leaves() {
        let entries = reference::entries(100);
        let tree = tree_of(&entries);
        let leaves = LeavesOnly(tree.leaf_hashes().to_vec());
        for level in 0..7u8 {
            for index in 0..(100u64 >> level) {
                assert_eq!(leaves.hash_at(level, index), tree.hash_at(level, index));
            }
            let past = 100u64 >> level;
            assert_eq!(
                leaves.hash_at(level, past),
                Err(Error::NodeOutOfRange {
                    level,
                    index: past,
                    size: 100
                })
            );
        }
        assert!(leaves.hash_at(64, 0).is_err());
        assert!(leaves.hash_at(255, 0).is_err());
        assert!(leaves.hash_at(0, u64::MAX).is_err());
    }

    #[test]
    fn root_at_rejects_sizes_beyond_the_tree() {
        let tree = tree_of(&reference::entries(5));
        assert_eq!(
            root_at(&tree, 6),
            Err(Error::SizeBeyondTree {
                requested: 6,
                available: 5
            })
        );
        assert_eq!(
            root_at(&tree, 6).map_err(|e| e.to_string()),
            Err("tree size 6 exceeds the 5 leaves available".to_string())
        );
    }

    #[test]
    fn extend_and_collect_agree_with_append() {
        let leaves: Vec<Hash> = reference::entries(33)
            .iter()
            .map(|e| leaf_hash(e))
            .collect();
        let collected: MemoryTree = leaves.iter().copied().collect();
        let mut appended = MemoryTree::new();
        for leaf in &leaves {
            appended.append(*leaf);
        }
        assert_eq!(collected, appended);
        assert_eq!(collected.leaf_hashes(), leaves.as_slice());
    }
}
