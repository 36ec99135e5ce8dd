//! `regexp:` and `pcre:` tables (regexp_table(5), pcre_table(5)).
//!
//! Owns parsing a pattern file into rules and evaluating them against a lookup string:
//! `/pattern/flags result`, `!/pattern/flags result`, `if /pattern/flags` ... `endif` (nesting,
//! negation, `IF`/`ENDIF` in any case), any non-alphanumeric, non-whitespace delimiter, and
//! `$1`, `${1}`, `$(1)`, `$$` in results. Rules apply in file order; the first match wins; each
//! pattern sees the whole input string.
//!
//! Flags, toggled by each letter:
//! - `regexp:` (POSIX): `i` case-insensitive (default on), `m` multi-line (off), `x` extended
//!   syntax (on; turning it off parses a POSIX basic expression, translated here).
//!   As with POSIX regcomp without REG_NEWLINE, `.` also matches a newline.
//! - `pcre:`: `i` (on), `m` (off), `s` dot-all (on), `x` ignore pattern whitespace (off),
//!   `A` anchored at the start (off), `U` ungreedy (off), `E` dollar-end-only (accepted: the
//!   `regex` crate's `$` already matches only at the very end), `X` (accepted and ignored, as
//!   with PCRE2).
//!
//! Patterns are compiled with the `regex` crate, so PCRE-only syntax (look-around,
//! back-references, `\Q...\E`, possessive quantifiers) and POSIX collating elements are errors
//! at load naming the file and line. Matching is leftmost-first, not POSIX leftmost-longest.
//!
//! Invariants: a table that loaded evaluates every input without error. Load errors are
//! [`TableError::Syntax`] naming the line where the bad logical line starts: a pattern that
//! does not compile, an unknown flag, a `$n` beyond the pattern's groups or in a negated rule
//! (which has no match to take text from), an `endif` without `if`, an `if` without `endif`.
//! Postfix skips such rules with a warning; Postern refuses the table, because a skipped rule
//! silently changes what the rules after it mean. Extra text after `if`/`endif` and a rule
//! without a result are only warnings, as in Postfix. With `no_regsub` (Postfix's rule for
//! `alias_maps`), any `$n` in a result is an error.

use std::path::Path;

use regex::{Regex, RegexBuilder};

use crate::error::TableError;
use crate::source::logical_lines;
use crate::warn::Warner;
use crate::Table;

/// Which syntax the patterns use.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// `regexp:` — POSIX extended (or basic, with the `x` flag toggled off).
    Posix,
    /// `pcre:` — Perl-compatible, as far as the `regex` crate goes.
    Pcre,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Group(usize),
}

#[derive(Debug)]
enum Rule {
    Match {
        regex: Regex,
        negated: bool,
        result: Vec<Piece>,
    },
    If {
        regex: Regex,
        negated: bool,
        /// Index of the rule after the matching `endif`.
        skip_to: usize,
    },
    Endif,
}

/// A loaded `regexp:` or `pcre:` table.
#[derive(Debug)]
pub struct RegexpTable {
    spec: String,
    rules: Vec<Rule>,
    owner: Option<(u32, u32)>,
}

/// Outcome of parsing one pattern: the compiled regex and where the rest of the line starts.
struct Pattern {
    regex: Regex,
    negated: bool,
    rest: String,
}

fn keyword<'a>(text: &'a str, word: &str) -> Option<&'a str> {
    let head = text.get(..word.len())?;
    if !head.eq_ignore_ascii_case(word) {
        return None;
    }
    let rest = text.get(word.len()..)?;
    match rest.chars().next() {
        Some(c) if c.is_alphanumeric() => None,
        _ => Some(rest),
    }
}

impl RegexpTable {
    /// Parse `text` (the content of `file`) as a `dialect` table.
    pub fn parse(
        spec: &str,
        file: &Path,
        text: &str,
        dialect: Dialect,
        no_regsub: bool,
        warner: &Warner,
    ) -> Result<RegexpTable, TableError> {
        let syntax = |line: usize, message: String| TableError::Syntax {
            file: file.to_path_buf(),
            line,
            message,
        };
        let what = match dialect {
            Dialect::Posix => "regexp",
            Dialect::Pcre => "pcre",
        };
        let mut rules: Vec<Rule> = Vec::new();
        let mut open_ifs: Vec<(usize, usize)> = Vec::new(); // (rule index, line)
        for ll in logical_lines(text) {
            let line = ll.line;
            let text = ll.text.as_str();
            if let Some(rest) = keyword(text, "endif") {
                if !rest.trim().is_empty() {
                    warner(&format!(
                        "{what} map {}, line {line}: ignoring extra text after ENDIF",
                        file.display()
                    ));
                }
                let (idx, _) = open_ifs
                    .pop()
                    .ok_or_else(|| syntax(line, "ENDIF without matching IF".to_string()))?;
                rules.push(Rule::Endif);
                let end = rules.len();
                if let Some(Rule::If { skip_to, .. }) = rules.get_mut(idx) {
                    *skip_to = end;
                }
                continue;
            }
            if let Some(rest) = keyword(text, "if") {
                let p = parse_pattern(rest, dialect).map_err(|m| syntax(line, m))?;
                if !p.rest.trim().is_empty() {
                    warner(&format!(
                        "{what} map {}, line {line}: ignoring extra text after IF statement: \"{}\"",
                        file.display(),
                        p.rest.trim()
                    ));
                }
                open_ifs.push((rules.len(), line));
                rules.push(Rule::If {
                    regex: p.regex,
                    negated: p.negated,
                    skip_to: 0,
                });
                continue;
            }
            let p = parse_pattern(text, dialect).map_err(|m| syntax(line, m))?;
            let result_text = p.rest.trim();
            if result_text.is_empty() {
                warner(&format!(
                    "{what} map {}, line {line}: no replacement text: using empty string",
                    file.display()
                ));
            }
            let result = parse_result(result_text).map_err(|m| syntax(line, m))?;
            let groups = p.regex.captures_len().saturating_sub(1);
            for piece in &result {
                if let Piece::Group(n) = piece {
                    if no_regsub {
                        return Err(syntax(
                            line,
                            "regular expression substitution is not allowed".to_string(),
                        ));
                    }
                    if p.negated {
                        return Err(syntax(
                            line,
                            "$number found in negative match replacement text".to_string(),
                        ));
                    }
                    if *n > groups {
                        return Err(syntax(
                            line,
                            format!("out of range replacement index \"{n}\""),
                        ));
                    }
                }
            }
            rules.push(Rule::Match {
                regex: p.regex,
                negated: p.negated,
                result,
            });
        }
        if let Some((_, line)) = open_ifs.pop() {
            return Err(syntax(line, "IF has no matching ENDIF".to_string()));
        }
        Ok(RegexpTable {
            spec: spec.to_string(),
            rules,
            owner: None,
        })
    }

    /// Read `path` and parse it (see [`RegexpTable::parse`]). A file that cannot be read is
    /// `Unavailable`.
    pub fn open(
        spec: &str,
        path: &Path,
        dialect: Dialect,
        no_regsub: bool,
        warner: &Warner,
    ) -> Result<RegexpTable, TableError> {
        use std::os::unix::fs::MetadataExt;
        let bytes = std::fs::read(path).map_err(|e| TableError::Unavailable {
            spec: spec.to_string(),
            reason: format!("open {}: {}", path.display(), crate::error::errno_text(&e)),
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let mut table = RegexpTable::parse(spec, path, &text, dialect, no_regsub, warner)?;
        table.owner = std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
        Ok(table)
    }

    /// Evaluate the rules against `key`.
    pub fn find(&self, key: &str) -> Option<String> {
        let mut i = 0;
        while let Some(rule) = self.rules.get(i) {
            match rule {
                Rule::Endif => i += 1,
                Rule::If {
                    regex,
                    negated,
                    skip_to,
                } => {
                    if regex.is_match(key) != *negated {
                        i += 1;
                    } else {
                        i = (*skip_to).max(i + 1);
                    }
                }
                Rule::Match {
                    regex,
                    negated,
                    result,
                } => {
                    if *negated {
                        if !regex.is_match(key) {
                            return Some(expand(result, None));
                        }
                    } else if result.iter().any(|p| matches!(p, Piece::Group(_))) {
                        if let Some(caps) = regex.captures(key) {
                            return Some(expand(result, Some(&caps)));
                        }
                    } else if regex.is_match(key) {
                        return Some(expand(result, None));
                    }
                    i += 1;
                }
            }
        }
        None
    }
}

fn expand(result: &[Piece], caps: Option<&regex::Captures<'_>>) -> String {
    let mut out = String::new();
    for piece in result {
        match piece {
            Piece::Text(t) => out.push_str(t),
            Piece::Group(n) => {
                if let Some(m) = caps.and_then(|c| c.get(*n)) {
                    out.push_str(m.as_str());
                }
            }
        }
    }
    out
}

/// Split a result into text and `$n` references: `$n`, `${n}`, `$(n)`, `$$` → `$`. A `$`
/// followed by anything else is kept as written; `$name` with a non-numeric name is an error.
fn parse_result(text: &str) -> Result<Vec<Piece>, String> {
    let mut out: Vec<Piece> = Vec::new();
    let mut lit = String::new();
    let mut chars = text.chars().peekable();
    let group = |digits: &str| -> Result<usize, String> {
        if digits.is_empty() || !digits.chars().all(|c| c.is_ascii_digit()) {
            return Err(format!("non-numeric replacement index \"{digits}\""));
        }
        digits
            .parse::<usize>()
            .map_err(|_| format!("out of range replacement index \"{digits}\""))
    };
    while let Some(c) = chars.next() {
        if c != '$' {
            lit.push(c);
            continue;
        }
        let index = match chars.peek().copied() {
            Some('$') => {
                chars.next();
                lit.push('$');
                continue;
            }
            Some(open @ ('{' | '(')) => {
                let close = if open == '{' { '}' } else { ')' };
                chars.next();
                let mut name = String::new();
                let mut closed = false;
                for c in chars.by_ref() {
                    if c == close {
                        closed = true;
                        break;
                    }
                    name.push(c);
                }
                if !closed {
                    return Err(format!("missing '{close}' in replacement text"));
                }
                group(&name)?
            }
            Some(d) if d.is_ascii_digit() => {
                let mut digits = String::new();
                while let Some(d) = chars.peek().copied().filter(char::is_ascii_digit) {
                    digits.push(d);
                    chars.next();
                }
                group(&digits)?
            }
            Some(a) if a.is_ascii_alphabetic() || a == '_' => {
                let mut name = String::new();
                while let Some(a) = chars
                    .peek()
                    .copied()
                    .filter(|a| a.is_ascii_alphanumeric() || *a == '_')
                {
                    name.push(a);
                    chars.next();
                }
                return Err(format!("non-numeric replacement index \"{name}\""));
            }
            _ => {
                lit.push('$');
                continue;
            }
        };
        if !lit.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut lit)));
        }
        out.push(Piece::Group(index));
    }
    if !lit.is_empty() {
        out.push(Piece::Text(lit));
    }
    Ok(out)
}

#[derive(Debug, Clone, Copy)]
struct Flags {
    icase: bool,
    multi_line: bool,
    dot_all: bool,
    extended: bool,
    anchored: bool,
    ungreedy: bool,
}

/// Parse `[!]<delim>pattern<delim>flags` at the start of `text` and compile it.
fn parse_pattern(text: &str, dialect: Dialect) -> Result<Pattern, String> {
    let mut text = text.trim_start();
    let mut negated = false;
    if let Some(rest) = text.strip_prefix('!') {
        negated = true;
        text = rest.trim_start();
    }
    let mut chars = text.char_indices();
    let delim = match chars.next() {
        Some((_, d)) if !d.is_alphanumeric() && !d.is_whitespace() && d != '\\' => d,
        Some(_) => return Err("pattern must start with a delimiter such as '/'".to_string()),
        None => return Err("missing pattern".to_string()),
    };
    let mut end = None;
    while let Some((i, c)) = chars.next() {
        if c == '\\' {
            if chars.next().is_none() {
                break;
            }
        } else if c == delim {
            end = Some(i);
            break;
        }
    }
    let end = end.ok_or_else(|| format!("missing closing '{delim}' delimiter"))?;
    let start = delim.len_utf8();
    let pattern = text.get(start..end).unwrap_or("");
    let after = text.get(end + delim.len_utf8()..).unwrap_or("");
    let flag_len = after.find(char::is_whitespace).unwrap_or(after.len());
    let (flag_text, rest) = after.split_at(flag_len);
    let mut flags = Flags {
        icase: true,
        multi_line: false,
        dot_all: dialect == Dialect::Pcre,
        extended: dialect == Dialect::Posix,
        anchored: false,
        ungreedy: false,
    };
    for f in flag_text.chars() {
        match (dialect, f) {
            (_, 'i') => flags.icase = !flags.icase,
            (_, 'm') => flags.multi_line = !flags.multi_line,
            (_, 'x') => flags.extended = !flags.extended,
            (Dialect::Pcre, 's') => flags.dot_all = !flags.dot_all,
            (Dialect::Pcre, 'A') => flags.anchored = !flags.anchored,
            (Dialect::Pcre, 'U') => flags.ungreedy = !flags.ungreedy,
            (Dialect::Pcre, 'E') | (Dialect::Pcre, 'X') => {}
            (Dialect::Posix, _) => return Err(format!("unknown regexp option \"{f}\"")),
            (Dialect::Pcre, _) => return Err(format!("unknown pcre option \"{f}\"")),
        }
    }
    let regex = compile(pattern, dialect, flags)?;
    Ok(Pattern {
        regex,
        negated,
        rest: rest.to_string(),
    })
}

fn compile(pattern: &str, dialect: Dialect, flags: Flags) -> Result<Regex, String> {
    let (source, ignore_whitespace) = match dialect {
        Dialect::Posix if flags.extended => (translate_ere(pattern)?, false),
        Dialect::Posix => (translate_bre(pattern)?, false),
        Dialect::Pcre => (pattern.to_string(), flags.extended),
    };
    let source = if flags.anchored {
        format!("\\A(?:{source})")
    } else {
        source
    };
    let dot_all = match dialect {
        Dialect::Posix => true,
        Dialect::Pcre => flags.dot_all,
    };
    RegexBuilder::new(&source)
        .case_insensitive(flags.icase)
        .multi_line(flags.multi_line)
        .dot_matches_new_line(dot_all)
        .ignore_whitespace(ignore_whitespace)
        .swap_greed(flags.ungreedy)
        .size_limit(1 << 22)
        .dfa_size_limit(1 << 22)
        .build()
        .map_err(|e| {
            let text = e.to_string();
            let last = text
                .lines()
                .rev()
                .find(|l| !l.trim().is_empty())
                .unwrap_or("")
                .trim()
                .trim_start_matches("error: ")
                .to_string();
            format!("bad regular expression \"{pattern}\": {last}")
        })
}

/// Copy a POSIX bracket expression starting at `chars[i] == '['` into `out` in `regex` syntax:
/// backslash is literal inside POSIX brackets, and `[`, `&`, `~` must not start nested classes
/// or set operations. Returns the index after the closing `]`.
fn bracket(chars: &[char], mut i: usize, out: &mut String) -> Result<usize, String> {
    out.push('[');
    i += 1;
    if chars.get(i) == Some(&'^') {
        out.push('^');
        i += 1;
    }
    if chars.get(i) == Some(&']') {
        out.push_str("\\]");
        i += 1;
    }
    while let Some(&c) = chars.get(i) {
        match c {
            ']' => {
                out.push(']');
                return Ok(i + 1);
            }
            '[' if chars.get(i + 1) == Some(&':') => {
                let start = i;
                i += 2;
                loop {
                    match (chars.get(i), chars.get(i + 1)) {
                        (Some(':'), Some(']')) => {
                            i += 2;
                            break;
                        }
                        (Some(_), _) => i += 1,
                        (None, _) => return Err("unterminated character class".to_string()),
                    }
                }
                out.extend(&chars[start..i]);
            }
            '[' | '\\' | '&' | '~' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Err("unterminated bracket expression".to_string())
}

/// POSIX extended → `regex` syntax. Outside brackets the two agree closely enough (escapes
/// of punctuation are literal in both, `\<` and `\>` are word boundaries in both).
fn translate_ere(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    while let Some(&c) = chars.get(i) {
        match c {
            '\\' => {
                out.push('\\');
                if let Some(&n) = chars.get(i + 1) {
                    if n.is_ascii_digit() && n != '0' {
                        return Err("back-references are not supported".to_string());
                    }
                    out.push(n);
                }
                i += 2;
            }
            '[' => i = bracket(&chars, i, &mut out)?,
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

/// POSIX basic → `regex` syntax: `\(` `\)` `\{` `\}` (and GNU `\|` `\+` `\?`) are operators,
/// their bare forms are literal; `*` is literal at the start of an expression or group; `^` is
/// an anchor only at the start, `$` only at the end (of the expression or a group).
fn translate_bre(pattern: &str) -> Result<String, String> {
    let chars: Vec<char> = pattern.chars().collect();
    let mut out = String::with_capacity(pattern.len() + 8);
    let mut i = 0;
    let mut at_start = true;
    while let Some(&c) = chars.get(i) {
        let was_start = at_start;
        at_start = false;
        match c {
            '\\' => {
                let Some(&n) = chars.get(i + 1) else {
                    return Err("trailing backslash".to_string());
                };
                match n {
                    '(' => {
                        out.push('(');
                        at_start = true;
                    }
                    ')' | '{' | '}' | '|' | '+' | '?' => out.push(n),
                    d if d.is_ascii_digit() && d != '0' => {
                        return Err("back-references are not supported".to_string())
                    }
                    _ => {
                        out.push('\\');
                        out.push(n);
                    }
                }
                i += 2;
            }
            '(' | ')' | '{' | '}' | '|' | '+' | '?' => {
                out.push('\\');
                out.push(c);
                i += 1;
            }
            '*' if was_start => {
                out.push_str("\\*");
                i += 1;
            }
            '^' if was_start => {
                out.push('^');
                at_start = true;
                i += 1;
            }
            '^' => {
                out.push_str("\\^");
                i += 1;
            }
            '$' => {
                let at_end = i + 1 == chars.len()
                    || (chars.get(i + 1) == Some(&'\\') && chars.get(i + 2) == Some(&')'));
                out.push_str(if at_end { "$" } else { "\\$" });
                i += 1;
            }
            '[' => i = bracket(&chars, i, &mut out)?,
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    Ok(out)
}

impl Table for RegexpTable {
    fn lookup(&self, key: &str) -> Result<Option<String>, TableError> {
        Ok(self.find(key))
    }

    fn spec(&self) -> &str {
        &self.spec
    }

    fn owner(&self) -> Option<(u32, u32)> {
        self.owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::sync::{Arc, Mutex};

    fn quiet() -> Warner {
        Arc::new(|_: &str| {})
    }

    fn table(text: &str, dialect: Dialect) -> RegexpTable {
        RegexpTable::parse("t", Path::new("/t"), text, dialect, false, &quiet())
            .unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    #[test]
    fn lookups() {
        let rules = "\
# access map
/[%!@].*[%!@]/       550 Sender-specified routing rejected
/^postmaster@/       OK
if !/^owner-/
/^(.*)-outgoing@(.*)$/  550 Use ${1}@${2} instead
endif
/^CaseSensitive$/i   exact case
/^(a)(b)?c$/         [$1][$2][$(1)]$$
!/@/                 no at sign
/^x@multi$/
  continued result
";
        let t = table(rules, Dialect::Posix);
        let cases = [
            ("a@b@c", Some("550 Sender-specified routing rejected")),
            ("PostMaster@example.com", Some("OK")),
            (
                "list-outgoing@example.com",
                Some("550 Use list@example.com instead"),
            ),
            ("owner-list-outgoing@example.com", None),
            ("CaseSensitive", Some("exact case")),
            ("casesensitive", Some("no at sign")),
            ("ac", Some("[a][][a]$")),
            ("zzz", Some("no at sign")),
            ("user@example.com", None),
            ("x@multi", Some("continued result")),
        ];
        for (key, want) in cases {
            assert_eq!(t.find(key).as_deref(), want, "{key}");
        }
        let t = table(
            "/^CaseSensitive$/i exact case\n/^(a)(b)?c$/ [$1][$2][$(1)]$$\n",
            Dialect::Posix,
        );
        assert_eq!(t.find("CaseSensitive").as_deref(), Some("exact case"));
        assert_eq!(t.find("casesensitive"), None);
        assert_eq!(t.find("ac").as_deref(), Some("[a][][a]$"));
        assert_eq!(t.find("ABC").as_deref(), Some("[A][B][A]$"));
    }

    #[test]
    fn nested_if_and_negated_if() {
        let rules = "\
IF /@example\\.com$/
if !/^root@/
/^(.*)@/ local:$1
ENDIF
/./ root rule
endif
/./ fallback
";
        let t = table(rules, Dialect::Posix);
        let cases = [
            ("bob@example.com", "local:bob"),
            ("root@example.com", "root rule"),
            ("bob@other.org", "fallback"),
        ];
        for (key, want) in cases {
            assert_eq!(t.find(key).as_deref(), Some(want), "{key}");
        }
    }

    #[test]
    fn flags_per_dialect() {
        let cases: &[(&str, Dialect, &str, Option<&str>)] = &[
            // m: ^ and $ at newlines.
            ("/^b$/ hit", Dialect::Posix, "a\nb", None),
            ("/^b$/m hit", Dialect::Posix, "a\nb", Some("hit")),
            // POSIX: . matches newline (no REG_NEWLINE).
            ("/a.b/ hit", Dialect::Posix, "a\nb", Some("hit")),
            // x off: basic syntax, ( and + are literal, \( \) group.
            ("/^a+(b)$/x hit", Dialect::Posix, "a+(b)", Some("hit")),
            ("/^\\(a\\)*$/x hit$1", Dialect::Posix, "aa", Some("hita")),
            ("/^a+$/ hit", Dialect::Posix, "aaa", Some("hit")),
            // Backslash is literal in POSIX brackets.
            ("/^[\\.]+$/ hit", Dialect::Posix, "\\.", Some("hit")),
            ("/^[[:digit:]]+$/ hit", Dialect::Posix, "123", Some("hit")),
            // pcre: s on by default, toggled off.
            ("/a.b/ hit", Dialect::Pcre, "a\nb", Some("hit")),
            ("/a.b/s hit", Dialect::Pcre, "a\nb", None),
            // pcre: x ignores whitespace in the pattern.
            ("/a b c/x hit", Dialect::Pcre, "abc", Some("hit")),
            ("/a b c/ hit", Dialect::Pcre, "abc", None),
            // pcre: A anchors at the start.
            ("/b/A hit", Dialect::Pcre, "ab", None),
            ("/b/ hit", Dialect::Pcre, "ab", Some("hit")),
            // pcre: U swaps greediness.
            ("/^(a+)/U $1", Dialect::Pcre, "aaa", Some("a")),
            ("/^(a+)/ $1", Dialect::Pcre, "aaa", Some("aaa")),
            ("/\\d+/ digits", Dialect::Pcre, "x12", Some("digits")),
            // Other delimiters; an escaped delimiter inside the pattern.
            ("~^a/b$~ hit", Dialect::Posix, "a/b", Some("hit")),
            ("/^a\\/b$/ hit", Dialect::Pcre, "a/b", Some("hit")),
            ("! /x/ no x", Dialect::Pcre, "abc", Some("no x")),
        ];
        for (rule, dialect, key, want) in cases {
            let t = table(rule, *dialect);
            assert_eq!(t.find(key).as_deref(), *want, "{rule} {dialect:?} {key:?}");
        }
    }

    #[test]
    fn load_errors_name_the_line() {
        let cases: &[(&str, Dialect, usize, &str)] = &[
            ("/ok/ 1\n/(?!x)/ 2\n", Dialect::Pcre, 2, "look-around"),
            ("/a\\1/ 1\n", Dialect::Pcre, 1, "bad regular expression"),
            ("/a(b)\\1/ 1\n", Dialect::Posix, 1, "back-references"),
            ("/a/q r\n", Dialect::Posix, 1, "unknown regexp option \"q\""),
            ("/a/s r\n", Dialect::Posix, 1, "unknown regexp option \"s\""),
            ("/a/Z r\n", Dialect::Pcre, 1, "unknown pcre option \"Z\""),
            (
                "/a/ r\n/(a)/ $2\n",
                Dialect::Posix,
                2,
                "out of range replacement index \"2\"",
            ),
            ("!/(a)/ $1\n", Dialect::Posix, 1, "negative match"),
            (
                "/a/ $name\n",
                Dialect::Posix,
                1,
                "non-numeric replacement index \"name\"",
            ),
            (
                "/a/ ${x}\n",
                Dialect::Posix,
                1,
                "non-numeric replacement index \"x\"",
            ),
            ("/a/ ${1\n", Dialect::Posix, 1, "missing '}'"),
            ("a/ r\n", Dialect::Posix, 1, "delimiter"),
            ("/abc r\n", Dialect::Posix, 1, "missing closing '/'"),
            (
                "# c\n\nendif\n",
                Dialect::Posix,
                3,
                "ENDIF without matching IF",
            ),
            (
                "if /a/\n/b/ c\n",
                Dialect::Posix,
                1,
                "IF has no matching ENDIF",
            ),
            ("/[a/ r\n", Dialect::Posix, 1, "unterminated bracket"),
        ];
        for (text, dialect, line, want) in cases {
            let err = RegexpTable::parse("t", Path::new("/etc/t"), text, *dialect, false, &quiet())
                .expect_err(text);
            match &err {
                TableError::Syntax {
                    file,
                    line: l,
                    message,
                } => {
                    assert_eq!(file, Path::new("/etc/t"));
                    assert_eq!(l, line, "{text:?}: {err}");
                    assert!(message.contains(want), "{text:?}: {message}");
                }
                other => panic!("{text:?}: unexpected {other:?}"),
            }
        }
    }

    #[test]
    fn no_regsub_refuses_substitution() {
        let err = RegexpTable::parse(
            "t",
            Path::new("/t"),
            "/(.*)/ $1\n",
            Dialect::Pcre,
            true,
            &quiet(),
        )
        .expect_err("no_regsub");
        assert!(err.to_string().contains("substitution is not allowed"));
        let ok = RegexpTable::parse(
            "t",
            Path::new("/t"),
            "/(.*)/ $$1\n",
            Dialect::Pcre,
            true,
            &quiet(),
        );
        assert!(ok.is_ok());
    }

    #[test]
    fn warnings_for_cosmetic_problems() {
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = seen.clone();
        let warner: Warner = Arc::new(move |t: &str| sink.lock().expect("l").push(t.to_string()));
        let t = RegexpTable::parse(
            "t",
            Path::new("/w"),
            "if /a/ junk\n/b/\nendif junk\n",
            Dialect::Posix,
            false,
            &warner,
        )
        .expect("parse");
        assert_eq!(t.find("ab").as_deref(), Some(""));
        let got = seen.lock().expect("l").clone();
        assert_eq!(
            got,
            vec![
                "regexp map /w, line 1: ignoring extra text after IF statement: \"junk\""
                    .to_string(),
                "regexp map /w, line 2: no replacement text: using empty string".to_string(),
                "regexp map /w, line 3: ignoring extra text after ENDIF".to_string(),
            ]
        );
    }

    #[test]
    fn result_parsing() {
        let cases: &[(&str, Vec<Piece>)] = &[
            ("plain", vec![Piece::Text("plain".into())]),
            ("$$", vec![Piece::Text("$".into())]),
            ("a$", vec![Piece::Text("a$".into())]),
            ("$ x", vec![Piece::Text("$ x".into())]),
            (
                "$1${2}$(3)x",
                vec![
                    Piece::Group(1),
                    Piece::Group(2),
                    Piece::Group(3),
                    Piece::Text("x".into()),
                ],
            ),
            ("$12", vec![Piece::Group(12)]),
        ];
        for (text, want) in cases {
            assert_eq!(&parse_result(text).expect(text), want, "{text}");
        }
    }

    proptest! {
        #[test]
        fn parser_never_panics(text in "([/!$(){}\\[\\]\\\\a-z1 .*+?^|~:]{0,16}\n){0,6}") {
            for dialect in [Dialect::Posix, Dialect::Pcre] {
                if let Ok(t) = RegexpTable::parse("p", Path::new("/p"), &text, dialect, false, &quiet()) {
                    let _ = t.find("abc");
                    let _ = t.find("");
                }
            }
        }

        #[test]
        fn parser_never_panics_on_any_text(text in "\\PC{0,64}") {
            let _ = RegexpTable::parse("p", Path::new("/p"), &text, Dialect::Pcre, false, &quiet());
            let _ = RegexpTable::parse("p", Path::new("/p"), &text, Dialect::Posix, false, &quiet());
        }
    }
}
