//! The interval that enough readings support, tolerating `f` liars.

/// The longest collection window a coordinator may claim (one second): readings are taken at
/// different instants of the window, so each reading's latest bound is moved later by it.
pub const MAX_WINDOW_NS: u64 = 1_000_000_000;

/// The interval the readings agree on, and who agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Agreement {
    /// The earliest instant true time may be, in nanoseconds since the Unix epoch.
    pub earliest_ns: u64,
    /// The latest instant true time may be.
    pub latest_ns: u64,
    /// Bit `i` is set when node `i`'s reading overlaps the interval.
    pub agreed: u128,
    /// How much each reading's latest end was moved (the collection window).
    pub window_ns: u64,
}

/// Why no interval could be agreed.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Fewer than `2f+1` readings: too few to outvote `f` liars.
    #[error("only {have} clock readings, {need} are needed to outvote {faults} liars")]
    TooFewReadings {
        /// Readings given.
        have: usize,
        /// Readings needed (`2f+1`).
        need: usize,
        /// Liars tolerated (`f`).
        faults: usize,
    },
    /// No instant is supported by `m - f` readings: more than `f` clocks disagree.
    #[error(
        "no instant is within {need} of the {have} clock readings: more than {faults} clocks disagree"
    )]
    NoAgreement {
        /// Readings given.
        have: usize,
        /// Readings that must support an instant (`m - f`).
        need: usize,
        /// Liars tolerated (`f`).
        faults: usize,
    },
    /// The collection window is longer than [`MAX_WINDOW_NS`].
    #[error("collection window {0} ns is longer than the {MAX_WINDOW_NS} ns allowed")]
    WindowTooLong(u64),
    /// A signer position is repeated or beyond the `u128` bitmap.
    #[error("reading from node {0} is repeated or out of range")]
    BadSigner(u32),
}

/// Agrees on an interval from `readings` (signer position, earliest, latest), tolerating
/// `faults` liars among them, for readings taken within `window_ns` of each other.
///
/// Each reading's latest bound moves `window_ns` later, so that every honest reading
/// contains true time at the end of the window. With `m` readings (at least `2f+1`), the
/// result is the smallest interval holding every instant that at least `m - f` readings
/// contain: true time is one of them whenever at most `f` lie. Readings that overlap the
/// interval are marked as agreeing; the others are evidence of faulty clocks.
///
/// The result depends only on the inputs (not their order), so every node computes the same
/// interval from the same readings.
pub fn agree(
    readings: &[(u32, u64, u64)],
    faults: usize,
    window_ns: u64,
) -> Result<Agreement, Refusal> {
    if window_ns > MAX_WINDOW_NS {
        return Err(Refusal::WindowTooLong(window_ns));
    }
    let mut seen = 0u128;
    for (signer, ..) in readings {
        let bit = 1u128
            .checked_shl(*signer)
            .ok_or(Refusal::BadSigner(*signer))?;
        if seen & bit != 0 {
            return Err(Refusal::BadSigner(*signer));
        }
        seen |= bit;
    }
    let have = readings.len();
    let need_readings = 2 * faults + 1;
    if have < need_readings {
        return Err(Refusal::TooFewReadings {
            have,
            need: need_readings,
            faults,
        });
    }
    let need = have - faults;
    let widened: Vec<(u32, u64, u64)> = readings
        .iter()
        .map(|&(signer, lo, hi)| (signer, lo.min(hi), hi.max(lo).saturating_add(window_ns)))
        .collect();
    // Marzullo's sweep over closed intervals: at equal instants, starts before ends.
    let mut events: Vec<(u64, bool)> = widened
        .iter()
        .flat_map(|&(_, lo, hi)| [(lo, false), (hi, true)])
        .collect();
    events.sort_unstable();
    let mut depth = 0usize;
    let mut earliest = None;
    let mut latest = None;
    for (instant, is_end) in events {
        if is_end {
            if depth >= need {
                latest = Some(instant);
            }
            depth -= 1;
        } else {
            depth += 1;
            if depth >= need && earliest.is_none() {
                earliest = Some(instant);
            }
        }
    }
    let (Some(earliest_ns), Some(latest_ns)) = (earliest, latest) else {
        return Err(Refusal::NoAgreement { have, need, faults });
    };
    let agreed = widened
        .iter()
        .filter(|&&(_, lo, hi)| lo <= latest_ns && hi >= earliest_ns)
        .fold(0u128, |bits, &(signer, ..)| bits | (1u128 << signer));
    Ok(Agreement {
        earliest_ns,
        latest_ns,
        agreed,
        window_ns,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn one_liar_of_four_is_outvoted() {
        let readings = [
            (0, 100, 200),
            (1, 150, 260),
            (2, 120, 180),
            (3, 10_000, 10_100),
        ];
        let agreement = agree(&readings, 1, 0).expect("three agree");
        assert_eq!((agreement.earliest_ns, agreement.latest_ns), (150, 180));
        assert_eq!(agreement.agreed, 0b0111);
    }

    #[test]
    fn the_window_moves_latest_bounds_later() {
        let readings = [(0, 100, 200), (1, 190, 260), (2, 120, 180)];
        // Without the window, 2 of 3 cover [120, 200]; with it, the latest bounds grow.
        let agreement = agree(&readings, 1, 50).expect("agrees");
        assert_eq!((agreement.earliest_ns, agreement.latest_ns), (120, 250));
    }

    #[test]
    fn refuses_too_few_readings_and_disagreement() {
        assert_eq!(
            agree(&[(0, 1, 2), (1, 1, 2)], 1, 0),
            Err(Refusal::TooFewReadings {
                have: 2,
                need: 3,
                faults: 1
            })
        );
        let apart = [(0, 0, 10), (1, 100, 110), (2, 200, 210), (3, 300, 310)];
        assert_eq!(
            agree(&apart, 1, 0),
            Err(Refusal::NoAgreement {
                have: 4,
                need: 3,
                faults: 1
            })
        );
        assert_eq!(
            agree(&[(0, 1, 2), (0, 1, 2), (1, 1, 2)], 1, 0),
            Err(Refusal::BadSigner(0))
        );
        assert_eq!(agree(&[(128, 1, 2)], 0, 0), Err(Refusal::BadSigner(128)));
        assert_eq!(
            agree(&[(0, 1, 2)], 0, MAX_WINDOW_NS + 1),
            Err(Refusal::WindowTooLong(MAX_WINDOW_NS + 1))
        );
    }

    proptest! {
        /// With `n = 3f+1` readings of which at most `f` lie arbitrarily, the agreed interval
        /// always holds true time, and is never wider than the honest readings' span.
        #[test]
        fn true_time_is_always_inside(
            f in 0usize..4,
            truth in 1_000_000u64..2_000_000,
            honest in proptest::collection::vec((0u64..5_000, 0u64..5_000), 10),
            liars in proptest::collection::vec((0u64..4_000_000, 0u64..10_000), 3),
            liar_count in 0usize..4,
            order in proptest::collection::vec(any::<u32>(), 10),
        ) {
            let n = 3 * f + 1;
            let liar_count = liar_count.min(f);
            let mut readings = Vec::new();
            let mut span = (u64::MAX, 0u64);
            for i in 0..n {
                let signer = u32::try_from(i).expect("small");
                if i < liar_count {
                    let (lo, width) = liars[i];
                    readings.push((signer, lo, lo + width));
                } else {
                    // An honest reading: contains the truth, off-centre by any amount.
                    let (below, above) = honest[i];
                    let lo = truth - below;
                    let hi = truth + above;
                    span = (span.0.min(lo), span.1.max(hi));
                    readings.push((signer, lo, hi));
                }
            }
            readings.sort_by_key(|r| order[r.0 as usize]);
            let agreement = agree(&readings, f, 0).expect("at most f liars always agree");
            prop_assert!(agreement.earliest_ns <= truth && truth <= agreement.latest_ns);
            prop_assert!(agreement.earliest_ns >= span.0 && agreement.latest_ns <= span.1);
            // Every honest reading overlaps the interval (they all hold true time).
            for i in liar_count..n {
                prop_assert!(agreement.agreed & (1 << i) != 0);
            }
        }

        /// The result is a function of the set of readings, not of their order.
        #[test]
        fn order_does_not_matter(
            readings in proptest::collection::vec((0u64..1_000, 0u64..1_000), 4),
            rotate in 0usize..4,
        ) {
            let as_tuples: Vec<(u32, u64, u64)> = readings
                .iter()
                .enumerate()
                .map(|(i, &(lo, w))| (u32::try_from(i).expect("small"), lo, lo + w))
                .collect();
            let mut rotated = as_tuples.clone();
            rotated.rotate_left(rotate);
            prop_assert_eq!(agree(&as_tuples, 1, 7), agree(&rotated, 1, 7));
        }
    }
}
