//! `sendmail` as the programs that really call it invoke it (cronie, Debian cron, PHP `mail()`,
//! mailx, git send-email; see reference/postfix-behaviour.md §2.3): each invocation is accepted,
//! the envelope sender shows up as `Return-Path`, every recipient is reached, `-t` takes the
//! recipients from To/Cc/Bcc (removing Bcc) and merges them with the argument recipients, `-F`
//! puts the full name in the `From:` that cleanup adds, a lone `.` ends the input unless `-i`/`-oi`
//! is given, and unusual input (no final newline, no body, empty input, 8-bit and NUL bytes) is
//! delivered intact. Everything is read back from the mbox with Python's `mailbox` module.
//!
//! Recipients are extensions of one local user (`recipient_delimiter = +`), so that each copy is
//! told apart by its `Delivered-To:` whether the tests run as root (a real `pt-cli` account) or as
//! an ordinary user (every test user is then that user).

use crate::common::*;
use testkit::ReadMessage;

/// The login name sendmail uses as the sender when there is no `-f`.
fn login_name() -> String {
    nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()
        .expect("current user has a passwd entry")
        .name
}

fn started() -> (Instance, User) {
    let u = user("pt-cli");
    let inst = instance().main_cf("recipient_delimiter = +").start();
    (inst, u)
}

/// `sendmail ARGS` with raw bytes on stdin; panics unless it exits 0.
fn send_bytes(inst: &Instance, args: &[&str], message: &[u8]) {
    let out = inst.run("sendmail", args, message);
    assert!(
        out.status.success(),
        "sendmail {args:?} failed: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Wait until each of `rcpts` (full addresses) has a `status=sent` line; returns the queue ID
/// of the first one's message.
fn wait_sent(inst: &Instance, rcpts: &[String]) -> String {
    let mut id = String::new();
    for r in rcpts {
        let lines = inst.wait_log(
            &[&format!(" to=<{r}>"), "status=sent (delivered to mailbox)"],
            1,
        );
        if id.is_empty() {
            id = queue_id_of(&lines[0]);
        }
    }
    inst.wait_log(&[&format!("{id}: removed")], 1);
    id
}

/// `... postfix/local[N]: QUEUEID: to=<...>` → QUEUEID.
fn queue_id_of(line: &str) -> String {
    let rest = &line[line.find("]: ").expect("log line has a program tag") + 3..];
    rest[..rest.find(':').expect("queue ID")].to_string()
}

/// The copy whose `Delivered-To:` is `addr`; exactly one must exist.
fn copy_for<'a>(msgs: &'a [ReadMessage], addr: &str) -> &'a ReadMessage {
    let found: Vec<&ReadMessage> = msgs
        .iter()
        .filter(|m| m.header("Delivered-To") == Some(addr))
        .collect();
    assert_eq!(found.len(), 1, "copies delivered to {addr}: {msgs:#?}");
    found[0]
}

fn addr(u: &User, ext: &str) -> String {
    format!("{}+{ext}@test.example", u.name)
}

#[test]
fn cronie_recipients_from_headers_sender_from_f_and_full_name_from_capital_f() {
    // cronie: MAILFMT "-FCronDaemon -i -odi -oem -oi -t -f %s"; its message has To: and
    // Subject: but (here) no From:, so cleanup adds one with the -F full name.
    let (inst, u) = started();
    let to = format!("{}+cron", u.name);
    inst.send(
        &[
            "-FCronDaemon",
            "-i",
            "-odi",
            "-oem",
            "-oi",
            "-t",
            "-f",
            &u.name,
        ],
        &format!(
            "To: {to}\nSubject: Cron <{0}@test> run-parts\n\nline one\n.\nafter a lone dot\n",
            u.name
        ),
    );
    wait_sent(&inst, &[addr(&u, "cron")]);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1, "{msgs:#?}");
    let m = &msgs[0];
    let sender = format!("{}@test.example", u.name);
    assert_eq!(
        m.header("Return-Path"),
        Some(format!("<{sender}>").as_str())
    );
    assert!(
        m.from_line.starts_with(&format!("{sender} ")),
        "{}",
        m.from_line
    );
    assert_eq!(m.header("Delivered-To"), Some(addr(&u, "cron").as_str()));
    assert_eq!(
        m.header("From"),
        Some(format!("CronDaemon <{sender}>").as_str())
    );
    assert_eq!(
        m.header("To"),
        Some(addr(&u, "cron").as_str()),
        "a bare To: is qualified with myorigin"
    );
    assert_eq!(
        m.body, "line one\n.\nafter a lone dot\n",
        "-i keeps a lone dot"
    );
    inst.wait_log(&[&format!("from=<{sender}>, size=")], 1);
}

#[test]
fn debian_cron_argument_recipient_8bitmime_and_default_sender() {
    // Debian cron: "/usr/sbin/sendmail -FCronDaemon -i -B8BITMIME -oem USER" with an 8-bit body.
    let (inst, u) = started();
    let rcpt = format!("{}+debcron", u.name);
    let message = "From: root (Cron Daemon)\nTo: somebody-else\nSubject: Cron <root@test> df\n\
                   Content-Type: text/plain; charset=UTF-8\n\nr\u{e9}sum\u{e9} \u{2014} 100%\n";
    inst.send(
        &["-FCronDaemon", "-i", "-B8BITMIME", "-oem", &rcpt],
        message,
    );
    wait_sent(&inst, &[addr(&u, "debcron")]);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(
        msgs.len(),
        1,
        "without -t the To: header adds no recipient: {msgs:#?}"
    );
    let m = &msgs[0];
    let sender = format!("{}@test.example", login_name());
    assert_eq!(
        m.header("Return-Path"),
        Some(format!("<{sender}>").as_str())
    );
    // An existing From: is kept (-F unused), its bare address qualified as cleanup does.
    assert_eq!(m.header("From"), Some("root@test.example (Cron Daemon)"));
    assert_eq!(m.header("X-Original-To"), Some(rcpt.as_str()));
    let raw = std::fs::read(inst.mailbox(&u.name)).expect("read mbox");
    assert!(
        contains(&raw, "r\u{e9}sum\u{e9} \u{2014} 100%\n".as_bytes()),
        "8-bit body bytes delivered unchanged"
    );
    assert!(
        inst.log_lines(&["somebody-else"]).is_empty(),
        "To: must not be used without -t"
    );
}

#[test]
fn php_mail_with_and_without_dash_f() {
    // PHP: sendmail_path = "/usr/sbin/sendmail -t -i", and mail()'s 5th argument "-f addr".
    let (inst, u) = started();
    let php = |ext: &str| {
        format!(
            "To: {}+{ext}\nSubject: from php\nX-PHP-Originating-Script: 33:contact.php\n\
             MIME-Version: 1.0\nContent-Type: text/plain; charset=UTF-8\n\n.\nHello from PHP\n",
            u.name
        )
    };
    inst.send(&["-t", "-i"], &php("php1"));
    inst.send(&["-t", "-i", "-f", "www-data@shop.example"], &php("php2"));
    inst.send(&["-t", "-i", "-fbounces@shop.example"], &php("php3"));
    wait_sent(&inst, &[addr(&u, "php1")]);
    wait_sent(&inst, &[addr(&u, "php2")]);
    wait_sent(&inst, &[addr(&u, "php3")]);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 3, "{msgs:#?}");
    let login = format!("<{}@test.example>", login_name());
    assert_eq!(
        copy_for(&msgs, &addr(&u, "php1")).header("Return-Path"),
        Some(login.as_str())
    );
    let m2 = copy_for(&msgs, &addr(&u, "php2"));
    assert_eq!(m2.header("Return-Path"), Some("<www-data@shop.example>"));
    assert!(
        m2.from_line.starts_with("www-data@shop.example "),
        "{}",
        m2.from_line
    );
    let m3 = copy_for(&msgs, &addr(&u, "php3"));
    assert_eq!(
        m3.header("Return-Path"),
        Some("<bounces@shop.example>"),
        "-f with an attached value"
    );
    for m in &msgs {
        assert_eq!(m.body, ".\nHello from PHP\n", "-i: the lone dot is content");
        assert_eq!(m.header("X-PHP-Originating-Script"), Some("33:contact.php"));
    }
}

#[test]
fn mailx_oi_f_t_reaches_to_and_cc() {
    // mailx / s-nail: "/usr/sbin/sendmail -oi -f root@host -t".
    let (inst, u) = started();
    let message = format!(
        "Date: Mon, 02 Jan 2023 10:00:00 +0000\nTo: {0}+mx1\nCc: Someone <{0}+mx2@test.example>\n\
         Subject: report\nUser-Agent: s-nail v14.9.22\nMessage-Id: <mailx.1@host.example>\n\n\
         disk usage ok\n.\n",
        u.name
    );
    inst.send(&["-oi", "-f", "root@host.example", "-t"], &message);
    wait_sent(&inst, &[addr(&u, "mx1"), addr(&u, "mx2")]);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    for a in [addr(&u, "mx1"), addr(&u, "mx2")] {
        let m = copy_for(&msgs, &a);
        assert_eq!(m.header("Return-Path"), Some("<root@host.example>"));
        assert_eq!(
            m.header("Message-Id"),
            Some("<mailx.1@host.example>"),
            "an existing Message-Id is kept"
        );
        assert_eq!(m.header("Date"), Some("Mon, 02 Jan 2023 10:00:00 +0000"));
        assert_eq!(
            m.body, "disk usage ok\n.\n",
            "-oi: a lone dot does not end the input"
        );
    }
}

#[test]
fn git_send_email_argument_recipients_with_envelope_sender() {
    // git send-email: "sendmail -f <envelope-sender> -i <recipients...>"; the To: in the patch
    // mail names a list that must NOT be extracted (no -t).
    let (inst, u) = started();
    let (r1, r2) = (format!("{}+git1", u.name), format!("{}+git2", u.name));
    let patch = "From: Dev Eloper <dev@example.org>\nTo: list@lists.example.org\n\
                 Subject: [PATCH 1/1] fix the frobnicator\nDate: Tue, 3 Jan 2023 12:00:00 +0100\n\
                 Message-ID: <20230103110000.1-1-dev@example.org>\nX-Mailer: git-send-email 2.39.2\n\n\
                 ---\n frob.c | 2 +-\n\ndiff --git a/frob.c b/frob.c\n-\told();\n+\tnew();\n.\n-- \n2.39.2\n";
    inst.send(&["-f", "dev@example.org", "-i", &r1, &r2], patch);
    let id = wait_sent(&inst, &[addr(&u, "git1"), addr(&u, "git2")]);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 2, "{msgs:#?}");
    for a in [addr(&u, "git1"), addr(&u, "git2")] {
        let m = copy_for(&msgs, &a);
        assert_eq!(m.header("Return-Path"), Some("<dev@example.org>"));
        assert_eq!(m.header("From"), Some("Dev Eloper <dev@example.org>"));
        assert_eq!(
            m.header("Message-ID"),
            Some("<20230103110000.1-1-dev@example.org>")
        );
        assert!(
            m.body.ends_with("+\tnew();\n.\n-- \n2.39.2\n"),
            "{:?}",
            m.body
        );
    }
    assert_eq!(
        inst.log_lines(&[&format!("{id}: from=<dev@example.org>"), "nrcpt=2"])
            .len(),
        1
    );
    assert!(
        inst.log_lines(&["list@lists.example.org"]).is_empty(),
        "To: must not be used without -t"
    );
}

#[test]
fn dash_t_merges_argument_recipients_and_removes_bcc() {
    let (inst, u) = started();
    let message = format!(
        "From: Sender <sender@test.example>\nTo: {0}+to\nCc: {0}+cc@test.example\nBcc: {0}+bcc\n\
         Subject: merged\n\nbody\n",
        u.name
    );
    inst.send(
        &[
            "-t",
            "-f",
            "sender@test.example",
            &format!("{}+arg", u.name),
        ],
        &message,
    );
    let all: Vec<String> = ["to", "cc", "bcc", "arg"]
        .iter()
        .map(|e| addr(&u, e))
        .collect();
    let id = wait_sent(&inst, &all);
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    for a in &all {
        let m = copy_for(&msgs, a);
        assert!(
            m.headers_named("Bcc").is_empty(),
            "Bcc: must be removed: {m:#?}"
        );
        assert_eq!(m.header("To"), Some(addr(&u, "to").as_str()));
        assert_eq!(m.header("Cc"), Some(addr(&u, "cc").as_str()));
        assert_eq!(m.header("Return-Path"), Some("<sender@test.example>"));
    }
    assert_eq!(
        inst.log_lines(&[&format!("{id}: from=<sender@test.example>"), "nrcpt=4"])
            .len(),
        1
    );
}

#[test]
fn lone_dot_ends_input_only_without_i() {
    let (inst, u) = started();
    let text = |ext: &str| format!("Subject: dot {ext}\n\nbefore\n.\nafter\n");
    inst.send(&[&format!("{}+plain", u.name)], &text("plain"));
    inst.send(&["-i", &format!("{}+i", u.name)], &text("i"));
    inst.send(&["-oi", &format!("{}+oi", u.name)], &text("oi"));
    // A line of two dots is never special, and "." inside a line is not either.
    inst.send(
        &[&format!("{}+dots", u.name)],
        "Subject: dots\n\n..\n. \nx.\n",
    );
    for e in ["plain", "i", "oi", "dots"] {
        wait_sent(&inst, &[addr(&u, e)]);
    }
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 4, "{msgs:#?}");
    assert_eq!(copy_for(&msgs, &addr(&u, "plain")).body, "before\n");
    assert_eq!(copy_for(&msgs, &addr(&u, "i")).body, "before\n.\nafter\n");
    assert_eq!(copy_for(&msgs, &addr(&u, "oi")).body, "before\n.\nafter\n");
    assert_eq!(copy_for(&msgs, &addr(&u, "dots")).body, "..\n. \nx.\n");
}

#[test]
fn unusual_input_is_delivered_not_rejected() {
    let (inst, u) = started();
    let to = |ext: &str| format!("{}+{ext}", u.name);
    send_bytes(
        &inst,
        &[&to("noeol")],
        b"Subject: no final newline\n\nlast line",
    );
    send_bytes(&inst, &[&to("nobody")], b"Subject: headers only\nX-Tag: t1");
    send_bytes(&inst, &[&to("empty")], b"");
    send_bytes(
        &inst,
        &["-B8BITMIME", &to("binary")],
        b"Subject: binary\n\ncaf\xc3\xa9 \xff\xfe raw\nnul\x00byte\n",
    );
    // A leading mbox "From " line from the caller is not part of the message (sendmail drops it).
    send_bytes(
        &inst,
        &[&to("fromline")],
        b"From someone@else Mon Jan  2 10:00:00 2023\nSubject: fromline\n\nx\n",
    );
    for e in ["noeol", "nobody", "empty", "binary", "fromline"] {
        wait_sent(&inst, &[addr(&u, e)]);
    }
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 5, "{msgs:#?}");

    let m = copy_for(&msgs, &addr(&u, "noeol"));
    assert_eq!(m.header("Subject"), Some("no final newline"));
    assert_eq!(m.body, "last line\n", "a final newline is added");

    let m = copy_for(&msgs, &addr(&u, "nobody"));
    assert_eq!(m.header("Subject"), Some("headers only"));
    assert_eq!(m.header("X-Tag"), Some("t1"));
    assert!(m.body.trim().is_empty(), "{:?}", m.body);

    let m = copy_for(&msgs, &addr(&u, "empty"));
    assert!(
        m.header("Message-Id").is_some()
            && m.header("Date").is_some()
            && m.header("From").is_some()
    );
    assert!(m.header("Subject").is_none());
    assert!(m.body.trim().is_empty(), "{:?}", m.body);

    let m = copy_for(&msgs, &addr(&u, "fromline"));
    assert_eq!(m.header("Subject"), Some("fromline"));
    assert_eq!(m.body, "x\n");

    assert_eq!(
        copy_for(&msgs, &addr(&u, "binary")).header("Subject"),
        Some("binary")
    );
    let raw = std::fs::read(inst.mailbox(&u.name)).expect("read mbox");
    assert!(
        contains(&raw, b"\n\ncaf\xc3\xa9 \xff\xfe raw\nnul\x00byte\n\n"),
        "8-bit and NUL bytes must be delivered byte for byte"
    );
    assert!(
        !contains(&raw, b"someone@else"),
        "the caller's From_ line must not be delivered"
    );
}

fn contains(hay: &[u8], needle: &[u8]) -> bool {
    hay.windows(needle.len()).any(|w| w == needle)
}
