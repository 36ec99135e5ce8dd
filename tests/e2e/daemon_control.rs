//! Controlling the daemon and its configuration as with Postfix: `postfix start`, `status`,
//! `reload`, `stop` and `start-fg` with postfix-script's messages (on stderr and in the maillog)
//! and exit codes (/tmp/postfix-reference/*_tty.tty); a second daemon on the same queue refuses
//! to start; a stale pid file left by `kill -9` does not prevent the next start; `-c DIR` and
//! `MAIL_CONFIG` choose the configuration for every command (`-c` winning); a bad `main.cf`
//! value stops the start with an error naming the file, the line and the parameter, while an
//! unknown parameter is only a warning; and `postconf` prints (`-n`, `-d`, `-h`, `-x`) and edits
//! (`-e`) `main.cf` as Postfix's does.

use std::process::Output;

use crate::common::*;

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `postfix ARGS` must exit `code` and say `text` on stderr.
fn postfix(inst: &Instance, args: &[&str], code: i32, text: &str) -> Output {
    let out = inst.run("postfix", args, b"");
    assert_eq!(
        out.status.code(),
        Some(code),
        "postfix {args:?}: {}",
        stderr(&out)
    );
    assert!(
        stderr(&out).contains(text),
        "postfix {args:?} should say {text:?}: {}",
        stderr(&out)
    );
    out
}

/// Stops a daemon started with `postfix start` when the test ends, even when it fails.
struct StopOnDrop<'a>(&'a Instance);

impl Drop for StopOnDrop<'_> {
    fn drop(&mut self) {
        let _ = self.0.run("postfix", &["stop"], b"");
    }
}

fn pid_file(inst: &Instance) -> std::path::PathBuf {
    inst.spool().join("pid").join("master.pid")
}

fn pid_in_file(inst: &Instance) -> u32 {
    std::fs::read_to_string(pid_file(inst))
        .expect("read master.pid")
        .trim()
        .parse()
        .expect("a pid in master.pid")
}

/// Is `pid` a live process (not gone, not a zombie waiting for its reaper)?
fn alive(pid: u32) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // "pid (comm) S ...": the state follows the last ')'.
        Ok(stat) => stat
            .rsplit_once(") ")
            .is_some_and(|(_, rest)| !rest.starts_with('Z')),
        Err(_) => false,
    }
}

fn deliver_one(inst: &Instance, u: &User, tag: &str) {
    inst.send(&[&u.name], &format!("Subject: {tag}\n\n{tag}\n"));
    inst.wait_until(&format!("{tag} in the mailbox"), || {
        read_mbox(&inst.mailbox(&u.name))
            .iter()
            .any(|m| m.header("Subject") == Some(tag))
            .then_some(())
    });
}

#[test]
fn start_status_reload_stop_say_what_postfix_says() {
    let u = user("pt-cli");
    let inst = instance().build();
    let _stop = StopOnDrop(&inst);
    let dir = inst.config_dir().display().to_string();

    postfix(
        &inst,
        &["status"],
        1,
        "postfix/postfix-script: the Postfix mail system is not running",
    );
    postfix(
        &inst,
        &["stop"],
        1,
        "postfix/postfix-script: fatal: the Postfix mail system is not running",
    );
    postfix(
        &inst,
        &["reload"],
        1,
        "postfix/postfix-script: fatal: the Postfix mail system is not running",
    );

    postfix(
        &inst,
        &["start"],
        0,
        "postfix/postfix-script: starting the Postfix mail system",
    );
    inst.wait_log(
        &[
            "postfix/master[",
            "daemon started -- version ",
            &format!(", configuration {dir}"),
        ],
        1,
    );
    let pid = pid_in_file(&inst);
    assert!(alive(pid), "the master runs as pid {pid}");
    postfix(
        &inst,
        &["status"],
        0,
        &format!("postfix/postfix-script: the Postfix mail system is running: PID: {pid}"),
    );
    postfix(
        &inst,
        &["start"],
        1,
        "postfix/postfix-script: fatal: the Postfix mail system is already running",
    );
    postfix(
        &inst,
        &["start-fg"],
        1,
        "postfix/postfix-script: fatal: the Postfix mail system is already running",
    );
    deliver_one(&inst, &u, "running");

    // reload: the new main.cf takes effect in the running daemon, which keeps its pid.
    inst.send(&[&format!("{}+before", u.name)], "Subject: before\n\nx\n");
    inst.wait_log(
        &[
            &format!("to=<{}+before@test.example>", u.name),
            "status=bounced (unknown user",
        ],
        1,
    );
    let out = inst.run("postconf", &["-e", "recipient_delimiter = +"], b"");
    assert!(out.status.success(), "{}", stderr(&out));
    postfix(
        &inst,
        &["reload"],
        0,
        "postfix/postfix-script: refreshing the Postfix mail system",
    );
    inst.wait_log(
        &[
            "postfix/master[",
            "reload -- version ",
            &format!(", configuration {dir}"),
        ],
        1,
    );
    assert_eq!(pid_in_file(&inst), pid);
    inst.send(&[&format!("{}+after", u.name)], "Subject: after\n\nx\n");
    inst.wait_log(
        &[
            &format!("to=<{}+after@test.example>", u.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );

    postfix(
        &inst,
        &["stop"],
        0,
        "postfix/postfix-script: stopping the Postfix mail system",
    );
    inst.wait_until("the master to exit", || (!alive(pid)).then_some(()));
    postfix(
        &inst,
        &["status"],
        1,
        "the Postfix mail system is not running",
    );
    postfix(
        &inst,
        &["stop"],
        1,
        "fatal: the Postfix mail system is not running",
    );

    // As Postfix's postfix-script, every message is also in the maillog.
    for text in [
        "the Postfix mail system is not running",
        "fatal: the Postfix mail system is not running",
        "starting the Postfix mail system",
        &format!("the Postfix mail system is running: PID: {pid}"),
        "fatal: the Postfix mail system is already running",
        "refreshing the Postfix mail system",
        "stopping the Postfix mail system",
    ] {
        assert!(
            inst.log().lines().any(
                |l| l.contains("postfix/postfix-script[") && l.ends_with(&format!("]: {text}"))
            ),
            "maillog should have postfix-script's {text:?}:\n{}",
            inst.log()
        );
    }
}

#[test]
fn start_fg_runs_the_master_in_the_foreground_until_stopped() {
    let inst = instance().build();
    let mut child = inst
        .command("postfix", &["start-fg"])
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("spawn postfix start-fg");
    inst.wait_log(&["daemon started -- version"], 1);
    assert_eq!(
        pid_in_file(&inst),
        child.id(),
        "start-fg is the master itself"
    );
    assert_eq!(
        child.try_wait().expect("try_wait"),
        None,
        "start-fg stays in the foreground"
    );
    postfix(
        &inst,
        &["status"],
        0,
        &format!("running: PID: {}", child.id()),
    );
    postfix(&inst, &["stop"], 0, "stopping the Postfix mail system");
    let status = inst.wait_until("start-fg to exit", || child.try_wait().expect("try_wait"));
    assert!(
        status.success(),
        "start-fg exits 0 when stopped: {status:?}"
    );
}

#[test]
fn a_second_daemon_on_the_same_queue_refuses_to_start() {
    let u = user("pt-cli");
    let inst = instance().start();
    let pid = pid_in_file(&inst);
    // Another configuration directory naming the same queue_directory.
    let etc2 = inst.root().join("etc2");
    std::fs::create_dir_all(&etc2).unwrap();
    let main_cf = std::fs::read_to_string(inst.config_dir().join("main.cf")).unwrap();
    let maillog2 = inst.root().join("maillog2");
    std::fs::write(
        etc2.join("main.cf"),
        main_cf.replace(
            &format!("maillog_file = {}", inst.log_path().display()),
            &format!("maillog_file = {}", maillog2.display()),
        ),
    )
    .unwrap();
    let etc2 = etc2.to_str().unwrap();
    postfix(&inst, &["-c", etc2, "status"], 0, &format!("PID: {pid}"));
    postfix(
        &inst,
        &["-c", etc2, "start"],
        1,
        "fatal: the Postfix mail system is already running",
    );
    postfix(
        &inst,
        &["-c", etc2, "start-fg"],
        1,
        "fatal: the Postfix mail system is already running",
    );
    let log2 = std::fs::read_to_string(&maillog2).unwrap_or_default();
    assert!(!log2.contains("daemon started"), "{log2}");
    assert_eq!(inst.log().matches("daemon started").count(), 1);
    // The first daemon is untouched.
    assert_eq!(pid_in_file(&inst), pid);
    postfix(&inst, &["status"], 0, &format!("PID: {pid}"));
    deliver_one(&inst, &u, "still served by the first daemon");
}

#[test]
fn start_after_kill_9_ignores_the_stale_pid_file() {
    let u = user("pt-cli");
    let mut inst = instance().start();
    let old = pid_in_file(&inst);
    inst.kill9();
    assert!(!alive(old), "the master was killed");
    assert_eq!(
        pid_in_file(&inst),
        old,
        "kill -9 leaves the pid file behind"
    );
    postfix(
        &inst,
        &["status"],
        1,
        "the Postfix mail system is not running",
    );
    inst.send(&[&u.name], "Subject: sent while down\n\nx\n");

    inst.start();
    let new = pid_in_file(&inst);
    assert_ne!(new, old);
    assert!(alive(new));
    assert_eq!(inst.log().matches("daemon started -- version").count(), 2);
    postfix(&inst, &["status"], 0, &format!("PID: {new}"));
    inst.wait_until("the message sent while down", || {
        read_mbox(&inst.mailbox(&u.name))
            .iter()
            .any(|m| m.header("Subject") == Some("sent while down"))
            .then_some(())
    });
    deliver_one(&inst, &u, "after the restart");
}

#[test]
fn dash_c_and_mail_config_choose_the_configuration() {
    let u = user("pt-cli");
    let inst = instance().build();
    let _stop = StopOnDrop(&inst);
    let dir = inst.config_dir().display().to_string();
    let spool = inst.spool().display().to_string();
    // Without MAIL_CONFIG: -c DIR (sendmail: -C DIR or -C DIR/main.cf).
    let bare = |cmd: &str, args: &[&str], input: &[u8]| {
        let mut c = inst.command(cmd, args);
        c.env_remove("MAIL_CONFIG");
        testkit::run_with_input(c, input)
    };
    let ok = |out: Output, what: &str| -> String {
        assert!(
            out.status.success(),
            "{what}: {:?} {}",
            out.status,
            stderr(&out)
        );
        stdout(&out)
    };
    ok(
        bare("postfix", &["-c", &dir, "start"], b""),
        "postfix -c start",
    );
    assert!(stderr(&bare("postfix", &["-c", &dir, "status"], b"")).contains("is running"));
    assert_eq!(
        ok(
            bare("postconf", &["-c", &dir, "-h", "queue_directory"], b""),
            "postconf -c"
        ),
        format!("{spool}\n")
    );
    ok(
        bare(
            "sendmail",
            &["-C", &dir, &u.name],
            b"Subject: dash C dir\n\nx\n",
        ),
        "sendmail -C DIR",
    );
    let main_cf = format!("{dir}/main.cf");
    ok(
        bare(
            "sendmail",
            &["-C", &main_cf, &u.name],
            b"Subject: dash C file\n\nx\n",
        ),
        "sendmail -C DIR/main.cf",
    );
    for subject in ["dash C dir", "dash C file"] {
        inst.wait_until(subject, || {
            read_mbox(&inst.mailbox(&u.name))
                .iter()
                .any(|m| m.header("Subject") == Some(subject))
                .then_some(())
        });
    }
    inst.wait_queue_empty();
    assert_eq!(
        ok(bare("postqueue", &["-c", &dir, "-p"], b""), "postqueue -c"),
        "Mail queue is empty\n"
    );
    let out = bare("postsuper", &["-c", &dir, "-d", "ALL"], b"");
    assert_eq!(stderr(&out), "postsuper: Deleted: 0 messages\n");

    // MAIL_CONFIG alone (what inst.run does).
    assert_eq!(
        stdout(&inst.run("postconf", &["-h", "queue_directory"], b"")),
        format!("{spool}\n")
    );
    postfix(&inst, &["status"], 0, "is running");

    // -c wins over MAIL_CONFIG.
    let elsewhere = |cmd: &str, args: &[&str]| {
        let mut c = inst.command(cmd, args);
        c.env("MAIL_CONFIG", "/nonexistent/postern-config");
        testkit::run_with_input(c, b"")
    };
    assert_eq!(
        ok(
            elsewhere("postconf", &["-c", &dir, "-h", "myhostname"]),
            "postconf -c over MAIL_CONFIG"
        ),
        "test.example\n"
    );
    assert!(stderr(&elsewhere("postfix", &["-c", &dir, "status"])).contains("is running"));
    ok(
        elsewhere("postfix", &["-c", &dir, "stop"]),
        "postfix -c stop",
    );
    postfix(&inst, &["status"], 1, "not running");
}

#[test]
fn a_bad_main_cf_value_stops_the_start_naming_file_line_and_parameter() {
    for (line, error) in [
        (
            "queue_run_delay = abc",
            "parameter queue_run_delay: bad time value or unit: abc",
        ),
        (
            "message_size_limit = 10x",
            "bad numerical configuration: message_size_limit = 10x",
        ),
        (
            "soft_bounce = maybe",
            "bad boolean configuration: soft_bounce = maybe",
        ),
    ] {
        let inst = instance().build();
        inst.add_main_cf(line);
        let main_cf = inst.config_dir().join("main.cf");
        let n = std::fs::read_to_string(&main_cf).unwrap().lines().count();
        let want = format!("{}, line {n}: {error}", main_cf.display());
        for cmd in ["start", "start-fg"] {
            let out = inst.run("postfix", &[cmd], b"");
            assert_eq!(
                out.status.code(),
                Some(1),
                "postfix {cmd} with {line:?}: {}",
                stderr(&out)
            );
            assert!(
                stderr(&out).contains(&format!("fatal: {want}")),
                "postfix {cmd}: {}",
                stderr(&out)
            );
        }
        // (Postfix's status would still work here: queue_run_delay is only qmgr's concern.)
        let out = inst.run("postfix", &["status"], b"");
        assert_eq!(out.status.code(), Some(1), "{}", stderr(&out));
        assert!(!inst.log().contains("daemon started"), "{}", inst.log());
        assert!(!pid_file(&inst).exists() || !alive(pid_in_file(&inst)));
    }
}

/// Postfix's postfix(1) checks only the parameters it uses itself: after `main.cf` is edited
/// with a bad qmgr setting, `postfix status` and `postfix stop` still work on the running daemon
/// (reference: badval_queue_run_delay_postfix_status_tty.tty, exit 0), so an operator can
/// always stop what is running.
#[test]
fn status_and_stop_still_work_after_a_bad_edit_of_a_daemon_parameter() {
    let inst = instance().start();
    let pid = pid_in_file(&inst);
    inst.add_main_cf("queue_run_delay = abc");
    postfix(
        &inst,
        &["status"],
        0,
        &format!("the Postfix mail system is running: PID: {pid}"),
    );
    postfix(&inst, &["stop"], 0, "stopping the Postfix mail system");
    inst.wait_until("the master to exit", || (!alive(pid)).then_some(()));
}

#[test]
fn an_unknown_parameter_is_only_a_warning() {
    let u = user("pt-cli");
    let mut inst = instance().build();
    inst.add_main_cf("bogus_parameter = 1");
    let out = inst.run("postconf", &["-n"], b"");
    assert!(out.status.success());
    assert!(
        stderr(&out).contains(&format!(
            "warning: {}/main.cf: unused parameter: bogus_parameter=1",
            inst.config_dir().display()
        )),
        "{}",
        stderr(&out)
    );
    inst.start();
    deliver_one(&inst, &u, "despite an unknown parameter");
    let out = inst.run("postconf", &["no_such_param"], b"");
    assert_eq!(out.status.code(), Some(0));
    assert!(stdout(&out).is_empty());
    assert!(
        stderr(&out).contains("postconf: warning: no_such_param: unknown parameter"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn postconf_prints_and_edits_main_cf() {
    let inst = instance().build();
    let dir = inst.config_dir().display().to_string();
    let run = |args: &[&str]| -> (String, String) {
        let out = inst.run("postconf", args, b"");
        assert_eq!(
            out.status.code(),
            Some(0),
            "postconf {args:?}: {}",
            stderr(&out)
        );
        (stdout(&out), stderr(&out))
    };

    // -n: the non-default settings, "name = value", sorted, config_directory included.
    let (n, err) = run(&["-n"]);
    assert_eq!(err, "");
    let lines: Vec<&str> = n.lines().collect();
    let mut sorted = lines.clone();
    sorted.sort();
    assert_eq!(lines, sorted, "postconf -n is sorted");
    for want in [
        format!("config_directory = {dir}"),
        "myhostname = test.example".into(),
        "mydestination = $myhostname, localhost".into(),
        "queue_run_delay = 1s".into(),
    ] {
        assert!(
            lines.contains(&want.as_str()),
            "{want:?} in postconf -n:\n{n}"
        );
    }
    assert!(lines.iter().all(|l| l.contains(" = ")), "{n}");
    assert!(
        !n.contains("bounce_size_limit"),
        "defaults are not listed by -n"
    );

    assert_eq!(
        run(&["-d", "queue_run_delay"]).0,
        "queue_run_delay = 300s\n"
    );
    assert_eq!(run(&["queue_run_delay"]).0, "queue_run_delay = 1s\n");
    assert_eq!(run(&["-h", "myhostname"]).0, "test.example\n");
    assert_eq!(
        run(&["myhostname", "mydomain", "queue_run_delay"]).0,
        "myhostname = test.example\nmydomain = example\nqueue_run_delay = 1s\n"
    );
    assert_eq!(
        run(&["myorigin"]).0,
        "myorigin = $myhostname\n",
        "values are shown unexpanded"
    );
    assert_eq!(
        run(&["-x", "myorigin"]).0,
        "myorigin = test.example\n",
        "-x expands"
    );
    for args in [
        &["bogus_param"][..],
        &["-d", "bogus_param"],
        &["-h", "bogus_param"],
    ] {
        assert_eq!(
            run(args),
            (
                String::new(),
                "postconf: warning: bogus_param: unknown parameter\n".into()
            ),
            "{args:?}"
        );
    }

    // -e: an existing line is replaced where it is, a new parameter is appended.
    let main_cf = inst.config_dir().join("main.cf");
    let before = std::fs::read_to_string(&main_cf).unwrap();
    let at = before
        .lines()
        .position(|l| l.starts_with("myhostname "))
        .expect("myhostname line");
    let (out, err) = run(&["-e", "myhostname = other.example", "recipient_delimiter=+"]);
    assert_eq!((out.as_str(), err.as_str()), ("", ""));
    let after = std::fs::read_to_string(&main_cf).unwrap();
    let after_lines: Vec<&str> = after.lines().collect();
    assert_eq!(
        after_lines
            .iter()
            .filter(|l| l.starts_with("myhostname"))
            .count(),
        1,
        "{after}"
    );
    assert_eq!(after_lines[at], "myhostname = other.example");
    assert_eq!(after_lines.last().copied(), Some("recipient_delimiter = +"));
    assert_eq!(after_lines.len(), before.lines().count() + 1);
    assert_eq!(run(&["-h", "myhostname"]).0, "other.example\n");
    assert_eq!(run(&["-x", "myorigin"]).0, "myorigin = other.example\n");
    assert!(run(&["-n"]).0.contains("recipient_delimiter = +\n"));
}
