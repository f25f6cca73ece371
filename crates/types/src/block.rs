//! Blocks: a parent, a height, the proposer's timestamp and a list of transactions.
//!
//! ```text
//! Block := parent [32] | height u64 | timestamp_ms u64 | count varint | SignedTransaction*
//! ```
//!
//! The digest is SHA-256 over the committed encoding (the encoding with every
//! [`crate::Detachable`] value as its digest: the same bytes when no value is attached) and
//! is computed once, when the block is built or decoded; dropping a block's values keeps it. The decoder enforces [`MAX_BLOCK_TXS`] and [`MAX_BLOCK_TX_BYTES`], so
//! [`BoundedBlock::max_encode_size`] is a true bound.

use crate::{
    Digest, Hasher, SignedTransaction,
    limits::{MAX_BLOCK_TX_BYTES, MAX_BLOCK_TXS},
};
use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt, Write, varint::UInt,
};
use commonware_consensus::{BoundedBlock, Heightable, types::Height};
use commonware_cryptography::{Digestible, Hasher as _};

/// The codec configuration of a block (limits are constants, so none is needed).
pub type BlockCfg = ();

/// A block of the Welkin chain.
#[derive(Clone, Debug)]
pub struct Block {
    /// Digest of the parent block (for the genesis block: the cluster id).
    pub parent: Digest,
    /// Height: the genesis block is 0.
    pub height: u64,
    /// The proposer's clock when it built the block, in ms since the Unix epoch.
    pub timestamp_ms: u64,
    /// Transactions in execution order.
    pub txs: Vec<SignedTransaction>,
    digest: Digest,
}

impl PartialEq for Block {
    fn eq(&self, other: &Self) -> bool {
        self.digest == other.digest
    }
}

impl Eq for Block {}

impl Block {
    /// Builds a block and computes its digest.
    ///
    /// # Panics
    /// Panics if the transactions exceed the block limits (the proposer must respect them).
    pub fn new(
        parent: Digest,
        height: u64,
        timestamp_ms: u64,
        txs: Vec<SignedTransaction>,
    ) -> Self {
        assert!(
            txs.len() <= MAX_BLOCK_TXS,
            "too many transactions for one block"
        );
        let tx_bytes: usize = txs.iter().map(EncodeSize::encode_size).sum();
        assert!(
            tx_bytes <= MAX_BLOCK_TX_BYTES,
            "transactions exceed the block byte limit"
        );
        Self::sealed(parent, height, timestamp_ms, txs)
    }

    /// The genesis block of a cluster: height 0, the cluster id as parent, no transactions.
    pub fn genesis(cluster_id: Digest, timestamp_ms: u64) -> Self {
        Self::new(cluster_id, 0, timestamp_ms, Vec::new())
    }

    /// Builds a block from checked parts and computes its digest.
    fn sealed(parent: Digest, height: u64, timestamp_ms: u64, txs: Vec<SignedTransaction>) -> Self {
        let mut block = Self {
            parent,
            height,
            timestamp_ms,
            txs,
            digest: Digest::from([0u8; 32]),
        };
        block.digest = block.committed_digest();
        block
    }

    /// SHA-256 over the committed encoding: the encoding with every transaction's
    /// [`crate::Detachable`] value as its digest (the same bytes as the encoding when no
    /// value is attached), so a block keeps its digest when its values are dropped.
    fn committed_digest(&self) -> Digest {
        let mut hasher = Hasher::default();
        hasher.update(b"welkin/block/v1");
        let mut header = Vec::with_capacity(Digest::SIZE + 16 + 5);
        self.parent.write(&mut header);
        self.height.write(&mut header);
        self.timestamp_ms.write(&mut header);
        UInt(self.txs.len() as u32).write(&mut header);
        hasher.update(&header);
        for tx in &self.txs {
            hasher.update(&tx.committed_encoding());
        }
        hasher.finalize().1
    }

    /// Whether every transaction carries its detachable value: a proposal must; a block
    /// read back after a value was destroyed need not.
    pub fn is_complete(&self) -> bool {
        self.txs.iter().all(SignedTransaction::is_complete)
    }

    /// This block with every detachable value dropped (same digest): what the block
    /// archive keeps.
    pub fn detach(&self) -> Block {
        Block {
            parent: self.parent,
            height: self.height,
            timestamp_ms: self.timestamp_ms,
            txs: self.txs.iter().map(SignedTransaction::detach).collect(),
            digest: self.digest,
        }
    }

    /// Attaches `value` to the transaction at `index` if it is the value that transaction
    /// commits to; returns whether it was.
    pub fn attach(&mut self, index: usize, value: Vec<u8>) -> bool {
        self.txs
            .get_mut(index)
            .and_then(|tx| tx.tx.payload.detachable_mut())
            .is_some_and(|slot| slot.attach(value))
    }
}

impl Write for Block {
    fn write(&self, buf: &mut impl BufMut) {
        self.parent.write(buf);
        self.height.write(buf);
        self.timestamp_ms.write(buf);
        UInt(self.txs.len() as u32).write(buf);
        for tx in &self.txs {
            tx.write(buf);
        }
    }
}

impl EncodeSize for Block {
    fn encode_size(&self) -> usize {
        Digest::SIZE
            + 16
            + UInt(self.txs.len() as u32).encode_size()
            + self.txs.iter().map(EncodeSize::encode_size).sum::<usize>()
    }
}

impl Read for Block {
    type Cfg = BlockCfg;

    fn read_cfg(buf: &mut impl Buf, _: &BlockCfg) -> Result<Self, CodecError> {
        let start = buf.remaining();
        let parent = Digest::read(buf)?;
        let height = u64::read(buf)?;
        let timestamp_ms = u64::read(buf)?;
        let count: u32 = UInt::read(buf)?.into();
        let count = count as usize;
        if count > MAX_BLOCK_TXS {
            return Err(CodecError::InvalidLength(count));
        }
        let header = start - buf.remaining();
        let mut txs = Vec::with_capacity(count);
        for _ in 0..count {
            txs.push(SignedTransaction::read(buf)?);
            if start - buf.remaining() - header > MAX_BLOCK_TX_BYTES {
                return Err(CodecError::Invalid(
                    "Block",
                    "transactions exceed the byte limit",
                ));
            }
        }
        Ok(Self::sealed(parent, height, timestamp_ms, txs))
    }
}

impl Digestible for Block {
    type Digest = Digest;

    fn digest(&self) -> Digest {
        self.digest
    }
}

impl Heightable for Block {
    fn height(&self) -> Height {
        Height::new(self.height)
    }
}

impl commonware_consensus::Block for Block {
    fn parent(&self) -> Digest {
        self.parent
    }
}

impl BoundedBlock for Block {
    fn max_encode_size(_: &BlockCfg) -> usize {
        Digest::SIZE + 16 + 5 + MAX_BLOCK_TX_BYTES
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Payload, PrivateKey, Transaction, hash_parts, tx::Sender};
    use commonware_codec::{DecodeExt as _, Encode as _};
    use commonware_cryptography::Signer as _;

    fn tx(nonce: u64) -> SignedTransaction {
        let key = PrivateKey::from_seed(3);
        Transaction {
            sender: Sender::Key(key.public_key()),
            nonce,
            expiry_ms: 10,
            payload: Payload::Memo(vec![nonce as u8; 10]),
        }
        .sign(&key, &hash_parts(&[b"c"]))
    }

    #[test]
    fn round_trip_preserves_digest() {
        let block = Block::new(hash_parts(&[b"p"]), 3, 99, vec![tx(1), tx(2)]);
        let decoded = Block::decode(block.encode()).expect("decodes");
        assert_eq!(decoded.digest(), block.digest());
        assert_eq!(decoded.txs, block.txs);
        assert_eq!(decoded.height, 3);
        assert!(block.encode_size() <= Block::max_encode_size(&()));
    }

    #[test]
    fn dropping_values_keeps_the_digest() {
        let key = PrivateKey::from_seed(4);
        let write = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: 1,
            expiry_ms: 10,
            payload: Payload::Secrets(Box::new(crate::secrets::SecretsOp::WrapStore {
                key: key.public_key(),
                ttl_ms: 1,
                path: "p".into(),
                nonce: [2; 32],
                sealed: crate::Detachable::new(vec![5; 64]),
            })),
        }
        .sign(&key, &hash_parts(&[b"c"]));
        let block = Block::new(hash_parts(&[b"p"]), 3, 99, vec![tx(1), write]);
        assert!(block.is_complete());
        let detached = block.detach();
        assert!(!detached.is_complete());
        let decoded = Block::decode(detached.encode()).expect("decodes");
        assert_eq!(decoded.digest(), block.digest());
        let mut rejoined = decoded;
        assert!(!rejoined.attach(0, vec![5; 64]), "a memo has no value");
        assert!(!rejoined.attach(1, vec![6; 64]), "not the committed value");
        assert!(rejoined.attach(1, vec![5; 64]));
        assert!(rejoined.is_complete());
        assert_eq!(rejoined.txs, block.txs);
    }

    #[test]
    fn digest_changes_with_every_field() {
        let parent = hash_parts(&[b"p"]);
        let base = Block::new(parent, 1, 1, vec![tx(1)]);
        assert_ne!(
            base.digest(),
            Block::new(parent, 2, 1, vec![tx(1)]).digest()
        );
        assert_ne!(
            base.digest(),
            Block::new(parent, 1, 2, vec![tx(1)]).digest()
        );
        assert_ne!(
            base.digest(),
            Block::new(parent, 1, 1, vec![tx(2)]).digest()
        );
        assert_ne!(
            base.digest(),
            Block::new(hash_parts(&[b"q"]), 1, 1, vec![tx(1)]).digest()
        );
    }

    #[test]
    fn rejects_too_many_transactions_and_garbage() {
        let mut bytes = Vec::new();
        hash_parts(&[b"p"]).write(&mut bytes);
        1u64.write(&mut bytes);
        1u64.write(&mut bytes);
        UInt((MAX_BLOCK_TXS + 1) as u32).write(&mut bytes);
        assert!(crate::decode::<Block>(&bytes).is_err());
        assert!(crate::decode::<Block>(&[0u8; 7]).is_err());
    }
}
