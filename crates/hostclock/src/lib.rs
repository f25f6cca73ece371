//! The host clock's synchronisation status and maximum error, read from the Linux kernel
//! (adjtimex, read only).
//!
//! When the host runs NTP, chrony or PTP, the kernel keeps the discipline's estimate of the
//! clock's maximum error (`maxerror`, grown by the kernel at 500 ppm between updates) and
//! whether the clock is synchronised at all (`STA_UNSYNC`, `TIME_ERROR`). That is the bound a
//! node can vouch for without trusting any other node.

#![deny(missing_docs)]

use std::time::Duration;

/// The kernel's view of the system clock.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KernelSync {
    /// Synchronised, with the kernel's estimate of the clock's maximum error.
    Synced {
        /// The maximum error.
        max_error: Duration,
    },
    /// Not synchronised (or the platform does not say).
    Unsynced,
}

/// Reads the kernel's synchronisation status without changing anything.
pub fn kernel_sync() -> KernelSync {
    read()
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn read() -> KernelSync {
    // SAFETY: `timex` is plain old data, so all-zero is a valid value; `modes = 0` makes
    // adjtimex read only, and the kernel writes only within the struct it is given.
    let mut timex: libc::timex = unsafe { std::mem::zeroed() };
    let state = unsafe { libc::adjtimex(&mut timex) };
    if state < 0 || state == libc::TIME_ERROR || timex.status & libc::STA_UNSYNC != 0 {
        return KernelSync::Unsynced;
    }
    // `maxerror` is in microseconds.
    let micros = u64::try_from(timex.maxerror).unwrap_or(u64::MAX);
    KernelSync::Synced {
        max_error: Duration::from_micros(micros),
    }
}

#[cfg(not(target_os = "linux"))]
fn read() -> KernelSync {
    KernelSync::Unsynced
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synchronised_kernel_claims_at_most_its_own_limit() {
        // Either status is right on some host; a synchronised one never claims more than the
        // kernel's 16 s cap on `maxerror` (NTP_PHASE_LIMIT).
        if let KernelSync::Synced { max_error } = kernel_sync() {
            assert!(max_error <= Duration::from_secs(16), "{max_error:?}");
        }
    }
}
