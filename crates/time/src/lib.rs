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
    CERTIFICATE_VERSION, CLOCK_FAULT_MEDIA_TYPE, Certificate, CertificateError, CertifiedTime,
    ClockFault, FaultError, MAX_BATCH, batch_paths, batch_root,
};
pub use reading::{READING_VERSION, Reading, SignedReading};

/// One second in nanoseconds, the unit every time here is counted in.
pub const SECOND_NS: u64 = 1_000_000_000;

/// Formats nanoseconds since the Unix epoch as RFC 3339 UTC with nanoseconds
/// (`2026-11-28T21:18:27.123456789Z`).
pub fn rfc3339(ns: u64) -> String {
    let seconds = ns / SECOND_NS;
    let nanos = ns % SECOND_NS;
    let days = seconds / 86_400;
    let second_of_day = seconds % 86_400;
    // Howard Hinnant's civil-from-days, for days since 1970-01-01 (non-negative here).
    let z = days + 719_468;
    let era = z / 146_097;
    let day_of_era = z - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + u64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{nanos:09}Z",
        second_of_day / 3_600,
        second_of_day % 3_600 / 60,
        second_of_day % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00.000000000Z");
        assert_eq!(
            rfc3339(951_782_400 * SECOND_NS + 5),
            "2000-02-29T00:00:00.000000005Z"
        );
        assert_eq!(
            rfc3339(1_795_900_707 * SECOND_NS + 123_456_789),
            "2026-11-28T21:18:27.123456789Z"
        );
    }
}
