//! The node's side of repair (see [`welkin_state::storage::repair`]): a node that the state
//! names as the new holder of a lost shard rebuilds it from `k` healthy shards of other
//! nodes and acknowledges it.
//!
//! The rebuild reads the healthy shards with the same checked reader clients use (every hash
//! list against the manifest's roots, every block against its hash, a failing source replaced
//! by the next), erasure-decodes only the lost shard's block of each segment (never the
//! plaintext: the node has no key), and streams it into the shard store, which checks the
//! rebuilt shard against its root in the manifest before keeping it. One repair runs at a
//! time; an order that fails here is tried again on a later pass until the state lets it
//! expire and orders it elsewhere.

use super::{Shards, audit::layout_of};
use crate::store::Runtime;
use std::ops::Range;
use tracing::{info, warn};
use welkin_client::objects::{ShardSource, read_segments};
use welkin_shards::ShardId;
use welkin_state::{
    keys,
    storage::{records::ObjectRecord, repair::RepairOrder},
};
use welkin_types::Digest;

/// Open orders a pass looks at.
const MAX_ORDERS_SCANNED: u64 = 256;

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
            let Some(record) = self
                .node
                .value(keys::object(&id))
                .await
                .and_then(|v| ObjectRecord::decode(&v).ok())
            else {
                continue;
            };
            self.repairing
                .store(true, std::sync::atomic::Ordering::Release);
            let shards = self.clone();
            tokio::spawn(async move {
                let shard = order.shard;
                let worker = shards.clone();
                let rebuilt =
                    tokio::task::spawn_blocking(move || worker.rebuild(&id, &record, shard)).await;
                match rebuilt {
                    Ok(Ok(bytes)) => {
                        info!(object = %hex::encode(id), shard, bytes, "repaired a lost shard");
                        shards.acknowledge(id, vec![shard], true).await;
                    }
                    Ok(Err(reason)) => {
                        warn!(object = %hex::encode(id), shard, %reason, "repair failed; tried again later")
                    }
                    Err(error) => warn!(%error, "repair task failed"),
                }
                shards
                    .repairing
                    .store(false, std::sync::atomic::Ordering::Release);
            });
            return;
        }
    }

    /// Rebuilds shard `shard` of `id` into the local store (blocking); returns its bytes.
    fn rebuild(&self, id: &Digest, record: &ObjectRecord, shard: u16) -> Result<u64, String> {
        let manifest = &record.manifest;
        let layout = layout_of(record);
        let size = manifest.size;
        let genesis = self.node.genesis();
        let sources: Vec<ShardSource> = (0..record.placement.len())
            .filter(|s| {
                *s != usize::from(shard) && record.is_stored(*s) && record.lost & (1 << s) == 0
            })
            .filter_map(|s| {
                let node = genesis.nodes.get(record.placement[s] as usize)?;
                Some(ShardSource {
                    index: s,
                    node: node.name.clone(),
                    api_address: node.api_address.to_string(),
                })
            })
            .collect();
        if sources.len() < usize::from(manifest.k) {
            return Err(format!(
                "only {} healthy shards to rebuild from, {} needed",
                sources.len(),
                manifest.k
            ));
        }
        let mut object = [0u8; 32];
        object.copy_from_slice(id.as_ref());
        let local = ShardId {
            object,
            index: shard,
        };
        if self.store.contains(&local) {
            // A stale copy (the shard came back to its old holder): rebuilt from scratch.
            self.store.delete(&local).map_err(|e| e.to_string())?;
        }
        let root: [u8; 32] = manifest.roots[usize::from(shard)]
            .as_ref()
            .try_into()
            .expect("32 bytes");
        let segments = layout.segments(size);
        let block = |s: u64| layout.block_bytes(size, s).map_err(|e| e.to_string());
        let mut writer = self
            .store
            .create_without_hashes(
                local,
                root,
                u32::try_from(segments).map_err(|_| "too many segments".to_string())?,
                block(0)?,
                block(segments - 1)?,
            )
            .map_err(|e| e.to_string())?;
        let range: Range<u64> = 0..segments;
        let mut bytes = 0u64;
        let (failed, _) = read_segments(
            manifest,
            id,
            &sources,
            range,
            &self.key,
            &self.node.cluster_id(),
            |segment, blocks, expected| {
                let refs: Vec<Option<&[u8]>> = blocks.iter().map(|b| b.as_deref()).collect();
                let rebuilt = welkin_object::rebuild_lost_blocks(
                    &layout,
                    size,
                    segment,
                    &refs,
                    expected,
                    &[shard],
                )
                .map_err(|e| welkin_client::objects::ObjectError::Data(e.to_string()))?;
                bytes += rebuilt[0].len() as u64;
                writer
                    .write_block(&rebuilt[0])
                    .map_err(|e| welkin_client::objects::ObjectError::Data(e.to_string()))
            },
        )
        .map_err(|e| e.to_string())?;
        for failure in failed {
            warn!(%failure, "a source failed during repair; another was used");
        }
        writer.finish().map_err(|e| e.to_string())?;
        Ok(bytes)
    }
}
