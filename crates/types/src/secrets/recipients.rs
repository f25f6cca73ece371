//! Requests about values sealed to named recipients (KERI identifiers), besides the cluster.
//!
//! ```text
//! EncryptionKey := key [32]                                                      (tag 0x16)
//! KvSeal        := mount | path | nonce [32] | sealed Detachable | cas (option u64)
//!                  | recipients | envelope (varint len)                          (tag 0x17)
//! KvOpen        := mount | path | version u64 | reader [32]                      (tag 0x18)
//! KvReseal      := mount | path | version u64 | recipients                       (tag 0x19)
//! recipients    := varint count (1..=64) | prefix*       (qb64 strings, sorted and unique)
//! ```
//!
//! `KvSeal` carries the value twice: sealed to the cluster key exactly as `KvWrite` carries
//! it, and sealed to the recipients' registered X25519 keys (welkin-sealed's
//! `RecipientSealed` encoding) in `envelope`, whose keys are in the order of `recipients`.

use super::{MAX_SEALED_BYTES, read_bytes, read_mount_path, read_str, str_size, write_str};
use bytes::BufMut;
use commonware_codec::{Buf, EncodeSize, Error as CodecError, Read, ReadExt, Write};

/// The most recipients one value is sealed to (welkin-sealed's limit for one envelope).
pub const MAX_RECIPIENTS: usize = 64;
/// Largest recipient envelope a seal may carry, in bytes (the transaction limit bounds the
/// envelope and the cluster-sealed copy together).
pub const MAX_ENVELOPE_BYTES: usize = MAX_SEALED_BYTES;

/// Write a new KV v2 version sealed both to the cluster key and to named identifiers
/// (`welkin kv seal --to`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvSeal {
    /// The KV v2 mount.
    pub mount: String,
    /// The secret's path below the mount.
    pub path: String,
    /// The random nonce that, with mount and path, names the value's target.
    pub nonce: [u8; 32],
    /// The value sealed to the cluster key under that target, as in `KvWrite` (detachable,
    /// so destroying the version shreds it).
    pub sealed: crate::Detachable,
    /// Check-and-set, as in `KvWrite`.
    pub cas: Option<u64>,
    /// The recipients' identifiers (qb64 prefixes), sorted and unique.
    pub recipients: Vec<String>,
    /// The same value sealed to the recipients' registered X25519 keys, in the order of
    /// `recipients` (welkin-sealed `RecipientSealed` encoding, the target as associated
    /// data).
    pub envelope: Vec<u8>,
}

/// Change which identifiers may open a recipient-sealed version through the cluster.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KvReseal {
    /// The KV v2 mount.
    pub mount: String,
    /// The secret's path below the mount.
    pub path: String,
    /// The version (not 0: re-sealing names the version it changes).
    pub version: u64,
    /// The new recipients (qb64 prefixes), sorted and unique.
    pub recipients: Vec<String>,
}

pub(super) fn write_recipients(recipients: &[String], buf: &mut impl BufMut) {
    commonware_codec::varint::UInt(recipients.len() as u32).write(buf);
    for prefix in recipients {
        write_str(prefix, buf);
    }
}

/// Reads 1 to [`MAX_RECIPIENTS`] sorted, unique prefixes, so one list has one encoding.
pub(super) fn read_recipients(buf: &mut impl Buf) -> Result<Vec<String>, CodecError> {
    let count = commonware_codec::varint::UInt::<u32>::read(buf)?.0 as usize;
    if count == 0 || count > MAX_RECIPIENTS {
        return Err(CodecError::InvalidLength(count));
    }
    let mut recipients: Vec<String> = Vec::with_capacity(count);
    for _ in 0..count {
        let prefix = read_str(buf, crate::MAX_PREFIX_BYTES, "recipient")?;
        if recipients.last().is_some_and(|last| *last >= prefix) {
            return Err(CodecError::Invalid("recipients", "not sorted and unique"));
        }
        recipients.push(prefix);
    }
    Ok(recipients)
}

impl Write for KvSeal {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.mount, buf);
        write_str(&self.path, buf);
        self.nonce.write(buf);
        self.sealed.write(buf);
        self.cas.write(buf);
        write_recipients(&self.recipients, buf);
        self.envelope.write(buf);
    }
}

impl EncodeSize for KvSeal {
    fn encode_size(&self) -> usize {
        str_size(&self.mount)
            + str_size(&self.path)
            + 32
            + self.sealed.encode_size()
            + self.cas.encode_size()
            + recipients_size(&self.recipients)
            + self.envelope.encode_size()
    }
}

impl Read for KvSeal {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let (mount, path) = read_mount_path(buf)?;
        Ok(KvSeal {
            mount,
            path,
            nonce: <[u8; 32]>::read(buf)?,
            sealed: crate::Detachable::read_cfg(buf, &MAX_SEALED_BYTES)?,
            cas: Option::<u64>::read(buf)?,
            recipients: read_recipients(buf)?,
            envelope: read_bytes(buf, MAX_ENVELOPE_BYTES)?,
        })
    }
}

impl Write for KvReseal {
    fn write(&self, buf: &mut impl BufMut) {
        write_str(&self.mount, buf);
        write_str(&self.path, buf);
        self.version.write(buf);
        write_recipients(&self.recipients, buf);
    }
}

impl EncodeSize for KvReseal {
    fn encode_size(&self) -> usize {
        str_size(&self.mount) + str_size(&self.path) + 8 + recipients_size(&self.recipients)
    }
}

impl Read for KvReseal {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let (mount, path) = read_mount_path(buf)?;
        Ok(KvReseal {
            mount,
            path,
            version: u64::read(buf)?,
            recipients: read_recipients(buf)?,
        })
    }
}

fn recipients_size(recipients: &[String]) -> usize {
    commonware_codec::varint::UInt(recipients.len() as u32).encode_size()
        + recipients.iter().map(|p| str_size(p)).sum::<usize>()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::{decode, hash_parts, secrets::SecretsOp};
    use commonware_codec::Encode as _;

    const ALICE: &str = "EKYLUMmNPZeEs77Zvclf0bSN5IN-mLfLpx2ySb-HDlk4";
    const BOB: &str = "ELq1pTiBq0bO4b4mKz0EkGQBwfV3n8TwLx6ZNnDnvvXE";

    /// One of every recipient op.
    pub(crate) fn every_op() -> Vec<SecretsOp> {
        vec![
            SecretsOp::EncryptionKey { key: [4; 32] },
            SecretsOp::KvSeal(KvSeal {
                mount: "secret".into(),
                path: "app/db".into(),
                nonce: [7; 32],
                sealed: crate::Detachable::new(vec![1, 2, 3]),
                cas: Some(1),
                recipients: vec![ALICE.into(), BOB.into()],
                envelope: vec![5, 6],
            }),
            SecretsOp::KvOpen {
                mount: "secret".into(),
                path: "app/db".into(),
                version: 2,
                reader: [9; 32],
            },
            SecretsOp::KvReseal(KvReseal {
                mount: "secret".into(),
                path: "app/db".into(),
                version: 2,
                recipients: vec![BOB.into()],
            }),
        ]
    }

    #[test]
    fn recipient_ops_round_trip() {
        for op in every_op() {
            let bytes = op.encode();
            assert_eq!(bytes.len(), op.encode_size(), "{}", op.kind());
            assert_eq!(
                decode::<SecretsOp>(&bytes).ok(),
                Some(op.clone()),
                "{}",
                op.kind()
            );
        }
    }

    #[test]
    fn recipient_lists_must_be_sorted_unique_and_bounded() {
        let reseal = |recipients: Vec<String>| {
            SecretsOp::KvReseal(KvReseal {
                mount: "secret".into(),
                path: "a".into(),
                version: 1,
                recipients,
            })
            .encode()
        };
        assert!(decode::<SecretsOp>(&reseal(vec![BOB.into(), ALICE.into()])).is_err());
        assert!(decode::<SecretsOp>(&reseal(vec![ALICE.into(), ALICE.into()])).is_err());
        assert!(decode::<SecretsOp>(&reseal(vec![])).is_err());
        let many = (0..=MAX_RECIPIENTS).map(|i| format!("E{i:04}")).collect();
        assert!(decode::<SecretsOp>(&reseal(many)).is_err());
    }

    /// The encoding of the recipient ops is frozen: a change here is a wire-format change.
    #[test]
    fn recipient_ops_encoding_fixture() {
        let all: Vec<u8> = every_op()
            .iter()
            .flat_map(|op| op.encode().to_vec())
            .collect();
        assert_eq!(
            hex::encode(hash_parts(&[&all])),
            "2b350c4d2a61029e24f5a9f93de489d66e47e6a6ecb0e13510a9b16c76f2511c",
            "recipient op encoding changed: add a new op tag, then update the fixture"
        );
    }
}
