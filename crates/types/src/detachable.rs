//! Bytes that the chain commits to by digest only, so that nodes can destroy them.
//!
//! A secret's ciphertext must be destroyable (crypto-shredding): once a version is destroyed,
//! no node may keep bytes that, with a threshold of shares, would open it. Transactions,
//! blocks and audit log entries are kept forever, so they cannot hold those bytes. A
//! [`Detachable`] is carried whole while a transaction travels to the cluster (mempool,
//! proposal, block broadcast), but every id, signature, block digest and log leaf covers only
//! its digest. A node stores the bytes beside its block archive and can drop them: the
//! transaction, its block and its log entry stay valid, verifiable and byte-for-byte the same
//! in their committed form.
//!
//! ```text
//! Detachable := 0x00 digest [32]                     detached: the digest only
//!             | 0x01 len (varint) | bytes [len]       attached: the digest is computed
//! digest     = SHA-256("welkin/detachable/v1" | bytes)
//! ```

use crate::{Digest, hash_parts};
use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt as _, Write, varint::UInt,
};

const TAG_DETACHED: u8 = 0x00;
const TAG_ATTACHED: u8 = 0x01;
const NAMESPACE: &[u8] = b"welkin/detachable/v1";

/// Bytes committed to by digest, present (attached) or dropped (detached).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Detachable {
    digest: Digest,
    bytes: Option<Vec<u8>>,
}

impl Detachable {
    /// Attached bytes.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self {
            digest: Self::digest_of(&bytes),
            bytes: Some(bytes),
        }
    }

    /// Only the digest: bytes that were dropped, or that travel elsewhere.
    pub fn detached(digest: Digest) -> Self {
        Self {
            digest,
            bytes: None,
        }
    }

    /// The digest of `bytes` as a [`Detachable`] commits to them.
    pub fn digest_of(bytes: &[u8]) -> Digest {
        hash_parts(&[NAMESPACE, bytes])
    }

    /// The digest the chain commits to.
    pub fn digest(&self) -> Digest {
        self.digest
    }

    /// The bytes, if attached.
    pub fn bytes(&self) -> Option<&[u8]> {
        self.bytes.as_deref()
    }

    /// Whether the bytes are attached.
    pub fn is_attached(&self) -> bool {
        self.bytes.is_some()
    }

    /// The same value with its bytes dropped.
    pub fn detach(&self) -> Self {
        Self::detached(self.digest)
    }

    /// Attaches `bytes` if they are the ones committed to; returns whether they were.
    pub fn attach(&mut self, bytes: Vec<u8>) -> bool {
        if Self::digest_of(&bytes) != self.digest {
            return false;
        }
        self.bytes = Some(bytes);
        true
    }
}

impl Write for Detachable {
    fn write(&self, buf: &mut impl BufMut) {
        match &self.bytes {
            None => {
                TAG_DETACHED.write(buf);
                self.digest.write(buf);
            }
            Some(bytes) => {
                TAG_ATTACHED.write(buf);
                UInt(bytes.len() as u32).write(buf);
                buf.put_slice(bytes);
            }
        }
    }
}

impl EncodeSize for Detachable {
    fn encode_size(&self) -> usize {
        1 + match &self.bytes {
            None => Digest::SIZE,
            Some(bytes) => UInt(bytes.len() as u32).encode_size() + bytes.len(),
        }
    }
}

impl Read for Detachable {
    /// The most bytes an attached value may hold.
    type Cfg = usize;

    fn read_cfg(buf: &mut impl Buf, max: &usize) -> Result<Self, CodecError> {
        match u8::read(buf)? {
            TAG_DETACHED => Ok(Self::detached(Digest::read(buf)?)),
            TAG_ATTACHED => {
                let len: u32 = UInt::read(buf)?.into();
                let len = len as usize;
                if len > *max {
                    return Err(CodecError::InvalidLength(len));
                }
                if buf.remaining() < len {
                    return Err(CodecError::EndOfBuffer);
                }
                let mut bytes = vec![0u8; len];
                buf.copy_to_slice(&mut bytes);
                Ok(Self::new(bytes))
            }
            tag => Err(CodecError::InvalidEnum(tag)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_codec::{Decode as _, Encode as _};

    #[test]
    fn attached_and_detached_round_trip_with_one_digest() {
        let attached = Detachable::new(b"ciphertext".to_vec());
        let decoded = Detachable::decode_cfg(attached.encode(), &64).expect("decodes");
        assert_eq!(decoded, attached);
        let detached = attached.detach();
        assert!(!detached.is_attached());
        assert_eq!(detached.digest(), attached.digest());
        let decoded = Detachable::decode_cfg(detached.encode(), &64).expect("decodes");
        assert_eq!(decoded, detached);
    }

    #[test]
    fn only_the_committed_bytes_attach() {
        let mut detached = Detachable::new(b"the value".to_vec()).detach();
        assert!(!detached.attach(b"another value".to_vec()));
        assert!(!detached.is_attached());
        assert!(detached.attach(b"the value".to_vec()));
        assert_eq!(detached.bytes(), Some(&b"the value"[..]));
    }

    #[test]
    fn oversized_and_unknown_encodings_are_refused() {
        let attached = Detachable::new(vec![7; 65]);
        assert!(matches!(
            Detachable::decode_cfg(attached.encode(), &64),
            Err(CodecError::InvalidLength(65))
        ));
        assert!(matches!(
            Detachable::decode_cfg(bytes::Bytes::from_static(&[0x02]), &64),
            Err(CodecError::InvalidEnum(2))
        ));
    }

    #[test]
    fn encoding_fixture() {
        let attached = Detachable::new(vec![1, 2, 3]);
        assert_eq!(hex::encode(attached.encode()), "0103010203");
        assert_eq!(
            hex::encode(attached.detach().encode()),
            format!("00{}", hex::encode(attached.digest())),
            "detachable encoding changed: add a new tag instead"
        );
        assert_eq!(
            hex::encode(attached.digest()),
            "f7f8a1285e584166acdaf0a0e218bca64fc52d5dcf1ed6ef806ce6217b9fe466"
        );
    }
}
