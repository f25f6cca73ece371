//! `welkin kv`, `policy`, `token` and `login` against the real cluster: native sealing and
//! opening by the CLI, Vault's argument shapes, `--json` that parses, and refusals that exit
//! non-zero with the reason.

use std::{io::Write as _, path::Path, process::Stdio};

/// Runs `welkin ARGS` against `api` with `token` (and `stdin`); returns success, stdout and
/// stderr.
pub(crate) fn run(
    api: &str,
    token: &str,
    args: &[&str],
    stdin: Option<&str>,
) -> (bool, String, String) {
    let mut command = super::welkin();
    command
        .args(args)
        .env("VAULT_ADDR", api)
        .env("VAULT_TOKEN", token)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = command.spawn().expect("welkin runs");
    let mut input = child.stdin.take().expect("stdin piped");
    if let Some(text) = stdin {
        input.write_all(text.as_bytes()).expect("stdin written");
    }
    drop(input);
    let output = child.wait_with_output().expect("welkin finishes");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

pub(crate) fn ok(api: &str, token: &str, args: &[&str], stdin: Option<&str>) -> String {
    let (success, stdout, stderr) = run(api, token, args, stdin);
    assert!(success, "welkin {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

pub(crate) fn json(text: &str) -> serde_json::Value {
    serde_json::from_str(text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// The CLI's secrets commands, end to end.
pub(crate) fn cli(dir: &Path, api: &str, root: &str) {
    let genesis = dir.join("genesis.json");
    let genesis = genesis.to_str().expect("utf-8 path");
    let g = ["--genesis", genesis];

    // Native put and get: sealed and opened by the CLI.
    let put = ok(
        api,
        root,
        &[
            "kv",
            "put",
            g[0],
            g[1],
            "secret/cli/db",
            "password=hunter2",
            "user=u",
        ],
        None,
    );
    assert!(put.contains("version"), "{put}");
    let field = ok(
        api,
        root,
        &["kv", "get", g[0], g[1], "-field=password", "secret/cli/db"],
        None,
    );
    assert_eq!(field, "hunter2\n");
    let table = ok(api, root, &["kv", "get", g[0], g[1], "secret/cli/db"], None);
    assert!(
        table.contains("Metadata") && table.contains("hunter2"),
        "{table}"
    );

    // Versions, -mount, key=@file, and --json in Vault's shape.
    let file = dir.join("kv-cli-cert.pem");
    std::fs::write(&file, "-----BEGIN CERT-----\n").expect("write");
    let at = format!("cert=@{}", file.display());
    let second = ok(
        api,
        root,
        &[
            "kv",
            "put",
            g[0],
            g[1],
            "--json",
            "-mount=secret",
            "cli/db",
            "password=p2",
            "user=u",
            &at,
        ],
        None,
    );
    assert_eq!(json(&second)["data"]["version"], 2, "{second}");
    let first = ok(
        api,
        root,
        &[
            "kv",
            "get",
            g[0],
            g[1],
            "-version=1",
            "-field=password",
            "secret/cli/db",
        ],
        None,
    );
    assert_eq!(first, "hunter2\n");
    let latest = json(&ok(
        api,
        root,
        &["kv", "get", g[0], g[1], "--json", "secret/cli/db"],
        None,
    ));
    assert_eq!(latest["data"]["data"]["password"], "p2", "{latest}");
    assert_eq!(latest["data"]["data"]["cert"], "-----BEGIN CERT-----\n");
    assert_eq!(latest["data"]["metadata"]["version"], 2);
    assert_eq!(latest["false_partials"], serde_json::json!([]));

    // Patch: a native read, a merge and a checked write; JSON data on stdin.
    ok(
        api,
        root,
        &["kv", "patch", g[0], g[1], "secret/cli/db", "-"],
        Some(r#"{"extra": "1"}"#),
    );
    let patched = json(&ok(
        api,
        root,
        &["kv", "get", g[0], g[1], "--json", "secret/cli/db"],
        None,
    ));
    assert_eq!(patched["data"]["data"]["extra"], "1", "{patched}");
    assert_eq!(patched["data"]["data"]["password"], "p2");
    assert_eq!(patched["data"]["metadata"]["version"], 3);

    // Policies and tokens through the Vault API.
    let policy = "path \"secret/metadata/cli/\" { capabilities = [\"list\"] }\n";
    ok(
        api,
        root,
        &["policy", "write", "cli-list", "-"],
        Some(policy),
    );
    assert_eq!(
        ok(api, root, &["policy", "read", "cli-list"], None),
        format!("{policy}\n")
    );
    assert!(
        ok(api, root, &["policy", "list"], None)
            .lines()
            .any(|l| l == "cli-list")
    );
    let created = json(&ok(
        api,
        root,
        &["token", "create", "-policy=cli-list", "-ttl=1h", "--json"],
        None,
    ));
    let lister = created["auth"]["client_token"]
        .as_str()
        .expect("a token")
        .to_string();
    let looked = json(&ok(
        api,
        root,
        &["token", "lookup", &lister, "--json"],
        None,
    ));
    assert_eq!(
        looked["data"]["policies"],
        serde_json::json!(["cli-list", "default"])
    );

    // The list-only token lists, and its read is refused in the log: non-zero exit, reason.
    let listed = ok(api, &lister, &["kv", "list", "secret/cli"], None);
    assert!(listed.lines().any(|l| l == "db"), "{listed}");
    let (success, _, stderr) = run(
        api,
        &lister,
        &["kv", "get", g[0], g[1], "secret/cli/db"],
        None,
    );
    assert!(!success, "a read-less token read the secret");
    assert!(
        stderr.starts_with("welkin: ") && stderr.contains("403: permission denied"),
        "{stderr}"
    );

    // Bad data is refused before anything is sent.
    let (success, _, stderr) = run(
        api,
        root,
        &["kv", "put", g[0], g[1], "secret/cli/db", "novalue"],
        None,
    );
    assert!(
        !success && stderr.contains("\"novalue\" is not KEY=VALUE"),
        "{stderr}"
    );

    // login saves the token in ~/.vault-token (0600), where later commands find it.
    let home = dir.join("kv-cli-home");
    std::fs::create_dir_all(&home).expect("home");
    let saved = super::welkin()
        .args(["login", root])
        .env("VAULT_ADDR", api)
        .env("HOME", &home)
        .output()
        .expect("welkin runs");
    assert!(
        saved.status.success(),
        "{}",
        String::from_utf8_lossy(&saved.stderr)
    );
    let file = home.join(".vault-token");
    use std::os::unix::fs::PermissionsExt as _;
    let mode = std::fs::metadata(&file)
        .expect("token file")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600);
    let from_file = super::welkin()
        .args(["kv", "get", g[0], g[1], "-field=user", "secret/cli/db"])
        .env("VAULT_ADDR", api)
        .env("HOME", &home)
        .env_remove("VAULT_TOKEN")
        .env_remove("WELKIN_TOKEN")
        .output()
        .expect("welkin runs");
    assert!(
        from_file.status.success(),
        "{}",
        String::from_utf8_lossy(&from_file.stderr)
    );
    assert_eq!(String::from_utf8_lossy(&from_file.stdout), "u\n");
}
