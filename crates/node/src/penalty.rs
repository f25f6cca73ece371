//! Blocking peers that send provably invalid data, and counting the blocks.
//!
//! A peer is blocked only for data no honest node sends: an undecodable message, a checkpoint
//! partial or certificate that does not verify, a relayed transaction with a bad signature or
//! outside the limits every honest node applies before relaying. Disagreements an honest node
//! can cause (a different root, a transaction that expired or was committed meanwhile) are
//! dropped, never punished. The p2p layer disconnects a blocked peer and refuses it for its
//! block duration.

use commonware_p2p::Blocker;
use commonware_runtime::{
    Metrics,
    telemetry::metrics::{CounterFamily, MetricsExt as _},
};
use std::sync::{Arc, Mutex};
use tracing::warn;
use welkin_types::PublicKey;

/// What a blocked peer sent, the label of the `peers_blocked` metric.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Offence {
    /// A checkpoint message that does not decode, or a partial or certificate that does not
    /// verify.
    Checkpoint,
    /// A gossip batch that does not decode, or a transaction no honest node would relay.
    Gossip,
    /// A release batch that does not decode, or a partial for a read that does not verify.
    Release,
    /// A transit message that does not decode, or a signature share that does not verify.
    Transit,
    /// A time message that does not decode, a reading signed by another, or a partial that
    /// does not verify.
    Time,
    /// A storage message that does not decode, or a repair block that does not match its
    /// shard's root.
    Storage,
    /// A key generation message that does not decode, or a dealing that does not check
    /// against its commitment.
    Keygen,
}

impl Offence {
    fn label(self) -> &'static str {
        match self {
            Offence::Checkpoint => "checkpoint",
            Offence::Gossip => "gossip",
            Offence::Release => "release",
            Offence::Transit => "transit",
            Offence::Time => "time",
            Offence::Storage => "storage",
            Offence::Keygen => "keygen",
        }
    }
}

/// The label set of the `peers_blocked` counter.
type Label = [(&'static str, &'static str); 1];

/// A cloneable handle that blocks peers through the p2p [`Blocker`] and counts each block.
#[derive(Clone)]
pub(crate) struct Penalties {
    block: Arc<Mutex<dyn FnMut(PublicKey) + Send>>,
    blocked: CounterFamily<Label>,
}

impl Penalties {
    /// Penalties enforced by `blocker`, counted in `context`'s metrics.
    pub(crate) fn new<B: Blocker<PublicKey = PublicKey>>(
        context: &impl Metrics,
        mut blocker: B,
    ) -> Self {
        Self {
            block: Arc::new(Mutex::new(move |peer| {
                // Blocking is best effort: a full p2p mailbox drops it, and the peer's next
                // offence blocks it again.
                let _ = blocker.block(peer);
            })),
            blocked: context.family("peers_blocked", "Peers blocked, by what they sent"),
        }
    }

    /// Blocks `peer` for `offence`, saying why.
    pub(crate) fn block(&self, peer: PublicKey, offence: Offence, reason: &str) {
        warn!(%peer, ?offence, reason, "blocking peer");
        self.blocked
            .get_or_create(&[("offence", offence.label())])
            .inc();
        (self.block.lock().expect("blocker lock is never poisoned"))(peer);
    }
}
