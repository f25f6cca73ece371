//! A Welkin node: consensus, p2p, embedded store, mempool and HTTP API wired on the
//! commonware runtime.
//!
//! The node logic ([`start`]) is written against the commonware runtime traits and runs
//! unchanged on the deterministic runtime (tests, with a simulated network) and on the tokio
//! runtime (production, with authenticated TCP between processes). The crate README maps the
//! modules; only the HTTP API, the ceremony and the process runner are public modules, and
//! the rest of the public surface is the list below.

#![deny(missing_docs)]

mod admission;
pub mod api;
mod application;
pub mod ceremony;
mod checkpoints;
mod consensus;
mod engine;
mod epochs;
mod executor;
mod gossip;
mod handle;
mod keygen;
mod log;
mod mempool;
pub mod objects;
mod penalty;
mod releases;
pub mod run;
mod store;
pub mod time;
pub mod time_servers;
mod timeline;
mod transit;
mod values;
mod waiters;

pub use admission::SubmitError;
pub use application::now_ms;
/// The checkpoint channel's wire format (simulations forge it to play byzantine nodes).
pub use checkpoints::CheckpointMessage;
pub use engine::{Channels, EngineConfig, MAX_MESSAGE_BYTES, Timeouts, channel, start};
/// The gossip channel's wire format (simulations forge it to play byzantine nodes).
pub use gossip::Batch as GossipBatch;
pub use handle::{NodeHandle, Submitted};
pub use keygen::ClusterKeys;
pub use mempool::MempoolConfig;
/// The release channel's wire format (simulations forge it to play byzantine nodes).
pub use releases::ReleaseBatch;
pub use releases::{
    Grant, ReadGrant, Release, ReleasesConfig, TargetsGrant,
    reader::{Opened, ReadError, ReadOpener},
    targets::{OpenedTargets, TargetsOpener, is_cluster_signature},
};
pub use store::{ProvenValue, Runtime};
pub use time::{TimeHandle, TimeMessage};
pub use transit::{SessionId, SignFailure, TransitMessage};
pub use waiters::{Subscription, TooManyWaiters, WaitersConfig};
