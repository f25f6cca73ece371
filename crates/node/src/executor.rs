//! The executor: applies finalized blocks, in height order, to the authenticated state, then
//! signs the checkpoint for that height.
//!
//! State lives in a commonware QMDB (`current::unordered::variable`), which gives one root per
//! committed batch. Each block is one batch, committed (and synced) before marshal's
//! acknowledgement, with the applied height as commit metadata: after a crash the node reopens
//! at the last committed height, and marshal redelivers every block after it.

use crate::{
    application::signature_verdicts,
    checkpoints::{Action, CheckpointMessage, Tracker, WitnessedCheckpoint, Witnesses},
    log::{LogStore, to_digest},
    mempool::Mempool,
    penalty::{Offence, Penalties},
};
use commonware_codec::{DecodeExt as _, Encode};
use commonware_consensus::marshal::Update;
use commonware_cryptography::{Sha256, bls12381::primitives::group::Share};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Metrics, Spawner, Storage, buffer::paged::CacheRef};
use commonware_storage::{
    archive::{Archive as _, Identifier, immutable},
    journal::contiguous::variable::Config as JournalConfig,
    merkle::{full::Config as MerkleConfig, mmr},
    qmdb::{
        current::{VariableConfig, unordered::variable::Db},
        floor::Proportional,
    },
    translator::EightCap,
};
use commonware_utils::{Acknowledgement as _, NZU64, NZUsize, sequence::U64};
use futures::{
    StreamExt,
    channel::{mpsc, oneshot},
};
use rand_core::CryptoRng;
use std::{
    collections::{BTreeMap, HashMap},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};
use tracing::{debug, error, info};
use welkin_state::{Env, keys};
use welkin_types::{Block, Checkpoint, Digest, Genesis, PublicKey, Receipt, TxId};

/// The state database.
type StateDb<E> = Db<mmr::Family, E, Digest, Vec<u8>, Sha256, EightCap, 32, Sequential>;
/// Certified checkpoints by height.
type CertArchive<E> = immutable::Archive<E, U64, WitnessedCheckpoint>;

/// The codec configuration of state operations: digest keys, bounded byte values.
type StateCodec = ((), (commonware_codec::RangeCfg<usize>, ()));
/// The state database configuration.
type StateConfig = VariableConfig<EightCap, StateCodec, Sequential>;

/// How often (in heights) the state log is pruned.
const PRUNE_EVERY: u64 = 32;

/// How often the executor re-sends its partials for heights still uncertified (each on its
/// own backoff schedule, see [`crate::checkpoints::RESEND_AFTER_MS`]).
const RESEND_TICK: std::time::Duration = std::time::Duration::from_millis(250);

/// Largest state value the database accepts.
const MAX_STATE_VALUE: usize = 64 * 1024;

/// What the rest of the node can see of the executor without asking it.
#[derive(Clone, Debug)]
pub struct Status {
    /// Highest applied height.
    pub height: u64,
    /// State root after it.
    pub state_root: Digest,
    /// Highest certified height.
    pub certified_height: u64,
    /// Latest finalized view reported by marshal.
    pub view: u64,
    /// Entries in the audit log.
    pub log_size: u64,
}

impl Default for Status {
    fn default() -> Self {
        Self {
            height: 0,
            state_root: Digest::from([0u8; 32]),
            certified_height: 0,
            view: 0,
            log_size: 0,
        }
    }
}

/// State shared between the executor and the node handle.
#[derive(Clone)]
pub struct Shared {
    /// The latest status.
    pub status: Arc<Mutex<Status>>,
    /// Clients waiting for a transaction to commit.
    pub waiters: Arc<Mutex<HashMap<TxId, Vec<oneshot::Sender<Receipt>>>>>,
}

impl Shared {
    /// Fresh shared state.
    pub fn new(_genesis: &Genesis, _me: &PublicKey, _index: usize) -> Self {
        Self {
            status: Arc::default(),
            waiters: Arc::default(),
        }
    }

    /// A copy of the status.
    pub fn status(&self) -> Status {
        self.status
            .lock()
            .expect("status lock is never poisoned")
            .clone()
    }
}

/// Questions the API asks the executor.
pub enum Query {
    /// The receipt of a transaction.
    Receipt(TxId, oneshot::Sender<Option<Receipt>>),
    /// The certified checkpoint at a height, with every node cosignature gathered for it.
    Checkpoint(u64, oneshot::Sender<Option<WitnessedCheckpoint>>),
    /// The height at which the log first held this many entries, if a block ended there.
    LogHeight(u64, oneshot::Sender<Option<u64>>),
    /// The hashes of a C2SP tile.
    Tile {
        /// Tile level.
        level: u8,
        /// Tile index within its level.
        index: u64,
        /// Hashes wanted (256 for a full tile).
        width: u16,
        /// The hashes, or why not.
        reply: oneshot::Sender<Result<Vec<welkin_merkle::Hash>, String>>,
    },
    /// A raw state value.
    Value(Digest, oneshot::Sender<Option<Vec<u8>>>),
    /// Many raw state values at once (one round trip for a whole batch submission).
    Values(Vec<Digest>, oneshot::Sender<Vec<Option<Vec<u8>>>>),
    /// An inclusion proof for leaf `index` in the tree of `size` entries.
    Inclusion {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
        /// The proof, or why not.
        reply: oneshot::Sender<Result<Vec<Digest>, String>>,
    },
    /// A consistency proof between two tree sizes.
    Consistency {
        /// The older size.
        old: u64,
        /// The newer size.
        new: u64,
        /// The proof, or why not.
        reply: oneshot::Sender<Result<Vec<Digest>, String>>,
    },
    /// Log entries `start..end`.
    Entries {
        /// First index.
        start: u64,
        /// One past the last index.
        end: u64,
        /// The entries, or why not.
        reply: oneshot::Sender<Result<Vec<Vec<u8>>, String>>,
    },
}

/// Executor settings.
pub struct ExecutorConfig {
    /// The cluster genesis.
    pub genesis: Genesis,
    /// This node's key share.
    pub share: Share,
    /// Storage partition prefix.
    pub partition_prefix: String,
    /// Page cache shared with other stores.
    pub page_cache: CacheRef,
    /// The mempool (signature cache, and where finalized transactions are removed).
    pub mempool: Mempool,
    /// Published after each applied block.
    pub applied_height: Arc<AtomicU64>,
    /// Shared with the handle.
    pub shared: Shared,
    /// This node's checkpoint cosigner (its identity key).
    pub cosigner: std::sync::Arc<welkin_note::CosignatureSigner>,
    /// Blocks peers that send invalid checkpoint messages.
    pub penalties: Penalties,
}

/// Applies finalized blocks and certifies checkpoints.
pub struct Executor<E: Spawner + Clock + Storage + Metrics + CryptoRng> {
    context: E,
    db: Option<StateDb<E>>,
    log: Option<LogStore<E>>,
    certs: Option<CertArchive<E>>,
    tracker: Tracker,
    env: Env,
    mempool: Mempool,
    applied: u64,
    applied_height: Arc<AtomicU64>,
    shared: Shared,
    members: Vec<PublicKey>,
    penalties: Penalties,
}

fn state_config(prefix: &str, page_cache: &CacheRef) -> StateConfig {
    VariableConfig {
        merkle_config: MerkleConfig {
            journal_partition: format!("{prefix}-state-mmr-journal"),
            metadata_partition: format!("{prefix}-state-mmr-meta"),
            items_per_blob: NZU64!(1 << 16),
            write_buffer: NZUsize!(1 << 16),
            replay_buffer: NZUsize!(1 << 16),
            strategy: Sequential,
            page_cache: page_cache.clone(),
        },
        journal_config: JournalConfig {
            partition: format!("{prefix}-state-ops"),
            items_per_section: NZU64!(1 << 14),
            compression: None,
            codec_config: ((), ((0..=MAX_STATE_VALUE).into(), ())),
            page_cache: page_cache.clone(),
            write_buffer: NZUsize!(1 << 16),
            replay_buffer: NZUsize!(1 << 16),
        },
        grafted_metadata_partition: format!("{prefix}-state-grafted-meta"),
        translator: EightCap,
        init_cache: Some(NZUsize!(1 << 14)),
        init_buffer: NZUsize!(1 << 20),
        init_concurrency: (),
    }
}

fn cert_config(prefix: &str, page_cache: &CacheRef) -> immutable::Config<()> {
    immutable::Config {
        metadata_partition: format!("{prefix}-checkpoints-metadata"),
        freezer_table_partition: format!("{prefix}-checkpoints-freezer-table"),
        freezer_table_initial_size: 1 << 10,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 1 << 8,
        freezer_key_partition: format!("{prefix}-checkpoints-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{prefix}-checkpoints-freezer-value"),
        freezer_value_target_size: 1 << 20,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-checkpoints-ordinal"),
        items_per_section: NZU64!(1 << 12),
        codec_config: (),
        replay_buffer: NZUsize!(1 << 14),
        freezer_key_write_buffer: NZUsize!(1 << 14),
        freezer_value_write_buffer: NZUsize!(1 << 14),
        ordinal_write_buffer: NZUsize!(1 << 14),
    }
}

impl<E: Spawner + Clock + Storage + Metrics + CryptoRng> Executor<E> {
    /// Opens the state and checkpoint stores, creating the genesis state on first start.
    pub async fn init(context: E, config: ExecutorConfig) -> Self {
        let prefix = &config.partition_prefix;
        let db = StateDb::init(
            context.child("state"),
            state_config(prefix, &config.page_cache),
            None,
        )
        .await
        .expect("state database must open; is the data directory intact?");
        let certs = CertArchive::init(
            context.child("checkpoints"),
            cert_config(prefix, &config.page_cache),
        )
        .await
        .expect("checkpoint archive must open; is the data directory intact?");
        let env = Env {
            cluster_id: config.genesis.cluster_id(),
            params: config.genesis.chain.clone(),
        };
        let tracker = Tracker::new(
            env.cluster_id,
            config.genesis.polynomial.clone(),
            config.share.clone(),
            Witnesses {
                signer: config.cosigner.clone(),
                verifiers: welkin_types::note::cosigner_verifiers(&config.genesis),
            },
        );
        let mut executor = Self {
            context,
            db: Some(db),
            log: None,
            certs: Some(certs),
            tracker,
            env,
            mempool: config.mempool,
            applied: 0,
            applied_height: config.applied_height,
            shared: config.shared,
            members: config
                .genesis
                .nodes
                .iter()
                .map(|n| n.public_key.clone())
                .collect(),
            penalties: config.penalties,
        };
        let stored = executor
            .db()
            .get_metadata()
            .await
            .expect("state metadata must be readable");
        executor.applied = match stored {
            Some(bytes) => {
                let bytes: [u8; 8] = bytes
                    .as_slice()
                    .try_into()
                    .expect("applied height metadata is 8 bytes");
                u64::from_be_bytes(bytes)
            }
            None => {
                executor
                    .commit(welkin_state::system::genesis_writes(&config.genesis), 0)
                    .await;
                info!("created genesis state");
                0
            }
        };
        let committed_log = welkin_state::read_u64(
            executor
                .db()
                .get(&keys::log_size())
                .await
                .expect("state reads must succeed")
                .as_deref(),
        );
        executor.log = Some(
            LogStore::init(
                executor.context.child("log"),
                &config.partition_prefix,
                &config.page_cache,
                committed_log,
            )
            .await,
        );
        let certified = executor.certs().last_index().unwrap_or(0);
        for height in certified.saturating_sub(crate::checkpoints::WINDOW)..=certified {
            if executor
                .certs()
                .has(Identifier::Index(height))
                .await
                .unwrap_or(false)
            {
                executor.tracker.mark_certified(height);
            }
        }
        executor
            .applied_height
            .store(executor.applied, Ordering::Release);
        let root = executor.db().root();
        {
            let mut status = executor.shared.status.lock().expect("status lock");
            status.height = executor.applied;
            status.state_root = root;
            status.certified_height = certified;
            status.log_size = committed_log;
        }
        info!(height = executor.applied, %root, certified, log = committed_log, "state opened");
        executor
    }

    fn db(&self) -> &StateDb<E> {
        self.db
            .as_ref()
            .expect("database handle is only absent during a commit")
    }

    fn certs(&self) -> &CertArchive<E> {
        self.certs
            .as_ref()
            .expect("archive handle is only absent during a write")
    }

    /// Writes one batch with the applied height as metadata and makes it durable.
    async fn commit(&mut self, writes: BTreeMap<Digest, Option<Vec<u8>>>, height: u64) {
        let db = self.db.take().expect("database handle present");
        let mut batch = db.new_batch();
        for (key, value) in writes {
            batch = batch.write(key, value);
        }
        let merkleized = batch
            .merkleize(&db, Some(height.to_be_bytes().to_vec()), &mut Proportional)
            .await
            .expect("merkleizing a batch of valid writes cannot fail");
        let db = db
            .apply_batch(merkleized)
            .await
            .expect("state batch must apply");
        let mut db = db.commit().await.expect("state commit must reach disk");
        // Drop operations below the inactivity floor so the log does not grow forever. The
        // root is unchanged by pruning; every node prunes at the same heights anyway.
        if height.is_multiple_of(PRUNE_EVERY) {
            let boundary = db.sync_boundary();
            db = db
                .prune(boundary)
                .await
                .expect("pruning at the sync boundary cannot fail");
        }
        self.db = Some(db);
    }

    /// Runs the executor until its inputs close.
    pub fn start<S, R>(
        self,
        updates: mpsc::UnboundedReceiver<Update<Block>>,
        queries: mpsc::Receiver<Query>,
        network: (S, R),
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let context = self.context.child("run");
        context.spawn(move |_| self.run(updates, queries, network));
    }

    async fn run<S, R>(
        mut self,
        mut updates: mpsc::UnboundedReceiver<Update<Block>>,
        mut queries: mpsc::Receiver<Query>,
        (mut sender, mut receiver): (S, R),
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        // Re-announce our latest partial so peers can complete (or answer) it after a restart.
        if let Some(partial) = self.sign_checkpoint(self.applied).await {
            sender.send(Recipients::All, partial.encode(), false);
        }
        let mut resend_at = self.context.current() + RESEND_TICK;
        loop {
            commonware_macros::select! {
                update = updates.next() => {
                    let Some(update) = update else { return };
                    self.on_update(update, &mut sender).await;
                },
                query = queries.next() => {
                    let Some(query) = query else { return };
                    self.on_query(query).await;
                },
                message = receiver.recv() => {
                    let Ok((from, bytes)) = message else { return };
                    self.on_checkpoint_message(from, bytes, &mut sender).await;
                },
                _ = self.context.sleep_until(resend_at) => {
                    resend_at = self.context.current() + RESEND_TICK;
                    let now = crate::application::now_ms(&self.context);
                    for partial in self.tracker.resends(now) {
                        sender.send(Recipients::All, partial.encode(), false);
                    }
                },
            }
        }
    }

    /// Feeds a peer's checkpoint message to the tracker; blocks the peer if it is invalid.
    async fn on_checkpoint_message<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        from: PublicKey,
        bytes: commonware_runtime::IoBuf,
        sender: &mut S,
    ) {
        let Some(index) = self.members.iter().position(|k| *k == from) else {
            return;
        };
        match CheckpointMessage::decode(bytes) {
            Ok(message) => {
                for action in self.tracker.handle(message, index as u32) {
                    self.on_action(action, Some(from.clone()), sender).await;
                }
            }
            Err(error) => self.penalties.block(
                from,
                Offence::Checkpoint,
                &format!("undecodable checkpoint message: {error}"),
            ),
        }
    }

    async fn on_update<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        update: Update<Block>,
        sender: &mut S,
    ) {
        let (block, ack) = match update {
            Update::Tip(round, _, _) => {
                self.shared.status.lock().expect("status lock").view = round.view().get();
                return;
            }
            Update::Block(block, ack) => (block, ack),
        };
        let height = block.inner().height;
        if height <= self.applied {
            ack.acknowledge();
            return;
        }
        assert_eq!(
            height,
            self.applied + 1,
            "marshal delivers blocks in height order without gaps"
        );
        let block: &Block = block.inner();

        let verdicts = signature_verdicts(&self.mempool, &self.env.cluster_id, &block.txs);
        let mut snapshot = welkin_state::Fetched::default();
        let mut wanted = welkin_state::reads(block);
        let effects = loop {
            for key in wanted {
                if let std::collections::btree_map::Entry::Vacant(slot) = snapshot.0.entry(key) {
                    slot.insert(self.db().get(&key).await.expect("state reads must succeed"));
                }
            }
            match welkin_state::apply(&self.env, &snapshot, block, &verdicts) {
                Ok(effects) => break effects,
                Err(welkin_state::NeedReads(keys)) => wanted = keys,
            }
        };
        // The log first: the state commit below records the new log size, so the journals
        // must already hold every entry it counts.
        assert_eq!(
            effects.log_size_before,
            self.log().size(),
            "state and log agree on the log size"
        );
        self.log
            .as_mut()
            .expect("log present")
            .append(&effects.log_entries)
            .await;
        self.commit(effects.writes, height).await;
        let root = self.db().root();
        self.applied = height;
        self.applied_height.store(height, Ordering::Release);
        {
            let mut status = self.shared.status.lock().expect("status lock");
            status.height = height;
            status.state_root = root;
            status.log_size = self.log().size();
        }
        self.mempool.remove(
            block
                .txs
                .iter()
                .map(|tx| tx.id())
                .collect::<Vec<_>>()
                .iter(),
        );
        {
            let mut waiters = self.shared.waiters.lock().expect("waiters lock");
            for (id, receipt) in &effects.receipts {
                for waiter in waiters.remove(id).unwrap_or_default() {
                    let _ = waiter.send(*receipt);
                }
            }
        }
        ack.acknowledge();
        debug!(height, txs = block.txs.len(), applied = effects.receipts.len(), %root, "applied block");

        if let Some((partial, actions)) = self.sign_checkpoint_with_actions(height).await {
            sender.send(Recipients::All, partial.encode(), false);
            for action in actions {
                self.on_action(action, None, sender).await;
            }
        }
    }

    fn log(&self) -> &LogStore<E> {
        self.log.as_ref().expect("log is opened in init")
    }

    /// The checkpoint describing this node's state after `height` (the latest applied).
    fn checkpoint(&self, height: u64) -> Checkpoint {
        Checkpoint {
            height,
            state_root: self.db().root(),
            log_size: self.log().size(),
            log_root: self.log().root(),
        }
    }

    async fn sign_checkpoint(&mut self, height: u64) -> Option<CheckpointMessage> {
        self.sign_checkpoint_with_actions(height)
            .await
            .map(|(partial, _)| partial)
    }

    /// Signs the checkpoint for `height`, unless the log does not extend the last one this
    /// node signed: then it refuses, loudly, and never signs again until an operator looks.
    async fn sign_checkpoint_with_actions(
        &mut self,
        height: u64,
    ) -> Option<(CheckpointMessage, Vec<Action>)> {
        if let Err(fork) = self.log().check_consistent() {
            error!(height, %fork, "refusing to sign a checkpoint inconsistent with one already signed");
            return None;
        }
        let checkpoint = self.checkpoint(height);
        self.log
            .as_mut()
            .expect("log present")
            .record_signed()
            .await;
        let now = crate::application::now_ms(&self.context);
        Some(self.tracker.applied(checkpoint, now))
    }

    async fn on_action<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        action: Action,
        from: Option<PublicKey>,
        sender: &mut S,
    ) {
        match action {
            Action::Block(index) => {
                if let Some(peer) = self.members.get(index as usize) {
                    self.penalties.block(
                        peer.clone(),
                        Offence::Checkpoint,
                        "checkpoint partial or certificate does not verify",
                    );
                }
            }
            Action::Store(witnessed) => {
                let height = witnessed.certified.checkpoint.height;
                if self.tracker.is_certified(height) {
                    return;
                }
                let certs = self.certs.take().expect("archive handle present");
                let certs = certs
                    .put_sync(height, U64::new(height), &witnessed)
                    .await
                    .expect("checkpoint archive write must succeed");
                self.certs = Some(certs);
                self.tracker.mark_certified(height);
                let mut status = self.shared.status.lock().expect("status lock");
                status.certified_height = status.certified_height.max(height);
                debug!(height, "certified checkpoint");
            }
            Action::Reply(height) => {
                let (Some(from), Some(witnessed)) = (from, self.witnessed(height).await) else {
                    return;
                };
                sender.send(
                    Recipients::One(from),
                    CheckpointMessage::Certified(witnessed).encode(),
                    false,
                );
            }
        }
    }

    /// The stored certificate at `height` with the cosignatures stored with it and those
    /// gathered since.
    async fn witnessed(&self, height: u64) -> Option<WitnessedCheckpoint> {
        let mut witnessed = self
            .certs()
            .get(Identifier::Index(height))
            .await
            .ok()
            .flatten()?;
        for (index, cosignature) in self.tracker.cosignatures(height) {
            witnessed.cosignatures.entry(index).or_insert(cosignature);
        }
        Some(witnessed)
    }

    async fn on_query(&mut self, query: Query) {
        match query {
            Query::Receipt(id, reply) => {
                let value = self.db().get(&keys::receipt(&id)).await.ok().flatten();
                let _ = reply
                    .send(value.and_then(|bytes| welkin_types::decode::<Receipt>(&bytes).ok()));
            }
            Query::Checkpoint(height, reply) => {
                let _ = reply.send(self.witnessed(height).await);
            }
            Query::LogHeight(size, reply) => {
                let value = self.db().get(&keys::log_height(size)).await.ok().flatten();
                let _ = reply.send(value.map(|v| welkin_state::read_u64(Some(&v))));
            }
            Query::Tile {
                level,
                index,
                width,
                reply,
            } => {
                let hashes = welkin_merkle::tile_hashes(self.log().tree(), level, index, width);
                let _ = reply.send(hashes.map_err(|e| e.to_string()));
            }
            Query::Value(key, reply) => {
                let _ = reply.send(self.db().get(&key).await.ok().flatten());
            }
            Query::Inclusion { index, size, reply } => {
                let proof = welkin_merkle::inclusion_proof(self.log().tree(), index, size);
                let _ = reply.send(proof_digests(proof));
            }
            Query::Consistency { old, new, reply } => {
                let proof = welkin_merkle::consistency_proof(self.log().tree(), old, new);
                let _ = reply.send(proof_digests(proof));
            }
            Query::Entries { start, end, reply } => {
                let size = self.log().size();
                let result = if start >= end || end > size {
                    Err(format!(
                        "range {start}..{end} is not within the log of {size} entries"
                    ))
                } else {
                    let mut entries = Vec::with_capacity((end - start) as usize);
                    for index in start..end {
                        match self.log().entry(index).await {
                            Some(entry) => entries.push(entry),
                            None => break,
                        }
                    }
                    Ok(entries)
                };
                let _ = reply.send(result);
            }
            Query::Values(keys, reply) => {
                let mut values = Vec::with_capacity(keys.len());
                for key in &keys {
                    values.push(self.db().get(key).await.ok().flatten());
                }
                let _ = reply.send(values);
            }
        }
    }
}

/// A proof's hashes as digests, or why there is none.
fn proof_digests(
    proof: Result<Vec<welkin_merkle::Hash>, welkin_merkle::Error>,
) -> Result<Vec<Digest>, String> {
    proof
        .map(|p| p.iter().map(to_digest).collect())
        .map_err(|e| e.to_string())
}
