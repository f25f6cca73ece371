//! Stored values: the binary encoding of every value the state machine writes.
//!
//! State values are hashed into the state root, so their bytes are consensus: each has one
//! canonical encoding, fixed here and frozen by the fixtures below. Composite values start
//! with a version byte; a decoder refuses versions it does not know and any byte it would
//! not write itself. A value that does not decode means the store is corrupt (or written by
//! other code): [`crate::apply`] then fails with [`crate::ApplyError::Corrupt`] instead of
//! guessing.
//!
//! | key ([`crate::keys`]) | value |
//! |---|---|
//! | `id_state`, `id_state_at` | key state: [`encode_key_state`] (version 1) |
//! | `id_escrow` | escrow slot: [`crate::escrow`] (version 1) |
//! | `id_superseded` | [`crate::identity::SupersededEvent`] (version 1) |
//! | expiry queue batches | [`crate::expiry`] (version 1) |
//! | `receipt` | [`welkin_types::Receipt`] codec |
//! | sizes, counts, heights, nonce expiries, anchor sources | u64, big-endian |
//! | `id_event`, `id_duplicity` | the KERI message as accepted (CESR/JSON, KERI's format) |
//! | `id_event_tx` | 32-byte transaction id |
//! | `id_anchor` | the anchored SAID, qb64 |
//! | `outcome_detail` | UTF-8 text |
//! | markers (`*_seen`) | one byte 1 |
//!
//! ```text
//! KeyState  := 0x01 | prefix str | sn u64 | digest [32] | ilk str | kt Threshold
//!            | keys u16 (transferable u8 | key [32])* | nt Threshold | next u16 [32]*
//!            | bt u64 | witnesses u16 str* | config u16 str* | delegator (0 | 1 str)
//!            | last_establishment_sn u64 | last_establishment [32]
//! Threshold := 0 | u64                                     (simple)
//!            | 1 | u16 clauses (u16 weights (num u64 | den u64)*)*   (weighted, lowest terms)
//! str       := u16 length | UTF-8
//! ```

use welkin_keri::{Digest as KeriDigest, KeyState, Prefix, Signing, Threshold, VerKey, Weight};

/// The version byte of stored key states.
pub const KEY_STATE_VERSION: u8 = 1;

/// Most entries of any list in a stored value (keys, witnesses, weights): far above what
/// KERI messages of [`welkin_types::limits::MAX_KEY_EVENT_BYTES`] can hold.
const MAX_LIST: usize = 4096;

/// A stored value that does not decode.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("stored {what} does not decode: {reason}")]
pub struct StoredError {
    /// What the value should have been.
    pub what: &'static str,
    /// Why it is not.
    pub reason: String,
}

impl StoredError {
    /// An error about a value of kind `what`.
    pub fn new(what: &'static str, reason: impl Into<String>) -> StoredError {
        StoredError {
            what,
            reason: reason.into(),
        }
    }
}

/// Reads a big-endian u64 value (absent reads as zero).
pub fn decode_u64(value: &[u8]) -> Result<u64, StoredError> {
    let bytes: [u8; 8] = value
        .try_into()
        .map_err(|_| StoredError::new("u64", format!("{} bytes, not 8", value.len())))?;
    Ok(u64::from_be_bytes(bytes))
}

/// Appends values in the stored encodings.
#[derive(Default)]
pub(crate) struct Writer(pub(crate) Vec<u8>);

impl Writer {
    pub(crate) fn u8(&mut self, v: u8) {
        self.0.push(v);
    }

    pub(crate) fn u16(&mut self, v: usize) {
        let v = u16::try_from(v).expect("stored lists and strings are bounded below 2^16");
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u32(&mut self, v: usize) {
        let v = u32::try_from(v).expect("stored byte strings are bounded below 2^32");
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn u64(&mut self, v: u64) {
        self.0.extend_from_slice(&v.to_be_bytes());
    }

    pub(crate) fn raw(&mut self, v: &[u8]) {
        self.0.extend_from_slice(v);
    }

    pub(crate) fn str(&mut self, v: &str) {
        self.u16(v.len());
        self.raw(v.as_bytes());
    }
}

/// Reads values in the stored encodings, naming the kind of value in its errors.
pub(crate) struct Reader<'a> {
    pub(crate) rest: &'a [u8],
    pub(crate) what: &'static str,
}

impl<'a> Reader<'a> {
    pub(crate) fn new(what: &'static str, value: &'a [u8]) -> Reader<'a> {
        Reader { rest: value, what }
    }

    pub(crate) fn error(&self, reason: impl Into<String>) -> StoredError {
        StoredError::new(self.what, reason)
    }

    pub(crate) fn raw(&mut self, n: usize) -> Result<&'a [u8], StoredError> {
        if self.rest.len() < n {
            return Err(self.error(format!(
                "ends early: {n} bytes wanted, {} left",
                self.rest.len()
            )));
        }
        let (head, tail) = self.rest.split_at(n);
        self.rest = tail;
        Ok(head)
    }

    pub(crate) fn u8(&mut self) -> Result<u8, StoredError> {
        Ok(self.raw(1)?[0])
    }

    pub(crate) fn u16(&mut self) -> Result<usize, StoredError> {
        let bytes: [u8; 2] = self.raw(2)?.try_into().expect("2 bytes");
        Ok(usize::from(u16::from_be_bytes(bytes)))
    }

    pub(crate) fn u32(&mut self) -> Result<usize, StoredError> {
        let bytes: [u8; 4] = self.raw(4)?.try_into().expect("4 bytes");
        Ok(u32::from_be_bytes(bytes) as usize)
    }

    pub(crate) fn u64(&mut self) -> Result<u64, StoredError> {
        let bytes: [u8; 8] = self.raw(8)?.try_into().expect("8 bytes");
        Ok(u64::from_be_bytes(bytes))
    }

    pub(crate) fn bytes32(&mut self) -> Result<[u8; 32], StoredError> {
        Ok(self.raw(32)?.try_into().expect("32 bytes"))
    }

    pub(crate) fn list_len(&mut self) -> Result<usize, StoredError> {
        let n = self.u16()?;
        if n > MAX_LIST {
            return Err(self.error(format!("a list of {n} entries, the limit is {MAX_LIST}")));
        }
        Ok(n)
    }

    pub(crate) fn str(&mut self) -> Result<String, StoredError> {
        let n = self.u16()?;
        let bytes = self.raw(n)?;
        String::from_utf8(bytes.to_vec()).map_err(|_| self.error("a string is not UTF-8"))
    }

    pub(crate) fn version(&mut self, known: u8) -> Result<(), StoredError> {
        match self.u8()? {
            v if v == known => Ok(()),
            v => Err(self.error(format!("unknown version {v} (this code reads {known})"))),
        }
    }

    pub(crate) fn bool(&mut self) -> Result<bool, StoredError> {
        match self.u8()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(self.error(format!("flag byte {b}, not 0 or 1"))),
        }
    }

    pub(crate) fn prefix(&mut self) -> Result<Prefix, StoredError> {
        let text = self.str()?;
        Prefix::from_qb64(&text).map_err(|e| self.error(format!("bad prefix {text:?}: {e}")))
    }

    pub(crate) fn end(&self) -> Result<(), StoredError> {
        match self.rest.len() {
            0 => Ok(()),
            n => Err(self.error(format!("{n} trailing bytes"))),
        }
    }
}

fn write_threshold(w: &mut Writer, threshold: &Threshold) {
    match threshold {
        Threshold::Simple(n) => {
            w.u8(0);
            w.u64(*n);
        }
        Threshold::Weighted(clauses) => {
            w.u8(1);
            w.u16(clauses.len());
            for clause in clauses {
                w.u16(clause.len());
                for weight in clause {
                    w.u64(weight.numerator());
                    w.u64(weight.denominator());
                }
            }
        }
    }
}

fn read_threshold(r: &mut Reader<'_>) -> Result<Threshold, StoredError> {
    match r.u8()? {
        0 => Ok(Threshold::Simple(r.u64()?)),
        1 => {
            let mut clauses = Vec::new();
            for _ in 0..r.list_len()? {
                let mut clause = Vec::new();
                for _ in 0..r.list_len()? {
                    let (num, den) = (r.u64()?, r.u64()?);
                    let weight = Weight::new(num, den)
                        .filter(|w| (w.numerator(), w.denominator()) == (num, den))
                        .ok_or_else(|| r.error(format!("weight {num}/{den} is not canonical")))?;
                    clause.push(weight);
                }
                clauses.push(clause);
            }
            Threshold::weighted_from(clauses).map_err(|e| r.error(e.to_string()))
        }
        tag => Err(r.error(format!("threshold tag {tag}"))),
    }
}

pub(crate) fn write_list<T>(w: &mut Writer, items: &[T], mut each: impl FnMut(&mut Writer, &T)) {
    w.u16(items.len());
    for item in items {
        each(w, item);
    }
}

pub(crate) fn read_list<T>(
    r: &mut Reader<'_>,
    mut each: impl FnMut(&mut Reader<'_>) -> Result<T, StoredError>,
) -> Result<Vec<T>, StoredError> {
    let n = r.list_len()?;
    (0..n).map(|_| each(r)).collect()
}

/// The stored encoding of a key state.
pub fn encode_key_state(state: &KeyState) -> Vec<u8> {
    let mut w = Writer::default();
    w.u8(KEY_STATE_VERSION);
    w.str(&state.prefix.qb64());
    w.u64(state.sn);
    w.raw(&state.digest.0);
    w.str(&state.ilk);
    write_threshold(&mut w, &state.signing.kt);
    write_list(&mut w, &state.signing.keys, |w, k| {
        w.u8(u8::from(k.transferable));
        w.raw(&k.key);
    });
    write_threshold(&mut w, &state.signing.nt);
    write_list(&mut w, &state.signing.next, |w, d| w.raw(&d.0));
    w.u64(state.bt);
    write_list(&mut w, &state.witnesses, |w, p| w.str(&p.qb64()));
    write_list(&mut w, &state.config, |w, c| w.str(c));
    match &state.delegator {
        Some(d) => {
            w.u8(1);
            w.str(&d.qb64());
        }
        None => w.u8(0),
    }
    w.u64(state.last_establishment_sn);
    w.raw(&state.last_establishment.0);
    w.0
}

/// Decodes a stored key state.
pub fn decode_key_state(value: &[u8]) -> Result<KeyState, StoredError> {
    let r = &mut Reader::new("key state", value);
    r.version(KEY_STATE_VERSION)?;
    let prefix = r.prefix()?;
    let sn = r.u64()?;
    let digest = KeriDigest(r.bytes32()?);
    let ilk = r.str()?;
    let kt = read_threshold(r)?;
    let keys = read_list(r, |r| {
        let transferable = r.bool()?;
        Ok(VerKey {
            key: r.bytes32()?,
            transferable,
        })
    })?;
    let nt = read_threshold(r)?;
    let next = read_list(r, |r| Ok(KeriDigest(r.bytes32()?)))?;
    let bt = r.u64()?;
    let witnesses = read_list(r, |r| r.prefix())?;
    let config = read_list(r, |r| r.str())?;
    let delegator = if r.bool()? { Some(r.prefix()?) } else { None };
    let last_establishment_sn = r.u64()?;
    let last_establishment = KeriDigest(r.bytes32()?);
    r.end()?;
    Ok(KeyState {
        prefix,
        sn,
        digest,
        ilk,
        signing: Signing { kt, keys, nt, next },
        bt,
        witnesses,
        config,
        delegator,
        last_establishment_sn,
        last_establishment,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use welkin_keri::{InceptionBuilder, Signer, Threshold};

    /// A key state with every field in use: weighted thresholds, witnesses, a trait and a
    /// delegator.
    fn full_key_state() -> KeyState {
        let keys: Vec<VerKey> = (1..=3).map(|s| Signer::new(&[s; 32]).verkey()).collect();
        let half = Threshold::weighted_from(vec![vec![
            Weight::new(1, 2).expect("weight"),
            Weight::new(1, 2).expect("weight"),
            Weight::new(1, 3).expect("weight"),
        ]])
        .expect("threshold");
        let icp = InceptionBuilder::new(keys.clone())
            .kt(half.clone())
            .next(
                vec![Signer::new(&[9; 32]).verkey().next_digest()],
                Threshold::Simple(1),
            )
            .build();
        let delegator = Prefix::Basic(Signer::new(&[7; 32]).verkey());
        let witness = Prefix::Basic(Signer::non_transferable(&[8; 32]).verkey());
        KeyState {
            prefix: icp.prefix(),
            sn: 3,
            digest: icp.said(),
            ilk: "ixn".into(),
            signing: Signing {
                kt: half,
                keys,
                nt: Threshold::Simple(1),
                next: vec![Signer::new(&[9; 32]).verkey().next_digest()],
            },
            bt: 1,
            witnesses: vec![witness],
            config: vec!["EO".into()],
            delegator: Some(delegator),
            last_establishment_sn: 2,
            last_establishment: icp.said(),
        }
    }

    #[test]
    fn key_states_round_trip_and_refuse_any_other_bytes() {
        let state = full_key_state();
        let bytes = encode_key_state(&state);
        assert_eq!(decode_key_state(&bytes), Ok(state));
        for cut in 0..bytes.len() {
            assert!(decode_key_state(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode_key_state(&longer).is_err());
        let mut other = bytes.clone();
        other[0] = 2;
        let error = decode_key_state(&other).expect_err("version 2");
        assert!(error.to_string().contains("unknown version 2"), "{error}");
        assert!(
            decode_key_state(b"{\"i\":\"E\"}").is_err(),
            "JSON is not a key state"
        );
    }

    #[test]
    fn u64_values_are_exactly_eight_bytes() {
        assert_eq!(decode_u64(&7u64.to_be_bytes()), Ok(7));
        let error = decode_u64(&[1, 2, 3]).expect_err("3 bytes");
        assert_eq!(
            error.to_string(),
            "stored u64 does not decode: 3 bytes, not 8"
        );
    }

    #[test]
    fn stored_encodings_are_frozen() {
        let fingerprint = |bytes: &[u8]| hex::encode(welkin_types::hash_parts(&[bytes]));
        let superseded = crate::identity::SupersededEvent {
            recovery_sn: 1,
            tx: Some(welkin_types::hash_parts(&[b"tx"])),
            message: b"{\"v\":\"KERI10JSON\"}".to_vec(),
        };
        let batch = crate::expiry::Batch {
            due_ms: 1_700_000_600_000,
            items: vec![vec![7; 32], b"E-prefix".to_vec()],
        };
        let actual = [
            (
                "key state",
                fingerprint(&encode_key_state(&full_key_state())),
            ),
            ("superseded event", fingerprint(&superseded.encode())),
            ("expiry batch", fingerprint(&batch.encode())),
        ];
        let expected = [
            (
                "key state",
                "6e3a9751a16b01aa7f04c57ea6ff4fc243b53da7af205004ed8a270a47cc03a9",
            ),
            (
                "superseded event",
                "8599a3c585fbaed48ed426b3eee4a140b633dd68f028506698c6a68aa17648b0",
            ),
            (
                "expiry batch",
                "8fb1fdd1e63b738e3c06de6a28a235147383fa62fee989bd1e51669fa036f706",
            ),
        ];
        let changed: Vec<String> = actual
            .iter()
            .zip(expected)
            .filter(|((_, got), (_, want))| got != want)
            .map(|((name, got), _)| format!("{name}: {got}"))
            .collect();
        assert!(
            changed.is_empty(),
            "encodings changed (bump their versions, then the fixtures): {changed:?}"
        );
    }
}
