//! Stored objects over HTTP: manifests, listings and space, read from committed state.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v1/objects/{id}` | an object's manifest, status and where its shards are ([`ObjectInfo`]) |
//! | `GET /v1/objects?owner=KEY&offset=N&limit=N` | an owner's objects (at most 256 a page) |
//! | `GET /v1/objects/degraded` | objects with a lost shard, awaiting repair |
//! | `GET /v1/objects/{id}/audit-log` | the settled audits of its shards and its repairs, newest first ([`ObjectAuditLog`]) |
//! | `GET /v1/storage` | every node's space, the cluster's totals and this node's own store |
//!
//! The manifest carries its own check: its id hashes its sizes, layout and shard roots, and
//! every block a client fetches is checked against those roots, so a client needs no proof
//! that a node answered truthfully here (a lying node can only make a read fail).

use super::{ApiError, bad_request, not_found};
use crate::{handle::NodeHandle, store::Runtime};
use axum::{
    Json,
    extract::{Path, Query, State},
};
use commonware_codec::Encode as _;
use serde::Deserialize;
use welkin_state::{
    keys,
    secrets::ValueRef,
    storage::{
        audit::{AuditEpoch, AuditRecord, Challenge},
        history::{EventKind, HISTORY_LEN, ObjectHistory},
        records::{NodeSpace, ObjectRecord, Totals},
    },
    stored::decode_u64,
};
use welkin_types::{
    Digest, PublicKey,
    api::{
        AuditLogEvent, AuditLogKind, LocalStoreInfo, NodeSpaceInfo, ObjectAuditLog, ObjectInfo,
        ObjectList, ShardInfo, StorageStatus,
    },
};

/// Most objects one listing page holds.
pub const MAX_LIST_PAGE: u64 = 256;

/// Reads an object's record and builds what the API shows of it.
pub(crate) async fn object_info<E: Runtime>(
    node: &NodeHandle<E>,
    id: &Digest,
) -> Result<Option<ObjectInfo>, ApiError> {
    let Some(bytes) = node.value(keys::object(id)).await else {
        return Ok(None);
    };
    let record = ObjectRecord::decode(&bytes).map_err(corrupt)?;
    let mut manifest = record.manifest.clone();
    let value = ValueRef {
        tx: record.put_tx,
        digest: manifest.sealed_key.digest(),
    };
    if let Ok(Some(key)) = node.sealed_value(&value).await {
        manifest.sealed_key.attach(key);
    }
    let genesis = node.genesis();
    let shards = record
        .placement
        .iter()
        .enumerate()
        .map(|(index, member)| {
            let info = genesis.nodes.get(*member as usize);
            ShardInfo {
                index: index as u16,
                root: hex::encode(record.manifest.roots[index]),
                member: *member,
                node: info.map(|n| n.name.clone()).unwrap_or_default(),
                api_address: info.map(|n| n.api_address.to_string()).unwrap_or_default(),
                stored: record.is_stored(index),
                healthy: record.is_stored(index) && record.lost & (1 << index) == 0,
            }
        })
        .collect();
    Ok(Some(ObjectInfo {
        id: hex::encode(id),
        owner: hex::encode(&record.owner),
        label: record.manifest.label.clone(),
        size: record.manifest.size,
        k: record.manifest.k,
        m: record.manifest.m,
        segment_bytes: record.manifest.segment_bytes,
        shard_bytes: record.manifest.shard_bytes(),
        status: record.status.name().into(),
        height: record.height,
        put_tx: hex::encode(record.put_tx),
        shards,
        manifest: hex::encode(manifest.encode()),
    }))
}

pub(crate) fn parse_object_id(text: &str) -> Result<Digest, ApiError> {
    welkin_types::hexser::decode_hex::<Digest>(text).map_err(|e| {
        bad_request(
            "bad_object_id",
            format!("object id must be 64 hex characters: {e}"),
        )
    })
}

/// `GET /v1/objects/{id}`.
pub async fn object<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(id): Path<String>,
) -> Result<Json<ObjectInfo>, ApiError> {
    let id = parse_object_id(&id)?;
    object_info(&node, &id)
        .await?
        .map(Json)
        .ok_or_else(|| not_found("no_object", format!("no object {}", hex::encode(id))))
}

fn corrupt(error: impl std::fmt::Display) -> ApiError {
    ApiError::new(
        axum::http::StatusCode::INTERNAL_SERVER_ERROR,
        "corrupt_state",
        error.to_string(),
    )
}

/// `GET /v1/objects/{id}/audit-log`: the object's history as the state keeps it (see
/// [`welkin_state::storage::history`]), with node names from genesis.
pub async fn audit_log<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(id): Path<String>,
) -> Result<Json<ObjectAuditLog>, ApiError> {
    let id = parse_object_id(&id)?;
    let mut values = node
        .values(vec![keys::object(&id), keys::object_history(&id)])
        .await
        .into_iter();
    let (Some(record), history) = (values.next().flatten(), values.next().flatten()) else {
        return Err(not_found(
            "no_object",
            format!(
                "no object {}: it was never stored, or was deleted (its audit log goes with it)",
                hex::encode(id)
            ),
        ));
    };
    let record = ObjectRecord::decode(&record).map_err(corrupt)?;
    let history = history
        .map(|bytes| ObjectHistory::decode(&bytes))
        .transpose()
        .map_err(corrupt)?
        .unwrap_or_default();
    let genesis = node.genesis();
    let events = history
        .events
        .into_iter()
        .map(|event| {
            let audit = matches!(event.kind, EventKind::AuditPassed | EventKind::AuditFailed);
            AuditLogEvent {
                kind: match event.kind {
                    EventKind::AuditPassed => AuditLogKind::AuditPassed,
                    EventKind::AuditFailed => AuditLogKind::AuditFailed,
                    EventKind::RepairOrdered => AuditLogKind::RepairOrdered,
                    EventKind::RepairDone => AuditLogKind::RepairDone,
                    EventKind::RepairExpired => AuditLogKind::RepairExpired,
                },
                height: event.height,
                epoch: audit.then_some(event.epoch),
                shard: event.shard,
                member: event.member,
                node: genesis
                    .nodes
                    .get(event.member as usize)
                    .map(|n| n.name.clone())
                    .unwrap_or_default(),
                reason: (!event.reason.is_empty()).then_some(event.reason),
            }
        })
        .collect();
    Ok(Json(ObjectAuditLog {
        id: hex::encode(id),
        status: record.status.name().into(),
        k: record.manifest.k,
        shards: record.placement.len() as u16,
        healthy: record.healthy_count() as u16,
        kept: HISTORY_LEN as u32,
        events,
    }))
}

/// Query of `GET /v1/objects`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// The owner's ed25519 key (hex).
    pub owner: String,
    /// The first slot to list (default 0).
    pub offset: Option<u64>,
    /// Most objects to list (default and at most 256).
    pub limit: Option<u64>,
}

/// The count of a dense list in state (absent reads as zero).
pub(crate) async fn count_at<E: Runtime>(node: &NodeHandle<E>, key: Digest) -> u64 {
    node.value(key)
        .await
        .and_then(|v| decode_u64(&v).ok())
        .unwrap_or(0)
}

/// The objects whose ids are at the state keys `slots` (entries of a dense list).
async fn objects_at<E: Runtime>(
    node: &NodeHandle<E>,
    slots: Vec<Digest>,
) -> Result<Vec<ObjectInfo>, ApiError> {
    let mut objects = Vec::with_capacity(slots.len());
    for id in node.values(slots).await.into_iter().flatten() {
        let Ok(id) = <[u8; 32]>::try_from(id.as_slice()) else {
            continue;
        };
        if let Some(info) = object_info(node, &Digest::from(id)).await? {
            objects.push(info);
        }
    }
    Ok(objects)
}

/// `GET /v1/objects/degraded`: objects with a shard lost to a failed audit or a missed upload
/// (at most [`MAX_LIST_PAGE`]), each with which shards are healthy; repair works through them.
pub async fn degraded<E: Runtime>(
    State(node): State<NodeHandle<E>>,
) -> Result<Json<Vec<ObjectInfo>>, ApiError> {
    let total = count_at(&node, keys::degraded_count()).await;
    let slots: Vec<Digest> = (0..total.min(MAX_LIST_PAGE))
        .map(keys::degraded_at)
        .collect();
    let objects = objects_at(&node, slots).await?;
    Ok(Json(objects))
}

/// `GET /v1/objects?owner=KEY`.
pub async fn list<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<ListParams>,
) -> Result<Json<ObjectList>, ApiError> {
    let owner = welkin_types::hexser::decode_hex::<PublicKey>(&params.owner).map_err(|e| {
        bad_request(
            "bad_owner",
            format!("owner must be an ed25519 public key in hex (64 characters): {e}"),
        )
    })?;
    let total = count_at(&node, keys::owned_count(&owner)).await;
    let offset = params.offset.unwrap_or(0);
    let limit = params.limit.unwrap_or(MAX_LIST_PAGE).min(MAX_LIST_PAGE);
    let slots: Vec<Digest> = (offset..total.min(offset.saturating_add(limit)))
        .map(|slot| keys::owned_at(&owner, slot))
        .collect();
    let objects = objects_at(&node, slots).await?;
    Ok(Json(ObjectList {
        owner: params.owner,
        total,
        objects,
    }))
}

/// The committed space of every node and the cluster's totals (`local` left empty).
pub(crate) async fn storage_status<E: Runtime>(node: &NodeHandle<E>) -> StorageStatus {
    let genesis = node.genesis();
    let members = genesis.nodes.len() as u32;
    let spaces = node
        .values((0..members).map(keys::storage_node).collect())
        .await;
    let counts = node
        .values((0..members).map(keys::held_count).collect())
        .await;
    let records = node
        .values((0..members).map(keys::audit_record).collect())
        .await;
    let challenges = node
        .values((0..members).map(keys::audit_challenge).collect())
        .await;
    let epoch = node
        .value(keys::audit_epoch())
        .await
        .and_then(|v| AuditEpoch::decode(&v).ok())
        .unwrap_or_default();
    let degraded = node
        .value(keys::degraded_count())
        .await
        .and_then(|v| decode_u64(&v).ok())
        .unwrap_or(0);
    let totals = node
        .value(keys::storage_totals())
        .await
        .and_then(|v| Totals::decode(&v).ok())
        .unwrap_or_default();
    let nodes = genesis
        .nodes
        .iter()
        .zip(spaces.into_iter().zip(counts))
        .zip(records.into_iter().zip(challenges))
        .enumerate()
        .map(|(member, ((info, (space, count)), (record, challenge)))| {
            let record = record
                .and_then(|v| AuditRecord::decode(&v).ok())
                .unwrap_or_default();
            let challenge = challenge
                .and_then(|v| Challenge::decode(&v).ok())
                .filter(|c| c.epoch == epoch.epoch);
            let space = space
                .and_then(|v| NodeSpace::decode(&v).ok())
                .unwrap_or_default();
            NodeSpaceInfo {
                member: member as u32,
                node: info.name.clone(),
                failure_domain: info.failure_domain.clone(),
                capacity: space.capacity,
                used: space.used,
                reserved: space.reserved,
                free_for_puts: space.free_for_puts(),
                shards: count.and_then(|v| decode_u64(&v).ok()).unwrap_or(0),
                audits_passed: record.passed,
                audits_failed: record.failed,
                reputation_percent: record.reputation_percent(),
                last_audit_failure: (!record.last_failure.is_empty())
                    .then(|| record.last_failure.clone()),
                current_audit: challenge.map(|c| c.status.name().to_string()),
            }
        })
        .collect();
    StorageStatus {
        node: genesis
            .nodes
            .iter()
            .find(|n| &n.public_key == node.public_key())
            .map(|n| n.name.clone())
            .unwrap_or_default(),
        objects: totals.objects,
        degraded,
        audit_epoch: epoch.epoch,
        bytes: totals.bytes,
        nodes,
        local: None::<LocalStoreInfo>,
    }
}
