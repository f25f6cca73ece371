//! The node handle: how front ends (HTTP API, tests, benchmarks) talk to a running node.

pub use crate::admission::SubmitError;
use crate::{
    admission::{Admission, Admitted},
    application::now_ms,
    checkpoints::WitnessedCheckpoint,
    engine::{Finalization, Marshal},
    executor::{Query, Shared, Status},
    gossip::Gossip,
    mempool::Mempool,
};
use commonware_consensus::types::Height;
use commonware_runtime::Clock;
use futures::{
    SinkExt,
    channel::{mpsc, oneshot},
};
use welkin_types::{
    Block, CertifiedCheckpoint, Digest, Genesis, PublicKey, Receipt, SignedTransaction, TxId,
};

/// Where a submitted transaction stands.
#[derive(Debug)]
pub enum Submitted {
    /// Newly accepted, or already waiting in the mempool.
    Pending,
    /// Already committed: here is the receipt.
    Committed(Receipt),
}

/// A cloneable handle to a running node.
pub struct NodeHandle<E> {
    clock: std::sync::Arc<E>,
    genesis: Genesis,
    cluster_id: Digest,
    me: PublicKey,
    mempool: Mempool,
    gossip: Gossip,
    queries: mpsc::Sender<Query>,
    marshal: Marshal,
    shared: Shared,
    cosigner: std::sync::Arc<welkin_note::CosignatureSigner>,
    witness: std::sync::Arc<welkin_keri::Signer>,
    cosigners: std::sync::Arc<Vec<welkin_note::CosignatureVerifier>>,
    admission: Admission,
}

impl<E> Clone for NodeHandle<E> {
    fn clone(&self) -> Self {
        Self {
            clock: self.clock.clone(),
            genesis: self.genesis.clone(),
            cluster_id: self.cluster_id,
            me: self.me.clone(),
            mempool: self.mempool.clone(),
            gossip: self.gossip.clone(),
            queries: self.queries.clone(),
            marshal: self.marshal.clone(),
            shared: self.shared.clone(),
            cosigner: self.cosigner.clone(),
            witness: self.witness.clone(),
            cosigners: self.cosigners.clone(),
            admission: self.admission.clone(),
        }
    }
}

impl<E: Clock> NodeHandle<E> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        clock: E,
        genesis: Genesis,
        me: PublicKey,
        mempool: Mempool,
        gossip: Gossip,
        queries: mpsc::Sender<Query>,
        marshal: Marshal,
        shared: Shared,
        cosigner: std::sync::Arc<welkin_note::CosignatureSigner>,
        witness: std::sync::Arc<welkin_keri::Signer>,
    ) -> Self {
        let cluster_id = genesis.cluster_id();
        let cosigners = std::sync::Arc::new(welkin_types::note::cosigner_verifiers(&genesis));
        let admission = Admission::new(
            cluster_id,
            genesis.chain.clone(),
            mempool.clone(),
            queries.clone(),
        );
        Self {
            clock: std::sync::Arc::new(clock),
            genesis,
            cluster_id,
            me,
            mempool,
            gossip,
            queries,
            marshal,
            shared,
            cosigner,
            witness,
            cosigners,
            admission,
        }
    }

    /// This node's KERI identifier (non-transferable, from its identity key).
    pub fn witness_prefix(&self) -> String {
        welkin_keri::Prefix::Basic(self.witness.verkey()).qb64()
    }

    /// This node's KERI witness receipt (`rct` with its signature couple) of an accepted
    /// event.
    pub fn witness_receipt(&self, event: &welkin_keri::Event) -> welkin_keri::Message {
        welkin_keri::receipt(event, &self.witness)
    }

    /// The cluster genesis.
    pub fn genesis(&self) -> &Genesis {
        &self.genesis
    }

    /// The cluster id.
    pub fn cluster_id(&self) -> Digest {
        self.cluster_id
    }

    /// This node's identity.
    pub fn public_key(&self) -> &PublicKey {
        &self.me
    }

    /// The executor's latest status.
    pub fn status(&self) -> Status {
        self.shared.status()
    }

    /// Transactions waiting in the mempool.
    pub fn mempool_len(&self) -> usize {
        self.mempool.len()
    }

    async fn ask<T>(&self, build: impl FnOnce(oneshot::Sender<T>) -> Query) -> Option<T> {
        let (reply, answer) = oneshot::channel();
        self.queries.clone().send(build(reply)).await.ok()?;
        answer.await.ok()
    }

    /// The receipt of a committed transaction.
    pub async fn receipt(&self, id: TxId) -> Option<Receipt> {
        self.ask(|r| Query::Receipt(id, r)).await.flatten()
    }

    /// The certified checkpoint at `height`, if the cluster has signed it.
    pub async fn checkpoint(&self, height: u64) -> Option<CertifiedCheckpoint> {
        self.witnessed_checkpoint(height)
            .await
            .map(|witnessed| witnessed.certified)
    }

    /// The certified checkpoint at `height` with the node cosignatures gathered for it.
    pub async fn witnessed_checkpoint(&self, height: u64) -> Option<WitnessedCheckpoint> {
        self.ask(|r| Query::Checkpoint(height, r)).await.flatten()
    }

    /// The height whose checkpoint first has a log of `size` entries (sizes that no block
    /// ended at have none).
    pub async fn log_height(&self, size: u64) -> Option<u64> {
        self.ask(|r| Query::LogHeight(size, r)).await.flatten()
    }

    /// The hashes of C2SP tile (`level`, `index`) of `width` hashes.
    pub async fn tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<[u8; 32]>, String> {
        self.ask(|reply| Query::Tile {
            level,
            index,
            width,
            reply,
        })
        .await
        .unwrap_or_else(|| Err("node is shutting down".into()))
    }

    /// A raw state value.
    pub async fn value(&self, key: Digest) -> Option<Vec<u8>> {
        self.ask(|r| Query::Value(key, r)).await.flatten()
    }

    /// Many raw state values in one round trip (absent keys give `None`; all `None` if the
    /// node is shutting down).
    pub async fn values(&self, keys: Vec<Digest>) -> Vec<Option<Vec<u8>>> {
        let count = keys.len();
        self.ask(|r| Query::Values(keys, r))
            .await
            .unwrap_or_else(|| vec![None; count])
    }

    /// An inclusion proof for leaf `index` in the log tree of `size` entries.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, String> {
        self.ask(|reply| Query::Inclusion { index, size, reply })
            .await
            .unwrap_or_else(|| Err("node is shutting down".into()))
    }

    /// A consistency proof between log sizes `old` and `new`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Digest>, String> {
        self.ask(|reply| Query::Consistency { old, new, reply })
            .await
            .unwrap_or_else(|| Err("node is shutting down".into()))
    }

    /// Log entries `start..end`.
    pub async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, String> {
        self.ask(|reply| Query::Entries { start, end, reply })
            .await
            .unwrap_or_else(|| Err("node is shutting down".into()))
    }

    /// The certified checkpoint at `height` as a C2SP signed note: the cluster's signature,
    /// then the tlog cosignature of every node gathered for it, including this node's (made
    /// now if it has none stored).
    pub async fn checkpoint_note(&self, height: u64) -> Option<String> {
        let witnessed = self.witnessed_checkpoint(height).await?;
        let mut note = welkin_types::note::to_note(
            &witnessed.certified,
            &self.cluster_id,
            self.genesis.cluster_key(),
        );
        for (index, cosignature) in &witnessed.cosignatures {
            if let Some(verifier) = self.cosigners.get(*index as usize) {
                note.add_signature(welkin_types::note::cosignature_line(verifier, cosignature));
            }
        }
        if !note
            .signatures
            .iter()
            .any(|line| line.name == self.cosigner.name())
        {
            let now = now_ms(self.clock.as_ref()) / 1000;
            self.cosigner.cosign_note(&mut note, now).ok()?;
        }
        note.format().ok()
    }

    /// A finalized block and its finalization certificate (none for genesis).
    pub async fn block(&self, height: u64) -> Option<(Block, Option<Finalization>)> {
        if height == 0 {
            return Some((self.genesis.block(), None));
        }
        let block = self.marshal.get_block(Height::new(height)).await?;
        let finalization = self.marshal.get_finalization(Height::new(height)).await;
        Some((block.inner().clone(), finalization))
    }

    /// Whether the transaction is waiting in the mempool.
    pub fn is_pending(&self, id: &TxId) -> bool {
        self.mempool.contains(id)
    }

    /// Registers interest in a transaction's receipt. Register before submitting, then check
    /// [`Self::receipt`] once, so that a commit between the two is not missed.
    pub fn subscribe(&self, id: TxId) -> oneshot::Receiver<Receipt> {
        let (sender, receiver) = oneshot::channel();
        self.shared
            .waiters
            .lock()
            .expect("waiters lock")
            .entry(id)
            .or_default()
            .push(sender);
        receiver
    }

    /// Checks a transaction and admits it to the mempool (and gossip).
    pub async fn submit(&self, tx: SignedTransaction) -> Result<Submitted, SubmitError> {
        self.submit_many(vec![tx])
            .await
            .pop()
            .expect("one result per transaction")
    }

    /// Checks many transactions and admits the good ones; one result per transaction, in
    /// order. Signatures are batch-verified and state is consulted in one round trip.
    pub async fn submit_many(
        &self,
        txs: Vec<SignedTransaction>,
    ) -> Vec<Result<Submitted, SubmitError>> {
        let now = now_ms(self.clock.as_ref());
        let verdicts = self.admission.admit(&txs, now).await;
        txs.into_iter()
            .zip(verdicts)
            .map(|(tx, verdict)| match verdict? {
                Admitted::New => {
                    self.gossip.push(tx);
                    Ok(Submitted::Pending)
                }
                Admitted::Known => Ok(Submitted::Pending),
                Admitted::Committed(receipt) => Ok(Submitted::Committed(receipt)),
            })
            .collect()
    }
}
