//! Collecting checkpoint partial signatures into certified checkpoints.
//!
//! After applying height `h`, every node signs a threshold partial over
//! (cluster id, h, state root, log size, log root) and sends it to all peers. A node verifies each partial it
//! receives against its *own* root for `h` (so a partial over a different root, from a
//! diverged or lying node, is rejected), and once it holds `t` valid partials it recovers the
//! cluster signature. Partials for heights not yet applied wait in a bounded buffer.
//! A node that sends a partial for a height its peer has already certified gets the certified
//! checkpoint back, which is how a node that was down or catching up obtains certificates.
//!
//! Each partial also carries the sender's tlog cosignature (c2sp.org/tlog-cosignature) of the
//! checkpoint's note body, under its ed25519 identity key. A receiver checks it against the
//! body of its *own* checkpoint for that height and keeps it, so the certificate is stored
//! with the cosignatures of the (at least `t`) nodes whose partials made it, and later
//! cosignatures are kept in memory for the window. A served checkpoint note thus carries
//! the cluster's signature and the cosignatures of 2f+1 or more nodes, which standard
//! witness tooling can check one by one.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};
use commonware_cryptography::bls12381::primitives::{
    group::Share, ops::threshold, variant::PartialSignature,
};
use commonware_parallel::Sequential;
use std::{collections::BTreeMap, sync::Arc};
use welkin_note::{Cosignature, CosignatureSigner, CosignatureVerifier};
use welkin_types::{
    CertifiedCheckpoint, Checkpoint, Digest, Sharing, Variant, limits::MAX_NODES, namespace,
};

/// How far (in heights) around the applied height the tracker keeps state.
pub const WINDOW: u64 = 256;

/// Encoded size of a cosignature: timestamp and ed25519 signature.
const COSIGNATURE_BYTES: usize = 8 + 64;

fn write_cosignature(cosignature: &Cosignature, buf: &mut impl BufMut) {
    buf.put_slice(&cosignature.to_bytes());
}

fn read_cosignature(buf: &mut impl Buf) -> Result<Cosignature, CodecError> {
    let timestamp = u64::read(buf)?;
    let signature = <[u8; 64]>::read(buf)?;
    Ok(Cosignature {
        timestamp,
        signature,
    })
}

/// A certified checkpoint with the node cosignatures gathered for it, by genesis position.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct WitnessedCheckpoint {
    /// The checkpoint and the cluster's signature.
    pub certified: CertifiedCheckpoint,
    /// Cosignatures of the checkpoint's note body, by signer position, at most one each.
    pub cosignatures: BTreeMap<u32, Cosignature>,
}

impl Write for WitnessedCheckpoint {
    fn write(&self, buf: &mut impl BufMut) {
        self.certified.write(buf);
        (self.cosignatures.len() as u32).write(buf);
        for (index, cosignature) in &self.cosignatures {
            index.write(buf);
            write_cosignature(cosignature, buf);
        }
    }
}

impl EncodeSize for WitnessedCheckpoint {
    fn encode_size(&self) -> usize {
        self.certified.encode_size() + 4 + self.cosignatures.len() * (4 + COSIGNATURE_BYTES)
    }
}

impl Read for WitnessedCheckpoint {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let certified = CertifiedCheckpoint::read(buf)?;
        let count = u32::read(buf)? as usize;
        if count > MAX_NODES {
            return Err(CodecError::Invalid(
                "WitnessedCheckpoint",
                "more cosignatures than nodes",
            ));
        }
        let mut cosignatures = BTreeMap::new();
        let mut last = None;
        for _ in 0..count {
            let index = u32::read(buf)?;
            if last.is_some_and(|last| index <= last) {
                return Err(CodecError::Invalid(
                    "WitnessedCheckpoint",
                    "cosigner positions must increase",
                ));
            }
            last = Some(index);
            cosignatures.insert(index, read_cosignature(buf)?);
        }
        Ok(Self {
            certified,
            cosignatures,
        })
    }
}

/// A message on the checkpoint channel.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum CheckpointMessage {
    /// A node's partial signature for a height, with its cosignature of the note body.
    Partial {
        /// The height signed.
        height: u64,
        /// The partial signature (carries the signer's share index).
        partial: PartialSignature<Variant>,
        /// The signer's tlog cosignature of the checkpoint's note body.
        cosignature: Cosignature,
    },
    /// A recovered certificate, with the cosignatures its sender holds.
    Certified(WitnessedCheckpoint),
}

impl Write for CheckpointMessage {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            Self::Partial {
                height,
                partial,
                cosignature,
            } => {
                0u8.write(buf);
                height.write(buf);
                partial.write(buf);
                write_cosignature(cosignature, buf);
            }
            Self::Certified(witnessed) => {
                1u8.write(buf);
                witnessed.write(buf);
            }
        }
    }
}

impl EncodeSize for CheckpointMessage {
    fn encode_size(&self) -> usize {
        1 + match self {
            Self::Partial { partial, .. } => 8 + partial.encode_size() + COSIGNATURE_BYTES,
            Self::Certified(witnessed) => witnessed.encode_size(),
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
                cosignature: read_cosignature(buf)?,
            }),
            1 => Ok(Self::Certified(WitnessedCheckpoint::read(buf)?)),
            tag => Err(CodecError::InvalidEnum(tag)),
        }
    }
}

/// The nodes' cosigning keys: this node's signer and every node's verifier.
pub struct Witnesses {
    /// This node's cosigner.
    pub signer: Arc<CosignatureSigner>,
    /// Every node's verifier, in genesis order.
    pub verifiers: Vec<CosignatureVerifier>,
}

/// This node's view of one height: its checkpoint and that checkpoint's note body.
struct Root {
    checkpoint: Checkpoint,
    body: welkin_note::Checkpoint,
}

/// What the executor should do after feeding the tracker.
#[derive(Debug, PartialEq, Eq)]
pub enum Action {
    /// Nothing.
    None,
    /// Persist this newly certified checkpoint and the cosignatures gathered so far.
    Store(Box<WitnessedCheckpoint>),
    /// The peer asked about a height we certified: send it the certificate at this height.
    Reply(u64),
}

/// Tracks roots and partials around the applied height.
pub struct Tracker {
    cluster_id: Digest,
    sharing: Sharing,
    share: Share,
    witnesses: Witnesses,
    roots: BTreeMap<u64, Root>,
    partials: BTreeMap<u64, BTreeMap<u32, PartialSignature<Variant>>>,
    cosignatures: BTreeMap<u64, BTreeMap<u32, Cosignature>>,
    early: BTreeMap<u64, Vec<(CheckpointMessage, u32)>>,
    certified: BTreeMap<u64, ()>,
    applied: u64,
}

impl Tracker {
    /// A tracker for this node's share.
    pub fn new(cluster_id: Digest, sharing: Sharing, share: Share, witnesses: Witnesses) -> Self {
        Self {
            cluster_id,
            sharing,
            share,
            witnesses,
            roots: BTreeMap::new(),
            partials: BTreeMap::new(),
            cosignatures: BTreeMap::new(),
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

    /// Cosignatures gathered in memory for `height` (those that arrived after its
    /// certificate was stored are only here).
    pub fn cosignatures(&self, height: u64) -> BTreeMap<u32, Cosignature> {
        self.cosignatures.get(&height).cloned().unwrap_or_default()
    }

    /// Records that `checkpoint` describes this node's state after its height, at `now`
    /// (seconds since the Unix epoch, for the cosignature); returns this node's partial to
    /// send, and any actions unlocked by messages that arrived early.
    pub fn applied(
        &mut self,
        checkpoint: Checkpoint,
        now: u64,
    ) -> (CheckpointMessage, Vec<Action>) {
        let height = checkpoint.height;
        self.applied = height;
        let body = welkin_types::note::body(&checkpoint, &self.cluster_id);
        let signed =
            self.witnesses.signer.sign(&body, now).expect(
                "welkin checkpoint bodies are well formed and clocks are before year 10^11",
            );
        let cosignature = Cosignature::from_note_signature(&signed)
            .expect("a signature this node just made decodes");
        self.roots.insert(height, Root { checkpoint, body });
        let message = checkpoint.message(&self.cluster_id);
        let partial =
            threshold::sign_message::<Variant>(&self.share, namespace::CHECKPOINT, &message);
        let me = partial.index.get();
        self.cosignatures
            .entry(height)
            .or_default()
            .insert(me, cosignature);
        let mut actions = Vec::new();
        if !self.is_certified(height) {
            actions.push(self.add_partial(height, partial.clone()));
        }
        for (early, sender) in self.early.remove(&height).unwrap_or_default() {
            actions.push(self.handle(early, sender));
        }
        self.prune();
        (
            CheckpointMessage::Partial {
                height,
                partial,
                cosignature,
            },
            actions,
        )
    }

    fn prune(&mut self) {
        let floor = self.applied.saturating_sub(WINDOW);
        self.roots = self.roots.split_off(&floor);
        self.partials = self.partials.split_off(&floor);
        self.cosignatures = self.cosignatures.split_off(&floor);
        self.early = self.early.split_off(&self.applied);
    }

    /// Whether `cosignature` is node `index`'s valid cosignature of our body for `height`.
    fn cosignature_verifies(&self, height: u64, index: u32, cosignature: &Cosignature) -> bool {
        let (Some(root), Some(verifier)) = (
            self.roots.get(&height),
            self.witnesses.verifiers.get(index as usize),
        ) else {
            return false;
        };
        let line = welkin_types::note::cosignature_line(verifier, cosignature);
        verifier.verify(&root.body, &line).is_ok()
    }

    /// Keeps those of `cosignatures` that verify against our body for its height.
    fn gather(&mut self, height: u64, cosignatures: &BTreeMap<u32, Cosignature>) {
        for (index, cosignature) in cosignatures {
            let known = self
                .cosignatures
                .get(&height)
                .is_some_and(|set| set.contains_key(index));
            if !known && self.cosignature_verifies(height, *index, cosignature) {
                self.cosignatures
                    .entry(height)
                    .or_default()
                    .insert(*index, *cosignature);
            }
        }
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
            CheckpointMessage::Certified(c) => c.certified.checkpoint.height,
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
            CheckpointMessage::Partial {
                height,
                partial,
                cosignature,
            } => {
                if !self.roots.contains_key(&height) {
                    return if self.is_certified(height) {
                        Action::Reply(height)
                    } else {
                        Action::None
                    };
                }
                // A partial whose cosignature does not verify against our body is over a
                // different checkpoint (or forged): drop the whole message.
                if !self.cosignature_verifies(height, sender, &cosignature) {
                    tracing::warn!(height, sender, "checkpoint cosignature does not verify");
                    return Action::None;
                }
                self.cosignatures
                    .entry(height)
                    .or_default()
                    .insert(sender, cosignature);
                if self.is_certified(height) {
                    return Action::Reply(height);
                }
                self.add_partial(height, partial)
            }
            CheckpointMessage::Certified(witnessed) => {
                let WitnessedCheckpoint {
                    certified,
                    cosignatures,
                } = witnessed;
                let height = certified.checkpoint.height;
                if self.is_certified(height) {
                    self.gather(height, &cosignatures);
                    return Action::None;
                }
                match self.roots.get(&height).map(|root| root.checkpoint) {
                    Some(ours) if ours == certified.checkpoint => {}
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
                    self.gather(height, &cosignatures);
                    self.store(certified)
                } else {
                    Action::None
                }
            }
        }
    }

    fn store(&self, certified: CertifiedCheckpoint) -> Action {
        let height = certified.checkpoint.height;
        Action::Store(Box::new(WitnessedCheckpoint {
            certified,
            cosignatures: self.cosignatures(height),
        }))
    }

    fn add_partial(&mut self, height: u64, partial: PartialSignature<Variant>) -> Action {
        let Some(checkpoint) = self.roots.get(&height).map(|root| root.checkpoint) else {
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
                return self.store(certified);
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
        let signers: Vec<Arc<CosignatureSigner>> = (0..4u8)
            .map(|i| {
                Arc::new(CosignatureSigner::new(&format!("node{i}"), &[i; 32]).expect("valid name"))
            })
            .collect();
        let verifiers: Vec<_> = signers.iter().map(|s| s.verifier()).collect();
        shares
            .into_iter()
            .zip(signers)
            .map(|(share, signer)| {
                let witnesses = Witnesses {
                    signer,
                    verifiers: verifiers.clone(),
                };
                Tracker::new(hash_parts(&[b"c"]), sharing.clone(), share, witnesses)
            })
            .collect()
    }

    /// When the tests sign, in seconds.
    const NOW: u64 = 1_700_000_000;

    #[test]
    fn three_partials_certify_and_late_node_gets_reply() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let mut sent = Vec::new();
        for node in nodes.iter_mut().take(3) {
            let (partial, actions) = node.applied(cp(1, root), NOW);
            assert!(actions.iter().all(|a| *a == Action::None));
            sent.push(partial);
        }
        // Node 0 receives partials from 1 and 2: the second completes the quorum.
        assert_eq!(nodes[0].handle(sent[1].clone(), 1), Action::None);
        let Action::Store(witnessed) = nodes[0].handle(sent[2].clone(), 2) else {
            panic!("expected a certificate")
        };
        assert!(
            witnessed
                .certified
                .verify(&hash_parts(&[b"c"]), nodes[0].sharing.public())
        );
        assert_eq!(
            witnessed.cosignatures.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2],
            "stored with the cosignatures of the nodes whose partials made it"
        );
        nodes[0].mark_certified(1);
        // Node 3 applies late; its partial draws a reply from node 0, which also keeps its
        // cosignature.
        let (late, _) = nodes[3].applied(cp(1, root), NOW);
        assert_eq!(nodes[0].handle(late, 3), Action::Reply(1));
        assert_eq!(nodes[0].cosignatures(1).len(), 4);
        let Action::Store(at_late) =
            nodes[3].handle(CheckpointMessage::Certified((*witnessed).clone()), 0)
        else {
            panic!("the late node stores the certificate it was sent")
        };
        assert_eq!(at_late.certified, witnessed.certified);
        assert_eq!(
            at_late.cosignatures.len(),
            4,
            "its own and the three it was sent"
        );
        let message = CheckpointMessage::Certified(*witnessed);
        let decoded = CheckpointMessage::decode(message.encode()).expect("decodes");
        assert_eq!(decoded, message);
    }

    #[test]
    fn forged_cosignatures_are_not_kept() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        nodes[0].applied(cp(1, root), NOW);
        let (partial, _) = nodes[1].applied(cp(1, root), NOW);
        let CheckpointMessage::Partial {
            height,
            partial,
            mut cosignature,
        } = partial
        else {
            panic!("a partial")
        };
        cosignature.timestamp += 1;
        let forged = CheckpointMessage::Partial {
            height,
            partial,
            cosignature,
        };
        assert_eq!(nodes[0].handle(forged, 1), Action::None);
        assert_eq!(
            nodes[0].cosignatures(1).keys().copied().collect::<Vec<_>>(),
            vec![0],
            "a partial with a bad cosignature is dropped whole"
        );
        // A certificate relayed with a forged cosignature keeps only the valid ones.
        let (p2, _) = nodes[2].applied(cp(1, root), NOW);
        let (p3, _) = nodes[3].applied(cp(1, root), NOW);
        assert_eq!(nodes[2].handle(p3, 3), Action::None);
        let (p1, _) = nodes[1].applied(cp(1, root), NOW);
        let Action::Store(mut witnessed) = nodes[2].handle(p1, 1) else {
            panic!("certified")
        };
        let _ = p2;
        let bad = witnessed.cosignatures.get_mut(&1).expect("node 1 cosigned");
        bad.signature[0] ^= 1;
        let Action::Store(stored) = nodes[0].handle(CheckpointMessage::Certified(*witnessed), 2)
        else {
            panic!("the certificate itself is valid")
        };
        assert_eq!(
            stored.cosignatures.keys().copied().collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
    }

    #[test]
    fn witnessed_checkpoint_decoding_rejects_unordered_or_excess_cosigners() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let mut sent = Vec::new();
        for node in nodes.iter_mut().take(3) {
            sent.push(node.applied(cp(1, root), NOW).0);
        }
        nodes[0].handle(sent[1].clone(), 1);
        let Action::Store(witnessed) = nodes[0].handle(sent[2].clone(), 2) else {
            panic!("certified")
        };
        let bytes = witnessed.encode().to_vec();
        assert_eq!(
            welkin_types::decode::<WitnessedCheckpoint>(&bytes)
                .ok()
                .as_ref(),
            Some(&*witnessed)
        );
        // Swap the first two cosigner positions (0 and 1): order must increase.
        let start = witnessed.certified.encode_size() + 4;
        let mut swapped = bytes.clone();
        swapped[start..start + 4].copy_from_slice(&1u32.to_be_bytes());
        swapped[start + 76..start + 80].copy_from_slice(&0u32.to_be_bytes());
        assert!(welkin_types::decode::<WitnessedCheckpoint>(&swapped).is_err());
        let mut excess = bytes[..start - 4].to_vec();
        excess.extend_from_slice(&(MAX_NODES as u32 + 1).to_be_bytes());
        assert!(welkin_types::decode::<WitnessedCheckpoint>(&excess).is_err());
    }

    #[test]
    fn partial_over_a_different_root_is_rejected() {
        let mut nodes = trackers();
        nodes[0].applied(cp(1, hash_parts(&[b"root"])), NOW);
        let (liar, _) = nodes[1].applied(cp(1, hash_parts(&[b"forged root"])), NOW);
        let (honest, _) = nodes[2].applied(cp(1, hash_parts(&[b"root"])), NOW);
        assert_eq!(nodes[0].handle(liar, 1), Action::None);
        // Own, liar and honest make three, but recovery fails; the liar's partial is dropped.
        assert_eq!(nodes[0].handle(honest, 2), Action::None);
        // The fourth, honest partial completes the certificate.
        let (fourth, _) = nodes[3].applied(cp(1, hash_parts(&[b"root"])), NOW);
        assert!(matches!(nodes[0].handle(fourth, 3), Action::Store(_)));
    }

    #[test]
    fn partial_under_another_nodes_index_is_ignored() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        nodes[0].applied(cp(1, root), NOW);
        let (p1, _) = nodes[1].applied(cp(1, root), NOW);
        let (p2, _) = nodes[2].applied(cp(1, root), NOW);
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
        let (p1, _) = nodes[1].applied(cp(5, root), NOW);
        let (p2, _) = nodes[2].applied(cp(5, root), NOW);
        assert_eq!(nodes[0].handle(p1, 1), Action::None);
        assert_eq!(nodes[0].handle(p2, 2), Action::None);
        let (_, actions) = nodes[0].applied(cp(5, root), NOW);
        assert!(actions.iter().any(|a| matches!(a, Action::Store(_))));
    }
}
