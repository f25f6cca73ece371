//! The cluster key as this node holds it, and, for a dealerless cluster, the node's part in
//! generating it.
//!
//! A cluster made with a trusted dealer starts with its key (the genesis polynomial and the
//! node's dealt share). A dealerless cluster starts without one: consensus runs (its votes are
//! the members' ed25519 signatures), and the [`actor`] runs this node's part of the key
//! generation round the state opened (see `welkin_state::keygen`). Until the key exists, the
//! services that sign with it wait: checkpoints are not certified, secrets, transit
//! encryption and time certificates answer "the cluster key is being generated".
//!
//! What this node learns in the round: every dealer's public commitment, its own share of each
//! dealer's polynomial (which sum to its share of the key), the signed logs, and the public
//! polynomial. Never another node's share (but for a player that acknowledged nothing, whose
//! share from that one dealer the dealer's log reveals) and never the key's secret.
//!
//! The share is kept sealed at rest ([`KeygenStore`]): ChaCha20-Poly1305 under a key derived
//! from the node's identity key and the cluster id. So is what a round must not forget across
//! a restart: the dealings the node acknowledged (its share is made from them), that it dealt
//! (a node never deals twice in a round: players acknowledged its first dealing), and its
//! signed log (submitted again as it was). They are forgotten once the share is made.

pub(crate) mod actor;

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit as _, Nonce,
    aead::{Aead as _, Payload},
};
use commonware_codec::Encode as _;
use commonware_cryptography::bls12381::primitives::group::Share;
use commonware_runtime::{Clock, Metrics, Storage};
use commonware_storage::metadata::{self, Metadata};
use futures::{FutureExt as _, channel::oneshot, future::Shared};
use rand_core::CryptoRng;
use std::sync::{Arc, Mutex};
use welkin_types::{Digest, PrivateKey, Sharing, hash_parts};
use zeroize::Zeroizing;

/// The cluster key as this node holds it.
#[derive(Clone, Debug)]
pub struct ClusterKeys {
    /// The public polynomial: the cluster key and every member's share commitment.
    pub sharing: Sharing,
    /// This node's share; `None` if the node lost its part of the round (it restarted between
    /// acknowledging dealings and the round's decision) and holds no share until the next
    /// resharing.
    pub share: Option<Share>,
}

/// Where the cluster key is, once it exists: services read it, or wait for it.
#[derive(Clone)]
pub(crate) struct KeyCell {
    keys: Arc<Mutex<Option<Arc<ClusterKeys>>>>,
    notify: Arc<Mutex<Option<oneshot::Sender<()>>>>,
    ready: Shared<oneshot::Receiver<()>>,
}

impl KeyCell {
    /// An empty cell.
    pub(crate) fn new() -> Self {
        let (notify, ready) = oneshot::channel();
        Self {
            keys: Arc::default(),
            notify: Arc::new(Mutex::new(Some(notify))),
            ready: ready.shared(),
        }
    }

    /// The key, if it exists.
    pub(crate) fn get(&self) -> Option<Arc<ClusterKeys>> {
        self.keys.lock().expect("key cell lock").clone()
    }

    /// Sets the key (once: later calls change nothing) and wakes every waiter.
    pub(crate) fn set(&self, keys: ClusterKeys) {
        {
            let mut slot = self.keys.lock().expect("key cell lock");
            if slot.is_some() {
                return;
            }
            *slot = Some(Arc::new(keys));
        }
        if let Some(notify) = self.notify.lock().expect("key cell lock").take() {
            let _ = notify.send(());
        }
    }

    /// Replaces the key after a resharing (the same cluster key, a new polynomial and share);
    /// services started earlier keep what they were given.
    pub(crate) fn replace(&self, keys: ClusterKeys) {
        *self.keys.lock().expect("key cell lock") = Some(Arc::new(keys));
        if let Some(notify) = self.notify.lock().expect("key cell lock").take() {
            let _ = notify.send(());
        }
    }

    /// Waits until the key exists. Never returns if the node stops first (the waiter is then
    /// dropped with its task).
    pub(crate) async fn wait(&self) -> Arc<ClusterKeys> {
        loop {
            if let Some(keys) = self.get() {
                return keys;
            }
            if self.ready.clone().await.is_err() {
                // The cell was dropped unset: the node is stopping.
                futures::future::pending::<()>().await;
            }
        }
    }
}

/// Largest sealed value: a dealer log of the largest cluster, with room to spare.
const MAX_SEALED_BYTES: usize = 64 * 1024;

/// What this node keeps of key generation, sealed at rest: its share once made, and during a
/// round what it must not forget across a restart (the dealings it acknowledged, whether it
/// dealt, and its signed log).
pub(crate) struct KeygenStore<E: Clock + Storage + Metrics> {
    store: Option<Metadata<E, Digest, Vec<u8>>>,
    seal_key: Zeroizing<[u8; 32]>,
    cluster_id: Digest,
}

/// Where one kind of value is kept (`round` and `dealer` name it within its kind).
pub(crate) enum Slot<'a> {
    /// This node's share of the generated key.
    Share,
    /// That this node dealt in `round` (it never deals twice in one round).
    Dealt(u64),
    /// This node's signed log of `round`.
    Log(u64),
    /// This node's share of the output of resharing round `round`.
    ShareOf(u64),
    /// What rebuilds resharing round `round` after its boundary, when the state no longer
    /// holds the output it reshared: that output's record, the dealers and the players.
    RoundInfo(u64),
    /// A dealing of `round` from `dealer` that this node acknowledged.
    Dealing(u64, &'a welkin_types::PublicKey),
}

impl Slot<'_> {
    fn key(&self) -> Digest {
        match self {
            Slot::Share => hash_parts(&[b"welkin/cluster-share"]),
            Slot::Dealt(round) => hash_parts(&[b"welkin/keygen/dealt", &round.to_be_bytes()]),
            Slot::Log(round) => hash_parts(&[b"welkin/keygen/log", &round.to_be_bytes()]),
            Slot::ShareOf(round) => {
                hash_parts(&[b"welkin/keygen/reshared-share", &round.to_be_bytes()])
            }
            Slot::RoundInfo(round) => {
                hash_parts(&[b"welkin/keygen/round-info", &round.to_be_bytes()])
            }
            Slot::Dealing(round, dealer) => hash_parts(&[
                b"welkin/keygen/dealing",
                &round.to_be_bytes(),
                dealer.encode().as_ref(),
            ]),
        }
    }
}

impl<E: Clock + Storage + Metrics> KeygenStore<E> {
    /// Opens the store in partition `{prefix}-cluster-share`; values are sealed under a key
    /// derived from `identity` (the node's ed25519 key) and `cluster_id`.
    pub(crate) async fn open(
        context: E,
        prefix: &str,
        identity: &PrivateKey,
        cluster_id: Digest,
    ) -> Self {
        let store = Metadata::init(
            context,
            metadata::Config {
                partition: format!("{prefix}-cluster-share"),
                codec_config: ((0..=MAX_SEALED_BYTES).into(), ()),
            },
        )
        .await
        .expect("cluster share store must open; is the data directory intact?");
        let seed = Zeroizing::new(identity.encode().to_vec());
        let derived = hash_parts(&[b"welkin/share-at-rest/v1", &seed, cluster_id.as_ref()]);
        let mut seal_key = Zeroizing::new([0u8; 32]);
        seal_key.copy_from_slice(derived.as_ref());
        Self {
            store: Some(store),
            seal_key,
            cluster_id,
        }
    }

    fn cipher(&self) -> ChaCha20Poly1305 {
        ChaCha20Poly1305::new((&*self.seal_key).into())
    }

    /// The value in `slot`, opened; an error if it is there but does not open (another
    /// node's data directory, or corruption).
    pub(crate) fn get(&self, slot: Slot<'_>) -> Result<Option<Zeroizing<Vec<u8>>>, String> {
        let Some(stored) = self.store.as_ref().expect("store present").get(&slot.key()) else {
            return Ok(None);
        };
        if stored.len() < 12 {
            return Err("a sealed key generation value is truncated".into());
        }
        let (nonce, sealed) = stored.split_at(12);
        let plain = self
            .cipher()
            .decrypt(
                &Nonce::try_from(nonce).map_err(|_| "a sealed value's nonce".to_string())?,
                Payload {
                    msg: sealed,
                    aad: self.cluster_id.as_ref(),
                },
            )
            .map_err(|_| {
                "a sealed key generation value does not open with this node's key: is this \
                 another node's data directory?"
                    .to_string()
            })?;
        Ok(Some(Zeroizing::new(plain)))
    }

    /// Seals `value` under a fresh nonce (stored before the ciphertext) into `slot` and syncs
    /// it to disk.
    pub(crate) async fn put(&mut self, rng: &mut impl CryptoRng, slot: Slot<'_>, value: &[u8]) {
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut sealed = nonce.to_vec();
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: value,
                    aad: self.cluster_id.as_ref(),
                },
            )
            .expect("sealing a bounded message cannot fail");
        sealed.extend_from_slice(&ciphertext);
        let store = self.store.take().expect("store present");
        let store = store
            .put_sync(slot.key(), sealed)
            .await
            .expect("key generation state must reach disk");
        self.store = Some(store);
    }

    /// Forgets the values in `slots` (and syncs), once the share is made.
    pub(crate) async fn forget(&mut self, slots: Vec<Slot<'_>>) {
        let mut store = self.store.take().expect("store present");
        for slot in slots {
            store.remove(&slot.key());
        }
        let store = store
            .sync()
            .await
            .expect("key generation state must reach disk");
        self.store = Some(store);
    }

    /// The stored share, if any.
    pub(crate) fn share(&self) -> Result<Option<Share>, String> {
        self.get(Slot::Share)?
            .map(|plain| {
                welkin_types::decode::<Share>(&plain).map_err(|e| format!("stored share: {e}"))
            })
            .transpose()
    }

    /// Seals `share` to disk.
    pub(crate) async fn save_share(&mut self, rng: &mut impl CryptoRng, share: &Share) {
        let plain = Zeroizing::new(share.encode().to_vec());
        self.put(rng, Slot::Share, &plain).await;
    }

    /// The stored share of resharing round `round`, if any.
    pub(crate) fn share_of(&self, round: u64) -> Result<Option<Share>, String> {
        self.get(Slot::ShareOf(round))?
            .map(|plain| {
                welkin_types::decode::<Share>(&plain).map_err(|e| format!("stored share: {e}"))
            })
            .transpose()
    }

    /// Seals `share`, of resharing round `round`, to disk.
    pub(crate) async fn save_share_of(
        &mut self,
        rng: &mut impl CryptoRng,
        round: u64,
        share: &Share,
    ) {
        let plain = Zeroizing::new(share.encode().to_vec());
        self.put(rng, Slot::ShareOf(round), &plain).await;
    }
}
