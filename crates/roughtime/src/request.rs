//! Requests: which dialect a packet speaks, from its version tag, and what a server needs of
//! it. Both dialects frame packets with `ROUGHTIM`; unknown tags (`PAD`, `ZZZZ`, ...) are
//! ignored as both documents require.

use crate::{
    merkle::TreeHash,
    wire::{Message, WireError, unframe},
};

/// The smallest request answered: requests are padded to this size so that a reply is never
/// larger than the request that caused it (no amplification).
pub const MIN_REQUEST: usize = 1024;
/// The largest request answered: a full Ethernet-MTU UDP payload.
pub const MAX_REQUEST: usize = 1472;
/// The most versions a request may offer.
const MAX_VERSIONS: usize = 32;

/// A protocol version this crate speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Version {
    /// draft-ietf-ntp-roughtime-07 (`0x80000007`): SHA-512/256 tree over nonces, timestamps as
    /// Modified Julian Date plus microseconds, radius in microseconds. Spoken by pyroughtime.
    Draft07,
    /// The pre-RFC draft version `0x8000000c`: the RFC 10049 format with the drafts' context
    /// strings (`RoughTime`).
    Draft12,
    /// RFC 10049 version 1: first 32 bytes of SHA-512 over whole requests, seconds.
    Rfc1,
}

impl Version {
    /// The version number on the wire.
    pub const fn number(self) -> u32 {
        match self {
            Version::Draft07 => 0x8000_0007,
            Version::Draft12 => 0x8000_000c,
            Version::Rfc1 => 0x0000_0001,
        }
    }

    /// The version a number names, if this crate speaks it.
    pub const fn from_number(number: u32) -> Option<Self> {
        match number {
            0x8000_0007 => Some(Version::Draft07),
            0x8000_000c => Some(Version::Draft12),
            0x0000_0001 => Some(Version::Rfc1),
            _ => None,
        }
    }

    /// Every version, in ascending wire order (as `VERS` lists them).
    pub(crate) const ALL: [Version; 3] = [Version::Rfc1, Version::Draft07, Version::Draft12];

    /// The context string the long-term key signs `DELE` under.
    pub(crate) const fn delegation_context(self) -> &'static [u8] {
        match self {
            Version::Draft07 | Version::Draft12 => b"RoughTime v1 delegation signature\0",
            Version::Rfc1 => b"Roughtime v1 delegation signature\0",
        }
    }

    /// The context string the online key signs `SREP` under.
    pub(crate) const fn response_context(self) -> &'static [u8] {
        match self {
            Version::Draft07 | Version::Draft12 => b"RoughTime v1 response signature\0",
            Version::Rfc1 => b"Roughtime v1 response signature\0",
        }
    }

    /// The tree hash of this version.
    pub(crate) const fn tree_hash(self) -> TreeHash {
        match self {
            Version::Draft07 => TreeHash::Sha512_256,
            Version::Draft12 | Version::Rfc1 => TreeHash::Sha512Prefix,
        }
    }
}

/// A request worth answering.
#[derive(Debug)]
pub(crate) struct Request<'a> {
    /// The version to answer in.
    pub(crate) version: Version,
    /// The client's nonce, echoed in `NONC`.
    pub(crate) nonce: [u8; 32],
    /// The data hashed into the tree: the nonce (draft-07) or the whole packet (RFC).
    pub(crate) leaf: &'a [u8],
}

/// Why a request gets no reply.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub(crate) enum Refusal {
    /// Smaller than [`MIN_REQUEST`].
    #[error("request of {0} bytes is smaller than {MIN_REQUEST}")]
    TooSmall(usize),
    /// Larger than [`MAX_REQUEST`].
    #[error("request of {0} bytes is larger than {MAX_REQUEST}")]
    Oversized(usize),
    /// Not a well-formed request.
    #[error("malformed request: {0}")]
    Malformed(#[from] WireError),
    /// A version list that is empty, too long or not made of `u32`s.
    #[error("malformed VER tag of {0} bytes")]
    BadVersions(usize),
    /// No version offered that this crate speaks.
    #[error("no supported version among {0:x?}")]
    Unsupported(Vec<u32>),
    /// An RFC request whose `TYPE` is not 0 (request).
    #[error("TYPE {0} is not a request")]
    NotRequest(u32),
    /// An `SRV` tag naming another long-term key.
    #[error("SRV names another server's key")]
    OtherServer,
}

/// Reads a request. `srv` is this server's `SRV` commitment (H(0xff || public key)); `None`
/// skips the check (a client reading back its own request).
pub(crate) fn parse<'a>(packet: &'a [u8], srv: Option<&[u8; 32]>) -> Result<Request<'a>, Refusal> {
    if packet.len() < MIN_REQUEST {
        return Err(Refusal::TooSmall(packet.len()));
    }
    if packet.len() > MAX_REQUEST {
        return Err(Refusal::Oversized(packet.len()));
    }
    let message = Message::parse(unframe(packet)?)?;
    let offered = message.require(b"VER\0")?;
    if offered.is_empty() || offered.len() % 4 != 0 || offered.len() / 4 > MAX_VERSIONS {
        return Err(Refusal::BadVersions(offered.len()));
    }
    let numbers: Vec<u32> = offered
        .chunks(4)
        .map(|c| u32::from_le_bytes(c.try_into().expect("four bytes")))
        .collect();
    let version = [Version::Rfc1, Version::Draft12, Version::Draft07]
        .into_iter()
        .find(|v| numbers.contains(&v.number()))
        .ok_or_else(|| Refusal::Unsupported(numbers.clone()))?;
    let nonce = message.fixed::<32>(b"NONC")?;
    let leaf = match version {
        Version::Draft07 => message.require(b"NONC")?,
        Version::Draft12 | Version::Rfc1 => {
            let kind = message.u32(b"TYPE")?;
            if kind != 0 {
                return Err(Refusal::NotRequest(kind));
            }
            if let (Some(ours), Some(named)) = (srv, message.get(b"SRV\0"))
                && named != ours
            {
                return Err(Refusal::OtherServer);
            }
            packet
        }
    };
    Ok(Request {
        version,
        nonce,
        leaf,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::request;

    #[test]
    fn the_version_tag_picks_the_dialect() {
        for version in Version::ALL {
            let packet = request(version, &[9; 32], None);
            let parsed = parse(&packet, None).expect("our own request");
            assert_eq!(parsed.version, version);
            assert_eq!(parsed.nonce, [9; 32]);
        }
    }

    #[test]
    fn small_large_and_unknown_requests_are_refused() {
        let packet = request(Version::Rfc1, &[1; 32], None);
        assert_eq!(
            parse(&packet[..1000], None).err(),
            Some(Refusal::TooSmall(1000))
        );
        let mut big = packet.clone();
        big.resize(MAX_REQUEST + 4, 0);
        assert_eq!(
            parse(&big, None).err(),
            Some(Refusal::Oversized(MAX_REQUEST + 4))
        );
        let mut other = packet.clone();
        let at = other
            .windows(4)
            .position(|w| w == 1u32.to_le_bytes())
            .expect("version 1 in the packet");
        other[at..at + 4].copy_from_slice(&0x8000_0099u32.to_le_bytes());
        assert!(matches!(parse(&other, None), Err(Refusal::Unsupported(_))));
    }
}
