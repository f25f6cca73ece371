use super::*;
use crate::{
    Coordinator,
    test_support::{dalek_verifies, dkg, rng, round1, round2, shares_for, signers},
};
use frost_core::keys::{CoefficientCommitment, VerifiableSecretSharingCommitment};

const ALL: [Index; 4] = [0, 1, 2, 3];

/// Participant `index`'s package with its proof of knowledge replaced by another's.
fn with_foreign_proof(package: &Round1Package, donor: &Round1Package) -> Round1Package {
    let mut bytes = package.encode();
    let proof_at = bytes.len() - 64;
    bytes[proof_at..].copy_from_slice(&donor.encode()[proof_at..]);
    Round1Package::decode(&bytes).expect("still well formed")
}

#[test]
fn four_participants_threshold_three_agree_on_one_group_key() {
    let (shares, public) = dkg(&ALL, 3, 1);
    assert_eq!(shares.len(), 4);
    assert_eq!(public.threshold(), 3);
    assert_eq!(public.participants(), &ALL);
    for share in &shares {
        assert_eq!(share.group_key(), public.group_key());
        assert_eq!(share.threshold(), 3);
    }
    let distinct: std::collections::BTreeSet<_> = ALL
        .iter()
        .map(|&i| public.verifying_share(i).expect("a share"))
        .collect();
    assert_eq!(
        distinct.len(),
        4,
        "every participant has its own verifying share"
    );
    // Another run gives another key: the key comes from the randomness, not the setup.
    assert_ne!(dkg(&ALL, 3, 2).1.group_key(), public.group_key());
}

#[test]
fn a_bad_proof_of_knowledge_is_rejected_naming_its_sender() {
    let config = DkgConfig::new(ALL, 3).expect("config");
    let (states, mut committed) = round1(&config, &mut rng(3));
    let forged = with_foreign_proof(&committed[&1], &committed[&2]);
    assert_eq!(
        check_round1(&config, 1, &forged),
        Err(DkgError::BadProof(1))
    );
    assert_eq!(DkgError::BadProof(1).culprit(), Some(1));
    // A package replayed under another sender fails too: the proof binds the identifier.
    assert_eq!(
        check_round1(&config, 0, &committed[&2]),
        Err(DkgError::BadProof(0))
    );
    for (&sender, package) in &committed {
        assert_eq!(check_round1(&config, sender, package), Ok(()));
    }
    committed.insert(1, forged);
    assert_eq!(public_keys(&config, &committed), Err(DkgError::BadProof(1)));
    for (me, state) in states.into_iter().filter(|(me, _)| *me != 1) {
        let error = state
            .round2(&committed)
            .expect_err("a bad package stops round 2");
        assert_eq!(error.culprit(), Some(1), "node {me}");
    }
}

#[test]
fn a_rogue_key_is_refused_by_the_proof_of_knowledge() {
    let config = DkgConfig::new(ALL, 3).expect("config");
    let (_, mut committed) = round1(&config, &mut rng(4));
    // Node 3 waits for the others' packages, then publishes a constant term that cancels
    // theirs, so the group key would be its own honest constant term, a key it alone knows.
    let constant = |package: &Round1Package| package.0.commitment().coefficients()[0];
    let own = constant(&committed[&3]).value();
    let mut rogue = own;
    for index in [0, 1, 2] {
        rogue -= constant(&committed[&index]).value();
    }
    let mut coefficients = committed[&3].0.commitment().coefficients().to_vec();
    coefficients[0] = CoefficientCommitment::new(rogue);
    let package = Round1Package(dkg::round1::Package::new(
        VerifiableSecretSharingCommitment::new(coefficients),
        *committed[&3].0.proof_of_knowledge(),
    ));
    // Without the check, the group key would be node 3's alone.
    let unchecked: BTreeMap<_, _> = ALL
        .iter()
        .map(|&i| {
            let package = if i == 3 { &package } else { &committed[&i] };
            (
                ident::identifier(i).expect("in range"),
                package.0.commitment(),
            )
        })
        .collect();
    let hijacked = PublicKeyPackage::from_dkg_commitments(&unchecked).expect("sums");
    assert_eq!(hijacked.verifying_key().to_element(), own);
    // The check refuses it, naming node 3.
    assert_eq!(
        check_round1(&config, 3, &package),
        Err(DkgError::BadProof(3))
    );
    committed.insert(3, package);
    assert_eq!(public_keys(&config, &committed), Err(DkgError::BadProof(3)));
}

#[test]
fn a_package_for_another_threshold_is_rejected_naming_its_sender() {
    let config = DkgConfig::new(ALL, 3).expect("config");
    let other = DkgConfig::new(ALL, 2).expect("config");
    let (_, package) = DkgRound1::start(&other, 2, &mut rng(5)).expect("starts");
    assert_eq!(
        check_round1(&config, 2, &package),
        Err(DkgError::CommitmentCount {
            sender: 2,
            found: 2,
            expected: 3
        })
    );
    assert_eq!(
        check_round1(&config, 7, &package),
        Err(DkgError::NotAParticipant(7))
    );
}

#[test]
fn a_bad_round_two_share_is_named_by_its_recipient_and_the_honest_three_then_agree() {
    let config = DkgConfig::new(ALL, 3).expect("config");
    let (states, committed) = round1(&config, &mut rng(6));
    let (seconds, mut inbox) = round2(states, &committed);
    // Node 3 sends node 1 a share off its polynomial.
    let honest = inbox[&1][&3].clone();
    let mut bad = vec![crate::MESSAGES_VERSION, 5];
    bad.resize(Round2Package::BYTES, 0);
    let bad = Round2Package::decode(&bad).expect("a canonical scalar");
    inbox.get_mut(&1).expect("inbox").insert(3, bad.clone());
    for (me, second) in seconds {
        let outcome = second.finish(&inbox[&me]);
        if me == 1 {
            assert_eq!(outcome.expect_err("bad share").culprit(), Some(3));
        } else {
            outcome.expect("the others' shares are good");
        }
    }
    // The complaint is decidable from the revealed share and the committed package.
    assert_eq!(
        check_complaint(&config, 3, 1, &committed[&3], &bad),
        Err(DkgError::BadShare(3))
    );
    assert_eq!(
        check_complaint(&config, 3, 1, &committed[&3], &honest),
        Ok(())
    );
    // A key generation among the three others, threshold 3, completes and signs.
    let honest_three = [0, 1, 2];
    let (shares, public) = dkg(&honest_three, 3, 7);
    let mut coordinator = Coordinator::new();
    let mut rng = rng(8);
    let mut signers = signers(&shares, 0, &mut coordinator, &mut rng);
    let message = b"after the culprit left";
    let session = coordinator
        .session(&public, message, &Default::default())
        .expect("session");
    let sig_shares = shares_for(&session, 0, &shares, &mut signers, message);
    let signature = session.aggregate(&sig_shares).expect("aggregates");
    assert!(dalek_verifies(&public.group_key(), message, &signature));
}

#[test]
fn round_two_refuses_a_replaced_own_package_and_missing_or_stranger_packages() {
    let config = DkgConfig::new(ALL, 3).expect("config");
    let (mut states, committed) = round1(&config, &mut rng(9));
    let mut replaced = committed.clone();
    replaced.insert(0, committed[&1].clone());
    let state = states.remove(&0).expect("state");
    assert_eq!(
        state.round2(&replaced).expect_err("replaced"),
        DkgError::OwnPackageReplaced(0)
    );
    let mut missing = committed.clone();
    missing.remove(&2);
    let state = states.remove(&1).expect("state");
    assert_eq!(
        state.round2(&missing).expect_err("missing"),
        DkgError::MissingRound1(2)
    );
    let mut stranger = committed.clone();
    stranger.insert(9, committed[&3].clone());
    let state = states.remove(&2).expect("state");
    assert_eq!(
        state.round2(&stranger).expect_err("stranger"),
        DkgError::NotAParticipant(9)
    );
    // Without its own package in the set, a participant proceeds.
    let mut others = committed.clone();
    others.remove(&3);
    let state = states.remove(&3).expect("state");
    let (second, outgoing) = state.round2(&others).expect("round 2");
    assert_eq!(outgoing.keys().copied().collect::<Vec<_>>(), vec![0, 1, 2]);
    assert_eq!(
        second.finish(&BTreeMap::new()).expect_err("none"),
        DkgError::MissingRound2(0)
    );
}

#[test]
fn configs_outside_the_bounds_are_refused() {
    assert_eq!(DkgConfig::new([0], 2), Err(DkgError::ParticipantCount(1)));
    assert_eq!(DkgConfig::new([0, 1, 1], 2), Err(DkgError::Duplicate(1)));
    assert_eq!(
        DkgConfig::new([0, 256], 2),
        Err(DkgError::IndexOutOfRange(256))
    );
    assert_eq!(
        DkgConfig::new(ALL, 1),
        Err(DkgError::Threshold {
            threshold: 1,
            participants: 4
        })
    );
    assert_eq!(
        DkgConfig::new(ALL, 5),
        Err(DkgError::Threshold {
            threshold: 5,
            participants: 4
        })
    );
    let config = DkgConfig::new([3, 0, 2], 2).expect("any order");
    assert_eq!(config.participants(), &[0, 2, 3]);
    assert_eq!(
        DkgRound1::start(&config, 1, &mut rng(10)).expect_err("not a participant"),
        DkgError::NotAParticipant(1)
    );
    assert_eq!(
        DkgConfig::new(0..256, 256)
            .expect("the largest")
            .participants()
            .len(),
        256
    );
}
