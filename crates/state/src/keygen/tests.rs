//! Key generation through the log: four members deal in memory and commit their logs as
//! transactions; the state decides the round as the module docs say, refusing what does not
//! belong.

use super::{GeneratedKey, Keygen, ROUND_MS};
use crate::{Env, apply_to_map, keys};
use commonware_codec::Encode as _;
use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use commonware_utils::test_rng;
use std::collections::{BTreeMap, VecDeque};
use welkin_dkg::{Participant, SignedLog};
use welkin_types::{
    Block, ChainParams, Digest, LogEntry, Outcome, Payload, Sender, Transaction, hash_parts,
    membership::MembershipOp,
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
    fn new() -> Cluster {
        let mut nodes: Vec<PrivateKey> = (0..4).map(PrivateKey::from_seed).collect();
        nodes.sort_by_key(|k| k.public_key());
        let env = Env {
            cluster_id: hash_parts(&[b"keygen test"]),
            params: ChainParams::default(),
            members: nodes.iter().map(|k| k.public_key()).collect(),
            retired: Vec::new(),
            threshold: 3,
            domains: vec![String::new(); 4],
            cluster_key: None,
            membership: None,
        };
        let mut state = BTreeMap::new();
        state.insert(
            keys::keygen(),
            Keygen {
                started_ms: 1_000,
                ..Keygen::default()
            }
            .encode(),
        );
        Cluster {
            env,
            nodes,
            state,
            height: 0,
            now: 1_000,
            nonce: 0,
        }
    }

    /// Runs a dealer log in its own block `elapsed_ms` after the last, sent by `sender`.
    fn submit(&mut self, elapsed_ms: u64, sender: usize, round: u64, log: &SignedLog) -> LogEntry {
        self.submit_bytes(elapsed_ms, sender, round, log.encode().to_vec())
    }

    fn submit_bytes(
        &mut self,
        elapsed_ms: u64,
        sender: usize,
        round: u64,
        log: Vec<u8>,
    ) -> LogEntry {
        self.height += 1;
        self.now += elapsed_ms;
        self.nonce += 1;
        let key = &self.nodes[sender];
        let tx = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: self.nonce,
            expiry_ms: self.now + 60_000,
            payload: Payload::Membership(Box::new(MembershipOp::DealerLog { round, log })),
        }
        .sign(key, &self.env.cluster_id);
        let block = Block::new(hash_parts(&[b"p"]), self.height, self.now, vec![tx]);
        let effects = apply_to_map(&self.env, &mut self.state, &block);
        welkin_types::decode::<LogEntry>(&effects.log_entries[0]).expect("decodes")
    }

    /// An empty block `elapsed_ms` after the last.
    fn tick(&mut self, elapsed_ms: u64) {
        self.height += 1;
        self.now += elapsed_ms;
        let block = Block::new(hash_parts(&[b"p"]), self.height, self.now, vec![]);
        apply_to_map(&self.env, &mut self.state, &block);
    }

    fn keygen(&self) -> Option<Keygen> {
        self.state
            .get(&keys::keygen())
            .map(|v| Keygen::decode(v).expect("decodes"))
    }

    fn generated(&self) -> Option<GeneratedKey> {
        self.state
            .get(&keys::cluster_key())
            .map(|v| GeneratedKey::decode(v).expect("decodes"))
    }

    /// Every member deals in round `number` (randomness from `seed`) and every dealing is
    /// delivered: the signed logs and the participants (to finish with).
    fn deal(&self, number: u64, seed: u64) -> (Vec<SignedLog>, Vec<Participant>) {
        use rand_chacha::rand_core::SeedableRng as _;
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(seed);
        let keygen = Keygen {
            round: number,
            ..Keygen::default()
        };
        let round = keygen
            .round_of(&self.env.cluster_id, &self.env.members)
            .expect("round");
        let mut nodes = Vec::new();
        let mut queue = VecDeque::new();
        for (i, key) in self.nodes.iter().enumerate() {
            let (node, out) =
                Participant::start(&mut rng, round.clone(), key, None).expect("start");
            queue.extend(out.into_iter().map(|o| (i, o)));
            nodes.push(node);
        }
        while let Some((from, o)) = queue.pop_front() {
            let to = self
                .env
                .members
                .iter()
                .position(|k| *k == o.to)
                .expect("member");
            if let Some(reply) = nodes[to]
                .handle(&self.env.members[from], o.message)
                .expect("honest")
            {
                queue.push_back((to, reply));
            }
        }
        let logs = nodes
            .iter_mut()
            .map(|node| node.log().expect("a dealer's log"))
            .collect();
        (logs, nodes)
    }
}

#[test]
fn every_log_in_decides_the_key_every_player_holds() {
    let mut c = Cluster::new();
    let (logs, nodes) = c.deal(0, 1);
    for (i, log) in logs.iter().enumerate() {
        assert!(c.generated().is_none(), "undecided before the last log");
        let entry = c.submit(100, i, 0, log);
        assert_eq!(entry.outcome, Outcome::Applied, "{}", entry.detail);
    }
    let generated = c.generated().expect("decided at the fourth log");
    assert!(c.keygen().is_none(), "the round is closed");
    assert_eq!(generated.logs.len(), 3, "a quorum of logs is selected");
    let output = generated.output(4).expect("decodes");
    let proven = welkin_dkg::check_first_key(
        &c.env.cluster_id,
        0,
        &c.env.members,
        &generated.excluded,
        &generated.logs,
    )
    .expect("the stored logs prove the stored key");
    assert_eq!(proven.public(), output.public());
    // Every player computes its share from the same logs, and the shares match the key.
    let mut ledger = welkin_dkg::Ledger::new(
        Keygen::default()
            .round_of(&c.env.cluster_id, &c.env.members)
            .expect("round"),
    );
    for log in &generated.logs {
        ledger
            .record(welkin_dkg::decode_log(log, ledger.round().max_participants()).expect("log"))
            .expect("records");
    }
    for node in nodes {
        let (theirs, share) = node.finish(&mut test_rng(), &ledger).expect("a share");
        assert_eq!(theirs.public(), output.public());
        assert_eq!(
            output.public().partial_public(share.index).expect("player"),
            share.public::<welkin_types::Variant>()
        );
    }
    let view = crate::view(&c.state, |state| super::cluster_key(&c.env, state)).expect("reads");
    assert_eq!(view, Some(*output.public().public()));
    // Late logs are refused: no round is open.
    let late = c.submit(100, 3, 0, &logs[3]);
    assert_eq!(late.outcome, Outcome::Rejected);
    assert!(late.detail.contains("exists already"), "{}", late.detail);
}

#[test]
fn logs_that_do_not_belong_are_refused_with_the_reason() {
    let mut c = Cluster::new();
    let (logs, _) = c.deal(0, 1);
    let refused = |entry: LogEntry, reason: &str| {
        assert_eq!(entry.outcome, Outcome::Rejected);
        assert!(
            entry.detail.contains(reason),
            "{} does not say {reason}",
            entry.detail
        );
    };
    refused(c.submit(100, 1, 0, &logs[0]), "signed by another dealer");
    refused(c.submit(100, 0, 1, &logs[0]), "round 0 is open");
    refused(c.submit_bytes(100, 0, 0, vec![1, 2, 3]), "does not decode");
    let (other, _) = c.deal(1, 1);
    let e = c.submit(100, 0, 0, &other[0]);
    refused(e, "not for this round");
    // A stranger's key, even with a member's log.
    c.nodes.push(PrivateKey::from_seed(99));
    refused(c.submit(100, 4, 0, &logs[0]), "only a member node deals");
    assert!(
        c.keygen().expect("open").logs.is_empty(),
        "nothing was recorded"
    );
}

#[test]
fn an_equivocating_dealer_is_excluded_and_the_round_completes_without_it() {
    let mut c = Cluster::new();
    let (first, _) = c.deal(0, 1);
    let (second, _) = c.deal(0, 2);
    assert_ne!(first[0], second[0], "two different dealings");
    assert_eq!(c.submit(100, 0, 0, &first[0]).outcome, Outcome::Applied);
    let again = c.submit(100, 0, 0, &first[0]);
    assert_eq!(again.outcome, Outcome::Applied);
    assert!(
        again.detail.contains("recorded already"),
        "{}",
        again.detail
    );
    let equivocation = c.submit(100, 0, 0, &second[0]);
    assert!(
        equivocation.detail.contains("two different logs"),
        "{}",
        equivocation.detail
    );
    let keygen = c.keygen().expect("open");
    assert_eq!(keygen.excluded, vec![0]);
    assert!(keygen.logs.is_empty(), "its log is dropped");
    let excluded = c.submit(100, 0, 0, &first[0]);
    assert_eq!(excluded.outcome, Outcome::Rejected);
    // The three others complete the round at once: they are all the dealers left.
    for (i, log) in first.iter().enumerate().skip(1) {
        c.submit(100, i, 0, log);
    }
    let generated = c.generated().expect("decided");
    let output = generated.output(4).expect("decodes");
    assert!(output.dealers().position(&c.env.members[0]).is_none());
}

#[test]
fn a_round_short_of_logs_fails_with_the_reason_and_a_quorum_decides_at_the_deadline() {
    let mut c = Cluster::new();
    let (logs, _) = c.deal(0, 1);
    c.submit(100, 0, 0, &logs[0]);
    c.submit(100, 1, 0, &logs[1]);
    c.tick(ROUND_MS);
    let keygen = c.keygen().expect("open");
    assert_eq!(keygen.round, 1, "the next round opened");
    assert!(keygen.logs.is_empty());
    assert!(
        keygen.failures[0].contains("round 0: 2 of the 3 dealer logs"),
        "{:?}",
        keygen.failures
    );
    // Round 1: three dealers in time, the fourth silent; decided at the deadline.
    let (logs, _) = c.deal(1, 1);
    for (i, log) in logs.iter().enumerate().take(3) {
        c.submit(100, i, 1, log);
    }
    c.tick(ROUND_MS / 2);
    assert!(c.generated().is_none(), "not before the deadline");
    c.tick(ROUND_MS);
    let generated = c.generated().expect("decided with a quorum");
    assert_eq!(generated.round, 1);
    assert_eq!(generated.logs.len(), 3);
}

/// The stored encodings are hashed into the state root: a change here is a state format
/// change (bump the version byte, then update the fixture).
#[test]
fn stored_encodings_are_frozen() {
    let keygen = Keygen {
        round: 2,
        started_ms: 1_000,
        excluded: vec![3],
        excluded_at_start: vec![3],
        logs: vec![(0, vec![1, 2, 3])],
        failures: vec!["round 1: too few".into()],
    };
    assert_eq!(
        hex::encode(keygen.encode()),
        "01000000000000000200000000000003e8000100000003000100000003000100000000000000030102\
         0300010010726f756e6420313a20746f6f20666577"
    );
    assert_eq!(Keygen::decode(&keygen.encode()).expect("decodes"), keygen);
    let generated = GeneratedKey {
        round: 1,
        height: 7,
        output: vec![9; 4],
        logs: vec![vec![1, 2]],
        excluded: vec![2],
    };
    assert_eq!(
        hex::encode(generated.encode()),
        "010000000000000001000000000000000700000004090909090001000000020102000100000002"
    );
    assert_eq!(
        GeneratedKey::decode(&generated.encode()).expect("decodes"),
        generated
    );
    let mut truncated = generated.encode();
    truncated.pop();
    assert!(GeneratedKey::decode(&truncated).is_err());
}
