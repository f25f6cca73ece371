//! Welkin's pure, deterministic state machine: apply(state, block) -> state.
//!
//! State is a map from 32-byte keys to byte values, held by the node in an authenticated
//! store that yields a root per height. This crate never touches that store: the node first
//! asks [`reads`] which keys a block may read, fetches them into a [`Snapshot`], and calls
//! [`apply`], which returns the writes and receipts. `apply` has no clock, no randomness, no
//! I/O and no hash-map iteration, so every honest node computes the same writes from the same
//! block and snapshot.
//!
//! Modules: [`system`] (chain parameters, membership, nonces and receipts) and the audit
//! log's bookkeeping: every receipted transaction is appended to the log, in block order, and
//! its receipt records its leaf index. Later services
//! add modules of their own, each owning a key prefix in [`keys`].

#![deny(missing_docs)]

pub mod authority;
pub mod identity;
pub mod keys;
pub mod system;

use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
};
use welkin_types::{Block, ChainParams, Digest, Receipt, SignedTransaction, TxId};

/// What a snapshot knows of one key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Lookup<'a> {
    /// The key holds this value.
    Value(&'a [u8]),
    /// The key holds nothing.
    Absent,
    /// The key was not fetched: [`apply`] will ask for it.
    NotFetched,
}

/// A read-only view of the state before a block.
pub trait Snapshot {
    /// What the snapshot knows of `key`.
    fn lookup(&self, key: &Digest) -> Lookup<'_>;
}

/// A whole state in memory (tests, tools): every key is known.
impl Snapshot for BTreeMap<Digest, Vec<u8>> {
    fn lookup(&self, key: &Digest) -> Lookup<'_> {
        match BTreeMap::get(self, key) {
            Some(value) => Lookup::Value(value),
            None => Lookup::Absent,
        }
    }
}

/// Keys fetched from a store, present or absent; any other key is [`Lookup::NotFetched`].
#[derive(Clone, Debug, Default)]
pub struct Fetched(pub BTreeMap<Digest, Option<Vec<u8>>>);

impl Snapshot for Fetched {
    fn lookup(&self, key: &Digest) -> Lookup<'_> {
        match self.0.get(key) {
            Some(Some(value)) => Lookup::Value(value),
            Some(None) => Lookup::Absent,
            None => Lookup::NotFetched,
        }
    }
}

/// [`apply`] read keys the snapshot did not hold: fetch them too and apply again.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NeedReads(pub Vec<Digest>);

/// What apply needs besides the state: fixed facts about the chain.
#[derive(Clone, Debug)]
pub struct Env {
    /// The cluster id every signature is bound to.
    pub cluster_id: Digest,
    /// Chain parameters from genesis.
    pub params: ChainParams,
}

/// The effect of one block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockEffects {
    /// Writes in key order; `None` deletes.
    pub writes: BTreeMap<Digest, Option<Vec<u8>>>,
    /// Receipts of the block's correctly signed, first-seen transactions, in block order.
    pub receipts: Vec<(TxId, Receipt)>,
    /// Transactions skipped because their signature does not verify.
    pub bad_signatures: u32,
    /// Transactions skipped because an earlier block (or position) already carried them.
    pub duplicates: u32,
    /// Audit log entries appended by this block, in order: the encoding of every receipted
    /// transaction. The first has index `log_size_before`.
    pub log_entries: Vec<Vec<u8>>,
    /// The audit log size before this block.
    pub log_size_before: u64,
}

/// The keys `apply` reads for `block` that can be named up front. The node fetches these into
/// the snapshot; keys that depend on state (an identifier's key state, escrow slots) are
/// asked for by [`apply`] through [`NeedReads`].
pub fn reads(block: &Block) -> Vec<Digest> {
    let mut keys = Vec::with_capacity(block.txs.len() * 2 + 1);
    keys.push(keys::log_size());
    for tx in &block.txs {
        keys.push(keys::receipt(&tx.id()));
        keys.push(keys::nonce(&tx.tx.sender, tx.tx.nonce));
        if let Some(prefix) = tx.tx.sender.prefix() {
            keys.push(keys::id_state(prefix));
        }
    }
    keys
}

/// Checks every transaction signature of `block` for `cluster_id`. Pure CPU work; the node
/// may instead reuse checks it already did (a transaction verified once stays verified).
pub fn check_signatures(cluster_id: &Digest, block: &Block) -> Vec<bool> {
    block
        .txs
        .iter()
        .map(|tx| tx.verify(cluster_id).is_ok())
        .collect()
}

/// Applies `block` to the state seen through `snapshot`.
///
/// `signature_ok[i]` says whether transaction `i` carries a valid signature (see
/// [`check_signatures`]). A transaction with a bad signature is skipped without a trace: it
/// was not authorised by its signer, so it may neither consume the nonce nor leave a receipt
/// that would block the genuine transaction with the same id.
///
/// If the block read keys the snapshot does not hold, the result is [`NeedReads`] with
/// those keys; the caller fetches them into the snapshot and applies again (each round
/// only adds keys, so this ends).
///
/// # Panics
/// Panics if `signature_ok` does not have one entry per transaction.
pub fn apply(
    env: &Env,
    snapshot: &impl Snapshot,
    block: &Block,
    signature_ok: &[bool],
) -> Result<BlockEffects, NeedReads> {
    assert_eq!(
        signature_ok.len(),
        block.txs.len(),
        "one signature verdict per transaction"
    );
    let mut overlay = Overlay {
        snapshot,
        writes: BTreeMap::new(),
        missing: RefCell::default(),
    };
    let mut effects = BlockEffects::default();
    let log_size_before = read_u64(overlay.get(&keys::log_size()));
    let mut log_size = log_size_before;
    for (index, (tx, &valid)) in block.txs.iter().zip(signature_ok).enumerate() {
        if !valid {
            effects.bad_signatures += 1;
            continue;
        }
        let receipt_key = keys::receipt(&tx.id());
        if overlay.get(&receipt_key).is_some() {
            effects.duplicates += 1;
            continue;
        }
        let outcome = system::execute(env, &mut overlay, block, tx);
        let receipt = Receipt {
            height: block.height,
            index: index as u32,
            outcome,
            log_index: log_size,
        };
        log_size += 1;
        overlay.put(
            receipt_key,
            commonware_codec::Encode::encode(&receipt).to_vec(),
        );
        effects.receipts.push((tx.id(), receipt));
        effects
            .log_entries
            .push(commonware_codec::Encode::encode(tx).to_vec());
    }
    if log_size != log_size_before {
        overlay.put(keys::log_size(), log_size.to_be_bytes().to_vec());
        overlay.put(
            keys::log_height(log_size),
            block.height.to_be_bytes().to_vec(),
        );
    }
    effects.log_size_before = log_size_before;
    let missing = overlay.missing.into_inner();
    if !missing.is_empty() {
        return Err(NeedReads(missing.into_iter().collect()));
    }
    effects.writes = overlay.writes;
    Ok(effects)
}

/// Reads a big-endian u64 state value; absent means zero.
///
/// # Panics
/// Panics if the stored value is not 8 bytes: the state machine only ever writes 8.
pub fn read_u64(value: Option<&[u8]>) -> u64 {
    value.map_or(0, |bytes| {
        u64::from_be_bytes(bytes.try_into().expect("u64 state values are 8 bytes"))
    })
}

/// Reads through the writes made so far in this block, then the snapshot; remembers the
/// keys the snapshot did not hold.
pub struct Overlay<'a, S: Snapshot> {
    snapshot: &'a S,
    writes: BTreeMap<Digest, Option<Vec<u8>>>,
    missing: RefCell<BTreeSet<Digest>>,
}

impl<S: Snapshot> Overlay<'_, S> {
    /// The current value at `key` (`None` also for a key not fetched, which is remembered so
    /// that [`apply`] asks for it).
    pub fn get(&self, key: &Digest) -> Option<&[u8]> {
        match self.writes.get(key) {
            Some(Some(value)) => Some(value),
            Some(None) => None,
            None => match self.snapshot.lookup(key) {
                Lookup::Value(value) => Some(value),
                Lookup::Absent => None,
                Lookup::NotFetched => {
                    self.missing.borrow_mut().insert(*key);
                    None
                }
            },
        }
    }

    /// Sets `key` to `value`.
    pub fn put(&mut self, key: Digest, value: Vec<u8>) {
        self.writes.insert(key, Some(value));
    }

    /// Removes `key`.
    pub fn delete(&mut self, key: Digest) {
        self.writes.insert(key, None);
    }
}

/// A helper for callers and tests: applies a transaction list as a block to an in-memory map.
pub fn apply_to_map(
    env: &Env,
    state: &mut BTreeMap<Digest, Vec<u8>>,
    block: &Block,
) -> BlockEffects {
    let verdicts = check_signatures(&env.cluster_id, block);
    let effects = apply(env, state, block, &verdicts).expect("a whole state holds every key");
    for (key, value) in &effects.writes {
        match value {
            Some(value) => state.insert(*key, value.clone()),
            None => state.remove(key),
        };
    }
    effects
}

/// Re-exported so that callers name transactions through this crate too.
pub type Tx = SignedTransaction;
