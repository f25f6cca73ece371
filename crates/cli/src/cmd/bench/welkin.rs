//! The Welkin side of a benchmark: a fresh local cluster, transactions signed before the clock
//! starts, and the submitting load worker.

use super::{dev::LocalCluster, load::Sent, ports::free_base};
use crate::cli::Workload;
use anyhow::bail;
use commonware_codec::Encode as _;
use commonware_cryptography::Signer as _;
use std::{
    path::PathBuf,
    sync::Arc,
    time::{Duration, Instant},
};
use welkin_client::Client;
use welkin_types::{Payload, PrivateKey, Sender, Transaction, api::TxState};

/// Bytes in each memo: the same value size as the etcd side's puts.
pub(super) const MEMO_BYTES: usize = 100;
/// Distinct signing keys the transactions of one run are spread over.
const SIGNERS: usize = 64;
/// Longest wait for one request's commit.
const SUBMIT_TIMEOUT: Duration = Duration::from_secs(30);
/// Most key-event prefixes kept for the lookup measurement.
const MAX_PREFIXES: usize = 10_000;

/// A fresh local cluster in a temporary directory, on free ports; stopped and removed when
/// dropped.
pub(super) struct FreshCluster {
    dir: PathBuf,
    processes: Option<super::dev::Processes>,
    /// Each node's API URL.
    pub(super) apis: Vec<String>,
    /// The first API port: node `i` (by port) serves Roughtime on UDP `base + 200 + i`.
    pub(super) base: u16,
}

impl FreshCluster {
    /// Creates and starts a 4-node cluster, and waits until every node answers.
    pub(super) fn start() -> anyhow::Result<Self> {
        Self::start_with("")
    }

    /// [`Self::start`], with `settings` (top-level `node.toml` lines) added to every node's
    /// config before it starts.
    pub(super) fn start_with(settings: &str) -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("welkin-bench-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)?;
        }
        let base = free_base(&[
            0, 1, 2, 3, 100, 101, 102, 103, 200, 201, 202, 203, 300, 301, 302, 303,
        ])?;
        let mut fresh = Self {
            dir: dir.clone(),
            processes: None,
            apis: Vec::new(),
            base,
        };
        let cluster = LocalCluster::create_or_load(&dir, 4, base)?;
        if !settings.is_empty() {
            for node in 0..4 {
                let path = dir.join(format!("node{node}")).join("node.toml");
                let config = std::fs::read_to_string(&path)?;
                std::fs::write(&path, with_top_level(&config, settings))?;
            }
        }
        eprintln!("starting a fresh 4-node cluster in {}", dir.display());
        fresh.processes = Some(cluster.spawn(false)?);
        fresh.apis = cluster.apis();
        Ok(fresh)
    }
}

impl FreshCluster {
    /// The node processes' ids.
    pub(super) fn pids(&self) -> Vec<u32> {
        self.processes
            .as_ref()
            .map(|p| p.pids().into_iter().map(|(_, pid)| pid).collect())
            .unwrap_or_default()
    }

    /// The cluster's genesis file.
    pub(super) fn genesis_path(&self) -> PathBuf {
        self.dir.join("genesis.json")
    }

    /// The cluster's secrets root token, which the dev ceremony wrote to `root-token`.
    pub(super) fn root_token(&self) -> anyhow::Result<String> {
        let path = self.dir.join("root-token");
        let text = std::fs::read_to_string(&path)
            .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", path.display()))?;
        Ok(text.trim().to_string())
    }
}

/// `config` (TOML) with `settings` inserted before its first table, where top-level keys
/// must go.
fn with_top_level(config: &str, settings: &str) -> String {
    let at = config
        .lines()
        .scan(0, |offset, line| {
            let start = *offset;
            *offset += line.len() + 1;
            Some((start, line))
        })
        .find(|(_, line)| line.trim_start().starts_with('['))
        .map_or(config.len(), |(start, _)| start);
    let mut settings = settings.to_string();
    if !settings.ends_with('\n') {
        settings.push('\n');
    }
    let (head, tail) = config.split_at(at.min(config.len()));
    let separator = if head.is_empty() || head.ends_with('\n') {
        ""
    } else {
        "\n"
    };
    format!("{head}{separator}{settings}{tail}")
}

impl Drop for FreshCluster {
    fn drop(&mut self) {
        if let Some(mut processes) = self.processes.take() {
            processes.stop();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// Transactions signed for one load, hex-encoded and grouped into requests.
pub(super) struct Signed {
    /// The requests' bodies, in order.
    pub(super) batches: Arc<Vec<Vec<String>>>,
    /// Transactions signed.
    pub(super) count: usize,
    /// Seconds spent signing.
    pub(super) seconds: f64,
    /// Prefixes of the identifiers the key-event transactions incept (at most 10,000).
    pub(super) prefixes: Vec<String>,
}

/// Signs `count` transactions of `workload` for the cluster `cluster_id`, grouped `batch` per
/// request. Identity memos are sent by `identities`; other transactions by fresh keys.
pub(super) fn sign(
    workload: Workload,
    count: usize,
    batch: usize,
    cluster_id: &welkin_types::Digest,
    identities: &[(Sender, PrivateKey)],
) -> Signed {
    if count > 1 {
        eprintln!("signing {count} transactions...");
    }
    let signers: Vec<PrivateKey> = (0..SIGNERS)
        .map(|_| welkin_node::ceremony::NodeKey::generate(&mut commonware_utils::sys_rng()).signer)
        .collect();
    let expiry = super::super::now_ms() + 540_000;
    let start = Instant::now();
    let run_seed = welkin_node::ceremony::random_seed();
    let mut prefixes = Vec::new();
    let encoded: Vec<String> = (0..count)
        .map(|i| {
            let (sender, key) = match identities.get(i % SIGNERS) {
                Some((sender, key)) => (sender.clone(), key),
                None => {
                    let key = &signers[i % signers.len()];
                    (Sender::Key(key.public_key()), key)
                }
            };
            let payload = match workload {
                Workload::Memo | Workload::IdentityMemo => Payload::Memo(memo(i as u64)),
                Workload::KeyEvents => {
                    let mut seed = *run_seed;
                    seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
                    let (payload, prefix) = inception(&seed);
                    if prefixes.len() < MAX_PREFIXES {
                        prefixes.push(prefix);
                    }
                    payload
                }
                Workload::ObjectCodec | Workload::Dkg => {
                    unreachable!("object-codec and dkg sign no transactions")
                }
            };
            let tx = Transaction {
                sender,
                nonce: i as u64,
                expiry_ms: expiry,
                payload,
            }
            .sign(key, cluster_id);
            hex::encode(tx.encode())
        })
        .collect();
    let seconds = start.elapsed().as_secs_f64();
    Signed {
        batches: Arc::new(encoded.chunks(batch).map(<[String]>::to_vec).collect()),
        count,
        seconds,
        prefixes,
    }
}

/// A memo of [`MEMO_BYTES`]: the transaction's index, then filler.
fn memo(index: u64) -> Vec<u8> {
    let mut memo = vec![b'w'; MEMO_BYTES];
    memo[..8].copy_from_slice(&index.to_be_bytes());
    memo
}

/// A load worker that submits the signed requests to the node at `api` with `wait=true`. A
/// transaction counts when it comes back committed and applied (a key event the identity
/// module refused does not count).
pub(super) fn submit_worker(
    api: &str,
    batches: Arc<Vec<Vec<String>>>,
) -> impl FnMut(usize) -> Option<Sent> + Send + use<> {
    let client = Client::new(api);
    move |index| {
        let batch = batches.get(index)?;
        let committed = client
            .submit_encoded(batch.clone(), Some(SUBMIT_TIMEOUT))
            .map_or(0, |result| {
                result
                    .results
                    .iter()
                    .filter(|r| {
                        r.status.as_ref().is_some_and(|s| {
                            s.state == TxState::Committed
                                && s.receipt.is_some_and(|r| r.outcome.is_applied())
                        })
                    })
                    .count()
            });
        Some(Sent {
            items: batch.len(),
            counted: committed,
        })
    }
}

/// Submits one memo and waits for its commit: a fresh cluster answers `/v1/health` before it
/// commits, and a load started then would time its first blocks.
pub(super) fn first_commit(api: &str, cluster_id: &welkin_types::Digest) -> anyhow::Result<()> {
    let signed = sign(Workload::Memo, 1, 1, cluster_id, &[]);
    let mut submit = submit_worker(api, signed.batches);
    match submit(0) {
        Some(sent) if sent.counted == 1 => Ok(()),
        _ => bail!(
            "{api} did not commit a transaction within {} s",
            SUBMIT_TIMEOUT.as_secs()
        ),
    }
}

/// The inception of a new single-key identifier, as a key event payload; and its prefix.
fn inception(seed: &[u8; 32]) -> (Payload, String) {
    use welkin_keri::{InceptionBuilder, Signer, Threshold, sign, signed};
    let current = Signer::new(seed);
    let mut next_seed = *seed;
    next_seed[0] ^= 0xff;
    let event = InceptionBuilder::new(vec![current.verkey()])
        .next(
            vec![Signer::new(&next_seed).verkey().next_digest()],
            Threshold::Simple(1),
        )
        .build();
    let prefix = event.prefix().qb64();
    let signatures = sign(&event, &[current]);
    let bytes = signed(event, signatures)
        .to_bytes()
        .expect("a built event encodes");
    (Payload::KeyEvent(bytes), prefix)
}

/// Incepts `count` single-key identifiers and waits for them: the senders of the
/// identity-memo workload, with their signing keys.
pub(super) fn incept_senders(
    client: &Client,
    cluster_id: &welkin_types::Digest,
    count: usize,
) -> anyhow::Result<Vec<(Sender, PrivateKey)>> {
    eprintln!("incepting {count} identifiers to send from...");
    let submitter =
        welkin_node::ceremony::NodeKey::generate(&mut commonware_utils::sys_rng()).signer;
    let run_seed = welkin_node::ceremony::random_seed();
    let mut senders = Vec::with_capacity(count);
    let mut batch = Vec::with_capacity(count);
    for i in 0..count {
        let mut seed = *run_seed;
        seed[..8].copy_from_slice(&(i as u64).to_be_bytes());
        let (payload, prefix) = inception(&seed);
        let key = welkin_types::decode::<PrivateKey>(&seed)
            .map_err(|e| anyhow::anyhow!("a 32-byte seed is an ed25519 key: {e}"))?;
        let tx = Transaction {
            sender: Sender::Key(submitter.public_key()),
            nonce: i as u64,
            expiry_ms: super::super::now_ms() + 120_000,
            payload,
        }
        .sign(&submitter, cluster_id);
        batch.push(hex::encode(tx.encode()));
        let signers = vec![welkin_types::IndexedKey {
            index: 0,
            key: key.public_key(),
        }];
        senders.push((Sender::Identifier { prefix, signers }, key));
    }
    let result = client.submit_encoded(batch, Some(Duration::from_secs(60)))?;
    let applied = result
        .results
        .iter()
        .filter(|r| {
            r.status
                .as_ref()
                .is_some_and(|s| s.receipt.is_some_and(|r| r.outcome.is_applied()))
        })
        .count();
    if applied != count {
        bail!("only {applied} of {count} sender identifiers were incepted");
    }
    Ok(senders)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settings_go_before_the_first_table_so_they_stay_top_level() {
        let config = "data_dir = \"data\"\n\n[api]\nthreads = 2\n";
        let changed = with_top_level(config, "idle_wait_ms = 0");
        assert_eq!(
            changed,
            "data_dir = \"data\"\n\nidle_wait_ms = 0\n[api]\nthreads = 2\n"
        );
        // No table: appended, on a line of its own.
        assert_eq!(with_top_level("a = 1", "b = 2"), "a = 1\nb = 2\n");
        assert_eq!(with_top_level("", "b = 2\n"), "b = 2\n");
    }

    #[test]
    fn memos_carry_the_same_value_size_as_the_etcd_puts_and_differ() {
        assert_eq!(memo(1).len(), MEMO_BYTES);
        assert_ne!(memo(1), memo(2));
    }
}
