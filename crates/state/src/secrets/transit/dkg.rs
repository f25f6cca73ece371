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
//! and says who was excluded. An accusation cannot be checked here, so a lying node can make
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
            } else {
                dkg.round1.insert(from, package.clone());
                if dkg.round1.len() == dkg.participants.len() {
                    finish_round1(&mut dkg, &config);
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
                if *culprit == from || !dkg.participants.contains(culprit) {
                    dkg.exclude(from, format!("accused node {culprit}, not a participant"));
                } else {
                    dkg.exclude(*culprit, format!("node {from} found its round-2 share bad"));
                }
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
    state.put(key_state, key.encode());
    SecretsResult::Done
}

#[cfg(test)]
mod tests;
