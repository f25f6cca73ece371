//! Admission: the rules a transaction must pass to enter the mempool, one function for a
//! client's submission and a peer's gossip alike.
//!
//! In order: a valid signature, a size within [`MAX_TX_BYTES`], an expiry not past and at most
//! `max_tx_ttl_ms` ahead on this node's clock, then against the latest committed state: not
//! already committed (then the receipt is the answer), a fresh nonce, signing keys that
//! speak for the sending identifier, and for a secrets request a live token. What passes enters the mempool under its limits.

use crate::{
    application::signature_verdicts,
    mempool::{Mempool, MempoolError},
    store::Runtime,
    store::Stores,
    timeline::Timeline,
};
use commonware_codec::EncodeSize as _;
use welkin_state::{authority, keys};
use welkin_types::{
    ChainParams, Digest, Receipt, Sender, SignedTransaction, TxError, limits::MAX_TX_BYTES,
};

/// Why a submission was refused. Each variant has a stable code for the API.
#[derive(Debug, thiserror::Error)]
pub enum SubmitError {
    /// The transaction is malformed or wrongly signed.
    #[error(transparent)]
    Invalid(#[from] TxError),
    /// The expiry has passed on this node's clock.
    #[error(
        "transaction expired at {expiry_ms} ms, node time is {now_ms} ms; sign it again with a later expiry"
    )]
    Expired {
        /// The transaction's expiry.
        expiry_ms: u64,
        /// This node's time.
        now_ms: u64,
    },
    /// The expiry is further ahead than the chain allows.
    #[error("expiry {expiry_ms} ms is more than {max_ttl_ms} ms after node time {now_ms} ms")]
    TtlTooLong {
        /// The transaction's expiry.
        expiry_ms: u64,
        /// This node's time.
        now_ms: u64,
        /// The chain's limit.
        max_ttl_ms: u64,
    },
    /// The sender already used this nonce in a committed transaction.
    #[error("nonce {nonce} of sender {signer} was already used; pick a fresh nonce")]
    Replay {
        /// The sender: a key (hex) or an identifier.
        signer: String,
        /// The nonce.
        nonce: u64,
    },
    /// The keys that signed do not speak for the identifier that sends the transaction (as
    /// of the latest committed state).
    #[error(transparent)]
    Unauthorized(#[from] welkin_state::authority::Refusal),
    /// The mempool is full.
    #[error(transparent)]
    Full(#[from] MempoolError),
    /// A secrets request signed by a token this node does not know, or that has expired:
    /// refused before the log, since anyone can make up tokens.
    #[error("permission denied: the token is unknown, revoked or expired")]
    UnknownToken,
    /// A key generation step from a key that is not one of the cluster's nodes.
    #[error("permission denied: only the cluster's nodes send key generation steps")]
    NotANode,
    /// The node is shutting down.
    #[error("node is shutting down")]
    Unavailable,
}

impl SubmitError {
    /// The stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            SubmitError::Invalid(TxError::BadSignature(_)) => "bad_signature",
            SubmitError::Invalid(TxError::TooLarge(_)) => "too_large",
            SubmitError::Invalid(TxError::UnsupportedVersion(_)) => "unsupported_version",
            SubmitError::Invalid(TxError::Malformed(_)) => "malformed",
            SubmitError::Invalid(TxError::MissingValue) => "missing_value",
            SubmitError::Expired { .. } => "expired",
            SubmitError::TtlTooLong { .. } => "ttl_too_long",
            SubmitError::Replay { .. } => "replay",
            SubmitError::Unauthorized(_) => "unauthorized",
            SubmitError::Full(_) => "mempool_full",
            SubmitError::UnknownToken => "unknown_token",
            SubmitError::NotANode => "not_a_node",
            SubmitError::Unavailable => "unavailable",
        }
    }
}

impl SubmitError {
    /// Why relaying this transaction proves a peer faulty, if it does: no honest node relays
    /// a transaction with a bad signature or beyond the size limit, nor one whose expiry is
    /// further ahead than the chain's TTL plus the clock skew honest nodes may have. Every
    /// other refusal (expired in transit, committed or replaced meanwhile, a full pool) can
    /// happen to an honest relay.
    pub fn proves_faulty_relay(&self, params: &ChainParams) -> bool {
        match self {
            SubmitError::Invalid(_) => true,
            SubmitError::TtlTooLong {
                expiry_ms, now_ms, ..
            } => {
                *expiry_ms
                    > now_ms
                        .saturating_add(params.max_tx_ttl_ms)
                        .saturating_add(params.max_clock_skew_ms)
            }
            _ => false,
        }
    }
}

/// The token key of a secrets request (whose sender is a token's key); not a node's key
/// generation step.
fn token_key(tx: &SignedTransaction) -> Option<&welkin_types::PublicKey> {
    match (&tx.tx.sender, &tx.tx.payload) {
        (Sender::Key(_), _) if is_node_step(tx) => None,
        (Sender::Key(key), welkin_types::Payload::Secrets(_)) => Some(key),
        _ => None,
    }
}

/// Whether `tx` is a transit key generation step, which only the cluster's nodes send.
fn is_node_step(tx: &SignedTransaction) -> bool {
    use welkin_types::secrets::{SecretsOp, TransitOp};
    matches!(
        &tx.tx.payload,
        welkin_types::Payload::Secrets(op) if matches!(
            op.as_ref(),
            SecretsOp::Transit(TransitOp::DkgRound1 { .. } | TransitOp::DkgResult { .. })
        )
    )
}

/// What admission did with a transaction that passed it.
#[derive(Debug)]
pub(crate) enum Admitted {
    /// Newly added to the mempool.
    New,
    /// Already waiting in the mempool.
    Known,
    /// Already committed: here is its receipt.
    Committed(Receipt),
}

/// The admission rules and what they consult: the chain's limits, the latest committed state
/// and the mempool.
pub(crate) struct Admission<E: Runtime> {
    cluster_id: Digest,
    params: ChainParams,
    members: std::sync::Arc<Vec<welkin_types::PublicKey>>,
    mempool: Mempool,
    stores: Stores<E>,
    timeline: Timeline,
}

impl<E: Runtime> Clone for Admission<E> {
    fn clone(&self) -> Self {
        Self {
            cluster_id: self.cluster_id,
            params: self.params.clone(),
            members: self.members.clone(),
            mempool: self.mempool.clone(),
            stores: self.stores.clone(),
            timeline: self.timeline.clone(),
        }
    }
}

impl<E: Runtime> Admission<E> {
    /// Admission into `mempool` under `params`, reading the latest committed state from
    /// `stores` and timing its signature checks in `timeline`.
    pub(crate) fn new(
        cluster_id: Digest,
        params: ChainParams,
        members: Vec<welkin_types::PublicKey>,
        mempool: Mempool,
        stores: Stores<E>,
        timeline: Timeline,
    ) -> Self {
        Self {
            cluster_id,
            params,
            members: std::sync::Arc::new(members),
            mempool,
            stores,
            timeline,
        }
    }

    /// Where admission's users record stage times.
    pub(crate) fn timeline(&self) -> &Timeline {
        &self.timeline
    }

    /// The chain parameters admission applies.
    pub(crate) fn params(&self) -> &ChainParams {
        &self.params
    }

    /// Checks `txs` at `now_ms` and admits those that pass to the mempool; one verdict per
    /// transaction, in order. Signatures are batch-verified and state is read
    /// straight from the stores.
    pub(crate) async fn admit(
        &self,
        txs: &[SignedTransaction],
        now_ms: u64,
    ) -> Vec<Result<Admitted, SubmitError>> {
        let max_ttl = self.params.max_tx_ttl_ms;
        // Those already pooled were verified on entry.
        let signatures = signature_verdicts(&self.mempool, &self.cluster_id, txs, &self.timeline);
        let mut results: Vec<Option<Result<Admitted, SubmitError>>> = Vec::with_capacity(txs.len());
        let mut lookups = Vec::new();
        for (index, (tx, signature_ok)) in txs.iter().zip(signatures).enumerate() {
            let size = tx.encode_size();
            let early = if !signature_ok {
                Some(Err(TxError::BadSignature(tx.tx.sender.to_string()).into()))
            } else if size > MAX_TX_BYTES {
                Some(Err(TxError::TooLarge(size).into()))
            } else if !tx.is_complete() {
                Some(Err(TxError::MissingValue.into()))
            } else if tx.tx.expiry_ms < now_ms {
                Some(Err(SubmitError::Expired {
                    expiry_ms: tx.tx.expiry_ms,
                    now_ms,
                }))
            } else if tx.tx.expiry_ms > now_ms.saturating_add(max_ttl) {
                Some(Err(SubmitError::TtlTooLong {
                    expiry_ms: tx.tx.expiry_ms,
                    now_ms,
                    max_ttl_ms: max_ttl,
                }))
            } else if self.mempool.contains(&tx.id()) {
                Some(Ok(Admitted::Known))
            } else {
                lookups.push(index);
                None
            };
            results.push(early);
        }
        if !lookups.is_empty() {
            // Per transaction: its receipt, its nonce, and for an identifier sender its key
            // state.
            let mut keys: Vec<Digest> = Vec::with_capacity(lookups.len() * 3);
            for &i in &lookups {
                let tx = &txs[i].tx;
                keys.push(keys::receipt(&txs[i].id()));
                keys.push(keys::nonce(&tx.sender, tx.nonce));
                if let Some(prefix) = tx.sender.prefix() {
                    keys.push(keys::id_state(prefix));
                }
                if let Some(token) = token_key(&txs[i]) {
                    keys.push(keys::token(token));
                }
            }
            let mut values = self.stores.values(&keys).await.into_iter();
            for &index in &lookups {
                let tx = &txs[index];
                let receipt = values
                    .next()
                    .flatten()
                    .and_then(|bytes| welkin_types::decode::<Receipt>(&bytes).ok());
                let nonce_used = values.next().flatten().is_some();
                let authorized = match &tx.tx.sender {
                    Sender::Key(_) if token_key(tx).is_some() => {
                        let live = values.next().flatten().is_some_and(|bytes| {
                            welkin_state::secrets::records::Token::decode(&bytes)
                                .is_ok_and(|token| token.is_live(now_ms))
                        });
                        if live {
                            Ok(())
                        } else {
                            Err(SubmitError::UnknownToken)
                        }
                    }
                    Sender::Key(key) if is_node_step(tx) => {
                        if self.members.contains(key) {
                            Ok(())
                        } else {
                            Err(SubmitError::NotANode)
                        }
                    }
                    Sender::Key(_) => Ok(()),
                    Sender::Identifier { prefix, signers } => {
                        let value = values.next().flatten();
                        match welkin_state::identity::stored_key_state(value.as_deref()) {
                            Ok(state) => authority::check(state.as_ref(), prefix, signers)
                                .map_err(SubmitError::from),
                            // The executor halts on such a value: refuse rather than guess.
                            Err(_) => Err(SubmitError::Unavailable),
                        }
                    }
                };
                let outcome = if let Some(receipt) = receipt {
                    Ok(Admitted::Committed(receipt))
                } else if nonce_used {
                    Err(SubmitError::Replay {
                        signer: tx.tx.sender.to_string(),
                        nonce: tx.tx.nonce,
                    })
                } else if let Err(refusal) = authorized {
                    Err(refusal)
                } else {
                    match self.mempool.insert(tx.clone(), now_ms) {
                        Ok(true) => Ok(Admitted::New),
                        Ok(false) => Ok(Admitted::Known),
                        Err(full) => Err(full.into()),
                    }
                };
                results[index] = Some(outcome);
            }
        }
        results
            .into_iter()
            .map(|r| r.expect("every transaction has a result"))
            .collect()
    }
}
