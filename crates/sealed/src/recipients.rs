//! Values sealed to named recipients' X25519 keys.
//!
//! A fresh 32-byte data key encrypts the value once (ChaCha20-Poly1305); the data key is
//! sealed with HPKE to each recipient's public key (a 112-byte wrap each). Both layers bind
//! the same associated data: the digest of the namespace
//! [`welkin_types::namespace::RECIPIENTS`], the caller's `aad` (for example mount, path and
//! version) and the recipient list, so a value moved to another name, or whose list had a
//! recipient added, removed or swapped, does not open. The list of public keys is stored in
//! the clear: each recipient finds its wrap without trying them all, and re-sealing knows to
//! whom the value was sealed; who may read a value is not a secret here.
//!
//! ```text
//! sealed = version (1) | varint count (1..=64) | count × (public key (32)
//!          | encapsulated key (32) | HPKE ciphertext of the data key (48))
//!          | nonce (12) | varint length | AEAD ciphertext of the value
//! ```

use crate::{
    MAX_PLAINTEXT_BYTES,
    suite::{self, KEY_BYTES},
    value::{self, DATA_KEY_BYTES, NONCE_BYTES, TAG_BYTES},
};
use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, FixedSize, Read, ReadExt as _, Write,
};
use rand_core::CryptoRng;
use std::collections::BTreeSet;
use welkin_types::{Digest, hash_parts, namespace};
use zeroize::Zeroizing;

/// The version of the [`RecipientSealed`] encoding.
pub const RECIPIENTS_VERSION: u8 = 1;
/// The most recipients one value is sealed to (the secrets requests' limit too).
pub const MAX_RECIPIENTS: usize = welkin_types::secrets::MAX_RECIPIENTS;

/// A value only its recipients can open: what state stores.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RecipientSealed {
    wraps: Vec<Wrap>,
    nonce: [u8; NONCE_BYTES],
    ciphertext: Vec<u8>,
}

impl RecipientSealed {
    /// The recipients' public keys, in the order they were given.
    pub fn recipients(&self) -> impl Iterator<Item = &[u8; KEY_BYTES]> {
        self.wraps.iter().map(|wrap| &wrap.recipient)
    }
}

/// The data key sealed to one recipient.
#[derive(Clone, Debug, PartialEq, Eq)]
struct Wrap {
    recipient: [u8; KEY_BYTES],
    encapped: [u8; KEY_BYTES],
    key: [u8; DATA_KEY_BYTES + TAG_BYTES],
}

/// Why a value could not be sealed to recipients or opened by one.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum RecipientError {
    /// No recipients were named.
    #[error("no recipients: a value sealed to nobody could never be opened")]
    NoRecipients,
    /// Over [`MAX_RECIPIENTS`] were named.
    #[error("{0} recipients is over the limit of {MAX_RECIPIENTS}")]
    TooManyRecipients(usize),
    /// A recipient was named twice.
    #[error("recipient {0} is named twice")]
    DuplicateRecipient(String),
    /// A recipient's public key is a low-order point: no shared secret exists with it.
    #[error("recipient key {0} is not a usable x25519 public key")]
    InvalidRecipientKey(String),
    /// The plaintext is over [`MAX_PLAINTEXT_BYTES`].
    #[error("value of {0} bytes is over the {MAX_PLAINTEXT_BYTES}-byte limit")]
    TooLarge(usize),
    /// The key opening it is not among the recipients.
    #[error("key {0} is not a recipient of this value")]
    NotARecipient(String),
    /// It does not open for this recipient: other associated data, or altered.
    #[error("the value does not open: other associated data, or altered")]
    DoesNotOpen,
}

/// The associated data both layers bind: namespace, the caller's `aad` and the recipients.
fn binding<'a>(aad: &[u8], recipients: impl Iterator<Item = &'a [u8; KEY_BYTES]>) -> Digest {
    let mut parts: Vec<&[u8]> = vec![namespace::RECIPIENTS, aad];
    parts.extend(recipients.map(|key| key.as_slice()));
    hash_parts(&parts)
}

/// Seals `plaintext` so that only the holders of the secret keys of `recipients` (X25519
/// public keys) can open it, under the associated data `aad`.
pub fn seal_to_recipients(
    rng: &mut impl CryptoRng,
    recipients: &[[u8; KEY_BYTES]],
    aad: &[u8],
    plaintext: &[u8],
) -> Result<RecipientSealed, RecipientError> {
    if recipients.is_empty() {
        return Err(RecipientError::NoRecipients);
    }
    if recipients.len() > MAX_RECIPIENTS {
        return Err(RecipientError::TooManyRecipients(recipients.len()));
    }
    let mut seen = BTreeSet::new();
    if let Some(twice) = recipients.iter().find(|key| !seen.insert(*key)) {
        return Err(RecipientError::DuplicateRecipient(hex::encode(twice)));
    }
    if plaintext.len() > MAX_PLAINTEXT_BYTES {
        return Err(RecipientError::TooLarge(plaintext.len()));
    }
    let bound = binding(aad, recipients.iter());
    let data_key = value::data_key(rng);
    let mut wraps = Vec::with_capacity(recipients.len());
    for recipient in recipients {
        let (encapped, key) = suite::seal(
            rng,
            recipient,
            namespace::RECIPIENTS,
            bound.as_ref(),
            data_key.as_ref(),
        )
        .ok_or_else(|| RecipientError::InvalidRecipientKey(hex::encode(recipient)))?;
        wraps.push(Wrap {
            recipient: *recipient,
            encapped,
            key: key
                .try_into()
                .expect("a sealed data key is the key and a tag"),
        });
    }
    let (nonce, ciphertext) = value::encrypt(rng, &data_key, bound.as_ref(), plaintext);
    Ok(RecipientSealed {
        wraps,
        nonce,
        ciphertext,
    })
}

/// The X25519 public key of a recipient's secret key (any 32 bytes are one, as
/// [`open_as_recipient`] takes it): what the recipient registers for values sealed to it.
pub fn recipient_public_key(secret: &[u8; KEY_BYTES]) -> [u8; KEY_BYTES] {
    suite::public(&suite::secret_from_bytes(secret))
}

/// Opens `sealed` with a recipient's X25519 secret key (32 bytes, as
/// `x25519_dalek::StaticSecret::to_bytes` gives them) under the associated data `aad`.
pub fn open_as_recipient(
    secret: &[u8; KEY_BYTES],
    aad: &[u8],
    sealed: &RecipientSealed,
) -> Result<Zeroizing<Vec<u8>>, RecipientError> {
    let secret = suite::secret_from_bytes(secret);
    let public = suite::public(&secret);
    let wrap = sealed
        .wraps
        .iter()
        .find(|wrap| wrap.recipient == public)
        .ok_or_else(|| RecipientError::NotARecipient(hex::encode(public)))?;
    let bound = binding(aad, sealed.recipients());
    let data_key = suite::open(
        &secret,
        &wrap.encapped,
        namespace::RECIPIENTS,
        bound.as_ref(),
        &wrap.key,
    )
    .ok_or(RecipientError::DoesNotOpen)?;
    let data_key = Zeroizing::new(
        <[u8; DATA_KEY_BYTES]>::try_from(data_key.as_slice())
            .expect("a wrap of fixed length holds a key of fixed length"),
    );
    value::decrypt(&data_key, &sealed.nonce, bound.as_ref(), &sealed.ciphertext)
        .ok_or(RecipientError::DoesNotOpen)
}

impl Write for Wrap {
    fn write(&self, buf: &mut impl BufMut) {
        self.recipient.write(buf);
        self.encapped.write(buf);
        self.key.write(buf);
    }
}

impl FixedSize for Wrap {
    const SIZE: usize = KEY_BYTES + KEY_BYTES + DATA_KEY_BYTES + TAG_BYTES;
}

impl Read for Wrap {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        Ok(Self {
            recipient: <[u8; KEY_BYTES]>::read(buf)?,
            encapped: <[u8; KEY_BYTES]>::read(buf)?,
            key: <[u8; DATA_KEY_BYTES + TAG_BYTES]>::read(buf)?,
        })
    }
}

impl Write for RecipientSealed {
    fn write(&self, buf: &mut impl BufMut) {
        RECIPIENTS_VERSION.write(buf);
        self.wraps.write(buf);
        self.nonce.write(buf);
        self.ciphertext.write(buf);
    }
}

impl EncodeSize for RecipientSealed {
    fn encode_size(&self) -> usize {
        1 + self.wraps.encode_size() + NONCE_BYTES + self.ciphertext.encode_size()
    }
}

impl Read for RecipientSealed {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != RECIPIENTS_VERSION {
            return Err(CodecError::InvalidEnum(version));
        }
        let wraps = Vec::<Wrap>::read_cfg(buf, &((1..=MAX_RECIPIENTS).into(), ()))?;
        let mut seen = BTreeSet::new();
        if !wraps.iter().all(|wrap| seen.insert(wrap.recipient)) {
            return Err(CodecError::Invalid(
                "RecipientSealed",
                "duplicate recipient",
            ));
        }
        Ok(Self {
            wraps,
            nonce: <[u8; NONCE_BYTES]>::read(buf)?,
            ciphertext: Vec::<u8>::read_cfg(
                buf,
                &((TAG_BYTES..=MAX_PLAINTEXT_BYTES + TAG_BYTES).into(), ()),
            )?,
        })
    }
}

#[cfg(test)]
mod tests;
