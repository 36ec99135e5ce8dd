//! postqueue(1): `-p` list the queue (also `mailq`, `sendmail -bp`), `-j` list as JSON lines,
//! `-f` flush (retry everything now: writes `FADI` to qmgr's FIFO and wakes pickup), `-i ID`
//! deliver one message now (its retry time is reset and the deferred queue rescanned), `-s
//! SITE` (flushes everything: Postern has no per-site fast-flush logs yet).

use std::path::PathBuf;
use std::time::SystemTime;

use queue::{Queue, QueueName};

use super::showq;
use crate::getopt::{getopt, Opt};
use crate::sysexits::*;
use crate::{fatal, load_config, warn};

pub fn main(prog: &str, args: &[String]) -> i32 {
    let (opts, rest) = match getopt(args, "c:fi:jps:v") {
        Ok(x) => x,
        Err(e) => return fatal(prog, EX_USAGE, format!("usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site: {e}")),
    };
    if !rest.is_empty() {
        return fatal(prog, EX_USAGE, format!("unexpected argument: {}", rest[0]));
    }
    let dir = opts.iter().find_map(|o| match o {
        Opt::Arg('c', d) => Some(PathBuf::from(d)),
        _ => None,
    });
    let cfg = match load_config(prog, dir.as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let queue = Queue::new(cfg.path("queue_directory"));
    let mut mode = None;
    for o in &opts {
        match o {
            Opt::Flag(c @ ('p' | 'j' | 'f')) => mode = Some((*c, String::new())),
            Opt::Arg(c @ ('i' | 's'), v) => mode = Some((*c, v.clone())),
            _ => {}
        }
    }
    let Some((mode, arg)) = mode else {
        return fatal(prog, EX_USAGE, "usage: postqueue -f | postqueue -i queueid | postqueue -j | postqueue -p | postqueue -s site");
    };
    match mode {
        'p' | 'j' => {
            if daemon::master::running_pid(&queue).is_none() {
                warn("postqueue", "Mail system is down -- accessing queue directly (Connect to the Postfix showq service: No such file or directory)");
            }
            let entries = showq::collect(&queue);
            let mut out = std::io::stdout().lock();
            let r = if mode == 'p' {
                showq::print_sendmail_style(&entries, &mut out)
            } else {
                showq::print_json(&entries, &mut out)
            };
            match r {
                Ok(()) => EX_OK,
                Err(e) => fatal(prog, EX_IOERR, e),
            }
        }
        'f' | 's' => {
            if !daemon::master::trigger(&queue, "qmgr", b"FADI") {
                return fatal(
                    prog,
                    EX_UNAVAILABLE,
                    "Cannot flush mail queue - mail system is down",
                );
            }
            daemon::master::trigger(&queue, "pickup", b"W");
            EX_OK
        }
        'i' => {
            if !queue::id::is_valid(&arg) {
                return fatal(prog, EX_USAGE, format!("invalid queue ID: {arg}"));
            }
            let path = queue.file(QueueName::Deferred, &arg);
            if !path.exists() {
                return fatal(
                    prog,
                    EX_UNAVAILABLE,
                    format!("Cannot flush mail queue - {arg}: no such deferred message"),
                );
            }
            if let Err(e) = queue::file::set_mtime(&path, SystemTime::UNIX_EPOCH) {
                return fatal(prog, EX_NOPERM, format!("{arg}: {e}"));
            }
            if !daemon::master::trigger(&queue, "qmgr", b"D") {
                return fatal(
                    prog,
                    EX_UNAVAILABLE,
                    "Cannot flush mail queue - mail system is down",
                );
            }
            EX_OK
        }
        _ => EX_USAGE,
    }
}
