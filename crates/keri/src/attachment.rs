//! CESR attachments of a message: signatures, receipt couples, delegation source seals.
//!
//! Attachments follow the event as counter-framed groups: `-A##` controller indexed
//! signatures, `-B##` witness indexed signatures, `-C##` non-transferable receipt couples,
//! `-F##` transferable indexed signature groups and `-G##` seal source couples, optionally all
//! wrapped in one `-V##` (or `-0V#####`) group counting the quadlets inside.

use crate::cesr::{
    CesrError, Code, Counter, CounterCode, IndexedSignature, Matter, seqner_qb64, seqner_value,
};
use crate::parse::ParseError;
use crate::primitive::{Digest, Prefix, VerKey};

/// A signature couple of a non-transferable signer: its `B` prefix and its signature.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReceiptCouple {
    /// The signer's non-transferable key (its prefix).
    pub signer: VerKey,
    /// The Ed25519 signature of the event.
    pub signature: [u8; 64],
}

/// A transferable signer's indexed signatures with the establishment event of its keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TransSignatureGroup {
    /// The signer's prefix.
    pub prefix: Prefix,
    /// The sequence number of the signer's establishment event.
    pub sn: u64,
    /// The SAID of that establishment event.
    pub said: Digest,
    /// Signatures indexed into that event's keys.
    pub signatures: Vec<IndexedSignature>,
}

/// The attachments of a message, by group.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Attachments {
    /// `-A`: the controller's indexed signatures.
    pub signatures: Vec<IndexedSignature>,
    /// `-B`: witnesses' indexed signatures (indices into the witness list).
    pub witness_signatures: Vec<IndexedSignature>,
    /// `-C`: non-transferable receipt couples.
    pub receipts: Vec<ReceiptCouple>,
    /// `-F`: transferable indexed signature groups.
    pub trans_groups: Vec<TransSignatureGroup>,
    /// `-G`: seal source couples: (sn, SAID) of the delegator's anchoring event.
    pub source_seals: Vec<(u64, Digest)>,
}

impl Attachments {
    /// The CESR text of the attachments, groups in keripy's order (`-A`, `-B`, `-C`, then
    /// `-G` for delegation, as keripy's `messagize` and delegation code append them).
    pub fn to_cesr(&self) -> Result<String, CesrError> {
        let mut out = String::new();
        let counter = |code, n: usize| {
            Counter {
                code,
                count: n as u64,
            }
            .qb64()
        };
        if !self.signatures.is_empty() {
            out += &counter(CounterCode::ControllerIdxSigs, self.signatures.len())?;
            for s in &self.signatures {
                out += &s.qb64()?;
            }
        }
        if !self.witness_signatures.is_empty() {
            out += &counter(CounterCode::WitnessIdxSigs, self.witness_signatures.len())?;
            for s in &self.witness_signatures {
                out += &s.qb64()?;
            }
        }
        if !self.receipts.is_empty() {
            out += &counter(CounterCode::NonTransReceiptCouples, self.receipts.len())?;
            for r in &self.receipts {
                out += &r.signer.qb64();
                out += &signature_qb64(&r.signature);
            }
        }
        for g in &self.trans_groups {
            out += &counter(CounterCode::TransIdxSigGroups, 1)?;
            out += &g.prefix.qb64();
            out += &seqner_qb64(g.sn);
            out += &g.said.qb64();
            out += &counter(CounterCode::ControllerIdxSigs, g.signatures.len())?;
            for s in &g.signatures {
                out += &s.qb64()?;
            }
        }
        if !self.source_seals.is_empty() {
            out += &counter(CounterCode::SealSourceCouples, self.source_seals.len())?;
            for (sn, said) in &self.source_seals {
                out += &seqner_qb64(*sn);
                out += &said.qb64();
            }
        }
        Ok(out)
    }

    /// Reads attachment groups from `text` up to its end.
    pub(crate) fn read(&mut self, text: &str, nested: bool) -> Result<(), ParseError> {
        let mut rest = text;
        while !rest.is_empty() {
            let (counter, used) = Counter::decode_prefix(rest)?;
            rest = &rest[used..];
            let count = usize::try_from(counter.count).unwrap_or(usize::MAX);
            match counter.code {
                CounterCode::AttachedMaterialQuadlets
                | CounterCode::BigAttachedMaterialQuadlets => {
                    if nested {
                        return Err(ParseError::UnexpectedCounter {
                            code: counter.code.as_str(),
                        });
                    }
                    let size = count.saturating_mul(4);
                    if rest.len() < size {
                        return Err(CesrError::Truncated {
                            what: "attachment group",
                            needed: size,
                            have: rest.len(),
                        }
                        .into());
                    }
                    self.read(&rest[..size], true).map_err(|e| match e {
                        ParseError::Attachment(CesrError::Truncated { .. }) => {
                            ParseError::GroupSize { declared: size }
                        }
                        other => other,
                    })?;
                    rest = &rest[size..];
                }
                CounterCode::ControllerIdxSigs => self.signatures.extend(read_n(
                    &mut rest,
                    count,
                    IndexedSignature::decode_prefix,
                )?),
                CounterCode::WitnessIdxSigs => self.witness_signatures.extend(read_n(
                    &mut rest,
                    count,
                    IndexedSignature::decode_prefix,
                )?),
                CounterCode::NonTransReceiptCouples => {
                    self.receipts.extend(read_n(&mut rest, count, read_couple)?)
                }
                CounterCode::TransIdxSigGroups => {
                    self.trans_groups
                        .extend(read_n(&mut rest, count, read_trans_group)?)
                }
                CounterCode::SealSourceCouples => {
                    self.source_seals
                        .extend(read_n(&mut rest, count, read_source)?)
                }
            }
        }
        Ok(())
    }
}

fn signature_qb64(signature: &[u8; 64]) -> String {
    Matter::new(Code::Ed25519Sig, signature)
        .expect("64 bytes")
        .qb64()
}

/// Reads `count` items with `read` from the start of `rest`, advancing it.
fn read_n<T>(
    rest: &mut &str,
    count: usize,
    read: impl Fn(&str) -> Result<(T, usize), CesrError>,
) -> Result<Vec<T>, CesrError> {
    let mut items = Vec::new();
    for _ in 0..count {
        let (item, used) = read(rest)?;
        *rest = &rest[used..];
        items.push(item);
    }
    Ok(items)
}

fn read_matter(
    text: &str,
    expected: &'static str,
    ok: impl Fn(&Matter) -> bool,
) -> Result<(Matter, usize), CesrError> {
    let (m, used) = Matter::decode_prefix(text)?;
    if !ok(&m) {
        return Err(CesrError::UnexpectedCode {
            code: m.code().as_str().into(),
            expected,
        });
    }
    Ok((m, used))
}

fn read_couple(text: &str) -> Result<(ReceiptCouple, usize), CesrError> {
    let (signer, a) = read_matter(text, "non-transferable prefix (B)", |m| {
        m.code() == Code::Ed25519N
    })?;
    let (sig, b) = read_matter(&text[a..], "Ed25519 signature (0B)", |m| {
        m.code() == Code::Ed25519Sig
    })?;
    let signer = VerKey::from_matter(&signer)?;
    let signature = sig.raw().try_into().expect("checked length");
    Ok((ReceiptCouple { signer, signature }, a + b))
}

fn read_source(text: &str) -> Result<((u64, Digest), usize), CesrError> {
    let (sn, a) = Matter::decode_prefix(text)?;
    let sn = seqner_value(&sn)?;
    let (said, b) = Matter::decode_prefix(&text[a..])?;
    let said = Digest::from_qb64(&said.qb64())?;
    Ok(((sn, said), a + b))
}

fn read_trans_group(text: &str) -> Result<(TransSignatureGroup, usize), CesrError> {
    let (prefix, a) = Matter::decode_prefix(text)?;
    let prefix = Prefix::from_matter(&prefix)?;
    let ((sn, said), b) = read_source(&text[a..])?;
    let mut rest = &text[a + b..];
    let (counter, c) = Counter::decode_prefix(rest)?;
    if counter.code != CounterCode::ControllerIdxSigs {
        return Err(CesrError::UnexpectedCode {
            code: counter.code.as_str().into(),
            expected: "-A in a -F group",
        });
    }
    rest = &rest[c..];
    let before = rest.len();
    let count = usize::try_from(counter.count).unwrap_or(usize::MAX);
    let signatures = read_n(&mut rest, count, IndexedSignature::decode_prefix)?;
    let used = a + b + c + (before - rest.len());
    Ok((
        TransSignatureGroup {
            prefix,
            sn,
            said,
            signatures,
        },
        used,
    ))
}
