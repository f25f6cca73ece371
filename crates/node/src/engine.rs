//! All commonware consensus wiring lives here, so that a commonware version bump touches one
//! module: simplex (BLS12-381 threshold VRF scheme) over marshal (ordered, durable block
//! delivery with backfill), buffered broadcast for block dissemination, and the p2p channels.
//!
//! The same [`start`] runs on the deterministic runtime with the simulated network (tests) and
//! on the tokio runtime with authenticated lookup p2p (production).

use crate::{
    admission::Admission,
    application::App,
    checkpoints::{Tracker, Witnesses},
    executor::{self, Executor, ExecutorConfig},
    gossip,
    handle::NodeHandle,
    keygen::{ClusterKeys, KeyCell, KeygenStore},
    mempool::{Mempool, MempoolConfig},
    penalty::Penalties,
    releases::{Releases, ReleasesConfig, actor::Releaser},
    store::Stores,
    timeline::{CertificateReporter, Timeline},
    waiters::{Waiters, WaitersConfig},
};
use commonware_broadcast::buffered;
use commonware_codec::Encode as _;
use commonware_consensus::{
    Reporter,
    marshal::{
        self, Update,
        core::Actor as MarshalActor,
        resolver::p2p as marshal_resolver,
        standard::{Inline, Standard},
    },
    simplex::{
        self,
        config::{Floor, ForwardPolicy, SkipPolicy},
        elector::RoundRobin,
    },
    types::{Epoch, FixedEpocher, ViewDelta},
};
use commonware_cryptography::{Digested, Digestible, Sha256, bls12381::primitives::group::Share};
use commonware_p2p::{
    Blocker, Provider, Receiver, Sender,
    utils::mux::{Builder as _, Muxer},
};
use commonware_parallel::Sequential;
use commonware_runtime::{Clock, Metrics, Spawner, Storage, buffer::paged::CacheRef};
use commonware_storage::archive::immutable;
use commonware_utils::{NZDuration, NZU16, NZU64, NZUsize};
use futures::channel::mpsc;
use rand_core::CryptoRng;
use std::{
    num::NonZeroUsize,
    sync::{Arc, Mutex, atomic::AtomicU64},
    time::Duration,
};
use welkin_types::{Block, Genesis, PrivateKey, PublicKey, Variant};

pub(crate) use crate::consensus::Scheme;

/// The p2p channels a node uses, by number.
pub mod channel {
    /// Consensus votes.
    pub const VOTE: u64 = 0;
    /// Consensus certificates.
    pub const CERTIFICATE: u64 = 1;
    /// Consensus certificate fetches.
    pub const RESOLVER: u64 = 2;
    /// Marshal block backfill.
    pub const BACKFILL: u64 = 3;
    /// Block broadcast.
    pub const BROADCAST: u64 = 4;
    /// Checkpoint partial signatures.
    pub const CHECKPOINT: u64 = 5;
    /// Mempool transaction gossip.
    pub const GOSSIP: u64 = 6;
    /// Release envelopes: partials for committed secret reads, sealed to their readers.
    pub const RELEASE: u64 = 7;
    /// Transit keys: key generation shares and threshold signing.
    pub const TRANSIT: u64 = 8;
    /// Time: clock readings and certificate partials.
    pub const TIME: u64 = 9;
    /// Storage: audit proofs and repair blocks.
    pub const STORAGE: u64 = 10;
    /// Cluster key generation: dealings and acknowledgements.
    pub const DKG: u64 = 11;
    /// Every channel, for registration.
    pub const ALL: [u64; 12] = [
        VOTE,
        CERTIFICATE,
        RESOLVER,
        BACKFILL,
        BROADCAST,
        CHECKPOINT,
        GOSSIP,
        RELEASE,
        TRANSIT,
        TIME,
        STORAGE,
        DKG,
    ];

    /// The per-peer rate limit of a channel, applied by both ends: a sender skips a peer
    /// over quota (the message is lost), a receiver stops reading the peer's connection until
    /// the quota allows. Its burst also sizes the channel's receive mailbox (peers x burst
    /// slots, preallocated), so it must stay modest. Each is a few times the most a node
    /// sends in normal operation:
    /// - votes and certificates: about three per view each, views at most a few tens a second;
    /// - consensus certificate fetches: only while a node catches up on views;
    /// - block backfill: a catching-up node fetches up to `max_repair` blocks at once;
    /// - block broadcast: one block per view from its leader;
    /// - checkpoints: one partial per height, re-sends of uncertified heights (at most
    ///   [`crate::checkpoints::RESEND_BATCH`] every re-send tick) and certificates in reply;
    /// - gossip: at most [`crate::gossip::GOSSIP_RATE`] batches a second on average;
    /// - releases: one batch per block with reads;
    /// - transit: per signature a request and an answer each way, nonce asks and answers
    ///   every 250 ms at most, key generation shares every 2 s while one runs;
    /// - time: per certificate round an ask, a reading, a certify request and a partial;
    ///   rounds batch client nonces, so a coordinator runs at most a few hundred a second;
    /// - storage: per audit epoch a proof ask and answer per holder; while a node repairs,
    ///   `k` block asks per segment (one at a time per holder). Blocks are large (up to
    ///   4 MiB), so the burst stays small;
    /// - key generation: a dealing and an acknowledgement each way per round, dealings again
    ///   every second to members that have not acknowledged.
    pub fn quota(channel: u64) -> commonware_runtime::Quota {
        use commonware_utils::NZU32;
        let per_second = match channel {
            VOTE | CERTIFICATE => NZU32!(512),
            RESOLVER | BACKFILL | CHECKPOINT => NZU32!(256),
            GOSSIP | RELEASE => NZU32!(512),
            TRANSIT | TIME => NZU32!(4096),
            STORAGE => NZU32!(128),
            BROADCAST => NZU32!(128),
            _ => NZU32!(64),
        };
        commonware_runtime::Quota::per_second(per_second)
    }
}

/// The largest p2p message any component sends: a full block with its certificate, with room
/// to spare. Every node must use the same value.
pub const MAX_MESSAGE_BYTES: u32 = 8 * 1024 * 1024;

/// One (sender, receiver) pair per channel, in the order of [`channel::ALL`].
pub struct Channels<S, R> {
    /// Pairs indexed by channel number.
    pub pairs: Vec<(S, R)>,
}

/// Consensus timing.
#[derive(Clone, Debug)]
pub struct Timeouts {
    /// How long to wait for a leader's proposal before voting to skip the view.
    pub leader: Duration,
    /// How long to wait for a notarized proposal to certify.
    pub certification: Duration,
    /// How often to resend a skip vote while stuck.
    pub retry: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            leader: Duration::from_millis(1_000),
            certification: Duration::from_millis(2_000),
            retry: Duration::from_millis(5_000),
        }
    }
}

/// Everything a node needs to start.
#[derive(Clone)]
pub struct EngineConfig {
    /// The node's ed25519 identity.
    pub signer: PrivateKey,
    /// The node's share of the cluster key, from a trusted dealer (`None` for a dealerless
    /// cluster, whose nodes generate their shares at first start).
    pub share: Option<Share>,
    /// The cluster's genesis.
    pub genesis: Genesis,
    /// This node's own signed registration, when it is not a genesis member but asks to join
    /// (a cluster with a membership policy): it follows the chain and takes part from the
    /// epoch it is admitted to.
    pub joining: Option<welkin_types::NodeInfo>,
    /// Prefix of every storage partition (lets several nodes share one storage namespace).
    pub partition_prefix: String,
    /// Mempool limits.
    pub mempool: MempoolConfig,
    /// Limits on clients waiting for commits.
    pub waiters: WaitersConfig,
    /// Limits on held secret releases.
    pub releases: ReleasesConfig,
    /// Most transactions a proposer puts in one block.
    pub max_block_txs: usize,
    /// Least block time between a parent and the block this node proposes on it (at most
    /// 500 ms). Larger values make bigger blocks under load, at the cost of latency.
    pub min_block_interval: Duration,
    /// How long a proposer waits for a transaction before proposing an empty block (at most
    /// 500 ms; it proposes at once when one arrives). Zero makes back-to-back empty blocks:
    /// the consensus floor, for measurements.
    pub idle_wait: Duration,
    /// Consensus timing.
    pub timeouts: Timeouts,
    /// How the node bounds its clock's error (for time certificates).
    pub clock: crate::time::ClockConfig,
    /// The node's shard store, if it runs the storage service (every node of a cluster
    /// that stores objects should: nodes without one neither hold shards nor judge audits).
    pub storage: Option<crate::objects::StorageSetup>,
}

impl EngineConfig {
    /// Checks that the identity and share belong to this genesis; returns the node's genesis
    /// position (`None` for a joining node).
    pub fn validate(&self) -> Result<Option<usize>, String> {
        use commonware_cryptography::Signer as _;
        let me = self.signer.public_key();
        let Some(index) = self.genesis.index_of(&me) else {
            let Some(joining) = &self.joining else {
                return Err(format!(
                    "key {me} is not a member of this cluster (a node that joins gives its \
                     signed registration)"
                ));
            };
            if self.genesis.membership.is_none() {
                return Err(
                    "this cluster's genesis names no membership policy: its members \
                            are fixed, and no node joins"
                        .into(),
                );
            }
            if joining.public_key != me {
                return Err("the joining registration is for another key".into());
            }
            joining
                .verify_registration()
                .map_err(|e| format!("the joining registration: {e}"))?;
            if self.share.is_some() {
                return Err("a joining node holds no share of a dealt key".into());
            }
            return Ok(None);
        };
        match (&self.genesis.polynomial, &self.share) {
            (Some(polynomial), Some(share)) => {
                if share.index.get() as usize != index {
                    return Err(format!(
                        "key share is for member {}, but this key is member {index}",
                        share.index.get()
                    ));
                }
                let expected = polynomial
                    .partial_public(share.index)
                    .map_err(|e| e.to_string())?;
                if share.public::<Variant>() != expected {
                    return Err("key share does not match the cluster's public polynomial".into());
                }
            }
            (Some(_), None) => {
                return Err("this genesis has a dealt key, but no share was given: pass the                             node's share file from `welkin genesis --trusted-dealer`"
                    .into());
            }
            (None, Some(_)) => {
                return Err("this genesis is dealerless: its nodes generate their shares, so                             none may be given"
                    .into());
            }
            (None, None) => {}
        }
        if self.max_block_txs == 0 {
            return Err("max_block_txs must be positive".into());
        }
        let max_idle = crate::application::MAX_IDLE_WAIT;
        if self.idle_wait > max_idle {
            return Err(format!(
                "idle_wait_ms must be at most {} (inside the leader timeout), got {}",
                max_idle.as_millis(),
                self.idle_wait.as_millis()
            ));
        }
        self.mempool.validate()?;
        Ok(Some(index))
    }
}

/// Forwards marshal's finalized-block updates to the executor (reports must not block).
#[derive(Clone)]
struct UpdateForwarder(mpsc::UnboundedSender<Update<Block>>);

impl Reporter for UpdateForwarder {
    type Activity = Update<Block>;

    fn report(&mut self, activity: Self::Activity) -> commonware_actor::Feedback {
        match self.0.unbounded_send(activity) {
            Ok(()) => commonware_actor::Feedback::Ok,
            Err(_) => commonware_actor::Feedback::Closed,
        }
    }
}

pub(crate) fn archive_config<C>(
    prefix: &str,
    name: &str,
    page_cache: &CacheRef,
    codec_config: C,
) -> immutable::Config<C> {
    immutable::Config {
        metadata_partition: format!("{prefix}-{name}-metadata"),
        freezer_table_partition: format!("{prefix}-{name}-freezer-table"),
        freezer_table_initial_size: 1 << 12,
        freezer_table_resize_frequency: 4,
        freezer_table_resize_chunk_size: 1 << 10,
        freezer_key_partition: format!("{prefix}-{name}-freezer-key"),
        freezer_key_page_cache: page_cache.clone(),
        freezer_value_partition: format!("{prefix}-{name}-freezer-value"),
        freezer_value_target_size: 1 << 24,
        freezer_value_compression: None,
        ordinal_partition: format!("{prefix}-{name}-ordinal"),
        items_per_section: NZU64!(1 << 12),
        codec_config,
        replay_buffer: NZUsize!(1 << 16),
        freezer_key_write_buffer: NZUsize!(1 << 16),
        freezer_value_write_buffer: NZUsize!(1 << 16),
        ordinal_write_buffer: NZUsize!(1 << 16),
    }
}

/// Starts a node's consensus, storage, executor and gossip on the runtime `context`.
///
/// `channels` holds one p2p pair per entry of [`channel::ALL`]; `peers` tells the
/// broadcast and backfill engines who the peers are; `blocker` disconnects misbehaving peers.
pub async fn start<E, S, R, P, B>(
    context: E,
    config: EngineConfig,
    channels: Channels<S, R>,
    peers: P,
    blocker: B,
) -> NodeHandle<E>
where
    E: Spawner + Clock + Storage + Metrics + CryptoRng + Send + Sync + 'static,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
    P: Provider<PublicKey = PublicKey>,
    B: Blocker<PublicKey = PublicKey>,
{
    use commonware_cryptography::Signer as _;
    let my_index = config
        .validate()
        .expect("engine config must be validated by the caller");
    let me = config.signer.public_key();
    let genesis = config.genesis.clone();
    let cluster_id = genesis.cluster_id();
    let prefix = config.partition_prefix.clone();
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(1024));

    let mut pairs = config_pairs(channels);
    let dkg_net = pairs.pop().expect("dkg channel");
    let storage_net = pairs.pop().expect("storage channel");
    let time_net = pairs.pop().expect("time channel");
    let transit_net = pairs.pop().expect("transit channel");
    let release_net = pairs.pop().expect("release channel");
    let gossip_net = pairs.pop().expect("gossip channel");
    let checkpoint_net = pairs.pop().expect("checkpoint channel");
    let broadcast_net = pairs.pop().expect("broadcast channel");
    let backfill_net = pairs.pop().expect("backfill channel");
    let resolver_net = pairs.pop().expect("resolver channel");
    let certificate_net = pairs.pop().expect("certificate channel");
    let vote_net = pairs.pop().expect("vote channel");

    let mempool = Mempool::new(config.mempool);
    let timeline = Timeline::new(&context.child("timeline"));
    let penalties = Penalties::new(&context.child("penalties"), blocker.clone());
    let applied_height = Arc::new(AtomicU64::new(0));
    let seed: [u8; 32] = config
        .signer
        .encode()
        .as_ref()
        .try_into()
        .expect("ed25519 seeds are 32 bytes");
    let cosigner = Arc::new(
        welkin_note::CosignatureSigner::new(
            &welkin_types::note::cosigner_name(
                &cluster_id,
                &my_index.map_or_else(
                    || {
                        config
                            .joining
                            .as_ref()
                            .map(|j| j.name.clone())
                            .unwrap_or_default()
                    },
                    |i| genesis.nodes[i].name.clone(),
                ),
            ),
            &seed,
        )
        .expect("genesis validation keeps node names usable as key names"),
    );
    assert_eq!(
        cosigner.public_key().as_slice(),
        me.as_ref(),
        "the cosigning key is the node's identity key"
    );
    // The node's KERI identifier: non-transferable (`B`), its identity key, so the
    // membership in genesis binds it to the node's p2p key.
    let witness = Arc::new(welkin_keri::Signer::non_transferable(&seed));

    // The stores, shared by the executor (their only writer) and the handle (readers).
    let stores = Stores::open(&context, &prefix, &page_cache).await;
    stores
        .open_log(context.child("log"), &prefix, &page_cache)
        .await;
    // The cluster key: dealt at genesis, or generated by the keygen actor below.
    let keys = KeyCell::new();
    let dealt = genesis.polynomial.clone().zip(config.share.clone());
    if let Some((sharing, share)) = &dealt {
        keys.set(ClusterKeys {
            sharing: sharing.clone(),
            share: Some(share.clone()),
        });
    }
    let tracker = Arc::new(Mutex::new(Tracker::new(
        cluster_id,
        Some(me.clone()),
        my_index.map(|i| i as u32),
        genesis.member_keys(),
        dealt,
        Witnesses {
            signer: cosigner.clone(),
            verifiers: welkin_types::note::cosigner_verifiers(&genesis),
        },
    )));

    // Releaser: partials for the reads each block allowed, sealed to their readers. It starts
    // once the cluster key exists (nothing can be sealed to the key before, so no read is
    // granted before).
    let releases = Releases::new(config.releases);
    let (grants_tx, grants_rx) = mpsc::channel(crate::releases::actor::GRANT_BACKLOG);
    {
        let keys = keys.clone();
        let members: Vec<PublicKey> = genesis.nodes.iter().map(|n| n.public_key.clone()).collect();
        let (releases, penalties) = (releases.clone(), penalties.clone());
        context.child("releaser").spawn(move |context| async move {
            // Secret releases use the first key's shares, by genesis position: a node that
            // joined later releases nothing (see docs/membership.md).
            let Some(my_index) = my_index else {
                return;
            };
            let Some(share) = keys.wait().await.share.clone() else {
                return;
            };
            Releaser {
                context,
                cluster_id,
                share,
                my_index: my_index as u32,
                members,
                releases,
                penalties,
            }
            .start(grants_rx, release_net);
            // The releaser's tasks are this task's children: it lives as long as they run.
            futures::future::pending::<()>().await;
        });
    }

    // Executor: applies finalized blocks to the authenticated state and certifies checkpoints.
    // Transit: key generation and threshold signing (started once the handle exists).
    let (sign_grants_tx, sign_grants_rx) = mpsc::channel(crate::releases::actor::GRANT_BACKLOG);
    let (transit, sign_jobs) = crate::transit::TransitHandle::new();
    let time_status = Arc::new(Mutex::new(
        crate::time::actor::TimeActor::<E>::initial_status(
            my_index.unwrap_or_default() as u32,
            genesis.nodes.len(),
        ),
    ));
    let (time, time_requests) =
        crate::time::TimeHandle::new(time_status.clone(), config.clock.drift_ppm);
    let transit_shares =
        crate::transit::shares::Shares::open(context.child("transit_shares"), &prefix).await;

    let (update_tx, update_rx) = mpsc::unbounded();
    let (epoch_tx, mut epoch_rx) = mpsc::unbounded();
    let shared = executor::Shared::new(Waiters::new(config.waiters));
    let executor = Executor::init(
        context.child("executor"),
        ExecutorConfig {
            genesis: genesis.clone(),
            stores: stores.clone(),
            tracker: tracker.clone(),
            mempool: mempool.clone(),
            applied_height: applied_height.clone(),
            shared: shared.clone(),
            penalties: penalties.clone(),
            timeline: timeline.clone(),
            releases: releases.clone(),
            grants: grants_tx,
            sign_grants: sign_grants_tx,
            epochs: epoch_tx,
        },
    )
    .await;
    executor.start(update_rx, checkpoint_net);

    // Block dissemination and backfill.
    let (broadcast_engine, buffer) = buffered::Engine::new(
        context.child("broadcast"),
        buffered::Config {
            public_key: me.clone(),
            mailbox_size: NZUsize!(1024),
            deque_size: 16,
            priority: false,
            codec_config: (),
            peer_provider: peers.clone(),
            strategy: Sequential,
        },
    );
    broadcast_engine.start(broadcast_net);
    let resolver = marshal_resolver::init(
        context.child("backfill"),
        marshal_resolver::Config {
            public_key: me.clone(),
            peer_provider: peers.clone(),
            blocker: blocker.clone(),
            mailbox_size: NZUsize!(1024),
            fetch_timeout: NZDuration!(Duration::from_secs(2)),
            fetch_retry_delay: Duration::from_millis(100),
            priority_requests: false,
            priority_responses: false,
        },
        backfill_net,
    );

    // Marshal: finalized blocks in height order, durably, at least once.
    let finalizations = immutable::Archive::init(
        context.child("finalizations"),
        archive_config(
            &prefix,
            "finalizations",
            &page_cache,
            // A certificate holds at most one signature per member, of any epoch.
            welkin_types::limits::MAX_NODES,
        ),
    )
    .await
    .expect("finalization archive must open; is the data directory intact?");
    let blocks = immutable::Archive::init(
        context.child("blocks"),
        archive_config(&prefix, "blocks", &page_cache, ()),
    )
    .await
    .expect("block archive must open; is the data directory intact?");
    // Blocks are archived without their sealed values, which are kept beside them so that
    // destroying a secret destroys its bytes (see `crate::values`).
    let blocks = crate::values::BlockArchive::new(blocks, stores.values.clone());
    let genesis_block = genesis.block();
    let genesis_digest = genesis_block.digest();
    let epocher = FixedEpocher::new(
        std::num::NonZeroU64::new(genesis.epoch_blocks().max(2)).expect("at least two"),
    );
    let schemes = crate::epochs::EpochSchemes::new(config.signer.clone());
    let (marshal_actor, marshal, _floor) =
        MarshalActor::<_, Standard<Block>, _, _, _, _, _, _>::init(
            context.child("marshal"),
            finalizations,
            blocks,
            marshal::Config {
                provider: schemes.clone(),
                epocher: epocher.clone(),
                start: marshal::Start::Genesis(Digested::precomputed(
                    genesis_block,
                    genesis_digest,
                )),
                partition_prefix: format!("{prefix}-marshal"),
                mailbox_size: NZUsize!(1024),
                view_retention: ViewDelta::new(16),
                // Small sections: marshal's cache holds whole blocks (sealed values included)
                // until their section falls behind the retained views, and a destroyed
                // secret's ciphertext must not outlive its destruction by long.
                prunable_items_per_section: NZU64!(64),
                page_cache: page_cache.clone(),
                replay_buffer: NZUsize!(1 << 16),
                key_write_buffer: NZUsize!(1 << 16),
                value_write_buffer: NZUsize!(1 << 16),
                block_codec_config: (),
                max_repair: NZUsize!(64),
                max_pending_acks: NZUsize!(8),
                strategy: Sequential,
            },
        )
        .await;
    marshal_actor.start(UpdateForwarder(update_tx), buffer, resolver);

    // Consensus.
    let app = App::new(
        mempool.clone(),
        cluster_id,
        genesis.chain.clone(),
        crate::application::Pacing {
            max_block_txs: config.max_block_txs,
            min_block_interval: config.min_block_interval,
            idle_wait: config.idle_wait,
        },
        applied_height.clone(),
        timeline.clone(),
    );
    let inline = Inline::new(
        context.child("inline"),
        app,
        marshal.clone(),
        epocher.clone(),
    );
    // One simplex engine per epoch, each on its own subchannels (see `crate::epochs`).
    let (vote_mux, mut votes, mut later_votes) =
        Muxer::builder(context.child("vote_mux"), vote_net.0, vote_net.1)
            .with_backup()
            .build();
    vote_mux.start();
    let (certificate_mux, mut certificates) = Muxer::new(
        context.child("certificate_mux"),
        certificate_net.0,
        certificate_net.1,
    );
    certificate_mux.start();
    let (resolver_mux, mut resolvers) = Muxer::new(
        context.child("resolver_mux"),
        resolver_net.0,
        resolver_net.1,
    );
    resolver_mux.start();
    let start_engine = {
        let context = context.child("simplex");
        let timeline = timeline.clone();
        let timeouts = config.timeouts.clone();
        let prefix = prefix.clone();
        let blocker = blocker.clone();
        move |epoch: u64, floor: welkin_types::Digest, scheme: Scheme| {
            let partition = simplex_partition(&prefix, epoch);
            simplex::Engine::new(
                context.child("epoch").with_attribute("epoch", epoch),
                simplex::config::Config {
                    scheme,
                    // Leaders rotate in an order shuffled by the cluster id. (A random leader
                    // per view needs the BLS threshold VRF in every vote, which measured as
                    // the floor of the commit latency: see docs/architecture.md.)
                    elector: RoundRobin::<Sha256>::shuffled(cluster_id.as_ref()),
                    blocker: blocker.clone(),
                    automaton: inline.clone(),
                    relay: inline.clone(),
                    reporter: commonware_consensus::Reporters::from((
                        inline.clone(),
                        CertificateReporter {
                            clock: Arc::new(context.child("certificates")),
                            timeline: timeline.clone(),
                        },
                    )),
                    strategy: Sequential,
                    partition,
                    mailbox_size: NZUsize!(1024),
                    epoch: Epoch::new(epoch),
                    floor: Floor::Genesis(floor),
                    replay_buffer: NZUsize!(1 << 16),
                    write_buffer: NZUsize!(1 << 16),
                    page_cache: page_cache.clone(),
                    leader_timeout: timeouts.leader,
                    certification_timeout: timeouts.certification,
                    timeout_retry: timeouts.retry,
                    view_retention: ViewDelta::new(16),
                    skip: SkipPolicy::Disabled,
                    fetch_timeout: NZDuration!(Duration::from_secs(1)),
                    fetch_retry_delay: Duration::from_millis(100),
                    forward: ForwardPolicy::Disabled,
                    track_historical_votes: false,
                },
            )
        }
    };
    {
        let marshal = marshal.clone();
        let epocher = epocher.clone();
        let schemes = schemes.clone();
        let applied_for_epochs = applied_height.clone();
        let journal_prefix = prefix.clone();
        context.child("epochs").spawn(move |context| async move {
            use crate::epochs::{FOLLOW_INTERVAL, Following, floor_height};
            use futures::StreamExt as _;
            let mut following: Option<Following> = None;
            let mut engines: std::collections::BTreeMap<u64, commonware_runtime::Handle<()>> =
                std::collections::BTreeMap::new();
            let mut follow_at = context.current() + FOLLOW_INTERVAL;
            loop {
                commonware_macros::select! {
                    change = epoch_rx.next() => {
                        let Some(change) = change else { return };
                        if following.as_ref().is_some_and(|f| f.epoch >= change.epoch) {
                            continue;
                        }
                        let signer = schemes.register(change.epoch, &change.members);
                        let member = signer.is_some();
                        if let Some(scheme) = signer {
                            let floor = match floor_height(&epocher, change.epoch) {
                                None => genesis_digest,
                                Some(height) => match marshal.get_block(height).await {
                                    Some(block) => block.digest(),
                                    None => {
                                        tracing::error!(
                                            epoch = change.epoch,
                                            %height,
                                            "the previous epoch's last block is not finalized \
                                             here; not starting the epoch's engine"
                                        );
                                        continue;
                                    }
                                },
                            };
                            let epoch = change.epoch;
                            let channels = async {
                                Some((
                                    votes.register(epoch).await.ok()?,
                                    certificates.register(epoch).await.ok()?,
                                    resolvers.register(epoch).await.ok()?,
                                ))
                            };
                            let Some((vote, certificate, resolver)) = channels.await else {
                                tracing::error!(epoch, "cannot open the epoch's consensus channels");
                                continue;
                            };
                            let engine = start_engine(epoch, floor, (*scheme).clone());
                            engines.insert(epoch, engine.start(vote, certificate, resolver));
                            tracing::info!(epoch, members = change.members.len(), "entered epoch");
                        } else {
                            tracing::info!(
                                epoch = change.epoch,
                                "not a member of this epoch: following the chain"
                            );
                        }
                        // Earlier epochs are over: their last block is final.
                        let ended: Vec<u64> =
                            engines.keys().copied().filter(|e| *e < change.epoch).collect();
                        for epoch in ended {
                            if let Some(engine) = engines.remove(&epoch) {
                                engine.abort();
                                tracing::info!(epoch, "left epoch");
                                // Its journal is of no more use once its last block is
                                // final: removed once the aborted engine has let go of it.
                                let partition = simplex_partition(&journal_prefix, epoch);
                                context.child("cleanup").spawn(move |context| async move {
                                    context.sleep(Duration::from_secs(2)).await;
                                    if let Err(error) = context.remove(&partition, None).await {
                                        tracing::warn!(%partition, %error, "cannot remove an ended epoch's journal");
                                    }
                                });
                            }
                        }
                        following = Some(Following {
                            epoch: change.epoch,
                            members: change.members,
                            member,
                        });
                    },
                    later = later_votes.recv() => {
                        let Some((their_epoch, (from, _))) = later else { return };
                        if let Some(f) = &following
                            && their_epoch > f.epoch
                        {
                            f.follow(&marshal, &epocher, vec![from]);
                        }
                    },
                    _ = context.sleep_until(follow_at) => {
                        follow_at = context.current() + FOLLOW_INTERVAL;
                        if let Some(f) = following.as_ref().filter(|f| !f.member) {
                            let applied = applied_for_epochs
                                .load(std::sync::atomic::Ordering::Acquire);
                            f.follow_tip(&marshal, &epocher, applied);
                        }
                    },
                }
            }
        });
    }

    // Mempool gossip.
    let admission = Admission::new(
        cluster_id,
        genesis.chain.clone(),
        genesis.nodes.iter().map(|n| n.public_key.clone()).collect(),
        mempool.clone(),
        stores.clone(),
        timeline.clone(),
    );
    let gossip = gossip::start(
        context.child("gossip"),
        gossip_net,
        admission.clone(),
        penalties.clone(),
        timeline,
    );

    let tracker_for_keygen = tracker.clone();
    let handle = NodeHandle::new(
        context.child("handle"),
        keys.clone(),
        genesis,
        me,
        mempool,
        gossip,
        stores,
        tracker,
        marshal,
        shared,
        cosigner,
        witness,
        admission,
        releases,
        penalties.clone(),
        transit,
        time,
    );
    // Time certificates are signed with the cluster key: the actor starts once it exists.
    {
        let keys = keys.clone();
        let (signer, penalties, clock) = (
            config.signer.clone(),
            penalties.clone(),
            config.clock.clone(),
        );
        let handle = handle.clone();
        context.child("time").spawn(move |context| async move {
            // Time certificates, like releases, use the first key's shares by genesis
            // position: a node that joined later takes no part.
            let Some(my_index) = my_index else {
                return;
            };
            let held = keys.wait().await;
            let Some(share) = held.share.clone() else {
                return;
            };
            crate::time::actor::TimeActor {
                context,
                me: my_index as u32,
                key: signer,
                share,
                sharing: held.sharing.clone(),
                cluster_id,
                members: handle
                    .genesis()
                    .nodes
                    .iter()
                    .map(|n| n.public_key.clone())
                    .collect(),
                penalties,
                clock,
                status: time_status,
                handle,
            }
            .start(time_requests, time_net);
            // The actor's tasks are this task's children: it lives as long as they run.
            futures::future::pending::<()>().await;
        });
    }
    if handle.genesis().polynomial.is_none() {
        let store = KeygenStore::open(
            context.child("cluster_share"),
            &prefix,
            &config.signer,
            cluster_id,
        )
        .await;
        crate::keygen::actor::KeygenActor {
            context: context.child("keygen"),
            signer: config.signer.clone(),
            members: handle.genesis().member_keys(),
            handle: handle.clone(),
            penalties: penalties.clone(),
            cell: keys.clone(),
            tracker: tracker_for_keygen,
            store,
        }
        .start(dkg_net);
    }
    // Transit keys are generated among the genesis members: a node that joined later holds
    // none.
    if let Some(my_index) = my_index {
        crate::transit::actor::TransitActor {
            context: context.child("transit"),
            me: my_index as welkin_frost::Index,
            key: config.signer.clone(),
            members: handle
                .genesis()
                .nodes
                .iter()
                .map(|n| n.public_key.clone())
                .collect(),
            handle: handle.clone(),
            penalties: penalties.clone(),
            shares: transit_shares,
        }
        .start(sign_jobs, sign_grants_rx, transit_net);
    }
    if let Some(setup) = config.storage.filter(|_| my_index.is_some()) {
        let shards = crate::objects::Shards::start(
            context.child("storage"),
            handle.clone(),
            config.signer.clone(),
            setup,
            storage_net,
            penalties,
        );
        handle.set_shards(&shards);
    }
    handle
}

/// The storage partition of `epoch`'s consensus journal (epoch 0 keeps the name it had before
/// epochs existed).
fn simplex_partition(prefix: &str, epoch: u64) -> String {
    if epoch == 0 {
        format!("{prefix}-simplex")
    } else {
        format!("{prefix}-simplex-{epoch}")
    }
}

fn config_pairs<S, R>(channels: Channels<S, R>) -> Vec<(S, R)> {
    assert_eq!(
        channels.pairs.len(),
        channel::ALL.len(),
        "one pair per channel"
    );
    channels.pairs
}

/// Mailbox capacity used by the p2p layer for each channel.
pub(crate) const P2P_MAILBOX: NonZeroUsize = NZUsize!(4096);
