//! Helpers shared by the process tests.

use std::{
    hash::{BuildHasher as _, RandomState},
    net::TcpListener,
    ops::Range,
    sync::Mutex,
};

/// Ports to choose from: below Linux's ephemeral range (32768 and up), so that no outgoing
/// connection is given one of them while a test runs.
const PORTS: Range<u16> = 20_000..32_000;

/// Bases already handed out in this test process, with the span each one covers.
static TAKEN: Mutex<Vec<(u16, u16)>> = Mutex::new(Vec::new());

/// A base port `b` such that `b + offset` is free on 127.0.0.1 for every offset (each at most
/// 1000): chosen at random, checked by binding every port, and never handed out twice in one
/// process, so that tests running at once (or other clusters on the machine) do not collide.
pub(crate) fn free_base(offsets: &[u16]) -> u16 {
    let span = offsets.iter().copied().max().unwrap_or(0) + 1;
    assert!(span <= 1000, "offsets up to 1000");
    let choices = (PORTS.end - PORTS.start - span) as u64;
    let random = RandomState::new();
    for attempt in 0..1000u64 {
        let base = PORTS.start + (random.hash_one((std::process::id(), attempt)) % choices) as u16;
        let mut taken = TAKEN.lock().expect("no test panics while holding the lock");
        if taken
            .iter()
            .any(|&(other, other_span)| base < other + other_span && other < base + span)
        {
            continue;
        }
        let bound: Result<Vec<TcpListener>, _> = offsets
            .iter()
            .map(|offset| TcpListener::bind(("127.0.0.1", base + offset)))
            .collect();
        if bound.is_ok() {
            taken.push((base, span));
            return base;
        }
    }
    panic!("no free ports for offsets {offsets:?} in {PORTS:?}");
}
