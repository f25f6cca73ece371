//! Distributed key generation: FROST's KeyGen (Pedersen's DKG with proofs of knowledge), in
//! the three steps the crate documentation describes, in node indices.

use crate::{
    Index, MAX_PARTICIPANTS,
    ident::{self, index_of},
    keys::{KeyShare, PublicKeys},
    messages::{Round1Package, Round2Package},
    rng::Compat,
};
use frost_ed25519::{
    Ed25519Sha512, Error as FrostError, Identifier,
    keys::{PublicKeyPackage, SecretShare, dkg},
};
use std::collections::BTreeMap;

/// Who takes part in a key generation and how many of them a signature needs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DkgConfig {
    participants: Vec<Index>,
    threshold: u16,
}

/// Why a key generation step failed. [`DkgError::culprit`] names a participant whose
/// misbehaviour the error proves.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DkgError {
    /// Fewer than 2 or more than [`MAX_PARTICIPANTS`] participants.
    #[error("a key needs 2 to 256 participants, not {0}")]
    ParticipantCount(usize),
    /// A node index past [`MAX_PARTICIPANTS`].
    #[error("node index {0} is out of range (0 to 255)")]
    IndexOutOfRange(Index),
    /// A participant named twice.
    #[error("node {0} is named twice")]
    Duplicate(Index),
    /// The threshold is under 2 or over the number of participants.
    #[error("threshold {threshold} is not between 2 and the {participants} participants")]
    Threshold {
        /// The threshold asked for.
        threshold: u16,
        /// The number of participants.
        participants: usize,
    },
    /// A node that is not a participant of this key generation.
    #[error("node {0} is not a participant of this key generation")]
    NotAParticipant(Index),
    /// A round-1 package whose polynomial is not of the threshold's degree.
    #[error(
        "round-1 package from node {sender} has {found} commitments, not the threshold {expected}"
    )]
    CommitmentCount {
        /// The sender.
        sender: Index,
        /// Commitments in its package.
        found: usize,
        /// The threshold.
        expected: u16,
    },
    /// A round-1 package whose proof of knowledge does not verify.
    #[error("round-1 package from node {0} has an invalid proof of knowledge")]
    BadProof(Index),
    /// A participant's round-1 package is missing.
    #[error("no round-1 package from node {0}")]
    MissingRound1(Index),
    /// The round-1 package given for this participant is not the one it made.
    #[error("the round-1 package given for node {0} (this node) is not the one it made")]
    OwnPackageReplaced(Index),
    /// A participant's round-2 package is missing.
    #[error("no round-2 package from node {0}")]
    MissingRound2(Index),
    /// A round-2 package from this participant to itself.
    #[error("a round-2 package from node {0} to itself was given")]
    FromSelf(Index),
    /// A round-2 share that does not lie on its sender's committed polynomial.
    #[error("round-2 share from node {0} does not match its committed polynomial")]
    BadShare(Index),
    /// Any other failure inside FROST (not expected once the checks above pass).
    #[error("key generation failed: {0}")]
    Frost(String),
}

impl DkgError {
    /// The participant this error proves misbehaved: a bad round-1 package or a bad share.
    pub fn culprit(&self) -> Option<Index> {
        match self {
            Self::CommitmentCount { sender, .. } => Some(*sender),
            Self::BadProof(sender) | Self::BadShare(sender) => Some(*sender),
            _ => None,
        }
    }
}

impl DkgConfig {
    /// A key generation among `participants` (node indices, any order) for `threshold`
    /// signers. FROST needs a threshold of at least 2.
    pub fn new(
        participants: impl IntoIterator<Item = Index>,
        threshold: u16,
    ) -> Result<Self, DkgError> {
        let mut sorted: Vec<Index> = Vec::new();
        for index in participants {
            if index >= MAX_PARTICIPANTS {
                return Err(DkgError::IndexOutOfRange(index));
            }
            if sorted.len() >= MAX_PARTICIPANTS.into() {
                return Err(DkgError::ParticipantCount(sorted.len() + 1));
            }
            sorted.push(index);
        }
        sorted.sort_unstable();
        if let Some(pair) = sorted.windows(2).find(|pair| pair[0] == pair[1]) {
            return Err(DkgError::Duplicate(pair[0]));
        }
        if sorted.len() < 2 {
            return Err(DkgError::ParticipantCount(sorted.len()));
        }
        if threshold < 2 || usize::from(threshold) > sorted.len() {
            return Err(DkgError::Threshold {
                threshold,
                participants: sorted.len(),
            });
        }
        Ok(Self {
            participants: sorted,
            threshold,
        })
    }

    /// The participants' node indices, increasing.
    pub fn participants(&self) -> &[Index] {
        &self.participants
    }

    /// How many shares a signature will need.
    pub fn threshold(&self) -> u16 {
        self.threshold
    }

    fn count(&self) -> u16 {
        u16::try_from(self.participants.len()).expect("at most 256 participants")
    }

    /// The identifier of participant `index`.
    fn identifier(&self, index: Index) -> Result<Identifier, DkgError> {
        if self.participants.binary_search(&index).is_err() {
            return Err(DkgError::NotAParticipant(index));
        }
        Ok(ident::identifier(index).expect("participants are in range"))
    }

    fn index_of(&self, identifier: &Identifier) -> Index {
        index_of(identifier, self.participants.iter().copied())
    }

    /// An error from FROST in node indices.
    fn error(&self, error: FrostError) -> DkgError {
        match error {
            FrostError::InvalidProofOfKnowledge { culprit } => {
                DkgError::BadProof(self.index_of(&culprit))
            }
            FrostError::InvalidSecretShare {
                culprit: Some(culprit),
            } => DkgError::BadShare(self.index_of(&culprit)),
            other => DkgError::Frost(other.to_string()),
        }
    }

    /// The round-1 packages of every participant but `me`, each checked, under identifiers.
    fn checked(
        &self,
        me: Option<Index>,
        round1: &BTreeMap<Index, Round1Package>,
    ) -> Result<BTreeMap<Identifier, dkg::round1::Package>, DkgError> {
        if let Some(&stranger) = round1.keys().find(|&&i| self.identifier(i).is_err()) {
            return Err(DkgError::NotAParticipant(stranger));
        }
        let mut packages = BTreeMap::new();
        for &index in self.participants.iter().filter(|&&i| Some(i) != me) {
            let package = round1.get(&index).ok_or(DkgError::MissingRound1(index))?;
            check_round1(self, index, package)?;
            packages.insert(self.identifier(index)?, package.0.clone());
        }
        Ok(packages)
    }
}

/// Checks `sender`'s round-1 package: deterministic and without secrets, for the state machine.
/// It must hold exactly one commitment per threshold coefficient and a valid proof that its
/// sender knows the constant term (bound to the sender's identifier, so a package copied from
/// another participant fails).
pub fn check_round1(
    config: &DkgConfig,
    sender: Index,
    package: &Round1Package,
) -> Result<(), DkgError> {
    let identifier = config.identifier(sender)?;
    if package.commitment_count() != usize::from(config.threshold) {
        return Err(DkgError::CommitmentCount {
            sender,
            found: package.commitment_count(),
            expected: config.threshold,
        });
    }
    frost_core::keys::dkg::verify_proof_of_knowledge::<Ed25519Sha512>(
        identifier,
        package.0.commitment(),
        package.0.proof_of_knowledge(),
    )
    .map_err(|_| DkgError::BadProof(sender))
}

/// The group's public keys from every participant's committed round-1 package:
/// deterministic and without secrets, so the state machine computes what the log commits.
pub fn public_keys(
    config: &DkgConfig,
    round1: &BTreeMap<Index, Round1Package>,
) -> Result<PublicKeys, DkgError> {
    let packages = config.checked(None, round1)?;
    let commitments = packages
        .iter()
        .map(|(id, package)| (*id, package.commitment()))
        .collect();
    let inner = PublicKeyPackage::from_dkg_commitments(&commitments)
        .map_err(|error| config.error(error))?;
    Ok(PublicKeys::new(
        inner,
        config.threshold,
        config.participants.clone(),
    ))
}

/// Decides a complaint that `sender`'s round-2 share to `recipient` is bad, from the sender's
/// committed round-1 package and the revealed share: `Err(DkgError::BadShare(sender))` if the
/// share does not lie on the sender's polynomial, `Ok(())` if it does (the complaint is false).
/// This settles a complaint only if the revealed share is proven to come from its sender (for
/// example signed by it); revealing a share of an abandoned key generation is harmless.
pub fn check_complaint(
    config: &DkgConfig,
    sender: Index,
    recipient: Index,
    sender_round1: &Round1Package,
    share: &Round2Package,
) -> Result<(), DkgError> {
    check_round1(config, sender, sender_round1)?;
    let recipient = config.identifier(recipient)?;
    let share = SecretShare::new(
        recipient,
        *share.0.signing_share(),
        sender_round1.0.commitment().clone(),
    );
    share.verify().map(|_| ()).map_err(|error| match error {
        FrostError::InvalidSecretShare { .. } => DkgError::BadShare(sender),
        other => config.error(other),
    })
}

/// A participant between steps 1 and 2: its secret polynomial, zeroized when dropped (drop it
/// when the key generation fails).
pub struct DkgRound1 {
    config: DkgConfig,
    me: Index,
    secret: dkg::round1::SecretPackage,
    package: Round1Package,
}

impl std::fmt::Debug for DkgRound1 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkgRound1")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl DkgRound1 {
    /// Step 1 for participant `me`: draws its secret polynomial and returns its state and the
    /// round-1 package to commit to the log.
    pub fn start(
        config: &DkgConfig,
        me: Index,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<(Self, Round1Package), DkgError> {
        let identifier = config.identifier(me)?;
        let (secret, package) =
            dkg::part1(identifier, config.count(), config.threshold, Compat(rng))
                .map_err(|error| config.error(error))?;
        let package = Round1Package(package);
        let state = Self {
            config: config.clone(),
            me,
            secret,
            package: package.clone(),
        };
        Ok((state, package))
    }

    /// Step 2, once every participant's round-1 package is committed: `round1` holds them
    /// (this participant's own may be included; it must then be the one it made). Returns the
    /// state for step 3 and one secret round-2 package per other participant, to send over
    /// the encrypted link. A bad package names its sender.
    pub fn round2(
        self,
        round1: &BTreeMap<Index, Round1Package>,
    ) -> Result<(DkgRound2, BTreeMap<Index, Round2Package>), DkgError> {
        if round1.get(&self.me).is_some_and(|own| *own != self.package) {
            return Err(DkgError::OwnPackageReplaced(self.me));
        }
        let others = self.config.checked(Some(self.me), round1)?;
        let (secret, packages) =
            dkg::part2(self.secret, &others).map_err(|error| self.config.error(error))?;
        let packages = packages
            .into_iter()
            .map(|(id, package)| (self.config.index_of(&id), Round2Package(package)))
            .collect();
        let state = DkgRound2 {
            config: self.config,
            me: self.me,
            secret,
            round1: others,
        };
        Ok((state, packages))
    }
}

/// A participant between steps 2 and 3: its own share of its polynomial and the others'
/// committed packages, zeroized when dropped.
pub struct DkgRound2 {
    config: DkgConfig,
    me: Index,
    secret: dkg::round2::SecretPackage,
    round1: BTreeMap<Identifier, dkg::round1::Package>,
}

impl std::fmt::Debug for DkgRound2 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DkgRound2")
            .field("me", &self.me)
            .finish_non_exhaustive()
    }
}

impl DkgRound2 {
    /// Step 3: checks each received share against its sender's committed polynomial and, if
    /// all match, returns this participant's key share and the group's public keys. The
    /// first share that does not match (in index order) names its sender.
    pub fn finish(
        self,
        round2: &BTreeMap<Index, Round2Package>,
    ) -> Result<(KeyShare, PublicKeys), DkgError> {
        let mut received = BTreeMap::new();
        for (&sender, package) in round2 {
            if sender == self.me {
                return Err(DkgError::FromSelf(sender));
            }
            received.insert(self.config.identifier(sender)?, package.0.clone());
        }
        if let Some(&missing) = self
            .config
            .participants
            .iter()
            .find(|&&i| i != self.me && !round2.contains_key(&i))
        {
            return Err(DkgError::MissingRound2(missing));
        }
        let (key, public) = dkg::part3(&self.secret, &self.round1, &received)
            .map_err(|error| self.config.error(error))?;
        let share = KeyShare {
            index: self.me,
            inner: key,
        };
        let public = PublicKeys::new(public, self.config.threshold, self.config.participants);
        Ok((share, public))
    }
}

#[cfg(test)]
mod tests;
