//! KV version 2 over Vault's paths: `MOUNT/data/PATH`, `metadata`, `delete`, `undelete`,
//! `destroy` and `config`.

use super::{
    VaultError, VaultRequest, envelope, json_response, no_content, ok, open, rfc3339, submit,
};
use crate::{handle::NodeHandle, store::Runtime};
use axum::{http::StatusCode, response::Response};
use serde_json::{Map, Value as Json, json};
use welkin_policy::Capabilities;
use welkin_state::{
    keys,
    secrets::{
        SecretsResult,
        dir::{self, Head},
        records::{Meta, Mount, decode_names},
    },
};
use welkin_types::{Detachable, Digest, secrets::SecretsOp};

/// The mount a path falls under: the longest enabled mount that is the path or a prefix of
/// it at a `/`. Returns the mount path, its record and the rest of the path.
pub(crate) async fn resolve<E: Runtime>(
    node: &NodeHandle<E>,
    path: &str,
) -> Option<(String, Mount, String)> {
    let mounts = node.value(keys::secrets_mounts()).await?;
    let mounts = decode_names(&mounts).ok()?;
    let mount = mounts
        .iter()
        .filter(|m| path == m.as_str() || path.starts_with(&format!("{m}/")))
        .max_by_key(|m| m.len())?;
    let record = Mount::decode(&node.value(keys::secrets_mount(mount)).await?).ok()?;
    let rest = path[mount.len()..].trim_start_matches('/').to_string();
    Some((mount.clone(), record, rest))
}

pub(super) async fn handle<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
) -> Result<Response, VaultError> {
    let Some((mount, record, rest)) = resolve(node, &request.path).await else {
        return Err(VaultError::not_found());
    };
    if record.kind == welkin_types::secrets::MountKind::Transit {
        return super::transit::handle(node, request, &mount, &rest).await;
    }
    let (area, path) = rest.split_once('/').unwrap_or((rest.as_str(), ""));
    let method = request.method.as_str();
    match (area, method) {
        ("data", "GET") => read(node, request, &mount, &record, path).await,
        ("data", "PUT" | "POST") => write(node, request, &mount, &record, path).await,
        ("data", "PATCH") => patch(node, request, &mount, &record, path).await,
        ("data", "DELETE") => {
            simple(
                node,
                request,
                SecretsOp::KvDelete {
                    mount,
                    path: path.into(),
                    versions: vec![],
                },
            )
            .await
        }
        ("delete" | "undelete" | "destroy", "PUT" | "POST") => {
            let versions = versions(request)?;
            let (mount, path) = (mount, path.to_string());
            let op = match area {
                "delete" => SecretsOp::KvDelete {
                    mount,
                    path,
                    versions,
                },
                "undelete" => SecretsOp::KvUndelete {
                    mount,
                    path,
                    versions,
                },
                _ => SecretsOp::KvDestroy {
                    mount,
                    path,
                    versions,
                },
            };
            simple(node, request, op).await
        }
        ("metadata", "GET") => read_metadata(node, request, &mount, &record, path).await,
        ("metadata", "LIST") => list(node, request, &mount, &record, path).await,
        ("metadata", "PUT" | "POST" | "PATCH") => {
            let op = SecretsOp::KvMetadataWrite {
                mount,
                path: path.into(),
                max_versions: u32_field(request, "max_versions")?,
                cas_required: request.body.get("cas_required").and_then(Json::as_bool),
                custom_metadata: custom_metadata(request)?,
            };
            simple(node, request, op).await
        }
        ("metadata", "DELETE") => {
            simple(
                node,
                request,
                SecretsOp::KvMetadataDelete {
                    mount,
                    path: path.into(),
                },
            )
            .await
        }
        ("config", "GET") if path.is_empty() => {
            check(
                node,
                request,
                &format!("{mount}/config"),
                Capabilities::READ,
            )
            .await?;
            ok(json!({
                "cas_required": record.cas_required,
                "delete_version_after": "0s",
                "max_versions": record.max_versions,
            }))
        }
        ("config", "PUT" | "POST") if path.is_empty() => {
            let op = SecretsOp::KvConfigWrite {
                mount,
                max_versions: u32_field(request, "max_versions")?,
                cas_required: request.body.get("cas_required").and_then(Json::as_bool),
            };
            simple(node, request, op).await
        }
        ("data" | "metadata" | "delete" | "undelete" | "destroy" | "config", _) => {
            Err(VaultError::unsupported())
        }
        _ => Err(VaultError::not_found()),
    }
}

/// Submits `op` and answers 204.
async fn simple<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    op: SecretsOp,
) -> Result<Response, VaultError> {
    submit(node, request.token()?, op).await?;
    no_content()
}

/// A logged check that the token holds `needed` on `path`; the answer then comes from state.
pub(crate) async fn check<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    path: &str,
    needed: Capabilities,
) -> Result<(), VaultError> {
    submit(
        node,
        request.token()?,
        SecretsOp::Check {
            path: path.into(),
            capabilities: needed.bits(),
        },
    )
    .await
    .map(|_| ())
}

fn versions(request: &VaultRequest) -> Result<Vec<u64>, VaultError> {
    let Some(list) = request.body.get("versions").and_then(Json::as_array) else {
        return Err(VaultError::bad("no version number provided"));
    };
    let versions: Option<Vec<u64>> = list
        .iter()
        .map(|v| {
            v.as_u64()
                .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        })
        .collect();
    let versions = versions.ok_or_else(|| VaultError::bad("versions must be numbers"))?;
    if versions.is_empty() {
        return Err(VaultError::bad("no version number provided"));
    }
    if versions.len() > welkin_types::secrets::MAX_VERSIONS_PER_OP {
        return Err(VaultError::bad(format!(
            "{} versions; one request names at most {}",
            versions.len(),
            welkin_types::secrets::MAX_VERSIONS_PER_OP
        )));
    }
    Ok(versions)
}

fn u32_field(request: &VaultRequest, name: &str) -> Result<Option<u32>, VaultError> {
    match request.body.get(name) {
        None | Some(Json::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .or_else(|| value.as_str().and_then(|s| s.parse().ok()))
            .and_then(|n| u32::try_from(n).ok())
            .map(Some)
            .ok_or_else(|| VaultError::bad(format!("{name} must be a number"))),
    }
}

fn custom_metadata(request: &VaultRequest) -> Result<Option<Vec<(String, String)>>, VaultError> {
    use welkin_types::secrets::{
        MAX_CUSTOM_METADATA, MAX_METADATA_KEY_BYTES, MAX_METADATA_VALUE_BYTES,
    };
    let Some(value) = request.body.get("custom_metadata") else {
        return Ok(None);
    };
    let Some(map) = value.as_object() else {
        return Err(VaultError::bad(
            "custom_metadata must be an object of strings",
        ));
    };
    if map.len() > MAX_CUSTOM_METADATA {
        return Err(VaultError::bad(format!(
            "custom_metadata has {} keys; the limit is {MAX_CUSTOM_METADATA}",
            map.len()
        )));
    }
    let mut pairs = Vec::with_capacity(map.len());
    for (key, value) in map {
        let Some(value) = value.as_str() else {
            return Err(VaultError::bad(format!(
                "custom_metadata {key:?} must be a string"
            )));
        };
        if key.len() > MAX_METADATA_KEY_BYTES || value.len() > MAX_METADATA_VALUE_BYTES {
            return Err(VaultError::bad(format!(
                "custom_metadata keys are at most {MAX_METADATA_KEY_BYTES} bytes and values \
                 {MAX_METADATA_VALUE_BYTES}"
            )));
        }
        pairs.push((key.clone(), value.to_string()));
    }
    pairs.sort();
    Ok(Some(pairs))
}

async fn meta<E: Runtime>(node: &NodeHandle<E>, record: &Mount, path: &str) -> Option<Meta> {
    let bytes = node.value(keys::kv_meta(&record.id, path)).await?;
    Meta::decode(&bytes).ok()
}

fn custom_json(meta: Option<&Meta>) -> Json {
    match meta {
        Some(meta) if !meta.custom.is_empty() => Json::Object(
            meta.custom
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect(),
        ),
        _ => Json::Null,
    }
}

fn version_json(meta: Option<&Meta>, version: u64) -> Json {
    let v = meta.and_then(|m| m.version(version));
    json!({
        "created_time": v.map(|v| rfc3339(v.created_ms)).unwrap_or_default(),
        "custom_metadata": custom_json(meta),
        "deletion_time": v.filter(|v| v.deleted_ms != 0).map(|v| rfc3339(v.deleted_ms)).unwrap_or_default(),
        "destroyed": v.is_some_and(|v| v.destroyed),
        "version": version,
    })
}

/// A logged read: the read transaction, the value opened from the cluster's partials, and the
/// version's metadata (one state read: the mount was resolved before the request was sent,
/// and a mount's id never changes while it exists).
async fn read<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    record: &Mount,
    path: &str,
) -> Result<Response, VaultError> {
    let version = match request.query("version") {
        None | Some("") => 0,
        Some(text) => text
            .parse::<u64>()
            .map_err(|_| VaultError::bad(format!("invalid version {text:?}")))?,
    };
    let reader = welkin_sealed::ReaderKey::generate(&mut commonware_utils::sys_rng());
    let op = SecretsOp::KvRead {
        mount: mount.into(),
        path: path.into(),
        version,
        reader: reader.public(),
    };
    let (id, result) = match submit(node, request.token()?, op).await {
        Ok(done) => done,
        Err(error) if error.status == StatusCode::NOT_FOUND => {
            return Err(not_found_body(node, record, path, version).await);
        }
        Err(error) => return Err(error),
    };
    let SecretsResult::Released { .. } = result else {
        return Err(VaultError::internal("the read was not released"));
    };
    let (grant, value) = open::open(node, id, reader, super::COMMIT_WAIT).await?;
    let data: Json = serde_json::from_slice(&value)
        .map_err(|e| VaultError::internal(format!("the stored value is not JSON: {e}")))?;
    let meta = meta(node, record, path).await;
    ok(json!({
        "data": data,
        "metadata": version_json(meta.as_ref(), grant.version),
    }))
}

/// Vault's 404 for a version that is deleted or destroyed: the metadata, no data.
async fn not_found_body<E: Runtime>(
    node: &NodeHandle<E>,
    record: &Mount,
    path: &str,
    version: u64,
) -> VaultError {
    let Some(meta) = meta(node, record, path).await else {
        return VaultError::not_found();
    };
    let version = if version == 0 { meta.current } else { version };
    match meta.version(version) {
        Some(v) if v.deleted_ms != 0 || v.destroyed => VaultError::with_body(
            StatusCode::NOT_FOUND,
            envelope(json!({
                "data": null,
                "metadata": version_json(Some(&meta), version),
            })),
        ),
        _ => VaultError::not_found(),
    }
}

async fn write_data<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    record: &Mount,
    path: &str,
    data: &Map<String, Json>,
    cas: Option<u64>,
) -> Result<Response, VaultError> {
    let plaintext = serde_json::to_vec(data).map_err(|e| VaultError::internal(e.to_string()))?;
    let (nonce, sealed) = super::seal(
        node,
        &[b"kv2", mount.as_bytes(), path.as_bytes()],
        plaintext,
    )
    .await?;
    let op = SecretsOp::KvWrite {
        mount: mount.into(),
        path: path.into(),
        nonce,
        sealed: Detachable::new(sealed),
        cas,
    };
    let (_, result) = submit(node, request.token()?, op).await?;
    let SecretsResult::Written {
        version,
        created_ms,
    } = result
    else {
        return Err(VaultError::internal("the write made no version"));
    };
    let meta = meta(node, record, path).await;
    let mut answer = version_json(meta.as_ref(), version);
    answer["created_time"] = Json::String(rfc3339(created_ms));
    ok(answer)
}

async fn write<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    record: &Mount,
    path: &str,
) -> Result<Response, VaultError> {
    let Some(data) = request.body.get("data").and_then(Json::as_object) else {
        return Err(VaultError::bad("no data provided"));
    };
    let cas = request
        .body
        .get("options")
        .and_then(|o| o.get("cas"))
        .and_then(|c| {
            c.as_u64()
                .or_else(|| c.as_str().and_then(|s| s.parse().ok()))
        });
    write_data(node, request, mount, record, path, data, cas).await
}

/// PATCH: a logged read of the latest version, a JSON merge patch (RFC 7386), and a write
/// that checks-and-sets against the version read.
async fn patch<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    record: &Mount,
    path: &str,
) -> Result<Response, VaultError> {
    let Some(changes) = request.body.get("data").and_then(Json::as_object) else {
        return Err(VaultError::bad("no data provided"));
    };
    let reader = welkin_sealed::ReaderKey::generate(&mut commonware_utils::sys_rng());
    let op = SecretsOp::KvRead {
        mount: mount.into(),
        path: path.into(),
        version: 0,
        reader: reader.public(),
    };
    let (id, _) = submit(node, request.token()?, op).await?;
    let (grant, value) = open::open(node, id, reader, super::COMMIT_WAIT).await?;
    let mut current: Json = serde_json::from_slice(&value)
        .map_err(|e| VaultError::internal(format!("the stored value is not JSON: {e}")))?;
    welkin_types::api::merge_patch(&mut current, &Json::Object(changes.clone()));
    let Json::Object(merged) = current else {
        return Err(VaultError::internal("the patched value is not an object"));
    };
    write_data(
        node,
        request,
        mount,
        record,
        path,
        &merged,
        Some(grant.version),
    )
    .await
}

async fn read_metadata<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    record: &Mount,
    path: &str,
) -> Result<Response, VaultError> {
    check(
        node,
        request,
        &format!("{mount}/metadata/{path}"),
        Capabilities::READ,
    )
    .await?;
    let meta = meta(node, record, path)
        .await
        .ok_or_else(VaultError::not_found)?;
    let versions: Map<String, Json> = meta
        .versions
        .iter()
        .map(|v| {
            (
                v.version.to_string(),
                json!({
                    "created_time": rfc3339(v.created_ms),
                    "deletion_time": if v.deleted_ms == 0 { String::new() } else { rfc3339(v.deleted_ms) },
                    "destroyed": v.destroyed,
                }),
            )
        })
        .collect();
    ok(json!({
        "cas_required": meta.cas_required,
        "created_time": rfc3339(meta.created_ms),
        "current_version": meta.current,
        "custom_metadata": custom_json(Some(&meta)),
        "delete_version_after": "0s",
        "max_versions": meta.max_versions,
        "oldest_version": meta.versions.first().map_or(0, |v| v.version),
        "updated_time": rfc3339(meta.updated_ms),
        "versions": versions,
    }))
}

async fn list<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    mount: &str,
    record: &Mount,
    path: &str,
) -> Result<Response, VaultError> {
    let dir = if path.is_empty() {
        String::new()
    } else {
        format!("{path}/")
    };
    check(
        node,
        request,
        &format!("{mount}/metadata/{dir}"),
        Capabilities::LIST,
    )
    .await?;
    let keys = directory(node, &record.id, &dir).await?;
    if keys.is_empty() {
        return Err(VaultError::not_found());
    }
    Ok(json_response(
        StatusCode::OK,
        &envelope(json!({ "keys": keys })),
    ))
}

/// Tries to read a directory's head and pages as of one height before giving up.
const LIST_ATTEMPTS: usize = 4;

/// The sorted entries of directory `dir` of a mount: its head, then the head again with its
/// pages in one read of the state, so that all come from the same height (a commit between
/// the two reads shows as a changed head, and the read is made again).
async fn directory<E: Runtime>(
    node: &NodeHandle<E>,
    mount: &Digest,
    dir: &str,
) -> Result<Vec<String>, VaultError> {
    let head_key = keys::kv_dir(mount, dir);
    for _ in 0..LIST_ATTEMPTS {
        let Some(head) = node.value(head_key).await else {
            return Ok(Vec::new());
        };
        let decoded = Head::decode(&head).map_err(|e| VaultError::internal(e.to_string()))?;
        let pages = match &decoded {
            Head::Listed(_) => Vec::new(),
            Head::Paged(count) => dir::page_keys(mount, dir, *count),
        };
        let mut wanted = vec![head_key];
        wanted.extend(pages);
        let mut values = node.values(wanted).await.into_iter();
        if values.next().flatten().as_deref() != Some(head.as_slice()) {
            continue;
        }
        let pages: Vec<Option<Vec<u8>>> = values.collect();
        return dir::entries(decoded, pages.iter().map(Option::as_deref))
            .map_err(|e| VaultError::internal(e.to_string()));
    }
    Err(VaultError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        format!("directory {dir:?} changed during each of {LIST_ATTEMPTS} reads; list again"),
    ))
}
