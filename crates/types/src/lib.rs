//! Welkin wire types and codecs: transactions, blocks, checkpoints and genesis, with no I/O.
//!
//! Every type that crosses the network or lands on disk is defined here, with a canonical
//! binary encoding (commonware-codec) whose decoder enforces the limits in [`limits`].
//! Types that users read or write by hand (genesis, API bodies) also have a JSON form.

#![deny(missing_docs)]

pub mod api;
mod block;
mod checkpoint;
pub mod genesis;
pub mod hexser;
pub mod limits;
pub mod receipt;
mod tx;

pub use block::{Block, BlockCfg};
pub use checkpoint::{CertifiedCheckpoint, Checkpoint};
pub use genesis::{ChainParams, ClusterId, Genesis, NodeInfo};
pub use receipt::{Outcome, Receipt};
pub use tx::{Payload, SignedTransaction, TX_VERSION, Transaction, TxError, TxId};

/// The hash used everywhere in Welkin (SHA-256).
pub type Hasher = commonware_cryptography::Sha256;
/// A 32-byte SHA-256 digest: block digests, transaction ids, state roots.
pub type Digest = commonware_cryptography::sha256::Digest;
/// An ed25519 public key: node identities and transaction signers.
pub type PublicKey = commonware_cryptography::ed25519::PublicKey;
/// An ed25519 private key.
pub type PrivateKey = commonware_cryptography::ed25519::PrivateKey;
/// An ed25519 signature.
pub type Signature = commonware_cryptography::ed25519::Signature;
/// The BLS12-381 variant of the cluster key (small signatures, 96-byte public key).
pub type Variant = commonware_cryptography::bls12381::primitives::variant::MinSig;
/// The cluster's threshold public key.
pub type ClusterKey =
    <Variant as commonware_cryptography::bls12381::primitives::variant::Variant>::Public;
/// A signature under the cluster key.
pub type ClusterSignature =
    <Variant as commonware_cryptography::bls12381::primitives::variant::Variant>::Signature;
/// The public polynomial of the cluster key (commitments to every share).
pub type Sharing = commonware_cryptography::bls12381::primitives::sharing::Sharing<Variant>;

/// Decodes a value with unit config from a byte slice, requiring every byte to be used.
pub fn decode<T: commonware_codec::Read<Cfg = ()>>(
    bytes: &[u8],
) -> Result<T, commonware_codec::Error> {
    use commonware_codec::Decode as _;
    T::decode_cfg(commonware_codec::Copying(bytes), &())
}

/// Signature namespaces: each kind of signature has its own, so that no signature can be
/// replayed as another kind.
pub mod namespace {
    /// Transactions signed by clients (ed25519).
    pub const TX: &[u8] = b"welkin/tx/v1";
    /// Consensus votes and certificates (BLS threshold; commonware appends its own suffixes).
    pub const CONSENSUS: &[u8] = b"welkin/consensus/v1";
    /// Certified checkpoints (BLS threshold partials and their recovered signature).
    pub const CHECKPOINT: &[u8] = b"welkin/checkpoint/v1";
    /// The p2p handshake between nodes.
    pub const P2P: &[u8] = b"welkin/p2p/v1";
}

/// Hashes `parts` with SHA-256, each part prefixed by its length so that the split between
/// parts is unambiguous.
pub fn hash_parts(parts: &[&[u8]]) -> Digest {
    use commonware_cryptography::Hasher as _;
    let lengths: Vec<[u8; 8]> = parts
        .iter()
        .map(|p| (p.len() as u64).to_be_bytes())
        .collect();
    let mut framed: Vec<&[u8]> = Vec::with_capacity(parts.len() * 2);
    for (length, part) in lengths.iter().zip(parts) {
        framed.push(length);
        framed.push(part);
    }
    Hasher::hash(&framed)
}
