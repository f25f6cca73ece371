//! The one HPKE suite (RFC 9180, base mode) every envelope in this crate uses:
//! DHKEM(X25519, HKDF-SHA256), HKDF-SHA256 and ChaCha20-Poly1305.
//!
//! Base mode authenticates nothing about the sender: anyone who knows a public key can seal
//! to it. What an envelope carries is checked after it opens (a partial against its sender's
//! share commitment; a value against the log entry that stored it).

use hpke::{
    Deserializable as _, Kem as _, OpModeR, OpModeS, Serializable as _, aead::ChaCha20Poly1305,
    kdf::HkdfSha256, kem::X25519HkdfSha256,
};
use rand_core::CryptoRng;
use zeroize::Zeroizing;

type Kem = X25519HkdfSha256;

/// An X25519 secret key; the X25519 secret inside is zeroized when it is dropped.
pub(crate) type SecretKey = <Kem as hpke::Kem>::PrivateKey;

/// The length of an X25519 public key and of an encapsulated key.
pub(crate) const KEY_BYTES: usize = 32;

/// A fresh secret key from `rng`.
pub(crate) fn generate(rng: &mut impl CryptoRng) -> SecretKey {
    Kem::gen_keypair_with_rng(rng).0
}

/// The secret key held in `bytes` (clamped as X25519 requires, so any 32 bytes are a key and
/// `x25519-dalek`'s `StaticSecret::to_bytes` gives the same key).
pub(crate) fn secret_from_bytes(bytes: &[u8; KEY_BYTES]) -> SecretKey {
    SecretKey::from_bytes(bytes).expect("an X25519 secret key is any 32 bytes")
}

/// The public key of `secret`.
pub(crate) fn public(secret: &SecretKey) -> [u8; KEY_BYTES] {
    Kem::sk_to_pk(secret).to_bytes().into()
}

/// Seals `plaintext` to `recipient`; returns the encapsulated key and the ciphertext (the
/// plaintext's length plus [`TAG_BYTES`](crate::value::TAG_BYTES)). `None` if `recipient` is a low-order point, with
/// which no shared secret exists.
pub(crate) fn seal(
    rng: &mut impl CryptoRng,
    recipient: &[u8; KEY_BYTES],
    info: &[u8],
    aad: &[u8],
    plaintext: &[u8],
) -> Option<([u8; KEY_BYTES], Vec<u8>)> {
    let recipient =
        <Kem as hpke::Kem>::PublicKey::from_bytes(recipient).expect("a public key is 32 bytes");
    let (encapped, ciphertext) =
        hpke::single_shot_seal_with_rng::<ChaCha20Poly1305, HkdfSha256, Kem>(
            &OpModeS::Base,
            &recipient,
            info,
            plaintext,
            aad,
            rng,
        )
        .ok()?;
    Some((encapped.to_bytes().into(), ciphertext))
}

/// Opens `ciphertext` sealed to `secret` under `info` and `aad`. `None` if it does not open:
/// another key, another `info` or `aad`, or altered bytes (HPKE cannot tell these apart).
pub(crate) fn open(
    secret: &SecretKey,
    encapped: &[u8; KEY_BYTES],
    info: &[u8],
    aad: &[u8],
    ciphertext: &[u8],
) -> Option<Zeroizing<Vec<u8>>> {
    let encapped = <Kem as hpke::Kem>::EncappedKey::from_bytes(encapped)
        .expect("an encapsulated X25519 key is 32 bytes");
    hpke::single_shot_open::<ChaCha20Poly1305, HkdfSha256, Kem>(
        &OpModeR::Base,
        secret,
        &encapped,
        info,
        ciphertext,
        aad,
    )
    .ok()
    .map(Zeroizing::new)
}

#[cfg(test)]
mod tests {
    //! RFC 9180, appendix A.2.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, ChaCha20Poly1305,
    //! base mode, first message (sequence number 0).

    use super::*;
    use rand_core::{TryCryptoRng, TryRng};
    use std::convert::Infallible;

    fn bytes<const N: usize>(text: &str) -> [u8; N] {
        hex::decode(text).expect("hex").try_into().expect("length")
    }

    const IKM_E: &str = "909a9b35d3dc4713a5e72a4da274b55d3d3821a37e5d099e74a647db583a904b";
    const SK_R: &str = "8057991eef8f1f1af18f4a9491d16a1ce333f695d4db8e38da75975c4478e0fb";
    const PK_R: &str = "4310ee97d88cc1f088a5576c77ab0cf5c3ac797f3d95139c6c84b5429c59662a";
    const ENC: &str = "1afa08d3dec047a643885163f1180476fa7ddb54c6a8029ea33f95796bf2ac4a";
    const INFO: &[u8] = b"Ode on a Grecian Urn";
    const AAD: &[u8] = b"Count-0";
    const PT: &[u8] = b"Beauty is truth, truth beauty";
    const CT: &str = "1c5250d8034ec2b784ba2cfd69dbdb8af406cfe3ff938e131f0def8c8b60b4db\
                      21993c62ce81883d2dd1b51a28";

    /// Yields the vector's ephemeral keying material, so that sealing is deterministic.
    struct Replay(Vec<u8>);

    impl TryRng for Replay {
        type Error = Infallible;

        fn try_next_u32(&mut self) -> Result<u32, Infallible> {
            unreachable!("the KEM asks for bytes")
        }

        fn try_next_u64(&mut self) -> Result<u64, Infallible> {
            unreachable!("the KEM asks for bytes")
        }

        fn try_fill_bytes(&mut self, dest: &mut [u8]) -> Result<(), Infallible> {
            dest.copy_from_slice(&self.0.drain(..dest.len()).collect::<Vec<_>>());
            Ok(())
        }
    }

    impl TryCryptoRng for Replay {}

    #[test]
    fn sealing_gives_the_rfc_9180_vector() {
        let mut rng = Replay(hex::decode(IKM_E).expect("hex"));
        let (encapped, ciphertext) = seal(&mut rng, &bytes(PK_R), INFO, AAD, PT).expect("seals");
        assert_eq!(hex::encode(encapped), ENC);
        assert_eq!(hex::encode(ciphertext), CT);
    }

    #[test]
    fn opening_the_rfc_9180_vector_gives_its_plaintext() {
        let secret = secret_from_bytes(&bytes(SK_R));
        assert_eq!(hex::encode(public(&secret)), PK_R);
        let ciphertext = hex::decode(CT).expect("hex");
        let opened = open(&secret, &bytes(ENC), INFO, AAD, &ciphertext).expect("opens");
        assert_eq!(opened.as_slice(), PT);
        assert!(open(&secret, &bytes(ENC), b"another info", AAD, &ciphertext).is_none());
    }
}
