//! Hostile or damaged shard files: opening never panics, never allocates beyond the format's
//! bounds and never indexes a file that fails its checks.

use proptest::prelude::*;

use super::*;
use crate::header::{FORMAT_VERSION, HEADER_LEN, MAGIC, checksum};

const ID: ShardId = ShardId {
    object: [0x5a; 32],
    index: 1,
};

/// Opens a store whose shards directory holds exactly `bytes` under `ID`'s name, and returns
/// how many shards it indexed and quarantined.
fn open_with(bytes: &[u8]) -> (u64, u64) {
    let dir = tempfile::tempdir().expect("tempdir");
    fs::create_dir_all(dir.path().join("shards")).expect("mkdir");
    fs::write(shard_path(dir.path(), &ID), bytes).expect("write");
    let store = open(dir.path());
    let report = store.opened();
    assert_eq!(store.list().len() as u64, report.shards);
    (report.shards, report.quarantined)
}

/// A header with any field values (not only valid ones) and a correct checksum, so the
/// checks after the checksum are reached.
fn raw_header(id: ShardId, count: u32, block_len: u32, final_len: u32, root: [u8; 32]) -> Vec<u8> {
    let mut out = vec![0u8; HEADER_LEN];
    out[0..8].copy_from_slice(&MAGIC);
    out[8..10].copy_from_slice(&FORMAT_VERSION.to_le_bytes());
    out[12..44].copy_from_slice(&id.object);
    out[44..46].copy_from_slice(&id.index.to_le_bytes());
    out[48..52].copy_from_slice(&count.to_le_bytes());
    out[52..56].copy_from_slice(&block_len.to_le_bytes());
    out[56..60].copy_from_slice(&final_len.to_le_bytes());
    out[64..96].copy_from_slice(&root);
    let sum = checksum(&out[..HEADER_LEN - 8]);
    out[HEADER_LEN - 8..].copy_from_slice(&sum);
    out
}

/// The bytes of a valid shard file under `ID`.
fn valid_file() -> Vec<u8> {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = open(dir.path());
    let shard = Shard::new(0x5a, 1, 3, 128, 64);
    shard.put(&store);
    fs::read(shard_path(dir.path(), &ID)).expect("read")
}

#[test]
fn the_valid_file_is_indexed() {
    assert_eq!(open_with(&valid_file()), (1, 0));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn arbitrary_bytes_are_never_indexed(bytes in proptest::collection::vec(any::<u8>(), 0..1024)) {
        prop_assert_eq!(open_with(&bytes), (0, 1));
    }

    #[test]
    fn arbitrary_headers_with_valid_checksums_are_never_indexed(
        count in prop_oneof![0u32..8, any::<u32>()],
        block_len in prop_oneof![Just(64u32), Just(128), any::<u32>()],
        final_len in prop_oneof![Just(64u32), any::<u32>()],
        root in any::<[u8; 32]>(),
        tail in proptest::collection::vec(any::<u8>(), 0..2048),
    ) {
        let mut bytes = raw_header(ID, count, block_len, final_len, root);
        bytes.extend_from_slice(&tail);
        prop_assert_eq!(open_with(&bytes), (0, 1));
    }

    #[test]
    fn a_flipped_header_or_hash_list_byte_is_quarantined(at in 0usize..HEADER_LEN + 3 * 32, bit in 0u8..8) {
        let mut bytes = valid_file();
        bytes[at] ^= 1 << bit;
        prop_assert_eq!(open_with(&bytes), (0, 1));
    }
}
