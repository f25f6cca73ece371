//! Transit signing keys the nodes hold together (welkin-frost: FROST Ed25519).
//!
//! One actor per node does three jobs over the transit p2p channel:
//!
//! - **Key generation.** It polls the committed state for the open generations
//!   (`welkin_state::secrets::transit::dkg`), commits its round-1 package, sends each peer
//!   its secret round-2 share once every package is in (again every few seconds until that
//!   peer reports), checks the shares it receives, stores its key share on disk and reports
//!   done (or names the peer whose share was bad). A node that restarted mid-generation lost
//!   its secret polynomial and withdraws.
//! - **Signing, as a signer.** The executor hands it each block's allowed signatures. It
//!   answers a coordinator's request only for a committed grant whose digest is the SHA-256
//!   of the message asked for, and only with a nonce it issued to that coordinator (each
//!   used once). A request that arrives before its block commits here waits briefly.
//! - **Signing, as the coordinator** of the requests this node serves: it keeps nonce
//!   commitments from every signer, asks `t` of them, checks each share as it arrives,
//!   blocks a peer whose share does not verify, replaces silent or lying signers in a new
//!   session, and answers only with a signature it checked under the group key the log
//!   committed.

pub(crate) mod actor;
pub(crate) mod shares;
mod wire;

pub use wire::{SessionId, TransitMessage};

use futures::{
    SinkExt as _,
    channel::{mpsc, oneshot},
};
use welkin_types::{Digest, TxId};

/// A committed, allowed signature request: what its signers check a coordinator's request
/// against.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct SignGrant {
    /// The key's id.
    pub(crate) key_id: Digest,
    /// The key version.
    pub(crate) version: u64,
    /// SHA-256 of each message, in the request's order.
    pub(crate) digests: Vec<[u8; 32]>,
}

/// Why a signature could not be made.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum SignFailure {
    /// Too many signatures are in progress on this node.
    #[error("this node is coordinating {0} signatures, its limit; retry shortly")]
    Busy(usize),
    /// The key version's public keys are not in this node's state.
    #[error("key version {0} has no committed public key on this node yet; retry shortly")]
    NoKey(u64),
    /// Not enough signers answered with valid shares.
    #[error("{0}")]
    Failed(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

/// A signature job from the API: the messages of a committed, allowed request.
pub(crate) struct SignJob {
    pub(crate) id: TxId,
    pub(crate) key_id: Digest,
    pub(crate) version: u64,
    pub(crate) messages: Vec<Vec<u8>>,
    pub(crate) reply: oneshot::Sender<Result<Vec<[u8; 64]>, SignFailure>>,
}

/// Most sign jobs waiting for the actor.
pub(crate) const JOB_BACKLOG: usize = 256;

/// The API's way to the transit actor.
#[derive(Clone)]
pub(crate) struct TransitHandle {
    jobs: mpsc::Sender<SignJob>,
}

impl TransitHandle {
    /// A handle and the receiving end for the actor.
    pub(crate) fn new() -> (Self, mpsc::Receiver<SignJob>) {
        let (jobs, receiver) = mpsc::channel(JOB_BACKLOG);
        (Self { jobs }, receiver)
    }

    /// Signs each of `messages` with `version` of key `key_id`, for the committed, allowed
    /// request `id` (whose digests are the messages' SHA-256).
    pub(crate) async fn sign(
        &self,
        id: TxId,
        key_id: Digest,
        version: u64,
        messages: Vec<Vec<u8>>,
    ) -> Result<Vec<[u8; 64]>, SignFailure> {
        let (reply, answer) = oneshot::channel();
        let job = SignJob {
            id,
            key_id,
            version,
            messages,
            reply,
        };
        self.jobs
            .clone()
            .send(job)
            .await
            .map_err(|_| SignFailure::Stopped)?;
        answer.await.map_err(|_| SignFailure::Stopped)?
    }
}
