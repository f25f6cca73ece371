//! A whole Welkin cluster on the deterministic runtime with a simulated network.

use crate::{
    skew::Skewed,
    tamper::{Lie, Tampered},
};
use commonware_codec::Encode as _;
use commonware_consensus::simplex::{mocks::conflicter, scheme::ed25519};
use commonware_cryptography::{
    Digestible as _, Sha256, Signer as _,
    bls12381::{
        dkg::feldman_desmedt,
        primitives::{group::Share, sharing::Mode},
    },
};
use commonware_macros::select;
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{Clock as _, Handle, Spawner as _, Supervisor as _, deterministic};
use commonware_utils::{N3f1, NZUsize, Probability, TestRng, ordered::Set};
use std::{
    collections::{BTreeMap, BTreeSet},
    time::Duration,
};
use welkin_node::{
    Channels, EngineConfig, MAX_MESSAGE_BYTES, MempoolConfig, NodeHandle, Timeouts, channel, now_ms,
};
use welkin_types::{
    ChainParams, Digest, Genesis, Payload, PrivateKey, PublicKey, Receipt, Sender, Transaction,
    TxId, Variant,
    genesis::{GENESIS_VERSION, NodeRegistration},
    namespace,
};

/// The runtime context of the simulation (its clock is the true time).
pub(crate) type Ctx = deterministic::Context;
/// A handle to a simulated node (whose clock may be skewed).
pub(crate) type Node = NodeHandle<Skewed>;

/// Keys, shares and genesis of a simulated cluster, independent of any runtime so that the
/// same fixture survives a simulated crash.
#[derive(Clone)]
pub(crate) struct Fixture {
    /// Node keys, in genesis (public key) order.
    pub(crate) keys: Vec<PrivateKey>,
    /// Key shares, in genesis order.
    pub(crate) shares: Vec<Share>,
    /// The genesis.
    pub(crate) genesis: Genesis,
    /// Keys of the simulated clients.
    pub(crate) clients: Vec<PrivateKey>,
    /// Where the nodes keep shards (one directory each), if they run the storage service.
    pub(crate) shard_dir: Option<std::sync::Arc<tempfile::TempDir>>,
}

/// Bytes each simulated node offers for shards.
pub(crate) const SIM_STORAGE_BYTES: u64 = 1 << 30;

impl Fixture {
    /// The cluster key a trusted dealer made (the fixtures of [`Fixture::new`]).
    pub(crate) fn dealt_key(&self) -> &welkin_types::ClusterKey {
        self.genesis.dealt_key().expect("a dealt fixture")
    }

    /// The cluster key: dealt, or, for a dealerless cluster, proven from the logs the first
    /// live node's state selected (checked against the genesis members, as a client checks
    /// it); every live node must hold the same record.
    pub(crate) async fn cluster_key(&self, live: &[&Node]) -> welkin_types::ClusterKey {
        if let Some(key) = self.genesis.dealt_key() {
            return *key;
        }
        let mut record = None;
        for node in live {
            let bytes = node
                .value(welkin_state::keys::cluster_key())
                .await
                .expect("a dealerless cluster generated its key");
            match &record {
                None => record = Some(bytes),
                Some(first) => assert_eq!(first, &bytes, "nodes recorded different keys"),
            }
        }
        let generated = welkin_state::keygen::GeneratedKey::decode(&record.expect("a live node"))
            .expect("the record decodes");
        let output = welkin_dkg::check_first_key(
            &self.genesis.cluster_id(),
            generated.round,
            &self.genesis.member_keys(),
            &generated.excluded,
            &generated.logs,
        )
        .expect("the recorded logs prove the key");
        *output.public().public()
    }

    /// A cluster of `n` nodes, derived from `seed`.
    pub(crate) fn new(n: usize, seed: u64) -> Self {
        let mut keys: Vec<_> = (0..n as u64)
            .map(|i| PrivateKey::from_seed(seed * 1000 + i))
            .collect();
        keys.sort_by_key(|k| k.public_key());
        let players = Set::try_from(keys.iter().map(|k| k.public_key()).collect::<Vec<_>>())
            .expect("unique keys");
        let (output, shares) = feldman_desmedt::deal::<Variant, _, N3f1>(
            TestRng::new(seed),
            Mode::NonZeroCounter,
            players,
        )
        .expect("deal");
        let nodes = keys
            .iter()
            .enumerate()
            .map(|(i, k)| registration(k, i))
            .collect();
        let genesis = Genesis {
            version: GENESIS_VERSION,
            chain: ChainParams {
                name: "sim".into(),
                ..ChainParams::default()
            },
            nodes,
            threshold: output.public().required(),
            polynomial: Some(output.public().clone()),
            genesis_time_ms: 0,
            root_token: Some(welkin_types::secrets::token_public_key(ROOT_TOKEN)),
            membership: None,
        };
        genesis.validate().expect("valid genesis");
        let shares = keys
            .iter()
            .map(|k| shares.get_value(&k.public_key()).expect("share").clone())
            .collect();
        let clients = (0..4)
            .map(|i| PrivateKey::from_seed(seed * 1000 + 500 + i))
            .collect();
        Self {
            keys,
            shares,
            genesis,
            clients,
            shard_dir: None,
        }
    }

    /// The same members with a dealerless genesis: the nodes generate the cluster key at
    /// first start (the dealt shares are dropped).
    pub(crate) fn dealerless(mut self) -> Self {
        self.genesis.polynomial = None;
        self.genesis.validate().expect("valid genesis");
        self.shares.clear();
        self
    }

    /// The same cluster, with every node running the storage service over a shard store in
    /// a fresh temporary directory (kept across simulated restarts).
    pub(crate) fn with_storage(mut self) -> Self {
        self.shard_dir = Some(std::sync::Arc::new(
            tempfile::tempdir().expect("a temporary directory for shards"),
        ));
        self
    }

    /// Node `index`'s signed registration if it is not a genesis member (it joins later).
    pub(crate) fn joining(&self, index: usize) -> Option<welkin_types::NodeInfo> {
        let key = &self.keys[index];
        if self.genesis.index_of(&key.public_key()).is_some() {
            return None;
        }
        Some(registration(key, index))
    }

    /// Number of nodes.
    pub(crate) fn n(&self) -> usize {
        self.keys.len()
    }

    /// Public keys in genesis order.
    pub(crate) fn public_keys(&self) -> Vec<PublicKey> {
        self.keys.iter().map(|k| k.public_key()).collect()
    }
}

/// The signed registration of simulated node `i` with key `key`.
pub(crate) fn registration(key: &PrivateKey, i: usize) -> welkin_types::NodeInfo {
    NodeRegistration {
        name: format!("node{i}"),
        public_key: key.public_key(),
        encryption_key: vec![0; 32],
        p2p_address: format!("127.0.0.1:{}", 10_000 + i)
            .parse()
            .expect("address"),
        api_address: format!("127.0.0.1:{}", 20_000 + i)
            .parse()
            .expect("address"),
        failure_domain: format!("zone-{}", i % 3),
    }
    .sign(key)
}

/// A link with the given latency (ms) and delivery probability (percent).
pub(crate) fn link(latency_ms: u64, success_percent: u64) -> Link {
    Link {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(latency_ms / 5),
        success_rate: Probability::new(success_percent, 100).expect("valid probability"),
    }
}

/// The simulated network of a cluster.
#[derive(Clone)]
pub(crate) struct Net {
    /// The oracle that shapes links.
    pub(crate) oracle: Oracle<PublicKey, Ctx>,
    keys: Vec<PublicKey>,
}

impl Net {
    /// Starts the simulated network for a fixture.
    pub(crate) async fn start(context: &Ctx, fixture: &Fixture) -> Self {
        let keys = fixture.public_keys();
        let (network, oracle) = Network::new_with_peers(
            context.child("network"),
            simulated::Config {
                max_size: MAX_MESSAGE_BYTES,
                max_peers_per_set: NZUsize!(keys.len()),
                disconnect_on_block: true,
                tracked_peer_sets: NZUsize!(1),
            },
            keys.clone(),
        )
        .await;
        network.start();
        Self { oracle, keys }
    }

    /// Links every ordered pair of nodes in `from` to every node in `to`.
    pub(crate) async fn connect(&self, from: &[usize], to: &[usize], link: &Link) {
        for &a in from {
            for &b in to {
                if a != b {
                    let _ = self
                        .oracle
                        .add_link(self.keys[a].clone(), self.keys[b].clone(), link.clone())
                        .await;
                }
            }
        }
    }

    /// Removes every link between the two groups, in both directions.
    pub(crate) async fn cut(&self, a: &[usize], b: &[usize]) {
        for &x in a {
            for &y in b {
                if x != y {
                    let _ = self
                        .oracle
                        .remove_link(self.keys[x].clone(), self.keys[y].clone())
                        .await;
                    let _ = self
                        .oracle
                        .remove_link(self.keys[y].clone(), self.keys[x].clone())
                        .await;
                }
            }
        }
    }

    /// Connects every ordered pair with its own latency, drawn from `seed` between 5 and
    /// 60 ms, delivering `success_percent` of messages.
    pub(crate) async fn connect_varied(&self, seed: u64, success_percent: u64) {
        let n = self.keys.len();
        for a in 0..n {
            for b in 0..n {
                if a != b {
                    let mut x = seed ^ ((a as u64) << 32 | b as u64) ^ 0x9e37_79b9_7f4a_7c15;
                    x ^= x << 13;
                    x ^= x >> 7;
                    x ^= x << 17;
                    let latency = 5 + x % 56;
                    self.connect(&[a], &[b], &link(latency, success_percent))
                        .await;
                }
            }
        }
    }

    /// Connects all nodes with `link`.
    pub(crate) async fn connect_all(&self, link: &Link) {
        let all: Vec<_> = (0..self.keys.len()).collect();
        self.connect(&all, &all, link).await;
    }
}

/// The error bound every synchronised simulated host claims (honest ones keep within it).
pub(crate) const HOST_RADIUS_MS: u64 = 5;

/// What a simulated node is.
#[derive(Clone)]
pub(crate) enum Role {
    /// Runs the node code, with its clock off by this many milliseconds.
    Honest(i64),
    /// Runs commonware's conflicter on the vote channel only.
    Conflicter,
    /// Runs the node code but tells one lie on the wire.
    Lying(Lie),
    /// Runs the node code with its clock off by this many milliseconds, beyond what the chain
    /// tolerates: its blocks are invalid to the others.
    BrokenClock(i64),
    /// Runs the node code with its clock off by this many milliseconds, gaining this many
    /// millionths (within the 500 ppm the node assumes at worst), on a host that is not
    /// synchronised: its time readings start wide and narrow as it agrees with the cluster.
    Drifting(i64, i64),
}

impl Role {
    /// Whether the node counts in the invariants.
    pub(crate) fn is_honest(&self) -> bool {
        matches!(self, Role::Honest(_) | Role::Drifting(..))
    }
}

/// A running node and the task that holds it (aborting the task crashes the node).
pub(crate) struct Running {
    /// The node's handle.
    pub(crate) node: Node,
    /// The task every part of the node runs under.
    pub(crate) task: Handle<()>,
}

/// Starts node `index` in its own task, as `role` (not a conflicter). `life` tells restarts
/// apart in task names.
pub(crate) async fn start_node_as(
    context: &Ctx,
    net: &Net,
    fixture: &Fixture,
    index: usize,
    role: &Role,
    life: u32,
) -> Running {
    let key = fixture.keys[index].clone();
    let control = net.oracle.control(key.public_key());
    let lie = match role {
        Role::Lying(lie) => Some(lie.clone()),
        _ => None,
    };
    let offset = match role {
        Role::Honest(offset) | Role::BrokenClock(offset) | Role::Drifting(offset, _) => *offset,
        Role::Conflicter | Role::Lying(_) => 0,
    };
    let drift_ppm = match role {
        Role::Drifting(_, ppm) => *ppm,
        _ => 0,
    };
    let mut pairs = Vec::new();
    for ch in channel::ALL {
        let (sender, receiver) = control
            .register(ch, channel::quota(ch))
            .await
            .expect("register channel");
        pairs.push((Tampered::new(sender, ch, lie.as_ref()), receiver));
    }
    let config = EngineConfig {
        signer: key,
        share: fixture
            .genesis
            .polynomial
            .is_some()
            .then(|| fixture.shares[index].clone()),
        genesis: fixture.genesis.clone(),
        joining: fixture.joining(index),
        partition_prefix: format!("node{index}"),
        mempool: MempoolConfig::default(),
        waiters: Default::default(),
        releases: Default::default(),
        max_block_txs: 512,
        timeouts: Timeouts::default(),
        min_block_interval: Duration::ZERO,
        idle_wait: Duration::from_millis(250),
        clock: welkin_node::time::ClockConfig {
            host: std::sync::Arc::new(welkin_node::time::FixedHost(match role {
                Role::Drifting(..) => welkin_node::time::HostSync::Unsynced,
                _ => welkin_node::time::HostSync::Synced {
                    max_error: Duration::from_millis(HOST_RADIUS_MS),
                },
            })),
            ..Default::default()
        },
        storage: fixture.shard_dir.as_ref().map(|dir| {
            welkin_node::objects::StorageSetup::open_at(
                &dir.path().join(format!("node{index}")),
                SIM_STORAGE_BYTES,
                4,
            )
            .expect("the shard store opens")
        }),
    };
    config.validate().expect("valid config");
    let manager = net.oracle.manager();
    let (ready, started) = futures::channel::oneshot::channel();
    let task = context
        .child("node")
        .with_attribute("index", index)
        .with_attribute("life", life)
        .spawn(move |context| async move {
            let node = welkin_node::start(
                Skewed::drifting(context, offset, drift_ppm),
                config,
                Channels { pairs },
                manager,
                control,
            )
            .await;
            let _ = ready.send(node);
            futures::future::pending::<()>().await;
        });
    let node = started.await.expect("the node starts");
    Running { node, task }
}

/// Crashes running node `index` of `cluster`: records in `gaps` the recent heights it had not
/// certified (it restarts without their roots) and aborts its task. Returns the height it
/// had applied.
pub(crate) async fn crash(cluster: &mut Cluster, index: usize, gaps: &mut Gaps) -> u64 {
    let old = cluster.nodes[index].take().expect("the node is up");
    let height = old.status().height;
    for at in height.saturating_sub(32).max(1)..height {
        if old.checkpoint(at).await.is_none() {
            gaps.entry(index).or_default().insert(at);
        }
    }
    cluster.tasks[index].take().expect("running").abort();
    height
}

/// Starts node `index` as a byzantine conflicter: it votes for conflicting proposals.
pub(crate) async fn start_conflicter(context: &Ctx, net: &Net, fixture: &Fixture, index: usize) {
    let key = fixture.keys[index].clone();
    let control = net.oracle.control(key.public_key());
    let vote = control
        .register(channel::VOTE, channel::quota(channel::VOTE))
        .await
        .expect("register vote channel");
    let participants = Set::try_from(fixture.public_keys()).expect("unique keys");
    let scheme = ed25519::Scheme::signer(namespace::CONSENSUS, participants, key.clone())
        .expect("the conflicter is a member");
    let engine = conflicter::Conflicter::<_, _, Sha256>::new(
        context.child("conflicter"),
        conflicter::Config { scheme },
    );
    engine.start(vote);
}

/// A started cluster: handles of the honest nodes (by index, `None` for the others), the
/// byzantine nodes that run node code, and every node's task.
pub(crate) struct Cluster {
    /// Honest nodes, by genesis index.
    pub(crate) nodes: Vec<Option<Node>>,
    /// Byzantine nodes that run node code, by genesis index.
    pub(crate) byzantine: BTreeMap<usize, Node>,
    /// Each node's task (none for a conflicter).
    pub(crate) tasks: Vec<Option<Handle<()>>>,
}

/// Starts every node in its role.
pub(crate) async fn start_roles(
    context: &Ctx,
    net: &Net,
    fixture: &Fixture,
    roles: &[Role],
) -> Cluster {
    let mut cluster = Cluster {
        nodes: Vec::new(),
        byzantine: BTreeMap::new(),
        tasks: Vec::new(),
    };
    for (index, role) in roles.iter().enumerate() {
        if let Role::Conflicter = role {
            start_conflicter(context, net, fixture, index).await;
            cluster.nodes.push(None);
            cluster.tasks.push(None);
            continue;
        }
        let running = start_node_as(context, net, fixture, index, role, 0).await;
        cluster.tasks.push(Some(running.task));
        if role.is_honest() {
            cluster.nodes.push(Some(running.node));
        } else {
            cluster.byzantine.insert(index, running.node);
            cluster.nodes.push(None);
        }
    }
    cluster
}

/// Starts every node; `byzantine` nodes run the conflicter instead.
pub(crate) async fn start_cluster(
    context: &Ctx,
    net: &Net,
    fixture: &Fixture,
    byzantine: &[usize],
) -> Vec<Option<Node>> {
    let roles: Vec<Role> = (0..fixture.n())
        .map(|i| {
            if byzantine.contains(&i) {
                Role::Conflicter
            } else {
                Role::Honest(0)
            }
        })
        .collect();
    start_roles(context, net, fixture, &roles).await.nodes
}

/// A signed transaction from client `client` with `nonce`.
pub(crate) fn transaction(
    context: &Ctx,
    fixture: &Fixture,
    client: usize,
    nonce: u64,
) -> welkin_types::SignedTransaction {
    let payload = Payload::Put {
        key: nonce.to_be_bytes().to_vec(),
        value: vec![client as u8; 16],
    };
    transaction_with(context, fixture, client, nonce, payload)
}

/// A transaction carrying `payload` from client `client` with `nonce`.
pub(crate) fn transaction_with(
    context: &Ctx,
    fixture: &Fixture,
    client: usize,
    nonce: u64,
    payload: Payload,
) -> welkin_types::SignedTransaction {
    let key = &fixture.clients[client % fixture.clients.len()];
    Transaction {
        sender: Sender::Key(key.public_key()),
        nonce,
        expiry_ms: now_ms(context) + 120_000,
        payload,
    }
    .sign(key, &fixture.genesis.cluster_id())
}

/// Submits one transaction to `node` and waits for its receipt.
pub(crate) async fn commit(
    context: &Ctx,
    node: &Node,
    tx: welkin_types::SignedTransaction,
    patience: Duration,
) -> Option<Receipt> {
    let waiter = node.subscribe(tx.id()).expect("waiter room");
    node.submit(tx).await.expect("an honest node accepts it");
    select! {
        receipt = waiter => receipt,
        _ = context.sleep(patience) => None,
    }
}

/// The secrets root token of every simulated cluster.
pub(crate) const ROOT_TOKEN: &str = "wlk.simulation-root";

/// Transactions the simulated client submits every 100 ms.
const TXS_PER_TICK: u64 = 10;

/// Submits `count` transactions (nonces from `first_nonce`) to the live nodes in turn, ten
/// every 100 ms, and waits up to `patience` for each receipt. Returns the acknowledged ones:
/// those whose receipt a node delivered.
pub(crate) async fn workload(
    context: &Ctx,
    fixture: &Fixture,
    nodes: &[Option<Node>],
    targets: &[usize],
    first_nonce: u64,
    count: u64,
    patience: Duration,
) -> BTreeMap<TxId, Receipt> {
    let mut waiters = Vec::new();
    for i in 0..count {
        let target = targets[(i as usize) % targets.len()];
        let Some(node) = &nodes[target] else { continue };
        let tx = transaction(context, fixture, i as usize, first_nonce + i);
        let id = tx.id();
        let waiter = node.subscribe(id).expect("waiter room");
        node.submit(tx)
            .await
            .expect("an honest node accepts a valid transaction");
        waiters.push((id, waiter));
        if (i + 1) % TXS_PER_TICK == 0 {
            context.sleep(Duration::from_millis(100)).await;
        }
    }
    let deadline = context.current() + patience;
    let mut acked = BTreeMap::new();
    for (id, waiter) in waiters {
        select! {
            receipt = waiter => {
                if let Some(receipt) = receipt {
                    acked.insert(id, receipt);
                }
            },
            _ = context.sleep_until(deadline) => {},
        }
    }
    acked
}

/// Waits until every live node has applied `height`, or `timeout` passes; returns whether it did.
pub(crate) async fn wait_for_height(
    context: &Ctx,
    nodes: &[Option<Node>],
    height: u64,
    timeout: Duration,
) -> bool {
    let deadline = context.current() + timeout;
    loop {
        if nodes.iter().flatten().all(|n| n.status().height >= height) {
            return true;
        }
        if context.current() >= deadline {
            return false;
        }
        context.sleep(Duration::from_millis(50)).await;
    }
}

/// The highest height every live node has applied.
pub(crate) fn common_height(nodes: &[Option<Node>]) -> u64 {
    nodes
        .iter()
        .flatten()
        .map(|n| n.status().height)
        .min()
        .unwrap_or(0)
}

/// Heights at which a node may lack a certificate: those it had not certified when it
/// crashed (it restarts without their roots, so it can no longer check a certificate for them).
pub(crate) type Gaps = BTreeMap<usize, BTreeSet<u64>>;

/// Waits (up to a minute) until every live node holds a certificate at every height up to
/// the common height, except its gaps; returns what is still missing, as (node, height).
async fn missing_certificates(
    context: &Ctx,
    nodes: &[Option<Node>],
    gaps: &Gaps,
) -> Vec<(usize, u64)> {
    let top = common_height(nodes);
    let mut missing: BTreeSet<(usize, u64)> = BTreeSet::new();
    for (i, node) in nodes.iter().enumerate() {
        if node.is_some() {
            for height in 1..=top {
                if !gaps.get(&i).is_some_and(|gap| gap.contains(&height)) {
                    missing.insert((i, height));
                }
            }
        }
    }
    let deadline = context.current() + Duration::from_secs(60);
    loop {
        let mut still = BTreeSet::new();
        for &(i, height) in &missing {
            let node = nodes[i].as_ref().expect("live");
            if node.checkpoint(height).await.is_none() {
                still.insert((i, height));
            }
        }
        missing = still;
        if missing.is_empty() || context.current() >= deadline {
            return missing.into_iter().collect();
        }
        context.sleep(Duration::from_millis(250)).await;
    }
}

/// Checks the safety invariants on every live (honest) node at every height up to the height
/// all have applied, and returns a digest of the agreed history:
/// - no two different finalized blocks at one height;
/// - every node holds the cluster's certificate at every height (outside its crash gaps), it
///   verifies under the cluster key, and all nodes hold the same one. A node stores a
///   certificate only for a checkpoint equal to its own (it recovers it from partials checked
///   against its own root, or compares a received one with its own), so this proves every
///   node's state root, log size and log root equal the cluster's at every height: a diverged
///   node lacks the certificate and fails here;
/// - every acknowledged transaction has the same receipt on every node, and an inclusion
///   proof against the latest certified log root.
pub(crate) async fn check_invariants(
    context: &Ctx,
    fixture: &Fixture,
    nodes: &[Option<Node>],
    acked: &BTreeMap<TxId, Receipt>,
    gaps: &Gaps,
) -> Digest {
    let missing = missing_certificates(context, nodes, gaps).await;
    assert!(
        missing.is_empty(),
        "nodes without the cluster's certificate (diverged or never certified), as (node, height): {missing:?}"
    );
    let live: Vec<&Node> = nodes.iter().flatten().collect();
    let top = common_height(nodes);
    let cluster_id = fixture.genesis.cluster_id();
    let cluster_key = fixture.cluster_key(&live).await;
    let mut history = Vec::new();
    for height in 1..=top {
        let mut digest = None;
        let mut root = None;
        for node in &live {
            // A block finalized through a descendant's certificate has no certificate of its own.
            let (block, _finalization) = node
                .block(height)
                .await
                .unwrap_or_else(|| panic!("node lacks finalized block {height}"));
            match digest {
                None => digest = Some(block.digest()),
                Some(d) => assert_eq!(
                    d,
                    block.digest(),
                    "two different finalized blocks at height {height}"
                ),
            }
            if let Some(certified) = node.checkpoint(height).await {
                assert!(
                    certified.verify(&cluster_id, &cluster_key),
                    "bad checkpoint signature at {height}"
                );
                match root {
                    None => root = Some(certified.checkpoint),
                    Some(r) => assert_eq!(
                        r, certified.checkpoint,
                        "checkpoints (state or log) differ at height {height}"
                    ),
                }
            }
        }
        // Heights every live node is excused from (a dealerless cluster's heights before
        // its key existed) have no certificate anywhere.
        let excused = nodes
            .iter()
            .enumerate()
            .filter(|(_, n)| n.is_some())
            .all(|(i, _)| gaps.get(&i).is_some_and(|gap| gap.contains(&height)));
        assert!(
            root.is_some() || excused,
            "no node holds a certificate at height {height}"
        );
        history.extend_from_slice(digest.expect("at least one live node").as_ref());
    }
    // Every acknowledged transaction is in the log: an inclusion proof from every node leads
    // to a log root the cluster certified.
    let latest = live
        .iter()
        .map(|n| n.status().certified_height)
        .min()
        .unwrap_or(0);
    if latest > 0 {
        for node in &live {
            let Some(certified) = node.checkpoint(latest).await else {
                continue;
            };
            // The served note carries the cluster's signature and at least 2f+1 valid node
            // cosignatures (those of the partials that made the certificate, at least).
            let note = node.checkpoint_note(latest).await.expect("a note");
            let note = welkin_note::Note::parse(note.as_bytes()).expect("note parses");
            assert_eq!(
                welkin_types::note::from_note(&note, &cluster_id, &cluster_key),
                Ok(certified.clone()),
                "note carries the certified checkpoint"
            );
            // Every node that may have joined cosigns too.
            let joined: Vec<_> = (0..fixture.n())
                .filter_map(|i| fixture.joining(i))
                .filter_map(|node| welkin_types::note::cosigner_verifier(&cluster_id, &node))
                .collect();
            let cosigners = welkin_types::note::cosigner_verifiers(&fixture.genesis)
                .iter()
                .chain(&joined)
                .filter(|v| matches!(v.verify_note(&note), Ok(Some(_))))
                .count();
            assert!(
                cosigners >= fixture.genesis.threshold as usize,
                "note at height {latest} has {cosigners} node cosignatures"
            );
            assert_eq!(
                note.signatures.len(),
                cosigners + 1,
                "every signature line but the cluster's is a valid cosignature"
            );
            let size = certified.checkpoint.log_size;
            if size > 0 {
                let first = node.log_height(size).await.expect("size indexed");
                let at = node.checkpoint(first).await.expect("certified");
                assert_eq!(at.checkpoint.log_size, size, "checkpoint by size");
                assert!(first <= latest);
            }
            for receipt in acked.values().filter(|r| r.log_index < size) {
                let proof = node
                    .inclusion_proof(receipt.log_index, size)
                    .await
                    .expect("proof");
                let entry = node
                    .log_entries(receipt.log_index, receipt.log_index + 1)
                    .await
                    .expect("entry")
                    .pop()
                    .expect("one entry");
                certified
                    .checkpoint
                    .verify_inclusion(&entry, receipt.log_index, &proof)
                    .expect("inclusion proof verifies against the certified log root");
            }
        }
    }
    for (id, receipt) in acked {
        for node in &live {
            assert_eq!(
                node.receipt(*id).await.as_ref(),
                Some(receipt),
                "acknowledged transaction {id} missing or different"
            );
        }
    }
    let latest: Vec<_> = live.iter().map(|n| n.status()).collect();
    let max_certified = latest.iter().map(|s| s.certified_height).max().unwrap_or(0);
    assert!(
        top == 0 || max_certified > 0,
        "no checkpoint was ever certified"
    );
    history.extend_from_slice(&top.encode());
    welkin_types::hash_parts(&[&history])
}
