//! The load generator both sides of `welkin bench` share: `concurrency` client threads, each
//! with its own keep-alive connection, sending requests back to back until the deadline and
//! timing every request.

use serde::Serialize;
use std::{
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

/// What one request carried, and how much of it counts (committed and applied, or a put the
/// server confirmed with a revision).
pub(super) struct Sent {
    /// Transactions or puts in the request.
    pub(super) items: usize,
    /// Of those, the ones that count.
    pub(super) counted: usize,
}

/// Latency percentiles in milliseconds, over counted items.
#[derive(Clone, Debug, Serialize)]
pub(super) struct Latency {
    pub(super) p50: f64,
    pub(super) p90: f64,
    pub(super) p99: f64,
    pub(super) max: f64,
}

/// The outcome of one load.
#[derive(Clone, Debug, Serialize)]
pub(super) struct LoadResult {
    /// Measured seconds, from the first request to the last reply.
    pub(super) duration_s: f64,
    /// Items sent.
    pub(super) submitted: usize,
    /// Items that count.
    pub(super) committed: usize,
    /// Items sent that did not count (refused, failed or timed out).
    pub(super) rejected: usize,
    /// Counted items per second.
    #[serde(rename = "committed_per_s")]
    pub(super) per_s: f64,
    /// Round trip of the request that carried each counted item.
    pub(super) latency_ms: Latency,
    /// True if the prepared requests ran out before the deadline (the load ended early).
    pub(super) exhausted: bool,
}

/// Runs `concurrency` workers for `duration` (or until `stop()` is true). Worker `w` is made by
/// `make(w)` and called with request indices from a shared counter, unique across workers; it
/// returns `None` when it has nothing left to send. Progress goes to stderr every second.
pub(super) fn drive<W>(
    label: &str,
    concurrency: usize,
    duration: Duration,
    stop: fn() -> bool,
    make: impl Fn(usize) -> W,
) -> LoadResult
where
    W: FnMut(usize) -> Option<Sent> + Send + 'static,
{
    let next = Arc::new(AtomicUsize::new(0));
    let counted = Arc::new(AtomicUsize::new(0));
    let exhausted = Arc::new(AtomicUsize::new(0));
    let started = Instant::now();
    let deadline = started + duration;
    let workers: Vec<_> = (0..concurrency)
        .map(|w| {
            let mut request = make(w);
            let (next, counted, exhausted) = (next.clone(), counted.clone(), exhausted.clone());
            std::thread::spawn(move || {
                let (mut latencies, mut submitted) = (Vec::new(), 0usize);
                while Instant::now() < deadline && !stop() {
                    let sent_at = Instant::now();
                    let Some(sent) = request(next.fetch_add(1, Ordering::Relaxed)) else {
                        exhausted.fetch_add(1, Ordering::Relaxed);
                        break;
                    };
                    let latency = sent_at.elapsed().as_secs_f64() * 1000.0;
                    latencies.extend(std::iter::repeat_n(latency, sent.counted));
                    submitted += sent.items;
                    counted.fetch_add(sent.counted, Ordering::Relaxed);
                }
                (latencies, submitted)
            })
        })
        .collect();
    let (mut last, mut shown) = (0, Instant::now());
    while workers.iter().any(|w| !w.is_finished()) {
        std::thread::sleep(Duration::from_millis(100));
        if shown.elapsed() >= Duration::from_secs(1) {
            shown = Instant::now();
            let now = counted.load(Ordering::Relaxed);
            eprint!(
                "\r{label}: {:>4.0} s  {now:>9} counted  ({:>7.0}/s now)",
                started.elapsed().as_secs_f64(),
                (now - last) as f64
            );
            last = now;
        }
    }
    eprintln!();
    let (mut latencies, mut submitted) = (Vec::new(), 0);
    for worker in workers {
        // A worker only panics on a bug; its figures are then lost, and the rest still count.
        if let Ok((worker_latencies, worker_submitted)) = worker.join() {
            latencies.extend(worker_latencies);
            submitted += worker_submitted;
        }
    }
    let duration_s = started.elapsed().as_secs_f64();
    latencies.sort_by(|a, b| a.total_cmp(b));
    let committed = latencies.len();
    LoadResult {
        duration_s,
        submitted,
        committed,
        rejected: submitted.saturating_sub(committed),
        per_s: committed as f64 / duration_s,
        latency_ms: Latency {
            p50: percentile(&latencies, 0.50),
            p90: percentile(&latencies, 0.90),
            p99: percentile(&latencies, 0.99),
            max: latencies.last().copied().unwrap_or(0.0),
        },
        exhausted: exhausted.load(Ordering::Relaxed) > 0,
    }
}

/// The `p` quantile (0 to 1) of sorted values, by nearest rank; 0 for no values.
fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let index = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[index.min(sorted.len() - 1)]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentile_picks_the_nearest_rank() {
        let sorted: Vec<f64> = (1..=100).map(f64::from).collect();
        assert_eq!(percentile(&sorted, 0.5), 51.0);
        assert_eq!(percentile(&sorted, 0.99), 99.0);
        assert_eq!(percentile(&sorted, 1.0), 100.0);
        assert_eq!(percentile(&[], 0.5), 0.0);
    }

    #[test]
    fn drive_counts_what_workers_report_and_stops_when_they_run_out() {
        let result = drive(
            "test",
            3,
            Duration::from_secs(30),
            || false,
            |_| {
                |index: usize| {
                    (index < 30).then_some(Sent {
                        items: 2,
                        counted: 1,
                    })
                }
            },
        );
        assert_eq!(result.submitted, 60);
        assert_eq!(result.committed, 30);
        assert_eq!(result.rejected, 30);
        assert!(result.exhausted);
    }
}
