//! A deliberately naive transcription of the RFC 6962 / RFC 9162 definitions, for tests only.
//!
//! Every function here recurses over the entry list exactly as the RFC text reads, recomputing
//! every subtree hash from the raw entries and hashing with SHA-256 directly, so it shares no
//! code (and no shortcuts) with the crate it checks.

use sha2::{Digest, Sha256};

use crate::Hash;

fn sha256(parts: &[&[u8]]) -> Hash {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update(part);
    }
    hasher.finalize().into()
}

/// The largest power of two smaller than `n`, found by doubling rather than bit tricks.
fn k_for(n: usize) -> usize {
    assert!(n > 1);
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    k
}

/// Distinct test entries `"entry 0"`, `"entry 1"`, ...
pub(crate) fn entries(n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|i| format!("entry {i}").into_bytes()).collect()
}

/// RFC 6962 section 2.1: `MTH(D[n])`.
pub(crate) fn mth(d: &[Vec<u8>]) -> Hash {
    match d.len() {
        0 => sha256(&[]),
        1 => sha256(&[&[0x00], &d[0]]),
        n => {
            let k = k_for(n);
            sha256(&[&[0x01], &mth(&d[..k]), &mth(&d[k..])])
        }
    }
}

/// RFC 6962 section 2.1.1: `PATH(m, D[n])`, the audit path for leaf `m`.
pub(crate) fn path(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    let n = d.len();
    assert!(m < n);
    if n == 1 {
        return Vec::new();
    }
    let k = k_for(n);
    if m < k {
        let mut out = path(m, &d[..k]);
        out.push(mth(&d[k..]));
        out
    } else {
        let mut out = path(m - k, &d[k..]);
        out.push(mth(&d[..k]));
        out
    }
}

/// RFC 6962 section 2.1.2: `PROOF(m, D[n]) = SUBPROOF(m, D[n], true)`, for `0 < m < n`.
pub(crate) fn proof(m: usize, d: &[Vec<u8>]) -> Vec<Hash> {
    assert!(0 < m && m < d.len());
    subproof(m, d, true)
}

fn subproof(m: usize, d: &[Vec<u8>], b: bool) -> Vec<Hash> {
    let n = d.len();
    if m == n {
        return if b { Vec::new() } else { vec![mth(d)] };
    }
    let k = k_for(n);
    if m <= k {
        let mut out = subproof(m, &d[..k], b);
        out.push(mth(&d[k..]));
        out
    } else {
        let mut out = subproof(m - k, &d[k..], false);
        out.push(mth(&d[..k]));
        out
    }
}

/// For each element of `PATH(m, D[n])`, whether that sibling sits to the left of the path.
///
/// Two (index, size) pairs with the same shape combine an audit path identically, which is the
/// only way a verifier can confuse them.
pub(crate) fn path_shape(m: u64, n: u64) -> Vec<bool> {
    assert!(m < n);
    if n == 1 {
        return Vec::new();
    }
    let mut k = 1;
    while k * 2 < n {
        k *= 2;
    }
    let mut out = if m < k {
        path_shape(m, k)
    } else {
        path_shape(m - k, n - k)
    };
    out.push(m >= k);
    out
}
