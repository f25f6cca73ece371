//! `random` and `hash`: public computations, not logged (the token's policy is still checked).

use super::{VaultRequest, authorized_key, base64, base64_field, item_u64};
use crate::{api::vault::VaultError, handle::NodeHandle, store::Runtime};
use axum::response::Response;
use serde_json::json;
use welkin_policy::Capabilities;

/// Most random bytes one request gets (Vault's limit, 128 KiB).
const MAX_RANDOM_BYTES: u64 = 128 * 1024;

/// Checks the token may update `path`.
async fn allowed<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    path: &str,
) -> Result<(), VaultError> {
    // The key name is never a real key here (it has a '/'): only the policy is asked.
    authorized_key(node, request, path, Capabilities::UPDATE, mount, "/").await?;
    Ok(())
}

/// Encodes `bytes` as `format` asks (`base64` or `hex`).
fn formatted(bytes: &[u8], format: &str) -> Result<String, VaultError> {
    match format {
        "base64" => Ok(base64(bytes)),
        "hex" => Ok(hex::encode(bytes)),
        other => Err(VaultError::bad(format!(
            "unsupported encoding format {other:?}; must be \"hex\" or \"base64\""
        ))),
    }
}

/// `random[/:source][/:bytes]`: `bytes` (default 32, at most 128 KiB), `format`.
pub(super) async fn random<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    tail: &str,
) -> Result<Response, VaultError> {
    let mut bytes = item_u64(&request.body, "bytes").map_err(VaultError::bad)?;
    for part in tail.split('/').filter(|p| !p.is_empty()) {
        match part {
            "platform" | "seal" | "all" => {}
            number => {
                bytes = Some(number.parse().map_err(|_| {
                    VaultError::bad(format!("unable to parse bytes as integer: {number:?}"))
                })?)
            }
        }
    }
    let bytes = bytes.unwrap_or(32);
    if bytes == 0 || bytes > MAX_RANDOM_BYTES {
        return Err(VaultError::bad(format!(
            "invalid number of bytes {bytes}: ask for 1 to {MAX_RANDOM_BYTES}"
        )));
    }
    let format = request.str_field("format").unwrap_or("base64");
    formatted(&[], format)?;
    allowed(node, request, mount, &format!("{mount}/random")).await?;
    let mut out = vec![0u8; bytes as usize];
    rand_core::Rng::fill_bytes(&mut commonware_utils::sys_rng(), &mut out);
    super::ok(json!({ "random_bytes": formatted(&out, format)? }))
}

/// `hash[/:algorithm]`: sha2-224, sha2-256 (default), sha2-384, sha2-512; `format` hex
/// (default) or base64.
pub(super) async fn hash<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    tail: &str,
) -> Result<Response, VaultError> {
    use sha2::Digest as _;
    let algorithm = Some(tail)
        .filter(|t| !t.is_empty())
        .or_else(|| request.str_field("algorithm"))
        .unwrap_or("sha2-256");
    let input = base64_field(&request.body, "input").map_err(VaultError::bad)?;
    let sum = match algorithm {
        "sha2-224" => sha2::Sha224::digest(&input).to_vec(),
        "sha2-256" => sha2::Sha256::digest(&input).to_vec(),
        "sha2-384" => sha2::Sha384::digest(&input).to_vec(),
        "sha2-512" => sha2::Sha512::digest(&input).to_vec(),
        other if other.starts_with("sha3-") => {
            return Err(VaultError::bad(format!(
                "unsupported hash algorithm {other:?}: sha3 is not offered here; use \
                 sha2-224, sha2-256, sha2-384 or sha2-512"
            )));
        }
        other => {
            return Err(VaultError::bad(format!(
                "unsupported hash algorithm {other:?}"
            )));
        }
    };
    let format = request.str_field("format").unwrap_or("hex");
    formatted(&[], format)?;
    allowed(node, request, mount, &format!("{mount}/hash")).await?;
    super::ok(json!({ "sum": formatted(&sum, format)? }))
}
