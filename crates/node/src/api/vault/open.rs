//! The serving node as the reader of a Vault client's read: waits for the envelopes, opens
//! the value with [`ReadOpener`], and blocks every member whose envelope was false.
//!
//! Opening envelopes (HPKE) and recovering and opening the value (a threshold recovery and an
//! identity-based decryption) are about a millisecond of CPU per read: they run on tokio's
//! blocking pool, never on the API's async workers, which other requests need meanwhile.

use super::VaultError;
use crate::{
    handle::NodeHandle,
    releases::{ReadGrant, reader::ReadOpener},
    store::Runtime,
};
use std::time::Duration;
use welkin_sealed::ReaderKey;
use welkin_types::TxId;
use zeroize::Zeroizing;

/// Opens the value of committed read `id` with the partials sealed to `reader`.
pub(crate) async fn open<E: Runtime>(
    node: &NodeHandle<E>,
    id: TxId,
    reader: ReaderKey,
    timeout: Duration,
) -> Result<(ReadGrant, Zeroizing<Vec<u8>>), VaultError> {
    let deadline = tokio::time::Instant::now() + timeout;
    let keys = crate::api::vault::cluster_keys(node)?;
    let sharing = &keys.sharing;
    let mut opener = ReadOpener::new(sharing, node.cluster_id(), id, reader);
    let mut blocked = 0;
    let mut sealed: Option<Vec<u8>> = None;
    loop {
        let Some((_, changed)) = node.release(&id) else {
            return Err(VaultError::internal(
                "this node no longer holds the read's release (it expired); read again",
            ));
        };
        let notified = changed.notified();
        tokio::pin!(notified);
        notified.as_mut().enable();
        // Read after registering, so that a change in between is not missed.
        let Some((release, _)) = node.release(&id) else {
            continue;
        };
        if sealed.is_none() {
            sealed.clone_from(&release.value);
        }
        if sealed.is_none()
            && let Some(grant) = &release.grant
        {
            sealed = Some(
                node.sealed_value(&grant.sealed)
                    .await
                    .map_err(VaultError::internal)?
                    .ok_or_else(|| {
                        VaultError::internal(
                            "this node does not hold the value the read names (destroyed since?)",
                        )
                    })?,
            );
        }
        let Some(bytes) = sealed.clone() else {
            if tokio::time::timeout_at(deadline, notified).await.is_err() {
                return Err(VaultError::internal(format!(
                    "the read was not committed here within {} s",
                    timeout.as_secs()
                )));
            }
            continue;
        };
        let (returned, opened) = tokio::task::spawn_blocking(move || {
            let opened = opener.step(&release, &bytes);
            (opener, opened)
        })
        .await
        .map_err(|e| VaultError::internal(format!("opening the read failed: {e}")))?;
        opener = returned;
        for (index, reason) in &opener.liars()[blocked..] {
            node.block_member(*index, reason);
        }
        blocked = opener.liars().len();
        match opened {
            Ok(Some(opened)) => return Ok(opened),
            Ok(None) => {}
            Err(error) => return Err(VaultError::internal(error.to_string())),
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
