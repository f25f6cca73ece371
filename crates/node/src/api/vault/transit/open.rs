//! The serving node as the reader of a transit request: waits for the members' batch
//! envelopes, recovers each target's signature with [`TargetsOpener`], and blocks every
//! member whose envelope or partial was false. The CPU work runs on tokio's blocking pool.

use super::VaultError;
use crate::{handle::NodeHandle, releases::targets::TargetsOpener, store::Runtime};
use welkin_sealed::ReaderKey;
use welkin_types::{ClusterSignature, Digest, TxId};

/// Opens committed request `id` with the partials sealed to `reader`: one result of `check`
/// per target, in order (`None`: the item does not pass with the cluster's signature).
pub(super) async fn open_targets<E, T, C>(
    node: &NodeHandle<E>,
    id: TxId,
    reader: ReaderKey,
    mut check: C,
) -> Result<Vec<Option<T>>, VaultError>
where
    E: Runtime,
    T: Send + 'static,
    C: FnMut(usize, &Digest, &ClusterSignature) -> Option<T> + Send + 'static,
{
    let timeout = super::super::COMMIT_WAIT;
    let deadline = tokio::time::Instant::now() + timeout;
    let keys = crate::api::vault::cluster_keys(node)?;
    let sharing = &keys.sharing;
    let mut opener = TargetsOpener::new(sharing, node.cluster_id(), id, reader);
    let mut blocked = 0;
    loop {
        let Some((_, changed)) = node.release(&id) else {
            return Err(VaultError::internal(
                "this node no longer holds the request's release (it expired); send it again",
            ));
        };
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Read after registering, so that a change in between is not missed.
        let Some((release, _)) = node.release(&id) else {
            continue;
        };
        let (returned, returned_check, opened) = tokio::task::spawn_blocking(move || {
            let opened = opener.step(&release, &mut check);
            (opener, check, opened)
        })
        .await
        .map_err(|e| VaultError::internal(format!("opening the request failed: {e}")))?;
        opener = returned;
        check = returned_check;
        for (index, reason) in &opener.liars()[blocked..] {
            node.block_member(*index, reason);
        }
        blocked = opener.liars().len();
        if let Some((_, results)) = opened {
            return Ok(results);
        }
        if tokio::time::timeout_at(deadline, notified).await.is_err() {
            return Err(VaultError::internal(format!(
                "fewer than {} members released their partials within {} s",
                sharing.required(),
                timeout.as_secs()
            )));
        }
    }
}
