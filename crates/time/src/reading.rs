//! A node's reading of its clock, and the reading signed over a batch root.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt, Write};
use commonware_cryptography::{Signer as _, Verifier as _};
use welkin_types::{Digest, PrivateKey, PublicKey, Signature, namespace};

/// Version byte of a [`SignedReading`] encoding and of its signed message.
pub const READING_VERSION: u8 = 1;

/// What a node's clock says: true time lies within `radius_ns` of `midpoint_ns` (nanoseconds
/// since the Unix epoch), as far as the node can vouch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// The clock's value, in nanoseconds since the Unix epoch.
    pub midpoint_ns: u64,
    /// How far true time may be from the midpoint, in nanoseconds.
    pub radius_ns: u64,
    /// Whether the host's clock was synchronised (the kernel vouched for the radius) rather
    /// than free-running since the node's last agreement with the cluster.
    pub synced: bool,
}

impl Reading {
    /// The earliest instant the reading allows (saturating at the epoch).
    pub fn earliest_ns(&self) -> u64 {
        self.midpoint_ns.saturating_sub(self.radius_ns)
    }

    /// The latest instant the reading allows (saturating at the end of `u64`).
    pub fn latest_ns(&self) -> u64 {
        self.midpoint_ns.saturating_add(self.radius_ns)
    }
}

impl Write for Reading {
    fn write(&self, buf: &mut impl BufMut) {
        self.midpoint_ns.write(buf);
        self.radius_ns.write(buf);
        self.synced.write(buf);
    }
}

impl FixedSize for Reading {
    const SIZE: usize = 8 + 8 + 1;
}

impl Read for Reading {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            midpoint_ns: u64::read(buf)?,
            radius_ns: u64::read(buf)?,
            synced: bool::read(buf)?,
        })
    }
}

/// A reading signed by node `signer` (its genesis position) for the batch `root`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SignedReading {
    /// The signer's position in the genesis node list.
    pub signer: u32,
    /// The Merkle root of the batch of client nonces the reading answers.
    pub root: Digest,
    /// The reading.
    pub reading: Reading,
    /// The signer's ed25519 signature over [`SignedReading::message`].
    pub signature: Signature,
}

impl SignedReading {
    /// The signed message: version, cluster id, signer position, root and reading, so a
    /// reading can be replayed neither to another cluster, nor as another node's, nor for
    /// another batch.
    pub fn message(cluster_id: &Digest, signer: u32, root: &Digest, reading: &Reading) -> Vec<u8> {
        let mut message = Vec::with_capacity(1 + 32 + 4 + 32 + Reading::SIZE);
        READING_VERSION.write(&mut message);
        message.extend_from_slice(cluster_id.as_ref());
        signer.write(&mut message);
        message.extend_from_slice(root.as_ref());
        reading.write(&mut message);
        message
    }

    /// Signs `reading` as node `signer` with `key`.
    pub fn sign(
        key: &PrivateKey,
        cluster_id: &Digest,
        signer: u32,
        root: Digest,
        reading: Reading,
    ) -> Self {
        let message = Self::message(cluster_id, signer, &root, &reading);
        Self {
            signer,
            root,
            reading,
            signature: key.sign(namespace::TIME_READING, &message),
        }
    }

    /// Whether the signature is `public_key`'s over this reading in `cluster_id`.
    pub fn verify(&self, cluster_id: &Digest, public_key: &PublicKey) -> bool {
        let message = Self::message(cluster_id, self.signer, &self.root, &self.reading);
        public_key.verify(namespace::TIME_READING, &message, &self.signature)
    }
}

impl Write for SignedReading {
    fn write(&self, buf: &mut impl BufMut) {
        READING_VERSION.write(buf);
        self.signer.write(buf);
        self.root.write(buf);
        self.reading.write(buf);
        self.signature.write(buf);
    }
}

impl EncodeSize for SignedReading {
    fn encode_size(&self) -> usize {
        1 + 4 + Digest::SIZE + Reading::SIZE + Signature::SIZE
    }
}

impl Read for SignedReading {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != READING_VERSION {
            return Err(CodecError::Invalid("SignedReading", "unknown version"));
        }
        Ok(Self {
            signer: u32::read(buf)?,
            root: Digest::read(buf)?,
            reading: Reading::read(buf)?,
            signature: Signature::read(buf)?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode as _;
    use welkin_types::hash_parts;

    fn reading() -> Reading {
        Reading {
            midpoint_ns: 1_700_000_000_000_000_000,
            radius_ns: 5_000_000,
            synced: true,
        }
    }

    #[test]
    fn a_signature_binds_cluster_signer_root_and_reading() {
        let key = PrivateKey::from_seed(1);
        let cluster = hash_parts(&[b"cluster"]);
        let root = hash_parts(&[b"root"]);
        let signed = SignedReading::sign(&key, &cluster, 2, root, reading());
        assert!(signed.verify(&cluster, &key.public_key()));
        assert!(!signed.verify(&hash_parts(&[b"other"]), &key.public_key()));
        assert!(!signed.verify(&cluster, &PrivateKey::from_seed(2).public_key()));
        let mut moved = signed.clone();
        moved.reading.midpoint_ns += 1;
        assert!(!moved.verify(&cluster, &key.public_key()));
        let mut relabelled = signed.clone();
        relabelled.signer = 3;
        assert!(!relabelled.verify(&cluster, &key.public_key()));
        let mut rerooted = signed;
        rerooted.root = cluster;
        assert!(!rerooted.verify(&cluster, &key.public_key()));
    }

    #[test]
    fn encoding_round_trips_and_refuses_other_versions() {
        let key = PrivateKey::from_seed(1);
        let cluster = hash_parts(&[b"cluster"]);
        let signed = SignedReading::sign(&key, &cluster, 0, hash_parts(&[b"r"]), reading());
        let bytes = signed.encode();
        assert_eq!(bytes.len(), signed.encode_size());
        let decoded: SignedReading = welkin_types::decode(&bytes).expect("decodes");
        assert_eq!(decoded, signed);
        let mut other = bytes.to_vec();
        other[0] = 2;
        assert!(welkin_types::decode::<SignedReading>(&other).is_err());
        assert!(welkin_types::decode::<SignedReading>(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn bounds_saturate_instead_of_wrapping() {
        let near_zero = Reading {
            midpoint_ns: 3,
            radius_ns: 10,
            synced: false,
        };
        assert_eq!(near_zero.earliest_ns(), 0);
        let near_end = Reading {
            midpoint_ns: u64::MAX - 1,
            radius_ns: 10,
            synced: false,
        };
        assert_eq!(near_end.latest_ns(), u64::MAX);
    }
}
