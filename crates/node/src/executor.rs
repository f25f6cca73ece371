//! The executor: applies finalized blocks, in height order, to the authenticated state, then
//! signs the checkpoint for that height and gathers the cluster's.
//!
//! State lives in a commonware QMDB (`current::unordered::variable`), which gives one root per
//! committed batch. Each block is one batch, committed (and synced) before marshal's
//! acknowledgement, with the applied height as commit metadata: after a crash the node reopens
//! at the last committed height, and marshal redelivers every block after it. The executor
//! answers no queries: readers use the [`Stores`] directly (see [`crate::store`]).

use crate::{
    application::signature_verdicts,
    checkpoints::{Action, CheckpointMessage, Tracker, WitnessedCheckpoint},
    mempool::Mempool,
    penalty::{Offence, Penalties},
    releases::{Releases, actor::Grants},
    store::Stores,
    timeline::{BlockStage, Timeline},
    waiters::Waiters,
};
use commonware_codec::{DecodeExt as _, Encode};
use commonware_consensus::marshal::Update;
use commonware_cryptography::Digestible as _;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use commonware_utils::Acknowledgement as _;
use futures::{StreamExt, channel::mpsc};
use rand_core::CryptoRng;
use std::sync::{
    Arc, Mutex,
    atomic::{AtomicU64, Ordering},
};
use tracing::{debug, error, info};
use welkin_state::Env;
use welkin_types::{Block, Checkpoint, Digest, Genesis, PublicKey};

/// How often the executor re-sends its partials for heights still uncertified (each on its
/// own backoff schedule, see [`crate::checkpoints::RESEND_AFTER_MS`]).
const RESEND_TICK: std::time::Duration = std::time::Duration::from_millis(250);

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
pub(crate) struct Shared {
    /// The latest status.
    pub status: Arc<Mutex<Status>>,
    /// Clients waiting for a transaction to commit.
    pub waiters: Waiters,
}

impl Shared {
    /// Fresh shared state.
    pub(crate) fn new(waiters: Waiters) -> Self {
        Self {
            status: Arc::default(),
            waiters,
        }
    }

    /// A copy of the status.
    pub(crate) fn status(&self) -> Status {
        self.status
            .lock()
            .expect("status lock is never poisoned")
            .clone()
    }
}

/// Executor settings.
pub(crate) struct ExecutorConfig<E: Spawner + Clock + Storage + Metrics> {
    /// The cluster genesis.
    pub genesis: Genesis,
    /// The node's stores (the executor is their only writer).
    pub stores: Stores<E>,
    /// Collects checkpoint partials (shared with readers for the cosignatures it holds).
    pub tracker: Arc<Mutex<Tracker>>,
    /// The mempool (signature cache, and where finalized transactions are removed).
    pub mempool: Mempool,
    /// Published after each applied block.
    pub applied_height: Arc<AtomicU64>,
    /// Shared with the handle.
    pub shared: Shared,
    /// Blocks peers that send invalid checkpoint messages.
    pub penalties: Penalties,
    /// Where block steps and transaction stages are timed.
    pub timeline: Timeline,
    /// Where secrets results and read grants are recorded.
    pub releases: Releases,
    /// Where this node's read grants go to be signed (see [`crate::releases::actor`]).
    pub grants: mpsc::Sender<Grants>,
    /// Where this node's signature grants go (see [`crate::transit`]).
    pub sign_grants: mpsc::Sender<Vec<(welkin_types::TxId, crate::transit::SignGrant)>>,
    /// Where the epoch the applied state is in goes, at start and at every epoch's end (see
    /// [`crate::epochs`]).
    pub epochs: mpsc::UnboundedSender<crate::epochs::EpochChange>,
}

/// Reads older than this (block time against the local clock) are not released when their
/// block is applied: it is being replayed while catching up, and its reader is long gone.
const RELEASE_WINDOW_MS: u64 = 60_000;

/// Applies finalized blocks and certifies checkpoints.
pub(crate) struct Executor<E: Spawner + Clock + Storage + Metrics + CryptoRng> {
    context: E,
    stores: Stores<E>,
    tracker: Arc<Mutex<Tracker>>,
    env: Env,
    /// The environment at genesis; `env` is it moved to the current epoch.
    genesis_env: Env,
    /// The genesis nodes' registrations (the roster starts with them).
    genesis_nodes: Vec<welkin_types::NodeInfo>,
    epochs: mpsc::UnboundedSender<crate::epochs::EpochChange>,
    mempool: Mempool,
    applied: u64,
    applied_height: Arc<AtomicU64>,
    shared: Shared,
    members: Vec<PublicKey>,
    penalties: Penalties,
    timeline: Timeline,
    releases: Releases,
    grants: mpsc::Sender<Grants>,
    sign_grants: mpsc::Sender<Vec<(welkin_types::TxId, crate::transit::SignGrant)>>,
}

impl<E: Spawner + Clock + Storage + Metrics + CryptoRng> Executor<E> {
    /// Creates the genesis state on first start and publishes the stored status.
    pub(crate) async fn init(context: E, config: ExecutorConfig<E>) -> Self {
        let ExecutorConfig {
            genesis,
            stores,
            tracker,
            mempool,
            applied_height,
            shared,
            penalties,
            timeline,
            releases,
            grants,
            sign_grants,
            epochs,
        } = config;
        if stores.is_fresh().await {
            stores
                .commit(welkin_state::system::genesis_writes(&genesis), 0)
                .await;
            info!("created genesis state");
        }
        let (root, applied) = stores.root().await;
        let certified = stores.last_certified().await;
        for height in certified.saturating_sub(crate::checkpoints::WINDOW)..=certified {
            if stores.has_certificate(height).await {
                lock(&tracker).mark_certified(height);
            }
        }
        applied_height.store(applied, Ordering::Release);
        let log_size = stores.log().await.size();
        {
            let mut status = shared.status.lock().expect("status lock");
            status.height = applied;
            status.state_root = root;
            status.certified_height = certified;
            status.log_size = log_size;
        }
        info!(height = applied, %root, certified, log = log_size, "state opened");
        let genesis_env = Env {
            cluster_id: genesis.cluster_id(),
            params: genesis.chain.clone(),
            members: genesis.nodes.iter().map(|n| n.public_key.clone()).collect(),
            retired: Vec::new(),
            threshold: u16::try_from(genesis.threshold).unwrap_or(u16::MAX),
            domains: genesis
                .nodes
                .iter()
                .map(|n| n.failure_domain.clone())
                .collect(),
            cluster_key: genesis.dealt_key().copied(),
            membership: genesis.membership.clone(),
        };
        let mut executor = Self {
            context,
            stores,
            tracker,
            env: genesis_env.clone(),
            genesis_env,
            genesis_nodes: genesis.nodes.clone(),
            epochs,
            mempool,
            applied,
            applied_height,
            shared,
            members: genesis.nodes.iter().map(|n| n.public_key.clone()).collect(),
            penalties,
            timeline,
            releases,
            grants,
            sign_grants,
        };
        executor.refresh_epoch().await;
        executor
    }

    /// Moves the environment to the epoch the applied state is in, and tells consensus.
    async fn refresh_epoch(&mut self) {
        let epochs = match self.stores.value(&welkin_state::keys::epoch()).await {
            Some(bytes) => match welkin_state::epochs::EpochState::decode(&bytes) {
                Ok(epochs) => epochs,
                Err(error) => {
                    error!(%error, "halting: the stored epoch state does not decode");
                    panic!("halting: the stored epoch state does not decode: {error}");
                }
            },
            None => welkin_state::epochs::EpochState::default(),
        };
        self.env = welkin_state::epochs::env_at(&self.genesis_env, &epochs);
        self.members = self.env.members.clone();
        // The checkpoint tracker: the roster (partials and cosignatures by roster position),
        // the joined nodes' cosigning keys, and the sharing a resharing put in force.
        let cluster_id = self.env.cluster_id;
        let verifiers = self
            .genesis_nodes
            .iter()
            .chain(&epochs.joined)
            .filter_map(|node| welkin_types::note::cosigner_verifier(&cluster_id, node))
            .collect();
        lock(&self.tracker).set_roster(self.env.members.clone(), verifiers);
        if let Some(bytes) = self.stores.value(&welkin_state::keys::epoch_key()).await {
            let decoded = welkin_state::keygen::GeneratedKey::decode(&bytes).and_then(|key| {
                let output = key.output(self.env.members.len())?;
                Ok((key.height, output))
            });
            match decoded {
                Ok((height, output)) => lock(&self.tracker).set_epoch_key(
                    height + 1,
                    output.public().clone(),
                    output.players().iter().cloned().collect(),
                ),
                Err(error) => {
                    error!(%error, "halting: the stored epoch key does not decode");
                    panic!("halting: the stored epoch key does not decode: {error}");
                }
            }
        }
        let members = self.env.active().map(|(_, key)| key.clone()).collect();
        info!(
            epoch = epochs.epoch,
            members = self.env.active_count(),
            "epoch"
        );
        let _ = self.epochs.unbounded_send(crate::epochs::EpochChange {
            epoch: epochs.epoch,
            members,
        });
    }

    /// Runs the executor until its inputs close.
    pub(crate) fn start<S, R>(
        self,
        updates: mpsc::UnboundedReceiver<Update<Block>>,
        network: (S, R),
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let context = self.context.child("run");
        context.spawn(move |_| self.run(updates, network));
    }

    async fn run<S, R>(
        mut self,
        mut updates: mpsc::UnboundedReceiver<Update<Block>>,
        (mut sender, mut receiver): (S, R),
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        // Re-announce our latest partial so peers can complete (or answer) it after a restart.
        if let Some((Some(partial), _)) = self.sign_checkpoint(self.applied).await {
            sender.send(Recipients::All, partial.encode(), false);
        }
        let mut resend_at = self.context.current() + RESEND_TICK;
        loop {
            commonware_macros::select! {
                update = updates.next() => {
                    let Some(update) = update else { return };
                    self.on_update(update, &mut sender).await;
                },
                message = receiver.recv() => {
                    let Ok((from, bytes)) = message else { return };
                    self.on_checkpoint_message(from, bytes, &mut sender).await;
                },
                _ = self.context.sleep_until(resend_at) => {
                    resend_at = self.context.current() + RESEND_TICK;
                    let now = crate::application::now_ms(&self.context);
                    let resends = lock(&self.tracker).resends(now);
                    for partial in resends {
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
                let actions = lock(&self.tracker).handle(message, index as u32);
                for action in actions {
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
        self.timeline
            .delivered(&block.digest(), crate::timeline::now(&self.context));
        let block: &Block = block.inner();

        let started = std::time::Instant::now();
        let verdicts = signature_verdicts(
            &self.mempool,
            &self.env.cluster_id,
            &block.txs,
            &self.timeline,
        );
        let mut snapshot = welkin_state::Fetched::default();
        let mut wanted = welkin_state::reads(block);
        let effects = loop {
            self.stores.fetch(wanted, &mut snapshot).await;
            match welkin_state::apply(&self.env, &snapshot, block, &verdicts) {
                Ok(effects) => break effects,
                Err(welkin_state::ApplyError::NeedReads(keys)) => wanted = keys,
                // The store holds a value the state machine cannot read: applying anything
                // more would diverge from the cluster, so stop here, loudly.
                Err(error @ welkin_state::ApplyError::Corrupt { .. }) => {
                    error!(height, %error, "halting: cannot apply the block");
                    panic!("halting: cannot apply block {height}: {error}");
                }
            }
        };
        self.timeline
            .block_step(BlockStage::Execute, started.elapsed());
        // The log first: the state commit below records the new log size, so the journals
        // must already hold every entry it counts.
        let started = std::time::Instant::now();
        let log_size = {
            let mut log = self.stores.log_mut().await;
            assert_eq!(
                effects.log_size_before,
                log.size(),
                "state and log agree on the log size"
            );
            log.append(&effects.log_entries).await;
            log.size()
        };
        self.timeline
            .block_step(BlockStage::LogAppend, started.elapsed());
        let started = std::time::Instant::now();
        let root = self.stores.commit(effects.writes, height).await;
        self.timeline
            .block_step(BlockStage::StateCommit, started.elapsed());
        // A read this block allowed of a value it also destroyed (an unwrap): its reader
        // gets the bytes from memory, for as long as the release is held.
        let mut held = Vec::new();
        for (id, result) in &effects.secrets {
            if let welkin_state::secrets::SecretsResult::Released { sealed, .. } = result
                && effects.shredded.contains(&sealed.tx)
                && let Ok(Some(bytes)) = self.stores.values.get(&sealed.tx, &sealed.digest).await
            {
                held.push((*id, bytes));
            }
        }
        // Crypto-shredding: the state no longer refers to these values, so their bytes go.
        // After the commit, so that a crash in between replays the block and shreds again;
        // executing a block never needs a value's bytes, only its digest.
        if let Err(error) = self.stores.values.shred(&effects.shredded).await {
            error!(height, %error, "halting: cannot destroy shredded values");
            panic!("halting: cannot destroy the values block {height} shredded: {error}");
        }
        self.applied = height;
        self.applied_height.store(height, Ordering::Release);
        {
            let mut status = self.shared.status.lock().expect("status lock");
            status.height = height;
            status.state_root = root;
            status.log_size = log_size;
        }
        let ids: Vec<_> = block.txs.iter().map(|tx| tx.id()).collect();
        self.mempool.remove(ids.iter());
        // Results before waking waiters: a woken API request reads its result at once.
        let now = crate::application::now_ms(&self.context);
        let signs: Vec<_> = effects
            .secrets
            .iter()
            .filter_map(|(id, result)| match result {
                welkin_state::secrets::SecretsResult::Signing {
                    key_id,
                    version,
                    digests,
                } => Some((
                    *id,
                    crate::transit::SignGrant {
                        key_id: *key_id,
                        version: *version,
                        digests: digests.clone(),
                    },
                )),
                _ => None,
            })
            .collect();
        let grants = self.releases.commit(height, effects.secrets, now);
        for (id, bytes) in held {
            self.releases.hold_value(&id, bytes);
        }
        self.shared.waiters.notify(&effects.receipts);
        if effects.epoch_ended {
            self.refresh_epoch().await;
        }
        ack.acknowledge();
        if !grants.is_empty() && now.saturating_sub(block.timestamp_ms) <= RELEASE_WINDOW_MS {
            use futures::SinkExt as _;
            // Bounded: a releaser far behind holds the executor back rather than queueing
            // without limit. It only fails if the releaser stopped, with the node.
            let _ = self.grants.send(grants).await;
        }
        if !signs.is_empty() && now.saturating_sub(block.timestamp_ms) <= RELEASE_WINDOW_MS {
            use futures::SinkExt as _;
            // Bounded like the read grants; signers need them before a coordinator asks.
            let _ = self.sign_grants.send(signs).await;
        }
        self.timeline
            .applied(height, ids, crate::timeline::now(&self.context));
        debug!(height, txs = block.txs.len(), applied = effects.receipts.len(), %root, "applied block");

        let started = std::time::Instant::now();
        if let Some((partial, actions)) = self.sign_checkpoint(height).await {
            self.timeline
                .block_step(BlockStage::CheckpointSign, started.elapsed());
            if let Some(partial) = partial {
                sender.send(Recipients::All, partial.encode(), false);
            }
            for action in actions {
                self.on_action(action, None, sender).await;
            }
        }
    }

    /// Signs the checkpoint for `height` (the latest applied), unless the log does not extend
    /// the last one this node signed: then it refuses, loudly, and never signs again until an
    /// operator looks.
    async fn sign_checkpoint(
        &mut self,
        height: u64,
    ) -> Option<(Option<CheckpointMessage>, Vec<Action>)> {
        let (state_root, _) = self.stores.root().await;
        let checkpoint = {
            let mut log = self.stores.log_mut().await;
            if let Err(fork) = log.check_consistent() {
                error!(height, %fork, "refusing to sign a checkpoint inconsistent with one already signed");
                return None;
            }
            let checkpoint = Checkpoint {
                height,
                state_root,
                log_size: log.size(),
                log_root: log.root(),
            };
            log.record_signed().await;
            checkpoint
        };
        let now = crate::application::now_ms(&self.context);
        lock(&self.tracker).applied(checkpoint, now)
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
                if lock(&self.tracker).is_certified(height) {
                    return;
                }
                self.stores.put_certificate(&witnessed).await;
                lock(&self.tracker).mark_certified(height);
                self.timeline
                    .certified(height, crate::timeline::now(&self.context));
                let mut status = self.shared.status.lock().expect("status lock");
                status.certified_height = status.certified_height.max(height);
                debug!(height, "certified checkpoint");
            }
            Action::Reply(height) => {
                let (Some(from), Some(witnessed)) =
                    (from, witnessed(&self.stores, &self.tracker, height).await)
                else {
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
}

/// Locks the checkpoint tracker (never held across an await).
pub(crate) fn lock(tracker: &Mutex<Tracker>) -> std::sync::MutexGuard<'_, Tracker> {
    tracker
        .lock()
        .expect("tracker lock is never poisoned: no panics while held")
}

/// The stored certificate at `height` with the cosignatures stored with it and those the
/// tracker gathered since.
pub(crate) async fn witnessed<E: Spawner + Clock + Storage + Metrics>(
    stores: &Stores<E>,
    tracker: &Mutex<Tracker>,
    height: u64,
) -> Option<WitnessedCheckpoint> {
    let mut witnessed = stores.certificate(height).await?;
    for (index, cosignature) in lock(tracker).cosignatures(height) {
        witnessed.cosignatures.entry(index).or_insert(cosignature);
    }
    Some(witnessed)
}
