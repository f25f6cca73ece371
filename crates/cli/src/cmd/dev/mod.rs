//! `welkin dev`: a supervised local cluster of real node processes on 127.0.0.1, and the
//! `status`, `stop` and `start` commands that talk to it for fault experiments.

mod cluster;
mod control;
mod supervisor;

pub(crate) use cluster::{LocalCluster, Processes};

use crate::cli::{DevArgs, DevCommand};
use commonware_codec::Encode as _;
use control::Request;

/// Nodes of a new cluster unless --nodes says otherwise.
const DEFAULT_NODES: usize = 4;
/// Where a node serves Roughtime and NTP, from its config (`None` if it serves neither).
fn time_servers(config: &std::path::Path) -> Option<String> {
    let text = std::fs::read_to_string(config).ok()?;
    let config: welkin_node::run::NodeFileConfig = toml::from_str(&text).ok()?;
    let mut parts = Vec::new();
    if let Some(address) = config.time.roughtime_address {
        parts.push(format!("roughtime udp {address}"));
    }
    if let Some(address) = config.time.ntp_address {
        parts.push(format!("ntp udp {address}"));
    }
    (!parts.is_empty()).then(|| parts.join("  "))
}

/// First API port of a new cluster unless --base-port says otherwise.
const DEFAULT_BASE_PORT: u16 = 8700;

pub(crate) fn run(args: DevArgs) -> anyhow::Result<()> {
    if args.command.is_some()
        && (args.nodes.is_some() || args.base_port.is_some() || args.no_restart)
    {
        anyhow::bail!(
            "--nodes, --base-port and --no-restart apply when starting a cluster (`welkin dev`), \
             not to `welkin dev status|stop|start`"
        );
    }
    let request = match args.command {
        None => return supervise(args),
        Some(DevCommand::Status) => Request::Status,
        Some(DevCommand::Stop(stop)) => Request::Stop {
            node: stop.node,
            kill: stop.kill,
        },
        Some(DevCommand::Start(start)) => Request::Start { node: start.node },
    };
    println!("{}", control::request(&args.data_dir, &request)?);
    Ok(())
}

fn supervise(args: DevArgs) -> anyhow::Result<()> {
    let existed = args.data_dir.join("genesis.json").exists();
    let mut cluster = LocalCluster::create_or_load(
        &args.data_dir,
        args.nodes.unwrap_or(DEFAULT_NODES),
        args.base_port.unwrap_or(DEFAULT_BASE_PORT),
    )?;
    let mut socket = control::listen(&args.data_dir)?;
    if existed {
        eprintln!("resuming the cluster in {}", args.data_dir.display());
    } else {
        eprintln!(
            "created a {}-node cluster in {}",
            cluster.nodes,
            args.data_dir.display()
        );
    }
    cluster.own_process_group = true;
    let processes = cluster.spawn(false)?;
    banner(&cluster, &args, &processes);
    let (calls, queue) = tokio::sync::mpsc::channel(control::MAX_QUEUED);
    let mut supervisor = supervisor::Supervisor::new(cluster, processes, !args.no_restart);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        tokio::select! {
            outcome = supervisor.run(queue) => outcome,
            outcome = socket.serve(calls) => outcome,
        }
    });
    eprintln!("stopping nodes...");
    drop(supervisor);
    drop(socket);
    outcome
}

fn banner(cluster: &LocalCluster, args: &DevArgs, processes: &cluster::Processes) {
    let n = cluster.nodes;
    let f = welkin_types::genesis::max_faults(n);
    println!("Welkin dev cluster is up: {n} nodes, tolerates {f} faulty.");
    println!(
        "  cluster id   {}",
        hex::encode(cluster.genesis.cluster_id())
    );
    let apis = cluster.apis();
    match cluster.cluster_key(&apis[0]) {
        Ok(key) => println!("  cluster key  {}", hex::encode(key.encode())),
        Err(error) => println!("  cluster key  not proven yet ({error})"),
    }
    let pids = processes.pids();
    let mut listed: Vec<_> = cluster.genesis.nodes.iter().collect();
    listed.sort_by_key(|n| n.api_address.port());
    for node in listed {
        let pid = pids
            .iter()
            .find(|(name, _)| name == &node.name)
            .map_or(0, |(_, pid)| *pid);
        println!(
            "  {:<6} api http://{}  p2p {}  pid {pid}  log {}",
            node.name,
            node.api_address,
            node.p2p_address,
            args.data_dir.join(&node.name).join("node.log").display()
        );
        if let Some(time) = time_servers(&args.data_dir.join(&node.name).join("node.toml")) {
            println!("         {time}");
        }
    }
    let dir = args.data_dir.display();
    println!();
    println!("Try:  welkin status");
    println!("      welkin key new --out me.key");
    println!("      welkin tx submit --key me.key --wait put greeting hello");
    let down = format!("{f} node{}", if f == 1 { "" } else { "s" });
    println!("Faults (the cluster keeps committing with {down} down):");
    println!("      welkin dev stop node1 --data-dir {dir}    stop a node and keep it down");
    println!("      welkin dev start node1 --data-dir {dir}   start it again; it catches up");
    println!("      welkin dev status --data-dir {dir}        nodes, pids, up or down");
    if args.no_restart {
        println!("      kill -9 <pid>   a crashed node stays down (--no-restart)");
    } else {
        println!("      kill -9 <pid>   a crashed node is restarted (1 s backoff, doubling)");
    }
    println!("Press Ctrl-C to stop. The data stays in {dir}; the next `welkin dev` resumes it.");
}
