//! The time channel's message: readings and certificate partials between nodes.
//!
//! The sender of each message is the authenticated p2p link, never a field.
//!
//! ```text
//! TimeMessage := 0x01 | tag u8 | body
//!   0x01 Ask      root [32]
//!   0x02 Reading  SignedReading (welkin-time encoding)
//!   0x03 Certify  root [32] | window_ns u64 | count u8 | count x SignedReading
//!   0x04 Partial  root [32] | partial signature (index u32 | G1 point)
//!   0x05 Refuse   root [32] | reason (varint length | UTF-8, at most 256 bytes)
//! ```

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write};
use commonware_cryptography::bls12381::primitives::variant::PartialSignature;
use welkin_time::SignedReading;
use welkin_types::{Digest, Variant, limits::MAX_NODES};

const VERSION: u8 = 1;
/// Longest refusal reason.
pub(crate) const MAX_REASON_BYTES: usize = 256;

/// A message on the time channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TimeMessage {
    /// A coordinator asks for the recipient's signed reading over a batch root.
    Ask {
        /// The batch's Merkle root.
        root: Digest,
    },
    /// A node's signed reading, in answer to an ask.
    Reading(SignedReading),
    /// A coordinator asks for a partial over the interval these readings agree on.
    Certify {
        /// The batch's Merkle root.
        root: Digest,
        /// How long the coordinator took to gather the readings.
        window_ns: u64,
        /// The readings (at most one per node).
        readings: Vec<SignedReading>,
    },
    /// A signer's threshold partial over the agreed certificate message.
    Partial {
        /// The batch's Merkle root.
        root: Digest,
        /// The partial signature.
        partial: PartialSignature<Variant>,
    },
    /// A signer will not sign, and why.
    Refuse {
        /// The batch's Merkle root.
        root: Digest,
        /// Why.
        reason: String,
    },
}

impl TimeMessage {
    /// The batch root the message is about.
    pub fn root(&self) -> Digest {
        match self {
            TimeMessage::Ask { root }
            | TimeMessage::Certify { root, .. }
            | TimeMessage::Partial { root, .. }
            | TimeMessage::Refuse { root, .. } => *root,
            TimeMessage::Reading(reading) => reading.root,
        }
    }
}

impl Write for TimeMessage {
    fn write(&self, buf: &mut impl BufMut) {
        VERSION.write(buf);
        match self {
            TimeMessage::Ask { root } => {
                1u8.write(buf);
                root.write(buf);
            }
            TimeMessage::Reading(reading) => {
                2u8.write(buf);
                reading.write(buf);
            }
            TimeMessage::Certify {
                root,
                window_ns,
                readings,
            } => {
                3u8.write(buf);
                root.write(buf);
                window_ns.write(buf);
                u8::try_from(readings.len())
                    .expect("at most MAX_NODES readings")
                    .write(buf);
                for reading in readings {
                    reading.write(buf);
                }
            }
            TimeMessage::Partial { root, partial } => {
                4u8.write(buf);
                root.write(buf);
                partial.write(buf);
            }
            TimeMessage::Refuse { root, reason } => {
                5u8.write(buf);
                root.write(buf);
                reason.as_bytes().to_vec().write(buf);
            }
        }
    }
}

impl EncodeSize for TimeMessage {
    fn encode_size(&self) -> usize {
        2 + match self {
            TimeMessage::Ask { root } => root.encode_size(),
            TimeMessage::Reading(reading) => reading.encode_size(),
            TimeMessage::Certify {
                root,
                readings,
                window_ns,
            } => {
                root.encode_size()
                    + window_ns.encode_size()
                    + 1
                    + readings.iter().map(EncodeSize::encode_size).sum::<usize>()
            }
            TimeMessage::Partial { root, partial } => root.encode_size() + partial.encode_size(),
            TimeMessage::Refuse { root, reason } => {
                root.encode_size() + reason.as_bytes().to_vec().encode_size()
            }
        }
    }
}

impl Read for TimeMessage {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if u8::read(buf)? != VERSION {
            return Err(CodecError::Invalid("TimeMessage", "unknown version"));
        }
        match u8::read(buf)? {
            1 => Ok(TimeMessage::Ask {
                root: Digest::read(buf)?,
            }),
            2 => Ok(TimeMessage::Reading(SignedReading::read(buf)?)),
            3 => {
                let root = Digest::read(buf)?;
                let window_ns = u64::read(buf)?;
                let count = usize::from(u8::read(buf)?);
                if count > MAX_NODES {
                    return Err(CodecError::InvalidLength(count));
                }
                let readings = (0..count)
                    .map(|_| SignedReading::read(buf))
                    .collect::<Result<_, _>>()?;
                Ok(TimeMessage::Certify {
                    root,
                    window_ns,
                    readings,
                })
            }
            4 => Ok(TimeMessage::Partial {
                root: Digest::read(buf)?,
                partial: PartialSignature::<Variant>::read(buf)?,
            }),
            5 => {
                let root = Digest::read(buf)?;
                let range: RangeCfg<usize> = (0..=MAX_REASON_BYTES).into();
                let bytes = Vec::<u8>::read_cfg(buf, &(range, ()))?;
                let reason = String::from_utf8(bytes)
                    .map_err(|_| CodecError::Invalid("TimeMessage", "reason is not UTF-8"))?;
                Ok(TimeMessage::Refuse { root, reason })
            }
            _ => Err(CodecError::Invalid("TimeMessage", "unknown tag")),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt as _, Encode as _};
    use commonware_cryptography::Signer as _;
    use commonware_cryptography::bls12381::{
        dkg::feldman_desmedt::deal_anonymous,
        primitives::{ops::threshold, sharing::Mode},
    };
    use commonware_utils::{N3f1, NZU32, test_rng};
    use welkin_time::Reading;
    use welkin_types::{PrivateKey, hash_parts};

    #[test]
    fn every_message_round_trips_and_garbage_is_refused() {
        let (_, shares) =
            deal_anonymous::<Variant, N3f1>(test_rng(), Mode::NonZeroCounter, NZU32!(4));
        let root = hash_parts(&[b"root"]);
        let reading = SignedReading::sign(
            &PrivateKey::from_seed(1),
            &hash_parts(&[b"cluster"]),
            1,
            root,
            Reading {
                midpoint_ns: 5,
                radius_ns: 2,
                synced: false,
            },
        );
        let messages = [
            TimeMessage::Ask { root },
            TimeMessage::Reading(reading.clone()),
            TimeMessage::Certify {
                root,
                window_ns: 7,
                readings: vec![reading.clone(), reading],
            },
            TimeMessage::Partial {
                root,
                partial: threshold::sign_message::<Variant>(&shares[0], b"ns", b"m"),
            },
            TimeMessage::Refuse {
                root,
                reason: "clock disagrees".into(),
            },
        ];
        for message in messages {
            let bytes = message.encode();
            assert_eq!(bytes.len(), message.encode_size());
            assert_eq!(
                TimeMessage::decode(bytes.clone()).expect("decodes"),
                message
            );
            assert_eq!(message.root(), root);
            for cut in 0..bytes.len() {
                assert!(
                    welkin_types::decode::<TimeMessage>(&bytes[..cut]).is_err(),
                    "prefix {cut}"
                );
            }
        }
        assert!(welkin_types::decode::<TimeMessage>(&[1u8, 9]).is_err());
        assert!(welkin_types::decode::<TimeMessage>(&[2u8, 1]).is_err());
    }
}
