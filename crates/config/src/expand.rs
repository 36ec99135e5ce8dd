//! `$name` expansion, as postconf(5) "A parameter value may refer to other
//! parameters" describes it.
//!
//! Owns the expression language: `$name`, `${name}`, `$(name)`,
//! `${name?value}`, `${name?{value}}`, `${name:value}`, `${name:{value}}`,
//! `${name?{value1}:{value2}}` (`{}` required for value1, optional for
//! value2), relational expressions `${{a} == {b} ? ... }` with `==`, `!=`,
//! `<`, `<=`, `>=`, `>` (numeric when both sides are all digits) and their
//! `...level` forms that compare compatibility levels (`3.10` > `3.9`), and
//! `$$` for a literal `$`. A relational expression with neither `?` nor `:`
//! yields `true` or the empty string, as Postfix's does.
//!
//! Invariants: a name is `[a-zA-Z0-9_]+`; an undefined name expands to the
//! empty string; each `{value}` is itself expanded; unbraced values run to
//! the closing bracket and keep their whitespace, while whitespace around a
//! `{value}` is ignored. Recursion is bounded: a name met again while it is
//! being expanded is an [`ExpandError::Loop`], and nesting deeper than
//! [`MAX_DEPTH`] is [`ExpandError::TooDeep`], so no input can overflow the
//! stack.
//!
//! Failure: every syntax problem is an [`ExpandError`]; nothing panics.

use crate::error::ExpandError;

/// The deepest nesting of expressions and parameter references followed.
pub(crate) const MAX_DEPTH: usize = 100;

/// Supplies the value of a name during expansion.
pub(crate) trait Resolve {
    /// The value of `name`, ready to insert (already expanded when the
    /// resolver expands recursively), or `None` when `name` is undefined.
    fn resolve(&mut self, name: &str, depth: usize) -> Result<Option<String>, ExpandError>;
}

/// Expands `template`, looking names up with `lookup`; the value `lookup`
/// returns is itself expanded (recursively, as `main.cf` values are).
///
/// A name that refers back to itself is an [`ExpandError::Loop`]. Use
/// [`expand_verbatim`] when the looked-up values are data that must be
/// inserted as they are.
pub fn expand(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut resolver = Recursive {
        lookup,
        stack: Vec::new(),
    };
    expand_text(template, &mut resolver, 0)
}

/// Expands `template`, inserting the values `lookup` returns verbatim.
///
/// This is how local(8) expands `forward_path`, `mailbox_command` and the
/// like with `$user`, `$home`, `$extension`...: the template's own
/// expressions are evaluated, but a `$` inside a looked-up value (a home
/// directory, an address extension) is never interpreted.
pub fn expand_verbatim(
    template: &str,
    lookup: &dyn Fn(&str) -> Option<String>,
) -> Result<String, ExpandError> {
    let mut resolver = Verbatim { lookup };
    expand_text(template, &mut resolver, 0)
}

struct Recursive<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
    stack: Vec<String>,
}

impl Resolve for Recursive<'_> {
    fn resolve(&mut self, name: &str, depth: usize) -> Result<Option<String>, ExpandError> {
        if self.stack.iter().any(|n| n == name) {
            let mut chain = self.stack.clone();
            chain.push(name.to_string());
            return Err(ExpandError::Loop { chain });
        }
        let Some(raw) = (self.lookup)(name) else {
            return Ok(None);
        };
        self.stack.push(name.to_string());
        let result = expand_text(&raw, self, depth + 1);
        self.stack.pop();
        result.map(Some)
    }
}

struct Verbatim<'a> {
    lookup: &'a dyn Fn(&str) -> Option<String>,
}

impl Resolve for Verbatim<'_> {
    fn resolve(&mut self, name: &str, _depth: usize) -> Result<Option<String>, ExpandError> {
        Ok((self.lookup)(name))
    }
}

/// Whether `b` may appear in a parameter name.
pub(crate) fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// Postfix's ISSPACE: the C locale's whitespace.
pub(crate) fn is_space(b: u8) -> bool {
    matches!(b, b' ' | b'\t' | b'\n' | b'\x0b' | b'\x0c' | b'\r')
}

/// Expands every expression in `t`.
pub(crate) fn expand_text(
    t: &str,
    r: &mut dyn Resolve,
    depth: usize,
) -> Result<String, ExpandError> {
    if depth > MAX_DEPTH {
        return Err(ExpandError::TooDeep { limit: MAX_DEPTH });
    }
    let b = t.as_bytes();
    let mut out = String::with_capacity(t.len());
    let mut i = 0;
    let mut literal_from = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        out.push_str(&t[literal_from..i]);
        match b.get(i + 1).copied() {
            Some(b'$') => {
                out.push('$');
                i += 2;
            }
            Some(open @ (b'{' | b'(')) => {
                let close = if open == b'{' { b'}' } else { b')' };
                let Some(end) = find_close(b, i + 2, open, close) else {
                    return Err(ExpandError::Truncated {
                        context: t[i..].to_string(),
                    });
                };
                out.push_str(&expand_bracketed(&t[i + 2..end], r, depth)?);
                i = end + 1;
            }
            Some(c) if is_name_byte(c) => {
                let start = i + 1;
                let mut j = start;
                while j < b.len() && is_name_byte(b[j]) {
                    j += 1;
                }
                if let Some(v) = r.resolve(&t[start..j], depth + 1)? {
                    out.push_str(&v);
                }
                i = j;
            }
            _ => {
                return Err(ExpandError::EmptyName {
                    context: t.to_string(),
                })
            }
        }
        literal_from = i;
    }
    out.push_str(&t[literal_from..]);
    Ok(out)
}

/// The index of the `close` byte that balances an `open` already consumed
/// just before `from`.
fn find_close(b: &[u8], from: usize, open: u8, close: u8) -> Option<usize> {
    let mut level = 0usize;
    for (k, &c) in b.iter().enumerate().skip(from) {
        if c == open {
            level += 1;
        } else if c == close {
            if level == 0 {
                return Some(k);
            }
            level -= 1;
        }
    }
    None
}

fn skip_ws(b: &[u8], mut p: usize) -> usize {
    while p < b.len() && is_space(b[p]) {
        p += 1;
    }
    p
}

/// `...before>>>after` around byte offset `p` of `s` (`p` is at an ASCII
/// byte or the end, so it is a char boundary).
fn at(s: &str, p: usize) -> String {
    let before = &s[..p];
    let start = before
        .char_indices()
        .rev()
        .nth(9)
        .map(|(k, _)| k)
        .unwrap_or(0);
    format!("...{}>>>{}", &before[start..], &s[p..])
}

/// Parses `{...}` starting at `p` (which holds `{`): the content and the
/// offset just past the closing `}`.
fn braced(s: &str, p: usize) -> Result<(&str, usize), ExpandError> {
    let b = s.as_bytes();
    match find_close(b, p + 1, b'{', b'}') {
        Some(end) => Ok((&s[p + 1..end], end + 1)),
        None => Err(ExpandError::Truncated {
            context: s[p..].to_string(),
        }),
    }
}

/// Evaluates the inside of `${...}` / `$(...)`.
fn expand_bracketed(s: &str, r: &mut dyn Resolve, depth: usize) -> Result<String, ExpandError> {
    let b = s.as_bytes();
    let p = skip_ws(b, 0);
    if b.get(p) == Some(&b'{') {
        return relational(s, p, r, depth);
    }
    let start = p;
    let mut q = p;
    while q < b.len() && is_name_byte(b[q]) {
        q += 1;
    }
    if q == start {
        return Err(ExpandError::EmptyName {
            context: s.to_string(),
        });
    }
    let name = &s[start..q];
    let p = skip_ws(b, q);
    if p == b.len() {
        return Ok(r.resolve(name, depth + 1)?.unwrap_or_default());
    }
    if b[p] != b'?' && b[p] != b':' {
        return Err(ExpandError::NameSyntax { context: at(s, q) });
    }
    let non_empty = r.resolve(name, depth + 1)?.is_some_and(|v| !v.is_empty());
    conditional(s, p, non_empty, r, depth)
}

/// Evaluates `?value`, `?{value}`, `?{value1}:value2`, `:value`,
/// `:{value}` at `p` (which holds `?` or `:`), given the condition.
fn conditional(
    s: &str,
    p: usize,
    cond: bool,
    r: &mut dyn Resolve,
    depth: usize,
) -> Result<String, ExpandError> {
    let b = s.as_bytes();
    let question = b[p] == b'?';
    let after = p + 1;
    let q = skip_ws(b, after);
    if b.get(q) != Some(&b'{') {
        // Unbraced: everything up to the closing bracket, whitespace kept.
        let value = &s[after..];
        return if question == cond {
            expand_text(value, r, depth + 1)
        } else {
            Ok(String::new())
        };
    }
    let (first, q) = braced(s, q)?;
    let q = skip_ws(b, q);
    if q == b.len() {
        return if question == cond {
            expand_text(first, r, depth + 1)
        } else {
            Ok(String::new())
        };
    }
    if !question {
        return Err(ExpandError::UnexpectedInput { context: at(s, q) });
    }
    if b[q] != b':' {
        return Err(ExpandError::ColonExpected { context: at(s, q) });
    }
    let after_colon = q + 1;
    let q = skip_ws(b, after_colon);
    let second = if b.get(q) == Some(&b'{') {
        let (second, end) = braced(s, q)?;
        let end = skip_ws(b, end);
        if end != b.len() {
            return Err(ExpandError::UnexpectedInput {
                context: at(s, end),
            });
        }
        second
    } else {
        &s[after_colon..]
    };
    expand_text(if cond { first } else { second }, r, depth + 1)
}

#[derive(Clone, Copy)]
enum Op {
    Eq,
    Ne,
    Lt,
    Le,
    Ge,
    Gt,
}

/// Evaluates `{a} op {b}` at `p` (which holds `{`), then the optional
/// `?`/`:` tail.
fn relational(s: &str, p: usize, r: &mut dyn Resolve, depth: usize) -> Result<String, ExpandError> {
    let b = s.as_bytes();
    let (left, p) = braced(s, p)?;
    let p = skip_ws(b, p);
    let mut q = p;
    while q < b.len() && matches!(b[q], b'=' | b'!' | b'<' | b'>') {
        q += 1;
    }
    let op = match &s[p..q] {
        "==" => Op::Eq,
        "!=" => Op::Ne,
        "<" => Op::Lt,
        "<=" => Op::Le,
        ">=" => Op::Ge,
        ">" => Op::Gt,
        _ => return Err(ExpandError::OperatorExpected { context: at(s, p) }),
    };
    let level = s[q..].starts_with("level");
    if level {
        q += "level".len();
    }
    if q < b.len() && !is_space(b[q]) && b[q] != b'{' {
        return Err(ExpandError::OperatorSuffix { context: at(s, q) });
    }
    let q = skip_ws(b, q);
    if b.get(q) != Some(&b'{') {
        return Err(ExpandError::BraceExpected { context: at(s, q) });
    }
    let (right, q) = braced(s, q)?;
    let left = expand_text(left, r, depth + 1)?;
    let right = expand_text(right, r, depth + 1)?;
    let ordering = if level {
        parse_level(&left)?.cmp(&parse_level(&right)?)
    } else {
        compare_values(&left, &right)
    };
    let cond = match op {
        Op::Eq => ordering.is_eq(),
        Op::Ne => ordering.is_ne(),
        Op::Lt => ordering.is_lt(),
        Op::Le => ordering.is_le(),
        Op::Ge => ordering.is_ge(),
        Op::Gt => ordering.is_gt(),
    };
    let q = skip_ws(b, q);
    if q == b.len() {
        return Ok(if cond {
            "true".to_string()
        } else {
            String::new()
        });
    }
    if b[q] != b'?' && b[q] != b':' {
        return Err(ExpandError::UnexpectedInput { context: at(s, q) });
    }
    conditional(s, q, cond, r, depth)
}

/// Numeric comparison when both sides are all digits, else byte order.
fn compare_values(a: &str, b: &str) -> std::cmp::Ordering {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|c| c.is_ascii_digit());
    if digits(a) && digits(b) {
        let a = a.trim_start_matches('0');
        let b = b.trim_start_matches('0');
        a.len().cmp(&b.len()).then_with(|| a.cmp(b))
    } else {
        a.cmp(b)
    }
}

/// A compatibility level `major[.minor[.patch]]`, missing parts zero.
pub(crate) fn parse_level(v: &str) -> Result<(u64, u64, u64), ExpandError> {
    let bad = || ExpandError::BadLevel {
        value: v.to_string(),
    };
    let mut parts = [0u64; 3];
    for (count, piece) in v.split('.').enumerate() {
        if count == 3 || piece.is_empty() || !piece.bytes().all(|c| c.is_ascii_digit()) {
            return Err(bad());
        }
        parts[count] = piece.parse().map_err(|_| bad())?;
    }
    Ok((parts[0], parts[1], parts[2]))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn vars() -> HashMap<&'static str, &'static str> {
        HashMap::from([
            ("myhostname", "vm.localdomain"),
            ("mydomain", "localdomain"),
            ("empty", ""),
            ("ref", "$myhostname"),
            ("a", "$b"),
            ("b", "$a"),
            ("self", "x${self}"),
            ("dollar", "cost $$5"),
            ("2bounce_notice_recipient", "postmaster"),
            ("level", "3.6"),
            ("raw", "$home"),
        ])
    }

    fn run(t: &str) -> Result<String, ExpandError> {
        let v = vars();
        expand(t, &|n| v.get(n).map(|s| s.to_string()))
    }

    #[test]
    fn expands_every_form() {
        let cases = [
            ("plain text", "plain text"),
            ("$myhostname", "vm.localdomain"),
            ("${myhostname}", "vm.localdomain"),
            ("$(myhostname)", "vm.localdomain"),
            ("x$myhostname.y", "xvm.localdomain.y"),
            ("$2bounce_notice_recipient/x", "postmaster/x"),
            ("$nosuch", ""),
            ("<${nosuch}>", "<>"),
            ("$$", "$"),
            ("$$myhostname", "$myhostname"),
            ("$dollar", "cost $5"),
            ("$ref", "vm.localdomain"),
            ("${myhostname?yes}", "yes"),
            ("${empty?yes}", ""),
            ("${nosuch?yes}", ""),
            ("${myhostname:no}", ""),
            ("${empty:no}", "no"),
            ("${nosuch:no}", "no"),
            ("${myhostname?{yes}}", "yes"),
            ("${nosuch:{no}}", "no"),
            ("x${myhostname?{ a b }}y", "x a b y"),
            ("x${myhostname? v }y", "x v y"),
            ("x${nosuch: v }y", "x v y"),
            ("${myhostname?v1:v2}", "v1:v2"),
            ("${myhostname:v1?v2}", ""),
            ("${myhostname?{v1}:{v2}}", "v1"),
            ("${nosuch?{v1}:{v2}}", "v2"),
            ("${nosuch?{v1}:v2}", "v2"),
            ("x${nosuch?{v1} : v2 }y", "x v2 y"),
            ("${ myhostname ? { v1 } : {v2} }", " v1 "),
            ("${nosuch:$myhostname}", "vm.localdomain"),
            ("${nosuch:{${nosuch:{x}}}}", "x"),
            ("$(nosuch:{$(nosuch:z)})", "z"),
            ("${myhostname}}", "vm.localdomain}"),
            ("${{a}=={a}}", "true"),
            ("${{a}=={b}}", ""),
            ("${{a}=={a}:x}", ""),
            ("${{1}<{2}?x}", "x"),
            ("${{10}<{9}?x:y}", ""),
            ("${{b}<{a}?{x}:{y}}", "y"),
            ("${{02}=={2}?{eq}:{ne}}", "eq"),
            ("${{2}>{10}?{gt}:{le}}", "le"),
            ("${{1}<={1}?{le}}", "le"),
            ("${{x}!={y}?{ne}}", "ne"),
            ("${{3.10}<level{3.9}?{lt}:{ge}}", "ge"),
            ("${{3.6.1}>=level{3.6}?{y}:{n}}", "y"),
            ("${{3}==level{3.0.0}?{y}:{n}}", "y"),
            ("${{$level} <level {2} ? {subnet} : {host}}", "host"),
            ("${{$level} <level {3.6} ? {md5} : {sha256}}", "sha256"),
            ("${ {a}=={a} ? {t} }", "t"),
            ("${{$myhostname}=={vm.localdomain}?{yes}}", "yes"),
        ];
        for (t, want) in cases {
            assert_eq!(run(t).as_deref(), Ok(want), "template {t:?}");
        }
    }

    #[test]
    fn reports_syntax_errors() {
        type Check = fn(&ExpandError) -> bool;
        let cases: [(&str, Check); 14] = [
            ("$", |e| matches!(e, ExpandError::EmptyName { .. })),
            ("a $ b", |e| matches!(e, ExpandError::EmptyName { .. })),
            ("$-x", |e| matches!(e, ExpandError::EmptyName { .. })),
            ("${}", |e| matches!(e, ExpandError::EmptyName { .. })),
            ("${myhostname", |e| {
                matches!(e, ExpandError::Truncated { .. })
            }),
            ("${myhostname?{a}", |e| {
                matches!(e, ExpandError::Truncated { .. })
            }),
            ("$(zz?{)", |e| matches!(e, ExpandError::Truncated { .. })),
            ("${myh-x}", |e| matches!(e, ExpandError::NameSyntax { .. })),
            ("${myhostname?{v1}x}", |e| {
                matches!(e, ExpandError::ColonExpected { .. })
            }),
            ("${myhostname:{a}{b}}", |e| {
                matches!(e, ExpandError::UnexpectedInput { .. })
            }),
            ("${{a}==a?x}", |e| {
                matches!(e, ExpandError::OperatorSuffix { .. })
            }),
            ("${{a} ~ {b}?x}", |e| {
                matches!(e, ExpandError::OperatorExpected { .. })
            }),
            ("${{a}{b}}", |e| {
                matches!(e, ExpandError::OperatorExpected { .. })
            }),
            ("${{a}<level{3}?x}", |e| {
                matches!(e, ExpandError::BadLevel { .. })
            }),
        ];
        for (t, check) in cases {
            match run(t) {
                Err(e) => assert!(check(&e), "template {t:?} gave {e:?}"),
                Ok(v) => panic!("template {t:?} expanded to {v:?}"),
            }
        }
    }

    #[test]
    fn catches_loops_without_overflowing() {
        let cases = [("$a", "a -> b -> a"), ("$self", "self -> self")];
        for (t, chain) in cases {
            match run(t) {
                Err(ExpandError::Loop { chain: got }) => assert_eq!(got.join(" -> "), chain),
                other => panic!("{t:?}: {other:?}"),
            }
        }
        let deep = "${myhostname?{".repeat(5000) + &"}}".repeat(5000);
        assert!(matches!(run(&deep), Err(ExpandError::TooDeep { .. })));
        let chain = |n: &str| {
            n.strip_prefix('n')
                .and_then(|k| k.parse::<u32>().ok())
                .map(|k| format!("$n{}", k + 1))
        };
        assert!(matches!(
            expand("$n0", &chain),
            Err(ExpandError::TooDeep { .. })
        ));
    }

    #[test]
    fn verbatim_does_not_interpret_values() {
        let v = vars();
        let got = expand_verbatim("$raw/${raw?{x}}$$", &|n| v.get(n).map(|s| s.to_string()));
        assert_eq!(got.as_deref(), Ok("$home/x$"));
    }

    #[test]
    fn levels() {
        let cases = [
            ("0", Some((0, 0, 0))),
            ("3.6", Some((3, 6, 0))),
            ("3.10.2", Some((3, 10, 2))),
            ("3.", None),
            ("a", None),
            ("1.2.3.4", None),
            ("", None),
        ];
        for (v, want) in cases {
            assert_eq!(parse_level(v).ok(), want, "{v:?}");
        }
    }
}
