//! The aliases(5) file format: alias entries, right-hand sides, `:include:` files.
//!
//! Owns the text syntax only; what a destination means (forward, `|command`, `/file`,
//! `:include:`, `\user`) is local(8)'s business. Syntax, per aliases(5):
//! - an entry is `name: value1, value2, ...`; empty and whitespace-only lines and lines whose
//!   first non-whitespace character is `#` are ignored; a line that starts with whitespace
//!   continues the logical line;
//! - the name is a local address; double quotes protect special characters (`"a b": x`),
//!   with `\"` and `\\` inside quotes; whitespace before the `:` is allowed;
//! - the value lists destinations separated by commas (and, as sendmail does, whitespace);
//!   a destination that contains commas or whitespace, typically `"|command args"`, is
//!   double-quoted; `(comments)` are dropped; `Phrase <address>` yields the address.
//!
//! Invariants: parsing never fails as a whole and never panics. A malformed entry becomes a
//! [`SyntaxError`] naming the file and the line where it starts, and the rest still loads.
//! Names are returned without quotes but not case-folded (callers fold); values are returned
//! as written (continuations joined) and split only by [`parse_rhs`].

use std::path::{Path, PathBuf};

use crate::error::TableError;
use crate::source::logical_lines;

/// One alias entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Alias {
    /// The name as written, quotes removed, not case-folded.
    pub name: String,
    /// The right-hand side as written, continuation lines joined, outer whitespace removed.
    pub value: String,
    /// 1-based line where the entry starts.
    pub line: usize,
}

/// A malformed alias entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SyntaxError {
    /// The alias file.
    pub file: PathBuf,
    /// 1-based line where the bad entry starts.
    pub line: usize,
    /// Postfix's wording where it has one (`need name:value pair`).
    pub message: String,
}

impl std::fmt::Display for SyntaxError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{}, line {}: {}",
            self.file.display(),
            self.line,
            self.message
        )
    }
}

impl std::error::Error for SyntaxError {}

impl From<SyntaxError> for TableError {
    fn from(e: SyntaxError) -> TableError {
        TableError::Syntax {
            file: e.file,
            line: e.line,
            message: e.message,
        }
    }
}

/// Parse an aliases file's text. `file` only names the file in errors.
pub fn parse(text: &str, file: &Path) -> (Vec<Alias>, Vec<SyntaxError>) {
    let mut aliases = Vec::new();
    let mut errors = Vec::new();
    for ll in logical_lines(text) {
        match split_entry(&ll.text) {
            Ok((name, value)) => aliases.push(Alias {
                name,
                value,
                line: ll.line,
            }),
            Err(message) => errors.push(SyntaxError {
                file: file.to_path_buf(),
                line: ll.line,
                message: message.to_string(),
            }),
        }
    }
    (aliases, errors)
}

const NEED_PAIR: &str = "need name:value pair";

/// Split one logical line into the unquoted name and the value text.
fn split_entry(text: &str) -> Result<(String, String), &'static str> {
    let mut name = String::new();
    let mut chars = text.char_indices();
    let mut in_quote = false;
    let mut gap = false; // whitespace seen after part of the name
    let mut split_name = false; // more name text after such whitespace
    let mut colon = None;
    while let Some((i, c)) = chars.next() {
        if in_quote {
            match c {
                '\\' => {
                    if let Some((_, n)) = chars.next() {
                        name.push(n);
                    }
                }
                '"' => in_quote = false,
                _ => name.push(c),
            }
            continue;
        }
        match c {
            ':' => {
                colon = Some(i);
                break;
            }
            c if c.is_whitespace() => gap = true,
            _ if gap && !name.is_empty() => split_name = true,
            '"' => in_quote = true,
            _ => name.push(c),
        }
    }
    if in_quote {
        return Err("missing '\"' at end of name");
    }
    let colon = colon.ok_or(NEED_PAIR)?;
    if split_name {
        return Err("name must be quoted when it contains whitespace");
    }
    let value = text.get(colon + 1..).unwrap_or("").trim();
    if name.is_empty() || value.is_empty() {
        return Err(NEED_PAIR);
    }
    Ok((name, value.to_string()))
}

/// Split an alias right-hand side (or a `.forward` / `:include:` line) into destinations,
/// quotes removed: `"|/usr/bin/cmd arg, x", /var/log/file, :include:/etc/list, \user`
/// gives `|/usr/bin/cmd arg, x`, `/var/log/file`, `:include:/etc/list`, `\user`.
pub fn parse_rhs(value: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut tokens: Vec<String> = Vec::new();
    let mut angle: Option<String> = None;
    let mut current = String::new();
    let mut has_token = false;
    let mut chars = value.chars().peekable();

    fn finish(current: &mut String, has_token: &mut bool, tokens: &mut Vec<String>) {
        if *has_token && !current.is_empty() {
            tokens.push(std::mem::take(current));
        }
        current.clear();
        *has_token = false;
    }
    fn end_group(tokens: &mut Vec<String>, angle: &mut Option<String>, out: &mut Vec<String>) {
        match angle.take() {
            Some(addr) if !addr.is_empty() => out.push(addr),
            Some(_) => {}
            None => out.append(tokens),
        }
        tokens.clear();
    }

    while let Some(c) = chars.next() {
        match c {
            '"' => {
                has_token = true;
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            if let Some(n) = chars.next() {
                                current.push(n);
                            }
                        }
                        '"' => break,
                        _ => current.push(q),
                    }
                }
            }
            '(' => {
                finish(&mut current, &mut has_token, &mut tokens);
                let mut depth = 1usize;
                while let Some(q) = chars.next() {
                    match q {
                        '\\' => {
                            chars.next();
                        }
                        '(' => depth += 1,
                        ')' => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                }
            }
            '<' => {
                finish(&mut current, &mut has_token, &mut tokens);
                let mut addr = String::new();
                while let Some(q) = chars.next() {
                    match q {
                        '"' => {
                            while let Some(r) = chars.next() {
                                match r {
                                    '\\' => {
                                        if let Some(n) = chars.next() {
                                            addr.push(n);
                                        }
                                    }
                                    '"' => break,
                                    _ => addr.push(r),
                                }
                            }
                        }
                        '>' => break,
                        q if q.is_whitespace() => {}
                        _ => addr.push(q),
                    }
                }
                angle = Some(addr);
            }
            ',' => {
                finish(&mut current, &mut has_token, &mut tokens);
                end_group(&mut tokens, &mut angle, &mut out);
            }
            c if c.is_whitespace() => finish(&mut current, &mut has_token, &mut tokens),
            '\\' => {
                has_token = true;
                current.push('\\');
                if let Some(n) = chars.next() {
                    current.push(n);
                }
            }
            _ => {
                has_token = true;
                current.push(c);
            }
        }
    }
    finish(&mut current, &mut has_token, &mut tokens);
    end_group(&mut tokens, &mut angle, &mut out);
    out
}

/// Parse an `:include:` file: destinations in right-hand-side syntax, one or more per line,
/// comments and continuation lines as in the aliases file.
pub fn parse_include(text: &str) -> Vec<String> {
    logical_lines(text)
        .iter()
        .flat_map(|ll| parse_rhs(&ll.text))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn entries_and_errors() {
        let text = "\
# Basic system aliases
MAILER-DAEMON:\tpostmaster
postmaster: root
\"a b\": x
\"quo\\\"te\" : y
list: alice,
\tbob,
  \"|/usr/bin/cmd arg, with comma\"
broken line without colon
: novalue-name
empty:
c d: e
\"unterminated: z
  # indented comment
root: admin   
";
        let (aliases, errors) = parse(text, Path::new("/etc/aliases"));
        let got: Vec<(&str, &str, usize)> = aliases
            .iter()
            .map(|a| (a.name.as_str(), a.value.as_str(), a.line))
            .collect();
        assert_eq!(
            got,
            vec![
                ("MAILER-DAEMON", "postmaster", 2),
                ("postmaster", "root", 3),
                ("a b", "x", 4),
                ("quo\"te", "y", 5),
                ("list", "alice,\tbob,  \"|/usr/bin/cmd arg, with comma\"", 6),
                ("root", "admin", 15),
            ]
        );
        let errs: Vec<String> = errors.iter().map(ToString::to_string).collect();
        assert_eq!(
            errs,
            vec![
                "/etc/aliases, line 9: need name:value pair",
                "/etc/aliases, line 10: need name:value pair",
                "/etc/aliases, line 11: need name:value pair",
                "/etc/aliases, line 12: name must be quoted when it contains whitespace",
                "/etc/aliases, line 13: missing '\"' at end of name",
            ]
        );
        let as_table: TableError = errors[0].clone().into();
        assert!(matches!(as_table, TableError::Syntax { line: 9, .. }));
    }

    #[test]
    fn rhs_cases() {
        let cases: &[(&str, &[&str])] = &[
            ("user", &["user"]),
            ("a, b,c", &["a", "b", "c"]),
            ("a b\tc", &["a", "b", "c"]),
            (",, a ,, ", &["a"]),
            ("user@example.com", &["user@example.com"]),
            ("\\root, root", &["\\root", "root"]),
            ("/var/log/file", &["/var/log/file"]),
            ("\"/path/with space\"", &["/path/with space"]),
            (
                ":include:/etc/postfix/list",
                &[":include:/etc/postfix/list"],
            ),
            ("\":include:/etc/my list\"", &[":include:/etc/my list"]),
            (
                "\"|/usr/bin/cmd arg, with comma\", other",
                &["|/usr/bin/cmd arg, with comma", "other"],
            ),
            ("|/usr/bin/vacation", &["|/usr/bin/vacation"]),
            ("\"|exit 67\"", &["|exit 67"]),
            ("\"|echo \\\"hi\\\"\"", &["|echo \"hi\""]),
            ("\"john doe\"@example.com", &["john doe@example.com"]),
            ("admin (System Admin), b", &["admin", "b"]),
            ("a (nested (comment)) b", &["a", "b"]),
            ("John Doe <john@example.com>, x", &["john@example.com", "x"]),
            ("<\"a b\"@example.com>", &["a b@example.com"]),
            ("\"\"", &[]),
            ("", &[]),
        ];
        for (value, want) in cases {
            let want: Vec<String> = want.iter().map(|s| s.to_string()).collect();
            assert_eq!(parse_rhs(value), want, "{value:?}");
        }
    }

    #[test]
    fn include_files() {
        let text = "# list members\nalice, bob\n  carol\n\n\"|/bin/cmd a b\"\n/tmp/file\n";
        assert_eq!(
            parse_include(text),
            vec!["alice", "bob", "carol", "|/bin/cmd a b", "/tmp/file"]
        );
    }

    proptest! {
        #[test]
        fn parsers_never_panic(text in "\\PC{0,200}") {
            let (aliases, errors) = parse(&text, Path::new("/p"));
            for a in &aliases {
                prop_assert!(!a.name.is_empty());
                let _ = parse_rhs(&a.value);
            }
            for e in &errors {
                prop_assert!(e.line >= 1);
            }
            let _ = parse_include(&text);
        }

        #[test]
        fn rhs_never_panics_on_special_chars(text in "[\"\\\\(),<> \ta|/:]{0,40}") {
            for d in parse_rhs(&text) {
                prop_assert!(!d.is_empty());
            }
        }
    }
}
