//! One module per command.

mod audit;
mod bench;
mod dev;
mod genesis;
mod id;
mod key;
mod log;
mod membership;
mod obj;
mod query;
mod secrets;
mod signing;
mod simulate;
mod time;
mod trust;
mod tx;

use crate::cli::{Cli, Command, IdCommand, KeyCommand, LogCommand, TxCommand};

/// Runs the parsed command.
pub(crate) fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Dev(args) => dev::run(args),
        Command::Node(args) => match (args.command, args.config) {
            (Some(crate::cli::NodeCommand::Storage(api)), _) => obj::node_storage(api),
            (Some(crate::cli::NodeCommand::Join(args)), _) => membership::node_join(args),
            (Some(crate::cli::NodeCommand::Leave(args)), _) => membership::node_leave(args),
            (None, Some(config)) => {
                let prepared = welkin_node::run::prepare(&config)?;
                welkin_node::run::run(prepared);
                Ok(())
            }
            (None, None) => anyhow::bail!("say which node config to run: --config FILE"),
        },
        Command::Obj(command) => obj::run(command),
        Command::Key(KeyCommand::New(args)) => key::new(args),
        Command::Key(KeyCommand::Register(args)) => key::register(args),
        Command::Genesis(args) => genesis::run(args),
        Command::Status(args) => query::status(args),
        Command::Tx(TxCommand::Submit(args)) => tx::submit(args),
        Command::Tx(TxCommand::Status(args)) => query::tx_status(args),
        Command::Block(args) => query::block(args),
        Command::Bench(args) => bench::run(args),
        Command::Audit(args) => audit::audit(args),
        Command::Log(LogCommand::Append(args)) => log::append(args),
        Command::Log(LogCommand::Verify(args)) => log::verify(args),
        Command::Log(LogCommand::Get(args)) => log::get(args),
        Command::Log(LogCommand::Proof(args)) => log::proof(args),
        Command::Log(LogCommand::Checkpoint(args)) => log::checkpoint(args),
        Command::Log(LogCommand::Watch(args)) => log::watch(args),
        Command::Id(IdCommand::Incept(args)) => id::incept(args),
        Command::Id(IdCommand::Rotate(args)) => id::rotate(args),
        Command::Id(IdCommand::Recover(args)) => id::recover(args),
        Command::Id(IdCommand::Interact(args)) => id::interact(args),
        Command::Id(IdCommand::Show(args)) => id::show(args),
        Command::Id(IdCommand::Kel(args)) => id::kel(args),
        Command::Id(IdCommand::Delegate(args)) => id::delegate(args),
        Command::Id(IdCommand::Export(args)) => id::export(args),
        Command::Id(IdCommand::Verify(args)) => id::verify(args),
        Command::Kv(command) => secrets::kv(command),
        Command::Policy(command) => secrets::policy(command),
        Command::Token(command) => secrets::token(command),
        Command::Login(args) => secrets::login(args),
        Command::Transit(command) => secrets::transit(command),
        Command::Time(command) => time::run(command),
        Command::Membership(command) => membership::run(command),
    }
}

/// Milliseconds since the Unix epoch on this machine's clock.
pub(crate) fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Writes a file that holds secrets: mode 0600, never overwriting.
pub(crate) fn write_secret(path: &std::path::Path, contents: &str) -> anyhow::Result<()> {
    write_new(path, contents, 0o600)
}

/// Creates `path` with `mode` and writes and syncs `contents`; refuses to overwrite anything.
pub(crate) fn write_new(path: &std::path::Path, contents: &str, mode: u32) -> anyhow::Result<()> {
    use std::{io::Write as _, os::unix::fs::OpenOptionsExt as _};
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(|e| {
            anyhow::anyhow!(
                "cannot create {}: {e} (refusing to overwrite an existing file)",
                path.display()
            )
        })?;
    file.write_all(contents.as_bytes())?;
    file.sync_all()?;
    Ok(())
}

/// Syncs a directory, so that the files just created in it survive a crash.
pub(crate) fn sync_dir(dir: &std::path::Path) -> anyhow::Result<()> {
    let dir = if dir.as_os_str().is_empty() {
        std::path::Path::new(".")
    } else {
        dir
    };
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| anyhow::anyhow!("cannot sync {}: {e}", dir.display()))
}
