//! Inclusion and consistency proofs (RFC 6962 sections 2.1.1 and 2.1.2, verified as in RFC 9162
//! sections 2.1.3.2 and 2.1.4.2).
//!
//! An *inclusion proof* (audit path) for leaf `m` of a tree of `n` leaves lists, from the leaf
//! upwards, the hash of the sibling subtree at each step of the RFC recursion. Hashing the leaf
//! with them in order yields the root.
//!
//! A *consistency proof* from size `m` to size `n` lists the subtree hashes that let a verifier
//! rebuild both the old root and the new root from shared material, which shows that the first
//! `m` leaves did not change.
//!
//! Proofs are built by following the RFC's recursive definitions, but every subtree hash they
//! need is read from a [`HashReader`] in `O(log n)` reads instead of being recomputed.
//! Verification is a transcription of the RFC 9162 algorithms, preceded by an exact check of the
//! proof length so that a malformed proof is reported as such rather than as a root mismatch.
//!
//! Note that a proof binds a leaf (or an old root) to the *root* it is checked against; the tree
//! size is trusted to be the size that root commits to. Callers take the size and the root from
//! the same signed checkpoint.

use crate::hash::{Hash, Hex, empty_root, node_hash, split_point};
use crate::tree::{Error, HashReader, range_hash};

/// Why a proof failed to verify.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VerifyError {
    /// The leaf index is not inside the claimed tree.
    #[error("leaf index {index} is out of range for tree size {size}")]
    IndexOutOfRange {
        /// The claimed leaf index.
        index: u64,
        /// The claimed tree size.
        size: u64,
    },
    /// The proof does not have the number of hashes the claimed sizes require.
    #[error("proof has {actual} hashes but the claimed sizes require {expected}")]
    WrongProofLength {
        /// How many hashes the claimed index and sizes require.
        expected: usize,
        /// How many hashes the proof has.
        actual: usize,
    },
    /// A consistency proof was claimed from a larger tree to a smaller one.
    #[error("old tree size {old_size} exceeds new tree size {new_size}")]
    OldSizeExceedsNewSize {
        /// The claimed older tree size.
        old_size: u64,
        /// The claimed newer tree size.
        new_size: u64,
    },
    /// The inclusion proof leads to a different root than the expected one.
    #[error("computed root {} does not match expected root {}", Hex(.computed), Hex(.expected))]
    RootMismatch {
        /// The root the caller trusts.
        expected: Hash,
        /// The root the proof leads to.
        computed: Hash,
    },
    /// The consistency proof leads to a different old root than the expected one.
    #[error("computed old root {} does not match expected old root {}", Hex(.computed), Hex(.expected))]
    OldRootMismatch {
        /// The old root the caller trusts.
        expected: Hash,
        /// The old root the proof leads to.
        computed: Hash,
    },
    /// The consistency proof leads to a different new root than the expected one.
    #[error("computed new root {} does not match expected new root {}", Hex(.computed), Hex(.expected))]
    NewRootMismatch {
        /// The new root the caller trusts.
        expected: Hash,
        /// The new root the proof leads to.
        computed: Hash,
    },
}

/// Builds the inclusion proof (RFC 6962 `PATH(index, D[size])`) for leaf `index` in the tree made
/// of the first `size` leaves of `tree`, ordered from the leaf up.
pub fn inclusion_proof<R: HashReader + ?Sized>(
    tree: &R,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, Error> {
    let available = tree.size();
    if size > available {
        return Err(Error::SizeBeyondTree {
            requested: size,
            available,
        });
    }
    if index >= size {
        return Err(Error::IndexOutOfRange { index, size });
    }
    let mut proof = Vec::with_capacity(inclusion_proof_len(index, size));
    path(tree, index, 0, size, &mut proof)?;
    Ok(proof)
}

/// `PATH(m, D[start..end])`, appended to `out` leaf first.
fn path<R: HashReader + ?Sized>(
    tree: &R,
    m: u64,
    start: u64,
    end: u64,
    out: &mut Vec<Hash>,
) -> Result<(), Error> {
    let n = end - start;
    if n == 1 {
        return Ok(());
    }
    let mid = start + split_point(n);
    if m < mid {
        path(tree, m, start, mid, out)?;
        out.push(range_hash(tree, mid, end)?);
    } else {
        path(tree, m, mid, end, out)?;
        out.push(range_hash(tree, start, mid)?);
    }
    Ok(())
}

/// Builds the consistency proof (RFC 6962 `PROOF(old_size, D[new_size])`) between the first
/// `old_size` and the first `new_size` leaves of `tree`.
///
/// The proof is empty when `old_size` is 0 or equal to `new_size`: RFC 9162 treats both as
/// trivially consistent.
pub fn consistency_proof<R: HashReader + ?Sized>(
    tree: &R,
    old_size: u64,
    new_size: u64,
) -> Result<Vec<Hash>, Error> {
    if old_size > new_size {
        return Err(Error::OldSizeExceedsNewSize { old_size, new_size });
    }
    let available = tree.size();
    if new_size > available {
        return Err(Error::SizeBeyondTree {
            requested: new_size,
            available,
        });
    }
    if old_size == 0 || old_size == new_size {
        return Ok(Vec::new());
    }
    let mut proof = Vec::with_capacity(consistency_proof_len(old_size, new_size));
    subproof(tree, old_size, 0, new_size, true, &mut proof)?;
    Ok(proof)
}

/// `SUBPROOF(m, D[start..end], complete)`, where `m` counts leaves from `start`.
fn subproof<R: HashReader + ?Sized>(
    tree: &R,
    m: u64,
    start: u64,
    end: u64,
    complete: bool,
    out: &mut Vec<Hash>,
) -> Result<(), Error> {
    let n = end - start;
    if m == n {
        // The old tree is this whole subtree. At the top level the verifier already has its
        // hash (it is the old root); deeper down it must be supplied.
        if !complete {
            out.push(range_hash(tree, start, end)?);
        }
        return Ok(());
    }
    let k = split_point(n);
    let mid = start + k;
    if m <= k {
        subproof(tree, m, start, mid, complete, out)?;
        out.push(range_hash(tree, mid, end)?);
    } else {
        subproof(tree, m - k, mid, end, false, out)?;
        out.push(range_hash(tree, start, mid)?);
    }
    Ok(())
}

/// Number of hashes in the inclusion proof for `index < size`.
fn inclusion_proof_len(index: u64, size: u64) -> usize {
    // Below the highest bit where `index` and `size - 1` differ, the path runs inside a perfect
    // subtree and has one sibling per level; above it, one left sibling per set bit of `index`.
    let inner = u64::BITS - (index ^ (size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    (inner + border) as usize
}

/// Number of hashes in the consistency proof for `0 < old_size < new_size`.
fn consistency_proof_len(old_size: u64, new_size: u64) -> usize {
    // The proof is the inclusion path of the old tree's last leaf in the new tree, minus the
    // levels inside the largest perfect subtree ending at that leaf (whose root is sent instead,
    // unless it is the whole old tree, which the verifier already has).
    let index = old_size - 1;
    let inner = u64::BITS - (index ^ (new_size - 1)).leading_zeros();
    let border = index.checked_shr(inner).unwrap_or(0).count_ones();
    let shift = old_size.trailing_zeros();
    let seed = usize::from(!old_size.is_power_of_two());
    seed + (inner - shift + border) as usize
}

/// Checks that `leaf_hash` is leaf `index` of the tree of `size` leaves whose root is `root`.
///
/// `size` is not authenticated by the proof itself: it must come from the same signed checkpoint
/// as `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), VerifyError> {
    let computed = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    if computed != *root {
        return Err(VerifyError::RootMismatch {
            expected: *root,
            computed,
        });
    }
    Ok(())
}

/// Computes the root that an inclusion proof leads to, following RFC 9162 section 2.1.3.2.
///
/// Useful when the root is checked elsewhere, for example against several checkpoints.
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, VerifyError> {
    // Step 1.
    if index >= size {
        return Err(VerifyError::IndexOutOfRange { index, size });
    }
    let expected = inclusion_proof_len(index, size);
    let wrong_length = VerifyError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    if proof.len() != expected {
        return Err(wrong_length);
    }
    // Steps 2 and 3; the RFC's `fn` and `sn` are `f_n` and `s_n` here.
    let mut f_n = index;
    let mut s_n = size - 1;
    let mut r = *leaf_hash;
    // Step 4.
    for p in proof {
        if s_n == 0 {
            return Err(wrong_length);
        }
        if f_n & 1 == 1 || f_n == s_n {
            r = node_hash(p, &r);
            if f_n & 1 == 0 {
                // On the right edge of the tree the path skips levels where the last subtree
                // is promoted without a sibling.
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            r = node_hash(&r, p);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5 (the root comparison is the caller's).
    if s_n != 0 {
        return Err(wrong_length);
    }
    Ok(r)
}

/// Checks that the tree of `new_size` leaves with root `new_root` extends the tree of
/// `old_size` leaves with root `old_root`, following RFC 9162 section 2.1.4.2.
///
/// Edge cases: `old_size > new_size` is an error; `old_size == new_size` needs an empty proof
/// and equal roots; `old_size == 0` needs an empty proof and `old_root` equal to the empty-tree
/// root, and is then consistent with any new tree. As with inclusion, the sizes are trusted to
/// be the ones the roots commit to.
pub fn verify_consistency(
    old_size: u64,
    new_size: u64,
    old_root: &Hash,
    new_root: &Hash,
    proof: &[Hash],
) -> Result<(), VerifyError> {
    if old_size > new_size {
        return Err(VerifyError::OldSizeExceedsNewSize { old_size, new_size });
    }
    if old_size == 0 || old_size == new_size {
        if !proof.is_empty() {
            return Err(VerifyError::WrongProofLength {
                expected: 0,
                actual: proof.len(),
            });
        }
        if old_size == 0 && *old_root != empty_root() {
            return Err(VerifyError::OldRootMismatch {
                expected: *old_root,
                computed: empty_root(),
            });
        }
        if old_size == new_size && old_root != new_root {
            return Err(VerifyError::NewRootMismatch {
                expected: *new_root,
                computed: *old_root,
            });
        }
        return Ok(());
    }

    // From here on 0 < old_size < new_size.
    let expected = consistency_proof_len(old_size, new_size);
    let wrong_length = VerifyError::WrongProofLength {
        expected,
        actual: proof.len(),
    };
    // Covers step 1 too: the expected length is never 0 here.
    if proof.len() != expected {
        return Err(wrong_length);
    }
    // Step 2: a power-of-two old tree is itself the shared subtree, so its root starts the path.
    let prepend_old_root = old_size.is_power_of_two().then_some(old_root);
    let mut consistency_path = prepend_old_root.into_iter().chain(proof);
    // Step 3; the RFC's `fn` and `sn` are `f_n` and `s_n` here.
    let mut f_n = old_size - 1;
    let mut s_n = new_size - 1;
    // Step 4.
    while f_n & 1 == 1 {
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 5.
    let Some(first) = consistency_path.next() else {
        return Err(wrong_length);
    };
    let mut fr = *first;
    let mut sr = *first;
    // Step 6.
    for c in consistency_path {
        if s_n == 0 {
            return Err(wrong_length);
        }
        if f_n & 1 == 1 || f_n == s_n {
            fr = node_hash(c, &fr);
            sr = node_hash(c, &sr);
            if f_n & 1 == 0 {
                while f_n & 1 == 0 && f_n != 0 {
                    f_n >>= 1;
                    s_n >>= 1;
                }
            }
        } else {
            sr = node_hash(&sr, c);
        }
        f_n >>= 1;
        s_n >>= 1;
    }
    // Step 7.
    if s_n != 0 {
        return Err(wrong_length);
    }
    if fr != *old_root {
        return Err(VerifyError::OldRootMismatch {
            expected: *old_root,
            computed: fr,
        });
    }
    if sr != *new_root {
        return Err(VerifyError::NewRootMismatch {
            expected: *new_root,
            computed: sr,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::hash::leaf_hash;
    use crate::hash::tests::{CT_ROOTS, ct_entries, h};
    use crate::reference;
    use crate::tree::{MemoryTree, root_at};

    fn tree_of(entries: &[Vec<u8>]) -> MemoryTree {
        entries.iter().map(|e| leaf_hash(e)).collect()
    }

    fn flip(proof: &[Hash], element: usize, bit: usize) -> Vec<Hash> {
        let mut out = proof.to_vec();
        out[element][bit / 8] ^= 1 << (bit % 8);
        out
    }

    /// Checks every inclusion proof of a tree of `size` leaves (at `step` index intervals)
    /// against the reference, and that each verifies.
    fn check_inclusion_against_reference(entries: &[Vec<u8>], size: usize, step: usize) {
        let tree = tree_of(entries);
        let d = &entries[..size];
        let root = reference::mth(d);
        for m in (0..size).step_by(step) {
            let proof = inclusion_proof(&tree, m as u64, size as u64).expect("in range");
            assert_eq!(proof, reference::path(m, d), "index {m} size {size}");
            let leaf = leaf_hash(&entries[m]);
            assert_eq!(
                verify_inclusion(&leaf, m as u64, size as u64, &proof, &root),
                Ok(())
            );
        }
    }

    fn check_consistency_against_reference(entries: &[Vec<u8>], old: usize, new: usize) {
        let tree = tree_of(entries);
        let proof = consistency_proof(&tree, old as u64, new as u64).expect("in range");
        let want = if old == 0 || old == new {
            Vec::new()
        } else {
            reference::proof(old, &entries[..new])
        };
        assert_eq!(proof, want, "old {old} new {new}");
        let (old_root, new_root) = (
            reference::mth(&entries[..old]),
            reference::mth(&entries[..new]),
        );
        assert_eq!(
            verify_consistency(old as u64, new as u64, &old_root, &new_root, &proof),
            Ok(()),
            "old {old} new {new}"
        );
    }

    #[test]
    fn inclusion_proofs_match_published_vectors() {
        let entries = ct_entries();
        let tree = tree_of(&entries);
        // (index, size, proof) from the transparency-dev/merkle test suite.
        let vectors: [(u64, u64, &[&str]); 4] = [
            (
                0,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                5,
                8,
                &[
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                3,
                &["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"],
            ),
            (
                1,
                5,
                &[
                    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
        ];
        for (index, size, want) in vectors {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            assert_eq!(inclusion_proof(&tree, index, size), Ok(want.clone()));
            let leaf = leaf_hash(&entries[index as usize]);
            let root = h(CT_ROOTS[size as usize - 1]);
            assert_eq!(verify_inclusion(&leaf, index, size, &want, &root), Ok(()));
        }
    }

    #[test]
    fn consistency_proofs_match_published_vectors() {
        let entries = ct_entries();
        let tree = tree_of(&entries);
        // (old size, new size, proof) from the transparency-dev/merkle test suite.
        let vectors: [(u64, u64, &[&str]); 5] = [
            (1, 1, &[]),
            (
                1,
                8,
                &[
                    "96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7",
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4",
                ],
            ),
            (
                6,
                8,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
            (
                2,
                5,
                &[
                    "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e",
                    "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b",
                ],
            ),
            (
                6,
                7,
                &[
                    "0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a",
                    "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f",
                    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
                ],
            ),
        ];
        for (old, new, want) in vectors {
            let want: Vec<Hash> = want.iter().map(|x| h(x)).collect();
            assert_eq!(consistency_proof(&tree, old, new), Ok(want.clone()));
            let (old_root, new_root) =
                (h(CT_ROOTS[old as usize - 1]), h(CT_ROOTS[new as usize - 1]));
            assert_eq!(
                verify_consistency(old, new, &old_root, &new_root, &want),
                Ok(())
            );
        }
    }

    #[test]
    fn inclusion_matches_reference_for_sizes_0_through_8_and_larger() {
        let entries = reference::entries(1000);
        for size in 1..=8 {
            check_inclusion_against_reference(&entries, size, 1);
        }
        for size in [13, 31, 32, 33, 64, 100, 255, 256, 257] {
            check_inclusion_against_reference(&entries, size, 1);
        }
        check_inclusion_against_reference(&entries, 1000, 7);
        // Size 0 has no leaves to prove.
        let tree = tree_of(&entries);
        assert_eq!(
            inclusion_proof(&tree, 0, 0),
            Err(Error::IndexOutOfRange { index: 0, size: 0 })
        );
    }

    #[test]
    fn consistency_matches_reference_for_sizes_0_through_8_and_larger() {
        let entries = reference::entries(1000);
        for new in 0..=8 {
            for old in 0..=new {
                check_consistency_against_reference(&entries, old, new);
            }
        }
        for new in [13, 32, 33, 100, 256, 257, 1000] {
            for old in [
                0, 1, 2, 3, 7, 8, 12, 13, 31, 32, 33, 99, 100, 255, 256, 257, 640, 999,
            ] {
                if old <= new {
                    check_consistency_against_reference(&entries, old, new);
                }
            }
        }
    }

    #[test]
    fn proofs_match_reference_exhaustively_up_to_64_leaves() {
        let entries = reference::entries(64);
        for new in 1..=64 {
            check_inclusion_against_reference(&entries, new, 1);
            for old in 0..=new {
                check_consistency_against_reference(&entries, old, new);
            }
        }
    }

    #[test]
    fn every_single_bit_flip_is_rejected() {
        let entries = reference::entries(21);
        let tree = tree_of(&entries);
        let root = tree.root();
        for index in 0..21u64 {
            let leaf = leaf_hash(&entries[index as usize]);
            let proof = inclusion_proof(&tree, index, 21).expect("in range");
            for element in 0..proof.len() {
                for bit in 0..256 {
                    let bad = flip(&proof, element, bit);
                    assert!(matches!(
                        verify_inclusion(&leaf, index, 21, &bad, &root),
                        Err(VerifyError::RootMismatch { .. })
                    ));
                }
            }
        }
        for old in 1..21u64 {
            let old_root = root_at(&tree, old).expect("in range");
            let proof = consistency_proof(&tree, old, 21).expect("in range");
            for element in 0..proof.len() {
                for bit in 0..256 {
                    let bad = flip(&proof, element, bit);
                    assert!(verify_consistency(old, 21, &old_root, &root, &bad).is_err());
                }
            }
        }
    }

    #[test]
    fn inclusion_errors_are_precise() {
        let entries = reference::entries(10);
        let tree = tree_of(&entries);
        let root = tree.root();
        let leaf = leaf_hash(&entries[3]);
        let proof = inclusion_proof(&tree, 3, 10).expect("in range");

        assert_eq!(
            verify_inclusion(&leaf, 10, 10, &proof, &root),
            Err(VerifyError::IndexOutOfRange {
                index: 10,
                size: 10
            })
        );
        assert_eq!(
            verify_inclusion(&leaf, 0, 0, &[], &empty_root()),
            Err(VerifyError::IndexOutOfRange { index: 0, size: 0 })
        );
        assert_eq!(
            verify_inclusion(&leaf, 3, 10, &proof[..3], &root),
            Err(VerifyError::WrongProofLength {
                expected: 4,
                actual: 3
            })
        );
        let mut long = proof.clone();
        long.push(root);
        assert_eq!(
            verify_inclusion(&leaf, 3, 10, &long, &root),
            Err(VerifyError::WrongProofLength {
                expected: 4,
                actual: 5
            })
        );
        let computed = root_from_inclusion_proof(&leaf, 3, 10, &proof).expect("well formed");
        assert_eq!(computed, root);
        let wrong_root = empty_root();
        let err = verify_inclusion(&leaf, 3, 10, &proof, &wrong_root).expect_err("wrong root");
        assert_eq!(
            err,
            VerifyError::RootMismatch {
                expected: wrong_root,
                computed: root
            }
        );
        assert_eq!(
            err.to_string(),
            format!(
                "computed root {} does not match expected root {}",
                Hex(&root),
                Hex(&wrong_root)
            )
        );
        assert_eq!(
            VerifyError::WrongProofLength {
                expected: 4,
                actual: 3
            }
            .to_string(),
            "proof has 3 hashes but the claimed sizes require 4"
        );

        assert_eq!(
            inclusion_proof(&tree, 10, 10),
            Err(Error::IndexOutOfRange {
                index: 10,
                size: 10
            })
        );
        assert_eq!(
            inclusion_proof(&tree, 0, 11),
            Err(Error::SizeBeyondTree {
                requested: 11,
                available: 10
            })
        );
        assert_eq!(
            Error::IndexOutOfRange {
                index: 10,
                size: 10
            }
            .to_string(),
            "leaf index 10 is out of range for tree size 10"
        );
    }

    #[test]
    fn consistency_edge_cases_follow_rfc9162() {
        let entries = reference::entries(10);
        let tree = tree_of(&entries);
        let root10 = tree.root();
        let root4 = root_at(&tree, 4).expect("in range");
        let empty = empty_root();
        let stray = leaf_hash(b"stray");

        // Old size 0: trivially consistent with anything, but only with an empty proof and the
        // empty-tree root as old root.
        assert_eq!(verify_consistency(0, 10, &empty, &root10, &[]), Ok(()));
        assert_eq!(verify_consistency(0, 0, &empty, &empty, &[]), Ok(()));
        assert_eq!(
            verify_consistency(0, 10, &empty, &root10, &[stray]),
            Err(VerifyError::WrongProofLength {
                expected: 0,
                actual: 1
            })
        );
        assert_eq!(
            verify_consistency(0, 10, &root4, &root10, &[]),
            Err(VerifyError::OldRootMismatch {
                expected: root4,
                computed: empty
            })
        );
        assert_eq!(consistency_proof(&tree, 0, 10), Ok(Vec::new()));

        // Equal sizes: empty proof and equal roots.
        assert_eq!(verify_consistency(10, 10, &root10, &root10, &[]), Ok(()));
        assert_eq!(
            verify_consistency(10, 10, &root10, &root10, &[stray]),
            Err(VerifyError::WrongProofLength {
                expected: 0,
                actual: 1
            })
        );
        assert_eq!(
            verify_consistency(10, 10, &root4, &root10, &[]),
            Err(VerifyError::NewRootMismatch {
                expected: root10,
                computed: root4
            })
        );
        assert_eq!(consistency_proof(&tree, 10, 10), Ok(Vec::new()));

        // Shrinking is never consistent.
        assert_eq!(
            verify_consistency(10, 4, &root10, &root4, &[]),
            Err(VerifyError::OldSizeExceedsNewSize {
                old_size: 10,
                new_size: 4
            })
        );
        assert_eq!(
            consistency_proof(&tree, 10, 4),
            Err(Error::OldSizeExceedsNewSize {
                old_size: 10,
                new_size: 4
            })
        );
        assert_eq!(
            consistency_proof(&tree, 4, 11),
            Err(Error::SizeBeyondTree {
                requested: 11,
                available: 10
            })
        );

        // A non-trivial proof may not be empty (RFC 9162 step 1).
        assert_eq!(
            verify_consistency(4, 10, &root4, &root10, &[]),
            Err(VerifyError::WrongProofLength {
                expected: 2,
                actual: 0
            })
        );
        let proof = consistency_proof(&tree, 4, 10).expect("in range");
        assert_eq!(proof.len(), 2);
        // A power-of-two old tree is its own shared subtree: the verifier starts from the
        // claimed old root, so a wrong one surfaces as a wrong new root.
        assert!(matches!(
            verify_consistency(4, 10, &stray, &root10, &proof),
            Err(VerifyError::NewRootMismatch { expected, .. }) if expected == root10
        ));
        let root6 = root_at(&tree, 6).expect("in range");
        let proof6 = consistency_proof(&tree, 6, 10).expect("in range");
        assert_eq!(
            verify_consistency(6, 10, &stray, &root10, &proof6),
            Err(VerifyError::OldRootMismatch {
                expected: stray,
                computed: root6
            })
        );
        assert_eq!(
            verify_consistency(4, 10, &root4, &stray, &proof),
            Err(VerifyError::NewRootMismatch {
                expected: stray,
                computed: root10
            })
        );
    }

    #[test]
    fn proof_lengths_handle_sizes_near_u64_max() {
        // No overflow in the length arithmetic at the top of the range.
        for (index, size) in [(0, u64::MAX), (u64::MAX - 1, u64::MAX), (0, (1 << 63) + 1)] {
            let len = inclusion_proof_len(index, size);
            assert!(len <= 64, "index {index} size {size} length {len}");
            let err = root_from_inclusion_proof(&[0; 32], index, size, &[]);
            assert_eq!(
                err,
                Err(VerifyError::WrongProofLength {
                    expected: len,
                    actual: 0
                })
            );
        }
        assert_eq!(inclusion_proof_len(0, (1 << 63) + 1), 64);
        for (old, new) in [(1, u64::MAX), (u64::MAX - 1, u64::MAX), (1 << 63, u64::MAX)] {
            assert!(consistency_proof_len(old, new) <= 64 + 1);
        }
    }

    #[test]
    fn wrong_size_is_rejected_when_it_changes_the_tree_shape() {
        // Doubling or halving the size always changes the path length.
        let entries = reference::entries(40);
        let tree = tree_of(&entries);
        let root = tree.root();
        for index in 0..40u64 {
            let leaf = leaf_hash(&entries[index as usize]);
            let proof = inclusion_proof(&tree, index, 40).expect("in range");
            for size in [80, 20, 39, 41] {
                let result = verify_inclusion(&leaf, index, size, &proof, &root);
                if index >= size {
                    assert_eq!(result, Err(VerifyError::IndexOutOfRange { index, size }));
                } else if reference::path_shape(index, size) != reference::path_shape(index, 40) {
                    assert!(result.is_err(), "index {index} size {size}");
                }
            }
            assert!(verify_inclusion(&leaf, index, 80, &proof, &root).is_err());
        }
    }

    #[test]
    fn size_is_bound_by_the_root_not_by_the_proof() {
        // Leaf 0 has the same audit path shape in trees of 5 and 6 leaves, so a size-5 proof
        // checked against the size-5 root also "verifies" under a claimed size of 6. This is
        // inherent in RFC 6962: the size must come from the same signed checkpoint as the root.
        let entries = reference::entries(5);
        let tree = tree_of(&entries);
        let proof = inclusion_proof(&tree, 0, 5).expect("in range");
        let leaf = leaf_hash(&entries[0]);
        assert_eq!(reference::path_shape(0, 5), reference::path_shape(0, 6));
        assert_eq!(verify_inclusion(&leaf, 0, 6, &proof, &tree.root()), Ok(()));
    }

    /// A tree size and a leaf index in it.
    fn size_and_index() -> impl Strategy<Value = (u64, u64)> {
        (1u64..2000).prop_flat_map(|size| (Just(size), 0..size))
    }

    /// An old size and a new size with `old <= new`.
    fn old_and_new() -> impl Strategy<Value = (u64, u64)> {
        (1u64..2000).prop_flat_map(|new| (0..=new, Just(new)))
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 128, ..ProptestConfig::default() })]

        #[test]
        fn inclusion_proofs_verify_and_match_reference(
            (size, index) in size_and_index(),
            element in any::<prop::sample::Index>(),
            bit in 0usize..256,
            other_index in any::<u64>(),
            other_size in 1u64..4000,
            stray_root in any::<[u8; 32]>(),
        ) {
            let entries = reference::entries(size as usize);
            let tree = tree_of(&entries);
            let root = tree.root();
            let leaf = leaf_hash(&entries[index as usize]);
            let proof = inclusion_proof(&tree, index, size).expect("in range");
            prop_assert_eq!(&proof, &reference::path(index as usize, &entries));
            prop_assert_eq!(verify_inclusion(&leaf, index, size, &proof, &root), Ok(()));

            // Any flipped bit in any element.
            if !proof.is_empty() {
                let bad = flip(&proof, element.index(proof.len()), bit);
                prop_assert!(verify_inclusion(&leaf, index, size, &bad, &root).is_err());
            }
            // Any other index in the same tree.
            if other_index != index {
                prop_assert!(verify_inclusion(&leaf, other_index, size, &proof, &root).is_err());
                let other = other_index % size;
                if other != index {
                    prop_assert!(verify_inclusion(&leaf, other, size, &proof, &root).is_err());
                }
            }
            // Any other size is rejected unless it gives the leaf the very same path shape.
            if other_size != size {
                let accepted = verify_inclusion(&leaf, index, other_size, &proof, &root).is_ok();
                let same_shape = index < other_size
                    && reference::path_shape(index, other_size)
                        == reference::path_shape(index, size);
                prop_assert_eq!(accepted, same_shape);
            }
            // Any other root, and any other leaf.
            if stray_root != root {
                prop_assert!(verify_inclusion(&leaf, index, size, &proof, &stray_root).is_err());
            }
            let stray_leaf = leaf_hash(b"not in the tree");
            prop_assert!(verify_inclusion(&stray_leaf, index, size, &proof, &root).is_err());
        }

        #[test]
        fn consistency_proofs_verify_and_match_reference(
            (old, new) in old_and_new(),
            element in any::<prop::sample::Index>(),
            bit in 0usize..256,
            stray_root in any::<[u8; 32]>(),
        ) {
            let entries = reference::entries(new as usize);
            let tree = tree_of(&entries);
            let new_root = tree.root();
            let old_root = root_at(&tree, old).expect("in range");
            prop_assert_eq!(old_root, reference::mth(&entries[..old as usize]));
            let proof = consistency_proof(&tree, old, new).expect("in range");
            let want = if old == 0 || old == new {
                Vec::new()
            } else {
                reference::proof(old as usize, &entries)
            };
            prop_assert_eq!(&proof, &want);
            prop_assert_eq!(verify_consistency(old, new, &old_root, &new_root, &proof), Ok(()));

            if !proof.is_empty() {
                let bad = flip(&proof, element.index(proof.len()), bit);
                prop_assert!(verify_consistency(old, new, &old_root, &new_root, &bad).is_err());
                // Wrong sizes in the ways a confused or lying log would get them wrong.
                for (o, n) in [(old - 1, new), (old + 1, new), (old ^ 2, new), (old, new * 2)] {
                    if (o, n) != (old, new) {
                        prop_assert!(
                            verify_consistency(o, n, &old_root, &new_root, &proof).is_err(),
                            "old {} new {} accepted for {} {}", o, n, old, new
                        );
                    }
                }
                if new / 2 >= old && new / 2 != new {
                    prop_assert!(
                        verify_consistency(old, new / 2, &old_root, &new_root, &proof).is_err()
                    );
                }
                // Swapped roots, and stray roots on either side.
                prop_assert!(verify_consistency(old, new, &new_root, &old_root, &proof).is_err());
                if stray_root != old_root {
                    prop_assert!(
                        verify_consistency(old, new, &stray_root, &new_root, &proof).is_err()
                    );
                }
                if stray_root != new_root {
                    prop_assert!(
                        verify_consistency(old, new, &old_root, &stray_root, &proof).is_err()
                    );
                }
            } else if old != 0 && stray_root != new_root {
                prop_assert!(verify_consistency(old, new, &old_root, &stray_root, &proof).is_err());
            }
        }
    }

    /// Rough timing for a one-million-leaf tree; run with
    /// `cargo test -p welkin-merkle --release -- --ignored --nocapture timing_one_million`.
    #[test]
    #[ignore = "timing report, run in release mode by hand"]
    fn timing_one_million() {
        use std::time::Instant;

        const SIZE: u64 = 1_000_000;
        const PROOFS: u64 = 1_000;

        let start = Instant::now();
        let mut tree = MemoryTree::new();
        for i in 0..SIZE {
            tree.append_entry(&i.to_be_bytes());
        }
        let root = tree.root();
        println!("build {SIZE} leaves and root: {:?}", start.elapsed());

        // Spread the indices over the whole tree, including the ragged right edge.
        let indices: Vec<u64> = (0..PROOFS)
            .map(|i| (i * 999_983 + SIZE - 1) % SIZE)
            .collect();
        let start = Instant::now();
        let proofs: Vec<Vec<Hash>> = indices
            .iter()
            .map(|&i| inclusion_proof(&tree, i, SIZE).expect("in range"))
            .collect();
        let elapsed = start.elapsed();
        println!(
            "build {PROOFS} inclusion proofs: {elapsed:?} ({:?} each)",
            elapsed / PROOFS as u32
        );

        let leaves: Vec<Hash> = indices
            .iter()
            .map(|&i| leaf_hash(&i.to_be_bytes()))
            .collect();
        let start = Instant::now();
        for ((&index, proof), leaf) in indices.iter().zip(&proofs).zip(&leaves) {
            verify_inclusion(leaf, index, SIZE, proof, &root).expect("valid proof");
        }
        let elapsed = start.elapsed();
        println!(
            "verify {PROOFS} inclusion proofs: {elapsed:?} ({:?} each)",
            elapsed / PROOFS as u32
        );

        let start = Instant::now();
        let mut checked = 0u32;
        for old in (1..SIZE).step_by(SIZE as usize / PROOFS as usize) {
            let proof = consistency_proof(&tree, old, SIZE).expect("in range");
            let old_root = root_at(&tree, old).expect("in range");
            verify_consistency(old, SIZE, &old_root, &root, &proof).expect("valid proof");
            checked += 1;
        }
        let elapsed = start.elapsed();
        println!(
            "build and verify {checked} consistency proofs with old roots: {elapsed:?} ({:?} each)",
            elapsed / checked
        );
    }
}
