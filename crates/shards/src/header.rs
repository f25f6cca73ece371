//! The shard file header: what it holds, how it is encoded and which values are valid.

use std::sync::LazyLock;

use crate::ShardId;

/// Bytes before a shard file's hash list.
pub const HEADER_LEN: usize = 128;
/// Bytes of one block hash in the hash list.
pub const HASH_LEN: usize = 32;
/// The first eight bytes of every shard file.
pub const MAGIC: [u8; 8] = *b"WELKSHRD";
/// The format version this crate writes and the only one it reads.
pub const FORMAT_VERSION: u16 = 1;
/// Every block length is a multiple of this (the erasure code's symbol alignment).
pub const BLOCK_ALIGN: u32 = 64;
/// The most blocks one shard may have: bounds the hash list read into memory (32 MiB).
pub const MAX_BLOCKS: u32 = 1 << 20;
/// The longest block the format allows: bounds one read's buffer (64 MiB).
pub const MAX_BLOCK_LEN: u32 = 64 << 20;

/// Bytes the header checksum covers; the checksum fills the rest.
const CHECKED_LEN: usize = HEADER_LEN - 8;
/// Key of the header checksum, so a header is never mistaken for any other hashed thing.
static HEADER_KEY: LazyLock<[u8; 32]> =
    LazyLock::new(|| blake3::derive_key("welkin/shard-file-header/v1", b""));

/// A shard's shape: how many blocks it has and how long they are.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Geometry {
    /// Number of blocks, one per segment.
    pub(crate) block_count: u32,
    /// Length of every block but the last.
    pub(crate) block_len: u32,
    /// Length of the last block (at most `block_len`).
    pub(crate) final_block_len: u32,
}

/// Why a shard's shape is not one the format allows.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum GeometryError {
    /// No blocks, or more than [`MAX_BLOCKS`].
    #[error("block count {0} is outside 1..={MAX_BLOCKS}")]
    BlockCount(u64),
    /// A block length that is zero, too long or not a multiple of [`BLOCK_ALIGN`].
    #[error("block length {0} is not a nonzero multiple of {BLOCK_ALIGN} up to {MAX_BLOCK_LEN}")]
    BlockLen(u32),
    /// A final block length that is zero, unaligned or longer than the others.
    #[error(
        "final block length {final_len} is not a nonzero multiple of {BLOCK_ALIGN} up to the \
         block length {block_len}"
    )]
    FinalBlockLen {
        /// The final block's length.
        final_len: u32,
        /// The other blocks' length.
        block_len: u32,
    },
}

impl Geometry {
    /// Checks a shape against the format's limits.
    pub(crate) fn new(
        block_count: u64,
        block_len: u32,
        final_block_len: u32,
    ) -> Result<Self, GeometryError> {
        let block_count = u32::try_from(block_count)
            .ok()
            .filter(|count| (1..=MAX_BLOCKS).contains(count))
            .ok_or(GeometryError::BlockCount(block_count))?;
        if block_len == 0 || block_len > MAX_BLOCK_LEN || !block_len.is_multiple_of(BLOCK_ALIGN) {
            return Err(GeometryError::BlockLen(block_len));
        }
        if final_block_len == 0
            || final_block_len > block_len
            || !final_block_len.is_multiple_of(BLOCK_ALIGN)
        {
            return Err(GeometryError::FinalBlockLen {
                final_len: final_block_len,
                block_len,
            });
        }
        Ok(Self {
            block_count,
            block_len,
            final_block_len,
        })
    }

    /// Where block `segment` starts in the file.
    pub(crate) fn block_offset(&self, segment: u32) -> u64 {
        self.hashes_end() + u64::from(segment) * u64::from(self.block_len)
    }

    /// Where block `segment`'s hash starts in the file.
    pub(crate) fn hash_offset(&self, segment: u32) -> u64 {
        HEADER_LEN as u64 + u64::from(segment) * HASH_LEN as u64
    }

    /// The length of block `segment` (`segment < block_count`).
    pub(crate) fn len_of(&self, segment: u32) -> u32 {
        if segment + 1 == self.block_count {
            self.final_block_len
        } else {
            self.block_len
        }
    }

    /// The length of the whole file: header, hash list and blocks. At most about 2^46 bytes,
    /// so it cannot overflow.
    pub(crate) fn file_len(&self) -> u64 {
        self.block_offset(self.block_count - 1) + u64::from(self.final_block_len)
    }

    /// The end of the hash list.
    fn hashes_end(&self) -> u64 {
        self.hash_offset(self.block_count)
    }
}

/// What a shard file says about itself before its hash list.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Header {
    /// The shard the file holds.
    pub(crate) id: ShardId,
    /// Its blocks' count and lengths.
    pub(crate) geometry: Geometry,
    /// The Merkle root of its block hashes, as the object's manifest records it.
    pub(crate) root: [u8; 32],
}

/// Why a header's bytes are not a header this crate reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HeaderError {
    /// The file does not start with [`MAGIC`].
    #[error("bad magic {}, not a shard file", hex::encode(.0))]
    Magic([u8; 8]),
    /// A version this crate does not read.
    #[error("unknown shard file format version {0}")]
    Version(u16),
    /// The header's bytes do not match its checksum.
    #[error("header checksum mismatch")]
    Checksum,
    /// Reserved bytes that are not zero.
    #[error("nonzero reserved header byte at offset {0}")]
    Reserved(usize),
    /// A shape the format does not allow.
    #[error("{0}")]
    Geometry(#[from] GeometryError),
}

impl Header {
    /// The header's bytes: little-endian fields at fixed offsets, zero padding, and an 8-byte
    /// keyed BLAKE3 checksum of the rest (layout in the crate docs).
    pub(crate) fn encode(&self) -> [u8; HEADER_LEN] {
        let mut out = [0u8; HEADER_LEN];
        out[0..8].copy_from_slice(&MAGIC);
        out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
        out[12..44].copy_from_slice(&self.id.object);
        out[44..46].copy_from_slice(&self.id.index.to_le_bytes());
        out[48..52].copy_from_slice(&self.geometry.block_count.to_le_bytes());
        out[52..56].copy_from_slice(&self.geometry.block_len.to_le_bytes());
        out[56..60].copy_from_slice(&self.geometry.final_block_len.to_le_bytes());
        out[64..96].copy_from_slice(&self.root);
        let checksum = checksum(&out[..CHECKED_LEN]);
        out[CHECKED_LEN..].copy_from_slice(&checksum);
        out
    }

    /// Reads a header, checking everything it can check without the rest of the file.
    pub(crate) fn decode(bytes: &[u8; HEADER_LEN]) -> Result<Self, HeaderError> {
        let magic: [u8; 8] = bytes[0..8].try_into().expect("8 bytes");
        if magic != MAGIC {
            return Err(HeaderError::Magic(magic));
        }
        let u16_at = |at: usize| u16::from_le_bytes(bytes[at..at + 2].try_into().expect("2"));
        let u32_at = |at: usize| u32::from_le_bytes(bytes[at..at + 4].try_into().expect("4"));
        let version = u16_at(8);
        if version != FORMAT_VERSION {
            return Err(HeaderError::Version(version));
        }
        if checksum(&bytes[..CHECKED_LEN]) != bytes[CHECKED_LEN..] {
            return Err(HeaderError::Checksum);
        }
        let reserved = [10..12, 46..48, 60..64, 96..CHECKED_LEN];
        if let Some(at) = reserved.into_iter().flatten().find(|&at| bytes[at] != 0) {
            return Err(HeaderError::Reserved(at));
        }
        let id = ShardId {
            object: bytes[12..44].try_into().expect("32"),
            index: u16_at(44),
        };
        let geometry = Geometry::new(u32_at(48).into(), u32_at(52), u32_at(56))?;
        Ok(Self {
            id,
            geometry,
            root: bytes[64..96].try_into().expect("32"),
        })
    }
}

pub(crate) fn checksum(bytes: &[u8]) -> [u8; 8] {
    let hash = blake3::keyed_hash(&HEADER_KEY, bytes);
    hash.as_bytes()[..8].try_into().expect("8 of 32 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn header() -> Header {
        Header {
            id: ShardId {
                object: [7; 32],
                index: 3,
            },
            geometry: Geometry::new(5, 1 << 20, 4096).expect("valid"),
            root: [9; 32],
        }
    }

    #[test]
    fn header_round_trips() {
        let header = header();
        assert_eq!(Header::decode(&header.encode()), Ok(header));
    }

    /// Freezes the on-disk format: if this hash changes, the format changed, and needs a new
    /// version rather than a new fixture.
    #[test]
    fn header_encoding_is_frozen() {
        let encoded = header().encode();
        assert_eq!(
            blake3::hash(&encoded).to_hex().as_str(),
            "ebfa360dc72a9a50b4694c1c15ff9e77d6f2dbf326774cb61d344f3c14207099"
        );
    }

    #[test]
    fn every_header_byte_is_checked() {
        let encoded = header().encode();
        for at in 0..HEADER_LEN {
            let mut bad = encoded;
            bad[at] ^= 0x01;
            assert!(
                Header::decode(&bad).is_err(),
                "flipped byte {at} was accepted"
            );
        }
    }

    #[test]
    fn unknown_version_is_named() {
        let mut bad = header().encode();
        bad[8] = 2;
        assert_eq!(Header::decode(&bad), Err(HeaderError::Version(2)));
        assert_eq!(
            HeaderError::Version(2).to_string(),
            "unknown shard file format version 2"
        );
    }

    #[test]
    fn geometry_limits() {
        assert_eq!(Geometry::new(0, 64, 64), Err(GeometryError::BlockCount(0)));
        let too_many = u64::from(MAX_BLOCKS) + 1;
        assert_eq!(
            Geometry::new(too_many, 64, 64),
            Err(GeometryError::BlockCount(too_many))
        );
        assert_eq!(Geometry::new(1, 100, 64), Err(GeometryError::BlockLen(100)));
        assert_eq!(Geometry::new(1, 0, 64), Err(GeometryError::BlockLen(0)));
        let over = MAX_BLOCK_LEN + 64;
        assert_eq!(
            Geometry::new(1, over, 64),
            Err(GeometryError::BlockLen(over))
        );
        let longer = GeometryError::FinalBlockLen {
            final_len: 192,
            block_len: 128,
        };
        assert_eq!(Geometry::new(2, 128, 192), Err(longer));
        let unaligned = GeometryError::FinalBlockLen {
            final_len: 65,
            block_len: 128,
        };
        assert_eq!(Geometry::new(2, 128, 65), Err(unaligned));
        let geometry = Geometry::new(3, 128, 64).expect("valid");
        assert_eq!(geometry.file_len(), 128 + 3 * 32 + 2 * 128 + 64);
        assert_eq!(geometry.block_offset(2), 128 + 96 + 256);
        assert_eq!((geometry.len_of(1), geometry.len_of(2)), (128, 64));
        let largest = Geometry::new(MAX_BLOCKS.into(), MAX_BLOCK_LEN, MAX_BLOCK_LEN).expect("ok");
        assert_eq!(
            largest.file_len(),
            128 + ((32 + u64::from(MAX_BLOCK_LEN)) << 20)
        );
    }
}
