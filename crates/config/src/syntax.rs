//! The line structure shared by `main.cf` and `master.cf` (postconf(5) and
//! master(5) "syntax").
//!
//! Owns the split of a file into logical lines: empty and whitespace-only
//! lines and lines whose first non-whitespace character is `#` are ignored
//! (also between a line and its continuation); a line that starts with
//! whitespace continues the previous logical line, which is joined without
//! the newline, keeping the continuation's leading whitespace, as Postfix
//! does; whitespace at the end of a logical line is dropped. A continuation
//! with nothing to continue is reported as an orphan (Postfix warns "logical
//! line must not start with whitespace" and ignores it).
//!
//! Also owns `name = value` splitting with Postfix's diagnostics (`missing
//! attribute name`, `missing '=' after attribute name`).
//!
//! Invariants: `phys` lists the 0-based physical lines of a logical line in
//! order (comment lines inside it are not listed), so an editor can replace
//! or comment out exactly those lines. Nothing here fails or panics.

use crate::expand::is_space;

/// One logical line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct LogicalLine {
    /// 1-based number of its first physical line.
    pub(crate) line: usize,
    /// 0-based indexes of its physical lines.
    pub(crate) phys: Vec<usize>,
    /// The joined text, trailing whitespace removed.
    pub(crate) text: String,
    /// It starts with whitespace and has nothing to continue.
    pub(crate) orphan: bool,
}

fn trim_end_space(s: &str) -> &str {
    s.trim_end_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

fn trim_start_space(s: &str) -> &str {
    s.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8))
}

/// Splits `text` into logical lines.
pub(crate) fn logical_lines(text: &str) -> Vec<LogicalLine> {
    let mut out: Vec<LogicalLine> = Vec::new();
    let mut current: Option<LogicalLine> = None;
    for (idx, phys) in text.split('\n').enumerate() {
        let rest = trim_start_space(phys);
        if rest.is_empty() || rest.starts_with('#') {
            continue;
        }
        let continues = rest.len() != phys.len();
        match (&mut current, continues) {
            (Some(cur), true) => {
                cur.phys.push(idx);
                cur.text.push_str(phys);
            }
            (_, _) => {
                if let Some(done) = current.take() {
                    out.push(done);
                }
                current = Some(LogicalLine {
                    line: idx + 1,
                    phys: vec![idx],
                    text: phys.to_string(),
                    orphan: continues,
                });
            }
        }
    }
    if let Some(done) = current {
        out.push(done);
    }
    for l in &mut out {
        let keep = trim_end_space(&l.text).len();
        l.text.truncate(keep);
    }
    out
}

/// Splits a logical line `name = value`: the name runs to the first
/// whitespace or `=`, whitespace around `=` is ignored. The error is
/// Postfix's message.
pub(crate) fn split_name_value(text: &str) -> Result<(&str, &str), String> {
    let end = text
        .find(|c: char| c == '=' || (c.is_ascii() && is_space(c as u8)))
        .unwrap_or(text.len());
    let name = &text[..end];
    let rest = trim_start_space(&text[end..]);
    let Some(value) = rest.strip_prefix('=') else {
        return Err(format!("missing '=' after attribute name: \"{text}\""));
    };
    if name.is_empty() {
        return Err(format!("missing attribute name: \"{text}\""));
    }
    Ok((name, trim_end_space(trim_start_space(value))))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logical_lines_follow_postfix() {
        let text =
            "# top\na = 1\n\nb = x,\n    y\n  # inner comment\n\n\tz   \n  \nc=3\r\n  d\n e = f\n";
        let lines = logical_lines(text);
        let got: Vec<(usize, Vec<usize>, &str, bool)> = lines
            .iter()
            .map(|l| (l.line, l.phys.clone(), l.text.as_str(), l.orphan))
            .collect();
        let want: Vec<(usize, Vec<usize>, &str, bool)> = vec![
            (2, vec![1], "a = 1", false),
            (4, vec![3, 4, 7], "b = x,    y\tz", false),
            (10, vec![9, 10, 11], "c=3\r  d e = f", false),
        ];
        assert_eq!(got, want);
    }

    #[test]
    fn orphan_continuation() {
        let got = logical_lines(" a=b\n  c\nd = e\n");
        assert_eq!(got.len(), 2);
        assert!(got[0].orphan);
        assert_eq!(got[0].text, " a=b  c");
        assert!(!got[1].orphan);
    }

    #[test]
    fn name_value() {
        let cases = [
            ("a = b", Ok(("a", "b"))),
            ("a=b", Ok(("a", "b"))),
            ("a =", Ok(("a", ""))),
            ("a\t=  b c  ", Ok(("a", "b c"))),
            ("9x = y", Ok(("9x", "y"))),
            ("a-b = y", Ok(("a-b", "y"))),
            ("x = a = b", Ok(("x", "a = b"))),
            (
                "=value",
                Err("missing attribute name: \"=value\"".to_string()),
            ),
            (
                "badline here",
                Err("missing '=' after attribute name: \"badline here\"".to_string()),
            ),
            (
                "a b = y",
                Err("missing '=' after attribute name: \"a b = y\"".to_string()),
            ),
            (
                "smtpd_banner",
                Err("missing '=' after attribute name: \"smtpd_banner\"".to_string()),
            ),
        ];
        for (text, want) in cases {
            assert_eq!(split_name_value(text), want, "{text:?}");
        }
    }
}
