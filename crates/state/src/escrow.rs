//! The key event escrow: events that wait for an earlier event or a delegator's anchor.
//!
//! Escrowing costs the sender nothing but a transaction, so everything about it is bounded:
//! at most [`ESCROW_SLOT`] messages per (identifier, sequence number) (a new one pushes out
//! the oldest), [`ESCROW_PER_IDENTIFIER`] per identifier and [`ESCROW_TOTAL`] in all (past
//! either, the event is refused, not escrowed), and every message expires
//! [`ESCROW_TTL_MS`] of block time after it was escrowed (swept through
//! [`crate::expiry::Queue::Escrow`]).
//!
//! Releasing a chain of escrowed events must cost time linear in its length. The state
//! machine learns state values only through read rounds (see [`crate::apply`]), and each
//! round applies the whole block again, so a release that discovered one slot per round
//! would cost quadratic time. Instead, the first time a release touches an identifier's
//! escrow it names every slot a consecutive chain could occupy (as many as the identifier
//! has escrowed messages, which is capped), and for a delegated identifier the delegator's
//! anchors for them, so that the whole chain arrives in one round.
//!
//! ```text
//! Slot := 0x01 | count u8 | (expires_ms u64 | u32 length | SignedTransaction)*
//! ```
//!
//! The whole signed transaction is kept so that, when the event is accepted, the audit log
//! records that transaction as applied. A key event transaction is at most about 14 KiB (a
//! 12 KiB message, 16 signers), so a full slot stays below the node's 64 KiB value limit.

use crate::{
    Overlay, Snapshot, expiry, identity, keys,
    stored::{Reader, StoredError, Writer},
};
use commonware_codec::Encode as _;
use welkin_keri::Prefix;
use welkin_types::{Payload, SignedTransaction};

/// Most messages waiting in escrow for one (identifier, sequence number).
pub const ESCROW_SLOT: usize = 4;

/// Most messages waiting in escrow for one identifier.
pub const ESCROW_PER_IDENTIFIER: u64 = 1024;

/// Most messages waiting in escrow for all identifiers together.
pub const ESCROW_TOTAL: u64 = 16_384;

/// How long (block time) a message waits in escrow before it is dropped: one hour, as
/// keripy's longest escrow timeout.
pub const ESCROW_TTL_MS: u64 = 3_600_000;

/// The version byte of escrow slots.
const SLOT_VERSION: u8 = 1;

/// One escrowed message and the transaction that carried it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Escrowed {
    /// Block time after which it is dropped.
    pub expires_ms: u64,
    /// The transaction (its payload is the key event message).
    pub tx: SignedTransaction,
}

impl Escrowed {
    /// The key event message.
    pub fn message(&self) -> &[u8] {
        match &self.tx.tx.payload {
            Payload::KeyEvent(message) => message,
            _ => &[],
        }
    }
}

/// The stored encoding of an escrow slot.
pub fn encode_slot(entries: &[Escrowed]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(SLOT_VERSION);
    w.u8(u8::try_from(entries.len()).expect("slots hold at most ESCROW_SLOT messages"));
    for entry in entries {
        w.u64(entry.expires_ms);
        let tx = entry.tx.encode();
        w.u32(tx.len());
        w.raw(&tx);
    }
    w.0
}

/// Decodes an escrow slot.
pub fn decode_slot(value: &[u8]) -> Result<Vec<Escrowed>, StoredError> {
    let r = &mut Reader::new("escrow slot", value);
    r.version(SLOT_VERSION)?;
    let count = usize::from(r.u8()?);
    if count > ESCROW_SLOT {
        return Err(r.error(format!("{count} messages, the limit is {ESCROW_SLOT}")));
    }
    let mut entries = Vec::with_capacity(count);
    for _ in 0..count {
        let expires_ms = r.u64()?;
        let n = r.u32()?;
        let tx = SignedTransaction::from_bytes(r.raw(n)?)
            .map_err(|e| r.error(format!("a transaction does not decode: {e}")))?;
        if !matches!(tx.tx.payload, Payload::KeyEvent(_)) {
            return Err(r.error("a transaction does not carry a key event"));
        }
        entries.push(Escrowed { expires_ms, tx });
    }
    r.end()?;
    Ok(entries)
}

/// The messages in an escrow slot's value, oldest first (for the API).
pub fn escrowed_messages(value: Option<&[u8]>) -> Result<Vec<Vec<u8>>, StoredError> {
    let Some(value) = value else {
        return Ok(Vec::new());
    };
    Ok(decode_slot(value)?
        .iter()
        .map(|e| e.message().to_vec())
        .collect())
}

/// A slot as read: how many messages it stored, and those not expired at `now_ms`.
pub(crate) struct Loaded {
    pub(crate) stored: u64,
    pub(crate) live: Vec<Escrowed>,
}

pub(crate) fn load<S: Snapshot>(
    state: &Overlay<'_, S>,
    prefix: &str,
    sn: u64,
    now_ms: u64,
) -> Loaded {
    let entries = state
        .decoded(&keys::id_escrow(prefix, sn), decode_slot)
        .unwrap_or_default();
    let stored = entries.len() as u64;
    let live = entries
        .into_iter()
        .filter(|e| e.expires_ms >= now_ms)
        .collect();
    Loaded { stored, live }
}

/// Writes a slot back with `entries` if they differ from the `loaded_from` messages it
/// held (`changed`, or another count), keeping the identifier's and the total counts.
pub(crate) fn store<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    prefix: &str,
    sn: u64,
    loaded_from: u64,
    entries: &[Escrowed],
    changed: bool,
) {
    let now = entries.len() as u64;
    if now == loaded_from {
        if changed {
            state.put(keys::id_escrow(prefix, sn), encode_slot(entries));
        }
        return;
    }
    let slot = keys::id_escrow(prefix, sn);
    if entries.is_empty() {
        state.delete(slot);
    } else {
        state.put(slot, encode_slot(entries));
    }
    for key in [keys::id_escrow_count(prefix), keys::id_escrow_total()] {
        // Counts only move by what this slot held, so they cannot go below zero unless the
        // state is corrupt; saturate rather than wrap in that case.
        let count = (state.u64(&key) + now).saturating_sub(loaded_from);
        if count == 0 {
            state.delete(key);
        } else {
            state.put(key, count.to_be_bytes().to_vec());
        }
    }
}

/// The number of messages `prefix` has in escrow.
pub(crate) fn count<S: Snapshot>(state: &Overlay<'_, S>, prefix: &str) -> u64 {
    state.u64(&keys::id_escrow_count(prefix))
}

/// Puts the message of `tx`, an event `sn` of `prefix`, in escrow until `now_ms` plus
/// [`ESCROW_TTL_MS`]; `Err` says why it is refused instead.
pub(crate) fn add<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    prefix: &Prefix,
    sn: u64,
    tx: &SignedTransaction,
    now_ms: u64,
) -> Result<(), String> {
    let qb64 = prefix.qb64();
    let Loaded { stored, mut live } = load(state, &qb64, sn, now_ms);
    let message = match &tx.tx.payload {
        Payload::KeyEvent(message) => message,
        _ => unreachable!("only key events are escrowed"),
    };
    if live.iter().any(|e| e.message() == message.as_slice()) {
        store(state, &qb64, sn, stored, &live, false);
        return Ok(());
    }
    if live.len() >= ESCROW_SLOT {
        live.remove(0);
    } else {
        let expired = stored - live.len() as u64;
        let mine = count(state, &qb64).saturating_sub(expired);
        if mine >= ESCROW_PER_IDENTIFIER {
            return Err(format!(
                "escrow of {qb64} is full ({ESCROW_PER_IDENTIFIER} events wait for earlier \
                 ones): submit the events they wait for first"
            ));
        }
        let total = state.u64(&keys::id_escrow_total()).saturating_sub(expired);
        if total >= ESCROW_TOTAL {
            return Err(format!(
                "the escrow is full ({ESCROW_TOTAL} events wait): submit events in order, \
                 or retry when escrowed events have expired"
            ));
        }
    }
    live.push(Escrowed {
        expires_ms: now_ms.saturating_add(ESCROW_TTL_MS),
        tx: tx.clone(),
    });
    store(state, &qb64, sn, stored, &live, true);
    let mut item = sn.to_be_bytes().to_vec();
    item.extend_from_slice(qb64.as_bytes());
    state.schedule.escrow.push(item);
    Ok(())
}

/// Drops the expired messages of the slot an escrow queue item names.
pub(crate) fn expire<S: Snapshot>(state: &mut Overlay<'_, S>, item: &[u8], now_ms: u64) {
    let parsed = item.split_first_chunk::<8>().and_then(|(sn, prefix)| {
        Some((u64::from_be_bytes(*sn), std::str::from_utf8(prefix).ok()?))
    });
    let Some((sn, prefix)) = parsed else {
        let error = StoredError::new(
            "escrow queue item",
            format!("{} bytes: not sn and prefix", item.len()),
        );
        state.corrupt(keys::queue_head(expiry::Queue::Escrow.name()), error);
        return;
    };
    let loaded = load(state, prefix, sn, now_ms);
    store(state, prefix, sn, loaded.stored, &loaded.live, false);
}

/// Names, in one read round, every slot a chain of escrowed events of `prefix` starting at
/// `from` could occupy, and for a delegated identifier its delegator's anchors for them.
/// Does nothing once the slot at `from` is known, so a release pays for it once.
pub(crate) fn prefetch_chain<S: Snapshot>(state: &Overlay<'_, S>, prefix: &Prefix, from: u64) {
    let qb64 = prefix.qb64();
    if state.is_known(&keys::id_escrow(&qb64, from)) {
        return;
    }
    let reach = from.saturating_add(count(state, &qb64).min(ESCROW_PER_IDENTIFIER));
    state.prefetch((from..reach).map(|sn| keys::id_escrow(&qb64, sn)));
    let delegator = identity::key_state(state, prefix).and_then(|s| s.delegator);
    if let Some(delegator) = delegator {
        let d = delegator.qb64();
        state.prefetch(std::iter::once(keys::id_state(&d)));
        state.prefetch((from..reach).map(|sn| keys::id_anchor(&d, &qb64, sn)));
    }
}

/// Sweeps the due batches of the escrow expiry queue.
pub(crate) fn sweep<S: Snapshot>(state: &mut Overlay<'_, S>, now_ms: u64) {
    expiry::sweep(state, expiry::Queue::Escrow, now_ms, |state, item| {
        expire(state, item, now_ms)
    });
}

#[cfg(test)]
mod tests;
