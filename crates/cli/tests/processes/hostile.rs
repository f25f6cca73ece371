//! Hostile clients against a real node process: a flood of `wait=true` submissions that can
//! never commit, a thousand idle and slow connections with a request flood beside them, and
//! one address sending more than its rate.

use std::{
    io::{Read as _, Write as _},
    net::TcpStream,
    time::{Duration, Instant},
};
use welkin_client::Client;
use welkin_types::SignedTransaction;

/// The node's resident memory, in KiB.
fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS line")
}

/// POSTs `body` to `url` on a fresh connection; returns the status code.
fn post(agent: &ureq::Agent, url: &str, body: &serde_json::Value) -> u16 {
    match agent.post(url).send_json(body) {
        Ok(response) => response.status().as_u16(),
        Err(ureq::Error::StatusCode(code)) => code,
        Err(error) => panic!("POST {url}: {error}"),
    }
}

fn agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(120)))
        .build()
        .into()
}

/// 20,000 `wait=true` submissions that cannot commit (bad signatures) or already have leave
/// no waiter behind and the node's memory where it was.
pub(crate) fn waiters_do_not_leak(api: &str, pid: u32, committed: &SignedTransaction) {
    let agent = agent();
    let client = Client::new(api);
    let before = rss_kib(pid);
    let committed_hex = hex::encode(commonware_codec::Encode::encode(committed));
    let mut forged = committed.clone();
    let mut sent = 0;
    while sent < 20_000 {
        let mut txs = Vec::with_capacity(1000);
        for i in 0..1000u64 {
            if i % 2 == 0 {
                txs.push(committed_hex.clone());
            } else {
                // A fresh id each time (another nonce) under the old, now wrong, signature.
                forged.tx.nonce = 1_000_000 + sent as u64 + i;
                txs.push(hex::encode(commonware_codec::Encode::encode(&forged)));
            }
        }
        let url = format!("{api}/v1/txs?wait=true&timeout_ms=60000");
        let code = post(&agent, &url, &serde_json::json!({ "txs": txs }));
        assert_eq!(
            code, 200,
            "a batch answers at once, each item with its own result"
        );
        sent += 1000;
    }
    let status = client.status().expect("status");
    assert_eq!(status.waiting, 0, "no waiter outlives its request");
    let after = rss_kib(pid);
    eprintln!("node memory: {before} KiB before, {after} KiB after 20,000 hopeless waits");
    assert!(
        after < before + 16 * 1024,
        "node memory grew from {before} KiB to {after} KiB"
    );
}

/// Blocks per second the cluster finalizes over `seconds`, as `client` sees it.
fn blocks_per_second(client: &Client, seconds: u64) -> f64 {
    let start = client.status().expect("status").height;
    let began = Instant::now();
    std::thread::sleep(Duration::from_secs(seconds));
    let end = client.status().expect("status").height;
    (end - start) as f64 / began.elapsed().as_secs_f64()
}

/// A thousand idle and slow connections to one node and a request flood from one address
/// leave finalization at its usual rate; the flood is answered 429 with `Retry-After`.
pub(crate) fn floods_leave_finalization_alone(target: &str, observer: &Client) {
    let calm = blocks_per_second(observer, 8);
    let address = target.trim_start_matches("http://").to_string();
    // Idle connections, and slow ones that never finish their headers.
    let mut held = Vec::new();
    for i in 0..1000 {
        let mut stream = TcpStream::connect(&address).expect("connect");
        if i % 2 == 0 {
            let _ = stream.write_all(b"GET /v1/status HTTP/1.1\r\nHost: x\r\n");
        }
        held.push(stream);
    }
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let flood = {
        let stop = stop.clone();
        let url = format!("{target}/v1/status");
        std::thread::spawn(move || {
            let agent = agent();
            let (mut ok, mut limited, mut retry_after) = (0u64, 0u64, true);
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                match agent.get(&url).call() {
                    Ok(mut response) => match response.status().as_u16() {
                        200 => ok += 1,
                        429 => {
                            limited += 1;
                            retry_after &= response.headers().contains_key("retry-after");
                            let body = response.body_mut().read_to_string().unwrap_or_default();
                            retry_after &= body.contains("rate_limited");
                        }
                        _ => {}
                    },
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
            (ok, limited, retry_after)
        })
    };
    let stormy = blocks_per_second(observer, 8);
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let (ok, limited, retry_after) = flood.join().expect("flood thread");
    eprintln!(
        "finalization: {calm:.2} blocks/s calm, {stormy:.2} blocks/s with 1,000 idle/slow \
         connections and a flood ({ok} answered, {limited} rate-limited)"
    );
    assert!(limited > 0, "a flood from one address is rate limited");
    assert!(
        retry_after,
        "every 429 says when to retry, with code rate_limited"
    );
    assert!(
        stormy >= calm * 0.5,
        "finalization slowed from {calm:.2} to {stormy:.2} blocks/s under the flood"
    );
    // Slow connections are closed once the header timeout passes.
    std::thread::sleep(Duration::from_secs(12));
    let mut closed = 0;
    for stream in &mut held {
        stream
            .set_read_timeout(Some(Duration::from_millis(50)))
            .expect("timeout");
        let mut buf = [0u8; 256];
        // End of stream, or the server's timeout answer: either way the node let go.
        if stream.read(&mut buf).is_ok() {
            closed += 1;
        }
    }
    assert!(
        closed >= 900,
        "idle and slow connections are dropped after the header timeout ({closed} of 1000)"
    );
    // Once the flood stops, the address gets through again.
    std::thread::sleep(Duration::from_secs(3));
    assert!(Client::new(target).status().is_ok());
}
