//! The commonware consensus types the rest of the node names, in one leaf module so that
//! block building ([`crate::application`]) and the handle can name them without depending on
//! the wiring in [`crate::engine`].

use commonware_consensus::{
    marshal::{self, standard::Standard},
    simplex::{self, scheme::bls12381_threshold::vrf},
};
use welkin_types::{Block, Digest, PublicKey, Variant};

/// The consensus signing scheme: BLS12-381 threshold with a per-view VRF seed.
pub(crate) type Scheme = vrf::Scheme<PublicKey, Variant>;
/// The context consensus hands to propose and verify.
pub(crate) type ConsensusContext = simplex::types::Context<Digest, PublicKey>;
/// A finalization certificate for a block digest.
pub(crate) type Finalization = simplex::types::Finalization<Scheme, Digest>;
/// The marshal mailbox: finalized blocks and certificates by height.
pub(crate) type Marshal = marshal::core::Mailbox<Scheme, Standard<Block>>;
