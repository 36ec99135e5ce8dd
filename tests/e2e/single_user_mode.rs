//! An instance started by an ordinary user (the README quickstart case) runs entirely as that
//! user: the daemon process has the user's uid, the queue belongs to the user, `sendmail` from
//! that user is logged `uid=<uid> from=<user>` and stamped `from userid <uid>`, and deliveries
//! (the mbox, an alias command) happen with the user's identity. Run as root, the test makes a
//! real ordinary account own a whole instance and drives every `postern` command as that
//! account (CommandExt::uid/gid); run by an ordinary user, it checks the same things for the
//! current user.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

use crate::common::*;

/// Runs `postern` commands as `who` (switching to it when the test runs as root).
struct AsUser<'a> {
    who: &'a User,
    inst: &'a Instance,
}

impl AsUser<'_> {
    fn command(&self, name: &str, args: &[&str]) -> Command {
        let mut c = Command::new(self.inst.bin());
        c.arg(name)
            .args(args)
            .env("MAIL_CONFIG", self.inst.config_dir())
            .env("HOME", &self.who.home)
            .env("USER", &self.who.name)
            .env("LOGNAME", &self.who.name);
        if is_root() {
            // Also clears the supplementary groups (std does setgroups(0) before setuid).
            c.uid(self.who.uid).gid(self.who.gid);
        }
        c
    }

    fn run(&self, name: &str, args: &[&str], input: &[u8]) -> Output {
        testkit::run_with_input(self.command(name, args), input)
    }
}

/// The daemon started by `AsUser`; stopped (then killed) when dropped.
struct Daemon<'a> {
    child: Option<Child>,
    as_user: &'a AsUser<'a>,
}

impl Drop for Daemon<'_> {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = self.as_user.run("postfix", &["stop"], b"");
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn chown_tree(path: &Path, uid: u32, gid: u32) {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid)).expect("chown");
    if path.is_dir() && !path.is_symlink() {
        for e in std::fs::read_dir(path).expect("read_dir").flatten() {
            chown_tree(&e.path(), uid, gid);
        }
    }
}

/// The uid line of /proc/PID/status: real, effective, saved, filesystem.
fn proc_uids(pid: u32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let line = status
        .lines()
        .find(|l| l.starts_with("Uid:"))
        .expect("Uid line");
    line.split_whitespace()
        .skip(1)
        .map(|n| n.parse().expect("uid"))
        .collect()
}

#[test]
fn an_instance_started_by_an_ordinary_user_runs_and_delivers_as_that_user() {
    // Root: a real ordinary account. Otherwise: the current user (testkit's user()).
    let solo = user("pt-solo");
    assert_ne!(solo.uid, 0, "an ordinary user");
    let inst = instance()
        .aliases("postmaster: root\npt-whoami: \"|/bin/sh -c 'id -u > $HOME_OF_TEST/whoami'\"\n")
        .build();
    // The whole instance belongs to the user, as a checkout does in the quickstart.
    let state = inst.root().join("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::set_permissions(&state, std::fs::Permissions::from_mode(0o700)).expect("chmod");
    let aliases = std::fs::read_to_string(inst.config_dir().join("aliases")).expect("aliases");
    std::fs::write(
        inst.config_dir().join("aliases"),
        aliases.replace("$HOME_OF_TEST", &state.display().to_string()),
    )
    .expect("aliases");
    if is_root() {
        chown_tree(inst.root(), solo.uid, solo.gid);
    }
    let me = AsUser {
        who: &solo,
        inst: &inst,
    };
    let out = me.run("newaliases", &[], b"");
    assert!(
        out.status.success(),
        "newaliases as {}: {}",
        solo.name,
        String::from_utf8_lossy(&out.stderr)
    );

    let child = me
        .command("postfix", &["start-fg"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn postfix start-fg");
    let _daemon = Daemon {
        child: Some(child),
        as_user: &me,
    };
    inst.wait_log(&["daemon started"], 1);

    // The daemon runs as the user: every uid of the master process, and the queue it made.
    let pid_text =
        std::fs::read_to_string(inst.spool().join("pid").join("master.pid")).expect("master.pid");
    let pid: u32 = pid_text.trim().parse().expect("pid");
    assert_eq!(proc_uids(pid), vec![solo.uid; 4], "master process uids");
    for q in [
        "maildrop", "incoming", "active", "deferred", "hold", "corrupt",
    ] {
        let m = std::fs::metadata(inst.spool().join(q)).expect("queue dir");
        assert_eq!(m.uid(), solo.uid, "{q}/ belongs to the user");
    }
    let status = me.run("postfix", &["status"], b"");
    assert!(status.status.success(), "postfix status as the user");

    // The user submits without -f: the sender is the user, as in Postfix.
    let out = me.run("sendmail", &[&solo.name], b"Subject: solo\n\nsolo body\n");
    assert!(
        out.status.success(),
        "sendmail: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let picked = inst.wait_log(&[&format!(": uid={} from=<{}>", solo.uid, solo.name)], 1);
    assert!(picked[0].contains("postfix/pickup["), "{}", picked[0]);
    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", solo.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );

    let mbox = inst.mailbox(&solo.name);
    let msgs = read_mbox(&mbox);
    assert_eq!(msgs.len(), 1);
    let m = &msgs[0];
    assert_eq!(
        m.header("Return-Path"),
        Some(format!("<{}@test.example>", solo.name).as_str())
    );
    assert!(
        m.header("Received")
            .is_some_and(|r| r.contains(&format!("from userid {})", solo.uid))),
        "{:?}",
        m.header("Received")
    );
    assert_eq!(m.body, "solo body\n");
    let meta = std::fs::metadata(&mbox).expect("mbox");
    assert_eq!(
        meta.uid(),
        solo.uid,
        "the mbox is written with the user's identity"
    );

    // An alias command runs as the user too.
    let out = me.run("sendmail", &["pt-whoami"], b"Subject: who\n\n");
    assert!(out.status.success());
    inst.wait_log(
        &[
            "to=<pt-whoami@test.example>",
            "status=sent (delivered to command: ",
        ],
        1,
    );
    let who = std::fs::read_to_string(state.join("whoami")).expect("whoami");
    assert_eq!(
        who.trim(),
        solo.uid.to_string(),
        "the alias command ran as the user"
    );
    inst.wait_queue_empty();
}
