//! One test per validation rule that breaks it and sees the specific rejection, beside one
//! that follows it.

use welkin_keri::{
    Event, EventBody, EventSeal, Ilk, InceptionBuilder, Kevery, KeveryConfig, KeyState, Outcome,
    Prefix, RotationBuilder, Signer, Threshold, ValidationError, interact, receipt, seal_anchors,
    sign, sign_indexed, signed, verified_receipts,
};

use crate::common::{accepted, digests, kevery, signer, single_key, submit, submit_sigs};

fn weights(text: &str) -> Threshold {
    serde_json::from_str(text).expect("threshold")
}

fn witness(n: u8) -> Signer {
    Signer::non_transferable(&[n; 32])
}

fn prefix_of(s: &Signer) -> Prefix {
    Prefix::Basic(s.verkey())
}

/// Replaces the inception's body fields and rebuilds the event (SAID recomputed).
fn with_inception(event: &Event, edit: impl FnOnce(&mut welkin_keri::Inception)) -> Event {
    let EventBody::Inception(mut body) = event.body().clone() else {
        panic!("inception")
    };
    edit(&mut body);
    Event::new(EventBody::Inception(body))
}

#[test]
fn basic_prefix_must_be_the_single_key() {
    let (a, b) = (signer(1), signer(2));
    let good = InceptionBuilder::new(vec![a.verkey()]).basic().build();
    accepted(submit(
        &mut kevery(),
        good.clone(),
        std::slice::from_ref(&a),
    ));
    let bad = with_inception(&good, |i| i.prefix = Prefix::Basic(b.verkey()));
    assert!(matches!(
        submit(&mut kevery(), bad, &[a]),
        Err(ValidationError::BasicPrefixMismatch { .. })
    ));
}

#[test]
fn non_transferable_prefix_has_no_next_keys_and_no_further_events() {
    let n = Signer::non_transferable(&[3; 32]);
    let good = InceptionBuilder::new(vec![n.verkey()]).basic().build();
    let mut k = kevery();
    accepted(submit(&mut k, good.clone(), std::slice::from_ref(&n)));
    let bad = with_inception(&good, |i| i.signing.next = digests(&[signer(4)]));
    assert_eq!(
        submit(&mut kevery(), bad, std::slice::from_ref(&n)),
        Err(ValidationError::NonTransferableContent {
            prefix: good.prefix().qb64(),
            field: "n"
        })
    );
    let state = k.state(&good.prefix()).expect("accepted").clone();
    let ixn = interact(&state, vec![]);
    assert!(matches!(
        submit(&mut k, ixn, &[n]),
        Err(ValidationError::Abandoned { ilk: "ixn", .. })
    ));
}

#[test]
fn delegated_prefix_must_be_self_addressing() {
    let a = signer(5);
    let dip = InceptionBuilder::new(vec![a.verkey()])
        .delegator(prefix_of(&witness(6)))
        .basic()
        .build();
    assert!(matches!(
        submit(&mut kevery(), dip, &[a]),
        Err(ValidationError::DelegatedBasicPrefix { .. })
    ));
}

#[test]
fn thresholds_must_fit_the_keys() {
    let a = signer(7);
    let icp = InceptionBuilder::new(vec![a.verkey()])
        .kt(Threshold::Simple(2))
        .build();
    assert_eq!(
        submit(&mut kevery(), icp, std::slice::from_ref(&a)),
        Err(ValidationError::ThresholdSize {
            field: "kt",
            size: 2,
            keys: 1
        })
    );
    let icp = InceptionBuilder::new(vec![a.verkey()])
        .next(vec![], Threshold::Simple(1))
        .build();
    assert_eq!(
        submit(&mut kevery(), icp, &[a]),
        Err(ValidationError::ThresholdSize {
            field: "nt",
            size: 1,
            keys: 0
        })
    );
}

#[test]
fn signatures_must_verify_and_meet_the_weighted_threshold() {
    let s: Vec<Signer> = (10..13).map(signer).collect();
    let icp = InceptionBuilder::new(s.iter().map(Signer::verkey).collect())
        .kt(weights(r#"["1/2","1/2","1/2"]"#))
        .build();
    // One of three halves is not enough.
    assert!(matches!(
        submit(&mut kevery(), icp.clone(), &s[0..1]),
        Err(ValidationError::ThresholdNotMet { .. })
    ));
    // A signature by the wrong key at index 1.
    let sigs = vec![
        sign_indexed(&icp, &s[0], 0, Some(0)),
        sign_indexed(&icp, &s[2], 1, Some(1)),
    ];
    assert!(matches!(
        submit_sigs(&mut kevery(), icp.clone(), sigs),
        Err(ValidationError::InvalidSignature { index: 1, .. })
    ));
    let sigs = vec![sign_indexed(&icp, &s[0], 3, None)];
    assert_eq!(
        submit_sigs(&mut kevery(), icp.clone(), sigs),
        Err(ValidationError::SignatureIndex { index: 3, keys: 3 })
    );
    // Two halves (keys 0 and 2) are.
    let sigs = vec![
        sign_indexed(&icp, &s[0], 0, Some(0)),
        sign_indexed(&icp, &s[2], 2, Some(2)),
    ];
    accepted(submit_sigs(&mut kevery(), icp, sigs));
}

#[test]
fn rotation_must_reveal_committed_keys() {
    let (mut k, state, _, next) = single_key(20);
    let stranger = signer(99);
    let rot = RotationBuilder::new(&state, vec![stranger.verkey()]).build();
    assert!(matches!(
        submit(&mut k, rot, &[stranger]),
        Err(ValidationError::PriorNextNotMet { .. })
    ));
    let rot = RotationBuilder::new(&state, vec![next.verkey()])
        .next(digests(&[signer(22)]), Threshold::Simple(1))
        .build();
    accepted(submit(&mut k, rot, &[next]));
}

#[test]
fn partial_rotation_needs_the_prior_next_threshold() {
    let s: Vec<Signer> = (30..37).map(signer).collect();
    let half3 = weights(r#"["1/2","1/2","1/2"]"#);
    let icp = InceptionBuilder::new(s[0..3].iter().map(Signer::verkey).collect())
        .kt(half3.clone())
        .next(digests(&s[3..6]), half3.clone())
        .build();
    let mut k = kevery();
    let pre = icp.prefix();
    accepted(submit(&mut k, icp, &s[0..3]));
    let state = k.state(&pre).expect("accepted").clone();
    // Reveal only next key 1 (as current key 0) plus an uncommitted key: 1/2 < 1.
    let keys = vec![s[4].verkey(), s[6].verkey()];
    let rot = RotationBuilder::new(&state, keys)
        .kt(Threshold::Simple(2))
        .build();
    let sigs = vec![
        sign_indexed(&rot, &s[4], 0, Some(1)),
        sign_indexed(&rot, &s[6], 1, None),
    ];
    assert_eq!(
        submit_sigs(&mut k, rot, sigs),
        Err(ValidationError::PriorNextNotMet {
            ondices: vec![1],
            threshold: r#"["1/2","1/2","1/2"]"#.into()
        })
    );
    // Reveal next keys 0 and 2 (a two-index signature for key 2 at current index 1).
    let keys = vec![s[3].verkey(), s[5].verkey(), s[6].verkey()];
    let rot = RotationBuilder::new(&state, keys)
        .kt(Threshold::Simple(2))
        .build();
    let sigs = vec![
        sign_indexed(&rot, &s[3], 0, Some(0)),
        sign_indexed(&rot, &s[5], 1, Some(2)),
    ];
    accepted(submit_sigs(&mut k, rot, sigs));
}

#[test]
fn sequence_numbers_and_prior_digests_chain() {
    let (mut k, state, current, _) = single_key(40);
    let mut ixn = interact(&state, vec![]);
    if let EventBody::Interaction(body) = ixn.body().clone() {
        let mut body = body;
        body.prior = welkin_keri::Digest::of(b"not the prior event");
        ixn = Event::new(EventBody::Interaction(body));
    }
    assert!(matches!(
        submit(&mut k, ixn, std::slice::from_ref(&current)),
        Err(ValidationError::PriorMismatch { .. })
    ));
    let good = interact(&state, vec![]);
    let mut skipped = state.clone();
    skipped.sn = 1;
    assert_eq!(
        state.apply(&interact(&skipped, vec![]), &[]),
        Err(ValidationError::OutOfOrder {
            expected: 1,
            found: 2
        })
    );
    accepted(submit(&mut k, good, &[current]));
}

#[test]
fn out_of_order_events_wait_in_escrow_until_their_predecessor_arrives() {
    let (mut k, state, current, _) = single_key(45);
    let first = interact(&state, vec![]);
    let mut after = state.clone();
    after.sn = 1;
    after.digest = first.said();
    let second = interact(&after, vec![]);
    assert_eq!(
        submit(&mut k, second, std::slice::from_ref(&current)),
        Ok(Outcome::Escrowed(welkin_keri::EscrowReason::OutOfOrder))
    );
    assert_eq!(
        submit(&mut k, first, &[current]),
        Ok(Outcome::Accepted { released: 1 })
    );
    assert_eq!(k.state(&state.prefix).expect("accepted").sn, 2);
    assert!(k.escrowed().is_empty());
}

#[test]
fn events_of_unknown_prefixes_wait_for_the_inception() {
    let a = signer(47);
    let icp = InceptionBuilder::new(vec![a.verkey()])
        .next(digests(&[signer(48)]), Threshold::Simple(1))
        .build();
    let (mut staging, mut k) = (kevery(), kevery());
    let sigs = sign(&icp, std::slice::from_ref(&a));
    staging
        .process(signed(icp.clone(), sigs.clone()))
        .expect("accepted");
    let ixn = interact(staging.state(&icp.prefix()).expect("accepted"), vec![]);
    assert_eq!(
        submit(&mut k, ixn, std::slice::from_ref(&a)),
        Ok(Outcome::Escrowed(welkin_keri::EscrowReason::UnknownPrefix))
    );
    assert_eq!(
        k.process(signed(icp, sigs)),
        Ok(Outcome::Accepted { released: 1 })
    );
}

#[test]
fn abandoned_identifiers_accept_nothing_more() {
    let (mut k, state, _, next) = single_key(50);
    let rot = RotationBuilder::new(&state, vec![next.verkey()]).build();
    accepted(submit(&mut k, rot, std::slice::from_ref(&next)));
    let state = k.state(&state.prefix).expect("accepted").clone();
    assert!(!state.transferable());
    let ixn = interact(&state, vec![]);
    assert!(matches!(
        submit(&mut k, ixn, std::slice::from_ref(&next)),
        Err(ValidationError::Abandoned { ilk: "ixn", .. })
    ));
    let rot = RotationBuilder::new(&state, vec![next.verkey()]).build();
    assert!(matches!(
        submit(&mut k, rot, &[next]),
        Err(ValidationError::Abandoned { ilk: "rot", .. })
    ));
}

#[test]
fn establishment_only_identifiers_refuse_interactions() {
    let (a, b) = (signer(55), signer(56));
    let icp = InceptionBuilder::new(vec![a.verkey()])
        .next(digests(std::slice::from_ref(&b)), Threshold::Simple(1))
        .config(&["EO"])
        .build();
    let mut k = kevery();
    let pre = icp.prefix();
    accepted(submit(&mut k, icp, std::slice::from_ref(&a)));
    let state = k.state(&pre).expect("accepted").clone();
    assert!(state.establishment_only());
    assert_eq!(
        submit(&mut k, interact(&state, vec![]), std::slice::from_ref(&a)),
        Err(ValidationError::EstablishmentOnly { prefix: pre.qb64() })
    );
    accepted(submit(
        &mut k,
        RotationBuilder::new(&state, vec![b.verkey()]).build(),
        &[b],
    ));
}

/// A delegator (with `traits`) and a dip it should anchor: (kevery, delegator state, dip).
fn delegation(traits: &[&str]) -> (Kevery, KeyState, Signer, Event, Signer) {
    let (d, e) = (signer(60), signer(61));
    let dicp = InceptionBuilder::new(vec![d.verkey()])
        .next(digests(&[signer(62)]), Threshold::Simple(1))
        .config(traits)
        .build();
    let mut k = kevery();
    let dpre = dicp.prefix();
    accepted(submit(&mut k, dicp, std::slice::from_ref(&d)));
    let dip = InceptionBuilder::new(vec![e.verkey()])
        .next(digests(&[signer(63)]), Threshold::Simple(1))
        .delegator(dpre)
        .build();
    let state = k.state(&dpre).expect("accepted").clone();
    (k, state, d, dip, e)
}

#[test]
fn delegated_inception_waits_for_the_delegators_anchor() {
    let (mut k, dstate, d, dip, e) = delegation(&[]);
    assert_eq!(
        submit(&mut k, dip.clone(), std::slice::from_ref(&e)),
        Ok(Outcome::Escrowed(
            welkin_keri::EscrowReason::MissingDelegation
        ))
    );
    // An anchor of some other seal does not release it.
    let wrong = EventSeal {
        sn: 1,
        ..dip.seal()
    };
    let ixn = interact(&dstate, seal_anchors(&[wrong]));
    assert_eq!(
        submit(&mut k, ixn, std::slice::from_ref(&d)),
        Ok(Outcome::Accepted { released: 0 })
    );
    let dstate = k.state(&dstate.prefix).expect("accepted").clone();
    let ixn = interact(&dstate, seal_anchors(&[dip.seal()]));
    assert_eq!(
        submit(&mut k, ixn, &[d]),
        Ok(Outcome::Accepted { released: 1 })
    );
    let state = k.state(&dip.prefix()).expect("released from escrow");
    assert_eq!(state.delegator, Some(dstate.prefix));
    // A delegated identifier rotates with drt only.
    let rot = RotationBuilder::new(state, vec![signer(63).verkey()]);
    let EventBody::Rotation(mut body) = rot.build().body().clone() else {
        panic!("rotation")
    };
    body.delegated = false;
    let rot = Event::new(EventBody::Rotation(body));
    assert_eq!(
        submit(&mut k, rot, &[signer(63)]),
        Err(ValidationError::WrongRotation {
            ilk: "rot",
            delegated: true
        })
    );
}

#[test]
fn do_not_delegate_delegators_cannot_delegate() {
    let (mut k, dstate, d, dip, e) = delegation(&["DND"]);
    let ixn = interact(&dstate, seal_anchors(&[dip.seal()]));
    accepted(submit(&mut k, ixn, &[d]));
    assert_eq!(
        submit(&mut k, dip, &[e]),
        Err(ValidationError::DelegationForbidden {
            delegator: dstate.prefix.qb64()
        })
    );
}

#[test]
fn drt_on_a_non_delegated_identifier_is_rejected() {
    let (mut k, state, _, next) = single_key(65);
    let EventBody::Rotation(mut body) = RotationBuilder::new(&state, vec![next.verkey()])
        .build()
        .body()
        .clone()
    else {
        panic!("rotation")
    };
    body.delegated = true;
    let drt = Event::new(EventBody::Rotation(body));
    assert_eq!(drt.ilk(), Ilk::Drt);
    assert_eq!(
        submit(&mut k, drt, &[next]),
        Err(ValidationError::WrongRotation {
            ilk: "drt",
            delegated: false
        })
    );
}

#[test]
fn witness_lists_have_no_duplicates_and_a_reachable_threshold() {
    let a = signer(70);
    let (w1, w2) = (witness(71), witness(72));
    let build = |ws: Vec<Prefix>, bt| {
        InceptionBuilder::new(vec![a.verkey()])
            .witnesses(ws, bt)
            .build()
    };
    let k = || kevery();
    assert!(matches!(
        submit(
            &mut k(),
            build(vec![prefix_of(&w1), prefix_of(&w1)], 1),
            std::slice::from_ref(&a)
        ),
        Err(ValidationError::DuplicateWitness { field: "b", .. })
    ));
    assert_eq!(
        submit(
            &mut k(),
            build(vec![prefix_of(&w1)], 2),
            std::slice::from_ref(&a)
        ),
        Err(ValidationError::WitnessThreshold {
            bt: 2,
            witnesses: 1
        })
    );
    assert!(matches!(
        submit(
            &mut k(),
            build(vec![Prefix::Basic(signer(73).verkey())], 1),
            std::slice::from_ref(&a)
        ),
        Err(ValidationError::TransferableWitness { .. })
    ));
    accepted(submit(
        &mut k(),
        build(vec![prefix_of(&w1), prefix_of(&w2)], 2),
        &[a],
    ));
}

#[test]
fn rotation_cuts_must_be_witnesses_and_adds_new() {
    let (a, b) = (signer(75), signer(76));
    let ws: Vec<Signer> = (77..80).map(witness).collect();
    let icp = InceptionBuilder::new(vec![a.verkey()])
        .next(digests(std::slice::from_ref(&b)), Threshold::Simple(1))
        .witnesses(vec![prefix_of(&ws[0]), prefix_of(&ws[1])], 1)
        .build();
    let mut k = kevery();
    let pre = icp.prefix();
    accepted(submit(&mut k, icp, &[a]));
    let state = k.state(&pre).expect("accepted").clone();
    let rot = |cuts, adds, bt| {
        RotationBuilder::new(&state, vec![b.verkey()])
            .witnesses(cuts, adds, bt)
            .build()
    };
    let cases = [
        (rot(vec![prefix_of(&ws[2])], vec![], 1), "CutNotWitness"),
        (rot(vec![], vec![prefix_of(&ws[0])], 1), "AddConflict"),
        (
            rot(vec![prefix_of(&ws[0])], vec![prefix_of(&ws[0])], 1),
            "AddConflict",
        ),
        (
            rot(vec![prefix_of(&ws[0]), prefix_of(&ws[0])], vec![], 1),
            "DuplicateWitness",
        ),
        (rot(vec![prefix_of(&ws[0])], vec![], 2), "WitnessThreshold"),
    ];
    for (event, expected) in cases {
        let err = submit(&mut k, event, std::slice::from_ref(&b)).expect_err("rejected");
        assert!(
            format!("{err:?}").starts_with(expected),
            "{err:?} is not {expected}"
        );
    }
    accepted(submit(
        &mut k,
        rot(vec![prefix_of(&ws[0])], vec![prefix_of(&ws[2])], 2),
        std::slice::from_ref(&b),
    ));
    let witnesses = &k.state(&pre).expect("accepted").witnesses;
    assert_eq!(witnesses, &vec![prefix_of(&ws[1]), prefix_of(&ws[2])]);
}

#[test]
fn witnessed_events_wait_for_receipts_which_are_verified() {
    let a = signer(80);
    let ws: Vec<Signer> = (81..83).map(witness).collect();
    let icp = InceptionBuilder::new(vec![a.verkey()])
        .witnesses(ws.iter().map(prefix_of).collect(), 2)
        .build();
    let mut k = Kevery::new(KeveryConfig::default());
    assert_eq!(
        submit(&mut k, icp.clone(), std::slice::from_ref(&a)),
        Ok(Outcome::Escrowed(
            welkin_keri::EscrowReason::MissingWitnessReceipts
        ))
    );
    // A receipt with a forged signature is rejected.
    let mut forged = receipt(&icp, &ws[0]);
    forged.attachments.receipts[0].signature[0] ^= 1;
    assert!(matches!(
        k.process(forged),
        Err(ValidationError::InvalidWitnessSignature { .. })
    ));
    assert_eq!(
        k.process(receipt(&icp, &ws[0])),
        Ok(Outcome::Escrowed(
            welkin_keri::EscrowReason::MissingWitnessReceipts
        ))
    );
    assert_eq!(
        k.process(receipt(&icp, &ws[1])),
        Ok(Outcome::Accepted { released: 0 })
    );
    let log = k.log(&icp.prefix());
    assert_eq!(log[0].attachments.receipts.len(), 2);
    let rct = receipt(&icp, &ws[1]);
    assert_eq!(verified_receipts(&icp, &rct).len(), 1);
    // A receipt naming another SAID for an accepted event is rejected.
    let mut other = receipt(&icp, &ws[0]);
    if let EventBody::Receipt(mut r) = other.event.body().clone() {
        r.said = welkin_keri::Digest::of(b"other");
        other.event = Event::new(EventBody::Receipt(r));
    }
    assert!(matches!(
        k.process(other),
        Err(ValidationError::ReceiptMismatch { .. })
    ));
}

#[test]
fn first_seen_wins_and_duplicity_is_recorded() {
    let (mut k, state, current, _) = single_key(85);
    let first = interact(&state, vec![]);
    let second = interact(&state, vec![welkin_keri::Json::string("different")]);
    accepted(submit(
        &mut k,
        first.clone(),
        std::slice::from_ref(&current),
    ));
    assert_eq!(
        submit(&mut k, first.clone(), std::slice::from_ref(&current)),
        Ok(Outcome::Duplicate)
    );
    assert_eq!(
        submit(&mut k, second.clone(), std::slice::from_ref(&current)),
        Err(ValidationError::Duplicitous {
            prefix: state.prefix.qb64(),
            sn: 1,
            said: second.said().qb64()
        })
    );
    let evidence = k.duplicity(&state.prefix);
    assert_eq!(evidence.len(), 1);
    assert_eq!(evidence[0].accepted, first);
    assert_eq!(evidence[0].conflicting.event, second);
    // An unsigned conflict is not evidence, just invalid.
    let third = interact(&state, vec![welkin_keri::Json::string("third")]);
    assert!(matches!(
        submit(&mut k, third, &[signer(1)]),
        Err(ValidationError::InvalidSignature { .. })
    ));
    assert_eq!(k.duplicity(&state.prefix).len(), 1);
    assert_eq!(k.state(&state.prefix).expect("kept").digest, first.said());
}

/// A single-key identifier with two interactions signed by its current key (the keys a
/// thief would hold): (kevery, the state after each event, current, next).
fn with_interactions(seed: u8) -> (Kevery, Vec<KeyState>, Signer, Signer) {
    let (mut k, state, current, next) = single_key(seed);
    let mut states = vec![state];
    for _ in 0..2 {
        let last = states.last().expect("incepted");
        let ixn = interact(last, vec![]);
        accepted(submit(&mut k, ixn, std::slice::from_ref(&current)));
        states.push(k.state(&last.prefix).expect("accepted").clone());
    }
    (k, states, current, next)
}

/// A rotation following `state` to the keys of `signer`, committing to `after`.
fn rotation(state: &KeyState, signer: &Signer, after: &Signer) -> Event {
    RotationBuilder::new(state, vec![signer.verkey()])
        .next(digests(std::slice::from_ref(after)), Threshold::Simple(1))
        .build()
}

#[test]
fn recovery_rotation_supersedes_the_interactions_after_the_last_establishment() {
    let (mut k, states, current, next) = with_interactions(88);
    let pre = states[0].prefix;
    let ixns: Vec<Event> = k.log(&pre)[1..].iter().map(|e| e.event.clone()).collect();
    let after = signer(90);
    let rot = rotation(&states[0], &next, &after);
    assert_eq!(rot.sn(), 1);
    accepted(submit(&mut k, rot.clone(), std::slice::from_ref(&next)));
    let state = k.state(&pre).expect("recovered").clone();
    assert_eq!((state.sn, state.ilk.as_str()), (1, "rot"));
    assert_eq!(state.digest, rot.said());
    assert_eq!(state.signing.keys, vec![next.verkey()]);
    assert_eq!(state.last_establishment_sn, 1);
    let log: Vec<Event> = k.log(&pre).iter().map(|e| e.event.clone()).collect();
    assert_eq!(log.len(), 2);
    assert_eq!(log[1], rot);
    let record = k.superseded(&pre);
    assert_eq!(record.len(), 1);
    assert_eq!(record[0].rotation, rot);
    let superseded: Vec<Event> = record[0]
        .superseded
        .iter()
        .map(|e| e.event.clone())
        .collect();
    assert_eq!(superseded, ixns);
    assert!(k.duplicity(&pre).is_empty(), "a recovery is not duplicity");
    // The superseded events cannot come back, at their own or at the next number.
    for ixn in &ixns {
        assert_eq!(
            submit(&mut k, ixn.clone(), std::slice::from_ref(&current)),
            Err(ValidationError::Superseded {
                prefix: pre.qb64(),
                sn: ixn.sn(),
                said: ixn.said().qb64()
            })
        );
    }
    // The compromised keys sign nothing any more; the recovered ones do.
    assert!(matches!(
        submit(
            &mut k,
            interact(&state, vec![]),
            std::slice::from_ref(&current)
        ),
        Err(ValidationError::InvalidSignature { index: 0, .. })
    ));
    accepted(submit(
        &mut k,
        interact(&state, vec![]),
        std::slice::from_ref(&next),
    ));
    // A second recovery, of the latest interaction only, by the keys committed to last.
    let before = k.state(&pre).expect("accepted").clone();
    accepted(submit(
        &mut k,
        interact(&before, vec![]),
        std::slice::from_ref(&next),
    ));
    let rot = rotation(&before, &after, &signer(91));
    assert_eq!(rot.sn(), 3);
    accepted(submit(&mut k, rot.clone(), std::slice::from_ref(&after)));
    assert_eq!(k.state(&pre).expect("recovered").digest, rot.said());
    assert_eq!(k.log(&pre).len(), 4);
    assert_eq!(k.superseded(&pre).len(), 2);
    assert_eq!(k.superseded(&pre)[1].superseded.len(), 1);
}

#[test]
fn recovery_cannot_supersede_an_establishment_event() {
    let (mut k, state, _, next) = single_key(92);
    let after = signer(94);
    accepted(submit(
        &mut k,
        rotation(&state, &next, &after),
        std::slice::from_ref(&next),
    ));
    let rotated = k.state(&state.prefix).expect("rotated").clone();
    accepted(submit(
        &mut k,
        interact(&rotated, vec![]),
        std::slice::from_ref(&next),
    ));
    // Same keys, another commitment: a validly signed rotation at sn 1 over the rotation.
    let other = rotation(&state, &next, &signer(95));
    assert_eq!(
        submit(&mut k, other.clone(), std::slice::from_ref(&next)),
        Err(ValidationError::SupersedesEstablishment {
            prefix: state.prefix.qb64(),
            sn: 1,
            said: other.said().qb64(),
            last_establishment_sn: 1
        })
    );
    assert_eq!(k.duplicity(&state.prefix).len(), 1, "kept as evidence");
    assert_eq!(k.state(&state.prefix).expect("kept").sn, 2);
    assert!(k.superseded(&state.prefix).is_empty());
}

#[test]
fn recovery_names_the_event_before_it_as_prior() {
    let (mut k, states, _, next) = with_interactions(96);
    // At sn 2, but naming the inception (sn 0) instead of the ixn at sn 1.
    let EventBody::Rotation(mut body) = rotation(&states[1], &next, &signer(98)).body().clone()
    else {
        panic!("rotation")
    };
    body.prior = states[0].digest;
    let rot = Event::new(EventBody::Rotation(body));
    assert_eq!(
        submit(&mut k, rot, std::slice::from_ref(&next)),
        Err(ValidationError::PriorMismatch {
            expected: states[1].digest.qb64(),
            found: states[0].digest.qb64()
        })
    );
    assert_eq!(k.state(&states[0].prefix).expect("kept").sn, 2);
    assert!(
        k.duplicity(&states[0].prefix).is_empty(),
        "not validly made: no evidence"
    );
}

#[test]
fn recovery_must_be_signed_by_its_keys() {
    let (mut k, states, current, next) = with_interactions(100);
    let rot = rotation(&states[0], &next, &signer(102));
    // Signed by the compromised current key, not by the revealed next key.
    assert_eq!(
        submit(&mut k, rot, &[current]),
        Err(ValidationError::InvalidSignature {
            index: 0,
            key: next.verkey().qb64()
        })
    );
    assert_eq!(k.state(&states[0].prefix).expect("kept").sn, 2);
}

#[test]
fn recovery_must_reveal_the_prior_next_keys() {
    let (mut k, states, current, _) = with_interactions(104);
    // The thief rotates to a key of its own: the pre-rotation commitment stops it.
    let rot = rotation(&states[0], &current, &signer(106));
    assert_eq!(
        submit(&mut k, rot, std::slice::from_ref(&current)),
        Err(ValidationError::PriorNextNotMet {
            ondices: vec![],
            threshold: r#""1""#.into()
        })
    );
    assert_eq!(k.state(&states[0].prefix).expect("kept").sn, 2);
    assert!(k.superseded(&states[0].prefix).is_empty());
}

#[test]
fn an_interaction_cannot_supersede() {
    let (mut k, states, current, _) = with_interactions(108);
    let ixn = interact(&states[0], vec![welkin_keri::Json::string("other")]);
    assert_eq!(
        submit(&mut k, ixn.clone(), std::slice::from_ref(&current)),
        Err(ValidationError::Duplicitous {
            prefix: states[0].prefix.qb64(),
            sn: 1,
            said: ixn.said().qb64()
        })
    );
    assert_eq!(k.duplicity(&states[0].prefix).len(), 1);
    assert_eq!(
        k.state(&states[0].prefix).expect("kept").digest,
        states[2].digest
    );
}

#[test]
fn delegated_recovery_supersedes_only_the_latest_interaction_once_anchored() {
    let (mut k, dstate, d, dip, e) = delegation(&[]);
    let ixn = interact(&dstate, seal_anchors(&[dip.seal()]));
    accepted(submit(&mut k, ixn, std::slice::from_ref(&d)));
    accepted(submit(&mut k, dip.clone(), std::slice::from_ref(&e)));
    let epre = dip.prefix();
    let mut states = vec![k.state(&epre).expect("accepted").clone()];
    for _ in 0..2 {
        let last = states.last().expect("incepted");
        accepted(submit(
            &mut k,
            interact(last, vec![]),
            std::slice::from_ref(&e),
        ));
        states.push(k.state(&epre).expect("accepted").clone());
    }
    let next = signer(63);
    let deep = rotation(&states[0], &next, &signer(64));
    assert_eq!(deep.ilk(), Ilk::Drt);
    assert_eq!(
        submit(&mut k, deep.clone(), std::slice::from_ref(&next)),
        Err(ValidationError::DelegatedRecoveryDepth {
            prefix: epre.qb64(),
            sn: 1,
            said: deep.said().qb64(),
            last: 2
        })
    );
    let drt = rotation(&states[1], &next, &signer(64));
    assert_eq!(
        submit(&mut k, drt.clone(), std::slice::from_ref(&next)),
        Ok(Outcome::Escrowed(
            welkin_keri::EscrowReason::MissingDelegation
        ))
    );
    assert_eq!(k.state(&epre).expect("kept").digest, states[2].digest);
    let dstate = k.state(&dstate.prefix).expect("accepted").clone();
    let ixn = interact(&dstate, seal_anchors(&[drt.seal()]));
    assert_eq!(
        submit(&mut k, ixn, &[d]),
        Ok(Outcome::Accepted { released: 1 })
    );
    let state = k.state(&epre).expect("recovered");
    assert_eq!((state.sn, state.digest), (2, drt.said()));
    assert_eq!(k.superseded(&epre)[0].superseded.len(), 1);
}

#[test]
fn escrow_is_bounded() {
    let (_, state, current, _) = single_key(90);
    let mut k = Kevery::new(KeveryConfig {
        require_witness_receipts: false,
        escrow_limit: 1,
    });
    let mut future = state.clone();
    future.sn = 5;
    let held = interact(&future, vec![]);
    assert!(matches!(
        submit(&mut k, held, std::slice::from_ref(&current)),
        Ok(Outcome::Escrowed(_))
    ));
    future.sn = 6;
    assert_eq!(
        submit(&mut k, interact(&future, vec![]), &[current]),
        Err(ValidationError::EscrowFull { limit: 1 })
    );
}

#[test]
fn key_state_serializes_as_json() {
    let (_, state, _, _) = single_key(92);
    let json = serde_json::to_value(&state).expect("serializable");
    assert_eq!(json["prefix"], state.prefix.qb64());
    assert_eq!(json["kt"], "1");
    let back: KeyState = serde_json::from_value(json).expect("round trip");
    assert_eq!(back, state);
}
