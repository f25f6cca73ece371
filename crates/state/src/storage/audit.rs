//! Audits: every epoch, the cluster's unbiasable randomness challenges one shard of every node
//! that holds any, the other nodes check the answers, and the verdicts are in the log.
//!
//! **Seed.** An epoch is [`AUDIT_INTERVAL`] heights. Epoch `e` starts when a node commits the
//! certified checkpoint of height `e * AUDIT_INTERVAL` ([`welkin_types::storage::StorageOp::AuditSeed`]).
//! Its threshold signature is unique (BLS) and no f nodes can compute it before 2f+1 nodes
//! signed, so nobody can predict or choose the challenges; the checkpoint must be committed
//! within one interval of its height, so there is exactly one candidate per epoch.
//!
//! **Challenge.** For each member holding shards, the seed picks one slot of its list of
//! acknowledged shards (see the module's dense lists) and a per-member seed from which the
//! holder and every checker derive the same chunk samples (`welkin_object`: at least 30 per
//! challenge). The holder serves its proof; each other node checks it against the shard's
//! root in the manifest and commits a verdict ([`welkin_types::storage::Verdict`]).
//!
//! **Result.** f+1 passing verdicts pass the challenge (at least one honest node checked
//! it); f+1 failing ones fail it, with the first reason. A challenge still open when the next
//! epoch starts fails as unanswered: a node that was briefly down answers when it is back,
//! and only its silence for a whole epoch counts. A failed challenge marks the shard lost in
//! its object's record (repair rebuilds it) and counts against the holder's reputation.

use super::{
    dense::Dense,
    history::{self, EventKind, HistoryEvent},
    object_record,
    records::ObjectRecord,
};
use crate::{
    Env, Overlay, Snapshot, keys,
    stored::{Reader, StoredError, Writer, read_list, write_list},
};
use welkin_types::{CertifiedCheckpoint, Digest, hash_parts, storage::Verdict};

/// Heights per audit epoch.
pub const AUDIT_INTERVAL: u64 = 64;
/// Chunk samples per challenge.
pub const AUDIT_SAMPLES: u16 = 30;

const VERSION: u8 = 1;

/// The current epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AuditEpoch {
    /// Its number (its checkpoint's height over [`AUDIT_INTERVAL`]).
    pub epoch: u64,
    /// The seed: a hash of the checkpoint's threshold signature.
    pub seed: Digest,
    /// The members challenged in it.
    pub members: Vec<u32>,
}

impl Default for AuditEpoch {
    fn default() -> Self {
        AuditEpoch {
            epoch: 0,
            seed: Digest::from([0; 32]),
            members: Vec::new(),
        }
    }
}

impl AuditEpoch {
    /// Encodes for state.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.epoch);
        w.raw(self.seed.as_ref());
        write_list(&mut w, &self.members, |w, m| w.u32(*m as usize));
        w.0
    }

    /// Decodes from state.
    pub fn decode(value: &[u8]) -> Result<AuditEpoch, StoredError> {
        let r = &mut Reader::new("audit epoch", value);
        r.version(VERSION)?;
        let epoch = r.u64()?;
        let seed = Digest::from(r.bytes32()?);
        let members = read_list(r, |r| Ok(r.u32()? as u32))?;
        r.end()?;
        Ok(AuditEpoch {
            epoch,
            seed,
            members,
        })
    }
}

/// Where a challenge stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChallengeStatus {
    /// Waiting for verdicts.
    Open,
    /// f+1 nodes found the proof good.
    Passed,
    /// f+1 nodes found it bad, or nobody found it good within the epoch.
    Failed,
}

impl ChallengeStatus {
    /// The name used in JSON.
    pub fn name(self) -> &'static str {
        match self {
            ChallengeStatus::Open => "open",
            ChallengeStatus::Passed => "passed",
            ChallengeStatus::Failed => "failed",
        }
    }
}

/// One member's challenge in the current epoch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Challenge {
    /// The epoch.
    pub epoch: u64,
    /// The challenged object.
    pub object: Digest,
    /// The challenged shard.
    pub shard: u16,
    /// The seed the samples are drawn from (the epoch seed bound to the member).
    pub seed: Digest,
    /// Members whose verdict passed it (bit per member).
    pub passes: u128,
    /// Members whose verdict failed it.
    pub fails: u128,
    /// Where it stands.
    pub status: ChallengeStatus,
    /// Why it failed.
    pub reason: String,
}

impl Challenge {
    /// Encodes for state.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.epoch);
        w.raw(self.object.as_ref());
        w.u16(usize::from(self.shard));
        w.raw(self.seed.as_ref());
        w.raw(&self.passes.to_be_bytes());
        w.raw(&self.fails.to_be_bytes());
        w.u8(match self.status {
            ChallengeStatus::Open => 0,
            ChallengeStatus::Passed => 1,
            ChallengeStatus::Failed => 2,
        });
        w.str(&self.reason);
        w.0
    }

    /// Decodes from state.
    pub fn decode(value: &[u8]) -> Result<Challenge, StoredError> {
        let r = &mut Reader::new("audit challenge", value);
        r.version(VERSION)?;
        let epoch = r.u64()?;
        let object = Digest::from(r.bytes32()?);
        let shard = r.u16()? as u16;
        let seed = Digest::from(r.bytes32()?);
        let passes = u128::from_be_bytes(r.raw(16)?.try_into().expect("16 bytes"));
        let fails = u128::from_be_bytes(r.raw(16)?.try_into().expect("16 bytes"));
        let status = match r.u8()? {
            0 => ChallengeStatus::Open,
            1 => ChallengeStatus::Passed,
            2 => ChallengeStatus::Failed,
            other => return Err(r.error(format!("status {other}"))),
        };
        let reason = r.str()?;
        r.end()?;
        Ok(Challenge {
            epoch,
            object,
            shard,
            seed,
            passes,
            fails,
            status,
            reason,
        })
    }
}

/// A member's audit history in brief: what its reputation follows from.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct AuditRecord {
    /// Challenges passed.
    pub passed: u64,
    /// Challenges failed.
    pub failed: u64,
    /// Failures in a row (0 after a pass).
    pub consecutive_failures: u32,
    /// The last 64 results, newest in bit 0 (1 passed).
    pub recent: u64,
    /// How many of `recent` are filled.
    pub recent_len: u8,
    /// The epoch of the last result.
    pub last_epoch: u64,
    /// Why the last failure failed.
    pub last_failure: String,
}

impl AuditRecord {
    /// The share of the last results passed, in percent (100 before any result).
    pub fn reputation_percent(&self) -> u8 {
        if self.recent_len == 0 {
            return 100;
        }
        let window = if self.recent_len >= 64 {
            u64::MAX
        } else {
            (1u64 << self.recent_len) - 1
        };
        ((self.recent & window).count_ones() * 100 / u32::from(self.recent_len)) as u8
    }

    fn push(&mut self, epoch: u64, passed: bool, reason: &str) {
        self.recent = (self.recent << 1) | u64::from(passed);
        self.recent_len = self.recent_len.saturating_add(1).min(64);
        self.last_epoch = epoch;
        if passed {
            self.passed += 1;
            self.consecutive_failures = 0;
        } else {
            self.failed += 1;
            self.consecutive_failures = self.consecutive_failures.saturating_add(1);
            self.last_failure = reason.chars().take(256).collect();
        }
    }

    /// Encodes for state.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.passed);
        w.u64(self.failed);
        w.u32(self.consecutive_failures as usize);
        w.u64(self.recent);
        w.u8(self.recent_len);
        w.u64(self.last_epoch);
        w.str(&self.last_failure);
        w.0
    }

    /// Decodes from state.
    pub fn decode(value: &[u8]) -> Result<AuditRecord, StoredError> {
        let r = &mut Reader::new("audit record", value);
        r.version(VERSION)?;
        let record = AuditRecord {
            passed: r.u64()?,
            failed: r.u64()?,
            consecutive_failures: r.u32()? as u32,
            recent: r.u64()?,
            recent_len: r.u8()?,
            last_epoch: r.u64()?,
            last_failure: r.str()?,
        };
        r.end()?;
        Ok(record)
    }
}

/// The objects with a lost shard, in a dense list (repair walks it).
pub(crate) fn degraded() -> Dense<impl Fn(u64) -> Digest, impl Fn(&[u8]) -> Digest> {
    Dense {
        count: keys::degraded_count(),
        at: keys::degraded_at,
        slot_of: |item: &[u8]| {
            keys::degraded_slot(&Digest::from(<[u8; 32]>::try_from(item).unwrap_or([0; 32])))
        },
    }
}

fn faults(env: &Env) -> usize {
    env.active_count().saturating_sub(1) / 3
}

/// Starts epoch `checkpoint.height / AUDIT_INTERVAL` (see the module docs).
pub(crate) fn seed<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block_height: u64,
    checkpoint: &CertifiedCheckpoint,
) -> Result<(), String> {
    let height = checkpoint.checkpoint.height;
    if height == 0 || !height.is_multiple_of(AUDIT_INTERVAL) {
        return Err(format!(
            "audit seeds are checkpoints of heights that are multiples of {AUDIT_INTERVAL}, not {height}"
        ));
    }
    if block_height.saturating_sub(height) > AUDIT_INTERVAL {
        return Err(format!(
            "the checkpoint of height {height} is too old to seed an audit at height {block_height}"
        ));
    }
    let epoch = height / AUDIT_INTERVAL;
    let current = state
        .decoded(&keys::audit_epoch(), AuditEpoch::decode)
        .unwrap_or_default();
    if epoch <= current.epoch {
        return Err(format!("audit epoch {epoch} has already started"));
    }
    let key = crate::keygen::cluster_key(env, state)
        .ok_or("the cluster has no key yet to check audit seeds with")?;
    if !checkpoint.verify(&env.cluster_id, &key) {
        return Err("the checkpoint's signature does not verify under the cluster key".into());
    }
    let members = env.members.len() as u32;
    state.prefetch(
        current
            .members
            .iter()
            .map(|m| keys::audit_challenge(*m))
            .chain((0..members).map(keys::held_count)),
    );
    // Challenges nobody passed within the epoch fail as unanswered.
    for member in &current.members {
        let Some(mut challenge) = state.decoded(&keys::audit_challenge(*member), Challenge::decode)
        else {
            continue;
        };
        if challenge.status == ChallengeStatus::Open {
            // A shard deleted or moved away during the epoch is nobody's to prove: its
            // holder is not blamed for the silence.
            let still_placed = object_record(state, &challenge.object).is_some_and(|object| {
                object.placement.get(usize::from(challenge.shard)) == Some(member)
            });
            if !still_placed {
                continue;
            }
            challenge.status = ChallengeStatus::Failed;
            challenge.reason = format!(
                "no proof was found good by {} nodes within epoch {}",
                faults(env) + 1,
                challenge.epoch
            );
            settle(state, block_height, *member, &challenge);
        }
    }
    let seed = hash_parts(&[
        b"welkin/audit-seed/v1",
        &commonware_codec::Encode::encode(&checkpoint.signature),
    ]);
    let mut challenged = Vec::new();
    for member in 0..members {
        let count = state.u64(&keys::held_count(member));
        if count == 0 {
            state.delete(keys::audit_challenge(member));
            continue;
        }
        let member_seed = hash_parts(&[seed.as_ref(), &member.to_be_bytes()]);
        let pick = u64::from_be_bytes(
            member_seed.as_ref()[..8]
                .try_into()
                .expect("8 bytes of a digest"),
        );
        let slot = pick % count;
        let Some(item) = state.get(&keys::held_at(member, slot)).map(<[u8]>::to_vec) else {
            continue; // read next round
        };
        let (object, shard) = match super::records::decode_held(&item) {
            Ok(held) => held,
            Err(error) => {
                state.corrupt(keys::held_at(member, slot), error);
                continue;
            }
        };
        let challenge = Challenge {
            epoch,
            object,
            shard,
            seed: member_seed,
            passes: 0,
            fails: 0,
            status: ChallengeStatus::Open,
            reason: String::new(),
        };
        state.put(keys::audit_challenge(member), challenge.encode());
        challenged.push(member);
    }
    state.put(
        keys::audit_epoch(),
        AuditEpoch {
            epoch,
            seed,
            members: challenged,
        }
        .encode(),
    );
    Ok(())
}

/// Counts a node's verdicts on the current epoch's challenges.
pub(crate) fn verdicts<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    height: u64,
    voter: u32,
    epoch: u64,
    verdicts: &[Verdict],
) -> Result<(), String> {
    let current = state
        .decoded(&keys::audit_epoch(), AuditEpoch::decode)
        .unwrap_or_default();
    if epoch != current.epoch {
        return Err(format!(
            "verdicts for epoch {epoch}, but the current audit epoch is {}",
            current.epoch
        ));
    }
    state.prefetch(verdicts.iter().map(|v| keys::audit_challenge(v.member)));
    let needed = faults(env) + 1;
    for verdict in verdicts {
        if verdict.member == voter || !env.is_active(verdict.member) {
            continue; // nobody judges their own proof
        }
        let Some(mut challenge) =
            state.decoded(&keys::audit_challenge(verdict.member), Challenge::decode)
        else {
            continue;
        };
        if challenge.epoch != epoch
            || challenge.object != verdict.object
            || challenge.shard != verdict.shard
            || challenge.status != ChallengeStatus::Open
        {
            continue;
        }
        let bit = 1u128 << voter;
        if (challenge.passes | challenge.fails) & bit != 0 {
            continue; // one verdict per voter
        }
        if verdict.passed {
            challenge.passes |= bit;
        } else {
            challenge.fails |= bit;
            if challenge.reason.is_empty() {
                challenge.reason = verdict.reason.clone();
            }
        }
        if challenge.passes.count_ones() as usize >= needed {
            challenge.status = ChallengeStatus::Passed;
            challenge.reason.clear();
            settle(state, height, verdict.member, &challenge);
        } else if challenge.fails.count_ones() as usize >= needed {
            challenge.status = ChallengeStatus::Failed;
            settle(state, height, verdict.member, &challenge);
        } else {
            state.put(keys::audit_challenge(verdict.member), challenge.encode());
        }
    }
    Ok(())
}

/// Records a decided challenge at `height`: the holder's and the object's histories, and on
/// failure the shard as lost.
fn settle<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    height: u64,
    member: u32,
    challenge: &Challenge,
) {
    state.prefetch([
        keys::audit_record(member),
        keys::object(&challenge.object),
        keys::object_history(&challenge.object),
    ]);
    state.put(keys::audit_challenge(member), challenge.encode());
    let mut record = state
        .decoded(&keys::audit_record(member), AuditRecord::decode)
        .unwrap_or_default();
    let passed = challenge.status == ChallengeStatus::Passed;
    record.push(challenge.epoch, passed, &challenge.reason);
    state.put(keys::audit_record(member), record.encode());
    history::record(
        state,
        &challenge.object,
        HistoryEvent {
            kind: if passed {
                EventKind::AuditPassed
            } else {
                EventKind::AuditFailed
            },
            height,
            epoch: challenge.epoch,
            shard: challenge.shard,
            member,
            reason: challenge.reason.clone(),
        },
    );
    let Some(mut object) = object_record(state, &challenge.object) else {
        return; // deleted meanwhile
    };
    let shard = usize::from(challenge.shard);
    if object.placement.get(shard) != Some(&member) || !object.is_stored(shard) {
        return; // moved meanwhile
    }
    if !passed {
        mark_lost(state, &challenge.object, &mut object, shard);
    } else if object.lost & (1 << shard) != 0 {
        // The holder proved it holds a shard an earlier epoch called lost (its judges were
        // too slow, or it was down then): the shard counts again, so that a repair of the
        // object's other shards can read it, and it is not rebuilt for nothing.
        object.lost &= !(1 << shard);
        state.put(keys::object(&challenge.object), object.encode());
        if object.lost == 0 {
            degraded().remove(state, challenge.object.as_ref());
        }
    }
}

/// Marks a shard lost and lists its object as degraded.
pub(crate) fn mark_lost<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    id: &Digest,
    object: &mut ObjectRecord,
    shard: usize,
) {
    let was_healthy = object.lost == 0;
    object.lost |= 1 << shard;
    state.put(keys::object(id), object.encode());
    if was_healthy {
        degraded().push(state, id.as_ref().to_vec());
    }
}
