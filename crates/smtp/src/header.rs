//! Message header splitting: which lines are header fields, where the body starts.
//!
//! Owns: [`parse`], which splits a message (LF or CRLF line ends, mixed allowed) into an
//! optional leading mbox `From ` line, header fields with their folded continuation lines, and
//! the body offset; and the helpers to read a field's value ([`header_value_bytes`],
//! [`unfold`]).
//!
//! Rules (RFC 5322 §2.2 and Postfix's cleanup/is_header): a header field starts with a name of
//! printable ASCII other than `:` (bytes 33..=126), optionally followed by spaces or tabs
//! (RFC 5322 §4.5.3 obsolete syntax, which Postfix's `is_header` also accepts), then `:`. A
//! line that starts with a space or tab continues the field before it. The header ends at the
//! first empty line (the empty line belongs to neither part), or at the first line that is
//! neither a field nor a continuation (a leading continuation line, a line without a colon,
//! 8-bit or NUL bytes in the name...), which then starts the body.
//!
//! Invariants: fields are in message order; each `raw` is an exact slice of the input from the
//! name to the end of its last continuation line, without that line's line break; the fields,
//! the mbox line, the separating empty line and the body cover the input in order.
//!
//! Failure: none. Never panics, single pass, linear time; nothing is decoded except by
//! [`HeaderField::value`] (lossy UTF-8).

use std::ops::Range;

/// One header field as it appears in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderField {
    /// The field name as written (without any space before the colon).
    pub name: String,
    /// The whole field as in the message, including `Name:` and folded continuation lines,
    /// without the final line break.
    pub raw: Vec<u8>,
}

impl HeaderField {
    /// The value: unfolded, leading whitespace trimmed, lossy UTF-8.
    pub fn value(&self) -> String {
        let unfolded = unfold(header_value_bytes(&self.raw));
        String::from_utf8_lossy(&unfolded)
            .trim_start_matches([' ', '\t'])
            .to_owned()
    }

    /// True if this field has the given name, compared case-insensitively (ASCII).
    pub fn is(&self, name: &str) -> bool {
        self.name.eq_ignore_ascii_case(name)
    }
}

/// A parsed view of a message: header fields and where the body starts.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Parsed {
    /// A leading mbox `From ` line (byte range including its line break), so callers can
    /// drop it.
    pub mbox_from: Option<Range<usize>>,
    /// The header fields, in order.
    pub headers: Vec<HeaderField>,
    /// Byte offset of the first body byte; the input length when there is no body.
    pub body_offset: usize,
}

/// Split a message into header fields and body. See the module contract for the rules.
pub fn parse(msg: &[u8]) -> Parsed {
    let mut out = Parsed::default();
    let mut pos = 0;
    if msg.starts_with(b"From ") {
        let (_, next) = line_at(msg, 0);
        out.mbox_from = Some(0..next);
        pos = next;
    }
    loop {
        if pos >= msg.len() {
            out.body_offset = msg.len();
            return out;
        }
        let (content_end, next) = line_at(msg, pos);
        let line = &msg[pos..content_end];
        if line.is_empty() {
            out.body_offset = next;
            return out;
        }
        let Some(name_len) = header_name_len(line) else {
            out.body_offset = pos;
            return out;
        };
        let mut end = content_end;
        let mut p = next;
        while p < msg.len() && matches!(msg[p], b' ' | b'\t') {
            let (ce, n) = line_at(msg, p);
            end = ce;
            p = n;
        }
        out.headers.push(HeaderField {
            // The name is printable ASCII, so this conversion is lossless.
            name: String::from_utf8_lossy(&line[..name_len]).into_owned(),
            raw: msg[pos..end].to_vec(),
        });
        pos = p;
    }
}

/// The line starting at `pos`: (end of its content, start of the next line). The content
/// excludes a final LF or CRLF; the last line may have no line break.
fn line_at(msg: &[u8], pos: usize) -> (usize, usize) {
    match msg[pos..].iter().position(|&b| b == b'\n') {
        Some(i) => {
            let lf = pos + i;
            let content_end = if lf > pos && msg[lf - 1] == b'\r' {
                lf - 1
            } else {
                lf
            };
            (content_end, lf + 1)
        }
        None => (msg.len(), msg.len()),
    }
}

/// If `line` starts a header field, the length of its name.
fn header_name_len(line: &[u8]) -> Option<usize> {
    let name_len = line
        .iter()
        .take_while(|&&b| (33..=126).contains(&b) && b != b':')
        .count();
    if name_len == 0 {
        return None;
    }
    let rest = &line[name_len..];
    let spaces = rest
        .iter()
        .take_while(|&&b| b == b' ' || b == b'\t')
        .count();
    (rest.get(spaces) == Some(&b':')).then_some(name_len)
}

/// The bytes of a field after its first colon, still folded (empty when there is no colon).
pub fn header_value_bytes(raw: &[u8]) -> &[u8] {
    match raw.iter().position(|&b| b == b':') {
        Some(i) => &raw[i + 1..],
        None => &[],
    }
}

/// Undo folding (RFC 5322 §2.2.3): remove each LF or CRLF that is followed by a space or tab,
/// keeping the whitespace. Other bytes, including other line breaks, are kept.
pub fn unfold(value: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(value.len());
    let mut i = 0;
    while i < value.len() {
        let b = value[i];
        let brk = match (b, value.get(i + 1)) {
            (b'\n', _) => 1,
            (b'\r', Some(b'\n')) => 2,
            _ => 0,
        };
        if brk > 0 && matches!(value.get(i + brk), Some(b' ' | b'\t')) {
            i += brk;
            continue;
        }
        out.push(b);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// (name, raw) pairs and the body, for comparing.
    fn view(msg: &[u8]) -> (Vec<(String, Vec<u8>)>, Vec<u8>) {
        let p = parse(msg);
        let h = p.headers.into_iter().map(|f| (f.name, f.raw)).collect();
        (h, msg[p.body_offset..].to_vec())
    }

    #[test]
    fn splits_messages() {
        type Case = (
            &'static [u8],
            &'static [(&'static str, &'static [u8])],
            &'static [u8],
        );
        let cases: &[Case] = &[
            (b"", &[], b""),
            (b"\n", &[], b""),
            (b"\r\n", &[], b""),
            (b"\nbody\n", &[], b"body\n"),
            (
                b"Subject: hi\n\nbody\n",
                &[("Subject", b"Subject: hi")],
                b"body\n",
            ),
            (
                b"Subject: hi\r\nTo: a@x\r\n\r\nbody\r\n",
                &[("Subject", b"Subject: hi"), ("To", b"To: a@x")],
                b"body\r\n",
            ),
            // folding, LF and CRLF, tab and space
            (
                b"Subject: a\n b\n\tc\nTo: x\n\nB",
                &[("Subject", b"Subject: a\n b\n\tc"), ("To", b"To: x")],
                b"B",
            ),
            (
                b"Subject: a\r\n  b\r\n\r\n",
                &[("Subject", b"Subject: a\r\n  b")],
                b"",
            ),
            // no body: header runs to EOF, with or without final newline
            (b"Subject: hi\n", &[("Subject", b"Subject: hi")], b""),
            (b"Subject: hi", &[("Subject", b"Subject: hi")], b""),
            (b"Subject: a\n b", &[("Subject", b"Subject: a\n b")], b""),
            // no header
            (b"just text\nmore\n", &[], b"just text\nmore\n"),
            (
                b" leading continuation\nX: y\n",
                &[],
                b" leading continuation\nX: y\n",
            ),
            (b":no name\n", &[], b":no name\n"),
            // a non-header line ends the header and starts the body
            (
                b"Subject: hi\nthis is body\nX: y\n",
                &[("Subject", b"Subject: hi")],
                b"this is body\nX: y\n",
            ),
            (b"A: 1\nB C: 2\n", &[("A", b"A: 1")], b"B C: 2\n"),
            // obsolete space before the colon
            (b"Subject : hi\n\n", &[("Subject", b"Subject : hi")], b""),
            (b"X-Y\t:z\n", &[("X-Y", b"X-Y\t:z")], b""),
            // empty value, odd but legal names
            (b"X-Empty:\n", &[("X-Empty", b"X-Empty:")], b""),
            (b"X!#$%&*~:v\n", &[("X!#$%&*~", b"X!#$%&*~:v")], b""),
            // whitespace-only line continues the field
            (
                b"A: 1\n \nB: 2\n",
                &[("A", b"A: 1\n "), ("B", b"B: 2")],
                b"",
            ),
            // 8-bit and NUL: fine in values, not in names
            (
                b"Subject: \xc3\xa9t\xe9\n\n",
                &[("Subject", b"Subject: \xc3\xa9t\xe9")],
                b"",
            ),
            (b"Subject: a\0b\n\n", &[("Subject", b"Subject: a\0b")], b""),
            (b"Sub\xc3\xa9: x\n", &[], b"Sub\xc3\xa9: x\n"),
            (b"Sub\0: x\n", &[], b"Sub\0: x\n"),
            (b"A: 1\nB\0: 2\n", &[("A", b"A: 1")], b"B\0: 2\n"),
            // bare CR is content, not a line break
            (b"A: 1\r2\n\n", &[("A", b"A: 1\r2")], b""),
            (b"A: 1\r", &[("A", b"A: 1\r")], b""),
            (b"\r\rX: 1\n", &[], b"\r\rX: 1\n"),
        ];
        for (msg, headers, body) in cases {
            let want: Vec<(String, Vec<u8>)> = headers
                .iter()
                .map(|(n, r)| ((*n).to_owned(), r.to_vec()))
                .collect();
            assert_eq!(
                view(msg),
                (want, body.to_vec()),
                "msg {:?}",
                String::from_utf8_lossy(msg)
            );
        }
    }

    #[test]
    fn mbox_from_line_is_reported() {
        let msg = b"From sender@x Thu Jan  1 00:00:00 2026\nSubject: hi\n\nbody";
        let p = parse(msg);
        assert_eq!(p.mbox_from, Some(0..39));
        assert_eq!(p.headers.len(), 1);
        assert!(p.headers[0].is("subject"));
        assert_eq!(&msg[p.body_offset..], b"body");

        let p = parse(b"From x\r\n\r\nbody");
        assert_eq!(p.mbox_from, Some(0..8));
        assert!(p.headers.is_empty());
        assert_eq!(p.body_offset, 10);

        let p = parse(b"From x");
        assert_eq!(p.mbox_from, Some(0..6));
        assert_eq!(p.body_offset, 6);

        // Only at the very start, and only "From " exactly.
        for msg in [
            &b"Subject: a\nFrom x\n"[..],
            b"From: a@x\n",
            b"from x\n",
            b">From x\n",
        ] {
            let p = parse(msg);
            assert_eq!(p.mbox_from, None, "msg {:?}", String::from_utf8_lossy(msg));
        }
        assert!(parse(b"From: a@x\n").headers[0].is("From"));
    }

    #[test]
    fn field_values() {
        let cases: &[(&[u8], &str)] = &[
            (b"Subject: hi", "hi"),
            (b"Subject:hi", "hi"),
            (b"Subject:   hi  ", "hi  "),
            (b"Subject:", ""),
            (b"Subject :\thi", "hi"),
            (b"Subject: a\r\n b", "a b"),
            (b"Subject: a\n\tb\n  c", "a\tb  c"),
            (b"Subject:\r\n folded start", "folded start"),
            (b"Subject: caf\xc3\xa9", "café"),
            (b"Subject: bad \xff byte", "bad \u{fffd} byte"),
            (b"To: a: b", "a: b"),
        ];
        for (raw, want) in cases {
            let name_len = raw
                .iter()
                .position(|&b| b == b':' || b == b' ')
                .unwrap_or(0);
            let f = HeaderField {
                name: String::from_utf8_lossy(&raw[..name_len]).into_owned(),
                raw: raw.to_vec(),
            };
            assert_eq!(f.value(), *want, "raw {:?}", String::from_utf8_lossy(raw));
        }
    }

    #[test]
    fn name_matching_is_case_insensitive() {
        let p = parse(b"content-TYPE: text/plain\nX-Mailer: m\n\n");
        let cases = [
            (0, "Content-Type", true),
            (0, "content-type", true),
            (0, "Content-Typ", false),
            (1, "x-mailer", true),
            (1, "X-Mailer:", false),
        ];
        for (i, name, want) in cases {
            assert_eq!(p.headers[i].is(name), want, "{name}");
        }
        assert_eq!(p.headers[0].name, "content-TYPE");
    }

    #[test]
    fn helpers() {
        let cases: &[(&[u8], &[u8])] = &[
            (b"A: b", b" b"),
            (b"A:", b""),
            (b"no colon", b""),
            (b"A: b: c", b" b: c"),
        ];
        for (raw, want) in cases {
            assert_eq!(header_value_bytes(raw), *want);
        }
        let cases: &[(&[u8], &[u8])] = &[
            (b"a\r\n b", b"a b"),
            (b"a\n\tb", b"a\tb"),
            (b"a\r\nb", b"a\r\nb"),
            (b"a\nb", b"a\nb"),
            (b"a\r\n", b"a\r\n"),
            (b"a\r \n b", b"a\r  b"),
        ];
        for (v, want) in cases {
            assert_eq!(unfold(v), *want, "{:?}", String::from_utf8_lossy(v));
        }
    }

    #[test]
    fn long_input_is_linear() {
        // 200k folded continuation lines and 200k fields: must finish quickly.
        let mut msg = b"Subject: x\n".to_vec();
        msg.extend(b" y\n".repeat(200_000));
        msg.extend(b"A: b\n".repeat(200_000));
        let p = parse(&msg);
        assert_eq!(p.headers.len(), 200_001);
        assert_eq!(p.body_offset, msg.len());
    }

    proptest! {
        #[test]
        fn parse_never_panics_and_covers_input(msg in proptest::collection::vec(any::<u8>(), 0..400)) {
            check_cover(&msg);
        }

        #[test]
        fn parse_header_shaped(s in "(From x\n)?([A-Za-z: \t\r\0é-]{0,12}\r?\n){0,8}[a-z]{0,5}") {
            check_cover(s.as_bytes());
        }
    }

    /// The pieces reported by `parse` lie in order inside the input without overlap.
    fn check_cover(msg: &[u8]) {
        let p = parse(msg);
        let mut pos = 0;
        if let Some(r) = &p.mbox_from {
            assert_eq!(r.start, 0);
            pos = r.end;
        }
        for h in &p.headers {
            assert!(msg[pos..].starts_with(&h.raw));
            assert!(h.raw.starts_with(h.name.as_bytes()));
            assert!(!h.name.is_empty());
            pos += h.raw.len();
            // skip the line break after the field
            if msg[pos..].starts_with(b"\r\n") {
                pos += 2;
            } else if msg[pos..].starts_with(b"\n") {
                pos += 1;
            }
            let _ = h.value();
        }
        assert!(p.body_offset >= pos);
        assert!(p.body_offset <= msg.len());
        // at most an empty line between the header and the body
        let gap = &msg[pos..p.body_offset];
        assert!(
            gap.is_empty() || gap == b"\n" || gap == b"\r\n",
            "gap {gap:?}"
        );
    }
}
