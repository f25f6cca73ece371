//! The secrets module: mounts, KV v2 secrets, tokens and ACL policies, as Vault has them.
//!
//! Every request is a transaction signed by a token's key (see
//! [`welkin_types::secrets::token_signing_key`]), so it is in the log before it has any
//! effect. At the height it executes, the module:
//! 1. finds the token by its public key (only public keys are stored) and checks that it is
//!    live at block time and has uses left; otherwise `permission denied` (Vault's 403);
//! 2. builds the token's ACL from its policies as they stand at this height, and checks the
//!    capability the request needs on its Vault path (`secret/data/app`, `sys/mounts/team`,
//!    `auth/token/create`...); a denial is recorded in the log like any refusal;
//! 3. consumes one use of a limited token, then runs the request.
//!
//! A read that passes returns [`SecretsResult::Released`]: its version's target and the
//! reader's one-time key. The node then signs its partial over that target for that reader,
//! and only then. Values are stored as ciphertext sealed to the cluster key (welkin-sealed);
//! the target is computed here from mount, path and the writer's nonce, so a ciphertext copied
//! to another path is released under that path's target, which does not open it.

pub mod dir;
pub mod kv;
pub mod recipients;
pub mod records;
pub mod teardown;
#[cfg(test)]
mod tests;
pub mod transit;

use crate::{Overlay, Snapshot, keys, stored::StoredError};
use commonware_codec::Encode as _;
pub use records::ValueRef;
use records::{Mount, Role, Token, Wrapped, decode_names, encode_names};
use welkin_policy::{Acl, Capabilities, Policy};
use welkin_types::{
    Block, Digest, PublicKey, Sender, SignedTransaction, TxId, hash_parts,
    secrets::{MountKind, SecretsOp, TokenRef, TokenSpec, TransitOp, token_accessor},
};

/// The mount every cluster starts with, as `vault server -dev` has it.
pub const DEFAULT_MOUNT: &str = "secret";
/// Versions kept per secret when neither the secret nor its mount says (Vault's default).
pub const DEFAULT_MAX_VERSIONS: u32 = 10;
/// The most versions a secret or mount may keep: bounds the work of deleting a secret.
pub const MAX_KEPT_VERSIONS: u32 = 100;
/// TTL of a token created without one (Vault's default, 768 hours).
pub const DEFAULT_TOKEN_TTL_MS: u64 = 768 * 3_600_000;
/// The most child tokens one token may have (they are revoked with it).
pub const MAX_TOKEN_CHILDREN: usize = 256;
/// The most mounts a cluster may have.
pub const MAX_MOUNTS: usize = 64;
/// The most stored policies.
pub const MAX_POLICIES: usize = 1024;
/// The most entries one KV directory may list.
pub const MAX_DIR_ENTRIES: usize = 4096;
/// The built-in policy of wrapping tokens: they can unwrap, and nothing else.
pub const RESPONSE_WRAPPING: &str = "response-wrapping";
/// The longest a wrapped response is kept (Vault's default maximum, 768 hours).
pub const MAX_WRAP_TTL_MS: u64 = DEFAULT_TOKEN_TTL_MS;

fn response_wrapping_policy() -> Policy {
    Policy {
        name: RESPONSE_WRAPPING.into(),
        rules: vec![welkin_policy::PathRule {
            pattern: "sys/wrapping/unwrap".into(),
            capabilities: Capabilities::UPDATE,
        }],
        text: String::new(),
    }
}

/// Mount paths that name API areas, not engines.
const RESERVED_MOUNTS: &[&str] = &[
    "sys",
    "auth",
    "identity",
    "cubbyhole",
    "audit",
    "welkin",
    "tx",
    "txs",
    "block",
    "blocks",
    "log",
    "state",
    "status",
    "genesis",
    "checkpoint",
    "checkpoints",
    "id",
    "metrics",
    "tile",
    "node",
    "secrets",
    "release",
    "health",
    "oobi",
];

/// What a secrets request did, for the node that serves it (not stored: the receipt and log
/// entry hold the outcome and the reason).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretsResult {
    /// Done; nothing to report beyond the receipt.
    Done,
    /// A KV write made `version`.
    Written {
        /// The new version.
        version: u64,
        /// Its block time.
        created_ms: u64,
    },
    /// A read was allowed: partials over `target` go to `reader`.
    Released {
        /// The version read.
        version: u64,
        /// Its target.
        target: Digest,
        /// The reader's one-time X25519 key.
        reader: [u8; 32],
        /// Where the sealed value (welkin-sealed encoding) is, for the reader.
        sealed: ValueRef,
    },
    /// A transit decryption or MAC was allowed: partials over each target, in the request's
    /// order, go to `reader` (which holds the ciphertexts or inputs itself).
    ReleasedTargets {
        /// The targets.
        targets: Vec<Digest>,
        /// The reader's one-time X25519 key.
        reader: [u8; 32],
    },
    /// A signature was allowed: the nodes holding shares of version `version` of the key
    /// `key_id` sign a message whose SHA-256 is one of `digests` (in the request's order), for
    /// the node that serves the request and coordinates them.
    Signing {
        /// The key's id.
        key_id: Digest,
        /// The key version (resolved: never 0).
        version: u64,
        /// SHA-256 of each message.
        digests: Vec<[u8; 32]>,
    },
    /// Refused, with the HTTP status Vault gives and its message.
    Refused {
        /// 400, 403 or 404.
        status: u16,
        /// Vault's wording where Vault has one.
        message: String,
    },
}

impl SecretsResult {
    fn refused(status: u16, message: impl Into<String>) -> SecretsResult {
        SecretsResult::Refused {
            status,
            message: message.into(),
        }
    }

    fn denied() -> SecretsResult {
        SecretsResult::refused(403, "permission denied")
    }
}

/// Runs one secrets request; the caller has checked expiry and the nonce.
pub(crate) fn execute<S: Snapshot>(
    env: &crate::Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
    signed: &SignedTransaction,
    op: &SecretsOp,
) -> SecretsResult {
    let now = block.timestamp_ms;
    if let (
        Sender::Key(key),
        SecretsOp::Transit(step @ (TransitOp::DkgRound1 { .. } | TransitOp::DkgResult { .. })),
    ) = (&signed.tx.sender, op)
    {
        // Key generation steps come from the nodes themselves, never from a token.
        return match env.members.iter().position(|member| member == key) {
            Some(index) => transit::dkg::step(state, index as u16, step),
            None => {
                SecretsResult::refused(403, "only the cluster's nodes take part in key generation")
            }
        };
    }
    let key = match (&signed.tx.sender, op) {
        // The identifier's keys and threshold were checked before the payload runs.
        (Sender::Identifier { prefix, .. }, SecretsOp::KeriLogin { key, ttl_ms }) => {
            return keri_login(state, now, prefix, key, *ttl_ms);
        }
        (Sender::Identifier { prefix, .. }, SecretsOp::EncryptionKey { key }) => {
            return recipients::register(state, now, prefix, key);
        }
        (Sender::Key(key), _) => key,
        _ => {
            return SecretsResult::refused(
                403,
                "secrets requests are signed by a token; log in with auth/keri/login for one",
            );
        }
    };
    let token_key = keys::token(key);
    let Some((mut token, acl)) = live_token(state, now, key) else {
        return SecretsResult::denied();
    };
    let Some((path, needed)) = required(state, op) else {
        return SecretsResult::refused(400, "unknown capability bits in a check");
    };
    if !acl.allows(&path, needed) {
        return SecretsResult::denied();
    }
    let last_use = token.uses_left == 1;
    if token.uses_left > 1 {
        token.uses_left -= 1;
        state.put(token_key, token.encode());
    }
    let result = match op {
        SecretsOp::KvSeal(_) | SecretsOp::KvOpen { .. } | SecretsOp::KvReseal(_) => {
            let identity = token.identity.as_ref().map(|(prefix, _)| prefix.as_str());
            recipients::execute(state, now, &signed.id(), identity, op)
        }
        _ => run(env, state, now, &signed.id(), key, op),
    };
    if last_use {
        // Its last use: the request ran, and the token is gone.
        revoke(state, key, 0);
    }
    result
}

/// The token of `key` with its ACL, if it is live at `now` and its identity (for a login
/// token) has not rotated its keys since.
fn live_token<S: Snapshot>(
    state: &Overlay<'_, S>,
    now: u64,
    key: &PublicKey,
) -> Option<(Token, Acl)> {
    let token = state.decoded(&keys::token(key), Token::decode)?;
    if !token.is_live(now) {
        return None;
    }
    // A login token dies with the keys that made it: any rotation since voids it.
    if let Some((prefix, sn)) = &token.identity {
        let current = crate::identity::key_state_of(state, prefix).map(|k| k.last_establishment_sn);
        if current != Some(*sn) {
            return None;
        }
    }
    let acl = acl_of(state, &token);
    Some((token, acl))
}

/// Whether the token of `key` may do `needed` on the Vault `path` at block-like time `now`,
/// decided exactly as [`execute`] decides for a logged request, for the requests that are
/// **not** logged: those that use only public data (a transit encryption, a key read, random
/// bytes, a hash). Nothing is written.
///
/// A token limited to a number of uses is refused here rather than counted: counting a use
/// is a write, which needs the log, and not counting would let a one-use token encrypt
/// without limit. Such a token spends its uses on logged requests only.
pub fn allowed<S: Snapshot>(
    state: &Overlay<'_, S>,
    now: u64,
    key: &PublicKey,
    path: &str,
    needed: Capabilities,
) -> Result<(), SecretsResult> {
    let Some((token, acl)) = live_token(state, now, key) else {
        return Err(SecretsResult::denied());
    };
    if token.uses_left != 0 {
        return Err(SecretsResult::refused(
            403,
            "permission denied: a token limited to a number of uses cannot make requests that \
             are not logged (transit encryption, key reads, random, hash)",
        ));
    }
    if acl.allows(path, needed) {
        Ok(())
    } else {
        Err(SecretsResult::denied())
    }
}

/// Runs an authorised request.
fn run<S: Snapshot>(
    env: &crate::Env,
    state: &mut Overlay<'_, S>,
    now: u64,
    id: &TxId,
    key: &PublicKey,
    op: &SecretsOp,
) -> SecretsResult {
    match op {
        SecretsOp::KvWrite { .. }
        | SecretsOp::KvRead { .. }
        | SecretsOp::KvDelete { .. }
        | SecretsOp::KvUndelete { .. }
        | SecretsOp::KvDestroy { .. }
        | SecretsOp::KvMetadataWrite { .. }
        | SecretsOp::KvMetadataDelete { .. }
        | SecretsOp::KvConfigWrite { .. } => kv::execute(state, now, id, op),
        SecretsOp::MountEnable {
            mount,
            description,
            kind,
        } => enable_mount(state, now, id, mount, description, *kind),
        SecretsOp::MountDisable { mount } => disable_mount(state, mount),
        SecretsOp::PolicyWrite { name, policy } => write_policy(state, name, policy),
        SecretsOp::PolicyDelete { name } => delete_policy(state, name),
        SecretsOp::TokenCreate(spec) => create_token(state, now, key, spec),
        SecretsOp::TokenRenewSelf { increment_ms } => renew(state, now, key, *increment_ms),
        SecretsOp::TokenRevokeSelf => {
            revoke(state, key, 0);
            SecretsResult::Done
        }
        SecretsOp::TokenRevoke(target) => {
            let target = match target {
                TokenRef::Key(key) => Some(key.clone()),
                TokenRef::Accessor(accessor) => state
                    .get(&keys::token_accessor(accessor))
                    .and_then(|bytes| welkin_types::decode::<PublicKey>(bytes).ok()),
            };
            if let Some(target) = target {
                revoke(state, &target, 0);
            }
            // Vault answers 204 whether or not the token existed.
            SecretsResult::Done
        }
        SecretsOp::Check { .. } => SecretsResult::Done,
        SecretsOp::WrapStore {
            key,
            ttl_ms,
            path,
            nonce,
            sealed,
        } => {
            let sealed = records::ValueRef {
                tx: *id,
                digest: sealed.digest(),
            };
            wrap(state, now, key, *ttl_ms, path, nonce, sealed)
        }
        SecretsOp::KeriLogin { .. } => SecretsResult::refused(
            400,
            "auth/keri/login is sent by the identifier, not a token",
        ),
        SecretsOp::EncryptionKey { .. } => SecretsResult::refused(
            400,
            "an encryption key is registered by the identifier itself, not a token",
        ),
        SecretsOp::KvSeal(_) | SecretsOp::KvOpen { .. } | SecretsOp::KvReseal(_) => {
            unreachable!("recipient requests run in recipients::execute")
        }
        SecretsOp::Transit(op) => transit::execute(env, state, now, id, op),
        SecretsOp::KeriRole {
            prefix,
            policies,
            ttl_ms,
        } => {
            let key = keys::keri_role(prefix);
            if policies.is_empty() {
                state.delete(key);
            } else {
                let role = Role {
                    policies: policies.clone(),
                    ttl_ms: if *ttl_ms == 0 { KERI_TTL_MS } else { *ttl_ms },
                };
                state.put(key, role.encode());
            }
            SecretsResult::Done
        }
        SecretsOp::Unwrap { reader } => {
            let wrapped_key = keys::wrapping(key);
            let Some(wrapped) = state.decoded(&wrapped_key, Wrapped::decode) else {
                return SecretsResult::refused(
                    400,
                    "wrapping token is not valid or does not exist",
                );
            };
            // Single use: the response is gone with this read (the token went with its use),
            // and its bytes with it on every node.
            state.delete(wrapped_key);
            state.shredded.push(wrapped.sealed.tx);
            SecretsResult::Released {
                version: 0,
                target: wrapped.target,
                reader: *reader,
                sealed: wrapped.sealed,
            }
        }
    }
}

/// The Vault path a request acts on and the capabilities it needs there (`None` for a
/// check naming capabilities that do not exist).
fn required<S: Snapshot>(state: &Overlay<'_, S>, op: &SecretsOp) -> Option<(String, Capabilities)> {
    let create_or_update = |exists: bool| {
        if exists {
            Capabilities::UPDATE
        } else {
            Capabilities::CREATE
        }
    };
    Some(match op {
        SecretsOp::KvWrite { mount, path, .. } => {
            let exists = kv::exists(state, mount, path);
            (format!("{mount}/data/{path}"), create_or_update(exists))
        }
        SecretsOp::KvRead { mount, path, .. } | SecretsOp::KvOpen { mount, path, .. } => {
            (format!("{mount}/data/{path}"), Capabilities::READ)
        }
        SecretsOp::KvSeal(seal) => {
            let exists = kv::exists(state, &seal.mount, &seal.path);
            (
                format!("{}/data/{}", seal.mount, seal.path),
                create_or_update(exists),
            )
        }
        SecretsOp::KvReseal(reseal) => (
            format!("{}/data/{}", reseal.mount, reseal.path),
            Capabilities::UPDATE,
        ),
        SecretsOp::KvDelete {
            mount,
            path,
            versions,
        } => {
            if versions.is_empty() {
                (format!("{mount}/data/{path}"), Capabilities::DELETE)
            } else {
                (format!("{mount}/delete/{path}"), Capabilities::UPDATE)
            }
        }
        SecretsOp::KvUndelete { mount, path, .. } => {
            (format!("{mount}/undelete/{path}"), Capabilities::UPDATE)
        }
        SecretsOp::KvDestroy { mount, path, .. } => {
            (format!("{mount}/destroy/{path}"), Capabilities::UPDATE)
        }
        SecretsOp::KvMetadataWrite { mount, path, .. } => {
            let exists = kv::exists(state, mount, path);
            (format!("{mount}/metadata/{path}"), create_or_update(exists))
        }
        SecretsOp::KvMetadataDelete { mount, path } => {
            (format!("{mount}/metadata/{path}"), Capabilities::DELETE)
        }
        SecretsOp::KvConfigWrite { mount, .. } => (format!("{mount}/config"), Capabilities::UPDATE),
        SecretsOp::MountEnable { mount, .. } => {
            (format!("sys/mounts/{mount}"), Capabilities::UPDATE)
        }
        SecretsOp::MountDisable { mount } => (format!("sys/mounts/{mount}"), Capabilities::DELETE),
        SecretsOp::PolicyWrite { name, .. } => {
            let exists = state.get(&keys::policy(name)).is_some();
            (format!("sys/policies/acl/{name}"), create_or_update(exists))
        }
        SecretsOp::PolicyDelete { name } => {
            (format!("sys/policies/acl/{name}"), Capabilities::DELETE)
        }
        SecretsOp::TokenCreate(_) => ("auth/token/create".into(), Capabilities::UPDATE),
        SecretsOp::TokenRenewSelf { .. } => ("auth/token/renew-self".into(), Capabilities::UPDATE),
        SecretsOp::TokenRevokeSelf => ("auth/token/revoke-self".into(), Capabilities::UPDATE),
        SecretsOp::TokenRevoke(TokenRef::Key(_)) => {
            ("auth/token/revoke".into(), Capabilities::UPDATE)
        }
        SecretsOp::TokenRevoke(TokenRef::Accessor(_)) => {
            ("auth/token/revoke-accessor".into(), Capabilities::UPDATE)
        }
        SecretsOp::Check { path, capabilities } => {
            (path.clone(), Capabilities::from_bits(*capabilities)?)
        }
        SecretsOp::WrapStore { .. } => ("sys/wrapping/wrap".into(), Capabilities::UPDATE),
        SecretsOp::KeriRole { prefix, .. } => {
            (format!("auth/keri/role/{prefix}"), Capabilities::UPDATE)
        }
        // Only ever reached by a token sending it, which is refused below.
        SecretsOp::KeriLogin { .. } => ("auth/keri/login".into(), Capabilities::UPDATE),
        SecretsOp::EncryptionKey { .. } => {
            ("auth/keri/encryption-key".into(), Capabilities::UPDATE)
        }
        SecretsOp::Unwrap { .. } => ("sys/wrapping/unwrap".into(), Capabilities::UPDATE),
        SecretsOp::Transit(op) => {
            let needed = match op {
                TransitOp::KeyCreate { mount, name, .. } => {
                    create_or_update(transit::exists(state, mount, name))
                }
                TransitOp::KeyDelete { .. } => Capabilities::DELETE,
                _ => Capabilities::UPDATE,
            };
            (op.vault_path(), needed)
        }
    })
}

/// The ACL of a token's policies at this height: `root` grants everything, `default` is
/// built in unless a stored policy replaces it, and names with no policy grant nothing (as
/// in Vault).
fn acl_of<S: Snapshot>(state: &Overlay<'_, S>, token: &Token) -> Acl {
    if token.is_root() {
        return Acl::root();
    }
    let mut policies: Vec<Policy> = Vec::with_capacity(token.policies.len());
    for name in &token.policies {
        let key = keys::policy(name);
        match state.get(&key) {
            Some(bytes) => match welkin_types::decode::<Policy>(bytes) {
                Ok(policy) => policies.push(policy),
                Err(e) => state.corrupt(key, StoredError::new("policy", e.to_string())),
            },
            None if name == "default" => policies.push(welkin_policy::default_policy()),
            None if name == RESPONSE_WRAPPING => policies.push(response_wrapping_policy()),
            None => {}
        }
    }
    Acl::new(policies.iter())
}

/// Whether `mount` may name an engine: 1-64 bytes of `A-Z a-z 0-9 _ - .` in `/`-separated
/// segments, not a reserved API area.
pub fn valid_mount(mount: &str) -> Result<(), String> {
    let segments_ok = !mount.is_empty()
        && mount.len() <= welkin_types::secrets::MAX_MOUNT_BYTES
        && mount.split('/').all(|segment| {
            !segment.is_empty()
                && segment != "."
                && segment != ".."
                && segment
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
        });
    if !segments_ok {
        return Err(format!(
            "invalid mount path {mount:?}: use 1-64 characters of A-Z a-z 0-9 _ - . in segments \
             separated by /"
        ));
    }
    let first = mount.split('/').next().unwrap_or_default();
    if RESERVED_MOUNTS.contains(&first) {
        return Err(format!("cannot mount at {mount:?}: {first}/ is reserved"));
    }
    Ok(())
}

/// The KV version 2 mount at `path`, if enabled.
pub fn kv_mount<S: Snapshot>(state: &Overlay<'_, S>, path: &str) -> Option<Mount> {
    mount(state, path).filter(|mount| mount.kind == MountKind::Kv2)
}

/// The mount at `path`, if enabled.
pub fn mount<S: Snapshot>(state: &Overlay<'_, S>, path: &str) -> Option<Mount> {
    state.decoded(&keys::secrets_mount(path), Mount::decode)
}

fn names<S: Snapshot>(state: &Overlay<'_, S>, key: &Digest) -> Vec<String> {
    state.decoded(key, decode_names).unwrap_or_default()
}

fn enable_mount<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    id: &TxId,
    path: &str,
    description: &str,
    kind: MountKind,
) -> SecretsResult {
    if let Err(reason) = valid_mount(path) {
        return SecretsResult::refused(400, reason);
    }
    let list_key = keys::secrets_mounts();
    let mut mounts = names(state, &list_key);
    if let Some(existing) = mounts.iter().find(|m| {
        *m == path || path.starts_with(&format!("{m}/")) || m.starts_with(&format!("{path}/"))
    }) {
        return SecretsResult::refused(400, format!("path is already in use at {existing}/"));
    }
    if mounts.len() >= MAX_MOUNTS {
        return SecretsResult::refused(
            400,
            format!("the cluster has {MAX_MOUNTS} mounts, the limit"),
        );
    }
    let record = Mount {
        kind,
        id: hash_parts(&[b"welkin/secrets/mount-id/v1", id.as_ref()]),
        description: description.to_string(),
        max_versions: 0,
        cas_required: false,
        created_ms: now,
    };
    state.put(keys::secrets_mount(path), record.encode());
    mounts.push(path.to_string());
    mounts.sort();
    state.put(list_key, encode_names(&mounts));
    SecretsResult::Done
}

/// Disables a mount. Its secrets become unreachable at once (their keys include the
/// mount's id, which a new mount at the same path does not share), and are deleted and their
/// values shredded over the next blocks (see [`teardown`]).
fn disable_mount<S: Snapshot>(state: &mut Overlay<'_, S>, path: &str) -> SecretsResult {
    let list_key = keys::secrets_mounts();
    let mut mounts = names(state, &list_key);
    let before = mounts.len();
    mounts.retain(|m| m != path);
    if mounts.len() != before {
        match mount(state, path) {
            Some(disabled) if disabled.kind == MountKind::Transit => {
                transit::delete_all(state, &disabled);
            }
            Some(disabled) => {
                if let Err(refusal) = teardown::queue(state, path, &disabled.id) {
                    return refusal;
                }
            }
            None => {}
        }
        state.delete(keys::secrets_mount(path));
        state.put(list_key, encode_names(&mounts));
    }
    SecretsResult::Done
}

fn write_policy<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    name: &str,
    bytes: &[u8],
) -> SecretsResult {
    if let Err(e) = welkin_policy::validate_name(name) {
        return SecretsResult::refused(400, e.to_string());
    }
    let policy = match welkin_types::decode::<Policy>(bytes) {
        Ok(policy) => policy,
        Err(e) => return SecretsResult::refused(400, format!("failed to parse policy: {e}")),
    };
    // The rules must be the ones the text says, or readers of the text would be misled.
    if let Err(e) = policy.check_text() {
        return SecretsResult::refused(400, format!("failed to parse policy: {e}"));
    }
    if policy.name != name {
        return SecretsResult::refused(
            400,
            format!("policy is named {:?}, not {name:?}", policy.name),
        );
    }
    let list_key = keys::policies();
    let mut stored = names(state, &list_key);
    if let Err(at) = stored.binary_search_by(|n| n.as_str().cmp(name)) {
        if stored.len() >= MAX_POLICIES {
            return SecretsResult::refused(
                400,
                format!("{MAX_POLICIES} policies are stored, the limit"),
            );
        }
        stored.insert(at, name.to_string());
        state.put(list_key, encode_names(&stored));
    }
    state.put(keys::policy(name), bytes.to_vec());
    SecretsResult::Done
}

fn delete_policy<S: Snapshot>(state: &mut Overlay<'_, S>, name: &str) -> SecretsResult {
    if name == "root" || name == "default" {
        return SecretsResult::refused(400, format!("cannot delete \"{name}\" policy"));
    }
    let list_key = keys::policies();
    let mut stored = names(state, &list_key);
    if let Ok(at) = stored.binary_search_by(|n| n.as_str().cmp(name)) {
        stored.remove(at);
        state.put(list_key, encode_names(&stored));
        state.delete(keys::policy(name));
    }
    SecretsResult::Done
}

fn create_token<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    parent_key: &PublicKey,
    spec: &TokenSpec,
) -> SecretsResult {
    // Read the parent after the use was consumed: it may have just been revoked.
    let parent_state_key = keys::token(parent_key);
    let Some(mut parent) = state.decoded(&parent_state_key, Token::decode) else {
        return SecretsResult::refused(
            400,
            "the parent token was revoked by this request's last use",
        );
    };
    if !parent.is_root()
        && let Some(extra) = spec
            .policies
            .iter()
            .find(|p| *p != "default" && !parent.policies.contains(p))
    {
        return SecretsResult::refused(
            400,
            format!("child policies must be subset of parent: {extra:?} is not"),
        );
    }
    let key = keys::token(&spec.key);
    if state.get(&key).is_some() {
        return SecretsResult::refused(400, "a token with this key exists already");
    }
    if !spec.no_parent && parent.children.len() >= MAX_TOKEN_CHILDREN {
        return SecretsResult::refused(
            400,
            format!(
                "the parent token has {MAX_TOKEN_CHILDREN} child tokens, the limit; create \
                 orphan tokens (no_parent) or revoke some"
            ),
        );
    }
    let ttl_ms = if spec.ttl_ms == 0 {
        DEFAULT_TOKEN_TTL_MS
    } else {
        spec.ttl_ms
    };
    let mut expire_ms = now.saturating_add(ttl_ms);
    if parent.expire_ms != 0 {
        expire_ms = expire_ms.min(parent.expire_ms);
    }
    let token = Token {
        policies: spec.policies.clone(),
        issued_ms: now,
        expire_ms,
        ttl_ms,
        renewable: spec.renewable,
        uses_left: spec.num_uses,
        num_uses: spec.num_uses,
        display_name: format!("token-{}", spec.display_name)
            .trim_end_matches('-')
            .to_string(),
        parent: (!spec.no_parent).then(|| parent_key.clone()),
        meta: spec.meta.clone(),
        children: Vec::new(),
        identity: None,
    };
    state.put(key, token.encode());
    state.put(
        keys::token_accessor(&token_accessor(&spec.key)),
        spec.key.as_ref().to_vec(),
    );
    schedule_expiry(state, now, &spec.key, &token);
    if !spec.no_parent {
        parent.children.push(spec.key.clone());
        state.put(parent_state_key, parent.encode());
    }
    SecretsResult::Done
}

fn renew<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    key: &PublicKey,
    increment_ms: u64,
) -> SecretsResult {
    let token_key = keys::token(key);
    let Some(mut token) = state.decoded(&token_key, Token::decode) else {
        return SecretsResult::denied();
    };
    if token.expire_ms == 0 {
        return SecretsResult::Done;
    }
    if !token.renewable {
        return SecretsResult::refused(400, "lease is not renewable");
    }
    let step = if increment_ms == 0 {
        token.ttl_ms
    } else {
        increment_ms
    };
    let mut expire_ms = now.saturating_add(step);
    if let Some(parent) = token
        .parent
        .as_ref()
        .and_then(|p| state.decoded(&keys::token(p), Token::decode))
        && parent.expire_ms != 0
    {
        expire_ms = expire_ms.min(parent.expire_ms);
    }
    token.expire_ms = expire_ms;
    state.put(token_key, token.encode());
    SecretsResult::Done
}

/// The TTL of login tokens when the identifier's role does not say (one hour).
pub const KERI_TTL_MS: u64 = 3_600_000;

/// `auth/keri/login`: a token for `prefix`, whose current keys signed the request, with the
/// policies its role maps it to.
fn keri_login<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    prefix: &str,
    key: &PublicKey,
    ttl_ms: u64,
) -> SecretsResult {
    let Some(role) = state.decoded(&keys::keri_role(prefix), Role::decode) else {
        return SecretsResult::refused(
            403,
            format!(
                "permission denied: no role maps identifier {prefix}; an operator maps it with \
                 auth/keri/role/{prefix}"
            ),
        );
    };
    let Some(key_state) = crate::identity::key_state_of(state, prefix) else {
        return SecretsResult::denied();
    };
    let token_key = keys::token(key);
    if state.get(&token_key).is_some() {
        return SecretsResult::refused(400, "a token with this key exists already");
    }
    let ttl_ms = if ttl_ms == 0 {
        role.ttl_ms
    } else {
        ttl_ms.min(role.ttl_ms)
    };
    let mut policies = role.policies.clone();
    if !policies.iter().any(|p| p == "default") {
        policies.push("default".into());
        policies.sort();
    }
    let token = Token {
        policies,
        issued_ms: now,
        expire_ms: now.saturating_add(ttl_ms),
        ttl_ms,
        renewable: false,
        uses_left: 0,
        num_uses: 0,
        display_name: format!("keri-{prefix}"),
        parent: None,
        meta: vec![("identifier".into(), prefix.to_string())],
        children: Vec::new(),
        identity: Some((prefix.to_string(), key_state.last_establishment_sn)),
    };
    state.put(token_key, token.encode());
    state.put(
        keys::token_accessor(&token_accessor(key)),
        key.as_ref().to_vec(),
    );
    schedule_expiry(state, now, key, &token);
    SecretsResult::Done
}

/// Keeps a sealed response for a new single-use wrapping token.
fn wrap<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    key: &PublicKey,
    ttl_ms: u64,
    path: &str,
    nonce: &[u8; 32],
    sealed: records::ValueRef,
) -> SecretsResult {
    if ttl_ms == 0 || ttl_ms > MAX_WRAP_TTL_MS {
        return SecretsResult::refused(
            400,
            format!("wrapping ttl must be between 1 ms and {MAX_WRAP_TTL_MS} ms"),
        );
    }
    let token_key = keys::token(key);
    if state.get(&token_key).is_some() {
        return SecretsResult::refused(400, "a token with this key exists already");
    }
    let token = Token {
        policies: vec![RESPONSE_WRAPPING.into()],
        issued_ms: now,
        expire_ms: now.saturating_add(ttl_ms),
        ttl_ms,
        renewable: false,
        uses_left: 1,
        num_uses: 1,
        display_name: RESPONSE_WRAPPING.into(),
        parent: None,
        meta: Vec::new(),
        children: Vec::new(),
        identity: None,
    };
    state.put(token_key, token.encode());
    state.put(
        keys::token_accessor(&token_accessor(key)),
        key.as_ref().to_vec(),
    );
    schedule_expiry(state, now, key, &token);
    let wrapped = Wrapped {
        target: wrap_target(key, nonce),
        sealed,
        path: path.to_string(),
        created_ms: now,
        ttl_ms,
    };
    state.put(keys::wrapping(key), wrapped.encode());
    SecretsResult::Done
}

/// The target of a wrapped response: from the wrapping token's key and the wrapper's nonce
/// (as `welkin_sealed::target(&[b"wrap", key], nonce)`).
pub fn wrap_target(key: &PublicKey, nonce: &[u8; 32]) -> Digest {
    hash_parts(&[b"welkin/sealed/target/v1", b"wrap", key.as_ref(), nonce])
}

/// How deep revocation follows children: a bound on the work one request can cause
/// (256 children each, four levels).
const MAX_REVOKE_DEPTH: usize = 4;

/// Revokes `key` and, as Vault does, the tokens it created.
fn revoke<S: Snapshot>(state: &mut Overlay<'_, S>, key: &PublicKey, depth: usize) {
    let token_key = keys::token(key);
    let Some(token) = state.decoded(&token_key, Token::decode) else {
        return;
    };
    state.delete(token_key);
    state.delete(keys::token_accessor(&token_accessor(key)));
    // A wrapping token that dies unused takes its response with it, bytes and all.
    let wrapping_key = keys::wrapping(key);
    if let Some(wrapped) = state.decoded(&wrapping_key, Wrapped::decode) {
        state.delete(wrapping_key);
        state.shredded.push(wrapped.sealed.tx);
    }
    // Its parent no longer counts it against MAX_TOKEN_CHILDREN (in a cascade, the parent
    // is going too).
    if depth == 0
        && let Some(parent_key) = &token.parent
    {
        let parent_state_key = keys::token(parent_key);
        if let Some(mut parent) = state.decoded(&parent_state_key, Token::decode) {
            parent.children.retain(|child| child != key);
            state.put(parent_state_key, parent.encode());
        }
    }
    if depth < MAX_REVOKE_DEPTH {
        for child in &token.children {
            revoke(state, child, depth + 1);
        }
    }
}

/// Queues a check of a new token that expires (see [`crate::expiry::Tier`]).
fn schedule_expiry<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    now: u64,
    key: &PublicKey,
    token: &Token,
) {
    if token.expire_ms != 0 {
        state
            .schedule
            .token(now, token.expire_ms, key.encode().to_vec());
    }
}

/// Checks the tokens whose tier delay has passed: an expired token is revoked as
/// `revoke-self` would (its children and unused wrapped response go with it); a renewed one
/// waits again. Runs before the block's transactions, so expired tokens do not pile up in
/// state whether or not anyone uses them again.
pub(crate) fn sweep_tokens<S: Snapshot>(state: &mut Overlay<'_, S>, now: u64) {
    for tier in crate::expiry::Tier::ALL {
        let queue = crate::expiry::Queue::Tokens(tier);
        crate::expiry::sweep(state, queue, now, |state, item| {
            let Ok(key) = welkin_types::decode::<PublicKey>(item) else {
                state.corrupt(
                    keys::queue_head(queue.name()),
                    StoredError::new("token queue item", "not a public key"),
                );
                return;
            };
            let Some(token) = state.decoded(&keys::token(&key), Token::decode) else {
                // Revoked already, or a read the node fetches for the next round.
                return;
            };
            if token.is_live(now) {
                schedule_expiry(state, now, &key, &token);
            } else {
                revoke(state, &key, 0);
            }
        });
    }
}

/// The secrets writes of the state at height 0: the `secret/` mount, and the root token if
/// the genesis names one.
pub(crate) fn genesis_writes(
    genesis_time_ms: u64,
    root_token: Option<&PublicKey>,
) -> Vec<(Digest, Vec<u8>)> {
    let mount = Mount {
        kind: MountKind::Kv2,
        id: hash_parts(&[
            b"welkin/secrets/mount-id/v1",
            b"genesis",
            DEFAULT_MOUNT.as_bytes(),
        ]),
        description: "key/value secret storage".into(),
        max_versions: 0,
        cas_required: false,
        created_ms: genesis_time_ms,
    };
    let mut writes = vec![
        (keys::secrets_mount(DEFAULT_MOUNT), mount.encode()),
        (
            keys::secrets_mounts(),
            encode_names(&[DEFAULT_MOUNT.to_string()]),
        ),
    ];
    if let Some(root) = root_token {
        let token = Token {
            policies: vec!["root".into()],
            issued_ms: genesis_time_ms,
            expire_ms: 0,
            ttl_ms: 0,
            renewable: false,
            uses_left: 0,
            num_uses: 0,
            display_name: "root".into(),
            parent: None,
            meta: Vec::new(),
            children: Vec::new(),
            identity: None,
        };
        writes.push((keys::token(root), token.encode()));
        writes.push((
            keys::token_accessor(&token_accessor(root)),
            root.as_ref().to_vec(),
        ));
    }
    writes
}
