//! Clients waiting for their transactions to commit (`wait=true`).
//!
//! A waiter is registered only for a transaction the node has admitted to its mempool, and it
//! is removed on every path: when the receipt arrives, when the client's wait times out, and
//! when the client disconnects (the [`Subscription`] is dropped with the request). The total
//! is capped, so no client can make the node hold more than [`WaitersConfig::max`] of them.

use futures::channel::oneshot;
use std::{
    collections::HashMap,
    sync::{Arc, Mutex},
};
use welkin_types::{Receipt, TxId};

/// Limits on waiting clients.
#[derive(Clone, Copy, Debug)]
pub struct WaitersConfig {
    /// Most waiters held at once, over all transactions (default 50,000).
    pub max: usize,
}

impl Default for WaitersConfig {
    fn default() -> Self {
        Self { max: 50_000 }
    }
}

/// Every waiter slot is taken.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "this node already holds {0} waiting requests; submit without wait=true and poll GET /v1/tx/ID, or retry later"
)]
pub struct TooManyWaiters(pub usize);

#[derive(Default)]
struct Inner {
    by_tx: HashMap<TxId, Vec<(u64, oneshot::Sender<Receipt>)>>,
    count: usize,
    next_token: u64,
}

/// The registry of waiters, shared by the API (which subscribes) and the executor (which
/// notifies).
#[derive(Clone)]
pub(crate) struct Waiters {
    inner: Arc<Mutex<Inner>>,
    config: WaitersConfig,
}

/// One client's wait for one transaction. Dropping it unregisters the waiter.
pub struct Subscription {
    waiters: Waiters,
    id: TxId,
    token: u64,
    receiver: oneshot::Receiver<Receipt>,
}

/// Resolves to the receipt, or `None` if the node stops first.
impl std::future::Future for Subscription {
    type Output = Option<Receipt>;

    fn poll(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Self::Output> {
        std::pin::Pin::new(&mut self.receiver)
            .poll(cx)
            .map(Result::ok)
    }
}

impl Drop for Subscription {
    fn drop(&mut self) {
        self.waiters.unregister(&self.id, self.token);
    }
}

impl Waiters {
    /// An empty registry.
    pub(crate) fn new(config: WaitersConfig) -> Self {
        Self {
            inner: Arc::default(),
            config,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("waiters lock is never poisoned: no panics while held")
    }

    /// Registers a wait for `id`'s receipt, or refuses when the registry is full.
    pub(crate) fn subscribe(&self, id: TxId) -> Result<Subscription, TooManyWaiters> {
        let (sender, receiver) = oneshot::channel();
        let mut inner = self.lock();
        if inner.count >= self.config.max {
            return Err(TooManyWaiters(self.config.max));
        }
        let token = inner.next_token;
        inner.next_token += 1;
        inner.count += 1;
        inner.by_tx.entry(id).or_default().push((token, sender));
        Ok(Subscription {
            waiters: self.clone(),
            id,
            token,
            receiver,
        })
    }

    fn unregister(&self, id: &TxId, token: u64) {
        let mut inner = self.lock();
        let Some(list) = inner.by_tx.get_mut(id) else {
            return;
        };
        let before = list.len();
        list.retain(|(t, _)| *t != token);
        let removed = before - list.len();
        if list.is_empty() {
            inner.by_tx.remove(id);
        }
        inner.count -= removed;
    }

    /// Hands each receipt to the clients waiting for it.
    pub(crate) fn notify<'a>(&self, receipts: impl IntoIterator<Item = &'a (TxId, Receipt)>) {
        let mut inner = self.lock();
        if inner.count == 0 {
            return;
        }
        for (id, receipt) in receipts {
            if let Some(list) = inner.by_tx.remove(id) {
                inner.count -= list.len();
                for (_, sender) in list {
                    let _ = sender.send(*receipt);
                }
            }
        }
    }

    /// Waiters held now.
    pub(crate) fn len(&self) -> usize {
        self.lock().count
    }

    /// Whether no client waits.
    #[cfg(test)]
    pub(crate) fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use welkin_types::{Outcome, hash_parts};

    fn receipt() -> Receipt {
        Receipt {
            height: 1,
            index: 0,
            outcome: Outcome::Applied,
            log_index: 0,
        }
    }

    #[test]
    fn capped_and_cleaned_up_on_every_path() {
        let waiters = Waiters::new(WaitersConfig { max: 2 });
        let a = hash_parts(&[b"a"]);
        let b = hash_parts(&[b"b"]);
        let mut first = waiters.subscribe(a).expect("room");
        let second = waiters.subscribe(b).expect("room");
        assert_eq!(waiters.subscribe(a).err(), Some(TooManyWaiters(2)));
        // A client that goes away (timeout or disconnect) frees its slot.
        drop(second);
        assert_eq!(waiters.len(), 1);
        let third = waiters.subscribe(a).expect("room again");
        // A receipt releases every waiter of its transaction.
        waiters.notify(&[(a, receipt())]);
        assert!(waiters.is_empty());
        assert_eq!(futures::executor::block_on(&mut first), Some(receipt()));
        drop(third);
        drop(first);
        assert!(
            waiters.is_empty(),
            "dropping after notify counts nothing twice"
        );
    }
}
