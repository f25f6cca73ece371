//! The simulated cluster: honest nodes that fail, flap and recover around the real state
//! machine (see the parent module).

use super::{Config, NodeReport, Report};
use commonware_cryptography::{
    Signer as _,
    bls12381::{
        dkg::feldman_desmedt::deal_anonymous,
        primitives::{group::Share, ops::threshold, sharing::Mode},
    },
    ed25519::PrivateKey,
};
use commonware_utils::{N3f1, TestRng};
use std::collections::{BTreeMap, BTreeSet};
use welkin_state::{
    BlockEffects, Env, apply_to_map, keys,
    storage::{
        audit::{AUDIT_INTERVAL, AuditEpoch, AuditRecord, Challenge, ChallengeStatus},
        records::ObjectRecord,
        repair::RepairOrder,
    },
    stored::decode_u64,
};
use welkin_types::{
    Block, CertifiedCheckpoint, ChainParams, Checkpoint, Detachable, Digest, LogEntry, Outcome,
    Payload, Sender, SignedTransaction, Transaction, Variant, hash_parts, namespace,
    storage::{ObjectManifest, StorageOp, Verdict},
};

/// Transactions per simulated block (far below the block limits).
const TXS_PER_BLOCK: usize = 256;
/// Blocks run per epoch at most after its verdicts, for the repair sweep to order repairs.
const SWEEP_BLOCKS: u64 = AUDIT_INTERVAL - 4;

/// A small seeded generator (splitmix64): the simulation's only randomness besides the key
/// dealing, so a seed gives one run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// True with probability `p`.
    fn chance(&mut self, p: f64) -> bool {
        ((self.next() >> 11) as f64 / (1u64 << 53) as f64) < p
    }

    /// Uniform in `low..=high`.
    fn between(&mut self, low: u64, high: u64) -> u64 {
        low + self.next() % (high - low + 1)
    }
}

/// What a simulated node is.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Role {
    /// Fails and recovers at random.
    Random,
    /// Down on odd epochs, up on even ones, its disk kept.
    Flapping,
    /// Fails (its disk lost) in the first epoch and never comes back.
    Killed,
}

pub(super) struct Sim<'a> {
    config: &'a Config,
    env: Env,
    keys: Vec<PrivateKey>,
    owner: PrivateKey,
    sharing: welkin_types::Sharing,
    shares: Vec<Share>,
    state: BTreeMap<Digest, Vec<u8>>,
    height: u64,
    nonce: u64,
    rng: Rng,
    roles: Vec<Role>,
    up: Vec<bool>,
    /// The shards each node really has on disk.
    disks: Vec<BTreeSet<(Digest, u16)>>,
    objects: Vec<Digest>,
    /// Each object's repair key, back to the object.
    repair_keys: BTreeMap<Digest, Digest>,
    open_orders: BTreeMap<Digest, RepairOrder>,
    /// Objects that at some point had fewer than k shards left on any disk.
    lost: BTreeSet<Digest>,
    min_healthy: usize,
    /// Whether refusals are expected (puts that do not fit are counted apart).
    puts: bool,
    report: Report,
}

impl<'a> Sim<'a> {
    pub(super) fn new(config: &'a Config) -> Sim<'a> {
        let nodes = config.nodes;
        let (sharing, shares) = deal_anonymous::<Variant, N3f1>(
            TestRng::new(config.seed),
            Mode::NonZeroCounter,
            std::num::NonZeroU32::new(nodes).expect("the config has at least one node"),
        );
        let keys: Vec<PrivateKey> = (0..u64::from(nodes))
            .map(|i| PrivateKey::from_seed(config.seed.wrapping_mul(1 << 20).wrapping_add(i)))
            .collect();
        let env = Env {
            cluster_id: hash_parts(&[b"welkin/obj-simulate", &config.seed.to_be_bytes()]),
            params: ChainParams::default(),
            members: keys.iter().map(|k| k.public_key()).collect(),
            threshold: sharing.required() as u16,
            domains: (0..nodes)
                .map(|i| format!("zone-{}", i % config.domains))
                .collect(),
            cluster_key: Some(*sharing.public()),
        };
        let roles = (0..nodes)
            .map(|i| {
                if config.kill.contains(&i) {
                    Role::Killed
                } else if config.flap.contains(&i) {
                    Role::Flapping
                } else {
                    Role::Random
                }
            })
            .collect();
        Sim {
            config,
            env,
            keys,
            owner: PrivateKey::from_seed(u64::MAX - config.seed),
            sharing,
            shares,
            state: BTreeMap::new(),
            height: 0,
            nonce: 0,
            rng: Rng(config.seed),
            roles,
            up: vec![true; nodes as usize],
            disks: vec![BTreeSet::new(); nodes as usize],
            objects: Vec::new(),
            repair_keys: BTreeMap::new(),
            open_orders: BTreeMap::new(),
            lost: BTreeSet::new(),
            min_healthy: usize::from(config.k + config.m),
            puts: false,
            report: Report::new(config),
        }
    }

    fn tx(&mut self, key: &PrivateKey, op: StorageOp) -> SignedTransaction {
        self.nonce += 1;
        Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: self.nonce,
            expiry_ms: self.now(self.height + 1) + 60_000,
            payload: Payload::Storage(Box::new(op)),
        }
        .sign(key, &self.env.cluster_id)
    }

    fn now(&self, height: u64) -> u64 {
        1_700_000_000_000 + height * 1_000
    }

    /// Applies `txs` in blocks from the next height on.
    fn blocks(&mut self, txs: Vec<SignedTransaction>) {
        if txs.is_empty() {
            self.block(Vec::new());
        }
        let mut txs = txs.into_iter().peekable();
        while txs.peek().is_some() {
            let chunk: Vec<_> = txs.by_ref().take(TXS_PER_BLOCK).collect();
            self.block(chunk);
        }
    }

    fn block(&mut self, txs: Vec<SignedTransaction>) {
        self.height += 1;
        let block = Block::new(
            hash_parts(&[b"welkin/obj-simulate/parent"]),
            self.height,
            self.now(self.height),
            txs,
        );
        let effects = apply_to_map(&self.env, &mut self.state, &block);
        self.observe(&effects);
    }

    /// Counts refusals and follows repair orders through the block's writes.
    fn observe(&mut self, effects: &BlockEffects) {
        for entry in &effects.log_entries {
            let Ok(entry) = welkin_types::decode::<LogEntry>(entry) else {
                continue;
            };
            if entry.outcome != Outcome::Applied && !self.puts {
                self.report.refused_transactions += 1;
                if self.report.first_refusal.is_none() {
                    self.report.first_refusal = Some(entry.detail.clone());
                }
            }
        }
        for (key, value) in &effects.writes {
            let Some(id) = self.repair_keys.get(key).copied() else {
                continue;
            };
            let order = value.as_deref().and_then(|v| RepairOrder::decode(v).ok());
            let was_open = self.open_orders.remove(&id);
            match order {
                Some(order) if order.open => {
                    if was_open.as_ref() != Some(&order) {
                        self.report.repair_orders_made += 1;
                        // The old holder drops a shard no longer placed on it.
                        if order.from_member != order.member {
                            self.disks[order.from_member as usize].remove(&(id, order.shard));
                        }
                    }
                    self.open_orders.insert(id, order);
                }
                Some(_) => {
                    if was_open.is_some() {
                        self.report.repairs_expired += 1;
                    }
                }
                None => {
                    if let Some(order) = was_open {
                        self.report.repairs_completed += 1;
                        let record = self.record(&id);
                        self.report.repair_bytes_moved +=
                            u64::from(record.manifest.k) * record.manifest.shard_bytes();
                        self.disks[order.member as usize].insert((id, order.shard));
                    }
                }
            }
        }
    }

    fn record(&self, id: &Digest) -> ObjectRecord {
        ObjectRecord::decode(&self.state[&keys::object(id)]).expect("the simulation's objects")
    }

    /// Offers space, puts the objects and acknowledges every shard.
    pub(super) fn setup(&mut self) {
        let offers = self
            .keys
            .clone()
            .iter()
            .map(|key| {
                self.tx(
                    key,
                    StorageOp::Offer {
                        capacity_bytes: self.config.capacity,
                    },
                )
            })
            .collect();
        self.blocks(offers);
        let mut puts = Vec::new();
        let mut ids = Vec::new();
        for index in 0..self.config.objects {
            let max = self.config.object_size.max(1);
            let size = self.rng.between(max.div_ceil(2), max);
            let manifest = ObjectManifest {
                size,
                k: self.config.k,
                m: self.config.m,
                segment_bytes: welkin_object::DEFAULT_SEGMENT_BYTES,
                roots: (0..self.config.k + self.config.m)
                    .map(|s| hash_parts(&[&index.to_be_bytes(), &s.to_be_bytes()]))
                    .collect(),
                sealed_key: Detachable::new(vec![0; 80]),
                label: format!("simulated {index}"),
            };
            ids.push(manifest.id());
            let owner = self.owner.clone();
            puts.push(self.tx(&owner, StorageOp::Put(Box::new(manifest))));
        }
        self.puts = true;
        self.blocks(puts);
        self.puts = false;
        let mut acks = Vec::new();
        for id in ids {
            if !self.state.contains_key(&keys::object(&id)) {
                self.report.objects_refused += 1;
                continue;
            }
            let record = self.record(&id);
            for (shard, member) in record.placement.iter().enumerate() {
                let key = self.keys[*member as usize].clone();
                acks.push(self.tx(
                    &key,
                    StorageOp::Stored {
                        object: id,
                        shards: vec![shard as u16],
                    },
                ));
                self.disks[*member as usize].insert((id, shard as u16));
            }
            self.repair_keys.insert(keys::repair(&id), id);
            self.objects.push(id);
        }
        self.blocks(acks);
        self.report.objects_stored = self.objects.len() as u64;
    }

    /// Runs audit epoch `epoch` (the first is 1).
    pub(super) fn epoch(&mut self, epoch: u64) {
        self.step_nodes(epoch);
        self.check_health();
        // Epochs start past the set-up blocks.
        let base = (self.height / AUDIT_INTERVAL + 1) * AUDIT_INTERVAL;
        self.height = base;
        self.acknowledge_repairs();
        self.seed(base);
        self.judge();
        let degraded = self.count(keys::degraded_count());
        let sweeps = (degraded.div_ceil(2) + degraded.div_ceil(8)).clamp(1, SWEEP_BLOCKS);
        for _ in 0..sweeps {
            self.block(Vec::new());
        }
        self.check_health();
    }

    fn step_nodes(&mut self, epoch: u64) {
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
    fn on_disk(&self, id: &Digest) -> usize {
        let record = self.record(id);
        (0..record.placement.len())
            .filter(|s| {
                let shard = (*id, *s as u16);
                self.disks.iter().any(|disk| disk.contains(&shard))
            })
            .count()
    }

    fn check_health(&mut self) {
        for id in self.objects.clone() {
            let present = self.on_disk(&id);
            self.min_healthy = self.min_healthy.min(present);
            if present < usize::from(self.config.k) {
                self.lost.insert(id);
            }
        }
    }

    /// New holders that are up rebuild and acknowledge the shards ordered to them in an
    /// earlier epoch, if `k` other shards can be read from nodes that are up.
    fn acknowledge_repairs(&mut self) {
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
    fn seed(&mut self, base: u64) {
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
    fn judge(&mut self) {
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

    fn count(&self, key: Digest) -> u64 {
        self.state
            .get(&key)
            .and_then(|v| decode_u64(v).ok())
            .unwrap_or(0)
    }

    /// The figures at the end of the run.
    pub(super) fn finish(mut self) -> Report {
        self.check_health();
        let full = usize::from(self.config.k + self.config.m);
        self.report.objects_lost = self.lost.len() as u64;
        self.report.min_healthy_shards = self.min_healthy as u64;
        self.report.objects_at_full_strength = self
            .objects
            .iter()
            .filter(|id| self.record(id).healthy_count() == full && self.on_disk(id) == full)
            .count() as u64;
        self.report.open_repair_orders = self.open_orders.len() as u64;
        for member in 0..self.keys.len() as u32 {
            let audits = self
                .state
                .get(&keys::audit_record(member))
                .and_then(|v| AuditRecord::decode(v).ok())
                .unwrap_or_default();
            self.report.audits_passed += audits.passed;
            self.report.audits_failed += audits.failed;
            self.report.node_reports.push(NodeReport {
                member,
                domain: self.env.domains[member as usize].clone(),
                up: self.up[member as usize],
                shards_on_disk: self.disks[member as usize].len() as u64,
                shards_placed: self.count(keys::held_count(member)),
                audits_passed: audits.passed,
                audits_failed: audits.failed,
                reputation_percent: audits.reputation_percent(),
            });
        }
        self.report
    }
}
