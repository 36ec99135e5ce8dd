//! RFC 5322 address lists as found in To/Cc/Bcc/From/Reply-To/Sender/Resent-* header values.
//!
//! Owns: finding each mailbox in a header value ([`parse_address_list`]) and replacing each
//! address in place ([`rewrite_address_list`]), the way cleanup(8) reads and rewrites header
//! addresses.
//!
//! Accepted: display names (atoms, quoted strings, obsolete dotted phrases), comments (nested,
//! anywhere; never part of an address or display name), `<angle-addr>`, obsolete route-addr
//! `<@a,@b:user@d>` (route dropped), groups (`team: a@x, b@y;`, `undisclosed-recipients:;`;
//! the group name is not reported), bare addr-specs and bare local parts (`root`).
//!
//! Tolerance (never fails, never panics, linear time): malformed pieces are skipped and the rest
//! is kept. An unterminated quoted string, comment or `<` runs to the end of the value; words
//! after an address are ignored (`a@x junk` gives `a@x`); an item without angle brackets gives
//! its first `local@domain`, or its only word sequence when it has no `@` (`John Doe` alone
//! gives nothing); an empty address (`<>`), an empty local part with a domain (`@x`), and a
//! `local@` with no domain are skipped; a `;` outside a group separates like `,`.
//!
//! Addresses are returned in external form ([`super::quote_local`] applied to the local part,
//! domain as written, whitespace and comments inside the address removed).

use super::quote_local;
use crate::tok822::{tokenize, Kind, Token};

/// One mailbox found in a header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mailbox {
    /// The phrase before `<...>`, unquoted, with the spacing of the original collapsed to one
    /// space; `None` when there is none (comments are never used as display names).
    pub display_name: Option<String>,
    /// The address in external form (`"john doe"@example.com`, `root`).
    pub address: String,
}

/// A mailbox and the byte range of the value that holds its address (route included).
struct Found {
    mailbox: Mailbox,
    start: usize,
    end: usize,
}

/// Parse an RFC 5322 address-list header value. Never fails: malformed pieces are skipped.
pub fn parse_address_list(value: &str) -> Vec<Mailbox> {
    scan(value).into_iter().map(|f| f.mailbox).collect()
}

/// Rewrite every address in a header value with `f`, keeping display names, comments and
/// layout otherwise intact. `f` gets each address in external form; its result replaces the
/// address text (including any source route; a comment inside an address is lost) and is
/// inserted as is. Pieces that [`parse_address_list`] skips are left untouched.
pub fn rewrite_address_list(value: &str, f: &mut dyn FnMut(&str) -> String) -> String {
    let mut out = String::with_capacity(value.len() + 16);
    let mut last = 0;
    for found in scan(value) {
        out.push_str(value.get(last..found.start).unwrap_or(""));
        out.push_str(&f(&found.mailbox.address));
        last = found.end;
    }
    out.push_str(value.get(last..).unwrap_or(""));
    out
}

fn scan(value: &str) -> Vec<Found> {
    let toks: Vec<Token> = tokenize(value)
        .into_iter()
        .filter(|t| t.kind != Kind::Comment)
        .collect();
    let mut out = Vec::new();
    let mut item_start = 0;
    let mut depth = 0usize;
    let mut in_group = false;
    for (i, t) in toks.iter().enumerate() {
        match t.kind {
            Kind::Special(b'<') => depth += 1,
            Kind::Special(b'>') => depth = depth.saturating_sub(1),
            Kind::Special(b',') if depth == 0 => {
                item(value, &toks[item_start..i], &mut out);
                item_start = i + 1;
            }
            Kind::Special(b';') if depth == 0 => {
                item(value, &toks[item_start..i], &mut out);
                item_start = i + 1;
                in_group = false;
            }
            Kind::Special(b':') if depth == 0 && !in_group => {
                let cur = &toks[item_start..i];
                if cur.iter().all(|t| t.is_word() || t.is_special(b'.')) {
                    // `phrase:` opens a group; the name is not an address. Anything else
                    // before the colon (`@`, `<`...) makes it part of a malformed item.
                    in_group = true;
                    item_start = i + 1;
                }
            }
            _ => {}
        }
    }
    item(value, &toks[item_start.min(toks.len())..], &mut out);
    out
}

/// Find the mailbox in one list item (the tokens between separators), if it has one.
fn item(src: &str, toks: &[Token], out: &mut Vec<Found>) {
    if toks.is_empty() {
        return;
    }
    if let Some(lt) = toks.iter().position(|t| t.is_special(b'<')) {
        angle_item(src, toks, lt, out);
    } else {
        bare_item(src, toks, out);
    }
}

/// `phrase <[route:]addr-spec>`; anything after the matching `>` is ignored.
fn angle_item(src: &str, toks: &[Token], lt: usize, out: &mut Vec<Found>) {
    let mut depth = 0usize;
    let mut close = toks.len();
    for (j, t) in toks.iter().enumerate().skip(lt) {
        if t.is_special(b'<') {
            depth += 1;
        } else if t.is_special(b'>') {
            depth = depth.saturating_sub(1);
            if depth == 0 {
                close = j;
                break;
            }
        }
    }
    let inner = toks.get(lt + 1..close).unwrap_or(&[]);
    // Tolerate `<<a@b>>`.
    let skip = inner.iter().take_while(|t| t.is_special(b'<')).count();
    let inner = &inner[skip..];
    let Some(first) = inner.first() else {
        return;
    };
    let mut rest = inner;
    if first.is_special(b'@') {
        let Some(colon) = inner.iter().position(|t| t.is_special(b':')) else {
            return;
        };
        let route_ok = inner[..colon]
            .iter()
            .all(|t| t.is_word() || t.is_special(b'@') || t.is_special(b',') || t.is_special(b'.'));
        if !route_ok {
            return;
        }
        rest = &inner[colon + 1..];
    }
    let Some((n, address)) = addr_spec(src, rest) else {
        return;
    };
    let end = rest[n - 1].end;
    out.push(Found {
        mailbox: Mailbox {
            display_name: phrase(src, &toks[..lt]),
            address,
        },
        start: first.start,
        end,
    });
}

/// An item without angle brackets: the first run that has an `@`, else its only run.
fn bare_item(src: &str, toks: &[Token], out: &mut Vec<Found>) {
    let mut runs = 0usize;
    let mut only: Option<(usize, usize, String)> = None;
    let mut j = 0;
    while j < toks.len() {
        if !(toks[j].is_word() || toks[j].is_special(b'.') || toks[j].is_special(b'@')) {
            j += 1;
            continue;
        }
        runs += 1;
        let run = &toks[j..];
        let len = run_len(run).max(1);
        if let Some((n, address)) = addr_spec(src, run) {
            let (start, end) = (run[0].start, run[n - 1].end);
            if run[..n].iter().any(|t| t.is_special(b'@')) {
                out.push(Found {
                    mailbox: Mailbox {
                        display_name: None,
                        address,
                    },
                    start,
                    end,
                });
                return;
            }
            if only.is_none() {
                only = Some((start, end, address));
            }
        }
        j += len;
    }
    if let (1, Some((start, end, address))) = (runs, only) {
        out.push(Found {
            mailbox: Mailbox {
                display_name: None,
                address,
            },
            start,
            end,
        });
    }
}

/// Length of the address-shaped run at the start of `toks`: words joined by `.` or `@`, or
/// written together with nothing between them (`a"b"@c` reads as `ab@c`); a space or comment
/// between two words ends the run.
fn run_len(toks: &[Token]) -> usize {
    let mut n = 0;
    let mut prev_word_end: Option<usize> = None;
    for t in toks {
        match t.kind {
            Kind::Atom | Kind::Quoted | Kind::Literal => {
                if prev_word_end.is_some_and(|end| end < t.start) {
                    break;
                }
                prev_word_end = Some(t.end);
            }
            Kind::Special(b'.') | Kind::Special(b'@') => prev_word_end = None,
            _ => break,
        }
        n += 1;
    }
    n
}

/// Read `local[@domain]` from the start of `toks`. Returns how many tokens it used and the
/// address in external form, or `None` when there is no usable address there.
fn addr_spec(src: &str, toks: &[Token]) -> Option<(usize, String)> {
    let n = run_len(toks);
    let run = toks.get(..n)?;
    let at = run.iter().rposition(|t| t.is_special(b'@'));
    let (local_toks, domain_toks) = match at {
        Some(i) => (&run[..i], Some(&run[i + 1..])),
        None => (run, None),
    };
    let mut local = String::new();
    for t in local_toks {
        match t.kind {
            Kind::Special(c) => local.push(char::from(c)),
            _ => local.push_str(&t.text(src)),
        }
    }
    match domain_toks {
        None if local.is_empty() => None,
        None => Some((n, quote_local(&local))),
        Some(_) if local.is_empty() => None,
        Some(d) => {
            let domain: String = d.iter().map(|t| t.raw(src)).collect();
            if domain.is_empty() {
                None
            } else {
                Some((n, format!("{}@{domain}", quote_local(&local))))
            }
        }
    }
}

/// The display name: phrase words unquoted, original spacing collapsed to single spaces.
fn phrase(src: &str, toks: &[Token]) -> Option<String> {
    let mut out = String::new();
    let mut prev_end: Option<usize> = None;
    for t in toks {
        if let Some(pe) = prev_end {
            if pe < t.start && !out.is_empty() {
                out.push(' ');
            }
        }
        match t.kind {
            Kind::Special(c) => out.push(char::from(c)),
            _ => out.push_str(&t.text(src)),
        }
        prev_end = Some(t.end);
    }
    let trimmed = out.trim();
    (!trimmed.is_empty()).then(|| trimmed.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn mb(name: Option<&str>, addr: &str) -> Mailbox {
        Mailbox {
            display_name: name.map(str::to_owned),
            address: addr.to_owned(),
        }
    }

    #[test]
    fn parses_real_lists() {
        let cases: Vec<(&str, Vec<Mailbox>)> =
            vec![
            ("", vec![]),
            ("   ", vec![]),
            ("j@x", vec![mb(None, "j@x")]),
            ("<j@x>", vec![mb(None, "j@x")]),
            ("John Doe <jd@example.com>", vec![mb(Some("John Doe"), "jd@example.com")]),
            (
                "\"Doe, John\" <j@x>, (comment) k@y, group: a@b, c@d;, undisclosed-recipients:;",
                vec![
                    mb(Some("Doe, John"), "j@x"),
                    mb(None, "k@y"),
                    mb(None, "a@b"),
                    mb(None, "c@d"),
                ],
            ),
            ("undisclosed-recipients:;", vec![]),
            ("undisclosed-recipients: ;", vec![]),
            ("team: a@x, b@y;", vec![mb(None, "a@x"), mb(None, "b@y")]),
            ("team: a@x, b@y", vec![mb(None, "a@x"), mb(None, "b@y")]),
            ("a@x; b@y", vec![mb(None, "a@x"), mb(None, "b@y")]),
            ("a@x, , ,b@y,", vec![mb(None, "a@x"), mb(None, "b@y")]),
            ("jd@example.com (John Doe)", vec![mb(None, "jd@example.com")]),
            ("John (middle (nested)) Doe <jd@x>", vec![mb(Some("John Doe"), "jd@x")]),
            ("John Q. Public <jqp@x>", vec![mb(Some("John Q. Public"), "jqp@x")]),
            ("\"\" <a@x>", vec![mb(None, "a@x")]),
            ("=?UTF-8?B?SsO2cmc=?= <j@x>", vec![mb(Some("=?UTF-8?B?SsO2cmc=?="), "j@x")]),
            ("Jörg <jörg@bücher.de>", vec![mb(Some("Jörg"), "jörg@bücher.de")]),
            ("\"a\\\"b\" <x@y>", vec![mb(Some("a\"b"), "x@y")]),
            // quoting normalised to external form
            ("\"john doe\"@example.com", vec![mb(None, "\"john doe\"@example.com")]),
            ("\"john\"@example.com", vec![mb(None, "john@example.com")]),
            ("john . doe @ example . com", vec![mb(None, "john.doe@example.com")]),
            ("foo.@docomo.ne.jp", vec![mb(None, "\"foo.\"@docomo.ne.jp")]),
            ("u@[192.0.2.1]", vec![mb(None, "u@[192.0.2.1]")]),
            // routes
            ("<@a,@b:u@d>", vec![mb(None, "u@d")]),
            ("Name <@a:u@d>, v@e", vec![mb(Some("Name"), "u@d"), mb(None, "v@e")]),
            // bare local parts
            ("root", vec![mb(None, "root")]),
            ("root, postmaster", vec![mb(None, "root"), mb(None, "postmaster")]),
            ("root (Super User)", vec![mb(None, "root")]),
            // tolerated garbage
            ("a@x junk", vec![mb(None, "a@x")]),
            ("John Doe jd@x", vec![mb(None, "jd@x")]),
            ("<a@x> trailing, b@y", vec![mb(None, "a@x"), mb(None, "b@y")]),
            ("<a@x junk>", vec![mb(None, "a@x")]),
            ("<<a@x>>", vec![mb(None, "a@x")]),
            ("Name <a@x", vec![mb(Some("Name"), "a@x")]),
            ("a@x>, b@y", vec![mb(None, "a@x"), mb(None, "b@y")]),
            ("\"unterminated, a@x", vec![mb(None, "\"unterminated, a@x\"")]),
            ("(unterminated a@x", vec![]),
            ("John Doe", vec![]),
            ("<>", vec![]),
            ("Name <>", vec![]),
            ("@x", vec![]),
            ("a@", vec![]),
            ("<@a>", vec![]),
            (",,,;;;:::", vec![]),
            ("a@b@c", vec![mb(None, "\"a@b\"@c")]),
            ("a\"b c\"@d", vec![mb(None, "\"ab c\"@d")]),
            ("a \"b\"@d", vec![mb(None, "b@d")]),
            ("x: y: a@b;;", vec![mb(None, "a@b")]),
            ("a)b@c", vec![mb(None, "b@c")]),
            ("<@:a>: b@c", vec![mb(None, "a")]),
            ("<@<:a>, b@c", vec![]),
            ("a@b: c@d", vec![mb(None, "a@b")]),
            ("a\0b@c", vec![mb(None, "\"a\0b\"@c")]),
            // folded value as it appears in a message
            (
                "a@x,\r\n\tJohn\r\n <j@y>",
                vec![mb(None, "a@x"), mb(Some("John"), "j@y")],
            ),
        ];
        for (input, want) in cases {
            assert_eq!(parse_address_list(input), want, "input {input:?}");
        }
    }

    #[test]
    fn rewrites_in_place() {
        let qualify = |a: &str| {
            if a.contains('@') {
                a.to_owned()
            } else {
                format!("{a}@example.com")
            }
        };
        let cases = [
            ("root", "root@example.com"),
            ("root (Super User)", "root@example.com (Super User)"),
            ("Super User <root>", "Super User <root@example.com>"),
            (
                "\"Doe, John\" <john>, (c) k@y, g: a, b@z;, undisclosed-recipients:;",
                "\"Doe, John\" <john@example.com>, (c) k@y, g: a@example.com, b@z;, undisclosed-recipients:;",
            ),
            ("a,\r\n\tb", "a@example.com,\r\n\tb@example.com"),
            ("<@r1,@r2:u>", "<u@example.com>"),
            ("\"john doe\"", "\"john doe\"@example.com"),
            ("John Doe", "John Doe"),
            ("<>", "<>"),
            ("", ""),
        ];
        for (input, want) in cases {
            assert_eq!(
                rewrite_address_list(input, &mut |a| qualify(a)),
                want,
                "input {input:?}"
            );
        }
    }

    #[test]
    fn rewrite_sees_addresses_in_order() {
        let mut seen = Vec::new();
        let out = rewrite_address_list("b@x, A <a@y>, g: c;", &mut |a| {
            seen.push(a.to_owned());
            a.to_uppercase()
        });
        assert_eq!(seen, ["b@x", "a@y", "c"]);
        assert_eq!(out, "B@X, A <A@Y>, g: C;");
    }

    /// Inputs proptest once found where an identity rewrite changed the parsed list
    /// (adjacent words merging, a group colon appearing after a route was dropped, an
    /// unterminated `<` inside a route).
    #[test]
    fn identity_rewrite_regressions() {
        for s in [
            "a\"a\"@a",
            "<@:a>:",
            "<@<:a>,\"a",
            "x a\"b\"@c, <@r:u@d>: y",
        ] {
            let before = parse_address_list(s);
            let after = parse_address_list(&rewrite_address_list(s, &mut |a| a.to_owned()));
            assert_eq!(before, after, "input {s:?}");
        }
    }

    proptest! {
        #[test]
        fn never_panics(s in "\\PC*") {
            let _ = parse_address_list(&s);
            let _ = rewrite_address_list(&s, &mut |a| a.to_owned());
        }

        #[test]
        fn identity_rewrite_keeps_the_mailboxes(
            s in "[a-z \"<>@,;:.()\\[\\]\\\\]{0,40}"
        ) {
            let before = parse_address_list(&s);
            let after = parse_address_list(&rewrite_address_list(&s, &mut |a| a.to_owned()));
            prop_assert_eq!(before, after);
        }

        #[test]
        fn found_addresses_are_never_empty(s in "\\PC{0,60}") {
            for m in parse_address_list(&s) {
                prop_assert!(!m.address.is_empty());
            }
        }
    }
}
