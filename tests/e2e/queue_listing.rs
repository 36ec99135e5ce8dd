//! Seeing the queue as Postfix shows it: `mailq` / `postqueue -p` / `sendmail -bp` print
//! showq's sendmail-style layout (header, ID with `*` active / `!` on hold, size, arrival time,
//! sender or MAILER-DAEMON, each deferral reason right-aligned to column 78 and printed once per
//! run of recipients sharing it, a longer reason from column 0, recipients indented 47,
//! `-- N Kbytes in M Requests.`), "Mail queue is empty" when it is; `postqueue -j` prints one
//! JSON object per message with Postfix's member names in Postfix's order; and the retry
//! commands work: `postqueue -i ID` delivers that one deferred message now, `postqueue -f` and
//! `sendmail -q` retry every deferred message now, long before its backoff ends.
//!
//! Compared with /tmp/postfix-reference/mailq_long_mixed.out and postqueue_j_long_mixed.out
//! (Postfix 3.7 with long queue IDs). Deferrals come from alias commands exiting 75, and the
//! backoff is an hour so that deferred mail stays put while it is listed.

use std::collections::BTreeMap;

use crate::common::*;
use testkit::json::{self, Value};

const HEADER: &str = "----Queue ID----- --Size-- ---Arrival Time---- --Sender/Recipient------";

/// An instance with `aliases`, whose deferred mail is not retried for an hour.
fn listing_instance(aliases: &str) -> Instance {
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

/// The queue ID of the message whose pickup logged `from=<sender>`.
fn id_of_sender(inst: &Instance, sender: &str) -> String {
    let line = inst
        .wait_log(&[" uid=", &format!(" from=<{sender}>")], 1)
        .remove(0);
    let rest = &line[line.find("]: ").expect("program tag") + 3..];
    rest[..rest.find(':').expect("queue ID")].to_string()
}

fn wait_attempts(inst: &Instance, id: &str, status: &str, n: usize) {
    inst.wait_log(&[&format!("{id}: to=<"), &format!("status={status}")], n);
}

fn stdout_of(inst: &Instance, cmd: &str, args: &[&str]) -> String {
    let mut c = inst.command(cmd, args);
    c.env("TZ", "UTC");
    let out = testkit::run_with_input(c, b"");
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("listing is UTF-8")
}

/// `postqueue -j`, each line parsed.
fn json_entries(inst: &Instance) -> Vec<Value> {
    let text = stdout_of(inst, "postqueue", &["-j"]);
    text.lines()
        .map(|l| {
            assert!(
                l.starts_with("{\"queue_name\": \""),
                "Postfix's separators and member order: {l}"
            );
            json::parse(l).unwrap_or_else(|e| panic!("postqueue -j line is not JSON ({e}): {l}"))
        })
        .collect()
}

fn utc_asctime(epoch: f64) -> String {
    jiff::Timestamp::from_second(epoch as i64)
        .expect("arrival time")
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .strftime("%a %b %e %H:%M:%S")
        .to_string()
}

/// (address, delay_reason) of each recipient, in listing order.
fn recipients(e: &Value) -> Vec<(String, Option<String>)> {
    e.get("recipients")
        .as_array()
        .iter()
        .map(|r| {
            let keys = r.keys();
            assert!(
                keys == ["address"] || keys == ["address", "delay_reason"],
                "recipient members: {keys:?}"
            );
            let reason = r
                .has("delay_reason")
                .then(|| r.get("delay_reason").as_str().to_string());
            (r.get("address").as_str().to_string(), reason)
        })
        .collect()
}

/// The block Postfix's showq_compat prints for one message (long queue IDs).
fn expected_block(e: &Value) -> String {
    let status = match e.get("queue_name").as_str() {
        "active" => "*",
        "hold" => "!",
        _ => "",
    };
    let mut out = format!(
        "{:<17} {:>8} {:.19} {}\n",
        format!("{}{status}", e.get("queue_id").as_str()),
        e.get("message_size").as_f64() as u64,
        utc_asctime(e.get("arrival_time").as_f64()),
        e.get("sender").as_str()
    );
    let mut last: Option<String> = None;
    for (addr, reason) in recipients(e) {
        if let Some(r) = &reason {
            if last.as_ref() != Some(r) {
                out.push_str(&format!(
                    "{:>width$}({r})\n",
                    "",
                    width = 76usize.saturating_sub(r.len())
                ));
            }
        }
        last = reason;
        out.push_str(&format!("{:47}{addr}\n", ""));
    }
    out
}

#[test]
fn empty_queue_listings() {
    let inst = instance().start();
    for (cmd, args) in [
        ("mailq", vec![]),
        ("postqueue", vec!["-p"]),
        ("sendmail", vec!["-bp"]),
    ] {
        let out = inst.run(cmd, &args, b"");
        assert!(out.status.success(), "{cmd} {args:?}");
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "Mail queue is empty\n",
            "{cmd} {args:?}"
        );
        assert!(
            !String::from_utf8_lossy(&out.stderr).contains("Mail system is down"),
            "the daemon runs: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let out = inst.run("postqueue", &["-j"], b"");
    assert!(out.status.success());
    assert!(
        out.stdout.is_empty(),
        "postqueue -j prints nothing for an empty queue"
    );
}

#[test]
fn mailq_and_postqueue_j_show_every_state_in_postfix_layout() {
    let long = "this is a very long temporary failure explanation that goes on and on well past the seventy-eight column limit of mailq";
    let probe = tempfile::Builder::new()
        .prefix("postern-release-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(
        probe.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let release = probe.path().join("release");
    let inst = listing_instance(&format!(
        "postmaster: root\n\
         deferme: \"|/bin/sh -c 'exit 75'\"\n\
         deferme-too: \"|/bin/sh -c 'exit 75'\"\n\
         deferme2: \"|/bin/sh -c 'echo temp problem here; exit 75'\"\n\
         deferme3: \"|/bin/sh -c 'echo {long}; exit 75'\"\n\
         slowme: \"|/bin/sh -c 'while test ! -e {}; do sleep 0.05; done'\"\n",
        release.display()
    ));
    inst.send(
        &["-f", "m1@test.example", "deferme2", "deferme"],
        "Subject: two reasons\n\nbody\n",
    );
    inst.send(
        &["-f", "m2@test.example", "deferme", "deferme-too"],
        "Subject: one reason\n\nbody\n",
    );
    inst.send(&["-f", "<>", "deferme"], "Subject: null sender\n\nbody\n");
    inst.send(
        &["-f", "m4@test.example", "deferme3"],
        "Subject: long reason\n\nbody\n",
    );
    inst.send(
        &["-f", "m5@test.example", "slowme"],
        "Subject: still being delivered\n\nbody\n",
    );
    inst.send(
        &["-f", "m6@test.example", "deferme"],
        "Subject: held\n\nbody\n",
    );
    let m1 = id_of_sender(&inst, "m1@test.example");
    let m2 = id_of_sender(&inst, "m2@test.example");
    let m3 = id_of_sender(&inst, "");
    let m4 = id_of_sender(&inst, "m4@test.example");
    let m5 = id_of_sender(&inst, "m5@test.example");
    let m6 = id_of_sender(&inst, "m6@test.example");
    for (id, n) in [(&m1, 2), (&m2, 2), (&m3, 1), (&m4, 1), (&m6, 1)] {
        wait_attempts(&inst, id, "deferred", n);
    }
    inst.wait_until("m6 in deferred/", || {
        inst.queue_ids("deferred").contains(&m6).then_some(())
    });
    let out = inst.run("postsuper", &["-h", &m6], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.wait_until("every message in its queue", || {
        let d = inst.queue_ids("deferred");
        let ok = [&m1, &m2, &m3, &m4].iter().all(|id| d.contains(id))
            && inst.queue_ids("hold") == vec![m6.clone()]
            && inst.queue_ids("active") == vec![m5.clone()];
        ok.then_some(())
    });

    // postqueue -j: Postfix's members, in Postfix's order, with what we expect in them.
    let entries = json_entries(&inst);
    assert_eq!(entries.len(), 6, "{entries:?}");
    let by_id: BTreeMap<String, &Value> = entries
        .iter()
        .map(|e| (e.get("queue_id").as_str().to_string(), e))
        .collect();
    for e in &entries {
        assert_eq!(
            e.keys(),
            [
                "queue_name",
                "queue_id",
                "arrival_time",
                "message_size",
                "forced_expire",
                "sender",
                "recipients"
            ]
        );
        assert_eq!(e.get("forced_expire").as_bool(), Some(false));
        assert!(e.get("message_size").as_f64() > 100.0);
        let age = jiff::Timestamp::now().as_second() as f64 - e.get("arrival_time").as_f64();
        assert!(
            (0.0..600.0).contains(&age),
            "arrival_time is the submission time: {e:?}"
        );
    }
    let rcpts = |id: &str| -> BTreeMap<String, Option<String>> {
        recipients(by_id[id]).into_iter().collect()
    };
    let tf = Some("temporary failure".to_string());
    assert_eq!(by_id[&m1].get("queue_name").as_str(), "deferred");
    assert_eq!(
        rcpts(&m1),
        BTreeMap::from([
            ("deferme@test.example".to_string(), tf.clone()),
            (
                "deferme2@test.example".to_string(),
                Some("temporary failure. Command output: temp problem here".to_string())
            ),
        ])
    );
    assert_eq!(
        rcpts(&m2),
        BTreeMap::from([
            ("deferme@test.example".to_string(), tf.clone()),
            ("deferme-too@test.example".to_string(), tf.clone())
        ])
    );
    assert_eq!(by_id[&m3].get("sender").as_str(), "MAILER-DAEMON");
    assert_eq!(
        rcpts(&m4)["deferme3@test.example"].as_deref(),
        Some(format!("temporary failure. Command output: {long}").as_str())
    );
    assert_eq!(by_id[&m5].get("queue_name").as_str(), "active");
    assert_eq!(
        rcpts(&m5),
        BTreeMap::from([("slowme@test.example".to_string(), None)])
    );
    assert_eq!(by_id[&m6].get("queue_name").as_str(), "hold");
    assert_eq!(
        rcpts(&m6),
        BTreeMap::from([("deferme@test.example".to_string(), tf.clone())])
    );

    // mailq: byte for byte what Postfix prints for the same queue (message order aside).
    let text = stdout_of(&inst, "mailq", &[]);
    assert_eq!(stdout_of(&inst, "postqueue", &["-p"]), text);
    assert_eq!(stdout_of(&inst, "sendmail", &["-bp"]), text);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], HEADER);
    let total: u64 = entries
        .iter()
        .map(|e| e.get("message_size").as_f64() as u64)
        .sum();
    assert_eq!(
        *lines.last().unwrap(),
        format!("-- {} Kbytes in 6 Requests.", total / 1024)
    );
    let body = &text[HEADER.len() + 1..text.rfind("-- ").unwrap()];
    let blocks: Vec<&str> = body.split_terminator("\n\n").collect();
    assert_eq!(
        blocks.len(),
        6,
        "one block per message, each followed by a blank line:\n{text}"
    );
    for block in blocks {
        let id = block[..16].trim_end_matches(['*', '!']).to_string();
        let e = by_id
            .get(&id)
            .unwrap_or_else(|| panic!("unknown message in mailq: {block}"));
        assert_eq!(
            format!("{block}\n"),
            expected_block(e),
            "layout of {id}:\n{text}"
        );
    }
    // Spot checks against the reference capture's exact lines.
    assert!(text.contains(&format!("{m5}*      ")), "{text}");
    assert!(text.contains(&format!("{m6}!      ")), "{text}");
    assert!(text.contains(
        "\n                        (temporary failure. Command output: temp problem here)\n"
    ));
    assert!(text.contains(
        "\n                                                           (temporary failure)\n"
    ));
    assert!(text.contains(&format!("\n(temporary failure. Command output: {long})\n")));
    assert!(
        text.contains("\n                                               deferme2@test.example\n")
    );
    let m2_block = text.split("\n\n").find(|b| b.contains(&m2)).unwrap();
    assert_eq!(
        m2_block.matches("(temporary failure)").count(),
        1,
        "a shared reason is printed once:\n{m2_block}"
    );

    std::fs::write(&release, b"").expect("release slowme");
    wait_attempts(&inst, &m5, "sent", 1);
}

#[test]
fn postqueue_i_f_and_sendmail_q_retry_deferred_mail_now() {
    let flags = tempfile::Builder::new()
        .prefix("postern-flags-")
        .tempdir()
        .expect("tempdir");
    std::fs::set_permissions(
        flags.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .expect("chmod");
    let f = |n: u32| flags.path().join(format!("ok{n}"));
    let inst = listing_instance(&format!(
        "postmaster: root\n\
         flaky1: \"|/bin/sh -c 'test -e {} || exit 75'\"\n\
         flaky2: \"|/bin/sh -c 'test -e {} || exit 75'\"\n\
         flaky3: \"|/bin/sh -c 'test -e {} || exit 75'\"\n",
        f(1).display(),
        f(2).display(),
        f(3).display()
    ));
    inst.send(&["-f", "a@test.example", "flaky1"], "Subject: a\n\nbody\n");
    inst.send(&["-f", "b@test.example", "flaky2"], "Subject: b\n\nbody\n");
    inst.send(&["-f", "c@test.example", "flaky3"], "Subject: c\n\nbody\n");
    let (a, b, c) = (
        id_of_sender(&inst, "a@test.example"),
        id_of_sender(&inst, "b@test.example"),
        id_of_sender(&inst, "c@test.example"),
    );
    for id in [&a, &b, &c] {
        wait_attempts(&inst, id, "deferred", 1);
    }
    inst.wait_until("three deferred messages", || {
        (inst.queue_ids("deferred").len() == 3).then_some(())
    });
    std::fs::write(f(1), b"").unwrap();
    std::fs::write(f(2), b"").unwrap();

    // postqueue -i: only that message is tried again, an hour before its time.
    let out = inst.run("postqueue", &["-i", &a], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_attempts(&inst, &a, "sent", 1);
    inst.wait_log(&[&format!("{a}: removed")], 1);
    assert_eq!(
        inst.log_lines(&[&format!("{b}: to=<")]).len(),
        1,
        "b was not retried"
    );
    assert_eq!(
        inst.log_lines(&[&format!("{c}: to=<")]).len(),
        1,
        "c was not retried"
    );
    assert_eq!(inst.queue_ids("deferred"), {
        let mut v = vec![b.clone(), c.clone()];
        v.sort();
        v
    });

    // postqueue -f: everything is tried again; b now succeeds, c defers once more.
    let out = inst.run("postqueue", &["-f"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_attempts(&inst, &b, "sent", 1);
    inst.wait_log(&[&format!("{c}: to=<"), "status=deferred"], 2);

    // sendmail -q: the same, the Sendmail way.
    std::fs::write(f(3), b"").unwrap();
    let out = inst.run("sendmail", &["-q"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    wait_attempts(&inst, &c, "sent", 1);
    inst.wait_queue_empty();
    assert_eq!(stdout_of(&inst, "mailq", &[]), "Mail queue is empty\n");
}
