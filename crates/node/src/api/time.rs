//! Certified time over HTTP.
//!
//! | method and path | what |
//! |---|---|
//! | `GET /v1/time?nonce=HEX` | a time certificate over a 32-byte nonce (hex); without one the node picks it, and the answer proves nothing about freshness to the client |
//! | `GET /v1/time/status` | every node's clock as this node sees it: offset, radius, state |
//! | `GET /v1/time/stream` | server-sent events: one `tick` event (a [`TimeResponse`]) per certificate this node makes, about one a second |
//!
//! A refusal (the clocks do not agree, or too few nodes answered) is `503 time_refused` with
//! the reason: the cluster fails closed rather than guess.

use super::{ApiError, bad_request};
use crate::{handle::NodeHandle, store::Runtime, time::TimeFailure};
use axum::{
    Json,
    extract::{Query, State},
    http::StatusCode,
    response::sse::{Event, KeepAlive, Sse},
};
use serde::Deserialize;
use std::{convert::Infallible, time::Duration};
use welkin_time::{CertifiedTime, rfc3339};
use welkin_types::api::{ClockReadingInfo, NodeClockInfo, TimeResponse, TimeStatusResponse};

/// Query of `GET /v1/time`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeParams {
    /// The client's nonce: 32 bytes, hex.
    pub nonce: Option<String>,
}

fn parse_nonce(text: &str) -> Result<[u8; 32], ApiError> {
    if text.len() != 64 {
        return Err(bad_request(
            "bad_nonce",
            format!(
                "nonce must be 64 hex characters (32 bytes), got {}",
                text.len()
            ),
        ));
    }
    let bytes = hex::decode(text)
        .map_err(|e| bad_request("bad_nonce", format!("nonce is not hex: {e}")))?;
    Ok(bytes.try_into().expect("64 hex characters are 32 bytes"))
}

/// The JSON view of a certified time, naming the nodes that agreed.
pub(crate) fn time_response<E: Runtime>(
    node: &NodeHandle<E>,
    certified: &CertifiedTime,
) -> TimeResponse {
    let certificate = &certified.certificate;
    let (midpoint_ns, radius_ns) = certificate.midpoint_and_radius();
    let names = &node.genesis().nodes;
    TimeResponse {
        certificate: certified.to_hex(),
        nonce: hex::encode(certified.nonce),
        earliest_ns: certificate.earliest_ns,
        latest_ns: certificate.latest_ns,
        midpoint_ns,
        radius_ns,
        earliest: rfc3339(certificate.earliest_ns),
        latest: rfc3339(certificate.latest_ns),
        agreed: certificate
            .agreed_nodes()
            .into_iter()
            .filter_map(|i| names.get(i as usize).map(|n| n.name.clone()))
            .collect(),
        batch_size: certified.size,
    }
}

/// `GET /v1/time`.
pub(crate) async fn now<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<TimeParams>,
) -> Result<Json<TimeResponse>, ApiError> {
    let nonce = match params.nonce.as_deref() {
        Some(text) => parse_nonce(text)?,
        None => {
            let mut nonce = [0u8; 32];
            // The node's clock and id make it unique enough; it is no freshness proof.
            let seed = node.clock_ns().to_be_bytes();
            nonce.copy_from_slice(welkin_types::hash_parts(&[b"server nonce", &seed]).as_ref());
            nonce
        }
    };
    match node.certify_time(nonce).await {
        Ok(certified) => Ok(Json(time_response(&node, &certified))),
        Err(TimeFailure::Busy(limit)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "busy",
            format!("{limit} time requests are waiting on this node; retry shortly"),
        )),
        Err(TimeFailure::Refused(reason)) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "time_refused",
            format!("no certified time: {reason}"),
        )),
        Err(TimeFailure::Stopped) => Err(ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "unavailable",
            "the node is shutting down",
        )),
    }
}

/// `GET /v1/time/status`.
pub(crate) async fn status<E: Runtime>(
    State(node): State<NodeHandle<E>>,
) -> Json<TimeStatusResponse> {
    let status = node.time().status();
    let names = &node.genesis().nodes;
    let certified = node.certified_now();
    let servers = node.time().servers();
    let public_key = {
        use base64::Engine as _;
        use commonware_codec::Encode as _;
        base64::engine::general_purpose::STANDARD.encode(node.public_key().encode())
    };
    let name = |i: u32| {
        names
            .get(i as usize)
            .map(|n| n.name.clone())
            .unwrap_or_default()
    };
    Json(TimeStatusResponse {
        node: name(status.me),
        reading: ClockReadingInfo {
            midpoint_ns: status.reading.midpoint_ns,
            radius_ns: status.reading.radius_ns,
            synced: status.reading.synced,
        },
        certified_earliest_ns: certified.map(|c| c.0),
        certified_latest_ns: certified.map(|c| c.1),
        certificates: status.certified,
        refused: status.refused,
        nodes: status
            .nodes
            .iter()
            .map(|n| NodeClockInfo {
                name: name(n.index),
                offset_ns: n.offset_ns,
                radius_ns: n.radius_ns,
                synced: n.synced,
                state: n.state.name().into(),
                streak: n.streak,
                disagreements: n.disagreements,
                last_heard_ms: n.last_heard_ms,
            })
            .collect(),
        roughtime_address: servers.roughtime.map(|a| a.to_string()),
        ntp_address: servers.ntp.map(|a| a.to_string()),
        roughtime_public_key: public_key,
    })
}

/// How often the stream looks for a new certificate.
const STREAM_POLL: Duration = Duration::from_millis(100);

/// `GET /v1/time/stream`.
pub(crate) async fn stream<E: Runtime>(
    State(node): State<NodeHandle<E>>,
) -> Sse<impl futures::Stream<Item = Result<Event, Infallible>>> {
    let ticks = futures::stream::unfold((node, None::<[u8; 32]>), |(node, last)| async move {
        loop {
            if let Some(tick) = node.time().status().latest
                && Some(tick.certified.certificate.root.0) != last
            {
                let body = serde_json::to_string(&time_response(&node, &tick.certified))
                    .expect("time responses serialise");
                let root = tick.certified.certificate.root.0;
                return Some((
                    Ok(Event::default().event("tick").data(body)),
                    (node, Some(root)),
                ));
            }
            tokio::time::sleep(STREAM_POLL).await;
        }
    });
    Sse::new(ticks).keep_alive(KeepAlive::default())
}
