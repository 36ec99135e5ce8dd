//! RFC 822/5322 lexical scanner shared by the envelope parser and the header address-list
//! parser (named after Postfix's `tok822`, which plays the same role there).
//!
//! Owns: splitting a string into atoms, quoted strings, comments, domain literals and single
//! special characters, each with its byte span in the input.
//!
//! Invariants: tokens are returned in input order, never overlap, and every span starts and ends
//! on an ASCII delimiter or the end of input, so slicing the input with a span never splits a
//! UTF-8 character. Whitespace (SP, HT, CR, LF) separates tokens and is not a token.
//!
//! Failure: none. Unterminated quoted strings, comments and domain literals run to the end of
//! the input and are marked `closed == false`; callers decide whether that is an error. Linear
//! time, no recursion (comment nesting is a counter).

/// What kind of lexical element a [`Token`] is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// A run of characters that are neither whitespace nor RFC 822 specials (8-bit included).
    Atom,
    /// `"..."`, with backslash escapes.
    Quoted,
    /// `(...)`, nested, with backslash escapes.
    Comment,
    /// `[...]`, with backslash escapes.
    Literal,
    /// One of `< > @ , ; : . \ ) ]` standing on its own.
    Special(u8),
}

/// One lexical element and where it is in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub kind: Kind,
    /// Byte offset of the first byte (the opening delimiter for quoted forms).
    pub start: usize,
    /// Byte offset one past the last byte (past the closing delimiter when there is one).
    pub end: usize,
    /// For quoted strings, comments and literals: whether the closing delimiter was found.
    pub closed: bool,
}

impl Token {
    /// True for the tokens that can be a word of an address or phrase.
    pub(crate) fn is_word(&self) -> bool {
        matches!(self.kind, Kind::Atom | Kind::Quoted | Kind::Literal)
    }

    /// True if this token is the given special character.
    pub(crate) fn is_special(&self, c: u8) -> bool {
        self.kind == Kind::Special(c)
    }

    /// The token's text as written, delimiters included.
    pub(crate) fn raw<'a>(&self, src: &'a str) -> &'a str {
        src.get(self.start..self.end).unwrap_or("")
    }

    /// The token's text with quoting removed: quoted strings lose their quotes and
    /// backslash escapes; every other kind is returned as written.
    pub(crate) fn text(&self, src: &str) -> String {
        match self.kind {
            Kind::Quoted => {
                let inner_end = if self.closed {
                    self.end.saturating_sub(1)
                } else {
                    self.end
                };
                let inner = src.get(self.start + 1..inner_end).unwrap_or("");
                unescape(inner)
            }
            _ => self.raw(src).to_owned(),
        }
    }
}

/// Remove backslash escapes: `\x` becomes `x`; a lone trailing backslash is dropped.
pub(crate) fn unescape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars();
    while let Some(c) = chars.next() {
        if c == '\\' {
            if let Some(next) = chars.next() {
                out.push(next);
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\r' | b'\n')
}

/// The RFC 822 specials, plus whitespace, end an atom.
fn ends_atom(b: u8) -> bool {
    is_space(b)
        || matches!(
            b,
            b'(' | b')'
                | b'<'
                | b'>'
                | b'@'
                | b','
                | b';'
                | b':'
                | b'\\'
                | b'"'
                | b'.'
                | b'['
                | b']'
        )
}

/// Scan `src` into tokens. Never fails; see the module contract.
pub(crate) fn tokenize(src: &str) -> Vec<Token> {
    let b = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let c = b[i];
        if is_space(c) {
            i += 1;
            continue;
        }
        let start = i;
        let (kind, end, closed) = match c {
            b'"' => {
                let (end, closed) = scan_delimited(b, i + 1, b'"', None);
                (Kind::Quoted, end, closed)
            }
            b'[' => {
                let (end, closed) = scan_delimited(b, i + 1, b']', None);
                (Kind::Literal, end, closed)
            }
            b'(' => {
                let (end, closed) = scan_delimited(b, i + 1, b')', Some(b'('));
                (Kind::Comment, end, closed)
            }
            b')' | b'<' | b'>' | b'@' | b',' | b';' | b':' | b'\\' | b'.' | b']' => {
                (Kind::Special(c), i + 1, true)
            }
            _ => {
                let mut j = i + 1;
                while j < b.len() && !ends_atom(b[j]) {
                    j += 1;
                }
                (Kind::Atom, j, true)
            }
        };
        out.push(Token {
            kind,
            start,
            end,
            closed,
        });
        i = end;
    }
    out
}

/// Scan from `i` (just past the opening delimiter) to just past `close`, honouring backslash
/// escapes and, when `nest` is given, nesting of that opener. Returns (end, closed).
fn scan_delimited(b: &[u8], mut i: usize, close: u8, nest: Option<u8>) -> (usize, bool) {
    let mut depth = 1usize;
    while i < b.len() {
        let c = b[i];
        if c == b'\\' {
            // Skip the escaped byte. If it starts a multi-byte character, the continuation
            // bytes are >= 0x80 and never match a delimiter, so the span stays on boundaries.
            i = (i + 2).min(b.len());
            continue;
        }
        if Some(c) == nest {
            depth += 1;
        } else if c == close {
            depth -= 1;
            if depth == 0 {
                return (i + 1, true);
            }
        }
        i += 1;
    }
    (b.len(), false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(s: &str) -> Vec<(Kind, String)> {
        tokenize(s)
            .iter()
            .map(|t| (t.kind, t.raw(s).to_owned()))
            .collect()
    }

    #[test]
    fn scans_each_kind() {
        use Kind::*;
        let cases: &[(&str, Vec<(Kind, &str)>)] = &[
            ("", vec![]),
            ("  \t\r\n", vec![]),
            ("john", vec![(Atom, "john")]),
            (
                "john.doe@x",
                vec![
                    (Atom, "john"),
                    (Special(b'.'), "."),
                    (Atom, "doe"),
                    (Special(b'@'), "@"),
                    (Atom, "x"),
                ],
            ),
            (
                "\"a b\" <c>",
                vec![
                    (Quoted, "\"a b\""),
                    (Special(b'<'), "<"),
                    (Atom, "c"),
                    (Special(b'>'), ">"),
                ],
            ),
            (
                "(a (nested) c) x",
                vec![(Comment, "(a (nested) c)"), (Atom, "x")],
            ),
            ("[1.2.3.4]", vec![(Literal, "[1.2.3.4]")]),
            ("\"a\\\"b\"", vec![(Quoted, "\"a\\\"b\"")]),
            ("(a\\)b)", vec![(Comment, "(a\\)b)")]),
            ("a)b", vec![(Atom, "a"), (Special(b')'), ")"), (Atom, "b")]),
            ("ü@ö", vec![(Atom, "ü"), (Special(b'@'), "@"), (Atom, "ö")]),
        ];
        for (input, want) in cases {
            let want: Vec<(Kind, String)> =
                want.iter().map(|(k, s)| (*k, (*s).to_owned())).collect();
            assert_eq!(kinds(input), want, "input {input:?}");
        }
    }

    #[test]
    fn unterminated_forms_run_to_end() {
        for (input, kind) in [
            ("\"abc", Kind::Quoted),
            ("(abc", Kind::Comment),
            ("[abc", Kind::Literal),
            ("\"abc\\", Kind::Quoted),
            ("((a)", Kind::Comment),
        ] {
            let toks = tokenize(input);
            assert_eq!(toks.len(), 1, "input {input:?}");
            assert_eq!(toks[0].kind, kind);
            assert!(!toks[0].closed);
            assert_eq!(toks[0].end, input.len());
        }
    }

    #[test]
    fn text_unquotes() {
        let cases = [
            ("\"john doe\"", "john doe"),
            ("\"a\\\"b\"", "a\"b"),
            ("\"a\\\\b\"", "a\\b"),
            ("\"open", "open"),
            ("\"\"", ""),
            ("atom", "atom"),
            ("\"\\é\"", "é"),
        ];
        for (input, want) in cases {
            let toks = tokenize(input);
            assert_eq!(toks[0].text(input), want, "input {input:?}");
        }
    }

    #[test]
    fn escaped_multibyte_keeps_spans_on_boundaries() {
        let s = "\"\\é\" x";
        let toks = tokenize(s);
        assert_eq!(toks.len(), 2);
        assert_eq!(toks[1].raw(s), "x");
    }
}
