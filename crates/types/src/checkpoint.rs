//! Certified checkpoints: (cluster id, height, state root, log size, log root) signed by the
//! cluster key.
//!
//! After applying height `h`, every node signs a threshold partial over the checkpoint
//! message; any `t` partials recover one BLS signature that verifies under the cluster key.
//! A client that holds only the cluster public key can therefore check a node's claim about
//! the state at `h` without trusting that node.

use crate::{ClusterKey, ClusterSignature, Digest, Variant, namespace};
use bytes::BufMut;
use commonware_codec::{Buf, Encode, Error as CodecError, FixedSize, Read, ReadExt, Write};
use commonware_cryptography::bls12381::primitives::ops;

/// What the cluster signs about one height.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Checkpoint {
    /// The block height whose state this describes.
    pub height: u64,
    /// The authenticated state root after applying that block.
    pub state_root: Digest,
    /// Entries in the audit log (RFC 6962 tree size) after that block.
    pub log_size: u64,
    /// The audit log's RFC 6962 root at `log_size`.
    pub log_root: Digest,
}

impl Checkpoint {
    /// The signed message: cluster id, height, state root, log size, log root.
    pub fn message(&self, cluster_id: &Digest) -> Vec<u8> {
        let mut message = Vec::with_capacity(32 + 8 + 32 + 8 + 32);
        message.extend_from_slice(cluster_id.as_ref());
        message.extend_from_slice(&self.height.to_be_bytes());
        message.extend_from_slice(self.state_root.as_ref());
        message.extend_from_slice(&self.log_size.to_be_bytes());
        message.extend_from_slice(self.log_root.as_ref());
        message
    }
}

impl Checkpoint {
    /// Checks that `entry` is leaf `index` of the log this checkpoint commits to, given an
    /// RFC 6962 inclusion proof (hashes from leaf to root).
    pub fn verify_inclusion(
        &self,
        entry: &[u8],
        index: u64,
        proof: &[Digest],
    ) -> Result<(), welkin_merkle::VerifyError> {
        let proof: Vec<welkin_merkle::Hash> = proof.iter().map(|d| d.0).collect();
        welkin_merkle::verify_inclusion(
            &welkin_merkle::leaf_hash(entry),
            index,
            self.log_size,
            &proof,
            &self.log_root.0,
        )
    }
}

impl Write for Checkpoint {
    fn write(&self, buf: &mut impl BufMut) {
        self.height.write(buf);
        self.state_root.write(buf);
        self.log_size.write(buf);
        self.log_root.write(buf);
    }
}

impl FixedSize for Checkpoint {
    const SIZE: usize = 8 + Digest::SIZE + 8 + Digest::SIZE;
}

impl Read for Checkpoint {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            height: u64::read(buf)?,
            state_root: Digest::read(buf)?,
            log_size: u64::read(buf)?,
            log_root: Digest::read(buf)?,
        })
    }
}

/// A checkpoint with the cluster's threshold signature over it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedCheckpoint {
    /// The checkpoint.
    pub checkpoint: Checkpoint,
    /// The recovered threshold signature under the cluster key.
    pub signature: ClusterSignature,
}

impl CertifiedCheckpoint {
    /// Checks the signature against the cluster key, for the cluster `cluster_id`.
    pub fn verify(&self, cluster_id: &Digest, cluster_key: &ClusterKey) -> bool {
        ops::verify_message::<Variant>(
            cluster_key,
            namespace::CHECKPOINT,
            &self.checkpoint.message(cluster_id),
            &self.signature,
        )
        .is_ok()
    }
}

impl Write for CertifiedCheckpoint {
    fn write(&self, buf: &mut impl BufMut) {
        self.checkpoint.write(buf);
        self.signature.write(buf);
    }
}

impl FixedSize for CertifiedCheckpoint {
    const SIZE: usize = Checkpoint::SIZE + ClusterSignature::SIZE;
}

impl Read for CertifiedCheckpoint {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            checkpoint: Checkpoint::read(buf)?,
            signature: ClusterSignature::read(buf)?,
        })
    }
}

impl CertifiedCheckpoint {
    /// Hex of the canonical encoding (what the API and CLI print).
    pub fn to_hex(&self) -> String {
        hex::encode(self.encode())
    }
}

/// Test support: a 4-node cluster key and a checkpoint certified by three of its shares.
#[cfg(test)]
pub(crate) fn certified_for_tests(
    cluster_id: &Digest,
    checkpoint: Checkpoint,
) -> (crate::Sharing, CertifiedCheckpoint) {
    use commonware_cryptography::bls12381::{
        dkg::feldman_desmedt::deal_anonymous,
        primitives::{ops::threshold, sharing::Mode},
    };
    use commonware_utils::{N3f1, NZU32, test_rng};
    let (sharing, shares) =
        deal_anonymous::<Variant, N3f1>(test_rng(), Mode::NonZeroCounter, NZU32!(4));
    let message = checkpoint.message(cluster_id);
    let partials: Vec<_> = shares[..3]
        .iter()
        .map(|s| threshold::sign_message::<Variant>(s, namespace::CHECKPOINT, &message))
        .collect();
    let signature =
        threshold::recover::<Variant, _>(&sharing, &partials, &commonware_parallel::Sequential)
            .expect("three of four partials recover");
    (
        sharing,
        CertifiedCheckpoint {
            checkpoint,
            signature,
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_parts;
    use commonware_codec::DecodeExt;

    #[test]
    fn threshold_signature_verifies_and_binds_every_field() {
        let id = hash_parts(&[b"cluster"]);
        let checkpoint = Checkpoint {
            height: 9,
            state_root: hash_parts(&[b"root"]),
            log_size: 4,
            log_root: hash_parts(&[b"log"]),
        };
        let (sharing, certified) = certified_for_tests(&id, checkpoint);
        assert!(certified.verify(&id, sharing.public()));
        assert!(!certified.verify(&hash_parts(&[b"other"]), sharing.public()));
        let mut wrong_height = certified.clone();
        wrong_height.checkpoint.height = 10;
        assert!(!wrong_height.verify(&id, sharing.public()));
        let decoded = CertifiedCheckpoint::decode(certified.encode()).expect("decodes");
        assert_eq!(decoded, certified);
    }
}
