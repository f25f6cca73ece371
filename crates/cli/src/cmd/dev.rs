//! `welkin dev`: a local cluster of real node processes on 127.0.0.1.

use crate::cli::DevArgs;
use anyhow::{Context as _, bail};
use commonware_codec::Encode as _;
use std::{
    path::{Path, PathBuf},
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};
use welkin_client::Client;
use welkin_node::ceremony::{self, CeremonyNode, NodeKey};
use welkin_types::{ChainParams, Genesis};

/// A local cluster's files: `genesis.json` and `node<i>/{node.key, node.share, node.toml, data/}`.
pub(crate) struct LocalCluster {
    dir: PathBuf,
    genesis: Genesis,
    nodes: usize,
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
            });
        }
        if !(1..=64).contains(&nodes) {
            bail!("--nodes must be between 1 and 64, got {nodes}");
        }
        if base_port as usize + 100 + nodes > u16::MAX as usize {
            bail!("--base-port {base_port} leaves no room for {nodes} nodes");
        }
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
        let mut rng = commonware_utils::sys_rng();
        let mut listing = Vec::with_capacity(nodes);
        for i in 0..nodes {
            let node_dir = dir.join(format!("node{i}"));
            std::fs::create_dir_all(&node_dir)?;
            let key = NodeKey::generate(&mut rng);
            super::write_secret(&node_dir.join("node.key"), &key.to_json())?;
            listing.push(CeremonyNode {
                name: format!("node{i}"),
                public_key: hex::encode(key.public_key().encode()),
                encryption_key: hex::encode(key.encryption_key()),
                p2p_address: format!("127.0.0.1:{}", base_port as usize + 100 + i).parse()?,
                api_address: format!("127.0.0.1:{}", base_port as usize + i).parse()?,
                failure_domain: format!("host-{i}"),
            });
        }
        let chain = ChainParams {
            name: "welkin-dev".into(),
            ..ChainParams::default()
        };
        let (genesis, shares) = ceremony::deal(&mut rng, listing, chain, super::now_ms())?;
        for (node, share) in genesis.nodes.iter().zip(&shares) {
            let node_dir = dir.join(&node.name);
            super::write_secret(
                &node_dir.join("node.share"),
                &serde_json::to_string_pretty(share)?,
            )?;
            std::fs::write(
                node_dir.join("node.toml"),
                "data_dir = \"data\"\nkey_file = \"node.key\"\nshare_file = \"node.share\"\ngenesis_file = \"../genesis.json\"\n",
            )?;
        }
        std::fs::write(&genesis_path, genesis.to_json())?;
        Ok(Self {
            dir: dir.to_path_buf(),
            genesis,
            nodes,
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

    /// Starts every node as a child process, and waits until all answer.
    pub(crate) fn spawn(&self, quiet: bool) -> anyhow::Result<Processes> {
        let exe = std::env::current_exe().context("cannot find the welkin executable")?;
        let mut children = Vec::with_capacity(self.nodes);
        for node in &self.genesis.nodes {
            let node_dir = self.dir.join(&node.name);
            let log = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(node_dir.join("node.log"))?;
            let child = Command::new(&exe)
                .arg("node")
                .arg("--config")
                .arg(node_dir.join("node.toml"))
                .stdin(Stdio::null())
                .stdout(log.try_clone()?)
                .stderr(log)
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
}

/// Running node processes; stopped (SIGTERM, then SIGKILL) when dropped.
pub(crate) struct Processes {
    children: Vec<(String, Child)>,
    dir: PathBuf,
}

impl Processes {
    /// Fails if any node process has exited.
    pub(crate) fn check_alive(&mut self) -> anyhow::Result<()> {
        for (name, child) in &mut self.children {
            if let Some(status) = child.try_wait()? {
                let log = self.dir.join(name.as_str()).join("node.log");
                let tail = std::fs::read_to_string(&log).unwrap_or_default();
                let tail: Vec<_> = tail.lines().rev().take(15).collect();
                bail!(
                    "{name} exited ({status}); last lines of {}:\n{}",
                    log.display(),
                    tail.into_iter().rev().collect::<Vec<_>>().join("\n")
                );
            }
        }
        Ok(())
    }

    /// Stops every node: SIGTERM, a grace period, then SIGKILL.
    pub(crate) fn stop(&mut self) {
        for (_, child) in &self.children {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(child.id().to_string())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(10);
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

pub(crate) fn run(args: DevArgs) -> anyhow::Result<()> {
    let existed = args.data_dir.join("genesis.json").exists();
    let cluster = LocalCluster::create_or_load(&args.data_dir, args.nodes, args.base_port)?;
    if existed {
        eprintln!("resuming the cluster in {}", args.data_dir.display());
    } else {
        eprintln!(
            "created a {}-node cluster in {}",
            cluster.nodes,
            args.data_dir.display()
        );
    }
    let mut processes = cluster.spawn(false)?;
    println!(
        "Welkin dev cluster is up: {} nodes, tolerates {} faulty.",
        cluster.nodes,
        welkin_types::genesis::max_faults(cluster.nodes)
    );
    println!(
        "  cluster id   {}",
        hex::encode(cluster.genesis.cluster_id())
    );
    println!(
        "  cluster key  {}",
        hex::encode(cluster.genesis.cluster_key().encode())
    );
    let mut listed: Vec<_> = cluster.genesis.nodes.iter().collect();
    listed.sort_by_key(|n| n.api_address.port());
    for node in listed {
        println!(
            "  {:<6} api http://{}  p2p {}  log {}",
            node.name,
            node.api_address,
            node.p2p_address,
            args.data_dir.join(&node.name).join("node.log").display()
        );
    }
    println!();
    println!("Try:  welkin status");
    println!("      welkin key new --out me.key");
    println!("      welkin tx submit --key me.key --wait put greeting hello");
    println!(
        "Press Ctrl-C to stop. The data stays in {}; the next `welkin dev` resumes it.",
        args.data_dir.display()
    );

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        loop {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => return Ok(()),
                _ = tokio::time::sleep(Duration::from_millis(500)) => {
                    processes.check_alive()?;
                }
            }
        }
    });
    eprintln!("stopping nodes...");
    processes.stop();
    outcome
}
