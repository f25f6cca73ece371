//! Answering one client request (RFC 5905 server mode, RFC 4330 section 5).
//!
//! - With certified time: mode 4, the configured stratum and reference ID, root delay 0 and a
//!   root dispersion equal to the certified radius (rounded up), the client's transmit
//!   timestamp echoed as origin, receive and transmit timestamps from the time source.
//! - With no certified time: leap indicator 3 (alarm) and stratum 16 (unsynchronized), and
//!   zero receive and transmit timestamps: there is no certified time to give, and clients
//!   discard such a reply.
//! - While the node's clock is quarantined: a kiss-o'-death, stratum 0 with kiss code `RATE`.
//!   RFC 5905 7.4 gives `DENY` and `RSTR` the meaning "stop using this server for good"
//!   (clients demobilize the association), which is wrong for a condition that ends; `RATE`
//!   makes a client back off its polling and keep the association, so it returns when the
//!   quarantine is over. `INIT` and `STEP` are state codes, not kisses a client acts on.

use std::sync::atomic::{AtomicU64, Ordering::Relaxed};

use welkin_roughtime::Reading;

use crate::packet::{Packet, PacketError, short_format_ceil, timestamp};

/// Client mode.
const MODE_CLIENT: u8 = 3;
/// Server mode.
const MODE_SERVER: u8 = 4;
/// Leap indicator: clock not synchronized.
const LEAP_ALARM: u8 = 3;
/// Stratum of an unsynchronized server.
const STRATUM_UNSYNCHRONIZED: u8 = 16;
/// Stratum of a kiss-o'-death.
const STRATUM_KISS: u8 = 0;
/// The kiss code sent while quarantined (see the module documentation).
pub const KISS_CODE: [u8; 4] = *b"RATE";
/// Versions answered: NTPv3 and NTPv4 clients.
const VERSIONS: std::ops::RangeInclusive<u8> = 3..=4;

/// How the server describes itself.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Config {
    /// Stratum announced with certified time, 1 to 15. Default 1: the certified time is this
    /// system's reference.
    pub stratum: u8,
    /// Reference ID announced with certified time. Default `WLKN`.
    pub reference_id: [u8; 4],
    /// Precision exponent (log2 seconds) of the time source. Default -20 (about 1 µs).
    pub precision: i8,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            stratum: 1,
            reference_id: *b"WLKN",
            precision: -20,
        }
    }
}

/// A configuration that cannot be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("stratum {0} is not between 1 and 15")]
pub struct ConfigError(pub u8);

impl Config {
    /// Checks the configuration once, before serving.
    pub fn validate(&self) -> Result<(), ConfigError> {
        if !(1..=15).contains(&self.stratum) {
            return Err(ConfigError(self.stratum));
        }
        Ok(())
    }
}

/// What the server did with the packets it received; plain counters for metrics.
#[derive(Debug, Default)]
pub struct Counters {
    /// Requests answered with certified time.
    pub answered: AtomicU64,
    /// Requests answered with the alarm (no certified time).
    pub unsynchronized: AtomicU64,
    /// Requests answered with a kiss-o'-death (quarantined).
    pub kissed: AtomicU64,
    /// Packets shorter than 48 bytes.
    pub too_small: AtomicU64,
    /// Packets longer than 48 bytes (extension fields or MACs are not supported).
    pub malformed: AtomicU64,
    /// Packets of a version other than 3 or 4.
    pub unsupported_version: AtomicU64,
    /// Packets in a mode other than client (3): symmetric, broadcast, control and private
    /// modes get no reply.
    pub not_client: AtomicU64,
}

/// The reply to one request, or `None`. `received` is the time read when the request arrived
/// and `transmit` the time read just before replying; `quarantined` says the node's clock is
/// quarantined. Never panics on any input.
pub fn respond(
    request: &[u8],
    received: Option<Reading>,
    transmit: Option<Reading>,
    quarantined: bool,
    config: &Config,
    counters: &Counters,
) -> Option<[u8; 48]> {
    let request = match Packet::decode(request) {
        Ok(request) => request,
        Err(PacketError::TooShort(_)) => return count(&counters.too_small),
        Err(PacketError::TooLong(_)) => return count(&counters.malformed),
    };
    if !VERSIONS.contains(&request.version) {
        return count(&counters.unsupported_version);
    }
    if request.mode != MODE_CLIENT {
        return count(&counters.not_client);
    }
    let mut reply = Packet {
        version: request.version,
        mode: MODE_SERVER,
        poll: request.poll,
        precision: config.precision,
        origin: request.transmit,
        ..Packet::default()
    };
    match (quarantined, received, transmit) {
        (true, _, _) => {
            reply.leap = LEAP_ALARM;
            reply.stratum = STRATUM_KISS;
            reply.reference_id = KISS_CODE;
            counters.kissed.fetch_add(1, Relaxed);
        }
        (false, Some(received), Some(transmit)) => {
            reply.stratum = config.stratum;
            reply.reference_id = config.reference_id;
            reply.root_dispersion = short_format_ceil(received.radius_ns.max(transmit.radius_ns));
            reply.reference = timestamp(received.midpoint_ns);
            reply.receive = timestamp(received.midpoint_ns);
            reply.transmit = timestamp(transmit.midpoint_ns);
            counters.answered.fetch_add(1, Relaxed);
        }
        (false, _, _) => {
            reply.leap = LEAP_ALARM;
            reply.stratum = STRATUM_UNSYNCHRONIZED;
            counters.unsynchronized.fetch_add(1, Relaxed);
        }
    }
    Some(reply.encode())
}

/// Counts a refusal; no reply.
fn count(counter: &AtomicU64) -> Option<[u8; 48]> {
    counter.fetch_add(1, Relaxed);
    None
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const NOW: Reading = Reading {
        midpoint_ns: 1_795_000_000_500_000_000,
        radius_ns: 1_500_000,
    };

    fn client(version: u8) -> [u8; 48] {
        Packet {
            version,
            mode: MODE_CLIENT,
            poll: 7,
            transmit: 0x1234_5678_9abc_def0,
            ..Packet::default()
        }
        .encode()
    }

    fn answer(request: &[u8], now: Option<Reading>, quarantined: bool) -> Option<Packet> {
        let counters = Counters::default();
        respond(
            request,
            now,
            now,
            quarantined,
            &Config::default(),
            &counters,
        )
        .map(|bytes| Packet::decode(&bytes).expect("our own reply"))
    }

    #[test]
    fn a_client_gets_certified_time() {
        let reply = answer(&client(4), Some(NOW), false).expect("a reply");
        assert_eq!((reply.leap, reply.version, reply.mode), (0, 4, MODE_SERVER));
        assert_eq!((reply.stratum, reply.reference_id), (1, *b"WLKN"));
        assert_eq!(reply.origin, 0x1234_5678_9abc_def0);
        assert_eq!(reply.poll, 7);
        assert_eq!(reply.receive, timestamp(NOW.midpoint_ns));
        assert_eq!(reply.transmit, timestamp(NOW.midpoint_ns));
        assert_eq!(reply.root_delay, 0);
        // 1.5 ms is 98.3 units of 1/65536 s: rounded up to 99.
        assert_eq!(reply.root_dispersion, 99);
        assert_eq!(
            answer(&client(3), Some(NOW), false).map(|r| r.version),
            Some(3)
        );
    }

    #[test]
    fn without_certified_time_the_alarm_is_raised() {
        let reply = answer(&client(4), None, false).expect("a reply");
        assert_eq!(
            (reply.leap, reply.stratum),
            (LEAP_ALARM, STRATUM_UNSYNCHRONIZED)
        );
        assert_eq!((reply.receive, reply.transmit), (0, 0));
    }

    #[test]
    fn quarantine_sends_a_rate_kiss() {
        let reply = answer(&client(4), Some(NOW), true).expect("a reply");
        assert_eq!(
            (reply.stratum, reply.reference_id),
            (STRATUM_KISS, KISS_CODE)
        );
        assert_eq!(reply.origin, 0x1234_5678_9abc_def0);
        assert_eq!(reply.transmit, 0);
    }

    #[test]
    fn other_packets_get_no_reply_and_are_counted() {
        let counters = Counters::default();
        let config = Config::default();
        let mut server_mode = client(4);
        server_mode[0] = (4 << 3) | MODE_SERVER;
        let mut control = client(4);
        control[0] = (2 << 3) | 6;
        let long = [client(4).as_slice(), &[0; 20]].concat();
        let cases: [&[u8]; 6] = [
            &client(4)[..47],
            &[],
            &long,
            &client(5),
            &server_mode,
            &control,
        ];
        for case in cases {
            assert_eq!(
                respond(case, Some(NOW), Some(NOW), false, &config, &counters),
                None
            );
        }
        assert_eq!(counters.too_small.load(Relaxed), 2);
        assert_eq!(counters.malformed.load(Relaxed), 1);
        assert_eq!(counters.unsupported_version.load(Relaxed), 2);
        assert_eq!(counters.not_client.load(Relaxed), 1);
        assert_eq!(counters.answered.load(Relaxed), 0);
    }

    #[test]
    fn config_is_checked() {
        assert!(Config::default().validate().is_ok());
        for stratum in [0, 16] {
            let config = Config {
                stratum,
                ..Config::default()
            };
            assert_eq!(config.validate(), Err(ConfigError(stratum)));
        }
    }

    proptest! {
        #[test]
        fn random_packets_never_panic(packet in proptest::collection::vec(any::<u8>(), 0..100)) {
            let counters = Counters::default();
            let reply = respond(&packet, Some(NOW), Some(NOW), false, &Config::default(), &counters);
            if let Some(reply) = reply {
                let reply = Packet::decode(&reply).expect("our own reply");
                prop_assert_eq!(reply.mode, MODE_SERVER);
                prop_assert_eq!(&reply.origin.to_be_bytes()[..], &packet[40..48]);
            }
        }
    }
}
