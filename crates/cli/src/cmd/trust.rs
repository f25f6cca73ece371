//! Which cluster the CLI trusts: the one a genesis file describes (`--genesis FILE` or
//! `WELKIN_GENESIS`), or else the cluster key a node served the first time this user talked to
//! it, pinned in `known-clusters.json` under the config directory (trust on first use, said
//! out loud). A node whose cluster differs from the trusted one is refused; the cluster id
//! and key are never taken from the node being asked.
//!
//! The config directory is `WELKIN_CONFIG_DIR`, else `$XDG_CONFIG_HOME/welkin`, else
//! `$HOME/.config/welkin`.

use anyhow::{Context as _, bail};
use commonware_codec::Encode as _;
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use welkin_client::{Client, Trusted};
use welkin_types::{ClusterKey, Digest, Genesis};

/// The file of pinned clusters, under the config directory.
const KNOWN_CLUSTERS: &str = "known-clusters.json";
/// Largest pinned-clusters file read.
const MAX_KNOWN_CLUSTERS_BYTES: u64 = 1024 * 1024;

/// The trusted cluster and why it is trusted.
pub(crate) struct Trust {
    /// The cluster id and key.
    pub(crate) trusted: Trusted,
    /// The genesis file, when the trust comes from one (it also knows the genesis block).
    pub(crate) genesis: Option<Genesis>,
    /// Where the trust comes from, for messages: "genesis.json", or "pinned in FILE".
    pub(crate) source: String,
}

impl Trust {
    /// The trusted genesis: the file's, or the node's once its hash (which binds the whole
    /// file, a dealt key included) is the trusted cluster id.
    pub(crate) fn genesis(&self, client: &Client) -> anyhow::Result<Genesis> {
        if let Some(genesis) = &self.genesis {
            return Ok(genesis.clone());
        }
        let genesis = client.genesis()?;
        if genesis.cluster_id() != self.trusted.cluster_id {
            bail!(
                "the genesis {} serves is not the trusted cluster's ({}): its hash is {}",
                client.base(),
                self.source,
                hex::encode(genesis.cluster_id())
            );
        }
        Ok(genesis)
    }
}

/// One pinned cluster.
#[derive(serde::Serialize, serde::Deserialize)]
struct Pin {
    cluster_id: String,
    cluster_key: String,
}

/// The genesis file named by `--genesis` or `WELKIN_GENESIS`.
fn genesis_path(flag: Option<&Path>) -> Option<PathBuf> {
    flag.map(Path::to_path_buf)
        .or_else(|| std::env::var_os("WELKIN_GENESIS").map(PathBuf::from))
}

fn config_dir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("WELKIN_CONFIG_DIR") {
        return Ok(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CONFIG_HOME") {
        return Ok(PathBuf::from(dir).join("welkin"));
    }
    if let Some(home) = std::env::var_os("HOME") {
        return Ok(PathBuf::from(home).join(".config").join("welkin"));
    }
    bail!(
        "no config directory to pin the cluster in (set WELKIN_CONFIG_DIR or HOME), and no genesis file: pass --genesis FILE"
    )
}

/// The cluster id and key the node at `client` serves (its word, checked against the trust).
/// For a dealerless cluster the key is also proven from the node's genesis (which must hash to
/// the served cluster id): the selected dealer logs and a checkpoint under the key.
fn served(client: &Client) -> anyhow::Result<(Digest, ClusterKey)> {
    let status = client.status()?;
    let id = welkin_types::hexser::decode_hex::<Digest>(&status.cluster_id)
        .map_err(|e| anyhow::anyhow!("node sent a bad cluster id: {e}"))?;
    if status.cluster_key.is_empty() {
        bail!(
            "the node at {} is still generating the cluster key (a new cluster makes it within \
             seconds of its first start); retry shortly",
            client.base()
        );
    }
    let key = welkin_types::hexser::decode_hex::<ClusterKey>(&status.cluster_key)
        .map_err(|e| anyhow::anyhow!("node sent a bad cluster key: {e}"))?;
    let genesis = client.genesis()?;
    if genesis.cluster_id() != id {
        bail!(
            "the node at {} serves a genesis whose hash is not the cluster id it claims",
            client.base()
        );
    }
    if genesis.polynomial.is_none() {
        let proven = client.trusted(&genesis).with_context(|| {
            format!("the node at {} cannot prove its cluster key", client.base())
        })?;
        if proven.cluster_key != key {
            bail!(
                "the node at {} serves a cluster key that is not the one its genesis proves",
                client.base()
            );
        }
    }
    Ok((id, key))
}

/// The cluster to trust for the node at `client`: the genesis file's if one is named (the
/// node must serve that cluster), else the pinned one (the node must still serve it), else
/// the node's, pinned now with a notice on stderr.
pub(crate) fn cluster(client: &Client, genesis: Option<&Path>) -> anyhow::Result<Trust> {
    let (served_id, served_key) = served(client)?;
    if let Some(path) = genesis_path(genesis) {
        let genesis = super::log::read_genesis(&path)?;
        let trusted = client.trusted(&genesis).with_context(|| {
            format!(
                "cannot prove the cluster key of {} from the node at {}",
                path.display(),
                client.base()
            )
        })?;
        if trusted.cluster_id != served_id || trusted.cluster_key != served_key {
            bail!(
                "the node at {} serves cluster {}, not the cluster of {} ({}); refusing to talk to it",
                client.base(),
                hex::encode(served_id),
                path.display(),
                hex::encode(trusted.cluster_id)
            );
        }
        return Ok(Trust {
            trusted,
            genesis: Some(genesis),
            source: path.display().to_string(),
        });
    }
    let file = config_dir()?.join(KNOWN_CLUSTERS);
    let mut pins = read_pins(&file)?;
    if let Some(pin) = pins.get(client.base()) {
        let trusted = parse_pin(pin, &file)?;
        if trusted.cluster_id != served_id || trusted.cluster_key != served_key {
            bail!(
                "the node at {} serves cluster key {}, but {} pins cluster key {} for it \
                 (saved on first use); refusing to talk to it. If the cluster was recreated, \
                 delete that entry, or pass --genesis FILE",
                client.base(),
                hex::encode(served_key.encode()),
                file.display(),
                pin.cluster_key
            );
        }
        return Ok(Trust {
            trusted,
            genesis: None,
            source: format!("pinned in {}", file.display()),
        });
    }
    let pin = Pin {
        cluster_id: hex::encode(served_id),
        cluster_key: hex::encode(served_key.encode()),
    };
    eprintln!(
        "welkin: first use of {}: trusting the cluster key it serves, {}, and pinning it in {} \
         (compare it with the genesis file, or pass --genesis FILE to check against the file instead)",
        client.base(),
        pin.cluster_key,
        file.display()
    );
    pins.insert(client.base().to_string(), pin);
    write_pins(&file, &pins)?;
    Ok(Trust {
        trusted: Trusted {
            cluster_id: served_id,
            cluster_key: served_key,
        },
        genesis: None,
        source: format!("pinned on first use in {}", file.display()),
    })
}

fn parse_pin(pin: &Pin, file: &Path) -> anyhow::Result<Trusted> {
    let bad = |e: String| anyhow::anyhow!("{} holds a bad pinned cluster: {e}", file.display());
    Ok(Trusted {
        cluster_id: welkin_types::hexser::decode_hex::<Digest>(&pin.cluster_id).map_err(bad)?,
        cluster_key: welkin_types::hexser::decode_hex::<ClusterKey>(&pin.cluster_key)
            .map_err(bad)?,
    })
}

fn read_pins(file: &Path) -> anyhow::Result<BTreeMap<String, Pin>> {
    let text = match std::fs::metadata(file) {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", file.display())),
        Ok(meta) if meta.len() > MAX_KNOWN_CLUSTERS_BYTES => bail!(
            "{} is {} bytes; at most {MAX_KNOWN_CLUSTERS_BYTES}",
            file.display(),
            meta.len()
        ),
        Ok(_) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read {}", file.display()))?,
    };
    serde_json::from_str(&text)
        .with_context(|| format!("{} is not a pinned-clusters file", file.display()))
}

/// Writes the pins through a temporary file and a rename, so a crash leaves the old file.
fn write_pins(file: &Path, pins: &BTreeMap<String, Pin>) -> anyhow::Result<()> {
    let dir = file
        .parent()
        .expect("the pins file is in the config directory");
    std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let temporary = file.with_extension("json.tmp");
    std::fs::write(&temporary, serde_json::to_string_pretty(pins)?)
        .with_context(|| format!("cannot write {}", temporary.display()))?;
    std::fs::rename(&temporary, file)
        .with_context(|| format!("cannot write {}", file.display()))?;
    Ok(())
}
