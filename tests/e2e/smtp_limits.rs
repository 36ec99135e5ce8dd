//! smtpd's limits hold a client to what Postfix allows, with Postfix's replies and log
//! lines: `smtpd_recipient_limit` (452 4.5.3), `line_length_limit` on command lines,
//! `smtpd_timeout` (421 4.4.2 and `timeout after ...`), `smtpd_hard_error_limit` (421 4.7.0
//! too many errors), `smtpd_soft_error_limit` with `smtpd_error_sleep_time` (replies slow
//! down), `smtpd_junk_command_limit`, `smtpd_client_connection_count_limit` for clients
//! outside mynetworks, the length of addresses and DSN parameters, and
//! `header_size_limit`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use crate::common::*;
use crate::smtp_wire::{client_label, Reply, Wire};

fn assert_reply(r: &Reply, wire: &str) {
    assert_eq!(r.wire(), wire, "reply");
}

fn queued_id(r: &Reply) -> String {
    r.text()
        .strip_prefix("2.0.0 Ok: queued as ")
        .unwrap_or_else(|| panic!("not a queued reply: {r:?}"))
        .to_string()
}

#[test]
fn recipient_limit_refuses_recipients_past_the_limit() {
    let u = user("pt-smtp4");
    let inst = instance().smtpd(&["smtpd_recipient_limit=2"]).start();
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    assert_reply(
        &w.cmd("MAIL FROM:<sender@client.example>"),
        "250 2.1.0 Ok\r\n",
    );
    assert_reply(
        &w.cmd(&format!("RCPT TO:<{}@test.example>", u.name)),
        "250 2.1.5 Ok\r\n",
    );
    assert_reply(
        &w.cmd("RCPT TO:<postmaster@test.example>"),
        "250 2.1.5 Ok\r\n",
    );
    for extra in ["root@test.example", "postmaster@localhost"] {
        assert_reply(
            &w.cmd(&format!("RCPT TO:<{extra}>")),
            "452 4.5.3 Error: too many recipients\r\n",
        );
    }
    assert_reply(&w.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    w.send(b"Subject: rl\r\n\r\nbody\r\n.\r\n");
    let id = queued_id(&w.reply());
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    inst.wait_log(&[&format!("{id}: removed")], 1);
    assert_eq!(
        inst.log_lines(&[&format!("{id}: from=<sender@client.example>"), "nrcpt=2"])
            .len(),
        1,
        "{}",
        inst.log()
    );
    assert_eq!(inst.log_lines(&[&format!("{id}: to=<")]).len(), 2);
    // As Postfix counts them: the 452s are not errors.
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} ehlo=1 mail=1 rcpt=4 data=1 quit=1 commands=8"
        )],
        1,
    );
}

#[test]
fn command_lines_over_line_length_limit_are_refused_and_the_session_goes_on() {
    let u = user("pt-smtp4");
    let inst = instance().smtpd(&[]).start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let mut w = Wire::open(&inst.smtp_addr());
    // line_length_limit = 2048 (the default): a command line of 2048 bytes is fine ...
    let ehlo = format!("EHLO {}", "h".repeat(2048 - 5));
    let r = w.cmd(&ehlo);
    assert_eq!(r.code, 250, "{r:?}");
    let noop = |n: usize| format!("NOOP {}", "x".repeat(n - 5));
    assert_reply(&w.cmd(&noop(2048)), "250 2.0.0 Ok\r\n");
    // ... one byte more is refused (Postern's deliberate difference: Postfix cuts it).
    for n in [2049, 3000, 50_000] {
        assert_reply(&w.cmd(&noop(n)), "500 5.5.2 Error: line too long\r\n");
    }
    assert_reply(
        &w.cmd(&format!("MAIL FROM:<{}@client.example>", "a".repeat(3000))),
        "500 5.5.2 Error: line too long\r\n",
    );
    // Nothing of an overlong line is taken as a command.
    w.send(format!("NOOP {}RSET\r\n", "y".repeat(3000)).as_bytes());
    assert_reply(&w.reply(), "500 5.5.2 Error: line too long\r\n");
    // The session goes on, and long lines inside DATA are content, kept whole.
    let rcpt = format!("{}@test.example", u.name);
    assert_reply(
        &w.cmd("MAIL FROM:<sender@client.example>"),
        "250 2.1.0 Ok\r\n",
    );
    assert_reply(&w.cmd(&format!("RCPT TO:<{rcpt}>")), "250 2.1.5 Ok\r\n");
    assert_reply(&w.cmd("DATA"), "354 End data with <CR><LF>.<CR><LF>\r\n");
    let long_header = "h".repeat(3000);
    let long_body = "b".repeat(5000);
    w.send(
        format!(
            "Subject: long lines\r\nX-Long: {long_header}\r\n\r\n{long_body}\r\nshort\r\n.\r\n"
        )
        .as_bytes(),
    );
    let id = queued_id(&w.reply());
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    inst.wait_log(&[&format!("{id}: removed")], 1);
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(&[&format!("disconnect from {label} "), "quit=1"], 1);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("X-Long"), Some(long_header.as_str()));
    assert_eq!(msgs[0].body, format!("{long_body}\nshort\n"));
}

#[test]
fn smtpd_timeout_drops_silent_clients_with_421() {
    let inst = instance().smtpd(&["smtpd_timeout=2s"]).start();
    let addr = inst.smtp_addr();
    // Four silent clients at once: after the greeting, after EHLO, inside a command line,
    // inside DATA.
    let mut clients = Vec::new();
    for case in 0..4 {
        let addr = addr.clone();
        clients.push(std::thread::spawn(move || {
            let mut w = Wire::open(&addr);
            match case {
                1 => {
                    w.ehlo("client.example");
                }
                2 => w.send(b"NOOP"),
                3 => {
                    w.ehlo("client.example");
                    w.send(b"MAIL FROM:<sender@client.example>\r\nRCPT TO:<postmaster@test.example>\r\nDATA\r\n");
                    for _ in 0..3 {
                        w.reply();
                    }
                    w.send(b"Subject: x\r\n\r\npartial body\r\n");
                }
                _ => {}
            }
            let t0 = Instant::now();
            let rest = w.read_to_eof();
            (case, rest, t0.elapsed())
        }));
    }
    for c in clients {
        let (case, rest, waited) = c.join().expect("client thread");
        assert_eq!(
            rest, "421 4.4.2 test.example Error: timeout exceeded\r\n",
            "case {case}"
        );
        assert!(
            waited >= Duration::from_millis(1900) && waited < Duration::from_secs(20),
            "case {case}: the timeout came after {waited:?}"
        );
    }
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(&[&format!("disconnect from {label} ")], 4);
    for (after, n) in [("CONNECT", 2), ("EHLO", 1), ("DATA (28 bytes)", 1)] {
        assert_eq!(
            inst.log_lines(&[&format!("timeout after {after} from {label}")])
                .len(),
            n,
            "timeout after {after}\n{}",
            inst.log()
        );
    }
    assert_eq!(
        inst.log_lines(&[&format!("disconnect from {label} commands=0/0")])
            .len(),
        2
    );
    assert_eq!(
        inst.log_lines(&[&format!(
            "disconnect from {label} ehlo=1 mail=1 rcpt=1 data=0/1 commands=3/4"
        )])
        .len(),
        1
    );
    // Nothing of the half-sent message was queued.
    assert!(inst.log_lines(&["client="]).is_empty(), "{}", inst.log());
    inst.wait_queue_empty();
}

#[test]
fn hard_error_limit_disconnects_with_421() {
    let inst = instance().smtpd(&["smtpd_hard_error_limit=3"]).start();
    let mut w = Wire::open(&inst.smtp_addr());
    for i in 0..3 {
        assert_reply(
            &w.cmd(&format!("BOGUS{i}")),
            "500 5.5.2 Error: command not recognized\r\n",
        );
    }
    assert_eq!(
        w.read_to_eof(),
        "421 4.7.0 test.example Error: too many errors\r\n"
    );
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!("disconnect from {label} unknown=0/3 commands=0/3")],
        1,
    );
    assert_eq!(
        inst.log_lines(&[&format!("too many errors after UNKNOWN from {label}")])
            .len(),
        1
    );
}

/// How long the reply to `line` took.
fn timed(w: &mut Wire, line: &str, want: &str) -> Duration {
    let t0 = Instant::now();
    let r = w.cmd(line);
    let took = t0.elapsed();
    assert_reply(&r, want);
    took
}

#[test]
fn soft_error_limit_slows_down_every_reply() {
    let inst = instance()
        .smtpd(&[
            "smtpd_soft_error_limit=2",
            "smtpd_error_sleep_time=2s",
            "smtpd_hard_error_limit=20",
        ])
        .start();
    let mut w = Wire::open(&inst.smtp_addr());
    let ok = "250 2.0.0 Ok\r\n";
    let bad = "500 5.5.2 Error: command not recognized\r\n";
    let fast = Duration::from_millis(1500);
    let slow = Duration::from_millis(1900);
    // Below the soft limit replies come at once.
    for (line, want) in [("NOOP", ok), ("BOGUS1", bad), ("NOOP", ok), ("BOGUS2", bad)] {
        let took = timed(&mut w, line, want);
        assert!(took < fast, "{line}: {took:?}");
    }
    // With 2 errors made, every reply waits smtpd_error_sleep_time, good or bad.
    for (line, want) in [("NOOP", ok), ("BOGUS3", bad), ("NOOP", ok)] {
        let took = timed(&mut w, line, want);
        assert!(took >= slow, "{line} was answered after {took:?}");
    }
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(
        &[&format!(
            "disconnect from {label} noop=4 quit=1 unknown=0/3 commands=5/8"
        )],
        1,
    );
}

#[test]
fn junk_commands_past_the_limit_count_as_errors() {
    let inst = instance()
        .smtpd(&["smtpd_junk_command_limit=5", "smtpd_hard_error_limit=3"])
        .start();
    // Six junk commands are free; each one after that is an error, and the third error
    // ends the session before the next command is read (Postfix: 9 NOOPs, then 421).
    let mut w = Wire::open(&inst.smtp_addr());
    for _ in 0..9 {
        assert_reply(&w.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    }
    assert_eq!(
        w.read_to_eof(),
        "421 4.7.0 test.example Error: too many errors\r\n"
    );
    let label = client_label(&inst.log(), "127.0.0.1");
    inst.wait_log(&[&format!("disconnect from {label} noop=9 commands=9")], 1);
    assert_eq!(
        inst.log_lines(&[&format!("too many errors after NOOP from {label}")])
            .len(),
        1
    );

    // HELO, EHLO, RSET and VRFY are junk too; MAIL is not.
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    assert_reply(&w.cmd("RSET"), "250 2.0.0 Ok\r\n");
    assert_reply(&w.cmd("VRFY postmaster"), "252 2.0.0 postmaster\r\n");
    assert_reply(&w.cmd("HELO client.example"), "250 test.example\r\n");
    assert_reply(&w.cmd("MAIL FROM:<a@client.example>"), "250 2.1.0 Ok\r\n");
    assert_reply(&w.cmd("RSET"), "250 2.0.0 Ok\r\n");
    assert_reply(&w.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    w.ehlo("client.example");
    assert_reply(&w.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_reply(&w.cmd("NOOP"), "250 2.0.0 Ok\r\n");
    assert_eq!(
        w.read_to_eof(),
        "421 4.7.0 test.example Error: too many errors\r\n"
    );
}

#[test]
fn connection_count_limit_applies_to_clients_outside_mynetworks() {
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .smtpd(&["smtpd_client_connection_count_limit=2"])
        .start();
    let addr = inst.smtp_addr();
    let two = Ipv4Addr::new(127, 0, 0, 2);
    let open_from = |src: Ipv4Addr| {
        let mut w = Wire::connect_from(src, &addr);
        let g = w.reply();
        (w, g)
    };
    let (mut a, ga) = open_from(two);
    let (mut b, gb) = open_from(two);
    assert_eq!(ga.code, 220);
    assert_eq!(gb.code, 220);
    // The third connection from the same client is told why and closed.
    let mut c = Wire::connect_from(two, &addr);
    assert_eq!(
        c.read_to_eof(),
        "421 4.7.0 test.example Error: too many connections from 127.0.0.2\r\n"
    );
    // Another client, and a client in mynetworks (smtpd_client_event_limit_exceptions),
    // are not affected.
    for src in [Ipv4Addr::new(127, 0, 0, 3), Ipv4Addr::new(127, 0, 0, 1)] {
        let (mut w, g) = open_from(src);
        assert_eq!(g.code, 220, "from {src}");
        assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    }
    let log = inst.log();
    let label = client_label(&log, "127.0.0.2");
    inst.wait_log(
        &[&format!(
            "warning: Connection concurrency limit exceeded: 3 from {label} for service {addr}"
        )],
        1,
    );
    inst.wait_log(&[&format!("disconnect from {label} commands=0/0")], 1);
    // When one of the two leaves, the client may connect again. (The slot is released just
    // after the `disconnect from` line is written; nothing logs the release itself, so a
    // connection refused in between is retried.)
    assert_reply(&a.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    inst.wait_log(&[&format!("disconnect from {label} quit=1 commands=1")], 1);
    let mut d = inst.wait_until("a third connection from 127.0.0.2 to be accepted", || {
        let (w, g) = open_from(two);
        (g.code == 220).then_some(w)
    });
    assert_reply(&d.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    assert_reply(&b.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    inst.wait_log(&[&format!("disconnect from {label} quit=1 commands=1")], 3);
}

#[test]
fn overlong_addresses_and_dsn_parameters_are_refused() {
    let inst = instance().smtpd(&[]).start();
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    // A domain of 255 characters is the most DNS allows (n from 251 to 313 here).
    let domain = |n: usize| format!("{}{}", "ddddddddd.".repeat(25), "d".repeat(n - 250));
    assert_eq!(domain(255).len(), 255);
    assert_eq!(domain(256).len(), 256);
    assert_reply(
        &w.cmd(&format!("MAIL FROM:<a@{}>", domain(256))),
        "501 5.1.7 Bad sender address syntax\r\n",
    );
    assert_reply(
        &w.cmd(&format!("MAIL FROM:<a@{}>", domain(255))),
        "250 2.1.0 Ok\r\n",
    );
    assert_reply(&w.cmd("RSET"), "250 2.0.0 Ok\r\n");
    // ENVID is at most 100 characters, ORCPT at most 500 (RFC 3461).
    assert_reply(
        &w.cmd(&format!(
            "MAIL FROM:<a@client.example> ENVID={}",
            "e".repeat(101)
        )),
        "501 5.5.4 Bad ENVID parameter syntax\r\n",
    );
    assert_reply(
        &w.cmd(&format!(
            "MAIL FROM:<a@client.example> ENVID={}",
            "e".repeat(100)
        )),
        "250 2.1.0 Ok\r\n",
    );
    let orcpt = |n: usize| format!("rfc822;{}@x.example", "o".repeat(n - 17));
    assert_eq!(orcpt(500).len(), 500);
    assert_reply(
        &w.cmd(&format!(
            "RCPT TO:<postmaster@test.example> ORCPT={}",
            orcpt(501)
        )),
        "501 5.5.4 Error: Bad ORCPT parameter syntax\r\n",
    );
    assert_reply(
        &w.cmd(&format!(
            "RCPT TO:<postmaster@test.example> ORCPT={}",
            orcpt(500)
        )),
        "250 2.1.5 Ok\r\n",
    );
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
}

#[test]
fn header_size_limit_discards_the_excess_of_a_header() {
    let u = user("pt-smtp4");
    let inst = instance()
        .main_cf("header_size_limit = 2000")
        .smtpd(&[])
        .start();
    let _ = std::fs::remove_file(inst.mailbox(&u.name));
    let mut w = Wire::open(&inst.smtp_addr());
    w.ehlo("client.example");
    w.send(
        format!(
            "MAIL FROM:<sender@client.example>\r\nRCPT TO:<{}@test.example>\r\nDATA\r\n",
            u.name
        )
        .as_bytes(),
    );
    for _ in 0..3 {
        w.reply();
    }
    let mut huge = String::from("X-Huge: start");
    for i in 0..200 {
        huge.push_str(&format!("\r\n\tcontinuation line {i:03} 0123456789"));
    }
    w.send(
        format!("Subject: big header\r\n{huge}\r\nX-After: still here\r\n\r\nthe body\r\n.\r\n")
            .as_bytes(),
    );
    let id = queued_id(&w.reply());
    assert_reply(&w.cmd("QUIT"), "221 2.0.0 Bye\r\n");
    inst.wait_log(&[&format!("{id}: removed")], 1);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    // The message is delivered; the oversized header is cut, what follows it is kept.
    assert_eq!(m.header("Subject"), Some("big header"));
    let kept = m.header("X-Huge").expect("X-Huge is kept, cut");
    assert!(kept.starts_with("start continuation line 000"), "{kept}");
    assert!(kept.len() < 2000, "{} bytes kept", kept.len());
    assert_eq!(m.header("X-After"), Some("still here"));
    assert_eq!(m.body, "the body\n");
}
