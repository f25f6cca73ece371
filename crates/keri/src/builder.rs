//! Making events and signing them: builders with keripy's defaults, and indexed signing.

use crate::attachment::Attachments;
use crate::cesr::IndexedSignature;
use crate::event::{Event, EventBody, EventSeal, Inception, Interaction, Rotation, Signing};
use crate::json::Json;
use crate::kever::KeyState;
use crate::parse::Message;
use crate::primitive::{Digest, Prefix, Signer, VerKey};
use crate::threshold::Threshold;

/// The `kt` and `next` setters both builders share.
macro_rules! signing_setters {
    () => {
        /// Sets the signing threshold.
        pub fn kt(mut self, kt: Threshold) -> Self {
            self.body.signing.kt = kt;
            self
        }

        /// Commits to next keys: their digests (see [`VerKey::next_digest`]) and the next
        /// threshold.
        pub fn next(mut self, next: Vec<Digest>, nt: Threshold) -> Self {
            self.body.signing.next = next;
            self.body.signing.nt = nt;
            self
        }
    };
}

/// An inception (`icp`, or `dip` with a delegator). Defaults as keripy's `incept`: a
/// majority signing threshold, no next keys (not rotatable), no witnesses, no traits,
/// no anchors, and a self-addressing prefix.
#[derive(Clone, Debug)]
pub struct InceptionBuilder {
    body: Inception,
    basic: bool,
}

impl InceptionBuilder {
    /// Starts an inception with these signing keys.
    pub fn new(keys: Vec<VerKey>) -> InceptionBuilder {
        let kt = Threshold::majority(keys.len());
        let body = Inception {
            prefix: Prefix::SelfAddressing(Digest([0; 32])),
            signing: Signing {
                kt,
                keys,
                nt: Threshold::Simple(0),
                next: Vec::new(),
            },
            bt: 0,
            witnesses: Vec::new(),
            config: Vec::new(),
            anchors: Vec::new(),
            delegator: None,
        };
        InceptionBuilder { body, basic: false }
    }

    signing_setters!();

    /// Sets witnesses and their threshold.
    pub fn witnesses(mut self, witnesses: Vec<Prefix>, bt: u64) -> Self {
        self.body.witnesses = witnesses;
        self.body.bt = bt;
        self
    }

    /// Sets configuration traits (`EO`, `DND`, `NB`).
    pub fn config(mut self, traits: &[&str]) -> Self {
        self.body.config = traits.iter().map(|t| t.to_string()).collect();
        self
    }

    /// Sets anchored data.
    pub fn anchors(mut self, anchors: Vec<Json>) -> Self {
        self.body.anchors = anchors;
        self
    }

    /// Makes this a delegated inception (`dip`).
    pub fn delegator(mut self, delegator: Prefix) -> Self {
        self.body.delegator = Some(delegator);
        self
    }

    /// Uses the single key as the prefix (basic `D`, or `B` for a non-transferable key).
    pub fn basic(mut self) -> Self {
        self.basic = true;
        self
    }

    /// The event (its SAID and, unless basic, prefix computed).
    pub fn build(mut self) -> Event {
        if let (true, Some(key)) = (self.basic, self.body.signing.keys.first()) {
            self.body.prefix = Prefix::Basic(*key);
        }
        Event::new(EventBody::Inception(self.body))
    }
}

/// A rotation (`rot`, or `drt` for a delegated identifier) following a key state.
/// Defaults: majority threshold, no next keys (abandonment), same witness threshold,
/// no witness changes, no anchors.
#[derive(Clone, Debug)]
pub struct RotationBuilder {
    body: Rotation,
}

impl RotationBuilder {
    /// Starts a rotation of `state` to these signing keys.
    pub fn new(state: &KeyState, keys: Vec<VerKey>) -> RotationBuilder {
        let body = Rotation {
            prefix: state.prefix,
            sn: state.sn.saturating_add(1),
            prior: state.digest,
            signing: Signing {
                kt: Threshold::majority(keys.len()),
                keys,
                nt: Threshold::Simple(0),
                next: Vec::new(),
            },
            bt: state.bt,
            cuts: Vec::new(),
            adds: Vec::new(),
            anchors: Vec::new(),
            delegated: state.delegator.is_some(),
        };
        RotationBuilder { body }
    }

    signing_setters!();

    /// Cuts and adds witnesses and sets the new witness threshold.
    pub fn witnesses(mut self, cuts: Vec<Prefix>, adds: Vec<Prefix>, bt: u64) -> Self {
        self.body.cuts = cuts;
        self.body.adds = adds;
        self.body.bt = bt;
        self
    }

    /// Sets anchored data.
    pub fn anchors(mut self, anchors: Vec<Json>) -> Self {
        self.body.anchors = anchors;
        self
    }

    /// The event.
    pub fn build(self) -> Event {
        Event::new(EventBody::Rotation(self.body))
    }
}

/// An interaction following `state`, anchoring `anchors`.
pub fn interact(state: &KeyState, anchors: Vec<Json>) -> Event {
    Event::new(EventBody::Interaction(Interaction {
        prefix: state.prefix,
        sn: state.sn.saturating_add(1),
        prior: state.digest,
        anchors,
    }))
}

/// An anchor list holding event seals (a delegator approving delegated events).
pub fn seal_anchors(seals: &[EventSeal]) -> Vec<Json> {
    seals.iter().map(EventSeal::to_json).collect()
}

/// Signs `event` with `signer` as key `index` of the current list, revealing prior next
/// digest `ondex` (or none: a current-only signature).
pub fn sign_indexed(
    event: &Event,
    signer: &Signer,
    index: u32,
    ondex: Option<u32>,
) -> IndexedSignature {
    IndexedSignature {
        index,
        ondex,
        signature: signer.sign(event.raw().as_bytes()),
    }
}

/// Signs `event` with each signer at its position, each revealing the same position of the
/// prior next list (keripy's default `Siger` with one index for both lists).
pub fn sign(event: &Event, signers: &[Signer]) -> Vec<IndexedSignature> {
    signers
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let i = u32::try_from(i).expect("at most MAX_LIST keys");
            sign_indexed(event, s, i, Some(i))
        })
        .collect()
}

/// A message of `event` with controller signatures.
pub fn signed(event: Event, signatures: Vec<IndexedSignature>) -> Message {
    Message {
        event,
        attachments: Attachments {
            signatures,
            ..Attachments::default()
        },
    }
}
