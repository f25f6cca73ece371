//! State keys. Every key is a SHA-256 hash over a module prefix and the key's parts, so
//! modules cannot collide and every key has the same size in the authenticated store.

use welkin_types::{Digest, PublicKey, TxId, hash_parts};

/// The chain parameters.
pub fn params() -> Digest {
    hash_parts(&[b"system/params"])
}

/// The member at position `index` of the membership list.
pub fn member(index: u32) -> Digest {
    hash_parts(&[b"system/member", &index.to_be_bytes()])
}

/// The number of members.
pub fn member_count() -> Digest {
    hash_parts(&[b"system/member-count"])
}

/// Marks that `signer` used `nonce`; the value is the transaction's expiry.
pub fn nonce(signer: &PublicKey, nonce: u64) -> Digest {
    hash_parts(&[b"system/nonce", signer.as_ref(), &nonce.to_be_bytes()])
}

/// The receipt of a transaction.
pub fn receipt(id: &TxId) -> Digest {
    hash_parts(&[b"system/receipt", id.as_ref()])
}

/// The number of entries in the audit log.
pub fn log_size() -> Digest {
    hash_parts(&[b"log/size"])
}

/// The height at which the audit log first held `size` entries (written only for sizes a
/// block ended at, which are exactly the sizes certified checkpoints have).
pub fn log_height(size: u64) -> Digest {
    hash_parts(&[b"log/height", &size.to_be_bytes()])
}

/// A value in a signer's own key-value namespace.
pub fn kv(signer: &PublicKey, key: &[u8]) -> Digest {
    hash_parts(&[b"kv", signer.as_ref(), key])
}
