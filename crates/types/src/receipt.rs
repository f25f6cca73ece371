//! Receipts: what the state machine did with each correctly signed transaction.

use bytes::BufMut;
use commonware_codec::{Buf, Error as CodecError, FixedSize, Read, ReadExt, Write};
use serde::{Deserialize, Serialize};

/// The result of applying one transaction. Stable codes: never renumber.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    /// The transaction took effect.
    Applied = 0,
    /// Block time was past the transaction's expiry.
    Expired = 1,
    /// The expiry was further from block time than the chain allows.
    TtlTooLong = 2,
    /// The signer had already used this nonce.
    Replay = 3,
    /// The payload was refused by its module (the reason is kept in the state, see
    /// `welkin_state::keys::outcome_detail`): e.g. a key event that does not validate.
    Rejected = 4,
    /// A key event that cannot be checked yet (an earlier event or a delegator's anchor is
    /// missing) waits in escrow and is retried when what it needs is committed.
    Escrowed = 5,
    /// A validly signed key event that conflicts with an accepted one at the same sequence
    /// number: refused, and kept as duplicity evidence.
    Duplicity = 6,
}

impl Outcome {
    /// Whether the transaction took effect.
    pub fn is_applied(self) -> bool {
        self == Outcome::Applied
    }

    /// The name users see (as in JSON): `applied`, `rejected`, ...
    pub fn name(self) -> &'static str {
        match self {
            Outcome::Applied => "applied",
            Outcome::Expired => "expired",
            Outcome::TtlTooLong => "ttl_too_long",
            Outcome::Replay => "replay",
            Outcome::Rejected => "rejected",
            Outcome::Escrowed => "escrowed",
            Outcome::Duplicity => "duplicity",
        }
    }

    /// The outcome with stable code `code`, if any.
    pub fn from_code(code: u8) -> Option<Self> {
        Some(match code {
            0 => Outcome::Applied,
            1 => Outcome::Expired,
            2 => Outcome::TtlTooLong,
            3 => Outcome::Replay,
            4 => Outcome::Rejected,
            5 => Outcome::Escrowed,
            6 => Outcome::Duplicity,
            _ => return None,
        })
    }
}

/// Where a transaction landed and what happened to it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The height of the block that carried it.
    pub height: u64,
    /// Its position in that block.
    pub index: u32,
    /// What the state machine did.
    pub outcome: Outcome,
    /// The transaction's leaf index in the audit log.
    pub log_index: u64,
}

impl Write for Receipt {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.index.write(buf);
        (self.outcome as u8).write(buf);
        self.log_index.write(buf);
    }
}

impl FixedSize for Receipt {
    const SIZE: usize = 8 + 4 + 1 + 8;
}

impl Read for Receipt {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let height = u64::read(buf)?;
        let index = u32::read(buf)?;
        let code = u8::read(buf)?;
        let outcome = Outcome::from_code(code).ok_or(CodecError::InvalidEnum(code))?;
        let log_index = u64::read(buf)?;
        Ok(Self {
            height,
            index,
            outcome,
            log_index,
        })
    }
}
