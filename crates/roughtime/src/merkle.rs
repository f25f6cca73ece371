//! The Merkle tree a batch of requests is answered under. Leaves are hashed with a 0x00 prefix
//! and inner nodes with 0x01; a level with an odd number of nodes is padded with a zero hash so
//! that every leaf has a full path. Draft-07 hashes with SHA-512/256 over the nonce; RFC 10049
//! with the first 32 bytes of SHA-512 over the whole request packet.

use sha2::{Digest as _, Sha512, Sha512_256};

/// A tree hash value.
pub(crate) type Hash = [u8; 32];

/// The most levels a path may have (RFC 10049 5.2.4: at most 32 hashes).
pub(crate) const MAX_DEPTH: usize = 32;

const LEAF: u8 = 0x00;
const NODE: u8 = 0x01;

/// Which hash function a dialect's tree uses.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TreeHash {
    /// SHA-512/256 (draft-07).
    Sha512_256,
    /// SHA-512 truncated to its first 32 bytes (RFC 10049).
    Sha512Prefix,
}

impl TreeHash {
    fn hash(self, prefix: u8, parts: &[&[u8]]) -> Hash {
        match self {
            TreeHash::Sha512_256 => {
                let mut h = Sha512_256::new();
                h.update([prefix]);
                parts.iter().for_each(|p| h.update(p));
                h.finalize().into()
            }
            TreeHash::Sha512Prefix => {
                let mut h = Sha512::new();
                h.update([prefix]);
                parts.iter().for_each(|p| h.update(p));
                let full = h.finalize();
                full[..32].try_into().expect("SHA-512 has 64 bytes")
            }
        }
    }

    /// The hash of a leaf.
    pub(crate) fn leaf(self, data: &[u8]) -> Hash {
        self.hash(LEAF, &[data])
    }

    fn node(self, left: &Hash, right: &Hash) -> Hash {
        self.hash(NODE, &[left, right])
    }
}

/// A built tree: every level from the leaves up to the root.
pub(crate) struct Tree {
    levels: Vec<Vec<Hash>>,
}

impl Tree {
    /// Builds the tree over at least one leaf.
    pub(crate) fn build(hash: TreeHash, leaves: &[&[u8]]) -> Self {
        assert!(!leaves.is_empty(), "a batch has at least one request");
        let mut levels = vec![leaves.iter().map(|l| hash.leaf(l)).collect::<Vec<_>>()];
        while levels.last().expect("one level at least").len() > 1 {
            let level = levels.last_mut().expect("one level at least");
            if level.len() % 2 == 1 {
                level.push([0; 32]);
            }
            let up = level.chunks(2).map(|p| hash.node(&p[0], &p[1])).collect();
            levels.push(up);
        }
        Self { levels }
    }

    /// The root hash.
    pub(crate) fn root(&self) -> Hash {
        self.levels.last().expect("one level at least")[0]
    }

    /// The sibling hashes from leaf `index` up to the root, concatenated.
    pub(crate) fn path(&self, mut index: usize) -> Vec<u8> {
        let mut path = Vec::with_capacity(32 * (self.levels.len() - 1));
        for level in &self.levels[..self.levels.len() - 1] {
            path.extend_from_slice(&level[index ^ 1]);
            index >>= 1;
        }
        path
    }
}

/// The root a leaf hash, its index and its path lead to, or `None` if the path is malformed
/// or the index has bits left over.
pub(crate) fn root_from_path(hash: TreeHash, leaf: Hash, index: u32, path: &[u8]) -> Option<Hash> {
    if !path.len().is_multiple_of(32) || path.len() / 32 > MAX_DEPTH {
        return None;
    }
    let mut index = u64::from(index);
    let mut current = leaf;
    for sibling in path.chunks(32) {
        let sibling: &Hash = sibling.try_into().expect("32-byte chunk");
        current = if index & 1 == 0 {
            hash.node(&current, sibling)
        } else {
            hash.node(sibling, &current)
        };
        index >>= 1;
    }
    (index == 0).then_some(current)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_leaf_proves_into_the_root() {
        for hash in [TreeHash::Sha512_256, TreeHash::Sha512Prefix] {
            for size in [1usize, 2, 3, 5, 8, 17, 64] {
                let data: Vec<[u8; 4]> = (0..size as u32).map(u32::to_le_bytes).collect();
                let leaves: Vec<&[u8]> = data.iter().map(|d| &d[..]).collect();
                let tree = Tree::build(hash, &leaves);
                for (i, leaf) in leaves.iter().enumerate() {
                    let path = tree.path(i);
                    let root = root_from_path(hash, hash.leaf(leaf), i as u32, &path);
                    assert_eq!(root, Some(tree.root()), "size {size} leaf {i}");
                    let wrong = root_from_path(hash, hash.leaf(b"other"), i as u32, &path);
                    assert_ne!(wrong, Some(tree.root()));
                }
            }
        }
    }

    #[test]
    fn an_index_longer_than_the_path_is_refused() {
        let hash = TreeHash::Sha512_256;
        assert_eq!(root_from_path(hash, [0; 32], 1, &[]), None);
        assert_eq!(root_from_path(hash, [0; 32], 0, &[0; 31]), None);
    }

    #[test]
    fn sha512_256_is_not_truncated_sha512() {
        assert_ne!(
            TreeHash::Sha512_256.leaf(b"x"),
            TreeHash::Sha512Prefix.leaf(b"x")
        );
    }
}
