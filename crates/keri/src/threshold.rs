//! Signing thresholds: `kt` and `nt`.
//!
//! A threshold is either a number M (M of the keys must sign), written as a lowercase hex
//! string (`"2"`), or fractionally weighted clauses: one weight per key, in key order, as a
//! list (`["1/2","1/2","1/2"]`, one clause) or a list of lists (`[["1/2","1/2"],["1"]]`).
//! Weighted thresholds are satisfied when, in every clause, the weights of the signing keys
//! add up to at least 1. Weights are `0`, `1` or a fraction `n/d` in lowest terms strictly
//! between 0 and 1, as keripy writes them; arithmetic is exact (no floats).

use crate::json::Json;

/// Largest denominator accepted in a weight: keeps exact sums within 128 bits.
pub const MAX_DENOMINATOR: u64 = 1 << 20;

/// A reason for rejecting a threshold.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ThresholdError {
    /// Not a hex string, a list of weights, or a list of lists of weights.
    #[error("threshold {value} is not a hex string or a list of weights")]
    Form {
        /// The rejected JSON.
        value: String,
    },
    /// A numeric threshold is not lowercase hex without leading zeros.
    #[error("threshold {value:?} is not canonical lowercase hex")]
    Hex {
        /// The rejected string.
        value: String,
    },
    /// A weight is not `0`, `1` or a fraction in lowest terms between them.
    #[error("weight {value:?} is not 0, 1 or a reduced fraction n/d with 0 < n < d <= 2^20")]
    Weight {
        /// The rejected weight.
        value: String,
    },
    /// A clause's weights add up to less than 1: it could never be satisfied.
    #[error("weighted clause {clause} sums to less than 1")]
    ClauseBelowOne {
        /// The clause, from 0.
        clause: usize,
    },
    /// The common denominator of a clause's weights does not fit 64 bits.
    #[error("weighted clause {clause} has a common denominator above 2^64")]
    TooComplex {
        /// The clause, from 0.
        clause: usize,
    },
    /// An empty list of weights or an empty clause.
    #[error("weighted threshold has an empty clause")]
    Empty,
}

/// One weight: a fraction `num/den` with `0 <= num <= den`, in lowest terms.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Weight {
    num: u64,
    den: u64,
}

impl Weight {
    /// The weight `num/den`, or `None` unless `0 <= num <= den <= MAX_DENOMINATOR`, `den > 0`.
    pub fn new(num: u64, den: u64) -> Option<Weight> {
        if den == 0 || num > den || den > MAX_DENOMINATOR {
            return None;
        }
        let g = gcd(num, den).max(1);
        Some(Weight {
            num: num / g,
            den: den / g,
        })
    }

    /// The numerator, in lowest terms.
    pub fn numerator(self) -> u64 {
        self.num
    }

    /// The denominator, in lowest terms.
    pub fn denominator(self) -> u64 {
        self.den
    }

    fn parse(text: &str) -> Result<Weight, ThresholdError> {
        let bad = || ThresholdError::Weight {
            value: text.to_string(),
        };
        let weight = match text {
            "0" => Weight { num: 0, den: 1 },
            "1" => Weight { num: 1, den: 1 },
            _ => {
                let (n, d) = text.split_once('/').ok_or_else(bad)?;
                let num = parse_decimal(n).ok_or_else(bad)?;
                let den = parse_decimal(d).ok_or_else(bad)?;
                let w = Weight::new(num, den).ok_or_else(bad)?;
                if w.num != num || num == 0 || num == den {
                    return Err(bad());
                }
                w
            }
        };
        Ok(weight)
    }

    fn text(self) -> String {
        match (self.num, self.den) {
            (0, _) => "0".to_string(),
            (n, d) if n == d => "1".to_string(),
            (n, d) => format!("{n}/{d}"),
        }
    }
}

fn parse_decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    if canonical { text.parse().ok() } else { None }
}

fn gcd(a: u64, b: u64) -> u64 {
    if b == 0 { a } else { gcd(b, a % b) }
}

/// A signing threshold.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum Threshold {
    /// At least this many distinct keys must sign (0 only for an empty next-key list).
    Simple(u64),
    /// Every clause's signing weights must add up to at least 1. One weight per key.
    Weighted(Vec<Vec<Weight>>),
}

impl Threshold {
    /// Reads a threshold field.
    pub fn from_json(value: &Json) -> Result<Threshold, ThresholdError> {
        let form = || ThresholdError::Form {
            value: value.to_compact(),
        };
        match value {
            Json::String(hex) => {
                let n = u64::from_str_radix(hex, 16)
                    .map_err(|_| ThresholdError::Hex { value: hex.clone() })?;
                if format!("{n:x}") != *hex {
                    return Err(ThresholdError::Hex { value: hex.clone() });
                }
                Ok(Threshold::Simple(n))
            }
            Json::Array(items) if items.iter().all(|i| matches!(i, Json::String(_))) => {
                Threshold::weighted_from(vec![weights(items, form)?])
            }
            Json::Array(items) => {
                let clauses = items
                    .iter()
                    .map(|c| c.as_array().ok_or_else(form).and_then(|c| weights(c, form)))
                    .collect::<Result<Vec<_>, _>>()?;
                Threshold::weighted_from(clauses)
            }
            _ => Err(form()),
        }
    }

    /// Checked weighted threshold: non-empty clauses each summing to at least 1.
    pub fn weighted_from(clauses: Vec<Vec<Weight>>) -> Result<Threshold, ThresholdError> {
        if clauses.is_empty() || clauses.iter().any(Vec::is_empty) {
            return Err(ThresholdError::Empty);
        }
        for (i, clause) in clauses.iter().enumerate() {
            if clause_lcm(clause).is_none() {
                return Err(ThresholdError::TooComplex { clause: i });
            }
            if !reaches_one(clause, |_| true) {
                return Err(ThresholdError::ClauseBelowOne { clause: i });
            }
        }
        Ok(Threshold::Weighted(clauses))
    }

    /// The JSON form keripy writes: hex string, a list for one clause, lists for several.
    pub fn to_json(&self) -> Json {
        match self {
            Threshold::Simple(n) => Json::string(format!("{n:x}")),
            Threshold::Weighted(clauses) => {
                let clause = |c: &Vec<Weight>| Json::strings(c.iter().map(|w| w.text()));
                match clauses.as_slice() {
                    [one] => clause(one),
                    many => Json::Array(many.iter().map(clause).collect()),
                }
            }
        }
    }

    /// The number of keys the threshold speaks about: M for `Simple(M)`, else the weights.
    pub fn size(&self) -> usize {
        match self {
            Threshold::Simple(n) => usize::try_from(*n).unwrap_or(usize::MAX),
            Threshold::Weighted(clauses) => clauses.iter().map(Vec::len).sum(),
        }
    }

    /// Whether signatures by the keys at `indices` (any order, repeats ignored) satisfy it.
    pub fn satisfied_by(&self, indices: &[u32]) -> bool {
        let mut signed: Vec<u32> = indices.to_vec();
        signed.sort_unstable();
        signed.dedup();
        match self {
            Threshold::Simple(n) => *n > 0 && signed.len() as u64 >= *n,
            Threshold::Weighted(clauses) => {
                if signed.is_empty() || signed.iter().any(|i| *i as usize >= self.size()) {
                    return false;
                }
                let mut offset = 0usize;
                clauses.iter().all(|clause| {
                    let start = offset;
                    offset += clause.len();
                    reaches_one(clause, |i| {
                        signed.binary_search(&((start + i) as u32)).is_ok()
                    })
                })
            }
        }
    }

    /// A threshold as keripy's default for `n` keys: a majority, `max(1, ceil(n/2))`.
    pub fn majority(n: usize) -> Threshold {
        Threshold::Simple(n.div_ceil(2).max(1) as u64)
    }
}

impl serde::Serialize for Threshold {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_json().serialize(s)
    }
}

impl<'de> serde::Deserialize<'de> for Threshold {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Threshold, D::Error> {
        Threshold::from_json(&Json::deserialize(d)?).map_err(serde::de::Error::custom)
    }
}

fn weights(
    items: &[Json],
    form: impl Fn() -> ThresholdError,
) -> Result<Vec<Weight>, ThresholdError> {
    items
        .iter()
        .map(|i| Weight::parse(i.as_str().ok_or_else(&form)?))
        .collect()
}

/// The least common multiple of the clause's denominators, if it fits 64 bits.
fn clause_lcm(clause: &[Weight]) -> Option<u64> {
    clause
        .iter()
        .try_fold(1u64, |l, w| (l / gcd(l, w.den)).checked_mul(w.den))
}

/// Whether the weights of the clause at the positions `signed` accepts add up to at least 1,
/// exactly: every weight is scaled to the clause's common denominator.
fn reaches_one(clause: &[Weight], signed: impl Fn(usize) -> bool) -> bool {
    let Some(lcm) = clause_lcm(clause) else {
        return false;
    };
    let sum: u128 = clause
        .iter()
        .enumerate()
        .filter(|(i, _)| signed(*i))
        .map(|(_, w)| u128::from(w.num) * u128::from(lcm / w.den))
        .sum();
    sum >= u128::from(lcm)
}
#[cfg(test)]
mod tests {
    use super::*;

    fn weighted(text: &str) -> Threshold {
        let json: Json = serde_json::from_str(text).expect("json");
        Threshold::from_json(&json).expect("threshold")
    }

    #[test]
    fn simple_threshold_counts_distinct_keys() {
        let t = Threshold::Simple(2);
        assert!(!t.satisfied_by(&[0, 0]));
        assert!(t.satisfied_by(&[1, 0]));
        assert!(!Threshold::Simple(0).satisfied_by(&[0]));
    }

    #[test]
    fn weighted_clauses_must_each_reach_one() {
        let t = weighted(r#"[["1/2","1/2","1/2"],["1"]]"#);
        assert!(t.satisfied_by(&[0, 2, 3]));
        assert!(!t.satisfied_by(&[0, 1]));
        assert!(!t.satisfied_by(&[0, 3]));
        assert!(!t.satisfied_by(&[0, 1, 9]));
        assert_eq!(t.to_json().to_compact(), r#"[["1/2","1/2","1/2"],["1"]]"#);
    }

    #[test]
    fn non_canonical_weights_and_hex_are_rejected() {
        for bad in [
            r#"["2/4","1/2"]"#,
            r#"["1/1"]"#,
            r#"["0.5","0.5"]"#,
            r#""02""#,
            r#""A""#,
        ] {
            let json: Json = serde_json::from_str(bad).expect("json");
            assert!(Threshold::from_json(&json).is_err(), "{bad}");
        }
        let json: Json = serde_json::from_str(r#"["1/3","1/3"]"#).expect("json");
        assert_eq!(
            Threshold::from_json(&json),
            Err(ThresholdError::ClauseBelowOne { clause: 0 })
        );
    }
}
