//! Escrow limits, expiry, and the cost of releasing long chains.

use super::*;
use crate::{ApplyError, BlockEffects, Env, Fetched, apply, check_signatures};
use commonware_cryptography::Signer as _;
use std::{collections::BTreeMap, time::Instant};
use welkin_keri::{InceptionBuilder, KeyState, Signer, Threshold, interact, sign, signed};
use welkin_types::{
    Block, ChainParams, Digest, LogEntry, Outcome, PrivateKey, Sender, Transaction, hash_parts,
};

fn env() -> Env {
    Env {
        cluster_id: hash_parts(&[b"cluster"]),
        params: ChainParams::default(),
        members: Vec::new(),
        retired: Vec::new(),
        threshold: 0,
        domains: Vec::new(),
        cluster_key: None,
        membership: None,
    }
}

/// A state, a submitter, and block production through read rounds, as the node does it.
struct Chain {
    state: BTreeMap<Digest, Vec<u8>>,
    submitter: PrivateKey,
    nonce: u64,
    height: u64,
    time_ms: u64,
}

impl Chain {
    fn new() -> Chain {
        Chain {
            state: BTreeMap::new(),
            submitter: PrivateKey::from_seed(5),
            nonce: 0,
            height: 0,
            time_ms: 1_000_000,
        }
    }

    fn tx(&mut self, message: &[u8]) -> SignedTransaction {
        self.nonce += 1;
        Transaction {
            sender: Sender::Key(self.submitter.public_key()),
            nonce: self.nonce,
            expiry_ms: self.time_ms + 60_000,
            payload: Payload::KeyEvent(message.to_vec()),
        }
        .sign(&self.submitter, &env().cluster_id)
    }

    /// Applies one block of these messages the way the node does (fetching what apply asks
    /// for, round after round) and commits it; returns the effects and the rounds taken.
    fn commit(&mut self, messages: &[Vec<u8>]) -> (BlockEffects, usize) {
        self.height += 1;
        let txs: Vec<_> = messages.iter().map(|m| self.tx(m)).collect();
        let block = Block::new(hash_parts(&[b"p"]), self.height, self.time_ms, txs);
        let verdicts = check_signatures(&env().cluster_id, &block);
        let mut fetched = Fetched::default();
        let mut wanted = crate::reads(&block);
        let mut rounds = 0;
        let effects = loop {
            rounds += 1;
            for key in wanted {
                fetched.0.insert(key, self.state.get(&key).cloned());
            }
            match apply(&env(), &fetched, &block, &verdicts) {
                Ok(effects) => break effects,
                Err(ApplyError::NeedReads(keys)) => wanted = keys,
                Err(corrupt) => panic!("{corrupt}"),
            }
        };
        for (key, value) in &effects.writes {
            match value {
                Some(value) => self.state.insert(*key, value.clone()),
                None => self.state.remove(key),
            };
        }
        (effects, rounds)
    }

    fn u64(&self, key: &Digest) -> u64 {
        self.state
            .get(key)
            .map_or(0, |v| crate::stored::decode_u64(v).expect("u64"))
    }
}

/// The messages of an identifier's inception and `len - 1` interactions after it.
fn event_chain(seed: u8, len: usize) -> (String, Vec<Vec<u8>>) {
    let signer = Signer::new(&[seed; 32]);
    let next = Signer::new(&[seed.wrapping_add(1); 32]);
    let icp = InceptionBuilder::new(vec![signer.verkey()])
        .next(vec![next.verkey().next_digest()], Threshold::Simple(1))
        .build();
    let message = signed(icp.clone(), sign(&icp, std::slice::from_ref(&signer)));
    let mut state: KeyState = KeyState::incept(&message.event, &message.attachments.signatures)
        .expect("valid inception")
        .state;
    let prefix = state.prefix.qb64();
    let mut messages = vec![message.to_bytes().expect("encodes")];
    for _ in 1..len {
        let ixn = interact(&state, vec![]);
        let message = signed(ixn.clone(), sign(&ixn, std::slice::from_ref(&signer)));
        state = state
            .apply(&message.event, &message.attachments.signatures)
            .expect("valid interaction")
            .state;
        messages.push(message.to_bytes().expect("encodes"));
    }
    (prefix, messages)
}

/// What submitting events 2.. of a chain of `len` first (latest first, in blocks of 500),
/// then event 1, did.
struct Release {
    escrowed: usize,
    refused: usize,
    released: usize,
    final_sn: u64,
    release_rounds: usize,
    escrow_ms: u128,
    release_ms: u128,
}

fn escrow_then_release(len: usize) -> Release {
    let (prefix, messages) = event_chain(40, len);
    let mut chain = Chain::new();
    chain.commit(&messages[..1]);
    let started = Instant::now();
    let mut outcomes = Vec::new();
    let late: Vec<Vec<u8>> = messages[2..].iter().rev().cloned().collect();
    for block in late.chunks(500) {
        let (effects, rounds) = chain.commit(block);
        assert!(rounds <= 4, "escrowing took {rounds} read rounds");
        outcomes.extend(effects.receipts.iter().map(|(_, r)| r.outcome));
    }
    let escrow_ms = started.elapsed().as_millis();
    let started = Instant::now();
    let (effects, release_rounds) = chain.commit(&messages[1..2]);
    let release_ms = started.elapsed().as_millis();
    assert_eq!(effects.receipts[0].1.outcome, Outcome::Applied);
    let state = crate::identity::stored_key_state(
        chain
            .state
            .get(&crate::keys::id_state(&prefix))
            .map(Vec::as_slice),
    )
    .expect("decodes")
    .expect("incepted");
    Release {
        escrowed: outcomes.iter().filter(|o| **o == Outcome::Escrowed).count(),
        refused: outcomes.iter().filter(|o| **o == Outcome::Rejected).count(),
        released: effects.receipts.len() - 1,
        final_sn: state.sn,
        release_rounds,
        escrow_ms,
        release_ms,
    }
}

#[test]
fn a_chain_of_escrowed_events_is_released_in_a_few_read_rounds() {
    let release = escrow_then_release(300);
    assert_eq!((release.escrowed, release.refused), (298, 0));
    assert_eq!(release.released, 298);
    assert_eq!(release.final_sn, 299);
    // Each round applies the whole block again: a bounded number of rounds, whatever the
    // chain's length, keeps the release linear (one round per event was quadratic).
    assert!(
        release.release_rounds <= 4,
        "{} read rounds",
        release.release_rounds
    );
}

#[test]
fn escrow_per_identifier_is_capped_and_the_rest_refused() {
    let len = ESCROW_PER_IDENTIFIER as usize + 12;
    let release = escrow_then_release(len);
    assert_eq!(release.escrowed, ESCROW_PER_IDENTIFIER as usize);
    assert_eq!(release.refused, len - 2 - ESCROW_PER_IDENTIFIER as usize);
    // Submitted latest first, so the events right after 1 are among those refused.
    assert_eq!(release.released, 0);
    assert_eq!(release.final_sn, 1);
    assert!(release.release_rounds <= 4);
}

/// Prints how long escrowing and releasing chains of 1,000, 2,000 and 5,000 events take
/// (`cargo test -p welkin-state --release -- --ignored --nocapture measure`).
#[test]
#[ignore = "a measurement: run it by name"]
fn measure_escrowed_chains() {
    for len in [1_000, 2_000, 5_000] {
        let (_, messages) = event_chain(41, len);
        // In order, latest first after event 1 is missing: the worst case for rounds.
        let mut chain = Chain::new();
        chain.commit(&messages[..1]);
        let started = Instant::now();
        let mut escrowed = 0;
        for block in messages[2..].chunks(500) {
            let (effects, _) = chain.commit(block);
            escrowed += effects
                .receipts
                .iter()
                .filter(|(_, r)| r.outcome == Outcome::Escrowed)
                .count();
        }
        let escrow_ms = started.elapsed().as_millis();
        let started = Instant::now();
        let (effects, rounds) = chain.commit(&messages[1..2]);
        println!(
            "chain of {len}: {escrowed} escrowed in {escrow_ms} ms; event 1 released {} in \
             {} ms over {rounds} read rounds",
            effects.receipts.len() - 1,
            started.elapsed().as_millis()
        );
        let reversed = escrow_then_release(len);
        println!(
            "chain of {len}, latest first: {} escrowed, {} refused in {} ms; {} released in \
             {} ms over {} read rounds",
            reversed.escrowed,
            reversed.refused,
            reversed.escrow_ms,
            reversed.released,
            reversed.release_ms,
            reversed.release_rounds
        );
    }
}

#[test]
fn released_events_are_logged_as_applied_and_their_receipts_move() {
    let (prefix, messages) = event_chain(50, 3);
    let mut chain = Chain::new();
    chain.commit(&messages[..1]);
    let (escrowing, _) = chain.commit(&messages[2..3]);
    let (escrowed_id, escrowed_receipt) = escrowing.receipts[0];
    assert_eq!(escrowed_receipt.outcome, Outcome::Escrowed);
    let entry = LogEntry::from_bytes(&escrowing.log_entries[0]).expect("entry");
    assert_eq!(entry.outcome, Outcome::Escrowed);
    assert!(entry.detail.contains("waiting for 1"), "{}", entry.detail);
    let (releasing, _) = chain.commit(&messages[1..2]);
    assert_eq!(releasing.receipts.len(), 2);
    let (id, receipt) = releasing.receipts[1];
    assert_eq!(id, escrowed_id);
    assert_eq!(receipt.outcome, Outcome::Applied);
    assert_eq!(receipt.log_index, releasing.log_size_before + 1);
    let released = LogEntry::from_bytes(&releasing.log_entries[1]).expect("entry");
    assert_eq!(released.outcome, Outcome::Applied);
    assert_eq!(released.tx.id(), escrowed_id);
    assert!(
        released
            .detail
            .starts_with("released from escrow by transaction")
    );
    let stored = chain.state.get(&crate::keys::receipt(&escrowed_id));
    assert_eq!(
        stored.map(|r| welkin_types::decode::<welkin_types::Receipt>(r).expect("receipt")),
        Some(receipt),
        "the stored receipt now points at the applied entry"
    );
    assert!(
        !chain
            .state
            .contains_key(&crate::keys::outcome_detail(&escrowed_id))
    );
    assert_eq!(chain.u64(&crate::keys::id_escrow_count(&prefix)), 0);
    assert_eq!(chain.u64(&crate::keys::id_escrow_total()), 0);
}

#[test]
fn escrowed_events_expire_and_free_their_place() {
    let (prefix, messages) = event_chain(60, 4);
    let mut chain = Chain::new();
    chain.commit(&messages[..1]);
    chain.commit(&messages[2..4]);
    assert_eq!(chain.u64(&crate::keys::id_escrow_count(&prefix)), 2);
    assert_eq!(chain.u64(&crate::keys::id_escrow_total()), 2);
    // One hour of block time later (and a little), the sweep drops both.
    chain.time_ms += ESCROW_TTL_MS + 1;
    chain.commit(&[]);
    assert_eq!(chain.u64(&crate::keys::id_escrow_count(&prefix)), 0);
    assert_eq!(chain.u64(&crate::keys::id_escrow_total()), 0);
    for sn in 2..4 {
        assert!(
            !chain
                .state
                .contains_key(&crate::keys::id_escrow(&prefix, sn))
        );
    }
    let (effects, _) = chain.commit(&messages[1..2]);
    assert_eq!(effects.receipts.len(), 1, "nothing left to release");
    let queue = crate::expiry::Queue::Escrow.name();
    assert_eq!(
        chain.u64(&crate::keys::queue_head(queue)),
        chain.u64(&crate::keys::queue_tail(queue)),
        "the queue is empty"
    );
}

#[test]
fn slots_round_trip_and_refuse_other_bytes() {
    let (_, messages) = event_chain(70, 2);
    let mut chain = Chain::new();
    let entries = vec![Escrowed {
        expires_ms: 5,
        tx: chain.tx(&messages[1]),
    }];
    let bytes = encode_slot(&entries);
    assert_eq!(decode_slot(&bytes), Ok(entries.clone()));
    for cut in 0..bytes.len() {
        assert!(decode_slot(&bytes[..cut]).is_err(), "cut at {cut}");
    }
    let mut version = bytes.clone();
    version[0] = 0;
    assert!(decode_slot(&version).is_err());
    assert_eq!(
        escrowed_messages(Some(&bytes)),
        Ok(vec![messages[1].clone()])
    );
    assert_eq!(
        hex::encode(hash_parts(&[&bytes])),
        "24bdf2d5eead5b0cb57d9240c147f1794cc78689d85b43c5e7c75b01f66d3594",
        "escrow slot encoding changed: bump its version, then update the fixture"
    );
}

#[test]
fn escrow_is_capped_in_total_and_expiry_frees_it() {
    let per_identifier = ESCROW_PER_IDENTIFIER as usize;
    let identifiers = (ESCROW_TOTAL / ESCROW_PER_IDENTIFIER) as usize;
    let mut chain = Chain::new();
    for i in 0..identifiers {
        let (_, messages) = event_chain(100 + i as u8, per_identifier + 2);
        for block in messages[2..].chunks(512) {
            let (effects, _) = chain.commit(block);
            assert!(
                effects
                    .receipts
                    .iter()
                    .all(|(_, r)| r.outcome == Outcome::Escrowed)
            );
        }
    }
    assert_eq!(chain.u64(&crate::keys::id_escrow_total()), ESCROW_TOTAL);
    let (_, late) = event_chain(200, 3);
    let (effects, _) = chain.commit(&late[2..3]);
    assert_eq!(effects.receipts[0].1.outcome, Outcome::Rejected);
    let entry = LogEntry::from_bytes(&effects.log_entries[0]).expect("entry");
    assert!(
        entry.detail.contains("the escrow is full"),
        "{}",
        entry.detail
    );
    // An hour later everything has expired; the sweep catches up within a few blocks.
    chain.time_ms += ESCROW_TTL_MS + 1;
    let mut blocks = 0;
    while chain.u64(&crate::keys::id_escrow_total()) > 0 {
        chain.commit(&[]);
        blocks += 1;
        assert!(blocks <= 4, "the sweep falls behind");
    }
    let (effects, _) = chain.commit(&late[2..3]);
    assert_eq!(effects.receipts[0].1.outcome, Outcome::Escrowed);
}
