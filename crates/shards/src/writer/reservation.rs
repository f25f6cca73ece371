//! Capacity reserved by a shard being written.

use std::sync::Arc;

use crate::{ShardId, header::Header, store::Inner, writer::CreateError};

/// Bytes a writer holds against capacity, and its id in the store's `writing` set; released
/// when dropped unless [`Reservation::commit`] turned it into a stored shard.
#[derive(Debug)]
pub(super) struct Reservation {
    pub(super) inner: Arc<Inner>,
    id: ShardId,
    bytes: u64,
    held: bool,
}

impl Reservation {
    /// Takes `bytes` for `id`, or says why not.
    pub(super) fn take(inner: &Arc<Inner>, id: ShardId, bytes: u64) -> Result<Self, CreateError> {
        let mut state = inner.state();
        if state.shards.contains_key(&id) || state.writing.contains(&id) {
            return Err(CreateError::Duplicate { id });
        }
        let max = inner.limits.max_open_writers.get();
        if state.writing.len() >= max {
            return Err(CreateError::TooManyWriters { max });
        }
        let free = inner
            .limits
            .capacity_bytes
            .saturating_sub(state.used + state.reserved);
        if bytes > free {
            return Err(CreateError::NoSpace {
                id,
                needed: bytes,
                free,
            });
        }
        state.writing.insert(id);
        state.reserved += bytes;
        Ok(Self {
            inner: inner.clone(),
            id,
            bytes,
            held: true,
        })
    }

    /// Indexes the finished shard and turns the reservation into used bytes, in one critical
    /// section so no duplicate can slip between them.
    pub(super) fn commit(&mut self, header: Header) {
        let mut state = self.inner.state();
        state.reserved -= self.bytes;
        state.writing.remove(&self.id);
        state.insert(header);
        self.held = false;
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if self.held {
            let mut state = self.inner.state();
            state.reserved -= self.bytes;
            state.writing.remove(&self.id);
        }
    }
}
