//! Certified time readings and their conversion into each dialect's units.

/// A reading of the current time that the caller vouches for: the true time lies within
/// `midpoint_ns ± radius_ns`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Reading {
    /// Nanoseconds since the Unix epoch (UTC, leap seconds smeared as the caller's clock does).
    pub midpoint_ns: u64,
    /// Half-width of the interval the true time lies in, in nanoseconds.
    pub radius_ns: u64,
}

/// Where the servers get the time. Called once per batch of requests.
pub trait TimeSource: Send + Sync {
    /// The current certified time, or `None` when there is none: then no reply is sent.
    fn now(&self) -> Option<Reading>;
}

/// Nanoseconds in a microsecond.
pub(crate) const NS_PER_US: u64 = 1_000;
/// Nanoseconds in a second.
pub(crate) const NS_PER_S: u64 = 1_000_000_000;
/// The Modified Julian Date of 1970-01-01.
const MJD_OF_UNIX_EPOCH: u64 = 40_587;
/// Microseconds in a (leap-second-free) day.
const US_PER_DAY: u64 = 86_400_000_000;
/// The low 40 bits of a draft-07 timestamp hold the microseconds into the day.
const DAY_BITS: u32 = 40;

/// A reading expressed in a coarser unit: the midpoint rounded to the nearest unit, and a
/// radius widened by that rounding error and rounded up, so that the interval it describes
/// still contains the true time. `None` when the radius does not fit the dialect's `u32`.
pub(crate) fn in_units(reading: Reading, unit_ns: u64, min_radius: u32) -> Option<(u64, u32)> {
    let down = reading.midpoint_ns / unit_ns;
    let rest = reading.midpoint_ns % unit_ns;
    let (midpoint, error) = if rest >= unit_ns - rest {
        (down + 1, unit_ns - rest)
    } else {
        (down, rest)
    };
    let radius = reading.radius_ns.saturating_add(error).div_ceil(unit_ns);
    let radius = u32::try_from(radius).ok()?.max(min_radius);
    Some((midpoint, radius))
}

/// The draft-07 timestamp of a Unix time in microseconds: the Modified Julian Date in the top
/// 24 bits and the microseconds since midnight in the low 40.
pub(crate) fn draft07_timestamp(unix_us: u64) -> u64 {
    ((unix_us / US_PER_DAY + MJD_OF_UNIX_EPOCH) << DAY_BITS) | (unix_us % US_PER_DAY)
}

/// The Unix time in microseconds of a draft-07 timestamp, if it is well formed and after 1970.
pub(crate) fn unix_us_of_draft07(timestamp: u64) -> Option<u64> {
    let day = (timestamp >> DAY_BITS).checked_sub(MJD_OF_UNIX_EPOCH)?;
    let micros = timestamp & ((1 << DAY_BITS) - 1);
    if micros >= US_PER_DAY {
        return None;
    }
    day.checked_mul(US_PER_DAY)?.checked_add(micros)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounding_keeps_the_true_interval_inside() {
        let reading = Reading {
            midpoint_ns: 10_600_000_000,
            radius_ns: 100_000_000,
        };
        // 10.6 s ± 0.1 s: rounded to 11 s, the radius must reach down to 10.5 s.
        assert_eq!(in_units(reading, NS_PER_S, 0), Some((11, 1)));
        assert_eq!(in_units(reading, NS_PER_S, 3), Some((11, 3)));
        let exact = Reading {
            midpoint_ns: 5_000,
            radius_ns: 1,
        };
        assert_eq!(in_units(exact, NS_PER_US, 0), Some((5, 1)));
    }

    #[test]
    fn a_radius_too_large_for_the_dialect_is_refused() {
        let reading = Reading {
            midpoint_ns: 0,
            radius_ns: u64::MAX,
        };
        assert_eq!(in_units(reading, NS_PER_US, 0), None);
    }

    #[test]
    fn draft07_timestamps_round_trip() {
        // 2024-01-01T00:00:00.000001Z is MJD 60310.
        let us = 1_704_067_200_000_001;
        let ts = draft07_timestamp(us);
        assert_eq!(ts >> 40, 60_310);
        assert_eq!(ts & ((1 << 40) - 1), 1);
        assert_eq!(unix_us_of_draft07(ts), Some(us));
        assert_eq!(unix_us_of_draft07(ts | ((1 << 40) - 1)), None);
        assert_eq!(unix_us_of_draft07(0), None);
    }
}
