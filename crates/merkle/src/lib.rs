//! RFC 6962 Merkle tree hashing, inclusion and consistency proofs, and C2SP tlog tile math.
//!
//! A transparency log is an append-only list of entries committed to by the Merkle Tree Hash
//! (MTH) of RFC 6962 section 2.1, here with SHA-256 as RFC 9162 and C2SP tlog-tiles require. Two
//! kinds of proof make the log auditable without downloading it:
//!
//! - an *inclusion proof* shows that one entry is at a given index of the tree a root commits
//!   to ([`inclusion_proof`], [`verify_inclusion`]);
//! - a *consistency proof* shows that a newer tree is an append-only extension of an older one
//!   ([`consistency_proof`], [`verify_consistency`]).
//!
//! Proofs are produced from any [`HashReader`], which hands out the hashes of *perfect* subtrees
//! addressed as (level, index). Those hashes never change once a subtree is complete, which is
//! what lets them be cached in memory ([`MemoryTree`]) or served as immutable C2SP tlog tiles
//! ([`Tile`], [`tile_hashes`]). Verification needs only the proof, the sizes and the roots.
//!
//! Everything here is a pure function of its arguments: no I/O, no clocks, no randomness.
//!
//! ```
//! use welkin_merkle::{MemoryTree, consistency_proof, inclusion_proof, leaf_hash};
//! use welkin_merkle::{verify_consistency, verify_inclusion};
//!
//! let mut tree = MemoryTree::new();
//! for i in 0..10u32 {
//!     tree.append_entry(&i.to_be_bytes());
//! }
//! let old_root = welkin_merkle::root_at(&tree, 6)?;
//!
//! let proof = inclusion_proof(&tree, 3, tree.size())?;
//! verify_inclusion(&leaf_hash(&3u32.to_be_bytes()), 3, tree.size(), &proof, &tree.root())?;
//!
//! let proof = consistency_proof(&tree, 6, tree.size())?;
//! verify_consistency(6, tree.size(), &old_root, &tree.root(), &proof)?;
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

mod hash;
mod proof;
mod tiles;
mod tree;

#[cfg(test)]
mod reference;

pub use hash::{HASH_SIZE, Hash, empty_root, leaf_hash, node_hash, root};
pub use proof::{
    VerifyError, consistency_proof, inclusion_proof, root_from_inclusion_proof, verify_consistency,
    verify_inclusion,
};
pub use tiles::{
    EntryBundle, MAX_TILE_LEVEL, TILE_HEIGHT, TILE_WIDTH, Tile, TileError, TilePath,
    entry_bundles_for_size, full_tile_count, parse_tile_path, partial_tile, tile_hashes,
    tiles_at_level, tiles_for_size,
};
pub use tree::{Error, HashReader, MemoryTree, root_at};
