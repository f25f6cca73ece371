//! Proving and checking one sampled chunk.
//!
//! A block hash is `blake3::keyed_hash(&BLOCK_KEY, block)`, and BLAKE3 hashes a message as a
//! binary tree over its 1 KiB chunks with the same shape as the shard tree (split at the
//! largest power of two below the chunk count). A chunk's chaining value is its hash as a
//! non-root node at its offset; two children merge into a parent; the top merge carries
//! BLAKE3's root flag and gives the block hash. `blake3::hazmat` exposes exactly these steps.

use super::{AuditError, Sample, SampleProof};
use crate::{
    BLOCK_KEY, ShardTree,
    layout::BLOCK_ALIGN,
    tree::{fold_path, split},
};
use blake3::hazmat::{HasherExt as _, Mode, merge_subtrees_non_root, merge_subtrees_root};

/// BLAKE3's chunk: the unit a sample proves.
pub const CHUNK_BYTES: u64 = blake3::CHUNK_LEN as u64;

/// Proves `sample` from the holder's `block` (the shard's block in that segment) and its
/// shard `tree`.
pub fn prove(sample: &Sample, block: &[u8], tree: &ShardTree) -> Result<SampleProof, AuditError> {
    let shard_path = tree
        .path(sample.segment)
        .ok_or(AuditError::SegmentOutOfRange {
            segment: sample.segment,
            blocks: tree.leaves().len() as u64,
        })?;
    let chunks = chunk_count(block.len() as u64)?;
    let chunk = u64::from(sample.chunk);
    if chunk >= chunks {
        return Err(AuditError::ChunkOutOfRange {
            segment: sample.segment,
            chunk: sample.chunk,
            chunks,
        });
    }
    let start = (chunk * CHUNK_BYTES) as usize;
    let end = (start + CHUNK_BYTES as usize).min(block.len());
    let mut block_path = Vec::new();
    siblings(block, chunk, 0, chunks, &mut block_path);
    Ok(SampleProof {
        segment: sample.segment,
        chunk: sample.chunk,
        data: block[start..end].to_vec(),
        block_path,
        shard_path,
    })
}

/// Appends, leaf to root, the chaining values of the siblings on the way from `chunk` up to
/// the subtree of chunks `lo..hi`.
fn siblings(block: &[u8], chunk: u64, lo: u64, hi: u64, out: &mut Vec<[u8; 32]>) {
    if hi - lo == 1 {
        return;
    }
    let mid = lo + split(hi - lo);
    if chunk < mid {
        siblings(block, chunk, lo, mid, out);
        out.push(subtree(block, mid, hi));
    } else {
        siblings(block, chunk, mid, hi, out);
        out.push(subtree(block, lo, mid));
    }
}

/// The chaining value of chunks `lo..hi` of `block`.
fn subtree(block: &[u8], lo: u64, hi: u64) -> [u8; 32] {
    let start = (lo * CHUNK_BYTES) as usize;
    let end = ((hi * CHUNK_BYTES) as usize).min(block.len());
    blake3::Hasher::new_keyed(&BLOCK_KEY)
        .set_input_offset(lo * CHUNK_BYTES)
        .update(&block[start..end])
        .finalize_non_root()
}

fn chunk_count(block_len: u64) -> Result<u64, AuditError> {
    if block_len == 0 || !block_len.is_multiple_of(u64::from(BLOCK_ALIGN)) {
        return Err(AuditError::BlockLength(block_len));
    }
    Ok(block_len.div_ceil(CHUNK_BYTES))
}

/// Checks one sample's proof against the shard `root`, for a shard of `blocks_in_shard`
/// blocks whose block in the sample's segment is `block_len` bytes.
pub fn verify(
    root: &[u8; 32],
    blocks_in_shard: u64,
    block_len: u64,
    sample: &Sample,
    proof: &SampleProof,
) -> Result<(), AuditError> {
    let (segment, chunk) = (sample.segment, sample.chunk);
    if (proof.segment, proof.chunk) != (segment, chunk) {
        return Err(AuditError::WrongSample {
            segment,
            chunk,
            found_segment: proof.segment,
            found_chunk: proof.chunk,
        });
    }
    if segment >= blocks_in_shard {
        return Err(AuditError::SegmentOutOfRange {
            segment,
            blocks: blocks_in_shard,
        });
    }
    let chunks = chunk_count(block_len)?;
    let index = u64::from(chunk);
    if index >= chunks {
        return Err(AuditError::ChunkOutOfRange {
            segment,
            chunk,
            chunks,
        });
    }
    let expected = (block_len - index * CHUNK_BYTES).min(CHUNK_BYTES) as usize;
    if proof.data.len() != expected {
        return Err(AuditError::DataLength {
            segment,
            chunk,
            expected,
            found: proof.data.len(),
        });
    }
    let bad_path = || AuditError::BlockPath {
        segment,
        chunk,
        found: proof.block_path.len(),
    };
    let block_hash = if chunks == 1 {
        // A one-chunk block: its hash is the chunk's own root output.
        if !proof.block_path.is_empty() {
            return Err(bad_path());
        }
        crate::block_hash(&proof.data)
    } else {
        let leaf = blake3::Hasher::new_keyed(&BLOCK_KEY)
            .set_input_offset(index * CHUNK_BYTES)
            .update(&proof.data)
            .finalize_non_root();
        let mode = Mode::KeyedHash(&BLOCK_KEY);
        fold_path(
            index,
            chunks,
            leaf,
            &proof.block_path,
            |left, right, top| {
                if top {
                    *merge_subtrees_root(left, right, mode).as_bytes()
                } else {
                    merge_subtrees_non_root(left, right, mode)
                }
            },
        )
        .ok_or_else(bad_path)?
    };
    if !ShardTree::verify_path(
        root,
        blocks_in_shard,
        segment,
        &block_hash,
        &proof.shard_path,
    ) {
        return Err(AuditError::Root { segment, chunk });
    }
    Ok(())
}
