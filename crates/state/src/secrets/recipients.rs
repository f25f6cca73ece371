//! Values sealed to named recipients (KERI identifiers) as well as to the cluster.
//!
//! **Encryption keys.** An identifier registers an X25519 public key with an
//! [`SecretsOp::EncryptionKey`] request that it sends itself, signed by its current keys
//! meeting its threshold (checked before the request runs, as for `auth/keri/login`). The key
//! is stored with the sequence number of the identifier's latest establishment event at that
//! height, and counts only while that is still the latest: a rotation voids it until the
//! identifier registers again with its new keys. So the key is vouched for by the key state
//! the KEL shows, and a rotated-out (perhaps stolen) signing key cannot register another.
//!
//! **Sealing.** [`SecretsOp::KvSeal`] writes a KV v2 version exactly as `KvWrite` does (same
//! checks, the same ciphertext sealed to the cluster key, the same target) and also stores
//! an envelope: the same value sealed to each recipient's key. The state machine cannot
//! open either; it checks that every named recipient has a current key and that the envelope
//! is addressed to exactly those keys, in the order named, and records the recipients.
//!
//! **Opening.** A recipient opens the envelope offline from certified state. A version sealed
//! to recipients is never released by `KvRead` (a node reading for a Vault client would see
//! it); [`SecretsOp::KvOpen`] releases its partials only to a token bound by a KERI login to
//! an identifier that is a recipient now, beyond the ACL's `read`. That is how a recipient
//! added later by [`SecretsOp::KvReseal`] opens it: through a logged threshold read whose
//! partials are sealed to its one-time key, so no node sees the value.

pub mod records;
#[cfg(test)]
pub(super) mod tests;

use super::{SecretsResult, kv};
use crate::{Overlay, Snapshot, keys};
use records::{EncryptionKey, Recipients};
use welkin_sealed::RecipientSealed;
use welkin_types::{
    TxId,
    secrets::{KvReseal, KvSeal, SecretsOp},
};

/// Registers `key` as `prefix`'s encryption key, bound to its current key state; the
/// identifier's current keys signed the request.
pub(super) fn register<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    prefix: &str,
    key: &[u8; 32],
) -> SecretsResult {
    let Some(key_state) = crate::identity::key_state_of(state, prefix) else {
        return SecretsResult::denied();
    };
    let record = EncryptionKey {
        key: *key,
        establishment_sn: key_state.last_establishment_sn,
        registered_ms: now,
    };
    state.put(keys::encryption_key(prefix), record.encode());
    SecretsResult::Done
}

/// `prefix`'s encryption key, if it registered one under its current key state.
pub fn current_key<S: Snapshot>(state: &Overlay<'_, S>, prefix: &str) -> Option<[u8; 32]> {
    let record = state.decoded(&keys::encryption_key(prefix), EncryptionKey::decode)?;
    let key_state = crate::identity::key_state_of(state, prefix)?;
    (record.establishment_sn == key_state.last_establishment_sn).then_some(record.key)
}

/// Whether the version `found` of `path` is sealed to recipients.
pub(super) fn sealed_to_recipients<S: Snapshot>(
    state: &Overlay<'_, S>,
    found: &kv::Readable,
    path: &str,
) -> bool {
    state
        .get(&keys::kv_recipients(&found.mount, path, found.version))
        .is_some()
}

/// Runs an authorised recipient request sent by a token bound to `identity` (if any).
pub(super) fn execute<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    id: &TxId,
    identity: Option<&str>,
    op: &SecretsOp,
) -> SecretsResult {
    match op {
        SecretsOp::KvSeal(request) => seal(state, now, id, request),
        SecretsOp::KvOpen {
            mount,
            path,
            version,
            reader,
        } => {
            let found = match kv::readable(state, mount, path, *version) {
                Ok(found) => found,
                Err(refusal) => return refusal,
            };
            let Some(record) = recipients_of(state, &found, path) else {
                return SecretsResult::refused(
                    400,
                    format!(
                        "version {} of {mount}/{path} is not sealed to recipients: read it with \
                         `welkin kv get`",
                        found.version
                    ),
                );
            };
            let Some(prefix) = identity else {
                return SecretsResult::refused(
                    403,
                    "permission denied: only a recipient opens this version, and this token is \
                     bound to no identifier (log in with `welkin login --as NAME`)",
                );
            };
            if !record.includes(prefix) {
                return SecretsResult::refused(
                    403,
                    format!(
                        "permission denied: {prefix} is not a recipient of version {} of \
                         {mount}/{path}",
                        found.version
                    ),
                );
            }
            SecretsResult::Released {
                version: found.version,
                target: found.value.target,
                reader: *reader,
                sealed: found.value.sealed,
            }
        }
        SecretsOp::KvReseal(request) => reseal(state, now, request),
        _ => unreachable!("recipients::execute is called for recipient requests only"),
    }
}

fn recipients_of<S: Snapshot>(
    state: &Overlay<'_, S>,
    found: &kv::Readable,
    path: &str,
) -> Option<Recipients> {
    state.decoded(
        &keys::kv_recipients(&found.mount, path, found.version),
        Recipients::decode,
    )
}

/// The current encryption keys of `recipients`, or a refusal naming the first without one.
fn keys_of<S: Snapshot>(
    state: &Overlay<'_, S>,
    recipients: &[String],
) -> Result<Vec<[u8; 32]>, SecretsResult> {
    recipients
        .iter()
        .map(|prefix| {
            current_key(state, prefix).ok_or_else(|| {
                SecretsResult::refused(
                    400,
                    format!(
                        "recipient {prefix} has no current encryption key: it registers one \
                         with `welkin kv register-key --as NAME` (a rotation voids the last one)"
                    ),
                )
            })
        })
        .collect()
}

fn seal<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    id: &TxId,
    request: &KvSeal,
) -> SecretsResult {
    let expected = match keys_of(state, &request.recipients) {
        Ok(keys) => keys,
        Err(refusal) => return refusal,
    };
    let envelope = match welkin_types::decode::<RecipientSealed>(&request.envelope) {
        Ok(envelope) => envelope,
        Err(e) => {
            return SecretsResult::refused(
                400,
                format!("the recipient envelope does not decode: {e}"),
            );
        }
    };
    if !envelope.recipients().eq(expected.iter()) {
        return SecretsResult::refused(
            400,
            "the recipient envelope is not addressed to exactly the recipients' current \
             encryption keys, in the order named",
        );
    }
    // The version itself is a KV write in every respect: the same checks, the same record.
    let write = SecretsOp::KvWrite {
        mount: request.mount.clone(),
        path: request.path.clone(),
        nonce: request.nonce,
        sealed: request.sealed.detach(),
        cas: request.cas,
    };
    let result = kv::execute(state, now, id, &write);
    let SecretsResult::Written { version, .. } = result else {
        return result;
    };
    let mount = super::mount(state, &request.mount).expect("the write found the mount");
    let record = Recipients {
        recipients: request.recipients.clone(),
        envelope: request.envelope.clone(),
        sealed_ms: now,
        changed_ms: now,
    };
    state.put(
        keys::kv_recipients(&mount.id, &request.path, version),
        record.encode(),
    );
    result
}

fn reseal<S: Snapshot>(state: &mut Overlay<'_, S>, now: u64, request: &KvReseal) -> SecretsResult {
    let KvReseal {
        mount,
        path,
        version,
        recipients,
    } = request;
    if *version == 0 {
        return SecretsResult::refused(400, "name the version to re-seal (-version=N)");
    }
    let found = match kv::readable(state, mount, path, *version) {
        Ok(found) => found,
        Err(refusal) => return refusal,
    };
    let Some(mut record) = recipients_of(state, &found, path) else {
        return SecretsResult::refused(
            400,
            format!("version {version} of {mount}/{path} is not sealed to recipients"),
        );
    };
    // A recipient kept need not have a key now (it opens through the cluster); a new one
    // must, as for a seal: its identifier has vouched for a key under its current keys.
    let added: Vec<String> = recipients
        .iter()
        .filter(|p| !record.includes(p))
        .cloned()
        .collect();
    if let Err(refusal) = keys_of(state, &added) {
        return refusal;
    }
    record.recipients = recipients.clone();
    record.changed_ms = now;
    state.put(
        keys::kv_recipients(&found.mount, path, found.version),
        record.encode(),
    );
    SecretsResult::Done
}
