//! Rounds run in memory: honest, with a dealer that sends a bad share, a silent dealer, an
//! equivocating dealer, and a reshare to a larger set; and the wire codec.

use crate::{DkgError, DkgMessage, Ledger, Output, Participant, Recorded, Round};
use commonware_cryptography::{
    Signer as _,
    bls12381::primitives::{group::Share, ops, ops::threshold},
};
use commonware_parallel::Sequential;
use commonware_utils::test_rng;
use std::collections::VecDeque;
use welkin_types::{Digest, PrivateKey, PublicKey, Variant};

const NAMESPACE: &[u8] = b"welkin/dkg-test";

fn cluster() -> Digest {
    Digest::from([7; 32])
}

fn keys(n: u64) -> Vec<PrivateKey> {
    let mut keys: Vec<_> = (0..n).map(PrivateKey::from_seed).collect();
    keys.sort_by_key(|k| k.public_key());
    keys
}

fn publics(keys: &[PrivateKey]) -> Vec<PublicKey> {
    keys.iter().map(|k| k.public_key()).collect()
}

/// What the test does to a dealing in flight (from dealer, to player, the message).
type Tamper<'a> = &'a dyn Fn(usize, usize, DkgMessage) -> Option<DkgMessage>;

/// Runs a round among `keys` (all players; the dealers are `dealers`, with `shares` when
/// resharing): delivers every message through `tamper`, records every dealer's log in one
/// ledger, and returns each player's result and the dealing errors players reported.
#[allow(clippy::type_complexity)]
fn run(
    round: &Round,
    keys: &[PrivateKey],
    dealers: &[usize],
    shares: &[Option<Share>],
    tamper: Tamper<'_>,
) -> (
    Ledger,
    Vec<Result<(Output, Share), DkgError>>,
    Vec<DkgError>,
) {
    let mut rng = test_rng();
    let publics = publics(keys);
    let index = |key: &PublicKey| publics.iter().position(|k| k == key).expect("known");
    let mut nodes = Vec::new();
    let mut queue = VecDeque::new();
    for (i, key) in keys.iter().enumerate() {
        let share = shares.get(i).cloned().flatten();
        let (node, out) = Participant::start(&mut rng, round.clone(), key, share).expect("starts");
        if dealers.contains(&i) {
            for o in out {
                queue.push_back((i, o));
            }
        }
        nodes.push(node);
    }
    let mut refused = Vec::new();
    while let Some((from, outgoing)) = queue.pop_front() {
        let to = index(&outgoing.to);
        let message = match outgoing.message {
            dealing @ DkgMessage::Dealing { .. } => match tamper(from, to, dealing) {
                Some(m) => m,
                None => continue,
            },
            other => other,
        };
        match nodes[to].handle(&publics[from], message) {
            Ok(Some(reply)) => queue.push_back((to, reply)),
            Ok(None) => {}
            Err(error) => refused.push(error),
        }
    }
    let mut ledger = Ledger::new(round.clone());
    for &d in dealers {
        let log = nodes[d].log().expect("a dealer has a log");
        assert_eq!(ledger.record(log).expect("checks"), Recorded::Kept);
    }
    let results = nodes
        .into_iter()
        .map(|node| node.finish(&mut rng, &ledger))
        .collect();
    (ledger, results, refused)
}

/// Signs `message` with the shares of `signers` and recovers the threshold signature.
fn sign(
    output: &Output,
    shares: &[&Share],
    message: &[u8],
) -> Option<welkin_types::ClusterSignature> {
    let partials: Vec<_> = shares
        .iter()
        .map(|s| threshold::sign_message::<Variant>(s, NAMESPACE, message))
        .collect();
    threshold::recover::<Variant, _>(output.public(), &partials, &Sequential).ok()
}

fn verifies(output: &Output, signature: &welkin_types::ClusterSignature, message: &[u8]) -> bool {
    ops::verify_message::<Variant>(output.public().public(), NAMESPACE, message, signature).is_ok()
}

/// Checks that `shares` recover a signature that verifies under the output's key.
fn assert_quorum_signs(output: &Output, shares: &[&Share]) {
    let message = b"a message";
    let signature = sign(output, shares, message).expect("a quorum recovers");
    assert!(verifies(output, &signature, message));
}

fn all_agree(results: &[Result<(Output, Share), DkgError>]) -> (Output, Vec<Share>) {
    let first = results[0].as_ref().expect("finalizes").0.clone();
    let mut shares = Vec::new();
    for result in results {
        let (output, share) = result.as_ref().expect("every honest player finalizes");
        assert_eq!(output, &first, "every player computes the same output");
        shares.push(share.clone());
    }
    (first, shares)
}

/// Records in `ledger` the logs of `dealers` whose dealings were never delivered (so nobody
/// acknowledged them).
fn record_undelivered(ledger: &mut Ledger, round: &Round, dealers: &[PrivateKey]) {
    let mut rng = test_rng();
    for key in dealers {
        let (mut dealer, _) =
            Participant::start(&mut rng, round.clone(), key, None).expect("start");
        assert_eq!(
            ledger.record(dealer.log().expect("log")).expect("checks"),
            Recorded::Kept
        );
    }
}

fn honest(_: usize, _: usize, m: DkgMessage) -> Option<DkgMessage> {
    Some(m)
}

#[test]
fn four_nodes_make_one_key_that_any_quorum_signs_with() {
    let keys = keys(4);
    let round = Round::new(&cluster(), 0, None, publics(&keys), publics(&keys)).expect("round");
    let (ledger, results, refused) = run(&round, &keys, &[0, 1, 2, 3], &[], &honest);
    assert!(refused.is_empty(), "{refused:?}");
    let (output, shares) = all_agree(&results);
    assert_eq!(
        ledger.outcome(&mut test_rng()).expect("observed"),
        output,
        "an observer with the same logs computes the same output"
    );
    assert_eq!(output.quorum::<crate::Faults>(), 3);
    let message = b"checkpoint";
    let a = sign(&output, &[&shares[0], &shares[1], &shares[2]], message).expect("recovers");
    let b = sign(&output, &[&shares[1], &shares[2], &shares[3]], message).expect("recovers");
    assert!(verifies(&output, &a, message));
    assert_eq!(a, b, "any quorum gives the one (unique) signature");
    assert!(
        sign(&output, &[&shares[0], &shares[1]], message)
            .is_none_or(|s| !verifies(&output, &s, message)),
        "two shares (fewer than the quorum) sign nothing valid"
    );
}

#[test]
fn a_dealer_that_sends_a_bad_share_is_refused_and_the_round_completes() {
    let keys = keys(4);
    let round = Round::new(&cluster(), 0, None, publics(&keys), publics(&keys)).expect("round");
    // Dealer 0 sends player 1 the share meant for player 2.
    let stolen = std::cell::RefCell::new(None);
    let tamper = |from: usize, to: usize, m: DkgMessage| {
        if from == 0 && to == 2 {
            *stolen.borrow_mut() = Some(m.clone());
        }
        Some(m)
    };
    // First pass to capture player 2's dealing from dealer 0 (deterministic rng: the same
    // dealings again below).
    let _ = run(&round, &keys, &[0, 1, 2, 3], &[], &tamper);
    let wrong = stolen.into_inner().expect("captured");
    let tamper = |from: usize, to: usize, m: DkgMessage| {
        if from == 0 && to == 1 {
            Some(wrong.clone())
        } else {
            Some(m)
        }
    };
    let (ledger, results, refused) = run(&round, &keys, &[0, 1, 2, 3], &[], &tamper);
    assert!(
        refused.iter().any(
            |e| matches!(e, DkgError::Dealing { dealer, .. } if **dealer == keys[0].public_key())
        ),
        "player 1 refuses dealer 0's share, naming the dealer: {refused:?}"
    );
    // Dealer 0's log reveals player 1's share (no acknowledgement); every player still ends
    // with the same key, player 1 included.
    let (output, shares) = all_agree(&results);
    assert_eq!(ledger.outcome(&mut test_rng()).expect("observed"), output);
    assert_quorum_signs(&output, &[&shares[1], &shares[2], &shares[3]]);
}

#[test]
fn a_silent_dealer_is_left_out_and_still_gets_its_share() {
    let keys = keys(4);
    let round = Round::new(&cluster(), 0, None, publics(&keys), publics(&keys)).expect("round");
    let (_, results, refused) = run(&round, &keys, &[0, 1, 2], &[], &honest);
    assert!(refused.is_empty());
    let (output, shares) = all_agree(&results);
    assert!(!output.dealers().iter().any(|d| *d == keys[3].public_key()));
    assert_quorum_signs(&output, &[&shares[3], &shares[0], &shares[2]]);
}

#[test]
fn an_equivocating_dealer_is_excluded_and_too_few_logs_give_no_key() {
    let keys = keys(4);
    let round = Round::new(&cluster(), 0, None, publics(&keys), publics(&keys)).expect("round");
    let mut rng = test_rng();
    let mut ledger = Ledger::new(round.clone());
    // Dealer 0 deals twice (two polynomials) and submits both logs.
    let (mut first, _) =
        Participant::start(&mut rng, round.clone(), &keys[0], None).expect("start");
    let (mut second, _) =
        Participant::start(&mut rng, round.clone(), &keys[0], None).expect("start");
    let first = first.log().expect("log");
    assert_eq!(
        ledger.record(first.clone()).expect("checks"),
        Recorded::Kept
    );
    assert_eq!(ledger.record(first).expect("checks"), Recorded::Duplicate);
    assert_eq!(
        ledger.record(second.log().expect("log")).expect("checks"),
        Recorded::Equivocation(keys[0].public_key())
    );
    assert!(ledger.equivocators().contains(&keys[0].public_key()));
    assert_eq!(ledger.dealers().count(), 0);
    // Two honest logs are fewer than the quorum of dealers: no key, and a reason.
    record_undelivered(&mut ledger, &round, &keys[1..3]);
    assert!(matches!(
        ledger.outcome(&mut rng),
        Err(DkgError::NoResult(_))
    ));
    // A log of another round is refused.
    let other = Round::new(&cluster(), 1, None, publics(&keys), publics(&keys)).expect("round");
    let (mut stranger, _) = Participant::start(&mut rng, other, &keys[3], None).expect("start");
    assert!(matches!(
        ledger.record(stranger.log().expect("log")),
        Err(DkgError::Log(_))
    ));
}

#[test]
fn resharing_keeps_the_key_and_old_shares_are_useless_to_the_new_sharing() {
    let old_keys = keys(4);
    let round =
        Round::new(&cluster(), 0, None, publics(&old_keys), publics(&old_keys)).expect("round");
    let (_, results, _) = run(&round, &old_keys, &[0, 1, 2, 3], &[], &honest);
    let (first, old_shares) = all_agree(&results);

    // Reshare from the 4 to 5 nodes (the 4 and a newcomer).
    let new_keys = keys(5);
    let dealers: Vec<usize> = (0..new_keys.len())
        .filter(|i| {
            old_keys
                .iter()
                .any(|k| k.public_key() == new_keys[*i].public_key())
        })
        .collect();
    assert_eq!(dealers.len(), 4);
    let shares: Vec<Option<Share>> = new_keys
        .iter()
        .map(|k| {
            old_keys
                .iter()
                .position(|o| o.public_key() == k.public_key())
                .map(|i| old_shares[i].clone())
        })
        .collect();
    let dealer_keys: Vec<PublicKey> = dealers.iter().map(|i| new_keys[*i].public_key()).collect();
    let reshare = Round::new(
        &cluster(),
        1,
        Some(first.clone()),
        dealer_keys,
        publics(&new_keys),
    )
    .expect("reshare round");
    let (_, results, refused) = run(&reshare, &new_keys, &dealers, &shares, &honest);
    assert!(refused.is_empty());
    let (second, new_shares) = all_agree(&results);
    assert_eq!(
        second.public().public(),
        first.public().public(),
        "the cluster key is the same after resharing"
    );
    let message = b"after the reshare";
    let quorum = second.quorum::<crate::Faults>() as usize;
    let signers: Vec<&Share> = new_shares.iter().skip(1).take(quorum).collect();
    let signature = sign(&second, &signers, message).expect("recovers");
    assert!(
        verifies(&first, &signature, message),
        "verifies under the old key"
    );
    // Every old share's partial fails against the new sharing, so old shares cannot stand in
    // for new ones.
    for share in &old_shares {
        let partial = threshold::sign_message::<Variant>(share, NAMESPACE, message);
        assert!(
            threshold::verify_message::<Variant>(second.public(), NAMESPACE, message, &partial)
                .is_err(),
            "an old share signs for the new sharing"
        );
    }
}

#[test]
fn messages_round_trip_and_every_truncation_is_refused() {
    let keys = keys(4);
    let round = Round::new(&cluster(), 3, None, publics(&keys), publics(&keys)).expect("round");
    let (mut dealer, out) =
        Participant::start(&mut test_rng(), round.clone(), &keys[0], None).expect("start");
    let (mut player, _) =
        Participant::start(&mut test_rng(), round.clone(), &keys[1], None).expect("start");
    let dealing = out
        .iter()
        .find(|o| o.to == keys[1].public_key())
        .expect("a dealing for player 1")
        .message
        .clone();
    let ack = player
        .handle(&keys[0].public_key(), dealing.clone())
        .expect("checks")
        .expect("acknowledged")
        .message;
    let dealing_again = dealing.clone();
    for message in [dealing, ack.clone()] {
        let bytes = message.to_bytes();
        assert_eq!(
            DkgMessage::from_bytes(&bytes, round.max_participants()).expect("decodes"),
            message
        );
        for cut in 0..bytes.len() {
            assert!(DkgMessage::from_bytes(&bytes[..cut], round.max_participants()).is_err());
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(DkgMessage::from_bytes(&longer, round.max_participants()).is_err());
        let mut other_version = bytes.clone();
        other_version[0] = 2;
        assert!(DkgMessage::from_bytes(&other_version, round.max_participants()).is_err());
    }
    // The acknowledgement counts at the dealer; a message of another round is not taken,
    // and says so without blaming anyone.
    assert!(
        dealer
            .handle(&keys[1].public_key(), ack)
            .expect("verifies")
            .is_none()
    );
    let DkgMessage::Dealing {
        commitment, share, ..
    } = dealing_again
    else {
        unreachable!("a dealing")
    };
    let stale = DkgMessage::Dealing {
        round: 2,
        commitment,
        share,
    };
    assert!(matches!(
        player.handle(&keys[0].public_key(), stale),
        Err(DkgError::OtherRound {
            expected: 3,
            got: 2
        })
    ));
}

#[test]
fn a_round_in_memory_gives_every_player_a_working_share() {
    let keys = keys(7);
    let round = Round::new(&cluster(), 0, None, publics(&keys), publics(&keys)).expect("round");
    let (output, shares) =
        crate::run_in_memory(&mut test_rng(), &round, &keys, &[]).expect("completes");
    assert_eq!(shares.len(), 7);
    assert_eq!(output.quorum::<crate::Faults>(), 5);
    let last: Vec<&Share> = shares.iter().skip(2).collect();
    assert_quorum_signs(&output, &last);
}

#[test]
fn the_outcome_does_not_depend_on_the_order_logs_are_recorded_in() {
    let keys = keys(4);
    let publics = publics(&keys);
    let round = Round::new(&cluster(), 0, None, publics.clone(), publics.clone()).expect("round");
    let mut rng = test_rng();
    let mut nodes = Vec::new();
    let mut queue = VecDeque::new();
    for (i, key) in keys.iter().enumerate() {
        let (node, out) = Participant::start(&mut rng, round.clone(), key, None).expect("start");
        queue.extend(out.into_iter().map(|o| (i, o)));
        nodes.push(node);
    }
    while let Some((from, outgoing)) = queue.pop_front() {
        let to = publics
            .iter()
            .position(|k| *k == outgoing.to)
            .expect("known");
        if let Some(reply) = nodes[to]
            .handle(&publics[from], outgoing.message)
            .expect("honest")
        {
            queue.push_back((to, reply));
        }
    }
    let logs: Vec<_> = nodes.iter_mut().map(|n| n.log().expect("log")).collect();
    let outcome = |order: &[usize]| {
        let mut ledger = Ledger::new(round.clone());
        for &i in order {
            ledger.record(logs[i].clone()).expect("checks");
        }
        ledger.outcome(&mut test_rng())
    };
    let forward = outcome(&[0, 1, 2, 3]).expect("observed");
    assert_eq!(forward, outcome(&[3, 1, 0, 2]).expect("observed"));
    assert_eq!(forward, outcome(&[2, 3, 1, 0]).expect("observed"));
    assert!(
        forward.revealed().is_empty(),
        "every share was acknowledged"
    );
}

#[test]
fn a_dealer_nobody_acknowledged_counts_for_nothing() {
    // Dealings that never arrived: each log would reveal more than f shares, so it carries no
    // shares at all and cannot be used, and three such logs give no key.
    let keys = keys(4);
    let round = Round::new(&cluster(), 0, None, publics(&keys), publics(&keys)).expect("round");
    let mut rng = test_rng();
    let mut ledger = Ledger::new(round.clone());
    record_undelivered(&mut ledger, &round, &keys);
    assert!(matches!(
        ledger.outcome(&mut rng),
        Err(DkgError::NoResult(reason)) if reason.contains("InsufficientLogs")
    ));
}

/// A player answers a repeated dealing with the acknowledgement it gave (the first may have
/// been lost), and a dealer knows which players it still has to send its dealing to.
#[test]
fn repeated_dealings_are_acknowledged_again_and_dealers_track_the_missing() {
    let mut rng = test_rng();
    let keys = keys(4);
    let round = Round::new(&cluster(), 0, None, publics(&keys), publics(&keys)).expect("round");
    let (mut dealer, out) =
        Participant::start(&mut rng, round.clone(), &keys[0], None).expect("start");
    let (mut player, _) =
        Participant::start(&mut rng, round.clone(), &keys[1], None).expect("start");
    assert!(dealer.awaiting_acks());
    assert_eq!(dealer.unacknowledged().count(), 3, "every other player");
    let to_player = out
        .iter()
        .find(|o| o.to == keys[1].public_key())
        .expect("a dealing for player 1");
    let me = keys[0].public_key();
    let first = player
        .handle(&me, to_player.message.clone())
        .expect("checks")
        .expect("acknowledged");
    let again = player
        .handle(&me, to_player.message.clone())
        .expect("checks")
        .expect("acknowledged again");
    assert_eq!(first, again, "the same acknowledgement");
    dealer
        .handle(&keys[1].public_key(), first.message)
        .expect("the ack verifies");
    let missing: Vec<_> = dealer.unacknowledged().map(|o| o.to).collect();
    assert_eq!(missing.len(), 2);
    assert!(!missing.contains(&keys[1].public_key()));
    dealer.log().expect("a log");
    assert!(
        !dealer.awaiting_acks(),
        "a dealer that gave its log deals no more"
    );
}

/// A key proof is a quorum of one round's logs from distinct members; fewer, a repeated
/// dealer, a log of another round or of another cluster are refused, and the proof's key is
/// the one the players hold.
#[test]
fn key_proofs_check_the_logs_and_their_number() {
    use commonware_codec::Encode as _;
    let keys = keys(4);
    let members = publics(&keys);
    let round = Round::new(&cluster(), 2, None, members.clone(), members.clone()).expect("round");
    let (ledger, results, _) = run(&round, &keys, &[0, 1, 2, 3], &[], &honest);
    let (output, shares) = all_agree(&results);
    let selected: Vec<Vec<u8>> = ledger
        .signed_logs()
        .filter(|(dealer, _)| output.dealers().position(dealer).is_some())
        .map(|(_, bytes)| bytes.to_vec())
        .collect();
    assert_eq!(selected.len(), 3, "a round selects a quorum");
    let proven = crate::check_first_key(&cluster(), 2, &members, &[], &selected).expect("checks");
    assert_eq!(proven.public(), output.public());
    assert_quorum_signs(&proven, &[&shares[0], &shares[2], &shares[3]]);
    // Order does not matter.
    let mut reversed = selected.clone();
    reversed.reverse();
    assert_eq!(
        crate::check_first_key(&cluster(), 2, &members, &[], &reversed)
            .expect("checks")
            .public(),
        output.public()
    );
    let all: Vec<Vec<u8>> = ledger.signed_logs().map(|(_, b)| b.to_vec()).collect();
    let error = crate::check_first_key(&cluster(), 2, &members, &[], &all).expect_err("4 logs");
    assert!(error.to_string().contains("a round selects 3"), "{error}");
    let error =
        crate::check_first_key(&cluster(), 2, &members, &[], &selected[..2]).expect_err("2");
    assert!(matches!(error, DkgError::NoResult(_)), "{error}");
    let twice = vec![
        selected[0].clone(),
        selected[0].clone(),
        selected[1].clone(),
    ];
    let error = crate::check_first_key(&cluster(), 2, &members, &[], &twice).expect_err("repeat");
    assert!(error.to_string().contains("one per dealer"), "{error}");
    for (cluster, number) in [(cluster(), 3), (Digest::from([8; 32]), 2)] {
        let error =
            crate::check_first_key(&cluster, number, &members, &[], &selected).expect_err("other");
        assert!(matches!(error, DkgError::Log(_)), "{error}");
    }
    for excluded in [vec![0, 1], vec![4], vec![1, 1]] {
        let error = crate::check_first_key(&cluster(), 2, &members, &excluded, &selected)
            .expect_err("too many, out of range, or repeated");
        assert!(error.to_string().contains("at most 1"), "{error}");
    }
    // Logs of a round with all four dealers do not check as a round without one.
    assert!(crate::check_first_key(&cluster(), 2, &members, &[3], &selected).is_err());
    let mut garbage = selected.clone();
    garbage[0] = output.encode().to_vec();
    assert!(crate::check_first_key(&cluster(), 2, &members, &[], &garbage).is_err());
}

/// A player that restarts after acknowledging takes its part up again from the dealings it
/// kept, answers a repeated dealing with the same acknowledgement, and gets the share it
/// would have had.
#[test]
fn a_resumed_player_gets_the_same_share() {
    let keys = keys(4);
    let round = Round::new(&cluster(), 0, None, publics(&keys), publics(&keys)).expect("round");
    let mut rng = test_rng();
    let mut nodes = Vec::new();
    let mut queue = VecDeque::new();
    for (i, key) in keys.iter().enumerate() {
        let (node, out) = Participant::start(&mut rng, round.clone(), key, None).expect("start");
        queue.extend(out.into_iter().map(|o| (i, o)));
        nodes.push(node);
    }
    while let Some((from, o)) = queue.pop_front() {
        let to = keys
            .iter()
            .position(|k| k.public_key() == o.to)
            .expect("member");
        if let Some(reply) = nodes[to]
            .handle(&keys[from].public_key(), o.message)
            .expect("ok")
        {
            queue.push_back((to, reply));
        }
    }
    let kept: Vec<_> = nodes[2]
        .received()
        .iter()
        .map(|(d, m)| (d.clone(), m.clone()))
        .collect();
    assert_eq!(kept.len(), 4, "every dealing, its own included");
    let mut ledger2 = Ledger::new(round.clone());
    for node in &mut nodes {
        ledger2.record(node.log().expect("log")).expect("records");
    }
    let resumed = Participant::resume(round.clone(), &keys[2], kept.clone()).expect("resumes");
    let mut again = Participant::resume(round, &keys[2], kept.clone()).expect("resumes");
    let repeat = again
        .handle(&kept[0].0, kept[0].1.clone())
        .expect("checks")
        .expect("acknowledged");
    let before_restart = nodes[2]
        .handle(&kept[0].0, kept[0].1.clone())
        .expect("checks")
        .expect("acknowledged");
    assert_eq!(
        repeat.message, before_restart.message,
        "the same acknowledgement as before the restart"
    );
    let (_, share) = resumed.finish(&mut rng, &ledger2).expect("a share");
    let before = nodes
        .remove(2)
        .finish(&mut rng, &ledger2)
        .expect("a share")
        .1;
    assert_eq!(share, before);
}

/// After a reshare, an attacker who stole f old shares and fewer than t new ones learns
/// nothing it can sign with: mixing the two sharings gives no valid signature, whatever the
/// mix, and f + f shares are too few for either sharing.
#[test]
fn old_shares_with_fewer_than_t_new_ones_sign_nothing() {
    let keys = keys(7);
    let members = publics(&keys);
    let round = Round::new(&cluster(), 0, None, members.clone(), members.clone()).expect("round");
    let (_, results, _) = run(&round, &keys, &[0, 1, 2, 3, 4, 5, 6], &[], &honest);
    let (first, old) = all_agree(&results);
    let previous: Vec<Option<Share>> = old.iter().cloned().map(Some).collect();
    let reshare =
        Round::new(&cluster(), 1, Some(first.clone()), members.clone(), members).expect("round");
    let (_, results, _) = run(&reshare, &keys, &[0, 1, 2, 3, 4, 5, 6], &previous, &honest);
    let (second, new) = all_agree(&results);
    assert_eq!(second.public().public(), first.public().public());
    let t = second.quorum::<crate::Faults>() as usize;
    let f = keys.len() - t;
    assert_eq!((t, f), (5, 2));
    let message = b"forged";
    let partial = |share: &Share| threshold::sign_message::<Variant>(share, NAMESPACE, message);
    // Every mix of at most f old shares with the new shares of other members, t in all.
    for olds in 1..=f {
        let news = t - olds;
        let mut partials: Vec<_> = new[..news].iter().map(partial).collect();
        partials.extend(old[news..news + olds].iter().map(partial));
        for sharing in [first.public(), second.public()] {
            if let Ok(signature) =
                threshold::recover::<Variant, _>(sharing, partials.iter(), &Sequential)
            {
                assert!(
                    !verifies(&first, &signature, message),
                    "{olds} old and {news} new shares made a valid signature"
                );
            }
        }
    }
    // f old and f new shares: fewer than t of either sharing.
    let stolen: Vec<_> = old[..f].iter().chain(&new[f..2 * f]).map(partial).collect();
    for sharing in [first.public(), second.public()] {
        assert!(
            threshold::recover::<Variant, _>(sharing, stolen.iter(), &Sequential)
                .map_or(true, |s| !verifies(&first, &s, message)),
            "2f stolen shares signed"
        );
    }
    // The control: t new shares sign.
    let honest_signature =
        sign(&second, &new[..t].iter().collect::<Vec<_>>(), message).expect("t new shares recover");
    assert!(verifies(&first, &honest_signature, message));
}
