//! A Welkin node: consensus, p2p, embedded store, mempool and HTTP API wired on the
//! commonware runtime.
//!
//! The node logic ([`engine::start`]) is written against the commonware runtime traits and
//! runs unchanged on the deterministic runtime (tests, with a simulated network) and on the
//! tokio runtime (production, with authenticated TCP between processes).

#![deny(missing_docs)]

pub mod admission;
pub mod api;
pub mod application;
pub mod ceremony;
pub mod checkpoints;
pub mod engine;
pub mod executor;
pub mod gossip;
pub mod handle;
pub mod log;
pub mod mempool;
pub mod penalty;
pub mod run;

pub use engine::{EngineConfig, Timeouts, start};
pub use handle::{NodeHandle, SubmitError, Submitted};
