//! Mailbox formats chosen by `home_mailbox` and `mail_spool_directory`, as local(8) does:
//! `home_mailbox = Maildir/` delivers into `~/Maildir` (each message written in `tmp/`, then
//! renamed into `new/` under a name no other delivery uses; no From_ line, no `>From`
//! quoting), a `mail_spool_directory` ending in `/` is a Maildir per user, and a
//! `home_mailbox` without the trailing `/` is an mbox file in the home directory. Everything
//! is read back with Python's `mailbox` module.
//!
//! Run as an ordinary user, the recipient is that user and their real home is used: the tests
//! then use mailbox names of their own (`Maildir-postern-…`) and remove them afterwards.

use std::collections::HashSet;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::PathBuf;

use crate::common::*;

/// A mailbox name in the recipient's home: the standard one for a dedicated test account,
/// one of this test's own in a real user's home.
fn home_box(standard: &str, tag: &str) -> String {
    if is_root() {
        standard.to_string()
    } else {
        let (base, slash) = standard
            .strip_suffix('/')
            .map_or((standard, ""), |b| (b, "/"));
        format!("{base}-postern-{tag}{slash}")
    }
}

/// Removes a path in a home directory when the test ends, however it ends.
struct Cleanup(PathBuf);

impl Drop for Cleanup {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
        let _ = std::fs::remove_file(&self.0);
    }
}

fn names_in(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| {
            e.expect("dir entry")
                .file_name()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    v.sort();
    v
}

#[test]
fn home_maildir_gets_each_message_in_new_under_a_unique_name() {
    let u = user("pt-mdir1");
    let boxname = home_box("Maildir/", "mdir1");
    let maildir = u.home.join(&boxname);
    let _ = std::fs::remove_dir_all(&maildir);
    let _cleanup = Cleanup(maildir.clone());
    let inst = instance()
        .main_cf(&format!("home_mailbox = {boxname}"))
        .start();

    for i in 1..=3 {
        inst.send(
            &["-f", "sender@test.example", &u.name],
            &format!("Subject: maildir {i}\n\nFrom the body {i}\n>From kept\nline2\n"),
        );
    }
    // One message, two recipients that are the same mailbox: two copies, two names.
    inst.send(
        &[
            "-f",
            "sender@test.example",
            &u.name,
            &format!("{}@localhost", u.name),
        ],
        "Subject: maildir twice\n\nbody\n",
    );
    inst.wait_log(&["status=sent (delivered to maildir)"], 5);
    inst.wait_queue_empty();

    // tmp/ is where a message is written; after delivery nothing is left there.
    assert_eq!(
        names_in(&maildir.join("tmp")),
        Vec::<String>::new(),
        "leftovers in tmp/"
    );
    assert_eq!(names_in(&maildir.join("cur")), Vec::<String>::new());
    let names = names_in(&maildir.join("new"));
    assert_eq!(names.len(), 5, "{names:?}");
    assert_eq!(
        names.iter().collect::<HashSet<_>>().len(),
        5,
        "names must differ: {names:?}"
    );
    for n in &names {
        // <seconds>.<unique part>.<host>, nothing a Maildir reader would misread.
        let first = n.split('.').next().unwrap_or("");
        assert!(
            !first.is_empty() && first.bytes().all(|b| b.is_ascii_digit()),
            "{n}"
        );
        assert!(
            n.split('.').count() >= 3 && !n.contains(':') && !n.contains('/'),
            "{n}"
        );
        let meta = std::fs::metadata(maildir.join("new").join(n)).expect("stat");
        assert_eq!(meta.uid(), u.uid, "{n} belongs to the recipient");
        assert_eq!(
            meta.permissions().mode() & 0o077,
            0,
            "{n} is private: {:o}",
            meta.permissions().mode()
        );
    }
    for sub in ["tmp", "new", "cur"] {
        let meta = std::fs::metadata(maildir.join(sub)).expect("stat");
        assert_eq!(meta.permissions().mode() & 0o777, 0o700, "{sub}/");
        assert_eq!(meta.uid(), u.uid, "{sub}/ belongs to the recipient");
    }

    let msgs = read_maildir(&maildir);
    assert_eq!(msgs.len(), 5);
    let subjects: HashSet<&str> = msgs.iter().filter_map(|m| m.header("Subject")).collect();
    for s in ["maildir 1", "maildir 2", "maildir 3", "maildir twice"] {
        assert!(subjects.contains(s), "{s} missing: {subjects:?}");
    }
    let first = msgs
        .iter()
        .find(|m| m.header("Subject") == Some("maildir 1"))
        .expect("maildir 1");
    assert_eq!(first.header("Return-Path"), Some("<sender@test.example>"));
    assert_eq!(first.header("X-Original-To"), Some(u.name.as_str()));
    assert_eq!(
        first.header("Delivered-To"),
        Some(format!("{}@test.example", u.name).as_str())
    );
    // No mbox quoting in a Maildir.
    assert_eq!(first.body, "From the body 1\n>From kept\nline2\n");
    let twice: Vec<_> = msgs
        .iter()
        .filter(|m| m.header("Subject") == Some("maildir twice"))
        .collect();
    assert_eq!(twice.len(), 2);
    let mut to: Vec<&str> = twice
        .iter()
        .filter_map(|m| m.header("Delivered-To"))
        .collect();
    to.sort();
    assert_eq!(
        to,
        [
            format!("{}@localhost", u.name),
            format!("{}@test.example", u.name)
        ]
    );

    // The file starts with the headers: no From_ line in a Maildir.
    let raw = std::fs::read_to_string(maildir.join("new").join(&names[0])).expect("read");
    assert!(
        raw.starts_with("Return-Path: <sender@test.example>\n"),
        "{raw}"
    );
    // Nothing went to the spool mbox.
    assert!(!inst.mailbox(&u.name).exists());
}

#[test]
fn spool_directory_ending_in_slash_is_a_maildir_per_user() {
    let u = user("pt-mdir2");
    let inst = instance().build();
    let spool = inst.root().join("maildirs");
    std::fs::create_dir(&spool).expect("mkdir");
    std::fs::set_permissions(&spool, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    inst.add_main_cf(&format!("mail_spool_directory = {}/", spool.display()));
    let mut inst = inst;
    inst.start();

    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: spool maildir\n\nbody\n",
    );
    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", u.name),
            "status=sent (delivered to maildir)",
        ],
        1,
    );

    let maildir = spool.join(&u.name);
    assert_eq!(names_in(&maildir.join("new")).len(), 1);
    assert!(names_in(&maildir.join("tmp")).is_empty());
    let msgs = read_maildir(&maildir);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("Subject"), Some("spool maildir"));
    assert_eq!(std::fs::metadata(&maildir).expect("stat").uid(), u.uid);
    // Not an mbox file next to it.
    assert!(!inst.root().join("mail").join(&u.name).exists());
}

#[test]
fn home_mailbox_without_slash_is_an_mbox_in_the_home() {
    let u = user("pt-mdir3");
    let boxname = home_box("Mailbox", "mdir3");
    let mbox = u.home.join(&boxname);
    let _ = std::fs::remove_file(&mbox);
    let _cleanup = Cleanup(mbox.clone());
    let inst = instance()
        .main_cf(&format!("home_mailbox = {boxname}"))
        .start();

    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: home mbox 1\n\nFrom here\n",
    );
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: home mbox 2\n\nbody\n",
    );
    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", u.name),
            "status=sent (delivered to mailbox)",
        ],
        2,
    );
    inst.wait_queue_empty();

    let msgs = read_mbox(&mbox);
    assert_eq!(msgs.len(), 2);
    // Two messages may be delivered in either order.
    let first = msgs
        .iter()
        .find(|m| m.header("Subject") == Some("home mbox 1"))
        .expect("home mbox 1");
    assert!(
        first.from_line.starts_with("sender@test.example "),
        "{}",
        first.from_line
    );
    // An mbox quotes From_ lines in the body.
    assert_eq!(first.body, ">From here\n");
    assert!(msgs
        .iter()
        .any(|m| m.header("Subject") == Some("home mbox 2")));
    let meta = std::fs::metadata(&mbox).expect("stat");
    assert_eq!(meta.uid(), u.uid);
    assert!(
        !inst.mailbox(&u.name).exists(),
        "the spool mbox is not used"
    );
}
