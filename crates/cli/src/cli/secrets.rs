//! Flags of the secrets commands (`kv`, `policy`, `token`, `login`), shaped like Vault's CLI:
//! Vault's single-dash flags (`-field=password`, `-mount=secret`) are accepted as well as
//! `--field`, see [`vault_style`].

use super::TrustArgs;
use clap::{Args, Subcommand};
use std::{ffi::OsString, path::PathBuf};

/// Where to send requests and with which token.
#[derive(Debug, Args)]
pub(crate) struct VaultArgs {
    /// Talk to the node at this URL [default: WELKIN_API, else http://127.0.0.1:8700].
    #[arg(long, env = "VAULT_ADDR", value_name = "URL")]
    pub(crate) api: Option<String>,
    /// Act with this token [default: VAULT_TOKEN, else WELKIN_TOKEN, else ~/.vault-token].
    ///
    /// A token is never sent by the native `kv get`, `kv put` and `kv patch`: they sign their
    /// transaction with the key the token derives.
    #[arg(long, value_name = "TOKEN", hide_env_values = true)]
    pub(crate) token: Option<String>,
    /// Print Vault's JSON response instead of tables.
    #[arg(long)]
    pub(crate) json: bool,
}

/// A secret's location: `MOUNT/PATH`, or `PATH` with `-mount=MOUNT`.
#[derive(Debug, Args)]
pub(crate) struct SecretPath {
    /// The mount the secret lives in; without it, the first segment of the path.
    #[arg(long, value_name = "MOUNT")]
    pub(crate) mount: Option<String>,
    /// The secret, e.g. `secret/app/db` (or `app/db` with -mount=secret).
    pub(crate) path: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KvCommand {
    /// Read a secret: natively, so that no node sees its value.
    ///
    /// The CLI makes a one-time key, submits a read transaction signed with the token's key,
    /// and collects from the nodes (GET /v1/release/{id}) the partials the cluster releases
    /// for it once the read is committed and allowed, each sealed to that key. It checks each
    /// partial, names any member whose partial is false, and opens the value itself.
    Get(KvGetArgs),
    /// Write a new version of a secret, sealed here to the cluster key.
    ///
    /// Data as KEY=VALUE pairs, KEY=@FILE (the file's contents), or `-` for a JSON object on
    /// stdin. The value is encrypted before it leaves this machine: no node sees it.
    Put(KvPutArgs),
    /// Change some keys of the latest version: a native read, a merge, and a native write
    /// that checks-and-sets against the version read.
    Patch(KvPutArgs),
    /// Soft-delete the latest version, or the versions given (undo with `kv undelete`).
    Delete(KvVersionsArgs),
    /// Restore soft-deleted versions.
    Undelete(KvVersionsArgs),
    /// Delete versions for good: their ciphertext leaves the state.
    Destroy(KvVersionsArgs),
    /// List the secrets and folders under a path.
    List(KvPathArgs),
    /// Read or change a secret's metadata (versions, limits, custom metadata).
    #[command(subcommand)]
    Metadata(KvMetadataCommand),
    /// Register an X25519 key of a KERI identity, so that values can be sealed to it.
    ///
    /// The secret key is made here and kept in the identity's keystore entry; the public key
    /// goes to the cluster in a request signed by the identity's current keys (meeting its
    /// threshold). The cluster binds it to the identity's key state: after a rotation it no
    /// longer counts, and values cannot be sealed to the identity until it registers again.
    /// Registering again re-registers the newest key; --new makes another (older keys stay
    /// in the keystore to open what was sealed to them).
    RegisterKey(KvRegisterKeyArgs),
    /// Write a new version sealed to named KERI identifiers as well as to the cluster key.
    ///
    /// The value is sealed here twice: to the cluster key, as `kv put` does, and to each
    /// recipient's registered encryption key, read from certified state. Each recipient opens
    /// the second copy offline with `kv open`; the cluster releases the first only to
    /// recipients, through a logged read. No node sees the value. Needs `create` or `update`
    /// on MOUNT/data/PATH, as a write does.
    Seal(KvSealArgs),
    /// Open a version sealed to recipients, as one of them (a KERI identity in the keystore).
    ///
    /// Offline first: the envelope is read from certified state and opened here with the
    /// identity's X25519 key, with no request. A recipient added after the seal has no
    /// envelope of its own: it opens through a logged threshold read instead, which the cluster
    /// allows only to a token bound to a recipient (`welkin login --as NAME`), with partials
    /// sealed to a one-time key made here.
    Open(KvOpenArgs),
    /// Change who may open a version sealed to recipients through the cluster.
    ///
    /// New recipients need a registered encryption key; they open through a logged threshold
    /// read, so no node sees the value. Removed recipients' reads are refused from then on;
    /// an envelope they could open before stays in the log, so removal cannot take back what
    /// they may have read. Needs `update` on MOUNT/data/PATH.
    Reseal(KvResealArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KvRegisterKeyArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// Register the key of this KERI identity from the keystore.
    #[arg(long = "as", value_name = "NAME")]
    pub(crate) identity: String,
    /// Make a new key instead of registering the newest one again.
    #[arg(long)]
    pub(crate) new: bool,
    #[command(flatten)]
    pub(crate) keystore: crate::cli::KeystoreArgs,
}

/// The identifiers a value is sealed to.
#[derive(Debug, Args)]
pub(crate) struct RecipientsArgs {
    /// Seal to this identifier (a qb64 prefix; repeatable, or comma-separated); for `reseal`,
    /// the whole new list.
    #[arg(
        long = "to",
        value_name = "PREFIX",
        value_delimiter = ',',
        required = true
    )]
    pub(crate) recipients: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KvSealArgs {
    #[command(flatten)]
    pub(crate) to: RecipientsArgs,
    #[command(flatten)]
    pub(crate) put: KvPutArgs,
}

#[derive(Debug, Args)]
pub(crate) struct KvOpenArgs {
    /// Open as this KERI identity from the keystore.
    #[arg(long = "as", value_name = "NAME")]
    pub(crate) identity: String,
    #[command(flatten)]
    pub(crate) keystore: crate::cli::KeystoreArgs,
    #[command(flatten)]
    pub(crate) get: KvGetArgs,
}

#[derive(Debug, Args)]
pub(crate) struct KvResealArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    #[command(flatten)]
    pub(crate) to: RecipientsArgs,
    /// Re-seal this version [default: the latest certified one].
    #[arg(long)]
    pub(crate) version: Option<u64>,
    #[command(flatten)]
    pub(crate) secret: SecretPath,
}

#[derive(Debug, Args)]
pub(crate) struct KvPathArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    #[command(flatten)]
    pub(crate) secret: SecretPath,
}

#[derive(Debug, Args)]
pub(crate) struct KvGetArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// Read this version [default: the latest].
    #[arg(long)]
    pub(crate) version: Option<u64>,
    /// Print only this field's value (a string as it is, anything else as JSON).
    #[arg(long)]
    pub(crate) field: Option<String>,
    #[command(flatten)]
    pub(crate) secret: SecretPath,
}

#[derive(Debug, Args)]
pub(crate) struct KvPutArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    #[command(flatten)]
    pub(crate) trust: TrustArgs,
    /// Write only if the current version is this one (0: only if the secret does not exist).
    #[arg(long)]
    pub(crate) cas: Option<u64>,
    #[command(flatten)]
    pub(crate) secret: SecretPath,
    /// KEY=VALUE, KEY=@FILE, or `-` for a JSON object on stdin.
    #[arg(required = true, value_name = "DATA")]
    pub(crate) data: Vec<String>,
}

#[derive(Debug, Args)]
pub(crate) struct KvVersionsArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    /// The versions, comma-separated [default for `delete`: the latest].
    #[arg(long, value_delimiter = ',')]
    pub(crate) versions: Vec<u64>,
    #[command(flatten)]
    pub(crate) secret: SecretPath,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KvMetadataCommand {
    /// Show a secret's metadata: every version's times and state.
    Get(KvPathArgs),
    /// Set a secret's version limit, check-and-set requirement or custom metadata.
    Put(KvMetadataPutArgs),
    /// Delete a secret: its metadata and every version.
    Delete(KvPathArgs),
}

#[derive(Debug, Args)]
pub(crate) struct KvMetadataPutArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    /// Keep at most this many versions.
    #[arg(long)]
    pub(crate) max_versions: Option<u32>,
    /// Require check-and-set (`-cas`) on every write.
    #[arg(long)]
    pub(crate) cas_required: Option<bool>,
    /// Set custom metadata KEY=VALUE (repeatable; replaces the whole set).
    #[arg(long, value_name = "KEY=VALUE")]
    pub(crate) custom_metadata: Vec<String>,
    #[command(flatten)]
    pub(crate) secret: SecretPath,
}

#[derive(Debug, Subcommand)]
pub(crate) enum PolicyCommand {
    /// Create or replace an ACL policy (HCL or JSON) from a file, or `-` for stdin.
    Write(PolicyWriteArgs),
    /// Print a policy's text.
    Read(PolicyNameArgs),
    /// List the policies.
    List(VaultArgs),
    /// Delete a policy.
    Delete(PolicyNameArgs),
}

#[derive(Debug, Args)]
pub(crate) struct PolicyWriteArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    /// The policy's name.
    pub(crate) name: String,
    /// The file holding the policy, or `-` for stdin.
    pub(crate) file: String,
}

#[derive(Debug, Args)]
pub(crate) struct PolicyNameArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    /// The policy's name.
    pub(crate) name: String,
}

#[derive(Debug, Subcommand)]
pub(crate) enum TokenCommand {
    /// Create a child token of the current one (or an orphan, with -orphan).
    Create(TokenCreateArgs),
    /// Show a token's policies, TTL and uses (the current token without an argument).
    Lookup(TokenArgs),
    /// Renew the current token.
    Renew(TokenRenewArgs),
    /// Revoke a token and the tokens it created (the current token without an argument).
    Revoke(TokenRevokeArgs),
}

#[derive(Debug, Args)]
pub(crate) struct TokenCreateArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    /// Attach this policy (repeatable; `default` is added unless -no-default-policy).
    #[arg(long = "policy", value_name = "NAME")]
    pub(crate) policies: Vec<String>,
    /// Let the token live this long (e.g. 90s, 30m, 1h, 7d) [default: 768h, capped by the
    /// parent's].
    #[arg(long, value_name = "DURATION")]
    pub(crate) ttl: Option<String>,
    /// Let the token be used this many times (0: unlimited).
    #[arg(long, value_name = "N")]
    pub(crate) use_limit: Option<u32>,
    /// Make a token with no parent: revoking the current token does not revoke it.
    #[arg(long)]
    pub(crate) orphan: bool,
    /// Do not attach the `default` policy.
    #[arg(long)]
    pub(crate) no_default_policy: bool,
    /// Name the token (shown by lookup).
    #[arg(long)]
    pub(crate) display_name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TokenArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    /// The token to act on [default: the current token].
    #[arg(value_name = "TOKEN")]
    pub(crate) target: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TokenRenewArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    /// Ask for this much more time (e.g. 1h) [default: the token's TTL].
    #[arg(long, value_name = "DURATION")]
    pub(crate) increment: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TokenRevokeArgs {
    #[command(flatten)]
    pub(crate) token: TokenArgs,
    /// Revoke the token with this accessor instead.
    #[arg(long, conflicts_with = "target")]
    pub(crate) accessor: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct LoginArgs {
    #[command(flatten)]
    pub(crate) vault: VaultArgs,
    /// The token to save in ~/.vault-token (mode 0600), or `-` to read it from stdin.
    #[arg(value_name = "TOKEN", required_unless_present = "identity")]
    pub(crate) new_token: Option<String>,
    /// Log in as this KERI identity from the keystore instead (`auth/keri/login`).
    ///
    /// A new token is made here; its public key goes in a login request signed by the
    /// identity's current keys. The cluster gives it the policies an operator mapped the
    /// identifier to (`auth/keri/role/PREFIX`); a rotation of the identity voids it.
    #[arg(long = "as", value_name = "NAME", conflicts_with = "new_token")]
    pub(crate) identity: Option<String>,
    /// How long the login token should live, e.g. `30m` (at most the role's TTL).
    #[arg(long, value_name = "DURATION", requires = "identity")]
    pub(crate) ttl: Option<String>,
    #[command(flatten)]
    pub(crate) keystore: crate::cli::KeystoreArgs,
}

/// Vault's single-dash long flags, as `--` flags clap knows: for the secrets commands,
/// `-field=password` becomes `--field=password` and `-orphan` `--orphan`. One-letter flags
/// (`-h`) and a lone `-` (stdin) are left alone, and nothing after `--` is touched.
pub(crate) fn vault_style(args: impl IntoIterator<Item = OsString>) -> Vec<OsString> {
    let args: Vec<OsString> = args.into_iter().collect();
    let secrets = args
        .get(1)
        .and_then(|a| a.to_str())
        .is_some_and(|a| matches!(a, "kv" | "policy" | "token" | "login"));
    if !secrets {
        return args;
    }
    let mut done = false;
    args.into_iter()
        .map(|arg| {
            let Some(text) = arg.to_str() else {
                return arg;
            };
            if text == "--" {
                done = true;
            }
            let name = text
                .strip_prefix('-')
                .filter(|rest| !rest.starts_with('-'))
                .map(|rest| rest.split('=').next().unwrap_or_default());
            match name {
                Some(name)
                    if !done
                        && name.len() > 1
                        && name.chars().all(|c| c.is_ascii_lowercase() || c == '-') =>
                {
                    OsString::from(format!("-{text}"))
                }
                _ => arg,
            }
        })
        .collect()
}

/// The file `welkin login` writes and the last place a token is looked for.
pub(crate) fn vault_token_file() -> Option<PathBuf> {
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".vault-token"))
}

#[cfg(test)]
mod tests {
    use super::vault_style;
    use std::ffi::OsString;

    fn run(args: &[&str]) -> Vec<String> {
        vault_style(args.iter().map(OsString::from))
            .into_iter()
            .map(|a| a.into_string().expect("utf-8"))
            .collect()
    }

    #[test]
    fn vault_single_dash_flags_become_long_flags() {
        assert_eq!(
            run(&[
                "welkin",
                "kv",
                "get",
                "-field=password",
                "-version=2",
                "secret/a"
            ]),
            [
                "welkin",
                "kv",
                "get",
                "--field=password",
                "--version=2",
                "secret/a"
            ]
        );
        assert_eq!(
            run(&["welkin", "token", "create", "-orphan", "-policy=p"]),
            ["welkin", "token", "create", "--orphan", "--policy=p"]
        );
    }

    #[test]
    fn short_flags_stdin_values_and_other_commands_are_untouched() {
        assert_eq!(
            run(&["welkin", "kv", "put", "-h", "secret/a", "-", "k=-v"]),
            ["welkin", "kv", "put", "-h", "secret/a", "-", "k=-v"]
        );
        assert_eq!(
            run(&["welkin", "kv", "put", "secret/a", "--", "-odd"]),
            ["welkin", "kv", "put", "secret/a", "--", "-odd"]
        );
        assert_eq!(
            run(&["welkin", "status", "-json"]),
            ["welkin", "status", "-json"]
        );
    }
}
