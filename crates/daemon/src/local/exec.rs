//! Performing local-delivery actions as the right user.
//!
//! [`perform`] does an [`Action`] in the calling process. [`InProcess`] uses it directly: that
//! is the whole story when the daemon was started by an ordinary user, since every delivery
//! then runs as that user. [`Agents`] is used when the daemon was started as root: it sends
//! the action over a socket to a long-lived delivery agent process running as the requested
//! uid/gid, which the privileged supervisor (`crate::privsep`) forks on request. Idle agent
//! connections are kept per identity and reused.
//!
//! Failures of the transport (an agent that died, a supervisor that refused) come back as a
//! deferral with a reason; the message is retried later and never lost.

use std::collections::HashMap;
use std::io::{self, Read, Write};
use std::os::unix::net::UnixStream;
use std::sync::Mutex;

use super::action::{self, Action, Done};
use super::{command, maildir, mbox};

/// Who an action runs as.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct Identity {
    pub uid: u32,
    pub gid: u32,
}

pub trait Exec: Send + Sync + std::fmt::Debug {
    fn run(&self, who: Identity, action: &Action, message: &[u8]) -> Done;

    /// TLS certificate and key files read with the privileges this process no longer has
    /// (root mode); empty when files can be read directly.
    fn tls_files(&self) -> HashMap<std::path::PathBuf, Vec<u8>> {
        HashMap::new()
    }
}

/// Do `action` here, with this process's identity.
pub fn perform(action: &Action, message: &[u8]) -> Done {
    match action {
        Action::ReadFile {
            paths,
            limit,
            skip_unreadable,
        } => read_first(paths, *limit, *skip_unreadable),
        Action::Mbox {
            path,
            locking,
            size_limit,
            require_owner,
            envelope,
            stamp,
        } => {
            let what = if path.to_string_lossy().ends_with('/') {
                "maildir"
            } else if stamp.queue_id.is_empty() {
                "file"
            } else {
                "mailbox"
            };
            mbox::deliver(
                path,
                locking,
                *size_limit,
                *require_owner,
                envelope,
                stamp,
                message,
                what,
            )
        }
        Action::Maildir {
            dir,
            size_limit,
            hostname,
            envelope,
            stamp,
        } => maildir::deliver(dir, *size_limit, hostname, envelope, stamp, message),
        Action::Command {
            command,
            shell,
            env,
            cwd,
            timeout,
            size_limit,
            envelope,
        } => command::deliver(
            command,
            shell,
            env,
            cwd,
            *timeout,
            *size_limit,
            envelope,
            message,
        ),
    }
}

fn read_first(paths: &[std::path::PathBuf], limit: u64, skip_unreadable: bool) -> Done {
    for p in paths {
        match std::fs::File::open(p) {
            Ok(f) => {
                let mut data = Vec::new();
                return match f.take(limit).read_to_end(&mut data) {
                    Ok(_) => Done::Data(data),
                    Err(e) => Done::defer("4.3.0", format!("cannot read {}: {e}", p.display())),
                };
            }
            Err(e)
                if matches!(e.kind(), io::ErrorKind::NotFound)
                    || e.raw_os_error() == Some(libc::ENOTDIR)
                    || (skip_unreadable && e.kind() == io::ErrorKind::PermissionDenied) => {}
            Err(e) => return Done::defer("4.3.0", format!("cannot open {}: {e}", p.display())),
        }
    }
    Done::Missing
}

/// Everything runs as this process.
#[derive(Debug, Default)]
pub struct InProcess;

impl Exec for InProcess {
    fn run(&self, _who: Identity, action: &Action, message: &[u8]) -> Done {
        perform(action, message)
    }
}

/// Largest frame accepted on an agent socket.
pub const MAX_FRAME: usize = 1 << 30;

pub fn write_frame(s: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    s.write_all(&(bytes.len() as u32).to_le_bytes())?;
    s.write_all(bytes)?;
    s.flush()
}

/// Read one frame; `Ok(None)` at a clean end of stream.
pub fn read_frame(s: &mut impl Read) -> io::Result<Option<Vec<u8>>> {
    let mut len = [0u8; 4];
    let mut got = 0;
    while got < 4 {
        let n = s.read(&mut len[got..])?;
        if n == 0 {
            return if got == 0 {
                Ok(None)
            } else {
                Err(io::ErrorKind::UnexpectedEof.into())
            };
        }
        got += n;
    }
    let len = u32::from_le_bytes(len) as usize;
    if len > MAX_FRAME {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "frame too large",
        ));
    }
    let mut buf = vec![0u8; len];
    s.read_exact(&mut buf)?;
    Ok(Some(buf))
}

/// Agent processes, started through the privileged supervisor.
#[derive(Debug)]
pub struct Agents {
    supervisor: Mutex<UnixStream>,
    idle: Mutex<HashMap<Identity, Vec<UnixStream>>>,
    max_idle_per_identity: usize,
}

impl Agents {
    pub fn new(supervisor: UnixStream) -> Agents {
        Agents {
            supervisor: Mutex::new(supervisor),
            idle: Mutex::new(HashMap::new()),
            max_idle_per_identity: 4,
        }
    }

    fn connect(&self, who: Identity) -> io::Result<UnixStream> {
        if let Some(s) = self
            .idle
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get_mut(&who)
            .and_then(Vec::pop)
        {
            return Ok(s);
        }
        let (ours, theirs) = UnixStream::pair()?;
        let sup = self.supervisor.lock().unwrap_or_else(|e| e.into_inner());
        crate::privsep::request_agent(&sup, who, &theirs)?;
        Ok(ours)
    }

    fn release(&self, who: Identity, s: UnixStream) {
        let mut idle = self.idle.lock().unwrap_or_else(|e| e.into_inner());
        let v = idle.entry(who).or_default();
        if v.len() < self.max_idle_per_identity {
            v.push(s);
        }
    }
}

impl Exec for Agents {
    fn tls_files(&self) -> HashMap<std::path::PathBuf, Vec<u8>> {
        let sup = self.supervisor.lock().unwrap_or_else(|e| e.into_inner());
        match crate::privsep::request_tls_files(&sup) {
            Ok(m) => m,
            Err(e) => {
                crate::warning!(
                    "master",
                    "cannot get TLS files from the master process: {e}"
                );
                HashMap::new()
            }
        }
    }

    fn run(&self, who: Identity, action: &Action, message: &[u8]) -> Done {
        let frame = action::encode_request(action, message);
        // A failed write means the agent never saw the request (an idle connection whose
        // agent has gone away): try once more on a fresh one. A failure after that point may
        // follow a delivery, so it is reported, not retried.
        for attempt in 0..2 {
            let mut s = match self.connect(who) {
                Ok(s) => s,
                Err(e) => {
                    return Done::defer(
                        "4.3.0",
                        format!("delivery agent for uid {} unavailable: {e}", who.uid),
                    )
                }
            };
            if let Err(e) = write_frame(&mut s, &frame) {
                if attempt == 0 {
                    continue;
                }
                return Done::defer(
                    "4.3.0",
                    format!("delivery agent for uid {} failed: {e}", who.uid),
                );
            }
            return match read_frame(&mut s) {
                Ok(Some(reply)) => match action::decode_done(&reply) {
                    Ok(done) => {
                        self.release(who, s);
                        done
                    }
                    Err(e) => Done::defer("4.3.0", format!("delivery agent: {e}")),
                },
                Ok(None) => Done::defer(
                    "4.3.0",
                    format!("delivery agent for uid {} exited", who.uid),
                ),
                Err(e) => Done::defer(
                    "4.3.0",
                    format!("delivery agent for uid {} failed: {e}", who.uid),
                ),
            };
        }
        Done::defer("4.3.0", "delivery agent unavailable")
    }
}

/// The agent side: serve requests on `sock` until it closes. Runs in a process that already
/// has the identity it serves.
pub fn serve(mut sock: UnixStream) {
    while let Ok(Some(frame)) = read_frame(&mut sock) {
        let done = match action::decode_request(&frame) {
            Ok((action, message)) => perform(&action, &message),
            Err(e) => Done::defer("4.3.0", format!("delivery agent: {e}")),
        };
        if write_frame(&mut sock, &action::encode_done(&done)).is_err() {
            break;
        }
    }
}
