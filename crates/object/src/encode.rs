//! The streaming encoder: plaintext segments in, `k + m` hashed blocks per segment out.

use crate::{
    BLOCK_KEY, Layout, LayoutError, ObjectKey,
    erasure::{Parity, STRIPE_BYTES},
    layout::TAG_BYTES,
    seal::SegmentCipher,
    tree::shard_root,
};
use std::io::{self, Read};

/// One encoded segment: its `k` data blocks, then its `m` parity blocks, and their hashes.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EncodedSegment {
    /// The segment's index in the object.
    pub index: u64,
    /// `k + m` blocks, block `i` for shard `i`; all of [`Layout::block_bytes`] bytes.
    pub blocks: Vec<Vec<u8>>,
    /// `block_hash` of each block, in the same order.
    pub hashes: Vec<[u8; 32]>,
}

/// What a shard amounts to once every segment is encoded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ShardSummary {
    /// The root of the shard tree over `block_hashes`.
    pub root: [u8; 32],
    /// The hash of the shard's block in every segment, in segment order.
    pub block_hashes: Vec<[u8; 32]>,
}

/// Why encoding stopped.
#[derive(Debug, thiserror::Error)]
pub enum EncodeError {
    /// The layout or size is out of bounds.
    #[error(transparent)]
    Layout(#[from] LayoutError),
    /// A segment's plaintext has the wrong length for its index.
    #[error("segment {segment}: plaintext is {found} bytes, expected {expected}")]
    PlaintextLength {
        /// The segment being encoded.
        segment: u64,
        /// Its plaintext length under the layout and size.
        expected: u32,
        /// The length given.
        found: usize,
    },
    /// Every segment is already encoded.
    #[error("all {segments} segments are already encoded")]
    Finished {
        /// The object's segment count.
        segments: u64,
    },
    /// `finish` came before the last segment.
    #[error("only {encoded} of {segments} segments are encoded")]
    Unfinished {
        /// Segments encoded so far.
        encoded: u64,
        /// The object's segment count.
        segments: u64,
    },
    /// The reader failed.
    #[error("reading the object: {0}")]
    Read(io::Error),
    /// The reader ended before `size` bytes.
    #[error("the object ended after {read} of {size} bytes")]
    ShortRead {
        /// Bytes read.
        read: u64,
        /// Bytes promised.
        size: u64,
    },
    /// The reader has more than `size` bytes.
    #[error("the object is longer than {size} bytes")]
    LongRead {
        /// Bytes promised.
        size: u64,
    },
    /// The sink refused a segment.
    #[error("storing segment {segment}: {error}")]
    Sink {
        /// The segment the sink refused.
        segment: u64,
        /// Its error.
        error: io::Error,
    },
}

/// What encoding any one segment takes: the cipher, the parity coder and the geometry. The
/// sequential [`Encoder`] holds one; a parallel encode gives each thread its own.
pub(crate) struct SegmentCoder {
    layout: Layout,
    size: u64,
    segments: u64,
    cipher: SegmentCipher,
    parity: Parity,
}

impl SegmentCoder {
    pub(crate) fn new(layout: Layout, key: &ObjectKey, size: u64) -> Self {
        let full_block = layout.block_bytes_for(layout.segment_bytes) as usize;
        Self {
            layout,
            size,
            segments: layout.segments(size),
            cipher: SegmentCipher::new(key, &layout, size),
            parity: Parity::new(
                usize::from(layout.k),
                usize::from(layout.m),
                full_block.min(STRIPE_BYTES),
            ),
        }
    }

    /// Sizes `data` for segment `index` (its `k` data blocks back to back) and returns its
    /// plaintext length, or `None` past the last segment.
    pub(crate) fn size_buffer(&self, index: u64, data: &mut Vec<u8>) -> Option<usize> {
        let plaintext = self.layout.segment_len(self.size, index).ok()?;
        let block_bytes = self.layout.block_bytes_for(plaintext + TAG_BYTES) as usize;
        data.resize(usize::from(self.layout.k) * block_bytes, 0);
        Some(plaintext as usize)
    }

    /// Encodes segment `index`, whose plaintext is at the start of `data` (sized by
    /// [`SegmentCoder::size_buffer`]), into `out`, reusing its buffers. `data` is sealed
    /// in place.
    pub(crate) fn encode(&mut self, index: u64, data: &mut [u8], out: &mut EncodedSegment) {
        let (k, m) = (usize::from(self.layout.k), usize::from(self.layout.m));
        let plaintext = self
            .layout
            .segment_len(self.size, index)
            .expect("the caller sized the buffer for this index") as usize;
        let ciphertext = plaintext + TAG_BYTES as usize;
        let block_bytes = data.len() / k;
        let last = index + 1 == self.segments;
        self.cipher.seal(index, last, &mut data[..ciphertext]);
        data[ciphertext..].fill(0);

        out.index = index;
        out.blocks.resize_with(k + m, Vec::new);
        for block in &mut out.blocks {
            block.clear();
            block.reserve(block_bytes);
        }
        let mut hashers = vec![blake3::Hasher::new_keyed(&BLOCK_KEY); k + m];
        // Stripe by stripe, so that the coder's working space and the pieces being copied
        // and hashed stay in cache: a segment's blocks and coder space at once would not.
        let data = &*data;
        let (blocks, parity) = (&mut out.blocks, &mut self.parity);
        for offset in (0..block_bytes).step_by(STRIPE_BYTES) {
            let width = STRIPE_BYTES.min(block_bytes - offset);
            let piece = |i: usize| &data[i * block_bytes + offset..][..width];
            parity.encode(k, m, piece, |j, parity| {
                blocks[k + j].extend_from_slice(parity);
                hashers[k + j].update(parity);
            });
            for i in 0..k {
                blocks[i].extend_from_slice(piece(i));
                hashers[i].update(piece(i));
            }
        }
        out.hashes.clear();
        out.hashes
            .extend(hashers.iter().map(|hasher| *hasher.finalize().as_bytes()));
    }
}

/// The block hashes of every shard, gathered segment by segment in order.
pub(crate) struct ShardHashes(Vec<Vec<[u8; 32]>>);

impl ShardHashes {
    pub(crate) fn new(layout: &Layout, segments: u64) -> Self {
        let keep = usize::try_from(segments.min(1 << 16)).expect("small");
        Self(
            (0..layout.shards())
                .map(|_| Vec::with_capacity(keep))
                .collect(),
        )
    }

    pub(crate) fn push(&mut self, segment: &EncodedSegment) {
        for (shard, hash) in self.0.iter_mut().zip(&segment.hashes) {
            shard.push(*hash);
        }
    }

    pub(crate) fn summaries(self) -> Vec<ShardSummary> {
        self.0
            .into_iter()
            .map(|block_hashes| ShardSummary {
                root: shard_root(&block_hashes),
                block_hashes,
            })
            .collect()
    }
}

/// Encodes one object segment by segment: encrypts, erasure-codes and hashes each, and keeps
/// only its buffers and the block hashes (32 bytes per segment per shard) between segments.
pub struct Encoder {
    coder: SegmentCoder,
    next: u64,
    /// The segment's ciphertext and zero padding: its `k` data blocks back to back.
    data: Vec<u8>,
    /// Buffers of the previous segment, handed back by [`Encoder::recycle`].
    spare: Vec<Vec<u8>>,
    hashes: ShardHashes,
}

impl Encoder {
    /// An encoder for an object of `size` bytes under `layout` and `key`.
    pub fn new(layout: Layout, key: &ObjectKey, size: u64) -> Result<Self, EncodeError> {
        layout.validate_size(size)?;
        let full_block = layout.block_bytes_for(layout.segment_bytes) as usize;
        let coder = SegmentCoder::new(layout, key, size);
        let hashes = ShardHashes::new(&layout, coder.segments);
        Ok(Self {
            coder,
            next: 0,
            data: Vec::with_capacity(full_block * usize::from(layout.k)),
            spare: Vec::new(),
            hashes,
        })
    }

    /// The index of the next segment to encode.
    pub fn next_segment(&self) -> u64 {
        self.next
    }

    /// Plaintext bytes the next segment takes, or `None` once every segment is encoded.
    pub fn next_len(&self) -> Option<u32> {
        self.coder
            .layout
            .segment_len(self.coder.size, self.next)
            .ok()
    }

    /// Encodes the next segment from its `plaintext`, which must be exactly
    /// [`Layout::segment_len`] bytes.
    pub fn encode_segment(&mut self, plaintext: &[u8]) -> Result<EncodedSegment, EncodeError> {
        let mut segment = EncodedSegment {
            blocks: std::mem::take(&mut self.spare),
            ..EncodedSegment::default()
        };
        self.encode_into(plaintext, &mut segment)?;
        Ok(segment)
    }

    /// Takes back a segment's buffers for the next one (saves allocating and faulting in
    /// `k + m` blocks per segment).
    pub fn recycle(&mut self, segment: EncodedSegment) {
        self.spare = segment.blocks;
    }

    /// Encodes the next segment into `out`, reusing its buffers.
    pub fn encode_into(
        &mut self,
        plaintext: &[u8],
        out: &mut EncodedSegment,
    ) -> Result<(), EncodeError> {
        let segment = self.next;
        let buffer = self.next_buffer()?;
        if plaintext.len() != buffer.len() {
            return Err(EncodeError::PlaintextLength {
                segment,
                expected: buffer.len() as u32,
                found: plaintext.len(),
            });
        }
        buffer.copy_from_slice(plaintext);
        self.encode_buffer(out);
        Ok(())
    }

    /// The buffer the next segment's plaintext goes in (exactly its length), sized and ready
    /// for [`Encoder::encode_buffer`].
    fn next_buffer(&mut self) -> Result<&mut [u8], EncodeError> {
        let plaintext =
            self.coder
                .size_buffer(self.next, &mut self.data)
                .ok_or(EncodeError::Finished {
                    segments: self.coder.segments,
                })?;
        Ok(&mut self.data[..plaintext])
    }

    /// Encodes the plaintext [`Encoder::next_buffer`] holds.
    fn encode_buffer(&mut self, out: &mut EncodedSegment) {
        self.coder.encode(self.next, &mut self.data, out);
        self.hashes.push(out);
        self.next += 1;
    }

    /// Each shard's tree root and block hashes, once every segment is encoded.
    pub fn finish(self) -> Result<Vec<ShardSummary>, EncodeError> {
        if self.next != self.coder.segments {
            return Err(EncodeError::Unfinished {
                encoded: self.next,
                segments: self.coder.segments,
            });
        }
        Ok(self.hashes.summaries())
    }
}

/// Encodes an object of `size` bytes read from `reader`, handing each segment to `sink` in
/// order; returns every shard's summary.
///
/// The sink gets the segment by reference and its buffers are reused for the next segment;
/// a sink that keeps blocks takes them (`std::mem::take(&mut segment.blocks)`). Memory
/// stays at one segment of ciphertext, one of blocks and the coder's space for one 32 KiB
/// stripe, plus the block hashes (32 bytes per segment per shard), whatever the size. The
/// reader must hold exactly `size` bytes. [`encode_reader_parallel`] does the same on
/// several threads.
pub fn encode_reader(
    layout: Layout,
    key: &ObjectKey,
    size: u64,
    mut reader: impl Read,
    mut sink: impl FnMut(&mut EncodedSegment) -> io::Result<()>,
) -> Result<Vec<ShardSummary>, EncodeError> {
    let mut encoder = Encoder::new(layout, key, size)?;
    let mut segment = EncodedSegment::default();
    let mut read = 0u64;
    while encoder.next_len().is_some() {
        // The plaintext is read straight into the encoder's buffer and sealed in place.
        let buffer = encoder.next_buffer()?;
        fill(&mut reader, buffer, &mut read, size)?;
        encoder.encode_buffer(&mut segment);
        sink(&mut segment).map_err(|error| EncodeError::Sink {
            segment: segment.index,
            error,
        })?;
    }
    expect_end(&mut reader, size)?;
    encoder.finish()
}

/// Fills `buffer` from `reader`; `read` counts the object's bytes read so far.
pub(crate) fn fill(
    reader: &mut impl Read,
    buffer: &mut [u8],
    read: &mut u64,
    size: u64,
) -> Result<(), EncodeError> {
    let mut filled = 0;
    while filled < buffer.len() {
        match reader.read(&mut buffer[filled..]) {
            Ok(0) => return Err(EncodeError::ShortRead { read: *read, size }),
            Ok(n) => {
                filled += n;
                *read += n as u64;
            }
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(EncodeError::Read(error)),
        }
    }
    Ok(())
}

/// Checks that `reader` has nothing after the object's `size` bytes.
pub(crate) fn expect_end(reader: &mut impl Read, size: u64) -> Result<(), EncodeError> {
    let mut probe = [0u8; 1];
    loop {
        match reader.read(&mut probe) {
            Ok(0) => return Ok(()),
            Ok(_) => return Err(EncodeError::LongRead { size }),
            Err(error) if error.kind() == io::ErrorKind::Interrupted => {}
            Err(error) => return Err(EncodeError::Read(error)),
        }
    }
}
