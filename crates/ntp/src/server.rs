//! The UDP loop: wait for a request, drain those already waiting (up to [`MAX_BATCH`]), read
//! the time on receipt and again just before each reply, answer each, repeat.

use std::{
    io,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering::Relaxed},
    },
};

use tokio::net::UdpSocket;
use welkin_roughtime::{Batch, TimeSource};

use crate::{
    packet::PACKET_LEN,
    respond::{Config, ConfigError, Counters, respond},
};

/// The most requests taken from the socket at once.
pub const MAX_BATCH: usize = 64;

/// Serves NTP on `socket` until the returned future is dropped or the socket fails.
/// `quarantined` is read for every batch: while it is set, clients are sent a kiss-o'-death.
/// Fails at once if `config` is invalid.
pub async fn serve(
    socket: UdpSocket,
    source: Arc<dyn TimeSource>,
    quarantined: Arc<AtomicBool>,
    config: Config,
    counters: Arc<Counters>,
) -> io::Result<()> {
    config
        .validate()
        .map_err(|e: ConfigError| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // Larger packets (extension fields, MACs) are refused, so a 48-byte buffer plus one byte
    // to notice them is enough.
    let mut batch = Batch::new(MAX_BATCH, PACKET_LEN);
    loop {
        batch.recv(&socket).await?;
        let received = source.now();
        let quarantine = quarantined.load(Relaxed);
        for (packet, peer) in batch.packets() {
            // Read again for each reply: the transmit timestamp is the last thing set.
            let transmit = source.now();
            let Some(reply) = respond(packet, received, transmit, quarantine, &config, &counters)
            else {
                continue;
            };
            if let Err(e) = socket.send_to(&reply, peer).await {
                tracing::debug!(%peer, error = %e, "ntp reply not sent");
            }
        }
    }
}
