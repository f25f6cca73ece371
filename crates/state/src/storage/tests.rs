//! The storage module against an in-memory state: placement, space, acknowledgements,
//! deletion and the upload window, each refusal with its reason in the log.

use super::{
    UPLOAD_WINDOW_MS,
    records::{NodeSpace, ObjectRecord, ObjectStatus, decode_held},
};
use crate::{BlockEffects, Env, apply_to_map, keys, stored::decode_u64};
use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use std::collections::BTreeMap;
use welkin_types::{
    Block, ChainParams, Detachable, Digest, LogEntry, Outcome, Payload, Sender, Transaction,
    hash_parts,
    storage::{ObjectManifest, StorageOp},
};

struct Cluster {
    env: Env,
    nodes: Vec<PrivateKey>,
    state: BTreeMap<Digest, Vec<u8>>,
    height: u64,
    now: u64,
    nonce: u64,
}

impl Cluster {
    fn new(nodes: usize) -> Cluster {
        let keys: Vec<PrivateKey> = (0..nodes as u64).map(PrivateKey::from_seed).collect();
        Cluster {
            env: Env {
                cluster_id: hash_parts(&[b"storage test"]),
                params: ChainParams::default(),
                members: keys.iter().map(|k| k.public_key()).collect(),
                retired: Vec::new(),
                threshold: 3,
                domains: (0..nodes).map(|i| format!("zone-{i}")).collect(),
                cluster_key: None,
                membership: None,
            },
            nodes: keys,
            state: BTreeMap::new(),
            height: 0,
            now: 1_000,
            nonce: 0,
        }
    }

    /// Runs one op in its own block, `elapsed_ms` after the last; returns the log entry and
    /// the block's effects.
    fn run_at(
        &mut self,
        elapsed_ms: u64,
        key: &PrivateKey,
        op: StorageOp,
    ) -> (LogEntry, BlockEffects) {
        self.height += 1;
        self.now += elapsed_ms;
        self.nonce += 1;
        let tx = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: self.nonce,
            expiry_ms: self.now + 60_000,
            payload: Payload::Storage(Box::new(op)),
        }
        .sign(key, &self.env.cluster_id);
        let block = Block::new(hash_parts(&[b"p"]), self.height, self.now, vec![tx]);
        let effects = apply_to_map(&self.env, &mut self.state, &block);
        let entry = welkin_types::decode::<LogEntry>(&effects.log_entries[0]).expect("decodes");
        assert!(
            entry
                .tx
                .tx
                .payload
                .detachable()
                .is_none_or(|v| !v.is_attached()),
            "the log never holds a sealed key"
        );
        (entry, effects)
    }

    fn run(&mut self, key: &PrivateKey, op: StorageOp) -> (LogEntry, BlockEffects) {
        self.run_at(1_000, key, op)
    }

    fn ok(&mut self, key: &PrivateKey, op: StorageOp) -> BlockEffects {
        let (entry, effects) = self.run(key, op);
        assert_eq!(entry.outcome, Outcome::Applied, "{}", entry.detail);
        effects
    }

    fn refused(&mut self, key: &PrivateKey, op: StorageOp) -> String {
        let (entry, _) = self.run(key, op);
        assert_eq!(entry.outcome, Outcome::Rejected);
        entry.detail
    }

    /// Runs `op`, which must be refused with a reason that contains `reason`.
    fn refuses(&mut self, key: &PrivateKey, op: StorageOp, reason: &str) {
        let detail = self.refused(key, op);
        assert!(detail.contains(reason), "{detail}");
    }

    fn offer_all(&mut self, capacity_bytes: u64) {
        for node in self.nodes.clone() {
            self.ok(&node, StorageOp::Offer { capacity_bytes });
        }
    }

    fn space(&self, member: u32) -> NodeSpace {
        self.state
            .get(&keys::storage_node(member))
            .map(|v| NodeSpace::decode(v).expect("decodes"))
            .unwrap_or_default()
    }

    fn record(&self, id: &Digest) -> Option<ObjectRecord> {
        self.state
            .get(&keys::object(id))
            .map(|v| ObjectRecord::decode(v).expect("decodes"))
    }

    fn count(&self, key: Digest) -> u64 {
        self.state
            .get(&key)
            .map(|v| decode_u64(v).expect("decodes"))
            .unwrap_or(0)
    }

    /// Every member's acknowledged shards, from its dense list.
    fn held(&self, member: u32) -> Vec<(Digest, u16)> {
        (0..self.count(keys::held_count(member)))
            .map(|slot| decode_held(&self.state[&keys::held_at(member, slot)]).expect("decodes"))
            .collect()
    }
}

fn manifest(size: u64, tag: u8) -> ObjectManifest {
    ObjectManifest {
        size,
        k: 2,
        m: 2,
        segment_bytes: 1024 * 1024,
        roots: (0..4u8).map(|i| hash_parts(&[&[tag, i]])).collect(),
        sealed_key: Detachable::new(vec![tag; 80]),
        label: format!("object {tag}"),
    }
}

fn owner() -> PrivateKey {
    PrivateKey::from_seed(1_000)
}

#[test]
fn a_put_is_placed_reserved_and_stored_once_every_holder_acknowledges() {
    let mut c = Cluster::new(4);
    c.offer_all(1 << 30);
    let object = manifest(3 << 20, 1);
    let id = object.id();
    let shard_bytes = object.shard_bytes();
    c.ok(&owner(), StorageOp::Put(Box::new(object)));
    let record = c.record(&id).expect("recorded");
    assert_eq!(record.status, ObjectStatus::Pending);
    let mut placed = record.placement.clone();
    placed.sort();
    assert_eq!(placed, vec![0, 1, 2, 3], "one shard per node and zone");
    for member in 0..4 {
        assert_eq!(c.space(member).reserved, shard_bytes);
    }
    assert_eq!(c.count(keys::owned_count(&owner().public_key())), 1);
    for (shard, member) in record.placement.iter().enumerate() {
        let node = c.nodes[*member as usize].clone();
        c.ok(
            &node,
            StorageOp::Stored {
                object: id,
                shards: vec![shard as u16],
            },
        );
        let expected = if shard == 3 {
            ObjectStatus::Stored
        } else {
            ObjectStatus::Pending
        };
        assert_eq!(c.record(&id).expect("recorded").status, expected);
        assert_eq!(c.held(*member), vec![(id, shard as u16)]);
    }
    for member in 0..4 {
        let space = c.space(member);
        assert_eq!((space.used, space.reserved), (shard_bytes, 0));
    }
    // A repeated acknowledgement changes nothing.
    let first = record.placement[0];
    let node = c.nodes[first as usize].clone();
    let before = c.space(first);
    c.ok(
        &node,
        StorageOp::Stored {
            object: id,
            shards: vec![0],
        },
    );
    assert_eq!(c.space(first), before);
    assert_eq!(c.held(first).len(), 1);
}

#[test]
fn a_holder_declares_lost_shards_and_they_are_marked_lost_at_once() {
    let mut c = Cluster::new(4);
    c.offer_all(1 << 30);
    let object = manifest(3 << 20, 1);
    let id = object.id();
    c.ok(&owner(), StorageOp::Put(Box::new(object)));
    let record = c.record(&id).expect("recorded");
    let (holder, other) = (record.placement[1], record.placement[2]);
    let holder_key = c.nodes[holder as usize].clone();
    // Not yet stored: declaring it lost changes nothing (the upload window handles it).
    c.ok(
        &holder_key,
        StorageOp::Lost {
            object: id,
            shards: vec![1],
        },
    );
    assert_eq!(c.record(&id).expect("recorded").lost, 0);
    for (shard, member) in record.placement.iter().enumerate() {
        let node = c.nodes[*member as usize].clone();
        c.ok(
            &node,
            StorageOp::Stored {
                object: id,
                shards: vec![shard as u16],
            },
        );
    }
    // Only the shard's own holder may declare it lost, and only a node.
    let other_key = c.nodes[other as usize].clone();
    c.refuses(
        &other_key,
        StorageOp::Lost {
            object: id,
            shards: vec![1],
        },
        "is placed on node",
    );
    c.refuses(
        &owner(),
        StorageOp::Lost {
            object: id,
            shards: vec![1],
        },
        "only a cluster node",
    );
    assert_eq!(c.record(&id).expect("recorded").lost, 0);
    c.ok(
        &holder_key,
        StorageOp::Lost {
            object: id,
            shards: vec![1],
        },
    );
    let after = c.record(&id).expect("recorded");
    assert_eq!(after.lost, 1 << 1, "the declared shard is lost");
    assert_eq!(after.healthy_count(), 3);
    assert_eq!(c.count(keys::degraded_count()), 1, "listed for repair");
    // Declaring it again marks nothing more (the block's repair sweep may have ordered its
    // rebuild meanwhile, which changes the record in its own way).
    c.ok(
        &holder_key,
        StorageOp::Lost {
            object: id,
            shards: vec![1],
        },
    );
    assert_eq!(c.record(&id).expect("recorded").lost, after.lost);
    assert_eq!(c.count(keys::degraded_count()), 1);
}

#[test]
fn acknowledgements_and_offers_come_only_from_the_right_node() {
    let mut c = Cluster::new(4);
    c.refuses(
        &owner(),
        StorageOp::Offer { capacity_bytes: 10 },
        "only a cluster node may offer",
    );
    c.offer_all(1 << 30);
    let object = manifest(5, 2);
    let id = object.id();
    c.ok(&owner(), StorageOp::Put(Box::new(object)));
    let record = c.record(&id).expect("recorded");
    let wrong = record.placement[1];
    let node = c.nodes[wrong as usize].clone();
    c.refuses(
        &node,
        StorageOp::Stored {
            object: id,
            shards: vec![0],
        },
        "is placed on node",
    );
    c.refuses(
        &node,
        StorageOp::Stored {
            object: id,
            shards: vec![9],
        },
        "has 4 shards, not 10",
    );
    c.refuses(
        &owner(),
        StorageOp::Stored {
            object: id,
            shards: vec![0],
        },
        "only a cluster node",
    );
    assert_eq!(c.record(&id).expect("recorded").stored, 0);
    // A node cannot shrink below what it holds.
    c.refuses(
        &node,
        StorageOp::Offer { capacity_bytes: 10 },
        "holds or has reserved",
    );
}

#[test]
fn a_put_that_does_not_fit_is_refused_with_the_free_space_and_reserves_nothing() {
    let mut c = Cluster::new(4);
    c.offer_all(10 << 20);
    // 3 nodes have room, the fourth offered almost nothing.
    let small = c.nodes[3].clone();
    c.ok(
        &small,
        StorageOp::Offer {
            capacity_bytes: 1000,
        },
    );
    let object = manifest(8 << 20, 3);
    let id = object.id();
    let detail = c.refused(&owner(), StorageOp::Put(Box::new(object.clone())));
    assert!(detail.contains("not enough free space"), "{detail}");
    assert!(detail.contains("3 of the cluster's 4 nodes"), "{detail}");
    assert!(c.record(&id).is_none());
    for member in 0..4 {
        assert_eq!(c.space(member).reserved, 0);
    }
    // A duplicate put of a stored object is refused too.
    c.ok(
        &small,
        StorageOp::Offer {
            capacity_bytes: 10 << 20,
        },
    );
    c.ok(&owner(), StorageOp::Put(Box::new(object.clone())));
    c.refuses(&owner(), StorageOp::Put(Box::new(object)), "already exists");
}

#[test]
fn deleting_frees_the_space_destroys_the_key_and_tells_nodes_to_drop_shards() {
    let mut c = Cluster::new(4);
    c.offer_all(1 << 30);
    let keep = manifest(1 << 20, 4);
    let object = manifest(2 << 20, 5);
    let id = object.id();
    c.ok(&owner(), StorageOp::Put(Box::new(keep.clone())));
    c.ok(&owner(), StorageOp::Put(Box::new(object)));
    let put_tx = c.record(&id).expect("recorded").put_tx;
    for target in [keep.id(), id] {
        let record = c.record(&target).expect("recorded");
        for (shard, member) in record.placement.iter().enumerate() {
            let node = c.nodes[*member as usize].clone();
            c.ok(
                &node,
                StorageOp::Stored {
                    object: target,
                    shards: vec![shard as u16],
                },
            );
        }
    }
    let stranger = PrivateKey::from_seed(77);
    c.refuses(
        &stranger,
        StorageOp::Delete { object: id },
        "only its owner may delete it",
    );
    let effects = c.ok(&owner(), StorageOp::Delete { object: id });
    assert_eq!(
        effects.shredded,
        vec![put_tx],
        "the sealed key is destroyed"
    );
    assert_eq!(effects.objects_removed, vec![id]);
    assert!(c.record(&id).is_none());
    for member in 0..4 {
        assert_eq!(c.space(member).used, keep.shard_bytes());
        assert!(
            c.held(member)
                .iter()
                .all(|(object, _)| *object == keep.id())
        );
        assert_eq!(c.held(member).len(), 1);
    }
    assert_eq!(c.count(keys::owned_count(&owner().public_key())), 1);
    assert_eq!(
        c.state[&keys::owned_at(&owner().public_key(), 0)],
        keep.id().as_ref().to_vec()
    );
    c.refuses(&owner(), StorageOp::Delete { object: id }, "no object");
}

#[test]
fn the_upload_window_settles_partial_uploads() {
    let mut c = Cluster::new(4);
    c.offer_all(1 << 30);
    let readable = manifest(1 << 20, 6);
    let lost = manifest(1 << 20, 7);
    c.ok(&owner(), StorageOp::Put(Box::new(readable.clone())));
    c.ok(&owner(), StorageOp::Put(Box::new(lost.clone())));
    // Two shards (k) of the first arrive, one of the second.
    let record = c.record(&readable.id()).expect("recorded");
    for shard in 0..2 {
        let node = c.nodes[record.placement[shard] as usize].clone();
        c.ok(
            &node,
            StorageOp::Stored {
                object: readable.id(),
                shards: vec![shard as u16],
            },
        );
    }
    let record = c.record(&lost.id()).expect("recorded");
    let node = c.nodes[record.placement[0] as usize].clone();
    c.ok(
        &node,
        StorageOp::Stored {
            object: lost.id(),
            shards: vec![0],
        },
    );
    // Any transaction after the window closes settles both.
    let (_, effects) = c.run_at(
        UPLOAD_WINDOW_MS,
        &c.nodes[0].clone(),
        StorageOp::Offer {
            capacity_bytes: 1 << 30,
        },
    );
    assert_eq!(effects.objects_removed, vec![lost.id()]);
    assert!(c.record(&lost.id()).is_none());
    let record = c.record(&readable.id()).expect("kept");
    assert_eq!(record.status, ObjectStatus::Degraded);
    // The two shards that never arrived count as lost; the same block orders the first
    // repair, which reserves space on its new holder.
    assert_eq!(record.lost, 0b1100);
    assert_eq!(c.count(keys::degraded_count()), 1);
    let order =
        crate::storage::repair::RepairOrder::decode(&c.state[&keys::repair(&readable.id())])
            .expect("an order");
    assert_eq!(order.shard, 2);
    let shard_bytes = readable.shard_bytes();
    for member in 0..4u32 {
        let space = c.space(member);
        let reserved = if member == order.member {
            shard_bytes
        } else {
            0
        };
        assert_eq!(space.reserved, reserved, "member {member}");
        let holds = record
            .placement
            .iter()
            .take(2)
            .filter(|m| **m == member)
            .count() as u64;
        assert_eq!(space.used, holds * shard_bytes, "member {member}");
    }
}

mod audits {
    use super::*;
    use crate::storage::audit::{
        AUDIT_INTERVAL, AuditEpoch, AuditRecord, Challenge, ChallengeStatus,
    };
    use commonware_cryptography::bls12381::{
        dkg::feldman_desmedt::deal_anonymous,
        primitives::{group::Share, ops::threshold, sharing::Mode},
    };
    use commonware_utils::{N3f1, test_rng};
    use welkin_types::{CertifiedCheckpoint, Checkpoint, Variant, namespace, storage::Verdict};

    struct Audited {
        c: Cluster,
        shares: Vec<Share>,
        sharing: welkin_types::Sharing,
    }

    impl Audited {
        /// Four nodes with a cluster key, and two stored objects.
        fn new() -> Audited {
            Audited::with_nodes(4)
        }

        /// `nodes` nodes with a cluster key, and two stored objects.
        fn with_nodes(nodes: u32) -> Audited {
            let (sharing, shares) = deal_anonymous::<Variant, N3f1>(
                test_rng(),
                Mode::NonZeroCounter,
                std::num::NonZeroU32::new(nodes).expect("nodes"),
            );
            let mut c = Cluster::new(nodes as usize);
            c.env.cluster_key = Some(*sharing.public());
            c.offer_all(1 << 30);
            for tag in [10, 11] {
                let object = manifest(1 << 20, tag);
                c.ok(&owner(), StorageOp::Put(Box::new(object.clone())));
                let record = c.record(&object.id()).expect("recorded");
                for (shard, member) in record.placement.iter().enumerate() {
                    let node = c.nodes[*member as usize].clone();
                    c.ok(
                        &node,
                        StorageOp::Stored {
                            object: object.id(),
                            shards: vec![shard as u16],
                        },
                    );
                }
            }
            Audited { c, shares, sharing }
        }

        fn checkpoint(&self, height: u64, shares: &[Share]) -> CertifiedCheckpoint {
            let checkpoint = Checkpoint {
                height,
                state_root: hash_parts(&[b"root", &height.to_be_bytes()]),
                log_size: height,
                log_root: hash_parts(&[b"log"]),
            };
            let message = checkpoint.message(&self.c.env.cluster_id);
            let partials: Vec<_> = shares
                .iter()
                .map(|s| threshold::sign_message::<Variant>(s, namespace::CHECKPOINT, &message))
                .collect();
            let signature = threshold::recover::<Variant, _>(
                &self.sharing,
                &partials,
                &commonware_parallel::Sequential,
            )
            .expect("three partials recover");
            CertifiedCheckpoint {
                checkpoint,
                signature,
            }
        }

        /// Moves the chain to `height - 1` so that the next block is at `height`.
        fn at(&mut self, height: u64) {
            self.c.height = height - 1;
        }

        fn seed(&mut self, height: u64) {
            let required = self.sharing.required() as usize;
            let checkpoint = self.checkpoint(height, &self.shares[..required]);
            self.at(height + 2);
            let node = self.c.nodes[0].clone();
            self.c.ok(&node, StorageOp::AuditSeed(Box::new(checkpoint)));
        }

        fn challenge(&self, member: u32) -> Challenge {
            Challenge::decode(&self.c.state[&keys::audit_challenge(member)]).expect("decodes")
        }

        fn epoch(&self) -> AuditEpoch {
            AuditEpoch::decode(&self.c.state[&keys::audit_epoch()]).expect("decodes")
        }

        fn record(&self, member: u32) -> AuditRecord {
            AuditRecord::decode(&self.c.state[&keys::audit_record(member)]).expect("decodes")
        }

        fn verdict(&mut self, voter: u32, member: u32, passed: bool) {
            let challenge = self.challenge(member);
            let node = self.c.nodes[voter as usize].clone();
            self.c.ok(
                &node,
                StorageOp::AuditVerdicts {
                    epoch: challenge.epoch,
                    verdicts: vec![Verdict {
                        member,
                        object: challenge.object,
                        shard: challenge.shard,
                        passed,
                        reason: if passed {
                            String::new()
                        } else {
                            format!("forged by {member}")
                        },
                    }],
                },
            );
        }
    }

    #[test]
    fn seeds_must_be_the_epochs_certified_checkpoint() {
        let mut a = Audited::new();
        let node = a.c.nodes[1].clone();
        // Not a multiple of the interval.
        let odd = a.checkpoint(AUDIT_INTERVAL + 1, &a.shares[..3]);
        a.at(AUDIT_INTERVAL + 2);
        let detail = a.c.refused(&node, StorageOp::AuditSeed(Box::new(odd)));
        assert!(detail.contains("multiples of"), "{detail}");
        // Too old.
        let old = a.checkpoint(AUDIT_INTERVAL, &a.shares[..3]);
        a.at(3 * AUDIT_INTERVAL);
        let detail =
            a.c.refused(&node, StorageOp::AuditSeed(Box::new(old.clone())));
        assert!(detail.contains("too old"), "{detail}");
        // A signature that is not the cluster's.
        let mut forged = old.clone();
        forged.checkpoint.state_root = hash_parts(&[b"another root"]);
        a.at(AUDIT_INTERVAL + 3);
        let detail = a.c.refused(&node, StorageOp::AuditSeed(Box::new(forged)));
        assert!(detail.contains("does not verify"), "{detail}");
        // Not a node.
        let detail =
            a.c.refused(&owner(), StorageOp::AuditSeed(Box::new(old.clone())));
        assert!(detail.contains("only a cluster node"), "{detail}");
        a.c.ok(&node, StorageOp::AuditSeed(Box::new(old.clone())));
        let detail = a.c.refused(&node, StorageOp::AuditSeed(Box::new(old)));
        assert!(detail.contains("already started"), "{detail}");
    }

    #[test]
    fn every_holder_is_challenged_and_f_plus_one_verdicts_decide() {
        let mut a = Audited::new();
        a.seed(AUDIT_INTERVAL);
        let epoch = a.epoch();
        assert_eq!(epoch.epoch, 1);
        assert_eq!(epoch.members, vec![0, 1, 2, 3], "every node holds shards");
        for member in 0..4 {
            let challenge = a.challenge(member);
            let object = a.c.record(&challenge.object).expect("a stored object");
            assert_eq!(object.placement[usize::from(challenge.shard)], member);
            assert_eq!(challenge.status, ChallengeStatus::Open);
        }
        // Member 0 passes with two verdicts (f + 1 = 2); its own verdict does not count.
        a.verdict(0, 0, true);
        a.verdict(1, 0, true);
        assert_eq!(a.challenge(0).status, ChallengeStatus::Open);
        a.verdict(1, 0, true); // a repeated voter counts once
        assert_eq!(a.challenge(0).status, ChallengeStatus::Open);
        a.verdict(2, 0, true);
        assert_eq!(a.challenge(0).status, ChallengeStatus::Passed);
        assert_eq!(a.record(0).passed, 1);
        assert_eq!(a.record(0).reputation_percent(), 100);
        // Member 1's proof is found forged by two nodes: it fails, and its shard is lost.
        a.verdict(0, 1, false);
        a.verdict(2, 1, false);
        let failed = a.challenge(1);
        assert_eq!(failed.status, ChallengeStatus::Failed);
        assert_eq!(failed.reason, "forged by 1");
        let object = a.c.record(&failed.object).expect("kept");
        assert_eq!(object.lost, 1 << failed.shard);
        assert_eq!(object.healthy_count(), 3);
        assert_eq!(a.c.count(keys::degraded_count()), 1);
        let record = a.record(1);
        assert_eq!((record.failed, record.consecutive_failures), (1, 1));
        assert_eq!(record.reputation_percent(), 0);
        // Members 2 and 3 never answer: the next epoch fails them as unanswered.
        a.seed(2 * AUDIT_INTERVAL);
        for member in [2, 3] {
            let record = a.record(member);
            assert_eq!(record.failed, 1, "member {member}");
            assert!(
                record.last_failure.contains("within epoch 1"),
                "{}",
                record.last_failure
            );
        }
        assert_eq!(a.epoch().epoch, 2);
        // Verdicts for an old epoch are refused.
        let node = a.c.nodes[0].clone();
        let detail = a.c.refused(
            &node,
            StorageOp::AuditVerdicts {
                epoch: 1,
                verdicts: vec![Verdict {
                    member: 1,
                    object: failed.object,
                    shard: failed.shard,
                    passed: true,
                    reason: String::new(),
                }],
            },
        );
        assert!(detail.contains("current audit epoch is 2"), "{detail}");
    }

    #[test]
    fn a_challenge_on_an_object_deleted_mid_epoch_blames_nobody() {
        let mut a = Audited::new();
        a.seed(AUDIT_INTERVAL);
        let object = a.challenge(1).object;
        let holders: Vec<u32> = a
            .epoch()
            .members
            .iter()
            .copied()
            .filter(|m| a.challenge(*m).object == object)
            .collect();
        assert!(holders.contains(&1));
        let members = a.epoch().members.clone();
        a.c.ok(&owner(), StorageOp::Delete { object });
        // Nobody answers (nobody can): the next epoch does not fail the holders of the
        // deleted object, and still fails the others as unanswered.
        a.seed(2 * AUDIT_INTERVAL);
        for member in members {
            let record = AuditRecord::decode(
                a.c.state
                    .get(&keys::audit_record(member))
                    .map(Vec::as_slice)
                    .unwrap_or(&AuditRecord::default().encode()),
            )
            .expect("decodes");
            let expected = u64::from(!holders.contains(&member));
            assert_eq!(record.failed, expected, "member {member}");
        }
    }

    #[test]
    fn deleting_a_degraded_object_leaves_the_degraded_list() {
        let mut a = Audited::new();
        a.seed(AUDIT_INTERVAL);
        a.verdict(0, 1, false);
        a.verdict(2, 1, false);
        let object = a.challenge(1).object;
        assert_eq!(a.c.count(keys::degraded_count()), 1);
        a.c.ok(&owner(), StorageOp::Delete { object });
        assert_eq!(a.c.count(keys::degraded_count()), 0);
    }

    #[test]
    fn a_failed_audit_orders_a_repair_elsewhere_and_the_acknowledgement_heals() {
        use crate::storage::repair::{ORDER_HEIGHTS, RepairOrder};
        let mut a = Audited::with_nodes(5);
        a.seed(AUDIT_INTERVAL);
        let epoch = a.epoch();
        let bad = epoch.members[0];
        let voters: Vec<u32> = (0..5).filter(|m| *m != bad).take(2).collect();
        for voter in &voters {
            a.verdict(*voter, bad, false);
        }
        let challenge = a.challenge(bad);
        let id = challenge.object;
        // The next block's repair sweep orders one repair, to a node that holds no healthy
        // shard of the object (the fifth node), reserving its space.
        let node0 = a.c.nodes[0].clone();
        a.c.ok(
            &node0,
            StorageOp::Offer {
                capacity_bytes: 1 << 30,
            },
        );
        let order = RepairOrder::decode(&a.c.state[&keys::repair(&id)]).expect("ordered");
        let record = a.c.record(&id).expect("kept");
        assert_eq!(order.shard, challenge.shard);
        assert_eq!(order.from_member, bad);
        assert_ne!(order.member, bad);
        assert!(
            !record
                .placement
                .iter()
                .enumerate()
                .any(|(s, m)| s != usize::from(order.shard) && *m == order.member)
        );
        assert_eq!(record.placement[usize::from(order.shard)], order.member);
        assert!(!record.is_stored(usize::from(order.shard)));
        assert_eq!(a.c.count(keys::repairs_count()), 1);
        assert!(
            a.c.held(bad)
                .iter()
                .all(|(o, s)| !(*o == id && *s == order.shard))
        );
        // Nothing more is ordered for it while the order is open.
        a.c.ok(
            &node0,
            StorageOp::Offer {
                capacity_bytes: 1 << 30,
            },
        );
        assert_eq!(a.c.count(keys::repairs_count()), 1);
        // The new holder acknowledges the rebuilt shard: healthy again.
        let node = a.c.nodes[order.member as usize].clone();
        a.c.ok(
            &node,
            StorageOp::Stored {
                object: id,
                shards: vec![order.shard],
            },
        );
        let record = a.c.record(&id).expect("kept");
        assert_eq!(record.lost, 0);
        assert_eq!(record.healthy_count(), 4);
        assert_eq!(a.c.count(keys::degraded_count()), 0);
        assert_eq!(a.c.count(keys::repairs_count()), 0);
        assert!(!a.c.state.contains_key(&keys::repair(&id)));
        let shard_bytes = record.manifest.shard_bytes();
        assert_eq!(a.c.space(order.member).reserved, 0);
        assert!(a.c.space(order.member).used >= shard_bytes);
        let _ = ORDER_HEIGHTS;
    }

    #[test]
    fn an_unanswered_repair_expires_and_backs_off_instead_of_storming() {
        use crate::storage::repair::{ORDER_HEIGHTS, RepairOrder};
        let mut a = Audited::with_nodes(5);
        a.seed(AUDIT_INTERVAL);
        let bad = a.epoch().members[0];
        for voter in (0..5).filter(|m| *m != bad).take(2) {
            a.verdict(voter, bad, false);
        }
        let id = a.challenge(bad).object;
        let node0 = a.c.nodes[0].clone();
        a.c.ok(
            &node0,
            StorageOp::Offer {
                capacity_bytes: 1 << 30,
            },
        );
        let first = RepairOrder::decode(&a.c.state[&keys::repair(&id)]).expect("ordered");
        assert_eq!(first.attempt, 1);
        // Nobody acknowledges: after the deadline the order expires and waits a cooldown.
        let node = a.c.nodes[0].clone();
        a.at(first.deadline + 1);
        a.c.ok(
            &node,
            StorageOp::Offer {
                capacity_bytes: 1 << 30,
            },
        );
        let expired = RepairOrder::decode(&a.c.state[&keys::repair(&id)]).expect("kept");
        assert!(!expired.open);
        assert_eq!(a.c.count(keys::repairs_count()), 0);
        assert!(expired.not_before > first.deadline + 1);
        // Blocks during the cooldown order nothing, however many there are.
        for _ in 0..20 {
            a.c.ok(
                &node,
                StorageOp::Offer {
                    capacity_bytes: 1 << 30,
                },
            );
            assert_eq!(a.c.count(keys::repairs_count()), 0);
        }
        // After it, a second attempt, with a longer cooldown if it fails too.
        a.at(expired.not_before);
        a.c.ok(
            &node,
            StorageOp::Offer {
                capacity_bytes: 1 << 30,
            },
        );
        let second = RepairOrder::decode(&a.c.state[&keys::repair(&id)]).expect("ordered");
        assert!(second.open);
        assert_eq!(second.attempt, 2);
        assert_eq!(second.deadline, second.height + ORDER_HEIGHTS);
    }

    fn history(c: &Cluster, id: &Digest) -> crate::storage::history::ObjectHistory {
        crate::storage::history::ObjectHistory::decode(&c.state[&keys::object_history(id)])
            .expect("decodes")
    }

    #[test]
    fn an_objects_history_records_a_failed_audit_its_repair_and_the_repairs_completion() {
        use crate::storage::{history::EventKind, repair::RepairOrder};
        let mut a = Audited::with_nodes(5);
        a.seed(AUDIT_INTERVAL);
        let bad = a.epoch().members[0];
        let challenge = a.challenge(bad);
        let id = challenge.object;
        for voter in (0..5).filter(|m| *m != bad).take(2) {
            a.verdict(voter, bad, false);
        }
        let failed_at = a.c.height;
        let events = history(&a.c, &id).events;
        assert_eq!(events.len(), 1, "{events:?}");
        assert_eq!(events[0].kind, EventKind::AuditFailed);
        assert_eq!(
            (events[0].epoch, events[0].shard, events[0].member),
            (1, challenge.shard, bad)
        );
        assert_eq!(events[0].height, failed_at);
        assert_eq!(events[0].reason, format!("forged by {bad}"));
        // The next block orders the repair.
        let node0 = a.c.nodes[0].clone();
        a.c.ok(
            &node0,
            StorageOp::Offer {
                capacity_bytes: 1 << 30,
            },
        );
        let order = RepairOrder::decode(&a.c.state[&keys::repair(&id)]).expect("ordered");
        let events = history(&a.c, &id).events;
        assert_eq!(events.len(), 2);
        assert_eq!(events[0].kind, EventKind::RepairOrdered, "newest first");
        assert_eq!(
            (events[0].height, events[0].shard, events[0].member),
            (order.height, order.shard, order.member)
        );
        assert!(
            events[0]
                .reason
                .contains(&format!("replacing member {bad}")),
            "{}",
            events[0].reason
        );
        // The new holder acknowledges: the repair is done.
        let node = a.c.nodes[order.member as usize].clone();
        a.c.ok(
            &node,
            StorageOp::Stored {
                object: id,
                shards: vec![order.shard],
            },
        );
        let events = history(&a.c, &id).events;
        let kinds: Vec<EventKind> = events.iter().map(|e| e.kind).collect();
        assert_eq!(
            kinds,
            vec![
                EventKind::RepairDone,
                EventKind::RepairOrdered,
                EventKind::AuditFailed
            ]
        );
        assert_eq!(
            (events[0].height, events[0].member),
            (a.c.height, order.member)
        );
        // Passing audits are recorded too, on the history of the object they concern.
        let passer = a.epoch().members[1];
        let passed = a.challenge(passer);
        for voter in (0..5).filter(|m| *m != passer).take(2) {
            a.verdict(voter, passer, true);
        }
        let newest = history(&a.c, &passed.object).events[0].clone();
        assert_eq!(newest.kind, EventKind::AuditPassed);
        assert_eq!((newest.member, newest.shard), (passer, passed.shard));
        assert!(newest.reason.is_empty());
    }

    #[test]
    fn an_expired_repair_is_in_the_history() {
        use crate::storage::{history::EventKind, repair::RepairOrder};
        let mut a = Audited::with_nodes(5);
        a.seed(AUDIT_INTERVAL);
        let bad = a.epoch().members[0];
        for voter in (0..5).filter(|m| *m != bad).take(2) {
            a.verdict(voter, bad, false);
        }
        let id = a.challenge(bad).object;
        let node0 = a.c.nodes[0].clone();
        let offer = StorageOp::Offer {
            capacity_bytes: 1 << 30,
        };
        a.c.ok(&node0, offer.clone());
        let order = RepairOrder::decode(&a.c.state[&keys::repair(&id)]).expect("ordered");
        a.at(order.deadline + 1);
        a.c.ok(&node0, offer);
        let newest = history(&a.c, &id).events[0].clone();
        assert_eq!(newest.kind, EventKind::RepairExpired);
        assert_eq!(
            (newest.height, newest.member),
            (order.deadline + 1, order.member)
        );
        assert!(
            newest
                .reason
                .contains(&format!("not acknowledged by height {}", order.deadline)),
            "{}",
            newest.reason
        );
    }

    #[test]
    fn an_objects_history_keeps_the_newest_64_events() {
        use crate::storage::history::{EventKind, HISTORY_LEN, HistoryEvent, ObjectHistory};
        let mut a = Audited::new();
        a.seed(AUDIT_INTERVAL);
        let challenge = a.challenge(0);
        let id = challenge.object;
        let old = ObjectHistory {
            events: (0..HISTORY_LEN as u64)
                .rev()
                .map(|height| HistoryEvent {
                    kind: EventKind::AuditPassed,
                    height,
                    epoch: 0,
                    shard: 0,
                    member: 1,
                    reason: String::new(),
                })
                .collect(),
        };
        a.c.state.insert(keys::object_history(&id), old.encode());
        a.verdict(1, 0, false);
        a.verdict(2, 0, false);
        let events = history(&a.c, &id).events;
        assert_eq!(events.len(), HISTORY_LEN);
        assert_eq!(events[0].kind, EventKind::AuditFailed);
        assert_eq!(events[1].height, HISTORY_LEN as u64 - 1);
        assert_eq!(
            events[HISTORY_LEN - 1].height,
            1,
            "the oldest event is dropped"
        );
    }

    #[test]
    fn deleting_an_object_deletes_its_history() {
        let mut a = Audited::new();
        a.seed(AUDIT_INTERVAL);
        a.verdict(0, 1, false);
        a.verdict(2, 1, false);
        let object = a.challenge(1).object;
        assert!(a.c.state.contains_key(&keys::object_history(&object)));
        a.c.ok(&owner(), StorageOp::Delete { object });
        assert!(!a.c.state.contains_key(&keys::object_history(&object)));
        assert!(!a.c.state.contains_key(&keys::object(&object)));
    }

    #[test]
    fn a_verdict_settled_after_a_deletion_leaves_no_history() {
        let mut a = Audited::new();
        a.seed(AUDIT_INTERVAL);
        let object = a.challenge(0).object;
        a.c.ok(&owner(), StorageOp::Delete { object });
        a.verdict(1, 0, false);
        a.verdict(2, 0, false);
        assert_eq!(a.challenge(0).status, ChallengeStatus::Failed);
        assert!(!a.c.state.contains_key(&keys::object_history(&object)));
        assert!(!a.c.state.contains_key(&keys::object(&object)));
    }

    /// Epochs of audits with seeded randomness: f byzantine voters vote against honest
    /// holders and for a lying holder, in random order, and a flapping holder fails every
    /// other epoch. Whatever the order: an honest holder is never failed, the liar is failed
    /// in every epoch it is challenged, each object gets at most one repair order per epoch,
    /// and the whole state is a pure function of the blocks (a replica fed the same blocks
    /// ends byte-identical).
    #[test]
    fn byzantine_voters_decide_nothing_and_liars_are_caught_every_epoch() {
        for seed in 0..6u64 {
            // A small xorshift: the schedule's randomness, seeded per case.
            let mut state = seed.wrapping_mul(0x9e37_79b9_7f4a_7c15) | 1;
            let mut next = move || {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            };
            let nodes = 7u32; // f = 2
            let f = 2;
            let mut a = Audited::with_nodes(nodes);
            let byzantine: Vec<u32> = vec![5, 6];
            let liar = 5u32; // byzantine too: it cannot prove its shard
            let flapper = 1u32; // honest, but fails every other epoch
            let mut replica_blocks = 0usize;
            for epoch in 1..=6u64 {
                a.seed(epoch * AUDIT_INTERVAL);
                let challenged = a.epoch().members;
                let mut votes: Vec<(u32, u32, bool)> = Vec::new();
                for member in &challenged {
                    let truth = if *member == liar {
                        false
                    } else if *member == flapper {
                        epoch % 2 == 0
                    } else {
                        true
                    };
                    for voter in 0..nodes {
                        if voter == *member {
                            continue;
                        }
                        let vote = if byzantine.contains(&voter) {
                            !truth
                        } else {
                            truth
                        };
                        votes.push((voter, *member, vote));
                    }
                }
                for i in (1..votes.len()).rev() {
                    let j = (next() % (i as u64 + 1)) as usize;
                    votes.swap(i, j);
                }
                // Drop a random share of the honest votes (loss), never so many that fewer
                // than f+1 honest ones remain per holder.
                let mut kept = Vec::new();
                for (voter, member, vote) in votes {
                    let honest_left = kept
                        .iter()
                        .filter(|(v, m, _): &&(u32, u32, bool)| {
                            *m == member && !byzantine.contains(v)
                        })
                        .count();
                    if !byzantine.contains(&voter) && honest_left > f && next() % 2 == 0 {
                        continue;
                    }
                    kept.push((voter, member, vote));
                }
                for (voter, member, vote) in kept {
                    a.verdict(voter, member, vote);
                    replica_blocks += 1;
                }
                for member in &challenged {
                    let challenge = a.challenge(*member);
                    let expected = if *member == liar || (*member == flapper && epoch % 2 == 1) {
                        ChallengeStatus::Failed
                    } else {
                        ChallengeStatus::Passed
                    };
                    assert_eq!(
                        challenge.status, expected,
                        "seed {seed} epoch {epoch} member {member}"
                    );
                }
                // One more block runs the repair sweep: at most one open order per object.
                let node0 = a.c.nodes[0].clone();
                a.c.ok(
                    &node0,
                    StorageOp::Offer {
                        capacity_bytes: 1 << 30,
                    },
                );
                assert!(
                    a.c.count(keys::repairs_count()) <= 2,
                    "two objects, one order each"
                );
            }
            for member in 0..nodes {
                if member == liar
                    || member == flapper
                    || !a.c.state.contains_key(&keys::audit_record(member))
                {
                    continue;
                }
                assert_eq!(
                    a.record(member).failed,
                    0,
                    "honest member {member} never fails"
                );
            }
            assert!(a.record(liar).failed >= 1);
            assert!(replica_blocks > 0);
        }
    }

    /// Two replicas fed the same blocks end with byte-identical state, whatever the seed:
    /// placement, audits and repair read no clock, randomness or map order of their own.
    #[test]
    fn replicas_fed_the_same_blocks_agree_byte_for_byte() {
        let run = || {
            let mut a = Audited::with_nodes(5);
            a.seed(AUDIT_INTERVAL);
            let bad = a.epoch().members[0];
            for voter in (0..5).filter(|m| *m != bad).take(2) {
                a.verdict(voter, bad, false);
            }
            let node0 = a.c.nodes[0].clone();
            a.c.ok(
                &node0,
                StorageOp::Offer {
                    capacity_bytes: 1 << 30,
                },
            );
            a.c.state
        };
        let first = run();
        let second = run();
        assert_eq!(first, second);
        assert!(first.contains_key(&keys::repairs_count()));
    }
}
