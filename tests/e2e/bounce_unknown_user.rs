//! Mail to an unknown local user is returned to its (local) sender as an RFC 3464 delivery
//! status notification, as Postfix's local(8) and bounce(8) do: the notice comes from the null
//! sender, is a `multipart/report; report-type=delivery-status` with a human-readable part, a
//! `message/delivery-status` part (Reporting-MTA, Arrival-Date, Final-Recipient, Action:
//! failed, Status: 5.1.1, Diagnostic-Code) and the returned message — whole, or only its
//! headers when it is larger than `bounce_size_limit` or the sender asked for `-R hdrs`.
//! `-N never` suppresses the notice. Compared with /tmp/postfix-reference/
//! dsn_bounce_unknown_user.mbox and bounce_unknown_user.log (Postfix 3.7.11).

use crate::common::*;

/// A local part that has no passwd entry and no alias.
const NOBODY: &str = "pt-nosuch";

fn assert_no_such_user() {
    assert!(
        nix::unistd::User::from_name(NOBODY)
            .ok()
            .flatten()
            .is_none(),
        "{NOBODY} must not exist for this test"
    );
}

/// Send `message` from `sender` to the unknown user; returns the queue ID of the failed mail
/// once its bounce is logged.
fn send_to_nobody(inst: &Instance, sender: &str, extra: &[&str], message: &str) -> String {
    let mut args: Vec<&str> = vec!["-f", sender];
    args.extend_from_slice(extra);
    args.push(NOBODY);
    let to = format!("to=<{NOBODY}@test.example>, orig_to=<{NOBODY}>, relay=local");
    let status = format!("dsn=5.1.1, status=bounced (unknown user: \"{NOBODY}\")");
    let before = inst.log_lines(&[&to, &status]).len();
    inst.send(&args, message);
    let lines = inst.wait_log(&[&to, &status], before + 1);
    let line = &lines[before];
    assert!(line.contains("postfix/local["), "{line}");
    log_queue_id(line)
}

/// Wait for the sender non-delivery notice of `id` and its delivery; returns the notice's ID.
fn wait_notice_delivered(inst: &Instance, id: &str, sender: &str) -> String {
    let line = inst.wait_log(&[&format!("{id}: sender non-delivery notification: ")], 1);
    assert!(line[0].contains("postfix/bounce["), "{}", line[0]);
    let notice = notice_id(&line[0]);
    assert!(!notice.is_empty() && notice != id, "{}", line[0]);
    // The notice itself has the null sender ...
    inst.wait_log(
        &[
            &format!("{notice}: from=<>, size="),
            "nrcpt=1 (queue active)",
        ],
        1,
    );
    // ... and reaches the sender's mailbox.
    inst.wait_log(
        &[
            &format!("{notice}: to=<{sender}>"),
            "relay=local",
            "dsn=2.0.0, status=sent (delivered to mailbox)",
        ],
        1,
    );
    inst.wait_log(&[&format!("{notice}: removed")], 1);
    inst.wait_log(&[&format!("{id}: removed")], 1);
    notice
}

#[test]
fn unknown_user_returns_an_rfc3464_report_to_the_sender() {
    assert_no_such_user();
    let owner = user("pt-bsender");
    let sender = format!("{}@test.example", owner.name);
    let inst = instance().start();
    let id = send_to_nobody(
        &inst,
        &sender,
        &[],
        "Subject: to nosuch\nTo: pt-nosuch@test.example\n\nbody token-bounce-7731\nline2\n",
    );
    let notice = wait_notice_delivered(&inst, &id, &sender);

    let msgs = read_mime_mbox(&inst.mailbox(&owner.name));
    assert_eq!(msgs.len(), 1, "exactly one notice in the sender's mailbox");
    let m = &msgs[0];
    // From the null sender.
    assert!(m.from_line.starts_with("MAILER-DAEMON "), "{}", m.from_line);
    assert_eq!(m.header("Return-Path"), Some("<>"));
    assert_eq!(
        m.header("From"),
        Some("Mail Delivery System <MAILER-DAEMON@test.example>")
    );
    assert_eq!(
        m.header("Subject"),
        Some("Undelivered Mail Returned to Sender")
    );
    assert_eq!(m.header("To"), Some(sender.as_str()));
    assert_eq!(m.header("Auto-Submitted"), Some("auto-replied"));
    assert_eq!(m.header("MIME-Version"), Some("1.0"));
    assert!(
        m.header("Message-Id").is_some_and(|v| v.contains(&notice)),
        "the notice's Message-Id names its own queue ID {notice}: {:?}",
        m.header("Message-Id")
    );
    assert!(m.header("Date").is_some());
    // multipart/report; report-type=delivery-status, three parts.
    assert_eq!(m.content_type, "multipart/report");
    assert_eq!(m.report_type, "delivery-status");
    let kinds: Vec<&str> = m.parts.iter().map(|p| p.content_type.as_str()).collect();
    assert_eq!(
        kinds,
        ["text/plain", "message/delivery-status", "message/rfc822"]
    );

    let text = &m.parts[0];
    assert_eq!(text.description, "Notification");
    assert!(
        text.body
            .contains("This is the mail system at host test.example."),
        "{}",
        text.body
    );
    assert!(
        text.body.contains(&format!(
            "<{NOBODY}@test.example> (expanded from <{NOBODY}>): unknown user: \"{NOBODY}\""
        )),
        "{}",
        text.body
    );

    let ds = &m.parts[1];
    assert_eq!(ds.description, "Delivery report");
    assert_eq!(
        ds.fields.len(),
        2,
        "one per-message and one per-recipient block: {:?}",
        ds.fields
    );
    assert_eq!(ds.field(0, "Reporting-MTA"), Some("dns; test.example"));
    assert_eq!(ds.field(0, "X-Postfix-Queue-ID"), Some(id.as_str()));
    assert_eq!(
        ds.field(0, "X-Postfix-Sender"),
        Some(format!("rfc822; {sender}").as_str())
    );
    let arrival = ds.field(0, "Arrival-Date").expect("Arrival-Date");
    assert_rfc5322_date_near_now(arrival);
    assert_eq!(
        ds.field(1, "Final-Recipient"),
        Some(format!("rfc822; {NOBODY}@test.example").as_str())
    );
    assert_eq!(
        ds.field(1, "Original-Recipient"),
        Some(format!("rfc822;{NOBODY}@test.example").as_str())
    );
    assert_eq!(ds.field(1, "Action"), Some("failed"));
    assert_eq!(ds.field(1, "Status"), Some("5.1.1"));
    assert_eq!(
        ds.field(1, "Diagnostic-Code"),
        Some(format!("X-Postfix; unknown user: \"{NOBODY}\"").as_str())
    );

    let orig = &m.parts[2];
    assert_eq!(orig.description, "Undelivered Message");
    assert_eq!(
        orig.header("Return-Path"),
        Some(format!("<{sender}>").as_str())
    );
    assert_eq!(orig.header("Subject"), Some("to nosuch"));
    assert!(
        orig.header("Received")
            .is_some_and(|r| r.contains(&format!("id {id};"))),
        "{:?}",
        orig.header("Received")
    );
    assert!(
        orig.body.contains("body token-bounce-7731\nline2\n"),
        "the whole message is returned: {:?}",
        orig.body
    );
}

/// Python's `email.utils` parses the date and says how far it is from now, in seconds.
fn assert_rfc5322_date_near_now(date: &str) {
    let out = std::process::Command::new("python3")
        .args([
            "-c",
            "import sys, time, email.utils; print(abs(time.time() - email.utils.parsedate_to_datetime(sys.argv[1]).timestamp()))",
            date,
        ])
        .output()
        .expect("run python3");
    assert!(
        out.status.success(),
        "not an RFC 5322 date: {date:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let off: f64 = String::from_utf8_lossy(&out.stdout)
        .trim()
        .parse()
        .expect("a number");
    assert!(off < 120.0, "Arrival-Date {date:?} is {off}s away from now");
}

#[test]
fn message_larger_than_bounce_size_limit_is_returned_as_headers_only() {
    assert_no_such_user();
    let owner = user("pt-bsender");
    let sender = format!("{}@test.example", owner.name);
    let inst = instance().main_cf("bounce_size_limit = 1000").start();
    let big = "0123456789 big-body-token ".repeat(100);
    let id = send_to_nobody(
        &inst,
        &sender,
        &[],
        &format!("Subject: too big to return\n\n{big}\n"),
    );
    wait_notice_delivered(&inst, &id, &sender);

    let msgs = read_mime_mbox(&inst.mailbox(&owner.name));
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    let kinds: Vec<&str> = m.parts.iter().map(|p| p.content_type.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "text/plain",
            "message/delivery-status",
            "text/rfc822-headers"
        ]
    );
    let hdrs = &m.parts[2];
    assert_eq!(hdrs.description, "Undelivered Message Headers");
    assert!(
        hdrs.body.contains("Subject: too big to return"),
        "{}",
        hdrs.body
    );
    assert!(
        !hdrs.body.contains("big-body-token"),
        "the body must not be returned: {}",
        hdrs.body
    );
    assert_eq!(
        m.part("message/delivery-status")
            .and_then(|p| p.field(1, "Status")),
        Some("5.1.1")
    );
}

#[test]
fn ret_hdrs_returns_headers_only_and_small_mail_is_returned_whole() {
    assert_no_such_user();
    let owner = user("pt-bsender");
    let sender = format!("{}@test.example", owner.name);
    // The limit is large enough for both messages: only -R decides.
    let inst = instance().main_cf("bounce_size_limit = 50000").start();

    let hdrs_id = send_to_nobody(
        &inst,
        &sender,
        &["-R", "hdrs"],
        "Subject: ret hdrs\n\nsecret-body-token\n",
    );
    wait_notice_delivered(&inst, &hdrs_id, &sender);
    let full_id = send_to_nobody(
        &inst,
        &sender,
        &["-R", "full"],
        "Subject: ret full\n\nvisible-body-token\n",
    );
    wait_notice_delivered(&inst, &full_id, &sender);

    let msgs = read_mime_mbox(&inst.mailbox(&owner.name));
    assert_eq!(msgs.len(), 2);
    let by_id = |id: &str| {
        msgs.iter()
            .find(|m| {
                m.part("message/delivery-status")
                    .and_then(|p| p.field(0, "X-Postfix-Queue-ID"))
                    == Some(id)
            })
            .unwrap_or_else(|| panic!("no notice for {id}"))
    };
    let hdrs = by_id(&hdrs_id);
    let third = &hdrs.parts[2];
    assert_eq!(third.content_type, "text/rfc822-headers");
    assert!(third.body.contains("Subject: ret hdrs"), "{}", third.body);
    assert!(!third.body.contains("secret-body-token"), "{}", third.body);

    let full = by_id(&full_id);
    let third = &full.parts[2];
    assert_eq!(third.content_type, "message/rfc822");
    assert_eq!(third.header("Subject"), Some("ret full"));
    assert!(third.body.contains("visible-body-token"), "{}", third.body);
}

#[test]
fn notify_never_sends_no_report() {
    assert_no_such_user();
    let owner = user("pt-bsender");
    let sender = format!("{}@test.example", owner.name);
    let inst = instance().start();
    let id = send_to_nobody(
        &inst,
        &sender,
        &["-N", "never"],
        "Subject: never tell me\n\nbody\n",
    );
    // The notice would be queued before the failed message is removed.
    inst.wait_log(&[&format!("{id}: removed")], 1);
    assert!(
        inst.log_lines(&["non-delivery notification"]).is_empty(),
        "NOTIFY=NEVER must not produce a notice:\n{}",
        inst.log()
    );
    // Nothing else was queued, and the sender's mailbox stays empty.
    inst.wait_queue_empty();
    assert_eq!(
        inst.log_lines(&["(queue active)"]).len(),
        1,
        "{}",
        inst.log()
    );
    assert!(read_mime_mbox(&inst.mailbox(&owner.name)).is_empty());

    // The same mail without -N is returned: the silence above was NOTIFY=NEVER's doing.
    let id2 = send_to_nobody(&inst, &sender, &[], "Subject: tell me\n\nbody\n");
    wait_notice_delivered(&inst, &id2, &sender);
    assert_eq!(read_mime_mbox(&inst.mailbox(&owner.name)).len(), 1);
}
