//! RFC 3461 `xtext`: the encoding of the DSN parameters `ENVID=` and `ORCPT=` (and of
//! `AUTH=` in MAIL FROM, RFC 4954).
//!
//! Owns: strict decoding ([`decode`]) and encoding ([`encode`]).
//!
//! Invariants: `xtext = *( xchar / hexchar )`, where `xchar` is any ASCII character from `!`
//! to `~` except `+` and `=`, and `hexchar` is `+` followed by exactly two *upper-case*
//! hexadecimal digits. RFC 3461 requires the decoded value to be printable US-ASCII, so a
//! decoded character must lie in `' '..='~'`. [`decode`] output is never longer than its
//! input; `decode(&encode(s)) == Ok(s)` for every `s` made of printable ASCII.
//!
//! Failure: [`decode`] returns an [`XtextError`] naming the offending byte offset; [`encode`]
//! is total. Nothing here panics or allocates more than three bytes per input byte.

/// Why a string is not valid xtext.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum XtextError {
    /// `+` at this byte offset is not followed by two upper-case hexadecimal digits.
    #[error("'+' at offset {0} is not followed by two upper-case hexadecimal digits")]
    BadHex(usize),
    /// A character that xtext does not allow unencoded (space, controls, `=`, non-ASCII).
    #[error("character U+{code:04X} at offset {1} is not allowed in xtext", code = u32::from(*.0))]
    BadChar(char, usize),
    /// A `+XX` escape at this offset decodes to a byte that is not printable ASCII.
    #[error("'+{0:02X}' at offset {1} does not decode to printable ASCII")]
    NotPrintable(u8, usize),
}

/// Decode RFC 3461 xtext strictly (see the module contract).
pub fn decode(s: &str) -> Result<String, XtextError> {
    let bytes = s.as_bytes();
    let mut out = String::with_capacity(s.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'+' => {
                let hi = bytes.get(i + 1).copied().and_then(upper_hex);
                let lo = bytes.get(i + 2).copied().and_then(upper_hex);
                let (Some(hi), Some(lo)) = (hi, lo) else {
                    return Err(XtextError::BadHex(i));
                };
                let v = hi * 16 + lo;
                if !(0x20..=0x7e).contains(&v) {
                    return Err(XtextError::NotPrintable(v, i));
                }
                out.push(char::from(v));
                i += 3;
            }
            b'!'..=b'~' if b != b'=' => {
                out.push(char::from(b));
                i += 1;
            }
            _ => {
                // Report the whole character, not a byte of it.
                let c = s
                    .get(i..)
                    .and_then(|r| r.chars().next())
                    .unwrap_or('\u{FFFD}');
                return Err(XtextError::BadChar(c, i));
            }
        }
    }
    Ok(out)
}

/// Encode `s` as xtext: `!`..`~` except `+` and `=` stay as they are, every other byte
/// (each byte of a non-ASCII character too) becomes `+XX` with upper-case hex digits.
pub fn encode(s: &str) -> String {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    let mut out = String::with_capacity(s.len());
    for &b in s.as_bytes() {
        if (b'!'..=b'~').contains(&b) && b != b'+' && b != b'=' {
            out.push(char::from(b));
        } else {
            out.push('+');
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0x0f)]));
        }
    }
    out
}

fn upper_hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn decodes_valid_xtext() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("abc", "abc"),
            ("a+2Bb", "a+b"),
            ("a+3Db", "a=b"),
            ("+20", " "),
            ("+7E", "~"),
            (
                "rfc822;user+2Bext@example.com",
                "rfc822;user+ext@example.com",
            ),
            ("QQ+2Bx", "QQ+x"),
            ("!~", "!~"),
            ("<>", "<>"),
        ];
        for (input, want) in cases {
            assert_eq!(decode(input).as_deref(), Ok(*want), "decode({input:?})");
        }
    }

    #[test]
    fn rejects_bad_xtext() {
        let cases: &[(&str, XtextError)] = &[
            ("+", XtextError::BadHex(0)),
            ("a+2", XtextError::BadHex(1)),
            ("+zz", XtextError::BadHex(0)),
            ("+2b", XtextError::BadHex(0)), // lower-case hex is not xtext
            ("+g0", XtextError::BadHex(0)),
            ("ab+", XtextError::BadHex(2)),
            ("a=b", XtextError::BadChar('=', 1)),
            ("a b", XtextError::BadChar(' ', 1)),
            ("a\tb", XtextError::BadChar('\t', 1)),
            ("\u{7f}", XtextError::BadChar('\u{7f}', 0)),
            ("xé", XtextError::BadChar('é', 1)),
            ("+0A", XtextError::NotPrintable(0x0a, 0)),
            ("+00", XtextError::NotPrintable(0, 0)),
            ("a+7F", XtextError::NotPrintable(0x7f, 1)),
            ("+C3+A9", XtextError::NotPrintable(0xc3, 0)),
        ];
        for (input, want) in cases {
            assert_eq!(decode(input).as_ref(), Err(want), "decode({input:?})");
        }
    }

    #[test]
    fn encodes() {
        let cases: &[(&str, &str)] = &[
            ("", ""),
            ("user@example.com", "user@example.com"),
            ("a+b=c", "a+2Bb+3Dc"),
            ("a b", "a+20b"),
            ("é", "+C3+A9"),
            ("\r\n", "+0D+0A"),
        ];
        for (input, want) in cases {
            assert_eq!(encode(input), *want, "encode({input:?})");
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(
            XtextError::BadHex(3).to_string(),
            "'+' at offset 3 is not followed by two upper-case hexadecimal digits"
        );
        assert_eq!(
            XtextError::BadChar('=', 1).to_string(),
            "character U+003D at offset 1 is not allowed in xtext"
        );
        assert_eq!(
            XtextError::NotPrintable(10, 0).to_string(),
            "'+0A' at offset 0 does not decode to printable ASCII"
        );
    }

    proptest! {
        #[test]
        fn printable_ascii_round_trips(s in "[ -~]{0,64}") {
            let e = encode(&s);
            prop_assert!(e.len() <= 3 * s.len());
            prop_assert_eq!(decode(&e), Ok(s));
        }

        #[test]
        fn decode_never_panics_and_never_grows(s in "\\PC{0,64}|[+0-9A-Fa-f= ]{0,16}") {
            if let Ok(d) = decode(&s) {
                prop_assert!(d.len() <= s.len());
                prop_assert!(d.bytes().all(|b| (0x20..=0x7e).contains(&b)));
                // What decodes re-encodes to something that decodes to the same value.
                prop_assert_eq!(decode(&encode(&d)), Ok(d));
            }
        }

        #[test]
        fn encode_output_is_valid_xtext(s in "\\PC{0,32}") {
            let e = encode(&s);
            prop_assert!(e.bytes().all(|b| (b'!'..=b'~').contains(&b) && b != b'='));
        }
    }
}
