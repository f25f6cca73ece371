//! `auth/token/`: create, look up, renew and revoke tokens.
//!
//! A token is made here (or by the client) and only its public key reaches the log; the
//! token itself goes back to the client once.

use super::{
    VaultError, VaultRequest, json_response, kv::check, live_token, no_content, ok, parse_duration,
    rfc3339, submit,
};
use crate::{handle::NodeHandle, store::Runtime};
use axum::{http::StatusCode, response::Response};
use serde_json::{Value as Json, json};
use welkin_policy::Capabilities;
use welkin_state::{keys, secrets::records::Token};
use welkin_types::{
    PublicKey,
    secrets::{
        MAX_TOKEN_META, MAX_TOKEN_POLICIES, MAX_TOKEN_STRING_BYTES, SecretsOp, TokenRef, TokenSpec,
        generate_token, token_accessor, token_public_key,
    },
};

pub(super) async fn handle<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
) -> Result<Response, VaultError> {
    let Some(rest) = request.path.strip_prefix("auth/token/") else {
        return Err(VaultError::not_found());
    };
    match (rest, request.method.as_str()) {
        ("create" | "create-orphan", "POST" | "PUT") => {
            create(node, request, rest == "create-orphan").await
        }
        ("lookup-self", "GET" | "POST") => {
            let token = request.token()?;
            let record = live_token(node, token).await?;
            check(node, request, "auth/token/lookup-self", Capabilities::READ).await?;
            lookup_answer(node, Some(token), &token_public_key(token), &record)
        }
        ("lookup", "POST" | "PUT") => {
            let target = request
                .str_field("token")
                .ok_or_else(|| VaultError::bad("missing token to look up"))?;
            check(node, request, "auth/token/lookup", Capabilities::UPDATE).await?;
            let key = token_public_key(target);
            let record = stored(node, &key).await?;
            lookup_answer(node, Some(target), &key, &record)
        }
        ("lookup-accessor", "POST" | "PUT") => {
            let accessor = request
                .str_field("accessor")
                .ok_or_else(|| VaultError::bad("missing accessor"))?;
            check(
                node,
                request,
                "auth/token/lookup-accessor",
                Capabilities::UPDATE,
            )
            .await?;
            let key = by_accessor(node, accessor).await?;
            let record = stored(node, &key).await?;
            lookup_answer(node, None, &key, &record)
        }
        ("renew-self", "POST" | "PUT") => {
            let increment = parse_duration(request.body.get("increment").unwrap_or(&Json::Null))?;
            let token = request.token()?.to_string();
            submit(
                node,
                &token,
                SecretsOp::TokenRenewSelf {
                    increment_ms: increment,
                },
            )
            .await?;
            let key = token_public_key(&token);
            let record = stored(node, &key).await?;
            auth_answer(node, &token, &key, &record)
        }
        ("revoke-self", "POST" | "PUT") => {
            submit(node, request.token()?, SecretsOp::TokenRevokeSelf).await?;
            no_content()
        }
        ("revoke", "POST" | "PUT") => {
            let target = request
                .str_field("token")
                .ok_or_else(|| VaultError::bad("missing token to revoke"))?;
            let op = SecretsOp::TokenRevoke(TokenRef::Key(token_public_key(target)));
            submit(node, request.token()?, op).await?;
            no_content()
        }
        ("revoke-accessor", "POST" | "PUT") => {
            let accessor = request
                .str_field("accessor")
                .ok_or_else(|| VaultError::bad("missing accessor"))?;
            if accessor.len() > welkin_types::secrets::MAX_ACCESSOR_BYTES {
                return Err(VaultError::bad("invalid accessor"));
            }
            let op = SecretsOp::TokenRevoke(TokenRef::Accessor(accessor.to_string()));
            submit(node, request.token()?, op).await?;
            no_content()
        }
        _ => Err(VaultError::not_found()),
    }
}

async fn stored<E: Runtime>(node: &NodeHandle<E>, key: &PublicKey) -> Result<Token, VaultError> {
    let bytes = node
        .value(keys::token(key))
        .await
        .ok_or_else(|| VaultError::bad("bad token"))?;
    Token::decode(&bytes).map_err(|e| VaultError::internal(e.to_string()))
}

async fn by_accessor<E: Runtime>(
    node: &NodeHandle<E>,
    accessor: &str,
) -> Result<PublicKey, VaultError> {
    let bytes = node
        .value(keys::token_accessor(accessor))
        .await
        .ok_or_else(|| VaultError::bad("invalid accessor"))?;
    welkin_types::decode::<PublicKey>(&bytes).map_err(|e| VaultError::internal(e.to_string()))
}

pub(super) fn strings(value: Option<&Json>, what: &str) -> Result<Vec<String>, VaultError> {
    match value {
        None | Some(Json::Null) => Ok(Vec::new()),
        Some(Json::Array(items)) => items
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| VaultError::bad(format!("{what} must be strings")))
            })
            .collect(),
        Some(Json::String(text)) => Ok(text
            .split(',')
            .map(str::trim)
            .filter(|s| !s.is_empty())
            .map(str::to_string)
            .collect()),
        Some(_) => Err(VaultError::bad(format!("{what} must be a list of strings"))),
    }
}

async fn create<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
    orphan: bool,
) -> Result<Response, VaultError> {
    let parent_token = request.token()?;
    let parent = live_token(node, parent_token).await?;
    if request.body.get("id").is_some_and(|v| !v.is_null()) {
        return Err(VaultError::bad(
            "custom token ids are not supported: tokens are made at random, and only their \
             public keys are stored",
        ));
    }
    let mut policies = strings(request.body.get("policies"), "policies")?;
    if policies.is_empty() {
        policies = parent.policies.clone();
    }
    let no_default = request
        .body
        .get("no_default_policy")
        .and_then(Json::as_bool)
        .unwrap_or(false);
    if !no_default && !policies.iter().any(|p| p == "default" || p == "root") {
        policies.push("default".into());
    }
    for policy in &mut policies {
        *policy = policy.trim().to_ascii_lowercase();
    }
    policies.sort();
    policies.dedup();
    if policies.len() > MAX_TOKEN_POLICIES {
        return Err(VaultError::bad(format!(
            "{} policies; a token carries at most {MAX_TOKEN_POLICIES}",
            policies.len()
        )));
    }
    let mut meta: Vec<(String, String)> = match request.body.get("meta") {
        None | Some(Json::Null) => Vec::new(),
        Some(Json::Object(map)) => map
            .iter()
            .map(|(k, v)| {
                v.as_str()
                    .map(|v| (k.clone(), v.to_string()))
                    .ok_or_else(|| VaultError::bad("meta values must be strings"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(VaultError::bad("meta must be an object of strings")),
    };
    meta.sort();
    if meta.len() > MAX_TOKEN_META
        || meta
            .iter()
            .any(|(k, v)| k.len() > MAX_TOKEN_STRING_BYTES || v.len() > MAX_TOKEN_STRING_BYTES)
    {
        return Err(VaultError::bad(format!(
            "meta holds at most {MAX_TOKEN_META} pairs of at most {MAX_TOKEN_STRING_BYTES} bytes"
        )));
    }
    let display_name = request.str_field("display_name").unwrap_or_default();
    if display_name.len() > MAX_TOKEN_STRING_BYTES - 8 {
        return Err(VaultError::bad("display_name is too long"));
    }
    let ttl_ms = parse_duration(request.body.get("ttl").unwrap_or(&Json::Null))?;
    let num_uses = match request.body.get("num_uses") {
        None | Some(Json::Null) => 0,
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| VaultError::bad("num_uses must be a non-negative number"))?,
    };
    let token = generate_token(&mut commonware_utils::sys_rng());
    let key = token_public_key(&token);
    let spec = TokenSpec {
        key: key.clone(),
        policies,
        ttl_ms,
        renewable: request
            .body
            .get("renewable")
            .and_then(Json::as_bool)
            .unwrap_or(true),
        num_uses,
        display_name: display_name.to_string(),
        no_parent: orphan
            || request
                .body
                .get("no_parent")
                .and_then(Json::as_bool)
                .unwrap_or(false),
        meta,
    };
    submit(node, parent_token, SecretsOp::TokenCreate(spec)).await?;
    let record = stored(node, &key).await?;
    auth_answer(node, &token, &key, &record)
}

fn ttl_secs<E: Runtime>(node: &NodeHandle<E>, record: &Token) -> u64 {
    if record.expire_ms == 0 {
        return 0;
    }
    record
        .expire_ms
        .saturating_sub(crate::application::now_ms(node.clock()))
        / 1_000
}

fn meta_json(record: &Token) -> Json {
    if record.meta.is_empty() {
        return Json::Null;
    }
    Json::Object(
        record
            .meta
            .iter()
            .map(|(k, v)| (k.clone(), Json::String(v.clone())))
            .collect(),
    )
}

/// Vault's `auth` block, for create and renew.
fn auth_answer<E: Runtime>(
    node: &NodeHandle<E>,
    token: &str,
    key: &PublicKey,
    record: &Token,
) -> Result<Response, VaultError> {
    let body = json!({
        "request_id": "",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": null,
        "auth": {
            "client_token": token,
            "accessor": token_accessor(key),
            "policies": record.policies,
            "token_policies": record.policies,
            "metadata": meta_json(record),
            "lease_duration": ttl_secs(node, record),
            "renewable": record.renewable && record.expire_ms != 0,
            "entity_id": "",
            "token_type": "service",
            "orphan": record.parent.is_none(),
            "mfa_requirement": null,
            "num_uses": record.uses_left,
        },
    });
    Ok(json_response(StatusCode::OK, &body))
}

/// Vault's lookup answer.
fn lookup_answer<E: Runtime>(
    node: &NodeHandle<E>,
    token: Option<&str>,
    key: &PublicKey,
    record: &Token,
) -> Result<Response, VaultError> {
    ok(json!({
        "accessor": token_accessor(key),
        "creation_time": record.issued_ms / 1_000,
        "creation_ttl": record.ttl_ms / 1_000,
        "display_name": record.display_name,
        "entity_id": "",
        "expire_time": if record.expire_ms == 0 { Json::Null } else { Json::String(rfc3339(record.expire_ms)) },
        "explicit_max_ttl": 0,
        "id": token.unwrap_or_default(),
        "issue_time": rfc3339(record.issued_ms),
        "meta": meta_json(record),
        "num_uses": record.uses_left,
        "orphan": record.parent.is_none(),
        "path": if record.is_root() && record.parent.is_none() { "auth/token/root" } else { "auth/token/create" },
        "policies": record.policies,
        "renewable": record.renewable && record.expire_ms != 0,
        "ttl": ttl_secs(node, record),
        "type": "service",
    }))
}
