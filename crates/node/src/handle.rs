//! The node handle: how front ends (HTTP API, tests, benchmarks) talk to a running node.

pub(crate) use crate::admission::SubmitError;
use crate::{
    admission::{Admission, Admitted},
    application::now_ms,
    checkpoints::{Tracker, WitnessedCheckpoint},
    consensus::{Finalization, Marshal},
    executor::{Shared, Status, witnessed},
    gossip::Gossip,
    log::to_digest,
    mempool::Mempool,
    store::{ProvenValue, Runtime, Stores},
    waiters::{Subscription, TooManyWaiters},
};
use commonware_consensus::types::Height;
use std::sync::{Arc, Mutex};
use welkin_state::keys;
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

/// A cloneable handle to a running node. Its reads go to the node's stores directly, on the
/// caller's threads, never through the executor.
pub struct NodeHandle<E: Runtime> {
    clock: std::sync::Arc<E>,
    keys: crate::keygen::KeyCell,
    genesis: Genesis,
    cluster_id: Digest,
    me: PublicKey,
    mempool: Mempool,
    gossip: Gossip,
    stores: Stores<E>,
    tracker: Arc<Mutex<Tracker>>,
    marshal: Marshal,
    shared: Shared,
    cosigner: std::sync::Arc<welkin_note::CosignatureSigner>,
    witness: std::sync::Arc<welkin_keri::Signer>,
    cosigners: std::sync::Arc<Vec<welkin_note::CosignatureVerifier>>,
    admission: Admission<E>,
    releases: crate::releases::Releases,
    penalties: crate::penalty::Penalties,
    transit: crate::transit::TransitHandle,
    time: crate::time::TimeHandle,
    /// The shard service, once started (nodes without storage have none). Weak: the
    /// service holds this handle, and its own tasks keep it alive.
    shards: Arc<Mutex<std::sync::Weak<crate::objects::Shards<E>>>>,
}

impl<E: Runtime> Clone for NodeHandle<E> {
    fn clone(&self) -> Self {
        Self {
            clock: self.clock.clone(),
            keys: self.keys.clone(),
            genesis: self.genesis.clone(),
            cluster_id: self.cluster_id,
            me: self.me.clone(),
            mempool: self.mempool.clone(),
            gossip: self.gossip.clone(),
            stores: self.stores.clone(),
            tracker: self.tracker.clone(),
            marshal: self.marshal.clone(),
            shared: self.shared.clone(),
            cosigner: self.cosigner.clone(),
            witness: self.witness.clone(),
            cosigners: self.cosigners.clone(),
            admission: self.admission.clone(),
            releases: self.releases.clone(),
            penalties: self.penalties.clone(),
            transit: self.transit.clone(),
            time: self.time.clone(),
            shards: self.shards.clone(),
        }
    }
}

impl<E: Runtime> NodeHandle<E> {
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn new(
        clock: E,
        keys: crate::keygen::KeyCell,
        genesis: Genesis,
        me: PublicKey,
        mempool: Mempool,
        gossip: Gossip,
        stores: Stores<E>,
        tracker: Arc<Mutex<Tracker>>,
        marshal: Marshal,
        shared: Shared,
        cosigner: std::sync::Arc<welkin_note::CosignatureSigner>,
        witness: std::sync::Arc<welkin_keri::Signer>,
        admission: Admission<E>,
        releases: crate::releases::Releases,
        penalties: crate::penalty::Penalties,
        transit: crate::transit::TransitHandle,
        time: crate::time::TimeHandle,
    ) -> Self {
        let cluster_id = genesis.cluster_id();
        let cosigners = std::sync::Arc::new(welkin_types::note::cosigner_verifiers(&genesis));
        Self {
            clock: std::sync::Arc::new(clock),
            keys,
            genesis,
            cluster_id,
            me,
            mempool,
            gossip,
            stores,
            tracker,
            marshal,
            shared,
            cosigner,
            witness,
            cosigners,
            admission,
            releases,
            penalties,
            transit,
            time,
            shards: Arc::new(Mutex::new(std::sync::Weak::new())),
        }
    }

    /// The cluster key as this node holds it; `None` while a dealerless cluster is still
    /// generating it.
    pub fn cluster_keys(&self) -> Option<Arc<crate::keygen::ClusterKeys>> {
        self.keys.get()
    }

    /// The node's shard service, if it runs one.
    pub fn shards(&self) -> Option<crate::objects::Shards<E>> {
        self.shards
            .lock()
            .expect("not poisoned")
            .upgrade()
            .map(|shards| (*shards).clone())
    }

    /// Records the shard service the engine started.
    pub(crate) fn set_shards(&self, shards: &Arc<crate::objects::Shards<E>>) {
        *self.shards.lock().expect("not poisoned") = Arc::downgrade(shards);
    }

    /// Blocks peers that send invalid data.
    pub(crate) fn penalties(&self) -> &crate::penalty::Penalties {
        &self.penalties
    }

    /// Certified time: the cluster's signed interval over `nonce` (batched with other
    /// clients'), or why the clocks would not agree.
    pub async fn certify_time(
        &self,
        nonce: [u8; 32],
    ) -> Result<welkin_time::CertifiedTime, crate::time::TimeFailure> {
        if self.keys.get().is_none() {
            return Err(crate::time::TimeFailure::Refused(
                "the cluster key is being generated (a dealerless cluster makes it at first \
                 start, within seconds); retry shortly"
                    .into(),
            ));
        }
        self.time.certify(nonce).await
    }

    /// The time service: status, and the certified interval at a given clock value.
    pub fn time(&self) -> &crate::time::TimeHandle {
        &self.time
    }

    /// This node's clock now, in ns since the Unix epoch.
    pub fn clock_ns(&self) -> u64 {
        self.clock
            .current()
            .duration_since(std::time::SystemTime::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
    }

    /// The certified interval true time lies in now, from this node's latest certificate
    /// (`None` when it has none from the last few seconds).
    pub fn certified_now(&self) -> Option<(u64, u64)> {
        self.time.certified_now(self.clock_ns())
    }

    /// Signs `messages` with `version` of the transit key `key_id` for the committed,
    /// allowed sign request `id`, coordinating the nodes that hold its shares; every
    /// signature is checked under the key's committed group key.
    pub async fn transit_sign(
        &self,
        id: TxId,
        key_id: Digest,
        version: u64,
        messages: Vec<Vec<u8>>,
    ) -> Result<Vec<[u8; 64]>, crate::transit::SignFailure> {
        self.transit.sign(id, key_id, version, messages).await
    }

    /// The node's clock.
    pub(crate) fn clock(&self) -> &E {
        &self.clock
    }

    /// What secrets request `id` did, if this node committed it recently.
    pub fn secrets_result(&self, id: &TxId) -> Option<welkin_state::secrets::SecretsResult> {
        self.releases.result(id)
    }

    /// What this node holds for read `id` (its grant and the envelopes received), and a
    /// notifier that fires when that changes.
    pub fn release(
        &self,
        id: &TxId,
    ) -> Option<(crate::releases::Release, Arc<tokio::sync::Notify>)> {
        self.releases.get(id)
    }

    /// The bytes of a sealed value this node keeps beside its archive, if it holds them (a
    /// destroyed value is gone). Checked against the reference's digest.
    pub async fn sealed_value(
        &self,
        value: &welkin_state::secrets::ValueRef,
    ) -> Result<Option<Vec<u8>>, String> {
        self.stores
            .values
            .get(&value.tx, &value.digest)
            .await
            .map_err(|e| e.to_string())
    }

    /// Blocks the member at `index`, whose partial for a read did not verify.
    pub(crate) fn block_member(&self, index: u32, reason: &str) {
        if let Some(node) = self.genesis.nodes.get(index as usize)
            && node.public_key != self.me
        {
            self.penalties.block(
                node.public_key.clone(),
                crate::penalty::Offence::Release,
                reason,
            );
        }
    }

    /// Every metric of the node's runtime (commonware's and the node's own stage
    /// histograms), in the Prometheus text format.
    pub fn metrics(&self) -> String {
        self.clock.encode()
    }

    /// Records that the API answered a client waiting for `id`.
    pub(crate) fn acknowledged(&self, id: &TxId) {
        self.admission.timeline().reached(
            crate::timeline::TxStage::Acknowledged,
            [id],
            self.clock.current(),
        );
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

    /// The receipt of a committed transaction.
    pub async fn receipt(&self, id: TxId) -> Option<Receipt> {
        let bytes = self.stores.value(&keys::receipt(&id)).await?;
        welkin_types::decode::<Receipt>(&bytes).ok()
    }

    /// The certified checkpoint at `height`, if the cluster has signed it.
    pub async fn checkpoint(&self, height: u64) -> Option<CertifiedCheckpoint> {
        self.stores
            .certificate(height)
            .await
            .map(|witnessed| witnessed.certified)
    }

    /// The certified checkpoint at `height` with the node cosignatures gathered for it.
    pub async fn witnessed_checkpoint(&self, height: u64) -> Option<WitnessedCheckpoint> {
        witnessed(&self.stores, &self.tracker, height).await
    }

    /// The height whose checkpoint first has a log of `size` entries (sizes that no block
    /// ended at have none).
    pub async fn log_height(&self, size: u64) -> Option<u64> {
        let value = self.stores.value(&keys::log_height(size)).await?;
        Some(welkin_state::read_u64(Some(&value)))
    }

    /// The hashes of C2SP tile (`level`, `index`) of `width` hashes.
    pub async fn tile(&self, level: u8, index: u64, width: u16) -> Result<Vec<[u8; 32]>, String> {
        let log = self.stores.log().await;
        welkin_merkle::tile_hashes(log.tree(), level, index, width).map_err(|e| e.to_string())
    }

    /// A raw state value.
    pub async fn value(&self, key: Digest) -> Option<Vec<u8>> {
        self.stores.value(&key).await
    }

    /// Many raw state values (absent keys give `None`).
    pub async fn values(&self, keys: Vec<Digest>) -> Vec<Option<Vec<u8>>> {
        self.stores.values(&keys).await
    }

    /// The value of a state key with its QMDB proof, at the latest applied height (`None`
    /// when the key has no value).
    pub async fn state_proof(&self, key: Digest) -> Result<Option<ProvenValue>, String> {
        self.stores.prove(&key).await
    }

    /// An inclusion proof for leaf `index` in the log tree of `size` entries.
    pub async fn inclusion_proof(&self, index: u64, size: u64) -> Result<Vec<Digest>, String> {
        let log = self.stores.log().await;
        proof_digests(welkin_merkle::inclusion_proof(log.tree(), index, size))
    }

    /// A consistency proof between log sizes `old` and `new`.
    pub async fn consistency_proof(&self, old: u64, new: u64) -> Result<Vec<Digest>, String> {
        let log = self.stores.log().await;
        proof_digests(welkin_merkle::consistency_proof(log.tree(), old, new))
    }

    /// Log entries `start..end`.
    pub async fn log_entries(&self, start: u64, end: u64) -> Result<Vec<Vec<u8>>, String> {
        let size = self.status().log_size;
        if start >= end || end > size {
            return Err(format!(
                "range {start}..{end} is not within the log of {size} entries"
            ));
        }
        Ok(self.stores.entries(start, end).await)
    }

    /// The certified checkpoint at `height` as a C2SP signed note: the cluster's signature,
    /// then the tlog cosignature of every node gathered for it, including this node's (made
    /// now if it has none stored).
    pub async fn checkpoint_note(&self, height: u64) -> Option<String> {
        let witnessed = self.witnessed_checkpoint(height).await?;
        let keys = self.keys.get()?;
        let mut note = welkin_types::note::to_note(
            &witnessed.certified,
            &self.cluster_id,
            keys.sharing.public(),
        );
        for (index, cosignature) in &witnessed.cosignatures {
            // Genesis members, then the nodes that joined (the tracker knows them all).
            let verifier = self
                .cosigners
                .get(*index as usize)
                .cloned()
                .or_else(|| crate::executor::lock(&self.tracker).verifier(*index));
            if let Some(verifier) = &verifier {
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

    /// Registers a wait for a transaction's receipt. Subscribe after the transaction was
    /// admitted, then check [`Self::receipt`] once, so that a commit between the two is not
    /// missed. Dropping the subscription unregisters it.
    pub fn subscribe(&self, id: TxId) -> Result<Subscription, TooManyWaiters> {
        self.shared.waiters.subscribe(id)
    }

    /// Clients waiting for commits now.
    pub fn waiting(&self) -> usize {
        self.shared.waiters.len()
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
        let arrived = self.clock.current();
        self.submit_arrived(txs, arrived).await
    }

    /// [`Self::submit_many`] for transactions that arrived at `arrived` (the start of the
    /// request that carried them): new ones are timed from then on.
    pub(crate) async fn submit_arrived(
        &self,
        txs: Vec<SignedTransaction>,
        arrived: std::time::SystemTime,
    ) -> Vec<Result<Submitted, SubmitError>> {
        let now = now_ms(self.clock.as_ref());
        let verdicts = self.admission.admit(&txs, now).await;
        let timeline = self.admission.timeline();
        txs.into_iter()
            .zip(verdicts)
            .map(|(tx, verdict)| match verdict? {
                Admitted::New => {
                    timeline.admitted([&tx.id()], arrived, self.clock.current());
                    self.gossip.push(tx);
                    Ok(Submitted::Pending)
                }
                Admitted::Known => Ok(Submitted::Pending),
                Admitted::Committed(receipt) => Ok(Submitted::Committed(receipt)),
            })
            .collect()
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
