//! master.cf listeners as Postfix reads them: a `host:port` service listens on that address
//! only; a bare port listens on `inet_interfaces` (`loopback-only`: 127.0.0.1 and, where the
//! machine has IPv6 loopback, ::1); several listeners run at once; Debian's stock master.cf is
//! accepted as it is; `postfix reload` gives new connections a changed `-o` override while a
//! session already open keeps the settings it started with; and a port that is already taken
//! makes `postfix start` fail with a message that says which address and why.

use std::net::TcpStream;

use crate::common::*;
use crate::smtp_talk::*;

fn refused(addr: &str) -> bool {
    matches!(
        TcpStream::connect(addr),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionRefused
    )
}

/// Does this machine have an IPv6 loopback address to listen on?
fn has_ipv6_loopback() -> bool {
    std::net::TcpListener::bind("[::1]:0").is_ok()
}

/// A whole transaction to `rcpt`; returns the queue ID.
fn send_one(addr: &str, rcpt: &str, subject: &str) -> String {
    let mut c = Smtp::connect(addr);
    assert_eq!(c.greeting.line(), "220 test.example ESMTP Postern");
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    c.expect(&format!("RCPT TO:<{rcpt}>"), 250);
    let id = queued_id(&c.data(&format!("Subject: {subject}\n\nbody\n")));
    c.quit();
    id
}

#[test]
fn host_port_listener_listens_on_that_address_only() {
    let alice = user("pt-pol3");
    let inst = instance().smtpd(&[]).start();
    let port = inst.smtp_port();
    let id = send_one(
        &inst.smtp_addr(),
        &format!("{}@test.example", alice.name),
        "host:port",
    );
    inst.wait_log(
        &[
            &format!("{id}: to=<{}@test.example>", alice.name),
            "status=sent",
        ],
        1,
    );
    // 127.0.0.1:PORT is not 127.0.0.2:PORT, nor [::1]:PORT.
    assert!(refused(&format!("127.0.0.2:{port}")));
    if has_ipv6_loopback() {
        assert!(refused(&format!("[::1]:{port}")));
    }
}

#[test]
fn bare_port_listens_on_the_loopback_interfaces() {
    let alice = user("pt-pol3");
    let rcpt = format!("{}@test.example", alice.name);
    let port = testkit::free_port();
    let inst = instance()
        .main_cf("inet_interfaces = loopback-only")
        .master_cf(&format!(
            "{port}      inet  n       -       n       -       -       smtpd"
        ))
        .start();
    let v4 = send_one(&format!("127.0.0.1:{port}"), &rcpt, "over IPv4");
    wait_smtpd_line(&inst, &format!("{v4}: client=localhost[127.0.0.1]"));
    // loopback-only is the loopback addresses, not all of 127.0.0.0/8.
    assert!(refused(&format!("127.0.0.2:{port}")));
    let mut ids = vec![v4];
    if has_ipv6_loopback() {
        let v6 = send_one(&format!("[::1]:{port}"), &rcpt, "over IPv6");
        let line = inst.wait_log(&["postfix/smtpd[", &format!("{v6}: client=")], 1);
        assert!(line[0].ends_with("[::1]"), "{line:?}");
        ids.push(v6);
    } else {
        // No IPv6 loopback on this machine: the IPv4 listener alone must have started.
        eprintln!("no IPv6 loopback here: checked the IPv4 listener only");
    }
    for id in &ids {
        inst.wait_log(&[&format!("{id}: to=<{rcpt}>"), "status=sent"], 1);
    }
    assert_eq!(read_mbox(&inst.mailbox(&alice.name)).len(), ids.len());
}

#[test]
fn two_listeners_at_once() {
    let alice = user("pt-pol3");
    let rcpt = format!("{}@test.example", alice.name);
    let second = testkit::free_port();
    let inst = instance()
        .smtpd(&[])
        .master_cf(&format!("127.0.0.1:{second} inet n - n - - smtpd"))
        .start();
    let a = send_one(&inst.smtp_addr(), &rcpt, "first listener");
    let b = send_one(&format!("127.0.0.1:{second}"), &rcpt, "second listener");
    // Both at the same time, too: a session open on one does not hold up the other.
    let mut open = Smtp::connect(&inst.smtp_addr());
    open.expect("EHLO client.example", 250);
    let c = send_one(
        &format!("127.0.0.1:{second}"),
        &rcpt,
        "while the first is busy",
    );
    open.quit();
    for id in [&a, &b, &c] {
        inst.wait_log(&[&format!("{id}: to=<{rcpt}>"), "status=sent"], 1);
    }
    let mut subjects: Vec<String> = read_mbox(&inst.mailbox(&alice.name))
        .iter()
        .filter_map(|m| m.header("Subject").map(str::to_string))
        .collect();
    subjects.sort();
    assert_eq!(
        subjects,
        [
            "first listener",
            "second listener",
            "while the first is busy"
        ]
    );
}

#[test]
fn stock_debian_master_cf_is_accepted() {
    let alice = user("pt-pol3");
    let stock = [
        "/usr/share/postfix/master.cf.dist",
        "/etc/postfix/master.cf",
    ]
    .iter()
    .find_map(|p| std::fs::read_to_string(p).ok())
    .expect("Debian's master.cf (package postfix): /usr/share/postfix/master.cf.dist");
    let port = testkit::free_port();
    let mut replaced = 0;
    let text: String = stock
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            if f.len() >= 8 && f[0] == "smtp" && f[1] == "inet" {
                replaced += 1;
                format!("127.0.0.1:{port} {}\n", f[1..].join(" "))
            } else {
                format!("{l}\n")
            }
        })
        .collect();
    assert_eq!(replaced, 1, "the stock file has one `smtp inet` line");
    let inst = instance().master_cf(&text).start();
    let rcpt = format!("{}@test.example", alice.name);
    let id = send_one(&format!("127.0.0.1:{port}"), &rcpt, "stock master.cf");
    inst.wait_log(&[&format!("{id}: to=<{rcpt}>"), "status=sent"], 1);
    // Its other services (pickup, cleanup, qmgr, pipe transports, ...) are no listeners.
    assert!(
        inst.log_lines(&["warning"])
            .iter()
            .all(|l| !l.contains("master.cf")),
        "{}",
        inst.log()
    );
}

#[test]
fn reload_applies_a_changed_override_to_new_connections() {
    let mut inst = instance().smtpd(&["smtpd_helo_required=yes"]).start();
    let addr = inst.smtp_addr();
    let mut before = Smtp::connect(&addr);
    assert_eq!(
        Smtp::connect(&addr).line("MAIL FROM:<pfsender@client.example>"),
        "503 5.5.1 Error: send HELO/EHLO first"
    );

    let master = inst.config_dir().join("master.cf");
    let text = std::fs::read_to_string(&master).expect("read master.cf");
    assert!(text.contains("smtpd_helo_required=yes"), "{text}");
    std::fs::write(
        &master,
        text.replace("smtpd_helo_required=yes", "smtpd_helo_required=no"),
    )
    .expect("write master.cf");
    let reloads = inst.log_lines(&["reload -- version"]).len();
    let out = inst.run("postfix", &["reload"], b"");
    assert!(
        out.status.success(),
        "postfix reload: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.wait_log(&["reload -- version"], reloads + 1);

    // A new connection gets the new override.
    let mut after = Smtp::connect(&addr);
    assert_eq!(
        after.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    after.quit();
    // The session that was already open keeps what it started with.
    assert_eq!(
        before.line("MAIL FROM:<pfsender@client.example>"),
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    before.quit();
    inst.stop();
}

#[test]
fn port_in_use_makes_postfix_start_fail_clearly() {
    // Somebody else has the port.
    let squatter = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a port");
    let port = squatter.local_addr().expect("local addr").port();
    let inst = instance()
        .master_cf(&format!("127.0.0.1:{port} inet n - n - - smtpd"))
        .build();
    let out = inst.run("postfix", &["start"], b"");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(!out.status.success(), "postfix start must fail: {err}");
    assert!(err.contains("fatal"), "{err}");
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
    assert!(err.contains("Address already in use"), "{err}");
    // Nothing was left running.
    let status = inst.run("postfix", &["status"], b"");
    assert!(!status.status.success());
    // Once the port is free, the same configuration starts.
    drop(squatter);
    let mut inst = inst;
    inst.start();
    let c = Smtp::connect(&format!("127.0.0.1:{port}"));
    assert_eq!(c.greeting.line(), "220 test.example ESMTP Postern");
    c.quit();
}
