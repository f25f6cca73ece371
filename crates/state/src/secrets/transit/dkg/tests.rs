//! Key generation through the log: four nodes make a signing key no node holds, a bad
//! package or an accusation restarts it without the node at fault.

use super::{Dkg, public_keys_digest};
use crate::{
    apply_to_map, keys,
    secrets::{
        SecretsResult,
        tests::{Cluster, ROOT},
        transit::TransitKey,
    },
};
use commonware_cryptography::Signer as _;
use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use std::collections::BTreeMap;
use welkin_frost::{DkgConfig, DkgRound1, Index};
use welkin_types::{
    Block, Digest, Payload, PrivateKey, Sender, Transaction, hash_parts,
    secrets::{
        MountKind, SecretsOp, TransitOp,
        transit::{DkgOutcome, KeyKind},
    },
};

const NODES: u16 = 4;

fn node_key(index: u16) -> PrivateKey {
    PrivateKey::from_seed(1_000 + u64::from(index))
}

fn cluster() -> Cluster {
    let mut c = Cluster::new();
    c.env.members = (0..NODES).map(|i| node_key(i).public_key()).collect();
    c.env.threshold = 3;
    c.ok(
        ROOT,
        SecretsOp::MountEnable {
            mount: "transit".into(),
            description: String::new(),
            kind: MountKind::Transit,
        },
    );
    c.ok(
        ROOT,
        SecretsOp::Transit(TransitOp::KeyCreate {
            mount: "transit".into(),
            name: "signer".into(),
            kind: KeyKind::Ed25519,
        }),
    );
    c
}

/// Runs `op` sent by node `index` (signed with its node key) in a block of its own.
fn from_node(c: &mut Cluster, index: u16, op: TransitOp) -> SecretsResult {
    c.height += 1;
    c.now += 1_000;
    c.nonce += 1;
    let tx = Transaction {
        sender: Sender::Key(node_key(index).public_key()),
        nonce: c.nonce,
        expiry_ms: c.now + 60_000,
        payload: Payload::Secrets(Box::new(SecretsOp::Transit(op))),
    }
    .sign(&node_key(index), &c.env.cluster_id);
    let block = Block::new(hash_parts(&[b"p"]), c.height, c.now, vec![tx]);
    let effects = apply_to_map(&c.env, &mut c.state, &block);
    effects.secrets.into_iter().next().expect("a result").1
}

fn key(c: &Cluster) -> TransitKey {
    let mount = crate::secrets::records::Mount::decode(&c.state[&keys::secrets_mount("transit")])
        .expect("mount");
    TransitKey::decode(&c.state[&keys::transit_key(&mount.id, "signer")]).expect("key")
}

fn dkg(c: &Cluster) -> Option<Dkg> {
    let key = key(c);
    c.state
        .get(&keys::transit_dkg(&key.id, 1))
        .map(|bytes| Dkg::decode(bytes).expect("dkg decodes"))
}

fn round1(key_id: Digest, attempt: u32, package: Vec<u8>) -> TransitOp {
    TransitOp::DkgRound1 {
        mount: "transit".into(),
        name: "signer".into(),
        key_id,
        version: 1,
        attempt,
        package,
    }
}

fn result(key_id: Digest, attempt: u32, outcome: DkgOutcome) -> TransitOp {
    TransitOp::DkgResult {
        mount: "transit".into(),
        name: "signer".into(),
        key_id,
        version: 1,
        attempt,
        outcome,
    }
}

/// Runs one whole attempt among `participants` as honest nodes would, off the log where the
/// protocol is off the log; `corrupt` sends a package that is not its own (a copy of
/// another's) instead. Returns the group key every finishing node holds.
fn run_attempt(
    c: &mut Cluster,
    attempt: u32,
    participants: &[Index],
    corrupt: Option<Index>,
) -> Option<[u8; 32]> {
    let key_id = key(c).id;
    let config = DkgConfig::new(participants.iter().copied(), 3).expect("config");
    let mut states = BTreeMap::new();
    let mut committed = BTreeMap::new();
    let mut first = None;
    for &node in participants {
        let mut rng = ChaCha20Rng::from_seed([node as u8 + 10 * attempt as u8; 32]);
        let (state, package) = DkgRound1::start(&config, node, &mut rng).expect("starts");
        let first_package = first.get_or_insert_with(|| package.clone()).clone();
        let sent = if corrupt == Some(node) {
            first_package
        } else {
            package.clone()
        };
        assert_eq!(
            from_node(c, node, round1(key_id, attempt, sent.encode())),
            SecretsResult::Done
        );
        if corrupt == Some(node) {
            return None;
        }
        states.insert(node, state);
        committed.insert(node, package);
    }
    let public = dkg(c).expect("open").public.expect("every package is in");
    // Round 2, off the log.
    let mut inboxes: BTreeMap<Index, BTreeMap<Index, welkin_frost::Round2Package>> =
        BTreeMap::new();
    let mut seconds = BTreeMap::new();
    for (node, state) in states {
        let (second, outgoing) = state.round2(&committed).expect("round 2");
        for (to, package) in outgoing {
            inboxes.entry(to).or_default().insert(node, package);
        }
        seconds.insert(node, second);
    }
    let mut group = None;
    for (node, second) in seconds {
        let (_share, keys) = second.finish(&inboxes[&node]).expect("finishes");
        assert_eq!(
            keys.encode(),
            public,
            "every node computes the log's public keys"
        );
        group = Some(keys.group_key());
        let done = DkgOutcome::Done {
            public_keys: public_keys_digest(&keys.encode()),
        };
        assert_eq!(
            from_node(c, node, result(key_id, attempt, done)),
            SecretsResult::Done
        );
    }
    group
}

#[test]
fn four_nodes_make_a_signing_key_no_node_holds_and_the_log_commits_its_public_key() {
    let mut c = cluster();
    assert_eq!(key(&c).versions[0].public_key, None, "not yet generated");
    let opened = dkg(&c).expect("a generation opens with the key");
    assert_eq!(opened.participants, vec![0, 1, 2, 3]);
    let group = run_attempt(&mut c, 0, &[0, 1, 2, 3], None).expect("completes");
    assert_eq!(key(&c).versions[0].public_key, Some(group));
    assert!(dkg(&c).is_none(), "the finished generation is gone");
    assert!(
        c.state
            .contains_key(&keys::transit_public_keys(&key(&c).id, 1)),
        "the verifying shares stay for coordinators"
    );

    // Steps from anyone but a node, or for a closed attempt, are refused.
    let id = key(&c).id;
    let outsider = c.status(ROOT, SecretsOp::Transit(round1(id, 0, vec![1, 2, 3])));
    assert_eq!(outsider, 403);
    assert!(matches!(
        from_node(&mut c, 1, round1(id, 0, vec![1])),
        SecretsResult::Refused { status: 400, .. }
    ));
}

#[test]
fn a_bad_package_restarts_the_generation_without_its_sender_and_the_rest_complete() {
    let mut c = cluster();
    // Node 1 sends node 0's package as its own: its proof of knowledge names node 0.
    assert!(run_attempt(&mut c, 0, &[0, 1, 2, 3], Some(1)).is_none());
    let restarted = dkg(&c).expect("still open");
    assert_eq!(restarted.attempt, 1);
    assert_eq!(restarted.participants, vec![0, 2, 3]);
    assert_eq!(restarted.excluded[0].0, 1);
    assert!(
        restarted.excluded[0].1.contains("bad round-1 package"),
        "{}",
        restarted.excluded[0].1
    );
    let group = run_attempt(&mut c, 1, &[0, 2, 3], None).expect("the honest three complete");
    assert_eq!(key(&c).versions[0].public_key, Some(group));
}

#[test]
fn an_accusation_or_a_wrong_digest_excludes_and_too_few_nodes_fail_for_good() {
    let mut c = cluster();
    let id = key(&c).id;
    let config = DkgConfig::new([0, 1, 2, 3], 3).expect("config");
    for node in 0..NODES {
        let mut rng = ChaCha20Rng::from_seed([node as u8; 32]);
        let (_, package) = DkgRound1::start(&config, node, &mut rng).expect("starts");
        from_node(&mut c, node, round1(id, 0, package.encode()));
    }
    assert!(dkg(&c).expect("open").public.is_some());
    // Node 2 accuses node 3; node 3 leaves (an accusation cannot be checked here).
    from_node(&mut c, 2, result(id, 0, DkgOutcome::Failed { culprit: 3 }));
    let after = dkg(&c).expect("open");
    assert_eq!(
        (after.attempt, after.participants.clone()),
        (1, vec![0, 1, 2])
    );
    // In the next attempt node 0 reports other public keys than the log's: too few remain.
    let config = DkgConfig::new([0, 1, 2], 3).expect("config");
    for node in 0..3u16 {
        let mut rng = ChaCha20Rng::from_seed([node as u8 + 50; 32]);
        let (_, package) = DkgRound1::start(&config, node, &mut rng).expect("starts");
        from_node(&mut c, node, round1(id, 1, package.encode()));
    }
    from_node(
        &mut c,
        0,
        result(
            id,
            1,
            DkgOutcome::Done {
                public_keys: [9; 32],
            },
        ),
    );
    let failed = dkg(&c).expect("kept, to say why");
    assert!(failed.failed, "two nodes cannot make a 3-of-n key");
    assert_eq!(failed.excluded.len(), 2);
    assert_eq!(key(&c).versions[0].public_key, None);
    assert!(matches!(
        from_node(&mut c, 1, result(id, 1, DkgOutcome::Failed { culprit: 2 })),
        SecretsResult::Refused { status: 400, .. }
    ));
}

#[test]
fn generations_round_trip_in_storage() {
    let dkg = Dkg {
        attempt: 2,
        threshold: 3,
        participants: vec![0, 2, 3],
        round1: [(0, vec![1, 2]), (3, vec![4])].into_iter().collect(),
        public: Some(vec![7; 40]),
        done: vec![3],
        excluded: vec![(1, "bad".into())],
        failed: false,
    };
    let bytes = dkg.encode();
    assert_eq!(Dkg::decode(&bytes), Ok(dkg));
    for cut in 0..bytes.len() {
        assert!(Dkg::decode(&bytes[..cut]).is_err());
    }
}

fn open(c: &Cluster) -> Vec<super::Open> {
    c.state
        .get(&keys::transit_dkgs_open())
        .map(|bytes| super::decode_open(bytes).expect("open list decodes"))
        .unwrap_or_default()
}

/// An empty block at `now`: only the sweeps run.
fn tick(c: &mut Cluster, now: u64) {
    c.height += 1;
    c.now = now;
    let block = Block::new(hash_parts(&[b"p"]), c.height, c.now, vec![]);
    apply_to_map(&c.env, &mut c.state, &block);
}

#[test]
fn the_open_list_names_each_running_generation_until_it_finishes() {
    let mut c = cluster();
    let listed = open(&c);
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (
            listed[0].mount.as_str(),
            listed[0].name.as_str(),
            listed[0].version
        ),
        ("transit", "signer", 1)
    );
    assert_eq!(listed[0].key_id, key(&c).id);
    run_attempt(&mut c, 0, &[0, 1, 2, 3], None).expect("completes");
    assert!(open(&c).is_empty(), "a finished generation leaves the list");

    // Rotation opens version 2; deleting the key forgets it.
    c.ok(
        ROOT,
        SecretsOp::Transit(TransitOp::KeyRotate {
            mount: "transit".into(),
            name: "signer".into(),
        }),
    );
    assert_eq!(
        open(&c).iter().map(|o| o.version).collect::<Vec<_>>(),
        vec![2]
    );
    c.ok(
        ROOT,
        SecretsOp::Transit(TransitOp::KeyConfig {
            mount: "transit".into(),
            name: "signer".into(),
            min_decryption_version: None,
            min_encryption_version: None,
            deletion_allowed: Some(true),
        }),
    );
    let id = key(&c).id;
    c.ok(
        ROOT,
        SecretsOp::Transit(TransitOp::KeyDelete {
            mount: "transit".into(),
            name: "signer".into(),
        }),
    );
    assert!(open(&c).is_empty());
    assert!(!c.state.contains_key(&keys::transit_dkg(&id, 2)));
}

#[test]
fn nodes_silent_past_the_deadline_are_left_out_and_the_rest_complete() {
    let mut c = cluster();
    let id = key(&c).id;
    let started = c.now;
    // Node 2 never sends its round-1 package.
    let config = DkgConfig::new([0, 1, 2, 3], 3).expect("config");
    for node in [0u16, 1, 3] {
        let mut rng = ChaCha20Rng::from_seed([node as u8 + 90; 32]);
        let (_, package) = DkgRound1::start(&config, node, &mut rng).expect("starts");
        from_node(&mut c, node, round1(id, 0, package.encode()));
    }
    tick(&mut c, started + super::ATTEMPT_MS - 1_000);
    assert_eq!(dkg(&c).expect("open").attempt, 0, "not yet due");
    tick(&mut c, started + super::ATTEMPT_MS + 1_000);
    let next = dkg(&c).expect("open");
    assert_eq!(
        (next.attempt, next.participants.clone()),
        (1, vec![0, 1, 3])
    );
    assert!(
        next.excluded[0].1.contains("round-1"),
        "{}",
        next.excluded[0].1
    );
    let group = run_attempt(&mut c, 1, &[0, 1, 3], None).expect("the three complete");
    assert_eq!(key(&c).versions[0].public_key, Some(group));
    // The finished attempt's deadline passes without effect.
    let later = c.now + 2 * super::ATTEMPT_MS;
    tick(&mut c, later);
    assert_eq!(key(&c).versions[0].public_key, Some(group));
}

#[test]
fn a_node_that_lost_its_state_withdraws_and_silence_can_fail_a_generation() {
    let mut c = cluster();
    let id = key(&c).id;
    let config = DkgConfig::new([0, 1, 2, 3], 3).expect("config");
    for node in 0..NODES {
        let mut rng = ChaCha20Rng::from_seed([node as u8 + 70; 32]);
        let (_, package) = DkgRound1::start(&config, node, &mut rng).expect("starts");
        from_node(&mut c, node, round1(id, 0, package.encode()));
    }
    from_node(&mut c, 1, result(id, 0, DkgOutcome::Failed { culprit: 1 }));
    let after = dkg(&c).expect("open");
    assert_eq!(after.participants, vec![0, 2, 3]);
    assert!(
        after.excluded[0].1.contains("withdrew"),
        "{}",
        after.excluded[0].1
    );
    // Nobody sends anything in attempt 1: all three are left out, and it fails for good.
    let due = c.now + super::ATTEMPT_MS + 1_000;
    tick(&mut c, due);
    let failed = dkg(&c).expect("kept, to say why");
    assert!(failed.failed);
    assert!(open(&c).is_empty(), "a failed generation leaves the list");
}
