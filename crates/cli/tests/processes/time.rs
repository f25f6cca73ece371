//! Certified time from a cluster of real processes: `welkin time now/status/stamp/verify`,
//! and the nodes' Roughtime and NTP servers read by real clients (pyroughtime, roughenough's
//! client and chrony) with each node's identity key from the genesis file.

use super::time_clients::{chrony_offset, pyroughtime_reads, rust_roughtime_reads};
use crate::{run_ok, welkin};
use commonware_codec::Encode as _;
use std::{
    net::{SocketAddr, UdpSocket},
    path::Path,
    time::{Duration, SystemTime},
};
use welkin_types::Genesis;

fn unix_ns() -> u64 {
    u64::try_from(
        SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .expect("after the epoch")
            .as_nanos(),
    )
    .expect("fits")
}

/// The Roughtime and NTP addresses of node `i` (by API port order), as the test cluster's
/// configs set them.
pub(crate) fn udp_addresses(api_base: u16, i: usize) -> (SocketAddr, SocketAddr) {
    let port = |offset: usize| api_base as usize + offset + i;
    (
        format!("127.0.0.1:{}", port(200)).parse().expect("address"),
        format!("127.0.0.1:{}", port(300)).parse().expect("address"),
    )
}

/// The `[time]` table of node `i`'s config.
pub(crate) fn config_table(api_base: u16, i: usize) -> String {
    let (roughtime, ntp) = udp_addresses(api_base, i);
    format!("\n[time]\nroughtime_address = \"{roughtime}\"\nntp_address = \"{ntp}\"\n")
}

pub(crate) fn certified(dir: &Path, api: &str, api_base: u16) {
    let genesis_path = dir.join("genesis.json");
    let genesis_arg = genesis_path.to_str().expect("utf-8 path");
    let genesis = Genesis::from_json(&std::fs::read_to_string(&genesis_path).expect("genesis"))
        .expect("valid");

    // A verified certificate holds this machine's clock (which every node reads too).
    let asked = unix_ns();
    let now = run_ok(welkin().args([
        "time",
        "now",
        "--json",
        "--api",
        api,
        "--genesis",
        genesis_arg,
    ]));
    let answered = unix_ns();
    let now: serde_json::Value = serde_json::from_str(&now).expect("time now --json prints JSON");
    assert_eq!(now["verified"], true);
    let earliest = now["earliest_ns"].as_u64().expect("earliest");
    let latest = now["latest_ns"].as_u64().expect("latest");
    assert!(
        earliest <= answered && latest >= asked,
        "[{earliest}, {latest}] misses [{asked}, {answered}]"
    );
    assert_eq!(
        now["agreed"].as_array().expect("agreed").len(),
        genesis.nodes.len()
    );
    let saved = dir.join("time-now.json");
    std::fs::write(&saved, serde_json::to_string(&now).expect("json")).expect("write");
    let verified = run_ok(
        welkin()
            .args(["time", "verify", "--genesis", genesis_arg, "--api", api])
            .arg(&saved),
    );
    assert!(
        verified.starts_with("verified: certified by the cluster key"),
        "{verified}"
    );

    // A certificate whose interval was widened no longer verifies.
    let mut forged = now.clone();
    let certificate = forged["certificate"].as_str().expect("hex").to_string();
    let mut bytes = hex::decode(&certificate).expect("hex");
    bytes[48] ^= 1; // inside latest_ns
    forged["certificate"] = hex::encode(bytes).into();
    std::fs::write(&saved, serde_json::to_string(&forged).expect("json")).expect("write");
    let refused = welkin()
        .args(["time", "verify", "--genesis", genesis_arg, "--api", api])
        .arg(&saved)
        .output()
        .expect("runs");
    assert!(!refused.status.success(), "a forged certificate is refused");
    let message = String::from_utf8_lossy(&refused.stderr);
    assert!(message.contains("does not verify"), "{message}");

    // Every node's clock agrees.
    let status = run_ok(welkin().args(["time", "status", "--json", "--api", api]));
    let status: serde_json::Value = serde_json::from_str(&status).expect("json");
    for node in status["nodes"].as_array().expect("nodes") {
        assert_eq!(node["state"], "agreeing", "{node}");
    }
    // It says where it serves Roughtime and with which key (its genesis identity key).
    let (roughtime0, ntp0) = udp_addresses(api_base, 0);
    assert_eq!(status["roughtime_address"], roughtime0.to_string());
    assert_eq!(status["ntp_address"], ntp0.to_string());
    let node0 = genesis
        .nodes
        .iter()
        .find(|n| n.api_address.port() == api_base)
        .expect("node 0");
    {
        use base64::Engine as _;
        assert_eq!(
            status["roughtime_public_key"],
            base64::engine::general_purpose::STANDARD.encode(node0.public_key.encode())
        );
    }

    // A logged timestamp, checked offline; another file does not match it.
    let file = dir.join("report.txt");
    std::fs::write(&file, "quarterly figures").expect("write");
    let key = dir.join("stamper.key");
    run_ok(welkin().args(["key", "new", "--out"]).arg(&key));
    let stamped = run_ok(
        welkin()
            .args([
                "time",
                "stamp",
                "--json",
                "--api",
                api,
                "--genesis",
                genesis_arg,
                "--key",
            ])
            .arg(&key)
            .arg(&file),
    );
    let stamped: serde_json::Value = serde_json::from_str(&stamped).expect("json");
    assert_eq!(stamped["verified"], true);
    let receipt = dir.join("report.txt.stamp.json");
    let checked = run_ok(
        welkin()
            .args([
                "time",
                "verify",
                "--genesis",
                genesis_arg,
                "--api",
                api,
                "--file",
            ])
            .arg(&file)
            .arg(&receipt),
    );
    assert!(checked.contains("existed before"), "{checked}");
    let other = dir.join("other.txt");
    std::fs::write(&other, "different figures").expect("write");
    let mismatch = welkin()
        .args([
            "time",
            "verify",
            "--genesis",
            genesis_arg,
            "--api",
            api,
            "--file",
        ])
        .arg(&other)
        .arg(&receipt)
        .output()
        .expect("runs");
    assert!(
        !mismatch.status.success(),
        "a timestamp for another file is refused"
    );

    // Roughtime from every node, verified by real clients with the node's genesis key.
    let mut by_port: Vec<_> = genesis.nodes.iter().collect();
    by_port.sort_by_key(|n| n.api_address.port());
    for (i, node) in by_port.iter().enumerate() {
        let (roughtime, _) = udp_addresses(api_base, i);
        let public_key: [u8; 32] = node
            .public_key
            .encode()
            .as_ref()
            .try_into()
            .expect("32 bytes");
        let before = unix_ns();
        let reading = pyroughtime_reads(roughtime, &public_key);
        let after = unix_ns();
        assert!(
            reading.midpoint_ns + reading.radius_ns >= before
                && reading.midpoint_ns.saturating_sub(reading.radius_ns) <= after,
            "{}: {reading:?} misses [{before}, {after}]",
            node.name
        );
        let seconds = rust_roughtime_reads(roughtime, &public_key, "1");
        let now_s = unix_ns() / 1_000_000_000;
        assert!(
            seconds.abs_diff(now_s) <= 5,
            "{}: {seconds} vs {now_s}",
            node.name
        );
        // A truncated request gets no reply.
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
        socket
            .set_read_timeout(Some(Duration::from_millis(300)))
            .expect("timeout");
        socket
            .send_to(b"ROUGHTIM\x00\x00", roughtime)
            .expect("send");
        let mut buffer = [0u8; 2048];
        assert!(
            socket.recv_from(&mut buffer).is_err(),
            "{}: no reply to junk",
            node.name
        );
    }

    // NTP: chrony reads the certified time from a node and finds it close to this machine's.
    let (_, ntp) = udp_addresses(api_base, 1);
    let offset = chrony_offset(ntp);
    assert!(offset.abs() < 0.1, "chrony measures {offset} s");
}
