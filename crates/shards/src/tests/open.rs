//! Opening after a crash: temporaries removed, damaged files quarantined, good ones indexed.

use super::*;
use crate::OpenError;

#[test]
fn open_after_a_crash_cleans_up_and_quarantines() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = Shard::small(40);
    let truncated = Shard::small(41);
    let interrupted = Shard::small(42);
    {
        let store = open(dir.path());
        good.put(&store);
        truncated.put(&store);
        let mut writer = interrupted.create(&store);
        writer.write_block(&interrupted.blocks[0]).expect("block 0");
        // A crash mid-write leaves the temporary file as it is now.
        let tmp = dir.path().join("tmp").join(interrupted.id.temp_name());
        let partial = fs::read(&tmp).expect("read temporary file");
        drop(writer);
        fs::write(&tmp, partial).expect("leave temporary file");
    }
    let path = shard_path(dir.path(), &truncated.id);
    let file = fs::OpenOptions::new()
        .write(true)
        .open(&path)
        .expect("open");
    file.set_len(truncated.file_len() - 64).expect("truncate");
    fs::write(dir.path().join("shards").join("notes.txt"), b"stray").expect("stray file");

    let store = open(dir.path());
    let report = store.opened();
    assert_eq!((report.shards, report.bytes), (1, good.file_len()));
    assert_eq!(report.removed_temporaries, 1);
    assert_eq!(report.removed_temporary_bytes, 128 + 3 * 32 + 128);
    assert_eq!(report.quarantined, 2);
    let reasons: Vec<&str> = report
        .quarantined_files
        .iter()
        .map(|q| q.reason.as_str())
        .collect();
    let short = format!(
        "file is {} bytes but its header implies {}",
        truncated.file_len() - 64,
        truncated.file_len()
    );
    assert!(reasons.contains(&short.as_str()), "{reasons:?}");
    assert!(
        reasons.contains(&"file name \"notes.txt\" does not name a shard"),
        "{reasons:?}"
    );
    assert!(
        report
            .quarantined_files
            .iter()
            .all(|q| q.moved_to.as_ref().is_some_and(|p| p.exists()))
    );

    assert!(names(dir.path(), "tmp").is_empty());
    assert_eq!(names(dir.path(), "shards"), vec![good.id.file_name()]);
    assert_eq!(names(dir.path(), "quarantine").len(), 2);
    assert_eq!(store.list(), vec![good.id]);
    assert_eq!(store.corrupt_shards(), vec![truncated.id]);
    assert_eq!(store.usage().used, good.file_len());
    assert_eq!(store.read_block(&good.id, 1).expect("good"), good.blocks[1]);
    assert!(matches!(
        store.read_block(&truncated.id, 0),
        Err(crate::ReadError::Quarantined { .. })
    ));
}

#[test]
fn a_file_under_another_shards_name_is_quarantined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = Shard::small(43);
    shard.put(&open(dir.path()));
    let renamed = ShardId {
        object: shard.id.object,
        index: 9,
    };
    fs::rename(
        shard_path(dir.path(), &shard.id),
        shard_path(dir.path(), &renamed),
    )
    .expect("mv");
    let store = open(dir.path());
    assert_eq!(store.opened().shards, 0);
    let reason = &store.opened().quarantined_files[0].reason;
    assert_eq!(
        reason,
        &format!(
            "header names shard {} but the file is named for {renamed}",
            shard.id
        )
    );
}

#[test]
fn a_second_store_cannot_open_the_same_directory() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let second = ShardStore::open(dir.path(), limits(1 << 20));
    assert!(matches!(second, Err(OpenError::Locked { .. })));
    drop(store);
    ShardStore::open(dir.path(), limits(1 << 20)).expect("open after the first closed");
}

#[test]
fn a_lowered_capacity_keeps_shards_and_admits_nothing_new() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = Shard::small(44);
    shard.put(&open(dir.path()));
    let store = ShardStore::open(dir.path(), limits(100)).expect("open");
    assert!(store.contains(&shard.id));
    assert_eq!(store.usage().free(), 0);
    let other = Shard::small(45);
    let refused = store.create(other.id, other.root, 128, 64, other.hashes.clone());
    assert!(matches!(
        refused,
        Err(crate::CreateError::NoSpace { free: 0, .. })
    ));
}
