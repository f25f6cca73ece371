//! `welkin bench --compare roughenough`: time certificates per second and their latency on a
//! fresh 4-node cluster, then Roughtime replies per second from one of its nodes and from
//! roughenough-server (the reference Roughtime server on crates.io), side by side while the
//! cluster runs.

use super::{
    compare::utc_now,
    cores, interrupted,
    load::{self, LoadResult, Sent},
    openbao::cache_dir,
    welkin::FreshCluster,
};
use crate::cli::BenchArgs;
use anyhow::{Context as _, bail};
use serde::Serialize;
use std::{
    net::{SocketAddr, UdpSocket},
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::{Arc, Mutex},
    time::{Duration, Instant},
};

/// The reference server, pinned.
const REFERENCE_VERSION: &str = "2.2.0";
/// Certificate loads: clients.
const LOADS: [usize; 3] = [1, 16, 64];
/// Roughtime requests one client keeps in flight.
const WINDOW: usize = 64;
/// Longest wait for one certificate.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// The goal for a certificate's median latency.
const P50_GOAL_MS: f64 = 20.0;

/// One certificate load.
#[derive(Serialize)]
struct CertificateLoad {
    clients: usize,
    result: LoadResult,
    /// The certified radius, median and largest, in ms.
    radius_p50_ms: f64,
    radius_max_ms: f64,
}

/// The comparison, as written to --out.
#[derive(Serialize)]
struct Comparison {
    date: String,
    cores: usize,
    welkin_version: &'static str,
    welkin_nodes: usize,
    duration_per_load_s: u64,
    certificates: Vec<CertificateLoad>,
    /// The nodes' own clock radii when the loads ended, in ms, and whether hosts are synced.
    node_radius_ms: Vec<f64>,
    hosts_synced: bool,
    /// The spread of the nodes' clock offsets (largest minus smallest), in ms.
    node_spread_ms: f64,
    roughtime_welkin_per_s: f64,
    roughtime_reference_per_s: f64,
    reference: String,
    roughtime_ratio: f64,
}

pub(super) fn run(args: &BenchArgs, duration: Duration) -> anyhow::Result<()> {
    let reference = reference_server()?;
    let cluster = FreshCluster::start()?;
    let api = cluster.apis[0].clone();
    let genesis =
        welkin_types::Genesis::from_json(&std::fs::read_to_string(cluster.genesis_path())?)?;
    first_certificate(&api, &genesis)?;
    let mut certificates = Vec::new();
    for clients in LOADS {
        let radii = Arc::new(Mutex::new(Vec::new()));
        let result = load::drive(
            &format!("certificates x{clients}"),
            clients,
            duration,
            interrupted,
            |w| worker(&cluster.apis[w % cluster.apis.len()], w, radii.clone()),
        );
        if interrupted() {
            bail!("interrupted");
        }
        let mut radii = radii.lock().expect("radii lock").clone();
        radii.sort_unstable();
        let ms = |ns: u64| ns as f64 / 1e6;
        certificates.push(CertificateLoad {
            clients,
            result,
            radius_p50_ms: radii.get(radii.len() / 2).copied().map_or(0.0, ms),
            radius_max_ms: radii.last().copied().map_or(0.0, ms),
        });
    }
    let status = welkin_client::Client::new(&api).time_status()?;
    let offsets: Vec<i64> = status.nodes.iter().map(|n| n.offset_ns).collect();
    let spread =
        offsets.iter().max().copied().unwrap_or(0) - offsets.iter().min().copied().unwrap_or(0);

    // Roughtime: the node whose API is the first port, and the reference, loaded alike while
    // the cluster runs (both compete with it for the same cores).
    let ours = SocketAddr::from(([127, 0, 0, 1], cluster.base + 200));
    let requests = roughtime_requests();
    wait_for_answer(ours, &requests[0])?;
    let welkin_per_s = replies_per_second(ours, &requests, duration)?;
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let reference_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let mut child = ReferenceServer(
        Command::new(&reference)
            .args([
                "--insecure-zero-seed",
                "--quiet",
                "--interface",
                "127.0.0.1",
            ])
            .args(["--port", &port.to_string(), "--num-threads", "1"])
            .args(["--batch-size", "64"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .with_context(|| format!("cannot start {}", reference.display()))?,
    );
    wait_for_answer(reference_addr, &requests[0])?;
    let reference_per_s = replies_per_second(reference_addr, &requests, duration)?;
    child.stop();
    let comparison = Comparison {
        date: utc_now(),
        cores: cores(),
        welkin_version: env!("CARGO_PKG_VERSION"),
        welkin_nodes: cluster.apis.len(),
        duration_per_load_s: duration.as_secs(),
        certificates,
        node_radius_ms: status
            .nodes
            .iter()
            .map(|n| n.radius_ns as f64 / 1e6)
            .collect(),
        hosts_synced: status.nodes.iter().all(|n| n.synced),
        node_spread_ms: spread as f64 / 1e6,
        roughtime_welkin_per_s: welkin_per_s,
        roughtime_reference_per_s: reference_per_s,
        reference: format!("roughenough-server {REFERENCE_VERSION}"),
        roughtime_ratio: welkin_per_s / reference_per_s.max(f64::MIN_POSITIVE),
    };
    drop(cluster);
    print(&comparison);
    std::fs::write(&args.out, serde_json::to_string_pretty(&comparison)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// Checks one certificate against the cluster key from the genesis file, waiting for the
/// cluster's first agreement.
fn first_certificate(api: &str, genesis: &welkin_types::Genesis) -> anyhow::Result<()> {
    let client = welkin_client::Client::new(api);
    let deadline = Instant::now() + Duration::from_secs(30);
    let trusted = loop {
        match client.trusted(genesis) {
            Ok(trusted) => break trusted,
            Err(e) if Instant::now() > deadline => bail!("no proven cluster key within 30 s: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    };
    let nonce = [7u8; 32];
    loop {
        match client.time(&nonce) {
            Ok(response) => {
                let bytes = hex::decode(&response.certificate)?;
                let certified = welkin_types::decode::<welkin_time::CertifiedTime>(&bytes)
                    .map_err(|e| anyhow::anyhow!("a certificate does not decode: {e}"))?;
                certified
                    .verify_for(&nonce, &trusted.cluster_id, &trusted.cluster_key)
                    .map_err(|e| anyhow::anyhow!("a certificate does not verify: {e}"))?;
                eprintln!("a certificate verified against the cluster key");
                return Ok(());
            }
            Err(e) if Instant::now() > deadline => bail!("no certificate within 30 s: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// A certificate worker: a fresh nonce per request; counts a 200 with a certificate and keeps
/// its radius.
fn worker(
    api: &str,
    w: usize,
    radii: Arc<Mutex<Vec<u64>>>,
) -> impl FnMut(usize) -> Option<Sent> + Send + use<> {
    let agent = super::etcd::agent(REQUEST_TIMEOUT);
    let api = api.to_string();
    move |index| {
        let mut nonce = [0u8; 32];
        nonce[..8].copy_from_slice(&(w as u64).to_be_bytes());
        nonce[8..16].copy_from_slice(&(index as u64).to_be_bytes());
        nonce[16..24].copy_from_slice(&(std::process::id() as u64).to_be_bytes());
        let url = format!("{api}/v1/time?nonce={}", hex::encode(nonce));
        let reply: Option<serde_json::Value> = agent
            .get(&url)
            .call()
            .ok()
            .filter(|r| r.status().as_u16() == 200)
            .and_then(|mut r| r.body_mut().read_json().ok());
        let radius = reply
            .as_ref()
            .filter(|r| r["certificate"].is_string())
            .and_then(|r| r["radius_ns"].as_u64());
        if let Some(radius) = radius {
            radii.lock().expect("radii lock").push(radius);
        }
        Some(Sent {
            items: 1,
            counted: usize::from(radius.is_some()),
        })
    }
}

/// RFC Roughtime requests with distinct nonces.
fn roughtime_requests() -> Vec<Vec<u8>> {
    (0..1024u32)
        .map(|i| {
            let mut nonce = [0u8; 32];
            nonce[..4].copy_from_slice(&i.to_le_bytes());
            welkin_roughtime::request(welkin_roughtime::Version::Rfc1, &nonce, None)
        })
        .collect()
}

/// Waits (up to 30 s) until `addr` answers a request.
fn wait_for_answer(addr: SocketAddr, request: &[u8]) -> anyhow::Result<()> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(200)))?;
    let start = Instant::now();
    let mut buffer = [0u8; 2048];
    while start.elapsed() < Duration::from_secs(30) {
        socket.send_to(request, addr)?;
        if socket.recv_from(&mut buffer).is_ok() {
            return Ok(());
        }
    }
    bail!("the Roughtime server at {addr} never answered")
}

/// Replies per second from `addr` to one client keeping [`WINDOW`] requests in flight.
fn replies_per_second(
    addr: SocketAddr,
    requests: &[Vec<u8>],
    duration: Duration,
) -> anyhow::Result<f64> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(Duration::from_millis(100)))?;
    let mut next = 0usize;
    let mut send = |count: usize| -> std::io::Result<()> {
        for _ in 0..count {
            socket.send_to(&requests[next % requests.len()], addr)?;
            next += 1;
        }
        Ok(())
    };
    send(WINDOW)?;
    let mut buffer = [0u8; 2048];
    let mut replies = 0u64;
    let start = Instant::now();
    while start.elapsed() < duration && !interrupted() {
        match socket.recv_from(&mut buffer) {
            Ok(_) => {
                replies += 1;
                send(1)?;
            }
            // Everything in flight was lost: start the window again.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => send(WINDOW)?,
            Err(e) => return Err(e.into()),
        }
    }
    eprintln!("roughtime {addr}: {replies} replies");
    Ok(replies as f64 / start.elapsed().as_secs_f64())
}

/// roughenough-server from crates.io, installed once into the cache directory.
fn reference_server() -> anyhow::Result<PathBuf> {
    let root = cache_dir()?.join(format!("roughenough-server-{REFERENCE_VERSION}"));
    let binary = root.join("bin").join("roughenough_server");
    if binary.exists() {
        return Ok(binary);
    }
    eprintln!(
        "installing roughenough-server {REFERENCE_VERSION} from crates.io into {} (once)",
        root.display()
    );
    let status = Command::new("cargo")
        .args(["install", "--quiet", "--locked", "--root"])
        .arg(&root)
        .args([
            "--version",
            &format!("={REFERENCE_VERSION}"),
            "roughenough-server",
        ])
        .status()
        .context(
            "cannot run cargo to install roughenough-server; is a Rust toolchain on the PATH?",
        )?;
    if !status.success() || !binary.exists() {
        bail!("cargo install roughenough-server {REFERENCE_VERSION} failed ({status})");
    }
    Ok(binary)
}

/// The reference server's process, stopped when dropped.
struct ReferenceServer(Child);

impl ReferenceServer {
    fn stop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Drop for ReferenceServer {
    fn drop(&mut self) {
        self.stop();
    }
}

fn print(comparison: &Comparison) {
    println!(
        "\nTime certificates: Welkin {} ({} nodes), {} s per load, {} cores",
        comparison.welkin_version,
        comparison.welkin_nodes,
        comparison.duration_per_load_s,
        comparison.cores
    );
    println!(
        "{:<10} {:>10} {:>8} {:>8} {:>7} {:>12} {:>12}",
        "clients", "certs/s", "p50 ms", "p99 ms", "errors", "radius p50", "radius max"
    );
    for load in &comparison.certificates {
        println!(
            "{:<10} {:>10.0} {:>8.1} {:>8.1} {:>7} {:>9.1} ms {:>9.1} ms",
            load.clients,
            load.result.per_s,
            load.result.latency_ms.p50,
            load.result.latency_ms.p99,
            load.result.rejected,
            load.radius_p50_ms,
            load.radius_max_ms
        );
    }
    println!(
        "node clocks: {} hosts, radius {:?} ms, offsets spread over {:.3} ms",
        if comparison.hosts_synced {
            "synchronised"
        } else {
            "free-running (not synchronised)"
        },
        comparison
            .node_radius_ms
            .iter()
            .map(|r| (r * 10.0).round() / 10.0)
            .collect::<Vec<_>>(),
        comparison.node_spread_ms
    );
    println!(
        "Roughtime, one client with {WINDOW} in flight: Welkin node {:.0}/s, {} {:.0}/s, ratio {:.2}",
        comparison.roughtime_welkin_per_s,
        comparison.reference,
        comparison.roughtime_reference_per_s,
        comparison.roughtime_ratio
    );
    let single = &comparison.certificates[0];
    println!(
        "goal: a certificate in under {P50_GOAL_MS:.0} ms p50 (1 client): {} ({:.1} ms)",
        if single.result.latency_ms.p50 < P50_GOAL_MS {
            "met"
        } else {
            "not met"
        },
        single.result.latency_ms.p50
    );
    let bound = comparison.node_spread_ms + single.result.latency_ms.p50;
    println!(
        "goal: radius no wider than the nodes' spread plus one round trip ({bound:.1} ms): {} ({:.1} ms){}",
        if single.radius_p50_ms <= bound {
            "met"
        } else {
            "not met"
        },
        single.radius_p50_ms,
        if comparison.hosts_synced {
            ""
        } else {
            "; the hosts are not synchronised, so each clock's honest radius is its configured initial one"
        }
    );
    println!(
        "goal: Roughtime at least the reference's rate: {}",
        if comparison.roughtime_ratio >= 1.0 {
            "met"
        } else {
            "not met"
        }
    );
}
