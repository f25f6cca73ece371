//! The HTTP API of a node (axum), a thin front end over [`NodeHandle`].
//!
//! | method and path | what |
//! |---|---|
//! | `POST /v1/tx?wait=true&timeout_ms=N` | submit one transaction, optionally wait for its receipt |
//! | `POST /v1/txs?wait=true&timeout_ms=N` | submit many transactions |
//! | `GET /v1/tx/{id}` | transaction status, receipt, certified checkpoint |
//! | `GET /v1/block/{height}` | a finalized block with its finalization certificate |
//! | `GET /v1/checkpoint/{height}` | the certified checkpoint at a height (`latest` allowed) |
//! | `GET /v1/status` | cluster status as this node sees it |
//! | `GET /v1/log/receipt/{id}` | a self-contained, offline-checkable log receipt |
//! | `GET /v1/log/checkpoint` (or `?size=N`, `?height=H`) | a certified checkpoint as a C2SP signed note, with node cosignatures |
//! | `GET /v1/log/tile/{L}/{N}[.p/{W}]` | C2SP tlog tile: hashes of tree level `8L` |
//! | `GET /v1/log/tile/entries/{N}[.p/{W}]` | C2SP entry bundle: 256 entries, each with a 2-byte length |
//! | `GET /v1/log/proof/inclusion?index=I&size=N` (or `tx=ID`) | RFC 6962 inclusion proof |
//! | `GET /v1/log/proof/consistency?old=M&new=N` | RFC 6962 consistency proof |
//! | `GET /v1/log/entries?start=S&end=E` | log entries (at most 256) |
//! | `GET /v1/state/proof?key=K` (or `tx=`, `prefix=`, `owner=&kv=`) | a state value with its proof under a certified checkpoint (binary): see [`state`] |
//! | `GET /v1/id/...`, `GET /oobi/{prefix}` | KERI identifiers: see [`identity`] |
//! | `GET /v1/release/{id}` | a committed secret read's grant and envelopes, for native readers (`welkin kv get`) |
//! | `GET /v1/time`, `/v1/time/status`, `/v1/time/stream` | certified time: see [`time`] |
//! | `GET /v1/objects/...`, `PUT`/`GET /v1/objects/{id}/shards/{i}`, `GET /v1/storage` | stored objects: see [`objects`] |
//! | `GET /v1/genesis` | the genesis file this node runs (check its cluster id before trusting it) |
//! | `GET /v1/health` | liveness |
//! | any other `/v1/...` | the Vault-compatible secrets API (KV v2, tokens, policies, mounts): see [`vault`] |
//! | `GET /metrics` | Prometheus metrics: commonware's runtime metrics and the stage histograms of `tx_stage_seconds` and `block_stage_seconds` |
//!
//! Every error is `{"error": {"code": ..., "message": ...}}` with a stable code. Bodies are
//! capped; nothing a client sends can panic the node.

pub mod identity;
pub mod objects;
pub mod server;
pub mod state;
pub mod time;
mod vault;

use crate::{
    handle::{NodeHandle, SubmitError, Submitted},
    store::Runtime,
};
use axum::{
    Json, Router,
    body::Bytes,
    extract::{DefaultBodyLimit, Path, Query, State, rejection::BytesRejection},
    http::StatusCode,
    response::{IntoResponse, Response},
    routing::{get, post},
};
use commonware_codec::Encode;
use serde::Deserialize;
use std::time::Duration;
use welkin_types::{
    SignedTransaction, TxError, TxId,
    api::{
        BatchItem, BatchResult, BlockInfo, BlockTx, ClusterStatus, ErrorBody, ErrorDetail,
        LOG_RECEIPT_KIND, LogEntries, LogProof, LogReceipt, SubmitBatchRequest, SubmitRequest,
        TxState, TxStatus,
    },
    limits::{MAX_LOG_RANGE, MAX_SUBMIT_BATCH, MAX_TX_BYTES},
};

/// Largest request body (8 MiB): thousands of typical transactions in hex. A batch of
/// maximal transactions must be split.
pub const MAX_BODY_BYTES: usize = 8 * 1024 * 1024;
/// Longest a client may ask to wait for commit.
pub const MAX_WAIT: Duration = Duration::from_secs(60);
/// Wait used when a client asks to wait without a timeout.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(10);

/// An API error: an HTTP status, a stable code and a message.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    code: &'static str,
    message: String,
}

impl ApiError {
    pub(crate) fn new(status: StatusCode, code: &'static str, message: impl Into<String>) -> Self {
        Self {
            status,
            code,
            message: message.into(),
        }
    }

    fn detail(&self) -> ErrorDetail {
        ErrorDetail {
            code: self.code.into(),
            message: self.message.clone(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(ErrorBody {
                error: self.detail(),
            }),
        )
            .into_response()
    }
}

impl From<SubmitError> for ApiError {
    fn from(error: SubmitError) -> Self {
        let status = match &error {
            SubmitError::Full(_) | SubmitError::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
            SubmitError::Invalid(TxError::TooLarge(_)) => StatusCode::PAYLOAD_TOO_LARGE,
            SubmitError::Replay { .. } => StatusCode::CONFLICT,
            SubmitError::Unauthorized(_) | SubmitError::UnknownToken | SubmitError::NotANode => {
                StatusCode::FORBIDDEN
            }
            _ => StatusCode::UNPROCESSABLE_ENTITY,
        };
        ApiError::new(status, error.code(), error.to_string())
    }
}

fn body_error(rejection: BytesRejection) -> ApiError {
    let status = rejection.status();
    if status == StatusCode::PAYLOAD_TOO_LARGE {
        ApiError::new(
            status,
            "body_too_large",
            format!("request body exceeds {MAX_BODY_BYTES} bytes"),
        )
    } else {
        ApiError::new(status, "bad_body", rejection.body_text())
    }
}

fn parse_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ApiError> {
    serde_json::from_slice(body).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_json",
            format!("invalid JSON body: {e}"),
        )
    })
}

fn parse_tx(text: &str) -> Result<SignedTransaction, ApiError> {
    if text.len() > MAX_TX_BYTES * 2 {
        return Err(SubmitError::Invalid(TxError::TooLarge(text.len() / 2)).into());
    }
    let bytes = hex::decode(text.trim()).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_hex",
            format!("transaction is not valid hex: {e}"),
        )
    })?;
    SignedTransaction::from_bytes(&bytes).map_err(|e| SubmitError::Invalid(e).into())
}

fn parse_id(text: &str) -> Result<TxId, ApiError> {
    welkin_types::hexser::decode_hex::<TxId>(text).map_err(|e| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_id",
            format!("transaction id must be 64 hex characters: {e}"),
        )
    })
}

/// Query parameters of the submit endpoints.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct WaitParams {
    /// Wait for the receipt before answering.
    #[serde(default)]
    pub wait: bool,
    /// How long to wait, in ms (default 10 s, at most 60 s).
    pub timeout_ms: Option<u64>,
}

impl WaitParams {
    fn timeout(&self) -> Duration {
        self.timeout_ms
            .map(Duration::from_millis)
            .unwrap_or(DEFAULT_WAIT)
            .min(MAX_WAIT)
    }
}

/// Builds the router over a node handle and its shard service.
pub fn router_with_shards<E: Runtime>(
    node: NodeHandle<E>,
    shards: crate::objects::Shards<E>,
) -> Router {
    use crate::objects;
    Router::new()
        .route(
            "/v1/objects/{id}/shards/{shard}",
            axum::routing::put(objects::upload::<E>).get(objects::download::<E>),
        )
        .route(
            "/v1/objects/{id}/shards/{shard}/hashes",
            get(objects::download_hashes::<E>),
        )
        .route("/v1/storage", get(objects::storage::<E>))
        .with_state(shards)
        .merge(router(node))
}

/// Builds the router over a node handle (without the shard routes).
pub fn router<E: Runtime>(node: NodeHandle<E>) -> Router {
    Router::new()
        .route("/v1/tx", post(submit_one::<E>))
        .route("/v1/txs", post(submit_batch::<E>))
        .route("/v1/tx/{id}", get(tx_status::<E>))
        .route("/v1/block/{height}", get(block::<E>))
        .route("/v1/checkpoint/{height}", get(checkpoint::<E>))
        .route("/v1/status", get(status::<E>))
        .route("/v1/log/receipt/{id}", get(log_receipt::<E>))
        .route("/v1/log/checkpoint", get(checkpoint_note::<E>))
        .route("/v1/log/proof/inclusion", get(inclusion::<E>))
        .route("/v1/log/proof/consistency", get(consistency::<E>))
        .route("/v1/log/entries", get(entries::<E>))
        .route("/v1/log/tile/{*path}", get(tile::<E>))
        .route("/v1/state/proof", get(state::proof::<E>))
        .route("/v1/id/{prefix}", get(identity::key_state::<E>))
        .route("/v1/id/{prefix}/kel", get(identity::kel::<E>))
        .route("/v1/id/{prefix}/kel.cesr", get(identity::kel_cesr::<E>))
        .route("/v1/id/{prefix}/duplicity", get(identity::duplicity::<E>))
        .route("/v1/id/{prefix}/superseded", get(identity::superseded::<E>))
        .route("/v1/id/{prefix}/receipts", get(identity::receipts::<E>))
        .route("/v1/id/{prefix}/pending", get(identity::pending::<E>))
        .route("/v1/id/witnesses", get(identity::witnesses::<E>))
        .route("/oobi/{prefix}", get(identity::oobi::<E>))
        .route("/v1/health", get(health::<E>))
        .route("/metrics", get(metrics::<E>))
        .route("/v1/genesis", get(genesis::<E>))
        .route("/v1/cluster/key", get(cluster_key::<E>))
        .route("/v1/cluster/keygen", get(keygen_status::<E>))
        .route("/v1/cluster/epoch", get(epoch_status::<E>))
        .route("/v1/release/{id}", get(release::<E>))
        .route("/v1/time", get(time::now::<E>))
        .route("/v1/time/status", get(time::status::<E>))
        .route("/v1/time/stream", get(time::stream::<E>))
        .route("/v1/objects", get(objects::list::<E>))
        .route("/v1/objects/degraded", get(objects::degraded::<E>))
        .route("/v1/objects/{id}", get(objects::object::<E>))
        .route("/v1/objects/{id}/audit-log", get(objects::audit_log::<E>))
        // Every other path is Vault's (its own 404 included), so Vault clients work unchanged.
        .fallback(vault::dispatch::<E>)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(node)
}

async fn status_of<E: Runtime>(node: &NodeHandle<E>, id: TxId) -> TxStatus {
    let tx_id = hex::encode(id);
    if let Some(receipt) = node.receipt(id).await {
        return committed_status(node, id, receipt).await;
    }
    let state = if node.is_pending(&id) {
        TxState::Pending
    } else {
        TxState::Unknown
    };
    TxStatus {
        tx_id,
        state,
        receipt: None,
        checkpoint: None,
        detail: None,
    }
}

/// The status of a committed transaction: its receipt, the certified checkpoint of its
/// height, and why it did not take effect if it did not.
async fn committed_status<E: Runtime>(
    node: &NodeHandle<E>,
    id: TxId,
    receipt: welkin_types::Receipt,
) -> TxStatus {
    let checkpoint = node.checkpoint(receipt.height).await.map(|c| c.to_hex());
    let detail = if receipt.outcome.is_applied() {
        None
    } else {
        node.value(welkin_state::keys::outcome_detail(&id))
            .await
            .map(|d| String::from_utf8_lossy(&d).into_owned())
    };
    TxStatus {
        tx_id: hex::encode(id),
        state: TxState::Committed,
        receipt: Some(receipt),
        checkpoint,
        detail,
    }
}

fn timeout_error(id: TxId, timeout: Duration) -> ApiError {
    ApiError::new(
        StatusCode::GATEWAY_TIMEOUT,
        "timeout",
        format!(
            "transaction {} not committed within {} ms; poll GET /v1/tx/{}",
            hex::encode(id),
            timeout.as_millis(),
            hex::encode(id)
        ),
    )
}

fn pending_status(id: TxId) -> TxStatus {
    TxStatus {
        tx_id: hex::encode(id),
        state: TxState::Pending,
        receipt: None,
        checkpoint: None,
        detail: None,
    }
}

/// Submits `txs`; with `wait`, waits (until one shared deadline) for the receipts of those
/// admitted. A waiter is registered only after admission, checked against a receipt that
/// may have arrived in between, and dropped on every path (receipt, timeout, or the client
/// going away, which drops this future).
async fn submit_and_wait<E: Runtime>(
    node: &NodeHandle<E>,
    txs: Vec<SignedTransaction>,
    params: &WaitParams,
    arrived: std::time::SystemTime,
) -> Vec<Result<TxStatus, ApiError>> {
    let ids: Vec<TxId> = txs.iter().map(SignedTransaction::id).collect();
    let submitted = node.submit_arrived(txs, arrived).await;
    let mut waits = Vec::with_capacity(ids.len());
    for (id, submitted) in ids.into_iter().zip(submitted) {
        let wait = match submitted {
            Err(error) => Err(ApiError::from(error)),
            Ok(Submitted::Committed(_)) => Ok((id, None, true)),
            Ok(Submitted::Pending) if params.wait => match node.subscribe(id) {
                Ok(subscription) => Ok((id, Some(subscription), false)),
                Err(full) => Err(ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "too_many_waiters",
                    full.to_string(),
                )),
            },
            Ok(Submitted::Pending) => Ok((id, None, false)),
        };
        waits.push(wait);
    }
    let deadline = tokio::time::Instant::now() + params.timeout();
    let mut results = Vec::with_capacity(waits.len());
    for wait in waits {
        let status = match wait {
            Err(error) => Err(error),
            Ok((id, _, true)) => Ok(status_of(node, id).await),
            Ok((id, None, false)) => Ok(pending_status(id)),
            Ok((id, Some(subscription), false)) => {
                // Committed between admission and subscription (or while this request waited
                // for an earlier transaction of its batch)?
                if node.receipt(id).await.is_some() {
                    node.acknowledged(&id);
                    Ok(status_of(node, id).await)
                } else {
                    match tokio::time::timeout_at(deadline, subscription).await {
                        Ok(Some(_)) => {
                            node.acknowledged(&id);
                            Ok(status_of(node, id).await)
                        }
                        _ => Err(timeout_error(id, params.timeout())),
                    }
                }
            }
        };
        results.push(status);
    }
    results
}

async fn submit_one<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<WaitParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, ApiError> {
    let arrived = std::time::SystemTime::now();
    let body = body.map_err(body_error)?;
    let request: SubmitRequest = parse_json(&body)?;
    let tx = parse_tx(&request.tx)?;
    let mut results = submit_and_wait(&node, vec![tx], &params, arrived).await;
    let status = results.pop().expect("one result per transaction")?;
    let code = if status.state == TxState::Committed {
        StatusCode::OK
    } else {
        StatusCode::ACCEPTED
    };
    Ok((code, Json(status)).into_response())
}

async fn submit_batch<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<WaitParams>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<BatchResult>, ApiError> {
    let arrived = std::time::SystemTime::now();
    let body = body.map_err(body_error)?;
    let request: SubmitBatchRequest = parse_json(&body)?;
    if request.txs.len() > MAX_SUBMIT_BATCH {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "batch_too_large",
            format!(
                "{} transactions; a batch holds at most {MAX_SUBMIT_BATCH}",
                request.txs.len()
            ),
        ));
    }
    let mut parsed = Vec::with_capacity(request.txs.len());
    let mut errors = Vec::new();
    for (index, text) in request.txs.iter().enumerate() {
        match parse_tx(text) {
            Ok(tx) => parsed.push(tx),
            Err(error) => errors.push((index, error)),
        }
    }
    let mut statuses = submit_and_wait(&node, parsed, &params, arrived)
        .await
        .into_iter();
    let mut errors = errors.into_iter().peekable();
    let mut results = Vec::with_capacity(request.txs.len());
    for index in 0..request.txs.len() {
        let item = if errors.peek().is_some_and(|(i, _)| *i == index) {
            let (_, error) = errors.next().expect("peeked");
            BatchItem {
                status: None,
                error: Some(error.detail()),
            }
        } else {
            match statuses.next().expect("one status per parsed transaction") {
                Ok(status) => BatchItem {
                    status: Some(status),
                    error: None,
                },
                Err(error) => BatchItem {
                    status: None,
                    error: Some(error.detail()),
                },
            }
        };
        results.push(item);
    }
    Ok(Json(BatchResult { results }))
}

/// `GET /v1/genesis`: the genesis file this node runs.
/// `GET /v1/release/{id}`: what this node holds for committed read `id`: its grant (version,
/// target, where the sealed value is and its bytes) and every member's envelope, sealed to the reader's one-time
/// key. Only the reader can open the envelopes; it checks every partial itself.
async fn release<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(id): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let id = parse_id(&id)?;
    let Some((release, _)) = node.release(&id) else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "no_release",
            format!(
                "this node holds no release for read {}: not committed yet, not allowed, or \
                 expired (reads are kept for a minute)",
                hex::encode(id)
            ),
        ));
    };
    let grant = match release.grant {
        None => None,
        Some(grant) => {
            let sealed = match release.value {
                Some(bytes) => Some(bytes),
                None => node
                    .sealed_value(&grant.sealed)
                    .await
                    .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "storage", e))?,
            };
            Some(serde_json::json!({
                "height": grant.height,
                "version": grant.version,
                "target": hex::encode(grant.target),
                "reader": hex::encode(grant.reader),
                "value_tx": hex::encode(grant.sealed.tx),
                "value_digest": hex::encode(grant.sealed.digest),
                // Absent once the value is destroyed on this node.
                "sealed": sealed.map(hex::encode),
            }))
        }
    };
    let envelopes: serde_json::Map<String, serde_json::Value> = release
        .envelopes
        .iter()
        .map(|(index, envelope)| (index.to_string(), hex::encode(envelope).into()))
        .collect();
    Ok(Json(serde_json::json!({
        "read": hex::encode(id),
        "grant": grant,
        "envelopes": envelopes,
    })))
}

async fn genesis<E: Runtime>(State(node): State<NodeHandle<E>>) -> Response {
    (
        [(axum::http::header::CONTENT_TYPE, "application/json")],
        node.genesis().to_json(),
    )
        .into_response()
}

/// `GET /v1/cluster/key`: the proof of a dealerless cluster's key (the dealer logs its key
/// generation selected). 503 while the key is being generated; 404 for a cluster whose key
/// a trusted dealer made (its genesis file holds the key).
async fn cluster_key<E: Runtime>(
    State(node): State<NodeHandle<E>>,
) -> Result<Json<welkin_types::api::ClusterKeyProof>, ApiError> {
    match key_proof(&node).await? {
        Some(proof) => Ok(Json(proof)),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "dealt_key",
            "this cluster's key was dealt at genesis: the genesis file holds it",
        )),
    }
}

/// `GET /v1/cluster/epoch`: the epoch as this node's state records it.
async fn epoch_status<E: Runtime>(
    State(node): State<NodeHandle<E>>,
) -> Result<Json<welkin_types::api::EpochStatus>, ApiError> {
    let genesis = node.genesis();
    let epochs = match node.value(welkin_state::keys::epoch()).await {
        Some(bytes) => welkin_state::epochs::EpochState::decode(&bytes).map_err(|e| {
            ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", e.to_string())
        })?,
        None => welkin_state::epochs::EpochState::default(),
    };
    // The roster: genesis nodes, then those that joined.
    let roster: Vec<(welkin_types::PublicKey, String)> = genesis
        .nodes
        .iter()
        .chain(&epochs.joined)
        .map(|n| (n.public_key.clone(), n.name.clone()))
        .collect();
    let name = |position: u32| {
        roster
            .get(position as usize)
            .map_or_else(|| format!("node {position}"), |(_, name)| name.clone())
    };
    let name_of = |key: &welkin_types::PublicKey| {
        roster.iter().find(|(k, _)| k == key).map_or_else(
            || {
                // A node admitted for this resharing: its name is in its request.
                hex::encode(key.as_ref())
            },
            |(_, name)| name.clone(),
        )
    };
    let members = (0..roster.len() as u32)
        .filter(|p| !epochs.retired.contains(p))
        .map(name)
        .collect();
    let reshare = epochs
        .reshare
        .as_ref()
        .map(|r| welkin_types::api::ReshareStatus {
            round: r.round,
            opened_height: r.opened_height,
            dealers: r.dealers.iter().map(|p| name(*p)).collect(),
            players: r.players.iter().map(name_of).collect(),
            logs: r.logs.iter().map(|(p, _)| name(*p)).collect(),
        });
    Ok(Json(welkin_types::api::EpochStatus {
        epoch: epochs.epoch,
        start_height: epochs.start_height,
        epoch_blocks: genesis.epoch_blocks(),
        members,
        retired: epochs.retired.iter().map(|p| name(*p)).collect(),
        reshare,
        failures: epochs.failures,
    }))
}

/// `GET /v1/cluster/keygen`: the key generation as this node's state records it.
async fn keygen_status<E: Runtime>(
    State(node): State<NodeHandle<E>>,
) -> Result<Json<welkin_types::api::KeygenStatus>, ApiError> {
    let genesis = node.genesis();
    let name = |index: u32| {
        genesis
            .nodes
            .get(index as usize)
            .map_or_else(|| format!("member {index}"), |n| n.name.clone())
    };
    let name_of = |key: &welkin_types::PublicKey| {
        genesis
            .nodes
            .iter()
            .find(|n| &n.public_key == key)
            .map_or_else(|| hex::encode(key.as_ref()), |n| n.name.clone())
    };
    let corrupt = |e: welkin_state::stored::StoredError| {
        ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", e.to_string())
    };
    if genesis.polynomial.is_some() {
        return Ok(Json(welkin_types::api::KeygenStatus {
            state: "dealt".into(),
            round: 0,
            started_ms: None,
            height: None,
            logs: Vec::new(),
            revealed: Vec::new(),
            excluded: Vec::new(),
            failures: Vec::new(),
        }));
    }
    if let Some(bytes) = node.value(welkin_state::keys::cluster_key()).await {
        let generated = welkin_state::keygen::GeneratedKey::decode(&bytes).map_err(corrupt)?;
        let output = generated.output(genesis.nodes.len()).map_err(corrupt)?;
        return Ok(Json(welkin_types::api::KeygenStatus {
            state: "generated".into(),
            round: generated.round,
            started_ms: None,
            height: Some(generated.height),
            logs: output.dealers().iter().map(name_of).collect(),
            revealed: output.revealed().iter().map(name_of).collect(),
            excluded: generated.excluded.iter().map(|i| name(*i)).collect(),
            failures: Vec::new(),
        }));
    }
    let bytes = node
        .value(welkin_state::keys::keygen())
        .await
        .ok_or_else(|| {
            ApiError::new(
                StatusCode::INTERNAL_SERVER_ERROR,
                "corrupt",
                "no key and no key generation in the state",
            )
        })?;
    let keygen = welkin_state::keygen::Keygen::decode(&bytes).map_err(corrupt)?;
    Ok(Json(welkin_types::api::KeygenStatus {
        state: "generating".into(),
        round: keygen.round,
        started_ms: Some(keygen.started_ms),
        height: None,
        logs: keygen.logs.iter().map(|(i, _)| name(*i)).collect(),
        revealed: Vec::new(),
        excluded: keygen.excluded.iter().map(|i| name(*i)).collect(),
        failures: keygen.failures,
    }))
}

/// The proof of a dealerless cluster's key (`None` for a dealt key); 503 while it is being
/// generated.
async fn key_proof<E: Runtime>(
    node: &NodeHandle<E>,
) -> Result<Option<welkin_types::api::ClusterKeyProof>, ApiError> {
    if node.genesis().polynomial.is_some() {
        return Ok(None);
    }
    let Some(bytes) = node.value(welkin_state::keys::cluster_key()).await else {
        return Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "no_cluster_key",
            "the cluster key is being generated (within seconds of the cluster's first \
             start); retry shortly",
        ));
    };
    let generated = welkin_state::keygen::GeneratedKey::decode(&bytes)
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "corrupt", e.to_string()))?;
    Ok(Some(welkin_types::api::ClusterKeyProof {
        round: generated.round,
        height: generated.height,
        logs: generated.logs.iter().map(hex::encode).collect(),
        excluded: generated.excluded,
    }))
}

/// `GET /metrics`: the node's metrics in the Prometheus text format (OpenMetrics).
async fn metrics<E: Runtime>(State(node): State<NodeHandle<E>>) -> Response {
    (
        [(
            axum::http::header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        node.metrics(),
    )
        .into_response()
}

async fn tx_status<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(id): Path<String>,
) -> Result<Json<TxStatus>, ApiError> {
    let id = parse_id(&id)?;
    Ok(Json(status_of(&node, id).await))
}

fn parse_height(text: &str) -> Result<u64, ApiError> {
    text.parse::<u64>().map_err(|_| {
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "bad_height",
            format!("height must be a non-negative integer, got {text:?}"),
        )
    })
}

async fn block<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(height): Path<String>,
) -> Result<Json<BlockInfo>, ApiError> {
    let height = if height == "latest" {
        node.status().height
    } else {
        parse_height(&height)?
    };
    let Some((block, finalization)) = node.block(height).await else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "no finalized block at height {height} on this node (applied height {})",
                node.status().height
            ),
        ));
    };
    use commonware_cryptography::Digestible as _;
    Ok(Json(BlockInfo {
        height: block.height,
        digest: hex::encode(block.digest()),
        parent: hex::encode(block.parent),
        timestamp_ms: block.timestamp_ms,
        txs: block
            .txs
            .iter()
            .map(|tx| BlockTx {
                id: hex::encode(tx.id()),
                signer: tx.tx.sender.to_string(),
                nonce: tx.tx.nonce,
                kind: tx.tx.payload.kind().into(),
            })
            .collect(),
        encoded: hex::encode(block.encode()),
        finalization: finalization.map(|f| hex::encode(f.encode())),
    }))
}

async fn checkpoint<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(height): Path<String>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let height = if height == "latest" {
        node.status().certified_height
    } else {
        parse_height(&height)?
    };
    let Some(certified) = node.checkpoint(height).await else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!("no certified checkpoint at height {height} on this node"),
        ));
    };
    Ok(Json(serde_json::json!({
        "height": certified.checkpoint.height,
        "state_root": hex::encode(certified.checkpoint.state_root),
        "log_size": certified.checkpoint.log_size,
        "log_root": hex::encode(certified.checkpoint.log_root),
        "signature": hex::encode(certified.signature.encode()),
        "encoded": certified.to_hex(),
    })))
}

async fn status<E: Runtime>(State(node): State<NodeHandle<E>>) -> Json<ClusterStatus> {
    let status = node.status();
    let genesis = node.genesis();
    let me = node.public_key();
    Json(ClusterStatus {
        node: genesis
            .nodes
            .iter()
            .find(|n| &n.public_key == me)
            .map(|n| n.name.clone())
            .unwrap_or_default(),
        public_key: hex::encode(me.encode()),
        identifier: node.witness_prefix(),
        cluster_id: hex::encode(node.cluster_id()),
        cluster_key: node
            .cluster_keys()
            .map(|keys| hex::encode(keys.sharing.public().encode()))
            .unwrap_or_default(),
        height: status.height,
        state_root: hex::encode(status.state_root),
        certified_height: status.certified_height,
        view: status.view,
        peers: genesis
            .nodes
            .iter()
            .filter(|n| &n.public_key != me)
            .map(|n| n.name.clone())
            .collect(),
        mempool: node.mempool_len(),
        waiting: node.waiting(),
    })
}

async fn health<E: Runtime>(State(node): State<NodeHandle<E>>) -> Json<serde_json::Value> {
    Json(serde_json::json!({ "ok": true, "height": node.status().height }))
}

pub(crate) fn bad_request(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::BAD_REQUEST, code, message)
}

fn hexes(digests: &[welkin_types::Digest]) -> Vec<String> {
    digests.iter().map(hex::encode).collect()
}

async fn log_receipt<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(id): Path<String>,
) -> Result<Json<LogReceipt>, ApiError> {
    let id = parse_id(&id)?;
    let Some(receipt) = node.receipt(id).await else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_found",
            format!(
                "transaction {} is not committed on this node",
                hex::encode(id)
            ),
        ));
    };
    let Some(certified) = node.checkpoint(receipt.height).await else {
        return Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "not_certified",
            format!(
                "the checkpoint at height {} is not certified yet; retry shortly",
                receipt.height
            ),
        ));
    };
    let size = certified.checkpoint.log_size;
    let proof = node
        .inclusion_proof(receipt.log_index, size)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "log_error", e))?;
    let entry = node
        .log_entries(receipt.log_index, receipt.log_index + 1)
        .await
        .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "log_error", e))?;
    let entry = entry.into_iter().next().ok_or_else(|| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "log_error",
            "entry missing",
        )
    })?;
    Ok(Json(LogReceipt {
        kind: LOG_RECEIPT_KIND.into(),
        cluster_id: hex::encode(node.cluster_id()),
        tx_id: hex::encode(id),
        entry: hex::encode(entry),
        log_index: receipt.log_index,
        checkpoint: certified.to_hex(),
        proof: hexes(&proof),
        cluster_key_proof: key_proof(&node).await?,
    }))
}

/// Query of the inclusion proof endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InclusionParams {
    /// Leaf index (or give `tx`).
    pub index: Option<u64>,
    /// Transaction id, hex (or give `index`).
    pub tx: Option<String>,
    /// Tree size (default: the current log size).
    pub size: Option<u64>,
}

async fn inclusion<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<InclusionParams>,
) -> Result<Json<LogProof>, ApiError> {
    let index = match (params.index, &params.tx) {
        (Some(index), None) => index,
        (None, Some(tx)) => {
            let id = parse_id(tx)?;
            node.receipt(id).await.map(|r| r.log_index).ok_or_else(|| {
                ApiError::new(
                    StatusCode::NOT_FOUND,
                    "not_found",
                    format!("transaction {tx} is not committed on this node"),
                )
            })?
        }
        _ => {
            return Err(bad_request(
                "bad_query",
                "give exactly one of index= or tx=",
            ));
        }
    };
    let size = params.size.unwrap_or_else(|| node.status().log_size);
    let proof = node
        .inclusion_proof(index, size)
        .await
        .map_err(|e| bad_request("bad_range", e))?;
    Ok(Json(LogProof {
        from: index,
        size,
        proof: hexes(&proof),
    }))
}

/// Query of the consistency proof endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConsistencyParams {
    /// The older tree size.
    pub old: u64,
    /// The newer tree size (default: the current log size).
    pub new: Option<u64>,
}

async fn consistency<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<ConsistencyParams>,
) -> Result<Json<LogProof>, ApiError> {
    let new = params.new.unwrap_or_else(|| node.status().log_size);
    let proof = node
        .consistency_proof(params.old, new)
        .await
        .map_err(|e| bad_request("bad_range", e))?;
    Ok(Json(LogProof {
        from: params.old,
        size: new,
        proof: hexes(&proof),
    }))
}

/// Query of the entries endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EntriesParams {
    /// First index.
    pub start: u64,
    /// One past the last index (at most `start + 256`).
    pub end: u64,
}

async fn entries<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<EntriesParams>,
) -> Result<Json<LogEntries>, ApiError> {
    if params.end <= params.start || params.end - params.start > MAX_LOG_RANGE {
        return Err(bad_request(
            "bad_range",
            format!("end must be above start and at most {MAX_LOG_RANGE} beyond it"),
        ));
    }
    let entries = node
        .log_entries(params.start, params.end)
        .await
        .map_err(|e| bad_request("bad_range", e))?;
    Ok(Json(LogEntries {
        start: params.start,
        entries: entries.iter().map(hex::encode).collect(),
    }))
}

/// Query of the checkpoint note endpoint: at most one of `size` and `height`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NoteParams {
    /// The log size the checkpoint must have.
    pub size: Option<u64>,
    /// The height of the checkpoint.
    pub height: Option<u64>,
}

pub(crate) fn not_found(code: &'static str, message: impl Into<String>) -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, code, message)
}

pub(crate) fn text_response(
    content_type: &'static str,
    cache: &'static str,
    body: Vec<u8>,
) -> Response {
    (
        [
            (axum::http::header::CONTENT_TYPE, content_type),
            (axum::http::header::CACHE_CONTROL, cache),
        ],
        body,
    )
        .into_response()
}

async fn checkpoint_note<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<NoteParams>,
) -> Result<Response, ApiError> {
    let height = match (params.size, params.height) {
        (None, None) => node.status().certified_height,
        (None, Some(height)) => height,
        (Some(size), None) => node.log_height(size).await.ok_or_else(|| {
            not_found(
                "no_checkpoint_at_size",
                format!(
                    "no checkpoint has a log of {size} entries: checkpoints exist only at the sizes \
                     blocks ended at; ask for the latest and use a consistency proof"
                ),
            )
        })?,
        (Some(_), Some(_)) => {
            return Err(bad_request("bad_query", "give at most one of size= or height="));
        }
    };
    let note = node.checkpoint_note(height).await.ok_or_else(|| {
        not_found(
            "not_certified",
            format!("no certified checkpoint at height {height} yet; retry shortly"),
        )
    })?;
    Ok(text_response(
        "text/plain; charset=utf-8",
        "no-cache",
        note.into_bytes(),
    ))
}

/// `GET /v1/log/tile/...`: a C2SP tlog tile or entry bundle, from this node's log.
///
/// Full tiles never change and are served as immutable; partial ones only grow.
async fn tile<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(path): Path<String>,
) -> Result<Response, ApiError> {
    use welkin_merkle::{TILE_WIDTH, TilePath};
    let parsed = welkin_merkle::parse_tile_path(&format!("tile/{path}"))
        .map_err(|e| bad_request("bad_tile_path", e.to_string()))?;
    let (full, body) = match parsed {
        TilePath::Tile(tile) => {
            let hashes = node
                .tile(tile.level(), tile.index(), tile.width())
                .await
                .map_err(|e| not_found("tile_not_found", e))?;
            (!tile.is_partial(), hashes.concat())
        }
        TilePath::Entries(bundle) => {
            let start = bundle.index().checked_mul(u64::from(TILE_WIDTH));
            let end = start.and_then(|s| s.checked_add(u64::from(bundle.width())));
            let (Some(start), Some(end)) = (start, end) else {
                return Err(not_found("tile_not_found", "entry bundle beyond any log"));
            };
            let size = node.status().log_size;
            if end > size {
                return Err(not_found(
                    "tile_not_found",
                    format!("entries {start}..{end} are beyond the log of {size} entries"),
                ));
            }
            let entries = node
                .log_entries(start, end)
                .await
                .map_err(|e| not_found("tile_not_found", e))?;
            let mut body = Vec::new();
            for entry in &entries {
                let len = u16::try_from(entry.len())
                    .expect("transactions are smaller than 64 KiB (limits::MAX_TX_BYTES)");
                body.extend_from_slice(&len.to_be_bytes());
                body.extend_from_slice(entry);
            }
            (!bundle.is_partial(), body)
        }
    };
    let cache = if full {
        "public, max-age=31536000, immutable"
    } else {
        "no-cache"
    };
    Ok(text_response("application/octet-stream", cache, body))
}
