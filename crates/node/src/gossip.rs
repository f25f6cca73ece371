//! Mempool gossip: transactions accepted by one node's API are sent, in batches, to all peers,
//! which check each signature before admitting it to their own pool. A node therefore holds
//! (and can propose) every transaction any honest node accepted, and verifies each signature
//! once, on entry.

use crate::mempool::Mempool;
use bytes::BufMut;
use commonware_codec::{
    Buf, DecodeExt as _, Encode, EncodeSize, Error as CodecError, Read, ReadExt, Write,
    varint::UInt,
};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::Spawner;
use futures::{StreamExt, channel::mpsc};
use tracing::debug;
use welkin_types::{Digest, PublicKey, SignedTransaction};

/// Most transactions in one gossip message.
pub const MAX_GOSSIP_BATCH: usize = 1024;
/// Most bytes of transactions in one gossip message (well under the p2p message limit).
pub const MAX_GOSSIP_BYTES: usize = 1024 * 1024;
/// Transactions waiting to be gossiped before new ones are dropped from gossip (they stay in
/// the local pool and are still proposed by this node).
pub const OUTBOX_CAPACITY: usize = 65_536;

/// A batch of transactions on the gossip channel.
#[derive(Debug, PartialEq, Eq)]
pub struct Batch(pub Vec<SignedTransaction>);

impl Write for Batch {
    fn write(&self, buf: &mut impl BufMut) {
        UInt(self.0.len() as u32).write(buf);
        for tx in &self.0 {
            tx.write(buf);
        }
    }
}

impl EncodeSize for Batch {
    fn encode_size(&self) -> usize {
        UInt(self.0.len() as u32).encode_size()
            + self.0.iter().map(EncodeSize::encode_size).sum::<usize>()
    }
}

impl Read for Batch {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let count: u32 = UInt::read(buf)?.into();
        if count as usize > MAX_GOSSIP_BATCH {
            return Err(CodecError::InvalidLength(count as usize));
        }
        let mut txs = Vec::with_capacity(count as usize);
        for _ in 0..count {
            txs.push(SignedTransaction::read(buf)?);
        }
        Ok(Batch(txs))
    }
}

/// Queues transactions for gossip.
#[derive(Clone)]
pub struct Gossip {
    outbox: mpsc::Sender<SignedTransaction>,
}

impl Gossip {
    /// Queues `tx` for gossip; drops it from gossip if the outbox is full.
    pub fn push(&self, tx: SignedTransaction) {
        let _ = self.outbox.clone().try_send(tx);
    }
}

/// Starts the outbound batcher and the inbound verifier.
pub fn start<E, S, R>(
    context: E,
    (mut sender, mut receiver): (S, R),
    mempool: Mempool,
    cluster_id: Digest,
) -> Gossip
where
    E: Spawner,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let (outbox, mut inbox) = mpsc::channel::<SignedTransaction>(OUTBOX_CAPACITY);
    context.child("out").spawn(move |_| async move {
        while let Some(first) = inbox.next().await {
            let mut bytes = first.encode_size();
            let mut batch = vec![first];
            while batch.len() < MAX_GOSSIP_BATCH
                && bytes < MAX_GOSSIP_BYTES - welkin_types::limits::MAX_TX_BYTES
            {
                match inbox.try_recv() {
                    Ok(tx) => {
                        bytes += tx.encode_size();
                        batch.push(tx);
                    }
                    _ => break,
                }
            }
            sender.send(Recipients::All, Batch(batch).encode(), false);
        }
    });
    context.child("in").spawn(move |_| async move {
        while let Ok((from, bytes)) = receiver.recv().await {
            let Ok(Batch(txs)) = Batch::decode(bytes) else {
                debug!(%from, "undecodable gossip batch");
                continue;
            };
            let fresh: Vec<SignedTransaction> = txs
                .into_iter()
                .filter(|tx| !mempool.holds_verified(tx))
                .collect();
            let refs: Vec<&SignedTransaction> = fresh.iter().collect();
            let verdicts = SignedTransaction::verify_many(
                &refs,
                &cluster_id,
                &mut commonware_utils::sys_rng(),
            );
            for (tx, ok) in fresh.into_iter().zip(verdicts) {
                if !ok {
                    debug!(%from, id = %tx.id(), "gossiped transaction with a bad signature");
                    continue;
                }
                let _ = mempool.insert(tx);
            }
        }
    });
    Gossip { outbox }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::checkpoints::CheckpointMessage;
    use commonware_cryptography::Signer as _;
    use welkin_types::{Payload, PrivateKey, Sender, Transaction, decode, hash_parts};

    #[test]
    fn peer_messages_reject_garbage_without_panicking() {
        let key = PrivateKey::from_seed(1);
        let tx = Transaction {
            sender: Sender::Key(key.public_key()),
            nonce: 1,
            expiry_ms: 1,
            payload: Payload::Memo(vec![7; 40]),
        }
        .sign(&key, &hash_parts(&[b"c"]));
        let batch = Batch(vec![tx.clone(), tx]).encode().to_vec();
        assert_eq!(decode::<Batch>(&batch).map(|b| b.0.len()).ok(), Some(2));
        for cut in 0..batch.len() {
            assert!(
                decode::<Batch>(&batch[..cut]).is_err(),
                "truncated batch at {cut} accepted"
            );
        }
        let mut too_many = Vec::new();
        UInt((MAX_GOSSIP_BATCH + 1) as u32).write(&mut too_many);
        assert!(decode::<Batch>(&too_many).is_err());
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for len in 0..2_000usize {
            let bytes: Vec<u8> = (0..len % 200)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 7;
                    seed ^= seed << 17;
                    seed as u8
                })
                .collect();
            let _ = decode::<Batch>(&bytes);
            let _ = decode::<CheckpointMessage>(&bytes);
        }
    }
}
