//! Expiry queues: state that may be forgotten after a time, forgotten in time order.
//!
//! A block that creates expiring state (a used nonce, an escrowed key event) appends its
//! items to the queue in batches of at most [`MAX_BATCH_ITEMS`], each with the block time
//! after which they are due. Block times never go backwards and every item of a queue waits
//! equally long, so batches are in due order and each block sweeps from the head, before its
//! transactions run: at most [`MAX_SWEEP_BATCHES`] due batches, twice what the largest block
//! appends, so the queue never falls behind for long. A sweep reads the head batch first and
//! the following ones only once the head is due, so a block pays for one small read while
//! nothing is due.
//!
//! Tokens live as long as their TTL says, and renewal moves their end, so they wait in
//! [`Tier`]s: a token is checked after the longest tier delay that does not pass its end
//! (a minute, an hour or a day), and a check that finds it still live queues it again. A
//! token is thus forgotten at most a minute after it expired, after one check per day of its
//! life and at most 24 + 60 in its last day.
//!
//! ```text
//! Batch := 0x01 | due_ms u64 | count u32 | (u16 length | item)*
//! ```

use crate::{
    Overlay, Snapshot, keys,
    stored::{Reader, StoredError, Writer},
};
use welkin_types::limits::MAX_BLOCK_TXS;

/// The version byte of queue batches.
const BATCH_VERSION: u8 = 1;

/// Most items in one batch, so that a batch stays far below the node's largest state value
/// (items are at most 32 + 8 bytes of nonce key, or sequence number and prefix).
pub const MAX_BATCH_ITEMS: usize = 1024;

/// Most due batches one block sweeps from one queue: twice the batches the largest block
/// appends (it schedules at most one item per transaction).
pub const MAX_SWEEP_BATCHES: u64 = 2 * MAX_BLOCK_TXS.div_ceil(MAX_BATCH_ITEMS) as u64;

/// The queues.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queue {
    /// Used nonces (items: the nonce's state key), due when any transaction that could carry
    /// them has expired.
    Nonces,
    /// Escrowed key events (items: sequence number u64 and prefix), due when they expire.
    Escrow,
    /// Secrets tokens that expire (items: the token's public key), due for a check after
    /// their tier's delay.
    Tokens(Tier),
    /// Attempts of transit key generations (items: key id, version u64, attempt u32), due
    /// when the attempt has run [`crate::secrets::transit::dkg::ATTEMPT_MS`]: the nodes that
    /// have not done their part by then are left out.
    Dkg,
    /// Object uploads (items: the object id), due [`crate::storage::UPLOAD_WINDOW_MS`] after
    /// their manifest was committed: an object not stored by then is settled (see
    /// [`crate::storage`]).
    Uploads,
}

impl Queue {
    pub(crate) fn name(self) -> &'static [u8] {
        match self {
            Queue::Nonces => b"nonces",
            Queue::Escrow => b"escrow",
            Queue::Tokens(Tier::Minute) => b"tokens/minute",
            Queue::Tokens(Tier::Hour) => b"tokens/hour",
            Queue::Tokens(Tier::Day) => b"tokens/day",
            Queue::Dkg => b"transit/dkg",
            Queue::Uploads => b"storage/uploads",
        }
    }
}

/// How long an item of a [`Queue::Tokens`] queue waits before it is checked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// One minute: tokens with less than an hour left.
    Minute,
    /// One hour: tokens with less than a day left.
    Hour,
    /// One day.
    Day,
}

impl Tier {
    /// Every tier, shortest first.
    pub const ALL: [Tier; 3] = [Tier::Minute, Tier::Hour, Tier::Day];

    /// How long its items wait.
    pub const fn delay_ms(self) -> u64 {
        match self {
            Tier::Minute => 60_000,
            Tier::Hour => 3_600_000,
            Tier::Day => 86_400_000,
        }
    }

    /// The tier for an item with `remaining_ms` to live: the longest delay that does not
    /// pass its end, or a minute.
    pub fn for_remaining(remaining_ms: u64) -> Tier {
        Tier::ALL
            .into_iter()
            .rev()
            .find(|tier| tier.delay_ms() <= remaining_ms)
            .unwrap_or(Tier::Minute)
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Items scheduled by the block being applied, written as one batch per queue at its end.
#[derive(Debug, Default)]
pub(crate) struct Scheduled {
    pub(crate) nonces: Vec<Vec<u8>>,
    pub(crate) escrow: Vec<Vec<u8>>,
    /// Token keys per [`Tier`], in the order of [`Tier::ALL`].
    pub(crate) tokens: [Vec<Vec<u8>>; 3],
    /// Key generation attempts that started.
    pub(crate) dkg: Vec<Vec<u8>>,
    /// Objects whose manifest was committed.
    pub(crate) uploads: Vec<Vec<u8>>,
}

impl Scheduled {
    /// Schedules a check of the token `key` that expires at `expire_ms` (now: `now_ms`).
    pub(crate) fn token(&mut self, now_ms: u64, expire_ms: u64, key: Vec<u8>) {
        let tier = Tier::for_remaining(expire_ms.saturating_sub(now_ms));
        self.tokens[tier.index()].push(key);
    }
}

/// One batch of a queue.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Batch {
    pub(crate) due_ms: u64,
    pub(crate) items: Vec<Vec<u8>>,
}

impl Batch {
    pub(crate) fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(BATCH_VERSION);
        w.u64(self.due_ms);
        w.u32(self.items.len());
        for item in &self.items {
            w.u16(item.len());
            w.raw(item);
        }
        w.0
    }

    pub(crate) fn decode(value: &[u8]) -> Result<Batch, StoredError> {
        let r = &mut Reader::new("expiry batch", value);
        r.version(BATCH_VERSION)?;
        let due_ms = r.u64()?;
        let count = r.u32()?;
        if count > MAX_BATCH_ITEMS {
            return Err(r.error(format!("{count} items, the limit is {MAX_BATCH_ITEMS}")));
        }
        let mut items = Vec::with_capacity(count);
        for _ in 0..count {
            let n = r.u16()?;
            items.push(r.raw(n)?.to_vec());
        }
        r.end()?;
        Ok(Batch { due_ms, items })
    }
}

/// Calls `on_item` for every item of the batches of `queue` due before `now_ms` (at most
/// [`MAX_SWEEP_BATCHES`]) and removes them.
pub(crate) fn sweep<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    queue: Queue,
    now_ms: u64,
    mut on_item: impl FnMut(&mut Overlay<'_, S>, &[u8]),
) {
    let name = queue.name();
    let head_key = keys::queue_head(name);
    let mut head = state.u64(&head_key);
    let tail = state.u64(&keys::queue_tail(name));
    let reach = tail.min(head.saturating_add(MAX_SWEEP_BATCHES));
    let start = head;
    while head < reach {
        let key = keys::queue_batch(name, head);
        let Some(batch) = state.decoded(&key, Batch::decode) else {
            break;
        };
        if batch.due_ms >= now_ms {
            break;
        }
        if head == start {
            // The head is due: name every batch this sweep may reach at once, so that they
            // arrive in one read round.
            state.prefetch((head + 1..reach).map(|seq| keys::queue_batch(name, seq)));
        }
        for item in &batch.items {
            on_item(state, item);
        }
        state.delete(key);
        head += 1;
    }
    if head != start {
        state.put(head_key, head.to_be_bytes().to_vec());
    }
}

/// Appends `items` to `queue` in batches due at `due_ms`.
pub(crate) fn append<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    queue: Queue,
    due_ms: u64,
    items: Vec<Vec<u8>>,
) {
    if items.is_empty() {
        return;
    }
    let name = queue.name();
    let tail_key = keys::queue_tail(name);
    let mut tail = state.u64(&tail_key);
    for chunk in items.chunks(MAX_BATCH_ITEMS) {
        let batch = Batch {
            due_ms,
            items: chunk.to_vec(),
        };
        state.put(keys::queue_batch(name, tail), batch.encode());
        tail += 1;
    }
    state.put(tail_key, tail.to_be_bytes().to_vec());
}

/// The keys a sweep or an append reads first (the node fetches them up front).
pub(crate) fn reads() -> impl Iterator<Item = welkin_types::Digest> {
    [Queue::Nonces, Queue::Escrow, Queue::Dkg, Queue::Uploads]
        .into_iter()
        .chain(Tier::ALL.map(Queue::Tokens))
        .flat_map(|queue| {
            let name = queue.name();
            [keys::queue_head(name), keys::queue_tail(name)]
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_wait_in_the_longest_tier_that_does_not_pass_their_end() {
        assert_eq!(Tier::for_remaining(0), Tier::Minute);
        assert_eq!(Tier::for_remaining(59_999), Tier::Minute);
        assert_eq!(Tier::for_remaining(3_599_999), Tier::Minute);
        assert_eq!(Tier::for_remaining(3_600_000), Tier::Hour);
        assert_eq!(Tier::for_remaining(86_399_999), Tier::Hour);
        assert_eq!(Tier::for_remaining(86_400_000), Tier::Day);
        assert_eq!(Tier::for_remaining(u64::MAX), Tier::Day);
    }

    #[test]
    fn batches_round_trip_and_refuse_other_bytes() {
        let batch = Batch {
            due_ms: 1_700_000_600_000,
            items: vec![vec![1; 32], vec![], b"E-prefix".to_vec()],
        };
        let bytes = batch.encode();
        assert_eq!(Batch::decode(&bytes), Ok(batch));
        for cut in 0..bytes.len() {
            assert!(Batch::decode(&bytes[..cut]).is_err());
        }
        let mut version = bytes.clone();
        version[0] = 9;
        assert!(Batch::decode(&version).is_err());
    }
}
