//! Replies checked against the cluster key: state values with their proofs under a certified
//! checkpoint (`GET /v1/state/proof`), and finalized blocks with their finalization
//! certificates.
//!
//! Everything here starts from a [`Trusted`] cluster (its id and key, from the genesis file or
//! pinned by the caller) and never from what the node says about itself.

use crate::{Client, ClientError};
use commonware_codec::{Decode as _, Encode as _};
use commonware_consensus::simplex::{scheme::ed25519, types::Finalization};
use commonware_cryptography::Digestible as _;
use welkin_keri::KeyState;
use welkin_state::keys;
use welkin_types::{
    Block, CertifiedCheckpoint, ClusterKey, Digest, Genesis, PublicKey, Receipt, Sender, TxId,
    api::BlockInfo, namespace, proof::ValueProof,
};

/// The consensus signing scheme (the node's `consensus::Scheme`): a finalization certificate
/// is a quorum of ed25519 signatures by the cluster's members.
type ConsensusScheme = ed25519::Scheme;

/// The cluster a client trusts: the cluster id and cluster key, from the genesis file (or
/// pinned on first use by the caller).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Trusted {
    /// The cluster id (the hash of the genesis).
    pub cluster_id: Digest,
    /// The cluster's threshold public key.
    pub cluster_key: ClusterKey,
}

impl Trusted {
    /// The cluster a genesis file describes, if a trusted dealer made its key (the file then
    /// holds it). A dealerless cluster's key is proven with [`Client::trusted`].
    pub fn from_dealt_genesis(genesis: &Genesis) -> Option<Self> {
        Some(Self {
            cluster_id: genesis.cluster_id(),
            cluster_key: *genesis.dealt_key()?,
        })
    }
}

/// The cluster's public polynomial from `genesis` and, for a dealerless cluster, the proof of
/// its key (from a receipt, or [`Client::cluster_key_proof`]): the logs must be a quorum of
/// one round's, each signed by a distinct genesis member (`welkin_dkg::check_first_key`).
/// The result is proven only once a threshold signature verifies under it (a receipt's
/// certified checkpoint, say): callers verify one before saying "verified".
pub fn key_from_proof(
    genesis: &Genesis,
    proof: Option<&welkin_types::api::ClusterKeyProof>,
) -> Result<welkin_types::Sharing, ClientError> {
    if let Some(polynomial) = &genesis.polynomial {
        return Ok(polynomial.clone());
    }
    let proof = proof.ok_or_else(|| {
        ClientError::BadReply(
            "the cluster is dealerless and no proof of its key came with the reply: fetch \
             one from a node (GET /v1/cluster/key)"
                .into(),
        )
    })?;
    let logs = proof
        .logs
        .iter()
        .map(|log| hex::decode(log).map_err(|e| ClientError::BadReply(format!("key proof: {e}"))))
        .collect::<Result<Vec<_>, _>>()?;
    let output = welkin_dkg::check_first_key(
        &genesis.cluster_id(),
        proof.round,
        &genesis.member_keys(),
        &proof.excluded,
        &logs,
    )
    .map_err(|e| ClientError::BadReply(format!("key proof does not check: {e}")))?;
    Ok(output.public().clone())
}

impl Client {
    /// The cluster key generation as the node's state records it (its word, unproven).
    pub fn keygen_status(&self) -> Result<welkin_types::api::KeygenStatus, ClientError> {
        self.get("/v1/cluster/keygen")
    }

    /// The epoch as the node's state records it (`GET /v1/cluster/epoch`): the node's word.
    pub fn epoch_status(&self) -> Result<welkin_types::api::EpochStatus, ClientError> {
        self.get("/v1/cluster/epoch")
    }

    /// The proof of a dealerless cluster's key, unchecked (see [`Client::proven_sharing`]).
    pub fn cluster_key_proof(&self) -> Result<welkin_types::api::ClusterKeyProof, ClientError> {
        self.get("/v1/cluster/key")
    }

    /// The cluster's public polynomial (its key and every member's share commitment), proven
    /// from `genesis` and nothing the node says about itself:
    /// - a dealt key is the genesis file's;
    /// - a dealerless key is computed from the dealer logs the cluster selected, each signed
    ///   by a distinct genesis member, a quorum of them (`welkin_dkg::check_first_key`); then
    ///   the latest certified checkpoint must verify under it. Only the key the members hold
    ///   shares of can sign: a node that served another quorum of logs would give a key
    ///   nobody can sign with.
    pub fn proven_sharing(&self, genesis: &Genesis) -> Result<welkin_types::Sharing, ClientError> {
        if let Some(polynomial) = &genesis.polynomial {
            return Ok(polynomial.clone());
        }
        let sharing = key_from_proof(genesis, Some(&self.cluster_key_proof()?))?;
        let cluster_id = genesis.cluster_id();
        let note = self.checkpoint_note(crate::NoteAt::Latest).map_err(|e| {
            ClientError::BadReply(format!(
                "the cluster key has no certified checkpoint yet to complete its proof ({e}); \
                 retry in a moment"
            ))
        })?;
        let note = welkin_note::Note::parse(note.as_bytes())
            .map_err(|e| ClientError::BadReply(format!("checkpoint note: {e}")))?;
        welkin_types::note::from_note(&note, &cluster_id, sharing.public()).map_err(|e| {
            ClientError::BadReply(format!(
                "the latest checkpoint does not verify under the key the logs give: {e}"
            ))
        })?;
        Ok(sharing)
    }

    /// The cluster `genesis` describes, with its key proven (see [`Client::proven_sharing`]).
    pub fn trusted(&self, genesis: &Genesis) -> Result<Trusted, ClientError> {
        Ok(Trusted {
            cluster_id: genesis.cluster_id(),
            cluster_key: *self.proven_sharing(genesis)?.public(),
        })
    }
}

/// A value the cluster certified, with the checkpoint that certifies it.
#[derive(Clone, Debug)]
pub struct Verified<T> {
    /// The value.
    pub value: T,
    /// The certified checkpoint whose state root the value's proof leads to.
    pub checkpoint: CertifiedCheckpoint,
}

impl Client {
    /// The node's proof reply for a state key, decoded but not checked (`None` when the node
    /// says the key has no value). Check it with [`ValueProof::verify`], or use
    /// [`Client::verified_value`].
    pub fn value_proof(&self, key: &Digest) -> Result<Option<ValueProof>, ClientError> {
        match self.get_bytes(&format!("/v1/state/proof?key={}", hex::encode(key))) {
            Ok(bytes) => welkin_types::decode::<ValueProof>(&bytes)
                .map(Some)
                .map_err(|e| ClientError::BadReply(format!("state proof: {e}"))),
            Err(ClientError::Api { code, .. }) if code == "no_value" => Ok(None),
            Err(e) => Err(e),
        }
    }

    /// The value of a state key, verified: the checkpoint is signed by the trusted cluster and
    /// the value's proof leads to its state root. `None` when the node says the key has no
    /// value: the store cannot prove absence, so that answer is the node's word, unverified.
    pub fn verified_value(
        &self,
        key: &Digest,
        trusted: &Trusted,
    ) -> Result<Option<Verified<Vec<u8>>>, ClientError> {
        let Some(reply) = self.value_proof(key)? else {
            return Ok(None);
        };
        reply.verify(&trusted.cluster_id, &trusted.cluster_key, key)?;
        Ok(Some(Verified {
            value: reply.value,
            checkpoint: reply.certified,
        }))
    }

    /// The receipt of a transaction, verified against the trusted cluster.
    pub fn verified_receipt(
        &self,
        id: &TxId,
        trusted: &Trusted,
    ) -> Result<Option<Verified<Receipt>>, ClientError> {
        self.verified_decoded(&keys::receipt(id), trusted, "receipt", |bytes| {
            welkin_types::decode::<Receipt>(bytes).map_err(|e| e.to_string())
        })
    }

    /// Why a committed transaction did not take effect, as the state machine recorded it,
    /// verified against the trusted cluster.
    pub fn verified_outcome_detail(
        &self,
        id: &TxId,
        trusted: &Trusted,
    ) -> Result<Option<Verified<String>>, ClientError> {
        self.verified_decoded(&keys::outcome_detail(id), trusted, "outcome detail", |b| {
            Ok(String::from_utf8_lossy(b).into_owned())
        })
    }

    /// The key state of a KERI identifier, verified against the trusted cluster.
    pub fn verified_key_state(
        &self,
        prefix: &str,
        trusted: &Trusted,
    ) -> Result<Option<Verified<KeyState>>, ClientError> {
        self.verified_decoded(&keys::id_state(prefix), trusted, "key state", |bytes| {
            welkin_state::identity::stored_key_state(Some(bytes))
                .map_err(|e| e.to_string())?
                .ok_or_else(|| "empty key state".to_string())
        })
    }

    /// A value in a sender's key-value namespace (a public key's, or an identifier's),
    /// verified against the trusted cluster.
    pub fn verified_kv(
        &self,
        owner: &KvOwner,
        key: &[u8],
        trusted: &Trusted,
    ) -> Result<Option<Verified<Vec<u8>>>, ClientError> {
        self.verified_value(&keys::kv(&owner.sender(), key), trusted)
    }

    fn verified_decoded<T>(
        &self,
        key: &Digest,
        trusted: &Trusted,
        what: &str,
        decode: impl FnOnce(&[u8]) -> Result<T, String>,
    ) -> Result<Option<Verified<T>>, ClientError> {
        let Some(verified) = self.verified_value(key, trusted)? else {
            return Ok(None);
        };
        let value = decode(&verified.value).map_err(|e| {
            ClientError::BadReply(format!("the certified value is not a {what}: {e}"))
        })?;
        Ok(Some(Verified {
            value,
            checkpoint: verified.checkpoint,
        }))
    }
}

/// Who owns a key-value namespace.
#[derive(Clone, Debug)]
pub enum KvOwner {
    /// A raw ed25519 key.
    Key(PublicKey),
    /// A KERI identifier (whatever keys it signs with).
    Identifier(String),
}

impl KvOwner {
    fn sender(&self) -> Sender {
        match self {
            KvOwner::Key(key) => Sender::Key(key.clone()),
            KvOwner::Identifier(prefix) => Sender::Identifier {
                prefix: prefix.clone(),
                signers: Vec::new(),
            },
        }
    }
}

/// Why a block reply does not check out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum BlockError {
    /// A field does not decode.
    #[error("{field} is malformed: {reason}")]
    Malformed {
        /// Which field.
        field: &'static str,
        /// Why.
        reason: String,
    },
    /// The block is at another height than the one asked for.
    #[error("asked for height {asked}, the node sent a block at height {found}")]
    Height {
        /// The height asked for.
        asked: u64,
        /// The block's height.
        found: u64,
    },
    /// The finalization certificate is not a quorum of the members' signatures.
    #[error("the finalization certificate is not signed by a quorum of the genesis members")]
    Signature,
    /// The certificate finalizes another block.
    #[error("the finalization certificate names block {named}, not this block ({block})")]
    OtherBlock {
        /// The digest the certificate names.
        named: String,
        /// The block's digest.
        block: String,
    },
    /// A non-genesis block came without a finalization certificate.
    #[error("no finalization certificate came with block {0}")]
    Missing(u64),
    /// The genesis block is not the trusted genesis file's.
    #[error("block 0 is not the genesis block of the trusted genesis file")]
    NotGenesis,
}

/// What a checked block is trusted for.
#[derive(Clone, Debug)]
pub enum BlockProof {
    /// A finalization certificate signed by a quorum of the genesis members names the
    /// block's digest.
    Finalized,
    /// It is the genesis block of the trusted genesis file.
    Genesis,
}

/// Checks a block reply for `height` against a trusted `genesis`: the block decodes and is at
/// that height, and its finalization certificate is a quorum of signatures by the genesis
/// members (consensus signs with the members' ed25519 keys) and names its digest. The genesis
/// block (height 0) has no certificate: it checks against `genesis` itself. Returns the
/// decoded block (print from it, not from the reply's JSON fields).
pub fn verify_block(
    info: &BlockInfo,
    height: u64,
    genesis: &Genesis,
) -> Result<(Block, BlockProof), BlockError> {
    let malformed = |field: &'static str, reason: String| BlockError::Malformed { field, reason };
    let bytes = hex::decode(&info.encoded).map_err(|e| malformed("encoded", e.to_string()))?;
    let block =
        welkin_types::decode::<Block>(&bytes).map_err(|e| malformed("encoded", e.to_string()))?;
    if block.height != height {
        return Err(BlockError::Height {
            asked: height,
            found: block.height,
        });
    }
    let Some(finalization) = &info.finalization else {
        return if height != 0 {
            Err(BlockError::Missing(height))
        } else if genesis.block().digest() == block.digest() {
            Ok((block, BlockProof::Genesis))
        } else {
            Err(BlockError::NotGenesis)
        };
    };
    let bytes = hex::decode(finalization).map_err(|e| malformed("finalization", e.to_string()))?;
    let finalization = Finalization::<ConsensusScheme, Digest>::decode_cfg(
        commonware_codec::Copying(&bytes),
        &genesis.nodes.len(),
    )
    .map_err(|e| malformed("finalization", e.to_string()))?;
    let members = commonware_utils::ordered::Set::try_from(
        genesis
            .nodes
            .iter()
            .map(|n| n.public_key.clone())
            .collect::<Vec<_>>(),
    )
    .map_err(|_| malformed("genesis", "duplicate member keys".into()))?;
    let verifier = ConsensusScheme::verifier(namespace::CONSENSUS, members);
    if !finalization.verify(
        &mut commonware_utils::sys_rng(),
        &verifier,
        &commonware_parallel::Sequential,
    ) {
        return Err(BlockError::Signature);
    }
    if finalization.proposal.payload != block.digest() {
        return Err(BlockError::OtherBlock {
            named: hex::encode(finalization.proposal.payload.encode()),
            block: hex::encode(block.digest()),
        });
    }
    Ok((block, BlockProof::Finalized))
}

#[cfg(test)]
mod tests;
