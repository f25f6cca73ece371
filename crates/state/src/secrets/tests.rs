//! The secrets module against an in-memory state: policies, tokens and KV v2 as Vault
//! behaves, every refusal recorded in the log.

use super::{SecretsResult, genesis_writes, kv};
use crate::{Env, apply_to_map, keys};
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use std::collections::BTreeMap;
use welkin_types::{
    Block, ChainParams, Detachable, Digest, LogEntry, Outcome, Payload, Sender, Transaction, TxId,
    hash_parts,
    secrets::{MountKind, SecretsOp, TokenRef, TokenSpec, token_public_key, token_signing_key},
};

pub(super) const ROOT: &str = "wlk.root";

/// An in-memory cluster state, one block per request (shared with the recipients tests).
pub(super) struct Cluster {
    pub(super) env: Env,
    pub(super) state: BTreeMap<Digest, Vec<u8>>,
    pub(super) height: u64,
    pub(super) now: u64,
    pub(super) nonce: u64,
    /// The id of the last request run.
    pub(super) last_id: TxId,
    /// The values the last request's block destroyed.
    pub(super) shredded: Vec<TxId>,
}

impl Cluster {
    pub(super) fn new() -> Cluster {
        let mut state = BTreeMap::new();
        for (key, value) in genesis_writes(0, Some(&token_public_key(ROOT))) {
            state.insert(key, value);
        }
        Cluster {
            env: Env {
                cluster_id: hash_parts(&[b"secrets test"]),
                params: ChainParams::default(),
                members: Vec::new(),
                retired: Vec::new(),
                threshold: 0,
                domains: Vec::new(),
                cluster_key: None,
                membership: None,
            },
            state,
            height: 0,
            now: 1_000,
            nonce: 0,
            last_id: hash_parts(&[b"none"]),
            shredded: Vec::new(),
        }
    }

    /// Runs one request by `token` in its own block; returns the result and the log entry.
    pub(super) fn run(&mut self, token: &str, op: SecretsOp) -> (SecretsResult, LogEntry) {
        self.height += 1;
        self.now += 1_000;
        self.nonce += 1;
        let tx = Transaction {
            sender: Sender::Key(token_public_key(token)),
            nonce: self.nonce,
            expiry_ms: self.now + 60_000,
            payload: Payload::Secrets(Box::new(op)),
        }
        .sign(&token_signing_key(token), &self.env.cluster_id);
        self.last_id = tx.id();
        let block = Block::new(hash_parts(&[b"p"]), self.height, self.now, vec![tx]);
        let effects = apply_to_map(&self.env, &mut self.state, &block);
        assert_eq!(effects.receipts.len(), 1, "one receipt per request");
        self.shredded = effects.shredded.clone();
        let entry = welkin_types::decode::<LogEntry>(&effects.log_entries[0]).expect("decodes");
        assert_eq!(
            entry.tx.id(),
            self.last_id,
            "{}",
            entry.tx.tx.payload.kind()
        );
        assert!(
            entry
                .tx
                .tx
                .payload
                .detachable()
                .is_none_or(|v| !v.is_attached()),
            "the log never holds a value's bytes"
        );
        let (_, result) = effects
            .secrets
            .into_iter()
            .next()
            .expect("a secrets result");
        match &result {
            SecretsResult::Refused { .. } => assert_eq!(entry.outcome, Outcome::Rejected),
            _ => assert_eq!(entry.outcome, Outcome::Applied),
        }
        (result, entry)
    }

    pub(super) fn ok(&mut self, token: &str, op: SecretsOp) -> SecretsResult {
        let (result, entry) = self.run(token, op);
        assert!(
            !matches!(result, SecretsResult::Refused { .. }),
            "refused: {result:?} ({})",
            entry.detail
        );
        result
    }

    pub(super) fn status(&mut self, token: &str, op: SecretsOp) -> u16 {
        match self.run(token, op) {
            (SecretsResult::Refused { status, .. }, entry) => {
                assert!(
                    entry.detail.starts_with(&status.to_string()),
                    "{}",
                    entry.detail
                );
                status
            }
            (other, _) => panic!("not refused: {other:?}"),
        }
    }

    pub(super) fn policy(&mut self, name: &str, text: &str) {
        let policy = welkin_policy::parse(name, text).expect("policy parses");
        self.ok(
            ROOT,
            SecretsOp::PolicyWrite {
                name: name.into(),
                policy: policy.encode().to_vec(),
            },
        );
    }

    pub(super) fn token(
        &mut self,
        parent: &str,
        token: &str,
        policies: &[&str],
        ttl_ms: u64,
        uses: u32,
    ) {
        let mut policies: Vec<String> = policies.iter().map(|p| p.to_string()).collect();
        policies.sort();
        self.ok(
            parent,
            SecretsOp::TokenCreate(TokenSpec {
                key: token_public_key(token),
                policies,
                ttl_ms,
                renewable: true,
                num_uses: uses,
                display_name: "test".into(),
                no_parent: false,
                meta: vec![],
            }),
        );
    }
}

fn write(path: &str, nonce: u8, cas: Option<u64>) -> SecretsOp {
    SecretsOp::KvWrite {
        mount: "secret".into(),
        path: path.into(),
        nonce: [nonce; 32],
        sealed: Detachable::new(vec![nonce; 8]),
        cas,
    }
}

fn read(path: &str, version: u64) -> SecretsOp {
    SecretsOp::KvRead {
        mount: "secret".into(),
        path: path.into(),
        version,
        reader: [7; 32],
    }
}

#[test]
fn writes_make_versions_and_reads_release_the_state_computed_target() {
    let mut c = Cluster::new();
    assert_eq!(
        c.ok(ROOT, write("app/db", 1, None)),
        SecretsResult::Written {
            version: 1,
            created_ms: 2_000
        }
    );
    c.ok(ROOT, write("app/db", 2, None));
    match c.ok(ROOT, read("app/db", 0)) {
        SecretsResult::Released {
            version,
            target,
            reader,
            sealed,
        } => {
            assert_eq!(sealed.digest, Detachable::digest_of(&[2; 8]));
            assert_eq!(version, 2);
            assert_eq!(target, kv::target("secret", "app/db", &[2; 32]));
            assert_eq!(reader, [7; 32]);
        }
        other => panic!("{other:?}"),
    }
    match c.ok(ROOT, read("app/db", 1)) {
        SecretsResult::Released { target, .. } => {
            assert_eq!(target, kv::target("secret", "app/db", &[1; 32]))
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(c.status(ROOT, read("app/db", 3)), 404);
    assert_eq!(c.status(ROOT, read("app/missing", 0)), 404);
}

#[test]
fn unknown_tokens_are_denied_and_the_denial_is_logged() {
    let mut c = Cluster::new();
    let (result, entry) = c.run("wlk.nobody", read("app/db", 0));
    assert_eq!(
        result,
        SecretsResult::Refused {
            status: 403,
            message: "permission denied".into()
        }
    );
    assert_eq!(entry.detail, "403: permission denied");
    assert_eq!(entry.tx.tx.payload.kind(), "kv_read");
}

#[test]
fn policies_decide_with_globs_and_deny() {
    let mut c = Cluster::new();
    c.ok(ROOT, write("app/db", 1, None));
    c.ok(ROOT, write("app/admin", 2, None));
    c.policy(
        "reader",
        r#"
        path "secret/data/app/*" { capabilities = ["read"] }
        path "secret/data/app/admin" { capabilities = ["deny"] }
        "#,
    );
    c.token(ROOT, "wlk.reader", &["default", "reader"], 0, 0);
    assert!(matches!(
        c.ok("wlk.reader", read("app/db", 0)),
        SecretsResult::Released { .. }
    ));
    assert_eq!(c.status("wlk.reader", read("app/admin", 0)), 403);
    assert_eq!(c.status("wlk.reader", write("app/db", 3, None)), 403);
    // The default policy lets a token look itself up, and nothing more.
    c.ok(
        "wlk.reader",
        SecretsOp::Check {
            path: "auth/token/lookup-self".into(),
            capabilities: welkin_policy::Capabilities::READ.bits(),
        },
    );
    // A policy change applies from the next request on.
    c.policy(
        "reader",
        r#"path "secret/data/other" { capabilities = ["read"] }"#,
    );
    assert_eq!(c.status("wlk.reader", read("app/db", 0)), 403);
}

#[test]
fn check_and_set_is_enforced() {
    let mut c = Cluster::new();
    c.ok(ROOT, write("a", 1, Some(0)));
    assert_eq!(c.status(ROOT, write("a", 2, Some(0))), 400);
    c.ok(ROOT, write("a", 3, Some(1)));
    c.ok(
        ROOT,
        SecretsOp::KvMetadataWrite {
            mount: "secret".into(),
            path: "a".into(),
            max_versions: None,
            cas_required: Some(true),
            custom_metadata: None,
        },
    );
    match c.run(ROOT, write("a", 4, None)).0 {
        SecretsResult::Refused { status, message } => {
            assert_eq!(status, 400);
            assert_eq!(message, "check-and-set parameter required for this call");
        }
        other => panic!("{other:?}"),
    }
}

#[test]
fn delete_undelete_and_destroy() {
    let mut c = Cluster::new();
    c.ok(ROOT, write("a", 1, None));
    c.ok(ROOT, write("a", 2, None));
    c.ok(
        ROOT,
        SecretsOp::KvDelete {
            mount: "secret".into(),
            path: "a".into(),
            versions: vec![],
        },
    );
    match c.run(ROOT, read("a", 0)).0 {
        SecretsResult::Refused { status, message } => {
            assert_eq!((status, &*message), (404, "deleted"))
        }
        other => panic!("{other:?}"),
    }
    c.ok(
        ROOT,
        SecretsOp::KvUndelete {
            mount: "secret".into(),
            path: "a".into(),
            versions: vec![2],
        },
    );
    assert!(matches!(
        c.ok(ROOT, read("a", 0)),
        SecretsResult::Released { version: 2, .. }
    ));
    let mount = super::mount(
        &crate::Overlay {
            snapshot: &c.state,
            writes: BTreeMap::new(),
            missing: Default::default(),
            corrupt: Default::default(),
            schedule: Default::default(),
            shredded: Vec::new(),
            objects_removed: Vec::new(),
        },
        "secret",
    )
    .expect("mounted")
    .id;
    assert!(c.state.contains_key(&keys::kv_value(&mount, "a", 1)));
    c.ok(
        ROOT,
        SecretsOp::KvDestroy {
            mount: "secret".into(),
            path: "a".into(),
            versions: vec![1],
        },
    );
    assert!(
        !c.state.contains_key(&keys::kv_value(&mount, "a", 1)),
        "ciphertext gone"
    );
    match c.run(ROOT, read("a", 1)).0 {
        SecretsResult::Refused { status, message } => {
            assert_eq!((status, &*message), (404, "destroyed"))
        }
        other => panic!("{other:?}"),
    }
    // Undelete cannot bring a destroyed version back.
    c.ok(
        ROOT,
        SecretsOp::KvUndelete {
            mount: "secret".into(),
            path: "a".into(),
            versions: vec![1],
        },
    );
    assert_eq!(c.status(ROOT, read("a", 1)), 404);
}

#[test]
fn old_versions_beyond_max_versions_are_dropped_with_their_ciphertext() {
    let mut c = Cluster::new();
    c.ok(
        ROOT,
        SecretsOp::KvConfigWrite {
            mount: "secret".into(),
            max_versions: Some(2),
            cas_required: None,
        },
    );
    for nonce in 1..=3 {
        c.ok(ROOT, write("a", nonce, None));
    }
    assert_eq!(c.status(ROOT, read("a", 1)), 404);
    assert!(matches!(
        c.ok(ROOT, read("a", 2)),
        SecretsResult::Released { .. }
    ));
}

#[test]
fn tokens_expire_run_out_of_uses_and_die_with_their_parent() {
    let mut c = Cluster::new();
    c.ok(ROOT, write("a", 1, None));
    c.policy(
        "all",
        r#"path "secret/*" { capabilities = ["read", "create", "update"] }"#,
    );
    c.token(ROOT, "wlk.twice", &["all"], 0, 2);
    c.ok("wlk.twice", read("a", 0));
    c.ok("wlk.twice", read("a", 0));
    assert_eq!(c.status("wlk.twice", read("a", 0)), 403, "uses exhausted");

    c.token(ROOT, "wlk.short", &["all"], 5_000, 0);
    c.ok("wlk.short", read("a", 0));
    c.now += 10_000;
    assert_eq!(c.status("wlk.short", read("a", 0)), 403, "expired");

    c.token(ROOT, "wlk.parent", &["all", "default"], 0, 0);
    c.policy("other", r#"path "secret/*" { capabilities = ["delete"] }"#);
    // A child may not hold a policy its parent lacks.
    assert_eq!(
        c.status(
            "wlk.parent",
            SecretsOp::TokenCreate(TokenSpec {
                key: token_public_key("wlk.child"),
                policies: vec!["other".into()],
                ttl_ms: 0,
                renewable: false,
                num_uses: 0,
                display_name: String::new(),
                no_parent: false,
                meta: vec![],
            })
        ),
        403,
        "auth/token/create is not in the parent's policies"
    );
    c.policy(
        "all",
        r#"
        path "secret/*" { capabilities = ["read", "create", "update"] }
        path "auth/token/create" { capabilities = ["update"] }
        "#,
    );
    c.token("wlk.parent", "wlk.child", &["all"], 0, 0);
    c.ok("wlk.child", read("a", 0));
    c.ok(
        ROOT,
        SecretsOp::TokenRevoke(TokenRef::Accessor(welkin_types::secrets::token_accessor(
            &token_public_key("wlk.parent"),
        ))),
    );
    assert_eq!(
        c.status("wlk.child", read("a", 0)),
        403,
        "revoked with its parent"
    );
}

#[test]
fn directories_are_indexed_for_list() {
    let mut c = Cluster::new();
    c.ok(ROOT, write("a/b/c", 1, None));
    c.ok(ROOT, write("a/d", 2, None));
    c.ok(ROOT, write("e", 3, None));
    let overlay = crate::Overlay {
        snapshot: &c.state,
        writes: BTreeMap::new(),
        missing: Default::default(),
        corrupt: Default::default(),
        schedule: Default::default(),
        shredded: Vec::new(),
        objects_removed: Vec::new(),
    };
    let mount = super::mount(&overlay, "secret").expect("mounted").id;
    assert_eq!(kv::list(&overlay, &mount, ""), vec!["a/", "e"]);
    assert_eq!(kv::list(&overlay, &mount, "a/"), vec!["b/", "d"]);
    drop(overlay);
    c.ok(
        ROOT,
        SecretsOp::KvMetadataDelete {
            mount: "secret".into(),
            path: "a/b/c".into(),
        },
    );
    let overlay = crate::Overlay {
        snapshot: &c.state,
        writes: BTreeMap::new(),
        missing: Default::default(),
        corrupt: Default::default(),
        schedule: Default::default(),
        shredded: Vec::new(),
        objects_removed: Vec::new(),
    };
    assert_eq!(kv::list(&overlay, &mount, "a/"), vec!["d"]);
    assert!(kv::list(&overlay, &mount, "a/b/").is_empty());
}

#[test]
fn mounts_are_checked_and_a_new_mount_does_not_see_old_data() {
    let mut c = Cluster::new();
    assert_eq!(
        c.status(
            ROOT,
            SecretsOp::MountEnable {
                mount: "sys".into(),
                description: String::new(),
                kind: MountKind::Kv2,
            }
        ),
        400
    );
    let enable = SecretsOp::MountEnable {
        mount: "team".into(),
        description: "team secrets".into(),
        kind: MountKind::Kv2,
    };
    c.ok(ROOT, enable.clone());
    assert_eq!(c.status(ROOT, enable.clone()), 400, "in use");
    let team_write = SecretsOp::KvWrite {
        mount: "team".into(),
        path: "x".into(),
        nonce: [1; 32],
        sealed: Detachable::new(vec![1]),
        cas: None,
    };
    c.ok(ROOT, team_write);
    let team_read = SecretsOp::KvRead {
        mount: "team".into(),
        path: "x".into(),
        version: 0,
        reader: [0; 32],
    };
    assert!(matches!(
        c.ok(ROOT, team_read.clone()),
        SecretsResult::Released { .. }
    ));
    c.ok(
        ROOT,
        SecretsOp::MountDisable {
            mount: "team".into(),
        },
    );
    assert_eq!(c.status(ROOT, team_read.clone()), 404);
    c.ok(ROOT, enable);
    assert_eq!(c.status(ROOT, team_read), 404, "a new mount starts empty");
}

#[test]
fn identifiers_cannot_send_secrets_requests() {
    let mut c = Cluster::new();
    c.height += 1;
    let key = welkin_types::PrivateKey::from_seed(5);
    let tx = Transaction {
        sender: Sender::Identifier {
            prefix: "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4".into(),
            signers: vec![welkin_types::IndexedKey {
                index: 0,
                key: key.public_key(),
            }],
        },
        nonce: 1,
        expiry_ms: 60_000,
        payload: Payload::Secrets(Box::new(read("a", 0))),
    }
    .sign(&key, &c.env.cluster_id);
    let block = Block::new(hash_parts(&[b"p"]), 1, 1_000, vec![tx]);
    let effects = apply_to_map(&c.env, &mut c.state, &block);
    assert_eq!(effects.receipts[0].1.outcome, Outcome::Rejected);
}

#[test]
fn wrapped_responses_open_once_and_the_wrapping_token_does_nothing_else() {
    let mut c = Cluster::new();
    c.ok(ROOT, write("a", 1, None));
    let wrap_key = token_public_key("wlk.wrap");
    c.ok(
        ROOT,
        SecretsOp::WrapStore {
            key: wrap_key.clone(),
            ttl_ms: 60_000,
            path: "secret/data/a".into(),
            nonce: [3; 32],
            sealed: Detachable::new(vec![9; 4]),
        },
    );
    // The wrapping token may not read secrets: its one use stays.
    assert_eq!(c.status("wlk.wrap", read("a", 0)), 403);
    match c.ok("wlk.wrap", SecretsOp::Unwrap { reader: [1; 32] }) {
        SecretsResult::Released { target, sealed, .. } => {
            assert_eq!(target, super::wrap_target(&wrap_key, &[3; 32]));
            assert_eq!(sealed.digest, Detachable::digest_of(&[9; 4]));
        }
        other => panic!("{other:?}"),
    }
    assert_eq!(
        c.status("wlk.wrap", SecretsOp::Unwrap { reader: [1; 32] }),
        403,
        "single use"
    );
    assert!(!c.state.contains_key(&keys::wrapping(&wrap_key)));
}

#[test]
fn keri_logins_get_their_roles_policies_until_the_identifier_rotates() {
    use welkin_keri::{InceptionBuilder, RotationBuilder, Signer, Threshold, sign, signed};
    let mut c = Cluster::new();
    c.ok(ROOT, write("app/db", 1, None));
    c.policy(
        "app-read",
        r#"path "secret/data/app/*" { capabilities = ["read"] }"#,
    );
    let (current, next) = (Signer::new(&[1; 32]), Signer::new(&[2; 32]));
    let icp = InceptionBuilder::new(vec![current.verkey()])
        .next(vec![next.verkey().next_digest()], Threshold::Simple(1))
        .build();
    let prefix = icp.prefix().qb64();
    let sigs = sign(&icp, std::slice::from_ref(&current));
    let submitter = welkin_types::PrivateKey::from_seed(9);
    let event = |message: welkin_keri::Message, now: u64| -> welkin_types::SignedTransaction {
        Transaction {
            sender: Sender::Key(submitter.public_key()),
            nonce: now,
            expiry_ms: now + 60_000,
            payload: Payload::KeyEvent(message.to_bytes().expect("encodes")),
        }
        .sign(&submitter, &hash_parts(&[b"secrets test"]))
    };
    let login = |c: &mut Cluster, seed: u8, token: &str| {
        let key = welkin_types::decode::<welkin_types::PrivateKey>(&[seed; 32]).expect("seed");
        c.height += 1;
        c.now += 1_000;
        c.nonce += 1;
        let tx = Transaction {
            sender: Sender::Identifier {
                prefix: prefix.clone(),
                signers: vec![welkin_types::IndexedKey {
                    index: 0,
                    key: key.public_key(),
                }],
            },
            nonce: c.nonce,
            expiry_ms: c.now + 60_000,
            payload: Payload::Secrets(Box::new(SecretsOp::KeriLogin {
                key: token_public_key(token),
                ttl_ms: 0,
            })),
        }
        .sign(&key, &c.env.cluster_id);
        let block = Block::new(hash_parts(&[b"p"]), c.height, c.now, vec![tx]);
        let effects = apply_to_map(&c.env, &mut c.state, &block);
        effects.secrets.into_iter().next().map(|(_, r)| r)
    };
    c.height += 1;
    let block = Block::new(
        hash_parts(&[b"p"]),
        c.height,
        c.now,
        vec![event(signed(icp, sigs), c.now)],
    );
    assert_eq!(
        apply_to_map(&c.env, &mut c.state, &block).receipts[0]
            .1
            .outcome,
        Outcome::Applied
    );

    // Without a role, a login is refused; an operator maps the identifier.
    assert!(matches!(
        login(&mut c, 1, "wlk.alice"),
        Some(SecretsResult::Refused { status: 403, .. })
    ));
    c.ok(
        ROOT,
        SecretsOp::KeriRole {
            prefix: prefix.clone(),
            policies: vec!["app-read".into()],
            ttl_ms: 0,
        },
    );
    assert_eq!(login(&mut c, 1, "wlk.alice"), Some(SecretsResult::Done));
    assert!(matches!(
        c.ok("wlk.alice", read("app/db", 0)),
        SecretsResult::Released { .. }
    ));
    assert_eq!(
        c.status("wlk.alice", write("app/db", 2, None)),
        403,
        "read only"
    );

    // A rotation voids the token made with the old keys; a login with the new keys works.
    let state =
        crate::identity::stored_key_state(c.state.get(&keys::id_state(&prefix)).map(Vec::as_slice))
            .expect("decodes")
            .expect("incepted");
    let rot = RotationBuilder::new(&state, vec![next.verkey()]).build();
    let sigs = sign(&rot, std::slice::from_ref(&next));
    c.height += 1;
    let block = Block::new(
        hash_parts(&[b"p"]),
        c.height,
        c.now,
        vec![event(signed(rot, sigs), c.now)],
    );
    assert_eq!(
        apply_to_map(&c.env, &mut c.state, &block).receipts[0]
            .1
            .outcome,
        Outcome::Applied
    );
    assert_eq!(
        c.status("wlk.alice", read("app/db", 0)),
        403,
        "voided by the rotation"
    );
    assert!(
        login(&mut c, 1, "wlk.alice-old").is_none(),
        "old keys cannot log in"
    );
    assert_eq!(login(&mut c, 2, "wlk.alice-new"), Some(SecretsResult::Done));
    assert!(matches!(
        c.ok("wlk.alice-new", read("app/db", 0)),
        SecretsResult::Released { .. }
    ));
}

#[test]
fn destroyed_dropped_unwrapped_and_refused_values_are_shredded() {
    let mut c = Cluster::new();
    c.ok(ROOT, write("a", 1, None));
    let first = c.last_id;
    assert!(c.shredded.is_empty(), "a write keeps its value");
    c.ok(ROOT, write("a", 2, None));
    let second = c.last_id;
    // Reading, soft-deleting and undeleting keep the bytes.
    c.ok(ROOT, read("a", 1));
    let versions = |v: u64| (("secret".to_string(), "a".to_string()), vec![v]);
    let ((mount, path), v) = versions(1);
    c.ok(
        ROOT,
        SecretsOp::KvDelete {
            mount: mount.clone(),
            path: path.clone(),
            versions: v.clone(),
        },
    );
    assert!(c.shredded.is_empty(), "a soft delete can be undone");
    c.ok(
        ROOT,
        SecretsOp::KvDestroy {
            mount: mount.clone(),
            path: path.clone(),
            versions: v.clone(),
        },
    );
    assert_eq!(
        c.shredded,
        vec![first],
        "destroy shreds the version's bytes"
    );
    c.ok(
        ROOT,
        SecretsOp::KvDestroy {
            mount: mount.clone(),
            path: path.clone(),
            versions: v,
        },
    );
    assert!(c.shredded.is_empty(), "nothing is left to shred twice");
    // A refused write (CAS mismatch) leaves nothing to keep.
    assert_eq!(c.status(ROOT, write("a", 3, Some(7))), 400);
    assert_eq!(c.shredded, vec![c.last_id]);
    // max_versions drops the oldest version, and its bytes.
    c.ok(
        ROOT,
        SecretsOp::KvMetadataWrite {
            mount: mount.clone(),
            path: path.clone(),
            max_versions: Some(1),
            cas_required: None,
            custom_metadata: None,
        },
    );
    c.ok(ROOT, write("a", 4, None));
    assert_eq!(c.shredded, vec![second], "the version beyond max_versions");
    let fourth = c.last_id;
    c.ok(ROOT, SecretsOp::KvMetadataDelete { mount, path });
    assert_eq!(
        c.shredded,
        vec![fourth],
        "deleting the metadata shreds every version"
    );
    // An unwrapped response is shredded with its single use.
    let wrap_key = token_public_key("wlk.wrap");
    c.ok(
        ROOT,
        SecretsOp::WrapStore {
            key: wrap_key,
            ttl_ms: 60_000,
            path: "secret/data/a".into(),
            nonce: [3; 32],
            sealed: Detachable::new(vec![9; 4]),
        },
    );
    let wrapped = c.last_id;
    c.ok("wlk.wrap", SecretsOp::Unwrap { reader: [1; 32] });
    assert_eq!(c.shredded, vec![wrapped]);
}

impl Cluster {
    /// Applies an empty block `advance_ms` after the last; returns what it shredded.
    fn idle(&mut self, advance_ms: u64) -> Vec<TxId> {
        self.height += 1;
        self.now += advance_ms;
        let block = Block::new(hash_parts(&[b"p"]), self.height, self.now, vec![]);
        apply_to_map(&self.env, &mut self.state, &block).shredded
    }

    fn has_token(&self, token: &str) -> bool {
        let key = token_public_key(token);
        let held = self.state.contains_key(&keys::token(&key));
        let accessor = keys::token_accessor(&welkin_types::secrets::token_accessor(&key));
        assert_eq!(
            held,
            self.state.contains_key(&accessor),
            "a token and its accessor go together"
        );
        held
    }

    fn children_of(&self, token: &str) -> usize {
        let bytes = &self.state[&keys::token(&token_public_key(token))];
        super::records::Token::decode(bytes)
            .expect("token decodes")
            .children
            .len()
    }
}

#[test]
fn expired_tokens_and_wrapped_responses_are_swept_from_state_and_shredded() {
    let mut c = Cluster::new();
    c.ok(ROOT, write("a", 1, None));
    c.policy(
        "all",
        r#"
        path "secret/*" { capabilities = ["read"] }
        path "auth/token/create" { capabilities = ["update"] }
        "#,
    );
    c.token(ROOT, "wlk.brief", &["all"], 30_000, 0);
    c.token(ROOT, "wlk.parent", &["all", "default"], 2 * 3_600_000, 0);
    c.token("wlk.parent", "wlk.kid", &["all"], 600_000, 0);
    c.token(ROOT, "wlk.renewed", &["default"], 90 * 60_000, 0);
    c.ok(
        ROOT,
        SecretsOp::WrapStore {
            key: token_public_key("wlk.wrap"),
            ttl_ms: 90_000,
            path: "secret/data/a".into(),
            nonce: [3; 32],
            sealed: Detachable::new(vec![9; 4]),
        },
    );
    let wrapped = c.last_id;
    assert_eq!(c.children_of("wlk.parent"), 1);

    // Nobody uses them again: a few minutes of empty blocks.
    let mut shredded = Vec::new();
    for _ in 0..3 {
        shredded.extend(c.idle(60_000));
    }
    assert!(!c.has_token("wlk.brief"), "expired 30 s after it was made");
    assert!(
        !c.has_token("wlk.wrap"),
        "the wrapping token expired unused"
    );
    assert!(
        !c.state
            .contains_key(&keys::wrapping(&token_public_key("wlk.wrap"))),
        "its response went with it"
    );
    assert_eq!(shredded, vec![wrapped], "and so did the response's bytes");
    assert!(c.has_token("wlk.kid") && c.has_token("wlk.parent"));

    // At 80 minutes the renewable token renews for another 90.
    for _ in 0..8 {
        c.idle(600_000);
    }
    assert!(!c.has_token("wlk.kid"), "expired after 10 minutes");
    assert_eq!(
        c.children_of("wlk.parent"),
        0,
        "an expired child no longer counts against its parent's limit"
    );
    c.ok("wlk.renewed", SecretsOp::TokenRenewSelf { increment_ms: 0 });
    // 2 h 10 min: the parent is gone; the renewed token lives to about 2 h 50 min.
    for _ in 0..5 {
        c.idle(600_000);
    }
    assert!(!c.has_token("wlk.parent"));
    assert!(c.has_token("wlk.renewed"), "a renewal moves its end");
    for _ in 0..5 {
        c.idle(600_000);
    }
    assert!(!c.has_token("wlk.renewed"));
    assert!(c.has_token(ROOT), "the root token never expires");
    for _ in 0..3 {
        c.idle(86_400_000);
    }
    let queued: Vec<u64> = crate::expiry::Tier::ALL
        .into_iter()
        .map(|tier| {
            let name = crate::expiry::Queue::Tokens(tier).name();
            let head = crate::read_u64(c.state.get(&keys::queue_head(name)).map(Vec::as_slice));
            let tail = crate::read_u64(c.state.get(&keys::queue_tail(name)).map(Vec::as_slice));
            tail - head
        })
        .collect();
    assert_eq!(queued, vec![0, 0, 0], "every check has been made");
}

#[test]
fn unlogged_requests_are_allowed_as_logged_ones_and_never_use_a_token_up() {
    use welkin_policy::Capabilities;
    let mut cluster = Cluster::new();
    cluster.policy(
        "enc",
        r#"path "transit/encrypt/app" { capabilities = ["update"] }"#,
    );
    cluster.token(ROOT, "wlk.enc", &["enc"], 60_000, 0);
    cluster.token(ROOT, "wlk.once", &["enc"], 60_000, 1);
    let ask = |cluster: &Cluster, token: &str, path: &str, now: u64| {
        crate::view(&cluster.state, |state| {
            super::allowed(
                state,
                now,
                &token_public_key(token),
                path,
                Capabilities::UPDATE,
            )
        })
        .expect("every key is in memory")
    };
    let now = cluster.now;
    assert_eq!(ask(&cluster, "wlk.enc", "transit/encrypt/app", now), Ok(()));
    assert_eq!(
        ask(&cluster, "wlk.enc", "transit/encrypt/other", now),
        Err(SecretsResult::denied())
    );
    assert!(matches!(
        ask(&cluster, "wlk.once", "transit/encrypt/app", now),
        Err(SecretsResult::Refused { status: 403, .. })
    ));
    assert_eq!(
        ask(&cluster, "wlk.enc", "transit/encrypt/app", now + 120_000),
        Err(SecretsResult::denied()),
        "expired"
    );
    assert_eq!(
        ask(&cluster, "wlk.unknown", "transit/encrypt/app", now),
        Err(SecretsResult::denied())
    );
}
