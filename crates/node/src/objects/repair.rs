//! The node's side of repair (see [`welkin_state::storage::repair`]): a node that the state
//! names as the new holder of a lost shard rebuilds it from `k` healthy shards of other
//! nodes and acknowledges it.
//!
//! The rebuild asks the healthy holders, over the storage channel, for `k` blocks of each
//! segment, checks each block's inclusion path against its shard's root in the manifest (a
//! holder that sends a block that does not match is blocked: an honest one checks every block
//! it reads), erasure-decodes only the lost shard's block (never the plaintext: the node has
//! no key), and streams it into the shard store, which checks the rebuilt shard against its
//! root before keeping it. A holder that does not answer is replaced by the next. A holder
//! serves blocks only to the node an open repair order names. One repair runs at a time; an
//! order that fails here is tried again on a later pass until the state lets it expire and
//! orders it elsewhere.

use super::{
    Shards,
    audit::layout_of,
    wire::{Answer, Ask, reason},
};
use crate::{penalty::Offence, store::Runtime};
use std::{collections::BTreeSet, sync::Arc, time::Duration};
use tracing::{info, warn};
use welkin_object::ShardTree;
use welkin_shards::ShardId;
use welkin_state::{
    keys,
    storage::{records::ObjectRecord, repair::RepairOrder},
};
use welkin_types::Digest;

/// Open orders a pass looks at.
const MAX_ORDERS_SCANNED: u64 = 256;
/// How long a repairing node waits for a block before asking another holder.
const BLOCK_TIMEOUT: Duration = Duration::from_secs(10);

impl<E: Runtime> Shards<E> {
    /// Starts the first open repair order for this node, unless one is running.
    pub(crate) async fn repair_pass(&self) {
        if self.repairing.load(std::sync::atomic::Ordering::Acquire) {
            return;
        }
        let count = crate::api::objects::count_at(&self.node, keys::repairs_count()).await;
        let slots: Vec<Digest> = (0..count.min(MAX_ORDERS_SCANNED))
            .map(keys::repairs_at)
            .collect();
        for id in self.node.values(slots).await.into_iter().flatten() {
            let Ok(id) = <[u8; 32]>::try_from(id.as_slice()) else {
                continue;
            };
            let id = Digest::from(id);
            let Some(order) = self
                .node
                .value(keys::repair(&id))
                .await
                .and_then(|v| RepairOrder::decode(&v).ok())
            else {
                continue;
            };
            if !order.open || order.member != self.member {
                continue;
            }
            let Some(record) = self.record_of(&id).await else {
                continue;
            };
            self.repairing
                .store(true, std::sync::atomic::Ordering::Release);
            let shards = self.clone();
            // The rebuild holds its thread for disk work: a thread of its own.
            self.context
                .child("repair")
                .dedicated()
                .spawn(move |_| async move {
                    let shard = order.shard;
                    match shards.rebuild(&id, &record, shard).await {
                        Ok(bytes) => {
                            info!(object = %hex::encode(id), shard, bytes, "repaired a lost shard");
                            shards.acknowledge(id, vec![shard], true).await;
                        }
                        Err(reason) => {
                            warn!(object = %hex::encode(id), shard, %reason, "repair failed; tried again later")
                        }
                    }
                    shards
                        .repairing
                        .store(false, std::sync::atomic::Ordering::Release);
                });
            return;
        }
    }

    /// Rebuilds shard `shard` of `id` into the local store; returns its bytes.
    async fn rebuild(&self, id: &Digest, record: &ObjectRecord, shard: u16) -> Result<u64, String> {
        let manifest = &record.manifest;
        let layout = layout_of(record);
        let size = manifest.size;
        let k = usize::from(manifest.k);
        let shards_total = record.placement.len();
        let sources: Vec<u16> = (0..shards_total)
            .filter(|s| {
                *s != usize::from(shard)
                    && record.is_stored(*s)
                    && record.lost & (1 << s) == 0
                    && record.placement[*s] != self.member
            })
            .map(|s| s as u16)
            .collect();
        if sources.len() < k {
            return Err(format!(
                "only {} healthy shards on other nodes to rebuild from, {k} needed",
                sources.len()
            ));
        }
        let mut object = [0u8; 32];
        object.copy_from_slice(id.as_ref());
        let local = ShardId {
            object,
            index: shard,
        };
        let root: [u8; 32] = manifest.roots[usize::from(shard)]
            .as_ref()
            .try_into()
            .expect("32 bytes");
        let segments = layout.segments(size);
        let block = |s: u64| layout.block_bytes(size, s).map_err(|e| e.to_string());
        let (first, last) = (block(0)?, block(segments - 1)?);
        let store = self.store.clone();
        let writer = self
            .blocking(move || -> Result<_, String> {
                if store.contains(&local) {
                    // A stale copy (the shard came back to its old holder): rebuilt from scratch.
                    store.delete(&local).map_err(|e| e.to_string())?;
                }
                store
                    .create_without_hashes(
                        local,
                        root,
                        u32::try_from(segments).map_err(|_| "too many segments".to_string())?,
                        first,
                        last,
                    )
                    .map_err(|e| e.to_string())
            })
            .await
            .ok_or("the node is stopping")??;
        let mut writer = Some(writer);
        let mut failed: BTreeSet<u16> = BTreeSet::new();
        let mut bytes = 0u64;
        for segment in 0..segments {
            let mut blocks: Vec<Option<Vec<u8>>> = vec![None; shards_total];
            let mut expected = vec![[0u8; 32]; shards_total];
            let mut have = 0;
            // The first `k` holders not known to fail, asked at once; a failing one is
            // replaced by the next.
            let mut next = 0;
            while have < k {
                let batch: Vec<u16> = sources[next..]
                    .iter()
                    .copied()
                    .filter(|source| !failed.contains(source))
                    .take(k - have)
                    .collect();
                let Some(&last) = batch.last() else { break };
                next = sources
                    .iter()
                    .position(|s| *s == last)
                    .map_or(sources.len(), |at| at + 1);
                let fetched = futures::future::join_all(
                    batch
                        .iter()
                        .map(|&source| self.fetch_block(record, id, source, segment)),
                )
                .await;
                for (source, result) in batch.into_iter().zip(fetched) {
                    match result {
                        Ok((block, hash)) => {
                            expected[usize::from(source)] = hash;
                            blocks[usize::from(source)] = Some(block);
                            have += 1;
                        }
                        Err(why) => {
                            warn!(object = %hex::encode(id), source, segment, %why, "a holder failed during repair; asking another");
                            failed.insert(source);
                        }
                    }
                }
            }
            if have < k {
                return Err(format!(
                    "segment {segment}: only {have} of the {k} blocks needed arrived"
                ));
            }
            let mut open = writer
                .take()
                .expect("the writer is put back after each block");
            let written = self
                .blocking(move || -> Result<(_, u64), String> {
                    let refs: Vec<Option<&[u8]>> = blocks.iter().map(|b| b.as_deref()).collect();
                    let rebuilt = welkin_object::rebuild_lost_blocks(
                        &layout,
                        size,
                        segment,
                        &refs,
                        &expected,
                        &[shard],
                    )
                    .map_err(|e| e.to_string())?;
                    open.write_block(&rebuilt[0]).map_err(|e| e.to_string())?;
                    Ok((open, rebuilt[0].len() as u64))
                })
                .await
                .ok_or("the node is stopping")??;
            writer = Some(written.0);
            bytes += written.1;
        }
        let open = writer
            .take()
            .expect("the writer is put back after each block");
        self.blocking(move || open.finish().map_err(|e| e.to_string()))
            .await
            .ok_or("the node is stopping")??;
        Ok(bytes)
    }

    /// Asks the holder of shard `source` of `id` for its block of `segment` and checks it
    /// against the shard's root; returns the block and its hash.
    async fn fetch_block(
        &self,
        record: &ObjectRecord,
        id: &Digest,
        source: u16,
        segment: u64,
    ) -> Result<(Vec<u8>, [u8; 32]), String> {
        let holder = record.placement[usize::from(source)];
        let answer = self
            .ask(
                holder,
                Ask::Block {
                    object: *id,
                    shard: source,
                    segment: u32::try_from(segment).map_err(|_| "segment out of range")?,
                },
                BLOCK_TIMEOUT,
            )
            .await
            .ok_or("no answer in time")?;
        let (block, path) = match answer {
            Answer::Block { bytes, path } => (bytes, path),
            Answer::Refused(why) => return Err(format!("refused: {why}")),
            Answer::Proof(_) => return Err("answered with a proof".into()),
        };
        let root: [u8; 32] = record.manifest.roots[usize::from(source)]
            .as_ref()
            .try_into()
            .expect("32 bytes");
        let layout = layout_of(record);
        let size = record.manifest.size;
        let expected_len = layout
            .block_bytes(size, segment)
            .map_err(|e| e.to_string())?;
        let hash = welkin_object::block_hash(&block);
        let segments = layout.segments(size);
        if block.len() != expected_len as usize
            || !ShardTree::verify_path(&root, segments, segment, &hash, &path)
        {
            // An honest holder checks every block it reads against its hash list, which it
            // checked against this root when it stored the shard.
            if let Some(peer) = self.node.genesis().nodes.get(holder as usize) {
                self.node.penalties().block(
                    peer.public_key.clone(),
                    Offence::Storage,
                    "sent a repair block that does not match its shard's root",
                );
            }
            return Err("the block does not match its shard's root".into());
        }
        Ok((block, hash))
    }

    /// The answer to member `from`'s ask for a block: served only for an open repair order
    /// naming `from`, and only from a shard placed here.
    pub(crate) async fn block_answer(
        &self,
        from: u32,
        object: Digest,
        shard: u16,
        segment: u32,
    ) -> Option<Answer> {
        let order = self
            .node
            .value(keys::repair(&object))
            .await
            .and_then(|v| RepairOrder::decode(&v).ok());
        if !order.is_some_and(|o| o.open && o.member == from) {
            return Some(Answer::Refused(
                "no open repair order names the asking node".into(),
            ));
        }
        let record = self.record_of(&object).await;
        if record.is_none_or(|r| r.placement.get(usize::from(shard)) != Some(&self.member)) {
            return Some(Answer::Refused("that shard is not placed here".into()));
        }
        let mut bytes = [0u8; 32];
        bytes.copy_from_slice(object.as_ref());
        let id = ShardId {
            object: bytes,
            index: shard,
        };
        let store = self.store.clone();
        let cache = self.tree.clone();
        let served = self
            .blocking(move || -> Result<Answer, String> {
                let cached = cache
                    .lock()
                    .expect("not poisoned")
                    .as_ref()
                    .filter(|(cached, _)| *cached == id)
                    .map(|(_, tree)| tree.clone());
                let tree = match cached {
                    Some(tree) => tree,
                    None => {
                        let tree = Arc::new(ShardTree::new(
                            store.block_hashes(&id).map_err(|e| e.to_string())?,
                        ));
                        *cache.lock().expect("not poisoned") = Some((id, tree.clone()));
                        tree
                    }
                };
                let block = store.read_block(&id, segment).map_err(|e| e.to_string())?;
                let path = tree
                    .path(u64::from(segment))
                    .ok_or("no such segment in the shard")?;
                Ok(Answer::Block { bytes: block, path })
            })
            .await?;
        Some(served.unwrap_or_else(|why| Answer::Refused(reason(&why))))
    }
}
