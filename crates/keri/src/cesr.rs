//! CESR primitives in the text (qb64) domain: the few codes KERI 1.0 events need.
//!
//! A primitive is a derivation code followed by its raw bytes in URL-safe base64. The raw
//! bytes are left-padded with as many zero bytes as the code has characters beyond a whole
//! quadlet, so the code replaces the leading pad characters and the whole primitive stays a
//! multiple of four characters:
//!
//! | code | meaning | raw | qb64 |
//! |---|---|---|---|
//! | `B` | Ed25519 non-transferable prefix / verkey | 32 | 44 |
//! | `D` | Ed25519 transferable verkey | 32 | 44 |
//! | `E` | Blake3-256 digest | 32 | 44 |
//! | `0A` | 128-bit number (keripy's `Seqner`) | 16 | 24 |
//! | `0B` | Ed25519 signature | 64 | 88 |
//!
//! Indexed signatures ([`IndexedSignature`]) put one or two key-list offsets in the code
//! (`A`, `B`, `2A`, `2B`), and counters ([`Counter`]) frame groups of attachments (`-A##`).
//! Decoding is strict: unknown codes, short input and non-zero pad bits are errors.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;

/// The URL-safe base64 alphabet, in value order.
const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/// A reason for rejecting CESR text.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CesrError {
    /// The text ends inside a primitive or counter.
    #[error("truncated cesr {what}: need {needed} characters, have {have}")]
    Truncated {
        /// What was being decoded.
        what: &'static str,
        /// Characters the code calls for.
        needed: usize,
        /// Characters left.
        have: usize,
    },
    /// The derivation code is not one this crate knows for this position.
    #[error("unknown cesr {what} code {code:?}")]
    UnknownCode {
        /// What was being decoded.
        what: &'static str,
        /// The start of the rejected code.
        code: String,
    },
    /// A primitive of a known code is not the kind this position calls for.
    #[error("unexpected cesr code {code:?}: expected {expected}")]
    UnexpectedCode {
        /// The code found.
        code: String,
        /// What was expected.
        expected: &'static str,
    },
    /// A character is not URL-safe base64.
    #[error("invalid base64 character in cesr {what} {text:?}")]
    InvalidBase64 {
        /// What was being decoded.
        what: &'static str,
        /// The rejected primitive.
        text: String,
    },
    /// The pad bits between code and raw bytes are not zero.
    #[error("non-zero pad bits in cesr primitive {text:?}")]
    NonZeroPad {
        /// The rejected primitive.
        text: String,
    },
    /// The primitive continues past its end (a `str` field holds more than one primitive).
    #[error("trailing characters after cesr primitive {text:?}")]
    Trailing {
        /// The rejected text.
        text: String,
    },
    /// An index or count does not fit its code.
    #[error("cesr {what} {value} does not fit code {code}")]
    OutOfRange {
        /// The index or count kind.
        what: &'static str,
        /// The rejected value.
        value: u64,
        /// The code it was to be written with.
        code: &'static str,
    },
}

/// Derivation codes of fixed-size primitives ("matter") this crate reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Code {
    /// `B`: Ed25519 public key of a non-transferable prefix.
    Ed25519N,
    /// `D`: Ed25519 public key, transferable.
    Ed25519,
    /// `E`: Blake3-256 digest.
    Blake3_256,
    /// `0A`: 16-byte number, keripy's `Seqner` (sequence numbers in attachments).
    Salt128,
    /// `0B`: Ed25519 signature.
    Ed25519Sig,
}

impl Code {
    /// The code text.
    pub fn as_str(self) -> &'static str {
        match self {
            Code::Ed25519N => "B",
            Code::Ed25519 => "D",
            Code::Blake3_256 => "E",
            Code::Salt128 => "0A",
            Code::Ed25519Sig => "0B",
        }
    }

    /// The length of the raw bytes.
    pub fn raw_size(self) -> usize {
        match self {
            Code::Ed25519N | Code::Ed25519 | Code::Blake3_256 => 32,
            Code::Salt128 => 16,
            Code::Ed25519Sig => 64,
        }
    }

    /// The length of the qb64 text.
    pub fn full_size(self) -> usize {
        (self.raw_size() + self.as_str().len()).div_ceil(3) * 4
    }

    fn from_text(text: &str) -> Result<Code, CesrError> {
        let unknown = || CesrError::UnknownCode {
            what: "primitive",
            code: text.chars().take(2).collect(),
        };
        match text.as_bytes().first() {
            None => Err(CesrError::Truncated {
                what: "primitive",
                needed: 1,
                have: 0,
            }),
            Some(b'B') => Ok(Code::Ed25519N),
            Some(b'D') => Ok(Code::Ed25519),
            Some(b'E') => Ok(Code::Blake3_256),
            Some(b'0') => match text.as_bytes().get(1) {
                None => Err(CesrError::Truncated {
                    what: "primitive",
                    needed: 2,
                    have: 1,
                }),
                Some(b'A') => Ok(Code::Salt128),
                Some(b'B') => Ok(Code::Ed25519Sig),
                Some(_) => Err(unknown()),
            },
            Some(_) => Err(unknown()),
        }
    }
}

/// A fixed-size primitive: a code and its raw bytes (length checked against the code).
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Matter {
    code: Code,
    raw: Vec<u8>,
}

impl Matter {
    /// A primitive from its code and raw bytes, or `None` if the length is wrong for the code.
    pub fn new(code: Code, raw: &[u8]) -> Option<Matter> {
        (raw.len() == code.raw_size()).then(|| Matter {
            code,
            raw: raw.to_vec(),
        })
    }

    /// The derivation code.
    pub fn code(&self) -> Code {
        self.code
    }

    /// The raw bytes.
    pub fn raw(&self) -> &[u8] {
        &self.raw
    }

    /// The qb64 text.
    pub fn qb64(&self) -> String {
        encode_with_code(self.code.as_str(), &self.raw)
    }

    /// Decodes one primitive from the start of `text`; returns it and the characters used.
    pub fn decode_prefix(text: &str) -> Result<(Matter, usize), CesrError> {
        let code = Code::from_text(text)?;
        let size = code.full_size();
        let full = take(text, size, "primitive")?;
        let raw = decode_after_code(full, code.as_str().len(), "primitive")?;
        Ok((Matter { code, raw }, size))
    }

    /// Decodes `text`, which must be exactly one primitive.
    pub fn from_qb64(text: &str) -> Result<Matter, CesrError> {
        let (matter, used) = Matter::decode_prefix(text)?;
        if used != text.len() {
            return Err(CesrError::Trailing {
                text: excerpt(text),
            });
        }
        Ok(matter)
    }
}

/// Base64 of `raw` behind `code`: the code takes the place of the leading pad characters.
fn encode_with_code(code: &str, raw: &[u8]) -> String {
    let pad = (3 - raw.len() % 3) % 3;
    let mut padded = vec![0u8; pad];
    padded.extend_from_slice(raw);
    let text = B64.encode(&padded);
    debug_assert_eq!(
        code.len() % 4,
        pad % 4,
        "code length must fill the pad characters"
    );
    let mut out = String::with_capacity(code.len() + text.len() - pad);
    out.push_str(code);
    out.push_str(&text[pad..]);
    out
}

/// The raw bytes of the full primitive `full` whose code takes `code_size` characters: the
/// code characters are read as zero bits, which must decode to zero pad bytes.
fn decode_after_code(
    full: &str,
    code_size: usize,
    what: &'static str,
) -> Result<Vec<u8>, CesrError> {
    let pad = code_size % 4;
    let zeroed: String = "A".repeat(pad) + &full[code_size..];
    let bytes = B64
        .decode(zeroed.as_bytes())
        .map_err(|_| CesrError::InvalidBase64 {
            what,
            text: excerpt(full),
        })?;
    if bytes[..pad].iter().any(|b| *b != 0) {
        return Err(CesrError::NonZeroPad {
            text: excerpt(full),
        });
    }
    Ok(bytes[pad..].to_vec())
}

fn short(what: &'static str, needed: usize, have: usize) -> CesrError {
    CesrError::Truncated { what, needed, have }
}

/// The first `size` characters of `text`, or a truncation error.
fn take<'a>(text: &'a str, size: usize, what: &'static str) -> Result<&'a str, CesrError> {
    if text.len() < size {
        return Err(CesrError::Truncated {
            what,
            needed: size,
            have: text.len(),
        });
    }
    text.get(..size).ok_or_else(|| CesrError::InvalidBase64 {
        what,
        text: excerpt(text),
    })
}

/// At most 100 characters of `text`, for error messages.
pub(crate) fn excerpt(text: &str) -> String {
    text.chars().take(100).collect()
}

/// `value` as `size` base64 digits, most significant first.
fn int_to_b64(value: u64, size: usize) -> String {
    (0..size)
        .rev()
        .map(|i| ALPHABET[((value >> (6 * i)) & 63) as usize] as char)
        .collect()
}

/// The value of base64 digits.
fn b64_to_int(text: &str, what: &'static str) -> Result<u64, CesrError> {
    text.bytes().try_fold(0u64, |acc, c| {
        let digit =
            ALPHABET
                .iter()
                .position(|a| *a == c)
                .ok_or_else(|| CesrError::InvalidBase64 {
                    what,
                    text: excerpt(text),
                })?;
        Ok((acc << 6) | digit as u64)
    })
}

/// An Ed25519 signature indexed into the signer's key lists.
///
/// `index` is the signing key's offset in the current key list; `ondex` is its offset in
/// the prior next-key digest list (the pre-rotation commitment it reveals), or `None` when
/// the signature counts for the current list only. Codes: `A` (both offsets equal, below
/// 64), `B` (current only, below 64), `2A` (both, below 4096), `2B` (current only, below
/// 4096): the ones keripy writes for Ed25519.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct IndexedSignature {
    /// Offset of the signing key in the current key list.
    pub index: u32,
    /// Offset of the key's digest in the prior next-key list, if the signature reveals one.
    pub ondex: Option<u32>,
    /// The 64-byte Ed25519 signature.
    pub signature: [u8; 64],
}

impl IndexedSignature {
    /// Largest index of the small codes `A`/`B`.
    const SMALL_MAX: u32 = 63;
    /// Largest index or ondex of the big codes `2A`/`2B`.
    pub const MAX_INDEX: u32 = 4095;

    /// The qb64 text, with the smallest code keripy would choose.
    pub fn qb64(&self) -> Result<String, CesrError> {
        for value in [Some(self.index), self.ondex].into_iter().flatten() {
            if value > Self::MAX_INDEX {
                return Err(CesrError::OutOfRange {
                    what: "signature index",
                    value: u64::from(value),
                    code: "2A",
                });
            }
        }
        let both = match self.ondex {
            Some(ondex) if ondex == self.index && self.index <= Self::SMALL_MAX => {
                format!("A{}", int_to_b64(u64::from(self.index), 1))
            }
            None if self.index <= Self::SMALL_MAX => {
                format!("B{}", int_to_b64(u64::from(self.index), 1))
            }
            Some(ondex) => format!(
                "2A{}{}",
                int_to_b64(u64::from(self.index), 2),
                int_to_b64(u64::from(ondex), 2)
            ),
            None => format!(
                "2B{}{}",
                int_to_b64(u64::from(self.index), 2),
                int_to_b64(0, 2)
            ),
        };
        let body = encode_with_code("AA", &self.signature);
        Ok(format!("{both}{}", &body[2..]))
    }

    /// Decodes one indexed signature from the start of `text`; returns it and its length.
    pub fn decode_prefix(text: &str) -> Result<(IndexedSignature, usize), CesrError> {
        let what = "indexed signature";
        let (code_size, index_size, ondex_size, both, full) = match text.as_bytes().first() {
            None => {
                return Err(short(what, 1, 0));
            }
            Some(b'A') => (2, 1, 0, true, 88),
            Some(b'B') => (2, 1, 0, false, 88),
            Some(b'2') => match text.as_bytes().get(1) {
                None => {
                    return Err(short(what, 2, 1));
                }
                Some(b'A') => (6, 2, 2, true, 92),
                Some(b'B') => (6, 2, 2, false, 92),
                Some(_) => {
                    return Err(CesrError::UnknownCode {
                        what,
                        code: text.chars().take(2).collect(),
                    });
                }
            },
            Some(_) => {
                return Err(CesrError::UnknownCode {
                    what,
                    code: text.chars().take(1).collect(),
                });
            }
        };
        let full_text = take(text, full, what)?;
        let hard = code_size - index_size - ondex_size;
        let index = b64_to_int(&full_text[hard..hard + index_size], what)?;
        let ondex_value = b64_to_int(&full_text[hard + index_size..code_size], what)?;
        let ondex = match (both, ondex_size) {
            (true, 0) => Some(index),
            (true, _) => Some(ondex_value),
            (false, _) if ondex_value != 0 => {
                return Err(CesrError::OutOfRange {
                    what: "current-only ondex",
                    value: ondex_value,
                    code: "2B",
                });
            }
            (false, _) => None,
        };
        // The signature body decodes like a two-character code over two zero pad bytes.
        let body = format!("AA{}", &full_text[code_size..]);
        let raw = decode_after_code(&body, 2, what)?;
        let signature: [u8; 64] = raw.try_into().map_err(|_| CesrError::InvalidBase64 {
            what,
            text: excerpt(full_text),
        })?;
        let index = u32::try_from(index).expect("at most 12 bits");
        let ondex = ondex.map(|o| u32::try_from(o).expect("at most 12 bits"));
        Ok((
            IndexedSignature {
                index,
                ondex,
                signature,
            },
            full,
        ))
    }
}

/// Counter (group framing) codes for attachments, as keripy's KERI 1.0 `CtrDex`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum CounterCode {
    /// `-A`: controller indexed signatures.
    ControllerIdxSigs,
    /// `-B`: witness indexed signatures.
    WitnessIdxSigs,
    /// `-C`: non-transferable receipt couples (prefix + signature).
    NonTransReceiptCouples,
    /// `-F`: transferable indexed signature groups (prefix + seqner + digest + `-A` group).
    TransIdxSigGroups,
    /// `-G`: seal source couples (seqner + digest of the delegating event).
    SealSourceCouples,
    /// `-V`: attached material quadlets (a group wrapping all attachments).
    AttachedMaterialQuadlets,
    /// `-0V`: big attached material quadlets.
    BigAttachedMaterialQuadlets,
}

impl CounterCode {
    /// The code text.
    pub fn as_str(self) -> &'static str {
        match self {
            CounterCode::ControllerIdxSigs => "-A",
            CounterCode::WitnessIdxSigs => "-B",
            CounterCode::NonTransReceiptCouples => "-C",
            CounterCode::TransIdxSigGroups => "-F",
            CounterCode::SealSourceCouples => "-G",
            CounterCode::AttachedMaterialQuadlets => "-V",
            CounterCode::BigAttachedMaterialQuadlets => "-0V",
        }
    }

    /// The count's number of base64 digits.
    fn count_size(self) -> usize {
        match self {
            CounterCode::BigAttachedMaterialQuadlets => 5,
            _ => 2,
        }
    }
}

/// A counter: a code and how many items (or quadlets) follow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Counter {
    /// The group kind.
    pub code: CounterCode,
    /// The number of items, or of quadlets for `-V`/`-0V`.
    pub count: u64,
}

impl Counter {
    /// The qb64 text, or an error if the count does not fit the code.
    pub fn qb64(&self) -> Result<String, CesrError> {
        let size = self.code.count_size();
        if self.count >= 1 << (6 * size) {
            return Err(CesrError::OutOfRange {
                what: "counter count",
                value: self.count,
                code: self.code.as_str(),
            });
        }
        Ok(format!(
            "{}{}",
            self.code.as_str(),
            int_to_b64(self.count, size)
        ))
    }

    /// Decodes one counter from the start of `text`; returns it and its length.
    pub fn decode_prefix(text: &str) -> Result<(Counter, usize), CesrError> {
        let what = "counter";
        let hard = take(text, 2, what)?;
        let code = match hard {
            "-A" => CounterCode::ControllerIdxSigs,
            "-B" => CounterCode::WitnessIdxSigs,
            "-C" => CounterCode::NonTransReceiptCouples,
            "-F" => CounterCode::TransIdxSigGroups,
            "-G" => CounterCode::SealSourceCouples,
            "-V" => CounterCode::AttachedMaterialQuadlets,
            "-0" if take(text, 3, what)? == "-0V" => CounterCode::BigAttachedMaterialQuadlets,
            _ => {
                return Err(CesrError::UnknownCode {
                    what,
                    code: text.chars().take(3).collect(),
                });
            }
        };
        let code_size = code.as_str().len();
        let full = code_size + code.count_size();
        let text = take(text, full, what)?;
        let count = b64_to_int(&text[code_size..], what)?;
        Ok((Counter { code, count }, full))
    }
}

/// The qb64 `Seqner` of a sequence number: code `0A` over 16 big-endian bytes.
pub fn seqner_qb64(sn: u64) -> String {
    encode_with_code(Code::Salt128.as_str(), &u128::from(sn).to_be_bytes())
}

/// The sequence number of a `Seqner`, if it fits 64 bits.
pub fn seqner_value(matter: &Matter) -> Result<u64, CesrError> {
    if matter.code != Code::Salt128 {
        return Err(CesrError::UnexpectedCode {
            code: matter.code.as_str().to_string(),
            expected: "sequence number (0A)",
        });
    }
    let bytes: [u8; 16] = matter.raw.as_slice().try_into().expect("checked length");
    u64::try_from(u128::from_be_bytes(bytes)).map_err(|_| CesrError::OutOfRange {
        what: "sequence number",
        value: u64::MAX,
        code: "0A",
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn digest_and_key_codes_take_one_pad_character() {
        let m = Matter::new(Code::Blake3_256, &[0xff; 32]).expect("32 bytes");
        let text = m.qb64();
        assert_eq!(text.len(), 44);
        assert!(text.starts_with('E'));
        assert_eq!(Matter::from_qb64(&text), Ok(m));
    }

    #[test]
    fn seqner_matches_keripy() {
        // keripy: Seqner(sn=0).qb64 == '0AAAAAAAAAAAAAAAAAAAAAAA'
        assert_eq!(seqner_qb64(0), "0AAAAAAAAAAAAAAAAAAAAAAA");
        assert_eq!(seqner_qb64(1), "0AAAAAAAAAAAAAAAAAAAAAAB");
    }

    #[test]
    fn counters_round_trip() {
        let c = Counter {
            code: CounterCode::ControllerIdxSigs,
            count: 3,
        };
        assert_eq!(c.qb64(), Ok("-AAD".to_string()));
        assert_eq!(Counter::decode_prefix("-AAD"), Ok((c, 4)));
        let big = Counter {
            code: CounterCode::BigAttachedMaterialQuadlets,
            count: 70000,
        };
        let text = big.qb64().expect("fits");
        assert_eq!(Counter::decode_prefix(&text), Ok((big, 8)));
    }

    #[test]
    fn nonzero_pad_bits_are_rejected() {
        // 'E' then a character whose top bits would carry a non-zero pad byte.
        let good = Matter::new(Code::Blake3_256, &[0; 32])
            .expect("size")
            .qb64();
        let bad = format!("E_{}", &good[2..]);
        assert!(matches!(
            Matter::from_qb64(&bad),
            Err(CesrError::NonZeroPad { .. })
        ));
    }
}
