//! RFC 6962 section 2.1 hashing with SHA-256.
//!
//! A leaf is hashed as `SHA-256(0x00 || entry)` and an interior node as
//! `SHA-256(0x01 || left || right)`. The two prefixes keep leaves and interior nodes in separate
//! domains, so nobody can present the concatenation of two child hashes as a leaf entry (a
//! second-preimage attack on the tree).
//!
//! The Merkle Tree Hash of `n` leaves is defined recursively: the empty tree hashes to
//! `SHA-256("")`, one leaf to its leaf hash, and `n > 1` leaves to the node hash of the first
//! `k` and the remaining `n - k` leaves, where `k` is the largest power of two smaller than `n`.
//! That split makes every left subtree perfect, so a subtree's hash never changes once it is
//! full, and appending only creates new hashes along the right edge.

use std::fmt;

use sha2::{Digest, Sha256};

/// Length in bytes of every hash in the tree (SHA-256).
pub const HASH_SIZE: usize = 32;

/// A SHA-256 digest: a leaf hash, an interior node hash or a tree root.
pub type Hash = [u8; HASH_SIZE];

/// Domain-separation prefix for leaf hashes (RFC 6962 section 2.1).
const LEAF_PREFIX: u8 = 0x00;
/// Domain-separation prefix for interior node hashes (RFC 6962 section 2.1).
const NODE_PREFIX: u8 = 0x01;

/// Hashes one log entry into a leaf: `SHA-256(0x00 || entry)`.
pub fn leaf_hash(entry: &[u8]) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([LEAF_PREFIX]);
    hasher.update(entry);
    hasher.finalize().into()
}

/// Hashes two child hashes into their parent: `SHA-256(0x01 || left || right)`.
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    let mut hasher = Sha256::new();
    hasher.update([NODE_PREFIX]);
    hasher.update(left);
    hasher.update(right);
    hasher.finalize().into()
}

/// The root of the empty tree, `SHA-256("")`, as RFC 6962 defines `MTH({})`.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Computes the Merkle Tree Hash of a list of leaf hashes with the RFC 6962 split rule.
///
/// This needs every leaf in memory and costs one node hash per interior node; use
/// [`crate::MemoryTree`] or [`crate::root_at`] to reuse cached subtree hashes instead.
pub fn root(leaf_hashes: &[Hash]) -> Hash {
    match leaf_hashes {
        [] => empty_root(),
        [leaf] => *leaf,
        _ => {
            // A slice length always fits in u64, and the split point is below the length.
            let k = split_point(leaf_hashes.len() as u64) as usize;
            node_hash(&root(&leaf_hashes[..k]), &root(&leaf_hashes[k..]))
        }
    }
}

/// The RFC 6962 split point for `n >= 2` leaves: the largest power of two strictly below `n`.
pub(crate) fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2, "only trees of two or more leaves are split");
    1 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// Displays a hash as lowercase hex, for error messages.
pub(crate) struct Hex<'a>(pub(crate) &'a Hash);

impl fmt::Display for Hex<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for byte in self.0 {
            write!(f, "{byte:02x}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::reference;

    /// Decodes a 64-character hex string into a hash.
    pub(crate) fn h(hex: &str) -> Hash {
        assert_eq!(hex.len(), 64, "{hex}");
        let mut out = [0u8; 32];
        for (i, byte) in out.iter_mut().enumerate() {
            *byte = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex digit");
        }
        out
    }

    /// The eight entries behind the RFC 6962 test vectors used by the certificate transparency
    /// and transparency-dev test suites.
    pub(crate) fn ct_entries() -> Vec<Vec<u8>> {
        vec![
            vec![],
            vec![0x00],
            vec![0x10],
            vec![0x20, 0x21],
            vec![0x30, 0x31],
            vec![0x40, 0x41, 0x42, 0x43],
            vec![0x50, 0x51, 0x52, 0x53, 0x54, 0x55, 0x56, 0x57],
            (0x60..=0x6f).collect(),
        ]
    }

    /// Roots of the trees made of the first 1 to 8 entries of [`ct_entries`].
    pub(crate) const CT_ROOTS: [&str; 8] = [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    #[test]
    fn empty_tree_root_is_sha256_of_nothing() {
        let expected = h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
        assert_eq!(empty_root(), expected);
        assert_eq!(root(&[]), expected);
        assert_eq!(reference::mth(&[]), expected);
    }

    #[test]
    fn leaf_hash_of_empty_entry_matches_rfc6962_vector() {
        let expected = h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d");
        assert_eq!(leaf_hash(&[]), expected);
    }

    #[test]
    fn roots_match_published_vectors() {
        let entries = ct_entries();
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        for (size, want) in CT_ROOTS.iter().enumerate().map(|(i, r)| (i + 1, h(r))) {
            assert_eq!(root(&leaves[..size]), want, "size {size}");
            assert_eq!(
                reference::mth(&entries[..size]),
                want,
                "reference, size {size}"
            );
        }
    }

    #[test]
    fn root_matches_reference_for_small_and_awkward_sizes() {
        let entries = reference::entries(1100);
        let leaves: Vec<Hash> = entries.iter().map(|e| leaf_hash(e)).collect();
        let sizes = (0..=64).chain([127, 128, 129, 255, 256, 257, 1000, 1023, 1024, 1025, 1100]);
        for size in sizes {
            assert_eq!(
                root(&leaves[..size]),
                reference::mth(&entries[..size]),
                "size {size}"
            );
        }
    }

    #[test]
    fn node_hash_is_domain_separated_from_leaf_hash() {
        let (left, right) = (leaf_hash(b"a"), leaf_hash(b"b"));
        let mut concatenated = Vec::new();
        concatenated.extend_from_slice(&left);
        concatenated.extend_from_slice(&right);
        assert_ne!(node_hash(&left, &right), leaf_hash(&concatenated));
    }

    #[test]
    fn split_point_is_largest_power_of_two_below_n() {
        let cases = [
            (2, 1),
            (3, 2),
            (4, 2),
            (5, 4),
            (8, 4),
            (9, 8),
            (1 << 40, 1 << 39),
        ];
        for (n, k) in cases {
            assert_eq!(split_point(n), k, "n = {n}");
        }
        assert_eq!(split_point(u64::MAX), 1 << 63);
    }

    #[test]
    fn hex_display_is_lowercase_and_full_length() {
        let text = Hex(&empty_root()).to_string();
        assert_eq!(
            text,
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }
}
