//! Serde helpers that write binary values as lowercase hex strings in JSON.

use commonware_codec::{Encode, Read};
use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

/// Serializes any codec value as hex.
pub fn serialize<T: Encode, S: Serializer>(value: &T, serializer: S) -> Result<S::Ok, S::Error> {
    serializer.serialize_str(&hex::encode(value.encode()))
}

/// Deserializes a codec value (with unit config) from hex.
pub fn deserialize<'de, T, D>(deserializer: D) -> Result<T, D::Error>
where
    T: Read<Cfg = ()>,
    D: Deserializer<'de>,
{
    let text = String::deserialize(deserializer)?;
    decode_hex(&text).map_err(D::Error::custom)
}

/// Decodes a codec value (with unit config) from a hex string, with a readable error.
pub fn decode_hex<T: Read<Cfg = ()>>(text: &str) -> Result<T, String> {
    let bytes = hex::decode(text.trim()).map_err(|e| format!("invalid hex: {e}"))?;
    crate::decode::<T>(&bytes).map_err(|e| format!("invalid encoding: {e}"))
}

/// Hex for `Vec<u8>` fields.
pub mod bytes {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serializes bytes as hex.
    pub fn serialize<S: Serializer>(value: &[u8], serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&hex::encode(value))
    }

    /// Deserializes bytes from hex.
    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<u8>, D::Error> {
        let text = String::deserialize(deserializer)?;
        hex::decode(text.trim()).map_err(|e| D::Error::custom(format!("invalid hex: {e}")))
    }
}

/// Hex for optional codec values (`null` or absent for `None`).
pub mod option {
    use commonware_codec::{Encode, Read};
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    /// Serializes `Some` as hex, `None` as null.
    pub fn serialize<T: Encode, S: Serializer>(
        value: &Option<T>,
        serializer: S,
    ) -> Result<S::Ok, S::Error> {
        match value {
            Some(value) => super::serialize(value, serializer),
            None => serializer.serialize_none(),
        }
    }

    /// Deserializes an optional codec value (with unit config) from hex or null.
    pub fn deserialize<'de, T, D>(deserializer: D) -> Result<Option<T>, D::Error>
    where
        T: Read<Cfg = ()>,
        D: Deserializer<'de>,
    {
        match Option::<String>::deserialize(deserializer)? {
            Some(text) => super::decode_hex(&text).map(Some).map_err(D::Error::custom),
            None => Ok(None),
        }
    }
}
