//! Key generation of a signing key's version, run by the nodes through the log (FROST, see
//! welkin-frost), so that no node ever holds the key.
//!
//! 1. Creating an `ed25519` key (or rotating one) opens a generation among every node of the
//!    cluster, for the cluster's threshold.
//! 2. Each node commits its round-1 package ([`TransitOp::DkgRound1`]). The state machine
//!    checks it ([`welkin_frost::check_round1`]: the proof of knowledge and the commitment
//!    count) and keeps it; the log gives every node the same package from each sender.
//! 3. Once every participant's package is in, the state computes the group's public keys
//!    from them alone ([`welkin_frost::public_keys`]): a value nobody chose.
//! 4. The nodes exchange their secret round-2 shares off the log, check them, and each
//!    reports ([`TransitOp::DkgResult`]): done, with the SHA-256 of the public keys it
//!    computed, or the node whose share failed.
//! 5. When every participant has reported done with the log's public keys, the version's
//!    group key is committed and the version can sign.
//!
//! A bad round-1 package, a wrong digest, or an accusation restarts the generation (the next
//! attempt) without the node at fault; when fewer than the threshold remain, it has failed
//! and says who was excluded. An attempt lasts at most [`ATTEMPT_MS`] of block time: the
//! nodes that have not sent their round-1 package (or, after round 1, reported) by then are
//! left out of the next one, so a crashed node cannot stall a generation. A node that lost
//! its secret state in a restart accuses itself and leaves.
//!
//! The nodes find the generations they have to run in one list ([`open_list`], at most
//! [`MAX_OPEN`]), so that a node polls one value rather than every key. An accusation cannot be checked here, so a lying node can make
//! an honest one leave: a cost in liveness only, never a key someone alone knows (settling
//! accusations from revealed, signed shares is future work).
//!
//! ```text
//! Dkg := 0x01 | attempt u32 | threshold u16 | participants u16 (index u16)*
//!        | round1 u16 (index u16 | package u16 len)* | public (0 | 1 u16 len bytes)
//!        | done u16 (index u16)* | excluded u16 (index u16 | reason str)*
//!        | failed bool
//! ```

use super::{TransitKey, key};
use crate::{
    Env, Overlay, Snapshot, keys,
    secrets::SecretsResult,
    stored::{Reader, StoredError, Writer, read_list, write_list},
};
use std::collections::BTreeMap;
use welkin_frost::{DkgConfig, Index, PublicKeys, Round1Package};
use welkin_types::{
    Digest,
    secrets::transit::{DkgOutcome, TransitOp},
};

const VERSION: u8 = 1;

/// Most key generations open at once: a signing key's creation or rotation is refused
/// beyond it (each open one costs every node a little work on every poll).
pub const MAX_OPEN: usize = 64;

/// Block time one attempt may take before the nodes that have not done their part are left
/// out (30 s: a round trip through the log and one p2p exchange take well under a second).
pub const ATTEMPT_MS: u64 = 30_000;

/// An open key generation, as the nodes find it in [`open_list`]: what their steps name.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Open {
    /// The transit mount's path.
    pub mount: String,
    /// The mount's id (unique per enablement).
    pub mount_id: Digest,
    /// The key's name.
    pub name: String,
    /// The key's id.
    pub key_id: Digest,
    /// The version being generated.
    pub version: u64,
}

const OPEN_VERSION: u8 = 1;

/// Encodes the open list:
/// `0x01 | count u16 | (mount str | mount_id [32] | name str | key_id [32] | version u64)*`.
fn encode_open(list: &[Open]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(OPEN_VERSION);
    write_list(&mut w, list, |w, open| {
        w.str(&open.mount);
        w.raw(open.mount_id.as_ref());
        w.str(&open.name);
        w.raw(open.key_id.as_ref());
        w.u64(open.version);
    });
    w.0
}

/// Decodes the open list (the value at [`keys::transit_dkgs_open`]).
pub fn decode_open(value: &[u8]) -> Result<Vec<Open>, StoredError> {
    let mut r = Reader::new("open key generations", value);
    r.version(OPEN_VERSION)?;
    let list = read_list(&mut r, |r| {
        Ok(Open {
            mount: r.str()?,
            mount_id: Digest::from(r.bytes32()?),
            name: r.str()?,
            key_id: Digest::from(r.bytes32()?),
            version: r.u64()?,
        })
    })?;
    r.end()?;
    Ok(list)
}

fn open_list<S: Snapshot>(state: &Overlay<'_, S>) -> Vec<Open> {
    state
        .decoded(&keys::transit_dkgs_open(), decode_open)
        .unwrap_or_default()
}

/// Refuses a new key generation when [`MAX_OPEN`] are running.
pub(in crate::secrets) fn check_room<S: Snapshot>(
    state: &Overlay<'_, S>,
) -> Result<(), SecretsResult> {
    if open_list(state).len() >= MAX_OPEN {
        return Err(SecretsResult::refused(
            400,
            format!(
                "{MAX_OPEN} key generations are running, the limit: try again once they have \
                 finished (each takes a few seconds)"
            ),
        ));
    }
    Ok(())
}

/// Opens the generation of `version` of the signing key `key_id` among `env`'s nodes (the
/// caller checked [`check_room`]).
pub(in crate::secrets) fn open<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    env: &Env,
    (mount, mount_id): (&str, Digest),
    name: &str,
    key_id: Digest,
    version: u64,
) {
    let dkg = Dkg::start(env);
    schedule(state, &key_id, version, dkg.attempt);
    state.put(keys::transit_dkg(&key_id, version), dkg.encode());
    let mut list = open_list(state);
    list.push(Open {
        mount: mount.to_string(),
        mount_id,
        name: name.to_string(),
        key_id,
        version,
    });
    state.put(keys::transit_dkgs_open(), encode_open(&list));
}

/// Takes the generations of `key_id` (every version) off the open list and deletes them:
/// the key is gone.
pub(in crate::secrets) fn forget_key<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    key_id: &Digest,
    versions: u64,
) {
    for version in 1..=versions {
        state.delete(keys::transit_dkg(key_id, version));
    }
    close(state, |open| open.key_id == *key_id);
}

/// Takes the generations of a disabled mount's keys off the open list, deleting them.
pub(in crate::secrets) fn forget_mount<S: Snapshot>(state: &mut Overlay<'_, S>, mount_id: &Digest) {
    for open in open_list(state)
        .iter()
        .filter(|open| open.mount_id == *mount_id)
    {
        state.delete(keys::transit_dkg(&open.key_id, open.version));
    }
    close(state, |open| open.mount_id == *mount_id);
}

/// Removes the open generations `which` selects from the list.
fn close<S: Snapshot>(state: &mut Overlay<'_, S>, which: impl Fn(&Open) -> bool) {
    let mut list = open_list(state);
    let before = list.len();
    list.retain(|open| !which(open));
    if list.len() != before {
        state.put(keys::transit_dkgs_open(), encode_open(&list));
    }
}

/// Schedules the deadline of an attempt.
fn schedule<S: Snapshot>(state: &mut Overlay<'_, S>, key_id: &Digest, version: u64, attempt: u32) {
    let mut item = key_id.as_ref().to_vec();
    item.extend_from_slice(&version.to_be_bytes());
    item.extend_from_slice(&attempt.to_be_bytes());
    state.schedule.dkg.push(item);
}

/// Leaves out the nodes of every attempt past its deadline that have not done their part.
pub(crate) fn sweep<S: Snapshot>(state: &mut Overlay<'_, S>, now: u64) {
    crate::expiry::sweep(state, crate::expiry::Queue::Dkg, now, |state, item| {
        if item.len() != 32 + 8 + 4 {
            let queue = crate::expiry::Queue::Dkg.name();
            let error =
                StoredError::new("key generation deadline", format!("{} bytes", item.len()));
            state.corrupt(keys::queue_head(queue), error);
            return;
        }
        let key_id = Digest::from(<[u8; 32]>::try_from(&item[..32]).expect("32 bytes"));
        let version = u64::from_be_bytes(item[32..40].try_into().expect("8 bytes"));
        let attempt = u32::from_be_bytes(item[40..].try_into().expect("4 bytes"));
        let dkg_key = keys::transit_dkg(&key_id, version);
        let Some(mut dkg) = state.decoded(&dkg_key, Dkg::decode) else {
            return;
        };
        if dkg.attempt != attempt || dkg.failed {
            return;
        }
        let (silent, stage): (Vec<Index>, _) = match dkg.public {
            None => (
                dkg.participants
                    .iter()
                    .copied()
                    .filter(|i| !dkg.round1.contains_key(i))
                    .collect(),
                "its round-1 package",
            ),
            Some(_) => (
                dkg.participants
                    .iter()
                    .copied()
                    .filter(|i| !dkg.done.contains(i))
                    .collect(),
                "its result",
            ),
        };
        if silent.is_empty() {
            return;
        }
        let reason = format!(
            "sent no {stage} within {} s of block time in attempt {attempt}",
            ATTEMPT_MS / 1_000
        );
        for index in silent {
            dkg.exclude(index, reason.clone());
        }
        // One next attempt for all of them.
        dkg.attempt = attempt + 1;
        next_attempt(state, &key_id, version, &dkg);
        state.put(dkg_key, dkg.encode());
    });
}

/// After an exclusion: the next attempt's deadline, or off the open list if it failed.
fn next_attempt<S: Snapshot>(state: &mut Overlay<'_, S>, key_id: &Digest, version: u64, dkg: &Dkg) {
    if dkg.failed {
        close(state, |open| {
            open.key_id == *key_id && open.version == version
        });
    } else {
        schedule(state, key_id, version, dkg.attempt);
    }
}

/// A key generation in progress (or failed) for one version of a signing key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Dkg {
    /// Which attempt: each restart without a culprit is the next.
    pub attempt: u32,
    /// Signers a signature needs.
    pub threshold: u16,
    /// The nodes taking part, ascending.
    pub participants: Vec<Index>,
    /// The round-1 packages committed so far, by sender.
    pub round1: BTreeMap<Index, Vec<u8>>,
    /// The group's public keys (welkin-frost encoding), once every package is in.
    pub public: Option<Vec<u8>>,
    /// The nodes that reported done with the log's public keys.
    pub done: Vec<Index>,
    /// Nodes left out of later attempts, and why.
    pub excluded: Vec<(Index, String)>,
    /// Fewer than `threshold` nodes remain: this version will never sign.
    pub failed: bool,
}

impl Dkg {
    /// A first attempt among `env`'s nodes, for its threshold.
    pub fn start(env: &Env) -> Dkg {
        Dkg {
            attempt: 0,
            threshold: env.threshold,
            participants: (0..env.members.len() as Index).collect(),
            round1: BTreeMap::new(),
            public: None,
            done: Vec::new(),
            excluded: Vec::new(),
            failed: false,
        }
    }

    fn config(&self) -> Option<DkgConfig> {
        DkgConfig::new(self.participants.iter().copied(), self.threshold).ok()
    }

    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u32(self.attempt as usize);
        w.u16(self.threshold.into());
        write_list(&mut w, &self.participants, |w, i| w.u16((*i).into()));
        let round1: Vec<_> = self.round1.iter().collect();
        write_list(&mut w, &round1, |w, (i, package)| {
            w.u16((**i).into());
            w.u16(package.len());
            w.raw(package);
        });
        match &self.public {
            None => w.u8(0),
            Some(public) => {
                w.u8(1);
                w.u16(public.len());
                w.raw(public);
            }
        }
        write_list(&mut w, &self.done, |w, i| w.u16((*i).into()));
        write_list(&mut w, &self.excluded, |w, (i, reason)| {
            w.u16((*i).into());
            w.str(reason);
        });
        w.u8(u8::from(self.failed));
        w.0
    }

    /// Decodes a stored generation.
    pub fn decode(value: &[u8]) -> Result<Dkg, StoredError> {
        let mut r = Reader::new("transit key generation", value);
        r.version(VERSION)?;
        let attempt = r.u32()? as u32;
        let threshold = r.u16()? as Index;
        let participants = read_list(&mut r, |r| Ok(r.u16()? as Index))?;
        let round1 = read_list(&mut r, |r| {
            let index = r.u16()? as Index;
            let len = r.u16()?;
            Ok((index, r.raw(len)?.to_vec()))
        })?
        .into_iter()
        .collect();
        let public = match r.u8()? {
            0 => None,
            1 => {
                let len = r.u16()?;
                Some(r.raw(len)?.to_vec())
            }
            other => return Err(r.error(format!("public keys tag {other}"))),
        };
        let dkg = Dkg {
            attempt,
            threshold,
            participants,
            round1,
            public,
            done: read_list(&mut r, |r| Ok(r.u16()? as Index))?,
            excluded: read_list(&mut r, |r| Ok((r.u16()? as Index, r.str()?)))?,
            failed: r.bool()?,
        };
        r.end()?;
        Ok(dkg)
    }

    /// Leaves `index` out and starts the next attempt (or fails, if too few remain).
    fn exclude(&mut self, index: Index, reason: String) {
        self.participants.retain(|p| *p != index);
        self.excluded.push((index, reason));
        self.attempt += 1;
        self.round1.clear();
        self.public = None;
        self.done.clear();
        self.failed = self.participants.len() < usize::from(self.threshold.max(2));
    }
}

/// SHA-256 of a public keys encoding, as nodes report it.
pub fn public_keys_digest(encoded: &[u8]) -> [u8; 32] {
    use sha2::Digest as _;
    sha2::Sha256::digest(encoded).into()
}

/// Runs one key generation step sent by node `from`.
pub(in crate::secrets) fn step<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    from: Index,
    op: &TransitOp,
) -> SecretsResult {
    let (key_id, version, attempt) = match op {
        TransitOp::DkgRound1 {
            key_id,
            version,
            attempt,
            ..
        }
        | TransitOp::DkgResult {
            key_id,
            version,
            attempt,
            ..
        } => (*key_id, *version, *attempt),
        _ => unreachable!("only key generation steps come here"),
    };
    let stale = || SecretsResult::refused(400, "no such key generation attempt is open");
    let Some((mount, mut transit_key)) = key(state, op.mount(), op.name()) else {
        return stale();
    };
    let dkg_key = keys::transit_dkg(&transit_key.id, version);
    let Some(mut dkg) = state.decoded(&dkg_key, Dkg::decode) else {
        return stale();
    };
    if transit_key.id != key_id
        || dkg.attempt != attempt
        || dkg.failed
        || !dkg.participants.contains(&from)
    {
        return stale();
    }
    let Some(config) = dkg.config() else {
        dkg.failed = true;
        state.put(dkg_key, dkg.encode());
        return SecretsResult::refused(400, "the key generation cannot run with these nodes");
    };
    match op {
        TransitOp::DkgRound1 { package, .. } => {
            if dkg.round1.contains_key(&from) {
                return SecretsResult::refused(400, "this node's round-1 package is in already");
            }
            let checked = Round1Package::decode(package)
                .map_err(|e| e.to_string())
                .and_then(|decoded| {
                    welkin_frost::check_round1(&config, from, &decoded).map_err(|e| e.to_string())
                });
            if let Err(reason) = checked {
                dkg.exclude(from, format!("bad round-1 package: {reason}"));
                next_attempt(state, &key_id, version, &dkg);
            } else {
                dkg.round1.insert(from, package.clone());
                if dkg.round1.len() == dkg.participants.len() {
                    let attempt = dkg.attempt;
                    finish_round1(&mut dkg, &config);
                    if dkg.attempt != attempt || dkg.failed {
                        next_attempt(state, &key_id, version, &dkg);
                    }
                }
            }
        }
        TransitOp::DkgResult { outcome, .. } => match (outcome, &dkg.public) {
            (_, None) => {
                return SecretsResult::refused(400, "round 1 of this key generation is open");
            }
            (DkgOutcome::Done { public_keys }, Some(public)) => {
                if *public_keys != public_keys_digest(public) {
                    dkg.exclude(from, "reported other public keys than the log's".into());
                    next_attempt(state, &key_id, version, &dkg);
                } else if !dkg.done.contains(&from) {
                    dkg.done.push(from);
                    if dkg.done.len() == dkg.participants.len() {
                        let key_state = keys::transit_key(&mount.id, op.name());
                        return activate(
                            state,
                            key_state,
                            &mut transit_key,
                            version,
                            dkg_key,
                            &dkg,
                        );
                    }
                }
            }
            (DkgOutcome::Failed { culprit }, Some(_)) => {
                if *culprit == from {
                    dkg.exclude(
                        from,
                        "withdrew: it lost its secret state (a restart)".into(),
                    );
                } else if !dkg.participants.contains(culprit) {
                    dkg.exclude(from, format!("accused node {culprit}, not a participant"));
                } else {
                    dkg.exclude(*culprit, format!("node {from} found its round-2 share bad"));
                }
                next_attempt(state, &key_id, version, &dkg);
            }
        },
        _ => unreachable!("only key generation steps come here"),
    }
    state.put(dkg_key, dkg.encode());
    SecretsResult::Done
}

/// Every round-1 package is in: the group's public keys, from them alone.
fn finish_round1(dkg: &mut Dkg, config: &DkgConfig) {
    let mut packages = BTreeMap::new();
    for (index, bytes) in &dkg.round1 {
        let package = Round1Package::decode(bytes).expect("checked when it was committed");
        packages.insert(*index, package);
    }
    match welkin_frost::public_keys(config, &packages) {
        Ok(public) => dkg.public = Some(public.encode()),
        Err(error) => match error.culprit() {
            Some(culprit) => dkg.exclude(culprit, error.to_string()),
            None => {
                dkg.failed = true;
                dkg.excluded.push((Index::MAX, error.to_string()));
            }
        },
    }
}

/// Every participant holds its share of the log's public keys: the version can sign.
fn activate<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    key_state: Digest,
    key: &mut TransitKey,
    version: u64,
    dkg_key: Digest,
    dkg: &Dkg,
) -> SecretsResult {
    let public = dkg.public.as_ref().expect("reports need the public keys");
    let group = PublicKeys::decode(public)
        .expect("made by public_keys")
        .group_key();
    let Some(slot) = usize::try_from(version)
        .ok()
        .and_then(|v| v.checked_sub(1))
        .and_then(|i| key.versions.get_mut(i))
    else {
        return SecretsResult::refused(400, "no such key version");
    };
    slot.public_key = Some(group);
    state.put(keys::transit_public_keys(&key.id, version), public.clone());
    state.delete(dkg_key);
    let key_id = key.id;
    close(state, |open| {
        open.key_id == key_id && open.version == version
    });
    state.put(key_state, key.encode());
    SecretsResult::Done
}

#[cfg(test)]
mod tests;
