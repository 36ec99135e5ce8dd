//! A temporary failure is retried, as Postfix's qmgr does: an alias command that exits 75
//! (EX_TEMPFAIL) defers the recipient with `dsn=4.3.0, status=deferred (temporary failure.
//! Command output: ...)`, `mailq` shows the message with that reason, the next attempt waits
//! for the backoff time (the deferred file's modification time is its retry time), and a later
//! attempt that succeeds delivers the message once and removes it. `postqueue -f` and
//! `sendmail -q` retry deferred mail at once instead of waiting for the backoff.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::common::*;

/// A delivery script that fails with 75 until its `succeed_on`-th run, then appends the
/// message to `delivered`. Its state lives in a directory every uid can write (the command
/// runs as `default_privs` when the daemon runs as root).
fn flaky_command(root: &Path, succeed_on: u32) -> (PathBuf, PathBuf) {
    let state = root.join("state");
    std::fs::create_dir_all(&state).expect("mkdir state");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o777)).expect("chmod state");
    let script = root.join("flaky.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\n\
             n=$(cat {s}/count 2>/dev/null || echo 0)\n\
             n=$((n + 1))\n\
             echo $n > {s}/count\n\
             if [ $n -lt {succeed_on} ]; then echo \"try again later, attempt $n\"; exit 75; fi\n\
             cat >> {s}/delivered\n",
            s = state.display()
        ),
    )
    .expect("write script");
    std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755))
        .expect("chmod script");
    (script, state.join("delivered"))
}

fn deferred_line(n: u32) -> String {
    format!("dsn=4.3.0, status=deferred (temporary failure. Command output: try again later, attempt {n} )")
}

#[test]
fn temporary_failure_is_deferred_then_retried_after_backoff_and_delivered() {
    let backoff = Duration::from_secs(3);
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (script, delivered) = flaky_command(dir.path(), 3);
    let inst = instance()
        .main_cf("minimal_backoff_time = 3s")
        .main_cf("maximal_backoff_time = 3s")
        .main_cf("queue_run_delay = 1s")
        .aliases(&format!(
            "postmaster: root\npt-flaky: \"|{}\"\n",
            script.display()
        ))
        .start();
    inst.send(
        &["-f", "sender@test.example", "pt-flaky"],
        "Subject: retry me\n\nretry-token-4411\n",
    );

    // First attempt: deferred with the command's output as the reason.
    let first = inst.wait_log(&[&deferred_line(1)], 1);
    let t_first = Instant::now();
    let seen_at = SystemTime::now();
    let line = &first[0];
    assert!(
        line.contains("postfix/local[")
            && line.contains("to=<pt-flaky@test.example>, orig_to=<pt-flaky>, relay=local"),
        "{line}"
    );
    let id = log_queue_id(line);

    // It waits in deferred/ with its retry time as the file's modification time.
    inst.wait_until("the message to reach deferred/", || {
        inst.queue_ids("deferred").contains(&id).then_some(())
    });
    let meta = std::fs::metadata(inst.spool().join("deferred").join(&id)).expect("deferred file");
    let retry_at = meta.modified().expect("mtime");
    // Set when the attempt finished, just before we saw its log line: about the backoff
    // after that moment (a file without a retry time would have an mtime of "now").
    let ahead = retry_at.duration_since(seen_at).unwrap_or_default();
    assert!(
        ahead + Duration::from_secs(2) > backoff && ahead <= backoff + Duration::from_secs(1),
        "retry time should be about {backoff:?} after the deferral, is {ahead:?}"
    );

    // mailq shows the message and why it waits.
    let out = inst.run("postqueue", &["-p"], b"");
    assert!(out.status.success());
    let q = String::from_utf8_lossy(&out.stdout);
    let entry = q
        .lines()
        .find(|l| l.starts_with(&id))
        .unwrap_or_else(|| panic!("{id} not in mailq:\n{q}"));
    assert!(
        !entry[..id.len() + 1].ends_with('*') && !entry[..id.len() + 1].ends_with('!'),
        "deferred, not active: {entry}"
    );
    assert!(entry.ends_with(" sender@test.example"), "{entry}");
    let reason = "(temporary failure. Command output: try again later, attempt 1)";
    let reason_line = q
        .lines()
        .find(|l| l.trim_start().starts_with("(temporary failure"))
        .unwrap_or_else(|| panic!("no reason in mailq:\n{q}"));
    assert_eq!(reason_line.trim_start(), reason, "{q}");
    assert_eq!(
        reason_line.len(),
        78.max(reason.len()),
        "the reason is right-aligned to column 78: {q}"
    );
    assert!(
        q.lines().any(|l| l.trim() == "pt-flaky@test.example"),
        "{q}"
    );

    // Second attempt only after the backoff; third attempt succeeds.
    inst.wait_log(&[&deferred_line(2)], 1);
    let waited = t_first.elapsed();
    assert!(
        waited + Duration::from_millis(1500) >= backoff,
        "retried after {waited:?}, before the {backoff:?} backoff"
    );
    let sent = inst.wait_log(
        &[
            &format!("{id}: to=<pt-flaky@test.example>"),
            "dsn=2.0.0, status=sent (delivered to command: ",
        ],
        1,
    );
    inst.wait_log(&[&format!("{id}: removed")], 1);

    // The log tells the story in order: deferred, deferred, sent, removed.
    let story: Vec<&str> = inst
        .log()
        .lines()
        .filter(|l| l.contains(&format!("{id}: to=")) || l.contains(&format!("{id}: removed")))
        .map(|l| {
            if l.contains("status=deferred") {
                "deferred"
            } else if l.contains("status=sent") {
                "sent"
            } else if l.contains(": removed") {
                "removed"
            } else {
                "other"
            }
        })
        .collect();
    assert_eq!(
        story,
        ["deferred", "deferred", "sent", "removed"],
        "{}",
        inst.log()
    );
    assert!(sent[0].contains("orig_to=<pt-flaky>"), "{}", sent[0]);

    // Delivered exactly once, and nothing is left in the queue.
    let got = std::fs::read_to_string(&delivered).expect("delivered file");
    assert_eq!(got.matches("retry-token-4411").count(), 1, "{got}");
    inst.wait_queue_empty();
}

#[test]
fn flush_retries_deferred_mail_at_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let (script, delivered) = flaky_command(dir.path(), 3);
    // An hour's backoff: without a flush nothing would be retried during this test.
    let inst = instance()
        .main_cf("minimal_backoff_time = 3600s")
        .main_cf("maximal_backoff_time = 3600s")
        .main_cf("queue_run_delay = 1s")
        .aliases(&format!(
            "postmaster: root\npt-flaky: \"|{}\"\n",
            script.display()
        ))
        .start();
    inst.send(
        &["-f", "sender@test.example", "pt-flaky"],
        "Subject: flush me\n\nflush-token-9120\n",
    );
    let first = inst.wait_log(&[&deferred_line(1)], 1);
    let id = log_queue_id(&first[0]);
    inst.wait_until("the message to reach deferred/", || {
        inst.queue_ids("deferred").contains(&id).then_some(())
    });
    let retry_at = std::fs::metadata(inst.spool().join("deferred").join(&id))
        .and_then(|m| m.modified())
        .expect("deferred file mtime");
    assert!(
        retry_at > SystemTime::now() + Duration::from_secs(3000),
        "the next regular retry is an hour away"
    );

    // postqueue -f: retried now (and deferred again by the script).
    let t = Instant::now();
    let out = inst.run("postqueue", &["-f"], b"");
    assert!(
        out.status.success(),
        "postqueue -f: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stdout.is_empty(),
        "postqueue -f prints nothing: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    inst.wait_log(&[&deferred_line(2)], 1);
    assert!(
        t.elapsed() < Duration::from_secs(20),
        "flush took {:?}",
        t.elapsed()
    );

    // sendmail -q does the same: this time the script succeeds.
    inst.wait_until("the message to be deferred again", || {
        inst.queue_ids("deferred").contains(&id).then_some(())
    });
    let out = inst.run("sendmail", &["-q"], b"");
    assert!(
        out.status.success(),
        "sendmail -q: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.wait_log(
        &[
            &format!("{id}: to=<pt-flaky@test.example>"),
            "status=sent (delivered to command: ",
        ],
        1,
    );
    inst.wait_log(&[&format!("{id}: removed")], 1);
    let got = std::fs::read_to_string(&delivered).expect("delivered file");
    assert_eq!(got.matches("flush-token-9120").count(), 1, "{got}");
    inst.wait_queue_empty();
}
