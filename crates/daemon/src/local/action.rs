//! The file-system side of local delivery, as plain data: what to do, as whom, with which
//! text. An [`Action`] is performed by [`super::exec`] either in this process (when the daemon
//! already runs as the right user) or by a delivery agent process running as that user; the
//! types encode to a small binary frame for the agent socket.
//!
//! Decoding is strict (every field present, lengths checked) and never panics: a malformed
//! frame is an error and the agent answers with a deferral.

use std::path::PathBuf;
use std::time::Duration;

/// The envelope lines local delivery puts in front of a message (local(8), mail_copy).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Envelope {
    /// For the `From sender  date` line; empty for the null sender (written as MAILER-DAEMON).
    pub sender: String,
    /// `Return-Path: <sender>`.
    pub return_path: bool,
    /// `X-Original-To: <addr>` when non-empty.
    pub original_to: String,
    /// `Delivered-To: <addr>` when non-empty.
    pub delivered_to: String,
}

/// Identity of the queued message, used to recognise an earlier copy after a crash.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Stamp {
    pub queue_id: String,
    pub rcpt: u32,
    pub arrival_secs: u64,
    /// The queue file has a delivery intent for this recipient with nothing after it: look for
    /// an earlier copy before delivering.
    pub check_first: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Locking {
    pub fcntl: bool,
    pub dotlock: bool,
    pub flock: bool,
    pub attempts: u32,
    pub delay: Duration,
    pub stale: Duration,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Action {
    /// Return the contents of the first readable file among `paths` (for `.forward` and
    /// `:include:`); `Missing` if none exists. With `skip_unreadable`, a file this user may
    /// not read counts as missing (a `.forward` in an unreadable home directory).
    ReadFile {
        paths: Vec<PathBuf>,
        limit: u64,
        skip_unreadable: bool,
    },
    /// Append to a UNIX mailbox (also `/file` destinations).
    Mbox {
        path: PathBuf,
        locking: Locking,
        size_limit: u64,
        /// Refuse a mailbox owned by someone else (`strict_mailbox_ownership`).
        require_owner: Option<u32>,
        envelope: Envelope,
        stamp: Stamp,
    },
    /// Deliver into a Maildir (`dir` ends in `/`).
    Maildir {
        dir: PathBuf,
        size_limit: u64,
        hostname: String,
        envelope: Envelope,
        stamp: Stamp,
    },
    /// Pipe to a command.
    Command {
        command: String,
        /// `local_command_shell`, or empty for `/bin/sh -c` when needed.
        shell: String,
        env: Vec<(String, String)>,
        cwd: PathBuf,
        timeout: Duration,
        size_limit: u64,
        envelope: Envelope,
    },
}

/// How an action ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Done {
    /// Delivered; the text is Postfix's (`delivered to mailbox`, ...).
    Sent(String),
    /// The file that was read (ReadFile).
    Data(Vec<u8>),
    /// ReadFile found none of the files.
    Missing,
    /// A temporary failure: `dsn` is 4.x.x.
    Defer { dsn: String, text: String },
    /// A permanent failure: `dsn` is 5.x.x.
    Bounce { dsn: String, text: String },
}

impl Done {
    pub fn defer(dsn: &str, text: impl Into<String>) -> Done {
        Done::Defer {
            dsn: dsn.to_string(),
            text: queue::clean_error_text(&text.into()),
        }
    }
    pub fn bounce(dsn: &str, text: impl Into<String>) -> Done {
        Done::Bounce {
            dsn: dsn.to_string(),
            text: queue::clean_error_text(&text.into()),
        }
    }
}

// ---- wire format: a frame is u32le length + fields; a field is u32le length + bytes ----

#[derive(Debug, thiserror::Error)]
#[error("malformed agent frame")]
pub struct FrameError;

#[derive(Default)]
struct W(Vec<u8>);

impl W {
    fn b(&mut self, v: &[u8]) -> &mut Self {
        self.0.extend_from_slice(&(v.len() as u32).to_le_bytes());
        self.0.extend_from_slice(v);
        self
    }
    fn s(&mut self, v: &str) -> &mut Self {
        self.b(v.as_bytes())
    }
    fn n(&mut self, v: u64) -> &mut Self {
        self.b(&v.to_le_bytes())
    }
    fn p(&mut self, v: &std::path::Path) -> &mut Self {
        use std::os::unix::ffi::OsStrExt;
        self.b(v.as_os_str().as_bytes())
    }
    fn env(&mut self, e: &Envelope) -> &mut Self {
        self.s(&e.sender)
            .n(u64::from(e.return_path))
            .s(&e.original_to)
            .s(&e.delivered_to)
    }
    fn stamp(&mut self, s: &Stamp) -> &mut Self {
        self.s(&s.queue_id)
            .n(u64::from(s.rcpt))
            .n(s.arrival_secs)
            .n(u64::from(s.check_first))
    }
}

struct R<'a>(&'a [u8]);

impl<'a> R<'a> {
    fn b(&mut self) -> Result<&'a [u8], FrameError> {
        if self.0.len() < 4 {
            return Err(FrameError);
        }
        let mut n = [0u8; 4];
        n.copy_from_slice(&self.0[..4]);
        let n = u32::from_le_bytes(n) as usize;
        if self.0.len() - 4 < n {
            return Err(FrameError);
        }
        let (v, rest) = self.0[4..].split_at(n);
        self.0 = rest;
        Ok(v)
    }
    fn s(&mut self) -> Result<String, FrameError> {
        String::from_utf8(self.b()?.to_vec()).map_err(|_| FrameError)
    }
    fn n(&mut self) -> Result<u64, FrameError> {
        let b = self.b()?;
        let arr: [u8; 8] = b.try_into().map_err(|_| FrameError)?;
        Ok(u64::from_le_bytes(arr))
    }
    fn p(&mut self) -> Result<PathBuf, FrameError> {
        use std::os::unix::ffi::OsStrExt;
        Ok(PathBuf::from(std::ffi::OsStr::from_bytes(self.b()?)))
    }
    fn env(&mut self) -> Result<Envelope, FrameError> {
        Ok(Envelope {
            sender: self.s()?,
            return_path: self.n()? != 0,
            original_to: self.s()?,
            delivered_to: self.s()?,
        })
    }
    fn stamp(&mut self) -> Result<Stamp, FrameError> {
        Ok(Stamp {
            queue_id: self.s()?,
            rcpt: u32::try_from(self.n()?).map_err(|_| FrameError)?,
            arrival_secs: self.n()?,
            check_first: self.n()? != 0,
        })
    }
    fn end(&self) -> Result<(), FrameError> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(FrameError)
        }
    }
}

fn dur(d: Duration) -> u64 {
    d.as_millis().min(u128::from(u64::MAX)) as u64
}

/// Encode a request: the action and the message text it carries.
pub fn encode_request(action: &Action, message: &[u8]) -> Vec<u8> {
    let mut w = W::default();
    match action {
        Action::ReadFile {
            paths,
            limit,
            skip_unreadable,
        } => {
            w.s("read")
                .n(*limit)
                .n(u64::from(*skip_unreadable))
                .n(paths.len() as u64);
            for p in paths {
                w.p(p);
            }
        }
        Action::Mbox {
            path,
            locking,
            size_limit,
            require_owner,
            envelope,
            stamp,
        } => {
            w.s("mbox")
                .p(path)
                .n(u64::from(locking.fcntl))
                .n(u64::from(locking.dotlock))
                .n(u64::from(locking.flock))
                .n(u64::from(locking.attempts))
                .n(dur(locking.delay))
                .n(dur(locking.stale))
                .n(*size_limit)
                .n(require_owner.map_or(u64::MAX, u64::from))
                .env(envelope)
                .stamp(stamp);
        }
        Action::Maildir {
            dir,
            size_limit,
            hostname,
            envelope,
            stamp,
        } => {
            w.s("maildir")
                .p(dir)
                .n(*size_limit)
                .s(hostname)
                .env(envelope)
                .stamp(stamp);
        }
        Action::Command {
            command,
            shell,
            env,
            cwd,
            timeout,
            size_limit,
            envelope,
        } => {
            w.s("command").s(command).s(shell).n(env.len() as u64);
            for (k, v) in env {
                w.s(k).s(v);
            }
            w.p(cwd).n(dur(*timeout)).n(*size_limit).env(envelope);
        }
    }
    w.b(message);
    w.0
}

pub fn decode_request(frame: &[u8]) -> Result<(Action, Vec<u8>), FrameError> {
    let mut r = R(frame);
    let kind = r.s()?;
    let action = match kind.as_str() {
        "read" => {
            let limit = r.n()?;
            let skip_unreadable = r.n()? != 0;
            let n = r.n()?;
            if n > 64 {
                return Err(FrameError);
            }
            let paths = (0..n).map(|_| r.p()).collect::<Result<_, _>>()?;
            Action::ReadFile {
                paths,
                limit,
                skip_unreadable,
            }
        }
        "mbox" => {
            let path = r.p()?;
            let locking = Locking {
                fcntl: r.n()? != 0,
                dotlock: r.n()? != 0,
                flock: r.n()? != 0,
                attempts: u32::try_from(r.n()?).map_err(|_| FrameError)?,
                delay: Duration::from_millis(r.n()?),
                stale: Duration::from_millis(r.n()?),
            };
            let size_limit = r.n()?;
            let owner = r.n()?;
            Action::Mbox {
                path,
                locking,
                size_limit,
                require_owner: u32::try_from(owner).ok(),
                envelope: r.env()?,
                stamp: r.stamp()?,
            }
        }
        "maildir" => Action::Maildir {
            dir: r.p()?,
            size_limit: r.n()?,
            hostname: r.s()?,
            envelope: r.env()?,
            stamp: r.stamp()?,
        },
        "command" => {
            let command = r.s()?;
            let shell = r.s()?;
            let n = r.n()?;
            if n > 256 {
                return Err(FrameError);
            }
            let env = (0..n)
                .map(|_| Ok((r.s()?, r.s()?)))
                .collect::<Result<_, FrameError>>()?;
            Action::Command {
                command,
                shell,
                env,
                cwd: r.p()?,
                timeout: Duration::from_millis(r.n()?),
                size_limit: r.n()?,
                envelope: r.env()?,
            }
        }
        _ => return Err(FrameError),
    };
    let message = r.b()?.to_vec();
    r.end()?;
    Ok((action, message))
}

pub fn encode_done(d: &Done) -> Vec<u8> {
    let mut w = W::default();
    match d {
        Done::Sent(t) => w.s("sent").s(t),
        Done::Data(b) => w.s("data").b(b),
        Done::Missing => w.s("missing"),
        Done::Defer { dsn, text } => w.s("defer").s(dsn).s(text),
        Done::Bounce { dsn, text } => w.s("bounce").s(dsn).s(text),
    };
    w.0
}

pub fn decode_done(frame: &[u8]) -> Result<Done, FrameError> {
    let mut r = R(frame);
    let d = match r.s()?.as_str() {
        "sent" => Done::Sent(r.s()?),
        "data" => Done::Data(r.b()?.to_vec()),
        "missing" => Done::Missing,
        "defer" => Done::Defer {
            dsn: r.s()?,
            text: r.s()?,
        },
        "bounce" => Done::Bounce {
            dsn: r.s()?,
            text: r.s()?,
        },
        _ => return Err(FrameError),
    };
    r.end()?;
    Ok(d)
}

/// Decode arbitrary bytes as an agent request and reply; for the `agent_frame` fuzz target.
pub fn fuzz_frame(data: &[u8]) {
    let _ = decode_request(data);
    let _ = decode_done(data);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env() -> Envelope {
        Envelope {
            sender: "a@b".into(),
            return_path: true,
            original_to: "x@y".into(),
            delivered_to: "z@y".into(),
        }
    }

    #[test]
    fn requests_round_trip() {
        let stamp = Stamp {
            queue_id: "4Kc0Lw3Bxzz1hGm".into(),
            rcpt: 3,
            arrival_secs: 1_795_000_000,
            check_first: true,
        };
        let actions = vec![
            Action::ReadFile {
                paths: vec!["/home/a/.forward".into(), "/x".into()],
                limit: 100,
                skip_unreadable: true,
            },
            Action::Mbox {
                path: "/var/mail/a".into(),
                locking: Locking {
                    fcntl: true,
                    dotlock: true,
                    flock: false,
                    attempts: 20,
                    delay: Duration::from_secs(1),
                    stale: Duration::from_secs(500),
                },
                size_limit: 51200000,
                require_owner: Some(1000),
                envelope: env(),
                stamp: stamp.clone(),
            },
            Action::Maildir {
                dir: "/home/a/Maildir/".into(),
                size_limit: 0,
                hostname: "host".into(),
                envelope: env(),
                stamp,
            },
            Action::Command {
                command: "/usr/bin/procmail -a \"$EXTENSION\"".into(),
                shell: String::new(),
                env: vec![("HOME".into(), "/home/a".into())],
                cwd: "/home/a".into(),
                timeout: Duration::from_secs(1000),
                size_limit: 0,
                envelope: env(),
            },
        ];
        for a in actions {
            let frame = encode_request(&a, b"msg\n");
            assert_eq!(decode_request(&frame).unwrap(), (a, b"msg\n".to_vec()));
            for cut in 0..frame.len() {
                assert!(decode_request(&frame[..cut]).is_err());
            }
        }
    }

    #[test]
    fn results_round_trip() {
        for d in [
            Done::Sent("delivered to mailbox".into()),
            Done::Data(b"bob\n".to_vec()),
            Done::Missing,
            Done::defer("4.2.0", "busy"),
            Done::bounce("5.2.2", "full"),
        ] {
            assert_eq!(decode_done(&encode_done(&d)).unwrap(), d);
        }
    }
}
