//! Admission against an in-memory state: join requests, operator approvals (from
//! non-transferable operator identifiers), attestation, leaves, and every refusal's reason.

use super::{Changes, JoinRequest, OperatorStatement, REQUEST_TTL_MS, RequestStatus};
use crate::{Env, apply_to_map, keys};
use commonware_codec::Encode as _;
use commonware_cryptography::{Signer as _, ed25519::PrivateKey};
use std::collections::BTreeMap;
use welkin_types::{
    Block, ChainParams, Digest, IndexedKey, LogEntry, NodeInfo, Outcome, Payload, Sender,
    Transaction,
    genesis::{MembershipPolicy, NodeRegistration},
    hash_parts,
    membership::{MembershipOp, request_id},
    namespace,
};

struct Cluster {
    env: Env,
    members: Vec<PrivateKey>,
    operators: Vec<(PrivateKey, String)>,
    state: BTreeMap<Digest, Vec<u8>>,
    height: u64,
    now: u64,
    nonce: u64,
}

/// A non-transferable KERI identifier for `key` (its prefix is the key itself).
fn operator(seed: u64) -> (PrivateKey, String) {
    let key = PrivateKey::from_seed(seed);
    let bytes: [u8; 32] = key.encode().as_ref().try_into().expect("32-byte seed");
    let prefix = welkin_keri::Signer::non_transferable(&bytes)
        .verkey()
        .qb64();
    (key, prefix)
}

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

impl Cluster {
    fn new(attestation: &str) -> Cluster {
        let members: Vec<PrivateKey> = (0..4).map(PrivateKey::from_seed).collect();
        let operators: Vec<_> = (100..103).map(operator).collect();
        Cluster {
            env: Env {
                cluster_id: hash_parts(&[b"membership test"]),
                params: ChainParams::default(),
                members: members.iter().map(|k| k.public_key()).collect(),
                retired: Vec::new(),
                threshold: 3,
                domains: vec![String::new(); 4],
                cluster_key: None,
                membership: Some(MembershipPolicy {
                    operators: operators.iter().map(|(_, p)| p.clone()).collect(),
                    approvals: 2,
                    attestation: attestation.into(),
                    epoch_blocks: 100,
                }),
            },
            members,
            operators,
            state: BTreeMap::new(),
            height: 0,
            now: 1_000,
            nonce: 0,
        }
    }

    fn run(&mut self, sender: Sender, keys: &[&PrivateKey], op: MembershipOp) -> LogEntry {
        self.height += 1;
        self.now += 1_000;
        self.nonce += 1;
        let owned: Vec<PrivateKey> = keys.iter().map(|k| (*k).clone()).collect();
        let tx = Transaction {
            sender,
            nonce: self.nonce,
            expiry_ms: self.now + 60_000,
            payload: Payload::Membership(Box::new(op)),
        }
        .sign_all(&owned, &self.env.cluster_id);
        let block = Block::new(hash_parts(&[b"p"]), self.height, self.now, vec![tx]);
        let effects = apply_to_map(&self.env, &mut self.state, &block);
        welkin_types::decode::<LogEntry>(&effects.log_entries[0]).expect("decodes")
    }

    fn join(&mut self, key: &PrivateKey, registration: NodeInfo, evidence: Vec<u8>) -> LogEntry {
        self.run(
            Sender::Key(key.public_key()),
            &[key],
            MembershipOp::Join {
                registration: Box::new(registration),
                evidence,
            },
        )
    }

    fn approve(&mut self, operator: usize, request: Digest) -> LogEntry {
        let (key, prefix) = self.operators[operator].clone();
        self.run(
            Sender::Identifier {
                prefix,
                signers: vec![IndexedKey {
                    index: 0,
                    key: key.public_key(),
                }],
            },
            &[&key],
            MembershipOp::Approve { request },
        )
    }

    fn request(&self, id: &Digest) -> JoinRequest {
        JoinRequest::decode(&self.state[&keys::membership_request(id)]).expect("decodes")
    }

    fn changes(&self) -> Changes {
        self.state
            .get(&keys::membership_changes())
            .map(|v| Changes::decode(v).expect("decodes"))
            .unwrap_or_default()
    }
}

fn refused(entry: &LogEntry, reason: &str) {
    assert_eq!(entry.outcome, Outcome::Rejected, "{}", entry.detail);
    assert!(
        entry.detail.contains(reason),
        "{:?} does not say {reason:?}",
        entry.detail
    );
}

#[test]
fn a_join_is_admitted_by_enough_distinct_operators() {
    let mut c = Cluster::new("none");
    let node = PrivateKey::from_seed(50);
    let entry = registration(&node, "node4", 9004);
    let id = request_id(&entry);
    let opened = c.join(&node, entry.clone(), vec![]);
    assert_eq!(opened.outcome, Outcome::Applied, "{}", opened.detail);
    assert!(
        opened.detail.contains("needs 2 operator approvals"),
        "{}",
        opened.detail
    );
    assert_eq!(c.request(&id).status, RequestStatus::Open);
    let first = c.approve(0, id);
    assert!(first.detail.contains("1 of 2"), "{}", first.detail);
    refused(&c.approve(0, id), "approved this request already");
    let second = c.approve(2, id);
    assert!(
        second.detail.contains("admitted node4"),
        "{}",
        second.detail
    );
    assert_eq!(c.request(&id).status, RequestStatus::Admitted);
    assert_eq!(c.changes().joins, vec![id]);
    refused(&c.approve(1, id), "not open");
    refused(&c.join(&node, entry, vec![]), "requested already");
}

#[test]
fn requests_and_approvals_that_do_not_belong_are_refused() {
    let mut c = Cluster::new("none");
    let node = PrivateKey::from_seed(51);
    let entry = registration(&node, "node5", 9005);
    // Sent by another key than the registration's.
    let other = PrivateKey::from_seed(52);
    refused(
        &c.join(&other, entry.clone(), vec![]),
        "joining node's own key",
    );
    // A registration changed after it was signed.
    let mut changed = entry.clone();
    changed.failure_domain = "elsewhere".into();
    refused(&c.join(&node, changed, vec![]), "signature does not verify");
    // A member asking again.
    let member = c.members[1].clone();
    refused(
        &c.join(&member, registration(&member, "again", 9100), vec![]),
        "member already",
    );
    // Another node under the name of an open request.
    let id = request_id(&entry);
    c.join(&node, entry, vec![]);
    let twin = PrivateKey::from_seed(53);
    refused(
        &c.join(&twin, registration(&twin, "node5", 9006), vec![]),
        "already uses the name",
    );
    // Approvals: not an operator, not an identifier, no such request.
    let (stranger, prefix) = operator(200);
    let by_stranger = c.run(
        Sender::Identifier {
            prefix,
            signers: vec![IndexedKey {
                index: 0,
                key: stranger.public_key(),
            }],
        },
        &[&stranger],
        MembershipOp::Approve { request: id },
    );
    refused(&by_stranger, "not an operator");
    let by_key = c.run(
        Sender::Key(c.operators[0].0.public_key()),
        &[&c.operators[0].0.clone()],
        MembershipOp::Approve { request: id },
    );
    refused(&by_key, "operator's KERI identifier");
    refused(&c.approve(0, hash_parts(&[b"nothing"])), "no join request");
    // Without a policy, nobody joins.
    c.env.membership = None;
    let late = PrivateKey::from_seed(54);
    refused(
        &c.join(&late, registration(&late, "late", 9007), vec![]),
        "admits no nodes",
    );
}

#[test]
fn a_request_expires_unapproved() {
    let mut c = Cluster::new("none");
    let node = PrivateKey::from_seed(55);
    let entry = registration(&node, "node6", 9008);
    let id = request_id(&entry);
    c.join(&node, entry, vec![]);
    c.now += REQUEST_TTL_MS;
    refused(&c.approve(1, id), "not open");
    assert_eq!(c.request(&id).status, RequestStatus::Expired);
}

#[test]
fn an_operator_statement_must_be_signed_by_an_operator_over_this_registration() {
    let mut c = Cluster::new("operator-statement");
    let node = PrivateKey::from_seed(56);
    let entry = registration(&node, "node7", 9010);
    let statement = |key: &PrivateKey, prefix: &str, entry: &NodeInfo, cluster: &Digest| {
        let message = OperatorStatement::message(cluster, entry);
        let signature = key.sign(namespace::ATTESTATION, &message);
        OperatorStatement::evidence(prefix, &[(0, key.public_key(), signature)])
    };
    let cluster = c.env.cluster_id;
    refused(
        &c.join(&node, entry.clone(), vec![]),
        "not an operator statement",
    );
    let (stranger, stranger_prefix) = operator(300);
    refused(
        &c.join(
            &node,
            entry.clone(),
            statement(&stranger, &stranger_prefix, &entry, &cluster),
        ),
        "not an operator of this cluster",
    );
    // Signed by an operator's prefix but with another key.
    let prefix = c.operators[1].1.clone();
    refused(
        &c.join(
            &node,
            entry.clone(),
            statement(&stranger, &prefix, &entry, &cluster),
        ),
        "not signed with authority",
    );
    // The operator's statement about another registration.
    let key = c.operators[1].0.clone();
    let other = registration(&PrivateKey::from_seed(57), "node8", 9012);
    refused(
        &c.join(
            &node,
            entry.clone(),
            statement(&key, &prefix, &other, &cluster),
        ),
        "does not verify",
    );
    let good = c.join(
        &node,
        entry.clone(),
        statement(&key, &prefix, &entry, &cluster),
    );
    assert_eq!(good.outcome, Outcome::Applied, "{}", good.detail);
}

#[test]
fn members_leave_while_enough_remain() {
    let mut c = Cluster::new("none");
    let member = c.members[2].clone();
    let left = c.run(
        Sender::Key(member.public_key()),
        &[&member],
        MembershipOp::Leave,
    );
    refused(&left, "a cluster keeps at least 4");
    // With one admitted join, one member may leave.
    let node = PrivateKey::from_seed(58);
    let entry = registration(&node, "node9", 9014);
    let id = request_id(&entry);
    c.join(&node, entry, vec![]);
    c.approve(0, id);
    c.approve(1, id);
    let left = c.run(
        Sender::Key(member.public_key()),
        &[&member],
        MembershipOp::Leave,
    );
    assert_eq!(left.outcome, Outcome::Applied, "{}", left.detail);
    assert_eq!(c.changes().leaves, vec![2]);
    refused(
        &c.run(
            Sender::Key(member.public_key()),
            &[&member],
            MembershipOp::Leave,
        ),
        "leaving already",
    );
    let stranger = PrivateKey::from_seed(59);
    refused(
        &c.run(
            Sender::Key(stranger.public_key()),
            &[&stranger],
            MembershipOp::Leave,
        ),
        "only a member",
    );
}

#[test]
fn operators_remove_a_member_by_enough_votes() {
    let mut c = Cluster::new("none");
    // One admitted join first, so that a member may go.
    let node = PrivateKey::from_seed(61);
    let entry = registration(&node, "node9", 9018);
    let id = request_id(&entry);
    c.join(&node, entry, vec![]);
    c.approve(0, id);
    c.approve(1, id);
    let target = c.members[1].public_key();
    let vote = |c: &mut Cluster, operator: usize, member: welkin_types::PublicKey| {
        let (key, prefix) = c.operators[operator].clone();
        c.run(
            Sender::Identifier {
                prefix,
                signers: vec![IndexedKey {
                    index: 0,
                    key: key.public_key(),
                }],
            },
            &[&key],
            MembershipOp::Remove { member },
        )
    };
    let first = vote(&mut c, 0, target.clone());
    assert_eq!(first.outcome, Outcome::Applied, "{}", first.detail);
    assert!(first.detail.contains("1 of 2 votes"), "{}", first.detail);
    assert!(c.changes().leaves.is_empty());
    refused(&vote(&mut c, 0, target.clone()), "already");
    let second = vote(&mut c, 1, target.clone());
    assert_eq!(second.outcome, Outcome::Applied, "{}", second.detail);
    assert!(
        second.detail.contains("removed at the next epoch"),
        "{}",
        second.detail
    );
    assert_eq!(c.changes().leaves, vec![1]);
    refused(&vote(&mut c, 2, target), "leaving already");
    // Not by a member's key, not for a stranger, and not below the floor.
    let by_key = c.run(
        Sender::Key(c.members[0].public_key()),
        &[&c.members[0].clone()],
        MembershipOp::Remove {
            member: c.members[2].public_key(),
        },
    );
    refused(&by_key, "operator's KERI identifier");
    refused(
        &vote(&mut c, 0, PrivateKey::from_seed(99).public_key()),
        "not a member",
    );
    let next = c.members[2].public_key();
    vote(&mut c, 0, next.clone());
    refused(&vote(&mut c, 1, next), "a cluster keeps at least 4");
}

#[test]
fn stored_encodings_are_frozen() {
    let key = PrivateKey::from_seed(60);
    let request = JoinRequest {
        registration: registration(&key, "node10", 9016),
        submitted_ms: 7,
        approvals: vec!["Bop".into()],
        status: RequestStatus::Admitted,
    };
    let bytes = request.encode();
    assert_eq!(JoinRequest::decode(&bytes).expect("decodes"), request);
    let changes = Changes {
        joins: vec![Digest::from([1; 32])],
        leaves: vec![3],
    };
    assert_eq!(
        Changes::decode(&changes.encode()).expect("decodes"),
        changes
    );
    let all = [bytes, changes.encode()].concat();
    assert_eq!(
        hex::encode(hash_parts(&[&all])),
        "609a8fa2fa267cf8475c01e095446a594c436d2928a331e625bf8caa05fdf1df"
    );
}
