//! Roughtime over UDP: a batching server for draft-07 and RFC 10049 clients, and a verifier.
//!
//! Roughtime gives a client the time signed by a server it knows the long-term key of, with
//! the client's nonce inside the signature, so that a wrong time is provable. Two dialects are
//! spoken, each request answered in its own:
//!
//! - **draft-07** (`VER` = `0x80000007`, as pyroughtime 1.0 sends): a SHA-512/256 Merkle tree
//!   over the 32-byte nonces, timestamps as Modified Julian Date and microseconds, `RADI` in
//!   microseconds, a top-level `VER` in the reply;
//! - **RFC 10049** (`VER` list with 1, or the pre-RFC draft `0x8000000c`; as
//!   roughenough-client 2.x sends): `TYPE`, optional `SRV`, a tree of the first 32 bytes of
//!   SHA-512 over whole request packets, seconds, `RADI` of at least 3 s, `VER`/`VERS` in the
//!   signed response, and context strings that differ between version 1 and the draft.
//!
//! Packets are `ROUGHTIM`-framed. Requests under 1024 bytes are refused so that a reply is
//! never larger than its request. A batch (up to 64 waiting requests) is answered under one
//! tree and one signature per version. The long-term key is the caller's; this crate makes the
//! online key and its delegation and renews them before they expire.
//!
//! Time comes from a [`TimeSource`]: with no certified time, no reply is sent.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod batch;
mod keys;
mod merkle;
mod request;
mod respond;
mod server;
mod time;
mod verify;
mod wire;

pub use batch::Batch;
pub use keys::{DEFAULT_VALIDITY, Keys, RENEW_BEFORE, ValidityError};
pub use request::{MAX_REQUEST, MIN_REQUEST, Version};
pub use respond::{Counters, MIN_RFC_RADIUS_S, respond};
pub use server::{MAX_BATCH, serve};
pub use time::{Reading, TimeSource};
pub use verify::{VerifyError, request, verify_response};
pub use wire::WireError;

#[cfg(test)]
mod tests;
