//! `welkin bench --workload object-codec`: the client data path of objects on one core,
//! without a cluster.
//!
//! An object of `--object-size` bytes is generated in memory. **Encode** is encryption,
//! erasure coding and hashing of every block, from the in-memory buffer, with the blocks
//! handed to a sink that drops them (the encoder reuses its buffers, as an uploader streaming
//! to the nodes would). **Decode** checks every block given against its hash, rebuilds each
//! segment with the first `m` blocks missing (the data blocks, so the erasure decoder works
//! for every segment) and decrypts. **Audit** decodes a 30-sample proof of shard 0 from its
//! wire bytes, draws the challenge from the seed and verifies every sample against the
//! shard root. Each pass runs on this thread only; rates are given per CPU second of the
//! thread (`/proc/thread-self/schedstat`) and per wall second.

use super::crypto_cost::{clock_name, cpu_ns};
use crate::cli::BenchArgs;
use anyhow::{Context as _, bail};
use commonware_codec::Encode as _;
use serde::Serialize;
use std::time::{Duration, Instant};
use welkin_object::{
    AUDIT_PROOF_VERSION, AuditProof, Layout, ObjectKey, ShardTree, challenges, decode_segment,
    encode_reader, encode_reader_parallel, prove, verify_audit,
};

/// Seconds each measurement runs unless --duration says otherwise (at least one pass).
const DEFAULT_SECONDS: u64 = 3;
/// Samples in the audit proof, as the issue asks of every challenge.
const AUDIT_SAMPLES: u16 = 30;

/// One measured step.
#[derive(Serialize)]
struct Rate {
    /// Times the whole object (or proof) went through.
    passes: u64,
    cpu_s: f64,
    wall_s: f64,
    /// Plaintext megabytes (10^6 bytes) per CPU second and per wall second; for the audit,
    /// proofs per second.
    per_cpu_s: f64,
    per_wall_s: f64,
}

/// A step measured on several threads, by the wall clock only.
#[derive(Serialize)]
struct WallRate {
    threads: usize,
    passes: u64,
    wall_s: f64,
    per_wall_s: f64,
}

#[derive(Serialize)]
struct ObjectCodec {
    workload: &'static str,
    object_bytes: u64,
    k: u16,
    m: u16,
    segment_bytes: u32,
    segments: u64,
    aead: &'static str,
    erasure: &'static str,
    clock: &'static str,
    /// Encrypt, erasure code and hash, MB/s of plaintext.
    encode: Rate,
    /// The same encode on every core (`encode_reader_parallel`, as `welkin obj put` runs it):
    /// MB/s of plaintext per wall second.
    encode_all_cores: WallRate,
    /// Verify, erasure decode with m blocks missing and decrypt, MB/s of plaintext.
    decode: Rate,
    /// Decode and verify one audit proof, proofs/s.
    audit: Rate,
    audit_samples: u16,
    audit_proof_bytes: usize,
    cores: usize,
}

pub(super) fn run(args: &BenchArgs) -> anyhow::Result<()> {
    let layout = Layout {
        k: args.data_shards,
        m: args.parity_shards,
        segment_bytes: u32::try_from(args.segment_size)
            .map_err(|_| anyhow::anyhow!("--segment-size {} is too large", args.segment_size))?,
    };
    let size = args.object_size;
    layout
        .validate_size(size)
        .context("the object layout (--data-shards, --parity-shards, --segment-size)")?;
    let seconds = Duration::from_secs(args.duration.unwrap_or(DEFAULT_SECONDS));
    let data = object(size)?;
    let key = ObjectKey::generate(&mut commonware_utils::sys_rng());
    eprintln!(
        "object codec on one core: {} bytes, k {}, m {}, segments of {} bytes ({} segments), \
         {} s per measurement",
        size,
        layout.k,
        layout.m,
        layout.segment_bytes,
        layout.segments(size),
        seconds.as_secs()
    );

    let encode = measure(seconds, size, || {
        encode_reader(layout, &key, size, &data[..], |_| Ok(()))?;
        Ok(())
    })?;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let parallel = measure(seconds, size, || {
        encode_reader_parallel(layout, &key, size, threads, &data[..], |_| Ok(()))?;
        Ok(())
    })?;
    let encode_all_cores = WallRate {
        threads,
        passes: parallel.passes,
        wall_s: parallel.wall_s,
        per_wall_s: parallel.per_wall_s,
    };
    let mut blocks = Vec::new();
    let shards = encode_reader(layout, &key, size, &data[..], |segment| {
        blocks.push(std::mem::take(&mut segment.blocks));
        Ok(())
    })?;
    let m = usize::from(layout.m);
    let decode_all = |check: bool| -> anyhow::Result<()> {
        for (segment, stored) in blocks.iter().enumerate() {
            let present: Vec<Option<&[u8]>> = stored
                .iter()
                .enumerate()
                .map(|(shard, block)| (shard >= m).then_some(block.as_slice()))
                .collect();
            let expected: Vec<[u8; 32]> = shards
                .iter()
                .map(|shard| shard.block_hashes[segment])
                .collect();
            let index = segment as u64;
            let plaintext = decode_segment(&layout, &key, size, index, &present, &expected)?;
            if check {
                let start = layout.segment_offset(index) as usize;
                if plaintext[..] != data[start..start + plaintext.len()] {
                    bail!("segment {segment} decoded to other bytes than were encoded");
                }
            }
        }
        Ok(())
    };
    decode_all(true)?;
    let decode = measure(seconds, size, || decode_all(false))?;

    let tree = ShardTree::new(shards[0].block_hashes.clone());
    let root = tree.root();
    let mut seed = [0u8; 32];
    rand_core::Rng::fill_bytes(&mut commonware_utils::sys_rng(), &mut seed);
    let samples = challenges(&seed, &layout, size, AUDIT_SAMPLES)?
        .iter()
        .map(|sample| prove(sample, &blocks[sample.segment as usize][0], &tree))
        .collect::<Result<Vec<_>, _>>()?;
    let wire = AuditProof {
        version: AUDIT_PROOF_VERSION,
        samples,
    }
    .encode();
    let audit = measure(seconds, 0, || {
        let proof: AuditProof = welkin_types::decode(&wire)?;
        verify_audit(&root, &layout, size, &seed, AUDIT_SAMPLES, &proof)?;
        Ok(())
    })?;

    let report = ObjectCodec {
        workload: "object-codec",
        object_bytes: size,
        k: layout.k,
        m: layout.m,
        segment_bytes: layout.segment_bytes,
        segments: layout.segments(size),
        aead: "ChaCha20-Poly1305 (aws-lc-rs)",
        erasure: "Reed-Solomon GF(2^16), commonware-cryptography reed_solomon",
        clock: clock_name(),
        encode,
        encode_all_cores,
        decode,
        audit,
        audit_samples: AUDIT_SAMPLES,
        audit_proof_bytes: wire.len(),
        cores: super::cores(),
    };
    println!(
        "encode (encrypt + erasure code + hash):      {:>7.0} MB/s per CPU second, {:>7.0} MB/s \
         wall ({} passes)",
        report.encode.per_cpu_s, report.encode.per_wall_s, report.encode.passes
    );
    println!(
        "encode on {} threads (as `welkin obj put` runs it): {:>7.0} MB/s wall ({} passes)",
        report.encode_all_cores.threads,
        report.encode_all_cores.per_wall_s,
        report.encode_all_cores.passes
    );
    println!(
        "decode (verify + decode + decrypt, {m} of {} blocks missing): {:>7.0} MB/s per CPU \
         second, {:>7.0} MB/s wall ({} passes)",
        layout.shards(),
        report.decode.per_cpu_s,
        report.decode.per_wall_s,
        report.decode.passes
    );
    println!(
        "audit proofs ({AUDIT_SAMPLES} samples, {} bytes) decoded and verified: {:>7.0}/s per \
         CPU second, {:>7.0}/s wall",
        report.audit_proof_bytes, report.audit.per_cpu_s, report.audit.per_wall_s
    );
    std::fs::write(&args.out, serde_json::to_string_pretty(&report)?)?;
    println!("wrote {}", args.out.display());
    Ok(())
}

/// The object: `size` bytes from xorshift64 (incompressible enough, and fast to make).
fn object(size: u64) -> anyhow::Result<Vec<u8>> {
    let len = usize::try_from(size).context("--object-size does not fit in memory")?;
    let mut data = Vec::new();
    data.try_reserve_exact(len)
        .with_context(|| format!("cannot hold a {size}-byte object in memory"))?;
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    data.extend((0..len.div_ceil(8)).flat_map(|_| {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state.to_le_bytes()
    }));
    data.truncate(len);
    Ok(data)
}

/// Runs `pass` until `seconds` have gone by (at least once); `bytes` per pass gives MB/s,
/// zero gives passes per second.
fn measure(
    seconds: Duration,
    bytes: u64,
    mut pass: impl FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Rate> {
    let (cpu_start, wall) = (cpu_ns(), Instant::now());
    let mut passes = 0u64;
    while passes == 0 || wall.elapsed() < seconds {
        if super::interrupted() {
            bail!("interrupted");
        }
        pass()?;
        passes += 1;
    }
    let wall_s = wall.elapsed().as_secs_f64();
    let cpu_s = match (cpu_start, cpu_ns()) {
        (Some(start), Some(end)) => end.saturating_sub(start) as f64 / 1e9,
        _ => wall_s,
    };
    let units = if bytes == 0 {
        passes as f64
    } else {
        (passes * bytes) as f64 / 1e6
    };
    Ok(Rate {
        passes,
        cpu_s,
        wall_s,
        per_cpu_s: units / cpu_s,
        per_wall_s: units / wall_s,
    })
}
