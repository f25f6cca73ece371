//! A whole round run in one process, every message delivered at once: for benchmarks and
//! for checking a set of keys end to end. No network, no faults.

use crate::{DkgError, Ledger, Output, Participant, Round};
use commonware_cryptography::{Signer as _, bls12381::primitives::group::Share};
use rand_core::CryptoRng;
use std::collections::VecDeque;
use welkin_types::PrivateKey;

/// Runs `round` among `keys` (each with its previous share, for a reshare; `shares` may be
/// empty for a first key): every dealer deals, every message is delivered, every log is
/// recorded; returns the output and each player's share, in the order of `keys`.
pub fn run_in_memory(
    rng: &mut impl CryptoRng,
    round: &Round,
    keys: &[PrivateKey],
    shares: &[Option<Share>],
) -> Result<(Output, Vec<Share>), DkgError> {
    let publics: Vec<_> = keys.iter().map(|k| k.public_key()).collect();
    let mut nodes = Vec::with_capacity(keys.len());
    let mut queue = VecDeque::new();
    for (i, key) in keys.iter().enumerate() {
        let share = shares.get(i).cloned().flatten();
        let (node, out) = Participant::start(&mut *rng, round.clone(), key, share)?;
        queue.extend(out.into_iter().map(|o| (i, o)));
        nodes.push(node);
    }
    while let Some((from, outgoing)) = queue.pop_front() {
        let Some(to) = publics.iter().position(|k| *k == outgoing.to) else {
            continue;
        };
        if let Some(reply) = nodes[to].handle(&publics[from], outgoing.message)? {
            queue.push_back((to, reply));
        }
    }
    let mut ledger = Ledger::new(round.clone());
    for node in &mut nodes {
        if let Some(log) = node.log() {
            ledger.record(log)?;
        }
    }
    let output = ledger.outcome(&mut *rng)?;
    let mut out = Vec::new();
    for node in nodes {
        if round.is_player(node.public_key()) {
            out.push(node.finish(&mut *rng, &ledger)?.1);
        }
    }
    Ok((output, out))
}
