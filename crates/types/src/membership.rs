//! Membership requests: what a transaction asks of the cluster's key generation.
//!
//! A dealerless cluster makes its threshold key at first start: every node deals over the
//! p2p network, and each dealer then commits its signed dealer log through the log, so that
//! every node computes its share from the same logs (see `welkin-dkg` and
//! `docs/membership.md`). The log is carried opaque here: the state machine decodes it
//! against the round it belongs to.
//!
//! A node that wants to join submits a [`MembershipOp::Join`] signed by its own key: its
//! registration (the same signed bytes a genesis entry holds) and evidence about the machine
//! for the cluster's attestation policy. Operators named in the genesis approve it with
//! [`MembershipOp::Approve`], sent by their KERI identifiers; a member leaves with
//! [`MembershipOp::Leave`], or is removed when enough operators send
//! [`MembershipOp::Remove`]. Admitted joins, leaves and removals wait for the next epoch.
//!
//! ```text
//! MembershipOp := 0x01 round u64 | log (varint len, bytes)     DealerLog (a dealer)
//!               | 0x02 registration (varint len, bytes)         Join (the joining node)
//!                      | signature [64] | evidence (varint len, bytes)
//!               | 0x03 request [32]                              Approve (an operator)
//!               | 0x04                                           Leave (a member)
//!               | 0x05 member [32]                               Remove (an operator)
//! ```

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write};

/// The largest signed dealer log a transaction may carry. A log holds the dealer's
/// commitment (one 96-byte point per threshold member) and one acknowledgement (64 bytes) or
/// revealed share per player: about 10 KiB for 64 nodes. Larger clusters need the log split
/// across transactions (not built).
pub const MAX_DEALER_LOG_BYTES: usize = 14 * 1024;

/// The largest attestation evidence a join request may carry.
pub const MAX_EVIDENCE_BYTES: usize = 4 * 1024;
/// The largest registration a join request may carry (its fields are bounded well below).
pub const MAX_REGISTRATION_BYTES: usize = 512;

const TAG_DEALER_LOG: u8 = 1;
const TAG_JOIN: u8 = 2;
const TAG_APPROVE: u8 = 3;
const TAG_LEAVE: u8 = 4;
const TAG_REMOVE: u8 = 5;

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
    /// A node asks to join: its registration, signed by its key (the transaction's sender),
    /// and evidence about the machine for the attestation policy (empty if none).
    Join {
        /// The registration, as a genesis entry holds it.
        registration: Box<crate::NodeInfo>,
        /// Attestation evidence (see the genesis `membership.attestation`).
        evidence: Vec<u8>,
    },
    /// An operator approves a pending join request.
    Approve {
        /// The request's id (see [`request_id`]).
        request: crate::Digest,
    },
    /// A member leaves the cluster at the next epoch.
    Leave,
    /// An operator votes to remove a member (by its node key); with as many operators as a
    /// join needs, the member leaves at the next epoch.
    Remove {
        /// The member's node key.
        member: crate::PublicKey,
    },
}

/// A join request's id: the hash of the registration it carries.
pub fn request_id(registration: &crate::NodeInfo) -> crate::Digest {
    crate::hash_parts(&[
        b"welkin/membership/join",
        &registration.registration().message(),
    ])
}

impl MembershipOp {
    /// A short name for logs and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            MembershipOp::DealerLog { .. } => "dealer_log",
            MembershipOp::Join { .. } => "join",
            MembershipOp::Approve { .. } => "approve",
            MembershipOp::Leave => "leave",
            MembershipOp::Remove { .. } => "remove",
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
            MembershipOp::Join {
                registration,
                evidence,
            } => {
                TAG_JOIN.write(buf);
                registration.registration().message().write(buf);
                registration.signature.write(buf);
                evidence.write(buf);
            }
            MembershipOp::Approve { request } => {
                TAG_APPROVE.write(buf);
                request.write(buf);
            }
            MembershipOp::Leave => TAG_LEAVE.write(buf),
            MembershipOp::Remove { member } => {
                TAG_REMOVE.write(buf);
                member.write(buf);
            }
        }
    }
}

impl EncodeSize for MembershipOp {
    fn encode_size(&self) -> usize {
        1 + match self {
            MembershipOp::DealerLog { round, log } => round.encode_size() + log.encode_size(),
            MembershipOp::Join {
                registration,
                evidence,
            } => {
                registration.registration().message().encode_size()
                    + registration.signature.encode_size()
                    + evidence.encode_size()
            }
            MembershipOp::Approve { request } => request.encode_size(),
            MembershipOp::Leave => 0,
            MembershipOp::Remove { member } => member.encode_size(),
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
            TAG_JOIN => {
                let cfg: RangeCfg<usize> = (1..=MAX_REGISTRATION_BYTES).into();
                let message = Vec::<u8>::read_cfg(buf, &(cfg, ()))?;
                let registration = crate::genesis::NodeRegistration::from_message(&message)?;
                let signature = crate::Signature::read(buf)?;
                let cfg: RangeCfg<usize> = (0..=MAX_EVIDENCE_BYTES).into();
                let evidence = Vec::<u8>::read_cfg(buf, &(cfg, ()))?;
                Ok(MembershipOp::Join {
                    registration: Box::new(registration.with_signature(signature)),
                    evidence,
                })
            }
            TAG_APPROVE => Ok(MembershipOp::Approve {
                request: crate::Digest::read(buf)?,
            }),
            TAG_LEAVE => Ok(MembershipOp::Leave),
            TAG_REMOVE => Ok(MembershipOp::Remove {
                member: crate::PublicKey::read(buf)?,
            }),
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

    /// Join, Approve and Leave came after the dealer log's fixture: theirs is separate.
    #[test]
    fn admission_ops_are_frozen() {
        use commonware_cryptography::Signer as _;
        let key = crate::PrivateKey::from_seed(5);
        let registration = crate::genesis::NodeRegistration {
            name: "node4".into(),
            public_key: key.public_key(),
            encryption_key: vec![7; 32],
            p2p_address: "127.0.0.1:8804".parse().expect("address"),
            api_address: "127.0.0.1:8704".parse().expect("address"),
            failure_domain: "rack-b".into(),
        }
        .sign(&key);
        let ops = [
            MembershipOp::Join {
                registration: Box::new(registration.clone()),
                evidence: vec![1, 2],
            },
            MembershipOp::Approve {
                request: request_id(&registration),
            },
            MembershipOp::Leave,
        ];
        let mut all = Vec::new();
        for op in &ops {
            let bytes = op.encode();
            assert_eq!(bytes.len(), op.encode_size());
            assert_eq!(&decode::<MembershipOp>(&bytes).expect("decodes"), op);
            all.extend_from_slice(&bytes);
        }
        assert_eq!(
            hex::encode(crate::hash_parts(&[&all])),
            "dde9224a48721e19d97682f2f5c360f04399dff134493a5886283e05eb2deb29",
            "membership op encoding changed: add a tag, then update the fixture"
        );
        // A registration whose signature is not the node's still decodes: the state machine
        // checks it, with the reason in the log.
        let mut bytes = ops[0].encode().to_vec();
        bytes.truncate(bytes.len() - 3);
        assert!(decode::<MembershipOp>(&bytes).is_err(), "truncated");
    }

    /// Remove came after the admission ops: its fixture is separate.
    #[test]
    fn remove_is_frozen() {
        use commonware_cryptography::Signer as _;
        let op = MembershipOp::Remove {
            member: crate::PrivateKey::from_seed(5).public_key(),
        };
        let bytes = op.encode();
        assert_eq!(bytes.len(), op.encode_size());
        assert_eq!(decode::<MembershipOp>(&bytes).expect("decodes"), op);
        assert_eq!(
            hex::encode(crate::hash_parts(&[&bytes])),
            "bba57a05efc8509e387a4dd930de30421a1a6d9b60c7ec7c2d9f44ff01b5c78e"
        );
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
