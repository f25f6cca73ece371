//! Welkin objects on the client: encrypted segments, Reed-Solomon blocks, keyed BLAKE3
//! hashes, per-shard Merkle trees and audit proofs, with no I/O.
//!
//! # Format (version 1)
//!
//! An object of `size` bytes is stored under a [`Layout`] `(k, m, segment_bytes)` and a
//! fresh 32-byte [`ObjectKey`]. Nothing here reads a clock, a file or the OS's randomness:
//! the caller passes the key's generator and the bytes.
//!
//! **Segments.** The plaintext is cut in segments of `segment_bytes - 16` bytes (the last may
//! be shorter; an empty object is one empty segment), so that each segment's ciphertext, its
//! plaintext and 16-byte tag, is at most `segment_bytes` (64 KiB to 4 MiB, default 1 MiB).
//! Segments are read and written one at a time: memory stays at a few segments whatever the
//! size, and a range read ([`Layout::segment_range`]) decodes only the segments it touches.
//!
//! **Encryption.** Segment `i` is sealed with ChaCha20-Poly1305 under the object key:
//!
//! - nonce (12 bytes): `i` as a big-endian u64, three zero bytes, then the final flag
//!   (`1` on the object's last segment, `0` on the others);
//! - associated data: `"welkin/object-segment/v1" || k u16 || m u16 || segment_bytes u32 ||
//!   size u64` (big-endian).
//!
//! A segment decrypts only at its own index (reordering fails), a last segment only as the
//! last (dropping segments or marking an inner one final fails), and only under the layout
//! and size it was written for (cross-layout replay fails). The key encrypts one object only:
//! nonces are indices, so it must never be reused.
//!
//! **Blocks.** The ciphertext is zero-padded to `k` equal blocks whose length is a multiple
//! of 64 bytes ([`Layout::block_bytes`]; a small last segment has small blocks, never less
//! than 64 bytes), and `m` parity blocks are computed with Reed-Solomon over GF(2^16)
//! (`commonware_cryptography::reed_solomon`, commonware's vendored reed-solomon-simd). Any
//! `k` of a segment's `k + m` blocks rebuild it. Block `j` of every segment belongs to shard
//! `j`; a shard is its blocks in segment order, held by one node.
//!
//! **Hashes.** A block's hash is `blake3::keyed_hash(&BLOCK_KEY, block)` with
//! `BLOCK_KEY = blake3::derive_key("welkin/object-block/v1", b"")` ([`block_hash`]). Readers
//! check every block against its hash before decoding ([`decode_segment`]), so a corrupt block
//! is named and ignored and never reaches the decoder; repair ([`rebuild_blocks`]) checks its
//! inputs and outputs the same way and never decrypts.
//!
//! **Shard trees.** Each shard's block hashes are the leaves of a binary Merkle tree of RFC
//! 6962's shape (split at the largest power of two below the leaf count); an inner node is
//! `blake3::keyed_hash(&NODE_KEY, left || right)` with `NODE_KEY =
//! blake3::derive_key("welkin/object-shard-node/v1", b"")` ([`ShardTree`], [`shard_root`]).
//!
//! **Content id.** `blake3::keyed_hash(&CONTENT_KEY, 1u8 || k || m || segment_bytes || size ||
//! root_0 || ... || root_{k+m-1})` ([`content_id`]): it names exactly these shards.
//!
//! **Audits.** A 32-byte seed picks distinct 1 KiB chunks of a shard uniformly
//! ([`challenges`]). For each, the holder sends the chunk, the BLAKE3 chaining values of the
//! sibling subtrees up to the block hash (BLAKE3 is a Merkle tree over chunks of the same
//! shape), and the shard-tree path up to the root ([`prove`]); the verifier rebuilds the
//! root from them ([`verify`], [`verify_audit`]). [`AuditProof`] is the versioned,
//! bounded wire format.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod audit;
mod decode;
mod encode;
mod erasure;
mod hash;
mod layout;
mod parallel;
mod seal;
mod tree;

pub use audit::{
    AUDIT_PROOF_VERSION, AuditError, AuditProof, CHUNK_BYTES, MAX_PATH, MAX_SAMPLES, Sample,
    SampleProof, challenges, prove, verify, verify_audit,
};
pub use decode::{BlockFault, DecodeError, decode_segment, rebuild_blocks, rebuild_lost_blocks};
pub use encode::{EncodeError, EncodedSegment, Encoder, ShardSummary, encode_reader};
pub use hash::{
    BLOCK_KEY, CHALLENGE_KEY, CONTENT_ID_VERSION, CONTENT_KEY, NODE_KEY, block_hash, content_id,
    content_id_from_roots,
};
pub use layout::{
    BLOCK_ALIGN, DEFAULT_SEGMENT_BYTES, Layout, LayoutError, MAX_SEGMENT_BYTES, MAX_SEGMENTS,
    MAX_SHARDS, SEGMENT_ALIGN, TAG_BYTES,
};
pub use parallel::encode_reader_parallel;
pub use seal::{ObjectKey, SEGMENT_DOMAIN};
pub use tree::{ShardTree, shard_root};

#[cfg(test)]
mod tests;
