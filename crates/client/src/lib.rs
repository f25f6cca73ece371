//! The Welkin Rust SDK: build, sign and submit transactions and verify what nodes return.
//!
//! ```no_run
//! use welkin_client::Client;
//! let client = Client::new("http://127.0.0.1:8700");
//! let status = client.status()?;
//! println!("height {} on cluster {}", status.height, status.cluster_id);
//! # Ok::<(), welkin_client::ClientError>(())
//! ```
//!
//! Replies that carry state are checked before they are returned where the SDK can, against
//! the cluster the caller trusts ([`Trusted`], from the genesis file): certified checkpoints
//! ([`Client::verified_checkpoint`]), state values with their proofs under a certified state
//! root ([`Client::verified_receipt`], [`Client::verified_key_state`], [`Client::verified_kv`])
//! and finalized blocks ([`verify_block`]).

#![deny(missing_docs)]

pub mod objects;
mod verified;

pub use verified::{
    BlockError, BlockProof, KvOwner, Trusted, Verified, key_from_proof, verify_block,
};

use serde::de::DeserializeOwned;
use std::time::Duration;
use welkin_types::{
    CertifiedCheckpoint, ClusterKey, Digest, LogEntry, SignedTransaction,
    api::{
        BatchResult, BlockInfo, ClusterStatus, ErrorBody, SubmitBatchRequest, SubmitRequest,
        TxStatus,
    },
};

/// What went wrong talking to a node.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// The node answered with an API error.
    #[error("{code}: {message} (HTTP {status})")]
    Api {
        /// HTTP status.
        status: u16,
        /// Stable error code.
        code: String,
        /// Human message.
        message: String,
    },
    /// The node could not be reached.
    #[error(
        "cannot reach {url}: {reason}; is the node running? (`welkin dev` starts a local cluster)"
    )]
    Transport {
        /// The URL.
        url: String,
        /// Why.
        reason: String,
    },
    /// The reply did not parse or did not verify.
    #[error("bad reply from node: {0}")]
    BadReply(String),
    /// The reply parsed, but its proof does not check out against the trusted cluster: the
    /// node (or something between it and the client) sent a value the cluster did not certify.
    #[error("the node's reply does not verify: {0}")]
    Unverified(#[from] welkin_types::proof::ProofError),
}

/// Largest binary reply read (a state proof is a few KiB at most).
pub const MAX_BINARY_REPLY: u64 = 1024 * 1024;

/// The error a failed response stands for: the API's error body, or the raw text.
fn api_error(status: u16, text: &str) -> ClientError {
    match serde_json::from_str::<ErrorBody>(text) {
        Ok(body) => ClientError::Api {
            status,
            code: body.error.code,
            message: body.error.message,
        },
        Err(_) => ClientError::Api {
            status,
            code: "http".into(),
            message: text.to_string(),
        },
    }
}

/// Reads a JSON reply body.
fn parse_reply<T: DeserializeOwned>(text: &str) -> Result<T, ClientError> {
    serde_json::from_str(text).map_err(|e| ClientError::BadReply(format!("{e}: {text}")))
}

/// Which checkpoint note to fetch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoteAt {
    /// The latest certified checkpoint.
    Latest,
    /// The first checkpoint whose log has this many entries.
    Size(u64),
    /// The checkpoint at this height.
    Height(u64),
}

/// A client of one node's HTTP API.
#[derive(Clone)]
pub struct Client {
    base: String,
    agent: ureq::Agent,
}

impl Client {
    /// A client for the node at `base` (e.g. `http://127.0.0.1:8700`).
    pub fn new(base: &str) -> Self {
        let config = ureq::Agent::config_builder()
            .timeout_global(Some(Duration::from_secs(70)))
            .http_status_as_error(false)
            .build();
        Self {
            base: base.trim_end_matches('/').to_string(),
            agent: config.into(),
        }
    }

    /// The node's base URL.
    pub fn base(&self) -> &str {
        &self.base
    }

    fn decode<T: DeserializeOwned>(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<T, ClientError> {
        parse_reply(&self.text(url, response)?)
    }

    /// The body of a successful response as text; an API error for a failed one.
    fn text(
        &self,
        url: &str,
        response: Result<ureq::http::Response<ureq::Body>, ureq::Error>,
    ) -> Result<String, ClientError> {
        let mut response = response.map_err(|e| ClientError::Transport {
            url: url.to_string(),
            reason: e.to_string(),
        })?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(64 * 1024 * 1024)
            .read_to_string()
            .map_err(|e| ClientError::Transport {
                url: url.to_string(),
                reason: e.to_string(),
            })?;
        if status >= 400 {
            return Err(api_error(status, &text));
        }
        Ok(text)
    }

    fn get<T: DeserializeOwned>(&self, path: &str) -> Result<T, ClientError> {
        parse_reply(&self.get_text(path)?)
    }

    /// The body of a successful GET as text (notes, CESR streams).
    fn get_text(&self, path: &str) -> Result<String, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.get(&url).call();
        self.text(&url, response)
    }

    /// The body of a successful GET as bytes (binary replies, at most
    /// [`MAX_BINARY_REPLY`] bytes); an API error for a failed one.
    fn get_bytes(&self, path: &str) -> Result<Vec<u8>, ClientError> {
        let url = format!("{}{path}", self.base);
        let transport = |reason: String| ClientError::Transport {
            url: url.clone(),
            reason,
        };
        let mut response = self
            .agent
            .get(&url)
            .call()
            .map_err(|e| transport(e.to_string()))?;
        let status = response.status().as_u16();
        let bytes = response
            .body_mut()
            .with_config()
            .limit(MAX_BINARY_REPLY)
            .read_to_vec()
            .map_err(|e| transport(e.to_string()))?;
        if status >= 400 {
            return Err(api_error(status, &String::from_utf8_lossy(&bytes)));
        }
        Ok(bytes)
    }

    fn post<B: serde::Serialize, T: DeserializeOwned>(
        &self,
        path: &str,
        body: &B,
    ) -> Result<T, ClientError> {
        let url = format!("{}{path}", self.base);
        let response = self.agent.post(&url).send_json(body);
        self.decode(&url, response)
    }

    /// A time certificate over `nonce` (unverified: check its `certificate` with
    /// `welkin_time::CertifiedTime::verify_for` and the trusted cluster key).
    pub fn time(&self, nonce: &[u8; 32]) -> Result<welkin_types::api::TimeResponse, ClientError> {
        self.get(&format!("/v1/time?nonce={}", hex::encode(nonce)))
    }

    /// Every node's clock as the node sees it.
    pub fn time_status(&self) -> Result<welkin_types::api::TimeStatusResponse, ClientError> {
        self.get("/v1/time/status")
    }

    /// A certified checkpoint as a C2SP signed note (unverified text): the latest, or the
    /// first whose log has `size` entries, or the one at `height`. Check it with
    /// [`verify_checkpoint_note`].
    pub fn checkpoint_note(&self, at: NoteAt) -> Result<String, ClientError> {
        let query = match at {
            NoteAt::Latest => String::new(),
            NoteAt::Size(size) => format!("?size={size}"),
            NoteAt::Height(height) => format!("?height={height}"),
        };
        self.get_text(&format!("/v1/log/checkpoint{query}"))
    }

    /// The key state of a KERI identifier (qb64 prefix).
    pub fn key_state(&self, prefix: &str) -> Result<welkin_keri::KeyState, ClientError> {
        self.get(&format!("/v1/id/{prefix}"))
    }

    /// A page of an identifier's key event log, from sequence number `from`.
    pub fn kel(&self, prefix: &str, from: u64) -> Result<welkin_types::api::Kel, ClientError> {
        self.get(&format!("/v1/id/{prefix}/kel?from={from}"))
    }

    /// An identifier's whole key event log as a CESR stream.
    pub fn kel_cesr(&self, prefix: &str) -> Result<String, ClientError> {
        self.get_text(&format!("/v1/id/{prefix}/kel.cesr"))
    }

    /// The cluster's nodes as KERI witnesses.
    pub fn witnesses(&self) -> Result<welkin_types::api::Witnesses, ClientError> {
        self.get("/v1/id/witnesses")
    }

    /// This node's witness receipts of every accepted event of an identifier (CESR).
    pub fn receipts_cesr(&self, prefix: &str) -> Result<String, ClientError> {
        self.get_text(&format!("/v1/id/{prefix}/receipts"))
    }

    /// Messages waiting in escrow for an identifier's next event (CESR).
    pub fn pending_cesr(&self, prefix: &str) -> Result<String, ClientError> {
        self.get_text(&format!("/v1/id/{prefix}/pending"))
    }

    /// The duplicity evidence recorded against an identifier.
    pub fn duplicity(
        &self,
        prefix: &str,
    ) -> Result<welkin_types::api::DuplicityEvidence, ClientError> {
        self.get(&format!("/v1/id/{prefix}/duplicity"))
    }

    /// The interaction events of an identifier that recovery rotations superseded.
    pub fn superseded(&self, prefix: &str) -> Result<welkin_types::api::Superseded, ClientError> {
        self.get(&format!("/v1/id/{prefix}/superseded"))
    }

    /// Cluster status as this node sees it.
    pub fn status(&self) -> Result<ClusterStatus, ClientError> {
        self.get("/v1/status")
    }

    /// The genesis the node runs, unchecked: compare its [`Genesis::cluster_id`] with the
    /// cluster id you trust before relying on it.
    pub fn genesis(&self) -> Result<welkin_types::Genesis, ClientError> {
        let bytes = self.get_bytes("/v1/genesis")?;
        let text =
            String::from_utf8(bytes).map_err(|e| ClientError::BadReply(format!("genesis: {e}")))?;
        welkin_types::Genesis::from_json(&text)
            .map_err(|e| ClientError::BadReply(format!("genesis: {e}")))
    }

    /// Whether the node answers.
    pub fn health(&self) -> Result<serde_json::Value, ClientError> {
        self.get("/v1/health")
    }

    /// Submits one transaction; with `wait`, returns once it is committed (or times out).
    pub fn submit(
        &self,
        tx: &SignedTransaction,
        wait: Option<Duration>,
    ) -> Result<TxStatus, ClientError> {
        use commonware_codec::Encode as _;
        let body = SubmitRequest {
            tx: hex::encode(tx.encode()),
        };
        self.post(&format!("/v1/tx{}", wait_query(wait)), &body)
    }

    /// Submits a batch; with `wait`, each entry reports its committed status.
    pub fn submit_batch(
        &self,
        txs: &[SignedTransaction],
        wait: Option<Duration>,
    ) -> Result<BatchResult, ClientError> {
        use commonware_codec::Encode as _;
        let body = SubmitBatchRequest {
            txs: txs.iter().map(|tx| hex::encode(tx.encode())).collect(),
        };
        self.post(&format!("/v1/txs{}", wait_query(wait)), &body)
    }

    /// Submits pre-encoded (hex) transactions; used by load generators.
    pub fn submit_encoded(
        &self,
        txs: Vec<String>,
        wait: Option<Duration>,
    ) -> Result<BatchResult, ClientError> {
        self.post(
            &format!("/v1/txs{}", wait_query(wait)),
            &SubmitBatchRequest { txs },
        )
    }

    /// Status of a transaction by id.
    pub fn tx_status(&self, id: &Digest) -> Result<TxStatus, ClientError> {
        self.get(&format!("/v1/tx/{}", hex::encode(id)))
    }

    /// What the node holds for committed secrets read `id` (`GET /v1/release/{id}`): the
    /// grant and every member's envelope, as JSON. Unverified: only the reader can open the
    /// envelopes, and it checks every partial itself.
    pub fn release(&self, id: &Digest) -> Result<serde_json::Value, ClientError> {
        self.get(&format!("/v1/release/{}", hex::encode(id)))
    }

    /// A finalized block by height.
    pub fn block(&self, height: u64) -> Result<BlockInfo, ClientError> {
        self.get(&format!("/v1/block/{height}"))
    }

    /// The certified checkpoint at `height` (or the latest with `None`), verified against the
    /// cluster id and key the caller trusts.
    pub fn verified_checkpoint(
        &self,
        height: Option<u64>,
        cluster_id: &Digest,
        cluster_key: &ClusterKey,
    ) -> Result<CertifiedCheckpoint, ClientError> {
        let path = match height {
            Some(h) => format!("/v1/checkpoint/{h}"),
            None => "/v1/checkpoint/latest".into(),
        };
        let reply: serde_json::Value = self.get(&path)?;
        let encoded = reply["encoded"]
            .as_str()
            .ok_or_else(|| ClientError::BadReply("checkpoint without encoding".into()))?;
        verify_checkpoint_hex(encoded, cluster_id, cluster_key)
    }
}

fn wait_query(wait: Option<Duration>) -> String {
    match wait {
        Some(timeout) => format!("?wait=true&timeout_ms={}", timeout.as_millis()),
        None => String::new(),
    }
}

/// Decodes and verifies a hex certified checkpoint against a cluster id and key.
pub fn verify_checkpoint_hex(
    encoded: &str,
    cluster_id: &Digest,
    cluster_key: &ClusterKey,
) -> Result<CertifiedCheckpoint, ClientError> {
    let certified: CertifiedCheckpoint = welkin_types::hexser::decode_hex(encoded)
        .map_err(|e| ClientError::BadReply(format!("checkpoint: {e}")))?;
    if !certified.verify(cluster_id, cluster_key) {
        return Err(ClientError::BadReply(format!(
            "checkpoint at height {} does not verify under the cluster key",
            certified.checkpoint.height
        )));
    }
    Ok(certified)
}

/// Why a log receipt does not check out, stage by stage.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReceiptError {
    /// The receipt is not a `welkin-log-receipt/v1`.
    #[error("not a welkin log receipt (kind {0:?})")]
    Kind(String),
    /// The receipt names another cluster than the one trusted.
    #[error("receipt is for cluster {found}, not the trusted cluster {trusted}")]
    Cluster {
        /// The receipt's cluster id.
        found: String,
        /// The trusted cluster id.
        trusted: String,
    },
    /// A field does not decode.
    #[error("{field} is malformed: {reason}")]
    Malformed {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The checkpoint's signature does not verify under the cluster key.
    #[error("checkpoint at height {0} is not signed by the cluster key")]
    Signature(u64),
    /// The entry is not the transaction the receipt names.
    #[error("entry is transaction {found}, but the receipt names {named}")]
    TxMismatch {
        /// The entry's transaction id.
        found: String,
        /// The id the receipt names.
        named: String,
    },
    /// The inclusion proof does not lead to the checkpoint's log root.
    #[error("entry {index} is not in the certified log of {size} entries: {reason}")]
    NotIncluded {
        /// Leaf index.
        index: u64,
        /// Tree size.
        size: u64,
        /// What failed.
        reason: String,
    },
    /// The entry is in the certified log, but says the cluster did not apply the
    /// transaction (refused, duplicitous, replayed, waiting in escrow, ...).
    #[error(
        "entry {index} is in the certified log, but the cluster did not apply its transaction: \
         {outcome}{}",
        if detail.is_empty() { String::new() } else { format!(" ({detail})") }
    )]
    NotApplied {
        /// Leaf index.
        index: u64,
        /// The outcome the entry records (`rejected`, `duplicity`, ...).
        outcome: &'static str,
        /// The reason the entry gives.
        detail: String,
    },
}

/// Decodes proof hashes sent as hex strings.
pub fn proof_hashes(proof: &[String]) -> Result<Vec<[u8; 32]>, String> {
    proof
        .iter()
        .map(|h| {
            hex::decode(h)
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .ok_or_else(|| format!("{h:?} is not a 32-byte hex hash"))
        })
        .collect()
}

/// [`verify_log_receipt`], and the entry must say the transaction was applied: what a
/// verifier of "this happened" needs ([`ReceiptError::NotApplied`] names the outcome and the
/// reason otherwise).
pub fn verify_applied_log_receipt(
    receipt: &welkin_types::api::LogReceipt,
    cluster_id: &Digest,
    cluster_key: &ClusterKey,
) -> Result<(CertifiedCheckpoint, LogEntry), ReceiptError> {
    let (certified, entry) = verify_log_receipt(receipt, cluster_id, cluster_key)?;
    if !entry.outcome.is_applied() {
        return Err(ReceiptError::NotApplied {
            index: receipt.log_index,
            outcome: entry.outcome.name(),
            detail: entry.detail,
        });
    }
    Ok((certified, entry))
}

/// Checks a log receipt offline: the checkpoint is signed by `cluster_key` for `cluster_id`,
/// the entry is a log entry of the named transaction, and the inclusion proof leads from the
/// entry to the checkpoint's log root. Returns the verified checkpoint and the entry, whose
/// outcome the caller must read (an entry is logged whatever became of its transaction; see
/// [`verify_applied_log_receipt`]).
pub fn verify_log_receipt(
    receipt: &welkin_types::api::LogReceipt,
    cluster_id: &Digest,
    cluster_key: &ClusterKey,
) -> Result<(CertifiedCheckpoint, LogEntry), ReceiptError> {
    let malformed = |field: &'static str, reason: String| ReceiptError::Malformed { field, reason };
    if receipt.kind != welkin_types::api::LOG_RECEIPT_KIND {
        return Err(ReceiptError::Kind(receipt.kind.clone()));
    }
    if receipt.cluster_id != hex::encode(cluster_id) {
        return Err(ReceiptError::Cluster {
            found: receipt.cluster_id.clone(),
            trusted: hex::encode(cluster_id),
        });
    }
    let certified: CertifiedCheckpoint = welkin_types::hexser::decode_hex(&receipt.checkpoint)
        .map_err(|e| malformed("checkpoint", e))?;
    if !certified.verify(cluster_id, cluster_key) {
        return Err(ReceiptError::Signature(certified.checkpoint.height));
    }
    let entry = hex::decode(&receipt.entry).map_err(|e| malformed("entry", e.to_string()))?;
    let logged = LogEntry::from_bytes(&entry).map_err(|e| malformed("entry", e.to_string()))?;
    if hex::encode(logged.tx.id()) != receipt.tx_id {
        return Err(ReceiptError::TxMismatch {
            found: hex::encode(logged.tx.id()),
            named: receipt.tx_id.clone(),
        });
    }
    let proof = proof_hashes(&receipt.proof).map_err(|e| malformed("proof", e))?;
    let size = certified.checkpoint.log_size;
    let proof: Vec<Digest> = proof.into_iter().map(Digest::from).collect();
    certified
        .checkpoint
        .verify_inclusion(&entry, receipt.log_index, &proof)
        .map_err(|e| ReceiptError::NotIncluded {
            index: receipt.log_index,
            size,
            reason: e.to_string(),
        })?;
    Ok((certified, logged))
}

impl Client {
    /// The log receipt of a committed transaction (checked by the caller with
    /// [`verify_log_receipt`]).
    pub fn log_receipt(&self, id: &Digest) -> Result<welkin_types::api::LogReceipt, ClientError> {
        self.get(&format!("/v1/log/receipt/{}", hex::encode(id)))
    }

    /// The log size of the node's latest certified checkpoint, as the node reports it (not
    /// verified: use [`Client::verified_checkpoint`] when it matters).
    pub fn latest_log_size(&self) -> Result<u64, ClientError> {
        let reply: serde_json::Value = self.get("/v1/checkpoint/latest")?;
        reply["log_size"]
            .as_u64()
            .ok_or_else(|| ClientError::BadReply("checkpoint without log_size".into()))
    }

    /// Log entries `start..end` (at most 256).
    pub fn log_entries(
        &self,
        start: u64,
        end: u64,
    ) -> Result<welkin_types::api::LogEntries, ClientError> {
        self.get(&format!("/v1/log/entries?start={start}&end={end}"))
    }

    /// A consistency proof between two log sizes.
    pub fn consistency_proof(
        &self,
        old: u64,
        new: u64,
    ) -> Result<welkin_types::api::LogProof, ClientError> {
        self.get(&format!("/v1/log/proof/consistency?old={old}&new={new}"))
    }

    /// An inclusion proof for leaf `index` in the tree of `size` entries.
    pub fn inclusion_proof(
        &self,
        index: u64,
        size: u64,
    ) -> Result<welkin_types::api::LogProof, ClientError> {
        self.get(&format!(
            "/v1/log/proof/inclusion?index={index}&size={size}"
        ))
    }
}

/// Checks a checkpoint note (`GET /v1/log/checkpoint`) against a genesis and the cluster's
/// key (see [`Client::trusted`]): the cluster's threshold signature must verify; returns the
/// checkpoint and the names of the nodes whose tlog cosignatures verify under their genesis
/// identity keys.
pub fn verify_checkpoint_note(
    text: &str,
    genesis: &welkin_types::Genesis,
    cluster_key: &welkin_types::ClusterKey,
) -> Result<(CertifiedCheckpoint, Vec<String>), ClientError> {
    let note = welkin_note::Note::parse(text.as_bytes())
        .map_err(|e| ClientError::BadReply(format!("checkpoint note: {e}")))?;
    let cluster_id = genesis.cluster_id();
    let certified = welkin_types::note::from_note(&note, &cluster_id, cluster_key)
        .map_err(|e| ClientError::BadReply(e.to_string()))?;
    let mut cosigners = Vec::new();
    for node in &genesis.nodes {
        let Ok(key) = <[u8; 32]>::try_from(node.public_key.as_ref()) else {
            continue;
        };
        let name = welkin_types::note::cosigner_name(&cluster_id, &node.name);
        let Ok(verifier) = welkin_note::CosignatureVerifier::new(&name, &key) else {
            continue;
        };
        if let Ok(Some(_)) = verifier.verify_note(&note) {
            cosigners.push(node.name.clone());
        }
    }
    Ok((certified, cosigners))
}
