//! The transaction envelope: versioned, canonical, signed by its sender.
//!
//! ```text
//! Transaction := version u8 (= 1) | signer [32] | nonce u64 | expiry_ms u64 | payload
//! Payload     := 0x01 memo (varint len, bytes)                       (Memo)
//!              | 0x02 key (varint len, bytes) | value (varint len)   (Put)
//!              | 0x03 media type (varint len) | content (varint len) (Record)
//! Signed      := Transaction | ed25519 signature [64]
//! ```
//!
//! The signature covers the cluster id followed by the encoded transaction, under the
//! [`namespace::TX`](crate::namespace::TX) namespace, so a transaction signed for one cluster
//! is worthless on another. The transaction id is the hash of the unsigned encoding: two
//! signatures over the same transaction (ed25519 signatures are malleable under ZIP-215) give
//! the same id, and replay protection rests on the (signer, nonce) pair, not on the id.

use crate::{
    Digest, PrivateKey, PublicKey, Signature, hash_parts,
    limits::{
        MAX_KEY_BYTES, MAX_KEY_EVENT_BYTES, MAX_MEDIA_TYPE_BYTES, MAX_MEMO_BYTES, MAX_RECORD_BYTES,
        MAX_TX_BYTES, MAX_VALUE_BYTES,
    },
    namespace,
};
use bytes::BufMut;
use commonware_codec::{
    Buf, Encode, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write,
};
use commonware_cryptography::{Signer as _, Verifier as _};

/// The only envelope version this code accepts.
pub const TX_VERSION: u8 = 1;

/// A transaction id: SHA-256 over the unsigned encoding.
pub type TxId = Digest;

/// Why a transaction was refused before it reached the state machine.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TxError {
    /// The bytes are not a canonical transaction encoding.
    #[error("malformed transaction: {0}")]
    Malformed(String),
    /// The encoding exceeds [`MAX_TX_BYTES`].
    #[error("transaction is {0} bytes, the limit is {MAX_TX_BYTES}")]
    TooLarge(usize),
    /// The envelope version is not [`TX_VERSION`].
    #[error("unsupported transaction version {0}, this node speaks version {TX_VERSION}")]
    UnsupportedVersion(u8),
    /// The signature does not verify under the signer's key for this cluster.
    #[error("signature does not verify for signer {0} on this cluster")]
    BadSignature(String),
}

/// What a transaction asks the state machine to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Payload {
    /// Record an opaque note; changes nothing but the sender's nonce and the receipt.
    Memo(Vec<u8>),
    /// Set `key` to `value` in the sender's own key-value namespace.
    Put {
        /// The key, at most [`MAX_KEY_BYTES`].
        key: Vec<u8>,
        /// The value, at most [`MAX_VALUE_BYTES`].
        value: Vec<u8>,
    },
    /// Append a record to the audit log: a blob, or the hash of a file, with its media type.
    Record {
        /// What `content` is, e.g. `text/plain` or `application/vnd.welkin.sha256` for a file
        /// hash; printable ASCII, at most [`MAX_MEDIA_TYPE_BYTES`].
        media_type: String,
        /// The record, at most [`MAX_RECORD_BYTES`].
        content: Vec<u8>,
    },
    /// A KERI key event message for the identity module: the event (KERI 1.0 JSON) followed
    /// by its CESR attachments (controller signatures, delegation source seals), at most
    /// [`MAX_KEY_EVENT_BYTES`]. The envelope's signer only submits it; the event carries its
    /// own signatures.
    KeyEvent(Vec<u8>),
}

const TAG_MEMO: u8 = 1;
const TAG_PUT: u8 = 2;
const TAG_RECORD: u8 = 3;
const TAG_KEY_EVENT: u8 = 4;

impl Payload {
    /// A short name for logs and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Memo(_) => "memo",
            Payload::Put { .. } => "put",
            Payload::Record { .. } => "record",
            Payload::KeyEvent(_) => "key_event",
        }
    }
}

fn read_bytes(buf: &mut impl Buf, max: usize) -> Result<Vec<u8>, CodecError> {
    let cfg: RangeCfg<usize> = (0..=max).into();
    Vec::<u8>::read_cfg(buf, &(cfg, ()))
}

impl Write for Payload {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Payload::Memo(memo) => {
                TAG_MEMO.write(buf);
                memo.write(buf);
            }
            Payload::Put { key, value } => {
                TAG_PUT.write(buf);
                key.write(buf);
                value.write(buf);
            }
            Payload::Record {
                media_type,
                content,
            } => {
                TAG_RECORD.write(buf);
                media_type.as_bytes().to_vec().write(buf);
                content.write(buf);
            }
            Payload::KeyEvent(message) => {
                TAG_KEY_EVENT.write(buf);
                message.write(buf);
            }
        }
    }
}

impl EncodeSize for Payload {
    fn encode_size(&self) -> usize {
        1 + match self {
            Payload::Memo(memo) => memo.encode_size(),
            Payload::Put { key, value } => key.encode_size() + value.encode_size(),
            Payload::Record {
                media_type,
                content,
            } => media_type.as_bytes().to_vec().encode_size() + content.encode_size(),
            Payload::KeyEvent(message) => message.encode_size(),
        }
    }
}

impl Read for Payload {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            TAG_MEMO => Ok(Payload::Memo(read_bytes(buf, MAX_MEMO_BYTES)?)),
            TAG_PUT => {
                let key = read_bytes(buf, MAX_KEY_BYTES)?;
                if key.is_empty() {
                    return Err(CodecError::Invalid("Payload::Put", "empty key"));
                }
                let value = read_bytes(buf, MAX_VALUE_BYTES)?;
                Ok(Payload::Put { key, value })
            }
            TAG_RECORD => {
                let media_type = read_bytes(buf, MAX_MEDIA_TYPE_BYTES)?;
                if media_type.is_empty() || !media_type.iter().all(|b| (0x21..0x7f).contains(b)) {
                    return Err(CodecError::Invalid(
                        "Payload::Record",
                        "media type must be printable ASCII",
                    ));
                }
                let media_type = String::from_utf8(media_type).expect("printable ASCII is UTF-8");
                let content = read_bytes(buf, MAX_RECORD_BYTES)?;
                Ok(Payload::Record {
                    media_type,
                    content,
                })
            }
            TAG_KEY_EVENT => {
                let message = read_bytes(buf, MAX_KEY_EVENT_BYTES)?;
                if message.is_empty() {
                    return Err(CodecError::Invalid("Payload::KeyEvent", "empty message"));
                }
                Ok(Payload::KeyEvent(message))
            }
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Envelope version, [`TX_VERSION`].
    pub version: u8,
    /// The key that signs this transaction.
    pub signer: PublicKey,
    /// A number the signer never uses twice; replays of a used nonce are rejected.
    pub nonce: u64,
    /// Block time (ms since the Unix epoch) after which the transaction is void.
    pub expiry_ms: u64,
    /// What to do.
    pub payload: Payload,
}

impl Write for Transaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.version.write(buf);
        self.signer.write(buf);
        self.nonce.write(buf);
        self.expiry_ms.write(buf);
        self.payload.write(buf);
    }
}

impl EncodeSize for Transaction {
    fn encode_size(&self) -> usize {
        1 + self.signer.encode_size() + 8 + 8 + self.payload.encode_size()
    }
}

impl Read for Transaction {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != TX_VERSION {
            return Err(CodecError::Invalid("Transaction", "unsupported version"));
        }
        Ok(Transaction {
            version,
            signer: PublicKey::read(buf)?,
            nonce: u64::read(buf)?,
            expiry_ms: u64::read(buf)?,
            payload: Payload::read(buf)?,
        })
    }
}

impl Transaction {
    /// The transaction id: a hash of the unsigned encoding.
    pub fn id(&self) -> TxId {
        hash_parts(&[b"welkin/txid/v1", &self.encode()])
    }

    /// The bytes the signer signs: the cluster id, then the encoded transaction.
    pub fn signing_message(&self, cluster_id: &Digest) -> Vec<u8> {
        let mut message = Vec::with_capacity(32 + self.encode_size());
        message.extend_from_slice(cluster_id.as_ref());
        message.extend_from_slice(&self.encode());
        message
    }

    /// Signs this transaction for the cluster `cluster_id`.
    ///
    /// # Panics
    /// Panics if `key` is not the key named by `self.signer`.
    pub fn sign(self, key: &PrivateKey, cluster_id: &Digest) -> SignedTransaction {
        assert_eq!(
            key.public_key(),
            self.signer,
            "signing key must match the signer field"
        );
        let signature = key.sign(namespace::TX, &self.signing_message(cluster_id));
        SignedTransaction::new(self, signature)
    }
}

/// A transaction with its signature. The id is computed once, when built or decoded.
#[derive(Clone, Debug)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// The ed25519 signature by `tx.signer`.
    pub signature: Signature,
    id: TxId,
}

impl PartialEq for SignedTransaction {
    fn eq(&self, other: &Self) -> bool {
        self.tx == other.tx && self.signature == other.signature
    }
}

impl Eq for SignedTransaction {}

impl SignedTransaction {
    /// Pairs a transaction with a signature (not checked here; see [`Self::verify`]).
    pub fn new(tx: Transaction, signature: Signature) -> Self {
        let id = tx.id();
        Self { tx, signature, id }
    }

    /// The transaction id.
    pub fn id(&self) -> TxId {
        self.id
    }

    /// Checks the signature for the cluster `cluster_id`.
    pub fn verify(&self, cluster_id: &Digest) -> Result<(), TxError> {
        let message = self.tx.signing_message(cluster_id);
        if self
            .tx
            .signer
            .verify(namespace::TX, &message, &self.signature)
        {
            Ok(())
        } else {
            Err(TxError::BadSignature(self.tx.signer.to_string()))
        }
    }

    /// Checks many signatures at once: one ed25519 batch verification (about twice as fast
    /// as one by one), falling back to single checks to find the bad ones if it fails.
    /// `rng` must be unpredictable to whoever produced the transactions.
    pub fn verify_many(
        txs: &[&SignedTransaction],
        cluster_id: &Digest,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Vec<bool> {
        use commonware_cryptography::{BatchEntry, BatchVerifier as _};
        if txs.is_empty() {
            return Vec::new();
        }
        let messages: Vec<Vec<u8>> = txs
            .iter()
            .map(|t| t.tx.signing_message(cluster_id))
            .collect();
        let all_valid = PublicKey::verify_batch(
            rng,
            &messages,
            |i, message| BatchEntry {
                namespace: namespace::TX,
                message,
                public_key: &txs[i].tx.signer,
                signature: &txs[i].signature,
            },
            &commonware_parallel::Sequential,
        );
        if all_valid {
            return vec![true; txs.len()];
        }
        txs.iter()
            .zip(&messages)
            .map(|(t, m)| t.tx.signer.verify(namespace::TX, m, &t.signature))
            .collect()
    }

    /// Decodes a transaction from untrusted bytes, enforcing every limit.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TxError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge(bytes.len()));
        }
        if let Some(&version) = bytes.first()
            && version != TX_VERSION
        {
            return Err(TxError::UnsupportedVersion(version));
        }
        crate::decode::<Self>(bytes).map_err(|e| TxError::Malformed(e.to_string()))
    }
}

impl Write for SignedTransaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedTransaction {
    fn encode_size(&self) -> usize {
        self.tx.encode_size() + self.signature.encode_size()
    }
}

impl Read for SignedTransaction {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tx = Transaction::read(buf)?;
        let signature = Signature::read(buf)?;
        Ok(Self::new(tx, signature))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cluster() -> Digest {
        hash_parts(&[b"test cluster"])
    }

    fn sample(nonce: u64) -> (PrivateKey, SignedTransaction) {
        let key = PrivateKey::from_seed(7);
        let tx = Transaction {
            version: TX_VERSION,
            signer: key.public_key(),
            nonce,
            expiry_ms: 1_000,
            payload: Payload::Put {
                key: b"k".to_vec(),
                value: b"v".to_vec(),
            },
        };
        let signed = tx.sign(&key, &cluster());
        (key, signed)
    }

    #[test]
    fn round_trip_keeps_id_and_signature() {
        let (_, signed) = sample(1);
        let bytes = signed.encode();
        let decoded = SignedTransaction::from_bytes(&bytes).expect("decodes");
        assert_eq!(decoded, signed);
        assert_eq!(decoded.id(), signed.id());
        decoded.verify(&cluster()).expect("verifies");
    }

    #[test]
    fn signature_is_bound_to_the_cluster() {
        let (_, signed) = sample(1);
        let other = hash_parts(&[b"other cluster"]);
        assert!(matches!(
            signed.verify(&other),
            Err(TxError::BadSignature(_))
        ));
    }

    #[test]
    fn tampered_transaction_fails_verification() {
        let (_, mut signed) = sample(1);
        signed.tx.nonce = 2;
        assert!(signed.verify(&cluster()).is_err());
    }

    #[test]
    fn rejects_unknown_version_truncation_and_trailing_bytes() {
        let (_, signed) = sample(1);
        let mut bytes = signed.encode().to_vec();
        let mut wrong_version = bytes.clone();
        wrong_version[0] = 9;
        assert_eq!(
            SignedTransaction::from_bytes(&wrong_version),
            Err(TxError::UnsupportedVersion(9))
        );
        assert!(matches!(
            SignedTransaction::from_bytes(&bytes[..bytes.len() - 1]),
            Err(TxError::Malformed(_))
        ));
        bytes.push(0);
        assert!(matches!(
            SignedTransaction::from_bytes(&bytes),
            Err(TxError::Malformed(_))
        ));
        assert!(matches!(
            SignedTransaction::from_bytes(&[]),
            Err(TxError::Malformed(_))
        ));
    }

    #[test]
    fn rejects_oversized_and_out_of_range_fields() {
        assert!(matches!(
            SignedTransaction::from_bytes(&vec![1u8; MAX_TX_BYTES + 1]),
            Err(TxError::TooLarge(_))
        ));
        let key = PrivateKey::from_seed(1);
        let tx = Transaction {
            version: TX_VERSION,
            signer: key.public_key(),
            nonce: 0,
            expiry_ms: 0,
            payload: Payload::Put {
                key: vec![1; MAX_KEY_BYTES + 1],
                value: vec![],
            },
        };
        let bytes = tx.sign(&key, &cluster()).encode();
        assert!(matches!(
            SignedTransaction::from_bytes(&bytes),
            Err(TxError::Malformed(_))
        ));
    }

    #[test]
    fn batch_verification_finds_the_bad_signature() {
        let mut rng = commonware_utils::test_rng();
        let txs: Vec<_> = (0..8).map(|n| sample(n).1).collect();
        let refs: Vec<_> = txs.iter().collect();
        assert_eq!(
            SignedTransaction::verify_many(&refs, &cluster(), &mut rng),
            vec![true; 8]
        );
        let mut forged = txs.clone();
        forged[5] = SignedTransaction::new(forged[5].tx.clone(), txs[4].signature.clone());
        let refs: Vec<_> = forged.iter().collect();
        let verdicts = SignedTransaction::verify_many(&refs, &cluster(), &mut rng);
        assert_eq!(verdicts.iter().filter(|ok| !**ok).count(), 1);
        assert!(!verdicts[5]);
    }

    #[test]
    fn same_transaction_has_same_id_regardless_of_signature() {
        let (_, a) = sample(5);
        let other = SignedTransaction::new(a.tx.clone(), a.signature.clone());
        assert_eq!(a.id(), other.id());
        let (_, b) = sample(6);
        assert_ne!(a.id(), b.id());
    }
}
