//! `welkin bench --compare openbao-transit`: transit encrypt, decrypt and sign through the
//! Vault HTTP API, from the same load generator, against a fresh three-server OpenBao cluster
//! (one process holds each key) and then a fresh Welkin cluster (no node holds one), printed
//! side by side.
//!
//! Each side gets a transit mount, an encryption key (each side's default type: OpenBao's
//! aes256-gcm96, Welkin's chacha20-poly1305) and an ed25519 key, then these loads at 1 and 64
//! clients: encrypt 100 bytes; decrypt one of [`CIPHERTEXTS`] ciphertexts made before the
//! clock started (checking the plaintext); sign 100 bytes. On Welkin an encryption is
//! unlogged public-key work; a decryption and a signature are each a logged request answered
//! by t nodes together.

use super::{
    compare::utc_now,
    compare_openbao::{cpu_seconds, ratio},
    cores, interrupted,
    load::{self, LoadResult, Sent},
    openbao, vault, welkin,
};
use crate::cli::BenchArgs;
use anyhow::{Context as _, bail};
use base64::Engine as _;
use serde::Serialize;
use serde_json::{Value, json};
use std::{
    sync::Arc,
    time::{Duration, Instant},
};

/// What a load does.
#[derive(Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
enum Op {
    Encrypt,
    Decrypt,
    Sign,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Encrypt => "encrypt",
            Op::Decrypt => "decrypt",
            Op::Sign => "sign",
        }
    }
}

const LOADS: [(Op, usize); 6] = [
    (Op::Encrypt, 1),
    (Op::Encrypt, 64),
    (Op::Decrypt, 1),
    (Op::Decrypt, 64),
    (Op::Sign, 1),
    (Op::Sign, 64),
];
/// Ciphertexts made before the decrypt loads, which decrypt them in turn.
const CIPHERTEXTS: usize = 256;
/// How long a fresh side may take to encrypt and sign for the first time (Welkin's nodes
/// generate the signing key together first).
const READY_TIMEOUT: Duration = Duration::from_secs(90);
/// Longest wait for one request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
/// The goals.
const DECRYPTS_GOAL: f64 = 2_000.0;
const DECRYPT_P50_GOAL_MS: f64 = 50.0;
const SIGNS_GOAL: f64 = 1_000.0;
const ENCRYPT_RATIO_GOAL: f64 = 0.5;

/// Both sides of one load.
#[derive(Serialize)]
struct Row {
    load: String,
    op: Op,
    clients: usize,
    welkin: LoadResult,
    openbao: LoadResult,
    welkin_cpu_ms_per_op: Option<f64>,
    openbao_cpu_ms_per_op: Option<f64>,
    /// Welkin's operations per second over OpenBao's.
    ratio: Option<f64>,
    p50_ratio: Option<f64>,
}

/// The comparison, as written to --out.
#[derive(Serialize)]
struct Comparison {
    date: String,
    cores: usize,
    welkin_version: &'static str,
    openbao_version: &'static str,
    welkin_nodes: usize,
    openbao_servers: usize,
    plaintext_bytes: usize,
    duration_per_load_s: u64,
    loads: Vec<Row>,
}

pub(super) fn run(args: &BenchArgs, duration: Duration) -> anyhow::Result<()> {
    let bao = openbao::ensure_installed()?;
    let openbao = {
        let cluster = openbao::OpenBao::start(&bao)?;
        run_side(
            "openbao",
            &cluster.addrs,
            &cluster.token,
            &cluster.pids(),
            duration,
        )?
    };
    let cluster = welkin::FreshCluster::start()?;
    let token = cluster.root_token()?;
    let welkin = run_side("welkin", &cluster.apis, &token, &cluster.pids(), duration)?;
    let loads = LOADS
        .iter()
        .zip(welkin.into_iter().zip(openbao))
        .map(
            |(&(op, clients), ((welkin, welkin_cpu), (openbao, openbao_cpu)))| Row {
                load: format!(
                    "{}, {clients} client{}",
                    op.name(),
                    if clients == 1 { "" } else { "s" }
                ),
                op,
                clients,
                ratio: ratio(welkin.per_s, openbao.per_s),
                p50_ratio: ratio(welkin.latency_ms.p50, openbao.latency_ms.p50),
                welkin_cpu_ms_per_op: welkin_cpu,
                openbao_cpu_ms_per_op: openbao_cpu,
                welkin,
                openbao,
            },
        )
        .collect();
    let comparison = Comparison {
        date: utc_now(),
        cores: cores(),
        welkin_version: env!("CARGO_PKG_VERSION"),
        openbao_version: openbao::VERSION,
        welkin_nodes: cluster.apis.len(),
        openbao_servers: openbao::SERVERS,
        plaintext_bytes: vault::VALUE_BYTES,
        duration_per_load_s: duration.as_secs(),
        loads,
    };
    drop(cluster);
    print(&comparison);
    std::fs::write(&args.out, serde_json::to_string_pretty(&comparison)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// One request's JSON reply, if it answered 200 (or 204: `Some(Null)`).
fn call(agent: &ureq::Agent, method: &str, url: &str, token: &str, body: &Value) -> Option<Value> {
    let mut response = vault::request(agent, method, url, Some(token), body).ok()?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(vault::MAX_REPLY_BYTES)
        .read_to_string()
        .ok()?;
    match status {
        200 => serde_json::from_str(&text).ok(),
        204 => Some(Value::Null),
        _ => None,
    }
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// Mount, keys, a first encryption and a first signature, then the ciphertexts to decrypt.
fn prepare(side: &str, addr: &str, token: &str) -> anyhow::Result<Arc<Vec<String>>> {
    let agent = super::etcd::agent(REQUEST_TIMEOUT);
    let setup = [
        ("sys/mounts/transit", json!({"type": "transit"})),
        ("transit/keys/bench-enc", json!({})),
        ("transit/keys/bench-sign", json!({"type": "ed25519"})),
    ];
    for (path, body) in setup {
        call(&agent, "POST", &format!("{addr}/v1/{path}"), token, &body)
            .with_context(|| format!("{side}: POST /v1/{path} failed"))?;
    }
    let plaintext = b64(vault::value().as_bytes());
    let deadline = Instant::now() + READY_TIMEOUT;
    let sign = json!({"input": plaintext});
    while call(
        &agent,
        "POST",
        &format!("{addr}/v1/transit/sign/bench-sign"),
        token,
        &sign,
    )
    .is_none()
    {
        if interrupted() {
            bail!("interrupted");
        }
        if Instant::now() > deadline {
            bail!("{side} did not sign within {} s", READY_TIMEOUT.as_secs());
        }
        std::thread::sleep(Duration::from_millis(250));
    }
    let mut ciphertexts = Vec::with_capacity(CIPHERTEXTS);
    let body = json!({"plaintext": plaintext});
    for _ in 0..CIPHERTEXTS {
        let reply = call(
            &agent,
            "POST",
            &format!("{addr}/v1/transit/encrypt/bench-enc"),
            token,
            &body,
        )
        .with_context(|| format!("{side}: an encryption failed"))?;
        let ciphertext = reply["data"]["ciphertext"]
            .as_str()
            .with_context(|| format!("{side}: an encryption answered without a ciphertext"))?;
        ciphertexts.push(ciphertext.to_string());
    }
    Ok(Arc::new(ciphertexts))
}

/// A load worker for `op` against the server at `addr`.
fn worker(
    op: Op,
    addr: &str,
    token: &str,
    ciphertexts: Arc<Vec<String>>,
) -> impl FnMut(usize) -> Option<Sent> + Send + use<> {
    let agent = super::etcd::agent(REQUEST_TIMEOUT);
    let (addr, token) = (addr.to_string(), token.to_string());
    let plaintext = b64(vault::value().as_bytes());
    move |index| {
        let (path, body) = match op {
            Op::Encrypt => ("encrypt/bench-enc", json!({"plaintext": plaintext})),
            Op::Decrypt => (
                "decrypt/bench-enc",
                json!({"ciphertext": ciphertexts[index % ciphertexts.len()]}),
            ),
            Op::Sign => ("sign/bench-sign", json!({"input": plaintext})),
        };
        let reply = call(
            &agent,
            "POST",
            &format!("{addr}/v1/transit/{path}"),
            &token,
            &body,
        );
        let data = reply.as_ref().map(|r| &r["data"]);
        let counted = match op {
            Op::Encrypt => data
                .and_then(|d| d["ciphertext"].as_str())
                .is_some_and(|c| c.starts_with("vault:v")),
            Op::Decrypt => data.and_then(|d| d["plaintext"].as_str()) == Some(plaintext.as_str()),
            Op::Sign => data
                .and_then(|d| d["signature"].as_str())
                .is_some_and(|s| s.starts_with("vault:v")),
        };
        Some(Sent {
            items: 1,
            counted: usize::from(counted),
        })
    }
}

/// Every load against the servers at `addrs`, with the CPU milliseconds the processes `pids`
/// spent per operation counted.
fn run_side(
    side: &str,
    addrs: &[String],
    token: &str,
    pids: &[u32],
    duration: Duration,
) -> anyhow::Result<Vec<(LoadResult, Option<f64>)>> {
    eprintln!("{side}: preparing keys and {CIPHERTEXTS} ciphertexts");
    let ciphertexts = prepare(side, &addrs[0], token)?;
    let mut results = Vec::with_capacity(LOADS.len());
    for &(op, clients) in &LOADS {
        let label = format!("{side} {} x{clients}", op.name());
        let before = cpu_seconds(pids);
        let result = load::drive(&label, clients, duration, interrupted, |w| {
            worker(op, &addrs[w % addrs.len()], token, ciphertexts.clone())
        });
        if interrupted() {
            bail!("interrupted");
        }
        let cpu = match (before, cpu_seconds(pids)) {
            (Some(before), Some(after)) if result.committed > 0 => {
                Some((after - before) * 1_000.0 / result.committed as f64)
            }
            _ => None,
        };
        results.push((result, cpu));
    }
    Ok(results)
}

fn print(comparison: &Comparison) {
    println!(
        "\nTransit through the Vault HTTP API: Welkin {} ({} nodes, keys held by none) vs \
         OpenBao {} ({} servers, integrated Raft), {} s per load, {}-byte inputs, {} cores",
        comparison.welkin_version,
        comparison.welkin_nodes,
        comparison.openbao_version,
        comparison.openbao_servers,
        comparison.duration_per_load_s,
        comparison.plaintext_bytes,
        comparison.cores
    );
    println!(
        "{:<20} {:>9} {:>8} {:>8} {:>6}   {:>9} {:>8} {:>8} {:>6}   {:>6} {:>6}   {:>8} {:>8}",
        "load",
        "Welkin/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "OpenBao/s",
        "p50 ms",
        "p99 ms",
        "errors",
        "rate x",
        "p50 x",
        "W cpu ms",
        "B cpu ms"
    );
    let side = |r: &LoadResult| {
        format!(
            "{:>9.0} {:>8.1} {:>8.1} {:>6}",
            r.per_s, r.latency_ms.p50, r.latency_ms.p99, r.rejected
        )
    };
    let x = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}"));
    for row in &comparison.loads {
        println!(
            "{:<20} {}   {}   {:>6} {:>6}   {:>8} {:>8}",
            row.load,
            side(&row.welkin),
            side(&row.openbao),
            x(row.ratio),
            x(row.p50_ratio),
            x(row.welkin_cpu_ms_per_op),
            x(row.openbao_cpu_ms_per_op)
        );
    }
    println!("(x: Welkin over OpenBao; cpu: user + system ms of all servers per operation)");
    for row in comparison.loads.iter().filter(|r| r.clients > 1) {
        let (goal, met) = match row.op {
            Op::Encrypt => (
                format!("at least {ENCRYPT_RATIO_GOAL}x OpenBao's rate"),
                row.ratio.is_some_and(|r| r >= ENCRYPT_RATIO_GOAL),
            ),
            Op::Decrypt => (
                format!("{DECRYPTS_GOAL:.0}/s or more with p50 under {DECRYPT_P50_GOAL_MS:.0} ms"),
                row.welkin.per_s >= DECRYPTS_GOAL
                    && row.welkin.latency_ms.p50 < DECRYPT_P50_GOAL_MS,
            ),
            Op::Sign => (
                format!("{SIGNS_GOAL:.0}/s or more"),
                row.welkin.per_s >= SIGNS_GOAL,
            ),
        };
        println!(
            "goal: Welkin {} {goal}: {}",
            row.load,
            if met { "met" } else { "not met" }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_operation_runs_at_one_and_64_clients_decrypts_after_encrypts() {
        for op in [Op::Encrypt, Op::Decrypt, Op::Sign] {
            let clients: Vec<usize> = LOADS.iter().filter(|l| l.0 == op).map(|l| l.1).collect();
            assert_eq!(clients, [1, 64], "{}", op.name());
        }
        assert!(
            LOADS.iter().position(|l| l.0 == Op::Encrypt)
                < LOADS.iter().position(|l| l.0 == Op::Decrypt)
        );
    }
}
