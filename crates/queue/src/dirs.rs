//! The queue directory tree: names, paths, creation with owners and modes, listing, moving.
//!
//! Layout under `queue_directory` (as Postfix): `maildrop incoming active deferred hold corrupt`
//! hold queue files; `public/` holds the `pickup` and `qmgr` FIFOs; `pid/` the master's pid file.
//! A file's name is its queue ID; names starting with `.` are temporary and invisible to scans.
//! Moves between queues are a `rename` within one file system.

use std::fs::{self, DirBuilder, Permissions};
use std::io;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::id;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum QueueName {
    Maildrop,
    Incoming,
    Active,
    Deferred,
    Hold,
    Corrupt,
}

impl QueueName {
    /// The queues that hold messages, in the order `mailq` and `postsuper` walk them.
    pub const ALL: [QueueName; 6] = [
        QueueName::Maildrop,
        QueueName::Incoming,
        QueueName::Active,
        QueueName::Deferred,
        QueueName::Hold,
        QueueName::Corrupt,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            QueueName::Maildrop => "maildrop",
            QueueName::Incoming => "incoming",
            QueueName::Active => "active",
            QueueName::Deferred => "deferred",
            QueueName::Hold => "hold",
            QueueName::Corrupt => "corrupt",
        }
    }

    pub fn parse(name: &str) -> Option<QueueName> {
        QueueName::ALL.into_iter().find(|q| q.as_str() == name)
    }
}

impl std::fmt::Display for QueueName {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Paths inside one queue directory.
#[derive(Clone, Debug)]
pub struct Queue {
    root: PathBuf,
}

/// Who owns the tree when the master runs as root.
#[derive(Clone, Copy, Debug)]
pub struct Owners {
    pub mail_owner_uid: u32,
    pub mail_owner_gid: u32,
    /// `setgid_group`: may drop files into maildrop/ and write the public FIFOs.
    pub setgid_gid: u32,
}

impl Queue {
    pub fn new(root: impl Into<PathBuf>) -> Queue {
        Queue { root: root.into() }
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn dir(&self, q: QueueName) -> PathBuf {
        self.root.join(q.as_str())
    }

    pub fn file(&self, q: QueueName, id: &str) -> PathBuf {
        self.root.join(q.as_str()).join(id)
    }

    pub fn public(&self, name: &str) -> PathBuf {
        self.root.join("public").join(name)
    }

    pub fn pid_file(&self) -> PathBuf {
        self.root.join("pid").join("master.pid")
    }

    /// Create every directory and FIFO that is missing and set owners and modes, as
    /// `postfix set-permissions` does. `owners` is `Some` only when running as root.
    pub fn setup(&self, owners: Option<Owners>) -> io::Result<()> {
        mkdir(&self.root, 0o755, None)?;
        let mail = owners.map(|o| (o.mail_owner_uid, o.mail_owner_gid));
        let drop_group = owners.map(|o| (o.mail_owner_uid, o.setgid_gid));
        for q in QueueName::ALL {
            if q == QueueName::Maildrop {
                // setgid + sticky, write-only for others: see docs/architecture.md.
                mkdir(&self.dir(q), 0o3733, drop_group)?;
            } else {
                mkdir(&self.dir(q), 0o700, mail)?;
            }
        }
        mkdir(&self.root.join("public"), 0o755, drop_group)?;
        mkdir(&self.root.join("pid"), 0o755, None)?;
        for fifo in ["pickup", "qmgr"] {
            let path = self.public(fifo);
            match fs::symlink_metadata(&path) {
                Ok(m) if m.file_type().is_fifo_like() => {}
                Ok(_) => {
                    fs::remove_file(&path)?;
                    make_fifo(&path)?;
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => make_fifo(&path)?,
                Err(e) => return Err(e),
            }
            fs::set_permissions(&path, Permissions::from_mode(0o622))?;
            if let Some((uid, gid)) = drop_group {
                chown(&path, uid, gid)?;
            }
        }
        Ok(())
    }

    /// Queue IDs present in queue `q` (temporary files excluded), unsorted.
    pub fn list(&self, q: QueueName) -> io::Result<Vec<String>> {
        let mut ids = Vec::new();
        let dir = self.dir(q);
        let entries = match fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) => {
                return Err(io::Error::new(
                    e.kind(),
                    format!("scan {}: {e}", dir.display()),
                ))
            }
        };
        for entry in entries {
            let entry = entry?;
            if let Some(name) = entry.file_name().to_str() {
                if id::is_valid(name) {
                    ids.push(name.to_string());
                }
            }
        }
        Ok(ids)
    }

    /// Which queue holds `id`, if any (searched in [`QueueName::ALL`] order).
    pub fn find(&self, id: &str) -> Option<QueueName> {
        if !id::is_valid(id) {
            return None;
        }
        QueueName::ALL
            .into_iter()
            .find(|&q| fs::symlink_metadata(self.file(q, id)).is_ok())
    }

    /// Move a queue file between queues.
    pub fn move_file(&self, id: &str, from: QueueName, to: QueueName) -> io::Result<PathBuf> {
        let src = self.file(from, id);
        let dst = self.file(to, id);
        fs::rename(&src, &dst).map_err(|e| {
            io::Error::new(e.kind(), format!("rename {} to {}: {e}", src.display(), to))
        })?;
        Ok(dst)
    }

    /// Remove temporary files older than `age` left in the queues by a crash. Returns how many.
    pub fn remove_stale_temp_files(&self, age: Duration) -> io::Result<usize> {
        let now = SystemTime::now();
        let mut n = 0;
        for q in QueueName::ALL {
            let Ok(entries) = fs::read_dir(self.dir(q)) else {
                continue;
            };
            for entry in entries.flatten() {
                let name = entry.file_name();
                if !name.to_string_lossy().starts_with(".tmp.") {
                    continue;
                }
                let Ok(meta) = entry.metadata() else { continue };
                let old = meta
                    .modified()
                    .ok()
                    .and_then(|m| now.duration_since(m).ok())
                    .is_some_and(|d| d >= age);
                if old && fs::remove_file(entry.path()).is_ok() {
                    n += 1;
                }
            }
        }
        Ok(n)
    }
}

trait FifoLike {
    fn is_fifo_like(&self) -> bool;
}

impl FifoLike for fs::FileType {
    fn is_fifo_like(&self) -> bool {
        use std::os::unix::fs::FileTypeExt;
        self.is_fifo()
    }
}

fn make_fifo(path: &Path) -> io::Result<()> {
    nix::unistd::mkfifo(path, nix::sys::stat::Mode::from_bits_truncate(0o622)).map_err(|e| {
        io::Error::new(
            io::Error::from_raw_os_error(e as i32).kind(),
            format!("mkfifo {}: {e}", path.display()),
        )
    })
}

fn chown(path: &Path, uid: u32, gid: u32) -> io::Result<()> {
    std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        .map_err(|e| io::Error::new(e.kind(), format!("chown {}: {e}", path.display())))
}

/// Create `path` if missing; then enforce `mode` and, when given, the owner.
fn mkdir(path: &Path, mode: u32, owner: Option<(u32, u32)>) -> io::Result<()> {
    match DirBuilder::new().mode(mode).create(path) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
        Err(e) => {
            return Err(io::Error::new(
                e.kind(),
                format!("create directory {}: {e}", path.display()),
            ))
        }
    }
    let meta = fs::symlink_metadata(path)?;
    if !meta.is_dir() {
        return Err(io::Error::new(
            io::ErrorKind::AlreadyExists,
            format!("{} exists and is not a directory", path.display()),
        ));
    }
    if let Some((uid, gid)) = owner {
        if meta.uid() != uid || meta.gid() != gid {
            chown(path, uid, gid)?;
        }
    }
    // chown clears set-id bits, so set the mode after it.
    if meta.mode() & 0o7777 != mode || owner.is_some() {
        fs::set_permissions(path, Permissions::from_mode(mode))
            .map_err(|e| io::Error::new(e.kind(), format!("chmod {}: {e}", path.display())))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::FileTypeExt;

    #[test]
    fn setup_creates_tree_and_is_idempotent() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(dir.path().join("spool"));
        q.setup(None).unwrap();
        q.setup(None).unwrap();
        for name in QueueName::ALL {
            assert!(q.dir(name).is_dir(), "{name}");
        }
        let md = fs::metadata(q.dir(QueueName::Maildrop)).unwrap();
        assert_eq!(md.mode() & 0o7777, 0o3733);
        let inc = fs::metadata(q.dir(QueueName::Incoming)).unwrap();
        assert_eq!(inc.mode() & 0o7777, 0o700);
        let fifo = fs::symlink_metadata(q.public("pickup")).unwrap();
        assert!(fifo.file_type().is_fifo());
    }

    #[test]
    fn list_skips_temporaries_and_junk() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(dir.path());
        q.setup(None).unwrap();
        let id = id::make(SystemTime::now(), 77);
        fs::write(q.file(QueueName::Deferred, &id), b"").unwrap();
        fs::write(q.dir(QueueName::Deferred).join(".tmp.1.2.3"), b"").unwrap();
        fs::write(q.dir(QueueName::Deferred).join("README"), b"").unwrap();
        assert_eq!(q.list(QueueName::Deferred).unwrap(), vec![id.clone()]);
        assert_eq!(q.find(&id), Some(QueueName::Deferred));
        q.move_file(&id, QueueName::Deferred, QueueName::Hold)
            .unwrap();
        assert_eq!(q.find(&id), Some(QueueName::Hold));
        assert_eq!(q.find("../../x"), None);
    }

    #[test]
    fn stale_temporaries_are_removed() {
        let dir = tempfile::tempdir().unwrap();
        let q = Queue::new(dir.path());
        q.setup(None).unwrap();
        fs::write(q.dir(QueueName::Incoming).join(".tmp.9.9.9"), b"x").unwrap();
        assert_eq!(q.remove_stale_temp_files(Duration::ZERO).unwrap(), 1);
    }
}
