//! Certified time (see `welkin_time` for what is signed and why it holds).
//!
//! One actor per node does two jobs over the time p2p channel:
//!
//! - **As a signer**, it answers a coordinator's ask with its clock reading signed over the
//!   batch root, and its certify request with a threshold partial, but only after checking
//!   every reading's signature, recomputing the agreed interval itself and finding its own
//!   clock inside it.
//! - **As the coordinator** of the nonces its clients ask about, it batches them under one
//!   Merkle root, gathers readings (all of them, or `2f+1` and a short grace), asks for
//!   partials, recovers the cluster signature from the first `t` that verify (blocking a peer
//!   whose partial does not) and answers every client with the certificate and its nonce's
//!   path. It certifies a tick of its own every second when no client asked, which is the
//!   time it serves to Roughtime and NTP clients and the stream.
//!
//! Readings outside the agreed interval are strikes against their node: after
//! [`actor::QUARANTINE_STRIKES`] in a row the node is quarantined (its readings and partials
//! are no longer used) until it agrees again as many times in a row.

pub(crate) mod actor;
pub mod clock;
mod wire;

pub use clock::{ClockConfig, FixedHost, HostClock, HostSync, KernelClock};
pub use wire::TimeMessage;

use futures::{
    SinkExt as _,
    channel::{mpsc, oneshot},
};
use std::sync::{Arc, Mutex};
use welkin_time::{CertifiedTime, Reading};

/// Why no certificate could be made.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum TimeFailure {
    /// Too many clients are waiting on this node.
    #[error("{0} time requests are waiting on this node, its limit; retry shortly")]
    Busy(usize),
    /// The clocks did not agree, or too few nodes answered: the cluster fails closed.
    #[error("no certified time: {0}")]
    Refused(String),
    /// The node is shutting down.
    #[error("the node is shutting down")]
    Stopped,
}

/// How one node's clock looks from this node (its last reading against the agreed interval).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NodeClock {
    /// The node's genesis position.
    pub index: u32,
    /// Its reading's midpoint minus the certified midpoint, in nanoseconds.
    pub offset_ns: i64,
    /// The radius it claimed.
    pub radius_ns: u64,
    /// Whether it said its host is synchronised.
    pub synced: bool,
    /// What this node makes of it.
    pub state: ClockState,
    /// Disagreements in a row (or agreements in a row while quarantined).
    pub streak: u32,
    /// Rounds in which its reading lay outside the agreed interval.
    pub disagreements: u64,
    /// When (this node's clock, ms since the epoch) its last reading arrived.
    pub last_heard_ms: Option<u64>,
}

/// A node's clock state, as one coordinator sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClockState {
    /// No reading from it yet.
    Unknown,
    /// Its last reading overlapped the agreed interval.
    Agreeing,
    /// Its last reading lay outside the agreed interval.
    Disagreeing,
    /// It disagreed too often in a row; its readings are not used until it agrees again.
    Quarantined,
    /// It did not answer the last round.
    Silent,
}

impl ClockState {
    /// The state's name in the API.
    pub fn name(&self) -> &'static str {
        match self {
            ClockState::Unknown => "unknown",
            ClockState::Agreeing => "agreeing",
            ClockState::Disagreeing => "disagreeing",
            ClockState::Quarantined => "quarantined",
            ClockState::Silent => "silent",
        }
    }
}

/// The latest certificate this node coordinated, and when by its own clock.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Tick {
    /// The certificate (for one nonce of its batch).
    pub certified: CertifiedTime,
    /// This node's clock when the round began, in ns since the epoch.
    pub started_ns: u64,
    /// This node's clock when the certificate was recovered.
    pub finished_ns: u64,
}

/// What the time actor shares with the API.
#[derive(Clone, Debug)]
pub struct TimeStatus {
    /// This node's genesis position.
    pub me: u32,
    /// This node's reading now.
    pub reading: Reading,
    /// The latest certificate it coordinated.
    pub latest: Option<Tick>,
    /// Every node's clock as this node sees it, by position.
    pub nodes: Vec<NodeClock>,
    /// Certificates made and refused by this node as coordinator.
    pub certified: u64,
    /// Rounds that ended without a certificate.
    pub refused: u64,
}

/// The longest a certified tick is used to serve time from (after it, no time is served).
pub const TICK_VALID_NS: u64 = 10 * welkin_time::SECOND_NS;

/// The interval true time lies in at local clock `now_ns`, from a tick: the certificate held
/// at some instant of the round, which ended `now - finished` ago and began
/// `now - started` ago, and the clock may have drifted by `drift_ppm` since.
pub fn certified_now(tick: &Tick, now_ns: u64, drift_ppm: u32) -> Option<(u64, u64)> {
    let since_start = now_ns.checked_sub(tick.started_ns)?;
    if since_start > TICK_VALID_NS {
        return None;
    }
    let since_end = now_ns.saturating_sub(tick.finished_ns);
    let drift = clock::drift_ns(since_start, drift_ppm);
    let certificate = &tick.certified.certificate;
    let earliest = certificate
        .earliest_ns
        .saturating_add(since_end)
        .saturating_sub(drift);
    let latest = certificate
        .latest_ns
        .saturating_add(since_start)
        .saturating_add(drift);
    Some((earliest, latest))
}

/// A client's request for a certificate over its nonce.
pub(crate) struct TimeRequest {
    pub(crate) nonce: [u8; 32],
    pub(crate) reply: oneshot::Sender<Result<CertifiedTime, TimeFailure>>,
}

/// Most requests waiting for the actor's mailbox.
pub(crate) const REQUEST_BACKLOG: usize = 4096;

/// The API's way to the time actor.
#[derive(Clone)]
pub struct TimeHandle {
    requests: mpsc::Sender<TimeRequest>,
    status: Arc<Mutex<TimeStatus>>,
    drift_ppm: u32,
    servers: Arc<Mutex<UdpServers>>,
}

/// Where this node serves Roughtime and NTP (set once the servers are bound).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct UdpServers {
    /// The Roughtime address.
    pub roughtime: Option<std::net::SocketAddr>,
    /// The NTP address.
    pub ntp: Option<std::net::SocketAddr>,
}

impl TimeHandle {
    pub(crate) fn new(
        status: Arc<Mutex<TimeStatus>>,
        drift_ppm: u32,
    ) -> (Self, mpsc::Receiver<TimeRequest>) {
        let (requests, receiver) = mpsc::channel(REQUEST_BACKLOG);
        (
            Self {
                requests,
                status,
                drift_ppm,
                servers: Arc::default(),
            },
            receiver,
        )
    }

    /// A certificate over `nonce`, or why the cluster would not give one.
    pub async fn certify(&self, nonce: [u8; 32]) -> Result<CertifiedTime, TimeFailure> {
        let (reply, answer) = oneshot::channel();
        let mut requests = self.requests.clone();
        match requests.try_send(TimeRequest { nonce, reply }) {
            Ok(()) => {}
            Err(error) if error.is_full() => return Err(TimeFailure::Busy(REQUEST_BACKLOG)),
            Err(_) => return Err(TimeFailure::Stopped),
        }
        let _ = requests.flush().await;
        answer.await.map_err(|_| TimeFailure::Stopped)?
    }

    /// Records where this node serves Roughtime and NTP.
    pub fn set_servers(&self, servers: UdpServers) {
        *self.servers.lock().expect("time servers lock") = servers;
    }

    /// Where this node serves Roughtime and NTP.
    pub fn servers(&self) -> UdpServers {
        *self.servers.lock().expect("time servers lock")
    }

    /// A snapshot of what this node knows about every clock.
    pub fn status(&self) -> TimeStatus {
        self.status.lock().expect("time status lock").clone()
    }

    /// The certified interval at this node's clock `now_ns` (from its latest tick), or `None`
    /// when it has none recent enough.
    pub fn certified_now(&self, now_ns: u64) -> Option<(u64, u64)> {
        let latest = self
            .status
            .lock()
            .expect("time status lock")
            .latest
            .clone()?;
        certified_now(&latest, now_ns, self.drift_ppm)
    }

    /// Whether this node's own clock is quarantined in its own view.
    pub fn quarantined(&self) -> bool {
        let status = self.status.lock().expect("time status lock");
        status
            .nodes
            .get(status.me as usize)
            .is_some_and(|node| node.state == ClockState::Quarantined)
    }
}
