//! The simulated nodes' side: failures, audits they answer and judge, repairs they carry out.

use super::Sim;
use commonware_cryptography::bls12381::primitives::{group::Share, ops::threshold};
use welkin_state::{
    keys,
    storage::audit::{AuditEpoch, Challenge, ChallengeStatus},
};
use welkin_types::{
    CertifiedCheckpoint, Checkpoint, Digest, Variant, hash_parts, namespace,
    storage::{StorageOp, Verdict},
};

/// A small seeded generator (splitmix64): the simulation's only randomness besides the key
/// dealing, so a seed gives one run.
pub(super) struct Rng(pub(super) u64);

impl Rng {
    pub(super) fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    pub(super) fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Uniform in `low..=high`.
    pub(super) fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// What a simulated node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Role {
    /// Fails and recovers at random.
    Random,
    /// Down on odd epochs, up on even ones, its disk kept.
    Flapping,
    /// Fails (its disk lost) in the first epoch and never comes back.
    Killed,
}

impl Sim<'_> {
    pub(super) fn step_nodes(&mut self, epoch: u64) {
        for node in 0..self.up.len() {
            match self.roles[node] {
                Role::Killed => {
                    if self.up[node] {
                        self.up[node] = false;
                        self.disks[node].clear();
                    }
                }
                Role::Flapping => self.up[node] = epoch.is_multiple_of(2),
                Role::Random if self.up[node] => {
                    if self.rng.chance(self.config.fail_rate) {
                        self.up[node] = false;
                        self.disks[node].clear();
                    }
                }
                Role::Random => self.up[node] = self.rng.chance(self.config.recover_rate),
            }
        }
    }

    /// Shards of `id` on some disk.
    pub(super) fn on_disk(&self, id: &Digest) -> usize {
        let record = self.record(id);
        (0..record.placement.len())
            .filter(|s| {
                let shard = (*id, *s as u16);
                self.disks.iter().any(|disk| disk.contains(&shard))
            })
            .count()
    }

    pub(super) fn check_health(&mut self) {
        for id in self.objects.clone() {
            let present = self.on_disk(&id);
            self.min_healthy = self.min_healthy.min(present);
            if present < usize::from(self.config.k) {
                self.lost.insert(id);
            }
        }
    }

    /// Nodes that are up declare lost the shards placed on them that their disk lacks (a
    /// node back with an empty disk), as real nodes do on their background pass.
    pub(super) fn declare_missing(&mut self) {
        let mut declarations = Vec::new();
        for id in self.objects.clone() {
            let record = self.record(&id);
            let mut by_member: std::collections::BTreeMap<u32, Vec<u16>> = Default::default();
            for (shard, member) in record.placement.iter().enumerate() {
                if self.up[*member as usize]
                    && record.is_stored(shard)
                    && record.lost & (1 << shard) == 0
                    && !self.disks[*member as usize].contains(&(id, shard as u16))
                {
                    by_member.entry(*member).or_default().push(shard as u16);
                }
            }
            for (member, shards) in by_member {
                let key = self.keys[member as usize].clone();
                declarations.push(self.tx(&key, StorageOp::Lost { object: id, shards }));
            }
        }
        self.blocks(declarations);
    }

    /// New holders that are up rebuild and acknowledge the shards ordered to them in an
    /// earlier epoch, if `k` other shards can be read from nodes that are up.
    pub(super) fn acknowledge_repairs(&mut self) {
        let mut acks = Vec::new();
        for (id, order) in self.open_orders.clone() {
            if order.height >= self.height || !self.up[order.member as usize] {
                continue;
            }
            let record = self.record(&id);
            let readable = record
                .placement
                .iter()
                .enumerate()
                .filter(|(s, m)| {
                    *s != usize::from(order.shard)
                        && self.up[**m as usize]
                        && self.disks[**m as usize].contains(&(id, *s as u16))
                })
                .count();
            if readable < usize::from(record.manifest.k) {
                continue;
            }
            let key = self.keys[order.member as usize].clone();
            acks.push(self.tx(
                &key,
                StorageOp::Stored {
                    object: id,
                    shards: vec![order.shard],
                },
            ));
        }
        self.blocks(acks);
    }

    /// Starts the epoch of checkpoint height `base`, if 2f+1 nodes are up to certify it.
    pub(super) fn seed(&mut self, base: u64) {
        let signers: Vec<&Share> = self
            .shares
            .iter()
            .enumerate()
            .filter(|(i, _)| self.up[*i])
            .map(|(_, s)| s)
            .collect();
        let required = self.sharing.required() as usize;
        if signers.len() < required {
            self.report.epochs_without_seed += 1;
            self.block(Vec::new());
            return;
        }
        // The state checks only the certificate, so the checkpoint names a stand-in root.
        let checkpoint = Checkpoint {
            height: base,
            state_root: hash_parts(&[b"simulated state", &base.to_be_bytes()]),
            log_size: base,
            log_root: hash_parts(&[b"simulated log"]),
        };
        let message = checkpoint.message(&self.env.cluster_id);
        let partials: Vec<_> = signers[..required]
            .iter()
            .map(|s| threshold::sign_message::<Variant>(s, namespace::CHECKPOINT, &message))
            .collect();
        let signature = threshold::recover::<Variant, _>(
            &self.sharing,
            &partials,
            &commonware_parallel::Sequential,
        )
        .expect("2f+1 partials of the dealt shares recover");
        let node = self.up.iter().position(|u| *u).expect("signers are up");
        let key = self.keys[node].clone();
        let tx = self.tx(
            &key,
            StorageOp::AuditSeed(Box::new(CertifiedCheckpoint {
                checkpoint,
                signature,
            })),
        );
        self.blocks(vec![tx]);
    }

    /// Every node that is up checks the proofs of the holders that are up: a holder passes if
    /// it still has the shard. A holder that is down serves no proof, and its challenge
    /// fails as unanswered when the next epoch starts.
    pub(super) fn judge(&mut self) {
        let Some(epoch) = self
            .state
            .get(&keys::audit_epoch())
            .and_then(|v| AuditEpoch::decode(v).ok())
        else {
            return;
        };
        let challenges: Vec<(u32, Challenge)> = epoch
            .members
            .iter()
            .filter_map(|m| {
                let challenge =
                    Challenge::decode(self.state.get(&keys::audit_challenge(*m))?).ok()?;
                (challenge.epoch == epoch.epoch && challenge.status == ChallengeStatus::Open)
                    .then_some((*m, challenge))
            })
            .collect();
        let mut txs = Vec::new();
        for voter in 0..self.keys.len() as u32 {
            if !self.up[voter as usize] {
                continue;
            }
            let verdicts: Vec<Verdict> = challenges
                .iter()
                .filter(|(member, _)| *member != voter && self.up[*member as usize])
                .map(|(member, c)| {
                    let passed = self.disks[*member as usize].contains(&(c.object, c.shard));
                    Verdict {
                        member: *member,
                        object: c.object,
                        shard: c.shard,
                        passed,
                        reason: if passed {
                            String::new()
                        } else {
                            format!(
                                "node {member} has no copy of shard {}: its disk was lost",
                                c.shard
                            )
                        },
                    }
                })
                .collect();
            if verdicts.is_empty() {
                continue;
            }
            let key = self.keys[voter as usize].clone();
            txs.push(self.tx(
                &key,
                StorageOp::AuditVerdicts {
                    epoch: epoch.epoch,
                    verdicts,
                },
            ));
        }
        self.blocks(txs);
    }
}
