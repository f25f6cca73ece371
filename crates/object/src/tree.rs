//! The shard tree: a binary Merkle tree over one shard's block hashes, in segment order, of
//! RFC 6962's shape.
//!
//! The leaves are the block hashes themselves (already keyed under [`BLOCK_KEY`]); an inner
//! node is `blake3::keyed_hash(&NODE_KEY, left || right)`. A tree of `n > 1` leaves splits at
//! the largest power of two below `n`; the root of one leaf is that leaf.
//!
//! The same shape is BLAKE3's own tree over a block's 1 KiB chunks, so [`fold_path`] serves
//! both: it rebuilds a root from a leaf and an RFC 9162 inclusion path (leaf to root), given
//! how to merge two children.
//!
//! [`BLOCK_KEY`]: crate::BLOCK_KEY

use crate::hash::NODE_KEY;

/// An inner shard-tree node: `blake3::keyed_hash(&NODE_KEY, left || right)`.
pub(crate) fn node(left: &[u8; 32], right: &[u8; 32]) -> [u8; 32] {
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(left);
    both[32..].copy_from_slice(right);
    *blake3::keyed_hash(&NODE_KEY, &both).as_bytes()
}

/// The root of a shard tree over `block_hashes`. Every shard has at least one block; the
/// root of none is `blake3::keyed_hash(&NODE_KEY, b"")`, which no shard has.
pub fn shard_root(block_hashes: &[[u8; 32]]) -> [u8; 32] {
    ShardTree::new(block_hashes.to_vec()).root()
}

/// A shard tree with every level kept, so that paths cost nothing to build.
///
/// Building bottom-up and carrying a level's odd last node up unchanged gives exactly RFC
/// 6962's tree (split at the largest power of two below `n`). 64 bytes per block of memory.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardTree {
    /// `levels[0]` is the leaves; the last level holds the root alone.
    levels: Vec<Vec<[u8; 32]>>,
}

impl ShardTree {
    /// The tree over `leaves` (a shard's block hashes in segment order).
    pub fn new(leaves: Vec<[u8; 32]>) -> Self {
        let mut levels = vec![leaves];
        while levels.last().expect("one level at least").len() > 1 {
            let below = levels.last().expect("one level at least");
            let above = below
                .chunks(2)
                .map(|pair| match pair {
                    [left, right] => node(left, right),
                    [alone] => *alone,
                    _ => unreachable!("chunks of two"),
                })
                .collect();
            levels.push(above);
        }
        Self { levels }
    }

    /// The leaves: the shard's block hashes.
    pub fn leaves(&self) -> &[[u8; 32]] {
        &self.levels[0]
    }

    /// The root.
    pub fn root(&self) -> [u8; 32] {
        match self.levels.last().and_then(|top| top.first()) {
            Some(root) => *root,
            None => *blake3::keyed_hash(&NODE_KEY, b"").as_bytes(),
        }
    }

    /// The inclusion path of leaf `index`, leaf to root (the siblings RFC 9162 names), or
    /// `None` past the last leaf.
    pub fn path(&self, index: u64) -> Option<Vec<[u8; 32]>> {
        let mut at = usize::try_from(index).ok()?;
        if at >= self.leaves().len() {
            return None;
        }
        let mut path = Vec::with_capacity(self.levels.len());
        for level in &self.levels[..self.levels.len() - 1] {
            // A last node without a sibling was carried up: no path entry at this level.
            if let Some(sibling) = level.get(at ^ 1) {
                path.push(*sibling);
            }
            at /= 2;
        }
        Some(path)
    }

    /// Whether `path` proves `leaf` at `index` in a tree of `leaves_count` leaves with this
    /// `root`.
    pub fn verify_path(
        root: &[u8; 32],
        leaves_count: u64,
        index: u64,
        leaf: &[u8; 32],
        path: &[[u8; 32]],
    ) -> bool {
        fold_path(index, leaves_count, *leaf, path, |left, right, _| {
            node(left, right)
        })
        .is_some_and(|found| &found == root)
    }
}

/// The root an RFC 9162 inclusion path (leaf to root) leads to from `leaf` at `index` of
/// `count` leaves; `merge(left, right, is_root)` makes a parent. `None` when the path has the
/// wrong length for that index and count.
pub(crate) fn fold_path(
    index: u64,
    count: u64,
    leaf: [u8; 32],
    path: &[[u8; 32]],
    mut merge: impl FnMut(&[u8; 32], &[u8; 32], bool) -> [u8; 32],
) -> Option<[u8; 32]> {
    if index >= count {
        return None;
    }
    let (mut f, mut s) = (index, count - 1);
    let mut hash = leaf;
    for (i, sibling) in path.iter().enumerate() {
        if s == 0 {
            return None;
        }
        let is_root = i + 1 == path.len();
        if f & 1 == 1 || f == s {
            hash = merge(sibling, &hash, is_root);
            while f & 1 == 0 && f != 0 {
                f >>= 1;
                s >>= 1;
            }
        } else {
            hash = merge(&hash, sibling, is_root);
        }
        f >>= 1;
        s >>= 1;
    }
    (s == 0).then_some(hash)
}

/// The largest power of two strictly below `n` (`n >= 2`): where RFC 6962 (and BLAKE3)
/// split `n` leaves.
pub(crate) fn split(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1 << (63 - (n - 1).leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn leaves(n: u64) -> Vec<[u8; 32]> {
        (0..n)
            .map(|i| crate::block_hash(&i.to_be_bytes()))
            .collect()
    }

    /// RFC 6962's recursive definition, to check the bottom-up build against.
    fn recursive_root(leaves: &[[u8; 32]]) -> [u8; 32] {
        match leaves.len() {
            1 => leaves[0],
            n => {
                let k = split(n as u64) as usize;
                node(&recursive_root(&leaves[..k]), &recursive_root(&leaves[k..]))
            }
        }
    }

    #[test]
    fn the_tree_has_rfc_6962_shape() {
        for n in 1..=40 {
            let leaves = leaves(n);
            assert_eq!(shard_root(&leaves), recursive_root(&leaves), "{n} leaves");
        }
        assert_eq!(split(2), 1);
        assert_eq!(split(5), 4);
        assert_eq!(split(8), 4);
        assert_eq!(split(9), 8);
    }

    #[test]
    fn every_path_verifies_and_no_tampered_one_does() {
        for n in 1..=33 {
            let tree = ShardTree::new(leaves(n));
            let root = tree.root();
            for index in 0..n {
                let leaf = tree.leaves()[index as usize];
                let path = tree.path(index).expect("in range");
                assert!(ShardTree::verify_path(&root, n, index, &leaf, &path));
                let mut bad_leaf = leaf;
                bad_leaf[0] ^= 1;
                assert!(!ShardTree::verify_path(&root, n, index, &bad_leaf, &path));
                for i in 0..path.len() {
                    let mut bad = path.clone();
                    bad[i][31] ^= 0x80;
                    assert!(!ShardTree::verify_path(&root, n, index, &leaf, &bad));
                }
                let mut long = path.clone();
                long.push([0; 32]);
                assert!(!ShardTree::verify_path(&root, n, index, &leaf, &long));
                if !path.is_empty() {
                    assert!(!ShardTree::verify_path(
                        &root,
                        n,
                        index,
                        &leaf,
                        &path[..path.len() - 1]
                    ));
                }
                if n > 1 {
                    let other = (index + 1) % n;
                    assert!(!ShardTree::verify_path(&root, n, other, &leaf, &path));
                }
                assert!(!ShardTree::verify_path(&root, n, n, &leaf, &path));
            }
            assert_eq!(tree.path(n), None);
        }
    }
}
