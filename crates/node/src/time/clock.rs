//! A node's reading of its own clock, with a radius it can vouch for.
//!
//! When the host is synchronised (NTP, chrony, PTP), the kernel keeps an estimate of its
//! clock's maximum error (`adjtimex`), and the radius is that estimate. Otherwise the radius
//! is what the node last learned from a certificate it coordinated (how far its clock was
//! from the certified interval), grown since at the configured worst-case drift; before any
//! such agreement it is the configured initial radius.

use std::{sync::Arc, time::Duration};
use welkin_time::Reading;

/// What the host says about its clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum HostSync {
    /// The host is synchronised and bounds its clock's error by `max_error`.
    Synced {
        /// The kernel's estimate of the clock's maximum error.
        max_error: Duration,
    },
    /// The host's clock runs free (or its synchronisation status is unknown).
    Unsynced,
}

/// The source of the host's synchronisation status.
pub trait HostClock: Send + Sync + 'static {
    /// The status now.
    fn sync(&self) -> HostSync;
}

/// A host whose status never changes (tests, and hosts configured to ignore the kernel).
#[derive(Clone, Copy, Debug)]
pub struct FixedHost(pub HostSync);

impl HostClock for FixedHost {
    fn sync(&self) -> HostSync {
        self.0
    }
}

/// The Linux kernel's view (`adjtimex` with no modes: read only).
#[derive(Clone, Copy, Debug, Default)]
pub struct KernelClock;

impl HostClock for KernelClock {
    fn sync(&self) -> HostSync {
        match welkin_hostclock::kernel_sync() {
            welkin_hostclock::KernelSync::Synced { max_error } => HostSync::Synced { max_error },
            welkin_hostclock::KernelSync::Unsynced => HostSync::Unsynced,
        }
    }
}

/// How a node bounds its clock's error.
#[derive(Clone)]
pub struct ClockConfig {
    /// Where the host's synchronisation status comes from.
    pub host: Arc<dyn HostClock>,
    /// The free-running clock's worst-case drift, in parts per million (500 is NTP's
    /// tolerance; real oscillators are usually within 50).
    pub drift_ppm: u32,
    /// The radius of an unsynchronised clock before its first agreement with the cluster.
    pub initial_radius: Duration,
}

impl Default for ClockConfig {
    fn default() -> Self {
        Self {
            host: Arc::new(KernelClock),
            drift_ppm: 500,
            initial_radius: Duration::from_secs(1),
        }
    }
}

impl std::fmt::Debug for ClockConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClockConfig")
            .field("host", &self.host.sync())
            .field("drift_ppm", &self.drift_ppm)
            .field("initial_radius", &self.initial_radius)
            .finish()
    }
}

/// Nanoseconds a clock drifting at `ppm` may gain or lose over `elapsed_ns`, rounded up.
pub(crate) fn drift_ns(elapsed_ns: u64, ppm: u32) -> u64 {
    let drift = u128::from(elapsed_ns) * u128::from(ppm);
    u64::try_from(drift.div_ceil(1_000_000)).unwrap_or(u64::MAX)
}

/// This node's clock and what it has learned about its error.
pub(crate) struct LocalClock {
    config: ClockConfig,
    /// When (by this clock) the node last bounded its error from a certificate, and the
    /// bound then.
    agreement: Option<(u64, u64)>,
}

impl LocalClock {
    pub(crate) fn new(config: ClockConfig) -> Self {
        Self {
            config,
            agreement: None,
        }
    }

    /// The reading at `now_ns` (this clock's value).
    pub(crate) fn read(&self, now_ns: u64) -> Reading {
        match self.config.host.sync() {
            HostSync::Synced { max_error } => Reading {
                midpoint_ns: now_ns,
                radius_ns: u64::try_from(max_error.as_nanos()).unwrap_or(u64::MAX),
                synced: true,
            },
            HostSync::Unsynced => {
                let radius_ns = match self.agreement {
                    Some((at, error)) => error
                        .saturating_add(drift_ns(now_ns.saturating_sub(at), self.config.drift_ppm)),
                    None => {
                        u64::try_from(self.config.initial_radius.as_nanos()).unwrap_or(u64::MAX)
                    }
                };
                Reading {
                    midpoint_ns: now_ns,
                    radius_ns,
                    synced: false,
                }
            }
        }
    }

    /// Learns from a certificate: at `now_ns` (this clock), true time is within
    /// `[earliest_ns, latest_ns]`, so this clock's error is at most its distance to the
    /// farther end. The bound only replaces the drifted one when it is tighter.
    pub(crate) fn agreed(&mut self, now_ns: u64, earliest_ns: u64, latest_ns: u64) {
        let error = now_ns.abs_diff(earliest_ns).max(now_ns.abs_diff(latest_ns));
        let current = self.read(now_ns);
        if current.synced || self.agreement.is_none() || error < current.radius_ns {
            self.agreement = Some((now_ns, error));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unsynced() -> LocalClock {
        LocalClock::new(ClockConfig {
            host: Arc::new(FixedHost(HostSync::Unsynced)),
            drift_ppm: 100,
            initial_radius: Duration::from_millis(500),
        })
    }

    #[test]
    fn a_free_running_clock_starts_wide_and_grows_from_each_agreement() {
        let mut clock = unsynced();
        assert_eq!(clock.read(1_000).radius_ns, 500_000_000);
        // Certified [990, 1_020] while the clock read 1_000: error at most 20.
        clock.agreed(1_000, 990, 1_020);
        assert_eq!(clock.read(1_000).radius_ns, 20);
        // One second later, 100 ppm adds 100 µs.
        assert_eq!(clock.read(1_000_001_000).radius_ns, 100_020);
        // A looser bound later does not replace a tighter drifted one.
        clock.agreed(1_000_001_000, 0, 2_000_000_000);
        assert_eq!(clock.read(1_000_001_000).radius_ns, 100_020);
    }

    #[test]
    fn a_clock_outside_the_certified_interval_bounds_its_error_by_the_far_end() {
        let mut clock = unsynced();
        clock.agreed(5_000, 1_000, 1_100);
        assert_eq!(clock.read(5_000).radius_ns, 4_000);
    }

    #[test]
    fn a_synchronised_host_uses_the_kernel_bound() {
        let clock = LocalClock::new(ClockConfig {
            host: Arc::new(FixedHost(HostSync::Synced {
                max_error: Duration::from_micros(1_500),
            })),
            ..ClockConfig::default()
        });
        let reading = clock.read(42);
        assert_eq!(
            (reading.midpoint_ns, reading.radius_ns, reading.synced),
            (42, 1_500_000, true)
        );
    }

    #[test]
    fn drift_rounds_up_and_saturates() {
        assert_eq!(drift_ns(1, 1), 1);
        assert_eq!(drift_ns(1_000_000, 500), 500);
        assert_eq!(drift_ns(u64::MAX, u32::MAX), u64::MAX);
    }
}
