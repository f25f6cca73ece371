//! Flags of `welkin time`: certified time and the cluster's clocks.

use super::{ApiArgs, SignerArgs, TrustArgs};
use clap::{Args, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Subcommand)]
pub(crate) enum TimeCommand {
    /// Ask for the time with a fresh random nonce and check the answer.
    ///
    /// The node gathers signed clock readings from the nodes, agrees on the interval that
    /// 2f+1 of them support (so that f lying clocks cannot move it), and returns it signed by
    /// the cluster key over the nonce. The certificate is checked here against the trusted
    /// cluster key (see --genesis) before anything is printed as verified. Because the nonce
    /// is fresh, true time was inside the interval at some instant between asking and the
    /// answer. When the clocks do not agree, the cluster refuses rather than guesses, and the
    /// command says why.
    Now(TimeNowArgs),
    /// Timestamp a file: prove its SHA-256 existed before a certified time, and log the proof.
    ///
    /// The file's digest is the nonce of a time certificate, so the nodes signed their clock
    /// readings after seeing it: the file existed before the interval's latest instant. The
    /// certificate is checked here, then appended to the audit log as a record of type
    /// `application/vnd.welkin.time-stamp`, signed by the sender; the log receipt (written to
    /// FILE.stamp.json) holds both. Check it later, offline, with `welkin time verify
    /// FILE.stamp.json --file FILE --genesis genesis.json`.
    Stamp(TimeStampArgs),
    /// Check a time certificate or a timestamp, offline, against the trusted cluster key.
    ///
    /// Takes the `--json` output of `welkin time now` (or its `certificate` field), or the
    /// receipt `welkin time stamp` wrote: then the log receipt is checked too, and with
    /// --file, that the certificate is over that file's SHA-256.
    Verify(TimeVerifyArgs),
    /// Show every node's clock as one node sees it: offset from the certified time, radius,
    /// whether its host is synchronised, and its state (agreeing, disagreeing, quarantined
    /// after disagreeing three rounds in a row, silent).
    Status(ApiArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TimeNowArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TimeStampArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    #[command(flatten)]
    pub(crate) signer: SignerArgs,
    /// The file to timestamp (only its SHA-256 leaves this machine).
    pub(crate) file: PathBuf,
    /// Write the receipt here (default: FILE.stamp.json).
    #[arg(long)]
    pub(crate) out: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub(crate) struct TimeVerifyArgs {
    #[command(flatten)]
    pub(crate) api: ApiArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// The certificate: hex, or the path of a file holding the hex or the whole `--json`
    /// output of `welkin time now`.
    pub(crate) certificate: String,
    /// The nonce you asked with (64 hex characters): the check then also proves the answer
    /// is for your request.
    #[arg(long, conflicts_with = "file")]
    pub(crate) nonce: Option<String>,
    /// The file a timestamp is for: the certificate's nonce must be its SHA-256.
    #[arg(long)]
    pub(crate) file: Option<PathBuf>,
}
