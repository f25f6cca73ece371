//! Node registrations: what a node's operator declares about it, signed by the node's own key.
//!
//! A registration names the node, its ed25519 identity, the X25519 key to which its share of
//! the cluster key is sealed, its addresses and its failure domain. The node's ed25519 key signs
//! the registration's canonical encoding under [`namespace::REGISTRATION`], so whoever
//! assembles the node list, runs the ceremony or edits the genesis file later cannot swap a
//! node's encryption key (and receive its key share) or redirect its addresses without that
//! node's private key. Every genesis entry carries its signature, and every reader of a
//! genesis file checks all of them.
//!
//! Encoding, version [`REGISTRATION_VERSION`] (frozen by a fixture below):
//!
//! ```text
//! u8 version
//! name             varint length, UTF-8 bytes
//! public key       32 bytes (ed25519)
//! encryption key   varint length, bytes (X25519, 32)
//! p2p address      commonware-codec SocketAddr
//! api address      commonware-codec SocketAddr
//! failure domain   varint length, UTF-8 bytes
//! ```

use super::{GenesisError, NodeInfo};
use crate::{PrivateKey, PublicKey, namespace};
use commonware_codec::{Encode as _, Write as _};
use commonware_cryptography::{Signer as _, Verifier as _};
use std::net::SocketAddr;

/// The registration encoding version.
pub const REGISTRATION_VERSION: u8 = 1;

/// A node's registration before it is signed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeRegistration {
    /// An operator-chosen name, unique in the cluster.
    pub name: String,
    /// The node's ed25519 identity; its private key signs the registration.
    pub public_key: PublicKey,
    /// The node's X25519 key, to which its key share is sealed (32 bytes).
    pub encryption_key: Vec<u8>,
    /// Where peers reach the node.
    pub p2p_address: SocketAddr,
    /// Where clients reach the node's HTTP API.
    pub api_address: SocketAddr,
    /// A label for what fails together (rack, zone, host).
    pub failure_domain: String,
}

impl NodeRegistration {
    /// The bytes the node's key signs.
    pub fn message(&self) -> Vec<u8> {
        let mut message = Vec::with_capacity(256);
        REGISTRATION_VERSION.write(&mut message);
        self.name.as_bytes().to_vec().write(&mut message);
        message.extend_from_slice(&self.public_key.encode());
        self.encryption_key.write(&mut message);
        self.p2p_address.write(&mut message);
        self.api_address.write(&mut message);
        self.failure_domain.as_bytes().to_vec().write(&mut message);
        message
    }

    /// Signs the registration with the node's key, giving its genesis entry.
    ///
    /// # Panics
    /// Panics if `key` is not the private key of [`Self::public_key`]: a node registers
    /// only itself.
    pub fn sign(self, key: &PrivateKey) -> NodeInfo {
        assert_eq!(
            key.public_key(),
            self.public_key,
            "a registration is signed by the key it registers"
        );
        let signature = key.sign(namespace::REGISTRATION, &self.message());
        self.with_signature(signature)
    }

    /// The genesis entry of this registration with `signature` (unchecked: see
    /// [`NodeInfo::verify_registration`]).
    pub fn with_signature(self, signature: crate::Signature) -> NodeInfo {
        NodeInfo {
            name: self.name,
            public_key: self.public_key,
            encryption_key: self.encryption_key,
            p2p_address: self.p2p_address,
            api_address: self.api_address,
            failure_domain: self.failure_domain,
            signature,
        }
    }
}

/// Longest node name, in bytes.
pub const MAX_NAME_BYTES: usize = 64;
/// Longest failure domain, in bytes.
pub const MAX_DOMAIN_BYTES: usize = 128;

impl NodeRegistration {
    /// Decodes the bytes [`NodeRegistration::message`] makes; refuses another version,
    /// oversized fields, truncation and trailing bytes.
    pub fn from_message(bytes: &[u8]) -> Result<Self, commonware_codec::Error> {
        use bytes::{Buf as _, Bytes};
        use commonware_codec::{Error, RangeCfg, Read as _, ReadExt as _};
        let mut buf = Bytes::copy_from_slice(bytes);
        if u8::read(&mut buf)? != REGISTRATION_VERSION {
            return Err(Error::Invalid("NodeRegistration", "unknown version"));
        }
        let text = |buf: &mut Bytes, max: usize| -> Result<String, Error> {
            let cfg: RangeCfg<usize> = (1..=max).into();
            let bytes = Vec::<u8>::read_cfg(buf, &(cfg, ()))?;
            String::from_utf8(bytes).map_err(|_| Error::Invalid("NodeRegistration", "not UTF-8"))
        };
        let name = text(&mut buf, MAX_NAME_BYTES)?;
        let public_key = PublicKey::read(&mut buf)?;
        let cfg: RangeCfg<usize> = (32..=32).into();
        let encryption_key = Vec::<u8>::read_cfg(&mut buf, &(cfg, ()))?;
        let p2p_address = SocketAddr::read(&mut buf)?;
        let api_address = SocketAddr::read(&mut buf)?;
        let failure_domain = text(&mut buf, MAX_DOMAIN_BYTES)?;
        if buf.has_remaining() {
            return Err(Error::ExtraData(buf.remaining()));
        }
        Ok(Self {
            name,
            public_key,
            encryption_key,
            p2p_address,
            api_address,
            failure_domain,
        })
    }
}

impl NodeInfo {
    /// The registration this entry carries, without its signature.
    pub fn registration(&self) -> NodeRegistration {
        NodeRegistration {
            name: self.name.clone(),
            public_key: self.public_key.clone(),
            encryption_key: self.encryption_key.clone(),
            p2p_address: self.p2p_address,
            api_address: self.api_address,
            failure_domain: self.failure_domain.clone(),
        }
    }

    /// Checks that the node's own key signed exactly this entry.
    pub fn verify_registration(&self) -> Result<(), GenesisError> {
        let message = self.registration().message();
        if self
            .public_key
            .verify(namespace::REGISTRATION, &message, &self.signature)
        {
            return Ok(());
        }
        Err(GenesisError::Invalid(format!(
            "node {}: registration signature does not verify under its public key {} (the entry \
             was changed after the node signed it, or was signed by another key)",
            self.name,
            hex::encode(self.public_key.encode())
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash_parts;

    fn registration() -> (PrivateKey, NodeRegistration) {
        let key = PrivateKey::from_seed(2026);
        let registration = NodeRegistration {
            name: "node0".into(),
            public_key: key.public_key(),
            encryption_key: vec![9; 32],
            p2p_address: "10.0.0.1:8800".parse().expect("address"),
            api_address: "[2001:db8::1]:8700".parse().expect("address"),
            failure_domain: "rack-a".into(),
        };
        (key, registration)
    }

    #[test]
    fn signed_registration_verifies_and_any_change_is_refused() {
        let (key, registration) = registration();
        let entry = registration.sign(&key);
        entry.verify_registration().expect("verifies");
        let mut tampered = entry.clone();
        tampered.encryption_key[0] ^= 1;
        let error = tampered.verify_registration().expect_err("refused");
        assert!(error.to_string().contains("node node0"), "{error}");
        let mut moved = entry.clone();
        moved.api_address = "10.9.9.9:8700".parse().expect("address");
        assert!(moved.verify_registration().is_err());
        let mut renamed = entry.clone();
        renamed.name = "node1".into();
        assert!(renamed.verify_registration().is_err());
        let mut other_domain = entry.clone();
        other_domain.failure_domain = "rack-b".into();
        assert!(other_domain.verify_registration().is_err());
        let other = PrivateKey::from_seed(7);
        let mut foreign = entry;
        foreign.signature = other.sign(namespace::REGISTRATION, &foreign.registration().message());
        assert!(
            foreign.verify_registration().is_err(),
            "signed by another key"
        );
    }

    #[test]
    fn a_signature_of_another_kind_is_not_a_registration() {
        let (key, registration) = registration();
        let mut entry = registration.clone().sign(&key);
        entry.signature = key.sign(namespace::TX, &registration.message());
        assert!(entry.verify_registration().is_err());
    }

    #[test]
    #[should_panic(expected = "signed by the key it registers")]
    fn a_node_registers_only_itself() {
        let (_, registration) = registration();
        let _ = registration.sign(&PrivateKey::from_seed(1));
    }

    /// The registration encoding is what node operators sign: a change here invalidates every
    /// signed registration. Bump [`REGISTRATION_VERSION`] on purpose, then update this.
    #[test]
    fn registration_encoding_is_frozen() {
        let (key, registration) = registration();
        let message = registration.message();
        let entry = registration.sign(&key);
        assert_eq!(
            hex::encode(hash_parts(&[&message])),
            "ef94430dd80868f49e99cdc96dcb66794fb33f204f51871ba00fb630c1c7beb9"
        );
        assert_eq!(
            hex::encode(hash_parts(&[&entry.signature.encode()])),
            "be42b3bc542c166ec40f1f3c76a05126013bfb3a30bae0dfd593da7fbc8a59ad"
        );
    }
}
