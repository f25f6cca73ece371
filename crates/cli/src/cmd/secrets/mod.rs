//! The secrets commands: `kv` (natively for get, put and patch), `policy`, `token` and
//! `login`, through the node's Vault-compatible API otherwise.

mod admin;
mod kv;
mod native;
mod recipients;
mod transit;

pub(crate) use admin::{login, policy, token};
pub(crate) use kv::kv;
pub(crate) use transit::transit;

use crate::cli::{DEFAULT_API, VaultArgs, vault_token_file};
use anyhow::{Context as _, bail};
use serde_json::Value as Json;
use std::time::Duration;

/// Largest response body read from the Vault API.
const MAX_RESPONSE_BYTES: u64 = 16 * 1024 * 1024;
/// Largest token file read.
const MAX_TOKEN_FILE_BYTES: u64 = 4096;

/// The node's address: --api, VAULT_ADDR, WELKIN_API, or the first dev node.
pub(crate) fn api(args: &VaultArgs) -> String {
    args.api
        .clone()
        .or_else(|| std::env::var("WELKIN_API").ok())
        .unwrap_or_else(|| DEFAULT_API.to_string())
        .trim_end_matches('/')
        .to_string()
}

/// The token: --token, VAULT_TOKEN, WELKIN_TOKEN, then ~/.vault-token.
pub(crate) fn token_of(args: &VaultArgs) -> anyhow::Result<String> {
    let from_env = |name: &str| std::env::var(name).ok().filter(|t| !t.trim().is_empty());
    if let Some(token) = args
        .token
        .clone()
        .or_else(|| from_env("VAULT_TOKEN"))
        .or_else(|| from_env("WELKIN_TOKEN"))
    {
        return Ok(token.trim().to_string());
    }
    let hint = "pass --token, set VAULT_TOKEN, or run `welkin login TOKEN` (`welkin dev` writes \
                the root token to welkin-dev/root-token)";
    let Some(file) = vault_token_file().filter(|f| f.exists()) else {
        bail!("no token: {hint}");
    };
    let size = std::fs::metadata(&file)
        .with_context(|| format!("cannot read {}", file.display()))?
        .len();
    if size > MAX_TOKEN_FILE_BYTES {
        bail!("{} is {size} bytes, too large for a token", file.display());
    }
    let text = std::fs::read_to_string(&file)
        .with_context(|| format!("cannot read {}", file.display()))?;
    let token = text.trim();
    if token.is_empty() {
        bail!("{} is empty: {hint}", file.display());
    }
    Ok(token.to_string())
}

/// A response of the Vault API: its status and JSON body (`null` when empty).
pub(crate) struct VaultReply {
    pub(crate) status: u16,
    pub(crate) body: Json,
}

/// One request to the Vault-compatible API at `api`, under `/v1/`.
pub(crate) fn request(
    api: &str,
    token: &str,
    method: &str,
    path: &str,
    body: Option<&Json>,
) -> anyhow::Result<VaultReply> {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(60)))
        .build()
        .into();
    let url = format!("{api}/v1/{path}");
    let request = ureq::http::Request::builder()
        .method(method)
        .uri(&url)
        .header("X-Vault-Token", token)
        .header("Content-Type", "application/json")
        .body(body.map(Json::to_string).unwrap_or_default())
        .with_context(|| format!("bad request URL {url}"))?;
    let mut response = agent.run(request).with_context(|| {
        format!("cannot reach {url} (is the node running? --api or VAULT_ADDR)")
    })?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(MAX_RESPONSE_BYTES)
        .read_to_string()
        .with_context(|| format!("cannot read the answer of {url}"))?;
    let body = if text.trim().is_empty() {
        Json::Null
    } else {
        serde_json::from_str(&text)
            .with_context(|| format!("{url} answered {status} with something not JSON: {text}"))?
    };
    Ok(VaultReply { status, body })
}

/// [`request`] that turns an error status into an error naming the path and Vault's errors.
pub(crate) fn call(
    args: &VaultArgs,
    method: &str,
    path: &str,
    body: Option<&Json>,
) -> anyhow::Result<Json> {
    let reply = request(&api(args), &token_of(args)?, method, path, body)?;
    if reply.status >= 400 {
        bail!("{}", refusal(method, path, reply.status, &reply.body));
    }
    Ok(reply.body)
}

/// The message for a refused request, with a hint for the usual causes.
fn refusal(method: &str, path: &str, status: u16, body: &Json) -> String {
    let errors: Vec<&str> = body["errors"]
        .as_array()
        .map(|e| e.iter().filter_map(Json::as_str).collect())
        .unwrap_or_default();
    let said = if errors.is_empty() {
        String::new()
    } else {
        format!(": {}", errors.join("; "))
    };
    let hint = match status {
        403 => " (the token is unknown, expired, or its policies do not allow this)",
        404 => " (nothing there)",
        _ => "",
    };
    format!("{method} /v1/{path} answered {status}{said}{hint}")
}

/// Prints `rows` as Vault prints a key-value table: a header and aligned columns.
pub(crate) fn table(title: Option<&str>, header: (&str, &str), rows: &[(String, String)]) {
    let width = rows
        .iter()
        .map(|(k, _)| k.len())
        .chain([header.0.len()])
        .max()
        .unwrap_or(0);
    if let Some(title) = title {
        let bar = "=".repeat(title.len().div_ceil(2).max(4) + 2);
        println!("{bar} {title} {bar}");
    }
    println!("{:width$}    {}", header.0, header.1);
    println!(
        "{:width$}    {}",
        "-".repeat(header.0.len()),
        "-".repeat(header.1.len())
    );
    for (key, value) in rows {
        println!("{key:width$}    {value}");
    }
}

/// A JSON value as a table cell: strings bare, `null` as `n/a`, anything else as JSON.
pub(crate) fn cell(value: &Json) -> String {
    match value {
        Json::String(text) => text.clone(),
        Json::Null => "n/a".into(),
        other => other.to_string(),
    }
}

/// Prints an object's fields sorted by key, as a table.
pub(crate) fn object_table(title: Option<&str>, object: &Json) {
    let rows: Vec<(String, String)> = object
        .as_object()
        .map(|o| o.iter().map(|(k, v)| (k.clone(), cell(v))).collect())
        .unwrap_or_default();
    table(title, ("Key", "Value"), &rows);
}

/// Formats block time (ms since the epoch) as Vault does: RFC 3339 in UTC.
pub(crate) fn rfc3339(ms: u64) -> String {
    let seconds = ms / 1000;
    let (days, rest) = (seconds / 86_400, seconds % 86_400);
    let (year, month, day) = super::bench::civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:09}Z",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60,
        (ms % 1000) * 1_000_000
    )
}
