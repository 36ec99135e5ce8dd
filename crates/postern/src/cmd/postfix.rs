//! postfix(1): start, stop and control the daemon.
//!
//! `postfix [-c DIR] start|start-fg|stop|abort|reload|status|flush|check|set-permissions`.
//! Messages use Postfix's `postfix/postfix-script:` prefix. `start` launches `postern master`
//! in the background and returns once it holds the queue's pid lock (or prints why it did not
//! start); `start-fg` runs it in the foreground, logging to stderr unless `maillog_file` is
//! set. `stop` waits until the daemon has exited.

use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use daemon::master;
use queue::Queue;

use crate::getopt::{getopt, Opt};
use crate::load_config;
use crate::sysexits::*;

const SCRIPT: &str = "postfix/postfix-script";

/// Report on stderr and, as Postfix's postfix-script does, in the maillog.
fn say(text: &str) {
    eprintln!("{SCRIPT}: {text}");
    daemon::log::log("postfix-script", daemon::log::Level::Info, text);
}

fn fail(text: &str) -> i32 {
    eprintln!("{SCRIPT}: fatal: {text}");
    daemon::log::log("postfix-script", daemon::log::Level::Fatal, text);
    1
}

fn config_dir(opts: &[Opt]) -> Option<PathBuf> {
    opts.iter().find_map(|o| match o {
        Opt::Arg('c', d) => Some(PathBuf::from(d)),
        _ => None,
    })
}

pub fn main(args: &[String]) -> i32 {
    let (opts, rest) = match getopt(args, "c:Dv") {
        Ok(x) => x,
        Err(e) => {
            return crate::fatal(
                "postfix",
                EX_USAGE,
                format!("usage: postfix [-c config_dir] [-Dv] command: {e}"),
            )
        }
    };
    let dir = config_dir(&opts);
    let Some(command) = rest.first() else {
        return crate::fatal(
            "postfix",
            EX_USAGE,
            "usage: postfix [-c config_dir] [-Dv] command",
        );
    };
    // Stopping or querying a running daemon must work even after a bad edit of main.cf
    // (as with Postfix, where only the daemon reading a parameter checks it).
    let lenient = matches!(command.as_str(), "stop" | "abort" | "status");
    let cfg = if lenient {
        match config::MainCf::load_lenient(&config::config_directory(dir.as_deref())) {
            Ok((c, errors)) => {
                for e in errors {
                    crate::warn("postfix", e);
                }
                c
            }
            Err(e) => {
                for err in &e.errors {
                    eprintln!("postfix: fatal: {err}");
                }
                return 1;
            }
        }
    } else {
        match load_config("postfix", dir.as_deref()) {
            Ok(c) => c,
            Err(code) => return code,
        }
    };
    crate::init_cli_logging(&cfg);
    let queue = Queue::new(cfg.path("queue_directory"));
    let config_dir = cfg.config_directory().to_path_buf();
    match command.as_str() {
        "start" => start(&queue, &config_dir),
        "start-fg" => {
            if master::running_pid(&queue).is_some() {
                return fail("the Postfix mail system is already running");
            }
            say("starting the Postfix mail system");
            run_master(cfg, true)
        }
        "stop" | "abort" => {
            if master::running_pid(&queue).is_none() {
                return fail("the Postfix mail system is not running");
            }
            say(if command == "stop" { "stopping the Postfix mail system" } else { "aborting the Postfix mail system" });
            match master::stop(&queue, Duration::from_secs(60)) {
                Ok(_) => EX_OK,
                Err(e) => fail(&e),
            }
        }
        "reload" => match master::running_pid(&queue) {
            None => fail("the Postfix mail system is not running"),
            Some(pid) => {
                say("refreshing the Postfix mail system");
                match nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid as i32), nix::sys::signal::Signal::SIGHUP) {
                    Ok(()) => EX_OK,
                    Err(e) => fail(&format!("kill {pid}: {e}")),
                }
            }
        },
        "status" => match master::running_pid(&queue) {
            Some(pid) => {
                say(&format!("the Postfix mail system is running: PID: {pid}"));
                EX_OK
            }
            None => {
                say("the Postfix mail system is not running");
                1
            }
        },
        "flush" => {
            if !master::trigger(&queue, "qmgr", b"FADI") {
                return fail("the Postfix mail system is not running");
            }
            master::trigger(&queue, "pickup", b"W");
            EX_OK
        }
        "check" | "set-permissions" => match master::set_permissions(&cfg) {
            Ok(()) => EX_OK,
            Err(e) => fail(&e.to_string()),
        },
        other => crate::fatal("postfix", EX_USAGE, format!("unknown command: '{other}'. Usage: postfix start (or stop, reload, abort, flush, check, status, set-permissions, start-fg)")),
    }
}

fn run_master(cfg: config::MainCf, foreground: bool) -> i32 {
    match master::run(cfg, foreground) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("postfix/master: fatal: {e}");
            1
        }
    }
}

fn start(queue: &Queue, config_dir: &std::path::Path) -> i32 {
    if master::running_pid(queue).is_some() {
        return fail("the Postfix mail system is already running");
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => return fail(&format!("cannot find the postern executable: {e}")),
    };
    say("starting the Postfix mail system");
    let mut cmd = Command::new(exe);
    cmd.arg("master")
        .arg("-c")
        .arg(config_dir)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped());
    let mut child = match cmd.spawn() {
        Ok(c) => c,
        Err(e) => return fail(&format!("cannot start the master: {e}")),
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        if master::running_pid(queue).is_some() {
            return EX_OK;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let mut text = String::new();
            if let Some(mut e) = child.stderr.take() {
                let _ = e.read_to_string(&mut text);
            }
            eprint!("{text}");
            return fail(&format!("the Postfix mail system did not start ({status})"));
        }
        if Instant::now() > deadline {
            return fail("the Postfix mail system did not start within 30 seconds");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// `postern master [-c DIR] [-f]`: the daemon itself (`-f`: foreground, logging to stderr).
pub fn master(args: &[String]) -> i32 {
    let (opts, _) = match getopt(args, "c:fDv") {
        Ok(x) => x,
        Err(e) => return crate::fatal("master", EX_USAGE, e),
    };
    let cfg = match load_config("postfix/master", config_dir(&opts).as_deref()) {
        Ok(c) => c,
        Err(code) => return code,
    };
    let fg = opts.contains(&Opt::Flag('f'));
    if !fg {
        // Detach from the terminal session of `postfix start`.
        let _ = nix::unistd::setsid();
    }
    run_master(cfg, fg)
}
