//! Teardown of disabled mounts: Vault deletes a mount's data when it is disabled, and so does
//! Welkin, a bounded amount per block, shredding the values on every node as it goes.
//!
//! Disabling a mount removes it at once: its secrets are unreachable, since every key of its
//! data includes the mount's id, which a new mount at the same path does not share. The
//! disable also queues the id here (unless the mount holds nothing). Each block, before its
//! transactions run, the sweep walks the directory index (see [`super::dir`]) of the queue's
//! head, depth first from the last entry of each directory. A secret's metadata, its version
//! records and their recipient records are deleted, and every value still referenced is
//! shredded, as `metadata delete` does; a directory left empty is deleted and its entry popped
//! from its parent. Removing entries from the end moves none, so only a directory's last page
//! is rewritten; and the index is the walk's stack, so the stored cursor is just the
//! directory being emptied, where the next block resumes.
//!
//! A block tears down at most [`TEARDOWN_SECRETS_PER_BLOCK`] secrets and enters or leaves at
//! most [`TEARDOWN_MOVES_PER_BLOCK`] directories, so a big mount takes a few blocks and no
//! block is expensive. While nothing is queued, a block reads one key for this.
//!
//! ```text
//! Teardowns := 0x01 | count u16 | (mount [32] | cursor str)*     at keys::secrets_teardown()
//! ```
//!
//! Oldest first, never empty (the key is deleted instead); `cursor` is `""` (the mount's top)
//! or a directory ending in `/`, and only the head's may be other than `""`.

#[cfg(test)]
mod tests;

use super::{
    SecretsResult,
    dir::{self, ready},
    kv,
    records::Meta,
};
use crate::{
    Overlay, Snapshot, keys,
    stored::{Reader, StoredError, Writer, read_list, write_list},
};
use welkin_types::{Digest, secrets::MAX_SECRET_PATH_BYTES};

/// The version byte of the teardown queue.
const VERSION: u8 = 1;

/// Most disabled mounts waiting for teardown; a disable beyond it is refused until the queue
/// drains. As many as the mounts a cluster may have, so disabling every mount at once fits.
pub const MAX_TEARDOWNS: usize = super::MAX_MOUNTS;

/// Most secrets one block tears down. A secret costs at most 1 + 2 × `MAX_KEPT_VERSIONS`
/// deletes (its metadata, values and recipient records), so 64 secrets are at most 12,864
/// deletes, fewer than a full block of `MAX_BLOCK_TXS` transactions writes (a receipt and a
/// nonce each: 16,384), and about 1,300 for secrets keeping the default 10 versions. It is also
/// one directory page, so a block's share of a directory spans at most two pages. A mount of
/// 100,000 secrets in directories of a few thousand takes about 1,600 blocks (an idle leader
/// proposes an empty block after waiting `idle_wait_ms`, 250 ms by default: minutes, not
/// hours).
pub const TEARDOWN_SECRETS_PER_BLOCK: usize = 64;

/// Most directories one block enters or leaves. Each may cost the block one more round of
/// reads (the node applies the block again per round), so a deep chain of directories takes
/// more blocks instead of making one block slow.
pub const TEARDOWN_MOVES_PER_BLOCK: usize = 8;

/// A disabled mount whose data is still to be deleted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Teardown {
    /// The mount's id ([`super::records::Mount::id`]).
    pub mount: Digest,
    /// The directory being emptied (`""`: the top).
    pub cursor: String,
}

/// The queue of teardowns, oldest first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Teardowns(pub Vec<Teardown>);

impl Teardowns {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        write_list(&mut w, &self.0, |w, t| {
            w.raw(t.mount.as_ref());
            w.str(&t.cursor);
        });
        w.0
    }

    /// Decodes the stored queue.
    pub fn decode(value: &[u8]) -> Result<Teardowns, StoredError> {
        let mut r = Reader::new("mount teardown queue", value);
        r.version(VERSION)?;
        let queue = read_list(&mut r, |r| {
            Ok(Teardown {
                mount: Digest::from(r.bytes32()?),
                cursor: r.str()?,
            })
        })?;
        if queue.is_empty() || queue.len() > MAX_TEARDOWNS {
            return Err(r.error(format!(
                "{} mounts queued, not 1 to {MAX_TEARDOWNS}",
                queue.len()
            )));
        }
        if let Some(bad) = queue.iter().find(|t| {
            t.cursor.len() > MAX_SECRET_PATH_BYTES
                || !(t.cursor.is_empty() || t.cursor.ends_with('/'))
        }) {
            return Err(r.error(format!("cursor {:?} is not a directory", bad.cursor)));
        }
        if let Some(waiting) = queue[1..].iter().find(|t| !t.cursor.is_empty()) {
            return Err(r.error(format!(
                "cursor {:?} of a mount behind the head of the queue",
                waiting.cursor
            )));
        }
        r.end()?;
        Ok(Teardowns(queue))
    }
}

/// Queues the data of the disabled mount `mount` for teardown; refuses when
/// [`MAX_TEARDOWNS`] are waiting. Writes nothing if the mount holds no secret.
pub(super) fn queue<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    path: &str,
    mount: &Digest,
) -> Result<(), SecretsResult> {
    // Every secret is in the top directory's index, or in a directory that is.
    if state.get(&keys::kv_dir(mount, "")).is_none() {
        return Ok(());
    }
    let key = keys::secrets_teardown();
    let mut queue = state
        .decoded(&key, Teardowns::decode)
        .unwrap_or(Teardowns(Vec::new()));
    if queue.0.len() >= MAX_TEARDOWNS {
        return Err(SecretsResult::refused(
            400,
            format!(
                "{MAX_TEARDOWNS} disabled mounts are still having their secrets deleted, the \
                 limit; wait a few blocks and disable {path}/ again"
            ),
        ));
    }
    queue.0.push(Teardown {
        mount: *mount,
        cursor: String::new(),
    });
    state.put(key, queue.encode());
    Ok(())
}

/// What a block may still do.
struct Budget {
    secrets: usize,
    moves: usize,
}

/// Makes this block's progress on the queued teardowns (before its transactions run).
pub(crate) fn sweep<S: Snapshot>(state: &mut Overlay<'_, S>) {
    let key = keys::secrets_teardown();
    let Some(mut queue) = state.decoded(&key, Teardowns::decode) else {
        return;
    };
    let before = queue.clone();
    let mut budget = Budget {
        secrets: TEARDOWN_SECRETS_PER_BLOCK,
        moves: TEARDOWN_MOVES_PER_BLOCK,
    };
    while budget.secrets > 0
        && let Some(head) = queue.0.first_mut()
    {
        if !walk(state, &head.mount, &mut head.cursor, &mut budget) {
            break;
        }
        queue.0.remove(0);
    }
    if queue.0.is_empty() {
        state.delete(key);
    } else if queue != before {
        state.put(key, queue.encode());
    }
}

/// Why a walk through one directory stopped.
enum Stop {
    /// A key is still to be fetched, or the budget is spent.
    Wait,
    /// The entries the read tail held are gone.
    Window,
    /// The next entry is a directory holding entries: this one.
    Enter(String),
}

/// Tears down what `budget` allows of `mount`, from directory `cursor` on; whether it is all
/// gone.
fn walk<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    mount: &Digest,
    cursor: &mut String,
    budget: &mut Budget,
) -> bool {
    // The directories the walk may leave to, with their first pages, in one round.
    let mut up = Vec::new();
    let mut dir = cursor.clone();
    while !dir.is_empty() && up.len() < 2 * budget.moves {
        dir = parent(&dir);
        up.extend([keys::kv_dir(mount, &dir), keys::kv_dir_page(mount, &dir, 0)]);
    }
    state.prefetch(up);
    loop {
        // One entry beyond the secrets the budget allows: the directory the walk enters next.
        let Some(tail) = dir::tail(state, mount, cursor, budget.secrets + 1) else {
            return false;
        };
        if tail.count == 0 {
            if cursor.is_empty() {
                return true;
            }
            if budget.moves == 0 {
                return false;
            }
            // Leave it; its entry in the parent goes next, as a directory that holds nothing.
            budget.moves -= 1;
            *cursor = parent(cursor);
            continue;
        }
        let window = tail
            .count
            .saturating_sub(budget.secrets + 1)
            .max(tail.start());
        prefetch_dirs(state, mount, cursor, &tail, window, budget.moves / 2);
        let mut keep = tail.count;
        let stop = loop {
            if keep == window {
                break Stop::Window;
            }
            let entry = tail.entry(keep - 1);
            let path = format!("{cursor}{entry}");
            if entry.ends_with('/') {
                let head = keys::kv_dir(mount, &path);
                if !ready(state, [head]) {
                    break Stop::Wait;
                }
                if state.get(&head).is_some() {
                    break Stop::Enter(path);
                }
            } else if budget.secrets == 0 {
                break Stop::Wait;
            } else {
                remove_secret(state, mount, &path);
                budget.secrets -= 1;
            }
            keep -= 1;
        };
        let progress = keep != tail.count;
        dir::truncate(state, mount, cursor, &tail, keep);
        match stop {
            Stop::Enter(path) if budget.moves > 0 => {
                budget.moves -= 1;
                *cursor = path;
            }
            Stop::Window if progress => {}
            Stop::Enter(_) | Stop::Window | Stop::Wait => return false,
        }
    }
}

/// Asks at once for the head and first page (all of a small directory) of up to `dirs`
/// subdirectories among `window..` of `tail`, which the walk may enter in this block: the
/// walk then enters each without a round of reads of its own.
fn prefetch_dirs<S: Snapshot>(
    state: &Overlay<'_, S>,
    mount: &Digest,
    cursor: &str,
    tail: &dir::Tail,
    window: usize,
    dirs: usize,
) {
    let subdirs = (window..tail.count)
        .rev()
        .map(|slot| tail.entry(slot))
        .filter(|entry| entry.ends_with('/'))
        .take(dirs)
        .flat_map(|entry| {
            let path = format!("{cursor}{entry}");
            [
                keys::kv_dir(mount, &path),
                keys::kv_dir_page(mount, &path, 0),
            ]
        });
    state.prefetch(subdirs.collect::<Vec<_>>());
}

/// The value and recipient record keys of the versions of a secret not yet destroyed (a
/// destroyed version's records went with the destroy).
fn version_keys<'a>(
    mount: &'a Digest,
    path: &'a str,
    meta: &'a Meta,
) -> impl Iterator<Item = Digest> + 'a {
    meta.versions.iter().filter(|v| !v.destroyed).flat_map(|v| {
        [
            keys::kv_value(mount, path, v.version),
            keys::kv_recipients(mount, path, v.version),
        ]
    })
}

/// Deletes the secret at `path` and shreds its values. While its keys are still to be
/// fetched it asks for them and goes on as if it were gone: that round's writes are
/// discarded, and the walk reaches the secrets after it (and asks for their keys) in the same
/// round, so a block needs a few rounds of reads, not one per secret.
fn remove_secret<S: Snapshot>(state: &mut Overlay<'_, S>, mount: &Digest, path: &str) {
    let meta_key = keys::kv_meta(mount, path);
    if !ready(state, [meta_key]) {
        return;
    }
    // An index entry without metadata leaves nothing else to delete.
    let Some(meta) = state.decoded(&meta_key, Meta::decode) else {
        return;
    };
    if !ready(state, version_keys(mount, path, &meta)) {
        return;
    }
    for version in meta.versions.iter().filter(|v| !v.destroyed) {
        kv::shred(state, keys::kv_value(mount, path, version.version));
        let recipients = keys::kv_recipients(mount, path, version.version);
        if state.get(&recipients).is_some() {
            state.delete(recipients);
        }
    }
    state.delete(meta_key);
}

/// The parent of directory `dir` (`a/b/` gives `a/`, `a/` gives `""`).
fn parent(dir: &str) -> String {
    let trimmed = dir.strip_suffix('/').unwrap_or(dir);
    match trimmed.rfind('/') {
        Some(at) => trimmed[..=at].to_string(),
        None => String::new(),
    }
}
