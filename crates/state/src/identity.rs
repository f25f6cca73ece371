//! The identity module: KERI key event logs witnessed by the cluster.
//!
//! A `key_event` transaction carries one KERI message (event and controller signatures). It
//! is checked against the identifier's key state as committed so far ([`welkin_keri::KeyState`]
//! does the KERI rules: SAIDs, prefixes, sequence numbers, prior digests, thresholds,
//! pre-rotation, abandonment, configuration traits, witness changes). Then:
//!
//! - **accepted**: the new key state is stored (also per sequence number, so later duplicity
//!   can be checked against the keys that were current), the message is stored as the KEL
//!   entry, and the event's seals are recorded as anchors (a delegator approves a delegated
//!   event by anchoring its seal). Commitment in a certified block is the event's receipt:
//!   the cluster is the witness pool.
//! - **escrowed**: an event whose predecessor is not committed yet (a later sequence number,
//!   an unknown identifier) or whose delegator has not anchored it waits in the bounded,
//!   expiring [`crate::escrow`], and is retried when that predecessor or anchor is accepted.
//!   When escrow is full for the identifier or in all, the event is rejected instead.
//! - **recovery**: a rotation at the sequence number of an accepted interaction after the
//!   latest establishment event, naming the event before it as prior and validating against
//!   the key state after that event (so signed by the pre-rotated next keys), supersedes the
//!   interactions from its number on ([`welkin_keri::KeyState::check_recovery`]; a `drt` only
//!   the latest one, as keripy). It becomes the KEL entry at its number; the entries after
//!   it are deleted; the superseded messages are kept as a record ([`SupersededEvent`]). The
//!   anchors the superseded interactions recorded are deleted unless an earlier event made
//!   them too, so a delegated event they alone approved is no longer approved: one waiting
//!   in escrow stays there, one not yet submitted escrows. A delegated event *already
//!   accepted* on such an anchor stays accepted, as in keripy: first seen, and undoing it
//!   would cascade through the delegate's later events and its own delegates. Its approval
//!   is then only in the record, so an offline check of the delegate against the
//!   delegator's KEL fails until the delegator anchors the seal again.
//! - **duplicity**: any other different event at an accepted sequence number whose
//!   signatures verify against the keys then current is refused (first seen wins) and kept as
//!   evidence: an interaction, a rotation that would supersede an establishment event.
//! - **rejected**: anything else, with the reason in the state ([`keys::outcome_detail`]).
//!
//! Witness receipts are not required: an event commits when the cluster orders it, and the
//! certified checkpoint with an inclusion proof is its receipt.

use crate::{
    Overlay, Snapshot, escrow, keys,
    stored::{self, Reader, StoredError, Writer},
};
use std::collections::VecDeque;
use welkin_keri::{
    Event, EventBody, EventSeal, KeyState, Message, Prefix, Validated, ValidationError,
    parse_message,
};
use welkin_types::{SignedTransaction, TxId};

pub use crate::escrow::{ESCROW_SLOT, escrowed_messages};

/// What became of a key event message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum KeyEventOutcome {
    /// Accepted (or the same event was already accepted), and the escrowed events it
    /// released.
    Accepted {
        /// The transactions of the escrowed events accepted after it, in order.
        released: Vec<SignedTransaction>,
    },
    /// Waiting in escrow, for the reason given.
    Escrowed(String),
    /// A validly signed conflicting event, kept as evidence; why it is not a recovery.
    Duplicity(String),
    /// Refused, for the reason given.
    Rejected(String),
}

/// Processes one key event message, carried by transaction `signed`, against the state at
/// block time `now_ms`.
pub fn process<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    bytes: &[u8],
    signed: &SignedTransaction,
    now_ms: u64,
) -> KeyEventOutcome {
    let tx = &signed.id();
    let message = match parse_message(bytes) {
        Ok((message, used)) if used == bytes.len() => message,
        Ok((_, used)) => {
            return KeyEventOutcome::Rejected(format!(
                "one key event per transaction: {} bytes follow the first message",
                bytes.len() - used
            ));
        }
        Err(e) => return KeyEventOutcome::Rejected(format!("malformed key event: {e}")),
    };
    match step(state, &message, bytes, tx) {
        Step::Accepted(seals) => {
            let (prefix, sn) = (message.event.prefix(), message.event.sn());
            let released = release(state, prefix, sn, seals, now_ms);
            KeyEventOutcome::Accepted { released }
        }
        Step::Known => KeyEventOutcome::Accepted { released: vec![] },
        Step::Escrow(reason) => {
            let event = &message.event;
            match escrow::add(state, &event.prefix(), event.sn(), signed, now_ms) {
                Ok(()) => KeyEventOutcome::Escrowed(reason),
                Err(full) => KeyEventOutcome::Rejected(format!("{reason}, but {full}")),
            }
        }
        Step::Duplicity(reason) => KeyEventOutcome::Duplicity(reason),
        Step::Rejected(reason) => KeyEventOutcome::Rejected(reason),
    }
}

/// The result of trying one message once.
enum Step {
    /// Accepted; the seals it anchors.
    Accepted(Vec<EventSeal>),
    /// This very event is already accepted.
    Known,
    /// Cannot be decided yet.
    Escrow(String),
    /// Conflicts with an accepted event, validly signed: recorded as evidence; why it is
    /// not a recovery.
    Duplicity(String),
    /// Invalid.
    Rejected(String),
}

/// The key state of `prefix` after its latest accepted event.
pub fn key_state<S: Snapshot>(state: &Overlay<'_, S>, prefix: &Prefix) -> Option<KeyState> {
    key_state_of(state, &prefix.qb64())
}

/// The key state of the identifier with qb64 prefix `prefix`.
pub fn key_state_of<S: Snapshot>(state: &Overlay<'_, S>, prefix: &str) -> Option<KeyState> {
    state.decoded(&keys::id_state(prefix), stored::decode_key_state)
}

/// Decodes a key state as stored under [`keys::id_state`] or [`keys::id_state_at`] (absent:
/// `Ok(None)`).
pub fn stored_key_state(value: Option<&[u8]>) -> Result<Option<KeyState>, StoredError> {
    value.map(stored::decode_key_state).transpose()
}

fn write_state<S: Snapshot>(state: &mut Overlay<'_, S>, key_state: &KeyState) {
    let prefix = key_state.prefix.qb64();
    let value = stored::encode_key_state(key_state);
    state.put(keys::id_state_at(&prefix, key_state.sn), value.clone());
    state.put(keys::id_state(&prefix), value);
}

/// A stored key event message (accepted, or kept as a record).
fn stored_message(value: &[u8]) -> Result<Message, StoredError> {
    parse_message(value)
        .map(|(message, _)| message)
        .map_err(|e| StoredError::new("key event message", e.to_string()))
}

fn step<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    message: &Message,
    bytes: &[u8],
    tx: &TxId,
) -> Step {
    let event = &message.event;
    let signatures = &message.attachments.signatures;
    let prefix = event.prefix();
    let qb64 = prefix.qb64();
    let sn = event.sn();
    if matches!(event.body(), EventBody::Receipt(_)) {
        return Step::Rejected(
            "receipts are not key events: the cluster's commitment is the receipt".into(),
        );
    }
    let current = key_state(state, &prefix);
    if let Some(current) = &current
        && sn <= current.sn
    {
        return conflict(state, current, message, bytes, tx);
    }
    let validated = match (&current, event.body()) {
        (None, EventBody::Inception(_)) => KeyState::incept(event, signatures),
        (None, _) => {
            return Step::Escrow(format!(
                "{qb64} is unknown: waiting for its inception (event has sequence number {sn})"
            ));
        }
        (Some(current), _) if sn > current.sn + 1 => {
            return Step::Escrow(format!(
                "{qb64} is at sequence number {}: waiting for {}",
                current.sn,
                current.sn + 1
            ));
        }
        (Some(current), _) => current.apply(event, signatures),
    };
    let validated = match validated {
        Ok(validated) => validated,
        Err(e @ ValidationError::OutOfOrder { .. }) => return Step::Escrow(e.to_string()),
        Err(ValidationError::PriorMismatch { .. }) if was_superseded(state, event) => {
            return Step::Rejected(superseded_error(event).to_string());
        }
        Err(e) => return Step::Rejected(e.to_string()),
    };
    if let Some(wait) = check_delegation(state, &validated, event) {
        return wait;
    }
    Step::Accepted(store(state, &validated, event, bytes, tx))
}

/// An event at an accepted sequence number: the same one, a recovery rotation, or duplicity
/// if it verifies against the key state that preceded that number.
fn conflict<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    current: &KeyState,
    message: &Message,
    bytes: &[u8],
    tx: &TxId,
) -> Step {
    let event = &message.event;
    let signatures = &message.attachments.signatures;
    let qb64 = event.prefix().qb64();
    let sn = event.sn();
    let accepted = state.decoded(&keys::id_event(&qb64, sn), stored_message);
    if accepted.is_some_and(|m| m.event.said() == event.said()) {
        return Step::Known;
    }
    if was_superseded(state, event) {
        return Step::Rejected(superseded_error(event).to_string());
    }
    let validated = if sn == 0 {
        KeyState::incept(event, signatures)
    } else {
        let prior = state.decoded(&keys::id_state_at(&qb64, sn - 1), stored::decode_key_state);
        match prior {
            Some(prior) => prior.apply(event, signatures),
            None => return Step::Rejected(format!("no key state of {qb64} at {}", sn - 1)),
        }
    };
    let validated = match validated {
        Ok(validated) => validated,
        Err(e) => {
            return Step::Rejected(format!(
                "{qb64} already has an accepted event at sequence number {sn}, and this one \
                 does not validate either: {e}"
            ));
        }
    };
    if let Err(not_recovery) = current.check_recovery(event) {
        record_duplicity(state, &qb64, sn, event, bytes);
        return Step::Duplicity(not_recovery.to_string());
    }
    if let Some(wait) = check_delegation(state, &validated, event) {
        return wait;
    }
    supersede(state, sn, current.sn, &qb64);
    Step::Accepted(store(state, &validated, event, bytes, tx))
}

/// Whether `event` was superseded by a recovery rotation.
fn was_superseded<S: Snapshot>(state: &Overlay<'_, S>, event: &Event) -> bool {
    let key = keys::id_superseded_seen(&event.prefix().qb64(), event.sn(), &event.said().qb64());
    state.get(&key).is_some()
}

fn superseded_error(event: &Event) -> ValidationError {
    ValidationError::Superseded {
        prefix: event.prefix().qb64(),
        sn: event.sn(),
        said: event.said().qb64(),
    }
}

/// For a delegated event: why it cannot be accepted yet (escrow) or at all, if so.
fn check_delegation<S: Snapshot>(
    state: &Overlay<'_, S>,
    validated: &Validated,
    event: &Event,
) -> Option<Step> {
    let delegator = validated.delegator?;
    let delegator_qb64 = delegator.qb64();
    match key_state(state, &delegator) {
        None => {
            return Some(Step::Escrow(format!(
                "delegator {delegator_qb64} is unknown: waiting for its inception"
            )));
        }
        Some(d) if d.do_not_delegate() => {
            return Some(Step::Rejected(format!(
                "delegator {delegator_qb64} does not delegate (DND)"
            )));
        }
        Some(_) => {}
    }
    let qb64 = event.prefix().qb64();
    let anchored = state.get(&keys::id_anchor(&delegator_qb64, &qb64, event.sn()));
    if anchored != Some(event.said().qb64().as_bytes()) {
        return Some(Step::Escrow(format!(
            "waiting for delegator {delegator_qb64} to anchor event {} of {qb64}",
            event.said().qb64()
        )));
    }
    None
}

/// Stores an accepted event: key state, KEL entry, transaction, and the anchors it makes.
/// Returns its seals.
fn store<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    validated: &Validated,
    event: &Event,
    bytes: &[u8],
    tx: &TxId,
) -> Vec<EventSeal> {
    let qb64 = event.prefix().qb64();
    let sn = event.sn();
    write_state(state, &validated.state);
    state.put(keys::id_event(&qb64, sn), bytes.to_vec());
    state.put(keys::id_event_tx(&qb64, sn), tx.as_ref().to_vec());
    let seals = seals_of(event);
    for seal in &seals {
        let delegate = seal.prefix.qb64();
        let key = keys::id_anchor(&qb64, &delegate, seal.sn);
        let said = seal.said.qb64();
        // Anchored already by an earlier event: that one stays the source.
        if state.get(&key) == Some(said.as_bytes()) {
            continue;
        }
        state.put(key, said.into_bytes());
        let source = keys::id_anchor_source(&qb64, &delegate, seal.sn);
        state.put(source, sn.to_be_bytes().to_vec());
    }
    seals
}

/// Moves the accepted events `from..=to` of `prefix` to the superseded record: their
/// anchors are removed, the entries after `from` deleted (the one at `from` is overwritten by
/// the recovery rotation). No limit on the count: each superseded event was a committed
/// transaction already, and a cap would let a thief holding the current key make the
/// identifier unrecoverable by signing enough interactions.
fn supersede<S: Snapshot>(state: &mut Overlay<'_, S>, from: u64, to: u64, prefix: &str) {
    let count_key = keys::id_superseded_count(prefix);
    let mut count = state.u64(&count_key);
    for sn in from..=to {
        // Absent only while the key is still to be fetched (NeedReads): the block is
        // applied again with it.
        let Some(bytes) = state.get(&keys::id_event(prefix, sn)).map(<[u8]>::to_vec) else {
            continue;
        };
        let tx = state
            .get(&keys::id_event_tx(prefix, sn))
            .and_then(|t| <[u8; 32]>::try_from(t).ok())
            .map(TxId::from);
        let Ok(event) = stored_message(&bytes).map(|m| m.event) else {
            state.decoded(&keys::id_event(prefix, sn), stored_message);
            continue;
        };
        unanchor(state, prefix, from, &event);
        let record = SupersededEvent {
            recovery_sn: from,
            tx,
            message: bytes,
        };
        state.put(keys::id_superseded(prefix, count), record.encode());
        let seen = keys::id_superseded_seen(prefix, sn, &event.said().qb64());
        state.put(seen, vec![1]);
        count += 1;
        if sn > from {
            state.delete(keys::id_event(prefix, sn));
            state.delete(keys::id_event_tx(prefix, sn));
            state.delete(keys::id_state_at(prefix, sn));
        }
    }
    state.put(count_key, count.to_be_bytes().to_vec());
}

/// Removes the anchors `event` of `delegator` recorded, now that the recovery at
/// `recovery_sn` superseded it, unless an earlier event made the same anchor first. An
/// anchor stored before sources were tracked has none and is removed.
fn unanchor<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    delegator: &str,
    recovery_sn: u64,
    event: &Event,
) {
    for seal in seals_of(event) {
        let delegate = seal.prefix.qb64();
        let key = keys::id_anchor(delegator, &delegate, seal.sn);
        if state.get(&key) != Some(seal.said.qb64().as_bytes()) {
            continue;
        }
        let source_key = keys::id_anchor_source(delegator, &delegate, seal.sn);
        let source = state.decoded(&source_key, stored::decode_u64);
        if source.is_some_and(|source| source < recovery_sn) {
            continue;
        }
        state.delete(key);
        state.delete(source_key);
    }
}

/// An event a recovery rotation superseded, as [`keys::id_superseded`] keeps it: version
/// byte 1, the recovery's sequence number (8 bytes, big-endian), 1 byte 1 and the
/// transaction id (32 bytes) or 1 byte 0, then the message as it was accepted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SupersededEvent {
    /// The sequence number of the recovery rotation that superseded it (the rotation is the
    /// KEL entry there).
    pub recovery_sn: u64,
    /// The transaction that carried it (absent for events accepted before transactions were
    /// indexed).
    pub tx: Option<TxId>,
    /// The key event message (event and signatures) as it was accepted.
    pub message: Vec<u8>,
}

impl SupersededEvent {
    /// Decodes a stored record.
    pub fn decode(value: &[u8]) -> Result<SupersededEvent, StoredError> {
        let r = &mut Reader::new("superseded event", value);
        r.version(SUPERSEDED_VERSION)?;
        let recovery_sn = r.u64()?;
        let tx = if r.bool()? {
            Some(TxId::from(r.bytes32()?))
        } else {
            None
        };
        Ok(SupersededEvent {
            recovery_sn,
            tx,
            message: r.rest.to_vec(),
        })
    }

    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(SUPERSEDED_VERSION);
        w.u64(self.recovery_sn);
        match &self.tx {
            Some(tx) => {
                w.u8(1);
                w.raw(tx.as_ref());
            }
            None => w.u8(0),
        }
        w.raw(&self.message);
        w.0
    }
}

/// The version byte of [`SupersededEvent`] records.
const SUPERSEDED_VERSION: u8 = 1;

/// The event seals `{i, s, d}` among an event's anchors.
fn seals_of(event: &Event) -> Vec<EventSeal> {
    let anchors = match event.body() {
        EventBody::Inception(e) => &e.anchors,
        EventBody::Rotation(e) => &e.anchors,
        EventBody::Interaction(e) => &e.anchors,
        EventBody::Receipt(_) => return Vec::new(),
    };
    anchors.iter().filter_map(EventSeal::from_json).collect()
}

fn record_duplicity<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    prefix: &str,
    sn: u64,
    event: &Event,
    bytes: &[u8],
) {
    let marker = keys::id_duplicity_seen(prefix, sn, &event.said().qb64());
    if state.get(&marker).is_some() {
        return;
    }
    state.put(marker, vec![1]);
    let count_key = keys::id_duplicity_count(prefix);
    let count = state.u64(&count_key);
    state.put(keys::id_duplicity(prefix, count), bytes.to_vec());
    state.put(count_key, (count + 1).to_be_bytes().to_vec());
}

/// Retries escrowed events that the acceptance of (`prefix`, `sn`) with `seals` may unblock:
/// the next event of `prefix`, and the delegated events the seals approve. Returns the
/// transactions of those accepted, in order. Bounded: each slot is retried after an event
/// was accepted, and each escrowed event is accepted at most once.
fn release<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    prefix: Prefix,
    sn: u64,
    seals: Vec<EventSeal>,
    now_ms: u64,
) -> Vec<SignedTransaction> {
    let mut released = Vec::new();
    let mut slots: VecDeque<(Prefix, u64)> = VecDeque::new();
    slots.push_back((prefix, sn + 1));
    slots.extend(seals.iter().map(|s| (s.prefix, s.sn)));
    while let Some((prefix, sn)) = slots.pop_front() {
        let qb64 = prefix.qb64();
        if escrow::count(state, &qb64) == 0 {
            continue;
        }
        escrow::prefetch_chain(state, &prefix, sn);
        let loaded = escrow::load(state, &qb64, sn, now_ms);
        let stored = loaded.stored;
        if loaded.live.is_empty() {
            escrow::store(state, &qb64, sn, stored, &[], false);
            continue;
        }
        let mut still = Vec::new();
        for entry in loaded.live {
            let Ok((message, _)) = parse_message(entry.message()) else {
                continue;
            };
            match step(state, &message, entry.message(), &entry.tx.id()) {
                Step::Accepted(seals) => {
                    released.push(entry.tx);
                    slots.push_back((prefix, sn + 1));
                    slots.extend(seals.iter().map(|s| (s.prefix, s.sn)));
                }
                Step::Escrow(_) => still.push(entry),
                Step::Known | Step::Duplicity(_) | Step::Rejected(_) => {}
            }
        }
        let changed = still.len() as u64 != stored;
        escrow::store(state, &qb64, sn, stored, &still, changed);
    }
    released
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{ApplyError::NeedReads, Env, Fetched, apply, apply_to_map, check_signatures};
    use commonware_cryptography::Signer as _;
    use std::collections::BTreeMap;
    use welkin_keri::{
        InceptionBuilder, RotationBuilder, Signer, Threshold, interact, seal_anchors, sign, signed,
    };
    use welkin_types::{
        Block, ChainParams, Outcome, Payload, PrivateKey, Sender, Transaction, hash_parts,
    };

    fn env() -> Env {
        Env {
            cluster_id: hash_parts(&[b"cluster"]),
            params: ChainParams::default(),
            members: Vec::new(),
            retired: Vec::new(),
            threshold: 0,
            domains: Vec::new(),
            cluster_key: None,
            membership: None,
        }
    }

    /// A cluster state and a submitter that wraps key event messages in transactions.
    struct Chain {
        state: BTreeMap<welkin_types::Digest, Vec<u8>>,
        submitter: PrivateKey,
        nonce: u64,
        height: u64,
        /// Ids of the transactions of the last block committed.
        last_ids: Vec<welkin_types::TxId>,
    }

    impl Chain {
        fn new() -> Self {
            Self {
                state: BTreeMap::new(),
                submitter: PrivateKey::from_seed(7),
                nonce: 0,
                height: 0,
                last_ids: Vec::new(),
            }
        }

        fn tx(&mut self, message: Vec<u8>) -> welkin_types::SignedTransaction {
            self.nonce += 1;
            Transaction {
                sender: Sender::Key(self.submitter.public_key()),
                nonce: self.nonce,
                expiry_ms: 1_010_000,
                payload: Payload::KeyEvent(message),
            }
            .sign(&self.submitter, &env().cluster_id)
        }

        /// Commits the messages in one block; returns each one's outcome and detail.
        fn commit(&mut self, messages: Vec<Vec<u8>>) -> Vec<(Outcome, Option<String>)> {
            self.height += 1;
            let txs: Vec<_> = messages.into_iter().map(|m| self.tx(m)).collect();
            let ids: Vec<_> = txs.iter().map(|t| t.id()).collect();
            self.last_ids = ids.clone();
            let block = Block::new(
                hash_parts(&[b"p"]),
                self.height,
                1_000_000 + self.height,
                txs,
            );
            let effects = apply_to_map(&env(), &mut self.state, &block);
            effects
                .receipts
                .iter()
                .zip(ids)
                .map(|((_, receipt), id)| {
                    let detail = self
                        .state
                        .get(&keys::outcome_detail(&id))
                        .map(|d| String::from_utf8_lossy(d).into_owned());
                    (receipt.outcome, detail)
                })
                .collect()
        }

        fn one(&mut self, message: Vec<u8>) -> (Outcome, Option<String>) {
            self.commit(vec![message]).remove(0)
        }

        fn key_state(&self, prefix: &Prefix) -> Option<KeyState> {
            stored_key_state(
                self.state
                    .get(&keys::id_state(&prefix.qb64()))
                    .map(Vec::as_slice),
            )
            .expect("stored key states decode")
        }
    }

    fn bytes(message: Message) -> Vec<u8> {
        message.to_bytes().expect("encodes")
    }

    /// An identifier with one key and one pre-committed next key.
    struct Controller {
        current: Signer,
        next: Signer,
        after: Signer,
    }

    impl Controller {
        fn new(seed: u8) -> Self {
            Self {
                current: Signer::new(&[seed; 32]),
                next: Signer::new(&[seed + 1; 32]),
                after: Signer::new(&[seed + 2; 32]),
            }
        }

        fn inception(&self) -> InceptionBuilder {
            InceptionBuilder::new(vec![self.current.verkey()])
                .next(vec![self.next.verkey().next_digest()], Threshold::Simple(1))
        }

        fn icp(&self) -> Message {
            let event = self.inception().build();
            let sigs = sign(&event, std::slice::from_ref(&self.current));
            signed(event, sigs)
        }

        fn rot(&self, state: &KeyState) -> Message {
            let event = RotationBuilder::new(state, vec![self.next.verkey()])
                .next(
                    vec![self.after.verkey().next_digest()],
                    Threshold::Simple(1),
                )
                .build();
            let sigs = sign(&event, std::slice::from_ref(&self.next));
            signed(event, sigs)
        }

        fn ixn(
            &self,
            state: &KeyState,
            signer: &Signer,
            anchors: Vec<welkin_keri::Json>,
        ) -> Message {
            let event = interact(state, anchors);
            let sigs = sign(&event, std::slice::from_ref(signer));
            signed(event, sigs)
        }
    }

    /// A chain where one controller's identifier is incepted.
    fn incepted() -> (Chain, Controller, Prefix, KeyState) {
        let mut chain = Chain::new();
        let alice = Controller::new(1);
        let icp = alice.icp();
        let prefix = icp.event.prefix();
        assert_eq!(chain.one(bytes(icp)).0, Outcome::Applied);
        let state = chain.key_state(&prefix).expect("incepted");
        (chain, alice, prefix, state)
    }

    #[test]
    fn inception_rotation_interaction_are_accepted_and_old_keys_stop_working() {
        let (mut chain, alice, prefix, state) = incepted();
        assert_eq!(state.sn, 0);
        assert_eq!(chain.one(bytes(alice.rot(&state))).0, Outcome::Applied);
        let state = chain.key_state(&prefix).expect("rotated");
        assert_eq!((state.sn, state.signing.keys[0]), (1, alice.next.verkey()));
        // The rotated-out key no longer signs for the identifier.
        let (outcome, detail) = chain.one(bytes(alice.ixn(&state, &alice.current, vec![])));
        assert_eq!(outcome, Outcome::Rejected);
        assert!(detail.expect("a reason").contains("does not verify"));
        assert_eq!(
            chain.one(bytes(alice.ixn(&state, &alice.next, vec![]))).0,
            Outcome::Applied
        );
        assert_eq!(chain.key_state(&prefix).expect("state").sn, 2);
    }

    #[test]
    fn resubmitting_an_accepted_event_is_harmless() {
        let mut chain = Chain::new();
        let icp = bytes(Controller::new(1).icp());
        assert_eq!(chain.one(icp.clone()).0, Outcome::Applied);
        assert_eq!(chain.one(icp).0, Outcome::Applied);
    }

    #[test]
    fn out_of_order_events_wait_in_escrow_and_are_released() {
        let mut chain = Chain::new();
        let alice = Controller::new(1);
        let icp = alice.icp();
        let prefix = icp.event.prefix();
        // Build the rotation against the state the inception will create.
        let mut scratch = Chain::new();
        scratch.one(bytes(icp.clone()));
        let rot = alice.rot(&scratch.key_state(&prefix).expect("state"));
        let (outcome, detail) = chain.one(bytes(rot));
        assert_eq!(outcome, Outcome::Escrowed);
        assert!(detail.expect("reason").contains("unknown"));
        let rot_tx = chain.last_ids[0];
        assert!(chain.key_state(&prefix).is_none());
        assert_eq!(chain.one(bytes(icp)).0, Outcome::Applied);
        assert_eq!(
            chain.key_state(&prefix).expect("state").sn,
            1,
            "the escrowed rotation was accepted after the inception"
        );
        assert!(
            !chain
                .state
                .contains_key(&keys::id_escrow(&prefix.qb64(), 1)),
            "the escrow slot is emptied"
        );
        assert_eq!(
            chain.state.get(&keys::id_event_tx(&prefix.qb64(), 1)),
            Some(&rot_tx.as_ref().to_vec()),
            "the released event is indexed to the transaction that carried it"
        );
    }

    #[test]
    fn a_second_validly_signed_event_at_an_accepted_number_is_duplicity_evidence() {
        let (mut chain, alice, prefix, state) = incepted();
        let first = alice.ixn(&state, &alice.current, vec![]);
        let seal = welkin_keri::EventSeal {
            prefix,
            sn: 9,
            said: welkin_keri::Digest::of(b"x"),
        };
        let second = alice.ixn(&state, &alice.current, seal_anchors(&[seal]));
        assert_ne!(first.event.said(), second.event.said());
        assert_eq!(chain.one(bytes(first.clone())).0, Outcome::Applied);
        let (outcome, detail) = chain.one(bytes(second.clone()));
        assert_eq!(outcome, Outcome::Duplicity);
        assert!(
            detail
                .as_deref()
                .is_some_and(|d| d.contains("duplicitous event")),
            "the receipt says why: {detail:?}"
        );
        assert_eq!(
            chain.one(bytes(second.clone())).0,
            Outcome::Duplicity,
            "again: still refused, recorded once"
        );
        let qb64 = prefix.qb64();
        assert_eq!(
            crate::read_u64(
                chain
                    .state
                    .get(&keys::id_duplicity_count(&qb64))
                    .map(Vec::as_slice)
            ),
            1
        );
        assert_eq!(
            chain.state.get(&keys::id_duplicity(&qb64, 0)),
            Some(&bytes(second))
        );
        assert_eq!(
            chain.key_state(&prefix).expect("state").digest,
            first.event.said(),
            "first seen wins"
        );
        // A conflicting event that is not validly signed is no evidence.
        let other = welkin_keri::EventSeal { sn: 10, ..seal };
        let forged = alice.ixn(&state, &alice.after, seal_anchors(&[other]));
        assert_eq!(chain.one(bytes(forged)).0, Outcome::Rejected);
    }

    #[test]
    fn delegated_inception_waits_for_the_delegators_anchor() {
        let mut chain = Chain::new();
        let boss = Controller::new(10);
        let boss_icp = boss.icp();
        let boss_prefix = boss_icp.event.prefix();
        chain.one(bytes(boss_icp));
        let worker = Controller::new(20);
        let dip = worker.inception().delegator(boss_prefix).build();
        let seal = dip.seal();
        let sigs = sign(&dip, std::slice::from_ref(&worker.current));
        let dip = signed(dip, sigs);
        let worker_prefix = dip.event.prefix();
        let (outcome, detail) = chain.one(bytes(dip));
        assert_eq!(outcome, Outcome::Escrowed);
        assert!(detail.expect("reason").contains("anchor"));
        // The delegator anchors the seal: the delegated inception is released in that block.
        let boss_state = chain.key_state(&boss_prefix).expect("state");
        let anchor = boss.ixn(&boss_state, &boss.current, seal_anchors(&[seal]));
        assert_eq!(chain.one(bytes(anchor)).0, Outcome::Applied);
        let worker_state = chain.key_state(&worker_prefix).expect("released");
        assert_eq!(worker_state.delegator, Some(boss_prefix));
    }

    #[test]
    fn a_do_not_delegate_identifier_cannot_delegate() {
        let mut chain = Chain::new();
        let boss = Controller::new(10);
        let event = boss.inception().config(&["DND"]).build();
        let sigs = sign(&event, std::slice::from_ref(&boss.current));
        let boss_prefix = event.prefix();
        chain.one(bytes(signed(event, sigs)));
        let worker = Controller::new(20);
        let dip = worker.inception().delegator(boss_prefix).build();
        let sigs = sign(&dip, std::slice::from_ref(&worker.current));
        let (outcome, detail) = chain.one(bytes(signed(dip, sigs)));
        assert_eq!(outcome, Outcome::Rejected);
        assert!(detail.expect("reason").contains("DND"));
    }

    #[test]
    fn malformed_messages_are_rejected_with_a_reason() {
        let mut chain = Chain::new();
        let (outcome, detail) = chain.one(b"{\"v\":\"KERI10JSON".to_vec());
        assert_eq!(outcome, Outcome::Rejected);
        assert!(detail.expect("reason").starts_with("malformed key event"));
        let mut two = bytes(Controller::new(1).icp());
        two.extend_from_slice(&bytes(Controller::new(5).icp()));
        let (outcome, detail) = chain.one(two);
        assert_eq!(outcome, Outcome::Rejected);
        assert!(
            detail
                .expect("reason")
                .contains("one key event per transaction")
        );
    }

    /// A rotation following `state` to `keys` signed by `signer`, committing to `after`.
    fn rotation(state: &KeyState, signer: &Signer, after: &Signer) -> Message {
        let event = RotationBuilder::new(state, vec![signer.verkey()])
            .next(vec![after.verkey().next_digest()], Threshold::Simple(1))
            .build();
        let sigs = sign(&event, std::slice::from_ref(signer));
        signed(event, sigs)
    }

    /// An identifier whose current key signed two interactions (a thief could have): the
    /// chain, the controller, and the key state after each of its three events.
    fn compromised() -> (Chain, Controller, Vec<KeyState>) {
        let (mut chain, alice, prefix, state) = incepted();
        let mut states = vec![state];
        for _ in 0..2 {
            let last = states.last().expect("incepted");
            let ixn = alice.ixn(last, &alice.current, vec![]);
            assert_eq!(chain.one(bytes(ixn)).0, Outcome::Applied);
            states.push(chain.key_state(&prefix).expect("accepted"));
        }
        (chain, alice, states)
    }

    fn superseded_records(chain: &Chain, prefix: &Prefix) -> Vec<SupersededEvent> {
        let qb64 = prefix.qb64();
        let count = chain.state.get(&keys::id_superseded_count(&qb64));
        (0..crate::read_u64(count.map(Vec::as_slice)))
            .map(|i| {
                let value = chain.state.get(&keys::id_superseded(&qb64, i));
                SupersededEvent::decode(value.expect("record")).expect("decodes")
            })
            .collect()
    }

    #[test]
    fn a_recovery_rotation_replaces_the_interactions_it_supersedes() {
        let (mut chain, alice, states) = compromised();
        let prefix = states[0].prefix;
        let qb64 = prefix.qb64();
        let ixns: Vec<Vec<u8>> = (1..=2)
            .map(|sn| chain.state[&keys::id_event(&qb64, sn)].clone())
            .collect();
        let ixn_txs: Vec<Vec<u8>> = (1..=2)
            .map(|sn| chain.state[&keys::id_event_tx(&qb64, sn)].clone())
            .collect();
        let rot = alice.rot(&states[0]);
        assert_eq!(rot.event.sn(), 1);
        assert_eq!(chain.one(bytes(rot.clone())), (Outcome::Applied, None));
        let state = chain.key_state(&prefix).expect("recovered");
        assert_eq!((state.sn, state.ilk.as_str()), (1, "rot"));
        assert_eq!(state.digest, rot.event.said());
        assert_eq!(state.signing.keys, vec![alice.next.verkey()]);
        assert_eq!(state.last_establishment_sn, 1);
        // The KEL is icp, rot: the entry at 1 rewritten, the one at 2 gone.
        assert_eq!(
            chain.state.get(&keys::id_event(&qb64, 1)),
            Some(&bytes(rot.clone()))
        );
        assert_eq!(
            chain.state.get(&keys::id_event_tx(&qb64, 1)),
            Some(&chain.last_ids[0].as_ref().to_vec())
        );
        assert_eq!(
            stored_key_state(
                chain
                    .state
                    .get(&keys::id_state_at(&qb64, 1))
                    .map(Vec::as_slice)
            ),
            Ok(Some(state.clone()))
        );
        for key in [
            keys::id_event(&qb64, 2),
            keys::id_event_tx(&qb64, 2),
            keys::id_state_at(&qb64, 2),
        ] {
            assert!(!chain.state.contains_key(&key));
        }
        // The superseded messages are kept, with their transactions.
        let records = superseded_records(&chain, &prefix);
        assert_eq!(records.len(), 2);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.recovery_sn, 1);
            assert_eq!(record.message, ixns[i]);
            assert_eq!(
                record.tx.map(|t| t.as_ref().to_vec()),
                Some(ixn_txs[i].clone())
            );
        }
        assert!(
            !chain.state.contains_key(&keys::id_duplicity_count(&qb64)),
            "a recovery is not duplicity"
        );
        // A superseded event cannot come back, at its number or after the recovery.
        for ixn in &ixns {
            let (outcome, detail) = chain.one(ixn.clone());
            assert_eq!(outcome, Outcome::Rejected);
            assert!(
                detail
                    .expect("reason")
                    .contains("superseded by a recovery rotation")
            );
        }
        // The compromised key signs nothing any more; the recovered one does.
        let (outcome, detail) = chain.one(bytes(alice.ixn(&state, &alice.current, vec![])));
        assert_eq!(outcome, Outcome::Rejected);
        assert!(detail.expect("reason").contains("does not verify"));
        let ixn = alice.ixn(&state, &alice.next, vec![]);
        assert_eq!(chain.one(bytes(ixn)).0, Outcome::Applied);
        assert_eq!(chain.key_state(&prefix).expect("state").sn, 2);
    }

    #[test]
    fn a_rotation_cannot_supersede_a_rotation() {
        let (mut chain, alice, prefix, state) = incepted();
        assert_eq!(chain.one(bytes(alice.rot(&state))).0, Outcome::Applied);
        let rotated = chain.key_state(&prefix).expect("rotated");
        let ixn = alice.ixn(&rotated, &alice.next, vec![]);
        assert_eq!(chain.one(bytes(ixn)).0, Outcome::Applied);
        // The same next key, another commitment: validly signed, but over a rotation.
        let other = rotation(&state, &alice.next, &Signer::new(&[99; 32]));
        assert_eq!(chain.one(bytes(other.clone())).0, Outcome::Duplicity);
        let qb64 = prefix.qb64();
        assert_eq!(
            chain.state.get(&keys::id_duplicity(&qb64, 0)),
            Some(&bytes(other))
        );
        assert_eq!(chain.key_state(&prefix).expect("state").sn, 2);
        assert!(superseded_records(&chain, &prefix).is_empty());
    }

    #[test]
    fn an_interaction_cannot_supersede() {
        let (mut chain, alice, states) = compromised();
        let other = alice.ixn(
            &states[0],
            &alice.current,
            vec![welkin_keri::Json::string("x")],
        );
        assert_eq!(chain.one(bytes(other)).0, Outcome::Duplicity);
        let state = chain.key_state(&states[0].prefix).expect("state");
        assert_eq!(state.digest, states[2].digest, "first seen wins");
        assert!(superseded_records(&chain, &state.prefix).is_empty());
    }

    #[test]
    fn a_recovery_is_refused_unless_it_follows_every_rule() {
        let (mut chain, alice, states) = compromised();
        let prefix = states[0].prefix;
        let after = Signer::new(&[98; 32]);
        // Names the inception, not the ixn at 1, as the event before sn 2.
        let EventBody::Rotation(mut body) = rotation(&states[1], &alice.next, &after)
            .event
            .body()
            .clone()
        else {
            panic!("rotation")
        };
        body.prior = states[0].digest;
        let event = Event::new(EventBody::Rotation(body));
        let sigs = sign(&event, std::slice::from_ref(&alice.next));
        let wrong_prior = signed(event, sigs);
        // Signed by the compromised key instead of the revealed next key.
        let event = rotation(&states[0], &alice.next, &after).event;
        let sigs = sign(&event, std::slice::from_ref(&alice.current));
        let bad_signature = signed(event, sigs);
        // The thief rotating to its own key: not the committed next key.
        let not_committed = rotation(&states[0], &alice.current, &after);
        for (message, reason) in [
            (wrong_prior, "prior event digest"),
            (bad_signature, "does not verify"),
            (not_committed, "do not satisfy prior next threshold"),
        ] {
            let (outcome, detail) = chain.one(bytes(message));
            assert_eq!(outcome, Outcome::Rejected);
            let detail = detail.expect("a reason");
            assert!(detail.contains(reason), "{detail}");
        }
        let state = chain.key_state(&prefix).expect("state");
        assert_eq!(state.digest, states[2].digest);
        assert!(superseded_records(&chain, &prefix).is_empty());
        assert!(
            !chain
                .state
                .contains_key(&keys::id_duplicity_count(&prefix.qb64()))
        );
    }

    /// A delegator whose ixn at 1 anchors delegate w1's (accepted) inception and whose ixn
    /// at 2 anchors w1's again and w2's (not yet submitted): the chain, the delegator, its
    /// states, w1's prefix and w2's signed inception.
    fn delegating() -> (Chain, Controller, Vec<KeyState>, Prefix, Message) {
        let mut chain = Chain::new();
        let boss = Controller::new(10);
        let icp = boss.icp();
        let boss_prefix = icp.event.prefix();
        chain.one(bytes(icp));
        let dip = |seed: u8| {
            let worker = Controller::new(seed);
            let dip = worker.inception().delegator(boss_prefix).build();
            let sigs = sign(&dip, std::slice::from_ref(&worker.current));
            signed(dip, sigs)
        };
        let (w1, w2) = (dip(20), dip(30));
        assert_eq!(chain.one(bytes(w1.clone())).0, Outcome::Escrowed);
        let mut states = vec![chain.key_state(&boss_prefix).expect("state")];
        for seals in [
            vec![w1.event.seal()],
            vec![w1.event.seal(), w2.event.seal()],
        ] {
            let last = states.last().expect("incepted");
            let ixn = boss.ixn(last, &boss.current, seal_anchors(&seals));
            assert_eq!(chain.one(bytes(ixn)).0, Outcome::Applied);
            states.push(chain.key_state(&boss_prefix).expect("state"));
        }
        let w1 = w1.event.prefix();
        assert!(chain.key_state(&w1).is_some(), "released by the anchor");
        (chain, boss, states, w1, w2)
    }

    #[test]
    fn a_recovery_removes_the_anchors_only_superseded_events_made() {
        let (mut chain, boss, states, w1, w2) = delegating();
        let boss_qb64 = states[0].prefix.qb64();
        // Supersede the ixn at 2 only: w1 stays anchored by the ixn at 1, w2 loses it.
        let rot = rotation(&states[1], &boss.next, &boss.after);
        assert_eq!(chain.one(bytes(rot)).0, Outcome::Applied);
        assert!(
            chain
                .state
                .contains_key(&keys::id_anchor(&boss_qb64, &w1.qb64(), 0))
        );
        assert!(!chain.state.contains_key(&keys::id_anchor(
            &boss_qb64,
            &w2.event.prefix().qb64(),
            0
        )));
        let (outcome, detail) = chain.one(bytes(w2));
        assert_eq!(outcome, Outcome::Escrowed);
        assert!(detail.expect("reason").contains("to anchor"));
    }

    #[test]
    fn an_accepted_delegated_event_stays_when_its_only_anchor_is_superseded() {
        let (mut chain, boss, states, w1, _) = delegating();
        let boss_qb64 = states[0].prefix.qb64();
        let rot = rotation(&states[0], &boss.next, &boss.after);
        assert_eq!(chain.one(bytes(rot)).0, Outcome::Applied);
        let anchor = keys::id_anchor(&boss_qb64, &w1.qb64(), 0);
        assert!(!chain.state.contains_key(&anchor), "the anchor is gone");
        assert!(
            !chain
                .state
                .contains_key(&keys::id_anchor_source(&boss_qb64, &w1.qb64(), 0))
        );
        assert_eq!(
            chain.key_state(&w1).expect("still accepted").sn,
            0,
            "first seen: the delegate's accepted inception stays"
        );
    }

    #[test]
    fn a_delegated_recovery_waits_for_its_anchor() {
        let (mut chain, boss, states, w1, _) = delegating();
        let worker = Controller::new(20);
        let w0 = chain.key_state(&w1).expect("accepted");
        let ixn = worker.ixn(&w0, &worker.current, vec![]);
        assert_eq!(chain.one(bytes(ixn)).0, Outcome::Applied);
        let drt = worker.rot(&w0);
        assert_eq!(drt.event.ilk(), welkin_keri::Ilk::Drt);
        let (outcome, detail) = chain.one(bytes(drt.clone()));
        assert_eq!(outcome, Outcome::Escrowed);
        assert!(detail.expect("reason").contains("to anchor"));
        let ixn = boss.ixn(&states[2], &boss.current, seal_anchors(&[drt.event.seal()]));
        assert_eq!(chain.one(bytes(ixn)).0, Outcome::Applied);
        let state = chain.key_state(&w1).expect("state");
        assert_eq!((state.sn, state.digest), (1, drt.event.said()));
        assert_eq!(superseded_records(&chain, &w1).len(), 1);
    }

    #[test]
    fn a_recovery_applies_the_same_through_read_rounds() {
        let (mut chain, alice, states) = compromised();
        let tx = chain.tx(bytes(alice.rot(&states[0])));
        let block = Block::new(hash_parts(&[b"p"]), 9, 1_000_009, vec![tx]);
        let verdicts = check_signatures(&env().cluster_id, &block);
        let mut fetched = Fetched::default();
        let mut wanted = crate::reads(&block);
        let effects = loop {
            for key in wanted {
                fetched.0.insert(key, chain.state.get(&key).cloned());
            }
            match apply(&env(), &fetched, &block, &verdicts) {
                Ok(effects) => break effects,
                Err(NeedReads(keys)) => wanted = keys,
                Err(corrupt) => panic!("{corrupt}"),
            }
        };
        let mut whole = chain.state.clone();
        assert_eq!(effects, apply_to_map(&env(), &mut whole, &block));
        let state = stored_key_state(
            whole
                .get(&keys::id_state(&states[0].prefix.qb64()))
                .map(Vec::as_slice),
        );
        assert_eq!(state.map(|s| s.map(|s| s.sn)), Ok(Some(1)));
    }

    #[test]
    fn apply_asks_for_the_keys_it_could_not_name_up_front() {
        let (mut chain, alice, _, state) = incepted();
        let tx = chain.tx(bytes(alice.ixn(&state, &alice.current, vec![])));
        let block = Block::new(hash_parts(&[b"p"]), 9, 1_000_009, vec![tx]);
        let verdicts = check_signatures(&env().cluster_id, &block);
        let mut fetched = Fetched::default();
        let mut wanted = crate::reads(&block);
        let mut rounds = 0;
        let effects = loop {
            rounds += 1;
            for key in wanted {
                fetched.0.insert(key, chain.state.get(&key).cloned());
            }
            match apply(&env(), &fetched, &block, &verdicts) {
                Ok(effects) => break effects,
                Err(NeedReads(keys)) => {
                    assert!(!keys.is_empty());
                    wanted = keys;
                }
                Err(corrupt) => panic!("{corrupt}"),
            }
        };
        assert!(rounds > 1, "the key state was not among the up-front reads");
        let mut whole = chain.state.clone();
        assert_eq!(effects, apply_to_map(&env(), &mut whole, &block));
    }
}
