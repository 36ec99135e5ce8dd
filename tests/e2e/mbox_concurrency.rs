//! Deliveries into one mbox never interleave, as local(8)'s locking guarantees: many messages
//! delivered at once through several recipients that share a mailbox all read back intact
//! with Python's `mailbox.mbox`; another program holding the mailbox's dotlock or its `fcntl`
//! lock for a while keeps Postern out until it lets go (its own message stays contiguous and
//! everything submitted meanwhile lands after it). `mailbox_size_limit` bounces a message that
//! would make the mbox too large with `dsn=5.2.2` and leaves the mbox byte for byte unchanged.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

use crate::common::*;

/// A body with lines that need care in an mbox: `From ` at a line start, a `>From` line, a
/// lone dot, and enough lines that a torn or interleaved write would show.
fn body(token: &str) -> String {
    let mut b = String::new();
    for i in 0..30 {
        b.push_str(&format!("{token} line {i}\n"));
    }
    b.push_str(&format!(
        "From the middle of {token}\n>From quoted already\n.\nend of {token}\n"
    ));
    b
}

/// What an mbox reader sees of `body`: Postern quotes `From ` lines.
fn stored_body(token: &str) -> String {
    body(token).replace("\nFrom the middle", "\n>From the middle")
}

#[test]
fn concurrent_deliveries_to_one_mbox_never_interleave() {
    let alice = user("pt-alice");
    // Four recipients, one mailbox: separate destinations for qmgr, so they are delivered
    // concurrently (local_destination_concurrency_limit per recipient).
    let aliases: String = (1..=4)
        .map(|i| format!("pt-box{i}: {}\n", alice.name))
        .collect();
    let inst = instance()
        .main_cf("local_destination_concurrency_limit = 4")
        .aliases(&format!("postmaster: root\n{aliases}"))
        .start();
    const PER: usize = 30;
    let (bin, config) = (inst.bin().to_path_buf(), inst.config_dir());
    std::thread::scope(|scope| {
        for i in 1..=4 {
            let (bin, config) = (&bin, &config);
            scope.spawn(move || {
                for n in 0..PER {
                    let token = format!("box{i}-msg{n}");
                    let mut cmd = Command::new(bin);
                    cmd.args([
                        "sendmail",
                        "-i",
                        "-f",
                        "sender@test.example",
                        &format!("pt-box{i}"),
                    ])
                    .env("MAIL_CONFIG", config);
                    let out = testkit::run_with_input(
                        cmd,
                        format!("Subject: {token}\n\n{}", body(&token)).as_bytes(),
                    );
                    assert!(
                        out.status.success(),
                        "sendmail: {}",
                        String::from_utf8_lossy(&out.stderr)
                    );
                }
            });
        }
    });
    inst.wait_log(&["status=sent (delivered to mailbox)"], 4 * PER);
    inst.wait_queue_empty();

    let msgs = read_mbox(&inst.mailbox(&alice.name));
    assert_eq!(
        msgs.len(),
        4 * PER,
        "every message is a separate, whole mbox entry"
    );
    let mut seen = std::collections::HashSet::new();
    for m in &msgs {
        let token = m.header("Subject").expect("Subject").to_string();
        assert!(seen.insert(token.clone()), "{token} twice");
        assert_eq!(m.body, stored_body(&token), "{token} intact");
        assert!(
            m.from_line.starts_with("sender@test.example "),
            "{}",
            m.from_line
        );
        let box_name = token.split('-').next().unwrap();
        assert_eq!(
            m.header("X-Original-To"),
            Some(format!("pt-{box_name}").as_str()),
            "{token}"
        );
    }
}

/// Another mail program: takes the mailbox lock (`dotlock` or `fcntl`), says so, holds it for
/// `hold` seconds, appends its own message in small pieces, and lets go.
const EXTERNAL_WRITER: &str = r#"
import fcntl, os, sys, time
path, mode, hold = sys.argv[1], sys.argv[2], float(sys.argv[3])
f = open(path, "ab")
if mode == "fcntl":
    fcntl.lockf(f, fcntl.LOCK_EX)
else:
    os.close(os.open(path + ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
print("LOCKED", flush=True)
time.sleep(hold)
lines = [b"From external@test.example  Thu Jan  1 00:00:00 2026\n", b"Subject: external writer\n", b"\n"]
lines += [b"external line %d\n" % i for i in range(20)]
lines += [b"\n"]
for line in lines:
    f.write(line)
    f.flush()
    time.sleep(0.02)
if mode == "fcntl":
    fcntl.lockf(f, fcntl.LOCK_UN)
else:
    os.unlink(path + ".lock")
f.close()
print("DONE", flush=True)
"#;

fn external_writer_holds_the_lock(mode: &str) {
    let alice = user("pt-alice");
    let inst = instance().start();
    // The mbox exists (made by Postern, with its owner and mode) before the other program
    // opens it.
    inst.send(
        &["-f", "sender@test.example", &alice.name],
        "Subject: first\n\nfirst\n",
    );
    inst.wait_log(&["status=sent (delivered to mailbox)"], 1);
    let mbox = inst.mailbox(&alice.name);

    let mut writer = Command::new("python3")
        .args(["-c", EXTERNAL_WRITER])
        .arg(&mbox)
        .args([mode, "2"])
        .stdout(Stdio::piped())
        .spawn()
        .expect("run python3");
    let mut out = BufReader::new(writer.stdout.take().expect("stdout"));
    let mut line = String::new();
    out.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "LOCKED", "the writer took the {mode} lock");

    // Submitted while the lock is held: these must wait for it.
    const N: usize = 5;
    for n in 0..N {
        let token = format!("during-{mode}-{n}");
        inst.send(
            &["-i", "-f", "sender@test.example", &alice.name],
            &format!("Subject: {token}\n\n{}", body(&token)),
        );
    }
    line.clear();
    out.read_line(&mut line).expect("read");
    assert_eq!(line.trim(), "DONE");
    assert!(writer.wait().expect("wait").success());
    inst.wait_log(&["status=sent (delivered to mailbox)"], 1 + N);
    inst.wait_queue_empty();

    let msgs = read_mbox(&mbox);
    let subjects: Vec<&str> = msgs
        .iter()
        .map(|m| m.header("Subject").unwrap_or(""))
        .collect();
    assert_eq!(msgs.len(), 2 + N, "{subjects:?}");
    assert_eq!(subjects[0], "first");
    // Nothing got in while the other program held the lock: its message comes next, whole.
    assert_eq!(subjects[1], "external writer", "{subjects:?}");
    let expected: String = (0..20).map(|i| format!("external line {i}\n")).collect();
    assert_eq!(msgs[1].body, expected);
    for (i, m) in msgs[2..].iter().enumerate() {
        let token = m.header("Subject").unwrap_or("").to_string();
        assert!(
            token.starts_with(&format!("during-{mode}-")),
            "message {} is {token}",
            i + 2
        );
        assert_eq!(m.body, stored_body(&token), "{token} intact");
    }
    assert!(!mbox.with_extension("lock").exists() || mode == "fcntl");
}

#[test]
fn external_dotlock_holder_keeps_deliveries_out() {
    external_writer_holds_the_lock("dotlock");
}

#[test]
fn external_fcntl_lock_holder_keeps_deliveries_out() {
    external_writer_holds_the_lock("fcntl");
}

#[test]
fn mailbox_size_limit_bounces_with_5_2_2_and_leaves_the_mbox_unchanged() {
    let alice = user("pt-alice");
    // Postfix refuses a mailbox_size_limit below message_size_limit.
    let inst = instance()
        .main_cf("message_size_limit = 1500")
        .main_cf("mailbox_size_limit = 2000")
        .start();
    let filler = "x".repeat(70) + "\n";
    inst.send(
        &["-f", "sender@test.example", &alice.name],
        &format!("Subject: fits\n\n{}", filler.repeat(10)),
    );
    inst.wait_log(&["status=sent (delivered to mailbox)"], 1);
    let mbox = inst.mailbox(&alice.name);
    let before = std::fs::read(&mbox).expect("mbox");
    assert!(
        before.len() < 2000 && before.len() > 700,
        "{}",
        before.len()
    );

    // This one would take the mailbox past 2000 bytes.
    inst.send(
        &["-f", "sender@test.example", "-N", "never", &alice.name],
        &format!("Subject: too much\n\n{}", filler.repeat(15)),
    );
    let line = inst.wait_log(&["dsn=5.2.2, status=bounced"], 1);
    assert!(
        line[0].contains(&format!("to=<{}@test.example>", alice.name))
            && line[0].contains("cannot update mailbox")
            && line[0].contains("File too large"),
        "{}",
        line[0]
    );
    inst.wait_queue_empty();
    assert_eq!(
        std::fs::read(&mbox).expect("mbox"),
        before,
        "the mbox is unchanged"
    );
    assert!(!mbox.with_extension("lock").exists(), "no lock left behind");

    // A message that still fits is delivered after it.
    inst.send(
        &["-f", "sender@test.example", &alice.name],
        "Subject: small\n\nsmall\n",
    );
    inst.wait_log(&["status=sent (delivered to mailbox)"], 2);
    let msgs = read_mbox(&mbox);
    let subjects: Vec<&str> = msgs
        .iter()
        .map(|m| m.header("Subject").unwrap_or(""))
        .collect();
    assert_eq!(subjects, ["fits", "small"]);
}
