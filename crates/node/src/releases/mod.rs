//! Releases: partial signatures that open secrets, sent only for committed, allowed reads.
//!
//! When a block commits, the state machine says which reads its policies allowed (see
//! `welkin_state::secrets`). For each, this node signs its partial over the value's target
//! with its key share, encrypts it (HPKE) to the one-time key the read names, and sends the
//! envelope to every peer: any node can then hand the reader all the envelopes at once, and
//! the node serving a Vault client (which reads on the client's behalf) has them locally.
//! Envelopes are opaque to everyone but the reader, so a node keeps one slot per sender per
//! read and cannot judge them; the reader verifies each partial and the serving node blocks
//! a peer whose partial does not verify (see [`crate::api::vault`]).
//!
//! Everything here is bounded: [`ReleasesConfig::max_reads`] reads are held, each for
//! [`ReleasesConfig::ttl`]; a peer may open at most [`ReleasesConfig::max_early_per_peer`]
//! reads this node has not committed yet (a peer a block ahead sends envelopes first).

pub(crate) mod actor;
pub(crate) mod reader;
pub(crate) mod targets;
mod wire;

pub use wire::ReleaseBatch;

use std::{
    collections::{BTreeMap, HashMap, VecDeque},
    sync::{Arc, Mutex},
    time::Duration,
};
use welkin_state::secrets::{SecretsResult, ValueRef};
use welkin_types::{Digest, TxId};

/// Limits of the release registry.
#[derive(Clone, Copy, Debug)]
pub struct ReleasesConfig {
    /// Most reads (and secrets results) held at once (default 65,536).
    pub max_reads: usize,
    /// How long a read's envelopes are kept for its reader (default 60 s).
    pub ttl: Duration,
    /// Most reads one peer may announce before this node has committed them (default 4,096).
    pub max_early_per_peer: usize,
}

impl Default for ReleasesConfig {
    fn default() -> Self {
        Self {
            max_reads: 65_536,
            ttl: Duration::from_secs(60),
            max_early_per_peer: 4_096,
        }
    }
}

/// A committed, allowed read: what its reader needs besides the envelopes.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReadGrant {
    /// The height it committed at.
    pub height: u64,
    /// The version read.
    pub version: u64,
    /// The value's target, as the state machine computed it.
    pub target: Digest,
    /// The reader's one-time X25519 key.
    pub reader: [u8; 32],
    /// Where the sealed value (welkin-sealed encoding) is: this node's value store holds
    /// its bytes under the transaction that wrote it.
    pub sealed: ValueRef,
}

/// A committed, allowed transit request (a decryption or a MAC): partials over each target,
/// in the request's order, go to the reader in one envelope per member.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TargetsGrant {
    /// The height it committed at.
    pub height: u64,
    /// The targets, as the state machine computed them (at most
    /// [`welkin_sealed::MAX_TARGETS`]).
    pub targets: Vec<Digest>,
    /// The reader's one-time X25519 key.
    pub reader: [u8; 32],
}

/// What this node releases for one committed request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Grant {
    /// A KV read: one target, one sealed value.
    Read(ReadGrant),
    /// A transit request: several targets, the reader holds what they open.
    Targets(TargetsGrant),
}

/// What a node holds for one read: the grant once committed here, and the envelopes
/// received, by member index.
#[derive(Clone, Debug, Default)]
pub struct Release {
    /// The grant, once this node has committed the read.
    pub grant: Option<ReadGrant>,
    /// The grant of a transit request, once this node has committed it.
    pub targets: Option<TargetsGrant>,
    /// One envelope per member that sent one.
    pub envelopes: BTreeMap<u32, Vec<u8>>,
    /// The sealed value's bytes, held in memory when the block that allowed the read also
    /// destroyed them (an unwrap uses its response up): the files are gone at once, and the
    /// reader still gets the value for as long as the release is held.
    pub value: Option<Vec<u8>>,
}

struct Entry {
    release: Release,
    /// The peer that announced it before this node committed it (counts against its quota
    /// until the grant arrives).
    early_by: Option<u32>,
    changed: Arc<tokio::sync::Notify>,
}

#[derive(Default)]
struct Inner {
    entries: HashMap<TxId, Entry>,
    /// Insertion order with insertion time (ms), for expiry and eviction.
    order: VecDeque<(TxId, u64)>,
    results: HashMap<TxId, SecretsResult>,
    results_order: VecDeque<TxId>,
    early: HashMap<u32, usize>,
}

/// Gives back one of `peer`'s early reads.
fn release_quota(inner: &mut Inner, peer: u32) {
    if let Some(count) = inner.early.get_mut(&peer) {
        *count = count.saturating_sub(1);
    }
}

/// The registry shared by the executor (grants), the releaser (envelopes) and the API
/// (readers).
#[derive(Clone)]
pub(crate) struct Releases {
    inner: Arc<Mutex<Inner>>,
    config: ReleasesConfig,
}

/// Why an envelope was not kept.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Refused {
    /// The sender already filled its slot for this read.
    Duplicate,
    /// The sender announced too many reads this node has not committed.
    OverQuota,
}

impl Releases {
    pub(crate) fn new(config: ReleasesConfig) -> Self {
        Self {
            inner: Arc::default(),
            config,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().expect("releases lock is never poisoned")
    }

    /// Records a block's secrets results (for the API) and its grants; returns the grants,
    /// for which this node releases its partial.
    pub(crate) fn commit(
        &self,
        height: u64,
        results: Vec<(TxId, SecretsResult)>,
        now_ms: u64,
    ) -> Vec<(TxId, Grant)> {
        let mut inner = self.lock();
        let mut grants = Vec::new();
        for (id, result) in results {
            let grant = match &result {
                SecretsResult::Released {
                    version,
                    target,
                    reader,
                    sealed,
                } => Some(Grant::Read(ReadGrant {
                    height,
                    version: *version,
                    target: *target,
                    reader: *reader,
                    sealed: *sealed,
                })),
                SecretsResult::ReleasedTargets { targets, reader } => {
                    Some(Grant::Targets(TargetsGrant {
                        height,
                        targets: targets.clone(),
                        reader: *reader,
                    }))
                }
                _ => None,
            };
            if let Some(grant) = grant {
                self.entry(&mut inner, id, None, now_ms);
                let entry = inner.entries.get_mut(&id).expect("just inserted");
                match &grant {
                    Grant::Read(read) => entry.release.grant = Some(read.clone()),
                    Grant::Targets(targets) => entry.release.targets = Some(targets.clone()),
                }
                let early_by = entry.early_by.take();
                entry.changed.notify_waiters();
                if let Some(peer) = early_by {
                    release_quota(&mut inner, peer);
                }
                grants.push((id, grant));
            }
            if inner.results.insert(id, result).is_none() {
                inner.results_order.push_back(id);
            }
            while inner.results_order.len() > self.config.max_reads {
                if let Some(old) = inner.results_order.pop_front() {
                    inner.results.remove(&old);
                }
            }
        }
        grants
    }

    /// The entry for `id`, created if missing (evicting the oldest beyond the limit).
    fn entry(&self, inner: &mut Inner, id: TxId, early_by: Option<u32>, now_ms: u64) {
        if inner.entries.contains_key(&id) {
            return;
        }
        inner.entries.insert(
            id,
            Entry {
                release: Release::default(),
                early_by,
                changed: Arc::new(tokio::sync::Notify::new()),
            },
        );
        if let Some(peer) = early_by {
            *inner.early.entry(peer).or_default() += 1;
        }
        inner.order.push_back((id, now_ms));
        let ttl = self.config.ttl.as_millis() as u64;
        while let Some(&(old, at)) = inner.order.front() {
            if inner.order.len() <= self.config.max_reads && now_ms.saturating_sub(at) <= ttl {
                break;
            }
            inner.order.pop_front();
            if let Some(peer) = inner.entries.remove(&old).and_then(|e| e.early_by) {
                release_quota(inner, peer);
            }
        }
    }

    /// Keeps `envelope` from member `from` for read `id`.
    pub(crate) fn add_envelope(
        &self,
        id: TxId,
        from: u32,
        envelope: Vec<u8>,
        now_ms: u64,
    ) -> Result<(), Refused> {
        let mut inner = self.lock();
        if !inner.entries.contains_key(&id) {
            if inner.early.get(&from).copied().unwrap_or(0) >= self.config.max_early_per_peer {
                return Err(Refused::OverQuota);
            }
            self.entry(&mut inner, id, Some(from), now_ms);
        }
        let entry = inner
            .entries
            .get_mut(&id)
            .expect("present or just inserted");
        if entry.release.envelopes.contains_key(&from) {
            return Err(Refused::Duplicate);
        }
        entry.release.envelopes.insert(from, envelope);
        entry.changed.notify_waiters();
        Ok(())
    }

    /// What this node holds for read `id`, and a notifier that fires when it changes.
    pub(crate) fn get(&self, id: &TxId) -> Option<(Release, Arc<tokio::sync::Notify>)> {
        let inner = self.lock();
        inner
            .entries
            .get(id)
            .map(|e| (e.release.clone(), e.changed.clone()))
    }

    /// Keeps `bytes` for read `id`'s reader (see [`Release::value`]).
    pub(crate) fn hold_value(&self, id: &TxId, bytes: Vec<u8>) {
        if let Some(entry) = self.lock().entries.get_mut(id) {
            entry.release.value = Some(bytes);
            entry.changed.notify_waiters();
        }
    }

    /// The secrets result of transaction `id`, if this node committed it recently.
    pub(crate) fn result(&self, id: &TxId) -> Option<SecretsResult> {
        self.lock().results.get(id).cloned()
    }

    /// Reads held now (for tests and metrics).
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.lock().entries.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use welkin_types::hash_parts;

    fn id(n: u8) -> TxId {
        hash_parts(&[&[n]])
    }

    fn released(n: u8) -> (TxId, SecretsResult) {
        (
            id(n),
            SecretsResult::Released {
                version: 1,
                target: hash_parts(&[b"t", &[n]]),
                reader: [n; 32],
                sealed: ValueRef {
                    tx: hash_parts(&[b"w", &[n]]),
                    digest: hash_parts(&[b"d", &[n]]),
                },
            },
        )
    }

    #[test]
    fn one_slot_per_sender_and_grants_join_early_envelopes() {
        let releases = Releases::new(ReleasesConfig::default());
        releases.add_envelope(id(1), 2, vec![1], 0).expect("kept");
        assert_eq!(
            releases.add_envelope(id(1), 2, vec![9], 0),
            Err(Refused::Duplicate)
        );
        let grants = releases.commit(5, vec![released(1)], 0);
        assert_eq!(grants.len(), 1);
        assert!(matches!(grants[0].1, Grant::Read(_)));
        let (release, _) = releases.get(&id(1)).expect("held");
        assert_eq!(
            release.grant.expect("granted").sealed.tx,
            hash_parts(&[b"w", &[1]])
        );
        assert_eq!(release.envelopes.get(&2), Some(&vec![1]));
    }

    #[test]
    fn transit_results_grant_their_targets_in_order() {
        let releases = Releases::new(ReleasesConfig::default());
        let targets = vec![hash_parts(&[b"a"]), hash_parts(&[b"b"])];
        let result = SecretsResult::ReleasedTargets {
            targets: targets.clone(),
            reader: [4; 32],
        };
        let grants = releases.commit(7, vec![(id(3), result)], 0);
        let expected = TargetsGrant {
            height: 7,
            targets,
            reader: [4; 32],
        };
        assert_eq!(grants, vec![(id(3), Grant::Targets(expected.clone()))]);
        let (release, _) = releases.get(&id(3)).expect("held");
        assert_eq!(release.targets, Some(expected));
        assert!(release.grant.is_none());
    }

    #[test]
    fn a_peer_cannot_fill_the_registry_with_reads_never_committed() {
        let releases = Releases::new(ReleasesConfig {
            max_early_per_peer: 3,
            ..ReleasesConfig::default()
        });
        for n in 0..3 {
            releases
                .add_envelope(id(n), 1, vec![n], 0)
                .expect("within quota");
        }
        assert_eq!(
            releases.add_envelope(id(9), 1, vec![9], 0),
            Err(Refused::OverQuota)
        );
        // Another peer has its own quota, and a commit frees the first one's.
        releases
            .add_envelope(id(9), 2, vec![9], 0)
            .expect("other peer");
        releases.commit(1, vec![released(0)], 0);
        releases
            .add_envelope(id(10), 1, vec![10], 0)
            .expect("quota freed");
    }

    #[test]
    fn reads_expire_and_the_registry_stays_bounded() {
        let releases = Releases::new(ReleasesConfig {
            max_reads: 4,
            ttl: Duration::from_secs(60),
            max_early_per_peer: 100,
        });
        for n in 0..10 {
            releases.add_envelope(id(n), 0, vec![n], 0).expect("kept");
        }
        assert_eq!(releases.len(), 4);
        releases
            .add_envelope(id(50), 0, vec![], 61_000)
            .expect("kept");
        assert_eq!(releases.len(), 1, "older than the ttl");
        assert!(releases.get(&id(9)).is_none());
    }
}
