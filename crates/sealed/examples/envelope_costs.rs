//! What the HPKE envelopes cost on this machine: sealing and opening a released partial, and
//! sealing to and opening as a recipient for 1, 8 and 64 recipients. Prints a table and writes
//! the figures as JSON to the path given (default `envelope-costs.json`).
//!
//! `cargo run -p welkin-sealed --example envelope_costs -- out.json`. The dependencies, where
//! the work happens (X25519, HKDF, ChaCha20-Poly1305, BLS12-381), are built with opt-level 3
//! even in the dev profile.

use commonware_cryptography::bls12381::{
    dkg::feldman_desmedt::deal_anonymous, primitives::sharing::Mode,
};
use commonware_utils::{N3f1, NZU32, rng::TestRng};
use std::time::Instant;
use welkin_sealed::{
    ReaderKey, ReleaseContext, open_as_recipient, partial, seal_partial, seal_to_recipients,
};
use welkin_types::{Variant, hash_parts};

/// Each operation runs this many times; the figure is the mean.
const ROUNDS: u32 = 2_000;

/// Runs `op` [`ROUNDS`] times and returns the mean in microseconds.
fn mean_micros(mut op: impl FnMut()) -> f64 {
    let start = Instant::now();
    for _ in 0..ROUNDS {
        op();
    }
    start.elapsed().as_secs_f64() * 1e6 / f64::from(ROUNDS)
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "envelope-costs.json".into());
    let mut rng = TestRng::new(1);
    let (_, shares) =
        deal_anonymous::<Variant, N3f1>(TestRng::new(2), Mode::NonZeroCounter, NZU32!(4));
    let context = ReleaseContext {
        cluster_id: hash_parts(&[b"cluster"]),
        read_id: hash_parts(&[b"read"]),
        target: hash_parts(&[b"target"]),
    };
    let sent = partial(&shares[0], &context.target);
    let reader = ReaderKey::generate(&mut rng);
    let envelope = seal_partial(&mut rng, &reader.public(), &context, &sent).expect("seals");
    let mut figures = vec![
        (
            "seal_partial".to_string(),
            mean_micros(|| {
                seal_partial(&mut rng, &reader.public(), &context, &sent).expect("seals");
            }),
        ),
        (
            "open_partial".to_string(),
            mean_micros(|| {
                reader.open_partial(&context, &envelope).expect("opens");
            }),
        ),
    ];
    let value = [7u8; 256];
    for n in [1usize, 8, 64] {
        let secrets: Vec<[u8; 32]> = (0..n)
            .map(|i| {
                hash_parts(&[b"recipient", &(i as u64).to_be_bytes()])
                    .as_ref()
                    .try_into()
                    .expect("32 bytes")
            })
            .collect();
        let publics: Vec<[u8; 32]> = secrets
            .iter()
            .map(|secret| {
                x25519_dalek::PublicKey::from(&x25519_dalek::StaticSecret::from(*secret)).to_bytes()
            })
            .collect();
        let sealed = seal_to_recipients(&mut rng, &publics, b"aad", &value).expect("seals");
        figures.push((
            format!("seal_to_recipients/{n}/256B"),
            mean_micros(|| {
                seal_to_recipients(&mut rng, &publics, b"aad", &value).expect("seals");
            }),
        ));
        figures.push((
            format!("open_as_recipient/{n}/256B"),
            mean_micros(|| {
                open_as_recipient(&secrets[n - 1], b"aad", &sealed).expect("opens");
            }),
        ));
    }
    println!("{:<32} {:>12}", "operation", "mean µs");
    for (name, micros) in &figures {
        println!("{name:<32} {micros:>12.1}");
    }
    let json = figures
        .iter()
        .map(|(name, micros)| {
            format!(
                "  {{\"operation\": \"{name}\", \"mean_us\": {micros:.1}, \"rounds\": {ROUNDS}}}"
            )
        })
        .collect::<Vec<_>>()
        .join(",\n");
    std::fs::write(&out, format!("[\n{json}\n]\n")).expect("writes the figures");
    println!("wrote {out}");
}
