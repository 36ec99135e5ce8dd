//! Relay control over SMTP: the default configuration is not an open relay. A client outside
//! `mynetworks` may send to our own domains only (`554 5.7.1 <x>: Relay access denied` for
//! anything else, logged as Postfix logs it); a client inside `mynetworks` may relay (the
//! message is queued, then deferred while there is no SMTP client). `mynetworks_style`,
//! `relay_domains`, `permit_auth_destination` and `defer_unauth_destination` decide as in
//! postconf(5); the percent hack, source routes, bang paths and quoted local parts cannot be
//! used to slip a remote recipient past the check; `user@[127.0.0.1]` is local; unknown local
//! users are refused at RCPT unless `local_recipient_maps` is empty.
//!
//! Expected replies and log lines are Postfix 3.7's (/tmp/postfix-smtpd-reference/s3_relay_*
//! and the same scenarios replayed against Debian's Postfix 3.7.11). One known difference is
//! tolerated on purpose: Postfix opens its queue file at the first accepted RCPT and then logs
//! later rejections with the queue ID instead of `NOQUEUE`; Postern creates the queue file at
//! the end of DATA, so those lines carry `NOQUEUE`.

use crate::common::*;
use crate::smtp_talk::*;

const OUTSIDE: &str = "127.0.0.2";

fn relay_denied(rcpt: &str) -> String {
    format!("554 5.7.1 <{rcpt}>: Relay access denied")
}

/// The `reject: RCPT` log message (after `NOQUEUE: ` or `ID: `).
fn reject_log(client: &str, reply: &str, from: &str, to: &str, tail: &str) -> String {
    format!("reject: RCPT from {client}: {reply}; from=<{from}> to=<{to}> {tail}")
}

/// Lines of the log that contain `needle` after `postfix/smtpd[PID]: `.
fn smtpd_lines(inst: &Instance, needle: &str) -> Vec<String> {
    inst.log_lines(&["postfix/smtpd[", needle])
}

#[test]
fn outside_client_gets_relay_access_denied_and_local_mail_still_flows() {
    let alice = user("pt-pol1");
    let local = format!("{}@test.example", alice.name);
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .smtpd(&[])
        .start();

    let mut c = Smtp::connect_from(OUTSIDE, &inst.smtp_addr());
    assert_eq!(c.greeting.line(), "220 test.example ESMTP Postern");
    c.expect("EHLO client.example", 250);
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.line("RCPT TO:<someone@remote.example>"),
        relay_denied("someone@remote.example")
    );
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), "250 2.1.5 Ok");
    assert_eq!(
        c.line("RCPT TO:<someone@remote.example>"),
        relay_denied("someone@remote.example")
    );
    let id = queued_id(&c.data("Subject: relay attempt\n\nonly for the local user\n"));
    c.quit();

    let reject = reject_log(
        "unknown[127.0.0.2]",
        &relay_denied("someone@remote.example"),
        "pfsender@client.example",
        "someone@remote.example",
        "proto=ESMTP helo=<client.example>",
    );
    wait_smtpd_line(&inst, &format!("NOQUEUE: {reject}"));
    assert_eq!(smtpd_lines(&inst, &reject).len(), 2, "{}", inst.log());
    wait_smtpd_line(
        &inst,
        "disconnect from unknown[127.0.0.2] ehlo=1 mail=1 rcpt=1/3 data=1 quit=1 commands=5/7",
    );
    wait_smtpd_line(&inst, &format!("{id}: client=unknown[127.0.0.2]"));

    // Only the local recipient was accepted: one delivery, nothing for the remote address.
    inst.wait_log(&[&format!("{id}: to=<{local}>"), "status=sent"], 1);
    inst.wait_log(&[&format!("{id}: removed")], 1);
    assert!(
        inst.log_lines(&[&format!("{id}: to=<someone@remote.example>")])
            .is_empty(),
        "{}",
        inst.log()
    );
    let msgs = read_mbox(&inst.mailbox(&alice.name));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("Subject"), Some("relay attempt"));

    // HELO instead of EHLO: proto=SMTP; without any HELO the log has no helo= field.
    let mut c = Smtp::connect_from(OUTSIDE, &inst.smtp_addr());
    assert_eq!(c.line("HELO client.example"), "250 test.example");
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(
        c.line("RCPT TO:<someone@remote.example>"),
        relay_denied("someone@remote.example")
    );
    c.quit();
    wait_smtpd_line(
        &inst,
        &format!(
            "NOQUEUE: {}",
            reject_log(
                "unknown[127.0.0.2]",
                &relay_denied("someone@remote.example"),
                "pfsender@client.example",
                "someone@remote.example",
                "proto=SMTP helo=<client.example>",
            )
        ),
    );
    let mut c = Smtp::connect_from(OUTSIDE, &inst.smtp_addr());
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(
        c.line("RCPT TO:<other@remote.example>"),
        relay_denied("other@remote.example")
    );
    c.quit();
    let line = wait_smtpd_line(
        &inst,
        &format!(
            "NOQUEUE: reject: RCPT from unknown[127.0.0.2]: {}; from=<pfsender@client.example> to=<other@remote.example> proto=SMTP",
            relay_denied("other@remote.example")
        ),
    );
    assert!(!line.contains("helo="), "{line}");
}

#[test]
fn default_configuration_is_not_an_open_relay_for_swaks() {
    // Nothing about mynetworks in main.cf: the default (mynetworks_style = host) trusts this
    // host's own addresses only, and 127.0.0.2 is not one of them.
    let inst = instance().smtpd(&[]).start();
    let port = inst.smtp_port().to_string();
    let out = std::process::Command::new("swaks")
        .args([
            "--server",
            "127.0.0.1",
            "--port",
            &port,
            "--local-interface",
            OUTSIDE,
            "--helo",
            "client.example",
            "--from",
            "spammer@client.example",
            "--to",
            "victim@remote.example",
            "--timeout",
            "20",
        ])
        .output()
        .expect("run swaks (Debian package swaks)");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(!out.status.success(), "swaks should fail:\n{text}");
    assert!(
        text.contains("<** 554 5.7.1 <victim@remote.example>: Relay access denied"),
        "{text}"
    );
    wait_smtpd_line(
        &inst,
        &format!(
            "NOQUEUE: {}",
            reject_log(
                "unknown[127.0.0.2]",
                &relay_denied("victim@remote.example"),
                "spammer@client.example",
                "victim@remote.example",
                "proto=ESMTP helo=<client.example>",
            )
        ),
    );
    for q in ["incoming", "active", "deferred", "hold"] {
        assert!(inst.queue_ids(q).is_empty(), "{q}: {:?}", inst.queue_ids(q));
    }
}

#[test]
fn client_in_mynetworks_may_relay_and_the_message_is_queued() {
    let inst = instance().smtpd(&[]).start();
    let mut c = Smtp::connect(&inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    assert_eq!(c.line("RCPT TO:<someone@remote.example>"), "250 2.1.5 Ok");
    let id = queued_id(&c.data("Subject: relay\n\nrelay test\n"));
    c.quit();
    wait_smtpd_line(&inst, &format!("{id}: client=localhost[127.0.0.1]"));
    wait_smtpd_line(
        &inst,
        "disconnect from localhost[127.0.0.1] ehlo=1 mail=1 rcpt=1 data=1 quit=1 commands=5",
    );
    // Accepted for relaying: queued, and deferred because there is no SMTP client yet.
    inst.wait_log(
        &[
            &format!("{id}: to=<someone@remote.example>"),
            "status=deferred",
        ],
        1,
    );
    inst.wait_until("the message to wait in deferred/", || {
        inst.queue_ids("deferred").contains(&id).then_some(())
    });
    let out = inst.run("postqueue", &["-p"], b"");
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(listing.contains(&id), "{listing}");
    assert!(listing.contains("someone@remote.example"), "{listing}");
}

#[test]
fn mynetworks_style_decides_which_clients_are_trusted() {
    // host: this host's addresses only (127.0.0.1/32 with inet_interfaces = loopback-only).
    let host = instance()
        .main_cf("mynetworks_style = host")
        .smtpd(&[])
        .start();
    let out = host.run("postconf", &["-h", "mynetworks"], b"");
    let nets = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        nets.split_whitespace().any(|n| n == "127.0.0.1/32"),
        "{nets}"
    );
    assert!(!nets.contains("127.0.0.0/8"), "{nets}");
    let mut c = Smtp::connect_from(OUTSIDE, &host.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(
        c.line("RCPT TO:<someone@remote.example>"),
        relay_denied("someone@remote.example")
    );
    c.quit();
    let mut c = Smtp::connect(&host.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(c.line("RCPT TO:<someone@remote.example>"), "250 2.1.5 Ok");
    c.quit();

    // subnet: the networks of this host's interfaces, so all of 127.0.0.0/8.
    let subnet = instance()
        .main_cf("mynetworks_style = subnet")
        .smtpd(&[])
        .start();
    let out = subnet.run("postconf", &["-h", "mynetworks"], b"");
    let nets = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        nets.split_whitespace().any(|n| n == "127.0.0.0/8"),
        "{nets}"
    );
    let mut c = Smtp::connect_from(OUTSIDE, &subnet.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(c.line("RCPT TO:<someone@remote.example>"), "250 2.1.5 Ok");
    c.quit();
}

#[test]
fn relay_domains_admits_listed_domains_and_their_subdomains() {
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("relay_domains = relayed.example")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from(OUTSIDE, &inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(c.line("RCPT TO:<user@relayed.example>"), "250 2.1.5 Ok");
    assert_eq!(c.line("RCPT TO:<user@sub.relayed.example>"), "250 2.1.5 Ok");
    assert_eq!(
        c.line("RCPT TO:<user@notrelayed.example>"),
        relay_denied("user@notrelayed.example")
    );
    let id = queued_id(&c.data("Subject: for a relay domain\n\nhi\n"));
    c.quit();
    // Queued for the relay transport; deferred until there is one.
    inst.wait_log(
        &[
            &format!("{id}: to=<user@relayed.example>"),
            "status=deferred",
        ],
        1,
    );
    inst.wait_log(
        &[
            &format!("{id}: to=<user@sub.relayed.example>"),
            "status=deferred",
        ],
        1,
    );
}

#[test]
fn permit_auth_destination_permits_our_domains_only() {
    let alice = user("pt-pol1");
    let inst = instance()
        .main_cf("smtpd_relay_restrictions = permit_auth_destination, reject")
        .smtpd(&[])
        .start();
    // 127.0.0.1 is in mynetworks, but this list does not look at mynetworks.
    let mut c = Smtp::connect(&inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(
        c.line(&format!("RCPT TO:<{}@test.example>", alice.name)),
        "250 2.1.5 Ok"
    );
    let refused = "554 5.7.1 <u@remote.example>: Recipient address rejected: Access denied";
    assert_eq!(c.line("RCPT TO:<u@remote.example>"), refused);
    c.quit();
    wait_smtpd_line(
        &inst,
        &format!(
            "NOQUEUE: {}",
            reject_log(
                "localhost[127.0.0.1]",
                refused,
                "pfsender@client.example",
                "u@remote.example",
                "proto=ESMTP helo=<client.example>",
            )
        ),
    );
}

#[test]
fn defer_unauth_destination_answers_454() {
    let alice = user("pt-pol1");
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("smtpd_relay_restrictions = permit_mynetworks, permit_sasl_authenticated, defer_unauth_destination")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from(OUTSIDE, &inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    let deferred = "454 4.7.1 <someone@remote.example>: Relay access denied";
    assert_eq!(c.line("RCPT TO:<someone@remote.example>"), deferred);
    assert_eq!(
        c.line(&format!("RCPT TO:<{}@test.example>", alice.name)),
        "250 2.1.5 Ok"
    );
    assert_eq!(c.line("RSET"), "250 2.0.0 Ok");
    c.quit();
    wait_smtpd_line(
        &inst,
        &format!(
            "NOQUEUE: {}",
            reject_log(
                "unknown[127.0.0.2]",
                deferred,
                "pfsender@client.example",
                "someone@remote.example",
                "proto=ESMTP helo=<client.example>",
            )
        ),
    );
    wait_smtpd_line(
        &inst,
        "disconnect from unknown[127.0.0.2] ehlo=1 mail=1 rcpt=1/2 rset=1 quit=1 commands=5/6",
    );
}

#[test]
fn routing_tricks_do_not_open_the_relay() {
    let alice = user("pt-pol1");
    // With an empty local_recipient_maps nothing but relay control stands in the way.
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("local_recipient_maps =")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from(OUTSIDE, &inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    // The percent hack: user%remote@ourdomain is user@remote.
    assert_eq!(
        c.line("RCPT TO:<someone%remote.example@test.example>"),
        relay_denied("someone%remote.example@test.example")
    );
    // A source route through us is dropped; what is left is remote.
    assert_eq!(
        c.line("RCPT TO:<@test.example:someone@remote.example>"),
        relay_denied("someone@remote.example")
    );
    // A bang path: remote!user@ourdomain is user@remote (swap_bangpath).
    assert_eq!(
        c.line("RCPT TO:<remote.example!someone@test.example>"),
        relay_denied("remote.example!someone@test.example")
    );
    // A quoted local part with routing in it is opened up (resolve_dequoted_address).
    // (Postfix names the address in its unquoted form in this reply.)
    let quoted = c.line("RCPT TO:<\"someone@remote.example\"@test.example>");
    assert!(
        quoted.starts_with("554 5.7.1 <") && quoted.ends_with(">: Relay access denied"),
        "{quoted}"
    );
    // A source route through somewhere else to us is just mail for us.
    assert_eq!(
        c.line(&format!(
            "RCPT TO:<@remote.example:{}@test.example>",
            alice.name
        )),
        "250 2.1.5 Ok"
    );
    let id = queued_id(&c.data("Subject: source routed\n\nfor the local user\n"));
    c.quit();
    inst.wait_log(
        &[
            &format!("{id}: to=<{}@test.example>", alice.name),
            "status=sent",
        ],
        1,
    );
    inst.wait_log(&[&format!("{id}: removed")], 1);
    let to_lines = inst.log_lines(&[&format!("{id}: to=<")]);
    assert_eq!(to_lines.len(), 1, "{to_lines:?}");
    assert_eq!(
        smtpd_lines(&inst, "Relay access denied; from=<pfsender@client.example>").len(),
        4,
        "{}",
        inst.log()
    );
}

#[test]
fn address_literal_of_this_host_is_local() {
    let alice = user("pt-pol1");
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from(OUTSIDE, &inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    let literal = format!("{}@[127.0.0.1]", alice.name);
    assert_eq!(c.line(&format!("RCPT TO:<{literal}>")), "250 2.1.5 Ok");
    assert_eq!(
        c.line("RCPT TO:<nosuch@[127.0.0.1]>"),
        "550 5.1.1 <nosuch@[127.0.0.1]>: Recipient address rejected: User unknown in local recipient table"
    );
    // Somebody else's address literal is remote.
    assert_eq!(
        c.line("RCPT TO:<someone@[198.51.100.7]>"),
        relay_denied("someone@[198.51.100.7]")
    );
    let id = queued_id(&c.data("Subject: literal\n\nto an address literal\n"));
    c.quit();
    inst.wait_log(&[&format!("{id}: to=<{literal}>"), "status=sent"], 1);
    let msgs = read_mbox(&inst.mailbox(&alice.name));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("X-Original-To"), Some(literal.as_str()));
}

#[test]
fn unknown_local_recipient_is_refused_unless_local_recipient_maps_is_empty() {
    let alice = user("pt-pol1");
    let inst = instance().smtpd(&[]).start();
    let mut c = Smtp::connect(&inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    let unknown = "550 5.1.1 <nosuch@test.example>: Recipient address rejected: User unknown in local recipient table";
    assert_eq!(c.line("RCPT TO:<nosuch@test.example>"), unknown);
    assert_eq!(
        c.line("RCPT TO:<nosuch>"),
        "550 5.1.1 <nosuch>: Recipient address rejected: User unknown in local recipient table"
    );
    // Users from the passwd file and aliases from alias_maps are known.
    assert_eq!(
        c.line(&format!("RCPT TO:<{}@test.example>", alice.name)),
        "250 2.1.5 Ok"
    );
    assert_eq!(c.line("RCPT TO:<postmaster@test.example>"), "250 2.1.5 Ok");
    c.quit();
    wait_smtpd_line(
        &inst,
        &format!(
            "NOQUEUE: {}",
            reject_log(
                "localhost[127.0.0.1]",
                unknown,
                "pfsender@client.example",
                "nosuch@test.example",
                "proto=ESMTP helo=<client.example>",
            )
        ),
    );

    // local_recipient_maps = (empty): any user in a local domain is accepted at RCPT, and
    // the unknown one bounces later, in local delivery.
    let inst = instance()
        .main_cf("local_recipient_maps =")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect(&inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<>", 250);
    assert_eq!(c.line("RCPT TO:<nosuch@test.example>"), "250 2.1.5 Ok");
    let id = queued_id(&c.data("Subject: to nobody\n\nbody\n"));
    c.quit();
    inst.wait_log(
        &[&format!("{id}: to=<nosuch@test.example>"), "status=bounced"],
        1,
    );
}
