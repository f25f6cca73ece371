//! Who may act for an identifier: the check behind identifier-signed transactions.
//!
//! A version 2 transaction names a KERI identifier and the keys that signed it, each with
//! its index in the identifier's key list. The signatures themselves are checked without
//! state (and cached) like any other; this module decides whether those keys speak for the
//! identifier *now*: every one must be the key at its index in the identifier's current key
//! state, and together they must meet its signing threshold (`kt`, simple or weighted). The
//! key state is the one the transaction executes against, so a rotation committed in an
//! earlier block, or earlier in the same block, takes effect at once: keys rotated out stop
//! signing for the identifier.
//!
//! The mempool runs the same check against the latest committed state so that a client hears
//! at once why a transaction cannot pass; the state machine's verdict is the one that counts.

use welkin_keri::{KeyState, Prefix};
use welkin_types::IndexedKey;

/// Why keys do not speak for an identifier.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No inception of the identifier is committed.
    #[error(
        "unknown identifier {prefix}: no inception of it is committed (incept it with `welkin id incept`, or wait for its inception to commit)"
    )]
    UnknownIdentifier {
        /// The identifier.
        prefix: String,
    },
    /// A key is not the identifier's current key at the index it claims.
    #[error(
        "key {key} (index {index}) is not a current signing key of {prefix} at sequence number {sn}{hint}"
    )]
    NotCurrentKey {
        /// The identifier.
        prefix: String,
        /// The claimed index.
        index: u32,
        /// The key, hex.
        key: String,
        /// The identifier's latest sequence number.
        sn: u64,
        /// What the caller can do.
        hint: &'static str,
    },
    /// The keys are current but too few (or too light) for the signing threshold.
    #[error(
        "signatures by the keys at indices {indices:?} do not meet the signing threshold {threshold} of {prefix}"
    )]
    BelowThreshold {
        /// The identifier.
        prefix: String,
        /// The indices that signed.
        indices: Vec<u32>,
        /// The threshold, as KERI JSON (`kt`).
        threshold: String,
    },
}

/// A non-transferable (`B`) identifier without an inception in the log, such as a node's: its
/// only key is the one its prefix encodes, at index 0, and it signs alone.
fn check_non_transferable(prefix: &str, signers: &[IndexedKey]) -> Result<(), Refusal> {
    let Ok(Prefix::Basic(key)) = Prefix::from_qb64(prefix) else {
        return Err(Refusal::UnknownIdentifier {
            prefix: prefix.to_string(),
        });
    };
    if key.transferable {
        return Err(Refusal::UnknownIdentifier {
            prefix: prefix.to_string(),
        });
    }
    match signers {
        [only] if only.index == 0 && only.key.as_ref() == key.key.as_slice() => Ok(()),
        _ => Err(Refusal::NotCurrentKey {
            prefix: prefix.to_string(),
            index: signers.first().map_or(0, |s| s.index),
            key: signers
                .first()
                .map(|s| hex::encode(s.key.as_ref()))
                .unwrap_or_default(),
            sn: 0,
            hint: ": a non-transferable identifier signs with the one key its prefix encodes, at index 0",
        }),
    }
}

/// Checks that `signers` are current signing keys of the identifier `prefix`, whose key state
/// is `key_state` (`None`: not incepted), and that they meet its signing threshold. A
/// non-transferable (`B`) identifier needs no inception: it is its key. So each node, whose
/// identifier is its p2p key as a `B` prefix, can sign as its identifier from genesis on.
pub fn check(
    key_state: Option<&KeyState>,
    prefix: &str,
    signers: &[IndexedKey],
) -> Result<(), Refusal> {
    let Some(state) = key_state else {
        return check_non_transferable(prefix, signers);
    };
    let current = &state.signing.keys;
    for signer in signers {
        let at_index = usize::try_from(signer.index)
            .ok()
            .and_then(|i| current.get(i));
        if at_index.is_some_and(|k| k.key.as_slice() == signer.key.as_ref()) {
            continue;
        }
        let elsewhere = current
            .iter()
            .any(|k| k.key.as_slice() == signer.key.as_ref());
        return Err(Refusal::NotCurrentKey {
            prefix: prefix.to_string(),
            index: signer.index,
            key: hex::encode(signer.key.as_ref()),
            sn: state.sn,
            hint: if elsewhere {
                ": it is current at another index; name that index"
            } else {
                ": a key rotated out no longer signs for the identifier (sign with the current keys)"
            },
        });
    }
    let indices: Vec<u32> = signers.iter().map(|s| s.index).collect();
    if !state.signing.kt.satisfied_by(&indices) {
        return Err(Refusal::BelowThreshold {
            prefix: prefix.to_string(),
            indices,
            threshold: serde_json::to_string(&state.signing.kt).expect("thresholds serialize"),
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Env, apply_to_map, identity::stored_key_state, keys};
    use commonware_cryptography::Signer as _;
    use std::collections::BTreeMap;
    use welkin_keri::{InceptionBuilder, RotationBuilder, Signer, Threshold, sign, signed};
    use welkin_types::{
        Block, ChainParams, Digest, Outcome, Payload, PrivateKey, Sender, SignedTransaction,
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

    /// The same ed25519 key as a KERI signer and as a transaction signer.
    fn key_pair(seed: u8) -> (Signer, PrivateKey) {
        let keri = Signer::new(&[seed; 32]);
        let tx = welkin_types::decode::<PrivateKey>(&[seed; 32]).expect("32-byte seeds are keys");
        assert_eq!(keri.verkey().key.as_slice(), tx.public_key().as_ref());
        (keri, tx)
    }

    struct Chain {
        state: BTreeMap<Digest, Vec<u8>>,
        height: u64,
        submitter: PrivateKey,
        submitter_nonce: u64,
    }

    impl Chain {
        fn new() -> Self {
            Self {
                state: BTreeMap::new(),
                height: 0,
                submitter: PrivateKey::from_seed(99),
                submitter_nonce: 0,
            }
        }

        fn key_event(&mut self, message: welkin_keri::Message) -> SignedTransaction {
            self.submitter_nonce += 1;
            Transaction {
                sender: Sender::Key(self.submitter.public_key()),
                nonce: self.submitter_nonce,
                expiry_ms: 1_010_000,
                payload: Payload::KeyEvent(message.to_bytes().expect("encodes")),
            }
            .sign(&self.submitter, &env().cluster_id)
        }

        /// Commits one block; each transaction's outcome and detail.
        fn commit(&mut self, txs: Vec<SignedTransaction>) -> Vec<(Outcome, String)> {
            self.height += 1;
            let ids: Vec<_> = txs.iter().map(SignedTransaction::id).collect();
            let block = Block::new(hash_parts(&[b"p"]), self.height, 1_000_000, txs);
            let effects = apply_to_map(&env(), &mut self.state, &block);
            assert_eq!(effects.bad_signatures, 0);
            effects
                .receipts
                .iter()
                .zip(ids)
                .map(|((_, receipt), id)| {
                    let detail = self
                        .state
                        .get(&keys::outcome_detail(&id))
                        .map(|d| String::from_utf8_lossy(d).into_owned())
                        .unwrap_or_default();
                    (receipt.outcome, detail)
                })
                .collect()
        }
    }

    fn by_identifier(
        prefix: &str,
        keys: &[(u32, &PrivateKey)],
        nonce: u64,
        payload: Payload,
    ) -> SignedTransaction {
        let tx = Transaction {
            sender: Sender::Identifier {
                prefix: prefix.to_string(),
                signers: keys
                    .iter()
                    .map(|(index, key)| IndexedKey {
                        index: *index,
                        key: key.public_key(),
                    })
                    .collect(),
            },
            nonce,
            expiry_ms: 1_010_000,
            payload,
        };
        let private: Vec<PrivateKey> = keys.iter().map(|(_, k)| (*k).clone()).collect();
        tx.sign_all(&private, &env().cluster_id)
    }

    fn put(value: &str) -> Payload {
        Payload::Put {
            key: b"k".to_vec(),
            value: value.as_bytes().to_vec(),
        }
    }

    #[test]
    fn rotated_out_keys_stop_signing_at_once_and_burn_no_nonce() {
        let mut chain = Chain::new();
        let (a_keri, a) = key_pair(1);
        let (b_keri, b) = key_pair(2);
        let (c_keri, _) = key_pair(3);
        let icp = InceptionBuilder::new(vec![a_keri.verkey()])
            .next(vec![b_keri.verkey().next_digest()], Threshold::Simple(1))
            .build();
        let prefix = icp.prefix().qb64();
        let sigs = sign(&icp, std::slice::from_ref(&a_keri));
        let icp = chain.key_event(signed(icp, sigs));
        let first = by_identifier(&prefix, &[(0, &a)], 1, put("by a"));
        let outcomes = chain.commit(vec![icp, first]);
        assert_eq!(outcomes[0].0, Outcome::Applied);
        assert_eq!(outcomes[1], (Outcome::Applied, String::new()));
        let sender = Sender::Identifier {
            prefix: prefix.clone(),
            signers: vec![],
        };
        assert_eq!(
            chain.state.get(&keys::kv(&sender, b"k")).map(Vec::as_slice),
            Some(&b"by a"[..]),
            "an identifier writes its own namespace"
        );

        // The rotation and a transaction by the old key in the same block: the rotation
        // comes first, so the old key no longer signs.
        let state = stored_key_state(chain.state.get(&keys::id_state(&prefix)).map(Vec::as_slice))
            .expect("decodes")
            .expect("incepted");
        let rot = RotationBuilder::new(&state, vec![b_keri.verkey()])
            .next(vec![c_keri.verkey().next_digest()], Threshold::Simple(1))
            .build();
        let sigs = sign(&rot, std::slice::from_ref(&b_keri));
        let rot = chain.key_event(signed(rot, sigs));
        let stale = by_identifier(&prefix, &[(0, &a)], 2, put("stale"));
        let outcomes = chain.commit(vec![rot, stale]);
        assert_eq!(outcomes[0].0, Outcome::Applied);
        assert_eq!(outcomes[1].0, Outcome::Rejected);
        assert!(
            outcomes[1].1.contains("not a current signing key")
                && outcomes[1].1.contains("rotated out"),
            "{}",
            outcomes[1].1
        );
        assert_eq!(
            chain.state.get(&keys::kv(&sender, b"k")).map(Vec::as_slice),
            Some(&b"by a"[..])
        );

        // Nonce 2 was not used by the refused transaction; nonces survive the rotation.
        let fresh = by_identifier(&prefix, &[(0, &b)], 2, put("by b"));
        let replay = by_identifier(&prefix, &[(0, &b)], 1, put("replay"));
        let outcomes = chain.commit(vec![fresh, replay]);
        assert_eq!(outcomes[0].0, Outcome::Applied);
        assert_eq!(outcomes[1].0, Outcome::Replay);
        assert_eq!(
            chain.state.get(&keys::kv(&sender, b"k")).map(Vec::as_slice),
            Some(&b"by b"[..])
        );
    }

    #[test]
    fn unknown_identifiers_wrong_indices_and_thresholds_are_refused() {
        let mut chain = Chain::new();
        let pairs: Vec<(Signer, PrivateKey)> = (10..13).map(key_pair).collect();
        let (next, _) = key_pair(20);
        let icp = InceptionBuilder::new(pairs.iter().map(|(k, _)| k.verkey()).collect())
            .kt(Threshold::Simple(2))
            .next(vec![next.verkey().next_digest()], Threshold::Simple(1))
            .build();
        let prefix = icp.prefix().qb64();
        let keri: Vec<Signer> = pairs.iter().map(|(k, _)| k.clone()).collect();
        let sigs = sign(&icp, &keri);
        let icp = chain.key_event(signed(icp, sigs));
        let unknown = by_identifier(
            "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4",
            &[(0, &pairs[0].1)],
            1,
            Payload::Memo(vec![]),
        );
        let one = by_identifier(&prefix, &[(1, &pairs[1].1)], 1, Payload::Memo(vec![]));
        let misplaced = by_identifier(
            &prefix,
            &[(0, &pairs[1].1), (2, &pairs[2].1)],
            1,
            Payload::Memo(vec![]),
        );
        let two = by_identifier(
            &prefix,
            &[(0, &pairs[0].1), (2, &pairs[2].1)],
            1,
            Payload::Memo(vec![]),
        );
        let outcomes = chain.commit(vec![icp, unknown, one, misplaced, two]);
        assert_eq!(outcomes[0].0, Outcome::Applied);
        assert_eq!(outcomes[1].0, Outcome::Rejected);
        assert!(
            outcomes[1].1.contains("unknown identifier"),
            "{}",
            outcomes[1].1
        );
        assert_eq!(outcomes[2].0, Outcome::Rejected);
        assert!(
            outcomes[2].1.contains("do not meet the signing threshold"),
            "{}",
            outcomes[2].1
        );
        assert_eq!(outcomes[3].0, Outcome::Rejected);
        assert!(outcomes[3].1.contains("another index"), "{}", outcomes[3].1);
        assert_eq!(outcomes[4], (Outcome::Applied, String::new()));
    }

    #[test]
    fn a_non_transferable_identifier_is_its_own_key() {
        let (keri, key) = key_pair(30);
        let (_, other) = key_pair(31);
        let node = Prefix::Basic(Signer::non_transferable(&[30; 32]).verkey()).qb64();
        assert!(node.starts_with('B'));
        let transferable = Prefix::Basic(keri.verkey()).qb64();
        assert!(transferable.starts_with('D'));
        let mut chain = Chain::new();
        let outcomes = chain.commit(vec![
            by_identifier(&node, &[(0, &key)], 1, Payload::Memo(vec![])),
            by_identifier(&node, &[(0, &other)], 2, Payload::Memo(vec![])),
            by_identifier(&node, &[(1, &key)], 3, Payload::Memo(vec![])),
            by_identifier(&transferable, &[(0, &key)], 4, Payload::Memo(vec![])),
        ]);
        assert_eq!(outcomes[0], (Outcome::Applied, String::new()));
        assert_eq!(outcomes[1].0, Outcome::Rejected);
        assert!(
            outcomes[1].1.contains("non-transferable"),
            "{}",
            outcomes[1].1
        );
        assert_eq!(outcomes[2].0, Outcome::Rejected);
        assert!(
            outcomes[3].1.contains("unknown identifier"),
            "a transferable basic prefix needs its inception: {}",
            outcomes[3].1
        );
    }
}
