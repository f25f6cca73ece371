//! The system module: chain parameters, membership, nonces, and the simple payloads.
//!
//! Rules for a correctly signed transaction, in order:
//! 1. block time after `expiry_ms`: `Expired`;
//! 2. `expiry_ms` more than `max_tx_ttl_ms` after block time: `TtlTooLong` (this bound is what
//!    lets nonces be forgotten later: a replay after expiry is refused as expired);
//! 3. for an identifier sender, the keys that signed are not current signing keys of the
//!    identifier meeting its signing threshold (see [`authority`]): `Rejected`, and the
//!    nonce stays unused;
//! 4. `(sender, nonce)` already used: `Replay`;
//! 5. otherwise the payload runs and the nonce is marked used: `Applied` (a key event's own
//!    verdict may differ: see [`identity`]). The mark is forgotten once block time has passed
//!    the time of its block plus `max_tx_ttl_ms` (see [`crate::expiry`]): by then every
//!    transaction that could carry the nonce has expired, so rule 1 refuses a replay, and the
//!    transaction's receipt, kept for good, already makes an identical copy a duplicate.

use crate::{
    Env, Overlay, Snapshot, authority,
    identity::{self, KeyEventOutcome},
    keys,
};
use std::collections::BTreeMap;
use welkin_types::{Block, Digest, Genesis, Outcome, Payload, Sender, SignedTransaction};

/// What running one transaction did.
pub(crate) struct Executed {
    /// The receipt's outcome.
    pub(crate) outcome: Outcome,
    /// Why it was not applied, or what an escrowed event waits for.
    pub(crate) detail: Option<String>,
    /// Escrowed key event transactions that the accepted event released, in order.
    pub(crate) released: Vec<SignedTransaction>,
    /// What a secrets request did, for the node serving it.
    pub(crate) secrets: Option<crate::secrets::SecretsResult>,
}

impl From<Outcome> for Executed {
    fn from(outcome: Outcome) -> Executed {
        Executed {
            outcome,
            detail: None,
            released: Vec::new(),
            secrets: None,
        }
    }
}

/// Runs one correctly signed transaction.
pub(crate) fn execute<S: Snapshot>(
    env: &Env,
    state: &mut Overlay<'_, S>,
    block: &Block,
    signed: &SignedTransaction,
) -> Executed {
    let tx = &signed.tx;
    if block.timestamp_ms > tx.expiry_ms {
        return Outcome::Expired.into();
    }
    if tx.expiry_ms - block.timestamp_ms > env.params.max_tx_ttl_ms {
        return Outcome::TtlTooLong.into();
    }
    if let Sender::Identifier { prefix, signers } = &tx.sender {
        let key_state = identity::key_state_of(state, prefix);
        if let Err(refusal) = authority::check(key_state.as_ref(), prefix, signers) {
            // Not authorised by the identifier: no nonce is used, so a key rotated out (and
            // perhaps compromised) cannot burn the identifier's nonces.
            return Executed {
                outcome: Outcome::Rejected,
                detail: Some(refusal.to_string()),
                released: Vec::new(),
                secrets: None,
            };
        }
    }
    let nonce_key = keys::nonce(&tx.sender, tx.nonce);
    if state.get(&nonce_key).is_some() {
        return Outcome::Replay.into();
    }
    state.put(nonce_key, tx.expiry_ms.to_be_bytes().to_vec());
    // Forgotten once no transaction with this nonce can still be in time (see `expiry`).
    state.schedule.nonces.push(nonce_key.as_ref().to_vec());
    match &tx.payload {
        Payload::Memo(_) => {}
        Payload::Put { key, value } => state.put(keys::kv(&tx.sender, key), value.clone()),
        // A record lives in the audit log (as the transaction itself); nothing else to store.
        Payload::Record { .. } => {}
        Payload::KeyEvent(message) => {
            let (outcome, detail, released) =
                match identity::process(state, message, signed, block.timestamp_ms) {
                    KeyEventOutcome::Accepted { released } => (Outcome::Applied, None, released),
                    KeyEventOutcome::Escrowed(reason) => (Outcome::Escrowed, Some(reason), vec![]),
                    KeyEventOutcome::Duplicity(reason) => {
                        (Outcome::Duplicity, Some(reason), vec![])
                    }
                    KeyEventOutcome::Rejected(reason) => (Outcome::Rejected, Some(reason), vec![]),
                };
            return Executed {
                outcome,
                detail,
                released,
                secrets: None,
            };
        }
        Payload::Storage(op) => {
            if let Err(reason) = crate::storage::execute(env, state, block, signed, op) {
                return Executed {
                    outcome: Outcome::Rejected,
                    detail: Some(reason),
                    released: Vec::new(),
                    secrets: None,
                };
            }
        }
        Payload::Membership(op) => {
            let executed = crate::membership::execute(env, state, block, signed, op);
            let (outcome, detail) = match executed {
                Ok(note) => (Outcome::Applied, note),
                Err(reason) => (Outcome::Rejected, Some(reason)),
            };
            return Executed {
                outcome,
                detail,
                released: Vec::new(),
                secrets: None,
            };
        }
        Payload::Secrets(op) => {
            let result = crate::secrets::execute(env, state, block, signed, op);
            let (outcome, detail) = match &result {
                crate::secrets::SecretsResult::Refused { status, message } => (
                    Outcome::Rejected,
                    Some(if message.is_empty() {
                        format!("{status}")
                    } else {
                        format!("{status}: {message}")
                    }),
                ),
                _ => (Outcome::Applied, None),
            };
            return Executed {
                outcome,
                detail,
                released: Vec::new(),
                secrets: Some(result),
            };
        }
    }
    Outcome::Applied.into()
}

/// The writes that create the state at height 0 from a genesis file.
pub fn genesis_writes(genesis: &Genesis) -> BTreeMap<Digest, Option<Vec<u8>>> {
    let mut writes = BTreeMap::new();
    let mut params = Vec::new();
    params.extend_from_slice(&genesis.chain.max_clock_skew_ms.to_be_bytes());
    params.extend_from_slice(&genesis.chain.max_tx_ttl_ms.to_be_bytes());
    params.extend_from_slice(genesis.chain.name.as_bytes());
    writes.insert(keys::params(), Some(params));
    writes.insert(
        keys::member_count(),
        Some((genesis.nodes.len() as u32).to_be_bytes().to_vec()),
    );
    for (index, node) in genesis.nodes.iter().enumerate() {
        let mut member = node.public_key.as_ref().to_vec();
        member.extend_from_slice(node.failure_domain.as_bytes());
        writes.insert(keys::member(index as u32), Some(member));
    }
    if let Some((key, value)) = crate::keygen::genesis_writes(genesis) {
        writes.insert(key, Some(value));
    }
    for (key, value) in
        crate::secrets::genesis_writes(genesis.genesis_time_ms, genesis.root_token.as_ref())
    {
        writes.insert(key, Some(value));
    }
    writes
}

#[cfg(test)]
mod tests {
    use crate::{ApplyError, Env, apply, apply_to_map, check_signatures, keys};
    use commonware_cryptography::Signer as _;
    use std::collections::BTreeMap;
    use welkin_types::{
        Block, ChainParams, LogEntry, Outcome, Payload, PrivateKey, Sender, SignedTransaction,
        Transaction, hash_parts,
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

    fn tx(key: &PrivateKey, nonce: u64, expiry_ms: u64, payload: Payload) -> SignedTransaction {
        Transaction {
            sender: Sender::Key(key.public_key()),
            nonce,
            expiry_ms,
            payload,
        }
        .sign(key, &env().cluster_id)
    }

    fn block(height: u64, ts: u64, txs: Vec<SignedTransaction>) -> Block {
        Block::new(hash_parts(&[b"parent"]), height, ts, txs)
    }

    #[test]
    fn put_applies_and_marks_nonce() {
        let key = PrivateKey::from_seed(1);
        let mut state = BTreeMap::new();
        let put = tx(
            &key,
            1,
            2_000,
            Payload::Put {
                key: b"a".to_vec(),
                value: b"1".to_vec(),
            },
        );
        let effects = apply_to_map(&env(), &mut state, &block(1, 1_000, vec![put]));
        assert_eq!(effects.receipts.len(), 1);
        assert_eq!(effects.receipts[0].1.outcome, Outcome::Applied);
        assert_eq!(
            state.get(&keys::kv(&Sender::Key(key.public_key()), b"a")),
            Some(&b"1".to_vec())
        );
        assert!(state.contains_key(&keys::nonce(&Sender::Key(key.public_key()), 1)));
    }

    #[test]
    fn replayed_nonce_is_rejected_with_a_receipt() {
        let key = PrivateKey::from_seed(1);
        let mut state = BTreeMap::new();
        let first = tx(&key, 7, 2_000, Payload::Memo(b"one".to_vec()));
        let second = tx(&key, 7, 2_000, Payload::Memo(b"two".to_vec()));
        apply_to_map(&env(), &mut state, &block(1, 1_000, vec![first]));
        let effects = apply_to_map(&env(), &mut state, &block(2, 1_001, vec![second]));
        assert_eq!(effects.receipts[0].1.outcome, Outcome::Replay);
    }

    #[test]
    fn same_transaction_twice_is_a_silent_duplicate() {
        let key = PrivateKey::from_seed(1);
        let mut state = BTreeMap::new();
        let memo = tx(&key, 1, 2_000, Payload::Memo(vec![]));
        let effects = apply_to_map(
            &env(),
            &mut state,
            &block(1, 1_000, vec![memo.clone(), memo.clone()]),
        );
        assert_eq!(effects.receipts.len(), 1);
        assert_eq!(effects.duplicates, 1);
        let effects = apply_to_map(&env(), &mut state, &block(2, 1_001, vec![memo]));
        assert!(effects.receipts.is_empty());
        assert!(
            effects.writes.is_empty(),
            "a duplicate must not overwrite the first receipt"
        );
    }

    #[test]
    fn expired_and_overlong_ttl_are_rejected() {
        let key = PrivateKey::from_seed(1);
        let mut state = BTreeMap::new();
        let expired = tx(&key, 1, 999, Payload::Memo(vec![]));
        let ttl = env().params.max_tx_ttl_ms;
        let too_long = tx(&key, 2, 1_000 + ttl + 1, Payload::Memo(vec![]));
        let at_limit = tx(&key, 3, 1_000 + ttl, Payload::Memo(vec![]));
        let effects = apply_to_map(
            &env(),
            &mut state,
            &block(1, 1_000, vec![expired, too_long, at_limit]),
        );
        let outcomes: Vec<_> = effects.receipts.iter().map(|(_, r)| r.outcome).collect();
        assert_eq!(
            outcomes,
            vec![Outcome::Expired, Outcome::TtlTooLong, Outcome::Applied]
        );
        assert!(!state.contains_key(&keys::nonce(&Sender::Key(key.public_key()), 1)));
    }

    #[test]
    fn bad_signature_leaves_no_trace() {
        let key = PrivateKey::from_seed(1);
        let good = tx(&key, 1, 2_000, Payload::Memo(vec![]));
        let forged = SignedTransaction::new(
            good.tx.clone(),
            tx(&key, 2, 2_000, Payload::Memo(vec![])).signatures,
        );
        let b = block(1, 1_000, vec![forged]);
        let verdicts = check_signatures(&env().cluster_id, &b);
        assert_eq!(verdicts, vec![false]);
        let effects = apply(&env(), &BTreeMap::new(), &b, &verdicts).expect("whole state");
        assert_eq!(effects.bad_signatures, 1);
        assert!(effects.writes.is_empty() && effects.receipts.is_empty());
    }

    #[test]
    fn receipted_transactions_get_consecutive_log_indices() {
        let key = PrivateKey::from_seed(1);
        let mut state = BTreeMap::new();
        let record = tx(
            &key,
            1,
            2_000,
            Payload::Record {
                media_type: "text/plain".into(),
                content: b"hi".to_vec(),
            },
        );
        let expired = tx(&key, 2, 10, Payload::Memo(vec![]));
        let first = apply_to_map(
            &env(),
            &mut state,
            &block(1, 1_000, vec![record.clone(), expired]),
        );
        assert_eq!(first.log_size_before, 0);
        assert_eq!(
            first.log_entries.len(),
            2,
            "rejected but receipted transactions are logged too"
        );
        assert_eq!(first.receipts[1].1.log_index, 1);
        let again = tx(&key, 3, 2_000, Payload::Memo(vec![]));
        let second = apply_to_map(&env(), &mut state, &block(2, 1_001, vec![record, again]));
        assert_eq!(second.log_size_before, 2);
        assert_eq!(
            second.log_entries.len(),
            1,
            "a duplicate is not logged twice"
        );
        assert_eq!(second.receipts[0].1.log_index, 2);
        let height_of = |size: u64| {
            state
                .get(&keys::log_height(size))
                .map(|v| crate::read_u64(Some(v)))
        };
        assert_eq!(height_of(2), Some(1), "size 2 was reached at height 1");
        assert_eq!(height_of(3), Some(2));
        assert_eq!(height_of(1), None, "no block ended at size 1");
    }

    #[test]
    fn apply_is_deterministic() {
        let keys: Vec<_> = (0..5).map(PrivateKey::from_seed).collect();
        let txs: Vec<_> = keys
            .iter()
            .enumerate()
            .map(|(i, k)| {
                tx(
                    k,
                    i as u64,
                    5_000,
                    Payload::Put {
                        key: vec![i as u8],
                        value: vec![1],
                    },
                )
            })
            .collect();
        let b = block(1, 1_000, txs);
        let a = apply_to_map(&env(), &mut BTreeMap::new(), &b);
        let c = apply_to_map(&env(), &mut BTreeMap::new(), &b);
        assert_eq!(a, c);
    }

    #[test]
    fn used_nonces_are_forgotten_once_their_ttl_has_passed() {
        let key = PrivateKey::from_seed(3);
        let sender = Sender::Key(key.public_key());
        let ttl = env().params.max_tx_ttl_ms;
        let mut state = BTreeMap::new();
        let first = tx(&key, 1, 1_000 + ttl, Payload::Memo(vec![]));
        apply_to_map(&env(), &mut state, &block(1, 1_000, vec![first.clone()]));
        assert!(state.contains_key(&keys::nonce(&sender, 1)));
        // Still within the window: kept, and a replay is refused as such.
        let replay = tx(&key, 1, 1_000 + ttl, Payload::Memo(b"again".to_vec()));
        let effects = apply_to_map(&env(), &mut state, &block(2, 1_000 + ttl, vec![replay]));
        assert_eq!(effects.receipts[0].1.outcome, Outcome::Replay);
        assert!(state.contains_key(&keys::nonce(&sender, 1)));
        // Past it: forgotten. The first transaction itself is a duplicate (its receipt
        // stays) and anything else carrying it expired long ago.
        let effects = apply_to_map(&env(), &mut state, &block(3, 1_001 + ttl, vec![first]));
        assert!(!state.contains_key(&keys::nonce(&sender, 1)));
        assert_eq!((effects.duplicates, effects.receipts.len()), (1, 0));
        let stale = tx(&key, 1, 1_000 + ttl, Payload::Memo(b"stale".to_vec()));
        let effects = apply_to_map(&env(), &mut state, &block(4, 1_001 + ttl, vec![stale]));
        assert_eq!(effects.receipts[0].1.outcome, Outcome::Expired);
        let queue = crate::expiry::Queue::Nonces.name();
        let read = |k| state.get(&k).map(|v| crate::read_u64(Some(v)));
        assert_eq!(read(keys::queue_head(queue)), Some(1), "one batch swept");
        assert_eq!(read(keys::queue_tail(queue)), Some(1));
    }

    #[test]
    fn log_entries_say_what_happened() {
        let key = PrivateKey::from_seed(4);
        let mut state = BTreeMap::new();
        let memo = tx(&key, 1, 2_000, Payload::Memo(vec![]));
        let replay = tx(&key, 1, 2_000, Payload::Memo(b"other".to_vec()));
        let expired = tx(&key, 2, 10, Payload::Memo(vec![]));
        let event = tx(&key, 3, 2_000, Payload::KeyEvent(b"not KERI".to_vec()));
        let effects = apply_to_map(
            &env(),
            &mut state,
            &block(1, 1_000, vec![memo.clone(), replay, expired, event]),
        );
        let entries: Vec<LogEntry> = effects
            .log_entries
            .iter()
            .map(|e| LogEntry::from_bytes(e).expect("a log entry"))
            .collect();
        let outcomes: Vec<Outcome> = entries.iter().map(|e| e.outcome).collect();
        assert_eq!(
            outcomes,
            [
                Outcome::Applied,
                Outcome::Replay,
                Outcome::Expired,
                Outcome::Rejected
            ]
        );
        assert_eq!(entries[0].tx, memo);
        assert_eq!((entries[3].height, entries[3].index), (1, 3));
        assert!(
            entries[3].detail.starts_with("malformed key event"),
            "{}",
            entries[3].detail
        );
    }

    #[test]
    fn a_value_that_does_not_decode_stops_apply_naming_its_key() {
        let mut state = BTreeMap::new();
        let prefix = "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4";
        // A key state as the old code stored it: JSON.
        state.insert(
            keys::id_state(prefix),
            b"{\"i\":\"E\",\"s\":\"0\"}".to_vec(),
        );
        let key = PrivateKey::from_seed(5);
        let by_identifier = Transaction {
            sender: Sender::Identifier {
                prefix: prefix.into(),
                signers: vec![welkin_types::IndexedKey {
                    index: 0,
                    key: key.public_key(),
                }],
            },
            nonce: 1,
            expiry_ms: 2_000,
            payload: Payload::Memo(vec![]),
        }
        .sign(&key, &env().cluster_id);
        let b = block(1, 1_000, vec![by_identifier]);
        let verdicts = check_signatures(&env().cluster_id, &b);
        let error = apply(&env(), &state, &b, &verdicts).expect_err("corrupt");
        assert!(
            matches!(&error, ApplyError::Corrupt { key, .. } if *key == keys::id_state(prefix))
        );
        assert_eq!(
            error.to_string(),
            format!(
                "the value at state key {} is corrupt: stored key state does not decode: \
                 unknown version 123 (this code reads 1)",
                hex::encode(keys::id_state(prefix))
            )
        );
    }
}
