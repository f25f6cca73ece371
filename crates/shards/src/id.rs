//! Shard identifiers and the file names they are stored under.

use std::fmt;

/// Suffix of a stored shard's file name.
const SHARD_SUFFIX: &str = ".shard";
/// Suffix of a shard file still being written.
const TEMP_SUFFIX: &str = ".tmp";

/// One shard of one object: block `index` of every segment of `object`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct ShardId {
    /// The object's content id, as its manifest names it.
    pub object: [u8; 32],
    /// Which of the object's k + m shards.
    pub index: u16,
}

impl ShardId {
    /// The file name a stored shard has: `<object as 64 lowercase hex digits>.<index>.shard`.
    pub(crate) fn file_name(&self) -> String {
        format!("{self}{SHARD_SUFFIX}")
    }

    /// The file name of this shard while it is written.
    pub(crate) fn temp_name(&self) -> String {
        format!("{self}{TEMP_SUFFIX}")
    }

    /// The shard a stored file name names, if it is exactly one [`ShardId::file_name`] makes.
    /// Only the canonical spelling is accepted, so two names never alias one shard.
    pub(crate) fn from_file_name(name: &str) -> Option<Self> {
        let stem = name.strip_suffix(SHARD_SUFFIX)?;
        let (object, index) = stem.split_once('.')?;
        let mut id = ShardId {
            object: [0; 32],
            index: index.parse().ok()?,
        };
        hex::decode_to_slice(object, &mut id.object).ok()?;
        (id.file_name() == name).then_some(id)
    }
}

/// `<object hex>.<index>`, the form errors and file names use.
impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", hex::encode(self.object), self.index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn file_names_round_trip_and_only_canonical_ones_parse() {
        let id = ShardId {
            object: [0xab; 32],
            index: 7,
        };
        let name = id.file_name();
        assert_eq!(name, format!("{}.7.shard", "ab".repeat(32)));
        assert_eq!(ShardId::from_file_name(&name), Some(id));
        let aliases = [
            format!("{}.07.shard", "ab".repeat(32)),
            format!("{}.+7.shard", "ab".repeat(32)),
            format!("{}.7.shard", "AB".repeat(32)),
            format!("{}.7.shard", "ab".repeat(31)),
            format!("{}.70000.shard", "ab".repeat(32)),
            format!("{}.7.tmp", "ab".repeat(32)),
            id.temp_name(),
        ];
        for alias in aliases {
            assert_eq!(ShardId::from_file_name(&alias), None, "{alias}");
        }
    }
}
