//! Block building and checking: the [`Application`] that marshal wraps for consensus.
//!
//! A proposer packs verified mempool transactions that no unfinalized ancestor carries, and
//! stamps the block with its clock (never earlier than one millisecond after the parent).
//! A verifier accepts a block only if its timestamp is later than the parent's and within
//! `max_clock_skew_ms` of its own clock, its transactions are distinct and correctly signed,
//! and it respects the block limits. Block time is therefore monotone and stays close to the
//! clocks of honest nodes.

use crate::{
    consensus::{ConsensusContext, Scheme},
    mempool::Mempool,
    timeline::{BlockStage, Timeline},
};
use commonware_codec::EncodeSize;
use commonware_consensus::{Application, marshal::ancestry::Ancestry};
use commonware_cryptography::{Digested, Digestible};
use commonware_runtime::Clock;
use futures::StreamExt;
use std::{
    collections::HashSet,
    sync::{
        Arc,
        atomic::{AtomicU64, Ordering},
    },
    time::{Duration, UNIX_EPOCH},
};
use tracing::{debug, warn};
use welkin_types::{
    Block, ChainParams, Digest, SignedTransaction,
    limits::{MAX_BLOCK_TX_BYTES, MAX_BLOCK_TXS},
};

/// How long a proposer with an empty mempool waits, by default, for transactions before
/// proposing an empty block (it proposes at once when one arrives).
pub(crate) const IDLE_WAIT: Duration = Duration::from_millis(250);
/// The longest idle wait a node may configure (well inside the leader timeout).
pub(crate) const MAX_IDLE_WAIT: Duration = Duration::from_millis(500);
/// A parent with at least this many transactions means the cluster is busy, and the
/// proposer applies its minimum block interval.
pub(crate) const BUSY_BLOCK_TXS: usize = 128;
/// The largest minimum block interval a node may configure (well inside the leader timeout).
pub(crate) const MAX_MIN_BLOCK_INTERVAL: Duration = Duration::from_millis(500);

/// Milliseconds since the Unix epoch on the runtime's clock.
pub fn now_ms(clock: &impl Clock) -> u64 {
    clock
        .current()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Signature verdicts for `txs`: a transaction held in the mempool was verified on entry;
/// any other is checked now (and the check timed, if there was one).
pub(crate) fn signature_verdicts(
    mempool: &Mempool,
    cluster_id: &Digest,
    txs: &[SignedTransaction],
    timeline: &Timeline,
) -> Vec<bool> {
    let mut verdicts: Vec<bool> = txs.iter().map(|tx| mempool.holds_verified(tx)).collect();
    let unknown: Vec<usize> = (0..txs.len()).filter(|&i| !verdicts[i]).collect();
    if unknown.is_empty() {
        return verdicts;
    }
    let refs: Vec<&SignedTransaction> = unknown.iter().map(|&i| &txs[i]).collect();
    let started = std::time::Instant::now();
    let checked =
        SignedTransaction::verify_many(&refs, cluster_id, &mut commonware_utils::sys_rng());
    timeline.block_step(BlockStage::Signatures, started.elapsed());
    for (index, ok) in unknown.into_iter().zip(checked) {
        verdicts[index] = ok;
    }
    verdicts
}

/// How a proposer paces and sizes its blocks.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Pacing {
    /// Most transactions in a block.
    pub max_block_txs: usize,
    /// Least block time between a busy parent and its child (capped at
    /// [`MAX_MIN_BLOCK_INTERVAL`]).
    pub min_block_interval: Duration,
    /// How long to wait for a transaction before proposing an empty block (capped at
    /// [`MAX_IDLE_WAIT`]; zero proposes empty blocks back to back, the consensus floor).
    pub idle_wait: Duration,
}

/// Builds and verifies blocks.
#[derive(Clone)]
pub(crate) struct App {
    mempool: Mempool,
    cluster_id: Digest,
    params: ChainParams,
    max_block_txs: usize,
    min_block_interval: Duration,
    idle_wait: Duration,
    applied_height: Arc<AtomicU64>,
    timeline: Timeline,
}

impl App {
    /// Creates the application. `applied_height` is the executor's last applied height; blocks
    /// at or below it are final, so the proposer stops looking for in-flight transactions there.
    pub(crate) fn new(
        mempool: Mempool,
        cluster_id: Digest,
        params: ChainParams,
        pacing: Pacing,
        applied_height: Arc<AtomicU64>,
        timeline: Timeline,
    ) -> Self {
        Self {
            mempool,
            cluster_id,
            params,
            max_block_txs: pacing.max_block_txs.min(MAX_BLOCK_TXS),
            min_block_interval: pacing.min_block_interval.min(MAX_MIN_BLOCK_INTERVAL),
            idle_wait: pacing.idle_wait.min(MAX_IDLE_WAIT),
            applied_height,
            timeline,
        }
    }

    /// Ids carried by unfinalized ancestors, read from the ancestry stream (newest first).
    async fn in_flight(&self, ancestry: &mut (impl Ancestry<Block> + 'static)) -> HashSet<Digest> {
        let floor = self.applied_height.load(Ordering::Acquire);
        let mut ids = HashSet::new();
        while let Some(block) = ancestry.next().await {
            let block = block.inner();
            if block.height <= floor {
                break;
            }
            ids.extend(block.txs.iter().map(SignedTransaction::id));
        }
        ids
    }

    /// Checks a candidate block against its parent and this node's clock.
    fn check(&self, block: &Block, parent: &Block, now: u64) -> Result<(), String> {
        if block.timestamp_ms <= parent.timestamp_ms {
            return Err(format!(
                "timestamp {} not after parent's {}",
                block.timestamp_ms, parent.timestamp_ms
            ));
        }
        let skew = self.params.max_clock_skew_ms;
        if block.timestamp_ms > now.saturating_add(skew)
            || block.timestamp_ms < now.saturating_sub(skew)
        {
            return Err(format!(
                "timestamp {} outside local clock {now} ± {skew} ms",
                block.timestamp_ms
            ));
        }
        // Values travel whole until the block is archived: a proposal without one would
        // commit a write that no node can ever read.
        if let Some(index) = block.txs.iter().position(|tx| !tx.is_complete()) {
            return Err(format!("transaction {index} lacks its value"));
        }
        let mut seen = HashSet::with_capacity(block.txs.len());
        if !block.txs.iter().all(|tx| seen.insert(tx.id())) {
            return Err("duplicate transaction in block".into());
        }
        let verdicts =
            signature_verdicts(&self.mempool, &self.cluster_id, &block.txs, &self.timeline);
        if let Some(bad) = verdicts.iter().position(|ok| !ok) {
            return Err(format!("transaction {bad} has a bad signature"));
        }
        Ok(())
    }
}

impl<E: Clock + Send + Sync + 'static> Application<E> for App {
    type SigningScheme = Scheme;
    type Context = ConsensusContext;
    type Block = Block;
    type Input = ();

    async fn propose(
        &mut self,
        (clock, _context): (E, ConsensusContext),
        mut ancestry: impl Ancestry<Block>,
        _input: (),
    ) -> Option<Digested<Block>> {
        let parent = ancestry.next().await?;
        let parent = parent.inner();
        let mut exclude = HashSet::new();
        if parent.height > self.applied_height.load(Ordering::Acquire) {
            exclude.extend(parent.txs.iter().map(SignedTransaction::id));
            exclude.extend(self.in_flight(&mut ancestry).await);
        }
        // Under load (a busy parent), space blocks at least `min_block_interval` apart by
        // block time: blocks get bigger and the per-block cost (votes, checkpoint, fsync) is
        // spread over more transactions. A quiet cluster proposes at once, for low latency.
        if parent.txs.len() >= BUSY_BLOCK_TXS {
            let earliest = parent.timestamp_ms + self.min_block_interval.as_millis() as u64;
            let now = now_ms(&clock);
            if earliest > now {
                clock.sleep(Duration::from_millis(earliest - now)).await;
            }
        }
        let mut txs = self.mempool.select(
            self.max_block_txs,
            MAX_BLOCK_TX_BYTES,
            &exclude,
            now_ms(&clock),
        );
        // An idle cluster would otherwise finalize empty blocks back to back; wait for work,
        // well inside the leader timeout, and propose as soon as some arrives.
        let idle_until = clock.current() + self.idle_wait;
        while txs.is_empty() {
            commonware_macros::select! {
                _ = self.mempool.arrival() => {},
                _ = clock.sleep_until(idle_until) => break,
            }
            txs = self.mempool.select(
                self.max_block_txs,
                MAX_BLOCK_TX_BYTES,
                &exclude,
                now_ms(&clock),
            );
        }
        let timestamp = now_ms(&clock).max(parent.timestamp_ms + 1);
        let block = Block::new(parent.digest(), parent.height + 1, timestamp, txs);
        debug!(
            height = block.height,
            txs = block.txs.len(),
            bytes = block.encode_size(),
            "proposing"
        );
        let digest = block.digest();
        self.timeline
            .proposed(digest, &block.txs, crate::timeline::now(&clock));
        Some(Digested::precomputed(block, digest))
    }

    async fn verify(
        &mut self,
        (clock, _context): (E, ConsensusContext),
        mut ancestry: impl Ancestry<Block>,
    ) -> bool {
        let Some(block) = ancestry.next().await else {
            return false;
        };
        let Some(parent) = ancestry.next().await else {
            return false;
        };
        let (block, parent) = (block.inner(), parent.inner());
        match self.check(block, parent, now_ms(&clock)) {
            Ok(()) => {
                self.timeline
                    .proposed(block.digest(), &block.txs, crate::timeline::now(&clock));
                true
            }
            Err(reason) => {
                warn!(height = block.height, %reason, "rejecting proposed block");
                false
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mempool::MempoolConfig;
    use commonware_cryptography::Signer as _;
    use welkin_types::{Payload, PrivateKey, Sender, Transaction, hash_parts};

    const NOW: u64 = 1_700_000_000_000;

    fn app() -> App {
        App::new(
            Mempool::new(MempoolConfig::default()),
            hash_parts(&[b"cluster"]),
            ChainParams::default(),
            Pacing {
                max_block_txs: 64,
                min_block_interval: Duration::ZERO,
                idle_wait: IDLE_WAIT,
            },
            Arc::new(AtomicU64::new(0)),
            Timeline::detached(),
        )
    }

    fn tx(nonce: u64, cluster: &[u8]) -> SignedTransaction {
        let key = PrivateKey::from_seed(7);
        Transaction {
            sender: Sender::Key(key.public_key()),
            nonce,
            expiry_ms: NOW + 60_000,
            payload: Payload::Memo(vec![1, 2, 3]),
        }
        .sign(&key, &hash_parts(&[cluster]))
    }

    fn parent() -> Block {
        Block::new(hash_parts(&[b"grandparent"]), 4, NOW - 100, Vec::new())
    }

    fn child(timestamp_ms: u64, txs: Vec<SignedTransaction>) -> Block {
        let parent = parent();
        Block::new(parent.digest(), parent.height + 1, timestamp_ms, txs)
    }

    #[test]
    fn accepts_a_well_formed_block() {
        let block = child(NOW, vec![tx(1, b"cluster"), tx(2, b"cluster")]);
        assert_eq!(app().check(&block, &parent(), NOW), Ok(()));
    }

    #[test]
    fn refuses_a_timestamp_not_after_the_parent() {
        let parent = parent();
        let block = child(parent.timestamp_ms, Vec::new());
        let refusal = app().check(&block, &parent, NOW).expect_err("refused");
        assert!(refusal.contains("not after parent"), "{refusal}");
    }

    #[test]
    fn refuses_a_timestamp_beyond_the_clock_skew_either_way() {
        let skew = ChainParams::default().max_clock_skew_ms;
        let app = app();
        assert_eq!(
            app.check(&child(NOW + skew, Vec::new()), &parent(), NOW),
            Ok(())
        );
        let ahead = app
            .check(&child(NOW + skew + 1, Vec::new()), &parent(), NOW)
            .expect_err("too far ahead");
        assert!(ahead.contains("outside local clock"), "{ahead}");
        // Behind: the parent is older still, so only the skew rule refuses it.
        let old_parent = Block::new(hash_parts(&[b"g"]), 4, NOW - 10 * skew, Vec::new());
        let behind = Block::new(old_parent.digest(), 5, NOW - skew - 1, Vec::new());
        let refusal = app
            .check(&behind, &old_parent, NOW)
            .expect_err("too far behind");
        assert!(refusal.contains("outside local clock"), "{refusal}");
    }

    #[test]
    fn refuses_duplicate_transactions() {
        let block = child(NOW, vec![tx(1, b"cluster"), tx(1, b"cluster")]);
        let refusal = app().check(&block, &parent(), NOW).expect_err("refused");
        assert!(refusal.contains("duplicate"), "{refusal}");
    }

    #[test]
    fn refuses_a_bad_signature_and_names_it() {
        // Signed for another cluster: the signature does not verify under this one.
        let block = child(NOW, vec![tx(1, b"cluster"), tx(2, b"another cluster")]);
        assert_eq!(
            app().check(&block, &parent(), NOW),
            Err("transaction 1 has a bad signature".to_string())
        );
    }
}
