//! The reader and writer under every encoding: a version byte, fixed-width big-endian
//! integers, and bounds checked before anything is allocated.

use crate::MESSAGES_VERSION;

/// Why bytes did not decode.
#[derive(Debug, Clone, thiserror::Error, PartialEq, Eq)]
pub enum DecodeError {
    /// The input is longer than the largest valid encoding of its kind.
    #[error("{what}: {len} bytes is over the {max}-byte limit")]
    TooLarge {
        /// The kind of message.
        what: &'static str,
        /// The input's length.
        len: usize,
        /// The longest valid encoding.
        max: usize,
    },
    /// The version byte is not [`MESSAGES_VERSION`].
    #[error("{what}: version {found} is not the supported version {MESSAGES_VERSION}")]
    Version {
        /// The kind of message.
        what: &'static str,
        /// The version byte found.
        found: u8,
    },
    /// The input ends inside a field.
    #[error("{what}: truncated in the {field} at byte {at}: {needed} more bytes needed")]
    Truncated {
        /// The kind of message.
        what: &'static str,
        /// The field being read.
        field: &'static str,
        /// Where the field starts.
        at: usize,
        /// How many bytes were missing.
        needed: usize,
    },
    /// Bytes remain after the last field.
    #[error("{what}: {count} trailing bytes after the end at byte {at}")]
    Trailing {
        /// The kind of message.
        what: &'static str,
        /// Where the encoding ended.
        at: usize,
        /// How many bytes follow it.
        count: usize,
    },
    /// A count, length or index is outside its bounds.
    #[error("{what}: {field} {value} is out of range ({bounds})")]
    OutOfRange {
        /// The kind of message.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// The value found.
        value: u64,
        /// The allowed range, in words.
        bounds: &'static str,
    },
    /// A group element or scalar that is not canonical, not on the curve, the identity or
    /// not of prime order.
    #[error("{what}: {field} {hex} is not a valid {kind}")]
    Invalid {
        /// The kind of message.
        what: &'static str,
        /// The field.
        field: &'static str,
        /// The bad bytes, hex.
        hex: String,
        /// What it should be ("point" or "scalar").
        kind: &'static str,
    },
}

/// Reads one encoding, front to back.
pub(crate) struct Reader<'a> {
    what: &'static str,
    bytes: &'a [u8],
    at: usize,
}

impl<'a> Reader<'a> {
    /// Starts reading `bytes` as a `what` of at most `max` bytes, after its version byte.
    pub(crate) fn new(
        what: &'static str,
        bytes: &'a [u8],
        max: usize,
    ) -> Result<Self, DecodeError> {
        if bytes.len() > max {
            return Err(DecodeError::TooLarge {
                what,
                len: bytes.len(),
                max,
            });
        }
        let mut reader = Self { what, bytes, at: 0 };
        let [found] = reader.array::<1>("version")?;
        if found != MESSAGES_VERSION {
            return Err(DecodeError::Version { what, found });
        }
        Ok(reader)
    }

    /// The next `len` bytes.
    pub(crate) fn take(
        &mut self,
        field: &'static str,
        len: usize,
    ) -> Result<&'a [u8], DecodeError> {
        let rest = &self.bytes[self.at..];
        if rest.len() < len {
            return Err(DecodeError::Truncated {
                what: self.what,
                field,
                at: self.at,
                needed: len - rest.len(),
            });
        }
        self.at += len;
        Ok(&rest[..len])
    }

    /// The next `N` bytes.
    pub(crate) fn array<const N: usize>(
        &mut self,
        field: &'static str,
    ) -> Result<[u8; N], DecodeError> {
        Ok(self
            .take(field, N)?
            .try_into()
            .expect("take returns exactly the length asked for"))
    }

    /// A big-endian `u16`.
    pub(crate) fn u16(&mut self, field: &'static str) -> Result<u16, DecodeError> {
        self.array(field).map(u16::from_be_bytes)
    }

    /// A big-endian `u32`.
    pub(crate) fn u32(&mut self, field: &'static str) -> Result<u32, DecodeError> {
        self.array(field).map(u32::from_be_bytes)
    }

    /// A big-endian `u64`.
    pub(crate) fn u64(&mut self, field: &'static str) -> Result<u64, DecodeError> {
        self.array(field).map(u64::from_be_bytes)
    }

    /// A count or index that must lie in `range`.
    pub(crate) fn u16_in(
        &mut self,
        field: &'static str,
        range: std::ops::RangeInclusive<u16>,
        bounds: &'static str,
    ) -> Result<u16, DecodeError> {
        let value = self.u16(field)?;
        if !range.contains(&value) {
            return Err(self.out_of_range(field, value.into(), bounds));
        }
        Ok(value)
    }

    /// An out-of-range error for `field` of this message.
    pub(crate) fn out_of_range(
        &self,
        field: &'static str,
        value: u64,
        bounds: &'static str,
    ) -> DecodeError {
        DecodeError::OutOfRange {
            what: self.what,
            field,
            value,
            bounds,
        }
    }

    /// An invalid-element error for `field` holding `bytes`.
    pub(crate) fn invalid(
        &self,
        field: &'static str,
        bytes: &[u8],
        kind: &'static str,
    ) -> DecodeError {
        DecodeError::Invalid {
            what: self.what,
            field,
            hex: hex_string(bytes),
            kind,
        }
    }

    /// An invalid-element error for a secret `field`, whose bytes are not repeated.
    pub(crate) fn invalid_secret(&self, field: &'static str, kind: &'static str) -> DecodeError {
        DecodeError::Invalid {
            what: self.what,
            field,
            hex: "<secret>".to_string(),
            kind,
        }
    }

    /// Ends the reading: nothing may follow the last field.
    pub(crate) fn finish(self) -> Result<(), DecodeError> {
        let count = self.bytes.len() - self.at;
        if count != 0 {
            return Err(DecodeError::Trailing {
                what: self.what,
                at: self.at,
                count,
            });
        }
        Ok(())
    }
}

/// Lowercase hex, for errors that name a bad value.
pub(crate) fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

/// A new encoding: the version byte, with room for `capacity` bytes.
pub(crate) fn writer(capacity: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(capacity);
    out.push(MESSAGES_VERSION);
    out
}
