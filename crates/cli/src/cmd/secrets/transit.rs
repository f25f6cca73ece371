//! `welkin transit`: the transit engine through the node's Vault-compatible API, and local
//! verification of signatures against a certified public key.

use super::{call, cell, object_table, table};
use crate::cli::{
    TransitCommand, TransitConfigArgs, TransitCreateArgs, TransitDataArgs, TransitKeyArgs,
    TransitVerifyArgs, VaultArgs,
};
use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use std::io::Read as _;
use welkin_client::Client;
use welkin_state::{keys, secrets::records::Mount, secrets::transit::TransitKey};

/// Largest input read from standard input (a Vault request body is at most 1 MiB).
const MAX_STDIN_BYTES: u64 = 768 * 1024;

/// Runs a `welkin transit` command.
pub(crate) fn transit(command: TransitCommand) -> anyhow::Result<()> {
    match command {
        TransitCommand::Keys(args) => {
            // Vault's LIST as GET with list=true (HTTP clients refuse a LIST method).
            let path = format!("{}/keys?list=true", args.mount);
            let reply = call(&args.vault, "GET", &path, None)?;
            print(&args.vault, &reply, |data| {
                for name in data["keys"].as_array().into_iter().flatten() {
                    println!("{}", cell(name));
                }
            })
        }
        TransitCommand::Create(args) => create(&args),
        TransitCommand::Show(args) => show(&args),
        TransitCommand::Rotate(args) => {
            let path = format!("{}/keys/{}/rotate", args.mount, args.name);
            call(&args.vault, "POST", &path, Some(&json!({})))?;
            done(&args.vault, &format!("rotated key {}", args.name))
        }
        TransitCommand::Config(args) => config(&args),
        TransitCommand::Delete(args) => {
            let path = format!("{}/keys/{}", args.mount, args.name);
            call(&args.vault, "DELETE", &path, None)?;
            done(&args.vault, &format!("deleted key {}", args.name))
        }
        TransitCommand::Encrypt(args) => {
            let body = json!({"plaintext": b64(&input(&args.input)?)});
            data_op(&args, "encrypt", body, "ciphertext")
        }
        TransitCommand::Decrypt(args) => {
            let body = json!({"ciphertext": text_input(&args.input)?});
            let reply = post(&args, "decrypt", body)?;
            print(&args.key.vault, &reply, |data| {
                let plaintext = data["plaintext"].as_str().unwrap_or_default();
                match base64::engine::general_purpose::STANDARD.decode(plaintext) {
                    Ok(bytes) => println!("{}", String::from_utf8_lossy(&bytes)),
                    Err(_) => println!("{plaintext}"),
                }
            })
        }
        TransitCommand::Rewrap(args) => {
            let body = json!({"ciphertext": text_input(&args.input)?});
            data_op(&args, "rewrap", body, "ciphertext")
        }
        TransitCommand::Hmac(args) => {
            let body = json!({"input": b64(&input(&args.input)?)});
            data_op(&args, "hmac", body, "hmac")
        }
        TransitCommand::Sign(args) => {
            let body = json!({"input": b64(&input(&args.input)?)});
            data_op(&args, "sign", body, "signature")
        }
        TransitCommand::Verify(args) => verify(&args),
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The bytes of an input argument: the text itself, or standard input for `-`.
fn input(arg: &str) -> anyhow::Result<Vec<u8>> {
    if arg != "-" {
        return Ok(arg.as_bytes().to_vec());
    }
    let mut bytes = Vec::new();
    std::io::stdin()
        .take(MAX_STDIN_BYTES + 1)
        .read_to_end(&mut bytes)
        .context("cannot read standard input")?;
    if bytes.len() as u64 > MAX_STDIN_BYTES {
        bail!("standard input is over {MAX_STDIN_BYTES} bytes, too large for one request");
    }
    Ok(bytes)
}

/// A text argument (a ciphertext), trimmed of the newline a pipe adds.
fn text_input(arg: &str) -> anyhow::Result<String> {
    let bytes = input(arg)?;
    let text = String::from_utf8(bytes).context("the ciphertext is not text")?;
    Ok(text.trim().to_string())
}

/// Prints Vault's whole response with --json, else what `text` prints of its `data`.
fn print(vault: &VaultArgs, reply: &Json, text: impl FnOnce(&Json)) -> anyhow::Result<()> {
    if vault.json {
        println!("{}", serde_json::to_string_pretty(reply)?);
    } else {
        text(&reply["data"]);
    }
    Ok(())
}

/// Reports a change that has no response body.
fn done(vault: &VaultArgs, message: &str) -> anyhow::Result<()> {
    if vault.json {
        println!("{}", json!({"ok": true, "message": message}));
    } else {
        println!("{message}");
    }
    Ok(())
}

fn post(args: &TransitDataArgs, action: &str, mut body: Json) -> anyhow::Result<Json> {
    if let Some(version) = args.key_version {
        body["key_version"] = json!(version);
    }
    let path = format!("{}/{action}/{}", args.key.mount, args.key.name);
    call(&args.key.vault, "POST", &path, Some(&body))
}

/// A data operation whose answer is one `vault:vN:` field.
fn data_op(args: &TransitDataArgs, action: &str, body: Json, field: &str) -> anyhow::Result<()> {
    let reply = post(args, action, body)?;
    print(&args.key.vault, &reply, |data| {
        println!("{}", cell(&data[field]))
    })
}

fn create(args: &TransitCreateArgs) -> anyhow::Result<()> {
    let key = &args.key;
    let path = format!("{}/keys/{}", key.mount, key.name);
    call(&key.vault, "POST", &path, Some(&json!({"type": args.kind})))?;
    let note = if args.kind == "ed25519" {
        " (the nodes are generating it together; `welkin transit show` prints its public key \
         once committed)"
    } else {
        ""
    };
    done(
        &key.vault,
        &format!("created {} key {}{note}", args.kind, key.name),
    )
}

fn show(args: &TransitKeyArgs) -> anyhow::Result<()> {
    let path = format!("{}/keys/{}", args.mount, args.name);
    let reply = call(&args.vault, "GET", &path, None)?;
    print(&args.vault, &reply, |data| {
        let mut summary = data.clone();
        let versions = summary
            .as_object_mut()
            .and_then(|o| o.remove("keys"))
            .unwrap_or(Json::Null);
        object_table(None, &summary);
        let rows: Vec<(String, String)> = versions
            .as_object()
            .into_iter()
            .flatten()
            .map(|(version, entry)| {
                let value = match entry.get("public_key") {
                    Some(Json::String(key)) if key.is_empty() => "(being generated)".into(),
                    Some(key) => cell(key),
                    None => format!("created {}", cell(entry)),
                };
                (version.clone(), value)
            })
            .collect();
        println!();
        table(None, ("Version", "Public key"), &rows);
    })
}

fn config(args: &TransitConfigArgs) -> anyhow::Result<()> {
    let key = &args.key;
    let mut body = serde_json::Map::new();
    if let Some(v) = args.min_decryption_version {
        body.insert("min_decryption_version".into(), json!(v));
    }
    if let Some(v) = args.min_encryption_version {
        body.insert("min_encryption_version".into(), json!(v));
    }
    if let Some(v) = args.deletion_allowed {
        body.insert("deletion_allowed".into(), json!(v));
    }
    if body.is_empty() {
        bail!(
            "nothing to change: pass --min-decryption-version, --min-encryption-version or \
             --deletion-allowed"
        );
    }
    let path = format!("{}/keys/{}/config", key.mount, key.name);
    call(&key.vault, "POST", &path, Some(&Json::Object(body)))?;
    done(&key.vault, &format!("configured key {}", key.name))
}

fn verify(args: &TransitVerifyArgs) -> anyhow::Result<()> {
    let data = &args.data;
    let message = input(&data.input)?;
    let Some(signature) = &args.signature else {
        let hmac = args.hmac.clone().expect("clap requires one");
        let body = json!({"input": b64(&message), "hmac": hmac});
        let reply = post(data, "verify", body)?;
        return print(&data.key.vault, &reply, |d| {
            println!(
                "{}",
                if d["valid"] == json!(true) {
                    "valid"
                } else {
                    "invalid"
                }
            )
        });
    };
    let (version, signature) = parse_signature(signature)?;
    let api = super::api(&data.key.vault);
    let client = Client::new(&api);
    let trust = crate::cmd::trust::cluster(&client, args.trust.genesis.as_deref())?;
    let public_key = certified_public_key(&client, &trust.trusted, &data.key, version)?;
    let valid = welkin_frost::verify_signature(&public_key, &message, &signature);
    if data.key.vault.json {
        println!(
            "{}",
            json!({
                "valid": valid,
                "key_version": version,
                "public_key": b64(&public_key),
                "checked_against": trust.source,
            })
        );
    } else if valid {
        println!(
            "verified: a valid Ed25519 signature by version {version} of {}/{}, whose public \
             key the cluster certified ({})",
            data.key.mount, data.key.name, trust.source
        );
    } else {
        println!("invalid: the signature does not verify under version {version}'s public key");
    }
    if !valid {
        std::process::exit(1);
    }
    Ok(())
}

/// A `vault:vN:<base64>` signature: its version and 64 bytes.
fn parse_signature(text: &str) -> anyhow::Result<(u64, [u8; 64])> {
    let rest = text
        .trim()
        .strip_prefix("vault:v")
        .context("a signature starts with vault:vN:")?;
    let (version, body) = rest
        .split_once(':')
        .context("a signature is vault:vN:<base64>")?;
    let version: u64 = version
        .parse()
        .ok()
        .filter(|v| *v > 0)
        .with_context(|| format!("bad key version {version:?} in the signature"))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(body)
        .context("the signature is not base64")?;
    let signature: [u8; 64] = bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("the signature is {} bytes, not 64", b.len()))?;
    Ok((version, signature))
}

/// The public key of `version` of the key, from state proofs under a certified checkpoint.
fn certified_public_key(
    client: &Client,
    trusted: &welkin_client::Trusted,
    key: &TransitKeyArgs,
    version: u64,
) -> anyhow::Result<[u8; 32]> {
    let mount = client
        .verified_value(&keys::secrets_mount(&key.mount), trusted)?
        .with_context(|| format!("no mount {:?} in the certified state", key.mount))?;
    let mount = Mount::decode(&mount.value).map_err(|e| anyhow::anyhow!("{e}"))?;
    let record = client
        .verified_value(&keys::transit_key(&mount.id, &key.name), trusted)?
        .with_context(|| {
            format!(
                "no key {:?} in the certified state (a new key is certified with the next \
                 checkpoint, within seconds)",
                key.name
            )
        })?;
    let record = TransitKey::decode(&record.value).map_err(|e| anyhow::anyhow!("{e}"))?;
    let slot = usize::try_from(version)
        .ok()
        .and_then(|v| v.checked_sub(1))
        .and_then(|i| record.versions.get(i))
        .with_context(|| format!("key {} has no version {version}", key.name))?;
    if version < record.min_decryption_version {
        bail!(
            "version {version} is below the key's min_decryption_version {}: it no longer \
             verifies",
            record.min_decryption_version
        );
    }
    slot.public_key
        .with_context(|| format!("version {version} of {} has no public key yet", key.name))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_parse_and_refuse_precisely() {
        let text = format!("vault:v2:{}", b64(&[7u8; 64]));
        assert_eq!(parse_signature(&text).expect("parses"), (2, [7u8; 64]));
        for (bad, why) in [
            ("v2:AAAA", "starts with"),
            ("vault:v0:AAAA", "bad key version"),
            ("vault:v1:!!", "not base64"),
            ("vault:v1:AAAA", "not 64"),
        ] {
            let error = parse_signature(bad).expect_err(bad).to_string();
            assert!(error.contains(why), "{bad}: {error}");
        }
    }

    #[test]
    fn a_dash_is_standard_input_and_text_is_itself() {
        assert_eq!(input("hello").expect("text"), b"hello");
    }
}
