//! The node's shard service: the front end that receives, keeps and serves object shards.
//!
//! It runs beside the consensus core on the same runtime (so the deterministic simulations
//! run it too) and talks to the core through the [`NodeHandle`]: it reads committed state
//! (manifests, placement, challenges, repair orders) and submits transactions signed with
//! the node's key (its storage offer, acknowledgements of shards it holds, audit seeds and
//! verdicts). It never holds up block execution: disk work runs on the runtime's blocking
//! threads. Nodes exchange audit proofs and repair blocks over the storage p2p channel (see
//! [`wire`]); clients upload and download over HTTP (see [`http`]). Shards live in a [`welkin_shards::ShardStore`] on local
//! disk (temporary file, fsync, rename, directory fsync), every block checked against the
//! manifest's shard root on the way in and on every read.
//!
//! A background pass every few seconds keeps the store and the state in step:
//! - it offers the configured capacity while the committed offer differs;
//! - it acknowledges shards it holds that the state does not yet count (an acknowledgement
//!   lost to a crash or a full mempool is sent again);
//! - it removes shards no committed manifest places here (deleted objects, uploads given up
//!   on, shards of an interrupted repair);
//! - it takes its part in audits (see [`audit`]) and rebuilds lost shards the state asks it
//!   to (see [`repair`]).

mod audit;
mod http;
mod peers;
mod repair;
mod wire;

pub use http::{download, download_hashes, storage, upload};
pub use wire::{Answer, Ask, StorageMessage};

use crate::{handle::NodeHandle, penalty::Penalties, store::Runtime};
use futures::StreamExt as _;
use serde::Deserialize;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    time::Duration,
};
use tracing::{debug, info, warn};
use welkin_shards::{ShardId, ShardStore, StoreLimits};
use welkin_state::{
    keys,
    storage::{
        records::{NodeSpace, ObjectRecord},
        repair::RepairOrder,
    },
};
use welkin_types::{Digest, Payload, PrivateKey, Sender, Transaction, storage::StorageOp};

/// How often the background pass runs.
const PASS_INTERVAL: Duration = Duration::from_secs(3);
/// Least time between two submissions of the same acknowledgement or offer.
const RESUBMIT_MS: u64 = 20_000;
/// Most shards one pass looks up in state (the rest wait for the next pass).
const MAX_PASS_SHARDS: usize = 4096;
/// Local store bytes beyond the offered capacity, for shard headers and hash lists (32 bytes
/// per block, under 0.01% of a shard) and a margin.
const STORE_OVERHEAD: u64 = 64 * 1024 * 1024;

/// The `[storage]` table of the node config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageFileConfig {
    /// Bytes of shards this node offers the cluster (default 0: it stores none).
    pub capacity_bytes: Option<u64>,
    /// Where shards are kept (default `<data_dir>/shards`).
    pub directory: Option<PathBuf>,
    /// Most shard uploads this node takes at once (default 16).
    pub max_uploads: Option<usize>,
}

/// A shard's inclusion tree, kept while peers ask for its blocks.
pub(crate) type CachedTree = (ShardId, Arc<welkin_object::ShardTree>);

/// An opened shard store and what the node offers from it: the node's storage, ready to
/// start with the engine.
#[derive(Clone)]
pub struct StorageSetup {
    /// The opened store.
    pub store: ShardStore,
    /// Bytes offered to the cluster.
    pub capacity: u64,
    /// The store's directory (shown in the status).
    pub directory: PathBuf,
    /// Most shard uploads taken at once.
    pub max_uploads: usize,
}

impl StorageSetup {
    /// Opens the store the `[storage]` table describes (removing temporaries of interrupted
    /// writes and quarantining files that fail their checks).
    pub fn open(config: &StorageFileConfig, data_dir: &Path) -> Result<StorageSetup, String> {
        let capacity = config.capacity_bytes.unwrap_or(0);
        let directory = config
            .directory
            .clone()
            .unwrap_or_else(|| data_dir.join("shards"));
        StorageSetup::open_at(&directory, capacity, config.max_uploads.unwrap_or(16))
    }

    /// Opens the store in `directory`, offering `capacity` bytes.
    pub fn open_at(
        directory: &Path,
        capacity: u64,
        max_uploads: usize,
    ) -> Result<StorageSetup, String> {
        let store = ShardStore::open(
            directory,
            StoreLimits::with_capacity(capacity.saturating_add(STORE_OVERHEAD)),
        )
        .map_err(|e| {
            format!(
                "cannot open the shard store in {}: {e}",
                directory.display()
            )
        })?;
        info!(
            directory = %directory.display(),
            report = ?store.opened(),
            "shard store opened"
        );
        Ok(StorageSetup {
            store,
            capacity,
            directory: directory.to_path_buf(),
            max_uploads: max_uploads.max(1),
        })
    }
}

/// The shard service, shared by the API handlers and the background pass.
pub struct Shards<E: Runtime> {
    pub(crate) context: Arc<E>,
    pub(crate) node: NodeHandle<E>,
    pub(crate) store: ShardStore,
    pub(crate) key: PrivateKey,
    /// This node's position in the membership.
    pub(crate) member: u32,
    pub(crate) capacity: u64,
    pub(crate) directory: PathBuf,
    /// When each acknowledgement or offer was last submitted (ms), to space resubmissions.
    submitted: Arc<Mutex<BTreeMap<ShardId, u64>>>,
    last_offer_ms: Arc<Mutex<u64>>,
    /// Uploads running now (bounded by `max_uploads`).
    pub(crate) uploads: Arc<tokio::sync::Semaphore>,
    /// Audit work carried between passes.
    pub(crate) audit: Arc<Mutex<audit::AuditMemory>>,
    /// Whether a repair is running (one at a time).
    pub(crate) repairing: Arc<std::sync::atomic::AtomicBool>,
    /// Where the next background pass starts in the list of local shards.
    pass_offset: Arc<std::sync::atomic::AtomicUsize>,
    /// Where the next pass starts in this node's list of held shards.
    held_offset: Arc<std::sync::atomic::AtomicUsize>,
    /// Asking peers for proofs and blocks, and answering them.
    pub(crate) peers: peers::Peers,
    /// The next transaction nonce (starts at the clock, so restarts never reuse one).
    nonce: Arc<AtomicU64>,
    /// The inclusion tree of the shard whose blocks peers asked for last.
    pub(crate) tree: Arc<Mutex<Option<CachedTree>>>,
}

impl<E: Runtime> Clone for Shards<E> {
    fn clone(&self) -> Self {
        Shards {
            context: self.context.clone(),
            node: self.node.clone(),
            store: self.store.clone(),
            key: self.key.clone(),
            member: self.member,
            capacity: self.capacity,
            directory: self.directory.clone(),
            submitted: self.submitted.clone(),
            last_offer_ms: self.last_offer_ms.clone(),
            uploads: self.uploads.clone(),
            audit: self.audit.clone(),
            repairing: self.repairing.clone(),
            pass_offset: self.pass_offset.clone(),
            held_offset: self.held_offset.clone(),
            peers: self.peers.clone(),
            nonce: self.nonce.clone(),
            tree: self.tree.clone(),
        }
    }
}

impl<E: Runtime> Shards<E> {
    /// Starts the background pass and the server of peers' asks on `context`, exchanging
    /// proofs and blocks over `network` (the storage channel).
    pub(crate) fn start<S, R>(
        context: E,
        node: NodeHandle<E>,
        key: PrivateKey,
        setup: StorageSetup,
        network: (S, R),
        penalties: Penalties,
    ) -> Arc<Shards<E>>
    where
        S: commonware_p2p::Sender<PublicKey = welkin_types::PublicKey>,
        R: commonware_p2p::Receiver<PublicKey = welkin_types::PublicKey>,
    {
        let me = commonware_cryptography::Signer::public_key(&key);
        let member = node
            .genesis()
            .index_of(&me)
            .expect("the engine checked that this node is a member") as u32;
        let (peers, mut asks) = peers::Peers::start(context.child("peers"), network, penalties);
        let shards = Shards {
            nonce: Arc::new(AtomicU64::new(node.clock_ns())),
            context: Arc::new(context),
            node,
            store: setup.store,
            key,
            member,
            capacity: setup.capacity,
            directory: setup.directory,
            submitted: Arc::default(),
            last_offer_ms: Arc::default(),
            uploads: Arc::new(tokio::sync::Semaphore::new(setup.max_uploads)),
            audit: Arc::default(),
            repairing: Arc::default(),
            pass_offset: Arc::default(),
            held_offset: Arc::default(),
            peers,
            tree: Arc::default(),
        };
        // The pass task holds the service; the node's handle only refers to it, so aborting
        // the node's tasks frees it.
        let anchor = Arc::new(shards.clone());
        let background = anchor.clone();
        shards
            .context
            .child("pass")
            .spawn(move |context| async move {
                loop {
                    background.pass().await;
                    context.sleep(PASS_INTERVAL).await;
                }
            });
        let server = shards.clone();
        shards.context.child("server").spawn(move |_| async move {
            while let Some(incoming) = asks.next().await {
                server.serve(incoming).await;
            }
        });
        anchor
    }

    /// The node's shard store.
    pub fn store(&self) -> &ShardStore {
        &self.store
    }

    /// Runs `work` on the runtime's blocking threads (inline on the deterministic runtime).
    pub(crate) async fn blocking<T: Send + 'static>(
        &self,
        work: impl FnOnce() -> T + Send + 'static,
    ) -> Option<T> {
        self.context
            .child("blocking")
            .shared(true)
            .spawn(move |_| async move { work() })
            .await
            .ok()
    }

    /// Sends `ask` to `member` and waits up to `timeout` for the answer; `None` if it did
    /// not come (the peer is unreachable, behind, or too busy: never a failure by itself).
    pub(crate) async fn ask(
        &self,
        member: u32,
        ask: wire::Ask,
        timeout: Duration,
    ) -> Option<wire::Answer> {
        let peer = self
            .node
            .genesis()
            .nodes
            .get(member as usize)?
            .public_key
            .clone();
        let mut waiting = self.peers.ask(&peer, ask)?;
        commonware_macros::select! {
            answer = &mut waiting.answer => answer.ok(),
            _ = self.context.sleep(timeout) => None,
        }
    }

    /// Answers one ask from a peer (nothing, if it cannot be answered now: see
    /// [`wire::Ask`]).
    async fn serve(&self, incoming: peers::Incoming) {
        let Some(from) = self
            .node
            .genesis()
            .index_of(&incoming.from)
            .map(|i| i as u32)
        else {
            return;
        };
        let answer = match incoming.ask {
            wire::Ask::Proof { epoch } => self.proof_answer(epoch).await,
            wire::Ask::Block {
                object,
                shard,
                segment,
            } => self.block_answer(from, object, shard, segment).await,
        };
        if let Some(answer) = answer {
            self.peers.answer(incoming.from, incoming.id, answer);
        }
    }

    /// An object's record as this node's state holds it.
    pub(crate) async fn record_of(&self, object: &Digest) -> Option<ObjectRecord> {
        self.node
            .value(keys::object(object))
            .await
            .and_then(|v| ObjectRecord::decode(&v).ok())
    }

    fn now_ms(&self) -> u64 {
        self.node.clock_ns() / 1_000_000
    }

    /// One pass of the background work (see the module docs).
    async fn pass(&self) {
        self.offer().await;
        self.audit_pass().await;
        self.repair_pass().await;
        self.declare_missing().await;
        let store = self.store.clone();
        let Some(local) = self.blocking(move || store.list()).await else {
            return;
        };
        // A window of at most MAX_PASS_SHARDS, moving on each pass, so every shard is looked
        // at however many there are.
        let start = if local.is_empty() {
            0
        } else {
            self.pass_offset
                .fetch_add(MAX_PASS_SHARDS, std::sync::atomic::Ordering::Relaxed)
                % local.len()
        };
        let mut by_object: BTreeMap<[u8; 32], Vec<u16>> = BTreeMap::new();
        for id in local
            .iter()
            .cycle()
            .skip(start)
            .take(MAX_PASS_SHARDS.min(local.len()))
            .copied()
        {
            by_object.entry(id.object).or_default().push(id.index);
        }
        let mut unplaced = Vec::new();
        for (object, indices) in by_object {
            let digest = Digest::from(object);
            let Some(record) = self.record_of(&digest).await else {
                unplaced.extend(indices.iter().map(|&index| ShardId { object, index }));
                continue;
            };
            let mut unacknowledged = Vec::new();
            for index in indices {
                let id = ShardId { object, index };
                match record.placement.get(usize::from(index)) {
                    Some(member) if *member == self.member => {
                        if !record.is_stored(usize::from(index)) {
                            unacknowledged.push(index);
                        }
                    }
                    _ => unplaced.push(id),
                }
            }
            // A shard under repair here is acknowledged by the repair, once rebuilt: the copy
            // on disk may be the stale one that failed its audit.
            if let Some(order) = self
                .node
                .value(keys::repair(&digest))
                .await
                .and_then(|v| RepairOrder::decode(&v).ok())
                .filter(|order| order.open && order.member == self.member)
            {
                unacknowledged.retain(|index| *index != order.shard);
            }
            if !unacknowledged.is_empty() {
                self.acknowledge(digest, unacknowledged, false).await;
            }
        }
        if !unplaced.is_empty() {
            let store = self.store.clone();
            let removed = self
                .blocking(move || {
                    let unplaced: std::collections::BTreeSet<ShardId> =
                        unplaced.into_iter().collect();
                    store.retain(|id| !unplaced.contains(id))
                })
                .await;
            if let Some(report) = removed
                && report.removed > 0
            {
                info!(
                    removed = report.removed,
                    freed = report.freed_bytes,
                    "removed shards no manifest places here"
                );
            }
        }
    }

    /// Declares lost the shards the state says this node holds but its store lacks (a
    /// replaced disk, a shard quarantined as corrupt), a window of the held list per pass, so
    /// they are repaired now instead of one audit epoch at a time.
    async fn declare_missing(&self) {
        let count = crate::api::objects::count_at(&self.node, keys::held_count(self.member)).await;
        if count == 0 {
            return;
        }
        let start = self
            .held_offset
            .fetch_add(MAX_PASS_SHARDS, Ordering::Relaxed) as u64
            % count;
        let slots: Vec<Digest> = (0..count.min(MAX_PASS_SHARDS as u64))
            .map(|i| keys::held_at(self.member, (start + i) % count))
            .collect();
        let mut missing: BTreeMap<Digest, Vec<u16>> = BTreeMap::new();
        for item in self.node.values(slots).await.into_iter().flatten() {
            let Ok((object, shard)) = welkin_state::storage::records::decode_held(&item) else {
                continue;
            };
            let mut bytes = [0u8; 32];
            bytes.copy_from_slice(object.as_ref());
            if !self.store.contains(&ShardId {
                object: bytes,
                index: shard,
            }) {
                missing.entry(object).or_default().push(shard);
            }
        }
        for (object, shards) in missing {
            let Some(record) = self.record_of(&object).await else {
                continue;
            };
            // Only shards acknowledged here and not already lost (one under repair to this
            // node is lost until it is rebuilt).
            let shards: Vec<u16> = shards
                .into_iter()
                .filter(|&shard| {
                    let at = usize::from(shard);
                    record.placement.get(at) == Some(&self.member)
                        && record.is_stored(at)
                        && record.lost & (1 << at) == 0
                })
                .collect();
            if shards.is_empty() || !self.due(&object, &shards) {
                continue;
            }
            warn!(object = %hex::encode(object), ?shards, "declaring shards this node lacks lost");
            self.submit(StorageOp::Lost { object, shards }).await;
        }
    }

    /// Whether a transaction about `shards` of `object` may go out now: none went out in
    /// the last [`RESUBMIT_MS`]. Records that one does.
    fn due(&self, object: &Digest, shards: &[u16]) -> bool {
        let time = self.now_ms();
        let mut submitted = self.submitted.lock().expect("not poisoned");
        let mut object_bytes = [0u8; 32];
        object_bytes.copy_from_slice(object.as_ref());
        let ids: Vec<ShardId> = shards
            .iter()
            .map(|&index| ShardId {
                object: object_bytes,
                index,
            })
            .collect();
        if ids.iter().any(|id| {
            submitted
                .get(id)
                .is_some_and(|at| time.saturating_sub(*at) < RESUBMIT_MS)
        }) {
            return false;
        }
        // Forget entries that are long past, so the map stays bounded by recent work.
        submitted.retain(|_, at| time.saturating_sub(*at) < 10 * RESUBMIT_MS);
        for id in ids {
            submitted.insert(id, time);
        }
        true
    }

    /// Offers the configured capacity if the committed offer differs.
    async fn offer(&self) {
        let committed = self
            .node
            .value(keys::storage_node(self.member))
            .await
            .and_then(|bytes| NodeSpace::decode(&bytes).ok())
            .unwrap_or_default();
        if committed.capacity == self.capacity {
            return;
        }
        let now = self.now_ms();
        {
            let mut last = self.last_offer_ms.lock().expect("not poisoned");
            if now.saturating_sub(*last) < RESUBMIT_MS {
                return;
            }
            *last = now;
        }
        info!(
            capacity = self.capacity,
            committed = committed.capacity,
            "offering storage"
        );
        self.submit(StorageOp::Offer {
            capacity_bytes: self.capacity,
        })
        .await;
    }

    /// Submits an acknowledgement of `shards` of `object` (unless one went out recently and
    /// `now` is false). Returns the transaction id if one was submitted.
    pub(crate) async fn acknowledge(
        &self,
        object: Digest,
        shards: Vec<u16>,
        now: bool,
    ) -> Option<String> {
        let time = self.now_ms();
        {
            let mut submitted = self.submitted.lock().expect("not poisoned");
            let mut object_bytes = [0u8; 32];
            object_bytes.copy_from_slice(object.as_ref());
            let due = shards.iter().any(|&index| {
                let id = ShardId {
                    object: object_bytes,
                    index,
                };
                now || submitted
                    .get(&id)
                    .is_none_or(|at| time.saturating_sub(*at) >= RESUBMIT_MS)
            });
            if !due {
                return None;
            }
            // Forget entries that are long past, so the map stays bounded by recent work.
            submitted.retain(|_, at| time.saturating_sub(*at) < 10 * RESUBMIT_MS);
            for &index in &shards {
                submitted.insert(
                    ShardId {
                        object: object_bytes,
                        index,
                    },
                    time,
                );
            }
        }
        debug!(object = %hex::encode(object), ?shards, "acknowledging shards");
        self.submit(StorageOp::Stored { object, shards }).await
    }

    /// Signs `op` with the node's key and submits it; returns the transaction id.
    async fn submit(&self, op: StorageOp) -> Option<String> {
        let params = self.node.genesis().chain.clone();
        let nonce = self.nonce.fetch_add(1, Ordering::Relaxed);
        let tx = Transaction {
            sender: Sender::Key(commonware_cryptography::Signer::public_key(&self.key)),
            nonce,
            expiry_ms: self
                .now_ms()
                .saturating_add(params.max_tx_ttl_ms.min(60_000)),
            payload: Payload::Storage(Box::new(op)),
        }
        .sign(&self.key, &self.node.cluster_id());
        let id = hex::encode(tx.id());
        match self.node.submit(tx).await {
            Ok(_) => Some(id),
            Err(error) => {
                warn!(%error, "storage transaction not admitted; it is sent again later");
                None
            }
        }
    }
}
