//! Null-sender mail is never bounced again, as in Postfix's bounce(8): when it fails (a
//! bounce to a sender that does not exist, or `sendmail -f '<>'` mail) and `notify_classes`
//! has `2bounce` (or `bounce`), one "Postmaster Copy: Undelivered Mail" notice goes to
//! `2bounce_notice_recipient` from `double-bounce@$myorigin`; when that notice fails too it is
//! discarded ("undeliverable postmaster notification discarded"). With Postfix's default
//! `notify_classes` (resource, software) the failed null-sender mail is simply dropped. In
//! every case nothing loops and the queue empties.

use crate::common::*;

/// Local parts with no passwd entry and no alias.
const NOBODY: &str = "pt-nosuch";
const GHOST: &str = "pt-ghost";
const NO_PM: &str = "pt-nosuch-pm";

fn assert_missing(names: &[&str]) {
    for n in names {
        assert!(
            nix::unistd::User::from_name(n).ok().flatten().is_none(),
            "{n} must not exist"
        );
    }
}

fn bounced_line(to: &str) -> String {
    format!("to=<{to}@test.example>")
}

#[test]
fn failed_bounce_goes_to_the_postmaster_once() {
    assert_missing(&[NOBODY, GHOST]);
    let pm = user("pt-pm");
    let inst = instance()
        .main_cf("notify_classes = resource, software, 2bounce")
        .aliases(&format!("postmaster: {}\n", pm.name))
        .start();
    // A sender that does not exist, to a recipient that does not exist: the bounce fails too.
    inst.send(
        &["-f", &format!("{GHOST}@test.example"), NOBODY],
        "Subject: doomed\n\ndoomed-token\n",
    );

    let first = inst.wait_log(
        &[
            &bounced_line(NOBODY),
            "status=bounced (unknown user: \"pt-nosuch\")",
        ],
        1,
    );
    let id = log_queue_id(&first[0]);
    let bounce =
        notice_id(&inst.wait_log(&[&format!("{id}: sender non-delivery notification: ")], 1)[0]);
    inst.wait_log(&[&format!("{bounce}: from=<>, size=")], 1);
    inst.wait_log(
        &[
            &format!("{bounce}: {}", bounced_line(GHOST)),
            "dsn=5.1.1, status=bounced (unknown user: \"pt-ghost\")",
        ],
        1,
    );
    let copy_line = inst.wait_log(
        &[&format!("{bounce}: postmaster non-delivery notification: ")],
        1,
    );
    assert!(copy_line[0].contains("postfix/bounce["), "{}", copy_line[0]);
    let copy = notice_id(&copy_line[0]);
    inst.wait_log(
        &[&format!("{copy}: from=<double-bounce@test.example>, size=")],
        1,
    );
    inst.wait_log(
        &[
            &format!(
                "{copy}: to=<{}@test.example>, orig_to=<postmaster>",
                pm.name
            ),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );
    inst.wait_log(&[&format!("{copy}: removed")], 1);
    inst.wait_log(&[&format!("{bounce}: removed")], 1);
    inst.wait_queue_empty();

    // Three messages in all: the mail, its bounce, the postmaster copy. Nothing more.
    assert_eq!(
        inst.log_lines(&["(queue active)"]).len(),
        3,
        "{}",
        inst.log()
    );
    assert_eq!(
        inst.log_lines(&["notification: "]).len(),
        2,
        "{}",
        inst.log()
    );

    let msgs = read_mime_mbox(&inst.mailbox(&pm.name));
    assert_eq!(msgs.len(), 1, "one postmaster notice");
    let m = &msgs[0];
    assert!(
        m.from_line.starts_with("double-bounce@test.example "),
        "{}",
        m.from_line
    );
    assert_eq!(
        m.header("Return-Path"),
        Some("<double-bounce@test.example>")
    );
    assert_eq!(
        m.header("From"),
        Some("Mail Delivery System <MAILER-DAEMON@test.example>")
    );
    assert_eq!(
        m.header("Subject"),
        Some("Postmaster Copy: Undelivered Mail")
    );
    assert!(
        m.header("To").is_some_and(|t| t.starts_with("postmaster")),
        "{:?}",
        m.header("To")
    );
    assert_eq!(m.content_type, "multipart/report");
    assert_eq!(m.report_type, "delivery-status");
    let ds = m
        .part("message/delivery-status")
        .expect("delivery-status part");
    assert_eq!(ds.field(0, "X-Postfix-Queue-ID"), Some(bounce.as_str()));
    assert_eq!(ds.field(0, "X-Postfix-Sender"), Some("rfc822;"));
    assert_eq!(
        ds.field(1, "Final-Recipient"),
        Some("rfc822; pt-ghost@test.example")
    );
    assert_eq!(ds.field(1, "Action"), Some("failed"));
    assert_eq!(ds.field(1, "Status"), Some("5.1.1"));
    // The failed bounce itself is attached, whole.
    let orig = m
        .part("message/rfc822")
        .expect("the failed bounce is attached");
    assert_eq!(
        orig.header("Subject"),
        Some("Undelivered Mail Returned to Sender")
    );
    assert_eq!(orig.header("Return-Path"), Some("<>"));
}

#[test]
fn null_sender_mail_that_fails_goes_to_the_postmaster() {
    assert_missing(&[NOBODY]);
    let pm = user("pt-pm");
    let inst = instance()
        .main_cf("notify_classes = 2bounce")
        .aliases(&format!("postmaster: {}\n", pm.name))
        .start();
    inst.send(
        &["-f", "<>", NOBODY],
        "Subject: from nobody\n\nnull-token\n",
    );
    let first = inst.wait_log(&[&bounced_line(NOBODY), "status=bounced"], 1);
    let id = log_queue_id(&first[0]);
    let copy = notice_id(
        &inst.wait_log(
            &[&format!("{id}: postmaster non-delivery notification: ")],
            1,
        )[0],
    );
    inst.wait_log(
        &[
            &format!("{copy}: to=<{}@test.example>", pm.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );
    inst.wait_queue_empty();
    assert!(inst
        .log_lines(&[&format!("{id}: sender non-delivery notification")])
        .is_empty());
    let msgs = read_mime_mbox(&inst.mailbox(&pm.name));
    assert_eq!(msgs.len(), 1);
    assert_eq!(
        msgs[0].header("Subject"),
        Some("Postmaster Copy: Undelivered Mail")
    );
    let orig = msgs[0]
        .part("message/rfc822")
        .expect("the failed mail is attached");
    assert_eq!(orig.header("Subject"), Some("from nobody"));
}

#[test]
fn undeliverable_postmaster_notice_is_discarded() {
    assert_missing(&[NOBODY, NO_PM]);
    let inst = instance()
        .main_cf("notify_classes = 2bounce")
        .aliases(&format!("postmaster: {NO_PM}\n"))
        .start();
    inst.send(&["-f", "<>", NOBODY], "Subject: nobody cares\n\nbody\n");
    let first = inst.wait_log(&[&bounced_line(NOBODY), "status=bounced"], 1);
    let id = log_queue_id(&first[0]);
    let copy = notice_id(
        &inst.wait_log(
            &[&format!("{id}: postmaster non-delivery notification: ")],
            1,
        )[0],
    );
    // The postmaster notice fails in turn ...
    inst.wait_log(
        &[
            &format!("{copy}: {}, orig_to=<postmaster>", bounced_line(NO_PM)),
            "dsn=5.1.1, status=bounced",
        ],
        1,
    );
    // ... and is dropped, not bounced again.
    let discarded = inst.wait_log(
        &[&format!(
            "{copy}: undeliverable postmaster notification discarded"
        )],
        1,
    );
    assert!(discarded[0].contains("warning: "), "{}", discarded[0]);
    inst.wait_log(&[&format!("{copy}: removed")], 1);
    inst.wait_queue_empty();
    assert_eq!(
        inst.log_lines(&["(queue active)"]).len(),
        2,
        "{}",
        inst.log()
    );
    assert_eq!(
        inst.log_lines(&["notification: "]).len(),
        1,
        "{}",
        inst.log()
    );
}

#[test]
fn with_default_notify_classes_failed_null_sender_mail_is_dropped() {
    assert_missing(&[NOBODY]);
    let pm = user("pt-pm");
    let inst = instance()
        .aliases(&format!("postmaster: {}\n", pm.name))
        .start();
    let before = read_mime_mbox(&inst.mailbox(&pm.name)).len();
    inst.send(&["-f", "<>", NOBODY], "Subject: dropped\n\nbody\n");
    let first = inst.wait_log(&[&bounced_line(NOBODY), "status=bounced"], 1);
    let id = log_queue_id(&first[0]);
    // Any notice would be queued before the failed mail is removed.
    inst.wait_log(&[&format!("{id}: removed")], 1);
    inst.wait_queue_empty();
    assert!(
        inst.log_lines(&["notification"]).is_empty(),
        "{}",
        inst.log()
    );
    assert_eq!(
        inst.log_lines(&["(queue active)"]).len(),
        1,
        "{}",
        inst.log()
    );
    assert_eq!(read_mime_mbox(&inst.mailbox(&pm.name)).len(), before);
}
