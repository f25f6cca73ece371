//! This node's part in a dealerless cluster's key generation.
//!
//! Every [`TICK`] the actor reads the round the state has open (`welkin_state::keygen`):
//! 1. For a round it has not joined, it starts its part ([`welkin_dkg::Participant`]) and
//!    sends each other member its dealing over the DKG channel.
//! 2. While it deals, it sends its dealing again every [`RESEND`] to the members that have
//!    not acknowledged it (a message may be lost, a member may have restarted).
//! 3. Once every member has acknowledged, or [`DEALING_TIME`] after it started, it submits its
//!    signed log as a transaction, again every [`RESUBMIT`] until the state records it.
//! 4. Once the state holds the round's output, it computes its share from the logs the state
//!    selected, checks it against the output's polynomial, seals it to disk and hands the key
//!    to the services that wait for it.
//!
//! A dealing that does not check against its commitment blocks its sender: an honest dealer
//! never sends one. Messages of another round are dropped without blame (the sender may be a
//! round ahead or behind). The actor keeps one round's state: at most one dealing and one
//! acknowledgement per member.

use super::{ClusterKeys, KeyCell, KeygenStore, Slot};
use crate::{
    checkpoints::Tracker,
    handle::NodeHandle,
    penalty::{Offence, Penalties},
};
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Metrics, Spawner, Storage};
use rand_core::CryptoRng;
use std::{
    collections::BTreeSet,
    sync::{Arc, Mutex},
    time::{Duration, SystemTime},
};
use tracing::{error, info, warn};
use welkin_dkg::{DkgError, DkgMessage, Ledger, Participant, Round};
use welkin_state::keygen::{GeneratedKey, Keygen};
use welkin_types::{
    Payload, PrivateKey, PublicKey, Sender as TxSender, Transaction, membership::MembershipOp,
};

/// How often the actor looks at the state.
pub(crate) const TICK: Duration = Duration::from_millis(100);
/// How often a dealer sends its dealing again to members that have not acknowledged it. At
/// first start the p2p links come up over the first second or so, and a dealing sent before
/// its link is lost: a short interval gets it through soon after (a dealing is well under
/// 1 KiB for 10 nodes).
pub(crate) const RESEND: Duration = Duration::from_millis(250);
/// How long a dealer waits for acknowledgements before it gives its log (players that have
/// not acknowledged by then have their shares from this dealer revealed in the log).
pub(crate) const DEALING_TIME: Duration = Duration::from_secs(5);
/// How long a submitted log may take to reach the state before it is submitted again.
pub(crate) const RESUBMIT: Duration = Duration::from_secs(5);

/// This node's part in one round.
struct Part {
    round: u64,
    participant: Participant,
    started: SystemTime,
    resent: SystemTime,
    /// The signed log, once given, and when it was last submitted.
    log: Option<(Vec<u8>, SystemTime)>,
    /// The dealers whose dealings are kept on disk.
    persisted: BTreeSet<PublicKey>,
    /// Whether this node deals in this part (not after a restart).
    dealing: bool,
}

/// The key generation actor.
pub(crate) struct KeygenActor<E: Spawner + Clock + Storage + Metrics + CryptoRng> {
    pub(crate) context: E,
    pub(crate) signer: PrivateKey,
    pub(crate) members: Vec<PublicKey>,
    pub(crate) handle: NodeHandle<E>,
    pub(crate) penalties: Penalties,
    pub(crate) cell: KeyCell,
    pub(crate) tracker: Arc<Mutex<Tracker>>,
    pub(crate) store: KeygenStore<E>,
}

/// What the actor knows between ticks once the first key exists.
#[derive(Default)]
struct Epochs {
    /// The key round whose share this node holds (or knows it lacks).
    held_round: Option<u64>,
    /// Who may send key generation messages: the roster and the open round's players.
    peers: Vec<PublicKey>,
}

impl<E: Spawner + Clock + Storage + Metrics + CryptoRng> KeygenActor<E> {
    /// Starts the actor on the DKG channel.
    pub(crate) fn start<S, R>(self, network: (S, R))
    where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let context = self.context.child("run");
        context.spawn(move |_| self.run(network));
    }

    async fn run<S, R>(mut self, (mut sender, mut receiver): (S, R))
    where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let mut part: Option<Part> = None;
        let mut tick_at = self.context.current();
        let mut nonce = self.handle.clock_ns();
        let mut epochs = Epochs {
            held_round: None,
            peers: self.members.clone(),
        };
        let mut first_key_done = false;
        loop {
            commonware_macros::select! {
                message = receiver.recv() => {
                    let Ok((from, bytes)) = message else { return };
                    if !epochs.peers.contains(&from) {
                        continue;
                    }
                    let max = epochs.peers.len();
                    self.on_message(&mut part, from, bytes.as_ref(), max, &mut sender).await;
                },
                _ = self.context.sleep_until(tick_at) => {
                    tick_at = self.context.current() + TICK;
                    if !first_key_done {
                        if self.on_tick(&mut part, &mut sender, &mut nonce).await {
                            info!("cluster key ready");
                            first_key_done = true;
                            part = None;
                        }
                    } else {
                        self.on_reshare_tick(&mut part, &mut epochs, &mut sender, &mut nonce)
                            .await;
                    }
                },
            }
        }
    }

    /// One look at the state once the first key exists: makes this node's share of a
    /// resharing the state decided, and takes part in the resharing round open.
    async fn on_reshare_tick<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        part: &mut Option<Part>,
        epochs: &mut Epochs,
        sender: &mut S,
        nonce: &mut u64,
    ) {
        let state = match self.handle.value(welkin_state::keys::epoch()).await {
            Some(bytes) => match welkin_state::epochs::EpochState::decode(&bytes) {
                Ok(state) => state,
                Err(error) => {
                    error!(%error, "the epoch state does not decode");
                    return;
                }
            },
            None => welkin_state::epochs::EpochState::default(),
        };
        let mut roster = self.members.clone();
        roster.extend(state.joined.iter().map(|n| n.public_key.clone()));
        let mut peers = roster.clone();
        if let Some(reshare) = &state.reshare {
            peers.extend(
                reshare
                    .players
                    .iter()
                    .filter(|p| !roster.contains(p))
                    .cloned(),
            );
        }
        epochs.peers = peers;
        let Some(current) = self.current_key().await else {
            return;
        };
        if epochs.held_round.is_none()
            && self
                .handle
                .value(welkin_state::keys::epoch_key())
                .await
                .is_none()
        {
            // The first key, made (or loaded) by `finish`.
            epochs.held_round = Some(current.round);
        }
        if epochs.held_round != Some(current.round) {
            self.finish_reshare(part.take(), &current, &roster).await;
            epochs.held_round = Some(current.round);
        }
        let Some(reshare) = state.reshare else {
            return;
        };
        let me = self.signer.public_key();
        let position = roster.iter().position(|k| *k == me).map(|p| p as u32);
        let dealer = position.is_some_and(|p| reshare.dealers.contains(&p));
        let player = reshare.players.contains(&me);
        if !dealer && !player {
            return;
        }
        if part.as_ref().is_none_or(|p| p.round != reshare.round) {
            let previous = match current.output(roster.len()) {
                Ok(output) => output,
                Err(error) => {
                    error!(%error, "the current key output does not decode");
                    return;
                }
            };
            let round = match reshare.round_with(&self.handle.cluster_id(), &roster, previous) {
                Ok(round) => round,
                Err(error) => {
                    error!(round = reshare.round, %error, "the resharing round is unusable");
                    return;
                }
            };
            // Kept so that a restart after the boundary (when the state holds the new output,
            // not this one) can still rebuild the round and make its share.
            let info = encode_round_info(&current, round.dealers(), &reshare.players);
            self.store
                .put(&mut self.context, Slot::RoundInfo(reshare.round), &info)
                .await;
            // A dealer deals its share of the current output; without one (it lost it), it
            // only plays.
            let share = self
                .cell
                .get()
                .filter(|_| dealer && epochs.held_round == Some(current.round))
                .and_then(|k| k.share.clone());
            let now = self.context.current();
            match self.take_part(round, reshare.round, sender, share).await {
                Ok(mut taken) => {
                    taken.started = now;
                    taken.resent = now;
                    *part = Some(taken);
                }
                Err(error) => {
                    error!(round = reshare.round, %error, "cannot take part in the resharing");
                    return;
                }
            }
        }
        let recorded = position.is_some_and(|p| reshare.logs.iter().any(|(i, _)| *i == p));
        if let Some(p) = part.as_mut() {
            self.drive(p, recorded, sender, nonce).await;
        }
    }

    /// This node's part in resharing round `key.round`, rebuilt after a restart from what it
    /// kept: the round's description and the dealings it acknowledged (the logs' reveals
    /// cover the others).
    fn resume_reshare(
        &self,
        key: &GeneratedKey,
        roster: &[PublicKey],
    ) -> Result<Participant, String> {
        let bytes = self.store.get(Slot::RoundInfo(key.round))?.ok_or(
            "this node's part in the round is lost (it restarted before taking part); it \
                    holds no share until the next resharing",
        )?;
        let (previous, dealers, players) =
            decode_round_info(&bytes).ok_or("the kept round description does not decode")?;
        let output = previous
            .output(roster.len().max(players.len()))
            .map_err(|e| e.to_string())?;
        let round = Round::new(
            &self.handle.cluster_id(),
            key.round,
            Some(output),
            dealers.clone(),
            players,
        )
        .map_err(|e| e.to_string())?;
        let max = round.max_participants();
        let mut dealings = Vec::new();
        for dealer in &dealers {
            if let Some(bytes) = self.store.get(Slot::Dealing(key.round, dealer))? {
                let message = DkgMessage::from_bytes(&bytes, max)
                    .map_err(|e| format!("a kept dealing does not decode: {e}"))?;
                dealings.push((dealer.clone(), message));
            }
        }
        info!(
            round = key.round,
            kept = dealings.len(),
            "making this node's reshared share after a restart"
        );
        Participant::resume(round, &self.signer, dealings).map_err(|e| e.to_string())
    }

    /// The key output that holds the current shares, as the state records it.
    async fn current_key(&self) -> Option<GeneratedKey> {
        let bytes = match self.handle.value(welkin_state::keys::epoch_key()).await {
            Some(bytes) => bytes,
            None => self.handle.value(welkin_state::keys::cluster_key()).await?,
        };
        GeneratedKey::decode(&bytes)
            .inspect_err(|error| error!(%error, "the recorded key does not decode"))
            .ok()
    }

    /// Makes this node's share of the output a resharing recorded (`key`), or takes the one
    /// it kept; hands it to the checkpoint tracker (from the epoch's first height) and the
    /// key cell.
    async fn finish_reshare(
        &mut self,
        part: Option<Part>,
        key: &GeneratedKey,
        roster: &[PublicKey],
    ) {
        let output = match key.output(roster.len()) {
            Ok(output) => output,
            Err(error) => {
                error!(%error, "the reshared key output does not decode");
                return;
            }
        };
        let sharing = output.public().clone();
        let me = self.signer.public_key();
        if output.players().position(&me).is_none() {
            info!(
                round = key.round,
                "not a member after this resharing: holding no share"
            );
            self.cell.replace(ClusterKeys {
                sharing,
                share: None,
            });
            return;
        }
        let stored = self.store.share_of(key.round).unwrap_or_else(|error| {
            error!(%error, "the stored reshared share is unusable");
            None
        });
        let made = match stored {
            Some(share) => Ok(share),
            None => match part.filter(|p| p.round == key.round) {
                Some(part) => share_from_logs(&mut self.context, part.participant, &key.logs),
                None => self
                    .resume_reshare(key, roster)
                    .and_then(|p| share_from_logs(&mut self.context, p, &key.logs)),
            },
        };
        let share = match made {
            Ok(share)
                if sharing.partial_public(share.index).ok()
                    == Some(share.public::<welkin_types::Variant>()) =>
            {
                share
            }
            Ok(_) => {
                error!(
                    round = key.round,
                    "the reshared share does not match the new polynomial"
                );
                self.cell.replace(ClusterKeys {
                    sharing,
                    share: None,
                });
                return;
            }
            Err(reason) => {
                error!(round = key.round, %reason, "no share of the reshared key");
                self.cell.replace(ClusterKeys {
                    sharing,
                    share: None,
                });
                return;
            }
        };
        self.store
            .save_share_of(&mut self.context, key.round, &share)
            .await;
        let mut slots = vec![
            Slot::Dealt(key.round),
            Slot::Log(key.round),
            Slot::RoundInfo(key.round),
        ];
        slots.extend(roster.iter().map(|m| Slot::Dealing(key.round, m)));
        slots.push(Slot::ShareOf(key.round.saturating_sub(1)));
        self.store.forget(slots).await;
        let now = crate::application::now_ms(&self.context);
        let taken =
            crate::executor::lock(&self.tracker).set_share(key.height + 1, share.clone(), now);
        info!(
            round = key.round,
            height = key.height,
            tracker = taken,
            "made this node's share of the reshared key"
        );
        self.cell.replace(ClusterKeys {
            sharing,
            share: Some(share),
        });
    }

    fn round_of(&self, keygen: &Keygen) -> Option<Round> {
        match keygen.round_of(&self.handle.cluster_id(), &self.members) {
            Ok(round) => Some(round),
            Err(error) => {
                error!(round = keygen.round, %error, "the open key generation round is unusable");
                None
            }
        }
    }

    /// One look at the state; returns `true` once the key is in hand.
    async fn on_tick<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        part: &mut Option<Part>,
        sender: &mut S,
        nonce: &mut u64,
    ) -> bool {
        if self.cell.get().is_some() {
            return true;
        }
        if let Some(bytes) = self.handle.value(welkin_state::keys::cluster_key()).await {
            match GeneratedKey::decode(&bytes) {
                Ok(generated) => {
                    self.finish(part.take(), &generated).await;
                    return true;
                }
                Err(error) => {
                    error!(%error, "the generated cluster key in the state does not decode");
                    return false;
                }
            }
        }
        let Some(keygen) = self
            .handle
            .value(welkin_state::keys::keygen())
            .await
            .and_then(|bytes| Keygen::decode(&bytes).ok())
        else {
            return false;
        };
        let now = self.context.current();
        if part.as_ref().is_none_or(|p| p.round != keygen.round) {
            let Some(round) = self.round_of(&keygen) else {
                return false;
            };
            match self.take_part(round, keygen.round, sender, None).await {
                Ok(mut taken) => {
                    taken.started = now;
                    taken.resent = now;
                    *part = Some(taken);
                }
                Err(error) => {
                    error!(round = keygen.round, %error, "cannot take part in key generation");
                    return false;
                }
            }
        }
        let me = self.signer.public_key();
        let my_index = self.members.iter().position(|m| *m == me).unwrap_or(0) as u32;
        let recorded = keygen.logs.iter().any(|(i, _)| *i == my_index);
        if let Some(p) = part.as_mut() {
            self.drive(p, recorded, sender, nonce).await;
        }
        false
    }

    /// Deals, resends, gives and submits this node's log for `p` (`recorded`: the state
    /// holds its log already).
    async fn drive<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        p: &mut Part,
        recorded: bool,
        sender: &mut S,
        nonce: &mut u64,
    ) {
        let now = self.context.current();
        let elapsed = |since: SystemTime| now.duration_since(since).unwrap_or_default();
        if p.dealing && p.log.is_none() && p.participant.awaiting_acks() {
            if elapsed(p.started) < DEALING_TIME {
                if elapsed(p.resent) >= RESEND {
                    p.resent = now;
                    for o in p.participant.unacknowledged() {
                        sender.send(Recipients::One(o.to), o.message.to_bytes(), false);
                    }
                }
                return;
            }
            warn!(
                round = p.round,
                missing = p.participant.unacknowledged().count(),
                "giving the dealer log without every acknowledgement"
            );
        }
        if p.log.is_none()
            && let Some(log) = p.participant.log()
        {
            let log = log.encode().to_vec();
            // Kept before it is submitted: after a restart the same log goes again.
            self.store
                .put(&mut self.context, Slot::Log(p.round), &log)
                .await;
            p.log = Some((log, SystemTime::UNIX_EPOCH));
        }
        if let Some((log, submitted)) = p.log.as_mut()
            && !recorded
            && elapsed(*submitted) >= RESUBMIT
        {
            *submitted = now;
            *nonce += 1;
            self.submit(p.round, log.clone(), *nonce).await;
        }
    }

    /// This node's part in `round` (number `number`): its first, dealing (marked on disk
    /// before anything is sent: players acknowledge one dealing per dealer), or, after a
    /// restart, the part it had, from the dealings it kept and its log if it gave one.
    async fn take_part<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        round: Round,
        number: u64,
        sender: &mut S,
        share: Option<commonware_cryptography::bls12381::primitives::group::Share>,
    ) -> Result<Part, String> {
        let now = self.context.current();
        if self.store.get(Slot::Dealt(number))?.is_some() {
            let max = round.max_participants();
            let mut dealings = Vec::new();
            let dealers = round.dealers().to_vec();
            for dealer in &dealers {
                if let Some(bytes) = self.store.get(Slot::Dealing(number, dealer))? {
                    let message = DkgMessage::from_bytes(&bytes, max)
                        .map_err(|e| format!("a kept dealing does not decode: {e}"))?;
                    dealings.push((dealer.clone(), message));
                }
            }
            let kept = dealings.len();
            let participant = Participant::resume(round, &self.signer, dealings)
                .map_err(|e| format!("the kept dealings do not check: {e}"))?;
            let log = self
                .store
                .get(Slot::Log(number))?
                .map(|log| (log.to_vec(), SystemTime::UNIX_EPOCH));
            info!(
                round = number,
                kept,
                log = log.is_some(),
                "taking up key generation again after a restart"
            );
            return Ok(Part {
                round: number,
                persisted: participant.received().keys().cloned().collect(),
                participant,
                started: now,
                resent: now,
                log,
                dealing: false,
            });
        }
        self.store
            .put(&mut self.context, Slot::Dealt(number), &[1])
            .await;
        let me = self.signer.public_key();
        let (participant, outgoing) =
            if round.is_dealer(&me) && share.is_none() && number > 0 && self.cell.get().is_some() {
                // A resharing dealer without its share only plays.
                (
                    Participant::resume(round, &self.signer, Vec::new())
                        .map_err(|e| e.to_string())?,
                    Vec::new(),
                )
            } else {
                Participant::start(&mut self.context, round, &self.signer, share)
                    .map_err(|e| e.to_string())?
            };
        let mut part = Part {
            round: number,
            participant,
            started: now,
            resent: now,
            log: None,
            persisted: BTreeSet::new(),
            dealing: true,
        };
        // Its own dealing first, then the others'.
        self.persist(&mut part).await;
        info!(round = number, "dealing for the cluster key");
        for o in outgoing {
            sender.send(Recipients::One(o.to), o.message.to_bytes(), false);
        }
        Ok(part)
    }

    /// Keeps every dealing the part acknowledged and has not kept yet.
    async fn persist(&mut self, part: &mut Part) {
        let new: Vec<(PublicKey, Vec<u8>)> = part
            .participant
            .received()
            .iter()
            .filter(|(dealer, _)| !part.persisted.contains(*dealer))
            .map(|(dealer, message)| (dealer.clone(), message.to_bytes()))
            .collect();
        for (dealer, bytes) in new {
            self.store
                .put(
                    &mut self.context,
                    Slot::Dealing(part.round, &dealer),
                    &bytes,
                )
                .await;
            part.persisted.insert(dealer);
        }
    }

    async fn submit(&self, round: u64, log: Vec<u8>, nonce: u64) {
        let params = &self.handle.genesis().chain;
        let tx = Transaction {
            sender: TxSender::Key(self.signer.public_key()),
            nonce,
            expiry_ms: crate::application::now_ms(&self.context)
                .saturating_add(params.max_tx_ttl_ms.min(60_000)),
            payload: Payload::Membership(Box::new(MembershipOp::DealerLog { round, log })),
        }
        .sign(&self.signer, &self.handle.cluster_id());
        match self.handle.submit(tx).await {
            Ok(_) => info!(round, "dealer log submitted"),
            Err(error) => warn!(round, %error, "dealer log not admitted; it is sent again later"),
        }
    }

    /// Computes this node's share from the logs the state selected and hands the key over.
    async fn finish(&mut self, part: Option<Part>, generated: &GeneratedKey) {
        let output = match generated.output(self.members.len()) {
            Ok(output) => output,
            Err(error) => {
                error!(%error, "the generated cluster key in the state does not decode");
                return;
            }
        };
        let sharing = output.public().clone();
        let stored = self.store.share().unwrap_or_else(|error| {
            error!(%error, "the stored cluster key share is unusable");
            None
        });
        let share = match stored.map_or_else(|| self.share_from(part, generated), Ok) {
            Ok(share) => Some(share),
            Err(reason) => {
                error!(
                    %reason,
                    "this node holds no share of the cluster key; it verifies but does not \
                     sign until the key is reshared"
                );
                None
            }
        };
        if let Some(share) = &share {
            if sharing.partial_public(share.index).ok()
                != Some(share.public::<welkin_types::Variant>())
            {
                error!("the computed share does not match the cluster's polynomial; not used");
                return;
            }
            self.store.save_share(&mut self.context, share).await;
            // What the rounds kept to survive a restart has served its purpose.
            let mut slots = Vec::new();
            for round in 0..=generated.round {
                slots.push(Slot::Dealt(round));
                slots.push(Slot::Log(round));
                slots.extend(self.members.iter().map(|m| Slot::Dealing(round, m)));
            }
            self.store.forget(slots).await;
            crate::executor::lock(&self.tracker).set_key(sharing.clone(), share.clone());
        } else {
            // Without a share the node still checks and gathers the others' partials.
            crate::executor::lock(&self.tracker).set_epoch_key(
                0,
                sharing.clone(),
                self.members.clone(),
            );
        }
        info!(
            round = generated.round,
            height = generated.height,
            "cluster key generated"
        );
        self.cell.set(ClusterKeys { sharing, share });
    }

    fn share_from(
        &mut self,
        part: Option<Part>,
        generated: &GeneratedKey,
    ) -> Result<commonware_cryptography::bls12381::primitives::group::Share, String> {
        let participant = match part.filter(|p| p.round == generated.round) {
            Some(part) => part.participant,
            None => {
                // No part in the deciding round in memory: the node started late, or
                // restarted. Its share comes from the dealings it kept, and from the logs'
                // reveals of dealings it never acknowledged; a log naming an acknowledgement
                // whose dealing it lost leaves it without one.
                let round = generated.round_of(&self.handle.cluster_id(), &self.members)?;
                let max = round.max_participants();
                let mut dealings = Vec::new();
                for dealer in &self.members {
                    if let Some(bytes) = self.store.get(Slot::Dealing(generated.round, dealer))? {
                        let message = DkgMessage::from_bytes(&bytes, max)
                            .map_err(|e| format!("a kept dealing does not decode: {e}"))?;
                        dealings.push((dealer.clone(), message));
                    }
                }
                Participant::resume(round, &self.signer, dealings).map_err(|e| e.to_string())?
            }
        };
        share_from_logs(&mut self.context, participant, &generated.logs)
    }

    async fn on_message<S: Sender<PublicKey = PublicKey>>(
        &mut self,
        part: &mut Option<Part>,
        from: PublicKey,
        bytes: &[u8],
        peers: usize,
        sender: &mut S,
    ) {
        let max = std::num::NonZeroU32::new(peers.max(1) as u32).expect("nonzero");
        let message = match DkgMessage::from_bytes(bytes, max) {
            Ok(message) => message,
            Err(error) => {
                self.penalties.block(
                    from,
                    Offence::Keygen,
                    &format!("undecodable key generation message: {error}"),
                );
                return;
            }
        };
        let Some(p) = part.as_mut() else {
            return;
        };
        match p.participant.handle(&from, message) {
            Ok(Some(reply)) => {
                // The dealing reaches the disk before its acknowledgement leaves: a dealer's
                // log may name this node as holding it.
                self.persist(p).await;
                sender.send(Recipients::One(reply.to), reply.message.to_bytes(), false);
            }
            Ok(None) => {}
            Err(DkgError::Dealing { reason, .. }) => self.penalties.block(
                from,
                Offence::Keygen,
                &format!("a dealing that does not check: {reason}"),
            ),
            Err(error) => warn!(%error, "key generation message dropped"),
        }
    }
}

/// `RoundInfo := previous u32 len bytes | dealers u16 ([32])* | players u16 ([32])*`.
fn encode_round_info(
    previous: &GeneratedKey,
    dealers: &[PublicKey],
    players: &[PublicKey],
) -> Vec<u8> {
    let record = previous.encode();
    let mut out =
        Vec::with_capacity(record.len() + 4 + 2 + 32 * (dealers.len() + players.len()) + 2);
    out.extend_from_slice(&(record.len() as u32).to_be_bytes());
    out.extend_from_slice(&record);
    for list in [dealers, players] {
        out.extend_from_slice(&(list.len() as u16).to_be_bytes());
        for key in list {
            out.extend_from_slice(key.encode().as_ref());
        }
    }
    out
}

fn decode_round_info(bytes: &[u8]) -> Option<(GeneratedKey, Vec<PublicKey>, Vec<PublicKey>)> {
    let (len, rest) = bytes.split_first_chunk::<4>()?;
    let len = u32::from_be_bytes(*len) as usize;
    let (record, mut rest) = (rest.get(..len)?, rest.get(len..)?);
    let previous = GeneratedKey::decode(record).ok()?;
    let mut lists = Vec::new();
    for _ in 0..2 {
        let (count, after) = rest.split_first_chunk::<2>()?;
        let count = u16::from_be_bytes(*count) as usize;
        let mut keys = Vec::with_capacity(count);
        let mut cursor = after;
        for _ in 0..count {
            let (key, next) = cursor.split_first_chunk::<32>()?;
            keys.push(welkin_types::decode::<PublicKey>(key).ok()?);
            cursor = next;
        }
        lists.push(keys);
        rest = cursor;
    }
    if !rest.is_empty() {
        return None;
    }
    let players = lists.pop()?;
    let dealers = lists.pop()?;
    Some((previous, dealers, players))
}

/// This node's share of a round's output, from `participant` (its part in the round) and the
/// signed `logs` the state selected.
fn share_from_logs(
    rng: &mut impl CryptoRng,
    participant: Participant,
    logs: &[Vec<u8>],
) -> Result<commonware_cryptography::bls12381::primitives::group::Share, String> {
    let mut ledger = Ledger::new(participant.round().clone());
    for bytes in logs {
        let log = welkin_dkg::decode_log(bytes, ledger.round().max_participants())
            .map_err(|e| e.to_string())?;
        ledger.record(log).map_err(|e| e.to_string())?;
    }
    participant
        .finish(rng, &ledger)
        .map(|(_, share)| share)
        .map_err(|e| format!("it cannot make its share from the selected logs: {e}"))
}
