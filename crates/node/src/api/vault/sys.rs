//! `sys/`: health, seal status, mounts and ACL policies.

use super::{VaultError, VaultRequest, json_response, kv::check, no_content, ok, submit};
use crate::{handle::NodeHandle, store::Runtime};
use axum::{http::StatusCode, response::Response};
use commonware_codec::Encode as _;
use serde_json::{Map, Value as Json, json};
use welkin_policy::{Capabilities, Policy};
use welkin_state::{
    keys,
    secrets::records::{Mount, decode_names},
};
use welkin_types::secrets::{MountKind, SecretsOp};

pub(super) async fn handle<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
) -> Result<Response, VaultError> {
    let rest = request.path.strip_prefix("sys").unwrap_or_default();
    let rest = rest.trim_start_matches('/');
    let method = request.method.as_str();
    match (rest, method) {
        ("health", "GET" | "HEAD") => Ok(health(node)),
        ("seal-status", "GET") => Ok(seal_status(node)),
        ("mounts", "GET") => list_mounts(node, request).await,
        ("policies/acl" | "policy", "LIST") | ("policy", "GET") => {
            list_policies(node, request).await
        }
        _ => {
            if let Some(mount) = rest.strip_prefix("mounts/") {
                return mounts(node, request, mount).await;
            }
            if let Some(name) = rest
                .strip_prefix("policies/acl/")
                .or_else(|| rest.strip_prefix("policy/"))
            {
                return policy(node, request, name).await;
            }
            Err(VaultError::not_found())
        }
    }
}

/// Always initialized and unsealed: the cluster key is never assembled anywhere, so there
/// is nothing to unseal; each node holds its share from start-up.
fn health<E: Runtime>(node: &NodeHandle<E>) -> Response {
    json_response(
        StatusCode::OK,
        &json!({
            "initialized": true,
            "sealed": false,
            "standby": false,
            "performance_standby": false,
            "replication_performance_mode": "disabled",
            "replication_dr_mode": "disabled",
            "server_time_utc": crate::application::now_ms(node.clock()) / 1_000,
            "version": concat!("welkin-", env!("CARGO_PKG_VERSION")),
            "cluster_name": node.genesis().chain.name,
            "cluster_id": hex::encode(node.cluster_id()),
        }),
    )
}

fn seal_status<E: Runtime>(node: &NodeHandle<E>) -> Response {
    let genesis = node.genesis();
    json_response(
        StatusCode::OK,
        &json!({
            "type": "shamir",
            "initialized": true,
            "sealed": false,
            "t": genesis.threshold,
            "n": genesis.nodes.len(),
            "progress": 0,
            "nonce": "",
            "version": concat!("welkin-", env!("CARGO_PKG_VERSION")),
            "build_date": "",
            "migration": false,
            "cluster_name": genesis.chain.name,
            "cluster_id": hex::encode(node.cluster_id()),
            "recovery_seal": false,
            "storage_type": "welkin",
        }),
    )
}

fn mount_json(record: &Mount) -> Json {
    let kind = record.kind.name();
    let options = match record.kind {
        MountKind::Kv2 => json!({ "version": "2" }),
        MountKind::Transit => Json::Null,
    };
    json!({
        "accessor": format!("{kind}_{}", &hex::encode(record.id)[..8]),
        "config": {
            "default_lease_ttl": 0,
            "max_lease_ttl": 0,
            "force_no_cache": false,
        },
        "description": record.description,
        "external_entropy_access": false,
        "local": false,
        "options": options,
        "plugin_version": "",
        "running_plugin_version": "",
        "seal_wrap": false,
        "type": kind,
        "uuid": hex::encode(&record.id.as_ref()[..16]),
    })
}

async fn list_mounts<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
) -> Result<Response, VaultError> {
    check(node, request, "sys/mounts", Capabilities::READ).await?;
    let names = match node.value(keys::secrets_mounts()).await {
        Some(bytes) => decode_names(&bytes).map_err(|e| VaultError::internal(e.to_string()))?,
        None => Vec::new(),
    };
    let mut mounts = Map::new();
    for name in names {
        if let Some(bytes) = node.value(keys::secrets_mount(&name)).await {
            let record = Mount::decode(&bytes).map_err(|e| VaultError::internal(e.to_string()))?;
            mounts.insert(format!("{name}/"), mount_json(&record));
        }
    }
    // Vault answers with the mounts both at the top level (older clients) and under data.
    let mut body = super::envelope(Json::Object(mounts.clone()));
    if let Json::Object(top) = &mut body {
        for (name, mount) in mounts {
            top.insert(name, mount);
        }
    }
    Ok(json_response(StatusCode::OK, &body))
}

async fn mounts<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
) -> Result<Response, VaultError> {
    match request.method.as_str() {
        "POST" | "PUT" => {
            let kind = request.str_field("type").unwrap_or_default();
            let version = request
                .body
                .get("options")
                .and_then(|o| o.get("version"))
                .map(|v| {
                    v.as_str()
                        .map(str::to_string)
                        .unwrap_or_else(|| v.to_string())
                });
            let kind = match (kind, version.as_deref()) {
                ("kv-v2", _) | ("kv", Some("2")) => MountKind::Kv2,
                ("kv", _) => {
                    return Err(VaultError::bad(
                        "only KV version 2 is offered: set options.version to \"2\"",
                    ));
                }
                ("transit", _) => MountKind::Transit,
                (other, _) => {
                    return Err(VaultError::bad(format!(
                        "plugin not found in the catalog: {other} (this cluster offers kv \
                         version 2 and transit)"
                    )));
                }
            };
            let op = SecretsOp::MountEnable {
                kind,
                mount: mount.to_string(),
                description: request
                    .str_field("description")
                    .unwrap_or_default()
                    .to_string(),
            };
            submit(node, request.token()?, op).await?;
            no_content()
        }
        "DELETE" => {
            let op = SecretsOp::MountDisable {
                mount: mount.to_string(),
            };
            submit(node, request.token()?, op).await?;
            no_content()
        }
        "GET" => {
            check(
                node,
                request,
                &format!("sys/mounts/{mount}"),
                Capabilities::READ,
            )
            .await?;
            let bytes = node
                .value(keys::secrets_mount(mount))
                .await
                .ok_or_else(VaultError::not_found)?;
            let record = Mount::decode(&bytes).map_err(|e| VaultError::internal(e.to_string()))?;
            ok(mount_json(&record))
        }
        _ => Err(VaultError::unsupported()),
    }
}

async fn list_policies<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
) -> Result<Response, VaultError> {
    let legacy = request.path == "sys/policy";
    let path = if legacy {
        "sys/policy"
    } else {
        "sys/policies/acl/"
    };
    let needed = if legacy {
        Capabilities::READ
    } else {
        Capabilities::LIST
    };
    check(node, request, path, needed).await?;
    let mut names = match node.value(keys::policies()).await {
        Some(bytes) => decode_names(&bytes).map_err(|e| VaultError::internal(e.to_string()))?,
        None => Vec::new(),
    };
    for builtin in ["default", "root"] {
        if let Err(at) = names.binary_search_by(|n| n.as_str().cmp(builtin)) {
            names.insert(at, builtin.to_string());
        }
    }
    if legacy {
        return ok(json!({ "keys": names, "policies": names }));
    }
    ok(json!({ "keys": names }))
}

async fn policy<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    name: &str,
) -> Result<Response, VaultError> {
    let name = name.to_ascii_lowercase();
    let path = format!("sys/policies/acl/{name}");
    match request.method.as_str() {
        "GET" => {
            check(node, request, &path, Capabilities::READ).await?;
            let text = match node.value(keys::policy(&name)).await {
                Some(bytes) => {
                    welkin_types::decode::<Policy>(&bytes)
                        .map_err(|e| VaultError::internal(e.to_string()))?
                        .text
                }
                None if name == "default" => welkin_policy::default_policy().text,
                None if name == "root" => String::new(),
                None => return Err(VaultError::not_found()),
            };
            ok(json!({ "name": name, "policy": text, "rules": text }))
        }
        "PUT" | "POST" => {
            let text = request
                .str_field("policy")
                .or_else(|| request.str_field("rules"))
                .ok_or_else(|| VaultError::bad("'policy' parameter not supplied or empty"))?;
            let text = decode_maybe_base64(text);
            let parsed = welkin_policy::parse(&name, &text)
                .map_err(|e| VaultError::bad(format!("failed to parse policy: {e}")))?;
            let op = SecretsOp::PolicyWrite {
                name: name.clone(),
                policy: parsed.encode().to_vec(),
            };
            if op_too_large(&op) {
                return Err(VaultError::new(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    "the policy is too large to store",
                ));
            }
            submit(node, request.token()?, op).await?;
            no_content()
        }
        "DELETE" => {
            submit(node, request.token()?, SecretsOp::PolicyDelete { name }).await?;
            no_content()
        }
        _ => Err(VaultError::unsupported()),
    }
}

/// Vault accepts a policy body in base64 too.
fn decode_maybe_base64(text: &str) -> String {
    use base64::Engine as _;
    if text.contains('"') || text.contains('{') {
        return text.to_string();
    }
    base64::engine::general_purpose::STANDARD
        .decode(text.trim())
        .ok()
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .unwrap_or_else(|| text.to_string())
}

fn op_too_large(op: &SecretsOp) -> bool {
    use commonware_codec::EncodeSize as _;
    op.encode_size() > welkin_types::secrets::MAX_POLICY_BYTES + 256
}
