//! Real time clients from package registries read the time from the Roughtime and NTP
//! servers, unchanged: pyroughtime (PyPI, draft-07), roughenough-client (crates.io, RFC 10049
//! and the pre-RFC draft) and chrony (Debian). The servers run in this process on loopback
//! with a clock a fixed offset from the system's, so each client must report that offset.
//!
//! The client functions (`pyroughtime_reads`, `rust_roughtime_reads`, `chrony_offset`) take
//! only an address and a key, so they can be pointed at a real node's servers as well.

use std::{
    net::{SocketAddr, UdpSocket},
    path::{Path, PathBuf},
    process::{Child, Command, Output, Stdio},
    sync::{
        Arc, Mutex, OnceLock, PoisonError,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
    time::{Duration, Instant, SystemTime, UNIX_EPOCH},
};

use base64::Engine as _;
use ed25519_dalek::{SigningKey, VerifyingKey};
use welkin_roughtime::{Keys, Reading, TimeSource, Version};

/// pyroughtime, pinned. Its wheel declares `pycrypto`, which no longer builds on Python 3.11
/// and lacks the `SHA512.new(truncate="256")` that pyroughtime calls; `pycryptodome` provides
/// the same `Crypto` package with it, so the three are installed without dependency
/// resolution (`--no-deps`).
const PYROUGHTIME: [&str; 3] = ["pyroughtime==1.0.1", "ed25519==1.5", "pycryptodome==3.23.0"];
/// roughenough-client from crates.io, pinned (built once with `cargo install --locked`).
const ROUGHENOUGH: &str = "2.2.0";
/// The radius the test clock certifies.
const RADIUS_NS: u64 = 2_000_000;
/// How long a client may take before it is stopped.
const CLIENT_DEADLINE: Duration = Duration::from_secs(120);

/// Nanoseconds since the Unix epoch by the system clock.
fn unix_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .expect("clock after 1970")
        .as_nanos() as u64
}

/// A certified clock that is the system clock moved by a fixed offset.
struct Offset(i64);

impl TimeSource for Offset {
    fn now(&self) -> Option<Reading> {
        Some(Reading {
            midpoint_ns: unix_ns().checked_add_signed(self.0)?,
            radius_ns: RADIUS_NS,
        })
    }
}

/// The Roughtime and NTP servers on loopback; dropping this stops them.
pub(crate) struct Servers {
    runtime: tokio::runtime::Runtime,
    pub(crate) roughtime: SocketAddr,
    pub(crate) ntp: SocketAddr,
    pub(crate) public_key: VerifyingKey,
    pub(crate) roughtime_counters: Arc<welkin_roughtime::Counters>,
    pub(crate) ntp_counters: Arc<welkin_ntp::Counters>,
    pub(crate) quarantined: Arc<AtomicBool>,
}

impl Servers {
    /// Serves a clock `offset_ns` ahead of the system's, or no certified time at all.
    pub(crate) fn start(offset_ns: Option<i64>) -> Self {
        struct NoTime;
        impl TimeSource for NoTime {
            fn now(&self) -> Option<Reading> {
                None
            }
        }
        let source: Arc<dyn TimeSource> = match offset_ns {
            Some(offset) => Arc::new(Offset(offset)),
            None => Arc::new(NoTime),
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("tokio runtime");
        let (roughtime_socket, ntp_socket) = runtime.block_on(async {
            let bind = || tokio::net::UdpSocket::bind("127.0.0.1:0");
            (bind().await.expect("bind"), bind().await.expect("bind"))
        });
        let keys = Keys::new(SigningKey::from_bytes(&[0x5a; 32]));
        let servers = Self {
            roughtime: roughtime_socket.local_addr().expect("address"),
            ntp: ntp_socket.local_addr().expect("address"),
            public_key: keys.public_key(),
            roughtime_counters: Arc::default(),
            ntp_counters: Arc::default(),
            quarantined: Arc::default(),
            runtime,
        };
        servers.runtime.spawn(welkin_roughtime::serve(
            roughtime_socket,
            keys,
            source.clone(),
            servers.roughtime_counters.clone(),
        ));
        servers.runtime.spawn(welkin_ntp::serve(
            ntp_socket,
            source,
            servers.quarantined.clone(),
            welkin_ntp::Config::default(),
            servers.ntp_counters.clone(),
        ));
        servers
    }
}

/// A child process that is killed if it is still running when this is dropped.
pub(crate) struct Running(Option<Child>);

impl Running {
    pub(crate) fn spawn(command: &mut Command) -> Self {
        let child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
        Self(Some(child))
    }

    /// Waits for the child, killing it past `deadline`.
    fn finish(mut self, deadline: Duration) -> Output {
        let mut child = self.0.take().expect("not yet waited for");
        let start = Instant::now();
        while child.try_wait().expect("child status").is_none() {
            if start.elapsed() > deadline {
                let _ = child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        child.wait_with_output().expect("child output")
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        if let Some(child) = &mut self.0 {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The directory that caches the clients across runs (beside the other test tools).
pub(crate) fn tools() -> PathBuf {
    Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target directory")
        .to_path_buf()
}

/// Runs an install step, which must succeed.
pub(crate) fn install(command: &mut Command) {
    let output = command
        .output()
        .unwrap_or_else(|e| panic!("{command:?} does not start: {e}"));
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A venv with pyroughtime, made once (a marker file says the install finished, so that a
/// run stopped half-way is redone).
fn pyroughtime_python() -> PathBuf {
    static PYTHON: OnceLock<PathBuf> = OnceLock::new();
    PYTHON
        .get_or_init(|| {
            let venv = tools().join("pyroughtime-1.0.1");
            let marker = venv.join("installed");
            if !marker.exists() {
                install(
                    Command::new("python3")
                        .args(["-m", "venv", "--clear"])
                        .arg(&venv),
                );
                install(
                    Command::new(venv.join("bin/pip"))
                        .args(["install", "--quiet", "--disable-pip-version-check"])
                        .arg("--no-deps")
                        .args(PYROUGHTIME),
                );
                std::fs::write(&marker, PYROUGHTIME.join("\n")).expect("marker written");
            }
            venv.join("bin/python")
        })
        .clone()
}

/// Starts pyroughtime querying the Roughtime server at `addr` (see `pyroughtime_client.py`).
pub(crate) fn pyroughtime_spawn(addr: SocketAddr, public_key: &[u8; 32]) -> Running {
    let script =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/processes/pyroughtime_client.py");
    Running::spawn(
        Command::new(pyroughtime_python())
            .arg(script)
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .arg(base64::engine::general_purpose::STANDARD.encode(public_key)),
    )
}

/// What pyroughtime reported: the verified time, the Merkle path length and the version.
pub(crate) struct PyroughtimeReading {
    pub(crate) reading: Reading,
    pub(crate) path_len: u64,
    pub(crate) version: String,
}

/// Waits for a pyroughtime query started by [`pyroughtime_spawn`]: what it read, or its
/// output if it failed (no reply, or a reply that did not verify).
pub(crate) fn pyroughtime_result(running: Running) -> Result<PyroughtimeReading, String> {
    let output = running.finish(CLIENT_DEADLINE);
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        return Err(format!(
            "{stdout}\n{}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    let json: serde_json::Value = serde_json::from_str(stdout.trim()).expect("json line");
    let field = |name: &str| {
        json[name]
            .as_u64()
            .unwrap_or_else(|| panic!("{name} in {json}"))
    };
    Ok(PyroughtimeReading {
        reading: Reading {
            midpoint_ns: field("midpoint_us") * 1_000,
            radius_ns: field("radius_us") * 1_000,
        },
        path_len: field("path_len"),
        version: json["version"].as_str().unwrap_or_default().to_string(),
    })
}

/// The time pyroughtime reads (and verifies with `public_key`) from the Roughtime server at
/// `addr`.
pub(crate) fn pyroughtime_reads(addr: SocketAddr, public_key: &[u8; 32]) -> Reading {
    pyroughtime_result(pyroughtime_spawn(addr, public_key))
        .unwrap_or_else(|output| panic!("pyroughtime failed: {output}"))
        .reading
}

/// `binary` of the crates.io package `package` at exactly `version`, installed once (with
/// its own lock file) under the target directory. Cargo puts the binary in place only once
/// it is built, so an interrupted install is redone.
pub(crate) fn cargo_binary(package: &str, version: &str, binary: &str) -> PathBuf {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    let root = tools().join(format!("{package}-{version}"));
    let path = root.join("bin").join(binary);
    if !path.exists() {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        install(
            Command::new(cargo)
                .args(["install", "--quiet", "--locked", "--root"])
                .arg(&root)
                .args(["--version", &format!("={version}"), package]),
        );
    }
    path
}

/// The `roughenough_client` binary from crates.io.
fn roughenough_client() -> PathBuf {
    cargo_binary("roughenough-client", ROUGHENOUGH, "roughenough_client")
}

/// Starts roughenough-client querying `addr` once, offering `protocol` ("1" for RFC 10049
/// version 1, "19" for the draft `0x8000000c`), verifying with `public_key`.
pub(crate) fn rust_roughtime_spawn(
    addr: SocketAddr,
    public_key: &[u8; 32],
    protocol: &str,
) -> Running {
    Running::spawn(
        Command::new(roughenough_client())
            .arg(addr.ip().to_string())
            .arg(addr.port().to_string())
            .args([
                "--protocol",
                protocol,
                "--epoch",
                "--timeout",
                "5",
                "--pub-key",
            ])
            .arg(base64::engine::general_purpose::STANDARD.encode(public_key))
            // Plain log lines: no colour codes around the number.
            .env("NO_COLOR", "1"),
    )
}

/// Waits for roughenough-client: the verified midpoint in Unix seconds, or its output if it
/// failed (no reply, or a reply that did not verify).
pub(crate) fn rust_roughtime_result(running: Running) -> Result<u64, String> {
    let output = running.finish(CLIENT_DEADLINE);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let failure = || format!("{stdout}\n{}", String::from_utf8_lossy(&output.stderr));
    if !output.status.success() {
        return Err(failure());
    }
    stdout
        .split_whitespace()
        .last()
        .and_then(|word| word.parse().ok())
        .ok_or_else(failure)
}

/// The midpoint, in Unix seconds, that roughenough-client reads and verifies from `addr`.
pub(crate) fn rust_roughtime_reads(addr: SocketAddr, public_key: &[u8; 32], protocol: &str) -> u64 {
    rust_roughtime_result(rust_roughtime_spawn(addr, public_key, protocol))
        .unwrap_or_else(|output| panic!("roughenough-client failed: {output}"))
}

/// chronyd, installed from Debian if missing.
fn chronyd() -> PathBuf {
    static INSTALLING: Mutex<()> = Mutex::new(());
    let _one_at_a_time = INSTALLING.lock().unwrap_or_else(PoisonError::into_inner);
    let path = PathBuf::from("/usr/sbin/chronyd");
    if !path.exists() {
        // A fresh machine may have no package lists yet.
        install(Command::new("apt-get").arg("update"));
        install(
            Command::new("apt-get")
                .args(["install", "-y", "chrony"])
                .env("DEBIAN_FRONTEND", "noninteractive"),
        );
    }
    path
}

/// How chrony in client-only mode (`chronyd -Q`: measure, print, touch nothing) sees the NTP
/// server at `addr`: `Ok(offset)` in seconds, positive when the server is ahead of the system
/// clock, or `Err(output)` when chrony found no usable time within `timeout_s`.
pub(crate) fn chrony_measures(addr: SocketAddr, timeout_s: u32) -> Result<f64, String> {
    let dir = tempdir("chrony");
    let output = Running::spawn(
        Command::new(chronyd())
            .args(["-Q", "-d", "-t", &timeout_s.to_string(), "-u", "root"])
            .arg(format!(
                "server {} port {} iburst minpoll -4 maxpoll -4",
                addr.ip(),
                addr.port()
            ))
            .arg(format!("pidfile {}", dir.join("chronyd.pid").display()))
            .arg("cmdport 0"),
    )
    .finish(Duration::from_secs(u64::from(timeout_s) + 30));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    // "System clock wrong by 0.250012 seconds (ignored)": the server's time minus the
    // system's.
    let wrong_by = text
        .split("System clock wrong by ")
        .nth(1)
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|number| number.parse::<f64>().ok());
    match wrong_by {
        Some(seconds) if output.status.success() => Ok(seconds),
        _ => Err(text),
    }
}

/// The offset chrony measures to the NTP server at `addr`, in seconds (server minus system).
pub(crate) fn chrony_offset(addr: SocketAddr) -> f64 {
    chrony_measures(addr, 30).unwrap_or_else(|output| panic!("chrony read no time:\n{output}"))
}

/// A fresh directory under the test's temporary directory.
fn tempdir(name: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(format!(
        "time-clients-{}-{name}-{}",
        std::process::id(),
        unix_ns()
    ));
    std::fs::create_dir_all(&dir).expect("temporary directory");
    dir
}

/// Asserts that `reading` contains the test clock's time for some moment between `before`
/// and `after` (system nanoseconds).
fn assert_contains(reading: Reading, offset_ns: i64, before: u64, after: u64) {
    let earliest = before.checked_add_signed(offset_ns).expect("in range");
    let latest = after.checked_add_signed(offset_ns).expect("in range");
    assert!(
        reading.midpoint_ns + reading.radius_ns >= earliest
            && reading.midpoint_ns.saturating_sub(reading.radius_ns) <= latest,
        "{reading:?} misses the served time between {earliest} and {latest}"
    );
}

#[test]
fn pyroughtime_verifies_a_draft07_reply() {
    let offset = 7_500_000_000;
    let servers = Servers::start(Some(offset));
    let before = unix_ns();
    let reading = pyroughtime_reads(servers.roughtime, servers.public_key.as_bytes());
    let after = unix_ns();
    assert_contains(reading, offset, before, after);
    // The radius is the certified one, widened only by rounding to microseconds.
    assert!((RADIUS_NS..=RADIUS_NS + 1_000).contains(&reading.radius_ns));
    // The same reply does not verify under another key.
    let stranger = SigningKey::from_bytes(&[1; 32]).verifying_key();
    let refused = pyroughtime_result(pyroughtime_spawn(servers.roughtime, stranger.as_bytes()));
    assert!(
        refused.is_err(),
        "pyroughtime accepted a reply under another key"
    );
    assert_eq!(servers.roughtime_counters.answered.load(Relaxed), 2);
}

#[test]
fn roughenough_client_verifies_rfc_and_draft_replies() {
    let offset = -42_000_000_000;
    let servers = Servers::start(Some(offset));
    for protocol in ["1", "19"] {
        let before = unix_ns();
        let seconds =
            rust_roughtime_reads(servers.roughtime, servers.public_key.as_bytes(), protocol);
        let after = unix_ns();
        let radius_s = u64::from(welkin_roughtime::MIN_RFC_RADIUS_S);
        let reading = Reading {
            midpoint_ns: seconds * 1_000_000_000,
            radius_ns: radius_s * 1_000_000_000,
        };
        assert_contains(reading, offset, before, after);
    }
    // A client that expects another key names it in SRV: the server stays silent.
    let stranger = SigningKey::from_bytes(&[1; 32]).verifying_key();
    let refused = rust_roughtime_result(rust_roughtime_spawn(
        servers.roughtime,
        stranger.as_bytes(),
        "1",
    ));
    assert!(
        refused
            .as_ref()
            .is_err_and(|output| output.contains("timeout waiting for server response")),
        "roughenough-client with another key: {refused:?}"
    );
    assert_eq!(servers.roughtime_counters.answered.load(Relaxed), 2);
    assert_eq!(servers.roughtime_counters.other_server.load(Relaxed), 1);
}

/// Answers `extra` requests of our own together with one from each real client, all in one
/// batch, so that the clients must follow a Merkle path of several levels.
#[test]
fn real_clients_verify_replies_from_a_shared_batch() {
    // Install both clients first: neither may wait on an install past its own timeout.
    pyroughtime_python();
    roughenough_client();
    let mut keys = Keys::new(SigningKey::from_bytes(&[0x77; 32]));
    let public = keys.public_key();
    let server = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let addr = server.local_addr().expect("address");
    server
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    let ours = UdpSocket::bind("127.0.0.1:0").expect("bind");
    let ours_addr = ours.local_addr().expect("address");
    let extra = 6;
    for i in 0..extra {
        let version = [Version::Draft07, Version::Rfc1][i % 2];
        let request = welkin_roughtime::request(version, &[i as u8; 32], None);
        ours.send_to(&request, addr).expect("send");
    }
    // Collect ours and pyroughtime's, then start roughenough-client (so that neither client
    // waits for the other's start-up past its own timeout), then answer all eight at once.
    let mut batch = Vec::new();
    let mut buffer = [0u8; 2048];
    let mut collect = |clients: usize, batch: &mut Vec<(Vec<u8>, SocketAddr)>| {
        while batch.iter().filter(|(_, peer)| *peer != ours_addr).count() < clients
            || batch.len() < extra + clients
        {
            let (len, peer) = server.recv_from(&mut buffer).expect("a request");
            batch.push((buffer[..len].to_vec(), peer));
        }
    };
    let python = pyroughtime_spawn(addr, public.as_bytes());
    collect(1, &mut batch);
    let rust = rust_roughtime_spawn(addr, public.as_bytes(), "1");
    collect(2, &mut batch);
    let packets: Vec<&[u8]> = batch.iter().map(|(p, _)| p.as_slice()).collect();
    let now = Offset(0).now();
    let counters = welkin_roughtime::Counters::default();
    let replies = welkin_roughtime::respond(&packets, now, &mut keys, &counters);
    for (reply, (_, peer)) in replies.iter().zip(&batch) {
        server
            .send_to(reply.as_ref().expect("a reply"), peer)
            .expect("send");
    }
    let read = pyroughtime_result(python).expect("pyroughtime verifies its reply");
    assert_eq!(read.version, "draft-07");
    assert!(read.path_len >= 2, "a path of {} levels", read.path_len);
    let seconds = rust_roughtime_result(rust).expect("roughenough-client verifies its reply");
    let midpoint = now.expect("a reading").midpoint_ns;
    assert!(read.reading.midpoint_ns.abs_diff(midpoint) <= read.reading.radius_ns);
    assert!(seconds.abs_diff(midpoint / 1_000_000_000) <= 1);
}

#[test]
fn chrony_reads_the_certified_time_over_ntp() {
    let offset = 250_000_000;
    let servers = Servers::start(Some(offset));
    let measured = chrony_offset(servers.ntp);
    // Loopback delay is microseconds; 20 ms leaves room for a loaded machine.
    assert!(
        (measured - 0.25).abs() < 0.02,
        "chrony measured {measured} s against a server 0.25 s ahead"
    );
    assert!(servers.ntp_counters.answered.load(Relaxed) >= 1);
}

#[test]
fn chrony_takes_no_time_from_a_server_without_certified_time() {
    let servers = Servers::start(None);
    let refused = chrony_measures(servers.ntp, 6);
    // chrony ran, heard the alarm and found nothing to synchronise to.
    assert!(
        refused
            .as_ref()
            .is_err_and(|output| output.contains("No suitable source")),
        "chrony: {refused:?}"
    );
    assert!(servers.ntp_counters.unsynchronized.load(Relaxed) >= 1);
    assert_eq!(servers.ntp_counters.answered.load(Relaxed), 0);
}

/// Sends `bad` packets and then `good`, and returns the first datagram that comes back: the
/// server answers in order, so any reply to a bad packet would arrive before the good one's.
fn first_reply(to: SocketAddr, bad: &[Vec<u8>], good: &[u8]) -> Vec<u8> {
    let socket = UdpSocket::bind("127.0.0.1:0").expect("bind");
    socket
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("timeout");
    for packet in bad {
        socket.send_to(packet, to).expect("send");
    }
    socket.send_to(good, to).expect("send");
    let mut buffer = [0u8; 2048];
    let (len, _) = socket
        .recv_from(&mut buffer)
        .expect("the good request's reply");
    buffer[..len].to_vec()
}

#[test]
fn bad_packets_get_no_reply_and_are_counted() {
    let servers = Servers::start(Some(0));
    let good = welkin_roughtime::request(Version::Rfc1, &[1; 32], None);
    let mut garbage = vec![0xa5u8; 1100];
    garbage[..8].copy_from_slice(b"ROUGHTIM");
    let mut unknown = welkin_roughtime::request(Version::Draft07, &[2; 32], None);
    let at = unknown
        .windows(4)
        .position(|w| w == 0x8000_0007u32.to_le_bytes())
        .expect("the version in the packet");
    unknown[at..at + 4].copy_from_slice(&0x8000_0003u32.to_le_bytes());
    let bad = vec![
        vec![0u8; 100],
        good[..1020].to_vec(),
        garbage,
        vec![0u8; 3000],
        unknown,
    ];
    let reply = first_reply(servers.roughtime, &bad, &good);
    welkin_roughtime::verify_response(&good, &reply, &servers.public_key)
        .expect("the first reply is the good request's");
    let counters = &servers.roughtime_counters;
    assert_eq!(counters.too_small.load(Relaxed), 2);
    assert_eq!(counters.malformed.load(Relaxed), 2);
    assert_eq!(counters.unsupported_version.load(Relaxed), 1);
    assert_eq!(counters.answered.load(Relaxed), 1);

    let client = |version: u8, mode: u8| {
        let mut packet = [0u8; 48];
        packet[0] = (version << 3) | mode;
        packet[40..48].copy_from_slice(&0x0102_0304_0506_0708u64.to_be_bytes());
        packet.to_vec()
    };
    let bad = vec![
        client(4, 3)[..47].to_vec(),
        [client(4, 3), vec![0; 20]].concat(),
        client(5, 3),
        client(4, 1),
        client(2, 6),
    ];
    let reply = first_reply(servers.ntp, &bad, &client(4, 3));
    let reply = welkin_ntp::Packet::decode(&reply).expect("an NTP reply");
    assert_eq!(reply.origin, 0x0102_0304_0506_0708);
    let counters = &servers.ntp_counters;
    assert_eq!(counters.too_small.load(Relaxed), 1);
    assert_eq!(counters.malformed.load(Relaxed), 1);
    assert_eq!(counters.unsupported_version.load(Relaxed), 2);
    assert_eq!(counters.not_client.load(Relaxed), 1);
    assert_eq!(counters.answered.load(Relaxed), 1);

    // While quarantined, the same request is answered with the RATE kiss.
    servers.quarantined.store(true, Relaxed);
    let kiss = first_reply(servers.ntp, &[], &client(4, 3));
    let kiss = welkin_ntp::Packet::decode(&kiss).expect("an NTP reply");
    assert_eq!(
        (kiss.stratum, kiss.reference_id),
        (0, welkin_ntp::KISS_CODE)
    );
    assert_eq!(counters.kissed.load(Relaxed), 1);
}
