//! The per-object key and segment encryption: ChaCha20-Poly1305 with the segment's index and
//! final flag in the nonce, and the layout and size in the associated data.

use crate::{Layout, hash::layout_bytes, layout::TAG_BYTES};
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit as _, Nonce, Tag,
    aead::{AeadInOut as _, inout::InOutBuf},
};
use rand_core::CryptoRng;
use zeroize::{Zeroize, ZeroizeOnDrop};

/// The domain string that starts every segment's associated data.
pub const SEGMENT_DOMAIN: &[u8] = b"welkin/object-segment/v1";

/// An object's 32-byte key: encrypts every segment of one object, and nothing else.
///
/// Fresh for every object ([`ObjectKey::generate`]): nonces are segment indices, so a key
/// used for two objects would reuse them. Wiped from memory when dropped.
#[derive(Clone, Zeroize, ZeroizeOnDrop)]
pub struct ObjectKey([u8; 32]);

impl ObjectKey {
    /// A fresh key from `rng` (the caller's cryptographic generator).
    pub fn generate(rng: &mut impl CryptoRng) -> Self {
        let mut key = [0u8; 32];
        rng.fill_bytes(&mut key);
        let generated = Self(key);
        key.zeroize();
        generated
    }

    /// A key from its bytes (as unsealed from a manifest).
    pub fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, to seal it to its owner. Handle with care.
    pub fn expose(&self) -> &[u8; 32] {
        &self.0
    }
}

impl std::fmt::Debug for ObjectKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ObjectKey(..)")
    }
}

/// The cipher and associated data of one object's segments.
pub(crate) struct SegmentCipher {
    cipher: ChaCha20Poly1305,
    /// `SEGMENT_DOMAIN || k || m || segment_bytes || size`.
    aad: [u8; SEGMENT_DOMAIN.len() + 16],
}

impl SegmentCipher {
    pub(crate) fn new(key: &ObjectKey, layout: &Layout, size: u64) -> Self {
        let mut aad = [0u8; SEGMENT_DOMAIN.len() + 16];
        aad[..SEGMENT_DOMAIN.len()].copy_from_slice(SEGMENT_DOMAIN);
        aad[SEGMENT_DOMAIN.len()..].copy_from_slice(&layout_bytes(layout, size));
        Self {
            cipher: ChaCha20Poly1305::new(&key.0.into()),
            aad,
        }
    }

    /// Encrypts `plaintext` into `out` (its length plus the 16-byte tag).
    pub(crate) fn seal(&self, index: u64, last: bool, plaintext: &[u8], out: &mut [u8]) {
        let (body, tag) = out.split_at_mut(plaintext.len());
        let buffer = InOutBuf::new(plaintext, body).expect("the body has the plaintext's length");
        let sealed = self
            .cipher
            .encrypt_inout_detached(&nonce(index, last), &self.aad, buffer)
            .expect("a segment is far below ChaCha20's 256 GiB limit");
        tag.copy_from_slice(&sealed);
    }

    /// Decrypts `ciphertext` (body then tag) in place; returns the plaintext's length, or
    /// `None` if it does not authenticate.
    pub(crate) fn open(&self, index: u64, last: bool, ciphertext: &mut [u8]) -> Option<usize> {
        let body_len = ciphertext.len().checked_sub(TAG_BYTES as usize)?;
        let (body, tag) = ciphertext.split_at_mut(body_len);
        let tag = Tag::try_from(&*tag).ok()?;
        self.cipher
            .decrypt_inout_detached(&nonce(index, last), &self.aad, body.into(), &tag)
            .ok()?;
        Some(body_len)
    }
}

/// The nonce of segment `index`: the index big-endian in bytes 0..8, zeros, and the final
/// flag (1 for the object's last segment, 0 otherwise) in byte 11.
fn nonce(index: u64, last: bool) -> Nonce {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&index.to_be_bytes());
    bytes[11] = u8::from(last);
    bytes.into()
}
