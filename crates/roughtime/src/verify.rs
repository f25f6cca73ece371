//! The client side: building a request and checking a reply to it against the server's
//! long-term public key, as a careful client does (delegation signature, response signature,
//! Merkle inclusion of the request, `MINT <= MIDP <= MAXT`).

use ed25519_dalek::{Signature, VerifyingKey};

use crate::{
    keys::srv_commitment,
    merkle::root_from_path,
    request::{self, MIN_REQUEST, Refusal, Version},
    time::{NS_PER_S, NS_PER_US, Reading, unix_us_of_draft07},
    wire::{FRAME_LEN, Message, WireError, encode, frame, unframe},
};

/// Why a reply does not prove the time.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The request given is not one this crate can have sent.
    #[error("not a request: {0}")]
    Request(String),
    /// The reply is not a well-formed message.
    #[error("malformed reply: {0}")]
    Wire(#[from] WireError),
    /// The reply echoes another nonce.
    #[error("reply is for another nonce")]
    Nonce,
    /// An RFC reply whose `TYPE` is not 1 (response).
    #[error("reply TYPE {0} is not a response")]
    NotResponse(u32),
    /// The reply's version is not the one the request asked for.
    #[error("reply version {0:#x} was not offered")]
    Version(u32),
    /// The delegation is not signed by the long-term key.
    #[error("delegation signature does not verify with the long-term key")]
    Delegation,
    /// The signed response is not signed by the delegated key.
    #[error("response signature does not verify with the delegated key")]
    Signature,
    /// The request is not in the tree the signature covers.
    #[error("request is not under the signed merkle root (index {0})")]
    Merkle(u32),
    /// The midpoint lies outside the delegation.
    #[error("midpoint {midpoint} outside the delegation {mint}..={maxt}")]
    Outside {
        /// `MIDP` as sent.
        midpoint: u64,
        /// `MINT` as sent.
        mint: u64,
        /// `MAXT` as sent.
        maxt: u64,
    },
    /// A time that cannot be expressed as Unix nanoseconds.
    #[error("time {0} is out of range")]
    Time(u64),
}

/// A request in `version` with `nonce`, framed and padded to [`MIN_REQUEST`] bytes. With
/// `server`, RFC requests name the key they expect in `SRV`.
pub fn request(version: Version, nonce: &[u8; 32], server: Option<&VerifyingKey>) -> Vec<u8> {
    let number = version.number().to_le_bytes();
    let srv = server.map(srv_commitment);
    let mut entries: Vec<([u8; 4], &[u8])> = vec![(*b"VER\0", &number), (*b"NONC", nonce)];
    let padding_tag = match version {
        Version::Draft07 => *b"PAD\0",
        Version::Draft12 | Version::Rfc1 => {
            entries.push((*b"TYPE", &[0; 4]));
            if let Some(srv) = &srv {
                entries.push((*b"SRV\0", srv));
            }
            *b"ZZZZ"
        }
    };
    // One more tag adds 8 bytes of header; the padding fills the rest.
    let unpadded = encode(&entries).len() + 8;
    let padding = vec![0u8; MIN_REQUEST - FRAME_LEN - unpadded];
    entries.push((padding_tag, &padding));
    frame(&encode(&entries))
}

/// Checks `response` as a reply to `request` (the exact bytes sent) from the server whose
/// long-term key is `public_key`, and returns the time it certifies in nanoseconds.
pub fn verify_response(
    request: &[u8],
    response: &[u8],
    public_key: &VerifyingKey,
) -> Result<Reading, VerifyError> {
    let sent =
        request::parse(request, None).map_err(|e: Refusal| VerifyError::Request(e.to_string()))?;
    let version = sent.version;
    let reply = Message::parse(unframe(response)?)?;
    if reply.fixed::<32>(b"NONC")? != sent.nonce {
        return Err(VerifyError::Nonce);
    }
    match version {
        Version::Draft07 => {
            let answered = reply.u32(b"VER\0")?;
            if answered != version.number() {
                return Err(VerifyError::Version(answered));
            }
        }
        Version::Draft12 | Version::Rfc1 => {
            let kind = reply.u32(b"TYPE")?;
            if kind != 1 {
                return Err(VerifyError::NotResponse(kind));
            }
        }
    }
    let cert = Message::parse(reply.require(b"CERT")?)?;
    let dele_bytes = cert.require(b"DELE")?;
    let dele = Message::parse(dele_bytes)?;
    check(
        public_key,
        version.delegation_context(),
        dele_bytes,
        cert.fixed::<64>(b"SIG\0")?,
        VerifyError::Delegation,
    )?;
    let srep_bytes = reply.require(b"SREP")?;
    let online = VerifyingKey::from_bytes(&dele.fixed::<32>(b"PUBK")?)
        .map_err(|_| VerifyError::Delegation)?;
    check(
        &online,
        version.response_context(),
        srep_bytes,
        reply.fixed::<64>(b"SIG\0")?,
        VerifyError::Signature,
    )?;
    let srep = Message::parse(srep_bytes)?;
    if version != Version::Draft07 {
        let answered = srep.u32(b"VER\0")?;
        if answered != version.number() {
            return Err(VerifyError::Version(answered));
        }
    }
    let index = reply.u32(b"INDX")?;
    let hash = version.tree_hash();
    let root = root_from_path(hash, hash.leaf(sent.leaf), index, reply.require(b"PATH")?);
    if root != Some(srep.fixed::<32>(b"ROOT")?) {
        return Err(VerifyError::Merkle(index));
    }
    let (midpoint, mint, maxt) = (srep.u64(b"MIDP")?, dele.u64(b"MINT")?, dele.u64(b"MAXT")?);
    if !(mint <= midpoint && midpoint <= maxt) {
        return Err(VerifyError::Outside {
            midpoint,
            mint,
            maxt,
        });
    }
    let radius = u64::from(srep.u32(b"RADI")?);
    let (midpoint_ns, radius_ns) = match version {
        Version::Draft07 => {
            let micros = unix_us_of_draft07(midpoint).ok_or(VerifyError::Time(midpoint))?;
            (micros.checked_mul(NS_PER_US), radius * NS_PER_US)
        }
        Version::Draft12 | Version::Rfc1 => (midpoint.checked_mul(NS_PER_S), radius * NS_PER_S),
    };
    Ok(Reading {
        midpoint_ns: midpoint_ns.ok_or(VerifyError::Time(midpoint))?,
        radius_ns,
    })
}

/// Verifies `signature` by `key` over `context || message`.
fn check(
    key: &VerifyingKey,
    context: &[u8],
    message: &[u8],
    signature: [u8; 64],
    error: VerifyError,
) -> Result<(), VerifyError> {
    let signed = [context, message].concat();
    key.verify_strict(&signed, &Signature::from_bytes(&signature))
        .map_err(|_| error)
}
