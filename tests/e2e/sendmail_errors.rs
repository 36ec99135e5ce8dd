//! `sendmail` refuses what it must refuse, with sysexits exit codes and Postfix's messages, and
//! then leaves nothing in the queue: no recipients (EX_USAGE), `-t` without recipient headers
//! (EX_USAGE), a malformed address (EX_NOUSER), a message over `message_size_limit`
//! (EX_DATAERR), and a queue it cannot write (EX_TEMPFAIL: a maildrop the submitter may not
//! write to, and a "disk full" write failure in the middle of the queue file). A bad `-N` value
//! is only a warning, as in Postfix's sendmail. And `sendmail` works while the daemon is down:
//! the message waits in `maildrop/` and is delivered once the daemon starts.

use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Output;

use crate::common::*;

const EX_USAGE: i32 = 64;
const EX_DATAERR: i32 = 65;
const EX_NOUSER: i32 = 67;
const EX_TEMPFAIL: i32 = 75;

/// An instance whose queue exists but whose daemon is not running, so that anything a failed
/// `sendmail` might have left behind stays where it was written.
fn stopped_instance(extra: &[&str]) -> Instance {
    let mut b = instance().main_cf("recipient_delimiter = +");
    for l in extra {
        b = b.main_cf(l);
    }
    let mut inst = b.start();
    inst.stop();
    let out = inst.run("postfix", &["status"], b"");
    assert!(!out.status.success(), "the daemon must be down");
    inst
}

/// Every entry of `dir`, hidden temporary files included.
fn all_entries(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn assert_queue_untouched(inst: &Instance) {
    for q in ["maildrop", "incoming", "active", "deferred", "hold"] {
        let left = all_entries(&inst.spool().join(q));
        assert!(left.is_empty(), "{q}/ must hold nothing, found {left:?}");
    }
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_fails(out: &Output, code: i32, text: &str) {
    assert_eq!(out.status.code(), Some(code), "stderr: {}", stderr(out));
    assert!(
        stderr(out).contains(text),
        "stderr should contain {text:?}: {}",
        stderr(out)
    );
}

fn me() -> (String, u32) {
    let uid = nix::unistd::getuid();
    let name = nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .expect("current user has a passwd entry")
        .name;
    (name, uid.as_raw())
}

#[test]
fn refused_submissions_exit_with_sysexits_codes_and_queue_nothing() {
    let inst = stopped_instance(&[]);
    let (login, uid) = me();
    let msg = b"Subject: x\n\nbody\n";

    let out = inst.run("sendmail", &[], msg);
    assert_fails(
        &out,
        EX_USAGE,
        &format!("sendmail: fatal: {login}({uid}): Recipient addresses must be specified on the command line or via the -t option"),
    );
    let out = inst.run("sendmail", &["-f", "sender@test.example"], msg);
    assert_fails(&out, EX_USAGE, "sendmail: fatal: sender@test.example(");

    let out = inst.run(
        "sendmail",
        &["-t"],
        b"Subject: no rcpt headers\nFrom: a@b.example\n\nbody\n",
    );
    assert_fails(
        &out,
        EX_USAGE,
        &format!("sendmail: fatal: {login}({uid}): No recipient addresses found in message header"),
    );
    let out = inst.run("sendmail", &["-t"], b"");
    assert_fails(
        &out,
        EX_USAGE,
        "No recipient addresses found in message header",
    );

    // Malformed addresses: nothing is queued, not even for the good recipient beside them.
    for bad in ["user@exa..mple", "user@", "x@[bad"] {
        let out = inst.run("sendmail", &["postmaster", bad], msg);
        assert_fails(&out, EX_NOUSER, "sendmail: fatal: bad address syntax");
        assert!(
            stderr(&out).contains(bad),
            "the message names the address: {}",
            stderr(&out)
        );
    }
    let out = inst.run("sendmail", &["-f", "sender@exa..mple", "postmaster"], msg);
    assert_fails(&out, EX_NOUSER, "bad sender address syntax");

    // An unknown option is a usage error (sendmail: invalid option -- 'Z').
    let out = inst.run("sendmail", &["-Z", "postmaster"], msg);
    assert_fails(&out, EX_USAGE, "invalid option -- 'Z'");

    assert_queue_untouched(&inst);
}

#[test]
fn message_over_message_size_limit_is_refused() {
    let inst = stopped_instance(&["message_size_limit = 10240"]);
    let big = format!("Subject: big\n\n{}", "0123456789abcdef\n".repeat(1000));
    let out = inst.run("sendmail", &["postmaster"], big.as_bytes());
    assert_fails(&out, EX_DATAERR, "message file too big");
    assert_queue_untouched(&inst);
    // The same limit lets a small message through.
    inst.send(&["postmaster"], "Subject: small\n\nok\n");
    assert_eq!(inst.queue_ids("maildrop").len(), 1);
}

#[test]
fn bad_dash_n_value_is_only_a_warning() {
    // Postfix's sendmail: "bad -N option value -- ignored"; the message is still accepted.
    let u = user("pt-cli");
    let inst = instance().main_cf("recipient_delimiter = +").start();
    let out = inst.run(
        "sendmail",
        &["-N", "bogus", &format!("{}+n", u.name)],
        b"Subject: n\n\nbody\n",
    );
    assert!(out.status.success(), "{:?} {}", out.status, stderr(&out));
    assert!(
        stderr(&out).contains("sendmail: warning: bad -N option value -- ignored"),
        "{}",
        stderr(&out)
    );
    inst.wait_log(
        &[&format!("to=<{}+n@test.example>", u.name), "status=sent"],
        1,
    );
    assert_eq!(read_mbox(&inst.mailbox(&u.name)).len(), 1);
}

#[test]
fn disk_full_while_writing_the_queue_file_is_tempfail_and_leaves_nothing() {
    let inst = stopped_instance(&[]);
    // The message is larger than the file size limit of the sendmail process, so the queue
    // file write fails half-way (EFBIG, as on a full disk). SIGXFSZ is ignored so that the
    // write returns the error instead of killing the process.
    let message = format!("Subject: too big for the disk\n\n{}", "x".repeat(200_000));
    let mut cmd = inst.command("sendmail", &["postmaster"]);
    // SAFETY: only async-signal-safe libc calls between fork and exec.
    unsafe {
        cmd.pre_exec(|| {
            let lim = libc::rlimit {
                rlim_cur: 16 * 1024,
                rlim_max: 16 * 1024,
            };
            if libc::setrlimit(libc::RLIMIT_FSIZE, &lim) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            libc::signal(libc::SIGXFSZ, libc::SIG_IGN);
            Ok(())
        });
    }
    let out = testkit::run_with_input(cmd, message.as_bytes());
    assert_fails(&out, EX_TEMPFAIL, "error writing queue file");
    assert_queue_untouched(&inst);
}

#[test]
fn unwritable_maildrop_is_tempfail_and_leaves_nothing() {
    let mut inst = stopped_instance(&[]);
    let maildrop = inst.spool().join("maildrop");
    let mode = std::fs::metadata(&maildrop)
        .expect("stat maildrop")
        .permissions()
        .mode()
        & 0o7777;
    let out = if is_root() {
        // Root can write anywhere; an ordinary submitter cannot write to a maildrop that is not
        // world-writable. The binary is copied where that user can run it.
        let submitter = user("pt-cli-sub");
        let bin_dir = inst.root().join("bin");
        std::fs::create_dir_all(&bin_dir).expect("mkdir bin");
        let bin = bin_dir.join("postern");
        std::fs::copy(inst.bin(), &bin).expect("copy postern");
        std::fs::set_permissions(&maildrop, std::fs::Permissions::from_mode(0o1730))
            .expect("chmod maildrop");
        let mut cmd = std::process::Command::new(&bin);
        cmd.args(["sendmail", "postmaster"])
            .env("MAIL_CONFIG", inst.config_dir())
            .current_dir("/")
            .uid(submitter.uid)
            .gid(submitter.gid);
        let out = testkit::run_with_input(cmd, b"Subject: x\n\nbody\n");
        assert!(
            stderr(&out).contains(&format!("({})", submitter.uid)),
            "the error names the submitter: {}",
            stderr(&out)
        );
        out
    } else {
        std::fs::set_permissions(&maildrop, std::fs::Permissions::from_mode(0o555))
            .expect("chmod maildrop");
        inst.run("sendmail", &["postmaster"], b"Subject: x\n\nbody\n")
    };
    assert_fails(&out, EX_TEMPFAIL, "error writing queue file");
    assert!(
        stderr(&out).contains("Permission denied"),
        "{}",
        stderr(&out)
    );
    std::fs::set_permissions(&maildrop, std::fs::Permissions::from_mode(mode))
        .expect("restore maildrop mode");
    assert_queue_untouched(&inst);
    // With the mode restored, the same submission goes through: the failure was the mode.
    inst.start();
    inst.send(&["postmaster"], "Subject: x\n\nbody\n");
    inst.wait_log(
        &[
            "to=<root@test.example>, orig_to=<postmaster>",
            "status=sent",
        ],
        1,
    );
}

#[test]
fn sendmail_works_while_the_daemon_is_down() {
    let u = user("pt-cli");
    let mut inst = stopped_instance(&[]);
    let rcpt = format!("{}+down", u.name);
    inst.send(
        &["-f", "sender@test.example", &rcpt],
        "Subject: while down\n\nwaiting\n",
    );
    let ids = inst.queue_ids("maildrop");
    assert_eq!(ids.len(), 1, "the message waits in maildrop/");
    assert!(
        inst.log_lines(&[&ids[0]]).is_empty(),
        "nothing has processed it yet"
    );
    // mailq sees it, and says the mail system is down.
    let out = inst.run("mailq", &[], b"");
    assert!(out.status.success());
    let listing = String::from_utf8_lossy(&out.stdout);
    assert!(
        listing.contains(&ids[0]) && listing.contains("sender@test.example"),
        "{listing}"
    );
    assert!(
        stderr(&out).contains("Mail system is down"),
        "{}",
        stderr(&out)
    );

    inst.start();
    inst.wait_log(
        &[&format!("{}: uid=", ids[0]), "from=<sender@test.example>"],
        1,
    );
    inst.wait_log(
        &[
            &format!("{}: to=<{rcpt}@test.example>", ids[0]),
            "status=sent",
        ],
        1,
    );
    inst.wait_queue_empty();
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("Subject"), Some("while down"));
    assert_eq!(msgs[0].body, "waiting\n");
}
