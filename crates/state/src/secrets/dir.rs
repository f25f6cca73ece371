//! The directory index of KV v2, for LIST: a directory's entries in pages of [`PAGE`], so that
//! adding or removing a secret costs the same in a directory of ten entries or of thousands.
//!
//! Each directory (`""` for a mount's top, else ending in `/`) has a head with its entry count,
//! pages of entries in slot order (entry `i` is in page `i / PAGE`), and one slot record per
//! entry saying where it is. A new entry takes the next slot; a removed entry's slot is
//! filled by the last entry, so that the pages stay dense. LIST reads the head and the pages
//! and sorts. Subdirectories are entries ending in `/`, and a directory is in its parent
//! exactly while it holds an entry.
//!
//! ```text
//! Head := 0x02 | count u32          at keys::kv_dir(mount, dir)
//! Page := 0x02 | u16 count | str*   at keys::kv_dir_page(mount, dir, page), in slot order
//! Slot := 0x02 | slot u32           at keys::kv_dir_slot(mount, dir, entry)
//! ```
//!
//! Version 1 of the head was the whole directory as one sorted name list
//! ([`super::records::encode_names`]), rewritten on every new secret. A directory still in
//! that form is listed as it is and converted to pages when it next changes (a teardown, see
//! [`super::teardown`], only shortens it, from the end, as it shortens pages).

use super::{MAX_DIR_ENTRIES, SecretsResult, records::decode_names};
use crate::{
    Overlay, Snapshot, keys,
    stored::{Reader, StoredError, Writer, read_list, write_list},
};
use welkin_types::Digest;

/// The version of the paged encodings (version 1 is the sorted list they replace).
const VERSION: u8 = 2;
/// Entries per page: a new entry rewrites one page of at most this many.
pub const PAGE: usize = 64;

/// A directory's head as stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Head {
    /// Version 1: every entry in one sorted list.
    Listed(Vec<String>),
    /// Version 2: this many entries, in pages.
    Paged(usize),
}

impl Head {
    /// Decodes a stored head of either version.
    pub fn decode(value: &[u8]) -> Result<Head, StoredError> {
        if value.first() == Some(&1) {
            return decode_names(value).map(Head::Listed);
        }
        let mut r = Reader::new("directory head", value);
        r.version(VERSION)?;
        let count = r.u32()?;
        r.end()?;
        Ok(Head::Paged(count))
    }

    fn encode(count: usize) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u32(count);
        w.0
    }

    /// Entries in the directory.
    fn count(&self) -> usize {
        match self {
            Head::Listed(names) => names.len(),
            Head::Paged(count) => *count,
        }
    }
}

/// Decodes a page: its entries in slot order.
pub fn decode_page(value: &[u8]) -> Result<Vec<String>, StoredError> {
    let mut r = Reader::new("directory page", value);
    r.version(VERSION)?;
    let names = read_list(&mut r, |r| r.str())?;
    r.end()?;
    Ok(names)
}

fn encode_page(names: &[String]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(VERSION);
    write_list(&mut w, names, |w, name| w.str(name));
    w.0
}

fn decode_slot(value: &[u8]) -> Result<usize, StoredError> {
    let mut r = Reader::new("directory slot", value);
    r.version(VERSION)?;
    let slot = r.u32()?;
    r.end()?;
    Ok(slot)
}

fn encode_slot(slot: usize) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(VERSION);
    w.u32(slot);
    w.0
}

/// The keys of the pages that hold `count` entries of directory `dir`.
pub fn page_keys(mount: &Digest, dir: &str, count: usize) -> Vec<Digest> {
    (0..count.div_ceil(PAGE))
        .map(|page| keys::kv_dir_page(mount, dir, page as u32))
        .collect()
}

/// A directory's entries, sorted, from its head and its pages (as [`page_keys`] names them;
/// a paged head needs its pages, a listed head none). A missing or short page is corruption.
pub fn entries<'a>(
    head: Head,
    pages: impl IntoIterator<Item = Option<&'a [u8]>>,
) -> Result<Vec<String>, StoredError> {
    let count = match head {
        Head::Listed(names) => return Ok(names),
        Head::Paged(count) => count,
    };
    let mut names = Vec::with_capacity(count);
    for page in pages {
        let page = page.ok_or_else(|| StoredError::new("directory page", "missing"))?;
        names.extend(decode_page(page)?);
    }
    if names.len() != count {
        return Err(StoredError::new(
            "directory page",
            format!(
                "{} entries in the pages, the head says {count}",
                names.len()
            ),
        ));
    }
    names.sort_unstable();
    Ok(names)
}

/// The entries of directory `dir` of a mount, sorted (for LIST).
pub fn list<S: Snapshot>(state: &Overlay<'_, S>, mount: &Digest, dir: &str) -> Vec<String> {
    let key = keys::kv_dir(mount, dir);
    let Some(head) = state.decoded(&key, Head::decode) else {
        return Vec::new();
    };
    let pages = page_keys(mount, dir, head.count());
    state.prefetch(pages.iter().copied());
    let bytes: Vec<Option<&[u8]>> = pages.iter().map(|k| state.get(k)).collect();
    match entries(head, bytes) {
        Ok(names) => names,
        Err(error) => {
            state.corrupt(key, error);
            Vec::new()
        }
    }
}

/// The directory chain of `path`: (`dir`, `entry`) from the leaf up, e.g. `a/b/c` gives
/// (`a/b/`, `c`), (`a/`, `b/`), (``, `a/`).
fn chain(path: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let mut rest = path;
    let mut entry = match rest.rfind('/') {
        Some(at) => {
            let e = rest[at + 1..].to_string();
            rest = &rest[..at];
            out.push((format!("{rest}/"), e));
            format!("{}/", rest.rsplit('/').next().unwrap_or(rest))
        }
        None => {
            out.push((String::new(), rest.to_string()));
            return out;
        }
    };
    loop {
        match rest.rfind('/') {
            Some(at) => {
                rest = &rest[..at];
                out.push((format!("{rest}/"), entry));
                entry = format!("{}/", rest.rsplit('/').next().unwrap_or(rest));
            }
            None => {
                out.push((String::new(), entry));
                return out;
            }
        }
    }
}

/// One directory being changed: its head count, with a listed (version 1) directory turned
/// into pages first.
struct Dir<'d> {
    mount: &'d Digest,
    dir: &'d str,
    count: usize,
}

impl<'d> Dir<'d> {
    /// Opens `dir` for a change; converts a version 1 list to pages (once per directory).
    fn open<S: Snapshot>(state: &mut Overlay<'_, S>, mount: &'d Digest, dir: &'d str) -> Self {
        let head = state.decoded(&keys::kv_dir(mount, dir), Head::decode);
        let count = match head {
            None => 0,
            Some(Head::Paged(count)) => count,
            Some(Head::Listed(names)) => {
                for (slot, name) in names.iter().enumerate() {
                    state.put(keys::kv_dir_slot(mount, dir, name), encode_slot(slot));
                }
                for (page, names) in names.chunks(PAGE).enumerate() {
                    state.put(
                        keys::kv_dir_page(mount, dir, page as u32),
                        encode_page(names),
                    );
                }
                // The head says pages from now on, even if the change finds nothing to do.
                state.put(keys::kv_dir(mount, dir), Head::encode(names.len()));
                names.len()
            }
        };
        Dir { mount, dir, count }
    }

    fn page<S: Snapshot>(&self, state: &Overlay<'_, S>, page: usize) -> Vec<String> {
        state
            .decoded(
                &keys::kv_dir_page(self.mount, self.dir, page as u32),
                decode_page,
            )
            .unwrap_or_default()
    }

    fn put_page<S: Snapshot>(&self, state: &mut Overlay<'_, S>, page: usize, names: &[String]) {
        let key = keys::kv_dir_page(self.mount, self.dir, page as u32);
        if names.is_empty() {
            state.delete(key);
        } else {
            state.put(key, encode_page(names));
        }
    }

    fn put_head<S: Snapshot>(&self, state: &mut Overlay<'_, S>) {
        let key = keys::kv_dir(self.mount, self.dir);
        if self.count == 0 {
            state.delete(key);
        } else {
            state.put(key, Head::encode(self.count));
        }
    }

    /// Appends `entry` in the next slot: one page, one slot record and the head written.
    fn push<S: Snapshot>(&mut self, state: &mut Overlay<'_, S>, entry: &str) {
        let slot = self.count;
        let mut page = self.page(state, slot / PAGE);
        // A page read before its key was fetched is empty and may be short: that round's
        // writes are discarded, and the next round has the page.
        page.truncate(slot % PAGE);
        page.push(entry.to_string());
        self.put_page(state, slot / PAGE, &page);
        state.put(
            keys::kv_dir_slot(self.mount, self.dir, entry),
            encode_slot(slot),
        );
        self.count += 1;
        self.put_head(state);
    }

    /// Removes `entry` from slot `slot`, moving the last entry into it.
    fn remove<S: Snapshot>(&mut self, state: &mut Overlay<'_, S>, entry: &str, slot: usize) {
        if slot >= self.count {
            return;
        }
        let last = self.count - 1;
        let mut last_page = self.page(state, last / PAGE);
        let moved = last_page.pop();
        if slot != last
            && let Some(moved) = moved
        {
            if slot / PAGE == last / PAGE {
                if let Some(place) = last_page.get_mut(slot % PAGE) {
                    *place = moved.clone();
                }
            } else {
                let mut page = self.page(state, slot / PAGE);
                if let Some(place) = page.get_mut(slot % PAGE) {
                    *place = moved.clone();
                }
                self.put_page(state, slot / PAGE, &page);
            }
            state.put(
                keys::kv_dir_slot(self.mount, self.dir, &moved),
                encode_slot(slot),
            );
        }
        self.put_page(state, last / PAGE, &last_page);
        state.delete(keys::kv_dir_slot(self.mount, self.dir, entry));
        self.count = last;
        self.put_head(state);
    }
}

/// The slot of `entry` in `dir`, if it is there.
fn slot_of<S: Snapshot>(
    state: &Overlay<'_, S>,
    mount: &Digest,
    dir: &str,
    entry: &str,
) -> Option<usize> {
    state.decoded(&keys::kv_dir_slot(mount, dir, entry), decode_slot)
}

/// Asks for every head and slot record of `path`'s chain in one round of reads.
fn prefetch_chain<S: Snapshot>(state: &Overlay<'_, S>, mount: &Digest, links: &[(String, String)]) {
    state.prefetch(links.iter().flat_map(|(dir, entry)| {
        [
            keys::kv_dir(mount, dir),
            keys::kv_dir_slot(mount, dir, entry),
        ]
    }));
}

/// Adds a new secret to its directory and each parent directory that lacks it.
pub(super) fn index<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    mount: &Digest,
    path: &str,
) -> Result<(), SecretsResult> {
    let links = chain(path);
    prefetch_chain(state, mount, &links);
    // Check every directory that changes before changing any.
    let mut changed = Vec::new();
    for (dir, entry) in &links {
        // A listed directory has no slot records yet: look in its list.
        let head = state.decoded(&keys::kv_dir(mount, dir), Head::decode);
        let present = match &head {
            Some(Head::Listed(names)) => names.binary_search(entry).is_ok(),
            _ => slot_of(state, mount, dir, entry).is_some(),
        };
        // The parents above hold their entries already.
        if present {
            break;
        }
        if head.as_ref().map_or(0, Head::count) >= MAX_DIR_ENTRIES {
            return Err(SecretsResult::refused(
                400,
                format!("directory {dir:?} holds {MAX_DIR_ENTRIES} entries, the limit"),
            ));
        }
        changed.push((dir, entry));
    }
    for (dir, entry) in changed {
        Dir::open(state, mount, dir).push(state, entry);
    }
    Ok(())
}

/// Removes a deleted secret from its directory, and empty directories from their parents.
pub(super) fn unindex<S: Snapshot>(state: &mut Overlay<'_, S>, mount: &Digest, path: &str) {
    let links = chain(path);
    prefetch_chain(state, mount, &links);
    for (dir, entry) in &links {
        let mut opened = Dir::open(state, mount, dir);
        // After `open`, a listed directory has its slot records (in this block's writes).
        if let Some(slot) = slot_of(state, mount, dir, entry) {
            opened.remove(state, entry, slot);
        }
        if opened.count > 0 {
            break;
        }
        // The directory is gone: remove its entry from the parent too.
    }
}

/// Whether every key of `keys` is known to the overlay; asks for those that are not, so that
/// a walk stops where the snapshot ends and [`crate::apply`] fetches the rest in one round.
pub(super) fn ready<S: Snapshot>(
    state: &Overlay<'_, S>,
    keys: impl IntoIterator<Item = Digest>,
) -> bool {
    let unknown: Vec<Digest> = keys.into_iter().filter(|k| !state.is_known(k)).collect();
    let ready = unknown.is_empty();
    state.prefetch(unknown);
    ready
}

/// The end of a directory, for a teardown that removes entries from the last slot back: no
/// entry moves, so the pages stay dense and only the last page is rewritten.
pub(super) struct Tail {
    /// Entries in the directory (0: it does not exist).
    pub(super) count: usize,
    /// The slot of `entries[0]`: the start of a page.
    start: usize,
    /// The entries of slots `start..count` (of a version 1 list: all of it, sorted).
    entries: Vec<String>,
    /// Whether the directory is a version 1 list.
    listed: bool,
}

impl Tail {
    /// The first slot this tail holds.
    pub(super) fn start(&self) -> usize {
        self.start
    }

    /// The entry in `slot`, from [`Tail::start`] to `count - 1`.
    pub(super) fn entry(&self, slot: usize) -> &str {
        &self.entries[slot - self.start]
    }
}

/// The last `n` (or more) entries of `dir` with its count; `None` while keys are still to be
/// fetched or a page is corrupt (recorded, so that the block fails).
pub(super) fn tail<S: Snapshot>(
    state: &Overlay<'_, S>,
    mount: &Digest,
    dir: &str,
    n: usize,
) -> Option<Tail> {
    let key = keys::kv_dir(mount, dir);
    // The first page with the head: all of a small directory in one round.
    if !ready(state, [key, keys::kv_dir_page(mount, dir, 0)]) {
        return None;
    }
    let count = match state.decoded(&key, Head::decode) {
        None => 0,
        Some(Head::Listed(names)) => {
            return Some(Tail {
                count: names.len(),
                start: 0,
                entries: names,
                listed: true,
            });
        }
        Some(Head::Paged(count)) => count,
    };
    let first = count.saturating_sub(n) / PAGE;
    let pages: Vec<Digest> = (first..count.div_ceil(PAGE))
        .map(|page| keys::kv_dir_page(mount, dir, page as u32))
        .collect();
    if !ready(state, pages.iter().copied()) {
        return None;
    }
    let mut entries = Vec::with_capacity(count - first * PAGE);
    for (page, page_key) in (first..).zip(&pages) {
        let names = state.decoded(page_key, decode_page).unwrap_or_default();
        let expected = (count - page * PAGE).min(PAGE);
        if names.len() != expected {
            state.corrupt(
                *page_key,
                StoredError::new(
                    "directory page",
                    format!(
                        "{} entries, the head of {dir:?} says {expected}",
                        names.len()
                    ),
                ),
            );
            return None;
        }
        entries.extend(names);
    }
    Some(Tail {
        count,
        start: first * PAGE,
        entries,
        listed: false,
    })
}

/// Cuts directory `dir` to its first `keep` entries (`tail.start() <= keep <= tail.count`):
/// the slot records of the entries cut, the pages left empty, the head when nothing is left.
pub(super) fn truncate<S: Snapshot>(
    state: &mut Overlay<'_, S>,
    mount: &Digest,
    dir: &str,
    tail: &Tail,
    keep: usize,
) {
    assert!(
        tail.start <= keep && keep <= tail.count,
        "a teardown cuts only entries it has read"
    );
    if keep == tail.count {
        return;
    }
    let head = keys::kv_dir(mount, dir);
    if tail.listed {
        if keep == 0 {
            state.delete(head);
        } else {
            state.put(head, super::records::encode_names(&tail.entries[..keep]));
        }
        return;
    }
    for entry in &tail.entries[keep - tail.start..] {
        state.delete(keys::kv_dir_slot(mount, dir, entry));
    }
    for page in keep.div_ceil(PAGE)..tail.count.div_ceil(PAGE) {
        state.delete(keys::kv_dir_page(mount, dir, page as u32));
    }
    if !keep.is_multiple_of(PAGE) {
        let page = keep / PAGE;
        let names = &tail.entries[page * PAGE - tail.start..keep - tail.start];
        state.put(
            keys::kv_dir_page(mount, dir, page as u32),
            encode_page(names),
        );
    }
    if keep == 0 {
        state.delete(head);
    } else {
        state.put(head, Head::encode(keep));
    }
}

#[cfg(test)]
pub(super) mod tests {
    use super::*;
    use crate::secrets::records::encode_names;
    use std::collections::BTreeMap;
    use welkin_types::hash_parts;

    /// An overlay over a whole state, with nothing written yet.
    pub(in crate::secrets) fn overlay(
        state: &BTreeMap<Digest, Vec<u8>>,
    ) -> Overlay<'_, BTreeMap<Digest, Vec<u8>>> {
        Overlay {
            snapshot: state,
            writes: BTreeMap::new(),
            missing: Default::default(),
            corrupt: Default::default(),
            schedule: Default::default(),
            shredded: Vec::new(),
            objects_removed: Vec::new(),
        }
    }

    /// Applies an overlay's writes to `state`.
    fn commit(state: &mut BTreeMap<Digest, Vec<u8>>, writes: BTreeMap<Digest, Option<Vec<u8>>>) {
        for (key, value) in writes {
            match value {
                Some(value) => state.insert(key, value),
                None => state.remove(&key),
            };
        }
    }

    #[test]
    fn chains_walk_from_the_leaf_to_the_top() {
        assert_eq!(chain("a"), vec![(String::new(), "a".to_string())]);
        assert_eq!(
            chain("a/b/c"),
            vec![
                ("a/b/".to_string(), "c".to_string()),
                ("a/".to_string(), "b/".to_string()),
                (String::new(), "a/".to_string()),
            ]
        );
    }

    #[test]
    fn lists_stay_sorted_and_complete_across_pages_as_entries_come_and_go() {
        let mount = hash_parts(&[b"mount"]);
        let mut state = BTreeMap::new();
        let mut expected = std::collections::BTreeSet::new();
        // 3 pages and a bit, inserted out of order.
        for n in (0..200).rev() {
            let mut o = overlay(&state);
            index(&mut o, &mount, &format!("d/{n:03}")).expect("indexed");
            expected.insert(format!("{n:03}"));
            let writes = std::mem::take(&mut o.writes);
            commit(&mut state, writes);
        }
        // Remove from the first page, the middle and the last slot.
        for n in [0, 5, 64, 100, 199, 150] {
            let mut o = overlay(&state);
            unindex(&mut o, &mount, &format!("d/{n:03}"));
            expected.remove(&format!("{n:03}"));
            let writes = std::mem::take(&mut o.writes);
            commit(&mut state, writes);
        }
        let o = overlay(&state);
        let want: Vec<String> = expected.iter().cloned().collect();
        assert_eq!(list(&o, &mount, "d/"), want);
        assert_eq!(list(&o, &mount, ""), vec!["d/".to_string()]);
        // Every slot record points at its entry.
        for (slot, name) in (0..).zip((0..4).flat_map(|p| {
            o.decoded(&keys::kv_dir_page(&mount, "d/", p), decode_page)
                .unwrap_or_default()
        })) {
            assert_eq!(slot_of(&o, &mount, "d/", &name), Some(slot), "{name}");
        }
        assert!(o.corrupt.borrow().is_none());
    }

    #[test]
    fn a_new_entry_rewrites_one_page_whatever_the_directory_holds() {
        let mount = hash_parts(&[b"mount"]);
        let mut state = BTreeMap::new();
        let mut written = Vec::new();
        for n in 0..1_000 {
            let mut o = overlay(&state);
            index(&mut o, &mount, &format!("d/{n:04}")).expect("indexed");
            let writes = std::mem::take(&mut o.writes);
            written.push(writes.values().flatten().map(Vec::len).sum::<usize>());
            commit(&mut state, writes);
        }
        // The first entry also writes the parent's; after that, at most a page of 64 names of
        // 4 bytes, the slot record and the head (the version 1 list wrote ~6 KB by now).
        let largest = written[1..].iter().max().copied().unwrap_or(0);
        assert!(
            largest <= 3 + 64 * 6 + 5 + 5,
            "{largest} bytes for one entry"
        );
    }

    #[test]
    fn a_version_1_directory_is_listed_and_converted_when_it_changes() {
        let mount = hash_parts(&[b"mount"]);
        let mut state = BTreeMap::new();
        let old: Vec<String> = ["a", "b/", "c"].iter().map(|s| s.to_string()).collect();
        state.insert(keys::kv_dir(&mount, ""), encode_names(&old));
        state.insert(keys::kv_dir(&mount, "b/"), encode_names(&["x".to_string()]));
        assert_eq!(list(&overlay(&state), &mount, ""), old);
        let mut o = overlay(&state);
        // Present in the old list: nothing to add, and nothing converted.
        index(&mut o, &mount, "b/x").expect("indexed");
        assert!(o.writes.is_empty());
        index(&mut o, &mount, "aa").expect("indexed");
        let writes = std::mem::take(&mut o.writes);
        commit(&mut state, writes);
        assert_eq!(list(&overlay(&state), &mount, ""), ["a", "aa", "b/", "c"]);
        let mut o = overlay(&state);
        unindex(&mut o, &mount, "b/x");
        let writes = std::mem::take(&mut o.writes);
        commit(&mut state, writes);
        let o = overlay(&state);
        assert_eq!(list(&o, &mount, ""), ["a", "aa", "c"]);
        assert!(list(&o, &mount, "b/").is_empty());
        assert!(o.corrupt.borrow().is_none());
    }

    #[test]
    fn a_short_page_is_corruption() {
        let head = Head::Paged(3);
        let page = encode_page(&["a".into(), "b".into()]);
        assert!(entries(head.clone(), [Some(page.as_slice())]).is_err());
        assert!(entries(head, [None]).is_err());
    }

    /// The stored encodings are consensus: a change here is a state-format change.
    #[test]
    fn directory_records_are_frozen() {
        let all = [
            Head::encode(65),
            encode_page(&["a".into(), "b/".into()]),
            encode_slot(64),
        ]
        .concat();
        assert_eq!(
            hex::encode(hash_parts(&[&all])),
            "cbaab7d4266967603dfb65695a9285823d122a8aa38eaded4596f9f61c778707",
            "a directory record encoding changed: bump its version, then update the fixture"
        );
    }
}
