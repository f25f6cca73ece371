//! KERI 1.0 key events in JSON: field layout, version string and SAIDs.
//!
//! Each event is a JSON object whose fields come in a fixed order (keripy's
//! `SerderKERI.Fields` for version 1.0):
//!
//! | ilk | fields |
//! |---|---|
//! | `icp` | `v t d i s kt k nt n bt b c a` |
//! | `dip` | `v t d i s kt k nt n bt b c a di` (the delegator comes last) |
//! | `rot`, `drt` | `v t d i s p kt k nt n bt br ba a` |
//! | `ixn` | `v t d i s p a` |
//! | `rct` | `v t d i s` (`d` is the receipted event's SAID) |
//!
//! `v` is `KERI10JSON{size:06x}_`, the size being the length of the whole serialization.
//! The SAID `d` (and the prefix `i` of a self-addressing inception) is the Blake3-256
//! digest of the serialization with those fields replaced by 44 `#` characters. The
//! serialization is compact JSON (no spaces), as Python's `json.dumps` with
//! `separators=(",", ":")` writes it.

use crate::json::Json;
use crate::primitive::{Digest, Prefix, VerKey};
use crate::threshold::Threshold;

/// The version string prefix for KERI 1.0 JSON.
pub const VERSION_PREFIX: &str = "KERI10JSON";
/// Length of the version string: `KERI10JSON` + 6 hex digits + `_`.
pub const VERSION_SIZE: usize = 17;
/// Largest event serialization accepted (the version string could say up to 16 MiB).
pub const MAX_EVENT_SIZE: usize = 1 << 20;
/// The SAID placeholder: 44 `#` characters, the length of a qb64 Blake3-256 digest.
const PLACEHOLDER: &str = "############################################";

/// The config trait `EO`: establishment events only (no `ixn`).
pub const TRAIT_ESTABLISHMENT_ONLY: &str = "EO";
/// The config trait `DND`: this identifier does not delegate.
pub const TRAIT_DO_NOT_DELEGATE: &str = "DND";
/// The config trait `NB`: no registrar backers (recorded, no effect on the key state).
pub const TRAIT_NO_BACKERS: &str = "NB";

/// The event type, field `t`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Ilk {
    /// Inception.
    Icp,
    /// Rotation.
    Rot,
    /// Interaction.
    Ixn,
    /// Delegated inception.
    Dip,
    /// Delegated rotation.
    Drt,
    /// Non-transferable receipt.
    Rct,
}

impl Ilk {
    /// The `t` value.
    pub fn as_str(self) -> &'static str {
        match self {
            Ilk::Icp => "icp",
            Ilk::Rot => "rot",
            Ilk::Ixn => "ixn",
            Ilk::Dip => "dip",
            Ilk::Drt => "drt",
            Ilk::Rct => "rct",
        }
    }

    /// The ilk of a `t` value.
    pub fn from_name(name: &str) -> Option<Ilk> {
        [Ilk::Icp, Ilk::Rot, Ilk::Ixn, Ilk::Dip, Ilk::Drt, Ilk::Rct]
            .into_iter()
            .find(|i| i.as_str() == name)
    }

    /// The field labels, in the required order.
    pub fn fields(self) -> &'static [&'static str] {
        match self {
            Ilk::Icp => &[
                "v", "t", "d", "i", "s", "kt", "k", "nt", "n", "bt", "b", "c", "a",
            ],
            Ilk::Dip => &[
                "v", "t", "d", "i", "s", "kt", "k", "nt", "n", "bt", "b", "c", "a", "di",
            ],
            Ilk::Rot | Ilk::Drt => &[
                "v", "t", "d", "i", "s", "p", "kt", "k", "nt", "n", "bt", "br", "ba", "a",
            ],
            Ilk::Ixn => &["v", "t", "d", "i", "s", "p", "a"],
            Ilk::Rct => &["v", "t", "d", "i", "s"],
        }
    }
}

/// An event seal `{"i","s","d"}`: commits to event `d` at sequence number `s` of prefix `i`.
/// A delegator anchors a delegated event by putting its seal in an event's `a` list.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EventSeal {
    /// The sealed event's prefix.
    pub prefix: Prefix,
    /// The sealed event's sequence number.
    pub sn: u64,
    /// The sealed event's SAID.
    pub said: Digest,
}

impl EventSeal {
    /// The seal as a JSON object in the order `i`, `s`, `d`.
    pub fn to_json(&self) -> Json {
        Json::Object(vec![
            ("i".into(), Json::string(self.prefix.qb64())),
            ("s".into(), Json::string(format!("{:x}", self.sn))),
            ("d".into(), Json::string(self.said.qb64())),
        ])
    }

    /// The seal in `value`, if it is an object with exactly `i`, `s`, `d` in that order and
    /// valid values (keripy matches seals by exactly these labels).
    pub fn from_json(value: &Json) -> Option<EventSeal> {
        match value.as_object()? {
            [
                (i, Json::String(pre)),
                (s, Json::String(sn)),
                (d, Json::String(said)),
            ] if i == "i" && s == "s" && d == "d" => Some(EventSeal {
                prefix: Prefix::from_qb64(pre).ok()?,
                sn: parse_sn(sn)?,
                said: Digest::from_qb64(said).ok()?,
            }),
            _ => None,
        }
    }
}

/// Reads a canonical hex sequence number (lowercase, no leading zeros).
pub(crate) fn parse_sn(text: &str) -> Option<u64> {
    let n = u64::from_str_radix(text, 16).ok()?;
    (format!("{n:x}") == text).then_some(n)
}

/// The signing part of an establishment event or key state: `kt`, `k`, `nt`, `n`.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Signing {
    /// `kt`: signing threshold.
    pub kt: Threshold,
    /// `k`: signing keys.
    pub keys: Vec<VerKey>,
    /// `nt`: next signing threshold.
    pub nt: Threshold,
    /// `n`: next-key digests, Blake3-256 of each next key's qb64 (empty: not rotatable).
    pub next: Vec<Digest>,
}

impl Signing {
    /// The four fields in event order.
    fn fields(&self) -> [(&'static str, Json); 4] {
        [
            ("kt", self.kt.to_json()),
            ("k", Json::strings(self.keys.iter().map(VerKey::qb64))),
            ("nt", self.nt.to_json()),
            ("n", Json::strings(self.next.iter().map(Digest::qb64))),
        ]
    }
}

/// Inception (`icp`) or delegated inception (`dip`, when `delegator` is set).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inception {
    /// `i`: the identifier; for a self-addressing one, equal to the SAID.
    pub prefix: Prefix,
    /// `kt`, `k`, `nt`, `n`: keys, next-key commitments and thresholds.
    pub signing: Signing,
    /// `bt`: witness threshold (receipts needed).
    pub bt: u64,
    /// `b`: witness prefixes.
    pub witnesses: Vec<Prefix>,
    /// `c`: configuration traits (`EO`, `DND`, `NB`, others kept and ignored).
    pub config: Vec<String>,
    /// `a`: anchored data (seals).
    pub anchors: Vec<Json>,
    /// `di`: the delegator, for `dip`.
    pub delegator: Option<Prefix>,
}

/// Rotation (`rot`) or delegated rotation (`drt`, when `delegated`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rotation {
    /// `i`: the identifier.
    pub prefix: Prefix,
    /// `s`: sequence number.
    pub sn: u64,
    /// `p`: SAID of the prior event.
    pub prior: Digest,
    /// `kt`, `k`, `nt`, `n`: the new keys (revealing prior next keys) and commitments
    /// (empty next: abandon the identifier).
    pub signing: Signing,
    /// `bt`: new witness threshold.
    pub bt: u64,
    /// `br`: witnesses removed.
    pub cuts: Vec<Prefix>,
    /// `ba`: witnesses added.
    pub adds: Vec<Prefix>,
    /// `a`: anchored data.
    pub anchors: Vec<Json>,
    /// True for `drt`.
    pub delegated: bool,
}

/// Interaction (`ixn`).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Interaction {
    /// `i`: the identifier.
    pub prefix: Prefix,
    /// `s`: sequence number.
    pub sn: u64,
    /// `p`: SAID of the prior event.
    pub prior: Digest,
    /// `a`: anchored data.
    pub anchors: Vec<Json>,
}

/// Non-transferable receipt (`rct`) of event `said` at `sn` of `prefix`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Receipt {
    /// `i`: the receipted event's identifier.
    pub prefix: Prefix,
    /// `s`: the receipted event's sequence number.
    pub sn: u64,
    /// `d`: the receipted event's SAID.
    pub said: Digest,
}

/// The content of an event, by type.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum EventBody {
    /// `icp` or `dip`.
    Inception(Inception),
    /// `rot` or `drt`.
    Rotation(Rotation),
    /// `ixn`.
    Interaction(Interaction),
    /// `rct`.
    Receipt(Receipt),
}

impl EventBody {
    /// The event type.
    pub fn ilk(&self) -> Ilk {
        match self {
            EventBody::Inception(e) if e.delegator.is_some() => Ilk::Dip,
            EventBody::Inception(_) => Ilk::Icp,
            EventBody::Rotation(e) if e.delegated => Ilk::Drt,
            EventBody::Rotation(_) => Ilk::Rot,
            EventBody::Interaction(_) => Ilk::Ixn,
            EventBody::Receipt(_) => Ilk::Rct,
        }
    }

    /// The identifier the event is about.
    pub fn prefix(&self) -> Prefix {
        match self {
            EventBody::Inception(e) => e.prefix,
            EventBody::Rotation(e) => e.prefix,
            EventBody::Interaction(e) => e.prefix,
            EventBody::Receipt(e) => e.prefix,
        }
    }

    /// The sequence number.
    pub fn sn(&self) -> u64 {
        match self {
            EventBody::Inception(_) => 0,
            EventBody::Rotation(e) => e.sn,
            EventBody::Interaction(e) => e.sn,
            EventBody::Receipt(e) => e.sn,
        }
    }

    /// The fields in order, with `d` (and `i` when `placeholder_prefix`) set to `said_text`.
    fn fields(&self, said_text: &str, placeholder_prefix: bool) -> Vec<(&'static str, Json)> {
        let ilk = self.ilk();
        let prefix = |p: &Prefix| {
            Json::string(if placeholder_prefix {
                said_text.to_string()
            } else {
                p.qb64()
            })
        };
        let prefixes = |ps: &[Prefix]| Json::strings(ps.iter().map(Prefix::qb64));
        let hex = |n: u64| Json::string(format!("{n:x}"));
        let mut fields = vec![("v", Json::string("")), ("t", Json::string(ilk.as_str()))];
        match self {
            EventBody::Inception(e) => {
                fields.extend([
                    ("d", Json::string(said_text)),
                    ("i", prefix(&e.prefix)),
                    ("s", hex(0)),
                ]);
                fields.extend(e.signing.fields());
                fields.extend([
                    ("bt", hex(e.bt)),
                    ("b", prefixes(&e.witnesses)),
                    ("c", Json::strings(&e.config)),
                    ("a", Json::Array(e.anchors.clone())),
                ]);
                if let Some(delegator) = e.delegator {
                    fields.push(("di", Json::string(delegator.qb64())));
                }
            }
            EventBody::Rotation(e) => {
                fields.extend([
                    ("d", Json::string(said_text)),
                    ("i", Json::string(e.prefix.qb64())),
                    ("s", hex(e.sn)),
                    ("p", Json::string(e.prior.qb64())),
                ]);
                fields.extend(e.signing.fields());
                fields.extend([
                    ("bt", hex(e.bt)),
                    ("br", prefixes(&e.cuts)),
                    ("ba", prefixes(&e.adds)),
                    ("a", Json::Array(e.anchors.clone())),
                ]);
            }
            EventBody::Interaction(e) => fields.extend([
                ("d", Json::string(said_text)),
                ("i", Json::string(e.prefix.qb64())),
                ("s", hex(e.sn)),
                ("p", Json::string(e.prior.qb64())),
                ("a", Json::Array(e.anchors.clone())),
            ]),
            EventBody::Receipt(e) => fields.extend([
                ("d", Json::string(e.said.qb64())),
                ("i", Json::string(e.prefix.qb64())),
                ("s", hex(e.sn)),
            ]),
        }
        fields
    }
}

/// Serializes fields with a correct version string: the size is the serialization's length,
/// which does not depend on the size digits because they are fixed width.
fn serialize(mut fields: Vec<(&'static str, Json)>) -> String {
    let body = |fields: &Vec<(&'static str, Json)>| {
        Json::Object(
            fields
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
        )
        .to_compact()
    };
    fields[0].1 = Json::string(version_string(0));
    let size = body(&fields).len();
    fields[0].1 = Json::string(version_string(size));
    body(&fields)
}

/// `KERI10JSON{size:06x}_`.
pub fn version_string(size: usize) -> String {
    format!("{VERSION_PREFIX}{size:06x}_")
}

/// A key event (or receipt) with its exact serialization and SAID.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    raw: String,
    said: Digest,
    body: EventBody,
}

impl Event {
    /// Makes the event: computes the SAID (and the prefix of a self-addressing inception:
    /// pass any `Prefix::SelfAddressing` value, it is replaced) and the serialization.
    pub fn new(mut body: EventBody) -> Event {
        if let EventBody::Receipt(r) = &body {
            let raw = serialize(body.fields("", false));
            return Event {
                raw,
                said: r.said,
                body,
            };
        }
        let self_addressing = matches!(&body, EventBody::Inception(i) if matches!(i.prefix, Prefix::SelfAddressing(_)));
        let said = compute_said(&body, self_addressing);
        if let (true, EventBody::Inception(i)) = (self_addressing, &mut body) {
            i.prefix = Prefix::SelfAddressing(said);
        }
        let raw = serialize(body.fields(&said.qb64(), false));
        Event { raw, said, body }
    }

    /// Assembles an event parsed elsewhere; the caller has checked `raw`, `said` and `body`.
    pub(crate) fn from_parts(raw: String, said: Digest, body: EventBody) -> Event {
        Event { raw, said, body }
    }

    /// The exact serialization: what is signed and hashed.
    pub fn raw(&self) -> &str {
        &self.raw
    }

    /// The SAID (for a receipt: the receipted event's SAID).
    pub fn said(&self) -> Digest {
        self.said
    }

    /// The content.
    pub fn body(&self) -> &EventBody {
        &self.body
    }

    /// The event type.
    pub fn ilk(&self) -> Ilk {
        self.body.ilk()
    }

    /// The identifier.
    pub fn prefix(&self) -> Prefix {
        self.body.prefix()
    }

    /// The sequence number.
    pub fn sn(&self) -> u64 {
        self.body.sn()
    }

    /// The event seal `{i, s, d}` a delegator anchors to approve this event.
    pub fn seal(&self) -> EventSeal {
        EventSeal {
            prefix: self.prefix(),
            sn: self.sn(),
            said: self.said,
        }
    }
}

/// The SAID of `body`: Blake3-256 of the serialization with `d` (and `i` if
/// `self_addressing`) replaced by the placeholder.
pub(crate) fn compute_said(body: &EventBody, self_addressing: bool) -> Digest {
    Digest::of(serialize(body.fields(PLACEHOLDER, self_addressing)).as_bytes())
}
