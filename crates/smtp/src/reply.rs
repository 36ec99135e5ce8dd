//! SMTP server replies (RFC 5321 §4.2) with optional enhanced status codes (RFC 2034,
//! RFC 3463): the value smtpd decides on, its wire form and its one-line log form.
//!
//! Owns: [`Reply`] and its rendering ([`Reply::to_wire`], `Display`).
//!
//! Invariants: whatever the field values, [`Reply::to_wire`] produces one or more lines, each
//! `CODE-` (all but the last) or `CODE ` / `CODE` (the last) followed by text and CRLF, where
//! CODE is a valid RFC 5321 reply code (first digit 2 to 5, second 0 to 5; anything else is
//! sent as `451`, "local error in processing") and no line contains CR, LF or another ASCII
//! control character (each is sent as `?`). An enhanced code is sent only if it is well formed
//! (`class.subject.detail`, class 2, 4 or 5, one to three digits each) and the reply code is
//! 2xx, 4xx or 5xx; its class digit is made to agree with the reply code's first digit
//! (RFC 3463 §2), as Postfix does. 3xx replies (`354`, `334`) never carry one.
//!
//! Failure: none; rendering is total and linear in the size of the reply.

use std::fmt;

/// One SMTP reply: a code, an optional enhanced status code and one or more text lines.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    /// The three-digit reply code (`250`, `550`, …).
    pub code: u16,
    /// The RFC 3463 enhanced status code without the trailing space (`"5.5.2"`), if any.
    pub enhanced: Option<String>,
    /// The text lines, without codes or line ends. Empty means one line with no text.
    pub lines: Vec<String>,
}

impl Reply {
    /// A single-line reply. An empty `enhanced` means "no enhanced status code" (Postfix
    /// sends `501 Syntax: HELO hostname` and `221 s1.example closing` without one).
    pub fn new(code: u16, enhanced: &str, text: impl Into<String>) -> Reply {
        Reply {
            code,
            enhanced: (!enhanced.is_empty()).then(|| enhanced.to_owned()),
            lines: vec![text.into()],
        }
    }

    /// A multi-line reply (`250-PIPELINING` … `250 CHUNKING`); the enhanced code, if any, is
    /// sent on every line (RFC 2034 §4).
    pub fn multiline(code: u16, enhanced: Option<&str>, lines: Vec<String>) -> Reply {
        Reply {
            code,
            enhanced: enhanced.map(str::to_owned),
            lines,
        }
    }

    /// The wire form: every line `CODE-`/`CODE ` + (enhanced code + `" "`, when
    /// `enhanced_codes` is true — the client session has ENHANCEDSTATUSCODES, which Postfix
    /// offers by default — and the reply has a valid one) + text + CRLF.
    pub fn to_wire(&self, enhanced_codes: bool) -> Vec<u8> {
        let code = self.wire_code();
        let enhanced = if enhanced_codes {
            self.wire_enhanced()
        } else {
            None
        };
        let texts: Vec<&str> = if self.lines.is_empty() {
            vec![""]
        } else {
            self.lines.iter().map(String::as_str).collect()
        };
        let size: usize = texts.iter().map(|t| t.len() + 16).sum();
        let mut out = Vec::with_capacity(size);
        let last = texts.len().saturating_sub(1);
        for (i, text) in texts.iter().enumerate() {
            out.extend_from_slice(code.to_string().as_bytes());
            let has_body = enhanced.is_some() || !text.is_empty();
            if i < last {
                out.push(b'-');
            } else if has_body {
                out.push(b' ');
            }
            if let Some(e) = &enhanced {
                out.extend_from_slice(e.as_bytes());
                if !text.is_empty() {
                    out.push(b' ');
                }
            }
            push_sanitized(&mut out, text);
            out.extend_from_slice(b"\r\n");
        }
        out
    }

    /// 2xx (completion) or 3xx (intermediate: `354`, `334`).
    pub fn is_positive(&self) -> bool {
        (200..400).contains(&self.wire_code())
    }

    /// 4xx: the client may try again later.
    pub fn is_transient(&self) -> bool {
        (400..500).contains(&self.wire_code())
    }

    /// 5xx: the client must not retry as is.
    pub fn is_permanent(&self) -> bool {
        (500..600).contains(&self.wire_code())
    }

    /// The code as sent: `self.code` if RFC 5321 allows it, else 451.
    fn wire_code(&self) -> u16 {
        let c = self.code;
        if (200..600).contains(&c) && (c / 10) % 10 <= 5 {
            c
        } else {
            451
        }
    }

    /// The enhanced code as sent, class digit matched to the reply code; `None` when absent,
    /// malformed, or the reply is 3xx.
    fn wire_enhanced(&self) -> Option<String> {
        let e = self.enhanced.as_deref()?;
        let class = match self.wire_code() / 100 {
            2 => '2',
            4 => '4',
            5 => '5',
            _ => return None,
        };
        let mut parts = e.split('.');
        let (Some(c), Some(subject), Some(detail), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return None;
        };
        let number =
            |p: &str| !p.is_empty() && p.len() <= 3 && p.bytes().all(|b| b.is_ascii_digit());
        if !matches!(c, "2" | "4" | "5") || !number(subject) || !number(detail) {
            return None;
        }
        Some(format!("{class}.{subject}.{detail}"))
    }
}

/// Append `text` with every ASCII control character (CR and LF included) replaced by `?`.
fn push_sanitized(out: &mut Vec<u8>, text: &str) {
    for c in text.chars() {
        if c.is_ascii_control() {
            out.push(b'?');
        } else {
            let mut buf = [0u8; 4];
            out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
        }
    }
}

/// The one-line form for logs: `550 5.1.1 <x>: Recipient address rejected: ...`, lines of a
/// multi-line reply joined by a space, sanitised like the wire form.
impl fmt::Display for Reply {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.wire_code())?;
        if let Some(e) = self.wire_enhanced() {
            write!(f, " {e}")?;
        }
        for line in &self.lines {
            if line.is_empty() {
                continue;
            }
            f.write_str(" ")?;
            for c in line.chars() {
                if c.is_ascii_control() {
                    f.write_str("?")?;
                } else {
                    write!(f, "{c}")?;
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn wire_forms() {
        let ehlo = Reply::multiline(
            250,
            None,
            vec!["s1.example".into(), "PIPELINING".into(), "CHUNKING".into()],
        );
        let cases: Vec<(Reply, bool, &str)> = vec![
            (
                Reply::new(500, "5.5.2", "Error: command not recognized"),
                true,
                "500 5.5.2 Error: command not recognized\r\n",
            ),
            (
                Reply::new(500, "5.5.2", "Error: command not recognized"),
                false,
                "500 Error: command not recognized\r\n",
            ),
            (
                Reply::new(501, "", "Syntax: HELO hostname"),
                true,
                "501 Syntax: HELO hostname\r\n",
            ),
            (
                ehlo,
                true,
                "250-s1.example\r\n250-PIPELINING\r\n250 CHUNKING\r\n",
            ),
            (
                Reply::multiline(550, Some("5.7.1"), vec!["one".into(), "two".into()]),
                true,
                "550-5.7.1 one\r\n550 5.7.1 two\r\n",
            ),
            (
                Reply::new(354, "2.0.0", "End data with <CR><LF>.<CR><LF>"),
                true,
                "354 End data with <CR><LF>.<CR><LF>\r\n",
            ),
            // Class digit follows the reply code (RFC 3463 §2).
            (Reply::new(450, "5.1.1", "x"), true, "450 4.1.1 x\r\n"),
            // Malformed enhanced codes are dropped.
            (Reply::new(550, "5.1", "x"), true, "550 x\r\n"),
            (Reply::new(550, "9.1.1", "x"), true, "550 x\r\n"),
            (Reply::new(550, "5.1.1234", "x"), true, "550 x\r\n"),
            // Invalid codes become 451.
            (Reply::new(999, "", "x"), true, "451 x\r\n"),
            (Reply::new(260, "", "x"), true, "451 x\r\n"),
            (Reply::new(0, "5.0.0", "x"), true, "451 4.0.0 x\r\n"),
            // Control characters never reach the wire.
            (
                Reply::new(250, "2.0.0", "a\r\nb\0c\td"),
                true,
                "250 2.0.0 a??b?c?d\r\n",
            ),
            // Empty text.
            (Reply::new(250, "", ""), true, "250\r\n"),
            (Reply::new(250, "2.0.0", ""), true, "250 2.0.0\r\n"),
            (Reply::multiline(250, None, vec![]), true, "250\r\n"),
            (
                Reply::multiline(250, None, vec![String::new(), "x".into()]),
                true,
                "250-\r\n250 x\r\n",
            ),
            // Non-ASCII text passes (SMTPUTF8 sessions; Postfix echoes it too).
            (Reply::new(252, "2.0.0", "é"), true, "252 2.0.0 é\r\n"),
        ];
        for (reply, enhanced, want) in cases {
            assert_eq!(
                String::from_utf8_lossy(&reply.to_wire(enhanced)),
                want,
                "{reply:?}"
            );
        }
    }

    #[test]
    fn display_is_one_line() {
        let cases: Vec<(Reply, &str)> = vec![
            (
                Reply::new(550, "5.1.1", "<x@y>: Recipient address rejected: unknown"),
                "550 5.1.1 <x@y>: Recipient address rejected: unknown",
            ),
            (
                Reply::new(501, "", "Syntax: EHLO hostname"),
                "501 Syntax: EHLO hostname",
            ),
            (
                Reply::multiline(250, None, vec!["a".into(), "b\nc".into()]),
                "250 a b?c",
            ),
            (Reply::new(999, "5.0.0", "x"), "451 4.0.0 x"),
        ];
        for (reply, want) in cases {
            assert_eq!(reply.to_string(), want);
        }
    }

    #[test]
    fn classes() {
        let cases: &[(u16, bool, bool, bool)] = &[
            (220, true, false, false),
            (250, true, false, false),
            (354, true, false, false),
            (421, false, true, false),
            (451, false, true, false),
            (500, false, false, true),
            (555, false, false, true),
            (600, false, true, false), // sent as 451
        ];
        for &(code, pos, trans, perm) in cases {
            let r = Reply::new(code, "", "x");
            assert_eq!(
                (r.is_positive(), r.is_transient(), r.is_permanent()),
                (pos, trans, perm),
                "{code}"
            );
        }
    }

    #[test]
    fn constructors() {
        assert_eq!(
            Reply::new(250, "2.0.0", "Ok"),
            Reply {
                code: 250,
                enhanced: Some("2.0.0".into()),
                lines: vec!["Ok".into()]
            }
        );
        assert_eq!(Reply::new(501, "", "x").enhanced, None);
        assert_eq!(
            Reply::multiline(250, Some("2.0.0"), vec!["a".into()]).enhanced,
            Some("2.0.0".into())
        );
    }

    /// Check the wire invariants of the module contract on one rendered reply.
    fn check_wire(wire: &[u8], nlines: usize) -> Result<(), TestCaseError> {
        prop_assert!(wire.ends_with(b"\r\n"));
        let body = &wire[..wire.len() - 2];
        let lines: Vec<&[u8]> = body.split(|&b| b == b'\n').collect();
        prop_assert_eq!(lines.len(), nlines.max(1));
        let mut first_code: Option<&[u8]> = None;
        for (i, line) in lines.iter().enumerate() {
            let line = if i + 1 < lines.len() {
                line.strip_suffix(b"\r").unwrap_or(b"!")
            } else {
                line
            };
            prop_assert!(line.len() >= 3);
            prop_assert!(!line.contains(&b'\r'));
            prop_assert!(line.iter().all(|&b| b >= 0x20 && b != 0x7f));
            let code = &line[..3];
            prop_assert!(matches!(code[0], b'2'..=b'5'));
            prop_assert!(matches!(code[1], b'0'..=b'5'));
            prop_assert!(code[2].is_ascii_digit());
            prop_assert!(first_code.is_none_or(|c| c == code), "codes differ");
            first_code = Some(code);
            let sep = line.get(3).copied();
            if i + 1 < lines.len() {
                prop_assert_eq!(sep, Some(b'-'));
            } else {
                prop_assert!(sep.is_none() || sep == Some(b' '));
            }
        }
        Ok(())
    }

    proptest! {
        #[test]
        fn to_wire_always_valid(
            code in any::<u16>(),
            enhanced in proptest::option::of("[0-9.a]{0,9}"),
            lines in proptest::collection::vec("\\PC{0,20}|[\r\n\0\t a]{0,8}", 0..4),
            enhanced_codes in any::<bool>(),
        ) {
            let r = Reply { code, enhanced, lines: lines.clone() };
            check_wire(&r.to_wire(enhanced_codes), lines.len())?;
            let shown = r.to_string();
            prop_assert!(!shown.chars().any(|c| c.is_ascii_control()));
            prop_assert!(r.is_positive() as u8 + r.is_transient() as u8 + r.is_permanent() as u8 == 1);
        }
    }
}
