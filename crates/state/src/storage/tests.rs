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
                threshold: 3,
                domains: (0..nodes).map(|i| format!("zone-{i}")).collect(),
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
fn acknowledgements_and_offers_come_only_from_the_right_node() {
    let mut c = Cluster::new(4);
    let detail = c.refused(&owner(), StorageOp::Offer { capacity_bytes: 10 });
    assert!(detail.contains("only a cluster node may offer"), "{detail}");
    c.offer_all(1 << 30);
    let object = manifest(5, 2);
    let id = object.id();
    c.ok(&owner(), StorageOp::Put(Box::new(object)));
    let record = c.record(&id).expect("recorded");
    let wrong = record.placement[1];
    let node = c.nodes[wrong as usize].clone();
    let detail = c.refused(
        &node,
        StorageOp::Stored {
            object: id,
            shards: vec![0],
        },
    );
    assert!(detail.contains("is placed on node"), "{detail}");
    let detail = c.refused(
        &node,
        StorageOp::Stored {
            object: id,
            shards: vec![9],
        },
    );
    assert!(detail.contains("has 4 shards, not 10"), "{detail}");
    let detail = c.refused(
        &owner(),
        StorageOp::Stored {
            object: id,
            shards: vec![0],
        },
    );
    assert!(detail.contains("only a cluster node"), "{detail}");
    assert_eq!(c.record(&id).expect("recorded").stored, 0);
    // A node cannot shrink below what it holds.
    let detail = c.refused(&node, StorageOp::Offer { capacity_bytes: 10 });
    assert!(detail.contains("holds or has reserved"), "{detail}");
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
    let detail = c.refused(&owner(), StorageOp::Put(Box::new(object)));
    assert!(detail.contains("already exists"), "{detail}");
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
    let detail = c.refused(&stranger, StorageOp::Delete { object: id });
    assert!(detail.contains("only its owner may delete it"), "{detail}");
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
    let detail = c.refused(&owner(), StorageOp::Delete { object: id });
    assert!(detail.contains("no object"), "{detail}");
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
    let shard_bytes = readable.shard_bytes();
    for member in 0..4u32 {
        let space = c.space(member);
        assert_eq!(space.reserved, 0, "member {member}");
        let holds = record
            .placement
            .iter()
            .take(2)
            .filter(|m| **m == member)
            .count() as u64;
        assert_eq!(space.used, holds * shard_bytes, "member {member}");
    }
}
