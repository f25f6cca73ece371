//! Shard uploads and downloads over HTTP, and the storage status.
//!
//! | method and path | what |
//! |---|---|
//! | `PUT /v1/objects/{id}/shards/{i}` | upload shard `i` to the node it is placed on: the block hashes (32 bytes each, one per segment), then the blocks; answered once the shard is durable and its acknowledgement submitted |
//! | `GET /v1/objects/{id}/shards/{i}/hashes` | the shard's block hashes |
//! | `GET /v1/objects/{id}/shards/{i}?from=S&to=E` | blocks of segments `S..E` (default all), concatenated; each checked against its hash before it is sent |
//! | `GET /v1/storage` | every node's committed space and this node's own store |
//!
//! Shard requests carry a `welkin-signature` header by the object's owner (see
//! [`welkin_types::storage::RequestSignature`]).

use super::Shards;
use crate::{
    api::{
        ApiError, bad_request, not_found,
        objects::{parse_object_id, storage_status},
    },
    store::Runtime,
};
use axum::{
    Json,
    body::Body,
    extract::{Path, Query, State},
    http::{HeaderMap, StatusCode, header},
    response::{IntoResponse, Response},
};
use futures::StreamExt as _;
use serde::Deserialize;
use welkin_shards::{CreateError, ReadError, ShardId, WriteError};
use welkin_state::{keys, storage::records::ObjectRecord};
use welkin_types::{
    Digest,
    api::{LocalStoreInfo, ShardUploadReply, StorageStatus},
    storage::{REQUEST_HEADER, RequestSignature},
};

/// Most segments a shard upload may list (32 MiB of hashes).
const MAX_SEGMENTS: u64 = 1 << 20;
/// Blocks in flight between the network and the disk writer.
const WRITE_QUEUE: usize = 4;

fn forbidden(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::FORBIDDEN, "forbidden", message)
}

fn internal(message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "internal", message)
}

impl<E: Runtime> Shards<E> {
    /// The committed record of `object` and a check that `shard` is placed here and the
    /// request is signed by the owner.
    async fn authorize(
        &self,
        headers: &HeaderMap,
        method: &str,
        path: &str,
        object: &Digest,
        shard: u16,
    ) -> Result<ObjectRecord, ApiError> {
        let record = self.node.value(keys::object(object)).await.ok_or_else(|| {
            not_found(
                "no_object",
                format!(
                    "no object {} is committed (commit its manifest first)",
                    hex::encode(object)
                ),
            )
        })?;
        let record = ObjectRecord::decode(&record).map_err(|e| internal(e.to_string()))?;
        let header = headers
            .get(REQUEST_HEADER)
            .and_then(|v| v.to_str().ok())
            .ok_or_else(|| {
                ApiError::new(
                    StatusCode::UNAUTHORIZED,
                    "unsigned",
                    format!("shard requests need a {REQUEST_HEADER} header by the object's owner"),
                )
            })?;
        let signature = RequestSignature::parse(header)
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
        signature
            .verify(&self.node.cluster_id(), method, path, self.now_ms())
            .map_err(|e| ApiError::new(StatusCode::UNAUTHORIZED, "bad_signature", e.to_string()))?;
        // The owner reads and writes; a cluster node may read (to rebuild a lost shard).
        let member = method == "GET" && self.node.genesis().index_of(&signature.key).is_some();
        if signature.key != record.owner && !member {
            return Err(forbidden(format!(
                "object {} belongs to another key",
                hex::encode(object)
            )));
        }
        match record.placement.get(usize::from(shard)) {
            None => Err(not_found(
                "no_shard",
                format!(
                    "object {} has {} shards, not {}",
                    hex::encode(object),
                    record.placement.len(),
                    shard + 1
                ),
            )),
            Some(member) if *member != self.member => {
                let node = self.node.genesis().nodes.get(*member as usize);
                Err(ApiError::new(
                    StatusCode::MISDIRECTED_REQUEST,
                    "wrong_node",
                    format!(
                        "shard {shard} is placed on node {} (http://{}), not here",
                        node.map(|n| n.name.as_str()).unwrap_or("?"),
                        node.map(|n| n.api_address.to_string()).unwrap_or_default()
                    ),
                ))
            }
            Some(_) => Ok(record),
        }
    }
}

fn parse_shard(object: &str, shard: &str) -> Result<(Digest, u16), ApiError> {
    let object = parse_object_id(object)?;
    let shard = shard.parse::<u16>().map_err(|_| {
        bad_request(
            "bad_shard",
            format!("shard index must be a number below 64, not {shard:?}"),
        )
    })?;
    Ok((object, shard))
}

fn shard_id(object: &Digest, index: u16) -> ShardId {
    let mut bytes = [0u8; 32];
    bytes.copy_from_slice(object.as_ref());
    ShardId {
        object: bytes,
        index,
    }
}

/// `PUT /v1/objects/{id}/shards/{i}`.
pub async fn upload<E: Runtime>(
    State(shards): State<Shards<E>>,
    Path((object, shard)): Path<(String, String)>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let path = format!("/v1/objects/{object}/shards/{shard}");
    let (object, shard) = parse_shard(&object, &shard)?;
    let record = shards
        .authorize(&headers, "PUT", &path, &object, shard)
        .await?;
    let id = shard_id(&object, shard);
    let manifest = &record.manifest;
    let segments = manifest.segments();
    if segments > MAX_SEGMENTS {
        return Err(bad_request(
            "too_many_segments",
            format!("{segments} segments; a shard may have at most {MAX_SEGMENTS}"),
        ));
    }
    let hash_bytes = segments * 32;
    let expected = hash_bytes + manifest.shard_bytes();
    if let Some(length) = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok())
        && length != expected
    {
        return Err(bad_request(
            "bad_length",
            format!(
                "shard {shard} upload must be {expected} bytes ({segments} block hashes, then the blocks), not {length}"
            ),
        ));
    }
    if shards.store.contains(&id) {
        let ack_tx = shards.acknowledge(object, vec![shard], true).await;
        return Ok((
            StatusCode::OK,
            Json(ShardUploadReply {
                object: hex::encode(object),
                shard,
                bytes: 0,
                ack_tx,
            }),
        )
            .into_response());
    }
    let Ok(_permit) = shards.uploads.clone().try_acquire_owned() else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            "this node takes no more uploads at the moment; retry shortly",
        ));
    };
    let mut stream = body.into_data_stream();
    let mut pending: Vec<u8> = Vec::new();
    // The hash list first.
    let hash_len = usize::try_from(hash_bytes).map_err(|_| internal("hash list too large"))?;
    while pending.len() < hash_len {
        match stream.next().await {
            Some(Ok(chunk)) => pending.extend_from_slice(&chunk),
            Some(Err(e)) => return Err(bad_request("bad_body", format!("upload failed: {e}"))),
            None => {
                return Err(bad_request(
                    "short_body",
                    format!(
                        "body ended inside the block hash list ({} of {hash_len} bytes)",
                        pending.len()
                    ),
                ));
            }
        }
    }
    let rest = pending.split_off(hash_len);
    let hashes: Vec<[u8; 32]> = pending
        .chunks_exact(32)
        .map(|h| h.try_into().expect("32-byte chunks"))
        .collect();
    let root: [u8; 32] = record.manifest.roots[usize::from(shard)]
        .as_ref()
        .try_into()
        .expect("digests are 32 bytes");
    let block_len = manifest.block_bytes(0);
    let final_len = manifest.block_bytes(segments - 1);
    let store = shards.store.clone();
    let writer = tokio::task::spawn_blocking(move || {
        store.create(id, root, block_len as u32, final_len as u32, hashes)
    })
    .await
    .map_err(|e| internal(e.to_string()))?
    .map_err(|e| match e {
        CreateError::RootMismatch { .. } => ApiError::new(
            StatusCode::UNPROCESSABLE_ENTITY,
            "bad_hashes",
            format!("the block hashes do not form shard {shard}'s root in the manifest"),
        ),
        other => ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            "cannot_store",
            other.to_string(),
        ),
    })?;
    let (blocks, mut receiver) = tokio::sync::mpsc::channel::<Vec<u8>>(WRITE_QUEUE);
    let disk = tokio::task::spawn_blocking(move || {
        let mut writer = writer;
        while let Some(block) = receiver.blocking_recv() {
            writer.write_block(&block)?;
        }
        Ok::<_, WriteError>(writer)
    });
    let mut next = 0u64;
    let mut block = Vec::with_capacity(block_len as usize);
    let mut received = 0u64;
    let mut feed =
        |data: &[u8], block: &mut Vec<u8>, out: &mut Vec<Vec<u8>>| -> Result<(), ApiError> {
            let mut data = data;
            while !data.is_empty() {
                if next >= segments {
                    return Err(bad_request(
                        "long_body",
                        format!("body is longer than shard {shard} ({expected} bytes)"),
                    ));
                }
                let want = manifest.block_bytes(next) as usize - block.len();
                let take = want.min(data.len());
                block.extend_from_slice(&data[..take]);
                data = &data[take..];
                if block.len() == manifest.block_bytes(next) as usize {
                    out.push(std::mem::replace(
                        block,
                        Vec::with_capacity(block_len as usize),
                    ));
                    next += 1;
                }
            }
            Ok(())
        };
    let mut ready = Vec::new();
    let mut failure = feed(&rest, &mut block, &mut ready).err();
    received += rest.len() as u64;
    'body: while failure.is_none() {
        for full in ready.drain(..) {
            if blocks.send(full).await.is_err() {
                break 'body; // the writer stopped: its error is reported below
            }
        }
        match stream.next().await {
            Some(Ok(chunk)) => {
                received += chunk.len() as u64;
                failure = feed(&chunk, &mut block, &mut ready).err();
            }
            Some(Err(e)) => {
                failure = Some(bad_request("bad_body", format!("upload failed: {e}")));
            }
            None => break,
        }
    }
    drop(blocks);
    let written = disk.await.map_err(|e| internal(e.to_string()))?;
    let writer = match written {
        Err(error) => {
            return Err(ApiError::new(
                StatusCode::UNPROCESSABLE_ENTITY,
                "bad_block",
                error.to_string(),
            ));
        }
        Ok(writer) => writer,
    };
    if let Some(failure) = failure {
        return Err(failure); // dropping the writer removes its temporary file
    }
    if next < segments {
        return Err(bad_request(
            "short_body",
            format!("body ended after {next} of {segments} blocks"),
        ));
    }
    tokio::task::spawn_blocking(move || writer.finish())
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(|e| internal(e.to_string()))?;
    let ack_tx = shards.acknowledge(object, vec![shard], true).await;
    Ok((
        StatusCode::CREATED,
        Json(ShardUploadReply {
            object: hex::encode(object),
            shard,
            bytes: received - hash_bytes.min(received),
            ack_tx,
        }),
    )
        .into_response())
}

fn read_error(error: ReadError) -> ApiError {
    match error {
        ReadError::NotFound { .. } => not_found("shard_missing", error.to_string()),
        ReadError::OutOfRange { .. } => bad_request("bad_range", error.to_string()),
        ReadError::Corrupt { .. }
        | ReadError::CorruptHashes { .. }
        | ReadError::Quarantined { .. } => {
            ApiError::new(StatusCode::GONE, "shard_corrupt", error.to_string())
        }
        other => internal(other.to_string()),
    }
}

/// `GET /v1/objects/{id}/shards/{i}/hashes`.
pub async fn download_hashes<E: Runtime>(
    State(shards): State<Shards<E>>,
    Path((object, shard)): Path<(String, String)>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/v1/objects/{object}/shards/{shard}/hashes");
    let (object, shard) = parse_shard(&object, &shard)?;
    shards
        .authorize(&headers, "GET", &path, &object, shard)
        .await?;
    let id = shard_id(&object, shard);
    let store = shards.store.clone();
    let hashes = tokio::task::spawn_blocking(move || store.block_hashes(&id))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(read_error)?;
    Ok((
        [(header::CONTENT_TYPE, "application/octet-stream")],
        hashes.as_flattened().to_vec(),
    )
        .into_response())
}

/// Query of a block download.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RangeParams {
    /// The first segment (default 0).
    pub from: Option<u64>,
    /// The segment after the last (default: the shard's end).
    pub to: Option<u64>,
}

/// `GET /v1/objects/{id}/shards/{i}?from=S&to=E`.
pub async fn download<E: Runtime>(
    State(shards): State<Shards<E>>,
    Path((object, shard)): Path<(String, String)>,
    Query(range): Query<RangeParams>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let path = format!("/v1/objects/{object}/shards/{shard}");
    let (object, shard) = parse_shard(&object, &shard)?;
    let record = shards
        .authorize(&headers, "GET", &path, &object, shard)
        .await?;
    let segments = record.manifest.segments();
    let from = range.from.unwrap_or(0);
    let to = range.to.unwrap_or(segments).min(segments);
    if from >= to {
        return Err(bad_request(
            "bad_range",
            format!("segments {from}..{to} are empty; the shard has {segments}"),
        ));
    }
    let id = shard_id(&object, shard);
    // The first block is read before answering, so a missing or corrupt shard is a clear
    // error rather than a cut stream.
    let store = shards.store.clone();
    let first = tokio::task::spawn_blocking(move || store.read_block(&id, from as u32))
        .await
        .map_err(|e| internal(e.to_string()))?
        .map_err(read_error)?;
    let length: u64 = (from..to).map(|s| record.manifest.block_bytes(s)).sum();
    let (sender, receiver) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(2);
    let store = shards.store.clone();
    tokio::task::spawn_blocking(move || {
        if sender.blocking_send(Ok(first)).is_err() {
            return;
        }
        for segment in from + 1..to {
            // A corrupt block ends the stream early: the client sees a short body and reads
            // that segment from other shards.
            let block = store
                .read_block(&id, segment as u32)
                .map_err(|e| std::io::Error::other(e.to_string()));
            let failed = block.is_err();
            if sender.blocking_send(block).is_err() || failed {
                return;
            }
        }
    });
    let stream = tokio_stream_of(receiver);
    Ok((
        [
            (header::CONTENT_TYPE, "application/octet-stream".to_string()),
            (header::CONTENT_LENGTH, length.to_string()),
        ],
        Body::from_stream(stream),
    )
        .into_response())
}

fn tokio_stream_of(
    mut receiver: tokio::sync::mpsc::Receiver<Result<Vec<u8>, std::io::Error>>,
) -> impl futures::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    futures::stream::poll_fn(move |cx| receiver.poll_recv(cx))
}

/// `GET /v1/storage`.
pub async fn storage<E: Runtime>(State(shards): State<Shards<E>>) -> Json<StorageStatus> {
    let mut status = storage_status(&shards.node).await;
    let store = shards.store.clone();
    let local = tokio::task::spawn_blocking(move || (store.usage(), store.corrupt_shards())).await;
    if let Ok((usage, corrupt)) = local {
        status.local = Some(LocalStoreInfo {
            shards: usage.shards,
            bytes: usage.used,
            corrupt: corrupt.iter().map(ToString::to_string).collect(),
            directory: shards.directory.display().to_string(),
        });
    }
    Json(status)
}
