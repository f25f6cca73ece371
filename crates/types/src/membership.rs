//! Membership requests: what a transaction asks of the cluster's key generation.
//!
//! A dealerless cluster makes its threshold key at first start: every node deals over the
//! p2p network, and each dealer then commits its signed dealer log through the log, so that
//! every node computes its share from the same logs (see `welkin-dkg` and
//! `docs/membership.md`). The log is carried opaque here: the state machine decodes it
//! against the round it belongs to.
//!
//! ```text
//! MembershipOp := 0x01 round u64 | log (varint len, bytes)     DealerLog (a dealer)
//! ```

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write};

/// The largest signed dealer log a transaction may carry. A log holds the dealer's
/// commitment (one 96-byte point per threshold member) and one acknowledgement (64 bytes) or
/// revealed share per player: about 10 KiB for 64 nodes. Larger clusters need the log split
/// across transactions (not built).
pub const MAX_DEALER_LOG_BYTES: usize = 14 * 1024;

const TAG_DEALER_LOG: u8 = 1;

/// A membership request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MembershipOp {
    /// A dealer's signed log for a key generation round: its public commitment, and for each
    /// player the player's acknowledgement or, if none came, the player's share in the clear.
    /// Signed by the dealer inside the log; the transaction's sender must be that dealer.
    DealerLog {
        /// The round the log belongs to.
        round: u64,
        /// The signed log, as `welkin-dkg` encodes it.
        log: Vec<u8>,
    },
}

impl MembershipOp {
    /// A short name for logs and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            MembershipOp::DealerLog { .. } => "dealer_log",
        }
    }
}

impl Write for MembershipOp {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            MembershipOp::DealerLog { round, log } => {
                TAG_DEALER_LOG.write(buf);
                round.write(buf);
                log.write(buf);
            }
        }
    }
}

impl EncodeSize for MembershipOp {
    fn encode_size(&self) -> usize {
        1 + match self {
            MembershipOp::DealerLog { round, log } => round.encode_size() + log.encode_size(),
        }
    }
}

impl Read for MembershipOp {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            TAG_DEALER_LOG => {
                let round = u64::read(buf)?;
                let cfg: RangeCfg<usize> = (1..=MAX_DEALER_LOG_BYTES).into();
                let log = Vec::<u8>::read_cfg(buf, &(cfg, ()))?;
                Ok(MembershipOp::DealerLog { round, log })
            }
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode;
    use commonware_codec::Encode as _;

    /// The encoding is frozen: a change here is a wire-format change.
    #[test]
    fn encoding_fixture() {
        let op = MembershipOp::DealerLog {
            round: 3,
            log: vec![0xab; 4],
        };
        let bytes = op.encode();
        assert_eq!(bytes.len(), op.encode_size());
        assert_eq!(hex::encode(&bytes), "01000000000000000304abababab");
        assert_eq!(decode::<MembershipOp>(&bytes).expect("decodes"), op);
    }

    #[test]
    fn empty_oversized_and_unknown_ops_are_refused() {
        let empty = MembershipOp::DealerLog {
            round: 0,
            log: vec![],
        };
        assert!(
            decode::<MembershipOp>(&empty.encode()).is_err(),
            "empty log"
        );
        let big = MembershipOp::DealerLog {
            round: 0,
            log: vec![1; MAX_DEALER_LOG_BYTES + 1],
        };
        assert!(decode::<MembershipOp>(&big.encode()).is_err(), "oversized");
        assert!(decode::<MembershipOp>(&[9]).is_err(), "unknown tag");
    }
}
