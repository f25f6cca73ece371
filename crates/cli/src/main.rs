//! The welkin command: start a local cluster, run a node, manage keys and submit transactions.
//!
//! `main` parses arguments, runs one command, and maps its result to an exit code:
//! 0 success, 1 the command failed, 2 bad usage (from clap).

#![forbid(unsafe_code)]

mod cli;
mod cmd;
mod output;

use clap::Parser as _;

fn main() {
    let cli = cli::Cli::parse_from(cli::vault_style(std::env::args_os()));
    output::init_logging(&cli);
    if let Err(error) = cmd::run(cli) {
        eprintln!("welkin: {error:#}");
        std::process::exit(1);
    }
}
