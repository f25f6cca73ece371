//! Audits: proof that a node holds a shard, sampled by unbiasable randomness.
//!
//! A challenge picks 1 KiB chunks of a shard's blocks ([`challenges`], from a 32-byte seed the
//! cluster derives from its threshold randomness for one shard and round). The holder answers
//! each with a [`SampleProof`]: the chunk, the BLAKE3 chaining values that lead from the chunk
//! to its block's hash (BLAKE3 is itself a Merkle tree over 1 KiB chunks), and the shard-tree
//! path from that block hash to the shard root in the manifest. Anyone with the root checks it
//! ([`verify`], [`verify_audit`]) without the rest of the shard.

mod challenge;
mod codec;
mod proof;

pub use challenge::{MAX_SAMPLES, Sample, challenges};
pub use codec::{AUDIT_PROOF_VERSION, MAX_PATH};
pub use proof::{CHUNK_BYTES, prove, verify};

use crate::{Layout, LayoutError};

/// One sampled chunk and the paths that prove it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SampleProof {
    /// The segment (the block's position in the shard).
    pub segment: u64,
    /// The chunk's index in the block.
    pub chunk: u32,
    /// The chunk's bytes: 1024, or fewer for a block's last chunk.
    pub data: Vec<u8>,
    /// The chaining values of the sibling subtrees from the chunk up to the block's hash
    /// (leaf to root); empty for a block of one chunk.
    pub block_path: Vec<[u8; 32]>,
    /// The shard-tree path from the block's hash to the shard root (leaf to root).
    pub shard_path: Vec<[u8; 32]>,
}

/// A holder's answer to one challenge: one proof per sample, in challenge order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditProof {
    /// The format's version: [`AUDIT_PROOF_VERSION`].
    pub version: u8,
    /// One proof per challenged sample.
    pub samples: Vec<SampleProof>,
}

/// Why an audit proof, or a request for one, is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    /// The layout or size is out of bounds.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// More samples asked for than a proof may carry.
    #[error("samples must be at most {MAX_SAMPLES}, got {0}")]
    TooManySamples(u16),
    /// A proof of another version.
    #[error("audit proof version {0} is not supported (this reads version {AUDIT_PROOF_VERSION})")]
    Version(u8),
    /// The proof has another number of samples than the challenge.
    #[error("the proof answers {found} samples, the challenge has {expected}")]
    SampleCount {
        /// Samples challenged.
        expected: usize,
        /// Samples answered.
        found: usize,
    },
    /// A sample answers another chunk than the one challenged.
    #[error(
        "the proof answers segment {found_segment} chunk {found_chunk}, the challenge was \
         segment {segment} chunk {chunk}"
    )]
    WrongSample {
        /// The challenged segment.
        segment: u64,
        /// The challenged chunk.
        chunk: u32,
        /// The answered segment.
        found_segment: u64,
        /// The answered chunk.
        found_chunk: u32,
    },
    /// A segment past the shard's last block.
    #[error("segment {segment} is out of range: the shard has {blocks} blocks")]
    SegmentOutOfRange {
        /// The segment asked for.
        segment: u64,
        /// Blocks in the shard.
        blocks: u64,
    },
    /// A block length that no block has (zero, or not a multiple of 64).
    #[error("block length {0} is not a positive multiple of 64")]
    BlockLength(u64),
    /// A chunk past the block's last chunk.
    #[error("segment {segment}: chunk {chunk} is out of range: the block has {chunks} chunks")]
    ChunkOutOfRange {
        /// The segment.
        segment: u64,
        /// The chunk asked for.
        chunk: u32,
        /// Chunks in the block.
        chunks: u64,
    },
    /// The chunk's data has the wrong length.
    #[error("segment {segment} chunk {chunk}: {found} bytes of data, the chunk has {expected}")]
    DataLength {
        /// The segment.
        segment: u64,
        /// The chunk.
        chunk: u32,
        /// The chunk's length.
        expected: usize,
        /// The data's length.
        found: usize,
    },
    /// The block path has the wrong length for the chunk and block.
    #[error(
        "segment {segment} chunk {chunk}: the block path has {found} entries, which do not fit the block"
    )]
    BlockPath {
        /// The segment.
        segment: u64,
        /// The chunk.
        chunk: u32,
        /// Entries in the path.
        found: usize,
    },
    /// The chunk and paths do not lead to the shard root.
    #[error("segment {segment} chunk {chunk}: the proof does not lead to the shard root")]
    Root {
        /// The segment.
        segment: u64,
        /// The chunk.
        chunk: u32,
    },
}

/// Checks a whole audit answer: the challenge drawn from `seed` for `samples` samples of a
/// shard of an object of `size` bytes under `layout`, against the shard's `root`.
pub fn verify_audit(
    root: &[u8; 32],
    layout: &Layout,
    size: u64,
    seed: &[u8; 32],
    samples: u16,
    proof: &AuditProof,
) -> Result<(), AuditError> {
    if proof.version != AUDIT_PROOF_VERSION {
        return Err(AuditError::Version(proof.version));
    }
    let challenged = challenges(seed, layout, size, samples)?;
    if challenged.len() != proof.samples.len() {
        return Err(AuditError::SampleCount {
            expected: challenged.len(),
            found: proof.samples.len(),
        });
    }
    let blocks = layout.segments(size);
    for (sample, answer) in challenged.iter().zip(&proof.samples) {
        let block_len = layout.block_bytes(size, sample.segment)?;
        verify(root, blocks, u64::from(block_len), sample, answer)?;
    }
    Ok(())
}
