//! `welkin kv`: get, put and patch natively; the rest through the Vault API.

use super::native::{Native, Read};
use crate::{
    cli::{
        KvCommand, KvGetArgs, KvMetadataCommand, KvMetadataPutArgs, KvPathArgs, KvPutArgs,
        KvVersionsArgs, SecretPath,
    },
    output,
};
use anyhow::{Context as _, bail};
use serde_json::{Map, Value as Json, json};
use std::io::Read as _;
use welkin_state::secrets::records::Meta;

/// Largest data read from a file or stdin (the sealed limit is lower still).
const MAX_DATA_BYTES: u64 = 1024 * 1024;

/// Runs a `kv` subcommand.
pub(crate) fn kv(command: KvCommand) -> anyhow::Result<()> {
    match command {
        KvCommand::Get(args) => get(args),
        KvCommand::Put(args) => put(args, false),
        KvCommand::Patch(args) => put(args, true),
        KvCommand::Delete(args) => versions(args, "delete"),
        KvCommand::Undelete(args) => versions(args, "undelete"),
        KvCommand::Destroy(args) => versions(args, "destroy"),
        KvCommand::List(args) => list(args),
        KvCommand::RegisterKey(args) => super::recipients::register_key(args),
        KvCommand::Seal(args) => super::recipients::seal(args),
        KvCommand::Open(args) => super::recipients::open(args),
        KvCommand::Reseal(args) => super::recipients::reseal(args),
        KvCommand::Metadata(KvMetadataCommand::Get(args)) => metadata_get(args),
        KvCommand::Metadata(KvMetadataCommand::Put(args)) => metadata_put(args),
        KvCommand::Metadata(KvMetadataCommand::Delete(args)) => {
            let (mount, path) = split(&args.secret)?;
            super::call(
                &args.vault,
                "DELETE",
                &format!("{mount}/metadata/{path}"),
                None,
            )?;
            println!("Success! Data deleted (if it existed) at: {mount}/metadata/{path}");
            Ok(())
        }
    }
}

/// The mount and the path below it: `-mount` and the whole path, or the path's first segment
/// and the rest.
pub(super) fn split(secret: &SecretPath) -> anyhow::Result<(String, String)> {
    let path = secret.path.trim_matches('/');
    if let Some(mount) = &secret.mount {
        return Ok((mount.trim_matches('/').to_string(), path.to_string()));
    }
    match path.split_once('/') {
        Some((mount, rest)) if !mount.is_empty() && !rest.is_empty() => {
            Ok((mount.to_string(), rest.to_string()))
        }
        _ => bail!(
            "{:?} names no secret: give MOUNT/PATH (e.g. secret/app/db) or -mount=MOUNT PATH",
            secret.path
        ),
    }
}

/// The data of `kv put`: `KEY=VALUE` pairs, `KEY=@FILE`, or `-` (a JSON object on stdin).
pub(super) fn parse_data(
    items: &[String],
    stdin: &mut impl std::io::Read,
) -> anyhow::Result<Map<String, Json>> {
    if items == ["-"] {
        let mut text = String::new();
        stdin
            .take(MAX_DATA_BYTES + 1)
            .read_to_string(&mut text)
            .context("cannot read the data from stdin")?;
        if text.len() as u64 > MAX_DATA_BYTES {
            bail!("the data on stdin exceeds {MAX_DATA_BYTES} bytes");
        }
        return match serde_json::from_str(&text) {
            Ok(Json::Object(map)) => Ok(map),
            Ok(_) => bail!("the data on stdin must be a JSON object"),
            Err(e) => bail!("the data on stdin is not JSON: {e}"),
        };
    }
    let mut data = Map::new();
    for item in items {
        let Some((key, value)) = item.split_once('=').filter(|(k, _)| !k.is_empty()) else {
            bail!("{item:?} is not KEY=VALUE (use KEY=@FILE for a file, or - for JSON on stdin)");
        };
        let value = match value.strip_prefix('@') {
            Some(file) => {
                let size = std::fs::metadata(file)
                    .with_context(|| format!("cannot read {file} for {key}"))?
                    .len();
                if size > MAX_DATA_BYTES {
                    bail!("{file} is {size} bytes; at most {MAX_DATA_BYTES}");
                }
                std::fs::read_to_string(file)
                    .with_context(|| format!("cannot read {file} for {key} (it must be UTF-8)"))?
            }
            None => value.to_string(),
        };
        data.insert(key.to_string(), Json::String(value));
    }
    Ok(data)
}

fn get(args: KvGetArgs) -> anyhow::Result<()> {
    let (mount, path) = split(&args.secret)?;
    let native = Native::with_token(&args.vault, &args.trust)?;
    let read = native.read(&mount, &path, args.version.unwrap_or(0))?;
    for (index, reason) in &read.liars {
        eprintln!("welkin: member {index} sent a false partial: {reason}");
    }
    let meta = native.metadata(&mount, &path, read.grant.height)?;
    let metadata = version_json(meta.as_ref(), read.grant.version);
    if args.vault.json && args.field.is_none() {
        return output::json(&response(&read, metadata));
    }
    let how = format!(
        "opened here; read {} at height {}",
        hex::encode(read.id),
        read.grant.height
    );
    show(
        &args.vault,
        args.field.as_deref(),
        (&mount, &path),
        &how,
        &read.data,
        metadata,
    )
}

/// Prints an opened value: one field's value, Vault's JSON, or the metadata and data tables
/// under a header saying `how` it was opened.
pub(super) fn show(
    vault: &crate::cli::VaultArgs,
    field: Option<&str>,
    (mount, path): (&str, &str),
    how: &str,
    data: &Json,
    metadata: Json,
) -> anyhow::Result<()> {
    if let Some(field) = field {
        let Some(value) = data.get(field) else {
            bail!(
                "no field {field:?} in {mount}/{path} (fields: {})",
                keys(data)
            );
        };
        match value {
            Json::String(text) => println!("{text}"),
            other => println!("{other}"),
        }
        return Ok(());
    }
    if vault.json {
        return output::json(&json!({
            "data": { "data": data, "metadata": metadata },
            "opened": how,
        }));
    }
    println!("{}", "=".repeat(7 + mount.len() + path.len()));
    println!("Secret Path: {mount}/data/{path}  ({how})");
    super::object_table(Some("Metadata"), &metadata);
    println!();
    super::object_table(Some("Data"), data);
    Ok(())
}

fn keys(data: &Json) -> String {
    data.as_object()
        .map(|o| o.keys().cloned().collect::<Vec<_>>().join(", "))
        .unwrap_or_default()
}

/// Vault's response to a read, with the members that lied.
fn response(read: &Read, metadata: Json) -> Json {
    json!({
        "request_id": hex::encode(read.id),
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": { "data": read.data, "metadata": metadata },
        "wrap_info": null,
        "warnings": null,
        "auth": null,
        "false_partials": read.liars.iter().map(|(i, r)| json!({"member": i, "reason": r})).collect::<Vec<_>>(),
    })
}

/// One version's metadata as Vault shows it.
pub(super) fn version_json(meta: Option<&Meta>, version: u64) -> Json {
    let entry = meta.and_then(|m| m.version(version));
    let custom = match meta {
        Some(m) if !m.custom.is_empty() => Json::Object(
            m.custom
                .iter()
                .map(|(k, v)| (k.clone(), Json::String(v.clone())))
                .collect(),
        ),
        _ => Json::Null,
    };
    json!({
        "created_time": entry.map(|v| super::rfc3339(v.created_ms)).unwrap_or_default(),
        "custom_metadata": custom,
        "deletion_time": entry.filter(|v| v.deleted_ms != 0).map(|v| super::rfc3339(v.deleted_ms)).unwrap_or_default(),
        "destroyed": entry.is_some_and(|v| v.destroyed),
        "version": version,
    })
}

fn put(args: KvPutArgs, patch: bool) -> anyhow::Result<()> {
    let (mount, path) = split(&args.secret)?;
    let changes = parse_data(&args.data, &mut std::io::stdin().lock())?;
    let native = Native::with_token(&args.vault, &args.trust)?;
    let (data, cas) = if patch {
        let current = native.read(&mount, &path, 0)?;
        let mut data = current.data;
        welkin_types::api::merge_patch(&mut data, &Json::Object(changes));
        (data, Some(current.grant.version))
    } else {
        (Json::Object(changes), args.cas)
    };
    let (id, receipt) = native.write(&mount, &path, &data, cas)?;
    // The receipt does not carry the version made: it is the current version in verified
    // metadata at the write's height or later (a later write to the same path would show).
    let meta = native.metadata(&mount, &path, receipt.height)?;
    let version = meta.as_ref().map_or(0, |m| m.current);
    let metadata = version_json(meta.as_ref(), version);
    if args.vault.json {
        return output::json(&json!({
            "request_id": hex::encode(id),
            "data": metadata,
            "height": receipt.height,
        }));
    }
    println!(
        "== Secret Path ==\n{mount}/data/{path}  (sealed here; write {} at height {})\n",
        hex::encode(id),
        receipt.height
    );
    super::object_table(Some("Metadata"), &metadata);
    Ok(())
}

fn versions(args: KvVersionsArgs, action: &str) -> anyhow::Result<()> {
    let (mount, path) = split(&args.secret)?;
    if args.versions.is_empty() {
        if action != "delete" {
            bail!("say which versions to {action}: -versions=1,2");
        }
        super::call(&args.vault, "DELETE", &format!("{mount}/data/{path}"), None)?;
    } else {
        let body = json!({ "versions": args.versions });
        super::call(
            &args.vault,
            "POST",
            &format!("{mount}/{action}/{path}"),
            Some(&body),
        )?;
    }
    println!("Success! Data {action}d (if it existed) at: {mount}/data/{path}");
    Ok(())
}

fn list(args: KvPathArgs) -> anyhow::Result<()> {
    let secret = &args.secret;
    let (mount, path) = match &secret.mount {
        Some(_) => split(secret)?,
        None => {
            let trimmed = secret.path.trim_matches('/');
            let (mount, rest) = trimmed.split_once('/').unwrap_or((trimmed, ""));
            (mount.to_string(), rest.to_string())
        }
    };
    let body = super::call(
        &args.vault,
        "GET",
        &format!("{mount}/metadata/{path}?list=true"),
        None,
    )?;
    if args.vault.json {
        return output::json(&body);
    }
    println!("Keys\n----");
    for key in body["data"]["keys"].as_array().into_iter().flatten() {
        println!("{}", super::cell(key));
    }
    Ok(())
}

fn metadata_get(args: KvPathArgs) -> anyhow::Result<()> {
    let (mount, path) = split(&args.secret)?;
    let body = super::call(
        &args.vault,
        "GET",
        &format!("{mount}/metadata/{path}"),
        None,
    )?;
    if args.vault.json {
        return output::json(&body);
    }
    let mut data = body["data"].clone();
    let versions = data
        .as_object_mut()
        .and_then(|o| o.remove("versions"))
        .unwrap_or(Json::Null);
    super::object_table(Some("Metadata"), &data);
    let mut versions: Vec<(u64, Json)> = versions
        .as_object()
        .into_iter()
        .flatten()
        .filter_map(|(k, v)| Some((k.parse().ok()?, v.clone())))
        .collect();
    versions.sort_by_key(|(v, _)| std::cmp::Reverse(*v));
    for (version, fields) in versions {
        println!();
        super::object_table(Some(&format!("Version {version}")), &fields);
    }
    Ok(())
}

fn metadata_put(args: KvMetadataPutArgs) -> anyhow::Result<()> {
    let (mount, path) = split(&args.secret)?;
    let mut body = Map::new();
    if let Some(max) = args.max_versions {
        body.insert("max_versions".into(), max.into());
    }
    if let Some(cas) = args.cas_required {
        body.insert("cas_required".into(), cas.into());
    }
    if !args.custom_metadata.is_empty() {
        let pairs = parse_data(&args.custom_metadata, &mut std::io::empty())?;
        body.insert("custom_metadata".into(), Json::Object(pairs));
    }
    super::call(
        &args.vault,
        "POST",
        &format!("{mount}/metadata/{path}"),
        Some(&Json::Object(body)),
    )?;
    println!("Success! Data written to: {mount}/metadata/{path}");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(items: &[&str]) -> anyhow::Result<Map<String, Json>> {
        let items: Vec<String> = items.iter().map(|s| s.to_string()).collect();
        parse_data(&items, &mut std::io::empty())
    }

    #[test]
    fn key_value_pairs_parse_and_keep_later_equals_signs() {
        let parsed = data(&["password=hunter2", "dsn=a=b"]).expect("parses");
        assert_eq!(
            Json::Object(parsed),
            json!({"password": "hunter2", "dsn": "a=b"})
        );
    }

    #[test]
    fn at_file_reads_the_file() {
        let file = std::env::temp_dir().join(format!("welkin-kv-at-{}", std::process::id()));
        std::fs::write(&file, "-----BEGIN KEY-----\n").expect("write");
        let parsed = data(&[&format!("cert=@{}", file.display())]).expect("parses");
        std::fs::remove_file(&file).expect("remove");
        assert_eq!(parsed["cert"], "-----BEGIN KEY-----\n");
        let missing = data(&["cert=@/nonexistent/welkin"]).expect_err("no file");
        assert!(
            missing.to_string().contains("/nonexistent/welkin"),
            "{missing}"
        );
    }

    #[test]
    fn stdin_takes_a_json_object_only() {
        let parsed = parse_data(&["-".into()], &mut &br#"{"a": {"b": 1}}"#[..]).expect("parses");
        assert_eq!(parsed["a"], json!({"b": 1}));
        assert!(parse_data(&["-".into()], &mut &b"[1]"[..]).is_err());
        assert!(parse_data(&["-".into()], &mut &b"{nope"[..]).is_err());
    }

    #[test]
    fn bad_pairs_are_refused_with_the_item() {
        let error = data(&["novalue"]).expect_err("no =");
        assert!(error.to_string().contains("\"novalue\""), "{error}");
        assert!(data(&["=v"]).is_err());
    }

    #[test]
    fn paths_split_at_the_mount() {
        let secret = |mount: Option<&str>, path: &str| SecretPath {
            mount: mount.map(String::from),
            path: path.into(),
        };
        assert_eq!(
            split(&secret(None, "secret/app/db")).expect("splits"),
            ("secret".into(), "app/db".into())
        );
        assert_eq!(
            split(&secret(Some("team"), "app/db")).expect("splits"),
            ("team".into(), "app/db".into())
        );
        assert!(split(&secret(None, "secret")).is_err());
    }
}
