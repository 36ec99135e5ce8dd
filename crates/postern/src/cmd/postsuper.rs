//! postsuper(1): queue maintenance.
//!
//! `postsuper [-c DIR] [-d ID] [-h ID] [-H ID] [-r ID] [-p] [-s] [queue...]`, where ID is a
//! queue ID, `ALL`, or `-` (IDs read from standard input, one per line, as produced by
//! `postqueue -j | jq`). `-d` deletes, `-h` puts on hold, `-H` releases from hold (to
//! `deferred/`, due now), `-r` requeues (to `maildrop/`, so pickup and cleanup process it again;
//! recipients already delivered stay delivered). Optional queue names limit where IDs are
//! looked for. `-p` purges temporary files left by crashes, `-s` checks the queue structure.
//!
//! Reserved to the superuser, as in Postfix, or to the owner of the queue directory for a
//! single-user instance. Each action is logged and summarized on stderr as Postfix does.

use std::collections::BTreeSet;
use std::io::BufRead;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::time::{Duration, SystemTime};

use queue::{Queue, QueueName};

use crate::getopt::{getopt, Opt};
use crate::sysexits::*;
use crate::{fatal, load_config};

const PROG: &str = "postsuper";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Op {
    Delete,
    Hold,
    Release,
    Requeue,
}

impl Op {
    /// Queues an operation looks in by default (postsuper(1)).
    fn default_queues(self) -> &'static [QueueName] {
        match self {
            Op::Delete => &[
                QueueName::Hold,
                QueueName::Incoming,
                QueueName::Active,
                QueueName::Deferred,
            ],
            Op::Hold => &[QueueName::Incoming, QueueName::Active, QueueName::Deferred],
            Op::Release => &[QueueName::Hold],
            Op::Requeue => &[
                QueueName::Hold,
                QueueName::Incoming,
                QueueName::Active,
                QueueName::Deferred,
            ],
        }
    }
    fn summary(self) -> &'static str {
        match self {
            Op::Delete => "Deleted",
            Op::Hold => "Placed on hold",
            Op::Release => "Released from hold",
            Op::Requeue => "Requeued",
        }
    }
}

pub fn main(args: &[String]) -> i32 {
    let (opts, operands) = match getopt(args, "c:d:e:f:h:H:pr:sSv") {
        Ok(x) => x,
        Err(e) => return fatal(PROG, EX_USAGE, format!("usage: postsuper [-psSv] [-c config_dir] [-d queue_id] [-e queue_id] [-f queue_id] [-h queue_id] [-H queue_id] [-r queue_id] [queue...]: {e}")),
    };
    let dir = opts.iter().find_map(|o| match o {
        Opt::Arg('c', d) => Some(PathBuf::from(d)),
        _ => None,
    });
    let cfg = match load_config(PROG, dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    crate::init_cli_logging(&cfg);
    let queue = Queue::new(cfg.path("queue_directory"));
    let euid = nix::unistd::geteuid();
    let owner = std::fs::metadata(queue.root()).map(|m| m.uid()).ok();
    if !euid.is_root() && owner != Some(euid.as_raw()) {
        return fatal(
            PROG,
            EX_NOPERM,
            "use of this command is reserved for the superuser",
        );
    }
    let mut restrict = Vec::new();
    for name in &operands {
        match QueueName::parse(name) {
            Some(q) => restrict.push(q),
            None => return fatal(PROG, 1, format!("invalid directory name: {name}")),
        }
    }
    let mut stdin_ids: Option<Vec<String>> = None;
    let mut status = EX_OK;
    let mut did_anything = false;
    // Messages handled per operation, in the order the operations were first named.
    let mut totals: Vec<(Op, usize)> = Vec::new();
    for opt in &opts {
        let (op, arg) = match opt {
            Opt::Arg('d', a) => (Op::Delete, a),
            Opt::Arg('h', a) => (Op::Hold, a),
            Opt::Arg('H', a) => (Op::Release, a),
            Opt::Arg('r', a) => (Op::Requeue, a),
            Opt::Arg('e', _) | Opt::Arg('f', _) => {
                return fatal(
                    PROG,
                    EX_UNAVAILABLE,
                    "-e and -f (force expire) are not available in this version of Postern",
                );
            }
            Opt::Flag('p') => {
                did_anything = true;
                match queue.remove_stale_temp_files(Duration::ZERO) {
                    Ok(n) if n > 0 => eprintln!(
                        "{PROG}: Removed {n} temporary file{}",
                        if n == 1 { "" } else { "s" }
                    ),
                    Ok(_) => {}
                    Err(e) => status = fatal(PROG, EX_IOERR, e),
                }
                continue;
            }
            Opt::Flag('s') | Opt::Flag('S') => {
                did_anything = true;
                if let Err(e) = structure_check(&cfg, &queue) {
                    status = fatal(PROG, EX_IOERR, e);
                }
                continue;
            }
            _ => continue,
        };
        did_anything = true;
        let queues: Vec<QueueName> = if restrict.is_empty() {
            op.default_queues().to_vec()
        } else {
            restrict.clone()
        };
        let ids: BTreeSet<String> = if arg == "ALL" {
            queues
                .iter()
                .flat_map(|&q| queue.list(q).unwrap_or_default())
                .collect()
        } else if arg == "-" {
            let ids = stdin_ids.get_or_insert_with(|| {
                std::io::stdin()
                    .lock()
                    .lines()
                    .map_while(Result::ok)
                    .map(|l| l.trim().to_string())
                    .filter(|l| !l.is_empty())
                    .collect()
            });
            ids.iter().cloned().collect()
        } else {
            std::iter::once(arg.clone()).collect()
        };
        let mut count = 0;
        for id in ids {
            if !queue_id_ok(&id) {
                crate::warn(PROG, format!("invalid mail queue id: {id}"));
                continue;
            }
            let Some(from) = queues
                .iter()
                .copied()
                .find(|&q| queue.file(q, &id).exists())
            else {
                continue;
            };
            if apply(&queue, op, &id, from, arg != "ALL") {
                count += 1;
            }
        }
        match totals.iter_mut().find(|(o, _)| *o == op) {
            Some((_, n)) => *n += count,
            None => totals.push((op, count)),
        }
    }
    // One summary per operation, however many options named it (`-h A -h B`: "Placed on
    // hold: 2 messages"), as Postfix prints it.
    for (op, count) in totals {
        eprintln!(
            "{PROG}: {}: {count} message{}",
            op.summary(),
            if count == 1 { "" } else { "s" }
        );
        if count > 0 {
            match op {
                Op::Release => {
                    daemon::master::trigger(&queue, "qmgr", b"D");
                }
                Op::Requeue => {
                    daemon::master::trigger(&queue, "pickup", b"W");
                }
                _ => {}
            }
        }
    }
    if !did_anything {
        return fatal(PROG, EX_USAGE, "usage: postsuper [-psSv] [-c config_dir] [-d queue_id] [-h queue_id] [-H queue_id] [-r queue_id] [queue...]");
    }
    status
}

/// Postfix's mail_queue_id_ok(): a queue ID is letters, digits and `_`. Anything else (a path,
/// say) is warned about and skipped; a well-formed ID that names no message counts zero.
fn queue_id_ok(id: &str) -> bool {
    !id.is_empty() && id.len() <= 255 && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// Do `op` on one message; `verbose` prints a line per message (not for ALL, as Postfix).
fn apply(queue: &Queue, op: Op, id: &str, from: QueueName, verbose: bool) -> bool {
    let result = match op {
        Op::Delete => std::fs::remove_file(queue.file(from, id)).map(|_| "removed"),
        Op::Hold => queue
            .move_file(id, from, QueueName::Hold)
            .map(|_| "placed on hold"),
        Op::Release => queue
            .move_file(id, from, QueueName::Deferred)
            .and_then(|p| queue::file::set_mtime(&p, SystemTime::UNIX_EPOCH))
            .map(|_| "released from hold"),
        Op::Requeue => queue
            .move_file(id, from, QueueName::Maildrop)
            .map(|_| "requeued"),
    };
    match result {
        Ok(what) => {
            daemon::log::log(PROG, daemon::log::Level::Info, &format!("{id}: {what}"));
            if verbose {
                eprintln!("{PROG}: {id}: {what}");
            }
            true
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => false,
        Err(e) => {
            crate::warn(PROG, format!("{id}: {e}"));
            false
        }
    }
}

/// `-s`: create missing directories, remove stray temporary files, report misplaced names.
fn structure_check(cfg: &config::MainCf, queue: &Queue) -> Result<(), String> {
    daemon::master::set_permissions(cfg).map_err(|e| e.to_string())?;
    for q in QueueName::ALL {
        let Ok(entries) = std::fs::read_dir(queue.dir(q)) else {
            continue;
        };
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if !queue::id::is_valid(&name) && !name.starts_with(".tmp.") {
                crate::warn(PROG, format!("{}/{name}: unexpected file name", q.as_str()));
            }
        }
    }
    Ok(())
}
