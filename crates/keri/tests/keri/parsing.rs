//! Bad input: every defect of an event or message stream has its own error.

use welkin_keri::{
    CesrError, InceptionBuilder, Matter, ParseError, Threshold, parse_event, parse_message, sign,
    signed,
};

use crate::common::{digests, signer};

/// A signed inception message as text: (event JSON, attachments).
fn message() -> (String, String) {
    let a = signer(1);
    let icp = InceptionBuilder::new(vec![a.verkey()])
        .next(digests(&[signer(2)]), Threshold::Simple(1))
        .build();
    let sigs = sign(&icp, &[a]);
    let message = signed(icp, sigs);
    let raw = message.event.raw().to_string();
    let all = String::from_utf8(message.to_bytes().expect("encodable")).expect("ascii");
    (raw.clone(), all[raw.len()..].to_string())
}

fn parse(text: &str) -> Result<(), ParseError> {
    parse_message(text.as_bytes()).map(|_| ())
}

/// Sets the version string's size to the text's length.
fn resize(text: &str) -> String {
    let size = format!("{:06x}", text.len());
    format!("{}{}{}", &text[..16], size, &text[22..])
}

#[test]
fn a_valid_message_parses() {
    let (raw, atc) = message();
    let (m, used) = parse_message(format!("{raw}{atc}").as_bytes()).expect("valid");
    assert_eq!(used, raw.len() + atc.len());
    assert_eq!(m.attachments.signatures.len(), 1);
}

#[test]
fn malformed_json_is_rejected() {
    let (raw, _) = message();
    let broken = raw.replacen("\"kt\":\"1\"", "\"kt\":\"1\"}", 1);
    let broken = resize(&broken[..broken.len() - 1]);
    assert!(matches!(
        parse(&broken),
        Err(ParseError::MalformedJson { .. }) | Err(ParseError::SizeMismatch { .. })
    ));
    let garbage = resize(&raw.replacen(",\"s\"", ",,\"s\"", 1));
    assert!(
        matches!(parse(&garbage), Err(ParseError::MalformedJson { .. })),
        "{:?}",
        parse(&garbage)
    );
    assert!(matches!(parse("[1,2]"), Err(ParseError::NotAnEvent { .. })));
}

#[test]
fn wrong_version_strings_are_rejected() {
    let (raw, _) = message();
    for bad in ["KERI20JSON", "KERI10CBOR", "ACDC10JSON", "KERI10json"] {
        let text = raw.replacen("KERI10JSON", bad, 1);
        assert!(
            matches!(parse(&text), Err(ParseError::VersionString { .. })),
            "{bad}"
        );
    }
    let upper = raw.replacen("KERI10JSON000", "KERI10JSON00A", 1);
    assert!(matches!(
        parse(&upper),
        Err(ParseError::VersionString { .. })
    ));
    let no_underscore = format!("{}.{}", &raw[..22], &raw[23..]);
    assert!(matches!(
        parse(&no_underscore),
        Err(ParseError::VersionString { .. })
    ));
}

#[test]
fn wrong_sizes_are_rejected() {
    let (raw, atc) = message();
    let size = raw.len();
    let smaller = format!("{}{:06x}{}", &raw[..16], size - 1, &raw[22..]);
    assert_eq!(
        parse(&format!("{smaller}{atc}")),
        Err(ParseError::SizeMismatch {
            declared: size - 1,
            actual: size
        })
    );
    let larger = format!("{}{:06x}{}", &raw[..16], size + 4, &raw[22..]);
    assert_eq!(
        parse(&format!("{larger}{atc}")),
        Err(ParseError::SizeMismatch {
            declared: size + 4,
            actual: size
        })
    );
    assert_eq!(
        parse(&raw[..size - 10]),
        Err(ParseError::Truncated {
            declared: size,
            available: size - 10
        })
    );
    let huge = format!("{}{:06x}{}", &raw[..16], 0xffffff, &raw[22..]);
    assert!(matches!(parse(&huge), Err(ParseError::TooLarge { .. })));
}

#[test]
fn field_order_missing_extra_and_repeated_fields_are_rejected() {
    let (raw, _) = message();
    let swapped = resize(&raw.replacen("\"kt\":\"1\",\"k\":", "\"k\":", 1).replacen(
        "],\"nt\"",
        "],\"kt\":\"1\",\"nt\"",
        1,
    ));
    assert!(
        matches!(
            parse(&swapped),
            Err(ParseError::FieldOrder { ilk: "icp", .. })
        ),
        "{:?}",
        parse(&swapped)
    );
    let missing = resize(&raw.replacen(",\"c\":[]", "", 1));
    assert_eq!(
        parse(&missing),
        Err(ParseError::MissingField {
            ilk: "icp",
            field: "c"
        })
    );
    let extra = resize(&raw.replacen(",\"c\":[]", ",\"c\":[],\"x\":1", 1));
    assert_eq!(
        parse(&extra),
        Err(ParseError::UnexpectedField {
            ilk: "icp",
            field: "x".into()
        })
    );
    let repeated = resize(&raw.replacen(",\"c\":[]", ",\"c\":[],\"c\":[]", 1));
    assert_eq!(
        parse(&repeated),
        Err(ParseError::DuplicateField {
            ilk: "icp",
            field: "c".into()
        })
    );
    let unknown = raw.replacen("\"t\":\"icp\"", "\"t\":\"xyz\"", 1);
    assert!(matches!(
        parse(&unknown),
        Err(ParseError::UnknownIlk { .. })
    ));
}

/// `raw` with the base64 character at `at` changed to another.
fn flip(raw: &str, at: usize) -> String {
    let other = if &raw[at..=at] == "A" { "B" } else { "A" };
    format!("{}{}{}", &raw[..at], other, &raw[at + 1..])
}

#[test]
fn bad_saids_are_rejected() {
    let (raw, _) = message();
    // Change one key character: the SAID no longer matches.
    let tampered = flip(&raw, raw.find("\"k\":[\"D").expect("key") + 8);
    assert!(
        matches!(
            parse(&tampered),
            Err(ParseError::SaidMismatch { field: "d", .. })
        ),
        "{:?}",
        parse(&tampered)
    );
    // Change the self-addressing prefix only: d still matches (both are blanked), i not.
    let tampered = flip(&raw, raw.find("\"i\":\"E").expect("prefix") + 10);
    assert!(
        matches!(
            parse(&tampered),
            Err(ParseError::SaidMismatch { field: "i", .. })
        ),
        "{:?}",
        parse(&tampered)
    );
}

#[test]
fn non_canonical_json_is_rejected() {
    let (raw, _) = message();
    let spaced = resize(&raw.replacen(",\"s\"", ", \"s\"", 1));
    assert_eq!(parse(&spaced), Err(ParseError::NonCanonical));
    let escaped = resize(&raw.replacen("\"t\":\"icp\"", "\"t\":\"\\u0069cp\"", 1));
    assert_eq!(parse(&escaped), Err(ParseError::NonCanonical));
}

#[test]
fn bad_field_values_are_rejected() {
    let (raw, _) = message();
    let sn = raw.replacen("\"s\":\"0\"", "\"s\":\"00\"", 1);
    assert!(matches!(
        parse(&resize(&sn)),
        Err(ParseError::FieldValue { field: "s", .. })
    ));
    let kt = raw.replacen("\"kt\":\"1\"", "\"kt\":1", 1);
    assert!(matches!(
        parse(&resize(&kt)),
        Err(ParseError::Threshold { field: "kt", .. })
    ));
    let key = raw.replacen("\"k\":[\"D", "\"k\":[\"X", 1);
    assert!(matches!(
        parse(&key),
        Err(ParseError::Primitive {
            field: "k",
            source: CesrError::UnknownCode { .. }
        })
    ));
}

#[test]
fn truncated_and_unknown_cesr_attachments_are_rejected() {
    let (raw, atc) = message();
    let cut = format!("{raw}{}", &atc[..atc.len() - 1]);
    assert!(matches!(
        parse(&cut),
        Err(ParseError::Attachment(CesrError::Truncated {
            what: "indexed signature",
            ..
        }))
    ));
    let counter_only = format!("{raw}-A");
    assert!(matches!(
        parse(&counter_only),
        Err(ParseError::Attachment(CesrError::Truncated {
            what: "counter",
            ..
        }))
    ));
    let unknown = format!("{raw}-ZAB{}", &atc[4..]);
    assert!(matches!(
        parse(&unknown),
        Err(ParseError::Attachment(CesrError::UnknownCode { .. }))
    ));
    let not_text = format!("{raw}{}\u{e9}", atc);
    assert!(matches!(
        parse(&not_text),
        Err(ParseError::AttachmentNotText { .. })
    ));
    assert!(matches!(
        Matter::from_qb64("E"),
        Err(CesrError::Truncated {
            needed: 44,
            have: 1,
            ..
        })
    ));
    assert!(matches!(
        Matter::from_qb64("Z"),
        Err(CesrError::UnknownCode { .. })
    ));
}

#[test]
fn attachment_groups_are_unwrapped() {
    let (raw, atc) = message();
    let group = format!(
        "{raw}-VA{}{atc}",
        char::from(
            b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"[atc.len() / 4]
        )
    );
    let (m, _) = parse_message(group.as_bytes()).expect("valid group");
    assert_eq!(m.attachments.signatures.len(), 1);
    let short = format!("{raw}-VAB{atc}");
    assert!(
        matches!(parse(&short), Err(ParseError::GroupSize { declared: 4 })),
        "{:?}",
        parse(&short)
    );
    let nested = format!("{raw}-VAB-VAA");
    assert_eq!(
        parse(&nested),
        Err(ParseError::UnexpectedCounter { code: "-V" })
    );
    let _ = parse_event(raw.as_bytes()).expect("event alone");
}
