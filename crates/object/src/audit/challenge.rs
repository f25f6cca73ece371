//! Which chunks a challenge samples: uniform over every chunk of the shard, distinct, drawn
//! from a BLAKE3 stream keyed under [`CHALLENGE_KEY`] with the seed as input.

use super::{AuditError, proof::CHUNK_BYTES};
use crate::{Layout, hash::CHALLENGE_KEY};

/// The most samples one challenge (and one proof) holds.
pub const MAX_SAMPLES: u16 = 256;
/// Draws before sampling gives up on finding more distinct chunks. With at most 256 samples
/// out of more than 256 chunks, needing this many has probability far below 2^-1000; the
/// bound only keeps the loop finite, and is the same on every node.
const MAX_DRAWS: u32 = 1 << 16;

/// One challenged chunk: chunk `chunk` of the shard's block in segment `segment`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Sample {
    /// The segment (the block's position in the shard).
    pub segment: u64,
    /// The 1 KiB chunk of that block.
    pub chunk: u32,
}

/// The chunks a challenge from `seed` samples in one shard of an object of `size` bytes under
/// `layout`: `samples` distinct chunks (every chunk if the shard has no more than that),
/// uniform over the shard's chunks, in draw order.
///
/// Every node computes the same list from the same seed. The stream is
/// `blake3::Hasher::new_keyed(&CHALLENGE_KEY).update(seed).finalize_xof()`, read 8 bytes at a
/// time as big-endian integers; one above the largest multiple of the chunk count is rejected
/// so that no chunk is likelier than another. Derive the seed per shard and round.
pub fn challenges(
    seed: &[u8; 32],
    layout: &Layout,
    size: u64,
    samples: u16,
) -> Result<Vec<Sample>, AuditError> {
    if samples > MAX_SAMPLES {
        return Err(AuditError::TooManySamples(samples));
    }
    layout.validate_size(size)?;
    let segments = layout.segments(size);
    let full = u64::from(layout.block_bytes(size, 0)?).div_ceil(CHUNK_BYTES);
    let last = u64::from(layout.block_bytes(size, segments - 1)?).div_ceil(CHUNK_BYTES);
    let inner = (segments - 1) * full;
    let total = inner + last;
    let at = |index: u64| {
        let segment = (index / full).min(segments - 1);
        let chunk = index - segment * full;
        Sample {
            segment,
            chunk: u32::try_from(chunk).expect("a block has at most 4096 chunks"),
        }
    };
    if total <= u64::from(samples) {
        return Ok((0..total).map(at).collect());
    }
    let limit = u64::MAX - u64::MAX % total;
    let mut stream = blake3::Hasher::new_keyed(&CHALLENGE_KEY)
        .update(seed)
        .finalize_xof();
    let mut chosen = Vec::with_capacity(usize::from(samples));
    for _ in 0..MAX_DRAWS {
        if chosen.len() == usize::from(samples) {
            break;
        }
        let mut draw = [0u8; 8];
        stream.fill(&mut draw);
        let draw = u64::from_be_bytes(draw);
        if draw >= limit {
            continue;
        }
        let sample = at(draw % total);
        if !chosen.contains(&sample) {
            chosen.push(sample);
        }
    }
    Ok(chosen)
}
