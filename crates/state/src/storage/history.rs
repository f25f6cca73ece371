//! An object's audit history: the last [`HISTORY_LEN`] settled audits of its shards and the
//! repairs of it, newest first, in one bounded record per object.
//!
//! The state keeps it so that `welkin obj audit-log` can answer from committed state alone
//! (the log has the same facts, but scattered over every node's verdict transactions). Each
//! event costs one read and one write of a record of at most [`HISTORY_LEN`] events whatever
//! the object's age, and the record goes with the object when it is deleted or removed.
//!
//! ```text
//! ObjectHistory := 0x01 | events (u16 count, Event*)        newest first, at most 64
//! Event         := kind u8 | height u64 | epoch u64 | shard u16 | member u32 | reason str
//! ```

use crate::{
    Overlay, Snapshot, keys,
    stored::{Reader, StoredError, Writer, read_list, write_list},
};
use welkin_types::Digest;

/// Events an object's history keeps; older ones are dropped.
pub const HISTORY_LEN: usize = 64;
/// Characters of a reason kept (the rest is cut).
pub const MAX_REASON_CHARS: usize = 256;

const VERSION: u8 = 1;

/// What happened.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventKind {
    /// f+1 nodes found the holder's proof of the shard good.
    AuditPassed,
    /// f+1 nodes found it bad, or nobody found it good within the epoch: the shard is lost.
    AuditFailed,
    /// The state ordered the shard rebuilt by `member`.
    RepairOrdered,
    /// `member` acknowledged the rebuilt shard: it is healthy again.
    RepairDone,
    /// `member` did not acknowledge the rebuilt shard in time.
    RepairExpired,
}

impl EventKind {
    /// The name used in JSON and listings.
    pub fn name(self) -> &'static str {
        match self {
            EventKind::AuditPassed => "audit_passed",
            EventKind::AuditFailed => "audit_failed",
            EventKind::RepairOrdered => "repair_ordered",
            EventKind::RepairDone => "repair_done",
            EventKind::RepairExpired => "repair_expired",
        }
    }

    fn byte(self) -> u8 {
        match self {
            EventKind::AuditPassed => 1,
            EventKind::AuditFailed => 2,
            EventKind::RepairOrdered => 3,
            EventKind::RepairDone => 4,
            EventKind::RepairExpired => 5,
        }
    }

    fn from_byte(byte: u8) -> Option<EventKind> {
        Some(match byte {
            1 => EventKind::AuditPassed,
            2 => EventKind::AuditFailed,
            3 => EventKind::RepairOrdered,
            4 => EventKind::RepairDone,
            5 => EventKind::RepairExpired,
            _ => return None,
        })
    }
}

/// One event of an object's history.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct HistoryEvent {
    /// What happened.
    pub kind: EventKind,
    /// The height it was settled at.
    pub height: u64,
    /// The audit epoch (0 for repairs).
    pub epoch: u64,
    /// The shard.
    pub shard: u16,
    /// The member concerned: the audited holder, or the repair's new holder.
    pub member: u32,
    /// Why an audit failed or a repair expired, or what an order replaced (at most
    /// [`MAX_REASON_CHARS`] characters; empty for a pass).
    pub reason: String,
}

/// An object's recent audits and repairs, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct ObjectHistory {
    /// At most [`HISTORY_LEN`] events, newest first.
    pub events: Vec<HistoryEvent>,
}

impl ObjectHistory {
    /// Adds `event` as the newest, dropping the oldest beyond [`HISTORY_LEN`] and cutting
    /// its reason to [`MAX_REASON_CHARS`].
    pub fn push(&mut self, mut event: HistoryEvent) {
        if event.reason.chars().count() > MAX_REASON_CHARS {
            event.reason = event.reason.chars().take(MAX_REASON_CHARS).collect();
        }
        self.events.insert(0, event);
        self.events.truncate(HISTORY_LEN);
    }

    /// Encodes for state.
    pub fn encode(&self) -> Vec<u8> {
        assert!(self.events.len() <= HISTORY_LEN, "the history is bounded");
        let mut w = Writer::default();
        w.u8(VERSION);
        write_list(&mut w, &self.events, write_event);
        w.0
    }

    /// Decodes from state.
    pub fn decode(value: &[u8]) -> Result<ObjectHistory, StoredError> {
        let r = &mut Reader::new("object history", value);
        r.version(VERSION)?;
        let events = read_list(r, |r| {
            let kind = r.u8()?;
            let kind = EventKind::from_byte(kind).ok_or_else(|| r.error(format!("kind {kind}")))?;
            Ok(HistoryEvent {
                kind,
                height: r.u64()?,
                epoch: r.u64()?,
                shard: r.u16()? as u16,
                member: r.u32()? as u32,
                reason: r.str()?,
            })
        })?;
        r.end()?;
        if events.len() > HISTORY_LEN {
            return Err(r.error(format!(
                "{} events, at most {HISTORY_LEN} are kept",
                events.len()
            )));
        }
        Ok(ObjectHistory { events })
    }
}

fn write_event(w: &mut Writer, event: &HistoryEvent) {
    w.u8(event.kind.byte());
    w.u64(event.height);
    w.u64(event.epoch);
    w.u16(usize::from(event.shard));
    w.u32(event.member as usize);
    w.str(&event.reason);
}

/// The history of object `id` (empty if none; a corrupt one is reported and read as empty).
pub fn history_of<S: Snapshot>(state: &Overlay<'_, S>, id: &Digest) -> ObjectHistory {
    state
        .decoded(&keys::object_history(id), ObjectHistory::decode)
        .unwrap_or_default()
}

/// Adds `event` to the history of object `id`, if the object still exists (a history never
/// outlives its object).
pub(crate) fn record<S: Snapshot>(state: &mut Overlay<'_, S>, id: &Digest, event: HistoryEvent) {
    if state.get(&keys::object(id)).is_none() {
        return;
    }
    let mut history = history_of(state, id);
    history.push(event);
    state.put(keys::object_history(id), history.encode());
}

/// Removes the history of a removed object.
pub(crate) fn forget<S: Snapshot>(state: &mut Overlay<'_, S>, id: &Digest) {
    state.delete(keys::object_history(id));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(kind: EventKind, height: u64, reason: &str) -> HistoryEvent {
        HistoryEvent {
            kind,
            height,
            epoch: height / 64,
            shard: 3,
            member: 2,
            reason: reason.into(),
        }
    }

    fn full() -> ObjectHistory {
        let mut history = ObjectHistory::default();
        history.push(event(EventKind::AuditPassed, 70, ""));
        history.push(event(
            EventKind::AuditFailed,
            140,
            "chunk 7 does not match its block",
        ));
        history.push(event(
            EventKind::RepairOrdered,
            141,
            "attempt 1, replacing member 2",
        ));
        history.push(event(
            EventKind::RepairExpired,
            398,
            "not acknowledged by height 397",
        ));
        history.push(event(EventKind::RepairDone, 900, ""));
        history
    }

    #[test]
    fn histories_round_trip_and_refuse_truncated_or_unknown_bytes() {
        let history = full();
        let bytes = history.encode();
        assert_eq!(ObjectHistory::decode(&bytes), Ok(history));
        for cut in 0..bytes.len() {
            assert!(
                ObjectHistory::decode(&bytes[..cut]).is_err(),
                "a history cut at {cut} of {} bytes decodes",
                bytes.len()
            );
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(ObjectHistory::decode(&longer).is_err(), "a trailing byte");
        let mut version = bytes.clone();
        version[0] = 2;
        assert!(
            ObjectHistory::decode(&version).is_err(),
            "an unknown version"
        );
        let mut kind = bytes;
        kind[3] = 9; // the first event's kind (after version and count)
        let error = ObjectHistory::decode(&kind).expect_err("an unknown kind");
        assert!(error.reason.contains("kind 9"), "{error}");
    }

    #[test]
    fn a_history_keeps_the_newest_events_and_cuts_long_reasons() {
        let mut history = ObjectHistory::default();
        for height in 0..(HISTORY_LEN as u64 + 10) {
            history.push(event(EventKind::AuditPassed, height, ""));
        }
        history.push(event(EventKind::AuditFailed, 1000, &"é".repeat(300)));
        assert_eq!(history.events.len(), HISTORY_LEN);
        assert_eq!(history.events[0].height, 1000);
        assert_eq!(history.events[0].reason.chars().count(), MAX_REASON_CHARS);
        assert_eq!(history.events[1].height, HISTORY_LEN as u64 + 9);
        assert_eq!(history.events[HISTORY_LEN - 1].height, 11);
        assert_eq!(
            ObjectHistory::decode(&history.encode()).map(|h| h.events.len()),
            Ok(HISTORY_LEN)
        );
    }

    #[test]
    fn more_events_than_are_kept_do_not_decode() {
        let mut w = Writer::default();
        w.u8(VERSION);
        let events = vec![event(EventKind::AuditPassed, 1, ""); HISTORY_LEN + 1];
        write_list(&mut w, &events, write_event);
        let error = ObjectHistory::decode(&w.0).expect_err("too many");
        assert!(error.reason.contains("at most 64"), "{error}");
    }

    #[test]
    fn the_history_encoding_is_frozen() {
        let fingerprint = hex::encode(welkin_types::hash_parts(&[&full().encode()]));
        assert_eq!(
            fingerprint, "c03ccf27fa52938d32a6c6ecfc1b4c50f3ef3dc037a1d7c8186cac0e1243404d",
            "the object history encoding changed (bump its version, then this fixture)"
        );
    }
}
