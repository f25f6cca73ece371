//! Measures the shard store on this machine's disk: durable writes (checked blocks, `fsync`,
//! rename, directory `fsync`), verified reads, and rebuilding the index on open.
//!
//! ```sh
//! cargo run --release -p welkin-shards --example throughput -- \
//!     --shards 8 --blocks 32 --block-kib 1024 --out shards-throughput.json
//! ```
//!
//! Options: `--shards N` (default 8), `--blocks N` per shard (default 32), `--block-kib K`
//! (default 1024), `--dir DIR` (a fresh directory is made inside it,
//! default the system's temporary directory, and removed afterwards), `--out FILE` (JSON,
//! default `shards-throughput.json`). Reads come from the page cache (the shards were just
//! written), so they measure the store's own cost (open, positioned read, re-hash), not
//! the disk's.

use std::{
    path::PathBuf,
    time::{Duration, Instant},
};

use welkin_shards::{ShardId, ShardStore, StoreLimits};

/// The store's block hash and shard root (`welkin-object` will export both; until then the
/// store keeps them private), so the hash list given to `create` is the right one.
fn block_hash(block: &[u8]) -> [u8; 32] {
    let key = blake3::derive_key("welkin/object-block/v1", b"");
    *blake3::keyed_hash(&key, block).as_bytes()
}

fn shard_root(hashes: &[[u8; 32]]) -> [u8; 32] {
    if hashes.len() == 1 {
        return hashes[0];
    }
    let split = 1 << (usize::BITS - 1 - (hashes.len() - 1).leading_zeros());
    let (left, right) = (shard_root(&hashes[..split]), shard_root(&hashes[split..]));
    let key = blake3::derive_key("welkin/object-shard-node/v1", b"");
    let mut both = [0u8; 64];
    both[..32].copy_from_slice(&left);
    both[32..].copy_from_slice(&right);
    *blake3::keyed_hash(&key, &both).as_bytes()
}

struct Args {
    shards: u32,
    blocks: u32,
    block_len: u32,
    dir: PathBuf,
    out: PathBuf,
}

fn parse() -> Result<Args, String> {
    let mut args = Args {
        shards: 8,
        blocks: 32,
        block_len: 1 << 20,
        dir: std::env::temp_dir(),
        out: PathBuf::from("shards-throughput.json"),
    };
    let mut given = std::env::args().skip(1);
    while let Some(flag) = given.next() {
        let value = given
            .next()
            .ok_or_else(|| format!("{flag} needs a value"))?;
        let number = || {
            value
                .parse::<u32>()
                .map_err(|e| format!("{flag} {value:?}: {e}"))
        };
        match flag.as_str() {
            "--shards" => args.shards = number()?,
            "--blocks" => args.blocks = number()?,
            "--block-kib" => args.block_len = number()? * 1024,
            "--dir" => args.dir = PathBuf::from(&value),
            "--out" => args.out = PathBuf::from(&value),
            other => return Err(format!("unknown option {other:?}")),
        }
    }
    Ok(args)
}

fn mb_per_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64()
}

fn main() -> Result<(), String> {
    let args = parse()?;
    let dir = tempfile::tempdir_in(&args.dir).map_err(|e| format!("temporary directory: {e}"))?;
    let shard_bytes = u64::from(args.blocks) * u64::from(args.block_len);
    let limits = StoreLimits::with_capacity(u64::from(args.shards) * (shard_bytes + (1 << 20)));
    let store = ShardStore::open(dir.path(), limits).map_err(|e| e.to_string())?;

    let mut written = Duration::ZERO;
    for shard in 0..args.shards {
        let blocks: Vec<Vec<u8>> = (0..args.blocks)
            .map(|segment| {
                let seed = blake3::hash(&[shard.to_le_bytes(), segment.to_le_bytes()].concat());
                let mut block = vec![0u8; args.block_len as usize];
                blake3::Hasher::new()
                    .update(seed.as_bytes())
                    .finalize_xof()
                    .fill(&mut block);
                block
            })
            .collect();
        let hashes: Vec<[u8; 32]> = blocks.iter().map(|block| block_hash(block)).collect();
        let root = shard_root(&hashes);
        let id = ShardId {
            object: *blake3::hash(&shard.to_le_bytes()).as_bytes(),
            index: 0,
        };
        let start = Instant::now();
        let mut writer = store
            .create(id, root, args.block_len, args.block_len, hashes)
            .map_err(|e| e.to_string())?;
        for block in &blocks {
            writer.write_block(block).map_err(|e| e.to_string())?;
        }
        writer.finish().map_err(|e| e.to_string())?;
        written += start.elapsed();
    }

    let start = Instant::now();
    let mut read_bytes = 0u64;
    for id in store.list() {
        for segment in 0..args.blocks {
            read_bytes += store
                .read_block(&id, segment)
                .map_err(|e| e.to_string())?
                .len() as u64;
        }
    }
    let read = start.elapsed();

    drop(store);
    let start = Instant::now();
    let reopened = ShardStore::open(dir.path(), limits).map_err(|e| e.to_string())?;
    let open = start.elapsed();
    assert_eq!(
        reopened.opened().shards,
        u64::from(args.shards),
        "every shard reindexed"
    );

    let total = u64::from(args.shards) * shard_bytes;
    let write_mb_s = mb_per_s(total, written);
    let read_mb_s = mb_per_s(read_bytes, read);
    let per_shard_ms = written.as_secs_f64() * 1e3 / f64::from(args.shards);
    println!(
        "{} shards x {} blocks x {} KiB ({:.0} MB) in {}",
        args.shards,
        args.blocks,
        args.block_len / 1024,
        total as f64 / 1e6,
        dir.path().display()
    );
    println!("durable write: {write_mb_s:.0} MB/s ({per_shard_ms:.1} ms per shard)");
    println!("verified read (page cache): {read_mb_s:.0} MB/s");
    println!(
        "open (index {} shards): {:.2} ms",
        args.shards,
        open.as_secs_f64() * 1e3
    );
    let json = format!(
        "{{\"shards\":{},\"blocks_per_shard\":{},\"block_bytes\":{},\"total_bytes\":{total},\
         \"durable_write_mb_s\":{write_mb_s:.1},\"ms_per_shard_write\":{per_shard_ms:.2},\
         \"verified_read_mb_s\":{read_mb_s:.1},\"open_ms\":{:.3},\"cores\":{}}}\n",
        args.shards,
        args.blocks,
        args.block_len,
        open.as_secs_f64() * 1e3,
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    std::fs::write(&args.out, json).map_err(|e| format!("{}: {e}", args.out.display()))?;
    println!("wrote {}", args.out.display());
    Ok(())
}
