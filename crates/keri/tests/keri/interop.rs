//! Live interop with keripy 1.1.17 in both directions. The set-up (`tests/interop/setup.sh`)
//! installs keripy into a venv under the cargo target directory on first use; if it fails,
//! these tests fail with what to install.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

use serde::Deserialize;
use welkin_keri::{
    Attachments, EventSeal, InceptionBuilder, Kevery, KeveryConfig, Message, Outcome, Prefix,
    RotationBuilder, Signer, Threshold, interact, seal_anchors, sign, sign_indexed, signed,
};

use crate::common::{digests, kevery, signer};

const KERIPY_VERSION: &str = "1.1.17";

/// The key state fields both sides report.
#[derive(Debug, Deserialize, PartialEq)]
struct State {
    prefix: String,
    sn: u64,
    digest: String,
    keys: Vec<String>,
    kt: serde_json::Value,
    next: Vec<String>,
    nt: serde_json::Value,
    witnesses: Vec<String>,
    bt: u64,
    delegator: Option<String>,
    establishment_only: bool,
    do_not_delegate: bool,
}

#[derive(Deserialize)]
struct States {
    states: std::collections::BTreeMap<String, State>,
}

fn interop_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/interop")
}

/// The cargo target directory: `CARGO_TARGET_DIR`, or three levels above the test binary
/// (`target/debug/deps/keri-...`).
fn target_dir() -> PathBuf {
    if let Some(dir) = std::env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    let exe = std::env::current_exe().expect("test binary path");
    exe.ancestors()
        .nth(3)
        .expect("binary under target/<profile>/deps")
        .to_path_buf()
}

/// The venv's python, after running the set-up once per test process.
fn python() -> &'static Path {
    static PYTHON: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    let result = PYTHON.get_or_init(|| {
        let venv = target_dir().join(format!("keripy-{KERIPY_VERSION}"));
        let output = Command::new("bash")
            .arg(interop_dir().join("setup.sh"))
            .arg(&venv)
            .output()
            .map_err(|e| format!("cannot run bash: {e}"))?;
        if !output.status.success() {
            return Err(String::from_utf8_lossy(&output.stderr).into_owned());
        }
        Ok(venv.join("bin/python"))
    });
    match result {
        Ok(path) => path,
        Err(e) => panic!(
            "keripy {KERIPY_VERSION} interop set-up failed (tests/interop/setup.sh): install \
             python3 >= 3.10 with venv, the libsodium library (Debian: apt-get install \
             libsodium23) and allow pip to reach PyPI (pip install keri=={KERIPY_VERSION}); \
             see crates/keri/README.md. Set-up said:\n{e}"
        ),
    }
}

/// Runs the helper; returns its standard output.
fn helper(args: &[&str], stdin: Option<&str>) -> String {
    use std::io::Write as _;
    let mut child = Command::new(python())
        .arg(interop_dir().join("keri_helper.py"))
        .args(args)
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("start keri_helper.py");
    let mut input = child.stdin.take().expect("piped");
    input
        .write_all(stdin.unwrap_or("").as_bytes())
        .expect("write helper input");
    drop(input);
    let output = child.wait_with_output().expect("keri_helper.py runs");
    assert!(
        output.status.success(),
        "keri_helper.py {args:?} failed:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout).expect("utf-8 output")
}

/// Welkin's view of every identifier in the form the helper prints.
fn welkin_states(k: &Kevery) -> std::collections::BTreeMap<String, State> {
    k.prefixes()
        .map(|p| {
            let s = k.state(p).expect("listed");
            let state = State {
                prefix: s.prefix.qb64(),
                sn: s.sn,
                digest: s.digest.qb64(),
                keys: s.signing.keys.iter().map(|k| k.qb64()).collect(),
                kt: serde_json::to_value(&s.signing.kt).expect("json"),
                next: s.signing.next.iter().map(|d| d.qb64()).collect(),
                nt: serde_json::to_value(&s.signing.nt).expect("json"),
                witnesses: s.witnesses.iter().map(Prefix::qb64).collect(),
                bt: s.bt,
                delegator: s.delegator.map(|d| d.qb64()),
                establishment_only: s.establishment_only(),
                do_not_delegate: s.do_not_delegate(),
            };
            (p.qb64(), state)
        })
        .collect()
}

fn weights(text: &str) -> Threshold {
    serde_json::from_str(text).expect("threshold")
}

/// Processes and requires acceptance; returns the message for the stream.
fn accept(k: &mut Kevery, message: Message) -> Message {
    let result = k.process(message.clone());
    assert!(matches!(result, Ok(Outcome::Accepted { .. })), "{result:?}");
    message
}

/// A KEL set exercising weighted and nested thresholds, partial rotation, witnesses and
/// delegation, accepted by Welkin; returns the processor and the stream.
fn welkin_kels() -> (Kevery, Vec<Message>) {
    let mut k = Kevery::new(KeveryConfig::default());
    let mut out = Vec::new();

    // A: weighted thresholds, then a partial rotation revealing two of three next keys
    // plus a new current-only key under a nested threshold, then an interaction.
    let a: Vec<Signer> = (101..=109).map(signer).collect();
    let icp = InceptionBuilder::new(a[0..3].iter().map(Signer::verkey).collect())
        .kt(weights(r#"["1/2","1/2","1/2"]"#))
        .next(digests(&a[3..6]), weights(r#"["1/2","1/2","1/2"]"#))
        .config(&["DND"])
        .build();
    let pre = icp.prefix();
    let sigs = sign(&icp, &a[0..2]);
    out.push(accept(&mut k, signed(icp, sigs)));
    let state = k.state(&pre).expect("accepted").clone();
    let rot = RotationBuilder::new(&state, vec![a[3].verkey(), a[4].verkey(), a[6].verkey()])
        .kt(weights(r#"[["1/2","1/2"],["1"]]"#))
        .next(digests(&a[7..9]), weights(r#"["1/2","1/2"]"#))
        .build();
    let sigs = vec![
        sign_indexed(&rot, &a[3], 0, Some(0)),
        sign_indexed(&rot, &a[4], 1, Some(1)),
        sign_indexed(&rot, &a[6], 2, None),
    ];
    out.push(accept(&mut k, signed(rot, sigs.clone())));
    let state = k.state(&pre).expect("accepted").clone();
    let ixn = interact(&state, vec![]);
    let sigs = sign(&ixn, &[a[3].clone(), a[4].clone(), a[6].clone()]);
    out.push(accept(&mut k, signed(ixn, sigs)));

    // W: two witnesses, then a rotation cutting one and adding another.
    let w: Vec<Signer> = (120..=122)
        .map(|n| Signer::non_transferable(&[n; 32]))
        .collect();
    let wp: Vec<Prefix> = w.iter().map(|s| Prefix::Basic(s.verkey())).collect();
    let c: Vec<Signer> = (110..=112).map(signer).collect();
    let icp = InceptionBuilder::new(vec![c[0].verkey()])
        .next(digests(&c[1..2]), Threshold::Simple(1))
        .witnesses(wp[0..2].to_vec(), 2)
        .build();
    let wpre = icp.prefix();
    let mut message = signed(icp.clone(), sign(&icp, &c[0..1]));
    message.attachments.witness_signatures = sign(&icp, &w[0..2]);
    out.push(accept(&mut k, message));
    let state = k.state(&wpre).expect("accepted").clone();
    let rot = RotationBuilder::new(&state, vec![c[1].verkey()])
        .next(digests(&c[2..3]), Threshold::Simple(1))
        .witnesses(vec![wp[0]], vec![wp[2]], 2)
        .build();
    let mut message = signed(rot.clone(), sign(&rot, &c[1..2]));
    message.attachments.witness_signatures = sign(&rot, &w[1..3]);
    out.push(accept(&mut k, message));

    // D delegates E: D's interactions anchor E's dip and drt; E's messages carry the
    // seal source couple (-G) keripy needs to find the anchor.
    let d: Vec<Signer> = (130..=131).map(signer).collect();
    let e: Vec<Signer> = (132..=134).map(signer).collect();
    let dicp = InceptionBuilder::new(vec![d[0].verkey()])
        .next(digests(&d[1..2]), Threshold::Simple(1))
        .build();
    let dpre = dicp.prefix();
    let sigs = sign(&dicp, &d[0..1]);
    out.push(accept(&mut k, signed(dicp, sigs)));
    let dip = InceptionBuilder::new(vec![e[0].verkey()])
        .next(digests(&e[1..2]), Threshold::Simple(1))
        .delegator(dpre)
        .build();
    let epre = dip.prefix();
    let dip_message = delegated(&mut k, &mut out, &d[0], dip, &e[0]);
    let state = k.state(&epre).expect("accepted").clone();
    let drt = RotationBuilder::new(&state, vec![e[1].verkey()])
        .next(digests(&e[2..3]), Threshold::Simple(1))
        .build();
    let drt_message = delegated(&mut k, &mut out, &d[0], drt, &e[1]);
    assert_eq!(dip_message.event.ilk().as_str(), "dip");
    assert_eq!(drt_message.event.ilk().as_str(), "drt");
    (k, out)
}

/// Anchors `event` in an interaction of the delegator signed by `delegator`, then submits
/// the delegated event (with its -G couple) signed by `signer`.
fn delegated(
    k: &mut Kevery,
    out: &mut Vec<Message>,
    delegator: &Signer,
    event: welkin_keri::Event,
    signer: &Signer,
) -> Message {
    let dpre = match event.body() {
        welkin_keri::EventBody::Inception(i) => i.delegator.expect("dip"),
        _ => k
            .state(&event.prefix())
            .and_then(|s| s.delegator)
            .expect("delegated"),
    };
    let dstate = k.state(&dpre).expect("delegator accepted").clone();
    let seal = EventSeal {
        prefix: event.prefix(),
        sn: event.sn(),
        said: event.said(),
    };
    let ixn = interact(&dstate, seal_anchors(&[seal]));
    let source = (ixn.sn(), ixn.said());
    let sigs = sign(&ixn, std::slice::from_ref(delegator));
    out.push(accept(k, signed(ixn, sigs)));
    let sigs = sign(&event, std::slice::from_ref(signer));
    let message = Message {
        event,
        attachments: Attachments {
            signatures: sigs,
            source_seals: vec![source],
            ..Attachments::default()
        },
    };
    out.push(accept(k, message.clone()));
    message
}

#[test]
fn welkin_kels_verify_in_keripy() {
    let (k, messages) = welkin_kels();
    let stream = crate::common::stream(&messages);
    let path = target_dir().join(format!("welkin-keri-interop-{}.cesr", std::process::id()));
    std::fs::write(&path, &stream).expect("write stream");
    let report = helper(&["verify", path.to_str().expect("utf-8 path")], None);
    let _ = std::fs::remove_file(&path);
    let keripy: States = serde_json::from_str(&report).expect("helper JSON");
    let welkin = welkin_states(&k);
    assert_eq!(welkin.len(), 4);
    assert_eq!(keripy.states, welkin);
}

#[test]
fn keripy_kels_validate_in_welkin() {
    let generated = helper(&["generate"], None);
    let committed: serde_json::Value =
        serde_json::from_str(include_str!("../fixtures/keripy.json")).expect("fixture");
    let live: serde_json::Value = serde_json::from_str(&generated).expect("helper JSON");
    assert_eq!(
        live, committed,
        "keripy output drifted from tests/fixtures/keripy.json"
    );
    let keripy: States =
        serde_json::from_str(&helper(&["states"], Some(&generated))).expect("states");

    #[derive(Deserialize)]
    struct Kel {
        messages: Vec<String>,
    }
    let kels: std::collections::BTreeMap<String, Kel> =
        serde_json::from_str(&generated).expect("helper JSON");
    let mut k = kevery();
    for message in kels.values().flat_map(|kel| &kel.messages) {
        for outcome in k.process_stream(message.as_bytes()).expect("parses") {
            assert!(outcome.is_ok(), "{outcome:?}");
        }
    }
    assert!(
        k.escrowed().is_empty(),
        "left in escrow: {:?}",
        k.escrowed()
    );
    assert_eq!(welkin_states(&k), keripy.states);
}

/// Writes `messages` as a CESR stream and has keripy process it; returns keripy's states.
fn keripy_states(messages: &[Message]) -> std::collections::BTreeMap<String, State> {
    let stream = crate::common::stream(messages);
    let path = target_dir().join(format!(
        "welkin-keri-interop-recovery-{}.cesr",
        std::process::id()
    ));
    std::fs::write(&path, &stream).expect("write stream");
    let report = helper(&["verify", path.to_str().expect("utf-8 path")], None);
    let _ = std::fs::remove_file(&path);
    serde_json::from_str::<States>(&report)
        .expect("helper JSON")
        .states
}

#[test]
fn welkin_recovery_rotation_verifies_in_keripy() {
    let s: Vec<Signer> = (150..=152).map(signer).collect();
    let mut k = kevery();
    let icp = InceptionBuilder::new(vec![s[0].verkey()])
        .next(digests(&s[1..2]), Threshold::Simple(1))
        .build();
    let pre = icp.prefix();
    let sigs = sign(&icp, &s[0..1]);
    let mut out = vec![accept(&mut k, signed(icp, sigs))];
    let incepted = k.state(&pre).expect("accepted").clone();
    for _ in 0..2 {
        let ixn = interact(k.state(&pre).expect("accepted"), vec![]);
        let sigs = sign(&ixn, &s[0..1]);
        out.push(accept(&mut k, signed(ixn, sigs)));
    }
    let rot = RotationBuilder::new(&incepted, vec![s[1].verkey()])
        .next(digests(&s[2..3]), Threshold::Simple(1))
        .build();
    let sigs = sign(&rot, &s[1..2]);
    out.push(accept(&mut k, signed(rot.clone(), sigs)));
    assert_eq!(k.log(&pre).len(), 2, "icp and the recovery rotation");
    assert_eq!(k.superseded(&pre)[0].superseded.len(), 2);
    let keripy = keripy_states(&out);
    assert_eq!(keripy[&pre.qb64()].sn, 1);
    assert_eq!(keripy[&pre.qb64()].digest, rot.said().qb64());
    assert_eq!(keripy, welkin_states(&k));
    // The log as Welkin serves it after the recovery (icp, rot) verifies too.
    let served: Vec<Message> = k
        .log(&pre)
        .iter()
        .map(|e| Message {
            event: e.event.clone(),
            attachments: e.attachments.clone(),
        })
        .collect();
    assert_eq!(keripy_states(&served), welkin_states(&k));
}

#[test]
fn keripy_recovery_rotation_validates_in_welkin() {
    #[derive(Deserialize)]
    struct Recovery {
        messages: Vec<String>,
        states: std::collections::BTreeMap<String, State>,
    }
    let recovery: Recovery =
        serde_json::from_str(&helper(&["recovery"], None)).expect("helper JSON");
    assert_eq!(recovery.messages.len(), 4);
    let mut k = kevery();
    for message in &recovery.messages {
        for outcome in k.process_stream(message.as_bytes()).expect("parses") {
            assert!(
                matches!(outcome, Ok(Outcome::Accepted { .. })),
                "{outcome:?}"
            );
        }
    }
    let (pre, keripy) = recovery.states.iter().next().expect("one identifier");
    assert_eq!((keripy.sn, recovery.states.len()), (1, 1));
    let prefix = Prefix::from_qb64(pre).expect("prefix");
    assert_eq!(k.log(&prefix).len(), 2);
    assert_eq!(k.superseded(&prefix)[0].superseded.len(), 2);
    assert_eq!(welkin_states(&k), recovery.states);
}
