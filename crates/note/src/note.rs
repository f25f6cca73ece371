//! C2SP signed notes (<https://c2sp.org/signed-note>): a text and the signature lines under it.
//!
//! A signed note is valid UTF-8 without ASCII control characters other than newline (0x0A). It
//! is the *text*, which ends with a newline, then one blank line, then one or more *signature
//! lines*:
//!
//! ```text
//! If you think cryptography is the answer to your problem,\n
//! then you don't know what your problem is.\n
//! \n
//! — PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n
//! ```
//!
//! A signature line is the bytes `E2 80 94` (U+2014 EM DASH), a space (0x20), the key name, a
//! space, and the standard padded base64 (RFC 4648 section 4) of `key ID (4 bytes) || signature`,
//! then a newline. Key names are non-empty and contain neither Unicode white space nor `+`.
//!
//! The text may itself contain blank lines: it is separated from the signatures by the *last*
//! blank line of the note, so every text ending in a newline can be signed and recovered
//! exactly. The signed bytes are the text including its final newline, without the separating
//! blank line.
//!
//! Parsing is strict: a note over [`MAX_NOTE_SIZE`] bytes or with more than [`MAX_SIGNATURES`]
//! signature lines is rejected before any signature work, base64 must be canonical, and every
//! malformed input gets its own [`NoteError`] variant. Parsing checks syntax only; which
//! signatures are trusted is decided by [`NoteVerifiers`](crate::NoteVerifiers).

use std::fmt::Write as _;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::key::KeyRef;

/// The largest encoded note, in bytes, that is parsed or produced: 1 MiB.
///
/// This bounds the work an untrusted note can cause. It leaves room for far more than
/// [`MAX_SIGNATURES`] post-quantum signatures (about 5 kB each) over a checkpoint.
pub const MAX_NOTE_SIZE: usize = 1 << 20;

/// The most signature lines a note may carry.
///
/// The spec asks verifiers to accept at least 16; 100 is the limit of Go's
/// `golang.org/x/mod/sumdb/note`, so every note Go accepts is accepted here.
pub const MAX_SIGNATURES: usize = 100;

/// The start of every signature line: U+2014 EM DASH and a space (bytes `E2 80 94 20`).
pub const SIGNATURE_LINE_PREFIX: &str = "\u{2014} ";

/// The length of the key ID that starts every signature.
pub const KEY_ID_SIZE: usize = 4;

/// The longest offending value quoted in full in an error message.
const EXCERPT_CHARS: usize = 64;

/// A reason for rejecting a signed note, a note text, a key name or a signature line.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum NoteError {
    /// The note or its text is larger than [`MAX_NOTE_SIZE`].
    #[error("note is {size} bytes, more than the maximum of {max}")]
    TooLarge {
        /// The size of the rejected note in bytes.
        size: usize,
        /// The maximum, [`MAX_NOTE_SIZE`].
        max: usize,
    },
    /// The encoded note is not valid UTF-8.
    #[error("note is not valid utf-8 at byte offset {offset}")]
    InvalidUtf8 {
        /// The offset of the first byte that is not valid UTF-8.
        offset: usize,
    },
    /// The note contains an ASCII control character other than newline.
    #[error("note has control character {byte:#04x} at byte offset {offset}")]
    ControlCharacter {
        /// The offset of the control character.
        offset: usize,
        /// The control character.
        byte: u8,
    },
    /// The encoded note does not end with a newline.
    #[error("note does not end with a newline")]
    MissingFinalNewline,
    /// The note text is empty or does not end with a newline.
    #[error("note text {text:?} does not end with a newline")]
    TextMissingNewline {
        /// The start of the rejected text.
        text: String,
    },
    /// The encoded note has no blank line between its text and its signatures.
    #[error("note has no blank line before its signatures")]
    MissingBlankLine,
    /// The note has no signature line.
    #[error("note has no signatures")]
    NoSignatures,
    /// The note has more than [`MAX_SIGNATURES`] signature lines.
    #[error("note has {count} signatures, more than the maximum of {max}")]
    TooManySignatures {
        /// The number of signature lines.
        count: usize,
        /// The maximum, [`MAX_SIGNATURES`].
        max: usize,
    },
    /// A line after the blank line does not start with an em dash and a space.
    #[error("signature line {line:?} does not start with an em dash and a space")]
    MalformedSignatureLine {
        /// The start of the rejected line.
        line: String,
    },
    /// A signature line has no space between the key name and the signature.
    #[error("signature line {line:?} has no space between key name and signature")]
    MissingSignature {
        /// The start of the rejected line.
        line: String,
    },
    /// A key name is empty or contains white space, `+` or a control character.
    #[error("invalid key name {name:?}: {reason}")]
    InvalidKeyName {
        /// The start of the rejected name.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A signature is not canonical padded standard base64.
    #[error("signature {value:?} from key name {name:?} is not valid base64")]
    InvalidSignatureBase64 {
        /// The key name of the signature line.
        name: String,
        /// The start of the rejected base64 text.
        value: String,
    },
    /// A signature decodes to fewer than the 4-byte key ID and one byte of signature.
    #[error(
        "signature from key name {name:?} is {len} bytes, too short for a key id and a signature"
    )]
    SignatureTooShort {
        /// The key name of the signature line.
        name: String,
        /// The decoded length, key ID included.
        len: usize,
    },
}

/// One signature of a note: who signed (key name and key ID) and the signature bytes.
///
/// The pair of name and key ID identifies the key and its algorithm; the signature bytes are
/// opaque here and interpreted by the verifier of that algorithm.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct NoteSignature {
    /// The key name, e.g. `example.com/log`.
    pub name: String,
    /// The key ID: the first four bytes of the base64 payload, in the order they appear.
    pub key_id: [u8; 4],
    /// The signature proper, without the key ID.
    pub signature: Vec<u8>,
}

impl NoteSignature {
    /// Parses one signature line, without its final newline: `— <name> <base64>`.
    pub fn parse_line(line: &str) -> Result<Self, NoteError> {
        let rest = line.strip_prefix(SIGNATURE_LINE_PREFIX).ok_or_else(|| {
            NoteError::MalformedSignatureLine {
                line: excerpt(line),
            }
        })?;
        let (name, encoded) = rest
            .split_once(' ')
            .ok_or_else(|| NoteError::MissingSignature {
                line: excerpt(line),
            })?;
        check_key_name(name)?;
        let invalid_base64 = || NoteError::InvalidSignatureBase64 {
            name: excerpt(name),
            value: excerpt(encoded),
        };
        if encoded.is_empty() {
            return Err(invalid_base64());
        }
        let raw = BASE64.decode(encoded).map_err(|_| invalid_base64())?;
        if raw.len() <= KEY_ID_SIZE {
            return Err(NoteError::SignatureTooShort {
                name: excerpt(name),
                len: raw.len(),
            });
        }
        let (key_id, signature) = raw.split_at(KEY_ID_SIZE);
        Ok(Self {
            name: name.to_owned(),
            key_id: key_id.try_into().expect("split_at(4) yields 4 bytes"),
            signature: signature.to_vec(),
        })
    }

    /// Formats the signature line, final newline included: `— <name> <base64>\n`.
    ///
    /// Fails if the name is not a valid key name or the signature is empty, so that every line
    /// produced here parses back with [`NoteSignature::parse_line`].
    pub fn to_line(&self) -> Result<String, NoteError> {
        check_key_name(&self.name)?;
        if self.signature.is_empty() {
            return Err(NoteError::SignatureTooShort {
                name: excerpt(&self.name),
                len: KEY_ID_SIZE,
            });
        }
        let mut raw = Vec::with_capacity(KEY_ID_SIZE + self.signature.len());
        raw.extend_from_slice(&self.key_id);
        raw.extend_from_slice(&self.signature);
        let mut line = String::with_capacity(self.name.len() + raw.len() * 4 / 3 + 10);
        line.push_str(SIGNATURE_LINE_PREFIX);
        line.push_str(&self.name);
        line.push(' ');
        BASE64.encode_string(&raw, &mut line);
        line.push('\n');
        Ok(line)
    }

    /// The key this signature claims to be from: its name and key ID.
    pub fn key(&self) -> KeyRef {
        KeyRef {
            name: self.name.clone(),
            key_id: self.key_id,
        }
    }
}

/// A note: a text and the signatures over it, verified or not.
///
/// [`Note::parse`] only checks syntax; use [`NoteVerifiers`](crate::NoteVerifiers) to decide
/// which signatures are from trusted keys before acting on the text.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Note {
    /// The signed text, including its final newline.
    pub text: String,
    /// The signatures, in the order of their lines.
    pub signatures: Vec<NoteSignature>,
}

impl Note {
    /// Makes an unsigned note from a text, checking that the text can be signed.
    ///
    /// The text must end with a newline, contain no control character other than newline and
    /// be at most [`MAX_NOTE_SIZE`] bytes.
    pub fn new(text: impl Into<String>) -> Result<Self, NoteError> {
        let text = text.into();
        validate_text(&text)?;
        Ok(Self {
            text,
            signatures: Vec::new(),
        })
    }

    /// Parses an encoded signed note, checking its syntax but no signature.
    pub fn parse(encoded: &[u8]) -> Result<Self, NoteError> {
        if encoded.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size: encoded.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        let encoded = std::str::from_utf8(encoded).map_err(|e| NoteError::InvalidUtf8 {
            offset: e.valid_up_to(),
        })?;
        check_control_characters(encoded)?;
        if !encoded.ends_with('\n') {
            return Err(NoteError::MissingFinalNewline);
        }
        let split = encoded.rfind("\n\n").ok_or(NoteError::MissingBlankLine)?;
        let (text, block) = (&encoded[..=split], &encoded[split + 2..]);
        if block.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        // `block` ends with a newline (the note does), so each line is newline-terminated.
        let count = block.bytes().filter(|&b| b == b'\n').count();
        if count > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                count,
                max: MAX_SIGNATURES,
            });
        }
        let signatures = block
            .split_terminator('\n')
            .map(NoteSignature::parse_line)
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            text: text.to_owned(),
            signatures,
        })
    }

    /// Encodes the note: the text, a blank line, and one line per signature.
    ///
    /// Fails unless the result is a note [`Note::parse`] accepts and decodes back to `self`:
    /// the text must be valid, and there must be between one and [`MAX_SIGNATURES`] valid
    /// signatures.
    pub fn format(&self) -> Result<String, NoteError> {
        validate_text(&self.text)?;
        if self.signatures.is_empty() {
            return Err(NoteError::NoSignatures);
        }
        if self.signatures.len() > MAX_SIGNATURES {
            return Err(NoteError::TooManySignatures {
                count: self.signatures.len(),
                max: MAX_SIGNATURES,
            });
        }
        let mut out = String::with_capacity(self.text.len() + 1 + self.signatures.len() * 110);
        out.push_str(&self.text);
        out.push('\n');
        for signature in &self.signatures {
            out.push_str(&signature.to_line()?);
        }
        if out.len() > MAX_NOTE_SIZE {
            return Err(NoteError::TooLarge {
                size: out.len(),
                max: MAX_NOTE_SIZE,
            });
        }
        Ok(out)
    }

    /// Adds a signature, replacing any earlier one with the same key name and key ID.
    ///
    /// Replacing rather than appending makes re-signing idempotent: a note never carries two
    /// signatures from one key, which [`NoteVerifiers`](crate::NoteVerifiers) would reject.
    pub fn add_signature(&mut self, signature: NoteSignature) {
        match self
            .signatures
            .iter_mut()
            .find(|s| s.name == signature.name && s.key_id == signature.key_id)
        {
            Some(existing) => *existing = signature,
            None => self.signatures.push(signature),
        }
    }
}

impl FromStr for Note {
    type Err = NoteError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s.as_bytes())
    }
}

/// Checks that a text can be the text of a note: it ends with a newline, has no control
/// character other than newline, and is at most [`MAX_NOTE_SIZE`] bytes.
///
/// Blank lines inside the text are allowed, as the spec allows them.
pub fn validate_text(text: &str) -> Result<(), NoteError> {
    if text.len() > MAX_NOTE_SIZE {
        return Err(NoteError::TooLarge {
            size: text.len(),
            max: MAX_NOTE_SIZE,
        });
    }
    if !text.ends_with('\n') {
        return Err(NoteError::TextMissingNewline {
            text: excerpt(text),
        });
    }
    check_control_characters(text)
}

/// Checks that a key name is valid: non-empty, without Unicode white space, `+` or control
/// characters.
///
/// White space is the Unicode `White_Space` property, as in Go's `unicode.IsSpace`.
pub fn validate_key_name(name: &str) -> Result<(), NoteError> {
    check_key_name(name)
}

fn check_key_name(name: &str) -> Result<(), NoteError> {
    match key_name_defect(name) {
        Some(reason) => Err(NoteError::InvalidKeyName {
            name: excerpt(name),
            reason,
        }),
        None => Ok(()),
    }
}

/// What is wrong with a key name, if anything.
pub(crate) fn key_name_defect(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("it is empty")
    } else if name.contains('+') {
        Some("it contains '+'")
    } else if name.chars().any(char::is_whitespace) {
        Some("it contains white space")
    } else if name.chars().any(char::is_control) {
        Some("it contains a control character")
    } else {
        None
    }
}

fn check_control_characters(s: &str) -> Result<(), NoteError> {
    match s.bytes().position(|b| b < 0x20 && b != b'\n') {
        Some(offset) => Err(NoteError::ControlCharacter {
            offset,
            byte: s.as_bytes()[offset],
        }),
        None => Ok(()),
    }
}

/// The first [`EXCERPT_CHARS`] characters of an offending value, for error messages: an
/// untrusted line can be a megabyte long.
pub(crate) fn excerpt(s: &str) -> String {
    match s.char_indices().nth(EXCERPT_CHARS) {
        None => s.to_owned(),
        Some((end, _)) => {
            let mut out = String::with_capacity(end + 3);
            out.push_str(&s[..end]);
            out.push('…');
            out
        }
    }
}

/// Lowercase hex of a key ID, as in verifier keys and Go's error messages.
pub(crate) fn key_id_hex(key_id: &[u8; 4]) -> String {
    let mut out = String::with_capacity(8);
    for byte in key_id {
        write!(out, "{byte:02x}").expect("writing to a String cannot fail");
    }
    out
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    // The signed note of Go's golang.org/x/mod/sumdb/note documentation and note_test.go.
    pub(crate) const PETER_TEXT: &str = "If you think cryptography is the answer to your problem,\n\
                                         then you don't know what your problem is.\n";
    pub(crate) const PETER_SIG: &str = "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngotpRZb6KE6RyyBwJnAM=\n";

    fn peter_note() -> String {
        format!("{PETER_TEXT}\n{PETER_SIG}")
    }

    #[test]
    fn parses_go_note() {
        let note = Note::parse(peter_note().as_bytes()).expect("valid note");
        assert_eq!(note.text, PETER_TEXT);
        assert_eq!(note.signatures.len(), 1);
        let sig = &note.signatures[0];
        assert_eq!(sig.name, "PeterNeumann");
        assert_eq!(sig.key_id, [0xc7, 0x4f, 0x20, 0xa3]);
        assert_eq!(sig.signature.len(), 64);
        assert_eq!(note.format().expect("formats"), peter_note());
    }

    #[test]
    fn parses_spec_example_with_blank_lines_in_text() {
        // The example at the top of c2sp.org/signed-note: the text has an empty line.
        let encoded = "Ognuno sta solo sul cuor della terra\n\
                       trafitto da un raggio di sole:\n\
                       \n\
                       ed è subito sera.\n\
                       \n\
                       — quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMouFSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n";
        let note: Note = encoded.parse().expect("valid note");
        assert_eq!(
            note.text,
            "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\ned è subito sera.\n"
        );
        assert_eq!(note.signatures[0].name, "quasimodo.example/salvatore");
        assert_eq!(note.signatures[0].key_id, [0x36, 0x7b, 0xa0, 0x4b]);
        assert_eq!(note.format().expect("formats"), encoded);
    }

    #[test]
    fn text_may_end_with_blank_line() {
        let mut note = Note::new("a\n\n").expect("valid text");
        note.add_signature(NoteSignature {
            name: "k".into(),
            key_id: [1, 2, 3, 4],
            signature: vec![5],
        });
        let encoded = note.format().expect("formats");
        assert_eq!(encoded, "a\n\n\n— k AQIDBAU=\n");
        assert_eq!(Note::parse(encoded.as_bytes()), Ok(note));
    }

    #[test]
    fn keeps_repeated_and_unknown_lines() {
        let encoded = format!("{PETER_TEXT}\n{PETER_SIG}{PETER_SIG}");
        let note = Note::parse(encoded.as_bytes()).expect("valid syntax");
        assert_eq!(note.signatures.len(), 2);
    }

    #[test]
    fn rejects_malformed_notes() {
        let sig_b64 = PETER_SIG
            .strip_prefix("— PeterNeumann ")
            .and_then(|s| s.strip_suffix('\n'))
            .expect("fixture");
        let cases: Vec<(String, NoteError)> = vec![
            (PETER_TEXT.to_owned(), NoteError::MissingBlankLine),
            (format!("{PETER_TEXT}\n"), NoteError::NoSignatures),
            (
                format!("{PETER_TEXT}\n{}", PETER_SIG.trim_end_matches('\n')),
                NoteError::MissingFinalNewline,
            ),
            (
                format!("\x01{PETER_TEXT}\n{PETER_SIG}"),
                NoteError::ControlCharacter { offset: 0, byte: 1 },
            ),
            (
                format!("{PETER_TEXT}\n{PETER_SIG}").replace("problem,\n", "problem,\r\n"),
                NoteError::ControlCharacter {
                    offset: 56,
                    byte: b'\r',
                },
            ),
            (
                format!("{PETER_TEXT}\n{PETER_SIG}Unexpected line.\n"),
                NoteError::MalformedSignatureLine {
                    line: "Unexpected line.".into(),
                },
            ),
            (
                format!("{PETER_TEXT}\n- PeterNeumann {sig_b64}\n"),
                NoteError::MalformedSignatureLine {
                    line: excerpt(&format!("- PeterNeumann {sig_b64}")),
                },
            ),
            (
                format!("{PETER_TEXT}\n— PeterNeumann\n"),
                NoteError::MissingSignature {
                    line: "— PeterNeumann".into(),
                },
            ),
            (
                format!("{PETER_TEXT}\n— Peter+Neumann {sig_b64}\n"),
                NoteError::InvalidKeyName {
                    name: "Peter+Neumann".into(),
                    reason: "it contains '+'",
                },
            ),
            (
                format!("{PETER_TEXT}\n—  {sig_b64}\n"),
                NoteError::InvalidKeyName {
                    name: String::new(),
                    reason: "it is empty",
                },
            ),
            (
                format!("{PETER_TEXT}\n— Peter\u{3000}Neumann {sig_b64}\n"),
                NoteError::InvalidKeyName {
                    name: "Peter\u{3000}Neumann".into(),
                    reason: "it contains white space",
                },
            ),
            (
                // Go's "Bad Name" case: the second word is not base64.
                format!("{PETER_TEXT}\n— Bad Name {sig_b64}\n"),
                NoteError::InvalidSignatureBase64 {
                    name: "Bad".into(),
                    value: excerpt(&format!("Name {sig_b64}")),
                },
            ),
            (
                format!("{PETER_TEXT}\n— PeterNeumann \n"),
                NoteError::InvalidSignatureBase64 {
                    name: "PeterNeumann".into(),
                    value: String::new(),
                },
            ),
            (
                format!(
                    "{PETER_TEXT}\n— PeterNeumann {}\n",
                    sig_b64.trim_end_matches('=')
                ),
                NoteError::InvalidSignatureBase64 {
                    name: "PeterNeumann".into(),
                    value: excerpt(sig_b64.trim_end_matches('=')),
                },
            ),
            (
                // Non-canonical: the last character carries non-zero padding bits.
                format!("{PETER_TEXT}\n— k AQIDBAV=\n"),
                NoteError::InvalidSignatureBase64 {
                    name: "k".into(),
                    value: "AQIDBAV=".into(),
                },
            ),
            (
                format!("{PETER_TEXT}\n— k AQIDBA==\n"),
                NoteError::SignatureTooShort {
                    name: "k".into(),
                    len: 4,
                },
            ),
        ];
        for (encoded, want) in cases {
            assert_eq!(Note::parse(encoded.as_bytes()), Err(want), "{encoded:?}");
        }
    }

    #[test]
    fn rejects_invalid_utf8() {
        let mut encoded = peter_note().into_bytes();
        encoded.insert(3, 0xff);
        assert_eq!(
            Note::parse(&encoded),
            Err(NoteError::InvalidUtf8 { offset: 3 })
        );
    }

    #[test]
    fn rejects_too_many_signatures() {
        let ok = format!("{PETER_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES));
        assert!(Note::parse(ok.as_bytes()).is_ok());
        let encoded = format!("{PETER_TEXT}\n{}", PETER_SIG.repeat(MAX_SIGNATURES + 1));
        assert_eq!(
            Note::parse(encoded.as_bytes()),
            Err(NoteError::TooManySignatures {
                count: MAX_SIGNATURES + 1,
                max: MAX_SIGNATURES
            })
        );
        let mut note = Note::parse(ok.as_bytes()).expect("valid");
        note.signatures.push(note.signatures[0].clone());
        assert_eq!(
            note.format(),
            Err(NoteError::TooManySignatures {
                count: MAX_SIGNATURES + 1,
                max: MAX_SIGNATURES
            })
        );
    }

    #[test]
    fn rejects_oversized_notes() {
        let line = "x".repeat(1023) + "\n";
        let text = line.repeat(1024);
        assert_eq!(text.len(), MAX_NOTE_SIZE);
        assert!(Note::new(text.clone()).is_ok());
        let encoded = format!("{text}\n{PETER_SIG}");
        assert_eq!(
            Note::parse(encoded.as_bytes()),
            Err(NoteError::TooLarge {
                size: encoded.len(),
                max: MAX_NOTE_SIZE
            })
        );
        let mut note = Note::new(text).expect("valid text");
        note.add_signature(NoteSignature::parse_line(PETER_SIG.trim_end()).expect("valid line"));
        assert_eq!(
            note.format(),
            Err(NoteError::TooLarge {
                size: encoded.len(),
                max: MAX_NOTE_SIZE
            })
        );
        let too_big = "x".repeat(MAX_NOTE_SIZE) + "\n";
        assert_eq!(
            Note::new(too_big),
            Err(NoteError::TooLarge {
                size: MAX_NOTE_SIZE + 1,
                max: MAX_NOTE_SIZE
            })
        );
    }

    #[test]
    fn rejects_invalid_texts() {
        assert_eq!(
            Note::new(""),
            Err(NoteError::TextMissingNewline {
                text: String::new()
            })
        );
        assert_eq!(
            Note::new("abc"),
            Err(NoteError::TextMissingNewline { text: "abc".into() })
        );
        assert_eq!(
            Note::new("a\tb\n"),
            Err(NoteError::ControlCharacter {
                offset: 1,
                byte: b'\t'
            })
        );
        // DEL (0x7f) is not below U+0020 and is allowed.
        assert!(Note::new("a\x7fb\n").is_ok());
        let unsigned = Note::new("abc\n").expect("valid text");
        assert_eq!(unsigned.format(), Err(NoteError::NoSignatures));
    }

    #[test]
    fn formatting_rejects_bad_signatures() {
        let mut note = Note::new("abc\n").expect("valid text");
        note.signatures.push(NoteSignature {
            name: "bad name".into(),
            key_id: [0; 4],
            signature: vec![1],
        });
        assert_eq!(
            note.format(),
            Err(NoteError::InvalidKeyName {
                name: "bad name".into(),
                reason: "it contains white space"
            })
        );
        note.signatures[0].name = "a\u{7}b".into();
        assert_eq!(
            note.format(),
            Err(NoteError::InvalidKeyName {
                name: "a\u{7}b".into(),
                reason: "it contains a control character"
            })
        );
        note.signatures[0].name = "good".into();
        note.signatures[0].signature.clear();
        assert_eq!(
            note.format(),
            Err(NoteError::SignatureTooShort {
                name: "good".into(),
                len: 4
            })
        );
    }

    #[test]
    fn add_signature_replaces_same_key() {
        let mut note = Note::new("abc\n").expect("valid text");
        let first = NoteSignature {
            name: "k".into(),
            key_id: [1; 4],
            signature: vec![1],
        };
        let other_id = NoteSignature {
            key_id: [2; 4],
            ..first.clone()
        };
        let replacement = NoteSignature {
            signature: vec![9],
            ..first.clone()
        };
        note.add_signature(first);
        note.add_signature(other_id.clone());
        note.add_signature(replacement.clone());
        assert_eq!(note.signatures, vec![replacement, other_id]);
    }

    #[test]
    fn error_messages_quote_an_excerpt() {
        let long = "y".repeat(1000);
        let err = Note::parse(format!("a\n\n{long}\n").as_bytes()).expect_err("malformed");
        let message = err.to_string();
        assert!(message.len() < 200, "{message}");
        assert!(message.starts_with("signature line \"yyyy"), "{message}");
        assert!(!message.ends_with('.'));
    }

    #[test]
    fn key_id_hex_is_lowercase_and_padded() {
        assert_eq!(key_id_hex(&[0xc7, 0x4f, 0x20, 0xa3]), "c74f20a3");
        assert_eq!(key_id_hex(&[0, 1, 0x0a, 0xff]), "00010aff");
    }
}
