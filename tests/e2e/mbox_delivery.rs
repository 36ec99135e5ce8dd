//! sendmail → queue → local delivery into an mbox, read back by Python's `mailbox.mbox`.

use crate::common::*;

#[test]
fn message_reaches_the_mbox_with_postfix_headers() {
    let alice = user("pt-alice");
    let inst = instance().start();
    inst.send(
        &["-f", "sender@test.example", &alice.name],
        "Subject: hello\n\nFrom the body\nline2\n",
    );
    inst.wait_log(&["status=sent (delivered to mailbox)"], 1);
    inst.wait_log(&[": removed"], 1);
    let msgs = read_mbox(&inst.mailbox(&alice.name));
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert!(
        m.from_line.starts_with("sender@test.example "),
        "{}",
        m.from_line
    );
    assert_eq!(m.header("Return-Path"), Some("<sender@test.example>"));
    assert_eq!(m.header("X-Original-To"), Some(alice.name.as_str()));
    assert_eq!(
        m.header("Delivered-To"),
        Some(format!("{}@test.example", alice.name).as_str())
    );
    assert_eq!(m.header("Subject"), Some("hello"));
    assert!(m
        .header("Message-Id")
        .is_some_and(|v| v.ends_with("@test.example>")));
    assert!(m.header("Date").is_some());
    // `Full Name <sender@...>` with a GECOS name, the bare address without one.
    assert!(m
        .header("From")
        .is_some_and(|v| v.ends_with("sender@test.example>") || v == "sender@test.example"));
    assert!(m
        .header("Received")
        .is_some_and(|v| v.contains("by test.example")));
    assert_eq!(m.body, ">From the body\nline2\n");
}
