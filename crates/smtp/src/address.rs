//! Mail addresses: the RFC 5321 envelope form Postern stores, and the RFC 5322 forms found in
//! message headers.
//!
//! Owns: parsing an envelope address given on the `sendmail` command line or in `MAIL FROM` /
//! `RCPT TO` ([`parse_envelope`]), splitting and (un)quoting local parts ([`split`],
//! [`unquote_local`], [`quote_local`]), the comparison form ([`normalize_domain`]), and reading
//! and rewriting header address lists ([`parse_address_list`], [`rewrite_address_list`], in
//! `address/list.rs`).
//!
//! Invariants: an envelope address is kept in *external* form: `local@domain` (or a bare
//! `local`), the local part quoted only when it is not an RFC 5321 Dot-string
//! (`"john doe"@example.com`, `"foo."@example.com`), and the empty string for the null sender.
//! [`parse_envelope`] is idempotent on its own output, and `unquote_local(quote_local(s)) == s`
//! for every `s`.
//!
//! Failure: [`parse_envelope`] returns an [`AddressError`] saying what was wrong; everything else
//! here is total (never fails, never panics, linear time).

mod list;

pub use list::{parse_address_list, rewrite_address_list, Mailbox};

use crate::tok822::{tokenize, Kind, Token};
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest envelope address accepted, in bytes, before any parsing.
pub const MAX_ADDRESS_LEN: usize = 2048;
/// Longest local part, in octets of its external (quoted) form (RFC 5321 §4.5.3.1.1).
pub const MAX_LOCAL_LEN: usize = 64;
/// Longest domain, in octets (RFC 5321 §4.5.3.1.2).
pub const MAX_DOMAIN_LEN: usize = 255;

/// Why an envelope address was refused. Every variant is a permanent error for that address
/// (Postfix answers these with `501 5.1.3 Bad sender/recipient address syntax`).
#[derive(thiserror::Error, Debug, Clone, PartialEq, Eq)]
pub enum AddressError {
    /// The input is longer than [`MAX_ADDRESS_LEN`] bytes.
    #[error("address is {0} bytes long; the limit is 2048")]
    TooLong(usize),
    /// The local part is longer than [`MAX_LOCAL_LEN`] octets.
    #[error("local part is {0} octets long; the limit is 64")]
    LocalPartTooLong(usize),
    /// The domain is longer than [`MAX_DOMAIN_LEN`] octets.
    #[error("domain is {0} octets long; the limit is 255")]
    DomainTooLong(usize),
    /// The input contains a NUL byte.
    #[error("address contains a NUL byte")]
    Nul,
    /// The input contains a carriage return or line feed.
    #[error("address contains a line break")]
    LineBreak,
    /// The input contains another control character: ASCII (tab and DEL included), or a C1
    /// control (U+0080 to U+009F) when 8-bit text is allowed.
    #[error("address contains control character U+{:04X}", u32::from(*.0))]
    ControlCharacter(char),
    /// The input contains non-ASCII characters and SMTPUTF8 is not in use.
    #[error("address contains 8-bit characters")]
    EightBit,
    /// A quoted string is not terminated.
    #[error("address has an unterminated quoted string")]
    UnbalancedQuote,
    /// An angle bracket, square bracket or parenthesis has no partner.
    #[error("address has an unbalanced '{0}'")]
    UnbalancedBracket(char),
    /// The address (after unquoting) begins with `-` (Postfix `allow_min_user = no`).
    #[error("address begins with '-'")]
    LeadingDash,
    /// The address has a domain but its local part is empty (`@example.com`, `""@example.com`).
    #[error("address has an empty local part")]
    EmptyLocalPart,
    /// The address ends in `@` with nothing after it.
    #[error("address has an empty domain")]
    EmptyDomain,
    /// The domain is neither a host name nor a valid address literal.
    #[error("invalid domain: {0}")]
    InvalidDomain(&'static str),
    /// A special character where the address syntax does not allow one.
    #[error("unexpected '{0}' in address")]
    UnexpectedCharacter(char),
    /// Two words of the local part are not joined by `.` (a local part with spaces must be
    /// quoted: `"john doe"@example.com`).
    #[error("words of the local part are not joined by '.'")]
    WordsWithoutDot,
    /// More than one address was given (`a@x, b@y`).
    #[error("more than one address given")]
    MultipleAddresses,
    /// Something follows the address (`<a@x> junk`).
    #[error("text after the address")]
    TrailingText,
    /// A source route (`@a,@b:`) is malformed or is not followed by an address.
    #[error("malformed source route")]
    BadRoute,
}

/// Parse an envelope address as given on the sendmail command line or in MAIL FROM/RCPT TO
/// (without the ESMTP parameters) and return it in external form.
///
/// Accepts `user`, `user@domain`, `<user@domain>`, `<>` and the empty string (null sender,
/// returned as `""`), quoted local parts, and source routes `<@a,@b:user@d>` (the route is
/// dropped, as Postfix's trivial-rewrite does). As Postfix's SMTP server does with the default
/// `strict_rfc821_envelopes = no`, RFC 822 comments and a phrase before `<...>` are accepted and
/// dropped (`John <j@x>`, `j@x (John)`).
///
/// Rejects NUL, CR, LF and other control characters, unbalanced quotes or brackets, an address
/// whose unquoted local part starts with `-` (`allow_min_user = no`, so `"-x"@y` too), an
/// empty local part with a domain, input over 2048 bytes, a local part over 64 or a domain over
/// 255 octets, non-ASCII unless `allow_utf8`, more than one address, and a domain that is not
/// a host name (letters, digits, `-`, `_`; one trailing dot allowed) or an address literal
/// (`[192.0.2.1]`, `[IPv6:2001:db8::1]`, `[tag:content]`).
pub fn parse_envelope(input: &str, allow_utf8: bool) -> Result<String, AddressError> {
    if input.len() > MAX_ADDRESS_LEN {
        return Err(AddressError::TooLong(input.len()));
    }
    check_bytes(input, allow_utf8)?;

    let mut toks = Vec::new();
    for t in tokenize(input) {
        match t.kind {
            Kind::Quoted if !t.closed => return Err(AddressError::UnbalancedQuote),
            Kind::Comment if !t.closed => return Err(AddressError::UnbalancedBracket('(')),
            Kind::Literal if !t.closed => return Err(AddressError::UnbalancedBracket('[')),
            Kind::Special(b')') => return Err(AddressError::UnbalancedBracket(')')),
            Kind::Special(b']') => return Err(AddressError::UnbalancedBracket(']')),
            Kind::Comment => {}
            _ => toks.push(t),
        }
    }

    let inner = strip_angle(&toks)?;
    let addr_toks = strip_route(inner)?;
    let (local, domain) = addr_spec(input, addr_toks, allow_utf8)?;

    if local.is_empty() {
        return match domain {
            Some(_) => Err(AddressError::EmptyLocalPart),
            None => Ok(String::new()),
        };
    }
    if local.starts_with('-') {
        return Err(AddressError::LeadingDash);
    }
    let quoted = quote_local(&local);
    if quoted.len() > MAX_LOCAL_LEN {
        return Err(AddressError::LocalPartTooLong(quoted.len()));
    }
    match domain {
        None => Ok(quoted),
        Some(d) => {
            if d.len() > MAX_DOMAIN_LEN {
                return Err(AddressError::DomainTooLong(d.len()));
            }
            Ok(format!("{quoted}@{d}"))
        }
    }
}

/// Byte-level checks that apply everywhere, inside quotes and comments too.
fn check_bytes(input: &str, allow_utf8: bool) -> Result<(), AddressError> {
    for &b in input.as_bytes() {
        match b {
            0 => return Err(AddressError::Nul),
            b'\r' | b'\n' => return Err(AddressError::LineBreak),
            0x01..=0x1f | 0x7f => return Err(AddressError::ControlCharacter(char::from(b))),
            0x80..=0xff if !allow_utf8 => return Err(AddressError::EightBit),
            _ => {}
        }
    }
    match input.chars().find(|c| c.is_control()) {
        Some(c) => Err(AddressError::ControlCharacter(c)),
        None => Ok(()),
    }
}

/// With `<...>`: check the brackets, that only a phrase precedes them and nothing follows,
/// and return the tokens inside. Without: return all tokens.
fn strip_angle(toks: &[Token]) -> Result<&[Token], AddressError> {
    let opens: Vec<usize> = positions(toks, b'<');
    let closes: Vec<usize> = positions(toks, b'>');
    match (opens.as_slice(), closes.as_slice()) {
        ([], []) => Ok(toks),
        ([open], [close]) if open < close => {
            for t in &toks[..*open] {
                match t.kind {
                    Kind::Atom | Kind::Quoted | Kind::Special(b'.') => {}
                    Kind::Special(c) => return Err(AddressError::UnexpectedCharacter(c.into())),
                    _ => return Err(AddressError::UnexpectedCharacter('[')),
                }
            }
            if close + 1 < toks.len() {
                return Err(AddressError::TrailingText);
            }
            Ok(&toks[open + 1..*close])
        }
        ([_], [_]) => Err(AddressError::UnbalancedBracket('>')),
        (o, c) if o.len() > c.len() => Err(AddressError::UnbalancedBracket('<')),
        (o, c) if o.len() < c.len() => Err(AddressError::UnbalancedBracket('>')),
        _ => Err(AddressError::UnexpectedCharacter('<')),
    }
}

fn positions(toks: &[Token], c: u8) -> Vec<usize> {
    toks.iter()
        .enumerate()
        .filter(|(_, t)| t.is_special(c))
        .map(|(i, _)| i)
        .collect()
}

/// Drop a leading source route `@a,@b:`. An `@domain` with no `:` is an empty local part.
fn strip_route(toks: &[Token]) -> Result<&[Token], AddressError> {
    if !toks.first().is_some_and(|t| t.is_special(b'@')) {
        return Ok(toks);
    }
    let Some(colon) = toks.iter().position(|t| t.is_special(b':')) else {
        // `@domain` alone is an address without a local part; `@a,...` is a route
        // that never ends.
        let routeish = toks
            .iter()
            .skip(1)
            .any(|t| t.is_special(b',') || t.is_special(b'@'));
        return Err(if routeish {
            AddressError::BadRoute
        } else {
            AddressError::EmptyLocalPart
        });
    };
    let route = &toks[..colon];
    // @ domain *( "," @ domain )
    let mut expect_at = true;
    let mut seen_domain = false;
    for t in route {
        match t.kind {
            Kind::Special(b'@') if expect_at => {
                expect_at = false;
                seen_domain = false;
            }
            Kind::Special(b',') if !expect_at && seen_domain => expect_at = true,
            Kind::Atom | Kind::Literal | Kind::Special(b'.') if !expect_at => seen_domain = true,
            _ => return Err(AddressError::BadRoute),
        }
    }
    if expect_at || !seen_domain || colon + 1 >= toks.len() {
        return Err(AddressError::BadRoute);
    }
    Ok(&toks[colon + 1..])
}

/// Parse `local [@ domain]` from tokens; return the unquoted local part and the domain text.
fn addr_spec(
    src: &str,
    toks: &[Token],
    allow_utf8: bool,
) -> Result<(String, Option<String>), AddressError> {
    for t in toks {
        match t.kind {
            Kind::Special(b',') => return Err(AddressError::MultipleAddresses),
            Kind::Special(b'<') => return Err(AddressError::UnexpectedCharacter('<')),
            _ => {}
        }
    }
    let at = toks.iter().rposition(|t| t.is_special(b'@'));
    let (local_toks, domain_toks) = match at {
        Some(i) => (&toks[..i], Some(&toks[i + 1..])),
        None => (toks, None),
    };

    let mut local = String::new();
    let mut prev_word = false;
    for t in local_toks {
        match t.kind {
            Kind::Atom | Kind::Quoted => {
                if prev_word {
                    return Err(AddressError::WordsWithoutDot);
                }
                prev_word = true;
                local.push_str(&t.text(src));
            }
            Kind::Special(c @ (b'.' | b'@')) => {
                prev_word = false;
                local.push(c.into());
            }
            Kind::Special(c) => return Err(AddressError::UnexpectedCharacter(c.into())),
            Kind::Literal => return Err(AddressError::UnexpectedCharacter('[')),
            Kind::Comment => {}
        }
    }

    let domain = match domain_toks {
        None => None,
        Some([]) => return Err(AddressError::EmptyDomain),
        Some(d) => Some(domain_text(src, d, allow_utf8)?),
    };
    Ok((local, domain))
}

/// Concatenate and check the domain tokens: a host name or one address literal.
fn domain_text(src: &str, toks: &[Token], allow_utf8: bool) -> Result<String, AddressError> {
    if let Some(first) = toks.first() {
        if first.kind == Kind::Literal {
            if toks.len() > 1 {
                return Err(AddressError::TrailingText);
            }
            let raw = first.raw(src);
            check_literal(raw)?;
            return Ok(raw.to_owned());
        }
    }
    let mut out = String::new();
    let mut prev_word = false;
    for t in toks {
        match t.kind {
            Kind::Atom => {
                if prev_word {
                    return Err(AddressError::TrailingText);
                }
                prev_word = true;
                out.push_str(t.raw(src));
            }
            Kind::Special(b'.') => {
                prev_word = false;
                out.push('.');
            }
            Kind::Special(b':') | Kind::Special(b';') => {
                return Err(AddressError::UnexpectedCharacter(':'))
            }
            Kind::Special(c) => return Err(AddressError::UnexpectedCharacter(c.into())),
            Kind::Quoted => return Err(AddressError::InvalidDomain("quoted string in domain")),
            Kind::Literal => return Err(AddressError::TrailingText),
            Kind::Comment => {}
        }
    }
    check_hostname(&out, allow_utf8)?;
    Ok(out)
}

/// A host name: labels of letters, digits, `-`, `_` (and non-ASCII with SMTPUTF8), 1 to 63
/// octets, no label starting or ending with `-`; one trailing dot is allowed.
fn check_hostname(d: &str, allow_utf8: bool) -> Result<(), AddressError> {
    let body = d.strip_suffix('.').unwrap_or(d);
    if body.is_empty() {
        return Err(AddressError::InvalidDomain("empty domain name"));
    }
    for label in body.split('.') {
        if label.is_empty() {
            return Err(AddressError::InvalidDomain("empty label"));
        }
        if label.len() > 63 {
            return Err(AddressError::InvalidDomain("label longer than 63 octets"));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(AddressError::InvalidDomain("misplaced hyphen"));
        }
        for c in label.chars() {
            let ok =
                c.is_ascii_alphanumeric() || c == '-' || c == '_' || (allow_utf8 && !c.is_ascii());
            if !ok {
                return Err(AddressError::InvalidDomain("bad character in host name"));
            }
        }
    }
    Ok(())
}

/// An RFC 5321 address literal: `[IPv4]`, `[IPv6:addr]` or `[tag:content]`.
fn check_literal(raw: &str) -> Result<(), AddressError> {
    let inner = raw
        .strip_prefix('[')
        .and_then(|s| s.strip_suffix(']'))
        .ok_or(AddressError::UnbalancedBracket('['))?;
    if inner.is_empty() {
        return Err(AddressError::InvalidDomain("empty address literal"));
    }
    if inner
        .bytes()
        .any(|b| !(0x21..=0x7e).contains(&b) || b == b'[' || b == b']' || b == b'\\')
    {
        return Err(AddressError::InvalidDomain(
            "bad character in address literal",
        ));
    }
    if let Some((tag, rest)) = inner.split_once(':') {
        if tag.eq_ignore_ascii_case("IPv6") {
            return rest
                .parse::<Ipv6Addr>()
                .map(|_| ())
                .map_err(|_| AddressError::InvalidDomain("bad IPv6 address literal"));
        }
        let tag_ok = !tag.is_empty()
            && !tag.ends_with('-')
            && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-');
        if !tag_ok || rest.is_empty() {
            return Err(AddressError::InvalidDomain("bad general address literal"));
        }
        return Ok(());
    }
    inner
        .parse::<Ipv4Addr>()
        .map(|_| ())
        .map_err(|_| AddressError::InvalidDomain("bad IPv4 address literal"))
}

/// Split external form into (local part as written, domain) at the last `@` outside quotes.
/// `user` gives `("user", None)`; `user@` gives `("user", Some(""))`.
pub fn split(addr: &str) -> (&str, Option<&str>) {
    let b = addr.as_bytes();
    let mut in_quote = false;
    let mut at = None;
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'\\' if in_quote => i += 1,
            b'"' => in_quote = !in_quote,
            b'@' if !in_quote => at = Some(i),
            _ => {}
        }
        i += 1;
    }
    match at {
        // `@` is ASCII, so both slices are on character boundaries.
        Some(i) => (&addr[..i], Some(&addr[i + 1..])),
        None => (addr, None),
    }
}

/// The local part without quoting: quotes removed and `\x` inside quotes turned into `x`
/// (`"john doe"` → `john doe`, `john."d x"` → `john.d x`). A backslash outside quotes is kept.
pub fn unquote_local(local: &str) -> String {
    let mut out = String::with_capacity(local.len());
    let mut in_quote = false;
    let mut chars = local.chars();
    while let Some(c) = chars.next() {
        match c {
            '"' => in_quote = !in_quote,
            '\\' if in_quote => {
                if let Some(next) = chars.next() {
                    out.push(next);
                }
            }
            _ => out.push(c),
        }
    }
    out
}

/// The external form of a local part: as is when it is an RFC 5321 Dot-string (atoms of
/// atext, non-ASCII included per RFC 6531, joined by single dots), otherwise the whole local
/// part in double quotes with `"` and `\` escaped. The empty local part is `""`.
pub fn quote_local(local: &str) -> String {
    if is_dot_string(local) {
        return local.to_owned();
    }
    let mut out = String::with_capacity(local.len() + 2);
    out.push('"');
    for c in local.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// RFC 5322 atext, extended with non-ASCII (RFC 6531).
pub(crate) fn is_atext(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-/=?^_`{|}~".contains(c) || !c.is_ascii()
}

fn is_dot_string(s: &str) -> bool {
    !s.is_empty()
        && s.split('.')
            .all(|atom| !atom.is_empty() && atom.chars().all(is_atext))
}

/// The comparison form of an external address: domain lower-cased with one trailing dot
/// stripped; the local part keeps its case and content and is re-quoted minimally, so
/// `"john"@Example.COM.` and `john@example.com` compare equal. The null sender stays empty.
pub fn normalize_domain(addr: &str) -> String {
    let (local, domain) = split(addr);
    let bare = unquote_local(local);
    let local = if bare.is_empty() && domain.is_none() {
        String::new()
    } else {
        quote_local(&bare)
    };
    match domain {
        None => local,
        Some(d) => {
            let d = d.strip_suffix('.').unwrap_or(d);
            format!("{local}@{}", d.to_lowercase())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn envelope_accepts() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("<>", ""),
            ("  ", ""),
            ("< >", ""),
            ("\"\"", ""),
            ("<\"\">", ""),
            ("user", "user"),
            ("user@example.com", "user@example.com"),
            ("<user@example.com>", "user@example.com"),
            ("User@Example.COM", "User@Example.COM"),
            ("user@example.com.", "user@example.com."),
            ("first.last@example.com", "first.last@example.com"),
            ("user+tag@example.com", "user+tag@example.com"),
            ("o'brien@example.com", "o'brien@example.com"),
            ("a!b%c@example.com", "a!b%c@example.com"),
            ("host!user", "host!user"),
            ("user%other@example.com", "user%other@example.com"),
            (
                "{x}|y=z?#$&*/^`~@example.com",
                "{x}|y=z?#$&*/^`~@example.com",
            ),
            ("u@sub_domain.example", "u@sub_domain.example"),
            ("u@localhost", "u@localhost"),
            // quoted local parts, quoted only when they must be
            ("\"john doe\"@example.com", "\"john doe\"@example.com"),
            ("<\"john doe\"@example.com>", "\"john doe\"@example.com"),
            ("\"john\"@example.com", "john@example.com"),
            ("\"john.doe\"@example.com", "john.doe@example.com"),
            ("john.\"doe\"@example.com", "john.doe@example.com"),
            ("john.\"d x\"@example.com", "\"john.d x\"@example.com"),
            ("\"a\\\"b\"@example.com", "\"a\\\"b\"@example.com"),
            ("\"a\\\\b\"@example.com", "\"a\\\\b\"@example.com"),
            ("\"a\\b\"@example.com", "ab@example.com"),
            ("\"a@b\"@example.com", "\"a@b\"@example.com"),
            ("\"foo.\"@example.com", "\"foo.\"@example.com"),
            ("foo.@example.com", "\"foo.\"@example.com"),
            ("a..b@example.com", "\"a..b\"@example.com"),
            (".a@example.com", "\".a\"@example.com"),
            ("\"(x)\"@example.com", "\"(x)\"@example.com"),
            ("\"x-y\"", "x-y"),
            // `@` in the local part: split at the last one, as Postfix does
            ("a@b@example.com", "\"a@b\"@example.com"),
            // source routes are dropped
            ("<@a,@b:user@d>", "user@d"),
            ("<@a:user@d>", "user@d"),
            ("@a,@b:user@d", "user@d"),
            ("<@[192.0.2.1],@b.c:user@d>", "user@d"),
            ("<@a:\"x y\"@d>", "\"x y\"@d"),
            // RFC 822 comments and phrases (strict_rfc821_envelopes = no)
            ("John Doe <jd@example.com>", "jd@example.com"),
            ("\"Doe, John\" <jd@example.com>", "jd@example.com"),
            ("jd@example.com (John Doe)", "jd@example.com"),
            ("(c)jd(c)@(c)example.com(c)", "jd@example.com"),
            ("<jd@example.com> (trailing comment)", "jd@example.com"),
            ("john . doe @ example . com", "john.doe@example.com"),
            // address literals
            ("u@[192.0.2.1]", "u@[192.0.2.1]"),
            ("u@[IPv6:2001:db8::1]", "u@[IPv6:2001:db8::1]"),
            ("u@[ipv6:::1]", "u@[ipv6:::1]"),
            ("u@[x-tag:content]", "u@[x-tag:content]"),
            // the minus rule applies to the first character only
            ("a-b@example.com", "a-b@example.com"),
        ];
        for (input, want) in cases {
            assert_eq!(
                parse_envelope(input, false).as_deref(),
                Ok(*want),
                "input {input:?}"
            );
        }
    }

    #[test]
    fn envelope_utf8() {
        let cases: &[(&str, bool, Result<&str, AddressError>)] = &[
            ("jörg@example.com", false, Err(AddressError::EightBit)),
            ("jörg@example.com", true, Ok("jörg@example.com")),
            ("user@bücher.example", true, Ok("user@bücher.example")),
            ("user@bücher.example", false, Err(AddressError::EightBit)),
            ("\"jö rg\"@example.com", true, Ok("\"jö rg\"@example.com")),
            ("u@x (kommentär)", false, Err(AddressError::EightBit)),
            ("用户@例子.广告", true, Ok("用户@例子.广告")),
            (
                "a\u{85}b@example.com",
                true,
                Err(AddressError::ControlCharacter('\u{85}')),
            ),
            ("a\u{85}b@example.com", false, Err(AddressError::EightBit)),
            (
                "u@[1.2.3.ü]",
                true,
                Err(AddressError::InvalidDomain(
                    "bad character in address literal",
                )),
            ),
        ];
        for (input, utf8, want) in cases {
            assert_eq!(
                parse_envelope(input, *utf8),
                want.clone().map(str::to_owned),
                "input {input:?} utf8 {utf8}"
            );
        }
    }

    #[test]
    fn envelope_rejects() {
        use AddressError::*;
        let long_local = format!("{}@example.com", "a".repeat(65));
        let max_local = format!("{}@example.com", "a".repeat(64));
        let quoted_long = format!("\"{} \"@example.com", "a".repeat(62));
        let long_domain = format!("u@{}", vec!["a".repeat(63); 5].join("."));
        let long_input = format!("u@{}", "a".repeat(2047));
        let cases: Vec<(&str, AddressError)> = vec![
            ("user\0@example.com", Nul),
            ("user\r@example.com", LineBreak),
            ("user\n@example.com", LineBreak),
            ("<user@example.com>\r\n", LineBreak),
            ("user\t@example.com", ControlCharacter('\t')),
            ("user\x1b@example.com", ControlCharacter('\x1b')),
            ("user\x7f@example.com", ControlCharacter('\x7f')),
            ("\"a\x01\"@example.com", ControlCharacter('\x01')),
            ("jörg@example.com", EightBit),
            ("\"unterminated@example.com", UnbalancedQuote),
            ("<\"a>@example.com", UnbalancedQuote),
            ("<user@example.com", UnbalancedBracket('<')),
            ("user@example.com>", UnbalancedBracket('>')),
            ("><user@example.com", UnbalancedBracket('>')),
            ("<<user@example.com>", UnbalancedBracket('<')),
            ("<<user@example.com>>", UnexpectedCharacter('<')),
            ("user(comment@example.com", UnbalancedBracket('(')),
            ("user)@example.com", UnbalancedBracket(')')),
            ("u@[1.2.3.4", UnbalancedBracket('[')),
            ("u@1.2.3.4]", UnbalancedBracket(']')),
            ("-user@example.com", LeadingDash),
            ("-user", LeadingDash),
            ("<-user@example.com>", LeadingDash),
            ("\"-user\"@example.com", LeadingDash),
            ("<@a:-user@example.com>", LeadingDash),
            ("@example.com", EmptyLocalPart),
            ("<@example.com>", EmptyLocalPart),
            ("\"\"@example.com", EmptyLocalPart),
            ("user@", EmptyDomain),
            ("<user@>", EmptyDomain),
            ("user@.", InvalidDomain("empty domain name")),
            ("user@a..b", InvalidDomain("empty label")),
            ("user@.a", InvalidDomain("empty label")),
            ("user@-a.example", InvalidDomain("misplaced hyphen")),
            ("user@a-.example", InvalidDomain("misplaced hyphen")),
            ("user@a!b", InvalidDomain("bad character in host name")),
            ("user@a\"b\"", InvalidDomain("quoted string in domain")),
            ("u@[]", InvalidDomain("empty address literal")),
            ("u@[1.2.3]", InvalidDomain("bad IPv4 address literal")),
            (
                "u@[IPv6:1.2.3.4]",
                InvalidDomain("bad IPv6 address literal"),
            ),
            ("u@[:x]", InvalidDomain("bad general address literal")),
            ("u@[a b]", InvalidDomain("bad character in address literal")),
            (
                "u@[a\\]b]",
                InvalidDomain("bad character in address literal"),
            ),
            ("u@[1.2.3.4].com", TrailingText),
            ("user@example.com junk", TrailingText),
            ("<user@example.com> junk", TrailingText),
            ("<user@example.com> SIZE=100", TrailingText),
            ("john doe@example.com", WordsWithoutDot),
            ("john\"doe\"@example.com", WordsWithoutDot),
            ("a@x, b@y", MultipleAddresses),
            ("<a@x, b@y>", MultipleAddresses),
            ("group: a@x;", UnexpectedCharacter(':')),
            ("a;b@x", UnexpectedCharacter(';')),
            ("a\\b@x", UnexpectedCharacter('\\')),
            ("[x]@example.com", UnexpectedCharacter('[')),
            ("a@b:c", UnexpectedCharacter(':')),
            ("Jo@hn <j@x>", UnexpectedCharacter('@')),
            ("<@a,user@d>", BadRoute),
            ("<@a:>", BadRoute),
            ("<@:u@d>", BadRoute),
            ("<@a,,@b:u@d>", BadRoute),
            ("<@a@b:u@d>", BadRoute),
            (&long_local, LocalPartTooLong(65)),
            (&quoted_long, LocalPartTooLong(65)),
            (&long_domain, DomainTooLong(319)),
            (&long_input, TooLong(2049)),
        ];
        for (input, want) in cases {
            assert_eq!(parse_envelope(input, false), Err(want), "input {input:?}");
        }
        assert_eq!(parse_envelope(&max_local, false), Ok(max_local.clone()));
    }

    #[test]
    fn error_messages_name_the_problem() {
        let cases = [
            (AddressError::LeadingDash, "address begins with '-'"),
            (
                AddressError::ControlCharacter('\t'),
                "address contains control character U+0009",
            ),
            (
                AddressError::ControlCharacter('\u{85}'),
                "address contains control character U+0085",
            ),
            (
                AddressError::UnbalancedBracket('<'),
                "address has an unbalanced '<'",
            ),
            (
                AddressError::TooLong(3000),
                "address is 3000 bytes long; the limit is 2048",
            ),
            (
                AddressError::InvalidDomain("empty label"),
                "invalid domain: empty label",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    #[test]
    fn split_at_last_unquoted_at() {
        let cases: &[(&str, (&str, Option<&str>))] = &[
            ("", ("", None)),
            ("user", ("user", None)),
            ("user@example.com", ("user", Some("example.com"))),
            ("user@", ("user", Some(""))),
            ("\"a@b\"@c", ("\"a@b\"", Some("c"))),
            ("\"a@b\"", ("\"a@b\"", None)),
            ("\"a\\\"@b\"@c", ("\"a\\\"@b\"", Some("c"))),
            ("a@b@c", ("a@b", Some("c"))),
            ("\"unterminated@x", ("\"unterminated@x", None)),
            ("jörg@bücher.de", ("jörg", Some("bücher.de"))),
        ];
        for (input, want) in cases {
            assert_eq!(split(input), *want, "input {input:?}");
        }
    }

    #[test]
    fn quoting() {
        // (unquoted, external)
        let cases: &[(&str, &str)] = &[
            ("", "\"\""),
            ("john", "john"),
            ("john.doe", "john.doe"),
            ("john doe", "\"john doe\""),
            ("john.", "\"john.\""),
            (".john", "\".john\""),
            ("a..b", "\"a..b\""),
            ("a\"b", "\"a\\\"b\""),
            ("a\\b", "\"a\\\\b\""),
            ("a@b", "\"a@b\""),
            ("a,b", "\"a,b\""),
            ("(x)", "\"(x)\""),
            ("[x]", "\"[x]\""),
            ("<x>", "\"<x>\""),
            ("a:b;c", "\"a:b;c\""),
            ("jörg", "jörg"),
            ("!#$%&'*+-/=?^_`{|}~", "!#$%&'*+-/=?^_`{|}~"),
        ];
        for (bare, external) in cases {
            assert_eq!(quote_local(bare), *external, "quote {bare:?}");
            assert_eq!(unquote_local(external), *bare, "unquote {external:?}");
        }
        let unquote_only = [
            ("john.\"d x\"", "john.d x"),
            ("\"john\".\"doe\"", "john.doe"),
            ("a\\b", "a\\b"),
            ("\"a\\", "a"),
        ];
        for (external, bare) in unquote_only {
            assert_eq!(unquote_local(external), bare, "unquote {external:?}");
        }
    }

    #[test]
    fn normalize() {
        let cases = [
            ("", ""),
            ("user", "user"),
            ("User@Example.COM", "User@example.com"),
            ("User@Example.COM.", "User@example.com"),
            ("user@example.com..", "user@example.com."),
            ("\"john\"@Example.com", "john@example.com"),
            ("\"John Doe\"@EXAMPLE.com", "\"John Doe\"@example.com"),
            ("u@[IPv6:2001:DB8::1]", "u@[ipv6:2001:db8::1]"),
            ("u@BÜCHER.example", "u@bücher.example"),
        ];
        for (input, want) in cases {
            assert_eq!(normalize_domain(input), want, "input {input:?}");
        }
    }

    proptest! {
        #[test]
        fn quote_unquote_round_trip(s in "\\PC*") {
            prop_assert_eq!(unquote_local(&quote_local(&s)), s);
        }

        #[test]
        fn quote_unquote_round_trip_specials(s in "[a-z.\"\\\\@ ()<>,;:\\[\\]-]{0,20}") {
            prop_assert_eq!(unquote_local(&quote_local(&s)), s);
        }

        #[test]
        fn parse_envelope_never_panics_and_is_idempotent(s in "\\PC{0,80}", utf8: bool) {
            if let Ok(a) = parse_envelope(&s, utf8) {
                prop_assert_eq!(parse_envelope(&a, utf8), Ok(a.clone()));
                prop_assert_eq!(normalize_domain(&normalize_domain(&a)), normalize_domain(&a));
            }
        }

        #[test]
        fn parse_envelope_address_shaped(
            s in "[<\"]?[a-z.\"@ ,:\\-]{0,12}(@[a-z.\\-\\[\\]0-9:]{0,12})?[>\"]?",
            utf8: bool,
        ) {
            if let Ok(a) = parse_envelope(&s, utf8) {
                prop_assert_eq!(parse_envelope(&a, utf8), Ok(a.clone()));
                if !a.is_empty() {
                    let (local, _) = split(&a);
                    prop_assert_eq!(quote_local(&unquote_local(local)), local.to_owned());
                }
            }
        }

        #[test]
        fn split_never_panics(s in "\\PC*") {
            let (l, d) = split(&s);
            prop_assert!(l.len() + d.map_or(0, |d| d.len() + 1) == s.len());
        }
    }
}
