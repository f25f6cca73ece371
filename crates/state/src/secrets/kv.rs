//! KV version 2: versioned secrets with check-and-set, soft delete, undelete and destroy,
//! following Vault's KV v2 engine.
//!
//! A secret's metadata lists its kept versions; each version's sealed value is stored under
//! its own key. Directories are indexed (see [`super::dir`]: pages of entries per directory,
//! subdirectories ending in `/`) so that LIST needs no scan.

use super::{
    DEFAULT_MAX_VERSIONS, MAX_KEPT_VERSIONS, SecretsResult,
    dir::{index, unindex},
    records::{Meta, Value, ValueRef, VersionMeta},
};
use crate::{Overlay, Snapshot, keys};
use welkin_types::{
    Digest, TxId,
    secrets::{MAX_SECRET_PATH_BYTES, SecretsOp},
};

/// Whether `path` is a valid secret path: 1-512 bytes, `/`-separated non-empty segments
/// that are not `.` or `..`, no control characters.
pub fn valid_path(path: &str) -> Result<(), String> {
    let ok = !path.is_empty()
        && path.len() <= MAX_SECRET_PATH_BYTES
        && !path.chars().any(char::is_control)
        && path
            .split('/')
            .all(|s| !s.is_empty() && s != "." && s != "..");
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid secret path {path:?}: use 1-{MAX_SECRET_PATH_BYTES} bytes of non-empty \
             segments separated by /, without . or .. segments"
        ))
    }
}

/// The target of a version's value: what the cluster signs to open it.
pub fn target(mount: &str, path: &str, nonce: &[u8; 32]) -> Digest {
    let mut parts: Vec<&[u8]> = vec![b"welkin/sealed/target/v1", b"kv2", mount.as_bytes()];
    parts.push(path.as_bytes());
    parts.push(nonce);
    welkin_types::hash_parts(&parts)
}

/// Whether a secret exists at `path` (for create-versus-update).
pub(super) fn exists<S: Snapshot>(state: &Overlay<'_, S>, mount: &str, path: &str) -> bool {
    super::kv_mount(state, mount).is_some_and(|m| state.get(&keys::kv_meta(&m.id, path)).is_some())
}

/// A version a read may release: its mount's id, its number (0 resolved to the latest) and
/// its stored value.
pub(super) struct Readable {
    /// The id of the mount enabled at the path's mount.
    pub(super) mount: Digest,
    /// The version.
    pub(super) version: u64,
    /// Its target and sealed value.
    pub(super) value: Value,
}

/// The version a read of `mount_path`/`path` at `version` (0: the latest) finds, or Vault's
/// refusal: 404 for a missing mount, secret or version, or a deleted or destroyed one.
pub(super) fn readable<S: Snapshot>(
    state: &Overlay<'_, S>,
    mount_path: &str,
    path: &str,
    version: u64,
) -> Result<Readable, SecretsResult> {
    let Some(mount) = super::kv_mount(state, mount_path) else {
        return Err(SecretsResult::refused(
            404,
            format!("no KV version 2 engine is mounted at {mount_path}/"),
        ));
    };
    valid_path(path).map_err(|reason| SecretsResult::refused(400, reason))?;
    let Some(meta) = state.decoded(&keys::kv_meta(&mount.id, path), Meta::decode) else {
        return Err(SecretsResult::refused(404, ""));
    };
    let version = if version == 0 { meta.current } else { version };
    let Some(found) = meta.version(version) else {
        return Err(SecretsResult::refused(404, ""));
    };
    if found.destroyed {
        return Err(SecretsResult::refused(404, "destroyed"));
    }
    if found.deleted_ms != 0 {
        return Err(SecretsResult::refused(404, "deleted"));
    }
    let Some(value) = state.decoded(&keys::kv_value(&mount.id, path, version), Value::decode)
    else {
        return Err(SecretsResult::refused(404, ""));
    };
    Ok(Readable {
        mount: mount.id,
        version,
        value,
    })
}

fn kept(meta: &Meta, mount_max: u32) -> usize {
    let max = if meta.max_versions != 0 {
        meta.max_versions
    } else if mount_max != 0 {
        mount_max
    } else {
        DEFAULT_MAX_VERSIONS
    };
    max.min(MAX_KEPT_VERSIONS) as usize
}

pub(super) fn execute<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    id: &TxId,
    op: &SecretsOp,
) -> SecretsResult {
    if let SecretsOp::KvRead {
        mount,
        path,
        version,
        reader,
    } = op
    {
        return match readable(state, mount, path, *version) {
            Ok(found) if super::recipients::sealed_to_recipients(state, &found, path) => {
                SecretsResult::refused(
                    400,
                    format!(
                        "version {} of {mount}/{path} is sealed to recipients: a recipient opens \
                         it with `welkin kv open` (a node reading it for you would see it)",
                        found.version
                    ),
                )
            }
            // A read changes nothing: no metadata write.
            Ok(found) => SecretsResult::Released {
                version: found.version,
                target: found.value.target,
                reader: *reader,
                sealed: found.value.sealed,
            },
            Err(refusal) => refusal,
        };
    }
    let (mount_path, path) = match op {
        SecretsOp::KvWrite { mount, path, .. }
        | SecretsOp::KvDelete { mount, path, .. }
        | SecretsOp::KvUndelete { mount, path, .. }
        | SecretsOp::KvDestroy { mount, path, .. }
        | SecretsOp::KvMetadataWrite { mount, path, .. }
        | SecretsOp::KvMetadataDelete { mount, path } => (mount, Some(path)),
        SecretsOp::KvConfigWrite { mount, .. } => (mount, None),
        _ => unreachable!("kv::execute is called for KV requests only"),
    };
    let Some(mut mount) = super::kv_mount(state, mount_path) else {
        return SecretsResult::refused(
            404,
            format!("no KV version 2 engine is mounted at {mount_path}/"),
        );
    };
    let Some(path) = path else {
        let SecretsOp::KvConfigWrite {
            max_versions,
            cas_required,
            ..
        } = op
        else {
            unreachable!("only config has no path")
        };
        if let Err(refusal) = settle(
            *max_versions,
            *cas_required,
            &mut mount.max_versions,
            &mut mount.cas_required,
        ) {
            return refusal;
        }
        state.put(keys::secrets_mount(mount_path), mount.encode());
        return SecretsResult::Done;
    };
    if let Err(reason) = valid_path(path) {
        return SecretsResult::refused(400, reason);
    }
    let meta_key = keys::kv_meta(&mount.id, path);
    let stored = state.decoded(&meta_key, Meta::decode);
    let mut meta = match (stored, op) {
        (Some(meta), _) => meta,
        (None, SecretsOp::KvWrite { .. } | SecretsOp::KvMetadataWrite { .. }) => {
            if let Err(refusal) = index(state, &mount.id, path) {
                return refusal;
            }
            Meta::new(now)
        }
        (None, _) => return SecretsResult::Done,
    };
    let result = match op {
        SecretsOp::KvWrite {
            nonce, sealed, cas, ..
        } => {
            if cas.is_none() && (meta.cas_required || mount.cas_required) {
                return SecretsResult::refused(
                    400,
                    "check-and-set parameter required for this call",
                );
            }
            if let Some(cas) = cas
                && *cas != meta.current
            {
                return SecretsResult::refused(
                    400,
                    "check-and-set parameter did not match the current version",
                );
            }
            let version = meta.current + 1;
            let value = Value {
                target: target(mount_path, path, nonce),
                sealed: ValueRef {
                    tx: *id,
                    digest: sealed.digest(),
                },
            };
            state.put(keys::kv_value(&mount.id, path, version), value.encode());
            meta.current = version;
            meta.versions.push(VersionMeta {
                version,
                created_ms: now,
                deleted_ms: 0,
                destroyed: false,
            });
            trim(state, &mount.id, path, &mut meta, mount.max_versions);
            SecretsResult::Written {
                version,
                created_ms: now,
            }
        }
        SecretsOp::KvDelete { versions, .. } => {
            let versions = if versions.is_empty() {
                vec![meta.current]
            } else {
                versions.clone()
            };
            for v in meta.versions.iter_mut() {
                if versions.contains(&v.version) && v.deleted_ms == 0 && !v.destroyed {
                    v.deleted_ms = now;
                }
            }
            SecretsResult::Done
        }
        SecretsOp::KvUndelete { versions, .. } => {
            for v in meta.versions.iter_mut() {
                if versions.contains(&v.version) && !v.destroyed {
                    v.deleted_ms = 0;
                }
            }
            SecretsResult::Done
        }
        SecretsOp::KvDestroy { versions, .. } => {
            for v in meta.versions.iter_mut() {
                if versions.contains(&v.version) && !v.destroyed {
                    v.destroyed = true;
                    shred(state, keys::kv_value(&mount.id, path, v.version));
                    state.delete(keys::kv_recipients(&mount.id, path, v.version));
                }
            }
            SecretsResult::Done
        }
        SecretsOp::KvMetadataWrite {
            max_versions,
            cas_required,
            custom_metadata,
            ..
        } => {
            if let Err(refusal) = settle(
                *max_versions,
                *cas_required,
                &mut meta.max_versions,
                &mut meta.cas_required,
            ) {
                return refusal;
            }
            if let Some(custom) = custom_metadata {
                meta.custom = custom.clone();
            }
            trim(state, &mount.id, path, &mut meta, mount.max_versions);
            SecretsResult::Done
        }
        SecretsOp::KvMetadataDelete { .. } => {
            for v in &meta.versions {
                shred(state, keys::kv_value(&mount.id, path, v.version));
                state.delete(keys::kv_recipients(&mount.id, path, v.version));
            }
            state.delete(meta_key);
            unindex(state, &mount.id, path);
            return SecretsResult::Done;
        }
        _ => unreachable!("handled above or not a KV request"),
    };
    meta.updated_ms = now;
    state.put(meta_key, meta.encode());
    result
}

/// Applies the settings a request gives (a mount's or a secret's), refusing more kept
/// versions than the cluster allows.
fn settle(
    max_versions: Option<u32>,
    cas_required: Option<bool>,
    kept: &mut u32,
    cas: &mut bool,
) -> Result<(), SecretsResult> {
    if let Some(max) = max_versions {
        if max > MAX_KEPT_VERSIONS {
            return Err(SecretsResult::refused(
                400,
                format!("max_versions {max} is over the {MAX_KEPT_VERSIONS} this cluster keeps"),
            ));
        }
        *kept = max;
    }
    if let Some(required) = cas_required {
        *cas = required;
    }
    Ok(())
}

/// Drops the oldest versions beyond what is kept, with their ciphertext.
fn trim<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    mount: &Digest,
    path: &str,
    meta: &mut Meta,
    mount_max: u32,
) {
    let keep = kept(meta, mount_max);
    while meta.versions.len() > keep {
        let dropped = meta.versions.remove(0);
        shred(state, keys::kv_value(mount, path, dropped.version));
        state.delete(keys::kv_recipients(mount, path, dropped.version));
    }
}

/// Deletes a version's value and marks its bytes for destruction on every node.
pub(super) fn shred<S: Snapshot>(state: &mut Overlay<'_, S>, key: Digest) {
    if let Some(value) = state.decoded(&key, Value::decode) {
        state.shredded.push(value.sealed.tx);
    }
    state.delete(key);
}

/// The entries of directory `dir` (`""` or ending in `/`) of a mount, for LIST.
pub fn list<S: Snapshot>(state: &Overlay<'_, S>, mount: &Digest, dir: &str) -> Vec<String> {
    super::dir::list(state, mount, dir)
}
