//! One node's side of a round: its dealer (if it deals) and its player (if it receives a
//! share).

use crate::{DkgError, DkgMessage, Faults, Ledger, Output, Round, SignedLog};
use commonware_cryptography::{
    Signer as _,
    bls12381::{
        dkg::feldman_desmedt::{Dealer, Player},
        primitives::group::Share,
    },
};
use commonware_parallel::Sequential;
use rand_core::CryptoRng;
use std::collections::{BTreeMap, BTreeSet};
use welkin_types::{PrivateKey, PublicKey, Variant};

/// A message for one peer.
#[derive(Clone, Debug, PartialEq)]
pub struct Outgoing {
    /// The peer.
    pub to: PublicKey,
    /// What to send it.
    pub message: DkgMessage,
}

/// One node in one round. Start it with [`Participant::start`], send what it returns, feed
/// it what peers send ([`Participant::handle`]), submit its [`Participant::log`] when the
/// round's dealing time is over, and once the ledger of logs is agreed, take its share with
/// [`Participant::finish`].
pub struct Participant {
    round: Round,
    me: PublicKey,
    dealer: Option<Dealer<Variant, PrivateKey>>,
    player: Option<Player<Variant, PrivateKey>>,
    /// The acknowledgement sent to each dealer, sent again when its dealing comes again (the
    /// first acknowledgement may have been lost, and the library answers a repeat with
    /// nothing).
    acks: BTreeMap<PublicKey, DkgMessage>,
    /// This node's dealing to each other player, while it deals.
    pending: BTreeMap<PublicKey, DkgMessage>,
    /// The players whose acknowledgement of this node's dealing arrived.
    acked: BTreeSet<PublicKey>,
    /// The dealings this node acknowledged (its own included), by dealer: what its share is
    /// made from, for the caller to keep across a restart.
    received: BTreeMap<PublicKey, DkgMessage>,
}

impl Participant {
    /// Starts this node's part in `round`: deals if it is a dealer (with `share`, its share of
    /// the previous round, when resharing) and gets ready to receive dealings if it is a
    /// player. Returns the dealings to send (its own dealing to itself is handled here).
    pub fn start(
        rng: &mut impl CryptoRng,
        round: Round,
        key: &PrivateKey,
        share: Option<Share>,
    ) -> Result<(Self, Vec<Outgoing>), DkgError> {
        let mut participant = Self::player(round, key)?;
        let me = participant.me.clone();
        let info = participant.round.info().clone();
        let is_dealer = participant.round.is_dealer(&me);
        let mut outgoing = Vec::new();
        if is_dealer {
            let (dealer, commitment, shares) =
                Dealer::start::<Faults>(&mut *rng, info, key.clone(), share)
                    .map_err(|e| DkgError::Round(e.to_string()))?;
            participant.dealer = Some(dealer);
            let number = participant.round.number();
            for (to, private) in shares {
                let message = DkgMessage::Dealing {
                    round: number,
                    commitment: commitment.clone(),
                    share: private,
                };
                if to == me {
                    // Our own dealing: acknowledge it here, as a peer would.
                    if let Some(reply) = participant.handle(&me, message)? {
                        participant.handle(&me, reply.message)?;
                    }
                } else {
                    participant.pending.insert(to.clone(), message.clone());
                    outgoing.push(Outgoing { to, message });
                }
            }
        }
        Ok((participant, outgoing))
    }

    /// This node's part as a player only (it deals nothing).
    fn player(round: Round, key: &PrivateKey) -> Result<Self, DkgError> {
        let me = key.public_key();
        let player = if round.is_player(&me) {
            Some(
                Player::new(round.info().clone(), key.clone())
                    .map_err(|e| DkgError::Round(e.to_string()))?,
            )
        } else {
            None
        };
        Ok(Self {
            round,
            me,
            dealer: None,
            player,
            acks: BTreeMap::new(),
            pending: BTreeMap::new(),
            acked: BTreeSet::new(),
            received: BTreeMap::new(),
        })
    }

    /// Takes up this node's part again after a restart, from the dealings it had
    /// acknowledged (which the caller kept on disk). It deals no more in this round: the
    /// players acknowledged its first dealing, which is lost. Acknowledgements are signed
    /// deterministically, so a dealer that sends its dealing again gets the same one.
    pub fn resume(
        round: Round,
        key: &PrivateKey,
        dealings: Vec<(PublicKey, DkgMessage)>,
    ) -> Result<Self, DkgError> {
        let mut participant = Self::player(round, key)?;
        for (dealer, dealing) in dealings {
            participant.handle(&dealer, dealing)?;
        }
        Ok(participant)
    }

    /// Handles a message from `from`; returns the reply to send, if any. A refused dealing
    /// ([`DkgError::Dealing`]) is evidence against its dealer: the caller blocks the peer.
    /// A repeated dealing is answered with the acknowledgement already given (whatever the
    /// repeat holds: a player acknowledges one dealing per dealer).
    pub fn handle(
        &mut self,
        from: &PublicKey,
        message: DkgMessage,
    ) -> Result<Option<Outgoing>, DkgError> {
        let expected = self.round.number();
        if message.round() != expected {
            return Err(DkgError::OtherRound {
                expected,
                got: message.round(),
            });
        }
        let original = message.clone();
        match message {
            DkgMessage::Dealing {
                commitment, share, ..
            } => {
                let player = self.player.as_mut().ok_or(DkgError::NotInRound("player"))?;
                if let Some(message) = self.acks.get(from) {
                    return Ok(Some(Outgoing {
                        to: from.clone(),
                        message: message.clone(),
                    }));
                }
                let ack = player
                    .dealer_message::<Faults>(from.clone(), commitment, share)
                    .map_err(|e| DkgError::Dealing {
                        dealer: Box::new(from.clone()),
                        reason: format!("{e:?}"),
                    })?;
                Ok(ack.map(|ack| {
                    let message = DkgMessage::Ack {
                        round: expected,
                        ack,
                    };
                    self.acks.insert(from.clone(), message.clone());
                    self.received.insert(from.clone(), original);
                    Outgoing {
                        to: from.clone(),
                        message,
                    }
                }))
            }
            DkgMessage::Ack { ack, .. } => {
                let dealer = self.dealer.as_mut().ok_or(DkgError::NotInRound("dealer"))?;
                dealer
                    .receive_player_ack(from.clone(), ack)
                    .map_err(|e| DkgError::Ack {
                        player: Box::new(from.clone()),
                        reason: format!("{e:?}"),
                    })?;
                self.acked.insert(from.clone());
                Ok(None)
            }
        }
    }

    /// This node's signed dealer log, once: its commitment with every acknowledgement it
    /// received, and the share of every player that did not acknowledge. `None` if it is not
    /// a dealer or has given its log already.
    pub fn log(&mut self) -> Option<SignedLog> {
        self.pending.clear();
        self.dealer.take().map(|dealer| dealer.finalize::<Faults>())
    }

    /// Whether this node still deals and has not been acknowledged by every player: a dealer
    /// sends its dealings again until they are, or until it gives its log.
    pub fn awaiting_acks(&self) -> bool {
        self.dealer.is_some() && self.unacknowledged().next().is_some()
    }

    /// The players that have not acknowledged this node's dealing, with the dealing to send
    /// them again (empty once the log is given).
    pub fn unacknowledged(&self) -> impl Iterator<Item = Outgoing> + '_ {
        self.pending
            .iter()
            .filter(|(to, _)| !self.acked.contains(*to))
            .map(|(to, message)| Outgoing {
                to: to.clone(),
                message: message.clone(),
            })
    }

    /// The dealings this node acknowledged, by dealer (its own included).
    pub fn received(&self) -> &BTreeMap<PublicKey, DkgMessage> {
        &self.received
    }

    /// The round this node takes part in.
    pub fn round(&self) -> &Round {
        &self.round
    }

    /// This node's public key.
    pub fn public_key(&self) -> &PublicKey {
        &self.me
    }

    /// The round's output and this node's share, from the agreed `ledger`.
    pub fn finish(
        self,
        rng: &mut impl CryptoRng,
        ledger: &Ledger,
    ) -> Result<(Output, Share), DkgError> {
        let player = self.player.ok_or(DkgError::NotInRound("player"))?;
        player
            .finalize::<Faults>(rng, ledger.logs(), &Sequential)
            .map_err(|e| DkgError::Share(format!("{e:?}")))
    }
}
