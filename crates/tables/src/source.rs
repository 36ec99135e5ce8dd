//! Postfix's text table input: logical lines and `key whitespace value` entries.
//!
//! Owns the syntax shared by every text file Postfix reads as a table (postmap(1) "INPUT FILE
//! FORMAT", aliases(5), regexp_table(5), pcre_table(5)):
//! - empty and whitespace-only lines are ignored, as are lines whose first non-whitespace
//!   character is `#`;
//! - a logical line starts with non-whitespace text; a line that starts with whitespace
//!   continues it (the newline is dropped, the continuation's text is appended as written);
//! - a trailing `\r` (CRLF files) and trailing whitespace are removed.
//!
//! On top of that, postmap input entries: `key whitespace value`, key and value stripped of
//! surrounding whitespace; a key may be double-quoted (Postfix 3.2) with `\"` and `\\` inside.
//!
//! Invariants: every logical line carries the 1-based number of the physical line it starts
//! on, which is the number error messages name. Parsing never fails as a whole: a bad entry is
//! reported as a [`Diagnostic`] and the rest of the file is kept. No input panics.

/// One logical line: the physical line it starts on and its text (continuations joined).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogicalLine {
    /// 1-based number of the first physical line.
    pub line: usize,
    /// The joined text, without trailing whitespace.
    pub text: String,
}

/// Split `text` into logical lines (see the module contract).
pub fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let mut out: Vec<LogicalLine> = Vec::new();
    for (idx, raw) in text.split('\n').enumerate() {
        let raw = raw.strip_suffix('\r').unwrap_or(raw);
        let trimmed = raw.trim_start();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let starts_with_space = raw.len() != trimmed.len();
        match out.last_mut() {
            Some(last) if starts_with_space => {
                last.text.push_str(raw);
                let kept = last.text.trim_end().len();
                last.text.truncate(kept);
            }
            _ => out.push(LogicalLine {
                line: idx + 1,
                text: trimmed.trim_end().to_string(),
            }),
        }
    }
    out
}

/// A problem found in a source file, with the line it starts on. The entry is skipped unless
/// the message is only a warning (see [`parse_source`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// 1-based line number.
    pub line: usize,
    /// Postfix's wording, e.g. `expected format: key whitespace value`.
    pub message: String,
}

/// One `key value` entry of a postmap input file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceEntry {
    /// The key, quotes removed, not yet case-folded.
    pub key: String,
    /// The value, surrounding whitespace removed.
    pub value: String,
    /// 1-based line number where the entry starts.
    pub line: usize,
}

/// Parse postmap(1) input. Returns the entries in file order and the diagnostics; an entry
/// with a diagnostic is dropped, except for the "is this an alias file?" warning that Postfix
/// also only warns about.
pub fn parse_source(text: &str) -> (Vec<SourceEntry>, Vec<Diagnostic>) {
    let mut entries = Vec::new();
    let mut diags = Vec::new();
    for ll in logical_lines(text) {
        match split_key_value(&ll.text) {
            Ok((key, value)) => {
                if key.ends_with(':') {
                    diags.push(Diagnostic {
                        line: ll.line,
                        message: "record is in \"key: value\" format; is this an alias file?"
                            .to_string(),
                    });
                }
                entries.push(SourceEntry {
                    key,
                    value,
                    line: ll.line,
                });
            }
            Err(message) => diags.push(Diagnostic {
                line: ll.line,
                message,
            }),
        }
    }
    (entries, diags)
}

/// Split one logical line into key and value.
pub fn split_key_value(text: &str) -> Result<(String, String), String> {
    const EXPECTED: &str = "expected format: key whitespace value";
    let text = text.trim();
    let (key, rest) = if let Some(quoted) = text.strip_prefix('"') {
        let mut key = String::new();
        let mut chars = quoted.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => match chars.next() {
                    Some((_, next)) => key.push(next),
                    None => break,
                },
                '"' => {
                    end = Some(i + 1);
                    break;
                }
                _ => key.push(c),
            }
        }
        let Some(end) = end else {
            return Err("missing '\"' at end of key".to_string());
        };
        let rest = quoted.get(end..).unwrap_or("");
        if !rest.is_empty() && !rest.starts_with(char::is_whitespace) {
            return Err(EXPECTED.to_string());
        }
        (key, rest)
    } else {
        let split = text.find(char::is_whitespace).unwrap_or(text.len());
        let (key, rest) = text.split_at(split);
        (key.to_string(), rest)
    };
    let value = rest.trim();
    if key.is_empty() || value.is_empty() {
        return Err(EXPECTED.to_string());
    }
    Ok((key, value.to_string()))
}

/// Fold a lookup key the way Postfix does for fixed-case tables (`hash:`, `texthash:`,
/// `inline:`, ...): to lower case.
pub fn fold_key(key: &str) -> String {
    key.to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn logical_line_cases() {
        let cases: &[(&str, &[(usize, &str)])] = &[
            ("", &[]),
            ("a b\n", &[(1, "a b")]),
            ("# c\n\n  \na b\n", &[(4, "a b")]),
            ("a b,\n  c\n", &[(1, "a b,  c")]),
            ("a b,\n\tc\nd e", &[(1, "a b,\tc"), (3, "d e")]),
            ("a b\r\nc d\r\n", &[(1, "a b"), (2, "c d")]),
            // An indented comment is a comment, not a continuation.
            ("a b\n  # x\n  c\n", &[(1, "a b  c")]),
            ("a b   \n", &[(1, "a b")]),
            // A continuation with nothing to continue starts a logical line.
            ("  a b\n", &[(1, "a b")]),
        ];
        for (input, want) in cases {
            let got: Vec<(usize, String)> = logical_lines(input)
                .into_iter()
                .map(|l| (l.line, l.text))
                .collect();
            let want: Vec<(usize, String)> =
                want.iter().map(|(n, t)| (*n, t.to_string())).collect();
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn key_value_cases() {
        type Want = Result<(&'static str, &'static str), &'static str>;
        let cases: &[(&str, Want)] = &[
            ("key value", Ok(("key", "value"))),
            (
                "key   value with  space  ",
                Ok(("key", "value with  space")),
            ),
            ("key\tvalue", Ok(("key", "value"))),
            ("\"a key\" v", Ok(("a key", "v"))),
            ("\"a \\\"q\\\" \\\\ k\" v", Ok(("a \"q\" \\ k", "v"))),
            ("key", Err("expected format: key whitespace value")),
            ("\"a key\"", Err("expected format: key whitespace value")),
            ("\"a key\"v", Err("expected format: key whitespace value")),
            ("\"unterminated v", Err("missing '\"' at end of key")),
        ];
        for (input, want) in cases {
            let got = split_key_value(input);
            let want = want
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .map_err(|e| e.to_string());
            assert_eq!(got, want, "input {input:?}");
        }
    }

    #[test]
    fn parse_source_keeps_going_after_errors() {
        let text = "a 1\nbroken\n# comment\nb: 2\n  more\nc 3\n";
        let (entries, diags) = parse_source(text);
        let got: Vec<(&str, &str, usize)> = entries
            .iter()
            .map(|e| (e.key.as_str(), e.value.as_str(), e.line))
            .collect();
        assert_eq!(
            got,
            vec![("a", "1", 1), ("b:", "2  more", 4), ("c", "3", 6)]
        );
        assert_eq!(
            diags,
            vec![
                Diagnostic {
                    line: 2,
                    message: "expected format: key whitespace value".into()
                },
                Diagnostic {
                    line: 4,
                    message: "record is in \"key: value\" format; is this an alias file?".into()
                },
            ]
        );
    }

    proptest! {
        #[test]
        fn parse_source_never_panics(text in "\\PC*") {
            let _ = parse_source(&text);
        }

        #[test]
        fn parse_source_never_panics_on_table_like_text(
            text in "([\"#\\\\ \t\r\na-zA-Z:]{0,12}\n){0,12}"
        ) {
            let (entries, diags) = parse_source(&text);
            for e in entries {
                prop_assert!(!e.key.is_empty() && !e.value.is_empty());
            }
            for d in diags {
                prop_assert!(d.line >= 1);
            }
        }
    }
}
