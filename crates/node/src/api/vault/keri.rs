//! `auth/keri/`: tokens for KERI identifiers.
//!
//! `POST auth/keri/login {"tx": HEX}`: the client makes a token, puts its public key in a
//! `KeriLogin` transaction, and signs that with its identifier's current keys (the nonce and
//! expiry make the challenge fresh). The node never sees the token; it answers with Vault's
//! `auth` block without `client_token`. The token works while the identifier's keys are the
//! ones that signed: a rotation voids it.
//!
//! `auth/keri/role/PREFIX` (`POST {"policies": [...], "ttl": "1h"}`, `GET`, `DELETE`): which
//! policies an identifier's logins get. An identifier without a role cannot log in, node
//! identifiers included.

use super::{
    VaultError, VaultRequest, json_response, kv::check, no_content, ok, parse_duration,
    token::strings,
};
use crate::{handle::NodeHandle, store::Runtime};
use axum::{http::StatusCode, response::Response};
use serde_json::{Value as Json, json};
use welkin_policy::Capabilities;
use welkin_state::{keys, secrets::records::Role};
use welkin_types::{
    Payload, SignedTransaction,
    secrets::{SecretsOp, token_accessor},
};

pub(super) async fn handle<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
) -> Result<Response, VaultError> {
    let rest = request.path.strip_prefix("auth/keri/").unwrap_or_default();
    if rest == "login" {
        return match request.method.as_str() {
            "POST" | "PUT" => login(node, request).await,
            _ => Err(VaultError::unsupported()),
        };
    }
    let Some(prefix) = rest.strip_prefix("role/") else {
        return Err(VaultError::not_found());
    };
    if prefix.is_empty() || prefix.len() > welkin_types::MAX_PREFIX_BYTES {
        return Err(VaultError::bad("invalid identifier prefix"));
    }
    match request.method.as_str() {
        "GET" => {
            check(node, request, &request.path, Capabilities::READ).await?;
            let role = node
                .value(keys::keri_role(prefix))
                .await
                .ok_or_else(VaultError::not_found)?;
            let role = Role::decode(&role).map_err(|e| VaultError::internal(e.to_string()))?;
            ok(json!({ "policies": role.policies, "ttl": role.ttl_ms / 1_000 }))
        }
        "POST" | "PUT" | "DELETE" => {
            let (mut policies, ttl_ms) = if request.method == "DELETE" {
                (Vec::new(), 0)
            } else {
                let policies = strings(request.body.get("policies"), "policies")?;
                if policies.is_empty() {
                    return Err(VaultError::bad("a role needs at least one policy"));
                }
                let ttl = parse_duration(request.body.get("ttl").unwrap_or(&Json::Null))?;
                (policies, ttl)
            };
            policies.sort();
            policies.dedup();
            let op = SecretsOp::KeriRole {
                prefix: prefix.to_string(),
                policies,
                ttl_ms,
            };
            super::submit(node, request.token()?, op).await?;
            no_content()
        }
        _ => Err(VaultError::unsupported()),
    }
}

async fn login<E: Runtime>(
    node: &NodeHandle<E>,
    request: &VaultRequest,
) -> Result<Response, VaultError> {
    let text = request.str_field("tx").ok_or_else(|| {
        VaultError::bad("missing tx: a KeriLogin transaction signed by the identifier, hex")
    })?;
    let bytes =
        hex::decode(text.trim()).map_err(|e| VaultError::bad(format!("tx is not hex: {e}")))?;
    let tx = SignedTransaction::from_bytes(&bytes).map_err(|e| VaultError::bad(e.to_string()))?;
    let (prefix, key) = match (&tx.tx.sender, &tx.tx.payload) {
        (welkin_types::Sender::Identifier { prefix, .. }, Payload::Secrets(op)) => match &**op {
            SecretsOp::KeriLogin { key, .. } => (prefix.clone(), key.clone()),
            _ => return Err(VaultError::bad("tx is not a KeriLogin")),
        },
        _ => {
            return Err(VaultError::bad(
                "tx must be a KeriLogin sent by an identifier",
            ));
        }
    };
    super::submit_signed(node, tx).await?;
    let record = node
        .value(keys::token(&key))
        .await
        .ok_or_else(VaultError::denied)?;
    let record = welkin_state::secrets::records::Token::decode(&record)
        .map_err(|e| VaultError::internal(e.to_string()))?;
    let now = crate::application::now_ms(node.clock());
    let body = json!({
        "request_id": "",
        "lease_id": "",
        "renewable": false,
        "lease_duration": 0,
        "data": null,
        "wrap_info": null,
        "warnings": ["client_token is empty: the client made the token and holds it; the cluster stores only its public key"],
        "auth": {
            "client_token": "",
            "accessor": token_accessor(&key),
            "policies": record.policies,
            "token_policies": record.policies,
            "metadata": { "identifier": prefix },
            "lease_duration": record.expire_ms.saturating_sub(now) / 1_000,
            "renewable": false,
            "entity_id": "",
            "token_type": "service",
            "orphan": true,
            "num_uses": 0,
        },
    });
    Ok(json_response(StatusCode::OK, &body))
}
