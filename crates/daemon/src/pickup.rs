//! pickup: take messages that `sendmail` dropped into `maildrop/` and hand them to cleanup.
//!
//! Woken by a byte on the `public/pickup` FIFO (sendmail writes one after each submission)
//! and every 60 seconds regardless. A maildrop file is untrusted input from a local user: it
//! must be a regular file with one link (opened without following symlinks), it is decoded
//! with the queue format's checks, only a few attributes are taken from it, and the submitting
//! uid comes from the file's owner, never from its contents. A file that fails those checks is
//! moved to `corrupt/` with a log line.
//!
//! Exactly once: the message keeps the maildrop file's queue ID. The maildrop file is removed
//! after the incoming file is durable and before qmgr hears of it; if a crash comes in
//! between, the next scan finds that ID already queued and only removes the maildrop copy.

use std::io::Read;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::sync::Arc;
use std::time::Duration;

use queue::QueueName;
use tokio_util::sync::CancellationToken;

use crate::cleanup::{CleanupError, Origin, Submission};
use crate::runtime::Runtime;
use crate::{info, warning};

/// Attributes a local user may set through sendmail.
const USER_ATTRS: &[&str] = &[
    "dsn_envid",
    "dsn_ret",
    "body_type",
    "log_ident",
    "rewrite_context",
];

pub async fn run(rt: Arc<Runtime>, shutdown: CancellationToken) {
    let fifo = rt.queue.public("pickup");
    let mut rx = match tokio::net::unix::pipe::OpenOptions::new()
        .read_write(true)
        .open_receiver(&fifo)
    {
        Ok(rx) => Some(rx),
        Err(e) => {
            warning!(
                "pickup",
                "open {}: {e}; scanning maildrop every 60s only",
                fifo.display()
            );
            None
        }
    };
    let mut tick = tokio::time::interval(Duration::from_secs(60));
    let mut buf = [0u8; 256];
    loop {
        tokio::select! {
            _ = shutdown.cancelled() => break,
            _ = tick.tick() => {}
            r = async {
                match rx.as_mut() {
                    Some(rx) => {
                        rx.readable().await?;
                        rx.try_read(&mut buf)
                    }
                    None => std::future::pending().await,
                }
            } => {
                if let Err(e) = r {
                    if e.kind() != std::io::ErrorKind::WouldBlock {
                        warning!("pickup", "read {}: {e}", fifo.display());
                    }
                    continue;
                }
                // Drain further wakeups: one scan covers them all.
                if let Some(rx) = rx.as_mut() {
                    while matches!(rx.try_read(&mut buf), Ok(n) if n > 0) {}
                }
            }
        }
        let rt = rt.clone();
        let _ = tokio::task::spawn_blocking(move || scan(&rt)).await;
    }
}

/// Process every file in maildrop/.
pub fn scan(rt: &Runtime) {
    let mut ids = match rt.queue.list(QueueName::Maildrop) {
        Ok(ids) => ids,
        Err(e) => {
            warning!("pickup", "{e}");
            return;
        }
    };
    ids.sort();
    // Several files at once, so that their commits share directory fsyncs (group commit).
    let next = std::sync::atomic::AtomicUsize::new(0);
    let workers = ids.len().clamp(1, PICKUP_WORKERS);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                let Some(id) = ids.get(i) else { break };
                pick(rt, id);
            });
        }
    });
}

/// Maildrop files processed in parallel by one scan.
const PICKUP_WORKERS: usize = 8;

fn pick(rt: &Runtime, id: &str) {
    let s = rt.settings();
    let path = rt.queue.file(QueueName::Maildrop, id);
    let mut f = match std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(&path)
    {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
        Err(e) => {
            warning!("pickup", "{id}: cannot open maildrop file: {e}");
            if e.raw_os_error() == Some(libc::ELOOP) {
                let _ = std::fs::remove_file(&path);
            }
            return;
        }
    };
    let meta = match f.metadata() {
        Ok(m) => m,
        Err(e) => {
            warning!("pickup", "{id}: cannot stat maildrop file: {e}");
            return;
        }
    };
    let uid = meta.uid();
    if !meta.is_file() || meta.nlink() != 1 {
        warning!(
            "pickup",
            "{id}: uid={uid}: not a regular file with one link; removed"
        );
        let _ = std::fs::remove_file(&path);
        return;
    }
    let cap = s.cleanup.message_size_limit.saturating_mul(2).max(1 << 20) + (1 << 20);
    let mut buf = Vec::new();
    if let Err(e) = (&mut f).take(cap).read_to_end(&mut buf) {
        warning!("pickup", "{id}: cannot read maildrop file: {e}");
        return;
    }
    let decoded = match queue::record::decode(&buf) {
        Ok(d) => d,
        Err(e) => {
            crate::qmgr::active::corrupt(rt, id, QueueName::Maildrop, &format!("uid={uid}: {e}"));
            return;
        }
    };
    if let Some(q) = [
        QueueName::Incoming,
        QueueName::Active,
        QueueName::Deferred,
        QueueName::Hold,
    ]
    .into_iter()
    .find(|&q| rt.queue.file(q, id).exists())
    {
        info!(
            "pickup",
            "{id}: already in the {q} queue; removing the maildrop copy"
        );
        let _ = std::fs::remove_file(&path);
        return;
    }
    let env = decoded.envelope;
    let attrs: Vec<(String, String)> = env
        .attrs
        .iter()
        .filter(|(n, _)| USER_ATTRS.contains(&n.as_str()))
        .cloned()
        .collect();
    let extract = env.attr("extract_recipients") == Some("yes");
    info!("pickup", "{id}: uid={uid} from=<{}>", env.sender);
    let sub = Submission {
        id: Some(id.to_string()),
        arrival: env.arrival,
        sender: env.sender.clone(),
        full_name: env.full_name.clone(),
        recipients: env.recipients.clone(),
        attrs,
        content: buf[decoded.content].to_vec(),
        origin: Origin::Local { uid },
        extract_recipients: extract,
    };
    match s.cleanup.submit(sub) {
        Ok(done) => {
            if let Err(e) = std::fs::remove_file(&path) {
                warning!("pickup", "{id}: cannot remove maildrop file: {e}");
            }
            rt.incoming(&done.id);
        }
        Err(CleanupError::AlreadyQueued(_)) => {
            let _ = std::fs::remove_file(&path);
        }
        Err(e) if e.is_temporary() => {
            warning!("pickup", "{id}: {e}; will try again");
        }
        Err(e) => {
            warning!("pickup", "{id}: uid={uid}: message rejected: {e}");
            let _ = std::fs::remove_file(&path);
        }
    }
}
