//! Alias expansion as aliases(5) and local(8) describe it: `name: a, b` lists,
//! `:include:/file`, `"|command"` (a real script that records what it received and its
//! environment), `/file` destinations (an mbox), an `owner-name` alias (envelope sender and
//! where delivery problems go), an alias that names itself (delivered to that user's mailbox,
//! not a loop), the indexed form built by `newaliases` being what counts (editing the source
//! alone changes nothing), a malformed line reported with file and line while the rest still
//! works, and commands and files in :include: files refused unless `allow_mail_to_commands`
//! and `allow_mail_to_files` name `include`.

use crate::common::*;

/// Write the instance's aliases file and index it; returns newaliases' stderr.
fn set_aliases(inst: &Instance, text: &str) -> String {
    std::fs::write(inst.config_dir().join("aliases"), text).expect("write aliases");
    let out = inst.run("newaliases", &[], b"");
    assert!(
        out.status.success(),
        "newaliases: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stderr).into_owned()
}

#[test]
fn list_include_command_and_file_destinations() {
    let a = user("pt-als1");
    let b = user("pt-als2");
    let probe = Probe::new();
    let include = probe.dir().join("members.inc");
    std::fs::write(&include, format!("# the members\n{}\n", b.name)).expect("write include");
    let file = probe.out("team.mbox");
    let mut inst = instance().build();
    set_aliases(
        &inst,
        &format!(
            "postmaster: root\n\
             team: {a}, {b}\n\
             incl: :include:{inc}\n\
             cmd: \"|{cmd}\"\n\
             tofile: {file}\n",
            a = a.name,
            b = b.name,
            inc = include.display(),
            cmd = probe.command("cmd"),
            file = file.display(),
        ),
    );
    inst.start();

    inst.send(
        &["-f", "sender@test.example", "team"],
        "Subject: to the team\n\nteam body\n",
    );
    inst.send(
        &["-f", "sender@test.example", "incl"],
        "Subject: included\n\ninclude body\n",
    );
    inst.send(
        &["-f", "sender@test.example", "cmd"],
        "Subject: to a command\n\nFrom the body\n",
    );
    inst.send(
        &["-f", "sender@test.example", "tofile"],
        "Subject: to a file\n\nFrom the body\n",
    );

    // name: a, b — each member is logged against the alias and gets one copy.
    let lines = inst.wait_log(
        &["orig_to=<team>", "status=sent (delivered to mailbox)"],
        if a.name == b.name { 1 } else { 2 },
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("to=<{}@test.example>", a.name))),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.contains(&format!("to=<{}@test.example>", b.name))),
        "{lines:?}"
    );
    // :include: — the member listed in the file is reached.
    inst.wait_log(
        &[
            "orig_to=<incl>",
            &format!("to=<{}@test.example>", b.name),
            "status=sent",
        ],
        1,
    );
    // |command
    let cmd_line = &inst.wait_log(
        &["to=<cmd@test.example>", "orig_to=<cmd>", "relay=local"],
        1,
    )[0];
    assert!(
        cmd_line.contains(&format!(
            "dsn=2.0.0, status=sent (delivered to command: {})",
            probe.command("cmd")
        )),
        "{cmd_line}"
    );
    // /file
    let file_line = &inst.wait_log(&["to=<tofile@test.example>", "orig_to=<tofile>"], 1)[0];
    assert!(
        file_line.contains(&format!(
            "dsn=2.0.0, status=sent (delivered to file: {})",
            file.display()
        )),
        "{file_line}"
    );
    inst.wait_queue_empty();

    // Subjects in each mailbox, sorted: separate messages may be delivered in any order.
    let subjects = |u: &User| -> Vec<String> {
        let mut v: Vec<String> = read_mbox(&inst.mailbox(&u.name))
            .iter()
            .filter_map(|m| m.header("Subject").map(str::to_string))
            .collect();
        v.sort();
        v
    };
    if a.name == b.name {
        // One account stands for both members (not run as root): still one copy each.
        assert_eq!(subjects(&a), ["included", "to the team"]);
    } else {
        assert_eq!(subjects(&a), ["to the team"]);
        assert_eq!(subjects(&b), ["included", "to the team"]);
    }
    let team = read_mbox(&inst.mailbox(&a.name));
    let team = team
        .iter()
        .find(|m| m.header("Subject") == Some("to the team"))
        .expect("team copy");
    // The alias member's copy names the alias as the recipient (frozen_delivered_to).
    assert_eq!(team.header("X-Original-To"), Some("team"));
    assert_eq!(team.header("Delivered-To"), Some("team@test.example"));

    // The command got the message on stdin (From_ line first, no quoting) and local(8)'s
    // environment.
    let rec = probe.wait(&inst, "cmd");
    assert!(
        rec.input.starts_with("From sender@test.example  "),
        "{}",
        rec.input
    );
    assert!(
        rec.input.contains("\nReturn-Path: <sender@test.example>\n"),
        "{}",
        rec.input
    );
    assert!(
        rec.input.contains("\nX-Original-To: cmd\n"),
        "{}",
        rec.input
    );
    assert!(
        rec.input.contains("\nSubject: to a command\n"),
        "{}",
        rec.input
    );
    assert!(rec.input.ends_with("\n\nFrom the body\n"), "{}", rec.input);
    assert_eq!(rec.env("SENDER"), Some("sender@test.example"));
    assert_eq!(rec.env("RECIPIENT"), Some("cmd@test.example"));
    assert_eq!(rec.env("LOCAL"), Some("cmd"));
    assert_eq!(rec.env("DOMAIN"), Some("test.example"));
    assert_eq!(rec.env("ORIGINAL_RECIPIENT"), Some("cmd"));
    assert!(rec.env("PATH").is_some());

    // The file destination is an mbox, appended like a mailbox.
    let msgs = read_mbox(&file);
    assert_eq!(msgs.len(), 1);
    assert!(
        msgs[0].from_line.starts_with("sender@test.example "),
        "{}",
        msgs[0].from_line
    );
    assert_eq!(msgs[0].header("Subject"), Some("to a file"));
    assert_eq!(msgs[0].header("Delivered-To"), Some("tofile@test.example"));
    assert_eq!(msgs[0].body, ">From the body\n");
}

#[test]
fn owner_alias_receives_the_delivery_problems_and_is_the_envelope_sender() {
    let member = user("pt-als3");
    let owner = user("pt-als4");
    let sender = user("pt-als5");
    let mut inst = instance().build();
    set_aliases(
        &inst,
        &format!(
            "postmaster: root\n\
             list: {m}, pt-nosuch-member\n\
             owner-list: {o}\n",
            m = member.name,
            o = owner.name,
        ),
    );
    inst.start();
    inst.send(
        &["-f", &format!("{}@test.example", sender.name), "list"],
        "Subject: to the list\n\nlist body\n",
    );

    inst.wait_log(
        &[
            "to=<pt-nosuch-member@test.example>",
            "dsn=5.1.1",
            "status=bounced",
        ],
        1,
    );
    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", member.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );
    inst.wait_log(&["sender non-delivery notification"], 1);
    inst.wait_queue_empty();

    // The member's copy carries owner-list as the envelope sender.
    let copy: Vec<_> = read_mbox(&inst.mailbox(&member.name))
        .into_iter()
        .filter(|m| m.header("Subject") == Some("to the list"))
        .collect();
    assert_eq!(copy.len(), 1);
    assert_eq!(
        copy[0].header("Return-Path"),
        Some("<owner-list@test.example>")
    );
    assert!(
        copy[0].from_line.starts_with("owner-list@test.example "),
        "{}",
        copy[0].from_line
    );

    // The failure notice goes to the owner, not to the sender.
    let notices: Vec<_> = read_mime_mbox(&inst.mailbox(&owner.name))
        .into_iter()
        .filter(|m| m.report_type == "delivery-status")
        .collect();
    assert_eq!(notices.len(), 1, "one notice for the owner");
    let report = notices[0]
        .part("message/delivery-status")
        .expect("delivery-status part");
    assert!(report.fields.iter().skip(1).any(|b| b
        .iter()
        .any(|(k, v)| k.eq_ignore_ascii_case("Final-Recipient")
            && v.contains("pt-nosuch-member@test.example"))));
    if sender.name != owner.name {
        let to_sender = read_mime_mbox(&inst.mailbox(&sender.name));
        assert!(
            to_sender.iter().all(|m| m.report_type != "delivery-status"),
            "the sender gets no notice when the list has an owner"
        );
    }
}

#[test]
fn an_alias_that_lists_itself_delivers_to_that_users_mailbox() {
    let u = user("pt-als6");
    let probe = Probe::new();
    let copy = probe.out("copy.mbox");
    let mut inst = instance().build();
    set_aliases(
        &inst,
        &format!(
            "postmaster: root\n{u}: {u}, {copy}\n",
            u = u.name,
            copy = copy.display()
        ),
    );
    inst.start();
    inst.send(
        &["-f", "sender@test.example", &u.name],
        "Subject: keep a copy\n\nbody\n",
    );

    inst.wait_log(
        &[
            &format!("to=<{}@test.example>", u.name),
            "status=sent (delivered to mailbox)",
        ],
        1,
    );
    inst.wait_log(&["status=sent (delivered to file:"], 1);
    inst.wait_queue_empty();
    assert!(
        inst.log_lines(&["loop"]).is_empty(),
        "not a loop:\n{}",
        inst.log()
    );
    let msgs = read_mbox(&inst.mailbox(&u.name));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("Subject"), Some("keep a copy"));
    assert_eq!(read_mbox(&copy).len(), 1);
}

#[test]
fn aliases_take_effect_only_after_newaliases() {
    let u = user("pt-als7");
    let probe = Probe::new();
    let after = probe.out("after.mbox");
    let mut inst = instance().build();
    let path = inst.config_dir().join("aliases");
    set_aliases(&inst, &format!("postmaster: root\nmoving: {}\n", u.name));
    inst.start();

    inst.send(
        &["-f", "sender@test.example", "moving"],
        "Subject: before\n\nbody\n",
    );
    inst.wait_log(
        &["orig_to=<moving>", "status=sent (delivered to mailbox)"],
        1,
    );

    // Edit the source only: the daemon keeps using the indexed file.
    std::fs::write(
        &path,
        format!("postmaster: root\nmoving: {}\n", after.display()),
    )
    .expect("edit aliases");
    inst.send(
        &["-f", "sender@test.example", "moving"],
        "Subject: edited\n\nbody\n",
    );
    inst.wait_log(
        &["orig_to=<moving>", "status=sent (delivered to mailbox)"],
        2,
    );
    assert!(!after.exists(), "the unindexed edit must not be used");

    // Rebuild: from now on the new destination is used. The daemon notices a changed table
    // when it next checks it, so probe until a message goes there; none may be lost.
    let out = inst.run("newaliases", &[], b"");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut sent = 2;
    inst.wait_until("the rebuilt aliases to be used", || {
        sent += 1;
        inst.send(
            &["-f", "sender@test.example", "moving"],
            &format!("Subject: probe {sent}\n\nbody\n"),
        );
        inst.wait_log(&["orig_to=<moving>", "status=sent"], sent);
        after.exists().then_some(())
    });
    inst.wait_queue_empty();
    let in_mailbox = read_mbox(&inst.mailbox(&u.name)).len();
    let in_file = read_mbox(&after);
    assert_eq!(
        in_file.len(),
        1,
        "only the last probe goes to the new destination"
    );
    assert_eq!(
        in_file[0].header("Subject"),
        Some(format!("probe {sent}").as_str())
    );
    assert_eq!(
        in_mailbox + in_file.len(),
        sent,
        "every message is delivered once"
    );
}

#[test]
fn a_malformed_line_is_reported_with_file_and_line_and_the_rest_works() {
    let u = user("pt-als8");
    let mut inst = instance().build();
    let path = inst.config_dir().join("aliases");
    let stderr = set_aliases(
        &inst,
        &format!(
            "postmaster: root\n\
             # a comment\n\
             before: {u}\n\
             this line has no colon\n\
             after: {u}\n",
            u = u.name
        ),
    );
    assert_eq!(
        stderr.trim_end(),
        format!(
            "postalias: warning: {}, line 4: need name:value pair",
            path.display()
        ),
        "newaliases warns like Postfix and goes on"
    );
    inst.start();
    inst.send(
        &["-f", "sender@test.example", "before", "after"],
        "Subject: both work\n\nbody\n",
    );
    inst.wait_log(
        &["orig_to=<before>", "status=sent (delivered to mailbox)"],
        1,
    );
    inst.wait_log(
        &["orig_to=<after>", "status=sent (delivered to mailbox)"],
        1,
    );
    inst.wait_queue_empty();
    // Two recipients of one message reaching one mailbox: two copies, as Postfix.
    assert_eq!(read_mbox(&inst.mailbox(&u.name)).len(), 2);
}

#[test]
fn commands_and_files_from_include_files_need_allow_include() {
    let probe = Probe::new();
    let include = probe.dir().join("dest.inc");
    std::fs::write(
        &include,
        format!(
            "\"|{}\"\n{}\n",
            probe.command("from-include"),
            probe.out("include-file.mbox").display()
        ),
    )
    .expect("write include");
    let aliases = format!("postmaster: root\nincl: :include:{}\n", include.display());

    // Default: allow_mail_to_commands = alias, forward; allow_mail_to_files = alias, forward.
    let mut inst = instance().build();
    set_aliases(&inst, &aliases);
    inst.start();
    inst.send(
        &["-f", "sender@test.example", "incl"],
        "Subject: restricted\n\nbody\n",
    );
    let cmd = inst.wait_log(&["orig_to=<incl>", "mail to command is restricted"], 1);
    assert!(cmd[0].contains("dsn=5.7.1, status=bounced"), "{}", cmd[0]);
    let file = inst.wait_log(&["orig_to=<incl>", "mail to file is restricted"], 1);
    assert!(file[0].contains("dsn=5.7.1, status=bounced"), "{}", file[0]);
    inst.wait_queue_empty();
    assert!(
        !probe.out("from-include").exists(),
        "the command must not run"
    );
    assert!(
        !probe.out("include-file.mbox").exists(),
        "the file must not be written"
    );
    drop(inst);

    // Allowed when configured.
    let mut inst = instance()
        .main_cf("allow_mail_to_commands = alias, forward, include")
        .main_cf("allow_mail_to_files = alias, forward, include")
        .build();
    set_aliases(&inst, &aliases);
    inst.start();
    inst.send(
        &["-f", "sender@test.example", "incl"],
        "Subject: allowed\n\nbody\n",
    );
    inst.wait_log(&["orig_to=<incl>", "status=sent (delivered to command:"], 1);
    inst.wait_log(&["orig_to=<incl>", "status=sent (delivered to file:"], 1);
    let rec = probe.wait(&inst, "from-include");
    assert!(rec.input.contains("\nSubject: allowed\n"), "{}", rec.input);
    let msgs = read_mbox(&probe.out("include-file.mbox"));
    assert_eq!(msgs.len(), 1);
    assert_eq!(msgs[0].header("Subject"), Some("allowed"));
}
