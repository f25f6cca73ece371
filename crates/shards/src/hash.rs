//! Block hashes and shard roots, as `welkin-object` defines them.

/// The hash that names a block.
pub(crate) fn block_hash(block: &[u8]) -> [u8; 32] {
    welkin_object::block_hash(block)
}

/// The root of a shard's Merkle tree over its block hashes; `None` for an empty list, which
/// names no shard.
pub(crate) fn shard_root(hashes: &[[u8; 32]]) -> Option<[u8; 32]> {
    (!hashes.is_empty()).then(|| welkin_object::shard_root(hashes))
}
