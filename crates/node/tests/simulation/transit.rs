//! Transit signing keys on the deterministic runtime: the nodes generate an Ed25519 key
//! together and sign with it for committed, allowed requests only, while a byzantine node
//! lies with bad key generation shares or bad signature shares.

use crate::{harness::*, runner, secrets::request, tamper::Lie};
use commonware_runtime::{Clock as _, Runner as _};
use sha2::Digest as _;
use std::time::Duration;
use welkin_state::{keys, secrets::records::Mount, secrets::transit::TransitKey};
use welkin_types::{
    Outcome,
    secrets::{
        MountKind, SecretsOp,
        transit::{KeyKind, TransitOp},
    },
};

/// What the byzantine node lies about.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Liar {
    KeyShares,
    SignatureShares,
    /// Takes part in key generation but never answers a sign request.
    SilentSigner,
    /// Runs no node code at all (commonware's conflicter on the vote channel): silent in key
    /// generation and signing.
    Absent,
}

/// The key `name` of mount `transit` on `node`, once it exists.
async fn transit_key(node: &Node, name: &str) -> Option<TransitKey> {
    let mount = Mount::decode(&node.value(keys::secrets_mount("transit")).await?).ok()?;
    TransitKey::decode(&node.value(keys::transit_key(&mount.id, name)).await?).ok()
}

pub(crate) fn transit_scenario(seed: u64, liar_kind: Liar) {
    runner(seed).start(|context| async move {
        let n = 4;
        let fixture = Fixture::new(n, seed);
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(20, 100)).await;
        let liar = 0;
        let liar_role = match liar_kind {
            Liar::KeyShares => Role::Lying(Lie::BadKeyShares),
            Liar::SignatureShares => Role::Lying(Lie::BadSignatureShares),
            Liar::SilentSigner => Role::Lying(Lie::SilentSignatures),
            Liar::Absent => Role::Conflicter,
        };
        let roles: Vec<Role> = (0..n)
            .map(|i| {
                if i == liar {
                    liar_role.clone()
                } else {
                    Role::Honest(0)
                }
            })
            .collect();
        let cluster = start_roles(&context, &net, &fixture, &roles).await;
        let honest: Vec<&Node> = cluster.nodes.iter().flatten().collect();
        let node = honest[0];
        let patience = Duration::from_secs(30);
        let mut nonce = 0;
        let mut next = || {
            nonce += 1;
            nonce
        };
        for op in [
            SecretsOp::MountEnable {
                mount: "transit".into(),
                description: String::new(),
                kind: MountKind::Transit,
            },
            SecretsOp::Transit(TransitOp::KeyCreate {
                mount: "transit".into(),
                name: "release-signer".into(),
                kind: KeyKind::Ed25519,
            }),
        ] {
            let tx = request(&context, &fixture, ROOT_TOKEN, next(), op);
            let receipt = commit(&context, node, tx, patience)
                .await
                .expect("committed");
            assert_eq!(receipt.outcome, Outcome::Applied);
        }

        // The nodes generate the key together; its public key reaches the log.
        let deadline = context.current() + Duration::from_secs(120);
        let group = loop {
            let key = transit_key(node, "release-signer")
                .await
                .expect("the key exists");
            if let Some(group) = key.versions[0].public_key {
                break group;
            }
            assert!(context.current() < deadline, "the key generation finishes");
            context.sleep(Duration::from_millis(200)).await;
        };
        let key = transit_key(node, "release-signer")
            .await
            .expect("the key exists");
        let public = welkin_frost::PublicKeys::decode(
            &node
                .value(keys::transit_public_keys(&key.id, 1))
                .await
                .expect("committed public keys"),
        )
        .expect("decodes");
        assert_eq!(public.group_key(), group);
        match liar_kind {
            Liar::KeyShares | Liar::Absent => assert_eq!(
                public.participants(),
                &[1, 2, 3],
                "the node whose shares were bad, or that sent nothing, is left out"
            ),
            Liar::SignatureShares | Liar::SilentSigner => {
                assert_eq!(public.participants(), &[0, 1, 2, 3])
            }
        }
        // Every participant holds its own share; none holds the key (welkin-frost's tests
        // show t - 1 shares sign nothing).
        assert_eq!(public.threshold(), 3);

        // Signatures for committed, allowed requests, checked by an independent verifier.
        for round in 0..3u8 {
            let messages: Vec<Vec<u8>> = (0..2u8)
                .map(|i| format!("release {round}.{i}").into_bytes())
                .collect();
            let tx = request(
                &context,
                &fixture,
                ROOT_TOKEN,
                next(),
                SecretsOp::Transit(TransitOp::Sign {
                    mount: "transit".into(),
                    name: "release-signer".into(),
                    version: 0,
                    digests: messages
                        .iter()
                        .map(|m| sha2::Sha256::digest(m).into())
                        .collect(),
                }),
            );
            let id = tx.id();
            let receipt = commit(&context, node, tx, patience)
                .await
                .expect("committed");
            assert_eq!(receipt.outcome, Outcome::Applied);
            let Some(welkin_state::secrets::SecretsResult::Signing {
                key_id, version, ..
            }) = node.secrets_result(&id)
            else {
                panic!("the request is allowed: {:?}", node.secrets_result(&id));
            };
            let started = context.current();
            let signatures = node
                .transit_sign(id, key_id, version, messages.clone())
                .await
                .expect("t honest nodes sign");
            if let (Liar::SilentSigner, 1..) = (liar_kind, round) {
                // Simulated time: the first signature waited out the silent signer's
                // session; later ones pass it over instead of waiting again.
                let took = context
                    .current()
                    .duration_since(started)
                    .expect("time runs on");
                assert!(
                    took < Duration::from_secs(2),
                    "round {round} waited {took:?} for a known-silent signer"
                );
            }
            let verifier =
                ed25519_dalek::VerifyingKey::from_bytes(&group).expect("a valid Ed25519 key");
            for (message, signature) in messages.iter().zip(&signatures) {
                let signature = ed25519_dalek::Signature::from_bytes(signature);
                verifier
                    .verify_strict(message, &signature)
                    .expect("an ordinary Ed25519 verifier accepts the signature");
            }
            // A message the log did not commit is refused by every signer.
            let forged = node
                .transit_sign(id, key_id, version, vec![b"not committed".to_vec()])
                .await;
            assert!(forged.is_err(), "no signature for an uncommitted message");
        }
        if let Liar::SignatureShares = liar_kind {
            let metrics = node.metrics();
            assert!(
                metrics
                    .lines()
                    .any(|l| l.contains("peers_blocked") && l.contains("transit")),
                "the liar is blocked for its share: {metrics}"
            );
        }
        context.sleep(Duration::from_millis(100)).await;
    });
}
