//! A token's policies merged into one access list, evaluated as Vault evaluates it.
//!
//! Rules fall into three kinds, by pattern (Vault's `vault/acl.go`):
//! - **exact**: no glob; it governs its path alone, ahead of every other kind;
//! - **prefix**: a trailing `*` and no `+` segment; the longest matching prefix is the
//!   candidate of this kind;
//! - **segment**: a `+` segment (the pattern is `+`, starts with `+/` or contains `/+`), maybe
//!   with a trailing `*`; `+` matches exactly one segment (an empty one included).
//!
//! When no exact rule names the path, the prefix candidate and every matching segment rule
//! compete, and the highest priority alone decides. P1 is lower than P2 when, in order:
//! 1. P1's first wildcard (`+`) or glob (`*`) comes earlier;
//! 2. P1 ends in `*` and P2 does not;
//! 3. P1 has more `+` segments;
//! 4. P1 is shorter;
//! 5. P1 is smaller lexicographically.
//!
//! Rules with the same pattern, from one policy or several, are merged first: their
//! capabilities are united, and a `deny` in any of them leaves `deny` alone.

use crate::{Capabilities, Policy};
use std::{cmp::Reverse, collections::BTreeMap};

/// A token's policies, merged: what each path allows.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Acl {
    /// The `root` policy: everything is allowed, `sudo` included.
    root: bool,
    /// Rules without globs, by path.
    exact: BTreeMap<String, Capabilities>,
    /// Rules ending in `*` (no `+`), by the prefix without the `*`.
    prefix: BTreeMap<String, Capabilities>,
    /// Rules with `+` segments, in pattern order.
    segment: Vec<SegmentRule>,
}

/// A rule with `+` segments, split once when the list is built.
#[derive(Clone, Debug, PartialEq, Eq)]
struct SegmentRule {
    /// The pattern without its trailing `*`, if any.
    path: String,
    /// `path` split at `/`.
    parts: Vec<String>,
    /// Whether the pattern ended in `*` (the last part is then a prefix of the segment, and
    /// more segments may follow).
    is_prefix: bool,
    /// The byte position of the first `+` (Vault's first wildcard position).
    first_wildcard: usize,
    /// How many parts are exactly `+`.
    wildcards: usize,
    capabilities: Capabilities,
}

/// A rule that matched a path, with what orders it (Vault's `wcPathDescr`).
struct Candidate<'a> {
    first_wildcard: usize,
    is_prefix: bool,
    wildcards: usize,
    path: &'a str,
    capabilities: Capabilities,
}

impl Candidate<'_> {
    /// A key that grows with priority (see the module docs for the order).
    fn priority(&self) -> (usize, bool, Reverse<usize>, usize, &str) {
        (
            self.first_wildcard,
            !self.is_prefix,
            Reverse(self.wildcards),
            self.path.len(),
            self.path,
        )
    }
}

/// Merges `added` into what a pattern already has: `deny` on either side leaves `deny` alone.
fn merge(existing: Capabilities, added: Capabilities) -> Capabilities {
    if existing.contains(Capabilities::DENY) || added.contains(Capabilities::DENY) {
        Capabilities::DENY
    } else {
        existing.union(added)
    }
}

/// Whether a pattern has `+` segments, by Vault's test.
fn has_segment_wildcards(pattern: &str) -> bool {
    pattern == "+" || pattern.contains("/+") || pattern.starts_with("+/")
}

/// Adds `capabilities` to `pattern`'s entry in `map`, merging as Vault merges.
fn insert(map: &mut BTreeMap<String, Capabilities>, pattern: &str, capabilities: Capabilities) {
    let entry = map.entry(pattern.to_owned()).or_default();
    *entry = merge(*entry, capabilities);
}

impl Acl {
    /// Merges `policies` as Vault merges a token's policies. A policy's name plays no part:
    /// the `root` policy is [`Acl::root`] only.
    pub fn new<'a>(policies: impl IntoIterator<Item = &'a Policy>) -> Acl {
        let mut acl = Acl::default();
        let mut segment = BTreeMap::new();
        for rule in policies.into_iter().flat_map(|policy| &policy.rules) {
            let pattern = rule.pattern.as_str();
            if has_segment_wildcards(pattern) {
                insert(&mut segment, pattern, rule.capabilities);
            } else if let Some(prefix) = pattern.strip_suffix('*') {
                insert(&mut acl.prefix, prefix, rule.capabilities);
            } else {
                insert(&mut acl.exact, pattern, rule.capabilities);
            }
        }
        acl.segment = segment
            .into_iter()
            .map(|(pattern, capabilities)| {
                let (path, is_prefix) = match pattern.strip_suffix('*') {
                    Some(path) => (path.to_owned(), true),
                    None => (pattern.clone(), false),
                };
                let parts: Vec<String> = path.split('/').map(str::to_owned).collect();
                SegmentRule {
                    first_wildcard: pattern.find('+').expect("a segment pattern holds a +"),
                    wildcards: parts.iter().filter(|part| *part == "+").count(),
                    path,
                    parts,
                    is_prefix,
                    capabilities,
                }
            })
            .collect();
        acl
    }

    /// The `root` policy: everything is allowed everywhere, `sudo` included.
    pub fn root() -> Acl {
        Acl {
            root: true,
            ..Acl::default()
        }
    }

    /// Whether this is the `root` policy.
    pub fn is_root(&self) -> bool {
        self.root
    }

    /// The capabilities of the rule that governs `path` for any operation but LIST: `NONE` if
    /// no rule matches, `DENY` alone if the rule denies, [`Capabilities::ALL`] under root.
    pub fn capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities::ALL;
        }
        let path = path.trim_start_matches('/');
        self.exact
            .get(path)
            .copied()
            .or_else(|| self.non_exact(path))
            .unwrap_or_default()
    }

    /// The capabilities of the rule that governs `path` for a LIST operation. Vault looks a
    /// listed path up without its trailing `/` as well: an exact rule for `path` or for `path`
    /// less its `/`, then (when `path` ends in `/`) a glob for the trimmed path, then a glob for
    /// `path`.
    pub fn list_capabilities(&self, path: &str) -> Capabilities {
        if self.root {
            return Capabilities::ALL;
        }
        let path = path.trim_start_matches('/');
        let trimmed = path.strip_suffix('/');
        self.exact
            .get(path)
            .or_else(|| self.exact.get(trimmed.unwrap_or(path)))
            .copied()
            .or_else(|| trimmed.and_then(|trimmed| self.non_exact(trimmed)))
            .or_else(|| self.non_exact(path))
            .unwrap_or_default()
    }

    /// Whether every capability in `needed` is allowed on `path`: false if the governing rule
    /// denies, or lacks any of them. `LIST` is checked as a LIST operation (see
    /// [`Acl::list_capabilities`]), the others as theirs. Asking for nothing, or for `DENY`,
    /// is answered false (fail closed). Under root, everything else is true.
    pub fn allows(&self, path: &str, needed: Capabilities) -> bool {
        if needed.is_empty() || needed.contains(Capabilities::DENY) {
            return false;
        }
        if self.root {
            return true;
        }
        let grants = |capabilities: Capabilities, wanted: Capabilities| {
            !capabilities.contains(Capabilities::DENY) && capabilities.contains(wanted)
        };
        let others = needed.difference(Capabilities::LIST);
        (others.is_empty() || grants(self.capabilities(path), others))
            && (!needed.contains(Capabilities::LIST)
                || grants(self.list_capabilities(path), Capabilities::LIST))
    }

    /// What Vault's `sys/capabilities-self` answers for `path`: `["root"]` under root,
    /// `["deny"]` when the governing rule denies or grants nothing, else the names in Vault's
    /// response order (sudo, read, list, update, delete, create, patch). Vault resolves the
    /// path as a LIST operation here.
    pub fn capability_names(&self, path: &str) -> Vec<&'static str> {
        if self.root {
            return vec!["root"];
        }
        let capabilities = self.list_capabilities(path);
        if capabilities.contains(Capabilities::DENY) || capabilities.is_empty() {
            return vec!["deny"];
        }
        use Capabilities as C;
        [
            (C::SUDO, "sudo"),
            (C::READ, "read"),
            (C::LIST, "list"),
            (C::UPDATE, "update"),
            (C::DELETE, "delete"),
            (C::CREATE, "create"),
            (C::PATCH, "patch"),
        ]
        .into_iter()
        .filter(|(capability, _)| capabilities.contains(*capability))
        .map(|(_, name)| name)
        .collect()
    }

    /// The highest-priority prefix or segment rule matching `path`, if any.
    fn non_exact(&self, path: &str) -> Option<Capabilities> {
        // The longest matching prefix; a prefix ends on a character boundary of `path` because
        // both are UTF-8.
        let prefix = (0..=path.len())
            .rev()
            .filter(|end| path.is_char_boundary(*end))
            .find_map(|end| {
                let prefix = &path[..end];
                self.prefix.get(prefix).map(|capabilities| Candidate {
                    first_wildcard: prefix.len(),
                    is_prefix: true,
                    wildcards: 0,
                    path: prefix,
                    capabilities: *capabilities,
                })
            });
        if self.segment.is_empty() {
            return prefix.map(|candidate| candidate.capabilities);
        }
        let parts: Vec<&str> = path.split('/').collect();
        prefix
            .into_iter()
            .chain(self.segment.iter().filter_map(|rule| {
                rule.matches(&parts).then_some(Candidate {
                    first_wildcard: rule.first_wildcard,
                    is_prefix: rule.is_prefix,
                    wildcards: rule.wildcards,
                    path: &rule.path,
                    capabilities: rule.capabilities,
                })
            }))
            .max_by(|a, b| a.priority().cmp(&b.priority()))
            .map(|candidate| candidate.capabilities)
    }
}

impl SegmentRule {
    /// Whether the rule matches a path split at `/`.
    fn matches(&self, parts: &[&str]) -> bool {
        if parts.len() < self.parts.len() || (!self.is_prefix && parts.len() != self.parts.len()) {
            return false;
        }
        let last = self.parts.len() - 1;
        self.parts
            .iter()
            .zip(parts)
            .enumerate()
            .all(|(i, (rule, part))| {
                rule == "+"
                    || rule == part
                    || (self.is_prefix && i == last && part.starts_with(rule.as_str()))
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::parse;
    use Capabilities as C;

    fn acl(texts: &[&str]) -> Acl {
        let policies: Vec<Policy> = texts
            .iter()
            .enumerate()
            .map(|(i, text)| parse(&format!("p{i}"), text).expect("parses"))
            .collect();
        Acl::new(&policies)
    }

    fn rule(pattern: &str, capabilities: &str) -> String {
        format!("path {pattern:?} {{ capabilities = [{capabilities}] }}\n")
    }

    /// The rule that wins for `path` among `patterns`, each granting a distinct capability set
    /// so the answer names the winner.
    fn winner<'a>(patterns: &[&'a str], path: &str) -> Option<&'a str> {
        let names = [
            r#""create""#,
            r#""read""#,
            r#""update""#,
            r#""patch""#,
            r#""delete""#,
        ];
        let text: String = patterns
            .iter()
            .zip(names)
            .map(|(pattern, name)| rule(pattern, name))
            .collect();
        let got = acl(&[&text]).capabilities(path);
        patterns.iter().zip(names).find_map(|(pattern, name)| {
            (got == C::from_name(name.trim_matches('"')).expect("known")).then_some(*pattern)
        })
    }

    #[test]
    fn the_docs_matching_examples() {
        let acl = acl(&[&[
            rule("secret/foo", r#""read""#),
            rule("secret/bar/*", r#""read""#),
            rule("secret/zip-*", r#""read""#),
            rule("secret/+/teamb", r#""read""#),
            rule("secret/+/+/teamb", r#""read""#),
        ]
        .concat()]);
        for allowed in [
            "secret/foo",
            "secret/bar/zip",
            "secret/bar/zip/zap",
            "secret/zip-zap",
            "secret/zip-zap/zong",
            "secret/foo/teamb",
            "secret/foo/bar/teamb",
            "secret/bar/foo/teamb",
        ] {
            assert!(acl.allows(allowed, C::READ), "{allowed}");
        }
        for refused in [
            "secret/food",
            "secret/foo/bar",
            "secret/bars/zip",
            "secret/zip/zap",
        ] {
            assert!(!acl.allows(refused, C::READ), "{refused}");
            assert_eq!(acl.capabilities(refused), C::NONE, "{refused}");
        }
        assert!(
            !acl.allows("secret/foo", C::UPDATE),
            "only read was granted"
        );
    }

    #[test]
    fn the_docs_deny_example() {
        let acl = acl(&[&[
            rule(
                "secret/*",
                r#""create", "read", "update", "patch", "delete", "list""#,
            ),
            rule("secret/super-secret", r#""deny""#),
        ]
        .concat()]);
        assert_eq!(acl.capabilities("secret/super-secret"), C::DENY);
        assert!(!acl.allows("secret/super-secret", C::READ));
        assert!(acl.allows("secret/other", C::READ.union(C::UPDATE)));
        assert!(!acl.allows("secret/other", C::SUDO));
    }

    #[test]
    fn the_docs_priority_examples() {
        // The docs' worked example: same first wildcard position, both end in `*`; the one
        // with two `+` segments loses (rule 3).
        assert_eq!(
            winner(&["secret/*", "secret/+/+/foo/*"], "secret/a/b/foo/c"),
            Some("secret/*")
        );
        // Rule 1, from Vault's comments: the later first wildcard wins.
        assert_eq!(winner(&["foo/+", "foo/a*"], "foo/ab"), Some("foo/a*"));
        assert_eq!(
            winner(&["foo/+/bar/baz", "foo/bar/+/baz"], "foo/bar/bar/baz"),
            Some("foo/bar/+/baz")
        );
        // Rule 2: not ending in `*` wins.
        assert_eq!(
            winner(&["foo/+/ba*", "foo/+/bar"], "foo/x/bar"),
            Some("foo/+/bar")
        );
        assert_eq!(winner(&["foo/*", "foo/+"], "foo/x"), Some("foo/+"));
        // Rule 3: fewer `+` segments win.
        assert_eq!(
            winner(&["foo/+/+/baz", "foo/+/bar/baz"], "foo/a/bar/baz"),
            Some("foo/+/bar/baz")
        );
        // Rule 4: longer wins.
        assert_eq!(
            winner(&["foo/+/bar/b*", "foo/+/bar/ba*"], "foo/x/bar/baz"),
            Some("foo/+/bar/ba*")
        );
        assert_eq!(
            winner(&["secret/*", "secret/a/*"], "secret/a/b"),
            Some("secret/a/*")
        );
        // Rule 5: lexicographically greater wins.
        assert_eq!(winner(&["a/+/+/d", "a/+/c/+"], "a/b/c/d"), Some("a/+/c/+"));
        // The order the rules are written in plays no part.
        assert_eq!(winner(&["a/+/c/+", "a/+/+/d"], "a/b/c/d"), Some("a/+/c/+"));
        // An exact rule governs its path ahead of every glob.
        assert_eq!(
            winner(&["secret/+", "secret/*", "secret/a"], "secret/a"),
            Some("secret/a")
        );
    }

    #[test]
    fn the_highest_priority_rule_alone_decides() {
        // A deny on a lower-priority glob does not reach a path a more specific rule governs,
        // and an allow on a lower-priority glob does not reach a path a deny governs.
        let acl = acl(&[
            &rule("secret/*", r#""deny""#),
            &rule("secret/app/*", r#""read""#),
            &rule("secret/app/+/locked", r#""deny""#),
        ]);
        assert!(acl.allows("secret/app/x", C::READ));
        assert!(!acl.allows("secret/other", C::READ));
        assert!(!acl.allows("secret/app/x/locked", C::READ));
    }

    #[test]
    fn plus_and_star_combine() {
        let acl = acl(&[&[
            rule("secret/+/app/*", r#""read""#),
            rule("kv/+/ap*", r#""list""#),
        ]
        .concat()]);
        assert!(acl.allows("secret/team/app/config", C::READ));
        assert!(acl.allows("secret/team/app/a/b/c", C::READ));
        assert!(acl.allows("secret/team/app/", C::READ));
        assert!(
            !acl.allows("secret/team/app", C::READ),
            "fewer segments than the pattern"
        );
        assert!(!acl.allows("secret/team/apple", C::READ));
        assert!(!acl.allows("secret/a/b/app/c", C::READ), "+ is one segment");
        assert!(acl.allows("kv/x/apple/more", C::LIST));
        assert!(!acl.allows("kv/x/bpple", C::LIST));
        // As in Vault, `+` also matches an empty segment.
        assert!(acl.allows("secret//app/x", C::READ));
    }

    #[test]
    fn same_patterns_merge_and_deny_wins_across_policies() {
        let read = rule("secret/*", r#""read""#);
        let update = rule("secret/*", r#""update""#);
        let deny = rule("secret/*", r#""deny""#);
        assert_eq!(
            acl(&[&read, &update]).capabilities("secret/a"),
            C::READ.union(C::UPDATE)
        );
        for order in [[&read, &deny], [&deny, &read]] {
            let acl = acl(&[order[0], order[1]]);
            assert_eq!(acl.capabilities("secret/a"), C::DENY);
            assert!(!acl.allows("secret/a", C::READ));
        }
        let segment_deny = rule("secret/+/x", r#""deny""#);
        let segment_sudo = rule("secret/+/x", r#""read", "sudo""#);
        let acl = acl(&[&segment_sudo, &segment_deny]);
        assert!(!acl.allows("secret/a/x", C::READ));
        assert!(
            !acl.allows("secret/a/x", C::SUDO),
            "deny wins over sudo too"
        );
        // Within one policy, a repeated block merges the same way.
        let twice = acl_one(&format!("{read}{deny}"));
        assert_eq!(twice.capabilities("secret/a"), C::DENY);
    }

    fn acl_one(text: &str) -> Acl {
        acl(&[text])
    }

    #[test]
    fn merging_does_not_depend_on_order() {
        let a = [rule("secret/*", r#""read""#), rule("a/+/b", r#""deny""#)].concat();
        let b = [rule("secret/*", r#""update""#), rule("a/+/b", r#""read""#)].concat();
        assert_eq!(acl(&[&a, &b]), acl(&[&b, &a]));
    }

    #[test]
    fn list_looks_up_the_path_without_its_trailing_slash() {
        let acl = acl(&[&[
            rule("secret/metadata/app", r#""list""#),
            rule("+/sys/policies/acl", r#""list""#),
        ]
        .concat()]);
        assert!(acl.allows("secret/metadata/app/", C::LIST));
        assert!(acl.allows("ns/sys/policies/acl/", C::LIST));
        assert_eq!(acl.list_capabilities("secret/metadata/app/"), C::LIST);
        // Other operations see the path as it is.
        assert_eq!(acl.capabilities("secret/metadata/app/"), C::NONE);
        assert!(!acl.allows("secret/metadata/app/", C::LIST.union(C::READ)));
    }

    #[test]
    fn root_allows_everything() {
        let root = Acl::root();
        assert!(root.is_root());
        assert!(root.allows("sys/audit/file", C::UPDATE.union(C::SUDO)));
        assert_eq!(root.capabilities("anything"), C::ALL);
        assert_eq!(root.capability_names("anything"), ["root"]);
        let named_root = Policy {
            name: "root".into(),
            rules: Vec::new(),
            text: String::new(),
        };
        assert!(!Acl::new([&named_root]).is_root(), "only Acl::root is root");
    }

    #[test]
    fn asking_for_nothing_or_for_deny_is_refused() {
        let acl = acl(&[&rule("*", r#""read""#)]);
        assert!(acl.allows("x", C::READ));
        assert!(!acl.allows("x", C::NONE));
        assert!(!acl.allows("x", C::DENY));
        assert!(!Acl::root().allows("x", C::NONE));
    }

    #[test]
    fn capability_names_answer_as_vault_does() {
        let acl = acl(&[&[
            rule(
                "a",
                r#""create", "read", "update", "patch", "delete", "list", "sudo""#,
            ),
            rule("b", r#""deny""#),
            rule("c", ""),
        ]
        .concat()]);
        assert_eq!(
            acl.capability_names("a"),
            [
                "sudo", "read", "list", "update", "delete", "create", "patch"
            ]
        );
        assert_eq!(acl.capability_names("b"), ["deny"]);
        assert_eq!(
            acl.capability_names("c"),
            ["deny"],
            "a rule granting nothing"
        );
        assert_eq!(acl.capability_names("z"), ["deny"], "no rule");
    }

    #[test]
    fn request_paths_lose_their_leading_slashes() {
        let acl = acl(&[&rule("/secret/a", r#""read""#)]);
        assert!(acl.allows("secret/a", C::READ));
        assert!(acl.allows("//secret/a", C::READ));
    }

    #[test]
    fn non_ascii_paths_match_by_prefix() {
        let acl = acl(&[&rule("kv/é*", r#""read""#)]);
        assert!(acl.allows("kv/été", C::READ));
        assert!(!acl.allows("kv/e", C::READ));
    }
}
