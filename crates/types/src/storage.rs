//! Storage requests: what a transaction asks of the storage module.
//!
//! Object bytes never pass through consensus. A client encrypts and erasure-codes an object
//! itself, and commits only its [`ObjectManifest`] (sizes, layout, one Merkle root per shard
//! and the object key sealed to its owner); the nodes the state machine places the shards on
//! receive them directly from the client, check every block against the committed roots,
//! and say so with a [`StorageOp::Stored`] transaction signed by their own key. The object is
//! stored once every placed shard is acknowledged.
//!
//! ```text
//! StorageOp := 0x01 capacity_bytes u64                          Offer   (a node)
//!            | 0x02 ObjectManifest                              Put     (the owner)
//!            | 0x03 object [32] | shards (varint count, u16*)   Stored  (a placed node)
//!            | 0x04 object [32]                                 Delete  (the owner)
//!            | 0x05 CertifiedCheckpoint                         AuditSeed (a node)
//!            | 0x06 epoch u64 | verdicts (varint count, Verdict*)  AuditVerdicts (a node)
//!            | 0x07 object [32] | shards (varint count, u16*)   Lost    (a placed node)
//! Verdict := member u32 | object [32] | shard u16 | passed u8 | reason (varint len, UTF-8)
//! ObjectManifest := version u8 (1) | size u64 | k u16 | m u16 | segment_bytes u32
//!                 | roots (varint count = k+m, [32]*) | sealed_key Detachable
//!                 | label (varint len, UTF-8)
//! ```
//!
//! The sealed key is a [`Detachable`]: the log keeps only its digest, so deleting the object
//! destroys the last copy of the key (crypto-shredding) while the log stays intact.
//!
//! An object's id ([`ObjectManifest::id`]) hashes what names its bytes (version, size, layout
//! and shard roots), not the sealed key or label, so the id alone checks a manifest and every
//! block fetched under it.

use crate::{Detachable, Digest, hash_parts};
use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, RangeCfg, Read, ReadExt as _, Write, varint::UInt,
};

/// The version of the [`ObjectManifest`] encoding.
pub const MANIFEST_VERSION: u8 = 1;
/// Most shards (k + m) an object may have.
pub const MAX_SHARDS: usize = 64;
/// The smallest segment, and the unit every segment size is a multiple of (64 KiB).
pub const SEGMENT_UNIT: u32 = 64 * 1024;
/// The largest segment (4 MiB).
pub const MAX_SEGMENT_BYTES: u32 = 4 * 1024 * 1024;
/// The authentication tag each encrypted segment adds.
pub const SEGMENT_TAG_BYTES: u64 = 16;
/// Every block length is a multiple of this.
pub const BLOCK_ALIGN: u64 = 64;
/// The largest object (1 TiB).
pub const MAX_OBJECT_BYTES: u64 = 1 << 40;
/// The largest sealed object key (the owner's and recipients' envelopes together).
pub const MAX_SEALED_KEY_BYTES: usize = 4096;
/// The longest label, in bytes of UTF-8.
pub const MAX_LABEL_BYTES: usize = 256;

/// Everything the cluster records about an object's bytes; committed before any shard is
/// accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ObjectManifest {
    /// The plaintext size in bytes.
    pub size: u64,
    /// Data blocks per segment: any `k` of the `k + m` blocks rebuild it.
    pub k: u16,
    /// Parity blocks per segment.
    pub m: u16,
    /// Bytes per encrypted segment (its plaintext is 16 bytes shorter; the last segment may
    /// be shorter still).
    pub segment_bytes: u32,
    /// The Merkle root of each shard's block hashes, shard `i` at index `i`.
    pub roots: Vec<Digest>,
    /// The object key sealed to the owner and any recipients (opaque to the cluster; the
    /// client's format, see docs/storage.md), at most [`MAX_SEALED_KEY_BYTES`]. Carried
    /// beside the log and destroyed when the object is deleted.
    pub sealed_key: Detachable,
    /// A name for listings, chosen by the owner; public (it is in the log).
    pub label: String,
}

impl ObjectManifest {
    /// The object's id: a hash of its version, size, layout and shard roots.
    pub fn id(&self) -> Digest {
        let mut roots = Vec::with_capacity(self.roots.len() * 32);
        for root in &self.roots {
            roots.extend_from_slice(root.as_ref());
        }
        hash_parts(&[
            b"welkin/object-id/v1",
            &[MANIFEST_VERSION],
            &self.size.to_be_bytes(),
            &self.k.to_be_bytes(),
            &self.m.to_be_bytes(),
            &self.segment_bytes.to_be_bytes(),
            &roots,
        ])
    }

    /// Shards in all: `k + m`.
    pub fn shards(&self) -> usize {
        usize::from(self.k) + usize::from(self.m)
    }

    /// Plaintext bytes per segment: the segment size less the 16-byte tag each encrypted
    /// segment carries, so that a full segment's ciphertext is exactly `segment_bytes`.
    pub fn plaintext_per_segment(&self) -> u64 {
        u64::from(self.segment_bytes)
            .saturating_sub(SEGMENT_TAG_BYTES)
            .max(1)
    }

    /// Segments in the object: at least one (an empty object is one empty final segment).
    pub fn segments(&self) -> u64 {
        self.size.div_ceil(self.plaintext_per_segment()).max(1)
    }

    /// The length of each block of segment `segment`: the segment's ciphertext (plaintext and
    /// a 16-byte tag) split in `k`, rounded up to a multiple of 64 bytes. Only the final
    /// segment's blocks may be shorter.
    pub fn block_bytes(&self, segment: u64) -> u64 {
        let start = segment.saturating_mul(self.plaintext_per_segment());
        let plaintext = self
            .size
            .saturating_sub(start)
            .min(self.plaintext_per_segment());
        (plaintext + SEGMENT_TAG_BYTES)
            .div_ceil(u64::from(self.k.max(1)))
            .next_multiple_of(BLOCK_ALIGN)
    }

    /// The bytes one shard holds: one block of every segment.
    pub fn shard_bytes(&self) -> u64 {
        let segments = self.segments();
        (segments - 1) * self.block_bytes(0) + self.block_bytes(segments - 1)
    }

    /// Checks the layout and sizes; the decoder calls this, so a decoded manifest passes.
    pub fn check(&self) -> Result<(), &'static str> {
        if self.k == 0 {
            return Err("k must be at least 1");
        }
        if self.m == 0 {
            return Err("m must be at least 1 (an object needs a parity shard to be repaired)");
        }
        if self.shards() > MAX_SHARDS {
            return Err("k + m must be at most 64");
        }
        if self.segment_bytes < SEGMENT_UNIT
            || self.segment_bytes > MAX_SEGMENT_BYTES
            || !self.segment_bytes.is_multiple_of(SEGMENT_UNIT)
        {
            return Err("segment size must be a multiple of 64 KiB from 64 KiB to 4 MiB");
        }
        if self.size > MAX_OBJECT_BYTES {
            return Err("object larger than 1 TiB");
        }
        if self.roots.len() != self.shards() {
            return Err("one shard root is needed per shard (k + m)");
        }
        if self
            .sealed_key
            .bytes()
            .is_some_and(|key| key.is_empty() || key.len() > MAX_SEALED_KEY_BYTES)
        {
            return Err("sealed key must be 1 to 4096 bytes");
        }
        if self.label.len() > MAX_LABEL_BYTES || self.label.chars().any(char::is_control) {
            return Err("label must be at most 256 bytes without control characters");
        }
        Ok(())
    }
}

impl Write for ObjectManifest {
    fn write(&self, buf: &mut impl BufMut) {
        MANIFEST_VERSION.write(buf);
        self.size.write(buf);
        self.k.write(buf);
        self.m.write(buf);
        self.segment_bytes.write(buf);
        UInt(self.roots.len() as u64).write(buf);
        for root in &self.roots {
            root.write(buf);
        }
        self.sealed_key.write(buf);
        self.label.as_bytes().to_vec().write(buf);
    }
}

impl EncodeSize for ObjectManifest {
    fn encode_size(&self) -> usize {
        1 + 8
            + 2
            + 2
            + 4
            + UInt(self.roots.len() as u64).encode_size()
            + self.roots.len() * 32
            + self.sealed_key.encode_size()
            + self.label.as_bytes().to_vec().encode_size()
    }
}

impl Read for ObjectManifest {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != MANIFEST_VERSION {
            return Err(CodecError::Invalid(
                "ObjectManifest",
                "unknown manifest version (this node reads version 1)",
            ));
        }
        let size = u64::read(buf)?;
        let k = u16::read(buf)?;
        let m = u16::read(buf)?;
        let segment_bytes = u32::read(buf)?;
        let count = UInt::<u64>::read(buf)?.0;
        if count > MAX_SHARDS as u64 {
            return Err(CodecError::Invalid(
                "ObjectManifest",
                "more than 64 shard roots",
            ));
        }
        let roots = (0..count)
            .map(|_| Digest::read(buf))
            .collect::<Result<Vec<_>, _>>()?;
        let sealed_key = Detachable::read_cfg(buf, &MAX_SEALED_KEY_BYTES)?;
        let label = String::from_utf8(read_bytes(buf, MAX_LABEL_BYTES)?)
            .map_err(|_| CodecError::Invalid("ObjectManifest", "label is not UTF-8"))?;
        let manifest = ObjectManifest {
            size,
            k,
            m,
            segment_bytes,
            roots,
            sealed_key,
            label,
        };
        manifest
            .check()
            .map_err(|reason| CodecError::Invalid("ObjectManifest", reason))?;
        Ok(manifest)
    }
}

fn read_bytes(buf: &mut impl Buf, max: usize) -> Result<Vec<u8>, CodecError> {
    let cfg: RangeCfg<usize> = (0..=max).into();
    Vec::<u8>::read_cfg(buf, &(cfg, ()))
}

/// A storage request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StorageOp {
    /// A node offers this many bytes of shard storage (sent with the node's own key; a
    /// later offer replaces it, and may not go below what the node already holds).
    Offer {
        /// Bytes the node will hold for the cluster.
        capacity_bytes: u64,
    },
    /// Commit an object's manifest; the state machine places its shards and reserves their
    /// space. The sender owns the object.
    Put(Box<ObjectManifest>),
    /// A placed node holds these shards of `object` durably, every block checked against
    /// the manifest (sent with the node's own key).
    Stored {
        /// The object.
        object: Digest,
        /// Shard indices, each placed on the sender.
        shards: Vec<u16>,
    },
    /// Delete an object: its manifest and sealed key leave the state, its space is freed and
    /// every node removes its shards (sent by the owner).
    Delete {
        /// The object.
        object: Digest,
    },
    /// Start an audit epoch: the cluster's certified checkpoint at the epoch's height, whose
    /// threshold signature (unpredictable to any f nodes) seeds the challenges (sent by a
    /// node).
    AuditSeed(Box<crate::CertifiedCheckpoint>),
    /// A node's verdicts on the answers to the current epoch's challenges.
    AuditVerdicts {
        /// The epoch.
        epoch: u64,
        /// One verdict per audited member the sender checked.
        verdicts: Vec<Verdict>,
    },
    /// A placed node no longer has these shards of `object` (its disk was lost or replaced,
    /// or a shard failed its checks): they are marked lost at once and repaired, instead of
    /// waiting for an audit to find them one epoch at a time (sent with the node's own key).
    Lost {
        /// The object.
        object: Digest,
        /// Shard indices, each placed on the sender.
        shards: Vec<u16>,
    },
}

const TAG_OFFER: u8 = 1;
const TAG_PUT: u8 = 2;
const TAG_STORED: u8 = 3;
const TAG_DELETE: u8 = 4;
const TAG_AUDIT_SEED: u8 = 5;
const TAG_AUDIT_VERDICTS: u8 = 6;
const TAG_LOST: u8 = 7;

/// Most verdicts one [`StorageOp::AuditVerdicts`] carries (one per member).
pub const MAX_VERDICTS: usize = crate::limits::MAX_NODES;
/// The longest reason a verdict gives.
pub const MAX_VERDICT_REASON_BYTES: usize = 128;

/// One node's verdict on another node's answer to its audit challenge.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Verdict {
    /// The audited member.
    pub member: u32,
    /// The challenged object.
    pub object: Digest,
    /// The challenged shard.
    pub shard: u16,
    /// Whether its proof verified.
    pub passed: bool,
    /// Why it failed (empty when it passed).
    pub reason: String,
}

impl Write for Verdict {
    fn write(&self, buf: &mut impl BufMut) {
        self.member.write(buf);
        self.object.write(buf);
        self.shard.write(buf);
        u8::from(self.passed).write(buf);
        self.reason.as_bytes().to_vec().write(buf);
    }
}

impl EncodeSize for Verdict {
    fn encode_size(&self) -> usize {
        4 + 32 + 2 + 1 + self.reason.as_bytes().to_vec().encode_size()
    }
}

impl Read for Verdict {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let member = u32::read(buf)?;
        let object = Digest::read(buf)?;
        let shard = u16::read(buf)?;
        let passed = match u8::read(buf)? {
            0 => false,
            1 => true,
            _ => return Err(CodecError::Invalid("Verdict", "passed must be 0 or 1")),
        };
        let reason = String::from_utf8(read_bytes(buf, MAX_VERDICT_REASON_BYTES)?)
            .map_err(|_| CodecError::Invalid("Verdict", "reason is not UTF-8"))?;
        Ok(Verdict {
            member,
            object,
            shard,
            passed,
            reason,
        })
    }
}

impl StorageOp {
    /// The value this op carries beside the log: a manifest's sealed key.
    pub fn detachable(&self) -> Option<&Detachable> {
        match self {
            StorageOp::Put(manifest) => Some(&manifest.sealed_key),
            _ => None,
        }
    }

    /// The value this op carries beside the log, to attach or detach it.
    pub fn detachable_mut(&mut self) -> Option<&mut Detachable> {
        match self {
            StorageOp::Put(manifest) => Some(&mut manifest.sealed_key),
            _ => None,
        }
    }

    /// A short name for logs and JSON.
    pub fn kind(&self) -> &'static str {
        match self {
            StorageOp::Offer { .. } => "storage_offer",
            StorageOp::Put(_) => "object_put",
            StorageOp::Stored { .. } => "object_stored",
            StorageOp::Delete { .. } => "object_delete",
            StorageOp::AuditSeed(_) => "audit_seed",
            StorageOp::AuditVerdicts { .. } => "audit_verdicts",
            StorageOp::Lost { .. } => "object_lost",
        }
    }
}

impl Write for StorageOp {
    fn write(&self, buf: &mut impl BufMut) {
        match self {
            StorageOp::Offer { capacity_bytes } => {
                TAG_OFFER.write(buf);
                capacity_bytes.write(buf);
            }
            StorageOp::Put(manifest) => {
                TAG_PUT.write(buf);
                manifest.write(buf);
            }
            StorageOp::Stored { object, shards } | StorageOp::Lost { object, shards } => {
                let tag = if matches!(self, StorageOp::Stored { .. }) {
                    TAG_STORED
                } else {
                    TAG_LOST
                };
                tag.write(buf);
                object.write(buf);
                UInt(shards.len() as u64).write(buf);
                for shard in shards {
                    shard.write(buf);
                }
            }
            StorageOp::Delete { object } => {
                TAG_DELETE.write(buf);
                object.write(buf);
            }
            StorageOp::AuditSeed(checkpoint) => {
                TAG_AUDIT_SEED.write(buf);
                checkpoint.write(buf);
            }
            StorageOp::AuditVerdicts { epoch, verdicts } => {
                TAG_AUDIT_VERDICTS.write(buf);
                epoch.write(buf);
                UInt(verdicts.len() as u64).write(buf);
                for verdict in verdicts {
                    verdict.write(buf);
                }
            }
        }
    }
}

impl EncodeSize for StorageOp {
    fn encode_size(&self) -> usize {
        1 + match self {
            StorageOp::Offer { .. } => 8,
            StorageOp::Put(manifest) => manifest.encode_size(),
            StorageOp::Stored { shards, .. } | StorageOp::Lost { shards, .. } => {
                32 + UInt(shards.len() as u64).encode_size() + shards.len() * 2
            }
            StorageOp::Delete { .. } => 32,
            StorageOp::AuditSeed(checkpoint) => checkpoint.encode_size(),
            StorageOp::AuditVerdicts { verdicts, .. } => {
                8 + UInt(verdicts.len() as u64).encode_size()
                    + verdicts.iter().map(EncodeSize::encode_size).sum::<usize>()
            }
        }
    }
}

impl Read for StorageOp {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            TAG_OFFER => Ok(StorageOp::Offer {
                capacity_bytes: u64::read(buf)?,
            }),
            TAG_PUT => Ok(StorageOp::Put(Box::new(ObjectManifest::read(buf)?))),
            tag @ (TAG_STORED | TAG_LOST) => {
                let object = Digest::read(buf)?;
                let count = UInt::<u64>::read(buf)?.0;
                if count == 0 || count > MAX_SHARDS as u64 {
                    return Err(CodecError::Invalid(
                        if tag == TAG_STORED {
                            "StorageOp::Stored"
                        } else {
                            "StorageOp::Lost"
                        },
                        "1 to 64 shard indices",
                    ));
                }
                let shards = (0..count)
                    .map(|_| u16::read(buf))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(if tag == TAG_STORED {
                    StorageOp::Stored { object, shards }
                } else {
                    StorageOp::Lost { object, shards }
                })
            }
            TAG_DELETE => Ok(StorageOp::Delete {
                object: Digest::read(buf)?,
            }),
            TAG_AUDIT_SEED => Ok(StorageOp::AuditSeed(Box::new(
                crate::CertifiedCheckpoint::read(buf)?,
            ))),
            TAG_AUDIT_VERDICTS => {
                let epoch = u64::read(buf)?;
                let count = UInt::<u64>::read(buf)?.0;
                if count == 0 || count > MAX_VERDICTS as u64 {
                    return Err(CodecError::Invalid(
                        "StorageOp::AuditVerdicts",
                        "1 to 128 verdicts",
                    ));
                }
                let verdicts = (0..count)
                    .map(|_| Verdict::read(buf))
                    .collect::<Result<Vec<_>, _>>()?;
                Ok(StorageOp::AuditVerdicts { epoch, verdicts })
            }
            other => Err(CodecError::InvalidEnum(other)),
        }
    }
}

/// The HTTP header that carries a [`RequestSignature`].
pub const REQUEST_HEADER: &str = "welkin-signature";
/// How far ahead a request signature's expiry may be (5 minutes).
pub const MAX_REQUEST_TTL_MS: u64 = 5 * 60 * 1000;

/// A client's signature over one shard request: who asks, until when, for which method and
/// path, on which cluster. Sent as `welkin-signature: KEY.EXPIRY_MS.SIGNATURE` (hex, decimal,
/// hex). A node serves or accepts a shard only for the object's owner.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RequestSignature {
    /// The signer.
    pub key: crate::PublicKey,
    /// When the signature stops being accepted (ms since the epoch).
    pub expiry_ms: u64,
    /// The ed25519 signature under [`crate::namespace::OBJECT_REQUEST`].
    pub signature: crate::Signature,
}

/// Why a request signature was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum RequestSignatureError {
    /// The header is not `KEY.EXPIRY_MS.SIGNATURE`.
    #[error("malformed welkin-signature header ({0}); expected KEY.EXPIRY_MS.SIGNATURE")]
    Malformed(&'static str),
    /// The expiry has passed.
    #[error("request signature expired at {expiry_ms} ms (now {now_ms}); sign the request again")]
    Expired {
        /// The expiry.
        expiry_ms: u64,
        /// The node's clock.
        now_ms: u64,
    },
    /// The expiry is too far ahead.
    #[error("request signature expiry is more than 5 minutes ahead")]
    TooFarAhead,
    /// The signature does not verify.
    #[error("request signature does not verify for this cluster, method and path")]
    Invalid,
}

fn request_message(cluster_id: &Digest, method: &str, path: &str, expiry_ms: u64) -> Vec<u8> {
    let mut message = cluster_id.as_ref().to_vec();
    message.extend_from_slice(&expiry_ms.to_be_bytes());
    message.extend_from_slice(&(method.len() as u32).to_be_bytes());
    message.extend_from_slice(method.as_bytes());
    message.extend_from_slice(path.as_bytes());
    message
}

impl RequestSignature {
    /// Signs `method path` (the path without its query) for `cluster_id` until `expiry_ms`.
    pub fn sign(
        key: &crate::PrivateKey,
        cluster_id: &Digest,
        method: &str,
        path: &str,
        expiry_ms: u64,
    ) -> RequestSignature {
        use commonware_cryptography::Signer as _;
        let message = request_message(cluster_id, method, path, expiry_ms);
        RequestSignature {
            key: key.public_key(),
            expiry_ms,
            signature: key.sign(crate::namespace::OBJECT_REQUEST, &message),
        }
    }

    /// The header value.
    pub fn to_header(&self) -> String {
        use commonware_codec::Encode as _;
        format!(
            "{}.{}.{}",
            hex::encode(self.key.encode()),
            self.expiry_ms,
            hex::encode(self.signature.encode())
        )
    }

    /// Parses a header value.
    pub fn parse(header: &str) -> Result<RequestSignature, RequestSignatureError> {
        let mut parts = header.trim().split('.');
        let (Some(key), Some(expiry), Some(signature), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Err(RequestSignatureError::Malformed(
                "three parts separated by dots",
            ));
        };
        let key = crate::hexser::decode_hex::<crate::PublicKey>(key)
            .map_err(|_| RequestSignatureError::Malformed("the key is not 64 hex characters"))?;
        let expiry_ms = expiry
            .parse()
            .map_err(|_| RequestSignatureError::Malformed("the expiry is not a number"))?;
        let signature = crate::hexser::decode_hex::<crate::Signature>(signature).map_err(|_| {
            RequestSignatureError::Malformed("the signature is not 128 hex characters")
        })?;
        Ok(RequestSignature {
            key,
            expiry_ms,
            signature,
        })
    }

    /// Checks the signature for `method path` on `cluster_id` at `now_ms`.
    pub fn verify(
        &self,
        cluster_id: &Digest,
        method: &str,
        path: &str,
        now_ms: u64,
    ) -> Result<(), RequestSignatureError> {
        use commonware_cryptography::Verifier as _;
        if self.expiry_ms < now_ms {
            return Err(RequestSignatureError::Expired {
                expiry_ms: self.expiry_ms,
                now_ms,
            });
        }
        if self.expiry_ms > now_ms.saturating_add(MAX_REQUEST_TTL_MS) {
            return Err(RequestSignatureError::TooFarAhead);
        }
        let message = request_message(cluster_id, method, path, self.expiry_ms);
        if !self
            .key
            .verify(crate::namespace::OBJECT_REQUEST, &message, &self.signature)
        {
            return Err(RequestSignatureError::Invalid);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode;
    use commonware_codec::Encode as _;

    fn manifest() -> ObjectManifest {
        ObjectManifest {
            size: 3 * 1024 * 1024 + 5,
            k: 2,
            m: 2,
            segment_bytes: 1024 * 1024,
            roots: (0..4u8).map(|i| hash_parts(&[&[i]])).collect(),
            sealed_key: Detachable::new(vec![7; 120]),
            label: "photos/2026.tar".into(),
        }
    }

    fn every_op() -> Vec<StorageOp> {
        vec![
            StorageOp::Offer {
                capacity_bytes: 1 << 40,
            },
            StorageOp::Put(Box::new(manifest())),
            StorageOp::Stored {
                object: manifest().id(),
                shards: vec![0, 3],
            },
            StorageOp::Delete {
                object: manifest().id(),
            },
            StorageOp::AuditSeed(Box::new(
                crate::checkpoint::certified_for_tests(
                    &hash_parts(&[b"cluster"]),
                    crate::Checkpoint {
                        height: 128,
                        state_root: hash_parts(&[b"state"]),
                        log_size: 9,
                        log_root: hash_parts(&[b"log"]),
                    },
                )
                .1,
            )),
            StorageOp::AuditVerdicts {
                epoch: 2,
                verdicts: vec![
                    Verdict {
                        member: 1,
                        object: manifest().id(),
                        shard: 3,
                        passed: true,
                        reason: String::new(),
                    },
                    Verdict {
                        member: 2,
                        object: manifest().id(),
                        shard: 0,
                        passed: false,
                        reason: "sample 4: the chunk does not hash to the block".into(),
                    },
                ],
            },
        ]
    }

    /// `Lost` came after the fixture above was frozen: its own fixture leaves the older
    /// encodings provably unchanged.
    #[test]
    fn lost_op_fixture() {
        let op = StorageOp::Lost {
            object: manifest().id(),
            shards: vec![1, 2],
        };
        let bytes = op.encode();
        assert_eq!(bytes.len(), op.encode_size());
        assert_eq!(decode::<StorageOp>(&bytes).expect("decodes"), op);
        assert_eq!(
            hex::encode(&bytes),
            format!("07{}0200010002", hex::encode(manifest().id())),
            "the Lost op's encoding is frozen"
        );
        let empty = StorageOp::Lost {
            object: manifest().id(),
            shards: vec![],
        };
        assert!(decode::<StorageOp>(&empty.encode()).is_err(), "no shards");
    }

    #[test]
    fn ops_round_trip() {
        for op in every_op() {
            let bytes = op.encode();
            assert_eq!(bytes.len(), op.encode_size());
            assert_eq!(decode::<StorageOp>(&bytes).expect("decodes"), op);
        }
    }

    /// The encoding of every storage op is frozen: a change here is a wire-format change.
    #[test]
    fn encoding_fixture() {
        let mut all = Vec::new();
        for op in every_op() {
            all.extend_from_slice(&op.encode());
        }
        assert_eq!(
            hex::encode(hash_parts(&[&all])),
            "fc7ac7efa59c5138d32afaeb07d766ebec6f63fbc5965be78b9f477990d669e8",
            "storage op encoding changed: add a new op tag or manifest version, then update the fixture"
        );
        assert_eq!(
            hex::encode(manifest().id()),
            "49a02cdc3d384cc139923d16278707fa5bceb62a3a0a7f9d6ec3ca425fd535e3",
            "object ids changed: they name stored objects, so they may never change"
        );
    }

    #[test]
    fn bad_manifests_are_refused_with_a_reason() {
        type Mutation = Box<dyn Fn(&mut ObjectManifest)>;
        let cases: Vec<(Mutation, &str)> = vec![
            (Box::new(|m| m.k = 0), "k must be at least 1"),
            (Box::new(|m| m.m = 0), "m must be at least 1"),
            (Box::new(|m| m.segment_bytes = 1000), "segment size"),
            (Box::new(|m| m.segment_bytes = 8 << 20), "segment size"),
            (
                Box::new(|m| m.roots.pop().map(drop).unwrap_or(())),
                "one shard root",
            ),
            (
                Box::new(|m| m.sealed_key = Detachable::new(Vec::new())),
                "sealed key",
            ),
            (
                Box::new(|m| m.size = MAX_OBJECT_BYTES + 1),
                "larger than 1 TiB",
            ),
            (Box::new(|m| m.label = "a\nb".into()), "label"),
        ];
        for (mutate, expected) in cases {
            let mut bad = manifest();
            mutate(&mut bad);
            let error = decode::<ObjectManifest>(&bad.encode()).expect_err("refused");
            assert!(
                error.to_string().contains(expected),
                "{error} does not say {expected}"
            );
        }
        let mut unknown = manifest().encode().to_vec();
        unknown[0] = 2;
        let error = decode::<ObjectManifest>(&unknown).expect_err("refused");
        assert!(
            error.to_string().contains("unknown manifest version"),
            "{error}"
        );
    }

    #[test]
    fn shard_sizes_follow_the_layout() {
        let mut m = manifest();
        // 3 MiB and 5 bytes in segments of 1 MiB of ciphertext (1 MiB - 16 of plaintext):
        // three full segments, whose blocks are exactly 512 KiB, and 53 bytes left over.
        assert_eq!(m.segments(), 4);
        assert_eq!(m.block_bytes(0), 524_288);
        assert_eq!(m.block_bytes(3), 64);
        assert_eq!(m.shard_bytes(), 3 * 524_288 + 64);
        m.size = 0;
        assert_eq!((m.segments(), m.shard_bytes()), (1, 64));
        m.size = 2 * (1024 * 1024 - 16);
        assert_eq!((m.segments(), m.shard_bytes()), (2, 2 * 524_288));
    }

    #[test]
    fn request_signatures_bind_cluster_method_path_and_time() {
        use commonware_cryptography::Signer as _;
        let key = crate::PrivateKey::from_seed(3);
        let cluster = hash_parts(&[b"cluster"]);
        let path = "/v1/objects/ab/shards/0";
        let expiry = MAX_REQUEST_TTL_MS + 10_000;
        let signed = RequestSignature::sign(&key, &cluster, "PUT", path, expiry);
        let parsed = RequestSignature::parse(&signed.to_header()).expect("parses");
        assert_eq!(parsed, signed);
        assert_eq!(parsed.verify(&cluster, "PUT", path, expiry - 1_000), Ok(()));
        assert_eq!(
            parsed.verify(&cluster, "GET", path, expiry - 1_000),
            Err(RequestSignatureError::Invalid)
        );
        assert_eq!(
            parsed.verify(&cluster, "PUT", "/v1/objects/ab/shards/1", expiry - 1_000),
            Err(RequestSignatureError::Invalid)
        );
        assert_eq!(
            parsed.verify(&hash_parts(&[b"other"]), "PUT", path, expiry - 1_000),
            Err(RequestSignatureError::Invalid)
        );
        assert!(matches!(
            parsed.verify(&cluster, "PUT", path, expiry + 1),
            Err(RequestSignatureError::Expired { .. })
        ));
        assert_eq!(
            parsed.verify(&cluster, "PUT", path, expiry - MAX_REQUEST_TTL_MS - 1),
            Err(RequestSignatureError::TooFarAhead)
        );
        for bad in [
            "",
            "a.b",
            "zz.1.00",
            &format!("{}.x.00", hex::encode(key.public_key())),
        ] {
            assert!(matches!(
                RequestSignature::parse(bad),
                Err(RequestSignatureError::Malformed(_))
            ));
        }
    }

    #[test]
    fn the_id_names_the_bytes_not_the_envelope() {
        let mut other = manifest();
        other.sealed_key = Detachable::new(vec![8; 60]);
        other.label = "renamed".into();
        assert_eq!(other.id(), manifest().id());
        other.roots[3] = hash_parts(&[b"other"]);
        assert_ne!(other.id(), manifest().id());
    }
}
