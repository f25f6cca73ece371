//! Opening a store: the layout, leftover temporary files, and the index rebuilt from disk.

use std::{
    fs::{self, File, OpenOptions, TryLockError},
    io,
    os::unix::fs::FileExt,
    path::{Path, PathBuf},
    sync::{Arc, Mutex},
};

use crate::{
    ShardId, ShardStore, StoreLimits,
    dirs::{Dirs, sync_dir},
    hash::shard_root,
    header::{HEADER_LEN, Header, HeaderError},
    limits::LimitsError,
    read::{is_damage, read_hashes_from},
    store::{Inner, State},
};

/// Why a store did not open.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    /// The limits cannot work.
    #[error("{0}")]
    Limits(#[from] LimitsError),
    /// Another store (in this process or another) has the directory open.
    #[error("{} is locked by another shard store", path.display())]
    Locked {
        /// The lock file.
        path: PathBuf,
    },
    /// A directory could not be created, listed or synced, or the lock file opened.
    #[error("cannot open {}: {source}", path.display())]
    Io {
        /// The file or directory.
        path: PathBuf,
        /// What the system said.
        source: io::Error,
    },
}

/// What [`ShardStore::open`] found on disk.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Shards indexed.
    pub shards: u64,
    /// Bytes of their files.
    pub bytes: u64,
    /// Temporary files removed: uploads and repairs a crash or restart interrupted.
    pub removed_temporaries: u64,
    /// Bytes those files held.
    pub removed_temporary_bytes: u64,
    /// Files in the shards directory that failed a check and were not indexed.
    pub quarantined: u64,
    /// The first of them, at most `max_reported_files`.
    pub quarantined_files: Vec<QuarantinedFile>,
}

/// A file that failed a check when the store opened.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuarantinedFile {
    /// Where it was in the shards directory.
    pub path: PathBuf,
    /// Where it is now, or `None` when it could not be moved (it stays unindexed).
    pub moved_to: Option<PathBuf>,
    /// What was wrong with it.
    pub reason: String,
}

/// Why a file in the shards directory is not served.
#[derive(Debug, thiserror::Error)]
pub enum FileError {
    /// A name that is not `<object hex>.<index>.shard`.
    #[error("file name {0:?} does not name a shard")]
    Name(String),
    /// A directory, symbolic link or other non-file.
    #[error("not a regular file")]
    NotAFile,
    /// Too short to hold a header.
    #[error("file of {0} bytes is shorter than the {HEADER_LEN}-byte header")]
    Short(u64),
    /// A header this crate does not read.
    #[error("{0}")]
    Header(#[from] HeaderError),
    /// The header names another shard than the file name.
    #[error("header names shard {header} but the file is named for {name}")]
    WrongShard {
        /// The shard the header names.
        header: ShardId,
        /// The shard the file name names.
        name: ShardId,
    },
    /// The file is not as long as its header says (truncated or extended).
    #[error("file is {actual} bytes but its header implies {expected}")]
    Length {
        /// Bytes the header implies.
        expected: u64,
        /// Bytes the file has.
        actual: u64,
    },
    /// The hash list does not form the header's root.
    #[error(
        "hash list has root {}, not the header's {}",
        hex::encode(computed),
        hex::encode(root)
    )]
    Root {
        /// The header's root.
        root: [u8; 32],
        /// The hash list's root.
        computed: [u8; 32],
    },
    /// The file could not be read.
    #[error("cannot read: {0}")]
    Io(#[from] io::Error),
}

impl ShardStore {
    /// Opens (creating if needed) the store in `dir`: takes its lock, removes leftover
    /// temporary files, and indexes every shard file whose header and hash list pass their
    /// checks. A file that fails is moved to the quarantine directory, never served, and
    /// listed in [`ShardStore::opened`] and [`ShardStore::corrupt_shards`]. Reads every hash
    /// list once, so opening takes time in proportion to the number of blocks stored.
    pub fn open(dir: impl AsRef<Path>, limits: StoreLimits) -> Result<ShardStore, OpenError> {
        limits.validate()?;
        let dirs = Dirs::new(dir.as_ref());
        create_layout(&dirs)?;
        let lock = lock(&dirs.lock())?;
        let mut report = OpenReport::default();
        remove_temporaries(&dirs.tmp, &mut report).map_err(|source| OpenError::Io {
            path: dirs.tmp.clone(),
            source,
        })?;
        let state = index(&dirs, &limits, &mut report)?;
        let inner = Inner {
            dirs,
            limits,
            state: Mutex::new(state),
            opened: report,
            _lock: lock,
        };
        Ok(ShardStore {
            inner: Arc::new(inner),
        })
    }
}

/// Creates the store's directories and makes their entries durable before anything is
/// stored in them.
fn create_layout(dirs: &Dirs) -> Result<(), OpenError> {
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| OpenError::Io { path, source }
    };
    let created = !dirs.root.exists();
    for path in [&dirs.root, &dirs.shards, &dirs.tmp, &dirs.quarantine] {
        fs::create_dir_all(path).map_err(io(path))?;
    }
    sync_dir(&dirs.root).map_err(io(&dirs.root))?;
    if let Some(parent) = dirs.root.parent().filter(|_| created) {
        let parent = match parent.as_os_str().is_empty() {
            true => Path::new("."),
            false => parent,
        };
        sync_dir(parent).map_err(io(parent))?;
    }
    Ok(())
}

/// Opens and locks the lock file, which stays locked while the returned file is open.
fn lock(path: &Path) -> Result<File, OpenError> {
    let io = |source| OpenError::Io {
        path: path.to_path_buf(),
        source,
    };
    let file = OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(path)
        .map_err(io)?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(TryLockError::WouldBlock) => Err(OpenError::Locked {
            path: path.to_path_buf(),
        }),
        Err(TryLockError::Error(source)) => Err(io(source)),
    }
}

/// Removes everything in the temporary directory: no writer is running before the store
/// opens, so each entry is an upload or repair that never finished.
fn remove_temporaries(tmp: &Path, report: &mut OpenReport) -> io::Result<()> {
    for entry in fs::read_dir(tmp)? {
        let entry = entry?;
        let metadata = entry.metadata()?;
        match metadata.is_dir() {
            true => fs::remove_dir_all(entry.path())?,
            false => fs::remove_file(entry.path())?,
        }
        report.removed_temporaries += 1;
        report.removed_temporary_bytes += metadata.len();
    }
    if report.removed_temporaries > 0 {
        sync_dir(tmp)?;
    }
    Ok(())
}

/// Checks every entry of the shards directory, indexing the good and quarantining the rest.
fn index(dirs: &Dirs, limits: &StoreLimits, report: &mut OpenReport) -> Result<State, OpenError> {
    let io = |source| OpenError::Io {
        path: dirs.shards.clone(),
        source,
    };
    let mut state = State::default();
    for entry in fs::read_dir(&dirs.shards).map_err(io)? {
        let path = entry.map_err(io)?.path();
        let name = path
            .file_name()
            .map(|name| name.to_string_lossy().into_owned());
        let name = name.unwrap_or_default();
        let checked = ShardId::from_file_name(&name)
            .ok_or_else(|| FileError::Name(name.clone()))
            .and_then(|id| check_file(&path, id));
        match checked {
            Ok(header) => {
                report.shards += 1;
                report.bytes += header.geometry.file_len();
                state.insert(header);
            }
            // Not the file's fault: opening fails rather than quarantine good shards.
            Err(FileError::Io(source)) if !is_damage(&source) => {
                return Err(OpenError::Io { path, source });
            }
            Err(reason) => {
                if let Some(id) = ShardId::from_file_name(&name) {
                    state.corrupt.insert(id);
                }
                let moved_to = dirs.quarantine(&path).ok();
                tracing::warn!(path = %path.display(), %reason, moved = moved_to.is_some(), "shard file quarantined");
                report.quarantined += 1;
                if report.quarantined_files.len() < limits.max_reported_files {
                    let reason = reason.to_string();
                    report.quarantined_files.push(QuarantinedFile {
                        path,
                        moved_to,
                        reason,
                    });
                }
            }
        }
    }
    if report.quarantined > 0 {
        for dir in [&dirs.shards, &dirs.quarantine] {
            sync_dir(dir).map_err(|source| OpenError::Io {
                path: dir.clone(),
                source,
            })?;
        }
    }
    Ok(state)
}

/// Checks a shard file as far as opening needs: a regular file, a valid header naming the
/// shard its name names, exactly the length the header implies, and a hash list that forms
/// the header's root. Blocks are checked when they are read. Reads at most the header and
/// the hash list, whose size the format bounds and the file's length has confirmed.
pub(crate) fn check_file(path: &Path, name: ShardId) -> Result<Header, FileError> {
    if !fs::symlink_metadata(path)?.is_file() {
        return Err(FileError::NotAFile);
    }
    let file = File::open(path)?;
    let actual = file.metadata()?.len();
    if actual < HEADER_LEN as u64 {
        return Err(FileError::Short(actual));
    }
    let mut bytes = [0u8; HEADER_LEN];
    file.read_exact_at(&mut bytes, 0)?;
    let header = Header::decode(&bytes)?;
    if header.id != name {
        return Err(FileError::WrongShard {
            header: header.id,
            name,
        });
    }
    let expected = header.geometry.file_len();
    if actual != expected {
        return Err(FileError::Length { expected, actual });
    }
    let hashes = read_hashes_from(&file, &header.geometry)?;
    let computed = shard_root(&hashes).expect("a valid geometry has a block");
    if computed != header.root {
        return Err(FileError::Root {
            root: header.root,
            computed,
        });
    }
    Ok(header)
}
