//! Transit over real HTTP: every endpoint offered, Vault's refusals, the real Vault client
//! (hvac) unchanged, and no plaintext on any node's disk.

use super::secrets::{call, files_holding};
use base64::Engine as _;
use serde_json::{Value as Json, json};
use std::{path::Path, process::Command};

fn b64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn unb64(text: &Json) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(text.as_str().expect("a base64 string"))
        .expect("valid base64")
}

fn expect(api: &str, method: &str, path: &str, token: &str, body: Json, want: u16) -> Json {
    let (status, json) = call(api, method, path, token, body);
    assert_eq!(status, want, "{method} {path}: {json}");
    json
}

/// The first error message of a refusal.
fn error(json: &Json) -> String {
    json["errors"][0].as_str().unwrap_or_default().to_string()
}

fn encrypt(api: &str, root: &str, key: &str, plaintext: &[u8]) -> String {
    let out = expect(
        api,
        "POST",
        &format!("transit/encrypt/{key}"),
        root,
        json!({ "plaintext": b64(plaintext) }),
        200,
    );
    out["data"]["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_string()
}

fn decrypt(api: &str, root: &str, key: &str, ciphertext: &str) -> (u16, Json) {
    call(
        api,
        "POST",
        &format!("transit/decrypt/{key}"),
        root,
        json!({ "ciphertext": ciphertext }),
    )
}

/// Every endpoint offered, with Vault's codes and bodies.
pub(crate) fn transit_api(api: &str, root: &str) {
    expect(
        api,
        "POST",
        "sys/mounts/transit",
        root,
        json!({"type": "transit"}),
        204,
    );

    // Keys: create (chacha20-poly1305 by default, hmac), refused types, read, list.
    expect(api, "POST", "transit/keys/app", root, json!({}), 204);
    expect(
        api,
        "POST",
        "transit/keys/tag",
        root,
        json!({"type": "hmac"}),
        204,
    );
    let refused = expect(
        api,
        "POST",
        "transit/keys/aes",
        root,
        json!({"type": "aes256-gcm96"}),
        400,
    );
    assert!(error(&refused).contains("chacha20-poly1305"), "{refused}");
    expect(
        api,
        "POST",
        "transit/keys/ed",
        root,
        json!({"type": "ed25519"}),
        204,
    );
    let key = expect(api, "GET", "transit/keys/app", root, json!(null), 200);
    assert_eq!(key["data"]["type"], "chacha20-poly1305", "{key}");
    assert_eq!(key["data"]["latest_version"], 1, "{key}");
    assert_eq!(key["data"]["min_decryption_version"], 1, "{key}");
    assert_eq!(key["data"]["exportable"], false, "{key}");
    assert_eq!(key["data"]["supports_encryption"], true, "{key}");
    assert!(
        key["data"]["keys"]["1"]
            .as_u64()
            .is_some_and(|t| t > 1_600_000_000),
        "{key}"
    );
    for (method, path) in [("LIST", "transit/keys"), ("GET", "transit/keys?list=true")] {
        let list = expect(api, method, path, root, json!(null), 200);
        assert_eq!(list["data"]["keys"], json!(["app", "ed", "tag"]), "{list}");
    }

    // Encrypt and decrypt, single and batch.
    let first = encrypt(api, root, "app", b"first secret");
    assert!(first.starts_with("vault:v1:"), "{first}");
    let (status, out) = decrypt(api, root, "app", &first);
    assert_eq!(status, 200, "{out}");
    assert_eq!(unb64(&out["data"]["plaintext"]), b"first secret");
    let batch = expect(
        api,
        "POST",
        "transit/encrypt/app",
        root,
        json!({"batch_input": [{"plaintext": b64(b"a")}, {"plaintext": b64(b"b")}, {"plaintext": b64(b"c")}]}),
        200,
    );
    let ciphertexts: Vec<Json> = batch["data"]["batch_results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| json!({ "ciphertext": r["ciphertext"] }))
        .collect();
    let opened = expect(
        api,
        "POST",
        "transit/decrypt/app",
        root,
        json!({ "batch_input": ciphertexts }),
        200,
    );
    let plaintexts: Vec<Vec<u8>> = opened["data"]["batch_results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| unb64(&r["plaintext"]))
        .collect();
    assert_eq!(
        plaintexts,
        vec![b"a".to_vec(), b"b".to_vec(), b"c".to_vec()]
    );

    // Rotate: new ciphertexts are v2, old ones still open; rewrap moves them to v2.
    expect(
        api,
        "POST",
        "transit/keys/app/rotate",
        root,
        json!(null),
        204,
    );
    let second = encrypt(api, root, "app", b"second secret");
    assert!(second.starts_with("vault:v2:"), "{second}");
    let rewrapped = expect(
        api,
        "POST",
        "transit/rewrap/app",
        root,
        json!({ "ciphertext": first }),
        200,
    );
    let rewrapped = rewrapped["data"]["ciphertext"]
        .as_str()
        .expect("ciphertext")
        .to_string();
    assert!(rewrapped.starts_with("vault:v2:"), "{rewrapped}");
    let (status, out) = decrypt(api, root, "app", &rewrapped);
    assert_eq!(
        (status, unb64(&out["data"]["plaintext"])),
        (200, b"first secret".to_vec())
    );

    // min_decryption_version: v1 ciphertexts are refused, v2 still open.
    expect(
        api,
        "POST",
        "transit/keys/app/config",
        root,
        json!({"min_decryption_version": 2}),
        204,
    );
    let (status, out) = decrypt(api, root, "app", &first);
    assert_eq!(status, 400, "{out}");
    assert!(error(&out).contains("disallowed by policy"), "{out}");
    let (status, out) = decrypt(api, root, "app", &second);
    assert_eq!(
        (status, unb64(&out["data"]["plaintext"])),
        (200, b"second secret".to_vec())
    );

    // Data keys: the plaintext one decrypts to what it shows; the wrapped one shows none.
    let datakey = expect(
        api,
        "POST",
        "transit/datakey/plaintext/app",
        root,
        json!({"bits": 512}),
        200,
    );
    let shown = unb64(&datakey["data"]["plaintext"]);
    assert_eq!(shown.len(), 64);
    let (status, out) = decrypt(
        api,
        root,
        "app",
        datakey["data"]["ciphertext"].as_str().expect("ct"),
    );
    assert_eq!((status, unb64(&out["data"]["plaintext"])), (200, shown));
    let wrapped = expect(
        api,
        "POST",
        "transit/datakey/wrapped/app",
        root,
        json!({}),
        200,
    );
    assert!(wrapped["data"]["plaintext"].is_null(), "{wrapped}");
    assert!(
        wrapped["data"]["ciphertext"]
            .as_str()
            .is_some_and(|c| c.starts_with("vault:v2:"))
    );

    // HMAC: deterministic per key version and input, verified by the cluster, other keys differ.
    let input = json!({ "input": b64(b"message") });
    let mac = expect(api, "POST", "transit/hmac/tag", root, input.clone(), 200);
    let mac = mac["data"]["hmac"].as_str().expect("hmac").to_string();
    assert!(mac.starts_with("vault:v1:"), "{mac}");
    let again = expect(
        api,
        "POST",
        "transit/hmac/tag/sha2-256",
        root,
        input.clone(),
        200,
    );
    assert_eq!(again["data"]["hmac"], json!(mac));
    let other = expect(api, "POST", "transit/hmac/app", root, input, 200);
    assert_ne!(other["data"]["hmac"], json!(mac));
    let valid = expect(
        api,
        "POST",
        "transit/verify/tag",
        root,
        json!({"input": b64(b"message"), "hmac": mac}),
        200,
    );
    assert_eq!(valid["data"]["valid"], true, "{valid}");
    let forged = expect(
        api,
        "POST",
        "transit/verify/tag",
        root,
        json!({"input": b64(b"massage"), "hmac": mac}),
        200,
    );
    assert_eq!(forged["data"]["valid"], false, "{forged}");
    let refused = expect(
        api,
        "POST",
        "transit/hmac/tag",
        root,
        json!({"input": b64(b"m"), "algorithm": "sha2-512"}),
        400,
    );
    assert!(error(&refused).contains("sha2-256"), "{refused}");
    let refused = expect(
        api,
        "POST",
        "transit/verify/tag",
        root,
        json!({"input": b64(b"m"), "signature": "vault:v1:AAAA"}),
        400,
    );
    assert!(
        error(&refused).contains("does not support verification"),
        "{refused}"
    );
    expect(
        api,
        "POST",
        "transit/sign/tag",
        root,
        json!({"input": b64(b"m")}),
        400,
    );

    // Random and hash.
    let random = expect(
        api,
        "POST",
        "transit/random/16",
        root,
        json!({"format": "hex"}),
        200,
    );
    assert_eq!(
        random["data"]["random_bytes"].as_str().map(str::len),
        Some(32),
        "{random}"
    );
    expect(
        api,
        "POST",
        "transit/random",
        root,
        json!({"bytes": 200_000}),
        400,
    );
    let sum = expect(
        api,
        "POST",
        "transit/hash",
        root,
        json!({"input": b64(b"abc")}),
        200,
    );
    assert_eq!(
        sum["data"]["sum"],
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let sum = expect(
        api,
        "POST",
        "transit/hash/sha2-512",
        root,
        json!({"input": b64(b"abc"), "format": "base64"}),
        200,
    );
    assert_eq!(unb64(&sum["data"]["sum"]).len(), 64);
    expect(
        api,
        "POST",
        "transit/hash/sha3-256",
        root,
        json!({"input": b64(b"abc")}),
        400,
    );

    // Vault's refusals.
    let bad = expect(
        api,
        "POST",
        "transit/encrypt/app",
        root,
        json!({"plaintext": "not base64!"}),
        400,
    );
    assert!(error(&bad).contains("base64"), "{bad}");
    let unknown = expect(
        api,
        "POST",
        "transit/encrypt/nope",
        root,
        json!({"plaintext": b64(b"x")}),
        400,
    );
    assert!(
        error(&unknown).contains("encryption key not found"),
        "{unknown}"
    );
    let (status, unknown) = decrypt(api, root, "nope", &second);
    assert_eq!(status, 400, "{unknown}");
    assert!(
        error(&unknown).contains("encryption key not found"),
        "{unknown}"
    );
    let wrong = expect(
        api,
        "POST",
        "transit/encrypt/tag",
        root,
        json!({"plaintext": b64(b"x")}),
        400,
    );
    assert!(
        error(&wrong).contains("does not support encryption"),
        "{wrong}"
    );
    let (status, malformed) = decrypt(api, root, "app", "vault:v2:AAAA");
    assert_eq!(status, 400, "{malformed}");
    assert!(
        error(&malformed).starts_with("invalid ciphertext"),
        "{malformed}"
    );

    // Deletion only once allowed.
    let refused = expect(api, "DELETE", "transit/keys/tag", root, json!(null), 400);
    assert!(
        error(&refused).contains("deletion is not allowed"),
        "{refused}"
    );
    expect(
        api,
        "POST",
        "transit/keys/tag/config",
        root,
        json!({"deletion_allowed": true}),
        204,
    );
    expect(api, "DELETE", "transit/keys/tag", root, json!(null), 204);
    expect(api, "GET", "transit/keys/tag", root, json!(null), 404);
    signing(api, root);
}

/// A plaintext encrypted (and decrypted) through transit is on no node's disk: the log holds
/// the decryption request by key version and nonce only.
pub(crate) fn confidentiality(dir: &Path, api: &str, root: &str) {
    let marker = b"transit-marker-7c1f0e2a";
    let ciphertext = encrypt(api, root, "app", marker);
    let (status, out) = decrypt(api, root, "app", &ciphertext);
    assert_eq!(
        (status, unb64(&out["data"]["plaintext"])),
        (200, marker.to_vec())
    );
    let found = files_holding(dir, marker);
    assert!(found.is_empty(), "the plaintext is on disk: {found:?}");
}

/// The public key of `version` of signing key `name`, once the nodes have generated it
/// together.
fn public_key(api: &str, root: &str, name: &str, version: u64) -> Vec<u8> {
    for _ in 0..600 {
        let key = expect(
            api,
            "GET",
            &format!("transit/keys/{name}"),
            root,
            json!(null),
            200,
        );
        let entry = &key["data"]["keys"][version.to_string()];
        if let Some(text) = entry["public_key"].as_str().filter(|t| !t.is_empty()) {
            assert_eq!(entry["name"], "ed25519", "{key}");
            return unb64(&json!(text));
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    panic!("the nodes did not generate version {version} of {name} within 60 s");
}

fn sign(api: &str, root: &str, name: &str, body: Json) -> Json {
    expect(
        api,
        "POST",
        &format!("transit/sign/{name}"),
        root,
        body,
        200,
    )
}

fn verify(api: &str, root: &str, name: &str, input: &[u8], signature: &Json) -> (u16, Json) {
    call(
        api,
        "POST",
        &format!("transit/verify/{name}"),
        root,
        json!({"input": b64(input), "signature": signature}),
    )
}

/// Ed25519 signatures by the nodes together: sign, verify, batches, rotation, the minimum
/// version, and Vault's refusals.
fn signing(api: &str, root: &str) {
    let first = public_key(api, root, "ed", 1);
    assert_eq!(first.len(), 32);
    let signed = sign(api, root, "ed", json!({"input": b64(b"release 1.0")}));
    let signature = &signed["data"]["signature"];
    assert!(
        signature
            .as_str()
            .is_some_and(|s| s.starts_with("vault:v1:")),
        "{signed}"
    );
    assert_eq!(signed["data"]["key_version"], 1, "{signed}");
    let (status, valid) = verify(api, root, "ed", b"release 1.0", signature);
    assert_eq!(
        (status, &valid["data"]["valid"]),
        (200, &json!(true)),
        "{valid}"
    );
    let (status, valid) = verify(api, root, "ed", b"release 1.1", signature);
    assert_eq!(
        (status, &valid["data"]["valid"]),
        (200, &json!(false)),
        "{valid}"
    );

    // Batches, both ways.
    let batch = sign(
        api,
        root,
        "ed",
        json!({"batch_input": [{"input": b64(b"a")}, {"input": b64(b"b")}]}),
    );
    let results = batch["data"]["batch_results"].as_array().expect("results");
    assert_eq!(results.len(), 2, "{batch}");
    let checked = expect(
        api,
        "POST",
        "transit/verify/ed",
        root,
        json!({"batch_input": [
            {"input": b64(b"a"), "signature": results[0]["signature"]},
            {"input": b64(b"a"), "signature": results[1]["signature"]},
        ]}),
        200,
    );
    let valid: Vec<&Json> = checked["data"]["batch_results"]
        .as_array()
        .expect("results")
        .iter()
        .map(|r| &r["valid"])
        .collect();
    assert_eq!(valid, [&json!(true), &json!(false)], "{checked}");

    // Refusals: bad base64 (400), a malformed signature (400), prehashed, an unknown key.
    let (status, refused) = call(
        api,
        "POST",
        "transit/sign/ed",
        root,
        json!({"input": "not base64!"}),
    );
    assert_eq!(status, 400, "{refused}");
    assert!(error(&refused).contains("base64"), "{refused}");
    let (status, refused) = verify(api, root, "ed", b"x", &json!("vault:v1:!!"));
    assert_eq!(status, 400, "{refused}");
    let (status, refused) = verify(api, root, "ed", b"x", &json!("vault:v1:AAAA"));
    assert_eq!(status, 400, "{refused}");
    assert!(error(&refused).contains("not 64"), "{refused}");
    let (status, refused) = call(
        api,
        "POST",
        "transit/sign/ed",
        root,
        json!({"input": b64(b"x"), "prehashed": true}),
    );
    assert_eq!(status, 400, "{refused}");
    let (status, _) = call(
        api,
        "POST",
        "transit/sign/nope",
        root,
        json!({"input": b64(b"x")}),
    );
    assert_eq!(status, 400, "an unknown key is Vault's 400");

    // Rotation: the nodes generate version 2; version 1's signatures still verify until
    // min_decryption_version passes them.
    expect(api, "POST", "transit/keys/ed/rotate", root, json!({}), 204);
    let second = public_key(api, root, "ed", 2);
    assert_ne!(first, second, "a new version is a new key");
    let signed = sign(api, root, "ed", json!({"input": b64(b"release 2.0")}));
    assert!(
        signed["data"]["signature"]
            .as_str()
            .is_some_and(|s| s.starts_with("vault:v2:")),
        "{signed}"
    );
    let (status, valid) = verify(api, root, "ed", b"release 1.0", signature);
    assert_eq!(
        (status, &valid["data"]["valid"]),
        (200, &json!(true)),
        "{valid}"
    );
    expect(
        api,
        "POST",
        "transit/keys/ed/config",
        root,
        json!({"min_decryption_version": 2}),
        204,
    );
    let (status, refused) = verify(api, root, "ed", b"release 1.0", signature);
    assert_eq!(status, 400, "{refused}");
    assert!(
        error(&refused).contains("min_decryption_version"),
        "{refused}"
    );
    let (status, refused) = call(
        api,
        "POST",
        "transit/sign/ed",
        root,
        json!({"input": b64(b"x"), "key_version": 1}),
    );
    assert_eq!(status, 400, "version 1 no longer signs: {refused}");
}

/// `welkin transit` end to end: keys, encryption through standard input, signatures checked
/// locally against the certified public key, MACs, and refusals that exit non-zero.
pub(crate) fn cli(dir: &Path, api: &str, root: &str) {
    use super::kv_cli::{json, ok, run};
    let genesis = dir.join("genesis.json");
    let genesis = genesis.to_str().expect("utf-8 path");
    ok(api, root, &["transit", "create", "cli-enc"], None);
    ok(
        api,
        root,
        &["transit", "create", "cli-signer", "--type", "ed25519"],
        None,
    );
    let keys = ok(api, root, &["transit", "keys", "--json"], None);
    let keys = json(&keys);
    assert!(
        keys["data"]["keys"]
            .as_array()
            .is_some_and(|k| k.contains(&json!("cli-enc")) && k.contains(&json!("cli-signer"))),
        "{keys}"
    );
    let ciphertext = ok(
        api,
        root,
        &["transit", "encrypt", "cli-enc", "-"],
        Some("piped secret"),
    );
    assert!(ciphertext.starts_with("vault:v1:"), "{ciphertext}");
    let plaintext = ok(
        api,
        root,
        &["transit", "decrypt", "cli-enc", ciphertext.trim()],
        None,
    );
    assert_eq!(plaintext.trim(), "piped secret");
    let encrypted = json(&ok(
        api,
        root,
        &["transit", "encrypt", "cli-enc", "x", "--json"],
        None,
    ));
    assert_eq!(encrypted["data"]["key_version"], 1, "{encrypted}");

    public_key(api, root, "cli-signer", 1);
    let shown = ok(api, root, &["transit", "show", "cli-signer"], None);
    assert!(
        shown.contains("ed25519") && shown.contains("Public key"),
        "{shown}"
    );
    let signature = ok(
        api,
        root,
        &["transit", "sign", "cli-signer", "ship it"],
        None,
    );
    let signature = signature.trim();
    assert!(signature.starts_with("vault:v1:"), "{signature}");
    let verify = |input: &str| {
        run(
            api,
            root,
            &[
                "transit",
                "verify",
                "cli-signer",
                input,
                "--signature",
                signature,
                "--genesis",
                genesis,
            ],
            None,
        )
    };
    // The key record reaches a certified checkpoint within a few seconds.
    let mut verified = String::new();
    for _ in 0..100 {
        let (success, stdout, _) = verify("ship it");
        if success {
            verified = stdout;
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
    assert!(verified.starts_with("verified"), "{verified}");
    let (success, stdout, _) = verify("do not ship");
    assert!(!success && stdout.starts_with("invalid"), "{stdout}");
    let mac = ok(api, root, &["transit", "hmac", "cli-enc", "tagged"], None);
    let valid = ok(
        api,
        root,
        &[
            "transit",
            "verify",
            "cli-enc",
            "tagged",
            "--hmac",
            mac.trim(),
        ],
        None,
    );
    assert_eq!(valid.trim(), "valid");
    let (success, _, stderr) = run(
        api,
        root,
        &["transit", "decrypt", "cli-enc", "vault:v1:AAAA"],
        None,
    );
    assert!(!success && stderr.contains("400"), "{stderr}");
    let (success, _, stderr) = run(api, root, &["transit", "config", "cli-enc"], None);
    assert!(!success && stderr.contains("nothing to change"), "{stderr}");
}

/// A KERI identity owns a signing key: a policy names its keys, the identifier's role grants
/// the policy, and `welkin transit sign` works after `welkin login --as` (Sky's enclave
/// signing); keys the policy does not name are refused.
pub(crate) fn identity(dir: &Path, api: &str, root: &str, prefix: &str) {
    let policy = r#"path "transit/sign/carla-*" { capabilities = ["update"] }"#;
    let (status, body) = call(
        api,
        "PUT",
        "sys/policies/acl/carla-transit",
        root,
        json!({"policy": policy}),
    );
    assert_eq!(status, 204, "{body}");
    let (status, body) = call(
        api,
        "POST",
        &format!("auth/keri/role/{prefix}"),
        root,
        json!({"policies": ["carla-transit"], "ttl": "1h"}),
    );
    assert_eq!(status, 204, "{body}");
    expect(
        api,
        "POST",
        "transit/keys/carla-release",
        root,
        json!({"type": "ed25519"}),
        204,
    );
    let public = public_key(api, root, "carla-release", 1);
    let home = dir.join("keri-home");
    let welkin = |args: &[&str]| {
        let mut command = super::welkin();
        command
            .args(args)
            .args(["--api", api])
            .env("WELKIN_PASSPHRASE", "correct horse battery staple")
            .env("HOME", &home)
            .env("WELKIN_GENESIS", dir.join("genesis.json"))
            .env_remove("VAULT_TOKEN");
        command.output().expect("welkin runs")
    };
    let keystore = dir.join("keystore.json");
    let keystore = keystore.to_str().expect("utf-8 path");
    let logged = welkin(&["login", "--as", "carla", "--keystore", keystore]);
    assert!(
        logged.status.success(),
        "{}",
        String::from_utf8_lossy(&logged.stderr)
    );
    let signed = welkin(&["transit", "sign", "carla-release", "carla's release"]);
    let stdout = String::from_utf8_lossy(&signed.stdout);
    assert!(
        signed.status.success() && stdout.starts_with("vault:v1:"),
        "{stdout}{}",
        String::from_utf8_lossy(&signed.stderr)
    );
    let signature = unb64(&json!(stdout.trim().trim_start_matches("vault:v1:")));
    let signature: [u8; 64] = signature.try_into().expect("64 bytes");
    let public: [u8; 32] = public.try_into().expect("32 bytes");
    assert!(welkin_frost::verify_signature(
        &public,
        b"carla's release",
        &signature
    ));
    let refused = welkin(&["transit", "sign", "cli-signer", "not hers"]);
    assert!(!refused.status.success());
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("403"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
}

/// hvac drives transit unchanged (see `transit_client.py`); `secrets::hvac` installed it.
pub(crate) fn hvac(api: &str, root: &str) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/processes");
    let venv = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target directory")
        .join("hvac-2.4.0");
    let run = Command::new(venv.join("bin/python"))
        .arg(here.join("transit_client.py"))
        .env("VAULT_ADDR", api)
        .env("VAULT_TOKEN", root)
        .output()
        .expect("python runs");
    assert!(
        run.status.success(),
        "hvac transit against the cluster failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}
