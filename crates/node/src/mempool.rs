//! The mempool: verified transactions waiting for a block, deduplicated by id.
//!
//! Every transaction in the pool has had its signature checked, so the pool doubles as the
//! node's signature cache: block verification and execution skip the check for a transaction
//! whose exact bytes (id and signature) are in the pool.
//!
//! The pool is bounded three ways: a transaction count, a byte budget, and a per-sender cap
//! (so that one busy or hostile sender cannot take the whole pool). Expired transactions
//! are evicted as soon as the pool is next touched: they could never commit.

use commonware_codec::EncodeSize;
use std::{
    collections::{BTreeSet, HashMap, HashSet, VecDeque},
    sync::{Arc, Mutex},
};
use welkin_types::{SignedTransaction, TxId};

/// Why the pool refused a transaction.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum MempoolError {
    /// The pool holds its maximum; the client should retry later.
    #[error("mempool is full ({0} transactions); retry later")]
    Full(usize),
    /// The pool holds its byte budget; the client should retry later.
    #[error("mempool is full ({0} bytes); retry later")]
    FullBytes(usize),
    /// The sender already has its maximum waiting.
    #[error("sender {sender} already has {cap} transactions waiting; retry after some commit")]
    SenderFull {
        /// The sender: a key (hex) or an identifier.
        sender: String,
        /// The per-sender cap.
        cap: usize,
    },
}

/// Limits of the pool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolConfig {
    /// Most transactions held at once (default 200,000).
    pub max_txs: usize,
    /// Most bytes of encoded transactions held at once (default 128 MiB).
    pub max_bytes: usize,
    /// Most transactions held at once from one sender, a key or an identifier (default
    /// 8,192: a full block's worth).
    pub max_per_sender: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            max_txs: 200_000,
            max_bytes: 128 * 1024 * 1024,
            max_per_sender: 8_192,
        }
    }
}

impl MempoolConfig {
    /// Checks that every limit is positive.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_txs == 0 || self.max_bytes == 0 || self.max_per_sender == 0 {
            return Err(format!("mempool limits must be positive: {self:?}"));
        }
        Ok(())
    }
}

struct Entry {
    tx: SignedTransaction,
    bytes: usize,
    sender: String,
}

#[derive(Default)]
struct Inner {
    by_id: HashMap<TxId, Entry>,
    order: VecDeque<TxId>,
    by_expiry: BTreeSet<(u64, TxId)>,
    per_sender: HashMap<String, usize>,
    bytes: usize,
}

impl Inner {
    /// Drops `id`; returns whether it was held. The order queue is cleaned by the caller.
    fn drop_entry(&mut self, id: &TxId) -> bool {
        let Some(entry) = self.by_id.remove(id) else {
            return false;
        };
        self.bytes -= entry.bytes;
        self.by_expiry.remove(&(entry.tx.tx.expiry_ms, *id));
        if let Some(count) = self.per_sender.get_mut(&entry.sender) {
            *count -= 1;
            if *count == 0 {
                self.per_sender.remove(&entry.sender);
            }
        }
        true
    }

    /// Drops every transaction that expired before `now_ms`.
    fn evict_expired(&mut self, now_ms: u64) {
        let mut removed = false;
        while let Some(&(expiry, id)) = self.by_expiry.first()
            && expiry < now_ms
        {
            removed |= self.drop_entry(&id);
        }
        if removed {
            let Inner { by_id, order, .. } = self;
            order.retain(|id| by_id.contains_key(id));
        }
    }
}

/// A shared handle to the pool.
#[derive(Clone)]
pub(crate) struct Mempool {
    inner: Arc<Mutex<Inner>>,
    config: MempoolConfig,
    /// Signalled on every new transaction, so a proposer waiting for work wakes at once.
    arrivals: Arc<tokio::sync::Notify>,
}

impl Mempool {
    /// An empty pool.
    pub(crate) fn new(config: MempoolConfig) -> Self {
        Self {
            inner: Arc::default(),
            config,
            arrivals: Arc::default(),
        }
    }

    /// Resolves when a transaction arrives (or one arrived since the last call returned).
    pub(crate) async fn arrival(&self) {
        self.arrivals.notified().await;
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("mempool lock is never poisoned: no panics while held")
    }

    /// Adds a transaction whose signature the caller has verified, at `now_ms` (expired
    /// transactions are evicted first). Returns whether it is new.
    pub(crate) fn insert(&self, tx: SignedTransaction, now_ms: u64) -> Result<bool, MempoolError> {
        let mut inner = self.lock();
        inner.evict_expired(now_ms);
        let id = tx.id();
        if inner.by_id.contains_key(&id) {
            return Ok(false);
        }
        if inner.by_id.len() >= self.config.max_txs {
            return Err(MempoolError::Full(self.config.max_txs));
        }
        let bytes = tx.encode_size();
        if inner.bytes + bytes > self.config.max_bytes {
            return Err(MempoolError::FullBytes(self.config.max_bytes));
        }
        let sender = tx.tx.sender.to_string();
        let count = inner.per_sender.get(&sender).copied().unwrap_or(0);
        if count >= self.config.max_per_sender {
            return Err(MempoolError::SenderFull {
                sender,
                cap: self.config.max_per_sender,
            });
        }
        inner.per_sender.insert(sender.clone(), count + 1);
        inner.bytes += bytes;
        inner.order.push_back(id);
        inner.by_expiry.insert((tx.tx.expiry_ms, id));
        inner.by_id.insert(id, Entry { tx, bytes, sender });
        drop(inner);
        // One stored permit at most: a proposer that was not waiting wakes once, looks, and
        // waits again.
        self.arrivals.notify_one();
        Ok(true)
    }

    /// Whether this exact transaction (same id and signature) is in the pool, and so verified.
    pub(crate) fn holds_verified(&self, tx: &SignedTransaction) -> bool {
        self.lock()
            .by_id
            .get(&tx.id())
            .is_some_and(|held| held.tx.signatures == tx.signatures)
    }

    /// Whether a transaction with this id is waiting.
    pub(crate) fn contains(&self, id: &TxId) -> bool {
        self.lock().by_id.contains_key(id)
    }

    /// Takes up to `max_txs` transactions totalling at most `max_bytes`, oldest first,
    /// skipping those in `exclude` (already in an unfinalized ancestor) and evicting those
    /// expired at `now_ms`. They stay in the pool until [`Self::remove`] is called for a
    /// finalized block.
    pub(crate) fn select(
        &self,
        max_txs: usize,
        max_bytes: usize,
        exclude: &HashSet<TxId>,
        now_ms: u64,
    ) -> Vec<SignedTransaction> {
        let mut inner = self.lock();
        inner.evict_expired(now_ms);
        let mut selected = Vec::new();
        let mut bytes = 0;
        for id in &inner.order {
            if selected.len() >= max_txs {
                break;
            }
            if exclude.contains(id) {
                continue;
            }
            let Some(entry) = inner.by_id.get(id) else {
                continue;
            };
            if bytes + entry.bytes > max_bytes {
                break;
            }
            bytes += entry.bytes;
            selected.push(entry.tx.clone());
        }
        selected
    }

    /// Drops the given transactions (they were finalized).
    pub(crate) fn remove<'a>(&self, ids: impl IntoIterator<Item = &'a TxId>) {
        let mut inner = self.lock();
        let mut removed = false;
        for id in ids {
            removed |= inner.drop_entry(id);
        }
        if removed {
            let Inner { by_id, order, .. } = &mut *inner;
            order.retain(|id| by_id.contains_key(id));
        }
    }

    /// Number of waiting transactions.
    pub(crate) fn len(&self) -> usize {
        self.lock().by_id.len()
    }

    /// Bytes of waiting transactions.
    #[cfg(test)]
    pub(crate) fn bytes(&self) -> usize {
        self.lock().bytes
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;
    use welkin_types::{Payload, PrivateKey, Sender, Transaction, hash_parts};

    fn tx_from(seed: u64, nonce: u64, expiry_ms: u64) -> SignedTransaction {
        let key = PrivateKey::from_seed(seed);
        Transaction {
            sender: Sender::Key(key.public_key()),
            nonce,
            expiry_ms,
            payload: Payload::Memo(vec![]),
        }
        .sign(&key, &hash_parts(&[b"c"]))
    }

    fn tx(nonce: u64) -> SignedTransaction {
        tx_from(1, nonce, 1_000)
    }

    fn config(max_txs: usize) -> MempoolConfig {
        MempoolConfig {
            max_txs,
            ..MempoolConfig::default()
        }
    }

    #[test]
    fn dedups_selects_in_order_and_removes() {
        let pool = Mempool::new(config(3));
        assert_eq!(pool.insert(tx(1), 0), Ok(true));
        assert_eq!(pool.insert(tx(1), 0), Ok(false));
        pool.insert(tx(2), 0).expect("room");
        pool.insert(tx(3), 0).expect("room");
        assert_eq!(pool.insert(tx(4), 0), Err(MempoolError::Full(3)));
        let exclude: HashSet<_> = [tx(1).id()].into();
        let picked: Vec<_> = pool
            .select(10, usize::MAX, &exclude, 0)
            .iter()
            .map(|t| t.tx.nonce)
            .collect();
        assert_eq!(picked, vec![2, 3]);
        pool.remove(&[tx(2).id()]);
        assert_eq!(pool.len(), 2);
        assert_eq!(pool.bytes(), 2 * tx(1).encode_size());
        assert!(pool.holds_verified(&tx(1)));
        assert!(!pool.contains(&tx(2).id()));
    }

    #[test]
    fn byte_budget_and_sender_cap_hold() {
        let size = tx(1).encode_size();
        let pool = Mempool::new(MempoolConfig {
            max_txs: 100,
            max_bytes: 3 * size,
            max_per_sender: 2,
        });
        pool.insert(tx(1), 0).expect("room");
        pool.insert(tx(2), 0).expect("room");
        assert_eq!(
            pool.insert(tx(3), 0),
            Err(MempoolError::SenderFull {
                sender: tx(3).tx.sender.to_string(),
                cap: 2
            })
        );
        pool.insert(tx_from(2, 1, 1_000), 0)
            .expect("another sender");
        assert_eq!(
            pool.insert(tx_from(3, 1, 1_000), 0),
            Err(MempoolError::FullBytes(3 * size))
        );
        // Finalizing one frees its sender's slot and its bytes.
        pool.remove(&[tx(1).id()]);
        pool.insert(tx(3), 0).expect("room again");
        assert_eq!(pool.bytes(), 3 * size);
    }

    #[test]
    fn expired_transactions_are_evicted() {
        let pool = Mempool::new(config(10));
        pool.insert(tx_from(1, 1, 100), 0).expect("room");
        pool.insert(tx_from(1, 2, 300), 0).expect("room");
        pool.insert(tx_from(2, 1, 200), 0).expect("room");
        let picked: Vec<_> = pool
            .select(10, usize::MAX, &HashSet::new(), 150)
            .iter()
            .map(|t| t.tx.expiry_ms)
            .collect();
        assert_eq!(picked, vec![300, 200], "the one expired at 100 is gone");
        assert_eq!(pool.len(), 2);
        pool.insert(tx_from(3, 1, 1_000), 250).expect("room");
        assert_eq!(
            pool.len(),
            2,
            "inserting at 250 evicts the one expired at 200"
        );
        assert_eq!(pool.bytes(), 2 * tx(1).encode_size());
        assert!(!pool.contains(&tx_from(2, 1, 200).id()));
    }
}
