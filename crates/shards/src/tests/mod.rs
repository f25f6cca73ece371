//! Behaviour of the whole store on a real filesystem (temporary directories).

mod concurrent;
mod fuzz;
mod open;
mod read;
mod write;

use std::{
    fs,
    path::{Path, PathBuf},
};

use crate::{
    ShardId, ShardStore, StoreLimits,
    hash::{block_hash, shard_root},
};

/// A shard's blocks and what its manifest would say of it.
struct Shard {
    id: ShardId,
    root: [u8; 32],
    block_len: u32,
    final_block_len: u32,
    blocks: Vec<Vec<u8>>,
    hashes: Vec<[u8; 32]>,
}

impl Shard {
    /// `count` blocks of `block_len` bytes, the last of `final_block_len`, with contents
    /// that differ per object, index and block.
    fn new(object: u8, index: u16, count: usize, block_len: u32, final_block_len: u32) -> Self {
        let blocks: Vec<Vec<u8>> = (0..count)
            .map(|segment| {
                let len = if segment + 1 == count {
                    final_block_len
                } else {
                    block_len
                };
                (0..len as usize)
                    .map(|at| (at as u8) ^ object ^ (index as u8) ^ (segment as u8).rotate_left(3))
                    .collect()
            })
            .collect();
        let hashes: Vec<[u8; 32]> = blocks.iter().map(|block| block_hash(block)).collect();
        let root = shard_root(&hashes).expect("at least one block");
        let id = ShardId {
            object: [object; 32],
            index,
        };
        Self {
            id,
            root,
            block_len,
            final_block_len,
            blocks,
            hashes,
        }
    }

    /// A three-block shard: 128, 128 and 64 bytes.
    fn small(object: u8) -> Self {
        Self::new(object, 0, 3, 128, 64)
    }

    fn file_len(&self) -> u64 {
        128 + 32 * self.blocks.len() as u64
            + self.blocks.iter().map(|b| b.len() as u64).sum::<u64>()
    }

    fn create(&self, store: &ShardStore) -> crate::ShardWriter {
        let hashes = self.hashes.clone();
        store
            .create(
                self.id,
                self.root,
                self.block_len,
                self.final_block_len,
                hashes,
            )
            .expect("create")
    }

    /// Writes and finishes the whole shard.
    fn put(&self, store: &ShardStore) {
        let mut writer = self.create(store);
        for block in &self.blocks {
            writer.write_block(block).expect("write block");
        }
        assert_eq!(writer.finish().expect("finish"), self.id);
    }
}

fn limits(capacity_bytes: u64) -> StoreLimits {
    StoreLimits::with_capacity(capacity_bytes)
}

fn open(dir: &Path) -> ShardStore {
    ShardStore::open(dir, limits(1 << 30)).expect("open")
}

/// The names in one of the store's directories.
fn names(dir: &Path, sub: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(dir.join(sub))
        .expect("read dir")
        .map(|entry| {
            entry
                .expect("entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    names.sort();
    names
}

fn shard_path(dir: &Path, id: &ShardId) -> PathBuf {
    dir.join("shards").join(id.file_name())
}
