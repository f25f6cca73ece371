//! C2SP signed notes, tlog checkpoints and tlog cosignatures with Ed25519.
//!
//! A transparency log publishes its tree head as a *checkpoint* ([`Checkpoint`],
//! c2sp.org/tlog-checkpoint): a short text naming the log, the tree size and the root hash.
//! The log signs that text as a *signed note* ([`Note`], c2sp.org/signed-note), and witnesses
//! add *cosignatures* ([`CosignatureSigner`], c2sp.org/tlog-cosignature) stating that they saw
//! no other, inconsistent tree. Clients trust a checkpoint once the log's signature and enough
//! cosignatures verify.
//!
//! The formats are byte-for-byte those of Go's `golang.org/x/mod/sumdb/note` and of the C2SP
//! specs, so notes made here verify with the standard Go tooling and the other way round: the
//! tests check published keys, notes and cosignatures from the specs, from Go's tests and
//! from a live witnessed log. Everything is a pure function of its arguments: no I/O, no
//! clock (cosigners are handed the time), no randomness (keys are made from seeds).
//!
//! - [`note`]: the note format, [`Note`] and [`NoteSignature`], and its limits.
//! - [`key`]: verifier key strings, key IDs, [`NoteSigner`], [`NoteVerifier`] and
//!   [`NoteVerifiers`] (verifying a note against trusted keys).
//! - [`checkpoint`]: the checkpoint text, [`Checkpoint`].
//! - [`cosignature`]: v1 Ed25519 cosignatures, [`CosignatureSigner`] and
//!   [`CosignatureVerifier`].
//!
//! ```
//! use welkin_note::{Checkpoint, CosignatureSigner, CosignatureVerifier, Note};
//! use welkin_note::{NoteSigner, NoteVerifier, NoteVerifiers};
//!
//! // The log signs a checkpoint (the seeds would come from secret storage).
//! let log = NoteSigner::new("example.com/log", &[1; 32])?;
//! let checkpoint = Checkpoint::new("example.com/log", 10, [0xab; 32])?;
//! let mut note = Note::new(checkpoint.format()?)?;
//! log.sign_note(&mut note)?;
//!
//! // A witness cosigns it as of a POSIX time.
//! let witness = CosignatureSigner::new("witness.example/w1", &[2; 32])?;
//! witness.cosign_note(&mut note, 1_700_000_000)?;
//! let encoded = note.format()?;
//!
//! // A client that trusts the two keys by their verifier key strings checks both.
//! let log_key: NoteVerifier = log.verifier_key().parse()?;
//! let witness_key: CosignatureVerifier = witness.verifier_key().parse()?;
//! let (note, outcome) = NoteVerifiers::new([log_key])?.open(encoded.as_bytes())?;
//! assert_eq!(outcome.verified, vec![log.key()]);
//! assert_eq!(witness_key.verify_note(&note)?, Some(1_700_000_000));
//! assert_eq!(Checkpoint::parse(&note.text)?, checkpoint);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![deny(missing_docs)]

pub mod checkpoint;
pub mod cosignature;
pub mod key;
pub mod note;

pub use checkpoint::{Checkpoint, CheckpointError, ROOT_HASH_SIZE};
pub use cosignature::{
    COSIGNATURE_SIZE, COSIGNATURE_V1_HEADER, Cosignature, CosignatureError, CosignatureSigner,
    CosignatureVerifier, MAX_TIMESTAMP, cosigned_message,
};
pub use key::{
    COSIGNATURE_V1_SIGNATURE_TYPE, ED25519_KEY_SIZE, ED25519_SIGNATURE_SIZE,
    ED25519_SIGNATURE_TYPE, KeyError, KeyRef, NoteSigner, NoteVerifier, NoteVerifiers,
    Verification, VerifyError, key_id,
};
pub use note::{
    KEY_ID_SIZE, MAX_NOTE_SIZE, MAX_SIGNATURES, Note, NoteError, NoteSignature,
    SIGNATURE_LINE_PREFIX, validate_key_name, validate_text,
};
