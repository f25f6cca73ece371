//! `welkin audit`: who read or changed which secret, and when, from the audit log, each line
//! checked against a certified checkpoint.
//!
//! Every secrets request is a transaction, so every one (allowed or refused) is a log entry.
//! A line shows the entry's index and height, the operation, the path, the token's accessor
//! (a public handle: tokens themselves are never in the log), the outcome and its reason. It
//! says "verified" only after the entry's RFC 6962 inclusion proof leads to the log root of a
//! checkpoint signed by the trusted cluster key. Values never appear: the log holds only their
//! ciphertext, and this command does not print it.

use crate::{cli::AuditArgs, cmd::trust, output};
use anyhow::Context as _;
use welkin_client::Client;
use welkin_types::{LogEntry, Payload, Sender, secrets::SecretsOp, secrets::token_accessor};

/// What a line says about one secrets request.
fn describe(op: &SecretsOp) -> (String, String) {
    let kv = |mount: &str, area: &str, path: &str| format!("{mount}/{area}/{path}");
    let (what, path) = match op {
        SecretsOp::KvWrite { mount, path, .. } => ("write", kv(mount, "data", path)),
        SecretsOp::KvRead {
            mount,
            path,
            version,
            ..
        } => {
            let what = if *version == 0 {
                "read"
            } else {
                "read version"
            };
            let path = kv(mount, "data", path);
            let path = if *version == 0 {
                path
            } else {
                format!("{path}?version={version}")
            };
            (what, path)
        }
        SecretsOp::KvDelete { mount, path, .. } => ("delete", kv(mount, "data", path)),
        SecretsOp::KvUndelete { mount, path, .. } => ("undelete", kv(mount, "undelete", path)),
        SecretsOp::KvDestroy { mount, path, .. } => ("destroy", kv(mount, "destroy", path)),
        SecretsOp::KvMetadataWrite { mount, path, .. } => {
            ("metadata write", kv(mount, "metadata", path))
        }
        SecretsOp::KvMetadataDelete { mount, path } => {
            ("metadata delete", kv(mount, "metadata", path))
        }
        SecretsOp::KvConfigWrite { mount, .. } => ("config write", format!("{mount}/config")),
        SecretsOp::MountEnable { mount, .. } => ("mount", format!("sys/mounts/{mount}")),
        SecretsOp::MountDisable { mount } => ("unmount", format!("sys/mounts/{mount}")),
        SecretsOp::PolicyWrite { name, .. } => ("policy write", format!("sys/policies/acl/{name}")),
        SecretsOp::PolicyDelete { name } => ("policy delete", format!("sys/policies/acl/{name}")),
        SecretsOp::TokenCreate(spec) => (
            "token create",
            format!("auth/token/create -> {}", token_accessor(&spec.key)),
        ),
        SecretsOp::TokenRenewSelf { .. } => ("token renew", "auth/token/renew-self".into()),
        SecretsOp::TokenRevokeSelf => ("token revoke", "auth/token/revoke-self".into()),
        SecretsOp::TokenRevoke(_) => ("token revoke", "auth/token/revoke".into()),
        SecretsOp::Check { path, .. } => ("access", path.clone()),
        SecretsOp::WrapStore { path, key, .. } => {
            ("wrap", format!("{path} -> {}", token_accessor(key)))
        }
        SecretsOp::Unwrap { .. } => ("unwrap", "sys/wrapping/unwrap".into()),
        SecretsOp::KeriLogin { key, .. } => (
            "login",
            format!("auth/keri/login -> {}", token_accessor(key)),
        ),
        SecretsOp::KeriRole { prefix, .. } => ("role write", format!("auth/keri/role/{prefix}")),
        SecretsOp::EncryptionKey { .. } => ("encryption key", "auth/keri/encryption-key".into()),
        SecretsOp::KvSeal(seal) => (
            "seal",
            format!(
                "{} -> {}",
                kv(&seal.mount, "data", &seal.path),
                seal.recipients.join(",")
            ),
        ),
        SecretsOp::KvOpen {
            mount,
            path,
            version,
            ..
        } => (
            "open",
            format!("{}?version={version}", kv(mount, "data", path)),
        ),
        SecretsOp::KvReseal(reseal) => (
            "reseal",
            format!(
                "{}?version={} -> {}",
                kv(&reseal.mount, "data", &reseal.path),
                reseal.version,
                reseal.recipients.join(",")
            ),
        ),
        SecretsOp::Transit(op) => (op.kind().trim_start_matches("transit_"), op.vault_path()),
    };
    (what.to_string(), path)
}

pub(crate) fn audit(args: AuditArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api.api);
    let trust = trust::cluster(&client, args.trust.genesis.as_deref())?;
    let checkpoint = client
        .verified_checkpoint(None, &trust.trusted.cluster_id, &trust.trusted.cluster_key)
        .context("cannot get a certified checkpoint to check the log against")?
        .checkpoint;
    let size = checkpoint.log_size;
    let start = args.from.unwrap_or(size.saturating_sub(args.last));
    let mut lines = Vec::new();
    let mut next = start;
    while next < size {
        let end = size.min(next + welkin_types::limits::MAX_LOG_RANGE);
        let entries = client.log_entries(next, end)?;
        for (offset, hex_entry) in entries.entries.iter().enumerate() {
            let index = next + offset as u64;
            let bytes = hex::decode(hex_entry).context("a log entry is not hex")?;
            let entry = LogEntry::from_bytes(&bytes)?;
            let Payload::Secrets(op) = &entry.tx.tx.payload else {
                continue;
            };
            let (what, path) = describe(op);
            if args
                .path
                .as_ref()
                .is_some_and(|p| !path.starts_with(p.as_str()))
            {
                continue;
            }
            let accessor = match &entry.tx.tx.sender {
                Sender::Key(key) => token_accessor(key),
                Sender::Identifier { prefix, .. } => prefix.clone(),
            };
            let proof = client.inclusion_proof(index, size)?;
            let hashes = welkin_client::proof_hashes(&proof.proof).map_err(anyhow::Error::msg)?;
            let hashes: Vec<welkin_types::Digest> =
                hashes.into_iter().map(welkin_types::Digest::from).collect();
            let verified = checkpoint.verify_inclusion(&bytes, index, &hashes).is_ok();
            lines.push(serde_json::json!({
                "index": index,
                "height": entry.height,
                "operation": what,
                "path": path,
                "accessor": accessor,
                "outcome": entry.outcome.name(),
                "detail": entry.detail,
                "tx": hex::encode(entry.tx.id()),
                "verified": verified,
            }));
        }
        next = end;
    }
    if args.api.json {
        return output::json(&serde_json::json!({
            "checkpoint_height": checkpoint.height,
            "log_size": size,
            "trust": trust.source,
            "entries": lines,
        }));
    }
    println!(
        "secrets requests in log entries {start}..{size}, checked against the checkpoint at \
         height {} ({})",
        checkpoint.height, trust.source
    );
    for line in &lines {
        let verified = if line["verified"] == true {
            "verified"
        } else {
            "PROOF FAILED"
        };
        let detail = line["detail"].as_str().unwrap_or_default();
        println!(
            "{:>8}  h{:<7} {:<16} {:<40} by {}  {}{}  {verified}",
            line["index"],
            line["height"],
            line["operation"].as_str().unwrap_or_default(),
            line["path"].as_str().unwrap_or_default(),
            line["accessor"].as_str().unwrap_or_default(),
            line["outcome"].as_str().unwrap_or_default(),
            if detail.is_empty() {
                String::new()
            } else {
                format!(" ({detail})")
            },
        );
    }
    if lines.iter().any(|l| l["verified"] != true) {
        anyhow::bail!(
            "some entries did not verify against the certified checkpoint: the node lies"
        );
    }
    Ok(())
}
