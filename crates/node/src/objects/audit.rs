//! The node's part in storage audits (see [`welkin_state::storage::audit`]): it seeds each
//! epoch with the certified checkpoint, answers its own challenge, and checks the other
//! holders' answers.
//!
//! - **Seeding.** Once the checkpoint of an epoch's height is certified, the node whose turn it
//!   is (epoch modulo the node count) commits it; any other node does so if it is still not
//!   committed a few passes later, so a silent node cannot stop audits.
//! - **Answering.** `GET /v1/audit/proof` builds the proof of this node's challenge from its
//!   shard store (the block of every sampled segment, re-hashed on read) and keeps it for the
//!   epoch, so asking again costs nothing.
//! - **Checking.** For every other challenged holder, the node fetches the proof from the
//!   holder's API, checks it against the shard root in the committed manifest, and commits its
//!   verdict. A holder it cannot reach is asked again on the next pass (transient failures
//!   do not count); only a whole epoch without f+1 passing verdicts fails the challenge.

use super::Shards;
use crate::{api::ApiError, store::Runtime};
use axum::{
    extract::State,
    http::{StatusCode, header},
    response::{IntoResponse, Response},
};
use commonware_codec::Encode as _;
use std::collections::BTreeSet;
use tracing::{debug, info};
use welkin_object::{AuditProof, Layout, ShardTree};
use welkin_shards::ShardId;
use welkin_state::{
    keys,
    storage::{
        audit::{AUDIT_INTERVAL, AUDIT_SAMPLES, AuditEpoch, Challenge, ChallengeStatus},
        records::ObjectRecord,
    },
};
use welkin_types::{
    Digest,
    storage::{StorageOp, Verdict},
};

/// Most bytes of a proof a checker reads (30 samples of a 1 KiB chunk and two paths).
const MAX_PROOF_BYTES: u64 = 1 << 20;
/// Passes a node waits for the designated node to seed an epoch before it seeds it itself.
const SEED_PATIENCE_PASSES: u32 = 2;

/// What the node remembers between passes about audits.
#[derive(Default)]
pub(crate) struct AuditMemory {
    /// The epoch the rest is about.
    epoch: u64,
    /// Holders this node has judged in `epoch`.
    judged: BTreeSet<u32>,
    /// This node's own proof for `epoch`, once built.
    proof: Option<(u64, Vec<u8>)>,
    /// Passes since the newest unseeded epoch's checkpoint was certified.
    waiting: u32,
}

/// The object layout a manifest describes.
pub(crate) fn layout_of(record: &ObjectRecord) -> Layout {
    Layout {
        k: record.manifest.k,
        m: record.manifest.m,
        segment_bytes: record.manifest.segment_bytes,
    }
}

fn root_of(record: &ObjectRecord, shard: u16) -> Option<[u8; 32]> {
    record
        .manifest
        .roots
        .get(usize::from(shard))
        .map(|root| root.as_ref().try_into().expect("digests are 32 bytes"))
}

impl<E: Runtime> Shards<E> {
    async fn epoch(&self) -> AuditEpoch {
        self.node
            .value(keys::audit_epoch())
            .await
            .and_then(|v| AuditEpoch::decode(&v).ok())
            .unwrap_or_default()
    }

    async fn challenge_of(&self, member: u32) -> Option<Challenge> {
        self.node
            .value(keys::audit_challenge(member))
            .await
            .and_then(|v| Challenge::decode(&v).ok())
    }

    async fn record_of(&self, object: &Digest) -> Option<ObjectRecord> {
        self.node
            .value(keys::object(object))
            .await
            .and_then(|v| ObjectRecord::decode(&v).ok())
    }

    /// One audit pass: seed if due, then judge the other holders.
    pub(crate) async fn audit_pass(&self) {
        let epoch = self.epoch().await;
        self.seed_if_due(&epoch).await;
        self.judge(&epoch).await;
    }

    async fn seed_if_due(&self, current: &AuditEpoch) {
        let status = self.node.status();
        let height = status.certified_height / AUDIT_INTERVAL * AUDIT_INTERVAL;
        let next = height / AUDIT_INTERVAL;
        if height == 0
            || next <= current.epoch
            || status.height.saturating_sub(height) >= AUDIT_INTERVAL
        {
            self.audit.lock().expect("not poisoned").waiting = 0;
            return;
        }
        let members = self.node.genesis().nodes.len() as u64;
        let mine = next % members.max(1) == u64::from(self.member);
        {
            let mut memory = self.audit.lock().expect("not poisoned");
            memory.waiting = memory.waiting.saturating_add(1);
            if !mine && memory.waiting <= SEED_PATIENCE_PASSES {
                return;
            }
        }
        let Some(checkpoint) = self.node.checkpoint(height).await else {
            return;
        };
        debug!(epoch = next, height, "seeding an audit epoch");
        self.submit(StorageOp::AuditSeed(Box::new(checkpoint)))
            .await;
    }

    async fn judge(&self, epoch: &AuditEpoch) {
        let todo: Vec<u32> = {
            let mut memory = self.audit.lock().expect("not poisoned");
            if memory.epoch != epoch.epoch {
                memory.epoch = epoch.epoch;
                memory.judged.clear();
            }
            epoch
                .members
                .iter()
                .copied()
                .filter(|m| *m != self.member && !memory.judged.contains(m))
                .collect()
        };
        let mut verdicts = Vec::new();
        for member in todo {
            let Some(challenge) = self.challenge_of(member).await else {
                continue;
            };
            if challenge.epoch != epoch.epoch || challenge.status != ChallengeStatus::Open {
                self.audit
                    .lock()
                    .expect("not poisoned")
                    .judged
                    .insert(member);
                continue;
            }
            let Some(record) = self.record_of(&challenge.object).await else {
                continue;
            };
            let Some(verdict) = self.check(member, &challenge, &record).await else {
                continue; // unreachable now: asked again next pass
            };
            verdicts.push(verdict);
        }
        if verdicts.is_empty() {
            return;
        }
        let judged: Vec<u32> = verdicts.iter().map(|v| v.member).collect();
        for verdict in &verdicts {
            if !verdict.passed {
                info!(member = verdict.member, reason = %verdict.reason, "audit failed");
            }
        }
        if self
            .submit(StorageOp::AuditVerdicts {
                epoch: epoch.epoch,
                verdicts,
            })
            .await
            .is_some()
        {
            self.audit
                .lock()
                .expect("not poisoned")
                .judged
                .extend(judged);
        }
    }

    /// Fetches and checks `member`'s proof; `None` if it could not be fetched.
    async fn check(
        &self,
        member: u32,
        challenge: &Challenge,
        record: &ObjectRecord,
    ) -> Option<Verdict> {
        let node = self.node.genesis().nodes.get(member as usize)?;
        let url = format!("http://{}/v1/audit/proof", node.api_address);
        let fetched = tokio::task::spawn_blocking(move || fetch_proof(&url))
            .await
            .ok()?;
        let verdict = |passed: bool, reason: String| Verdict {
            member,
            object: challenge.object,
            shard: challenge.shard,
            passed,
            reason: reason
                .chars()
                .take(welkin_types::storage::MAX_VERDICT_REASON_BYTES / 4)
                .collect(),
        };
        let bytes = match fetched {
            Fetched::Proof(bytes) => bytes,
            Fetched::Refused(reason) => return Some(verdict(false, format!("holder: {reason}"))),
            Fetched::Unreachable => return None,
        };
        let proof = match welkin_types::decode::<AuditProof>(&bytes) {
            Ok(proof) => proof,
            Err(error) => return Some(verdict(false, format!("undecodable proof: {error}"))),
        };
        let root = root_of(record, challenge.shard)?;
        let layout = layout_of(record);
        let seed: [u8; 32] = challenge.seed.as_ref().try_into().expect("32 bytes");
        let size = record.manifest.size;
        let checked = tokio::task::spawn_blocking(move || {
            welkin_object::verify_audit(&root, &layout, size, &seed, AUDIT_SAMPLES, &proof)
        })
        .await
        .ok()?;
        Some(match checked {
            Ok(()) => verdict(true, String::new()),
            Err(error) => verdict(false, error.to_string()),
        })
    }

    /// Builds (or recalls) this node's proof for its current challenge.
    async fn own_proof(&self) -> Result<Vec<u8>, (StatusCode, String)> {
        let epoch = self.epoch().await;
        if let Some((cached, bytes)) = &self.audit.lock().expect("not poisoned").proof
            && *cached == epoch.epoch
        {
            return Ok(bytes.clone());
        }
        let challenge = self
            .challenge_of(self.member)
            .await
            .filter(|c| c.epoch == epoch.epoch)
            .ok_or((
                StatusCode::NOT_FOUND,
                format!("this node has no challenge in audit epoch {}", epoch.epoch),
            ))?;
        let record = self.record_of(&challenge.object).await.ok_or((
            StatusCode::NOT_FOUND,
            "the challenged object is gone".to_string(),
        ))?;
        let layout = layout_of(&record);
        let size = record.manifest.size;
        let store = self.store.clone();
        let mut object = [0u8; 32];
        object.copy_from_slice(challenge.object.as_ref());
        let id = ShardId {
            object,
            index: challenge.shard,
        };
        let seed: [u8; 32] = challenge.seed.as_ref().try_into().expect("32 bytes");
        let built = tokio::task::spawn_blocking(move || -> Result<Vec<u8>, String> {
            let hashes = store.block_hashes(&id).map_err(|e| e.to_string())?;
            let tree = ShardTree::new(hashes);
            let samples = welkin_object::challenges(&seed, &layout, size, AUDIT_SAMPLES)
                .map_err(|e| e.to_string())?;
            let mut proofs = Vec::with_capacity(samples.len());
            for sample in &samples {
                let block = store
                    .read_block(&id, sample.segment as u32)
                    .map_err(|e| e.to_string())?;
                proofs
                    .push(welkin_object::prove(sample, &block, &tree).map_err(|e| e.to_string())?);
            }
            Ok(AuditProof {
                version: welkin_object::AUDIT_PROOF_VERSION,
                samples: proofs,
            }
            .encode()
            .to_vec())
        })
        .await
        .map_err(|e| (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?
        .map_err(|reason| (StatusCode::GONE, reason))?;
        self.audit.lock().expect("not poisoned").proof = Some((epoch.epoch, built.clone()));
        Ok(built)
    }
}

enum Fetched {
    Proof(Vec<u8>),
    /// The holder answered that it cannot prove (its reason).
    Refused(String),
    Unreachable,
}

fn fetch_proof(url: &str) -> Fetched {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into();
    let Ok(mut response) = agent.get(url).call() else {
        return Fetched::Unreachable;
    };
    let status = response.status().as_u16();
    let body = response
        .body_mut()
        .with_config()
        .limit(MAX_PROOF_BYTES)
        .read_to_vec();
    match (status, body) {
        (200, Ok(bytes)) => Fetched::Proof(bytes),
        (410, Ok(bytes)) => {
            Fetched::Refused(String::from_utf8_lossy(&bytes).chars().take(100).collect())
        }
        _ => Fetched::Unreachable,
    }
}

/// `GET /v1/audit/proof`: this node's answer to its current challenge (binary
/// [`AuditProof`]); `410` with the reason if it cannot prove its shard.
pub async fn proof<E: Runtime>(State(shards): State<Shards<E>>) -> Result<Response, ApiError> {
    match shards.own_proof().await {
        Ok(bytes) => {
            Ok(([(header::CONTENT_TYPE, "application/octet-stream")], bytes).into_response())
        }
        Err((StatusCode::GONE, reason)) => Ok((StatusCode::GONE, reason).into_response()),
        Err((status, reason)) => Err(ApiError::new(status, "no_challenge", reason)),
    }
}
