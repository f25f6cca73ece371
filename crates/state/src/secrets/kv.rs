//! KV version 2: versioned secrets with check-and-set, soft delete, undelete and destroy,
//! following Vault's KV v2 engine.
//!
//! A secret's metadata lists its kept versions; each version's sealed value is stored under
//! its own key. Directories are indexed (see [`super::dir`]: pages of entries per directory,
//! subdirectories ending in `/`) so that LIST needs no scan.

use super::{
    DEFAULT_MAX_VERSIONS, MAX_KEPT_VERSIONS, SecretsResult,
    dir::{index, unindex},
    records::{Meta, Value, VersionMeta},
};
use crate::{Overlay, Snapshot, keys};
use welkin_types::{
    Digest,
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
    super::mount(state, mount).is_some_and(|m| state.get(&keys::kv_meta(&m.id, path)).is_some())
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
    op: &SecretsOp,
) -> SecretsResult {
    let (mount_path, path) = match op {
        SecretsOp::KvWrite { mount, path, .. }
        | SecretsOp::KvRead { mount, path, .. }
        | SecretsOp::KvDelete { mount, path, .. }
        | SecretsOp::KvUndelete { mount, path, .. }
        | SecretsOp::KvDestroy { mount, path, .. }
        | SecretsOp::KvMetadataWrite { mount, path, .. }
        | SecretsOp::KvMetadataDelete { mount, path } => (mount, Some(path)),
        SecretsOp::KvConfigWrite { mount, .. } => (mount, None),
        _ => unreachable!("kv::execute is called for KV requests only"),
    };
    let Some(mut mount) = super::mount(state, mount_path) else {
        return SecretsResult::refused(
            404,
            format!("no secrets engine is mounted at {mount_path}/"),
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
        (None, SecretsOp::KvRead { .. }) => return SecretsResult::refused(404, ""),
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
                sealed: sealed.clone(),
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
        SecretsOp::KvRead {
            version, reader, ..
        } => {
            let version = if *version == 0 {
                meta.current
            } else {
                *version
            };
            let Some(found) = meta.version(version) else {
                return SecretsResult::refused(404, "");
            };
            if found.destroyed {
                return SecretsResult::refused(404, "destroyed");
            }
            if found.deleted_ms != 0 {
                return SecretsResult::refused(404, "deleted");
            }
            let Some(value) =
                state.decoded(&keys::kv_value(&mount.id, path, version), Value::decode)
            else {
                return SecretsResult::refused(404, "");
            };
            // A read changes nothing: no metadata write.
            return SecretsResult::Released {
                version,
                target: value.target,
                reader: *reader,
                sealed: value.sealed,
            };
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
                    state.delete(keys::kv_value(&mount.id, path, v.version));
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
                state.delete(keys::kv_value(&mount.id, path, v.version));
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
        state.delete(keys::kv_value(mount, path, dropped.version));
    }
}

/// The entries of directory `dir` (`""` or ending in `/`) of a mount, for LIST.
pub fn list<S: Snapshot>(state: &Overlay<'_, S>, mount: &Digest, dir: &str) -> Vec<String> {
    super::dir::list(state, mount, dir)
}
