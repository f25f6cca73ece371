//! Teardown of disabled mounts against an in-memory state: every record the mount wrote goes,
//! each value still referenced is shredded once, a bounded amount per block, and a mount
//! enabled again at the same path is left alone.

use super::{
    MAX_TEARDOWNS, TEARDOWN_MOVES_PER_BLOCK, TEARDOWN_SECRETS_PER_BLOCK, Teardown, Teardowns,
};
use crate::{
    ApplyError, BlockEffects, Fetched, apply, apply_to_map, check_signatures, expiry, keys,
    secrets::{
        SecretsResult,
        dir::{self, list, tests::overlay},
        kv,
        recipients::tests::Identity,
        records::{Mount, encode_names},
        tests::{Cluster, ROOT},
    },
};
use commonware_codec::Encode as _;
use std::collections::{BTreeMap, BTreeSet};
use welkin_types::{
    Block, Detachable, Digest, Sender, TxId, hash_parts,
    secrets::{KvSeal, SecretsOp, token_public_key},
};

const MOUNT: &str = "team";

/// A cluster with a mount, the requests it ran (for the keys they wrote besides the mount's)
/// and the values of the mount still referenced, by path and version.
struct Scenario {
    c: Cluster,
    ids: Vec<TxId>,
    live: BTreeMap<(String, u64), TxId>,
    /// What every block since the last `take` shredded.
    shredded: Vec<TxId>,
    /// The most rounds of reads an empty block needed.
    rounds: usize,
    /// How long each empty block took to apply through its rounds, in microseconds.
    apply_us: Vec<u128>,
}

impl Scenario {
    fn new() -> Scenario {
        Scenario {
            c: Cluster::new(),
            ids: Vec::new(),
            live: BTreeMap::new(),
            shredded: Vec::new(),
            rounds: 0,
            apply_us: Vec::new(),
        }
    }

    fn ok(&mut self, op: SecretsOp) -> SecretsResult {
        let result = self.c.ok(ROOT, op);
        self.ids.push(self.c.last_id);
        self.shredded.extend(&self.c.shredded);
        result
    }

    fn enable(&mut self) {
        self.ok(SecretsOp::MountEnable {
            mount: MOUNT.into(),
            description: String::new(),
            kind: welkin_types::secrets::MountKind::Kv2,
        });
    }

    fn write(&mut self, path: &str) {
        let op = SecretsOp::KvWrite {
            mount: MOUNT.into(),
            path: path.into(),
            nonce: [self.c.nonce as u8; 32],
            sealed: Detachable::new(self.c.nonce.to_be_bytes().to_vec()),
            cas: None,
        };
        let SecretsResult::Written { version, .. } = self.ok(op) else {
            panic!("a write makes a version")
        };
        self.live.insert((path.into(), version), self.c.last_id);
    }

    /// Seals a new version of `path` to `who` as well as to the cluster.
    fn seal(&mut self, path: &str, who: &Identity) {
        let nonce = [self.c.nonce as u8; 32];
        let target = kv::target(MOUNT, path, &nonce);
        let envelope = welkin_sealed::seal_to_recipients(
            &mut commonware_utils::test_rng(),
            &[who.public()],
            target.as_ref(),
            b"value",
        )
        .expect("seals");
        let op = SecretsOp::KvSeal(KvSeal {
            mount: MOUNT.into(),
            path: path.into(),
            nonce,
            sealed: Detachable::new(vec![3; 16]),
            cas: None,
            recipients: vec![who.prefix.clone()],
            envelope: envelope.encode().to_vec(),
        });
        let SecretsResult::Written { version, .. } = self.ok(op) else {
            panic!("a seal makes a version")
        };
        self.live.insert((path.into(), version), self.c.last_id);
    }

    fn destroy(&mut self, path: &str, version: u64) {
        self.ok(SecretsOp::KvDestroy {
            mount: MOUNT.into(),
            path: path.into(),
            versions: vec![version],
        });
        self.live.remove(&(path.to_string(), version));
    }

    fn mount_id(&self) -> Digest {
        let bytes = &self.c.state[&keys::secrets_mount(MOUNT)];
        Mount::decode(bytes).expect("decodes").id
    }

    /// Runs a block without transactions.
    /// Runs a block without transactions, as a node does (fetching the keys apply asks for,
    /// round by round), and checks that it does what it does on the whole state.
    fn empty_block(&mut self) -> BlockEffects {
        self.c.height += 1;
        self.c.now += 1_000;
        let block = Block::new(hash_parts(&[b"p"]), self.c.height, self.c.now, vec![]);
        let verdicts = check_signatures(&self.c.env.cluster_id, &block);
        let mut fetched = Fetched::default();
        let mut wanted = crate::reads(&block);
        let mut rounds = 0;
        let started = std::time::Instant::now();
        let effects = loop {
            rounds += 1;
            for key in wanted {
                fetched.0.insert(key, self.c.state.get(&key).cloned());
            }
            match apply(&self.c.env, &fetched, &block, &verdicts) {
                Ok(effects) => break effects,
                Err(ApplyError::NeedReads(keys)) => wanted = keys,
                Err(corrupt) => panic!("{corrupt}"),
            }
        };
        self.apply_us.push(started.elapsed().as_micros());
        self.rounds = self.rounds.max(rounds);
        assert_eq!(
            effects,
            apply_to_map(&self.c.env, &mut self.c.state, &block)
        );
        self.shredded.extend(&effects.shredded);
        effects
    }

    fn queue(&self) -> Option<Teardowns> {
        let bytes = self.c.state.get(&keys::secrets_teardown())?;
        Some(Teardowns::decode(bytes).expect("decodes"))
    }

    /// Runs empty blocks until no teardown is queued; their effects.
    fn drain(&mut self) -> Vec<BlockEffects> {
        let mut blocks = Vec::new();
        while self.queue().is_some() {
            assert!(blocks.len() < 1_000, "the teardown ends");
            blocks.push(self.empty_block());
        }
        blocks
    }

    /// The keys the requests and blocks so far wrote besides a mount's data: receipts,
    /// details, nonces, the log's sizes and the expiry queues.
    fn bookkeeping(&self) -> BTreeSet<Digest> {
        let mut keys: BTreeSet<Digest> = self
            .ids
            .iter()
            .flat_map(|id| [keys::receipt(id), keys::outcome_detail(id)])
            .collect();
        let root = Sender::Key(token_public_key(ROOT));
        keys.extend((0..=self.c.nonce).map(|n| keys::nonce(&root, n)));
        keys.extend((0..=self.c.height * 2).map(keys::log_height));
        for queue in [expiry::Queue::Nonces, expiry::Queue::Escrow] {
            let name = queue.name();
            keys.extend((0..=self.c.height).map(|seq| keys::queue_batch(name, seq)));
            keys.extend([keys::queue_head(name), keys::queue_tail(name)]);
        }
        keys
    }
}

/// Rewrites directory `dir` of `mount` in the version 1 form (one sorted list), as a state
/// written before the paged index has it.
fn to_version_1(c: &mut Cluster, mount: &Digest, dir: &str) {
    let names = list(&overlay(&c.state), mount, dir);
    for name in &names {
        c.state.remove(&keys::kv_dir_slot(mount, dir, name));
    }
    for key in dir::page_keys(mount, dir, names.len()) {
        c.state.remove(&key);
    }
    c.state
        .insert(keys::kv_dir(mount, dir), encode_names(&names));
}

#[test]
fn disabling_a_mount_deletes_every_record_it_wrote_and_shreds_each_live_value_once() {
    let mut s = Scenario::new();
    let alice = Identity::incept(&mut s.c, 10);
    alice.register(&mut s.c);
    let before: BTreeSet<Digest> = s.c.state.keys().copied().collect();
    s.enable();
    let mount = s.mount_id();
    // The top directory over one page, a directory of three pages, nesting deeper than a
    // block's moves, several versions, soft-deleted, destroyed and recipient-sealed ones.
    for i in 0..70 {
        s.write(&format!("t{i:02}"));
    }
    for i in 0..130 {
        s.write(&format!("many/{i:03}"));
    }
    for j in 0..3 {
        for k in 0..3 {
            s.write(&format!("app/{j}/s{k}"));
        }
    }
    s.write("deep/a/b/c/d/e/f/g/h/i/x");
    for _ in 0..3 {
        s.write("app/0/s0");
    }
    s.destroy("app/0/s0", 2);
    s.ok(SecretsOp::KvDelete {
        mount: MOUNT.into(),
        path: "t01".into(),
        versions: vec![],
    });
    s.ok(SecretsOp::KvMetadataWrite {
        mount: MOUNT.into(),
        path: "app/2/settings-only".into(),
        max_versions: Some(3),
        cas_required: None,
        custom_metadata: None,
    });
    s.seal("sealed/one", &alice);
    s.seal("sealed/one", &alice);
    s.seal("app/1/s0", &alice);
    s.destroy("sealed/one", 1);
    to_version_1(&mut s.c, &mount, "app/1/");
    let secrets = 70 + 130 + 9 + 1 + 1 + 1;

    s.ok(SecretsOp::MountDisable {
        mount: MOUNT.into(),
    });
    assert!(s.c.shredded.is_empty(), "the disable itself shreds nothing");
    s.shredded.clear();
    let queued = s.queue().expect("queued");
    assert_eq!(
        queued.0,
        vec![Teardown {
            mount,
            cursor: String::new()
        }]
    );
    let written: BTreeSet<Digest> = s.c.state.keys().copied().collect();
    let bookkeeping = s.bookkeeping();
    let mounts_keys: BTreeSet<Digest> = written
        .difference(&before)
        .filter(|k| !bookkeeping.contains(k) && **k != keys::secrets_teardown())
        .copied()
        .collect();
    assert!(
        mounts_keys.len() > 2 * secrets,
        "metadata, values and the index: {}",
        mounts_keys.len()
    );

    let blocks = s.drain();
    let after: BTreeSet<Digest> = s.c.state.keys().copied().collect();
    let left: Vec<&Digest> = mounts_keys.intersection(&after).collect();
    assert!(
        left.is_empty(),
        "{} of the mount's keys are left",
        left.len()
    );
    let bookkeeping = s.bookkeeping();
    let unexplained: Vec<&Digest> = after
        .difference(&before)
        .filter(|k| !bookkeeping.contains(k))
        .collect();
    assert!(
        unexplained.is_empty(),
        "{} keys written since the mount was enabled remain",
        unexplained.len()
    );

    let mut shredded = std::mem::take(&mut s.shredded);
    shredded.sort();
    let mut expected: Vec<TxId> = s.live.values().copied().collect();
    expected.sort();
    assert_eq!(shredded, expected, "each live value once, no other");

    // The bound: the metadata deleted per block.
    let mut paths: BTreeSet<String> = s.live.keys().map(|(path, _)| path.clone()).collect();
    paths.insert("app/2/settings-only".into());
    let torn: Vec<usize> = blocks
        .iter()
        .map(|b| {
            let deleted = |p: &&String| b.writes.get(&keys::kv_meta(&mount, p)) == Some(&None);
            paths.iter().filter(deleted).count()
        })
        .collect();
    assert_eq!(torn.iter().sum::<usize>(), secrets);
    assert!(
        torn.iter().all(|&n| n <= TEARDOWN_SECRETS_PER_BLOCK),
        "{torn:?}"
    );
    assert!(
        torn.contains(&TEARDOWN_SECRETS_PER_BLOCK),
        "a block uses its whole budget: {torn:?}"
    );
}

#[test]
fn a_mount_enabled_again_while_the_old_one_is_torn_down_starts_empty_and_keeps_its_secrets() {
    let mut s = Scenario::new();
    s.enable();
    let old = s.mount_id();
    // Four blocks' worth: the enable and the two writes below run while it is torn down.
    for i in 0..4 * TEARDOWN_SECRETS_PER_BLOCK {
        s.write(&format!("s{i:03}"));
    }
    let old_values = s.live.clone();
    s.ok(SecretsOp::MountDisable {
        mount: MOUNT.into(),
    });
    s.live.clear();
    s.shredded.clear();
    s.enable();
    let new = s.mount_id();
    assert_ne!(old, new);
    // Same paths as the old mount's, one before the teardown reaches it and one after.
    s.write("s255");
    s.write("s000");
    assert!(s.queue().is_some(), "still tearing down the old mount");
    s.drain();
    let shredded = std::mem::take(&mut s.shredded);
    let overlay = overlay(&s.c.state);
    assert_eq!(list(&overlay, &new, ""), ["s000", "s255"]);
    assert!(list(&overlay, &old, "").is_empty());
    for path in ["s000", "s255"] {
        let read = SecretsOp::KvRead {
            mount: MOUNT.into(),
            path: path.into(),
            version: 0,
            reader: [0; 32],
        };
        match s.c.ok(ROOT, read) {
            SecretsResult::Released { version, .. } => assert_eq!(version, 1),
            other => panic!("{other:?}"),
        }
    }
    for (path, tx) in &s.live {
        assert!(!shredded.contains(tx), "{path:?} of the new mount shredded");
    }
    assert!(old_values.values().all(|tx| shredded.contains(tx)));
}

#[test]
fn a_full_teardown_queue_refuses_a_disable_until_it_drains() {
    let mut s = Scenario::new();
    s.enable();
    s.write("x");
    // A queue at its limit whose head takes two blocks: an index of entries without
    // metadata (nothing else to delete), in the version 1 form.
    let head = hash_parts(&[b"big"]);
    let names: Vec<String> = (0..2 * TEARDOWN_SECRETS_PER_BLOCK)
        .map(|i| format!("{i:04}"))
        .collect();
    s.c.state
        .insert(keys::kv_dir(&head, ""), encode_names(&names));
    let queue = Teardowns(
        (0..MAX_TEARDOWNS)
            .map(|i| Teardown {
                mount: if i == 0 {
                    head
                } else {
                    hash_parts(&[b"gone", &[i as u8]])
                },
                cursor: String::new(),
            })
            .collect(),
    );
    s.c.state.insert(keys::secrets_teardown(), queue.encode());
    let disable = SecretsOp::MountDisable {
        mount: MOUNT.into(),
    };
    match s.c.run(ROOT, disable.clone()).0 {
        SecretsResult::Refused { status, message } => {
            assert_eq!(status, 400);
            assert!(message.contains("wait a few blocks"), "{message}");
        }
        other => panic!("{other:?}"),
    }
    assert!(
        s.c.state.contains_key(&keys::secrets_mount(MOUNT)),
        "still mounted"
    );
    assert_eq!(s.queue().map(|q| q.0.len()), Some(MAX_TEARDOWNS));
    let team = s.mount_id();
    // The head finishes before the disable runs, which then fits.
    s.ok(disable);
    let queue = s.queue().expect("queued");
    assert_eq!(queue.0.len(), MAX_TEARDOWNS);
    assert_eq!(queue.0.last().map(|t| t.mount), Some(team));
    assert!(!s.c.state.contains_key(&keys::kv_dir(&head, "")));
    // Mounts with nothing left cost no budget: the rest goes in one block.
    s.empty_block();
    assert!(s.queue().is_none());
    assert!(!s.c.state.contains_key(&keys::kv_meta(&team, "x")));
}

#[test]
fn an_empty_mount_is_disabled_without_a_teardown() {
    let mut s = Scenario::new();
    s.enable();
    s.ok(SecretsOp::MountDisable {
        mount: MOUNT.into(),
    });
    assert!(s.queue().is_none());
}

#[test]
fn a_teardown_block_needs_a_few_rounds_of_reads() {
    let mut s = Scenario::new();
    s.enable();
    // The top over one page, three directories two levels down.
    for i in 0..70 {
        s.write(&format!("a/{}/b/{i:02}", i % 3));
        s.write(&format!("top{i:02}"));
    }
    s.ok(SecretsOp::MountDisable {
        mount: MOUNT.into(),
    });
    s.drain();
    // The queue; the cursor's directory and those above it; the rest of a big one's tail;
    // per directory entered, its head and first page (asked for with its parent's tail), and
    // the rest of a big one's; the metadata; the versions; the round that applies.
    assert!(
        s.rounds <= 6 + 2 * TEARDOWN_MOVES_PER_BLOCK,
        "{} rounds of reads in one block",
        s.rounds
    );
}

#[test]
fn the_queue_round_trips_and_refuses_other_bytes() {
    let queue = Teardowns(vec![
        Teardown {
            mount: hash_parts(&[b"a"]),
            cursor: "app/db/".into(),
        },
        Teardown {
            mount: hash_parts(&[b"b"]),
            cursor: String::new(),
        },
    ]);
    let bytes = queue.encode();
    assert_eq!(Teardowns::decode(&bytes), Ok(queue.clone()));
    for cut in 0..bytes.len() {
        assert!(Teardowns::decode(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut version = bytes.clone();
    version[0] = 2;
    assert!(Teardowns::decode(&version).is_err());
    let mut trailing = bytes.clone();
    trailing.push(0);
    assert!(Teardowns::decode(&trailing).is_err());
    assert!(Teardowns::decode(&Teardowns(vec![]).encode()).is_err());
    let file = Teardowns(vec![Teardown {
        mount: hash_parts(&[b"a"]),
        cursor: "app/db".into(),
    }]);
    assert!(
        Teardowns::decode(&file.encode()).is_err(),
        "a cursor is a directory"
    );
    let mut started = queue.clone();
    started.0.swap(0, 1);
    assert!(
        Teardowns::decode(&started.encode()).is_err(),
        "only the head has started"
    );
    let full = Teardowns(vec![queue.0[1].clone(); MAX_TEARDOWNS + 1]);
    assert!(Teardowns::decode(&full.encode()).is_err());
    // The stored encoding is consensus: a change here is a state-format change.
    assert_eq!(
        hex::encode(hash_parts(&[&bytes])),
        "e99a63d8be1786e1cced54ab6e4c245fb3a873f1c8aaf81e283f077043736066",
        "the teardown queue encoding changed: bump its version, then update the fixture"
    );
}

/// Prints how long the blocks tearing down a mount of 1,024 secrets of 10 versions each (in
/// 16 directories of 64) take to apply through their read rounds, in memory
/// (`cargo test -p welkin-state -- --ignored --nocapture measure_teardown`, with `--release`
/// for an optimised build).
#[test]
#[ignore = "a measurement: run it by name"]
fn measure_teardown() {
    let mut s = Scenario::new();
    s.enable();
    for version in 0..10 {
        for i in 0..1_024 {
            s.write(&format!("d{:02}/s{:02}", i / 64, i % 64));
        }
        assert_eq!(s.live.len(), 1_024 * (version + 1));
    }
    s.ok(SecretsOp::MountDisable {
        mount: MOUNT.into(),
    });
    s.drain();
    let mut times = s.apply_us.clone();
    times.sort();
    println!(
        "{} blocks; apply through read rounds from memory, per block: median {} us, max {} us; \
         at most {} rounds of reads; {} values shredded",
        times.len(),
        times[times.len() / 2],
        times[times.len() - 1],
        s.rounds,
        s.shredded.len()
    );
}
