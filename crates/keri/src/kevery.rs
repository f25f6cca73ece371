//! The event processor over many identifiers (keripy's `Kevery`).
//!
//! [`Kevery::process`] takes one message at a time. An event is accepted when it is the next
//! event of its identifier, validates against the key state ([`KeyState`]), is anchored by
//! its delegator (delegated events) and, when required, carries enough witness signatures.
//! Events that could become acceptable later (a future sequence number, an unknown
//! identifier, a delegator or anchor not yet seen, missing witness receipts) wait in a
//! bounded escrow and are retried whenever another event is accepted. First seen wins: a
//! different, validly signed event at an accepted sequence number is rejected and kept as
//! duplicity evidence, with one exception, KERI's superseding recovery: a rotation after the
//! latest establishment event, at the sequence number of an interaction, signed by the
//! pre-rotated keys ([`KeyState::check_recovery`]). It replaces the interactions from its
//! sequence number on, which leave the log and are kept as a record ([`Kevery::superseded`]):
//! whoever stole the current signing keys can add interactions, but only the holder of the
//! next keys can rotate, and the rotation undoes them. Maps are `BTreeMap`s, so processing
//! is deterministic.

use std::collections::BTreeMap;

use crate::attachment::{Attachments, ReceiptCouple};
use crate::event::{Event, EventBody, EventSeal, Ilk};
use crate::kever::{KeyState, Validated, ValidationError};
use crate::parse::{Message, ParseError, parse_stream};
use crate::primitive::Prefix;
use crate::receipt::verify_receipt;

/// Default limit on escrowed messages.
pub const DEFAULT_ESCROW_LIMIT: usize = 1024;

/// Processor settings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct KeveryConfig {
    /// Require `bt` witness signatures (attached `-B` or receipts `-C` from listed
    /// witnesses) before accepting an event of an identifier with witnesses, as keripy does
    /// for identifiers it does not control. Default true.
    pub require_witness_receipts: bool,
    /// Most messages held in escrow at once. Default [`DEFAULT_ESCROW_LIMIT`].
    pub escrow_limit: usize,
}

impl Default for KeveryConfig {
    fn default() -> KeveryConfig {
        KeveryConfig {
            require_witness_receipts: true,
            escrow_limit: DEFAULT_ESCROW_LIMIT,
        }
    }
}

/// Why a message waits in escrow.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum EscrowReason {
    /// No inception seen yet for the identifier.
    UnknownPrefix,
    /// The sequence number is beyond the next one.
    OutOfOrder,
    /// The delegator's log, or the anchoring seal in it, has not been seen.
    MissingDelegation,
    /// Fewer than `bt` witness signatures.
    MissingWitnessReceipts,
    /// A receipt for an event not yet accepted.
    UnknownEvent,
}

/// What processing did with a message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Outcome {
    /// Accepted into the log; `released` escrowed messages were accepted after it.
    Accepted {
        /// Escrowed messages accepted as a consequence.
        released: usize,
    },
    /// The same event was already accepted; nothing changed (receipts are merged).
    Duplicate,
    /// Held in escrow.
    Escrowed(EscrowReason),
    /// A receipt was verified and recorded.
    Receipted,
}

/// An accepted event with the signatures it was accepted with and the state after it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AcceptedEvent {
    /// The event.
    pub event: Event,
    /// Its attachments (controller and witness signatures, receipts).
    pub attachments: Attachments,
    /// The key state after the event.
    pub state: KeyState,
}

/// Two different events at the same sequence number of one identifier.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Duplicity {
    /// The event accepted first.
    pub accepted: Event,
    /// The later, conflicting event with its attachments.
    pub conflicting: Message,
}

/// A recovery: a rotation that superseded accepted interactions, and those interactions.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recovery {
    /// The recovery rotation, now the log's event at the sequence number of the first
    /// superseded one.
    pub rotation: Event,
    /// The superseded events, in sequence order, as they were accepted.
    pub superseded: Vec<AcceptedEvent>,
}

/// The processor: accepted logs, escrow, duplicity evidence and superseded events.
#[derive(Clone, Debug, Default)]
pub struct Kevery {
    config: KeveryConfig,
    logs: BTreeMap<Prefix, Vec<AcceptedEvent>>,
    escrow: Vec<(EscrowReason, Message)>,
    duplicity: BTreeMap<Prefix, Vec<Duplicity>>,
    recoveries: BTreeMap<Prefix, Vec<Recovery>>,
}

impl Kevery {
    /// A processor with `config`.
    pub fn new(config: KeveryConfig) -> Kevery {
        Kevery {
            config,
            ..Kevery::default()
        }
    }

    /// The current key state of `prefix`.
    pub fn state(&self, prefix: &Prefix) -> Option<&KeyState> {
        self.logs.get(prefix)?.last().map(|e| &e.state)
    }

    /// The accepted log of `prefix`, in sequence order.
    pub fn log(&self, prefix: &Prefix) -> &[AcceptedEvent] {
        self.logs.get(prefix).map(Vec::as_slice).unwrap_or_default()
    }

    /// Identifiers with an accepted inception, in order.
    pub fn prefixes(&self) -> impl Iterator<Item = &Prefix> {
        self.logs.keys()
    }

    /// Duplicity evidence recorded for `prefix`.
    pub fn duplicity(&self, prefix: &Prefix) -> &[Duplicity] {
        self.duplicity
            .get(prefix)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// The recoveries of `prefix`, oldest first: each recovery rotation with the events it
    /// superseded (which are no longer in [`Kevery::log`]).
    pub fn superseded(&self, prefix: &Prefix) -> &[Recovery] {
        self.recoveries
            .get(prefix)
            .map(Vec::as_slice)
            .unwrap_or_default()
    }

    /// Escrowed messages and why they wait.
    pub fn escrowed(&self) -> &[(EscrowReason, Message)] {
        &self.escrow
    }

    /// Parses a stream and processes each message: the outcome of each, in order.
    pub fn process_stream(
        &mut self,
        stream: &[u8],
    ) -> Result<Vec<Result<Outcome, ValidationError>>, ParseError> {
        Ok(parse_stream(stream)?
            .into_iter()
            .map(|m| self.process(m))
            .collect())
    }

    /// Processes one message.
    pub fn process(&mut self, message: Message) -> Result<Outcome, ValidationError> {
        let outcome = self.process_one(message)?;
        match outcome {
            Outcome::Accepted { .. } => Ok(Outcome::Accepted {
                released: self.drain_escrow(),
            }),
            Outcome::Escrowed(reason) => Ok(Outcome::Escrowed(reason)),
            other => Ok(other),
        }
    }

    /// Retries escrowed messages until none is accepted; returns how many were.
    fn drain_escrow(&mut self) -> usize {
        let mut released = 0;
        loop {
            let pending = std::mem::take(&mut self.escrow);
            let before = released;
            for (_, message) in pending {
                match self.process_one(message.clone()) {
                    Ok(Outcome::Accepted { .. }) | Ok(Outcome::Receipted) => released += 1,
                    Ok(Outcome::Escrowed(_)) | Ok(Outcome::Duplicate) => {}
                    // Dropped: it became invalid (e.g. conflicts with what was accepted).
                    Err(_) => {}
                }
            }
            if released == before {
                return released;
            }
        }
    }

    fn process_one(&mut self, message: Message) -> Result<Outcome, ValidationError> {
        if message.event.ilk() == Ilk::Rct {
            return self.process_receipt(message);
        }
        let prefix = message.event.prefix();
        let sn = message.event.sn();
        let Some(log) = self.logs.get(&prefix) else {
            if !matches!(message.event.body(), EventBody::Inception(_)) {
                return self.hold(EscrowReason::UnknownPrefix, message);
            }
            let validated = KeyState::incept(&message.event, &message.attachments.signatures)?;
            return self.accept(validated, message);
        };
        let said = message.event.said();
        let mut superseded = self.superseded(&prefix).iter().flat_map(|r| &r.superseded);
        if superseded.any(|e| e.event.said() == said) {
            return Err(ValidationError::Superseded {
                prefix: prefix.qb64(),
                sn,
                said: said.qb64(),
            });
        }
        let last = log.last().expect("logs are never empty").state.sn;
        if sn <= last {
            return self.seen(message);
        }
        if sn > last + 1 {
            return self.hold(EscrowReason::OutOfOrder, message);
        }
        let state = &log.last().expect("logs are never empty").state;
        let validated = state.apply(&message.event, &message.attachments.signatures)?;
        self.accept(validated, message)
    }

    /// An event at an already accepted sequence number: the same one, a recovery, or
    /// duplicity.
    fn seen(&mut self, message: Message) -> Result<Outcome, ValidationError> {
        let prefix = message.event.prefix();
        let sn = message.event.sn();
        let said = message.event.said();
        let log = self.logs.get_mut(&prefix).expect("caller checked");
        let index = usize::try_from(sn).expect("sn below the log length");
        if log[index].event.said() == said {
            merge_receipts(&mut log[index].attachments, &message.attachments);
            return Ok(Outcome::Duplicate);
        }
        // Validate the conflicting event against the state it claims to follow, so only
        // validly signed conflicts become evidence (or recoveries).
        let log = &self.logs[&prefix];
        let accepted = log[index].event.clone();
        let validated = match index.checked_sub(1) {
            None => KeyState::incept(&message.event, &message.attachments.signatures)?,
            Some(before) => log[before]
                .state
                .apply(&message.event, &message.attachments.signatures)?,
        };
        let current = &log.last().expect("logs are never empty").state;
        match current.check_recovery(&message.event) {
            Ok(()) => self.recover(index, validated, message),
            Err(reason) => {
                self.duplicity.entry(prefix).or_default().push(Duplicity {
                    accepted,
                    conflicting: message,
                });
                Err(reason)
            }
        }
    }

    /// Replaces the events from `index` on with a recovery rotation, once its delegation
    /// and witnesses are in order; the replaced events go to the record.
    fn recover(
        &mut self,
        index: usize,
        validated: Validated,
        message: Message,
    ) -> Result<Outcome, ValidationError> {
        if let Some(reason) = self.waiting_for(&validated, &message)? {
            return self.hold(reason, message);
        }
        let prefix = validated.state.prefix;
        let log = self
            .logs
            .get_mut(&prefix)
            .expect("a recovery follows accepted events");
        let superseded = log.split_off(index);
        debug_assert!(
            superseded.iter().all(|e| e.event.ilk() == Ilk::Ixn),
            "a recovery supersedes interactions only"
        );
        let rotation = message.event.clone();
        log.push(AcceptedEvent {
            event: message.event,
            attachments: message.attachments,
            state: validated.state,
        });
        self.recoveries.entry(prefix).or_default().push(Recovery {
            rotation,
            superseded,
        });
        Ok(Outcome::Accepted { released: 0 })
    }

    /// Checks delegation and witnesses, then appends the event.
    fn accept(
        &mut self,
        validated: Validated,
        message: Message,
    ) -> Result<Outcome, ValidationError> {
        if let Some(reason) = self.waiting_for(&validated, &message)? {
            return self.hold(reason, message);
        }
        let state = validated.state;
        let prefix = state.prefix;
        let entry = AcceptedEvent {
            event: message.event,
            attachments: message.attachments,
            state,
        };
        self.logs.entry(prefix).or_default().push(entry);
        Ok(Outcome::Accepted { released: 0 })
    }

    /// What a validated event still waits for: its delegator's anchor, or witness
    /// signatures. `None` when it can be accepted.
    fn waiting_for(
        &self,
        validated: &Validated,
        message: &Message,
    ) -> Result<Option<EscrowReason>, ValidationError> {
        if let Some(delegator) = validated.delegator {
            let Some(log) = self.logs.get(&delegator) else {
                return Ok(Some(EscrowReason::MissingDelegation));
            };
            let state = &log.last().expect("logs are never empty").state;
            if state.do_not_delegate() {
                return Err(ValidationError::DelegationForbidden {
                    delegator: delegator.qb64(),
                });
            }
            let seal = message.event.seal();
            if !log.iter().any(|e| anchors(&e.event, &seal)) {
                return Ok(Some(EscrowReason::MissingDelegation));
            }
        }
        let state = &validated.state;
        if self.config.require_witness_receipts && state.bt > 0 {
            let witnessed = count_witnesses(message, state)?;
            if witnessed < state.bt {
                return Ok(Some(EscrowReason::MissingWitnessReceipts));
            }
        }
        Ok(None)
    }

    /// Puts a message in escrow (merging receipts into an escrowed copy of the same event).
    fn hold(&mut self, reason: EscrowReason, message: Message) -> Result<Outcome, ValidationError> {
        if let Some((r, held)) = self
            .escrow
            .iter_mut()
            .find(|(_, m)| m.event == message.event)
        {
            merge_receipts(&mut held.attachments, &message.attachments);
            *r = reason;
            return Ok(Outcome::Escrowed(reason));
        }
        if self.escrow.len() >= self.config.escrow_limit {
            return Err(ValidationError::EscrowFull {
                limit: self.config.escrow_limit,
            });
        }
        self.escrow.push((reason, message));
        Ok(Outcome::Escrowed(reason))
    }

    /// A non-transferable receipt: verified against the accepted event, or merged into an
    /// escrowed event waiting for witness receipts, or escrowed itself.
    fn process_receipt(&mut self, message: Message) -> Result<Outcome, ValidationError> {
        let EventBody::Receipt(rct) = message.event.body() else {
            return Err(ValidationError::WrongIlk {
                ilk: message.event.ilk().as_str(),
            });
        };
        let mismatch = || ValidationError::ReceiptMismatch {
            prefix: rct.prefix.qb64(),
            sn: rct.sn,
            said: rct.said.qb64(),
        };
        let accepted = self
            .logs
            .get_mut(&rct.prefix)
            .and_then(|log| log.get_mut(usize::try_from(rct.sn).ok()?));
        if let Some(accepted) = accepted {
            if accepted.event.said() != rct.said {
                return Err(mismatch());
            }
            check_couples(&accepted.event, &message.attachments.receipts)?;
            merge_receipts(&mut accepted.attachments, &message.attachments);
            return Ok(Outcome::Receipted);
        }
        let waiting = self
            .escrow
            .iter()
            .position(|(_, m)| m.event.said() == rct.said && m.event.ilk() != Ilk::Rct);
        if let Some(i) = waiting {
            check_couples(&self.escrow[i].1.event, &message.attachments.receipts)?;
            let (_, mut held) = self.escrow.remove(i);
            merge_receipts(&mut held.attachments, &message.attachments);
            return match self.process_one(held)? {
                Outcome::Accepted { .. } => Ok(Outcome::Accepted {
                    released: self.drain_escrow(),
                }),
                other => Ok(other),
            };
        }
        self.hold(EscrowReason::UnknownEvent, message)
    }
}

/// Whether `event` anchors `seal` in its `a` list.
fn anchors(event: &Event, seal: &EventSeal) -> bool {
    let list = match event.body() {
        EventBody::Inception(e) => &e.anchors,
        EventBody::Rotation(e) => &e.anchors,
        EventBody::Interaction(e) => &e.anchors,
        EventBody::Receipt(_) => return false,
    };
    list.iter()
        .any(|a| EventSeal::from_json(a).as_ref() == Some(seal))
}

fn check_couples(event: &Event, couples: &[ReceiptCouple]) -> Result<(), ValidationError> {
    match couples.iter().find(|c| !verify_receipt(event, c)) {
        Some(bad) => Err(ValidationError::InvalidWitnessSignature {
            witness: bad.signer.qb64(),
        }),
        None => Ok(()),
    }
}

/// Adds the witness signatures and receipts of `from` not yet in `into`.
fn merge_receipts(into: &mut Attachments, from: &Attachments) {
    for s in &from.witness_signatures {
        if !into.witness_signatures.contains(s) {
            into.witness_signatures.push(s.clone());
        }
    }
    for r in &from.receipts {
        if !into.receipts.contains(r) {
            into.receipts.push(r.clone());
        }
    }
}

/// The number of distinct listed witnesses that signed: indexed `-B` signatures (index into
/// the witness list) and `-C` couples. A signature that does not verify is an error.
fn count_witnesses(message: &Message, state: &KeyState) -> Result<u64, ValidationError> {
    let raw = message.event.raw().as_bytes();
    let mut signed: Vec<usize> = Vec::new();
    for s in &message.attachments.witness_signatures {
        let index = s.index as usize;
        let Some(Prefix::Basic(key)) = state.witnesses.get(index) else {
            return Err(ValidationError::InvalidWitnessSignature {
                witness: format!("index {index}"),
            });
        };
        if !key.verify(raw, &s.signature) {
            return Err(ValidationError::InvalidWitnessSignature {
                witness: key.qb64(),
            });
        }
        signed.push(index);
    }
    for couple in &message.attachments.receipts {
        let Some(index) = state
            .witnesses
            .iter()
            .position(|w| *w == Prefix::Basic(couple.signer))
        else {
            continue;
        };
        if !verify_receipt(&message.event, couple) {
            return Err(ValidationError::InvalidWitnessSignature {
                witness: couple.signer.qb64(),
            });
        }
        signed.push(index);
    }
    signed.sort_unstable();
    signed.dedup();
    Ok(signed.len() as u64)
}
