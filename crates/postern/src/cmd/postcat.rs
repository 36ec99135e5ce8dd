//! postcat(1): show a queue file. `postcat [-c DIR] [-ehb] [-q] ID|FILE...`
//!
//! Output as Postfix's: `*** ENVELOPE RECORDS name ***` with Postfix's record names
//! (`message_size`, `message_arrival_time`, `sender`, `original_recipient`, `recipient` or
//! `done_recipient`, `named_attribute`), `*** MESSAGE CONTENTS name ***`, the message, then
//! the `HEADER EXTRACTED` and `MESSAGE FILE END` markers. `-e`, `-h`, `-b` select the envelope,
//! the header, the body; `-h` and `-b` alone print no markers.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use queue::{Queue, QueueName};

use crate::getopt::{getopt, Opt};
use crate::sysexits::*;
use crate::{fatal, load_config};

const PROG: &str = "postcat";

fn asctime(t: SystemTime) -> String {
    let ts = jiff::Timestamp::try_from(t).unwrap_or(jiff::Timestamp::UNIX_EPOCH);
    ts.to_zoned_datetime(jiff::tz::TimeZone::system())
        .strftime("%a %b %e %H:%M:%S %Y")
        .to_string()
}

pub fn main(args: &[String]) -> i32 {
    let (opts, operands) = match getopt(args, "bc:dehoqrsv") {
        Ok(x) => x,
        Err(e) => {
            return fatal(
                PROG,
                EX_USAGE,
                format!("usage: postcat [-bdehoqv] [-c config_dir] [files...]: {e}"),
            )
        }
    };
    let flag = |c| opts.contains(&Opt::Flag(c));
    let (mut e, mut h, mut b) = (flag('e'), flag('h'), flag('b'));
    if !e && !h && !b {
        (e, h, b) = (true, true, true);
    }
    let markers = e;
    let by_id = flag('q');
    let dir = opts.iter().find_map(|o| match o {
        Opt::Arg('c', d) => Some(PathBuf::from(d)),
        _ => None,
    });
    if operands.is_empty() {
        return fatal(
            PROG,
            EX_USAGE,
            "usage: postcat [-bdehoqv] [-c config_dir] [files...]",
        );
    }
    let queue = if by_id {
        match load_config(PROG, dir.as_deref()) {
            Ok(cfg) => Some(Queue::new(cfg.path("queue_directory"))),
            Err(code) => return code,
        }
    } else {
        None
    };
    let mut out = std::io::stdout().lock();
    for name in &operands {
        let (path, label) = match &queue {
            Some(q) => {
                let found = [
                    QueueName::Incoming,
                    QueueName::Active,
                    QueueName::Deferred,
                    QueueName::Hold,
                    QueueName::Maildrop,
                    QueueName::Corrupt,
                ]
                .into_iter()
                .find(|&qn| queue::id::is_valid(name) && q.file(qn, name).exists());
                match found {
                    Some(qn) => (q.file(qn, name), format!("{}/{name}", qn.as_str())),
                    None => {
                        return fatal(
                            PROG,
                            1,
                            format!("open queue file {name}: No such file or directory"),
                        )
                    }
                }
            }
            None => (PathBuf::from(name), name.clone()),
        };
        if let Err(msg) = show(&path, &label, e, h, b, markers, &mut out) {
            return fatal(PROG, 1, msg);
        }
    }
    EX_OK
}

fn show(
    path: &Path,
    label: &str,
    e: bool,
    h: bool,
    b: bool,
    markers: bool,
    out: &mut dyn Write,
) -> Result<(), String> {
    // An I/O error already reads "open PATH: reason", as Postfix's postcat reports it.
    let (qf, buf) = queue::read(path).map_err(|err| {
        if err.is_corrupt() {
            format!("open queue file {label}: {err}")
        } else {
            err.to_string()
        }
    })?;
    let d = &qf.decoded;
    let env = &d.envelope;
    let states = queue::replay(d);
    let content = &buf[d.content.clone()];
    let w = |out: &mut dyn Write, s: &str| out.write_all(s.as_bytes()).map_err(|e| e.to_string());
    if e {
        w(out, &format!("*** ENVELOPE RECORDS {label} ***\n"))?;
        w(
            out,
            &format!(
                "message_size: {:>15} {:>15} {:>15} {:>15} {:>15} {:>15}\n",
                content.len(),
                d.content.start,
                env.recipients.len(),
                0,
                content.len(),
                0
            ),
        )?;
        w(
            out,
            &format!("message_arrival_time: {}\n", asctime(env.arrival)),
        )?;
        w(out, &format!("create_time: {}\n", asctime(env.arrival)))?;
        for (n, v) in &env.attrs {
            w(out, &format!("named_attribute: {n}={v}\n"))?;
        }
        if let Some(f) = &env.full_name {
            w(out, &format!("sender_fullname: {f}\n"))?;
        }
        w(out, &format!("sender: {}\n", env.sender))?;
        for (r, st) in env.recipients.iter().zip(&states) {
            if !r.orcpt.is_empty() {
                w(
                    out,
                    &format!("named_attribute: dsn_orig_rcpt={}\n", r.orcpt),
                )?;
            }
            w(out, &format!("original_recipient: {}\n", r.orig))?;
            let kind = if st.is_final {
                "done_recipient"
            } else {
                "recipient"
            };
            w(out, &format!("{kind}: {}\n", r.address))?;
        }
    }
    if markers {
        w(out, &format!("*** MESSAGE CONTENTS {label} ***\n"))?;
    }
    let parsed = smtp::header::parse(content);
    let split = parsed.body_offset.min(content.len());
    // The empty line that ends the header belongs to the body as Postfix shows it: `-h` prints
    // the header fields alone, `-b` the empty line and then the body.
    let head = &content[..split];
    let (fields, separator): (&[u8], &[u8]) = match head.strip_suffix(b"\n") {
        Some(rest) if rest.is_empty() || rest.ends_with(b"\n") => (rest, b"\n"),
        _ => (head, b""),
    };
    if h {
        out.write_all(fields).map_err(|e| e.to_string())?;
    }
    if b {
        out.write_all(separator).map_err(|e| e.to_string())?;
        out.write_all(&content[split..])
            .map_err(|e| e.to_string())?;
    }
    if markers {
        w(out, &format!("*** HEADER EXTRACTED {label} ***\n"))?;
        w(out, &format!("*** MESSAGE FILE END {label} ***\n"))?;
    }
    Ok(())
}
