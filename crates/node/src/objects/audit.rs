//! The node's part in storage audits (see [`welkin_state::storage::audit`]): it seeds each
//! epoch with the certified checkpoint, answers its own challenge, and checks the other
//! holders' answers.
//!
//! - **Seeding.** Once the checkpoint of an epoch's height is certified, the node whose turn it
//!   is (epoch modulo the node count) commits it; any other node does so if it is still not
//!   committed a few heights later, so a silent node cannot stop audits or shorten an epoch
//!   much (an epoch ends when the next is seeded).
//! - **Answering.** Asked over the storage channel for its proof of the current epoch, the
//!   node builds it from its shard store (the block of every sampled segment, re-hashed on
//!   read) and keeps it for the epoch, so asking again costs a send. An ask for another
//!   epoch (the asker is ahead of or behind this node) gets no answer.
//! - **Checking.** For every other challenged holder at once, the node asks for the proof,
//!   checks it against the shard root in the committed manifest, and commits its verdicts. A
//!   holder that does not answer in time is asked again on the next pass (transient failures
//!   do not count); only a whole epoch without f+1 passing verdicts fails the challenge.

use super::{
    Shards,
    wire::{Answer, Ask, cut, reason},
};
use crate::store::Runtime;
use commonware_codec::Encode as _;
use std::{collections::BTreeSet, time::Duration};
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
use welkin_types::storage::{StorageOp, Verdict};

/// How long a checker waits for a holder's proof before asking again on a later pass.
const PROOF_TIMEOUT: Duration = Duration::from_secs(10);
/// Heights past an epoch's checkpoint a node waits for the designated node to seed the epoch
/// before it seeds it itself. Counted in heights, not passes: a pass can take a proof timeout,
/// and a seed that comes late shortens the epoch (it ends when the next one is seeded).
const SEED_PATIENCE_HEIGHTS: u64 = 4;

/// What the node remembers between passes about audits.
#[derive(Default)]
pub(crate) struct AuditMemory {
    /// The epoch the rest is about.
    epoch: u64,
    /// Holders this node has judged in `epoch`.
    judged: BTreeSet<u32>,
    /// This node's own proof for `epoch`, once built.
    proof: Option<(u64, Vec<u8>)>,
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
            return;
        }
        let members = self.node.genesis().nodes.len() as u64;
        let mine = next % members.max(1) == u64::from(self.member);
        if !mine && status.height < height + SEED_PATIENCE_HEIGHTS {
            return;
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
        // Every holder at once: a silent one costs one proof timeout per pass, whatever the
        // number of silent holders, and never delays the verdicts on the others for long.
        let checks = todo.into_iter().map(|member| self.judge_one(epoch, member));
        let verdicts: Vec<Verdict> = futures::future::join_all(checks)
            .await
            .into_iter()
            .flatten()
            .collect();
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

    /// The verdict on `member`'s challenge of `epoch`, if it can be given now: `None` if it
    /// has none open, its shard moved away, or it did not answer (asked again next pass).
    async fn judge_one(&self, epoch: &AuditEpoch, member: u32) -> Option<Verdict> {
        let challenge = self.challenge_of(member).await?;
        if challenge.epoch != epoch.epoch || challenge.status != ChallengeStatus::Open {
            self.audit
                .lock()
                .expect("not poisoned")
                .judged
                .insert(member);
            return None;
        }
        let record = self.record_of(&challenge.object).await?;
        if record.placement.get(usize::from(challenge.shard)) != Some(&member) {
            // Moved away during the epoch: nobody's to prove (the state agrees).
            return None;
        }
        self.check(member, &challenge, &record).await
    }

    /// Asks for and checks `member`'s proof; `None` if no answer came.
    async fn check(
        &self,
        member: u32,
        challenge: &Challenge,
        record: &ObjectRecord,
    ) -> Option<Verdict> {
        let answer = self
            .ask(
                member,
                Ask::Proof {
                    epoch: challenge.epoch,
                },
                PROOF_TIMEOUT,
            )
            .await?;
        let verdict = |passed: bool, reason: String| Verdict {
            member,
            object: challenge.object,
            shard: challenge.shard,
            passed,
            reason: cut(&reason, welkin_types::storage::MAX_VERDICT_REASON_BYTES),
        };
        let bytes = match answer {
            Answer::Proof(bytes) => bytes,
            Answer::Refused(reason) => return Some(verdict(false, format!("holder: {reason}"))),
            Answer::Block { .. } => {
                return Some(verdict(false, "answered a proof ask with a block".into()));
            }
        };
        let proof = match welkin_types::decode::<AuditProof>(&bytes) {
            Ok(proof) => proof,
            Err(error) => return Some(verdict(false, format!("undecodable proof: {error}"))),
        };
        let root = root_of(record, challenge.shard)?;
        let layout = layout_of(record);
        let seed: [u8; 32] = challenge.seed.as_ref().try_into().expect("32 bytes");
        let size = record.manifest.size;
        let checked = self
            .blocking(move || {
                welkin_object::verify_audit(&root, &layout, size, &seed, AUDIT_SAMPLES, &proof)
            })
            .await?;
        Some(match checked {
            Ok(()) => verdict(true, String::new()),
            Err(error) => verdict(false, error.to_string()),
        })
    }

    /// The answer to a peer's ask for this node's proof of `epoch`: the proof, the reason it
    /// cannot prove its shard, or nothing if this node is not at that epoch (yet).
    pub(crate) async fn proof_answer(&self, epoch: u64) -> Option<Answer> {
        let current = self.epoch().await;
        if current.epoch != epoch {
            return None;
        }
        if let Some((cached, bytes)) = &self.audit.lock().expect("not poisoned").proof
            && *cached == epoch
        {
            return Some(Answer::Proof(bytes.clone()));
        }
        let challenge = self
            .challenge_of(self.member)
            .await
            .filter(|c| c.epoch == epoch)?;
        let Some(record) = self.record_of(&challenge.object).await else {
            return Some(Answer::Refused("the challenged object is gone".into()));
        };
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
        let built = self
            .blocking(move || -> Result<Vec<u8>, String> {
                let hashes = store.block_hashes(&id).map_err(|e| e.to_string())?;
                let tree = ShardTree::new(hashes);
                let samples = welkin_object::challenges(&seed, &layout, size, AUDIT_SAMPLES)
                    .map_err(|e| e.to_string())?;
                let mut proofs = Vec::with_capacity(samples.len());
                for sample in &samples {
                    let block = store
                        .read_block(&id, sample.segment as u32)
                        .map_err(|e| e.to_string())?;
                    proofs.push(
                        welkin_object::prove(sample, &block, &tree).map_err(|e| e.to_string())?,
                    );
                }
                Ok(AuditProof {
                    version: welkin_object::AUDIT_PROOF_VERSION,
                    samples: proofs,
                }
                .encode()
                .to_vec())
            })
            .await?;
        let answer = match built {
            Ok(bytes) => {
                self.audit.lock().expect("not poisoned").proof = Some((epoch, bytes.clone()));
                Answer::Proof(bytes)
            }
            Err(why) => Answer::Refused(reason(&why)),
        };
        Some(answer)
    }
}
