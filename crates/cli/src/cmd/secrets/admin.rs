//! `welkin policy`, `welkin token` and `welkin login`, through the Vault API.

use crate::{
    cli::{LoginArgs, PolicyCommand, TokenCommand, vault_token_file},
    output,
};
use anyhow::{Context as _, bail};
use serde_json::{Map, Value as Json, json};
use std::io::Read as _;

/// Largest policy read from a file or stdin (the cluster's limit is lower).
const MAX_POLICY_INPUT_BYTES: u64 = 64 * 1024;

/// Runs a `policy` subcommand.
pub(crate) fn policy(command: PolicyCommand) -> anyhow::Result<()> {
    match command {
        PolicyCommand::Write(args) => {
            let mut text = String::new();
            if args.file == "-" {
                std::io::stdin()
                    .take(MAX_POLICY_INPUT_BYTES)
                    .read_to_string(&mut text)
                    .context("cannot read the policy from stdin")?;
            } else {
                std::fs::File::open(&args.file)
                    .and_then(|f| f.take(MAX_POLICY_INPUT_BYTES).read_to_string(&mut text))
                    .with_context(|| format!("cannot read policy file {}", args.file))?;
            }
            let path = format!("sys/policies/acl/{}", args.name);
            super::call(&args.vault, "PUT", &path, Some(&json!({ "policy": text })))?;
            println!("Success! Uploaded policy: {}", args.name);
        }
        PolicyCommand::Read(args) => {
            let path = format!("sys/policies/acl/{}", args.name);
            let body = super::call(&args.vault, "GET", &path, None)?;
            if args.vault.json {
                return output::json(&body);
            }
            println!("{}", super::cell(&body["data"]["policy"]));
        }
        PolicyCommand::List(vault) => {
            let body = super::call(&vault, "GET", "sys/policies/acl?list=true", None)?;
            if vault.json {
                return output::json(&body);
            }
            for name in body["data"]["keys"].as_array().into_iter().flatten() {
                println!("{}", super::cell(name));
            }
        }
        PolicyCommand::Delete(args) => {
            let path = format!("sys/policies/acl/{}", args.name);
            super::call(&args.vault, "DELETE", &path, None)?;
            println!("Success! Deleted policy: {}", args.name);
        }
    }
    Ok(())
}

/// Runs a `token` subcommand.
pub(crate) fn token(command: TokenCommand) -> anyhow::Result<()> {
    match command {
        TokenCommand::Create(args) => {
            let mut body = Map::new();
            body.insert("policies".into(), json!(args.policies));
            if let Some(ttl) = args.ttl {
                body.insert("ttl".into(), ttl.into());
            }
            if let Some(uses) = args.use_limit {
                body.insert("num_uses".into(), uses.into());
            }
            if args.no_default_policy {
                body.insert("no_default_policy".into(), true.into());
            }
            if let Some(name) = args.display_name {
                body.insert("display_name".into(), name.into());
            }
            let path = if args.orphan {
                "auth/token/create-orphan"
            } else {
                "auth/token/create"
            };
            let reply = super::call(&args.vault, "POST", path, Some(&Json::Object(body)))?;
            if args.vault.json {
                return output::json(&reply);
            }
            let auth = &reply["auth"];
            let rows = [
                ("token", auth["client_token"].clone()),
                ("token_accessor", auth["accessor"].clone()),
                (
                    "token_duration",
                    json!(format!("{}s", auth["lease_duration"])),
                ),
                ("token_renewable", auth["renewable"].clone()),
                ("token_policies", auth["policies"].clone()),
            ];
            let rows: Vec<(String, String)> = rows
                .iter()
                .map(|(k, v)| (k.to_string(), super::cell(v)))
                .collect();
            super::table(None, ("Key", "Value"), &rows);
        }
        TokenCommand::Lookup(args) => {
            let reply = match &args.target {
                None => super::call(&args.vault, "GET", "auth/token/lookup-self", None)?,
                Some(target) => {
                    let body = json!({ "token": target });
                    super::call(&args.vault, "POST", "auth/token/lookup", Some(&body))?
                }
            };
            if args.vault.json {
                return output::json(&reply);
            }
            super::object_table(None, &reply["data"]);
        }
        TokenCommand::Renew(args) => {
            let body = json!({ "increment": args.increment });
            let reply = super::call(&args.vault, "POST", "auth/token/renew-self", Some(&body))?;
            if args.vault.json {
                return output::json(&reply);
            }
            super::object_table(None, &reply["auth"]);
        }
        TokenCommand::Revoke(args) => {
            let vault = &args.token.vault;
            match (&args.accessor, &args.token.target) {
                (Some(accessor), _) => {
                    let body = json!({ "accessor": accessor });
                    super::call(vault, "POST", "auth/token/revoke-accessor", Some(&body))?;
                }
                (None, Some(target)) => {
                    let body = json!({ "token": target });
                    super::call(vault, "POST", "auth/token/revoke", Some(&body))?;
                }
                (None, None) => {
                    super::call(vault, "POST", "auth/token/revoke-self", None)?;
                }
            }
            println!("Success! Revoked token (if it existed)");
        }
    }
    Ok(())
}

/// `welkin login TOKEN`: checks the token, then saves it in ~/.vault-token (mode 0600).
pub(crate) fn login(args: LoginArgs) -> anyhow::Result<()> {
    let token = match (&args.identity, args.new_token.as_deref()) {
        (Some(name), _) => keri_login(&args, name)?,
        (None, Some("-")) => {
            let mut text = String::new();
            std::io::stdin()
                .take(4096)
                .read_to_string(&mut text)
                .context("cannot read the token from stdin")?;
            text.trim().to_string()
        }
        (None, Some(token)) => token.trim().to_string(),
        (None, None) => bail!("give a token, or --as NAME to log in as a KERI identity"),
    };
    if token.is_empty() {
        bail!("the token is empty");
    }
    let reply = super::request(
        &super::api(&args.vault),
        &token,
        "GET",
        "auth/token/lookup-self",
        None,
    )?;
    if reply.status != 200 {
        bail!(
            "the node at {} does not accept this token (answered {}); nothing saved",
            super::api(&args.vault),
            reply.status
        );
    }
    let Some(file) = vault_token_file() else {
        bail!("HOME is not set: no place for ~/.vault-token");
    };
    write_private(&file, &token)?;
    println!(
        "Success! You are now authenticated; the token is saved in {} (policies: {})",
        file.display(),
        super::cell(&reply.body["data"]["policies"])
    );
    Ok(())
}

/// `auth/keri/login`: a new token whose public key the identity's current keys sign for.
fn keri_login(args: &LoginArgs, name: &str) -> anyhow::Result<String> {
    use welkin_types::secrets::{SecretsOp, generate_token, token_public_key};
    let api = super::api(&args.vault);
    let signer = crate::cli::SignerArgs {
        sender: crate::cli::SenderArgs {
            key: None,
            identity: Some(name.to_string()),
        },
        keystore: crate::cli::KeystoreArgs {
            keystore: args.keystore.keystore.clone(),
            passphrase_file: args.keystore.passphrase_file.clone(),
        },
    };
    let signing = crate::cmd::signing::Signing::load(&signer)?;
    let client = welkin_client::Client::new(&api);
    let cluster_id = crate::cmd::signing::cluster_id(&client)?;
    let ttl_ms = match &args.ttl {
        Some(text) => humantime_ms(text)?,
        None => 0,
    };
    let token = generate_token(&mut commonware_utils::sys_rng());
    let tx = signing.sign(
        &cluster_id,
        welkin_node::ceremony::random_u64(),
        crate::cmd::now_ms() + 60_000,
        welkin_types::Payload::Secrets(Box::new(SecretsOp::KeriLogin {
            key: token_public_key(&token),
            ttl_ms,
        })),
    );
    let body = json!({ "tx": hex::encode(commonware_codec::Encode::encode(&tx)) });
    let reply = super::request(&api, "", "POST", "auth/keri/login", Some(&body))?;
    if reply.status != 200 {
        bail!(
            "the cluster refused the login of {name} (HTTP {}): {}; an operator must map the \
             identifier to policies with auth/keri/role/PREFIX",
            reply.status,
            super::cell(&reply.body["errors"])
        );
    }
    Ok(token)
}

/// A duration such as `90s`, `30m` or `1h`, in ms.
fn humantime_ms(text: &str) -> anyhow::Result<u64> {
    let (number, unit) = text.split_at(
        text.find(|c: char| !c.is_ascii_digit())
            .unwrap_or(text.len()),
    );
    let n: u64 = number
        .parse()
        .with_context(|| format!("invalid duration {text:?}: use e.g. 90s, 30m or 1h"))?;
    let unit = match unit {
        "" | "s" => 1_000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => bail!("invalid duration {text:?}: use e.g. 90s, 30m or 1h"),
    };
    Ok(n.saturating_mul(unit))
}

/// Replaces `file` with `contents`, readable by its owner only: written to a temporary file
/// created with mode 0600 and renamed over it.
fn write_private(file: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    let temporary = file.with_extension(format!("tmp{}", std::process::id()));
    let _ = std::fs::remove_file(&temporary);
    super::super::write_secret(&temporary, contents)?;
    std::fs::rename(&temporary, file).with_context(|| format!("cannot write {}", file.display()))
}
