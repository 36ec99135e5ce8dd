//! Conversions of expanded parameter values to the types Postern reads.
//!
//! Owns Postfix's value syntaxes: booleans (`yes`/`no`, any case), integers
//! (`strtol` rules, within a C `int` for Int and a `long` for Size), time
//! values (an integral value plus an optional one-letter unit `s m h d w`,
//! postconf(5); combinations such as `1h30m` are not accepted, as Postfix
//! does not accept them) and lists (separated by commas and/or whitespace,
//! with `{ ... }` groups kept as one item, as in `inline:{ a=b, c=d }`).
//!
//! Failure: the parsers return `None` for anything Postfix would reject;
//! callers word the error. Nothing here panics.

use crate::expand::is_space;

/// `yes`/`no` in any case (Postfix compares with `strcasecmp`).
pub(crate) fn parse_bool(v: &str) -> Option<bool> {
    if v.eq_ignore_ascii_case("yes") {
        Some(true)
    } else if v.eq_ignore_ascii_case("no") {
        Some(false)
    } else {
        None
    }
}

/// Splits `v` like `strtol`: leading whitespace, an optional sign, digits.
/// Returns the value (saturated to detect overflow) and the rest.
fn strtol(v: &str) -> Option<(i128, &str)> {
    let b = v.as_bytes();
    let mut p = 0;
    while p < b.len() && is_space(b[p]) {
        p += 1;
    }
    let negative = match b.get(p) {
        Some(b'-') => {
            p += 1;
            true
        }
        Some(b'+') => {
            p += 1;
            false
        }
        _ => false,
    };
    let start = p;
    let mut n: i128 = 0;
    while p < b.len() && b[p].is_ascii_digit() {
        n = n.saturating_mul(10).saturating_add(i128::from(b[p] - b'0'));
        p += 1;
    }
    if p == start {
        return None;
    }
    Some((if negative { -n } else { n }, &v[p..]))
}

/// An integer that fits a C `int`, the whole value (Postfix `get_mail_conf_int`).
pub(crate) fn parse_int(v: &str) -> Option<i64> {
    match strtol(v)? {
        (n, "") => i32::try_from(n).ok().map(i64::from),
        _ => None,
    }
}

/// An integer that fits a C `long`, the whole value (Postfix `get_mail_conf_long`).
pub(crate) fn parse_long(v: &str) -> Option<i64> {
    match strtol(v)? {
        (n, "") => i64::try_from(n).ok(),
        _ => None,
    }
}

/// A time value in seconds: a non-negative integral value plus an optional
/// one-letter unit (`s m h d w`), `default_unit` when there is none. Like
/// Postfix's `conv_time`, the result must stay below `INT_MAX` seconds.
pub(crate) fn parse_time(v: &str, default_unit: u8) -> Option<u64> {
    let (n, rest) = strtol(v)?;
    if n < 0 || n > i128::from(i32::MAX) {
        return None;
    }
    let unit = match rest.as_bytes() {
        [] => default_unit,
        [u] => *u,
        _ => return None,
    };
    let multiplier: i128 = match unit {
        b's' => 1,
        b'm' => 60,
        b'h' => 3600,
        b'd' => 86_400,
        b'w' => 604_800,
        _ => return None,
    };
    if multiplier > 1 && n >= i128::from(i32::MAX) / multiplier {
        return None;
    }
    u64::try_from(n * multiplier).ok()
}

/// Splits a Postfix list: items separated by commas and/or whitespace,
/// empty items dropped, a `{ ... }` group (possibly nested, possibly after a
/// prefix as in `inline:{ a=b, c=d }`) kept whole with its braces.
pub fn split_list(v: &str) -> Vec<String> {
    let b = v.as_bytes();
    let is_sep = |c: u8| c == b',' || is_space(c);
    let mut items = Vec::new();
    let mut p = 0;
    while p < b.len() {
        while p < b.len() && is_sep(b[p]) {
            p += 1;
        }
        if p == b.len() {
            break;
        }
        let start = p;
        let mut level = 0usize;
        while p < b.len() {
            match b[p] {
                b'{' => level += 1,
                b'}' => level = level.saturating_sub(1),
                c if level == 0 && is_sep(c) => break,
                _ => {}
            }
            p += 1;
        }
        items.push(v[start..p].to_string());
    }
    items
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn booleans() {
        let cases = [
            ("yes", Some(true)),
            ("YES", Some(true)),
            ("No", Some(false)),
            ("true", None),
            ("y", None),
            ("", None),
            ("yes ", None),
        ];
        for (v, want) in cases {
            assert_eq!(parse_bool(v), want, "{v:?}");
        }
    }

    #[test]
    fn integers() {
        let cases = [
            ("0", Some(0)),
            ("50", Some(50)),
            ("-1", Some(-1)),
            ("+7", Some(7)),
            (" 7", Some(7)),
            ("2147483647", Some(2_147_483_647)),
            ("2147483648", None),
            ("7 ", None),
            ("7x", None),
            ("", None),
            ("-", None),
            ("abc", None),
            ("99999999999999999999999999999999999999999999", None),
        ];
        for (v, want) in cases {
            assert_eq!(parse_int(v), want, "{v:?}");
        }
        assert_eq!(parse_long("10240000000"), Some(10_240_000_000));
        assert_eq!(parse_long("9223372036854775808"), None);
    }

    #[test]
    fn times() {
        let cases = [
            ("300s", b's', Some(300)),
            ("300", b's', Some(300)),
            ("5", b'd', Some(432_000)),
            ("5d", b's', Some(432_000)),
            ("0h", b'h', Some(0)),
            ("2w", b's', Some(1_209_600)),
            ("10m", b's', Some(600)),
            ("1h30m", b's', None),
            ("5 d", b's', None),
            ("5D", b's', None),
            ("-5s", b's', None),
            ("abc", b's', None),
            ("", b's', None),
            ("s", b's', None),
            ("2147483647", b's', Some(2_147_483_647)),
            ("3549w", b's', Some(3549 * 604_800)),
            ("3550w", b's', None),
        ];
        for (v, unit, want) in cases {
            assert_eq!(parse_time(v, unit), want, "{v:?}");
        }
    }

    #[test]
    fn lists() {
        let cases: [(&str, &[&str]); 9] = [
            ("", &[]),
            ("a", &["a"]),
            ("a, b c,,d", &["a", "b", "c", "d"]),
            (
                " $myhostname, localhost.$mydomain, localhost ",
                &["$myhostname", "localhost.$mydomain", "localhost"],
            ),
            (
                "vm, localhost.localdomain, , localhost",
                &["vm", "localhost.localdomain", "localhost"],
            ),
            (
                "inline:{ a=b, c=d }, hash:/etc/x",
                &["inline:{ a=b, c=d }", "hash:/etc/x"],
            ),
            ("{ a b } c", &["{ a b }", "c"]),
            (
                "pipemap:{inline:{a=b}, static:{x y}} z",
                &["pipemap:{inline:{a=b}, static:{x y}}", "z"],
            ),
            ("x:{ unclosed, y", &["x:{ unclosed, y"]),
        ];
        for (v, want) in cases {
            assert_eq!(split_list(v), want, "{v:?}");
        }
    }
}
