//! Audit log entries: what the cluster did with a transaction, and the transaction itself.
//!
//! ```text
//! LogEntry := 0x01 (version) | height u64 | index u32 | outcome u8
//!           | detail (varint len <= MAX_LOG_DETAIL_BYTES, UTF-8) | SignedTransaction
//! ```
//!
//! Every receipted transaction is an entry, whatever became of it, so the log shows refused
//! attempts too; a verifier must read the outcome before it trusts the transaction: only an
//! [`Outcome::Applied`] entry took effect. `detail` says why an entry was not applied, or, for
//! a key event that waited in escrow, which transaction released it (it then appears twice:
//! once `escrowed` where it was ordered, once `applied` where it was accepted).

use crate::{Outcome, SignedTransaction, limits::MAX_LOG_DETAIL_BYTES};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write};

/// The version byte of [`LogEntry`] encodings.
pub const LOG_ENTRY_VERSION: u8 = 1;

/// One leaf of the audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LogEntry {
    /// The height of the block whose execution produced the entry.
    pub height: u64,
    /// The position in that block of the transaction being executed (for a released escrowed
    /// event: the transaction whose acceptance released it).
    pub index: u32,
    /// What the state machine did with the transaction.
    pub outcome: Outcome,
    /// Why it was not applied (empty when there is nothing to say), at most
    /// [`MAX_LOG_DETAIL_BYTES`].
    pub detail: String,
    /// The transaction, as signed.
    pub tx: SignedTransaction,
}

/// Why bytes are not a log entry.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum LogEntryError {
    /// A version this code does not know.
    #[error("unsupported log entry version {0}: this code reads version {LOG_ENTRY_VERSION}")]
    Version(u8),
    /// Not a canonical encoding.
    #[error("malformed log entry: {0}")]
    Malformed(String),
}

impl LogEntry {
    /// Decodes an entry, naming an unknown version as such.
    pub fn from_bytes(bytes: &[u8]) -> Result<LogEntry, LogEntryError> {
        match bytes.first() {
            Some(&LOG_ENTRY_VERSION) => {}
            Some(&other) => return Err(LogEntryError::Version(other)),
            None => return Err(LogEntryError::Malformed("empty".into())),
        }
        crate::decode::<LogEntry>(bytes).map_err(|e| LogEntryError::Malformed(e.to_string()))
    }

    /// `detail` cut to at most [`MAX_LOG_DETAIL_BYTES`] at a character boundary, so that any
    /// reason fits an entry.
    pub fn bounded_detail(detail: &str) -> String {
        let mut end = detail.len().min(MAX_LOG_DETAIL_BYTES);
        while !detail.is_char_boundary(end) {
            end -= 1;
        }
        detail[..end].to_string()
    }
}

impl Write for LogEntry {
    fn write(&self, buf: &mut impl BufMut) {
        LOG_ENTRY_VERSION.write(buf);
        self.height.write(buf);
        self.index.write(buf);
        (self.outcome as u8).write(buf);
        self.detail.as_bytes().to_vec().write(buf);
        self.tx.write(buf);
    }
}

impl EncodeSize for LogEntry {
    fn encode_size(&self) -> usize {
        1 + 8 + 4 + 1 + self.detail.as_bytes().to_vec().encode_size() + self.tx.encode_size()
    }
}

impl Read for LogEntry {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != LOG_ENTRY_VERSION {
            return Err(CodecError::InvalidEnum(version));
        }
        let height = u64::read(buf)?;
        let index = u32::read(buf)?;
        let code = u8::read(buf)?;
        let outcome = Outcome::from_code(code).ok_or(CodecError::InvalidEnum(code))?;
        let cfg: RangeCfg<usize> = (0..=MAX_LOG_DETAIL_BYTES).into();
        let detail = Vec::<u8>::read_cfg(buf, &(cfg, ()))?;
        let detail = String::from_utf8(detail)
            .map_err(|_| CodecError::Invalid("LogEntry", "detail is not UTF-8"))?;
        let tx = SignedTransaction::read(buf)?;
        Ok(LogEntry {
            height,
            index,
            outcome,
            detail,
            tx,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Payload, PrivateKey, Sender, Transaction, hash_parts};
    use commonware_codec::Encode as _;
    use commonware_cryptography::Signer as _;

    fn entry(outcome: Outcome, detail: &str) -> LogEntry {
        let key = PrivateKey::from_seed(2026);
        let tx = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: 42,
            expiry_ms: 1_700_000_000_000,
            payload: Payload::Memo(b"fixture".to_vec()),
        }
        .sign(&key, &hash_parts(&[b"welkin fixture cluster"]));
        LogEntry {
            height: 7,
            index: 3,
            outcome,
            detail: detail.into(),
            tx,
        }
    }

    #[test]
    fn entries_round_trip_and_name_their_outcome() {
        for (outcome, detail) in [
            (Outcome::Applied, ""),
            (Outcome::Duplicity, "not a recovery"),
            (Outcome::Rejected, "superseded"),
        ] {
            let entry = entry(outcome, detail);
            let bytes = entry.encode();
            assert_eq!(LogEntry::from_bytes(&bytes), Ok(entry));
        }
    }

    #[test]
    fn unknown_versions_and_oversized_details_are_refused() {
        let mut bytes = entry(Outcome::Applied, "").encode().to_vec();
        bytes[0] = 2;
        assert_eq!(LogEntry::from_bytes(&bytes), Err(LogEntryError::Version(2)));
        let long = "é".repeat(MAX_LOG_DETAIL_BYTES);
        let bounded = LogEntry::bounded_detail(&long);
        assert!(bounded.len() <= MAX_LOG_DETAIL_BYTES && long.starts_with(&bounded));
        let too_long = entry(Outcome::Rejected, &"x".repeat(MAX_LOG_DETAIL_BYTES + 1));
        assert!(matches!(
            LogEntry::from_bytes(&too_long.encode()),
            Err(LogEntryError::Malformed(_))
        ));
    }

    #[test]
    fn the_encoding_is_frozen() {
        let bytes = entry(Outcome::Rejected, "why").encode();
        assert_eq!(
            hex::encode(hash_parts(&[&bytes])),
            "15ce6fb1e1c35259956526d01ae23bfa144f33930ae342b80a503f81e11d0b9a",
            "log entry encoding changed: bump LOG_ENTRY_VERSION, then update the fixture"
        );
    }
}
