//! `inline:` and `static:` tables: contents written in the table name (DATABASE_README).
//!
//! Owns the Postfix 3.0 syntax:
//! - `inline:{ key1=value1, key2=value2, { key3 = text with whitespace, or comma } }`: pairs
//!   are separated by whitespace or commas; inside an extra `{}` whitespace is ignored after
//!   the `{`, around the `=` and before the `}`, and the value may hold spaces and commas.
//!   Postern also accepts `key = value` written without the inner braces (what would
//!   otherwise be an error), because it is an easy mistake with an obvious meaning.
//! - `static:value` and `static:{ text with whitespace }`: every key matches and the result is
//!   the value (braces and the whitespace just inside them removed).
//!
//! Invariants: inline keys are folded to lower case when the table is built (inline is a
//! fixed-case table like `hash:`); lookups are exact. A duplicate key keeps the first value and
//! is reported to the warning sink. Malformed text is [`TableError::BadSpec`]; nothing panics.

use std::collections::BTreeMap;

use crate::error::TableError;
use crate::source::fold_key;
use crate::warn::Warner;
use crate::Table;

/// An `inline:{...}` table.
#[derive(Debug, Clone)]
pub struct InlineTable {
    spec: String,
    entries: BTreeMap<String, String>,
}

/// A `static:` table.
#[derive(Debug, Clone)]
pub struct StaticTable {
    spec: String,
    value: String,
}

/// Strip the outer `{ ... }` of `text`, or say why not.
fn strip_braces(text: &str) -> Option<&str> {
    let inner = text.trim().strip_prefix('{')?.strip_suffix('}')?;
    Some(inner)
}

/// Split the inside of `inline:{...}` into items: plain tokens and `{...}` groups.
fn items(inner: &str) -> Result<Vec<Item>, String> {
    let mut out = Vec::new();
    let chars: Vec<char> = inner.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        if c.is_whitespace() || c == ',' {
            i += 1;
            continue;
        }
        if c == '{' {
            let mut depth = 0usize;
            let start = i + 1;
            let mut end = None;
            while i < chars.len() {
                match chars[i] {
                    '{' => depth += 1,
                    '}' => {
                        depth = depth.saturating_sub(1);
                        if depth == 0 {
                            end = Some(i);
                            break;
                        }
                    }
                    _ => {}
                }
                i += 1;
            }
            let end = end.ok_or_else(|| "missing '}'".to_string())?;
            out.push(Item::Braced(chars[start..end].iter().collect()));
            i = end + 1;
            continue;
        }
        if c == '}' {
            return Err("unexpected '}'".to_string());
        }
        let start = i;
        while i < chars.len() && !chars[i].is_whitespace() && chars[i] != ',' && chars[i] != '{' {
            if chars[i] == '}' {
                return Err("unexpected '}'".to_string());
            }
            i += 1;
        }
        out.push(Item::Plain(chars[start..i].iter().collect()));
    }
    Ok(out)
}

#[derive(Debug)]
enum Item {
    Plain(String),
    Braced(String),
}

/// Turn items into key/value pairs, merging `key = value` written as three plain tokens.
fn pairs(items: Vec<Item>) -> Result<Vec<(String, String)>, String> {
    let mut out = Vec::new();
    let mut it = items.into_iter().peekable();
    while let Some(item) = it.next() {
        match item {
            Item::Braced(text) => {
                let (k, v) = text
                    .split_once('=')
                    .ok_or_else(|| format!("missing '=' in \"{{{text}}}\""))?;
                out.push((k.trim().to_string(), v.trim().to_string()));
            }
            Item::Plain(mut text) => {
                if !text.contains('=') {
                    // "key = value" or "key =value": merge with what follows.
                    match it.peek() {
                        Some(Item::Plain(next)) if next.starts_with('=') => {
                            let next = match it.next() {
                                Some(Item::Plain(n)) => n,
                                _ => String::new(),
                            };
                            text.push_str(&next);
                        }
                        _ => return Err(format!("missing '=' in \"{text}\"")),
                    }
                }
                if text.ends_with('=') {
                    // "key= value" or "key = value": take the next token when it has no '='.
                    if let Some(Item::Plain(next)) = it.peek() {
                        if !next.contains('=') {
                            let next = match it.next() {
                                Some(Item::Plain(n)) => n,
                                _ => String::new(),
                            };
                            text.push_str(&next);
                        }
                    }
                }
                let (k, v) = text
                    .split_once('=')
                    .ok_or_else(|| format!("missing '=' in \"{text}\""))?;
                out.push((k.to_string(), v.to_string()));
            }
        }
    }
    for (k, _) in &out {
        if k.is_empty() {
            return Err("empty key".to_string());
        }
    }
    Ok(out)
}

impl InlineTable {
    /// Build from the name part of `inline:{...}`; `spec` is the whole spec for messages.
    pub fn parse(spec: &str, name: &str, warner: &Warner) -> Result<InlineTable, TableError> {
        let bad = |message: String| TableError::BadSpec {
            spec: spec.to_string(),
            message,
        };
        let inner = strip_braces(name)
            .ok_or_else(|| bad("syntax error: expected \"inline:{key=value, ...}\"".into()))?;
        let mut entries = BTreeMap::new();
        for (k, v) in pairs(items(inner).map_err(bad)?).map_err(bad)? {
            let key = fold_key(&k);
            if entries.contains_key(&key) {
                warner(&format!("{spec}: duplicate entry: \"{key}\""));
                continue;
            }
            entries.insert(key, v);
        }
        Ok(InlineTable {
            spec: spec.to_string(),
            entries,
        })
    }

    /// All entries in key order (for `postmap -s`).
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.entries
    }
}

/// The rules of an inline `regexp:`/`pcre:` table (Postfix 3.7: `regexp:{ {rule-1},
/// {rule-2} }`): each `{rule}` becomes one line of the in-memory file, whitespace after the
/// `{` and before the `}` ignored.
pub fn inline_rules(spec: &str, name: &str) -> Result<String, TableError> {
    let bad = |message: String| TableError::BadSpec {
        spec: spec.to_string(),
        message,
    };
    let inner = strip_braces(name)
        .ok_or_else(|| bad("syntax error: expected \"{ {rule}, {rule} ... }\"".into()))?;
    let mut lines = Vec::new();
    for item in items(inner).map_err(bad)? {
        match item {
            Item::Braced(rule) => lines.push(rule.trim().to_string()),
            Item::Plain(text) => {
                return Err(bad(format!("expected \"{{rule}}\", found \"{text}\"")))
            }
        }
    }
    Ok(lines.join("\n"))
}

impl Table for InlineTable {
    fn lookup(&self, key: &str) -> Result<Option<String>, TableError> {
        Ok(self.entries.get(key).cloned())
    }

    fn spec(&self) -> &str {
        &self.spec
    }
}

impl StaticTable {
    /// Build from the name part of `static:value` or `static:{ value }`.
    pub fn parse(spec: &str, name: &str) -> Result<StaticTable, TableError> {
        let value = if name.trim_start().starts_with('{') {
            strip_braces(name)
                .ok_or_else(|| TableError::BadSpec {
                    spec: spec.to_string(),
                    message: "missing '}'".to_string(),
                })?
                .trim()
                .to_string()
        } else {
            name.to_string()
        };
        Ok(StaticTable {
            spec: spec.to_string(),
            value,
        })
    }
}

impl Table for StaticTable {
    fn lookup(&self, _key: &str) -> Result<Option<String>, TableError> {
        Ok(Some(self.value.clone()))
    }

    fn spec(&self) -> &str {
        &self.spec
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::Arc;

    fn quiet() -> Warner {
        Arc::new(|_: &str| {})
    }

    #[test]
    fn inline_cases() {
        let cases: &[(&str, &[(&str, &str)])] = &[
            ("{}", &[]),
            ("{ }", &[]),
            ("{a=1}", &[("a", "1")]),
            (
                "{ key1=value1, key2=value2 }",
                &[("key1", "value1"), ("key2", "value2")],
            ),
            (
                "{key1=value1 key2=value2}",
                &[("key1", "value1"), ("key2", "value2")],
            ),
            (
                "{ key1=value1, key2 = value2, { key3 = value with , comma } }",
                &[
                    ("key1", "value1"),
                    ("key2", "value2"),
                    ("key3", "value with , comma"),
                ],
            ),
            ("{ {a=b=c} }", &[("a", "b=c")]),
            ("{ a= }", &[("a", "")]),
            ("{ a =1 }", &[("a", "1")]),
            ("{ a= 1 }", &[("a", "1")]),
            ("{ MiXed=Value }", &[("mixed", "Value")]),
            ("{ a=1, a=2 }", &[("a", "1")]),
        ];
        for (name, want) in cases {
            let spec = format!("inline:{name}");
            let t = InlineTable::parse(&spec, name, &quiet()).expect(name);
            let got: Vec<(&str, &str)> = t
                .entries()
                .iter()
                .map(|(k, v)| (k.as_str(), v.as_str()))
                .collect();
            let mut want = want.to_vec();
            want.sort();
            assert_eq!(got, want, "{name}");
        }
    }

    #[test]
    fn inline_lookup_hit_miss_and_folding() {
        let t = InlineTable::parse("inline:{Root=admin}", "{Root=admin}", &quiet()).expect("p");
        let cases = [("root", Some("admin")), ("Root", None), ("other", None)];
        for (key, want) in cases {
            assert_eq!(
                t.lookup(key).expect("lookup"),
                want.map(str::to_string),
                "{key}"
            );
        }
        assert_eq!(t.spec(), "inline:{Root=admin}");
    }

    #[test]
    fn inline_errors() {
        let cases = [
            ("a=1", "expected"),
            ("{a=1", "expected"),
            ("{ {a=1 }", "missing '}'"),
            ("{ a }", "missing '='"),
            ("{ {a} }", "missing '='"),
            ("{ =1 }", "empty key"),
            ("{ a=1 } }", "unexpected '}'"),
            ("{ a=1} b=2 }", "unexpected '}'"),
        ];
        for (name, want) in cases {
            let err = InlineTable::parse("inline:x", name, &quiet()).expect_err(name);
            assert!(err.to_string().contains(want), "{name}: {err}");
        }
    }

    #[test]
    fn static_cases() {
        let cases = [
            ("foobar", "foobar"),
            ("{ text with whitespace }", "text with whitespace"),
            ("{}", ""),
            ("", ""),
        ];
        for (name, want) in cases {
            let t = StaticTable::parse("static:x", name).expect(name);
            for key in ["anything", "", "ROOT"] {
                assert_eq!(t.lookup(key).expect("l"), Some(want.to_string()), "{name}");
            }
        }
        assert!(StaticTable::parse("static:{x", "{x").is_err());
    }

    #[test]
    fn inline_rule_lists() {
        let cases: &[(&str, Result<&str, &str>)] = &[
            ("{ {/a/ 1}, { /b/ 2 } }", Ok("/a/ 1\n/b/ 2")),
            ("{}", Ok("")),
            ("{ /a/ 1 }", Err("expected \"{rule}\"")),
            ("/a/ 1", Err("syntax error")),
        ];
        for (name, want) in cases {
            match (inline_rules("regexp:x", name), want) {
                (Ok(text), Ok(w)) => assert_eq!(text, *w, "{name}"),
                (Err(e), Err(w)) => assert!(e.to_string().contains(w), "{name}: {e}"),
                (got, _) => panic!("{name}: {got:?}"),
            }
        }
    }

    proptest! {
        #[test]
        fn inline_never_panics(name in "[{}=, a-z\t]{0,40}") {
            let _ = InlineTable::parse("inline:p", &name, &quiet());
            let _ = StaticTable::parse("static:p", &name);
            let _ = inline_rules("regexp:p", &name);
        }
    }
}
