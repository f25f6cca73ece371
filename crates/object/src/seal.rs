//! The per-object key and segment encryption: ChaCha20-Poly1305 with the segment's index and
//! final flag in the nonce, and the layout and size in the associated data.

use crate::{Layout, hash::layout_bytes, layout::TAG_BYTES};
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
    key: aead::Key,
    /// `SEGMENT_DOMAIN || k || m || segment_bytes || size`.
    aad: [u8; SEGMENT_DOMAIN.len() + 16],
}

impl SegmentCipher {
    pub(crate) fn new(key: &ObjectKey, layout: &Layout, size: u64) -> Self {
        let mut aad = [0u8; SEGMENT_DOMAIN.len() + 16];
        aad[..SEGMENT_DOMAIN.len()].copy_from_slice(SEGMENT_DOMAIN);
        aad[SEGMENT_DOMAIN.len()..].copy_from_slice(&layout_bytes(layout, size));
        Self {
            key: aead::Key::new(&key.0),
            aad,
        }
    }

    /// Encrypts the plaintext at the start of `segment` in place and writes the 16-byte tag
    /// after it (`segment` is the plaintext's length plus the tag).
    pub(crate) fn seal(&self, index: u64, last: bool, segment: &mut [u8]) {
        let body_len = segment.len() - TAG_BYTES as usize;
        let (body, tag) = segment.split_at_mut(body_len);
        tag.copy_from_slice(&self.key.seal(&nonce(index, last), &self.aad, body));
    }

    /// Decrypts `ciphertext` (body then tag) in place; returns the plaintext's length, or
    /// `None` if it does not authenticate.
    pub(crate) fn open(&self, index: u64, last: bool, ciphertext: &mut [u8]) -> Option<usize> {
        let body_len = ciphertext.len().checked_sub(TAG_BYTES as usize)?;
        let (body, tag) = ciphertext.split_at_mut(body_len);
        let tag: &[u8; 16] = (&*tag).try_into().ok()?;
        self.key.open(&nonce(index, last), &self.aad, body, tag)?;
        Some(body_len)
    }
}

/// ChaCha20-Poly1305 (RFC 8439) from AWS-LC's assembly, as commonware-cryptography uses it on
/// these targets: about 1.7 times the RustCrypto crate's rate on AVX-512 machines.
#[cfg(any(target_arch = "x86_64", target_arch = "aarch64"))]
mod aead {
    use aws_lc_rs::aead::{Aad, CHACHA20_POLY1305, LessSafeKey, Nonce, UnboundKey};

    pub(super) struct Key(LessSafeKey);

    impl Key {
        pub(super) fn new(key: &[u8; 32]) -> Self {
            let unbound = UnboundKey::new(&CHACHA20_POLY1305, key).expect("a 32-byte key");
            Self(LessSafeKey::new(unbound))
        }

        pub(super) fn seal(&self, nonce: &[u8; 12], aad: &[u8], body: &mut [u8]) -> [u8; 16] {
            let tag = self
                .0
                .seal_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    body,
                )
                .expect("a segment is far below ChaCha20's 256 GiB limit");
            tag.as_ref().try_into().expect("a 16-byte tag")
        }

        pub(super) fn open(
            &self,
            nonce: &[u8; 12],
            aad: &[u8],
            body: &mut [u8],
            tag: &[u8; 16],
        ) -> Option<()> {
            self.0
                .open_in_place_separate_tag(
                    Nonce::assume_unique_for_key(*nonce),
                    Aad::from(aad),
                    tag,
                    body,
                )
                .ok()
                .map(|_| ())
        }
    }
}

/// ChaCha20-Poly1305 (RFC 8439) from RustCrypto elsewhere: the same bytes.
#[cfg(not(any(target_arch = "x86_64", target_arch = "aarch64")))]
mod aead {
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit as _, aead::AeadInOut as _};

    pub(super) struct Key(ChaCha20Poly1305);

    impl Key {
        pub(super) fn new(key: &[u8; 32]) -> Self {
            Self(ChaCha20Poly1305::new(key.into()))
        }

        pub(super) fn seal(&self, nonce: &[u8; 12], aad: &[u8], body: &mut [u8]) -> [u8; 16] {
            self.0
                .encrypt_inout_detached(nonce.into(), aad, body.into())
                .expect("a segment is far below ChaCha20's 256 GiB limit")
                .into()
        }

        pub(super) fn open(
            &self,
            nonce: &[u8; 12],
            aad: &[u8],
            body: &mut [u8],
            tag: &[u8; 16],
        ) -> Option<()> {
            self.0
                .decrypt_inout_detached(nonce.into(), aad, body.into(), tag.into())
                .ok()
        }
    }
}

/// The nonce of segment `index`: the index big-endian in bytes 0..8, zeros, and the final
/// flag (1 for the object's last segment, 0 otherwise) in byte 11.
fn nonce(index: u64, last: bool) -> [u8; 12] {
    let mut bytes = [0u8; 12];
    bytes[..8].copy_from_slice(&index.to_be_bytes());
    bytes[11] = u8::from(last);
    bytes
}

#[cfg(test)]
mod tests {
    use super::*;
    use chacha20poly1305::{ChaCha20Poly1305, KeyInit as _, aead::Aead as _, aead::Payload};

    #[test]
    fn segments_are_rfc_8439_chacha20_poly1305() {
        // Whichever implementation seals, RustCrypto's opens (and the reverse).
        let key = ObjectKey::from_bytes([9; 32]);
        let layout = Layout::default_for(4);
        let cipher = SegmentCipher::new(&key, &layout, 1000);
        let plaintext = b"a segment of plaintext".repeat(40);
        let mut sealed = plaintext.clone();
        sealed.extend_from_slice(&[0; 16]);
        cipher.seal(3, true, &mut sealed);
        let reference = ChaCha20Poly1305::new(key.expose().into());
        let aad = cipher.aad;
        let mut nonce = [0u8; 12];
        nonce[7] = 3;
        nonce[11] = 1;
        let payload = Payload {
            msg: &plaintext[..],
            aad: &aad[..],
        };
        assert_eq!(
            reference.encrypt(&nonce.into(), payload).expect("seals"),
            sealed
        );
        let mut opened = sealed.clone();
        assert_eq!(cipher.open(3, true, &mut opened), Some(plaintext.len()));
        assert_eq!(&opened[..plaintext.len()], &plaintext[..]);
        let mut wrong = sealed.clone();
        assert_eq!(cipher.open(3, false, &mut wrong), None);
        let mut wrong = sealed;
        assert_eq!(cipher.open(2, true, &mut wrong), None);
        assert_eq!(&aad[..24], b"welkin/object-segment/v1");
    }
}
