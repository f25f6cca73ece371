//! The control socket of a running `welkin dev`.
//!
//! `welkin dev status|stop|start` talk to the supervisor through the Unix socket
//! `<data dir>/dev.sock` (mode 0600). The client sends one line (`status`, `stop NODE`,
//! `kill NODE` or `start NODE`); the supervisor answers `ok` or `error` on the first line, then
//! text for the user, and closes. A socket that answers means a supervisor is running, so a
//! second `welkin dev` on the same directory is refused; one that does not is left over from a
//! supervisor that was killed, and is replaced.

use anyhow::{Context as _, bail};
use std::{
    io::{Read as _, Write as _},
    os::unix::net::{UnixListener, UnixStream},
    path::{Path, PathBuf},
    sync::Arc,
    time::Duration,
};
use tokio::{
    io::{AsyncBufReadExt as _, AsyncReadExt as _, AsyncWriteExt as _},
    sync::{Semaphore, mpsc, oneshot},
};

/// The socket's file name in the data directory.
const SOCKET: &str = "dev.sock";
/// The longest request line.
const MAX_REQUEST_BYTES: u64 = 256;
/// The longest reply a client reads.
const MAX_REPLY_BYTES: u64 = 64 * 1024;
/// How long the supervisor waits for a client's request line.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client waits for the answer (a stop may take the node's grace period).
const REPLY_TIMEOUT: Duration = Duration::from_secs(60);
/// Connections served at once; more are told the supervisor is busy.
const MAX_CONNECTIONS: usize = 8;
/// Requests queued for the supervisor loop.
pub(super) const MAX_QUEUED: usize = 8;

/// What a client asks of the supervisor.
#[derive(Debug, PartialEq, Eq)]
pub(super) enum Request {
    /// Each node's state.
    Status,
    /// Stop a node and keep it down: SIGTERM (then SIGKILL after a grace period), or SIGKILL
    /// at once when `kill`.
    Stop {
        /// The node's name.
        node: String,
        /// Kill it without a clean shutdown.
        kill: bool,
    },
    /// Start a stopped or crashed node now.
    Start {
        /// The node's name.
        node: String,
    },
}

impl Request {
    fn parse(line: &str) -> Result<Self, String> {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            ["status"] => Ok(Self::Status),
            ["stop", node] => Ok(Self::Stop {
                node: node.to_string(),
                kill: false,
            }),
            ["kill", node] => Ok(Self::Stop {
                node: node.to_string(),
                kill: true,
            }),
            ["start", node] => Ok(Self::Start {
                node: node.to_string(),
            }),
            _ => Err(format!("unknown request {line:?}")),
        }
    }

    fn line(&self) -> String {
        match self {
            Self::Status => "status".into(),
            Self::Stop { node, kill: false } => format!("stop {node}"),
            Self::Stop { node, kill: true } => format!("kill {node}"),
            Self::Start { node } => format!("start {node}"),
        }
    }
}

/// The supervisor's answer: success or failure, and text for the user.
pub(super) type Reply = Result<String, String>;

/// A request with the channel its answer goes back on.
pub(super) struct Call {
    /// The request.
    pub(super) request: Request,
    /// Where the answer goes.
    pub(super) reply: oneshot::Sender<Reply>,
}

/// The control socket, bound; removed from the directory when dropped.
pub(super) struct Socket {
    listener: Option<UnixListener>,
    path: PathBuf,
}

impl Drop for Socket {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.path);
    }
}

/// Binds the control socket of the cluster in `dir`; refuses if a supervisor answers there.
pub(super) fn listen(dir: &Path) -> anyhow::Result<Socket> {
    use std::os::unix::fs::PermissionsExt as _;
    let path = dir.join(SOCKET);
    if path.exists() {
        if UnixStream::connect(&path).is_ok() {
            bail!(
                "a `welkin dev` is already running in {} (see `welkin dev status --data-dir {}`)",
                dir.display(),
                dir.display()
            );
        }
        std::fs::remove_file(&path)
            .with_context(|| format!("cannot remove the stale {}", path.display()))?;
    }
    let listener = UnixListener::bind(&path).with_context(|| {
        format!(
            "cannot listen on {} (a Unix socket path must be under 108 bytes; use a shorter \
             --data-dir)",
            path.display()
        )
    })?;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600))?;
    listener.set_nonblocking(true)?;
    Ok(Socket {
        listener: Some(listener),
        path,
    })
}

impl Socket {
    /// Serves requests until the supervisor drops `calls`' receiver. Call inside a runtime.
    pub(super) async fn serve(&mut self, calls: mpsc::Sender<Call>) -> anyhow::Result<()> {
        let listener = tokio::net::UnixListener::from_std(
            self.listener
                .take()
                .expect("served once, by the supervisor"),
        )?;
        let permits = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        loop {
            let (stream, _) = listener.accept().await?;
            let Ok(permit) = permits.clone().try_acquire_owned() else {
                let mut stream = stream;
                let _ = stream
                    .write_all(b"error\nthe supervisor is busy; try again\n")
                    .await;
                continue;
            };
            let calls = calls.clone();
            tokio::spawn(async move {
                let _permit = permit;
                let _ = answer(stream, calls).await;
            });
        }
    }
}

async fn answer(stream: tokio::net::UnixStream, calls: mpsc::Sender<Call>) -> anyhow::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut line = String::new();
    tokio::time::timeout(
        REQUEST_TIMEOUT,
        tokio::io::BufReader::new(read.take(MAX_REQUEST_BYTES)).read_line(&mut line),
    )
    .await??;
    let reply = match Request::parse(line.trim()) {
        Err(e) => Err(e),
        Ok(request) => {
            let (reply, answer) = oneshot::channel();
            calls.send(Call { request, reply }).await?;
            answer.await?
        }
    };
    let text = match reply {
        Ok(text) => format!("ok\n{text}\n"),
        Err(text) => format!("error\n{text}\n"),
    };
    write.write_all(text.as_bytes()).await?;
    write.shutdown().await?;
    Ok(())
}

/// Sends `request` to the supervisor of the cluster in `dir` and returns its answer.
pub(super) fn request(dir: &Path, request: &Request) -> anyhow::Result<String> {
    let path = dir.join(SOCKET);
    let mut stream = UnixStream::connect(&path).map_err(|e| {
        anyhow::anyhow!(
            "no `welkin dev` is running in {} ({}: {e}); start one with `welkin dev --data-dir {}`",
            dir.display(),
            path.display(),
            dir.display()
        )
    })?;
    stream.set_read_timeout(Some(REPLY_TIMEOUT))?;
    stream.write_all(format!("{}\n", request.line()).as_bytes())?;
    let mut text = String::new();
    stream
        .take(MAX_REPLY_BYTES)
        .read_to_string(&mut text)
        .with_context(|| format!("no answer from the supervisor on {}", path.display()))?;
    match text.split_once('\n') {
        Some(("ok", rest)) => Ok(rest.trim_end().to_string()),
        Some(("error", rest)) => bail!("{}", rest.trim_end()),
        _ => bail!(
            "unexpected answer from the supervisor on {}: {text:?}",
            path.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip_and_garbage_is_refused() {
        for request in [
            Request::Status,
            Request::Stop {
                node: "node1".into(),
                kill: false,
            },
            Request::Stop {
                node: "node2".into(),
                kill: true,
            },
            Request::Start {
                node: "node3".into(),
            },
        ] {
            assert_eq!(Request::parse(&request.line()), Ok(request));
        }
        for garbage in ["", "stop", "start a b", "reboot node1"] {
            let error = Request::parse(garbage).expect_err("refused");
            assert!(error.contains("unknown request"), "{error}");
        }
    }
}
