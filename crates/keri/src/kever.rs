//! Key state and the validation of one event against it (keripy's `Kever`).
//!
//! [`KeyState::incept`] checks an inception on its own; [`KeyState::apply`] checks a
//! rotation or interaction against the state it follows and returns the next state. Both
//! are pure: the delegation anchor and witness receipts, which need other logs, are checked
//! by [`crate::Kevery`] using the [`Validated`] result.

use serde::{Deserialize, Serialize};

use crate::cesr::IndexedSignature;
use crate::event::{
    Event, EventBody, Ilk, Inception, Signing, TRAIT_DO_NOT_DELEGATE, TRAIT_ESTABLISHMENT_ONLY,
};
use crate::primitive::{Digest, Prefix, VerKey};
use crate::threshold::Threshold;

/// A reason for rejecting an event.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ValidationError {
    /// A basic (`D`/`B`) prefix must be the one inception key.
    #[error("basic prefix {prefix} must equal the single inception key, keys are {keys:?}")]
    BasicPrefixMismatch {
        /// The prefix.
        prefix: String,
        /// The inception keys.
        keys: Vec<String>,
    },
    /// A non-transferable (`B`) prefix cannot commit to next keys, witnesses or anchors.
    #[error("non-transferable prefix {prefix} has a non-empty {field:?}")]
    NonTransferableContent {
        /// The prefix.
        prefix: String,
        /// `n`, `b` or `a`.
        field: &'static str,
    },
    /// A delegated identifier must be self-addressing.
    #[error("delegated prefix {prefix} is not self-addressing (E)")]
    DelegatedBasicPrefix {
        /// The prefix.
        prefix: String,
    },
    /// An establishment event without signing keys.
    #[error("{ilk} event has no signing keys")]
    NoKeys {
        /// The event type.
        ilk: &'static str,
    },
    /// A threshold needs more keys than listed, or a zero current threshold.
    #[error("threshold {field} of size {size} cannot be met by {keys} keys")]
    ThresholdSize {
        /// `kt` or `nt`.
        field: &'static str,
        /// The threshold's size (M, or the number of weights).
        size: usize,
        /// The number of keys or next digests.
        keys: usize,
    },
    /// A witness appears twice (in `b`, `br` or `ba`).
    #[error("witness {witness} appears twice in {field:?}")]
    DuplicateWitness {
        /// `b`, `br` or `ba`.
        field: &'static str,
        /// The witness.
        witness: String,
    },
    /// A witness prefix that is transferable.
    #[error("witness {witness} is not a non-transferable (B) prefix")]
    TransferableWitness {
        /// The witness.
        witness: String,
    },
    /// A cut witness that is not a current witness.
    #[error("cut witness {witness} is not a current witness")]
    CutNotWitness {
        /// The witness.
        witness: String,
    },
    /// An added witness that already is one, or is also cut.
    #[error("added witness {witness} is already a witness or is also cut")]
    AddConflict {
        /// The witness.
        witness: String,
    },
    /// `bt` outside 1..=witnesses (or not 0 without witnesses).
    #[error("witness threshold {bt} invalid for {witnesses} witnesses")]
    WitnessThreshold {
        /// The threshold.
        bt: u64,
        /// The number of witnesses after the event.
        witnesses: usize,
    },
    /// A signature's index is past the end of the key list.
    #[error("signature index {index} out of range for {keys} keys")]
    SignatureIndex {
        /// The index.
        index: u32,
        /// The number of keys.
        keys: usize,
    },
    /// A signature does not verify under the key it is indexed to.
    #[error("signature at index {index} does not verify under key {key}")]
    InvalidSignature {
        /// The index.
        index: u32,
        /// The key.
        key: String,
    },
    /// The verified signatures do not satisfy the current threshold.
    #[error("signatures by keys {indices:?} do not satisfy threshold {threshold}")]
    ThresholdNotMet {
        /// Indices of verified signatures.
        indices: Vec<u32>,
        /// The threshold, as JSON.
        threshold: String,
    },
    /// The revealed keys do not satisfy the prior next threshold.
    #[error("revealed prior next keys {ondices:?} do not satisfy prior next threshold {threshold}")]
    PriorNextNotMet {
        /// Offsets into the prior next digests that the signing keys revealed.
        ondices: Vec<u32>,
        /// The prior next threshold, as JSON.
        threshold: String,
    },
    /// The event is for another identifier.
    #[error("event for {found} applied to the state of {expected}")]
    PrefixMismatch {
        /// The state's prefix.
        expected: String,
        /// The event's prefix.
        found: String,
    },
    /// The sequence number is not the next one.
    #[error("sequence number {found} is not the next one, {expected}")]
    OutOfOrder {
        /// The next sequence number.
        expected: u64,
        /// The event's.
        found: u64,
    },
    /// `p` is not the SAID of the prior event.
    #[error("prior event digest {found} does not match the last event {expected}")]
    PriorMismatch {
        /// The last accepted event's SAID.
        expected: String,
        /// The event's `p`.
        found: String,
    },
    /// The identifier is abandoned (empty next keys) or non-transferable.
    #[error("identifier {prefix} is abandoned or non-transferable: no {ilk} accepted")]
    Abandoned {
        /// The prefix.
        prefix: String,
        /// The rejected event type.
        ilk: &'static str,
    },
    /// An `ixn` for an establishment-only (`EO`) identifier.
    #[error("identifier {prefix} is establishment-only: no ixn accepted")]
    EstablishmentOnly {
        /// The prefix.
        prefix: String,
    },
    /// `rot` on a delegated identifier or `drt` on a non-delegated one.
    #[error("{ilk} does not match the identifier's delegation: delegated={delegated}")]
    WrongRotation {
        /// The event type.
        ilk: &'static str,
        /// Whether the identifier is delegated.
        delegated: bool,
    },
    /// The delegator has the `DND` trait.
    #[error("delegator {delegator} does not delegate (DND)")]
    DelegationForbidden {
        /// The delegator.
        delegator: String,
    },
    /// An inception or receipt was given where another kind of event was expected.
    #[error("{ilk} event cannot be applied here")]
    WrongIlk {
        /// The event type.
        ilk: &'static str,
    },
    /// A different valid event at an accepted sequence number (kept as evidence).
    #[error("duplicitous event {said} at sequence number {sn} of {prefix}")]
    Duplicitous {
        /// The prefix.
        prefix: String,
        /// The sequence number.
        sn: u64,
        /// The SAID of the rejected event.
        said: String,
    },
    /// A conflicting event that supersedes nothing: its sequence number is past the log.
    #[error("event at sequence number {sn} of {prefix} supersedes nothing: the log ends at {last}")]
    NothingToSupersede {
        /// The prefix.
        prefix: String,
        /// The event's sequence number.
        sn: u64,
        /// The sequence number of the latest accepted event.
        last: u64,
    },
    /// A rotation at an accepted sequence number at or before the latest establishment
    /// event: a recovery rotation supersedes only the interactions after it. Kept as
    /// duplicity evidence.
    #[error(
        "rotation {said} at sequence number {sn} of {prefix} would supersede the establishment \
         event at {last_establishment_sn}: a recovery rotation supersedes only interactions \
         after the latest establishment event"
    )]
    SupersedesEstablishment {
        /// The prefix.
        prefix: String,
        /// The rotation's sequence number.
        sn: u64,
        /// The rotation's SAID.
        said: String,
        /// The sequence number of the latest establishment event.
        last_establishment_sn: u64,
    },
    /// A delegated rotation (`drt`) superseding more than the latest event: keripy 1.1.17
    /// accepts a delegated recovery only over the latest interaction. Kept as duplicity
    /// evidence.
    #[error(
        "delegated recovery rotation {said} at sequence number {sn} of {prefix} would supersede \
         the interactions up to {last}: a drt supersedes only the latest event"
    )]
    DelegatedRecoveryDepth {
        /// The prefix.
        prefix: String,
        /// The rotation's sequence number.
        sn: u64,
        /// The rotation's SAID.
        said: String,
        /// The sequence number of the latest accepted event.
        last: u64,
    },
    /// An event that a recovery rotation superseded, submitted again.
    #[error(
        "event {said} at sequence number {sn} of {prefix} was superseded by a recovery rotation"
    )]
    Superseded {
        /// The prefix.
        prefix: String,
        /// The sequence number.
        sn: u64,
        /// The SAID of the superseded event.
        said: String,
    },
    /// A witness signature or receipt does not verify.
    #[error("witness signature from {witness} does not verify")]
    InvalidWitnessSignature {
        /// The witness, or its index.
        witness: String,
    },
    /// A receipt for an event that differs from the accepted one.
    #[error(
        "receipt for {said} at sequence number {sn} of {prefix} does not match the accepted event"
    )]
    ReceiptMismatch {
        /// The prefix.
        prefix: String,
        /// The sequence number.
        sn: u64,
        /// The receipted SAID.
        said: String,
    },
    /// The escrow is full.
    #[error("escrow full ({limit} messages): event dropped")]
    EscrowFull {
        /// The limit.
        limit: usize,
    },
}

/// The key state of an identifier after its latest accepted event: what a verifier needs
/// to check the next event or a signature by the identifier. Serialized as JSON for serving.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct KeyState {
    /// The identifier.
    pub prefix: Prefix,
    /// Sequence number of the latest event.
    pub sn: u64,
    /// SAID of the latest event.
    pub digest: Digest,
    /// Type of the latest event.
    pub ilk: String,
    /// Current keys and threshold, next-key digests and threshold (next empty: abandoned
    /// or non-transferable). Flattened into the JSON as `kt`, `keys`, `nt`, `next`.
    #[serde(flatten)]
    pub signing: Signing,
    /// Witness threshold.
    pub bt: u64,
    /// Witnesses, in order (witness signature indices refer to it).
    pub witnesses: Vec<Prefix>,
    /// Configuration traits from the inception.
    pub config: Vec<String>,
    /// The delegator, for a delegated identifier.
    pub delegator: Option<Prefix>,
    /// Sequence number of the latest establishment event.
    pub last_establishment_sn: u64,
    /// SAID of the latest establishment event.
    pub last_establishment: Digest,
}

/// An event that passed the checks of [`KeyState`]: the state after it, and what
/// remains to check with other logs.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Validated {
    /// The state after the event.
    pub state: KeyState,
    /// The delegator that must anchor the event (`dip`, `drt`).
    pub delegator: Option<Prefix>,
}

impl KeyState {
    /// Whether `ixn` events are refused (`EO`).
    pub fn establishment_only(&self) -> bool {
        self.config.iter().any(|c| c == TRAIT_ESTABLISHMENT_ONLY)
    }

    /// Whether this identifier refuses to be a delegator (`DND`).
    pub fn do_not_delegate(&self) -> bool {
        self.config.iter().any(|c| c == TRAIT_DO_NOT_DELEGATE)
    }

    /// Whether further establishment events can be accepted.
    pub fn transferable(&self) -> bool {
        !self.signing.next.is_empty() && self.prefix.is_transferable()
    }

    /// Checks an inception (`icp` or `dip`) and its controller signatures.
    pub fn incept(
        event: &Event,
        signatures: &[IndexedSignature],
    ) -> Result<Validated, ValidationError> {
        let EventBody::Inception(icp) = event.body() else {
            return Err(ValidationError::WrongIlk {
                ilk: event.ilk().as_str(),
            });
        };
        check_prefix(icp)?;
        check_keys(event.ilk(), &icp.signing)?;
        check_witness_list(&icp.witnesses, "b")?;
        check_bt(icp.bt, icp.witnesses.len())?;
        verify_signatures(event, signatures, &icp.signing.keys, &icp.signing.kt)?;
        let state = KeyState {
            prefix: icp.prefix,
            sn: 0,
            digest: event.said(),
            ilk: event.ilk().as_str().to_string(),
            signing: icp.signing.clone(),
            bt: icp.bt,
            witnesses: icp.witnesses.clone(),
            config: icp.config.clone(),
            delegator: icp.delegator,
            last_establishment_sn: 0,
            last_establishment: event.said(),
        };
        Ok(Validated {
            state,
            delegator: icp.delegator,
        })
    }

    /// Checks a rotation or interaction that follows this state, and its signatures.
    pub fn apply(
        &self,
        event: &Event,
        signatures: &[IndexedSignature],
    ) -> Result<Validated, ValidationError> {
        let ilk = event.ilk();
        if event.prefix() != self.prefix {
            return Err(ValidationError::PrefixMismatch {
                expected: self.prefix.qb64(),
                found: event.prefix().qb64(),
            });
        }
        if !self.transferable() {
            return Err(ValidationError::Abandoned {
                prefix: self.prefix.qb64(),
                ilk: ilk.as_str(),
            });
        }
        let expected = self.sn.checked_add(1).ok_or(ValidationError::OutOfOrder {
            expected: u64::MAX,
            found: event.sn(),
        })?;
        if event.sn() != expected {
            return Err(ValidationError::OutOfOrder {
                expected,
                found: event.sn(),
            });
        }
        let mut state = self.clone();
        state.sn = event.sn();
        state.digest = event.said();
        state.ilk = ilk.as_str().to_string();
        match event.body() {
            EventBody::Interaction(ixn) => {
                if self.establishment_only() {
                    return Err(ValidationError::EstablishmentOnly {
                        prefix: self.prefix.qb64(),
                    });
                }
                self.check_prior(ixn.prior)?;
                verify_signatures(event, signatures, &self.signing.keys, &self.signing.kt)?;
                Ok(Validated {
                    state,
                    delegator: None,
                })
            }
            EventBody::Rotation(rot) => {
                if rot.delegated != self.delegator.is_some() {
                    return Err(ValidationError::WrongRotation {
                        ilk: ilk.as_str(),
                        delegated: self.delegator.is_some(),
                    });
                }
                self.check_prior(rot.prior)?;
                check_keys(ilk, &rot.signing)?;
                let witnesses = self.rotate_witnesses(&rot.cuts, &rot.adds)?;
                check_bt(rot.bt, witnesses.len())?;
                let keys = &rot.signing.keys;
                let verified = verify_signatures(event, signatures, keys, &rot.signing.kt)?;
                self.check_revealed(&verified, keys)?;
                state.signing = rot.signing.clone();
                state.bt = rot.bt;
                state.witnesses = witnesses;
                state.last_establishment_sn = rot.sn;
                state.last_establishment = event.said();
                Ok(Validated {
                    state,
                    delegator: self.delegator,
                })
            }
            EventBody::Inception(_) | EventBody::Receipt(_) => {
                Err(ValidationError::WrongIlk { ilk: ilk.as_str() })
            }
        }
    }

    /// Checks that `event`, which differs from the accepted event at its sequence number,
    /// may supersede the accepted events from that number on: KERI's recovery. It must be
    /// a rotation after the latest establishment event, so that it supersedes only
    /// interactions (a `drt` only the latest one, as keripy 1.1.17). The event itself is
    /// checked by [`KeyState::apply`] on the state after the event before it; the
    /// superseded events then leave the log. An `Err` is why the event is not a recovery:
    /// [`ValidationError::Duplicitous`] for an interaction or inception,
    /// [`ValidationError::SupersedesEstablishment`],
    /// [`ValidationError::DelegatedRecoveryDepth`], or
    /// [`ValidationError::NothingToSupersede`] past the end of the log.
    pub fn check_recovery(&self, event: &Event) -> Result<(), ValidationError> {
        let (prefix, sn, said) = (self.prefix.qb64(), event.sn(), event.said().qb64());
        if event.prefix() != self.prefix {
            return Err(ValidationError::PrefixMismatch {
                expected: prefix,
                found: event.prefix().qb64(),
            });
        }
        if sn > self.sn {
            let last = self.sn;
            return Err(ValidationError::NothingToSupersede { prefix, sn, last });
        }
        if !matches!(event.body(), EventBody::Rotation(_)) {
            return Err(ValidationError::Duplicitous { prefix, sn, said });
        }
        if sn <= self.last_establishment_sn {
            return Err(ValidationError::SupersedesEstablishment {
                prefix,
                sn,
                said,
                last_establishment_sn: self.last_establishment_sn,
            });
        }
        if event.ilk() == Ilk::Drt && sn != self.sn {
            let last = self.sn;
            return Err(ValidationError::DelegatedRecoveryDepth {
                prefix,
                sn,
                said,
                last,
            });
        }
        Ok(())
    }

    fn check_prior(&self, prior: Digest) -> Result<(), ValidationError> {
        if prior != self.digest {
            return Err(ValidationError::PriorMismatch {
                expected: self.digest.qb64(),
                found: prior.qb64(),
            });
        }
        Ok(())
    }

    /// Pre-rotation: the signing keys must reveal enough of the prior next-key digests.
    /// A signature with an `ondex` reveals digest `ondex` if its key hashes to it; partial
    /// rotation reveals only some, and only the prior next threshold must be met.
    fn check_revealed(
        &self,
        verified: &[&IndexedSignature],
        keys: &[VerKey],
    ) -> Result<(), ValidationError> {
        let ondices: Vec<u32> = verified
            .iter()
            .filter_map(|s| {
                let ondex = s.ondex?;
                let digest = self.signing.next.get(ondex as usize)?;
                (keys[s.index as usize].next_digest() == *digest).then_some(ondex)
            })
            .collect();
        let nt = &self.signing.nt;
        if !nt.satisfied_by(&ondices) {
            return Err(ValidationError::PriorNextNotMet {
                ondices,
                threshold: nt.to_json().to_compact(),
            });
        }
        Ok(())
    }

    /// The witness list after cutting `cuts` and adding `adds`, in keripy's order (the
    /// remaining witnesses in order, then the added ones).
    fn rotate_witnesses(
        &self,
        cuts: &[Prefix],
        adds: &[Prefix],
    ) -> Result<Vec<Prefix>, ValidationError> {
        check_witness_list(cuts, "br")?;
        check_witness_list(adds, "ba")?;
        if let Some(cut) = cuts.iter().find(|c| !self.witnesses.contains(c)) {
            return Err(ValidationError::CutNotWitness {
                witness: cut.qb64(),
            });
        }
        if let Some(add) = adds
            .iter()
            .find(|a| self.witnesses.contains(a) || cuts.contains(a))
        {
            return Err(ValidationError::AddConflict {
                witness: add.qb64(),
            });
        }
        let mut witnesses: Vec<Prefix> = self
            .witnesses
            .iter()
            .filter(|w| !cuts.contains(w))
            .copied()
            .collect();
        witnesses.extend_from_slice(adds);
        Ok(witnesses)
    }
}

fn check_prefix(icp: &Inception) -> Result<(), ValidationError> {
    let prefix = icp.prefix.qb64();
    match icp.prefix {
        Prefix::SelfAddressing(_) => Ok(()),
        Prefix::Basic(_) if icp.delegator.is_some() => {
            Err(ValidationError::DelegatedBasicPrefix { prefix })
        }
        Prefix::Basic(key) => {
            if icp.signing.keys != [key] {
                return Err(ValidationError::BasicPrefixMismatch {
                    prefix,
                    keys: icp.signing.keys.iter().map(VerKey::qb64).collect(),
                });
            }
            if !key.transferable {
                for (field, empty) in [
                    ("n", icp.signing.next.is_empty()),
                    ("b", icp.witnesses.is_empty()),
                    ("a", icp.anchors.is_empty()),
                ] {
                    if !empty {
                        return Err(ValidationError::NonTransferableContent { prefix, field });
                    }
                }
            }
            Ok(())
        }
    }
}

fn check_keys(ilk: Ilk, signing: &Signing) -> Result<(), ValidationError> {
    let Signing { kt, keys, nt, next } = signing;
    if keys.is_empty() {
        return Err(ValidationError::NoKeys { ilk: ilk.as_str() });
    }
    if kt.size() > keys.len() || *kt == Threshold::Simple(0) {
        let (size, keys) = (kt.size(), keys.len());
        return Err(ValidationError::ThresholdSize {
            field: "kt",
            size,
            keys,
        });
    }
    if nt.size() > next.len() {
        let (size, keys) = (nt.size(), next.len());
        return Err(ValidationError::ThresholdSize {
            field: "nt",
            size,
            keys,
        });
    }
    Ok(())
}

fn check_witness_list(witnesses: &[Prefix], field: &'static str) -> Result<(), ValidationError> {
    for (i, w) in witnesses.iter().enumerate() {
        if w.is_transferable() {
            return Err(ValidationError::TransferableWitness { witness: w.qb64() });
        }
        if witnesses[..i].contains(w) {
            return Err(ValidationError::DuplicateWitness {
                field,
                witness: w.qb64(),
            });
        }
    }
    Ok(())
}

fn check_bt(bt: u64, witnesses: usize) -> Result<(), ValidationError> {
    let ok = if witnesses == 0 {
        bt == 0
    } else {
        bt >= 1 && bt <= witnesses as u64
    };
    if !ok {
        return Err(ValidationError::WitnessThreshold { bt, witnesses });
    }
    Ok(())
}

/// Verifies every signature against the key at its index and checks the threshold;
/// returns the signatures (each index once).
pub(crate) fn verify_signatures<'a>(
    event: &Event,
    signatures: &'a [IndexedSignature],
    keys: &[VerKey],
    threshold: &Threshold,
) -> Result<Vec<&'a IndexedSignature>, ValidationError> {
    let mut verified: Vec<&IndexedSignature> = Vec::new();
    for s in signatures {
        let key = keys
            .get(s.index as usize)
            .ok_or(ValidationError::SignatureIndex {
                index: s.index,
                keys: keys.len(),
            })?;
        if !key.verify(event.raw().as_bytes(), &s.signature) {
            return Err(ValidationError::InvalidSignature {
                index: s.index,
                key: key.qb64(),
            });
        }
        if !verified.iter().any(|v| v.index == s.index) {
            verified.push(s);
        }
    }
    let indices: Vec<u32> = verified.iter().map(|s| s.index).collect();
    if !threshold.satisfied_by(&indices) {
        return Err(ValidationError::ThresholdNotMet {
            indices,
            threshold: threshold.to_json().to_compact(),
        });
    }
    Ok(verified)
}
