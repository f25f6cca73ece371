//! Non-transferable receipts (`rct`): a witness's signature on an event it has seen.
//!
//! The receipt message is an `rct` event naming the receipted event (`i`, `s`, `d`) followed
//! by `-C` couples of the witness's `B` prefix and its Ed25519 signature of the receipted
//! event's serialization (not of the `rct`), as keripy writes them.

use crate::attachment::{Attachments, ReceiptCouple};
use crate::event::{Event, EventBody, Receipt};
use crate::parse::Message;
use crate::primitive::{Prefix, Signer};

/// A receipt message by `witness` (a non-transferable signer) for `event`.
pub fn receipt(event: &Event, witness: &Signer) -> Message {
    let body = EventBody::Receipt(Receipt {
        prefix: event.prefix(),
        sn: event.sn(),
        said: event.said(),
    });
    let couple = ReceiptCouple {
        signer: witness.verkey(),
        signature: witness.sign(event.raw().as_bytes()),
    };
    Message {
        event: Event::new(body),
        attachments: Attachments {
            receipts: vec![couple],
            ..Attachments::default()
        },
    }
}

/// Whether `couple` is a valid non-transferable receipt of `event`.
pub fn verify_receipt(event: &Event, couple: &ReceiptCouple) -> bool {
    !Prefix::Basic(couple.signer).is_transferable()
        && couple
            .signer
            .verify(event.raw().as_bytes(), &couple.signature)
}

/// The receipt couples of `receipt` that are valid for `event`, if the receipt names it.
pub fn verified_receipts<'a>(event: &Event, receipt: &'a Message) -> Vec<&'a ReceiptCouple> {
    let EventBody::Receipt(r) = receipt.event.body() else {
        return Vec::new();
    };
    if r.prefix != event.prefix() || r.sn != event.sn() || r.said != event.said() {
        return Vec::new();
    }
    receipt
        .attachments
        .receipts
        .iter()
        .filter(|c| verify_receipt(event, c))
        .collect()
}
