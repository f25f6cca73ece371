//! Identity endpoints: KERI key state, key event logs and duplicity evidence, read from the
//! committed state.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v1/id/{prefix}` | the identifier's key state (JSON) |
//! | `GET /v1/id/{prefix}/kel?from=SN` | its key event log: events and attachments (JSON) |
//! | `GET /v1/id/{prefix}/kel.cesr?from=SN` | the same as a CESR stream (`application/cesr`) |
//! | `GET /v1/id/{prefix}/receipts?from=SN` | this node's witness receipts (`rct`) of its events, CESR |
//! | `GET /oobi/{prefix}` | the whole KEL followed by this node's receipts, for KERI clients |
//! | `GET /v1/id/{prefix}/duplicity?from=I` | conflicting, validly signed events refused (JSON) |
//! | `GET /v1/id/{prefix}/superseded?from=I` | interactions replaced by recovery rotations (JSON) |
//! | `GET /v1/id/{prefix}/pending` | messages waiting in escrow for its next event (CESR) |
//! | `GET /v1/id/witnesses` | the nodes' KERI identifiers (the witness pool) and threshold |
//!
//! Every node is a KERI witness under a non-transferable identifier (`B` + its identity
//! key, so genesis binds it to the node's p2p key) and signs receipts of accepted events on
//! request. A controller that lists the nodes as witnesses (`b`) with `bt` = 2f+1 lets any
//! KERI client check the cluster's acceptance by collecting receipts from 2f+1 nodes.
//!
//! Lists come in pages of at most [`MAX_KEL_PAGE`] entries; a CESR page that is not the last
//! carries the `welkin-next-from` header with the `from` of the next page. The OOBI, which KERI
//! clients read in one request, is streamed page by page, so a node never holds more than one
//! page of it in memory.

use super::{ApiError, bad_request, not_found, text_response};
use crate::{handle::NodeHandle, store::Runtime};
use axum::{
    Json,
    extract::{Path, Query, State},
    response::{IntoResponse as _, Response},
};
use futures::StreamExt as _;
use serde::Deserialize;
use welkin_keri::{KeyState, Prefix, VerKey, parse_message};
use welkin_state::keys;
use welkin_types::api::{
    Conflict, DuplicityEvidence, Kel, KelEvent, Superseded, SupersededEvent, Witnesses,
};

/// Most events returned by one KEL request.
pub const MAX_KEL_PAGE: u64 = 1_000;

/// Query of the KEL endpoint.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KelParams {
    /// First sequence number (default 0).
    pub from: Option<u64>,
}

fn parse_prefix(text: &str) -> Result<Prefix, ApiError> {
    Prefix::from_qb64(text).map_err(|e| {
        bad_request(
            "bad_prefix",
            format!("not a KERI identifier (qb64 prefix): {e}"),
        )
    })
}

async fn state_of<E: Runtime>(node: &NodeHandle<E>, prefix: &Prefix) -> Result<KeyState, ApiError> {
    let value = node.value(keys::id_state(&prefix.qb64())).await;
    let value = value.ok_or_else(|| {
        not_found(
            "unknown_identifier",
            format!("no accepted inception for {prefix} on this node"),
        )
    })?;
    welkin_state::stored::decode_key_state(&value)
        .map_err(|e| bad_request("internal", format!("stored key state unreadable: {e}")))
}

/// The stored messages of events `from..=to` of `prefix`.
async fn messages<E: Runtime>(
    node: &NodeHandle<E>,
    prefix: &Prefix,
    from: u64,
    to: u64,
) -> Vec<Vec<u8>> {
    let qb64 = prefix.qb64();
    let keys = (from..=to).map(|sn| keys::id_event(&qb64, sn)).collect();
    node.values(keys).await.into_iter().flatten().collect()
}

/// Header naming the `from` of the next page of a paged CESR reply.
pub const NEXT_FROM_HEADER: &str = "welkin-next-from";

/// One page of the KEL of the identifier named by `text`, from event `from` on: the prefix,
/// the messages, and the `from` of the next page if there is one.
async fn kel_page<E: Runtime>(
    node: &NodeHandle<E>,
    text: &str,
    from: u64,
) -> Result<(Prefix, Vec<Vec<u8>>, Option<u64>), ApiError> {
    let prefix = parse_prefix(text)?;
    let state = state_of(node, &prefix).await?;
    if from > state.sn {
        return Err(bad_request(
            "bad_range",
            format!("{prefix} is at sequence number {}", state.sn),
        ));
    }
    let to = state.sn.min(from.saturating_add(MAX_KEL_PAGE - 1));
    let kel = messages(node, &prefix, from, to).await;
    Ok((prefix, kel, (to < state.sn).then_some(to + 1)))
}

fn paged_cesr(stream: Vec<u8>, next: Option<u64>) -> Response {
    let mut response = cesr(stream);
    if let Some(next) = next {
        response.headers_mut().insert(
            axum::http::HeaderName::from_static(NEXT_FROM_HEADER),
            axum::http::HeaderValue::from(next),
        );
    }
    response
}

fn cesr(stream: Vec<u8>) -> Response {
    text_response("application/cesr", "no-cache", stream)
}

/// `GET /v1/id/{prefix}`.
pub(super) async fn key_state<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(prefix): Path<String>,
) -> Result<Json<KeyState>, ApiError> {
    let prefix = parse_prefix(&prefix)?;
    Ok(Json(state_of(&node, &prefix).await?))
}

/// `GET /v1/id/{prefix}/kel`.
pub(super) async fn kel<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(prefix): Path<String>,
    Query(params): Query<KelParams>,
) -> Result<Json<Kel>, ApiError> {
    let prefix = parse_prefix(&prefix)?;
    let state = state_of(&node, &prefix).await?;
    let from = params.from.unwrap_or(0);
    if from > state.sn {
        return Err(bad_request(
            "bad_range",
            format!("{prefix} is at sequence number {}", state.sn),
        ));
    }
    let to = state.sn.min(from.saturating_add(MAX_KEL_PAGE - 1));
    let qb64 = prefix.qb64();
    let mut tx_ids = node
        .values((from..=to).map(|sn| keys::id_event_tx(&qb64, sn)).collect())
        .await
        .into_iter();
    let mut events = Vec::new();
    for bytes in messages(&node, &prefix, from, to).await {
        let (message, _) = parse_message(&bytes)
            .map_err(|e| bad_request("internal", format!("stored event unreadable: {e}")))?;
        let event = &message.event;
        events.push(KelEvent {
            sn: event.sn(),
            ilk: event.ilk().as_str().to_string(),
            said: event.said().qb64(),
            event: serde_json::value::RawValue::from_string(event.raw().to_string())
                .map_err(|e| bad_request("internal", format!("stored event is not JSON: {e}")))?,
            attachments: message.attachments.to_cesr().unwrap_or_default(),
            tx_id: tx_ids.next().flatten().map(hex::encode),
        });
    }
    Ok(Json(Kel {
        prefix: prefix.qb64(),
        sn: state.sn,
        events,
    }))
}

/// `GET /v1/id/{prefix}/kel.cesr?from=SN`: a page of the KEL as a CESR stream.
pub(super) async fn kel_cesr<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(prefix): Path<String>,
    Query(params): Query<KelParams>,
) -> Result<Response, ApiError> {
    let (_, kel, next) = kel_page(&node, &prefix, params.from.unwrap_or(0)).await?;
    Ok(paged_cesr(kel.concat(), next))
}

/// This node's receipts of every accepted event of `prefix`, as a CESR stream.
async fn receipts_of<E: Runtime>(
    node: &NodeHandle<E>,
    prefix: &Prefix,
    kel: &[Vec<u8>],
) -> Result<Vec<u8>, ApiError> {
    let mut stream = Vec::new();
    for bytes in kel {
        let (message, _) = parse_message(bytes).map_err(|e| {
            bad_request(
                "internal",
                format!("stored event of {prefix} unreadable: {e}"),
            )
        })?;
        let receipt = node.witness_receipt(&message.event);
        stream.extend(
            receipt
                .to_bytes()
                .map_err(|e| bad_request("internal", format!("receipt encoding: {e}")))?,
        );
    }
    Ok(stream)
}

/// `GET /v1/id/{prefix}/receipts?from=SN`: this node's witness receipts of a page of events.
pub(super) async fn receipts<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(prefix): Path<String>,
    Query(params): Query<KelParams>,
) -> Result<Response, ApiError> {
    let (prefix, kel, next) = kel_page(&node, &prefix, params.from.unwrap_or(0)).await?;
    Ok(paged_cesr(receipts_of(&node, &prefix, &kel).await?, next))
}

/// Where the OOBI stream stands: reading events or receipts, from which sequence number.
#[derive(Clone, Copy)]
enum OobiCursor {
    Events(u64),
    Receipts(u64),
    Done,
}

/// The next page of an OOBI stream at `cursor`, and the cursor after it.
async fn oobi_page<E: Runtime>(
    node: &NodeHandle<E>,
    text: &str,
    cursor: OobiCursor,
) -> Result<(Vec<u8>, OobiCursor), ApiError> {
    let (receipts, from) = match cursor {
        OobiCursor::Events(from) => (false, from),
        OobiCursor::Receipts(from) => (true, from),
        OobiCursor::Done => return Ok((Vec::new(), OobiCursor::Done)),
    };
    let (prefix, kel, next) = kel_page(node, text, from).await?;
    let bytes = if receipts {
        receipts_of(node, &prefix, &kel).await?
    } else {
        kel.concat()
    };
    let cursor = match (receipts, next) {
        (false, Some(next)) => OobiCursor::Events(next),
        (false, None) => OobiCursor::Receipts(0),
        (true, Some(next)) => OobiCursor::Receipts(next),
        (true, None) => OobiCursor::Done,
    };
    Ok((bytes, cursor))
}

/// `GET /oobi/{prefix}`: the KEL and this node's receipts of it, what a KERI client
/// resolving this node as a witness of `prefix` reads. Streamed a page at a time: first
/// every event, then every receipt.
pub(super) async fn oobi<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(prefix): Path<String>,
) -> Result<Response, ApiError> {
    // The first page is read before answering, so an unknown identifier gets a clear error.
    let (first, cursor) = oobi_page(&node, &prefix, OobiCursor::Events(0)).await?;
    let rest = futures::stream::unfold(
        (node, prefix, cursor),
        |(node, prefix, cursor)| async move {
            if matches!(cursor, OobiCursor::Done) {
                return None;
            }
            match oobi_page(&node, &prefix, cursor).await {
                Ok((bytes, next)) => Some((Ok(bytes), (node, prefix, next))),
                Err(error) => Some((
                    Err(std::io::Error::other(error.message)),
                    (node, prefix, OobiCursor::Done),
                )),
            }
        },
    );
    let pages = futures::stream::once(async move { Ok::<_, std::io::Error>(first) }).chain(rest);
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "application/cesr"),
            (axum::http::header::CACHE_CONTROL, "no-cache"),
        ],
        axum::body::Body::from_stream(pages),
    )
        .into_response())
}

/// `GET /v1/id/{prefix}/pending`: the messages waiting in escrow for the identifier's next
/// event (its inception if it has none yet), e.g. a delegated event its delegator has not
/// anchored. Not committed as accepted; shown so a delegator can see what to approve.
pub(super) async fn pending<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(prefix): Path<String>,
) -> Result<Response, ApiError> {
    let prefix = parse_prefix(&prefix)?;
    let qb64 = prefix.qb64();
    let next = match node.value(keys::id_state(&qb64)).await {
        Some(_) => state_of(&node, &prefix).await?.sn + 1,
        None => 0,
    };
    let slot = node.value(keys::id_escrow(&qb64, next)).await;
    let messages = welkin_state::identity::escrowed_messages(slot.as_deref())
        .map_err(|e| bad_request("internal", format!("stored escrow unreadable: {e}")))?;
    Ok(cesr(messages.concat()))
}

/// `GET /v1/id/witnesses`: the witness pool.
pub(super) async fn witnesses<E: Runtime>(State(node): State<NodeHandle<E>>) -> Json<Witnesses> {
    let genesis = node.genesis();
    let witnesses: Vec<String> = genesis
        .nodes
        .iter()
        .filter_map(|n| <[u8; 32]>::try_from(n.public_key.as_ref()).ok())
        .map(|key| {
            Prefix::Basic(VerKey {
                key,
                transferable: false,
            })
            .qb64()
        })
        .collect();
    Json(Witnesses {
        witnesses,
        threshold: genesis.threshold,
        this_node: node.witness_prefix(),
    })
}

/// `GET /v1/id/{prefix}/duplicity?from=I`: refused conflicting events from record `I` on (at
/// most [`MAX_KEL_PAGE`]).
pub(super) async fn duplicity<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(prefix): Path<String>,
    Query(params): Query<KelParams>,
) -> Result<Json<DuplicityEvidence>, ApiError> {
    let prefix = parse_prefix(&prefix)?;
    state_of(&node, &prefix).await?;
    let qb64 = prefix.qb64();
    let count =
        welkin_state::read_u64(node.value(keys::id_duplicity_count(&qb64)).await.as_deref());
    let from = params.from.unwrap_or(0).min(count);
    let to = count.min(from.saturating_add(MAX_KEL_PAGE));
    let refused = node
        .values((from..to).map(|i| keys::id_duplicity(&qb64, i)).collect())
        .await;
    let mut evidence = Vec::new();
    for bytes in refused.into_iter().flatten() {
        let Ok((message, _)) = parse_message(&bytes) else {
            continue;
        };
        let sn = message.event.sn();
        let accepted = messages(&node, &prefix, sn, sn)
            .await
            .pop()
            .and_then(|b| parse_message(&b).ok())
            .map(|(m, _)| m.event.said().qb64())
            .unwrap_or_default();
        evidence.push(Conflict {
            sn,
            accepted,
            refused: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }
    Ok(Json(DuplicityEvidence {
        prefix: qb64,
        evidence,
    }))
}

/// `GET /v1/id/{prefix}/superseded?from=I`: the interaction events that recovery rotations
/// replaced, oldest first, from record `I` on (at most [`MAX_KEL_PAGE`]).
pub(super) async fn superseded<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Path(prefix): Path<String>,
    Query(params): Query<KelParams>,
) -> Result<Json<Superseded>, ApiError> {
    let prefix = parse_prefix(&prefix)?;
    state_of(&node, &prefix).await?;
    let qb64 = prefix.qb64();
    let count = welkin_state::read_u64(
        node.value(keys::id_superseded_count(&qb64))
            .await
            .as_deref(),
    );
    let from = params.from.unwrap_or(0).min(count);
    let to = count.min(from.saturating_add(MAX_KEL_PAGE));
    let records = node
        .values((from..to).map(|i| keys::id_superseded(&qb64, i)).collect())
        .await;
    let mut events = Vec::new();
    for bytes in records.into_iter().flatten() {
        let Ok(record) = welkin_state::identity::SupersededEvent::decode(&bytes) else {
            continue;
        };
        let Ok((message, _)) = parse_message(&record.message) else {
            continue;
        };
        events.push(SupersededEvent {
            recovery_sn: record.recovery_sn,
            sn: message.event.sn(),
            said: message.event.said().qb64(),
            ilk: message.event.ilk().as_str().to_string(),
            tx_id: record.tx.map(hex::encode),
            message: String::from_utf8_lossy(&record.message).into_owned(),
        });
    }
    Ok(Json(Superseded {
        prefix: qb64,
        events,
    }))
}
