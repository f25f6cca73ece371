//! An SNTPv4 server over UDP that serves only certified time and says so when it has none.
//!
//! Ordinary NTP clients (chrony, ntpd, systemd-timesyncd, `sntp`) can read the node's
//! certified time without speaking Roughtime. The server answers client-mode (3) requests of
//! NTPv3 and NTPv4 with server-mode (4) replies as RFC 5905 and RFC 4330 describe; the root
//! dispersion carries the certified radius. It has no authentication: clients that need
//! proof use Roughtime. See [`respond`] for what is sent with and without certified time,
//! and why a quarantined clock answers with the `RATE` kiss-o'-death.
//!
//! Time comes from the same [`TimeSource`] as the Roughtime server.

#![forbid(unsafe_code)]
#![deny(missing_docs)]

mod packet;
mod respond;
mod server;

pub use packet::{PACKET_LEN, Packet, PacketError, short_format_ceil, timestamp};
pub use respond::{Config, ConfigError, Counters, KISS_CODE, respond};
pub use server::{MAX_BATCH, serve};
pub use welkin_roughtime::{Reading, TimeSource};
