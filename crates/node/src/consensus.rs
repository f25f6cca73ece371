//! The commonware consensus types the rest of the node names, in one leaf module so that
//! block building ([`crate::application`]) and the handle can name them without depending on
//! the wiring in [`crate::engine`].

use commonware_consensus::{
    marshal::{self, standard::Standard},
    simplex::{self, scheme::ed25519},
};
use welkin_types::{Block, Digest, PublicKey};

/// The consensus signing scheme: each node's ed25519 identity key; a certificate is a quorum
/// of their signatures. Ordering costs no pairings; the cluster's BLS12-381 threshold key
/// signs the checkpoints clients check (see docs/architecture.md, "Ordering and the cluster
/// key").
pub(crate) type Scheme = ed25519::Scheme;
/// The context consensus hands to propose and verify.
pub(crate) type ConsensusContext = simplex::types::Context<Digest, PublicKey>;
/// A finalization certificate for a block digest.
pub(crate) type Finalization = simplex::types::Finalization<Scheme, Digest>;
/// The marshal mailbox: finalized blocks and certificates by height.
pub(crate) type Marshal = marshal::core::Mailbox<Scheme, Standard<Block>>;
