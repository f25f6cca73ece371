//! `encrypt`, `decrypt`, `rewrap` and `datakey`.
//!
//! A ciphertext is `vault:vN:` and the base64 of the 32-byte target nonce followed by the
//! welkin-sealed encoding of the value sealed to the cluster key under
//! `ciphertext_target(key id, N, nonce)`: the nodes need the version and nonce to compute the
//! target a decryption opens, and the sealed value alone names only the target's hash.

use super::{
    VaultRequest, authorized_key, base64, base64_field, current_key, item_u64, items,
    key_not_found, open::open_targets, parse_vault_value, respond,
};
use crate::{api::vault::VaultError, handle::NodeHandle, store::Runtime};
use axum::response::Response;
use serde_json::{Value as Json, json};
use welkin_policy::Capabilities;
use welkin_sealed::{ReaderKey, SealedValue};
use welkin_state::secrets::{
    SecretsResult,
    transit::{TransitKey, ciphertext_target},
};
use welkin_types::{
    ClusterKey,
    secrets::{
        SecretsOp,
        transit::{CiphertextRef, DecryptPurpose, TransitOp},
    },
};
use zeroize::Zeroizing;

/// Bytes of a target nonce at the start of a ciphertext's body.
const NONCE_BYTES: usize = 32;

/// The version a request encrypts under (0 or absent: the latest), if the key allows it.
fn encryption_version(key: &TransitKey, requested: Option<u64>) -> Result<u64, String> {
    let version = requested
        .filter(|v| *v != 0)
        .unwrap_or(key.latest_version());
    if version > key.latest_version() {
        return Err(
            "requested version for encryption is higher than the latest key version".into(),
        );
    }
    if key.min_encryption_version != 0 && version < key.min_encryption_version {
        return Err(
            "requested version for encryption is less than the minimum encryption key version"
                .into(),
        );
    }
    Ok(version)
}

/// Seals each plaintext under its version of `key`; CPU work, run on the blocking pool.
async fn seal_all(
    cluster_key: ClusterKey,
    key_id: welkin_types::Digest,
    plaintexts: Vec<(u64, Zeroizing<Vec<u8>>)>,
) -> Result<Vec<Result<String, String>>, VaultError> {
    tokio::task::spawn_blocking(move || {
        plaintexts
            .into_iter()
            .map(|(version, plaintext)| {
                let mut nonce = [0u8; NONCE_BYTES];
                rand_core::Rng::fill_bytes(&mut commonware_utils::sys_rng(), &mut nonce);
                let target = ciphertext_target(&key_id, version, &nonce);
                let sealed = crate::api::vault::seal_blocking(&cluster_key, target, &plaintext)
                    .map_err(|e| e.message())?;
                let mut body = nonce.to_vec();
                body.extend_from_slice(&sealed);
                Ok(format!("vault:v{version}:{}", base64(&body)))
            })
            .collect()
    })
    .await
    .map_err(|e| VaultError::internal(format!("sealing failed: {e}")))
}

/// An item ready to seal: its key version and plaintext, or why it was refused.
type Prepared = Result<(u64, Zeroizing<Vec<u8>>), String>;

/// Seals the items that were prepared (version and plaintext) and answers every item in the
/// request's order, a refused item with its error (encrypt and rewrap).
async fn seal_in_order(
    cluster_key: ClusterKey,
    key_id: welkin_types::Digest,
    batch: bool,
    prepared: Vec<Prepared>,
) -> Result<Response, VaultError> {
    let mut results: Vec<Result<Json, String>> = Vec::with_capacity(prepared.len());
    let mut plaintexts = Vec::new();
    for item in prepared {
        match item {
            Ok(item) => {
                plaintexts.push(item);
                results.push(Ok(Json::Null));
            }
            Err(error) => results.push(Err(error)),
        }
    }
    let versions: Vec<u64> = plaintexts.iter().map(|(v, _)| *v).collect();
    let sealed = seal_all(cluster_key, key_id, plaintexts).await?;
    let mut sealed = sealed.into_iter().zip(versions);
    for result in results.iter_mut().filter(|r| r.is_ok()) {
        let (ciphertext, version) = sealed.next().expect("one per prepared item");
        *result = ciphertext.map(|c| json!({ "ciphertext": c, "key_version": version }));
    }
    respond(batch, results)
}

/// A key that encrypts, or Vault's 400.
fn encrypting(key: Option<TransitKey>, name: &str) -> Result<TransitKey, VaultError> {
    let key = key.ok_or_else(|| key_not_found(name))?;
    if !key.kind.encrypts() {
        return Err(VaultError::bad(format!(
            "key type {} does not support encryption",
            key.kind.name()
        )));
    }
    Ok(key)
}

/// `encrypt/:name`: sealed to the cluster key by this node alone; not logged.
pub(super) async fn encrypt<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    name: &str,
) -> Result<Response, VaultError> {
    let (items, batch) = items(request)?;
    let path = format!("{mount}/encrypt/{name}");
    let key = authorized_key(node, request, &path, Capabilities::UPDATE, mount, name).await?;
    let key = encrypting(key, name)?;
    let mut prepared_items = Vec::with_capacity(items.len());
    for item in &items {
        let prepared = base64_field(item, "plaintext").and_then(|plaintext| {
            let version = encryption_version(&key, item_u64(item, "key_version")?)?;
            Ok((version, Zeroizing::new(plaintext)))
        });
        prepared_items.push(prepared);
    }
    let cluster_key = *crate::api::vault::cluster_keys(node)?.sharing.public();
    seal_in_order(cluster_key, key.id, batch, prepared_items).await
}

/// A ciphertext from the client: what the request names and what opens.
struct Parsed {
    reference: CiphertextRef,
    sealed: SealedValue,
}

fn parse_ciphertext(item: &Json) -> Result<Parsed, String> {
    let text = match item.get("ciphertext") {
        Some(Json::String(text)) => text,
        None | Some(Json::Null) => return Err("missing ciphertext to decrypt".into()),
        Some(other) => return Err(format!("invalid ciphertext: not a string: {other}")),
    };
    let (version, body) = parse_vault_value(text, "ciphertext")?;
    if body.len() <= NONCE_BYTES {
        return Err(format!(
            "invalid ciphertext: {} bytes is too short",
            body.len()
        ));
    }
    let nonce: [u8; NONCE_BYTES] = body[..NONCE_BYTES].try_into().expect("length checked");
    let sealed = welkin_types::decode::<SealedValue>(&body[NONCE_BYTES..])
        .map_err(|e| format!("invalid ciphertext: {e}"))?;
    Ok(Parsed {
        reference: CiphertextRef { version, nonce },
        sealed,
    })
}

/// Decrypts the request's ciphertexts with a logged request; per item, the plaintext or why
/// not.
async fn decrypt_items<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    name: &str,
    purpose: DecryptPurpose,
    items: &[Json],
) -> Result<Vec<Result<(u64, Zeroizing<Vec<u8>>), String>>, VaultError> {
    let parsed: Vec<Result<Parsed, String>> = items.iter().map(parse_ciphertext).collect();
    let good: Vec<&Parsed> = parsed.iter().filter_map(|p| p.as_ref().ok()).collect();
    if good.is_empty() {
        // No item is good: every one failed, and the first failure answers.
        let first = parsed.into_iter().find_map(Result::err);
        return Err(VaultError::bad(first.expect("every item failed")));
    }
    let reader = ReaderKey::generate(&mut commonware_utils::sys_rng());
    let op = TransitOp::Decrypt {
        mount: mount.into(),
        name: name.into(),
        purpose,
        ciphertexts: good.iter().map(|p| p.reference).collect(),
        reader: reader.public(),
    };
    let (id, result) =
        crate::api::vault::submit(node, request.token()?, SecretsOp::Transit(op)).await?;
    if !matches!(result, SecretsResult::ReleasedTargets { .. }) {
        return Err(VaultError::internal(format!(
            "unexpected result {result:?}"
        )));
    }
    let sealed: Vec<SealedValue> = good.iter().map(|p| p.sealed.clone()).collect();
    let versions: Vec<u64> = good.iter().map(|p| p.reference.version).collect();
    let opened = open_targets(node, id, reader, move |at, target, signature| {
        // A sealed value under another target than the one its version and nonce name
        // opens nothing here.
        if sealed[at].target != *target {
            return None;
        }
        welkin_sealed::open_with(signature, &sealed[at]).ok()
    })
    .await?;
    let mut opened = opened.into_iter().zip(versions);
    Ok(parsed
        .into_iter()
        .map(|p| {
            p?;
            let (plaintext, version) = opened.next().expect("one per good item");
            plaintext
                .map(|p| (version, p))
                .ok_or_else(|| "invalid ciphertext: unable to decrypt".to_string())
        })
        .collect())
}

/// `decrypt/:name`: a logged request; t members' partials open each ciphertext.
pub(super) async fn decrypt<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    name: &str,
) -> Result<Response, VaultError> {
    let (items, batch) = items(request)?;
    let opened = decrypt_items(node, request, mount, name, DecryptPurpose::Decrypt, &items).await?;
    let results = opened
        .into_iter()
        .map(|r| r.map(|(_, plaintext)| json!({ "plaintext": base64(&plaintext) })))
        .collect();
    respond(batch, results)
}

/// `rewrap/:name`: a logged decryption, then an encryption under the latest version (or
/// `key_version`); the plaintext never leaves this node.
pub(super) async fn rewrap<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    name: &str,
) -> Result<Response, VaultError> {
    let (items, batch) = items(request)?;
    let opened = decrypt_items(node, request, mount, name, DecryptPurpose::Rewrap, &items).await?;
    let key = encrypting(current_key(node, mount, name).await.ok(), name)?;
    let mut prepared_items = Vec::with_capacity(items.len());
    for (item, opened) in items.iter().zip(opened) {
        let prepared = opened.and_then(|(_, plaintext)| {
            Ok((
                encryption_version(&key, item_u64(item, "key_version")?)?,
                plaintext,
            ))
        });
        prepared_items.push(prepared);
    }
    let cluster_key = *crate::api::vault::cluster_keys(node)?.sharing.public();
    seal_in_order(cluster_key, key.id, batch, prepared_items).await
}

/// `datakey/plaintext/:name` and `datakey/wrapped/:name`: a fresh random key (`bits` 128,
/// 256 or 512; default 256) encrypted under the transit key; not logged.
pub(super) async fn datakey<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    tail: &str,
) -> Result<Response, VaultError> {
    let (kind, name) = tail.split_once('/').ok_or_else(VaultError::not_found)?;
    if !matches!(kind, "plaintext" | "wrapped") {
        return Err(VaultError::bad(format!(
            "invalid type {kind:?}: use plaintext or wrapped"
        )));
    }
    let bits = item_u64(&request.body, "bits")
        .map_err(VaultError::bad)?
        .unwrap_or(256);
    if !matches!(bits, 128 | 256 | 512) {
        return Err(VaultError::bad(format!(
            "invalid bit length {bits}: use 128, 256 or 512"
        )));
    }
    let path = format!("{mount}/datakey/{kind}/{name}");
    let key = authorized_key(node, request, &path, Capabilities::UPDATE, mount, name).await?;
    let key = encrypting(key, name)?;
    let version = encryption_version(
        &key,
        item_u64(&request.body, "key_version").map_err(VaultError::bad)?,
    )
    .map_err(VaultError::bad)?;
    let mut plaintext = Zeroizing::new(vec![0u8; bits as usize / 8]);
    rand_core::Rng::fill_bytes(&mut commonware_utils::sys_rng(), &mut plaintext);
    let encoded = base64(&plaintext);
    let sealed = seal_all(
        *crate::api::vault::cluster_keys(node)?.sharing.public(),
        key.id,
        vec![(version, plaintext)],
    )
    .await?
    .remove(0)
    .map_err(VaultError::internal)?;
    let mut data = json!({ "ciphertext": sealed, "key_version": version });
    if kind == "plaintext" {
        data["plaintext"] = json!(encoded);
    }
    super::ok(data)
}
