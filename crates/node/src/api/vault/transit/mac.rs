//! `hmac/:name` and `verify/:name` with an `hmac`: a threshold PRF, so no node holds an HMAC
//! key.
//!
//! The MAC of an input under a key version is SHA-256 over a domain-separation prefix and the
//! cluster's threshold signature over `mac_target(key id, version, SHA-256(input))`: t members
//! together compute it for a committed, allowed request, and no one alone can. It is not an
//! RFC 2104 HMAC and does not match one computed elsewhere.

use super::{
    VaultRequest, base64, base64_field, current_key, items, open::open_targets, parse_vault_value,
    respond,
};
use crate::{api::vault::VaultError, handle::NodeHandle, store::Runtime};
use axum::response::Response;
use commonware_codec::Encode as _;
use serde_json::{Value as Json, json};
use sha2::{Digest as _, Sha256};
use welkin_sealed::ReaderKey;
use welkin_state::secrets::SecretsResult;
use welkin_types::{
    ClusterSignature,
    secrets::{
        SecretsOp,
        transit::{MacPurpose, TransitOp},
    },
};

/// The prefix of the hash that turns the cluster's signature into a MAC.
const MAC_DOMAIN: &[u8] = b"welkin/transit/hmac/v1";
/// The only hash algorithm offered.
const ALGORITHM: &str = "sha2-256";

/// The MAC the cluster's signature makes.
fn mac_of(signature: &ClusterSignature) -> [u8; 32] {
    let mut hasher = Sha256::new();
    hasher.update(MAC_DOMAIN);
    hasher.update(signature.encode());
    hasher.finalize().into()
}

/// Refuses any algorithm but sha2-256 (from the path or the body's `field`).
fn check_algorithm(path: &str, request: &VaultRequest, field: &str) -> Result<(), VaultError> {
    let from_body = request.str_field(field);
    for algorithm in [Some(path).filter(|p| !p.is_empty()), from_body]
        .into_iter()
        .flatten()
    {
        if algorithm != ALGORITHM {
            return Err(VaultError::bad(format!(
                "unsupported algorithm {algorithm:?}: this cluster's MACs use {ALGORITHM} only"
            )));
        }
    }
    Ok(())
}

/// Asks the cluster for the MACs of `digests` under `version` (a logged request).
async fn macs<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    name: &str,
    purpose: MacPurpose,
    version: u64,
    digests: Vec<[u8; 32]>,
) -> Result<Vec<Option<[u8; 32]>>, VaultError> {
    let reader = ReaderKey::generate(&mut commonware_utils::sys_rng());
    let op = TransitOp::Mac {
        mount: mount.into(),
        name: name.into(),
        purpose,
        version,
        digests,
        reader: reader.public(),
    };
    let (id, result) =
        crate::api::vault::submit(node, request.token()?, SecretsOp::Transit(op)).await?;
    if !matches!(result, SecretsResult::ReleasedTargets { .. }) {
        return Err(VaultError::internal(format!(
            "unexpected result {result:?}"
        )));
    }
    let sharing = crate::api::vault::cluster_keys(node)?.sharing.clone();
    open_targets(node, id, reader, move |_, target, signature| {
        // The fast path's proof: the recovered signature verifies under the cluster key.
        crate::releases::targets::is_cluster_signature(&sharing, target, signature)
            .then(|| mac_of(signature))
    })
    .await
}

/// `hmac/:name[/:algorithm]`.
pub(super) async fn hmac<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    tail: &str,
) -> Result<Response, VaultError> {
    let (name, algorithm) = tail.split_once('/').unwrap_or((tail, ""));
    check_algorithm(algorithm, request, "algorithm")?;
    let (items, batch) = items(request)?;
    let version = match super::item_u64(&request.body, "key_version").map_err(VaultError::bad)? {
        Some(version) if version != 0 => version,
        // The latest now, named explicitly: the answer says which version made the MAC.
        _ => current_key(node, mount, name).await?.latest_version(),
    };
    let inputs: Vec<Result<[u8; 32], String>> = items
        .iter()
        .map(|item| base64_field(item, "input").map(|input| Sha256::digest(&input).into()))
        .collect();
    let digests: Vec<[u8; 32]> = inputs.iter().filter_map(|d| d.clone().ok()).collect();
    if digests.is_empty() {
        // No item is good: every one failed, and the first failure answers.
        let first = inputs.into_iter().find_map(Result::err);
        return Err(VaultError::bad(first.expect("every item failed")));
    }
    let mut macs = macs(
        node,
        request,
        mount,
        name,
        MacPurpose::Hmac,
        version,
        digests,
    )
    .await?
    .into_iter();
    let results = inputs
        .into_iter()
        .map(|input| {
            input?;
            let mac = macs
                .next()
                .expect("one per good item")
                .ok_or("the cluster's signature did not verify")?;
            Ok(json!({ "hmac": format!("vault:v{version}:{}", base64(&mac)), "key_version": version }))
        })
        .collect();
    respond(batch, results)
}

/// `verify/:name[/:algorithm]` with `hmac` (signatures go to `super::sign::verify`).
pub(super) async fn verify<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    tail: &str,
) -> Result<Response, VaultError> {
    let (name, algorithm) = tail.split_once('/').unwrap_or((tail, ""));
    check_algorithm(algorithm, request, "hash_algorithm")?;
    if request
        .body
        .get("batch_input")
        .is_some_and(|b| !b.is_null())
    {
        return Err(VaultError::bad(
            "batch_input is not offered for verify yet: verify one hmac per request",
        ));
    }
    let hmac = match request.body.get("hmac") {
        Some(Json::String(text)) => text,
        _ => return Err(VaultError::bad("missing hmac or signature to verify")),
    };
    let (version, claimed) = parse_vault_value(hmac, "hmac").map_err(VaultError::bad)?;
    let input = base64_field(&request.body, "input").map_err(VaultError::bad)?;
    let digest: [u8; 32] = Sha256::digest(&input).into();
    let mac = macs(
        node,
        request,
        mount,
        name,
        MacPurpose::Verify,
        version,
        vec![digest],
    )
    .await?
    .remove(0)
    .ok_or_else(|| VaultError::internal("the cluster's signature did not verify"))?;
    super::ok(json!({ "valid": constant_time_eq(&mac, &claimed) }))
}

/// Compares without an early exit, so that the time taken says nothing of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn equal_bytes_compare_equal_and_any_difference_does_not() {
        assert!(constant_time_eq(&[1, 2, 3], &[1, 2, 3]));
        assert!(!constant_time_eq(&[1, 2, 3], &[1, 2, 4]));
        assert!(!constant_time_eq(&[1, 2], &[1, 2, 3]));
    }
}
