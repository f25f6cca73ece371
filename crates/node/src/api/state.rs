//! `GET /v1/state/proof`: a state value with its QMDB proof under a certified checkpoint.
//!
//! The state key is named by exactly one of:
//!
//! | query | key |
//! |---|---|
//! | `key=HEX` | a raw state key (32 bytes) |
//! | `tx=ID` | the receipt of a transaction |
//! | `prefix=P` | the key state of a KERI identifier |
//! | `owner=O&kv=HEX` | key `HEX` in the key-value namespace of `O` (a public key in hex, or an identifier) |
//!
//! The proof is taken at the latest applied height `H`; the node then waits (at most
//! [`CERTIFY_WAIT`]) for the cluster to certify `H`, whose state root must be the proof's. The
//! reply is the binary [`ValueProof`] (`application/octet-stream`), which a client checks with
//! the cluster key alone. A key with no value answers 404 `no_value`: the store cannot prove
//! absence, so that answer is this node's word.

use super::{ApiError, bad_request, not_found, parse_id, text_response};
use crate::{handle::NodeHandle, store::Runtime};
use axum::{
    extract::{Query, State},
    http::StatusCode,
    response::Response,
};
use commonware_codec::Encode as _;
use serde::Deserialize;
use std::time::Duration;
use welkin_state::keys;
use welkin_types::{Digest, PublicKey, Sender, proof::ValueProof};

/// Longest the node waits for the checkpoint of the proof's height to be certified.
pub const CERTIFY_WAIT: Duration = Duration::from_secs(5);
/// How often the node looks whether that checkpoint is certified.
const CERTIFY_POLL: Duration = Duration::from_millis(20);
/// Longest key-value key accepted in `kv=` (hex characters).
const MAX_KV_KEY_HEX: usize = 2 * 1024;

/// Query of the state proof endpoint: one way of naming the key.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProofParams {
    /// A raw state key, hex.
    pub key: Option<String>,
    /// A transaction id, hex: its receipt.
    pub tx: Option<String>,
    /// A KERI identifier: its key state.
    pub prefix: Option<String>,
    /// The owner of a key-value entry: a public key (hex) or a KERI identifier.
    pub owner: Option<String>,
    /// The key-value entry's key, hex (with `owner`).
    pub kv: Option<String>,
}

fn parse_hex(what: &str, text: &str, max: usize) -> Result<Vec<u8>, ApiError> {
    if text.len() > max {
        return Err(bad_request(
            "bad_key",
            format!("{what} is {} hex characters; at most {max}", text.len()),
        ));
    }
    hex::decode(text).map_err(|e| bad_request("bad_key", format!("{what} is not hex: {e}")))
}

fn parse_prefix(text: &str) -> Result<String, ApiError> {
    welkin_keri::Prefix::from_qb64(text)
        .map(|p| p.qb64())
        .map_err(|e| {
            bad_request(
                "bad_prefix",
                format!("{text:?} is not a KERI identifier: {e}"),
            )
        })
}

/// The owner of a key-value entry as the state keys it: a public key, or an identifier.
fn parse_owner(text: &str) -> Result<Sender, ApiError> {
    if let Ok(bytes) = hex::decode(text)
        && let Ok(key) = welkin_types::decode::<PublicKey>(&bytes)
    {
        return Ok(Sender::Key(key));
    }
    Ok(Sender::Identifier {
        prefix: parse_prefix(text)?,
        signers: Vec::new(),
    })
}

fn state_key(params: &ProofParams) -> Result<Digest, ApiError> {
    match params {
        ProofParams {
            key: Some(key),
            tx: None,
            prefix: None,
            owner: None,
            kv: None,
        } => welkin_types::hexser::decode_hex::<Digest>(key)
            .map_err(|e| bad_request("bad_key", format!("key must be 64 hex characters: {e}"))),
        ProofParams {
            key: None,
            tx: Some(tx),
            prefix: None,
            owner: None,
            kv: None,
        } => Ok(keys::receipt(&parse_id(tx)?)),
        ProofParams {
            key: None,
            tx: None,
            prefix: Some(prefix),
            owner: None,
            kv: None,
        } => Ok(keys::id_state(&parse_prefix(prefix)?)),
        ProofParams {
            key: None,
            tx: None,
            prefix: None,
            owner: Some(owner),
            kv: Some(kv),
        } => Ok(keys::kv(
            &parse_owner(owner)?,
            &parse_hex("kv", kv, MAX_KV_KEY_HEX)?,
        )),
        _ => Err(bad_request(
            "bad_query",
            "name the state key one way: key=, tx=, prefix=, or owner= with kv=",
        )),
    }
}

/// `GET /v1/state/proof`.
pub(super) async fn proof<E: Runtime>(
    State(node): State<NodeHandle<E>>,
    Query(params): Query<ProofParams>,
) -> Result<Response, ApiError> {
    let key = state_key(&params)?;
    let internal =
        |message: String| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "state_error", message);
    let proven = node.state_proof(key).await.map_err(internal)?;
    let Some(proven) = proven else {
        return Err(not_found(
            "no_value",
            format!(
                "state key {} has no value on this node (the store cannot prove absence: \
                 this answer is one node's word)",
                hex::encode(key)
            ),
        ));
    };
    let height = proven.height;
    let deadline = tokio::time::Instant::now() + CERTIFY_WAIT;
    let certified = loop {
        if node.status().certified_height >= height
            && let Some(certified) = node.checkpoint(height).await
        {
            break certified;
        }
        if tokio::time::Instant::now() >= deadline {
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "not_certified",
                format!(
                    "the checkpoint at height {height} is not certified after {} ms; retry shortly",
                    CERTIFY_WAIT.as_millis()
                ),
            ));
        }
        tokio::time::sleep(CERTIFY_POLL).await;
    };
    if certified.checkpoint.state_root != proven.root {
        return Err(internal(format!(
            "this node's state root {} at height {height} differs from the certified root {}",
            hex::encode(proven.root),
            hex::encode(certified.checkpoint.state_root)
        )));
    }
    let reply = ValueProof {
        certified,
        key,
        value: proven.value,
        proof: proven.proof,
    };
    Ok(text_response(
        "application/octet-stream",
        "no-cache",
        reply.encode().to_vec(),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;

    /// The query `pairs` as axum parses it.
    fn params(pairs: &[(&str, &str)]) -> ProofParams {
        let query: Vec<String> = pairs.iter().map(|(k, v)| format!("{k}={v}")).collect();
        let uri: axum::http::Uri = format!("/v1/state/proof?{}", query.join("&"))
            .parse()
            .expect("uri");
        Query::<ProofParams>::try_from_uri(&uri).expect("parses").0
    }

    #[test]
    fn each_form_names_the_key_the_state_machine_writes() {
        let id = welkin_types::hash_parts(&[b"tx"]);
        assert_eq!(
            state_key(&params(&[("tx", &hex::encode(id))])).expect("tx"),
            keys::receipt(&id)
        );
        assert_eq!(
            state_key(&params(&[("key", &hex::encode(id))])).expect("key"),
            id
        );
        let owner = welkin_types::PrivateKey::from_seed(1);
        let public = owner.public_key();
        assert_eq!(
            state_key(&params(&[
                ("owner", &hex::encode(public.as_ref())),
                ("kv", &hex::encode(b"greeting")),
            ]))
            .expect("kv"),
            keys::kv(&Sender::Key(public), b"greeting")
        );
    }

    #[test]
    fn ambiguous_or_malformed_queries_are_refused() {
        let id = hex::encode(welkin_types::hash_parts(&[b"tx"]));
        for query in [
            params(&[]),
            params(&[("tx", &id), ("key", &id)]),
            params(&[("kv", "00")]),
            params(&[("key", "zz")]),
            params(&[("tx", "00")]),
            params(&[("prefix", "not-a-prefix")]),
            params(&[("owner", "not-a-prefix"), ("kv", "00")]),
            params(&[("owner", &id), ("kv", &"0".repeat(MAX_KV_KEY_HEX + 2))]),
        ] {
            let error = state_key(&query).expect_err("refused");
            assert_eq!(error.status, StatusCode::BAD_REQUEST, "{query:?}");
        }
    }
}
