//! Whole-path tests: encode, lose and corrupt blocks, decode, rebuild; and the frozen format.

mod audits;
mod parallel;
mod paths;

use crate::{EncodedSegment, Layout, ObjectKey, ShardSummary, encode_reader};
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng as _};

/// 64 KiB segments keep the tests fast.
const SEGMENT: u32 = 64 * 1024;

fn layout(k: u16, m: u16) -> Layout {
    Layout {
        k,
        m,
        segment_bytes: SEGMENT,
    }
}

fn key(seed: u64) -> ObjectKey {
    ObjectKey::generate(&mut ChaCha20Rng::seed_from_u64(seed))
}

fn plaintext(size: u64, seed: u8) -> Vec<u8> {
    (0..size)
        .map(|i| (i as u8).wrapping_mul(31).wrapping_add(seed) ^ (i >> 8) as u8)
        .collect()
}

/// An encoded object: every segment's blocks kept.
struct Stored {
    layout: Layout,
    size: u64,
    segments: Vec<EncodedSegment>,
    shards: Vec<ShardSummary>,
}

impl Stored {
    fn new(layout: Layout, key: &ObjectKey, data: &[u8]) -> Self {
        let mut segments = Vec::new();
        let shards = encode_reader(layout, key, data.len() as u64, data, |segment| {
            segments.push(std::mem::take(segment));
            Ok(())
        })
        .expect("encodes");
        Self {
            layout,
            size: data.len() as u64,
            segments,
            shards,
        }
    }

    /// Each shard's expected block hash in `segment`.
    fn expected(&self, segment: u64) -> Vec<[u8; 32]> {
        self.shards
            .iter()
            .map(|shard| shard.block_hashes[segment as usize])
            .collect()
    }

    /// The blocks of `segment`, with only the shards in `present`.
    fn blocks(&self, segment: u64, present: &[usize]) -> Vec<Option<&[u8]>> {
        (0..self.layout.shards())
            .map(|shard| {
                present
                    .contains(&shard)
                    .then(|| self.segments[segment as usize].blocks[shard].as_slice())
            })
            .collect()
    }
}
