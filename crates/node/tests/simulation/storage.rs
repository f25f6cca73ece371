//! Storage audits and repair on the deterministic runtime: every node runs the real shard
//! service (its store in a temporary directory), proofs and repair blocks travel over the
//! simulated network, and seeds come from certified checkpoints.
//!
//! - A byzantine node whose proofs are forged (one byte flipped, so they still decode), and
//!   which also claims a shard it never received, is caught at its first challenge (within
//!   three audit epochs of the objects being stored) by every honest node, with the reason;
//!   each of its shards is repaired onto an honest node, byte for byte, and the placement,
//!   repair orders and audit records are identical on every honest node.
//! - A node that flaps (down for an epoch, up for an epoch) loses at most one shard per epoch
//!   it misses, repairs are ordered at most once per lost shard (no storm), and every object
//!   ends healthy. Then a node whose disk is replaced declares its missing shards lost at
//!   once, and they are repaired well before audits alone would have found them.

use crate::{harness::*, runner, tamper::Lie};
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _};
use std::{collections::BTreeMap, time::Duration};
use welkin_object::{Encoder, Layout, ObjectKey};
use welkin_shards::ShardId;
use welkin_state::{
    keys,
    storage::{
        audit::{AUDIT_INTERVAL, AuditRecord},
        records::{NodeSpace, ObjectRecord},
        repair::RepairOrder,
    },
};
use welkin_types::{
    Detachable, Digest, Payload, Sender, Transaction,
    storage::{ObjectManifest, StorageOp},
};

/// Two data shards and one parity shard: on four nodes one node holds none, so a lost shard
/// always has somewhere to go.
const LAYOUT: Layout = Layout {
    k: 2,
    m: 1,
    segment_bytes: 64 * 1024,
};
/// Four segments of 64 KiB: blocks of 32 KiB, 128 audit chunks per shard.
const OBJECT_BYTES: u64 = 4 * 64 * 1024 - 4 * 16;

/// An object the simulated client encoded: its manifest and every shard's blocks.
struct Encoded {
    id: Digest,
    manifest: ObjectManifest,
    /// `blocks[shard][segment]`.
    blocks: Vec<Vec<Vec<u8>>>,
    /// `hashes[shard][segment]`.
    hashes: Vec<Vec<[u8; 32]>>,
}

fn encode(which: u64) -> Encoded {
    let mut rng = commonware_utils::TestRng::new(which);
    let key = ObjectKey::generate(&mut rng);
    let plaintext: Vec<u8> = (0..OBJECT_BYTES)
        .map(|i| (i.wrapping_mul(31).wrapping_add(which * 7) % 251) as u8)
        .collect();
    let mut encoder = Encoder::new(LAYOUT, &key, OBJECT_BYTES).expect("a valid layout");
    let shards = LAYOUT.shards();
    let mut blocks = vec![Vec::new(); shards];
    let mut hashes = vec![Vec::new(); shards];
    for segment in 0..LAYOUT.segments(OBJECT_BYTES) {
        let len = LAYOUT.segment_len(OBJECT_BYTES, segment).expect("in range") as usize;
        let start = (segment * u64::from(LAYOUT.segment_bytes - 16)) as usize;
        let encoded = encoder
            .encode_segment(&plaintext[start..start + len])
            .expect("encodes");
        for (shard, block) in encoded.blocks.into_iter().enumerate() {
            blocks[shard].push(block);
            hashes[shard].push(encoded.hashes[shard]);
        }
    }
    let summaries = encoder.finish().expect("finishes");
    let mut manifest = ObjectManifest {
        size: OBJECT_BYTES,
        k: LAYOUT.k,
        m: LAYOUT.m,
        segment_bytes: LAYOUT.segment_bytes,
        roots: summaries.iter().map(|s| Digest::from(s.root)).collect(),
        sealed_key: Detachable::new(vec![0]),
        label: format!("sim-{which}"),
    };
    let id = manifest.id();
    let owner = welkin_sealed::recipient_public_key(&[which as u8 + 1; 32]);
    let sealed = welkin_sealed::seal_to_recipients(&mut rng, &[owner], id.as_ref(), key.expose())
        .expect("seals");
    manifest.sealed_key = Detachable::new(commonware_codec::Encode::encode(&sealed).to_vec());
    Encoded {
        id,
        manifest,
        blocks,
        hashes,
    }
}

/// Signs `op` with `key` as its sender.
fn storage_tx(
    context: &Ctx,
    fixture: &Fixture,
    key: &welkin_types::PrivateKey,
    nonce: u64,
    op: StorageOp,
) -> welkin_types::SignedTransaction {
    Transaction {
        sender: Sender::Key(key.public_key()),
        nonce,
        expiry_ms: welkin_node::now_ms(context) + 60_000,
        payload: Payload::Storage(Box::new(op)),
    }
    .sign(key, &fixture.genesis.cluster_id())
}

async fn record(node: &Node, id: &Digest) -> Option<ObjectRecord> {
    node.value(keys::object(id))
        .await
        .and_then(|v| ObjectRecord::decode(&v).ok())
}

/// Whether every node of `nodes` has a record of every object of `ids`, and each satisfies
/// `good`.
async fn every_record<'a>(
    nodes: impl Iterator<Item = &'a Node>,
    ids: &[Digest],
    good: impl Fn(&ObjectRecord) -> bool,
) -> bool {
    for node in nodes {
        for id in ids {
            if !record(node, id).await.is_some_and(|r| good(&r)) {
                return false;
            }
        }
    }
    true
}

async fn audit_record(node: &Node, member: u32) -> AuditRecord {
    node.value(keys::audit_record(member))
        .await
        .and_then(|v| AuditRecord::decode(&v).ok())
        .unwrap_or_default()
}

async fn repair_order(node: &Node, id: &Digest) -> Option<RepairOrder> {
    node.value(keys::repair(id))
        .await
        .and_then(|v| RepairOrder::decode(&v).ok())
}

/// Polls every 500 ms until `done` holds or `timeout` passes; returns whether it held.
async fn eventually<F, Fut>(context: &Ctx, timeout: Duration, mut done: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = context.current() + timeout;
    loop {
        if done().await {
            return true;
        }
        if context.current() >= deadline {
            return false;
        }
        context.sleep(Duration::from_millis(500)).await;
    }
}

/// Writes shard `shard` of `object` into `node`'s store, as an upload would.
fn store_shard(node: &Node, object: &Encoded, shard: usize) {
    let shards = node.shards().expect("the node runs the storage service");
    let id = ShardId {
        object: object.id.as_ref().try_into().expect("32 bytes"),
        index: shard as u16,
    };
    let blocks = &object.blocks[shard];
    let mut writer = shards
        .store()
        .create(
            id,
            object.manifest.roots[shard]
                .as_ref()
                .try_into()
                .expect("32 bytes"),
            blocks[0].len() as u32,
            blocks[blocks.len() - 1].len() as u32,
            object.hashes[shard].clone(),
        )
        .expect("the shard fits");
    for block in blocks {
        writer.write_block(block).expect("writes");
    }
    writer.finish().expect("the shard matches its root");
}

/// The running node that is member `member` (honest or byzantine).
fn handle_of(cluster: &Cluster, member: u32) -> Option<&Node> {
    cluster.nodes[member as usize]
        .as_ref()
        .or_else(|| cluster.byzantine.get(&(member as usize)))
}

/// Waits for every node's storage offer to be committed.
async fn wait_for_offers(context: &Ctx, nodes: &[Option<Node>], n: usize) {
    let offered = eventually(context, Duration::from_secs(60), || async {
        for node in nodes.iter().flatten() {
            for member in 0..n as u32 {
                let space = node
                    .value(keys::storage_node(member))
                    .await
                    .and_then(|v| NodeSpace::decode(&v).ok())
                    .unwrap_or_default();
                if space.capacity != SIM_STORAGE_BYTES {
                    return false;
                }
            }
        }
        true
    })
    .await;
    assert!(offered, "every node's storage offer is committed");
}

/// A byzantine node forging proofs and claiming a shard it lacks is caught and repaired
/// around; returns a digest of the history (for the replay check) and a summary.
pub(crate) fn audits_catch_a_liar(seed: u64) -> (Digest, String) {
    runner(seed).start(|context| async move {
        let n = 4;
        let liar = 3u32;
        let fixture = Fixture::new(n, seed).with_storage();
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(10, 100)).await;
        let roles: Vec<Role> = (0..n)
            .map(|i| {
                if i as u32 == liar {
                    Role::Lying(Lie::ForgedStorage)
                } else {
                    Role::Honest(0)
                }
            })
            .collect();
        let cluster = start_roles(&context, &net, &fixture, &roles).await;
        let honest: Vec<(usize, Node)> = cluster
            .nodes
            .iter()
            .enumerate()
            .filter_map(|(i, n)| n.clone().map(|n| (i, n)))
            .collect();
        let entry = &honest[0].1;
        wait_for_offers(&context, &cluster.nodes, n).await;

        // The client puts objects until the liar holds at least two shards.
        let mut objects = Vec::new();
        let mut liar_shards = 0;
        for which in 0..8u64 {
            let object = encode(seed * 100 + which);
            let tx = storage_tx(
                &context,
                &fixture,
                &fixture.clients[0],
                which + 1,
                StorageOp::Put(Box::new(object.manifest.clone())),
            );
            let receipt = commit(&context, entry, tx, Duration::from_secs(30))
                .await
                .expect("the put commits");
            assert!(receipt.outcome.is_applied(), "put: {:?}", receipt.outcome);
            let placed = record(entry, &object.id).await.expect("recorded");
            liar_shards += placed.placement.iter().filter(|m| **m == liar).count();
            objects.push((object, placed.placement));
            if liar_shards >= 2 && objects.len() >= 3 {
                break;
            }
        }
        assert!(liar_shards >= 2, "the liar holds shards to be audited on");

        // Uploads: every shard to its holder, except that the liar never receives its first
        // shard, and claims it anyway with an acknowledgement signed by its key.
        let mut claimed = None;
        for (object, placement) in &objects {
            for (shard, member) in placement.iter().enumerate() {
                if *member == liar && claimed.is_none() {
                    claimed = Some((object.id, shard as u16));
                    continue;
                }
                store_shard(
                    handle_of(&cluster, *member).expect("running"),
                    object,
                    shard,
                );
            }
        }
        let (claimed_object, claimed_shard) = claimed.expect("the liar holds a shard");
        let claim = storage_tx(
            &context,
            &fixture,
            &fixture.keys[liar as usize],
            1,
            StorageOp::Stored {
                object: claimed_object,
                shards: vec![claimed_shard],
            },
        );
        let receipt = commit(&context, entry, claim, Duration::from_secs(30))
            .await
            .expect("the claim commits");
        assert!(receipt.outcome.is_applied(), "claim: {:?}", receipt.outcome);

        // Every shard is acknowledged (the honest nodes' passes, the liar's own pass and
        // its false claim).
        let ids: Vec<Digest> = objects.iter().map(|(o, _)| o.id).collect();
        let stored = eventually(&context, Duration::from_secs(60), || async {
            every_record(honest.iter().map(|(_, n)| n), &ids, |r| {
                r.stored_count() == LAYOUT.shards()
            })
            .await
        })
        .await;
        assert!(stored, "every shard is acknowledged");
        let stored_at = common_height(&cluster.nodes);

        // Caught: within three epochs every honest node records a failed audit of the liar
        // with the reason, and none of its own.
        let caught = eventually(&context, Duration::from_secs(600), || async {
            for (_, node) in &honest {
                if audit_record(node, liar).await.failed == 0 {
                    return false;
                }
            }
            true
        })
        .await;
        assert!(caught, "the liar's audits fail");
        let caught_at = common_height(&cluster.nodes);
        assert!(
            caught_at <= stored_at + 3 * AUDIT_INTERVAL + AUDIT_INTERVAL / 2,
            "caught at height {caught_at}, stored at {stored_at}: more than three epochs"
        );
        let mut reasons = Vec::new();
        for (i, node) in &honest {
            let record = audit_record(node, liar).await;
            assert!(
                !record.last_failure.is_empty(),
                "node {i} says why the liar failed"
            );
            assert!(
                !record.last_failure.contains("undecodable"),
                "the forged proofs decode; only the roots tell: {}",
                record.last_failure
            );
            reasons.push(record.last_failure);
            for member in 0..n as u32 {
                if member != liar {
                    let honest_record = audit_record(node, member).await;
                    assert_eq!(
                        honest_record.failed, 0,
                        "node {i}: honest member {member} never fails ({honest_record:?})"
                    );
                }
            }
        }

        // Repaired: every shard the liar held moves to an honest node, which rebuilds it
        // from the others' blocks, and every object is healthy again.
        let repaired = eventually(&context, Duration::from_secs(1200), || async {
            every_record(honest.iter().map(|(_, n)| n), &ids, |r| {
                !r.placement.contains(&liar) && r.healthy_count() == LAYOUT.shards()
            })
            .await
        })
        .await;
        assert!(repaired, "every object is repaired away from the liar");

        // Byte for byte: each holder's shard equals what the client encoded.
        let mut summary = Vec::new();
        for (object, _) in &objects {
            let record = record(entry, &object.id).await.expect("recorded");
            for (shard, member) in record.placement.iter().enumerate() {
                let holder = handle_of(&cluster, *member).expect("running");
                let id = ShardId {
                    object: object.id.as_ref().try_into().expect("32 bytes"),
                    index: shard as u16,
                };
                for (segment, block) in object.blocks[shard].iter().enumerate() {
                    let read = holder
                        .shards()
                        .expect("storage")
                        .store()
                        .read_block(&id, segment as u32)
                        .expect("the holder has the block");
                    assert_eq!(&read, block, "shard {shard} segment {segment} on {member}");
                }
            }
            summary.push(format!("{:?}", record.placement));
        }

        // Every honest node decided the same: placement, orders and audit records.
        for id in &ids {
            let first = (record(entry, id).await, repair_order(entry, id).await);
            for (i, node) in &honest[1..] {
                assert_eq!(
                    (record(node, id).await, repair_order(node, id).await),
                    first,
                    "node {i} decided differently about {id:?}"
                );
            }
        }
        for member in 0..n as u32 {
            let first = audit_record(entry, member).await;
            for (i, node) in &honest[1..] {
                assert_eq!(
                    audit_record(node, member).await,
                    first,
                    "node {i}, member {member}"
                );
            }
        }
        let history = check_invariants(
            &context,
            &fixture,
            &cluster.nodes,
            &BTreeMap::new(),
            &Gaps::new(),
        )
        .await;
        (history, format!("{summary:?} {reasons:?}"))
    })
}

/// A node flapping (down an epoch, up an epoch) does not make repairs storm.
pub(crate) fn flapping_node_does_not_storm(seed: u64) {
    runner(seed).start(|context| async move {
        let n = 4;
        let flapper = 2usize;
        let fixture = Fixture::new(n, seed).with_storage();
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(10, 100)).await;
        let roles = vec![Role::Honest(0); n];
        let mut cluster = start_roles(&context, &net, &fixture, &roles).await;
        let entry = cluster.nodes[0].clone().expect("honest");
        wait_for_offers(&context, &cluster.nodes, n).await;
        let mut objects = Vec::new();
        for which in 0..4u64 {
            let object = encode(seed * 100 + which);
            let tx = storage_tx(
                &context,
                &fixture,
                &fixture.clients[0],
                which + 1,
                StorageOp::Put(Box::new(object.manifest.clone())),
            );
            let receipt = commit(&context, &entry, tx, Duration::from_secs(30))
                .await
                .expect("the put commits");
            assert!(receipt.outcome.is_applied());
            let placement = record(&entry, &object.id)
                .await
                .expect("recorded")
                .placement;
            for (shard, member) in placement.iter().enumerate() {
                store_shard(
                    cluster.nodes[*member as usize].as_ref().expect("running"),
                    &object,
                    shard,
                );
            }
            objects.push(object);
        }
        let ids: Vec<Digest> = objects.iter().map(|o| o.id).collect();
        let stored = eventually(&context, Duration::from_secs(60), || async {
            for id in &ids {
                if record(&entry, id).await.map(|r| r.stored_count()) != Some(LAYOUT.shards()) {
                    return false;
                }
            }
            true
        })
        .await;
        assert!(stored, "every shard is acknowledged");

        // Flap: three times down for about an epoch, then up for about an epoch. Watch the
        // repair orders made meanwhile (object, order height).
        let epoch = Duration::from_millis(AUDIT_INTERVAL * 300);
        let mut orders: std::collections::BTreeSet<(Digest, u64)> = Default::default();
        let start_height = common_height(&cluster.nodes);
        let mut gaps = Gaps::new();
        for life in 1..=3u32 {
            // Down until the others have passed two epoch boundaries, so that the flapper
            // misses a whole epoch's challenge whatever the pace of the heights meanwhile.
            let crashed_at = crash(&mut cluster, flapper, &mut gaps).await;
            let back_at = crashed_at + 2 * AUDIT_INTERVAL + 8;
            let give_up = context.current() + Duration::from_secs(600);
            while common_height(&cluster.nodes) < back_at {
                assert!(
                    context.current() < give_up,
                    "the three other nodes did not reach height {back_at} in 600 s"
                );
                for id in &ids {
                    if let Some(order) = repair_order(&entry, id).await {
                        orders.insert((*id, order.height));
                    }
                }
                context.sleep(Duration::from_secs(1)).await;
            }
            let running =
                start_node_as(&context, &net, &fixture, flapper, &Role::Honest(0), life).await;
            cluster.tasks[flapper] = Some(running.task);
            cluster.nodes[flapper] = Some(running.node);
            let up_until = context.current() + epoch;
            while context.current() < up_until {
                for id in &ids {
                    if let Some(order) = repair_order(&entry, id).await {
                        orders.insert((*id, order.height));
                    }
                }
                context.sleep(Duration::from_secs(1)).await;
            }
        }
        assert!(
            !orders.is_empty(),
            "missing a whole epoch costs the flapper a shard, which is repaired"
        );
        let epochs = (common_height(&cluster.nodes) - start_height) / AUDIT_INTERVAL + 1;
        // One challenge per holder per epoch: the flapper loses at most one shard per epoch,
        // and each loss is ordered repaired once.
        assert!(
            (orders.len() as u64) <= epochs,
            "{} repair orders in {epochs} epochs: {orders:?}",
            orders.len()
        );
        let healthy = eventually(&context, Duration::from_secs(900), || async {
            every_record(cluster.nodes.iter().flatten(), &ids, |r| {
                r.healthy_count() == LAYOUT.shards()
            })
            .await
        })
        .await;
        assert!(healthy, "every object ends healthy");
        for id in &ids {
            let order = repair_order(&entry, id).await;
            assert!(
                order.as_ref().is_none_or(|o| o.attempt <= 2),
                "an object ordered repaired more than twice: {order:?}"
            );
        }

        // A replaced disk: node 1 restarts with an empty shard store. It declares what it
        // lacks lost at once, so every object is healthy again well before audits (one
        // shard per epoch) would have found them all.
        let wiped = 1usize;
        let mut held = 0;
        for id in &ids {
            let record = record(&entry, id).await.expect("recorded");
            held += record
                .placement
                .iter()
                .filter(|m| **m == wiped as u32)
                .count();
        }
        assert!(held >= 2, "the wiped node held {held} shards");
        crash(&mut cluster, wiped, &mut gaps).await;
        let directory = fixture
            .shard_dir
            .as_ref()
            .expect("storage")
            .path()
            .join(format!("node{wiped}"));
        std::fs::remove_dir_all(&directory).expect("the disk is replaced");
        let running = start_node_as(&context, &net, &fixture, wiped, &Role::Honest(0), 9).await;
        cluster.tasks[wiped] = Some(running.task);
        cluster.nodes[wiped] = Some(running.node);
        let restarted_at = common_height(&cluster.nodes);
        let recovered = eventually(&context, Duration::from_secs(900), || async {
            if !every_record(cluster.nodes.iter().flatten(), &ids, |r| {
                r.healthy_count() == LAYOUT.shards()
            })
            .await
            {
                return false;
            }
            // And the wiped node holds again every shard placed on it.
            let store = cluster.nodes[wiped]
                .as_ref()
                .expect("up")
                .shards()
                .expect("storage")
                .store()
                .clone();
            for id in &ids {
                let record = record(&entry, id).await.expect("recorded");
                for (shard, member) in record.placement.iter().enumerate() {
                    if *member == wiped as u32
                        && !store.contains(&ShardId {
                            object: id.as_ref().try_into().expect("32 bytes"),
                            index: shard as u16,
                        })
                    {
                        return false;
                    }
                }
            }
            true
        })
        .await;
        assert!(
            recovered,
            "every object is healthy again after the disk was replaced"
        );
        let recovered_at = common_height(&cluster.nodes);
        assert!(
            recovered_at - restarted_at < (held as u64 - 1) * AUDIT_INTERVAL,
            "{held} lost shards repaired in {} heights: audits alone would need {held} epochs",
            recovered_at - restarted_at
        );
        check_invariants(&context, &fixture, &cluster.nodes, &BTreeMap::new(), &gaps).await;
    })
}
