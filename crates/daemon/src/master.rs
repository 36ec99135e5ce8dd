//! master: start-up, the pid lock, privileges, and the life of the daemon process.
//!
//! [`run`] is `postern master` (what `postfix start` launches and `postfix start-fg` runs in
//! the foreground). In order: create the queue tree with its owners and modes, bind the
//! smtpd listeners of master.cf, take the exclusive lock on `pid/master.pid` (a second daemon
//! on the same queue sees it and refuses), drop privileges when started as root (see
//! `privsep`), start the async runtime, put `active/` back into `incoming/`, and run pickup,
//! qmgr and the FIFO listeners until SIGTERM or SIGINT. SIGHUP reloads main.cf (a bad main.cf
//! keeps the old settings and logs why).
//!
//! [`status`] and [`stop`] read the same lock, so a stale pid file left by a crash is never
//! mistaken for a running daemon.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use config::MainCf;
use queue::{Owners, Queue};
use tokio_util::sync::CancellationToken;

use crate::local::exec::{Agents, Exec, InProcess};
use crate::log::{self, Target};
use crate::qmgr::{Event, Qmgr};
use crate::runtime::Runtime;
use crate::{info, pickup, privsep, warning};

pub const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    #[error("the Postfix mail system is already running")]
    AlreadyRunning,
    #[error("{0}")]
    Setup(String),
}

fn lock_fd(f: &File, ty: libc::c_int, cmd: libc::c_int) -> io::Result<libc::flock> {
    let mut fl = libc::flock {
        l_type: ty as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    };
    // SAFETY: fcntl record locking with a valid flock struct on an open descriptor.
    let r = unsafe { libc::fcntl(f.as_raw_fd(), cmd, &mut fl) };
    if r < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(fl)
    }
}

/// The pid of the running master, if its pid file is locked.
pub fn running_pid(queue: &Queue) -> Option<u32> {
    let path = queue.pid_file();
    let f = File::open(&path).ok()?;
    let fl = lock_fd(&f, libc::F_WRLCK, libc::F_GETLK).ok()?;
    if fl.l_type == libc::F_UNLCK as libc::c_short {
        return None;
    }
    let mut text = String::new();
    let _ = (&f).read_to_string(&mut text);
    text.trim().parse().ok().or(Some(fl.l_pid as u32))
}

fn take_lock(path: &Path) -> Result<File, MasterError> {
    let mut f = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .mode(0o644)
        .open(path)
        .map_err(|e| MasterError::Setup(format!("open {}: {e}", path.display())))?;
    match lock_fd(&f, libc::F_WRLCK, libc::F_SETLK) {
        Ok(_) => {}
        Err(e) if matches!(e.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) => {
            return Err(MasterError::AlreadyRunning)
        }
        Err(e) => return Err(MasterError::Setup(format!("lock {}: {e}", path.display()))),
    }
    let _ = f.set_len(0);
    let _ = f.write_all(format!("{:>10}\n", std::process::id()).as_bytes());
    let _ = f.sync_all();
    Ok(f)
}

/// Where logs go: maillog_file (when its prefix is allowed), else stderr in the foreground,
/// else syslog.
pub fn log_target(cfg: &MainCf, foreground: bool) -> Result<Target, String> {
    let file = cfg.str("maillog_file");
    if !file.is_empty() {
        let path = cfg.path("maillog_file");
        let prefixes = cfg.list("maillog_file_prefixes");
        let text = path.to_string_lossy().into_owned();
        if !prefixes.is_empty() && !prefixes.iter().any(|p| text.starts_with(p.as_str())) {
            return Err(format!(
                "parameter maillog_file: value \"{file}\" does not match any prefix in maillog_file_prefixes"
            ));
        }
        return Ok(Target::File(path));
    }
    Ok(if foreground {
        Target::Stderr
    } else {
        Target::Syslog
    })
}

pub fn init_logging(cfg: &MainCf, foreground: bool) -> Result<(), String> {
    let target = log_target(cfg, foreground)?;
    log::init(
        target,
        &cfg.str("syslog_name"),
        &cfg.str("myhostname"),
        &cfg.str("syslog_facility"),
    )
    .map_err(|e| e.to_string())
}

fn lookup_owners(cfg: &MainCf) -> Result<(Owners, privsep::DropTo), MasterError> {
    let owner = cfg.str("mail_owner");
    let user = nix::unistd::User::from_name(&owner)
        .ok()
        .flatten()
        .ok_or_else(|| {
            MasterError::Setup(format!(
                "file {}: parameter mail_owner: unknown user name value: {owner}",
                cfg.main_cf_path().display()
            ))
        })?;
    if user.uid.is_root() {
        return Err(MasterError::Setup(format!(
            "file {}: parameter mail_owner: user {owner} has privileged user ID",
            cfg.main_cf_path().display()
        )));
    }
    let group = cfg.str("setgid_group");
    let gr = nix::unistd::Group::from_name(&group)
        .ok()
        .flatten()
        .ok_or_else(|| {
            MasterError::Setup(format!(
                "file {}: parameter setgid_group: unknown group name: {group}",
                cfg.main_cf_path().display()
            ))
        })?;
    let owners = Owners {
        mail_owner_uid: user.uid.as_raw(),
        mail_owner_gid: user.gid.as_raw(),
        setgid_gid: gr.gid.as_raw(),
    };
    let drop = privsep::DropTo {
        uid: user.uid.as_raw(),
        gid: user.gid.as_raw(),
        groups: vec![user.gid.as_raw(), gr.gid.as_raw()],
    };
    Ok((owners, drop))
}

/// `postfix set-permissions`: create the queue tree with owners and modes.
pub fn set_permissions(cfg: &MainCf) -> Result<(), MasterError> {
    let queue = Queue::new(cfg.path("queue_directory"));
    let owners = if nix::unistd::geteuid().is_root() {
        Some(lookup_owners(cfg)?.0)
    } else {
        None
    };
    queue
        .setup(owners)
        .map_err(|e| MasterError::Setup(e.to_string()))
}

/// Run the daemon until it is told to stop. Returns the process exit status.
pub fn run(cfg: MainCf, foreground: bool) -> Result<i32, MasterError> {
    let root = nix::unistd::geteuid().is_root();
    let queue = Queue::new(cfg.path("queue_directory"));
    let (owners, drop_to) = if root {
        let (o, d) = lookup_owners(&cfg)?;
        (Some(o), Some(d))
    } else {
        (None, None)
    };
    queue
        .setup(owners)
        .map_err(|e| MasterError::Setup(e.to_string()))?;
    // Listening sockets are opened while still privileged (port 25), and before the pid lock
    // is taken: `postfix start` reports success as soon as it sees the lock, so a port that
    // cannot be bound must stop the start before that.
    let bound = crate::smtpd::bind(&cfg).map_err(MasterError::Setup)?;
    let _lock = take_lock(&queue.pid_file())?;
    if let Some(o) = owners {
        // The log file must stay writable after the drop.
        if let Ok(Target::File(p)) = log_target(&cfg, foreground) {
            if let Some(dir) = p.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            let _ = OpenOptions::new().create(true).append(true).open(&p);
            let _ = std::os::unix::fs::chown(&p, Some(o.mail_owner_uid), Some(o.mail_owner_gid));
        }
    }
    init_logging(&cfg, foreground).map_err(MasterError::Setup)?;
    if !foreground {
        // `postfix start` stops reading our stderr once we hold the lock.
        if let Ok(null) = OpenOptions::new().write(true).open("/dev/null") {
            // SAFETY: dup2 onto stderr; both descriptors are valid.
            unsafe { libc::dup2(null.as_raw_fd(), 2) };
        }
    }

    let exec: Arc<dyn Exec> = match &drop_to {
        Some(to) => {
            let sock = privsep::split(to, cfg.config_directory())
                .map_err(|e| MasterError::Setup(format!("privilege separation: {e}")))?;
            Arc::new(Agents::new(sock))
        }
        None => Arc::new(InProcess),
    };
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .max_blocking_threads(256)
        .build()
        .map_err(|e| MasterError::Setup(format!("runtime: {e}")))?;
    let config_dir = cfg.config_directory().to_path_buf();
    let runtime = Arc::new(Runtime::new(cfg, exec, root));
    rt.block_on(serve(runtime, config_dir, foreground, bound))
}

async fn serve(
    rt: Arc<Runtime>,
    config_dir: PathBuf,
    foreground: bool,
    bound: Vec<crate::smtpd::Bound>,
) -> Result<i32, MasterError> {
    info!(
        "master",
        "daemon started -- version {VERSION}, configuration {}",
        config_dir.display()
    );
    match rt.queue.remove_stale_temp_files(Duration::from_secs(3600)) {
        Ok(n) if n > 0 => info!("master", "removed {n} stale temporary queue files"),
        Ok(_) => {}
        Err(e) => warning!("master", "{e}"),
    }
    let shutdown = CancellationToken::new();
    {
        let rt = rt.clone();
        tokio::task::spawn_blocking(move || Qmgr::recover_active(&rt))
            .await
            .map_err(|e| MasterError::Setup(e.to_string()))?;
    }
    let (qmgr, tx) = Qmgr::new(rt.clone());
    rt.set_qmgr(tx.clone());
    let tracker = tokio_util::task::TaskTracker::new();
    tracker.spawn(qmgr.run(shutdown.clone()));
    tracker.spawn(pickup::run(rt.clone(), shutdown.clone()));
    tracker.spawn(qmgr_fifo(
        rt.queue.public("qmgr"),
        tx.clone(),
        shutdown.clone(),
    ));
    tracker.spawn(crate::smtpd::run(rt.clone(), bound, shutdown.clone()));
    tracker.close();

    use tokio::signal::unix::{signal, SignalKind};
    let mut term =
        signal(SignalKind::terminate()).map_err(|e| MasterError::Setup(e.to_string()))?;
    let mut int = signal(SignalKind::interrupt()).map_err(|e| MasterError::Setup(e.to_string()))?;
    let mut hup = signal(SignalKind::hangup()).map_err(|e| MasterError::Setup(e.to_string()))?;
    let sig = loop {
        tokio::select! {
            _ = term.recv() => break 15,
            _ = int.recv() => break 2,
            _ = hup.recv() => {
                match MainCf::load(&config_dir) {
                    Ok(cfg) => {
                        if let Err(e) = init_logging(&cfg, foreground) {
                            warning!("master", "{e}");
                        }
                        rt.reload(cfg);
                        info!("master", "reload -- version {VERSION}, configuration {}", config_dir.display());
                        let _ = tx.send(Event::Trigger(b'I'));
                    }
                    Err(e) => warning!("master", "reload failed, keeping the old configuration: {e}"),
                }
            }
        }
    };
    info!("master", "terminating on signal {sig}");
    shutdown.cancel();
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
    // postfix stop leaves nothing behind: commands started by in-process deliveries too.
    crate::local::command::kill_running();
    Ok(0)
}

/// Read trigger bytes from the `public/qmgr` FIFO (postqueue -f writes `FADI`).
async fn qmgr_fifo(path: PathBuf, tx: crate::qmgr::Sender, shutdown: CancellationToken) {
    let rx = match tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&path)
    {
        Ok(rx) => rx,
        Err(e) => {
            warning!("qmgr", "open {}: {e}", path.display());
            return;
        }
    };
    let mut buf = [0u8; 64];
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => return,
            r = rx.readable() => {
                if r.is_err() {
                    return;
                }
                match rx.try_read(&mut buf) {
                    Ok(n) => {
                        for &b in &buf[..n] {
                            let _ = tx.send(Event::Trigger(b));
                        }
                    }
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(_) => return,
                }
            }
        }
    }
}

/// Write trigger bytes to a public FIFO without blocking; false when no daemon is listening.
pub fn trigger(queue: &Queue, fifo: &str, bytes: &[u8]) -> bool {
    let path = queue.public(fifo);
    match OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(path)
    {
        Ok(mut f) => f.write_all(bytes).is_ok(),
        Err(_) => false,
    }
}

/// Send SIGTERM to the running master and wait (up to `wait`) until its lock is released.
pub fn stop(queue: &Queue, wait: Duration) -> Result<bool, String> {
    let Some(pid) = running_pid(queue) else {
        return Ok(false);
    };
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .map_err(|e| format!("kill {pid}: {e}"))?;
    let deadline = Instant::now() + wait;
    while running_pid(queue).is_some() {
        if Instant::now() > deadline {
            return Err(format!("the Postfix mail system (pid {pid}) did not stop"));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    Ok(true)
}
