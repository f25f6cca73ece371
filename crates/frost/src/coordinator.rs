//! The coordinator's side: the commitments signers issued to this node, sessions over `t` of
//! them, share checks that name a liar, and aggregation into a standard Ed25519 signature.

use crate::{
    Index, MAX_MESSAGE_BYTES, MAX_PARTICIPANTS, NONCE_POOL, SIGNATURE_BYTES,
    ident::{self, index_of},
    keys::PublicKeys,
    messages::{Commitment, Commitments, SignRequest, SignatureShare},
};
use frost_ed25519::{CheaterDetection, Error as FrostError, SigningPackage};
use std::collections::{BTreeMap, BTreeSet, VecDeque};

/// Why a commitment batch or a session was refused.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum CoordinatorError {
    /// A node index past [`MAX_PARTICIPANTS`].
    #[error("node index {0} is out of range (0 to 255)")]
    IndexOutOfRange(Index),
    /// The message is over [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    MessageTooLong(usize),
    /// A chosen signer is not a participant of the key.
    #[error("node {0} holds no share of this key")]
    NotAParticipant(Index),
    /// Not enough signers (outside those excluded) hold a commitment for this coordinator.
    #[error("{available} signers have commitments, under the threshold {threshold}")]
    NotEnoughSigners {
        /// Signers that could be chosen.
        available: usize,
        /// The key's threshold.
        threshold: u16,
    },
}

/// Why shares did not aggregate into a signature.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum AggregateError {
    /// Some chosen signers gave no share (silent: choose others).
    #[error("no share from signers {0:?}")]
    Missing(Vec<Index>),
    /// Shares from nodes that are not the session's signers.
    #[error("shares from nodes {0:?}, which are not signers of this session")]
    NotSigners(Vec<Index>),
    /// Shares that do not verify under their signers' verifying shares: those signers lie.
    #[error("invalid shares from signers {0:?}")]
    InvalidShares(Vec<Index>),
    /// The aggregate does not verify and no share was found invalid (not expected).
    #[error("the aggregate signature does not verify under the group key")]
    InvalidSignature,
    /// Any other failure inside FROST (not expected once the checks above pass).
    #[error("aggregation failed: {0}")]
    Frost(String),
}

/// The commitments each signer issued to this node, oldest first, at most [`NONCE_POOL`] per
/// signer (as the signer keeps).
#[derive(Debug, Default)]
pub struct Coordinator {
    pools: BTreeMap<Index, VecDeque<Commitment>>,
}

impl Coordinator {
    /// A coordinator holding no commitments.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records the commitments `signer` issued to this node (the signer is the authenticated
    /// sender). Past [`NONCE_POOL`] the oldest are dropped, as the signer drops their nonces.
    pub fn add(
        &mut self,
        signer: Index,
        commitments: &Commitments,
    ) -> Result<(), CoordinatorError> {
        if signer >= MAX_PARTICIPANTS {
            return Err(CoordinatorError::IndexOutOfRange(signer));
        }
        let pool = self.pools.entry(signer).or_default();
        pool.extend(commitments.as_slice().iter().copied());
        while pool.len() > NONCE_POOL {
            pool.pop_front();
        }
        Ok(())
    }

    /// Commitments held from `signer`.
    pub fn available(&self, signer: Index) -> usize {
        self.pools.get(&signer).map_or(0, VecDeque::len)
    }

    /// Drops every commitment from `signer` (for example after it answered that one is
    /// unknown: it restarted).
    pub fn forget(&mut self, signer: Index) {
        self.pools.remove(&signer);
    }

    /// Starts a session signing `message` with `keys`: the first `threshold` participants in
    /// index order that are not in `exclude` (liars and silent signers of earlier sessions)
    /// and hold a commitment, each using its oldest. The commitments used leave the pools.
    pub fn session(
        &mut self,
        keys: &PublicKeys,
        message: &[u8],
        exclude: &BTreeSet<Index>,
    ) -> Result<Session, CoordinatorError> {
        // Checked before any commitment leaves its pool.
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(CoordinatorError::MessageTooLong(message.len()));
        }
        let threshold = keys.threshold();
        let chosen: Vec<Index> = keys
            .participants()
            .iter()
            .copied()
            .filter(|index| !exclude.contains(index) && self.available(*index) > 0)
            .take(threshold.into())
            .collect();
        if chosen.len() < usize::from(threshold) {
            return Err(CoordinatorError::NotEnoughSigners {
                available: chosen.len(),
                threshold,
            });
        }
        let mut signers = BTreeMap::new();
        for index in chosen {
            let pool = self
                .pools
                .get_mut(&index)
                .expect("chosen signers have a pool");
            signers.insert(
                index,
                pool.pop_front().expect("chosen signers have a commitment"),
            );
        }
        Session::new(keys, message, signers)
    }
}

/// One attempt at a signature: the request sent to the chosen signers, and the key whose
/// verifying shares judge their answers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Session {
    request: SignRequest,
    package: SigningPackage,
    keys: PublicKeys,
}

impl Session {
    /// A session signing `message` with the given signers, each with the commitment it is to
    /// use (at least the threshold, all participants of `keys`).
    pub fn new(
        keys: &PublicKeys,
        message: &[u8],
        signers: BTreeMap<Index, Commitment>,
    ) -> Result<Self, CoordinatorError> {
        if message.len() > MAX_MESSAGE_BYTES {
            return Err(CoordinatorError::MessageTooLong(message.len()));
        }
        if let Some(&stranger) = signers
            .keys()
            .find(|index| keys.participants().binary_search(index).is_err())
        {
            return Err(CoordinatorError::NotAParticipant(stranger));
        }
        if signers.len() < usize::from(keys.threshold()) {
            return Err(CoordinatorError::NotEnoughSigners {
                available: signers.len(),
                threshold: keys.threshold(),
            });
        }
        let request = SignRequest {
            message: message.to_vec(),
            signers,
        };
        let package = request.package();
        Ok(Self {
            request,
            package,
            keys: keys.clone(),
        })
    }

    /// The request to send to each signer.
    pub fn request(&self) -> &SignRequest {
        &self.request
    }

    /// The chosen signers, increasing.
    pub fn signers(&self) -> impl Iterator<Item = Index> + '_ {
        self.request.signers.keys().copied()
    }

    /// Checks `signer`'s share on its own, as it arrives: `InvalidShares([signer])` if it
    /// does not verify under the signer's verifying share.
    pub fn verify_share(
        &self,
        signer: Index,
        share: &SignatureShare,
    ) -> Result<(), AggregateError> {
        let keys = &self.keys;
        let verifying = ident::identifier(signer)
            .filter(|_| self.request.signers.contains_key(&signer))
            .and_then(|id| Some((id, *keys.inner.verifying_shares().get(&id)?)));
        let Some((identifier, verifying)) = verifying else {
            return Err(AggregateError::NotSigners(vec![signer]));
        };
        frost_core::verify_signature_share(
            identifier,
            &verifying,
            &share.0,
            &self.package,
            keys.inner.verifying_key(),
        )
        .map_err(|_| AggregateError::InvalidShares(vec![signer]))
    }

    /// Aggregates one share from each chosen signer into the standard 64-byte Ed25519
    /// signature, checked under the group key; or names the signers whose shares are invalid.
    pub fn aggregate(
        &self,
        shares: &BTreeMap<Index, SignatureShare>,
    ) -> Result<[u8; SIGNATURE_BYTES], AggregateError> {
        let keys = &self.keys;
        let strangers: Vec<Index> = shares
            .keys()
            .copied()
            .filter(|index| !self.request.signers.contains_key(index))
            .collect();
        if !strangers.is_empty() {
            return Err(AggregateError::NotSigners(strangers));
        }
        let missing: Vec<Index> = self.signers().filter(|i| !shares.contains_key(i)).collect();
        if !missing.is_empty() {
            return Err(AggregateError::Missing(missing));
        }
        let by_identifier = shares
            .iter()
            .map(|(&index, share)| {
                let id = ident::identifier(index).expect("signers are in range");
                (id, share.0)
            })
            .collect();
        let signature = frost_ed25519::aggregate_custom(
            &self.package,
            &by_identifier,
            &keys.inner,
            CheaterDetection::AllCheaters,
        )
        .map_err(|error| match error {
            FrostError::InvalidSignatureShare { culprits } => AggregateError::InvalidShares(
                culprits
                    .iter()
                    .map(|id| index_of(id, self.signers()))
                    .collect(),
            ),
            other => AggregateError::Frost(other.to_string()),
        })?;
        // FROST returns the aggregate unchecked when no share is found invalid.
        keys.inner
            .verifying_key()
            .verify(&self.request.message, &signature)
            .map_err(|_| AggregateError::InvalidSignature)?;
        signature
            .serialize()
            .map_err(|error| AggregateError::Frost(error.to_string()))?
            .try_into()
            .map_err(|_| AggregateError::Frost("signature is not 64 bytes".into()))
    }
}
