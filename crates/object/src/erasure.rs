//! Reed-Solomon over GF(2^16): `commonware_cryptography::reed_solomon`, commonware's vendored
//! reed-solomon-simd (AVX2, AVX-512 with GFNI, Neon, chosen at run time).
//!
//! Callers check every input first (counts, indices, lengths that are non-zero multiples of 64),
//! so the coder's own errors here are broken invariants.

use commonware_cryptography::reed_solomon::{Decoder, Encoder, Error};
use std::{cell::RefCell, thread::LocalKey};

thread_local! {
    /// One decoder and one encoder per thread for the free functions: their working space
    /// (a few segments' worth) is reused instead of allocated and faulted in per segment.
    static DECODER: RefCell<Option<Decoder>> = const { RefCell::new(None) };
    static ENCODER: RefCell<Option<Encoder>> = const { RefCell::new(None) };
}

/// A parity encoder that keeps its working space between segments.
pub(crate) struct Parity {
    encoder: Encoder,
    shape: (usize, usize, usize),
}

impl Parity {
    pub(crate) fn new(k: usize, m: usize, block_bytes: usize) -> Self {
        Self {
            encoder: Encoder::new(k, m, block_bytes).expect("a validated layout is supported"),
            shape: (k, m, block_bytes),
        }
    }

    /// Computes the `m` parity pieces of `k` equal data pieces (`original(i)` for `i < k`)
    /// and hands each to `out(j, parity)`. Coding blocks stripe by stripe gives the same bytes
    /// as coding them whole when every stripe but the last is a multiple of 64 bytes.
    pub(crate) fn encode<'a>(
        &mut self,
        k: usize,
        m: usize,
        original: impl Fn(usize) -> &'a [u8],
        mut out: impl FnMut(usize, &[u8]),
    ) {
        let width = original(0).len();
        if self.shape != (k, m, width) {
            self.encoder
                .reset(k, m, width)
                .expect("a validated layout is supported");
            self.shape = (k, m, width);
        }
        for i in 0..k {
            self.encoder
                .add_original_shard(original(i))
                .expect("k pieces of the configured length");
        }
        let encoded = self.encoder.encode().expect("all k originals were added");
        for j in 0..m {
            out(j, encoded.recovery(j).expect("j < m"));
        }
    }
}

/// Bytes of each block coded at a time: a multiple of 64 (so striped coding gives the bytes
/// whole-block coding would) and of BLAKE3's 16-chunk SIMD batch. Whole blocks of a 1 MiB
/// segment and the coder's working space for them (twice the next power of two of `k + m`
/// blocks) would not stay in cache; stripes do.
pub(crate) const STRIPE_BYTES: usize = 32 * 1024;

/// Rebuilds the missing blocks of a segment from exactly `k` blocks `present` (shard index,
/// bytes; indices distinct and below `k + m`, every block `block_bytes` long). Hands every
/// missing data block, and every missing parity block if `parity`, to
/// `out(shard, offset, piece)` one stripe at a time.
pub(crate) fn recover(
    k: usize,
    m: usize,
    block_bytes: usize,
    present: &[(usize, &[u8])],
    parity: bool,
    mut out: impl FnMut(usize, usize, &[u8]),
) {
    debug_assert_eq!(present.len(), k);
    let stripe = STRIPE_BYTES.min(block_bytes);
    let stripes = (0..block_bytes)
        .step_by(stripe)
        .map(move |offset| (offset, stripe.min(block_bytes - offset)));
    let all_data = present.iter().all(|(shard, _)| *shard < k);
    if all_data {
        // Nothing to decode: the data blocks are all here, and parity is a fresh encode.
        if !parity {
            return;
        }
        let mut sorted: Vec<_> = present.to_vec();
        sorted.sort_by_key(|(shard, _)| *shard);
        with_cached(
            &ENCODER,
            Encoder::new,
            Encoder::reset,
            (k, m, stripe),
            |encoder| {
                let mut configured = stripe;
                for (offset, width) in stripes {
                    if width != configured {
                        encoder
                            .reset(k, m, width)
                            .expect("a validated layout is supported");
                        configured = width;
                    }
                    for (_, block) in &sorted {
                        let piece = &block[offset..offset + width];
                        encoder.add_original_shard(piece).expect("k pieces");
                    }
                    let encoded = encoder.encode().expect("all k originals were added");
                    for j in 0..m {
                        out(k + j, offset, encoded.recovery(j).expect("j < m"));
                    }
                }
            },
        );
        return;
    }
    with_cached(
        &DECODER,
        Decoder::new,
        Decoder::reset,
        (k, m, stripe),
        |decoder| {
            let mut configured = stripe;
            for (offset, width) in stripes {
                if width != configured {
                    decoder
                        .reset(k, m, width)
                        .expect("a validated layout is supported");
                    configured = width;
                }
                for (shard, block) in present {
                    let piece = &block[offset..offset + width];
                    if *shard < k {
                        decoder.add_original_shard(*shard, piece)
                    } else {
                        decoder.add_recovery_shard(*shard - k, piece)
                    }
                    .expect("distinct shards of the configured length");
                }
                if parity {
                    let decoded = decoder
                        .decode_with_recovery()
                        .expect("k distinct shards decode")
                        .expect("a data block is missing");
                    for (i, piece) in decoded.original_iter() {
                        out(i, offset, piece);
                    }
                    for (j, piece) in decoded.recovery_iter() {
                        out(k + j, offset, piece);
                    }
                } else {
                    let decoded = decoder
                        .decode()
                        .expect("k distinct shards decode")
                        .expect("a data block is missing");
                    for (i, piece) in decoded.original_iter() {
                        out(i, offset, piece);
                    }
                }
            }
        },
    );
}

type Shape = (usize, usize, usize);

/// Runs `run` on this thread's coder in `cell`, made or reset for `shape`.
fn with_cached<C>(
    cell: &'static LocalKey<RefCell<Option<C>>>,
    new: fn(usize, usize, usize) -> Result<C, Error>,
    reset: fn(&mut C, usize, usize, usize) -> Result<(), Error>,
    (k, m, block_bytes): Shape,
    run: impl FnOnce(&mut C),
) {
    cell.with_borrow_mut(|cached| {
        let coder = match cached {
            Some(coder) => {
                reset(coder, k, m, block_bytes).expect("a validated layout is supported");
                coder
            }
            None => cached.insert(new(k, m, block_bytes).expect("a validated layout is supported")),
        };
        run(coder);
    });
}

#[cfg(test)]
mod tests {
    use commonware_cryptography::reed_solomon::{Decoder, Encoder};

    #[test]
    fn every_layout_within_the_limits_is_supported() {
        for k in 1..=63usize {
            for m in 1..=(64 - k) {
                assert!(Encoder::supports(k, m), "({k}, {m})");
                assert!(Decoder::supports(k, m), "({k}, {m})");
            }
        }
    }
}
