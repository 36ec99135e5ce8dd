//! Privilege separation for a master started as root.
//!
//! Before the async runtime starts, [`split`] forks. The child drops to `mail_owner` (with
//! `setgid_group` as a supplementary group) and becomes the daemon. The parent stays root and
//! becomes the *supervisor*: a small blocking loop that does one thing on request from the
//! daemon — fork a delivery agent running as a given uid/gid (never uid 0 or gid 0) and hand
//! it the socket the daemon passed along with `SCM_RIGHTS`. It forwards SIGTERM, SIGINT and
//! SIGHUP to the daemon, reaps agents, and exits with the daemon's status when the daemon
//! goes away. The pid file lock stays with the supervisor (fcntl locks are not inherited).
//!
//! The supervisor never parses anything but the fixed 8-byte request, and refuses root.

use std::io::{self, IoSlice, IoSliceMut};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicI32, Ordering};

use nix::sys::socket::{recvmsg, sendmsg, ControlMessage, ControlMessageOwned, MsgFlags};
use nix::unistd::{Gid, Uid};

use crate::local::exec::Identity;

/// The daemon's identity after the split.
#[derive(Clone, Debug)]
pub struct DropTo {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

static DAEMON_PID: AtomicI32 = AtomicI32::new(0);

extern "C" fn forward_signal(sig: libc::c_int) {
    let pid = DAEMON_PID.load(Ordering::SeqCst);
    if pid > 0 {
        // SAFETY: kill(2) is async-signal-safe.
        unsafe { libc::kill(pid, sig) };
    }
}

extern "C" fn on_child(_: libc::c_int) {}

fn install(sig: libc::c_int, handler: extern "C" fn(libc::c_int)) {
    // SAFETY: installs a handler that only calls async-signal-safe functions; no SA_RESTART,
    // so the supervisor's blocking recvmsg returns EINTR and the loop can reap children.
    unsafe {
        let mut sa: libc::sigaction = std::mem::zeroed();
        sa.sa_sigaction = handler as usize;
        libc::sigemptyset(&mut sa.sa_mask);
        sa.sa_flags = 0;
        libc::sigaction(sig, &sa, std::ptr::null_mut());
    }
}

/// Drop the calling process to `to`. Fails unless the drop is complete and irreversible.
pub fn drop_privileges(to: &DropTo) -> io::Result<()> {
    let groups: Vec<Gid> = to.groups.iter().map(|&g| Gid::from_raw(g)).collect();
    nix::unistd::setgroups(&groups).map_err(io::Error::from)?;
    nix::unistd::setgid(Gid::from_raw(to.gid)).map_err(io::Error::from)?;
    nix::unistd::setuid(Uid::from_raw(to.uid)).map_err(io::Error::from)?;
    if to.uid != 0 && nix::unistd::setuid(Uid::from_raw(0)).is_ok() {
        return Err(io::Error::other(
            "privileges could be regained after setuid",
        ));
    }
    Ok(())
}

/// Ask the kernel to kill this process when its parent (the supervisor) dies, so that a
/// `kill -9` of the master takes the whole instance down. Set after the identity change,
/// which clears it.
fn die_with_parent(parent: nix::unistd::Pid) {
    // SAFETY: prctl(PR_SET_PDEATHSIG) with a valid signal number.
    unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL as libc::c_ulong) };
    if nix::unistd::getppid() != parent {
        // The parent died before the request took effect.
        std::process::exit(1);
    }
}

/// Fork into supervisor (parent, never returns) and daemon (child, returns the socket to the
/// supervisor, already running as `to`). Must be called while the process is single-threaded.
pub fn split(to: &DropTo, config_dir: &std::path::Path) -> io::Result<UnixStream> {
    let (daemon_end, supervisor_end) = UnixStream::pair()?;
    // SAFETY: the process is single-threaded here (called before the runtime starts).
    match unsafe { nix::unistd::fork() }.map_err(io::Error::from)? {
        nix::unistd::ForkResult::Child => {
            drop(supervisor_end);
            let parent = nix::unistd::getppid();
            drop_privileges(to)?;
            die_with_parent(parent);
            Ok(daemon_end)
        }
        nix::unistd::ForkResult::Parent { child } => {
            drop(daemon_end);
            DAEMON_PID.store(child.as_raw(), Ordering::SeqCst);
            for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP] {
                install(sig, forward_signal);
            }
            install(libc::SIGCHLD, on_child);
            let status = supervise(&supervisor_end, child.as_raw(), config_dir);
            std::process::exit(status);
        }
    }
}

/// Collect exited children (forgetting exited agents, so their pids are never signalled
/// after reuse); returns the daemon's exit status once it has exited.
fn reap(daemon: i32, agents: &mut Vec<i32>) -> Option<i32> {
    let mut result = None;
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(-1, &mut status, libc::WNOHANG) };
        if pid <= 0 {
            return result;
        }
        agents.retain(|&a| a != pid);
        if pid == daemon {
            result = Some(if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                1
            });
        }
    }
}

fn supervise(sock: &UnixStream, daemon: i32, config_dir: &std::path::Path) -> i32 {
    let mut agents: Vec<i32> = Vec::new();
    let mut exited = None;
    loop {
        if let Some(status) = reap(daemon, &mut agents) {
            exited = Some(status);
            break;
        }
        let mut req = [0u8; 8];
        let mut cmsg = nix::cmsg_space!([RawFd; 1]);
        let mut iov = [IoSliceMut::new(&mut req)];
        let msg = match recvmsg::<()>(
            sock.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::MSG_CMSG_CLOEXEC,
        ) {
            Ok(m) => m,
            Err(nix::errno::Errno::EINTR) => continue,
            Err(_) => break,
        };
        let n = msg.bytes;
        let mut fds: Vec<OwnedFd> = Vec::new();
        if let Ok(cmsgs) = msg.cmsgs() {
            for c in cmsgs {
                if let ControlMessageOwned::ScmRights(v) = c {
                    // SAFETY: the kernel just gave us these descriptors; we own them.
                    fds.extend(v.into_iter().map(|fd| unsafe { OwnedFd::from_raw_fd(fd) }));
                }
            }
        }
        if n == 0 {
            break; // the daemon closed its end
        }
        if n == 8 && fds.is_empty() && req == TLS_FILES_REQUEST {
            let _ = send_tls_files(sock, config_dir);
            continue;
        }
        if n != 8 || fds.len() != 1 {
            continue;
        }
        let uid = u32::from_le_bytes([req[0], req[1], req[2], req[3]]);
        let gid = u32::from_le_bytes([req[4], req[5], req[6], req[7]]);
        if uid == 0 || gid == 0 {
            continue; // refused: the daemon must ask for default_privs instead
        }
        let agent_sock = fds.pop();
        // SAFETY: the supervisor is single-threaded.
        match unsafe { nix::unistd::fork() } {
            Ok(nix::unistd::ForkResult::Child) => {
                let code = run_agent(sock, agent_sock, uid, gid);
                // SAFETY: leave without running the parent's exit handlers.
                unsafe { libc::_exit(code) };
            }
            Ok(nix::unistd::ForkResult::Parent { child }) => agents.push(child.as_raw()),
            Err(_) => {}
        }
    }
    // The daemon is gone: stop the agents (and the commands they run), then report.
    for &pid in &agents {
        // SAFETY: kill(2) on an agent we forked and have not reaped.
        unsafe { libc::kill(pid, libc::SIGTERM) };
    }
    if let Some(status) = exited {
        return status;
    }
    loop {
        let mut status = 0;
        // SAFETY: waitpid with a valid out-pointer.
        let pid = unsafe { libc::waitpid(daemon, &mut status, 0) };
        if pid == daemon {
            return if libc::WIFEXITED(status) {
                libc::WEXITSTATUS(status)
            } else {
                1
            };
        }
        if pid < 0 && io::Error::last_os_error().raw_os_error() != Some(libc::EINTR) {
            return 1;
        }
    }
}

/// SIGTERM in an agent: stop the command it is running, then exit.
extern "C" fn agent_terminate(_: libc::c_int) {
    crate::local::command::kill_running();
    // SAFETY: _exit is async-signal-safe.
    unsafe { libc::_exit(75) };
}

fn run_agent(supervisor_sock: &UnixStream, agent: Option<OwnedFd>, uid: u32, gid: u32) -> i32 {
    // SAFETY: closing the inherited supervisor socket in the child; it is not used again here.
    unsafe { libc::close(supervisor_sock.as_raw_fd()) };
    for sig in [libc::SIGTERM, libc::SIGINT, libc::SIGHUP, libc::SIGCHLD] {
        // SAFETY: restore default dispositions in the agent.
        unsafe { libc::signal(sig, libc::SIG_DFL) };
    }
    let Some(agent) = agent else { return 1 };
    let to = DropTo {
        uid,
        gid,
        groups: vec![gid],
    };
    let parent = nix::unistd::getppid();
    if drop_privileges(&to).is_err() {
        return 1;
    }
    die_with_parent(parent);
    install(libc::SIGTERM, agent_terminate);
    // SAFETY: umask has no preconditions.
    unsafe { libc::umask(0o077) };
    let _ = std::env::set_current_dir("/");
    crate::local::exec::serve(UnixStream::from(agent));
    0
}

/// The request for TLS key material (no descriptor attached).
const TLS_FILES_REQUEST: [u8; 8] = [0xff; 8];

/// The certificate and key files main.cf and master.cf name for smtpd, read as root (keys
/// are usually readable by root only, and the daemon no longer is root). Only files named by
/// `smtpd_tls_cert_file` and `smtpd_tls_key_file` are ever read: the request carries no path.
fn send_tls_files(sock: &UnixStream, config_dir: &std::path::Path) -> io::Result<()> {
    use std::io::Write;
    let mut files: Vec<(std::path::PathBuf, Vec<u8>)> = Vec::new();
    if let Ok(cfg) = config::MainCf::load(config_dir) {
        let mut configs = vec![cfg.clone()];
        if let Ok(services) = crate::smtpd::services(&cfg) {
            for svc in services {
                if let Ok(c) = cfg.with_overrides(&svc.overrides) {
                    configs.push(c);
                }
            }
        }
        for c in configs {
            for name in ["smtpd_tls_cert_file", "smtpd_tls_key_file"] {
                let path = c.path(name);
                if path.as_os_str().is_empty() || files.iter().any(|(p, _)| *p == path) {
                    continue;
                }
                if let Ok(bytes) = std::fs::read(&path) {
                    files.push((path, bytes));
                }
            }
        }
    }
    let mut out = Vec::new();
    out.extend_from_slice(&(files.len() as u32).to_le_bytes());
    for (path, bytes) in &files {
        let p = path.to_string_lossy();
        out.extend_from_slice(&(p.len() as u32).to_le_bytes());
        out.extend_from_slice(p.as_bytes());
        out.extend_from_slice(&(bytes.len() as u32).to_le_bytes());
        out.extend_from_slice(bytes);
    }
    (&*sock).write_all(&(out.len() as u32).to_le_bytes())?;
    (&*sock).write_all(&out)
}

/// Ask the supervisor for the TLS certificate and key files of the current configuration.
pub fn request_tls_files(
    sup: &UnixStream,
) -> io::Result<std::collections::HashMap<std::path::PathBuf, Vec<u8>>> {
    use std::io::Read;
    let iov = [IoSlice::new(&TLS_FILES_REQUEST)];
    sendmsg::<()>(sup.as_raw_fd(), &iov, &[], MsgFlags::empty(), None).map_err(io::Error::from)?;
    let mut len = [0u8; 4];
    (&*sup).read_exact(&mut len)?;
    let len = u32::from_le_bytes(len) as usize;
    if len > 64 << 20 {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "TLS file reply too large",
        ));
    }
    let mut buf = vec![0u8; len];
    (&*sup).read_exact(&mut buf)?;
    let mut map = std::collections::HashMap::new();
    let mut r = &buf[..];
    let mut take = |n: usize| -> io::Result<Vec<u8>> {
        if r.len() < n {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
        let (a, b) = r.split_at(n);
        r = b;
        Ok(a.to_vec())
    };
    let u32_at = |v: Vec<u8>| -> usize { u32::from_le_bytes([v[0], v[1], v[2], v[3]]) as usize };
    let count = u32_at(take(4)?);
    for _ in 0..count {
        let plen = u32_at(take(4)?);
        let path = String::from_utf8_lossy(&take(plen)?).into_owned();
        let dlen = u32_at(take(4)?);
        map.insert(std::path::PathBuf::from(path), take(dlen)?);
    }
    Ok(map)
}

/// Ask the supervisor for an agent running as `who`, serving on `agent_end`.
pub fn request_agent(sup: &UnixStream, who: Identity, agent_end: &UnixStream) -> io::Result<()> {
    let mut req = [0u8; 8];
    req[..4].copy_from_slice(&who.uid.to_le_bytes());
    req[4..].copy_from_slice(&who.gid.to_le_bytes());
    let fds = [agent_end.as_raw_fd()];
    let cmsg = [ControlMessage::ScmRights(&fds)];
    let iov = [IoSlice::new(&req)];
    sendmsg::<()>(sup.as_raw_fd(), &iov, &cmsg, MsgFlags::empty(), None)
        .map_err(io::Error::from)?;
    Ok(())
}
