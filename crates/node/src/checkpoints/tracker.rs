//! The tracker: per-height roots, one partial slot per sender, optimistic recovery with a
//! checked fallback, re-sends of this node's own partials, and the early-arrival buffer.

use super::{CheckpointMessage, WitnessedCheckpoint};
use commonware_cryptography::bls12381::primitives::{
    group::Share, ops::threshold, variant::PartialSignature,
};
use commonware_parallel::Sequential;
use std::{
    collections::{BTreeMap, BTreeSet},
    sync::Arc,
};
use tracing::{error, warn};
use welkin_note::{Cosignature, CosignatureSigner, CosignatureVerifier};
use welkin_types::{CertifiedCheckpoint, Checkpoint, Digest, Sharing, Variant, namespace};

/// How far (in heights) below the applied height the tracker keeps state.
pub(crate) const WINDOW: u64 = 256;
/// How far (in heights) above the applied height messages are kept until it is applied.
/// Peers further ahead re-send, or answer this node's partial with their certificate.
pub(crate) const EARLY_WINDOW: u64 = 16;
/// How long after signing a height this node first re-sends its partial, if the height is
/// still uncertified.
pub(crate) const RESEND_AFTER_MS: u64 = 1_000;
/// The re-send interval doubles after each re-send, up to this.
pub(crate) const RESEND_MAX_MS: u64 = 16_000;
/// Most partials re-sent at one time (the newest uncertified heights first).
pub(crate) const RESEND_BATCH: usize = 32;

/// The nodes' cosigning keys: this node's signer and every node's verifier.
pub(crate) struct Witnesses {
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

/// What one sender contributed at one height.
enum Slot {
    /// A partial whose cosignature verified; the partial itself is checked only if a recovery
    /// that used it fails.
    Unchecked(PartialSignature<Variant>),
    /// A partial that verifies against this node's checkpoint.
    Valid(PartialSignature<Variant>),
    /// The sender's partial or cosignature did not verify: nothing more from it counts here.
    Refused,
}

/// The sharing in force from one height on, and this node's share of it.
#[derive(Clone)]
struct EpochKey {
    sharing: Sharing,
    /// `None` while this node has not made its share (or holds none: it left).
    share: Option<Share>,
    /// The players whose share indices the sharing's are, sorted; `None` when the share
    /// index is the roster position (a dealt key, or the first generated one).
    players: Option<Vec<welkin_types::PublicKey>>,
}

/// Epoch keys kept (older ones sign nothing the tracker's window still holds).
const KEPT_KEYS: usize = 4;

/// This node's partial for an uncertified height, and when to send it again.
struct Resend {
    message: CheckpointMessage,
    due_ms: u64,
    backoff_ms: u64,
}

/// What the executor should do after feeding the tracker.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Action {
    /// Persist this newly certified checkpoint and the cosignatures gathered so far.
    Store(Box<WitnessedCheckpoint>),
    /// The peer asked about a height we certified: send it the certificate at this height.
    Reply(u64),
    /// The node at this genesis position sent provably invalid data: block it.
    Block(u32),
}

/// Tracks roots and partials around the applied height.
pub(crate) struct Tracker {
    cluster_id: Digest,
    /// This node's roster position (its slot for partials and cosignatures), once it is on
    /// the roster (a joining node is not until it is admitted).
    me: Option<u32>,
    /// This node's key, to find its position when the roster grows.
    my_key: Option<welkin_types::PublicKey>,
    /// Every node's key by roster position (genesis nodes, then joined ones), to match a
    /// partial's share index with its sender after a resharing.
    roster: Vec<welkin_types::PublicKey>,
    /// The cluster's public polynomial and this node's share, by the first height they sign:
    /// empty while a dealerless cluster is still generating its key (nothing is signed or
    /// gathered until then); one more entry after each resharing.
    keys: BTreeMap<u64, EpochKey>,
    witnesses: Witnesses,
    roots: BTreeMap<u64, Root>,
    slots: BTreeMap<u64, BTreeMap<u32, Slot>>,
    cosignatures: BTreeMap<u64, BTreeMap<u32, Cosignature>>,
    /// Messages for heights not yet applied: one per (sender, kind) per height.
    early: BTreeMap<u64, BTreeMap<(u32, u8), CheckpointMessage>>,
    certified: BTreeSet<u64>,
    own: BTreeMap<u64, Resend>,
    applied: u64,
}

impl Tracker {
    /// A tracker for this node's share (`None` until the cluster key exists: see
    /// [`Tracker::set_key`]).
    pub(crate) fn new(
        cluster_id: Digest,
        my_key: Option<welkin_types::PublicKey>,
        me: Option<u32>,
        roster: Vec<welkin_types::PublicKey>,
        key: Option<(Sharing, Share)>,
        witnesses: Witnesses,
    ) -> Self {
        let mut keys = BTreeMap::new();
        if let Some((sharing, share)) = key {
            keys.insert(
                0,
                EpochKey {
                    sharing,
                    share: Some(share),
                    players: None,
                },
            );
        }
        Self {
            cluster_id,
            me,
            my_key,
            roster,
            keys,
            witnesses,
            roots: BTreeMap::new(),
            slots: BTreeMap::new(),
            cosignatures: BTreeMap::new(),
            early: BTreeMap::new(),
            certified: BTreeSet::new(),
            own: BTreeMap::new(),
            applied: 0,
        }
    }

    /// Gives the tracker the cluster key once it exists; checkpoints from then on are signed.
    pub(crate) fn set_key(&mut self, sharing: Sharing, share: Share) {
        self.keys.insert(
            0,
            EpochKey {
                sharing,
                share: Some(share),
                players: None,
            },
        );
    }

    /// Gives the tracker the sharing a resharing made, in force from `from_height` (the
    /// epoch's first height), with its `players` (sorted): heights from there are checked
    /// against it, and signed once [`Tracker::set_share`] gives this node's share.
    pub(crate) fn set_epoch_key(
        &mut self,
        from_height: u64,
        sharing: Sharing,
        players: Vec<welkin_types::PublicKey>,
    ) {
        if self
            .keys
            .get(&from_height)
            .is_some_and(|k| k.sharing == sharing)
        {
            return;
        }
        self.keys.insert(
            from_height,
            EpochKey {
                sharing,
                share: None,
                players: Some(players),
            },
        );
        while self.keys.len() > KEPT_KEYS {
            self.keys.pop_first();
        }
    }

    /// Gives this node's share of the sharing in force from `from_height`, if it matches it;
    /// the heights already applied since are signed now (their partials go out with the next
    /// re-sends). Returns whether the share was taken.
    pub(crate) fn set_share(&mut self, from_height: u64, share: Share, now_ms: u64) -> bool {
        let Some(key) = self.keys.get_mut(&from_height) else {
            return false;
        };
        if key.sharing.partial_public(share.index).ok() != Some(share.public::<Variant>()) {
            return false;
        }
        key.share = Some(share);
        let until = self
            .keys
            .range(from_height + 1..)
            .next()
            .map_or(u64::MAX, |(h, _)| *h);
        let heights: Vec<u64> = self
            .roots
            .range(from_height..until)
            .map(|(h, _)| *h)
            .filter(|h| !self.is_certified(*h) && !self.own.contains_key(h))
            .collect();
        for height in heights {
            if let Some(message) = self.sign(height) {
                self.own.insert(
                    height,
                    Resend {
                        message,
                        due_ms: now_ms,
                        backoff_ms: RESEND_AFTER_MS,
                    },
                );
            }
        }
        true
    }

    /// Records the roster (it only grows) and the cosigning verifiers of nodes that joined.
    pub(crate) fn set_roster(
        &mut self,
        roster: Vec<welkin_types::PublicKey>,
        verifiers: Vec<CosignatureVerifier>,
    ) {
        if roster.len() > self.roster.len() {
            self.roster = roster;
        }
        if self.me.is_none()
            && let Some(key) = &self.my_key
        {
            self.me = self.roster.iter().position(|k| k == key).map(|p| p as u32);
        }
        if verifiers.len() > self.witnesses.verifiers.len() {
            self.witnesses.verifiers = verifiers;
        }
    }

    /// The cosigning verifier of the node at roster position `index`.
    pub(crate) fn verifier(&self, index: u32) -> Option<CosignatureVerifier> {
        self.witnesses.verifiers.get(index as usize).cloned()
    }

    /// Whether the tracker has the cluster key.
    pub(crate) fn has_key(&self) -> bool {
        !self.keys.is_empty()
    }

    /// The key in force at `height`.
    fn key_for(&self, height: u64) -> Option<&EpochKey> {
        self.keys.range(..=height).next_back().map(|(_, k)| k)
    }

    /// The public polynomial in force at `height` (only called on paths that checked
    /// [`Tracker::has_key`]).
    fn sharing(&self, height: u64) -> &Sharing {
        &self
            .key_for(height)
            .or_else(|| self.keys.values().next())
            .expect("callers check has_key")
            .sharing
    }

    /// The share index roster position `sender` signs under at `height`.
    fn share_index(&self, height: u64, sender: u32) -> Option<u32> {
        match &self.key_for(height)?.players {
            None => Some(sender),
            Some(players) => {
                let key = self.roster.get(sender as usize)?;
                players.iter().position(|p| p == key).map(|i| i as u32)
            }
        }
    }

    /// This node's partial for `height` (whose root it holds), if it holds the share in force.
    fn sign(&mut self, height: u64) -> Option<CheckpointMessage> {
        let share = self.key_for(height)?.share.clone()?;
        let root = self.roots.get(&height)?;
        let message = root.checkpoint.message(&self.cluster_id);
        let partial = threshold::sign_message::<Variant>(&share, namespace::CHECKPOINT, &message);
        let me = self.me?;
        let cosignature = *self.cosignatures.get(&height)?.get(&me)?;
        if !self.is_certified(height) {
            self.slots
                .entry(height)
                .or_default()
                .insert(me, Slot::Valid(partial.clone()));
        }
        Some(CheckpointMessage::Partial {
            height,
            partial,
            cosignature,
        })
    }

    /// Marks `height` as already certified in storage (on restart, or after storing).
    pub(crate) fn mark_certified(&mut self, height: u64) {
        self.certified.insert(height);
        self.slots.remove(&height);
        self.own.remove(&height);
        while self.certified.len() as u64 > WINDOW {
            self.certified.pop_first();
        }
    }

    /// Whether `height` is known to be certified (within the window).
    pub(crate) fn is_certified(&self, height: u64) -> bool {
        self.certified.contains(&height)
    }

    /// Cosignatures gathered in memory for `height` (those that arrived after its
    /// certificate was stored are only here).
    pub(crate) fn cosignatures(&self, height: u64) -> BTreeMap<u32, Cosignature> {
        self.cosignatures.get(&height).cloned().unwrap_or_default()
    }

    /// Records that `checkpoint` describes this node's state after its height, at `now_ms`
    /// (milliseconds since the Unix epoch: the cosignature's time and the re-send schedule);
    /// returns this node's partial to send, and any actions unlocked by messages that arrived
    /// early. `None` while the tracker has no key.
    pub(crate) fn applied(
        &mut self,
        checkpoint: Checkpoint,
        now_ms: u64,
    ) -> Option<(Option<CheckpointMessage>, Vec<Action>)> {
        if !self.has_key() {
            return None;
        }
        let height = checkpoint.height;
        self.applied = height;
        let body = welkin_types::note::body(&checkpoint, &self.cluster_id);
        let signed =
            self.witnesses.signer.sign(&body, now_ms / 1000).expect(
                "welkin checkpoint bodies are well formed and clocks are before year 10^11",
            );
        let cosignature = Cosignature::from_note_signature(&signed)
            .expect("a signature this node just made decodes");
        self.roots.insert(height, Root { checkpoint, body });
        if let Some(me) = self.me {
            self.cosignatures
                .entry(height)
                .or_default()
                .insert(me, cosignature);
        }
        // Without the share in force here (a resharing's new share not made yet), the node
        // still gathers the others' partials; it signs once it has the share.
        let announcement = self.sign(height);
        let mut actions = Vec::new();
        if !self.is_certified(height) {
            if let Some(announcement) = &announcement {
                self.own.insert(
                    height,
                    Resend {
                        message: announcement.clone(),
                        due_ms: now_ms.saturating_add(RESEND_AFTER_MS),
                        backoff_ms: RESEND_AFTER_MS,
                    },
                );
            }
            actions.extend(self.try_recover(height));
        }
        for ((sender, _), early) in self.early.remove(&height).unwrap_or_default() {
            actions.extend(self.handle(early, sender));
        }
        self.prune();
        Some((announcement, actions))
    }

    /// This node's partials for heights still uncertified whose re-send is due at `now_ms`,
    /// newest first, at most [`RESEND_BATCH`]; each is rescheduled with a doubled interval.
    pub(crate) fn resends(&mut self, now_ms: u64) -> Vec<CheckpointMessage> {
        let mut due = Vec::new();
        for resend in self.own.values_mut().rev() {
            if due.len() >= RESEND_BATCH {
                break;
            }
            if resend.due_ms > now_ms {
                continue;
            }
            resend.backoff_ms = resend.backoff_ms.saturating_mul(2).min(RESEND_MAX_MS);
            resend.due_ms = now_ms.saturating_add(resend.backoff_ms);
            due.push(resend.message.clone());
        }
        due
    }

    fn prune(&mut self) {
        let floor = self.applied.saturating_sub(WINDOW);
        self.roots = self.roots.split_off(&floor);
        self.slots = self.slots.split_off(&floor);
        self.cosignatures = self.cosignatures.split_off(&floor);
        self.own = self.own.split_off(&floor);
        self.early = self.early.split_off(&(self.applied + 1));
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

    /// Handles a message from the peer at genesis position `sender`. A partial counts only
    /// in its sender's own slot (its share index is its genesis position), so a byzantine
    /// peer cannot displace another node's partial.
    pub(crate) fn handle(&mut self, message: CheckpointMessage, sender: u32) -> Vec<Action> {
        if !self.has_key() {
            // Nothing can be checked yet; peers send again until their checkpoints certify.
            return Vec::new();
        }
        let (height, kind) = match &message {
            CheckpointMessage::Partial { height, .. } => (*height, 0),
            CheckpointMessage::Certified(c) => (c.certified.checkpoint.height, 1),
        };
        if height > self.applied {
            if height <= self.applied + EARLY_WINDOW {
                self.early
                    .entry(height)
                    .or_default()
                    .insert((sender, kind), message);
            }
            return Vec::new();
        }
        // A partial counts only under its sender's own share index at this height (the
        // sharing in force here is known once the height is applied).
        if let CheckpointMessage::Partial { partial, .. } = &message {
            let expected = self.share_index(height, sender);
            if expected.is_some_and(|e| e != partial.index.get()) {
                warn!(
                    height,
                    sender,
                    index = partial.index.get(),
                    "checkpoint partial under another node's share index"
                );
                return vec![Action::Block(sender)];
            }
            if expected.is_none() {
                // Not a player of the sharing in force here: nothing it signs counts.
                return Vec::new();
            }
        }
        match message {
            CheckpointMessage::Partial {
                height,
                partial,
                cosignature,
            } => self.on_partial(height, partial, cosignature, sender),
            CheckpointMessage::Certified(witnessed) => self.on_certified(witnessed, sender),
        }
    }

    fn on_partial(
        &mut self,
        height: u64,
        partial: PartialSignature<Variant>,
        cosignature: Cosignature,
        sender: u32,
    ) -> Vec<Action> {
        let certified = self.is_certified(height);
        if !self.roots.contains_key(&height) {
            return if certified {
                vec![Action::Reply(height)]
            } else {
                Vec::new()
            };
        }
        if !certified
            && self
                .slots
                .get(&height)
                .is_some_and(|slots| slots.contains_key(&sender))
        {
            // A re-send, or a second try after a refusal: the first word counts.
            return Vec::new();
        }
        let cosigned = self
            .cosignatures
            .get(&height)
            .is_some_and(|set| set.contains_key(&sender));
        if !cosigned {
            // A cosignature over a different body means the sender signed a different
            // checkpoint: it lied, or one of us diverged. Not proof of which, so no block;
            // nothing more from it counts at this height.
            if !self.cosignature_verifies(height, sender, &cosignature) {
                warn!(height, sender, "checkpoint cosignature does not verify");
                if !certified {
                    self.slots
                        .entry(height)
                        .or_default()
                        .insert(sender, Slot::Refused);
                }
                return Vec::new();
            }
            self.cosignatures
                .entry(height)
                .or_default()
                .insert(sender, cosignature);
        }
        if certified {
            return vec![Action::Reply(height)];
        }
        self.slots
            .entry(height)
            .or_default()
            .insert(sender, Slot::Unchecked(partial));
        self.try_recover(height)
    }

    fn on_certified(&mut self, witnessed: WitnessedCheckpoint, sender: u32) -> Vec<Action> {
        let WitnessedCheckpoint {
            certified,
            cosignatures,
        } = witnessed;
        let height = certified.checkpoint.height;
        if self.is_certified(height) {
            self.gather(height, &cosignatures);
            return Vec::new();
        }
        let Some(ours) = self.roots.get(&height).map(|root| root.checkpoint) else {
            return Vec::new();
        };
        // Honest nodes send only certificates they checked: a bad one is proof of malice.
        if !certified.verify(&self.cluster_id, self.sharing(height).public()) {
            warn!(height, sender, "certified checkpoint does not verify");
            return vec![Action::Block(sender)];
        }
        if ours != certified.checkpoint {
            error!(
                height,
                ours = %ours.state_root,
                cluster = %certified.checkpoint.state_root,
                "cluster certified a different checkpoint: this node has diverged"
            );
            return Vec::new();
        }
        self.gather(height, &cosignatures);
        vec![self.store(certified)]
    }

    fn store(&self, certified: CertifiedCheckpoint) -> Action {
        let height = certified.checkpoint.height;
        Action::Store(Box::new(WitnessedCheckpoint {
            certified,
            cosignatures: self.cosignatures(height),
        }))
    }

    /// Recovers the certificate at `height` once `t` slots hold partials. First from the
    /// valid and unchecked partials as they are, checking only the result (one pairing); if
    /// that fails, every unchecked partial is verified, the bad ones refused and their senders
    /// blocked, and recovery retried from the valid ones.
    fn try_recover(&mut self, height: u64) -> Vec<Action> {
        let Some(checkpoint) = self.roots.get(&height).map(|root| root.checkpoint) else {
            return Vec::new();
        };
        let required = self.sharing(height).required() as usize;
        let slots = self.slots.entry(height).or_default();
        let mut valid = Vec::new();
        let mut unchecked = Vec::new();
        for slot in slots.values() {
            match slot {
                Slot::Valid(partial) => valid.push(partial.clone()),
                Slot::Unchecked(partial) => unchecked.push(partial.clone()),
                Slot::Refused => {}
            }
        }
        if valid.len() + unchecked.len() < required {
            return Vec::new();
        }
        if let Some(certified) = self.recover(checkpoint, valid.iter().chain(&unchecked)) {
            return vec![self.store(certified)];
        }
        if unchecked.is_empty() {
            error!(height, "recovery from verified partials failed");
            return Vec::new();
        }
        let message = checkpoint.message(&self.cluster_id);
        let mut actions = Vec::new();
        let sharing = self.sharing(height).clone();
        let slots = self.slots.entry(height).or_default();
        for (index, slot) in slots.iter_mut() {
            let Slot::Unchecked(partial) = slot else {
                continue;
            };
            if threshold::verify_message::<Variant>(
                &sharing,
                namespace::CHECKPOINT,
                &message,
                partial,
            )
            .is_ok()
            {
                valid.push(partial.clone());
                *slot = Slot::Valid(partial.clone());
            } else {
                warn!(height, index, "checkpoint partial does not verify");
                *slot = Slot::Refused;
                actions.push(Action::Block(*index));
            }
        }
        if valid.len() >= required {
            match self.recover(checkpoint, valid.iter()) {
                Some(certified) => actions.push(self.store(certified)),
                None => error!(height, "recovery from verified partials failed"),
            }
        }
        actions
    }

    /// The certificate recovered from the first `t` of `partials`, if it verifies.
    fn recover<'a>(
        &self,
        checkpoint: Checkpoint,
        partials: impl Iterator<Item = &'a PartialSignature<Variant>>,
    ) -> Option<CertifiedCheckpoint> {
        let sharing = self.sharing(checkpoint.height);
        let signature = threshold::recover::<Variant, _>(sharing, partials, &Sequential).ok()?;
        let certified = CertifiedCheckpoint {
            checkpoint,
            signature,
        };
        certified
            .verify(&self.cluster_id, sharing.public())
            .then_some(certified)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{DecodeExt, Encode, EncodeSize};
    use commonware_cryptography::bls12381::{
        dkg::feldman_desmedt::deal_anonymous, primitives::sharing::Mode,
    };
    use commonware_utils::{N3f1, test_rng};
    use std::num::NonZeroU32;
    use welkin_types::{hash_parts, limits::MAX_NODES};

    fn cp(height: u64, state_root: Digest) -> Checkpoint {
        Checkpoint {
            height,
            state_root,
            log_size: height,
            log_root: hash_parts(&[b"log"]),
        }
    }

    fn cluster(n: u32) -> Vec<Tracker> {
        let (sharing, shares) = deal_anonymous::<Variant, N3f1>(
            test_rng(),
            Mode::NonZeroCounter,
            NonZeroU32::new(n).expect("positive"),
        );
        let signers: Vec<Arc<CosignatureSigner>> = (0..n as u8)
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
                let me = share.index.get();
                Tracker::new(
                    hash_parts(&[b"c"]),
                    None,
                    Some(me),
                    Vec::new(),
                    Some((sharing.clone(), share)),
                    witnesses,
                )
            })
            .collect()
    }

    impl Tracker {
        /// Applies `checkpoint` and returns this node's partial (it holds a share).
        fn signed(&mut self, checkpoint: Checkpoint, now: u64) -> (CheckpointMessage, Vec<Action>) {
            let (partial, actions) = self.applied(checkpoint, now).expect("keyed");
            (partial.expect("a share in force"), actions)
        }
    }

    fn trackers() -> Vec<Tracker> {
        cluster(4)
    }

    /// When the tests sign, in milliseconds.
    const NOW: u64 = 1_700_000_000_000;

    /// Node `index`'s announcement for `checkpoint` with its partial replaced by one over
    /// another message, under its own index and with its valid cosignature.
    fn junk(node: &mut Tracker, checkpoint: Checkpoint) -> CheckpointMessage {
        let (
            CheckpointMessage::Partial {
                height,
                cosignature,
                ..
            },
            _,
        ) = node.signed(checkpoint, NOW)
        else {
            panic!("a partial")
        };
        let partial = threshold::sign_message::<Variant>(
            node.keys[&0].share.as_ref().expect("keyed"),
            namespace::CHECKPOINT,
            b"junk",
        );
        CheckpointMessage::Partial {
            height,
            partial,
            cosignature,
        }
    }

    fn stored(actions: &[Action]) -> Option<&WitnessedCheckpoint> {
        actions.iter().find_map(|action| match action {
            Action::Store(witnessed) => Some(&**witnessed),
            _ => None,
        })
    }

    fn blocked(actions: &[Action]) -> Vec<u32> {
        actions
            .iter()
            .filter_map(|action| match action {
                Action::Block(index) => Some(*index),
                _ => None,
            })
            .collect()
    }

    #[test]
    fn three_partials_certify_and_late_node_gets_reply() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let mut sent = Vec::new();
        for node in nodes.iter_mut().take(3) {
            let (partial, actions) = node.signed(cp(1, root), NOW);
            assert!(actions.is_empty());
            sent.push(partial);
        }
        // Node 0 receives partials from 1 and 2: the second completes the quorum.
        assert_eq!(nodes[0].handle(sent[1].clone(), 1), vec![]);
        let actions = nodes[0].handle(sent[2].clone(), 2);
        let witnessed = stored(&actions).expect("a certificate").clone();
        assert!(
            witnessed
                .certified
                .verify(&hash_parts(&[b"c"]), nodes[0].sharing(1).public())
        );
        assert_eq!(
            witnessed.cosignatures.keys().copied().collect::<Vec<_>>(),
            vec![0, 1, 2],
            "stored with the cosignatures of the nodes whose partials made it"
        );
        nodes[0].mark_certified(1);
        // Node 3 applies late; its partial draws a reply from node 0, which also keeps its
        // cosignature.
        let (late, _) = nodes[3].signed(cp(1, root), NOW);
        assert_eq!(nodes[0].handle(late.clone(), 3), vec![Action::Reply(1)]);
        assert_eq!(nodes[0].cosignatures(1).len(), 4);
        assert_eq!(
            nodes[0].handle(late, 3),
            vec![Action::Reply(1)],
            "a re-send is answered again"
        );
        let actions = nodes[3].handle(CheckpointMessage::Certified(witnessed.clone()), 0);
        let at_late = stored(&actions).expect("the late node stores the certificate it was sent");
        assert_eq!(at_late.certified, witnessed.certified);
        assert_eq!(
            at_late.cosignatures.len(),
            4,
            "its own and the three it was sent"
        );
        let message = CheckpointMessage::Certified(witnessed);
        let decoded = CheckpointMessage::decode(message.encode()).expect("decodes");
        assert_eq!(decoded, message);
    }

    #[test]
    fn forged_cosignatures_are_not_kept() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        nodes[0].signed(cp(1, root), NOW);
        let (partial, _) = nodes[1].signed(cp(1, root), NOW);
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
        assert_eq!(nodes[0].handle(forged, 1), vec![]);
        assert_eq!(
            nodes[0].cosignatures(1).keys().copied().collect::<Vec<_>>(),
            vec![0],
            "a partial with a bad cosignature is dropped whole"
        );
        // A certificate relayed with a forged cosignature keeps only the valid ones.
        nodes[2].signed(cp(1, root), NOW);
        let (p3, _) = nodes[3].signed(cp(1, root), NOW);
        assert_eq!(nodes[2].handle(p3, 3), vec![]);
        let (p1, _) = nodes[1].signed(cp(1, root), NOW);
        let actions = nodes[2].handle(p1, 1);
        let mut witnessed = stored(&actions).expect("certified").clone();
        let bad = witnessed.cosignatures.get_mut(&1).expect("node 1 cosigned");
        bad.signature[0] ^= 1;
        let actions = nodes[0].handle(CheckpointMessage::Certified(witnessed), 2);
        let kept = stored(&actions).expect("the certificate itself is valid");
        assert_eq!(
            kept.cosignatures.keys().copied().collect::<Vec<_>>(),
            vec![0, 2, 3]
        );
    }

    #[test]
    fn witnessed_checkpoint_decoding_rejects_unordered_or_excess_cosigners() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let mut sent = Vec::new();
        for node in nodes.iter_mut().take(3) {
            sent.push(node.signed(cp(1, root), NOW).0);
        }
        nodes[0].handle(sent[1].clone(), 1);
        let actions = nodes[0].handle(sent[2].clone(), 2);
        let witnessed = stored(&actions).expect("certified");
        let bytes = witnessed.encode().to_vec();
        assert_eq!(
            welkin_types::decode::<WitnessedCheckpoint>(&bytes)
                .ok()
                .as_ref(),
            Some(witnessed)
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
    fn partial_over_a_different_root_is_refused_without_a_block() {
        let mut nodes = trackers();
        nodes[0].signed(cp(1, hash_parts(&[b"root"])), NOW);
        let (liar, _) = nodes[1].signed(cp(1, hash_parts(&[b"forged root"])), NOW);
        let (honest, _) = nodes[2].signed(cp(1, hash_parts(&[b"root"])), NOW);
        // Its cosignature is over another body: which of the two diverged is not known.
        assert_eq!(nodes[0].handle(liar, 1), vec![]);
        assert_eq!(nodes[0].handle(honest, 2), vec![]);
        // The fourth, honest partial completes the certificate.
        let (fourth, _) = nodes[3].signed(cp(1, hash_parts(&[b"root"])), NOW);
        assert!(stored(&nodes[0].handle(fourth, 3)).is_some());
    }

    #[test]
    fn junk_partial_with_valid_cosignature_gets_its_sender_blocked_and_recovery_retried() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        nodes[0].signed(cp(1, root), NOW);
        let bad = junk(&mut nodes[1], cp(1, root));
        let (honest2, _) = nodes[2].signed(cp(1, root), NOW);
        let (honest3, _) = nodes[3].signed(cp(1, root), NOW);
        assert_eq!(nodes[0].handle(bad.clone(), 1), vec![]);
        // Own, junk and node 2 make three: the optimistic recovery fails, the junk is found.
        assert_eq!(nodes[0].handle(honest2, 2), vec![Action::Block(1)]);
        // The junk sender's slot stays refused: neither a re-send nor its honest partial
        // counts now.
        assert_eq!(nodes[0].handle(bad, 1), vec![]);
        let (late_honest1, _) = nodes[1].signed(cp(1, root), NOW);
        assert_eq!(nodes[0].handle(late_honest1, 1), vec![]);
        let actions = nodes[0].handle(honest3, 3);
        assert_eq!(blocked(&actions), Vec::<u32>::new());
        let witnessed = stored(&actions).expect("the honest partials certify");
        assert!(
            witnessed
                .certified
                .verify(&hash_parts(&[b"c"]), nodes[0].sharing(1).public())
        );
    }

    #[test]
    fn f_junk_senders_cannot_prevent_recovery_from_the_honest_ones() {
        // n = 7, t = 5, f = 2: nodes 0 and 1 (the lowest indices, used first by recovery)
        // send junk to node 6.
        let mut nodes = cluster(7);
        let root = hash_parts(&[b"root"]);
        let junk0 = junk(&mut nodes[0], cp(1, root));
        let junk1 = junk(&mut nodes[1], cp(1, root));
        let honest: Vec<_> = (2..6)
            .map(|i| nodes[i].signed(cp(1, root), NOW).0)
            .collect();
        let receiver = &mut nodes[6];
        receiver.signed(cp(1, root), NOW);
        let mut actions = receiver.handle(junk0, 0);
        actions.extend(receiver.handle(junk1, 1));
        for (offset, message) in honest.into_iter().enumerate() {
            actions.extend(receiver.handle(message, 2 + offset as u32));
        }
        assert_eq!(blocked(&actions), vec![0, 1]);
        assert!(stored(&actions).is_some(), "{actions:?}");
    }

    #[test]
    fn partial_under_another_nodes_index_blocks_its_sender() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        nodes[0].signed(cp(1, root), NOW);
        let (p1, _) = nodes[1].signed(cp(1, root), NOW);
        let (p2, _) = nodes[2].signed(cp(1, root), NOW);
        assert_eq!(
            nodes[0].handle(p1, 3),
            vec![Action::Block(3)],
            "sent by node 3 under node 1's index"
        );
        assert_eq!(nodes[0].handle(p2, 2), vec![], "only two accepted so far");
    }

    #[test]
    fn invalid_certificate_blocks_its_sender() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let sent: Vec<_> = (0..3)
            .map(|i| nodes[i].signed(cp(1, root), NOW).0)
            .collect();
        nodes[3].signed(cp(1, root), NOW);
        nodes[0].handle(sent[1].clone(), 1);
        let actions = nodes[0].handle(sent[2].clone(), 2);
        let mut witnessed = stored(&actions).expect("certified").clone();
        witnessed.certified.checkpoint.log_size += 1;
        assert_eq!(
            nodes[3].handle(CheckpointMessage::Certified(witnessed), 0),
            vec![Action::Block(0)]
        );
    }

    #[test]
    fn early_messages_wait_for_apply_one_per_sender() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let (p1, _) = nodes[1].signed(cp(5, root), NOW);
        let (p2, _) = nodes[2].signed(cp(5, root), NOW);
        for _ in 0..100 {
            assert_eq!(nodes[0].handle(p1.clone(), 1), vec![]);
        }
        assert_eq!(nodes[0].handle(p2, 2), vec![]);
        let far = nodes[1].signed(cp(EARLY_WINDOW + 1, root), NOW).0;
        assert_eq!(nodes[0].handle(far, 1), vec![]);
        assert_eq!(
            nodes[0].early.values().map(BTreeMap::len).sum::<usize>(),
            2,
            "one slot per sender per height, nothing beyond the early window"
        );
        let (_, actions) = nodes[0].signed(cp(5, root), NOW);
        assert!(stored(&actions).is_some());
        assert!(nodes[0].early.is_empty());
    }

    #[test]
    fn own_partial_is_resent_with_backoff_until_certified() {
        let mut nodes = trackers();
        let root = hash_parts(&[b"root"]);
        let (mine, _) = nodes[0].signed(cp(1, root), NOW);
        assert!(nodes[0].resends(NOW + RESEND_AFTER_MS - 1).is_empty());
        assert_eq!(nodes[0].resends(NOW + RESEND_AFTER_MS), vec![mine.clone()]);
        // Next after twice the interval.
        let next = NOW + RESEND_AFTER_MS + 2 * RESEND_AFTER_MS;
        assert!(nodes[0].resends(next - 1).is_empty());
        assert_eq!(nodes[0].resends(next), vec![mine]);
        nodes[0].mark_certified(1);
        assert!(nodes[0].resends(NOW + 10 * RESEND_MAX_MS).is_empty());
    }
}
