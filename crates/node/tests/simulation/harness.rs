//! A whole Welkin cluster on the deterministic runtime with a simulated network.

use commonware_codec::Encode as _;
use commonware_consensus::simplex::{mocks::conflicter, scheme::bls12381_threshold::vrf};
use commonware_cryptography::{
    Digestible as _, Sha256, Signer as _,
    bls12381::{
        dkg::feldman_desmedt,
        primitives::{group::Share, sharing::Mode},
    },
};
use commonware_macros::select;
use commonware_p2p::simulated::{self, Link, Network, Oracle};
use commonware_runtime::{Clock as _, Supervisor as _, deterministic};
use commonware_utils::{N3f1, NZUsize, Probability, TestRng, ordered::Set};
use std::{collections::BTreeMap, time::Duration};
use welkin_node::{
    EngineConfig, NodeHandle, Timeouts,
    application::now_ms,
    engine::{Channels, MAX_MESSAGE_BYTES, channel},
    mempool::MempoolConfig,
};
use welkin_types::{
    ChainParams, Digest, Genesis, Payload, PrivateKey, PublicKey, Receipt, Sender, Transaction,
    TxId, Variant,
    genesis::{GENESIS_VERSION, NodeRegistration},
    namespace,
};

/// The runtime context of every simulated node.
pub(crate) type Ctx = deterministic::Context;
/// A handle to a simulated node.
pub(crate) type Node = NodeHandle<Ctx>;

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
}

impl Fixture {
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
            .map(|(i, k)| {
                NodeRegistration {
                    name: format!("node{i}"),
                    public_key: k.public_key(),
                    encryption_key: vec![0; 32],
                    p2p_address: format!("127.0.0.1:{}", 10_000 + i)
                        .parse()
                        .expect("address"),
                    api_address: format!("127.0.0.1:{}", 20_000 + i)
                        .parse()
                        .expect("address"),
                    failure_domain: format!("zone-{}", i % 3),
                }
                .sign(k)
            })
            .collect();
        let genesis = Genesis {
            version: GENESIS_VERSION,
            chain: ChainParams {
                name: "sim".into(),
                ..ChainParams::default()
            },
            nodes,
            threshold: output.public().required(),
            polynomial: output.public().clone(),
            genesis_time_ms: 0,
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
        }
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

/// A link with the given latency (ms) and delivery probability (percent).
pub(crate) fn link(latency_ms: u64, success_percent: u64) -> Link {
    Link {
        latency: Duration::from_millis(latency_ms),
        jitter: Duration::from_millis(latency_ms / 5),
        success_rate: Probability::new(success_percent, 100).expect("valid probability"),
    }
}

/// The simulated network of a cluster.
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

    /// Connects all nodes with `link`.
    pub(crate) async fn connect_all(&self, link: &Link) {
        let all: Vec<_> = (0..self.keys.len()).collect();
        self.connect(&all, &all, link).await;
    }
}

/// Starts honest node `index`.
pub(crate) async fn start_node(context: &Ctx, net: &Net, fixture: &Fixture, index: usize) -> Node {
    let key = fixture.keys[index].clone();
    let control = net.oracle.control(key.public_key());
    let mut pairs = Vec::new();
    for ch in channel::ALL {
        pairs.push(
            control
                .register(ch, channel::quota(ch))
                .await
                .expect("register channel"),
        );
    }
    let config = EngineConfig {
        signer: key,
        share: fixture.shares[index].clone(),
        genesis: fixture.genesis.clone(),
        partition_prefix: format!("node{index}"),
        mempool: MempoolConfig::default(),
        waiters: Default::default(),
        max_block_txs: 512,
        timeouts: Timeouts::default(),
        min_block_interval: Duration::ZERO,
    };
    config.validate().expect("valid config");
    welkin_node::start(
        context.child("node").with_attribute("index", index),
        config,
        Channels { pairs },
        net.oracle.manager(),
        control,
    )
    .await
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
    let scheme = vrf::Scheme::<PublicKey, Variant>::signer(
        namespace::CONSENSUS,
        participants,
        fixture.genesis.polynomial.clone(),
        fixture.shares[index].clone(),
    )
    .expect("share matches");
    let engine = conflicter::Conflicter::<_, _, Sha256>::new(
        context.child("conflicter"),
        conflicter::Config { scheme },
    );
    engine.start(vote);
}

/// Starts every node; `byzantine` nodes run the conflicter instead.
pub(crate) async fn start_cluster(
    context: &Ctx,
    net: &Net,
    fixture: &Fixture,
    byzantine: &[usize],
) -> Vec<Option<Node>> {
    let mut nodes = Vec::new();
    for index in 0..fixture.n() {
        if byzantine.contains(&index) {
            start_conflicter(context, net, fixture, index).await;
            nodes.push(None);
        } else {
            nodes.push(Some(start_node(context, net, fixture, index).await));
        }
    }
    nodes
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

/// Checks the safety invariants across live nodes and returns a digest of the agreed history:
/// - no two different finalized blocks at one height;
/// - equal state roots at every height all nodes have certified, and a certificate that
///   verifies under the cluster key;
/// - every acknowledged transaction has the same receipt on every node.
pub(crate) async fn check_invariants(
    fixture: &Fixture,
    nodes: &[Option<Node>],
    acked: &BTreeMap<TxId, Receipt>,
) -> Digest {
    let live: Vec<&Node> = nodes.iter().flatten().collect();
    let top = common_height(nodes);
    let cluster_id = fixture.genesis.cluster_id();
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
                    certified.verify(&cluster_id, fixture.genesis.cluster_key()),
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
                welkin_types::note::from_note(&note, &cluster_id, fixture.genesis.cluster_key()),
                Ok(certified.clone()),
                "note carries the certified checkpoint"
            );
            let cosigners = welkin_types::note::cosigner_verifiers(&fixture.genesis)
                .iter()
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
