//! Storing and reading objects: the client's side of the data path.
//!
//! **Put.** The client reads the file twice and holds a few segments in memory whatever its
//! size. Both passes encode on every core ([`welkin_object::encode_reader_parallel`]). The
//! first pass encrypts and erasure-codes every segment (see [`welkin_object`]) only to learn
//! each shard's Merkle root; the client then commits the manifest (the roots, the
//! layout and the object key sealed to the owner and any recipients) and learns from the
//! committed state which node each shard is placed on. The second pass encodes again (the
//! same key gives the same bytes) and streams shard `i` straight to its node, which checks
//! every block against the committed root. The put ends when every node has acknowledged
//! its shard in the log.
//!
//! **Get.** The client fetches the manifest from any node and checks it against the object
//! id, opens the object key with the owner's (or a recipient's) secret, reads each shard's
//! block hashes and checks them against the manifest's roots, then streams blocks from `k`
//! shards (data shards first) and decodes segment by segment, checking every block before it
//! is used. A node that fails or serves a bad block is replaced by another shard's holder for
//! the remaining segments. Range reads fetch only the segments they need.

use crate::{Client, ClientError};
use commonware_codec::Encode as _;
use std::{
    io::{Read, Write},
    sync::mpsc,
    time::Duration,
};
use welkin_object::{Layout, ObjectKey};
use welkin_types::{
    Digest, Payload, PrivateKey, Sender, Transaction,
    api::{ObjectInfo, ShardUploadReply},
    storage::{ObjectManifest, REQUEST_HEADER, RequestSignature},
};

/// What an object operation failed on.
#[derive(Debug, thiserror::Error)]
pub enum ObjectError {
    /// The node API refused or could not be reached.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The file could not be read or written.
    #[error("{0}")]
    Io(#[from] std::io::Error),
    /// The data path refused (layout, encoding, a shard that cannot be read).
    #[error("{0}")]
    Data(String),
    /// The cluster refused the manifest.
    #[error("the cluster refused the object: {0}")]
    Refused(String),
}

fn data(error: impl std::fmt::Display) -> ObjectError {
    ObjectError::Data(error.to_string())
}

/// The X25519 secret an ed25519 owner key opens its objects' keys with: derived from the
/// key's seed, so one key file serves both.
pub fn owner_secret(owner: &PrivateKey) -> [u8; 32] {
    let seed = owner.encode();
    blake3::derive_key("welkin/object-owner-x25519/v1", &seed)
}

/// The X25519 public key objects are sealed to for `owner`.
pub fn owner_public(owner: &PrivateKey) -> [u8; 32] {
    welkin_sealed::recipient_public_key(&owner_secret(owner))
}

fn key_aad(id: &Digest) -> Vec<u8> {
    let mut aad = b"welkin/object-key/v1".to_vec();
    aad.extend_from_slice(id.as_ref());
    aad
}

/// How a put goes.
pub struct PutOptions<'a> {
    /// k, m and the segment size.
    pub layout: Layout,
    /// A public name for listings.
    pub label: String,
    /// X25519 keys besides the owner's that may open the object.
    pub recipients: Vec<[u8; 32]>,
    /// Called with (bytes done, bytes in all, phase) as the put goes.
    pub progress: &'a (dyn Fn(u64, u64, &str) + Sync),
}

/// What a put did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PutOutcome {
    /// The object id (hex).
    pub id: String,
    /// Plaintext bytes.
    pub size: u64,
    /// The manifest's transaction (hex).
    pub put_tx: String,
    /// Bytes sent to nodes (shards and block hashes).
    pub uploaded_bytes: u64,
    /// Its status when the put returned.
    pub status: String,
    /// Shards that could not be uploaded, with why (at most `m`; the object is readable, and
    /// stays `pending` until its upload window closes, then `degraded`).
    pub failed_shards: Vec<String>,
    /// Seconds spent in each phase, in order: hashing the file, committing the manifest,
    /// uploading the shards, waiting for the nodes' acknowledgements to commit.
    pub phase_seconds: PhaseSeconds,
}

/// Where a put's time went.
#[derive(Debug, Clone, Default, serde::Serialize)]
pub struct PhaseSeconds {
    /// The first pass: encoding only to learn the shard roots.
    pub hashing: f64,
    /// Committing the manifest and reading back the placement.
    pub manifest: f64,
    /// Encoding again and streaming the shards to their nodes until every node answered.
    pub uploading: f64,
    /// Waiting until the nodes' acknowledgements are committed.
    pub acknowledging: f64,
}

/// A second connection profile for bulk transfers: no overall deadline, only limits on
/// connecting and on silence.
fn bulk_agent() -> ureq::Agent {
    ureq::Agent::config_builder()
        .timeout_global(None)
        .timeout_connect(Some(Duration::from_secs(10)))
        .timeout_recv_response(Some(Duration::from_secs(120)))
        .timeout_recv_body(Some(Duration::from_secs(120)))
        .timeout_send_body(Some(Duration::from_secs(120)))
        .http_status_as_error(false)
        .build()
        .into()
}

/// Encodes the object `reader` holds on every core, calling `each` with every encoded segment
/// in order; returns the shard summaries.
fn encode_pass(
    layout: &Layout,
    key: &ObjectKey,
    size: u64,
    reader: impl Read + Send,
    mut each: impl FnMut(&mut welkin_object::EncodedSegment),
    progress: &(dyn Fn(u64, u64, &str) + Sync),
    phase: &str,
) -> Result<Vec<welkin_object::ShardSummary>, ObjectError> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let mut done = 0u64;
    welkin_object::encode_reader_parallel(*layout, key, size, threads, reader, |segment| {
        done += u64::from(layout.segment_len(size, segment.index).unwrap_or(0));
        each(segment);
        progress(done, size, phase);
        Ok(())
    })
    .map_err(|e| match e {
        welkin_object::EncodeError::ShortRead { .. }
        | welkin_object::EncodeError::LongRead { .. }
        | welkin_object::EncodeError::Read(_) => ObjectError::Data(format!(
            "cannot read the file ({e}); did it change while being stored?"
        )),
        other => data(other),
    })
}

/// A `Read` over blocks sent through a channel: the body of one shard upload.
struct ChannelReader {
    receiver: mpsc::Receiver<Vec<u8>>,
    current: Vec<u8>,
    offset: usize,
}

impl Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.offset == self.current.len() {
            match self.receiver.recv() {
                Ok(next) => {
                    self.current = next;
                    self.offset = 0;
                }
                Err(_) => return Ok(0),
            }
        }
        let n = out.len().min(self.current.len() - self.offset);
        out[..n].copy_from_slice(&self.current[self.offset..self.offset + n]);
        self.offset += n;
        Ok(n)
    }
}

fn signed_header(client_key: &PrivateKey, cluster: &Digest, method: &str, path: &str) -> String {
    let expiry = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
        + 4 * 60 * 1000;
    RequestSignature::sign(client_key, cluster, method, path, expiry).to_header()
}

impl Client {
    /// An object's manifest and placement as this node sees it (unchecked: see
    /// [`checked_manifest`]).
    pub fn object(&self, id: &Digest) -> Result<ObjectInfo, ClientError> {
        self.get(&format!("/v1/objects/{}", hex::encode(id)))
    }

    /// An owner's objects, from `offset`.
    pub fn objects(
        &self,
        owner: &welkin_types::PublicKey,
        offset: u64,
    ) -> Result<welkin_types::api::ObjectList, ClientError> {
        self.get(&format!(
            "/v1/objects?owner={}&offset={offset}",
            hex::encode(owner.encode())
        ))
    }

    /// Objects with a lost shard, awaiting repair.
    pub fn degraded_objects(&self) -> Result<Vec<ObjectInfo>, ClientError> {
        self.get("/v1/objects/degraded")
    }

    /// The settled audits of an object's shards and its repairs, newest first (the newest
    /// [`welkin_types::api::ObjectAuditLog::kept`] events).
    pub fn object_audit_log(
        &self,
        id: &Digest,
    ) -> Result<welkin_types::api::ObjectAuditLog, ClientError> {
        self.get(&format!("/v1/objects/{}/audit-log", hex::encode(id)))
    }

    /// Every node's storage space and this node's own store.
    pub fn storage(&self) -> Result<welkin_types::api::StorageStatus, ClientError> {
        self.get("/v1/storage")
    }

    /// Stores the `size` bytes `open()` reads (called twice: see the module docs) as an
    /// object owned by `owner`.
    pub fn put_object<R: Read + Send>(
        &self,
        owner: &PrivateKey,
        size: u64,
        open: impl Fn() -> std::io::Result<R>,
        options: &PutOptions<'_>,
    ) -> Result<PutOutcome, ObjectError> {
        let layout = options.layout;
        layout.validate_size(size).map_err(data)?;
        let genesis = self.genesis()?;
        let cluster = genesis.cluster_id();
        let key = ObjectKey::generate(&mut commonware_utils::sys_rng());
        let mut phases = PhaseSeconds::default();
        let mut clock = std::time::Instant::now();
        let mut lap = || {
            let now = std::time::Instant::now();
            let seconds = (now - clock).as_secs_f64();
            clock = now;
            seconds
        };
        let summaries = encode_pass(
            &layout,
            &key,
            size,
            open()?,
            |_| (),
            options.progress,
            "hashing",
        )?;
        phases.hashing = lap();
        let mut manifest = ObjectManifest {
            size,
            k: layout.k,
            m: layout.m,
            segment_bytes: layout.segment_bytes,
            roots: summaries.iter().map(|s| Digest::from(s.root)).collect(),
            sealed_key: welkin_types::Detachable::new(vec![0]),
            label: options.label.clone(),
        };
        let id = manifest.id();
        let mut recipients = vec![owner_public(owner)];
        recipients.extend(options.recipients.iter().copied());
        let sealed = welkin_sealed::seal_to_recipients(
            &mut commonware_utils::sys_rng(),
            &recipients,
            &key_aad(&id),
            key.expose(),
        )
        .map_err(data)?;
        manifest.sealed_key = welkin_types::Detachable::new(sealed.encode().to_vec());
        manifest.check().map_err(data)?;
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0);
        let tx = Transaction {
            sender: Sender::Key(commonware_cryptography::Signer::public_key(owner)),
            nonce: rand_core::Rng::next_u64(&mut commonware_utils::sys_rng()),
            expiry_ms: now + 60_000,
            payload: Payload::Storage(Box::new(welkin_types::storage::StorageOp::Put(Box::new(
                manifest,
            )))),
        }
        .sign(owner, &cluster);
        let put_tx = tx.id();
        let status = self.submit(&tx, Some(Duration::from_secs(30)))?;
        let receipt = status
            .receipt
            .ok_or_else(|| ObjectError::Refused("the manifest was not committed in time".into()))?;
        if !receipt.outcome.is_applied() {
            return Err(ObjectError::Refused(
                status
                    .detail
                    .unwrap_or_else(|| receipt.outcome.name().to_string()),
            ));
        }
        let info = self.object(&id)?;
        phases.manifest = lap();
        let shard_count = layout.shards();
        let agent = bulk_agent();
        let shard_bytes = layout.shard_bytes(size).map_err(data)?;
        let hashes: Vec<Vec<u8>> = summaries
            .iter()
            .map(|s| s.block_hashes.as_flattened().to_vec())
            .collect();
        // Upload every shard; shards whose upload failed are sent again once (a node that
        // was a block behind, restarting or briefly unreachable), with one more encode pass.
        let mut targets: Vec<usize> = (0..shard_count).collect();
        let mut uploaded = 0u64;
        let mut failed_shards = Vec::new();
        for attempt in 0..2 {
            let (bytes, failures) = std::thread::scope(
                |scope| -> Result<(u64, Vec<(usize, String)>), ObjectError> {
                    let mut senders = vec![None; shard_count];
                    let mut uploads = Vec::with_capacity(targets.len());
                    for &index in &targets {
                        let shard = &info.shards[index];
                        let (sender, receiver) = mpsc::sync_channel::<Vec<u8>>(4);
                        sender
                            .send(hashes[index].clone())
                            .expect("the receiver is alive");
                        senders[index] = Some(sender);
                        let path = format!("/v1/objects/{}/shards/{index}", info.id);
                        let url = format!("http://{}{path}", shard.api_address);
                        let header = signed_header(owner, &cluster, "PUT", &path);
                        let agent = agent.clone();
                        let length = hashes[index].len() as u64 + shard_bytes;
                        let upload = scope.spawn(move || -> Result<u64, ObjectError> {
                            let reader = ChannelReader {
                                receiver,
                                current: Vec::new(),
                                offset: 0,
                            };
                            let response = agent
                                .put(&url)
                                .header(REQUEST_HEADER, &header)
                                .header("content-length", length.to_string())
                                .send(ureq::SendBody::from_owned_reader(reader));
                            let text = self.text(&url, response)?;
                            let _reply: ShardUploadReply = crate::parse_reply(&text)?;
                            Ok(length)
                        });
                        uploads.push((index, upload));
                    }
                    let phase = if attempt == 0 {
                        "uploading"
                    } else {
                        "retrying"
                    };
                    let encoded = encode_pass(
                        &layout,
                        &key,
                        size,
                        open()?,
                        |segment| {
                            let blocks = std::mem::take(&mut segment.blocks);
                            for (sender, block) in senders.iter().zip(blocks) {
                                // A failed upload closes its channel; its error is reported
                                // below.
                                if let Some(sender) = sender {
                                    let _ = sender.send(block);
                                }
                            }
                        },
                        options.progress,
                        phase,
                    );
                    drop(senders);
                    let mut total = 0;
                    let mut failures = Vec::new();
                    for (index, upload) in uploads {
                        match upload.join() {
                            Ok(Ok(bytes)) => total += bytes,
                            Ok(Err(error)) => failures.push((index, error.to_string())),
                            Err(_) => failures.push((index, "the upload thread failed".into())),
                        }
                    }
                    let summaries_again = encoded?;
                    if summaries_again
                        .iter()
                        .zip(&summaries)
                        .any(|(a, b)| a.root != b.root)
                    {
                        return Err(ObjectError::Data(
                            "the file changed between the two passes; put it again".into(),
                        ));
                    }
                    Ok((total, failures))
                },
            )?;
            uploaded += bytes;
            targets = failures.iter().map(|(index, _)| *index).collect();
            failed_shards = failures
                .into_iter()
                .map(|(index, why)| format!("shard {index}: {why}"))
                .collect();
            if targets.is_empty() {
                break;
            }
            std::thread::sleep(Duration::from_secs(1));
        }
        if failed_shards.len() > usize::from(layout.m) {
            return Err(ObjectError::Data(format!(
                "too few shards stored: {}",
                failed_shards.join("; ")
            )));
        }
        phases.uploading = lap();
        // The nodes acknowledge through the log: wait until the state counts them.
        let mut status = String::new();
        // Acknowledgements commit a block or two after the last upload: look often, for at
        // most 30 s.
        let waits = if failed_shards.is_empty() { 600 } else { 0 };
        for _ in 0..=waits {
            status = self.object(&id)?.status;
            if status == "stored" {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        phases.acknowledging = lap();
        Ok(PutOutcome {
            id: hex::encode(id),
            size,
            put_tx: hex::encode(put_tx),
            uploaded_bytes: uploaded,
            status,
            failed_shards,
            phase_seconds: phases,
        })
    }
}

/// Decodes `info`'s manifest and checks it against `id`.
pub fn checked_manifest(id: &Digest, info: &ObjectInfo) -> Result<ObjectManifest, ObjectError> {
    let bytes = hex::decode(&info.manifest).map_err(data)?;
    let manifest = welkin_types::decode::<ObjectManifest>(&bytes).map_err(data)?;
    if manifest.id() != *id {
        return Err(ObjectError::Data(format!(
            "the node served a manifest for object {}, not {}",
            hex::encode(manifest.id()),
            hex::encode(id)
        )));
    }
    Ok(manifest)
}

/// Opens an object's key with an X25519 secret (the owner's: [`owner_secret`]).
pub fn open_object_key(
    id: &Digest,
    manifest: &ObjectManifest,
    secret: &[u8; 32],
) -> Result<ObjectKey, ObjectError> {
    let sealed = manifest.sealed_key.bytes().ok_or_else(|| {
        ObjectError::Data("the node no longer holds the object's key: it was deleted".into())
    })?;
    let sealed = welkin_types::decode::<welkin_sealed::RecipientSealed>(sealed).map_err(data)?;
    let key = welkin_sealed::open_as_recipient(secret, &key_aad(id), &sealed).map_err(data)?;
    let bytes: [u8; 32] = key
        .as_slice()
        .try_into()
        .map_err(|_| ObjectError::Data("the sealed object key is not 32 bytes".into()))?;
    Ok(ObjectKey::from_bytes(bytes))
}

/// One shard being read: a thread streams its blocks into a channel.
struct Source {
    index: usize,
    hashes: Vec<[u8; 32]>,
    blocks: mpsc::Receiver<std::io::Result<Vec<u8>>>,
}

/// Where a shard can be read.
#[derive(Clone, Debug)]
pub struct ShardSource {
    /// The shard's index.
    pub index: usize,
    /// Its holder's name (for messages).
    pub node: String,
    /// Its holder's API address (`host:port`).
    pub api_address: String,
}

/// Reads segments `segments` of object `id` from `k` of `sources` (in preference order),
/// checking every shard's hash list against `manifest`'s roots and every block against its
/// hash, and calls `each(segment, blocks, expected)` with at least `k` good blocks (one entry
/// per shard, `None` where absent) and each shard's expected block hash. A source that fails
/// or serves a bad block is replaced by the next one from that segment on. Requests are
/// signed by `requester` for `cluster`. Returns what failed along the way and the shards
/// read at the end.
pub fn read_segments(
    manifest: &ObjectManifest,
    id: &Digest,
    sources: &[ShardSource],
    segments: std::ops::Range<u64>,
    requester: &PrivateKey,
    cluster: &Digest,
    mut each: impl FnMut(u64, &[Option<Vec<u8>>], &[[u8; 32]]) -> Result<(), ObjectError>,
) -> Result<(Vec<String>, Vec<usize>), ObjectError> {
    let layout = Layout {
        k: manifest.k,
        m: manifest.m,
        segment_bytes: manifest.segment_bytes,
    };
    let size = manifest.size;
    let id_hex = hex::encode(id);
    let agent = bulk_agent();
    let shard_count = layout.shards();
    let mut failed: Vec<String> = Vec::new();
    let mut used = Vec::new();
    std::thread::scope(|scope| -> Result<(), ObjectError> {
        // Opens a shard from segment `from`: its hashes (checked against the root) and a
        // thread streaming its blocks.
        let open = |source: &ShardSource, from: u64| -> Result<Source, String> {
            let index = source.index;
            let base = format!("http://{}", source.api_address);
            let path = format!("/v1/objects/{id_hex}/shards/{index}/hashes");
            let header = signed_header(requester, cluster, "GET", &path);
            let mut response = agent
                .get(&format!("{base}{path}"))
                .header(REQUEST_HEADER, &header)
                .call()
                .map_err(|e| format!("{}: {e}", source.node))?;
            let status = response.status().as_u16();
            if status >= 400 {
                let text = response.body_mut().read_to_string().unwrap_or_default();
                return Err(format!(
                    "{}: {}",
                    source.node,
                    crate::api_error(status, &text)
                ));
            }
            let bytes = response
                .body_mut()
                .with_config()
                .limit(64 * 1024 * 1024)
                .read_to_vec()
                .map_err(|e| format!("{}: {e}", source.node))?;
            if bytes.len() as u64 != manifest.segments() * 32 {
                return Err(format!(
                    "{}: a hash list of {} bytes",
                    source.node,
                    bytes.len()
                ));
            }
            let hashes: Vec<[u8; 32]> = bytes
                .chunks_exact(32)
                .map(|h| h.try_into().expect("32-byte chunks"))
                .collect();
            let root = manifest
                .roots
                .get(index)
                .ok_or_else(|| format!("no shard {index}"))?;
            if welkin_object::shard_root(&hashes).as_slice() != root.as_ref() {
                return Err(format!(
                    "{}: block hashes that do not match the manifest",
                    source.node
                ));
            }
            let path = format!("/v1/objects/{id_hex}/shards/{index}");
            let header = signed_header(requester, cluster, "GET", &path);
            let url = format!("{base}{path}?from={from}&to={}", segments.end);
            let (sender, receiver) = mpsc::sync_channel(4);
            let agent = agent.clone();
            let lengths: Vec<usize> = (from..segments.end)
                .map(|s| layout.block_bytes(size, s).map(|n| n as usize))
                .collect::<Result<_, _>>()
                .map_err(|e| e.to_string())?;
            let node = source.node.clone();
            scope.spawn(move || {
                let response = agent.get(&url).header(REQUEST_HEADER, &header).call();
                let mut response = match response {
                    Ok(r) if r.status().as_u16() < 400 => r,
                    Ok(r) => {
                        let _ = sender.send(Err(std::io::Error::other(format!(
                            "{node} answered {}",
                            r.status()
                        ))));
                        return;
                    }
                    Err(e) => {
                        let _ = sender.send(Err(std::io::Error::other(format!("{node}: {e}"))));
                        return;
                    }
                };
                let mut body = response.body_mut().with_config().limit(u64::MAX).reader();
                for length in lengths {
                    let mut block = vec![0u8; length];
                    let read = body.read_exact(&mut block).map(|()| block);
                    let failed = read.is_err();
                    if sender.send(read).is_err() || failed {
                        return;
                    }
                }
            });
            Ok(Source {
                index,
                hashes,
                blocks: receiver,
            })
        };
        let mut standby: std::collections::VecDeque<&ShardSource> = sources.iter().collect();
        let mut active: Vec<Source> = Vec::new();
        for segment in segments.clone() {
            let mut blocks: Vec<Option<Vec<u8>>> = vec![None; shard_count];
            let mut expected = vec![[0u8; 32]; shard_count];
            let mut good = 0;
            let mut i = 0;
            loop {
                while i < active.len() {
                    let source = &active[i];
                    let hash = source.hashes[segment as usize];
                    match source.blocks.recv() {
                        Ok(Ok(block)) if welkin_object::block_hash(&block) == hash => {
                            expected[source.index] = hash;
                            blocks[source.index] = Some(block);
                            good += 1;
                            i += 1;
                        }
                        outcome => {
                            let why = match outcome {
                                Ok(Ok(_)) => {
                                    "served a block that does not match its hash".to_string()
                                }
                                Ok(Err(e)) => e.to_string(),
                                Err(_) => "stream ended".to_string(),
                            };
                            failed.push(format!(
                                "shard {} at segment {segment}: {why}",
                                source.index
                            ));
                            active.remove(i);
                        }
                    }
                }
                if good >= usize::from(layout.k) {
                    break;
                }
                let Some(next) = standby.pop_front() else {
                    return Err(ObjectError::Data(format!(
                        "segment {segment}: only {good} of the {} blocks needed can be read ({})",
                        layout.k,
                        failed.join("; ")
                    )));
                };
                match open(next, segment) {
                    Ok(source) => active.push(source),
                    Err(why) => failed.push(format!("shard {}: {why}", next.index)),
                }
            }
            each(segment, &blocks, &expected)?;
        }
        used = active.iter().map(|source| source.index).collect();
        Ok(())
    })?;
    Ok((failed, used))
}

/// What a get did.
#[derive(Debug, Clone, serde::Serialize)]
pub struct GetOutcome {
    /// The object id (hex).
    pub id: String,
    /// Bytes written.
    pub bytes: u64,
    /// The shards read from (after any replacements).
    pub shards_used: Vec<usize>,
    /// Shards given up on, with why.
    pub failed_shards: Vec<String>,
}

impl Client {
    /// Reads object `id` (or bytes `range.0..range.1` of it) into `out`, opening its key with
    /// `secret` (see [`owner_secret`]) and signing shard requests with `requester` (the
    /// owner's key).
    pub fn get_object(
        &self,
        id: &Digest,
        requester: &PrivateKey,
        secret: &[u8; 32],
        range: Option<(u64, u64)>,
        out: &mut impl Write,
        progress: &(dyn Fn(u64, u64, &str) + Sync),
    ) -> Result<GetOutcome, ObjectError> {
        let info = self.object(id)?;
        let manifest = checked_manifest(id, &info)?;
        let key = open_object_key(id, &manifest, secret)?;
        let layout = Layout {
            k: manifest.k,
            m: manifest.m,
            segment_bytes: manifest.segment_bytes,
        };
        let size = manifest.size;
        let (start, end) = range.unwrap_or((0, size));
        if start > end || end > size {
            return Err(ObjectError::Data(format!(
                "range {start}-{end} is outside the object's {size} bytes"
            )));
        }
        let segments = if start == end {
            0..0
        } else {
            layout.segment_range(size, start, end).map_err(data)?
        };
        let cluster = self.genesis()?.cluster_id();
        // Data shards first: with all of them, decoding is only decryption.
        let sources: Vec<ShardSource> = info
            .shards
            .iter()
            .map(|shard| ShardSource {
                index: usize::from(shard.index),
                node: shard.node.clone(),
                api_address: shard.api_address.clone(),
            })
            .collect();
        let mut written = 0u64;
        let total = end - start;
        let (failed, used) = read_segments(
            &manifest,
            id,
            &sources,
            segments,
            requester,
            &cluster,
            |segment, blocks, expected| {
                let refs: Vec<Option<&[u8]>> = blocks.iter().map(|b| b.as_deref()).collect();
                let plaintext =
                    welkin_object::decode_segment(&layout, &key, size, segment, &refs, expected)
                        .map_err(data)?;
                let offset = layout.segment_offset(segment);
                let from = start.saturating_sub(offset) as usize;
                let to = (end - offset).min(plaintext.len() as u64) as usize;
                out.write_all(&plaintext[from..to])?;
                written += (to - from) as u64;
                progress(written, total, "downloading");
                Ok(())
            },
        )?;
        out.flush()?;
        Ok(GetOutcome {
            id: hex::encode(id),
            bytes: written,
            shards_used: used,
            failed_shards: failed,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The node sizes uploads by the manifest (`welkin_types`), the client by its layout
    /// (`welkin_object`): they must agree for every size and layout.
    #[test]
    fn manifest_and_layout_agree_on_every_size() {
        for (k, m, segment_bytes) in [
            (2, 2, 64 * 1024),
            (2, 2, 1 << 20),
            (3, 2, 192 * 1024),
            (8, 4, 4 << 20),
        ] {
            let layout = Layout {
                k,
                m,
                segment_bytes,
            };
            let unit = layout.plaintext_per_segment();
            for size in [0, 1, 47, unit - 1, unit, unit + 1, 3 * unit + 5, 10 * unit] {
                let manifest = ObjectManifest {
                    size,
                    k,
                    m,
                    segment_bytes,
                    roots: vec![Digest::from([0; 32]); usize::from(k + m)],
                    sealed_key: welkin_types::Detachable::new(vec![1]),
                    label: String::new(),
                };
                assert_eq!(manifest.segments(), layout.segments(size), "{size}");
                assert_eq!(
                    manifest.shard_bytes(),
                    layout.shard_bytes(size).expect("valid"),
                    "{size}"
                );
                for segment in 0..manifest.segments() {
                    assert_eq!(
                        manifest.block_bytes(segment),
                        u64::from(layout.block_bytes(size, segment).expect("in range")),
                        "{size} {segment}"
                    );
                }
            }
        }
    }
}
