//! Reading, deleting and collecting: corrupt data is never returned.

use std::{fs::OpenOptions, os::unix::fs::FileExt};

use super::*;
use crate::{DeleteError, ReadError};

/// Flips one bit of the file at `offset`.
fn flip(path: &Path, offset: u64) {
    let file = OpenOptions::new()
        .read(true)
        .write(true)
        .open(path)
        .expect("open shard file");
    let mut byte = [0u8];
    file.read_exact_at(&mut byte, offset).expect("read byte");
    file.write_all_at(&[byte[0] ^ 0x10], offset)
        .expect("write byte");
}

#[test]
fn a_flipped_block_byte_is_detected_and_never_returned() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::small(20);
    let other = Shard::small(21);
    shard.put(&store);
    other.put(&store);
    // Block 1 starts after the header, three hashes and block 0.
    flip(&shard_path(dir.path(), &shard.id), 128 + 3 * 32 + 128 + 17);

    assert_eq!(
        store.read_block(&shard.id, 0).expect("block 0 is intact"),
        shard.blocks[0]
    );
    let corrupt = store.read_block(&shard.id, 1).expect_err("corrupt block");
    assert!(matches!(corrupt, ReadError::Corrupt { segment: 1, id } if id == shard.id));
    assert_eq!(store.corrupt_shards(), vec![shard.id]);
    assert!(!store.contains(&shard.id));
    let again = store.read_block(&shard.id, 0).expect_err("quarantined");
    assert!(matches!(again, ReadError::Quarantined { .. }), "{again}");
    assert_eq!(store.usage().used, other.file_len());
    assert!(!shard_path(dir.path(), &shard.id).exists());
    let quarantined = names(dir.path(), "quarantine");
    assert_eq!(quarantined.len(), 1);
    assert!(
        quarantined[0].starts_with(&shard.id.file_name()),
        "{quarantined:?}"
    );
    // The other shard is unaffected, and repair can write the shard again.
    assert_eq!(
        store.read_block(&other.id, 1).expect("other"),
        other.blocks[1]
    );
    shard.put(&store);
    assert!(store.corrupt_shards().is_empty());
    assert_eq!(
        store.read_block(&shard.id, 1).expect("repaired"),
        shard.blocks[1]
    );
}

#[test]
fn a_corrupt_hash_list_or_missing_file_is_detected() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let listed = Shard::small(22);
    let missing = Shard::small(23);
    listed.put(&store);
    missing.put(&store);
    flip(&shard_path(dir.path(), &listed.id), 128 + 32 + 3);
    let hashes = store
        .block_hashes(&listed.id)
        .expect_err("corrupt hash list");
    assert!(
        matches!(hashes, ReadError::CorruptHashes { .. }),
        "{hashes}"
    );

    fs::remove_file(shard_path(dir.path(), &missing.id)).expect("remove");
    let gone = store.read_block(&missing.id, 2).expect_err("missing file");
    assert!(
        matches!(gone, ReadError::Corrupt { segment: 2, .. }),
        "{gone}"
    );
    assert_eq!(store.corrupt_shards().len(), 2);
    assert_eq!(store.usage().shards, 0);
}

#[test]
fn out_of_range_and_unknown_shards_are_named() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::small(24);
    shard.put(&store);
    let range = store.read_block(&shard.id, 3).expect_err("out of range");
    assert_eq!(
        range.to_string(),
        format!(
            "segment 3 is out of range for shard {} of 3 blocks",
            shard.id
        )
    );
    let unknown = ShardId {
        object: [0xee; 32],
        index: 4,
    };
    let missing = store.read_block(&unknown, 0).expect_err("unknown");
    assert_eq!(
        missing.to_string(),
        format!("shard {}.4 is not stored", "ee".repeat(32))
    );
    assert!(store.corrupt_shards().is_empty());
}

#[test]
fn delete_removes_the_file_and_frees_its_bytes() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::small(25);
    shard.put(&store);
    assert_eq!(store.delete(&shard.id).expect("delete"), shard.file_len());
    assert!(!shard_path(dir.path(), &shard.id).exists());
    assert_eq!(store.usage().used, 0);
    assert!(matches!(
        store.delete(&shard.id),
        Err(DeleteError::NotFound { .. })
    ));
    assert!(matches!(
        store.read_block(&shard.id, 0),
        Err(ReadError::NotFound { .. })
    ));
    drop(store);
    assert_eq!(open(dir.path()).opened().shards, 0);
}

#[test]
fn retain_collects_shards_no_manifest_names() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shards: Vec<Shard> = (30..34).map(Shard::small).collect();
    for shard in &shards {
        shard.put(&store);
    }
    // A quarantined shard no manifest names is forgotten too.
    flip(&shard_path(dir.path(), &shards[3].id), 128 + 3 * 32);
    assert!(store.read_block(&shards[3].id, 0).is_err());
    let named = [shards[0].id, shards[2].id];
    let report = store.retain(|id| named.contains(id));
    assert_eq!((report.examined, report.removed, report.failed), (3, 1, 0));
    assert_eq!(report.freed_bytes, shards[1].file_len());
    assert_eq!(store.list(), named.to_vec());
    assert!(store.corrupt_shards().is_empty());
    assert_eq!(names(dir.path(), "shards").len(), 2);
    assert_eq!(store.usage().used, 2 * shards[0].file_len());
}
