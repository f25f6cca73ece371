//! Threads sharing one store: accounting holds and a replaced shard is never blamed.

use std::{
    sync::{
        Barrier,
        atomic::{AtomicBool, Ordering},
    },
    thread,
};

use super::*;
use crate::{CreateError, ReadError, ShardWriter};

#[test]
fn store_and_writer_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<ShardStore>();
    send_sync::<ShardWriter>();
}

#[test]
fn racing_writers_never_overcommit_capacity() {
    let dir = tempfile::tempdir().expect("tempdir");
    let shards: Vec<Shard> = (50..58).map(Shard::small).collect();
    let store = ShardStore::open(dir.path(), limits(3 * shards[0].file_len())).expect("open");
    let barrier = Barrier::new(shards.len());
    let outcomes: Vec<Result<(), CreateError>> = thread::scope(|scope| {
        let handles: Vec<_> = shards
            .iter()
            .map(|shard| {
                let (store, barrier) = (&store, &barrier);
                scope.spawn(move || {
                    barrier.wait();
                    let hashes = shard.hashes.clone();
                    let mut writer = store.create(shard.id, shard.root, 128, 64, hashes)?;
                    for block in &shard.blocks {
                        writer.write_block(block).expect("block");
                    }
                    writer.finish().expect("finish");
                    Ok(())
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|handle| handle.join().expect("thread"))
            .collect()
    });
    let stored = outcomes.iter().filter(|outcome| outcome.is_ok()).count();
    assert_eq!(stored, 3);
    for outcome in outcomes.iter().filter_map(|outcome| outcome.as_ref().err()) {
        assert!(matches!(outcome, CreateError::NoSpace { .. }), "{outcome}");
    }
    let usage = store.usage();
    assert_eq!(
        (usage.used, usage.reserved, usage.shards),
        (3 * shards[0].file_len(), 0, 3)
    );
    assert_eq!(names(dir.path(), "shards").len(), 3);
}

#[test]
fn readers_of_a_shard_replaced_under_them_never_blame_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    // Two versions of one shard with different shapes, so a read of one through the other's
    // geometry fails its hash check.
    let first = Shard::new(60, 0, 3, 128, 64);
    let second = Shard::new(61, 0, 5, 64, 64);
    let second = Shard {
        id: first.id,
        ..second
    };
    first.put(&store);
    let done = AtomicBool::new(false);
    thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| {
                while !done.load(Ordering::Relaxed) {
                    match store.read_block(&first.id, 0) {
                        Ok(block) => {
                            assert!(block == first.blocks[0] || block == second.blocks[0]);
                        }
                        Err(ReadError::NotFound { .. }) => {}
                        Err(error) => panic!("unexpected {error}"),
                    }
                }
            });
        }
        for round in 0..50 {
            store.delete(&first.id).expect("delete");
            let next = if round % 2 == 0 { &second } else { &first };
            next.put(&store);
        }
        done.store(true, Ordering::Relaxed);
    });
    assert!(store.corrupt_shards().is_empty());
    assert!(names(dir.path(), "quarantine").is_empty());
}

/// The deterministic core of the race above: a reader that looked a shard up before it was
/// replaced cannot quarantine the replacement, while a reader of the current one can.
#[test]
fn only_the_generation_that_was_read_can_be_quarantined() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::small(62);
    shard.put(&store);
    let stale = store.inner.entry(&shard.id).expect("stored").generation;
    store.delete(&shard.id).expect("delete");
    shard.put(&store);
    assert!(!store.inner.mark_corrupt(&shard.id, stale));
    assert!(store.contains(&shard.id) && store.corrupt_shards().is_empty());
    assert!(names(dir.path(), "quarantine").is_empty());

    let current = store.inner.entry(&shard.id).expect("stored").generation;
    assert!(store.inner.mark_corrupt(&shard.id, current));
    assert_eq!(store.corrupt_shards(), vec![shard.id]);
    assert_eq!(names(dir.path(), "quarantine").len(), 1);
}
