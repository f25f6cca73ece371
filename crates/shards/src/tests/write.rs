//! Writing: refusals, reservations, and nothing left behind.

use super::*;
use crate::{CreateError, FinishError, WriteError};

#[test]
fn round_trip_survives_reopening() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = Shard::small(1);
    {
        let store = open(dir.path());
        shard.put(&store);
        for (segment, block) in shard.blocks.iter().enumerate() {
            assert_eq!(
                &store.read_block(&shard.id, segment as u32).expect("read"),
                block
            );
        }
        assert_eq!(store.block_hashes(&shard.id).expect("hashes"), shard.hashes);
        let info = store.info(&shard.id).expect("info");
        assert_eq!(
            (info.root, info.block_count, info.file_bytes),
            (shard.root, 3, shard.file_len())
        );
        assert_eq!(store.list(), vec![shard.id]);
        let usage = store.usage();
        assert_eq!(
            (usage.used, usage.reserved, usage.shards),
            (shard.file_len(), 0, 1)
        );
        assert!(names(dir.path(), "tmp").is_empty());
    }
    let store = open(dir.path());
    assert_eq!(store.opened().shards, 1);
    assert_eq!(store.opened().bytes, shard.file_len());
    assert!(store.contains(&shard.id));
    assert_eq!(
        store.read_block(&shard.id, 2).expect("read"),
        shard.blocks[2]
    );
}

#[test]
fn wrong_blocks_are_refused_by_index_and_nothing_is_left() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::small(2);
    let mut writer = shard.create(&store);
    writer.write_block(&shard.blocks[0]).expect("block 0");

    let short = writer
        .write_block(&shard.blocks[1][..64])
        .expect_err("short block");
    assert!(matches!(
        short,
        WriteError::Length {
            segment: 1,
            expected: 128,
            actual: 64,
            ..
        }
    ));
    assert!(
        short.to_string().starts_with("block 1 of shard "),
        "{short}"
    );
    let mut flipped = shard.blocks[1].clone();
    flipped[5] ^= 1;
    let wrong = writer.write_block(&flipped).expect_err("wrong hash");
    assert!(
        matches!(wrong, WriteError::Hash { segment: 1, .. }),
        "{wrong}"
    );
    // A refused block is not written: the right one is still accepted in its place.
    writer.write_block(&shard.blocks[1]).expect("block 1");
    assert_eq!(writer.blocks_written(), 2);
    assert_eq!(store.usage().reserved, shard.file_len());
    drop(writer);

    assert!(names(dir.path(), "tmp").is_empty());
    assert!(names(dir.path(), "shards").is_empty());
    assert_eq!(store.usage().reserved, 0);
    assert!(!store.contains(&shard.id));
}

#[test]
fn dropping_mid_write_removes_the_file_and_frees_the_reservation() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::small(3);
    let mut writer = shard.create(&store);
    writer.write_block(&shard.blocks[0]).expect("block 0");
    assert_eq!(names(dir.path(), "tmp"), vec![shard.id.temp_name()]);
    assert_eq!(store.usage().reserved, shard.file_len());
    drop(writer);
    assert!(names(dir.path(), "tmp").is_empty());
    assert_eq!(store.usage().reserved, 0);
    // The id is free again.
    shard.put(&store);
    assert!(store.contains(&shard.id));
}

#[test]
fn finishing_early_or_writing_too_much_is_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::small(4);
    let mut writer = shard.create(&store);
    writer.write_block(&shard.blocks[0]).expect("block 0");
    let early = writer.finish().expect_err("incomplete");
    assert!(matches!(
        early,
        FinishError::Incomplete {
            received: 1,
            expected: 3,
            ..
        }
    ));
    assert!(names(dir.path(), "tmp").is_empty() && names(dir.path(), "shards").is_empty());
    assert_eq!(store.usage().reserved, 0);

    let mut writer = shard.create(&store);
    for block in &shard.blocks {
        writer.write_block(block).expect("block");
    }
    let extra = writer
        .write_block(&shard.blocks[2])
        .expect_err("extra block");
    assert!(matches!(extra, WriteError::TooManyBlocks { count: 3, .. }));
    writer.finish().expect("finish");
}

#[test]
fn create_refuses_bad_roots_shapes_duplicates_and_excess_writers() {
    let dir = tempfile::tempdir().expect("tempdir");
    let limits = StoreLimits {
        max_open_writers: 2.try_into().expect("nonzero"),
        ..StoreLimits::with_capacity(1 << 20)
    };
    let store = ShardStore::open(dir.path(), limits).expect("open");
    let shard = Shard::small(5);
    let bad_root = store.create(shard.id, [0; 32], 128, 64, shard.hashes.clone());
    assert!(matches!(bad_root, Err(CreateError::RootMismatch(_))));
    let unaligned = store.create(shard.id, shard.root, 100, 64, shard.hashes.clone());
    let unaligned = unaligned.expect_err("unaligned");
    assert_eq!(
        unaligned.to_string(),
        format!(
            "shard {}: block length 100 is not a nonzero multiple of 64 up to 67108864",
            shard.id
        )
    );
    let empty = store.create(shard.id, shard.root, 128, 64, Vec::new());
    assert!(matches!(empty, Err(CreateError::Geometry { .. })));

    let _first = shard.create(&store);
    let duplicate = store.create(shard.id, shard.root, 128, 64, shard.hashes.clone());
    assert!(matches!(duplicate, Err(CreateError::Duplicate { .. })));
    let _second = Shard::small(6).create(&store);
    let third = Shard::small(7);
    let refused = store.create(third.id, third.root, 128, 64, third.hashes.clone());
    let refused = refused.expect_err("third writer");
    assert_eq!(
        refused.to_string(),
        "too many shards being written: the limit is 2"
    );
    assert_eq!(names(dir.path(), "tmp").len(), 2);
}

#[test]
fn shards_over_the_size_limit_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = Shard::small(8);
    let limits = StoreLimits {
        max_shard_bytes: (shard.file_len() - 1).try_into().expect("nonzero"),
        ..StoreLimits::with_capacity(1 << 20)
    };
    let store = ShardStore::open(dir.path(), limits).expect("open");
    let refused = store.create(shard.id, shard.root, 128, 64, shard.hashes.clone());
    let expected = (shard.file_len(), shard.file_len() - 1);
    assert!(
        matches!(refused, Err(CreateError::TooLarge { bytes, max, .. }) if (bytes, max) == expected)
    );
}

#[test]
fn capacity_refusal_says_how_much_is_free() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shard = Shard::small(9);
    let capacity = shard.file_len() + 10;
    let store = ShardStore::open(dir.path(), limits(capacity)).expect("open");
    // A writer's reservation counts before it finishes.
    let writer = shard.create(&store);
    let other = Shard::small(10);
    let refused = store.create(other.id, other.root, 128, 64, other.hashes.clone());
    let refused = refused.expect_err("no space");
    assert!(
        matches!(refused, CreateError::NoSpace { needed, free: 10, .. } if needed == other.file_len())
    );
    assert_eq!(
        refused.to_string(),
        format!(
            "shard {} needs {} bytes but only 10 are free",
            other.id,
            other.file_len()
        )
    );
    assert_eq!(store.usage().free(), 10);
    drop(writer);
    assert_eq!(store.usage().free(), capacity);
    other.put(&store);
}

#[test]
fn a_shard_without_a_hash_list_is_checked_against_its_root_at_finish() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::small(11);
    let start = |store: &ShardStore| {
        store
            .create_without_hashes(shard.id, shard.root, 3, 128, 64)
            .expect("create")
    };
    let mut writer = start(&store);
    for block in &shard.blocks {
        writer.write_block(block).expect("block");
    }
    writer.finish().expect("finish");
    assert_eq!(store.block_hashes(&shard.id).expect("hashes"), shard.hashes);
    assert_eq!(
        store.read_block(&shard.id, 1).expect("read"),
        shard.blocks[1]
    );
    store.delete(&shard.id).expect("delete");

    let mut writer = start(&store);
    let short = writer
        .write_block(&shard.blocks[2])
        .expect_err("a final block first");
    assert!(
        matches!(
            short,
            WriteError::Length {
                segment: 0,
                actual: 64,
                ..
            }
        ),
        "{short}"
    );
    let mut flipped = shard.blocks[1].clone();
    flipped[0] ^= 1;
    for block in [&shard.blocks[0], &flipped, &shard.blocks[2]] {
        writer
            .write_block(block)
            .expect("only lengths are checked per block");
    }
    let refused = writer.finish().expect_err("wrong root");
    assert!(matches!(refused, FinishError::RootMismatch(_)), "{refused}");
    assert!(
        refused
            .to_string()
            .starts_with(&format!("block hashes of shard {} form root ", shard.id))
    );
    assert!(names(dir.path(), "tmp").is_empty() && names(dir.path(), "shards").is_empty());
    assert_eq!(store.usage().reserved, 0);
    assert!(!store.contains(&shard.id));
}
