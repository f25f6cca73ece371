//! The signer's side: pools of single-use nonces, one per coordinator, and signature shares
//! released only against a nonce issued to that coordinator and not yet used.

use crate::{
    Index, MAX_MESSAGE_BYTES, MAX_PARTICIPANTS, NONCE_POOL,
    keys::KeyShare,
    messages::{Commitment, Commitments, SignRequest, SignatureShare},
    rng::Compat,
};
use frost_ed25519::{keys::SigningShare, round1::SigningNonces, round2};
use std::collections::BTreeMap;

/// Why a signer refused to issue commitments or to sign.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SignError {
    /// A node index past [`MAX_PARTICIPANTS`].
    #[error("node index {0} is out of range (0 to 255)")]
    IndexOutOfRange(Index),
    /// Commitments asked for in a number outside 1 to [`NONCE_POOL`].
    #[error("{0} commitments asked for: 1 to {NONCE_POOL} at a time")]
    Count(usize),
    /// The message is over [`MAX_MESSAGE_BYTES`].
    #[error("message of {0} bytes is over the {MAX_MESSAGE_BYTES}-byte limit")]
    MessageTooLong(usize),
    /// The request's message is not the message of the committed sign request.
    #[error("the request's message is not the committed one")]
    MessageMismatch,
    /// The key share given is another node's.
    #[error("the key share is node {share}'s, not this signer's (node {signer})")]
    WrongShare {
        /// The share's index.
        share: Index,
        /// The signer's index.
        signer: Index,
    },
    /// This signer is not among the request's signers.
    #[error("node {0} is not among the request's signers")]
    NotInRequest(Index),
    /// Fewer signers in the request than the key's threshold.
    #[error("{found} signers in the request, under the threshold {threshold}")]
    TooFewSigners {
        /// Signers in the request.
        found: usize,
        /// The key's threshold.
        threshold: u16,
    },
    /// No unused nonce under this id for this coordinator: never issued to it, already used,
    /// dropped from a full pool, or lost in a restart.
    #[error("commitment {id} is not an unused one issued to coordinator {coordinator}")]
    UnknownCommitment {
        /// The coordinator asking.
        coordinator: Index,
        /// The id it named.
        id: u64,
    },
    /// The request carries another commitment than the one issued under its id. The nonce
    /// is spent all the same.
    #[error("the request's commitment {id} is not the one issued under that id")]
    CommitmentMismatch {
        /// The id it named.
        id: u64,
    },
    /// Any other failure inside FROST (not expected once the checks above pass).
    #[error("signing failed: {0}")]
    Frost(String),
}

/// One coordinator's unused nonces, by id (ids increase, so the first is the oldest).
#[derive(Default)]
struct Pool {
    next: u64,
    nonces: BTreeMap<u64, SigningNonces>,
}

/// A node's signing side: for each coordinator, a bounded pool of single-use nonces, held
/// only in memory (a restart drops them) and zeroized when used or dropped.
pub struct Signer {
    me: Index,
    /// A random secret mixed into every nonce with the rng's output (FROST's hedged nonces),
    /// so nonces stay secret even if the rng's output alone is guessable.
    hedge: SigningShare,
    pools: BTreeMap<Index, Pool>,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("me", &self.me)
            .field("coordinators", &self.pools.len())
            .finish_non_exhaustive()
    }
}

impl Signer {
    /// The signing side of node `me`, with empty pools.
    pub fn new(me: Index, rng: &mut impl rand_core::CryptoRng) -> Result<Self, SignError> {
        in_range(me)?;
        let mut bytes = [0u8; 32];
        rng.fill_bytes(&mut bytes);
        // Below 2^252, so a canonical scalar.
        bytes[31] &= 0x0f;
        let hedge = SigningShare::deserialize(&bytes).expect("a value under 2^252 is canonical");
        zeroize::Zeroize::zeroize(&mut bytes);
        Ok(Self {
            me,
            hedge,
            pools: BTreeMap::new(),
        })
    }

    /// This signer's node index.
    pub fn index(&self) -> Index {
        self.me
    }

    /// Unused nonces held for `coordinator`.
    pub fn unused(&self, coordinator: Index) -> usize {
        self.pools
            .get(&coordinator)
            .map_or(0, |pool| pool.nonces.len())
    }

    /// Drops every nonce held for `coordinator` (for example when it restarted and lost the
    /// commitments); they can never be used afterwards.
    pub fn forget(&mut self, coordinator: Index) {
        self.pools.remove(&coordinator);
    }

    /// Makes `count` fresh nonces for `coordinator` (1 to [`NONCE_POOL`]) and returns their
    /// commitments to send it. The pool keeps at most [`NONCE_POOL`]: the oldest unused
    /// nonces are dropped to make room. A new pool's ids start at a random value, so ids from
    /// before a restart are unknown afterwards rather than naming new nonces.
    pub fn issue(
        &mut self,
        coordinator: Index,
        count: usize,
        rng: &mut impl rand_core::CryptoRng,
    ) -> Result<Commitments, SignError> {
        in_range(coordinator)?;
        if count == 0 || count > NONCE_POOL {
            return Err(SignError::Count(count));
        }
        let pool = self.pools.entry(coordinator).or_insert_with(|| Pool {
            // Below 2^63, so the ids of a pool never wrap.
            next: rng.next_u64() >> 1,
            nonces: BTreeMap::new(),
        });
        let mut issued = Vec::with_capacity(count);
        for _ in 0..count {
            let nonces = SigningNonces::new(&self.hedge, &mut Compat(&mut *rng));
            let id = pool.next;
            pool.next += 1;
            issued.push(Commitment {
                id,
                commitments: *nonces.commitments(),
            });
            pool.nonces.insert(id, nonces);
        }
        while pool.nonces.len() > NONCE_POOL {
            pool.nonces.pop_first();
        }
        Ok(Commitments(issued))
    }

    /// Signs `request` from `coordinator` with `key`, once the sign request whose message is
    /// `committed_message` is committed to the log and allowed. The nonce named by the request
    /// is removed before anything is computed, so it is never used twice, whatever happens
    /// next; the request's commitment for this signer must be the one issued under that id.
    pub fn sign(
        &mut self,
        coordinator: Index,
        key: &KeyShare,
        committed_message: &[u8],
        request: &SignRequest,
    ) -> Result<SignatureShare, SignError> {
        if request.message.len() > MAX_MESSAGE_BYTES {
            return Err(SignError::MessageTooLong(request.message.len()));
        }
        if request.message != committed_message {
            return Err(SignError::MessageMismatch);
        }
        if key.index != self.me {
            return Err(SignError::WrongShare {
                share: key.index,
                signer: self.me,
            });
        }
        let mine = request
            .signers
            .get(&self.me)
            .ok_or(SignError::NotInRequest(self.me))?;
        if request.signers.len() < usize::from(key.threshold()) {
            return Err(SignError::TooFewSigners {
                found: request.signers.len(),
                threshold: key.threshold(),
            });
        }
        let unknown = SignError::UnknownCommitment {
            coordinator,
            id: mine.id,
        };
        let pool = self.pools.get_mut(&coordinator).ok_or(unknown.clone())?;
        let nonces = pool.nonces.remove(&mine.id).ok_or(unknown)?;
        if *nonces.commitments() != mine.commitments {
            return Err(SignError::CommitmentMismatch { id: mine.id });
        }
        round2::sign(&request.package(), &nonces, &key.inner)
            .map(SignatureShare)
            .map_err(|error| SignError::Frost(error.to_string()))
    }
}

impl Drop for Signer {
    fn drop(&mut self) {
        // The nonces zeroize themselves; the hedge is a plain scalar.
        zeroize::Zeroize::zeroize(&mut self.hedge);
    }
}

fn in_range(index: Index) -> Result<(), SignError> {
    if index >= MAX_PARTICIPANTS {
        return Err(SignError::IndexOutOfRange(index));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
