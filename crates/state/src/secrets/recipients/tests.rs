//! Values sealed to recipients against an in-memory state: encryption keys bound to the key
//! state, the checks of a seal, reads released to recipients only, and re-sealing.

use super::{current_key, records::Recipients};
use crate::{
    apply_to_map, keys,
    secrets::{
        SecretsResult, kv,
        tests::{Cluster, ROOT},
    },
};
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use welkin_keri::{InceptionBuilder, RotationBuilder, Signer, Threshold, sign, signed};
use welkin_sealed::{
    RecipientError, RecipientSealed, open_as_recipient, recipient_public_key, seal_to_recipients,
};
use welkin_types::{
    Block, IndexedKey, Outcome, Payload, PrivateKey, Sender, Transaction, hash_parts,
    secrets::{KvReseal, KvSeal, SecretsOp, token_public_key},
};

const VALUE: &[u8] = br#"{"password":"hunter2"}"#;

/// A KERI identifier with one signing key and one pre-rotated key, and an X25519 secret.
pub(in crate::secrets) struct Identity {
    pub(in crate::secrets) prefix: String,
    /// The seed of the current signing key (the next one after a rotation).
    seed: u8,
    next: Signer,
    x25519: [u8; 32],
}

impl Identity {
    /// Incepts an identifier whose keys come from `seed` and `seed + 1`.
    pub(in crate::secrets) fn incept(c: &mut Cluster, seed: u8) -> Identity {
        let (current, next) = (Signer::new(&[seed; 32]), Signer::new(&[seed + 1; 32]));
        let icp = InceptionBuilder::new(vec![current.verkey()])
            .next(vec![next.verkey().next_digest()], Threshold::Simple(1))
            .build();
        let prefix = icp.prefix().qb64();
        let sigs = sign(&icp, std::slice::from_ref(&current));
        key_event(c, signed(icp, sigs));
        Identity {
            prefix,
            seed,
            next,
            x25519: [seed; 32],
        }
    }

    pub(in crate::secrets) fn public(&self) -> [u8; 32] {
        recipient_public_key(&self.x25519)
    }

    /// Rotates to the pre-rotated key.
    fn rotate(&mut self, c: &mut Cluster) {
        let state = crate::identity::stored_key_state(
            c.state
                .get(&keys::id_state(&self.prefix))
                .map(Vec::as_slice),
        )
        .expect("decodes")
        .expect("incepted");
        let rot = RotationBuilder::new(&state, vec![self.next.verkey()]).build();
        let sigs = sign(&rot, std::slice::from_ref(&self.next));
        key_event(c, signed(rot, sigs));
        self.seed += 1;
    }

    /// Sends `op` as the identifier, signed by its current key; what the secrets module did
    /// (`None`: refused before it ran, as for keys that are not current).
    fn send(&self, c: &mut Cluster, op: SecretsOp) -> Option<SecretsResult> {
        let key = welkin_types::decode::<PrivateKey>(&[self.seed; 32]).expect("any seed");
        c.height += 1;
        c.now += 1_000;
        c.nonce += 1;
        let tx = Transaction {
            sender: Sender::Identifier {
                prefix: self.prefix.clone(),
                signers: vec![IndexedKey {
                    index: 0,
                    key: key.public_key(),
                }],
            },
            nonce: c.nonce,
            expiry_ms: c.now + 60_000,
            payload: Payload::Secrets(Box::new(op)),
        }
        .sign(&key, &c.env.cluster_id);
        let block = Block::new(hash_parts(&[b"p"]), c.height, c.now, vec![tx]);
        let effects = apply_to_map(&c.env, &mut c.state, &block);
        effects.secrets.into_iter().next().map(|(_, r)| r)
    }

    pub(in crate::secrets) fn register(&self, c: &mut Cluster) {
        assert_eq!(
            self.send(c, SecretsOp::EncryptionKey { key: self.public() }),
            Some(SecretsResult::Done)
        );
    }

    /// Logs in as the identifier with a role reading `secret/`; returns the token.
    fn login(&self, c: &mut Cluster) -> String {
        c.ok(
            ROOT,
            SecretsOp::KeriRole {
                prefix: self.prefix.clone(),
                policies: vec!["reader".into()],
                ttl_ms: 0,
            },
        );
        let token = format!("wlk.{}-{}", self.prefix, c.height);
        let op = SecretsOp::KeriLogin {
            key: token_public_key(&token),
            ttl_ms: 0,
        };
        assert_eq!(self.send(c, op), Some(SecretsResult::Done));
        token
    }
}

fn key_event(c: &mut Cluster, message: welkin_keri::Message) {
    let submitter = PrivateKey::from_seed(99);
    c.height += 1;
    c.nonce += 1;
    let tx = Transaction {
        sender: Sender::Key(submitter.public_key()),
        nonce: c.nonce,
        expiry_ms: c.now + 60_000,
        payload: Payload::KeyEvent(message.to_bytes().expect("encodes")),
    }
    .sign(&submitter, &c.env.cluster_id);
    let block = Block::new(hash_parts(&[b"p"]), c.height, c.now, vec![tx]);
    let effects = apply_to_map(&c.env, &mut c.state, &block);
    assert_eq!(effects.receipts[0].1.outcome, Outcome::Applied);
}

/// A cluster with a `reader` policy and identifiers alice, bob and carol, the first two with
/// registered encryption keys.
fn setup() -> (Cluster, Identity, Identity, Identity) {
    let mut c = Cluster::new();
    c.policy(
        "reader",
        r#"path "secret/data/*" { capabilities = ["read"] }"#,
    );
    let alice = Identity::incept(&mut c, 10);
    let bob = Identity::incept(&mut c, 20);
    let carol = Identity::incept(&mut c, 30);
    alice.register(&mut c);
    bob.register(&mut c);
    (c, alice, bob, carol)
}

fn sorted<'a>(who: &[&'a Identity]) -> Vec<&'a Identity> {
    let mut who = who.to_vec();
    who.sort_by(|a, b| a.prefix.cmp(&b.prefix));
    who
}

/// A seal of `secret/app/db` to `who`, with an envelope to `keys` (their keys by default).
fn seal_op(who: &[&Identity], keys: Option<Vec<[u8; 32]>>) -> SecretsOp {
    let who = sorted(who);
    let nonce = [5; 32];
    let target = kv::target("secret", "app/db", &nonce);
    let keys = keys.unwrap_or_else(|| who.iter().map(|i| i.public()).collect());
    let envelope = seal_to_recipients(
        &mut commonware_utils::test_rng(),
        &keys,
        target.as_ref(),
        VALUE,
    )
    .expect("seals");
    SecretsOp::KvSeal(KvSeal {
        mount: "secret".into(),
        path: "app/db".into(),
        nonce,
        sealed: welkin_types::Detachable::new(vec![1; 16]),
        cas: None,
        recipients: who.iter().map(|i| i.prefix.clone()).collect(),
        envelope: envelope.encode().to_vec(),
    })
}

fn open_op(version: u64) -> SecretsOp {
    SecretsOp::KvOpen {
        mount: "secret".into(),
        path: "app/db".into(),
        version,
        reader: [8; 32],
    }
}

fn reseal_op(who: &[&Identity]) -> SecretsOp {
    SecretsOp::KvReseal(KvReseal {
        mount: "secret".into(),
        path: "app/db".into(),
        version: 1,
        recipients: sorted(who).iter().map(|i| i.prefix.clone()).collect(),
    })
}

/// The stored recipients of version 1 of `secret/app/db`.
fn record(c: &Cluster) -> Option<Recipients> {
    let mount = crate::secrets::records::Mount::decode(&c.state[&keys::secrets_mount("secret")])
        .expect("mount");
    c.state
        .get(&keys::kv_recipients(&mount.id, "app/db", 1))
        .map(|bytes| Recipients::decode(bytes).expect("decodes"))
}

/// `prefix`'s current encryption key in the cluster's state.
fn current(c: &Cluster, prefix: &str) -> Option<[u8; 32]> {
    let overlay = crate::Overlay {
        snapshot: &c.state,
        writes: Default::default(),
        missing: Default::default(),
        corrupt: Default::default(),
        schedule: Default::default(),
        shredded: Vec::new(),
        objects_removed: Vec::new(),
    };
    current_key(&overlay, prefix)
}

#[test]
fn an_encryption_key_counts_until_the_identifier_rotates() {
    let (mut c, mut alice, _, carol) = setup();
    assert_eq!(current(&c, &alice.prefix), Some(alice.public()));
    assert_eq!(current(&c, &carol.prefix), None, "never registered");
    assert_eq!(
        c.status(ROOT, SecretsOp::EncryptionKey { key: [1; 32] }),
        400,
        "a token cannot register a key for anyone"
    );

    alice.rotate(&mut c);
    assert_eq!(current(&c, &alice.prefix), None, "voided by the rotation");
    assert!(matches!(
        c.ok(
            ROOT,
            SecretsOp::KvWrite {
                mount: "secret".into(),
                path: "other".into(),
                nonce: [1; 32],
                sealed: welkin_types::Detachable::new(vec![1]),
                cas: None,
            }
        ),
        SecretsResult::Written { .. }
    ));
    assert_eq!(
        c.status(ROOT, seal_op(&[&alice], None)),
        400,
        "a seal to a voided key is refused"
    );
    alice.register(&mut c);
    assert_eq!(current(&c, &alice.prefix), Some(alice.public()));
    assert!(matches!(
        c.ok(ROOT, seal_op(&[&alice], None)),
        SecretsResult::Written { version: 1, .. }
    ));
}

#[test]
fn a_seal_needs_current_keys_and_an_envelope_to_exactly_them() {
    let (mut c, alice, bob, carol) = setup();
    let (result, entry) = c.run(ROOT, seal_op(&[&alice, &carol], None));
    assert!(
        matches!(&result, SecretsResult::Refused { status: 400, message } if message.contains(&carol.prefix)),
        "carol has no key: {result:?}"
    );
    assert_eq!(entry.tx.tx.payload.kind(), "kv_seal");
    assert_eq!(
        c.status(
            ROOT,
            seal_op(&[&alice, &bob], Some(vec![alice.public(), carol.public()]))
        ),
        400,
        "an envelope to another key"
    );
    let mut swapped: Vec<[u8; 32]> = sorted(&[&alice, &bob]).iter().map(|i| i.public()).collect();
    swapped.reverse();
    assert_eq!(
        c.status(ROOT, seal_op(&[&alice, &bob], Some(swapped))),
        400,
        "an envelope in another order"
    );
    assert_eq!(
        c.status(
            ROOT,
            seal_op(&[&alice], Some(vec![alice.public(), bob.public()]))
        ),
        400,
        "an envelope to one key more"
    );
    let SecretsOp::KvSeal(mut garbage) = seal_op(&[&alice], None) else {
        unreachable!()
    };
    garbage.envelope = vec![1, 2, 3];
    assert_eq!(c.status(ROOT, SecretsOp::KvSeal(garbage)), 400);

    // The ACL of a KV write applies: a read-only token cannot seal.
    let reader = alice.login(&mut c);
    assert_eq!(c.status(&reader, seal_op(&[&alice], None)), 403);
    assert_eq!(record(&c), None, "nothing stored by a refused seal");

    assert_eq!(
        c.ok(ROOT, seal_op(&[&alice, &bob], None)),
        SecretsResult::Written {
            version: 1,
            created_ms: c.now
        }
    );
    let stored = record(&c).expect("recipients recorded");
    let mut expected = vec![alice.prefix.clone(), bob.prefix.clone()];
    expected.sort();
    assert_eq!(stored.recipients, expected);
}

#[test]
fn recipients_open_offline_and_nobody_else_does() {
    let (mut c, alice, bob, carol) = setup();
    c.ok(ROOT, seal_op(&[&alice, &bob], None));
    let stored = record(&c).expect("recorded");
    let envelope = welkin_types::decode::<RecipientSealed>(&stored.envelope).expect("decodes");
    // The associated data is the version's target, which certified state also holds.
    let target = kv::target("secret", "app/db", &[5; 32]);
    for recipient in [&alice, &bob] {
        assert_eq!(
            open_as_recipient(&recipient.x25519, target.as_ref(), &envelope)
                .expect("a recipient opens it")
                .as_slice(),
            VALUE
        );
    }
    assert_eq!(
        open_as_recipient(&carol.x25519, target.as_ref(), &envelope),
        Err(RecipientError::NotARecipient(hex::encode(carol.public())))
    );
}

#[test]
fn cluster_reads_of_a_recipient_sealed_version_release_to_recipients_only() {
    let (mut c, alice, bob, _) = setup();
    c.ok(ROOT, seal_op(&[&alice], None));
    // KvRead serves Vault clients through a node, which would see the value: refused for
    // everyone, root included, and logged.
    let (result, entry) = c.run(
        ROOT,
        SecretsOp::KvRead {
            mount: "secret".into(),
            path: "app/db".into(),
            version: 0,
            reader: [8; 32],
        },
    );
    assert!(
        matches!(&result, SecretsResult::Refused { status: 400, message } if message.contains("welkin kv open")),
        "{result:?}"
    );
    assert_eq!(entry.outcome, Outcome::Rejected);
    assert_eq!(c.status(ROOT, open_op(0)), 403, "root is no recipient");
    let bob_token = bob.login(&mut c);
    let (result, entry) = c.run(&bob_token, open_op(1));
    assert!(
        matches!(&result, SecretsResult::Refused { status: 403, message } if message.contains("not a recipient")),
        "{result:?}"
    );
    assert!(entry.detail.contains(&bob.prefix), "{}", entry.detail);

    let alice_token = alice.login(&mut c);
    match c.ok(&alice_token, open_op(0)) {
        SecretsResult::Released {
            version,
            target,
            reader,
            sealed,
        } => {
            assert_eq!(version, 1);
            assert_eq!(target, kv::target("secret", "app/db", &[5; 32]));
            assert_eq!(reader, [8; 32]);
            assert_eq!(
                sealed.digest,
                welkin_types::Detachable::digest_of(&[1; 16]),
                "the cluster-sealed copy"
            );
        }
        other => panic!("{other:?}"),
    }
    // A version sealed to nobody is read with KvRead, not opened.
    c.ok(
        ROOT,
        SecretsOp::KvWrite {
            mount: "secret".into(),
            path: "app/db".into(),
            nonce: [6; 32],
            sealed: welkin_types::Detachable::new(vec![2; 16]),
            cas: None,
        },
    );
    assert_eq!(c.status(&alice_token, open_op(2)), 400);
}

#[test]
fn resealing_changes_who_opens_through_the_cluster() {
    let (mut c, alice, bob, carol) = setup();
    c.ok(ROOT, seal_op(&[&alice, &bob], None));
    let (alice_token, carol_token) = (alice.login(&mut c), carol.login(&mut c));
    assert_eq!(
        c.status(&alice_token, reseal_op(&[&alice, &carol])),
        403,
        "re-sealing needs update on the path"
    );
    assert_eq!(
        c.status(ROOT, reseal_op(&[&bob, &carol])),
        400,
        "a new recipient needs a current key"
    );
    carol.register(&mut c);
    assert_eq!(c.ok(ROOT, reseal_op(&[&bob, &carol])), SecretsResult::Done);
    let stored = record(&c).expect("recorded");
    assert!(stored.includes(&carol.prefix) && !stored.includes(&alice.prefix));

    // The removed recipient's cluster read is refused, and the refusal is in the log.
    let (result, entry) = c.run(&alice_token, open_op(1));
    assert!(
        matches!(&result, SecretsResult::Refused { status: 403, .. }),
        "{result:?}"
    );
    assert_eq!(entry.outcome, Outcome::Rejected);
    assert_eq!(entry.tx.tx.payload.kind(), "kv_open");
    // The added one has no envelope of its own: it opens through the cluster.
    let envelope = welkin_types::decode::<RecipientSealed>(&stored.envelope).expect("decodes");
    assert!(!envelope.recipients().any(|k| *k == carol.public()));
    assert!(matches!(
        c.ok(&carol_token, open_op(1)),
        SecretsResult::Released { version: 1, .. }
    ));
}

#[test]
fn destroying_a_version_drops_its_recipients() {
    let (mut c, alice, _, _) = setup();
    c.ok(ROOT, seal_op(&[&alice], None));
    assert!(record(&c).is_some());
    c.ok(
        ROOT,
        SecretsOp::KvDestroy {
            mount: "secret".into(),
            path: "app/db".into(),
            versions: vec![1],
        },
    );
    assert_eq!(record(&c), None);
    let alice_token = alice.login(&mut c);
    assert_eq!(c.status(&alice_token, open_op(1)), 404);
}
