//! Delivery to a command (`|cmd` in aliases and .forward, `mailbox_command`), as local(8):
//! the command runs with a clean environment (the variables local(8) exports plus
//! `export_environment`), the message on standard input, standard output and error captured
//! for the diagnostic, in its own process group so that `command_time_limit` can kill all of
//! it, with `mailbox_size_limit` as its file size limit. The exit status is mapped through
//! <sysexits.h> as Postfix's sys_exits table does; an RFC 3463 code at the start of the output
//! overrides it.
//!
//! Shell metacharacters in the command make it run under `/bin/sh -c` (or
//! `local_command_shell`); otherwise it is split on white space and executed directly. The
//! command text comes only from aliases, :include: files, .forward files or `main.cf`, never
//! from an address.

use std::io::{Read, Write};
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use super::action::{Done, Envelope};
use super::copy;

const SHELL_META: &[char] = &[
    '`', '~', '!', '$', '^', '&', '*', '(', ')', '=', '|', '\\', '{', '}', '[', ']', ';', '\'',
    '"', '<', '>', '?', '\n', '\r', '#',
];

/// Process groups of commands running now, so that shutdown can stop them.
static RUNNING: std::sync::Mutex<Vec<i32>> = std::sync::Mutex::new(Vec::new());

/// Kill every command this process is running (their whole process groups). Safe to call
/// from a signal handler only in a single-threaded agent, where the lock cannot be held.
pub fn kill_running() {
    if let Ok(pgids) = RUNNING.try_lock() {
        for &pg in pgids.iter() {
            // SAFETY: kill(2) on a process group we started.
            unsafe { libc::kill(-pg, libc::SIGKILL) };
        }
    }
}

/// Longest command output kept for the diagnostic.
const OUTPUT_LIMIT: usize = 2048;

/// `sys_exits.c`: exit status → (DSN, text); None for a status outside <sysexits.h>.
pub fn sysexit(status: i32) -> Option<(&'static str, &'static str)> {
    Some(match status {
        64 => ("5.3.0", "command line usage error"),
        65 => ("5.6.0", "data format error"),
        66 => ("5.3.0", "cannot open input"),
        67 => ("5.1.1", "user unknown"),
        68 => ("5.1.2", "host name unknown"),
        69 => ("5.3.0", "service unavailable"),
        70 => ("5.3.0", "internal software error"),
        71 => ("4.3.0", "system resource problem"),
        72 => ("5.3.0", "critical OS file missing"),
        73 => ("5.2.0", "can't create user output file"),
        74 => ("5.3.0", "input/output error"),
        75 => ("4.3.0", "temporary failure"),
        76 => ("5.5.0", "remote error in protocol"),
        77 => ("5.7.0", "permission denied"),
        78 => ("5.3.5", "local configuration error"),
        _ => return None,
    })
}

/// An RFC 3463 status code at the start of `text` (`5.1.1 ...`).
fn leading_dsn(text: &str) -> Option<String> {
    let word = text.split_whitespace().next()?;
    let parts: Vec<&str> = word.split('.').collect();
    let ok = parts.len() == 3
        && matches!(parts[0], "2" | "4" | "5")
        && (1..=3).contains(&parts[1].len())
        && (1..=3).contains(&parts[2].len())
        && parts[1..]
            .iter()
            .all(|p| p.bytes().all(|b| b.is_ascii_digit()));
    ok.then(|| word.to_string())
}

/// Command output as Postfix's pipe_command() reports it: tabs and newlines become spaces,
/// other control characters `_`; nothing is trimmed or collapsed ("temp problem here ").
fn printable(out: &[u8]) -> String {
    String::from_utf8_lossy(out)
        .chars()
        .map(|c| match c {
            '\t' | '\n' => ' ',
            c if c.is_control() => '_',
            c => c,
        })
        .collect()
}

fn argv(command: &str, shell: &str) -> Vec<String> {
    if !shell.trim().is_empty() {
        let mut v: Vec<String> = shell.split_whitespace().map(str::to_string).collect();
        v.push(command.to_string());
        return v;
    }
    if command.contains(SHELL_META) {
        return vec!["/bin/sh".into(), "-c".into(), command.to_string()];
    }
    command.split_whitespace().map(str::to_string).collect()
}

#[allow(clippy::too_many_arguments)]
pub fn deliver(
    command: &str,
    shell: &str,
    env: &[(String, String)],
    cwd: &Path,
    timeout: Duration,
    size_limit: u64,
    envelope: &Envelope,
    message: &[u8],
) -> Done {
    let args = argv(command, shell);
    if args.is_empty() {
        return Done::bounce("5.3.0", "empty command");
    }
    let (reader, writer) = match nix::unistd::pipe() {
        Ok(p) => p,
        Err(e) => return Done::defer("4.3.0", format!("cannot create pipe: {e}")),
    };
    let spawn = |args: &[String]| -> std::io::Result<std::process::Child> {
        let (prog, rest) = args.split_first().ok_or(std::io::ErrorKind::InvalidInput)?;
        let mut cmd = Command::new(prog);
        cmd.args(rest)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(cwd)
            .stdin(Stdio::piped())
            .stdout(Stdio::from(writer.try_clone()?))
            .stderr(Stdio::from(writer.try_clone()?))
            .process_group(0);
        if size_limit > 0 {
            // SAFETY: setrlimit is async-signal-safe; nothing else runs between fork and exec.
            unsafe {
                cmd.pre_exec(move || {
                    let lim = libc::rlimit {
                        rlim_cur: size_limit,
                        rlim_max: size_limit,
                    };
                    libc::setrlimit(libc::RLIMIT_FSIZE, &lim);
                    Ok(())
                });
            }
        }
        cmd.spawn()
    };
    let spawned = match spawn(&args) {
        // As Postfix's exec_command(): a program that is not found gets another chance
        // under the shell, which knows its built-ins (`|exit 67`).
        Err(e)
            if e.kind() == std::io::ErrorKind::NotFound
                && shell.trim().is_empty()
                && !args[0].contains('/') =>
        {
            spawn(&["/bin/sh".into(), "-c".into(), command.to_string()])
        }
        other => other,
    };
    drop(writer); // our copy of the pipe's write end: the output reader sees EOF at exit
    let mut child = match spawned {
        Ok(c) => c,
        Err(e) => {
            return Done::defer(
                "4.3.0",
                format!("Command failed: cannot execute \"{command}\": {e}"),
            )
        }
    };
    let pid = child.id() as i32;
    RUNNING.lock().unwrap_or_else(|e| e.into_inner()).push(pid);

    let mut input = Vec::with_capacity(message.len() + 200);
    input.extend_from_slice(
        copy::from_line(&envelope.sender, std::time::SystemTime::now()).as_bytes(),
    );
    input.extend(copy::body(envelope, message, copy::COMMAND));
    let stdin = child.stdin.take();
    let feeder = std::thread::spawn(move || {
        if let Some(mut s) = stdin {
            // A command that exits without reading its input is not an error (EPIPE).
            let _ = s.write_all(&input);
        }
    });
    let (out_tx, out_rx) = mpsc::channel::<Vec<u8>>();
    std::thread::spawn(move || {
        let mut r = std::fs::File::from(reader);
        let mut kept = Vec::new();
        let mut buf = [0u8; 4096];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            let room = OUTPUT_LIMIT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        let _ = out_tx.send(kept);
    });
    let (done_tx, done_rx) = mpsc::channel::<()>();
    let watchdog = std::thread::spawn(move || {
        if done_rx.recv_timeout(timeout) == Err(mpsc::RecvTimeoutError::Timeout) {
            // SAFETY: kill(2) on the child's process group.
            unsafe { libc::kill(-pid, libc::SIGKILL) };
            true
        } else {
            false
        }
    });
    let status = child.wait();
    RUNNING
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .retain(|&p| p != pid);
    let _ = done_tx.send(());
    let timed_out = watchdog.join().unwrap_or(false);
    // A descendant that escaped the process group may keep the pipes open: don't wait on it
    // for long, and don't wait for the input feeder at all.
    drop(feeder);
    let output = printable(
        &out_rx
            .recv_timeout(Duration::from_secs(2))
            .unwrap_or_default(),
    );

    let status = match status {
        Ok(s) => s,
        Err(e) => return Done::defer("4.3.0", format!("Command failed: {e}")),
    };
    // Postfix's pipe_command() reports a killed or timed-out command as 5.3.0, and local(8)
    // bounces on that status.
    if timed_out {
        return Done::bounce(
            "5.3.0",
            format!("Command time limit exceeded: \"{command}\""),
        );
    }
    let with_output = |text: String| {
        if output.is_empty() {
            text
        } else {
            format!("{text}. Command output: {output}")
        }
    };
    if let Some(sig) = status.signal() {
        return Done::bounce(
            "5.3.0",
            with_output(format!("Command died with signal {sig}: \"{command}\"")),
        );
    }
    let code = status.code().unwrap_or(0);
    if code == 0 {
        return Done::Sent(format!("delivered to command: {command}"));
    }
    // A status from <sysexits.h> is reported with its meaning, as Postfix does; any other
    // status is a permanent failure of the command.
    let (mut dsn, text) = match sysexit(code) {
        Some((dsn, meaning)) => (dsn, with_output(meaning.to_string())),
        None => (
            "5.3.0",
            with_output(format!("Command died with status {code}: \"{command}\"")),
        ),
    };
    let own = leading_dsn(&output);
    if let Some(d) = own.as_deref() {
        if !d.starts_with('2') {
            dsn = d;
        }
    }
    if dsn.starts_with('4') {
        Done::defer(dsn, text)
    } else {
        Done::bounce(dsn, text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(cmd: &str, timeout: Duration) -> Done {
        let env = Envelope {
            sender: "a@x".into(),
            return_path: true,
            original_to: String::new(),
            delivered_to: "b@x".into(),
        };
        deliver(
            cmd,
            "",
            &[
                ("PATH".into(), "/usr/bin:/bin".into()),
                ("SENDER".into(), "a@x".into()),
            ],
            Path::new("/"),
            timeout,
            0,
            &env,
            b"Subject: x\n\nbody\n",
        )
    }

    #[test]
    fn exit_codes_map_like_postfix() {
        assert_eq!(
            run("/bin/cat", Duration::from_secs(10)),
            Done::Sent("delivered to command: /bin/cat".into())
        );
        assert!(
            matches!(run("sh -c 'exit 75'", Duration::from_secs(10)), Done::Defer { dsn, .. } if dsn == "4.3.0")
        );
        assert!(
            matches!(run("sh -c 'exit 67'", Duration::from_secs(10)), Done::Bounce { dsn, .. } if dsn == "5.1.1")
        );
        assert!(
            matches!(run("sh -c 'exit 1'", Duration::from_secs(10)), Done::Bounce { dsn, .. } if dsn == "5.3.0")
        );
        let d = run(
            "echo 5.2.1 mailbox disabled; exit 75",
            Duration::from_secs(10),
        );
        assert!(
            matches!(&d, Done::Bounce { dsn, text } if dsn == "5.2.1" && text.contains("mailbox disabled")),
            "{d:?}"
        );
    }

    #[test]
    fn environment_and_input() {
        let d = run(
            "test \"$SENDER\" = a@x && grep -q '^Delivered-To: b@x' && test -z \"$HOME\"",
            Duration::from_secs(10),
        );
        assert_eq!(
            d,
            Done::Sent(format!(
                "delivered to command: {}",
                "test \"$SENDER\" = a@x && grep -q '^Delivered-To: b@x' && test -z \"$HOME\""
            ))
        );
    }

    #[test]
    fn time_limit_kills_the_group() {
        let start = std::time::Instant::now();
        let d = run("sleep 30 & sleep 30", Duration::from_millis(300));
        assert!(
            matches!(&d, Done::Bounce { dsn, text } if dsn == "5.3.0" && text.contains("time limit")),
            "{d:?}"
        );
        assert!(start.elapsed() < Duration::from_secs(10));
    }

    #[test]
    fn argv_choice() {
        assert_eq!(
            argv("/usr/bin/procmail -a x", ""),
            vec!["/usr/bin/procmail", "-a", "x"]
        );
        assert_eq!(argv("procmail -a \"$EXTENSION\"", "")[0], "/bin/sh");
        assert_eq!(argv("x", "/bin/bash -c"), vec!["/bin/bash", "-c", "x"]);
    }
}
