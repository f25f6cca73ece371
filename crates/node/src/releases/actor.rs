//! The releaser: signs this node's partials for the reads each block allowed, seals them to
//! their readers, and exchanges the envelopes with peers.
//!
//! It runs beside the executor, on a thread of its own, and the executor hands it each
//! block's grants and never waits on it beyond a bounded channel (see [`GRANT_BACKLOG`]);
//! signing and sealing happen here.

use super::{
    Grant, ReleaseBatch, Releases,
    wire::{MAX_BATCH, MAX_BATCH_BYTES},
};
use crate::penalty::{Offence, Penalties};
use commonware_codec::{DecodeExt as _, Encode as _};
use commonware_cryptography::bls12381::primitives::group::Share;
use commonware_p2p::{Receiver, Recipients, Sender};
use commonware_runtime::{Clock, Metrics, Spawner};
use futures::{StreamExt as _, channel::mpsc};
use rand_core::CryptoRng;
use tracing::{debug, warn};
use welkin_sealed::{ReleaseContext, TargetsContext};
use welkin_types::{Digest, PublicKey, TxId};

/// Blocks of grants the executor may queue before it waits for the releaser.
pub(crate) const GRANT_BACKLOG: usize = 64;

/// One block's grants, from the executor.
pub(crate) type Grants = Vec<(TxId, Grant)>;

/// The releaser's fixed inputs.
pub(crate) struct Releaser<E> {
    pub(crate) context: E,
    pub(crate) cluster_id: Digest,
    pub(crate) share: Share,
    pub(crate) my_index: u32,
    pub(crate) members: Vec<PublicKey>,
    pub(crate) releases: Releases,
    pub(crate) penalties: Penalties,
}

impl<E: Spawner + Clock + Metrics + CryptoRng> Releaser<E> {
    /// Starts the loop: grants from `grants`, envelopes over `network`.
    pub(crate) fn start<S, R>(self, grants: mpsc::Receiver<Grants>, network: (S, R))
    where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        // A thread of its own: a block of reads costs each node a BLS partial and an HPKE
        // seal per read (about 0.2 ms each), which on the shared workers would hold up
        // consensus and the executor for a whole block's worth.
        let context = self.context.child("run").dedicated();
        context.spawn(move |_| self.run(grants, network));
    }

    async fn run<S, R>(
        mut self,
        mut grants: mpsc::Receiver<Grants>,
        (mut sender, mut receiver): (S, R),
    ) where
        S: Sender<PublicKey = PublicKey>,
        R: Receiver<PublicKey = PublicKey>,
    {
        loop {
            commonware_macros::select! {
                block = grants.next() => {
                    let Some(block) = block else { return };
                    for batch in self.release(block) {
                        sender.send(Recipients::All, batch.encode(), false);
                    }
                },
                message = receiver.recv() => {
                    let Ok((from, bytes)) = message else { return };
                    self.on_batch(from, bytes);
                },
            }
        }
    }

    /// Signs and seals this node's partials for each grant; keeps its own envelopes. Returns
    /// the envelopes in batches of at most [`MAX_BATCH_BYTES`] (transit batches are large).
    fn release(&mut self, grants: Grants) -> Vec<ReleaseBatch> {
        let now = crate::application::now_ms(&self.context);
        let mut batches = vec![ReleaseBatch::default()];
        let mut bytes = 0usize;
        for (id, grant) in grants {
            let sealed = match &grant {
                Grant::Read(grant) => {
                    let partial = welkin_sealed::partial(&self.share, &grant.target);
                    let context = ReleaseContext {
                        cluster_id: self.cluster_id,
                        read_id: id,
                        target: grant.target,
                    };
                    welkin_sealed::seal_partial(
                        &mut self.context,
                        &grant.reader,
                        &context,
                        &partial,
                    )
                }
                Grant::Targets(grant) => {
                    let partials: Vec<_> = grant
                        .targets
                        .iter()
                        .map(|target| welkin_sealed::partial(&self.share, target))
                        .collect();
                    let context = TargetsContext {
                        cluster_id: self.cluster_id,
                        read_id: id,
                        targets: &grant.targets,
                    };
                    welkin_sealed::seal_partials(
                        &mut self.context,
                        &grant.reader,
                        &context,
                        &partials,
                    )
                }
            };
            match sealed {
                Ok(envelope) => {
                    let _ = self
                        .releases
                        .add_envelope(id, self.my_index, envelope.clone(), now);
                    let last = batches.last().expect("never empty");
                    if bytes + envelope.len() > MAX_BATCH_BYTES || last.envelopes.len() >= MAX_BATCH
                    {
                        batches.push(ReleaseBatch::default());
                        bytes = 0;
                    }
                    bytes += envelope.len() + id.len();
                    batches
                        .last_mut()
                        .expect("never empty")
                        .envelopes
                        .push((id, envelope));
                }
                // The reader's key is not a usable X25519 key: the reader chose it and
                // loses its read; nothing to send.
                Err(error) => debug!(read = %hex::encode(id), %error, "cannot seal to reader"),
            }
        }
        batches.retain(|batch| !batch.envelopes.is_empty());
        batches
    }

    /// Keeps a peer's envelopes; blocks a peer whose batch does not decode.
    fn on_batch(&mut self, from: PublicKey, bytes: commonware_runtime::IoBuf) {
        let Some(index) = self.members.iter().position(|k| *k == from) else {
            return;
        };
        let batch = match ReleaseBatch::decode(bytes) {
            Ok(batch) => batch,
            Err(error) => {
                self.penalties.block(
                    from,
                    Offence::Release,
                    &format!("undecodable release batch: {error}"),
                );
                return;
            }
        };
        let now = crate::application::now_ms(&self.context);
        let mut refused = 0usize;
        for (id, envelope) in batch.envelopes {
            if self
                .releases
                .add_envelope(id, index as u32, envelope, now)
                .is_err()
            {
                refused += 1;
            }
        }
        if refused > 0 {
            warn!(%from, refused, "release envelopes refused (duplicate or over quota)");
        }
    }
}
