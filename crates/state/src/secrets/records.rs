//! What the secrets module stores, in its stored encodings (version 1 each, but Value and
//! Wrapped, version 2: their sealed bytes moved beside the log).
//!
//! ```text
//! Mount     := 0x01 | kind u8 (1 = kv v2, 2 = transit) | id [32] | description str | max_versions u32
//!              | cas_required bool | created_ms u64
//! Names     := 0x01 | count u16 | str*                            (sorted, unique)
//! Meta      := 0x01 | current u64 | max_versions u32 | cas_required bool | created_ms u64
//!              | updated_ms u64 | custom u16 (str str)* | versions u16 VersionMeta*
//! VersionMeta := version u64 | created_ms u64 | deleted_ms u64 (0: not deleted) | destroyed bool
//! Value     := 0x02 | target [32] | ValueRef
//! ValueRef  := tx [32] | digest [32]
//! Token     := 0x01 | policies u16 str* | issued_ms u64 | expire_ms u64 (0: never) | ttl_ms u64
//!              | renewable bool | uses_left u32 (0: unlimited) | num_uses u32 | display str
//!              | parent (0 | 1 [32]) | meta u16 (str str)* | children u16 [32]*
//!              | identity (0 | 1 prefix str | establishment sn u64)
//! Role      := 0x01 | policies u16 str* | ttl_ms u64
//! Wrapped   := 0x02 | target [32] | ValueRef | path str | created_ms u64
//!              | ttl_ms u64
//! str       := u16 length | UTF-8
//! ```

use crate::stored::{Reader, StoredError, Writer, read_list, write_list};
use welkin_types::{Digest, PublicKey, TxId, secrets::MountKind};

const VERSION: u8 = 1;
/// The version of [`Value`] and [`Wrapped`]: 2 since their sealed bytes moved beside the
/// log (version 1 held them inline).
const VALUE_VERSION: u8 = 2;

/// An enabled secrets engine.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The engine.
    pub kind: MountKind,
    /// Unique per enablement: every key of the mount's data includes it, so data of a
    /// disabled mount is unreachable from a new mount at the same path.
    pub id: Digest,
    /// Free text.
    pub description: String,
    /// Versions kept per secret (0: 10).
    pub max_versions: u32,
    /// Whether writes must carry `cas`.
    pub cas_required: bool,
    /// Block time when it was enabled.
    pub created_ms: u64,
}

impl Mount {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u8(self.kind.code());
        w.raw(self.id.as_ref());
        w.str(&self.description);
        w.u32(self.max_versions as usize);
        w.u8(u8::from(self.cas_required));
        w.u64(self.created_ms);
        w.0
    }

    /// Decodes a stored mount.
    pub fn decode(value: &[u8]) -> Result<Mount, StoredError> {
        let mut r = Reader::new("secrets mount", value);
        r.version(VERSION)?;
        let code = r.u8()?;
        let Some(kind) = MountKind::from_code(code) else {
            return Err(r.error(format!("unknown engine kind {code}")));
        };
        let mount = Mount {
            kind,
            id: Digest::from(r.bytes32()?),
            description: r.str()?,
            max_versions: r.u32()? as u32,
            cas_required: r.bool()?,
            created_ms: r.u64()?,
        };
        r.end()?;
        Ok(mount)
    }
}

/// A sorted list of unique names (mounts, policies, a directory's entries).
pub fn encode_names(names: &[String]) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(VERSION);
    write_list(&mut w, names, |w, name| w.str(name));
    w.0
}

/// Decodes a stored name list, refusing one out of order.
pub fn decode_names(value: &[u8]) -> Result<Vec<String>, StoredError> {
    let mut r = Reader::new("name list", value);
    r.version(VERSION)?;
    let names = read_list(&mut r, |r| r.str())?;
    if names.windows(2).any(|w| w[0] >= w[1]) {
        return Err(r.error("names are not sorted and unique"));
    }
    r.end()?;
    Ok(names)
}

/// One version of a secret, as its metadata lists it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct VersionMeta {
    /// The version number, from 1.
    pub version: u64,
    /// Block time of the write.
    pub created_ms: u64,
    /// Block time of a soft delete; 0 if not deleted.
    pub deleted_ms: u64,
    /// Whether its ciphertext is gone for good.
    pub destroyed: bool,
}

/// A KV v2 secret's metadata: settings and every kept version.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Meta {
    /// The newest version (0: none written yet).
    pub current: u64,
    /// Versions kept (0: the mount's setting).
    pub max_versions: u32,
    /// Whether writes must carry `cas`.
    pub cas_required: bool,
    /// Block time of the first write.
    pub created_ms: u64,
    /// Block time of the last change.
    pub updated_ms: u64,
    /// User metadata, sorted by key.
    pub custom: Vec<(String, String)>,
    /// Kept versions, oldest first.
    pub versions: Vec<VersionMeta>,
}

impl Meta {
    /// Metadata of a secret first touched at `now`.
    pub fn new(now: u64) -> Meta {
        Meta {
            current: 0,
            max_versions: 0,
            cas_required: false,
            created_ms: now,
            updated_ms: now,
            custom: Vec::new(),
            versions: Vec::new(),
        }
    }

    /// The kept version `version`, if any.
    pub fn version(&self, version: u64) -> Option<&VersionMeta> {
        self.versions.iter().find(|v| v.version == version)
    }

    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        w.u64(self.current);
        w.u32(self.max_versions as usize);
        w.u8(u8::from(self.cas_required));
        w.u64(self.created_ms);
        w.u64(self.updated_ms);
        write_list(&mut w, &self.custom, |w, (k, v)| {
            w.str(k);
            w.str(v);
        });
        write_list(&mut w, &self.versions, |w, v| {
            w.u64(v.version);
            w.u64(v.created_ms);
            w.u64(v.deleted_ms);
            w.u8(u8::from(v.destroyed));
        });
        w.0
    }

    /// Decodes stored metadata.
    pub fn decode(value: &[u8]) -> Result<Meta, StoredError> {
        let mut r = Reader::new("secret metadata", value);
        r.version(VERSION)?;
        let meta = Meta {
            current: r.u64()?,
            max_versions: r.u32()? as u32,
            cas_required: r.bool()?,
            created_ms: r.u64()?,
            updated_ms: r.u64()?,
            custom: read_list(&mut r, |r| Ok((r.str()?, r.str()?)))?,
            versions: read_list(&mut r, |r| {
                Ok(VersionMeta {
                    version: r.u64()?,
                    created_ms: r.u64()?,
                    deleted_ms: r.u64()?,
                    destroyed: r.bool()?,
                })
            })?,
        };
        if meta
            .versions
            .windows(2)
            .any(|w| w[0].version >= w[1].version)
        {
            return Err(r.error("versions are not in increasing order"));
        }
        r.end()?;
        Ok(meta)
    }
}

/// Where a sealed value's bytes are: every node keeps them beside its block archive under
/// the id of the transaction that carried them, and they hash to `digest` (see
/// [`welkin_types::Detachable`]). State holds only this, so destroying the bytes on every
/// node destroys the value and changes no state root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ValueRef {
    /// The transaction that carried the bytes.
    pub tx: TxId,
    /// Their digest ([`welkin_types::Detachable::digest_of`]).
    pub digest: Digest,
}

impl ValueRef {
    fn write(&self, w: &mut Writer) {
        w.raw(self.tx.as_ref());
        w.raw(self.digest.as_ref());
    }

    fn read(r: &mut Reader<'_>) -> Result<ValueRef, StoredError> {
        Ok(ValueRef {
            tx: Digest::from(r.bytes32()?),
            digest: Digest::from(r.bytes32()?),
        })
    }
}

/// A stored secret version: its target and where its sealed value is.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Value {
    /// The target the cluster signs to open it; computed by the state machine from mount,
    /// path and the writer's nonce, never taken from the sealed bytes.
    pub target: Digest,
    /// Where the sealed value (welkin-sealed encoding) is.
    pub sealed: ValueRef,
}

impl Value {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VALUE_VERSION);
        w.raw(self.target.as_ref());
        self.sealed.write(&mut w);
        w.0
    }

    /// Decodes a stored value.
    pub fn decode(value: &[u8]) -> Result<Value, StoredError> {
        let mut r = Reader::new("secret value", value);
        r.version(VALUE_VERSION)?;
        let target = Digest::from(r.bytes32()?);
        let sealed = ValueRef::read(&mut r)?;
        r.end()?;
        Ok(Value { target, sealed })
    }
}

/// A response kept for a single-use wrapping token (Vault's response wrapping).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Wrapped {
    /// The target that opens it: from the wrapping key and the wrapper's nonce.
    pub target: Digest,
    /// Where the response, sealed to the cluster key, is.
    pub sealed: ValueRef,
    /// The API path of the wrapped request.
    pub path: String,
    /// Block time of wrapping.
    pub created_ms: u64,
    /// The wrapping token's TTL.
    pub ttl_ms: u64,
}

impl Wrapped {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VALUE_VERSION);
        w.raw(self.target.as_ref());
        self.sealed.write(&mut w);
        w.str(&self.path);
        w.u64(self.created_ms);
        w.u64(self.ttl_ms);
        w.0
    }

    /// Decodes a stored wrapped response.
    pub fn decode(value: &[u8]) -> Result<Wrapped, StoredError> {
        let mut r = Reader::new("wrapped response", value);
        r.version(VALUE_VERSION)?;
        let target = Digest::from(r.bytes32()?);
        let wrapped = Wrapped {
            target,
            sealed: ValueRef::read(&mut r)?,
            path: r.str()?,
            created_ms: r.u64()?,
            ttl_ms: r.u64()?,
        };
        r.end()?;
        Ok(wrapped)
    }
}

/// What a KERI identifier's logins get.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Role {
    /// Policy names, sorted.
    pub policies: Vec<String>,
    /// The longest TTL of its tokens, in ms.
    pub ttl_ms: u64,
}

impl Role {
    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        write_list(&mut w, &self.policies, |w, p| w.str(p));
        w.u64(self.ttl_ms);
        w.0
    }

    /// Decodes a stored role.
    pub fn decode(value: &[u8]) -> Result<Role, StoredError> {
        let mut r = Reader::new("keri role", value);
        r.version(VERSION)?;
        let role = Role {
            policies: read_list(&mut r, |r| r.str())?,
            ttl_ms: r.u64()?,
        };
        r.end()?;
        Ok(role)
    }
}

/// A token: what it may do, until when, and how often. Stored under its public key; the
/// token itself is never stored.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Policy names, sorted.
    pub policies: Vec<String>,
    /// Block time of creation.
    pub issued_ms: u64,
    /// Block time after which it is void; 0: never (root tokens).
    pub expire_ms: u64,
    /// Its TTL at creation (the renewal step).
    pub ttl_ms: u64,
    /// Whether `renew-self` may extend it.
    pub renewable: bool,
    /// Requests left; 0: unlimited.
    pub uses_left: u32,
    /// Requests it was created with; 0: unlimited.
    pub num_uses: u32,
    /// A name for humans.
    pub display_name: String,
    /// The token that created it, unless it is an orphan.
    pub parent: Option<PublicKey>,
    /// Free-form metadata, sorted by key.
    pub meta: Vec<(String, String)>,
    /// Tokens it created that are revoked with it.
    pub children: Vec<PublicKey>,
    /// For a KERI login: the identifier and the sequence number of its establishment event
    /// at login. The token works only while that is still the identifier's latest.
    pub identity: Option<(String, u64)>,
}

impl Token {
    /// Whether it grants everything.
    pub fn is_root(&self) -> bool {
        self.policies.iter().any(|p| p == "root")
    }

    /// Whether it is still valid at block time `now`.
    pub fn is_live(&self, now: u64) -> bool {
        self.expire_ms == 0 || now <= self.expire_ms
    }

    /// The stored encoding.
    pub fn encode(&self) -> Vec<u8> {
        let mut w = Writer::default();
        w.u8(VERSION);
        write_list(&mut w, &self.policies, |w, p| w.str(p));
        w.u64(self.issued_ms);
        w.u64(self.expire_ms);
        w.u64(self.ttl_ms);
        w.u8(u8::from(self.renewable));
        w.u32(self.uses_left as usize);
        w.u32(self.num_uses as usize);
        w.str(&self.display_name);
        match &self.parent {
            Some(parent) => {
                w.u8(1);
                w.raw(parent.as_ref());
            }
            None => w.u8(0),
        }
        write_list(&mut w, &self.meta, |w, (k, v)| {
            w.str(k);
            w.str(v);
        });
        write_list(&mut w, &self.children, |w, c| w.raw(c.as_ref()));
        match &self.identity {
            Some((prefix, sn)) => {
                w.u8(1);
                w.str(prefix);
                w.u64(*sn);
            }
            None => w.u8(0),
        }
        w.0
    }

    /// Decodes a stored token.
    pub fn decode(value: &[u8]) -> Result<Token, StoredError> {
        let mut r = Reader::new("secrets token", value);
        r.version(VERSION)?;
        fn key(r: &mut Reader<'_>) -> Result<PublicKey, StoredError> {
            let bytes = r.bytes32()?;
            welkin_types::decode::<PublicKey>(&bytes)
                .map_err(|e| r.error(format!("bad public key: {e}")))
        }
        let token = Token {
            policies: read_list(&mut r, |r| r.str())?,
            issued_ms: r.u64()?,
            expire_ms: r.u64()?,
            ttl_ms: r.u64()?,
            renewable: r.bool()?,
            uses_left: r.u32()? as u32,
            num_uses: r.u32()? as u32,
            display_name: r.str()?,
            parent: match r.u8()? {
                0 => None,
                1 => Some(key(&mut r)?),
                other => return Err(r.error(format!("parent tag {other}"))),
            },
            meta: read_list(&mut r, |r| Ok((r.str()?, r.str()?)))?,
            children: read_list(&mut r, key)?,
            identity: match r.u8()? {
                0 => None,
                1 => Some((r.str()?, r.u64()?)),
                other => return Err(r.error(format!("identity tag {other}"))),
            },
        };
        r.end()?;
        Ok(token)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use commonware_cryptography::Signer as _;
    use welkin_types::{PrivateKey, hash_parts};

    fn token() -> Token {
        Token {
            policies: vec!["app".into(), "default".into()],
            issued_ms: 1,
            expire_ms: 2,
            ttl_ms: 3,
            renewable: true,
            uses_left: 4,
            num_uses: 5,
            display_name: "token-ci".into(),
            parent: Some(PrivateKey::from_seed(1).public_key()),
            meta: vec![("team".into(), "ops".into())],
            children: vec![PrivateKey::from_seed(2).public_key()],
            identity: Some(("Eprefix".into(), 3)),
        }
    }

    fn meta() -> Meta {
        Meta {
            current: 2,
            max_versions: 5,
            cas_required: true,
            created_ms: 10,
            updated_ms: 20,
            custom: vec![("owner".into(), "ops".into())],
            versions: vec![
                VersionMeta {
                    version: 1,
                    created_ms: 10,
                    deleted_ms: 15,
                    destroyed: false,
                },
                VersionMeta {
                    version: 2,
                    created_ms: 20,
                    deleted_ms: 0,
                    destroyed: true,
                },
            ],
        }
    }

    fn mount() -> Mount {
        Mount {
            kind: MountKind::Kv2,
            id: hash_parts(&[b"m"]),
            description: "d".into(),
            max_versions: 3,
            cas_required: false,
            created_ms: 7,
        }
    }

    fn value_ref() -> ValueRef {
        ValueRef {
            tx: hash_parts(&[b"tx"]),
            digest: hash_parts(&[b"digest"]),
        }
    }

    #[test]
    fn records_round_trip_and_refuse_trailing_bytes() {
        let t = token();
        assert_eq!(Token::decode(&t.encode()), Ok(t.clone()));
        let m = meta();
        assert_eq!(Meta::decode(&m.encode()), Ok(m.clone()));
        let mo = mount();
        assert_eq!(Mount::decode(&mo.encode()), Ok(mo.clone()));
        let v = Value {
            target: hash_parts(&[b"t"]),
            sealed: value_ref(),
        };
        assert_eq!(Value::decode(&v.encode()), Ok(v.clone()));
        let names = vec!["a".to_string(), "b/".to_string()];
        assert_eq!(decode_names(&encode_names(&names)), Ok(names));
        for mut bytes in [t.encode(), m.encode(), mo.encode(), v.encode()] {
            bytes.push(0);
            assert!(
                Token::decode(&bytes).is_err()
                    && Meta::decode(&bytes).is_err()
                    && Mount::decode(&bytes).is_err()
                    && Value::decode(&bytes).is_err()
            );
        }
        assert!(decode_names(&encode_names(&["b".into(), "a".into()])).is_err());
        let w = Wrapped {
            target: hash_parts(&[b"w"]),
            sealed: value_ref(),
            path: "secret/data/a".into(),
            created_ms: 1,
            ttl_ms: 2,
        };
        assert_eq!(Wrapped::decode(&w.encode()), Ok(w));
    }

    /// The stored encodings are consensus: a change here is a state-format change.
    #[test]
    fn secrets_records_are_frozen() {
        let v = Value {
            target: hash_parts(&[b"t"]),
            sealed: value_ref(),
        };
        let all = [
            token().encode(),
            meta().encode(),
            mount().encode(),
            v.encode(),
            encode_names(&["a".into(), "b/".into()]),
            Role {
                policies: vec!["app".into()],
                ttl_ms: 5,
            }
            .encode(),
            Wrapped {
                target: hash_parts(&[b"w"]),
                sealed: value_ref(),
                path: "secret/data/a".into(),
                created_ms: 1,
                ttl_ms: 2,
            }
            .encode(),
        ]
        .concat();
        assert_eq!(
            hex::encode(hash_parts(&[&all])),
            "d5100e32627d50eb6eaad1acefc0332506f1ec3b5003e5724ab30703627e5e50",
            "a secrets record encoding changed: bump its version, then update the fixture"
        );
    }
}
