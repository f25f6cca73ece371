//! Dealerless key generation and resharing for Welkin, without I/O.
//!
//! A round (commonware's Feldman/Desmedt construction,
//! [`commonware_cryptography::bls12381::dkg::feldman_desmedt`]) has dealers and players.
//! Each dealer sends every player a public commitment and a private share
//! ([`DkgMessage::Dealing`]). Each player checks its share against the commitment and
//! acknowledges it ([`DkgMessage::Ack`]). Each dealer then signs a log of its commitment and
//! the acknowledgements; for a player that did not acknowledge, the log reveals that player's
//! share instead. Everyone who holds the same set of dealer logs computes the same public
//! polynomial, and every player also computes its own share. No process ever holds the secret
//! the polynomial commits to. A reshare is the same round with the previous round's players
//! as dealers, each dealing its old share: the public key stays, and the new shares are a
//! fresh sharing of the same secret.
//!
//! The library leaves one thing to its user: agreement on the set of logs. In Welkin the log
//! does that (see `docs/design/membership.md`): dealers submit their signed logs as
//! transactions, and the state machine keeps a [`Ledger`] of them. The ledger checks every
//! log against the round, keeps the first from each dealer, and treats a second different
//! one as equivocation that excludes the dealer. [`Participant`] is one node's side of a
//! round: what it sends, what it accepts, and its share at the end.

mod ledger;
mod memory;
mod participant;
mod wire;

#[cfg(test)]
mod tests;

use commonware_cryptography::bls12381::{dkg::feldman_desmedt, primitives::sharing::Mode};
use commonware_utils::{N3f1, ordered::Set};
use std::num::NonZeroU32;
use welkin_types::{Digest, PublicKey, Variant};

pub use ledger::{Ledger, Recorded};
pub use memory::run_in_memory;
pub use participant::{Outgoing, Participant};
pub use wire::{DKG_WIRE_VERSION, DkgMessage};

/// The public result of a round: the public polynomial (its constant term is the cluster
/// key), the dealers selected and the players holding shares.
pub type Output = feldman_desmedt::Output<Variant, PublicKey>;
/// A dealer's signed log, as dealers submit it and the [`Ledger`] records it.
pub type SignedLog = feldman_desmedt::SignedDealerLog<Variant, PublicKey>;
/// The fault model every round uses: n = 3f + 1, quorum 2f + 1.
pub type Faults = N3f1;

/// Domain of the round transcripts (with the cluster id appended).
const NAMESPACE: &[u8] = b"welkin/dkg/v1";

/// Why a round could not start, a message was refused, or the round gave no result.
#[derive(Debug, thiserror::Error)]
pub enum DkgError {
    /// The round's parameters do not form a round.
    #[error("invalid round: {0}")]
    Round(String),
    /// This node has no part in the round as the message needs (a dealing for a non-player,
    /// an acknowledgement for a non-dealer).
    #[error("this node is not a {0} in this round")]
    NotInRound(&'static str),
    /// The message belongs to another round: not an offence, the sender may be ahead.
    #[error("message for round {got}, this is round {expected}")]
    OtherRound {
        /// This round.
        expected: u64,
        /// The message's round.
        got: u64,
    },
    /// A dealer's commitment or share did not check: evidence against the dealer.
    #[error("dealing from {dealer} refused: {reason}")]
    Dealing {
        /// The dealer (boxed: keys are large, errors should not be).
        dealer: Box<PublicKey>,
        /// What did not check.
        reason: String,
    },
    /// An acknowledgement did not verify.
    #[error("acknowledgement from {player} refused: {reason}")]
    Ack {
        /// The player.
        player: Box<PublicKey>,
        /// What did not verify.
        reason: String,
    },
    /// A signed log did not verify against the round.
    #[error("dealer log refused: {0}")]
    Log(String),
    /// The logs recorded do not make a result (too few usable dealers).
    #[error("the round has no result: {0}")]
    NoResult(String),
    /// This node could not compute its share from the recorded logs.
    #[error("cannot compute this node's share: {0}")]
    Share(String),
}

/// One round: its number, the previous round's output (for a reshare), the dealers and the
/// players.
#[derive(Clone, Debug)]
pub struct Round {
    info: feldman_desmedt::Info<Variant, PublicKey>,
    number: u64,
    dealers: Vec<PublicKey>,
    players: Vec<PublicKey>,
}

impl Round {
    /// A round of the cluster `cluster` (its id binds every signature in the round).
    /// `previous` is the output being reshared (`None` for a first key); its players must
    /// include every dealer, and at least a quorum of them must deal.
    pub fn new(
        cluster: &Digest,
        number: u64,
        previous: Option<Output>,
        dealers: Vec<PublicKey>,
        players: Vec<PublicKey>,
    ) -> Result<Self, DkgError> {
        let (dealer_list, player_list) = (dealers.clone(), players.clone());
        let dealers = Set::try_from(dealers)
            .map_err(|_| DkgError::Round("a dealer is listed twice".into()))?;
        let players = Set::try_from(players)
            .map_err(|_| DkgError::Round("a player is listed twice".into()))?;
        let mut namespace = NAMESPACE.to_vec();
        namespace.extend_from_slice(cluster.as_ref());
        let info = feldman_desmedt::Info::new::<Faults>(
            &namespace,
            number,
            previous,
            Mode::NonZeroCounter,
            feldman_desmedt::Reveal::V1,
            dealers,
            players,
        )
        .map_err(|e| DkgError::Round(e.to_string()))?;
        Ok(Self {
            info,
            number,
            dealers: dealer_list,
            players: player_list,
        })
    }

    /// The round's number.
    pub fn number(&self) -> u64 {
        self.number
    }

    /// The most participants any message of this round can name: the bound its decoders use.
    pub fn max_participants(&self) -> NonZeroU32 {
        let most = self.players.len().max(self.dealers.len()).max(1);
        NonZeroU32::new(u32::try_from(most).unwrap_or(u32::MAX)).expect("at least one")
    }

    /// The round's dealers.
    pub fn dealers(&self) -> &[PublicKey] {
        &self.dealers
    }

    /// Whether `key` deals in this round.
    pub fn is_dealer(&self, key: &PublicKey) -> bool {
        self.dealers.contains(key)
    }

    /// Whether `key` receives a share in this round.
    pub fn is_player(&self, key: &PublicKey) -> bool {
        self.players.contains(key)
    }

    pub(crate) fn info(&self) -> &feldman_desmedt::Info<Variant, PublicKey> {
        &self.info
    }
}

/// Decodes a signed dealer log of a round with at most `max_participants` dealers or
/// players; refuses truncation and trailing bytes.
pub fn decode_log(bytes: &[u8], max_participants: NonZeroU32) -> Result<SignedLog, DkgError> {
    use commonware_codec::Decode as _;
    SignedLog::decode_cfg(commonware_codec::Copying(bytes), &max_participants)
        .map_err(|e| DkgError::Log(format!("does not decode: {e}")))
}

/// Decodes a round's output (as the state stores it) for a cluster of at most
/// `max_participants` nodes.
pub fn decode_output(bytes: &[u8], max_participants: NonZeroU32) -> Result<Output, DkgError> {
    use commonware_codec::Decode as _;
    use commonware_cryptography::bls12381::primitives::sharing::ModeVersion;
    Output::decode_cfg(
        commonware_codec::Copying(bytes),
        &(max_participants, ModeVersion::v0()),
    )
    .map_err(|e| DkgError::NoResult(format!("stored output does not decode: {e}")))
}

/// Checks the proof of a dealerless cluster's first key: `logs` are the signed dealer logs
/// the cluster's state selected in round `number` (its first successful one), `members` the
/// genesis members, who are that round's players, and `excluded` the positions of the members
/// that were not its dealers (excluded for equivocating in earlier rounds). At most f may be
/// excluded: with at least n - f dealers, a round's quorum of logs holds at least f+1 of them,
/// so one honest dealer at least; a proof that excludes more could be a round of the
/// attacker's own dealers only.
///
/// Returns the round's output (its public polynomial holds the cluster key) if every log is
/// signed by a distinct member for this round and they are exactly as many as a round
/// selects (a quorum), so that at least f+1 of them come from honest members and nobody
/// knows the key. What this cannot show is that these are the logs the cluster selected: a
/// quorum of other valid logs of the same round gives another key. Nobody holds shares of
/// such a key but the f members an attacker may control, so a threshold signature that
/// verifies under the returned key (a certified checkpoint, say) completes the proof.
pub fn check_first_key(
    cluster: &Digest,
    number: u64,
    members: &[PublicKey],
    excluded: &[u32],
    logs: &[Vec<u8>],
) -> Result<Output, DkgError> {
    let most = members.len().saturating_sub(1) / 3;
    let distinct: std::collections::BTreeSet<_> = excluded.iter().collect();
    if distinct.len() != excluded.len()
        || excluded.len() > most
        || excluded.iter().any(|&i| i as usize >= members.len())
    {
        return Err(DkgError::Round(format!(
            "a key proof may leave out at most {most} distinct members as dealers, not {excluded:?}"
        )));
    }
    let dealers = members
        .iter()
        .enumerate()
        .filter(|(i, _)| !excluded.contains(&(*i as u32)))
        .map(|(_, key)| key.clone())
        .collect();
    let round = Round::new(cluster, number, None, dealers, members.to_vec())?;
    let mut ledger = Ledger::new(round.clone());
    for bytes in logs {
        let log = decode_log(bytes, round.max_participants())?;
        if ledger.record(log)? != Recorded::Kept {
            return Err(DkgError::Log(
                "two logs from one dealer: a key proof holds one per dealer".into(),
            ));
        }
    }
    let output = ledger.agreed_outcome()?;
    if output.dealers().len() != ledger.len() {
        return Err(DkgError::NoResult(format!(
            "the proof holds {} logs, but a round selects {}",
            ledger.len(),
            output.dealers().len()
        )));
    }
    Ok(output)
}
