//! Free ports on 127.0.0.1 for the clusters a benchmark starts.

use std::{
    hash::{BuildHasher as _, RandomState},
    net::TcpListener,
    ops::Range,
};

/// Ports to choose from: below Linux's ephemeral range (32768 and up), so that no outgoing
/// connection is given one of them between the check and the servers' start.
const PORTS: Range<u16> = 20_000..32_000;
/// Random bases tried before giving up.
const ATTEMPTS: u64 = 1_000;

/// A base port `b` such that `b + offset` is free on 127.0.0.1 for every offset (each below
/// 1000), chosen at random and checked by binding every port.
pub(super) fn free_base(offsets: &[u16]) -> anyhow::Result<u16> {
    let span = offsets.iter().copied().max().unwrap_or(0) + 1;
    anyhow::ensure!(
        span <= 1000,
        "port offsets must be below 1000, got {}",
        span - 1
    );
    let choices = u64::from(PORTS.end - PORTS.start - span);
    let random = RandomState::new();
    for attempt in 0..ATTEMPTS {
        let base = PORTS.start + (random.hash_one((std::process::id(), attempt)) % choices) as u16;
        let bound: Result<Vec<TcpListener>, _> = offsets
            .iter()
            .map(|offset| TcpListener::bind(("127.0.0.1", base + offset)))
            .collect();
        if bound.is_ok() {
            return Ok(base);
        }
    }
    anyhow::bail!("no free ports on 127.0.0.1 for offsets {offsets:?} in {PORTS:?}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ports_of_a_free_base_can_be_bound() {
        let base = free_base(&[0, 1, 100]).expect("a free base");
        assert!(PORTS.contains(&base) && PORTS.contains(&(base + 100)));
        for offset in [0, 1, 100] {
            TcpListener::bind(("127.0.0.1", base + offset)).expect("still free");
        }
    }
}
