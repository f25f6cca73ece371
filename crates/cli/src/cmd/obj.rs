//! `welkin obj` and `welkin node storage`: objects stored across the nodes.

use crate::{
    cli::{
        ApiArgs, ObjAuditLogArgs, ObjCommand, ObjDeleteArgs, ObjGetArgs, ObjInspectArgs,
        ObjListArgs, ObjPutArgs,
    },
    output,
};
use anyhow::{Context as _, bail};
use indicatif::{ProgressBar, ProgressStyle};
use std::{path::Path, time::Instant};
use welkin_client::{
    Client,
    objects::{PutOptions, owner_secret},
};
use welkin_object::Layout;
use welkin_types::{
    Digest, Payload, PrivateKey, Sender, Transaction,
    api::{AuditLogKind, ObjectAuditLog, ObjectInfo, StorageStatus},
    storage::StorageOp,
};

pub(crate) fn run(command: ObjCommand) -> anyhow::Result<()> {
    match command {
        ObjCommand::Put(args) => put(args),
        ObjCommand::Get(args) => get(args),
        ObjCommand::Inspect(args) => inspect(args),
        ObjCommand::List(args) => list(args),
        ObjCommand::Delete(args) => delete(args),
        ObjCommand::Degraded(args) => degraded(args),
        ObjCommand::AuditLog(args) => audit_log(args),
        ObjCommand::Simulate(args) => super::simulate::run(args),
    }
}

fn load_key(path: &Path) -> anyhow::Result<PrivateKey> {
    Ok(super::signing::load_key_file(path)?.signer)
}

fn parse_id(text: &str) -> anyhow::Result<Digest> {
    welkin_types::hexser::decode_hex::<Digest>(text.trim())
        .map_err(|e| anyhow::anyhow!("object id must be 64 hex characters: {e}"))
}

/// A byte count readably (`12.3 MiB`).
pub(crate) fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = n as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{n} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

fn bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template(
            "{msg:>10} [{bar:30}] {bytes}/{total_bytes} {binary_bytes_per_sec} eta {eta}",
        )
        .expect("a valid template")
        .progress_chars("=> "),
    );
    bar
}

fn put(args: ObjPutArgs) -> anyhow::Result<()> {
    let owner = load_key(&args.owner.key)?;
    let client = Client::new(&args.api.api);
    let size = std::fs::metadata(&args.file)
        .with_context(|| format!("cannot read {}", args.file.display()))?
        .len();
    let nodes = client.genesis()?.nodes.len() as u16;
    let mut layout = Layout::default_for(nodes);
    if let Some(k) = args.k {
        layout.k = k;
    }
    if let Some(m) = args.m {
        layout.m = m;
    }
    if let Some(segment) = args.segment_size {
        layout.segment_bytes = segment;
    }
    layout
        .validate()
        .map_err(|e| anyhow::anyhow!("{e} (see --k, --m and --segment-size)"))?;
    let recipients = args
        .recipients
        .iter()
        .map(|text| {
            hex::decode(text.trim())
                .ok()
                .and_then(|b| <[u8; 32]>::try_from(b).ok())
                .with_context(|| {
                    format!("--to {text}: not an X25519 public key in hex (64 characters)")
                })
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let label = args.label.clone().unwrap_or_else(|| {
        args.file
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    });
    let progress = bar(size, args.api.json);
    let update = |done: u64, _total: u64, phase: &str| {
        progress.set_message(phase.to_string());
        progress.set_position(done);
    };
    let started = Instant::now();
    let outcome = client.put_object(
        &owner,
        size,
        || std::fs::File::open(&args.file),
        &PutOptions {
            layout,
            label,
            recipients,
            progress: &update,
        },
    )?;
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.api.json {
        return output::json(&serde_json::json!({
            "id": outcome.id,
            "size": outcome.size,
            "put_tx": outcome.put_tx,
            "status": outcome.status,
            "uploaded_bytes": outcome.uploaded_bytes,
            "failed_shards": outcome.failed_shards,
            "seconds": seconds,
            "phase_seconds": outcome.phase_seconds,
            "mb_per_second": outcome.size as f64 / 1e6 / seconds.max(1e-9),
        }));
    }
    println!("{}", outcome.id);
    eprintln!(
        "stored {} in {seconds:.2} s ({:.1} MB/s), {} shards ({}+{}), status {}",
        bytes(outcome.size),
        outcome.size as f64 / 1e6 / seconds.max(1e-9),
        layout.k + layout.m,
        layout.k,
        layout.m,
        outcome.status
    );
    for failure in &outcome.failed_shards {
        eprintln!("  not stored: {failure}");
    }
    if outcome.status != "stored" {
        eprintln!(
            "not every node has acknowledged its shard yet: `welkin obj inspect {}` shows which",
            outcome.id
        );
    }
    Ok(())
}

fn parse_range(text: &str) -> anyhow::Result<(u64, u64)> {
    let (a, b) = text
        .split_once('-')
        .with_context(|| format!("--range {text}: expected A-B, e.g. 0-1048576"))?;
    let a: u64 = a
        .trim()
        .parse()
        .with_context(|| format!("--range {text}: A is not a number"))?;
    let b: u64 = b
        .trim()
        .parse()
        .with_context(|| format!("--range {text}: B is not a number"))?;
    if b < a {
        bail!("--range {text}: B must not be below A");
    }
    Ok((a, b))
}

fn get(args: ObjGetArgs) -> anyhow::Result<()> {
    let owner = load_key(&args.owner.key)?;
    let id = parse_id(&args.id)?;
    let range = args.range.as_deref().map(parse_range).transpose()?;
    let client = Client::new(&args.api.api);
    let info = client.object(&id)?;
    let total = range.map_or(info.size, |(a, b)| b.saturating_sub(a));
    let to_stdout = args.out.as_os_str() == "-";
    let progress = bar(total, args.api.json || to_stdout);
    let update = |done: u64, _total: u64, phase: &str| {
        progress.set_message(phase.to_string());
        progress.set_position(done);
    };
    let started = Instant::now();
    let secret = owner_secret(&owner);
    let outcome = if to_stdout {
        let stdout = std::io::stdout();
        let mut out = std::io::BufWriter::new(stdout.lock());
        client.get_object(&id, &owner, &secret, range, &mut out, &update)?
    } else {
        // Written beside the target and renamed, so a failed read leaves no partial file.
        let partial = args.out.with_extension("partial");
        let file = std::fs::File::create(&partial)
            .with_context(|| format!("cannot create {}", partial.display()))?;
        let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
        let outcome = client.get_object(&id, &owner, &secret, range, &mut out, &update);
        drop(out);
        match outcome {
            Ok(outcome) => {
                std::fs::rename(&partial, &args.out)
                    .with_context(|| format!("cannot write {}", args.out.display()))?;
                outcome
            }
            Err(error) => {
                let _ = std::fs::remove_file(&partial);
                return Err(error.into());
            }
        }
    };
    progress.finish_and_clear();
    let seconds = started.elapsed().as_secs_f64();
    if args.api.json {
        return output::json(&serde_json::json!({
            "id": outcome.id,
            "bytes": outcome.bytes,
            "seconds": seconds,
            "mb_per_second": outcome.bytes as f64 / 1e6 / seconds.max(1e-9),
            "shards_used": outcome.shards_used,
            "failed_shards": outcome.failed_shards,
        }));
    }
    if !to_stdout {
        eprintln!(
            "read {} in {seconds:.2} s ({:.1} MB/s), every block checked against the manifest",
            bytes(outcome.bytes),
            outcome.bytes as f64 / 1e6 / seconds.max(1e-9)
        );
    }
    for failure in &outcome.failed_shards {
        eprintln!("  replaced a shard: {failure}");
    }
    Ok(())
}

fn print_object(info: &ObjectInfo) {
    println!("object  {}", info.id);
    println!("label   {}", info.label);
    println!("owner   {}", info.owner);
    println!(
        "size    {} ({} bytes), segments of {}, {} data + {} parity shards of {} each",
        bytes(info.size),
        info.size,
        bytes(u64::from(info.segment_bytes)),
        info.k,
        info.m,
        bytes(info.shard_bytes)
    );
    println!(
        "status  {} (manifest at height {})",
        info.status, info.height
    );
    for shard in &info.shards {
        println!(
            "  shard {:>2} on {:<10} {:<8} root {}",
            shard.index,
            shard.node,
            match (shard.stored, shard.healthy) {
                (true, true) => "stored",
                (true, false) => "lost",
                (false, _) => "pending",
            },
            &shard.root[..16]
        );
    }
}

fn inspect(args: ObjInspectArgs) -> anyhow::Result<()> {
    let id = parse_id(&args.id)?;
    let client = Client::new(&args.api.api);
    let info = client.object(&id)?;
    welkin_client::objects::checked_manifest(&id, &info)?;
    if args.api.json {
        return output::json(&info);
    }
    print_object(&info);
    Ok(())
}

fn list(args: ObjListArgs) -> anyhow::Result<()> {
    let owner = match (&args.key, &args.owner) {
        (Some(path), _) => commonware_cryptography::Signer::public_key(&load_key(path)?),
        (None, Some(hex_key)) => welkin_types::hexser::decode_hex(hex_key)
            .map_err(|e| anyhow::anyhow!("--owner must be a public key in hex: {e}"))?,
        (None, None) => bail!("say whose objects: --key FILE or --owner KEY"),
    };
    let client = Client::new(&args.api.api);
    let mut objects = Vec::new();
    loop {
        let page = client.objects(&owner, objects.len() as u64)?;
        let done = page.objects.is_empty()
            || objects.len() as u64 + page.objects.len() as u64 >= page.total;
        objects.extend(page.objects);
        if done {
            break;
        }
    }
    if args.api.json {
        return output::json(&objects);
    }
    if objects.is_empty() {
        println!("no objects");
    }
    for info in &objects {
        println!(
            "{}  {:>10}  {:<8}  {}",
            info.id,
            bytes(info.size),
            info.status,
            info.label
        );
    }
    Ok(())
}

fn degraded(args: ApiArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api);
    let objects = client.degraded_objects()?;
    if args.json {
        return output::json(&objects);
    }
    if objects.is_empty() {
        println!("no degraded objects: every stored shard is healthy");
    }
    for info in &objects {
        let healthy = info.shards.iter().filter(|s| s.healthy).count();
        println!(
            "{}  {}/{} shards healthy (needs {})  {}",
            info.id,
            healthy,
            info.shards.len(),
            info.k,
            info.label
        );
    }
    Ok(())
}

fn audit_log(args: ObjAuditLogArgs) -> anyhow::Result<()> {
    let id = parse_id(&args.id)?;
    let client = Client::new(&args.api.api);
    let log = client.object_audit_log(&id)?;
    if args.api.json {
        return output::json(&log);
    }
    print_audit_log(&log);
    Ok(())
}

/// How an event reads in the table.
fn event_name(kind: AuditLogKind) -> &'static str {
    match kind {
        AuditLogKind::AuditPassed => "audit passed",
        AuditLogKind::AuditFailed => "audit FAILED",
        AuditLogKind::RepairOrdered => "repair ordered",
        AuditLogKind::RepairDone => "repair done",
        AuditLogKind::RepairExpired => "repair expired",
    }
}

fn print_audit_log(log: &ObjectAuditLog) {
    println!(
        "object {}  {}, {}/{} shards healthy (needs {})",
        log.id, log.status, log.healthy, log.shards, log.k
    );
    if log.events.is_empty() {
        println!("no audit of its shards has been settled yet, and it was never repaired");
        return;
    }
    println!(
        "{:>8}  {:>6}  {:<14}  {:>5}  {:<12}  reason",
        "height", "epoch", "event", "shard", "node"
    );
    for event in &log.events {
        let node = if event.node.is_empty() {
            format!("member {}", event.member)
        } else {
            event.node.clone()
        };
        let line = format!(
            "{:>8}  {:>6}  {:<14}  {:>5}  {:<12}  {}",
            event.height,
            event.epoch.map(|e| e.to_string()).unwrap_or_default(),
            event_name(event.kind),
            event.shard,
            node,
            event.reason.as_deref().unwrap_or("")
        );
        println!("{}", line.trim_end());
    }
    if log.events.len() as u64 >= u64::from(log.kept) {
        println!(
            "(the cluster keeps the newest {} events per object; the log has older ones)",
            log.kept
        );
    }
}

fn delete(args: ObjDeleteArgs) -> anyhow::Result<()> {
    let owner = load_key(&args.owner.key)?;
    let id = parse_id(&args.id)?;
    let client = Client::new(&args.api.api);
    let cluster = client.genesis()?.cluster_id();
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let tx = Transaction {
        sender: Sender::Key(commonware_cryptography::Signer::public_key(&owner)),
        nonce: rand_core::Rng::next_u64(&mut commonware_utils::sys_rng()),
        expiry_ms: now + 60_000,
        payload: Payload::Storage(Box::new(StorageOp::Delete { object: id })),
    }
    .sign(&owner, &cluster);
    let status = client.submit(&tx, Some(std::time::Duration::from_secs(30)))?;
    let receipt = status
        .receipt
        .context("the deletion was not committed in time; check it with `welkin tx status`")?;
    if !receipt.outcome.is_applied() {
        bail!(
            "the cluster refused the deletion: {}",
            status
                .detail
                .unwrap_or_else(|| receipt.outcome.name().to_string())
        );
    }
    if args.api.json {
        return output::json(
            &serde_json::json!({ "id": hex::encode(id), "deleted": true, "tx": hex::encode(tx.id()) }),
        );
    }
    println!(
        "deleted {}: its key is destroyed and every node removes its shards",
        hex::encode(id)
    );
    Ok(())
}

/// `welkin node storage`.
pub(crate) fn node_storage(args: ApiArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api);
    let status: StorageStatus = client.storage()?;
    if args.json {
        return output::json(&status);
    }
    println!(
        "{} objects ({} degraded), {} of plaintext, audit epoch {} (as node {} sees it)",
        status.objects,
        status.degraded,
        bytes(status.bytes),
        status.audit_epoch,
        status.node
    );
    println!(
        "{:<10} {:<10} {:>10} {:>10} {:>10} {:>10} {:>7} {:>13} {:>10}",
        "node",
        "domain",
        "capacity",
        "used",
        "reserved",
        "free",
        "shards",
        "audits ok/bad",
        "reputation"
    );
    for node in &status.nodes {
        println!(
            "{:<10} {:<10} {:>10} {:>10} {:>10} {:>10} {:>7} {:>13} {:>9}%",
            node.node,
            node.failure_domain,
            bytes(node.capacity),
            bytes(node.used),
            bytes(node.reserved),
            bytes(node.free_for_puts),
            node.shards,
            format!("{}/{}", node.audits_passed, node.audits_failed),
            node.reputation_percent
        );
        if let Some(reason) = &node.last_audit_failure {
            println!("  last failed audit: {reason}");
        }
    }
    if let Some(local) = &status.local {
        println!(
            "this node's store: {} shards, {} in {}",
            local.shards,
            bytes(local.bytes),
            local.directory
        );
        for corrupt in &local.corrupt {
            println!("  corrupt (not served, awaiting repair): {corrupt}");
        }
    }
    Ok(())
}
