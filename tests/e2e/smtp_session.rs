//! smtpd speaks ESMTP as Postfix's smtpd(8) does, to real clients (swaks, Python's smtplib)
//! and to a raw socket: the greeting, EHLO's extension list, HELO, NOOP, RSET, VRFY (and
//! `disable_vrfy_command`), QUIT; a whole transaction delivered to a local mbox with
//! Postfix's `Received:` header and log lines; pipelined commands; SIZE at MAIL and during
//! DATA; BDAT chunks; SMTPUTF8; DSN parameters honoured by the notices; `sendmail -bs`.

use crate::common::*;
use crate::smtp_wire::{client_label, python, swaks, Reply, Wire};

/// EHLO's reply with the default settings (no TLS), as Postfix 3.7 sends it.
const EHLO_KEYWORDS: [&str; 9] = [
    "PIPELINING",
    "SIZE 10240000",
    "VRFY",
    "ETRN",
    "ENHANCEDSTATUSCODES",
    "8BITMIME",
    "DSN",
    "SMTPUTF8",
    "CHUNKING",
];

/// The queue ID from `250 2.0.0 Ok: queued as ID` (after BDAT LAST, Postfix's
/// `250 2.0.0 Ok: N bytes queued as ID`).
fn queued_id(r: &Reply) -> String {
    assert_eq!(r.code, 250, "{r:?}");
    let text = r.text();
    let rest = text
        .strip_prefix("2.0.0 Ok: ")
        .unwrap_or_else(|| panic!("not a queued reply: {r:?}"));
    let rest = match rest.split_once(" bytes ") {
        Some((n, tail)) if n.bytes().all(|b| b.is_ascii_digit()) => tail,
        _ => rest,
    };
    rest.strip_prefix("queued as ")
        .unwrap_or_else(|| panic!("not a queued reply: {r:?}"))
        .to_string()
}

fn assert_reply(r: &Reply, wire: &str) {
    assert_eq!(r.wire(), wire, "reply");
}

#[test]
fn greeting_ehlo_helo_noop_rset_vrfy_quit_on_the_wire() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&[]).start();
    let mut w = Wire::connect(&inst.smtp_addr());
    assert_reply(&w.reply(), "220 test.example ESMTP Postern\r\n");
    let ehlo = w.cmd("EHLO client.example");
    let mut expected = vec!["250-test.example".to_string()];
    for (i, k) in EHLO_KEYWORDS.iter().enumerate() {
        let sep = if i + 1 == EHLO_KEYWORDS.len() {
            ' '
        } else {
            '-'
        };
        expected.push(format!("250{sep}{k}"));
    }
    assert_eq!(ehlo.lines, expected);
    assert_reply(&w.cmd("HELO client.example"), "250 test.example\r\n");
    assert_eq!(w.cmd("EHLO client.example").lines, expected);
    assert_reply(&w.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_reply(&w.cmd("NOOP with args"), "250 2.0.0 Ok\r\n");
    assert_reply(&w.cmd("RSET"), "250 2.0.0 Ok\r\n");
    assert_reply(&w.cmd("RSET arg"), "501 5.5.4 Syntax: RSET\r\n");
    assert_reply(
        &w.cmd("HELP"),
        "500 5.5.2 Error: command not recognized\r\n",
    );
    assert_reply(
        &w.cmd(&format!("VRFY {}", u.name)),
        &format!("252 2.0.0 {}\r\n", u.name),
    );
    assert_reply(
        &w.cmd(&format!("VRFY <{}@test.example>", u.name)),
        &format!("252 2.0.0 <{}@test.example>\r\n", u.name),
    );
    assert_reply(
        &w.cmd("VRFY nosuchuser"),
        "550 5.1.1 <nosuchuser>: Recipient address rejected: User unknown in local recipient table\r\n",
    );
    assert_reply(
        &w.cmd("VRFY <nosuchuser@test.example>"),
        "550 5.1.1 <nosuchuser@test.example>: Recipient address rejected: User unknown in local recipient table\r\n",
    );
    assert_reply(
        &w.cmd("VRFY"),
        "501 5.5.4 Syntax: VRFY address [SMTPUTF8]\r\n",
    );
    assert_reply(
        &w.cmd("VRFY someone@remote.example"),
        "252 2.0.0 someone@remote.example\r\n",
    );
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    assert_eq!(w.read_to_eof(), "", "nothing after 221");

    let line = inst.wait_log(&["smtpd", "disconnect from"], 1).remove(0);
    let label = client_label(&inst.log(), "127.0.0.1");
    assert!(
        line.ends_with(&format!(
            "disconnect from {label} helo=1 ehlo=2 rset=1/2 noop=2 vrfy=3/6 quit=1 unknown=0/1 commands=10/15"
        )),
        "{line}"
    );
    for addr in ["nosuchuser", "nosuchuser@test.example"] {
        let reject = format!(
            "NOQUEUE: reject: VRFY from {label}: 550 5.1.1 <{addr}>: Recipient address rejected: \
             User unknown in local recipient table; to=<{addr}> proto=ESMTP helo=<client.example>"
        );
        assert_eq!(
            inst.log_lines(&[&reject]).len(),
            1,
            "{reject}\n{}",
            inst.log()
        );
    }
}

const SMTPLIB_COMMANDS: &str = r#"
import smtplib, sys
port, user = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30)
code, banner = s.ehlo()
print("ehlo", code, banner.decode().split("\n")[0])
print("features", " ".join(sorted(s.esmtp_features)))
print("size", s.esmtp_features.get("size", ""))
print("helo", *s.helo())
print("noop", *s.noop())
print("rset", *s.rset())
print("vrfy-user", *s.verify(user))
print("vrfy-unknown", *s.verify("nosuchuser"))
print("quit", *s.quit())
"#;

#[test]
fn smtplib_sees_postfix_greeting_extensions_and_answers() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&[]).start();
    let out = python(
        inst.root(),
        "commands.py",
        SMTPLIB_COMMANDS,
        &[&inst.smtp_port().to_string(), &u.name],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines,
        vec![
            "ehlo 250 test.example",
            "features 8bitmime chunking dsn enhancedstatuscodes etrn pipelining size smtputf8 vrfy",
            "size 10240000",
            "helo 250 b'test.example'",
            "noop 250 b'2.0.0 Ok'",
            "rset 250 b'2.0.0 Ok'",
            &format!("vrfy-user 252 b'2.0.0 {}'", u.name),
            "vrfy-unknown 550 b'5.1.1 <nosuchuser>: Recipient address rejected: User unknown in local recipient table'",
            "quit 221 b'2.0.0 Bye'",
        ]
    );
    inst.wait_log(
        &[
            "disconnect from",
            "helo=1 ehlo=1 rset=1 noop=1 vrfy=1/2 quit=1 commands=6/7",
        ],
        1,
    );
}

#[test]
fn disable_vrfy_command_hides_and_refuses_vrfy() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&["disable_vrfy_command=yes"]).start();
    let mut w = Wire::open(&inst.smtp_addr());
    let ehlo = w.ehlo("client.example");
    let kw = ehlo.keywords();
    assert!(!kw.iter().any(|k| k == "VRFY"), "{kw:?}");
    assert!(kw.iter().any(|k| k == "ETRN"), "{kw:?}");
    for arg in [format!(" {}", u.name), " nosuchuser".into(), String::new()] {
        assert_reply(
            &w.cmd(&format!("VRFY{arg}")),
            "502 5.5.1 VRFY command is disabled\r\n",
        );
    }
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 vrfy=0/3 quit=1 commands=2/5"
        )],
        1,
    );
}

#[test]
fn swaks_transaction_is_delivered_with_received_header_and_postfix_log_lines() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&[]).start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);
    let out = swaks(&[
        "--server",
        &inst.smtp_addr(),
        "--helo",
        "client.example",
        "--from",
        "sender@client.example",
        "--to",
        &rcpt,
        "--header",
        "Subject: over smtp",
        "--body",
        "Hello over SMTP\nsecond line",
    ]);
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(out.status.success(), "swaks failed:\n{text}");
    let id = text
        .lines()
        .find_map(|l| l.split("250 2.0.0 Ok: queued as ").nth(1))
        .unwrap_or_else(|| panic!("no queued reply in swaks output:\n{text}"))
        .trim()
        .to_string();
    inst.wait_log(&[&format!("{id}: removed")], 1);

    let label = client_label(&inst.log(), "127.0.0.1");
    let name = label.split('[').next().unwrap_or_default().to_string();
    assert_eq!(
        inst.log_lines(&["postfix/smtpd[", &format!("connect from {label}")])
            .iter()
            .filter(|l| !l.contains("disconnect"))
            .count(),
        1
    );
    assert_eq!(
        inst.log_lines(&["postfix/smtpd[", &format!("{id}: client={label}")])
            .len(),
        1,
        "{}",
        inst.log()
    );
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
        )],
        1,
    );
    assert_eq!(
        inst.log_lines(&[
            &format!("{id}: to=<{rcpt}>"),
            "status=sent (delivered to mailbox)"
        ])
        .len(),
        1
    );

    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(m.header("Return-Path"), Some("<sender@client.example>"));
    assert_eq!(m.header("Subject"), Some("over smtp"));
    let received = m.header("Received").expect("a Received header");
    let want = format!(
        "from client.example ({name} [127.0.0.1]) by test.example (Postern) with ESMTP id {id} for <{rcpt}>; "
    );
    assert!(received.starts_with(&want), "{received}\nwanted {want}...");
    // The first Received header is ours: swaks added none.
    assert_eq!(m.headers_named("Received").len(), 1);
    // swaks ends the body with blank lines of its own.
    assert_eq!(m.body.trim_end(), "Hello over SMTP\nsecond line");
}

#[test]
fn helo_transaction_says_smtp_in_the_received_header() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&[]).start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);
    let mut w = Wire::open(&inst.smtp_addr());
    assert_reply(&w.cmd("HELO old.client.example"), "250 test.example\r\n");
    assert_reply(
        &w.cmd("MAIL FROM:<sender@client.example>"),
        "250 2.1.0 Ok\r\n",
    );
    assert_reply(&w.cmd(&format!("RCPT TO:<{rcpt}>")), "250 2.1.5 Ok\r\n");
    assert_reply(&w.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    w.send(b"Subject: test smtp\r\n\r\nHello body\r\n.\r\n");
    let id = queued_id(&w.reply());
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    inst.wait_log(&[&format!("{id}: removed")], 1);
    let label = client_label(&inst.log(), "127.0.0.1");
    let name = label.split('[').next().unwrap_or_default().to_string();
    inst.wait_log(
        &[&format!(
            "disconnect from {label} helo=1 mail=1 rcpt=1 data=1 quit=1 commands=5"
        )],
        1,
    );
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    let received = msgs[0].header("Received").expect("Received");
    assert!(
        received.starts_with(&format!(
            "from old.client.example ({name} [127.0.0.1]) by test.example (Postern) with SMTP id {id} for <{rcpt}>; "
        )),
        "{received}"
    );
    assert_eq!(msgs[0].body, "Hello body\n");
}

const PIPELINE: &str = r#"
import smtplib, sys
port, rcpt = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30)
s.ehlo()
assert s.does_esmtp and s.has_extn("pipelining")
# Everything up to DATA in one write, as RFC 2920 allows after EHLO.
s.send(("MAIL FROM:<sender@client.example>\r\n"
        "RCPT TO:<nosuchuser@test.example>\r\n"
        "RCPT TO:<%s>\r\n"
        "DATA\r\n" % rcpt).encode())
for _ in range(4):
    print(*s.getreply())
s.send(b"Subject: pipelined\r\n\r\nfirst\r\n.\r\n"
       b"MAIL FROM:<sender@client.example>\r\n"
       b"RCPT TO:<" + rcpt.encode() + b">\r\n"
       b"DATA\r\n")
for _ in range(4):
    print(*s.getreply())
s.send(b"Subject: pipelined again\r\n\r\nsecond\r\n.\r\nQUIT\r\n")
for _ in range(2):
    print(*s.getreply())
"#;

#[test]
fn pipelined_commands_get_their_replies_in_order() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&[]).start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);
    let out = python(
        inst.root(),
        "pipeline.py",
        PIPELINE,
        &[&inst.smtp_port().to_string(), &rcpt],
    );
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(lines.len(), 10, "{out}");
    assert_eq!(
        &lines[..4],
        &[
            "250 b'2.1.0 Ok'",
            "550 b'5.1.1 <nosuchuser@test.example>: Recipient address rejected: User unknown in local recipient table'",
            "250 b'2.1.5 Ok'",
            "354 b'End data with <CR><LF>.<CR><LF>'",
        ]
    );
    assert!(lines[4].starts_with("250 b'2.0.0 Ok: queued as "), "{out}");
    assert_eq!(
        &lines[5..8],
        &[
            "250 b'2.1.0 Ok'",
            "250 b'2.1.5 Ok'",
            "354 b'End data with <CR><LF>.<CR><LF>'"
        ]
    );
    assert!(lines[8].starts_with("250 b'2.0.0 Ok: queued as "), "{out}");
    assert_eq!(lines[9], "221 b'2.0.0 Bye'");
    inst.wait_log(&["status=sent (delivered to mailbox)"], 2);
    inst.wait_queue_empty();
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 mail=2 rcpt=2/3 data=2 quit=1 commands=8/9"
        )],
        1,
    );
    inst.wait_log(
        &[&format!(
            "NOQUEUE: reject: RCPT from {label}: 550 5.1.1 <nosuchuser@test.example>: Recipient address rejected: User unknown in local recipient table; from=<sender@client.example> to=<nosuchuser@test.example> proto=ESMTP helo=<client.example>"
        )],
        1,
    );
    // Two messages are two deliveries, in no promised order.
    let mut msgs = read_mbox(&inst.mailbox(&u.name));
    msgs.sort_by(|a, b| a.header("Subject").cmp(&b.header("Subject")));
    let subjects: Vec<&str> = msgs.iter().filter_map(|m| m.header("Subject")).collect();
    assert_eq!(subjects, vec!["pipelined", "pipelined again"]);
    assert_eq!(msgs[0].body, "first\n");
    assert_eq!(msgs[1].body, "second\n");
}

#[test]
fn message_size_limit_refuses_size_at_mail_and_oversized_content() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&["message_size_limit=1000"]).start();
    let rcpt = format!("{}@test.example", u.name);
    let mut w = Wire::open(&inst.smtp_addr());
    let ehlo = w.ehlo("client.example");
    assert!(ehlo.keywords().iter().any(|k| k == "SIZE 1000"), "{ehlo:?}");
    assert_reply(
        &w.cmd("MAIL FROM:<sender@client.example> SIZE=2000"),
        "552 5.3.4 Message size exceeds fixed limit\r\n",
    );
    assert_reply(
        &w.cmd("MAIL FROM:<sender@client.example> SIZE=1000"),
        "250 2.1.0 Ok\r\n",
    );
    assert_reply(&w.cmd("RSET"), "250 2.0.0 Ok\r\n");
    assert_reply(
        &w.cmd("MAIL FROM:<sender@client.example>"),
        "250 2.1.0 Ok\r\n",
    );
    assert_reply(&w.cmd(&format!("RCPT TO:<{rcpt}>")), "250 2.1.5 Ok\r\n");
    assert_reply(&w.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    let mut big = String::from("Subject: big\r\n\r\n");
    for i in 0..40 {
        big.push_str(&format!(
            "line {i:02} 0123456789012345678901234567890123456789\r\n"
        ));
    }
    big.push_str(".\r\n");
    w.send(big.as_bytes());
    assert_reply(&w.reply(), "552 5.3.4 Error: message file too big\r\n");
    // The session goes on.
    assert_reply(
        &w.cmd("MAIL FROM:<sender@client.example>"),
        "250 2.1.0 Ok\r\n",
    );
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");

    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 mail=3/4 rcpt=1 data=0/1 rset=1 quit=1 commands=7/9"
        )],
        1,
    );
    assert_eq!(
        inst.log_lines(&[&format!(
            "NOQUEUE: reject: MAIL from {label}: 552 5.3.4 Message size exceeds fixed limit; from=<sender@client.example> proto=ESMTP helo=<client.example>"
        )])
        .len(),
        1,
        "{}",
        inst.log()
    );
    assert!(inst.log_lines(&["client="]).is_empty(), "{}", inst.log());
    for q in ["incoming", "active", "deferred", "hold", "maildrop"] {
        assert!(inst.queue_ids(q).is_empty(), "{q}: {:?}", inst.queue_ids(q));
    }
}

#[test]
fn bdat_chunks_are_delivered_byte_for_byte() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&[]).start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    // MAIL, RCPT and the first chunk in one write (BDAT may be pipelined).
    let chunk1: &[u8] = b"Subject: chunked\r\nX-Chunk: one\r\n\r\nfirst line\r\n.leading dot\r\n";
    let chunk2: &[u8] = b"a line split ";
    let chunk3: &[u8] = b"across chunks\r\n.\r\nQUIT\r\nlast line\r\n";
    let mut first = format!(
        "MAIL FROM:<sender@client.example> BODY=8BITMIME\r\nRCPT TO:<{rcpt}>\r\nBDAT {}\r\n",
        chunk1.len()
    )
    .into_bytes();
    first.extend_from_slice(chunk1);
    w.send(&first);
    assert_reply(&w.reply(), "250 2.1.0 Ok\r\n");
    assert_reply(&w.reply(), "250 2.1.5 Ok\r\n");
    assert_reply(
        &w.reply(),
        &format!("250 2.0.0 Ok: {} bytes\r\n", chunk1.len()),
    );
    let mut second = format!("BDAT {}\r\n", chunk2.len()).into_bytes();
    second.extend_from_slice(chunk2);
    w.send(&second);
    assert_reply(
        &w.reply(),
        &format!("250 2.0.0 Ok: {} bytes\r\n", chunk1.len() + chunk2.len()),
    );
    let mut last = format!("BDAT {} LAST\r\n", chunk3.len()).into_bytes();
    last.extend_from_slice(chunk3);
    w.send(&last);
    let id = queued_id(&w.reply());
    // An empty LAST chunk ends a second message.
    w.send(format!("MAIL FROM:<sender@client.example>\r\nRCPT TO:<{rcpt}>\r\nBDAT 21\r\nSubject: empty last\r\n").as_bytes());
    assert_reply(&w.reply(), "250 2.1.0 Ok\r\n");
    assert_reply(&w.reply(), "250 2.1.5 Ok\r\n");
    assert_reply(&w.reply(), "250 2.0.0 Ok: 21 bytes\r\n");
    let id2 = queued_id(&w.cmd("BDAT 0 LAST"));
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");

    inst.wait_log(&[&format!("{id}: removed")], 1);
    inst.wait_log(&[&format!("{id2}: removed")], 1);
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 mail=2 rcpt=2 bdat=5 quit=1 commands=11"
        )],
        1,
    );
    // Two messages are two deliveries, in no promised order: the chunked one first.
    let mut msgs = read_mbox(&inst.mailbox(&u.name));
    msgs.sort_by_key(|m| m.header("X-Chunk").is_none());
    assert_eq!(msgs.len(), 2);
    assert_eq!(msgs[0].header("X-Chunk"), Some("one"));
    // Nothing in a chunk is dot-unstuffed or taken as the end of the message.
    assert_eq!(
        msgs[0].body,
        "first line\n.leading dot\na line split across chunks\n.\nQUIT\nlast line\n"
    );
    assert_eq!(msgs[1].header("Subject"), Some("empty last"));
    assert!(msgs[1]
        .header("Received")
        .is_some_and(|r| r.contains(&format!("with ESMTP id {id2} "))));
}

#[test]
fn bdat_without_a_transaction_is_refused_and_the_chunk_skipped() {
    let inst = instance().smtpd(&[]).start();
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    // The chunk holds a command: it must be read as data and ignored, not executed.
    w.send(b"BDAT 12\r\nMAIL FROM:<>");
    assert_reply(&w.reply(), "503 5.5.1 Error: need RCPT command\r\n");
    assert_reply(&w.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    inst.wait_log(&["disconnect from", "bdat=0/1"], 1);
    assert!(inst.log_lines(&["client="]).is_empty());
}

const SMTPUTF8: &str = r#"
import smtplib, sys
port, rcpt = int(sys.argv[1]), sys.argv[2]
s = smtplib.SMTP("127.0.0.1", port, local_hostname="client.example", timeout=30)
s.ehlo()
assert s.has_extn("smtputf8")
msg = ("From: Jöran <jöran@bücher.example>\r\nTo: " + rcpt + "\r\n"
       "Subject: grüße\r\n\r\nunicode body: ünïcödé\r\n").encode("utf-8")
refused = s.sendmail("jöran@bücher.example", [rcpt], msg, mail_options=["SMTPUTF8", "BODY=8BITMIME"])
print("refused", refused)
s.quit()
"#;

#[test]
fn smtputf8_addresses_need_the_smtputf8_parameter() {
    let u = user("pt-smtp1");
    let inst = instance().smtpd(&[]).start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let rcpt = format!("{}@test.example", u.name);

    // Without SMTPUTF8 an 8-bit address is refused, in MAIL and in RCPT.
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    w.send("MAIL FROM:<jöran@bücher.example>\r\n".as_bytes());
    assert_reply(
        &w.reply(),
        "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n",
    );
    assert_reply(
        &w.cmd("MAIL FROM:<sender@client.example>"),
        "250 2.1.0 Ok\r\n",
    );
    w.send("RCPT TO:<jöran@test.example>\r\n".as_bytes());
    assert_reply(
        &w.reply(),
        "553 5.6.7 Must declare SMTPUTF8 to send unicode address\r\n",
    );
    assert_reply(&w.cmd("RSET"), "250 2.0.0 Ok\r\n");
    // With it the same sender is accepted.
    w.send("MAIL FROM:<jöran@bücher.example> SMTPUTF8\r\n".as_bytes());
    assert_reply(&w.reply(), "250 2.1.0 Ok\r\n");
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");

    // A whole SMTPUTF8 transaction from smtplib is delivered with its UTF-8 intact.
    let out = python(
        inst.root(),
        "utf8.py",
        SMTPUTF8,
        &[&inst.smtp_port().to_string(), &rcpt],
    );
    assert_eq!(out.trim(), "refused {}");
    inst.wait_log(&["status=sent (delivered to mailbox)"], 1);
    inst.wait_log(&["from=<jöran@bücher.example>"], 1);
    // Python's mailbox module cannot read a From_ line with UTF-8 in it: look at the bytes.
    let raw = std::fs::read(inst.mailbox(&u.name)).expect("mbox");
    let raw = String::from_utf8(raw).expect("the mbox is UTF-8");
    assert_eq!(
        raw.matches("\nReturn-Path: ").count(),
        1,
        "one message\n{raw}"
    );
    assert!(raw.starts_with("From jöran@bücher.example "), "{raw}");
    for want in [
        "\nReturn-Path: <jöran@bücher.example>\n",
        "\nFrom: Jöran <jöran@bücher.example>\n",
        "\nSubject: grüße\n",
        "\n\nunicode body: ünïcödé\n",
    ] {
        assert!(raw.contains(want), "{want:?} not in\n{raw}");
    }
}

#[test]
fn dsn_parameters_are_honoured_by_success_and_failure_notices() {
    let sender = user("pt-smtp1");
    let rcpt = user("pt-smtp2");
    let inst = instance()
        .aliases("postmaster: root\npt-dsnfail: \"|exit 67\"\n")
        .smtpd(&[])
        .start();
    let _ = std::fs::remove_file(inst.mailbox(&sender.name));
    let _ = std::fs::remove_file(inst.mailbox(&rcpt.name));
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    // ENVID is xtext: `+2D` is "-".
    w.send(
        format!(
            "MAIL FROM:<{s}@test.example> RET=HDRS ENVID=envid+2D42\r\n\
             RCPT TO:<{r}@test.example> NOTIFY=SUCCESS ORCPT=rfc822;ok+40orig.example\r\n\
             RCPT TO:<pt-dsnfail@test.example> NOTIFY=SUCCESS,FAILURE ORCPT=rfc822;fail+40orig.example\r\n\
             DATA\r\n",
            s = sender.name,
            r = rcpt.name
        )
        .as_bytes(),
    );
    for want in [
        "250 2.1.0 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "250 2.1.5 Ok\r\n",
        "354 End data with <CR><LF>.<CR><LF>\r\n",
    ] {
        assert_reply(&w.reply(), want);
    }
    w.send(b"Subject: dsn test\r\n\r\nthe secret body text\r\n.\r\n");
    let id = queued_id(&w.reply());
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");

    inst.wait_log(&[&format!("{id}: sender non-delivery notification")], 1);
    inst.wait_log(&[&format!("{id}: sender delivery status notification")], 1);
    inst.wait_log(&[&format!("{id}: removed")], 1);
    inst.wait_queue_empty();
    inst.wait_log(
        &[
            &format!("{id}: to=<pt-dsnfail@test.example>"),
            "status=bounced",
        ],
        1,
    );

    let msgs = crate::common::read_mime_mbox(&inst.mailbox(&sender.name));
    let notices: Vec<_> = msgs
        .iter()
        .filter(|m| m.from_line.starts_with("MAILER-DAEMON "))
        .collect();
    assert_eq!(notices.len(), 2, "{msgs:#?}");
    let find = |subject: &str| {
        notices
            .iter()
            .find(|m| m.header("Subject") == Some(subject))
            .unwrap_or_else(|| panic!("no notice {subject:?}: {notices:#?}"))
    };
    let success = find("Successful Mail Delivery Report");
    let failure = find("Undelivered Mail Returned to Sender");
    for (notice, action, status, final_rcpt, orcpt) in [
        (
            success,
            "delivered",
            "2.0.0",
            format!("rfc822; {}@test.example", rcpt.name),
            "rfc822;ok@orig.example",
        ),
        (
            failure,
            "failed",
            "5.1.1",
            "rfc822; pt-dsnfail@test.example".to_string(),
            "rfc822;fail@orig.example",
        ),
    ] {
        assert_eq!(notice.content_type, "multipart/report");
        assert_eq!(notice.report_type, "delivery-status");
        let ds = notice
            .part("message/delivery-status")
            .expect("a message/delivery-status part");
        assert_eq!(ds.field(0, "Original-Envelope-Id"), Some("envid-42"));
        assert_eq!(ds.fields.len(), 2, "one recipient per notice: {ds:#?}");
        assert_eq!(ds.field(1, "Final-Recipient"), Some(final_rcpt.as_str()));
        assert_eq!(ds.field(1, "Original-Recipient"), Some(orcpt));
        assert_eq!(ds.field(1, "Action"), Some(action));
        assert_eq!(ds.field(1, "Status"), Some(status));
        // RET=HDRS: the headers come back, the body does not.
        assert!(notice.part("message/rfc822").is_none(), "{notice:#?}");
        let hdrs = notice
            .part("text/rfc822-headers")
            .expect("a text/rfc822-headers part");
        assert!(hdrs.body.contains("Subject: dsn test"), "{}", hdrs.body);
        for p in &notice.parts {
            assert!(!p.body.contains("the secret body text"), "{p:#?}");
        }
    }
}

#[test]
fn sendmail_bs_runs_a_whole_session_on_stdin() {
    let u = user("pt-smtp1");
    let inst = instance().start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let session = format!(
        "EHLO local.client\r\nMAIL FROM:<bs-sender@test.example>\r\nRCPT TO:<{}@test.example>\r\n\
         DATA\r\nSubject: via -bs\r\n\r\nbody via sendmail -bs\r\n..leading dot\r\n.\r\nQUIT\r\n",
        u.name
    );
    let out = inst.run("sendmail", &["-bs"], session.as_bytes());
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "sendmail -bs: {:?}\n{text}",
        out.status
    );
    let lines: Vec<&str> = text.split("\r\n").collect();
    assert!(lines[0].starts_with("220 test.example ESMTP"), "{text}");
    assert!(
        lines.contains(&"250 2.1.0 Ok") && lines.contains(&"250 2.1.5 Ok"),
        "{text}"
    );
    assert!(
        lines.contains(&"354 End data with <CR><LF>.<CR><LF>"),
        "{text}"
    );
    let id = lines
        .iter()
        .find_map(|l| l.strip_prefix("250 2.0.0 Ok: queued as "))
        .unwrap_or_else(|| panic!("no queued reply:\n{text}"))
        .to_string();
    assert!(text.ends_with("221 2.0.0 Bye\r\n"), "{text}");
    inst.wait_log(&[&format!("{id}: removed")], 1);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("Subject"), Some("via -bs"));
    assert_eq!(
        msgs[0].header("Return-Path"),
        Some("<bs-sender@test.example>")
    );
    assert_eq!(msgs[0].body, "body via sendmail -bs\n.leading dot\n");
}
