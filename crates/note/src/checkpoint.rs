//! Transparency log checkpoints (<https://c2sp.org/tlog-checkpoint>): the note text that
//! commits a log to its Merkle tree head.
//!
//! The text is at least three non-empty lines, each ending with a newline (0x0A):
//!
//! ```text
//! example.com/behind-the-sofa\n                     origin
//! 20852163\n                                        tree size, decimal
//! CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n    root hash, base64 of 32 bytes
//! [extension line\n]...                             optional, opaque, non-empty
//! ```
//!
//! - The origin identifies the log: any non-empty line (a schema-less URL is recommended but
//!   not required, and not assumed).
//! - The tree size is ASCII decimal without leading zeros (`0` for the empty tree), here any
//!   `u64`.
//! - The root hash is the standard padded base64 (RFC 4648 section 4) of the 32-byte RFC 6962
//!   Merkle tree hash at that size.
//!
//! [`Checkpoint::parse`] accepts exactly the texts [`Checkpoint::format`] produces, so a
//! parsed checkpoint formats back to the very bytes that were signed.

use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;

use crate::note::{self, NoteError, excerpt};

/// The length of a root hash: SHA-256.
pub const ROOT_HASH_SIZE: usize = 32;

/// A reason for rejecting a checkpoint text or checkpoint fields.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum CheckpointError {
    /// The text is not a valid note text (final newline, control characters, size).
    #[error("checkpoint is not a valid note text: {0}")]
    Text(#[from] NoteError),
    /// The text has fewer than three lines.
    #[error("checkpoint has no {line} line")]
    MissingLine {
        /// The first missing line: "tree size" or "root hash".
        line: &'static str,
    },
    /// The origin line is empty.
    #[error("checkpoint origin is empty")]
    EmptyOrigin,
    /// The tree size is not ASCII decimal digits, or is 2^64 or more.
    #[error("tree size {value:?} is not a decimal number below 2^64")]
    InvalidSize {
        /// The start of the rejected size line.
        value: String,
    },
    /// The tree size has a leading zero.
    #[error("tree size {value:?} has a leading zero")]
    NonCanonicalSize {
        /// The start of the rejected size line.
        value: String,
    },
    /// The root hash is not canonical padded base64 of 32 bytes.
    #[error("root hash {value:?} is not the base64 of 32 bytes")]
    InvalidRootHash {
        /// The start of the rejected root hash line.
        value: String,
    },
    /// An extension line is empty.
    #[error("checkpoint extension line {index} is empty")]
    EmptyExtension {
        /// The index of the empty extension, from 0.
        index: usize,
    },
    /// An origin or extension to format contains a newline.
    #[error("checkpoint {field} {value:?} contains a newline")]
    NewlineInField {
        /// "origin" or "extension".
        field: &'static str,
        /// The start of the rejected value.
        value: String,
    },
}

/// A checkpoint: a log's origin, tree size and root hash, and optional extension lines.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Checkpoint {
    /// The log's origin line, without its newline.
    pub origin: String,
    /// The number of leaves of the tree.
    pub size: u64,
    /// The RFC 6962 root hash of the tree at `size`.
    pub root: [u8; ROOT_HASH_SIZE],
    /// The extension lines, without their newlines. Not recommended: monitors cannot audit
    /// them, and cosigners make no statement about them.
    pub extensions: Vec<String>,
}

impl Checkpoint {
    /// Makes a checkpoint without extension lines, checking the origin.
    pub fn new(
        origin: impl Into<String>,
        size: u64,
        root: [u8; ROOT_HASH_SIZE],
    ) -> Result<Self, CheckpointError> {
        let checkpoint = Self {
            origin: origin.into(),
            size,
            root,
            extensions: Vec::new(),
        };
        checkpoint.format()?;
        Ok(checkpoint)
    }

    /// Parses a checkpoint note text (the text of a note, not the whole signed note).
    pub fn parse(text: &str) -> Result<Self, CheckpointError> {
        note::validate_text(text)?;
        // `validate_text` guarantees the final newline.
        let mut lines = text[..text.len() - 1].split('\n');
        let origin = lines.next().unwrap_or_default();
        if origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        let size = lines
            .next()
            .ok_or(CheckpointError::MissingLine { line: "tree size" })?;
        let root = lines
            .next()
            .ok_or(CheckpointError::MissingLine { line: "root hash" })?;
        let extensions = lines
            .enumerate()
            .map(|(index, line)| {
                if line.is_empty() {
                    Err(CheckpointError::EmptyExtension { index })
                } else {
                    Ok(line.to_owned())
                }
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            origin: origin.to_owned(),
            size: parse_size(size)?,
            root: parse_root(root)?,
            extensions,
        })
    }

    /// Formats the checkpoint note text: origin, size, root and extensions, one per line.
    ///
    /// Fails unless [`Checkpoint::parse`] gives `self` back: the origin and extensions must be
    /// non-empty single lines without control characters.
    pub fn format(&self) -> Result<String, CheckpointError> {
        check_line("origin", &self.origin)?;
        if self.origin.is_empty() {
            return Err(CheckpointError::EmptyOrigin);
        }
        for (index, extension) in self.extensions.iter().enumerate() {
            check_line("extension", extension)?;
            if extension.is_empty() {
                return Err(CheckpointError::EmptyExtension { index });
            }
        }
        let mut text = format!(
            "{}\n{}\n{}\n",
            self.origin,
            self.size,
            BASE64.encode(self.root)
        );
        for extension in &self.extensions {
            text.push_str(extension);
            text.push('\n');
        }
        note::validate_text(&text)?;
        Ok(text)
    }
}

impl FromStr for Checkpoint {
    type Err = CheckpointError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::parse(text)
    }
}

fn check_line(field: &'static str, value: &str) -> Result<(), CheckpointError> {
    if value.contains('\n') {
        return Err(CheckpointError::NewlineInField {
            field,
            value: excerpt(value),
        });
    }
    Ok(())
}

fn parse_size(value: &str) -> Result<u64, CheckpointError> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CheckpointError::InvalidSize {
            value: excerpt(value),
        });
    }
    if value.len() > 1 && value.starts_with('0') {
        return Err(CheckpointError::NonCanonicalSize {
            value: excerpt(value),
        });
    }
    value.parse().map_err(|_| CheckpointError::InvalidSize {
        value: excerpt(value),
    })
}

fn parse_root(value: &str) -> Result<[u8; ROOT_HASH_SIZE], CheckpointError> {
    let invalid = || CheckpointError::InvalidRootHash {
        value: excerpt(value),
    };
    // 44 characters encode exactly 32 bytes; checking first avoids decoding a huge line.
    if value.len() != 44 {
        return Err(invalid());
    }
    let mut root = [0; ROOT_HASH_SIZE];
    match BASE64.decode_slice(value, &mut root) {
        Ok(ROOT_HASH_SIZE) => Ok(root),
        _ => Err(invalid()),
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use proptest::prelude::*;

    // The example of c2sp.org/tlog-checkpoint and c2sp.org/tlog-cosignature.
    pub(crate) const SPEC_TEXT: &str =
        "example.com/behind-the-sofa\n20852163\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n";

    fn root_from(value: &str) -> [u8; 32] {
        BASE64
            .decode(value)
            .expect("fixture")
            .try_into()
            .expect("32 bytes")
    }

    #[test]
    fn parses_spec_example() {
        let checkpoint = Checkpoint::parse(SPEC_TEXT).expect("valid");
        assert_eq!(checkpoint.origin, "example.com/behind-the-sofa");
        assert_eq!(checkpoint.size, 20852163);
        assert_eq!(
            checkpoint.root,
            root_from("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
        );
        assert!(checkpoint.extensions.is_empty());
        assert_eq!(checkpoint.format().expect("formats"), SPEC_TEXT);
        assert_eq!(SPEC_TEXT.parse(), Ok(checkpoint));
    }

    #[test]
    fn parses_the_signed_spec_example() {
        let encoded = format!(
            "{SPEC_TEXT}\n— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhcyv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
        );
        let note = crate::Note::parse(encoded.as_bytes()).expect("valid note");
        let checkpoint = Checkpoint::parse(&note.text).expect("valid checkpoint");
        assert_eq!(checkpoint.size, 20852163);
        assert_eq!(note.signatures[0].name, checkpoint.origin);
    }

    #[test]
    fn keeps_extensions_and_edge_sizes() {
        let root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
        for (text, size, extensions) in [
            (format!("o\n0\n{root}\n"), 0, vec![]),
            (
                format!("o\n18446744073709551615\n{root}\nx\ny z\n"),
                u64::MAX,
                vec!["x", "y z"],
            ),
            // Spaces and '+' in the origin are allowed: the spec only recommends against them.
            (format!("a b+c\n1\n{root}\n"), 1, vec![]),
        ] {
            let checkpoint = Checkpoint::parse(&text).expect(&text);
            assert_eq!(checkpoint.size, size);
            assert_eq!(checkpoint.extensions, extensions);
            assert_eq!(checkpoint.format().expect("formats"), text);
        }
    }

    #[test]
    fn rejects_malformed_checkpoints() {
        let root = "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=";
        let cases: Vec<(String, CheckpointError)> = vec![
            (
                format!("o\n1\n{root}"),
                CheckpointError::Text(NoteError::TextMissingNewline {
                    text: excerpt(&format!("o\n1\n{root}")),
                }),
            ),
            (
                format!("o\t\n1\n{root}\n"),
                CheckpointError::Text(NoteError::ControlCharacter {
                    offset: 1,
                    byte: b'\t',
                }),
            ),
            (
                "o\n".into(),
                CheckpointError::MissingLine { line: "tree size" },
            ),
            (
                "o\n1\n".into(),
                CheckpointError::MissingLine { line: "root hash" },
            ),
            (format!("\n1\n{root}\n"), CheckpointError::EmptyOrigin),
            (
                format!("o\n007\n{root}\n"),
                CheckpointError::NonCanonicalSize {
                    value: "007".into(),
                },
            ),
            (
                format!("o\n00\n{root}\n"),
                CheckpointError::NonCanonicalSize { value: "00".into() },
            ),
            (
                format!("o\n\n{root}\n"),
                CheckpointError::InvalidSize {
                    value: String::new(),
                },
            ),
            (
                format!("o\n+1\n{root}\n"),
                CheckpointError::InvalidSize { value: "+1".into() },
            ),
            (
                format!("o\n-1\n{root}\n"),
                CheckpointError::InvalidSize { value: "-1".into() },
            ),
            (
                format!("o\n 1\n{root}\n"),
                CheckpointError::InvalidSize { value: " 1".into() },
            ),
            (
                format!("o\n1a\n{root}\n"),
                CheckpointError::InvalidSize { value: "1a".into() },
            ),
            (
                format!("o\n18446744073709551616\n{root}\n"),
                CheckpointError::InvalidSize {
                    value: "18446744073709551616".into(),
                },
            ),
            (
                // 31 bytes.
                "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==\n".into(),
                CheckpointError::InvalidRootHash {
                    value: "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxqw==".into(),
                },
            ),
            (
                // 33 bytes.
                "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA\n".into(),
                CheckpointError::InvalidRootHash {
                    value: "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2IA".into(),
                },
            ),
            (
                // Non-canonical: non-zero padding bits.
                "o\n1\nCsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=\n".into(),
                CheckpointError::InvalidRootHash {
                    value: "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2J=".into(),
                },
            ),
            (
                "o\n1\nCsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=\n".into(),
                CheckpointError::InvalidRootHash {
                    value: "CsUYapGGPo4dkMgIAUqom_Xajj7h2fB2MPA3j2jxq2I=".into(),
                },
            ),
            (
                format!("o\n1\n{root}\n\n"),
                CheckpointError::EmptyExtension { index: 0 },
            ),
            (
                format!("o\n1\n{root}\nx\n\ny\n"),
                CheckpointError::EmptyExtension { index: 1 },
            ),
        ];
        for (text, want) in cases {
            assert_eq!(Checkpoint::parse(&text), Err(want), "{text:?}");
        }
    }

    #[test]
    fn format_rejects_what_parse_would_not_give_back() {
        let root = [7; 32];
        assert_eq!(
            Checkpoint::new("", 1, root),
            Err(CheckpointError::EmptyOrigin)
        );
        assert_eq!(
            Checkpoint::new("a\nb", 1, root),
            Err(CheckpointError::NewlineInField {
                field: "origin",
                value: "a\nb".into()
            })
        );
        assert_eq!(
            Checkpoint::new("a\rb", 1, root),
            Err(CheckpointError::Text(NoteError::ControlCharacter {
                offset: 1,
                byte: b'\r'
            }))
        );
        let mut checkpoint = Checkpoint::new("o", 1, root).expect("valid");
        checkpoint.extensions = vec!["x".into(), String::new()];
        assert_eq!(
            checkpoint.format(),
            Err(CheckpointError::EmptyExtension { index: 1 })
        );
        checkpoint.extensions = vec!["x\ny".into()];
        assert_eq!(
            checkpoint.format(),
            Err(CheckpointError::NewlineInField {
                field: "extension",
                value: "x\ny".into()
            })
        );
    }

    pub(crate) fn checkpoint_strategy() -> impl Strategy<Value = Checkpoint> {
        (
            "[^\\x00-\\x1f]{1,30}",
            any::<u64>(),
            any::<[u8; 32]>(),
            prop::collection::vec("[^\\x00-\\x1f]{1,20}", 0..4),
        )
            .prop_map(|(origin, size, root, extensions)| Checkpoint {
                origin,
                size,
                root,
                extensions,
            })
    }

    proptest! {
        #[test]
        fn random_checkpoints_round_trip(checkpoint in checkpoint_strategy()) {
            let text = checkpoint.format().expect("valid fields");
            let parsed = Checkpoint::parse(&text).expect("parses");
            prop_assert_eq!(&parsed, &checkpoint);
            prop_assert_eq!(parsed.format().expect("formats"), text);
        }

        #[test]
        fn random_sizes_are_canonical(size in any::<u64>(), zeros in 1..3usize) {
            let root = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=";
            let padded = format!("{}{size}", "0".repeat(zeros));
            prop_assert!(
                matches!(
                    Checkpoint::parse(&format!("o\n{padded}\n{root}\n")),
                    Err(CheckpointError::NonCanonicalSize { .. })
                ),
                "non-canonical size accepted"
            );
        }
    }
}
