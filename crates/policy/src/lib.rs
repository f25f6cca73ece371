//! Vault ACL policies: parsed from HCL or JSON, carried in a versioned binary codec, evaluated
//! the same way on every node.
//!
//! Policies live in replicated state, so every node must decide the same way at the same
//! height. The work is split so that the state machine stays pure and small:
//!
//! - [`parse`] turns policy text (HCL or JSON, as Vault accepts both) into a [`Policy`]. It runs
//!   outside consensus, on the API node or in the CLI; a text it refuses never reaches a block.
//! - A [`Policy`] travels in transactions and sits in state in a versioned binary encoding
//!   (`commonware_codec`), bounded by the same limits as the parser; decoding checks them again.
//! - [`Acl`] merges a token's policies as Vault merges them and answers what a path allows,
//!   with Vault's glob rules and priority order. It uses ordered maps only: same policies, same
//!   answers, on every node.
//!
//! # What a policy can say here
//!
//! `path "<pattern>" { capabilities = [...] }` blocks, the deprecated `policy = "read"` shorthand
//! (mapped as Vault maps it), and `comment`. A trailing `*` is a prefix glob; a `+` segment
//! matches exactly one path segment; both may combine (`secret/+/app/*`).
//!
//! Everything else Vault policies can say (`allowed_parameters`, `denied_parameters`,
//! `required_parameters`, `min_wrapping_ttl`, `max_wrapping_ttl`, `mfa_methods`,
//! `control_group`, templated paths, ...) is **refused** with an error naming it, never
//! ignored: ignoring a restriction would grant more than the author wrote.

#![deny(missing_docs)]
#![forbid(unsafe_code)]

mod acl;
mod codec;
mod parse;

pub use acl::Acl;
pub use codec::VERSION;
pub use parse::parse;

/// The largest policy text accepted, in bytes (64 KiB: Vault's own default policy is 2 KiB).
pub const MAX_TEXT_BYTES: usize = 64 * 1024;
/// The most `path` rules one policy may hold (a repeated pattern counts once per block).
pub const MAX_RULES: usize = 1024;
/// The longest path pattern accepted, in bytes.
pub const MAX_PATTERN_BYTES: usize = 1024;
/// The longest policy name accepted, in bytes.
pub const MAX_NAME_BYTES: usize = 128;

/// The names Vault reserves: `root` is built in and every token with it may do anything;
/// `response-wrapping` is Vault's fixed policy for wrapping tokens. Neither can be written.
const IMMUTABLE_NAMES: [&str; 2] = ["root", "response-wrapping"];

/// Capabilities as a bitset, with Vault's names: create, read, update, patch, delete, list,
/// sudo, deny.
///
/// The bit values are part of the encoding (see [`VERSION`]) and never change.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub struct Capabilities(u16);

impl Capabilities {
    /// `create`: write data where none is (POST/PUT).
    pub const CREATE: Capabilities = Capabilities(1 << 0);
    /// `read`: read the data at a path (GET).
    pub const READ: Capabilities = Capabilities(1 << 1);
    /// `update`: change the data at a path (POST/PUT).
    pub const UPDATE: Capabilities = Capabilities(1 << 2);
    /// `patch`: change part of the data at a path (PATCH).
    pub const PATCH: Capabilities = Capabilities(1 << 3);
    /// `delete`: delete the data at a path (DELETE).
    pub const DELETE: Capabilities = Capabilities(1 << 4);
    /// `list`: list the keys under a path (LIST).
    pub const LIST: Capabilities = Capabilities(1 << 5);
    /// `sudo`: use root-protected paths (in addition to the operation's own capability).
    pub const SUDO: Capabilities = Capabilities(1 << 6);
    /// `deny`: nothing is allowed; it wins over every other capability, `sudo` included.
    pub const DENY: Capabilities = Capabilities(1 << 7);
    /// No capability at all.
    pub const NONE: Capabilities = Capabilities(0);
    /// Every capability that grants something (what the `root` policy has everywhere).
    pub const ALL: Capabilities = Capabilities(0x7f);

    /// The capabilities in Vault's documented order, with their names.
    const NAMED: [(Capabilities, &'static str); 8] = [
        (Self::CREATE, "create"),
        (Self::READ, "read"),
        (Self::UPDATE, "update"),
        (Self::PATCH, "patch"),
        (Self::DELETE, "delete"),
        (Self::LIST, "list"),
        (Self::SUDO, "sudo"),
        (Self::DENY, "deny"),
    ];

    /// Whether every capability in `other` is in `self`.
    pub fn contains(self, other: Capabilities) -> bool {
        self.0 & other.0 == other.0
    }

    /// The capabilities in either set (a plain union: see [`Acl`] for how `deny` merges).
    pub fn union(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 | other.0)
    }

    /// The capabilities in `self` and not in `other`.
    pub fn difference(self, other: Capabilities) -> Capabilities {
        Capabilities(self.0 & !other.0)
    }

    /// Whether the set is empty.
    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    /// The names, in Vault's order (`create`, `read`, `update`, `patch`, `delete`, `list`,
    /// `sudo`); `["deny"]` alone when `deny` is in the set.
    pub fn names(self) -> Vec<&'static str> {
        if self.contains(Self::DENY) {
            return vec!["deny"];
        }
        Self::NAMED
            .iter()
            .filter(|(capability, _)| self.contains(*capability))
            .map(|(_, name)| *name)
            .collect()
    }

    /// The capability with Vault's name `name` (`"read"`, ...), if there is one.
    pub fn from_name(name: &str) -> Option<Capabilities> {
        Self::NAMED
            .iter()
            .find(|(_, known)| *known == name)
            .map(|(capability, _)| *capability)
    }

    /// The bits, as encoded.
    pub fn bits(self) -> u16 {
        self.0
    }

    /// The set with these bits, if it is one a rule can hold: only known bits, and `deny`
    /// alone when present (a rule that denies grants nothing else).
    pub fn from_bits(bits: u16) -> Option<Capabilities> {
        let capabilities = Capabilities(bits);
        let known = Self::ALL.union(Self::DENY);
        let valid = known.contains(capabilities)
            && (!capabilities.contains(Self::DENY) || capabilities == Self::DENY);
        valid.then_some(capabilities)
    }

    /// `deny` alone if `deny` is in the set, the set itself otherwise: what a rule keeps.
    fn normalized(self) -> Capabilities {
        if self.contains(Self::DENY) {
            Self::DENY
        } else {
            self
        }
    }
}

/// One `path "<pattern>" { capabilities = [...] }` block.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathRule {
    /// The pattern as written, less one leading `/` (Vault strips it: request paths start after
    /// `/v1/`). A trailing `*` is a prefix glob; a `+` segment matches any one segment.
    pub pattern: String,
    /// What the rule grants; `deny` alone if the rule denies.
    pub capabilities: Capabilities,
}

/// A named policy: its rules, and the text it was parsed from (Vault returns the text on read).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Policy {
    /// The policy's name (see [`validate_name`]).
    pub name: String,
    /// The `path` blocks, in the order written; repeated patterns are merged by [`Acl`].
    pub rules: Vec<PathRule>,
    /// The text as submitted, returned unchanged by reads.
    pub text: String,
}

impl Policy {
    /// Checks that the rules are what the text says, by parsing the text again.
    ///
    /// Decoding checks every part of a policy but not that the rules match the text: the rules
    /// are what is enforced, the text is what reads return. A policy built by [`parse`] always
    /// matches; one that arrives encoded from a client may not, and a reader of its text would
    /// be misled. Parsing is deterministic (no hash maps, pinned parser versions), so every
    /// node may call this and reach the same answer.
    pub fn check_text(&self) -> Result<(), PolicyError> {
        if parse(&self.name, &self.text)?.rules == self.rules {
            Ok(())
        } else {
            Err(PolicyError::TextMismatch(self.name.clone()))
        }
    }
}

/// Why a policy, or its name, was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum PolicyError {
    /// The policy text is empty.
    #[error("policy text is empty")]
    EmptyText,
    /// The policy text is over [`MAX_TEXT_BYTES`].
    #[error("policy text of {0} bytes is over the {MAX_TEXT_BYTES}-byte limit")]
    TextTooLarge(usize),
    /// The policy has more than [`MAX_RULES`] `path` blocks.
    #[error("policy has {0} path rules, over the limit of {MAX_RULES}")]
    TooManyRules(usize),
    /// A pattern is over [`MAX_PATTERN_BYTES`].
    #[error("path of {0} bytes is over the {MAX_PATTERN_BYTES}-byte limit")]
    PatternTooLong(usize),
    /// The policy name is empty.
    #[error("policy name is empty")]
    EmptyName,
    /// The policy name is over [`MAX_NAME_BYTES`].
    #[error("policy name of {0} bytes is over the {MAX_NAME_BYTES}-byte limit")]
    NameTooLong(usize),
    /// The name is not in the form Vault stores (trimmed, lowercase): see [`normalize_name`].
    #[error("policy name {0:?} must be lowercase, without surrounding spaces")]
    NameNotNormalized(String),
    /// The name holds a control character.
    #[error("policy name {0:?} contains a control character")]
    NameControlCharacter(String),
    /// The name is one Vault reserves (`root`, `response-wrapping`).
    #[error("cannot update {0:?} policy")]
    ImmutableName(String),
    /// The policy cannot be deleted (`default`, and the immutable ones).
    #[error("cannot delete {0:?} policy")]
    Undeletable(String),
    /// The HCL text does not parse.
    #[error("invalid hcl at line {line}, column {column}: {message}")]
    Hcl {
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// The HCL text does not parse, and the parser gave no position.
    #[error("invalid hcl: {0}")]
    HclOther(String),
    /// The JSON text does not parse.
    #[error("invalid json at line {line}, column {column}: {message}")]
    Json {
        /// The line of the error, from 1.
        line: usize,
        /// The column of the error, from 1.
        column: usize,
        /// What the parser expected.
        message: String,
    },
    /// A key this crate does not know (Vault refuses unknown keys too).
    #[error("invalid key {key:?} in {within}")]
    UnknownKey {
        /// The key.
        key: String,
        /// Where it was (`the policy`, or `path "..."`).
        within: String,
    },
    /// A key Vault knows but this crate does not enforce: refused rather than ignored.
    #[error("path {path:?}: {key} is not supported (only capabilities are enforced)")]
    Unsupported {
        /// The path block it was in.
        path: String,
        /// The key.
        key: String,
    },
    /// A key Vault knows but this crate does not enforce, found in text that is not HCL 2
    /// (Vault parses HCL 1, which allows blocks inside objects).
    #[error("{key} is not supported (only capabilities are enforced), at line {line}")]
    UnsupportedAt {
        /// The key.
        key: String,
        /// Its line, from 1.
        line: usize,
    },
    /// A key given twice in one block.
    #[error("duplicate key {key:?} in {within}")]
    DuplicateKey {
        /// The key.
        key: String,
        /// Where it was.
        within: String,
    },
    /// A value of the wrong shape.
    #[error("{within}: {key} must be {expected}, found {found}")]
    WrongType {
        /// Where it was.
        within: String,
        /// The key.
        key: String,
        /// What was expected.
        expected: &'static str,
        /// What was found.
        found: &'static str,
    },
    /// A `path` block without exactly one label.
    #[error("a path block takes one label, the path; found {0}")]
    PathLabels(usize),
    /// A capability Vault does not have.
    #[error("path {path:?}: invalid capability {name:?}")]
    UnknownCapability {
        /// The path block it was in.
        path: String,
        /// The capability as written.
        name: String,
    },
    /// A capability Vault or OpenBao has but this crate does not enforce.
    #[error("path {path:?}: capability {name:?} is not supported")]
    UnsupportedCapability {
        /// The path block it was in.
        path: String,
        /// The capability as written.
        name: String,
    },
    /// A deprecated `policy = "..."` value other than read, write, deny or sudo.
    #[error("path {path:?}: invalid policy {value:?}")]
    UnknownOldPolicy {
        /// The path block it was in.
        path: String,
        /// The value as written.
        value: String,
    },
    /// `+*` in a pattern (Vault forbids it).
    #[error("path {0:?}: invalid use of wildcards ('+*' is forbidden)")]
    PlusStar(String),
    /// A templated path (`{{identity.entity.id}}`): not supported, and refused rather than
    /// matched literally.
    #[error("path {0:?}: templated policy paths are not supported")]
    Templated(String),
    /// A policy whose rules are not what its text says (see [`Policy::check_text`]).
    #[error("the rules of policy {0:?} do not match its text")]
    TextMismatch(String),
    /// Encoded capability bits that no rule can hold.
    #[error("invalid capability bits {0:#06x}")]
    CapabilityBits(u16),
}

/// The form Vault stores a policy name in: surrounding spaces trimmed, lowercase.
pub fn normalize_name(name: &str) -> String {
    name.trim().to_lowercase()
}

/// Checks a policy name that is about to be written: non-empty, within [`MAX_NAME_BYTES`],
/// already normalized (see [`normalize_name`]), without control characters, and not one
/// Vault reserves (`root`, `response-wrapping`). `default` may be written, as in Vault.
pub fn validate_name(name: &str) -> Result<(), PolicyError> {
    if name.is_empty() {
        return Err(PolicyError::EmptyName);
    }
    if name.len() > MAX_NAME_BYTES {
        return Err(PolicyError::NameTooLong(name.len()));
    }
    if normalize_name(name) != name {
        return Err(PolicyError::NameNotNormalized(name.to_owned()));
    }
    if name.chars().any(char::is_control) {
        return Err(PolicyError::NameControlCharacter(name.to_owned()));
    }
    if IMMUTABLE_NAMES.contains(&name) {
        return Err(PolicyError::ImmutableName(name.to_owned()));
    }
    Ok(())
}

/// Checks that a policy may be deleted: Vault refuses to delete `default` and the immutable
/// policies.
pub fn validate_delete(name: &str) -> Result<(), PolicyError> {
    if name == "default" || IMMUTABLE_NAMES.contains(&name) {
        return Err(PolicyError::Undeletable(name.to_owned()));
    }
    Ok(())
}

/// The text of the built-in `default` policy: the paths of Vault's `default` policy that mean
/// something here, with Vault's capabilities. Vault's other entries (cubbyhole, leases, tools,
/// identity lookups by template) have no counterpart in Welkin.
pub const DEFAULT_POLICY_TEXT: &str = r#"# A token may look itself up, renew itself and revoke itself.
path "auth/token/lookup-self" {
    capabilities = ["read"]
}

path "auth/token/renew-self" {
    capabilities = ["update"]
}

path "auth/token/revoke-self" {
    capabilities = ["update"]
}

# A token may ask what it can do on a path.
path "sys/capabilities-self" {
    capabilities = ["update"]
}

# A token may wrap a value, look up a wrapping token, and unwrap one it holds.
path "sys/wrapping/wrap" {
    capabilities = ["update"]
}

path "sys/wrapping/lookup" {
    capabilities = ["update"]
}

path "sys/wrapping/unwrap" {
    capabilities = ["update"]
}
"#;

/// Vault's built-in `default` policy, as far as it means something here (see
/// [`DEFAULT_POLICY_TEXT`]). Vault attaches it to every token unless told not to; it may be
/// rewritten but not deleted.
pub fn default_policy() -> Policy {
    parse("default", DEFAULT_POLICY_TEXT).expect("the built-in default policy parses")
}

/// Checks a pattern as both the parser and the decoder must: within the length limit, no `+*`
/// (Vault forbids it), no `{{...}}` template (not supported, so refused).
fn check_pattern(pattern: &str) -> Result<(), PolicyError> {
    if pattern.len() > MAX_PATTERN_BYTES {
        return Err(PolicyError::PatternTooLong(pattern.len()));
    }
    if pattern.contains("+*") {
        return Err(PolicyError::PlusStar(pattern.to_owned()));
    }
    if pattern.contains("{{") {
        return Err(PolicyError::Templated(pattern.to_owned()));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_follow_vaults_order_and_deny_stands_alone() {
        let all = Capabilities::ALL;
        assert_eq!(
            all.names(),
            [
                "create", "read", "update", "patch", "delete", "list", "sudo"
            ]
        );
        assert_eq!(all.union(Capabilities::DENY).names(), ["deny"]);
        assert_eq!(Capabilities::NONE.names(), Vec::<&str>::new());
        for name in [
            "create", "read", "update", "patch", "delete", "list", "sudo", "deny",
        ] {
            let capability = Capabilities::from_name(name).expect("known");
            assert_eq!(capability.names(), [name]);
        }
        assert_eq!(Capabilities::from_name("root"), None);
        assert_eq!(Capabilities::from_name("READ"), None);
    }

    #[test]
    fn bits_hold_only_what_a_rule_can() {
        assert_eq!(Capabilities::from_bits(0x7f), Some(Capabilities::ALL));
        assert_eq!(Capabilities::from_bits(0x80), Some(Capabilities::DENY));
        assert_eq!(Capabilities::from_bits(0), Some(Capabilities::NONE));
        assert_eq!(Capabilities::from_bits(0x81), None, "deny with read");
        assert_eq!(Capabilities::from_bits(0x100), None, "unknown bit");
    }

    #[test]
    fn names_follow_vaults_rules() {
        assert_eq!(validate_name("dev-readonly"), Ok(()));
        assert_eq!(validate_name("default"), Ok(()));
        assert_eq!(validate_name("team/app"), Ok(()), "vault allows slashes");
        assert_eq!(
            validate_name("root").expect_err("refused").to_string(),
            r#"cannot update "root" policy"#
        );
        assert_eq!(
            validate_name("response-wrapping"),
            Err(PolicyError::ImmutableName("response-wrapping".into()))
        );
        assert_eq!(validate_name(""), Err(PolicyError::EmptyName));
        assert_eq!(
            validate_name("Admin"),
            Err(PolicyError::NameNotNormalized("Admin".into()))
        );
        assert_eq!(normalize_name(" Admin "), "admin");
        assert_eq!(
            validate_name("a\nb"),
            Err(PolicyError::NameControlCharacter("a\nb".into()))
        );
        let long = "a".repeat(MAX_NAME_BYTES + 1);
        assert_eq!(
            validate_name(&long).expect_err("refused").to_string(),
            "policy name of 129 bytes is over the 128-byte limit"
        );
        assert_eq!(validate_name(&long[1..]), Ok(()));
        assert_eq!(
            validate_delete("default").expect_err("refused").to_string(),
            r#"cannot delete "default" policy"#
        );
        assert!(validate_delete("root").is_err());
        assert_eq!(validate_delete("dev"), Ok(()));
    }

    #[test]
    fn rules_that_differ_from_the_text_are_caught() {
        let mut policy =
            parse("dev", r#"path "secret/*" { capabilities = ["deny"] }"#).expect("parses");
        assert_eq!(policy.check_text(), Ok(()));
        policy.rules[0].capabilities = Capabilities::READ;
        assert_eq!(
            policy.check_text().expect_err("refused").to_string(),
            r#"the rules of policy "dev" do not match its text"#
        );
        policy.rules.clear();
        assert!(policy.check_text().is_err());
    }

    #[test]
    fn the_default_policy_grants_what_vaults_does() {
        let policy = default_policy();
        assert_eq!(policy.name, "default");
        let acl = Acl::new([&policy]);
        let update = Capabilities::UPDATE;
        assert_eq!(
            acl.capabilities("auth/token/lookup-self"),
            Capabilities::READ
        );
        for path in [
            "auth/token/renew-self",
            "auth/token/revoke-self",
            "sys/capabilities-self",
            "sys/wrapping/wrap",
            "sys/wrapping/lookup",
            "sys/wrapping/unwrap",
        ] {
            assert_eq!(acl.capabilities(path), update, "{path}");
        }
        assert_eq!(policy.rules.len(), 7);
        assert!(!acl.allows("secret/data/x", Capabilities::READ));
        assert!(!acl.allows("sys/wrapping/rewrap", update));
        assert!(!acl.allows("auth/token/create", update));
    }
}
