//! `welkin dev` as a new user tries it: the four nodes generate the cluster key themselves (no
//! dealer, no share file anywhere; the key proven from the genesis is the one every node
//! serves and certifies with, and time certificates verify under it); a node killed with SIGKILL while the cluster runs is
//! reported and restarted while the others keep committing; `welkin dev stop` keeps a node
//! down and `welkin dev start` brings it back to catch up; stopping the supervisor stops
//! every node.

mod support;

use commonware_cryptography::Signer as _;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use welkin_client::Client;
use welkin_types::{
    Digest, Genesis, Payload, PrivateKey, Receipt, Sender, Transaction, TxId, api::TxState,
};

const NODES: u16 = 4;
/// Generous: node processes start in a few seconds, but CI machines are shared.
const PATIENCE: Duration = Duration::from_secs(120);

fn welkin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_welkin"))
}

/// A running `welkin dev`, its printed output collected in a file.
struct Dev {
    dir: PathBuf,
    output: PathBuf,
    supervisor: Child,
}

impl Dev {
    fn start(dir: &Path, base_port: u16) -> Self {
        let output = dir.with_extension("out");
        let supervisor = welkin()
            .args(["dev", "--data-dir"])
            .arg(dir)
            .args(["--base-port", &base_port.to_string()])
            .stdin(Stdio::null())
            .stdout(std::fs::File::create(&output).expect("output file"))
            .stderr(Stdio::null())
            .spawn()
            .expect("welkin dev starts");
        let dev = Self {
            dir: dir.to_path_buf(),
            output,
            supervisor,
        };
        dev.wait_for("Welkin dev cluster is up");
        dev
    }

    fn printed(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Waits until the supervisor has printed `text` (counting earlier output too).
    fn wait_for(&self, text: &str) {
        let deadline = Instant::now() + PATIENCE;
        while !self.printed().contains(text) {
            assert!(
                Instant::now() < deadline,
                "welkin dev never printed {text:?}; it printed:\n{}",
                self.printed()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Runs `welkin dev <args> --data-dir DIR` and returns what it printed.
    fn control(&self, args: &[&str]) -> String {
        let output = welkin()
            .arg("dev")
            .args(args)
            .arg("--data-dir")
            .arg(&self.dir)
            .output()
            .expect("welkin runs");
        assert!(
            output.status.success(),
            "welkin dev {args:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).expect("utf-8")
    }

    /// The pid `welkin dev status` shows for `node`, if it is up.
    fn pid(&self, node: &str) -> Option<u32> {
        let status = self.control(&["status"]);
        let line = status
            .lines()
            .find(|line| line.split_whitespace().next() == Some(node))
            .unwrap_or_else(|| panic!("{node} is not in the status:\n{status}"));
        let words: Vec<&str> = line.split_whitespace().collect();
        (words.get(2) == Some(&"up")).then(|| words[4].parse().expect("a pid"))
    }
}

impl Drop for Dev {
    fn drop(&mut self) {
        let _ = self.supervisor.kill();
        let _ = self.supervisor.wait();
    }
}

fn alive(pid: u32) -> bool {
    Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn commit(client: &Client, key: &PrivateKey, cluster: &Digest, memo: &str) -> (TxId, Receipt) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64;
    let tx = Transaction {
        sender: Sender::Key(key.public_key()),
        nonce: now,
        expiry_ms: now + 120_000,
        payload: Payload::Memo(memo.as_bytes().to_vec()),
    }
    .sign(key, cluster);
    let status = client
        .submit(&tx, Some(Duration::from_secs(30)))
        .expect("submission is accepted");
    assert_eq!(status.state, TxState::Committed, "{memo:?} committed");
    (
        tx.id(),
        status.receipt.expect("a committed status has a receipt"),
    )
}

/// Waits until `client`'s node has `id` committed with `receipt`.
fn wait_has(client: &Client, id: &TxId, receipt: &Receipt, node: &str) {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Ok(status) = client.tx_status(id)
            && status.receipt.as_ref() == Some(receipt)
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "{node} never caught up with {id}"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// The cluster key of a dealerless dev cluster, checked: the genesis has none and no file
/// under `dir` is a share; the key proven from the genesis (the selected dealer logs and a
/// checkpoint under it) is the one every node serves; a time certificate verifies under it.
fn dealerless_key(dir: &Path, genesis: &Genesis, clients: &[Client]) -> welkin_types::ClusterKey {
    assert!(genesis.polynomial.is_none(), "the genesis holds no key");
    let mut files = vec![dir.to_path_buf()];
    while let Some(path) = files.pop() {
        if path.is_dir() {
            files.extend(
                std::fs::read_dir(&path)
                    .expect("readable")
                    .map(|e| e.expect("entry").path()),
            );
        } else {
            let name = path.to_string_lossy();
            assert!(!name.ends_with(".share"), "no dealer wrote a share: {name}");
        }
    }
    let trusted = clients[0]
        .trusted(genesis)
        .expect("the key is proven from the genesis");
    for client in clients {
        assert_eq!(
            served_key(client),
            trusted.cluster_key,
            "one key everywhere"
        );
    }
    // `welkin membership` proves the same key and shows who dealt it.
    let api = clients[1].base().to_string();
    let listing: serde_json::Value = serde_json::from_slice(&membership(
        &["list", "--api", &api, "--json", "--genesis"],
        Some(&dir.join("genesis.json")),
    ))
    .expect("JSON");
    assert_eq!(
        listing["cluster_key"].as_str(),
        Some(hex::encode(commonware_codec::Encode::encode(&trusted.cluster_key)).as_str())
    );
    let members = listing["members"].as_array().expect("members");
    assert_eq!(members.len(), 4);
    let selected = members
        .iter()
        .filter(|m| m["key_role"] == "selected")
        .count();
    assert_eq!(selected, 3, "a quorum of dealers: {listing}");
    let keygen: serde_json::Value =
        serde_json::from_slice(&membership(&["keygen", "--api", &api, "--json"], None))
            .expect("JSON");
    assert_eq!(keygen["state"], "generated", "{keygen}");
    assert_eq!(keygen["logs"].as_array().map(Vec::len), Some(3), "{keygen}");
    let nonce = [9u8; 32];
    let response = clients[2].time(&nonce).expect("a time certificate");
    let certified = welkin_types::decode::<welkin_time::CertifiedTime>(
        &hex::decode(&response.certificate).expect("hex"),
    )
    .expect("decodes");
    certified
        .verify_for(&nonce, &trusted.cluster_id, &trusted.cluster_key)
        .expect("time is certified under the generated key");
    trusted.cluster_key
}

/// Runs `welkin membership ARGS [FILE]` and returns what it printed.
fn membership(args: &[&str], file: Option<&Path>) -> Vec<u8> {
    let mut command = welkin();
    command.arg("membership").args(args);
    if let Some(file) = file {
        command.arg(file);
    }
    let output = command.output().expect("welkin runs");
    assert!(
        output.status.success(),
        "welkin membership {args:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    output.stdout
}

/// The cluster key a node says it holds.
fn served_key(client: &Client) -> welkin_types::ClusterKey {
    let status = client.status().expect("status");
    welkin_types::hexser::decode_hex(&status.cluster_key).expect("a key is served")
}

/// The epoch state `welkin membership epochs --json` prints.
fn epochs(base: u16, genesis: &Path) -> welkin_types::api::EpochStatus {
    let api = format!("http://127.0.0.1:{base}");
    let printed = membership(&["epochs", "--api", &api, "--json"], None);
    let _ = genesis;
    serde_json::from_slice(&printed).expect("epochs --json prints the epoch status")
}

/// Waits (up to 3 minutes: a resharing completes at an epoch's end) until `done`.
fn wait_epochs(
    base: u16,
    genesis: &Path,
    what: &str,
    done: impl Fn(&welkin_types::api::EpochStatus) -> bool,
) -> welkin_types::api::EpochStatus {
    let deadline = Instant::now() + Duration::from_secs(180);
    loop {
        let status = epochs(base, genesis);
        if done(&status) {
            return status;
        }
        assert!(Instant::now() < deadline, "{what}: {status:?}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

/// A fifth process joins the running cluster through the CLI (`welkin node join`, an
/// operator's `welkin membership approve`): the members reshare the key to it, it votes from
/// the next epoch, and it serves the same cluster key; then it leaves (`welkin node leave`)
/// and the four keep finalizing.
fn join_and_leave(
    dir: &Path,
    base: u16,
    genesis: &Genesis,
    clients: &[Client],
    cluster_key: welkin_types::ClusterKey,
    client_key: &PrivateKey,
) {
    let api = format!("http://127.0.0.1:{base}");
    let genesis_file = dir.join("genesis.json");
    let home = dir.join("joiner");
    std::fs::create_dir_all(&home).expect("joiner dir");
    let ok = |command: &mut Command| {
        let output = command.output().expect("welkin runs");
        assert!(
            output.status.success(),
            "{command:?} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    };
    ok(welkin()
        .args(["key", "new", "--out"])
        .arg(home.join("node.key")));
    ok(welkin()
        .args(["key", "register", "--key"])
        .arg(home.join("node.key"))
        .args(["--name", "node4"])
        .args(["--p2p-address", &format!("127.0.0.1:{}", base + 104)])
        .args(["--api-address", &format!("127.0.0.1:{}", base + 4)])
        .args(["--failure-domain", "host-4", "--out"])
        .arg(home.join("registration.json")));
    let joined = ok(welkin()
        .args(["node", "join", "--api", &api, "--genesis"])
        .arg(&genesis_file)
        .arg("--key")
        .arg(home.join("node.key"))
        .arg("--registration")
        .arg(home.join("registration.json"))
        .arg("--dir")
        .arg(home.join("node")));
    let request = joined
        .lines()
        .find_map(|l| l.strip_prefix("request"))
        .map(|id| id.trim().to_string())
        .expect("the request id is printed");
    assert!(joined.contains("needs 1 operator approvals"), "{joined}");
    let log = std::fs::File::create(home.join("node.log")).expect("log");
    let mut node = welkin()
        .args(["node", "--config"])
        .arg(home.join("node").join("node.toml"))
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log"))
        .stderr(log)
        .spawn()
        .expect("the joining node starts");
    let approved = ok(welkin()
        .args([
            "membership",
            "approve",
            &request,
            "--api",
            &api,
            "--genesis",
        ])
        .arg(&genesis_file)
        .arg("--key")
        .arg(dir.join("operator.key")));
    assert!(approved.contains("admitted node4"), "{approved}");
    let status = wait_epochs(base, &genesis_file, "node4 joins", |s| {
        s.members.iter().any(|m| m == "node4")
    });
    assert_eq!(status.members.len(), 5, "{status:?}");
    assert!(status.failures.is_empty(), "{status:?}");
    // The new member serves the same key and the chain, and takes transactions.
    let joiner = Client::new(&format!("http://127.0.0.1:{}", base + 4));
    let deadline = Instant::now() + Duration::from_secs(60);
    while joiner
        .status()
        .map(|s| s.cluster_key.is_empty())
        .unwrap_or(true)
    {
        assert!(Instant::now() < deadline, "node4 serves its status and key");
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(
        served_key(&joiner),
        cluster_key,
        "the cluster key is unchanged"
    );
    let cluster = genesis.cluster_id();
    let (id, receipt) = commit(&joiner, client_key, &cluster, "through the joined node");
    wait_has(&clients[0], &id, &receipt, "node0");
    // It leaves; the four keep finalizing.
    let left = ok(welkin()
        .args(["node", "leave", "--api", &api, "--genesis"])
        .arg(&genesis_file)
        .arg("--key")
        .arg(home.join("node.key")));
    assert!(left.contains("leaves at the next epoch"), "{left}");
    let status = wait_epochs(base, &genesis_file, "node4 leaves", |s| {
        s.retired.iter().any(|m| m == "node4")
    });
    assert_eq!(status.members.len(), 4, "{status:?}");
    node.kill().expect("SIGKILL");
    node.wait().expect("reaped");
    commit(&clients[1], client_key, &cluster, "after node4 left");
}

#[test]
fn dev_cluster_keeps_serving_through_a_killed_node_and_stop_start() {
    let base = support::free_base(&[0, 1, 2, 3, 4, 100, 101, 102, 103, 104]);
    let dir = std::env::temp_dir().join(format!("welkin-dev-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let dev = Dev::start(&dir, base);
    let genesis =
        Genesis::from_json(&std::fs::read_to_string(dir.join("genesis.json")).expect("genesis"))
            .expect("welkin dev writes a valid genesis of signed registrations");
    let cluster = genesis.cluster_id();
    let clients: Vec<Client> = (0..NODES)
        .map(|i| Client::new(&format!("http://127.0.0.1:{}", base + i)))
        .collect();
    let cluster_key = dealerless_key(&dir, &genesis, &clients);
    let key = PrivateKey::from_seed(7);
    commit(&clients[0], &key, &cluster, "before any fault");

    // A second supervisor on the same directory is refused.
    let second = welkin()
        .args(["dev", "--data-dir"])
        .arg(&dir)
        .output()
        .expect("welkin runs");
    assert!(!second.status.success());
    assert!(String::from_utf8_lossy(&second.stderr).contains("already running"));

    // SIGKILL node1: reported, the cluster keeps committing, node1 is restarted and catches up.
    let killed = dev.pid("node1").expect("node1 is up");
    assert!(
        Command::new("kill")
            .args(["-9", &killed.to_string()])
            .status()
            .expect("kill runs")
            .success()
    );
    dev.wait_for("node1 is down: it exited (signal: 9 (SIGKILL))");
    dev.wait_for("3 of 4 nodes up: the cluster keeps serving");
    dev.wait_for("restarting node1 in 1s");
    let (id, receipt) = commit(&clients[2], &key, &cluster, "while node1 restarts");
    dev.wait_for("node1 is back");
    let restarted = dev.pid("node1").expect("node1 is up again");
    assert_ne!(restarted, killed, "a new process");
    wait_has(&clients[1], &id, &receipt, "node1");
    assert_eq!(
        served_key(&clients[1]),
        cluster_key,
        "node1 reopened its sealed share of the same key after the crash"
    );

    // `welkin dev stop` keeps node3 down; the other three keep committing.
    let stopped = dev.control(&["stop", "node3"]);
    assert!(stopped.contains("stopped node3"), "{stopped}");
    assert!(stopped.contains("3 of 4 nodes up"), "{stopped}");
    assert_eq!(dev.pid("node3"), None, "node3 is down");
    let (id, receipt) = commit(&clients[0], &key, &cluster, "while node3 is stopped");
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(dev.pid("node3"), None, "a stopped node is not restarted");
    assert!(
        dev.control(&["status"])
            .contains("stopped  by `welkin dev stop`")
    );

    // `welkin dev start` brings it back; it catches up with what it missed.
    let started = dev.control(&["start", "node3"]);
    assert!(started.contains("started node3"), "{started}");
    wait_has(&clients[3], &id, &receipt, "node3");
    commit(&clients[3], &key, &cluster, "through the restarted node");

    join_and_leave(&dir, base, &genesis, &clients, cluster_key, &key);

    // Stopping the supervisor stops every node.
    let pids: Vec<u32> = (0..NODES)
        .map(|i| dev.pid(&format!("node{i}")).expect("every node is up"))
        .collect();
    let mut dev = dev;
    assert!(
        Command::new("kill")
            .args(["-TERM", &dev.supervisor.id().to_string()])
            .status()
            .expect("kill runs")
            .success()
    );
    let status = dev.supervisor.wait().expect("the supervisor exits");
    assert!(
        status.success(),
        "welkin dev exits cleanly on SIGTERM: {status}"
    );
    for pid in pids {
        assert!(!alive(pid), "node pid {pid} outlived the supervisor");
    }
    assert!(
        !dir.join("dev.sock").exists(),
        "the control socket is removed"
    );
    drop(dev);
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_file(dir.with_extension("out"));
}
