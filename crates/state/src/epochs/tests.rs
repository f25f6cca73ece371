//! Epochs against an in-memory state: four members with a generated key reshare it to a new
//! set through the log; the state decides at the epoch's last block, keeps the key, changes
//! the roster, and says why when a resharing fails.

use super::{EpochState, Reshare, env_at, last_height_of_epoch};
use crate::{
    Env, apply_to_map,
    keygen::GeneratedKey,
    keys,
    membership::{Changes, JoinRequest, RequestStatus},
};
use commonware_codec::Encode as _;
use commonware_cryptography::{
    Signer as _, bls12381::primitives::group::Share, ed25519::PrivateKey,
};
use rand_chacha::rand_core::SeedableRng as _;
use std::collections::{BTreeMap, VecDeque};
use welkin_dkg::{Ledger, Output, Participant, Round, SignedLog};
use welkin_types::{
    Block, ChainParams, Digest, LogEntry, NodeInfo, Outcome, Payload, Sender, Transaction,
    genesis::{MembershipPolicy, NodeRegistration},
    hash_parts,
    membership::{MembershipOp, request_id},
};

const EPOCH_BLOCKS: u64 = 40;

/// The logs given (by dealer key index) and every part (by key index).
type Dealt = (Vec<(usize, SignedLog)>, Vec<(usize, Participant)>);

fn registration(key: &PrivateKey, name: &str, port: u16) -> NodeInfo {
    NodeRegistration {
        name: name.into(),
        public_key: key.public_key(),
        encryption_key: vec![5; 32],
        p2p_address: format!("127.0.0.1:{port}").parse().expect("address"),
        api_address: format!("127.0.0.1:{}", port + 1000)
            .parse()
            .expect("address"),
        failure_domain: "rack-z".into(),
    }
    .sign(key)
}

struct Cluster {
    genesis_env: Env,
    env: Env,
    /// Every node's key, by roster position (genesis nodes first), then a joiner.
    keys: Vec<PrivateKey>,
    /// Each key's current share (by `keys` index).
    shares: BTreeMap<usize, Share>,
    state: BTreeMap<Digest, Vec<u8>>,
    height: u64,
    nonce: u64,
    rng: rand_chacha::ChaCha20Rng,
}

impl Cluster {
    /// Four members with a key generated in memory (round 0), and a fifth key that may join.
    fn new() -> Cluster {
        let mut keys: Vec<PrivateKey> = (0..4).map(PrivateKey::from_seed).collect();
        keys.sort_by_key(|k| k.public_key());
        keys.push(PrivateKey::from_seed(50));
        let members: Vec<_> = keys[..4].iter().map(|k| k.public_key()).collect();
        let env = Env {
            cluster_id: hash_parts(&[b"epochs test"]),
            params: ChainParams::default(),
            members: members.clone(),
            retired: Vec::new(),
            threshold: 3,
            domains: vec![String::new(); 4],
            cluster_key: None,
            membership: Some(MembershipPolicy {
                operators: vec!["operator".into()],
                approvals: 1,
                attestation: "none".into(),
                epoch_blocks: EPOCH_BLOCKS,
            }),
        };
        let mut rng = rand_chacha::ChaCha20Rng::seed_from_u64(7);
        let round = Round::new(&env.cluster_id, 0, None, members.clone(), members).expect("round");
        let (output, shares) =
            welkin_dkg::run_in_memory(&mut rng, &round, &keys[..4], &[]).expect("first key");
        let mut state = BTreeMap::new();
        state.insert(
            keys::cluster_key(),
            GeneratedKey {
                round: 0,
                height: 1,
                output: output.encode().to_vec(),
                logs: Vec::new(),
                excluded: Vec::new(),
            }
            .encode(),
        );
        Cluster {
            genesis_env: env.clone(),
            env,
            keys,
            shares: shares.into_iter().enumerate().collect(),
            state,
            height: 1,
            nonce: 0,
            rng,
        }
    }

    fn epochs(&self) -> EpochState {
        self.state
            .get(&keys::epoch())
            .map(|v| EpochState::decode(v).expect("decodes"))
            .unwrap_or_default()
    }

    fn output(&self) -> Output {
        let key = self
            .state
            .get(&keys::epoch_key())
            .or_else(|| self.state.get(&keys::cluster_key()))
            .map(|v| GeneratedKey::decode(v).expect("decodes"))
            .expect("a key");
        key.output(8).expect("output")
    }

    fn run(&mut self, txs: Vec<welkin_types::SignedTransaction>) -> Vec<LogEntry> {
        self.height += 1;
        let block = Block::new(hash_parts(&[b"p"]), self.height, 1_000 + self.height, txs);
        let effects = apply_to_map(&self.env, &mut self.state, &block);
        assert_eq!(
            effects.epoch_ended,
            self.height == last_height_of_epoch(self.height, EPOCH_BLOCKS)
        );
        if effects.epoch_ended {
            self.env = env_at(&self.genesis_env, &self.epochs());
        }
        effects
            .log_entries
            .iter()
            .map(|e| welkin_types::decode::<LogEntry>(e).expect("decodes"))
            .collect()
    }

    /// Empty blocks up to and including the current epoch's last.
    fn run_to_boundary(&mut self) {
        let last = last_height_of_epoch(self.height + 1, EPOCH_BLOCKS);
        while self.height < last {
            self.run(vec![]);
        }
    }

    fn log_tx(
        &mut self,
        sender: usize,
        round: u64,
        log: Vec<u8>,
    ) -> welkin_types::SignedTransaction {
        self.nonce += 1;
        let key = &self.keys[sender];
        Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: self.nonce,
            expiry_ms: 1_000 + self.height + 60_000,
            payload: Payload::Membership(Box::new(MembershipOp::DealerLog { round, log })),
        }
        .sign(key, &self.env.cluster_id)
    }

    /// Admits the fifth key (as an approved request would) and records leaves.
    fn change(&mut self, join: bool, leaves: Vec<u32>) {
        let mut changes = Changes::default();
        if join {
            let node = registration(&self.keys[4], "node-5", 9005);
            let id = request_id(&node);
            self.state.insert(
                keys::membership_request(&id),
                JoinRequest {
                    registration: node,
                    submitted_ms: 0,
                    approvals: vec!["operator".into()],
                    status: RequestStatus::Admitted,
                }
                .encode(),
            );
            changes.joins.push(id);
        }
        changes.leaves = leaves;
        self.state
            .insert(keys::membership_changes(), changes.encode());
    }

    /// The open round's dealers deal (all of them, or those in `dealing`), every dealing is
    /// delivered; returns the logs by dealer key index and the players' parts.
    fn deal(&mut self, dealing: &[usize]) -> Dealt {
        let reshare = self.epochs().reshare.expect("a round is open");
        let round = reshare.round_of(&self.env, self.output()).expect("round");
        let mut parts = Vec::new();
        let mut queue = VecDeque::new();
        for (i, key) in self.keys.iter().enumerate() {
            let me = key.public_key();
            let deals = round.is_dealer(&me) && dealing.contains(&i);
            if !deals && !round.is_player(&me) {
                continue;
            }
            let (node, out) = if deals {
                let share = self.shares.get(&i).cloned();
                Participant::start(&mut self.rng, round.clone(), key, share).expect("start")
            } else {
                // A silent dealer, or a joiner: it only plays.
                (
                    Participant::resume(round.clone(), key, vec![]).expect("player"),
                    vec![],
                )
            };
            queue.extend(out.into_iter().map(|o| (i, o)));
            parts.push((i, node));
        }
        while let Some((from, o)) = queue.pop_front() {
            let Some(to) = parts
                .iter()
                .position(|(i, _)| self.keys[*i].public_key() == o.to)
            else {
                continue;
            };
            let from_key = self.keys[from].public_key();
            if let Some(reply) = parts[to].1.handle(&from_key, o.message).expect("honest") {
                queue.push_back((parts[to].0, reply));
            }
        }
        let logs = parts
            .iter_mut()
            .filter(|(i, _)| dealing.contains(i))
            .filter_map(|(i, p)| p.log().map(|log| (*i, log)))
            .collect();
        (logs, parts)
    }

    /// Each player's new share, from the logs the state selected.
    fn finish(&mut self, parts: Vec<(usize, Participant)>) {
        let key = GeneratedKey::decode(&self.state[&keys::epoch_key()]).expect("decodes");
        let output = self.output();
        self.shares.clear();
        for (i, part) in parts {
            if !part.round().is_player(&self.keys[i].public_key()) {
                continue;
            }
            let mut ledger = Ledger::new(part.round().clone());
            for bytes in &key.logs {
                let log =
                    welkin_dkg::decode_log(bytes, ledger.round().max_participants()).expect("log");
                ledger.record(log).expect("record");
            }
            let (_, share) = part.finish(&mut self.rng, &ledger).expect("share");
            assert_eq!(
                output.public().partial_public(share.index).expect("player"),
                share.public::<welkin_types::Variant>(),
                "the new share matches the new polynomial"
            );
            self.shares.insert(i, share);
        }
    }
}

/// Signs `message` with `t` of `shares` and checks the result under `key`.
fn signs(shares: &[Share], output: &Output, key: &welkin_types::ClusterKey) -> bool {
    use commonware_cryptography::bls12381::primitives::ops::threshold;
    let partials: Vec<_> = shares
        .iter()
        .map(|s| threshold::sign_message::<welkin_types::Variant>(s, b"ns", b"message"))
        .collect();
    let Ok(signature) = threshold::recover::<welkin_types::Variant, _>(
        output.public(),
        &partials,
        &commonware_parallel::Sequential,
    ) else {
        return false;
    };
    commonware_cryptography::bls12381::primitives::ops::verify_message::<welkin_types::Variant>(
        key, b"ns", b"message", &signature,
    )
    .is_ok()
}

#[test]
fn a_join_takes_effect_at_the_boundary_with_the_same_key() {
    let mut cluster = Cluster::new();
    let key = *cluster.output().public().public();
    cluster.change(true, vec![]);
    cluster.run(vec![]);
    let reshare = cluster.epochs().reshare.expect("a resharing opened");
    assert_eq!(reshare.round, 1);
    assert_eq!(reshare.dealers, vec![0, 1, 2, 3]);
    assert_eq!(reshare.players.len(), 5);
    let (logs, parts) = cluster.deal(&[0, 1, 2, 3]);
    assert_eq!(logs.len(), 4);
    let txs = logs
        .into_iter()
        .map(|(i, log)| cluster.log_tx(i, 1, log.encode().to_vec()))
        .collect();
    for entry in cluster.run(txs) {
        assert_eq!(entry.outcome, Outcome::Applied, "{}", entry.detail);
    }
    // Nothing changes before the boundary.
    assert_eq!(cluster.env.active_count(), 4);
    assert!(!cluster.state.contains_key(&keys::epoch_key()));
    cluster.run_to_boundary();
    let epochs = cluster.epochs();
    assert_eq!(epochs.epoch, 1);
    assert_eq!(epochs.start_height, EPOCH_BLOCKS);
    assert_eq!(epochs.joined.len(), 1);
    assert!(epochs.reshare.is_none() && epochs.failures.is_empty());
    assert_eq!(cluster.env.active_count(), 5);
    assert_eq!(cluster.env.threshold, 4);
    assert_eq!(
        cluster.env.member_position(&cluster.keys[4].public_key()),
        Some(4)
    );
    assert_eq!(*cluster.output().public().public(), key, "the key stays");
    let changes = Changes::decode(&cluster.state[&keys::membership_changes()]).expect("decodes");
    assert!(changes.joins.is_empty());
    cluster.finish(parts);
    let output = cluster.output();
    let new: Vec<Share> = cluster.shares.values().cloned().collect();
    assert_eq!(new.len(), 5);
    assert!(
        signs(&new[..4], &output, &key),
        "4 new shares sign under the same key"
    );
    assert!(!signs(&new[..3], &output, &key), "3 new shares do not");

    // A later epoch with no changes opens nothing and moves on.
    cluster.run_to_boundary();
    assert_eq!(cluster.epochs().epoch, 2);
    assert!(cluster.epochs().reshare.is_none());
}

#[test]
fn a_leave_with_too_few_logs_fails_with_its_reason_and_the_members_stay() {
    let mut cluster = Cluster::new();
    cluster.change(false, vec![3]);
    cluster.run(vec![]);
    let (logs, _) = cluster.deal(&[0, 1]);
    let txs = logs
        .into_iter()
        .map(|(i, log)| cluster.log_tx(i, 1, log.encode().to_vec()))
        .collect();
    cluster.run(txs);
    cluster.run_to_boundary();
    let epochs = cluster.epochs();
    assert_eq!(epochs.epoch, 1);
    assert_eq!(epochs.failures.len(), 1, "{:?}", epochs.failures);
    assert!(
        epochs.failures[0].contains("resharing round 1 failed"),
        "{}",
        epochs.failures[0]
    );
    assert!(epochs.retired.is_empty());
    assert_eq!(cluster.env.active_count(), 4);
    assert!(!cluster.state.contains_key(&keys::epoch_key()));
    // The change still waits; the next block opens the next round for it.
    cluster.run(vec![]);
    let reshare = cluster.epochs().reshare.expect("reopened");
    assert_eq!(reshare.round, 2);
    assert_eq!(reshare.leaves, vec![3]);
    assert_eq!(reshare.players.len(), 3);
    // This time every dealer deals: the member leaves at the boundary.
    let (logs, _) = cluster.deal(&[0, 1, 2, 3]);
    let txs = logs
        .into_iter()
        .map(|(i, log)| cluster.log_tx(i, 2, log.encode().to_vec()))
        .collect();
    cluster.run(txs);
    cluster.run_to_boundary();
    assert_eq!(cluster.epochs().retired, vec![3]);
    assert_eq!(cluster.env.active_count(), 3);
    assert!(!cluster.env.is_active(3));
}

#[test]
fn a_round_opened_late_in_an_epoch_carries_over() {
    let mut cluster = Cluster::new();
    while cluster.height < EPOCH_BLOCKS - 5 {
        cluster.run(vec![]);
    }
    cluster.change(true, vec![]);
    cluster.run(vec![]);
    assert!(cluster.epochs().reshare.is_some());
    cluster.run_to_boundary();
    let epochs = cluster.epochs();
    assert!(epochs.failures.is_empty(), "{:?}", epochs.failures);
    assert_eq!(epochs.reshare.expect("carried").round, 1);
    assert_eq!(cluster.env.active_count(), 4);
}

#[test]
fn logs_that_do_not_belong_are_refused_with_reasons() {
    let mut cluster = Cluster::new();
    cluster.change(true, vec![]);
    cluster.run(vec![]);
    let (logs, _) = cluster.deal(&[0, 1, 2, 3]);
    let log0 = logs[0].1.encode().to_vec();
    let wrong_round = cluster.log_tx(0, 7, log0.clone());
    let not_sender = cluster.log_tx(1, 1, log0.clone());
    let joiner = cluster.log_tx(4, 1, log0.clone());
    let good = cluster.log_tx(0, 1, log0.clone());
    let again = cluster.log_tx(0, 1, log0);
    let entries = cluster.run(vec![wrong_round, not_sender, joiner, good, again]);
    let details: Vec<(Outcome, String)> =
        entries.into_iter().map(|e| (e.outcome, e.detail)).collect();
    assert!(
        details[0].1.contains("resharing round 1 is open"),
        "{details:?}"
    );
    assert!(details[1].1.contains("another dealer"), "{details:?}");
    assert!(details[2].1.contains("only a member deals"), "{details:?}");
    assert_eq!(details[3].0, Outcome::Applied, "{details:?}");
    assert!(details[4].1.contains("recorded already"), "{details:?}");
}

#[test]
fn a_dealt_key_is_not_reshared_and_says_so() {
    let mut cluster = Cluster::new();
    cluster.env.cluster_key = Some(*cluster.output().public().public());
    cluster.genesis_env.cluster_key = cluster.env.cluster_key;
    cluster.change(true, vec![]);
    cluster.run_to_boundary();
    let epochs = cluster.epochs();
    assert!(epochs.reshare.is_none());
    assert!(
        epochs.failures[0].contains("dealt at genesis"),
        "{:?}",
        epochs.failures
    );
}

#[test]
fn epoch_state_encoding_is_frozen() {
    let node = registration(&PrivateKey::from_seed(9), "n", 9000);
    let state = EpochState {
        epoch: 3,
        start_height: 300,
        last_round: 4,
        joined: vec![node],
        retired: vec![1],
        reshare: Some(Reshare {
            round: 5,
            opened_height: 310,
            dealers: vec![0, 2],
            players: vec![PrivateKey::from_seed(1).public_key()],
            joins: vec![Digest::from([7; 32])],
            leaves: vec![2],
            logs: vec![(0, vec![1, 2, 3])],
            excluded: vec![],
        }),
        failures: vec!["why".into()],
    };
    let bytes = state.encode();
    assert_eq!(EpochState::decode(&bytes).expect("decodes"), state);
    assert_eq!(
        hex::encode(welkin_types::hash_parts(&[&bytes])),
        "68f7e6c139db07f4ecdc8553c4fffac64258a97b39138650616407bf5981a339"
    );
    let mut longer = bytes.clone();
    longer.push(0);
    assert!(EpochState::decode(&longer).is_err());
    assert!(EpochState::decode(&bytes[..bytes.len() - 1]).is_err());
}
