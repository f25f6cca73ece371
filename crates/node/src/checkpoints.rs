//! Collecting checkpoint partial signatures into certified checkpoints.
//!
//! After applying height `h`, every node signs a threshold partial over
//! (cluster id, h, state root, log size, log root) and sends it to all peers. A node verifies each partial it
//! receives against its *own* root for `h` (so a partial over a different root, from a
//! diverged or lying node, is rejected), and once it holds `t` valid partials it recovers the
//! cluster signature. Partials for heights not yet applied wait in a bounded buffer.
//! A node that sends a partial for a height its peer has already certified gets the certified
//! checkpoint back, which is how a node that was down or catching up obtains certificates.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};
use commonware_cryptography::bls12381::primitives::{
    group::Share, ops::threshold, variant::PartialSignature,
};
use commonware_parallel::Sequential;
use std::collections::BTreeMap;
use welkin_types::{CertifiedCheckpoint, Checkpoint, Digest, Sharing, Variant, namespace};

/// How far (in heights) around the applied height the tracker keeps state.
pub const WINDOW: u64 = 256;

/// A message on the checkpoint channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointMessage {
    /// A node's partial signature for a height.
    Partial {
        /// The height signed.
        height: u64,
        /// The partial signature (carries the signer's share index).
        partial: PartialSignature<Variant>,
    },
    /// A recovered certificate.
    Certified(CertifiedCheckpoint),
}

impl Write for CheckpointMessage {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Partial { height, partial } => {
                0u8.write(buf);
                height.write(buf);
                partial.write(buf);
            }
            Self::Certified(certified) => {
                1u8.write(buf);
                certified.write(buf);
            }
        }
    }
}

impl EncodeSize for CheckpointMessage {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Partial { partial, .. } => 8 + partial.encode_size(),
            Self::Certified(certified) => certified.encode_size(),
        }
    }
}

impl Read for CheckpointMessage {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            0 => Ok(Self::Partial {
                height: u64::read(buf)?,
                partial: PartialSignature::read(buf)?,
            }),
            1 => Ok(Self::Certified(CertifiedCheckpoint::read(buf)?)),
            tag => Err(CodecError::InvalidEnum(tag)),
        }
    }
}

/// What the executor should do after feeding the tracker.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Persist this newly certified checkpoint.
    Store(Box<CertifiedCheckpoint>),
    /// The peer asked about a height we certified: send it the certificate at this height.
    Reply(u64),
}

/// Tracks roots and partials around the applied height.
pub struct Tracker {
    cluster_id: Digest,
    sharing: Sharing,
    share: Share,
    roots: BTreeMap<u64, Checkpoint>,
    partials: BTreeMap<u64, BTreeMap<u32, PartialSignature<Variant>>>,
    early: BTreeMap<u64, Vec<(CheckpointMessage, u32)>>,
    certified: BTreeMap<u64, ()>,
    applied: u64,
}

impl Tracker {
    /// A tracker for this node's share.
    pub fn new(cluster_id: Digest, sharing: Sharing, share: Share) -> Self {
        Self {
            cluster_id,
            sharing,
            share,
            roots: BTreeMap::new(),
            partials: BTreeMap::new(),
            early: BTreeMap::new(),
            certified: BTreeMap::new(),
            applied: 0,
        }
    }

    /// Marks `height` as already certified in storage (on restart, or after storing).
    pub fn mark_certified(&mut self, height: u64) {
        self.certified.insert(height, ());
        self.partials.remove(&height);
        while self.certified.len() as u64 > WINDOW {
            self.certified.pop_first();
        }
    }

    /// Whether `height` is known to be certified (within the window).
    pub fn is_certified(&self, height: u64) -> bool {
        self.certified.contains_key(&height)
    }

    /// Records that `checkpoint` describes this node's state after its height; returns this
    /// node's partial to send, and any actions unlocked by messages that arrived early.
    pub fn applied(&mut self, checkpoint: Checkpoint) -> (CheckpointMessage, Vec<Action>) {
        let height = checkpoint.height;
        self.applied = height;
        self.roots.insert(height, checkpoint);
        let message = checkpoint.message(&self.cluster_id);
        let partial =
            threshold::sign_message::<Variant>(&self.share, namespace::CHECKPOINT, &message);
        let mut actions = Vec::new();
        if !self.is_certified(height) {
            actions.push(self.add_partial(height, partial.clone()));
        }
        for (early, sender) in self.early.remove(&height).unwrap_or_default() {
            actions.push(self.handle(early, sender));
        }
        self.prune();
        (CheckpointMessage::Partial { height, partial }, actions)
    }

    fn prune(&mut self) {
        let floor = self.applied.saturating_sub(WINDOW);
        self.roots = self.roots.split_off(&floor);
        self.partials = self.partials.split_off(&floor);
        self.early = self.early.split_off(&self.applied);
    }

    /// Handles a message from the peer at genesis position `sender`. A partial is accepted only
    /// under its sender's own share index, so a byzantine peer cannot displace another node's
    /// partial.
    pub fn handle(&mut self, message: CheckpointMessage, sender: u32) -> Action {
        if let CheckpointMessage::Partial { partial, .. } = &message
            && partial.index.get() != sender
        {
            return Action::None;
        }
        let height = match &message {
            CheckpointMessage::Partial { height, .. } => *height,
            CheckpointMessage::Certified(c) => c.checkpoint.height,
        };
        if height > self.applied {
            if height <= self.applied + WINDOW {
                let queue = self.early.entry(height).or_default();
                if queue.len() < self.sharing.total().get() as usize * 2 {
                    queue.push((message, sender));
                }
            }
            return Action::None;
        }
        match message {
            CheckpointMessage::Partial { height, partial } => {
                if self.is_certified(height) {
                    return Action::Reply(height);
                }
                if !self.roots.contains_key(&height) {
                    return Action::None;
                }
                self.add_partial(height, partial)
            }
            CheckpointMessage::Certified(certified) => {
                let height = certified.checkpoint.height;
                if self.is_certified(height) {
                    return Action::None;
                }
                match self.roots.get(&height) {
                    Some(ours) if *ours == certified.checkpoint => {}
                    Some(ours) => {
                        if certified.verify(&self.cluster_id, self.sharing.public()) {
                            tracing::error!(
                                height,
                                ours = %ours.state_root,
                                cluster = %certified.checkpoint.state_root,
                                "cluster certified a different checkpoint: this node has diverged"
                            );
                        }
                        return Action::None;
                    }
                    None => return Action::None,
                }
                if certified.verify(&self.cluster_id, self.sharing.public()) {
                    Action::Store(Box::new(certified))
                } else {
                    Action::None
                }
            }
        }
    }

    fn add_partial(&mut self, height: u64, partial: PartialSignature<Variant>) -> Action {
        let Some(checkpoint) = self.roots.get(&height).copied() else {
            return Action::None;
        };
        if partial.index.get() >= self.sharing.total().get() {
            return Action::None;
        }
        let set = self.partials.entry(height).or_default();
        set.insert(partial.index.get(), partial);
        if set.len() < self.sharing.required() as usize {
            return Action::None;
        }
        // Optimistic: recover from the partials as they are and check the result once (one
        // pairing check instead of one per partial). Only if that fails, find and drop the
        // partials that do not verify against our root.
        if let Ok(signature) =
            threshold::recover::<Variant, _>(&self.sharing, set.values(), &Sequential)
        {
            let certified = CertifiedCheckpoint {
                checkpoint,
                signature,
            };
            if certified.verify(&self.cluster_id, self.sharing.public()) {
                return Action::Store(Box::new(certified));
            }
        }
        let message = checkpoint.message(&self.cluster_id);
        let sharing = &self.sharing;
        set.retain(|index, partial| {
            let ok = threshold::verify_message::<Variant>(
                sharing,
                namespace::CHECKPOINT,
                &message,
                partial,
            )
            .is_ok();
            if !ok {
                tracing::warn!(
                    height,
                    index,
                    "checkpoint partial does not verify against our root"
                );
            }
            ok
        });
        Action::None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode};
    use commonware_cryptography::bls12381::{
        dkg::feldman_desmedt::deal_anonymous, primitives::sharing::Mode,
    };
    use commonware_utils::{N3f1, NZU32, test_rng};
    use welkin_types::hash_parts;

    fn cp(height: u64, state_root: Digest) -> Checkpoint {
        Checkpoint {
            height,
            state_root,
            log_size: height,
            log_root: hash_parts(&[b"log"]),
        }
    }

    fn trackers() -> Vec<Tracker> {
        let (sharing, shares) =
            deal_anonymous::<Variant, N3f1>(test_rng(), Mode::NonZeroCounter, NZU32!(4));
        shares
            .into_iter()
            .map(|s| Tracker::new(hash_parts(&[b"c"]), sharing.clone(), s))
            .collect()
    }

    #[test]
    fn three_partials_certify_and_late_node_gets_reply() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let mut sent = Vec::new();
        for node in nodes.iter_mut().take(3) {
            let (partial, actions) = node.applied(cp(1, root));
            assert!(actions.iter().all(|a| *a == Action::None));
            sent.push(partial);
        }
        // Node 0 receives partials from 1 and 2: the second completes the quorum.
        assert_eq!(nodes[0].handle(sent[1].clone(), 1), Action::None);
        let Action::Store(certified) = nodes[0].handle(sent[2].clone(), 2) else {
            panic!("expected a certificate")
        };
        assert!(certified.verify(&hash_parts(&[b"c"]), nodes[0].sharing.public()));
        nodes[0].mark_certified(1);
        // Node 3 applies late; its partial draws a reply from node 0.
        let (late, _) = nodes[3].applied(cp(1, root));
        assert_eq!(nodes[0].handle(late, 3), Action::Reply(1));
        assert_eq!(
            nodes[3].handle(CheckpointMessage::Certified((*certified).clone()), 0),
            Action::Store(certified.clone())
        );
        let decoded =
            CheckpointMessage::decode(CheckpointMessage::Certified((*certified).clone()).encode())
                .expect("decodes");
        assert_eq!(decoded, CheckpointMessage::Certified(*certified));
    }

    #[test]
    fn partial_over_a_different_root_is_rejected() {
        let mut nodes = trackers();
        nodes[0].applied(cp(1, hash_parts(&[b"root"])));
        let (liar, _) = nodes[1].applied(cp(1, hash_parts(&[b"forged root"])));
        let (honest, _) = nodes[2].applied(cp(1, hash_parts(&[b"root"])));
        assert_eq!(nodes[0].handle(liar, 1), Action::None);
        // Own, liar and honest make three, but recovery fails; the liar's partial is dropped.
        assert_eq!(nodes[0].handle(honest, 2), Action::None);
        // The fourth, honest partial completes the certificate.
        let (fourth, _) = nodes[3].applied(cp(1, hash_parts(&[b"root"])));
        assert!(matches!(nodes[0].handle(fourth, 3), Action::Store(_)));
    }

    #[test]
    fn partial_under_another_nodes_index_is_ignored() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        nodes[0].applied(cp(1, root));
        let (p1, _) = nodes[1].applied(cp(1, root));
        let (p2, _) = nodes[2].applied(cp(1, root));
        assert_eq!(
            nodes[0].handle(p1, 3),
            Action::None,
            "sent by node 3 under node 1's index"
        );
        assert_eq!(
            nodes[0].handle(p2, 2),
            Action::None,
            "only two accepted so far"
        );
    }

    #[test]
    fn early_partials_wait_for_apply() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let (p1, _) = nodes[1].applied(cp(5, root));
        let (p2, _) = nodes[2].applied(cp(5, root));
        assert_eq!(nodes[0].handle(p1, 1), Action::None);
        assert_eq!(nodes[0].handle(p2, 2), Action::None);
        let (_, actions) = nodes[0].applied(cp(5, root));
        assert!(actions.iter().any(|a| matches!(a, Action::Store(_))));
    }
}
