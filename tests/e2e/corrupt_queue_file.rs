//! A queue file that cannot be read as one — edited by hand into nonsense, truncated, or
//! garbage dropped into `maildrop/` — is moved to `corrupt/` with a log line (Postfix's
//! `warning: saving corrupt file "ID" from queue "active" to queue "corrupt"`), and the daemon
//! keeps running and delivering other mail.

use std::os::unix::fs::PermissionsExt;

use crate::common::*;

/// An alias that always defers, with an hour's backoff: its mail waits in deferred/.
const WAIT_ALIAS: &str = "postmaster: root\npt-wait: \"|/bin/sh -c 'exit 75'\"\n";

fn corrupt_ids(inst: &Instance) -> Vec<String> {
    inst.queue_ids("corrupt")
}

fn assert_daemon_alive_and_delivering(inst: &Instance, to: &User, token: &str) {
    let status = inst.run("postfix", &["status"], b"");
    assert!(status.status.success(), "the daemon is still running");
    inst.send(
        &["-f", "sender@test.example", &to.name],
        &format!("Subject: {token}\n\n{token}\n"),
    );
    inst.wait_until(&format!("{token} in the mailbox"), || {
        read_mbox(&inst.mailbox(&to.name))
            .iter()
            .any(|m| m.header("Subject") == Some(token))
            .then_some(())
    });
}

/// Where else a queue ID might be.
fn in_other_queues(inst: &Instance, id: &str) -> Vec<&'static str> {
    ["maildrop", "incoming", "active", "deferred", "hold"]
        .into_iter()
        .filter(|q| inst.queue_ids(q).iter().any(|x| x == id))
        .collect()
}

#[test]
fn nonsense_and_truncated_queue_files_go_to_corrupt_and_delivery_goes_on() {
    let alice = user("pt-alice");
    let inst = instance()
        .main_cf("minimal_backoff_time = 3600s")
        .main_cf("maximal_backoff_time = 3600s")
        .aliases(WAIT_ALIAS)
        .start();
    inst.send(
        &["-f", "sender@test.example", "pt-wait"],
        "Subject: one\n\nfirst\n",
    );
    inst.send(
        &["-f", "sender@test.example", "pt-wait"],
        "Subject: two\n\nsecond\n",
    );
    let lines = inst.wait_log(&["to=<pt-wait@test.example>", "status=deferred"], 2);
    let (nonsense, truncated) = (log_queue_id(&lines[0]), log_queue_id(&lines[1]));
    assert_ne!(nonsense, truncated);
    inst.wait_until("both messages in deferred/", || {
        let d = inst.queue_ids("deferred");
        (d.contains(&nonsense) && d.contains(&truncated)).then_some(())
    });

    // Edit one by hand into nonsense, cut the other short. Both now have a modification
    // (retry) time of now, so the next deferred scan takes them.
    let deferred = inst.spool().join("deferred");
    std::fs::write(
        deferred.join(&nonsense),
        "this is not a queue file\nat all\n",
    )
    .expect("overwrite");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(deferred.join(&truncated))
        .expect("open");
    let len = f.metadata().expect("stat").len();
    f.set_len(len / 2).expect("truncate");
    drop(f);

    for id in [&nonsense, &truncated] {
        let saved = inst.wait_log(
            &[&format!(
                "warning: saving corrupt file \"{id}\" from queue \"active\" to queue \"corrupt\""
            )],
            1,
        );
        assert!(saved[0].contains("postfix/qmgr["), "{}", saved[0]);
        // The line before says what is wrong with it.
        assert!(
            !inst.log_lines(&[&format!("warning: {id}: ")]).is_empty(),
            "{}",
            inst.log()
        );
    }
    inst.wait_until("both files in corrupt/", || {
        let c = corrupt_ids(&inst);
        (c.contains(&nonsense) && c.contains(&truncated)).then_some(())
    });
    for id in [&nonsense, &truncated] {
        assert!(
            in_other_queues(&inst, id).is_empty(),
            "{id} left in {:?}",
            in_other_queues(&inst, id)
        );
    }
    // The files are kept as they were, for inspection.
    assert_eq!(
        std::fs::read_to_string(inst.spool().join("corrupt").join(&nonsense)).expect("read"),
        "this is not a queue file\nat all\n"
    );
    assert_eq!(
        std::fs::metadata(inst.spool().join("corrupt").join(&truncated))
            .expect("stat")
            .len(),
        len / 2
    );
    // Nothing was delivered or bounced from them.
    for id in [&nonsense, &truncated] {
        assert!(inst
            .log_lines(&[&format!("{id}: to="), "status=sent"])
            .is_empty());
        assert!(inst
            .log_lines(&[&format!("{id}: "), "notification"])
            .is_empty());
    }

    assert_daemon_alive_and_delivering(&inst, &alice, "after-corrupt-queue-files");
    // mailq does not trip over the corrupt queue either.
    let out = inst.run("postqueue", &["-p"], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn garbage_and_truncated_files_in_maildrop_go_to_corrupt() {
    let alice = user("pt-alice");
    let mut inst = instance().start();
    // A queue ID that is free again: the first message's, once delivered and removed.
    inst.send(
        &["-f", "sender@test.example", &alice.name],
        "Subject: first\n\nfirst\n",
    );
    let free_id = log_queue_id(&inst.wait_log(&[": removed"], 1)[0]);
    inst.stop();

    // With the daemon down: one good and one soon-truncated submission wait in maildrop/ ...
    inst.send(
        &["-f", "sender@test.example", &alice.name],
        "Subject: good one\n\ngood\n",
    );
    let before = inst.queue_ids("maildrop");
    inst.send(
        &["-f", "sender@test.example", &alice.name],
        "Subject: cut short\n\ncut\n",
    );
    let cut: Vec<String> = inst
        .queue_ids("maildrop")
        .into_iter()
        .filter(|i| !before.contains(i))
        .collect();
    assert_eq!(cut.len(), 1);
    let cut = cut[0].clone();
    let maildrop = inst.spool().join("maildrop");
    let f = std::fs::OpenOptions::new()
        .write(true)
        .open(maildrop.join(&cut))
        .expect("open");
    let len = f.metadata().expect("stat").len();
    f.set_len(len - 10).expect("truncate");
    drop(f);
    // ... and a file of garbage, as any local user could drop there.
    let garbage = maildrop.join(&free_id);
    std::fs::write(&garbage, b"\x00\x01garbage, not a queue file\xff\n").expect("write garbage");
    std::fs::set_permissions(&garbage, std::fs::Permissions::from_mode(0o640)).expect("chmod");

    inst.start();
    for id in [&cut, &free_id] {
        inst.wait_log(
            &[&format!(
                "saving corrupt file \"{id}\" from queue \"maildrop\" to queue \"corrupt\""
            )],
            1,
        );
    }
    inst.wait_until("both files in corrupt/", || {
        let c = corrupt_ids(&inst);
        (c.contains(&cut) && c.contains(&free_id)).then_some(())
    });
    // The good submission is delivered; the others never reach the queue proper.
    inst.wait_until("the good message in the mailbox", || {
        read_mbox(&inst.mailbox(&alice.name))
            .iter()
            .any(|m| m.header("Subject") == Some("good one"))
            .then_some(())
    });
    for id in [&cut, &free_id] {
        assert!(
            in_other_queues(&inst, id).is_empty(),
            "{id} left in {:?}",
            in_other_queues(&inst, id)
        );
    }
    assert!(
        inst.log_lines(&[&format!("{cut}: from=<")]).is_empty(),
        "{cut} was never queued"
    );
    // free_id was queued once, by the first (real) message only.
    assert_eq!(inst.log_lines(&[&format!("{free_id}: from=<")]).len(), 1);
    assert!(!read_mbox(&inst.mailbox(&alice.name))
        .iter()
        .any(|m| m.header("Subject") == Some("cut short")));
    assert_daemon_alive_and_delivering(&inst, &alice, "after-maildrop-garbage");
}
