//! The mempool: verified transactions waiting for a block, deduplicated by id.
//!
//! Every transaction in the pool has had its signature checked, so the pool doubles as the
//! node's signature cache: block verification and execution skip the check for a transaction
//! whose exact bytes (id and signature) are in the pool.

use commonware_codec::EncodeSize;
use std::{
    collections::{HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};
use welkin_types::{SignedTransaction, TxId};

/// Why the pool refused a transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MempoolError {
    /// The pool holds its maximum; the client should retry later.
    #[error("mempool is full ({0} transactions); retry later")]
    Full(usize),
}

/// Limits of the pool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolConfig {
    /// Most transactions held at once.
    pub max_txs: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self { max_txs: 200_000 }
    }
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<TxId, SignedTransaction>,
    order: VecDeque<TxId>,
}

/// A shared handle to the pool.
#[derive(Clone)]
pub struct Mempool {
    inner: Arc<Mutex<Inner>>,
    config: MempoolConfig,
}

impl Mempool {
    /// An empty pool.
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            inner: Arc::default(),
            config,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("mempool lock is never poisoned: no panics while held")
    }

    /// Adds a transaction whose signature the caller has verified. Returns whether it is new.
    pub fn insert(&self, tx: SignedTransaction) -> Result<bool, MempoolError> {
        let mut inner = self.lock();
        if inner.by_id.contains_key(&tx.id()) {
            return Ok(false);
        }
        if inner.by_id.len() >= self.config.max_txs {
            return Err(MempoolError::Full(self.config.max_txs));
        }
        inner.order.push_back(tx.id());
        inner.by_id.insert(tx.id(), tx);
        Ok(true)
    }

    /// Whether this exact transaction (same id and signature) is in the pool, and so verified.
    pub fn holds_verified(&self, tx: &SignedTransaction) -> bool {
        self.lock()
            .by_id
            .get(&tx.id())
            .is_some_and(|held| held.signatures == tx.signatures)
    }

    /// Whether a transaction with this id is waiting.
    pub fn contains(&self, id: &TxId) -> bool {
        self.lock().by_id.contains_key(id)
    }

    /// Takes up to `max_txs` transactions totalling at most `max_bytes`, oldest first,
    /// skipping those in `exclude` (already in an unfinalized ancestor). They stay in the pool
    /// until [`Self::remove`] is called for a finalized block.
    pub fn select(
        &self,
        max_txs: usize,
        max_bytes: usize,
        exclude: &HashSet<TxId>,
    ) -> Vec<SignedTransaction> {
        let inner = self.lock();
        let mut selected = Vec::new();
        let mut bytes = 0;
        for id in &inner.order {
            if selected.len() >= max_txs {
                break;
            }
            if exclude.contains(id) {
                continue;
            }
            let Some(tx) = inner.by_id.get(id) else {
                continue;
            };
            let size = tx.encode_size();
            if bytes + size > max_bytes {
                break;
            }
            bytes += size;
            selected.push(tx.clone());
        }
        selected
    }

    /// Drops the given transactions (they were finalized).
    pub fn remove<'a>(&self, ids: impl IntoIterator<Item = &'a TxId>) {
        let mut inner = self.lock();
        let mut removed = 0;
        for id in ids {
            if inner.by_id.remove(id).is_some() {
                removed += 1;
            }
        }
        if removed > 0 {
            let Inner { by_id, order } = &mut *inner;
            order.retain(|id| by_id.contains_key(id));
        }
    }

    /// Number of waiting transactions.
    pub fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Whether the pool is empty.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;
    use welkin_types::{Payload, PrivateKey, Sender, Transaction, hash_parts};

    fn tx(nonce: u64) -> SignedTransaction {
        let key = PrivateKey::from_seed(1);
        Transaction {
            sender: Sender::Key(key.public_key()),
            nonce,
            expiry_ms: 1,
            payload: Payload::Memo(vec![]),
        }
        .sign(&key, &hash_parts(&[b"c"]))
    }

    #[test]
    fn dedups_selects_in_order_and_removes() {
        let pool = Mempool::new(MempoolConfig { max_txs: 3 });
        assert_eq!(pool.insert(tx(1)), Ok(true));
        assert_eq!(pool.insert(tx(1)), Ok(false));
        pool.insert(tx(2)).expect("room");
        pool.insert(tx(3)).expect("room");
        assert_eq!(pool.insert(tx(4)), Err(MempoolError::Full(3)));
        let exclude: HashSet<_> = [tx(1).id()].into();
        let picked: Vec<_> = pool
            .select(10, usize::MAX, &exclude)
            .iter()
            .map(|t| t.tx.nonce)
            .collect();
        assert_eq!(picked, vec![2, 3]);
        pool.remove(&[tx(2).id()]);
        assert_eq!(pool.len(), 2);
        assert!(pool.holds_verified(&tx(1)));
        assert!(!pool.contains(&tx(2).id()));
    }
}
