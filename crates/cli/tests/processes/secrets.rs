//! Secrets over real HTTP: the Vault-compatible API endpoint by endpoint, the real Vault
//! client (hvac) driving it unchanged, and confidentiality against the nodes' own files.

use std::{path::Path, process::Command, time::Duration};
use welkin_client::{Client, Trusted};
use welkin_node::ceremony::{NodeKey, SealedShare, open_share};
use welkin_types::{Genesis, hash_parts};

/// One Vault request; returns the status, the body as JSON (`null` when empty) and the
/// Content-Type.
pub(crate) fn vault(
    api: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
) -> (u16, serde_json::Value, String) {
    vault_with(api, method, path, token, body, &[])
}

/// [`vault`] with extra headers.
fn vault_with(
    api: &str,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<&[u8]>,
    headers: &[(&str, &str)],
) -> (u16, serde_json::Value, String) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .allow_non_standard_methods(true)
        .build()
        .into();
    let mut request = ureq::http::Request::builder()
        .method(method)
        .uri(format!("{api}/v1/{path}"));
    if let Some(token) = token {
        request = request.header("X-Vault-Token", token);
    }
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    let request = request
        .body(body.map(<[u8]>::to_vec).unwrap_or_default())
        .expect("request builds");
    let mut response = agent.run(request).expect("the node answers");
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let text = response.body_mut().read_to_string().expect("body reads");
    let json = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(&text)
            .unwrap_or_else(|e| panic!("{method} {path}: not JSON ({e}): {text}"))
    };
    (status, json, content_type)
}

/// One Vault request with a JSON body (`null`: none); returns the status and the body.
pub(crate) fn call(
    api: &str,
    method: &str,
    path: &str,
    token: &str,
    body: serde_json::Value,
) -> (u16, serde_json::Value) {
    let bytes = (!body.is_null()).then(|| body.to_string().into_bytes());
    let (status, json, _) = vault(api, method, path, Some(token), bytes.as_deref());
    (status, json)
}

fn expect(
    api: &str,
    method: &str,
    path: &str,
    token: &str,
    body: serde_json::Value,
    want: u16,
) -> serde_json::Value {
    let (status, json) = call(api, method, path, token, body);
    assert_eq!(status, want, "{method} {path}: {json}");
    json
}

/// Every endpoint the issue names, with Vault's codes and bodies.
pub(crate) fn vault_api(api: &str, root: &str) {
    use serde_json::json;
    // Health and seal status answer without a token; nothing is ever sealed.
    let (status, health, content_type) = vault(api, "GET", "sys/health", None, None);
    assert_eq!((status, health["sealed"].as_bool()), (200, Some(false)));
    assert_eq!(content_type, "application/json");
    let (_, seal, _) = vault(api, "GET", "sys/seal-status", None, None);
    assert_eq!(seal["sealed"], false);
    assert_eq!(seal["t"], 3);

    // Versions.
    let v1 = expect(
        api,
        "POST",
        "secret/data/app/db",
        root,
        json!({"data": {"password": "p1"}}),
        200,
    );
    assert_eq!(v1["data"]["version"], 1);
    let v2 = expect(
        api,
        "PUT",
        "secret/data/app/db",
        root,
        json!({"data": {"password": "p2"}, "unknown": null}),
        200,
    );
    assert_eq!(v2["data"]["version"], 2);
    let latest = expect(api, "GET", "secret/data/app/db", root, json!(null), 200);
    assert_eq!(latest["data"]["data"]["password"], "p2");
    assert_eq!(latest["data"]["metadata"]["version"], 2);
    let first = expect(
        api,
        "GET",
        "secret/data/app/db?version=1",
        root,
        json!(null),
        200,
    );
    assert_eq!(first["data"]["data"]["password"], "p1");

    // Check-and-set.
    let conflict = expect(
        api,
        "POST",
        "secret/data/app/db",
        root,
        json!({"data": {"x": 1}, "options": {"cas": 1}}),
        400,
    );
    assert_eq!(
        conflict["errors"][0],
        "check-and-set parameter did not match the current version"
    );
    expect(
        api,
        "POST",
        "secret/data/app/db",
        root,
        json!({"data": {"password": "p3"}, "options": {"cas": 2}}),
        200,
    );

    // Soft delete of the latest, read as Vault answers it, and undelete.
    let (status, _) = call(api, "DELETE", "secret/data/app/db", root, json!(null));
    assert_eq!(status, 204);
    let deleted = expect(api, "GET", "secret/data/app/db", root, json!(null), 404);
    assert!(deleted["data"]["data"].is_null(), "{deleted}");
    assert_ne!(
        deleted["data"]["metadata"]["deletion_time"], "",
        "{deleted}"
    );
    let (status, _) = call(
        api,
        "POST",
        "secret/undelete/app/db",
        root,
        json!({"versions": [3]}),
    );
    assert_eq!(status, 204);
    let back = expect(api, "GET", "secret/data/app/db", root, json!(null), 200);
    assert_eq!(back["data"]["data"]["password"], "p3");

    // Destroy: gone for good.
    let (status, _) = call(
        api,
        "PUT",
        "secret/destroy/app/db",
        root,
        json!({"versions": [1]}),
    );
    assert_eq!(status, 204);
    let destroyed = expect(
        api,
        "GET",
        "secret/data/app/db?version=1",
        root,
        json!(null),
        404,
    );
    assert_eq!(destroyed["data"]["metadata"]["destroyed"], true);

    // Patch merges into the latest version.
    let (status, patched) = call(
        api,
        "PATCH",
        "secret/data/app/db",
        root,
        json!({"data": {"user": "u"}}),
    );
    assert_eq!(status, 200, "{patched}");
    let merged = expect(api, "GET", "secret/data/app/db", root, json!(null), 200);
    assert_eq!(
        merged["data"]["data"],
        json!({"password": "p3", "user": "u"})
    );

    // Metadata and LIST (the LIST method and ?list=true).
    let meta = expect(api, "GET", "secret/metadata/app/db", root, json!(null), 200);
    assert_eq!(meta["data"]["current_version"], 4);
    assert_eq!(meta["data"]["versions"]["1"]["destroyed"], true);
    expect(
        api,
        "POST",
        "secret/data/app/admin",
        root,
        json!({"data": {"k": "admin"}}),
        200,
    );
    let listed = expect(api, "LIST", "secret/metadata/app", root, json!(null), 200);
    assert_eq!(listed["data"]["keys"], json!(["admin", "db"]));
    let listed = expect(
        api,
        "GET",
        "secret/metadata/?list=true",
        root,
        json!(null),
        200,
    );
    assert_eq!(listed["data"]["keys"], json!(["app/"]));

    // Policies with globs and deny, and a token that holds them.
    let policy = r#"
        path "secret/data/app/*" { capabilities = ["read"] }
        path "secret/data/app/admin" { capabilities = ["deny"] }
        path "secret/metadata/app/" { capabilities = ["list"] }
    "#;
    let (status, _) = call(
        api,
        "PUT",
        "sys/policies/acl/app-read",
        root,
        json!({"policy": policy}),
    );
    assert_eq!(status, 204);
    let read_back = expect(
        api,
        "GET",
        "sys/policies/acl/app-read",
        root,
        json!(null),
        200,
    );
    assert_eq!(read_back["data"]["policy"], policy);
    let created = expect(
        api,
        "POST",
        "auth/token/create",
        root,
        json!({"policies": ["app-read"], "ttl": "1h"}),
        200,
    );
    let reader = created["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    assert_eq!(created["auth"]["policies"], json!(["app-read", "default"]));
    expect(api, "GET", "secret/data/app/db", &reader, json!(null), 200);
    let denied = expect(
        api,
        "GET",
        "secret/data/app/admin",
        &reader,
        json!(null),
        403,
    );
    assert_eq!(denied["errors"], json!(["permission denied"]));
    expect(
        api,
        "POST",
        "secret/data/app/db",
        &reader,
        json!({"data": {"x": "y"}}),
        403,
    );
    expect(
        api,
        "LIST",
        "secret/metadata/app",
        &reader,
        json!(null),
        200,
    );
    let me = expect(
        api,
        "GET",
        "auth/token/lookup-self",
        &reader,
        json!(null),
        200,
    );
    assert_eq!(me["data"]["policies"], json!(["app-read", "default"]));

    // Use counts and TTL expiry.
    let twice = expect(
        api,
        "POST",
        "auth/token/create",
        root,
        json!({"policies": ["app-read"], "num_uses": 2}),
        200,
    );
    let twice = twice["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    expect(api, "GET", "secret/data/app/db", &twice, json!(null), 200);
    expect(api, "GET", "secret/data/app/db", &twice, json!(null), 200);
    expect(api, "GET", "secret/data/app/db", &twice, json!(null), 403);
    let short = expect(
        api,
        "POST",
        "auth/token/create",
        root,
        json!({"policies": ["app-read"], "ttl": "2s"}),
        200,
    );
    let short = short["auth"]["client_token"]
        .as_str()
        .expect("token")
        .to_string();
    expect(api, "GET", "secret/data/app/db", &short, json!(null), 200);
    std::thread::sleep(Duration::from_secs(3));
    expect(api, "GET", "secret/data/app/db", &short, json!(null), 403);

    // Revocation, bad tokens, unknown paths, bad bodies.
    let (status, _) = call(
        api,
        "POST",
        "auth/token/revoke",
        root,
        json!({"token": reader}),
    );
    assert_eq!(status, 204);
    expect(api, "GET", "secret/data/app/db", &reader, json!(null), 403);
    expect(
        api,
        "GET",
        "secret/data/app/db",
        "wlk.not-a-token",
        json!(null),
        403,
    );
    let (status, body, _) = vault(api, "GET", "secret/data/app/db", None, None);
    assert_eq!(
        (status, &body["errors"]),
        (403, &json!(["permission denied"]))
    );
    expect(api, "GET", "secret/nothing/x", root, json!(null), 404);
    expect(api, "GET", "nosuchmount/data/x", root, json!(null), 404);
    let (status, body, _) = vault(
        api,
        "POST",
        "secret/data/app/db",
        Some(root),
        Some(b"{not json"),
    );
    assert_eq!(status, 400, "{body}");
    assert_eq!(oversized_status(api, root), 413);

    // Response wrapping: the read comes back as a single-use token that unwraps once.
    let (status, wrapped, _) = vault_with(
        api,
        "GET",
        "secret/data/app/db",
        Some(root),
        None,
        &[("X-Vault-Wrap-TTL", "60s")],
    );
    assert_eq!(status, 200, "{wrapped}");
    assert!(wrapped["data"].is_null(), "{wrapped}");
    let wrapping = wrapped["wrap_info"]["token"]
        .as_str()
        .expect("wrapping token")
        .to_string();
    assert_eq!(wrapped["wrap_info"]["creation_path"], "secret/data/app/db");
    let looked = expect(
        api,
        "POST",
        "sys/wrapping/lookup",
        root,
        json!({"token": wrapping}),
        200,
    );
    assert_eq!(looked["data"]["creation_ttl"], 60);
    let unwrapped = expect(
        api,
        "POST",
        "sys/wrapping/unwrap",
        &wrapping,
        json!(null),
        200,
    );
    assert_eq!(unwrapped["data"]["data"]["password"], "p3", "{unwrapped}");
    let again = expect(
        api,
        "POST",
        "sys/wrapping/unwrap",
        root,
        json!({"token": wrapping}),
        400,
    );
    assert_eq!(
        again["errors"][0],
        "wrapping token is not valid or does not exist"
    );

    // Mounts: a second KV v2 engine, listed, and refused at a reserved path.
    let (status, _) = call(
        api,
        "POST",
        "sys/mounts/team",
        root,
        json!({"type": "kv", "options": {"version": "2"}}),
    );
    assert_eq!(status, 204);
    let mounts = expect(api, "GET", "sys/mounts", root, json!(null), 200);
    assert!(mounts["data"]["team/"].is_object(), "{mounts}");
    expect(
        api,
        "POST",
        "team/data/x",
        root,
        json!({"data": {"a": "b"}}),
        200,
    );
    expect(
        api,
        "POST",
        "sys/mounts/sys",
        root,
        json!({"type": "kv", "options": {"version": "2"}}),
        400,
    );
}

/// Where a version's sealed value is, read with its proof under a certified checkpoint.
fn stored_ref(
    api: &str,
    genesis: &Genesis,
    path: &str,
    version: u64,
) -> welkin_state::secrets::ValueRef {
    let mount = hash_parts(&[b"welkin/secrets/mount-id/v1", b"genesis", b"secret"]);
    let key = welkin_state::keys::kv_value(&mount, path, version);
    let trusted = Trusted::from_dealt_genesis(genesis).expect("dealt");
    let value = Client::new(api)
        .verified_value(&key, &trusted)
        .expect("the value verifies")
        .expect("the value exists")
        .value;
    welkin_state::secrets::records::Value::decode(&value)
        .expect("a stored value")
        .sealed
}

/// The sealed value's bytes as `node` keeps them on disk beside its block archive, found by
/// their digest (the file has a storage header before them).
fn sealed_on_disk(node: &Path, value: &welkin_state::secrets::ValueRef) -> Option<Vec<u8>> {
    let dir = values_dir(node)?;
    for file in std::fs::read_dir(&dir).ok()? {
        let bytes = std::fs::read(file.ok()?.path()).ok()?;
        // The runtime puts a header page before the bytes.
        for start in 0..bytes.len() {
            if welkin_types::Detachable::digest_of(&bytes[start..]) == value.digest {
                return Some(bytes[start..].to_vec());
            }
        }
    }
    None
}

/// The `welkin-values` partition directory somewhere under a node's data directory.
fn values_dir(node: &Path) -> Option<std::path::PathBuf> {
    let mut pending = vec![node.to_path_buf()];
    while let Some(dir) = pending.pop() {
        for entry in std::fs::read_dir(&dir).ok()?.flatten() {
            let path = entry.path();
            if path.is_dir() {
                if path.file_name().is_some_and(|n| n == "welkin-values") {
                    return Some(path);
                }
                pending.push(path);
            }
        }
    }
    None
}

/// The files under `dir` that contain `needle`.
pub(crate) fn files_holding(dir: &Path, needle: &[u8]) -> Vec<String> {
    let mut found = Vec::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                pending.push(path);
            } else if let Ok(bytes) = std::fs::read(&path)
                && bytes.windows(needle.len()).any(|w| w == needle)
            {
                found.push(path.display().to_string());
            }
        }
    }
    found
}

/// With one node's whole data directory and share, or f shares together, a stored value
/// stays closed: the plaintext is on no disk, and fewer than t partials open nothing. With
/// t shares (what a committed, allowed read gathers) it opens.
pub(crate) fn confidentiality(dir: &Path, api: &str, root: &str, genesis: &Genesis) {
    use serde_json::json;
    let marker = "confidential-marker-7f3a9c";
    let written = expect(
        api,
        "POST",
        "secret/data/vault/marker",
        root,
        json!({"data": {"m": marker}}),
        200,
    );
    let version = written["data"]["version"].as_u64().expect("version");
    let value = stored_ref(api, genesis, "vault/marker", version);
    // One node's whole data directory holds the ciphertext (beside its block archive).
    let bytes = sealed_on_disk(&dir.join("node0"), &value).expect("node0 keeps the value");
    let sealed = welkin_types::decode::<welkin_sealed::SealedValue>(&bytes).expect("sealed");
    for node in 0..4 {
        let found = Command::new("grep")
            .args(["-r", "-l", "-a", marker])
            .arg(dir.join(format!("node{node}")))
            .output()
            .expect("grep runs");
        assert!(
            found.stdout.is_empty(),
            "plaintext on node{node}'s disk: {}",
            String::from_utf8_lossy(&found.stdout)
        );
    }
    let shares: Vec<_> = (0..4)
        .map(|i| {
            let key = NodeKey::from_json(
                &std::fs::read_to_string(dir.join(format!("node{i}/node.key"))).expect("key"),
            )
            .expect("node key");
            let sealed: SealedShare = serde_json::from_str(
                &std::fs::read_to_string(dir.join(format!("shares/node{i}.share"))).expect("share"),
            )
            .expect("sealed share");
            open_share(&sealed, &key, &genesis.cluster_id()).expect("share opens")
        })
        .collect();
    let mut opener =
        welkin_sealed::Opener::new(genesis.polynomial.as_ref().expect("dealt"), sealed.target);
    let f = 1;
    for share in shares.iter().take(f) {
        opener
            .add(welkin_sealed::partial(share, &sealed.target))
            .expect("valid partial");
    }
    assert!(!opener.ready());
    assert!(opener.open(&sealed).is_err(), "f shares open nothing");
    for share in shares.iter().skip(f).take(2) {
        opener
            .add(welkin_sealed::partial(share, &sealed.target))
            .expect("valid partial");
    }
    let plaintext = opener.open(&sealed).expect("t shares open the value");
    assert_eq!(
        serde_json::from_slice::<serde_json::Value>(&plaintext).expect("json"),
        json!({"m": marker})
    );
    shredding(dir, api, root, &bytes, version);
}

/// Crypto-shredding: destroying the version destroys its ciphertext on every node, so even
/// t shares (above, they opened it) have nothing left to open.
fn shredding(dir: &Path, api: &str, root: &str, sealed: &[u8], version: u64) {
    use serde_json::json;
    // The AEAD ciphertext and tag: what the shares would need besides themselves.
    let needle = &sealed[sealed.len() - 48..];
    for node in 0..4 {
        assert!(
            values_dir(&dir.join(format!("node{node}")))
                .is_some_and(|values| !files_holding(&values, needle).is_empty()),
            "node{node} keeps the value before it is destroyed"
        );
    }
    expect(
        api,
        "POST",
        "secret/destroy/vault/marker",
        root,
        json!({"versions": [version]}),
        204,
    );
    // Every node shreds as it executes the destroy; marshal's cache of recent blocks lets
    // go of the whole block once consensus has moved a section of views on, so write until
    // it has (each write is a block).
    let deadline = std::time::Instant::now() + Duration::from_secs(120);
    let mut left: Vec<String>;
    let mut writes = 0;
    loop {
        left = (0..4)
            .flat_map(|node| files_holding(&dir.join(format!("node{node}")), needle))
            .collect();
        if left.is_empty() || std::time::Instant::now() >= deadline {
            break;
        }
        for _ in 0..10 {
            writes += 1;
            expect(
                api,
                "POST",
                "secret/data/vault/filler",
                root,
                json!({"data": {"n": writes}}),
                200,
            );
        }
    }
    assert!(
        left.is_empty(),
        "the destroyed ciphertext is still on disk after {writes} more blocks: {left:?}"
    );
    expect(
        api,
        "GET",
        "secret/data/vault/marker",
        root,
        json!(null),
        404,
    );
}

/// hvac, the Python Vault client, installed from PyPI, drives KV v2, tokens and policies
/// unchanged (see `hvac_client.py`).
pub(crate) fn hvac(api: &str, root: &str) {
    let here = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/processes");
    let target = Path::new(env!("CARGO_TARGET_TMPDIR"))
        .parent()
        .expect("target directory")
        .to_path_buf();
    let venv = target.join("hvac-2.4.0");
    if !venv.join("bin/python").exists() {
        let made = Command::new("python3")
            .arg("-m")
            .arg("venv")
            .arg(&venv)
            .status()
            .expect("python3 runs");
        assert!(made.success(), "python3 -m venv failed");
    }
    let installed = Command::new(venv.join("bin/pip"))
        .args([
            "install",
            "--quiet",
            "--disable-pip-version-check",
            "hvac==2.4.0",
            // An independent Ed25519 verifier for transit signatures.
            "pynacl==1.5.0",
        ])
        .output()
        .expect("pip runs");
    assert!(
        installed.status.success(),
        "pip install hvac failed: {}",
        String::from_utf8_lossy(&installed.stderr)
    );
    let run = Command::new(venv.join("bin/python"))
        .arg(here.join("hvac_client.py"))
        .env("VAULT_ADDR", api)
        .env("VAULT_TOKEN", root)
        .output()
        .expect("python runs");
    assert!(
        run.status.success(),
        "hvac against the cluster failed:\n{}\n{}",
        String::from_utf8_lossy(&run.stdout),
        String::from_utf8_lossy(&run.stderr)
    );
}

/// `welkin audit` lists the secrets requests, allowed and refused, each verified against a
/// certified checkpoint.
pub(crate) fn audit(dir: &Path, api: &str) {
    let listed = super::run_ok(
        super::welkin()
            .args([
                "audit",
                "--json",
                "--api",
                api,
                "--path",
                "secret/data/app/",
            ])
            .arg("--genesis")
            .arg(dir.join("genesis.json")),
    );
    let listed: serde_json::Value = serde_json::from_str(&listed).expect("audit --json");
    let entries = listed["entries"].as_array().expect("entries");
    assert!(entries.iter().all(|e| e["verified"] == true), "{listed}");
    assert!(
        entries
            .iter()
            .any(|e| e["operation"] == "read" && e["outcome"] == "applied"),
        "an allowed read is listed: {listed}"
    );
    assert!(
        entries.iter().any(|e| e["path"] == "secret/data/app/admin"
            && e["outcome"] == "rejected"
            && e["detail"] == "403: permission denied"),
        "the denied read is listed: {listed}"
    );
    assert!(
        !listed.to_string().contains("hunter2") && !listed.to_string().contains("\"p3\""),
        "no value appears"
    );
}

/// `welkin login --as NAME`: a KERI identifier logs in with its current keys and gets its
/// role's policies; its rotation voids the token. An unmapped identifier gets nothing.
/// Returns the identifier's prefix (it can log in again with the keystore in `dir`).
pub(crate) fn keri_login(dir: &Path, api: &str, root: &str) -> String {
    use serde_json::json;
    let keystore = dir.join("keystore.json");
    let home = dir.join("keri-home");
    std::fs::create_dir_all(&home).expect("home");
    let with_keys = |command: &mut Command| {
        command
            .args(["--api", api, "--keystore"])
            .arg(&keystore)
            .env("WELKIN_PASSPHRASE", "correct horse battery staple")
            .env("HOME", &home)
            .env("WELKIN_GENESIS", dir.join("genesis.json"));
    };
    let mut incept = super::welkin();
    incept.args(["id", "incept", "--name", "carla", "--json"]);
    with_keys(&mut incept);
    let incepted: serde_json::Value =
        serde_json::from_str(&super::run_ok(&mut incept)).expect("json");
    let prefix = incepted["state"]["prefix"]
        .as_str()
        .expect("prefix")
        .to_string();
    let login = || {
        let mut command = super::welkin();
        command.args(["login", "--as", "carla"]);
        with_keys(&mut command);
        command.output().expect("welkin runs")
    };
    let refused = login();
    assert!(
        !refused.status.success(),
        "an unmapped identifier cannot log in"
    );
    assert!(
        String::from_utf8_lossy(&refused.stderr).contains("auth/keri/role"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );
    let (status, _) = call(
        api,
        "POST",
        &format!("auth/keri/role/{prefix}"),
        root,
        json!({"policies": ["app-read"], "ttl": "1h"}),
    );
    assert_eq!(status, 204);
    let logged = login();
    assert!(
        logged.status.success(),
        "{}",
        String::from_utf8_lossy(&logged.stderr)
    );
    let token = std::fs::read_to_string(home.join(".vault-token")).expect("token saved");
    let token = token.trim();
    let me = expect(
        api,
        "GET",
        "auth/token/lookup-self",
        token,
        json!(null),
        200,
    );
    assert_eq!(me["data"]["meta"]["identifier"], prefix.as_str());
    expect(api, "GET", "secret/data/app/db", token, json!(null), 200);
    expect(
        api,
        "POST",
        "secret/data/app/db",
        token,
        json!({"data": {"x": "y"}}),
        403,
    );
    // Rotate carla: the token made with her old keys stops working.
    let mut rotate = super::welkin();
    rotate.args(["id", "rotate", "--name", "carla"]);
    with_keys(&mut rotate);
    super::run_ok(&mut rotate);
    expect(api, "GET", "secret/data/app/db", token, json!(null), 403);
    let again = login();
    assert!(
        again.status.success(),
        "the new keys log in: {}",
        String::from_utf8_lossy(&again.stderr)
    );
    prefix
}

/// The status a node answers to a write declaring a 2 MiB body, read before any of the body
/// is sent: a client that kept writing the body after the answer would race the node closing
/// the connection (a broken pipe instead of the 413).
fn oversized_status(api: &str, token: &str) -> u16 {
    use std::io::{Read as _, Write as _};
    let address = api.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(address).expect("connects");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout set");
    write!(
        stream,
        "POST /v1/secret/data/app/db HTTP/1.1\r\nHost: {address}\r\nX-Vault-Token: {token}\r\n\
         Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        2 * 1024 * 1024
    )
    .expect("headers sent");
    let mut head = [0u8; 12];
    stream
        .read_exact(&mut head)
        .expect("an answer before the body");
    let line = String::from_utf8_lossy(&head);
    line.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not a status line: {line}"))
}
