//! Time certificates: an agreed interval for a batch of nonces, signed by the cluster key, and
//! the Merkle path that ties one client's nonce to the batch.

use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt, Write};
use commonware_cryptography::bls12381::primitives::ops;
use welkin_merkle::{Hash, MemoryTree, inclusion_proof, leaf_hash, root_from_inclusion_proof};
use welkin_types::{ClusterKey, ClusterSignature, Digest, Variant, namespace};

/// Version byte of the certificate's signed message and of its encodings.
pub const CERTIFICATE_VERSION: u8 = 1;

/// Most nonces in one batch (and so one certificate round).
pub const MAX_BATCH: usize = 4096;

/// Longest Merkle path accepted when decoding (a batch of [`MAX_BATCH`] needs 12).
const MAX_PATH: usize = 32;

/// What the cluster signs: true time lay in `[earliest_ns, latest_ns]` at an instant after
/// every nonce under `root` was known to the nodes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Certificate {
    /// The Merkle root of the batch of nonces.
    pub root: Digest,
    /// The earliest instant, in nanoseconds since the Unix epoch.
    pub earliest_ns: u64,
    /// The latest instant.
    pub latest_ns: u64,
    /// Bit `i` is set when node `i`'s reading agreed with the interval.
    pub agreed: u128,
    /// How much each reading's latest end was moved before agreeing (the collection window),
    /// so that anyone can recompute which readings agreed.
    pub window_ns: u64,
    /// The cluster's signature over [`Certificate::message`].
    pub signature: ClusterSignature,
}

impl Certificate {
    /// The signed message: version, cluster id, root, earliest, latest, who agreed and the
    /// collection window.
    pub fn message(cluster_id: &Digest, root: &Digest, agreement: &crate::Agreement) -> Vec<u8> {
        let mut message = Vec::with_capacity(1 + 32 + 32 + 8 + 8 + 16 + 8);
        CERTIFICATE_VERSION.write(&mut message);
        message.extend_from_slice(cluster_id.as_ref());
        message.extend_from_slice(root.as_ref());
        agreement.earliest_ns.write(&mut message);
        agreement.latest_ns.write(&mut message);
        agreement.agreed.write(&mut message);
        agreement.window_ns.write(&mut message);
        message
    }

    /// The agreement this certificate signs.
    pub fn agreement(&self) -> crate::Agreement {
        crate::Agreement {
            earliest_ns: self.earliest_ns,
            latest_ns: self.latest_ns,
            agreed: self.agreed,
            window_ns: self.window_ns,
        }
    }

    /// Checks the signature against the cluster key of `cluster_id`.
    pub fn verify(&self, cluster_id: &Digest, cluster_key: &ClusterKey) -> bool {
        let message = Self::message(cluster_id, &self.root, &self.agreement());
        ops::verify_message::<Variant>(cluster_key, namespace::TIME, &message, &self.signature)
            .is_ok()
    }

    /// The interval's midpoint and radius (half its width, rounded up), in nanoseconds.
    pub fn midpoint_and_radius(&self) -> (u64, u64) {
        let width = self.latest_ns.saturating_sub(self.earliest_ns);
        (self.earliest_ns + width / 2, width.div_ceil(2))
    }

    /// The positions of the nodes whose readings agreed.
    pub fn agreed_nodes(&self) -> Vec<u32> {
        (0..128)
            .filter(|i| self.agreed & (1u128 << i) != 0)
            .collect()
    }
}

impl Write for Certificate {
    fn write(&self, buf: &mut impl BufMut) {
        CERTIFICATE_VERSION.write(buf);
        self.root.write(buf);
        self.earliest_ns.write(buf);
        self.latest_ns.write(buf);
        self.agreed.write(buf);
        self.window_ns.write(buf);
        self.signature.write(buf);
    }
}

impl FixedSize for Certificate {
    const SIZE: usize = 1 + Digest::SIZE + 8 + 8 + 16 + 8 + ClusterSignature::SIZE;
}

impl Read for Certificate {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if u8::read(buf)? != CERTIFICATE_VERSION {
            return Err(CodecError::Invalid("Certificate", "unknown version"));
        }
        let certificate = Self {
            root: Digest::read(buf)?,
            earliest_ns: u64::read(buf)?,
            latest_ns: u64::read(buf)?,
            agreed: u128::read(buf)?,
            window_ns: u64::read(buf)?,
            signature: ClusterSignature::read(buf)?,
        };
        if certificate.earliest_ns > certificate.latest_ns {
            return Err(CodecError::Invalid("Certificate", "earliest after latest"));
        }
        Ok(certificate)
    }
}

/// Why a certified time does not check.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CertificateError {
    /// The nonce's Merkle path does not lead to a root (bad index or length).
    #[error("the nonce's batch path is malformed: {0}")]
    BadPath(String),
    /// The path leads to another root than the certificate's.
    #[error(
        "the nonce is not in the certified batch (path leads to {found}, certificate has {expected})"
    )]
    NotInBatch {
        /// The root the path leads to.
        found: String,
        /// The certificate's root.
        expected: String,
    },
    /// The signature is not the cluster key's.
    #[error("the certificate's signature does not verify under the cluster key")]
    BadSignature,
    /// The certificate answers another nonce than the one asked.
    #[error("the certificate answers nonce {found}, not {expected}")]
    WrongNonce {
        /// The nonce in the certificate.
        found: String,
        /// The nonce the client sent.
        expected: String,
    },
}

/// One client's certified time: the batch certificate and its nonce's place in the batch.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CertifiedTime {
    /// The batch's certificate.
    pub certificate: Certificate,
    /// The client's nonce.
    pub nonce: [u8; 32],
    /// The nonce's position in the batch.
    pub index: u32,
    /// How many nonces the batch held.
    pub size: u32,
    /// The RFC 6962 inclusion path of the nonce (leaf to root).
    pub path: Vec<Digest>,
}

impl CertifiedTime {
    /// Checks that the nonce is in the certified batch and the certificate is the cluster's.
    pub fn verify(
        &self,
        cluster_id: &Digest,
        cluster_key: &ClusterKey,
    ) -> Result<(), CertificateError> {
        let path: Vec<Hash> = self.path.iter().map(|d| d.0).collect();
        let root = root_from_inclusion_proof(
            &leaf_hash(&self.nonce),
            u64::from(self.index),
            u64::from(self.size),
            &path,
        )
        .map_err(|error| CertificateError::BadPath(error.to_string()))?;
        if root != self.certificate.root.0 {
            return Err(CertificateError::NotInBatch {
                found: hex::encode(root),
                expected: hex::encode(self.certificate.root),
            });
        }
        if !self.certificate.verify(cluster_id, cluster_key) {
            return Err(CertificateError::BadSignature);
        }
        Ok(())
    }

    /// Checks as [`CertifiedTime::verify`] does, and that it answers `nonce`.
    pub fn verify_for(
        &self,
        nonce: &[u8; 32],
        cluster_id: &Digest,
        cluster_key: &ClusterKey,
    ) -> Result<(), CertificateError> {
        if &self.nonce != nonce {
            return Err(CertificateError::WrongNonce {
                found: hex::encode(self.nonce),
                expected: hex::encode(nonce),
            });
        }
        self.verify(cluster_id, cluster_key)
    }

    /// Hex of the canonical encoding (what the API returns and the CLI verifies).
    pub fn to_hex(&self) -> String {
        use commonware_codec::Encode as _;
        hex::encode(self.encode())
    }
}

impl Write for CertifiedTime {
    fn write(&self, buf: &mut impl BufMut) {
        self.certificate.write(buf);
        self.nonce.write(buf);
        self.index.write(buf);
        self.size.write(buf);
        u8::try_from(self.path.len())
            .expect("paths are at most MAX_PATH long")
            .write(buf);
        for hash in &self.path {
            hash.write(buf);
        }
    }
}

impl EncodeSize for CertifiedTime {
    fn encode_size(&self) -> usize {
        Certificate::SIZE + 32 + 4 + 4 + 1 + self.path.len() * Digest::SIZE
    }
}

impl Read for CertifiedTime {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let certificate = Certificate::read(buf)?;
        let nonce = <[u8; 32]>::read(buf)?;
        let index = u32::read(buf)?;
        let size = u32::read(buf)?;
        let length = usize::from(u8::read(buf)?);
        if length > MAX_PATH {
            return Err(CodecError::InvalidLength(length));
        }
        let path = (0..length)
            .map(|_| Digest::read(buf))
            .collect::<Result<_, _>>()?;
        Ok(Self {
            certificate,
            nonce,
            index,
            size,
            path,
        })
    }
}

fn tree(nonces: &[[u8; 32]]) -> MemoryTree {
    let mut tree = MemoryTree::new();
    for nonce in nonces {
        tree.append(leaf_hash(nonce));
    }
    tree
}

/// The RFC 6962 Merkle root of a batch of nonces (each nonce is one leaf).
pub fn batch_root(nonces: &[[u8; 32]]) -> Digest {
    Digest::from(tree(nonces).root())
}

/// Each nonce's inclusion path in the batch, in order.
pub fn batch_paths(nonces: &[[u8; 32]]) -> Vec<Vec<Digest>> {
    let tree = tree(nonces);
    let size = tree.size();
    (0..size)
        .map(|index| {
            inclusion_proof(&tree, index, size)
                .expect("every leaf of the tree has a path")
                .into_iter()
                .map(Digest::from)
                .collect()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::Encode as _;
    use commonware_cryptography::Signer as _;
    use commonware_cryptography::bls12381::{
        dkg::feldman_desmedt::deal_anonymous,
        primitives::{ops::threshold, sharing::Mode},
    };
    use commonware_utils::{N3f1, NZU32, test_rng};
    use welkin_types::{Sharing, hash_parts};

    fn certify(nonces: &[[u8; 32]]) -> (Sharing, Digest, Certificate) {
        let (sharing, shares) =
            deal_anonymous::<Variant, N3f1>(test_rng(), Mode::NonZeroCounter, NZU32!(4));
        let cluster = hash_parts(&[b"cluster"]);
        let root = batch_root(nonces);
        let agreement = crate::Agreement {
            earliest_ns: 100,
            latest_ns: 300,
            agreed: 0b1011,
            window_ns: 0,
        };
        let message = Certificate::message(&cluster, &root, &agreement);
        let partials: Vec<_> = shares[1..]
            .iter()
            .map(|s| threshold::sign_message::<Variant>(s, namespace::TIME, &message))
            .collect();
        let signature =
            threshold::recover::<Variant, _>(&sharing, &partials, &commonware_parallel::Sequential)
                .expect("three partials recover");
        let certificate = Certificate {
            root,
            earliest_ns: 100,
            latest_ns: 300,
            agreed: 0b1011,
            window_ns: 0,
            signature,
        };
        (sharing, cluster, certificate)
    }

    fn nonces(count: u8) -> Vec<[u8; 32]> {
        (0..count).map(|i| [i; 32]).collect()
    }

    #[test]
    fn every_nonce_of_a_batch_verifies_and_nothing_else_does() {
        let batch = nonces(5);
        let (sharing, cluster, certificate) = certify(&batch);
        let paths = batch_paths(&batch);
        for (index, (nonce, path)) in batch.iter().zip(paths).enumerate() {
            let certified = CertifiedTime {
                certificate: certificate.clone(),
                nonce: *nonce,
                index: u32::try_from(index).expect("small"),
                size: 5,
                path,
            };
            certified
                .verify_for(nonce, &cluster, sharing.public())
                .expect("verifies");
            let bytes = certified.encode();
            let decoded: CertifiedTime = welkin_types::decode(&bytes).expect("decodes");
            assert_eq!(decoded, certified);

            let mut foreign = certified.clone();
            foreign.nonce = [9; 32];
            assert!(matches!(
                foreign.verify(&cluster, sharing.public()),
                Err(CertificateError::NotInBatch { .. })
            ));
            assert!(matches!(
                certified.verify_for(&[9; 32], &cluster, sharing.public()),
                Err(CertificateError::WrongNonce { .. })
            ));
            let mut widened = certified.clone();
            widened.certificate.latest_ns += 1;
            assert_eq!(
                widened.verify(&cluster, sharing.public()),
                Err(CertificateError::BadSignature)
            );
            let mut claimed = certified;
            claimed.certificate.agreed |= 0b0100;
            assert_eq!(
                claimed.verify(&cluster, sharing.public()),
                Err(CertificateError::BadSignature)
            );
        }
        assert_eq!(certificate.midpoint_and_radius(), (200, 100));
        assert_eq!(certificate.agreed_nodes(), vec![0, 1, 3]);
    }

    #[test]
    fn another_cluster_does_not_verify() {
        let batch = nonces(1);
        let (sharing, _, certificate) = certify(&batch);
        assert!(!certificate.verify(&hash_parts(&[b"other"]), sharing.public()));
    }

    #[test]
    fn decoding_refuses_inverted_intervals_long_paths_and_other_versions() {
        let batch = nonces(2);
        let (_, _, certificate) = certify(&batch);
        let certified = CertifiedTime {
            certificate,
            nonce: batch[0],
            index: 0,
            size: 2,
            path: batch_paths(&batch)[0].clone(),
        };
        let bytes = certified.encode().to_vec();
        let mut version = bytes.clone();
        version[0] = 2;
        assert!(welkin_types::decode::<CertifiedTime>(&version).is_err());
        let mut inverted = bytes.clone();
        // earliest (bytes 33..41) above latest.
        inverted[33..41].copy_from_slice(&u64::MAX.to_be_bytes());
        assert!(welkin_types::decode::<CertifiedTime>(&inverted).is_err());
        let mut long = bytes[..Certificate::SIZE + 40].to_vec();
        long.push(u8::try_from(MAX_PATH + 1).expect("small"));
        long.extend(std::iter::repeat_n(0u8, (MAX_PATH + 1) * 32));
        assert!(welkin_types::decode::<CertifiedTime>(&long).is_err());
        assert!(welkin_types::decode::<CertifiedTime>(&bytes[..bytes.len() - 1]).is_err());
    }

    #[test]
    fn encodings_are_frozen() {
        // A change here is a wire-format change: bump CERTIFICATE_VERSION or
        // READING_VERSION, then update the fixture.
        let cluster = hash_parts(&[b"welkin fixture cluster"]);
        let root = batch_root(&nonces(3));
        let message = Certificate::message(
            &cluster,
            &root,
            &crate::Agreement {
                earliest_ns: 1_700_000_000_000_000_000,
                latest_ns: 1_700_000_000_010_000_000,
                agreed: 0b111,
                window_ns: 2_000_000,
            },
        );
        let reading = crate::Reading {
            midpoint_ns: 1_700_000_000_005_000_000,
            radius_ns: 5_000_000,
            synced: true,
        };
        let reading_message = crate::SignedReading::message(&cluster, 2, &root, &reading);
        let signed = crate::SignedReading::sign(
            &welkin_types::PrivateKey::from_seed(2026),
            &cluster,
            2,
            root,
            reading,
        );
        let fingerprint = |bytes: &[u8]| hex::encode(hash_parts(&[bytes]));
        assert_eq!(
            [
                hex::encode(root),
                fingerprint(&message),
                fingerprint(&reading_message),
                fingerprint(&signed.encode()),
            ],
            [
                "ba8d94b7fbcecae7b81c4c80574fe24734a6917bf9c1ecd66ff3e0c34ead4620",
                "2c3649f7042ad467f20f050f45db5418ea1e53e5d8f1998ee09291f85a1ca3d1",
                "1c60ee52a377c2ec0f30e332d0b94fa6d0dea59ce3934bfa4f5f928baa16de91",
                "f907902b6d2f22e04c0cc7f9ce82604c0541ace01b987730b6796171ce83628c",
            ]
        );
    }
}

/// The media type of a clock-fault record in the audit log: its content is a [`ClockFault`].
pub const CLOCK_FAULT_MEDIA_TYPE: &str = "application/vnd.welkin.clock-fault";

/// Evidence that a node's clock disagreed with the cluster: its signed reading for a batch
/// and the batch's certificate, whose interval the reading does not overlap (after the
/// reading's latest end is moved by the certificate's collection window).
/// Anyone holding the genesis file can check it: the reading under the node's key, the
/// certificate under the cluster key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ClockFault {
    /// The faulty node's reading.
    pub reading: crate::SignedReading,
    /// The certificate of the same batch.
    pub certificate: Certificate,
}

/// Why a clock fault does not stand.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum FaultError {
    /// The reading names a node the cluster does not have.
    #[error("the reading is signed as node {0}, which is not a member")]
    UnknownNode(u32),
    /// The reading's signature is not that node's.
    #[error("the reading's signature is not node {0}'s")]
    BadReading(u32),
    /// The certificate is not the cluster's.
    #[error("the certificate's signature does not verify under the cluster key")]
    BadCertificate,
    /// The reading and the certificate are about different batches.
    #[error("the reading and the certificate are for different batches")]
    OtherBatch,
    /// The reading overlaps the certified interval: no fault.
    #[error("the reading overlaps the certified interval: no fault")]
    Agrees,
}

impl ClockFault {
    /// Checks the evidence and returns how far outside the certified interval the reading
    /// lay, in nanoseconds (positive: ahead, negative: behind).
    pub fn verify(
        &self,
        cluster_id: &Digest,
        cluster_key: &ClusterKey,
        members: &[welkin_types::PublicKey],
    ) -> Result<i64, FaultError> {
        let signer = self.reading.signer;
        let key = members
            .get(signer as usize)
            .ok_or(FaultError::UnknownNode(signer))?;
        if !self.reading.verify(cluster_id, key) {
            return Err(FaultError::BadReading(signer));
        }
        if self.reading.root != self.certificate.root {
            return Err(FaultError::OtherBatch);
        }
        if !self.certificate.verify(cluster_id, cluster_key) {
            return Err(FaultError::BadCertificate);
        }
        let reading = self.reading.reading;
        let latest = reading
            .latest_ns()
            .saturating_add(self.certificate.window_ns);
        if reading.earliest_ns() > self.certificate.latest_ns {
            let by = reading.earliest_ns() - self.certificate.latest_ns;
            Ok(i64::try_from(by).unwrap_or(i64::MAX))
        } else if latest < self.certificate.earliest_ns {
            let by = self.certificate.earliest_ns - latest;
            Ok(-i64::try_from(by).unwrap_or(i64::MAX))
        } else {
            Err(FaultError::Agrees)
        }
    }
}

impl Write for ClockFault {
    fn write(&self, buf: &mut impl BufMut) {
        CERTIFICATE_VERSION.write(buf);
        self.reading.write(buf);
        self.certificate.write(buf);
    }
}

impl EncodeSize for ClockFault {
    fn encode_size(&self) -> usize {
        1 + self.reading.encode_size() + Certificate::SIZE
    }
}

impl Read for ClockFault {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        if u8::read(buf)? != CERTIFICATE_VERSION {
            return Err(CodecError::Invalid("ClockFault", "unknown version"));
        }
        Ok(Self {
            reading: crate::SignedReading::read(buf)?,
            certificate: Certificate::read(buf)?,
        })
    }
}

#[cfg(test)]
mod fault_tests {
    use super::*;
    use commonware_codec::Encode as _;
    use commonware_cryptography::{
        Signer as _,
        bls12381::{
            dkg::feldman_desmedt::deal_anonymous,
            primitives::{ops::threshold, sharing::Mode},
        },
    };
    use commonware_utils::{N3f1, NZU32, test_rng};
    use welkin_types::{PrivateKey, hash_parts};

    #[test]
    fn a_reading_outside_the_certified_interval_is_evidence_and_one_inside_is_not() {
        let (sharing, shares) =
            deal_anonymous::<Variant, N3f1>(test_rng(), Mode::NonZeroCounter, NZU32!(4));
        let cluster = hash_parts(&[b"cluster"]);
        let root = batch_root(&[[1; 32]]);
        let (earliest, latest) = (10_000_000_000, 10_020_000_000);
        let agreement = crate::Agreement {
            earliest_ns: earliest,
            latest_ns: latest,
            agreed: 0b0111,
            window_ns: 3_000_000,
        };
        let message = Certificate::message(&cluster, &root, &agreement);
        let partials: Vec<_> = shares[..3]
            .iter()
            .map(|s| threshold::sign_message::<Variant>(s, namespace::TIME, &message))
            .collect();
        let signature =
            threshold::recover::<Variant, _>(&sharing, &partials, &commonware_parallel::Sequential)
                .expect("recovers");
        let certificate = Certificate {
            root,
            earliest_ns: earliest,
            latest_ns: latest,
            agreed: 0b0111,
            window_ns: 3_000_000,
            signature,
        };
        let keys: Vec<PrivateKey> = (0..4).map(PrivateKey::from_seed).collect();
        let members: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
        let reading = |midpoint_ns| crate::Reading {
            midpoint_ns,
            radius_ns: 5_000_000,
            synced: true,
        };
        let ahead = ClockFault {
            reading: crate::SignedReading::sign(
                &keys[3],
                &cluster,
                3,
                root,
                reading(12_000_000_000),
            ),
            certificate: certificate.clone(),
        };
        let by = ahead
            .verify(&cluster, sharing.public(), &members)
            .expect("a fault");
        assert_eq!(by, 12_000_000_000 - 5_000_000 - latest as i64);
        let decoded: ClockFault = welkin_types::decode(&ahead.encode()).expect("decodes");
        assert_eq!(decoded, ahead);

        let inside = ClockFault {
            reading: crate::SignedReading::sign(
                &keys[1],
                &cluster,
                1,
                root,
                reading(10_010_000_000),
            ),
            certificate: certificate.clone(),
        };
        assert_eq!(
            inside.verify(&cluster, sharing.public(), &members),
            Err(FaultError::Agrees)
        );
        let mut forged = ahead.clone();
        forged.reading.signer = 2;
        assert_eq!(
            forged.verify(&cluster, sharing.public(), &members),
            Err(FaultError::BadReading(2))
        );
        let mut other = ahead;
        other.certificate.latest_ns += 1;
        assert_eq!(
            other.verify(&cluster, sharing.public(), &members),
            Err(FaultError::BadCertificate)
        );
    }
}
