//! Reading events and message streams: a KERI JSON event followed by CESR attachments.
//!
//! Reading is strict. The event must start with `{"v":"KERI10JSON`, its version string's
//! size must be the length of the JSON object, the fields must be exactly the ilk's in the
//! required order, the bytes must be the canonical compact serialization of the parsed
//! fields, and the SAIDs must match. Attachments are counter-framed groups (`-A##` and so
//! on, optionally wrapped in one `-V##`/`-0V#####` group) up to the next event or the end.

use crate::attachment::Attachments;
use crate::cesr::{CesrError, excerpt};
use crate::event::{
    Event, EventBody, Ilk, Inception, Interaction, MAX_EVENT_SIZE, Receipt, Rotation, Signing,
    VERSION_PREFIX, VERSION_SIZE, compute_said, parse_sn,
};
use crate::json::Json;
use crate::primitive::{Digest, Prefix, VerKey};
use crate::threshold::{Threshold, ThresholdError};

/// Largest number of keys, next digests or witnesses in one event.
pub const MAX_LIST: usize = 256;

/// A reason for rejecting an event or message.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// The input does not start like a KERI JSON event.
    #[error("not a KERI JSON event: expected {{\"v\":\"KERI10JSON..., found {found:?}")]
    NotAnEvent {
        /// The start of the input.
        found: String,
    },
    /// The version string is not `KERI10JSON` + 6 lowercase hex digits + `_`.
    #[error("invalid version string {found:?}: expected KERI10JSON followed by 6 hex digits and _")]
    VersionString {
        /// The rejected version string.
        found: String,
    },
    /// The version string announces more bytes than there are.
    #[error("truncated event: version string says {declared} bytes, {available} available")]
    Truncated {
        /// The declared size.
        declared: usize,
        /// The bytes available.
        available: usize,
    },
    /// The event is larger than [`MAX_EVENT_SIZE`].
    #[error("event size {declared} exceeds the limit of {MAX_EVENT_SIZE} bytes")]
    TooLarge {
        /// The declared size.
        declared: usize,
    },
    /// The bytes are not JSON.
    #[error("malformed event JSON: {reason}")]
    MalformedJson {
        /// serde_json's description.
        reason: String,
    },
    /// The JSON object's length differs from the version string's size.
    #[error("version string size {declared} does not match the event's {actual} bytes")]
    SizeMismatch {
        /// The declared size.
        declared: usize,
        /// The length of the JSON object.
        actual: usize,
    },
    /// The JSON is not an object.
    #[error("event is not a JSON object")]
    NotAnObject,
    /// `t` is missing, not a string, or not a supported event type.
    #[error("unsupported event type {found:?}")]
    UnknownIlk {
        /// The `t` value.
        found: String,
    },
    /// A required field is absent.
    #[error("{ilk} event is missing field {field:?}")]
    MissingField {
        /// The event type.
        ilk: &'static str,
        /// The missing label.
        field: &'static str,
    },
    /// A field not defined for the event type.
    #[error("{ilk} event has unexpected field {field:?}")]
    UnexpectedField {
        /// The event type.
        ilk: &'static str,
        /// The extra label.
        field: String,
    },
    /// A field appears twice.
    #[error("{ilk} event repeats field {field:?}")]
    DuplicateField {
        /// The event type.
        ilk: &'static str,
        /// The repeated label.
        field: String,
    },
    /// The fields are all there but in the wrong order.
    #[error("{ilk} event fields out of order: expected {expected:?}, found {found:?}")]
    FieldOrder {
        /// The event type.
        ilk: &'static str,
        /// The required order.
        expected: Vec<&'static str>,
        /// The order found.
        found: Vec<String>,
    },
    /// A field has the wrong JSON type or an invalid value.
    #[error("field {field:?} is not {expected}: {found}")]
    FieldValue {
        /// The label.
        field: &'static str,
        /// What it should be.
        expected: &'static str,
        /// The start of the rejected value.
        found: String,
    },
    /// A field holds an invalid CESR primitive.
    #[error("field {field:?}: {source}")]
    Primitive {
        /// The label.
        field: &'static str,
        /// Why the primitive was rejected.
        source: CesrError,
    },
    /// A threshold field is invalid.
    #[error("field {field:?}: {source}")]
    Threshold {
        /// `kt` or `nt`.
        field: &'static str,
        /// Why the threshold was rejected.
        source: ThresholdError,
    },
    /// A list is longer than [`MAX_LIST`].
    #[error("field {field:?} has {len} entries, more than {MAX_LIST}")]
    ListTooLong {
        /// The label.
        field: &'static str,
        /// Its length.
        len: usize,
    },
    /// The bytes are valid JSON with the right fields but not the canonical serialization
    /// (spaces, escapes, number forms): the SAID and signatures would not be reproducible.
    #[error("event is not in canonical compact JSON form")]
    NonCanonical,
    /// The SAID in `d` (or a self-addressing `i`) is not the digest of the event.
    #[error("invalid SAID in field {field:?}: found {found}, computed {computed}")]
    SaidMismatch {
        /// `d` or `i`.
        field: &'static str,
        /// The value in the event.
        found: String,
        /// The digest computed from the event.
        computed: String,
    },
    /// An attachment is not valid CESR.
    #[error("invalid attachment: {0}")]
    Attachment(#[from] CesrError),
    /// Attachments are not ASCII text.
    #[error("attachments are not CESR text at byte {offset}")]
    AttachmentNotText {
        /// Offset from the start of the attachments.
        offset: usize,
    },
    /// A `-V` group's content does not end on a group boundary.
    #[error("attachment group of {declared} characters does not hold whole groups")]
    GroupSize {
        /// The group's size in characters.
        declared: usize,
    },
    /// A counter not allowed at this position (e.g. `-V` inside `-V`).
    #[error("unexpected counter {code} in attachments")]
    UnexpectedCounter {
        /// The counter's code.
        code: &'static str,
    },
}

/// Reads one event from the start of `input`; returns it and its length in bytes.
pub fn parse_event(input: &[u8]) -> Result<(Event, usize), ParseError> {
    let size = declared_size(input)?;
    let raw = &input[..size];
    let mut stream = serde_json::Deserializer::from_slice(input).into_iter::<Json>();
    let value = match stream.next() {
        Some(Ok(value)) => value,
        Some(Err(e)) => {
            return Err(ParseError::MalformedJson {
                reason: e.to_string(),
            });
        }
        None => {
            return Err(ParseError::MalformedJson {
                reason: "empty input".into(),
            });
        }
    };
    let actual = stream.byte_offset();
    if actual != size {
        return Err(ParseError::SizeMismatch {
            declared: size,
            actual,
        });
    }
    let fields = value.as_object().ok_or(ParseError::NotAnObject)?;
    let ilk = check_fields(fields)?;
    let get = |label: &str| {
        fields
            .iter()
            .find(|(k, _)| k == label)
            .map(|(_, v)| v)
            .expect("checked fields")
    };
    let body = read_body(ilk, &get)?;
    let self_addressing =
        matches!(&body, EventBody::Inception(i) if matches!(i.prefix, Prefix::SelfAddressing(_)));
    let said = match &body {
        EventBody::Receipt(r) => r.said,
        _ => {
            let found = digest(get("d"), "d")?;
            let computed = compute_said(&body, self_addressing);
            if found != computed {
                return Err(said_mismatch("d", found, computed));
            }
            if let (true, EventBody::Inception(i)) = (self_addressing, &body)
                && i.prefix != Prefix::SelfAddressing(computed)
            {
                return Err(said_mismatch("i", digest(get("i"), "i")?, computed));
            }
            found
        }
    };
    let event = Event::from_parts(
        String::from_utf8_lossy(raw).into_owned(),
        said,
        body.clone(),
    );
    if Event::new(body).raw() != event.raw() {
        return Err(ParseError::NonCanonical);
    }
    Ok((event, size))
}

fn said_mismatch(field: &'static str, found: Digest, computed: Digest) -> ParseError {
    ParseError::SaidMismatch {
        field,
        found: found.qb64(),
        computed: computed.qb64(),
    }
}

/// The size in the version string at the start of `input`, checked against the input.
fn declared_size(input: &[u8]) -> Result<usize, ParseError> {
    const START: &[u8] = b"{\"v\":\"";
    let head = &input[..input.len().min(START.len() + VERSION_SIZE)];
    if !input.starts_with(START) {
        return Err(ParseError::NotAnEvent {
            found: String::from_utf8_lossy(head).into_owned(),
        });
    }
    let version = &input[START.len()..];
    let bad = || ParseError::VersionString {
        found: String::from_utf8_lossy(&version[..version.len().min(VERSION_SIZE)]).into_owned(),
    };
    if version.len() < VERSION_SIZE || !version.starts_with(VERSION_PREFIX.as_bytes()) {
        return Err(bad());
    }
    let digits = &version[VERSION_PREFIX.len()..VERSION_SIZE - 1];
    if version[VERSION_SIZE - 1] != b'_'
        || !digits
            .iter()
            .all(|c| c.is_ascii_digit() || (b'a'..=b'f').contains(c))
    {
        return Err(bad());
    }
    let size = usize::from_str_radix(std::str::from_utf8(digits).map_err(|_| bad())?, 16)
        .map_err(|_| bad())?;
    if size > MAX_EVENT_SIZE {
        return Err(ParseError::TooLarge { declared: size });
    }
    if size > input.len() {
        return Err(ParseError::Truncated {
            declared: size,
            available: input.len(),
        });
    }
    Ok(size)
}

/// Checks the labels against the ilk's: returns the ilk.
fn check_fields(fields: &[(String, Json)]) -> Result<Ilk, ParseError> {
    let t = fields.iter().find(|(k, _)| k == "t").map(|(_, v)| v);
    let ilk = t
        .and_then(Json::as_str)
        .and_then(Ilk::from_name)
        .ok_or_else(|| ParseError::UnknownIlk {
            found: t
                .map(Json::to_compact)
                .unwrap_or_else(|| "no t field".into()),
        })?;
    let name = ilk.as_str();
    let expected = ilk.fields();
    let found: Vec<String> = fields.iter().map(|(k, _)| k.clone()).collect();
    for (i, label) in found.iter().enumerate() {
        if !expected.contains(&label.as_str()) {
            return Err(ParseError::UnexpectedField {
                ilk: name,
                field: label.clone(),
            });
        }
        if found[..i].contains(label) {
            return Err(ParseError::DuplicateField {
                ilk: name,
                field: label.clone(),
            });
        }
    }
    if let Some(missing) = expected.iter().find(|l| !found.iter().any(|f| f == *l)) {
        return Err(ParseError::MissingField {
            ilk: name,
            field: missing,
        });
    }
    if found.iter().zip(expected).any(|(f, e)| f != e) {
        return Err(ParseError::FieldOrder {
            ilk: name,
            expected: expected.to_vec(),
            found,
        });
    }
    Ok(ilk)
}

fn read_body<'a>(ilk: Ilk, get: &impl Fn(&str) -> &'a Json) -> Result<EventBody, ParseError> {
    let version = get("v");
    if version.as_str().is_none_or(|v| v.len() != VERSION_SIZE) {
        return Err(value_error("v", "a version string", version));
    }
    let sn = sn(get("s"))?;
    let body = match ilk {
        Ilk::Icp | Ilk::Dip => {
            if sn != 0 {
                return Err(value_error("s", "0 in an inception", get("s")));
            }
            EventBody::Inception(Inception {
                prefix: prefix(get("i"), "i")?,
                signing: signing(get)?,
                bt: hex(get("bt"), "bt")?,
                witnesses: list(get("b"), "b", |v| prefix(v, "b"))?,
                config: list(get("c"), "c", |v| Ok(str_of(v, "c")?.to_string()))?,
                anchors: list(get("a"), "a", |v| Ok(v.clone()))?,
                delegator: match ilk {
                    Ilk::Dip => Some(prefix(get("di"), "di")?),
                    _ => None,
                },
            })
        }
        Ilk::Rot | Ilk::Drt => EventBody::Rotation(Rotation {
            prefix: prefix(get("i"), "i")?,
            sn,
            prior: digest(get("p"), "p")?,
            signing: signing(get)?,
            bt: hex(get("bt"), "bt")?,
            cuts: list(get("br"), "br", |v| prefix(v, "br"))?,
            adds: list(get("ba"), "ba", |v| prefix(v, "ba"))?,
            anchors: list(get("a"), "a", |v| Ok(v.clone()))?,
            delegated: ilk == Ilk::Drt,
        }),
        Ilk::Ixn => EventBody::Interaction(Interaction {
            prefix: prefix(get("i"), "i")?,
            sn,
            prior: digest(get("p"), "p")?,
            anchors: list(get("a"), "a", |v| Ok(v.clone()))?,
        }),
        Ilk::Rct => EventBody::Receipt(Receipt {
            prefix: prefix(get("i"), "i")?,
            sn,
            said: digest(get("d"), "d")?,
        }),
    };
    Ok(body)
}

fn signing<'a>(get: &impl Fn(&str) -> &'a Json) -> Result<Signing, ParseError> {
    Ok(Signing {
        kt: threshold(get("kt"), "kt")?,
        keys: list(get("k"), "k", |v| {
            VerKey::from_qb64(str_of(v, "k")?).map_err(cesr("k"))
        })?,
        nt: threshold(get("nt"), "nt")?,
        next: list(get("n"), "n", |v| digest(v, "n"))?,
    })
}

fn value_error(field: &'static str, expected: &'static str, found: &Json) -> ParseError {
    ParseError::FieldValue {
        field,
        expected,
        found: excerpt(&found.to_compact()),
    }
}

fn cesr(field: &'static str) -> impl Fn(CesrError) -> ParseError {
    move |source| ParseError::Primitive { field, source }
}

fn str_of<'a>(value: &'a Json, field: &'static str) -> Result<&'a str, ParseError> {
    value
        .as_str()
        .ok_or_else(|| value_error(field, "a string", value))
}

fn sn(value: &Json) -> Result<u64, ParseError> {
    hex(value, "s")
}

fn hex(value: &Json, field: &'static str) -> Result<u64, ParseError> {
    parse_sn(str_of(value, field)?)
        .ok_or_else(|| value_error(field, "a lowercase hex number without leading zeros", value))
}

fn prefix(value: &Json, field: &'static str) -> Result<Prefix, ParseError> {
    Prefix::from_qb64(str_of(value, field)?).map_err(cesr(field))
}

fn digest(value: &Json, field: &'static str) -> Result<Digest, ParseError> {
    Digest::from_qb64(str_of(value, field)?).map_err(cesr(field))
}

fn threshold(value: &Json, field: &'static str) -> Result<Threshold, ParseError> {
    Threshold::from_json(value).map_err(|source| ParseError::Threshold { field, source })
}

fn list<T>(
    value: &Json,
    field: &'static str,
    item: impl Fn(&Json) -> Result<T, ParseError>,
) -> Result<Vec<T>, ParseError> {
    let items = value
        .as_array()
        .ok_or_else(|| value_error(field, "a list", value))?;
    if items.len() > MAX_LIST {
        return Err(ParseError::ListTooLong {
            field,
            len: items.len(),
        });
    }
    items.iter().map(item).collect()
}

/// An event and its attachments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Message {
    /// The event.
    pub event: Event,
    /// Its attachments.
    pub attachments: Attachments,
}

impl Message {
    /// The message as stream bytes: the event then its attachments.
    pub fn to_bytes(&self) -> Result<Vec<u8>, CesrError> {
        let mut out = self.event.raw().as_bytes().to_vec();
        out.extend_from_slice(self.attachments.to_cesr()?.as_bytes());
        Ok(out)
    }
}

/// Reads one message from the start of `input`; returns it and its length.
pub fn parse_message(input: &[u8]) -> Result<(Message, usize), ParseError> {
    let (event, size) = parse_event(input)?;
    let rest = &input[size..];
    let end = rest.iter().position(|b| *b == b'{').unwrap_or(rest.len());
    let text = std::str::from_utf8(&rest[..end])
        .ok()
        .filter(|t| t.is_ascii())
        .ok_or_else(|| ParseError::AttachmentNotText {
            offset: rest[..end].iter().position(|b| !b.is_ascii()).unwrap_or(0),
        })?;
    let mut attachments = Attachments::default();
    attachments.read(text, false)?;
    Ok((Message { event, attachments }, size + end))
}

/// Reads a whole stream of messages.
pub fn parse_stream(mut input: &[u8]) -> Result<Vec<Message>, ParseError> {
    let mut messages = Vec::new();
    while !input.is_empty() {
        let (message, used) = parse_message(input)?;
        messages.push(message);
        input = &input[used..];
    }
    Ok(messages)
}
