//! `postcat` shows a queue file as Postfix's does (/tmp/postfix-reference/postcat_*): by queue
//! ID with `-q` or by file path; the `*** ENVELOPE RECORDS ***` section (message_size with six
//! 15-wide fields, arrival time, full name, sender, each original_recipient followed by
//! `recipient` or, once delivered, `done_recipient`), the message between `*** MESSAGE CONTENTS
//! ***` and `*** HEADER EXTRACTED ***` / `*** MESSAGE FILE END ***`; `-e` the envelope only,
//! `-h` the header fields only and `-b` the empty line and the body only (both without banners);
//! a missing queue ID or file is a fatal error with exit status 1.
//!
//! The message content postcat shows is checked against the copy delivered to a mailbox.

use crate::common::*;
use testkit::json;

fn run_ok(inst: &Instance, args: &[&str]) -> String {
    let mut c = inst.command("postcat", args);
    c.env("TZ", "UTC");
    let out = testkit::run_with_input(c, b"");
    assert!(
        out.status.success(),
        "postcat {args:?}: {:?} {}",
        out.status,
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "postcat {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("UTF-8")
}

#[test]
fn postcat_shows_envelope_header_and_body_like_postfix() {
    let u = user("pt-cli");
    let mut inst = instance()
        .aliases("postmaster: root\ndeferme: \"|/bin/sh -c 'exit 75'\"\n")
        .build();
    let out = inst.run(
        "postconf",
        &[
            "-e",
            "minimal_backoff_time = 1h",
            "maximal_backoff_time = 1h",
        ],
        b"",
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    inst.start();
    inst.send(
        &[
            "-F",
            "Full Name",
            "-f",
            "sender@test.example",
            "deferme",
            &u.name,
        ],
        "Subject: postcat me\nX-Custom: 1\n\nbody line 1\nbody line 2\n",
    );
    let id = {
        let line = inst
            .wait_log(&["to=<deferme@test.example>", "status=deferred"], 1)
            .remove(0);
        let rest = &line[line.find("]: ").unwrap() + 3..];
        rest[..rest.find(':').unwrap()].to_string()
    };
    inst.wait_log(
        &[
            &format!("{id}: to=<{}@test.example>", u.name),
            "status=sent",
        ],
        1,
    );
    inst.wait_until("the message in deferred/", || {
        inst.queue_ids("deferred").contains(&id).then_some(())
    });
    let j =
        json::parse(String::from_utf8_lossy(&inst.run("postqueue", &["-j"], b"").stdout).trim())
            .expect("one JSON line");
    assert_eq!(j.get("queue_id").as_str(), id);
    let label = format!("deferred/{id}");

    let all = run_ok(&inst, &["-q", &id]);
    let lines: Vec<&str> = all.lines().collect();
    assert_eq!(lines[0], format!("*** ENVELOPE RECORDS {label} ***"));
    // message_size: six fields, each " %15ld"; the first is the message size, the third the
    // number of recipients.
    let sizes = lines[1]
        .strip_prefix("message_size:")
        .expect("message_size record first");
    assert_eq!(sizes.len(), 6 * 16, "{:?}", lines[1]);
    let fields: Vec<u64> = sizes
        .as_bytes()
        .chunks(16)
        .map(|f| {
            let f = std::str::from_utf8(f).unwrap();
            assert!(f.starts_with(' '), "{:?}", lines[1]);
            f.trim().parse().expect("number")
        })
        .collect();
    assert_eq!(fields[0], j.get("message_size").as_f64() as u64);
    assert_eq!(fields[2], 2);
    let arrival = jiff::Timestamp::from_second(j.get("arrival_time").as_f64() as i64)
        .unwrap()
        .to_zoned_datetime(jiff::tz::TimeZone::UTC)
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string();
    assert_eq!(lines[2], format!("message_arrival_time: {arrival}"));
    let contents = lines
        .iter()
        .position(|l| *l == format!("*** MESSAGE CONTENTS {label} ***"))
        .expect("contents banner");
    let envelope = &lines[1..contents];
    for want in [
        "sender_fullname: Full Name",
        "sender: sender@test.example",
        "named_attribute: rewrite_context=local",
    ] {
        assert!(envelope.contains(&want), "{want:?} in {envelope:#?}");
    }
    let pos = |l: &str| {
        envelope
            .iter()
            .position(|x| *x == l)
            .unwrap_or_else(|| panic!("{l:?} in {envelope:#?}"))
    };
    assert_eq!(
        pos("recipient: deferme@test.example"),
        pos("original_recipient: deferme") + 1
    );
    assert_eq!(
        pos(&format!("done_recipient: {}@test.example", u.name)),
        pos(&format!("original_recipient: {}", u.name)) + 1,
        "a delivered recipient is a done_recipient"
    );
    assert_eq!(
        lines[lines.len() - 2],
        format!("*** HEADER EXTRACTED {label} ***")
    );
    assert_eq!(
        lines[lines.len() - 1],
        format!("*** MESSAGE FILE END {label} ***")
    );

    // -h and -b: no banners; the header fields, then the empty line and the body.
    let head = run_ok(&inst, &["-h", "-q", &id]);
    let body = run_ok(&inst, &["-b", "-q", &id]);
    assert!(head.starts_with("Received: by test.example"), "{head}");
    assert!(
        head.contains("\nSubject: postcat me\nX-Custom: 1\n"),
        "{head}"
    );
    assert!(
        head.contains(&format!("\nMessage-Id: <{id}@test.example>\n")),
        "{head}"
    );
    assert!(
        head.contains("\nFrom: Full Name <sender@test.example>\n"),
        "{head}"
    );
    assert!(
        head.ends_with('\n') && !head.ends_with("\n\n") && !head.contains("***"),
        "{head:?}"
    );
    assert_eq!(body, "\nbody line 1\nbody line 2\n");
    let banner = format!("*** MESSAGE CONTENTS {label} ***\n");
    let content_start = all.find(&banner).unwrap() + banner.len();
    let content_end = all
        .find(&format!("*** HEADER EXTRACTED {label} ***"))
        .unwrap();
    assert_eq!(
        &all[content_start..content_end],
        format!("{head}{body}"),
        "the full output holds header and body"
    );

    // The content is what the mailbox received after its delivery headers.
    let mbox = std::fs::read_to_string(inst.mailbox(&u.name)).expect("mbox");
    let delivered = &mbox[mbox.find("\nReceived: ").expect("Received in mbox") + 1..];
    assert_eq!(
        delivered,
        format!("{head}{body}\n"),
        "mbox copy = queue content + the mbox's blank line"
    );

    // -e: the envelope and the banners, no content.
    let env = run_ok(&inst, &["-e", "-q", &id]);
    let mut want = lines[..=contents].join("\n");
    want.push_str(&format!(
        "\n*** HEADER EXTRACTED {label} ***\n*** MESSAGE FILE END {label} ***\n"
    ));
    assert_eq!(env, want);
    assert_eq!(run_ok(&inst, &["-e", "-h", "-b", "-q", &id]), all);

    // A file path instead of a queue ID: the same records, labelled with the path.
    let path = inst.spool().join("deferred").join(&id);
    let by_path = run_ok(&inst, &[path.to_str().unwrap()]);
    assert_eq!(by_path, all.replace(&label, path.to_str().unwrap()));
}

#[test]
fn postcat_of_a_missing_message_is_fatal() {
    let inst = instance().start();
    let out = inst.run("postcat", &["-q", "0000000000A"], b"");
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        "postcat: fatal: open queue file 0000000000A: No such file or directory\n"
    );
    let missing = inst.root().join("no-such-queue-file");
    let out = inst.run("postcat", &[missing.to_str().unwrap()], b"");
    assert_eq!(out.status.code(), Some(1));
    assert_eq!(
        String::from_utf8_lossy(&out.stderr),
        format!(
            "postcat: fatal: open {}: No such file or directory\n",
            missing.display()
        )
    );
}
