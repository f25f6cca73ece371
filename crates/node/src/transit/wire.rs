//! The transit channel's message: key generation shares and threshold signing between nodes.
//!
//! The sender of each message is the authenticated p2p link, never a field.
//!
//! ```text
//! TransitMessage := 0x01 | tag u8 | body
//!   0x01 Round2      key_id [32] | version u64 | attempt u32 | package bytes
//!   0x02 NonceAsk    count u16
//!   0x03 Nonces      commitments bytes
//!   0x04 SignAsk     id [32] | item u16 | session u32 | request bytes
//!   0x05 SignShare   id [32] | item u16 | session u32 | share bytes
//!   0x06 SignRefused id [32] | item u16 | session u32 | reason bytes (UTF-8)
//! bytes := varint length | bytes, each bounded below
//! ```

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write};
use welkin_types::{Digest, TxId};

const VERSION: u8 = 1;
/// Largest round-2 package (welkin-frost's is 33 bytes; room for its version byte and more).
const MAX_PACKAGE_BYTES: usize = 256;
/// Largest batch of nonce commitments: [`welkin_frost::NONCE_POOL`] of about 72 bytes.
const MAX_NONCES_BYTES: usize = 16 * 1024;
/// Largest sign request: the message and one commitment per participant.
const MAX_REQUEST_BYTES: usize =
    welkin_frost::MAX_MESSAGE_BYTES + 80 * welkin_frost::MAX_PARTICIPANTS as usize + 64;
/// Largest signature share.
const MAX_SHARE_BYTES: usize = 128;
/// Longest refusal reason.
pub(crate) const MAX_REASON_BYTES: usize = 256;

/// Which signature of a request a message is about: the request's transaction, the item of
/// its batch, and the coordinator's session for it (a new one after a silent or lying signer).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct SessionId {
    /// The committed sign request.
    pub id: TxId,
    /// The message's place in the request's batch.
    pub item: u16,
    /// The coordinator's attempt for this item.
    pub session: u32,
}

/// A message on the transit channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TransitMessage {
    /// A key generation's secret share for the recipient (welkin-frost round-2 package).
    Round2 {
        /// The key.
        key_id: Digest,
        /// The version being generated.
        version: u64,
        /// The attempt the share belongs to.
        attempt: u32,
        /// The package.
        package: Vec<u8>,
    },
    /// A coordinator asks the recipient for `count` fresh nonce commitments.
    NonceAsk {
        /// How many (at most [`welkin_frost::NONCE_POOL`]).
        count: u16,
    },
    /// Nonce commitments for the recipient to coordinate with (welkin-frost encoding).
    Nonces {
        /// The commitments.
        commitments: Vec<u8>,
    },
    /// A coordinator asks the recipient for its signature share.
    SignAsk {
        /// Which signature.
        session: SessionId,
        /// The welkin-frost sign request (the message and the chosen commitments).
        request: Vec<u8>,
    },
    /// A signer's share.
    SignShare {
        /// Which signature.
        session: SessionId,
        /// The welkin-frost signature share.
        share: Vec<u8>,
    },
    /// A signer will not sign, and why.
    SignRefused {
        /// Which signature.
        session: SessionId,
        /// Why.
        reason: String,
    },
}

fn write_session(session: &SessionId, buf: &mut impl BufMut) {
    session.id.write(buf);
    session.item.write(buf);
    session.session.write(buf);
}

fn read_session(buf: &mut impl Buf) -> Result<SessionId, CodecError> {
    Ok(SessionId {
        id: TxId::read(buf)?,
        item: u16::read(buf)?,
        session: u32::read(buf)?,
    })
}

fn read_bytes(buf: &mut impl Buf, max: usize) -> Result<Vec<u8>, CodecError> {
    let range: RangeCfg<usize> = (0..=max).into();
    Vec::<u8>::read_cfg(buf, &(range, ()))
}

impl Write for TransitMessage {
    fn write(&self, buf: &mut impl BufMut) {
        VERSION.write(buf);
        match self {
            TransitMessage::Round2 {
                key_id,
                version,
                attempt,
                package,
            } => {
                1u8.write(buf);
                key_id.write(buf);
                version.write(buf);
                attempt.write(buf);
                package.write(buf);
            }
            TransitMessage::NonceAsk { count } => {
                2u8.write(buf);
                count.write(buf);
            }
            TransitMessage::Nonces { commitments } => {
                3u8.write(buf);
                commitments.write(buf);
            }
            TransitMessage::SignAsk { session, request } => {
                4u8.write(buf);
                write_session(session, buf);
                request.write(buf);
            }
            TransitMessage::SignShare { session, share } => {
                5u8.write(buf);
                write_session(session, buf);
                share.write(buf);
            }
            TransitMessage::SignRefused { session, reason } => {
                6u8.write(buf);
                write_session(session, buf);
                reason.as_bytes().to_vec().write(buf);
            }
        }
    }
}

impl EncodeSize for TransitMessage {
    fn encode_size(&self) -> usize {
        let session = 32 + 2 + 4;
        2 + match self {
            TransitMessage::Round2 { package, .. } => 32 + 8 + 4 + package.encode_size(),
            TransitMessage::NonceAsk { .. } => 2,
            TransitMessage::Nonces { commitments } => commitments.encode_size(),
            TransitMessage::SignAsk { request, .. } => session + request.encode_size(),
            TransitMessage::SignShare { share, .. } => session + share.encode_size(),
            TransitMessage::SignRefused { reason, .. } => {
                session + reason.as_bytes().to_vec().encode_size()
            }
        }
    }
}

impl Read for TransitMessage {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if u8::read(buf)? != VERSION {
            return Err(CodecError::Invalid("TransitMessage", "unknown version"));
        }
        Ok(match u8::read(buf)? {
            1 => TransitMessage::Round2 {
                key_id: Digest::read(buf)?,
                version: u64::read(buf)?,
                attempt: u32::read(buf)?,
                package: read_bytes(buf, MAX_PACKAGE_BYTES)?,
            },
            2 => TransitMessage::NonceAsk {
                count: u16::read(buf)?,
            },
            3 => TransitMessage::Nonces {
                commitments: read_bytes(buf, MAX_NONCES_BYTES)?,
            },
            4 => TransitMessage::SignAsk {
                session: read_session(buf)?,
                request: read_bytes(buf, MAX_REQUEST_BYTES)?,
            },
            5 => TransitMessage::SignShare {
                session: read_session(buf)?,
                share: read_bytes(buf, MAX_SHARE_BYTES)?,
            },
            6 => {
                let session = read_session(buf)?;
                let reason = String::from_utf8(read_bytes(buf, MAX_REASON_BYTES)?)
                    .map_err(|_| CodecError::Invalid("TransitMessage", "reason is not UTF-8"))?;
                TransitMessage::SignRefused { session, reason }
            }
            _ => return Err(CodecError::Invalid("TransitMessage", "unknown tag")),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode as _;
    use welkin_types::{decode, hash_parts};

    fn all() -> Vec<TransitMessage> {
        let session = SessionId {
            id: hash_parts(&[b"tx"]),
            item: 3,
            session: 2,
        };
        vec![
            TransitMessage::Round2 {
                key_id: hash_parts(&[b"key"]),
                version: 2,
                attempt: 1,
                package: vec![7; 33],
            },
            TransitMessage::NonceAsk { count: 64 },
            TransitMessage::Nonces {
                commitments: vec![1; 100],
            },
            TransitMessage::SignAsk {
                session,
                request: vec![2; 300],
            },
            TransitMessage::SignShare {
                session,
                share: vec![3; 33],
            },
            TransitMessage::SignRefused {
                session,
                reason: "no such grant".into(),
            },
        ]
    }

    #[test]
    fn every_message_round_trips_and_truncations_are_refused() {
        for message in all() {
            let bytes = message.encode().to_vec();
            assert_eq!(bytes.len(), message.encode_size());
            assert_eq!(decode::<TransitMessage>(&bytes).expect("decodes"), message);
            for cut in 0..bytes.len() {
                assert!(
                    decode::<TransitMessage>(&bytes[..cut]).is_err(),
                    "cut {cut}"
                );
            }
        }
    }

    #[test]
    fn oversized_fields_unknown_tags_and_versions_are_refused() {
        let big = TransitMessage::Round2 {
            key_id: hash_parts(&[b"key"]),
            version: 1,
            attempt: 0,
            package: vec![0; MAX_PACKAGE_BYTES + 1],
        };
        assert!(decode::<TransitMessage>(&big.encode()).is_err());
        assert!(decode::<TransitMessage>(&[1, 9]).is_err());
        assert!(decode::<TransitMessage>(&[2, 2, 0, 1]).is_err());
    }

    #[test]
    fn the_encoding_is_frozen() {
        let bytes = TransitMessage::NonceAsk { count: 258 }.encode().to_vec();
        assert_eq!(bytes, vec![1, 2, 1, 2]);
    }
}
