//! Proofs of state values under a certified checkpoint.
//!
//! A node's state lives in a QMDB (`current::unordered::variable`) whose root every certified
//! checkpoint signs. A [`ValueProof`] carries a certified checkpoint, a state key, its value and
//! the QMDB proof that the key holds exactly that value under the checkpoint's state root. A
//! client holding only the cluster id and cluster key (from the genesis file) checks it with
//! [`ValueProof::verify`]: the threshold signature over the checkpoint, then the proof under
//! the certified root. Nothing in the reply rests on the serving node's word.
//!
//! The unordered store has no exclusion proofs: an absent key cannot be proven absent.
//!
//! Wire format (version 1): `0x01`, the certified checkpoint (fixed size), the key (32 bytes),
//! the value (varint length, at most [`MAX_STATE_VALUE_BYTES`]), the QMDB key-value proof (at
//! most [`MAX_PROOF_DIGESTS`] digests).

use crate::{CertifiedCheckpoint, ClusterKey, Digest, Hasher};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt, Write};
use commonware_parallel::Sequential;
use commonware_storage::{
    merkle::{MAX_PROOF_DIGESTS_PER_ELEMENT, mmr},
    qmdb::current::unordered::{proof::constant::KeyValueProof, variable::Db},
    translator::EightCap,
};

/// Bytes per chunk of the QMDB activity bitmap (a power of two and a multiple of the digest
/// size). The node's store and every verifier must agree: it shapes the state root.
pub const STATE_CHUNK_BYTES: usize = 32;

/// Largest state value the store accepts, and so the largest a proof can carry.
pub const MAX_STATE_VALUE_BYTES: usize = 64 * 1024;

/// Most digests a decoded state proof may hold. A proof covers one operation of a Merkle
/// mountain range: a path and the peaks, which commonware bounds by
/// `MAX_PROOF_DIGESTS_PER_ELEMENT` (122, for a range with 62 peaks).
pub const MAX_PROOF_DIGESTS: usize = MAX_PROOF_DIGESTS_PER_ELEMENT;

/// The encoding version of [`ValueProof`].
pub const VALUE_PROOF_VERSION: u8 = 1;

/// The node's state database: SHA-256 digest keys, byte values, an MMR. Defined here so that
/// the node that writes the state and the clients that verify proofs of it use the same
/// parameters.
pub type StateDb<E> =
    Db<mmr::Family, E, Digest, Vec<u8>, Hasher, EightCap, STATE_CHUNK_BYTES, Sequential>;

/// A QMDB proof that a key currently holds a value in the state.
pub type StateProof = KeyValueProof<mmr::Family, Digest, STATE_CHUNK_BYTES>;

/// Any storage context names the verifying function: it is associated with the database type
/// but reads no database.
type Verifier = StateDb<commonware_runtime::deterministic::Context>;

/// Whether `proof` shows that `key` holds `value` in the state whose root is `root`.
pub fn verify_key_value(key: Digest, value: Vec<u8>, proof: &StateProof, root: &Digest) -> bool {
    Verifier::verify_key_value_proof(key, value, proof, root)
}

/// A state value with what makes it checkable: the certified checkpoint whose state root the
/// proof leads to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ValueProof {
    /// The certified checkpoint of the height at which the proof was taken.
    pub certified: CertifiedCheckpoint,
    /// The state key.
    pub key: Digest,
    /// Its value at that height.
    pub value: Vec<u8>,
    /// The QMDB proof of (key, value) under `certified.checkpoint.state_root`.
    pub proof: StateProof,
}

/// Why a [`ValueProof`] does not check out.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ProofError {
    /// The checkpoint's signature does not verify under the trusted cluster key and id.
    #[error(
        "the checkpoint at height {0} is not signed by the trusted cluster key (another cluster, or forged)"
    )]
    Signature(u64),
    /// The proof is about another key than the one asked for.
    #[error("the proof is for state key {found}, not the key asked for ({asked})")]
    WrongKey {
        /// The key asked for, hex.
        asked: String,
        /// The key the proof names, hex.
        found: String,
    },
    /// The value and proof do not lead to the certified state root.
    #[error("the value does not verify under the state root {root} certified at height {height}")]
    NotUnderRoot {
        /// The checkpoint's height.
        height: u64,
        /// The certified state root, hex.
        root: String,
    },
}

impl ValueProof {
    /// Checks the proof for `key`: the checkpoint is signed by `cluster_key` for
    /// `cluster_id`, the proof names `key`, and (key, value) verifies under the certified
    /// state root. On success the value is the cluster's, as of the checkpoint's height.
    pub fn verify(
        &self,
        cluster_id: &Digest,
        cluster_key: &ClusterKey,
        key: &Digest,
    ) -> Result<(), ProofError> {
        let checkpoint = &self.certified.checkpoint;
        if !self.certified.verify(cluster_id, cluster_key) {
            return Err(ProofError::Signature(checkpoint.height));
        }
        if self.key != *key {
            return Err(ProofError::WrongKey {
                asked: hex::encode(key),
                found: hex::encode(self.key),
            });
        }
        if !verify_key_value(
            self.key,
            self.value.clone(),
            &self.proof,
            &checkpoint.state_root,
        ) {
            return Err(ProofError::NotUnderRoot {
                height: checkpoint.height,
                root: hex::encode(checkpoint.state_root),
            });
        }
        Ok(())
    }
}

impl Write for ValueProof {
    fn write(&self, buf: &mut impl BufMut) {
        VALUE_PROOF_VERSION.write(buf);
        self.certified.write(buf);
        self.key.write(buf);
        self.value.write(buf);
        self.proof.write(buf);
    }
}

impl EncodeSize for ValueProof {
    fn encode_size(&self) -> usize {
        1 + self.certified.encode_size()
            + self.key.encode_size()
            + self.value.encode_size()
            + self.proof.encode_size()
    }
}

impl Read for ValueProof {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != VALUE_PROOF_VERSION {
            return Err(CodecError::Invalid(
                "ValueProof",
                "unknown version (this client reads version 1)",
            ));
        }
        Ok(Self {
            certified: CertifiedCheckpoint::read(buf)?,
            key: Digest::read(buf)?,
            value: Vec::<u8>::read_cfg(buf, &(RangeCfg::new(0..=MAX_STATE_VALUE_BYTES), ()))?,
            proof: StateProof::read_cfg(buf, &MAX_PROOF_DIGESTS)?,
        })
    }
}
