//! Transit keys against an in-memory state: versions, targets, Vault's refusals.

use super::{TransitKey, ciphertext_target, mac_target};
use crate::{
    keys,
    secrets::{
        SecretsResult,
        tests::{Cluster, ROOT},
    },
};
use welkin_types::secrets::{
    MountKind, SecretsOp, TransitOp,
    transit::{CiphertextRef, DecryptPurpose, KeyKind, MacPurpose},
};

fn enable(c: &mut Cluster, mount: &str, kind: MountKind) {
    c.ok(
        ROOT,
        SecretsOp::MountEnable {
            mount: mount.into(),
            description: String::new(),
            kind,
        },
    );
}

fn transit(op: TransitOp) -> SecretsOp {
    SecretsOp::Transit(op)
}

fn create(name: &str, kind: KeyKind) -> SecretsOp {
    transit(TransitOp::KeyCreate {
        mount: "transit".into(),
        name: name.into(),
        kind,
    })
}

fn decrypt(name: &str, purpose: DecryptPurpose, items: &[(u64, u8)]) -> SecretsOp {
    transit(TransitOp::Decrypt {
        mount: "transit".into(),
        name: name.into(),
        purpose,
        ciphertexts: items
            .iter()
            .map(|&(version, nonce)| CiphertextRef {
                version,
                nonce: [nonce; 32],
            })
            .collect(),
        reader: [7; 32],
    })
}

fn config(name: &str, min_decryption: Option<u64>, deletion_allowed: Option<bool>) -> SecretsOp {
    transit(TransitOp::KeyConfig {
        mount: "transit".into(),
        name: name.into(),
        min_decryption_version: min_decryption,
        min_encryption_version: None,
        deletion_allowed,
    })
}

fn key_of(c: &Cluster, name: &str) -> Option<TransitKey> {
    let mount = c
        .state
        .get(&keys::secrets_mount("transit"))
        .map(|bytes| crate::secrets::records::Mount::decode(bytes).expect("mount decodes"))?;
    c.state
        .get(&keys::transit_key(&mount.id, name))
        .map(|bytes| TransitKey::decode(bytes).expect("key decodes"))
}

fn targets(result: SecretsResult) -> Vec<welkin_types::Digest> {
    match result {
        SecretsResult::ReleasedTargets { targets, reader } => {
            assert_eq!(reader, [7; 32]);
            targets
        }
        other => panic!("not released: {other:?}"),
    }
}

#[test]
fn decryption_releases_each_ciphertexts_own_target_within_the_allowed_versions() {
    let mut c = Cluster::new();
    enable(&mut c, "transit", MountKind::Transit);
    c.ok(ROOT, create("orders", KeyKind::ChaCha20Poly1305));
    let key = key_of(&c, "orders").expect("created");
    assert_eq!((key.latest_version(), key.min_decryption_version), (1, 1));

    let released = targets(c.ok(
        ROOT,
        decrypt("orders", DecryptPurpose::Decrypt, &[(1, 3), (1, 4)]),
    ));
    assert_eq!(
        released,
        vec![
            ciphertext_target(&key.id, 1, &[3; 32]),
            ciphertext_target(&key.id, 1, &[4; 32])
        ],
        "one target per ciphertext, computed by the state machine"
    );
    assert_ne!(released[0], released[1]);
    assert_eq!(
        c.status(ROOT, decrypt("orders", DecryptPurpose::Decrypt, &[(2, 3)])),
        400,
        "a version that does not exist"
    );
    assert_eq!(
        c.status(ROOT, decrypt("orders", DecryptPurpose::Decrypt, &[(0, 3)])),
        400
    );

    // Rotation makes version 2; raising min_decryption_version retires version 1.
    c.ok(
        ROOT,
        transit(TransitOp::KeyRotate {
            mount: "transit".into(),
            name: "orders".into(),
        }),
    );
    targets(c.ok(
        ROOT,
        decrypt("orders", DecryptPurpose::Rewrap, &[(1, 3), (2, 5)]),
    ));
    assert_eq!(
        c.status(ROOT, config("orders", Some(3), None)),
        400,
        "beyond the latest"
    );
    c.ok(ROOT, config("orders", Some(2), None));
    assert_eq!(
        c.status(ROOT, decrypt("orders", DecryptPurpose::Decrypt, &[(1, 3)])),
        400,
        "too old"
    );
    targets(c.ok(ROOT, decrypt("orders", DecryptPurpose::Decrypt, &[(2, 5)])));

    // Creating an existing key changes nothing, as in Vault.
    c.ok(ROOT, create("orders", KeyKind::Hmac));
    assert_eq!(
        key_of(&c, "orders").expect("kept").kind,
        KeyKind::ChaCha20Poly1305
    );

    // Deletion only when allowed; a key made again under the name has another id, so the
    // old key's ciphertexts have other targets.
    let delete = transit(TransitOp::KeyDelete {
        mount: "transit".into(),
        name: "orders".into(),
    });
    assert_eq!(c.status(ROOT, delete.clone()), 400, "deletion not allowed");
    c.ok(ROOT, config("orders", None, Some(true)));
    c.ok(ROOT, delete);
    assert!(key_of(&c, "orders").is_none());
    assert_eq!(
        c.status(ROOT, decrypt("orders", DecryptPurpose::Decrypt, &[(1, 3)])),
        400,
        "no such key"
    );
    c.ok(ROOT, create("orders", KeyKind::ChaCha20Poly1305));
    let again = key_of(&c, "orders").expect("made again");
    assert_ne!(again.id, key.id);
    assert_ne!(
        targets(c.ok(ROOT, decrypt("orders", DecryptPurpose::Decrypt, &[(1, 3)])))[0],
        released[0]
    );
}

#[test]
fn macs_have_their_own_targets_and_kinds_do_what_they_say() {
    let mut c = Cluster::new();
    enable(&mut c, "transit", MountKind::Transit);
    c.ok(ROOT, create("tags", KeyKind::Hmac));
    let key = key_of(&c, "tags").expect("created");
    let mac = |purpose| {
        transit(TransitOp::Mac {
            mount: "transit".into(),
            name: "tags".into(),
            purpose,
            version: 0,
            digests: vec![[3; 32]],
            reader: [7; 32],
        })
    };
    let released = targets(c.ok(ROOT, mac(MacPurpose::Hmac)));
    assert_eq!(released, vec![mac_target(&key.id, 1, &[3; 32])]);
    assert_ne!(released[0], ciphertext_target(&key.id, 1, &[3; 32]));
    assert_eq!(targets(c.ok(ROOT, mac(MacPurpose::Verify))), released);
    assert_eq!(
        c.status(ROOT, decrypt("tags", DecryptPurpose::Decrypt, &[(1, 3)])),
        400,
        "an hmac key does not decrypt"
    );
    assert_eq!(
        c.status(ROOT, create("signer", KeyKind::Ed25519)),
        400,
        "refused rather than held by one node"
    );
    assert_eq!(
        c.status(ROOT, create("bad/name", KeyKind::Hmac)),
        400,
        "names are one path segment"
    );
}

#[test]
fn policies_decide_each_transit_path_and_engines_keep_to_their_mounts() {
    let mut c = Cluster::new();
    enable(&mut c, "transit", MountKind::Transit);
    c.ok(ROOT, create("orders", KeyKind::ChaCha20Poly1305));
    c.policy(
        "encrypt-only",
        r#"path "transit/encrypt/orders" { capabilities = ["update"] }"#,
    );
    c.token(ROOT, "wlk.app", &["encrypt-only"], 0, 0);
    assert_eq!(
        c.status(
            "wlk.app",
            decrypt("orders", DecryptPurpose::Decrypt, &[(1, 3)])
        ),
        403,
        "decrypt is its own path"
    );
    c.policy(
        "decrypt",
        r#"path "transit/decrypt/*" { capabilities = ["update"] }"#,
    );
    c.token(ROOT, "wlk.reader", &["decrypt"], 0, 0);
    targets(c.ok(
        "wlk.reader",
        decrypt("orders", DecryptPurpose::Decrypt, &[(1, 3)]),
    ));
    assert_eq!(
        c.status(
            "wlk.reader",
            decrypt("orders", DecryptPurpose::Rewrap, &[(1, 3)])
        ),
        403,
        "rewrap is another path"
    );

    // A KV request on a transit mount, and a transit request on a KV mount: no such engine.
    let kv_write = SecretsOp::KvWrite {
        mount: "transit".into(),
        path: "x".into(),
        nonce: [1; 32],
        sealed: welkin_types::Detachable::new(vec![1]),
        cas: None,
    };
    assert_eq!(c.status(ROOT, kv_write), 404);
    assert_eq!(
        c.status(
            ROOT,
            transit(TransitOp::KeyCreate {
                mount: "secret".into(),
                name: "k".into(),
                kind: KeyKind::Hmac,
            })
        ),
        404
    );

    // Disabling the mount deletes its keys with it.
    c.ok(
        ROOT,
        SecretsOp::MountDisable {
            mount: "transit".into(),
        },
    );
    enable(&mut c, "transit", MountKind::Transit);
    assert!(key_of(&c, "orders").is_none(), "a new mount starts empty");
    let leftover = c
        .state
        .values()
        .filter(|bytes| TransitKey::decode(bytes).is_ok())
        .count();
    assert_eq!(leftover, 0, "no key record outlives its mount");
}
