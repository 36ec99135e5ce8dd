//! Per-user forwarding with `~/.forward`, as local(8) does it: the addresses listed there
//! replace mailbox delivery (`user` elsewhere), `\user` keeps a copy in the user's own
//! mailbox, an empty `.forward` means plain mailbox delivery, `|command` and `/file` entries
//! run as the user (allowed by the default `allow_mail_to_commands/files = alias, forward`),
//! and `forward_path` with `recipient_delimiter` picks `.forward+ext` for `user+ext`.
//!
//! As root each test has accounts of its own and uses the standard file names. Run as an
//! ordinary user every account is that user and its real home is used: the tests then point
//! `forward_path` at files of their own (`.forward-postern-…`), removed afterwards, and where
//! two accounts would be needed the single-user outcome is asserted.

use std::os::unix::fs::MetadataExt;

use crate::common::*;

/// A forward file for this test: `(file name in the home, main.cf lines)`. As root, the
/// standard `.forward` with the default forward_path.
struct Forward {
    name: String,
    cf: Option<String>,
}

impl Forward {
    fn new(tag: &str) -> Forward {
        if is_root() {
            return Forward {
                name: ".forward".into(),
                cf: None,
            };
        }
        let name = format!(".forward-postern-{tag}");
        Forward {
            cf: Some(format!(
                "forward_path = $home/{name}${{recipient_delimiter}}${{extension}}, $home/{name}"
            )),
            name,
        }
    }

    fn builder(&self) -> testkit::Builder {
        let b = instance();
        match &self.cf {
            Some(l) => b.main_cf(l),
            None => b,
        }
    }
}

/// Removes the listed home files when the test ends.
struct Cleanup(User, Vec<String>);

impl Drop for Cleanup {
    fn drop(&mut self) {
        for n in &self.1 {
            self.0.remove_home_file(n);
        }
    }
}

/// Subjects in `u`'s mailbox, sorted: separate messages may be delivered in any order.
fn subjects(inst: &Instance, u: &User) -> Vec<String> {
    let mut v: Vec<String> = read_mbox(&inst.mailbox(&u.name))
        .iter()
        .filter_map(|m| m.header("Subject").map(str::to_string))
        .collect();
    v.sort();
    v
}

#[test]
fn forward_to_another_user() {
    let from = user("pt-fwd1");
    let to = user("pt-fwd2");
    let fwd = Forward::new("fwd1");
    let _c = Cleanup(from.clone(), vec![fwd.name.clone()]);
    from.write_home_file(&fwd.name, &format!("{}\n", to.name));
    let inst = fwd.builder().start();
    inst.send(
        &["-f", "sender@test.example", &from.name],
        "Subject: forwarded\n\nbody\n",
    );

    let line = &inst.wait_log(
        &[
            &format!("to=<{}@test.example>", to.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    )[0];
    assert!(line.contains(&format!("orig_to=<{}>", from.name)), "{line}");
    inst.wait_queue_empty();
    if from.name == to.name {
        // One account (not root): a .forward naming its owner means the mailbox.
        assert_eq!(subjects(&inst, &to), ["forwarded"]);
    } else {
        assert_eq!(subjects(&inst, &to), ["forwarded"]);
        assert!(
            subjects(&inst, &from).is_empty(),
            "no copy stays with the forwarding user"
        );
        let m = &read_mbox(&inst.mailbox(&to.name))[0];
        assert!(
            m.headers_named("Delivered-To")
                .contains(&format!("{}@test.example", from.name).as_str()),
            "the forwarding address is recorded: {:?}",
            m.headers
        );
    }
}

#[test]
fn backslash_user_keeps_a_copy() {
    let me = user("pt-fwd3");
    let other = user("pt-fwd4");
    let fwd = Forward::new("fwd3");
    let _c = Cleanup(me.clone(), vec![fwd.name.clone()]);
    me.write_home_file(&fwd.name, &format!("\\{}, {}\n", me.name, other.name));
    let inst = fwd.builder().start();
    inst.send(
        &["-f", "sender@test.example", &me.name],
        "Subject: keep a copy\n\nbody\n",
    );

    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", me.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );
    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", other.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );
    inst.wait_queue_empty();
    assert!(
        inst.log_lines(&["loop"]).is_empty(),
        "\\user is not a loop:\n{}",
        inst.log()
    );
    assert_eq!(
        subjects(&inst, &me),
        ["keep a copy"],
        "the copy kept by \\user"
    );
    if me.name != other.name {
        assert_eq!(subjects(&inst, &other), ["keep a copy"]);
    }
}

#[test]
fn an_empty_forward_file_means_the_mailbox() {
    let u = user("pt-fwd5");
    let fwd = Forward::new("fwd5");
    let _c = Cleanup(u.clone(), vec![fwd.name.clone()]);
    u.write_home_file(&fwd.name, "");
    let inst = fwd.builder().start();
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: empty forward\n\nbody\n",
    );
    let line = &inst.wait_log(
        &[&format!("to=<{}@test.example>", u.name), "relay=local"],
        1,
    )[0];
    assert!(
        line.contains("status=sent (delivered to mailbox)"),
        "{line}"
    );
    inst.wait_queue_empty();
    assert_eq!(subjects(&inst, &u), ["empty forward"]);
}

#[test]
fn command_and_file_in_forward_run_as_the_user() {
    let u = user("pt-fwd6");
    let probe = Probe::new();
    let file = probe.out("fwd6.mbox");
    let fwd = Forward::new("fwd6");
    let _c = Cleanup(u.clone(), vec![fwd.name.clone()]);
    u.write_home_file(
        &fwd.name,
        &format!("\"|{}\"\n{}\n", probe.command("fwd6-cmd"), file.display()),
    );
    let inst = fwd.builder().start();
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: to my programs\n\nFrom me\n",
    );

    let to = format!("to=<{}@test.example>", u.name);
    inst.wait_log(
        &[
            &to,
            &format!(
                "status=sent (delivered to command: {})",
                probe.command("fwd6-cmd")
            ),
        ],
        1,
    );
    inst.wait_log(
        &[
            &to,
            &format!("status=sent (delivered to file: {})", file.display()),
        ],
        1,
    );
    inst.wait_queue_empty();
    assert!(
        !inst.mailbox(&u.name).exists(),
        "a .forward replaces the mailbox"
    );

    let rec = probe.wait(&inst, "fwd6-cmd");
    assert_eq!(
        (rec.uid, rec.gid),
        (u.uid, u.gid),
        "the command runs as the user"
    );
    assert_eq!(rec.env("USER"), Some(u.name.as_str()));
    assert_eq!(rec.env("LOGNAME"), Some(u.name.as_str()));
    assert_eq!(rec.env("HOME"), Some(u.home.to_string_lossy().as_ref()));
    assert_eq!(
        rec.env("RECIPIENT"),
        Some(format!("{}@test.example", u.name).as_str())
    );
    assert_eq!(rec.env("SENDER"), Some("sender@test.example"));
    assert!(rec.input.ends_with("\n\nFrom me\n"), "{}", rec.input);

    let meta = std::fs::metadata(&file).expect("the file destination was written");
    assert_eq!(
        (meta.uid(), meta.gid()),
        (u.uid, u.gid),
        "the file is written as the user"
    );
    let msgs = read_mbox(&file);
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("Subject"), Some("to my programs"));
    assert_eq!(msgs[0].body, ">From me\n");
}

#[test]
fn forward_path_picks_the_file_for_the_address_extension() {
    let u = user("pt-fwd7");
    let probe = Probe::new();
    let lists = probe.out("lists.mbox");
    let fwd = Forward::new("fwd7");
    let ext_file = format!("{}+lists", fwd.name);
    let _c = Cleanup(u.clone(), vec![fwd.name.clone(), ext_file.clone()]);
    u.write_home_file(&ext_file, &format!("{}\n", lists.display()));
    u.write_home_file(&fwd.name, &format!("\\{}\n", u.name));
    let inst = fwd.builder().main_cf("recipient_delimiter = +").start();

    inst.send(
        &["-f", "sender@test.example", &format!("{}+lists", u.name)],
        "Subject: for lists\n\nbody\n",
    );
    inst.send(
        &["-f", "sender@test.example", &format!("{}+other", u.name)],
        "Subject: for other\n\nbody\n",
    );
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: plain\n\nbody\n",
    );

    let l = &inst.wait_log(
        &[
            &format!("to=<{}+lists@test.example>", u.name),
            "relay=local",
        ],
        1,
    )[0];
    assert!(
        l.contains(&format!(
            "status=sent (delivered to file: {})",
            lists.display()
        )),
        "{l}"
    );
    inst.wait_log(&["status=sent (delivered to mailbox)"], 2);
    inst.wait_queue_empty();

    let in_file = read_mbox(&lists);
    assert_eq!(in_file.len(), 1);
    assert_eq!(in_file[0].header("Subject"), Some("for lists"));
    assert_eq!(
        in_file[0].header("Delivered-To"),
        Some(format!("{}+lists@test.example", u.name).as_str())
    );
    // Without a .forward+other, user+other falls back to .forward, like the bare address.
    assert_eq!(subjects(&inst, &u), ["for other", "plain"]);
}
