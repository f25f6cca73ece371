//! Block hashes and shard roots.
//!
//! These are the definitions `welkin-object` owns; they live here until that crate lands and
//! are then replaced by `welkin_object::{block_hash, shard_root}`. Keep them byte-for-byte
//! identical to its specification.

use std::sync::LazyLock;

/// Key for hashing one block, domain separated from every other hash in Welkin.
static BLOCK_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("welkin/object-block/v1", b""));
/// Key for hashing two children into an inner node of a shard's Merkle tree.
static NODE_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("welkin/object-shard-node/v1", b""));

/// The hash that names a block.
pub(crate) fn block_hash(block: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(&BLOCK_KEY, block).as_bytes()
}

/// The root of a shard's Merkle tree over its block hashes, in RFC 6962's shape: the leaves
/// are the block hashes themselves, a tree of n > 1 leaves splits at the largest power of two
/// smaller than n, and a single leaf is its own root. `None` for an empty list, which names
/// no shard.
pub(crate) fn shard_root(hashes: &[[u8; 32]]) -> Option<[u8; 32]> {
    match hashes.len() {
        0 => None,
        1 => Some(hashes[0]),
        n => {
            let split = split_point(n);
            let left = shard_root(&hashes[..split]).expect("left half is not empty");
            let right = shard_root(&hashes[split..]).expect("right half is not empty");
            let mut both = [0u8; 64];
            both[..32].copy_from_slice(&left);
            both[32..].copy_from_slice(&right);
            Some(*blake3::keyed_hash(&NODE_KEY, &both).as_bytes())
        }
    }
}

/// The largest power of two smaller than `n` (n >= 2).
fn split_point(n: usize) -> usize {
    debug_assert!(n >= 2);
    let below = n - 1;
    1 << (usize::BITS - 1 - below.leading_zeros())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn node(left: [u8; 32], right: [u8; 32]) -> [u8; 32] {
        let mut both = [0u8; 64];
        both[..32].copy_from_slice(&left);
        both[32..].copy_from_slice(&right);
        *blake3::keyed_hash(
            &blake3::derive_key("welkin/object-shard-node/v1", b""),
            &both,
        )
        .as_bytes()
    }

    #[test]
    fn split_is_largest_power_of_two_below() {
        let expected = [(2, 1), (3, 2), (4, 2), (5, 4), (8, 4), (9, 8), (1025, 1024)];
        for (n, split) in expected {
            assert_eq!(split_point(n), split, "n = {n}");
        }
    }

    #[test]
    fn root_has_rfc6962_shape() {
        let leaves: Vec<[u8; 32]> = (0u8..5).map(|i| block_hash(&[i; 64])).collect();
        assert_eq!(shard_root(&[]), None);
        assert_eq!(shard_root(&leaves[..1]), Some(leaves[0]));
        let left = node(node(leaves[0], leaves[1]), node(leaves[2], leaves[3]));
        assert_eq!(shard_root(&leaves), Some(node(left, leaves[4])));
        let three = node(node(leaves[0], leaves[1]), leaves[2]);
        assert_eq!(shard_root(&leaves[..3]), Some(three));
    }

    #[test]
    fn block_hash_is_keyed_and_domain_separated() {
        let key = blake3::derive_key("welkin/object-block/v1", b"");
        assert_eq!(
            block_hash(b"abc"),
            *blake3::keyed_hash(&key, b"abc").as_bytes()
        );
        assert_ne!(block_hash(b"abc"), *blake3::hash(b"abc").as_bytes());
    }
}
