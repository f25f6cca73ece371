//! Response wrapping: `X-Vault-Wrap-TTL` on any request, and `sys/wrapping/unwrap`, `lookup`,
//! `rewrap` and `wrap`.
//!
//! The response is sealed to the cluster key under a target named by a new wrapping token's
//! key, and kept in the state with that token (single use, the TTL asked for). Unwrapping is
//! a logged read signed by the wrapping token, which uses it up: the response opens once.

use super::{VaultError, VaultRequest, envelope, json_response, open, rfc3339, submit};
use crate::{handle::NodeHandle, store::Runtime};
use axum::{http::StatusCode, response::Response};
use serde_json::{Value as Json, json};
use welkin_state::{keys, secrets::records::Wrapped};
use welkin_types::{
    Detachable,
    secrets::{SecretsOp, generate_token, token_accessor, token_public_key},
};

/// Wraps `response` (a Vault response body) for `ttl_ms` under a new token, as the sender of
/// `request`; answers with Vault's `wrap_info`.
pub(super) async fn wrap<E: Runtime>(
    node: &NodeHandle<E>,
    token: &str,
    path: &str,
    ttl_ms: u64,
    response: &Json,
) -> Result<Response, VaultError> {
    let wrapping = generate_token(&mut commonware_utils::sys_rng());
    let key = token_public_key(&wrapping);
    let (nonce, sealed) = super::seal(
        node,
        &[b"wrap", key.as_ref()],
        response.to_string().into_bytes(),
    )
    .await?;
    let op = SecretsOp::WrapStore {
        key: key.clone(),
        ttl_ms,
        path: path.to_string(),
        nonce,
        sealed: Detachable::new(sealed),
    };
    submit(node, token, op).await?;
    let created = node
        .value(keys::wrapping(&key))
        .await
        .and_then(|bytes| Wrapped::decode(&bytes).ok())
        .map_or(0, |w| w.created_ms);
    let body = json!({
        "request_id": "",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": {
            "token": wrapping,
            "accessor": token_accessor(&key),
            "ttl": ttl_ms / 1_000,
            "creation_time": rfc3339(created),
            "creation_path": path,
            "wrapped_accessor": "",
        },
        "warnings": null,
        "auth": null,
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// The wrapping token a `sys/wrapping/*` request names: `token` in the body, else its own.
fn wrapping_token(request: &VaultRequest) -> Result<String, VaultError> {
    request
        .str_field("token")
        .or(request.token.as_deref())
        .map(str::to_string)
        .ok_or_else(|| VaultError::bad("wrapping token is not valid or does not exist"))
}

/// Opens a wrapped response once, with the wrapping token (which it uses up).
async fn unwrap_json<E: Runtime>(node: &NodeHandle<E>, wrapping: &str) -> Result<Json, VaultError> {
    let reader = welkin_sealed::ReaderKey::generate(&mut commonware_utils::sys_rng());
    let op = SecretsOp::Unwrap {
        reader: reader.public(),
    };
    let (id, _) = submit(node, wrapping, op).await.map_err(|error| {
        if error.status == StatusCode::FORBIDDEN {
            VaultError::bad("wrapping token is not valid or does not exist")
        } else {
            error
        }
    })?;
    let (_, value) = open::open(node, id, reader, super::COMMIT_WAIT).await?;
    serde_json::from_slice(&value)
        .map_err(|e| VaultError::internal(format!("the wrapped response is not JSON: {e}")))
}

pub(super) async fn handle<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    action: &str,
    wrap_ttl_ms: Option<u64>,
) -> Result<Response, VaultError> {
    if !matches!(request.method.as_str(), "POST" | "PUT") && action != "lookup" {
        return Err(VaultError::unsupported());
    }
    match action {
        "unwrap" => {
            let wrapping = wrapping_token(request)?;
            let response = unwrap_json(node, &wrapping).await?;
            Ok(json_response(StatusCode::OK, &response))
        }
        "lookup" => {
            let wrapping = wrapping_token(request)?;
            let wrapped = node
                .value(keys::wrapping(&token_public_key(&wrapping)))
                .await
                .and_then(|bytes| Wrapped::decode(&bytes).ok())
                .ok_or_else(|| VaultError::bad("wrapping token is not valid or does not exist"))?;
            Ok(json_response(
                StatusCode::OK,
                &envelope(json!({
                    "creation_path": wrapped.path,
                    "creation_time": rfc3339(wrapped.created_ms),
                    "creation_ttl": wrapped.ttl_ms / 1_000,
                })),
            ))
        }
        "rewrap" => {
            let wrapping = wrapping_token(request)?;
            let key = token_public_key(&wrapping);
            let wrapped = node
                .value(keys::wrapping(&key))
                .await
                .and_then(|bytes| Wrapped::decode(&bytes).ok())
                .ok_or_else(|| VaultError::bad("wrapping token is not valid or does not exist"))?;
            let response = unwrap_json(node, &wrapping).await?;
            let token = request.token()?;
            wrap(node, token, &wrapped.path, wrapped.ttl_ms, &response).await
        }
        "wrap" => {
            let ttl_ms = wrap_ttl_ms.unwrap_or(300_000);
            let token = request.token()?;
            let response = envelope(request.body.clone());
            wrap(node, token, "sys/wrapping/wrap", ttl_ms, &response).await
        }
        _ => Err(VaultError::not_found()),
    }
}
