//! SMTP smuggling and command injection cannot get a second message or a forged envelope
//! past smtpd: every published end-of-data look-alike (`\n.\n`, `\n.\r\n`, `\r\n.\n`,
//! `\r.\r`, `\r\n.\r`, ...) followed by a whole second transaction in the same write yields
//! one message, with the smuggled text inside it; `smtpd_forbid_bare_newline = reject`
//! refuses bare LFs (`550 5.5.2 ... Error: bare <LF> received`) except for clients in
//! `smtpd_forbid_bare_newline_exclusions`, which keep the old behaviour; commands sent ahead
//! where RFC 2920 forbids it end the session (`554 5.5.0`); addresses with a leading `-`,
//! NUL, CR or LF, or 8-bit without SMTPUTF8 are refused.

use std::net::Ipv4Addr;

use crate::common::*;
use crate::smtp_wire::{client_label, Reply, Wire};

/// The published end-of-data look-alikes (SEC Consult 2023, Postfix's smtp-smuggling page),
/// with a name for failure messages.
const SEQUENCES: [(&str, &[u8]); 12] = [
    ("LF.LF", b"\n.\n"),
    ("LF.CRLF", b"\n.\r\n"),
    ("CRLF.LF", b"\r\n.\n"),
    ("CR.CR", b"\r.\r"),
    ("CRLF.CR", b"\r\n.\r"),
    ("CRLF.CRCRLF", b"\r\n.\r\r\n"),
    ("CR.CRLF", b"\r.\r\n"),
    ("CR.LF", b"\r.\n"),
    ("LF.CR", b"\n.\r"),
    ("CRLF.NULCRLF", b"\r\n.\x00\r\n"),
    ("CRLF NUL.CRLF", b"\r\n\x00.\r\n"),
    ("LF.LF again", b"\r\n\n.\n"),
];

/// Bytes sent after the 354: a first message, the look-alike, then a whole second
/// transaction that only a vulnerable server would run.
fn smuggling_payload(tag: &str, seq: &[u8], rcpt: &str) -> Vec<u8> {
    let mut p = format!("Subject: first {tag}\r\n\r\nfirst body").into_bytes();
    p.extend_from_slice(seq);
    p.extend_from_slice(
        format!(
            "MAIL FROM:<smuggled@client.example>\r\nRCPT TO:<{rcpt}>\r\nDATA\r\n\
             Subject: smuggled\r\n\r\nsmuggled body\r\n.\r\n"
        )
        .as_bytes(),
    );
    p
}

fn assert_reply(r: &Reply, wire: &str) {
    assert_eq!(r.wire(), wire, "reply");
}

/// A session from `src` up to the 354 of DATA.
fn open_data(addr: &str, src: Ipv4Addr, rcpt: &str) -> Wire {
    let mut w = Wire::connect_from(src, addr);
    assert_eq!(w.reply().code, 220);
    w.ehlo("client.example");
    assert_reply(
        &w.cmd("MAIL FROM:<first@client.example>"),
        "250 2.1.0 Ok\r\n",
    );
    assert_reply(&w.cmd(&format!("RCPT TO:<{rcpt}>")), "250 2.1.5 Ok\r\n");
    assert_reply(&w.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    w
}

const OUTSIDE: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

#[test]
fn every_published_smuggling_sequence_yields_one_message() {
    let u = user("pt-smtp5");
    // 127.0.0.2 is outside mynetworks, so smtpd_forbid_bare_newline_exclusions
    // ($mynetworks) does not cover it: the default `normalize` applies.
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .smtpd(&[])
        .start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);
    for (i, (name, seq)) in SEQUENCES.iter().enumerate() {
        let mut w = open_data(&inst.smtp_addr(), OUTSIDE, &rcpt);
        w.send(&smuggling_payload(&i.to_string(), seq, &rcpt));
        let r = w.reply();
        assert!(
            r.code == 250 && r.text().starts_with("2.0.0 Ok: queued as "),
            "{name}: {r:?}"
        );
        // The next reply is the one to QUIT: nothing smuggled was executed.
        assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
        assert_eq!(w.read_to_eof(), "", "{name}");
    }
    let n = SEQUENCES.len();
    inst.wait_log(&["status=sent (delivered to mailbox)"], n);
    inst.wait_queue_empty();
    assert_eq!(inst.log_lines(&["postfix/smtpd", ": client="]).len(), n);
    assert!(inst
        .log_lines(&["from=<smuggled@client.example>"])
        .is_empty());
    let label = client_label(&inst.log(), "127.0.0.2");
    assert_eq!(
        inst.log_lines(&[&format!(
            "disconnect from {label} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
        )])
        .len(),
        n
    );
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), n, "{msgs:#?}");
    for (i, (name, _)) in SEQUENCES.iter().enumerate() {
        let m = &msgs[i];
        assert_eq!(
            m.header("Subject"),
            Some(format!("first {i}").as_str()),
            "{name}"
        );
        assert_eq!(m.header("Return-Path"), Some("<first@client.example>"));
        // The smuggled transaction is text inside the first message.
        for text in [
            "first body",
            "MAIL FROM:<smuggled@client.example>",
            &format!("RCPT TO:<{rcpt}>"),
            "smuggled body",
        ] {
            assert!(
                m.body.contains(text),
                "{name}: {text:?} not in {:?}",
                m.body
            );
        }
    }
}

#[test]
fn bare_newline_reject_refuses_bare_lf_but_not_bare_cr() {
    let u = user("pt-smtp5");
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .smtpd(&["smtpd_forbid_bare_newline=reject"])
        .start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);
    for (name, seq) in [
        ("LF.LF", &b"\n.\n"[..]),
        ("LF.CRLF", b"\n.\r\n"),
        ("CRLF.LF", b"\r\n.\n"),
    ] {
        let mut w = open_data(&inst.smtp_addr(), OUTSIDE, &rcpt);
        w.send(&smuggling_payload(name, seq, &rcpt));
        assert_reply(
            &w.reply(),
            "550 5.5.2 test.example Error: bare <LF> received\r\n",
        );
        // The session goes on; nothing was queued.
        assert_reply(&w.cmd("NOOP"), "250 2.0.0 Ok\r\n");
        assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    }
    let label = client_label(&inst.log(), "127.0.0.2");
    assert_eq!(
        inst.log_lines(&[&format!(
            "reject: END-OF-MESSAGE from {label}: bare <LF> received; from=<first@client.example> to=<{rcpt}> proto=ESMTP helo=<client.example>"
        )])
        .len(),
        3,
        "{}",
        inst.log()
    );
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 mail=1 rcpt=1 data=0/1 noop=1 quit=1 commands=5/6"
        )],
        3,
    );
    assert!(inst.log_lines(&[": client="]).is_empty(), "{}", inst.log());

    // A bare CR is not a bare LF: such a message is accepted, as one message.
    let mut w = open_data(&inst.smtp_addr(), OUTSIDE, &rcpt);
    w.send(&smuggling_payload("CR.CR", b"\r.\r", &rcpt));
    let r = w.reply();
    assert!(r.text().starts_with("2.0.0 Ok: queued as "), "{r:?}");
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    inst.wait_log(&["status=sent (delivered to mailbox)"], 1);
    inst.wait_queue_empty();
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    assert!(msgs[0].body.contains("smuggled body"), "{:?}", msgs[0].body);
}

#[test]
fn clients_in_bare_newline_exclusions_keep_the_old_behaviour() {
    let u = user("pt-smtp5");
    // smtpd_forbid_bare_newline_exclusions defaults to $mynetworks: 127.0.0.1 is excluded,
    // 127.0.0.2 is not. Without the pipelining guard, the excluded client sees what every
    // MTA did before 2023: `\n.\n` ends the message and the rest is a second transaction.
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .smtpd(&[
            "smtpd_forbid_bare_newline=reject",
            "smtpd_forbid_unauth_pipelining=no",
        ])
        .start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);

    let mut w = open_data(&inst.smtp_addr(), OUTSIDE, &rcpt);
    w.send(&smuggling_payload("outside", b"\n.\n", &rcpt));
    assert_reply(
        &w.reply(),
        "550 5.5.2 test.example Error: bare <LF> received\r\n",
    );
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");

    let mut w = open_data(&inst.smtp_addr(), Ipv4Addr::LOCALHOST, &rcpt);
    w.send(&smuggling_payload("excluded", b"\n.\n", &rcpt));
    let first = w.reply();
    assert!(
        first.text().starts_with("2.0.0 Ok: queued as "),
        "{first:?}"
    );
    assert_reply(&w.reply(), "250 2.1.0 Ok\r\n");
    assert_reply(&w.reply(), "250 2.1.5 Ok\r\n");
    assert_reply(&w.reply(), "354 End data with <CR><LF>.<CR><LF>\r\n");
    let second = w.reply();
    assert!(
        second.text().starts_with("2.0.0 Ok: queued as "),
        "{second:?}"
    );
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");

    inst.wait_log(&["status=sent (delivered to mailbox)"], 2);
    inst.wait_queue_empty();
    // Two queued messages are two deliveries; qmgr does not promise their order.
    let msgs = read_mbox(&inst.mailbox(&u.name));
    let mut subjects: Vec<&str> = msgs.iter().filter_map(|m| m.header("Subject")).collect();
    subjects.sort_unstable();
    assert_eq!(subjects, vec!["first excluded", "smuggled"]);
    let first = msgs
        .iter()
        .find(|m| m.header("Subject") == Some("first excluded"))
        .expect("the first message");
    assert_eq!(first.body, "first body\n");
}

#[test]
fn commands_sent_ahead_where_rfc_2920_forbids_it_end_the_session() {
    let inst = instance().smtpd(&[]).start();
    let label_of = |inst: &Instance| client_label(&inst.log(), "127.0.0.1");
    let sync = "554 5.5.0 Error: SMTP protocol synchronization\r\n";

    // Talking before the greeting.
    let mut w = Wire::connect(&inst.smtp_addr());
    w.send(b"EHLO client.example\r\nMAIL FROM:<early@client.example>\r\n");
    assert_eq!(
        w.read_to_eof(),
        format!("220 test.example ESMTP Postern\r\n{sync}")
    );

    // Commands sent ahead after HELO (no PIPELINING without EHLO).
    let mut w = Wire::open(&inst.smtp_addr());
    w.send(b"HELO client.example\r\nMAIL FROM:<a@client.example>\r\n");
    assert_eq!(w.read_to_eof(), sync);

    // After EHLO, MAIL and RCPT may be pipelined, but nothing may follow DATA before 354.
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    w.send(b"MAIL FROM:<a@client.example>\r\nRCPT TO:<postmaster@test.example>\r\nDATA\r\nSubject: ahead\r\n\r\nbody\r\n.\r\n");
    assert_reply(&w.reply(), "250 2.1.0 Ok\r\n");
    assert_reply(&w.reply(), "250 2.1.5 Ok\r\n");
    assert_eq!(w.read_to_eof(), sync);

    // NOOP must end a group too.
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    w.send(b"NOOP\r\nNOOP\r\n");
    assert_eq!(w.read_to_eof(), sync);

    let label = label_of(&inst);
    inst.wait_log(&["disconnect from"], 4);
    for (after, rest) in [
        ("EHLO", "MAIL FROM:<early@client.example>"),
        ("HELO", "MAIL FROM:<a@client.example>"),
        ("DATA", "Subject: ahead"),
        ("NOOP", "NOOP"),
    ] {
        let lines = inst.log_lines(&[&format!(
            "improper command pipelining after {after} from {label}: {rest}"
        )]);
        assert_eq!(lines.len(), 1, "after {after}\n{}", inst.log());
    }
    assert!(inst.log_lines(&[": client="]).is_empty());
}

#[test]
fn dangerous_addresses_are_refused() {
    let inst = instance().smtpd(&[]).start();
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    let cases: [(&[u8], &str); 9] = [
        // A leading `-` would be an option to a program that gets the address.
        (
            b"MAIL FROM:<-oQ/tmp/x@client.example>\r\n",
            "501 5.1.7 Bad sender address syntax\r\n",
        ),
        (
            b"MAIL FROM:-f@client.example\r\n",
            "501 5.1.7 Bad sender address syntax\r\n",
        ),
        (
            b"MAIL FROM:<a\x00b@client.example>\r\n",
            "500 5.5.2 Error: bad syntax\r\n",
        ),
        (
            b"MAIL FROM:<a@client.example>\rRCPT TO:<postmaster@test.example>\r\n",
            "500 5.5.2 Error: bad syntax\r\n",
        ),
        (
            "MAIL FROM:<jöran@client.example>\r\n".as_bytes(),
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n",
        ),
        (b"MAIL FROM:<ok@client.example>\r\n", "250 2.1.0 Ok\r\n"),
        (
            b"RCPT TO:<-x@test.example>\r\n",
            "501 5.1.3 Bad recipient address syntax\r\n",
        ),
        (
            b"RCPT TO:<a\rb@test.example>\r\n",
            "500 5.5.2 Error: bad syntax\r\n",
        ),
        (
            "RCPT TO:<postmäster@test.example>\r\n".as_bytes(),
            "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n",
        ),
    ];
    for (line, want) in cases {
        w.send(line);
        assert_eq!(
            w.reply().wire(),
            want,
            "{:?}",
            String::from_utf8_lossy(line)
        );
    }
    // A line break inside an address splits it into two lines, neither of which is an
    // address: the pieces are refused.
    w.send(b"RCPT TO:<a\nb@test.example>\r\n");
    assert_reply(&w.reply(), "501 5.1.3 Bad recipient address syntax\r\n");
    assert_reply(&w.reply(), "500 5.5.2 Error: command not recognized\r\n");
    // Nothing was accepted: DATA has no recipient.
    assert_reply(&w.cmd("DATA"), "554 5.5.1 Error: no valid recipients\r\n");
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 mail=1/6 rcpt=0/4 data=0/1 quit=1 unknown=0/1 commands=3/14"
        )],
        1,
    );
}
