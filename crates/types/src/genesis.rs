//! The genesis file: the first members, the cluster key and the chain parameters.
//!
//! The genesis file is JSON so that operators can read it. The cluster id is a hash over a
//! canonical binary encoding of everything in it except network addresses (which operators
//! may change without forming a new cluster) and the registration signatures.
//!
//! Each node entry is a signed [`NodeRegistration`] (see [`registration`]): reading a genesis
//! checks every entry's signature under the node's own key, so an entry cannot be changed,
//! addresses included, without that node's private key.

pub mod registration;

pub use registration::{NodeRegistration, REGISTRATION_VERSION};

use crate::{ClusterKey, Digest, PublicKey, Sharing, hash_parts, limits::MAX_NODES};
use commonware_codec::{Decode, Encode};
use commonware_cryptography::bls12381::primitives::sharing::ModeVersion;
use serde::{Deserialize, Serialize};
use std::{collections::BTreeSet, net::SocketAddr, num::NonZeroU32};

/// The cluster id: a hash of the genesis file. Every signature is bound to it.
pub type ClusterId = Digest;

/// The genesis format version this code writes and reads. Version 2 added the registration
/// signature to every node entry; version 1 files (unsigned entries) are refused.
pub const GENESIS_VERSION: u32 = 2;

/// Chain parameters fixed at genesis.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChainParams {
    /// A human-readable name for the cluster.
    pub name: String,
    /// How far (ms) a proposed block's timestamp may be from a verifier's clock.
    pub max_clock_skew_ms: u64,
    /// The longest time-to-live (ms) a transaction's expiry may have, from block time.
    pub max_tx_ttl_ms: u64,
}

impl Default for ChainParams {
    fn default() -> Self {
        Self {
            name: "welkin".into(),
            max_clock_skew_ms: 5_000,
            max_tx_ttl_ms: 600_000,
        }
    }
}

/// One member of the cluster: its registration and the node's signature over it. Built by
/// [`NodeRegistration::sign`]; checked by [`NodeInfo::verify_registration`].
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeInfo {
    /// An operator-chosen name, unique in the cluster.
    pub name: String,
    /// The node's ed25519 identity (p2p and signing), hex.
    #[serde(with = "crate::hexser")]
    pub public_key: PublicKey,
    /// The node's X25519 key to which its key share is encrypted, hex.
    #[serde(with = "crate::hexser::bytes")]
    pub encryption_key: Vec<u8>,
    /// Where peers reach the node.
    pub p2p_address: SocketAddr,
    /// Where clients reach the node's HTTP API.
    pub api_address: SocketAddr,
    /// A label for what fails together (rack, zone, host).
    pub failure_domain: String,
    /// The node's ed25519 signature over its registration, hex.
    #[serde(with = "crate::hexser")]
    pub signature: crate::Signature,
}

/// Why a genesis file was refused.
#[derive(Debug, thiserror::Error)]
pub enum GenesisError {
    /// The file is not valid genesis JSON.
    #[error("genesis is not valid JSON: {0}")]
    Json(String),
    /// Some field breaks a rule.
    #[error("invalid genesis: {0}")]
    Invalid(String),
}

/// The genesis of a cluster.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Genesis {
    /// Format version, [`GENESIS_VERSION`].
    pub version: u32,
    /// Chain parameters.
    pub chain: ChainParams,
    /// Members, sorted by public key.
    pub nodes: Vec<NodeInfo>,
    /// Signatures needed to act with the cluster key (2f+1).
    pub threshold: u32,
    /// The public polynomial of the cluster key, hex of its canonical encoding, when a
    /// trusted dealer made the key (`welkin genesis --trusted-dealer`: the dealer knew the
    /// whole key). Absent for a dealerless cluster, whose nodes generate the key together at
    /// first start and record its polynomial in the cluster's state (see
    /// `docs/membership.md`).
    #[serde(default, skip_serializing_if = "Option::is_none", with = "sharing_hex")]
    pub polynomial: Option<Sharing>,
    /// The timestamp of the genesis block (ms since the Unix epoch).
    pub genesis_time_ms: u64,
    /// The public key of the secrets root token (see
    /// [`crate::secrets::token_public_key`]), hex; absent if the cluster starts without one.
    /// Whoever ran genesis holds the token, as `vault operator init` hands out Vault's.
    #[serde(
        default,
        skip_serializing_if = "Option::is_none",
        with = "crate::hexser::option"
    )]
    pub root_token: Option<PublicKey>,
    /// Who admits new nodes; absent, the members are fixed at genesis (see
    /// [`MembershipPolicy`]).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub membership: Option<MembershipPolicy>,
}

/// The attestation policies a genesis may name.
pub const ATTESTATIONS: [&str; 2] = ["none", "operator-statement"];
/// Most operators a membership policy names.
pub const MAX_OPERATORS: usize = 16;

/// Who decides that a node may join: named operators (KERI identifiers) with a threshold of
/// approvals, and what evidence about the machine a request must carry.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MembershipPolicy {
    /// The operators' KERI identifiers (qb64 prefixes), who approve join requests.
    pub operators: Vec<String>,
    /// How many distinct operators must approve a join (1 to the number of operators).
    pub approvals: u32,
    /// What evidence a join request carries about the machine: `none`, or
    /// `operator-statement` (a statement signed by an operator's current keys that this node
    /// key belongs to a machine it vouches for).
    pub attestation: String,
    /// Blocks per epoch: membership changes take effect at epoch boundaries, after the
    /// outgoing members reshare the cluster key to the incoming ones (see
    /// `docs/membership.md`). Long enough for a resharing (a few seconds) at the cluster's
    /// block rate.
    #[serde(default = "default_epoch_blocks")]
    pub epoch_blocks: u64,
}

/// Blocks per epoch unless the genesis says otherwise (about ten minutes at two blocks a
/// second).
pub const DEFAULT_EPOCH_BLOCKS: u64 = 1200;
/// Fewest blocks per epoch a genesis may name: a resharing needs a round trip of dealings
/// and a quorum of logs on the chain inside one epoch.
pub const MIN_EPOCH_BLOCKS: u64 = 20;

/// Blocks per epoch of a cluster whose members are fixed: in practice one epoch for ever.
pub const FIXED_MEMBERSHIP_EPOCH_BLOCKS: u64 = 1 << 62;

fn default_epoch_blocks() -> u64 {
    DEFAULT_EPOCH_BLOCKS
}

mod sharing_hex {
    use super::*;
    use serde::{Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(
        value: &Option<Sharing>,
        s: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => s.serialize_str(&hex::encode(value.encode())),
            None => s.serialize_none(),
        }
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(
        d: D,
    ) -> Result<Option<Sharing>, D::Error> {
        let text = String::deserialize(d)?;
        decode_sharing(&text).map(Some).map_err(D::Error::custom)
    }
}

/// Decodes a public polynomial from hex.
pub fn decode_sharing(text: &str) -> Result<Sharing, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("polynomial: invalid hex: {e}"))?;
    let max = NonZeroU32::new(MAX_NODES as u32).expect("MAX_NODES is not zero");
    Sharing::decode_cfg(commonware_codec::Copying(&bytes), &(max, ModeVersion::v0()))
        .map_err(|e| format!("polynomial: invalid encoding: {e}"))
}

fn unsupported_version(version: u32) -> GenesisError {
    GenesisError::Invalid(format!(
        "version {version} is not supported (this welkin reads version {GENESIS_VERSION}, whose \
         node entries are signed registrations; run the genesis ceremony again)"
    ))
}

/// The number of faults tolerated by `n` nodes: f = (n - 1) / 3.
pub fn max_faults(n: usize) -> usize {
    n.saturating_sub(1) / 3
}

/// The quorum of `n` nodes: n - f (2f+1 when n = 3f+1).
pub fn quorum(n: usize) -> usize {
    n - max_faults(n)
}

impl Genesis {
    /// Parses and validates a genesis file.
    pub fn from_json(text: &str) -> Result<Self, GenesisError> {
        // The version first, so that an older file gets a precise answer rather than a
        // complaint about the field its version lacks.
        #[derive(Deserialize)]
        struct Versioned {
            version: u32,
        }
        let versioned: Versioned =
            serde_json::from_str(text).map_err(|e| GenesisError::Json(e.to_string()))?;
        if versioned.version != GENESIS_VERSION {
            return Err(unsupported_version(versioned.version));
        }
        let genesis: Genesis =
            serde_json::from_str(text).map_err(|e| GenesisError::Json(e.to_string()))?;
        genesis.validate()?;
        Ok(genesis)
    }

    /// Pretty JSON.
    pub fn to_json(&self) -> String {
        serde_json::to_string_pretty(self).expect("genesis always serializes")
    }

    /// Checks every rule a genesis must follow.
    pub fn validate(&self) -> Result<(), GenesisError> {
        let bad = |m: String| Err(GenesisError::Invalid(m));
        if self.version != GENESIS_VERSION {
            return Err(unsupported_version(self.version));
        }
        let n = self.nodes.len();
        if n == 0 || n > MAX_NODES {
            return bad(format!("{n} nodes; a cluster has 1 to {MAX_NODES}"));
        }
        if !self
            .nodes
            .windows(2)
            .all(|w| w[0].public_key < w[1].public_key)
        {
            return bad("nodes must be sorted by public key, without duplicates".into());
        }
        if let Some(node) = self.nodes.iter().find(|n| {
            n.name.is_empty()
                || n.name.len() > 64
                || !n
                    .name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        }) {
            return bad(format!(
                "node name {:?} must be 1-64 of A-Z a-z 0-9 . _ -",
                node.name
            ));
        }
        let names: BTreeSet<_> = self.nodes.iter().map(|n| &n.name).collect();
        let p2p: BTreeSet<_> = self.nodes.iter().map(|n| n.p2p_address).collect();
        if names.len() != n || p2p.len() != n {
            return bad("node names and p2p addresses must be unique".into());
        }
        if let Some(node) = self.nodes.iter().find(|n| n.encryption_key.len() != 32) {
            return bad(format!(
                "node {}: encryption key must be 32 bytes",
                node.name
            ));
        }
        if self.threshold as usize != quorum(n) {
            return bad(format!(
                "threshold {} must be the quorum {} of {n} nodes",
                self.threshold,
                quorum(n)
            ));
        }
        if let Some(polynomial) = &self.polynomial
            && (polynomial.total().get() as usize != n || polynomial.required() != self.threshold)
        {
            return bad("polynomial does not match the node count and threshold".into());
        }
        if let Some(policy) = &self.membership {
            let operators: BTreeSet<_> = policy.operators.iter().collect();
            if policy.operators.is_empty()
                || policy.operators.len() > MAX_OPERATORS
                || operators.len() != policy.operators.len()
                || policy
                    .operators
                    .iter()
                    .any(|o| o.is_empty() || o.len() > crate::MAX_PREFIX_BYTES)
            {
                return bad(format!(
                    "membership: name 1 to {MAX_OPERATORS} distinct operator identifiers"
                ));
            }
            if policy.approvals == 0 || policy.approvals as usize > policy.operators.len() {
                return bad(format!(
                    "membership: approvals must be 1 to {}, not {}",
                    policy.operators.len(),
                    policy.approvals
                ));
            }
            if policy.epoch_blocks < MIN_EPOCH_BLOCKS {
                return bad(format!(
                    "membership: epoch_blocks must be at least {MIN_EPOCH_BLOCKS}, not {}",
                    policy.epoch_blocks
                ));
            }
            if !ATTESTATIONS.contains(&policy.attestation.as_str()) {
                return bad(format!(
                    "membership: attestation {:?} is not one of {ATTESTATIONS:?}",
                    policy.attestation
                ));
            }
        }
        if self.chain.max_clock_skew_ms == 0 || self.chain.max_tx_ttl_ms == 0 {
            return bad("max_clock_skew_ms and max_tx_ttl_ms must be positive".into());
        }
        self.nodes
            .iter()
            .try_for_each(NodeInfo::verify_registration)
    }

    /// The cluster id: a hash over everything but the network addresses.
    pub fn cluster_id(&self) -> ClusterId {
        let mut parts: Vec<Vec<u8>> = vec![
            b"welkin/cluster/v1".to_vec(),
            self.version.to_be_bytes().to_vec(),
            self.chain.name.as_bytes().to_vec(),
            self.chain.max_clock_skew_ms.to_be_bytes().to_vec(),
            self.chain.max_tx_ttl_ms.to_be_bytes().to_vec(),
            self.threshold.to_be_bytes().to_vec(),
        ];
        // A dealt key is part of the cluster's identity; a dealerless cluster's key comes
        // from its members, who are.
        if let Some(polynomial) = &self.polynomial {
            parts.push(polynomial.encode().to_vec());
        } else {
            parts.push(b"dealerless".to_vec());
        }
        parts.push(self.genesis_time_ms.to_be_bytes().to_vec());
        // Appended only when present, so that clusters made without one keep their id.
        if let Some(root) = &self.root_token {
            parts.push(b"root_token".to_vec());
            parts.push(root.encode().to_vec());
        }
        if let Some(policy) = &self.membership {
            parts.push(b"membership".to_vec());
            parts.push(policy.approvals.to_be_bytes().to_vec());
            parts.push(policy.attestation.as_bytes().to_vec());
            parts.extend(policy.operators.iter().map(|o| o.as_bytes().to_vec()));
            parts.push(b"epoch_blocks".to_vec());
            parts.push(policy.epoch_blocks.to_be_bytes().to_vec());
        }
        for node in &self.nodes {
            parts.push(node.name.as_bytes().to_vec());
            parts.push(node.public_key.encode().to_vec());
            parts.push(node.encryption_key.clone());
            parts.push(node.failure_domain.as_bytes().to_vec());
        }
        let refs: Vec<&[u8]> = parts.iter().map(Vec::as_slice).collect();
        hash_parts(&refs)
    }

    /// Blocks per epoch: the policy's, or (members fixed at genesis) one epoch for ever.
    pub fn epoch_blocks(&self) -> u64 {
        self.membership
            .as_ref()
            .map_or(FIXED_MEMBERSHIP_EPOCH_BLOCKS, |p| p.epoch_blocks)
    }

    /// The cluster's public key, if a trusted dealer made it (see [`Genesis::polynomial`]);
    /// a dealerless cluster's key is learnt from its key proof instead.
    pub fn dealt_key(&self) -> Option<&ClusterKey> {
        self.polynomial.as_ref().map(|p| p.public())
    }

    /// The genesis members' public keys, in order: the dealers and players of the first key
    /// generation.
    pub fn member_keys(&self) -> Vec<PublicKey> {
        self.nodes.iter().map(|n| n.public_key.clone()).collect()
    }

    /// The position of `key` among the nodes, if it is a member.
    pub fn index_of(&self, key: &PublicKey) -> Option<usize> {
        self.nodes.iter().position(|n| &n.public_key == key)
    }

    /// The genesis block.
    pub fn block(&self) -> crate::Block {
        crate::Block::genesis(self.cluster_id(), self.genesis_time_ms)
    }
}
