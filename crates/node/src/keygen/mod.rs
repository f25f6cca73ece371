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
//! The share is kept sealed at rest ([`ShareStore`]): ChaCha20-Poly1305 under a key derived
//! from the node's identity key and the cluster id.

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

/// Largest sealed share: a 4-byte index, a 32-byte scalar, the tag, with room to spare.
const MAX_SEALED_BYTES: usize = 256;

/// This node's share of a generated cluster key, sealed at rest.
pub(crate) struct ShareStore<E: Clock + Storage + Metrics> {
    store: Option<Metadata<E, Digest, Vec<u8>>>,
    seal_key: Zeroizing<[u8; 32]>,
    cluster_id: Digest,
}

fn slot() -> Digest {
    hash_parts(&[b"welkin/cluster-share"])
}

impl<E: Clock + Storage + Metrics> ShareStore<E> {
    /// Opens the store in partition `{prefix}-cluster-share`; the share is sealed under a key
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

    /// The stored share, if any; an error if it is there but does not open (another node's
    /// data directory, or corruption).
    pub(crate) fn load(&self) -> Result<Option<Share>, String> {
        let Some(stored) = self.store.as_ref().expect("store present").get(&slot()) else {
            return Ok(None);
        };
        if stored.len() < 12 {
            return Err("the stored cluster key share is truncated".into());
        }
        let (nonce, sealed) = stored.split_at(12);
        let plain = Zeroizing::new(
            self.cipher()
                .decrypt(
                    &Nonce::try_from(nonce).map_err(|_| "stored share nonce".to_string())?,
                    Payload {
                        msg: sealed,
                        aad: self.cluster_id.as_ref(),
                    },
                )
                .map_err(|_| {
                    "the stored cluster key share does not open with this node's key: is this \
                     another node's data directory?"
                        .to_string()
                })?,
        );
        let share =
            welkin_types::decode::<Share>(&plain).map_err(|e| format!("stored share: {e}"))?;
        Ok(Some(share))
    }

    /// Seals `share` under a fresh nonce (stored before the ciphertext) and syncs it to disk.
    pub(crate) async fn save(&mut self, rng: &mut impl CryptoRng, share: &Share) {
        let plain = Zeroizing::new(share.encode().to_vec());
        let mut nonce = [0u8; 12];
        rng.fill_bytes(&mut nonce);
        let mut sealed = nonce.to_vec();
        let ciphertext = self
            .cipher()
            .encrypt(
                &Nonce::from(nonce),
                Payload {
                    msg: &plain,
                    aad: self.cluster_id.as_ref(),
                },
            )
            .expect("sealing a small message cannot fail");
        sealed.extend_from_slice(&ciphertext);
        let store = self.store.take().expect("store present");
        let store = store
            .put_sync(slot(), sealed)
            .await
            .expect("the cluster key share must reach disk");
        self.store = Some(store);
    }
}
