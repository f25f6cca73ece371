//! Asking peers over the storage channel, and answering them.
//!
//! One task owns the channel. Answers go to the ask that is waiting for them (matched by id
//! and by the peer asked, so nobody can answer for another); asks from peers go to the
//! server task through a short queue (full: the ask is dropped, and the asker times out and
//! asks again later, which it treats as the peer being unreachable, never as a failure).
//! An undecodable message blocks its sender: no honest node sends one.

use super::wire::{Answer, Ask, StorageMessage};
use crate::penalty::{Offence, Penalties};
use commonware_codec::Encode as _;
use commonware_p2p::{Receiver, Recipients, Sender};
use futures::{
    SinkExt as _,
    channel::{mpsc, oneshot},
};
use std::{
    collections::BTreeMap,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
};
use welkin_types::PublicKey;

/// Asks this node waits on at once; more fail at once (as unreachable).
pub(crate) const MAX_PENDING: usize = 64;
/// Peers' asks queued for the server; more are dropped.
pub(crate) const ASK_QUEUE: usize = 16;

/// An ask from a peer, for the server.
pub(crate) struct Incoming {
    /// The asking peer.
    pub(crate) from: PublicKey,
    /// Its id for the ask.
    pub(crate) id: u64,
    /// What it asks.
    pub(crate) ask: Ask,
}

type Outbox = Arc<Mutex<dyn FnMut(PublicKey, StorageMessage) + Send>>;
/// Asks waiting for answers: id to (peer asked, where the answer goes).
type Pending = Arc<Mutex<BTreeMap<u64, (PublicKey, oneshot::Sender<Answer>)>>>;

/// A handle for asking peers and answering them.
#[derive(Clone)]
pub(crate) struct Peers {
    outbox: Outbox,
    pending: Pending,
    next_id: Arc<AtomicU64>,
}

/// A waiting ask; dropping it forgets the ask.
pub(crate) struct Waiting {
    id: u64,
    pending: Pending,
    /// Resolves with the answer.
    pub(crate) answer: oneshot::Receiver<Answer>,
}

impl Drop for Waiting {
    fn drop(&mut self) {
        self.pending.lock().expect("not poisoned").remove(&self.id);
    }
}

impl Peers {
    /// Starts the task that owns `network`; returns the handle and the queue of peers' asks.
    pub(crate) fn start<S, R>(
        spawner: impl commonware_runtime::Spawner,
        (sender, mut receiver): (S, R),
        penalties: Penalties,
    ) -> (Peers, mpsc::Receiver<Incoming>)
    where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        let sender = Arc::new(Mutex::new(sender));
        let outbox: Outbox = Arc::new(Mutex::new(move |to: PublicKey, message: StorageMessage| {
            // Best effort: a peer over its quota or unreachable loses the message, and the
            // asker times out.
            let _ = sender.lock().expect("not poisoned").send(
                Recipients::One(to),
                message.encode(),
                false,
            );
        }));
        let peers = Peers {
            outbox,
            pending: Arc::default(),
            next_id: Arc::new(AtomicU64::new(1)),
        };
        let (mut asks, incoming) = mpsc::channel(ASK_QUEUE);
        let pending = peers.pending.clone();
        spawner.spawn(move |_| async move {
            while let Ok((from, bytes)) = receiver.recv().await {
                let message = match welkin_types::decode::<StorageMessage>(bytes.as_ref()) {
                    Ok(message) => message,
                    Err(error) => {
                        penalties.block(
                            from,
                            Offence::Storage,
                            &format!("undecodable storage message: {error}"),
                        );
                        continue;
                    }
                };
                match message {
                    StorageMessage::Ask { id, ask } => {
                        // A full queue drops the ask: the asker times out and asks again.
                        let _ = asks.try_send(Incoming { from, id, ask });
                    }
                    StorageMessage::Answer { id, answer } => {
                        let mut pending = pending.lock().expect("not poisoned");
                        // Only the peer asked may answer; a late answer finds nobody waiting.
                        if pending.get(&id).is_some_and(|(peer, _)| *peer == from)
                            && let Some((_, waiter)) = pending.remove(&id)
                        {
                            let _ = waiter.send(answer);
                        }
                    }
                }
            }
            // Keep the queue's sender alive until the channel closes.
            let _ = asks.close().await;
        });
        (peers, incoming)
    }

    /// Sends `ask` to `to`; `None` if too many asks are waiting already.
    pub(crate) fn ask(&self, to: &PublicKey, ask: Ask) -> Option<Waiting> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, answer) = oneshot::channel();
        {
            let mut pending = self.pending.lock().expect("not poisoned");
            if pending.len() >= MAX_PENDING {
                return None;
            }
            pending.insert(id, (to.clone(), tx));
        }
        (self.outbox.lock().expect("not poisoned"))(to.clone(), StorageMessage::Ask { id, ask });
        Some(Waiting {
            id,
            pending: self.pending.clone(),
            answer,
        })
    }

    /// Answers `to`'s ask `id`.
    pub(crate) fn answer(&self, to: PublicKey, id: u64, answer: Answer) {
        (self.outbox.lock().expect("not poisoned"))(to, StorageMessage::Answer { id, answer });
    }
}
