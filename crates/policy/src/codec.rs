//! The binary encoding of a [`Policy`], as transactions and state carry it.
//!
//! Layout (version 1): the version byte; the name (varint length, UTF-8 bytes); the number of
//! rules (varint); each rule's pattern (varint length, UTF-8 bytes) and capability bits (u16,
//! big-endian); the text (varint length, UTF-8 bytes). Decoding enforces the parser's limits
//! and rules again (name, pattern and text lengths, rule count, name and pattern checks,
//! capability bits). It does not parse the text: see [`crate::Policy::check_text`] for that.

use crate::{
    Capabilities, MAX_NAME_BYTES, MAX_PATTERN_BYTES, MAX_RULES, MAX_TEXT_BYTES, PathRule, Policy,
    PolicyError, check_pattern, validate_name,
};
use bytes::BufMut;
use commonware_codec::{
    Buf, EncodeSize, Error as CodecError, Read, ReadExt as _, Write, varint::UInt,
};

/// The version of the [`Policy`] encoding (its first byte).
pub const VERSION: u8 = 1;

/// Writes a length-prefixed string.
fn write_str(value: &str, buf: &mut impl BufMut) {
    UInt(u32::try_from(value.len()).expect("strings are bounded far below 4 GiB")).write(buf);
    buf.put_slice(value.as_bytes());
}

fn str_size(value: &str) -> usize {
    UInt(u32::try_from(value.len()).expect("strings are bounded far below 4 GiB")).encode_size()
        + value.len()
}

/// Reads a length-prefixed UTF-8 string of at most `max` bytes.
fn read_str(buf: &mut impl Buf, max: usize) -> Result<String, CodecError> {
    let len: u32 = UInt::read(buf)?.into();
    let len = len as usize;
    if len > max {
        return Err(CodecError::InvalidLength(len));
    }
    if buf.remaining() < len {
        return Err(CodecError::EndOfBuffer);
    }
    let mut bytes = vec![0u8; len];
    buf.copy_to_slice(&mut bytes);
    String::from_utf8(bytes)
        .map_err(|_| CodecError::Invalid("welkin-policy", "string is not utf-8"))
}

/// A policy check failed on decode: keep its precise message.
fn invalid(error: PolicyError) -> CodecError {
    CodecError::Wrapped("welkin-policy", Box::new(error))
}

impl Write for Policy {
    fn write(&self, buf: &mut impl BufMut) {
        VERSION.write(buf);
        write_str(&self.name, buf);
        UInt(u32::try_from(self.rules.len()).expect("rules are bounded by MAX_RULES")).write(buf);
        for rule in &self.rules {
            write_str(&rule.pattern, buf);
            rule.capabilities.bits().write(buf);
        }
        write_str(&self.text, buf);
    }
}

impl EncodeSize for Policy {
    fn encode_size(&self) -> usize {
        let rules = UInt(u32::try_from(self.rules.len()).expect("rules are bounded by MAX_RULES"));
        1 + str_size(&self.name)
            + rules.encode_size()
            + self
                .rules
                .iter()
                .map(|rule| str_size(&rule.pattern) + 2)
                .sum::<usize>()
            + str_size(&self.text)
    }
}

impl Read for Policy {
    type Cfg = ();

    fn read_cfg(buf: &mut impl Buf, _: &()) -> Result<Self, CodecError> {
        let version = u8::read(buf)?;
        if version != VERSION {
            return Err(CodecError::InvalidEnum(version));
        }
        let name = read_str(buf, MAX_NAME_BYTES)?;
        validate_name(&name).map_err(invalid)?;
        let count: u32 = UInt::read(buf)?.into();
        let count = count as usize;
        if count > MAX_RULES {
            return Err(CodecError::InvalidLength(count));
        }
        // Each rule takes at least three bytes; a count the buffer cannot hold is refused before
        // anything is allocated for it.
        if buf.remaining() < count * 3 {
            return Err(CodecError::EndOfBuffer);
        }
        let mut rules = Vec::with_capacity(count);
        for _ in 0..count {
            let pattern = read_str(buf, MAX_PATTERN_BYTES)?;
            check_pattern(&pattern).map_err(invalid)?;
            let bits = u16::read(buf)?;
            let capabilities =
                Capabilities::from_bits(bits).ok_or(invalid(PolicyError::CapabilityBits(bits)))?;
            rules.push(PathRule {
                pattern,
                capabilities,
            });
        }
        let text = read_str(buf, MAX_TEXT_BYTES)?;
        if text.is_empty() {
            return Err(invalid(PolicyError::EmptyText));
        }
        Ok(Policy { name, rules, text })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{default_policy, parse};
    use commonware_codec::{Copying, Decode as _, Encode as _};
    use sha2::{Digest as _, Sha256};

    fn decode(bytes: &[u8]) -> Result<Policy, CodecError> {
        Policy::decode_cfg(Copying(bytes), &())
    }

    /// A fixed policy: globs, `+`, deny, the old shorthand and a non-ASCII path.
    const FIXTURE_TEXT: &str = r#"path "secret/data/*" { capabilities = ["create", "read", "update", "patch", "delete", "list"] }
path "secret/data/admin" { capabilities = ["deny"] }
path "secret/+/team/*" { capabilities = ["read", "sudo"] }
path "sys/policies/acl/*" { policy = "write" }
path "kv/données" { capabilities = ["read"] }
"#;

    #[test]
    fn round_trips() {
        for policy in [
            parse("fixture", FIXTURE_TEXT).expect("parses"),
            default_policy(),
            parse("empty", "# nothing").expect("parses"),
        ] {
            let bytes = policy.encode();
            assert_eq!(bytes.len(), policy.encode_size());
            assert_eq!(bytes[0], VERSION);
            assert_eq!(decode(&bytes).expect("decodes"), policy);
        }
    }

    #[test]
    fn the_encoding_is_frozen() {
        let policy = parse("fixture", FIXTURE_TEXT).expect("parses");
        let bytes = policy.encode();
        // version, name, count, rules (each pattern and two bytes of bits), text
        let rules: usize = policy.rules.iter().map(|r| 1 + r.pattern.len() + 2).sum();
        assert_eq!(bytes.len(), 1 + 8 + 1 + rules + 2 + FIXTURE_TEXT.len());
        assert_eq!(
            hex::encode(Sha256::digest(&bytes)),
            FROZEN_FIXTURE_SHA256,
            "the encoding changed: bump VERSION and keep a decoder for version 1"
        );
    }

    /// The SHA-256 of the frozen fixture's encoding.
    const FROZEN_FIXTURE_SHA256: &str =
        "7108afc72017b6a26b7243531e6a3ddfc0217ec27a105c0ea6759c782c1dad5a";

    #[test]
    fn every_truncation_and_other_versions_are_refused() {
        let bytes = parse("fixture", FIXTURE_TEXT).expect("parses").encode();
        for cut in 0..bytes.len() {
            assert!(decode(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut extra = bytes.to_vec();
        extra.push(0);
        assert!(matches!(decode(&extra), Err(CodecError::ExtraData(1))));
        let mut other = bytes.to_vec();
        other[0] = 2;
        assert!(matches!(decode(&other), Err(CodecError::InvalidEnum(2))));
    }

    /// Encodes a policy by hand, bypassing the parser.
    fn forged(name: &str, rules: &[(&str, u16)], text: &str) -> Vec<u8> {
        let mut buf = vec![VERSION];
        write_str(name, &mut buf);
        UInt(rules.len() as u32).write(&mut buf);
        for (pattern, bits) in rules {
            write_str(pattern, &mut buf);
            bits.write(&mut buf);
        }
        write_str(text, &mut buf);
        buf
    }

    fn refusal(bytes: &[u8]) -> String {
        match decode(bytes) {
            Err(CodecError::Wrapped(_, error)) => error.to_string(),
            other => panic!("expected a policy error, got {other:?}"),
        }
    }

    #[test]
    fn decoding_checks_what_parsing_checks() {
        assert!(decode(&forged("ok", &[("a/*", 0x02)], "x")).is_ok());
        assert_eq!(
            refusal(&forged("root", &[], "x")),
            r#"cannot update "root" policy"#
        );
        assert_eq!(
            refusal(&forged("ok", &[("a", 0x82)], "x")),
            "invalid capability bits 0x0082"
        );
        assert_eq!(
            refusal(&forged("ok", &[("a", 0x100)], "x")),
            "invalid capability bits 0x0100"
        );
        assert_eq!(
            refusal(&forged("ok", &[("a+*", 2)], "x")),
            r#"path "a+*": invalid use of wildcards ('+*' is forbidden)"#
        );
        assert_eq!(refusal(&forged("ok", &[], "")), "policy text is empty");
        let long_name = "a".repeat(MAX_NAME_BYTES + 1);
        assert!(matches!(
            decode(&forged(&long_name, &[], "x")),
            Err(CodecError::InvalidLength(129))
        ));
        let long_pattern = "a".repeat(MAX_PATTERN_BYTES + 1);
        assert!(matches!(
            decode(&forged("ok", &[(&long_pattern, 2)], "x")),
            Err(CodecError::InvalidLength(1025))
        ));
        let long_text = "a".repeat(MAX_TEXT_BYTES + 1);
        assert!(matches!(
            decode(&forged("ok", &[], &long_text)),
            Err(CodecError::InvalidLength(65537))
        ));
        let many: Vec<(&str, u16)> = vec![("a", 2); MAX_RULES + 1];
        assert!(matches!(
            decode(&forged("ok", &many, "x")),
            Err(CodecError::InvalidLength(1025))
        ));
        let mut bad_utf8 = forged("ok", &[("ab", 2)], "x");
        let at = bad_utf8.len() - 2 - 2 - 2; // the pattern's last byte
        bad_utf8[at] = 0xff;
        assert!(matches!(decode(&bad_utf8), Err(CodecError::Invalid(_, _))));
    }

    #[test]
    fn garbage_never_panics() {
        // A deterministic generator: the same bytes on every run.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = move || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let valid = parse("fixture", FIXTURE_TEXT)
            .expect("parses")
            .encode()
            .to_vec();
        let mut decoded = 0;
        for round in 0..20_000 {
            let bytes: Vec<u8> = if round % 2 == 0 {
                let len = (next() % 64) as usize;
                (0..len).map(|_| next() as u8).collect()
            } else {
                // Flip a few bytes of a valid encoding, to get past the first checks.
                let mut bytes = valid.clone();
                for _ in 0..1 + next() % 3 {
                    let at = (next() as usize) % bytes.len();
                    bytes[at] = next() as u8;
                }
                bytes
            };
            if let Ok(policy) = decode(&bytes) {
                decoded += 1;
                assert_eq!(decode(&policy.encode()).expect("re-decodes"), policy);
            }
        }
        // Flips inside the text or a pattern's letters still decode: the loop exercised both
        // outcomes.
        assert!(decoded > 0);
    }
}
