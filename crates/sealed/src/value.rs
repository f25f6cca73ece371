//! The value layer both kinds of sealing share: ChaCha20-Poly1305 under a fresh 32-byte data
//! key that encrypts one value only.

use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit as _,
    aead::{Aead as _, Payload},
};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

/// The data key's length.
pub(crate) const DATA_KEY_BYTES: usize = 32;
/// The nonce's length.
pub(crate) const NONCE_BYTES: usize = 12;
/// The tag's length (ChaCha20-Poly1305's, here and inside HPKE).
pub(crate) const TAG_BYTES: usize = 16;

/// A fresh data key from `rng`.
pub(crate) fn data_key(rng: &mut impl CryptoRng) -> Zeroizing<[u8; DATA_KEY_BYTES]> {
    let mut key = Zeroizing::new([0u8; DATA_KEY_BYTES]);
    rng.fill_bytes(key.as_mut());
    key
}

/// Encrypts `plaintext` under `key` with a nonce from `rng`; returns the nonce and the
/// ciphertext (the plaintext's length plus [`TAG_BYTES`]).
pub(crate) fn encrypt(
    rng: &mut impl CryptoRng,
    key: &[u8; DATA_KEY_BYTES],
    aad: &[u8],
    plaintext: &[u8],
) -> ([u8; NONCE_BYTES], Vec<u8>) {
    let mut nonce = [0u8; NONCE_BYTES];
    rng.fill_bytes(&mut nonce);
    let ciphertext = ChaCha20Poly1305::new(key.into())
        .encrypt(
            (&nonce).into(),
            Payload {
                msg: plaintext,
                aad,
            },
        )
        .expect("encryption of a bounded plaintext cannot fail");
    (nonce, ciphertext)
}

/// Decrypts `ciphertext`; `None` if it does not open under this key, nonce and `aad`.
pub(crate) fn decrypt(
    key: &[u8; DATA_KEY_BYTES],
    nonce: &[u8; NONCE_BYTES],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    ChaCha20Poly1305::new(key.into())
        .decrypt(
            nonce.into(),
            Payload {
                msg: ciphertext,
                aad,
            },
        )
        .ok()
        .map(Zeroizing::new)
}
