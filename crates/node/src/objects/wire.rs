//! The storage channel's message: audit proofs and repair blocks between nodes.
//!
//! The sender of each message is the authenticated p2p link, never a field. Every ask carries
//! an id of the asker's choosing that its answer repeats.
//!
//! ```text
//! StorageMessage := 0x01 | tag u8 | id u64 | body
//!   0x01 AskProof    epoch u64
//!   0x02 AskBlock    object [32] | shard u16 | segment u32
//!   0x03 Proof       proof (varint length | bytes, at most MAX_PROOF_BYTES)
//!   0x04 Block       block (varint length | bytes, at most MAX_BLOCK_BYTES)
//!                    | count u8 | count x [32] (inclusion path, leaf to root)
//!   0x05 Refused     reason (varint length | UTF-8, at most MAX_REASON_BYTES)
//! ```

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write};
use welkin_types::Digest;

const VERSION: u8 = 1;
/// Longest refusal reason.
pub(crate) const MAX_REASON_BYTES: usize = 256;
/// Largest audit proof (30 samples of a 1 KiB chunk with their paths are about 45 KB).
pub(crate) const MAX_PROOF_BYTES: usize = 1 << 20;
/// Largest block: a 4 MiB segment split in one (the largest segment, the smallest k).
pub(crate) const MAX_BLOCK_BYTES: usize = 4 << 20;
/// Longest inclusion path (a shard of up to 2^63 blocks).
const MAX_PATH: usize = 64;

/// What a node asks a peer for.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Ask {
    /// The peer's proof for its challenge of audit epoch `epoch`.
    Proof {
        /// The audit epoch.
        epoch: u64,
    },
    /// One block of a shard the peer holds, for a repair the state ordered from the asker.
    Block {
        /// The object.
        object: Digest,
        /// The shard index.
        shard: u16,
        /// The segment whose block is wanted.
        segment: u32,
    },
}

/// A peer's answer to an [`Ask`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Answer {
    /// An encoded [`welkin_object::AuditProof`].
    Proof(Vec<u8>),
    /// The block, and its inclusion path in the shard's tree (leaf to root).
    Block {
        /// The block's bytes.
        bytes: Vec<u8>,
        /// Siblings from the leaf up to the root.
        path: Vec<[u8; 32]>,
    },
    /// The peer cannot or will not answer, and why.
    Refused(String),
}

/// A message on the storage channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageMessage {
    /// A request, with the asker's id for it.
    Ask {
        /// Repeated in the answer.
        id: u64,
        /// What is asked.
        ask: Ask,
    },
    /// An answer to the ask with this id.
    Answer {
        /// The ask's id.
        id: u64,
        /// The answer.
        answer: Answer,
    },
}

fn write_bytes(bytes: &[u8], buf: &mut impl BufMut) {
    bytes.write(buf);
}

fn bytes_size(bytes: &[u8]) -> usize {
    bytes.encode_size()
}

fn read_bytes(buf: &mut impl Buf, max: usize) -> Result<Vec<u8>, CodecError> {
    let range: RangeCfg<usize> = (0..=max).into();
    Vec::<u8>::read_cfg(buf, &(range, ()))
}

impl Write for StorageMessage {
    fn write(&self, buf: &mut impl BufMut) {
        VERSION.write(buf);
        match self {
            StorageMessage::Ask { id, ask } => match ask {
                Ask::Proof { epoch } => {
                    1u8.write(buf);
                    id.write(buf);
                    epoch.write(buf);
                }
                Ask::Block {
                    object,
                    shard,
                    segment,
                } => {
                    2u8.write(buf);
                    id.write(buf);
                    object.write(buf);
                    shard.write(buf);
                    segment.write(buf);
                }
            },
            StorageMessage::Answer { id, answer } => match answer {
                Answer::Proof(proof) => {
                    3u8.write(buf);
                    id.write(buf);
                    write_bytes(proof, buf);
                }
                Answer::Block { bytes, path } => {
                    4u8.write(buf);
                    id.write(buf);
                    write_bytes(bytes, buf);
                    u8::try_from(path.len())
                        .expect("paths are at most MAX_PATH long")
                        .write(buf);
                    for node in path {
                        buf.put_slice(node);
                    }
                }
                Answer::Refused(reason) => {
                    5u8.write(buf);
                    id.write(buf);
                    write_bytes(reason.as_bytes(), buf);
                }
            },
        }
    }
}

impl EncodeSize for StorageMessage {
    fn encode_size(&self) -> usize {
        2 + 8
            + match self {
                StorageMessage::Ask { ask, .. } => match ask {
                    Ask::Proof { .. } => 8,
                    Ask::Block { .. } => 32 + 2 + 4,
                },
                StorageMessage::Answer { answer, .. } => match answer {
                    Answer::Proof(proof) => bytes_size(proof),
                    Answer::Block { bytes, path } => bytes_size(bytes) + 1 + 32 * path.len(),
                    Answer::Refused(reason) => bytes_size(reason.as_bytes()),
                },
            }
    }
}

impl Read for StorageMessage {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if u8::read(buf)? != VERSION {
            return Err(CodecError::Invalid("StorageMessage", "unknown version"));
        }
        let tag = u8::read(buf)?;
        let id = u64::read(buf)?;
        let ask = |ask| Ok(StorageMessage::Ask { id, ask });
        let answer = |answer| Ok(StorageMessage::Answer { id, answer });
        match tag {
            1 => ask(Ask::Proof {
                epoch: u64::read(buf)?,
            }),
            2 => ask(Ask::Block {
                object: Digest::read(buf)?,
                shard: u16::read(buf)?,
                segment: u32::read(buf)?,
            }),
            3 => answer(Answer::Proof(read_bytes(buf, MAX_PROOF_BYTES)?)),
            4 => {
                let bytes = read_bytes(buf, MAX_BLOCK_BYTES)?;
                let count = usize::from(u8::read(buf)?);
                if count > MAX_PATH {
                    return Err(CodecError::InvalidLength(count));
                }
                let path = (0..count)
                    .map(|_| <[u8; 32]>::read(buf))
                    .collect::<Result<_, _>>()?;
                answer(Answer::Block { bytes, path })
            }
            5 => {
                let bytes = read_bytes(buf, MAX_REASON_BYTES)?;
                let reason = String::from_utf8(bytes)
                    .map_err(|_| CodecError::Invalid("StorageMessage", "reason is not UTF-8"))?;
                answer(Answer::Refused(reason))
            }
            _ => Err(CodecError::Invalid("StorageMessage", "unknown tag")),
        }
    }
}

/// A refusal reason cut to [`MAX_REASON_BYTES`] on a character boundary.
pub(crate) fn reason(text: &str) -> String {
    cut(text, MAX_REASON_BYTES)
}

/// `text` cut to at most `max` bytes on a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> String {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    text[..end].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt as _, Encode as _};
    use welkin_types::hash_parts;

    #[test]
    fn every_message_round_trips_and_garbage_is_refused() {
        let object = hash_parts(&[b"object"]);
        let messages = [
            StorageMessage::Ask {
                id: 1,
                ask: Ask::Proof { epoch: 9 },
            },
            StorageMessage::Ask {
                id: 2,
                ask: Ask::Block {
                    object,
                    shard: 3,
                    segment: 70_000,
                },
            },
            StorageMessage::Answer {
                id: 3,
                answer: Answer::Proof(vec![7; 300]),
            },
            StorageMessage::Answer {
                id: 4,
                answer: Answer::Block {
                    bytes: vec![1; 1000],
                    path: vec![[2; 32], [3; 32]],
                },
            },
            StorageMessage::Answer {
                id: u64::MAX,
                answer: Answer::Refused("no such shard".into()),
            },
        ];
        for message in messages {
            let bytes = message.encode();
            assert_eq!(bytes.len(), message.encode_size());
            assert_eq!(
                StorageMessage::decode(bytes.clone()).expect("decodes"),
                message
            );
            for cut in 0..bytes.len() {
                assert!(
                    welkin_types::decode::<StorageMessage>(&bytes[..cut]).is_err(),
                    "prefix {cut}"
                );
            }
        }
        assert!(welkin_types::decode::<StorageMessage>(&[1u8, 9, 0, 0, 0, 0, 0, 0, 0, 0]).is_err());
        assert!(welkin_types::decode::<StorageMessage>(&[2u8, 1]).is_err());
        // A path longer than any shard's tree is refused.
        let mut long = vec![1u8, 4];
        long.extend_from_slice(&[0; 8]);
        long.push(0);
        long.push(65);
        long.extend(std::iter::repeat_n(0u8, 65 * 32));
        assert!(welkin_types::decode::<StorageMessage>(&long).is_err());
    }

    #[test]
    fn reasons_are_cut_on_character_boundaries() {
        let long = "é".repeat(200);
        let cut = reason(&long);
        assert!(cut.len() <= MAX_REASON_BYTES);
        assert!(long.starts_with(&cut));
    }
}
