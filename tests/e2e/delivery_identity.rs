//! Who a local delivery runs as (local(8) DELIVERY RIGHTS). Started as root: a mailbox or
//! Maildir file is created by and belongs to the recipient, a `.forward` command runs with the
//! recipient's uid and gid, a command from a root-owned alias database runs as
//! `default_privs` (and as the database's owner when an ordinary user owns it), and mail for
//! root runs as `default_privs`, never as root. Started by an ordinary user: all of it runs
//! as that user. Whoever runs it, commands and files never come from an address: `"|cmd"@…`
//! and `/path` recipients on the sendmail command line are just unknown users.

use std::os::unix::fs::{MetadataExt, PermissionsExt};

use crate::common::*;

/// The uid/gid a delivery for `u` must have.
fn expected(u: &User) -> (u32, u32) {
    if is_root() {
        (u.uid, u.gid)
    } else {
        my_ids()
    }
}

fn set_aliases(inst: &Instance, text: &str) {
    std::fs::write(inst.config_dir().join("aliases"), text).expect("write aliases");
    let out = inst.run("newaliases", &[], b"");
    assert!(
        out.status.success(),
        "newaliases: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn mailbox_and_maildir_files_belong_to_the_recipient() {
    let u = user("pt-ident1");
    let mut inst = instance().build();
    let maildirs = inst.root().join("maildirs");
    std::fs::create_dir(&maildirs).expect("mkdir");
    std::fs::set_permissions(&maildirs, std::fs::Permissions::from_mode(0o1777)).expect("chmod");
    inst.start();
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: mbox owner\n\nbody\n",
    );
    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", u.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );

    let meta = std::fs::metadata(inst.mailbox(&u.name)).expect("mbox");
    assert_eq!((meta.uid(), meta.gid()), expected(&u), "mbox owner");
    assert_eq!(meta.permissions().mode() & 0o777, 0o600);

    // The same with a Maildir per user in the spool directory.
    inst.stop();
    inst.add_main_cf(&format!("mail_spool_directory = {}/", maildirs.display()));
    inst.start();
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: maildir owner\n\nbody\n",
    );
    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", u.name),
            "status=sent (delivered to maildir)",
        ],
        1,
    );
    let new = maildirs.join(&u.name).join("new");
    let files: Vec<_> = std::fs::read_dir(&new)
        .expect("new/")
        .map(|e| e.expect("entry").path())
        .collect();
    assert_eq!(files.len(), 1);
    for p in [maildirs.join(&u.name), new.clone(), files[0].clone()] {
        let meta = std::fs::metadata(&p).expect("stat");
        assert_eq!((meta.uid(), meta.gid()), expected(&u), "{}", p.display());
    }
}

#[test]
fn a_forward_command_runs_as_the_recipient() {
    let u = user("pt-ident2");
    let probe = Probe::new();
    // forward_path points into the probe directory, so no real home is touched.
    let fwd = probe.dir().join(format!("forward.{}", u.name));
    std::fs::write(&fwd, format!("\"|{}\"\n", probe.command("fwd"))).expect("write forward");
    if is_root() {
        std::os::unix::fs::chown(&fwd, Some(u.uid), Some(u.gid)).expect("chown");
    }
    let inst = instance()
        .main_cf(&format!(
            "forward_path = {}/forward.$user",
            probe.dir().display()
        ))
        .start();
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: as whom\n\nbody\n",
    );
    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", u.name),
            "status=sent (delivered to command:",
        ],
        1,
    );
    let rec = probe.wait(&inst, "fwd");
    assert_eq!((rec.uid, rec.gid), expected(&u));
    assert_eq!(rec.env("USER"), Some(u.name.as_str()));
}

#[test]
fn alias_commands_run_as_default_privs_or_the_alias_database_owner() {
    let probe = Probe::new();
    let aliases = format!(
        "postmaster: root\nrootcmd: \"|{}\"\n",
        probe.command("alias-cmd")
    );
    let mut inst = instance().build();
    set_aliases(&inst, &aliases);
    inst.start();
    inst.send(
        &["-f", "sender@test.example", "rootcmd"],
        "Subject: alias command\n\nbody\n",
    );
    inst.wait_log(
        &[
            "to=<rootcmd@test.example>",
            "status=sent (delivered to command:",
        ],
        1,
    );
    let rec = probe.wait(&inst, "alias-cmd");
    let db = std::fs::metadata(inst.config_dir().join("aliases.db")).expect("aliases.db");
    if is_root() {
        assert_eq!(db.uid(), 0, "the test's alias database is root's");
        assert_eq!(
            (rec.uid, rec.gid),
            account_ids("nobody"),
            "default_privs = nobody"
        );
        assert!(
            rec.env("HOME").is_none(),
            "no user context for a root-owned alias"
        );
    } else {
        assert_eq!((rec.uid, rec.gid), my_ids());
    }
    drop(inst);

    // An alias database owned by an ordinary user: its commands run as that user.
    let owner = user("pt-ident3");
    let probe = Probe::new();
    let mut inst = instance().build();
    let src = inst.config_dir().join("aliases");
    std::fs::write(
        &src,
        format!(
            "postmaster: root\nusercmd: \"|{}\"\n",
            probe.command("owned-cmd")
        ),
    )
    .expect("write");
    if is_root() {
        std::os::unix::fs::chown(&src, Some(owner.uid), Some(owner.gid)).expect("chown");
    }
    let out = inst.run("newaliases", &[], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    if is_root() {
        let db = inst.config_dir().join("aliases.db");
        std::os::unix::fs::chown(&db, Some(owner.uid), Some(owner.gid)).expect("chown db");
    }
    inst.start();
    inst.send(
        &["-f", "sender@test.example", "usercmd"],
        "Subject: owned alias\n\nbody\n",
    );
    inst.wait_log(
        &[
            "to=<usercmd@test.example>",
            "status=sent (delivered to command:",
        ],
        1,
    );
    let rec = probe.wait(&inst, "owned-cmd");
    assert_eq!(
        (rec.uid, rec.gid),
        expected(&owner),
        "runs as the alias database owner"
    );
}

#[test]
fn mail_for_root_runs_as_default_privs() {
    let privs = user("pt-ident4");
    let probe = Probe::new();
    let inst = instance()
        .main_cf(&format!("default_privs = {}", privs.name))
        .main_cf(&format!("mailbox_command = {}", probe.command("root-mail")))
        .start();
    inst.send(
        &["-f", "sender@test.example", "root"],
        "Subject: for root\n\nbody\n",
    );
    inst.wait_log(
        &[
            "to=<root@test.example>",
            "status=sent (delivered to command:",
        ],
        1,
    );
    let rec = probe.wait(&inst, "root-mail");
    assert_ne!(rec.uid, 0, "never as root");
    assert_eq!((rec.uid, rec.gid), expected(&privs), "as default_privs");
    assert_eq!(rec.env("USER"), Some("root"), "still mail for root");
}

#[test]
fn commands_and_files_never_come_from_an_address() {
    let probe = Probe::new();
    let marker = |n: &str| probe.out(n);
    let inst = instance().start();
    let quoted_cmd = format!(
        "\"|touch {}\"@test.example",
        marker("by-quoted-command").display()
    );
    let quoted_file = format!("\"{}\"@test.example", marker("by-quoted-file").display());
    let bare_file = marker("by-bare-file").display().to_string();
    for rcpt in [&quoted_cmd, &quoted_file, &bare_file] {
        inst.send(
            &["-f", "sender@test.example", rcpt],
            "Subject: not a command\n\nbody\n",
        );
    }
    // Each is an unknown user (local parts are case-folded for the lookup).
    // (`"/path"@domain` needs no quotes: it is logged in its plain external form.)
    let plain_file = format!("{}@test.example", marker("by-quoted-file").display());
    for to in [
        quoted_cmd.clone(),
        plain_file,
        format!("{bare_file}@test.example"),
    ] {
        let line = &inst.wait_log(&[&format!("to=<{to}>"), "relay=local"], 1)[0];
        assert!(
            line.contains("dsn=5.1.1, status=bounced (unknown user: \""),
            "{line}"
        );
    }

    // A bare "|command" argument: refused by sendmail, or at most an unknown user.
    let bare_cmd = format!("|touch {}", marker("by-bare-command").display());
    let out = inst.run(
        "sendmail",
        &["-f", "sender@test.example", &bare_cmd],
        b"Subject: x\n\nbody\n",
    );
    assert!(
        out.status.success() || out.status.code() == Some(67),
        "{:?}",
        out.status
    );
    inst.wait_queue_empty();
    assert!(
        inst.log_lines(&["delivered to command"]).is_empty(),
        "{}",
        inst.log()
    );
    assert!(
        inst.log_lines(&["delivered to file"]).is_empty(),
        "{}",
        inst.log()
    );
    for n in [
        "by-quoted-command",
        "by-quoted-file",
        "by-bare-file",
        "by-bare-command",
    ] {
        assert!(!marker(n).exists(), "{n} was created");
    }
}
