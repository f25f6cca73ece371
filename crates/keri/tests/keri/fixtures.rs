//! Known answers: events and signatures keripy 1.1.17 made from fixed seeds
//! (`tests/fixtures/keripy.json`, written by `tests/interop/keri_helper.py generate`),
//! reproduced byte for byte by the builders, and accepted by the processor.

use serde::Deserialize;
use welkin_keri::{
    EventSeal, InceptionBuilder, Outcome, Prefix, RotationBuilder, Signer, Threshold, interact,
    parse_message, receipt, seal_anchors, sign, signed,
};

use crate::common::{digests, kevery, signer};

#[derive(Deserialize)]
struct Kel {
    messages: Vec<String>,
}

#[derive(Deserialize)]
struct Fixtures {
    weighted: Kel,
    single: Kel,
    basic: Kel,
    nontransferable: Kel,
    receipt: Kel,
}

fn fixtures() -> Fixtures {
    serde_json::from_str(include_str!("../fixtures/keripy.json")).expect("fixture JSON")
}

fn half3() -> Threshold {
    serde_json::from_str(r#"["1/2","1/2","1/2"]"#).expect("threshold")
}

fn bytes(message: welkin_keri::Message) -> String {
    String::from_utf8(message.to_bytes().expect("encodable")).expect("ascii")
}

#[test]
fn weighted_kel_matches_keripy_byte_for_byte() {
    let f = fixtures().weighted.messages;
    let a: Vec<Signer> = (1..=6).map(signer).collect();
    let b: Vec<Signer> = (7..=8).map(signer).collect();
    let icp = InceptionBuilder::new(a[0..3].iter().map(Signer::verkey).collect())
        .kt(half3())
        .next(digests(&a[3..6]), half3())
        .build();
    let sigs = sign(&icp, &a[0..3]);
    let icp_message = signed(icp.clone(), sigs);
    assert_eq!(bytes(icp_message.clone()), f[0]);

    let mut k = kevery();
    assert!(matches!(
        k.process(icp_message),
        Ok(Outcome::Accepted { .. })
    ));
    let state = k.state(&icp.prefix()).expect("accepted").clone();
    let rot = RotationBuilder::new(&state, a[3..6].iter().map(Signer::verkey).collect())
        .kt(half3())
        .next(digests(&b), Threshold::Simple(1))
        .build();
    let sigs = sign(&rot, &a[3..6]);
    assert_eq!(bytes(signed(rot.clone(), sigs.clone())), f[1]);
    assert!(matches!(
        k.process(signed(rot, sigs)),
        Ok(Outcome::Accepted { .. })
    ));

    let state = k.state(&icp.prefix()).expect("accepted").clone();
    let seal = EventSeal {
        prefix: icp.prefix(),
        sn: 0,
        said: icp.said(),
    };
    let ixn = interact(&state, seal_anchors(&[seal]));
    let sigs = sign(&ixn, &a[3..6]);
    assert_eq!(bytes(signed(ixn, sigs)), f[2]);
}

#[test]
fn single_key_eo_kel_matches_keripy() {
    let f = fixtures().single.messages;
    let c: Vec<Signer> = (20..=22).map(signer).collect();
    let icp = InceptionBuilder::new(vec![c[0].verkey()])
        .next(digests(&c[1..2]), Threshold::Simple(1))
        .config(&["EO"])
        .build();
    let sigs = sign(&icp, &c[0..1]);
    assert_eq!(bytes(signed(icp.clone(), sigs.clone())), f[0]);
    let mut k = kevery();
    k.process(signed(icp.clone(), sigs)).expect("accepted");
    let state = k.state(&icp.prefix()).expect("accepted").clone();
    let rot = RotationBuilder::new(&state, vec![c[1].verkey()])
        .next(digests(&c[2..3]), Threshold::Simple(1))
        .build();
    let sigs = sign(&rot, &c[1..2]);
    assert_eq!(bytes(signed(rot, sigs)), f[1]);
}

#[test]
fn basic_prefixes_match_keripy() {
    let d = signer(30);
    let icp = InceptionBuilder::new(vec![d.verkey()])
        .next(digests(&[signer(31)]), Threshold::Simple(1))
        .basic()
        .build();
    assert!(matches!(icp.prefix(), Prefix::Basic(_)));
    let sigs = sign(&icp, std::slice::from_ref(&d));
    assert_eq!(bytes(signed(icp, sigs)), fixtures().basic.messages[0]);

    let n = Signer::non_transferable(&[32; 32]);
    let icp = InceptionBuilder::new(vec![n.verkey()]).basic().build();
    let sigs = sign(&icp, std::slice::from_ref(&n));
    assert_eq!(
        bytes(signed(icp, sigs)),
        fixtures().nontransferable.messages[0]
    );
}

#[test]
fn witness_receipt_matches_keripy() {
    let f = fixtures();
    let (event, _) = parse_message(f.weighted.messages[0].as_bytes()).expect("keripy icp");
    let witness = Signer::non_transferable(&[40; 32]);
    assert_eq!(
        bytes(receipt(&event.event, &witness)),
        f.receipt.messages[0]
    );
}

#[test]
fn keripy_fixtures_parse_and_validate() {
    let f = fixtures();
    let mut k = kevery();
    for kel in [
        &f.weighted,
        &f.single,
        &f.basic,
        &f.nontransferable,
        &f.receipt,
    ] {
        for m in &kel.messages {
            let outcomes = k.process_stream(m.as_bytes()).expect("parses");
            for o in outcomes {
                assert!(
                    matches!(o, Ok(Outcome::Accepted { .. } | Outcome::Receipted)),
                    "{o:?}"
                );
            }
        }
    }
    assert_eq!(k.prefixes().count(), 4);
}
