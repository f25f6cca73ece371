use super::*;
use crate::{
    AggregateError, Coordinator, CoordinatorError, PublicKeys, Session,
    test_support::{dalek_verifies, dkg, rng, shares_for, signers},
};
use std::collections::BTreeSet;

const ALL: [Index; 4] = [0, 1, 2, 3];

/// A 3-of-4 key from `seed`, a generator, and a signer for each node with empty pools.
fn setup(
    seed: u8,
) -> (
    Vec<KeyShare>,
    PublicKeys,
    rand_chacha::ChaCha20Rng,
    BTreeMap<Index, Signer>,
) {
    let (shares, public) = dkg(&ALL, 3, seed);
    let mut rng = rng(seed + 1);
    let signers = ALL
        .iter()
        .map(|&i| (i, Signer::new(i, &mut rng).expect("signer")))
        .collect();
    (shares, public, rng, signers)
}

fn key(shares: &[KeyShare], index: Index) -> &KeyShare {
    shares.iter().find(|s| s.index() == index).expect("a share")
}

/// Issues one commitment from each signer in `chosen` to `coordinator` and makes a session.
fn session_of(
    public: &PublicKeys,
    signers: &mut BTreeMap<Index, Signer>,
    coordinator: Index,
    chosen: &[Index],
    message: &[u8],
    rng: &mut rand_chacha::ChaCha20Rng,
) -> Session {
    let commitments = chosen
        .iter()
        .map(|&index| {
            let signer = signers.get_mut(&index).expect("a signer");
            let issued = signer.issue(coordinator, 1, rng).expect("issue");
            (index, issued.as_slice()[0])
        })
        .collect();
    Session::new(public, message, commitments).expect("session")
}

#[test]
fn any_three_of_four_sign_and_an_independent_verifier_accepts() {
    let (shares, public) = dkg(&ALL, 3, 11);
    let mut coordinator = Coordinator::new();
    let mut rng = rng(12);
    let mut signers = signers(&shares, 1, &mut coordinator, &mut rng);
    let message = b"transit/sign/payments";
    let subsets: [[Index; 3]; 4] = [[0, 1, 2], [0, 1, 3], [0, 2, 3], [1, 2, 3]];
    for subset in subsets {
        let session = session_of(&public, &mut signers, 1, &subset, message, &mut rng);
        assert_eq!(session.signers().collect::<Vec<_>>(), subset);
        let sig_shares = shares_for(&session, 1, &shares, &mut signers, message);
        for (&index, share) in &sig_shares {
            assert_eq!(session.verify_share(index, share), Ok(()));
        }
        let signature = session.aggregate(&sig_shares).expect("aggregates");
        assert!(
            dalek_verifies(&public.group_key(), message, &signature),
            "{subset:?}"
        );
        assert!(!dalek_verifies(
            &public.group_key(),
            b"another message",
            &signature
        ));
    }
}

/// A signature made straight with FROST by `signers`, each told the threshold is their
/// number, summed with no check of this crate or FROST's: what a group of `signers` alone
/// could produce.
fn raw_signature(
    shares: &[KeyShare],
    signers: &[Index],
    message: &[u8],
    rng: &mut rand_chacha::ChaCha20Rng,
) -> [u8; 64] {
    use frost_ed25519::{Ed25519ScalarField, Field, keys::KeyPackage, round1};
    let id = |i| crate::ident::identifier(i).expect("in range");
    let claimed = u16::try_from(signers.len()).expect("few");
    let mut nonces = BTreeMap::new();
    let mut commitments = BTreeMap::new();
    for &i in signers {
        let key = &key(shares, i).inner;
        let (nonce, commitment) = round1::commit(key.signing_share(), &mut Compat(&mut *rng));
        nonces.insert(i, nonce);
        commitments.insert(id(i), commitment);
    }
    let package = frost_ed25519::SigningPackage::new(commitments, message);
    let mut z = Ed25519ScalarField::zero();
    let mut group_key = None;
    for &i in signers {
        let key = &key(shares, i).inner;
        group_key = Some(*key.verifying_key());
        let told = KeyPackage::new(
            id(i),
            *key.signing_share(),
            *key.verifying_share(),
            *key.verifying_key(),
            claimed,
        );
        let share = round2::sign(&package, &nonces[&i], &told).expect("frost signs");
        let bytes: [u8; 32] = share.serialize().try_into().expect("32 bytes");
        z += Ed25519ScalarField::deserialize(&bytes).expect("canonical");
    }
    let group_key = group_key.expect("signers");
    let factors = frost_core::compute_binding_factor_list(&package, &group_key, &[])
        .expect("binding factors");
    let r = frost_core::compute_group_commitment(&package, &factors).expect("commitment");
    frost_core::Signature::<frost_ed25519::Ed25519Sha512>::new(r.to_element(), z)
        .serialize()
        .expect("serializes")
        .try_into()
        .expect("64 bytes")
}

#[test]
fn two_shares_cannot_make_a_signature() {
    let (shares, public) = dkg(&ALL, 3, 13);
    let mut rng = rng(14);
    let message = b"two is not enough";
    // The raw construction works with three (the threshold)...
    let three = raw_signature(&shares, &[0, 1, 3], message, &mut rng);
    assert!(dalek_verifies(&public.group_key(), message, &three));
    // ...and no pair of shares makes a signature that verifies.
    for pair in [[0, 1], [0, 2], [1, 3], [2, 3]] {
        let two = raw_signature(&shares, &pair, message, &mut rng);
        assert!(
            !dalek_verifies(&public.group_key(), message, &two),
            "{pair:?}"
        );
    }
    // This crate refuses to try: a coordinator needs the threshold, and so does a signer.
    let mut signers: BTreeMap<Index, Signer> = ALL
        .iter()
        .map(|&i| (i, Signer::new(i, &mut rng).expect("signer")))
        .collect();
    let commitments: BTreeMap<Index, Commitment> = [0, 1]
        .iter()
        .map(|&i| {
            let signer = signers.get_mut(&i).expect("signer");
            (
                i,
                signer.issue(2, 1, &mut rng).expect("issue").as_slice()[0],
            )
        })
        .collect();
    assert_eq!(
        Session::new(&public, message, commitments.clone()),
        Err(CoordinatorError::NotEnoughSigners {
            available: 2,
            threshold: 3
        })
    );
    let request = SignRequest {
        message: message.to_vec(),
        signers: commitments,
    };
    let signer = signers.get_mut(&0).expect("signer");
    assert_eq!(
        signer.sign(2, key(&shares, 0), message, &request),
        Err(SignError::TooFewSigners {
            found: 2,
            threshold: 3
        })
    );
    // A session short of one share is refused, naming the silent signer.
    let session = session_of(&public, &mut signers, 2, &[0, 1, 2], message, &mut rng);
    let mut sig_shares = shares_for(&session, 2, &shares, &mut signers, message);
    sig_shares.remove(&2);
    assert_eq!(
        session.aggregate(&sig_shares),
        Err(AggregateError::Missing(vec![2]))
    );
}

#[test]
fn a_lying_signer_is_named_and_a_second_session_without_it_completes() {
    let (shares, public) = dkg(&ALL, 3, 15);
    let mut coordinator = Coordinator::new();
    let mut rng = rng(16);
    let mut signers = signers(&shares, 3, &mut coordinator, &mut rng);
    let message = b"robust signing";
    let first = coordinator
        .session(&public, message, &BTreeSet::new())
        .expect("session");
    assert_eq!(first.signers().collect::<Vec<_>>(), vec![0, 1, 2]);
    let mut sig_shares = shares_for(&first, 3, &shares, &mut signers, message);
    // Node 1 answers with a share it made for another message.
    let other = session_of(&public, &mut signers, 3, &[0, 1, 2], b"other", &mut rng);
    let lie = signers
        .get_mut(&1)
        .expect("signer")
        .sign(3, key(&shares, 1), b"other", other.request())
        .expect("signs the other");
    sig_shares.insert(1, lie);
    assert_eq!(
        first.verify_share(1, &lie),
        Err(AggregateError::InvalidShares(vec![1]))
    );
    assert_eq!(first.verify_share(0, &sig_shares[&0]), Ok(()));
    assert_eq!(
        first.aggregate(&sig_shares),
        Err(AggregateError::InvalidShares(vec![1]))
    );
    // Node 2 also stays silent in a retry that included it: exclude both and it fails for
    // want of signers; exclude only the liar and fresh commitments complete it.
    let both: BTreeSet<Index> = [1, 2].into();
    assert_eq!(
        coordinator
            .session(&public, message, &both)
            .expect_err("two left"),
        CoordinatorError::NotEnoughSigners {
            available: 2,
            threshold: 3
        }
    );
    let second = coordinator
        .session(&public, message, &[1].into())
        .expect("session");
    assert_eq!(second.signers().collect::<Vec<_>>(), vec![0, 2, 3]);
    for index in second.signers() {
        let used = first.request().signers().get(&index).map(Commitment::id);
        assert_ne!(Some(second.request().signers()[&index].id()), used, "fresh");
    }
    let sig_shares = shares_for(&second, 3, &shares, &mut signers, message);
    let signature = second.aggregate(&sig_shares).expect("aggregates");
    assert!(dalek_verifies(&public.group_key(), message, &signature));
}

#[test]
fn a_nonce_is_never_used_twice_even_for_the_same_message() {
    let (shares, public, mut rng, mut signers) = setup(17);
    let message = b"once";
    let session = session_of(&public, &mut signers, 0, &[0, 1, 2], message, &mut rng);
    let signer = signers.get_mut(&1).expect("signer");
    assert_eq!(signer.unused(0), 1);
    signer
        .sign(0, key(&shares, 1), message, session.request())
        .expect("first");
    assert_eq!(signer.unused(0), 0);
    let id = session.request().signers()[&1].id();
    assert_eq!(
        signer.sign(0, key(&shares, 1), message, session.request()),
        Err(SignError::UnknownCommitment { coordinator: 0, id })
    );
}

#[test]
fn a_request_with_another_commitment_under_an_issued_id_is_refused_and_burns_it() {
    let (shares, public, mut rng, mut signers) = setup(19);
    let message = b"swapped";
    let session = session_of(&public, &mut signers, 0, &[0, 1, 2], message, &mut rng);
    let signer = signers.get_mut(&1).expect("signer");
    let extra = signer.issue(0, 1, &mut rng).expect("issue").as_slice()[0];
    let mut request = session.request().clone();
    let mine = request.signers.get_mut(&1).expect("mine");
    let id = mine.id;
    mine.commitments = extra.commitments;
    assert_eq!(
        signer.sign(0, key(&shares, 1), message, &request),
        Err(SignError::CommitmentMismatch { id })
    );
    // The nonce was removed before the comparison: the honest request is refused now.
    assert_eq!(
        signer.sign(0, key(&shares, 1), message, session.request()),
        Err(SignError::UnknownCommitment { coordinator: 0, id })
    );
    assert_eq!(signer.unused(0), 1, "only the extra nonce is left");
}

#[test]
fn an_id_issued_to_one_coordinator_is_refused_to_another() {
    let (shares, public, mut rng, mut signers) = setup(21);
    let message = b"for A only";
    let session = session_of(&public, &mut signers, 0, &[0, 1, 2], message, &mut rng);
    let signer = signers.get_mut(&2).expect("signer");
    // Coordinator 3 has a pool of its own, whose ids differ from coordinator 0's.
    signer.issue(3, 2, &mut rng).expect("issue");
    let id = session.request().signers()[&2].id();
    assert_eq!(
        signer.sign(3, key(&shares, 2), message, session.request()),
        Err(SignError::UnknownCommitment { coordinator: 3, id })
    );
    assert_eq!(signer.unused(0), 1, "coordinator 0's nonce is untouched");
    assert_eq!(signer.unused(3), 2);
    signer
        .sign(0, key(&shares, 2), message, session.request())
        .expect("coordinator 0 can still use it");
}

#[test]
fn a_restarted_signer_knows_no_earlier_id() {
    let (shares, public, mut rng, mut signers) = setup(23);
    let message = b"before the restart";
    let session = session_of(&public, &mut signers, 0, &[0, 1, 2], message, &mut rng);
    let mut restarted = Signer::new(0, &mut rng).expect("signer");
    restarted.issue(0, 8, &mut rng).expect("issue");
    let id = session.request().signers()[&0].id();
    assert_eq!(
        restarted.sign(0, key(&shares, 0), message, session.request()),
        Err(SignError::UnknownCommitment { coordinator: 0, id })
    );
}

#[test]
fn a_signer_refuses_another_message_another_key_and_requests_without_it() {
    let (shares, public, mut rng, mut signers) = setup(25);
    let session = session_of(&public, &mut signers, 0, &[0, 1, 2], b"committed", &mut rng);
    let signer = signers.get_mut(&0).expect("signer");
    assert_eq!(
        signer.sign(0, key(&shares, 0), b"not committed", session.request()),
        Err(SignError::MessageMismatch)
    );
    assert_eq!(
        signer.sign(0, key(&shares, 1), b"committed", session.request()),
        Err(SignError::WrongShare {
            share: 1,
            signer: 0
        })
    );
    let outsider = signers.get_mut(&3).expect("signer");
    assert_eq!(
        outsider.sign(0, key(&shares, 3), b"committed", session.request()),
        Err(SignError::NotInRequest(3))
    );
    assert_eq!(
        signers[&0].unused(0),
        1,
        "refusals before the nonce leave it"
    );
}

#[test]
fn pools_are_bounded_and_drop_their_oldest() {
    let mut rng = rng(27);
    let mut signer = Signer::new(0, &mut rng).expect("signer");
    assert_eq!(signer.issue(1, 0, &mut rng), Err(SignError::Count(0)));
    assert_eq!(
        signer.issue(1, NONCE_POOL + 1, &mut rng),
        Err(SignError::Count(NONCE_POOL + 1))
    );
    assert_eq!(
        signer.issue(MAX_PARTICIPANTS, 1, &mut rng),
        Err(SignError::IndexOutOfRange(MAX_PARTICIPANTS))
    );
    let first = signer.issue(1, NONCE_POOL, &mut rng).expect("a full pool");
    let more = signer.issue(1, 3, &mut rng).expect("three more");
    assert_eq!(signer.unused(1), NONCE_POOL);
    let ids: Vec<u64> = first.as_slice().iter().map(Commitment::id).collect();
    assert!(ids.windows(2).all(|pair| pair[1] == pair[0] + 1));
    assert_eq!(more.as_slice()[0].id(), ids[NONCE_POOL - 1] + 1);
    let mut coordinator = Coordinator::new();
    coordinator.add(0, &first).expect("add");
    coordinator.add(0, &more).expect("add");
    assert_eq!(coordinator.available(0), NONCE_POOL);
    signer.forget(1);
    assert_eq!(signer.unused(1), 0);
    coordinator.forget(0);
    assert_eq!(coordinator.available(0), 0);
    assert_eq!(
        coordinator.add(MAX_PARTICIPANTS, &more),
        Err(CoordinatorError::IndexOutOfRange(MAX_PARTICIPANTS))
    );
}

#[test]
fn messages_over_the_limit_are_refused() {
    let (_, public, mut rng, mut signers) = setup(28);
    let long = vec![7u8; MAX_MESSAGE_BYTES + 1];
    let mut coordinator = Coordinator::new();
    for (&index, signer) in signers.iter_mut() {
        let issued = signer.issue(1, 1, &mut rng).expect("issue");
        coordinator.add(index, &issued).expect("add");
    }
    assert_eq!(
        coordinator.session(&public, &long, &BTreeSet::new()),
        Err(CoordinatorError::MessageTooLong(MAX_MESSAGE_BYTES + 1))
    );
    assert!(
        ALL.iter().all(|&i| coordinator.available(i) == 1),
        "none used"
    );
    let session = session_of(&public, &mut signers, 0, &[0, 1, 2], b"short", &mut rng);
    assert_eq!(
        Session::new(&public, &long, session.request().signers().clone()),
        Err(CoordinatorError::MessageTooLong(MAX_MESSAGE_BYTES + 1))
    );
    let outsider: BTreeMap<Index, Commitment> = session
        .request()
        .signers()
        .iter()
        .map(|(i, c)| (if *i == 2 { 9 } else { *i }, *c))
        .collect();
    assert_eq!(
        Session::new(&public, b"short", outsider),
        Err(CoordinatorError::NotAParticipant(9))
    );
}

#[test]
fn a_pooled_nonce_is_as_small_as_the_pool_bound_says() {
    // NONCE_POOL's memory figure assumes about 420 bytes per entry (nonce, id, map slack).
    assert!(std::mem::size_of::<SigningNonces>() + std::mem::size_of::<u64>() <= 420);
}
