//! Where a store keeps its files, and the directory operations durability rests on.

use std::{
    fs::{self, File},
    io,
    path::{Path, PathBuf},
    time::{SystemTime, UNIX_EPOCH},
};

use crate::ShardId;

/// How many names `quarantine` tries before it gives up: they differ only when two files are
/// quarantined under one name in the same nanosecond.
const QUARANTINE_NAME_ATTEMPTS: u32 = 16;

/// The store's directories (layout in the crate docs).
#[derive(Debug, Clone)]
pub(crate) struct Dirs {
    /// The store's own directory.
    pub(crate) root: PathBuf,
    /// Finished shards, one file each, named by [`ShardId::file_name`].
    pub(crate) shards: PathBuf,
    /// Shards being written; emptied when the store opens.
    pub(crate) tmp: PathBuf,
    /// Files that failed a check, kept for the operator and never served.
    pub(crate) quarantine: PathBuf,
}

impl Dirs {
    pub(crate) fn new(root: &Path) -> Self {
        Self {
            root: root.to_path_buf(),
            shards: root.join("shards"),
            tmp: root.join("tmp"),
            quarantine: root.join("quarantine"),
        }
    }

    /// The lock file that keeps a second store (or process) out of the directory.
    pub(crate) fn lock(&self) -> PathBuf {
        self.root.join("LOCK")
    }

    /// Where a finished shard lives.
    pub(crate) fn shard(&self, id: &ShardId) -> PathBuf {
        self.shards.join(id.file_name())
    }

    /// Where a shard is written before it is renamed into place.
    pub(crate) fn temp(&self, id: &ShardId) -> PathBuf {
        self.tmp.join(id.temp_name())
    }

    /// Moves `from` into the quarantine directory under its own name and a nanosecond
    /// timestamp (so a shard quarantined twice keeps both files), returning where it went.
    /// The caller syncs the directories.
    pub(crate) fn quarantine(&self, from: &Path) -> io::Result<PathBuf> {
        let name = from
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let name = name.unwrap_or_else(|| "unnamed".to_string());
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_nanos();
        for attempt in 0..QUARANTINE_NAME_ATTEMPTS {
            let to = self.quarantine.join(format!("{name}.{now}.{attempt}"));
            if fs::symlink_metadata(&to).is_err() {
                fs::rename(from, &to)?;
                return Ok(to);
            }
        }
        Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            "no free name in the quarantine",
        ))
    }
}

/// Makes a directory's entries (files created, renamed or removed in it) durable. On Linux
/// this is `fsync` on the directory itself; without it a renamed file can vanish in a crash
/// even though its contents were synced.
pub(crate) fn sync_dir(dir: &Path) -> io::Result<()> {
    File::open(dir)?.sync_all()
}
