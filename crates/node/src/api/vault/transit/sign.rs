//! `sign/:name` and `verify/:name` with a `signature`: Ed25519 signatures made by the nodes
//! together (FROST), with keys no node holds.
//!
//! A signature is a logged request: it is committed with the SHA-256 of each message, every
//! node judges it by the policies at its height, and the nodes holding shares answer this
//! node's sign requests only for messages whose digest the log committed. This node
//! coordinates them (see `crate::transit`) and answers only with a signature it checked
//! under the key version's group key from the log. Verification needs no secret and is not
//! logged.

use super::{
    VaultRequest, authorized_key, base64, base64_field, current_key, items, parse_vault_value,
    respond,
};
use crate::{api::vault::VaultError, handle::NodeHandle, store::Runtime, transit::SignFailure};
use axum::{http::StatusCode, response::Response};
use serde_json::{Value as Json, json};
use sha2::{Digest as _, Sha256};
use welkin_policy::Capabilities;
use welkin_state::secrets::SecretsResult;
use welkin_types::secrets::{SecretsOp, transit::TransitOp};

/// Refuses hash and signature options that do not apply to Ed25519 (Vault ignores
/// `hash_algorithm` for ed25519 keys, and so does this).
fn check_options(request: &VaultRequest) -> Result<(), VaultError> {
    if request.body.get("prehashed").and_then(Json::as_bool) == Some(true) {
        return Err(VaultError::bad(
            "prehashed is not offered for ed25519: a pure Ed25519 signature covers the message \
             itself",
        ));
    }
    Ok(())
}

/// `sign/:name[/:hash_algorithm]`.
pub(super) async fn sign<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    tail: &str,
) -> Result<Response, VaultError> {
    let name = tail.split_once('/').map_or(tail, |(name, _)| name);
    check_options(request)?;
    let (items, batch) = items(request)?;
    let inputs: Vec<Result<Vec<u8>, String>> = items
        .iter()
        .map(|item| {
            let input = base64_field(item, "input")?;
            if input.len() > welkin_frost::MAX_MESSAGE_BYTES {
                return Err(format!(
                    "input of {} bytes is over the {}-byte limit of a signed message",
                    input.len(),
                    welkin_frost::MAX_MESSAGE_BYTES
                ));
            }
            Ok(input)
        })
        .collect();
    let messages: Vec<Vec<u8>> = inputs.iter().filter_map(|i| i.clone().ok()).collect();
    if messages.is_empty() {
        let first = inputs.into_iter().find_map(Result::err);
        return Err(VaultError::bad(first.expect("every item failed")));
    }
    let version = match super::item_u64(&request.body, "key_version").map_err(VaultError::bad)? {
        Some(version) if version != 0 => version,
        _ => current_key(node, mount, name).await?.latest_version(),
    };
    let op = TransitOp::Sign {
        mount: mount.into(),
        name: name.into(),
        version,
        digests: messages.iter().map(|m| Sha256::digest(m).into()).collect(),
    };
    let (id, result) =
        crate::api::vault::submit(node, request.token()?, SecretsOp::Transit(op)).await?;
    let SecretsResult::Signing {
        key_id, version, ..
    } = result
    else {
        return Err(VaultError::internal(format!(
            "unexpected result {result:?}"
        )));
    };
    let mut signatures = node
        .transit_sign(id, key_id, version, messages)
        .await
        .map_err(failure)?
        .into_iter();
    let results = inputs
        .into_iter()
        .map(|input| {
            input?;
            let signature = signatures.next().expect("one per good item");
            Ok(json!({
                "signature": format!("vault:v{version}:{}", base64(&signature)),
                "key_version": version,
            }))
        })
        .collect();
    respond(batch, results)
}

/// What the client sees of a signing failure.
fn failure(error: SignFailure) -> VaultError {
    let status = match error {
        SignFailure::Busy(_) | SignFailure::NoKey(_) | SignFailure::Stopped => {
            StatusCode::SERVICE_UNAVAILABLE
        }
        SignFailure::Failed(_) => StatusCode::INTERNAL_SERVER_ERROR,
    };
    VaultError::new(status, error.to_string())
}

/// `verify/:name` with `signature` (or `batch_input` items with one): checked here against
/// the key version's public key from the state, with no threshold round.
pub(super) async fn verify<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    name: &str,
) -> Result<Response, VaultError> {
    check_options(request)?;
    let path = format!("{mount}/verify/{name}");
    let key = authorized_key(node, request, &path, Capabilities::UPDATE, mount, name)
        .await?
        .ok_or_else(|| super::key_not_found(name))?;
    if !key.kind.signs() {
        return Err(VaultError::bad(format!(
            "key type {} does not support verification of signatures",
            key.kind.name()
        )));
    }
    let (items, batch) = items(request)?;
    let results = items
        .iter()
        .map(|item| {
            let text = match item.get("signature") {
                Some(Json::String(text)) => text,
                _ => return Err("missing signature to verify".to_string()),
            };
            let (version, signature) = parse_vault_value(text, "signature")?;
            let signature: [u8; 64] = signature
                .try_into()
                .map_err(|s: Vec<u8>| format!("invalid signature: {} bytes, not 64", s.len()))?;
            if version < key.min_decryption_version {
                return Err(format!(
                    "key version {version} is below the key's min_decryption_version {}",
                    key.min_decryption_version
                ));
            }
            let public_key = key
                .versions
                .get(version as usize - 1)
                .ok_or_else(|| format!("invalid signature: key version {version} does not exist"))?
                .public_key
                .ok_or_else(|| format!("key version {version} has no signing key yet"))?;
            let input = base64_field(item, "input")?;
            Ok(json!({
                "valid": welkin_frost::verify_signature(&public_key, &input, &signature)
            }))
        })
        .collect();
    respond(batch, results)
}
