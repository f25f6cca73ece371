//! Threshold Ed25519 keys with no holder: FROST (RFC 9591) key generation among the nodes,
//! robust signing coordinated by the node serving the request, and bounded wire encodings for
//! every message.
//!
//! This crate is pure: no networking, no clock, no disk, no async. Randomness arrives as an
//! argument. It wraps the Zcash Foundation's `frost-ed25519`, so signatures are standard
//! 64-byte Ed25519 signatures (RFC 8032) that any ordinary verifier accepts.
//!
//! Node `i` of the cluster (index `0..n`) is FROST identifier `i + 1`. Every public function
//! speaks in node indices ([`Index`]).
//!
//! # Key generation (DKG)
//!
//! Pedersen's distributed key generation with a proof of knowledge (FROST's KeyGen), among the
//! participants named by a [`DkgConfig`] (a set of node indices and a threshold `t`):
//!
//! 1. Each participant calls [`DkgRound1::start`]: it draws a secret polynomial of degree
//!    `t - 1` and publishes a [`Round1Package`]: commitments to the polynomial's coefficients
//!    and a Schnorr proof that it knows the constant term. The package goes into the BFT log,
//!    so every node sees the same package from each sender (broadcast consistency: a sender
//!    cannot show different commitments to different nodes). The state machine checks each
//!    package with [`check_round1`]: deterministic, no secret, it verifies the proof and that
//!    there are exactly `t` commitments, and names the sender of a bad one.
//! 2. Once every participant's package is committed, each calls [`DkgRound1::round2`] with
//!    the committed set: it gets one secret [`Round2Package`] per other participant (the
//!    value of its polynomial at the recipient's identifier), which travels over the
//!    authenticated, encrypted p2p link, never the log.
//! 3. Each calls [`DkgRound2::finish`] with the packages it received: each share is checked
//!    against its sender's committed polynomial. On success it has its [`KeyShare`] and the
//!    group's [`PublicKeys`] (the group Ed25519 key and every participant's verifying share).
//!    On failure the error names the sender whose share does not match ([`DkgError::culprit`]).
//!    The state machine can compute the same [`PublicKeys`] from the committed round-1
//!    packages alone with [`public_keys`], so the log commits a value nobody chose.
//!
//! What the caller must add: the log keeps the first round-1 package from each sender; a
//! round-2 package travels in an envelope that names its key generation, so a package from
//! another run is never checked against this one's commitments (that would blame an honest
//! sender); and the key is used only once every participant has reported finishing with the
//! same [`PublicKeys`], since one recipient can fail while the others finish.
//!
//! What it guarantees: the group secret is the sum of every participant's constant term; with
//! one honest participant, fewer than `t` participants together learn nothing about it (`t`
//! of them can sign: that is the threshold), and the proofs of knowledge stop a participant
//! from choosing its contribution as a function of the others' (a rogue key that would make
//! the group key one it alone knows). Every honest participant that finishes holds a share of the same
//! key. What it does not guarantee: completion. A participant that sends a bad share makes the
//! DKG fail with that sender named; a silent one stalls it. The caller then runs a new DKG
//! without the culprit (a new [`DkgConfig`]). A recipient could also accuse an honest sender
//! falsely: [`check_complaint`] decides a complaint deterministically from a revealed share,
//! which only settles it if the share is signed by its sender (the p2p layer's job). The
//! secret state between rounds ([`DkgRound1`], [`DkgRound2`]) is zeroized when dropped, so a
//! failed DKG leaves nothing behind.
//!
//! # Signing
//!
//! Signing is coordinated by the node serving the request, with ROAST-style retries:
//!
//! - Each signer ([`Signer`]) keeps, per coordinator, a pool of at most [`NONCE_POOL`]
//!   single-use nonces in memory and hands out their commitments ahead of time, each with an
//!   id ([`Signer::issue`], [`Commitments`]). A restart drops them all.
//! - After a sign request is committed to the log, the coordinator ([`Coordinator`]) picks `t`
//!   signers holding unused commitments and makes a [`Session`], whose [`SignRequest`] (the
//!   message and those commitments) goes to each chosen signer.
//! - A signer ([`Signer::sign`]) answers only if the message is the committed one, the
//!   commitment id is one it issued to that coordinator, and the commitment in the request is
//!   the one it issued. It removes the nonce before computing anything, so a nonce is never
//!   used twice, not even for the same message; an unknown or spent id gets
//!   [`SignError::UnknownCommitment`].
//! - The coordinator aggregates the [`SignatureShare`]s ([`Session::aggregate`]) into the
//!   standard 64-byte signature and checks it under the group key; only if that fails does it
//!   check every share, naming the signers whose shares are invalid. [`Session::verify_share`]
//!   checks one share on its own as it arrives (it costs about as much as an aggregation). A
//!   liar or a silent signer is excluded and a new session starts with other signers' fresh
//!   commitments.
//!
//! What it guarantees: fewer than `t` signers cannot make a signature; a signer never signs
//! with a nonce twice; a bad share is attributed to its signer. What it does not: that a
//! coordinator asks at all (a faulty coordinator can withhold the signature; another node
//! serves the request), or that a signer's commitments stay valid across its restart.
//!
//! # Wire encodings
//!
//! Every message that crosses the log or the network has a versioned binary encoding
//! (version byte, fixed-width big-endian integers, lengths checked against named limits), and
//! the decoders refuse truncated, oversized, wrong-version and trailing input with a precise
//! [`DecodeError`]. The sender of a message is not in its encoding: it comes from the log
//! entry's author or the authenticated link.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod coordinator;
mod dkg;
mod ident;
mod keys;
mod messages;
mod rng;
mod signer;
#[cfg(test)]
mod test_support;
mod wire;

pub use coordinator::{AggregateError, Coordinator, CoordinatorError, Session};
pub use dkg::{
    DkgConfig, DkgError, DkgRound1, DkgRound2, check_complaint, check_round1, public_keys,
};
pub use keys::{KeyShare, PublicKeys};
pub use messages::{
    Commitment, Commitments, MESSAGES_VERSION, Round1Package, Round2Package, SignRequest,
    SignatureShare,
};
pub use signer::{SignError, Signer};
pub use wire::DecodeError;

/// A node's index in the cluster (`0..n`); FROST identifier `index + 1`.
pub type Index = u16;

/// The most participants a key can have, and the bound on every node index (`0..256`).
/// Round-1 checks cost `O(n)` each and finishing a DKG `O(n * t)` point operations, and a
/// round-1 package holds `t` 32-byte commitments; 256 keeps a package under 8.3 KiB and a
/// DKG's work small, well above any cluster this project runs.
pub const MAX_PARTICIPANTS: u16 = 256;

/// The longest message that can be signed (64 KiB), a bound of this project's: the message is
/// committed to the log with the sign request and sent to every chosen signer, so it is
/// bounded like any log entry. A longer input is refused, not hashed: a pure Ed25519 signature
/// covers the message itself, and a hash of it would verify as a signature of the hash.
pub const MAX_MESSAGE_BYTES: usize = 64 * 1024;

/// The most unused nonces a signer holds for one coordinator (128). A coordinator can start
/// this many sessions per signer before it must ask for more commitments; at the transit goal
/// of 1,000 signatures per second for the whole cluster and a refill at least every 100 ms,
/// 128 is never the limit. Memory stays bounded: 128 nonces for each coordinator, about 420
/// bytes each, so about 0.5 MiB in a 10-node cluster and under 14 MiB with
/// [`MAX_PARTICIPANTS`] coordinators. Issuing past the bound drops the oldest unused nonce of
/// that coordinator.
pub const NONCE_POOL: usize = 128;

/// The length of an Ed25519 signature.
pub const SIGNATURE_BYTES: usize = 64;

/// The length of an Ed25519 public key.
pub const PUBLIC_KEY_BYTES: usize = 32;

/// Whether `signature` is a valid Ed25519 signature of `message` under `public_key` (the
/// group key of a FROST key, or any Ed25519 key): what a verifier needs, no share involved.
pub fn verify_signature(
    public_key: &[u8; PUBLIC_KEY_BYTES],
    message: &[u8],
    signature: &[u8; SIGNATURE_BYTES],
) -> bool {
    let Ok(key) = frost_ed25519::VerifyingKey::deserialize(public_key) else {
        return false;
    };
    let Ok(signature) = frost_ed25519::Signature::deserialize(signature) else {
        return false;
    };
    key.verify(message, &signature).is_ok()
}
