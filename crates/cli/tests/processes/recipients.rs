//! Values sealed to named KERI identifiers, through the `welkin` binary against the real
//! cluster: keys registered under each identity's current keys, a seal, an offline open by
//! the recipient, a refusal to a non-recipient and to the Vault API, and a re-seal after which
//! the added recipient opens through a logged cluster read.

use serde_json::json;
use std::{path::Path, process::Command};

/// One KERI identity of the test: its keystore name, prefix and home (for its login token).
struct Person {
    name: &'static str,
    prefix: String,
    home: std::path::PathBuf,
}

/// `welkin ARGS` with the test's keystore, the trusted genesis and `env`; returns success,
/// stdout and stderr.
fn run(dir: &Path, api: &str, env: &[(&str, &str)], args: &[&str]) -> (bool, String, String) {
    let mut command: Command = super::welkin();
    command
        .args(args)
        .env("VAULT_ADDR", api)
        .env("WELKIN_KEYSTORE", dir.join("recipients-keystore.json"))
        .env("WELKIN_PASSPHRASE", "correct horse battery staple")
        .env("WELKIN_GENESIS", dir.join("genesis.json"))
        .env_remove("VAULT_TOKEN");
    for (name, value) in env {
        command.env(name, value);
    }
    let output = command.output().expect("welkin runs");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn ok(dir: &Path, api: &str, env: &[(&str, &str)], args: &[&str]) -> String {
    let (success, stdout, stderr) = run(dir, api, env, args);
    assert!(success, "welkin {args:?} failed:\n{stdout}\n{stderr}");
    stdout
}

impl Person {
    fn incept(dir: &Path, api: &str, name: &'static str) -> Person {
        let home = dir.join(format!("home-{name}"));
        std::fs::create_dir_all(&home).expect("home");
        let out = ok(
            dir,
            api,
            &[],
            &["id", "incept", "--api", api, "--name", name, "--json"],
        );
        let incepted: serde_json::Value = serde_json::from_str(&out).expect("json");
        Person {
            name,
            prefix: incepted["state"]["prefix"]
                .as_str()
                .expect("prefix")
                .to_string(),
            home,
        }
    }

    fn env(&self) -> [(&str, &str); 1] {
        [("HOME", self.home.to_str().expect("utf-8 path"))]
    }

    fn run(&self, dir: &Path, api: &str, args: &[&str]) -> (bool, String, String) {
        run(dir, api, &self.env(), args)
    }
}

/// `welkin kv seal --to`, `kv open --as` and `kv reseal` end to end.
pub(crate) fn sealed_to_recipients(dir: &Path, api: &str, root: &str) {
    let rita = Person::incept(dir, api, "rita");
    let nils = Person::incept(dir, api, "nils");
    for person in [&rita, &nils] {
        let out = ok(dir, api, &[], &["kv", "register-key", "--as", person.name]);
        assert!(out.contains("Success! Registered encryption key"), "{out}");
    }
    let as_root = [("VAULT_TOKEN", root)];
    let out = ok(
        dir,
        api,
        &as_root,
        &[
            "kv",
            "seal",
            "--to",
            &rita.prefix,
            "secret/shared/db",
            "password=s3cret",
        ],
    );
    assert!(out.contains(&rita.prefix), "{out}");

    // The recipient opens it offline, with no token at all.
    let opened = ok(
        dir,
        api,
        &rita.env(),
        &["kv", "open", "--as", "rita", "secret/shared/db"],
    );
    assert!(
        opened.contains("opened offline") && opened.contains("s3cret"),
        "{opened}"
    );
    // Someone else cannot, and neither can the Vault API (the serving node would see it).
    let (success, _, stderr) = nils.run(
        dir,
        api,
        &["kv", "open", "--as", "nils", "secret/shared/db"],
    );
    assert!(!success && stderr.contains("not a recipient"), "{stderr}");
    let (status, body) =
        super::secrets::call(api, "GET", "secret/data/shared/db", root, json!(null));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["errors"].to_string().contains("welkin kv open"),
        "{body}"
    );

    // Re-seal to nils: he has no envelope, so he opens through a logged cluster read with a
    // token bound to his identifier.
    ok(
        dir,
        api,
        &as_root,
        &["kv", "reseal", "--to", &nils.prefix, "secret/shared/db"],
    );
    let policy = r#"path "secret/data/shared/*" { capabilities = ["read"] }"#;
    let (status, body) = super::secrets::call(
        api,
        "PUT",
        "sys/policies/acl/shared-read",
        root,
        json!({ "policy": policy }),
    );
    assert_eq!(status, 204, "{body}");
    for person in [&rita, &nils] {
        let (status, body) = super::secrets::call(
            api,
            "POST",
            &format!("auth/keri/role/{}", person.prefix),
            root,
            json!({"policies": ["shared-read"], "ttl": "1h"}),
        );
        assert_eq!(status, 204, "{body}");
        ok(dir, api, &person.env(), &["login", "--as", person.name]);
    }
    let opened = ok(
        dir,
        api,
        &nils.env(),
        &[
            "kv",
            "open",
            "--as",
            "nils",
            "-field=password",
            "secret/shared/db",
        ],
    );
    assert_eq!(opened.trim(), "s3cret");
    let opened = ok(
        dir,
        api,
        &nils.env(),
        &["kv", "open", "--as", "nils", "secret/shared/db"],
    );
    assert!(opened.contains("through the cluster"), "{opened}");
    // Rita was removed: her old envelope still opens (it is in the log; removal cannot take
    // back what she could read), and the CLI says she is no longer a recipient.
    let (success, _, stderr) = rita.run(
        dir,
        api,
        &["kv", "open", "--as", "rita", "secret/shared/db"],
    );
    assert!(
        success && stderr.contains("no longer a recipient"),
        "{stderr}"
    );
}
