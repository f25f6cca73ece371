//! The time actor: signer for every coordinator, coordinator for this node's clients.

use super::{
    ClockState, NodeClock, Tick, TimeFailure, TimeRequest, TimeStatus,
    clock::{ClockConfig, LocalClock},
    wire::{MAX_REASON_BYTES, TimeMessage},
};
use crate::{
    penalty::{Offence, Penalties},
    store::Runtime,
};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_cryptography::bls12381::primitives::{
    group::Share, ops::threshold, sharing::Sharing, variant::PartialSignature,
};
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_parallel::Sequential;
use futures::{
    StreamExt as _,
    channel::{mpsc, oneshot},
};
use rand_core::CryptoRng;
use std::{
    collections::{BTreeMap, VecDeque},
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};
use tracing::{debug, warn};
use welkin_time::{
    Agreement, Certificate, CertifiedTime, MAX_BATCH, MAX_WINDOW_NS, SignedReading, agree,
    batch_paths, batch_root,
};
use welkin_types::{
    Digest, Payload, PrivateKey, PublicKey, Sender as TxSender, Transaction, Variant, namespace,
};

/// Rounds this node coordinates at once; further requests wait and go in the next batch.
const MAX_ROUNDS: usize = 4;
/// Clients waiting for a round to start; more are refused as busy.
const MAX_PENDING: usize = 4 * MAX_BATCH;
/// How long a coordinator waits for the readings it lacks once `2f+1` are in.
const GRACE: Duration = Duration::from_millis(3);
/// How long a round may take in all.
const ROUND: Duration = Duration::from_millis(1_000);
/// A round of this node's own runs when no round has completed for this long.
const TICK: Duration = Duration::from_millis(1_000);
/// Roots a signer remembers (when it first saw each), for [`SEEN`] at most.
const MAX_SEEN: usize = 8_192;
const SEEN: Duration = Duration::from_secs(10);
/// Disagreements in a row that quarantine a node, and agreements in a row that release it.
pub(crate) const QUARANTINE_STRIKES: u32 = 3;

fn ns(time: SystemTime) -> u64 {
    time.duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A round's phase.
enum Phase {
    /// Gathering readings; `quorum_at` is when `2f+1` were in.
    Reading {
        readings: BTreeMap<u32, SignedReading>,
        quorum_at: Option<SystemTime>,
    },
    /// Gathering partials over `message`.
    Signing {
        agreement: Agreement,
        message: Vec<u8>,
        /// Readings of clocks this round quarantined: evidence to log once certified.
        flags: Vec<SignedReading>,
        partials: BTreeMap<u32, PartialSignature<Variant>>,
        refusals: BTreeMap<u32, String>,
    },
}

/// One batch this node coordinates.
struct Round {
    nonces: Vec<[u8; 32]>,
    replies: Vec<oneshot::Sender<Result<CertifiedTime, TimeFailure>>>,
    started: SystemTime,
    phase: Phase,
}

/// The time actor's inputs.
pub(crate) struct TimeActor<E: Runtime + CryptoRng> {
    pub(crate) context: E,
    pub(crate) me: u32,
    pub(crate) key: PrivateKey,
    pub(crate) share: Share,
    pub(crate) sharing: Sharing<Variant>,
    pub(crate) cluster_id: Digest,
    pub(crate) members: Vec<PublicKey>,
    pub(crate) penalties: Penalties,
    pub(crate) clock: ClockConfig,
    pub(crate) status: Arc<Mutex<TimeStatus>>,
    /// The node, to log clock faults through.
    pub(crate) handle: crate::handle::NodeHandle<E>,
}

struct State<E: Runtime + CryptoRng> {
    inputs: TimeActor<E>,
    clock: LocalClock,
    faults: usize,
    pending: VecDeque<TimeRequest>,
    rounds: BTreeMap<Digest, Round>,
    /// Roots this node gave a reading for: when, and whether it has answered a certify
    /// request for it (each root is signed for once).
    seen: BTreeMap<Digest, (SystemTime, bool)>,
    seen_order: VecDeque<Digest>,
    nodes: Vec<NodeClock>,
    last_certified: SystemTime,
    certified: u64,
    refused: u64,
}

impl<E: Runtime + CryptoRng> TimeActor<E> {
    /// The initial status shared with the API before the actor runs.
    pub(crate) fn initial_status(me: u32, members: usize) -> TimeStatus {
        TimeStatus {
            me,
            reading: welkin_time::Reading {
                midpoint_ns: 0,
                radius_ns: u64::MAX,
                synced: false,
            },
            latest: None,
            nodes: (0..members)
                .map(|index| NodeClock {
                    index: u32::try_from(index).expect("at most MAX_NODES"),
                    offset_ns: 0,
                    radius_ns: 0,
                    synced: false,
                    state: ClockState::Unknown,
                    streak: 0,
                    disagreements: 0,
                    last_heard_ms: None,
                })
                .collect(),
            certified: 0,
            refused: 0,
        }
    }

    /// Starts the loop: client requests from the API, messages over `network`.
    pub(crate) fn start<S, R>(self, requests: mpsc::Receiver<TimeRequest>, network: (S, R))
    where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let n = self.members.len();
        let nodes = Self::initial_status(self.me, n).nodes;
        let context = self.context.child("run");
        let state = State {
            clock: LocalClock::new(self.clock.clone()),
            faults: (n - 1) / 3,
            inputs: self,
            pending: VecDeque::new(),
            rounds: BTreeMap::new(),
            seen: BTreeMap::new(),
            seen_order: VecDeque::new(),
            nodes,
            last_certified: SystemTime::UNIX_EPOCH,
            certified: 0,
            refused: 0,
        };
        context.spawn(move |_| state.run(requests, network));
    }
}

impl<E: Runtime + CryptoRng> State<E> {
    fn now(&self) -> SystemTime {
        self.inputs.context.current()
    }

    async fn run<S, R>(
        mut self,
        mut requests: mpsc::Receiver<TimeRequest>,
        (mut sender, mut receiver): (S, R),
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        loop {
            let wake = self.inputs.context.sleep_until(self.next_wake());
            commonware_macros::select! {
                _ = wake => self.on_timer(&mut sender),
                message = receiver.recv() => {
                    let Ok((from, bytes)) = message else { return };
                    self.on_message(from, bytes, &mut sender);
                },
                request = requests.next() => {
                    let Some(request) = request else { return };
                    self.on_request(request, &mut sender);
                },
            }
        }
    }

    /// The earliest instant something is due: a grace or round deadline, or the next tick.
    fn next_wake(&self) -> SystemTime {
        let now = self.now();
        // The next tick is due only while no round runs (rounds have deadlines of their own).
        let mut wake = if self.rounds.is_empty() {
            (self.last_certified + TICK).max(now)
        } else {
            now + ROUND
        };
        for round in self.rounds.values() {
            wake = wake.min(round.started + ROUND);
            if let Phase::Reading {
                quorum_at: Some(at),
                ..
            } = &round.phase
            {
                wake = wake.min(*at + GRACE);
            }
        }
        wake
    }

    fn on_timer(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        let now = self.now();
        let due: Vec<Digest> = self
            .rounds
            .iter()
            .filter(|(_, round)| match &round.phase {
                Phase::Reading { quorum_at, .. } => {
                    quorum_at.is_some_and(|at| now >= at + GRACE) || now >= round.started + ROUND
                }
                Phase::Signing { .. } => now >= round.started + ROUND,
            })
            .map(|(root, _)| *root)
            .collect();
        for root in due {
            let reading_phase = matches!(
                self.rounds.get(&root).map(|r| &r.phase),
                Some(Phase::Reading { .. })
            );
            if reading_phase {
                self.close_readings(root, sender);
            } else {
                self.fail(root, "too few valid partials arrived in time".into());
            }
        }
        if self.rounds.is_empty() && now >= self.last_certified + TICK {
            // A tick of this node's own: a fresh nonce nobody waits for.
            let mut nonce = [0u8; 32];
            self.inputs.context.fill_bytes(&mut nonce);
            self.start_round(vec![nonce], Vec::new(), sender);
            // Even if it fails, do not retry at once.
            self.last_certified = now;
        }
        self.expire_seen(now);
        self.publish();
    }

    // ---- coordinating ---------------------------------------------------------------

    fn on_request(
        &mut self,
        request: TimeRequest,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        if self.pending.len() >= MAX_PENDING {
            let _ = request.reply.send(Err(TimeFailure::Busy(MAX_PENDING)));
            return;
        }
        self.pending.push_back(request);
        self.start_pending(sender);
    }

    fn start_pending(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        while self.rounds.len() < MAX_ROUNDS && !self.pending.is_empty() {
            let take = self.pending.len().min(MAX_BATCH);
            let mut nonces = Vec::with_capacity(take);
            let mut replies = Vec::with_capacity(take);
            for request in self.pending.drain(..take) {
                nonces.push(request.nonce);
                replies.push(request.reply);
            }
            self.start_round(nonces, replies, sender);
        }
    }

    fn start_round(
        &mut self,
        nonces: Vec<[u8; 32]>,
        replies: Vec<oneshot::Sender<Result<CertifiedTime, TimeFailure>>>,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let root = batch_root(&nonces);
        if self.rounds.contains_key(&root) {
            // The same batch twice (a client repeating a nonce alone): fail the newcomers.
            for reply in replies {
                let _ = reply.send(Err(TimeFailure::Refused(
                    "the same nonce is already being certified; use a fresh nonce".into(),
                )));
            }
            return;
        }
        let started = self.now();
        let own = self.sign_reading(root, started);
        self.remember(root, started);
        let mut readings = BTreeMap::new();
        readings.insert(self.inputs.me, own);
        self.rounds.insert(
            root,
            Round {
                nonces,
                replies,
                started,
                phase: Phase::Reading {
                    readings,
                    quorum_at: None,
                },
            },
        );
        let peers = self.peers(|_| true);
        if !peers.is_empty() {
            sender.send(
                Recipients::Some(peers),
                TimeMessage::Ask { root }.encode(),
                false,
            );
        }
        self.check_readings(root, sender);
    }

    /// The other members this node asks, filtered by `keep(position)`.
    fn peers(&self, keep: impl Fn(u32) -> bool) -> Vec<PublicKey> {
        self.inputs
            .members
            .iter()
            .enumerate()
            .filter_map(|(i, key)| {
                let i = u32::try_from(i).expect("at most MAX_NODES");
                (i != self.inputs.me && keep(i)).then(|| key.clone())
            })
            .collect()
    }

    fn on_reading(
        &mut self,
        from: u32,
        reading: SignedReading,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let root = reading.root;
        let Some(round) = self.rounds.get_mut(&root) else {
            return;
        };
        let Phase::Reading { readings, .. } = &mut round.phase else {
            return;
        };
        if reading.signer != from {
            self.block(from, "time reading signed as another node");
            return;
        }
        if !reading.verify(&self.inputs.cluster_id, &self.inputs.members[from as usize]) {
            self.block(from, "time reading signature does not verify");
            return;
        }
        readings.insert(from, reading);
        self.check_readings(root, sender);
    }

    /// Moves a round on when every reading is in; starts the grace when `2f+1` are.
    fn check_readings(&mut self, root: Digest, sender: &mut impl Sender<PublicKey = PublicKey>) {
        let n = self.inputs.members.len();
        let quorum = 2 * self.faults + 1;
        let now = self.now();
        let Some(round) = self.rounds.get_mut(&root) else {
            return;
        };
        let Phase::Reading {
            readings,
            quorum_at,
        } = &mut round.phase
        else {
            return;
        };
        if readings.len() >= n {
            self.close_readings(root, sender);
        } else if readings.len() >= quorum && quorum_at.is_none() {
            *quorum_at = Some(now);
        }
    }

    /// Agrees on the readings gathered and asks for partials (or fails the round).
    fn close_readings(&mut self, root: Digest, sender: &mut impl Sender<PublicKey = PublicKey>) {
        let now = self.now();
        let Some(round) = self.rounds.get_mut(&root) else {
            return;
        };
        let Phase::Reading { readings, .. } = &mut round.phase else {
            return;
        };
        let readings = std::mem::take(readings);
        let window_ns = ns(now).saturating_sub(ns(round.started)).min(MAX_WINDOW_NS);
        // Quarantined clocks are left out while enough others remain.
        let quorum = 2 * self.faults + 1;
        let trusted: BTreeMap<u32, SignedReading> = readings
            .iter()
            .filter(|(i, _)| self.nodes[**i as usize].state != ClockState::Quarantined)
            .map(|(i, r)| (*i, r.clone()))
            .collect();
        let used = if trusted.len() >= quorum {
            trusted
        } else {
            readings.clone()
        };
        let tuples: Vec<(u32, u64, u64)> = used
            .values()
            .map(|r| (r.signer, r.reading.earliest_ns(), r.reading.latest_ns()))
            .collect();
        let agreement = match agree(&tuples, self.faults, window_ns) {
            Ok(agreement) => agreement,
            Err(refusal) => {
                let missing = self.inputs.members.len() - readings.len();
                self.note_readings(&readings, None, window_ns, now);
                self.fail(
                    root,
                    if missing > 0 {
                        format!("{refusal} ({missing} nodes did not answer)")
                    } else {
                        refusal.to_string()
                    },
                );
                return;
            }
        };
        let quarantined = self.note_readings(&readings, Some(&agreement), window_ns, now);
        let flags: Vec<SignedReading> = quarantined
            .iter()
            .filter_map(|i| readings.get(i).cloned())
            .collect();
        let message = Certificate::message(&self.inputs.cluster_id, &root, &agreement);
        let mut partials = BTreeMap::new();
        let mut refusals = BTreeMap::new();
        match self.own_check(root, &agreement, now) {
            Ok(()) => {
                partials.insert(
                    self.inputs.me,
                    threshold::sign_message::<Variant>(
                        &self.inputs.share,
                        namespace::TIME,
                        &message,
                    ),
                );
            }
            Err(reason) => {
                refusals.insert(self.inputs.me, reason);
            }
        }
        let request = TimeMessage::Certify {
            root,
            window_ns,
            readings: used.values().cloned().collect(),
        };
        let nodes = &self.nodes;
        let signers = self.peers(|i| nodes[i as usize].state != ClockState::Quarantined);
        if !signers.is_empty() {
            sender.send(Recipients::Some(signers), request.encode(), false);
        }
        let round = self.rounds.get_mut(&root).expect("the round is open");
        round.phase = Phase::Signing {
            agreement,
            message,
            flags,
            partials,
            refusals,
        };
        self.check_partials(root);
    }

    fn on_partial(
        &mut self,
        from: u32,
        root: Digest,
        partial: Result<PartialSignature<Variant>, String>,
    ) {
        let Some(round) = self.rounds.get_mut(&root) else {
            return;
        };
        let Phase::Signing {
            partials, refusals, ..
        } = &mut round.phase
        else {
            return;
        };
        match partial {
            Ok(partial) => {
                if partial.index.get() != from {
                    self.block(from, "time partial under another node's share index");
                    return;
                }
                partials.insert(from, partial);
            }
            Err(reason) => {
                debug!(from, %reason, "a signer refused a time certificate");
                refusals.insert(from, reason);
            }
        }
        self.check_partials(root);
    }

    /// Recovers the certificate once `t` partials are in: optimistically from the first `t`,
    /// then, if that fails, from those that verify one by one (blocking the others' senders).
    fn check_partials(&mut self, root: Digest) {
        let required = self.inputs.sharing.required() as usize;
        let n = self.inputs.members.len();
        let Some(round) = self.rounds.get_mut(&root) else {
            return;
        };
        let Phase::Signing {
            message,
            partials,
            refusals,
            agreement,
            ..
        } = &mut round.phase
        else {
            return;
        };
        if partials.len() + (n - partials.len() - refusals.len()) < required {
            let reasons: Vec<String> = refusals
                .iter()
                .map(|(i, reason)| format!("node {i}: {reason}"))
                .collect();
            let summary = format!(
                "only {} of the {required} partials needed can come ({})",
                partials.len(),
                reasons.join("; ")
            );
            self.fail(root, summary);
            return;
        }
        if partials.len() < required {
            return;
        }
        let sharing = &self.inputs.sharing;
        let recover = |partials: &BTreeMap<u32, PartialSignature<Variant>>| {
            threshold::recover::<Variant, _>(sharing, partials.values().take(required), &Sequential)
                .ok()
        };
        let public = sharing.public();
        let verifies = |signature| {
            commonware_cryptography::bls12381::primitives::ops::verify_message::<Variant>(
                public,
                namespace::TIME,
                message,
                &signature,
            )
            .is_ok()
        };
        let mut signature = recover(partials).filter(|s| verifies(*s));
        let mut bad = Vec::new();
        if signature.is_none() {
            partials.retain(|index, partial| {
                let ok = threshold::verify_message::<Variant>(
                    sharing,
                    namespace::TIME,
                    message,
                    partial,
                )
                .is_ok();
                if !ok {
                    bad.push(*index);
                }
                ok
            });
            for index in &bad {
                refusals.insert(*index, "sent a partial that does not verify".into());
            }
            if partials.len() >= required {
                signature = recover(partials).filter(|s| verifies(*s));
            }
        }
        let agreement = *agreement;
        for index in bad {
            self.block(index, "time partial does not verify");
        }
        match signature {
            Some(signature) => self.finish(root, agreement, signature),
            None => self.check_partials_after_refusals(root),
        }
    }

    /// After bad partials were dropped: fail the round if the rest cannot reach `t`.
    fn check_partials_after_refusals(&mut self, root: Digest) {
        let required = self.inputs.sharing.required() as usize;
        let n = self.inputs.members.len();
        if let Some(Round {
            phase: Phase::Signing {
                partials, refusals, ..
            },
            ..
        }) = self.rounds.get(&root)
            && partials.len() + (n - partials.len() - refusals.len()) < required
        {
            self.check_partials(root);
        }
    }

    fn finish(
        &mut self,
        root: Digest,
        agreement: Agreement,
        signature: welkin_types::ClusterSignature,
    ) {
        let Some(round) = self.rounds.remove(&root) else {
            return;
        };
        let now = self.now();
        let certificate = Certificate {
            root,
            earliest_ns: agreement.earliest_ns,
            latest_ns: agreement.latest_ns,
            agreed: agreement.agreed,
            window_ns: agreement.window_ns,
            signature,
        };
        if let Phase::Signing { flags, .. } = &round.phase {
            for reading in flags {
                self.log_fault(reading.clone(), certificate.clone());
            }
        }
        let paths = batch_paths(&round.nonces);
        let size = u32::try_from(round.nonces.len()).expect("batches are at most MAX_BATCH");
        let mut last = None;
        for (index, ((nonce, path), reply)) in round
            .nonces
            .iter()
            .zip(paths)
            .zip(
                round
                    .replies
                    .into_iter()
                    .map(Some)
                    .chain(std::iter::repeat_with(|| None)),
            )
            .enumerate()
        {
            let certified = CertifiedTime {
                certificate: certificate.clone(),
                nonce: *nonce,
                index: u32::try_from(index).expect("batches are at most MAX_BATCH"),
                size,
                path,
            };
            if let Some(reply) = reply {
                let _ = reply.send(Ok(certified.clone()));
            }
            last = Some(certified);
        }
        // True time was inside the interval at some instant of the round; as a bound on
        // this clock's error now, widen the latest end by the round's length.
        let elapsed = ns(now).saturating_sub(ns(round.started));
        self.clock.agreed(
            ns(now),
            agreement.earliest_ns,
            agreement.latest_ns.saturating_add(elapsed),
        );
        self.last_certified = now;
        self.certified += 1;
        if let Some(certified) = last {
            let tick = Tick {
                certified,
                started_ns: ns(round.started),
                finished_ns: ns(now),
            };
            self.inputs.status.lock().expect("time status lock").latest = Some(tick);
        }
        self.publish();
    }

    /// Appends the evidence that a clock was quarantined to the audit log (a record signed
    /// by this node), in a task of its own so that rounds never wait on admission.
    fn log_fault(&mut self, reading: SignedReading, certificate: Certificate) {
        let fault = welkin_time::ClockFault {
            reading,
            certificate,
        };
        let by = match fault.verify(
            &self.inputs.cluster_id,
            self.inputs.sharing.public(),
            &self.inputs.members,
        ) {
            Ok(by) => by,
            Err(error) => return debug!(%error, "no clock fault to log"),
        };
        warn!(
            node = fault.reading.signer,
            by_ns = by,
            "logging a clock fault"
        );
        let now_ms = ns(self.now()) / 1_000_000;
        let handle = self.inputs.handle.clone();
        let tx = Transaction {
            sender: TxSender::Key(commonware_cryptography::Signer::public_key(
                &self.inputs.key,
            )),
            nonce: self.inputs.context.next_u64(),
            expiry_ms: now_ms.saturating_add(handle.genesis().chain.max_tx_ttl_ms.min(60_000)),
            payload: Payload::Record {
                media_type: welkin_time::CLOCK_FAULT_MEDIA_TYPE.into(),
                content: fault.encode().to_vec(),
            },
        }
        .sign(&self.inputs.key, &self.inputs.cluster_id);
        self.inputs
            .context
            .child("clock_fault")
            .spawn(move |_| async move {
                if let Err(error) = handle.submit(tx).await {
                    debug!(%error, "clock fault not admitted");
                }
            });
    }

    fn fail(&mut self, root: Digest, reason: String) {
        let Some(round) = self.rounds.remove(&root) else {
            return;
        };
        warn!(%reason, batch = round.nonces.len(), "time round failed");
        self.refused += 1;
        for reply in round.replies {
            let _ = reply.send(Err(TimeFailure::Refused(reason.clone())));
        }
        self.publish();
    }

    /// Records each node's reading against the agreement (or silence), and quarantines or
    /// releases clocks by their streaks. A reading agrees when it overlaps the interval once
    /// its latest bound is moved by the window, as the agreement itself moved it.
    fn note_readings(
        &mut self,
        readings: &BTreeMap<u32, SignedReading>,
        agreement: Option<&Agreement>,
        window_ns: u64,
        now: SystemTime,
    ) -> Vec<u32> {
        let mut quarantined = Vec::new();
        let now_ms = ns(now) / 1_000_000;
        for node in &mut self.nodes {
            let Some(reading) = readings.get(&node.index) else {
                if node.state != ClockState::Quarantined {
                    node.state = ClockState::Silent;
                }
                continue;
            };
            let reading = reading.reading;
            node.radius_ns = reading.radius_ns;
            node.synced = reading.synced;
            node.last_heard_ms = Some(now_ms);
            let Some(agreement) = agreement else {
                continue;
            };
            let midpoint = agreement.earliest_ns / 2 + agreement.latest_ns / 2;
            node.offset_ns = i64::try_from(i128::from(reading.midpoint_ns) - i128::from(midpoint))
                .unwrap_or(if reading.midpoint_ns > midpoint {
                    i64::MAX
                } else {
                    i64::MIN
                });
            let agrees = reading.earliest_ns() <= agreement.latest_ns
                && reading.latest_ns().saturating_add(window_ns) >= agreement.earliest_ns;
            if !agrees {
                node.disagreements += 1;
            }
            (node.state, node.streak) = match (node.state, agrees) {
                (ClockState::Quarantined, true) if node.streak + 1 >= QUARANTINE_STRIKES => {
                    (ClockState::Agreeing, 0)
                }
                (ClockState::Quarantined, true) => (ClockState::Quarantined, node.streak + 1),
                (ClockState::Quarantined, false) => (ClockState::Quarantined, 0),
                (_, true) => (ClockState::Agreeing, 0),
                (ClockState::Disagreeing, false) if node.streak + 1 >= QUARANTINE_STRIKES => {
                    warn!(
                        node = node.index,
                        offset_ns = node.offset_ns,
                        radius_ns = node.radius_ns,
                        "clock quarantined: it disagreed with the cluster {QUARANTINE_STRIKES} times in a row"
                    );
                    quarantined.push(node.index);
                    (ClockState::Quarantined, 0)
                }
                (ClockState::Disagreeing, false) => (ClockState::Disagreeing, node.streak + 1),
                (_, false) => (ClockState::Disagreeing, 1),
            };
        }
        quarantined
    }

    /// Shares the current status with the API.
    fn publish(&mut self) {
        let reading = self.clock.read(ns(self.now()));
        let mut status = self.inputs.status.lock().expect("time status lock");
        status.reading = reading;
        status.nodes = self.nodes.clone();
        status.certified = self.certified;
        status.refused = self.refused;
    }

    // ---- signing --------------------------------------------------------------------

    fn sign_reading(&self, root: Digest, now: SystemTime) -> SignedReading {
        SignedReading::sign(
            &self.inputs.key,
            &self.inputs.cluster_id,
            self.inputs.me,
            root,
            self.clock.read(ns(now)),
        )
    }

    fn remember(&mut self, root: Digest, now: SystemTime) {
        if self.seen.contains_key(&root) {
            return;
        }
        if self.seen_order.len() >= MAX_SEEN
            && let Some(oldest) = self.seen_order.pop_front()
        {
            self.seen.remove(&oldest);
        }
        self.seen.insert(root, (now, false));
        self.seen_order.push_back(root);
    }

    fn expire_seen(&mut self, now: SystemTime) {
        while let Some(oldest) = self.seen_order.front() {
            match self.seen.get(oldest) {
                Some((at, _)) if *at + SEEN > now => break,
                _ => {
                    let oldest = *oldest;
                    self.seen.remove(&oldest);
                    self.seen_order.pop_front();
                }
            }
        }
    }

    /// Whether this node's clock agrees with `agreement`: its reading now, moved earlier by
    /// how long ago it first saw the batch (true time then was at most that much earlier),
    /// overlaps the interval.
    fn own_check(
        &self,
        root: Digest,
        agreement: &Agreement,
        now: SystemTime,
    ) -> Result<(), String> {
        let reading = self.clock.read(ns(now));
        let age = self
            .seen
            .get(&root)
            .map_or(0, |(seen, _)| ns(now).saturating_sub(ns(*seen)));
        let earliest = reading.earliest_ns().saturating_sub(age);
        let latest = reading.latest_ns();
        if earliest <= agreement.latest_ns && latest >= agreement.earliest_ns {
            Ok(())
        } else {
            Err(format!(
                "my clock reads {} ± {} ns, outside the agreed [{}, {}]",
                reading.midpoint_ns, reading.radius_ns, agreement.earliest_ns, agreement.latest_ns
            ))
        }
    }

    fn on_ask(&mut self, from: u32, root: Digest, sender: &mut impl Sender<PublicKey = PublicKey>) {
        let now = self.now();
        self.remember(root, now);
        let reading = self.sign_reading(root, now);
        self.send(sender, from, &TimeMessage::Reading(reading));
    }

    fn on_certify(
        &mut self,
        from: u32,
        root: Digest,
        window_ns: u64,
        readings: Vec<SignedReading>,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        // Only for a batch this node gave a reading for, and once: a peer cannot make it
        // check readings (n signature checks) more often than it asks for readings.
        match self.seen.get_mut(&root) {
            Some((_, answered)) if !*answered => *answered = true,
            Some(_) => return,
            None => {
                let reason = "this node gave no reading for that batch".to_string();
                self.send(sender, from, &TimeMessage::Refuse { root, reason });
                return;
            }
        }
        if readings.len() > self.inputs.members.len() {
            self.block(from, "certify request with more readings than nodes");
            return;
        }
        for reading in &readings {
            let valid = reading.root == root
                && self
                    .inputs
                    .members
                    .get(reading.signer as usize)
                    .is_some_and(|key| reading.verify(&self.inputs.cluster_id, key));
            if !valid {
                self.block(from, "certify request with a reading that does not verify");
                return;
            }
        }
        let tuples: Vec<(u32, u64, u64)> = readings
            .iter()
            .map(|r| (r.signer, r.reading.earliest_ns(), r.reading.latest_ns()))
            .collect();
        let answer = match agree(&tuples, self.faults, window_ns) {
            Err(refusal) => TimeMessage::Refuse {
                root,
                reason: refusal.to_string(),
            },
            Ok(agreement) => match self.own_check(root, &agreement, self.now()) {
                Err(mut reason) => {
                    reason.truncate(MAX_REASON_BYTES);
                    TimeMessage::Refuse { root, reason }
                }
                Ok(()) => {
                    let message = Certificate::message(&self.inputs.cluster_id, &root, &agreement);
                    TimeMessage::Partial {
                        root,
                        partial: threshold::sign_message::<Variant>(
                            &self.inputs.share,
                            namespace::TIME,
                            &message,
                        ),
                    }
                }
            },
        };
        self.send(sender, from, &answer);
    }

    // ---- messages -------------------------------------------------------------------

    fn send(
        &self,
        sender: &mut impl Sender<PublicKey = PublicKey>,
        to: u32,
        message: &TimeMessage,
    ) {
        if let Some(peer) = self.inputs.members.get(to as usize) {
            sender.send(Recipients::One(peer.clone()), message.encode(), false);
        }
    }

    fn on_message(
        &mut self,
        from: PublicKey,
        bytes: commonware_runtime::IoBuf,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let Some(index) = self.inputs.members.iter().position(|k| *k == from) else {
            return;
        };
        let index = u32::try_from(index).expect("at most MAX_NODES");
        if index == self.inputs.me {
            return;
        }
        match TimeMessage::decode(bytes) {
            Ok(TimeMessage::Ask { root }) => self.on_ask(index, root, sender),
            Ok(TimeMessage::Reading(reading)) => self.on_reading(index, reading, sender),
            Ok(TimeMessage::Certify {
                root,
                window_ns,
                readings,
            }) => self.on_certify(index, root, window_ns, readings, sender),
            Ok(TimeMessage::Partial { root, partial }) => self.on_partial(index, root, Ok(partial)),
            Ok(TimeMessage::Refuse { root, reason }) => self.on_partial(index, root, Err(reason)),
            Err(error) => self.block(index, &format!("undecodable time message: {error}")),
        }
        self.start_pending(sender);
    }

    fn block(&self, index: u32, reason: &str) {
        if index == self.inputs.me {
            return;
        }
        if let Some(peer) = self.inputs.members.get(index as usize) {
            self.inputs
                .penalties
                .block(peer.clone(), Offence::Time, reason);
        }
    }
}
