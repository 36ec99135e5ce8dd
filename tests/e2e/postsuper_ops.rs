//! `postsuper` manages the queue as Postfix's does: `-h` puts mail on hold (it is then never
//! tried, not even by a flush), `-H` releases it (it is then delivered), `-d` deletes it (it is
//! gone for good), `-r` requeues it (it goes through pickup and cleanup again and is
//! delivered); each takes a queue ID, `ALL`, or `-` (IDs on standard input, here taken from
//! `postqueue -j`), optionally restricted to named queues. Its standard error is Postfix's, line
//! for line (/tmp/postfix-reference/postsuper_*.err): a line per explicitly named message, a
//! summary always, a warning for an invalid ID, a fatal error (exit 1) for an unknown queue name.

use crate::common::*;
use testkit::json;

/// An instance with `aliases` whose deferred mail waits an hour before its next try.
fn slow_retry_instance(aliases: &str) -> Instance {
    let mut inst = instance().aliases(aliases).build();
    let out = inst.run(
        "postconf",
        &[
            "-e",
            "minimal_backoff_time = 1h",
            "maximal_backoff_time = 1h",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "postconf -e: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.start();
    inst
}

fn id_of_sender(inst: &Instance, sender: &str) -> String {
    let line = inst
        .wait_log(&[" uid=", &format!(" from=<{sender}>")], 1)
        .remove(0);
    let rest = &line[line.find("]: ").expect("program tag") + 3..];
    rest[..rest.find(':').expect("queue ID")].to_string()
}

/// Wait until `id` has been tried `n` times in all and is back in deferred/.
fn wait_deferred(inst: &Instance, id: &str, n: usize) {
    inst.wait_log(&[&format!("{id}: to=<"), "status=deferred"], n);
    inst.wait_until(&format!("{id} in deferred/"), || {
        inst.queue_ids("deferred")
            .contains(&id.to_string())
            .then_some(())
    });
}

/// Run postsuper; it must exit `code` with exactly `stderr`.
fn postsuper(inst: &Instance, args: &[&str], stdin: &[u8], code: i32, stderr: &str) {
    let out = inst.run("postsuper", args, stdin);
    assert_eq!(
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stderr).into_owned()
        ),
        (Some(code), stderr.to_string()),
        "postsuper {args:?}"
    );
    assert!(out.stdout.is_empty());
}

fn sorted(mut v: Vec<String>) -> Vec<String> {
    v.sort();
    v
}

fn everywhere(inst: &Instance, id: &str) -> Vec<&'static str> {
    [
        "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
    ]
    .into_iter()
    .filter(|q| inst.queue_ids(q).iter().any(|x| x == id))
    .collect()
}

#[test]
fn hold_release_delete_and_requeue_one_message_each() {
    let flags = tempfile::Builder::new()
        .prefix("postern-flags-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(
        flags.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let flag = |n: u32| flags.path().join(format!("ok{n}"));
    let inst = slow_retry_instance(&format!(
        "postmaster: root\n\
         flaky1: \"|/bin/sh -c 'test -e {} || exit 75'\"\n\
         flaky2: \"|/bin/sh -c 'test -e {} || exit 75'\"\n\
         flaky3: \"|/bin/sh -c 'test -e {} || exit 75'\"\n",
        flag(1).display(),
        flag(2).display(),
        flag(3).display()
    ));
    inst.send(
        &["-f", "held@test.example", "flaky1"],
        "Subject: held\n\nbody\n",
    );
    inst.send(
        &["-f", "deleted@test.example", "flaky2"],
        "Subject: deleted\n\nbody\n",
    );
    inst.send(
        &["-f", "requeued@test.example", "flaky3"],
        "Subject: requeued\n\nbody\n",
    );
    let held = id_of_sender(&inst, "held@test.example");
    let deleted = id_of_sender(&inst, "deleted@test.example");
    let requeued = id_of_sender(&inst, "requeued@test.example");
    for id in [&held, &deleted, &requeued] {
        wait_deferred(&inst, id, 1);
    }
    // From now on every command would succeed: only postsuper decides what is delivered.
    for n in 1..=3 {
        std::fs::write(flag(n), b"").unwrap();
    }

    postsuper(
        &inst,
        &["-h", &held],
        b"",
        0,
        &format!("postsuper: {held}: placed on hold\npostsuper: Placed on hold: 1 message\n"),
    );
    assert_eq!(everywhere(&inst, &held), ["hold"]);
    inst.wait_log(&["postsuper[", &format!("{held}: placed on hold")], 1);
    let listing = String::from_utf8_lossy(&inst.run("mailq", &[], b"").stdout).into_owned();
    assert!(listing.contains(&format!("{held}!")), "{listing}");

    postsuper(
        &inst,
        &["-d", &deleted],
        b"",
        0,
        &format!("postsuper: {deleted}: removed\npostsuper: Deleted: 1 message\n"),
    );
    assert!(everywhere(&inst, &deleted).is_empty());
    inst.wait_log(&["postsuper[", &format!("{deleted}: removed")], 1);

    postsuper(
        &inst,
        &["-r", &requeued],
        b"",
        0,
        &format!("postsuper: {requeued}: requeued\npostsuper: Requeued: 1 message\n"),
    );
    inst.wait_log(&["postsuper[", &format!("{requeued}: requeued")], 1);
    // Requeued mail goes through pickup and cleanup again, and is delivered.
    let sent = inst.wait_log(&["to=<flaky3@test.example>", "status=sent"], 1);
    inst.wait_log(&["from=<requeued@test.example>", " uid="], 2);

    // A flush retries deferred mail, never held mail.
    let out = inst.run("postqueue", &["-f"], b"");
    assert!(out.status.success());
    assert_eq!(
        inst.log_lines(&[&format!("{held}: to=<")]).len(),
        1,
        "held mail is not tried"
    );
    assert_eq!(everywhere(&inst, &held), ["hold"]);

    postsuper(
        &inst,
        &["-H", &held],
        b"",
        0,
        &format!(
            "postsuper: {held}: released from hold\npostsuper: Released from hold: 1 message\n"
        ),
    );
    inst.wait_log(
        &[&format!("{held}: to=<flaky1@test.example>"), "status=sent"],
        1,
    );
    inst.wait_log(&["postsuper[", &format!("{held}: released from hold")], 1);

    inst.wait_queue_empty();
    // The deleted message was never delivered and cannot be found any more.
    assert!(inst
        .log_lines(&["to=<flaky2@test.example>", "status=sent"])
        .is_empty());
    let out = inst.run("postcat", &["-q", &deleted], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(sent.len(), 1);
}

#[test]
fn all_stdin_and_queue_names() {
    let inst = slow_retry_instance("postmaster: root\ndeferme: \"|/bin/sh -c 'exit 75'\"\n");
    for n in 1..=4 {
        inst.send(
            &["-f", &format!("d{n}@test.example"), "deferme"],
            "Subject: d\n\nbody\n",
        );
    }
    let ids: Vec<String> = (1..=4)
        .map(|n| id_of_sender(&inst, &format!("d{n}@test.example")))
        .collect();
    for id in &ids {
        wait_deferred(&inst, id, 1);
    }
    let (d1, d2, d3, d4) = (&ids[0], &ids[1], &ids[2], &ids[3]);

    // Two IDs in one command: a line for each, one summary.
    postsuper(
        &inst,
        &["-h", d1, "-h", d2],
        b"",
        0,
        &format!("postsuper: {d1}: placed on hold\npostsuper: {d2}: placed on hold\npostsuper: Placed on hold: 2 messages\n"),
    );
    assert_eq!(inst.queue_ids("hold"), sorted(vec![d1.clone(), d2.clone()]));

    // ALL restricted to one queue: only the summary, and only that queue is touched.
    postsuper(
        &inst,
        &["-d", "ALL", "deferred"],
        b"",
        0,
        "postsuper: Deleted: 2 messages\n",
    );
    assert!(everywhere(&inst, d3).is_empty() && everywhere(&inst, d4).is_empty());
    assert_eq!(inst.queue_ids("hold"), sorted(vec![d1.clone(), d2.clone()]));
    postsuper(
        &inst,
        &["-h", "ALL", "deferred"],
        b"",
        0,
        "postsuper: Placed on hold: 0 messages\n",
    );

    // Release everything on hold: both are tried again at once (and defer again).
    postsuper(
        &inst,
        &["-H", "ALL"],
        b"",
        0,
        "postsuper: Released from hold: 2 messages\n",
    );
    wait_deferred(&inst, d1, 2);
    wait_deferred(&inst, d2, 2);
    postsuper(
        &inst,
        &["-H", "ALL"],
        b"",
        0,
        "postsuper: Released from hold: 0 messages\n",
    );

    // Requeue everything: both go through pickup again (and defer again).
    postsuper(
        &inst,
        &["-r", "ALL"],
        b"",
        0,
        "postsuper: Requeued: 2 messages\n",
    );
    inst.wait_log(&["from=<d1@test.example>", " uid="], 2);
    inst.wait_log(&["from=<d2@test.example>", " uid="], 2);
    inst.wait_until("both requeued messages deferred again", || {
        // 4 first tries, 2 after the release, 2 after the requeue.
        let n = inst
            .log_lines(&["to=<deferme@test.example>", "status=deferred"])
            .len();
        (n >= 8 && inst.queue_ids("deferred").len() == 2).then_some(())
    });

    // IDs on standard input, as in postsuper(1): postqueue -j | ... | postsuper -d -
    let out = inst.run("postqueue", &["-j"], b"");
    assert!(out.status.success());
    let listed: Vec<String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|l| {
            json::parse(l)
                .expect("JSON line")
                .get("queue_id")
                .as_str()
                .to_string()
        })
        .collect();
    assert_eq!(listed.len(), 2, "{listed:?}");
    let stdin = format!("{}\n{}\n", listed[0], listed[1]);
    postsuper(
        &inst,
        &["-d", "-"],
        stdin.as_bytes(),
        0,
        &format!(
            "postsuper: {}: removed\npostsuper: {}: removed\npostsuper: Deleted: 2 messages\n",
            listed[0], listed[1]
        ),
    );
    inst.wait_queue_empty();
    assert_eq!(
        String::from_utf8_lossy(&inst.run("mailq", &[], b"").stdout),
        "Mail queue is empty\n"
    );
    postsuper(
        &inst,
        &["-d", "ALL"],
        b"",
        0,
        "postsuper: Deleted: 0 messages\n",
    );
}

#[test]
fn bad_ids_and_queue_names() {
    let inst = instance().start();
    postsuper(
        &inst,
        &["-d", "bad/id"],
        b"",
        0,
        "postsuper: warning: invalid mail queue id: bad/id\npostsuper: Deleted: 0 messages\n",
    );
    postsuper(
        &inst,
        &["-d", "0000000000A"],
        b"",
        0,
        "postsuper: Deleted: 0 messages\n",
    );
    postsuper(
        &inst,
        &["-h", "4jZT2B5ggzz1SSGp"],
        b"",
        0,
        "postsuper: Placed on hold: 0 messages\n",
    );
    postsuper(
        &inst,
        &["-d", "ALL", "nosuchqueue"],
        b"",
        1,
        "postsuper: fatal: invalid directory name: nosuchqueue\n",
    );
}
