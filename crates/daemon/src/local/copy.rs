//! The bytes local delivery writes: Postfix's mail_copy layout.
//!
//! mbox and `/file`: `From sender  asctime` line, `Return-Path:`, `X-Original-To:`,
//! `Delivered-To:`, the message with lines starting `From ` quoted as `>From ` (mboxo, exactly
//! as Postfix), and an empty line. Maildir: the three headers and the message, unquoted.
//! Commands: the From_ line, the headers and the message, no quoting, no empty line.

use std::time::SystemTime;

use super::action::Envelope;

#[derive(Clone, Copy, Debug)]
pub struct Flags {
    pub quote_from: bool,
    pub blank_line: bool,
}

pub const MBOX: Flags = Flags {
    quote_from: true,
    blank_line: true,
};
pub const MAILDIR: Flags = Flags {
    quote_from: false,
    blank_line: false,
};
pub const COMMAND: Flags = Flags {
    quote_from: false,
    blank_line: false,
};

/// `From sender  Wed Nov 25 18:07:56 2026` (with the newline).
pub fn from_line(sender: &str, now: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(now).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    let z = ts.to_zoned_datetime(jiff::tz::TimeZone::system());
    let who = if sender.is_empty() {
        "MAILER-DAEMON"
    } else {
        sender
    };
    format!("From {who}  {}\n", z.strftime("%a %b %e %H:%M:%S %Y"))
}

/// Everything after the From_ line.
pub fn body(env: &Envelope, message: &[u8], flags: Flags) -> Vec<u8> {
    let mut out = Vec::with_capacity(message.len() + 200);
    if env.return_path {
        out.extend_from_slice(format!("Return-Path: <{}>\n", env.sender).as_bytes());
    }
    if !env.original_to.is_empty() {
        out.extend_from_slice(format!("X-Original-To: {}\n", env.original_to).as_bytes());
    }
    if !env.delivered_to.is_empty() {
        out.extend_from_slice(format!("Delivered-To: {}\n", env.delivered_to).as_bytes());
    }
    if flags.quote_from {
        let mut at_line_start = true;
        let mut i = 0;
        while i < message.len() {
            if at_line_start && message[i..].starts_with(b"From ") {
                out.push(b'>');
            }
            let end = memchr::memchr(b'\n', &message[i..]).map_or(message.len(), |p| i + p + 1);
            out.extend_from_slice(&message[i..end]);
            at_line_start = true;
            i = end;
        }
    } else {
        out.extend_from_slice(message);
    }
    if !out.is_empty() && out.last() != Some(&b'\n') {
        out.push(b'\n');
    }
    if flags.blank_line {
        out.push(b'\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mbox_layout() {
        let env = Envelope {
            sender: "a@x".into(),
            return_path: true,
            original_to: "team@x".into(),
            delivered_to: "bob@x".into(),
        };
        let out = body(
            &env,
            b"Subject: s\n\nFrom here\n>From there\nFromage\n",
            MBOX,
        );
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "Return-Path: <a@x>\nX-Original-To: team@x\nDelivered-To: bob@x\nSubject: s\n\n\
             >From here\n>From there\nFromage\n\n"
        );
        let out = body(&env, b"no newline", MAILDIR);
        assert!(out.ends_with(b"no newline\n"));
    }

    #[test]
    fn from_line_shape() {
        let l = from_line("", SystemTime::UNIX_EPOCH);
        assert!(l.starts_with("From MAILER-DAEMON  "), "{l}");
        assert!(l.ends_with("1970\n"), "{l}");
    }
}
