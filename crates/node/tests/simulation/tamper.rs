//! Byzantine senders: a node runs the real node code, but what it sends on one channel is
//! rewritten on the way out, so the behaviour under test is exactly one lie.

use commonware_actor::{Feedback, Unreliable};
use commonware_codec::Encode as _;
use commonware_cryptography::bls12381::primitives::{group::Share, ops::threshold};
use commonware_p2p::{CheckedSender, LimitedSender, Recipients, simulated};
use commonware_runtime::{IoBuf, IoBufs};
use std::{sync::Arc, time::SystemTime};
use welkin_node::{
    CheckpointMessage, GossipBatch as Batch, ReleaseBatch, TimeMessage, TransitMessage, channel,
};
use welkin_types::{Digest, PublicKey, TxId, Variant, namespace};

use crate::harness::Ctx;

/// The simulated network's sender.
type Inner = simulated::Sender<PublicKey, Ctx>;
/// Rewrites an outgoing message.
type Rewrite = Arc<dyn Fn(&[u8]) -> Vec<u8> + Send + Sync>;
/// Rewrites an outgoing message for its recipients.
type RewriteFor = Arc<dyn Fn(&[PublicKey], &[u8]) -> Vec<u8> + Send + Sync>;

/// What a byzantine node lies about.
#[derive(Clone)]
pub(crate) enum Lie {
    /// Its checkpoint partials are signed over junk, under its own index and with its valid
    /// cosignature (so only the pairing check can tell).
    JunkPartials(Share),
    /// Every transaction it gossips carries a corrupted signature.
    BadGossip,
    /// Its release envelopes hold partials signed over junk, sealed properly to the reader
    /// (so only the partial's pairing check can tell). It learns each read's reader key and
    /// target from the map, as a byzantine node learns them from the block.
    WrongReleases {
        /// Its own key share.
        share: Share,
        /// The cluster id, bound in every envelope.
        cluster_id: Digest,
        /// Read id to (reader key, target).
        reads: Reads,
    },
    /// It sends no release envelopes at all.
    SilentReleases,
    /// Its key generation shares (round-2 packages) are a wrong, well-formed scalar.
    BadKeyShares,
    /// Its signature shares are a wrong, well-formed scalar.
    BadSignatureShares,
    /// It never answers a sign request (each share it would send becomes a harmless
    /// request for one nonce), so coordinators must time it out.
    SilentSignatures,
    /// Its audit proofs and repair blocks have one byte flipped (the proofs still decode:
    /// only checking them against the shard roots can tell).
    ForgedStorage,
    /// Its key generation dealing to `victim` carries a share that does not match its
    /// commitment (one bit flipped); every other dealing is honest.
    BadDealing {
        /// The member that gets the bad share.
        victim: PublicKey,
        /// How many members the cluster has (the decoder's bound).
        members: u32,
    },
    /// Its time readings tell each coordinator another time: 700 ms more per position of
    /// the recipient, properly signed (so only the other clocks can tell).
    TimePerPeer {
        /// Its own identity key, to sign the lies.
        key: Box<welkin_types::PrivateKey>,
        /// The cluster id, bound in every reading.
        cluster_id: Digest,
        /// The members, in genesis order.
        members: Vec<PublicKey>,
    },
}

/// A well-formed welkin-frost scalar encoding (version 1, the scalar one) that is not the
/// share the protocol asks for.
fn wrong_scalar() -> Vec<u8> {
    let mut bytes = vec![0u8; 33];
    bytes[0] = 1;
    bytes[1] = 1;
    bytes
}

/// What a byzantine releaser knows of each read: its reader key and target.
pub(crate) type Reads = Arc<std::sync::Mutex<std::collections::BTreeMap<TxId, ([u8; 32], Digest)>>>;

impl Lie {
    /// The channel the lie is told on, and how, knowing the recipients.
    fn rewrite_for(&self) -> (u64, RewriteFor) {
        if let Lie::TimePerPeer {
            key,
            cluster_id,
            members,
        } = self.clone()
        {
            return (
                channel::TIME,
                Arc::new(move |to: &[PublicKey], bytes: &[u8]| {
                    let Ok(TimeMessage::Reading(mut reading)) =
                        welkin_types::decode::<TimeMessage>(bytes)
                    else {
                        return bytes.to_vec();
                    };
                    let Some(position) =
                        to.first().and_then(|k| members.iter().position(|m| m == k))
                    else {
                        return bytes.to_vec();
                    };
                    reading.reading.midpoint_ns += 700_000_000 * (position as u64 + 1);
                    let lie = welkin_time::SignedReading::sign(
                        &key,
                        &cluster_id,
                        reading.signer,
                        reading.root,
                        reading.reading,
                    );
                    TimeMessage::Reading(lie).encode().to_vec()
                }),
            );
        }
        if let Lie::BadDealing { victim, members } = self.clone() {
            return (
                channel::DKG,
                Arc::new(move |to: &[PublicKey], bytes: &[u8]| {
                    let max = std::num::NonZeroU32::new(members).expect("members");
                    let is_dealing = matches!(
                        welkin_dkg::DkgMessage::from_bytes(bytes, max),
                        Ok(welkin_dkg::DkgMessage::Dealing { .. })
                    );
                    let mut out = bytes.to_vec();
                    if is_dealing && to.first() == Some(&victim) {
                        // The share is the message's last field, a big-endian scalar.
                        let last = out.len() - 1;
                        out[last] ^= 1;
                    }
                    out
                }),
            );
        }
        let (ch, rewrite) = self.rewrite();
        (
            ch,
            Arc::new(move |_: &[PublicKey], bytes: &[u8]| rewrite(bytes)),
        )
    }

    /// The channel the lie is told on, and how.
    fn rewrite(&self) -> (u64, Rewrite) {
        match self.clone() {
            Lie::TimePerPeer { .. } | Lie::BadDealing { .. } => {
                unreachable!("told per recipient by rewrite_for")
            }
            Lie::JunkPartials(share) => (
                channel::CHECKPOINT,
                Arc::new(move |bytes: &[u8]| {
                    match welkin_types::decode::<CheckpointMessage>(bytes) {
                        Ok(CheckpointMessage::Partial {
                            height,
                            cosignature,
                            ..
                        }) => CheckpointMessage::Partial {
                            height,
                            partial: threshold::sign_message::<Variant>(
                                &share,
                                namespace::CHECKPOINT,
                                &height.to_be_bytes(),
                            ),
                            cosignature,
                        }
                        .encode()
                        .to_vec(),
                        _ => bytes.to_vec(),
                    }
                }),
            ),
            Lie::BadGossip => (
                channel::GOSSIP,
                Arc::new(|bytes: &[u8]| match welkin_types::decode::<Batch>(bytes) {
                    Ok(Batch(mut txs)) => {
                        for tx in &mut txs {
                            let mut signature = tx.signatures[0].encode().to_vec();
                            signature[0] ^= 1;
                            tx.signatures[0] =
                                welkin_types::decode(&signature).expect("same length");
                        }
                        Batch(txs).encode().to_vec()
                    }
                    Err(_) => bytes.to_vec(),
                }),
            ),
            Lie::WrongReleases {
                share,
                cluster_id,
                reads,
            } => (
                channel::RELEASE,
                Arc::new(move |bytes: &[u8]| {
                    let Ok(mut batch) = welkin_types::decode::<ReleaseBatch>(bytes) else {
                        return bytes.to_vec();
                    };
                    let reads = reads.lock().expect("reads lock");
                    let mut rng = commonware_utils::test_rng();
                    for (id, envelope) in &mut batch.envelopes {
                        let Some((reader, target)) = reads.get(id) else {
                            continue;
                        };
                        let junk =
                            welkin_sealed::partial(&share, &welkin_types::hash_parts(&[b"junk"]));
                        let context = welkin_sealed::ReleaseContext {
                            cluster_id,
                            read_id: *id,
                            target: *target,
                        };
                        *envelope = welkin_sealed::seal_partial(&mut rng, reader, &context, &junk)
                            .expect("a valid reader key");
                    }
                    batch.encode().to_vec()
                }),
            ),
            Lie::ForgedStorage => (
                channel::STORAGE,
                Arc::new(|bytes: &[u8]| {
                    use welkin_node::objects::{Answer, StorageMessage};
                    let Ok(StorageMessage::Answer { id, mut answer }) =
                        welkin_types::decode::<StorageMessage>(bytes)
                    else {
                        return bytes.to_vec();
                    };
                    match &mut answer {
                        Answer::Proof(proof) => {
                            let at = proof.len() / 2;
                            proof[at] ^= 0x40;
                        }
                        Answer::Block { bytes, .. } if !bytes.is_empty() => bytes[0] ^= 1,
                        _ => {}
                    }
                    StorageMessage::Answer { id, answer }.encode().to_vec()
                }),
            ),
            Lie::SilentReleases => (
                channel::RELEASE,
                Arc::new(|_: &[u8]| ReleaseBatch::default().encode().to_vec()),
            ),
            Lie::BadKeyShares => (
                channel::TRANSIT,
                Arc::new(
                    |bytes: &[u8]| match welkin_types::decode::<TransitMessage>(bytes) {
                        Ok(TransitMessage::Round2 {
                            key_id,
                            version,
                            attempt,
                            ..
                        }) => TransitMessage::Round2 {
                            key_id,
                            version,
                            attempt,
                            package: wrong_scalar(),
                        }
                        .encode()
                        .to_vec(),
                        _ => bytes.to_vec(),
                    },
                ),
            ),
            Lie::SilentSignatures => (
                channel::TRANSIT,
                Arc::new(
                    |bytes: &[u8]| match welkin_types::decode::<TransitMessage>(bytes) {
                        Ok(TransitMessage::SignShare { .. }) => {
                            TransitMessage::NonceAsk { count: 1 }.encode().to_vec()
                        }
                        _ => bytes.to_vec(),
                    },
                ),
            ),
            Lie::BadSignatureShares => (
                channel::TRANSIT,
                Arc::new(
                    |bytes: &[u8]| match welkin_types::decode::<TransitMessage>(bytes) {
                        Ok(TransitMessage::SignShare { session, .. }) => {
                            TransitMessage::SignShare {
                                session,
                                share: wrong_scalar(),
                            }
                            .encode()
                            .to_vec()
                        }
                        _ => bytes.to_vec(),
                    },
                ),
            ),
        }
    }
}

/// A channel sender that may rewrite what it sends.
#[derive(Clone)]
pub(crate) struct Tampered {
    inner: Inner,
    rewrite: Option<RewriteFor>,
}

impl Tampered {
    /// Wraps the sender of channel `ch`; it lies if `lie` is told on that channel.
    pub(crate) fn new(inner: Inner, ch: u64, lie: Option<&Lie>) -> Self {
        let rewrite = lie
            .map(Lie::rewrite_for)
            .filter(|(on, _)| *on == ch)
            .map(|(_, rewrite)| rewrite);
        Self { inner, rewrite }
    }
}

impl LimitedSender for Tampered {
    type PublicKey = PublicKey;
    type Checked<'a> = TamperedChecked<'a>;

    fn check(
        &mut self,
        recipients: Recipients<PublicKey>,
    ) -> Result<Self::Checked<'_>, SystemTime> {
        let rewrite = self.rewrite.clone();
        let inner = self.inner.check(recipients)?;
        Ok(TamperedChecked { inner, rewrite })
    }
}

/// A checked send that may be rewritten.
pub(crate) struct TamperedChecked<'a> {
    inner: <Inner as LimitedSender>::Checked<'a>,
    rewrite: Option<RewriteFor>,
}

impl CheckedSender for TamperedChecked<'_> {
    type PublicKey = PublicKey;

    fn recipients(&self) -> Vec<PublicKey> {
        self.inner.recipients()
    }

    fn send(self, message: impl Into<IoBufs> + Send, priority: bool) -> Unreliable<Feedback> {
        match self.rewrite {
            None => self.inner.send(message, priority),
            Some(rewrite) => {
                let bytes: IoBuf = message.into().coalesce();
                let to = self.inner.recipients();
                self.inner
                    .send(IoBuf::from(rewrite(&to, bytes.as_ref())), priority)
            }
        }
    }
}
