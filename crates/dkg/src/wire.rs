//! The messages nodes exchange during a round, with a versioned binary codec.
//!
//! ```text
//! message = version (u8, 1) | kind (u8) | round (u64, big endian) | body
//!   kind 0 Dealing: commitment (DealerPubMsg) | share (DealerPrivMsg)
//!   kind 1 Ack:     ack (PlayerAck)
//! ```
//!
//! A dealing carries a player's private share: it travels only on the nodes' authenticated,
//! encrypted p2p links, never in a block.

use bytes::{Buf, BufMut};
use commonware_codec::{Encode as _, Error as CodecError, Read, ReadExt as _, Write};
use commonware_cryptography::bls12381::dkg::feldman_desmedt::{
    DealerPrivMsg, DealerPubMsg, PlayerAck,
};
use std::num::NonZeroU32;
use welkin_types::{PublicKey, Variant};

/// The codec's version byte.
pub const DKG_WIRE_VERSION: u8 = 1;

const KIND_DEALING: u8 = 0;
const KIND_ACK: u8 = 1;

/// A message of a round.
#[derive(Clone, Debug, PartialEq)]
pub enum DkgMessage {
    /// From a dealer to one player: the public commitment and that player's private share.
    Dealing {
        /// The round.
        round: u64,
        /// The dealer's public polynomial commitment (the same for every player).
        commitment: DealerPubMsg<Variant>,
        /// This player's share of the dealer's polynomial.
        share: DealerPrivMsg,
    },
    /// From a player back to the dealer: its signature that the share checked.
    Ack {
        /// The round.
        round: u64,
        /// The signed acknowledgement.
        ack: PlayerAck<PublicKey>,
    },
}

impl DkgMessage {
    /// The round the message belongs to.
    pub fn round(&self) -> u64 {
        match self {
            DkgMessage::Dealing { round, .. } | DkgMessage::Ack { round, .. } => *round,
        }
    }

    /// The message's bytes.
    pub fn to_bytes(&self) -> Vec<u8> {
        let mut out = Vec::new();
        out.put_u8(DKG_WIRE_VERSION);
        match self {
            DkgMessage::Dealing {
                round,
                commitment,
                share,
            } => {
                out.put_u8(KIND_DEALING);
                out.put_u64(*round);
                commitment.write(&mut out);
                share.write(&mut out);
            }
            DkgMessage::Ack { round, ack } => {
                out.put_u8(KIND_ACK);
                out.put_u64(*round);
                out.extend_from_slice(&ack.encode());
            }
        }
        out
    }

    /// Decodes a message of a round with at most `max_participants` dealers or players;
    /// refuses another version, an unknown kind, truncation and trailing bytes.
    pub fn from_bytes(bytes: &[u8], max_participants: NonZeroU32) -> Result<Self, CodecError> {
        let mut buf = bytes::Bytes::copy_from_slice(bytes);
        if buf.remaining() < 10 {
            return Err(CodecError::EndOfBuffer);
        }
        let version = buf.get_u8();
        if version != DKG_WIRE_VERSION {
            return Err(CodecError::Invalid("DkgMessage", "unknown version"));
        }
        let kind = buf.get_u8();
        let round = buf.get_u64();
        let message = match kind {
            KIND_DEALING => DkgMessage::Dealing {
                round,
                commitment: DealerPubMsg::read_cfg(&mut buf, &max_participants)?,
                share: DealerPrivMsg::read(&mut buf)?,
            },
            KIND_ACK => DkgMessage::Ack {
                round,
                ack: PlayerAck::read(&mut buf)?,
            },
            other => return Err(CodecError::InvalidEnum(other)),
        };
        if buf.has_remaining() {
            return Err(CodecError::ExtraData(buf.remaining()));
        }
        Ok(message)
    }
}
