//! Stored objects on a cluster of real processes: `welkin obj put/get/inspect/list/delete`
//! and `welkin node storage`, with a node killed, a shard corrupted on disk, audits, bad
//! input, and crypto-shredding.

use crate::{Cluster, api_base, run_ok, welkin};
use commonware_cryptography::Signer as _;
use std::{
    io::Write as _,
    path::{Path, PathBuf},
    time::{Duration, Instant},
};
use welkin_types::{
    Digest, PrivateKey,
    storage::{REQUEST_HEADER, RequestSignature},
};

/// The `[storage]` table of every test node's config: 4 GiB offered.
pub(crate) const CONFIG_TABLE: &str = "\n[storage]\ncapacity_bytes = 4294967296\n";

/// Size of the big object (MiB): 200 by default, `WELKIN_OBJECT_TEST_MIB` to change.
fn big_mib() -> u64 {
    std::env::var("WELKIN_OBJECT_TEST_MIB")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(200)
}

/// Writes `mib` MiB of pseudo-random bytes (xorshift: incompressible, fast to make).
fn random_file(path: &Path, mib: u64) {
    let mut file = std::io::BufWriter::new(std::fs::File::create(path).expect("create"));
    let mut state = 0x2545_f491_4f6c_dd1du64;
    let mut chunk = vec![0u8; 1 << 20];
    for _ in 0..mib {
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        file.write_all(&chunk).expect("write");
    }
    // An odd tail, so the last segment is short.
    file.write_all(b"the end, not on a segment boundary")
        .expect("write");
}

fn same_bytes(a: &Path, b: &Path) -> bool {
    std::fs::read(a).expect("read") == std::fs::read(b).expect("read")
}

fn api(i: usize) -> String {
    format!("http://127.0.0.1:{}", api_base() + i as u16)
}

/// The shard files of `id` on node `i`.
fn shard_files(dir: &Path, i: usize, id: &str) -> Vec<PathBuf> {
    let shards = dir.join(format!("node{i}/data/shards/shards"));
    let Ok(entries) = std::fs::read_dir(&shards) else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with(id) && n.ends_with(".shard"))
        })
        .collect()
}

fn obj_json(args: &[&str]) -> serde_json::Value {
    let out = run_ok(welkin().args(args));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?} printed {out:?}: {e}"))
}

fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
    // Audits run once an epoch (64 heights, about 16 s on an idle cluster); a repair needs a
    // failed audit first.
    let deadline = Instant::now() + Duration::from_secs(150);
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(250));
    }
}

pub(crate) fn stored_objects(cluster: &mut Cluster, dir: &Path) {
    let owner_key = dir.join("owner.key");
    run_ok(welkin().args(["key", "new", "--out"]).arg(&owner_key));
    let key_arg = owner_key.to_str().expect("utf-8");
    let big = dir.join("big.bin");
    random_file(&big, big_mib());

    // Put: every node acknowledges its shard, one shard per node.
    let put = obj_json(&[
        "obj",
        "put",
        "--json",
        "--api",
        &api(0),
        "--key",
        key_arg,
        big.to_str().expect("utf-8"),
    ]);
    assert_eq!(put["status"], "stored", "{put}");
    let id = put["id"].as_str().expect("id").to_string();
    let info = obj_json(&["obj", "inspect", "--json", "--api", &api(1), &id]);
    assert_eq!(info["k"], 2);
    assert_eq!(info["m"], 2);
    // The node (by its directory and API port, `node<i>`) holding each shard; genesis order
    // need not be creation order.
    let holders: Vec<u64> = info["shards"]
        .as_array()
        .expect("shards")
        .iter()
        .map(|s| {
            s["node"]
                .as_str()
                .and_then(|n| n.strip_prefix("node"))
                .and_then(|i| i.parse().ok())
                .expect("nodes are named node<i>")
        })
        .collect();
    let mut distinct = holders.clone();
    distinct.sort();
    assert_eq!(distinct, vec![0, 1, 2, 3], "one shard per node");
    for i in 0..4 {
        assert_eq!(shard_files(dir, i, &id).len(), 1, "node{i} holds its shard");
    }
    let listed = obj_json(&["obj", "list", "--json", "--api", &api(2), "--key", key_arg]);
    assert!(
        listed
            .as_array()
            .expect("list")
            .iter()
            .any(|o| o["id"] == id.as_str()),
        "{listed}"
    );

    // SIGKILL a node: the object still reads back byte for byte from the other three.
    cluster.kill(3);
    let back = dir.join("big.back");
    let got = obj_json(&[
        "obj",
        "get",
        "--json",
        "--api",
        &api(0),
        "--key",
        key_arg,
        &id,
        "-o",
        back.to_str().expect("utf-8"),
    ]);
    assert!(
        same_bytes(&big, &back),
        "read back identical with node3 down: {got}"
    );
    // A range read fetches only the segments it needs, and matches the file's bytes.
    let part = dir.join("big.part");
    run_ok(welkin().args([
        "obj",
        "get",
        "--api",
        &api(1),
        "--key",
        key_arg,
        &id,
        "--range",
        "1048000-3145800",
        "-o",
        part.to_str().expect("utf-8"),
    ]));
    let whole = std::fs::read(&big).expect("read");
    assert_eq!(std::fs::read(&part).expect("read"), whole[1048000..3145800]);
    cluster.start(3);
    cluster.wait_ready(&[3]);

    // Corrupt one byte of a data shard on disk: the node never serves it, says so, and the
    // client reads around it.
    let holder0 = holders[0] as usize;
    let file = shard_files(dir, holder0, &id).pop().expect("shard 0 file");
    let original = std::fs::read(&file).expect("read shard");
    let mut bytes = original.clone();
    let at = bytes.len() - 1000;
    bytes[at] ^= 0x55;
    std::fs::write(&file, &bytes).expect("corrupt");
    let back2 = dir.join("big.back2");
    let got = obj_json(&[
        "obj",
        "get",
        "--json",
        "--api",
        &api(2),
        "--key",
        key_arg,
        &id,
        "-o",
        back2.to_str().expect("utf-8"),
    ]);
    assert!(
        same_bytes(&big, &back2),
        "read around the corrupt shard: {got}"
    );
    assert!(
        !got["failed_shards"].as_array().expect("list").is_empty(),
        "the corrupt shard was noticed: {got}"
    );
    let storage = obj_json(&["node", "storage", "--json", "--api", &api(holder0)]);
    let corrupt = storage["local"]["corrupt"]
        .as_array()
        .expect("corrupt list");
    assert!(
        corrupt
            .iter()
            .any(|c| c.as_str().is_some_and(|c| c.starts_with(&id))),
        "node{holder0} reports the corrupt shard: {storage}"
    );

    // The quarantined shard fails its next audit, and the cluster repairs it: its node
    // rebuilds it from two others, byte for byte what the client stored.
    let healthy = |api_index: usize| {
        let info = obj_json(&["obj", "inspect", "--json", "--api", &api(api_index), &id]);
        info["shards"]
            .as_array()
            .expect("shards")
            .iter()
            .all(|s| s["healthy"] == true)
    };
    wait_for("the corrupt shard repaired", || {
        shard_files(dir, holder0, &id)
            .first()
            .is_some_and(|f| std::fs::read(f).ok().as_ref() == Some(&original))
    });
    wait_for("the object healthy again", || healthy(0));
    let degraded = obj_json(&["obj", "degraded", "--json", "--api", &api(2)]);
    assert!(
        !degraded
            .as_array()
            .expect("list")
            .iter()
            .any(|o| o["id"] == id.as_str()),
        "a repaired object is no longer degraded: {degraded}"
    );
    let storage = obj_json(&["node", "storage", "--json", "--api", &api(holder0)]);
    let name = format!("node{holder0}");
    let node = storage["nodes"]
        .as_array()
        .expect("nodes")
        .iter()
        .find(|n| n["node"] == name.as_str())
        .expect("the holder is listed");
    // The holder declares the quarantined shard lost on its next pass, or an audit finds it
    // first: either way the loss and its repair are on record.
    let log = obj_json(&["obj", "audit-log", "--json", "--api", &api(2), &id]);
    let events = log["events"].as_array().expect("events");
    let audit_failed = events
        .iter()
        .any(|e| e["kind"] == "audit_failed" && e["node"] == name.as_str());
    assert_eq!(
        audit_failed,
        node["audits_failed"].as_u64().unwrap_or(0) >= 1,
        "the holder's audit record agrees with the object's audit log: {storage} {log}"
    );
    assert!(
        events
            .iter()
            .any(|e| e["kind"] == "repair_ordered" && e["node"] == name.as_str()),
        "the object's audit log lists the repair onto the holder: {log}"
    );
    // Delete another node's shard file outright: same story.
    let holder1 = holders[1] as usize;
    let file = shard_files(dir, holder1, &id).pop().expect("shard 1 file");
    let original = std::fs::read(&file).expect("read shard");
    std::fs::remove_file(&file).expect("delete shard");
    wait_for("the deleted shard repaired", || {
        shard_files(dir, holder1, &id)
            .first()
            .is_some_and(|f| std::fs::read(f).ok().as_ref() == Some(&original))
    });
    wait_for("the object healthy again", || healthy(1));
    let back3 = dir.join("big.back3");
    run_ok(welkin().args([
        "obj",
        "get",
        "--api",
        &api(3),
        "--key",
        key_arg,
        &id,
        "-o",
        back3.to_str().expect("utf-8"),
    ]));
    assert!(same_bytes(&big, &back3), "read back after two repairs");

    bad_requests(dir, &id, &holders);
    // A layout the cluster cannot place is refused with the figures, and nothing is stored.
    let small = dir.join("small.bin");
    std::fs::write(&small, b"small").expect("write");
    let output = welkin()
        .args([
            "obj",
            "put",
            "--api",
            &api(0),
            "--key",
            key_arg,
            "--k",
            "1",
            "--m",
            "5",
        ])
        .arg(&small)
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(
        message.contains("not enough free space") && message.contains("needs 6 nodes"),
        "{message}"
    );

    // The healthy holders pass their audits.
    wait_for("passed audits", || {
        let storage = obj_json(&["node", "storage", "--json", "--api", &api(1)]);
        storage["nodes"]
            .as_array()
            .expect("nodes")
            .iter()
            .filter(|n| n["audits_passed"].as_u64().unwrap_or(0) > 0)
            .count()
            >= 2
    });

    // Delete: the key is destroyed and every node removes its shard.
    let deleted = obj_json(&[
        "obj",
        "delete",
        "--json",
        "--api",
        &api(1),
        "--key",
        key_arg,
        &id,
    ]);
    assert_eq!(deleted["deleted"], true);
    wait_for("every shard file removed", || {
        (0..4).all(|i| shard_files(dir, i, &id).is_empty())
    });
    let output = welkin()
        .args(["obj", "get", "--api", &api(0), "--key", key_arg, &id, "-o"])
        .arg(dir.join("gone.bin"))
        .output()
        .expect("runs");
    assert!(!output.status.success());
    let message = String::from_utf8_lossy(&output.stderr);
    assert!(message.contains("no object"), "{message}");
    assert!(!dir.join("gone.bin").exists(), "no partial output left");
}

/// Shard requests that are unsigned, signed by another key, sent to the wrong node, too long
/// or too short are refused with precise errors, and nothing is stored half-way.
fn bad_requests(dir: &Path, id: &str, holders: &[u64]) {
    let genesis = welkin_types::Genesis::from_json(
        &std::fs::read_to_string(dir.join("genesis.json")).expect("genesis"),
    )
    .expect("valid");
    let cluster = genesis.cluster_id();
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let path = format!("/v1/objects/{id}/shards/0");
    let holder = holders[0] as usize;
    let url = format!("{}{path}", api(holder));
    let expiry = crate::now_ms() + 60_000;
    let stranger = PrivateKey::from_seed(7);
    let call = |method: &str, url: &str, header: Option<String>, body: Vec<u8>| {
        let request = ureq::http::Request::builder().method(method).uri(url);
        let request = match header {
            Some(h) => request.header(REQUEST_HEADER, h),
            None => request,
        };
        let mut response = agent
            .run(request.body(body).expect("request"))
            .expect("answered");
        let status = response.status().as_u16();
        let text = response.body_mut().read_to_string().unwrap_or_default();
        (status, text)
    };
    let (status, text) = call("PUT", &url, None, vec![0; 64]);
    assert_eq!(status, 401, "{text}");
    assert!(text.contains("welkin-signature"), "{text}");
    let stranger_header =
        RequestSignature::sign(&stranger, &cluster, "PUT", &path, expiry).to_header();
    let (status, text) = call("PUT", &url, Some(stranger_header), vec![0; 64]);
    assert_eq!(status, 403, "{text}");
    // The owner's key, from its key file.
    let owner = welkin_node::ceremony::NodeKey::from_json(
        &std::fs::read_to_string(dir.join("owner.key")).expect("key"),
    )
    .expect("key file")
    .signer;
    let signed = |method: &str, path: &str| {
        Some(RequestSignature::sign(&owner, &cluster, method, path, expiry).to_header())
    };
    // Shard 0 sent to a node that does not hold it.
    let other = (0..4).find(|i| *i != holder).expect("another node");
    let (status, text) = call(
        "PUT",
        &format!("{}{path}", api(other)),
        signed("PUT", &path),
        vec![0; 64],
    );
    assert_eq!(status, 421, "{text}");
    assert!(text.contains("is placed on node"), "{text}");
    // The node that holds it answers at once that it already has it.
    let (status, text) = call("PUT", &url, signed("PUT", &path), vec![0; 64]);
    assert!(status == 400 || status == 200, "{status} {text}");
    // A tampered signature.
    let mut tampered = signed("GET", &path).expect("header");
    tampered.replace_range(tampered.len() - 4.., "0000");
    let (status, text) = call("GET", &url, Some(tampered), Vec::new());
    assert_eq!(status, 401, "{text}");
    // An unknown object.
    let unknown = format!(
        "/v1/objects/{}/shards/0",
        hex::encode(Digest::from([9; 32]))
    );
    let (status, text) = call(
        "PUT",
        &format!("{}{unknown}", api(0)),
        signed("PUT", &unknown),
        vec![0; 64],
    );
    assert_eq!(status, 404, "{text}");
    assert!(text.contains("no object"), "{text}");
    let (status, text) = call(
        "GET",
        &format!("{}/v1/objects/nothex", api(0)),
        None,
        Vec::new(),
    );
    assert_eq!(status, 400, "{text}");
}
