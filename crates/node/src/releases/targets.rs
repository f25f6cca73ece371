//! The reader's side of a transit request: opens each member's batch envelope, recovers the
//! cluster's signature over every target from t members' partials, and hands each signature
//! to a check that says whether it is the cluster's.
//!
//! The check is the proof, so that the honest case costs no per-partial verification (the
//! fast path, as in [`super::reader::ReadOpener`]):
//! - for a ciphertext, opening it (the identity-based decryption and the AEAD) succeeds only
//!   with the cluster's signature over its target;
//! - for a MAC, the recovered signature is verified against the cluster public key.
//!
//! Only if some check fails is every partial verified against its sender's share
//! commitment: a member with a false partial is named (the caller blocks it), and the
//! targets are recovered again from verified partials only. A check that still fails then is
//! the request's own fault (a ciphertext altered by the client), never a member's, and that
//! item comes back as `None`.

use super::{Release, TargetsGrant};
use commonware_cryptography::bls12381::primitives::{ops::threshold, variant::PartialSignature};
use std::collections::{BTreeMap, BTreeSet};
use welkin_sealed::{ReaderKey, TargetsContext};
use welkin_types::{ClusterSignature, Digest, Sharing, TxId, Variant, namespace};

/// What a request opened: its grant and one result per target, in order (`None`: the
/// cluster's signature did not pass the check, so the item itself is invalid).
pub type OpenedTargets<T> = (TargetsGrant, Vec<Option<T>>);

/// Gathers one transit request's envelopes as they arrive (see the module docs).
///
/// It owns what it needs, so that a caller can move it into a blocking task for each
/// [`Self::step`] (HPKE opens, recoveries and checks are milliseconds of CPU).
pub struct TargetsOpener {
    sharing: Sharing,
    cluster_id: Digest,
    id: TxId,
    reader: ReaderKey,
    seen: BTreeSet<u32>,
    grant: Option<TargetsGrant>,
    unverified: BTreeMap<u32, Vec<PartialSignature<Variant>>>,
    verified: BTreeMap<u32, Vec<PartialSignature<Variant>>>,
    verifying: bool,
    liars: Vec<(u32, String)>,
}

impl TargetsOpener {
    /// An opener for request `id`, whose partials are sealed to `reader`.
    pub fn new(sharing: &Sharing, cluster_id: Digest, id: TxId, reader: ReaderKey) -> Self {
        Self {
            sharing: sharing.clone(),
            cluster_id,
            id,
            reader,
            seen: BTreeSet::new(),
            grant: None,
            unverified: BTreeMap::new(),
            verified: BTreeMap::new(),
            verifying: false,
            liars: Vec::new(),
        }
    }

    /// Takes in what a node holds for the request now; once t members' partials pass,
    /// returns each target's result of `check` (called with the target's index, the target
    /// and the recovered signature). Envelopes already seen are skipped.
    pub fn step<T>(
        &mut self,
        release: &Release,
        check: &mut impl FnMut(usize, &Digest, &ClusterSignature) -> Option<T>,
    ) -> Option<OpenedTargets<T>> {
        if self.grant.is_none() {
            self.grant = Some(release.targets.clone()?);
        }
        let grant = self.grant.clone().expect("set above");
        let context = TargetsContext {
            cluster_id: self.cluster_id,
            read_id: self.id,
            targets: &grant.targets,
        };
        for (&index, envelope) in &release.envelopes {
            if !self.seen.insert(index) {
                continue;
            }
            match self.reader.open_partials(&context, envelope) {
                Ok(partials) => match partials.iter().find(|p| p.index.get() != index) {
                    Some(other) => self.liars.push((
                        index,
                        format!("sent a partial under index {}", other.index.get()),
                    )),
                    None => {
                        self.unverified.insert(index, partials);
                    }
                },
                Err(error) => self.liars.push((
                    index,
                    format!("sent an envelope that does not open: {error}"),
                )),
            }
        }
        let need = self.sharing.required() as usize;
        if !self.verifying && self.unverified.len() >= need {
            let results = self.recover_and_check(&grant, &self.unverified, check);
            if results.iter().all(Option::is_some) {
                return Some((grant, results));
            }
            // A false partial, or an item the cluster's signature does not pass: verifying
            // every partial tells which.
            self.verifying = true;
        }
        if self.verifying {
            for (index, partials) in std::mem::take(&mut self.unverified) {
                let false_at = grant.targets.iter().zip(&partials).position(|(target, p)| {
                    threshold::verify_message::<Variant>(
                        &self.sharing,
                        namespace::SEAL,
                        target.as_ref(),
                        p,
                    )
                    .is_err()
                });
                match false_at {
                    Some(at) => self.liars.push((
                        index,
                        format!("sent a partial for target {at} that does not verify"),
                    )),
                    None => {
                        self.verified.insert(index, partials);
                    }
                }
            }
        }
        if self.verified.len() < need {
            return None;
        }
        let results = self.recover_and_check(&grant, &self.verified, check);
        Some((grant, results))
    }

    /// Recovers each target's signature from the first t senders' partials and checks it.
    fn recover_and_check<T>(
        &self,
        grant: &TargetsGrant,
        partials: &BTreeMap<u32, Vec<PartialSignature<Variant>>>,
        check: &mut impl FnMut(usize, &Digest, &ClusterSignature) -> Option<T>,
    ) -> Vec<Option<T>> {
        let need = self.sharing.required() as usize;
        (0..grant.targets.len())
            .map(|at| {
                let signature = threshold::recover::<Variant, _>(
                    &self.sharing,
                    partials.values().take(need).map(|p| &p[at]),
                    &commonware_parallel::Sequential,
                )
                .ok()?;
                check(at, &grant.targets[at], &signature)
            })
            .collect()
    }

    /// Members whose envelope or partial was false, with what was wrong; each named once.
    pub fn liars(&self) -> &[(u32, String)] {
        &self.liars
    }
}

/// The check for a MAC's target: the recovered signature verifies under the cluster key.
pub fn is_cluster_signature(
    sharing: &Sharing,
    target: &Digest,
    signature: &ClusterSignature,
) -> bool {
    commonware_cryptography::bls12381::primitives::ops::verify_message::<Variant>(
        sharing.public(),
        namespace::SEAL,
        target.as_ref(),
        signature,
    )
    .is_ok()
}

#[cfg(test)]
mod tests;
