//! The simulated cluster: honest nodes that fail, flap and recover around the real state
//! machine (see the parent module).

mod nodes;

use super::{Config, NodeReport, Report};
use commonware_cryptography::{
    Signer as _,
    bls12381::{
        dkg::feldman_desmedt::deal_anonymous,
        primitives::{group::Share, sharing::Mode},
    },
    ed25519::PrivateKey,
};
use commonware_utils::{N3f1, TestRng};
use nodes::{Rng, Role};
use std::collections::{BTreeMap, BTreeSet};
use welkin_state::{
    BlockEffects, Env, apply_to_map, keys,
    storage::{
        audit::{AUDIT_INTERVAL, AuditRecord},
        records::ObjectRecord,
        repair::RepairOrder,
    },
    stored::decode_u64,
};
use welkin_types::{
    Block, ChainParams, Detachable, Digest, LogEntry, Outcome, Payload, Sender, SignedTransaction,
    Transaction, Variant, hash_parts,
    storage::{ObjectManifest, StorageOp},
};

/// Transactions per simulated block (far below the block limits).
const TXS_PER_BLOCK: usize = 256;
/// Blocks run per epoch at most after its verdicts, for the repair sweep to order repairs.
const SWEEP_BLOCKS: u64 = AUDIT_INTERVAL - 4;

/// The state, the nodes' keys and disks, and what was counted so far.
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
            retired: Vec::new(),
            threshold: sharing.required() as u16,
            domains: (0..nodes)
                .map(|i| format!("zone-{}", i % config.domains))
                .collect(),
            cluster_key: Some(*sharing.public()),
            membership: None,
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
        self.declare_missing();
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
