//! Flags of `welkin time`: certified time and the cluster's clocks.

use super::{ApiArgs, TrustArgs};
use clap::{Args, Subcommand};

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
    /// Check a certificate printed by `welkin time now --json` (its `certificate` field),
    /// offline, against the trusted cluster key.
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
    #[arg(long)]
    pub(crate) nonce: Option<String>,
}
