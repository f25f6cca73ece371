//! `welkin bench --compare tahoe`: put and get of one large object on a fresh 4-node Welkin
//! cluster and on a Tahoe-LAFS grid on 127.0.0.1 (an introducer, four storage nodes and a
//! client node), side by side in one run, with the same 2-of-4 erasure code and 1 MiB segments.
//!
//! One file of pseudo-random bytes is written first and hashed (BLAKE3). Tahoe-LAFS runs
//! first: the file goes to its client node's web API with `PUT /uri` (timed until the node
//! answers with the capability, every share placed) and comes back with `GET /uri/CAP`. The
//! grid is then stopped and removed, and a fresh Welkin cluster stores the same file through
//! the client library (`put_object`, timed until every node has acknowledged its shard in the
//! log) and reads it back (`get_object`). Both gets stream into the same BLAKE3 hasher, and
//! figures are printed only when both sides returned exactly the bytes stored.

use super::{
    compare::utc_now,
    compare_openbao::ratio,
    cores, interrupted,
    tahoe::{self, Encoding, Grid},
    welkin::{self, FreshCluster},
};
use crate::cli::BenchArgs;
use anyhow::{Context as _, bail};
use commonware_cryptography::{Blake3, Hasher as _};
use serde::Serialize;
use std::{
    io::Write,
    path::{Path, PathBuf},
    sync::Mutex,
    time::{Duration, Instant},
};
use welkin_client::{
    Client,
    objects::{PutOptions, owner_secret},
};
use welkin_object::Layout;

/// The object's size unless --object-mib says otherwise: the 1 GiB.
pub(super) const DEFAULT_OBJECT_MIB: u64 = 1024;
/// The largest object: its shards (half of it each) stay well inside the 16 GiB a dev node
/// offers, and the run inside a few minutes of Tahoe.
const MAX_OBJECT_MIB: u64 = 8192;
/// Nodes on each side.
const NODES: u16 = 4;
/// The erasure code both sides store: any 2 of 4 shares rebuild the object.
const TAHOE_ENCODING: Encoding = Encoding {
    needed: 2,
    happy: 4,
    total: 4,
};
/// How long a fresh cluster may take until every node offers space for a shard.
const SPACE_TIMEOUT: Duration = Duration::from_secs(60);
/// Bytes each Tahoe storage node keeps free (its `reserved_space` default), counted in the
/// disk check.
const TAHOE_RESERVED_BYTES: u64 = 1 << 30;
/// The unmeasured warm-up file each side stores first.
const WARM_UP_BYTES: u64 = 1 << 20;
/// Welkin puts tried until one stores every shard: a put right after a fresh cluster starts
/// can find a shard's node not yet aware of the just-committed manifest.
const MAX_PUT_ATTEMPTS: u32 = 3;
/// The goal: put and get at least this many times Tahoe-LAFS's rate.
const RATIO_GOAL: f64 = 10.0;
/// How each side is driven, as printed and written.
const WELKIN_INTERFACE: &str =
    "welkin_client::Client::put_object / get_object (encode and decode in the client process)";
const TAHOE_INTERFACE: &str = "the client node's web API: PUT /uri, GET /uri/$CAP (the \
    `tahoe put`/`get` commands call the same API after a Python start of about a second)";
/// What differs between the sides beyond the code itself.
const NOTES: [&str; 3] = [
    "a Welkin put ends when every node has acknowledged its shard in the log; a Tahoe put \
     when the client node has placed every share",
    "Welkin's nodes fsync each shard before acknowledging it; Tahoe's storage servers do not \
     fsync",
    "Tahoe's client node is a separate process, so its bytes cross the loopback once more; \
     its storage protocol runs over TLS, Welkin's shard transfers are plain HTTP with signed \
     requests (the shards are already encrypted)",
];

/// One side's put and get.
#[derive(Serialize)]
struct Side {
    put_s: f64,
    put_mb_per_s: f64,
    get_s: f64,
    get_mb_per_s: f64,
    /// Puts made until one stored every shard (only that one is timed).
    put_attempts: u32,
}

impl Side {
    fn new(bytes: u64, put: Duration, get: Duration, put_attempts: u32) -> Self {
        let rate = |d: Duration| bytes as f64 / 1e6 / d.as_secs_f64().max(1e-9);
        Self {
            put_s: put.as_secs_f64(),
            put_mb_per_s: rate(put),
            get_s: get.as_secs_f64(),
            get_mb_per_s: rate(get),
            put_attempts,
        }
    }
}

#[derive(Serialize)]
struct Versions {
    welkin: &'static str,
    tahoe_lafs: &'static str,
}

/// The comparison, as written to --out.
#[derive(Serialize)]
struct Comparison {
    date: String,
    cores: usize,
    versions: Versions,
    nodes: u16,
    object_bytes: u64,
    /// The BLAKE3 hash of the object, which both sides returned.
    object_blake3: String,
    /// Welkin's data and parity shards.
    welkin_k: u16,
    welkin_m: u16,
    tahoe_encoding: Encoding,
    welkin_segment_bytes: u32,
    tahoe_segment_bytes: u64,
    welkin_interface: &'static str,
    tahoe_interface: &'static str,
    /// The rate of the hasher every get streams into (its cost is in both sides' get time).
    hash_mb_per_s: f64,
    welkin: Side,
    tahoe: Side,
    /// Welkin's MB/s over Tahoe-LAFS's.
    put_ratio: Option<f64>,
    get_ratio: Option<f64>,
    ratio_goal: f64,
    notes: [&'static str; 3],
}

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    if !args.api.is_empty() {
        bail!("--compare tahoe starts its own cluster; --api does not apply");
    }
    let mib = args.object_mib.unwrap_or(DEFAULT_OBJECT_MIB);
    if !(1..=MAX_OBJECT_MIB).contains(&mib) {
        bail!("--object-mib must be between 1 and {MAX_OBJECT_MIB}, got {mib}");
    }
    let size = mib << 20;
    let layout = Layout::default_for(NODES);
    if (layout.k, layout.k + layout.m) != (TAHOE_ENCODING.needed, TAHOE_ENCODING.total) {
        bail!(
            "Welkin's default layout for {NODES} nodes is {}+{}, which the Tahoe side does not \
             match",
            layout.k,
            layout.m
        );
    }
    let tahoe_bin = tahoe::ensure_installed()?;
    let work = WorkDir::create()?;
    check_disk(&work.0, size)?;
    let object = work.0.join("object.bin");
    eprintln!(
        "writing a {mib} MiB object of pseudo-random bytes to {}",
        object.display()
    );
    let (digest, hash_rate) = write_object(&object, size)?;
    let warm_up = work.0.join("warm-up.bin");
    write_object(&warm_up, WARM_UP_BYTES)?;
    let files = Files {
        object: &object,
        size,
        digest: &digest,
        warm_up: &warm_up,
    };

    let tahoe_side = {
        let grid = Grid::start(&tahoe_bin, &work.0.join("tahoe"), TAHOE_ENCODING)?;
        let result = tahoe_side(&grid, &files);
        drop(grid);
        // Its shares go before Welkin's are written: the disk holds one side at a time.
        let _ = std::fs::remove_dir_all(work.0.join("tahoe"));
        result?
    };
    if interrupted() {
        bail!("interrupted");
    }
    let welkin_side = welkin_side(&files, layout)?;
    let comparison = Comparison {
        date: utc_now(),
        cores: cores(),
        versions: Versions {
            welkin: env!("CARGO_PKG_VERSION"),
            tahoe_lafs: tahoe::VERSION,
        },
        nodes: NODES,
        object_bytes: size,
        object_blake3: digest.clone(),
        welkin_k: layout.k,
        welkin_m: layout.m,
        tahoe_encoding: TAHOE_ENCODING,
        welkin_segment_bytes: layout.segment_bytes,
        tahoe_segment_bytes: tahoe::SEGMENT_BYTES,
        welkin_interface: WELKIN_INTERFACE,
        tahoe_interface: TAHOE_INTERFACE,
        hash_mb_per_s: hash_rate,
        put_ratio: ratio(welkin_side.put_mb_per_s, tahoe_side.put_mb_per_s),
        get_ratio: ratio(welkin_side.get_mb_per_s, tahoe_side.get_mb_per_s),
        welkin: welkin_side,
        tahoe: tahoe_side,
        ratio_goal: RATIO_GOAL,
        notes: NOTES,
    };
    print(&comparison);
    std::fs::write(&args.out, serde_json::to_string_pretty(&comparison)?)
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The files a side stores: the measured object and a small unmeasured warm-up one.
struct Files<'a> {
    object: &'a Path,
    size: u64,
    digest: &'a str,
    warm_up: &'a Path,
}

/// Puts and gets the object on the Tahoe grid, after the warm-up file; fails unless the bytes
/// come back.
fn tahoe_side(grid: &Grid, files: &Files<'_>) -> anyhow::Result<Side> {
    let size = files.size;
    let warm_up = grid.put(files.warm_up, WARM_UP_BYTES, &|_| ())?;
    grid.get(&warm_up, WARM_UP_BYTES, &mut std::io::sink())?;
    let progress = Quarters::new("tahoe", size);
    let started = Instant::now();
    let cap = grid.put(files.object, size, &|sent| progress.update(sent, "sending"))?;
    let put = started.elapsed();
    tahoe::check_cap(&cap, TAHOE_ENCODING, size)?;
    eprintln!("tahoe put: {:.1} s, capability {cap}", put.as_secs_f64());
    let mut sink = HashSink::new(Some(&progress));
    let started = Instant::now();
    grid.get(&cap, size, &mut sink)?;
    let get = started.elapsed();
    eprintln!("tahoe get: {:.1} s", get.as_secs_f64());
    sink.check("Tahoe-LAFS", size, files.digest)?;
    Ok(Side::new(size, put, get, 1))
}

/// Starts a fresh cluster, puts the warm-up file, then puts and gets the object; fails unless
/// the bytes come back.
fn welkin_side(files: &Files<'_>, layout: Layout) -> anyhow::Result<Side> {
    let size = files.size;
    let cluster = FreshCluster::start()?;
    let client = Client::new(&cluster.apis[0]);
    let cluster_id = super::super::signing::node_cluster_id(&client)?;
    welkin::first_commit(&cluster.apis[0], &cluster_id)?;
    let shard_bytes = layout
        .shard_bytes(size)
        .map_err(|e| anyhow::anyhow!("a {size}-byte object: {e}"))?;
    wait_for_space(&client, shard_bytes)?;
    let owner = welkin_node::ceremony::NodeKey::generate(&mut commonware_utils::sys_rng()).signer;
    let put = |path: &Path, size: u64, progress: &(dyn Fn(u64, u64, &str) + Sync)| {
        client.put_object(
            &owner,
            size,
            || std::fs::File::open(path),
            &PutOptions {
                layout,
                label: "bench".to_string(),
                recipients: Vec::new(),
                progress,
            },
        )
    };
    // Unmeasured, and its outcome does not matter: connections and first blocks.
    if let Err(e) = put(files.warm_up, WARM_UP_BYTES, &|_, _, _| ()) {
        eprintln!("welkin warm-up put failed ({e}); going on");
    }
    let progress = Quarters::new("welkin", size);
    let update = |done: u64, _total: u64, phase: &str| progress.update(done, phase);
    let mut attempts = 0;
    let (outcome, put_time) = loop {
        attempts += 1;
        let started = Instant::now();
        let outcome = put(files.object, size, &update)?;
        let elapsed = started.elapsed();
        if outcome.status == "stored" && outcome.failed_shards.is_empty() {
            break (outcome, elapsed);
        }
        if attempts == MAX_PUT_ATTEMPTS {
            bail!(
                "{attempts} Welkin puts in a row ended {} with shards not stored; the last: {:?}",
                outcome.status,
                outcome.failed_shards
            );
        }
        eprintln!(
            "welkin put attempt {attempts} ended {} with shards not stored ({:?}); putting again \
             as a new object, and timing only the attempt that stores every shard",
            outcome.status, outcome.failed_shards
        );
        if interrupted() {
            bail!("interrupted");
        }
    };
    let phases = &outcome.phase_seconds;
    eprintln!(
        "welkin put: {:.1} s (hashing {:.2} s, manifest {:.2} s, uploading {:.2} s, \
         acknowledging {:.2} s), object {}",
        put_time.as_secs_f64(),
        phases.hashing,
        phases.manifest,
        phases.uploading,
        phases.acknowledging,
        outcome.id
    );
    let id = welkin_types::hexser::decode_hex::<welkin_types::Digest>(&outcome.id)
        .map_err(|e| anyhow::anyhow!("the put returned object id {}: {e}", outcome.id))?;
    let mut sink = HashSink::new(None);
    let started = Instant::now();
    let got = client.get_object(&id, &owner, &owner_secret(&owner), None, &mut sink, &update)?;
    let get = started.elapsed();
    eprintln!("welkin get: {:.1} s", get.as_secs_f64());
    if !got.failed_shards.is_empty() {
        bail!("the Welkin get gave up on shards: {:?}", got.failed_shards);
    }
    sink.check("Welkin", size, files.digest)?;
    drop(cluster);
    Ok(Side::new(size, put_time, get, attempts))
}

/// Waits until every node offers at least `shard_bytes` to new objects.
fn wait_for_space(client: &Client, shard_bytes: u64) -> anyhow::Result<()> {
    let deadline = Instant::now() + SPACE_TIMEOUT;
    loop {
        if interrupted() {
            bail!("interrupted");
        }
        let offered = client.storage().map(|status| {
            status
                .nodes
                .iter()
                .filter(|n| n.free_for_puts >= shard_bytes)
                .count()
        });
        if offered.as_ref().is_ok_and(|&n| n == usize::from(NODES)) {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!(
                "the nodes did not all offer {shard_bytes} bytes for a shard within {} s \
                 (nodes offering it: {offered:?})",
                SPACE_TIMEOUT.as_secs()
            );
        }
        std::thread::sleep(Duration::from_millis(250));
    }
}

/// The benchmark's own directory under the system's temporary one; removed when dropped.
struct WorkDir(PathBuf);

impl WorkDir {
    fn create() -> anyhow::Result<Self> {
        let dir = std::env::temp_dir().join(format!("welkin-bench-tahoe-{}", std::process::id()));
        if dir.exists() {
            std::fs::remove_dir_all(&dir)
                .with_context(|| format!("cannot clear {}", dir.display()))?;
        }
        std::fs::create_dir_all(&dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
        Ok(Self(dir))
    }
}

impl Drop for WorkDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Refuses to start when `dir`'s disk cannot hold the larger side: the object, Tahoe's
/// shares, its upload spool and reserved space; or Welkin's shards, of every attempt (Welkin
/// starts after Tahoe's files are removed). Where `df` is missing the check is skipped.
fn check_disk(dir: &Path, size: u64) -> anyhow::Result<()> {
    let Some(free) = std::process::Command::new("df")
        .arg("-Pk")
        .arg(dir)
        .output()
        .ok()
        .and_then(|o| parse_df(&String::from_utf8_lossy(&o.stdout)))
    else {
        return Ok(());
    };
    // Tahoe: the object, 2x in shares, 1x spooled by the client node. Welkin, after Tahoe's
    // files are gone: the object, 2x in shards, and up to 1.5x for each put that left a
    // shard unstored.
    let tahoe = 4 * size + TAHOE_RESERVED_BYTES;
    let welkin = 3 * size + (u64::from(MAX_PUT_ATTEMPTS) - 1) * (3 * size / 2);
    let needed = tahoe.max(welkin);
    if free < needed {
        bail!(
            "{} has {} MiB free; a {} MiB object needs {} MiB (the object, and each side's \
             shards and spool): pass a smaller --object-mib",
            dir.display(),
            free >> 20,
            size >> 20,
            needed >> 20
        );
    }
    Ok(())
}

/// The available bytes in `df -Pk` output (the fourth field of its second line, in KiB).
fn parse_df(text: &str) -> Option<u64> {
    let line = text.lines().nth(1)?;
    let kib: u64 = line.split_whitespace().nth(3)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// Writes `size` pseudo-random bytes (xorshift from a random seed: incompressible, and fast
/// to make) to `path`; returns their BLAKE3 hash in hex and the hasher's MB/s.
fn write_object(path: &Path, size: u64) -> anyhow::Result<(String, f64)> {
    let file =
        std::fs::File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
    let mut out = std::io::BufWriter::new(file);
    let mut state = u64::from_le_bytes(
        welkin_node::ceremony::random_seed()[..8]
            .try_into()
            .expect("8 bytes"),
    ) | 1;
    let mut chunk = vec![0u8; 1 << 20];
    let mut hasher = Blake3::default();
    let mut hashing = Duration::ZERO;
    let mut written = 0u64;
    while written < size {
        if interrupted() {
            bail!("interrupted");
        }
        for word in chunk.chunks_exact_mut(8) {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            word.copy_from_slice(&state.to_le_bytes());
        }
        let n = (size - written).min(chunk.len() as u64) as usize;
        let started = Instant::now();
        hasher.update(&chunk[..n]);
        hashing += started.elapsed();
        out.write_all(&chunk[..n])
            .with_context(|| format!("cannot write {}", path.display()))?;
        written += n as u64;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", path.display()))?;
    let (_, digest) = hasher.finalize();
    let rate = size as f64 / 1e6 / hashing.as_secs_f64().max(1e-9);
    Ok((hex::encode(digest.0), rate))
}

/// A writer that hashes and counts what a get returns, and throws it away.
struct HashSink<'a> {
    hasher: Blake3,
    bytes: u64,
    progress: Option<&'a Quarters>,
}

impl<'a> HashSink<'a> {
    fn new(progress: Option<&'a Quarters>) -> Self {
        Self {
            hasher: Blake3::default(),
            bytes: 0,
            progress,
        }
    }

    /// Fails unless the sink took `size` bytes that hash to `digest`.
    fn check(self, side: &str, size: u64, digest: &str) -> anyhow::Result<()> {
        let read = self.bytes;
        let (_, got) = self.hasher.finalize();
        let got = hex::encode(got.0);
        if read != size || got != digest {
            bail!(
                "{side} returned {read} bytes hashing to {got}, not the {size} bytes stored \
                 ({digest}): no figures are printed"
            );
        }
        Ok(())
    }
}

impl Write for HashSink<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        if let Some(progress) = self.progress {
            progress.update(self.bytes, "receiving");
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Progress of a long transfer: a line at each quarter of every phase.
struct Quarters {
    side: &'static str,
    total: u64,
    /// The current phase and the last quarter printed in it.
    last: Mutex<(String, u64)>,
}

impl Quarters {
    fn new(side: &'static str, total: u64) -> Self {
        Self {
            side,
            total,
            last: Mutex::new((String::new(), 0)),
        }
    }

    fn update(&self, done: u64, phase: &str) {
        let quarter = done.saturating_mul(4) / self.total.max(1);
        let mut last = self
            .last
            .lock()
            .expect("the progress lock is never poisoned");
        if last.0 != phase {
            *last = (phase.to_string(), 0);
        }
        if quarter > last.1 {
            last.1 = quarter;
            eprintln!("{} {phase}: {}%", self.side, quarter.min(4) * 25);
        }
    }
}

fn print(c: &Comparison) {
    println!(
        "\nPut and get of one {} MiB object ({} bytes): Welkin {} ({} nodes) vs Tahoe-LAFS {} \
         ({} storage nodes and a client node), {}+{} erasure code, 1 MiB segments, {} cores",
        c.object_bytes >> 20,
        c.object_bytes,
        c.versions.welkin,
        c.nodes,
        c.versions.tahoe_lafs,
        tahoe::STORAGE_NODES,
        c.welkin_k,
        c.welkin_m,
        c.cores
    );
    println!("Welkin through {}", c.welkin_interface);
    println!("Tahoe-LAFS through {}", c.tahoe_interface);
    println!(
        "{:<14} {:>10} {:>8} {:>10} {:>8}",
        "", "put MB/s", "put s", "get MB/s", "get s"
    );
    for (name, side) in [("Welkin", &c.welkin), ("Tahoe-LAFS", &c.tahoe)] {
        println!(
            "{name:<14} {:>10.1} {:>8.2} {:>10.1} {:>8.2}",
            side.put_mb_per_s, side.put_s, side.get_mb_per_s, side.get_s
        );
    }
    let x = |r: Option<f64>| r.map_or("-".to_string(), |r| format!("{r:.2}x"));
    println!(
        "{:<14} {:>10} {:>8} {:>10}",
        "Welkin/Tahoe",
        x(c.put_ratio),
        "",
        x(c.get_ratio)
    );
    println!(
        "both returned the exact bytes stored (BLAKE3 {}); each get streams into that hasher \
         ({:.0} MB/s here), which is in both get times",
        c.object_blake3, c.hash_mb_per_s
    );
    if c.welkin.put_attempts > 1 {
        println!(
            "note: Welkin made {} puts before one stored every shard (a node refused a shard \
             of a manifest it had not applied yet); only that last put is timed",
            c.welkin.put_attempts
        );
    }
    for note in c.notes {
        println!("note: {note}");
    }
    for (what, ratio) in [("put", c.put_ratio), ("get", c.get_ratio)] {
        println!(
            "goal: {what} at {RATIO_GOAL:.0}x Tahoe-LAFS or more: {}",
            if ratio.is_some_and(|r| r >= RATIO_GOAL) {
                "met"
            } else {
                "not met"
            }
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_default_welkin_layout_for_four_nodes_is_tahoes_two_of_four() {
        let layout = Layout::default_for(NODES);
        assert_eq!((layout.k, layout.m), (2, 2));
        assert_eq!(TAHOE_ENCODING.needed, layout.k);
        assert_eq!(TAHOE_ENCODING.total, layout.k + layout.m);
        assert_eq!(TAHOE_ENCODING.happy, TAHOE_ENCODING.total);
        assert_eq!(u64::from(layout.segment_bytes), tahoe::SEGMENT_BYTES);
    }

    #[test]
    fn free_space_is_read_from_df() {
        let text = "Filesystem     1024-blocks     Used Available Capacity Mounted on\n\
                    /dev/vda         263174212 77448804 185708624      30% /\n";
        assert_eq!(parse_df(text), Some(185_708_624 * 1024));
        assert_eq!(parse_df("Filesystem\n"), None);
        assert_eq!(parse_df(""), None);
    }

    #[test]
    fn the_sink_accepts_only_the_exact_bytes() {
        let dir = std::env::temp_dir().join(format!("welkin-tahoe-sink-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let path = dir.join("object.bin");
        let (digest, _) = write_object(&path, 3 << 20 | 5).expect("written");
        let bytes = std::fs::read(&path).expect("read back");
        assert_eq!(bytes.len(), 3 << 20 | 5);
        let mut sink = HashSink::new(None);
        sink.write_all(&bytes).expect("sink");
        sink.check("test", bytes.len() as u64, &digest)
            .expect("same bytes");
        let mut flipped = bytes.clone();
        flipped[12345] ^= 1;
        let mut sink = HashSink::new(None);
        sink.write_all(&flipped).expect("sink");
        let error = sink
            .check("test", bytes.len() as u64, &digest)
            .expect_err("a flipped bit");
        assert!(error.to_string().contains("no figures"), "{error}");
        let mut sink = HashSink::new(None);
        sink.write_all(&bytes[..100]).expect("sink");
        assert!(sink.check("test", bytes.len() as u64, &digest).is_err());
        std::fs::remove_dir_all(&dir).expect("cleaned up");
    }
}
