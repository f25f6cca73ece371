//! Building and signing transactions for `--key FILE` or `--as NAME`.

use crate::cli::SignerArgs;
use anyhow::{Context as _, bail};
use welkin_client::Client;
use welkin_node::ceremony::NodeKey;
use welkin_types::{
    Digest, IndexedKey, Payload, PrivateKey, Sender, SignedTransaction, Transaction,
};
use zeroize::Zeroizing;

/// What signs: the sender named in the envelope and one private key per signing key.
pub(crate) struct Signing {
    sender: Sender,
    keys: Vec<PrivateKey>,
}

/// Reads a key file written by `welkin key new`.
pub(crate) fn load_key_file(path: &std::path::Path) -> anyhow::Result<NodeKey> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read key file {}", path.display()))?;
    NodeKey::from_json(&text).with_context(|| {
        format!(
            "{} is not a welkin key file (make one with `welkin key new`)",
            path.display()
        )
    })
}

impl Signing {
    /// Loads the key file or the keystore identity that `args` names.
    pub(crate) fn load(args: &SignerArgs) -> anyhow::Result<Self> {
        if let Some(path) = &args.sender.key {
            return Self::from_key_file(path);
        }
        let Some(name) = &args.sender.identity else {
            bail!("say who signs: --key FILE or --as NAME");
        };
        if !args.keystore.keystore.exists() {
            bail!(
                "no keystore at {}: create the identity with `welkin id incept {name}`, or point --keystore at the file that holds it",
                args.keystore.keystore.display()
            );
        }
        let keystore = super::id::open_keystore(&args.keystore)?;
        let identity = keystore.get(name)?;
        if identity.prefix.is_empty() {
            bail!("identity {name:?} has no identifier yet: finish `welkin id incept {name}`");
        }
        let keys = identity
            .current
            .iter()
            .map(|seed| {
                let seed = Zeroizing::new(*seed);
                welkin_types::decode::<PrivateKey>(seed.as_slice())
                    .map_err(|e| anyhow::anyhow!("the keystore holds a bad key for {name}: {e}"))
            })
            .collect::<anyhow::Result<Vec<_>>>()?;
        if keys.is_empty() || keys.len() > welkin_types::MAX_TX_SIGNERS {
            bail!(
                "identity {name:?} has {} current keys; a transaction carries 1 to {}",
                keys.len(),
                welkin_types::MAX_TX_SIGNERS
            );
        }
        let signers = keys
            .iter()
            .enumerate()
            .map(|(index, key)| IndexedKey {
                index: index as u32,
                key: commonware_cryptography::Signer::public_key(key),
            })
            .collect();
        Ok(Self {
            sender: Sender::Identifier {
                prefix: identity.prefix.clone(),
                signers,
            },
            keys,
        })
    }

    /// Signs with the raw key in the key file at `path`.
    pub(crate) fn from_key_file(path: &std::path::Path) -> anyhow::Result<Self> {
        let key = load_key_file(path)?;
        Ok(Self {
            sender: Sender::Key(key.public_key()),
            keys: vec![key.signer],
        })
    }

    /// The sender and its private keys, in signer order.
    pub(crate) fn parts(&self) -> (&Sender, &[PrivateKey]) {
        (&self.sender, &self.keys)
    }

    /// Signs as the non-transferable KERI identifier of `key` (its prefix is the key).
    pub(crate) fn non_transferable(key: PrivateKey) -> Self {
        let public = commonware_cryptography::Signer::public_key(&key);
        Self {
            sender: Sender::Identifier {
                prefix: non_transferable_prefix(&key),
                signers: vec![IndexedKey {
                    index: 0,
                    key: public,
                }],
            },
            keys: vec![key],
        }
    }

    /// Builds and signs a transaction for the cluster `cluster_id`.
    pub(crate) fn sign(
        &self,
        cluster_id: &Digest,
        nonce: u64,
        expiry_ms: u64,
        payload: Payload,
    ) -> SignedTransaction {
        Transaction {
            sender: self.sender.clone(),
            nonce,
            expiry_ms,
            payload,
        }
        .sign_all(&self.keys, cluster_id)
    }
}

/// The id of the cluster trusted for the node at `client` (from WELKIN_GENESIS, or pinned on
/// first use): transactions are signed for it, never for whatever cluster the node names.
pub(crate) fn cluster_id(client: &Client) -> anyhow::Result<Digest> {
    Ok(super::trust::cluster(client, None)?.trusted.cluster_id)
}

/// The cluster id the node at `client` says it serves, unchecked: only for load generation
/// against a cluster this process started.
pub(crate) fn node_cluster_id(client: &Client) -> anyhow::Result<Digest> {
    let status = client.status()?;
    welkin_types::hexser::decode_hex::<Digest>(&status.cluster_id)
        .map_err(|e| anyhow::anyhow!("node sent a bad cluster id: {e}"))
}

/// The non-transferable KERI identifier (`B...`) of an ed25519 key.
pub(crate) fn non_transferable_prefix(key: &PrivateKey) -> String {
    use commonware_codec::Encode as _;
    let seed = Zeroizing::new(key.encode().to_vec());
    let seed: [u8; 32] = seed
        .as_slice()
        .try_into()
        .expect("ed25519 seeds are 32 bytes");
    welkin_keri::Signer::non_transferable(&seed).verkey().qb64()
}
