//! Flags of `welkin obj`: encrypted, erasure-coded objects stored across the nodes.

use super::ApiArgs;
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum ObjCommand {
    /// Store a file: encrypt it here, erasure-code it, and send one shard to each node.
    ///
    /// The file is encrypted with a fresh key in segments (ChaCha20-Poly1305, each segment
    /// bound to its position and to whether it is the last), each segment is split into k
    /// data and m parity blocks (Reed-Solomon), and every block is hashed (BLAKE3) into one
    /// Merkle tree per shard. The cluster commits the manifest (sizes, layout, shard roots,
    /// the key sealed to you and any --to recipients) and places each shard on a node of a
    /// different failure domain; each node checks every block it receives against the
    /// committed root and acknowledges it in the log. No node ever sees the plaintext or the
    /// key, and any k of the k+m shards rebuild the file. Prints the object id.
    ///
    /// The file is read twice (once to learn the roots, once to send) and encoded on every
    /// core, with a few segments per core in memory whatever its size. `--json` adds where the
    /// time went (`phase_seconds`).
    Put(ObjPutArgs),
    /// Read an object back: fetch the manifest, check it against the id, open the key, and
    /// decode from any k shards, checking every block before it is used.
    ///
    /// With --range A-B only the segments holding bytes A..B (B excluded) are fetched. A node
    /// that is down or serves a bad block is replaced by another shard's node.
    Get(ObjGetArgs),
    /// Show an object's manifest, status and where its shards are.
    Inspect(ObjInspectArgs),
    /// List the objects of a key (yours with --key, anyone's with --owner).
    List(ObjListArgs),
    /// List objects with a shard lost (to a failed audit, or never uploaded) and which shards
    /// are healthy. The cluster repairs them on its own, those closest to loss first; this
    /// shows what it is working through.
    Degraded(ApiArgs),
    /// Show an object's audit history: the settled audits of its shards and its repairs,
    /// newest first.
    ///
    /// Every audit epoch the cluster challenges one shard of every node, and f+1 nodes' verdicts
    /// pass or fail it; a failed shard is repaired onto another node. This lists, for one
    /// object, each settled audit (epoch, shard, holder, passed or failed and why) and each
    /// repair (ordered to which node, done or expired), with the height it was settled at.
    /// The cluster keeps the newest 64 events per object; the log has every one. Deleting an
    /// object deletes its history.
    AuditLog(ObjAuditLogArgs),
    /// Simulate node failures against the real storage state machine, locally: no cluster,
    /// no network.
    ///
    /// Simulated nodes store objects, fail (their disks lost) and recover at random, flap or
    /// die for good, and every epoch they audit each other and carry out the repairs the
    /// state orders, all through the same state machine code a cluster runs (placement,
    /// audit seeds from a real threshold key, verdicts, reputation, repair orders and their
    /// expiry). Prints how many objects survived, the fewest healthy shards any object fell
    /// to, audits, repairs and each node's reputation. Every random choice comes from --seed,
    /// so the same flags give the same report. See docs/storage.md.
    Simulate(ObjSimulateArgs),
    /// Delete an object: the cluster destroys its sealed key and every node removes its
    /// shards, so nothing can rebuild it afterwards (crypto-shredding).
    Delete(ObjDeleteArgs),
}

/// The owner's key file.
#[derive(Debug, Args)]
pub(crate) struct OwnerKeyArgs {
    /// The owner's ed25519 key file (from `welkin key new`): signs the manifest and shard
    /// requests, and opens the object's key.
    #[arg(long, env = "WELKIN_KEY", value_name = "FILE")]
    pub(crate) key: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct ObjPutArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) owner: OwnerKeyArgs,
    /// The file to store.
    pub(crate) file: PathBuf,
    /// Data shards: any k shards rebuild the file (default: 2 on 4 nodes; see docs/storage.md).
    #[arg(long)]
    pub(crate) k: Option<u16>,
    /// Parity shards: the object survives the loss of m shards (default: 2 on 4 nodes).
    #[arg(long)]
    pub(crate) m: Option<u16>,
    /// Plaintext bytes per segment: a multiple of 64 KiB from 64 KiB to 4 MiB (default 1 MiB).
    #[arg(long, value_name = "BYTES")]
    pub(crate) segment_size: Option<u32>,
    /// A name for listings (public: it is in the log). Default: the file name.
    #[arg(long)]
    pub(crate) label: Option<String>,
    /// Also seal the object's key to this X25519 public key (64 hex characters); repeat for
    /// several recipients.
    #[arg(long = "to", value_name = "KEY")]
    pub(crate) recipients: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ObjGetArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) owner: OwnerKeyArgs,
    /// The object id (64 hex characters).
    pub(crate) id: String,
    /// Write here (use - for standard output).
    #[arg(short, long, value_name = "FILE")]
    pub(crate) out: PathBuf,
    /// Only bytes A to B (B excluded), e.g. 1000-2000.
    #[arg(long, value_name = "A-B")]
    pub(crate) range: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ObjInspectArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// The object id (64 hex characters).
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct ObjAuditLogArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// The object id (64 hex characters).
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct ObjListArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// List the objects of the key in this file.
    #[arg(
        long,
        env = "WELKIN_KEY",
        value_name = "FILE",
        conflicts_with = "owner"
    )]
    pub(crate) key: Option<PathBuf>,
    /// List the objects of this public key (64 hex characters).
    #[arg(long)]
    pub(crate) owner: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct ObjDeleteArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) owner: OwnerKeyArgs,
    /// The object id (64 hex characters).
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct ObjSimulateArgs {
    /// Simulate this many nodes (2 to 128).
    #[arg(long, default_value_t = 4)]
    pub(crate) nodes: u32,
    /// Spread the nodes over this many failure domains, node i in domain i mod N (default:
    /// one per node).
    #[arg(long)]
    pub(crate) domains: Option<u32>,
    /// Offer this much space on every node (bytes, or with a KiB, MiB or GiB suffix).
    #[arg(long, value_name = "SIZE", default_value = "1024GiB", value_parser = super::parse_size)]
    pub(crate) capacity: u64,
    /// Store this many objects at the start (at most 10000).
    #[arg(long, default_value_t = 100)]
    pub(crate) objects: u32,
    /// Make objects up to this size, each between half of it and all of it.
    #[arg(long, value_name = "SIZE", default_value = "64MiB", value_parser = super::parse_size)]
    pub(crate) object_size: u64,
    /// Use this many data shards (default: the layout for --nodes, 2 on 4 nodes).
    #[arg(long)]
    pub(crate) k: Option<u16>,
    /// Use this many parity shards (default: the layout for --nodes, 2 on 4 nodes).
    #[arg(long)]
    pub(crate) m: Option<u16>,
    /// Run this many audit epochs (at most 10000).
    #[arg(long, default_value_t = 100)]
    pub(crate) epochs: u64,
    /// Fail each node that is up with this probability every epoch, its disk lost.
    #[arg(long, value_name = "P", default_value_t = 0.01)]
    pub(crate) fail_rate: f64,
    /// Bring each failed node back with this probability every epoch, with an empty disk.
    #[arg(long, value_name = "P", default_value_t = 0.5)]
    pub(crate) recover_rate: f64,
    /// Take this node down on odd epochs and up on even ones, its disk kept (repeat for
    /// several; nodes are numbered from 0).
    #[arg(long, value_name = "NODE")]
    pub(crate) flap: Vec<u32>,
    /// Fail this node in the first epoch for good, its disk lost (repeat for several).
    #[arg(long, value_name = "NODE")]
    pub(crate) kill: Vec<u32>,
    /// Draw every random choice from this seed: the same flags and seed give the same run.
    #[arg(long, default_value_t = 1)]
    pub(crate) seed: u64,
    /// Print the report as JSON.
    #[arg(long)]
    pub(crate) json: bool,
}
