//! A local cluster's files, and starting its nodes as child processes.

use anyhow::{Context as _, bail};
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use welkin_client::Client;
use welkin_node::ceremony::{self, NodeKey};
use welkin_types::{ChainParams, Genesis};

/// Shard bytes each node of a local cluster offers (16 GiB: an offer is accounting; the disk
/// holds only what is stored).
const DEV_CAPACITY_BYTES: u64 = 16 << 30;
/// Blocks per epoch of a dev cluster: about half a minute, so that a join or a leave takes
/// effect while one watches.
const DEV_EPOCH_BLOCKS: u64 = 100;

/// The config of node `i` of a local cluster whose first API port is `base`. Every client of a
/// local cluster connects from 127.0.0.1, so the per-address rate limit would count them all as
/// one (and throttle `welkin bench`): it is raised out of the way here; every other API limit
/// keeps its default. Roughtime is served on UDP port base+200+i and NTP on base+300+i. Each
/// node offers [`DEV_CAPACITY_BYTES`] for object shards.
fn dev_node_config(base: u16, i: usize) -> String {
    let roughtime = base as usize + 200 + i;
    let ntp = base as usize + 300 + i;
    format!(
        "data_dir = \"data\"
key_file = \"node.key\"
genesis_file = \"../genesis.json\"

[api]
rate_per_second = 1000000
rate_burst = 1000000

[time]
roughtime_address = \"127.0.0.1:{roughtime}\"
ntp_address = \"127.0.0.1:{ntp}\"

[storage]
capacity_bytes = {DEV_CAPACITY_BYTES}
"
    )
}

/// A local cluster's files: `genesis.json` and `node<i>/{node.key, node.toml, data/}`. The
/// genesis is dealerless: the nodes generate the cluster key when they first start, and each
/// keeps its share sealed in its `data/`. (Clusters made before, with a dealt key and a
/// `node.share` per node, still load and run.)
pub(crate) struct LocalCluster {
    pub(super) dir: PathBuf,
    pub(crate) genesis: Genesis,
    pub(super) nodes: usize,
    /// Start each node in its own process group, so that a Ctrl-C in the terminal reaches
    /// only the supervisor, which stops the nodes itself. Off for `welkin bench`, whose nodes
    /// must get the Ctrl-C directly, as nothing else would stop them.
    pub(super) own_process_group: bool,
}

impl LocalCluster {
    /// Loads the cluster in `dir`, or creates it there with `nodes` nodes.
    pub(crate) fn create_or_load(dir: &Path, nodes: usize, base_port: u16) -> anyhow::Result<Self> {
        let genesis_path = dir.join("genesis.json");
        if genesis_path.exists() {
            let text = std::fs::read_to_string(&genesis_path)?;
            let genesis = Genesis::from_json(&text).with_context(|| {
                format!(
                    "{} is damaged; delete {} to start over",
                    genesis_path.display(),
                    dir.display()
                )
            })?;
            let nodes = genesis.nodes.len();
            return Ok(Self {
                dir: dir.to_path_buf(),
                genesis,
                nodes,
                own_process_group: false,
            });
        }
        if !(1..=64).contains(&nodes) {
            bail!("--nodes must be between 1 and 64, got {nodes}");
        }
        if base_port as usize + 300 + nodes > u16::MAX as usize {
            bail!("--base-port {base_port} leaves no room for {nodes} nodes");
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut rng = commonware_utils::sys_rng();
        let mut listing = Vec::with_capacity(nodes);
        for i in 0..nodes {
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir)?;
            let key = NodeKey::generate(&mut rng);
            crate::cmd::write_secret(&node_dir.join("node.key"), &key.to_json())?;
            listing.push(key.register(
                format!("node{i}"),
                format!("127.0.0.1:{}", base_port as usize + 100 + i).parse()?,
                format!("127.0.0.1:{}", base_port as usize + i).parse()?,
                format!("host-{i}"),
            ));
        }
        let chain = ChainParams {
            name: "welkin-dev".into(),
            ..ChainParams::default()
        };
        let root_token = welkin_types::secrets::generate_token(&mut rng);
        // One operator, whose key is in the data directory, admits nodes alone; epochs are
        // short (about half a minute), so a join takes effect soon.
        let operator = NodeKey::generate(&mut rng);
        crate::cmd::write_secret(&dir.join("operator.key"), &operator.to_json())?;
        let policy = welkin_types::genesis::MembershipPolicy {
            operators: vec![crate::cmd::signing::non_transferable_prefix(
                &operator.signer,
            )],
            approvals: 1,
            attestation: "none".into(),
            epoch_blocks: DEV_EPOCH_BLOCKS,
        };
        let genesis = ceremony::dealerless(
            listing,
            chain,
            crate::cmd::now_ms(),
            Some(welkin_types::secrets::token_public_key(&root_token)),
            Some(policy),
        )?;
        // Like `vault server -dev`: the root token once on the terminal, and in a file only
        // this user can read.
        let token_path = dir.join("root-token");
        crate::cmd::write_secret(&token_path, &format!("{root_token}\n"))?;
        eprintln!(
            "secrets root token: {root_token}\n  (also in {}; export VAULT_TOKEN to use Vault clients)",
            token_path.display()
        );
        for node in &genesis.nodes {
            let node_dir = dir.join(&node.name);
            // Genesis lists nodes by key: number the time ports as the API ports are.
            let i = usize::from(node.api_address.port() - base_port);
            std::fs::write(node_dir.join("node.toml"), dev_node_config(base_port, i))?;
        }
        crate::cmd::write_new(&genesis_path, &genesis.to_json(), 0o644)?;
        Ok(Self {
            dir: dir.to_path_buf(),
            genesis,
            nodes,
            own_process_group: false,
        })
    }

    /// The API URL of every node.
    pub(crate) fn apis(&self) -> Vec<String> {
        self.genesis
            .nodes
            .iter()
            .map(|n| format!("http://{}", n.api_address))
            .collect()
    }

    /// The command that runs one node, logging to its `node.log` (in its own process group if
    /// [`Self::own_process_group`]).
    pub(crate) fn node_command(&self, name: &str) -> anyhow::Result<Command> {
        use std::os::unix::process::CommandExt as _;
        let exe = std::env::current_exe().context("cannot find the welkin executable")?;
        let node_dir = self.dir.join(name);
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node_dir.join("node.log"))
            .with_context(|| format!("cannot open {}", node_dir.join("node.log").display()))?;
        let mut command = Command::new(exe);
        command
            .arg("node")
            .arg("--config")
            .arg(node_dir.join("node.toml"))
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log);
        if self.own_process_group {
            command.process_group(0);
        }
        Ok(command)
    }

    /// The cluster key, proven from the genesis through the node at `api` (see
    /// [`Client::trusted`]).
    pub(crate) fn cluster_key(&self, api: &str) -> anyhow::Result<welkin_types::ClusterKey> {
        Ok(Client::new(api).trusted(&self.genesis)?.cluster_key)
    }

    /// Starts every node as a child process, and waits until all answer and the cluster key
    /// is proven (a new cluster generates it at first start).
    pub(crate) fn spawn(&self, quiet: bool) -> anyhow::Result<Processes> {
        let mut processes = self.start_nodes(quiet)?;
        self.wait_for_key(&mut processes, quiet)?;
        Ok(processes)
    }

    /// Starts every node as a child process, and waits until all answer.
    pub(crate) fn start_nodes(&self, quiet: bool) -> anyhow::Result<Processes> {
        let mut children = Vec::with_capacity(self.nodes);
        for node in &self.genesis.nodes {
            let child = self
                .node_command(&node.name)?
                .spawn()
                .with_context(|| format!("cannot start {}", node.name))?;
            children.push((node.name.clone(), child));
        }
        let mut processes = Processes {
            children,
            dir: self.dir.clone(),
        };
        let deadline = Instant::now() + Duration::from_secs(60);
        let clients: Vec<_> = self.apis().iter().map(|a| Client::new(a)).collect();
        loop {
            processes.check_alive()?;
            let ready = clients.iter().filter(|c| c.health().is_ok()).count();
            if !quiet {
                eprint!("\rwaiting for nodes: {ready}/{} ready", clients.len());
            }
            if ready == clients.len() {
                if !quiet {
                    eprintln!();
                }
                return Ok(processes);
            }
            if Instant::now() > deadline {
                bail!(
                    "nodes did not become ready within 60 s; see the node.log files in {}",
                    self.dir.display()
                );
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    /// Waits until the cluster key is proven from the genesis through the first node (every
    /// service that signs with it waits for it: so does the caller).
    pub(crate) fn wait_for_key(
        &self,
        processes: &mut Processes,
        quiet: bool,
    ) -> anyhow::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(90);
        let apis = self.apis();
        loop {
            processes.check_alive()?;
            match self.cluster_key(&apis[0]) {
                Ok(_) => {
                    if !quiet {
                        eprintln!("\rcluster key: proven from the genesis{:20}", "");
                    }
                    return Ok(());
                }
                Err(error) if Instant::now() > deadline => bail!(
                    "the nodes did not generate a provable cluster key within 90 s ({error}); \
                     see the node.log files in {}",
                    self.dir.display()
                ),
                Err(_) => {
                    if !quiet {
                        eprint!("\rwaiting for the nodes to generate the cluster key...");
                    }
                    std::thread::sleep(Duration::from_millis(50));
                }
            }
        }
    }
}

/// Running node processes; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Processes {
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Processes {
    /// Wraps running node processes, so that they are stopped when this is dropped.
    pub(super) fn new(children: Vec<(String, Child)>, dir: PathBuf) -> Self {
        Self { children, dir }
    }

    /// Hands the node processes over, by name; they are no longer stopped on drop.
    pub(super) fn into_children(mut self) -> Vec<(String, Child)> {
        std::mem::take(&mut self.children)
    }

    /// Each node's name and process id.
    pub(crate) fn pids(&self) -> Vec<(String, u32)> {
        self.children
            .iter()
            .map(|(name, child)| (name.clone(), child.id()))
            .collect()
    }

    /// Fails if any node process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let log = self.dir.join(name.as_str()).join("node.log");
                bail!("{name} exited ({status}); {}", log_tail(&log));
            }
        }
        Ok(())
    }

    /// Stops every node: SIGTERM, a grace period, then SIGKILL.
    pub(crate) fn stop(&mut self) {
        for (_, child) in &self.children {
            terminate(child);
        }
        let deadline = Instant::now() + STOP_GRACE;
        for (_, child) in &mut self.children {
            while Instant::now() < deadline {
                if let Ok(Some(_)) = child.try_wait() {
                    break;
                }
                std::thread::sleep(Duration::from_millis(50));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
        self.children.clear();
    }
}

impl Drop for Processes {
    fn drop(&mut self) {
        self.stop();
    }
}

/// How long a node gets to stop after SIGTERM before it is killed.
pub(super) const STOP_GRACE: Duration = Duration::from_secs(10);

/// Asks a node to stop (SIGTERM), as an operator's `kill PID` would.
pub(super) fn terminate(child: &Child) {
    let _ = Command::new("kill")
        .arg("-TERM")
        .arg(child.id().to_string())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status();
}

/// The last lines of a node's log, to show why it stopped.
pub(super) fn log_tail(log: &Path) -> String {
    const LINES: usize = 15;
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let tail: Vec<_> = text.lines().rev().take(LINES).collect();
    format!(
        "last lines of {}:\n{}",
        log.display(),
        tail.into_iter().rev().collect::<Vec<_>>().join("\n")
    )
}
