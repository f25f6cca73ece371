//! Policy text, HCL or JSON, into a [`Policy`].
//!
//! Both syntaxes are first read into one `Node` tree with the shape of Vault's JSON form
//! (`{"path": {"<pattern>": {"capabilities": [...]}}}`), and one interpreter reads that tree:
//! the two syntaxes cannot drift apart. The tree keeps every entry in source order, duplicates
//! included, because a pattern written twice must merge (as in Vault), never overwrite: a
//! `deny` lost to a later block would be a hole.
//!
//! As in Vault, text whose first non-space character is `{` is JSON; anything else is HCL.

use crate::{
    Capabilities, MAX_RULES, MAX_TEXT_BYTES, PathRule, Policy, PolicyError, check_pattern,
    validate_name,
};
use std::collections::BTreeSet;
use welkin_keri::Json;

/// Keys Vault (or OpenBao) accepts in a path block that this crate does not enforce.
const UNSUPPORTED_KEYS: [&str; 11] = [
    "allowed_parameters",
    "denied_parameters",
    "required_parameters",
    "min_wrapping_ttl",
    "max_wrapping_ttl",
    "mfa_methods",
    "control_group",
    "subscribe_event_types",
    "pagination_limit",
    "expiration",
    "list_scan_response_keys_filter_path",
];

/// Capabilities Vault (or OpenBao) has that this crate does not enforce.
const UNSUPPORTED_CAPABILITIES: [&str; 4] = ["subscribe", "recover", "scan", "root"];

/// A value read from either syntax.
enum Node {
    Str(String),
    List(Vec<Node>),
    /// Entries in source order, duplicates kept.
    Object(Vec<(String, Node)>),
    /// Anything else, named for error messages.
    Other(&'static str),
}

impl Node {
    fn kind(&self) -> &'static str {
        match self {
            Node::Str(_) => "a string",
            Node::List(_) => "a list",
            Node::Object(_) => "an object",
            Node::Other(kind) => kind,
        }
    }
}

/// Parses policy text (HCL or JSON, as Vault accepts both) into the policy `name`.
///
/// The name must pass [`validate_name`]; the text must be non-empty and within
/// [`MAX_TEXT_BYTES`]. Anything the text says that this crate would not enforce is refused
/// with an error naming it.
pub fn parse(name: &str, text: &str) -> Result<Policy, PolicyError> {
    validate_name(name)?;
    if text.is_empty() {
        return Err(PolicyError::EmptyText);
    }
    if text.len() > MAX_TEXT_BYTES {
        return Err(PolicyError::TextTooLarge(text.len()));
    }
    let root = if text.trim_start().starts_with('{') {
        json(text)?
    } else {
        hcl(text)?
    };
    Ok(Policy {
        name: name.to_owned(),
        rules: interpret(root)?,
        text: text.to_owned(),
    })
}

/// Reads HCL into the JSON-shaped tree: `path "p" { ... }` becomes `"path": {"p": {...}}`.
fn hcl(text: &str) -> Result<Node, PolicyError> {
    let body = hcl::parse(text).map_err(|error| {
        // Vault parses HCL 1, whose documented `control_group = { factor "x" { ... } }` is not
        // HCL 2: name the unsupported key rather than the syntax it happens to trip on.
        if let Some((line, key)) = unsupported_key_line(text) {
            return PolicyError::UnsupportedAt { key, line };
        }
        match error {
            hcl::Error::Parse(error) => PolicyError::Hcl {
                line: error.location().line(),
                column: error.location().column(),
                message: error.message().to_owned(),
            },
            other => PolicyError::HclOther(other.to_string()),
        }
    })?;
    hcl_body(body)
}

/// The first line (from 1) that starts with an unsupported key followed by `=` or `{`.
fn unsupported_key_line(text: &str) -> Option<(usize, String)> {
    text.lines().enumerate().find_map(|(index, line)| {
        let line = line.trim_start();
        UNSUPPORTED_KEYS.iter().find_map(|key| {
            let rest = line.strip_prefix(key)?.trim_start();
            (rest.starts_with('=') || rest.starts_with('{')).then(|| (index + 1, key.to_string()))
        })
    })
}

fn hcl_body(body: hcl::Body) -> Result<Node, PolicyError> {
    let mut entries = Vec::with_capacity(body.0.len());
    for structure in body.0 {
        match structure {
            hcl::Structure::Attribute(attribute) => {
                entries.push((attribute.key.to_string(), hcl_expression(attribute.expr)));
            }
            hcl::Structure::Block(block) => {
                let identifier = block.identifier.to_string();
                if identifier == "path" && block.labels.len() != 1 {
                    return Err(PolicyError::PathLabels(block.labels.len()));
                }
                // Labels nest as objects, as in the JSON form; a labelled block other than
                // `path` is refused by its key when interpreted.
                let mut node = hcl_body(block.body)?;
                for label in block.labels.into_iter().rev() {
                    node = Node::Object(vec![(label.into_inner(), node)]);
                }
                entries.push((identifier, node));
            }
        }
    }
    Ok(Node::Object(entries))
}

fn hcl_expression(expression: hcl::Expression) -> Node {
    match expression {
        hcl::Expression::String(value) => Node::Str(value),
        hcl::Expression::Array(items) => {
            Node::List(items.into_iter().map(hcl_expression).collect())
        }
        // An HCL object has already dropped repeated keys, so it can never carry rules: path
        // rules must be blocks.
        hcl::Expression::Object(_) => Node::Other("an hcl object (use a block)"),
        hcl::Expression::Bool(_) => Node::Other("a bool"),
        hcl::Expression::Number(_) => Node::Other("a number"),
        hcl::Expression::Null => Node::Other("null"),
        hcl::Expression::TemplateExpr(_) => Node::Other("a template (${...})"),
        _ => Node::Other("an expression"),
    }
}

/// Reads JSON into the tree, keeping repeated keys (serde_json's own map keeps the last):
/// welkin-keri's [`Json`] keeps every field in document order.
fn json(text: &str) -> Result<Node, PolicyError> {
    let value = serde_json::from_str::<Json>(text).map_err(|error| {
        let message = error.to_string();
        // serde_json appends " at line L column C"; the position is reported separately.
        let message = match message.rfind(" at line ") {
            Some(at) => message[..at].to_owned(),
            None => message,
        };
        PolicyError::Json {
            line: error.line(),
            column: error.column(),
            message,
        }
    })?;
    Ok(json_node(value))
}

fn json_node(value: Json) -> Node {
    match value {
        Json::String(value) => Node::Str(value),
        Json::Array(items) => Node::List(items.into_iter().map(json_node).collect()),
        Json::Object(fields) => Node::Object(
            fields
                .into_iter()
                .map(|(key, value)| (key, json_node(value)))
                .collect(),
        ),
        Json::Bool(_) => Node::Other("a bool"),
        Json::Number(_) => Node::Other("a number"),
        Json::Null => Node::Other("null"),
    }
}

/// Reads the policy from the tree: top-level `path` (and `name`, which Vault ignores in favour
/// of the name in the URL), nothing else.
fn interpret(root: Node) -> Result<Vec<PathRule>, PolicyError> {
    let within = || "the policy".to_owned();
    let Node::Object(entries) = root else {
        return Err(PolicyError::WrongType {
            within: within(),
            key: "the top level".into(),
            expected: "an object",
            found: root.kind(),
        });
    };
    let mut rules = Vec::new();
    let mut named = false;
    for (key, value) in entries {
        match key.as_str() {
            "path" => paths(value, &mut rules)?,
            "name" => {
                if std::mem::replace(&mut named, true) {
                    return Err(PolicyError::DuplicateKey {
                        key,
                        within: within(),
                    });
                }
                if !matches!(value, Node::Str(_)) {
                    return Err(PolicyError::WrongType {
                        within: within(),
                        key,
                        expected: "a string",
                        found: value.kind(),
                    });
                }
            }
            _ => {
                return Err(PolicyError::UnknownKey {
                    key,
                    within: within(),
                });
            }
        }
    }
    Ok(rules)
}

/// Reads a `path` value: an object of pattern to rule, or (JSON) a list of such objects.
fn paths(value: Node, rules: &mut Vec<PathRule>) -> Result<(), PolicyError> {
    match value {
        Node::Object(entries) => {
            for (pattern, body) in entries {
                if rules.len() == MAX_RULES {
                    return Err(PolicyError::TooManyRules(MAX_RULES + 1));
                }
                rules.push(rule(&pattern, body)?);
            }
            Ok(())
        }
        Node::List(items) => items.into_iter().try_for_each(|item| match item {
            Node::Object(_) => paths(item, rules),
            other => Err(path_shape(other.kind())),
        }),
        other => Err(path_shape(other.kind())),
    }
}

fn path_shape(found: &'static str) -> PolicyError {
    PolicyError::WrongType {
        within: "the policy".into(),
        key: "path".into(),
        expected: "a block per path",
        found,
    }
}

/// Reads one rule. Vault strips one leading `/` from the pattern; a `deny` anywhere leaves
/// `deny` alone.
fn rule(written: &str, body: Node) -> Result<PathRule, PolicyError> {
    let pattern = written.strip_prefix('/').unwrap_or(written);
    check_pattern(pattern)?;
    let within = || format!("path {written:?}");
    let Node::Object(entries) = body else {
        return Err(PolicyError::WrongType {
            within: within(),
            key: "the rule".into(),
            expected: "a block",
            found: body.kind(),
        });
    };
    let mut seen = BTreeSet::new();
    let mut capabilities = Capabilities::NONE;
    for (key, value) in entries {
        if !seen.insert(key.clone()) {
            return Err(PolicyError::DuplicateKey {
                key,
                within: within(),
            });
        }
        let wrong = |expected, found| PolicyError::WrongType {
            within: within(),
            key: key.clone(),
            expected,
            found,
        };
        match (key.as_str(), value) {
            ("capabilities", Node::List(items)) => {
                for item in items {
                    let Node::Str(name) = item else {
                        return Err(wrong("a list of strings", item.kind()));
                    };
                    capabilities = capabilities.union(capability(written, name)?);
                }
            }
            ("capabilities", other) => return Err(wrong("a list of strings", other.kind())),
            ("policy", Node::Str(value)) => {
                capabilities = capabilities.union(old_policy(written, value)?);
            }
            ("policy", other) => return Err(wrong("a string", other.kind())),
            // A comment has no effect in Vault either.
            ("comment", Node::Str(_)) => {}
            ("comment", other) => return Err(wrong("a string", other.kind())),
            (unsupported, _) if UNSUPPORTED_KEYS.contains(&unsupported) => {
                return Err(PolicyError::Unsupported {
                    path: written.to_owned(),
                    key,
                });
            }
            _ => {
                return Err(PolicyError::UnknownKey {
                    key,
                    within: within(),
                });
            }
        }
    }
    Ok(PathRule {
        pattern: pattern.to_owned(),
        capabilities: capabilities.normalized(),
    })
}

fn capability(path: &str, name: String) -> Result<Capabilities, PolicyError> {
    if let Some(capability) = Capabilities::from_name(&name) {
        return Ok(capability);
    }
    let path = path.to_owned();
    if UNSUPPORTED_CAPABILITIES.contains(&name.as_str()) {
        return Err(PolicyError::UnsupportedCapability { path, name });
    }
    Err(PolicyError::UnknownCapability { path, name })
}

/// The deprecated `policy = "..."` shorthand, mapped as Vault maps it.
fn old_policy(path: &str, value: String) -> Result<Capabilities, PolicyError> {
    use Capabilities as C;
    let write = C::CREATE
        .union(C::READ)
        .union(C::UPDATE)
        .union(C::DELETE)
        .union(C::LIST);
    match value.as_str() {
        "deny" => Ok(C::DENY),
        "read" => Ok(C::READ.union(C::LIST)),
        "write" => Ok(write),
        "sudo" => Ok(write.union(C::SUDO)),
        _ => Err(PolicyError::UnknownOldPolicy {
            path: path.to_owned(),
            value,
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{MAX_PATTERN_BYTES, PolicyError as E};

    fn rules(text: &str) -> Vec<(String, Vec<&'static str>)> {
        parse("test", text)
            .expect("parses")
            .rules
            .into_iter()
            .map(|rule| (rule.pattern, rule.capabilities.names()))
            .collect()
    }

    fn error(text: &str) -> String {
        parse("test", text).expect_err("refused").to_string()
    }

    const HCL: &str = r#"
# All access on secret/*, except one path.
path "secret/*" {
  capabilities = ["create", "read", "update", "patch", "delete", "list"]
}

path "secret/super-secret" {
  capabilities = ["deny"]
}

path "/sys/+/teamb/*" {
  capabilities = ["read", "sudo"]
  comment = "leading slash is stripped"
}
"#;

    const JSON: &str = r#"{
  "path": {
    "secret/*": {"capabilities": ["create", "read", "update", "patch", "delete", "list"]},
    "secret/super-secret": {"capabilities": ["deny"]},
    "/sys/+/teamb/*": {"capabilities": ["read", "sudo"], "comment": "leading slash is stripped"}
  }
}"#;

    #[test]
    fn hcl_and_json_give_the_same_rules() {
        let hcl = parse("p", HCL).expect("hcl parses");
        let json = parse("p", JSON).expect("json parses");
        assert_eq!(hcl.rules, json.rules);
        assert_eq!(hcl.text, HCL, "the text is kept as submitted");
        assert_eq!(
            rules(HCL),
            [
                (
                    "secret/*".to_owned(),
                    vec!["create", "read", "update", "patch", "delete", "list"]
                ),
                ("secret/super-secret".to_owned(), vec!["deny"]),
                ("sys/+/teamb/*".to_owned(), vec!["read", "sudo"]),
            ]
        );
    }

    #[test]
    fn json_may_list_path_objects_and_repeat_patterns() {
        let text = r#"{"path": [{"a": {"capabilities": ["read"]}},
                                {"a": {"capabilities": ["deny"]}}], "name": "ignored"}"#;
        assert_eq!(
            rules(text),
            [
                ("a".to_owned(), vec!["read"]),
                ("a".to_owned(), vec!["deny"])
            ]
        );
        let text =
            r#"{"path": {"a": {"capabilities": ["read"]}, "a": {"capabilities": ["deny"]}}}"#;
        assert_eq!(
            rules(text).len(),
            2,
            "a repeated key is kept, not overwritten"
        );
    }

    #[test]
    fn deny_leaves_nothing_else() {
        let text = r#"path "a" { capabilities = ["read", "deny", "sudo"] }"#;
        assert_eq!(rules(text), [("a".to_owned(), vec!["deny"])]);
    }

    #[test]
    fn the_old_policy_shorthand_maps_as_vault_maps_it() {
        let cases = [
            ("deny", vec!["deny"]),
            ("read", vec!["read", "list"]),
            ("write", vec!["create", "read", "update", "delete", "list"]),
            (
                "sudo",
                vec!["create", "read", "update", "delete", "list", "sudo"],
            ),
        ];
        for (old, names) in cases {
            let text = format!(r#"path "a" {{ policy = "{old}" }}"#);
            assert_eq!(rules(&text), [("a".to_owned(), names)], "{old}");
        }
        let text = "path \"a\" {\n  policy = \"read\"\n  capabilities = [\"patch\"]\n}";
        assert_eq!(
            rules(text),
            [("a".to_owned(), vec!["read", "patch", "list"])]
        );
        assert_eq!(
            error(r#"path "a" { policy = "admin" }"#),
            r#"path "a": invalid policy "admin""#
        );
    }

    #[test]
    fn unenforced_features_are_refused_by_name() {
        for key in UNSUPPORTED_KEYS {
            let hcl =
                format!("path \"secret/a\" {{\n  capabilities = [\"read\"]\n  {key} = \"1s\"\n}}");
            let expected = format!(
                r#"path "secret/a": {key} is not supported (only capabilities are enforced)"#
            );
            assert_eq!(error(&hcl), expected, "hcl {key}");
            let json = format!(r#"{{"path": {{"secret/a": {{"{key}": []}}}}}}"#);
            assert_eq!(error(&json), expected, "json {key}");
        }
        let text = r#"path "secret/a" {
  capabilities = ["create"]
  allowed_parameters = {
    "bar" = ["zip", "zap"]
  }
}"#;
        assert_eq!(
            parse("t", text),
            Err(E::Unsupported {
                path: "secret/a".into(),
                key: "allowed_parameters".into()
            })
        );
        let block = r#"path "secret/a" {
  capabilities = ["read"]
  control_group = {
    factor "approvers" {
      identity {
        group_names = ["managers"]
        approvals = 1
      }
    }
  }
}"#;
        assert_eq!(
            error(block),
            "control_group is not supported (only capabilities are enforced), at line 3"
        );
        let block = r#"path "secret/a" {
  capabilities = ["read"]
  control_group {
    ttl = "4h"
  }
}"#;
        assert_eq!(
            error(block),
            r#"path "secret/a": control_group is not supported (only capabilities are enforced)"#
        );
        assert_eq!(
            error(r#"path "secret/{{identity.entity.id}}/*" { capabilities = ["read"] }"#),
            r#"path "secret/{{identity.entity.id}}/*": templated policy paths are not supported"#
        );
    }

    #[test]
    fn unknown_capabilities_and_keys_are_refused_by_name() {
        assert_eq!(
            error(r#"path "a" { capabilities = ["read", "write"] }"#),
            r#"path "a": invalid capability "write""#
        );
        assert_eq!(
            error(r#"path "a" { capabilities = ["subscribe"] }"#),
            r#"path "a": capability "subscribe" is not supported"#
        );
        assert_eq!(
            error(r#"path "a" { capabilitys = ["read"] }"#),
            r#"invalid key "capabilitys" in path "a""#
        );
        assert_eq!(
            error(r#"paths "a" { capabilities = ["read"] }"#),
            r#"invalid key "paths" in the policy"#
        );
        assert_eq!(
            error(r#"path "a" { capabilities = "read" }"#),
            r#"path "a": capabilities must be a list of strings, found a string"#
        );
        assert_eq!(
            error(r#"path "a" { capabilities = [read] }"#),
            r#"path "a": capabilities must be a list of strings, found an expression"#
        );
        assert_eq!(
            error(
                r#"path "a" {
  capabilities = ["read"]
  capabilities = ["deny"]
}"#
            ),
            "invalid hcl at line 3, column 3: invalid attribute; expected unique attribute key; \
             found redefined attribute"
        );
        assert_eq!(
            error(r#"{"path": {"a": {"capabilities": ["read"], "capabilities": ["deny"]}}}"#),
            r#"duplicate key "capabilities" in path "a""#
        );
        assert_eq!(
            error(r#"path { capabilities = ["read"] }"#),
            "a path block takes one label, the path; found 0"
        );
        assert_eq!(
            error(r#"path = { "a" = { capabilities = ["deny"] } }"#),
            "the policy: path must be a block per path, found an hcl object (use a block)"
        );
        assert_eq!(
            error(r#"path "a+*" { capabilities = ["read"] }"#),
            r#"path "a+*": invalid use of wildcards ('+*' is forbidden)"#
        );
    }

    #[test]
    fn malformed_text_gives_the_position() {
        let text = "path \"a\" {\n  capabilities = [\"read\"\n}\n";
        match parse("t", text) {
            Err(E::Hcl {
                line,
                column,
                message,
            }) => {
                assert_eq!((line, column), (3, 1), "{message}");
                assert!(!message.is_empty());
            }
            other => panic!("expected an hcl error, got {other:?}"),
        }
        assert!(error(text).starts_with("invalid hcl at line 3, column 1: "));
        match parse("t", "{\"path\": {\"a\": }}") {
            Err(E::Json {
                line,
                column,
                message,
            }) => {
                assert_eq!((line, column), (1, 16));
                assert_eq!(message, "expected value");
            }
            other => panic!("expected a json error, got {other:?}"),
        }
        assert_eq!(
            error("[1]"),
            "invalid hcl at line 1, column 1: unexpected token"
        );
    }

    #[test]
    fn over_limit_text_and_patterns_are_refused_with_the_numbers() {
        assert_eq!(parse("t", ""), Err(E::EmptyText));
        let big = format!("# {}\n", "x".repeat(MAX_TEXT_BYTES));
        assert_eq!(
            error(&big),
            format!(
                "policy text of {} bytes is over the 65536-byte limit",
                big.len()
            )
        );
        let long = "a".repeat(MAX_PATTERN_BYTES + 1);
        assert_eq!(
            error(&format!(r#"path "{long}" {{ capabilities = ["read"] }}"#)),
            "path of 1025 bytes is over the 1024-byte limit"
        );
        let many: String = (0..=MAX_RULES)
            .map(|i| format!("path \"p{i}\" {{}}\n"))
            .collect();
        assert_eq!(
            error(&many),
            "policy has 1025 path rules, over the limit of 1024"
        );
        let enough: String = (0..MAX_RULES)
            .map(|i| format!("path \"p{i}\" {{}}\n"))
            .collect();
        assert_eq!(rules(&enough).len(), MAX_RULES);
        assert_eq!(parse("root", HCL), Err(E::ImmutableName("root".into())));
    }

    #[test]
    fn deeply_nested_input_is_refused_without_overflowing() {
        // As deep as the text limit allows: hcl-edit caps nesting at 64 levels and serde_json
        // at 128, so the tree this crate walks is shallow.
        let depth = MAX_TEXT_BYTES / 2 - 8;
        let hcl = format!("a = {}{}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse("t", &hcl).is_err());
        let json = format!("{{\"a\": {}{}}}", "[".repeat(depth), "]".repeat(depth));
        assert!(parse("t", &json).is_err());
        let levels = MAX_TEXT_BYTES / 6;
        let blocks = format!("{}{}", "a {\n".repeat(levels), "}\n".repeat(levels));
        assert!(blocks.len() <= MAX_TEXT_BYTES);
        assert_eq!(
            error(&blocks),
            "invalid hcl at line 65, column 3: invalid nesting depth; expected at most 64 nested \
             levels"
        );
    }
}
