//! Mail that cannot be delivered in time is returned, as Postfix's qmgr and bounce(8) do:
//! after `maximal_queue_lifetime` a deferred message is logged `status=expired, returned to
//! sender` and its sender gets a failure notice with the last deferral reason; null-sender mail
//! expires after the (shorter) `bounce_queue_lifetime` instead; and once a message has waited
//! `delay_warning_time`, its sender gets one "Delayed Mail (still being retried)" warning (with
//! the message headers only), not one per retry.

use crate::common::*;

/// An alias whose command always fails temporarily.
const NEVER_ALIAS: &str =
    "postmaster: root\npt-never: \"|/bin/sh -c 'echo still not ready; exit 75'\"\n";
const NEVER_REASON: &str = "temporary failure. Command output: still not ready ";

fn deferred_lines(inst: &Instance, id: &str) -> usize {
    inst.log_lines(&[
        &format!("{id}: to=<pt-never@test.example>"),
        "status=deferred",
    ])
    .len()
}

/// Submit from `sender` to the never-ready alias; returns the queue ID (from its first
/// deferral).
fn send_to_never(inst: &Instance, sender: &str, subject: &str) -> String {
    let needle = format!("dsn=4.3.0, status=deferred ({NEVER_REASON})");
    let ids = || -> Vec<String> {
        inst.log_lines(&["to=<pt-never@test.example>", &needle])
            .iter()
            .map(|l| log_queue_id(l))
            .collect()
    };
    let known = ids();
    inst.send(
        &["-f", sender, "pt-never"],
        &format!("Subject: {subject}\n\nbody of {subject}\n"),
    );
    inst.wait_until("the first deferral of the new message", || {
        ids().into_iter().find(|id| !known.contains(id))
    })
}

#[test]
fn deferred_mail_expires_and_is_returned_to_the_sender() {
    let owner = user("pt-esender");
    let sender = format!("{}@test.example", owner.name);
    let inst = instance()
        .main_cf("maximal_queue_lifetime = 2s")
        .main_cf("bounce_queue_lifetime = 2s")
        .aliases(NEVER_ALIAS)
        .start();
    let id = send_to_never(&inst, &sender, "expire me");

    let expired = inst.wait_log(
        &[&format!(
            "{id}: from=<{sender}>, status=expired, returned to sender"
        )],
        1,
    );
    assert!(expired[0].contains("postfix/qmgr["), "{}", expired[0]);
    // It was tried (and deferred) before it expired, and never delivered.
    assert!(deferred_lines(&inst, &id) >= 1);
    assert!(
        inst.log_lines(&[&format!("{id}: to="), "status=sent"])
            .is_empty(),
        "{}",
        inst.log()
    );
    let notice_line = inst.wait_log(&[&format!("{id}: sender non-delivery notification: ")], 1);
    let notice = notice_id(&notice_line[0]);
    inst.wait_log(&[&format!("{id}: removed")], 1);
    inst.wait_log(
        &[
            &format!("{notice}: to=<{sender}>"),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );
    inst.wait_queue_empty();
    // Expired once: no second notice, no second "expired" line.
    assert_eq!(
        inst.log_lines(&[&format!("{id}: "), "status=expired"])
            .len(),
        1
    );
    assert_eq!(
        inst.log_lines(&[&format!("{id}: "), "notification"]).len(),
        1
    );

    let msgs = read_mime_mbox(&inst.mailbox(&owner.name));
    assert_eq!(msgs.len(), 1, "one notice in the sender's mailbox");
    let m = &msgs[0];
    assert!(m.from_line.starts_with("MAILER-DAEMON "), "{}", m.from_line);
    assert_eq!(
        m.header("Subject"),
        Some("Undelivered Mail Returned to Sender")
    );
    assert_eq!(m.content_type, "multipart/report");
    assert_eq!(m.report_type, "delivery-status");
    let text = m.part("text/plain").expect("notification part");
    assert!(
        text.body.contains(&format!(
            "<pt-never@test.example> (expanded from <pt-never>): {NEVER_REASON}"
        )),
        "the last deferral reason is reported:\n{}",
        text.body
    );
    let ds = m
        .part("message/delivery-status")
        .expect("delivery-status part");
    assert_eq!(ds.field(0, "X-Postfix-Queue-ID"), Some(id.as_str()));
    assert_eq!(
        ds.field(1, "Final-Recipient"),
        Some("rfc822; pt-never@test.example")
    );
    assert_eq!(ds.field(1, "Action"), Some("failed"));
    // The status of the last temporary failure, as Postfix reports expired mail.
    assert_eq!(ds.field(1, "Status"), Some("4.3.0"));
    assert_eq!(
        ds.field(1, "Diagnostic-Code"),
        Some(format!("X-Postfix; {}", NEVER_REASON.trim_end()).as_str())
    );
    let orig = m.part("message/rfc822").expect("the returned message");
    assert_eq!(orig.header("Subject"), Some("expire me"));
}

#[test]
fn null_sender_mail_expires_after_bounce_queue_lifetime() {
    let owner = user("pt-esender");
    let sender = format!("{}@test.example", owner.name);
    let inst = instance()
        .main_cf("maximal_queue_lifetime = 1h")
        .main_cf("bounce_queue_lifetime = 2s")
        .aliases(NEVER_ALIAS)
        .start();
    let normal = send_to_never(&inst, &sender, "normal sender");
    let null = send_to_never(&inst, "<>", "null sender");
    assert_ne!(normal, null);

    inst.wait_log(
        &[&format!(
            "{null}: from=<>, status=expired, returned to sender"
        )],
        1,
    );
    inst.wait_log(&[&format!("{null}: removed")], 1);
    // The mail with a real sender is as old, but its lifetime is an hour: still queued.
    let retries_before = deferred_lines(&inst, &normal);
    inst.wait_until("another retry of the normal-sender mail", || {
        (deferred_lines(&inst, &normal) > retries_before).then_some(())
    });
    assert!(
        inst.log_lines(&[&format!("{normal}: "), "status=expired"])
            .is_empty(),
        "{}",
        inst.log()
    );
    let queued = [
        inst.queue_ids("deferred"),
        inst.queue_ids("active"),
        inst.queue_ids("incoming"),
    ]
    .concat();
    assert!(
        queued.contains(&normal),
        "{normal} still queued: {queued:?}"
    );
    // A null-sender message is never returned to its (empty) sender.
    assert!(inst
        .log_lines(&[&format!("{null}: sender non-delivery notification")])
        .is_empty());
}

#[test]
fn bounce_queue_lifetime_is_capped_by_maximal_queue_lifetime() {
    // Postfix's qmgr: "bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting
    // bounce_queue_lifetime". Null-sender mail must not outlive other mail.
    let inst = instance()
        .main_cf("maximal_queue_lifetime = 2s")
        .main_cf("bounce_queue_lifetime = 1h")
        .aliases(NEVER_ALIAS)
        .start();
    inst.wait_log(&["warning: bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting bounce_queue_lifetime"], 1);
    let null = send_to_never(&inst, "<>", "capped");
    inst.wait_log(
        &[&format!(
            "{null}: from=<>, status=expired, returned to sender"
        )],
        1,
    );
    inst.wait_log(&[&format!("{null}: removed")], 1);
}

#[test]
fn delayed_mail_warning_is_sent_once() {
    let owner = user("pt-esender");
    let sender = format!("{}@test.example", owner.name);
    let inst = instance()
        .main_cf("delay_warning_time = 1s")
        .main_cf("maximal_queue_lifetime = 1h")
        .main_cf("minimal_backoff_time = 1s")
        .main_cf("maximal_backoff_time = 1s")
        .aliases(NEVER_ALIAS)
        .start();
    let id = send_to_never(&inst, &sender, "slow one");

    let warn = inst.wait_log(&[&format!("{id}: sender delay notification: ")], 1);
    assert!(warn[0].contains("postfix/bounce["), "{}", warn[0]);
    let notice = notice_id(&warn[0]);
    inst.wait_log(
        &[
            &format!("{notice}: to=<{sender}>"),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );
    // Several more retries happen; none of them warns again.
    let after_warning = deferred_lines(&inst, &id);
    inst.wait_until("three more retries", || {
        (deferred_lines(&inst, &id) >= after_warning + 3).then_some(())
    });
    assert_eq!(
        inst.log_lines(&[&format!("{id}: sender delay notification")])
            .len(),
        1,
        "exactly one warning:\n{}",
        inst.log()
    );
    // Still queued: a warning is not a return.
    assert!(inst
        .log_lines(&[&format!("{id}: "), "status=expired"])
        .is_empty());

    let msgs = read_mime_mbox(&inst.mailbox(&owner.name));
    assert_eq!(msgs.len(), 1, "one warning in the sender's mailbox");
    let m = &msgs[0];
    assert!(m.from_line.starts_with("MAILER-DAEMON "), "{}", m.from_line);
    assert_eq!(m.header("Return-Path"), Some("<>"));
    assert_eq!(
        m.header("Subject"),
        Some("Delayed Mail (still being retried)")
    );
    assert_eq!(
        m.header("From"),
        Some("Mail Delivery System <MAILER-DAEMON@test.example>")
    );
    assert_eq!(m.content_type, "multipart/report");
    assert_eq!(m.report_type, "delivery-status");
    let kinds: Vec<&str> = m.parts.iter().map(|p| p.content_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "text/plain",
            "message/delivery-status",
            "text/rfc822-headers"
        ]
    );
    // Postfix's delay_template, with its times in whole units (1s is 0 hours, 1h is 0 days).
    let text = &m.parts[0].body;
    let expected = "This is the mail system at host test.example.\n\n\
        ####################################################################\n\
        # THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #\n\
        ####################################################################\n\n\
        Your message could not be delivered for more than 0 hour(s).\n\
        It will be retried until it is 0 day(s) old.\n";
    assert!(text.starts_with(expected), "delay template text:\n{text}");
    assert!(
        text.contains(&format!(
            "<pt-never@test.example> (expanded from <pt-never>): {NEVER_REASON}"
        )),
        "{text}"
    );
    let ds = &m.parts[1];
    assert_eq!(ds.field(0, "X-Postfix-Queue-ID"), Some(id.as_str()));
    assert_eq!(
        ds.field(1, "Final-Recipient"),
        Some("rfc822; pt-never@test.example")
    );
    assert_eq!(ds.field(1, "Action"), Some("delayed"));
    assert_eq!(ds.field(1, "Status"), Some("4.3.0"));
    assert!(ds.field(1, "Will-Retry-Until").is_some(), "{:?}", ds.fields);
    let hdrs = &m.parts[2];
    assert_eq!(hdrs.description, "Undelivered Message Headers");
    assert!(hdrs.body.contains("Subject: slow one"), "{}", hdrs.body);
    assert!(
        !hdrs.body.contains("body of slow one"),
        "headers only: {}",
        hdrs.body
    );
}
