//! Secrets on the deterministic runtime: reads are released only after they commit and only
//! if allowed, and a byzantine member that sends false partials, or none, neither stops a
//! read nor goes unnoticed.

use crate::{
    harness::*,
    runner,
    tamper::{Lie, Reads},
};
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use commonware_runtime::{Clock as _, Runner as _};
use std::time::Duration;
use welkin_node::{ReadOpener, Release};
use welkin_sealed::ReaderKey;
use welkin_types::{
    Digest, Outcome, Payload, Sender, SignedTransaction, Transaction,
    secrets::{SecretsOp, TokenSpec, token_public_key, token_signing_key},
};

/// What the byzantine member does with its releases.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Releaser {
    Wrong,
    Silent,
}

pub(crate) fn request(
    context: &Ctx,
    fixture: &Fixture,
    token: &str,
    nonce: u64,
    op: SecretsOp,
) -> SignedTransaction {
    let key = token_signing_key(token);
    Transaction {
        sender: Sender::Key(key.public_key()),
        nonce,
        expiry_ms: welkin_node::now_ms(context) + 120_000,
        payload: Payload::Secrets(Box::new(op)),
    }
    .sign(&key, &fixture.genesis.cluster_id())
}

/// Polls `node` until the read opens (or `patience` runs out); returns the value and the
/// members it found lying, after every member's envelope was seen or the time ran out.
async fn read_through(
    context: &Ctx,
    fixture: &Fixture,
    node: &Node,
    id: Digest,
    reader: ReaderKey,
    patience: Duration,
) -> (Option<Vec<u8>>, Vec<u32>) {
    let mut opener = ReadOpener::new(
        fixture.genesis.polynomial.as_ref().expect("dealt"),
        fixture.genesis.cluster_id(),
        id,
        reader,
    );
    let deadline = context.current() + patience;
    let mut value = None;
    while context.current() < deadline {
        let release: Release = node.release(&id).map(|(r, _)| r).unwrap_or_default();
        let sealed = match &release.grant {
            Some(grant) => node
                .sealed_value(&grant.sealed)
                .await
                .expect("the value store reads")
                .expect("the node keeps the value it granted"),
            None => Vec::new(),
        };
        if let Some((_, opened)) = opener
            .step(&release, &sealed)
            .expect("the value is sealed correctly")
        {
            value.get_or_insert(opened.to_vec());
        }
        if value.is_some() && release.envelopes.len() == fixture.n() {
            break;
        }
        context.sleep(Duration::from_millis(20)).await;
    }
    (value, opener.liars().iter().map(|(i, _)| *i).collect())
}

pub(crate) fn secrets_scenario(seed: u64, releaser: Releaser) {
    runner(seed).start(|context| async move {
        let n = 4;
        let fixture = Fixture::new(n, seed);
        let net = Net::start(&context, &fixture).await;
        net.connect_all(&link(20, 100)).await;
        let reads: Reads = Default::default();
        // The lowest index: its envelope is the first the reader tries.
        let liar = 0;
        let lie = match releaser {
            Releaser::Wrong => Lie::WrongReleases {
                share: fixture.shares[liar].clone(),
                cluster_id: fixture.genesis.cluster_id(),
                reads: reads.clone(),
            },
            Releaser::Silent => Lie::SilentReleases,
        };
        let roles: Vec<Role> = (0..n)
            .map(|i| {
                if i == liar {
                    Role::Lying(lie.clone())
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

        // The root token writes a value sealed to the cluster key.
        let plaintext = br#"{"password":"hunter2"}"#;
        let value_nonce = [42u8; 32];
        let target = welkin_sealed::target(&[b"kv2", b"secret", b"app/db"], &value_nonce);
        let mut rng = commonware_utils::test_rng();
        let sealed =
            welkin_sealed::seal(&mut rng, fixture.dealt_key(), target, plaintext).expect("seals");
        let write = request(
            &context,
            &fixture,
            ROOT_TOKEN,
            next(),
            SecretsOp::KvWrite {
                mount: "secret".into(),
                path: "app/db".into(),
                nonce: value_nonce,
                sealed: welkin_types::Detachable::new(sealed.encode().to_vec()),
                cas: None,
            },
        );
        let receipt = commit(&context, node, write, patience)
            .await
            .expect("committed");
        assert_eq!(receipt.outcome, Outcome::Applied);

        // Reads: each opens with t honest partials; the liar is named.
        for _ in 0..3 {
            let reader = ReaderKey::generate(&mut rng);
            let read = request(
                &context,
                &fixture,
                ROOT_TOKEN,
                next(),
                SecretsOp::KvRead {
                    mount: "secret".into(),
                    path: "app/db".into(),
                    version: 0,
                    reader: reader.public(),
                },
            );
            let id = read.id();
            reads
                .lock()
                .expect("reads")
                .insert(id, (reader.public(), target));
            let receipt = commit(&context, node, read, patience)
                .await
                .expect("committed");
            assert_eq!(receipt.outcome, Outcome::Applied);
            let (value, liars) = read_through(&context, &fixture, node, id, reader, patience).await;
            assert_eq!(value.as_deref(), Some(&plaintext[..]), "the read opens");
            match releaser {
                Releaser::Wrong => assert_eq!(liars, vec![liar as u32], "the liar is named"),
                Releaser::Silent => assert!(liars.is_empty(), "silence is not a lie: {liars:?}"),
            }
            // Every honest node released its own partial for the read.
            for (index, other) in cluster.nodes.iter().enumerate() {
                let Some(other) = other else { continue };
                let (release, _) = other
                    .release(&id)
                    .expect("every honest node holds the read");
                assert!(release.grant.is_some(), "node {index} committed the grant");
                assert!(
                    release.envelopes.contains_key(&(index as u32)),
                    "node {index} released"
                );
            }
        }

        // A token whose policies do not allow the read: refused, logged, and no partial.
        let spec = TokenSpec {
            key: token_public_key("wlk.nobody"),
            policies: vec!["default".into()],
            ttl_ms: 0,
            renewable: false,
            num_uses: 0,
            display_name: "nobody".into(),
            no_parent: false,
            meta: vec![],
        };
        let create = request(
            &context,
            &fixture,
            ROOT_TOKEN,
            next(),
            SecretsOp::TokenCreate(spec),
        );
        assert_eq!(
            commit(&context, node, create, patience)
                .await
                .expect("committed")
                .outcome,
            Outcome::Applied
        );
        let reader = ReaderKey::generate(&mut rng);
        let denied = request(
            &context,
            &fixture,
            "wlk.nobody",
            1,
            SecretsOp::KvRead {
                mount: "secret".into(),
                path: "app/db".into(),
                version: 0,
                reader: reader.public(),
            },
        );
        let denied_id = denied.id();
        let receipt = commit(&context, node, denied, patience)
            .await
            .expect("committed");
        assert_eq!(
            receipt.outcome,
            Outcome::Rejected,
            "the denial is in the log"
        );
        // A read that is never submitted.
        let never = request(
            &context,
            &fixture,
            ROOT_TOKEN,
            next(),
            SecretsOp::KvRead {
                mount: "secret".into(),
                path: "app/db".into(),
                version: 0,
                reader: reader.public(),
            },
        );
        context.sleep(Duration::from_secs(2)).await;
        for other in &honest {
            for id in [denied_id, never.id()] {
                let envelopes = other.release(&id).map_or(0, |(r, _)| r.envelopes.len());
                assert_eq!(envelopes, 0, "no partial for a denied or uncommitted read");
            }
        }
    });
}
