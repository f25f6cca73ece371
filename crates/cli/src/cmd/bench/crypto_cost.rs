//! The CPU cost of each cryptographic step of a KV v2 write and of a logged read, measured
//! in this process on one thread, and the ceiling those costs put on a cluster.
//!
//! What is **measured**: each step's CPU time per operation (the thread's own CPU time from
//! `/proc/thread-self/schedstat`, or wall-clock time where that is missing), with the same
//! library calls the nodes make, on a 4-member sharing dealt here. What is **computed** from
//! it: the CPU the whole cluster spends on crypto per write and per read (each step times
//! the number of times the cluster does it), and the rate at which that alone would fill
//! every core: `cores / cluster CPU per operation`. That is a ceiling, not a prediction: a
//! node also spends CPU on consensus, storage, HTTP and the kernel.

use commonware_cryptography::bls12381::{
    dkg::feldman_desmedt::deal_anonymous, primitives::sharing::Mode,
};
use commonware_utils::{N3f1, NZU32};
use serde::Serialize;
use std::time::{Duration, Instant};
use welkin_sealed::{Opener, ReaderKey, ReleaseContext};
use welkin_types::{
    Payload, Sender, Transaction, hash_parts,
    secrets::{SecretsOp, token_signing_key},
};

/// Nodes of the cluster the costs are computed for (a local `welkin dev` cluster).
const NODES: u32 = 4;
/// Each step runs at least this long and at least [`MIN_RUNS`] times.
const MIN_TIME: Duration = Duration::from_millis(300);
const MIN_RUNS: u32 = 20;

/// One step: what it costs and how often a write and a read make the cluster do it.
#[derive(Serialize)]
pub(super) struct Step {
    name: &'static str,
    /// Where it runs.
    on: &'static str,
    /// Measured: CPU microseconds per call.
    measured_us: f64,
    /// Calls per KV v2 write, over the whole cluster.
    per_write: u32,
    /// Calls per logged read, over the whole cluster (honest members: the fast path).
    per_read: u32,
}

/// The measured steps and what they imply.
#[derive(Serialize)]
pub(super) struct CryptoCosts {
    /// How each step was timed.
    clock: &'static str,
    nodes: u32,
    threshold: u32,
    cores: usize,
    steps: Vec<Step>,
    /// Computed: cluster CPU milliseconds of crypto per write and per read.
    pub(super) write_cluster_ms: f64,
    pub(super) read_cluster_ms: f64,
    /// Computed: `cores / cluster CPU per operation`, the rate at which crypto alone fills
    /// this machine's cores with every node on it.
    write_ceiling_per_s: f64,
    read_ceiling_per_s: f64,
    /// Computed: the same with each node on a machine of its own with this machine's cores
    /// (`nodes x cores / cluster CPU per operation`, serving nodes taken in turn).
    write_ceiling_per_s_one_machine_per_node: f64,
    read_ceiling_per_s_one_machine_per_node: f64,
}

/// Measures every step; takes a few seconds of one core.
pub(super) fn measure(cores: usize) -> anyhow::Result<CryptoCosts> {
    let (sharing, shares) = deal_anonymous::<welkin_types::Variant, N3f1>(
        commonware_utils::sys_rng(),
        Mode::NonZeroCounter,
        NZU32!(NODES),
    );
    let threshold = sharing.required();
    let mut rng = commonware_utils::sys_rng();
    // The plaintext the Vault API seals for the benchmark's write: `{"value": "<100 bytes>"}`.
    let plaintext =
        serde_json::to_vec(&serde_json::json!({ "value": super::vault::value().as_str() }))?;
    let target = welkin_sealed::target(&[b"kv2", b"secret", b"bench/c64/0/0"], &[7; 32]);
    let sealed = welkin_sealed::seal(&mut rng, sharing.public(), target, &plaintext)?;
    let reader = ReaderKey::generate(&mut rng);
    let context = ReleaseContext {
        cluster_id: hash_parts(&[b"bench cluster"]),
        read_id: hash_parts(&[b"bench read"]),
        target,
    };
    let partials: Vec<_> = shares
        .iter()
        .map(|share| welkin_sealed::partial(share, &target))
        .collect();
    let envelope = welkin_sealed::seal_partial(&mut rng, &reader.public(), &context, &partials[0])?;
    let token = "bench-token";
    let unsigned = Transaction {
        sender: Sender::Key(commonware_cryptography::Signer::public_key(
            &token_signing_key(token),
        )),
        nonce: 1,
        expiry_ms: u64::MAX,
        payload: Payload::Secrets(Box::new(SecretsOp::KvRead {
            mount: "secret".into(),
            path: "read/0/0".into(),
            version: 0,
            reader: reader.public(),
        })),
    };
    let signed = unsigned
        .clone()
        .sign(&token_signing_key(token), &context.cluster_id);

    let (n, t) = (NODES, threshold);
    let steps = vec![
        Step {
            name: "sign the request (token key, ed25519)",
            on: "serving node",
            measured_us: time(|| {
                unsigned
                    .clone()
                    .sign(&token_signing_key(token), &context.cluster_id)
            }),
            per_write: 1,
            per_read: 1,
        },
        Step {
            name: "verify the request's signature",
            on: "every node",
            measured_us: time(|| signed.verify(&context.cluster_id)),
            per_write: n,
            per_read: n,
        },
        Step {
            name: "seal a value (tle + aead)",
            on: "serving node",
            measured_us: time(|| {
                welkin_sealed::seal(&mut rng, sharing.public(), target, &plaintext)
            }),
            per_write: 1,
            per_read: 0,
        },
        Step {
            name: "one-time reader key (x25519)",
            on: "serving node",
            measured_us: time(|| ReaderKey::generate(&mut commonware_utils::sys_rng())),
            per_write: 0,
            per_read: 1,
        },
        Step {
            name: "partial signature (bls)",
            on: "every node",
            measured_us: time(|| welkin_sealed::partial(&shares[0], &target)),
            per_write: 0,
            per_read: n,
        },
        Step {
            name: "seal a partial to the reader (hpke)",
            on: "every node",
            measured_us: time(|| {
                welkin_sealed::seal_partial(&mut rng, &reader.public(), &context, &partials[0])
            }),
            per_write: 0,
            per_read: n,
        },
        Step {
            name: "open an envelope (hpke)",
            on: "serving node",
            measured_us: time(|| reader.open_partial(&context, &envelope)),
            per_write: 0,
            per_read: t,
        },
        Step {
            name: "recover and open the value (t unverified partials)",
            on: "serving node",
            measured_us: time(|| {
                welkin_sealed::open_unverified(&sharing, &partials[..t as usize], &sealed)
            }),
            per_write: 0,
            per_read: 1,
        },
        Step {
            name: "verify one partial (only when a recovery fails)",
            on: "serving node",
            measured_us: time(|| Opener::new(&sharing, target).add(partials[0].clone())),
            per_write: 0,
            per_read: 0,
        },
    ];
    Ok(implied(steps, n, t, cores, clock_name()))
}

/// What `steps` imply for a cluster of `nodes` on `cores` cores (see [`CryptoCosts`]).
fn implied(
    steps: Vec<Step>,
    nodes: u32,
    threshold: u32,
    cores: usize,
    clock: &'static str,
) -> CryptoCosts {
    let cluster_ms = |count: fn(&Step) -> u32| {
        steps
            .iter()
            .map(|s| s.measured_us * f64::from(count(s)))
            .sum::<f64>()
            / 1_000.0
    };
    let write_cluster_ms = cluster_ms(|s| s.per_write);
    let read_cluster_ms = cluster_ms(|s| s.per_read);
    let ceiling = |cores: f64, ms: f64| if ms > 0.0 { cores * 1_000.0 / ms } else { 0.0 };
    let machine = cores as f64;
    let cluster = machine * f64::from(nodes);
    CryptoCosts {
        clock,
        nodes,
        threshold,
        cores,
        write_ceiling_per_s: ceiling(machine, write_cluster_ms),
        read_ceiling_per_s: ceiling(machine, read_cluster_ms),
        write_ceiling_per_s_one_machine_per_node: ceiling(cluster, write_cluster_ms),
        read_ceiling_per_s_one_machine_per_node: ceiling(cluster, read_cluster_ms),
        write_cluster_ms,
        read_cluster_ms,
        steps,
    }
}

/// Runs `step` at least [`MIN_RUNS`] times and [`MIN_TIME`]; returns its CPU microseconds per
/// call.
fn time<T>(mut step: impl FnMut() -> T) -> f64 {
    // One call first, outside the clock (lazy tables, first allocations).
    std::hint::black_box(step());
    let (start, wall) = (cpu_ns(), Instant::now());
    let mut runs = 0u32;
    while runs < MIN_RUNS || wall.elapsed() < MIN_TIME {
        std::hint::black_box(step());
        runs += 1;
    }
    let spent_ns = match (start, cpu_ns()) {
        (Some(start), Some(end)) => end.saturating_sub(start) as f64,
        _ => wall.elapsed().as_nanos() as f64,
    };
    spent_ns / f64::from(runs) / 1_000.0
}

/// This thread's CPU time in nanoseconds (Linux: the first field of
/// `/proc/thread-self/schedstat`).
pub(super) fn cpu_ns() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").ok()?;
    text.split_whitespace().next()?.parse().ok()
}

pub(super) fn clock_name() -> &'static str {
    if cpu_ns().is_some() {
        "thread CPU time (/proc/thread-self/schedstat)"
    } else {
        "wall-clock time (no per-thread CPU clock here)"
    }
}

/// Prints the steps and the ceilings, beside the measured rates of the heaviest loads.
pub(super) fn print(costs: &CryptoCosts, write_per_s: Option<f64>, read_per_s: Option<f64>) {
    println!(
        "\ncrypto per operation, measured in this process on one thread ({}), {} nodes, \
         threshold {}:",
        costs.clock, costs.nodes, costs.threshold
    );
    println!(
        "{:<52} {:>9} {:>6} {:>6}  on",
        "step", "us/call", "write", "read"
    );
    for step in &costs.steps {
        println!(
            "{:<52} {:>9.1} {:>6} {:>6}  {}",
            step.name, step.measured_us, step.per_write, step.per_read, step.on
        );
    }
    let measured = |rate: Option<f64>, ceiling: f64| match rate {
        Some(rate) if ceiling > 0.0 => format!(
            "; the heaviest load measured {rate:.0}/s, {:.0}% of it",
            100.0 * rate / ceiling
        ),
        _ => String::new(),
    };
    println!(
        "computed: cluster crypto CPU per write {:.2} ms -> {} cores fill at {:.0} writes/s{}",
        costs.write_cluster_ms,
        costs.cores,
        costs.write_ceiling_per_s,
        measured(write_per_s, costs.write_ceiling_per_s)
    );
    println!(
        "computed: cluster crypto CPU per read  {:.2} ms -> {} cores fill at {:.0} reads/s{}",
        costs.read_cluster_ms,
        costs.cores,
        costs.read_ceiling_per_s,
        measured(read_per_s, costs.read_ceiling_per_s)
    );
    println!(
        "computed: one machine of {} cores per node: {:.0} writes/s, {:.0} reads/s (crypto only)",
        costs.cores,
        costs.write_ceiling_per_s_one_machine_per_node,
        costs.read_ceiling_per_s_one_machine_per_node
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn step(measured_us: f64, per_write: u32, per_read: u32) -> Step {
        Step {
            name: "step",
            on: "node",
            measured_us,
            per_write,
            per_read,
        }
    }

    #[test]
    fn the_ceiling_is_the_cores_over_the_cluster_cpu_per_operation() {
        // A write: one 1 ms step. A read: four 0.25 ms steps and one 1.5 ms step = 2.5 ms.
        let costs = implied(
            vec![step(1_000.0, 1, 0), step(250.0, 0, 4), step(1_500.0, 0, 1)],
            4,
            3,
            2,
            "test",
        );
        assert!((costs.write_cluster_ms - 1.0).abs() < 1e-9);
        assert!((costs.read_cluster_ms - 2.5).abs() < 1e-9);
        assert!((costs.write_ceiling_per_s - 2_000.0).abs() < 1e-6);
        assert!((costs.read_ceiling_per_s - 800.0).abs() < 1e-6);
        // Four machines of two cores each: four times the cores.
        assert!((costs.read_ceiling_per_s_one_machine_per_node - 3_200.0).abs() < 1e-6);
    }

    #[test]
    fn steps_are_timed_in_cpu_time_not_sleep() {
        if cpu_ns().is_none() {
            return;
        }
        // Sleeping 2 ms costs almost no CPU: a wall clock would give about 2,000 us.
        let us = time(|| std::thread::sleep(Duration::from_millis(2)));
        assert!(us < 1_000.0, "{us} us of CPU per 2 ms sleep");
    }
}
