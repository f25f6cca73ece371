//! Secrets requests: what a token-signed transaction asks of the secrets module.
//!
//! Every request a Vault client makes that reads or changes secrets, tokens, policies or
//! mounts becomes one [`SecretsOp`] in a transaction, so it is in the log (and checked against
//! the policies at its height) before anything is released. The transaction is signed by the
//! requesting token's key (see [`token_signing_key`]): the state machine stores only that
//! key's public half, so no node can act with a token it has not been shown.
//!
//! ```text
//! SecretsOp := 0x20 mount | path | nonce [32] | sealed Detachable | cas (option u64)   KvWrite
//!            | 0x02 mount | path | version u64 | reader [32]                          KvRead
//!            | 0x03 mount | path | versions                                           KvDelete
//!            | 0x04 mount | path | versions                                           KvUndelete
//!            | 0x05 mount | path | versions                                           KvDestroy
//!            | 0x06 mount | path | max_versions (option u32) | cas_required (option bool)
//!                   | custom_metadata (option pairs)                                   KvMetadataWrite
//!            | 0x07 mount | path                                                      KvMetadataDelete
//!            | 0x08 mount | max_versions (option u32) | cas_required (option bool)      KvConfigWrite
//!            | 0x22 mount | description | kind u8 (0x01 kv v2, 0x02 transit)       MountEnable
//!            | 0x0a mount                                                             MountDisable
//!            | 0x0b name | policy (varint len, welkin-policy encoding)                 PolicyWrite
//!            | 0x0c name                                                              PolicyDelete
//!            | 0x0d TokenSpec                                                         TokenCreate
//!            | 0x0e increment_ms u64                                                  TokenRenewSelf
//!            | 0x0f                                                                   TokenRevokeSelf
//!            | 0x10 0x00 key [32] | 0x01 accessor                                     TokenRevoke
//!            | 0x11 path | capabilities u16                                           Check
//!            | 0x21 key [32] | ttl_ms u64 | path | nonce [32] | sealed Detachable       WrapStore
//!            | 0x13 reader [32]                                                       Unwrap
//!            | 0x14 key [32] | ttl_ms u64                                             KeriLogin
//!            | 0x15 prefix | policies (varint count, str*) | ttl_ms u64                 KeriRole
//!            | 0x16 .. 0x19: values sealed to named recipients, see [`recipients`]
//!            | 0x30 TransitOp                                                          Transit
//! strings are varint-length UTF-8; versions is a varint count then u64s; 0x01 and 0x12
//! (the same ops with the sealed bytes inline) are retired, see [`crate::Detachable`];
//! 0x09 (MountEnable without a kind) is retired
//! ```

mod recipients;
pub mod transit;

#[cfg(test)]
pub(crate) use recipients::tests as recipients_tests;
pub use recipients::{KvReseal, KvSeal, MAX_ENVELOPE_BYTES, MAX_RECIPIENTS};
pub use transit::TransitOp;

/// The engine a mount runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum MountKind {
    /// KV version 2 secrets.
    Kv2,
    /// Transit keys: encryption, signing and MACs as a service.
    Transit,
}

impl MountKind {
    /// Its one-byte code, in requests and in the stored mount record.
    pub fn code(self) -> u8 {
        match self {
            MountKind::Kv2 => 0x01,
            MountKind::Transit => 0x02,
        }
    }

    /// The kind with code `code`.
    pub fn from_code(code: u8) -> Option<MountKind> {
        [MountKind::Kv2, MountKind::Transit]
            .into_iter()
            .find(|kind| kind.code() == code)
    }

    /// Vault's name for it (`type` in `sys/mounts`).
    pub fn name(self) -> &'static str {
        match self {
            MountKind::Kv2 => "kv",
            MountKind::Transit => "transit",
        }
    }
}

use crate::{Detachable, PrivateKey, PublicKey, hash_parts};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};

/// Longest mount path (`secret`, `team/kv`), in bytes.
pub const MAX_MOUNT_BYTES: usize = 64;
/// Longest secret path below a mount, in bytes.
pub const MAX_SECRET_PATH_BYTES: usize = 512;
/// Largest sealed value a write may carry, in bytes (the transaction limit bounds it too).
pub const MAX_SEALED_BYTES: usize = 14 * 1024;
/// Most versions one delete, undelete or destroy may name.
pub const MAX_VERSIONS_PER_OP: usize = 100;
/// Most custom metadata pairs on one secret (Vault's limit).
pub const MAX_CUSTOM_METADATA: usize = 64;
/// Longest custom metadata key, in bytes (Vault's limit).
pub const MAX_METADATA_KEY_BYTES: usize = 128;
/// Longest custom metadata value, in bytes (Vault's limit).
pub const MAX_METADATA_VALUE_BYTES: usize = 512;
/// Longest policy name, in bytes.
pub const MAX_POLICY_NAME_BYTES: usize = 128;
/// Largest encoded policy, in bytes.
pub const MAX_POLICY_BYTES: usize = 12 * 1024;
/// Most policies one token may carry.
pub const MAX_TOKEN_POLICIES: usize = 32;
/// Longest display name or metadata string on a token, in bytes.
pub const MAX_TOKEN_STRING_BYTES: usize = 256;
/// Most metadata pairs on a token.
pub const MAX_TOKEN_META: usize = 16;
/// Longest token accessor, in bytes.
pub const MAX_ACCESSOR_BYTES: usize = 64;
/// Longest path a [`SecretsOp::Check`] may name, in bytes.
pub const MAX_CHECK_PATH_BYTES: usize = 1024;

/// The prefix of every token this cluster issues (Vault's service tokens use `hvs.`).
pub const TOKEN_PREFIX: &str = "wlk.";

/// A fresh token: [`TOKEN_PREFIX`] and 32 random bytes in unpadded base64url.
pub fn generate_token(rng: &mut impl rand_core::CryptoRng) -> String {
    use base64::Engine as _;
    let mut bytes = [0u8; 32];
    rng.fill_bytes(&mut bytes);
    format!(
        "{TOKEN_PREFIX}{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
    )
}

/// The ed25519 key a token signs its requests with: derived from the token, so the state
/// machine can store the public half (see [`token_public_key`]) and never the token.
pub fn token_signing_key(token: &str) -> PrivateKey {
    let seed = hash_parts(&[crate::namespace::TOKEN, token.as_bytes()]);
    crate::decode::<PrivateKey>(seed.as_ref()).expect("any 32 bytes are an ed25519 seed")
}

/// The public key that stands for a token in state.
pub fn token_public_key(token: &str) -> PublicKey {
    use commonware_cryptography::Signer as _;
    token_signing_key(token).public_key()
}

/// A token's accessor: a public handle for looking it up or revoking it without knowing it
/// (Vault's accessors), derived from its public key.
pub fn token_accessor(key: &PublicKey) -> String {
    let digest = hash_parts(&[b"welkin/token-accessor/v1", key.as_ref()]);
    hex::encode(&digest.as_ref()[..12])
}

/// What a new token may do and for how long (`auth/token/create`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TokenSpec {
    /// The new token's public key (see [`token_public_key`]); its creator made the token.
    pub key: PublicKey,
    /// Policy names; sorted, no duplicates.
    pub policies: Vec<String>,
    /// Time to live in ms from block time; 0 means the default (32 days), capped by the
    /// parent's own expiry unless the parent is a root token.
    pub ttl_ms: u64,
    /// Whether `renew-self` may extend it.
    pub renewable: bool,
    /// How many requests it may make; 0 means unlimited.
    pub num_uses: u32,
    /// A name for humans (`token-` is prefixed, as Vault does).
    pub display_name: String,
    /// Whether it outlives its parent (Vault's orphan tokens).
    pub no_parent: bool,
    /// Free-form metadata, sorted by key.
    pub meta: Vec<(String, String)>,
}

/// Which token a revocation names.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum TokenRef {
    /// By its public key (the API derives it from the token it is given).
    Key(PublicKey),
    /// By its accessor.
    Accessor(String),
}

/// One secrets request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SecretsOp {
    /// Write a new version of a KV v2 secret (`PUT mount/data/path`).
    KvWrite {
        /// The KV v2 mount.
        mount: String,
        /// The secret's path below the mount.
        path: String,
        /// The random nonce that, with mount and path, names the value's target.
        nonce: [u8; 32],
        /// The value sealed to the cluster key under that target (welkin-sealed encoding),
        /// committed to by digest so that destroying the version can destroy the bytes.
        sealed: Detachable,
        /// Check-and-set: write only if the current version is this (0: only if none).
        cas: Option<u64>,
    },
    /// Read a version (0: the latest), releasing partials to `reader` if the policy allows.
    KvRead {
        /// The KV v2 mount.
        mount: String,
        /// The secret's path below the mount.
        path: String,
        /// The version; 0 for the latest.
        version: u64,
        /// The reader's one-time X25519 public key, to which partials are encrypted.
        reader: [u8; 32],
    },
    /// Soft-delete versions (empty: the latest, as `DELETE mount/data/path` does).
    KvDelete {
        /// The KV v2 mount.
        mount: String,
        /// The secret's path below the mount.
        path: String,
        /// Versions; empty for the latest.
        versions: Vec<u64>,
    },
    /// Undo soft deletes.
    KvUndelete {
        /// The KV v2 mount.
        mount: String,
        /// The secret's path below the mount.
        path: String,
        /// Versions to restore.
        versions: Vec<u64>,
    },
    /// Remove versions' ciphertext for good.
    KvDestroy {
        /// The KV v2 mount.
        mount: String,
        /// The secret's path below the mount.
        path: String,
        /// Versions to destroy.
        versions: Vec<u64>,
    },
    /// Change a secret's settings (`POST mount/metadata/path`); `None` leaves a field as is.
    KvMetadataWrite {
        /// The KV v2 mount.
        mount: String,
        /// The secret's path below the mount.
        path: String,
        /// Versions kept (0: the mount's setting).
        max_versions: Option<u32>,
        /// Whether writes must carry `cas`.
        cas_required: Option<bool>,
        /// Replaces the custom metadata, sorted by key.
        custom_metadata: Option<Vec<(String, String)>>,
    },
    /// Delete a secret with every version and its metadata.
    KvMetadataDelete {
        /// The KV v2 mount.
        mount: String,
        /// The secret's path below the mount.
        path: String,
    },
    /// Change a mount's defaults (`POST mount/config`).
    KvConfigWrite {
        /// The KV v2 mount.
        mount: String,
        /// Versions kept per secret (0: 10).
        max_versions: Option<u32>,
        /// Whether writes must carry `cas`.
        cas_required: Option<bool>,
    },
    /// Enable an engine at `mount` (`POST sys/mounts/mount`).
    MountEnable {
        /// The mount path, without slashes at either end.
        mount: String,
        /// Free text.
        description: String,
        /// The engine.
        kind: MountKind,
    },
    /// Disable a mount and delete everything in it.
    MountDisable {
        /// The mount path.
        mount: String,
    },
    /// Create or replace an ACL policy.
    PolicyWrite {
        /// The policy's name.
        name: String,
        /// The parsed policy (welkin-policy encoding).
        policy: Vec<u8>,
    },
    /// Delete an ACL policy.
    PolicyDelete {
        /// The policy's name.
        name: String,
    },
    /// Create a child token of the sender.
    TokenCreate(TokenSpec),
    /// Extend the sender's TTL by `increment_ms` (0: by its original TTL).
    TokenRenewSelf {
        /// The extension.
        increment_ms: u64,
    },
    /// Revoke the sender.
    TokenRevokeSelf,
    /// Revoke another token (and its children).
    TokenRevoke(TokenRef),
    /// A logged permission check for a request answered from state (reading metadata,
    /// listing, reading a policy, looking a token up): allowed if the sender holds every
    /// capability in `capabilities` (welkin-policy bits) on `path`.
    Check {
        /// The request's API path below `/v1/`.
        path: String,
        /// The capabilities it needs.
        capabilities: u16,
    },
    /// Keep a response sealed under a new single-use wrapping token (Vault's response
    /// wrapping, `X-Vault-Wrap-TTL`).
    WrapStore {
        /// The wrapping token's public key.
        key: PublicKey,
        /// How long the wrapping token lives, in ms.
        ttl_ms: u64,
        /// The API path of the wrapped request (Vault's `creation_path`).
        path: String,
        /// The nonce that names the sealed response's target with the wrapping key.
        nonce: [u8; 32],
        /// The response, sealed to the cluster key (welkin-sealed encoding), committed to
        /// by digest so that unwrapping can destroy the bytes.
        sealed: Detachable,
    },
    /// Log in with a KERI identifier (`auth/keri/login`): sent by the identifier itself,
    /// signed by its current keys meeting its threshold (the freshness of the challenge is
    /// the transaction's nonce and expiry). Makes a token with `key`, bound to the
    /// identifier's current key state: a rotation voids it.
    KeriLogin {
        /// The new token's public key; the client made the token and keeps it.
        key: PublicKey,
        /// The TTL asked for, in ms (0: the role's), capped by the role's.
        ttl_ms: u64,
    },
    /// Map an identifier to the policies its logins get (`auth/keri/role/PREFIX`); no
    /// policies removes the mapping.
    KeriRole {
        /// The identifier (qb64 prefix).
        prefix: String,
        /// Policy names, sorted and unique.
        policies: Vec<String>,
        /// The longest TTL its tokens get, in ms (0: one hour).
        ttl_ms: u64,
    },
    /// Unwrap: sent by the wrapping token itself, which it uses up; releases the sealed
    /// response to `reader`.
    Unwrap {
        /// The reader's one-time X25519 public key.
        reader: [u8; 32],
    },
    /// Register the sender's X25519 public key for values sealed to it: sent by a KERI
    /// identifier itself, signed by its current keys meeting its threshold (as `KeriLogin`).
    /// The key counts while the identifier's key state stays the one that signed: a
    /// rotation voids it until the identifier registers again.
    EncryptionKey {
        /// The X25519 public key.
        key: [u8; 32],
    },
    /// Write a version sealed to the cluster key and to named identifiers' encryption keys.
    KvSeal(KvSeal),
    /// A logged cluster read of a recipient-sealed version, by a token bound to one of its
    /// recipients: releases partials to `reader` as `KvRead` does.
    KvOpen {
        /// The KV v2 mount.
        mount: String,
        /// The secret's path below the mount.
        path: String,
        /// The version; 0 for the latest.
        version: u64,
        /// The reader's one-time X25519 public key.
        reader: [u8; 32],
    },
    /// Replace the recipients of a recipient-sealed version (who may open it through the
    /// cluster from now on).
    KvReseal(KvReseal),
    /// A transit request (keys, decryption, MACs, signatures).
    Transit(TransitOp),
}

impl SecretsOp {
    /// The value this op carries beside the log, if any (see [`Detachable`]).
    pub fn detachable(&self) -> Option<&Detachable> {
        match self {
            SecretsOp::KvWrite { sealed, .. } | SecretsOp::WrapStore { sealed, .. } => Some(sealed),
            SecretsOp::KvSeal(seal) => Some(&seal.sealed),
            _ => None,
        }
    }

    /// This op with its detachable value (if any) dropped, without copying the value.
    pub fn detach(&self) -> SecretsOp {
        match self {
            SecretsOp::KvWrite {
                mount,
                path,
                nonce,
                sealed,
                cas,
            } => SecretsOp::KvWrite {
                mount: mount.clone(),
                path: path.clone(),
                nonce: *nonce,
                sealed: sealed.detach(),
                cas: *cas,
            },
            SecretsOp::WrapStore {
                key,
                ttl_ms,
                path,
                nonce,
                sealed,
            } => SecretsOp::WrapStore {
                key: key.clone(),
                ttl_ms: *ttl_ms,
                path: path.clone(),
                nonce: *nonce,
                sealed: sealed.detach(),
            },
            SecretsOp::KvSeal(seal) => SecretsOp::KvSeal(KvSeal {
                mount: seal.mount.clone(),
                path: seal.path.clone(),
                nonce: seal.nonce,
                sealed: seal.sealed.detach(),
                cas: seal.cas,
                recipients: seal.recipients.clone(),
                envelope: seal.envelope.clone(),
            }),
            other => other.clone(),
        }
    }

    /// The value this op carries beside the log, to attach or detach it.
    pub fn detachable_mut(&mut self) -> Option<&mut Detachable> {
        match self {
            SecretsOp::KvWrite { sealed, .. } | SecretsOp::WrapStore { sealed, .. } => Some(sealed),
            SecretsOp::KvSeal(seal) => Some(&mut seal.sealed),
            _ => None,
        }
    }
}

/// Retired: `KvWrite` with its sealed value inline (now [`TAG_KV_WRITE`], detachable).
const TAG_RETIRED_KV_WRITE: u8 = 0x01;
const TAG_KV_READ: u8 = 0x02;
const TAG_KV_DELETE: u8 = 0x03;
const TAG_KV_UNDELETE: u8 = 0x04;
const TAG_KV_DESTROY: u8 = 0x05;
const TAG_KV_METADATA_WRITE: u8 = 0x06;
const TAG_KV_METADATA_DELETE: u8 = 0x07;
const TAG_KV_CONFIG_WRITE: u8 = 0x08;
/// Retired: `MountEnable` without an engine kind (now [`TAG_MOUNT_ENABLE`]).
const TAG_RETIRED_MOUNT_ENABLE: u8 = 0x09;
const TAG_MOUNT_DISABLE: u8 = 0x0a;
const TAG_POLICY_WRITE: u8 = 0x0b;
const TAG_POLICY_DELETE: u8 = 0x0c;
const TAG_TOKEN_CREATE: u8 = 0x0d;
const TAG_TOKEN_RENEW_SELF: u8 = 0x0e;
const TAG_TOKEN_REVOKE_SELF: u8 = 0x0f;
const TAG_TOKEN_REVOKE: u8 = 0x10;
const TAG_CHECK: u8 = 0x11;
/// Retired: `WrapStore` with its sealed response inline (now [`TAG_WRAP_STORE`], detachable).
const TAG_RETIRED_WRAP_STORE: u8 = 0x12;
const TAG_UNWRAP: u8 = 0x13;
const TAG_KERI_LOGIN: u8 = 0x14;
const TAG_KERI_ROLE: u8 = 0x15;
const TAG_ENCRYPTION_KEY: u8 = 0x16;
const TAG_KV_SEAL: u8 = 0x17;
const TAG_KV_OPEN: u8 = 0x18;
const TAG_KV_RESEAL: u8 = 0x19;
const TAG_KV_WRITE: u8 = 0x20;
const TAG_WRAP_STORE: u8 = 0x21;
const TAG_MOUNT_ENABLE: u8 = 0x22;
const TAG_TRANSIT: u8 = 0x30;

impl SecretsOp {
    /// A short name for logs, audit lines and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            SecretsOp::KvWrite { .. } => "kv_write",
            SecretsOp::KvRead { .. } => "kv_read",
            SecretsOp::KvDelete { .. } => "kv_delete",
            SecretsOp::KvUndelete { .. } => "kv_undelete",
            SecretsOp::KvDestroy { .. } => "kv_destroy",
            SecretsOp::KvMetadataWrite { .. } => "kv_metadata_write",
            SecretsOp::KvMetadataDelete { .. } => "kv_metadata_delete",
            SecretsOp::KvConfigWrite { .. } => "kv_config_write",
            SecretsOp::MountEnable { .. } => "mount_enable",
            SecretsOp::MountDisable { .. } => "mount_disable",
            SecretsOp::PolicyWrite { .. } => "policy_write",
            SecretsOp::PolicyDelete { .. } => "policy_delete",
            SecretsOp::TokenCreate(_) => "token_create",
            SecretsOp::TokenRenewSelf { .. } => "token_renew_self",
            SecretsOp::TokenRevokeSelf => "token_revoke_self",
            SecretsOp::TokenRevoke(_) => "token_revoke",
            SecretsOp::Check { .. } => "check",
            SecretsOp::WrapStore { .. } => "wrap",
            SecretsOp::Unwrap { .. } => "unwrap",
            SecretsOp::KeriLogin { .. } => "keri_login",
            SecretsOp::KeriRole { .. } => "keri_role",
            SecretsOp::EncryptionKey { .. } => "encryption_key",
            SecretsOp::KvSeal(_) => "kv_seal",
            SecretsOp::KvOpen { .. } => "kv_open",
            SecretsOp::KvReseal(_) => "kv_reseal",
            SecretsOp::Transit(op) => op.kind(),
        }
    }
}

fn write_str(value: &str, buf: &mut impl BufMut) {
    value.as_bytes().to_vec().write(buf);
}

fn str_size(value: &str) -> usize {
    value.as_bytes().to_vec().encode_size()
}

fn read_str(buf: &mut impl Buf, max: usize, what: &'static str) -> Result<String, CodecError> {
    let cfg: RangeCfg<usize> = (0..=max).into();
    let bytes = Vec::<u8>::read_cfg(buf, &(cfg, ()))?;
    String::from_utf8(bytes).map_err(|_| CodecError::Invalid(what, "not UTF-8"))
}

fn read_bytes(buf: &mut impl Buf, max: usize) -> Result<Vec<u8>, CodecError> {
    let cfg: RangeCfg<usize> = (0..=max).into();
    Vec::<u8>::read_cfg(buf, &(cfg, ()))
}

fn write_pairs(pairs: &[(String, String)], buf: &mut impl BufMut) {
    commonware_codec::varint::UInt(pairs.len() as u32).write(buf);
    for (key, value) in pairs {
        write_str(key, buf);
        write_str(value, buf);
    }
}

fn pairs_size(pairs: &[(String, String)]) -> usize {
    commonware_codec::varint::UInt(pairs.len() as u32).encode_size()
        + pairs
            .iter()
            .map(|(k, v)| str_size(k) + str_size(v))
            .sum::<usize>()
}

/// Reads sorted, unique pairs, so that one set of pairs has one encoding.
fn read_pairs(
    buf: &mut impl Buf,
    max: usize,
    key_bytes: usize,
    value_bytes: usize,
) -> Result<Vec<(String, String)>, CodecError> {
    let count = commonware_codec::varint::UInt::<u32>::read(buf)?.0 as usize;
    if count > max {
        return Err(CodecError::InvalidLength(count));
    }
    let mut pairs: Vec<(String, String)> = Vec::with_capacity(count);
    for _ in 0..count {
        let key = read_str(buf, key_bytes, "metadata key")?;
        let value = read_str(buf, value_bytes, "metadata value")?;
        if pairs.last().is_some_and(|(last, _)| *last >= key) {
            return Err(CodecError::Invalid(
                "metadata",
                "keys not sorted and unique",
            ));
        }
        pairs.push((key, value));
    }
    Ok(pairs)
}

/// A sorted, unique list of policy names.
fn write_names(names: &[String], buf: &mut impl BufMut) {
    commonware_codec::varint::UInt(names.len() as u32).write(buf);
    for name in names {
        write_str(name, buf);
    }
}

fn read_names(buf: &mut impl Buf) -> Result<Vec<String>, CodecError> {
    let count = commonware_codec::varint::UInt::<u32>::read(buf)?.0 as usize;
    if count > MAX_TOKEN_POLICIES {
        return Err(CodecError::InvalidLength(count));
    }
    let mut names: Vec<String> = Vec::with_capacity(count);
    for _ in 0..count {
        let name = read_str(buf, MAX_POLICY_NAME_BYTES, "policy name")?;
        if names.last().is_some_and(|last| *last >= name) {
            return Err(CodecError::Invalid("policies", "not sorted and unique"));
        }
        names.push(name);
    }
    Ok(names)
}

fn write_versions(versions: &[u64], buf: &mut impl BufMut) {
    commonware_codec::varint::UInt(versions.len() as u32).write(buf);
    for version in versions {
        version.write(buf);
    }
}

fn read_versions(buf: &mut impl Buf) -> Result<Vec<u64>, CodecError> {
    let count = commonware_codec::varint::UInt::<u32>::read(buf)?.0 as usize;
    if count > MAX_VERSIONS_PER_OP {
        return Err(CodecError::InvalidLength(count));
    }
    (0..count).map(|_| u64::read(buf)).collect()
}

fn read_mount_path(buf: &mut impl Buf) -> Result<(String, String), CodecError> {
    let mount = read_str(buf, MAX_MOUNT_BYTES, "mount")?;
    let path = read_str(buf, MAX_SECRET_PATH_BYTES, "secret path")?;
    Ok((mount, path))
}

impl Write for TokenSpec {
    fn write(&self, buf: &mut impl BufMut) {
        self.key.write(buf);
        write_names(&self.policies, buf);
        self.ttl_ms.write(buf);
        self.renewable.write(buf);
        self.num_uses.write(buf);
        write_str(&self.display_name, buf);
        self.no_parent.write(buf);
        write_pairs(&self.meta, buf);
    }
}

impl EncodeSize for TokenSpec {
    fn encode_size(&self) -> usize {
        self.key.encode_size()
            + commonware_codec::varint::UInt(self.policies.len() as u32).encode_size()
            + self.policies.iter().map(|p| str_size(p)).sum::<usize>()
            + 8
            + 1
            + 4
            + str_size(&self.display_name)
            + 1
            + pairs_size(&self.meta)
    }
}

impl Read for TokenSpec {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let key = PublicKey::read(buf)?;
        let count = commonware_codec::varint::UInt::<u32>::read(buf)?.0 as usize;
        if count > MAX_TOKEN_POLICIES {
            return Err(CodecError::InvalidLength(count));
        }
        let mut policies: Vec<String> = Vec::with_capacity(count);
        for _ in 0..count {
            let policy = read_str(buf, MAX_POLICY_NAME_BYTES, "policy name")?;
            if policies.last().is_some_and(|last| *last >= policy) {
                return Err(CodecError::Invalid(
                    "TokenSpec",
                    "policies not sorted and unique",
                ));
            }
            policies.push(policy);
        }
        Ok(TokenSpec {
            key,
            policies,
            ttl_ms: u64::read(buf)?,
            renewable: bool::read(buf)?,
            num_uses: u32::read(buf)?,
            display_name: read_str(buf, MAX_TOKEN_STRING_BYTES, "display name")?,
            no_parent: bool::read(buf)?,
            meta: read_pairs(
                buf,
                MAX_TOKEN_META,
                MAX_TOKEN_STRING_BYTES,
                MAX_TOKEN_STRING_BYTES,
            )?,
        })
    }
}

impl Write for SecretsOp {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            SecretsOp::KvWrite {
                mount,
                path,
                nonce,
                sealed,
                cas,
            } => {
                TAG_KV_WRITE.write(buf);
                write_str(mount, buf);
                write_str(path, buf);
                nonce.write(buf);
                sealed.write(buf);
                cas.write(buf);
            }
            SecretsOp::KvRead {
                mount,
                path,
                version,
                reader,
            } => {
                TAG_KV_READ.write(buf);
                write_str(mount, buf);
                write_str(path, buf);
                version.write(buf);
                reader.write(buf);
            }
            SecretsOp::KvDelete {
                mount,
                path,
                versions,
            }
            | SecretsOp::KvUndelete {
                mount,
                path,
                versions,
            }
            | SecretsOp::KvDestroy {
                mount,
                path,
                versions,
            } => {
                let tag = match self {
                    SecretsOp::KvDelete { .. } => TAG_KV_DELETE,
                    SecretsOp::KvUndelete { .. } => TAG_KV_UNDELETE,
                    _ => TAG_KV_DESTROY,
                };
                tag.write(buf);
                write_str(mount, buf);
                write_str(path, buf);
                write_versions(versions, buf);
            }
            SecretsOp::KvMetadataWrite {
                mount,
                path,
                max_versions,
                cas_required,
                custom_metadata,
            } => {
                TAG_KV_METADATA_WRITE.write(buf);
                write_str(mount, buf);
                write_str(path, buf);
                max_versions.write(buf);
                cas_required.write(buf);
                custom_metadata.is_some().write(buf);
                if let Some(pairs) = custom_metadata {
                    write_pairs(pairs, buf);
                }
            }
            SecretsOp::KvMetadataDelete { mount, path } => {
                TAG_KV_METADATA_DELETE.write(buf);
                write_str(mount, buf);
                write_str(path, buf);
            }
            SecretsOp::KvConfigWrite {
                mount,
                max_versions,
                cas_required,
            } => {
                TAG_KV_CONFIG_WRITE.write(buf);
                write_str(mount, buf);
                max_versions.write(buf);
                cas_required.write(buf);
            }
            SecretsOp::MountEnable {
                mount,
                description,
                kind,
            } => {
                TAG_MOUNT_ENABLE.write(buf);
                write_str(mount, buf);
                write_str(description, buf);
                kind.code().write(buf);
            }
            SecretsOp::MountDisable { mount } => {
                TAG_MOUNT_DISABLE.write(buf);
                write_str(mount, buf);
            }
            SecretsOp::PolicyWrite { name, policy } => {
                TAG_POLICY_WRITE.write(buf);
                write_str(name, buf);
                policy.write(buf);
            }
            SecretsOp::PolicyDelete { name } => {
                TAG_POLICY_DELETE.write(buf);
                write_str(name, buf);
            }
            SecretsOp::TokenCreate(spec) => {
                TAG_TOKEN_CREATE.write(buf);
                spec.write(buf);
            }
            SecretsOp::TokenRenewSelf { increment_ms } => {
                TAG_TOKEN_RENEW_SELF.write(buf);
                increment_ms.write(buf);
            }
            SecretsOp::TokenRevokeSelf => TAG_TOKEN_REVOKE_SELF.write(buf),
            SecretsOp::TokenRevoke(target) => {
                TAG_TOKEN_REVOKE.write(buf);
                match target {
                    TokenRef::Key(key) => {
                        0u8.write(buf);
                        key.write(buf);
                    }
                    TokenRef::Accessor(accessor) => {
                        1u8.write(buf);
                        write_str(accessor, buf);
                    }
                }
            }
            SecretsOp::Check { path, capabilities } => {
                TAG_CHECK.write(buf);
                write_str(path, buf);
                capabilities.write(buf);
            }
            SecretsOp::WrapStore {
                key,
                ttl_ms,
                path,
                nonce,
                sealed,
            } => {
                TAG_WRAP_STORE.write(buf);
                key.write(buf);
                ttl_ms.write(buf);
                write_str(path, buf);
                nonce.write(buf);
                sealed.write(buf);
            }
            SecretsOp::Unwrap { reader } => {
                TAG_UNWRAP.write(buf);
                reader.write(buf);
            }
            SecretsOp::KeriLogin { key, ttl_ms } => {
                TAG_KERI_LOGIN.write(buf);
                key.write(buf);
                ttl_ms.write(buf);
            }
            SecretsOp::KeriRole {
                prefix,
                policies,
                ttl_ms,
            } => {
                TAG_KERI_ROLE.write(buf);
                write_str(prefix, buf);
                write_names(policies, buf);
                ttl_ms.write(buf);
            }
            SecretsOp::EncryptionKey { key } => {
                TAG_ENCRYPTION_KEY.write(buf);
                key.write(buf);
            }
            SecretsOp::KvSeal(seal) => {
                TAG_KV_SEAL.write(buf);
                seal.write(buf);
            }
            SecretsOp::KvOpen {
                mount,
                path,
                version,
                reader,
            } => {
                TAG_KV_OPEN.write(buf);
                write_str(mount, buf);
                write_str(path, buf);
                version.write(buf);
                reader.write(buf);
            }
            SecretsOp::KvReseal(reseal) => {
                TAG_KV_RESEAL.write(buf);
                reseal.write(buf);
            }
            SecretsOp::Transit(op) => {
                TAG_TRANSIT.write(buf);
                op.write(buf);
            }
        }
    }
}

impl EncodeSize for SecretsOp {
    fn encode_size(&self) -> usize {
        // Ops are small and encoded once per transaction: measuring by encoding keeps this in
        // step with `write` by construction.
        let mut buf = Vec::new();
        self.write(&mut buf);
        buf.len()
    }
}

impl Read for SecretsOp {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(match u8::read(buf)? {
            TAG_KV_WRITE => {
                let (mount, path) = read_mount_path(buf)?;
                SecretsOp::KvWrite {
                    mount,
                    path,
                    nonce: <[u8; 32]>::read(buf)?,
                    sealed: Detachable::read_cfg(buf, &MAX_SEALED_BYTES)?,
                    cas: Option::<u64>::read(buf)?,
                }
            }
            TAG_KV_READ => {
                let (mount, path) = read_mount_path(buf)?;
                SecretsOp::KvRead {
                    mount,
                    path,
                    version: u64::read(buf)?,
                    reader: <[u8; 32]>::read(buf)?,
                }
            }
            tag @ (TAG_KV_DELETE | TAG_KV_UNDELETE | TAG_KV_DESTROY) => {
                let (mount, path) = read_mount_path(buf)?;
                let versions = read_versions(buf)?;
                match tag {
                    TAG_KV_DELETE => SecretsOp::KvDelete {
                        mount,
                        path,
                        versions,
                    },
                    TAG_KV_UNDELETE => SecretsOp::KvUndelete {
                        mount,
                        path,
                        versions,
                    },
                    _ => SecretsOp::KvDestroy {
                        mount,
                        path,
                        versions,
                    },
                }
            }
            TAG_KV_METADATA_WRITE => {
                let (mount, path) = read_mount_path(buf)?;
                let max_versions = Option::<u32>::read(buf)?;
                let cas_required = Option::<bool>::read(buf)?;
                let custom_metadata = if bool::read(buf)? {
                    Some(read_pairs(
                        buf,
                        MAX_CUSTOM_METADATA,
                        MAX_METADATA_KEY_BYTES,
                        MAX_METADATA_VALUE_BYTES,
                    )?)
                } else {
                    None
                };
                SecretsOp::KvMetadataWrite {
                    mount,
                    path,
                    max_versions,
                    cas_required,
                    custom_metadata,
                }
            }
            TAG_KV_METADATA_DELETE => {
                let (mount, path) = read_mount_path(buf)?;
                SecretsOp::KvMetadataDelete { mount, path }
            }
            TAG_KV_CONFIG_WRITE => SecretsOp::KvConfigWrite {
                mount: read_str(buf, MAX_MOUNT_BYTES, "mount")?,
                max_versions: Option::<u32>::read(buf)?,
                cas_required: Option::<bool>::read(buf)?,
            },
            TAG_MOUNT_ENABLE => SecretsOp::MountEnable {
                mount: read_str(buf, MAX_MOUNT_BYTES, "mount")?,
                description: read_str(buf, MAX_TOKEN_STRING_BYTES, "description")?,
                kind: MountKind::from_code(u8::read(buf)?)
                    .ok_or(CodecError::Invalid("MountEnable", "unknown engine kind"))?,
            },
            TAG_RETIRED_MOUNT_ENABLE => {
                return Err(CodecError::Invalid(
                    "SecretsOp",
                    "retired op tag: MountEnable now names its engine (tag 0x22)",
                ));
            }
            TAG_MOUNT_DISABLE => SecretsOp::MountDisable {
                mount: read_str(buf, MAX_MOUNT_BYTES, "mount")?,
            },
            TAG_POLICY_WRITE => SecretsOp::PolicyWrite {
                name: read_str(buf, MAX_POLICY_NAME_BYTES, "policy name")?,
                policy: read_bytes(buf, MAX_POLICY_BYTES)?,
            },
            TAG_POLICY_DELETE => SecretsOp::PolicyDelete {
                name: read_str(buf, MAX_POLICY_NAME_BYTES, "policy name")?,
            },
            TAG_TOKEN_CREATE => SecretsOp::TokenCreate(TokenSpec::read(buf)?),
            TAG_TOKEN_RENEW_SELF => SecretsOp::TokenRenewSelf {
                increment_ms: u64::read(buf)?,
            },
            TAG_TOKEN_REVOKE_SELF => SecretsOp::TokenRevokeSelf,
            TAG_TOKEN_REVOKE => SecretsOp::TokenRevoke(match u8::read(buf)? {
                0 => TokenRef::Key(PublicKey::read(buf)?),
                1 => TokenRef::Accessor(read_str(buf, MAX_ACCESSOR_BYTES, "accessor")?),
                other => return Err(CodecError::InvalidEnum(other)),
            }),
            TAG_CHECK => SecretsOp::Check {
                path: read_str(buf, MAX_CHECK_PATH_BYTES, "path")?,
                capabilities: u16::read(buf)?,
            },
            TAG_WRAP_STORE => SecretsOp::WrapStore {
                key: PublicKey::read(buf)?,
                ttl_ms: u64::read(buf)?,
                path: read_str(buf, MAX_CHECK_PATH_BYTES, "path")?,
                nonce: <[u8; 32]>::read(buf)?,
                sealed: Detachable::read_cfg(buf, &MAX_SEALED_BYTES)?,
            },
            TAG_UNWRAP => SecretsOp::Unwrap {
                reader: <[u8; 32]>::read(buf)?,
            },
            TAG_KERI_LOGIN => SecretsOp::KeriLogin {
                key: PublicKey::read(buf)?,
                ttl_ms: u64::read(buf)?,
            },
            TAG_KERI_ROLE => SecretsOp::KeriRole {
                prefix: read_str(buf, crate::MAX_PREFIX_BYTES, "prefix")?,
                policies: read_names(buf)?,
                ttl_ms: u64::read(buf)?,
            },
            TAG_RETIRED_KV_WRITE | TAG_RETIRED_WRAP_STORE => {
                return Err(CodecError::Invalid(
                    "SecretsOp",
                    "retired op tag: sealed values now travel detachable (tags 0x20 and 0x21)",
                ));
            }
            TAG_ENCRYPTION_KEY => SecretsOp::EncryptionKey {
                key: <[u8; 32]>::read(buf)?,
            },
            TAG_KV_SEAL => SecretsOp::KvSeal(KvSeal::read(buf)?),
            TAG_KV_OPEN => {
                let (mount, path) = read_mount_path(buf)?;
                SecretsOp::KvOpen {
                    mount,
                    path,
                    version: u64::read(buf)?,
                    reader: <[u8; 32]>::read(buf)?,
                }
            }
            TAG_KV_RESEAL => SecretsOp::KvReseal(KvReseal::read(buf)?),
            TAG_TRANSIT => SecretsOp::Transit(TransitOp::read(buf)?),
            other => return Err(CodecError::InvalidEnum(other)),
        })
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{decode, hash_parts};
    use commonware_codec::Encode as _;

    fn key(seed: u64) -> PublicKey {
        use commonware_cryptography::Signer as _;
        PrivateKey::from_seed(seed).public_key()
    }

    /// One of every op, with every optional field set one way or the other.
    pub(crate) fn every_op() -> Vec<SecretsOp> {
        let (mount, path) = ("secret".to_string(), "app/db".to_string());
        vec![
            SecretsOp::KvWrite {
                mount: mount.clone(),
                path: path.clone(),
                nonce: [7; 32],
                sealed: Detachable::new(vec![1, 2, 3]),
                cas: Some(0),
            },
            SecretsOp::KvRead {
                mount: mount.clone(),
                path: path.clone(),
                version: 2,
                reader: [9; 32],
            },
            SecretsOp::KvDelete {
                mount: mount.clone(),
                path: path.clone(),
                versions: vec![],
            },
            SecretsOp::KvUndelete {
                mount: mount.clone(),
                path: path.clone(),
                versions: vec![1, 2],
            },
            SecretsOp::KvDestroy {
                mount: mount.clone(),
                path: path.clone(),
                versions: vec![3],
            },
            SecretsOp::KvMetadataWrite {
                mount: mount.clone(),
                path: path.clone(),
                max_versions: Some(5),
                cas_required: None,
                custom_metadata: Some(vec![("owner".into(), "ops".into())]),
            },
            SecretsOp::KvMetadataDelete {
                mount: mount.clone(),
                path,
            },
            SecretsOp::KvConfigWrite {
                mount: mount.clone(),
                max_versions: None,
                cas_required: Some(true),
            },
            SecretsOp::MountEnable {
                mount: "team".into(),
                description: "team secrets".into(),
                kind: MountKind::Kv2,
            },
            SecretsOp::MountDisable { mount },
            SecretsOp::PolicyWrite {
                name: "app".into(),
                policy: vec![1, 0, 0],
            },
            SecretsOp::PolicyDelete { name: "app".into() },
            SecretsOp::TokenCreate(TokenSpec {
                key: key(1),
                policies: vec!["app".into(), "default".into()],
                ttl_ms: 3_600_000,
                renewable: true,
                num_uses: 3,
                display_name: "ci".into(),
                no_parent: false,
                meta: vec![("team".into(), "ops".into())],
            }),
            SecretsOp::TokenRenewSelf {
                increment_ms: 60_000,
            },
            SecretsOp::TokenRevokeSelf,
            SecretsOp::TokenRevoke(TokenRef::Key(key(2))),
            SecretsOp::TokenRevoke(TokenRef::Accessor("abc".into())),
            SecretsOp::Check {
                path: "secret/metadata/app".into(),
                capabilities: 0x20,
            },
            SecretsOp::WrapStore {
                key: key(3),
                ttl_ms: 300_000,
                path: "secret/data/app/db".into(),
                nonce: [5; 32],
                sealed: Detachable::new(vec![4, 5]).detach(),
            },
            SecretsOp::Unwrap { reader: [6; 32] },
            SecretsOp::KeriLogin {
                key: key(4),
                ttl_ms: 60_000,
            },
            SecretsOp::KeriRole {
                prefix: "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4".into(),
                policies: vec!["app".into()],
                ttl_ms: 3_600_000,
            },
            SecretsOp::MountEnable {
                mount: "transit".into(),
                description: String::new(),
                kind: MountKind::Transit,
            },
        ]
        .into_iter()
        .chain(
            transit::tests::every_op()
                .into_iter()
                .map(SecretsOp::Transit),
        )
        .collect()
    }

    #[test]
    fn every_op_round_trips() {
        for op in every_op() {
            let bytes = op.encode();
            assert_eq!(bytes.len(), op.encode_size(), "{}", op.kind());
            assert_eq!(
                decode::<SecretsOp>(&bytes).ok().as_ref(),
                Some(&op),
                "{}",
                op.kind()
            );
        }
    }

    #[test]
    fn unsorted_pairs_and_policies_are_refused() {
        let op = SecretsOp::KvMetadataWrite {
            mount: "secret".into(),
            path: "a".into(),
            max_versions: None,
            cas_required: None,
            custom_metadata: Some(vec![("b".into(), "1".into()), ("a".into(), "2".into())]),
        };
        assert!(decode::<SecretsOp>(&op.encode()).is_err());
        let op = SecretsOp::TokenCreate(TokenSpec {
            key: key(1),
            policies: vec!["b".into(), "a".into()],
            ttl_ms: 0,
            renewable: false,
            num_uses: 0,
            display_name: String::new(),
            no_parent: false,
            meta: vec![],
        });
        assert!(decode::<SecretsOp>(&op.encode()).is_err());
    }

    #[test]
    fn too_many_versions_are_refused() {
        let op = SecretsOp::KvDestroy {
            mount: "secret".into(),
            path: "a".into(),
            versions: (0..=MAX_VERSIONS_PER_OP as u64).collect(),
        };
        assert!(decode::<SecretsOp>(&op.encode()).is_err());
    }

    #[test]
    fn token_keys_are_stable_and_distinct() {
        let a = token_public_key("wlk.a");
        assert_eq!(a, token_public_key("wlk.a"));
        assert_ne!(a, token_public_key("wlk.b"));
        assert_eq!(token_accessor(&a).len(), 24);
    }

    #[test]
    fn retired_tags_are_refused_with_their_reason() {
        for tag in [
            TAG_RETIRED_KV_WRITE,
            TAG_RETIRED_WRAP_STORE,
            TAG_RETIRED_MOUNT_ENABLE,
        ] {
            let error = decode::<SecretsOp>(&[tag, 0, 0]).expect_err("retired");
            assert!(error.to_string().contains("retired"), "{error}");
        }
    }

    #[test]
    fn detaching_keeps_everything_but_the_bytes() {
        for op in every_op() {
            let detached = op.detach();
            match op.detachable() {
                Some(value) => {
                    let slot = detached.detachable().expect("same op");
                    assert_eq!(slot.digest(), value.digest());
                    assert!(!slot.is_attached());
                }
                None => assert_eq!(detached, op),
            }
            assert_eq!(detached.kind(), op.kind());
        }
    }

    /// The encoding of every op is frozen: a change here is a wire-format change. (Changed
    /// twice before anything shipped: in issue 11, KvWrite and WrapStore moved to tags 0x20
    /// and 0x21 with detachable values, 0x01 and 0x12 retired; in issue 12, MountEnable moved
    /// to 0x22 with its engine kind, 0x09 retired, and the transit ops joined the list.)
    #[test]
    fn encoding_fixture() {
        let mut all = Vec::new();
        for op in every_op() {
            all.extend_from_slice(&op.encode());
        }
        all.extend_from_slice(token_public_key("wlk.fixture").as_ref());
        assert_eq!(
            hex::encode(hash_parts(&[&all])),
            "9bffc7f90a9f79673a2343b962b51e541002693e423acd9e0a327ea1f070c4c9",
            "secrets op encoding changed: add a new op tag or payload tag, then update the fixture"
        );
    }
}
