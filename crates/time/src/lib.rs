//! Trusted time for Welkin: what nodes sign about their clocks and what the cluster certifies.
//!
//! A client asks for the time with a 32-byte nonce. Nodes batch the nonces of many clients
//! into one RFC 6962 Merkle tree and run one round for its root:
//!
//! 1. every node signs a [`Reading`] of its clock over the root (its midpoint, the radius it
//!    can vouch for, and whether the host is synchronised): a [`SignedReading`];
//! 2. the coordinator gathers at least `2f+1` readings, and every signer recomputes
//!    [`agree`] over them: the smallest interval containing every instant that at least
//!    `m - f` of the `m` readings support (Marzullo's algorithm tolerating `f` liars);
//! 3. a signer whose own clock agrees signs a threshold partial over the [`Certificate`]
//!    message; `t` partials recover the cluster's signature.
//!
//! Whenever at most `f` of the readings lie, every honest reading contains true time, so
//! true time is supported by at least `m - f` readings and lies in the agreed interval.
//! A client checks a [`CertifiedTime`] (the certificate plus the Merkle path of its nonce)
//! with the cluster key alone.

mod agreement;
mod certificate;
mod reading;

pub use agreement::{Agreement, MAX_WINDOW_NS, Refusal, agree};
pub use certificate::{
    CERTIFICATE_VERSION, Certificate, CertificateError, CertifiedTime, MAX_BATCH, batch_paths,
    batch_root,
};
pub use reading::{READING_VERSION, Reading, SignedReading};

/// One second in nanoseconds, the unit every time here is counted in.
pub const SECOND_NS: u64 = 1_000_000_000;
