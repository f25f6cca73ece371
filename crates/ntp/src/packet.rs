//! The 48-byte NTPv4 packet (RFC 5905 section 7.3) and its timestamp formats.

/// Bytes in a packet without extension fields or MAC.
pub const PACKET_LEN: usize = 48;
/// Seconds from the NTP epoch (1900-01-01) to the Unix epoch.
const UNIX_EPOCH_IN_NTP_S: u64 = 2_208_988_800;
const NS_PER_S: u64 = 1_000_000_000;

/// Why bytes are not a packet this server reads.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PacketError {
    /// Shorter than the 48-byte header.
    #[error("packet of {0} bytes is shorter than {PACKET_LEN}")]
    TooShort(usize),
    /// Longer than 48 bytes: extension fields or a MAC, which this server does not support.
    #[error("packet of {0} bytes is longer than {PACKET_LEN}")]
    TooLong(usize),
}

/// An NTP packet header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Packet {
    /// Leap indicator: 0 no warning, 3 alarm (clock not synchronized).
    pub leap: u8,
    /// Version number, 1 to 7 on the wire.
    pub version: u8,
    /// Mode: 3 client, 4 server.
    pub mode: u8,
    /// Stratum: 0 kiss-o'-death, 1 primary, 2 to 15 secondary, 16 unsynchronized.
    pub stratum: u8,
    /// Poll exponent (log2 seconds).
    pub poll: i8,
    /// Precision exponent (log2 seconds).
    pub precision: i8,
    /// Root delay, NTP short format (16.16 seconds).
    pub root_delay: u32,
    /// Root dispersion, NTP short format (16.16 seconds).
    pub root_dispersion: u32,
    /// Reference ID: an ASCII source or kiss code at stratum 0 and 1.
    pub reference_id: [u8; 4],
    /// When the clock was last set, NTP timestamp format.
    pub reference: u64,
    /// Origin timestamp: the client's transmit timestamp, echoed.
    pub origin: u64,
    /// When the request arrived.
    pub receive: u64,
    /// When the reply left.
    pub transmit: u64,
}

impl Packet {
    /// Reads a packet of exactly [`PACKET_LEN`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, PacketError> {
        let bytes: &[u8; PACKET_LEN] = match bytes.len() {
            n if n < PACKET_LEN => return Err(PacketError::TooShort(n)),
            n if n > PACKET_LEN => return Err(PacketError::TooLong(n)),
            _ => bytes.try_into().expect("length checked"),
        };
        let u32_at = |at: usize| u32::from_be_bytes(bytes[at..at + 4].try_into().expect("4"));
        let u64_at = |at: usize| u64::from_be_bytes(bytes[at..at + 8].try_into().expect("8"));
        Ok(Self {
            leap: bytes[0] >> 6,
            version: (bytes[0] >> 3) & 0b111,
            mode: bytes[0] & 0b111,
            stratum: bytes[1],
            poll: bytes[2] as i8,
            precision: bytes[3] as i8,
            root_delay: u32_at(4),
            root_dispersion: u32_at(8),
            reference_id: bytes[12..16].try_into().expect("4"),
            reference: u64_at(16),
            origin: u64_at(24),
            receive: u64_at(32),
            transmit: u64_at(40),
        })
    }

    /// The packet's 48 bytes. Fields wider than their bits are masked.
    pub fn encode(&self) -> [u8; PACKET_LEN] {
        let mut out = [0u8; PACKET_LEN];
        out[0] = ((self.leap & 0b11) << 6) | ((self.version & 0b111) << 3) | (self.mode & 0b111);
        out[1] = self.stratum;
        out[2] = self.poll as u8;
        out[3] = self.precision as u8;
        out[4..8].copy_from_slice(&self.root_delay.to_be_bytes());
        out[8..12].copy_from_slice(&self.root_dispersion.to_be_bytes());
        out[12..16].copy_from_slice(&self.reference_id);
        out[16..24].copy_from_slice(&self.reference.to_be_bytes());
        out[24..32].copy_from_slice(&self.origin.to_be_bytes());
        out[32..40].copy_from_slice(&self.receive.to_be_bytes());
        out[40..48].copy_from_slice(&self.transmit.to_be_bytes());
        out
    }
}

/// The NTP timestamp (32.32 seconds since 1900, wrapping at era boundaries as the format
/// does) of a Unix time in nanoseconds.
pub fn timestamp(unix_ns: u64) -> u64 {
    let seconds = (unix_ns / NS_PER_S + UNIX_EPOCH_IN_NTP_S) & 0xffff_ffff;
    let fraction = ((unix_ns % NS_PER_S) << 32) / NS_PER_S;
    (seconds << 32) | fraction
}

/// A duration in nanoseconds in NTP short format (16.16 seconds), rounded up and saturating.
pub fn short_format_ceil(ns: u64) -> u32 {
    let units = (u128::from(ns) << 16).div_ceil(u128::from(NS_PER_S));
    u32::try_from(units).unwrap_or(u32::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packets_round_trip() {
        let packet = Packet {
            leap: 3,
            version: 4,
            mode: 4,
            stratum: 1,
            poll: 6,
            precision: -20,
            root_delay: 1,
            root_dispersion: 2,
            reference_id: *b"WLKN",
            reference: 3,
            origin: 4,
            receive: 5,
            transmit: 6,
        };
        assert_eq!(Packet::decode(&packet.encode()), Ok(packet));
        assert_eq!(Packet::decode(&[0; 47]), Err(PacketError::TooShort(47)));
        assert_eq!(Packet::decode(&[0; 68]), Err(PacketError::TooLong(68)));
    }

    #[test]
    fn timestamps_count_from_1900() {
        assert_eq!(timestamp(0), UNIX_EPOCH_IN_NTP_S << 32);
        assert_eq!(timestamp(500_000_000) & 0xffff_ffff, 1 << 31);
        // 2036-02-07T06:28:16Z starts era 1: the seconds wrap to zero.
        assert_eq!(timestamp(2_085_978_496 * NS_PER_S) >> 32, 0);
    }

    #[test]
    fn short_format_rounds_up() {
        assert_eq!(short_format_ceil(0), 0);
        assert_eq!(short_format_ceil(1), 1);
        assert_eq!(short_format_ceil(NS_PER_S), 1 << 16);
        assert_eq!(short_format_ceil(u64::MAX), u32::MAX);
    }
}
