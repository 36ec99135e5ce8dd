//! Mail loops are broken, never delivered forever and never lost: a message that already
//! carries `Delivered-To: <recipient>` (in any case) bounces with 5.4.6 "mail forwarding loop
//! for <recipient>", as local(8) does; a message with `hopcount_limit` or more `Received:`
//! headers of its own bounces with "too many hops" (Postfix's cleanup check, 5.4.0); and
//! aliases that lead back to themselves (`a: b`, `b: a`, or a longer cycle) bounce with
//! 5.4.6 "alias database loop for …". In every case the sender gets the failure notice and
//! the queue empties.

use crate::common::*;

/// The failure notices in `u`'s mailbox: (Status, Diagnostic-Code) of each recipient block.
fn notices(inst: &Instance, u: &User) -> Vec<(String, String)> {
    read_mime_mbox(&inst.mailbox(&u.name))
        .iter()
        .filter(|m| m.report_type == "delivery-status")
        .flat_map(|m| {
            let part = m
                .part("message/delivery-status")
                .expect("delivery-status part");
            (1..part.fields.len())
                .map(|i| {
                    (
                        part.field(i, "Status").unwrap_or("").to_string(),
                        part.field(i, "Diagnostic-Code").unwrap_or("").to_string(),
                    )
                })
                .collect::<Vec<_>>()
        })
        .collect()
}

#[test]
fn a_delivered_to_header_naming_the_recipient_bounces() {
    let u = user("pt-loop1");
    let me = format!("{}@test.example", u.name);
    let inst = instance().start();
    inst.send(
        &["-f", &me, &u.name],
        &format!("Delivered-To: {me}\nSubject: looped\n\nbody\n"),
    );
    inst.send(
        &["-f", &me, &u.name],
        &format!(
            "Delivered-To: {}\nSubject: looped in capitals\n\nbody\n",
            me.to_uppercase()
        ),
    );
    // Control: a Delivered-To for someone else is no loop.
    inst.send(
        &["-f", &me, &u.name],
        "Delivered-To: someone-else@test.example\nSubject: passed through\n\nbody\n",
    );

    let lines = inst.wait_log(&[&format!("to=<{me}>"), "dsn=5.4.6"], 2);
    for l in &lines {
        assert!(
            l.contains(&format!("status=bounced (mail forwarding loop for {me})")),
            "{l}"
        );
    }
    inst.wait_log(
        &[&format!("to=<{me}>"), "status=sent (delivered to mailbox)"],
        3,
    );
    inst.wait_queue_empty();

    let msgs = read_mbox(&inst.mailbox(&u.name));
    let subjects: Vec<&str> = msgs.iter().filter_map(|m| m.header("Subject")).collect();
    assert_eq!(
        subjects.iter().filter(|s| **s == "passed through").count(),
        1,
        "{subjects:?}"
    );
    assert!(
        !subjects.iter().any(|s| s.starts_with("looped")),
        "{subjects:?}"
    );
    let n = notices(&inst, &u);
    assert_eq!(n.len(), 2, "{n:?}");
    for (status, diag) in &n {
        assert_eq!(status, "5.4.6");
        assert!(
            diag.contains(&format!("mail forwarding loop for {me}")),
            "{diag}"
        );
    }
}

#[test]
fn too_many_received_headers_bounce() {
    let u = user("pt-loop2");
    let me = format!("{}@test.example", u.name);
    let inst = instance().main_cf("hopcount_limit = 5").start();
    let received = |n: usize| -> String {
        (0..n)
            .map(|i| format!("Received: from hop{i}.example by hop{}.example; Mon, 1 Jan 2024 00:00:0{i} +0000\n", i + 1))
            .collect()
    };
    inst.send(
        &["-f", &me, &u.name],
        &format!("{}Subject: five hops\n\nbody\n", received(5)),
    );
    inst.send(
        &["-f", &me, &u.name],
        &format!("{}Subject: four hops\n\nbody\n", received(4)),
    );

    let bounced = inst.wait_log(&[&format!("to=<{me}>"), "status=bounced"], 1);
    assert!(
        bounced[0].contains("dsn=5.4.0, status=bounced (too many hops)"),
        "{}",
        bounced[0]
    );
    inst.wait_log(
        &[&format!("to=<{me}>"), "status=sent (delivered to mailbox)"],
        2,
    );
    inst.wait_queue_empty();
    assert_eq!(
        inst.log_lines(&[&format!("to=<{me}>"), "status=bounced"])
            .len(),
        1
    );

    let msgs = read_mbox(&inst.mailbox(&u.name));
    let subjects: Vec<&str> = msgs.iter().filter_map(|m| m.header("Subject")).collect();
    assert!(
        subjects.contains(&"four hops"),
        "below the limit it is delivered: {subjects:?}"
    );
    assert!(!subjects.contains(&"five hops"), "{subjects:?}");
    let n = notices(&inst, &u);
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].0, "5.4.0");
    assert!(n[0].1.contains("too many hops"), "{}", n[0].1);
}

#[test]
fn an_alias_loop_is_caught() {
    let u = user("pt-loop3");
    let me = format!("{}@test.example", u.name);
    let mut inst = instance().build();
    std::fs::write(
        inst.config_dir().join("aliases"),
        "postmaster: root\n\
         ping: pong\n\
         pong: ping\n\
         ring1: ring2\n\
         ring2: ring3\n\
         ring3: ring1\n",
    )
    .expect("write aliases");
    let out = inst.run("newaliases", &[], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.start();
    inst.send(&["-f", &me, "ping"], "Subject: ping\n\nbody\n");
    inst.send(&["-f", &me, "ring1"], "Subject: ring\n\nbody\n");

    let ping = &inst.wait_log(&["orig_to=<ping>", "relay=local"], 1)[0];
    assert!(
        ping.contains("dsn=5.4.6, status=bounced (alias database loop for "),
        "{ping}"
    );
    let ring = &inst.wait_log(&["orig_to=<ring1>", "relay=local"], 1)[0];
    assert!(
        ring.contains("dsn=5.4.6, status=bounced (alias database loop for "),
        "{ring}"
    );
    inst.wait_queue_empty();
    assert!(inst
        .log_lines(&["status=sent (delivered"])
        .iter()
        .all(|l| l.contains(&format!("to=<{me}>"))));

    // Nothing silently dropped: the sender is told about both.
    let n = notices(&inst, &u);
    assert_eq!(n.len(), 2, "{n:?}");
    for (status, diag) in &n {
        assert_eq!(status, "5.4.6");
        assert!(diag.contains("alias database loop for"), "{diag}");
    }
}
