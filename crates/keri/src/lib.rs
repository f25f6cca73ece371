//! KERI key event logs: CESR primitives, events, signatures, validation and receipts,
//! interoperable with keripy.
//!
//! An identifier's *key event log* (KEL) starts with an inception that fixes its signing
//! keys, threshold and a commitment (digests) to the next keys; rotations reveal the
//! committed keys and commit to new ones (pre-rotation); interactions anchor data. Every
//! event names the prior one by its SAID (self-addressing identifier: a digest of the event
//! with that field blanked) and is signed by the current keys.
//!
//! The formats are those of KERI 1.0 JSON as keripy 1.1.17 writes them, byte for byte:
//!
//! - [`cesr`]: qb64 primitives, indexed signatures and attachment counters.
//! - [`event`]: event types, field order, version string and SAIDs ([`Event`]).
//! - [`parse`]: strict reading of events and message streams ([`parse_message`]).
//! - [`attachment`]: CESR attachment groups ([`Attachments`]).
//! - [`threshold`]: numeric and weighted thresholds ([`Threshold`]).
//! - [`kever`]: key state ([`KeyState`]) and the validation of one event.
//! - [`kevery`]: the processor over many identifiers with escrow, delegation, witnesses
//!   and duplicity evidence ([`Kevery`]).
//! - [`builder`], [`receipt`]: making and signing events and receipts.
//!
//! ```
//! use welkin_keri::{InceptionBuilder, Kevery, KeveryConfig, Outcome, RotationBuilder};
//! use welkin_keri::{Signer, Threshold, interact, sign, signed};
//!
//! let current = Signer::new(&[1; 32]);
//! let next = Signer::new(&[2; 32]);
//! let icp = InceptionBuilder::new(vec![current.verkey()])
//!     .next(vec![next.verkey().next_digest()], Threshold::Simple(1))
//!     .build();
//! let prefix = icp.prefix();
//! let mut kevery = Kevery::new(KeveryConfig::default());
//! let sigs = sign(&icp, &[current]);
//! assert_eq!(kevery.process(signed(icp, sigs))?, Outcome::Accepted { released: 0 });
//!
//! let state = kevery.state(&prefix).expect("accepted").clone();
//! let rot = RotationBuilder::new(&state, vec![next.verkey()]).build();
//! let sigs = sign(&rot, &[next.clone()]);
//! kevery.process(signed(rot, sigs))?;
//! let state = kevery.state(&prefix).expect("accepted");
//! assert_eq!(state.sn, 1);
//! assert!(state.signing.next.is_empty()); // abandoned: no next keys
//! let ixn = interact(state, vec![]);
//! let sigs = sign(&ixn, &[next]);
//! assert!(kevery.process(signed(ixn, sigs)).is_err());
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]
#![forbid(unsafe_code)]

pub mod attachment;
pub mod builder;
pub mod cesr;
pub mod event;
pub mod json;
pub mod kever;
pub mod kevery;
pub mod parse;
pub mod primitive;
pub mod receipt;
pub mod threshold;

pub use attachment::{Attachments, ReceiptCouple, TransSignatureGroup};
pub use builder::{
    InceptionBuilder, RotationBuilder, interact, seal_anchors, sign, sign_indexed, signed,
};
pub use cesr::{CesrError, Code, Counter, CounterCode, IndexedSignature, Matter};
pub use event::{
    Event, EventBody, EventSeal, Ilk, Inception, Interaction, Receipt, Rotation, Signing,
};
pub use json::Json;
pub use kever::{KeyState, Validated, ValidationError};
pub use kevery::{AcceptedEvent, Duplicity, EscrowReason, Kevery, KeveryConfig, Outcome, Recovery};
pub use parse::{Message, ParseError, parse_event, parse_message, parse_stream};
pub use primitive::{Digest, Prefix, Signer, VerKey};
pub use receipt::{receipt, verified_receipts, verify_receipt};
pub use threshold::{Threshold, ThresholdError, Weight};
