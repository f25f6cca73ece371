//! Answering a batch of requests: one Merkle tree and one signature per version present in
//! the batch, then one reply per request carrying its own path through the tree.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use ed25519_dalek::Signer as _;

use crate::{
    keys::{Keys, Online},
    merkle::Tree,
    request::{self, Refusal, Request, Version},
    time::{NS_PER_S, NS_PER_US, Reading, draft07_timestamp, in_units},
    wire::{encode, frame},
};

/// The smallest radius an RFC reply claims, in seconds: RFC 10049 asks servers that do not
/// track leap seconds (this one smears them as its source does) for at least 3.
pub const MIN_RFC_RADIUS_S: u32 = 3;

/// What the server did with the packets it received; plain counters for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests answered.
    pub answered: AtomicU64,
    /// Packets that were not well-formed requests, including oversized ones.
    pub malformed: AtomicU64,
    /// Packets smaller than the minimum request size (refused against amplification).
    pub too_small: AtomicU64,
    /// Requests offering no version this server speaks.
    pub unsupported_version: AtomicU64,
    /// Requests naming another server's key in `SRV`.
    pub other_server: AtomicU64,
    /// Well-formed requests left unanswered because there was no certified time.
    pub no_time: AtomicU64,
    /// Signed responses made: one per version present in a batch, so `answered / signatures`
    /// is the mean number of requests a signature covers.
    pub signatures: AtomicU64,
}

impl Counters {
    fn refused(&self, refusal: &Refusal) {
        let counter = match refusal {
            Refusal::TooSmall(_) => &self.too_small,
            Refusal::Unsupported(_) => &self.unsupported_version,
            Refusal::OtherServer => &self.other_server,
            Refusal::Oversized(_)
            | Refusal::Malformed(_)
            | Refusal::BadVersions(_)
            | Refusal::NotRequest(_) => &self.malformed,
        };
        counter.fetch_add(1, Relaxed);
    }
}

/// Answers a batch of request packets at the time `reading`: one entry per packet, `None` for
/// packets that get no reply. With no reading nothing is answered. Never panics on any input.
pub fn respond(
    batch: &[&[u8]],
    reading: Option<Reading>,
    keys: &mut Keys,
    counters: &Counters,
) -> Vec<Option<Vec<u8>>> {
    let srv = *keys.srv();
    let requests: Vec<Option<Request<'_>>> = batch
        .iter()
        .map(|packet| match request::parse(packet, Some(&srv)) {
            Ok(request) => Some(request),
            Err(refusal) => {
                tracing::debug!(%refusal, "roughtime request refused");
                counters.refused(&refusal);
                None
            }
        })
        .collect();
    let mut replies = vec![None; batch.len()];
    let valid = requests.iter().flatten().count() as u64;
    let Some(reading) = reading else {
        counters.no_time.fetch_add(valid, Relaxed);
        return replies;
    };
    let Some(times) = Times::of(reading) else {
        tracing::warn!(?reading, "radius too large to state: no roughtime replies");
        counters.no_time.fetch_add(valid, Relaxed);
        return replies;
    };
    let online = keys.online(reading.midpoint_ns);
    for version in Version::ALL {
        let members: Vec<usize> = (0..batch.len())
            .filter(|&i| requests[i].as_ref().is_some_and(|r| r.version == version))
            .collect();
        if members.is_empty() {
            continue;
        }
        let leaves: Vec<&[u8]> = members
            .iter()
            .map(|&i| requests[i].as_ref().expect("a member").leaf)
            .collect();
        let tree = Tree::build(version.tree_hash(), &leaves);
        let srep = times.srep(version, &tree.root());
        let signed = [version.response_context(), &srep].concat();
        let signature = online.key.sign(&signed).to_bytes();
        counters.signatures.fetch_add(1, Relaxed);
        for (index, &i) in members.iter().enumerate() {
            let request = requests[i].as_ref().expect("a member");
            let reply = reply(version, request, &tree, index, &srep, &signature, online);
            // Never send more than was received (amplification); our replies are about 600
            // bytes against requests of at least 1024, so this only guards the invariant.
            if reply.len() <= batch[i].len() {
                replies[i] = Some(reply);
                counters.answered.fetch_add(1, Relaxed);
            }
        }
    }
    replies
}

/// The reading in each version's units.
struct Times {
    /// Unix microseconds and radius in microseconds.
    micros: (u64, u32),
    /// Unix seconds and radius in seconds.
    seconds: (u64, u32),
}

impl Times {
    fn of(reading: Reading) -> Option<Self> {
        Some(Self {
            micros: in_units(reading, NS_PER_US, 1)?,
            seconds: in_units(reading, NS_PER_S, MIN_RFC_RADIUS_S)?,
        })
    }

    /// The signed response (`SREP`) of `version` for a tree with `root`.
    fn srep(&self, version: Version, root: &[u8; 32]) -> Vec<u8> {
        match version {
            Version::Draft07 => {
                let (midpoint, radius) = self.micros;
                encode(&[
                    (*b"RADI", &radius.to_le_bytes()),
                    (*b"MIDP", &draft07_timestamp(midpoint).to_le_bytes()),
                    (*b"ROOT", root),
                ])
            }
            Version::Draft12 | Version::Rfc1 => {
                let (midpoint, radius) = self.seconds;
                let supported: Vec<u8> = Version::ALL
                    .iter()
                    .flat_map(|v| v.number().to_le_bytes())
                    .collect();
                encode(&[
                    (*b"VER\0", &version.number().to_le_bytes()),
                    (*b"RADI", &radius.to_le_bytes()),
                    (*b"MIDP", &midpoint.to_le_bytes()),
                    (*b"VERS", &supported),
                    (*b"ROOT", root),
                ])
            }
        }
    }
}

/// One framed reply.
fn reply(
    version: Version,
    request: &Request<'_>,
    tree: &Tree,
    index: usize,
    srep: &[u8],
    signature: &[u8; 64],
    online: &Online,
) -> Vec<u8> {
    let path = tree.path(index);
    let index = (index as u32).to_le_bytes();
    let common = [
        (*b"SIG\0", &signature[..]),
        (*b"NONC", &request.nonce[..]),
        (*b"PATH", &path[..]),
        (*b"SREP", srep),
        (*b"CERT", online.cert(version)),
        (*b"INDX", &index[..]),
    ];
    let extra: ([u8; 4], [u8; 4]) = match version {
        Version::Draft07 => (*b"VER\0", version.number().to_le_bytes()),
        Version::Draft12 | Version::Rfc1 => (*b"TYPE", 1u32.to_le_bytes()),
    };
    let mut entries = common.to_vec();
    entries.push((extra.0, &extra.1));
    frame(&encode(&entries))
}
