//! Header processing for cleanup: what gets added, dropped, rewritten and extracted.
//! Pure functions over the message bytes; the caller writes the result.

use std::time::SystemTime;

use smtp::address;
use smtp::header;

use super::{Cleanup, Origin, Submission};

pub struct Built {
    /// The finished message: headers, an empty line, the body.
    pub content: Vec<u8>,
    /// Recipients taken from the headers (`sendmail -t`).
    pub extracted: Vec<String>,
    pub message_id: Option<String>,
}

/// CRLF → LF throughout, a stray CR replaced by a space, and a newline at the end of a non-empty message
/// (`sendmail_fix_line_endings = always`).
pub fn normalize_line_ends(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len() + 1);
    let mut i = 0;
    while i < input.len() {
        match memchr::memchr(b'\r', &input[i..]) {
            Some(p) => {
                out.extend_from_slice(&input[i..i + p]);
                let at = i + p;
                if input.get(at + 1) != Some(&b'\n') {
                    // A stray CR becomes a space (cleanup_replace_stray_cr_lf), so that no
                    // bare CR can reach another server's DATA reader (outbound smuggling).
                    out.push(b' ');
                }
                i = at + 1;
            }
            None => {
                out.extend_from_slice(&input[i..]);
                break;
            }
        }
    }
    if !out.is_empty() && out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    out
}

/// RFC 5322 date as Postfix writes it: `Wed, 25 Nov 2026 18:07:56 +0000 (UTC)`.
pub fn mail_date(t: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let z = ts.to_zoned_datetime(jiff::tz::TimeZone::system());
    z.strftime("%a, %e %b %Y %H:%M:%S %z (%Z)").to_string()
}

const SENDER_HEADERS: &[&str] = &[
    "from",
    "sender",
    "reply-to",
    "errors-to",
    "resent-from",
    "resent-sender",
    "resent-reply-to",
    "return-receipt-to",
    "disposition-notification-to",
];
const RECIPIENT_HEADERS: &[&str] = &[
    "to",
    "cc",
    "bcc",
    "apparently-to",
    "resent-to",
    "resent-cc",
    "resent-bcc",
];

/// Drop leading mbox `From ` lines (and `>From `), as Postfix's sendmail does.
fn skip_from_lines(mut content: &[u8]) -> &[u8] {
    loop {
        let start = content.iter().take_while(|&&b| b == b'>').count();
        if !content[start..].starts_with(b"From ") {
            return content;
        }
        match memchr::memchr(b'\n', content) {
            Some(nl) => content = &content[nl + 1..],
            None => return &[],
        }
    }
}

/// RFC 2047 encoded-word for a non-ASCII display name; a quoted string when it has specials.
fn phrase(name: &str) -> String {
    if !name.is_ascii() {
        return format!("=?UTF-8?B?{}?=", base64(name.as_bytes()));
    }
    let specials = "()<>[]:;@\\,.\"";
    if name.chars().any(|c| specials.contains(c)) {
        let escaped: String = name
            .chars()
            .flat_map(|c| {
                if c == '"' || c == '\\' {
                    vec!['\\', c]
                } else {
                    vec![c]
                }
            })
            .collect();
        format!("\"{escaped}\"")
    } else {
        name.to_string()
    }
}

fn base64(bytes: &[u8]) -> String {
    const T: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        out.push(T[(n >> 18) as usize & 63] as char);
        out.push(T[(n >> 12) as usize & 63] as char);
        out.push(if chunk.len() > 1 {
            T[(n >> 6) as usize & 63] as char
        } else {
            '='
        });
        out.push(if chunk.len() > 2 {
            T[n as usize & 63] as char
        } else {
            '='
        });
    }
    out
}

pub fn build(
    c: &Cleanup,
    sub: &Submission,
    id: &str,
    sender: &str,
    content: &[u8],
    now: SystemTime,
) -> Built {
    let content = skip_from_lines(content);
    let parsed = header::parse(content);
    let mut body = &content[parsed.body_offset.min(content.len())..];
    if let Some(rest) = body.strip_prefix(b"\n") {
        body = rest;
    }
    let local = match &sub.origin {
        Origin::Local { .. } => true,
        Origin::Smtp(o) => o.rewrite_headers,
        Origin::Bounce | Origin::Forward => false,
    };
    // Missing headers are added for local submissions and for clients that
    // local_header_rewrite_clients covers; internally generated mail carries its own.
    let add_missing = local || matches!(sub.origin, Origin::Bounce | Origin::Forward);
    let date = mail_date(now);

    let mut out = Vec::with_capacity(content.len() + 512);
    match &sub.origin {
        Origin::Local { uid } => out.extend_from_slice(
            format!(
                "Received: by {} ({}, from userid {uid})\n\tid {id}; {date}\n",
                c.myhostname, c.mail_name
            )
            .as_bytes(),
        ),
        Origin::Bounce | Origin::Forward => out.extend_from_slice(
            format!(
                "Received: by {} ({})\n\tid {id}; {date}\n",
                c.myhostname, c.mail_name
            )
            .as_bytes(),
        ),
        Origin::Smtp(o) => {
            let helo = o.helo.as_deref().unwrap_or(&o.client_name);
            let mut r = format!(
                "Received: from {helo} ({} [{}])\n",
                o.client_name, o.client_addr
            );
            if let Some(tls) = &o.tls {
                r.push_str(&format!(
                    "\t(using {tls})\n\t(No client certificate requested)\n"
                ));
            }
            r.push_str(&format!(
                "\tby {} ({}) with {} id {id}",
                c.myhostname, c.mail_name, o.protocol
            ));
            if let [only] = sub.recipients.as_slice() {
                r.push_str(&format!("\n\tfor <{}>", only.address));
            }
            r.push_str(&format!("; {date}\n"));
            out.extend_from_slice(r.as_bytes());
        }
    }

    let has_resent = parsed
        .headers
        .iter()
        .any(|h| h.is("resent-to") || h.is("resent-cc") || h.is("resent-bcc"));
    let mut extracted = Vec::new();
    let (mut saw_date, mut saw_mid, mut saw_from, mut saw_to) = (false, false, false, false);
    let mut message_id = None;
    for h in &parsed.headers {
        let lname = h.name.to_ascii_lowercase();
        if sub.extract_recipients {
            let wanted: &[&str] = if has_resent {
                &["resent-to", "resent-cc", "resent-bcc"]
            } else {
                &["to", "cc", "bcc"]
            };
            if wanted.contains(&lname.as_str()) {
                for mb in address::parse_address_list(&h.value()) {
                    if !mb.address.is_empty() {
                        extracted.push(mb.address);
                    }
                }
            }
        }
        match lname.as_str() {
            "date" => saw_date = true,
            "message-id" => {
                saw_mid = true;
                message_id = Some(h.value().trim().to_string());
            }
            "from" => saw_from = true,
            "to" | "cc" => saw_to = true,
            _ => {}
        }
        if c.drop_headers.contains(&lname) {
            continue;
        }
        let raw: Vec<u8> = if local
            && (SENDER_HEADERS.contains(&lname.as_str())
                || RECIPIENT_HEADERS.contains(&lname.as_str()))
        {
            let value = h.value();
            let rewritten = address::rewrite_address_list(&value, &mut |a| c.rewriter.rewrite(a));
            if rewritten == value {
                h.raw.clone()
            } else {
                format!("{}: {rewritten}", h.name).into_bytes()
            }
        } else {
            h.raw.clone()
        };
        // As Postfix's cleanup: a header longer than header_size_limit loses the excess;
        // the headers after it are kept.
        let raw = if c.header_size_limit > 0 && raw.len() > c.header_size_limit {
            let mut cut = raw[..c.header_size_limit].to_vec();
            while cut.last().is_some_and(|b| b.is_ascii_whitespace()) {
                cut.pop();
            }
            cut
        } else {
            raw
        };
        out.extend_from_slice(&raw);
        out.push(b'\n');
    }

    if !saw_mid && add_missing {
        // With long queue IDs, which carry the time already, Postfix uses the bare ID.
        let mid = format!("<{id}@{}>", c.myhostname);
        out.extend_from_slice(format!("Message-Id: {mid}\n").as_bytes());
        message_id = Some(mid);
    }
    if !saw_date && add_missing {
        out.extend_from_slice(format!("Date: {date}\n").as_bytes());
    }
    if !saw_from && add_missing {
        let line = match sub.full_name.as_deref().map(str::trim) {
            Some(name) if !name.is_empty() => {
                if c.hfrom_format_standard {
                    format!("From: {} <{sender}>\n", phrase(name))
                } else {
                    format!("From: {sender} ({name})\n")
                }
            }
            _ if sender.is_empty() => "From: MAILER-DAEMON\n".to_string(),
            _ => format!("From: {sender}\n"),
        };
        out.extend_from_slice(line.as_bytes());
    }
    if !saw_to && add_missing && !c.undisclosed_recipients_header.is_empty() {
        out.extend_from_slice(c.undisclosed_recipients_header.as_bytes());
        out.push(b'\n');
    }
    out.push(b'\n');
    out.extend_from_slice(body);
    Built {
        content: out,
        extracted,
        message_id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_ends() {
        assert_eq!(normalize_line_ends(b"a\r\nb\r\n"), b"a\nb\n");
        assert_eq!(normalize_line_ends(b"a\rb"), b"a b\n");
        assert_eq!(normalize_line_ends(b""), b"");
        assert_eq!(normalize_line_ends(b"x"), b"x\n");
    }

    #[test]
    fn from_lines_are_skipped() {
        assert_eq!(
            skip_from_lines(b"From a b\n>From c\nSubject: x\n"),
            b"Subject: x\n"
        );
        assert_eq!(
            skip_from_lines(b"Subject: x\nFrom y\n"),
            b"Subject: x\nFrom y\n"
        );
    }

    #[test]
    fn phrases() {
        assert_eq!(phrase("Cron Daemon"), "Cron Daemon");
        assert_eq!(phrase("Doe, John"), "\"Doe, John\"");
        assert_eq!(phrase("Zoë"), "=?UTF-8?B?Wm/Dqw==?=");
    }

    #[test]
    fn base64_vectors() {
        for (i, o) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foobar", "Zm9vYmFy"),
        ] {
            assert_eq!(base64(i.as_bytes()), o);
        }
    }
}
