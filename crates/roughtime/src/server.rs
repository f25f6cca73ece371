//! The UDP loop: wait for a request, drain those already waiting (up to [`MAX_BATCH`]), read
//! the time once, answer them all under one signature per version, repeat.

use std::{io, sync::Arc};

use tokio::net::UdpSocket;

use crate::{
    batch::Batch,
    keys::Keys,
    request::MAX_REQUEST,
    respond::{Counters, respond},
    time::TimeSource,
};

/// The most requests answered under one signature.
pub const MAX_BATCH: usize = 64;

/// Serves Roughtime on `socket` until the returned future is dropped or the socket fails.
/// Replies are sent only for requests that deserve one; everything else is counted in
/// `counters`.
pub async fn serve(
    socket: UdpSocket,
    mut keys: Keys,
    source: Arc<dyn TimeSource>,
    counters: Arc<Counters>,
) -> io::Result<()> {
    let mut batch = Batch::new(MAX_BATCH, MAX_REQUEST);
    loop {
        batch.recv(&socket).await?;
        let packets = batch.packets();
        let requests: Vec<&[u8]> = packets.iter().map(|&(packet, _)| packet).collect();
        let replies = respond(&requests, source.now(), &mut keys, &counters);
        for (reply, &(_, peer)) in replies.iter().zip(&packets) {
            if let Some(reply) = reply
                && let Err(e) = socket.send_to(reply, peer).await
            {
                tracing::debug!(%peer, error = %e, "roughtime reply not sent");
            }
        }
    }
}
