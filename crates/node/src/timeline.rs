//! Where a transaction's time goes, as Prometheus histograms on `GET /metrics`.
//!
//! A transaction is timed at the node whose API received it, from the moment the request
//! arrived: `tx_stage_seconds{stage=...}` records, for each stage it reaches, the time since
//! that arrival. The stages, in pipeline order:
//!
//! | stage | when |
//! |---|---|
//! | `admitted` | signature, limits and replay checks passed; in the mempool |
//! | `gossiped` | sent to the peers |
//! | `proposed` | this node saw it in a proposal (its own, or a peer's it verified) |
//! | `notarized` | that proposal's notarization certificate formed here |
//! | `finalized` | its finalization certificate formed here |
//! | `applied` | the block was executed and committed to the state and the log |
//! | `acknowledged` | the API answered the waiting client |
//! | `certified` | the checkpoint of its height was certified by the cluster key |
//!
//! `block_stage_seconds{stage=...}` times the per-block work: each block's time from this node
//! first seeing it to its notarization and finalization (consensus alone), and the
//! executor's steps (state reads and the state machine, log append, state commit, checkpoint
//! signing) and batch signature checks.
//!
//! Every map here is bounded: a transaction's arrival is forgotten once it is certified or
//! when [`MAX_TRACKED_TXS`] newer ones arrived, a block once [`MAX_TRACKED_BLOCKS`] newer ones
//! were seen.

use commonware_runtime::{
    Clock, Metrics,
    telemetry::metrics::{Registered, raw},
};
use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};
use welkin_types::{Digest, SignedTransaction, TxId};

/// Most transaction arrivals remembered at once.
pub(crate) const MAX_TRACKED_TXS: usize = 65_536;
/// Most blocks remembered at once (by digest, and by height until certified).
pub(crate) const MAX_TRACKED_BLOCKS: usize = 1_024;

/// Histogram buckets, in seconds: fine below 20 ms, where the latency goals are.
const BUCKETS: [f64; 24] = [
    0.000_25, 0.000_5, 0.001, 0.002, 0.003, 0.004, 0.005, 0.006, 0.008, 0.010, 0.012, 0.015, 0.020,
    0.025, 0.030, 0.040, 0.050, 0.075, 0.100, 0.150, 0.250, 0.500, 1.0, 5.0,
];

/// A stage of a transaction's way from a client to a certified checkpoint.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum TxStage {
    /// Admitted into the mempool.
    Admitted,
    /// Sent to the peers.
    Gossiped,
    /// Seen in a proposal.
    Proposed,
    /// Its block's notarization formed.
    Notarized,
    /// Its block's finalization formed.
    Finalized,
    /// Its block was applied.
    Applied,
    /// The waiting client was answered.
    Acknowledged,
    /// Its height's checkpoint was certified.
    Certified,
}

impl TxStage {
    fn label(self) -> &'static str {
        match self {
            TxStage::Admitted => "admitted",
            TxStage::Gossiped => "gossiped",
            TxStage::Proposed => "proposed",
            TxStage::Notarized => "notarized",
            TxStage::Finalized => "finalized",
            TxStage::Applied => "applied",
            TxStage::Acknowledged => "acknowledged",
            TxStage::Certified => "certified",
        }
    }

    /// Every stage, in pipeline order (registered in this order, so `/metrics` lists them so).
    const ALL: [TxStage; 8] = [
        TxStage::Admitted,
        TxStage::Gossiped,
        TxStage::Proposed,
        TxStage::Notarized,
        TxStage::Finalized,
        TxStage::Applied,
        TxStage::Acknowledged,
        TxStage::Certified,
    ];
}

/// A step of per-block work, timed on its own.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BlockStage {
    /// From first seeing a block to its notarization.
    Notarized,
    /// From first seeing a block to its finalization.
    Finalized,
    /// From a block's finalization to its delivery to the executor (marshal's storage).
    Delivered,
    /// State reads and the state machine.
    Execute,
    /// Appending the block's entries to the audit log (with its sync).
    LogAppend,
    /// Committing the block's writes to the state (with its sync).
    StateCommit,
    /// Signing the height's checkpoint.
    CheckpointSign,
    /// A batch of signature checks (at admission, block verification or execution).
    Signatures,
}

impl BlockStage {
    fn label(self) -> &'static str {
        match self {
            BlockStage::Notarized => "notarized",
            BlockStage::Finalized => "finalized",
            BlockStage::Delivered => "delivered",
            BlockStage::Execute => "execute",
            BlockStage::LogAppend => "log_append",
            BlockStage::StateCommit => "state_commit",
            BlockStage::CheckpointSign => "checkpoint_sign",
            BlockStage::Signatures => "signatures",
        }
    }

    const ALL: [BlockStage; 8] = [
        BlockStage::Notarized,
        BlockStage::Finalized,
        BlockStage::Delivered,
        BlockStage::Execute,
        BlockStage::LogAppend,
        BlockStage::StateCommit,
        BlockStage::CheckpointSign,
        BlockStage::Signatures,
    ];
}

type Label = [(&'static str, &'static str); 1];
type Histograms = Registered<raw::Family<Label, raw::Histogram, fn() -> raw::Histogram>>;

fn histogram() -> raw::Histogram {
    raw::Histogram::new(BUCKETS)
}

struct SeenBlock {
    seen: SystemTime,
    finalized: Option<SystemTime>,
    txs: Vec<TxId>,
}

#[derive(Default)]
struct Inner {
    arrivals: HashMap<TxId, SystemTime>,
    arrival_order: VecDeque<TxId>,
    blocks: HashMap<Digest, SeenBlock>,
    block_order: VecDeque<Digest>,
    heights: BTreeMap<u64, Vec<TxId>>,
}

impl Inner {
    fn forget_oldest_arrivals(&mut self) {
        while self.arrivals.len() >= MAX_TRACKED_TXS {
            let Some(oldest) = self.arrival_order.pop_front() else {
                break;
            };
            self.arrivals.remove(&oldest);
        }
        // Certified arrivals leave stale ids in the order queue; drop them when it grows.
        if self.arrival_order.len() > 2 * MAX_TRACKED_TXS {
            let Inner {
                arrivals,
                arrival_order,
                ..
            } = self;
            arrival_order.retain(|id| arrivals.contains_key(id));
        }
    }
}

/// A cloneable recorder of stage times.
#[derive(Clone)]
pub(crate) struct Timeline {
    inner: Arc<Mutex<Inner>>,
    txs: Arc<Histograms>,
    blocks: Arc<Histograms>,
}

impl Timeline {
    /// A recorder whose histograms are registered in `context`.
    pub(crate) fn new(context: &impl Metrics) -> Self {
        let family = || raw::Family::new_with_constructor(histogram as fn() -> raw::Histogram);
        let txs = context.register(
            "tx_stage_seconds",
            "Time from a transaction's arrival at this node's API to each stage it reached",
            family(),
        );
        let blocks = context.register(
            "block_stage_seconds",
            "Time of each step of per-block work on this node",
            family(),
        );
        // Create every series up front, in pipeline order, so a scrape lists them all.
        for stage in TxStage::ALL {
            let _ = txs.get_or_create(&[("stage", stage.label())]);
        }
        for stage in BlockStage::ALL {
            let _ = blocks.get_or_create(&[("stage", stage.label())]);
        }
        Self {
            inner: Arc::default(),
            txs: Arc::new(txs),
            blocks: Arc::new(blocks),
        }
    }

    /// A recorder registered nowhere (for unit tests of its users).
    #[cfg(test)]
    pub(crate) fn detached() -> Self {
        let family = || raw::Family::new_with_constructor(histogram as fn() -> raw::Histogram);
        Self {
            inner: Arc::default(),
            txs: Arc::new(Registered::detached(family())),
            blocks: Arc::new(Registered::detached(family())),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner
            .lock()
            .expect("timeline lock is never poisoned: no panics while held")
    }

    fn observe_tx(&self, stage: TxStage, elapsed: Duration) {
        self.txs
            .get_or_create(&[("stage", stage.label())])
            .observe(elapsed.as_secs_f64());
    }

    /// Records a per-block step that took `elapsed`.
    pub(crate) fn block_step(&self, stage: BlockStage, elapsed: Duration) {
        self.blocks
            .get_or_create(&[("stage", stage.label())])
            .observe(elapsed.as_secs_f64());
    }

    /// Transactions this node's API received at `arrived` and admitted just now.
    pub(crate) fn admitted<'a>(
        &self,
        ids: impl IntoIterator<Item = &'a TxId>,
        arrived: SystemTime,
        now: SystemTime,
    ) {
        let elapsed = since(arrived, now);
        let mut inner = self.lock();
        for id in ids {
            inner.forget_oldest_arrivals();
            if inner.arrivals.insert(*id, arrived).is_none() {
                inner.arrival_order.push_back(*id);
                self.observe_tx(TxStage::Admitted, elapsed);
            }
        }
    }

    /// `stage` reached at `now` by those of `ids` this node's API received.
    pub(crate) fn reached<'a>(
        &self,
        stage: TxStage,
        ids: impl IntoIterator<Item = &'a TxId>,
        now: SystemTime,
    ) {
        let inner = self.lock();
        if inner.arrivals.is_empty() {
            return;
        }
        for id in ids {
            if let Some(arrived) = inner.arrivals.get(id) {
                self.observe_tx(stage, since(*arrived, now));
            }
        }
    }

    /// A proposal seen at `now` (built here or verified here).
    pub(crate) fn proposed(&self, digest: Digest, txs: &[SignedTransaction], now: SystemTime) {
        let ids: Vec<TxId> = txs.iter().map(SignedTransaction::id).collect();
        self.reached(TxStage::Proposed, &ids, now);
        let mut inner = self.lock();
        if inner.blocks.contains_key(&digest) {
            return;
        }
        while inner.blocks.len() >= MAX_TRACKED_BLOCKS {
            let Some(oldest) = inner.block_order.pop_front() else {
                break;
            };
            inner.blocks.remove(&oldest);
        }
        inner.block_order.push_back(digest);
        inner.blocks.insert(
            digest,
            SeenBlock {
                seen: now,
                finalized: None,
                txs: ids,
            },
        );
    }

    /// The block `digest` notarized (`finalized` false) or finalized at `now`.
    pub(crate) fn certificate(&self, digest: &Digest, finalized: bool, now: SystemTime) {
        let (tx_stage, block_stage) = if finalized {
            (TxStage::Finalized, BlockStage::Finalized)
        } else {
            (TxStage::Notarized, BlockStage::Notarized)
        };
        let (seen, txs) = {
            let mut inner = self.lock();
            let Some(block) = inner.blocks.get_mut(digest) else {
                return;
            };
            if finalized {
                block.finalized = Some(now);
            }
            (block.seen, block.txs.clone())
        };
        self.block_step(block_stage, since(seen, now));
        self.reached(tx_stage, &txs, now);
    }

    /// The finalized block `digest` handed to the executor at `now`.
    pub(crate) fn delivered(&self, digest: &Digest, now: SystemTime) {
        let finalized = self.lock().blocks.get(digest).and_then(|b| b.finalized);
        if let Some(finalized) = finalized {
            self.block_step(BlockStage::Delivered, since(finalized, now));
        }
    }

    /// The block at `height` with `ids` applied at `now`.
    pub(crate) fn applied(&self, height: u64, ids: Vec<TxId>, now: SystemTime) {
        self.reached(TxStage::Applied, &ids, now);
        let mut inner = self.lock();
        if inner.arrivals.is_empty() {
            return;
        }
        let ours: Vec<TxId> = ids
            .into_iter()
            .filter(|id| inner.arrivals.contains_key(id))
            .collect();
        if ours.is_empty() {
            return;
        }
        while inner.heights.len() >= MAX_TRACKED_BLOCKS {
            inner.heights.pop_first();
        }
        inner.heights.insert(height, ours);
    }

    /// The checkpoint at `height` certified at `now`: the last stage, so its transactions'
    /// arrivals are forgotten.
    pub(crate) fn certified(&self, height: u64, now: SystemTime) {
        let Some(ids) = self.lock().heights.remove(&height) else {
            return;
        };
        self.reached(TxStage::Certified, &ids, now);
        let mut inner = self.lock();
        for id in &ids {
            inner.arrivals.remove(id);
        }
    }
}

/// `now - earlier`, zero if the clock stepped back.
pub(crate) fn since(earlier: SystemTime, now: SystemTime) -> Duration {
    now.duration_since(earlier).unwrap_or_default()
}

/// The runtime clock's time.
pub(crate) fn now(clock: &impl Clock) -> SystemTime {
    clock.current()
}

/// Records notarizations and finalizations reported by consensus.
pub(crate) struct CertificateReporter<E: Clock> {
    pub(crate) clock: Arc<E>,
    pub(crate) timeline: Timeline,
}

impl<E: Clock> Clone for CertificateReporter<E> {
    fn clone(&self) -> Self {
        Self {
            clock: self.clock.clone(),
            timeline: self.timeline.clone(),
        }
    }
}

impl<E: Clock> commonware_consensus::Reporter for CertificateReporter<E> {
    type Activity =
        commonware_consensus::simplex::types::Activity<crate::consensus::Scheme, Digest>;

    fn report(&mut self, activity: Self::Activity) -> commonware_actor::Feedback {
        use commonware_consensus::simplex::types::Activity;
        match &activity {
            Activity::Notarization(n) => {
                self.timeline
                    .certificate(&n.proposal.payload, false, self.clock.current())
            }
            Activity::Finalization(f) => {
                self.timeline
                    .certificate(&f.proposal.payload, true, self.clock.current())
            }
            _ => {}
        }
        commonware_actor::Feedback::Ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_runtime::{Runner as _, deterministic};
    use welkin_types::hash_parts;

    fn count(metrics: &str, name: &str, stage: &str) -> u64 {
        let prefix = format!("{name}_count{{stage=\"{stage}\"}} ");
        metrics
            .lines()
            .find_map(|line| {
                line.split_once(&prefix)
                    .and_then(|(_, v)| v.trim().parse().ok())
            })
            .unwrap_or_else(|| panic!("no {prefix} in {metrics}"))
    }

    #[test]
    fn times_only_this_nodes_arrivals_through_every_stage_and_forgets_them() {
        deterministic::Runner::default().start(|context| async move {
            let timeline = Timeline::new(&context);
            let ours = hash_parts(&[b"ours"]);
            let theirs = hash_parts(&[b"theirs"]);
            let t0 = context.current();
            timeline.admitted([&ours], t0, t0);
            let block = hash_parts(&[b"block"]);
            {
                let mut inner = timeline.lock();
                inner.blocks.insert(
                    block,
                    SeenBlock {
                        seen: t0,
                        finalized: None,
                        txs: vec![ours, theirs],
                    },
                );
            }
            timeline.reached(TxStage::Gossiped, [&ours, &theirs], t0);
            timeline.certificate(&block, false, t0);
            timeline.certificate(&block, true, t0);
            timeline.applied(7, vec![ours, theirs], t0);
            timeline.certified(7, t0);
            let metrics = context.encode();
            for stage in [
                "admitted",
                "gossiped",
                "notarized",
                "finalized",
                "applied",
                "certified",
            ] {
                assert_eq!(count(&metrics, "tx_stage_seconds", stage), 1, "{stage}");
            }
            assert_eq!(count(&metrics, "tx_stage_seconds", "proposed"), 0);
            assert_eq!(count(&metrics, "block_stage_seconds", "finalized"), 1);
            assert!(
                timeline.lock().arrivals.is_empty(),
                "certified arrivals are forgotten"
            );
            assert!(timeline.lock().heights.is_empty());
        });
    }

    #[test]
    fn every_map_stays_bounded() {
        deterministic::Runner::default().start(|context| async move {
            let timeline = Timeline::new(&context);
            let t0 = context.current();
            let ids: Vec<TxId> = (0..MAX_TRACKED_TXS as u64 + 10)
                .map(|i| hash_parts(&[&i.to_be_bytes()]))
                .collect();
            timeline.admitted(&ids, t0, t0);
            assert!(timeline.lock().arrivals.len() <= MAX_TRACKED_TXS);
            for height in 0..MAX_TRACKED_BLOCKS as u64 + 10 {
                let digest = hash_parts(&[b"b", &height.to_be_bytes()]);
                timeline.proposed(digest, &[], t0);
                timeline.applied(height, vec![ids[ids.len() - 1]], t0);
            }
            let inner = timeline.lock();
            assert!(inner.blocks.len() <= MAX_TRACKED_BLOCKS);
            assert!(inner.heights.len() <= MAX_TRACKED_BLOCKS);
        });
    }
}
