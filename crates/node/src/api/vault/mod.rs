//! The Vault-compatible API: KV v2, tokens, ACL policies, mounts, health, as Vault's HTTP API
//! documents them, so Vault clients and scripts work unchanged.
//!
//! Every request that reads or changes secrets is a transaction signed with the key the
//! request's token derives (`X-Vault-Token`), committed before anything happens, and judged
//! by the policies at its height (see `welkin_state::secrets`). Reads then wait for the
//! cluster's partials, sealed to a one-time key this node makes for the request, and this
//! node opens the value: **the node a Vault client talks to sees that value in memory for that
//! request, as Vault does; no other node does, and the read is in the log before it
//! happens.** Clients that must not trust the serving node read natively (`welkin kv get`).
//!
//! A token this node does not know (or that has expired) is refused here, with Vault's 403,
//! without a transaction: anyone can send random tokens, and logging each would let them fill
//! the log for free. Requests by a valid token that its policies deny are logged.
//!
//! Errors are Vault's: `{"errors": [...]}` with 400, 403, 404, 405, 413, 429 or 500.

mod keri;
mod kv;
mod open;
mod sys;
mod token;
mod transit;
mod wrapping;

use crate::{handle::NodeHandle, store::Runtime};
use axum::{
    body::Bytes,
    extract::{Request, State},
    http::{HeaderMap, Method, StatusCode, header},
    response::{IntoResponse, Response},
};
use commonware_cryptography::Signer as _;
use serde_json::{Value as Json, json};
use std::time::Duration;
use welkin_state::secrets::{SecretsResult, records::Token};
use welkin_types::{
    Payload, Sender, Transaction, TxId,
    secrets::{SecretsOp, token_public_key, token_signing_key},
};

/// Largest Vault request body (1 MiB); larger gets 413.
pub(crate) const MAX_VAULT_BODY_BYTES: usize = 1024 * 1024;
/// How long a request waits for its transaction to commit, and a read for its partials.
const COMMIT_WAIT: Duration = Duration::from_secs(10);
/// Validity of the transactions this API signs on a client's behalf.
const TX_TTL_MS: u64 = 60_000;

/// A Vault error response.
#[derive(Debug)]
pub(crate) struct VaultError {
    status: StatusCode,
    errors: Vec<String>,
    body: Option<Json>,
}

impl VaultError {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Self {
            status,
            errors: vec![message.into()],
            body: None,
        }
    }

    /// Vault's 404 for a missing path: an empty error list.
    pub(crate) fn not_found() -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            errors: Vec::new(),
            body: None,
        }
    }

    pub(crate) fn denied() -> Self {
        Self::new(StatusCode::FORBIDDEN, "permission denied")
    }

    pub(crate) fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    pub(crate) fn unsupported() -> Self {
        Self::new(StatusCode::METHOD_NOT_ALLOWED, "unsupported operation")
    }

    /// The messages, joined (for an item of a batch).
    pub(crate) fn message(&self) -> String {
        self.errors.join("; ")
    }

    /// The cluster key does not exist yet (a dealerless cluster generates it at first
    /// start): 503, retry shortly.
    pub(crate) fn no_cluster_key() -> Self {
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "the cluster key is being generated (a dealerless cluster makes it at first              start, within seconds); retry shortly",
        )
    }

    pub(crate) fn internal(message: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, message)
    }

    /// A response with a body of its own (Vault's 404 for a deleted version).
    pub(crate) fn with_body(status: StatusCode, body: Json) -> Self {
        Self {
            status,
            errors: Vec::new(),
            body: Some(body),
        }
    }
}

impl IntoResponse for VaultError {
    fn into_response(self) -> Response {
        let body = self
            .body
            .unwrap_or_else(|| json!({ "errors": self.errors }));
        json_response(self.status, &body)
    }
}

/// A JSON response with exactly `Content-Type: application/json`, as Vault sends.
pub(crate) fn json_response(status: StatusCode, body: &Json) -> Response {
    (
        status,
        [(header::CONTENT_TYPE, "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// Vault's response envelope around `data`.
pub(crate) fn envelope(data: Json) -> Json {
    json!({
        "request_id": request_id(),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": data,
        "wrap_info": null,
        "warnings": null,
        "auth": null,
    })
}

pub(crate) fn ok(data: Json) -> Result<Response, VaultError> {
    Ok(json_response(StatusCode::OK, &envelope(data)))
}

pub(crate) fn no_content() -> Result<Response, VaultError> {
    Ok(StatusCode::NO_CONTENT.into_response())
}

fn request_id() -> String {
    let mut bytes = [0u8; 16];
    rand_core::Rng::fill_bytes(&mut commonware_utils::sys_rng(), &mut bytes);
    let hex = hex::encode(bytes);
    format!(
        "{}-{}-{}-{}-{}",
        &hex[..8],
        &hex[8..12],
        &hex[12..16],
        &hex[16..20],
        &hex[20..]
    )
}

/// One parsed Vault request.
pub(crate) struct VaultRequest {
    /// GET, PUT, POST, PATCH, DELETE or LIST (`GET ?list=true` is LIST, as in Vault).
    pub(crate) method: String,
    /// The path below `/v1/`, without a trailing slash.
    pub(crate) path: String,
    /// Query parameters.
    pub(crate) query: Vec<(String, String)>,
    /// `X-Vault-Token` (or `Authorization: Bearer`).
    pub(crate) token: Option<String>,
    /// The body, parsed as JSON (`null` when empty).
    pub(crate) body: Json,
}

impl VaultRequest {
    pub(crate) fn query(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }

    /// The token, or Vault's 403 when there is none.
    pub(crate) fn token(&self) -> Result<&str, VaultError> {
        self.token.as_deref().ok_or_else(VaultError::denied)
    }

    /// A string field of the JSON body.
    pub(crate) fn str_field(&self, name: &str) -> Option<&str> {
        self.body.get(name).and_then(Json::as_str)
    }
}

fn token_of(headers: &HeaderMap) -> Option<String> {
    if let Some(token) = headers.get("x-vault-token").and_then(|v| v.to_str().ok()) {
        return Some(token.trim().to_string()).filter(|t| !t.is_empty());
    }
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(|t| t.trim().to_string())
        .filter(|t| !t.is_empty())
}

fn parse_query(query: Option<&str>) -> Vec<(String, String)> {
    query
        .unwrap_or_default()
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), percent_decode(v))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` (query strings); invalid escapes are kept as they are.
pub(crate) fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        match bytes[i] {
            b'%' if i + 2 < bytes.len() => {
                let hex = |b: u8| (b as char).to_digit(16);
                match (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                    (Some(high), Some(low)) => {
                        out.push((high * 16 + low) as u8);
                        i += 3;
                        continue;
                    }
                    _ => out.push(b'%'),
                }
            }
            b'+' => out.push(b' '),
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// The fallback of the node's router: every `/v1/...` path the Welkin API does not claim.
pub(crate) async fn dispatch<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    request: Request,
) -> Response {
    match handle(node, request).await {
        Ok(response) => response,
        Err(error) => error.into_response(),
    }
}

async fn handle<E: Runtime>(node: NodeHandle<E>, request: Request) -> Result<Response, VaultError> {
    let (parts, body) = request.into_parts();
    let Some(raw_path) = parts.uri.path().strip_prefix("/v1/") else {
        return Err(VaultError::not_found());
    };
    let query = parse_query(parts.uri.query());
    let too_large = || {
        VaultError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("request body exceeds {MAX_VAULT_BODY_BYTES} bytes"),
        )
    };
    // A declared length over the limit is refused before a byte of the body is read.
    let declared = parts
        .headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > MAX_VAULT_BODY_BYTES as u64) {
        return Err(too_large());
    }
    let body = axum::body::to_bytes(body, MAX_VAULT_BODY_BYTES)
        .await
        .map_err(|_| too_large())?;
    let body = parse_body(&body)?;
    let listing = query
        .iter()
        .any(|(k, v)| k == "list" && (v == "true" || v == "1"));
    let method = match parts.method {
        Method::GET if listing => "LIST".to_string(),
        ref m => m.as_str().to_ascii_uppercase(),
    };
    let path = percent_decode(raw_path);
    let request = VaultRequest {
        method,
        path: path.trim_end_matches('/').to_string(),
        query,
        token: token_of(&parts.headers),
        body,
    };
    let wrap_ttl_ms = match parts.headers.get("x-vault-wrap-ttl") {
        Some(value) => {
            let text = value
                .to_str()
                .map_err(|_| VaultError::bad("invalid X-Vault-Wrap-TTL"))?;
            Some(parse_duration(&Json::String(text.to_string()))?).filter(|ttl| *ttl > 0)
        }
        None => None,
    };
    if let Some(action) = request.path.strip_prefix("sys/wrapping/") {
        return wrapping::handle(&node, &request, action, wrap_ttl_ms).await;
    }
    let first = request.path.split('/').next().unwrap_or_default();
    let response = match first {
        "sys" => sys::handle(&node, &request).await,
        "auth" if request.path.starts_with("auth/keri/") => keri::handle(&node, &request).await,
        "auth" => token::handle(&node, &request).await,
        _ => kv::handle(&node, &request).await,
    }?;
    // Response wrapping: what would have been answered is sealed under a new single-use
    // token instead, and only that token goes back.
    match (wrap_ttl_ms, request.token.as_deref()) {
        (Some(ttl_ms), Some(token)) if response.status() == StatusCode::OK => {
            let body = axum::body::to_bytes(response.into_body(), MAX_VAULT_BODY_BYTES)
                .await
                .map_err(|e| VaultError::internal(e.to_string()))?;
            let body: Json =
                serde_json::from_slice(&body).map_err(|e| VaultError::internal(e.to_string()))?;
            wrapping::wrap(&node, token, &request.path, ttl_ms, &body).await
        }
        _ => Ok(response),
    }
}

/// Parses a JSON body; empty is `null`. Unknown fields are the handlers' to ignore.
fn parse_body(body: &Bytes) -> Result<Json, VaultError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Json::Null);
    }
    serde_json::from_slice(body)
        .map_err(|e| VaultError::bad(format!("failed to parse JSON input: {e}")))
}

/// The token's stored record, if it is live now: the edge check before anything is logged.
pub(crate) async fn live_token<E: Runtime>(
    node: &NodeHandle<E>,
    token: &str,
) -> Result<Token, VaultError> {
    let key = token_public_key(token);
    let record = node
        .value(welkin_state::keys::token(&key))
        .await
        .ok_or_else(VaultError::denied)?;
    let record = Token::decode(&record).map_err(|e| VaultError::internal(e.to_string()))?;
    if !record.is_live(crate::application::now_ms(node.clock())) {
        return Err(VaultError::denied());
    }
    Ok(record)
}

/// Signs `op` with `token`'s key, submits it, waits for it to commit, and returns what it
/// did. A refusal comes back as Vault's error for it.
pub(crate) async fn submit<E: Runtime>(
    node: &NodeHandle<E>,
    token: &str,
    op: SecretsOp,
) -> Result<(TxId, SecretsResult), VaultError> {
    live_token(node, token).await?;
    let key = token_signing_key(token);
    let now = crate::application::now_ms(node.clock());
    let tx = Transaction {
        sender: Sender::Key(key.public_key()),
        nonce: rand_core::Rng::next_u64(&mut commonware_utils::sys_rng()),
        expiry_ms: now + TX_TTL_MS,
        payload: Payload::Secrets(Box::new(op)),
    }
    .sign(&key, &node.cluster_id());
    submit_signed(node, tx).await
}

/// Submits a signed secrets request, waits for it to commit, and returns what it did.
pub(crate) async fn submit_signed<E: Runtime>(
    node: &NodeHandle<E>,
    tx: welkin_types::SignedTransaction,
) -> Result<(TxId, SecretsResult), VaultError> {
    let id = tx.id();
    let submitted = node.submit(tx).await.map_err(|e| match e {
        crate::SubmitError::Full(_) | crate::SubmitError::Unavailable => {
            VaultError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string())
        }
        crate::SubmitError::UnknownToken | crate::SubmitError::NotANode => VaultError::denied(),
        other => VaultError::bad(other.to_string()),
    })?;
    if !matches!(submitted, crate::Submitted::Committed(_)) && node.receipt(id).await.is_none() {
        let subscription = node
            .subscribe(id)
            .map_err(|e| VaultError::new(StatusCode::TOO_MANY_REQUESTS, e.to_string()))?;
        if node.receipt(id).await.is_none() {
            match tokio::time::timeout(COMMIT_WAIT, subscription).await {
                Ok(Some(_)) => {}
                _ => {
                    return Err(VaultError::internal(format!(
                        "request {} was not committed within {} s; it may still commit",
                        hex::encode(id),
                        COMMIT_WAIT.as_secs()
                    )));
                }
            }
        }
    }
    node.acknowledged(&id);
    let result = match node.secrets_result(&id) {
        Some(result) => result,
        None => {
            // Committed long ago or before a restart: the receipt still says what happened.
            let receipt = node
                .receipt(id)
                .await
                .ok_or_else(|| VaultError::internal("the request's receipt is missing"))?;
            if receipt.outcome.is_applied() {
                SecretsResult::Done
            } else {
                return Err(VaultError::internal(format!(
                    "request {} was {}",
                    hex::encode(id),
                    receipt.outcome.name()
                )));
            }
        }
    };
    match result {
        SecretsResult::Refused { status, message } => Err(refusal(status, message)),
        result => Ok((id, result)),
    }
}

/// Seals `plaintext` to the cluster key under a fresh target named by `name` and a random
/// nonce; refuses with 413 what would not fit in a transaction.
///
/// The identity-based encryption inside costs about a millisecond of CPU (a pairing), so it
/// runs on tokio's blocking pool, not on an async worker that other requests need.
pub(crate) async fn seal<E: Runtime>(
    node: &NodeHandle<E>,
    name: &[&[u8]],
    plaintext: Vec<u8>,
) -> Result<([u8; 32], Vec<u8>), VaultError> {
    let plaintext = zeroize::Zeroizing::new(plaintext);
    let mut nonce = [0u8; 32];
    rand_core::Rng::fill_bytes(&mut commonware_utils::sys_rng(), &mut nonce);
    let target = welkin_sealed::target(name, &nonce);
    let cluster_key = *cluster_keys(node)?.sharing.public();
    let sealed =
        tokio::task::spawn_blocking(move || seal_blocking(&cluster_key, target, &plaintext))
            .await
            .map_err(|e| VaultError::internal(format!("sealing failed: {e}")))??;
    Ok((nonce, sealed))
}

pub(crate) fn seal_blocking(
    cluster_key: &welkin_types::ClusterKey,
    target: welkin_types::Digest,
    plaintext: &[u8],
) -> Result<Vec<u8>, VaultError> {
    use commonware_codec::Encode as _;
    let too_large = |bytes: usize| {
        VaultError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!(
                "{bytes} bytes sealed; this cluster keeps at most {} per value",
                welkin_types::secrets::MAX_SEALED_BYTES
            ),
        )
    };
    let sealed = welkin_sealed::seal(
        &mut commonware_utils::sys_rng(),
        cluster_key,
        target,
        plaintext,
    )
    .map_err(|_| too_large(plaintext.len()))?
    .encode()
    .to_vec();
    if sealed.len() > welkin_types::secrets::MAX_SEALED_BYTES {
        return Err(too_large(sealed.len()));
    }
    Ok(sealed)
}

/// Vault's response for a refusal the state machine gave.
pub(crate) fn refusal(status: u16, message: String) -> VaultError {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::BAD_REQUEST);
    if status == StatusCode::NOT_FOUND {
        return VaultError::not_found();
    }
    VaultError::new(status, message)
}

/// Formats block time (ms since the epoch) as Vault does: RFC 3339 in UTC with nanoseconds.
pub(crate) fn rfc3339(ms: u64) -> String {
    let secs = ms / 1_000;
    let nanos = (ms % 1_000) * 1_000_000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        rem / 3_600,
        (rem % 3_600) / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to (year, month, day), proleptic Gregorian (H. Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1_460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// Parses a Vault duration: seconds as a number, or a string such as `90`, `30s`, `15m`,
/// `1h`, `1h30m`, `7d`. Returns milliseconds.
pub(crate) fn parse_duration(value: &Json) -> Result<u64, VaultError> {
    let bad = || {
        VaultError::bad(format!(
            "invalid duration {value}: use seconds or a string like 1h30m"
        ))
    };
    match value {
        Json::Null => Ok(0),
        Json::Number(n) => n.as_u64().map(|s| s.saturating_mul(1_000)).ok_or_else(bad),
        Json::String(text) => {
            let text = text.trim();
            if text.is_empty() {
                return Ok(0);
            }
            if let Ok(secs) = text.parse::<u64>() {
                return Ok(secs.saturating_mul(1_000));
            }
            let mut total: u64 = 0;
            let mut number = String::new();
            for c in text.chars() {
                if c.is_ascii_digit() {
                    number.push(c);
                    continue;
                }
                let n: u64 = number.parse().map_err(|_| bad())?;
                number.clear();
                let unit = match c {
                    's' => 1_000,
                    'm' => 60_000,
                    'h' => 3_600_000,
                    'd' => 86_400_000,
                    _ => return Err(bad()),
                };
                total = total.saturating_add(n.saturating_mul(unit));
            }
            if !number.is_empty() {
                return Err(bad());
            }
            Ok(total)
        }
        _ => Err(bad()),
    }
}

/// The cluster key as the node holds it, or 503 while it is being generated.
pub(crate) fn cluster_keys<E: Runtime>(
    node: &NodeHandle<E>,
) -> Result<std::sync::Arc<crate::ClusterKeys>, VaultError> {
    node.cluster_keys().ok_or_else(VaultError::no_cluster_key)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_formatted_as_vault_does() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(rfc3339(1_521_685_446_945), "2018-03-22T02:24:06.945000000Z");
        assert_eq!(rfc3339(951_782_400_000), "2000-02-29T00:00:00.000000000Z");
    }

    #[test]
    fn durations_parse_like_vaults() {
        assert_eq!(parse_duration(&json!(90)).ok(), Some(90_000));
        assert_eq!(parse_duration(&json!("1h30m")).ok(), Some(5_400_000));
        assert_eq!(parse_duration(&json!("45")).ok(), Some(45_000));
        assert!(parse_duration(&json!("1x")).is_err());
        assert!(parse_duration(&json!("h")).is_err());
    }

    #[test]
    fn percent_escapes_decode() {
        assert_eq!(percent_decode("a%2Fb+c%zz"), "a/b c%zz");
    }
}
