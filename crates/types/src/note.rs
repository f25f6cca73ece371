//! Certified checkpoints as C2SP signed notes (c2sp.org/tlog-checkpoint), so that standard
//! transparency-log tooling can read them and check the nodes' tlog cosignatures.
//!
//! ```text
//! welkin/<cluster id hex>           origin
//! <log size>                        tree size
//! <base64 log root>                 root hash
//! welkin height <height>            extension: the block height
//! welkin state <base64 state root>  extension: the state root
//!
//! — welkin/<cluster id hex> <base64(key id || BLS signature)>
//! — welkin/<cluster id hex>/<node> <base64(key id || timestamp || Ed25519 signature)>
//! ```
//!
//! The first signature line is the cluster's threshold signature over the binary checkpoint
//! message (which the body determines completely). Its signature type is `0xff` (the signed-note
//! slot for types without an assigned byte) followed by the identifier
//! [`CLUSTER_SIGNATURE_ID`]; standard verifiers ignore it as an unknown key. The other lines
//! are tlog-cosignature/v1 lines by individual nodes, under their ed25519 identity keys.

use crate::{CertifiedCheckpoint, Checkpoint, ClusterKey, ClusterSignature, Digest, Genesis};
use base64::Engine as _;
use commonware_codec::{Encode, FixedSize};
use welkin_note::{Cosignature, CosignatureVerifier, Note, NoteSignature};

/// Signature type byte of the cluster line: "no assigned identifier byte" (c2sp signed-note).
pub const CLUSTER_SIGNATURE_TYPE: u8 = 0xff;
/// The identifier that follows the `0xff` type byte in the cluster key's id.
pub const CLUSTER_SIGNATURE_ID: &[u8] = b"welkin/bls12381-minsig-threshold/v1";

/// Why a checkpoint note was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum NoteCheckError {
    /// The note or its checkpoint body does not parse.
    #[error("not a welkin checkpoint note: {0}")]
    Format(String),
    /// The note is for another log.
    #[error("note is for log {found}, not {expected}")]
    Origin {
        /// The note's origin.
        found: String,
        /// The trusted origin.
        expected: String,
    },
    /// The cluster's signature line is missing or does not verify.
    #[error("the cluster's signature is missing or does not verify")]
    ClusterSignature,
}

/// The log's origin line (and the cluster key's name).
pub fn origin(cluster_id: &Digest) -> String {
    format!("welkin/{}", hex::encode(cluster_id))
}

/// The name under which node `name` cosigns.
pub fn cosigner_name(cluster_id: &Digest, name: &str) -> String {
    format!("{}/{name}", origin(cluster_id))
}

/// The tlog cosignature verifier of every node, in genesis order.
pub fn cosigner_verifiers(genesis: &Genesis) -> Vec<CosignatureVerifier> {
    let cluster_id = genesis.cluster_id();
    genesis
        .nodes
        .iter()
        .map(|node| {
            cosigner_verifier(&cluster_id, node)
                .expect("genesis validation keeps node names usable as key names")
        })
        .collect()
}

/// The cosigning verifier of one node of cluster `cluster_id` (a genesis member, or a node
/// that joined later); `None` if its name cannot be a key name.
pub fn cosigner_verifier(
    cluster_id: &Digest,
    node: &crate::NodeInfo,
) -> Option<CosignatureVerifier> {
    let key: [u8; 32] = node
        .public_key
        .as_ref()
        .try_into()
        .expect("ed25519 public keys are 32 bytes");
    CosignatureVerifier::new(&cosigner_name(cluster_id, &node.name), &key).ok()
}

/// A node's cosignature as the signature line `verifier` would find in a note.
pub fn cosignature_line(
    verifier: &CosignatureVerifier,
    cosignature: &Cosignature,
) -> NoteSignature {
    NoteSignature {
        name: verifier.name().to_owned(),
        key_id: verifier.key_id(),
        signature: cosignature.to_bytes().to_vec(),
    }
}

fn cluster_key_id(cluster_id: &Digest, cluster_key: &ClusterKey) -> [u8; 4] {
    let mut key = CLUSTER_SIGNATURE_ID.to_vec();
    key.extend_from_slice(&cluster_key.encode());
    welkin_note::key_id(&origin(cluster_id), CLUSTER_SIGNATURE_TYPE, &key)
}

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// The tlog checkpoint body of a certified checkpoint.
pub fn body(checkpoint: &Checkpoint, cluster_id: &Digest) -> welkin_note::Checkpoint {
    welkin_note::Checkpoint {
        origin: origin(cluster_id),
        size: checkpoint.log_size,
        root: checkpoint.log_root.0,
        extensions: vec![
            format!("welkin height {}", checkpoint.height),
            format!("welkin state {}", b64(checkpoint.state_root.as_ref())),
        ],
    }
}

/// The signed note of a certified checkpoint, with the cluster's signature line.
pub fn to_note(
    certified: &CertifiedCheckpoint,
    cluster_id: &Digest,
    cluster_key: &ClusterKey,
) -> Note {
    let text = body(&certified.checkpoint, cluster_id)
        .format()
        .expect("welkin checkpoint bodies are well formed");
    let mut note = Note::new(text).expect("a formatted checkpoint is a valid note text");
    note.add_signature(NoteSignature {
        name: origin(cluster_id),
        key_id: cluster_key_id(cluster_id, cluster_key),
        signature: certified.signature.encode().to_vec(),
    });
    note
}

/// Reads a certified checkpoint back from a note, checking the cluster's signature.
pub fn from_note(
    note: &Note,
    cluster_id: &Digest,
    cluster_key: &ClusterKey,
) -> Result<CertifiedCheckpoint, NoteCheckError> {
    let format = |e: String| NoteCheckError::Format(e);
    let body = welkin_note::Checkpoint::parse(&note.text).map_err(|e| format(e.to_string()))?;
    let expected = origin(cluster_id);
    if body.origin != expected {
        return Err(NoteCheckError::Origin {
            found: body.origin,
            expected,
        });
    }
    let [height, state] = body.extensions.as_slice() else {
        return Err(format(
            "expected the welkin height and state extension lines".into(),
        ));
    };
    let height: u64 = height
        .strip_prefix("welkin height ")
        .and_then(|h| h.parse().ok())
        .ok_or_else(|| format(format!("bad height line {height:?}")))?;
    let state = state
        .strip_prefix("welkin state ")
        .and_then(|s| base64::engine::general_purpose::STANDARD.decode(s).ok())
        .and_then(|b| <[u8; 32]>::try_from(b).ok())
        .ok_or_else(|| format(format!("bad state line {state:?}")))?;
    let checkpoint = Checkpoint {
        height,
        state_root: Digest::from(state),
        log_size: body.size,
        log_root: Digest::from(body.root),
    };
    let key_id = cluster_key_id(cluster_id, cluster_key);
    let line = note
        .signatures
        .iter()
        .find(|s| s.name == expected && s.key_id == key_id)
        .ok_or(NoteCheckError::ClusterSignature)?;
    if line.signature.len() != ClusterSignature::SIZE {
        return Err(NoteCheckError::ClusterSignature);
    }
    let signature = crate::decode::<ClusterSignature>(&line.signature)
        .map_err(|_| NoteCheckError::ClusterSignature)?;
    let certified = CertifiedCheckpoint {
        checkpoint,
        signature,
    };
    if !certified.verify(cluster_id, cluster_key) {
        return Err(NoteCheckError::ClusterSignature);
    }
    Ok(certified)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Sharing, checkpoint::certified_for_tests, hash_parts};

    fn certified() -> (Digest, Sharing, CertifiedCheckpoint) {
        let id = hash_parts(&[b"cluster"]);
        let checkpoint = Checkpoint {
            height: 12,
            state_root: hash_parts(&[b"state"]),
            log_size: 40,
            log_root: hash_parts(&[b"log"]),
        };
        let (sharing, certified) = certified_for_tests(&id, checkpoint);
        (id, sharing, certified)
    }

    #[test]
    fn note_round_trips_and_binds_every_field() {
        let (id, sharing, certified) = certified();
        let text = to_note(&certified, &id, sharing.public())
            .format()
            .expect("formats");
        assert!(text.starts_with(&format!("{}\n40\n", origin(&id))));
        let parsed = Note::parse(text.as_bytes()).expect("parses");
        assert_eq!(
            from_note(&parsed, &id, sharing.public()),
            Ok(certified.clone())
        );
        for (from, to) in [
            ("welkin height 12", "welkin height 13"),
            ("\n40\n", "\n41\n"),
        ] {
            let forged = Note::parse(text.replacen(from, to, 1).as_bytes()).expect("parses");
            assert_eq!(
                from_note(&forged, &id, sharing.public()),
                Err(NoteCheckError::ClusterSignature)
            );
        }
        let other = hash_parts(&[b"other cluster"]);
        assert!(matches!(
            from_note(&parsed, &other, sharing.public()),
            Err(NoteCheckError::Origin { .. })
        ));
    }
}
