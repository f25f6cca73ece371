//! Receiving a batch of datagrams: wait for one, then take those already waiting, up to a
//! bound. Shared by the Roughtime and NTP servers.

use std::{io, net::SocketAddr};

use tokio::net::UdpSocket;

/// Bounded buffers for one batch of datagrams.
pub struct Batch {
    buffers: Vec<Box<[u8]>>,
    received: Vec<(usize, SocketAddr)>,
}

impl Batch {
    /// Room for `max_batch` datagrams. Each buffer is one byte larger than `max_datagram`, so
    /// that a larger datagram (cut to the buffer by the kernel) is seen as oversized.
    pub fn new(max_batch: usize, max_datagram: usize) -> Self {
        assert!(max_batch > 0, "a batch holds at least one datagram");
        Self {
            buffers: (0..max_batch)
                .map(|_| vec![0u8; max_datagram + 1].into_boxed_slice())
                .collect(),
            received: Vec::with_capacity(max_batch),
        }
    }

    /// Waits for a datagram, then takes those already waiting until the batch is full.
    /// Errors about a single earlier peer (ICMP unreachable) are passed over.
    pub async fn recv(&mut self, socket: &UdpSocket) -> io::Result<()> {
        self.received.clear();
        let first = loop {
            match socket.recv_from(&mut self.buffers[0]).await {
                Ok(got) => break got,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            }
        };
        self.received.push(first);
        while self.received.len() < self.buffers.len() {
            match socket.try_recv_from(&mut self.buffers[self.received.len()]) {
                Ok(got) => self.received.push(got),
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
                Err(e) if transient(&e) => continue,
                Err(e) => return Err(e),
            }
        }
        Ok(())
    }

    /// The datagrams received and their senders.
    pub fn packets(&self) -> Vec<(&[u8], SocketAddr)> {
        self.received
            .iter()
            .zip(&self.buffers)
            .map(|(&(len, peer), buffer)| (&buffer[..len], peer))
            .collect()
    }
}

/// Errors a UDP socket reports about one peer (an ICMP message about an earlier reply).
fn transient(error: &io::Error) -> bool {
    matches!(
        error.kind(),
        io::ErrorKind::ConnectionRefused | io::ErrorKind::ConnectionReset
    )
}
