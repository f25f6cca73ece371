//! Consensus across epochs: one simplex engine per epoch, over that epoch's members.
//!
//! The state decides the members of each epoch (`welkin_state::epochs`); the executor tells
//! this orchestrator which epoch the applied state is in, at start and after each epoch's
//! last block ([`EpochChange`]). The orchestrator then:
//! 1. registers the epoch's signing scheme (the members' ed25519 keys) with the
//!    [`EpochSchemes`] provider, through which marshal checks finalizations of any epoch it
//!    knows;
//! 2. if this node is a member, starts the epoch's engine on its own subchannels of the
//!    vote, certificate and resolver channels, from the previous epoch's last block (the
//!    boundary marshal has finalized), and stops the engines of earlier epochs;
//! 3. if it is not (a node admitted for a later epoch, or one that left), follows the chain
//!    by asking the members, every [`FOLLOW_INTERVAL`], for the finalizations of the few
//!    heights past its applied one and of the epoch's last block; marshal fetches them and
//!    the blocks under them, and the executor applies them. A node admitted for the next
//!    epoch so sees the resharing it plays in while it runs;
//! 4. when a peer sends a vote from a later epoch (this node fell behind across a
//!    boundary), asks that peer for the finalization of its current epoch's last block.
//!
//! The last block of an epoch is its engine's last: the marshal wrapper re-proposes it
//! until it is finalized, so no transaction is ordered in an epoch that has ended.

use crate::consensus::{Marshal, Scheme};
use commonware_consensus::types::{Epoch, Epocher as _, FixedEpocher, Height};
use commonware_cryptography::certificate::{Provider, Scoped};
use commonware_utils::{ordered::Set, vec::NonEmptyVec};
use std::{
    collections::BTreeMap,
    sync::{Arc, Mutex},
    time::Duration,
};
use welkin_types::{PrivateKey, PublicKey, namespace};

/// How often a node that is not a member of its current epoch asks for the blocks past its
/// applied height.
pub(crate) const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);
/// How many heights past its applied one a following node asks for: any one of them that has
/// its own finalization brings every block under it.
pub(crate) const FOLLOW_AHEAD: u64 = 16;

/// Schemes kept for epochs before the current one (marshal may still check their
/// certificates while a boundary settles).
const KEPT_EPOCHS: u64 = 4;

/// The epoch the applied state is in, and its members.
#[derive(Clone, Debug)]
pub(crate) struct EpochChange {
    /// The epoch.
    pub(crate) epoch: u64,
    /// Its members' keys, in roster order.
    pub(crate) members: Vec<PublicKey>,
}

/// The consensus scheme of each known epoch: marshal's certificate provider.
#[derive(Clone)]
pub(crate) struct EpochSchemes {
    me: PrivateKey,
    schemes: Arc<Mutex<BTreeMap<u64, Scoped<Scheme>>>>,
}

impl EpochSchemes {
    /// No epoch known yet.
    pub(crate) fn new(me: PrivateKey) -> Self {
        Self {
            me,
            schemes: Arc::default(),
        }
    }

    /// Registers `epoch` with `members`; returns the signing scheme if this node is one.
    pub(crate) fn register(&self, epoch: u64, members: &[PublicKey]) -> Option<Arc<Scheme>> {
        let mut sorted = members.to_vec();
        sorted.sort();
        sorted.dedup();
        let participants = Set::try_from(sorted).expect("sorted, distinct keys");
        let (scoped, signer) =
            match Scheme::signer(namespace::CONSENSUS, participants.clone(), self.me.clone()) {
                Some(scheme) => {
                    let scheme = Arc::new(scheme);
                    (Scoped::scheme(scheme.clone()), Some(scheme))
                }
                None => (
                    Scoped::verifier(Arc::new(Scheme::verifier(
                        namespace::CONSENSUS,
                        participants,
                    ))),
                    None,
                ),
            };
        let mut schemes = self.schemes.lock().expect("schemes lock");
        schemes.insert(epoch, scoped);
        let floor = epoch.saturating_sub(KEPT_EPOCHS);
        schemes.retain(|e, _| *e >= floor);
        signer
    }
}

impl Provider for EpochSchemes {
    type Scope = Epoch;
    type Scheme = Scheme;

    fn scoped(&self, scope: Epoch) -> Option<Scoped<Scheme>> {
        self.schemes
            .lock()
            .expect("schemes lock")
            .get(&scope.get())
            .cloned()
    }
}

/// Where the orchestrator stands: the current epoch and its members.
pub(crate) struct Following {
    /// The epoch the applied state is in.
    pub(crate) epoch: u64,
    /// Its members.
    pub(crate) members: Vec<PublicKey>,
    /// Whether this node runs the epoch's engine.
    pub(crate) member: bool,
}

impl Following {
    /// The last height of the current epoch.
    pub(crate) fn boundary(&self, epocher: &FixedEpocher) -> Option<Height> {
        epocher.last(Epoch::new(self.epoch))
    }

    /// Asks `targets` (the members, if empty) for the current epoch's last block.
    pub(crate) fn follow(
        &self,
        marshal: &Marshal,
        epocher: &FixedEpocher,
        targets: Vec<PublicKey>,
    ) {
        if let Some(height) = self.boundary(epocher) {
            self.ask(marshal, height, targets);
        }
    }

    /// Asks the members for the few heights past `applied` (a node that is not a member gets
    /// no certificates from consensus, and must see a resharing it plays in while it runs),
    /// and for the epoch's last block.
    pub(crate) fn follow_tip(&self, marshal: &Marshal, epocher: &FixedEpocher, applied: u64) {
        let last = self.boundary(epocher).map_or(u64::MAX, |h| h.get());
        for height in (applied + 1..=applied + FOLLOW_AHEAD).filter(|h| *h <= last) {
            self.ask(marshal, Height::new(height), Vec::new());
        }
        self.follow(marshal, epocher, Vec::new());
    }

    fn ask(&self, marshal: &Marshal, height: Height, targets: Vec<PublicKey>) {
        let targets = if targets.is_empty() {
            self.members.clone()
        } else {
            targets
        };
        if let Ok(targets) = NonEmptyVec::try_from(targets) {
            marshal.hint_finalized(height, targets);
        }
    }
}

/// The first block of `epoch`'s engine: the genesis block for epoch 0, else the previous
/// epoch's last block.
pub(crate) fn floor_height(epocher: &FixedEpocher, epoch: u64) -> Option<Height> {
    let previous = epoch.checked_sub(1)?;
    epocher.last(Epoch::new(previous))
}

/// Every node the members must reach, with its p2p address, as the node's state says: the
/// nodes that joined since genesis, and those admitted to join (the genesis nodes are not
/// listed: the caller knows them).
pub(crate) async fn peer_addresses<E>(
    handle: &crate::handle::NodeHandle<E>,
) -> Vec<(PublicKey, std::net::SocketAddr)>
where
    E: commonware_runtime::Spawner
        + commonware_runtime::Clock
        + commonware_runtime::Storage
        + commonware_runtime::Metrics
        + rand_core::CryptoRng
        + Send
        + Sync
        + 'static,
{
    let mut peers = Vec::new();
    if let Some(state) = handle
        .value(welkin_state::keys::epoch())
        .await
        .and_then(|b| welkin_state::epochs::EpochState::decode(&b).ok())
    {
        peers.extend(
            state
                .joined
                .iter()
                .map(|n| (n.public_key.clone(), n.p2p_address)),
        );
    }
    let changes = handle
        .value(welkin_state::keys::membership_changes())
        .await
        .and_then(|b| welkin_state::membership::Changes::decode(&b).ok())
        .unwrap_or_default();
    for id in changes
        .joins
        .iter()
        .take(welkin_state::membership::MAX_OPEN_REQUESTS)
    {
        if let Some(request) = handle
            .value(welkin_state::keys::membership_request(id))
            .await
            .and_then(|b| welkin_state::membership::JoinRequest::decode(&b).ok())
        {
            let node = request.registration;
            peers.push((node.public_key, node.p2p_address));
        }
    }
    peers
}
