//! Mempool gossip: transactions accepted by one node's API are sent, in batches, to all peers,
//! which put each through the same admission as the API (signature, size, expiry and TTL,
//! replay, authority, mempool limits) before it enters their own pool. A node therefore holds
//! (and can propose) every transaction any honest node accepted, and verifies each signature
//! once, on entry. A peer that relays what no honest node relays (an undecodable batch, a bad
//! signature, an oversized transaction, an expiry beyond TTL and clock skew) is blocked.

use crate::{
    admission::Admission,
    application::now_ms,
    penalty::{Offence, Penalties},
    timeline::{Timeline, TxStage},
};
use bytes::BufMut;
use commonware_codec::{
    Buf, DecodeExt as _, Encode, EncodeSize, Error as CodecError, Read, ReadExt, Write,
    varint::UInt,
};
use commonware_p2p::{Receiver, Recipients, Sender};

use futures::{StreamExt, channel::mpsc};
use std::time::Duration;
use tracing::debug;
use welkin_types::{PublicKey, SignedTransaction};

/// Most transactions in one gossip message.
pub(crate) const MAX_GOSSIP_BATCH: usize = 1024;
/// Most bytes of transactions in one gossip message (well under the p2p message limit).
pub(crate) const MAX_GOSSIP_BYTES: usize = 1024 * 1024;
/// Transactions waiting to be gossiped before new ones are dropped from gossip (they stay in
/// the local pool and are still proposed by this node).
pub(crate) const OUTBOX_CAPACITY: usize = 65_536;
/// Gossip messages a node sends per second at most, on average (half the channel's quota): a
/// quiet node sends each transaction at once; a busy one batches what arrives meanwhile.
pub(crate) const GOSSIP_RATE: f64 = 256.0;
/// Gossip messages a node may send back to back before [`GOSSIP_RATE`] applies.
pub(crate) const GOSSIP_BURST: f64 = 16.0;

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
pub(crate) struct Gossip {
    outbox: mpsc::Sender<SignedTransaction>,
}

impl Gossip {
    /// Queues `tx` for gossip; drops it from gossip if the outbox is full.
    pub(crate) fn push(&self, tx: SignedTransaction) {
        let _ = self.outbox.clone().try_send(tx);
    }
}

/// Starts the outbound batcher and the inbound admission of peers' batches.
pub(crate) fn start<E, S, R>(
    context: E,
    (mut sender, mut receiver): (S, R),
    admission: Admission<E>,
    penalties: Penalties,
    timeline: Timeline,
) -> Gossip
where
    E: crate::store::Runtime,
    S: Sender<PublicKey = PublicKey>,
    R: Receiver<PublicKey = PublicKey>,
{
    let (outbox, mut inbox) = mpsc::channel::<SignedTransaction>(OUTBOX_CAPACITY);
    context.child("out").spawn(move |context| async move {
        // A token bucket: one token per message, refilled at `GOSSIP_RATE`.
        let mut tokens = GOSSIP_BURST;
        let mut refilled = context.current();
        while let Some(first) = inbox.next().await {
            let refill = |tokens: &mut f64, refilled: &mut std::time::SystemTime| {
                let now = context.current();
                let elapsed = now.duration_since(*refilled).unwrap_or_default();
                *tokens = (*tokens + elapsed.as_secs_f64() * GOSSIP_RATE).min(GOSSIP_BURST);
                *refilled = now;
            };
            refill(&mut tokens, &mut refilled);
            if tokens < 1.0 {
                // Out of tokens: wait for one while more transactions queue up for this batch.
                let wait = (1.0 - tokens) / GOSSIP_RATE;
                context.sleep(Duration::from_secs_f64(wait)).await;
                refill(&mut tokens, &mut refilled);
            }
            tokens -= 1.0;
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
            let ids: Vec<_> = batch.iter().map(SignedTransaction::id).collect();
            sender.send(Recipients::All, Batch(batch).encode(), false);
            timeline.reached(TxStage::Gossiped, &ids, crate::timeline::now(&context));
        }
    });
    // Peers' batches are checked (signatures first) on a thread of their own, like the API's
    // submissions: a flood relayed by peers then competes with consensus for CPU only, never
    // for the consensus runtime's threads.
    context
        .child("in")
        .dedicated()
        .spawn(move |context| async move {
            while let Ok((from, bytes)) = receiver.recv().await {
                let txs = match Batch::decode(bytes) {
                    Ok(Batch(txs)) => txs,
                    Err(error) => {
                        penalties.block(
                            from,
                            Offence::Gossip,
                            &format!("undecodable gossip batch: {error}"),
                        );
                        continue;
                    }
                };
                let verdicts = admission.admit(&txs, now_ms(&context)).await;
                let mut offence = None;
                for (tx, verdict) in txs.iter().zip(&verdicts) {
                    let Err(error) = verdict else { continue };
                    debug!(%from, id = %tx.id(), %error, "gossiped transaction refused");
                    if offence.is_none() && error.proves_faulty_relay(admission.params()) {
                        offence = Some(format!("relayed transaction {}: {error}", tx.id()));
                    }
                }
                if let Some(reason) = offence {
                    penalties.block(from, Offence::Gossip, &reason);
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
