//! etcd for the side-by-side benchmark: installed from Debian's `etcd-server` if missing,
//! three members on 127.0.0.1 from empty data directories, and the put request of the load.
//!
//! The members run with etcd's defaults apart from their addresses (fsync on every commit
//! included), so the comparison is against etcd as operators run it.

use super::{load::Sent, ports::free_base};
use anyhow::{Context as _, bail};
use base64::Engine as _;
use std::{
    path::PathBuf,
    process::{Child, Command, Stdio},
    sync::Arc,
    time::{Duration, Instant},
};

/// Members of the etcd cluster: the smallest that tolerates a fault, like Welkin's 4 nodes.
pub(super) const MEMBERS: usize = 3;
/// How long the members get to elect a leader and answer `/health`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest wait for one put.
const PUT_TIMEOUT: Duration = Duration::from_secs(30);
/// The etcd series the comparison is made against.
const SERIES: &str = "3.4.";
/// Largest reply to a put that is read.
const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// The install hint printed when etcd is missing and cannot be installed here.
const INSTALL_HINT: &str =
    "install it with `sudo apt-get install -y etcd-server` (Debian's etcd 3.4) and run again";

/// The installed etcd's version (e.g. `3.4.23`), installing Debian's `etcd-server` first if
/// `etcd` is not on the PATH and this process runs as root.
pub(super) fn ensure_installed() -> anyhow::Result<String> {
    if version().is_err() {
        install()?;
    }
    let version = version()?;
    if !version.starts_with(SERIES) {
        bail!("etcd {version} is installed, but the comparison is made against etcd {SERIES}x");
    }
    Ok(version)
}

/// The version `etcd --version` prints.
fn version() -> anyhow::Result<String> {
    let output = Command::new("etcd")
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .context("etcd is not on the PATH")?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines()
        .find_map(|line| line.strip_prefix("etcd Version:"))
        .map(|v| v.trim().to_string())
        .with_context(|| format!("cannot read the version from `etcd --version`: {text}"))
}

fn install() -> anyhow::Result<()> {
    let uid = Command::new("id").arg("-u").output().ok();
    let root = uid.is_some_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    if !root {
        bail!("etcd is not installed and this user cannot install it; {INSTALL_HINT}");
    }
    eprintln!("etcd is not on the PATH: installing Debian's etcd-server...");
    let apt = |args: &[&str]| {
        Command::new("apt-get")
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .stdin(Stdio::null())
            // apt's progress goes to stderr: stdout carries only the results.
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .is_ok_and(|s| s.success())
    };
    // A fresh system may have no package lists yet: update once and retry.
    let installed = apt(&["install", "-y", "etcd-server"])
        || (apt(&["update"]) && apt(&["install", "-y", "etcd-server"]));
    if !installed {
        bail!("`apt-get install -y etcd-server` failed; {INSTALL_HINT}");
    }
    Ok(())
}

/// Three running etcd members; killed, waited for and their data removed when dropped.
pub(super) struct Etcd {
    dir: PathBuf,
    members: Vec<Child>,
    /// Each member's client URL.
    pub(super) clients: Vec<String>,
}

impl Etcd {
    /// Starts three members on free ports from empty data directories in a new temporary
    /// directory, and waits until every member reports itself healthy.
    pub(super) fn start() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("welkin-bench-etcd-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let offsets: Vec<u16> = (0..MEMBERS as u16).flat_map(|i| [i, 100 + i]).collect();
        let base = free_base(&offsets)?;
        let peer = |i: usize| format!("http://127.0.0.1:{}", base as usize + 100 + i);
        let clients: Vec<String> = (0..MEMBERS)
            .map(|i| format!("http://127.0.0.1:{}", base as usize + i))
            .collect();
        let initial_cluster = (0..MEMBERS)
            .map(|i| format!("member{i}={}", peer(i)))
            .collect::<Vec<_>>()
            .join(",");
        let mut etcd = Self {
            dir: dir.clone(),
            members: Vec::with_capacity(MEMBERS),
            clients,
        };
        eprintln!("starting etcd, {MEMBERS} members, in {}", dir.display());
        for i in 0..MEMBERS {
            let log_path = dir.join(format!("member{i}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("cannot create {}", log_path.display()))?;
            let child = Command::new("etcd")
                .arg(format!("--name=member{i}"))
                .arg(format!(
                    "--data-dir={}",
                    dir.join(format!("member{i}")).display()
                ))
                .arg(format!("--listen-client-urls={}", etcd.clients[i]))
                .arg(format!("--advertise-client-urls={}", etcd.clients[i]))
                .arg(format!("--listen-peer-urls={}", peer(i)))
                .arg(format!("--initial-advertise-peer-urls={}", peer(i)))
                .arg(format!("--initial-cluster={initial_cluster}"))
                .arg("--initial-cluster-state=new")
                .arg(format!("--initial-cluster-token=welkin-bench-{base}"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .context("cannot start etcd")?;
            etcd.members.push(child);
        }
        etcd.wait_healthy()?;
        Ok(etcd)
    }

    fn wait_healthy(&mut self) -> anyhow::Result<()> {
        let agent = agent(Duration::from_secs(2));
        let deadline = Instant::now() + READY_TIMEOUT;
        loop {
            for (i, member) in self.members.iter_mut().enumerate() {
                if let Some(status) = member.try_wait()? {
                    bail!(
                        "etcd member{i} exited ({status}); see {}",
                        self.dir.join(format!("member{i}.log")).display()
                    );
                }
            }
            let healthy = self
                .clients
                .iter()
                .filter(|url| is_healthy(&agent, url))
                .count();
            if healthy == MEMBERS {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "etcd: {healthy} of {MEMBERS} members healthy after {} s; see the logs in {}",
                    READY_TIMEOUT.as_secs(),
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for member in &mut self.members {
            let _ = member.kill();
            let _ = member.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// An HTTP agent that keeps its connection alive and reads error statuses as replies.
pub(super) fn agent(timeout: Duration) -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(Some(timeout))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Whether `GET /health` answers 200 with `"health":"true"` (the member sees a leader).
fn is_healthy(agent: &ureq::Agent, client_url: &str) -> bool {
    let Ok(mut response) = agent.get(&format!("{client_url}/health")).call() else {
        return false;
    };
    response.status().as_u16() == 200
        && response
            .body_mut()
            .read_to_string()
            .ok()
            .and_then(|text| serde_json::from_str::<serde_json::Value>(&text).ok())
            .is_some_and(|v| v["health"] == "true")
}

/// A load worker that puts a new key per request (`<prefix>/<index>`) with `value` through
/// the JSON gateway of the member at `client_url`. A put counts when the reply is 200 and
/// carries the header's revision.
pub(super) fn put_worker(
    client_url: &str,
    prefix: &str,
    value: Arc<String>,
) -> impl FnMut(usize) -> Option<Sent> + Send + use<> {
    let agent = agent(PUT_TIMEOUT);
    let url = format!("{client_url}/v3/kv/put");
    let prefix = prefix.to_string();
    move |index| {
        let key = base64::engine::general_purpose::STANDARD.encode(format!("{prefix}/{index}"));
        let body = format!(r#"{{"key":"{key}","value":"{value}"}}"#);
        let counted = agent
            .post(&url)
            .content_type("application/json")
            .send(body.as_str())
            .ok()
            .is_some_and(|mut response| {
                response.status().as_u16() == 200
                    && response
                        .body_mut()
                        .with_config()
                        .limit(MAX_REPLY_BYTES)
                        .read_to_string()
                        .is_ok_and(|text| has_revision(&text))
            });
        Some(Sent {
            items: 1,
            counted: usize::from(counted),
        })
    }
}

/// Whether a put reply carries `header.revision` (a decimal string, as the gateway encodes
/// 64-bit integers, or a number).
fn has_revision(reply: &str) -> bool {
    let Ok(value) = serde_json::from_str::<serde_json::Value>(reply) else {
        return false;
    };
    match &value["header"]["revision"] {
        serde_json::Value::String(s) => s.parse::<u64>().is_ok(),
        serde_json::Value::Number(n) => n.is_u64(),
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_put_counts_only_with_a_header_revision() {
        let reply =
            r#"{"header":{"cluster_id":"1","member_id":"2","revision":"7","raft_term":"2"}}"#;
        assert!(has_revision(reply));
        assert!(has_revision(r#"{"header":{"revision":7}}"#));
        assert!(!has_revision(r#"{"header":{"cluster_id":"1"}}"#));
        assert!(!has_revision(
            r#"{"error":"etcdserver: request timed out","code":14}"#
        ));
        assert!(!has_revision("not json"));
    }
}
