//! The long-term key the caller owns, and the online key this crate delegates to and renews.
//!
//! The long-term key signs a delegation (`DELE`: the online public key and the span
//! `MINT..MAXT` it may sign times in), once per version since the versions differ in units and
//! context strings. The online key signs every batch. A delegation is renewed when the time to
//! sign falls outside it or within [`RENEW_BEFORE`] of its end.

use std::time::Duration;

use ed25519_dalek::{Signer as _, SigningKey, VerifyingKey};
use rand::Rng as _;
use sha2::{Digest as _, Sha512};

use crate::{
    request::Version,
    time::{NS_PER_S, NS_PER_US, draft07_timestamp},
    wire::encode,
};

/// How long a delegation lasts unless configured otherwise.
pub const DEFAULT_VALIDITY: Duration = Duration::from_secs(24 * 3600);
/// A delegation is replaced when less than this much of it is left.
pub const RENEW_BEFORE: Duration = Duration::from_secs(3600);
/// A delegation starts this long before the time it is made for, so that a certified clock
/// that steps back a little does not force a new one.
const BACKDATE: Duration = Duration::from_secs(60);

/// A delegation validity that leaves no time between renewals.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error(
    "delegation validity of {0:?} is not more than twice the renewal margin of {RENEW_BEFORE:?}"
)]
pub struct ValidityError(pub Duration);

/// The server's keys: the long-term key and the current delegation.
pub struct Keys {
    long_term: SigningKey,
    srv: [u8; 32],
    validity_ns: u64,
    online: Option<Online>,
}

/// An online key and its delegation certificates, one per version.
pub(crate) struct Online {
    /// The key that signs responses.
    pub(crate) key: SigningKey,
    mint_ns: u64,
    maxt_ns: u64,
    /// Indexed by `Version as usize`.
    certs: [Vec<u8>; 3],
}

impl Online {
    /// The encoded `CERT` for `version`.
    pub(crate) fn cert(&self, version: Version) -> &[u8] {
        &self.certs[version as usize]
    }
}

impl Keys {
    /// Keys that delegate to online keys for [`DEFAULT_VALIDITY`] at a time.
    pub fn new(long_term: SigningKey) -> Self {
        Self::with_validity(long_term, DEFAULT_VALIDITY).expect("the default validity is valid")
    }

    /// Keys whose delegations last `validity`, which must exceed twice [`RENEW_BEFORE`].
    pub fn with_validity(long_term: SigningKey, validity: Duration) -> Result<Self, ValidityError> {
        if validity <= 2 * RENEW_BEFORE {
            return Err(ValidityError(validity));
        }
        let srv = srv_commitment(&long_term.verifying_key());
        Ok(Self {
            long_term,
            srv,
            validity_ns: u64::try_from(validity.as_nanos()).unwrap_or(u64::MAX),
            online: None,
        })
    }

    /// The long-term public key clients verify with.
    pub fn public_key(&self) -> VerifyingKey {
        self.long_term.verifying_key()
    }

    /// This server's `SRV` commitment.
    pub(crate) fn srv(&self) -> &[u8; 32] {
        &self.srv
    }

    /// The online key whose delegation covers `midpoint_ns`, renewed first if needed.
    pub(crate) fn online(&mut self, midpoint_ns: u64) -> &Online {
        let renew_ns = RENEW_BEFORE.as_nanos() as u64;
        let current = self.online.as_ref().is_some_and(|online| {
            online.mint_ns <= midpoint_ns && midpoint_ns.saturating_add(renew_ns) < online.maxt_ns
        });
        if !current {
            let mint_ns = midpoint_ns.saturating_sub(BACKDATE.as_nanos() as u64);
            let maxt_ns = mint_ns.saturating_add(self.validity_ns);
            self.online = Some(self.delegate(mint_ns, maxt_ns));
        }
        self.online.as_ref().expect("set above")
    }

    /// A fresh online key delegated for `mint_ns..=maxt_ns`.
    fn delegate(&self, mint_ns: u64, maxt_ns: u64) -> Online {
        let mut seed = [0u8; 32];
        rand::rng().fill_bytes(&mut seed);
        let key = SigningKey::from_bytes(&seed);
        let public = key.verifying_key().to_bytes();
        // In declaration order, which `cert` indexes by.
        let certs = [Version::Draft07, Version::Draft12, Version::Rfc1].map(|version| {
            // MINT rounds down and MAXT up, so any midpoint inside the span in nanoseconds
            // stays inside it once rounded to the version's unit.
            let (mint, maxt) = match version {
                Version::Draft07 => (
                    draft07_timestamp(mint_ns / NS_PER_US),
                    draft07_timestamp(maxt_ns.div_ceil(NS_PER_US)),
                ),
                Version::Draft12 | Version::Rfc1 => {
                    (mint_ns / NS_PER_S, maxt_ns.div_ceil(NS_PER_S))
                }
            };
            let dele = encode(&[
                (*b"PUBK", &public),
                (*b"MINT", &mint.to_le_bytes()),
                (*b"MAXT", &maxt.to_le_bytes()),
            ]);
            let signed = [version.delegation_context(), &dele].concat();
            let signature = self.long_term.sign(&signed).to_bytes();
            encode(&[(*b"SIG\0", &signature), (*b"DELE", &dele)])
        });
        Online {
            key,
            mint_ns,
            maxt_ns,
            certs,
        }
    }
}

/// The `SRV` value naming a long-term key: the first 32 bytes of SHA-512(0xff || key).
pub(crate) fn srv_commitment(key: &VerifyingKey) -> [u8; 32] {
    let digest = Sha512::new()
        .chain_update([0xff])
        .chain_update(key.as_bytes())
        .finalize();
    digest[..32].try_into().expect("SHA-512 has 64 bytes")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys() -> Keys {
        Keys::new(SigningKey::from_bytes(&[3; 32]))
    }

    #[test]
    fn a_delegation_is_kept_until_near_its_end() {
        let mut keys = keys();
        let start = 1_800_000_000 * NS_PER_S;
        let first = keys.online(start).key.verifying_key();
        let later = start + 12 * 3600 * NS_PER_S;
        assert_eq!(keys.online(later).key.verifying_key(), first);
        let near_end = start + 23 * 3600 * NS_PER_S;
        assert_ne!(keys.online(near_end).key.verifying_key(), first);
    }

    #[test]
    fn a_step_back_before_the_delegation_renews_it() {
        let mut keys = keys();
        let start = 1_800_000_000 * NS_PER_S;
        let first = keys.online(start).key.verifying_key();
        assert_ne!(
            keys.online(start - 3600 * NS_PER_S).key.verifying_key(),
            first
        );
    }

    #[test]
    fn validity_must_leave_room_for_renewal() {
        let key = SigningKey::from_bytes(&[3; 32]);
        assert!(Keys::with_validity(key.clone(), Duration::from_secs(7200)).is_err());
        assert!(Keys::with_validity(key, Duration::from_secs(7201)).is_ok());
    }
}
