//! State proofs from a real QMDB, certified by real threshold signatures, checked the way the
//! SDK checks a node's reply.

use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_cryptography::bls12381::{
    dkg::feldman_desmedt::deal_anonymous,
    primitives::{ops::threshold, sharing::Mode},
};
use commonware_runtime::{Runner as _, Supervisor as _, buffer::paged::CacheRef, deterministic};
use commonware_storage::{
    journal::contiguous::variable::Config as JournalConfig,
    merkle::full::Config as MerkleConfig,
    qmdb::{current::VariableConfig, floor::Proportional},
    translator::EightCap,
};
use commonware_utils::{N3f1, NZU16, NZU32, NZU64, NZUsize, rng::TestRng};
use welkin_state::keys;
use welkin_types::{
    CertifiedCheckpoint, Checkpoint, Digest, Outcome, Receipt, Sharing, Variant, hash_parts,
    namespace,
    proof::{MAX_STATE_VALUE_BYTES, ProofError, StateDb, StateProof, ValueProof},
};

/// Proofs taken from one database: two keys' values and proofs at the latest root, and the
/// root before the last commit.
struct Store {
    receipt_key: Digest,
    receipt: Vec<u8>,
    receipt_proof: StateProof,
    kv_key: Digest,
    kv_value: Vec<u8>,
    kv_proof: StateProof,
    root: Digest,
    previous_root: Digest,
}

/// The state store's codec configuration: digest keys, bounded byte values.
type StateCodec = ((), (commonware_codec::RangeCfg<usize>, ()));

fn config() -> VariableConfig<EightCap, StateCodec, commonware_parallel::Sequential> {
    let page_cache = CacheRef::new(NZU16!(4096), NZUsize!(64));
    VariableConfig {
        merkle_config: MerkleConfig {
            journal_partition: "mmr-journal".into(),
            metadata_partition: "mmr-meta".into(),
            items_per_blob: NZU64!(64),
            write_buffer: NZUsize!(4096),
            replay_buffer: NZUsize!(4096),
            strategy: commonware_parallel::Sequential,
            page_cache: page_cache.clone(),
        },
        journal_config: JournalConfig {
            partition: "ops".into(),
            items_per_section: NZU64!(64),
            compression: None,
            codec_config: ((), ((0..=MAX_STATE_VALUE_BYTES).into(), ())),
            page_cache,
            write_buffer: NZUsize!(4096),
            replay_buffer: NZUsize!(4096),
        },
        grafted_metadata_partition: "grafted-meta".into(),
        translator: EightCap,
        init_cache: Some(NZUsize!(64)),
        init_buffer: NZUsize!(1 << 16),
        init_concurrency: (),
    }
}

/// Writes 200 keys over two commits (the second overwrites some), then takes proofs.
fn store() -> Store {
    deterministic::Runner::default().start(|context| async move {
        let mut db = StateDb::init(context.child("state"), config(), None)
            .await
            .expect("opens");
        let tx = hash_parts(&[b"a transaction"]);
        let receipt_key = keys::receipt(&tx);
        let receipt = Receipt {
            height: 7,
            index: 2,
            outcome: Outcome::Applied,
            log_index: 40,
        }
        .encode()
        .to_vec();
        let kv_key = hash_parts(&[b"kv", b"greeting"]);
        let kv_value = b"hello".to_vec();
        let mut previous_root = db.root();
        for round in 0..2u8 {
            previous_root = db.root();
            let mut batch = db.new_batch();
            for i in 0..100u8 {
                batch = batch.write(hash_parts(&[&[round, i]]), Some(vec![round, i]));
            }
            if round == 1 {
                batch = batch
                    .write(receipt_key, Some(receipt.clone()))
                    .write(kv_key, Some(kv_value.clone()));
            }
            let merkleized = batch
                .merkleize(&db, None, &mut Proportional)
                .await
                .expect("merkleizes");
            db = db
                .apply_batch(merkleized)
                .await
                .expect("applies")
                .commit()
                .await
                .expect("commits");
        }
        Store {
            receipt_proof: db.key_value_proof(receipt_key).await.expect("proves"),
            kv_proof: db.key_value_proof(kv_key).await.expect("proves"),
            receipt_key,
            receipt,
            kv_key,
            kv_value,
            root: db.root(),
            previous_root,
        }
    })
}

/// A 4-node cluster key dealt from `seed`, and a signer of checkpoints with 3 of its shares.
fn cluster(seed: u64) -> (Sharing, impl Fn(&Digest, Checkpoint) -> CertifiedCheckpoint) {
    let (sharing, shares) =
        deal_anonymous::<Variant, N3f1>(TestRng::new(seed), Mode::NonZeroCounter, NZU32!(4));
    let polynomial = sharing.clone();
    let sign = move |cluster_id: &Digest, checkpoint: Checkpoint| {
        let message = checkpoint.message(cluster_id);
        let partials: Vec<_> = shares[..3]
            .iter()
            .map(|s| threshold::sign_message::<Variant>(s, namespace::CHECKPOINT, &message))
            .collect();
        let signature = threshold::recover::<Variant, _>(
            &polynomial,
            &partials,
            &commonware_parallel::Sequential,
        )
        .expect("three of four partials recover");
        CertifiedCheckpoint {
            checkpoint,
            signature,
        }
    };
    (sharing, sign)
}

fn checkpoint(root: Digest) -> Checkpoint {
    Checkpoint {
        height: 9,
        state_root: root,
        log_size: 41,
        log_root: hash_parts(&[b"log"]),
    }
}

#[test]
fn a_certified_proof_verifies_and_survives_its_encoding() {
    let store = store();
    let cluster_id = hash_parts(&[b"cluster"]);
    let (sharing, sign) = cluster(1);
    let reply = ValueProof {
        certified: sign(&cluster_id, checkpoint(store.root)),
        key: store.receipt_key,
        value: store.receipt.clone(),
        proof: store.receipt_proof.clone(),
    };
    assert_eq!(
        reply.verify(&cluster_id, sharing.public(), &store.receipt_key),
        Ok(())
    );
    let decoded = ValueProof::decode(reply.encode()).expect("decodes");
    assert_eq!(decoded, reply);
    assert_eq!(
        decoded.verify(&cluster_id, sharing.public(), &store.receipt_key),
        Ok(())
    );
    let kv = ValueProof {
        key: store.kv_key,
        value: store.kv_value.clone(),
        proof: store.kv_proof.clone(),
        ..reply
    };
    assert_eq!(
        kv.verify(&cluster_id, sharing.public(), &store.kv_key),
        Ok(())
    );
}

#[test]
fn a_tampered_value_or_proof_is_refused() {
    let store = store();
    let cluster_id = hash_parts(&[b"cluster"]);
    let (sharing, sign) = cluster(1);
    let honest = ValueProof {
        certified: sign(&cluster_id, checkpoint(store.root)),
        key: store.receipt_key,
        value: store.receipt.clone(),
        proof: store.receipt_proof.clone(),
    };
    let not_under_root = Err(ProofError::NotUnderRoot {
        height: 9,
        root: hex::encode(store.root),
    });

    // A receipt that says "rejected" where the cluster recorded "applied".
    let mut lie = welkin_types::decode::<Receipt>(&store.receipt).expect("a receipt");
    lie.outcome = Outcome::Rejected;
    let mut tampered = honest.clone();
    tampered.value = lie.encode().to_vec();
    assert_eq!(
        tampered.verify(&cluster_id, sharing.public(), &store.receipt_key),
        not_under_root
    );

    // The other key's (real) proof offered for this value.
    let mut tampered = honest.clone();
    tampered.proof = store.kv_proof.clone();
    assert_eq!(
        tampered.verify(&cluster_id, sharing.public(), &store.receipt_key),
        not_under_root
    );

    // A flipped bit in the proof's activity chunk.
    let mut tampered = honest.clone();
    tampered.proof.chunk[0] ^= 1;
    assert_eq!(
        tampered.verify(&cluster_id, sharing.public(), &store.receipt_key),
        not_under_root
    );

    // A proof for another key than the one asked for, however genuine.
    let other = ValueProof {
        key: store.kv_key,
        value: store.kv_value.clone(),
        proof: store.kv_proof.clone(),
        ..honest.clone()
    };
    assert!(matches!(
        other.verify(&cluster_id, sharing.public(), &store.receipt_key),
        Err(ProofError::WrongKey { .. })
    ));

    // Every single-byte change to the encoded reply either fails to decode or to verify.
    let bytes = honest.encode().to_vec();
    for position in (0..bytes.len()).step_by(7) {
        let mut flipped = bytes.clone();
        flipped[position] ^= 0x01;
        if let Ok(decoded) = welkin_types::decode::<ValueProof>(&flipped) {
            assert!(
                decoded
                    .verify(&cluster_id, sharing.public(), &store.receipt_key)
                    .is_err(),
                "a flip at byte {position} still verifies"
            );
        }
    }
}

#[test]
fn a_proof_against_an_uncertified_root_is_refused() {
    let store = store();
    let cluster_id = hash_parts(&[b"cluster"]);
    let (sharing, sign) = cluster(1);
    // The cluster certified the earlier root; the proof leads to the newer, uncertified one.
    let stale = ValueProof {
        certified: sign(&cluster_id, checkpoint(store.previous_root)),
        key: store.receipt_key,
        value: store.receipt.clone(),
        proof: store.receipt_proof.clone(),
    };
    assert_eq!(
        stale.verify(&cluster_id, sharing.public(), &store.receipt_key),
        Err(ProofError::NotUnderRoot {
            height: 9,
            root: hex::encode(store.previous_root),
        })
    );
    // The node swaps the proof's root into a certified checkpoint: the signature breaks.
    let mut swapped = stale;
    swapped.certified.checkpoint.state_root = store.root;
    assert_eq!(
        swapped.verify(&cluster_id, sharing.public(), &store.receipt_key),
        Err(ProofError::Signature(9))
    );
}

#[test]
fn a_checkpoint_signed_by_another_cluster_is_refused() {
    let store = store();
    let cluster_id = hash_parts(&[b"cluster"]);
    let (trusted, _) = cluster(1);
    let (_, other_sign) = cluster(2);
    let foreign = ValueProof {
        certified: other_sign(&cluster_id, checkpoint(store.root)),
        key: store.receipt_key,
        value: store.receipt.clone(),
        proof: store.receipt_proof.clone(),
    };
    assert_eq!(
        foreign.verify(&cluster_id, trusted.public(), &store.receipt_key),
        Err(ProofError::Signature(9))
    );
    // The trusted key, but a checkpoint signed for another cluster id.
    let (_, sign) = cluster(1);
    let other_id = ValueProof {
        certified: sign(&hash_parts(&[b"another cluster"]), checkpoint(store.root)),
        ..foreign
    };
    assert_eq!(
        other_id.verify(&cluster_id, trusted.public(), &store.receipt_key),
        Err(ProofError::Signature(9))
    );
}

#[test]
fn an_unknown_version_or_truncated_reply_does_not_decode() {
    let store = store();
    let cluster_id = hash_parts(&[b"cluster"]);
    let (_, sign) = cluster(1);
    let reply = ValueProof {
        certified: sign(&cluster_id, checkpoint(store.root)),
        key: store.receipt_key,
        value: store.receipt.clone(),
        proof: store.receipt_proof,
    };
    let mut bytes = reply.encode().to_vec();
    bytes[0] = 2;
    assert!(welkin_types::decode::<ValueProof>(&bytes).is_err());
    assert!(welkin_types::decode::<ValueProof>(&[]).is_err());
    let mut truncated = reply.encode().to_vec();
    truncated.pop();
    assert!(welkin_types::decode::<ValueProof>(&truncated).is_err());
}
