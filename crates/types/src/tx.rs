//! The transaction envelope: versioned, canonical, signed by its sender.
//!
//! ```text
//! Transaction := 0x01 key [32] | common                          (version 1, Sender::Key)
//!              | 0x02 prefix (varint len, qb64) | count u8
//!                     | (index varint u32 | key [32]) * count | common
//!                                                                (version 2, Sender::Identifier)
//! common      := nonce u64 | expiry_ms u64 | payload
//! Payload     := 0x01 memo (varint len, bytes)                       (Memo)
//!              | 0x02 key (varint len, bytes) | value (varint len)   (Put)
//!              | 0x03 media type (varint len) | content (varint len) (Record)
//!              | 0x04 message (varint len, bytes)                    (KeyEvent)
//!              | 0x05 SecretsOp (see crate::secrets)                  (Secrets)
//! Signed      := Transaction | ed25519 signature [64] per key
//! ```
//!
//! Every signature covers the cluster id followed by the committed encoding of the
//! transaction (its encoding with a [`crate::Detachable`] value, if any, as the value's
//! digest), under the [`namespace::TX`](crate::namespace::TX) namespace, so a transaction
//! signed for one cluster is worthless on another, and dropping its value (crypto-shredding)
//! leaves it verifiable. The transaction id is the hash of the unsigned committed encoding: two
//! signatures over the same transaction (ed25519 signatures are malleable under ZIP-215) give
//! the same id, and replay protection rests on the (sender, nonce) pair, not on the id.
//!
//! A version 2 transaction names the identifier's keys it is signed with, and their indices in
//! the identifier's key list, inside the signed bytes. So signatures can be checked (and
//! batch-checked) without state, and no one can change which keys a transaction claims
//! without changing its id. Whether those keys are the identifier's current ones, meeting its
//! threshold, is decided by the state machine when the transaction executes.

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
    Buf, Encode, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write, varint::UInt,
};
use commonware_cryptography::{Signer as _, Verifier as _};

/// Envelope version of a transaction sent by a raw ed25519 key ([`Sender::Key`]).
pub const TX_VERSION_KEY: u8 = 1;

/// Envelope version of a transaction sent by a KERI identifier ([`Sender::Identifier`]).
pub const TX_VERSION_IDENTIFIER: u8 = 2;

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
    /// The envelope version is neither [`TX_VERSION_KEY`] nor [`TX_VERSION_IDENTIFIER`].
    #[error(
        "unsupported transaction version {0}: this node speaks versions {TX_VERSION_KEY} (key-signed) and {TX_VERSION_IDENTIFIER} (identifier-signed)"
    )]
    UnsupportedVersion(u8),
    /// A signature does not verify under the sender's key for this cluster.
    #[error("signature does not verify for sender {0} on this cluster")]
    BadSignature(String),
    /// The transaction carries only the digest of a value it must carry whole (see
    /// [`crate::Detachable`]): only the log and the archive hold values detached.
    #[error("transaction carries its value's digest but not the value; send the value with it")]
    MissingValue,
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
    /// A secrets request (see [`crate::secrets`]), sent by a token's key.
    Secrets(Box<crate::secrets::SecretsOp>),
    /// A storage request (see [`crate::storage`]): an object's manifest, a node's offer or
    /// acknowledgement, a deletion.
    Storage(Box<crate::storage::StorageOp>),
    /// A membership request (see [`crate::membership`]): a dealer's log for the cluster's key
    /// generation, sent by the dealer's node key.
    Membership(Box<crate::membership::MembershipOp>),
}

const TAG_MEMO: u8 = 1;
const TAG_PUT: u8 = 2;
const TAG_RECORD: u8 = 3;
const TAG_KEY_EVENT: u8 = 4;
const TAG_SECRETS: u8 = 5;
const TAG_STORAGE: u8 = 6;
const TAG_MEMBERSHIP: u8 = 7;

impl Payload {
    /// A short name for logs and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            Payload::Memo(_) => "memo",
            Payload::Put { .. } => "put",
            Payload::Record { .. } => "record",
            Payload::KeyEvent(_) => "key_event",
            Payload::Secrets(op) => op.kind(),
            Payload::Storage(op) => op.kind(),
            Payload::Membership(op) => op.kind(),
        }
    }

    /// The value this payload carries beside the log, if any (see [`crate::Detachable`]).
    pub fn detachable(&self) -> Option<&crate::Detachable> {
        match self {
            Payload::Secrets(op) => op.detachable(),
            Payload::Storage(op) => op.detachable(),
            _ => None,
        }
    }

    /// The value this payload carries beside the log, to attach or detach it.
    pub fn detachable_mut(&mut self) -> Option<&mut crate::Detachable> {
        match self {
            Payload::Secrets(op) => op.detachable_mut(),
            Payload::Storage(op) => op.detachable_mut(),
            _ => None,
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
            Payload::Secrets(op) => {
                TAG_SECRETS.write(buf);
                op.write(buf);
            }
            Payload::Storage(op) => {
                TAG_STORAGE.write(buf);
                op.write(buf);
            }
            Payload::Membership(op) => {
                TAG_MEMBERSHIP.write(buf);
                op.write(buf);
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
            Payload::Secrets(op) => op.encode_size(),
            Payload::Storage(op) => op.encode_size(),
            Payload::Membership(op) => op.encode_size(),
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
            TAG_SECRETS => Ok(Payload::Secrets(Box::new(crate::secrets::SecretsOp::read(
                buf,
            )?))),
            TAG_STORAGE => Ok(Payload::Storage(Box::new(crate::storage::StorageOp::read(
                buf,
            )?))),
            TAG_MEMBERSHIP => Ok(Payload::Membership(Box::new(
                crate::membership::MembershipOp::read(buf)?,
            ))),
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

/// The largest KERI identifier prefix a transaction may name, in bytes of qb64.
pub const MAX_PREFIX_BYTES: usize = 64;

/// Most keys that may sign one identifier-signed transaction.
pub const MAX_TX_SIGNERS: usize = 16;

/// One signing key of an identifier: its position in the identifier's current key list, and
/// the key itself.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IndexedKey {
    /// Index into the identifier's current signing keys (`k` of its latest establishment
    /// event).
    pub index: u32,
    /// The ed25519 key at that index.
    pub key: PublicKey,
}

/// Who sends a transaction and what must sign it.
///
/// The sender owns the nonces a transaction uses and the key-value namespace it writes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Sender {
    /// A raw ed25519 key, which signs alone: for bootstrapping, nodes and scripts.
    Key(PublicKey),
    /// A KERI identifier, signing with keys of its current key state. The envelope names the
    /// keys (so signatures can be checked without state); the state machine then checks that
    /// they are the identifier's current keys and meet its signing threshold, at the height
    /// where the transaction executes.
    Identifier {
        /// The identifier (qb64 prefix).
        prefix: String,
        /// The signing keys, in strictly increasing index order; one signature each.
        signers: Vec<IndexedKey>,
    },
}

impl Sender {
    /// The keys whose signatures the transaction carries, in signature order.
    pub fn keys(&self) -> Vec<&PublicKey> {
        match self {
            Sender::Key(key) => vec![key],
            Sender::Identifier { signers, .. } => signers.iter().map(|s| &s.key).collect(),
        }
    }

    /// The envelope version this sender is encoded with.
    pub fn version(&self) -> u8 {
        match self {
            Sender::Key(_) => TX_VERSION_KEY,
            Sender::Identifier { .. } => TX_VERSION_IDENTIFIER,
        }
    }

    /// The identifier prefix, for an identifier sender.
    pub fn prefix(&self) -> Option<&str> {
        match self {
            Sender::Key(_) => None,
            Sender::Identifier { prefix, .. } => Some(prefix),
        }
    }
}

/// Hex for a key, the qb64 prefix for an identifier.
impl std::fmt::Display for Sender {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Sender::Key(key) => f.write_str(&hex::encode(key.as_ref())),
            Sender::Identifier { prefix, .. } => f.write_str(prefix),
        }
    }
}

/// An unsigned transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Transaction {
    /// Who sends it; also decides the envelope version.
    pub sender: Sender,
    /// A number the sender never uses twice; replays of a used nonce are rejected.
    pub nonce: u64,
    /// Block time (ms since the Unix epoch) after which the transaction is void.
    pub expiry_ms: u64,
    /// What to do.
    pub payload: Payload,
}

impl Write for Transaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.sender.version().write(buf);
        match &self.sender {
            Sender::Key(key) => key.write(buf),
            Sender::Identifier { prefix, signers } => {
                prefix.as_bytes().to_vec().write(buf);
                (signers.len() as u8).write(buf);
                for signer in signers {
                    UInt(signer.index).write(buf);
                    signer.key.write(buf);
                }
            }
        }
        self.nonce.write(buf);
        self.expiry_ms.write(buf);
        self.payload.write(buf);
    }
}

impl EncodeSize for Transaction {
    fn encode_size(&self) -> usize {
        let sender = match &self.sender {
            Sender::Key(key) => key.encode_size(),
            Sender::Identifier { prefix, signers } => {
                prefix.as_bytes().to_vec().encode_size()
                    + 1
                    + signers
                        .iter()
                        .map(|s| UInt(s.index).encode_size() + s.key.encode_size())
                        .sum::<usize>()
            }
        };
        1 + sender + 8 + 8 + self.payload.encode_size()
    }
}

fn read_identifier_sender(buf: &mut impl Buf) -> Result<Sender, CodecError> {
    let prefix = read_bytes(buf, MAX_PREFIX_BYTES)?;
    if prefix.is_empty()
        || !prefix
            .iter()
            .all(|b| b.is_ascii_alphanumeric() || *b == b'-' || *b == b'_')
    {
        return Err(CodecError::Invalid(
            "Sender::Identifier",
            "prefix must be non-empty qb64 (base64url characters)",
        ));
    }
    let prefix = String::from_utf8(prefix).expect("base64url characters are UTF-8");
    let count = usize::from(u8::read(buf)?);
    if count == 0 || count > MAX_TX_SIGNERS {
        return Err(CodecError::Invalid(
            "Sender::Identifier",
            "between 1 and 16 signing keys",
        ));
    }
    let mut signers: Vec<IndexedKey> = Vec::with_capacity(count);
    for _ in 0..count {
        let index = UInt::<u32>::read(buf)?.0;
        if signers.last().is_some_and(|last| last.index >= index) {
            return Err(CodecError::Invalid(
                "Sender::Identifier",
                "key indices must strictly increase",
            ));
        }
        signers.push(IndexedKey {
            index,
            key: PublicKey::read(buf)?,
        });
    }
    Ok(Sender::Identifier { prefix, signers })
}

impl Read for Transaction {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let sender = match u8::read(buf)? {
            TX_VERSION_KEY => Sender::Key(PublicKey::read(buf)?),
            TX_VERSION_IDENTIFIER => read_identifier_sender(buf)?,
            _ => return Err(CodecError::Invalid("Transaction", "unsupported version")),
        };
        Ok(Transaction {
            sender,
            nonce: u64::read(buf)?,
            expiry_ms: u64::read(buf)?,
            payload: Payload::read(buf)?,
        })
    }
}

impl Transaction {
    /// The transaction id: a hash of the committed encoding.
    pub fn id(&self) -> TxId {
        hash_parts(&[b"welkin/txid/v1", &self.committed_encoding()])
    }

    /// The bytes every signer signs: the cluster id, then the committed encoding.
    pub fn signing_message(&self, cluster_id: &Digest) -> Vec<u8> {
        let committed = self.committed_encoding();
        let mut message = Vec::with_capacity(32 + committed.len());
        message.extend_from_slice(cluster_id.as_ref());
        message.extend_from_slice(&committed);
        message
    }

    /// The encoding that ids, signatures, block digests and log leaves cover: the
    /// transaction with its [`crate::Detachable`] value (if any) as its digest only, so that
    /// dropping the bytes changes none of them.
    pub fn committed_encoding(&self) -> Vec<u8> {
        match self.payload.detachable() {
            Some(value) if value.is_attached() => self.detach().encode().to_vec(),
            _ => self.encode().to_vec(),
        }
    }

    /// This transaction with its detachable value (if any) dropped.
    pub fn detach(&self) -> Transaction {
        Transaction {
            sender: self.sender.clone(),
            nonce: self.nonce,
            expiry_ms: self.expiry_ms,
            payload: match &self.payload {
                Payload::Secrets(op) => Payload::Secrets(Box::new(op.detach())),
                Payload::Storage(op) => {
                    let mut op = op.as_ref().clone();
                    if let Some(value) = op.detachable_mut() {
                        *value = value.detach();
                    }
                    Payload::Storage(Box::new(op))
                }
                other => other.clone(),
            },
        }
    }

    /// Signs this transaction for the cluster `cluster_id` with the sender's one key.
    ///
    /// # Panics
    /// Panics unless the sender names exactly one key and it is `key`'s.
    pub fn sign(self, key: &PrivateKey, cluster_id: &Digest) -> SignedTransaction {
        self.sign_all(std::slice::from_ref(key), cluster_id)
    }

    /// Signs with one private key per key the sender names, in the same order.
    ///
    /// # Panics
    /// Panics if `keys` does not match [`Sender::keys`] one to one.
    pub fn sign_all(self, keys: &[PrivateKey], cluster_id: &Digest) -> SignedTransaction {
        let expected = self.sender.keys();
        assert_eq!(
            expected.len(),
            keys.len(),
            "one private key per signing key"
        );
        let message = self.signing_message(cluster_id);
        let signatures = keys
            .iter()
            .zip(expected)
            .map(|(key, public)| {
                assert_eq!(
                    &key.public_key(),
                    public,
                    "signing keys must match the sender's keys"
                );
                key.sign(namespace::TX, &message)
            })
            .collect();
        SignedTransaction::new(self, signatures)
    }
}

/// A transaction with its signatures. The id is computed once, when built or decoded.
#[derive(Clone, Debug)]
pub struct SignedTransaction {
    /// The transaction.
    pub tx: Transaction,
    /// One ed25519 signature per key of [`Sender::keys`], in that order.
    pub signatures: Vec<Signature>,
    id: TxId,
}

impl PartialEq for SignedTransaction {
    fn eq(&self, other: &Self) -> bool {
        self.tx == other.tx && self.signatures == other.signatures
    }
}

impl Eq for SignedTransaction {}

impl SignedTransaction {
    /// Pairs a transaction with its signatures (not checked here; see [`Self::verify`]).
    ///
    /// # Panics
    /// Panics if there is not one signature per signing key.
    pub fn new(tx: Transaction, signatures: Vec<Signature>) -> Self {
        assert_eq!(
            tx.sender.keys().len(),
            signatures.len(),
            "one signature per signing key"
        );
        let id = tx.id();
        Self { tx, signatures, id }
    }

    /// The transaction id.
    pub fn id(&self) -> TxId {
        self.id
    }

    /// Whether the value it carries beside the log (if any) is attached: a transaction
    /// that reaches the cluster must be complete; one read back from the archive or the log
    /// after its value was destroyed is not.
    pub fn is_complete(&self) -> bool {
        self.tx
            .payload
            .detachable()
            .is_none_or(crate::Detachable::is_attached)
    }

    /// This transaction with its detachable value dropped: what the audit log and the block
    /// archive keep. The id and signatures are unchanged.
    pub fn detach(&self) -> SignedTransaction {
        Self {
            tx: self.tx.detach(),
            signatures: self.signatures.clone(),
            id: self.id,
        }
    }

    /// The encoding a block digest covers (see [`Transaction::committed_encoding`]).
    pub fn committed_encoding(&self) -> Vec<u8> {
        match self.tx.payload.detachable() {
            Some(value) if value.is_attached() => self.detach().encode().to_vec(),
            _ => self.encode().to_vec(),
        }
    }

    /// Checks every signature for the cluster `cluster_id`. For an identifier sender this
    /// says only that the named keys signed; whether they are the identifier's current keys
    /// is for the state machine to decide.
    pub fn verify(&self, cluster_id: &Digest) -> Result<(), TxError> {
        let message = self.tx.signing_message(cluster_id);
        let all = self
            .tx
            .sender
            .keys()
            .into_iter()
            .zip(&self.signatures)
            .all(|(key, signature)| key.verify(namespace::TX, &message, signature));
        if all {
            Ok(())
        } else {
            Err(TxError::BadSignature(self.tx.sender.to_string()))
        }
    }

    /// Checks many transactions' signatures at once: one ed25519 batch verification (about
    /// twice as fast as one by one), falling back to single checks to find the bad ones if it
    /// fails. `rng` must be unpredictable to whoever produced the transactions.
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
        // One batch entry per (transaction, key, signature).
        let entries: Vec<(usize, &PublicKey, &Signature)> = txs
            .iter()
            .enumerate()
            .flat_map(|(i, t)| {
                t.tx.sender
                    .keys()
                    .into_iter()
                    .zip(&t.signatures)
                    .map(move |(key, signature)| (i, key, signature))
            })
            .collect();
        let all_valid = PublicKey::verify_batch(
            rng,
            &entries,
            |_, &(i, public_key, signature)| BatchEntry {
                namespace: namespace::TX,
                message: &messages[i],
                public_key,
                signature,
            },
            &commonware_parallel::Sequential,
        );
        if all_valid {
            return vec![true; txs.len()];
        }
        txs.iter()
            .zip(&messages)
            .map(|(t, m)| {
                t.tx.sender
                    .keys()
                    .into_iter()
                    .zip(&t.signatures)
                    .all(|(key, signature)| key.verify(namespace::TX, m, signature))
            })
            .collect()
    }

    /// Decodes a transaction from untrusted bytes, enforcing every limit.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TxError> {
        if bytes.len() > MAX_TX_BYTES {
            return Err(TxError::TooLarge(bytes.len()));
        }
        if let Some(&version) = bytes.first()
            && version != TX_VERSION_KEY
            && version != TX_VERSION_IDENTIFIER
        {
            return Err(TxError::UnsupportedVersion(version));
        }
        crate::decode::<Self>(bytes).map_err(|e| TxError::Malformed(e.to_string()))
    }
}

impl Write for SignedTransaction {
    fn write(&self, buf: &mut impl BufMut) {
        self.tx.write(buf);
        for signature in &self.signatures {
            signature.write(buf);
        }
    }
}

impl EncodeSize for SignedTransaction {
    fn encode_size(&self) -> usize {
        self.tx.encode_size()
            + self
                .signatures
                .iter()
                .map(EncodeSize::encode_size)
                .sum::<usize>()
    }
}

impl Read for SignedTransaction {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let tx = Transaction::read(buf)?;
        let signatures = (0..tx.sender.keys().len())
            .map(|_| Signature::read(buf))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self::new(tx, signatures))
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
            sender: Sender::Key(key.public_key()),
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
    fn detaching_the_value_keeps_id_and_signature() {
        let key = PrivateKey::from_seed(8);
        let signed = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: 3,
            expiry_ms: 1_000,
            payload: Payload::Secrets(Box::new(crate::secrets::SecretsOp::KvWrite {
                mount: "secret".into(),
                path: "app".into(),
                nonce: [1; 32],
                sealed: crate::Detachable::new(vec![9; 100]),
                cas: None,
            })),
        }
        .sign(&key, &cluster());
        assert!(signed.is_complete());
        let detached = signed.detach();
        assert!(!detached.is_complete());
        assert_eq!(detached.id(), signed.id());
        assert_eq!(detached.committed_encoding(), signed.committed_encoding());
        assert!(detached.encode().len() < signed.encode().len());
        // Decoded from its (shorter) bytes, it keeps the id and still verifies.
        let decoded = SignedTransaction::from_bytes(&detached.encode()).expect("decodes");
        assert_eq!(decoded.id(), signed.id());
        decoded
            .verify(&cluster())
            .expect("verifies without the value");
        // Other bytes under the same digest do not attach.
        let mut other = decoded.clone();
        let slot = other.tx.payload.detachable_mut().expect("a value");
        assert!(!slot.attach(vec![8; 100]));
        assert!(slot.attach(vec![9; 100]));
        assert_eq!(other, signed);
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
            sender: Sender::Key(key.public_key()),
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
        forged[5] = SignedTransaction::new(forged[5].tx.clone(), txs[4].signatures.clone());
        let refs: Vec<_> = forged.iter().collect();
        let verdicts = SignedTransaction::verify_many(&refs, &cluster(), &mut rng);
        assert_eq!(verdicts.iter().filter(|ok| !**ok).count(), 1);
        assert!(!verdicts[5]);
    }

    fn identifier_tx(keys: &[(u32, &PrivateKey)], nonce: u64) -> SignedTransaction {
        let tx = Transaction {
            sender: Sender::Identifier {
                prefix: "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4".into(),
                signers: keys
                    .iter()
                    .map(|(index, key)| IndexedKey {
                        index: *index,
                        key: key.public_key(),
                    })
                    .collect(),
            },
            nonce,
            expiry_ms: 1_000,
            payload: Payload::Memo(b"hello".to_vec()),
        };
        let private: Vec<PrivateKey> = keys.iter().map(|(_, k)| (*k).clone()).collect();
        tx.sign_all(&private, &cluster())
    }

    #[test]
    fn identifier_transactions_round_trip_and_verify_every_signature() {
        let (a, b) = (PrivateKey::from_seed(1), PrivateKey::from_seed(2));
        let signed = identifier_tx(&[(0, &a), (2, &b)], 3);
        let bytes = signed.encode();
        assert_eq!(bytes[0], TX_VERSION_IDENTIFIER);
        let decoded = SignedTransaction::from_bytes(&bytes).expect("decodes");
        assert_eq!(decoded, signed);
        decoded.verify(&cluster()).expect("both signatures verify");
        assert_eq!(
            decoded.tx.sender.to_string(),
            "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4"
        );
        // One good signature is not enough: the second is swapped for a signature by a.
        let mut forged = signed.clone();
        forged.signatures[1] = forged.signatures[0].clone();
        assert!(matches!(
            forged.verify(&cluster()),
            Err(TxError::BadSignature(_))
        ));
        let mixed = [&sample(1).1, &forged, &signed];
        assert_eq!(
            SignedTransaction::verify_many(&mixed, &cluster(), &mut commonware_utils::test_rng()),
            vec![true, false, true]
        );
    }

    #[test]
    fn claimed_key_indices_are_signed() {
        let a = PrivateKey::from_seed(1);
        let at_zero = identifier_tx(&[(0, &a)], 3);
        let at_one = identifier_tx(&[(1, &a)], 3);
        assert_ne!(at_zero.id(), at_one.id());
        // Moving a signature to another claimed index breaks it.
        let moved = SignedTransaction::new(at_one.tx.clone(), at_zero.signatures.clone());
        assert!(moved.verify(&cluster()).is_err());
    }

    #[test]
    fn identifier_senders_reject_bad_prefixes_and_key_lists() {
        let a = PrivateKey::from_seed(1);
        let good = identifier_tx(&[(0, &a)], 3).encode().to_vec();
        // Layout: version, prefix length (44), prefix, count, index, key...
        let count_at = 2 + 44;
        let malformed = |bytes: Vec<u8>, why: &str| {
            let err = SignedTransaction::from_bytes(&bytes).expect_err(why);
            assert!(matches!(err, TxError::Malformed(_)), "{why}: {err}");
        };
        let mut bad_char = good.clone();
        bad_char[5] = b'/';
        malformed(bad_char, "a prefix is base64url");
        let mut no_keys = good.clone();
        no_keys[count_at] = 0;
        malformed(no_keys, "at least one key");
        let mut too_many = good.clone();
        too_many[count_at] = (MAX_TX_SIGNERS + 1) as u8;
        malformed(too_many, "at most 16 keys");
        let b = PrivateKey::from_seed(2);
        let tx = Transaction {
            sender: Sender::Identifier {
                prefix: "Eabc".into(),
                signers: vec![
                    IndexedKey {
                        index: 1,
                        key: a.public_key(),
                    },
                    IndexedKey {
                        index: 1,
                        key: b.public_key(),
                    },
                ],
            },
            nonce: 0,
            expiry_ms: 0,
            payload: Payload::Memo(vec![]),
        };
        malformed(
            tx.sign_all(&[a, b], &cluster()).encode().to_vec(),
            "indices strictly increase",
        );
    }

    #[test]
    fn same_transaction_has_same_id_regardless_of_signature() {
        let (_, a) = sample(5);
        let other = SignedTransaction::new(a.tx.clone(), a.signatures.clone());
        assert_eq!(a.id(), other.id());
        let (_, b) = sample(6);
        assert_ne!(a.id(), b.id());
    }
}
