//! The keyed BLAKE3 hashes: of blocks, of shard-tree nodes, of the content id and of audit
//! challenges. Each has its own key, derived from its own context string, so no hash of one
//! kind can stand for another.

use crate::{Layout, ShardSummary};

/// `blake3::derive_key("welkin/object-block/v1", b"")`: the key of [`block_hash`].
pub const BLOCK_KEY: [u8; 32] = [
    0xfa, 0x98, 0x60, 0x4a, 0xc1, 0xfb, 0x90, 0xbe, 0x64, 0x52, 0xbe, 0xd7, 0x63, 0x07, 0x4c, 0x45,
    0x66, 0x13, 0xc7, 0x49, 0x40, 0x59, 0x99, 0x56, 0xee, 0x52, 0x1c, 0x75, 0x27, 0x0e, 0xed, 0xf8,
];
/// `blake3::derive_key("welkin/object-shard-node/v1", b"")`: the key of inner shard-tree
/// nodes.
pub const NODE_KEY: [u8; 32] = [
    0x67, 0x9f, 0xf3, 0x05, 0xb3, 0x68, 0xb9, 0x58, 0xaf, 0xa1, 0x37, 0x38, 0x35, 0x19, 0xa8, 0x4a,
    0xf5, 0xa4, 0xa7, 0x4e, 0xf4, 0x8e, 0x1a, 0x2e, 0x15, 0x2a, 0x2e, 0x75, 0xec, 0x69, 0x52, 0xd3,
];
/// `blake3::derive_key("welkin/object-content-id/v1", b"")`: the key of [`content_id`].
pub const CONTENT_KEY: [u8; 32] = [
    0xa0, 0x34, 0x6a, 0x04, 0xa5, 0x6c, 0x00, 0xbb, 0x94, 0x44, 0x00, 0xbf, 0x9c, 0x69, 0x6e, 0xba,
    0x24, 0x5c, 0xca, 0xde, 0xca, 0x6f, 0x27, 0x01, 0x5f, 0x80, 0xbb, 0x15, 0x41, 0xac, 0xdc, 0x12,
];
/// `blake3::derive_key("welkin/object-audit-challenge/v1", b"")`: the key of the challenge
/// stream.
pub const CHALLENGE_KEY: [u8; 32] = [
    0xd1, 0xaf, 0xe7, 0x45, 0xc3, 0xe3, 0x3c, 0xa9, 0x48, 0x9c, 0xa5, 0x97, 0x7b, 0xdd, 0x28, 0xb9,
    0x0b, 0xf1, 0x01, 0x25, 0xb1, 0xb6, 0xfb, 0x5a, 0x72, 0x64, 0x6b, 0x4b, 0xb1, 0xf4, 0x1c, 0x74,
];

/// The version byte that starts the content id's input.
pub const CONTENT_ID_VERSION: u8 = 1;

/// A block's hash: `blake3::keyed_hash(&BLOCK_KEY, block)`. Because it is plain keyed BLAKE3,
/// one 1 KiB chunk of a block can be proven against it (see [`crate::prove`]).
pub fn block_hash(block: &[u8]) -> [u8; 32] {
    *blake3::keyed_hash(&BLOCK_KEY, block).as_bytes()
}

/// The content id of an object: names exactly this layout, size and these shards.
///
/// `blake3::keyed_hash(&CONTENT_KEY, version 1 || k u16 || m u16 || segment_bytes u32 ||
/// size u64 || root of shard 0 || ... )`, integers big-endian.
pub fn content_id(layout: &Layout, size: u64, shards: &[ShardSummary]) -> [u8; 32] {
    let roots: Vec<[u8; 32]> = shards.iter().map(|shard| shard.root).collect();
    content_id_from_roots(layout, size, &roots)
}

/// [`content_id`] from the shard roots alone (as a manifest holds them).
pub fn content_id_from_roots(layout: &Layout, size: u64, roots: &[[u8; 32]]) -> [u8; 32] {
    let mut hasher = blake3::Hasher::new_keyed(&CONTENT_KEY);
    hasher.update(&[CONTENT_ID_VERSION]);
    hasher.update(&layout_bytes(layout, size));
    for root in roots {
        hasher.update(root);
    }
    *hasher.finalize().as_bytes()
}

/// `k u16 || m u16 || segment_bytes u32 || size u64`, big-endian: how the layout and size enter
/// the content id and every segment's associated data.
pub(crate) fn layout_bytes(layout: &Layout, size: u64) -> [u8; 16] {
    let mut out = [0u8; 16];
    out[0..2].copy_from_slice(&layout.k.to_be_bytes());
    out[2..4].copy_from_slice(&layout.m.to_be_bytes());
    out[4..8].copy_from_slice(&layout.segment_bytes.to_be_bytes());
    out[8..16].copy_from_slice(&size.to_be_bytes());
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_derived_from_their_context_strings() {
        let pairs = [
            (BLOCK_KEY, "welkin/object-block/v1"),
            (NODE_KEY, "welkin/object-shard-node/v1"),
            (CONTENT_KEY, "welkin/object-content-id/v1"),
            (CHALLENGE_KEY, "welkin/object-audit-challenge/v1"),
        ];
        for (key, context) in pairs {
            assert_eq!(key, blake3::derive_key(context, b""), "{context}");
        }
    }

    #[test]
    fn the_content_id_changes_with_every_input() {
        let layout = Layout::default_for(4);
        let roots = [[1u8; 32], [2; 32], [3; 32], [4; 32]];
        let id = content_id_from_roots(&layout, 10, &roots);
        assert_ne!(id, content_id_from_roots(&layout, 11, &roots));
        let other = Layout { m: 3, ..layout };
        assert_ne!(id, content_id_from_roots(&other, 10, &roots));
        let mut swapped = roots;
        swapped.swap(0, 1);
        assert_ne!(id, content_id_from_roots(&layout, 10, &swapped));
        assert_ne!(id, content_id_from_roots(&layout, 10, &roots[..3]));
    }
}
