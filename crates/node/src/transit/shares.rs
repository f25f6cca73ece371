//! This node's shares of the transit signing keys, kept on disk like its share of the
//! cluster key: each written and synced before the node reports its key generation done, so
//! that a key the log calls generated never lacks the shares a restart needs.

use commonware_runtime::{Clock, Metrics, Storage};
use commonware_storage::metadata::{self, Metadata};
use std::collections::BTreeMap;
use welkin_frost::KeyShare;
use welkin_types::{Digest, hash_parts};

/// Largest stored share (welkin-frost's encoding is about 110 bytes).
const MAX_SHARE_BYTES: usize = 1024;

/// The node's key shares, by key id and version.
pub(crate) struct Shares<E: Clock + Storage + Metrics> {
    store: Option<Metadata<E, Digest, Vec<u8>>>,
    loaded: BTreeMap<Digest, KeyShare>,
}

/// Where `version` of key `key_id` is stored.
fn slot(key_id: &Digest, version: u64) -> Digest {
    hash_parts(&[
        b"welkin/transit/share",
        key_id.as_ref(),
        &version.to_be_bytes(),
    ])
}

impl<E: Clock + Storage + Metrics> Shares<E> {
    /// Opens the store in partition `{prefix}-transit-shares`.
    pub(crate) async fn open(context: E, prefix: &str) -> Self {
        let store = Metadata::init(
            context,
            metadata::Config {
                partition: format!("{prefix}-transit-shares"),
                codec_config: ((0..=MAX_SHARE_BYTES).into(), ()),
            },
        )
        .await
        .expect("transit share store must open; is the data directory intact?");
        Self {
            store: Some(store),
            loaded: BTreeMap::new(),
        }
    }

    /// The share of `version` of key `key_id`, if this node holds one.
    pub(crate) fn get(&mut self, key_id: &Digest, version: u64) -> Option<&KeyShare> {
        let slot = slot(key_id, version);
        if !self.loaded.contains_key(&slot) {
            let bytes = self.store.as_ref().expect("store present").get(&slot)?;
            let share = KeyShare::decode(bytes)
                .expect("shares are stored by this node in welkin-frost's encoding");
            self.loaded.insert(slot, share);
        }
        self.loaded.get(&slot)
    }

    /// Stores `share` for `version` of key `key_id` and syncs it to disk.
    pub(crate) async fn put(&mut self, key_id: &Digest, version: u64, share: KeyShare) {
        let slot = slot(key_id, version);
        let store = self.store.take().expect("store present");
        let store = store
            .put_sync(slot, share.encode().to_vec())
            .await
            .expect("a transit key share must reach disk");
        self.store = Some(store);
        self.loaded.insert(slot, share);
    }
}
