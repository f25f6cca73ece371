//! Roughtime and NTP over UDP, serving the cluster's certified time (not this node's clock
//! alone) to ordinary clients. Production only: the deterministic runtime has no UDP.
//!
//! Both read the time from the node's latest certificate, carried forward on its clock with
//! the configured worst-case drift ([`crate::time::certified_now`]); with no certificate from
//! the last few seconds, Roughtime does not answer and NTP answers with the alarm. The
//! Roughtime long-term key is the node's own identity key (in the genesis file); NTP sends a
//! kiss-o'-death while this node's own clock is quarantined.

use crate::{handle::NodeHandle, store::Runtime};
use serde::Deserialize;
use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicBool, AtomicU64, Ordering::Relaxed},
    },
    time::Duration,
};
use tracing::{error, info};
use welkin_roughtime::{Reading, TimeSource};

/// The `[time]` table of the node config.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TimeFileConfig {
    /// Serve Roughtime (UDP) here; off when absent.
    pub roughtime_address: Option<SocketAddr>,
    /// Serve SNTPv4 (UDP) here; off when absent (port 123 needs root).
    pub ntp_address: Option<SocketAddr>,
    /// The clock's worst-case drift, in ppm (default 500).
    pub drift_ppm: Option<u32>,
    /// The radius of a free-running clock before it first agrees with the cluster, in ms
    /// (default 1000).
    pub initial_radius_ms: Option<u64>,
    /// Ask the kernel whether the host clock is synchronised and how well (default true);
    /// false treats the clock as free-running.
    pub kernel: Option<bool>,
}

impl TimeFileConfig {
    /// The clock configuration this table describes.
    pub fn clock(&self) -> crate::time::ClockConfig {
        let defaults = crate::time::ClockConfig::default();
        crate::time::ClockConfig {
            host: if self.kernel.unwrap_or(true) {
                defaults.host
            } else {
                Arc::new(crate::time::FixedHost(crate::time::HostSync::Unsynced))
            },
            drift_ppm: self.drift_ppm.unwrap_or(defaults.drift_ppm),
            initial_radius: self
                .initial_radius_ms
                .map_or(defaults.initial_radius, Duration::from_millis),
        }
    }
}

/// The node's certified time as the UDP servers read it.
struct Certified<E: Runtime>(NodeHandle<E>);

impl<E: Runtime> TimeSource for Certified<E> {
    fn now(&self) -> Option<Reading> {
        let (earliest, latest) = self.0.certified_now()?;
        let width = latest.saturating_sub(earliest);
        Some(Reading {
            midpoint_ns: earliest + width / 2,
            radius_ns: width.div_ceil(2),
        })
    }
}

/// What the UDP servers counted, for the node's status.
#[derive(Clone, Default)]
pub struct TimeServerCounters {
    /// Roughtime's counters, when it runs.
    pub roughtime: Option<Arc<welkin_roughtime::Counters>>,
    /// NTP's counters, when it runs.
    pub ntp: Option<Arc<welkin_ntp::Counters>>,
}

/// The label set of the `time_server_packets` counter: the server and what became of a packet.
type Label = [(&'static str, &'static str); 2];

impl TimeServerCounters {
    /// Every counter by (server, outcome).
    fn all(&self) -> Vec<(Label, &AtomicU64)> {
        let mut all = Vec::new();
        if let Some(c) = &self.roughtime {
            for (outcome, counter) in [
                ("answered", &c.answered),
                ("malformed", &c.malformed),
                ("too_small", &c.too_small),
                ("unsupported_version", &c.unsupported_version),
                ("other_server", &c.other_server),
                ("no_time", &c.no_time),
            ] {
                all.push(([("server", "roughtime"), ("outcome", outcome)], counter));
            }
        }
        if let Some(c) = &self.ntp {
            for (outcome, counter) in [
                ("answered", &c.answered),
                ("unsynchronized", &c.unsynchronized),
                ("kissed", &c.kissed),
                ("too_small", &c.too_small),
                ("malformed", &c.malformed),
                ("unsupported_version", &c.unsupported_version),
                ("not_client", &c.not_client),
            ] {
                all.push(([("server", "ntp"), ("outcome", outcome)], counter));
            }
        }
        all
    }
}

/// Copies the servers' counters into the node's metrics (`time_server_packets`, by server and
/// outcome) once a second.
fn export(
    metrics: &impl commonware_runtime::Metrics,
    runtime: &tokio::runtime::Handle,
    counters: TimeServerCounters,
) {
    use commonware_runtime::telemetry::metrics::{CounterFamily, MetricsExt as _};
    let family: CounterFamily<Label> = metrics.family(
        "time_server_packets",
        "Roughtime and NTP packets received, by server and by what became of them",
    );
    runtime.spawn(async move {
        let mut copied: Vec<u64> = Vec::new();
        loop {
            for (i, (label, counter)) in counters.all().into_iter().enumerate() {
                let now = counter.load(Relaxed);
                if copied.len() <= i {
                    copied.push(0);
                }
                family.get_or_create(&label).inc_by(now - copied[i]);
                copied[i] = now;
            }
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    });
}

/// Binds and starts the configured servers on `runtime`, counting their packets in
/// `metrics`, or says which address could not be bound.
pub(crate) fn start<E: Runtime>(
    runtime: &tokio::runtime::Handle,
    metrics: &impl commonware_runtime::Metrics,
    node: &NodeHandle<E>,
    identity: &welkin_types::PrivateKey,
    config: &TimeFileConfig,
) -> Result<TimeServerCounters, String> {
    let mut counters = TimeServerCounters::default();
    let source: Arc<dyn TimeSource> = Arc::new(Certified(node.clone()));
    if let Some(address) = config.roughtime_address {
        let socket = bind(address, "Roughtime")?;
        let seed: [u8; 32] = commonware_codec::Encode::encode(identity)
            .as_ref()
            .try_into()
            .expect("ed25519 seeds are 32 bytes");
        let keys = welkin_roughtime::Keys::new(ed25519_dalek::SigningKey::from_bytes(&seed));
        let counted = Arc::new(welkin_roughtime::Counters::default());
        counters.roughtime = Some(counted.clone());
        let source = source.clone();
        runtime.spawn(async move {
            let socket = match tokio::net::UdpSocket::from_std(socket) {
                Ok(socket) => socket,
                Err(e) => return error!(%e, "Roughtime socket unusable"),
            };
            if let Err(e) = welkin_roughtime::serve(socket, keys, source, counted).await {
                error!(%e, "Roughtime server stopped");
            }
        });
        info!(%address, "serving Roughtime");
    }
    if let Some(address) = config.ntp_address {
        let socket = bind(address, "NTP")?;
        let quarantined = Arc::new(AtomicBool::new(false));
        let counted = Arc::new(welkin_ntp::Counters::default());
        counters.ntp = Some(counted.clone());
        let watched = quarantined.clone();
        let time = node.time().clone();
        runtime.spawn(async move {
            loop {
                watched.store(time.quarantined(), Relaxed);
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
        });
        runtime.spawn(async move {
            let socket = match tokio::net::UdpSocket::from_std(socket) {
                Ok(socket) => socket,
                Err(e) => return error!(%e, "NTP socket unusable"),
            };
            let config = welkin_ntp::Config::default();
            if let Err(e) = welkin_ntp::serve(socket, source, quarantined, config, counted).await {
                error!(%e, "NTP server stopped");
            }
        });
        info!(%address, "serving NTP");
    }
    node.time().set_servers(crate::time::UdpServers {
        roughtime: config.roughtime_address,
        ntp: config.ntp_address,
    });
    export(metrics, runtime, counters.clone());
    Ok(counters)
}

fn bind(address: SocketAddr, what: &str) -> Result<std::net::UdpSocket, String> {
    let socket = std::net::UdpSocket::bind(address)
        .map_err(|e| format!("cannot bind the {what} address {address}: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("cannot use the {what} socket: {e}"))?;
    Ok(socket)
}
