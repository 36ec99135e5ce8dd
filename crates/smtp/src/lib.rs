//! Postern's mail-format layer, without I/O: addresses and message headers; later the SMTP
//! wire types and session state machines.
//!
//! Owns: [`address`] (RFC 5321 envelope addresses in external form, RFC 5322 header address
//! lists) and [`header`] (splitting a message into header fields and body). Depends on no other
//! Postern crate.
//!
//! Invariants: nothing here reads files, sockets or the clock; every parser accepts arbitrary
//! input without panicking and in linear time (pinned by proptests and by the fuzz entry
//! points [`fuzz_address`] and [`fuzz_header`]).
//!
//! Failure: only [`address::parse_envelope`] can fail, with an [`address::AddressError`] naming
//! what was wrong; header and address-list parsing never fail (malformed pieces are skipped or
//! left in the body, as Postfix's cleanup does).

pub mod address;
pub mod command;
pub mod data;
pub mod header;
pub mod reply;
mod tok822;
pub mod xtext;

/// Fuzz entry point for the address layer (for a `cargo fuzz` target). Runs every address
/// function on `data` and checks their invariants; panics only if one is broken, which is a bug.
pub fn fuzz_address(data: &[u8]) {
    let s = String::from_utf8_lossy(data);
    for allow_utf8 in [false, true] {
        if let Ok(addr) = address::parse_envelope(&s, allow_utf8) {
            assert_eq!(
                address::parse_envelope(&addr, allow_utf8).as_deref(),
                Ok(addr.as_str()),
                "parse_envelope is not idempotent"
            );
            let (local, _) = address::split(&addr);
            assert!(
                addr.is_empty() || address::quote_local(&address::unquote_local(local)) == local,
                "envelope local part is not in canonical quoting"
            );
            let norm = address::normalize_domain(&addr);
            assert_eq!(
                address::normalize_domain(&norm),
                norm,
                "normalize_domain not idempotent"
            );
        }
    }
    let (local, _) = address::split(&s);
    let bare = address::unquote_local(local);
    assert_eq!(address::unquote_local(&address::quote_local(&bare)), bare);
    let _ = address::normalize_domain(&s);

    let found = address::parse_address_list(&s);
    assert!(found.iter().all(|m| !m.address.is_empty()));
    let mut seen = Vec::new();
    let rewritten = address::rewrite_address_list(&s, &mut |a| {
        seen.push(a.to_owned());
        a.to_owned()
    });
    let found_addrs: Vec<&str> = found.iter().map(|m| m.address.as_str()).collect();
    assert_eq!(
        seen, found_addrs,
        "rewrite visited other addresses than parse found"
    );
    assert_eq!(
        address::parse_address_list(&rewritten),
        found,
        "identity rewrite changed the list"
    );
}

/// Fuzz entry point for header splitting (for a `cargo fuzz` target). Parses `data` as a
/// message and checks that the pieces lie in order inside it; panics only on a bug.
pub fn fuzz_header(data: &[u8]) {
    let parsed = header::parse(data);
    let mut pos = parsed.mbox_from.as_ref().map_or(0, |r| r.end);
    assert!(pos <= data.len());
    for field in &parsed.headers {
        let rest = data.get(pos..).unwrap_or(&[]);
        assert!(rest.starts_with(&field.raw), "field is not where expected");
        assert!(field.raw.starts_with(field.name.as_bytes()));
        assert!(field.is(&field.name));
        pos += field.raw.len();
        let rest = data.get(pos..).unwrap_or(&[]);
        pos += if rest.starts_with(b"\r\n") {
            2
        } else {
            usize::from(rest.starts_with(b"\n"))
        };
        let _ = field.value();
        let _ = header::unfold(header::header_value_bytes(&field.raw));
    }
    assert!(pos <= parsed.body_offset && parsed.body_offset <= data.len());
    // Addresses in header values must survive the list parser too.
    for field in &parsed.headers {
        let _ = address::parse_address_list(&field.value());
    }
}

/// Fuzz entry point for the SMTP command parser (for a `cargo fuzz` target). Parses `data`
/// under several option sets and checks what comes back; panics only on a bug.
pub fn fuzz_command(data: &[u8]) {
    let clean = |s: &str| s.len() <= data.len() && !s.contains(['\0', '\r', '\n']);
    for (smtputf8, transaction_utf8, max_line) in [
        (false, false, 0),
        (true, false, 0),
        (true, true, 0),
        (true, true, 64),
    ] {
        let opts = command::ParseOptions {
            smtputf8,
            transaction_utf8,
            max_line,
        };
        match command::parse(data, &opts) {
            Ok(cmd) => {
                assert_eq!(command::verb(data), Some(cmd.verb()), "verb disagrees");
                match &cmd {
                    command::Command::Mail { from, params } => {
                        assert!(clean(from));
                        assert_eq!(
                            address::parse_envelope(from, true).as_deref(),
                            Ok(from.as_str())
                        );
                        assert!(from.is_ascii() || (smtputf8 && params.smtputf8));
                        if let Some(e) = &params.envid {
                            assert!(!e.is_empty() && e.len() <= command::MAX_ENVID_LEN);
                            assert!(e.bytes().all(|b| (0x20..=0x7e).contains(&b)));
                        }
                        assert!(params.auth.as_deref().is_none_or(clean));
                        assert_ne!(params.body, Some(command::Body::BinaryMime));
                    }
                    command::Command::Rcpt { to, params } => {
                        assert!(clean(to) && !to.is_empty());
                        assert!(to.is_ascii() || (smtputf8 && transaction_utf8));
                        if let Some(n) = params.notify {
                            assert!(
                                n == command::notify::NEVER || (n != 0 && n & 1 == 0 && n < 16)
                            );
                        }
                        if let Some(o) = &params.orcpt {
                            assert!(o.len() <= command::MAX_ORCPT_LEN && o.contains(';'));
                            assert!(o.bytes().all(|b| (0x20..=0x7e).contains(&b)));
                        }
                    }
                    command::Command::Helo(s)
                    | command::Command::Ehlo(s)
                    | command::Command::Vrfy(s)
                    | command::Command::Expn(s)
                    | command::Command::Etrn(s)
                    | command::Command::Auth(s)
                    | command::Command::Help(Some(s)) => assert!(clean(s)),
                    command::Command::Bdat { size, .. } => {
                        assert!(*size <= command::MAX_BDAT_SIZE)
                    }
                    _ => {}
                }
            }
            Err(e) => {
                let reply = e.reply();
                let wire = reply.to_wire(true);
                assert!(wire.ends_with(b"\r\n"));
                assert_eq!(wire.iter().filter(|&&b| b == b'\n').count(), 1);
                assert!(wire.len() <= data.len() + 80, "reply larger than its input");
                assert!(reply.is_permanent() || e.closes_session());
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn fuzz_address_holds_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..120)) {
            fuzz_address(&data);
        }

        #[test]
        fn fuzz_address_holds_on_address_soup(s in "[a-c\\-\"<>@,;:.()\\[\\] \t\r\n0-9é]{0,48}") {
            fuzz_address(s.as_bytes());
        }

        #[test]
        fn fuzz_header_holds(data in proptest::collection::vec(any::<u8>(), 0..400)) {
            fuzz_header(&data);
        }
    }

    #[test]
    fn fuzz_entry_points_accept_samples() {
        let samples: &[&[u8]] = &[
            b"",
            b"<>",
            b"user@example.com",
            b"\"Doe, John\" <j@x>, (comment) k@y, group: a@b, c@d;, undisclosed-recipients:;",
            b"<@a,@b:user@d>",
            b"\"unterminated",
            b"From x\nSubject: a\n b\n\nbody",
            b"\xff\xfe\0\r\n\t:::<<>>\"\"(()",
            b"a@b@c",
            b"-x@y",
        ];
        for s in samples {
            fuzz_address(s);
            fuzz_header(s);
        }
    }
}
