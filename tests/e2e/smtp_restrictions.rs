//! smtpd restriction lists, one restriction at a time, as postconf(5) and access(5) define
//! them: `permit`, `reject`, `defer`; `reject_non_fqdn_sender/recipient`,
//! `reject_unknown_sender/recipient_domain`; `check_client/helo/sender/recipient_access` with
//! `hash:` tables built by `postmap` (REJECT, OK, DUNNO, DISCARD, HOLD, DEFER, custom 4xx and
//! 5xx texts); `smtpd_helo_required` and `smtpd_helo_restrictions`; `smtpd_delay_reject = no`
//! (refusals at CONNECT, HELO and MAIL instead of RCPT); an unknown restriction name is a
//! server configuration error (451 4.3.5); a master.cf `-o` override changes its own listener
//! only.
//!
//! Replies and log lines are Postfix 3.7's: /tmp/postfix-smtpd-reference/s3_access_*,
//! s3_helo_*, s3_non_fqdn_* and the same scenarios replayed against Debian's Postfix 3.7.11.

use crate::common::*;
use crate::smtp_talk::*;

/// `NOQUEUE: reject: RCPT from CLIENT: REPLY; from=<FROM> to=<TO> proto=ESMTP helo=<HELO>`
fn rcpt_reject(client: &str, reply: &str, from: &str, to: &str, helo: &str) -> String {
    format!("NOQUEUE: reject: RCPT from {client}: {reply}; from=<{from}> to=<{to}> proto=ESMTP helo=<{helo}>")
}

#[test]
fn permit_reject_and_defer_decide_for_their_own_list() {
    let alice = user("pt-pol2");
    let local = format!("{}@test.example", alice.name);

    // reject: `<name>: <class> rejected: Access denied` with reject_code (554).
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("smtpd_client_restrictions = permit_mynetworks, reject")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from("127.0.0.2", &inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    let refused = "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied";
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), refused);
    assert_eq!(c.line("DATA"), "554 5.5.1 Error: no valid recipients");
    c.quit();
    wait_smtpd_line(
        &inst,
        &rcpt_reject(
            "unknown[127.0.0.2]",
            refused,
            "pfsender@client.example",
            &local,
            "client.example",
        ),
    );
    let mut c = Smtp::connect(&inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), "250 2.1.5 Ok");
    c.quit();

    // permit ends its own list only: relay control and the next lists still judge.
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("smtpd_client_restrictions = permit")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from("127.0.0.2", &inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(
        c.line("RCPT TO:<someone@remote.example>"),
        "554 5.7.1 <someone@remote.example>: Relay access denied"
    );
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), "250 2.1.5 Ok");
    c.quit();
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("smtpd_client_restrictions = permit")
        .main_cf("smtpd_sender_restrictions = reject")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from("127.0.0.2", &inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(
        c.line(&format!("RCPT TO:<{local}>")),
        "554 5.7.1 <pfsender@client.example>: Sender address rejected: Access denied"
    );
    c.quit();

    // defer: defer_code (450) and 4.3.2 "Try again later".
    let inst = instance()
        .main_cf("smtpd_recipient_restrictions = defer")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect(&inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    let later = format!("450 4.3.2 <{local}>: Recipient address rejected: Try again later");
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), later);
    c.quit();
    wait_smtpd_line(
        &inst,
        &rcpt_reject(
            "localhost[127.0.0.1]",
            &later,
            "pfsender@client.example",
            &local,
            "client.example",
        ),
    );
}

#[test]
fn fqdn_and_domain_checks_on_sender_and_recipient() {
    let alice = user("pt-pol2");
    let local = format!("{}@test.example", alice.name);
    let inst = instance()
        .main_cf("smtpd_sender_restrictions = reject_non_fqdn_sender, reject_unknown_sender_domain")
        .main_cf("smtpd_recipient_restrictions = reject_non_fqdn_recipient, reject_unknown_recipient_domain")
        .main_cf("smtpd_relay_restrictions = permit_mynetworks, reject_unauth_destination")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect(&inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    let rcpt = format!("RCPT TO:<{local}>");
    for (sender, refusal) in [
        (
            "pfsender",
            "504 5.5.2 <pfsender>: Sender address rejected: need fully-qualified address",
        ),
        (
            "pfsender@nodots",
            "504 5.5.2 <pfsender@nodots>: Sender address rejected: need fully-qualified address",
        ),
        (
            "pfsender@nxdomain.invalid",
            "450 4.1.8 <pfsender@nxdomain.invalid>: Sender address rejected: Domain not found",
        ),
    ] {
        assert_eq!(c.line(&format!("MAIL FROM:<{sender}>")), "250 2.1.0 Ok");
        assert_eq!(c.line(&rcpt), refusal, "sender {sender}");
        assert_eq!(c.line("RSET"), "250 2.0.0 Ok");
        wait_smtpd_line(
            &inst,
            &format!(
                "NOQUEUE: reject: RCPT from localhost[127.0.0.1]: {refusal}; from=<{sender}> to=<{local}> proto=ESMTP helo=<client.example>"
            ),
        );
    }
    assert_eq!(c.line("MAIL FROM:<pfsender@test.example>"), "250 2.1.0 Ok");
    for (to, refusal) in [
        (
            "pfalice",
            "504 5.5.2 <pfalice>: Recipient address rejected: need fully-qualified address",
        ),
        (
            "someone@nodots",
            "504 5.5.2 <someone@nodots>: Recipient address rejected: need fully-qualified address",
        ),
        (
            "someone@nxdomain.invalid",
            "450 4.1.2 <someone@nxdomain.invalid>: Recipient address rejected: Domain not found",
        ),
    ] {
        assert_eq!(
            c.line(&format!("RCPT TO:<{to}>")),
            refusal,
            "recipient {to}"
        );
    }
    assert_eq!(c.line(&rcpt), "250 2.1.5 Ok");
    assert_eq!(c.line("RSET"), "250 2.0.0 Ok");
    // The null sender is fully qualified enough; the unknown domain check still applies to
    // recipients.
    assert_eq!(c.line("MAIL FROM:<>"), "250 2.1.0 Ok");
    assert_eq!(
        c.line("RCPT TO:<someone@nxdomain.invalid>"),
        "450 4.1.2 <someone@nxdomain.invalid>: Recipient address rejected: Domain not found"
    );
    assert_eq!(c.line(&rcpt), "250 2.1.5 Ok");
    c.quit();
    wait_smtpd_line(
        &inst,
        "disconnect from localhost[127.0.0.1] ehlo=1 mail=5 rcpt=2/9 rset=4 quit=1 commands=13/20",
    );
}

/// One access table entry and what it must do.
struct Access {
    label: &'static str,
    action: &'static str,
    outcome: Outcome,
}

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Outcome {
    /// RCPT refused with this reply; `{}` stands for `<name>: Class rejected`.
    Refused(&'static str),
    Delivered,
    Discarded,
    Held,
}

const ACTIONS: &[Access] = &[
    Access {
        label: "reject",
        action: "REJECT",
        outcome: Outcome::Refused("554 5.7.1 {}: Access denied"),
    },
    Access {
        label: "rejtext",
        action: "REJECT Custom reject text",
        outcome: Outcome::Refused("554 5.7.1 {}: Custom reject text"),
    },
    Access {
        label: "defer",
        action: "DEFER",
        outcome: Outcome::Refused("450 4.7.1 {}: Access denied"),
    },
    Access {
        label: "temp4",
        action: "450 4.7.1 Custom temporary text",
        outcome: Outcome::Refused("450 4.7.1 {}: Custom temporary text"),
    },
    Access {
        label: "perm5",
        action: "554 5.7.1 Custom permanent text",
        outcome: Outcome::Refused("554 5.7.1 {}: Custom permanent text"),
    },
    Access {
        label: "bare5",
        action: "550 bare code no enhanced",
        outcome: Outcome::Refused("550 5.7.1 {}: bare code no enhanced"),
    },
    Access {
        label: "ok",
        action: "OK",
        outcome: Outcome::Delivered,
    },
    Access {
        label: "dunno",
        action: "DUNNO",
        outcome: Outcome::Delivered,
    },
    // An all-numeric result is OK (access(5)), not a reply code.
    Access {
        label: "code4only",
        action: "421",
        outcome: Outcome::Delivered,
    },
    Access {
        label: "discard",
        action: "DISCARD",
        outcome: Outcome::Discarded,
    },
    Access {
        label: "hold",
        action: "HOLD",
        outcome: Outcome::Held,
    },
];

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Kind {
    Client,
    Helo,
    Sender,
    Recipient,
}

#[test]
fn access_tables_built_by_postmap() {
    let alice = user("pt-pol2");
    let local = format!("{}@test.example", alice.name);
    // Recipient keys are aliases of the local user, so that OK, DUNNO and HOLD get past
    // local_recipient_maps and what is tested is the table's action.
    let aliases: String = ACTIONS
        .iter()
        .map(|a| format!("{}: {}\n", a.label, alice.name))
        .collect();
    let mut inst = instance()
        .aliases(&format!("postmaster: root\n{aliases}"))
        .main_cf("mynetworks = 127.0.0.1/32")
        .smtpd(&[])
        .build();
    let client_ip = |i: usize| format!("127.0.0.{}", 11 + i);
    let maps = inst.root().join("maps");
    std::fs::create_dir_all(&maps).expect("mkdir maps");
    let mut specs = Vec::new();
    for (name, key) in [
        (
            "clients",
            &(|i: usize, _: &str| client_ip(i)) as &dyn Fn(usize, &str) -> String,
        ),
        ("helos", &|_, l| format!("{l}.helo.example")),
        ("senders", &|_, l| format!("{l}@sender.example")),
        ("rcpts", &|_, l| format!("{l}@test.example")),
    ] {
        let path = maps.join(name);
        let text: String = ACTIONS
            .iter()
            .enumerate()
            .map(|(i, a)| format!("{} {}\n", key(i, a.label), a.action))
            .collect();
        std::fs::write(&path, text).expect("write map source");
        let spec = format!("hash:{}", path.display());
        let out = inst.run("postmap", &[&spec], b"");
        assert!(
            out.status.success(),
            "postmap {spec}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        specs.push(spec);
    }
    inst.add_main_cf(&format!(
        "smtpd_client_restrictions = check_client_access {}",
        specs[0]
    ));
    inst.add_main_cf(&format!(
        "smtpd_helo_restrictions = check_helo_access {}",
        specs[1]
    ));
    inst.add_main_cf(&format!(
        "smtpd_sender_restrictions = check_sender_access {}",
        specs[2]
    ));
    inst.add_main_cf(&format!(
        "smtpd_recipient_restrictions = check_recipient_access {}",
        specs[3]
    ));
    inst.start();

    let mut delivered = Vec::new();
    let mut discarded = Vec::new();
    let mut held = Vec::new();
    for kind in [Kind::Client, Kind::Helo, Kind::Sender, Kind::Recipient] {
        for (i, a) in ACTIONS.iter().enumerate() {
            let (src, client) = match kind {
                Kind::Client => (client_ip(i), format!("unknown[{}]", client_ip(i))),
                _ => ("127.0.0.1".to_string(), "localhost[127.0.0.1]".to_string()),
            };
            let helo = match kind {
                Kind::Helo => format!("{}.helo.example", a.label),
                _ => "client.example".to_string(),
            };
            let sender = match kind {
                Kind::Sender => format!("{}@sender.example", a.label),
                _ => "pfsender@client.example".to_string(),
            };
            let rcpt = match kind {
                Kind::Recipient => format!("{}@test.example", a.label),
                _ => local.clone(),
            };
            let (shown, class) = match kind {
                Kind::Client => (client.clone(), "Client host"),
                Kind::Helo => (helo.clone(), "Helo command"),
                Kind::Sender => (sender.clone(), "Sender address"),
                Kind::Recipient => (rcpt.clone(), "Recipient address"),
            };
            let what = format!("{kind:?} {}", a.label);
            let mut c = Smtp::connect_from(&src, &inst.smtp_addr());
            c.expect(&format!("EHLO {helo}"), 250);
            assert_eq!(c.line(&format!("MAIL FROM:<{sender}>")), "250 2.1.0 Ok");
            let reply = c.line(&format!("RCPT TO:<{rcpt}>"));
            // What the delivery log line names: aliases are logged as `to=<user>,
            // orig_to=<alias>`.
            let mut to = if kind == Kind::Recipient {
                format!("orig_to=<{rcpt}>")
            } else {
                format!("to=<{rcpt}>")
            };
            match a.outcome {
                Outcome::Refused(template) => {
                    let want = template.replace("{}", &format!("<{shown}>: {class} rejected"));
                    assert_eq!(reply, want, "{what}");
                    wait_smtpd_line(&inst, &rcpt_reject(&client, &want, &sender, &rcpt, &helo));
                    if kind != Kind::Recipient {
                        assert_eq!(c.line("DATA"), "554 5.5.1 Error: no valid recipients");
                        c.quit();
                        continue;
                    }
                    // A refused recipient does not spoil the next one.
                    assert_eq!(
                        c.line(&format!("RCPT TO:<{local}>")),
                        "250 2.1.5 Ok",
                        "{what}"
                    );
                    to = format!("to=<{local}>");
                }
                outcome => {
                    assert_eq!(reply, "250 2.1.5 Ok", "{what}");
                    let action = match outcome {
                        Outcome::Discarded => Some("discard"),
                        Outcome::Held => Some("hold"),
                        _ => None,
                    };
                    if let Some(action) = action {
                        wait_smtpd_line(
                            &inst,
                            &format!(
                                "NOQUEUE: {action}: RCPT from {client}: <{shown}>: {class} triggers {} action; from=<{sender}> to=<{rcpt}> proto=ESMTP helo=<{helo}>",
                                action.to_uppercase()
                            ),
                        );
                    }
                }
            }
            let r = c.data(&format!("Subject: access {what}\n\nbody\n"));
            let id = queued_id(&r);
            c.quit();
            wait_smtpd_line(&inst, &format!("{id}: client={client}"));
            let outcome = match a.outcome {
                Outcome::Refused(_) => Outcome::Delivered,
                o => o,
            };
            match outcome {
                Outcome::Delivered => delivered.push((id, to)),
                Outcome::Discarded => discarded.push(id),
                _ => held.push(id),
            }
        }
    }

    for (id, to) in &delivered {
        inst.wait_log(&[&format!("{id}: "), to, "status=sent"], 1);
    }
    for id in &held {
        inst.wait_until(&format!("{id} in hold/"), || {
            inst.queue_ids("hold").contains(id).then_some(())
        });
    }
    // Every other message has been delivered by now: the discarded ones never reached the
    // queue, and the held ones stay where they are.
    inst.wait_queue_empty_except_hold();
    for id in discarded.iter().chain(&held) {
        assert!(
            inst.log_lines(&[&format!("{id}: to=<")]).is_empty(),
            "{id} must not be delivered\n{}",
            inst.log()
        );
    }
    assert_eq!(held.len(), 4);
    assert_eq!(discarded.len(), 4);
    let msgs = read_mbox(&inst.mailbox(&alice.name));
    assert_eq!(
        msgs.len(),
        delivered.len(),
        "one copy per delivered message"
    );
}

#[test]
fn hold_does_not_end_the_evaluation() {
    // HOLD is not a permit (access(5)): relay control and local_recipient_maps still decide.
    let alice = user("pt-pol2");
    let local = format!("{}@test.example", alice.name);
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("smtpd_client_restrictions = check_client_access inline:{ 127.0.0.2=HOLD }")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from("127.0.0.2", &inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    c.expect("MAIL FROM:<pfsender@client.example>", 250);
    assert_eq!(
        c.line("RCPT TO:<someone@remote.example>"),
        "554 5.7.1 <someone@remote.example>: Relay access denied"
    );
    assert_eq!(
        c.line("RCPT TO:<nosuch@test.example>"),
        "550 5.1.1 <nosuch@test.example>: Recipient address rejected: User unknown in local recipient table"
    );
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), "250 2.1.5 Ok");
    let id = queued_id(&c.data("Subject: held\n\nbody\n"));
    c.quit();
    wait_smtpd_line(
        &inst,
        &format!(
            "NOQUEUE: hold: RCPT from unknown[127.0.0.2]: <unknown[127.0.0.2]>: Client host triggers HOLD action; from=<pfsender@client.example> to=<{local}> proto=ESMTP helo=<client.example>"
        ),
    );
    inst.wait_until(&format!("{id} in hold/"), || {
        inst.queue_ids("hold").contains(&id).then_some(())
    });
}

trait HoldAware {
    fn wait_queue_empty_except_hold(&self);
}

impl HoldAware for Instance {
    fn wait_queue_empty_except_hold(&self) {
        self.wait_until("every queue but hold/ to empty", || {
            ["maildrop", "incoming", "active", "deferred"]
                .iter()
                .all(|q| self.queue_ids(q).is_empty())
                .then_some(())
        });
    }
}

#[test]
fn helo_required_and_helo_restrictions() {
    let alice = user("pt-pol2");
    let local = format!("{}@test.example", alice.name);
    let inst = instance()
        .main_cf("smtpd_helo_required = yes")
        .main_cf(
            "smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname",
        )
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect(&inst.smtp_addr());
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    assert_eq!(c.line("NOOP"), "250 2.0.0 Ok");
    assert_eq!(c.line("HELO client.example"), "250 test.example");
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    c.quit();

    // The HELO name is judged at RCPT (smtpd_delay_reject = yes).
    for (helo, refusal) in [
        (
            "bad_host!",
            Some("501 5.5.2 <bad_host!>: Helo command rejected: Invalid name"),
        ),
        (
            "nodots",
            Some("504 5.5.2 <nodots>: Helo command rejected: need fully-qualified hostname"),
        ),
        ("[1.2.3.4]", None),
        (
            "1.2.3.4",
            Some("504 5.5.2 <1.2.3.4>: Helo command rejected: need fully-qualified hostname"),
        ),
        (
            "[garbage]",
            Some("501 5.5.2 <[garbage]>: Helo command rejected: invalid ip address"),
        ),
        ("good.example", None),
        ("trailing.dot.", None),
        (
            "-leading.example",
            Some("501 5.5.2 <-leading.example>: Helo command rejected: Invalid name"),
        ),
        (
            "a..b.example",
            Some("501 5.5.2 <a..b.example>: Helo command rejected: Invalid name"),
        ),
    ] {
        let mut c = Smtp::connect(&inst.smtp_addr());
        c.expect(&format!("EHLO {helo}"), 250);
        c.expect("MAIL FROM:<pfsender@client.example>", 250);
        let reply = c.line(&format!("RCPT TO:<{local}>"));
        match refusal {
            Some(want) => {
                assert_eq!(reply, want, "HELO {helo}");
                wait_smtpd_line(
                    &inst,
                    &rcpt_reject(
                        "localhost[127.0.0.1]",
                        want,
                        "pfsender@client.example",
                        &local,
                        helo,
                    ),
                );
            }
            None => assert_eq!(reply, "250 2.1.5 Ok", "HELO {helo}"),
        }
        c.quit();
    }
}

#[test]
fn without_delay_reject_refusals_come_at_connect_helo_and_mail() {
    let alice = user("pt-pol2");
    let local = format!("{}@test.example", alice.name);
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("smtpd_delay_reject = no")
        .main_cf("smtpd_client_restrictions = permit_mynetworks, reject")
        .main_cf(
            "smtpd_helo_restrictions = reject_invalid_helo_hostname, reject_non_fqdn_helo_hostname",
        )
        .main_cf("smtpd_sender_restrictions = reject_non_fqdn_sender")
        .smtpd(&[])
        .start();

    // HELO names are judged at HELO/EHLO; a refused one is forgotten.
    let mut c = Smtp::connect(&inst.smtp_addr());
    assert_eq!(
        c.line("EHLO nodots"),
        "504 5.5.2 <nodots>: Helo command rejected: need fully-qualified hostname"
    );
    assert_eq!(
        c.line("HELO bad_host!"),
        "501 5.5.2 <bad_host!>: Helo command rejected: Invalid name"
    );
    assert_eq!(c.cmd("EHLO good.example").code, 250);
    // Senders are judged at MAIL.
    assert_eq!(
        c.line("MAIL FROM:<pfsender>"),
        "504 5.5.2 <pfsender>: Sender address rejected: need fully-qualified address"
    );
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), "250 2.1.5 Ok");
    c.quit();
    wait_smtpd_line(
        &inst,
        "NOQUEUE: reject: EHLO from localhost[127.0.0.1]: 504 5.5.2 <nodots>: Helo command rejected: need fully-qualified hostname; proto=SMTP helo=<nodots>",
    );
    wait_smtpd_line(
        &inst,
        "NOQUEUE: reject: HELO from localhost[127.0.0.1]: 501 5.5.2 <bad_host!>: Helo command rejected: Invalid name; proto=SMTP helo=<bad_host!>",
    );
    wait_smtpd_line(
        &inst,
        "NOQUEUE: reject: MAIL from localhost[127.0.0.1]: 504 5.5.2 <pfsender>: Sender address rejected: need fully-qualified address; from=<pfsender> proto=ESMTP helo=<good.example>",
    );
    wait_smtpd_line(
        &inst,
        "disconnect from localhost[127.0.0.1] helo=0/1 ehlo=1/2 mail=1/2 rcpt=1 quit=1 commands=4/7",
    );

    // Clients are judged at connect: the refusal replaces the greeting, and every command
    // but QUIT is answered 503.
    let mut c = Smtp::connect_from("127.0.0.2", &inst.smtp_addr());
    assert_eq!(
        c.greeting.line(),
        "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"
    );
    let denied = "503 5.7.0 Error: access denied for unknown[127.0.0.2]";
    assert_eq!(c.line("EHLO client.example"), denied);
    assert_eq!(c.line("MAIL FROM:<pfsender@client.example>"), denied);
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), denied);
    assert_eq!(c.line("NOOP"), denied);
    c.quit();
    wait_smtpd_line(
        &inst,
        "NOQUEUE: reject: CONNECT from unknown[127.0.0.2]: 554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied; proto=SMTP",
    );
    wait_smtpd_line(
        &inst,
        "disconnect from unknown[127.0.0.2] ehlo=0/1 mail=0/1 rcpt=0/1 noop=0/1 quit=1 commands=1/5",
    );

    // The same policy with smtpd_delay_reject = yes (the default) waits for RCPT.
    let delayed = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .main_cf("smtpd_client_restrictions = permit_mynetworks, reject")
        .main_cf("smtpd_helo_restrictions = reject_non_fqdn_helo_hostname")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect_from("127.0.0.2", &delayed.smtp_addr());
    assert_eq!(c.greeting.line(), "220 test.example ESMTP Postern");
    assert_eq!(c.cmd("EHLO nodots").code, 250);
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.line(&format!("RCPT TO:<{local}>")),
        "554 5.7.1 <unknown[127.0.0.2]>: Client host rejected: Access denied"
    );
    c.quit();
}

#[test]
fn unknown_restriction_is_a_server_configuration_error() {
    let alice = user("pt-pol2");
    let inst = instance()
        .main_cf("smtpd_sender_restrictions = reject_nonsense_restriction")
        .smtpd(&[])
        .start();
    let mut c = Smtp::connect(&inst.smtp_addr());
    c.expect("EHLO client.example", 250);
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.line(&format!("RCPT TO:<{}@test.example>", alice.name)),
        "451 4.3.5 Server configuration error"
    );
    c.quit();
    inst.wait_log(
        &[
            "postfix/smtpd[",
            "warning: ",
            "unknown smtpd restriction: \"reject_nonsense_restriction\"",
        ],
        1,
    );
    wait_smtpd_line(
        &inst,
        &rcpt_reject(
            "localhost[127.0.0.1]",
            "451 4.3.5 Server configuration error",
            "pfsender@client.example",
            &format!("{}@test.example", alice.name),
            "client.example",
        ),
    );
}

#[test]
fn master_cf_overrides_apply_to_their_listener_only() {
    let alice = user("pt-pol2");
    let local = format!("{}@test.example", alice.name);
    let submission = testkit::free_port();
    let inst = instance()
        .main_cf("mynetworks = 127.0.0.1/32")
        .smtpd(&[])
        .master_cf(&format!(
            "127.0.0.1:{submission} inet n - n - - smtpd\n  -o smtpd_relay_restrictions=permit\n  -o smtpd_helo_required=yes"
        ))
        .start();
    let smtp = inst.smtp_addr();
    let submission = format!("127.0.0.1:{submission}");

    // The plain listener: main.cf's policy.
    let mut c = Smtp::connect_from("127.0.0.2", &smtp);
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.line("RCPT TO:<someone@remote.example>"),
        "554 5.7.1 <someone@remote.example>: Relay access denied"
    );
    assert_eq!(c.line(&format!("RCPT TO:<{local}>")), "250 2.1.5 Ok");
    c.quit();

    // The second listener: its -o overrides.
    let mut c = Smtp::connect_from("127.0.0.2", &submission);
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "503 5.5.1 Error: send HELO/EHLO first"
    );
    c.expect("EHLO client.example", 250);
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    assert_eq!(c.line("RCPT TO:<someone@remote.example>"), "250 2.1.5 Ok");
    // Overrides replace one parameter; everything else is still main.cf's.
    assert_eq!(
        c.line("RCPT TO:<nosuch@test.example>"),
        "550 5.1.1 <nosuch@test.example>: Recipient address rejected: User unknown in local recipient table"
    );
    let id = queued_id(&c.data("Subject: via submission\n\nrelayed\n"));
    c.quit();
    inst.wait_log(
        &[
            &format!("{id}: to=<someone@remote.example>"),
            "status=deferred",
        ],
        1,
    );

    // And the first listener did not pick anything up from the second.
    let mut c = Smtp::connect_from("127.0.0.2", &smtp);
    assert_eq!(
        c.line("MAIL FROM:<pfsender@client.example>"),
        "250 2.1.0 Ok"
    );
    assert_eq!(
        c.line("RCPT TO:<someone@remote.example>"),
        "554 5.7.1 <someone@remote.example>: Relay access denied"
    );
    c.quit();
}
