//! Vault's transit engine at a mount enabled with `type: transit`, with keys no node holds
//! (see docs/transit.md and `welkin_state::secrets::transit`).
//!
//! Requests that need the cluster's secret (decrypt, rewrap, hmac, verify of an hmac) and
//! every change to a key are logged, judged by the policies at their height, and answered
//! from t members' partials. Requests that use only public data (encrypt, datakey, key reads
//! and lists, random, hash) are **not** logged: this node decides them with
//! [`welkin_state::secrets::allowed`] over the latest state, exactly as the state machine
//! would. A byzantine serving node could skip that check, but gains nothing it could not
//! compute itself: encryption is to the cluster's public key.

mod crypt;
mod mac;
mod open;
mod sign;
mod tools;

use super::{VaultError, VaultRequest, no_content, ok, submit};
use crate::{handle::NodeHandle, store::Runtime};
use axum::response::Response;
use base64::Engine as _;
use serde_json::{Value as Json, json};
use welkin_policy::Capabilities;
use welkin_state::{
    ApplyError, Fetched, Overlay, keys,
    secrets::{
        self, SecretsResult,
        records::decode_names,
        transit::{self, TransitKey},
    },
};
use welkin_types::secrets::{
    SecretsOp, token_public_key,
    transit::{KeyKind, MAX_BATCH_ITEMS, TransitOp},
};

/// Rounds of state reads one unlogged check may take (each round fetches the keys the
/// previous one found it needed: the token, its policies, the identity, the key).
const MAX_READ_ROUNDS: usize = 8;

/// Dispatches a request below transit mount `mount` (`rest` is the path after it).
pub(in crate::api::vault) async fn handle<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    rest: &str,
) -> Result<Response, VaultError> {
    let (area, tail) = rest.split_once('/').unwrap_or((rest, ""));
    let write = matches!(request.method.as_str(), "POST" | "PUT");
    match (area, request.method.as_str()) {
        ("keys", "LIST") if tail.is_empty() => list_keys(node, request, mount).await,
        ("keys", _) if !tail.is_empty() => keys_path(node, request, mount, tail).await,
        ("encrypt", _) if write => crypt::encrypt(node, request, mount, tail).await,
        ("decrypt", _) if write => crypt::decrypt(node, request, mount, tail).await,
        ("rewrap", _) if write => crypt::rewrap(node, request, mount, tail).await,
        ("datakey", _) if write => crypt::datakey(node, request, mount, tail).await,
        ("hmac", _) if write => mac::hmac(node, request, mount, tail).await,
        ("verify", _) if write && verifies_signatures(request) => {
            let name = tail.split_once('/').map_or(tail, |(name, _)| name);
            sign::verify(node, request, mount, name).await
        }
        ("verify", _) if write => mac::verify(node, request, mount, tail).await,
        ("sign", _) if write => sign::sign(node, request, mount, tail).await,
        ("random", _) if write => tools::random(node, request, mount, tail).await,
        ("hash", _) if write => tools::hash(node, request, mount, tail).await,
        (
            "keys" | "encrypt" | "decrypt" | "rewrap" | "datakey" | "hmac" | "verify" | "sign"
            | "random" | "hash",
            _,
        ) => Err(VaultError::unsupported()),
        _ => Err(VaultError::not_found()),
    }
}

/// Whether a verify request checks signatures (rather than hmacs).
fn verifies_signatures(request: &VaultRequest) -> bool {
    let has = |item: &Json| item.get("signature").is_some_and(|s| !s.is_null());
    has(&request.body)
        || request
            .body
            .get("batch_input")
            .and_then(Json::as_array)
            .is_some_and(|items| items.iter().any(has))
}

/// `keys/:name`, `keys/:name/config`, `keys/:name/rotate`.
async fn keys_path<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    tail: &str,
) -> Result<Response, VaultError> {
    let (name, action) = tail.split_once('/').unwrap_or((tail, ""));
    let (mount, name) = (mount.to_string(), name.to_string());
    let write = matches!(request.method.as_str(), "POST" | "PUT");
    let op = match (action, request.method.as_str()) {
        ("", "GET") => return read_key(node, request, &mount, &name).await,
        ("", _) if write => create_op(request, mount, name)?,
        ("", "DELETE") => TransitOp::KeyDelete { mount, name },
        ("config", _) if write => TransitOp::KeyConfig {
            mount,
            name,
            min_decryption_version: u64_field(request, "min_decryption_version")?,
            min_encryption_version: u64_field(request, "min_encryption_version")?,
            deletion_allowed: bool_field(request, "deletion_allowed")?,
        },
        ("rotate", _) if write => TransitOp::KeyRotate { mount, name },
        ("" | "config" | "rotate", _) => return Err(VaultError::unsupported()),
        _ => return Err(VaultError::not_found()),
    };
    submit(node, request.token()?, SecretsOp::Transit(op)).await?;
    no_content()
}

/// A key creation from Vault's parameters; what this cluster cannot hold without a holder is
/// refused by name.
fn create_op(request: &VaultRequest, mount: String, name: String) -> Result<TransitOp, VaultError> {
    let kind = match request.body.get("type") {
        None | Some(Json::Null) => KeyKind::ChaCha20Poly1305,
        Some(Json::String(text)) => KeyKind::from_name(text).ok_or_else(|| {
            VaultError::bad(format!(
                "key type {text:?} is not offered: this cluster offers chacha20-poly1305 \
                 (encryption), ed25519 (signing) and hmac keys, held by no node; types only \
                 one process could hold (aes, rsa, ecdsa) are not offered"
            ))
        })?,
        Some(other) => return Err(VaultError::bad(format!("invalid type {other}"))),
    };
    for refused in [
        "derived",
        "convergent_encryption",
        "exportable",
        "allow_plaintext_backup",
    ] {
        if request.body.get(refused).and_then(Json::as_bool) == Some(true) {
            return Err(VaultError::bad(format!(
                "{refused} is not offered: no node holds the key, so it can be neither derived \
                 from nor exported"
            )));
        }
    }
    Ok(TransitOp::KeyCreate { mount, name, kind })
}

/// `GET keys/:name`: the key's record, as Vault shows it (no key material exists).
async fn read_key<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    name: &str,
) -> Result<Response, VaultError> {
    let path = format!("{mount}/keys/{name}");
    let key = authorized_key(node, request, &path, Capabilities::READ, mount, name)
        .await?
        .ok_or_else(VaultError::not_found)?;
    let versions: serde_json::Map<String, Json> = key
        .versions
        .iter()
        .enumerate()
        .map(|(i, v)| {
            let entry = match (key.kind.signs(), v.public_key) {
                // Vault's shape for asymmetric keys: the public key and creation time.
                (true, public_key) => json!({
                    "name": key.kind.name(),
                    "public_key": public_key.map(|k| base64(&k)).unwrap_or_default(),
                    "creation_time": crate::api::vault::rfc3339(v.created_ms),
                }),
                (false, _) => json!(v.created_ms / 1_000),
            };
            ((i + 1).to_string(), entry)
        })
        .collect();
    ok(json!({
        "name": name,
        "type": key.kind.name(),
        "keys": versions,
        "latest_version": key.latest_version(),
        "min_decryption_version": key.min_decryption_version,
        "min_encryption_version": key.min_encryption_version,
        "min_available_version": 0,
        "deletion_allowed": key.deletion_allowed,
        "derived": false,
        "exportable": false,
        "allow_plaintext_backup": false,
        "auto_rotate_period": 0,
        "imported_key": false,
        "supports_encryption": key.kind.encrypts(),
        "supports_decryption": key.kind.encrypts(),
        "supports_derivation": false,
        "supports_signing": key.kind.signs(),
    }))
}

/// `LIST keys`.
async fn list_keys<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
) -> Result<Response, VaultError> {
    let token = token_public_key(request.token()?);
    let now = crate::application::now_ms(node.clock());
    let path = format!("{mount}/keys");
    let names = ask(node, |state| -> Result<Vec<String>, VaultError> {
        secrets::allowed(state, now, &token, &path, Capabilities::LIST)?;
        let Some(mount) = transit::transit_mount(state, mount) else {
            return Ok(Vec::new());
        };
        Ok(state
            .get(&keys::transit_keys(&mount.id))
            .map(|bytes| decode_names(bytes).unwrap_or_default())
            .unwrap_or_default())
    })
    .await??;
    if names.is_empty() {
        return Err(VaultError::not_found());
    }
    ok(json!({ "keys": names }))
}

/// Answers `question` over the latest state, fetching the keys it reads in rounds.
pub(super) async fn ask<E: Runtime, T>(
    node: &NodeHandle<E>,
    question: impl Fn(&Overlay<'_, Fetched>) -> T,
) -> Result<T, VaultError> {
    let mut fetched = Fetched::default();
    for _ in 0..MAX_READ_ROUNDS {
        match welkin_state::view(&fetched, &question) {
            Ok(answer) => return Ok(answer),
            Err(ApplyError::NeedReads(wanted)) => {
                let values = node.values(wanted.clone()).await;
                fetched.0.extend(wanted.into_iter().zip(values));
            }
            Err(error) => return Err(VaultError::internal(error.to_string())),
        }
    }
    Err(VaultError::internal(format!(
        "the request's state reads took more than {MAX_READ_ROUNDS} rounds"
    )))
}

/// An unlogged request's check: the token may do `needed` on `path`; returns the key `name`
/// of `mount`, if it exists.
pub(super) async fn authorized_key<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    path: &str,
    needed: Capabilities,
    mount: &str,
    name: &str,
) -> Result<Option<TransitKey>, VaultError> {
    let token = token_public_key(request.token()?);
    let now = crate::application::now_ms(node.clock());
    ask(node, |state| -> Result<Option<TransitKey>, VaultError> {
        secrets::allowed(state, now, &token, path, needed)?;
        Ok(transit::key(state, mount, name).map(|(_, key)| key))
    })
    .await?
}

/// The key `name` of `mount` at the latest state (public data; a logged request that follows
/// is judged at its own height).
pub(super) async fn current_key<E: Runtime>(
    node: &NodeHandle<E>,
    mount: &str,
    name: &str,
) -> Result<TransitKey, VaultError> {
    ask(node, |state| {
        transit::key(state, mount, name).map(|(_, key)| key)
    })
    .await?
    .ok_or_else(|| key_not_found(name))
}

/// Vault's 400 for a key that does not exist.
pub(super) fn key_not_found(name: &str) -> VaultError {
    VaultError::bad(format!("encryption key not found: {name:?}"))
}

impl From<SecretsResult> for VaultError {
    fn from(result: SecretsResult) -> Self {
        match result {
            SecretsResult::Refused { status, message } => super::refusal(status, message),
            other => VaultError::internal(format!("unexpected result {other:?}")),
        }
    }
}

/// The request's items: `batch_input` (at most [`MAX_BATCH_ITEMS`]) or the body itself; and
/// whether it was a batch.
pub(super) fn items(request: &VaultRequest) -> Result<(Vec<Json>, bool), VaultError> {
    match request.body.get("batch_input") {
        None | Some(Json::Null) => Ok((vec![request.body.clone()], false)),
        Some(Json::Array(items)) if items.is_empty() => {
            Err(VaultError::bad("missing batch input to process"))
        }
        Some(Json::Array(items)) if items.len() > MAX_BATCH_ITEMS => Err(VaultError::bad(format!(
            "{} batch items; at most {MAX_BATCH_ITEMS}",
            items.len()
        ))),
        Some(Json::Array(items)) => Ok((items.clone(), true)),
        Some(other) => Err(VaultError::bad(format!(
            "batch_input must be a list, not {other}"
        ))),
    }
}

/// The response for items: the one item's data, or `batch_results` (400 if any item failed,
/// as Vault answers by default).
pub(super) fn respond(
    batch: bool,
    results: Vec<Result<Json, String>>,
) -> Result<Response, VaultError> {
    if !batch {
        let result = results.into_iter().next().expect("one item");
        return result.map_or_else(|e| Err(VaultError::bad(e)), ok);
    }
    let failed = results.iter().any(Result::is_err);
    let list: Vec<Json> = results
        .into_iter()
        .map(|r| r.unwrap_or_else(|error| json!({ "error": error })))
        .collect();
    let body = super::envelope(json!({ "batch_results": list }));
    if failed {
        Err(VaultError::with_body(
            axum::http::StatusCode::BAD_REQUEST,
            body,
        ))
    } else {
        Ok(super::json_response(axum::http::StatusCode::OK, &body))
    }
}

/// Decodes the base64 `field` of `item`.
pub(super) fn base64_field(item: &Json, field: &str) -> Result<Vec<u8>, String> {
    let text = match item.get(field) {
        Some(Json::String(text)) => text,
        None | Some(Json::Null) => return Err(format!("missing {field} to process")),
        Some(other) => return Err(format!("{field} must be a base64 string, not {other}")),
    };
    base64::engine::general_purpose::STANDARD
        .decode(text)
        .map_err(|e| format!("failed to base64-decode {field}: {e}"))
}

/// Base64, as Vault writes it.
pub(super) fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// An optional non-negative integer field (a number or a numeric string) of `item`.
pub(super) fn item_u64(item: &Json, name: &str) -> Result<Option<u64>, String> {
    match item.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Number(n)) => n
            .as_u64()
            .map(Some)
            .ok_or_else(|| format!("invalid {name} {n}")),
        Some(Json::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| format!("invalid {name} {s:?}")),
        Some(other) => Err(format!("invalid {name} {other}")),
    }
}

fn u64_field(request: &VaultRequest, name: &str) -> Result<Option<u64>, VaultError> {
    item_u64(&request.body, name).map_err(VaultError::bad)
}

fn bool_field(request: &VaultRequest, name: &str) -> Result<Option<bool>, VaultError> {
    match request.body.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(Json::Bool(b)) => Ok(Some(*b)),
        Some(Json::String(s)) => s
            .parse()
            .map(Some)
            .map_err(|_| VaultError::bad(format!("invalid {name} {s:?}"))),
        Some(other) => Err(VaultError::bad(format!("invalid {name} {other}"))),
    }
}

/// A `vault:vN:<base64>` value: its version and bytes.
pub(super) fn parse_vault_value(text: &str, what: &str) -> Result<(u64, Vec<u8>), String> {
    let rest = text
        .strip_prefix("vault:v")
        .ok_or_else(|| format!("invalid {what}: no prefix"))?;
    let (version, body) = rest
        .split_once(':')
        .ok_or_else(|| format!("invalid {what}: wrong number of fields"))?;
    let version: u64 = version
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .ok_or_else(|| format!("invalid {what}: version number could not be decoded"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .map_err(|e| format!("invalid {what}: could not decode base64: {e}"))?;
    Ok((version, bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vault_values_parse_and_refuse_precisely() {
        assert_eq!(
            parse_vault_value("vault:v3:AAE=", "ciphertext"),
            Ok((3, vec![0, 1]))
        );
        assert_eq!(
            parse_vault_value("v3:AAE=", "ciphertext"),
            Err("invalid ciphertext: no prefix".into())
        );
        assert!(parse_vault_value("vault:v0:AAE=", "ciphertext").is_err());
        assert!(
            parse_vault_value("vault:v1:***", "ciphertext")
                .is_err_and(|e| e.starts_with("invalid ciphertext: could not decode base64"))
        );
    }
}
