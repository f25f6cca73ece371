//! Roughtime throughput, side by side: this crate's server and roughenough-server (the
//! reference Rust server on crates.io, built once with `cargo install --locked`), each with one
//! worker and batches of up to 64, loaded the same way from one client on loopback. A
//! benchmark, so ignored by default:
//!
//! `cargo test -p welkin-cli --test processes -- --ignored --nocapture roughtime_throughput`
//!
//! It prints replies per second and writes them as JSON to
//! `target/roughtime-throughput.json`.

use std::{
    net::{SocketAddr, UdpSocket},
    path::PathBuf,
    process::Command,
    sync::atomic::Ordering::Relaxed,
    time::{Duration, Instant},
};

use super::time_clients::{Running, Servers, cargo_binary, tools};
use welkin_roughtime::Version;

/// roughenough-server, pinned.
const REFERENCE: &str = "2.2.0";
/// How long each server is loaded.
const LOAD: Duration = Duration::from_secs(5);
/// Requests the client keeps in flight.
const WINDOW: usize = 64;

/// The `roughenough_server` binary from crates.io.
fn roughenough_server() -> PathBuf {
    cargo_binary("roughenough-server", REFERENCE, "roughenough_server")
}

/// Replies per second from `addr` to one client that keeps [`WINDOW`] requests in flight.
fn replies_per_second(addr: SocketAddr, requests: &[Vec<u8>]) -> f64 {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(100)))
        .expect("timeout");
    let mut next = 0usize;
    let mut send = |count: usize| {
        for _ in 0..count {
            socket
                .send_to(&requests[next % requests.len()], addr)
                .expect("send");
            next += 1;
        }
    };
    send(WINDOW);
    let mut buffer = [0u8; 2048];
    let mut replies = 0u64;
    let start = Instant::now();
    while start.elapsed() < LOAD {
        match socket.recv_from(&mut buffer) {
            Ok(_) => {
                replies += 1;
                send(1);
            }
            // Everything in flight was lost: start the window again.
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => send(WINDOW),
            Err(e) => panic!("receive: {e}"),
        }
    }
    replies as f64 / start.elapsed().as_secs_f64()
}

/// Waits until `addr` answers a request.
fn wait_for_answer(addr: SocketAddr, request: &[u8]) {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .expect("timeout");
    let start = Instant::now();
    let mut buffer = [0u8; 2048];
    while start.elapsed() < Duration::from_secs(30) {
        socket.send_to(request, addr).expect("send");
        if socket.recv_from(&mut buffer).is_ok() {
            return;
        }
    }
    panic!("{addr} never answered");
}

#[test]
#[ignore]
fn roughtime_throughput() {
    let requests: Vec<Vec<u8>> = (0..1024u32)
        .map(|i| {
            let mut nonce = [0u8; 32];
            nonce[..4].copy_from_slice(&i.to_le_bytes());
            welkin_roughtime::request(Version::Rfc1, &nonce, None)
        })
        .collect();

    let ours = Servers::start(Some(0));
    let reply = {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_secs(10)))
            .expect("timeout");
        socket.send_to(&requests[0], ours.roughtime).expect("send");
        let mut buffer = [0u8; 2048];
        let (len, _) = socket.recv_from(&mut buffer).expect("a reply");
        buffer[..len].to_vec()
    };
    welkin_roughtime::verify_response(&requests[0], &reply, &ours.public_key)
        .expect("our reply verifies");
    let welkin = replies_per_second(ours.roughtime, &requests);
    let counters = &ours.roughtime_counters;
    let per_signature =
        counters.answered.load(Relaxed) as f64 / counters.signatures.load(Relaxed) as f64;
    drop(ours);

    let port = UdpSocket::bind("127.0.0.1:0")
        .and_then(|s| s.local_addr())
        .expect("a free port")
        .port();
    let reference_addr = SocketAddr::from(([127, 0, 0, 1], port));
    let reference = Running::spawn(
        Command::new(roughenough_server())
            .args([
                "--insecure-zero-seed",
                "--quiet",
                "--interface",
                "127.0.0.1",
            ])
            .args(["--port", &port.to_string(), "--num-threads", "1"])
            .args(["--batch-size", "64"]),
    );
    wait_for_answer(reference_addr, &requests[0]);
    let roughenough = replies_per_second(reference_addr, &requests);
    drop(reference);

    println!("welkin-roughtime:        {welkin:.0} replies/s, {per_signature:.1} per signature");
    println!("roughenough-server {REFERENCE}: {roughenough:.0} replies/s");
    let json = format!(
        "{{\"load_seconds\": {}, \"window\": {WINDOW}, \"welkin_roughtime\": {welkin:.0}, \
         \"welkin_replies_per_signature\": {per_signature:.1}, \
         \"roughenough_server_{}\": {roughenough:.0}}}\n",
        LOAD.as_secs(),
        REFERENCE.replace('.', "_")
    );
    let path = tools().join("roughtime-throughput.json");
    std::fs::write(&path, json).expect("figures written");
    println!("written to {}", path.display());
    assert!(welkin > 0.0 && roughenough > 0.0, "both servers answered");
}
