//! Sealed values beside the block archive, so that destroying one destroys its bytes.
//!
//! A secrets write carries its sealed value as a [`Detachable`]: the transaction id, its
//! signatures, the block digest and the audit log entry commit to the value's digest only.
//! When marshal archives a finalized block, [`BlockArchive`] stores the block without its
//! values and each value in [`Values`], one blob per value, named by the id of the transaction
//! that carried it. When the state machine says a value is no longer referred to (a version
//! destroyed or dropped, a response unwrapped, a write refused: `BlockEffects::shredded`), the
//! executor removes its blob: the archive, the log and the state never held the bytes, so
//! after that this node holds nothing that a threshold of shares could open.
//!
//! Blocks read back from the archive get their values attached again when this node still
//! holds them, so peers catching up receive whole blocks; a destroyed value's block goes out
//! without it (its digest is unchanged), and executing it needs only the digest.
//!
//! What this does not cover, and the docs say so: marshal's cache of notarized blocks keeps
//! whole blocks until it prunes their section, and a byzantine proposer that repeats an old
//! write makes honest nodes store its bytes again (it must hold them to do so).

use crate::store::Runtime;
use commonware_consensus::{marshal::store::Blocks, types::Height};
use commonware_runtime::{Blob as _, Handle, ReadOptions, WriteOptions};
use commonware_storage::archive::{self, Identifier, immutable};
use std::{collections::HashMap, sync::Arc};
use tokio::sync::Mutex;
use welkin_types::{Block, Detachable, Digest, TxId};

/// Why a value could not be stored or read.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ValuesError {
    /// The block archive failed.
    #[error("block archive: {0}")]
    Archive(#[from] archive::Error),
    /// The value storage failed.
    #[error("value storage: {0}")]
    Storage(#[from] commonware_runtime::Error),
}

struct Inner<B> {
    /// Values written but not yet synced, by transaction: their open blobs (a blob has one
    /// handle at a time, so reads of these go through it).
    pending: HashMap<TxId, (B, Vec<u8>)>,
}

/// This node's sealed values, by the transaction that carried them.
pub(crate) struct Values<E: Runtime> {
    context: Arc<E>,
    partition: String,
    inner: Arc<Mutex<Inner<E::Blob>>>,
}

impl<E: Runtime> Clone for Values<E> {
    fn clone(&self) -> Self {
        Self {
            context: self.context.clone(),
            partition: self.partition.clone(),
            inner: self.inner.clone(),
        }
    }
}

fn blob_name(tx: &TxId) -> Vec<u8> {
    hex::encode(tx).into_bytes()
}

impl<E: Runtime> Values<E> {
    /// The values in partition `{prefix}-values`.
    pub(crate) fn new(context: E, prefix: &str) -> Self {
        Self {
            context: Arc::new(context),
            partition: format!("{prefix}-values"),
            inner: Arc::new(Mutex::new(Inner {
                pending: HashMap::new(),
            })),
        }
    }

    /// Writes `bytes` as the value of `tx`; durable after [`Self::sync`].
    async fn put(&self, tx: TxId, bytes: &[u8]) -> Result<(), commonware_runtime::Error> {
        let mut inner = self.inner.lock().await;
        if inner.pending.contains_key(&tx) {
            return Ok(());
        }
        let (blob, size) = self.context.open(&self.partition, &blob_name(&tx)).await?;
        if size != bytes.len() as u64 {
            blob.resize(0).await?;
            blob.write_at(0, bytes.to_vec(), WriteOptions::default())
                .await?;
        }
        inner.pending.insert(tx, (blob, bytes.to_vec()));
        Ok(())
    }

    /// Makes every value written so far durable.
    async fn sync(&self) -> Result<(), commonware_runtime::Error> {
        let pending = std::mem::take(&mut self.inner.lock().await.pending);
        for (blob, _) in pending.values() {
            blob.sync().await?;
        }
        Ok(())
    }

    /// The value of `tx` if this node holds it and it hashes to `digest`.
    pub(crate) async fn get(
        &self,
        tx: &TxId,
        digest: &Digest,
    ) -> Result<Option<Vec<u8>>, commonware_runtime::Error> {
        let inner = self.inner.lock().await;
        let bytes = match inner.pending.get(tx) {
            Some((_, bytes)) => bytes.clone(),
            None => {
                let name = blob_name(tx);
                let (blob, size) = self.context.open(&self.partition, &name).await?;
                if size == 0 {
                    // Opening made an empty blob: it was never stored, or was destroyed.
                    drop(blob);
                    self.context.remove(&self.partition, Some(&name)).await?;
                    return Ok(None);
                }
                let read = blob
                    .read_at(0, size as usize, ReadOptions::default())
                    .await?;
                read.coalesce().as_ref().to_vec()
            }
        };
        Ok((Detachable::digest_of(&bytes) == *digest).then_some(bytes))
    }

    /// Destroys the values of `txs` (durably, before this returns).
    pub(crate) async fn shred(&self, txs: &[TxId]) -> Result<(), commonware_runtime::Error> {
        if txs.is_empty() {
            return Ok(());
        }
        let mut inner = self.inner.lock().await;
        for tx in txs {
            // Dropping a pending handle first: removal must not race a later sync of it.
            inner.pending.remove(tx);
            match self
                .context
                .remove(&self.partition, Some(&blob_name(tx)))
                .await
            {
                Ok(()) | Err(commonware_runtime::Error::BlobMissing(_, _)) => {}
                Err(error) => return Err(error),
            }
        }
        Ok(())
    }
}

/// The finalized-block store marshal uses: blocks without their values in an immutable
/// archive, the values in [`Values`].
pub(crate) struct BlockArchive<E: Runtime> {
    blocks: immutable::Archive<E, Digest, Arc<Block>>,
    values: Values<E>,
}

impl<E: Runtime> BlockArchive<E> {
    /// Wraps `blocks`, keeping values in `values`.
    pub(crate) fn new(
        blocks: immutable::Archive<E, Digest, Arc<Block>>,
        values: Values<E>,
    ) -> Self {
        Self { blocks, values }
    }
}

impl<E: Runtime> Blocks for BlockArchive<E> {
    type Block = Arc<Block>;
    type Error = ValuesError;

    async fn put(mut self, digest: Digest, block: &Arc<Block>) -> Result<Self, ValuesError> {
        for tx in &block.txs {
            if let Some(bytes) = tx.tx.payload.detachable().and_then(Detachable::bytes) {
                self.values.put(tx.id(), bytes).await?;
            }
        }
        let stored = if block.is_complete()
            && block
                .txs
                .iter()
                .all(|tx| tx.tx.payload.detachable().is_none())
        {
            block.clone()
        } else {
            Arc::new(block.detach())
        };
        self.blocks = archive::Archive::put(self.blocks, block.height, digest, &stored).await?;
        Ok(self)
    }

    async fn sync(mut self) -> Result<Self, ValuesError> {
        self.values.sync().await?;
        self.blocks = archive::Archive::sync(self.blocks).await?;
        Ok(self)
    }

    async fn start_sync(mut self) -> Result<(Self, Handle<()>), ValuesError> {
        // Values first, at once: the block that refers to them may be durable once the
        // handle completes.
        self.values.sync().await?;
        let (blocks, handle) = archive::Archive::start_sync(self.blocks).await?;
        self.blocks = blocks;
        Ok((self, handle))
    }

    async fn get(&self, id: Identifier<'_, Digest>) -> Result<Option<Arc<Block>>, ValuesError> {
        let Some(stored) = archive::Archive::get(&self.blocks, id).await? else {
            return Ok(None);
        };
        if stored.is_complete() {
            return Ok(Some(stored));
        }
        let mut block = Block::clone(&stored);
        for index in 0..block.txs.len() {
            let tx = &block.txs[index];
            let Some(value) = tx.tx.payload.detachable() else {
                continue;
            };
            if let Some(bytes) = self.values.get(&tx.id(), &value.digest()).await? {
                block.attach(index, bytes);
            }
        }
        Ok(Some(Arc::new(block)))
    }

    async fn prune(self, _: Height) -> Result<Self, ValuesError> {
        // The archive is immutable: every block is kept (without destroyed values).
        Ok(self)
    }

    fn missing_items(&self, start: Height, max: usize) -> Vec<Height> {
        archive::Archive::missing_items(&self.blocks, start.get(), max)
            .into_iter()
            .map(Height::new)
            .collect()
    }

    fn next_gap(&self, value: Height) -> (Option<Height>, Option<Height>) {
        let (a, b) = archive::Archive::next_gap(&self.blocks, value.get());
        (a.map(Height::new), b.map(Height::new))
    }

    fn last_index(&self) -> Option<Height> {
        archive::Archive::last_index(&self.blocks).map(Height::new)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::{Digestible as _, Signer as _};
    use commonware_runtime::{
        Runner as _, Storage as _, Supervisor as _, buffer::paged::CacheRef, deterministic,
    };
    use commonware_utils::{NZU16, NZUsize};
    use welkin_types::{Payload, PrivateKey, Sender, Transaction, hash_parts, secrets::SecretsOp};

    fn write(nonce: u64, value: &[u8]) -> welkin_types::SignedTransaction {
        let key = PrivateKey::from_seed(nonce);
        Transaction {
            sender: Sender::Key(key.public_key()),
            nonce,
            expiry_ms: 10,
            payload: Payload::Secrets(Box::new(SecretsOp::KvWrite {
                mount: "secret".into(),
                path: "a".into(),
                nonce: [1; 32],
                sealed: Detachable::new(value.to_vec()),
                cas: None,
            })),
        }
        .sign(&key, &hash_parts(&[b"c"]))
    }

    /// Whether any blob of `partition` contains `needle`.
    async fn holds(context: &deterministic::Context, partition: &str, needle: &[u8]) -> bool {
        for name in context.scan(partition).await.unwrap_or_default() {
            let (blob, size) = context.open(partition, &name).await.expect("opens");
            let bytes = blob
                .read_at(0, size as usize, ReadOptions::default())
                .await
                .expect("reads")
                .coalesce();
            if bytes.as_ref().windows(needle.len()).any(|w| w == needle) {
                return true;
            }
        }
        false
    }

    #[test]
    fn archived_blocks_keep_values_beside_them_until_shredded() {
        deterministic::Runner::default().start(|context| async move {
            let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(16));
            let values = Values::new(context.child("values"), "test");
            let blocks = immutable::Archive::init(
                context.child("blocks"),
                crate::engine::archive_config("test", "blocks", &page_cache, ()),
            )
            .await
            .expect("opens");
            let (kept, shredded) = (write(1, b"kept value"), write(2, b"shredded value"));
            let block = Arc::new(Block::new(
                hash_parts(&[b"p"]),
                1,
                5,
                vec![kept.clone(), shredded.clone()],
            ));
            let archive = BlockArchive::new(blocks, values.clone());
            let archive = archive.put(block.digest(), &block).await.expect("put");
            let archive = archive.sync().await.expect("sync");
            // The archive itself holds the block without its values.
            let stored = archive::Archive::get(&archive.blocks, Identifier::Index(1))
                .await
                .expect("reads")
                .expect("stored");
            assert!(!stored.is_complete());
            assert_eq!(stored.digest(), block.digest());
            // Read through the wrapper, the block is whole again.
            let whole = archive
                .get(Identifier::Index(1))
                .await
                .expect("reads")
                .expect("stored");
            assert_eq!(whole.txs, block.txs);

            // Before shredding, the bytes are in the value partition (so the search below
            // can find them).
            assert!(holds(&context, "test-values", b"shredded value").await);
            values.shred(&[shredded.id()]).await.expect("shreds");
            let digest = shredded.tx.payload.detachable().expect("a value").digest();
            assert_eq!(
                values.get(&shredded.id(), &digest).await.expect("reads"),
                None
            );
            let after = archive
                .get(Identifier::Index(1))
                .await
                .expect("reads")
                .expect("stored");
            assert!(after.txs[0].is_complete(), "the kept value is still there");
            assert!(!after.txs[1].is_complete(), "the shredded value is gone");
            assert_eq!(after.digest(), block.digest());
            // The bytes are not anywhere in the node's storage any more (closed first: a
            // blob has one handle at a time).
            drop(archive);
            let mut found = Vec::new();
            for partition in [
                "test-values",
                "test-blocks-metadata",
                "test-blocks-freezer-table",
                "test-blocks-freezer-key",
                "test-blocks-freezer-value",
                "test-blocks-ordinal",
            ] {
                if holds(&context, partition, b"shredded value").await {
                    found.push(partition);
                }
            }
            assert!(found.is_empty(), "shredded bytes remain in {found:?}");
            // A value this node never held reads as absent (and leaves no blob behind).
            assert_eq!(
                values
                    .get(&hash_parts(&[b"none"]), &digest)
                    .await
                    .expect("reads"),
                None
            );
        });
    }
}
