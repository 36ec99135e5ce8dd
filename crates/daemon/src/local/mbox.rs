//! Appending to a UNIX mailbox, as local(8) does: lock (`mailbox_delivery_lock`: dotlock,
//! fcntl, flock), refuse symlinks, hard links and (with `strict_mailbox_ownership`) a mailbox
//! owned by someone else, enforce `mailbox_size_limit`, write the From_ line and the message,
//! `fsync`, and on any error truncate the mailbox back to its old length.
//!
//! Crash recovery: when the queue file says a delivery to this recipient started and nothing
//! was recorded after it ([`Stamp::check_first`]), the mailbox is searched for that copy (its
//! text includes the queue ID). A complete copy means the delivery happened: report it as
//! sent and write nothing. A copy cut short at the end of the mailbox is removed before the
//! delivery is done again. This keeps `kill -9` from causing duplicate deliveries.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::os::fd::AsRawFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use super::action::{Done, Envelope, Locking, Stamp};
use super::copy;

/// A held dotlock; removed on drop.
struct DotLock(PathBuf);

impl Drop for DotLock {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// What Postern writes into its dotlocks: who holds it, so that a lock left behind by a
/// crashed delivery on this host is recognised at once instead of after `stale_lock_time`.
fn lock_owner() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_default();
    format!("postern:{host}:{}\n", std::process::id())
}

/// A dotlock written by a Postern process on this host that no longer exists.
fn left_by_dead_postern(lock: &Path) -> bool {
    let Ok(text) = std::fs::read_to_string(lock) else {
        return false;
    };
    let mut parts = text.trim_end().splitn(3, ':');
    let (Some("postern"), Some(host), Some(pid)) = (parts.next(), parts.next(), parts.next())
    else {
        return false;
    };
    let ours = nix::unistd::gethostname().is_ok_and(|h| h.to_string_lossy() == host);
    let Ok(pid) = pid.parse::<i32>() else {
        return false;
    };
    ours && pid > 0
        && nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), None)
            == Err(nix::errno::Errno::ESRCH)
}

fn dotlock(path: &Path, l: &Locking) -> Result<DotLock, String> {
    let mut lock = path.as_os_str().to_owned();
    lock.push(".lock");
    let lock = PathBuf::from(lock);
    for attempt in 0..l.attempts.max(1) {
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&lock)
        {
            Ok(mut f) => {
                let _ = f.write_all(lock_owner().as_bytes());
                return Ok(DotLock(lock));
            }
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                let stale = std::fs::symlink_metadata(&lock)
                    .ok()
                    .and_then(|m| m.modified().ok())
                    .and_then(|m| SystemTime::now().duration_since(m).ok())
                    .is_some_and(|age| age > l.stale)
                    || left_by_dead_postern(&lock);
                if stale {
                    let _ = std::fs::remove_file(&lock);
                    continue;
                }
                if attempt + 1 < l.attempts {
                    std::thread::sleep(l.delay);
                }
            }
            Err(e) => {
                return Err(format!(
                    "unable to create lock file {}: {e}",
                    lock.display()
                ))
            }
        }
    }
    Err(format!(
        "unable to create lock file {}: File exists",
        lock.display()
    ))
}

fn kernel_lock(file: &File, l: &Locking) -> Result<(), String> {
    for attempt in 0..l.attempts.max(1) {
        let mut ok = true;
        if l.fcntl {
            let fl = libc::flock {
                l_type: libc::F_WRLCK as libc::c_short,
                l_whence: libc::SEEK_SET as libc::c_short,
                l_start: 0,
                l_len: 0,
                l_pid: 0,
            };
            // SAFETY: F_SETLK with a valid, initialized flock struct on an open descriptor.
            let r = unsafe { libc::fcntl(file.as_raw_fd(), libc::F_SETLK, &fl) };
            ok &= r == 0;
        }
        if ok && l.flock {
            // SAFETY: flock on an open descriptor has no memory-safety preconditions.
            let r = unsafe { libc::flock(file.as_raw_fd(), libc::LOCK_EX | libc::LOCK_NB) };
            ok &= r == 0;
        }
        if ok {
            return Ok(());
        }
        let err = io::Error::last_os_error();
        if !matches!(err.raw_os_error(), Some(libc::EAGAIN) | Some(libc::EACCES)) {
            return Err(format!("unable to lock for exclusive access: {err}"));
        }
        if attempt + 1 < l.attempts {
            std::thread::sleep(l.delay);
        }
    }
    Err("unable to lock for exclusive access: Resource temporarily unavailable".into())
}

fn user_of(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

/// DSN for a write error: over quota or over size is permanent (Postfix's mbox_dsn).
fn write_dsn(e: &io::Error) -> &'static str {
    match e.raw_os_error() {
        Some(libc::EFBIG) | Some(libc::EDQUOT) => "5.2.2",
        Some(libc::ENOSPC) => "4.3.1",
        _ => "4.2.0",
    }
}

#[allow(clippy::too_many_arguments)] // the fields of Action::Mbox, one by one
pub fn deliver(
    path: &Path,
    locking: &Locking,
    size_limit: u64,
    require_owner: Option<u32>,
    envelope: &Envelope,
    stamp: &Stamp,
    message: &[u8],
    what: &str,
) -> Done {
    let fail = |dsn: &str, why: String| -> Done {
        let text = format!(
            "cannot update {what} {} for user {}. {why}",
            path.display(),
            user_of(path)
        );
        if dsn.starts_with('5') {
            Done::bounce(dsn, text)
        } else {
            Done::defer(dsn, text)
        }
    };
    let _dot = if locking.dotlock {
        match dotlock(path, locking) {
            Ok(d) => Some(d),
            Err(e) => return fail("4.2.0", e),
        }
    } else {
        None
    };
    let mut file = match OpenOptions::new()
        .read(true)
        .append(true)
        .create(true)
        .mode(0o600)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
    {
        Ok(f) => f,
        Err(e) if e.raw_os_error() == Some(libc::ELOOP) => {
            return fail("5.2.0", "file is a symbolic link".into())
        }
        Err(e) => return fail("4.2.0", format!("cannot open file: {e}")),
    };
    let meta = match file.metadata() {
        Ok(m) => m,
        Err(e) => return fail("4.2.0", format!("cannot examine file: {e}")),
    };
    if !meta.is_file() {
        return fail("5.2.0", "file is not a regular file".into());
    }
    if meta.nlink() > 1 {
        return fail("4.2.0", "file has too many hard links".into());
    }
    if let Some(uid) = require_owner {
        if meta.uid() != uid {
            return fail("4.2.0", "file has wrong owner".into());
        }
    }
    if let Err(e) = kernel_lock(&file, locking) {
        return fail("4.2.0", e);
    }

    let now = SystemTime::now();
    let rest = copy::body(envelope, message, copy::MBOX);
    if stamp.check_first {
        match recover(&mut file, &rest, &stamp.queue_id) {
            Ok(true) => return Done::Sent(format!("delivered to {what}")),
            Ok(false) => {}
            Err(e) => return fail("4.2.0", format!("cannot check for an earlier copy: {e}")),
        }
    }
    let start = match file.seek(SeekFrom::End(0)) {
        Ok(n) => n,
        Err(e) => return fail("4.2.0", format!("cannot seek: {e}")),
    };
    let from = copy::from_line(&envelope.sender, now);
    let total = start + from.len() as u64 + rest.len() as u64;
    if size_limit > 0 && total > size_limit {
        return fail("5.2.2", "error writing message: File too large".into());
    }
    let mut buf = Vec::with_capacity(from.len() + rest.len());
    buf.extend_from_slice(from.as_bytes());
    buf.extend_from_slice(&rest);
    let written = file.write_all(&buf).and_then(|_| file.sync_data());
    if let Err(e) = written {
        let _ = file.set_len(start);
        let _ = file.sync_data();
        return fail(write_dsn(&e), format!("error writing message: {e}"));
    }
    Done::Sent(format!("delivered to {what}"))
}

/// Look for a copy of `rest` (everything after the From_ line) left by an interrupted
/// delivery. Returns true when a complete copy is present; removes a torn one at the end.
fn recover(file: &mut File, rest: &[u8], queue_id: &str) -> io::Result<bool> {
    let mut data = Vec::new();
    file.seek(SeekFrom::Start(0))?;
    file.read_to_end(&mut data)?;
    // The needle runs through the line that carries the queue ID, so it is unique.
    let needle_end = memchr::memmem::find(rest, queue_id.as_bytes())
        .and_then(|p| memchr::memchr(b'\n', &rest[p..]).map(|n| p + n + 1))
        .unwrap_or(rest.len());
    let needle = &rest[..needle_end];
    if let Some(p) = memchr::memmem::rfind(&data, needle) {
        if data.len() - p >= rest.len() && &data[p..p + rest.len()] == rest {
            return Ok(true);
        }
        if rest.starts_with(&data[p..]) {
            truncate_at_from_line(file, &data, p)?;
        }
        return Ok(false);
    }
    // Torn before the queue ID made it: the mailbox ends with a From_ line (perhaps cut
    // short) followed by a prefix of ours.
    let boundary = partial_from_at_end(&data).or_else(|| {
        memchr::memmem::rfind(&data, b"\n\nFrom ")
            .map(|p| p + 2)
            .or(data.starts_with(b"From ").then_some(0))
    });
    if let Some(c) = boundary {
        if is_torn_copy(&data[c..], rest) {
            file.set_len(c as u64)?;
            file.sync_data()?;
        }
    }
    Ok(false)
}

/// Where a From_ line that was cut within its first five bytes starts, if the data ends so.
fn partial_from_at_end(data: &[u8]) -> Option<usize> {
    (1..5).find_map(|k| {
        let c = data.len().checked_sub(k)?;
        let at_boundary = c == 0 || data[..c].ends_with(b"\n\n");
        (at_boundary && data[c..] == b"From "[..k]).then_some(c)
    })
}

/// Is `tail` (starting at a From_ line) an incomplete copy of the delivery whose text after the
/// From_ line is `rest`?
fn is_torn_copy(tail: &[u8], rest: &[u8]) -> bool {
    if tail.len() < 5 {
        return !tail.is_empty() && b"From ".starts_with(tail);
    }
    if !tail.starts_with(b"From ") {
        return false;
    }
    match memchr::memchr(b'\n', tail) {
        None => tail.len() < 1024,
        Some(e) => {
            let after = &tail[e + 1..];
            after.len() < rest.len() && rest.starts_with(after)
        }
    }
}

fn truncate_at_from_line(file: &File, data: &[u8], p: usize) -> io::Result<()> {
    let line_start = if p == 0 {
        0
    } else {
        memchr::memrchr(b'\n', &data[..p - 1]).map_or(0, |n| n + 1)
    };
    if data[line_start..].starts_with(b"From ") {
        file.set_len(line_start as u64)?;
        file.sync_data()?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn locking() -> Locking {
        Locking {
            fcntl: true,
            dotlock: true,
            flock: false,
            attempts: 3,
            delay: Duration::from_millis(10),
            stale: Duration::from_secs(500),
        }
    }

    fn env() -> Envelope {
        Envelope {
            sender: "alice@example.com".into(),
            return_path: true,
            original_to: "bob@example.com".into(),
            delivered_to: "bob@example.com".into(),
        }
    }

    fn msg(id: &str) -> Vec<u8> {
        format!("Received: by host (Postern)\n\tid {id}; date\nSubject: t\n\nFrom me\nbody\n")
            .into_bytes()
    }

    fn stamp(id: &str, check: bool) -> Stamp {
        Stamp {
            queue_id: id.into(),
            rcpt: 0,
            arrival_secs: 0,
            check_first: check,
        }
    }

    #[test]
    fn appends_and_quotes() {
        let dir = tempfile::tempdir().unwrap();
        let mb = dir.path().join("bob");
        for id in ["ID1zA", "ID2zB"] {
            let d = deliver(
                &mb,
                &locking(),
                0,
                None,
                &env(),
                &stamp(id, false),
                &msg(id),
                "mailbox",
            );
            assert_eq!(d, Done::Sent("delivered to mailbox".into()));
        }
        let text = std::fs::read_to_string(&mb).unwrap();
        assert_eq!(text.matches("\nFrom alice@example.com  ").count(), 1);
        assert!(text.starts_with("From alice@example.com  "));
        assert_eq!(text.matches(">From me").count(), 2);
        assert!(text.ends_with("body\n\n"));
        assert!(!dir.path().join("bob.lock").exists());
    }

    #[test]
    fn size_limit_bounces_and_leaves_mailbox_unchanged() {
        let dir = tempfile::tempdir().unwrap();
        let mb = dir.path().join("bob");
        std::fs::write(&mb, b"").unwrap();
        let d = deliver(
            &mb,
            &locking(),
            50,
            None,
            &env(),
            &stamp("X", false),
            &msg("X"),
            "mailbox",
        );
        assert!(
            matches!(d, Done::Bounce { ref dsn, .. } if dsn == "5.2.2"),
            "{d:?}"
        );
        assert_eq!(std::fs::metadata(&mb).unwrap().len(), 0);
    }

    #[test]
    fn symlink_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let target = dir.path().join("target");
        std::fs::write(&target, b"").unwrap();
        let mb = dir.path().join("bob");
        std::os::unix::fs::symlink(&target, &mb).unwrap();
        let d = deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("X", false),
            &msg("X"),
            "mailbox",
        );
        assert!(matches!(d, Done::Bounce { .. }), "{d:?}");
        assert_eq!(std::fs::metadata(&target).unwrap().len(), 0);
    }

    #[test]
    fn dotlock_of_a_dead_postern_process_is_taken_over() {
        let dir = tempfile::tempdir().unwrap();
        let mb = dir.path().join("bob");
        let host = nix::unistd::gethostname()
            .unwrap()
            .to_string_lossy()
            .into_owned();
        // A pid that cannot exist (above pid_max).
        std::fs::write(
            dir.path().join("bob.lock"),
            format!("postern:{host}:2147483646\n"),
        )
        .unwrap();
        let d = deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("X", false),
            &msg("X"),
            "mailbox",
        );
        assert_eq!(d, Done::Sent("delivered to mailbox".into()));
        // Our own live pid is respected.
        std::fs::write(
            dir.path().join("bob.lock"),
            format!("postern:{host}:{}\n", std::process::id()),
        )
        .unwrap();
        let d = deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("Y", false),
            &msg("Y"),
            "mailbox",
        );
        assert!(matches!(d, Done::Defer { .. }), "{d:?}");
    }

    #[test]
    fn busy_dotlock_defers() {
        let dir = tempfile::tempdir().unwrap();
        let mb = dir.path().join("bob");
        std::fs::write(dir.path().join("bob.lock"), b"").unwrap();
        let d = deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("X", false),
            &msg("X"),
            "mailbox",
        );
        assert!(matches!(d, Done::Defer { .. }), "{d:?}");
    }

    #[test]
    fn recovery_finds_complete_copy() {
        let dir = tempfile::tempdir().unwrap();
        let mb = dir.path().join("bob");
        deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("ID1zA", false),
            &msg("ID1zA"),
            "mailbox",
        );
        deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("ID2zB", false),
            &msg("ID2zB"),
            "mailbox",
        );
        let before = std::fs::read(&mb).unwrap();
        let d = deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("ID1zA", true),
            &msg("ID1zA"),
            "mailbox",
        );
        assert_eq!(d, Done::Sent("delivered to mailbox".into()));
        assert_eq!(std::fs::read(&mb).unwrap(), before);
    }

    #[test]
    fn recovery_removes_torn_copy_at_every_cut() {
        let dir = tempfile::tempdir().unwrap();
        let mb = dir.path().join("bob");
        deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("ID0zA", false),
            &msg("ID0zA"),
            "mailbox",
        );
        let base = std::fs::read(&mb).unwrap();
        deliver(
            &mb,
            &locking(),
            0,
            None,
            &env(),
            &stamp("ID1zA", false),
            &msg("ID1zA"),
            "mailbox",
        );
        let full = std::fs::read(&mb).unwrap();
        for cut in base.len() + 1..full.len() {
            std::fs::write(&mb, &full[..cut]).unwrap();
            let d = deliver(
                &mb,
                &locking(),
                0,
                None,
                &env(),
                &stamp("ID1zA", true),
                &msg("ID1zA"),
                "mailbox",
            );
            assert_eq!(d, Done::Sent("delivered to mailbox".into()));
            let now = std::fs::read(&mb).unwrap();
            assert_eq!(&now[..base.len()], &base[..], "cut {cut}");
            let tail = String::from_utf8_lossy(&now[base.len()..]).into_owned();
            assert_eq!(tail.matches("id ID1zA;").count(), 1, "cut {cut}: {tail}");
            assert!(tail.starts_with("From alice@example.com  "), "cut {cut}");
        }
    }
}
