//! The Tahoe-LAFS side of `welkin bench --compare tahoe`: Tahoe-LAFS from PyPI in a cache venv,
//! and a grid on 127.0.0.1 (an introducer, four storage nodes and a client node) whose client
//! node stores and reads immutable files through its web API.
//!
//! Every node runs as `tahoe run DIR` with its stdin on a pipe this process holds: `tahoe run`
//! exits when its stdin closes, so the nodes go even if this process is killed outright.

use super::{
    interrupted,
    openbao::{cache_dir, pip_install},
    ports::free_base,
};
use anyhow::{Context as _, bail};
use serde_json::Value;
use std::{
    io::{Read, Write},
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// The release the comparison is made against.
pub(super) const VERSION: &str = "1.20.0";
/// Storage nodes in the grid.
pub(super) const STORAGE_NODES: usize = 4;
/// Tahoe's immutable segment size in 1.20 (`DEFAULT_IMMUTABLE_MAX_SEGMENT_SIZE`), left at its
/// default.
pub(super) const SEGMENT_BYTES: u64 = 1 << 20;
/// How long the grid gets to start and for the client to connect to every storage node.
const READY_TIMEOUT: Duration = Duration::from_secs(120);
/// How long `tahoe create-*` may take.
const CREATE_TIMEOUT: Duration = Duration::from_secs(60);
/// Lines of a node's log quoted when it fails.
const LOG_TAIL_LINES: usize = 15;
/// Bytes per read and write while streaming a file.
const CHUNK_BYTES: usize = 1 << 20;
/// Longest reply to a small request (the welcome page, a capability).
const MAX_SMALL_REPLY: u64 = 1 << 20;
/// The install hint printed when Tahoe-LAFS cannot be installed here.
const INSTALL_HINT: &str = "install it with `pip install tahoe-lafs==1.20.0` in a venv whose \
    `bin` is on the PATH, and run again";

/// Tahoe's erasure code: `needed` of `total` shares rebuild a file, and an upload succeeds only
/// once shares are on `happy` distinct servers.
#[derive(Clone, Copy, Debug, serde::Serialize)]
pub(super) struct Encoding {
    pub(super) needed: u16,
    pub(super) happy: u16,
    pub(super) total: u16,
}

/// The `tahoe` of Tahoe-LAFS [`VERSION`]: the one on the PATH if it is that release, else the
/// one in the cache venv, which is created and filled from PyPI first if need be.
pub(super) fn ensure_installed() -> anyhow::Result<PathBuf> {
    let on_path = PathBuf::from("tahoe");
    if version(&on_path).is_ok_and(|v| v == VERSION) {
        return Ok(on_path);
    }
    let venv = cache_dir()?.join(format!("tahoe-lafs-{VERSION}"));
    let cached = venv.join("bin").join("tahoe");
    if version(&cached).is_ok_and(|v| v == VERSION) {
        return Ok(cached);
    }
    eprintln!(
        "Tahoe-LAFS {VERSION} is not installed: pip-installing tahoe-lafs=={VERSION} into {} \
         (once; a minute or two)",
        venv.display()
    );
    pip_install(&venv, &format!("tahoe-lafs=={VERSION}"), INSTALL_HINT)?;
    let installed = version(&cached)?;
    if installed != VERSION {
        bail!("tahoe-lafs=={VERSION} installed tahoe {installed}; {INSTALL_HINT}");
    }
    Ok(cached)
}

/// The version `tahoe --version` prints (`tahoe-lafs/1.20.0` gives `1.20.0`).
fn version(tahoe: &Path) -> anyhow::Result<String> {
    let output = Command::new(tahoe)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", tahoe.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_version(&text)
        .with_context(|| format!("cannot read the version from `tahoe --version`: {text}"))
}

fn parse_version(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("tahoe-lafs/")?;
    let version = rest.split_whitespace().next()?;
    Some(version.to_string())
}

/// A running grid; its nodes are killed and waited for when it is dropped (the caller removes
/// `dir`).
pub(super) struct Grid {
    dir: PathBuf,
    /// Each node's name and process.
    nodes: Vec<(String, Child)>,
    /// The client node's web API (`http://127.0.0.1:PORT`).
    pub(super) web: String,
}

impl Grid {
    /// Creates the nodes in `dir` (which must not exist) on free ports, starts them, and waits
    /// until the client node is connected to every storage node.
    pub(super) fn start(tahoe: &Path, dir: &Path, encoding: Encoding) -> anyhow::Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        // Introducer, storage nodes, the client's web API.
        let offsets: Vec<u16> = (0..=STORAGE_NODES as u16 + 1).collect();
        let base = free_base(&offsets)?;
        let port = |offset: usize| base as usize + offset;
        let mut grid = Self {
            dir: dir.to_path_buf(),
            nodes: Vec::with_capacity(STORAGE_NODES + 2),
            web: format!("http://127.0.0.1:{}", port(STORAGE_NODES + 1)),
        };
        eprintln!(
            "starting Tahoe-LAFS {VERSION}: an introducer, {STORAGE_NODES} storage nodes and a \
             client node in {}",
            dir.display()
        );
        let listen = |p: usize| {
            [
                "--listen=tcp".to_string(),
                format!("--port=tcp:{p}:interface=127.0.0.1"),
                format!("--location=tcp:127.0.0.1:{p}"),
            ]
        };
        let mut introducer = vec!["create-introducer".to_string()];
        introducer.extend(listen(port(0)));
        grid.create(tahoe, &[("introducer".to_string(), introducer)])?;
        grid.run(tahoe, "introducer")?;
        let furl_path = dir.join("introducer/private/introducer.furl");
        let furl = grid.wait("the introducer to write its FURL", || {
            Ok(std::fs::read_to_string(&furl_path)
                .ok()
                .map(|f| f.trim().to_string())
                .filter(|f| f.starts_with("pb://")))
        })?;
        let shares = [
            format!("--shares-needed={}", encoding.needed),
            format!("--shares-happy={}", encoding.happy),
            format!("--shares-total={}", encoding.total),
            format!("--introducer={furl}"),
        ];
        let mut nodes: Vec<(String, Vec<String>)> = (0..STORAGE_NODES)
            .map(|i| {
                let mut args = vec!["create-node".to_string(), format!("--nickname=storage{i}")];
                args.extend(listen(port(1 + i)));
                args.push("--webport=none".to_string());
                args.extend(shares.iter().cloned());
                (format!("storage{i}"), args)
            })
            .collect();
        let mut client = vec![
            "create-client".to_string(),
            "--nickname=client".to_string(),
            format!(
                "--webport=tcp:{}:interface=127.0.0.1",
                port(STORAGE_NODES + 1)
            ),
        ];
        client.extend(shares.iter().cloned());
        nodes.push(("client".to_string(), client));
        grid.create(tahoe, &nodes)?;
        for (name, _) in &nodes {
            grid.run(tahoe, name)?;
        }
        let agent = small_agent();
        let web = grid.web.clone();
        grid.wait(
            &format!("the client node to connect to {STORAGE_NODES} storage nodes"),
            || {
                let mut response = match agent.get(&format!("{web}/?t=json")).call() {
                    Ok(response) if response.status().as_u16() == 200 => response,
                    _ => return Ok(None),
                };
                let text = response
                    .body_mut()
                    .with_config()
                    .limit(MAX_SMALL_REPLY)
                    .read_to_string()?;
                let welcome: Value = serde_json::from_str(&text)
                    .with_context(|| format!("the welcome page is not JSON: {text}"))?;
                Ok((connected_servers(&welcome) >= STORAGE_NODES).then_some(()))
            },
        )?;
        Ok(grid)
    }

    /// Runs `tahoe ARGS... DIR/NAME` for every `(NAME, ARGS)` at once and waits for all.
    fn create(&self, tahoe: &Path, nodes: &[(String, Vec<String>)]) -> anyhow::Result<()> {
        let mut children = Vec::with_capacity(nodes.len());
        for (name, args) in nodes {
            let log = self.dir.join(format!("{name}-create.log"));
            let file = std::fs::File::create(&log)
                .with_context(|| format!("cannot create {}", log.display()))?;
            let child = Command::new(tahoe)
                .args(args)
                .arg(self.dir.join(name))
                .stdin(Stdio::null())
                .stdout(file.try_clone()?)
                .stderr(file)
                .spawn()
                .with_context(|| format!("cannot run {}", tahoe.display()))?;
            children.push((name, log, KillOnDrop(child)));
        }
        let deadline = Instant::now() + CREATE_TIMEOUT;
        for (name, log, mut child) in children {
            let status = loop {
                if let Some(status) = child.0.try_wait()? {
                    break status;
                }
                if interrupted() {
                    bail!("interrupted");
                }
                if Instant::now() > deadline {
                    bail!(
                        "`tahoe {}` for {name} took over {} s",
                        nodes[0].1[0],
                        CREATE_TIMEOUT.as_secs()
                    );
                }
                std::thread::sleep(Duration::from_millis(100));
            };
            if !status.success() {
                bail!(
                    "cannot create the Tahoe node {name} ({status}):\n{}",
                    tail(&log)
                );
            }
        }
        Ok(())
    }

    /// Starts `tahoe run DIR/NAME`, logging to `DIR/NAME.log`.
    fn run(&mut self, tahoe: &Path, name: &str) -> anyhow::Result<()> {
        let log = self.dir.join(format!("{name}.log"));
        let file = std::fs::File::create(&log)
            .with_context(|| format!("cannot create {}", log.display()))?;
        let child = Command::new(tahoe)
            .arg("run")
            .arg(self.dir.join(name))
            // Held open while the grid lives: `tahoe run` exits when it closes.
            .stdin(Stdio::piped())
            .stdout(file.try_clone()?)
            .stderr(file)
            .spawn()
            .with_context(|| format!("cannot start {}", tahoe.display()))?;
        self.nodes.push((name.to_string(), child));
        Ok(())
    }

    /// Calls `ready` until it gives a value, a node exits, or [`READY_TIMEOUT`] passes.
    fn wait<T>(
        &mut self,
        what: &str,
        mut ready: impl FnMut() -> anyhow::Result<Option<T>>,
    ) -> anyhow::Result<T> {
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            self.check_running()?;
            if interrupted() {
                bail!("interrupted");
            }
            if let Some(value) = ready()? {
                return Ok(value);
            }
            if Instant::now() > deadline {
                bail!(
                    "Tahoe-LAFS: no sign of {what} within {} s; the client node's log ends:\n{}",
                    READY_TIMEOUT.as_secs(),
                    tail(&self.dir.join("client.log"))
                );
            }
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// Fails, quoting its log, if a node has exited.
    pub(super) fn check_running(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.nodes {
            if let Some(status) = child.try_wait()? {
                bail!(
                    "the Tahoe node {name} exited ({status}); its log ends:\n{}",
                    tail(&self.dir.join(format!("{name}.log")))
                );
            }
        }
        Ok(())
    }

    /// Stores the `size` bytes of `path` as an immutable file with `PUT /uri`; returns its
    /// read capability once the client node answers (every share placed). `progress` gets the
    /// bytes sent.
    pub(super) fn put(
        &self,
        path: &Path,
        size: u64,
        progress: &dyn Fn(u64),
    ) -> anyhow::Result<String> {
        let file =
            std::fs::File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
        let reader = Counting {
            inner: file,
            done: 0,
            progress,
        };
        let url = format!("{}/uri", self.web);
        let mut response = bulk_agent(size)
            .put(&url)
            .header("content-length", size.to_string())
            .send(ureq::SendBody::from_reader(
                &mut std::io::BufReader::with_capacity(CHUNK_BYTES, reader),
            ))
            .with_context(|| format!("PUT {url}"))?;
        let status = response.status().as_u16();
        let text = response
            .body_mut()
            .with_config()
            .limit(MAX_SMALL_REPLY)
            .read_to_string()
            .unwrap_or_default();
        if !(200..300).contains(&status) {
            bail!("PUT {url} answered {status}: {}", text.trim());
        }
        Ok(text.trim().to_string())
    }

    /// Reads the file `cap` with `GET /uri/CAP` into `out`; returns the bytes read (at most
    /// `size` + 1, so that a longer file shows).
    pub(super) fn get(&self, cap: &str, size: u64, out: &mut impl Write) -> anyhow::Result<u64> {
        let url = format!("{}/uri/{cap}", self.web);
        let mut response = bulk_agent(size)
            .get(&url)
            .call()
            .with_context(|| format!("GET {url}"))?;
        let status = response.status().as_u16();
        if status != 200 {
            let text = response
                .body_mut()
                .with_config()
                .limit(MAX_SMALL_REPLY)
                .read_to_string()
                .unwrap_or_default();
            bail!("GET {url} answered {status}: {}", text.trim());
        }
        let mut body = response.body_mut().with_config().limit(size + 1).reader();
        let mut buffer = vec![0u8; CHUNK_BYTES];
        let mut read = 0u64;
        loop {
            let n = body
                .read(&mut buffer)
                .with_context(|| format!("GET {url}"))?;
            if n == 0 {
                return Ok(read);
            }
            out.write_all(&buffer[..n])?;
            read += n as u64;
        }
    }
}

impl Drop for Grid {
    fn drop(&mut self) {
        for (_, child) in &mut self.nodes {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A child process killed and waited for when dropped (a `tahoe create-*` cut short).
struct KillOnDrop(Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A reader that reports the bytes read so far.
struct Counting<'a, R> {
    inner: R,
    done: u64,
    progress: &'a dyn Fn(u64),
}

impl<R: Read> Read for Counting<'_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.done += n as u64;
        (self.progress)(self.done);
        Ok(n)
    }
}

/// Storage servers the welcome page (`GET /?t=json`) reports as connected.
fn connected_servers(welcome: &Value) -> usize {
    welcome["servers"].as_array().map_or(0, |servers| {
        servers
            .iter()
            .filter(|s| s["connection_status"] == "connected")
            .count()
    })
}

/// Checks that `cap` is the read capability of an immutable (CHK) file of `size` bytes stored
/// with `encoding`: `URI:CHK:KEY:HASH:NEEDED:TOTAL:SIZE`.
pub(super) fn check_cap(cap: &str, encoding: Encoding, size: u64) -> anyhow::Result<()> {
    let fields: Vec<&str> = cap.split(':').collect();
    let ["URI", "CHK", key, hash, needed, total, stored_size] = fields.as_slice() else {
        bail!("Tahoe answered the upload with {cap:?}, not an immutable file's capability");
    };
    if key.is_empty() || hash.is_empty() {
        bail!("Tahoe answered the upload with {cap:?}, a capability without a key or hash");
    }
    let expected = [
        encoding.needed.to_string(),
        encoding.total.to_string(),
        size.to_string(),
    ];
    if [*needed, *total, *stored_size] != expected.each_ref().map(String::as_str) {
        bail!(
            "Tahoe stored the file as {needed} of {total} shares and {stored_size} bytes, not \
             {} of {} and {size}: {cap}",
            encoding.needed,
            encoding.total
        );
    }
    Ok(())
}

/// The last [`LOG_TAIL_LINES`] lines of the log at `path`.
fn tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(LOG_TAIL_LINES)..].join("\n")
}

/// An agent for the welcome page: a short deadline.
fn small_agent() -> ureq::Agent {
    super::etcd::agent(Duration::from_secs(10))
}

/// An agent for moving `size` bytes: a deadline that allows 1 MB/s and a minute.
fn bulk_agent(size: u64) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(Duration::from_secs(60 + size / 1_000_000)))
        .timeout_connect(Some(Duration::from_secs(10)))
        .http_status_as_error(false)
        .build()
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;

    const TWO_OF_FOUR: Encoding = Encoding {
        needed: 2,
        happy: 4,
        total: 4,
    };

    #[test]
    fn the_version_is_read_from_tahoe_version() {
        assert_eq!(
            parse_version("tahoe-lafs/1.20.0\n").as_deref(),
            Some("1.20.0")
        );
        assert_eq!(parse_version("OpenBao v2.7.2"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn only_servers_reported_connected_count() {
        let welcome = serde_json::json!({
            "introducers": {"statuses": ["Connected to tcp:127.0.0.1:27100 via tcp"]},
            "servers": [
                {"nickname": "storage0", "connection_status": "connected"},
                {"nickname": "storage1", "connection_status": "connected"},
                {"nickname": "storage2", "connection_status": "Trying to connect"},
            ]
        });
        assert_eq!(connected_servers(&welcome), 2);
        assert_eq!(connected_servers(&serde_json::json!({})), 0);
    }

    #[test]
    fn a_capability_must_carry_the_encoding_and_size_asked_for() {
        let good = "URI:CHK:tvzeyoxckbsfzl2tcsny6nbo5e:piefx7j7enzkq6ykhv36jj5mdpm5i4zkhijvk5i2wq7fvipljfgq:2:4:67108864";
        check_cap(good, TWO_OF_FOUR, 64 << 20).expect("matches");
        let error = check_cap(good, TWO_OF_FOUR, 1 << 30).expect_err("size differs");
        assert!(
            error.to_string().contains("not 2 of 4 and 1073741824"),
            "{error}"
        );
        let three = good.replace(":2:4:", ":3:10:");
        assert!(check_cap(&three, TWO_OF_FOUR, 64 << 20).is_err());
        assert!(check_cap("URI:DIR2:abc:def", TWO_OF_FOUR, 64 << 20).is_err());
        assert!(check_cap("URI:CHK::x:2:4:67108864", TWO_OF_FOUR, 64 << 20).is_err());
        assert!(check_cap("", TWO_OF_FOUR, 0).is_err());
    }
}
