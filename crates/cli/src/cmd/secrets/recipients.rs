//! `welkin kv register-key`, `seal`, `open` and `reseal`: values sealed to named KERI
//! identifiers as well as to the cluster key.

use super::{
    kv::{parse_data, show, split, version_json},
    native::Native,
};
use crate::cli::{KeystoreArgs, KvOpenArgs, KvRegisterKeyArgs, KvResealArgs, KvSealArgs};
use anyhow::{Context as _, bail};
use commonware_codec::Encode as _;
use serde_json::{Value as Json, json};
use welkin_sealed::{RecipientSealed, open_as_recipient, recipient_public_key, seal_to_recipients};
use welkin_state::{
    keys,
    secrets::{
        recipients::records::{EncryptionKey, Recipients},
        records::{Meta, Value},
    },
};
use welkin_types::secrets::{KvReseal, KvSeal, MAX_ENVELOPE_BYTES, SecretsOp};
use zeroize::Zeroizing;

/// The most X25519 keys kept per identity: the newest is registered, older ones open what was
/// sealed to them before.
const MAX_KEPT_KEYS: usize = 16;

/// The identity's prefix and X25519 secret keys (newest last).
fn identity_keys(
    keystore: &KeystoreArgs,
    name: &str,
) -> anyhow::Result<(String, Zeroizing<Vec<[u8; 32]>>)> {
    let keystore = super::super::id::open_keystore(keystore)?;
    let identity = keystore.get(name)?;
    if identity.prefix.is_empty() {
        bail!("identity {name:?} has no identifier yet: finish `welkin id incept {name}`");
    }
    Ok((
        identity.prefix.clone(),
        Zeroizing::new(identity.encryption.clone()),
    ))
}

/// `kv register-key --as NAME`: keeps an X25519 secret in the keystore and registers its
/// public key, signed by the identity's current keys.
pub(crate) fn register_key(args: KvRegisterKeyArgs) -> anyhow::Result<()> {
    let name = &args.identity;
    let mut keystore = super::super::id::open_keystore(&args.keystore)?;
    let identity = keystore.get_mut(name)?;
    if args.new || identity.encryption.is_empty() {
        let mut secret = Zeroizing::new([0u8; 32]);
        rand_core::Rng::fill_bytes(&mut commonware_utils::sys_rng(), secret.as_mut());
        identity.encryption.push(*secret);
        let excess = identity.encryption.len().saturating_sub(MAX_KEPT_KEYS);
        identity.encryption.drain(..excess);
        // Kept before it is registered: a value sealed to it must never outlive its secret.
        keystore.save()?;
    }
    let identity = keystore.get(name)?;
    let prefix = identity.prefix.clone();
    let public = recipient_public_key(identity.encryption.last().expect("made above if none"));
    let signer = crate::cli::SignerArgs {
        sender: crate::cli::SenderArgs {
            key: None,
            identity: Some(name.clone()),
        },
        keystore: args.keystore,
    };
    let signing = crate::cmd::signing::Signing::load(&signer)?;
    let native = Native::connect(
        &super::api(&args.vault),
        args.trust.genesis.as_deref(),
        None,
    )?;
    let tx = signing.sign(
        &native.cluster_id(),
        welkin_node::ceremony::random_u64(),
        crate::cmd::now_ms() + 60_000,
        welkin_types::Payload::Secrets(Box::new(SecretsOp::EncryptionKey { key: public })),
    );
    let (id, receipt) = native.submit_signed(&format!("registration of {name}'s key"), tx)?;
    if args.vault.json {
        return crate::output::json(&json!({
            "request_id": hex::encode(id),
            "identifier": prefix,
            "encryption_key": hex::encode(public),
            "height": receipt.height,
        }));
    }
    println!(
        "Success! Registered encryption key {} for {prefix} at height {}: it counts until the \
         identifier rotates (register again after a rotation)",
        hex::encode(public),
        receipt.height
    );
    Ok(())
}

/// `prefix`'s encryption key as certified state holds it, current or not.
fn registered_key(native: &Native, prefix: &str) -> anyhow::Result<[u8; 32]> {
    let Some(record) = native.certified(&keys::encryption_key(prefix))? else {
        bail!(
            "{prefix} has registered no encryption key (it runs `welkin kv register-key --as \
             NAME` first)"
        );
    };
    let record = EncryptionKey::decode(&record.value)
        .map_err(|e| anyhow::anyhow!("bad encryption key record of {prefix}: {e}"))?;
    Ok(record.key)
}

/// The recipients sorted and unique, as the requests carry them.
fn sorted(recipients: &[String]) -> Vec<String> {
    let mut recipients = recipients.to_vec();
    recipients.sort();
    recipients.dedup();
    recipients
}

/// `kv seal --to PREFIX... MOUNT/PATH DATA`.
pub(crate) fn seal(args: KvSealArgs) -> anyhow::Result<()> {
    let KvSealArgs { to, put: args } = args;
    let recipients = sorted(&to.recipients);
    let (mount, path) = split(&args.secret)?;
    let data = parse_data(&args.data, &mut std::io::stdin().lock())?;
    let native = Native::with_token(&args.vault, &args.trust)?;
    // The keys come from certified state, so a lying node cannot slip in its own; the state
    // machine checks again that each is current when the seal commits.
    let keys = recipients
        .iter()
        .map(|prefix| registered_key(&native, prefix))
        .collect::<anyhow::Result<Vec<_>>>()?;
    let plaintext = Zeroizing::new(serde_json::to_vec(&Json::Object(data))?);
    let sealed = native.seal(&mount, &path, &plaintext)?;
    let envelope = seal_to_recipients(
        &mut commonware_utils::sys_rng(),
        &keys,
        sealed.target.as_ref(),
        &plaintext,
    )
    .map_err(|e| anyhow::anyhow!("cannot seal to the recipients: {e}"))?
    .encode()
    .to_vec();
    if envelope.len() > MAX_ENVELOPE_BYTES {
        bail!(
            "the value is {} bytes sealed to {} recipients; a seal carries at most \
             {MAX_ENVELOPE_BYTES}",
            envelope.len(),
            keys.len()
        );
    }
    let op = SecretsOp::KvSeal(KvSeal {
        mount: mount.clone(),
        path: path.clone(),
        nonce: sealed.nonce,
        sealed: welkin_types::Detachable::new(sealed.sealed),
        cas: args.cas,
        recipients: recipients.clone(),
        envelope,
    });
    let (id, receipt) = native.submit(&format!("seal of {mount}/{path}"), op)?;
    let meta = native.metadata(&mount, &path, receipt.height)?;
    let version = meta.as_ref().map_or(0, |m| m.current);
    let metadata = version_json(meta.as_ref(), version);
    if args.vault.json {
        return crate::output::json(&json!({
            "request_id": hex::encode(id),
            "data": metadata,
            "recipients": recipients,
            "height": receipt.height,
        }));
    }
    println!(
        "== Secret Path ==\n{mount}/data/{path}  (sealed here to {}; write {} at height {})\n",
        recipients.join(", "),
        hex::encode(id),
        receipt.height
    );
    super::object_table(Some("Metadata"), &metadata);
    Ok(())
}

/// The version asked for (0 or none: the latest), with the secret's certified metadata,
/// which must list it: then the version's records are in the certified state too.
fn version_of(
    native: &Native,
    mount: &str,
    path: &str,
    asked: Option<u64>,
) -> anyhow::Result<(u64, Meta)> {
    let Some(meta) = native.metadata(mount, path, 0)? else {
        bail!("no secret at {mount}/{path} in the certified state");
    };
    let version = asked.filter(|v| *v != 0).unwrap_or(meta.current);
    match meta.version(version) {
        Some(v) if !v.destroyed && v.deleted_ms == 0 => Ok((version, meta)),
        Some(_) => bail!("version {version} of {mount}/{path} is deleted or destroyed"),
        None => bail!(
            "version {version} of {mount}/{path} is not in the certified state (trimmed, or not \
             certified yet: try again in a moment)"
        ),
    }
}

/// `kv open MOUNT/PATH --as NAME`.
pub(crate) fn open(args: KvOpenArgs) -> anyhow::Result<()> {
    let KvOpenArgs {
        identity,
        keystore,
        get: args,
    } = args;
    let (mount, path) = split(&args.secret)?;
    let (prefix, secrets) = identity_keys(&keystore, &identity)?;
    let native = Native::connect(
        &super::api(&args.vault),
        args.trust.genesis.as_deref(),
        super::token_of(&args.vault).ok(),
    )?;
    let (version, meta) = version_of(&native, &mount, &path, args.version)?;
    let Some(mount_id) = native.mount_id(&mount)? else {
        bail!("no secrets engine is mounted at {mount}/ in the certified state");
    };
    let Some(value) = native.certified(&keys::kv_value(&mount_id, &path, version))? else {
        bail!(
            "version {version} of {mount}/{path} is not in the certified state (deleted, destroyed or not certified yet)"
        );
    };
    let height = value.checkpoint.checkpoint.height;
    let value =
        Value::decode(&value.value).map_err(|e| anyhow::anyhow!("bad value record: {e}"))?;
    let Some(record) = native.certified(&keys::kv_recipients(&mount_id, &path, version))? else {
        bail!(
            "version {version} of {mount}/{path} is not sealed to recipients: read it with \
             `welkin kv get`"
        );
    };
    let record = Recipients::decode(&record.value)
        .map_err(|e| anyhow::anyhow!("bad recipients record: {e}"))?;
    let envelope = welkin_types::decode::<RecipientSealed>(&record.envelope)
        .map_err(|e| anyhow::anyhow!("bad recipient envelope: {e}"))?;
    let mine = secrets.iter().rev().find(|secret| {
        envelope
            .recipients()
            .any(|k| *k == recipient_public_key(secret))
    });
    let (data, how) = match mine {
        Some(secret) => {
            if !record.includes(&prefix) {
                eprintln!(
                    "welkin: {prefix} is no longer a recipient; it opens the envelope sealed to it \
                     before it was removed"
                );
            }
            let plaintext = open_as_recipient(secret, value.target.as_ref(), &envelope)
                .map_err(|e| anyhow::anyhow!("cannot open the envelope: {e}"))?;
            let data: Json =
                serde_json::from_slice(&plaintext).context("the opened value is not JSON")?;
            let how = format!("opened offline from certified state at height {height}");
            (data, how)
        }
        None => {
            if !record.includes(&prefix) {
                bail!(
                    "{prefix} ({}) is not a recipient of version {version} of {mount}/{path}",
                    identity
                );
            }
            // Added after the seal: no envelope of its own, so a logged threshold read.
            let read = native
                .cluster_read(&mount, &path, |reader| SecretsOp::KvOpen {
                    mount: mount.clone(),
                    path: path.clone(),
                    version,
                    reader,
                })
                .context("no envelope for this identity: the cluster read (`welkin login --as NAME` gives it a token) failed")?;
            for (index, reason) in &read.liars {
                eprintln!("welkin: member {index} sent a false partial: {reason}");
            }
            let how = format!(
                "opened here through the cluster; read {} at height {}",
                hex::encode(read.id),
                read.grant.height
            );
            (read.data, how)
        }
    };
    let metadata = version_json(Some(&meta), version);
    show(
        &args.vault,
        args.field.as_deref(),
        (&mount, &path),
        &how,
        &data,
        metadata,
    )
}

/// `kv reseal --to PREFIX... MOUNT/PATH`.
pub(crate) fn reseal(args: KvResealArgs) -> anyhow::Result<()> {
    let (mount, path) = split(&args.secret)?;
    let recipients = sorted(&args.to.recipients);
    let native = Native::with_token(&args.vault, &args.trust)?;
    let (version, _) = version_of(&native, &mount, &path, args.version)?;
    let op = SecretsOp::KvReseal(KvReseal {
        mount: mount.clone(),
        path: path.clone(),
        version,
        recipients: recipients.clone(),
    });
    let (id, receipt) = native.submit(&format!("re-seal of {mount}/{path}"), op)?;
    if args.vault.json {
        return crate::output::json(&json!({
            "request_id": hex::encode(id),
            "version": version,
            "recipients": recipients,
            "height": receipt.height,
        }));
    }
    println!(
        "Success! Version {version} of {mount}/{path} is now open to {} (re-seal {} at height {})",
        recipients.join(", "),
        hex::encode(id),
        receipt.height
    );
    Ok(())
}
