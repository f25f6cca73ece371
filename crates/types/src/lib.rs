//! Welkin wire types and codecs: transactions, blocks, checkpoints and genesis, with no I/O.
//!
//! Every type that crosses the network or lands on disk is defined here, with a canonical
//! binary encoding (commonware-codec) whose decoder enforces the limits in [`limits`].
//! Types that users read or write by hand (genesis, API bodies) also have a JSON form.

#![deny(missing_docs)]

pub mod api;
mod block;
mod checkpoint;
mod detachable;
pub mod genesis;
pub mod hexser;
pub mod limits;
mod log_entry;
pub mod membership;
pub mod note;
pub mod proof;
pub mod receipt;
pub mod secrets;
pub mod storage;
mod tx;

pub use block::{Block, BlockCfg};
pub use checkpoint::{CertifiedCheckpoint, Checkpoint};
pub use detachable::Detachable;
pub use genesis::{ChainParams, ClusterId, Genesis, NodeInfo};
pub use log_entry::{LOG_ENTRY_VERSION, LogEntry, LogEntryError};
pub use receipt::{Outcome, Receipt};
pub use tx::{
    IndexedKey, MAX_PREFIX_BYTES, MAX_TX_SIGNERS, Payload, Sender, SignedTransaction,
    TX_VERSION_IDENTIFIER, TX_VERSION_KEY, Transaction, TxError, TxId,
};

/// The hash used everywhere in Welkin (SHA-256).
pub type Hasher = commonware_cryptography::Sha256;
/// A 32-byte SHA-256 digest: block digests, transaction ids, state roots.
pub type Digest = commonware_cryptography::sha256::Digest;
/// An ed25519 public key: node identities and transaction signers.
pub type PublicKey = commonware_cryptography::ed25519::PublicKey;
/// An ed25519 private key.
pub type PrivateKey = commonware_cryptography::ed25519::PrivateKey;
/// An ed25519 signature.
pub type Signature = commonware_cryptography::ed25519::Signature;
/// The BLS12-381 variant of the cluster key (small signatures, 96-byte public key).
pub type Variant = commonware_cryptography::bls12381::primitives::variant::MinSig;
/// The cluster's threshold public key.
pub type ClusterKey =
    <Variant as commonware_cryptography::bls12381::primitives::variant::Variant>::Public;
/// A signature under the cluster key.
pub type ClusterSignature =
    <Variant as commonware_cryptography::bls12381::primitives::variant::Variant>::Signature;
/// The public polynomial of the cluster key (commitments to every share).
pub type Sharing = commonware_cryptography::bls12381::primitives::sharing::Sharing<Variant>;

/// Decodes a value with unit config from a byte slice, requiring every byte to be used.
pub fn decode<T: commonware_codec::Read<Cfg = ()>>(
    bytes: &[u8],
) -> Result<T, commonware_codec::Error> {
    use commonware_codec::Decode as _;
    T::decode_cfg(commonware_codec::Copying(bytes), &())
}

/// Signature namespaces: each kind of signature has its own, so that no signature can be
/// replayed as another kind.
pub mod namespace {
    /// Transactions signed by clients (ed25519).
    pub const TX: &[u8] = b"welkin/tx/v1";
    /// Consensus votes and certificates (the members' ed25519 keys; commonware appends its own
    /// suffixes).
    pub const CONSENSUS: &[u8] = b"welkin/consensus/v1";
    /// Certified checkpoints (BLS threshold partials and their recovered signature).
    pub const CHECKPOINT: &[u8] = b"welkin/checkpoint/v1";
    /// The p2p handshake between nodes.
    pub const P2P: &[u8] = b"welkin/p2p/v1";
    /// A node's registration for a genesis, signed by the node's own key (ed25519).
    pub const REGISTRATION: &[u8] = b"welkin/node-registration/v1";
    /// Values sealed to the cluster key (BLS threshold partials over a value's target, and
    /// the identity-based encryption of its data key): signed for nothing else.
    pub const SEAL: &[u8] = b"welkin/sealed/v1";
    /// A partial signature released to a reader's one-time key (HPKE `info`, before the
    /// cluster, the read and the target).
    pub const RELEASE: &[u8] = b"welkin/sealed/release/v1";
    /// Values sealed to named recipients' keys (HPKE `info` and both layers' associated data).
    pub const RECIPIENTS: &[u8] = b"welkin/sealed/recipients/v1";
    /// The derivation of a secrets token's signing key from the token (see
    /// [`crate::secrets::token_signing_key`]).
    pub const TOKEN: &[u8] = b"welkin/token/v1";
    /// A node's signed reading of its clock over a batch of client nonces (ed25519).
    pub const TIME_READING: &[u8] = b"welkin/time-reading/v1";
    /// Time certificates: BLS threshold partials over an agreed interval, and the recovered
    /// signature.
    pub const TIME: &[u8] = b"welkin/time-certificate/v1";
    /// A client's signature over a shard upload or download request (ed25519).
    pub const OBJECT_REQUEST: &[u8] = b"welkin/object-request/v1";
    /// An operator's statement about a joining node's machine (ed25519, by the operator
    /// identifier's current keys).
    pub const ATTESTATION: &[u8] = b"welkin/attestation/operator-statement/v1";
}

/// Hashes `parts` with SHA-256, each part prefixed by its length so that the split between
/// parts is unambiguous.
pub fn hash_parts(parts: &[&[u8]]) -> Digest {
    use commonware_cryptography::Hasher as _;
    let lengths: Vec<[u8; 8]> = parts
        .iter()
        .map(|p| (p.len() as u64).to_be_bytes())
        .collect();
    let mut framed: Vec<&[u8]> = Vec::with_capacity(parts.len() * 2);
    for (length, part) in lengths.iter().zip(parts) {
        framed.push(length);
        framed.push(part);
    }
    Hasher::hash(&framed)
}

#[cfg(test)]
mod robustness {
    //! Decoders face the network: garbage and mutated encodings must never panic, and
    //! whatever a decoder accepts must be canonical (re-encode to the same bytes).

    use crate::{
        Block, CertifiedCheckpoint, Payload, PrivateKey, Sender, SignedTransaction, Transaction,
        decode, hash_parts,
    };
    use commonware_codec::{Encode, Read};
    use commonware_cryptography::Signer as _;

    fn check<T: Read<Cfg = ()> + Encode>(bytes: &[u8]) {
        if let Ok(value) = decode::<T>(bytes) {
            assert_eq!(
                value.encode().as_ref(),
                bytes,
                "accepted a non-canonical encoding"
            );
        }
    }

    fn mutations(valid: &[u8], rng: &mut impl rand_core::Rng, rounds: usize) -> Vec<Vec<u8>> {
        let mut out = Vec::with_capacity(rounds);
        for round in 0..rounds {
            let mut bytes = valid.to_vec();
            match round % 4 {
                0 if !bytes.is_empty() => {
                    let i = (rng.next_u32() as usize) % bytes.len();
                    bytes[i] ^= 1 << (rng.next_u32() % 8);
                }
                1 => bytes.truncate((rng.next_u32() as usize) % (valid.len() + 1)),
                2 => bytes.push(rng.next_u32() as u8),
                _ => {
                    let len = (rng.next_u32() as usize) % 300;
                    bytes = (0..len).map(|_| rng.next_u32() as u8).collect();
                }
            }
            out.push(bytes);
        }
        out
    }

    #[test]
    fn decoders_survive_garbage_and_accept_only_canonical_bytes() {
        let mut rng = commonware_utils::test_rng();
        let key = PrivateKey::from_seed(9);
        let cluster = hash_parts(&[b"c"]);
        let tx = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: 77,
            expiry_ms: 1_000,
            payload: Payload::Put {
                key: b"k".to_vec(),
                value: b"value".to_vec(),
            },
        }
        .sign(&key, &cluster);
        let block = Block::new(cluster, 5, 6, vec![tx.clone(), tx.clone()]);
        let by_identifier = Transaction {
            sender: crate::Sender::Identifier {
                prefix: "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4".into(),
                signers: vec![crate::IndexedKey {
                    index: 1,
                    key: key.public_key(),
                }],
            },
            nonce: 77,
            expiry_ms: 1_000,
            payload: Payload::Memo(b"m".to_vec()),
        }
        .sign(&key, &cluster);
        for bytes in mutations(&by_identifier.encode(), &mut rng, 5_000) {
            check::<SignedTransaction>(&bytes);
            let _ = SignedTransaction::from_bytes(&bytes);
        }
        for bytes in mutations(&tx.encode(), &mut rng, 5_000) {
            check::<SignedTransaction>(&bytes);
            let _ = SignedTransaction::from_bytes(&bytes);
        }
        for bytes in mutations(&block.encode(), &mut rng, 5_000) {
            check::<Block>(&bytes);
        }
        let entry = crate::LogEntry {
            height: 5,
            index: 1,
            outcome: crate::Outcome::Duplicity,
            detail: "why".into(),
            tx: by_identifier.clone(),
        };
        for bytes in mutations(&entry.encode(), &mut rng, 5_000) {
            check::<crate::LogEntry>(&bytes);
            let _ = crate::LogEntry::from_bytes(&bytes);
        }
        let recipient_ops = crate::secrets::recipients_tests::every_op();
        for op in crate::secrets::tests::every_op()
            .into_iter()
            .chain(recipient_ops)
        {
            for bytes in mutations(&op.encode(), &mut rng, 500) {
                check::<crate::secrets::SecretsOp>(&bytes);
            }
        }
        for bytes in mutations(&[0u8; 128], &mut rng, 2_000) {
            check::<CertifiedCheckpoint>(&bytes);
            check::<crate::Receipt>(&bytes);
        }
    }
}

#[cfg(test)]
mod fixtures {
    //! Frozen wire formats: the hash of each deterministic encoding is checked in. A change
    //! here is a wire-format change: bump the version it belongs to, then update the fixture.

    use crate::{
        Block, Checkpoint, Outcome, Payload, PrivateKey, Receipt, Sender, Transaction, hash_parts,
    };
    use commonware_codec::Encode;
    use commonware_cryptography::Signer as _;

    fn fingerprint(bytes: &[u8]) -> String {
        hex::encode(hash_parts(&[bytes]))
    }

    #[test]
    fn encodings_are_frozen() {
        let key = PrivateKey::from_seed(2026);
        let cluster = hash_parts(&[b"welkin fixture cluster"]);
        let tx = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: 42,
            expiry_ms: 1_700_000_000_000,
            payload: Payload::Put {
                key: b"fixture".to_vec(),
                value: b"value".to_vec(),
            },
        }
        .sign(&key, &cluster);
        let block = Block::new(cluster, 7, 1_700_000_000_001, vec![tx.clone()]);
        let by_identifier = Transaction {
            sender: Sender::Identifier {
                prefix: "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4".into(),
                signers: vec![crate::IndexedKey {
                    index: 300,
                    key: key.public_key(),
                }],
            },
            nonce: 42,
            expiry_ms: 1_700_000_000_000,
            payload: Payload::Memo(b"fixture".to_vec()),
        }
        .sign(&key, &cluster);
        let checkpoint = Checkpoint {
            height: 7,
            state_root: hash_parts(&[b"root"]),
            log_size: 3,
            log_root: hash_parts(&[b"log"]),
        };
        let receipt = Receipt {
            height: 7,
            index: 0,
            outcome: Outcome::Applied,
            log_index: 2,
        };
        let actual = [
            ("tx", fingerprint(&tx.encode())),
            ("tx id", hex::encode(tx.id())),
            ("block", fingerprint(&block.encode())),
            ("identifier tx", fingerprint(&by_identifier.encode())),
            (
                "checkpoint message",
                fingerprint(&checkpoint.message(&cluster)),
            ),
            ("receipt", fingerprint(&receipt.encode())),
        ];
        let expected = [
            (
                "tx",
                "394a5e932fb9d038dcb4540086ea4ffcc8f38982778dc221ef8b7dd8e1620476",
            ),
            (
                "tx id",
                "f69738f4d029c9c2ca985595a968dcd1c9c566cf1a9593213dcfb2295be93ddc",
            ),
            (
                "block",
                "c72720a79ae53604f207f3e2cd45de94747834467246822cef2507bab46d9286",
            ),
            (
                "identifier tx",
                "d2fa78ef06d9b6849e78d5dbe3d04db69aff5fcf9a91850ebf5201c6153f76f8",
            ),
            (
                "checkpoint message",
                "46ab37698afcd0aec172e275a5491e616c32e973183cf48d00442ca78610f8bb",
            ),
            (
                "receipt",
                "dca319154709136bb72f333b5251b6caca340cff5644937442e4926201115109",
            ),
        ];
        for ((name, got), (_, want)) in actual.iter().zip(expected) {
            assert_eq!(got, want, "{name} encoding changed");
        }
    }
}

#[cfg(test)]
mod namespaces {
    use super::namespace::*;

    #[test]
    fn every_namespace_is_distinct_and_none_extends_another() {
        let all = [
            TX,
            CONSENSUS,
            CHECKPOINT,
            P2P,
            REGISTRATION,
            SEAL,
            RELEASE,
            RECIPIENTS,
            TOKEN,
            TIME_READING,
            TIME,
            OBJECT_REQUEST,
            ATTESTATION,
        ];
        for (i, a) in all.iter().enumerate() {
            for b in &all[i + 1..] {
                // A prefix could let a message in one namespace read as one in the other.
                assert!(
                    !a.starts_with(b) && !b.starts_with(a),
                    "{} and {} overlap",
                    String::from_utf8_lossy(a),
                    String::from_utf8_lossy(b)
                );
            }
        }
    }
}
