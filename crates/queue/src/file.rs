//! Creating, reading and updating one queue file.
//!
//! The commit protocol: create a temporary file (name starts with `.`, so no scan sees it),
//! write, `fdatasync`, rename it to its queue ID without ever replacing an existing file, then
//! make the directory entry durable through a shared [`DirSync`]. Only after that may anyone
//! acknowledge the message. A temporary file that is dropped without commit is removed; one
//! left by a crash is removed by [`crate::dirs::remove_stale_temp_files`].
//!
//! Status records are appended with `O_APPEND`; `fdatasync` is the caller's choice, because a
//! record that only has to survive a process crash (a delivery intent) need not wait for the
//! disk.

use std::fs::{File, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::SystemTime;

use crate::id;
use crate::record::{self, Decoded, FormatError, Status};
use crate::sync::DirSync;

static COUNTER: AtomicU64 = AtomicU64::new(0);

/// A queue file being written.
#[derive(Debug)]
pub struct NewQueueFile {
    file: File,
    dir: PathBuf,
    tmp: PathBuf,
    id: String,
    committed: bool,
}

impl NewQueueFile {
    /// Create a temporary file in `dir` with permission bits `mode`; its queue ID is derived
    /// from the creation time and the new file's inode.
    pub fn create(dir: &Path, mode: u32) -> io::Result<NewQueueFile> {
        let (file, tmp) = create_temp(dir, mode)?;
        let ino = file.metadata()?.ino();
        let id = id::make(SystemTime::now(), ino);
        Ok(NewQueueFile {
            file,
            dir: dir.to_path_buf(),
            tmp,
            id,
            committed: false,
        })
    }

    /// Like [`create`](Self::create), but the file will be committed under `id` (pickup keeps
    /// the ID of the maildrop file it came from).
    pub fn create_with_id(dir: &Path, mode: u32, id: &str) -> io::Result<NewQueueFile> {
        if !id::is_valid(id) {
            return Err(io::Error::new(
                io::ErrorKind::InvalidInput,
                format!("invalid queue ID {id:?}"),
            ));
        }
        let (file, tmp) = create_temp(dir, mode)?;
        Ok(NewQueueFile {
            file,
            dir: dir.to_path_buf(),
            tmp,
            id: id.to_string(),
            committed: false,
        })
    }

    pub fn id(&self) -> &str {
        &self.id
    }

    pub fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.file
            .write_all(bytes)
            .map_err(|e| context(e, "write", &self.tmp))
    }

    /// Make the file durable under its queue ID. `dirsync` must be the one for this directory.
    /// Fails with `AlreadyExists` if a file with this ID is already there.
    pub fn commit(mut self, dirsync: &DirSync) -> io::Result<PathBuf> {
        debug_assert_eq!(dirsync.dir(), self.dir);
        self.file
            .sync_data()
            .map_err(|e| context(e, "fsync", &self.tmp))?;
        let dest = self.dir.join(&self.id);
        rename_noreplace(&self.tmp, &dest)?;
        self.committed = true;
        dirsync.sync()?;
        Ok(dest)
    }
}

impl Drop for NewQueueFile {
    fn drop(&mut self) {
        if !self.committed {
            let _ = std::fs::remove_file(&self.tmp);
        }
    }
}

fn create_temp(dir: &Path, mode: u32) -> io::Result<(File, PathBuf)> {
    loop {
        let n = COUNTER.fetch_add(1, Ordering::Relaxed);
        let nanos = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let tmp = dir.join(format!(".tmp.{}.{n}.{nanos}", std::process::id()));
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)
        {
            Ok(file) => return Ok((file, tmp)),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(context(e, "create", &tmp)),
        }
    }
}

fn context(e: io::Error, what: &str, path: &Path) -> io::Error {
    io::Error::new(e.kind(), format!("{what} {}: {e}", path.display()))
}

/// Rename `from` to `to`, failing with `AlreadyExists` rather than replacing `to`.
pub fn rename_noreplace(from: &Path, to: &Path) -> io::Result<()> {
    nix::fcntl::renameat2(
        nix::fcntl::AT_FDCWD,
        from,
        nix::fcntl::AT_FDCWD,
        to,
        nix::fcntl::RenameFlags::RENAME_NOREPLACE,
    )
    .map_err(|e| {
        context(
            io::Error::from_raw_os_error(e as i32),
            "rename",
            &PathBuf::from(format!("{} to {}", from.display(), to.display())),
        )
    })
}

/// A queue file read from disk.
#[derive(Debug)]
pub struct QueueFile {
    pub path: PathBuf,
    pub decoded: Decoded,
    /// Size of the file on disk when it was read.
    pub file_len: u64,
    pub mtime: SystemTime,
    pub owner_uid: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("{path}: {error}")]
    Format { path: PathBuf, error: FormatError },
}

impl ReadError {
    /// The file is there but unusable: it belongs in `corrupt/`.
    pub fn is_corrupt(&self) -> bool {
        matches!(self, ReadError::Format { .. })
    }
    pub fn is_not_found(&self) -> bool {
        matches!(self, ReadError::Io(e) if e.kind() == io::ErrorKind::NotFound)
    }
}

/// Largest queue file a reader will load (content is capped by message_size_limit far below).
pub const MAX_FILE: u64 = 1 << 31;

/// Read and decode a queue file. Symbolic links are not followed.
pub fn read(path: &Path) -> Result<(QueueFile, Vec<u8>), ReadError> {
    let mut f = OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| context(e, "open", path))?;
    let meta = f.metadata().map_err(|e| context(e, "stat", path))?;
    if !meta.is_file() || meta.len() > MAX_FILE {
        return Err(ReadError::Format {
            path: path.to_path_buf(),
            error: FormatError::BadMagic,
        });
    }
    let mut buf = Vec::with_capacity(meta.len() as usize);
    f.read_to_end(&mut buf)
        .map_err(|e| context(e, "read", path))?;
    let decoded = record::decode(&buf).map_err(|error| ReadError::Format {
        path: path.to_path_buf(),
        error,
    })?;
    Ok((
        QueueFile {
            path: path.to_path_buf(),
            decoded,
            file_len: buf.len() as u64,
            mtime: meta.modified().unwrap_or(SystemTime::UNIX_EPOCH),
            owner_uid: meta.uid(),
        },
        buf,
    ))
}

/// Append status records. With `sync`, they are on disk when this returns.
pub fn append_status(path: &Path, statuses: &[Status], sync: bool) -> io::Result<()> {
    let mut bytes = Vec::new();
    for s in statuses {
        bytes.extend(record::encode_status(s));
    }
    let mut f = OpenOptions::new()
        .append(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| context(e, "open", path))?;
    f.write_all(&bytes)
        .map_err(|e| context(e, "append to", path))?;
    if sync {
        f.sync_data().map_err(|e| context(e, "fsync", path))?;
    }
    Ok(())
}

/// Cut off a torn status record left by a crash, so that later appends follow valid records.
pub fn truncate_torn_tail(path: &Path, valid_len: u64) -> io::Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| context(e, "open", path))?;
    f.set_len(valid_len)
        .map_err(|e| context(e, "truncate", path))?;
    f.sync_data().map_err(|e| context(e, "fsync", path))
}

/// Set a file's modification time (a deferred file's mtime is its next retry time).
pub fn set_mtime(path: &Path, when: SystemTime) -> io::Result<()> {
    let f = OpenOptions::new()
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| context(e, "open", path))?;
    f.set_modified(when)
        .map_err(|e| context(e, "set time of", path))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::record::{encode, Envelope, Recipient};

    fn env() -> Envelope {
        Envelope {
            arrival: SystemTime::now(),
            sender: "a@b".into(),
            full_name: None,
            attrs: vec![],
            recipients: vec![Recipient::new("c@d")],
        }
    }

    #[test]
    fn commit_then_read_then_append() {
        let dir = tempfile::tempdir().unwrap();
        let ds = DirSync::new(dir.path());
        let mut f = NewQueueFile::create(dir.path(), 0o600).unwrap();
        let id = f.id().to_string();
        f.write_all(&encode(&env(), b"hello\n")).unwrap();
        let path = f.commit(&ds).unwrap();
        assert_eq!(path, dir.path().join(&id));
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        assert_eq!(names, vec![id.clone()]);

        append_status(&path, &[Status::Done { rcpt: 0 }], true).unwrap();
        let (qf, buf) = read(&path).unwrap();
        assert_eq!(qf.decoded.statuses, vec![Status::Done { rcpt: 0 }]);
        assert_eq!(&buf[qf.decoded.content.clone()], b"hello\n");
    }

    #[test]
    fn dropped_file_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let mut f = NewQueueFile::create(dir.path(), 0o600).unwrap();
        f.write_all(b"partial").unwrap();
        drop(f);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    #[test]
    fn commit_never_replaces() {
        let dir = tempfile::tempdir().unwrap();
        let ds = DirSync::new(dir.path());
        let a = NewQueueFile::create(dir.path(), 0o600).unwrap();
        let id = a.id().to_string();
        a.commit(&ds).unwrap();
        let b = NewQueueFile::create_with_id(dir.path(), 0o600, &id).unwrap();
        let err = b.commit(&ds).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::AlreadyExists);
        assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn torn_tail_is_cut() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("f");
        let mut bytes = encode(&env(), b"x\n");
        let good = bytes.len() as u64;
        bytes.extend(&record::encode_status(&Status::Done { rcpt: 0 })[..5]);
        std::fs::write(&path, &bytes).unwrap();
        let (qf, _) = read(&path).unwrap();
        assert_eq!(qf.decoded.valid_len as u64, good);
        truncate_torn_tail(&path, good).unwrap();
        append_status(&path, &[Status::Done { rcpt: 0 }], false).unwrap();
        let (qf, _) = read(&path).unwrap();
        assert_eq!(qf.decoded.statuses, vec![Status::Done { rcpt: 0 }]);
    }
}
