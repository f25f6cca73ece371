//! The native path: this process seals values to the cluster key, signs each request with the
//! key its token derives, and opens reads with partials sealed to a one-time key. No node
//! sees a value in the clear.

use super::super::trust::{self, Trust};
use anyhow::{Context as _, bail};
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use serde_json::Value as Json;
use std::time::{Duration, Instant};
use welkin_client::Client;
use welkin_node::{ReadGrant, ReadOpener, Release};
use welkin_sealed::ReaderKey;
use welkin_state::secrets::{
    ValueRef,
    records::{Meta, Mount},
};
use welkin_types::{
    Detachable, Digest, Genesis, Payload, Receipt, Sender, Transaction, TxId,
    secrets::{MAX_SEALED_BYTES, SecretsOp, token_signing_key},
};
use zeroize::Zeroizing;

/// How long a request's transaction may wait to commit.
const COMMIT_WAIT: Duration = Duration::from_secs(30);
/// Validity of the transactions signed here.
const TX_TTL_MS: u64 = 60_000;
/// How long a read waits for t partials.
const RELEASE_WAIT: Duration = Duration::from_secs(20);
/// Pause between polls of the nodes' releases and checkpoints.
const POLL: Duration = Duration::from_millis(100);

/// A session with one node, for one token (if any: reading certified state needs none),
/// trusting one cluster.
pub(crate) struct Native {
    client: Client,
    trust: Trust,
    token: Option<String>,
}

/// A value sealed here to the cluster key, as a KV write carries it.
pub(crate) struct Sealed {
    /// The nonce that, with mount and path, names its target.
    pub(crate) nonce: [u8; 32],
    /// Its target.
    pub(crate) target: Digest,
    /// The sealed value (welkin-sealed encoding).
    pub(crate) sealed: Vec<u8>,
}

/// An opened read.
pub(crate) struct Read {
    /// The read transaction.
    pub(crate) id: TxId,
    /// What the cluster granted (version, height, target).
    pub(crate) grant: ReadGrant,
    /// The value, a JSON object.
    pub(crate) data: Json,
    /// Members whose envelope or partial was false, with what was wrong.
    pub(crate) liars: Vec<(u32, String)>,
}

impl Native {
    /// Connects to `api`, trusting the cluster of `genesis` (or the pinned one).
    pub(crate) fn connect(
        api: &str,
        genesis: Option<&std::path::Path>,
        token: Option<String>,
    ) -> anyhow::Result<Self> {
        let client = Client::new(api);
        let trust = trust::cluster(&client, genesis)?;
        Ok(Self {
            client,
            trust,
            token,
        })
    }

    /// Connects as `--api` and the token of `vault` say, trusting the cluster `trust` names.
    pub(crate) fn with_token(
        vault: &crate::cli::VaultArgs,
        trust: &crate::cli::TrustArgs,
    ) -> anyhow::Result<Self> {
        Self::connect(
            &super::api(vault),
            trust.genesis.as_deref(),
            Some(super::token_of(vault)?),
        )
    }

    /// Signs `op` with the token's key, submits it and waits for its receipt; a refusal is an
    /// error carrying the state machine's reason (e.g. `403: permission denied`).
    pub(crate) fn submit(&self, what: &str, op: SecretsOp) -> anyhow::Result<(TxId, Receipt)> {
        let Some(token) = &self.token else {
            bail!(
                "{what} needs a token: pass --token, set VAULT_TOKEN, or run `welkin login` \
                 (`welkin login --as NAME` for a KERI identity)"
            );
        };
        let key = token_signing_key(token);
        let tx = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: welkin_node::ceremony::random_u64(),
            expiry_ms: super::super::now_ms() + TX_TTL_MS,
            payload: Payload::Secrets(Box::new(op)),
        }
        .sign(&key, &self.trust.trusted.cluster_id);
        self.submit_signed(what, tx)
    }

    /// Submits a signed transaction and waits for its receipt; a refusal is an error carrying
    /// the state machine's reason.
    pub(crate) fn submit_signed(
        &self,
        what: &str,
        tx: welkin_types::SignedTransaction,
    ) -> anyhow::Result<(TxId, Receipt)> {
        let id = tx.id();
        let status = self
            .client
            .submit(&tx, Some(COMMIT_WAIT))
            .with_context(|| format!("{what}: the node refused the request"))?;
        let Some(receipt) = status.receipt else {
            bail!(
                "{what}: request {} was not committed within {} s; it may still commit (`welkin tx status {}`)",
                hex::encode(id),
                COMMIT_WAIT.as_secs(),
                hex::encode(id)
            );
        };
        if !receipt.outcome.is_applied() {
            let detail = status
                .detail
                .unwrap_or_else(|| receipt.outcome.name().to_string());
            bail!(
                "{what} refused at height {}: {detail} (request {})",
                receipt.height,
                hex::encode(id)
            );
        }
        Ok((id, receipt))
    }

    /// Seals `data` here to the cluster key and writes it as a new version of `mount`/`path`.
    pub(crate) fn write(
        &self,
        mount: &str,
        path: &str,
        data: &Json,
        cas: Option<u64>,
    ) -> anyhow::Result<(TxId, Receipt)> {
        let plaintext = Zeroizing::new(serde_json::to_vec(data)?);
        let sealed = self.seal(mount, path, &plaintext)?;
        let op = SecretsOp::KvWrite {
            mount: mount.into(),
            path: path.into(),
            nonce: sealed.nonce,
            sealed: Detachable::new(sealed.sealed),
            cas,
        };
        self.submit(&format!("write of {mount}/{path}"), op)
    }

    /// Seals `plaintext` here to the cluster key under a fresh target of `mount`/`path`.
    pub(crate) fn seal(&self, mount: &str, path: &str, plaintext: &[u8]) -> anyhow::Result<Sealed> {
        let mut rng = commonware_utils::sys_rng();
        let mut nonce = [0u8; 32];
        rand_core::Rng::fill_bytes(&mut rng, &mut nonce);
        let target = welkin_sealed::target(&[b"kv2", mount.as_bytes(), path.as_bytes()], &nonce);
        let sealed =
            welkin_sealed::seal(&mut rng, &self.trust.trusted.cluster_key, target, plaintext)
                .map_err(|e| anyhow::anyhow!("cannot seal the secret: {e}"))?
                .encode()
                .to_vec();
        if sealed.len() > MAX_SEALED_BYTES {
            bail!(
                "the secret is {} bytes sealed; the cluster stores at most {MAX_SEALED_BYTES} per version",
                sealed.len()
            );
        }
        Ok(Sealed {
            nonce,
            target,
            sealed,
        })
    }

    /// Reads `mount`/`path` (`version` 0: the latest) and opens it here.
    pub(crate) fn read(&self, mount: &str, path: &str, version: u64) -> anyhow::Result<Read> {
        self.cluster_read(mount, path, |reader| SecretsOp::KvRead {
            mount: mount.into(),
            path: path.into(),
            version,
            reader,
        })
    }

    /// A logged threshold read of `mount`/`path`: submits the read `op` makes for a fresh
    /// one-time key, then opens the value here with the partials released to that key.
    pub(crate) fn cluster_read(
        &self,
        mount: &str,
        path: &str,
        op: impl FnOnce([u8; 32]) -> SecretsOp,
    ) -> anyhow::Result<Read> {
        let reader = ReaderKey::generate(&mut commonware_utils::sys_rng());
        let (id, _) = self.submit(&format!("read of {mount}/{path}"), op(reader.public()))?;
        let genesis = self.genesis()?;
        let sharing = self.client.proven_sharing(&genesis)?;
        if sharing.public() != &self.trust.trusted.cluster_key {
            bail!(
                "the cluster key proven from the genesis is not the trusted one ({})",
                self.trust.source
            );
        }
        let mut opener = ReadOpener::new(&sharing, genesis.cluster_id(), id, reader);
        // The node asked first, then every other member, in turn, until t partials open it.
        let mut nodes = vec![self.client.clone()];
        nodes.extend(
            genesis
                .nodes
                .iter()
                .map(|n| Client::new(&format!("http://{}", n.api_address)))
                .filter(|c| c.base() != self.client.base()),
        );
        let deadline = Instant::now() + RELEASE_WAIT;
        let mut errors = Vec::new();
        let mut certified: Option<ReadGrant> = None;
        let mut sealed: Option<Vec<u8>> = None;
        loop {
            for node in &nodes {
                let (mut release, bytes) = match node
                    .release(&id)
                    .map_err(|e| e.to_string())
                    .and_then(|j| parse_release(&j))
                {
                    Ok(release) => release,
                    Err(error) => {
                        errors.push(format!("{}: {error}", node.base()));
                        continue;
                    }
                };
                // The grant (target and sealed value) is the serving node's word: take it only
                // once it matches the certified state, so a lying node can neither feed a
                // false value nor make honest members' envelopes look false.
                if let Some(grant) = release.grant.take() {
                    if certified.as_ref() == Some(&grant) {
                        release.grant = Some(grant);
                    } else {
                        match self.grant_is_certified(mount, path, &grant) {
                            Ok(true) => {
                                certified = Some(grant.clone());
                                release.grant = Some(grant);
                            }
                            Ok(false) => errors.push(format!(
                                "{}: its grant does not match the certified state",
                                node.base()
                            )),
                            Err(error) => errors.push(format!("{}: {error}", node.base())),
                        }
                    }
                }
                // The value's bytes, from any node, once they hash to the certified digest.
                if sealed.is_none()
                    && let (Some(grant), Some(bytes)) = (&certified, bytes)
                    && Detachable::digest_of(&bytes) == grant.sealed.digest
                {
                    sealed = Some(bytes);
                }
                let Some(bytes) = &sealed else {
                    continue;
                };
                if let Some((grant, value)) = opener.step(&release, bytes)? {
                    let data =
                        serde_json::from_slice(&value).context("the opened value is not JSON")?;
                    return Ok(Read {
                        id,
                        grant,
                        data,
                        liars: opener.liars().to_vec(),
                    });
                }
            }
            if Instant::now() >= deadline {
                errors.truncate(4);
                bail!(
                    "read {} was allowed, but fewer than {} members released their partials within {} s (liars: {:?}; last errors: {})",
                    hex::encode(id),
                    sharing.required(),
                    RELEASE_WAIT.as_secs(),
                    opener.liars(),
                    errors.join("; ")
                );
            }
            errors.clear();
            std::thread::sleep(POLL);
        }
    }

    /// Whether `grant` is the version the certified state holds: same target, same sealed
    /// value (waiting briefly for a checkpoint that covers it).
    fn grant_is_certified(
        &self,
        mount: &str,
        path: &str,
        grant: &ReadGrant,
    ) -> anyhow::Result<bool> {
        let trusted = &self.trust.trusted;
        let Some(mount_id) = self.mount_id(mount)? else {
            return Ok(false);
        };
        let key = welkin_state::keys::kv_value(&mount_id, path, grant.version);
        let deadline = Instant::now() + COMMIT_WAIT;
        loop {
            if let Some(value) = self.client.verified_value(&key, trusted)? {
                let value = welkin_state::secrets::records::Value::decode(&value.value)
                    .map_err(|e| anyhow::anyhow!("bad value record: {e}"))?;
                return Ok(value.target == grant.target && value.sealed == grant.sealed);
            }
            if Instant::now() >= deadline {
                bail!(
                    "version {} is not in the certified state (destroyed or trimmed since the \
                     read?); read again",
                    grant.version
                );
            }
            std::thread::sleep(POLL);
        }
    }

    /// The id of the trusted cluster, which transactions are signed for.
    pub(crate) fn cluster_id(&self) -> Digest {
        self.trust.trusted.cluster_id
    }

    /// The id of the mount enabled at `mount`, from certified state (`None`: no such mount).
    pub(crate) fn mount_id(&self, mount: &str) -> anyhow::Result<Option<Digest>> {
        let Some(record) = self.certified(&welkin_state::keys::secrets_mount(mount))? else {
            return Ok(None);
        };
        let record =
            Mount::decode(&record.value).map_err(|e| anyhow::anyhow!("bad mount record: {e}"))?;
        Ok(Some(record.id))
    }

    /// The value at `key` in the latest certified state, its proof checked against the trusted
    /// cluster key (`None`: absent).
    pub(crate) fn certified(
        &self,
        key: &Digest,
    ) -> anyhow::Result<Option<welkin_client::Verified<Vec<u8>>>> {
        Ok(self.client.verified_value(key, &self.trust.trusted)?)
    }

    /// The genesis: the file's, or the node's once it matches the trusted cluster.
    fn genesis(&self) -> anyhow::Result<Genesis> {
        self.trust.genesis(&self.client)
    }

    /// The secret's metadata, verified against the cluster key, from a certified checkpoint at
    /// `height` or later (waiting for one up to the commit wait); `None` if it has none.
    pub(crate) fn metadata(
        &self,
        mount: &str,
        path: &str,
        height: u64,
    ) -> anyhow::Result<Option<Meta>> {
        let trusted = &self.trust.trusted;
        let Some(mount_id) = self.mount_id(mount)? else {
            return Ok(None);
        };
        let key: Digest = welkin_state::keys::kv_meta(&mount_id, path);
        let deadline = Instant::now() + COMMIT_WAIT;
        loop {
            let meta = self.client.verified_value(&key, trusted)?;
            match meta {
                Some(meta) if meta.checkpoint.checkpoint.height >= height => {
                    return Meta::decode(&meta.value)
                        .map(Some)
                        .map_err(|e| anyhow::anyhow!("bad metadata record: {e}"));
                }
                _ if Instant::now() >= deadline => return Ok(None),
                _ => std::thread::sleep(POLL),
            }
        }
    }
}

/// `GET /v1/release/{id}`'s JSON as a [`Release`] and the sealed value's bytes (absent
/// where the node no longer holds them).
fn parse_release(json: &Json) -> Result<(Release, Option<Vec<u8>>), String> {
    let hex_field = |value: &Json, name: &str| -> Result<Vec<u8>, String> {
        hex::decode(value[name].as_str().ok_or(format!("no {name}"))?)
            .map_err(|e| format!("{name}: {e}"))
    };
    let grant = match &json["grant"] {
        Json::Null => None,
        grant => Some(ReadGrant {
            height: grant["height"].as_u64().ok_or("no height")?,
            version: grant["version"].as_u64().ok_or("no version")?,
            target: welkin_types::hexser::decode_hex::<Digest>(
                grant["target"].as_str().ok_or("no target")?,
            )
            .map_err(|e| format!("target: {e}"))?,
            reader: hex_field(grant, "reader")?
                .try_into()
                .map_err(|_| "reader is not 32 bytes".to_string())?,
            sealed: ValueRef {
                tx: welkin_types::hexser::decode_hex::<Digest>(
                    grant["value_tx"].as_str().ok_or("no value_tx")?,
                )
                .map_err(|e| format!("value_tx: {e}"))?,
                digest: welkin_types::hexser::decode_hex::<Digest>(
                    grant["value_digest"].as_str().ok_or("no value_digest")?,
                )
                .map_err(|e| format!("value_digest: {e}"))?,
            },
        }),
    };
    let bytes = match &json["grant"]["sealed"] {
        Json::String(_) => Some(hex_field(&json["grant"], "sealed")?),
        _ => None,
    };
    let mut envelopes = std::collections::BTreeMap::new();
    if let Some(map) = json["envelopes"].as_object() {
        for (index, envelope) in map {
            let index: u32 = index
                .parse()
                .map_err(|_| format!("bad member index {index:?}"))?;
            let envelope = hex::decode(envelope.as_str().ok_or("envelope is not a string")?)
                .map_err(|e| format!("envelope: {e}"))?;
            envelopes.insert(index, envelope);
        }
    }
    Ok((
        Release {
            grant,
            envelopes,
            value: None,
            targets: None,
        },
        bytes,
    ))
}
