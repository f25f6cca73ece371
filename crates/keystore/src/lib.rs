//! A passphrase-encrypted file of KERI identity keys.
//!
//! ```text
//! { "version": 1,
//!   "kdf": { "algorithm": "argon2id", "salt": <b64>, "memory_kib": .., "iterations": .., "lanes": .. },
//!   "nonce": <b64>, "sealed": <b64 ChaCha20-Poly1305 of the contents JSON> }
//! ```
//!
//! The contents map names to [`Identity`]: the identifier's prefix and the 32-byte seeds of
//! its current and next keys. Seeds are zeroized when an [`Identity`] is dropped. Every save
//! writes a new salt and nonce to a temporary file, syncs it, renames it over the old one and
//! syncs the directory, so a crash leaves either the old or the new keystore, never neither.
//!
//! The key derivation parameters are read from the file, so a damaged or hostile file could
//! ask for terabytes of memory or days of work. They are checked against fixed ranges
//! ([`MEMORY_KIB_RANGE`], [`ITERATIONS_RANGE`], [`LANES_RANGE`], [`SALT_BYTES_RANGE`]) before
//! any work is done, and so is the file's size ([`MAX_FILE_BYTES`]).

#![deny(missing_docs)]

use argon2::{Algorithm, Argon2, Params, Version};
use base64::Engine as _;
use chacha20poly1305::{
    ChaCha20Poly1305, KeyInit, Nonce,
    aead::{Aead, Generate as _, array::Array, consts::U16},
};
use serde::{Deserialize, Serialize};
use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
};
use zeroize::{Zeroize, ZeroizeOnDrop, Zeroizing};

/// The file format version.
pub const VERSION: u32 = 1;

/// Argon2id memory cost used for new keystores (KiB): 19 MiB, the OWASP baseline.
pub const MEMORY_KIB: u32 = 19 * 1024;
/// Argon2id iterations used for new keystores.
pub const ITERATIONS: u32 = 2;

/// Argon2id memory costs (KiB) accepted from a file: from OWASP's weakest recommended
/// setting (7 MiB, with 5 iterations) to 256 MiB, 13 times what this version writes.
pub const MEMORY_KIB_RANGE: std::ops::RangeInclusive<u32> = 7 * 1024..=256 * 1024;
/// Argon2id iteration counts accepted from a file.
pub const ITERATIONS_RANGE: std::ops::RangeInclusive<u32> = 1..=10;
/// Argon2id lane counts accepted from a file.
pub const LANES_RANGE: std::ops::RangeInclusive<u32> = 1..=8;
/// Salt lengths (bytes) accepted from a file; this version writes 16.
pub const SALT_BYTES_RANGE: std::ops::RangeInclusive<usize> = 8..=64;
/// The largest keystore file read: far above any real one (a few hundred bytes per identity).
pub const MAX_FILE_BYTES: u64 = 16 * 1024 * 1024;

/// Why a keystore could not be opened or saved.
#[derive(Debug, thiserror::Error)]
pub enum KeystoreError {
    /// Reading or writing the file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The error.
        source: std::io::Error,
    },
    /// The file is not a keystore of this version.
    #[error("{path} is not a welkin keystore: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A key derivation parameter in the file is outside the accepted range.
    #[error(
        "{path}: key derivation {field} {value} is outside {min}..={max} (refusing to derive a key with it; the file was not written by welkin)"
    )]
    KdfOutOfRange {
        /// The file.
        path: PathBuf,
        /// Which parameter.
        field: &'static str,
        /// Its value in the file.
        value: u64,
        /// The smallest accepted.
        min: u64,
        /// The largest accepted.
        max: u64,
    },
    /// Decryption failed: wrong passphrase, or the file was changed.
    #[error("cannot open {path}: wrong passphrase, or the file was modified")]
    Decrypt {
        /// The file.
        path: PathBuf,
    },
    /// No identity by that name.
    #[error("no identity named {name:?} in the keystore (have: {known})")]
    Unknown {
        /// The name asked for.
        name: String,
        /// The names there are.
        known: String,
    },
    /// An identity by that name exists already.
    #[error("an identity named {name:?} exists already")]
    Exists {
        /// The name.
        name: String,
    },
}

/// The keys of one identifier. `Debug` shows the prefix and key counts, never a seed.
#[derive(Clone, Serialize, Deserialize, Zeroize, ZeroizeOnDrop)]
pub struct Identity {
    /// The identifier (qb64), once incepted.
    pub prefix: String,
    /// Seeds of the current signing keys, in key order.
    #[serde(with = "seeds")]
    pub current: Vec<[u8; 32]>,
    /// Seeds of the pre-committed next keys, in order.
    #[serde(with = "seeds")]
    pub next: Vec<[u8; 32]>,
    /// Seeds committed to by a rotation that was submitted but not yet confirmed.
    #[serde(with = "seeds", default)]
    pub pending_next: Vec<[u8; 32]>,
    /// X25519 secret keys for values sealed to this identifier, newest last (the newest is
    /// the one registered with the cluster; older ones still open what was sealed to them).
    #[serde(with = "seeds", default)]
    pub encryption: Vec<[u8; 32]>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity")
            .field("prefix", &self.prefix)
            .field("current", &self.current.len())
            .field("next", &self.next.len())
            .field("pending_next", &self.pending_next.len())
            .field("encryption", &self.encryption.len())
            .finish()
    }
}

mod seeds {
    use serde::{Deserialize, Deserializer, Serializer, de::Error as _};

    pub(super) fn serialize<S: Serializer>(seeds: &[[u8; 32]], s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(seeds.iter().map(hex::encode))
    }

    pub(super) fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<[u8; 32]>, D::Error> {
        Vec::<String>::deserialize(d)?
            .iter()
            .map(|text| {
                let bytes = hex::decode(text).map_err(D::Error::custom)?;
                <[u8; 32]>::try_from(bytes.as_slice())
                    .map_err(|_| D::Error::custom("a seed is 32 bytes"))
            })
            .collect()
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Kdf {
    algorithm: String,
    salt: String,
    memory_kib: u32,
    iterations: u32,
    lanes: u32,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    version: u32,
    kdf: Kdf,
    nonce: String,
    sealed: String,
}

#[derive(Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Contents {
    identities: BTreeMap<String, Identity>,
}

/// An open keystore.
pub struct Keystore {
    path: PathBuf,
    passphrase: Zeroizing<String>,
    contents: Contents,
}

fn b64() -> base64::engine::GeneralPurpose {
    base64::engine::general_purpose::STANDARD
}

impl Kdf {
    /// Refuses parameters outside the accepted ranges, before any memory is allocated.
    fn check(&self, path: &Path, salt_len: usize) -> Result<(), KeystoreError> {
        let checks = [
            ("memory_kib", self.memory_kib, &MEMORY_KIB_RANGE),
            ("iterations", self.iterations, &ITERATIONS_RANGE),
            ("lanes", self.lanes, &LANES_RANGE),
        ];
        for (field, value, range) in checks {
            if !range.contains(&value) {
                return Err(KeystoreError::KdfOutOfRange {
                    path: path.to_path_buf(),
                    field,
                    value: value.into(),
                    min: (*range.start()).into(),
                    max: (*range.end()).into(),
                });
            }
        }
        if !SALT_BYTES_RANGE.contains(&salt_len) {
            return Err(KeystoreError::KdfOutOfRange {
                path: path.to_path_buf(),
                field: "salt length",
                value: salt_len as u64,
                min: *SALT_BYTES_RANGE.start() as u64,
                max: *SALT_BYTES_RANGE.end() as u64,
            });
        }
        Ok(())
    }
}

fn derive_key(passphrase: &str, salt: &[u8], kdf: &Kdf) -> Result<Zeroizing<[u8; 32]>, String> {
    let params = Params::new(kdf.memory_kib, kdf.iterations, kdf.lanes, Some(32))
        .map_err(|e| format!("bad key derivation parameters: {e}"))?;
    let mut key = Zeroizing::new([0u8; 32]);
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
        .hash_password_into(passphrase.as_bytes(), salt, key.as_mut())
        .map_err(|e| format!("key derivation failed: {e}"))?;
    Ok(key)
}

impl Keystore {
    /// Opens the keystore at `path`, or starts an empty one if there is no file yet (it is
    /// written on [`Keystore::save`]).
    pub fn open_or_create(path: &Path, passphrase: &str) -> Result<Self, KeystoreError> {
        let format = |reason: String| KeystoreError::Format {
            path: path.to_path_buf(),
            reason,
        };
        let text = match read_bounded(path) {
            Ok(text) => text,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Ok(Self {
                    path: path.to_path_buf(),
                    passphrase: Zeroizing::new(passphrase.to_string()),
                    contents: Contents::default(),
                });
            }
            Err(source) => {
                return Err(KeystoreError::Io {
                    path: path.to_path_buf(),
                    source,
                });
            }
        };
        let file: File = serde_json::from_str(&text).map_err(|e| format(e.to_string()))?;
        if file.version != VERSION {
            return Err(format(format!(
                "version {} (this welkin reads {VERSION})",
                file.version
            )));
        }
        if file.kdf.algorithm != "argon2id" {
            return Err(format(format!(
                "unknown key derivation {}",
                file.kdf.algorithm
            )));
        }
        let decode = |field: &str, text: &str| {
            b64()
                .decode(text)
                .map_err(|e| format(format!("{field} is not base64: {e}")))
        };
        let salt = decode("salt", &file.kdf.salt)?;
        let nonce = decode("nonce", &file.nonce)?;
        let sealed = decode("sealed", &file.sealed)?;
        let nonce = Nonce::try_from(nonce.as_slice())
            .map_err(|_| format(format!("nonce must be 12 bytes, not {}", nonce.len())))?;
        file.kdf.check(path, salt.len())?;
        let key = derive_key(passphrase, &salt, &file.kdf).map_err(format)?;
        let cipher = ChaCha20Poly1305::new((&*key).into());
        let plain = Zeroizing::new(cipher.decrypt(&nonce, sealed.as_slice()).map_err(|_| {
            KeystoreError::Decrypt {
                path: path.to_path_buf(),
            }
        })?);
        let contents: Contents = serde_json::from_slice(&plain)
            .map_err(|e| format(format!("sealed contents unreadable: {e}")))?;
        Ok(Self {
            path: path.to_path_buf(),
            passphrase: Zeroizing::new(passphrase.to_string()),
            contents,
        })
    }

    /// Encrypts and writes the keystore (file mode 0600 on Unix), atomically.
    pub fn save(&self) -> Result<(), KeystoreError> {
        let io = |source| KeystoreError::Io {
            path: self.path.clone(),
            source,
        };
        // From the operating system's generator; it panics if that fails, as nothing can be
        // sealed safely without it.
        let salt = Array::<u8, U16>::generate();
        let kdf = Kdf {
            algorithm: "argon2id".into(),
            salt: b64().encode(salt),
            memory_kib: MEMORY_KIB,
            iterations: ITERATIONS,
            lanes: 1,
        };
        let key =
            derive_key(&self.passphrase, &salt, &kdf).map_err(|reason| KeystoreError::Format {
                path: self.path.clone(),
                reason,
            })?;
        let nonce = Nonce::generate();
        let plain = Zeroizing::new(
            serde_json::to_vec(&self.contents).expect("keystore contents serialize"),
        );
        let sealed = ChaCha20Poly1305::new((&*key).into())
            .encrypt(&nonce, plain.as_slice())
            .expect("encryption of a small buffer cannot fail");
        let file = File {
            version: VERSION,
            kdf,
            nonce: b64().encode(nonce),
            sealed: b64().encode(sealed),
        };
        let text = serde_json::to_string_pretty(&file).expect("file serializes");
        let mut temporary = self.path.clone().into_os_string();
        temporary.push(".tmp");
        let temporary = PathBuf::from(temporary);
        write_private(&temporary, text.as_bytes()).map_err(io)?;
        std::fs::rename(&temporary, &self.path).map_err(io)?;
        sync_parent(&self.path).map_err(io)
    }

    /// The identity called `name`.
    pub fn get(&self, name: &str) -> Result<&Identity, KeystoreError> {
        self.contents
            .identities
            .get(name)
            .ok_or_else(|| self.unknown(name))
    }

    /// The identity called `name`, to change (then [`Keystore::save`]).
    pub fn get_mut(&mut self, name: &str) -> Result<&mut Identity, KeystoreError> {
        if !self.contents.identities.contains_key(name) {
            return Err(self.unknown(name));
        }
        Ok(self
            .contents
            .identities
            .get_mut(name)
            .expect("checked above"))
    }

    /// Adds a new identity called `name`.
    pub fn insert(&mut self, name: &str, identity: Identity) -> Result<(), KeystoreError> {
        if self.contents.identities.contains_key(name) {
            return Err(KeystoreError::Exists { name: name.into() });
        }
        self.contents.identities.insert(name.into(), identity);
        Ok(())
    }

    /// The names of the identities, sorted.
    pub fn names(&self) -> Vec<String> {
        self.contents.identities.keys().cloned().collect()
    }

    fn unknown(&self, name: &str) -> KeystoreError {
        let known = self.names().join(", ");
        KeystoreError::Unknown {
            name: name.into(),
            known: if known.is_empty() {
                "none".into()
            } else {
                known
            },
        }
    }
}

/// Reads the file as text, refusing one larger than [`MAX_FILE_BYTES`].
fn read_bounded(path: &Path) -> std::io::Result<String> {
    use std::io::Read as _;
    let file = std::fs::File::open(path)?;
    let mut text = String::new();
    file.take(MAX_FILE_BYTES + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_FILE_BYTES {
        return Err(std::io::Error::new(
            std::io::ErrorKind::InvalidData,
            format!("larger than {MAX_FILE_BYTES} bytes; not a keystore"),
        ));
    }
    Ok(text)
}

/// Syncs the directory holding `path`, so that a rename into it survives a crash.
fn sync_parent(path: &Path) -> std::io::Result<()> {
    let parent = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    std::fs::File::open(parent)?.sync_all()
}

/// Writes a new file readable only by its owner; a leftover file of the same name (from a
/// save that crashed) is removed first, so its permissions are never inherited.
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write as _;
    match std::fs::remove_file(path) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(e),
    }
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt as _;
        options.mode(0o600);
    }
    let mut file = options.open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity() -> Identity {
        Identity {
            prefix: "Eabc".into(),
            current: vec![[1; 32]],
            next: vec![[2; 32]],
            pending_next: vec![],
            encryption: vec![[3; 32]],
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("welkin-keystore-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        dir.join(name)
    }

    #[test]
    fn round_trip_and_wrong_passphrase() {
        let path = temp("round-trip.json");
        let mut store = Keystore::open_or_create(&path, "correct horse").expect("new");
        store.insert("alice", identity()).expect("insert");
        assert!(matches!(
            store.insert("alice", identity()),
            Err(KeystoreError::Exists { .. })
        ));
        store.save().expect("save");
        let text = std::fs::read_to_string(&path).expect("file");
        assert!(
            !text.contains(&hex::encode([1u8; 32])),
            "seeds are not in clear"
        );
        let reopened = Keystore::open_or_create(&path, "correct horse").expect("opens");
        assert_eq!(reopened.get("alice").expect("alice").current, vec![[1; 32]]);
        assert_eq!(
            reopened.get("alice").expect("alice").encryption,
            vec![[3; 32]]
        );
        assert!(matches!(
            reopened.get("bob"),
            Err(KeystoreError::Unknown { .. })
        ));
        assert!(matches!(
            Keystore::open_or_create(&path, "wrong"),
            Err(KeystoreError::Decrypt { .. })
        ));
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
    }

    #[test]
    fn tampering_and_garbage_are_refused() {
        let path = temp("tamper.json");
        let mut store = Keystore::open_or_create(&path, "pw").expect("new");
        store.insert("alice", identity()).expect("insert");
        store.save().expect("save");
        let mut file: serde_json::Value =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("file")).expect("json");
        let sealed = file["sealed"].as_str().expect("sealed").to_string();
        let mut bytes = b64().decode(sealed).expect("b64");
        bytes[0] ^= 1;
        file["sealed"] = serde_json::json!(b64().encode(bytes));
        std::fs::write(&path, file.to_string()).expect("write");
        assert!(matches!(
            Keystore::open_or_create(&path, "pw"),
            Err(KeystoreError::Decrypt { .. })
        ));
        std::fs::write(&path, "{\"version\": 9}").expect("write");
        assert!(matches!(
            Keystore::open_or_create(&path, "pw"),
            Err(KeystoreError::Format { .. })
        ));
    }

    #[test]
    fn pending_rotation_survives_a_save() {
        let path = temp("pending.json");
        let mut store = Keystore::open_or_create(&path, "pw").expect("new");
        store.insert("alice", identity()).expect("insert");
        store.get_mut("alice").expect("alice").pending_next = vec![[3; 32]];
        store.save().expect("save");
        let reopened = Keystore::open_or_create(&path, "pw").expect("opens");
        assert_eq!(
            reopened.get("alice").expect("alice").pending_next,
            vec![[3; 32]]
        );
    }

    fn saved(name: &str) -> (PathBuf, serde_json::Value) {
        let path = temp(name);
        let mut store = Keystore::open_or_create(&path, "pw").expect("new");
        store.insert("alice", identity()).expect("insert");
        store.save().expect("save");
        let file =
            serde_json::from_str(&std::fs::read_to_string(&path).expect("file")).expect("json");
        (path, file)
    }

    #[test]
    fn out_of_range_key_derivation_is_refused_before_deriving() {
        let (path, file) = saved("kdf.json");
        let cases = [
            (
                "memory_kib",
                serde_json::json!(u32::MAX),
                "memory_kib 4294967295",
            ),
            ("memory_kib", serde_json::json!(8), "memory_kib 8"),
            (
                "iterations",
                serde_json::json!(1_000_000),
                "iterations 1000000",
            ),
            ("iterations", serde_json::json!(0), "iterations 0"),
            ("lanes", serde_json::json!(0), "lanes 0"),
            ("lanes", serde_json::json!(1024), "lanes 1024"),
            (
                "salt",
                serde_json::json!(b64().encode([7u8; 4])),
                "salt length 4",
            ),
        ];
        for (field, value, says) in cases {
            let mut changed = file.clone();
            changed["kdf"][field] = value;
            std::fs::write(&path, changed.to_string()).expect("write");
            let error = Keystore::open_or_create(&path, "pw")
                .err()
                .unwrap_or_else(|| panic!("{field} accepted"));
            assert!(
                matches!(error, KeystoreError::KdfOutOfRange { .. }),
                "{field}: {error}"
            );
            assert!(error.to_string().contains(says), "{error}");
        }
        std::fs::write(&path, file.to_string()).expect("write");
        assert!(
            Keystore::open_or_create(&path, "pw").is_ok(),
            "the untouched file opens"
        );
    }

    #[test]
    fn oversized_file_is_refused_unread() {
        let path = temp("huge.json");
        std::fs::write(&path, vec![b' '; MAX_FILE_BYTES as usize + 1]).expect("write");
        let error = Keystore::open_or_create(&path, "pw")
            .err()
            .expect("refused");
        assert!(error.to_string().contains("larger than"), "{error}");
    }

    #[test]
    fn save_replaces_a_leftover_temporary_file_with_a_private_one() {
        let path = temp("leftover.json");
        let temporary = temp("leftover.json.tmp");
        std::fs::write(&temporary, "stale").expect("write");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            std::fs::set_permissions(&temporary, std::fs::Permissions::from_mode(0o644))
                .expect("chmod");
        }
        let mut store = Keystore::open_or_create(&path, "pw").expect("new");
        store.insert("alice", identity()).expect("insert");
        store.save().expect("save");
        assert!(!temporary.exists(), "renamed into place");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt as _;
            let mode = std::fs::metadata(&path).expect("meta").permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
        }
        assert!(Keystore::open_or_create(&path, "pw").is_ok());
    }

    #[test]
    fn a_keystore_written_by_an_earlier_build_opens_and_resaves() {
        // `fixtures/keystore-v1.json` was written by `welkin id incept` built with
        // chacha20poly1305 0.10 (passphrase "fixture-passphrase"): it freezes the file format
        // against changes in the AEAD crate.
        let path = temp("fixture.json");
        std::fs::write(&path, include_str!("../fixtures/keystore-v1.json")).expect("write");
        let store = Keystore::open_or_create(&path, "fixture-passphrase").expect("opens");
        let alice = store.get("alice").expect("alice").clone();
        assert_eq!((alice.current.len(), alice.next.len()), (1, 1));
        assert_ne!(alice.current, alice.next);
        assert!(
            alice.encryption.is_empty(),
            "written before encryption keys"
        );
        assert!(matches!(
            Keystore::open_or_create(&path, "wrong"),
            Err(KeystoreError::Decrypt { .. })
        ));
        store.save().expect("save");
        let reopened = Keystore::open_or_create(&path, "fixture-passphrase").expect("reopens");
        let again = reopened.get("alice").expect("alice");
        assert_eq!(
            (&again.prefix, &again.current, &again.next),
            (&alice.prefix, &alice.current, &alice.next)
        );
    }
}
