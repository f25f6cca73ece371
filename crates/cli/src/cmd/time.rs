//! `welkin time`: certified time, checked here against the trusted cluster key.

use super::trust;
use crate::{
    cli::{ApiArgs, TimeCommand, TimeNowArgs, TimeStampArgs, TimeVerifyArgs},
    output,
};
use anyhow::{Context as _, bail};
use commonware_codec::Encode as _;
use std::time::Duration;
use welkin_client::Client;
use welkin_time::{CertifiedTime, rfc3339};
use welkin_types::{Payload, api::LogReceipt};

/// The media type of a timestamp record: its content is a [`CertifiedTime`] encoding whose
/// nonce is the stamped file's SHA-256.
const STAMP_MEDIA_TYPE: &str = "application/vnd.welkin.time-stamp";

pub(crate) fn run(command: TimeCommand) -> anyhow::Result<()> {
    match command {
        TimeCommand::Now(args) => now(args),
        TimeCommand::Stamp(args) => stamp(args),
        TimeCommand::Verify(args) => verify(args),
        TimeCommand::Status(args) => status(args),
    }
}

/// Nanoseconds since the epoch on this machine's clock.
fn local_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

/// A duration in ns, readably (`4.21 ms`).
fn span(ns: u64) -> String {
    match ns {
        0..1_000 => format!("{ns} ns"),
        1_000..1_000_000 => format!("{:.2} µs", ns as f64 / 1e3),
        1_000_000..1_000_000_000 => format!("{:.2} ms", ns as f64 / 1e6),
        _ => format!("{:.3} s", ns as f64 / 1e9),
    }
}

/// A signed offset in ns, readably.
fn offset(ns: i64) -> String {
    let sign = if ns < 0 { "-" } else { "+" };
    format!("{sign}{}", span(ns.unsigned_abs()))
}

fn decode(hex_text: &str) -> anyhow::Result<CertifiedTime> {
    let bytes = hex::decode(hex_text.trim()).context("the certificate is not hex")?;
    welkin_types::decode::<CertifiedTime>(&bytes)
        .map_err(|e| anyhow::anyhow!("the certificate does not decode: {e}"))
}

fn parse_nonce(text: &str) -> anyhow::Result<[u8; 32]> {
    let bytes = hex::decode(text.trim()).context("the nonce is not hex")?;
    bytes
        .try_into()
        .map_err(|b: Vec<u8>| anyhow::anyhow!("the nonce must be 32 bytes, got {}", b.len()))
}

fn names(genesis: Option<&welkin_types::Genesis>, certified: &CertifiedTime) -> Vec<String> {
    certified
        .certificate
        .agreed_nodes()
        .into_iter()
        .map(|i| {
            genesis
                .and_then(|g| g.nodes.get(i as usize))
                .map_or_else(|| format!("node #{i}"), |n| n.name.clone())
        })
        .collect()
}

fn print(certified: &CertifiedTime, agreed: &[String], source: &str, local: Option<u64>) {
    let certificate = &certified.certificate;
    let (midpoint, radius) = certificate.midpoint_and_radius();
    println!("verified: certified by the cluster key of {source}");
    println!("time      {} ± {}", rfc3339(midpoint), span(radius));
    println!(
        "interval  {} .. {}",
        rfc3339(certificate.earliest_ns),
        rfc3339(certificate.latest_ns)
    );
    println!("agreed    {}", agreed.join(", "));
    if let Some(local) = local {
        let inside = (certificate.earliest_ns..=certificate.latest_ns).contains(&local);
        let difference = i64::try_from(i128::from(local) - i128::from(midpoint)).unwrap_or(0);
        println!(
            "local     this machine's clock is {} from the midpoint ({})",
            offset(difference),
            if inside {
                "inside the interval"
            } else {
                "outside the interval: this clock is wrong by at least that much"
            }
        );
    }
}

/// The certificate in `response`, after checking it answers `nonce` under the trusted
/// cluster key.
fn checked(
    client: &Client,
    trust: &trust::Trust,
    response: &welkin_types::api::TimeResponse,
    nonce: &[u8; 32],
) -> anyhow::Result<CertifiedTime> {
    let certified = decode(&response.certificate)?;
    certified
        .verify_for(nonce, &trust.trusted.cluster_id, &trust.trusted.cluster_key)
        .map_err(|e| {
            anyhow::anyhow!(
                "the time from {} does not verify against the trusted cluster ({}): {e}",
                client.base(),
                trust.source
            )
        })?;
    Ok(certified)
}

fn now(args: TimeNowArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api.api);
    let trust = trust::cluster(&client, args.trust.genesis.as_deref())?;
    let mut nonce = [0u8; 32];
    rand_core::Rng::fill_bytes(&mut commonware_utils::sys_rng(), &mut nonce);
    let asked = local_ns();
    let response = client.time(&nonce)?;
    let answered = local_ns();
    let certified = checked(&client, &trust, &response, &nonce)?;
    let agreed = names(trust.genesis.as_ref(), &certified);
    if args.api.json {
        let mut value = serde_json::to_value(&response)?;
        value["verified"] = serde_json::Value::Bool(true);
        value["round_trip_ns"] = (answered - asked).into();
        return output::json(&value);
    }
    print(
        &certified,
        &agreed,
        &trust.source,
        Some(answered / 2 + asked / 2),
    );
    println!(
        "asked     round trip {}",
        span(answered.saturating_sub(asked))
    );
    Ok(())
}

/// The SHA-256 of a file.
fn file_digest(path: &std::path::Path) -> anyhow::Result<[u8; 32]> {
    use commonware_cryptography::Hasher as _;
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    Ok(welkin_types::Hasher::hash(&[&bytes]).0)
}

fn stamp(args: TimeStampArgs) -> anyhow::Result<()> {
    let signing = super::signing::Signing::load(&args.signer)?;
    let digest = file_digest(&args.file)?;
    let client = Client::new(&args.api.api);
    let trust = trust::cluster(&client, args.trust.genesis.as_deref())?;
    let response = client.time(&digest)?;
    let certified = checked(&client, &trust, &response, &digest)?;
    let tx = signing.sign(
        &trust.trusted.cluster_id,
        welkin_node::ceremony::random_u64(),
        super::now_ms() + 300_000,
        Payload::Record {
            media_type: STAMP_MEDIA_TYPE.into(),
            content: certified.encode().to_vec(),
        },
    );
    client.submit(&tx, Some(Duration::from_secs(30)))?;
    let receipt = super::log::certified_receipt(&client, &tx.id())?;
    let out = args.out.unwrap_or_else(|| {
        let mut name = args.file.clone().into_os_string();
        name.push(".stamp.json");
        name.into()
    });
    std::fs::write(&out, serde_json::to_string_pretty(&receipt)?)
        .with_context(|| format!("cannot write {}", out.display()))?;
    if args.api.json {
        return output::json(&serde_json::json!({
            "verified": true,
            "file": args.file.display().to_string(),
            "sha256": hex::encode(digest),
            "earliest_ns": certified.certificate.earliest_ns,
            "latest_ns": certified.certificate.latest_ns,
            "log_index": receipt.log_index,
            "receipt": out.display().to_string(),
        }));
    }
    println!(
        "verified: {} (sha256 {}) existed before {}",
        args.file.display(),
        hex::encode(digest),
        rfc3339(certified.certificate.latest_ns)
    );
    println!(
        "interval  {} .. {}, certified by the cluster key of {}",
        rfc3339(certified.certificate.earliest_ns),
        rfc3339(certified.certificate.latest_ns),
        trust.source
    );
    println!("logged    entry {} of the audit log", receipt.log_index);
    println!(
        "receipt   {} (check it with `welkin time verify {} --file {} --genesis genesis.json`)",
        out.display(),
        out.display(),
        args.file.display()
    );
    Ok(())
}

/// A timestamp receipt's certificate, after checking the receipt, and a line saying where
/// it is logged.
fn stamped(receipt: &LogReceipt, trust: &trust::Trust) -> anyhow::Result<(CertifiedTime, String)> {
    let (certified, entry) = welkin_client::verify_applied_log_receipt(
        receipt,
        &trust.trusted.cluster_id,
        &trust.trusted.cluster_key,
    )
    .map_err(|e| anyhow::anyhow!("the log receipt does not verify: {e}"))?;
    let Payload::Record {
        media_type,
        content,
    } = &entry.tx.tx.payload
    else {
        bail!(
            "the receipt's entry is a {} transaction, not a timestamp",
            entry.tx.tx.payload.kind()
        );
    };
    if media_type != STAMP_MEDIA_TYPE {
        bail!("the receipt's record is {media_type}, not a timestamp ({STAMP_MEDIA_TYPE})");
    }
    let time = welkin_types::decode::<CertifiedTime>(content)
        .map_err(|e| anyhow::anyhow!("the timestamp record does not decode: {e}"))?;
    Ok((
        time,
        format!(
            "logged    entry {} of the log of {} entries certified at height {}",
            receipt.log_index, certified.checkpoint.log_size, certified.checkpoint.height
        ),
    ))
}

fn verify(args: TimeVerifyArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api.api);
    let trust = trust::cluster(&client, args.trust.genesis.as_deref())?;
    let path = std::path::Path::new(&args.certificate);
    let text = if path.is_file() {
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?
    } else {
        args.certificate.clone()
    };
    let mut logged = None;
    let certified = match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(value)
            if value.get("kind").and_then(|k| k.as_str())
                == Some(welkin_types::api::LOG_RECEIPT_KIND) =>
        {
            let receipt: LogReceipt =
                serde_json::from_value(value).context("the log receipt is malformed")?;
            let (certified, line) = stamped(&receipt, &trust)?;
            logged = Some(line);
            certified
        }
        Ok(value) => match value.get("certificate").and_then(|c| c.as_str()) {
            Some(hex_text) => decode(hex_text)?,
            None => bail!(
                "the JSON is neither a timestamp receipt nor `welkin time now --json` output (it has no certificate field)"
            ),
        },
        Err(_) => decode(&text)?,
    };
    let nonce = match (&args.nonce, &args.file) {
        (Some(nonce), _) => Some(parse_nonce(nonce)?),
        (None, Some(file)) => Some(file_digest(file)?),
        (None, None) => None,
    };
    let checked = match nonce {
        Some(nonce) => certified.verify_for(
            &nonce,
            &trust.trusted.cluster_id,
            &trust.trusted.cluster_key,
        ),
        None => certified.verify(&trust.trusted.cluster_id, &trust.trusted.cluster_key),
    };
    checked.map_err(|e| {
        anyhow::anyhow!(
            "the certificate does not verify against the trusted cluster ({}): {e}",
            trust.source
        )
    })?;
    let agreed = names(trust.genesis.as_ref(), &certified);
    if args.api.json {
        let (midpoint, radius) = certified.certificate.midpoint_and_radius();
        return output::json(&serde_json::json!({
            "verified": true,
            "nonce": hex::encode(certified.nonce),
            "earliest_ns": certified.certificate.earliest_ns,
            "latest_ns": certified.certificate.latest_ns,
            "midpoint_ns": midpoint,
            "radius_ns": radius,
            "agreed": agreed,
        }));
    }
    print(&certified, &agreed, &trust.source, None);
    if let Some(line) = logged {
        println!("{line}");
    }
    if let Some(file) = &args.file {
        println!(
            "file      {} existed before {}",
            file.display(),
            rfc3339(certified.certificate.latest_ns)
        );
    } else if args.nonce.is_none() {
        println!(
            "nonce     {} (pass --nonce to check it is yours)",
            hex::encode(certified.nonce)
        );
    }
    Ok(())
}

fn status(args: ApiArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.api);
    let status = client.time_status()?;
    if args.json {
        return output::json(&status);
    }
    println!(
        "node {}: clock {} ± {} ({}), {} certificates, {} refused",
        status.node,
        rfc3339(status.reading.midpoint_ns),
        span(status.reading.radius_ns),
        if status.reading.synced {
            "host synchronised"
        } else {
            "free-running"
        },
        status.certificates,
        status.refused
    );
    match (status.certified_earliest_ns, status.certified_latest_ns) {
        (Some(earliest), Some(latest)) => println!(
            "certified now: {} .. {} (unverified: `welkin time now` checks a certificate)",
            rfc3339(earliest),
            rfc3339(latest)
        ),
        _ => println!("certified now: none recent (the clocks have not agreed in the last 10 s)"),
    }
    if let Some(address) = &status.roughtime_address {
        println!(
            "roughtime: udp {address}, public key {} (base64)",
            status.roughtime_public_key
        );
    }
    if let Some(address) = &status.ntp_address {
        println!("ntp: udp {address}");
    }
    println!(
        "{:<12} {:<12} {:>12} {:>12} {:<8} {:>14}",
        "NODE", "STATE", "OFFSET", "RADIUS", "HOST", "DISAGREEMENTS"
    );
    for node in &status.nodes {
        println!(
            "{:<12} {:<12} {:>12} {:>12} {:<8} {:>14}",
            node.name,
            node.state,
            offset(node.offset_ns),
            span(node.radius_ns),
            if node.synced { "synced" } else { "free" },
            node.disagreements
        );
    }
    Ok(())
}
