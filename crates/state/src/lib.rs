//! Welkin's pure, deterministic state machine: apply(state, block) -> state.
//!
//! State is a map from 32-byte keys to byte values, held by the node in an authenticated
//! store that yields a root per height. This crate never touches that store: the node first
//! asks [`reads`] which keys a block may read, fetches them into a [`Snapshot`], and calls
//! [`apply`], which returns the writes and receipts. `apply` has no clock, no randomness, no
//! I/O and no hash-map iteration, so every honest node computes the same writes from the same
//! block and snapshot.
//!
//! Modules: [`system`] (chain parameters, membership, nonces and receipts), [`identity`]
//! with its [`escrow`], [`expiry`] (forgetting used nonces and escrowed events in time order),
//! [`stored`] (the encoding of every stored value) and the audit log's bookkeeping: every
//! receipted transaction is appended to the log as a [`welkin_types::LogEntry`] that says
//! what became of it, in block order, and its receipt records its leaf index. Later services
//! add modules of their own, each owning a key prefix in [`keys`].

#![deny(missing_docs)]

pub mod authority;
pub mod epochs;
pub mod escrow;
pub mod expiry;
pub mod identity;
pub mod keygen;
pub mod keys;
pub mod membership;
// A refusal is a `SecretsResult` (about 200 bytes since a release names where its value is);
// it is built once per request, so boxing it buys nothing measurable.
#[allow(clippy::result_large_err)]
pub mod secrets;
pub mod storage;
pub mod stored;
pub mod system;

use commonware_codec::Encode as _;
use std::{
    cell::RefCell,
    collections::{BTreeMap, BTreeSet},
};
use stored::StoredError;
use welkin_types::{
    Block, ChainParams, Digest, LogEntry, Outcome, Receipt, SignedTransaction, TxId,
};

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

/// Why [`apply`] returned no effects.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApplyError {
    /// It read keys the snapshot did not hold: fetch them too and apply again.
    #[error("{} state keys are still to be read", .0.len())]
    NeedReads(Vec<Digest>),
    /// A stored value does not decode: the state is corrupt (or was written by other code),
    /// and the block cannot be applied. The node must stop rather than guess.
    #[error("the value at state key {} is corrupt: {error}", hex::encode(.key))]
    Corrupt {
        /// The key.
        key: Digest,
        /// What is wrong with its value.
        error: StoredError,
    },
}

/// What apply needs besides the state: fixed facts about the chain.
#[derive(Clone, Debug)]
pub struct Env {
    /// The cluster id every signature is bound to.
    pub cluster_id: Digest,
    /// Chain parameters from genesis.
    pub params: ChainParams,
    /// Every node the cluster ever had, by roster position: the genesis nodes in genesis
    /// order, then the nodes admitted since, in the order they joined (see [`epochs`]).
    /// Positions never change; those in [`Env::retired`] are no longer members.
    pub members: Vec<welkin_types::PublicKey>,
    /// Roster positions of the nodes that left (or were removed), sorted.
    pub retired: Vec<u32>,
    /// Signatures needed to act with a key the nodes hold together (2f+1).
    pub threshold: u16,
    /// Each node's failure domain, in the order of `members` (storage
    /// placement puts an object's shards in different domains while there are enough).
    pub domains: Vec<String>,
    /// The cluster's threshold public key if a trusted dealer made it at genesis; `None` for
    /// a dealerless cluster, whose key is in the state once generated (see
    /// [`keygen::cluster_key`], which answers for both).
    pub cluster_key: Option<welkin_types::ClusterKey>,
    /// Who admits new nodes, from genesis (`None`: the members are fixed).
    pub membership: Option<welkin_types::genesis::MembershipPolicy>,
}

impl Env {
    /// The roster position of `key` if it is a member now.
    pub fn member_position(&self, key: &welkin_types::PublicKey) -> Option<u32> {
        let position = self.members.iter().position(|m| m == key)? as u32;
        (!self.retired.contains(&position)).then_some(position)
    }

    /// Whether roster position `position` is a member now.
    pub fn is_active(&self, position: u32) -> bool {
        (position as usize) < self.members.len() && !self.retired.contains(&position)
    }

    /// The current members: (roster position, key), in roster order.
    pub fn active(&self) -> impl Iterator<Item = (u32, &welkin_types::PublicKey)> {
        self.members
            .iter()
            .enumerate()
            .map(|(i, key)| (i as u32, key))
            .filter(|(i, _)| !self.retired.contains(i))
    }

    /// How many members there are now.
    pub fn active_count(&self) -> usize {
        self.members.len() - self.retired.len()
    }
}

/// The effect of one block.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BlockEffects {
    /// Writes in key order; `None` deletes.
    pub writes: BTreeMap<Digest, Option<Vec<u8>>>,
    /// Receipts of the block's correctly signed, first-seen transactions, in block order,
    /// each followed by the new receipts of escrowed transactions its event released.
    pub receipts: Vec<(TxId, Receipt)>,
    /// Transactions skipped because their signature does not verify.
    pub bad_signatures: u32,
    /// Transactions skipped because an earlier block (or position) already carried them.
    pub duplicates: u32,
    /// Audit log entries appended by this block, in order: the [`LogEntry`] of every receipt
    /// in `receipts`. The first has index `log_size_before`.
    pub log_entries: Vec<Vec<u8>>,
    /// The audit log size before this block.
    pub log_size_before: u64,
    /// What each secrets request did, in block order: the node serves replies and releases
    /// partials from these.
    pub secrets: Vec<(TxId, secrets::SecretsResult)>,
    /// Values carried beside the log (see [`welkin_types::Detachable`]) that no state refers
    /// to any more, by the transaction that carried them: versions destroyed or dropped,
    /// responses unwrapped, and the values of transactions that were not applied. Every node
    /// deletes their bytes once it has executed the block: that is the crypto-shredding.
    pub shredded: Vec<TxId>,
    /// Objects deleted, or given up on because too few of their shards were stored in time:
    /// every node removes its shards of these (their keys were destroyed with `shredded`).
    pub objects_removed: Vec<Digest>,
    /// Whether this block was the last of its epoch: the node's environment (members,
    /// threshold) and consensus move to the next epoch (see [`epochs`]).
    pub epoch_ended: bool,
}

/// The keys `apply` reads for `block` that can be named up front. The node fetches these into
/// the snapshot; keys that depend on state (an identifier's key state, escrow slots) are
/// asked for by [`apply`] through [`NeedReads`].
pub fn reads(block: &Block) -> Vec<Digest> {
    let mut keys = Vec::with_capacity(block.txs.len() * 2 + 1);
    keys.push(keys::log_size());
    keys.extend(expiry::reads());
    keys.push(keys::id_escrow_total());
    keys.push(keys::secrets_teardown());
    keys.push(keys::keygen());
    keys.push(keys::cluster_key());
    keys.push(keys::epoch());
    keys.push(keys::epoch_key());
    keys.push(keys::membership_changes());
    for tx in &block.txs {
        keys.push(keys::receipt(&tx.id()));
        keys.push(keys::nonce(&tx.tx.sender, tx.tx.nonce));
        if let Some(prefix) = tx.tx.sender.prefix() {
            keys.push(keys::id_state(prefix));
        }
        if let (welkin_types::Sender::Key(key), welkin_types::Payload::Secrets(_)) =
            (&tx.tx.sender, &tx.tx.payload)
        {
            keys.push(keys::token(key));
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
/// If the block read keys the snapshot does not hold, the result is
/// [`ApplyError::NeedReads`] with those keys; the caller fetches them into the snapshot and
/// applies again (each round only adds keys, so this ends; the modules name keys they will
/// need together, so that a block needs a small number of rounds whatever it holds). A
/// stored value that does not decode gives [`ApplyError::Corrupt`].
///
/// Before the transactions run, used nonces, escrowed events and secrets tokens whose time
/// has passed are forgotten (see [`expiry`]).
/// Disabled secrets mounts are torn down a bounded amount per block (see
/// [`secrets::teardown`]).
///
/// # Panics
/// Panics if `signature_ok` does not have one entry per transaction.
pub fn apply(
    env: &Env,
    snapshot: &impl Snapshot,
    block: &Block,
    signature_ok: &[bool],
) -> Result<BlockEffects, ApplyError> {
    assert_eq!(
        signature_ok.len(),
        block.txs.len(),
        "one signature verdict per transaction"
    );
    let mut overlay = Overlay {
        snapshot,
        writes: BTreeMap::new(),
        missing: RefCell::default(),
        corrupt: RefCell::default(),
        schedule: expiry::Scheduled::default(),
        shredded: Vec::new(),
        objects_removed: Vec::new(),
    };
    let now = block.timestamp_ms;
    expiry::sweep(
        &mut overlay,
        expiry::Queue::Nonces,
        now,
        |state, item| match <[u8; 32]>::try_from(item) {
            Ok(key) => state.delete(Digest::from(key)),
            Err(_) => state.corrupt(
                keys::queue_head(expiry::Queue::Nonces.name()),
                StoredError::new("nonce queue item", format!("{} bytes, not 32", item.len())),
            ),
        },
    );
    escrow::sweep(&mut overlay, now);
    secrets::sweep_tokens(&mut overlay, now);
    secrets::teardown::sweep(&mut overlay);
    secrets::transit::dkg::sweep(&mut overlay, now);
    storage::sweep(&mut overlay, now);
    storage::repair::sweep(env, &mut overlay, block.height);
    keygen::sweep(env, &mut overlay, block);
    let mut effects = BlockEffects::default();
    let log_size_before = overlay.u64(&keys::log_size());
    let mut log_size = log_size_before;
    let log = |effects: &mut BlockEffects, id: TxId, receipt: Receipt, entry: LogEntry| {
        effects.receipts.push((id, receipt));
        effects.log_entries.push(entry.encode().to_vec());
    };
    for (index, (tx, &valid)) in block.txs.iter().zip(signature_ok).enumerate() {
        if !valid {
            effects.bad_signatures += 1;
            continue;
        }
        let id = tx.id();
        let receipt_key = keys::receipt(&id);
        if overlay.get(&receipt_key).is_some() {
            effects.duplicates += 1;
            continue;
        }
        let mut executed = system::execute(env, &mut overlay, block, tx);
        if let Some(result) = executed.secrets.take() {
            effects.secrets.push((id, result));
        }
        if executed.outcome != Outcome::Applied && tx.tx.payload.detachable().is_some() {
            // Nothing refers to the value of a transaction that did not apply.
            overlay.shredded.push(id);
        }
        let detail = executed.detail.unwrap_or_default();
        if !detail.is_empty() {
            overlay.put(keys::outcome_detail(&id), detail.clone().into_bytes());
        }
        let index = index as u32;
        let receipt = Receipt {
            height: block.height,
            index,
            outcome: executed.outcome,
            log_index: log_size,
        };
        log_size += 1;
        overlay.put(receipt_key, receipt.encode().to_vec());
        let entry = LogEntry {
            height: block.height,
            index,
            outcome: executed.outcome,
            detail: LogEntry::bounded_detail(&detail),
            // The log keeps the committed form: a value beside the log stays destroyable.
            tx: tx.detach(),
        };
        log(&mut effects, id, receipt, entry);
        // An escrowed event accepted now: its transaction's receipt moves to this entry,
        // which says it was applied (its first entry said it was escrowed).
        for released in executed.released {
            let released_id = released.id();
            let receipt = Receipt {
                height: block.height,
                index,
                outcome: Outcome::Applied,
                log_index: log_size,
            };
            log_size += 1;
            overlay.put(keys::receipt(&released_id), receipt.encode().to_vec());
            overlay.delete(keys::outcome_detail(&released_id));
            let entry = LogEntry {
                height: block.height,
                index,
                outcome: Outcome::Applied,
                detail: format!("released from escrow by transaction {}", hex::encode(id)),
                tx: released,
            };
            log(&mut effects, released_id, receipt, entry);
        }
    }
    effects.epoch_ended = epochs::end_of_block(env, &mut overlay, block);
    effects.shredded = std::mem::take(&mut overlay.shredded);
    effects.objects_removed = std::mem::take(&mut overlay.objects_removed);
    let scheduled = std::mem::take(&mut overlay.schedule);
    let nonce_due = now.saturating_add(env.params.max_tx_ttl_ms);
    expiry::append(
        &mut overlay,
        expiry::Queue::Nonces,
        nonce_due,
        scheduled.nonces,
    );
    let escrow_due = now.saturating_add(escrow::ESCROW_TTL_MS);
    expiry::append(
        &mut overlay,
        expiry::Queue::Escrow,
        escrow_due,
        scheduled.escrow,
    );
    for (tier, items) in expiry::Tier::ALL.into_iter().zip(scheduled.tokens) {
        let due = now.saturating_add(tier.delay_ms());
        expiry::append(&mut overlay, expiry::Queue::Tokens(tier), due, items);
    }
    let dkg_due = now.saturating_add(secrets::transit::dkg::ATTEMPT_MS);
    expiry::append(&mut overlay, expiry::Queue::Dkg, dkg_due, scheduled.dkg);
    let upload_due = now.saturating_add(storage::UPLOAD_WINDOW_MS);
    expiry::append(
        &mut overlay,
        expiry::Queue::Uploads,
        upload_due,
        scheduled.uploads,
    );
    if log_size != log_size_before {
        overlay.put(keys::log_size(), log_size.to_be_bytes().to_vec());
        overlay.put(
            keys::log_height(log_size),
            block.height.to_be_bytes().to_vec(),
        );
    }
    effects.log_size_before = log_size_before;
    if let Some((key, error)) = overlay.corrupt.into_inner() {
        return Err(ApplyError::Corrupt { key, error });
    }
    let missing = overlay.missing.into_inner();
    if !missing.is_empty() {
        return Err(ApplyError::NeedReads(missing.into_iter().collect()));
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

/// Runs a read-only question `ask` over `snapshot` (outside any block: the node's checks of
/// requests that are not logged, such as a transit encryption's authorisation).
///
/// As with [`apply`], keys the snapshot does not hold give [`ApplyError::NeedReads`]: the
/// caller fetches them and asks again; a stored value that does not decode gives
/// [`ApplyError::Corrupt`].
pub fn view<S: Snapshot, T>(
    snapshot: &S,
    ask: impl FnOnce(&Overlay<'_, S>) -> T,
) -> Result<T, ApplyError> {
    let overlay = Overlay {
        snapshot,
        writes: BTreeMap::new(),
        missing: RefCell::default(),
        corrupt: RefCell::default(),
        schedule: expiry::Scheduled::default(),
        shredded: Vec::new(),
        objects_removed: Vec::new(),
    };
    let answer = ask(&overlay);
    if let Some((key, error)) = overlay.corrupt.into_inner() {
        return Err(ApplyError::Corrupt { key, error });
    }
    let missing = overlay.missing.into_inner();
    if !missing.is_empty() {
        return Err(ApplyError::NeedReads(missing.into_iter().collect()));
    }
    Ok(answer)
}

/// Reads through the writes made so far in this block, then the snapshot; remembers the
/// keys the snapshot did not hold.
pub struct Overlay<'a, S: Snapshot> {
    snapshot: &'a S,
    writes: BTreeMap<Digest, Option<Vec<u8>>>,
    missing: RefCell<BTreeSet<Digest>>,
    /// The first stored value found corrupt.
    corrupt: RefCell<Option<(Digest, StoredError)>>,
    /// Expiring items this block creates.
    pub(crate) schedule: expiry::Scheduled,
    /// Sealed values this block destroyed, by the transaction that carried them.
    pub(crate) shredded: Vec<TxId>,
    /// Objects this block deleted or gave up on.
    pub(crate) objects_removed: Vec<Digest>,
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

    /// The value at `key` decoded with `decode`; a value that does not decode is recorded
    /// (so that [`apply`] fails with [`ApplyError::Corrupt`]) and read as absent.
    pub fn decoded<T>(
        &self,
        key: &Digest,
        decode: impl FnOnce(&[u8]) -> Result<T, StoredError>,
    ) -> Option<T> {
        match decode(self.get(key)?) {
            Ok(value) => Some(value),
            Err(error) => {
                self.corrupt(*key, error);
                None
            }
        }
    }

    /// The u64 at `key` (absent reads as zero).
    pub fn u64(&self, key: &Digest) -> u64 {
        self.decoded(key, stored::decode_u64).unwrap_or(0)
    }

    /// Records that the value at `key` is corrupt (the first such record is reported).
    pub fn corrupt(&self, key: Digest, error: StoredError) {
        self.corrupt.borrow_mut().get_or_insert((key, error));
    }

    /// Whether the value at `key` is known (written, or in the snapshot).
    pub fn is_known(&self, key: &Digest) -> bool {
        self.writes.contains_key(key) || self.snapshot.lookup(key) != Lookup::NotFetched
    }

    /// Names keys that will be read soon, so that [`apply`] asks for them in this round.
    pub fn prefetch(&self, keys: impl IntoIterator<Item = Digest>) {
        for key in keys {
            if !self.is_known(&key) {
                self.missing.borrow_mut().insert(key);
            }
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
