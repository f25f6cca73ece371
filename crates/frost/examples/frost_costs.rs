//! What FROST costs on this machine, per operation, for 3-of-4 and 7-of-10 keys: a whole key
//! generation (every participant, in one process), the state machine's round-1 check, issuing
//! a nonce, a signer's share, the coordinator's check of one share, and aggregation. Prints a
//! table and writes the figures as JSON to the path given (default `frost-costs.json`).
//!
//! `cargo run -p welkin-frost --example frost_costs -- out.json`. The dependencies, where the
//! work happens (curve25519, SHA-512), are built with opt-level 3 even in the dev profile.

use rand_chacha::{ChaCha20Rng, rand_core::SeedableRng};
use std::{collections::BTreeMap, time::Instant};
use welkin_frost::{
    Coordinator, DkgConfig, DkgRound1, Index, KeyShare, PublicKeys, Signer, check_round1,
};

/// Runs `op` `rounds` times and returns the mean in microseconds.
fn mean_micros(rounds: u32, mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..rounds {
        op();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(rounds)
}

/// A whole key generation among `config`'s participants.
fn dkg(config: &DkgConfig, rng: &mut ChaCha20Rng) -> (Vec<KeyShare>, PublicKeys) {
    let mut states = BTreeMap::new();
    let mut committed = BTreeMap::new();
    for &me in config.participants() {
        let (state, package) = DkgRound1::start(config, me, rng).expect("starts");
        states.insert(me, state);
        committed.insert(me, package);
    }
    let mut seconds = BTreeMap::new();
    let mut inbox: BTreeMap<Index, BTreeMap<Index, _>> = BTreeMap::new();
    for (me, state) in states {
        let (second, outgoing) = state.round2(&committed).expect("round 2");
        seconds.insert(me, second);
        for (to, package) in outgoing {
            inbox.entry(to).or_default().insert(me, package);
        }
    }
    let mut shares = Vec::new();
    let mut public = None;
    for (me, second) in seconds {
        let (share, keys) = second.finish(&inbox[&me]).expect("finishes");
        shares.push(share);
        public = Some(keys);
    }
    (shares, public.expect("participants"))
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "frost-costs.json".into());
    let mut rng = ChaCha20Rng::from_seed([1; 32]);
    let mut figures: Vec<(String, u32, f64)> = Vec::new();
    let message = [7u8; 64];
    for (n, t) in [(4u16, 3u16), (10, 7)] {
        let config = DkgConfig::new(0..n, t).expect("config");
        let label = |op: &str| format!("{op}/{t}-of-{n}");
        figures.push((
            label("dkg_all_participants"),
            10,
            mean_micros(10, || {
                dkg(&config, &mut rng);
            }),
        ));
        let (_, package) = DkgRound1::start(&config, 0, &mut rng).expect("starts");
        figures.push((
            label("check_round1"),
            500,
            mean_micros(500, || check_round1(&config, 0, &package).expect("valid")),
        ));
        let (shares, public) = dkg(&config, &mut rng);
        let mut signers: Vec<Signer> = shares
            .iter()
            .map(|s| Signer::new(s.index(), &mut rng).expect("signer"))
            .collect();
        figures.push((
            label("issue_one_nonce"),
            500,
            mean_micros(500, || {
                signers[0].issue(1, 1, &mut rng).expect("issues");
            }),
        ));
        // Sessions: each round issues fresh nonces, signs with t signers, checks and aggregates.
        let rounds = 200u32;
        let (mut sign_us, mut verify_us, mut aggregate_us) = (0.0, 0.0, 0.0);
        for _ in 0..rounds {
            let mut coordinator = Coordinator::new();
            for signer in signers.iter_mut().take(t.into()) {
                let issued = signer.issue(0, 1, &mut rng).expect("issues");
                coordinator.add(signer.index(), &issued).expect("adds");
            }
            let session = coordinator
                .session(&public, &message, &Default::default())
                .expect("session");
            let mut sig_shares = BTreeMap::new();
            let start = Instant::now();
            for (signer, key) in signers.iter_mut().zip(&shares).take(t.into()) {
                let share = signer
                    .sign(0, key, &message, session.request())
                    .expect("signs");
                sig_shares.insert(signer.index(), share);
            }
            sign_us += start.elapsed().as_secs_f64() * 1e6 / f64::from(t);
            let start = Instant::now();
            for (&index, share) in &sig_shares {
                session.verify_share(index, share).expect("valid");
            }
            verify_us += start.elapsed().as_secs_f64() * 1e6 / f64::from(t);
            let start = Instant::now();
            session.aggregate(&sig_shares).expect("aggregates");
            aggregate_us += start.elapsed().as_secs_f64() * 1e6;
        }
        let mean = |total: f64| total / f64::from(rounds);
        figures.push((label("sign_share"), rounds, mean(sign_us)));
        figures.push((label("verify_one_share"), rounds, mean(verify_us)));
        figures.push((label("aggregate_checked"), rounds, mean(aggregate_us)));
    }
    println!("{:<32} {:>8} {:>12}", "operation", "rounds", "mean µs");
    for (name, rounds, micros) in &figures {
        println!("{name:<32} {rounds:>8} {micros:>12.1}");
    }
    let json = figures
        .iter()
        .map(|(name, rounds, micros)| {
            format!(
                "  {{\"operation\": \"{name}\", \"mean_us\": {micros:.1}, \"rounds\": {rounds}}}"
            )
        })
        .collect::<Vec<_>>()
        .join(",\n");
    std::fs::write(&out, format!("[\n{json}\n]\n")).expect("writes the figures");
    println!("wrote {out}");
}
