//! Real processes on loopback, from the built `welkin` binary: key generation and the genesis
//! ceremony through the CLI, four `welkin node` processes over TCP, a node killed with
//! SIGKILL and restarted, a node restarted with empty storage, the whole cluster killed and
//! restarted, and bad input over HTTP.
//! Every acknowledged (committed) transaction must be on every node at the end.

use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use welkin_client::{Client, ClientError};
use welkin_types::{
    Digest, Payload, PrivateKey, Receipt, Sender, SignedTransaction, Transaction,
    api::{TxState, TxStatus},
};

#[path = "processes/hostile.rs"]
mod hostile;
#[path = "processes/kv_cli.rs"]
mod kv_cli;
#[path = "processes/objects.rs"]
mod objects;
#[path = "processes/recipients.rs"]
mod recipients;
#[path = "processes/secrets.rs"]
mod secrets;
mod support;
#[path = "processes/time.rs"]
mod time;
#[path = "processes/time_clients.rs"]
mod time_clients;
#[path = "processes/transit.rs"]
mod transit;

const NODES: usize = 4;

/// The first API port: node i serves its API on `api_base() + i` and p2p on
/// `p2p_base() + i`, all chosen once per run among free ports.
fn api_base() -> u16 {
    static BASE: std::sync::LazyLock<u16> = std::sync::LazyLock::new(|| {
        support::free_base(&[
            0, 1, 2, 3, 100, 101, 102, 103, 200, 201, 202, 203, 300, 301, 302, 303,
        ])
    });
    *BASE
}

/// The first p2p port.
fn p2p_base() -> u16 {
    api_base() + 100
}

/// The `welkin` binary, with its pinned clusters kept in this run's directory.
fn welkin() -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_welkin"));
    command.env(
        "WELKIN_CONFIG_DIR",
        std::env::temp_dir()
            .join(format!("welkin-processes-{}", std::process::id()))
            .join("config"),
    );
    command
}

fn run_ok(command: &mut Command) -> String {
    let output = command.output().expect("welkin runs");
    assert!(
        output.status.success(),
        "command failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock after 1970")
        .as_millis() as u64
}

struct Cluster {
    dir: PathBuf,
    children: Vec<Option<Child>>,
    clients: Vec<Client>,
}

/// `welkin genesis` refuses an unsigned registration and one whose encryption key was
/// swapped after signing, naming the node, and writes nothing.
fn ceremony_refusals(dir: &Path, nodes: &[serde_json::Value]) {
    let refused = |nodes: Vec<serde_json::Value>| {
        let path = dir.join("nodes-bad.json");
        std::fs::write(&path, serde_json::to_string(&nodes).expect("json")).expect("write");
        let output = welkin()
            .arg("genesis")
            .arg("--nodes")
            .arg(&path)
            .arg("--out-dir")
            .arg(dir)
            .output()
            .expect("welkin runs");
        assert!(!output.status.success(), "refused");
        assert!(!dir.join("genesis.json").exists(), "nothing written");
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let mut swapped = nodes.to_vec();
    swapped[1]["encryption_key"] = nodes[0]["encryption_key"].clone();
    let message = refused(swapped);
    assert!(
        message.contains("node node1: registration signature does not verify"),
        "{message}"
    );
    let mut unsigned = nodes.to_vec();
    unsigned[2]
        .as_object_mut()
        .expect("registration object")
        .remove("signature");
    let message = refused(unsigned);
    assert!(
        message.contains("node node2: registration is not signed"),
        "{message}"
    );
}

impl Cluster {
    /// Creates keys, the genesis and configs through the CLI.
    fn create(dir: &Path) -> Self {
        let _ = std::fs::remove_dir_all(dir);
        std::fs::create_dir_all(dir).expect("temp dir");
        let mut nodes = Vec::new();
        for i in 0..NODES {
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir).expect("node dir");
            let key = run_ok(
                welkin()
                    .args(["key", "new", "--json", "--out"])
                    .arg(node_dir.join("node.key")),
            );
            let key: serde_json::Value =
                serde_json::from_str(&key).expect("key new --json prints JSON");
            let registration = run_ok(
                welkin()
                    .args(["key", "register", "--key"])
                    .arg(node_dir.join("node.key"))
                    .args(["--name", &format!("node{i}")])
                    .args([
                        "--p2p-address",
                        &format!("127.0.0.1:{}", p2p_base() + i as u16),
                    ])
                    .args([
                        "--api-address",
                        &format!("127.0.0.1:{}", api_base() + i as u16),
                    ])
                    .args(["--failure-domain", &format!("rack-{}", i % 2)]),
            );
            let registration: serde_json::Value =
                serde_json::from_str(&registration).expect("key register prints JSON");
            assert_eq!(registration["public_key"], key["public_key"]);
            assert_eq!(registration["encryption_key"], key["encryption_key"]);
            nodes.push(registration);
            std::fs::write(
                node_dir.join("node.toml"),
                "data_dir = \"data\"\nkey_file = \"node.key\"\nshare_file = \"../shares/node{i}.share\"\ngenesis_file = \"../genesis.json\"\n"
                    .replace("{i}", &i.to_string())
                    + &time::config_table(api_base(), i)
                    + objects::CONFIG_TABLE,
            )
            .expect("node config");
        }
        std::fs::write(
            dir.join("nodes.json"),
            serde_json::to_string(&nodes).expect("json"),
        )
        .expect("nodes file");
        ceremony_refusals(dir, &nodes);
        // One operator admits new nodes: the identifier of a plain key file.
        run_ok(
            welkin()
                .args(["key", "new", "--out"])
                .arg(dir.join("operator.key")),
        );
        let operator = run_ok(
            welkin()
                .args(["membership", "operator-id", "--key"])
                .arg(dir.join("operator.key")),
        );
        let operator = operator.trim().to_string();
        assert!(
            operator.starts_with('B'),
            "a non-transferable identifier: {operator}"
        );
        let genesis = move || {
            let mut command = welkin();
            command
                .arg("genesis")
                .args(["--operator", &operator, "--approvals", "1"])
                // Dealt, so that the tests can forge with a quorum of shares (the split-view
                // alarm, the confidentiality checks); `tests/dev.rs` runs a dealerless cluster.
                .arg("--trusted-dealer")
                .arg("--nodes")
                .arg(dir.join("nodes.json"))
                .arg("--out-dir")
                .arg(dir);
            command
        };
        run_ok(&mut genesis());
        let again = genesis().output().expect("welkin runs");
        assert!(!again.status.success(), "a second ceremony is refused");
        let message = String::from_utf8_lossy(&again.stderr);
        assert!(message.contains("genesis.json exists already"), "{message}");
        let clients = (0..NODES)
            .map(|i| Client::new(&format!("http://127.0.0.1:{}", api_base() + i as u16)))
            .collect();
        Self {
            dir: dir.to_path_buf(),
            children: (0..NODES).map(|_| None).collect(),
            clients,
        }
    }

    fn start(&mut self, i: usize) {
        let node_dir = self.dir.join(format!("node{i}"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node_dir.join("node.log"))
            .expect("log");
        let child = welkin()
            .arg("node")
            .arg("--config")
            .arg(node_dir.join("node.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("log"))
            .stderr(log)
            .spawn()
            .expect("node starts");
        self.children[i] = Some(child);
    }

    fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.children[i].take() {
            child.kill().expect("SIGKILL");
            child.wait().expect("reaped");
        }
    }

    fn wait_ready(&self, nodes: &[usize]) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !nodes.iter().all(|&i| self.clients[i].health().is_ok()) {
            assert!(
                Instant::now() < deadline,
                "nodes {nodes:?} not ready; see {}",
                self.dir.display()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    fn height(&self, i: usize) -> u64 {
        self.clients[i].status().map(|s| s.height).unwrap_or(0)
    }

    fn wait_height(&self, nodes: &[usize], height: u64) {
        let deadline = Instant::now() + Duration::from_secs(90);
        while !nodes.iter().all(|&i| self.height(i) >= height) {
            assert!(
                Instant::now() < deadline,
                "nodes {nodes:?} did not reach height {height}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..NODES {
            self.kill(i);
        }
    }
}

struct Signer {
    key: PrivateKey,
    cluster_id: Digest,
    next_nonce: u64,
}

impl Signer {
    fn tx(&mut self, payload: Payload) -> SignedTransaction {
        self.next_nonce += 1;
        self.tx_with(self.next_nonce, now_ms() + 120_000, payload)
    }

    fn tx_with(&self, nonce: u64, expiry_ms: u64, payload: Payload) -> SignedTransaction {
        Transaction {
            sender: Sender::Key(self.key.public_key()),
            nonce,
            expiry_ms,
            payload,
        }
        .sign(&self.key, &self.cluster_id)
    }
}

fn commit(client: &Client, tx: &SignedTransaction) -> Receipt {
    let status = client
        .submit(tx, Some(Duration::from_secs(30)))
        .expect("submission is accepted");
    assert_eq!(
        status.state,
        TxState::Committed,
        "committed within the wait"
    );
    assert!(status.checkpoint.is_some() || status.receipt.is_some());
    status.receipt.expect("committed status has a receipt")
}

fn assert_everywhere(cluster: &Cluster, acked: &BTreeMap<Digest, Receipt>) {
    for (i, client) in cluster.clients.iter().enumerate() {
        for (id, receipt) in acked {
            let status: TxStatus = client.tx_status(id).expect("status query");
            assert_eq!(
                status.receipt.as_ref(),
                Some(receipt),
                "node{i} lost acknowledged transaction {id}"
            );
        }
    }
}

fn raw_post(url: &str, body: Vec<u8>) -> (u16, serde_json::Value) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent
        .post(url)
        .header("content-type", "application/json")
        .send(&body[..])
        .expect("request sent");
    let status = response.status().as_u16();
    let text = response.body_mut().read_to_string().unwrap_or_default();
    (
        status,
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    )
}

fn raw_get(url: &str) -> (u16, serde_json::Value) {
    let (status, body) = raw_get_bytes(url);
    (
        status,
        serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
    )
}

fn expect_http((status, body): (u16, serde_json::Value), expected: u16, code: &str) {
    assert_eq!(status, expected, "HTTP status for {code}: {body}");
    assert_eq!(
        body["error"]["code"].as_str(),
        Some(code),
        "error code: {body}"
    );
}

/// Each `(path below base, HTTP status, error code)` is refused as stated.
fn expect_errors(base: &str, cases: &[(&str, u16, &str)]) {
    for (path, status, code) in cases {
        expect_http(raw_get(&format!("{base}/{path}")), *status, code);
    }
}

fn expect_api_error(result: Result<TxStatus, ClientError>, code: &str) {
    match result {
        Err(ClientError::Api { code: got, .. }) => assert_eq!(got, code),
        other => panic!("expected API error {code}, got {other:?}"),
    }
}

fn bad_input(cluster: &Cluster, signer: &mut Signer) {
    let api = format!("http://127.0.0.1:{}", api_base());
    let client = &cluster.clients[0];
    expect_http(
        raw_post(&format!("{api}/v1/tx"), b"not json".to_vec()),
        400,
        "bad_json",
    );
    expect_http(
        raw_post(&format!("{api}/v1/tx"), br#"{"tx":"zz"}"#.to_vec()),
        400,
        "bad_hex",
    );
    expect_http(
        raw_post(
            &format!("{api}/v1/tx"),
            br#"{"tx":"01ab","extra":1}"#.to_vec(),
        ),
        400,
        "bad_json",
    );
    expect_http(
        raw_post(&format!("{api}/v1/tx"), br#"{"tx":"0100"}"#.to_vec()),
        422,
        "malformed",
    );
    expect_http(
        raw_post(&format!("{api}/v1/tx"), br#"{"tx":"0700"}"#.to_vec()),
        422,
        "unsupported_version",
    );
    let huge = vec![b' '; welkin_node::api::MAX_BODY_BYTES + 1];
    expect_http(
        raw_post(&format!("{api}/v1/txs"), huge),
        413,
        "body_too_large",
    );
    let big_tx = format!(
        r#"{{"tx":"{}"}}"#,
        "ab".repeat(welkin_types::limits::MAX_TX_BYTES + 1)
    );
    expect_http(
        raw_post(&format!("{api}/v1/tx"), big_tx.into_bytes()),
        413,
        "too_large",
    );

    // Wrongly signed: a valid transaction with another transaction's signature.
    let good = signer.tx(Payload::Memo(b"x".to_vec()));
    let other = signer.tx(Payload::Memo(b"y".to_vec()));
    let forged = SignedTransaction::new(good.tx.clone(), other.signatures.clone());
    expect_api_error(client.submit(&forged, None), "bad_signature");
    // Signed for another cluster.
    let foreign = Signer {
        key: signer.key.clone(),
        cluster_id: welkin_types::hash_parts(&[b"elsewhere"]),
        next_nonce: 0,
    };
    expect_api_error(
        client.submit(
            &foreign.tx_with(999_999, now_ms() + 60_000, Payload::Memo(vec![])),
            None,
        ),
        "bad_signature",
    );
    // Expired, and too far in the future.
    expect_api_error(
        client.submit(
            &signer.tx_with(500_000, now_ms() - 1_000, Payload::Memo(vec![])),
            None,
        ),
        "expired",
    );
    expect_api_error(
        client.submit(
            &signer.tx_with(500_001, now_ms() + 3_600_000, Payload::Memo(vec![])),
            None,
        ),
        "ttl_too_long",
    );
    // Replay: the same nonce with a different payload after the first committed.
    let first = signer.tx(Payload::Memo(b"first".to_vec()));
    commit(client, &first);
    let replay = signer.tx_with(
        first.tx.nonce,
        first.tx.expiry_ms,
        Payload::Memo(b"second".to_vec()),
    );
    expect_api_error(client.submit(&replay, None), "replay");
    // Resubmitting the very same transaction is idempotent: it reports the existing receipt.
    let again = client
        .submit(&first, None)
        .expect("idempotent resubmission");
    assert_eq!(again.state, TxState::Committed);

    expect_http(raw_get(&format!("{api}/v1/tx/not-hex")), 400, "bad_id");
    expect_http(raw_get(&format!("{api}/v1/block/abc")), 400, "bad_height");
    expect_http(
        raw_get(&format!("{api}/v1/block/999999999")),
        404,
        "not_found",
    );
    // Paths the Welkin API does not claim are Vault's, with Vault's 404.
    let (status, body) = raw_get(&format!("{api}/v1/nothing"));
    assert_eq!((status, body), (404, serde_json::json!({"errors": []})));
    client
        .health()
        .expect("the node keeps serving after bad input");
}

/// `welkin log append` then `welkin log verify` offline; tampering is caught precisely.
fn raw_get_bytes(url: &str) -> (u16, Vec<u8>) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .build()
        .into();
    let mut response = agent.get(url).call().expect("request sent");
    let status = response.status().as_u16();
    let body = response.body_mut().read_to_vec().unwrap_or_default();
    (status, body)
}

/// The body of `url` once it answers 200 with a body `ready` accepts (nodes apply a committed
/// block at slightly different times); fails after 20 s.
fn served_eventually(url: &str, ready: impl Fn(&[u8]) -> bool) -> Vec<u8> {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let (status, body) = raw_get_bytes(url);
        if status == 200 && ready(&body) {
            return body;
        }
        assert!(
            Instant::now() < deadline,
            "{url} still answers {status}: {}",
            String::from_utf8_lossy(&body)
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Checkpoints by size and the C2SP tiles of a node: a tile-reading client rebuilds the
/// certified root from the tiles and checks the entry bundle against them.
fn log_tiles_and_checkpoints_by_size(
    genesis: &welkin_types::Genesis,
    genesis_path: &Path,
    size: u64,
) {
    let api = format!("http://127.0.0.1:{}/v1/log", api_base() + 2);
    let (status, note) = raw_get_bytes(&format!("{api}/checkpoint?size={size}"));
    assert_eq!(status, 200);
    let (by_size, _) = welkin_client::verify_checkpoint_note(
        &String::from_utf8_lossy(&note),
        genesis,
        genesis.dealt_key().expect("dealt"),
    )
    .expect("note by size verifies");
    assert_eq!(by_size.checkpoint.log_size, size);
    let shown = run_ok(
        welkin()
            .args(["log", "checkpoint", "--json", "--size", &size.to_string()])
            .args(["--api", &format!("http://127.0.0.1:{}", api_base() + 2)])
            .arg("--genesis")
            .arg(genesis_path),
    );
    let shown: serde_json::Value = serde_json::from_str(&shown).expect("JSON");
    assert_eq!(shown["verified"], true);
    assert_eq!(shown["log_size"], size);
    assert!(shown["cosigners"].as_array().is_some_and(|c| c.len() >= 3));
    expect_errors(
        &api,
        &[
            ("checkpoint?size=1000000", 404, "no_checkpoint_at_size"),
            ("checkpoint?size=1&height=1", 400, "bad_query"),
            ("checkpoint?height=99999999", 404, "not_certified"),
        ],
    );

    // The level-0 tiles hold every leaf hash: full tiles of 256, then a partial one. (How many
    // entries the test log has depends on timing: the shredding test writes filler until
    // marshal's cache lets go.)
    let tile_path = |index: u64| {
        let width = (size - index * 256).min(256);
        if width == 256 {
            format!("{index:03}")
        } else {
            format!("{index:03}.p/{width}")
        }
    };
    let tiles = size.div_ceil(256);
    assert!(tiles < 1000, "tile indexes of three digits: {size} entries");
    let mut hashes: Vec<[u8; 32]> = Vec::new();
    let mut bundles = Vec::new();
    for index in 0..tiles {
        let (status, tile) = raw_get_bytes(&format!("{api}/tile/0/{}", tile_path(index)));
        assert_eq!(status, 200);
        hashes.extend(
            tile.chunks(32)
                .map(|c| <[u8; 32]>::try_from(c).expect("32-byte hashes")),
        );
        let (status, bundle) = raw_get_bytes(&format!("{api}/tile/entries/{}", tile_path(index)));
        assert_eq!(status, 200);
        bundles.extend(bundle);
    }
    assert_eq!(hashes.len() as u64, size);
    assert_eq!(
        welkin_merkle::root(&hashes),
        by_size.checkpoint.log_root.0,
        "the tiles' leaves rebuild the certified root"
    );
    let mut rest = bundles.as_slice();
    for hash in &hashes {
        let len = usize::from(u16::from_be_bytes([rest[0], rest[1]]));
        assert_eq!(&welkin_merkle::leaf_hash(&rest[2..2 + len]), hash);
        rest = &rest[2 + len..];
    }
    assert!(rest.is_empty(), "the bundles hold exactly the entries");
    let beyond = format!("{tiles:03}");
    expect_errors(
        &api,
        &[
            (&format!("tile/0/{beyond}") as &str, 404, "tile_not_found"),
            ("tile/1/001", 404, "tile_not_found"),
            (&format!("tile/entries/{beyond}"), 404, "tile_not_found"),
            ("tile/0/1", 400, "bad_tile_path"),
            ("tile/0/000.p/0", 400, "bad_tile_path"),
            ("tile/0/000.p/256", 400, "bad_tile_path"),
            ("tile/64/000", 400, "bad_tile_path"),
            ("tile/0/x000/001", 400, "bad_tile_path"),
            ("tile/entries/", 400, "bad_tile_path"),
        ],
    );
}

/// Signs `checkpoint` with the cluster key, as 2f+1 colluding nodes could: the test holds
/// the node keys, so it opens three shares and recovers the threshold signature.
fn sign_as_cluster(
    dir: &Path,
    genesis: &welkin_types::Genesis,
    checkpoint: welkin_types::Checkpoint,
) -> welkin_types::CertifiedCheckpoint {
    use commonware_cryptography::bls12381::primitives::ops::threshold;
    use welkin_node::ceremony::{NodeKey, SealedShare, open_share};
    let cluster_id = genesis.cluster_id();
    let message = checkpoint.message(&cluster_id);
    let partials: Vec<_> = (0..genesis.threshold as usize)
        .map(|i| {
            let read = |path: PathBuf| std::fs::read_to_string(path).expect("readable");
            let key =
                NodeKey::from_json(&read(dir.join(format!("node{i}/node.key")))).expect("key");
            let sealed: SealedShare =
                serde_json::from_str(&read(dir.join(format!("shares/node{i}.share"))))
                    .expect("share");
            let share = open_share(&sealed, &key, &cluster_id).expect("opens");
            threshold::sign_message::<welkin_types::Variant>(
                &share,
                welkin_types::namespace::CHECKPOINT,
                &message,
            )
        })
        .collect();
    let signature = threshold::recover::<welkin_types::Variant, _>(
        genesis.polynomial.as_ref().expect("dealt"),
        partials.iter(),
        &commonware_parallel::Sequential,
    )
    .expect("recovers");
    let certified = welkin_types::CertifiedCheckpoint {
        checkpoint,
        signature,
    };
    assert!(certified.verify(&cluster_id, genesis.dealt_key().expect("dealt")));
    certified
}

/// Reads an HTTP request up to the end of its head.
fn read_request_head(stream: &mut std::net::TcpStream) -> Vec<u8> {
    use std::io::Read as _;
    let mut request = Vec::new();
    let mut buf = [0u8; 1024];
    while !request.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => request.extend_from_slice(&buf[..n]),
        }
    }
    request
}

/// Serves `note` at `/v1/log/checkpoint` (and 404 for everything else) from a thread, as a
/// node showing a forked view would; returns its URL.
fn serve_forged_note(note: String) -> String {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let request = read_request_head(&mut stream);
            let (status, body) = if request.starts_with(b"GET /v1/log/checkpoint ") {
                ("200 OK", note.clone())
            } else {
                ("404 Not Found", "{}".to_string())
            };
            let _ = write!(
                stream,
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    url
}

/// Proxies every GET to `real`, but turns the receipt in state proofs and transaction
/// statuses into a rejection: a node that lies about what happened. Returns its URL.
fn serve_lying_receipts(real: String) -> String {
    use std::io::Write as _;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    std::thread::spawn(move || {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .into();
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let request = read_request_head(&mut stream);
            let head = String::from_utf8_lossy(&request);
            let path = head.split(' ').nth(1).unwrap_or("/").to_string();
            let Ok(mut response) = agent.get(&format!("{real}{path}")).call() else {
                continue;
            };
            let status = response.status().as_u16();
            let mut body = response.body_mut().read_to_vec().unwrap_or_default();
            if status == 200 && path.starts_with("/v1/state/proof") {
                let mut reply =
                    welkin_types::decode::<welkin_types::proof::ValueProof>(&body).expect("proof");
                if let Ok(mut receipt) = welkin_types::decode::<Receipt>(&reply.value) {
                    receipt.outcome = welkin_types::Outcome::Rejected;
                    reply.value = receipt.encode().to_vec();
                }
                body = reply.encode().to_vec();
            } else if status == 200 && path.starts_with("/v1/tx/") {
                let mut json: serde_json::Value = serde_json::from_slice(&body).expect("json");
                json["receipt"]["outcome"] = "rejected".into();
                body = serde_json::to_vec(&json).expect("json");
            }
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
                body.len()
            );
            let _ = stream.write_all(&body);
        }
    });
    url
}

/// Replies are checked before they are called verified: the SDK verifies a KV value against
/// the genesis cluster key; `welkin tx status` and `welkin block` print "verified" for an
/// honest node, and refuse a node that alters the receipt (saying so, printing nothing as
/// verified); a node serving another cluster key than the pinned one is refused.
fn replies_are_verified(dir: &Path, cluster: &Cluster, signer: &mut Signer) {
    let genesis_path = dir.join("genesis.json");
    let genesis =
        welkin_types::Genesis::from_json(&std::fs::read_to_string(&genesis_path).expect("genesis"))
            .expect("valid");
    let trusted = welkin_client::Trusted::from_dealt_genesis(&genesis).expect("dealt");
    let tx = signer.tx(Payload::Put {
        key: b"proved".to_vec(),
        value: b"yes".to_vec(),
    });
    commit(&cluster.clients[1], &tx);
    let owner = welkin_client::KvOwner::Key(signer.key.public_key());
    let value = cluster.clients[1]
        .verified_kv(&owner, b"proved", &trusted)
        .expect("verifies")
        .expect("the value exists");
    assert_eq!(value.value, b"yes");
    let receipt_proof = cluster.clients[1]
        .value_proof(&welkin_state::keys::receipt(&tx.id()))
        .expect("served")
        .expect("exists");
    eprintln!(
        "state proof of a receipt: {} bytes encoded, checkpoint height {}",
        receipt_proof.encode().len(),
        receipt_proof.certified.checkpoint.height
    );

    let real = format!("http://127.0.0.1:{}", api_base() + 1);
    let id = hex::encode(tx.id());
    let honest = run_ok(
        welkin()
            .args(["tx", "status", &id, "--api", &real, "--genesis"])
            .arg(&genesis_path),
    );
    assert!(honest.contains("verified     receipt proven"), "{honest}");
    assert!(honest.contains("Applied"), "{honest}");
    let block = run_ok(
        welkin()
            .args(["block", "latest", "--api", &real, "--genesis"])
            .arg(&genesis_path),
    );
    assert!(
        block.contains("verified: a finalization certificate"),
        "{block}"
    );
    let first = run_ok(
        welkin()
            .args(["block", "0", "--api", &real, "--genesis"])
            .arg(&genesis_path),
    );
    assert!(first.contains("verified: the genesis block"), "{first}");
    // Pinned on first use, without the genesis file: the members' keys come from the node's
    // `GET /v1/genesis`, accepted because its hash is the pinned cluster id.
    let pins = dir.join("block-pins");
    std::fs::create_dir_all(&pins).expect("config dir");
    let pinned = run_ok(
        welkin()
            .env("WELKIN_CONFIG_DIR", &pins)
            .args(["block", "latest", "--api", &real]),
    );
    assert!(
        pinned.contains("verified: a finalization certificate signed by a quorum"),
        "{pinned}"
    );
    served_genesis_and_stage_metrics(&real, &genesis);

    let liar = serve_lying_receipts(real.clone());
    for genesis_flag in [true, false] {
        let mut command = welkin();
        command.args(["tx", "status", &id, "--api", &liar]);
        if genesis_flag {
            command.arg("--genesis").arg(&genesis_path);
        }
        let output = command.output().expect("welkin runs");
        let stdout = String::from_utf8_lossy(&output.stdout);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            !output.status.success(),
            "a lying node is refused: {stdout}"
        );
        assert!(
            stderr.contains("does not verify against the cluster key"),
            "{stderr}"
        );
        assert!(
            !stdout.contains("verified") && !stdout.contains("certified"),
            "{stdout}"
        );
        if !genesis_flag {
            assert!(
                stderr.contains("first use"),
                "trust on first use is said: {stderr}"
            );
        }
    }

    // A pinned key that the node does not serve: refused.
    let config = dir.join("other-config");
    std::fs::create_dir_all(&config).expect("config dir");
    std::fs::write(
        config.join("known-clusters.json"),
        serde_json::json!({ real.clone(): {
            "cluster_id": hex::encode(genesis.cluster_id()),
            "cluster_key": another_cluster_key(),
        }})
        .to_string(),
    )
    .expect("write pins");
    let output = welkin()
        .env("WELKIN_CONFIG_DIR", &config)
        .args(["tx", "status", &id, "--api", &real])
        .output()
        .expect("welkin runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success());
    assert!(stderr.contains("pins cluster key"), "{stderr}");
}

/// The node serves the genesis it runs, and its metrics time the transactions it received
/// through every stage up to the acknowledgement.
fn served_genesis_and_stage_metrics(api: &str, genesis: &welkin_types::Genesis) {
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let get = |path: &str| {
        agent
            .get(&format!("{api}{path}"))
            .call()
            .unwrap_or_else(|e| panic!("GET {path}: {e}"))
            .body_mut()
            .read_to_string()
            .expect("a text body")
    };
    let served = welkin_types::Genesis::from_json(&get("/v1/genesis")).expect("valid genesis");
    assert_eq!(served.cluster_id(), genesis.cluster_id());
    let metrics = get("/metrics");
    let count = |stage: &str| -> u64 {
        let wanted = format!("tx_stage_seconds_count{{stage=\"{stage}\"}} ");
        metrics
            .lines()
            .find_map(|line| line.split_once(&wanted).map(|(_, v)| v.trim()))
            .and_then(|v| v.parse().ok())
            .unwrap_or_else(|| panic!("no {wanted} in /metrics"))
    };
    for stage in [
        "admitted",
        "gossiped",
        "finalized",
        "applied",
        "acknowledged",
    ] {
        assert!(count(stage) > 0, "no transaction timed at stage {stage}");
    }
    assert!(
        metrics.contains("block_stage_seconds_count{stage=\"state_commit\"}"),
        "block stages are served"
    );
}

/// The public key (hex) of a freshly dealt cluster: not this cluster's.
fn another_cluster_key() -> String {
    use commonware_cryptography::bls12381::{
        dkg::feldman_desmedt::deal_anonymous, primitives::sharing::Mode,
    };
    let (sharing, _) = deal_anonymous::<welkin_types::Variant, commonware_utils::N3f1>(
        commonware_utils::rng::TestRng::new(77),
        Mode::NonZeroCounter,
        commonware_utils::NZU32!(4),
    );
    hex::encode(sharing.public().encode())
}

/// `welkin log watch` over an honest node and a node serving a cluster-signed checkpoint of
/// another history exits with code 3 and prints both checkpoints: same size with another
/// root, and a smaller size whose root the honest log does not extend.
fn watch_alarms_on_a_split_view(
    dir: &Path,
    genesis: &welkin_types::Genesis,
    honest: &welkin_types::CertifiedCheckpoint,
) {
    let real = format!("http://127.0.0.1:{}", api_base() + 1);
    let forged_root = welkin_types::hash_parts(&[b"another history"]);
    for (what, log_size) in [
        ("same size", honest.checkpoint.log_size),
        ("smaller size", honest.checkpoint.log_size - 1),
    ] {
        let forged = sign_as_cluster(
            dir,
            genesis,
            welkin_types::Checkpoint {
                log_size,
                log_root: forged_root,
                ..honest.checkpoint
            },
        );
        let note = welkin_types::note::to_note(
            &forged,
            &genesis.cluster_id(),
            genesis.dealt_key().expect("dealt"),
        )
        .format()
        .expect("formats");
        let fake = serve_forged_note(note);
        let output = welkin()
            .args([
                "log",
                "watch",
                "--rounds",
                "2",
                "--interval-ms",
                "100",
                "--api",
            ])
            .arg(format!("{real},{fake}"))
            .arg("--genesis")
            .arg(dir.join("genesis.json"))
            .output()
            .expect("watch runs");
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(3), "{what}: {stderr}");
        assert!(stderr.contains("SPLIT VIEW"), "{what}: {stderr}");
        assert!(
            stderr.contains(&hex::encode(forged_root)) && stderr.contains(&fake),
            "{what}: the forged checkpoint is printed as evidence: {stderr}"
        );
    }
}

/// `welkin id` against the cluster: incept, rotate, interact, a delegated inception approved
/// by its delegator's anchor, the served key state and KEL, and refusals.
fn identities(dir: &Path) {
    let api = format!("http://127.0.0.1:{}", api_base() + 3);
    let keystore = dir.join("keystore.json");
    let id = |args: &[&str]| {
        let mut command = welkin();
        command
            .arg("id")
            .args(args)
            .args(["--api", &api, "--keystore"])
            .arg(&keystore)
            .env("WELKIN_PASSPHRASE", "correct horse battery staple");
        command
    };
    let json = |args: &[&str]| -> serde_json::Value {
        let mut command = id(args);
        command.arg("--json");
        serde_json::from_str(&run_ok(&mut command)).expect("--json prints JSON")
    };
    let incepted = json(&["incept", "--name", "alice"]);
    let alice = incepted["state"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_string();
    assert_eq!(incepted["state"]["sn"], 0);
    // Transactions signed by the identifier, with whatever keys a keystore holds for it.
    let tx_as = |store: &Path, value: &str| {
        welkin()
            .args([
                "tx", "submit", "--as", "alice", "--wait", "--json", "--api", &api,
            ])
            .arg(format!("--keystore={}", store.display()))
            .env("WELKIN_PASSPHRASE", "correct horse battery staple")
            .args(["put", "color", value])
            .output()
            .expect("welkin tx runs")
    };
    let output = tx_as(&keystore, "blue");
    assert!(output.status.success(), "{output:?}");
    let status: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(status["receipt"]["outcome"], "applied", "{status}");
    let before_rotation = std::fs::read(&keystore).expect("keystore");
    let old_keystore = dir.join("keystore-before-rotation.json");
    std::fs::write(&old_keystore, &before_rotation).expect("copy");
    let rotated = json(&["rotate", "--name", "alice"]);
    assert_eq!(rotated["state"]["sn"], 1);
    // The rotated-out key no longer signs for alice, on any node; the new one does.
    let output = tx_as(&old_keystore, "red");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(!output.status.success(), "a rotated-out key was accepted");
    assert!(
        stderr.contains("not a current signing key") && stderr.contains(&alice),
        "{stderr}"
    );
    let output = tx_as(&keystore, "green");
    assert!(output.status.success(), "{output:?}");
    // A crash after the rotation was committed but before the keystore recorded it: the
    // keystore still has the old keys plus the pending commitment. Rotating again finishes
    // the rotation without submitting a second one.
    {
        let passphrase = "correct horse battery staple";
        let after = welkin_keystore::Keystore::open_or_create(&keystore, passphrase)
            .expect("opens")
            .get("alice")
            .expect("alice")
            .clone();
        std::fs::write(&keystore, &before_rotation).expect("restore");
        let mut store =
            welkin_keystore::Keystore::open_or_create(&keystore, passphrase).expect("opens");
        store.get_mut("alice").expect("alice").pending_next = after.next.clone();
        store.save().expect("save");
        let finished = json(&["rotate", "--name", "alice"]);
        assert_eq!(
            finished["state"]["sn"], 1,
            "no second rotation was submitted"
        );
        let store =
            welkin_keystore::Keystore::open_or_create(&keystore, passphrase).expect("opens");
        let alice = store.get("alice").expect("alice");
        assert_eq!(alice.current, after.current);
        assert_eq!(alice.next, after.next);
        assert!(alice.pending_next.is_empty());
    }
    assert_ne!(
        rotated["state"]["keys"], incepted["state"]["keys"],
        "rotation revealed the pre-committed key"
    );
    assert_eq!(json(&["interact", "--name", "alice"])["state"]["sn"], 2);

    // A delegated identifier waits for its delegator's anchor.
    let delegated = run_ok(&mut id(&["incept", "--name", "bob", "--delegator", &alice]));
    let anchor = delegated
        .split_whitespace()
        .find(|word| word.starts_with('E') && word.contains(':'))
        .expect("the command says what to anchor")
        .to_string();
    let bob = anchor.split(':').next().expect("prefix").to_string();
    let (status, _) = raw_get(&format!("{api}/v1/id/{bob}"));
    assert_eq!(status, 404, "not accepted before the anchor");
    json(&["interact", "--name", "alice", "--anchor", &anchor]);
    let bob_state = json(&["show", &bob]);
    assert_eq!(bob_state["delegator"], alice.as_str());

    // Every node serves the same KEL, as JSON and as CESR.
    let kel = json(&["kel", "alice"]);
    let events = kel["events"].as_array().expect("events");
    let ilks: Vec<&str> = events.iter().filter_map(|e| e["ilk"].as_str()).collect();
    assert_eq!(ilks, ["icp", "rot", "ixn", "ixn"]);
    let cesr = run_ok(&mut id(&["kel", "alice", "--cesr"]));
    assert!(cesr.starts_with("{\"v\":\"KERI10JSON"));
    for node in 0..NODES as u16 {
        let url = format!(
            "http://127.0.0.1:{}/v1/id/{alice}/kel.cesr",
            api_base() + node
        );
        let other = served_eventually(&url, |body| body == cesr.as_bytes());
        assert_eq!(
            String::from_utf8_lossy(&other),
            cesr,
            "node {node} serves the same KEL"
        );
    }
    keripy_resolves(dir, &cesr, &alice, 3);

    // Witnessed by the nodes: keripy accepts the inception only with receipts from 2f+1
    // of them, each node's own, fetched from that node.
    let carol = json(&["incept", "--name", "carol", "--witnessed"]);
    assert_eq!(carol["state"]["bt"], 3);
    assert_eq!(
        carol["state"]["witnesses"].as_array().map(Vec::len),
        Some(4)
    );
    let carol = carol["state"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_string();
    // The command returned when the node it asked committed the inception; the others may
    // apply that block a moment later.
    let node_api = |i: u16| format!("http://127.0.0.1:{}", api_base() + i);
    let kel = served_eventually(&format!("{}/v1/id/{carol}/kel.cesr", node_api(0)), |_| true);
    let kel = String::from_utf8(kel).expect("utf-8");
    let receipts: Vec<String> = (0..3)
        .map(|i| {
            let url = format!("{}/v1/id/{carol}/receipts", node_api(i));
            String::from_utf8(served_eventually(&url, |_| true)).expect("utf-8")
        })
        .collect();
    assert_ne!(receipts[0], receipts[1], "each node signs its own receipt");
    keripy_resolves(dir, &format!("{kel}{}", receipts.concat()), &carol, 0);
    let two = format!("{kel}{}{}", receipts[0], receipts[1]);
    assert!(
        !keripy_states(dir, &two).contains_key(&carol),
        "two receipts of three required do not satisfy keripy"
    );
    let (status, oobi) = raw_get_bytes(&format!("{}/oobi/{carol}", node_api(1)));
    assert_eq!(status, 200);
    assert_eq!(
        String::from_utf8_lossy(&oobi),
        format!("{kel}{}", receipts[1]),
        "a node's OOBI stream is the KEL and its own receipts"
    );

    // Exported logs check offline against the genesis alone.
    let genesis = dir.join("genesis.json");
    let export = |who: &str| {
        let path = dir.join(format!("{who}.kel.json"));
        let out = format!("--out={}", path.display());
        run_ok(&mut id(&["export", who, &out]));
        path
    };
    let verify = |file: &Path, with: Option<&Path>| {
        let mut command = welkin();
        command
            .args(["id", "verify", "--json", "--genesis"])
            .arg(&genesis)
            .arg(file);
        if let Some(with) = with {
            command.arg("--with").arg(with);
        }
        command.output().expect("verify runs")
    };
    let alice_kel = export("alice");
    let output = verify(&alice_kel, None);
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let verified: serde_json::Value = serde_json::from_slice(&output.stdout).expect("JSON");
    assert_eq!(verified["state"]["sn"], 3);
    let bob_kel = export(&bob);
    let alone = verify(&bob_kel, None);
    assert!(!alone.status.success());
    assert!(String::from_utf8_lossy(&alone.stderr).contains("--with"));
    assert!(verify(&bob_kel, Some(&alice_kel)).status.success());
    let mut tampered: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&alice_kel).expect("export")).expect("json");
    let message = tampered["events"][1]["message"]
        .as_str()
        .expect("message")
        .to_string();
    tampered["events"][1]["message"] =
        serde_json::json!(message.replacen("\"s\":\"1\"", "\"s\":\"2\"", 1));
    let tampered_path = dir.join("tampered.kel.json");
    std::fs::write(&tampered_path, tampered.to_string()).expect("write");
    let refused = verify(&tampered_path, None);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr)
            .contains("event 1: the logged transaction carries a different event"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    // `welkin id delegate` finds the waiting delegated event and anchors it.
    let waiting = run_ok(&mut id(&[
        "incept",
        "--name",
        "dave",
        "--delegator",
        &alice,
    ]));
    let dave = waiting
        .split_whitespace()
        .find(|word| word.starts_with('E') && word.contains(':'))
        .and_then(|anchor| anchor.split(':').next())
        .expect("the command names the delegated identifier")
        .to_string();
    run_ok(&mut id(&[
        "delegate",
        "--name",
        "alice",
        "--approve",
        &dave,
    ]));
    assert_eq!(json(&["show", &dave])["delegator"], alice.as_str());
    let none = id(&["delegate", "--name", "alice", "--approve", &dave])
        .output()
        .expect("runs");
    assert!(!none.status.success(), "nothing is left to approve");
    assert!(String::from_utf8_lossy(&none.stderr).contains("no event waiting"));

    // Recovery: erin's interactions (say, by a thief with her signing key) are superseded by
    // a rotation to her pre-committed next key, which the thief does not have.
    let erin = json(&["incept", "--name", "erin"])["state"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_string();
    json(&["interact", "--name", "erin"]);
    json(&["interact", "--name", "erin"]);
    let before_recovery = export("erin");
    std::fs::rename(&before_recovery, dir.join("erin-before.kel.json")).expect("rename");
    let before_recovery = dir.join("erin-before.kel.json");
    let refused = id(&["recover", "--name", "erin", "--from", "0"])
        .output()
        .expect("runs");
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("supersedes interactions only"),
        "{refused:?}"
    );
    let recovered = json(&["recover", "--name", "erin"]);
    assert_eq!(recovered["state"]["sn"], 1);
    assert_eq!(recovered["state"]["ilk"], "rot");
    let kel = json(&["kel", &erin]);
    let ilks: Vec<&str> = kel["events"]
        .as_array()
        .expect("events")
        .iter()
        .filter_map(|e| e["ilk"].as_str())
        .collect();
    assert_eq!(ilks, ["icp", "rot"], "the interactions left the log");
    // An export holding the superseded interactions next to the recovery is refused, naming
    // the first superseded one, although each event has a valid certified receipt.
    let after_recovery = export("erin");
    assert!(verify(&after_recovery, None).status.success());
    let read_export = |path: &Path| -> serde_json::Value {
        serde_json::from_str(&std::fs::read_to_string(path).expect("export")).expect("json")
    };
    let mut mixed = read_export(&before_recovery);
    let rotation = read_export(&after_recovery)["events"][1].clone();
    mixed["events"]
        .as_array_mut()
        .expect("events")
        .push(rotation);
    let mixed_path = dir.join("erin-mixed.kel.json");
    std::fs::write(&mixed_path, mixed.to_string()).expect("write");
    let refused = verify(&mixed_path, None);
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(!refused.status.success());
    assert!(
        stderr.contains("event 1 (sn 1, ")
            && stderr.contains("was superseded by the recovery rotation event 3 (sn 1, "),
        "{stderr}"
    );
    for node in 0..NODES as u16 {
        let url = format!(
            "http://127.0.0.1:{}/v1/id/{erin}/superseded",
            api_base() + node
        );
        let body = served_eventually(&url, |body| body.windows(3).any(|w| w == b"ixn"));
        let record: serde_json::Value = serde_json::from_slice(&body).expect("JSON");
        let superseded: Vec<(u64, u64)> = record["events"]
            .as_array()
            .expect("events")
            .iter()
            .map(|e| {
                (
                    e["sn"].as_u64().expect("sn"),
                    e["recovery_sn"].as_u64().expect("recovery_sn"),
                )
            })
            .collect();
        assert_eq!(superseded, [(1, 1), (2, 1)], "node {node}");
    }
    keripy_states(dir, &run_ok(&mut id(&["kel", &erin, "--cesr"])))
        .get(&erin)
        .map(|state| {
            assert_eq!(state["sn"], 1, "keripy reads the recovered log");
            assert_eq!(state["digest"], recovered["state"]["digest"]);
        })
        .expect("keripy accepts erin's log");

    // Refusals: a bad prefix, an unknown identifier, a wrong passphrase.
    expect_errors(
        &format!("{api}/v1/id"),
        &[
            ("not-a-prefix", 400, "bad_prefix"),
            (
                "EAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
                404,
                "unknown_identifier",
            ),
        ],
    );
    let output = id(&["rotate", "--name", "alice"])
        .env("WELKIN_PASSPHRASE", "wrong")
        .output()
        .expect("runs");
    assert!(!output.status.success());
    assert!(String::from_utf8_lossy(&output.stderr).contains("wrong passphrase"));
}

/// The key states keripy 1.1.17 (the KERI reference implementation, installed by
/// welkin-keri's interop set-up) reaches from a CESR stream, by prefix.
fn keripy_states(dir: &Path, cesr: &str) -> serde_json::Map<String, serde_json::Value> {
    let keri = Path::new(env!("CARGO_MANIFEST_DIR")).join("../keri/tests/interop");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target directory")
        .to_path_buf();
    let venv = target.join("keripy-1.1.17");
    let setup = Command::new("bash")
        .arg(keri.join("setup.sh"))
        .arg(&venv)
        .output()
        .expect("bash runs");
    assert!(
        setup.status.success(),
        "keripy set-up failed (see crates/keri/README.md): {}",
        String::from_utf8_lossy(&setup.stderr)
    );
    let stream = dir.join("stream.cesr");
    std::fs::write(&stream, cesr).expect("write stream");
    let verified = run_ok(
        Command::new(venv.join("bin/python"))
            .arg(keri.join("keri_helper.py"))
            .arg("verify")
            .arg(&stream),
    );
    let verified: serde_json::Value = serde_json::from_str(&verified).expect("helper JSON");
    verified["states"]
        .as_object()
        .expect("states by prefix")
        .clone()
}

/// keripy accepts the stream the cluster serves up to sequence number `sn` of `prefix`.
fn keripy_resolves(dir: &Path, cesr: &str, prefix: &str, sn: u64) {
    let states = keripy_states(dir, cesr);
    let state = states
        .get(prefix)
        .unwrap_or_else(|| panic!("keripy accepted no event of {prefix}: {states:?}"));
    assert_eq!(state["sn"], sn, "keripy accepted every event: {state}");
}

fn audit_log(cluster: &Cluster, dir: &Path) {
    let api = format!("http://127.0.0.1:{}", api_base() + 1);
    let key = dir.join("client.key");
    run_ok(welkin().args(["key", "new", "--out"]).arg(&key));
    let file = dir.join("contract.txt");
    std::fs::write(&file, b"the terms, as agreed").expect("write file");
    run_ok(
        welkin()
            .args(["log", "append", "--api", &api, "--key"])
            .arg(&key)
            .arg(&file),
    );
    let receipt_path = dir.join("contract.txt.receipt.json");
    let genesis = dir.join("genesis.json");
    let verified = run_ok(
        welkin()
            .args(["log", "verify", "--json", "--genesis"])
            .arg(&genesis)
            .arg("--file")
            .arg(&file)
            .arg(&receipt_path),
    );
    let verified: serde_json::Value =
        serde_json::from_str(&verified).expect("verify --json prints JSON");
    assert_eq!(verified["verified"], true);

    // A different file, a tampered entry, a tampered proof: each fails with its own message.
    let other = dir.join("other.txt");
    std::fs::write(&other, b"different terms").expect("write file");
    let failure = |receipt: &Path, file: Option<&Path>| {
        let mut command = welkin();
        command
            .args(["log", "verify", "--genesis"])
            .arg(&genesis)
            .arg(receipt);
        if let Some(file) = file {
            command.arg("--file").arg(file);
        }
        let output = command.output().expect("welkin runs");
        assert!(!output.status.success(), "tampered receipt accepted");
        String::from_utf8_lossy(&output.stderr).to_string()
    };
    assert!(failure(&receipt_path, Some(&other)).contains("is not the recorded content"));
    let original: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&receipt_path).expect("receipt"))
            .expect("json");
    let tampered_path = dir.join("tampered.json");
    let mut tampered = original.clone();
    tampered["log_index"] = serde_json::json!(original["log_index"].as_u64().expect("index") + 1);
    std::fs::write(&tampered_path, tampered.to_string()).expect("write");
    assert!(failure(&tampered_path, None).contains("is not in the certified log"));
    let mut tampered = original.clone();
    // Claim a different height: the cluster never signed that.
    let checkpoint = original["checkpoint"].as_str().expect("hex");
    tampered["checkpoint"] = serde_json::json!(format!("01{}", &checkpoint[2..]));
    std::fs::write(&tampered_path, tampered.to_string()).expect("write");
    assert!(failure(&tampered_path, None).contains("not signed by the cluster key"));
    // Corrupt the signature itself: it no longer decodes as a curve point.
    let last = if checkpoint.ends_with('0') { "1" } else { "0" };
    tampered["checkpoint"] =
        serde_json::json!(format!("{}{last}", &checkpoint[..checkpoint.len() - 1]));
    std::fs::write(&tampered_path, tampered.to_string()).expect("write");
    assert!(failure(&tampered_path, None).contains("checkpoint is malformed"));

    // A transaction the cluster logged but refused (a key event that is not KERI): its
    // certified receipt verifies, and `log verify` says the entry was not applied.
    let cluster_id =
        welkin_types::Genesis::from_json(&std::fs::read_to_string(&genesis).expect("read genesis"))
            .expect("genesis parses")
            .cluster_id();
    let refused = Signer {
        key: PrivateKey::from_seed(77),
        cluster_id,
        next_nonce: 0,
    }
    .tx_with(
        1,
        now_ms() + 120_000,
        Payload::KeyEvent(b"not a key event".to_vec()),
    );
    let client = Client::new(&api);
    assert_eq!(
        commit(&client, &refused).outcome,
        welkin_types::Outcome::Rejected
    );
    let deadline = Instant::now() + Duration::from_secs(30);
    let receipt = loop {
        match client.log_receipt(&refused.id()) {
            Ok(receipt) => break receipt,
            Err(e) if Instant::now() > deadline => panic!("no certified receipt: {e}"),
            Err(_) => std::thread::sleep(Duration::from_millis(100)),
        }
    };
    let refused_path = dir.join("refused.receipt.json");
    std::fs::write(
        &refused_path,
        serde_json::to_string(&receipt).expect("json"),
    )
    .expect("write");
    let stderr = failure(&refused_path, None);
    assert!(
        stderr.contains("receipt verifies, but entry")
            && stderr.contains(
                "is in the certified log, but the cluster did not apply its transaction: \
                 rejected (malformed key event"
            ),
        "{stderr}"
    );

    // `log watch` follows two nodes: every checkpoint verifies and extends the previous one.
    let apis = format!(
        "http://127.0.0.1:{},http://127.0.0.1:{}",
        api_base(),
        api_base() + 2
    );
    let watched = run_ok(
        welkin()
            .args([
                "log",
                "watch",
                "--json",
                "--rounds",
                "3",
                "--interval-ms",
                "300",
                "--api",
                &apis,
            ])
            .arg("--genesis")
            .arg(&genesis),
    );
    let lines: Vec<serde_json::Value> = watched
        .lines()
        .map(|l| serde_json::from_str(l).expect("one JSON object per line"))
        .collect();
    assert!(!lines.is_empty(), "watch accepted no checkpoint");
    assert!(
        lines
            .iter()
            .all(|l| l["cosigners"].as_array().is_some_and(|c| c.len() >= 3)),
        "every checkpoint carries 2f+1 node cosignatures: {lines:?}"
    );

    // Log endpoints refuse bad ranges precisely.
    expect_errors(
        &format!("http://127.0.0.1:{}/v1/log", api_base()),
        &[
            ("entries?start=5&end=5", 400, "bad_range"),
            ("entries?start=0&end=100000", 400, "bad_range"),
            ("proof/inclusion?index=999999&size=3", 400, "bad_range"),
            ("proof/consistency?old=9&new=3", 400, "bad_range"),
            ("proof/inclusion?index=1&tx=00", 400, "bad_query"),
        ],
    );
    let _ = cluster;
}

/// A node asks to join through the CLI and the genesis operator admits it: the request and
/// the approval are committed and verified, the second approval is refused with its reason.
fn admission(dir: &Path) {
    let api = format!("http://127.0.0.1:{}", api_base() + 1);
    let genesis = dir.join("genesis.json");
    run_ok(
        welkin()
            .args(["key", "new", "--out"])
            .arg(dir.join("node9.key")),
    );
    let registration = run_ok(
        welkin()
            .args(["key", "register", "--key"])
            .arg(dir.join("node9.key"))
            .args(["--name", "node9", "--failure-domain", "rack-9"])
            .args([
                "--p2p-address",
                "127.0.0.1:1",
                "--api-address",
                "127.0.0.1:2",
            ]),
    );
    std::fs::write(dir.join("node9.json"), registration).expect("registration file");
    let proposed = run_ok(
        welkin()
            .args(["membership", "propose", "--key"])
            .arg(dir.join("node9.key"))
            .arg("--registration")
            .arg(dir.join("node9.json"))
            .args(["--api", &api, "--genesis"])
            .arg(&genesis),
    );
    assert!(
        proposed.contains("needs 1 operator approvals"),
        "{proposed}"
    );
    let request = proposed
        .lines()
        .find_map(|l| l.strip_prefix("request"))
        .expect("the request id is printed")
        .trim()
        .to_string();
    let approve = || {
        let mut command = welkin();
        command
            .args(["membership", "approve", &request, "--key"])
            .arg(dir.join("operator.key"))
            .args(["--api", &api, "--genesis"])
            .arg(&genesis);
        command
    };
    let approved = run_ok(&mut approve());
    assert!(approved.contains("admitted node9"), "{approved}");
    assert!(approved.contains("verified"), "{approved}");
    let again = run_ok(&mut approve());
    assert!(
        again.contains("Rejected") && again.contains("not open"),
        "{again}"
    );
    // With the admitted node counted, one member may leave (at the next epoch).
    let left = run_ok(
        welkin()
            .args(["membership", "leave", "--key"])
            .arg(dir.join("node3").join("node.key"))
            .args(["--api", &api, "--genesis"])
            .arg(&genesis),
    );
    assert!(left.contains("leaves at the next epoch"), "{left}");
    // An operator statement made by the CLI passes the cluster's verifier.
    run_ok(
        welkin()
            .args(["membership", "attest", "--registration"])
            .arg(dir.join("node9.json"))
            .arg("--out")
            .arg(dir.join("node9.evidence"))
            .arg("--key")
            .arg(dir.join("operator.key"))
            .args(["--api", &api, "--genesis"])
            .arg(&genesis),
    );
    let operator = run_ok(
        welkin()
            .args(["membership", "operator-id", "--key"])
            .arg(dir.join("operator.key")),
    );
    let parsed =
        welkin_types::Genesis::from_json(&std::fs::read_to_string(&genesis).expect("genesis"))
            .expect("valid");
    let registration: welkin_types::NodeInfo = serde_json::from_str(
        &std::fs::read_to_string(dir.join("node9.json")).expect("registration"),
    )
    .expect("a registration");
    let evidence = std::fs::read(dir.join("node9.evidence")).expect("evidence");
    let verifier = welkin_state::membership::verifier("operator-statement").expect("a verifier");
    let no_state = |_: &str| None;
    verifier
        .verify(&welkin_state::membership::Attestation {
            cluster_id: &parsed.cluster_id(),
            registration: &registration,
            evidence: &evidence,
            operators: &[operator.trim().to_string()],
            key_state: &no_state,
        })
        .expect("the statement verifies");
}

#[test]
fn cluster_of_processes_survives_kills_and_restarts() {
    let dir = std::env::temp_dir().join(format!("welkin-processes-{}", std::process::id()));
    let mut cluster = Cluster::create(&dir);
    for i in 0..NODES {
        cluster.start(i);
    }
    let all: Vec<usize> = (0..NODES).collect();
    cluster.wait_ready(&all);

    // The CLI reads the cluster too, as JSON.
    let status = run_ok(welkin().args([
        "status",
        "--json",
        "--api",
        &format!("http://127.0.0.1:{}", api_base()),
    ]));
    let status: serde_json::Value =
        serde_json::from_str(&status).expect("status --json prints JSON");
    let cluster_id = welkin_types::hexser::decode_hex::<Digest>(
        status["cluster_id"].as_str().expect("cluster id"),
    )
    .expect("hex");
    let mut signer = Signer {
        key: PrivateKey::from_seed(42),
        cluster_id,
        next_nonce: 0,
    };

    let mut acked = BTreeMap::new();
    for k in 0..12 {
        let tx = signer.tx(Payload::Put {
            key: format!("k{k}").into_bytes(),
            value: b"v".to_vec(),
        });
        acked.insert(tx.id(), commit(&cluster.clients[k % NODES], &tx));
    }

    // SIGKILL one node; the other three keep committing.
    cluster.kill(3);
    for k in 0..12 {
        let tx = signer.tx(Payload::Memo(
            format!("while node3 is down {k}").into_bytes(),
        ));
        acked.insert(tx.id(), commit(&cluster.clients[k % 3], &tx));
    }
    // Restart it: it catches up from its data directory and its peers.
    cluster.start(3);
    cluster.wait_ready(&[3]);
    let target = (0..3).map(|i| cluster.height(i)).max().unwrap_or(0);
    cluster.wait_height(&[3], target);
    assert_everywhere(&cluster, &acked);

    bad_input(&cluster, &mut signer);
    admission(&dir);

    // An empty node: wipe node2's storage and restart it; it rebuilds from its peers.
    cluster.kill(2);
    std::fs::remove_dir_all(dir.join("node2").join("data")).expect("wipe node2 data");
    let tx = signer.tx(Payload::Memo(b"while node2 is empty".to_vec()));
    acked.insert(tx.id(), commit(&cluster.clients[0], &tx));
    cluster.start(2);
    cluster.wait_ready(&[2]);
    let target = [0, 1, 3]
        .iter()
        .map(|&i| cluster.height(i))
        .max()
        .unwrap_or(0);
    cluster.wait_height(&[2], target);
    assert_everywhere(&cluster, &acked);

    // Kill every node at once, restart all: nothing acknowledged is lost.
    let before = (0..NODES).map(|i| cluster.height(i)).min().unwrap_or(0);
    for i in 0..NODES {
        cluster.kill(i);
    }
    for i in 0..NODES {
        cluster.start(i);
    }
    cluster.wait_ready(&all);
    cluster.wait_height(&all, before);
    assert_everywhere(&cluster, &acked);
    let tx = signer.tx(Payload::Memo(b"after full restart".to_vec()));
    acked.insert(tx.id(), commit(&cluster.clients[1], &tx));
    let height = acked.values().map(|r| r.height).max().unwrap_or(0);
    cluster.wait_height(&all, height);
    assert_everywhere(&cluster, &acked);

    audit_log(&cluster, &dir);
    replies_are_verified(&dir, &cluster, &mut signer);
    identities(&dir);

    // Secrets: the Vault API over HTTP, confidentiality against the nodes' own files, and
    // the hvac client unchanged.
    let root_token = std::fs::read_to_string(dir.join("root-token")).expect("root token");
    let root_token = root_token.trim();
    let genesis_now = welkin_types::Genesis::from_json(
        &std::fs::read_to_string(dir.join("genesis.json")).expect("genesis"),
    )
    .expect("valid genesis");
    let api0 = format!("http://127.0.0.1:{}", api_base());
    let api1 = format!("http://127.0.0.1:{}", api_base() + 1);
    secrets::vault_api(&api0, root_token);
    secrets::audit(&dir, &api0);
    secrets::confidentiality(&dir, &api1, root_token, &genesis_now);
    secrets::hvac(&api1, root_token);
    let carla = secrets::keri_login(&dir, &api0, root_token);
    transit::transit_api(&api0, root_token);
    transit::confidentiality(&dir, &api1, root_token);
    transit::hvac(&api1, root_token);
    transit::cli(&dir, &api0, root_token);
    transit::identity(&dir, &api1, root_token, &carla);
    time::certified(&dir, &api0, api_base());
    recipients::sealed_to_recipients(&dir, &api0, root_token);
    kv_cli::cli(&dir, &api1, root_token);
    objects::stored_objects(&mut cluster, &dir);

    // The checkpoint as a C2SP signed note: the cluster's signature and the serving node's
    // standard tlog cosignature both verify from the genesis alone.
    let genesis_text = std::fs::read_to_string(dir.join("genesis.json")).expect("genesis");
    let genesis_parsed = welkin_types::Genesis::from_json(&genesis_text).expect("valid");
    let agent: ureq::Agent = ureq::Agent::config_builder().build().into();
    let note = agent
        .get(&format!(
            "http://127.0.0.1:{}/v1/log/checkpoint",
            api_base() + 1
        ))
        .call()
        .expect("note served")
        .body_mut()
        .read_to_string()
        .expect("note text");
    let (certified, cosigners) = welkin_client::verify_checkpoint_note(
        &note,
        &genesis_parsed,
        genesis_parsed.dealt_key().expect("dealt"),
    )
    .expect("note verifies");
    assert!(certified.checkpoint.log_size > 0);
    let serving = &genesis_parsed
        .nodes
        .iter()
        .find(|n| n.api_address.port() == api_base() + 1)
        .expect("node")
        .name;
    assert!(cosigners.contains(serving), "the serving node cosigned");
    assert!(
        cosigners.len() >= genesis_parsed.threshold as usize,
        "the note carries 2f+1 node cosignatures, not just the serving node's: {cosigners:?}"
    );
    let size = certified.checkpoint.log_size;
    let forged = note.replacen(&format!("\n{size}\n"), &format!("\n{}\n", size + 1), 1);
    assert_ne!(forged, note);
    assert!(
        welkin_client::verify_checkpoint_note(
            &forged,
            &genesis_parsed,
            genesis_parsed.dealt_key().expect("dealt")
        )
        .is_err()
    );
    log_tiles_and_checkpoints_by_size(&genesis_parsed, &dir.join("genesis.json"), size);
    watch_alarms_on_a_split_view(&dir, &genesis_parsed, &certified);

    // A verified checkpoint: the client checks it against the genesis cluster key.
    let genesis = welkin_types::Genesis::from_json(
        &std::fs::read_to_string(dir.join("genesis.json")).expect("genesis"),
    )
    .expect("valid");
    let checkpoint = cluster.clients[2]
        .verified_checkpoint(
            None,
            &genesis.cluster_id(),
            genesis.dealt_key().expect("dealt"),
        )
        .expect("verifies");
    assert!(checkpoint.checkpoint.height > 0);
    let _ = checkpoint.encode();

    let api0 = format!("http://127.0.0.1:{}", api_base());
    let pid0 = cluster.children[0].as_ref().expect("node0 runs").id();
    hostile::waiters_do_not_leak(&api0, pid0, &tx);
    hostile::floods_leave_finalization_alone(&api0, &cluster.clients[1]);

    drop(cluster);
    let _ = std::fs::remove_dir_all(&dir);
}
