//! Reading a segment back: every block checked against its hash first, then erasure decoding
//! from `k` good blocks, then decryption. And repair: rebuilding blocks without decrypting.

use crate::{
    Layout, LayoutError, ObjectKey, block_hash, erasure, layout::TAG_BYTES, seal::SegmentCipher,
};
use zeroize::Zeroizing;

/// What was wrong with one shard's block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum BlockFault {
    /// Not given.
    Missing,
    /// Its hash is not the expected one.
    Corrupt,
    /// Its length is not the segment's block length.
    Length {
        /// The length given.
        found: usize,
        /// The segment's block length.
        expected: u32,
    },
}

/// Why a segment could not be read or rebuilt.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    /// The layout, size or segment index is out of bounds.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// `blocks` or `expected` does not have one entry per shard.
    #[error("segment {segment}: {found} {what} given, the layout has {expected} shards")]
    Count {
        /// The segment.
        segment: u64,
        /// `blocks` or `hashes`.
        what: &'static str,
        /// `k + m`.
        expected: usize,
        /// Entries given.
        found: usize,
    },
    /// Fewer than `k` blocks verify.
    #[error(
        "segment {segment}: only {good} of the {needed} blocks needed verify ({})",
        describe(faults)
    )]
    NotEnough {
        /// The segment.
        segment: u64,
        /// Blocks that verify.
        good: usize,
        /// `k`.
        needed: u16,
        /// Every shard whose block is missing or bad, in shard order.
        faults: Vec<(u16, BlockFault)>,
    },
    /// The decoded ciphertext does not authenticate under the key, index, final flag, layout
    /// and size.
    #[error("segment {segment} failed authentication")]
    Authentication {
        /// The segment.
        segment: u64,
    },
    /// Bytes after the ciphertext in the last data block are not zero.
    #[error("segment {segment}: the padding after the ciphertext is not zero")]
    Padding {
        /// The segment.
        segment: u64,
    },
    /// A wanted shard index is past the last shard.
    #[error("shard {shard} is out of range: the layout has {shards} shards")]
    ShardOutOfRange {
        /// The index asked for.
        shard: u16,
        /// `k + m`.
        shards: usize,
    },
    /// A rebuilt block does not match its expected hash: the stored blocks are not one
    /// codeword (a faulty encoder), or the expected hashes are not theirs.
    #[error("segment {segment}: the rebuilt block of shard {shard} does not match its hash")]
    Rebuilt {
        /// The segment.
        segment: u64,
        /// The shard whose rebuilt block is wrong.
        shard: u16,
    },
}

fn describe(faults: &[(u16, BlockFault)]) -> String {
    let parts: Vec<String> = faults
        .iter()
        .map(|(shard, fault)| match fault {
            BlockFault::Missing => format!("shard {shard} missing"),
            BlockFault::Corrupt => format!("shard {shard} corrupt"),
            BlockFault::Length { found, expected } => {
                format!("shard {shard} is {found} bytes, not {expected}")
            }
        })
        .collect();
    parts.join(", ")
}

/// A segment's block length and the good blocks to decode from (shard index, bytes).
type Verified<'a> = (usize, Vec<(usize, &'a [u8])>);

/// Checks every present block of a segment against its hash and returns the block length
/// and the first `k` good blocks (data blocks first: they need no decoding).
fn verified<'a>(
    layout: &Layout,
    size: u64,
    index: u64,
    blocks: &[Option<&'a [u8]>],
    expected: &[[u8; 32]],
) -> Result<Verified<'a>, DecodeError> {
    layout.validate_size(size)?;
    let block_bytes = layout.block_bytes(size, index)?;
    let shards = layout.shards();
    for (what, found) in [("blocks", blocks.len()), ("hashes", expected.len())] {
        if found != shards {
            return Err(DecodeError::Count {
                segment: index,
                what,
                expected: shards,
                found,
            });
        }
    }
    let mut good = Vec::with_capacity(shards);
    let mut faults = Vec::new();
    for (shard, (block, hash)) in blocks.iter().zip(expected).enumerate() {
        let fault = match block {
            None => BlockFault::Missing,
            Some(block) if block.len() != block_bytes as usize => BlockFault::Length {
                found: block.len(),
                expected: block_bytes,
            },
            Some(block) if &block_hash(block) != hash => BlockFault::Corrupt,
            Some(block) => {
                good.push((shard, *block));
                continue;
            }
        };
        faults.push((u16::try_from(shard).expect("at most 64 shards"), fault));
    }
    let k = usize::from(layout.k);
    if good.len() < k {
        return Err(DecodeError::NotEnough {
            segment: index,
            good: good.len(),
            needed: layout.k,
            faults,
        });
    }
    good.truncate(k);
    Ok((block_bytes as usize, good))
}

/// Decodes segment `index` of an object of `size` bytes from its blocks (one entry per
/// shard, `None` where absent) and each shard's expected block hash for this segment.
///
/// Every present block is checked against its hash before any decoding: bad ones are
/// ignored and named in the error if fewer than `k` remain. The ciphertext rebuilt from `k`
/// good blocks is then authenticated and decrypted; the plaintext is wiped when dropped.
pub fn decode_segment(
    layout: &Layout,
    key: &ObjectKey,
    size: u64,
    index: u64,
    blocks: &[Option<&[u8]>],
    expected: &[[u8; 32]],
) -> Result<Zeroizing<Vec<u8>>, DecodeError> {
    let (block_bytes, good) = verified(layout, size, index, blocks, expected)?;
    let (k, m) = (usize::from(layout.k), usize::from(layout.m));
    let plaintext = layout.segment_len(size, index)? as usize;
    let ciphertext = plaintext + TAG_BYTES as usize;
    let mut out = Zeroizing::new(vec![0u8; k * block_bytes]);
    for (shard, block) in &good {
        if *shard < k {
            out[shard * block_bytes..(shard + 1) * block_bytes].copy_from_slice(block);
        }
    }
    erasure::recover(k, m, block_bytes, &good, false, |shard, offset, piece| {
        out[shard * block_bytes + offset..][..piece.len()].copy_from_slice(piece);
    });
    if out[ciphertext..].iter().any(|byte| *byte != 0) {
        return Err(DecodeError::Padding { segment: index });
    }
    let last = index + 1 == layout.segments(size);
    SegmentCipher::new(key, layout, size)
        .open(index, last, &mut out[..ciphertext])
        .ok_or(DecodeError::Authentication { segment: index })?;
    out.truncate(plaintext);
    Ok(out)
}

/// Rebuilds the blocks of shards `wanted` for segment `index`, for repair: erasure decoding
/// only, never decryption, so it needs no key and sees no plaintext.
///
/// Inputs are checked against `expected` as in [`decode_segment`]; every block returned
/// (one per entry of `wanted`, in its order) matches its expected hash.
pub fn rebuild_blocks(
    layout: &Layout,
    size: u64,
    index: u64,
    blocks: &[Option<&[u8]>],
    expected: &[[u8; 32]],
    wanted: &[u16],
) -> Result<Vec<Vec<u8>>, DecodeError> {
    rebuild(layout, size, index, blocks, expected, wanted, true)
}

/// Rebuilds the blocks of shards `wanted` for segment `index` when their hashes are not
/// known (a lost shard's hash list is lost with it): as [`rebuild_blocks`], inputs checked,
/// but the rebuilt blocks are returned unchecked. The caller checks the rebuilt shard as a
/// whole against its root in the manifest before keeping it (the shard store does, when the
/// shard is finished).
pub fn rebuild_lost_blocks(
    layout: &Layout,
    size: u64,
    index: u64,
    blocks: &[Option<&[u8]>],
    expected: &[[u8; 32]],
    wanted: &[u16],
) -> Result<Vec<Vec<u8>>, DecodeError> {
    rebuild(layout, size, index, blocks, expected, wanted, false)
}

fn rebuild(
    layout: &Layout,
    size: u64,
    index: u64,
    blocks: &[Option<&[u8]>],
    expected: &[[u8; 32]],
    wanted: &[u16],
    check: bool,
) -> Result<Vec<Vec<u8>>, DecodeError> {
    let (block_bytes, good) = verified(layout, size, index, blocks, expected)?;
    let (k, m) = (usize::from(layout.k), usize::from(layout.m));
    if let Some(&shard) = wanted.iter().find(|&&shard| usize::from(shard) >= k + m) {
        return Err(DecodeError::ShardOutOfRange {
            shard,
            shards: k + m,
        });
    }
    let mut rebuilt: Vec<Option<Vec<u8>>> = vec![None; k + m];
    for (shard, block) in &good {
        rebuilt[*shard] = Some(block.to_vec());
    }
    let missing = |shard: u16| rebuilt[usize::from(shard)].is_none();
    if wanted.iter().any(|&shard| missing(shard)) {
        let parity = wanted
            .iter()
            .any(|&shard| missing(shard) && usize::from(shard) >= k);
        erasure::recover(k, m, block_bytes, &good, parity, |shard, offset, piece| {
            if wanted.contains(&u16::try_from(shard).expect("at most 64 shards")) {
                let block = rebuilt[shard].get_or_insert_with(|| vec![0; block_bytes]);
                block[offset..offset + piece.len()].copy_from_slice(piece);
            }
        });
    }
    wanted
        .iter()
        .map(|&shard| {
            let block = rebuilt[usize::from(shard)]
                .clone()
                .expect("every wanted block is present or rebuilt");
            if check && block_hash(&block) != expected[usize::from(shard)] {
                return Err(DecodeError::Rebuilt {
                    segment: index,
                    shard,
                });
            }
            Ok(block)
        })
        .collect()
}
