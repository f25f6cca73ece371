//! The transit actor: key generation, signing as a signer, and coordinating this node's
//! signatures (see the module above). It runs on a task of its own; the executor hands it
//! grants through a bounded channel and the API its jobs through another.

use super::{
    SignFailure, SignGrant, SignJob,
    shares::Shares,
    wire::{MAX_REASON_BYTES, SessionId, TransitMessage},
};
use crate::{
    handle::NodeHandle,
    penalty::{Offence, Penalties},
    store::Runtime,
};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_p2p::{Receiver, Recipients, Sender};
use futures::{StreamExt as _, channel::mpsc};
use rand_core::CryptoRng;
use sha2::Digest as _;
use std::{
    collections::{BTreeMap, BTreeSet, VecDeque},
    time::Duration,
};
use tracing::{debug, info, warn};
use welkin_frost::{
    Commitments, Coordinator, DkgConfig, DkgRound1, DkgRound2, Index, NONCE_POOL, PublicKeys,
    Round1Package, Round2Package, SignRequest, SignatureShare, Signer,
};
use welkin_state::{
    keys,
    secrets::transit::dkg::{Dkg, Open, decode_open, public_keys_digest},
};
use welkin_types::{
    Digest, Payload, PrivateKey, PublicKey, Sender as TxSender, Transaction, TxId,
    secrets::{SecretsOp, transit::DkgOutcome, transit::TransitOp},
};

/// How often the actor looks at open key generations, timeouts and nonce pools.
const TICK: Duration = Duration::from_millis(100);
/// Key generations are polled every this many ticks.
const POLL_EVERY: u32 = 5;
/// A round-1 package or result not yet committed is submitted again after this long.
const RESUBMIT_MS: u64 = 5_000;
/// Round-2 shares are sent again to peers that have not reported after this long.
const RESEND_MS: u64 = 2_000;
/// How long a coordinator waits for a session's shares before replacing the silent signers.
const SESSION_MS: u64 = 2_000;
/// Most sessions for one signature before it fails.
const MAX_SESSIONS: u32 = 8;
/// How long a signature job may take in all.
const JOB_MS: u64 = 15_000;
/// Most signatures this node coordinates at once (items of all jobs).
const MAX_ITEMS: usize = 1_024;
/// Grants a signer keeps, each for [`GRANT_MS`].
const MAX_GRANTS: usize = 65_536;
const GRANT_MS: u64 = 60_000;
/// Requests for grants this node has not committed yet, kept for [`EARLY_MS`].
const MAX_EARLY: usize = 1_024;
const EARLY_MS: u64 = 5_000;
/// A coordinator asks a signer for more nonces when it holds fewer than this many.
const NONCE_LOW: usize = NONCE_POOL / 4;
/// How many it asks for.
const NONCE_BATCH: u16 = (NONCE_POOL / 2) as u16;
/// A coordinator asks one signer at most this often; a signer answers one coordinator at
/// most this often (an ask costs the signer two scalar multiplications per nonce).
const NONCE_ASK_MS: u64 = 250;
/// How long a signer that timed out or lied is passed over by new sessions (while enough
/// others remain), so that a crashed node does not cost every signature a timeout.
const SUSPECT_MS: u64 = 30_000;
/// Public keys cached.
const MAX_CACHED_KEYS: usize = 256;

/// What this node does in one key generation.
#[derive(Default)]
struct Keygen {
    attempt: u32,
    /// Secret state between rounds 1 and 2 (or `None` after a restart lost it).
    round1: Option<DkgRound1>,
    /// This node's round-1 package, as submitted.
    package: Option<Vec<u8>>,
    /// Secret state between rounds 2 and 3.
    round2: Option<DkgRound2>,
    /// The shares this node sends, kept for re-sends.
    outgoing: BTreeMap<Index, Round2Package>,
    /// The shares received, by sender.
    received: BTreeMap<Index, Round2Package>,
    /// The outcome reported, to submit again if it is not committed.
    outcome: Option<DkgOutcome>,
    last_submit_ms: u64,
    last_send_ms: u64,
    withdrew: bool,
}

/// One signature this node coordinates.
struct Item {
    message: Vec<u8>,
    session: Option<Running>,
    next_session: u32,
    exclude: BTreeSet<Index>,
    signature: Option<[u8; 64]>,
}

struct Running {
    number: u32,
    session: welkin_frost::Session,
    shares: BTreeMap<Index, SignatureShare>,
    started_ms: u64,
}

struct Job {
    key: PublicKeys,
    items: Vec<Item>,
    reply: Option<futures::channel::oneshot::Sender<Result<Vec<[u8; 64]>, SignFailure>>>,
    deadline_ms: u64,
    failure: Option<String>,
}

/// The transit actor's inputs.
pub(crate) struct TransitActor<E: Runtime + CryptoRng> {
    pub(crate) context: E,
    pub(crate) me: Index,
    pub(crate) key: PrivateKey,
    pub(crate) members: Vec<PublicKey>,
    pub(crate) handle: NodeHandle<E>,
    pub(crate) penalties: Penalties,
    pub(crate) shares: Shares<E>,
}

/// The running actor's state.
struct State<E: Runtime + CryptoRng> {
    inputs: TransitActor<E>,
    keygens: BTreeMap<(Digest, u64), Keygen>,
    signer: Signer,
    coordinator: Coordinator,
    asked: BTreeMap<Index, u64>,
    answered: BTreeMap<Index, u64>,
    grants: BTreeMap<TxId, (SignGrant, u64)>,
    grant_order: VecDeque<TxId>,
    early: VecDeque<(u64, Index, SessionId, Vec<u8>)>,
    jobs: BTreeMap<TxId, Job>,
    keys: BTreeMap<(Digest, u64), PublicKeys>,
    /// Signers passed over until the given time.
    suspects: BTreeMap<Index, u64>,
    ticks: u32,
}

impl<E: Runtime + CryptoRng> TransitActor<E> {
    /// Starts the loop: jobs from the API, grants from the executor, messages over `network`.
    pub(crate) fn start<S, R>(
        mut self,
        jobs: mpsc::Receiver<SignJob>,
        grants: mpsc::Receiver<Vec<(TxId, SignGrant)>>,
        network: (S, R),
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let signer = Signer::new(self.me, &mut self.context).expect("node indices are in range");
        let context = self.context.child("run");
        let state = State {
            inputs: self,
            keygens: BTreeMap::new(),
            signer,
            coordinator: Coordinator::new(),
            asked: BTreeMap::new(),
            answered: BTreeMap::new(),
            grants: BTreeMap::new(),
            grant_order: VecDeque::new(),
            early: VecDeque::new(),
            jobs: BTreeMap::new(),
            keys: BTreeMap::new(),
            suspects: BTreeMap::new(),
            ticks: 0,
        };
        context.spawn(move |_| state.run(jobs, grants, network));
    }
}

impl<E: Runtime + CryptoRng> State<E> {
    fn now(&self) -> u64 {
        crate::application::now_ms(&self.inputs.context)
    }

    async fn run<S, R>(
        mut self,
        mut jobs: mpsc::Receiver<SignJob>,
        mut grants: mpsc::Receiver<Vec<(TxId, SignGrant)>>,
        (mut sender, mut receiver): (S, R),
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let mut next_tick = self.inputs.context.current() + TICK;
        loop {
            let tick = self.inputs.context.sleep_until(next_tick);
            commonware_macros::select! {
                _ = tick => {
                    next_tick = self.inputs.context.current() + TICK;
                    self.tick(&mut sender).await;
                },
                message = receiver.recv() => {
                    let Ok((from, bytes)) = message else { return };
                    self.on_message(from, bytes, &mut sender);
                },
                job = jobs.next() => {
                    let Some(job) = job else { return };
                    self.start_job(job, &mut sender).await;
                },
                block = grants.next() => {
                    let Some(block) = block else { return };
                    self.on_grants(block, &mut sender);
                },
            }
        }
    }

    fn send(
        &self,
        sender: &mut impl Sender<PublicKey = PublicKey>,
        to: Index,
        message: &TransitMessage,
    ) {
        if let Some(peer) = self.inputs.members.get(usize::from(to)) {
            sender.send(Recipients::One(peer.clone()), message.encode(), false);
        }
    }

    async fn tick(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        self.ticks = self.ticks.wrapping_add(1);
        if self.ticks.is_multiple_of(POLL_EVERY) {
            self.poll_keygens(sender).await;
        }
        self.refill_nonces(sender);
        self.expire(sender);
    }

    // ---- key generation -------------------------------------------------------------

    /// Reads the open generations from the committed state and does this node's part.
    async fn poll_keygens(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        let handle = self.inputs.handle.clone();
        let open = match handle.value(keys::transit_dkgs_open()).await {
            Some(bytes) => match decode_open(&bytes) {
                Ok(open) => open,
                Err(error) => {
                    warn!(%error, "cannot read the open key generations");
                    return;
                }
            },
            None => Vec::new(),
        };
        let records = handle
            .values(
                open.iter()
                    .map(|o| keys::transit_dkg(&o.key_id, o.version))
                    .collect(),
            )
            .await;
        let mut live = BTreeSet::new();
        for (open, record) in open.into_iter().zip(records) {
            let Some(dkg) = record.and_then(|bytes| Dkg::decode(&bytes).ok()) else {
                continue;
            };
            live.insert((open.key_id, open.version));
            if dkg.failed || !dkg.participants.contains(&self.inputs.me) {
                continue;
            }
            self.step_keygen(&open, &dkg, sender).await;
        }
        // Finished, failed or forgotten generations: their secrets go (zeroized on drop).
        self.keygens.retain(|key, _| live.contains(key));
    }

    async fn step_keygen(
        &mut self,
        open: &Open,
        dkg: &Dkg,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let me = self.inputs.me;
        let now = self.now();
        let slot = (open.key_id, open.version);
        let fresh = !self.keygens.contains_key(&slot);
        let keygen = self.keygens.entry(slot).or_default();
        if keygen.attempt != dkg.attempt || fresh {
            *keygen = Keygen {
                attempt: dkg.attempt,
                ..Keygen::default()
            };
            // A package of ours committed in this attempt that we no longer hold the
            // secret for: a restart lost it.
            if dkg.round1.contains_key(&me) && !dkg.done.contains(&me) {
                keygen.withdrew = true;
                let op = step(open, dkg.attempt, DkgOutcome::Failed { culprit: me });
                info!(key = %hex::encode(open.key_id), version = open.version, "withdrawing from a key generation whose secret state a restart lost");
                self.submit(op).await;
                return;
            }
        }
        if keygen.withdrew {
            return;
        }
        let Ok(config) = DkgConfig::new(dkg.participants.iter().copied(), dkg.threshold) else {
            return;
        };
        // Round 1.
        if !dkg.round1.contains_key(&me) {
            if keygen.round1.is_none() {
                match DkgRound1::start(&config, me, &mut self.inputs.context) {
                    Ok((secret, package)) => {
                        keygen.round1 = Some(secret);
                        keygen.package = Some(package.encode());
                    }
                    Err(error) => {
                        warn!(%error, "cannot start a key generation");
                        return;
                    }
                }
            }
            if now.saturating_sub(keygen.last_submit_ms) >= RESUBMIT_MS {
                keygen.last_submit_ms = now;
                let package = keygen.package.clone().expect("made with the secret");
                let op = TransitOp::DkgRound1 {
                    mount: open.mount.clone(),
                    name: open.name.clone(),
                    key_id: open.key_id,
                    version: open.version,
                    attempt: dkg.attempt,
                    package,
                };
                self.submit(op).await;
            }
            return;
        }
        let Some(public) = &dkg.public else {
            return;
        };
        // Round 2: our shares to every other participant.
        if let Some(secret) = keygen.round1.take() {
            let mut packages = BTreeMap::new();
            for (index, bytes) in &dkg.round1 {
                match Round1Package::decode(bytes) {
                    Ok(package) => {
                        packages.insert(*index, package);
                    }
                    Err(_) => return, // checked by the state machine: not expected
                }
            }
            match secret.round2(&packages) {
                Ok((second, outgoing)) => {
                    keygen.round2 = Some(second);
                    keygen.outgoing = outgoing;
                }
                Err(error) => {
                    warn!(%error, "round 2 of a key generation failed");
                    return;
                }
            }
        }
        if now.saturating_sub(keygen.last_send_ms) >= RESEND_MS {
            keygen.last_send_ms = now;
            let messages: Vec<_> = keygen
                .outgoing
                .iter()
                .filter(|(to, _)| !dkg.done.contains(to))
                .map(|(to, package)| {
                    (
                        *to,
                        TransitMessage::Round2 {
                            key_id: open.key_id,
                            version: open.version,
                            attempt: dkg.attempt,
                            package: package.encode().to_vec(),
                        },
                    )
                })
                .collect();
            for (to, message) in messages {
                self.send(sender, to, &message);
            }
        }
        let keygen = self.keygens.get_mut(&slot).expect("present");
        if dkg.done.contains(&me) {
            return;
        }
        // Round 3: once every other participant's share is in.
        if keygen.outcome.is_none() {
            let complete = dkg
                .participants
                .iter()
                .all(|p| *p == me || keygen.received.contains_key(p));
            if !complete {
                return;
            }
            let Some(second) = keygen.round2.take() else {
                return;
            };
            let outcome = match second.finish(&keygen.received) {
                Ok((share, keys)) => {
                    let digest = public_keys_digest(&keys.encode());
                    if keys.encode() != *public {
                        warn!("a key generation finished with other public keys than the log's");
                    } else {
                        self.inputs
                            .shares
                            .put(&open.key_id, open.version, share)
                            .await;
                        info!(key = %hex::encode(open.key_id), version = open.version, "holds its share of a transit signing key");
                    }
                    DkgOutcome::Done {
                        public_keys: digest,
                    }
                }
                Err(error) => match error.culprit() {
                    Some(culprit) => {
                        warn!(culprit, %error, "a key generation share is bad");
                        DkgOutcome::Failed { culprit }
                    }
                    None => {
                        warn!(%error, "a key generation failed");
                        return;
                    }
                },
            };
            let keygen = self.keygens.get_mut(&slot).expect("present");
            keygen.outcome = Some(outcome);
            keygen.last_submit_ms = 0;
        }
        let keygen = self.keygens.get_mut(&slot).expect("present");
        if now.saturating_sub(keygen.last_submit_ms) >= RESUBMIT_MS {
            keygen.last_submit_ms = now;
            let outcome = keygen.outcome.expect("set above");
            self.submit(step(open, dkg.attempt, outcome)).await;
        }
    }

    /// Submits a key generation step signed with this node's key.
    async fn submit(&mut self, op: TransitOp) {
        let now = self.now();
        let params = self.inputs.handle.genesis().chain.clone();
        let nonce = { self.inputs.context.next_u64() };
        let tx = Transaction {
            sender: TxSender::Key(commonware_cryptography::Signer::public_key(
                &self.inputs.key,
            )),
            nonce,
            expiry_ms: now.saturating_add(params.max_tx_ttl_ms.min(60_000)),
            payload: Payload::Secrets(Box::new(SecretsOp::Transit(op))),
        }
        .sign(&self.inputs.key, &self.inputs.handle.cluster_id());
        if let Err(error) = self.inputs.handle.submit(tx).await {
            debug!(%error, "key generation step not admitted; it is sent again");
        }
    }

    fn on_round2(
        &mut self,
        from: Index,
        key_id: Digest,
        version: u64,
        attempt: u32,
        package: Vec<u8>,
    ) {
        let Some(keygen) = self.keygens.get_mut(&(key_id, version)) else {
            return; // not open here yet: the sender sends it again
        };
        if keygen.attempt != attempt || keygen.received.contains_key(&from) {
            return;
        }
        match Round2Package::decode(&package) {
            Ok(package) => {
                keygen.received.insert(from, package);
            }
            Err(error) => self.block(from, &format!("undecodable round-2 share: {error}")),
        }
    }

    // ---- signing: the signer's side -------------------------------------------------

    fn on_grants(
        &mut self,
        block: Vec<(TxId, SignGrant)>,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let now = self.now();
        for (id, grant) in block {
            if self.grants.insert(id, (grant, now + GRANT_MS)).is_none() {
                self.grant_order.push_back(id);
            }
        }
        while self.grant_order.len() > MAX_GRANTS {
            if let Some(old) = self.grant_order.pop_front() {
                self.grants.remove(&old);
            }
        }
        // Requests that came before their grant.
        let early = std::mem::take(&mut self.early);
        for (arrived, from, session, request) in early {
            if self.grants.contains_key(&session.id) {
                self.on_sign_ask(from, session, request, sender);
            } else {
                self.early.push_back((arrived, from, session, request));
            }
        }
    }

    fn on_sign_ask(
        &mut self,
        from: Index,
        session: SessionId,
        request: Vec<u8>,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let Some((grant, _)) = self.grants.get(&session.id).cloned() else {
            if self.early.len() >= MAX_EARLY {
                self.early.pop_front();
            }
            self.early.push_back((self.now(), from, session, request));
            return;
        };
        let answer = match self.sign_share(from, &grant, session, &request) {
            Ok(share) => TransitMessage::SignShare {
                session,
                share: share.encode(),
            },
            Err(mut reason) => {
                reason.truncate(MAX_REASON_BYTES);
                TransitMessage::SignRefused { session, reason }
            }
        };
        self.deliver(from, answer, sender);
    }

    /// This node's share for `session`, if the request is for the committed grant.
    fn sign_share(
        &mut self,
        coordinator: Index,
        grant: &SignGrant,
        session: SessionId,
        request: &[u8],
    ) -> Result<SignatureShare, String> {
        let request = SignRequest::decode(request).map_err(|e| format!("bad request: {e}"))?;
        let digest: [u8; 32] = sha2::Sha256::digest(request.message()).into();
        if grant.digests.get(usize::from(session.item)) != Some(&digest) {
            return Err("the message is not the one the committed request names".into());
        }
        let share = self
            .inputs
            .shares
            .get(&grant.key_id, grant.version)
            .ok_or("this node holds no share of that key version")?;
        self.signer
            .sign(coordinator, share, request.message(), &request)
            .map_err(|e| e.to_string())
    }

    fn on_nonce_ask(
        &mut self,
        from: Index,
        count: u16,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let now = self.now();
        if self
            .answered
            .get(&from)
            .is_some_and(|last| now.saturating_sub(*last) < NONCE_ASK_MS)
        {
            return;
        }
        self.answered.insert(from, now);
        let count = usize::from(count).clamp(1, NONCE_POOL);
        match self.signer.issue(from, count, &mut self.inputs.context) {
            Ok(commitments) => self.deliver(
                from,
                TransitMessage::Nonces {
                    commitments: commitments.encode(),
                },
                sender,
            ),
            Err(error) => debug!(%error, "cannot issue nonces"),
        }
    }

    // ---- signing: the coordinator's side --------------------------------------------

    /// Keeps every signer's pool of commitments for this node topped up.
    fn refill_nonces(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        let now = self.now();
        for index in 0..self.inputs.members.len() as Index {
            if self.coordinator.available(index) >= NONCE_LOW {
                continue;
            }
            if self
                .asked
                .get(&index)
                .is_some_and(|last| now.saturating_sub(*last) < NONCE_ASK_MS)
            {
                continue;
            }
            self.asked.insert(index, now);
            self.deliver(
                index,
                TransitMessage::NonceAsk { count: NONCE_BATCH },
                sender,
            );
        }
    }

    async fn start_job(&mut self, job: SignJob, sender: &mut impl Sender<PublicKey = PublicKey>) {
        let items: usize = self.jobs.values().map(|j| j.items.len()).sum();
        if items + job.messages.len() > MAX_ITEMS || self.jobs.contains_key(&job.id) {
            let _ = job.reply.send(Err(SignFailure::Busy(items)));
            return;
        }
        let Some(key) = self.public_keys(job.key_id, job.version).await else {
            let _ = job.reply.send(Err(SignFailure::NoKey(job.version)));
            return;
        };
        let now = self.now();
        let items = job
            .messages
            .into_iter()
            .map(|message| Item {
                message,
                session: None,
                next_session: 0,
                exclude: BTreeSet::new(),
                signature: None,
            })
            .collect();
        self.jobs.insert(
            job.id,
            Job {
                key,
                items,
                reply: Some(job.reply),
                deadline_ms: now + JOB_MS,
                failure: None,
            },
        );
        let count = self.jobs[&job.id].items.len();
        for item in 0..count {
            self.new_session(job.id, item, sender);
        }
        self.finish_job(job.id);
    }

    async fn public_keys(&mut self, key_id: Digest, version: u64) -> Option<PublicKeys> {
        if let Some(keys) = self.keys.get(&(key_id, version)) {
            return Some(keys.clone());
        }
        let bytes = self
            .inputs
            .handle
            .value(keys::transit_public_keys(&key_id, version))
            .await?;
        let keys = PublicKeys::decode(&bytes).ok()?;
        if self.keys.len() >= MAX_CACHED_KEYS {
            self.keys.pop_first();
        }
        self.keys.insert((key_id, version), keys.clone());
        Some(keys)
    }

    /// Starts the next session of one item with signers not yet excluded.
    fn new_session(
        &mut self,
        id: TxId,
        item: usize,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let now = self.now();
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let entry = &mut job.items[item];
        if entry.next_session >= MAX_SESSIONS {
            job.failure = Some(format!(
                "no {} signers gave valid shares in {MAX_SESSIONS} sessions (excluded: {:?})",
                job.key.threshold(),
                entry.exclude
            ));
            return;
        }
        // Recent suspects too, unless that leaves too few signers.
        let mut avoid = entry.exclude.clone();
        avoid.extend(
            self.suspects
                .iter()
                .filter(|(_, until)| **until > now)
                .map(|(signer, _)| *signer),
        );
        let attempt = match self.coordinator.session(&job.key, &entry.message, &avoid) {
            Err(welkin_frost::CoordinatorError::NotEnoughSigners { .. })
                if avoid != entry.exclude =>
            {
                self.coordinator
                    .session(&job.key, &entry.message, &entry.exclude)
            }
            other => other,
        };
        let session = match attempt {
            Ok(session) => session,
            Err(welkin_frost::CoordinatorError::NotEnoughSigners {
                available,
                threshold,
            }) => {
                let unexcluded = job
                    .key
                    .participants()
                    .iter()
                    .filter(|p| !entry.exclude.contains(p))
                    .count();
                if unexcluded < usize::from(threshold) {
                    job.failure = Some(format!(
                        "only {unexcluded} of the key's signers remain after excluding {:?} \
                         (silent or lying); {threshold} are needed",
                        entry.exclude
                    ));
                }
                // Otherwise nonces are on their way: the next tick tries again.
                let _ = available;
                return;
            }
            Err(error) => {
                job.failure = Some(error.to_string());
                return;
            }
        };
        let number = entry.next_session;
        entry.next_session += 1;
        let request = session.request().encode();
        let signers: Vec<Index> = session.signers().collect();
        entry.session = Some(Running {
            number,
            session,
            shares: BTreeMap::new(),
            started_ms: now,
        });
        let session_id = SessionId {
            id,
            item: item as u16,
            session: number,
        };
        for signer in signers {
            self.deliver(
                signer,
                TransitMessage::SignAsk {
                    session: session_id,
                    request: request.clone(),
                },
                sender,
            );
        }
    }

    fn on_share(
        &mut self,
        from: Index,
        session: SessionId,
        share: Result<Vec<u8>, String>,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        let item = usize::from(session.item);
        let now = self.now();
        let Some(job) = self.jobs.get_mut(&session.id) else {
            return;
        };
        let Some(entry) = job.items.get_mut(item) else {
            return;
        };
        let Some(running) = entry
            .session
            .as_mut()
            .filter(|r| r.number == session.session)
        else {
            return;
        };
        if !running.session.signers().any(|s| s == from) || running.shares.contains_key(&from) {
            return;
        }
        let share = match share {
            Ok(bytes) => match SignatureShare::decode(&bytes) {
                Ok(share) => share,
                Err(error) => {
                    entry.exclude.insert(from);
                    entry.session = None;
                    self.suspects.insert(from, now + SUSPECT_MS);
                    self.block(from, &format!("undecodable signature share: {error}"));
                    self.new_session(session.id, item, sender);
                    return;
                }
            },
            Err(reason) => {
                debug!(signer = from, reason, "signer refused");
                if reason.contains("unknown") {
                    // It restarted and lost the nonces it issued to us.
                    self.coordinator.forget(from);
                }
                entry.exclude.insert(from);
                entry.session = None;
                self.new_session(session.id, item, sender);
                return;
            }
        };
        if running.session.verify_share(from, &share).is_err() {
            entry.exclude.insert(from);
            entry.session = None;
            self.suspects.insert(from, now + SUSPECT_MS);
            self.block(from, "a signature share that does not verify");
            self.new_session(session.id, item, sender);
            return;
        }
        running.shares.insert(from, share);
        if running.shares.len() == running.session.signers().count() {
            match running.session.aggregate(&running.shares) {
                Ok(signature) => {
                    entry.signature = Some(signature);
                    entry.session = None;
                }
                Err(error) => {
                    warn!(%error, "shares did not aggregate");
                    entry.session = None;
                    self.new_session(session.id, item, sender);
                }
            }
        }
        self.finish_job(session.id);
    }

    /// Answers a job once every item is signed or one failed.
    fn finish_job(&mut self, id: TxId) {
        let Some(job) = self.jobs.get_mut(&id) else {
            return;
        };
        let answer = if let Some(failure) = job.failure.take() {
            Err(SignFailure::Failed(failure))
        } else if job.items.iter().all(|i| i.signature.is_some()) {
            Ok(job
                .items
                .iter()
                .map(|i| i.signature.expect("all signed"))
                .collect())
        } else {
            return;
        };
        if let Some(reply) = self.jobs.remove(&id).and_then(|mut j| j.reply.take()) {
            let _ = reply.send(answer);
        }
    }

    /// Timeouts: silent signers are replaced, jobs past their deadline fail, stale grants
    /// and early requests go.
    fn expire(&mut self, sender: &mut impl Sender<PublicKey = PublicKey>) {
        let now = self.now();
        let mut restart = Vec::new();
        let mut late = Vec::new();
        for (id, job) in &mut self.jobs {
            if now >= job.deadline_ms {
                job.failure = Some(format!(
                    "no signature within {} s: too few signers answered",
                    JOB_MS / 1000
                ));
                late.push(*id);
                continue;
            }
            for (index, item) in job.items.iter_mut().enumerate() {
                if item.signature.is_some() {
                    continue;
                }
                match &item.session {
                    Some(running) if now.saturating_sub(running.started_ms) >= SESSION_MS => {
                        for signer in running.session.signers() {
                            if !running.shares.contains_key(&signer) {
                                item.exclude.insert(signer);
                                self.suspects.insert(signer, now + SUSPECT_MS);
                            }
                        }
                        item.session = None;
                        restart.push((*id, index));
                    }
                    None => restart.push((*id, index)),
                    _ => {}
                }
            }
        }
        for (id, item) in restart {
            self.new_session(id, item, sender);
        }
        let ids: Vec<TxId> = self.jobs.keys().copied().collect();
        for id in ids.into_iter().chain(late) {
            self.finish_job(id);
        }
        while let Some(id) = self.grant_order.front().copied() {
            if self.grants.get(&id).is_some_and(|(_, until)| *until > now) {
                break;
            }
            self.grant_order.pop_front();
            self.grants.remove(&id);
        }
        self.early
            .retain(|(arrived, ..)| now.saturating_sub(*arrived) < EARLY_MS);
        self.suspects.retain(|_, until| *until > now);
    }

    // ---- messages -------------------------------------------------------------------

    /// Sends `message` to node `to`, or handles it here when `to` is this node.
    fn deliver(
        &mut self,
        to: Index,
        message: TransitMessage,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        if to == self.inputs.me {
            self.handle(to, message, sender);
        } else {
            self.send(sender, to, &message);
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
        match TransitMessage::decode(bytes) {
            Ok(message) => self.handle(index as Index, message, sender),
            Err(error) => self.block(
                index as Index,
                &format!("undecodable transit message: {error}"),
            ),
        }
    }

    fn handle(
        &mut self,
        from: Index,
        message: TransitMessage,
        sender: &mut impl Sender<PublicKey = PublicKey>,
    ) {
        match message {
            TransitMessage::Round2 {
                key_id,
                version,
                attempt,
                package,
            } => self.on_round2(from, key_id, version, attempt, package),
            TransitMessage::NonceAsk { count } => self.on_nonce_ask(from, count, sender),
            TransitMessage::Nonces { commitments } => match Commitments::decode(&commitments) {
                Ok(commitments) => {
                    let _ = self.coordinator.add(from, &commitments);
                }
                Err(error) => self.block(from, &format!("undecodable nonce commitments: {error}")),
            },
            TransitMessage::SignAsk { session, request } => {
                self.on_sign_ask(from, session, request, sender)
            }
            TransitMessage::SignShare { session, share } => {
                self.on_share(from, session, Ok(share), sender)
            }
            TransitMessage::SignRefused { session, reason } => {
                self.on_share(from, session, Err(reason), sender)
            }
        }
    }

    fn block(&self, index: Index, reason: &str) {
        if index == self.inputs.me {
            return;
        }
        if let Some(peer) = self.inputs.members.get(usize::from(index)) {
            self.inputs
                .penalties
                .block(peer.clone(), Offence::Transit, reason);
        }
    }
}

/// A key generation result for `open`'s attempt.
fn step(open: &Open, attempt: u32, outcome: DkgOutcome) -> TransitOp {
    TransitOp::DkgResult {
        mount: open.mount.clone(),
        name: open.name.clone(),
        key_id: open.key_id,
        version: open.version,
        attempt,
        outcome,
    }
}
