//! Running one node as a process: files, the tokio runtime, authenticated TCP between nodes,
//! and the HTTP API.
//!
//! A node config is a small TOML file; relative paths in it are relative to the file:
//!
//! ```toml
//! data_dir = "data"            # embedded storage (created if missing)
//! key_file = "node.key"        # from `welkin key new`
//! share_file = "node.share"    # only with `welkin genesis --trusted-dealer`; a dealerless
//!                              # node generates its share and keeps it sealed in data_dir
//! genesis_file = "genesis.json"
//! # registration_file = "node9.json"   # a node that joins after genesis: its signed
//! #                                     # registration (`welkin key register`)
//! # optional: api_address, p2p_address (default: this node's genesis entry),
//! # max_block_txs, min_block_interval_ms, idle_wait_ms, worker_threads
//!
//! [api]                        # optional, every field too; defaults shown
//! threads = 2                  # the API's own threads, apart from consensus
//! max_connections = 1024
//! max_in_flight = 256          # requests handled at once; more get 503
//! rate_per_second = 500        # per client address; more get 429 with Retry-After
//! rate_burst = 1000
//! header_timeout_ms = 10000    # to send headers, or idle between requests
//! body_timeout_ms = 30000
//! max_waiters = 50000          # clients waiting for commits (wait=true)
//!
//! [time]                       # optional, every field too
//! roughtime_address = "127.0.0.1:2002"   # serve Roughtime (UDP); off when absent
//! ntp_address = "127.0.0.1:1123"         # serve SNTPv4 (UDP); off when absent
//! drift_ppm = 500              # the clock's worst-case drift
//! initial_radius_ms = 1000     # a free-running clock's radius before it first agrees
//! kernel = true                # take the radius from the kernel when the host is synchronised
//! ```

use crate::{
    api,
    api::server::ServeConfig,
    ceremony::{NodeKey, SealedShare, open_share},
    engine::{self, Channels, EngineConfig, MAX_MESSAGE_BYTES, Timeouts, channel},
    mempool::MempoolConfig,
    waiters::WaitersConfig,
};
use commonware_cryptography::ChaCha20Poly1305;
use commonware_p2p::{AddressableManager as _, authenticated::lookup};
use commonware_runtime::{Quota, Runner as _, Spawner as _, Supervisor as _, tokio as cw_tokio};
use commonware_stream::{
    cups::{self, Cups},
    sake::{self, Sake},
};
use commonware_utils::ordered::Map;
use serde::Deserialize;
use std::{
    net::{IpAddr, SocketAddr},
    num::{NonZeroU32, NonZeroUsize},
    path::{Path, PathBuf},
    time::Duration,
};
use tracing::{error, info};
use welkin_types::{Genesis, namespace};

/// Errors that stop a node from starting.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// A file could not be read.
    #[error("cannot read {path}: {error}")]
    Read {
        /// Which file.
        path: PathBuf,
        /// Why.
        error: std::io::Error,
    },
    /// A file's content is wrong.
    #[error("{path}: {message}")]
    Invalid {
        /// Which file.
        path: PathBuf,
        /// What is wrong.
        message: String,
    },
}

fn invalid(path: &Path, message: impl ToString) -> RunError {
    RunError::Invalid {
        path: path.to_path_buf(),
        message: message.to_string(),
    }
}

fn read(path: &Path) -> Result<String, RunError> {
    std::fs::read_to_string(path).map_err(|error| RunError::Read {
        path: path.to_path_buf(),
        error,
    })
}

/// The default minimum block interval under load: measured best on a 2-core machine (see
/// the cluster-core benchmark notes).
pub const DEFAULT_MIN_BLOCK_INTERVAL_MS: u64 = 100;

/// The node config file.
#[derive(Clone, Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeFileConfig {
    /// Embedded storage directory.
    pub data_dir: PathBuf,
    /// The node key file.
    pub key_file: PathBuf,
    /// The sealed key share from a trusted dealer; absent for a dealerless cluster.
    #[serde(default)]
    pub share_file: Option<PathBuf>,
    /// The genesis file.
    pub genesis_file: PathBuf,
    /// This node's signed registration (`welkin key register`), for a node that is not in
    /// the genesis but joins the cluster later (`welkin node join`).
    #[serde(default)]
    pub registration_file: Option<PathBuf>,
    /// Where to serve the HTTP API (default: the genesis entry).
    pub api_address: Option<SocketAddr>,
    /// Where to listen for peers (default: the genesis entry).
    pub p2p_address: Option<SocketAddr>,
    /// Most transactions per proposed block (default 8192).
    pub max_block_txs: Option<usize>,
    /// Least time between blocks this node proposes under load, in ms (default 100).
    pub min_block_interval_ms: Option<u64>,
    /// How long a proposer waits for a transaction before proposing an empty block, in ms
    /// (default 250, at most 500; 0 measures the consensus floor with back-to-back empty
    /// blocks).
    pub idle_wait_ms: Option<u64>,
    /// Runtime worker threads (default 2).
    pub worker_threads: Option<usize>,
    /// HTTP API limits.
    #[serde(default)]
    pub api: ApiFileConfig,
    /// Time readings and the Roughtime and NTP servers.
    #[serde(default)]
    pub time: crate::time_servers::TimeFileConfig,
    /// Object shards this node keeps for the cluster.
    #[serde(default)]
    pub storage: crate::objects::StorageFileConfig,
}

/// The `[api]` table of the node config: the HTTP API's threads and limits.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiFileConfig {
    /// Threads that serve the API, apart from the consensus runtime's (default 2).
    pub threads: Option<usize>,
    /// Most open client connections (default 1024).
    pub max_connections: Option<NonZeroUsize>,
    /// Most requests handled at once (default 256).
    pub max_in_flight: Option<NonZeroUsize>,
    /// Requests per second per client address (default 500).
    pub rate_per_second: Option<NonZeroU32>,
    /// Burst per client address (default 1000).
    pub rate_burst: Option<NonZeroU32>,
    /// Time to send request headers or idle between requests, in ms (default 10000).
    pub header_timeout_ms: Option<u64>,
    /// Time to send a request body, in ms (default 30000).
    pub body_timeout_ms: Option<u64>,
    /// Most clients waiting for commits (default 50000).
    pub max_waiters: Option<usize>,
}

impl ApiFileConfig {
    fn serve_config(&self) -> ServeConfig {
        let defaults = ServeConfig::default();
        ServeConfig {
            max_connections: self.max_connections.unwrap_or(defaults.max_connections),
            header_timeout: self
                .header_timeout_ms
                .map_or(defaults.header_timeout, Duration::from_millis),
            body_timeout: self
                .body_timeout_ms
                .map_or(defaults.body_timeout, Duration::from_millis),
            request_timeout: defaults.request_timeout,
            max_in_flight: self.max_in_flight.unwrap_or(defaults.max_in_flight),
            rate_per_second: self.rate_per_second.unwrap_or(defaults.rate_per_second),
            rate_burst: self.rate_burst.unwrap_or(defaults.rate_burst),
        }
    }
}

/// A node ready to run: files loaded and checked.
pub struct Prepared {
    engine: EngineConfig,
    data_dir: PathBuf,
    api_address: SocketAddr,
    p2p_address: SocketAddr,
    worker_threads: usize,
    api_threads: usize,
    serve: ServeConfig,
    time: crate::time_servers::TimeFileConfig,
    storage: crate::objects::StorageFileConfig,
}

impl Prepared {
    /// The node's API address.
    pub fn api_address(&self) -> SocketAddr {
        self.api_address
    }
}

/// Loads and checks a node config and everything it names.
pub fn prepare(config_path: &Path) -> Result<Prepared, RunError> {
    let text = read(config_path)?;
    let config: NodeFileConfig =
        toml::from_str(&text).map_err(|e| invalid(config_path, e.message()))?;
    let base = config_path.parent().unwrap_or(Path::new("."));
    let resolve = |p: &Path| {
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            base.join(p)
        }
    };
    let genesis_path = resolve(&config.genesis_file);
    let genesis =
        Genesis::from_json(&read(&genesis_path)?).map_err(|e| invalid(&genesis_path, e))?;
    let key_path = resolve(&config.key_file);
    let key = NodeKey::from_json(&read(&key_path)?).map_err(|e| invalid(&key_path, e))?;
    let share = match (&config.share_file, genesis.polynomial.is_some()) {
        (Some(share_file), true) => {
            let share_path = resolve(share_file);
            let sealed: SealedShare =
                serde_json::from_str(&read(&share_path)?).map_err(|e| invalid(&share_path, e))?;
            Some(
                open_share(&sealed, &key, &genesis.cluster_id())
                    .map_err(|e| invalid(&share_path, e))?,
            )
        }
        (None, true) => {
            return Err(invalid(
                config_path,
                "the genesis has a dealt key: set share_file to this node's share from                  `welkin genesis --trusted-dealer`",
            ));
        }
        (Some(_), false) => {
            return Err(invalid(
                config_path,
                "the genesis is dealerless: its nodes generate their shares, so remove                  share_file",
            ));
        }
        (None, false) => None,
    };
    let me = key.public_key();
    let joining = match &config.registration_file {
        None => None,
        Some(file) => {
            let path = resolve(file);
            let node: crate::ceremony::CeremonyNode =
                serde_json::from_str(&read(&path)?).map_err(|e| invalid(&path, e))?;
            Some(node.verified().map_err(|e| invalid(&path, e))?)
        }
    };
    let entry = match genesis.nodes.iter().find(|n| n.public_key == me) {
        Some(entry) => entry.clone(),
        None => match &joining {
            Some(registration) => registration.clone(),
            None => {
                return Err(invalid(
                    &key_path,
                    format!(
                        "key {me} is not a member of the cluster in {} (a node that joins \
                         later names its signed registration in registration_file: see \
                         `welkin node join`)",
                        genesis_path.display()
                    ),
                ));
            }
        },
    };
    let joining = joining.filter(|_| genesis.index_of(&me).is_none());
    let api_address = config.api_address.unwrap_or(entry.api_address);
    let p2p_address = config.p2p_address.unwrap_or(entry.p2p_address);
    let engine = EngineConfig {
        joining,
        signer: key.signer.clone(),
        share,
        genesis: genesis.clone(),
        partition_prefix: "welkin".into(),
        mempool: MempoolConfig::default(),
        waiters: WaitersConfig {
            max: config
                .api
                .max_waiters
                .unwrap_or(WaitersConfig::default().max),
        },
        releases: Default::default(),
        max_block_txs: config
            .max_block_txs
            .unwrap_or(welkin_types::limits::MAX_BLOCK_TXS),
        timeouts: Timeouts::default(),
        min_block_interval: Duration::from_millis(
            config
                .min_block_interval_ms
                .unwrap_or(DEFAULT_MIN_BLOCK_INTERVAL_MS),
        ),
        idle_wait: config
            .idle_wait_ms
            .map(Duration::from_millis)
            .unwrap_or(crate::application::IDLE_WAIT),
        clock: config.time.clock(),
        // Opened when the node runs (the store is not touched while preparing).
        storage: None,
    };
    engine.validate().map_err(|e| invalid(config_path, e))?;
    let serve = config.api.serve_config();
    serve.validate().map_err(|e| invalid(config_path, e))?;
    Ok(Prepared {
        engine,
        data_dir: resolve(&config.data_dir),
        api_address,
        p2p_address,
        worker_threads: config.worker_threads.unwrap_or(2).max(1),
        api_threads: config.api.threads.unwrap_or(2).max(1),
        serve,
        time: config.time.clone(),
        storage: crate::objects::StorageFileConfig {
            directory: config.storage.directory.as_deref().map(resolve),
            ..config.storage.clone()
        },
    })
}

/// Runs a prepared node until SIGINT or SIGTERM.
pub fn run(prepared: Prepared) {
    let Prepared {
        engine: mut engine_config,
        data_dir,
        api_address,
        p2p_address,
        worker_threads,
        api_threads,
        serve,
        time,
        storage,
    } = prepared;
    // The API gets threads of its own: a flood of requests (and the signature checks of the
    // transactions they carry) then competes with consensus for CPU only, never for the
    // consensus runtime's threads.
    let api_runtime = match tokio::runtime::Builder::new_multi_thread()
        .worker_threads(api_threads)
        .thread_name("welkin-api")
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("welkin: cannot start the API threads: {e}");
            std::process::exit(1);
        }
    };
    let runtime = cw_tokio::Config::new()
        .with_storage_directory(data_dir.clone())
        .with_worker_threads(worker_threads)
        .with_catch_panics(false);
    let api = api_runtime.handle().clone();
    match crate::objects::StorageSetup::open(&storage, &data_dir) {
        Ok(setup) => engine_config.storage = Some(setup),
        Err(message) => {
            error!(%message, "cannot start the shard service");
            eprintln!("welkin: {message}");
            std::process::exit(1);
        }
    }
    cw_tokio::Runner::new(runtime).start(|context| async move {
        let genesis = engine_config.genesis.clone();
        let identity = engine_config.signer.clone();
        let handshake = Cups::<_, ChaCha20Poly1305>::new(
            Sake {
                signer: engine_config.signer.clone(),
                synchrony_bound: Duration::from_secs(5),
                max_handshake_age: Duration::from_secs(10),
                version: sake::Version::V1,
            },
            cups::Version::V1,
        );
        let p2p = p2p_config(handshake, &genesis, p2p_address);
        let (mut network, mut oracle) = lookup::Network::new(context.child("p2p"), p2p);
        let mut known: Vec<(welkin_types::PublicKey, SocketAddr)> = genesis
            .nodes
            .iter()
            .chain(&engine_config.joining)
            .map(|n| (n.public_key.clone(), n.p2p_address))
            .collect();
        oracle.track(0, peer_map(&known));
        let mut tracker_oracle = oracle.clone();
        let pairs = channel::ALL
            .iter()
            .map(|&ch| network.register(ch, channel::quota(ch)))
            .collect();
        network.start();
        let handle = engine::start(
            context.child("node"),
            engine_config,
            Channels { pairs },
            oracle.clone(),
            oracle,
        )
        .await;

        // The peers change with the members: nodes that joined, and those admitted to join
        // (they must reach the members to take part in the resharing that admits them).
        {
            let handle = handle.clone();
            context.child("peers").spawn(move |context| async move {
                use commonware_runtime::Clock as _;
                let mut id = 0;
                loop {
                    context.sleep(Duration::from_secs(2)).await;
                    let mut peers = crate::epochs::peer_addresses(&handle).await;
                    for (key, address) in &known {
                        if !peers.iter().any(|(k, _)| k == key) {
                            peers.push((key.clone(), *address));
                        }
                    }
                    peers.sort();
                    if peers != known {
                        id += 1;
                        info!(peers = peers.len(), "peer set changed");
                        tracker_oracle.track(id, peer_map(&peers));
                        known = peers;
                    }
                }
            });
        }
        let listener = match std::net::TcpListener::bind(api_address)
            .and_then(|l| l.set_nonblocking(true).map(|()| l))
        {
            Ok(listener) => listener,
            Err(e) => {
                error!(%api_address, %e, "cannot bind the API address");
                eprintln!("welkin: cannot bind API address {api_address}: {e}");
                std::process::exit(1);
            }
        };
        // Roughtime and NTP run on the API's threads: they are front ends too.
        if let Err(message) = crate::time_servers::start(
            &api,
            &context.child("time_servers"),
            &handle,
            &identity,
            &time,
        ) {
            error!(%message, "cannot start the time servers");
            eprintln!("welkin: {message}");
            std::process::exit(1);
        }
        // A node that joined after genesis keeps no shards (placement is over the genesis
        // members' service): its API serves everything else.
        let router = match handle.shards() {
            Some(shards) => api::router_with_shards(handle.clone(), shards),
            None => api::router(handle.clone()),
        };
        api.spawn(async move {
            match tokio::net::TcpListener::from_std(listener) {
                Ok(listener) => api::server::serve(listener, router, serve).await,
                Err(e) => error!(%e, "API listener unusable"),
            }
        });
        info!(%api_address, %p2p_address, height = handle.status().height, "node ready");
        let udp = |what: &str, address: Option<SocketAddr>| {
            address.map_or(String::new(), |a| format!(" {what} udp://{a}"))
        };
        println!(
            "welkin node ready: api http://{api_address} p2p {p2p_address}{}{} height {}",
            udp("roughtime", time.roughtime_address),
            udp("ntp", time.ntp_address),
            handle.status().height
        );
        shutdown_signal().await;
        info!("shutting down");
        let _ = context.stop(0, Some(Duration::from_secs(5))).await;
    });
    api_runtime.shutdown_background();
}

/// The most peers a node tracks: the genesis members and room for the cluster to double (at
/// least 8 more). Each channel's receive buffer is sized by it (peers times the channel's
/// burst, preallocated), so the largest possible cluster for every node would cost
/// gigabytes of memory per process.
fn max_peers(genesis: &Genesis) -> NonZeroUsize {
    let n = genesis.nodes.len();
    NonZeroUsize::new((2 * n).max(n + 8).min(welkin_types::limits::MAX_NODES))
        .expect("a genesis has members")
}

/// The p2p peer set of `peers` (keys are distinct).
fn peer_map(
    peers: &[(welkin_types::PublicKey, SocketAddr)],
) -> Map<welkin_types::PublicKey, commonware_p2p::Address> {
    let mut seen = std::collections::BTreeMap::new();
    for (key, address) in peers {
        seen.entry(key.clone()).or_insert(*address);
    }
    seen.into_iter()
        .map(|(key, address)| (key, address.into()))
        .collect::<Vec<_>>()
        .try_into()
        .expect("distinct keys")
}

/// Commonware's recommended production p2p settings, with three changes a small, fixed,
/// authenticated validator set calls for:
/// - private addresses are allowed if the cluster's own addresses are private (a LAN or one
///   host);
/// - the per-IP handshake rate grows with the number of nodes sharing an address (the
///   recommended one handshake per 5 s per IP would make a one-host cluster of 7 take half a
///   minute to connect);
/// - the cooldown between connection attempts to one peer is 2 s, not 60 s: peers that dialed
///   a crashed node while it was down would otherwise refuse it for a minute after it restarts,
///   and with at most a few dozen known peers the churn the long cooldown guards against
///   cannot arise.
fn p2p_config<U: commonware_stream::Upgrader>(
    handshake: U,
    genesis: &Genesis,
    listen: SocketAddr,
) -> lookup::Config<U> {
    let mut p2p = lookup::Config::recommended(
        handshake,
        namespace::P2P,
        listen,
        max_peers(genesis),
        MAX_MESSAGE_BYTES,
        engine::P2P_MAILBOX,
    );
    let addresses: Vec<IpAddr> = genesis.nodes.iter().map(|n| n.p2p_address.ip()).collect();
    p2p.allow_private_ips = addresses.iter().any(|ip| !is_public(ip));
    p2p.peer_connection_cooldown = Duration::from_secs(2);
    let most_sharing = addresses
        .iter()
        .map(|ip| addresses.iter().filter(|other| *other == ip).count())
        .max()
        .unwrap_or(1);
    if most_sharing > 1 {
        let per_second = NonZeroU32::new(4 * most_sharing as u32).expect("positive");
        p2p.allowed_handshake_rate_per_ip = Quota::per_second(per_second);
    }
    p2p
}

/// Whether `ip` is routable on the public internet (not loopback, private or link-local).
fn is_public(ip: &IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            !(v4.is_loopback() || v4.is_private() || v4.is_link_local() || v4.is_unspecified())
        }
        IpAddr::V6(v6) => {
            !(v6.is_loopback()
                || v6.is_unique_local()
                || v6.is_unicast_link_local()
                || v6.is_unspecified())
        }
    }
}

async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        .expect("installing a SIGTERM handler succeeds on unix");
    tokio::select! {
        _ = ctrl_c => {},
        _ = term.recv() => {},
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn private_and_public_addresses_are_told_apart() {
        for private in [
            "127.0.0.1",
            "10.1.2.3",
            "192.168.0.9",
            "169.254.1.1",
            "::1",
            "fd00::1",
        ] {
            let ip: IpAddr = private.parse().expect("an address");
            assert!(!is_public(&ip), "{private}");
        }
        for public in ["8.8.8.8", "2001:4860:4860::8888"] {
            let ip: IpAddr = public.parse().expect("an address");
            assert!(is_public(&ip), "{public}");
        }
    }
}
