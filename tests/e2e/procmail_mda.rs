//! `mailbox_command` as local(8) runs it: the real procmail from Debian's package
//! (`mailbox_command = /usr/bin/procmail -a "$EXTENSION"`) with a real rc file that files by
//! subject into a folder named after the address extension; the environment a mailbox
//! command sees (SENDER RECIPIENT USER LOGNAME HOME SHELL EXTENSION DOMAIN LOCAL
//! ORIGINAL_RECIPIENT, and nothing from the daemon's own environment beyond
//! `export_environment`); the <sysexits.h> mapping (75 defers and a later successful run
//! delivers, 67 bounces with 5.1.1 "user unknown"); and `command_time_limit` killing a
//! command that hangs, with its children, and bouncing it 5.3.0 as Postfix does.
//!
//! As root the command runs as a dedicated account and procmail reads `~/.procmailrc`; as an
//! ordinary user it runs as that user and procmail is given the rc file on its command line,
//! so that the user's real `~/.procmailrc` is never touched.

use std::time::{Duration, Instant};

use crate::common::*;

/// Removes a home file when the test ends.
struct Cleanup(User, String);

impl Drop for Cleanup {
    fn drop(&mut self) {
        self.0.remove_home_file(&self.1);
    }
}

#[test]
fn procmail_files_into_a_folder_named_by_the_extension() {
    let u = user("pt-proc1");
    let probe = Probe::new();
    let folders = probe.dir().join("mail");
    std::fs::create_dir(&folders).expect("mkdir");
    if is_root() {
        std::os::unix::fs::chown(&folders, Some(u.uid), Some(u.gid)).expect("chown");
    }
    let rc = format!(
        "SHELL=/bin/sh\n\
         MAILDIR={f}\n\
         DEFAULT={f}/inbox\n\
         LOGFILE={f}/procmail.log\n\
         :0\n\
         * ^Subject:.*sortme\n\
         folder-$1\n",
        f = folders.display()
    );
    let (command, _cleanup) = if is_root() {
        u.write_home_file(".procmailrc", &rc);
        (
            "/usr/bin/procmail -a \"$EXTENSION\"".to_string(),
            Some(Cleanup(u.clone(), ".procmailrc".into())),
        )
    } else {
        let rcfile = probe.dir().join("procmailrc");
        std::fs::write(&rcfile, &rc).expect("write rc");
        (
            format!("/usr/bin/procmail -a \"$EXTENSION\" {}", rcfile.display()),
            None,
        )
    };
    let inst = instance()
        .main_cf("recipient_delimiter = +")
        .main_cf(&format!("mailbox_command = {command}"))
        .start();

    inst.send(
        &["-f", "sender@test.example", &format!("{}+lists", u.name)],
        "Subject: please sortme\n\nFrom the list\n",
    );
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: plain\n\nbody\n",
    );
    let sent = inst.wait_log(
        &[&format!("status=sent (delivered to command: {command})")],
        2,
    );
    assert!(
        sent.iter()
            .any(|l| l.contains(&format!("to=<{}+lists@test.example>", u.name))),
        "{sent:?}"
    );
    inst.wait_queue_empty();

    let sorted = read_mbox(&folders.join("folder-lists"));
    assert_eq!(sorted.len(), 1, "procmail filed by subject into folder-$1");
    assert_eq!(sorted[0].header("Subject"), Some("please sortme"));
    assert!(
        sorted[0].from_line.starts_with("sender@test.example "),
        "{}",
        sorted[0].from_line
    );
    assert_eq!(
        sorted[0].header("Delivered-To"),
        Some(format!("{}+lists@test.example", u.name).as_str())
    );
    let inbox = read_mbox(&folders.join("inbox"));
    assert_eq!(inbox.len(), 1);
    assert_eq!(inbox[0].header("Subject"), Some("plain"));
    assert!(
        !inst.mailbox(&u.name).exists(),
        "mailbox_command replaces the mbox"
    );
}

#[test]
fn a_mailbox_command_sees_the_local_delivery_environment() {
    let u = user("pt-proc2");
    let probe = Probe::new();
    let inst = instance()
        .main_cf("recipient_delimiter = +")
        .main_cf(&format!("mailbox_command = {}", probe.command("env")))
        .start();
    let rcpt = format!("{}+box@localhost", u.name);
    inst.send(
        &["-f", "someone@example.net", &rcpt],
        "Subject: environment\n\nbody\n",
    );
    inst.wait_log(
        &[
            &format!("to=<{rcpt}>"),
            "status=sent (delivered to command:",
        ],
        1,
    );

    let rec = probe.wait(&inst, "env");
    assert_eq!(rec.env("SENDER"), Some("someone@example.net"));
    assert_eq!(rec.env("RECIPIENT"), Some(rcpt.as_str()));
    assert_eq!(rec.env("USER"), Some(u.name.as_str()));
    assert_eq!(rec.env("LOGNAME"), Some(u.name.as_str()));
    assert_eq!(rec.env("HOME"), Some(u.home.to_string_lossy().as_ref()));
    assert!(
        rec.env("SHELL").is_some_and(|s| s.starts_with('/')),
        "{:?}",
        rec.env("SHELL")
    );
    assert_eq!(rec.env("EXTENSION"), Some("box"));
    assert_eq!(rec.env("DOMAIN"), Some("localhost"));
    assert_eq!(rec.env("LOCAL"), Some(format!("{}+box", u.name).as_str()));
    assert_eq!(rec.env("ORIGINAL_RECIPIENT"), Some(rcpt.as_str()));
    assert_eq!((rec.uid, rec.gid), (u.uid, u.gid), "runs as the recipient");
    // A clean environment: local(8)'s variables, export_environment (TZ MAIL_CONFIG LANG)
    // and what the shell itself sets; nothing inherited from whoever started the daemon.
    let allowed = [
        "PATH",
        "SENDER",
        "RECIPIENT",
        "LOCAL",
        "DOMAIN",
        "EXTENSION",
        "ORIGINAL_RECIPIENT",
        "HOME",
        "USER",
        "LOGNAME",
        "SHELL",
        "ENVID",
        "TZ",
        "MAIL_CONFIG",
        "LANG",
        "PWD",
        "OLDPWD",
        "SHLVL",
        "_",
    ];
    let extra: Vec<&str> = rec
        .env
        .iter()
        .map(|(k, _)| k.as_str())
        .filter(|k| !allowed.contains(k))
        .collect();
    assert!(extra.is_empty(), "unexpected variables: {extra:?}");
    // The message on stdin, with the envelope headers in front.
    assert!(
        rec.input.starts_with("From someone@example.net  "),
        "{}",
        rec.input
    );
    assert!(
        rec.input.contains(&format!("\nDelivered-To: {rcpt}\n")),
        "{}",
        rec.input
    );
    assert!(
        rec.input.contains("\nSubject: environment\n"),
        "{}",
        rec.input
    );
}

#[test]
fn exit_75_defers_and_a_later_successful_run_delivers() {
    let u = user("pt-proc3");
    let probe = Probe::new();
    let out = probe.out("");
    let script = probe.script(
        "tempfail.sh",
        &format!(
            "#!/bin/sh\n\
             n=$(cat {o}/count 2>/dev/null || echo 0)\n\
             n=$((n + 1))\n\
             echo $n > {o}/count\n\
             if [ $n -lt 2 ]; then exit 75; fi\n\
             cat >> {o}/delivered\n",
            o = out.display()
        ),
    );
    let inst = instance()
        .main_cf(&format!("mailbox_command = {}", script.display()))
        .start();
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: try twice\n\ntoken-75-retry\n",
    );

    let to = format!("to=<{}@test.example>", u.name);
    let first = &inst.wait_log(&[&to, "status=deferred"], 1)[0];
    assert!(
        first.contains("dsn=4.3.0, status=deferred (temporary failure)"),
        "{first}"
    );
    let second = &inst.wait_log(&[&to, "status=sent"], 1)[0];
    assert!(
        second.contains(&format!(
            "dsn=2.0.0, status=sent (delivered to command: {})",
            script.display()
        )),
        "{second}"
    );
    inst.wait_queue_empty();
    let delivered = std::fs::read_to_string(probe.out("delivered")).expect("delivered");
    assert_eq!(
        delivered.matches("token-75-retry").count(),
        1,
        "{delivered}"
    );
    assert_eq!(
        std::fs::read_to_string(probe.out("count"))
            .expect("count")
            .trim(),
        "2"
    );
    assert!(
        inst.log_lines(&["sender non-delivery notification"])
            .is_empty(),
        "a deferral is no bounce"
    );
}

/// A mailbox command that records to `out/inbox` unless the extension asks otherwise.
fn extension_mda(probe: &Probe) -> std::path::PathBuf {
    probe.script(
        "mda.sh",
        &format!(
            "#!/bin/sh\n\
             case \"$EXTENSION\" in\n\
             nouser) exit 67 ;;\n\
             hang) echo $$ > {o}/hang.pid; (sleep 60; touch {o}/survivor) & echo $! > {o}/hang.child; sleep 60 ;;\n\
             esac\n\
             cat >> {o}/inbox\n",
            o = probe.out("").display()
        ),
    )
}

#[test]
fn exit_67_bounces_with_5_1_1() {
    let u = user("pt-proc4");
    let probe = Probe::new();
    let mda = extension_mda(&probe);
    let inst = instance()
        .main_cf("recipient_delimiter = +")
        .main_cf(&format!("mailbox_command = {}", mda.display()))
        .start();
    let rcpt = format!("{}+nouser@test.example", u.name);
    inst.send(
        &["-f", &format!("{}@test.example", u.name), &rcpt],
        "Subject: no such user\n\nbody\n",
    );

    let line = &inst.wait_log(&[&format!("to=<{rcpt}>"), "relay=local"], 1)[0];
    assert!(
        line.contains("dsn=5.1.1, status=bounced (user unknown)"),
        "{line}"
    );
    inst.wait_log(&["sender non-delivery notification"], 1);
    inst.wait_queue_empty();

    // The notice reached the sender (through the same command, without extension).
    let notices = read_mime_mbox(&probe.out("inbox"));
    assert_eq!(notices.len(), 1);
    let report = notices[0]
        .part("message/delivery-status")
        .expect("delivery-status part");
    assert_eq!(report.field(1, "Status"), Some("5.1.1"));
    assert_eq!(report.field(1, "Action"), Some("failed"));
    assert!(
        report
            .field(1, "Final-Recipient")
            .is_some_and(|v| v.ends_with(&rcpt)),
        "{:?}",
        report.fields
    );
    assert!(
        report
            .field(1, "Diagnostic-Code")
            .is_some_and(|v| v.contains("user unknown")),
        "{:?}",
        report.fields
    );
}

fn gone(pid_file: &std::path::Path) -> bool {
    let Ok(pid) = std::fs::read_to_string(pid_file) else {
        return false;
    };
    // Dead, or a zombie nobody reaped yet (in a container, init may not).
    match std::fs::read_to_string(format!("/proc/{}/stat", pid.trim())) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
    }
}

#[test]
fn command_time_limit_kills_a_hanging_command() {
    let u = user("pt-proc5");
    let probe = Probe::new();
    let mda = extension_mda(&probe);
    let inst = instance()
        .main_cf("recipient_delimiter = +")
        .main_cf("command_time_limit = 2s")
        .main_cf(&format!("mailbox_command = {}", mda.display()))
        .start();
    let rcpt = format!("{}+hang@test.example", u.name);
    let start = Instant::now();
    inst.send(
        &["-f", &format!("{}@test.example", u.name), &rcpt],
        "Subject: hang\n\nbody\n",
    );

    let line = &inst.wait_log(&[&format!("to=<{rcpt}>"), "relay=local"], 1)[0];
    assert!(
        line.contains(&format!(
            "dsn=5.3.0, status=bounced (Command time limit exceeded: \"{}\")",
            mda.display()
        )),
        "{line}"
    );
    assert!(
        start.elapsed() < Duration::from_secs(20),
        "killed after the 2s limit, not after the 60s sleep"
    );
    // The command and the child it left in the background are both gone.
    inst.wait_until("the timed-out command to be killed", || {
        gone(&probe.out("hang.pid")).then_some(())
    });
    inst.wait_until("its background child to be killed", || {
        gone(&probe.out("hang.child")).then_some(())
    });
    inst.wait_log(&["sender non-delivery notification"], 1);
    inst.wait_queue_empty();
    let notices = read_mime_mbox(&probe.out("inbox"));
    assert_eq!(notices.len(), 1);
    let report = notices[0]
        .part("message/delivery-status")
        .expect("delivery-status part");
    assert_eq!(report.field(1, "Status"), Some("5.3.0"));
    assert!(!probe.out("survivor").exists());
}
