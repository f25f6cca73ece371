//! What values sealed to recipients store, in their own stored encodings (version 1 each; the
//! other secrets records keep theirs).
//!
//! ```text
//! EncryptionKey := 0x01 | key [32] | establishment_sn u64 | registered_ms u64
//! Recipients    := 0x01 | recipients u16 str*  (sorted, unique) | envelope (u32 len, bytes)
//!                  | sealed_ms u64 | changed_ms u64
//! str           := u16 length | UTF-8
//! ```

use crate::stored::{Reader, StoredError, Writer, read_list, write_list};

/// The version of the records in this module.
const VERSION: u8 = 1;

/// A KERI identifier's X25519 key for values sealed to it, and the key state that vouched
/// for it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EncryptionKey {
    /// The X25519 public key.
    pub key: [u8; 32],
    /// The sequence number of the identifier's latest establishment event when its keys
    /// registered this one: the key counts only while that is still the latest.
    pub establishment_sn: u64,
    /// Block time of the registration.
    pub registered_ms: u64,
}

impl EncryptionKey {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.raw(&self.key);
        w.u64(self.establishment_sn);
        w.u64(self.registered_ms);
        w.0
    }

    /// Decodes a stored encryption key.
    pub fn decode(value: &[u8]) -> Result<EncryptionKey, StoredError> {
        let mut r = Reader::new("encryption key", value);
        r.version(VERSION)?;
        let record = EncryptionKey {
            key: r.bytes32()?,
            establishment_sn: r.u64()?,
            registered_ms: r.u64()?,
        };
        r.end()?;
        Ok(record)
    }
}

/// Who a recipient-sealed version is sealed to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Recipients {
    /// The identifiers (qb64 prefixes) that may open it through the cluster now, sorted.
    pub recipients: Vec<String>,
    /// The value sealed to the keys the first recipients had registered when it was sealed
    /// (welkin-sealed `RecipientSealed` encoding, the version's target as associated data).
    /// A re-seal leaves it as it is: recipients added later open through the cluster.
    pub envelope: Vec<u8>,
    /// Block time of the seal.
    pub sealed_ms: u64,
    /// Block time of the last change of `recipients`.
    pub changed_ms: u64,
}

impl Recipients {
    /// Whether `prefix` is a recipient now.
    pub fn includes(&self, prefix: &str) -> bool {
        self.recipients
            .binary_search_by(|p| p.as_str().cmp(prefix))
            .is_ok()
    }

    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        write_list(&mut w, &self.recipients, |w, p| w.str(p));
        w.u32(self.envelope.len());
        w.raw(&self.envelope);
        w.u64(self.sealed_ms);
        w.u64(self.changed_ms);
        w.0
    }

    /// Decodes a stored recipient list, refusing one out of order.
    pub fn decode(value: &[u8]) -> Result<Recipients, StoredError> {
        let mut r = Reader::new("recipients", value);
        r.version(VERSION)?;
        let recipients = read_list(&mut r, |r| r.str())?;
        if recipients.windows(2).any(|w| w[0] >= w[1]) {
            return Err(r.error("recipients are not sorted and unique"));
        }
        let len = r.u32()?;
        let record = Recipients {
            recipients,
            envelope: r.raw(len)?.to_vec(),
            sealed_ms: r.u64()?,
            changed_ms: r.u64()?,
        };
        r.end()?;
        Ok(record)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use welkin_types::hash_parts;

    fn key() -> EncryptionKey {
        EncryptionKey {
            key: [3; 32],
            establishment_sn: 2,
            registered_ms: 7,
        }
    }

    fn recipients() -> Recipients {
        Recipients {
            recipients: vec!["Ealice".into(), "Ebob".into()],
            envelope: vec![1, 2, 3],
            sealed_ms: 10,
            changed_ms: 20,
        }
    }

    #[test]
    fn records_round_trip_and_refuse_trailing_bytes_and_disorder() {
        assert_eq!(EncryptionKey::decode(&key().encode()), Ok(key()));
        assert_eq!(Recipients::decode(&recipients().encode()), Ok(recipients()));
        for mut bytes in [key().encode(), recipients().encode()] {
            bytes.push(0);
            assert!(EncryptionKey::decode(&bytes).is_err() && Recipients::decode(&bytes).is_err());
        }
        let mut unsorted = recipients();
        unsorted.recipients.reverse();
        assert!(Recipients::decode(&unsorted.encode()).is_err());
        assert!(recipients().includes("Ebob") && !recipients().includes("Ecarol"));
    }

    /// The stored encodings are consensus: a change here is a state-format change.
    #[test]
    fn recipient_records_are_frozen() {
        let all = [key().encode(), recipients().encode()].concat();
        assert_eq!(
            hex::encode(hash_parts(&[&all])),
            "6cdfa6f30a001e84d8be838e22ee2d30b3626fc5754f03333109ca0d4109e420",
            "a recipient record encoding changed: bump its version, then update the fixture"
        );
    }
}
