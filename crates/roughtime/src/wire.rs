//! The Roughtime message format shared by every dialect: a tag count, value offsets and tags,
//! then the values, all little-endian and 4-byte aligned; and the `ROUGHTIM` frame around a
//! message on the wire.
//!
//! Parsing checks every bound: the tag count is capped, offsets are 4-aligned, monotonic and
//! within the message, and tags are strictly ascending (which also rules out duplicates).

/// A four-byte tag, as it appears on the wire (`b"NONC"`, `b"SIG\0"`).
pub(crate) type Tag = [u8; 4];

/// The frame magic that starts every packet of the IETF dialects.
pub(crate) const MAGIC: &[u8; 8] = b"ROUGHTIM";
/// Bytes of frame before the message: the magic and a `u32` length.
pub(crate) const FRAME_LEN: usize = 12;
/// The most tags a message may have; no message of any dialect has more than eight.
pub(crate) const MAX_TAGS: usize = 64;

/// Why bytes are not a well-formed Roughtime message or frame.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    /// The length is not a multiple of four.
    #[error("message of {0} bytes is not a multiple of four")]
    Unaligned(usize),
    /// Too short for the header it announces.
    #[error("message of {len} bytes is too short for a header of {tags} tags")]
    Short {
        /// The message's length.
        len: usize,
        /// The tag count it announces.
        tags: u32,
    },
    /// More tags than any dialect uses.
    #[error("message announces {0} tags, more than {MAX_TAGS}")]
    TooManyTags(u32),
    /// A value offset that is unaligned, goes backwards or points past the values.
    #[error("offset {offset} of tag {index} is unaligned, decreasing or past {values} bytes")]
    BadOffset {
        /// Which tag.
        index: usize,
        /// The offset found.
        offset: u32,
        /// Bytes of values in the message.
        values: usize,
    },
    /// Tags not in strictly ascending order.
    #[error("tag {0:?} is out of order or repeated")]
    TagOrder(String),
    /// No `ROUGHTIM` magic.
    #[error("packet of {0} bytes has no ROUGHTIM frame")]
    NoFrame(usize),
    /// The frame's length disagrees with the bytes that follow it.
    #[error("frame announces {declared} bytes but {actual} follow")]
    FrameLength {
        /// The length in the frame.
        declared: u32,
        /// Bytes after the frame header.
        actual: usize,
    },
    /// A tag that must be present is missing.
    #[error("missing tag {0}")]
    Missing(&'static str),
    /// A fixed-size value of the wrong size.
    #[error("tag {tag} has {actual} bytes, expected {expected}")]
    Size {
        /// The tag.
        tag: &'static str,
        /// Its expected size.
        expected: usize,
        /// Its actual size.
        actual: usize,
    },
}

/// A parsed message: its tags and values, borrowed from the packet, in wire order.
#[derive(Debug)]
pub(crate) struct Message<'a> {
    entries: Vec<(Tag, &'a [u8])>,
}

impl<'a> Message<'a> {
    /// Parses one message, checking every bound.
    pub(crate) fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let len = bytes.len();
        if !len.is_multiple_of(4) {
            return Err(WireError::Unaligned(len));
        }
        let count = read_u32(bytes, 0).ok_or(WireError::Short { len, tags: 0 })?;
        if count as usize > MAX_TAGS {
            return Err(WireError::TooManyTags(count));
        }
        let tags = count as usize;
        let header = 8 * tags;
        if tags == 0 || len < header {
            return Err(WireError::Short { len, tags: count });
        }
        let values = &bytes[header..];
        let mut starts = Vec::with_capacity(tags);
        starts.push(0usize);
        for index in 1..tags {
            let offset = read_u32(bytes, 4 * index).expect("inside the checked header");
            let start = offset as usize;
            let previous = *starts.last().expect("starts with zero");
            if !offset.is_multiple_of(4) || start < previous || start > values.len() {
                return Err(WireError::BadOffset {
                    index,
                    offset,
                    values: values.len(),
                });
            }
            starts.push(start);
        }
        let mut entries = Vec::with_capacity(tags);
        let mut last: Option<u32> = None;
        for (index, &start) in starts.iter().enumerate() {
            let at = 4 * tags + 4 * index;
            let tag: Tag = bytes[at..at + 4].try_into().expect("four bytes");
            let order = u32::from_le_bytes(tag);
            if last.is_some_and(|last| order <= last) {
                return Err(WireError::TagOrder(name(&tag)));
            }
            last = Some(order);
            let end = starts.get(index + 1).copied().unwrap_or(values.len());
            entries.push((tag, &values[start..end]));
        }
        Ok(Self { entries })
    }

    /// The value of `tag`, if present.
    pub(crate) fn get(&self, tag: &Tag) -> Option<&'a [u8]> {
        self.entries.iter().find(|(t, _)| t == tag).map(|(_, v)| *v)
    }

    /// The value of `tag`, which must be present.
    pub(crate) fn require(&self, tag: &'static Tag) -> Result<&'a [u8], WireError> {
        self.get(tag).ok_or(WireError::Missing(static_name(tag)))
    }

    /// The value of `tag`, which must be present and exactly `N` bytes.
    pub(crate) fn fixed<const N: usize>(&self, tag: &'static Tag) -> Result<[u8; N], WireError> {
        let value = self.require(tag)?;
        value.try_into().map_err(|_| WireError::Size {
            tag: static_name(tag),
            expected: N,
            actual: value.len(),
        })
    }

    /// The `u32` value of `tag`.
    pub(crate) fn u32(&self, tag: &'static Tag) -> Result<u32, WireError> {
        self.fixed::<4>(tag).map(u32::from_le_bytes)
    }

    /// The `u64` value of `tag`.
    pub(crate) fn u64(&self, tag: &'static Tag) -> Result<u64, WireError> {
        self.fixed::<8>(tag).map(u64::from_le_bytes)
    }
}

/// Encodes a message. Entries may come in any order: they are sorted as the format requires.
/// Every value must be a multiple of four bytes and every tag distinct (our own constants).
pub(crate) fn encode(entries: &[(Tag, &[u8])]) -> Vec<u8> {
    let mut sorted = entries.to_vec();
    sorted.sort_by_key(|(tag, _)| u32::from_le_bytes(*tag));
    assert!(
        sorted.windows(2).all(|pair| pair[0].0 != pair[1].0),
        "tags of our own messages are distinct"
    );
    let values: usize = sorted.iter().map(|(_, v)| v.len()).sum();
    let mut out = Vec::with_capacity(8 * sorted.len() + values);
    out.extend_from_slice(&(sorted.len() as u32).to_le_bytes());
    let mut offset = 0usize;
    for (_, value) in sorted.iter().take(sorted.len().saturating_sub(1)) {
        offset += value.len();
        out.extend_from_slice(&(offset as u32).to_le_bytes());
    }
    for (tag, _) in &sorted {
        out.extend_from_slice(tag);
    }
    for (_, value) in &sorted {
        assert!(
            value.len() % 4 == 0,
            "values of our own messages are aligned"
        );
        out.extend_from_slice(value);
    }
    out
}

/// Wraps a message in a `ROUGHTIM` frame.
pub(crate) fn frame(message: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(FRAME_LEN + message.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(message.len() as u32).to_le_bytes());
    out.extend_from_slice(message);
    out
}

/// The message inside a `ROUGHTIM` frame, which must span the whole packet.
pub(crate) fn unframe(packet: &[u8]) -> Result<&[u8], WireError> {
    if packet.len() < FRAME_LEN || &packet[..8] != MAGIC {
        return Err(WireError::NoFrame(packet.len()));
    }
    let declared = read_u32(packet, 8).expect("inside the checked frame");
    let message = &packet[FRAME_LEN..];
    if declared as usize != message.len() {
        return Err(WireError::FrameLength {
            declared,
            actual: message.len(),
        });
    }
    Ok(message)
}

/// A little-endian `u32` at `at`, if the bytes are there.
fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let word = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes(word.try_into().ok()?))
}

/// A tag's printable name, for error messages.
fn name(tag: &Tag) -> String {
    tag.iter()
        .filter(|&&b| b != 0)
        .map(|&b| {
            if b.is_ascii_graphic() {
                char::from(b).to_string()
            } else {
                format!("\\x{b:02x}")
            }
        })
        .collect()
}

/// The name of one of our tag constants (all ASCII, padded with NUL or 0xff).
fn static_name(tag: &'static Tag) -> &'static str {
    let end = tag
        .iter()
        .position(|&b| !b.is_ascii_uppercase())
        .unwrap_or(4);
    std::str::from_utf8(&tag[..end]).expect("ASCII prefix")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_sorts_and_parse_reads_back() {
        let nonce = [7u8; 32];
        let message = encode(&[(*b"NONC", &nonce), (*b"VER\0", &[1, 0, 0, 0])]);
        let parsed = Message::parse(&message).expect("well formed");
        assert_eq!(parsed.get(b"NONC"), Some(&nonce[..]));
        assert_eq!(parsed.u32(b"VER\0"), Ok(1));
        // VER\0 sorts before NONC by little-endian value.
        assert_eq!(&message[8..12], b"VER\0");
    }

    #[test]
    fn malformed_messages_are_refused() {
        let good = encode(&[(*b"NONC", &[0; 32]), (*b"VER\0", &[1, 0, 0, 0])]);
        assert_eq!(
            Message::parse(&good[..7]).err(),
            Some(WireError::Unaligned(7))
        );
        assert!(matches!(
            Message::parse(&good[..8]),
            Err(WireError::Short { .. })
        ));
        let mut backwards = good.clone();
        backwards[4..8].copy_from_slice(&64u32.to_le_bytes());
        assert!(matches!(
            Message::parse(&backwards),
            Err(WireError::BadOffset { .. })
        ));
        let mut swapped = good.clone();
        swapped[8..12].copy_from_slice(b"ZZZZ");
        assert!(matches!(
            Message::parse(&swapped),
            Err(WireError::TagOrder(_))
        ));
        let mut many = good;
        many[0..4].copy_from_slice(&1000u32.to_le_bytes());
        assert_eq!(
            Message::parse(&many).err(),
            Some(WireError::TooManyTags(1000))
        );
    }

    #[test]
    fn frames_must_span_the_packet() {
        let message = encode(&[(*b"NONC", &[0; 32])]);
        let framed = frame(&message);
        assert_eq!(unframe(&framed), Ok(&message[..]));
        assert!(matches!(
            unframe(&framed[..framed.len() - 4]),
            Err(WireError::FrameLength { .. })
        ));
        assert_eq!(unframe(&message), Err(WireError::NoFrame(message.len())));
    }
}
