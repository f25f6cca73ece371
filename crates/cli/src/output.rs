//! Logging set-up and output helpers shared by the commands.

use crate::cli::{Cli, Command};
use serde::Serialize;
use tracing_subscriber::EnvFilter;

/// Logs go to stderr. A node logs at `info`; other commands only warn, unless `RUST_LOG` says otherwise.
pub(crate) fn init_logging(cli: &Cli) {
    let default = match cli.command {
        Command::Node(_) => "info",
        _ => "warn",
    };
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new(default));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .try_init();
}

/// Prints `value` as pretty JSON.
pub(crate) fn json<T: Serialize>(value: &T) -> anyhow::Result<()> {
    println!("{}", serde_json::to_string_pretty(value)?);
    Ok(())
}
