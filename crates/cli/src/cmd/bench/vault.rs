//! The KV v2 load of `welkin bench --compare openbao`, in the Vault HTTP API that both Welkin
//! and OpenBao serve: the same requests, bodies and checks on both sides.
//!
//! A write is `POST /v1/secret/data/<key>` with `{"data": {"value": "<100 bytes>"}}` and
//! counts when the reply is 200 with `data.version`; a read is `GET /v1/secret/data/<key>`
//! of a key written before the clock started, and counts when the reply is 200 with the value.

use super::load::Sent;
use serde_json::Value;
use std::{sync::Arc, time::Duration};

/// Bytes in each value: the same size as the other comparisons' memos and puts.
pub(super) const VALUE_BYTES: usize = 100;
/// Largest reply that is read.
pub(super) const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// Longest wait for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

/// The value every write carries.
pub(super) fn value() -> Arc<String> {
    Arc::new("v".repeat(VALUE_BYTES))
}

/// Sends one request: `method` to `url` with `X-Vault-Token` if given, and `body` as JSON
/// unless it is null.
pub(super) fn request(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> Result<ureq::http::Response<ureq::Body>, ureq::Error> {
    let request = ureq::http::Request::builder().method(method).uri(url);
    let request = match token {
        Some(token) => request.header("X-Vault-Token", token),
        None => request,
    };
    if body.is_null() {
        let request = request.body(()).map_err(ureq::Error::from)?;
        agent.run(request)
    } else {
        let request = request
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .map_err(ureq::Error::from)?;
        agent.run(request)
    }
}

/// The key of write `index`: `bench/<prefix>/<index / 1000>/<index>`, a thousand keys a
/// directory, as a real tree has them (Welkin indexes each directory for LIST, at most 4,096
/// entries each).
fn key(prefix: &str, index: usize) -> String {
    format!("bench/{prefix}/{}/{index}", index / 1_000)
}

/// A load worker that writes a new key per request (see [`key`]) to the server at
/// `addr` (`http://host:port`).
pub(super) fn write_worker(
    addr: &str,
    token: &str,
    prefix: &str,
    value: Arc<String>,
) -> impl FnMut(usize) -> Option<Sent> + Send + use<> {
    let agent = super::etcd::agent(REQUEST_TIMEOUT);
    let (addr, token, prefix) = (addr.to_string(), token.to_string(), prefix.to_string());
    let body = serde_json::json!({"data": {"value": value.as_str()}});
    move |index| {
        let url = format!("{addr}/v1/secret/data/{}", key(&prefix, index));
        let counted = reply(&agent, "POST", &url, &token, &body).is_some_and(|r| is_written(&r));
        Some(Sent {
            items: 1,
            counted: usize::from(counted),
        })
    }
}

/// A load worker that reads key `index % keys` (see [`key`]) from the server at `addr`; those
/// keys must have been written with `value` before.
pub(super) fn read_worker(
    addr: &str,
    token: &str,
    prefix: &str,
    keys: usize,
    value: Arc<String>,
) -> impl FnMut(usize) -> Option<Sent> + Send + use<> {
    let agent = super::etcd::agent(REQUEST_TIMEOUT);
    let (addr, token, prefix) = (addr.to_string(), token.to_string(), prefix.to_string());
    move |index| {
        let url = format!(
            "{addr}/v1/secret/data/{}",
            key(&prefix, index % keys.max(1))
        );
        let counted = reply(&agent, "GET", &url, &token, &Value::Null)
            .is_some_and(|r| holds_value(&r, &value));
        Some(Sent {
            items: 1,
            counted: usize::from(counted),
        })
    }
}

/// The JSON reply to a request, if it answered 200.
fn reply(agent: &ureq::Agent, method: &str, url: &str, token: &str, body: &Value) -> Option<Value> {
    let mut response = request(agent, method, url, Some(token), body).ok()?;
    if response.status().as_u16() != 200 {
        // Read the error body so that the connection can be reused.
        let _ = response
            .body_mut()
            .with_config()
            .limit(MAX_REPLY_BYTES)
            .read_to_vec();
        return None;
    }
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_REPLY_BYTES)
        .read_to_string()
        .ok()?;
    serde_json::from_str(&text).ok()
}

/// Whether a KV v2 write reply carries the new version (`data.version`, a positive number).
fn is_written(reply: &Value) -> bool {
    reply["data"]["version"].as_u64().is_some_and(|v| v > 0)
}

/// Whether a KV v2 read reply carries `value` at `data.data.value`.
fn holds_value(reply: &Value, value: &str) -> bool {
    reply["data"]["data"]["value"].as_str() == Some(value)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_write_counts_only_with_a_version() {
        assert!(is_written(
            &json!({"data": {"version": 1, "created_time": "x", "destroyed": false}})
        ));
        assert!(!is_written(&json!({"data": {"version": 0}})));
        assert!(!is_written(&json!({"errors": ["permission denied"]})));
    }

    #[test]
    fn a_read_counts_only_with_the_value_written() {
        let value = value();
        assert_eq!(value.len(), VALUE_BYTES);
        let read = json!({"data": {"data": {"value": value.as_str()}, "metadata": {"version": 1}}});
        assert!(holds_value(&read, &value));
        assert!(!holds_value(
            &json!({"data": {"data": {"value": "other"}}}),
            &value
        ));
        assert!(!holds_value(&json!({"errors": []}), &value));
    }
}
