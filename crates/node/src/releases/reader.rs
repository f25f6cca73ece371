//! The reader's side of a release: opens each envelope with the one-time key, verifies each
//! partial, and opens the value once t verified partials are held.
//!
//! f members may send partials that do not verify, envelopes that do not open, or nothing:
//! each such member is named (the caller blocks it, or reports it) and its slot closed, and
//! the value opens as soon as t honest members have answered.

use super::{ReadGrant, Release};
use commonware_cryptography::bls12381::primitives::variant::PartialSignature;
use std::collections::{BTreeMap, BTreeSet};
use welkin_sealed::{Opener, ReaderKey, ReleaseContext, SealedValue};
use welkin_types::{Digest, Sharing, TxId, Variant};
use zeroize::Zeroizing;

/// Why a read cannot be opened at all (as opposed to waiting for more envelopes).
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ReadError {
    /// The committed value does not decode: the writer stored something that is not a
    /// sealed value.
    #[error("the stored value does not decode: {0}")]
    NotSealed(String),
    /// t verified partials do not open it: it was not sealed under its own target.
    #[error("the value does not open: {0}")]
    DoesNotOpen(String),
}

/// An opened read: its grant and the value.
pub type Opened = (ReadGrant, Zeroizing<Vec<u8>>);

/// Gathers one read's envelopes as they arrive.
///
/// It owns what it needs (the sharing, copied, and the one-time key), so that a caller can
/// move it into a blocking task for each [`Self::step`]: the HPKE opens and the recovery are
/// milliseconds of CPU that must not hold an async worker.
pub struct ReadOpener {
    sharing: Sharing,
    cluster_id: Digest,
    id: TxId,
    reader: ReaderKey,
    seen: BTreeSet<u32>,
    grant: Option<(ReadGrant, SealedValue)>,
    /// Opened envelopes whose partials are not verified yet (the fast path: recover from t
    /// of them and open; only if that fails, verify each).
    unverified: BTreeMap<u32, PartialSignature<Variant>>,
    /// Partials checked against their sender's share commitment (the slow path).
    verified: BTreeMap<u32, PartialSignature<Variant>>,
    /// Whether the fast path failed once: from then on every partial is verified.
    verifying: bool,
    liars: Vec<(u32, String)>,
}

impl ReadOpener {
    /// An opener for read `id`, whose partials are sealed to `reader`.
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

    /// Takes in what a node holds for the read now and the sealed value its grant names
    /// (the caller fetches it once the grant is there, and checks it against the grant's
    /// digest); returns the grant and the value once t verified partials open it. Envelopes
    /// already seen are skipped.
    pub fn step(&mut self, release: &Release, sealed: &[u8]) -> Result<Option<Opened>, ReadError> {
        if self.grant.is_none() {
            let Some(grant) = release.grant.clone() else {
                return Ok(None);
            };
            let sealed = welkin_types::decode::<SealedValue>(sealed)
                .map_err(|e| ReadError::NotSealed(e.to_string()))?;
            self.grant = Some((grant, sealed));
        }
        let (grant, sealed) = self.grant.as_ref().expect("set above");
        let context = ReleaseContext {
            cluster_id: self.cluster_id,
            read_id: self.id,
            target: grant.target,
        };
        for (&index, envelope) in &release.envelopes {
            if !self.seen.insert(index) {
                continue;
            }
            let partial = match self.reader.open_partial(&context, envelope) {
                Ok(partial) if partial.index.get() == index => partial,
                Ok(partial) => {
                    self.liars.push((
                        index,
                        format!("sent a partial under index {}", partial.index.get()),
                    ));
                    continue;
                }
                Err(error) => {
                    self.liars.push((
                        index,
                        format!("sent an envelope that does not open: {error}"),
                    ));
                    continue;
                }
            };
            self.unverified.insert(index, partial);
        }
        let need = self.sharing.required() as usize;
        if !self.verifying && self.unverified.len() >= need {
            if let Ok(value) =
                welkin_sealed::open_unverified(&self.sharing, self.unverified.values(), sealed)
            {
                return Ok(Some((grant.clone(), value)));
            }
            // Some partial among them is false: find it.
            self.verifying = true;
        }
        if self.verifying {
            // Each sender's envelope is opened once (`seen`), so each partial reaches this
            // check once: a fresh checker per step needs no memory of earlier ones.
            let mut checker = Opener::new(&self.sharing, grant.target);
            for (index, partial) in std::mem::take(&mut self.unverified) {
                match checker.add(partial.clone()) {
                    Ok(()) => {
                        self.verified.insert(index, partial);
                    }
                    Err(error) => self.liars.push((index, error.to_string())),
                }
            }
        }
        if self.verified.len() < need {
            return Ok(None);
        }
        // Every partial here verified, so recovering from them is the checked path.
        let value = welkin_sealed::open_unverified(&self.sharing, self.verified.values(), sealed)
            .map_err(|e| ReadError::DoesNotOpen(e.to_string()))?;
        Ok(Some((grant.clone(), value)))
    }

    /// Members whose envelope or partial was false, with what was wrong; each named once.
    pub fn liars(&self) -> &[(u32, String)] {
        &self.liars
    }
}
