//! The node's durable stores, shared by one writer and many readers.
//!
//! The executor is the only writer: it applies each finalized block to the authenticated
//! state (a commonware QMDB), appends to the audit log and stores certified checkpoints.
//! Readers (the HTTP API, through the node handle) read the same stores directly, on their
//! own threads, instead of asking the executor: a long read (a whole key event log, the
//! admission reads of a 4096-transaction batch) must never hold up block execution.
//!
//! QMDB, the journals and the archive take themselves by value to commit, so each store
//! sits in an `Option` behind an async read-write lock. The executor takes it out under the
//! write lock, commits and puts it back, so readers only ever see it present. Readers take
//! the read lock for at most [`READ_CHUNK`] keys at a time; the lock is fair, so a waiting
//! commit gets in after the chunk in progress, never after a whole long read.

use crate::values::Values;
use crate::{checkpoints::WitnessedCheckpoint, log::LogStore};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Metrics, Spawner, Storage, buffer::paged::CacheRef};
use commonware_storage::{
    archive::{Archive as _, Identifier, immutable},
    journal::contiguous::variable::Config as JournalConfig,
    merkle::full::Config as MerkleConfig,
    qmdb::{current::VariableConfig, floor::Proportional},
    translator::EightCap,
};
use commonware_utils::{NZU64, NZUsize, sequence::U64};
use std::{collections::BTreeMap, sync::Arc};
use tokio::sync::{RwLock, RwLockReadGuard};
use welkin_state::Fetched;
use welkin_types::Digest;

/// The state database (its parameters are shared with the clients that verify its proofs).
pub(crate) type StateDb<E> = welkin_types::proof::StateDb<E>;
/// Certified checkpoints by height.
type CertArchive<E> = immutable::Archive<E, U64, WitnessedCheckpoint>;
/// The codec configuration of state operations: digest keys, bounded byte values.
type StateCodec = ((), (commonware_codec::RangeCfg<usize>, ()));
/// The state database configuration.
type StateConfig = VariableConfig<EightCap, StateCodec, Sequential>;

/// How often (in heights) the state log is pruned.
const PRUNE_EVERY: u64 = 32;
/// Largest state value the database accepts.
const MAX_STATE_VALUE: usize = welkin_types::proof::MAX_STATE_VALUE_BYTES;
/// Most keys a reader reads under one hold of the state lock.
pub(crate) const READ_CHUNK: usize = 256;

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

/// What the node's stores and handle need of a runtime context.
pub trait Runtime: Spawner + Clock + Storage + Metrics {}

impl<E: Spawner + Clock + Storage + Metrics> Runtime for E {}

/// A state value and its proof under the state root of the latest applied height.
#[derive(Clone, Debug)]
pub struct ProvenValue {
    /// The height whose state the proof describes.
    pub height: u64,
    /// The state root after that height.
    pub root: Digest,
    /// The value.
    pub value: Vec<u8>,
    /// The QMDB proof of (key, value) under `root`.
    pub proof: welkin_types::proof::StateProof,
}

/// The state database with the height it was last committed at.
pub(crate) struct State<E: Spawner + Clock + Storage + Metrics> {
    /// The database.
    pub(crate) db: StateDb<E>,
    /// The height of the block whose writes it holds last (0 for genesis).
    pub(crate) height: u64,
}

/// Shared handles to the node's stores. Cloning shares them.
pub(crate) struct Stores<E: Spawner + Clock + Storage + Metrics> {
    state: Arc<RwLock<Option<State<E>>>>,
    log: Arc<RwLock<Option<LogStore<E>>>>,
    certs: Arc<RwLock<Option<CertArchive<E>>>>,
    /// Sealed values beside the block archive (see [`crate::values`]).
    pub(crate) values: Values<E>,
}

impl<E: Spawner + Clock + Storage + Metrics> Clone for Stores<E> {
    fn clone(&self) -> Self {
        Self {
            state: self.state.clone(),
            log: self.log.clone(),
            certs: self.certs.clone(),
            values: self.values.clone(),
        }
    }
}

/// Unwraps a store that only the writer ever takes out, and only under the write lock.
fn present<T>(slot: &Option<T>) -> &T {
    slot.as_ref()
        .expect("stores are taken out only under the write lock")
}

impl<E: Spawner + Clock + Storage + Metrics> Stores<E> {
    /// Opens the state database and checkpoint archive; the log is opened by
    /// [`Self::open_log`] once the committed log size is known.
    pub(crate) async fn open(context: &E, prefix: &str, page_cache: &CacheRef) -> Self {
        let db = StateDb::init(
            context.child("state"),
            state_config(prefix, page_cache),
            None,
        )
        .await
        .expect("state database must open; is the data directory intact?");
        let height = match db
            .get_metadata()
            .await
            .expect("state metadata must be readable")
        {
            Some(bytes) => u64::from_be_bytes(
                bytes
                    .as_slice()
                    .try_into()
                    .expect("applied height metadata is 8 bytes"),
            ),
            None => 0,
        };
        let certs = CertArchive::init(
            context.child("checkpoints"),
            cert_config(prefix, page_cache),
        )
        .await
        .expect("checkpoint archive must open; is the data directory intact?");
        Self {
            state: Arc::new(RwLock::new(Some(State { db, height }))),
            log: Arc::new(RwLock::new(None)),
            certs: Arc::new(RwLock::new(Some(certs))),
            values: Values::new(context.child("values"), prefix),
        }
    }

    /// Whether the state database has never committed (a first start).
    pub(crate) async fn is_fresh(&self) -> bool {
        let guard = self.state.read().await;
        present(&guard)
            .db
            .get_metadata()
            .await
            .expect("state metadata must be readable")
            .is_none()
    }

    /// Opens the audit log at `committed` entries.
    pub(crate) async fn open_log(&self, context: E, prefix: &str, page_cache: &CacheRef) {
        let committed =
            welkin_state::read_u64(self.value(&welkin_state::keys::log_size()).await.as_deref());
        let log = LogStore::init(context, prefix, page_cache, committed).await;
        *self.log.write().await = Some(log);
    }

    // ---- the writer's side (the executor) ----

    /// Writes one batch with `height` as commit metadata and makes it durable; returns the
    /// new state root.
    pub(crate) async fn commit(
        &self,
        writes: BTreeMap<Digest, Option<Vec<u8>>>,
        height: u64,
    ) -> Digest {
        let mut guard = self.state.write().await;
        let State { db, .. } = guard.take().expect("the state is present outside a commit");
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
        let root = db.root();
        *guard = Some(State { db, height });
        root
    }

    /// Fetches into `snapshot` those of `keys` it does not hold yet.
    pub(crate) async fn fetch(&self, keys: Vec<Digest>, snapshot: &mut Fetched) {
        let keys: Vec<Digest> = keys
            .into_iter()
            .filter(|key| !snapshot.0.contains_key(key))
            .collect();
        let values = self.values(&keys).await;
        snapshot.0.extend(keys.into_iter().zip(values));
    }

    /// The log for writing (append, fork checks).
    pub(crate) async fn log_mut(&self) -> tokio::sync::RwLockMappedWriteGuard<'_, LogStore<E>> {
        tokio::sync::RwLockWriteGuard::map(self.log.write().await, |slot| {
            slot.as_mut()
                .expect("the log is opened before blocks are applied")
        })
    }

    /// Stores a certified checkpoint durably.
    pub(crate) async fn put_certificate(&self, witnessed: &WitnessedCheckpoint) {
        let height = witnessed.certified.checkpoint.height;
        let mut guard = self.certs.write().await;
        let certs = guard
            .take()
            .expect("the archive is present outside a write");
        let certs = certs
            .put_sync(height, U64::new(height), witnessed)
            .await
            .expect("checkpoint archive write must succeed");
        *guard = Some(certs);
    }

    // ---- the readers' side ----

    /// The state root and the height it is at.
    pub(crate) async fn root(&self) -> (Digest, u64) {
        let guard = self.state.read().await;
        let state = present(&guard);
        (state.db.root(), state.height)
    }

    /// The value at `key` in the latest committed state.
    pub(crate) async fn value(&self, key: &Digest) -> Option<Vec<u8>> {
        let guard = self.state.read().await;
        present(&guard)
            .db
            .get(key)
            .await
            .expect("state reads must succeed")
    }

    /// The value of `key` with its proof under the state root, both at the latest applied
    /// height, read under one hold of the lock (`None` when the key has no value).
    pub(crate) async fn prove(&self, key: &Digest) -> Result<Option<ProvenValue>, String> {
        let guard = self.state.read().await;
        let state = present(&guard);
        let Some(value) = state.db.get(key).await.map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let proof = state
            .db
            .key_value_proof(*key)
            .await
            .map_err(|e| e.to_string())?;
        Ok(Some(ProvenValue {
            height: state.height,
            root: state.db.root(),
            value,
            proof,
        }))
    }

    /// The values at `keys`, in order. Long lists are read in chunks of [`READ_CHUNK`], so
    /// values of one call may come from consecutive heights.
    pub(crate) async fn values(&self, keys: &[Digest]) -> Vec<Option<Vec<u8>>> {
        let mut values = Vec::with_capacity(keys.len());
        for chunk in keys.chunks(READ_CHUNK) {
            let guard = self.state.read().await;
            let db = &present(&guard).db;
            for key in chunk {
                values.push(db.get(key).await.expect("state reads must succeed"));
            }
        }
        values
    }

    /// The audit log, for reading.
    pub(crate) async fn log(&self) -> tokio::sync::RwLockReadGuard<'_, LogStore<E>> {
        RwLockReadGuard::map(self.log.read().await, |slot| {
            slot.as_ref()
                .expect("the log is opened before the node serves reads")
        })
    }

    /// Log entries `start..end` (fewer if the log ends first).
    pub(crate) async fn entries(&self, start: u64, end: u64) -> Vec<Vec<u8>> {
        let mut entries = Vec::new();
        let mut index = start;
        while index < end {
            let stop = end.min(index + READ_CHUNK as u64);
            let log = self.log().await;
            while index < stop {
                match log.entry(index).await {
                    Some(entry) => entries.push(entry),
                    None => return entries,
                }
                index += 1;
            }
        }
        entries
    }

    /// The certified checkpoint stored at `height`.
    pub(crate) async fn certificate(&self, height: u64) -> Option<WitnessedCheckpoint> {
        let guard = self.certs.read().await;
        present(&guard)
            .get(Identifier::Index(height))
            .await
            .ok()
            .flatten()
    }

    /// Whether a certified checkpoint is stored at `height`.
    pub(crate) async fn has_certificate(&self, height: u64) -> bool {
        let guard = self.certs.read().await;
        present(&guard)
            .has(Identifier::Index(height))
            .await
            .unwrap_or(false)
    }

    /// The highest height with a stored certificate.
    pub(crate) async fn last_certified(&self) -> u64 {
        let guard = self.certs.read().await;
        present(&guard).last_index().unwrap_or(0)
    }
}
