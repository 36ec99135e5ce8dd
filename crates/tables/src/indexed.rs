//! Postern's indexed table file (`hash:`, `btree:`, `dbm:`, `lmdb:`, `cdb:`), format version 1.
//!
//! Owns the byte format specified in `docs/tables.md`, its encoder, its validating decoder, the
//! atomic write used by `postmap`/`postalias`, and [`IndexedTable`], the reader the daemon and
//! `postmap -q` share.
//!
//! Format: magic, version, flags, entry count, an index of record offsets in key order, the
//! records (`key_len value_len key value`), and an FNV-1a 64 checksum of everything before it.
//! Keys are unique and strictly increasing byte strings, so a lookup is a binary search.
//!
//! Invariants:
//! - [`IndexedFile::decode`] checks every length, offset, the key order, UTF-8 and the checksum
//!   before returning, so lookups on a decoded file cannot fail; it never allocates more than a
//!   small multiple of the input size, and never panics on any input.
//! - [`write_atomic`] writes a temporary file in the target directory, `fsync`s it, renames it
//!   over the old file and `fsync`s the directory: a reader sees the old file or the new one.
//! - [`IndexedTable`] re-checks the file's identity (device, inode, size, mtime) at most once
//!   per second and re-reads it when it changed. A missing or damaged file makes lookups fail
//!   with `Unavailable` (Postfix defers the mail); a database older than its source file logs
//!   Postfix's `database X is older than source file Y` warning once per database version.

use std::collections::BTreeMap;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::error::{errno_text, TableError};
use crate::warn::Warner;
use crate::Table;

/// First eight bytes of every indexed table file.
pub const MAGIC: &[u8; 8] = b"PSTNMAP\n";
/// The only format version this code reads and writes.
pub const VERSION: u32 = 1;
/// Flag bit: keys were folded to lower case when the file was built (informational).
pub const FLAG_FOLDED: u32 = 1;

const HEADER_LEN: usize = 24;
const INDEX_ENTRY_LEN: usize = 8;
const RECORD_HEADER_LEN: usize = 8;
const CHECKSUM_LEN: usize = 8;

/// The file name suffix Postfix uses for an indexed type (`hash` → `.db`), or `None` for a type
/// that is not an indexed file.
pub fn suffix_for(kind: &str) -> Option<&'static str> {
    match kind {
        "hash" | "btree" | "dbm" => Some(".db"),
        "lmdb" => Some(".lmdb"),
        "cdb" => Some(".cdb"),
        _ => None,
    }
}

/// The database path for a source path: `/etc/aliases` + `hash` → `/etc/aliases.db`.
pub fn db_path(kind: &str, source: &Path) -> Option<PathBuf> {
    let suffix = suffix_for(kind)?;
    let mut s = source.as_os_str().to_owned();
    s.push(suffix);
    Some(PathBuf::from(s))
}

/// FNV-1a, 64 bits: the file checksum (catches truncation and stray writes, not malice).
pub fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in bytes {
        hash ^= u64::from(b);
        hash = hash.wrapping_mul(0x0100_0000_01b3);
    }
    hash
}

/// Encode `entries` (already folded as wanted) as a version 1 file.
pub fn encode(entries: &BTreeMap<String, String>, folded: bool) -> Result<Vec<u8>, TableError> {
    let too_big = |what: &str| TableError::Corrupt {
        path: PathBuf::from("<memory>"),
        message: format!("{what} too large for the indexed format"),
    };
    let count = entries.len();
    let records: usize = entries
        .iter()
        .map(|(k, v)| RECORD_HEADER_LEN + k.len() + v.len())
        .sum();
    let mut out = Vec::with_capacity(HEADER_LEN + count * INDEX_ENTRY_LEN + records + CHECKSUM_LEN);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&VERSION.to_le_bytes());
    let flags = if folded { FLAG_FOLDED } else { 0 };
    out.extend_from_slice(&flags.to_le_bytes());
    out.extend_from_slice(&(count as u64).to_le_bytes());
    let mut offset = (HEADER_LEN + count * INDEX_ENTRY_LEN) as u64;
    for (k, v) in entries {
        out.extend_from_slice(&offset.to_le_bytes());
        offset += (RECORD_HEADER_LEN + k.len() + v.len()) as u64;
    }
    for (k, v) in entries {
        let klen = u32::try_from(k.len()).map_err(|_| too_big("key"))?;
        let vlen = u32::try_from(v.len()).map_err(|_| too_big("value"))?;
        out.extend_from_slice(&klen.to_le_bytes());
        out.extend_from_slice(&vlen.to_le_bytes());
        out.extend_from_slice(k.as_bytes());
        out.extend_from_slice(v.as_bytes());
    }
    let sum = fnv1a64(&out);
    out.extend_from_slice(&sum.to_le_bytes());
    Ok(out)
}

/// A decoded, validated indexed file held in memory.
#[derive(Debug, Clone)]
pub struct IndexedFile {
    bytes: Vec<u8>,
    entries: Vec<(Range<usize>, Range<usize>)>,
    flags: u32,
}

fn read_u32(bytes: &[u8], at: usize) -> Option<u32> {
    let b = bytes.get(at..at.checked_add(4)?)?;
    Some(u32::from_le_bytes([b[0], b[1], b[2], b[3]]))
}

fn read_u64(bytes: &[u8], at: usize) -> Option<u64> {
    let b = bytes.get(at..at.checked_add(8)?)?;
    let mut a = [0u8; 8];
    a.copy_from_slice(b);
    Some(u64::from_le_bytes(a))
}

impl IndexedFile {
    /// Validate and index `bytes`. `path` only names the file in errors.
    pub fn decode(bytes: Vec<u8>, path: &Path) -> Result<IndexedFile, TableError> {
        let corrupt = |message: &str| TableError::Corrupt {
            path: path.to_path_buf(),
            message: message.to_string(),
        };
        if bytes.len() < HEADER_LEN + CHECKSUM_LEN {
            return Err(corrupt("file too short"));
        }
        if bytes.get(..MAGIC.len()) != Some(&MAGIC[..]) {
            return Err(corrupt("not a Postern table file (bad magic)"));
        }
        let version = read_u32(&bytes, 8).ok_or_else(|| corrupt("file too short"))?;
        if version != VERSION {
            return Err(corrupt(&format!("unsupported format version {version}")));
        }
        let flags = read_u32(&bytes, 12).ok_or_else(|| corrupt("file too short"))?;
        let count = read_u64(&bytes, 16).ok_or_else(|| corrupt("file too short"))?;
        let body_end = bytes.len() - CHECKSUM_LEN;
        let stored = read_u64(&bytes, body_end).ok_or_else(|| corrupt("file too short"))?;
        if fnv1a64(&bytes[..body_end]) != stored {
            return Err(corrupt("checksum mismatch"));
        }
        // Each entry needs an index slot and a record header: bound count by the input size
        // before allocating anything proportional to it.
        let max_count = (body_end - HEADER_LEN) / (INDEX_ENTRY_LEN + RECORD_HEADER_LEN);
        let count = usize::try_from(count)
            .ok()
            .filter(|c| *c <= max_count)
            .ok_or_else(|| corrupt("entry count larger than the file"))?;
        let records_start = HEADER_LEN + count * INDEX_ENTRY_LEN;
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let at = HEADER_LEN + i * INDEX_ENTRY_LEN;
            let off = read_u64(&bytes, at).ok_or_else(|| corrupt("index out of bounds"))?;
            let off = usize::try_from(off)
                .ok()
                .filter(|o| *o >= records_start && *o <= body_end)
                .ok_or_else(|| corrupt("record offset out of bounds"))?;
            let klen = read_u32(&bytes, off).ok_or_else(|| corrupt("record out of bounds"))?;
            let vlen = read_u32(&bytes, off + 4).ok_or_else(|| corrupt("record out of bounds"))?;
            let kstart = off + RECORD_HEADER_LEN;
            let kend = kstart
                .checked_add(klen as usize)
                .filter(|e| *e <= body_end)
                .ok_or_else(|| corrupt("key out of bounds"))?;
            let vend = kend
                .checked_add(vlen as usize)
                .filter(|e| *e <= body_end)
                .ok_or_else(|| corrupt("value out of bounds"))?;
            if std::str::from_utf8(&bytes[kstart..kend]).is_err()
                || std::str::from_utf8(&bytes[kend..vend]).is_err()
            {
                return Err(corrupt("key or value is not UTF-8"));
            }
            if let Some((prev, _)) = entries.last() {
                let prev: &Range<usize> = prev;
                if bytes[prev.clone()] >= bytes[kstart..kend] {
                    return Err(corrupt("keys not in strictly increasing order"));
                }
            }
            entries.push((kstart..kend, kend..vend));
        }
        Ok(IndexedFile {
            bytes,
            entries,
            flags,
        })
    }

    fn text(&self, range: &Range<usize>) -> &str {
        // Every range was checked to be in bounds and UTF-8 by `decode`.
        self.bytes
            .get(range.clone())
            .and_then(|b| std::str::from_utf8(b).ok())
            .unwrap_or("")
    }

    /// Exact-key lookup (binary search).
    pub fn get(&self, key: &str) -> Option<&str> {
        let idx = self
            .entries
            .binary_search_by(|(k, _)| self.bytes.get(k.clone()).unwrap_or(&[]).cmp(key.as_bytes()))
            .ok()?;
        self.entries.get(idx).map(|(_, v)| self.text(v))
    }

    /// All entries in database (byte-wise key) order.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> + '_ {
        self.entries
            .iter()
            .map(|(k, v)| (self.text(k), self.text(v)))
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.entries.len()
    }

    /// True when the file has no entries.
    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// True when the keys were folded to lower case at build time.
    pub fn folded(&self) -> bool {
        self.flags & FLAG_FOLDED != 0
    }

    /// Copy the entries into an ordered map (for `postmap -i` and `-d`).
    pub fn to_map(&self) -> BTreeMap<String, String> {
        self.iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }
}

/// How a new database file is created.
#[derive(Debug, Clone, Copy)]
pub struct WriteOptions {
    /// File mode, set explicitly (the umask does not apply).
    pub mode: u32,
    /// Owner to give the new file (only effective when running as root).
    pub owner: Option<(u32, u32)>,
}

impl Default for WriteOptions {
    fn default() -> WriteOptions {
        WriteOptions {
            mode: 0o644,
            owner: None,
        }
    }
}

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

/// Write `bytes` to `path` atomically: temp file in the same directory, write, `fsync`,
/// optional `fchown`, rename over `path`, `fsync` of the directory.
pub fn write_atomic(path: &Path, bytes: &[u8], opts: WriteOptions) -> Result<(), TableError> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "table".to_string());
    let tmp = dir.join(format!(
        ".{name}.{}.{}.tmp",
        std::process::id(),
        TEMP_COUNTER.fetch_add(1, Ordering::Relaxed)
    ));
    let result = write_temp_and_rename(&tmp, path, &dir, bytes, opts);
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

fn write_temp_and_rename(
    tmp: &Path,
    path: &Path,
    dir: &Path,
    bytes: &[u8],
    opts: WriteOptions,
) -> Result<(), TableError> {
    let ctx = |what: &str, p: &Path| format!("{what} {}", p.display());
    let mut file = OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(opts.mode & 0o7777)
        .open(tmp)
        .map_err(|e| TableError::io(ctx("create", tmp), e))?;
    // Set the mode explicitly so the umask does not narrow what the source file allows.
    file.set_permissions(std::os::unix::fs::PermissionsExt::from_mode(
        opts.mode & 0o7777,
    ))
    .map_err(|e| TableError::io(ctx("chmod", tmp), e))?;
    if let Some((uid, gid)) = opts.owner {
        if nix::unistd::geteuid().is_root() {
            nix::unistd::fchown(
                &file,
                Some(nix::unistd::Uid::from_raw(uid)),
                Some(nix::unistd::Gid::from_raw(gid)),
            )
            .map_err(|e| TableError::io(ctx("chown", tmp), std::io::Error::from(e)))?;
        }
    }
    file.write_all(bytes)
        .map_err(|e| TableError::io(ctx("write", tmp), e))?;
    file.sync_all()
        .map_err(|e| TableError::io(ctx("fsync", tmp), e))?;
    drop(file);
    std::fs::rename(tmp, path).map_err(|e| {
        TableError::io(format!("rename {} to {}", tmp.display(), path.display()), e)
    })?;
    File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| TableError::io(ctx("fsync directory", dir), e))?;
    Ok(())
}

/// Read and decode a database file, with Postfix's `open database X: reason` wording on error.
pub fn read_file(path: &Path) -> Result<(IndexedFile, std::fs::Metadata), String> {
    let mut file = File::open(path)
        .map_err(|e| format!("open database {}: {}", path.display(), errno_text(&e)))?;
    let meta = file
        .metadata()
        .map_err(|e| format!("fstat database {}: {}", path.display(), errno_text(&e)))?;
    let mut bytes = Vec::with_capacity(usize::try_from(meta.len()).unwrap_or(0));
    std::io::Read::read_to_end(&mut file, &mut bytes)
        .map_err(|e| format!("read database {}: {}", path.display(), errno_text(&e)))?;
    let decoded = IndexedFile::decode(bytes, path).map_err(|e| e.to_string())?;
    Ok((decoded, meta))
}

/// What identifies one version of a file on disk.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct FileIdent {
    dev: u64,
    ino: u64,
    size: u64,
    mtime: i64,
    mtime_nsec: i64,
}

impl FileIdent {
    fn of(meta: &std::fs::Metadata) -> FileIdent {
        FileIdent {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.size(),
            mtime: meta.mtime(),
            mtime_nsec: meta.mtime_nsec(),
        }
    }
}

#[derive(Debug)]
struct Loaded {
    file: Arc<IndexedFile>,
    ident: FileIdent,
    owner: (u32, u32),
}

#[derive(Debug)]
struct State {
    current: Result<Loaded, String>,
    checked: Option<Instant>,
    failed_ident: Option<FileIdent>,
    warned_stale: Option<FileIdent>,
}

/// The reader for `hash:`/`btree:`/`dbm:`/`lmdb:`/`cdb:` tables.
pub struct IndexedTable {
    spec: String,
    source: PathBuf,
    db: PathBuf,
    recheck: Duration,
    warner: Warner,
    state: Mutex<State>,
}

impl std::fmt::Debug for IndexedTable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IndexedTable")
            .field("spec", &self.spec)
            .field("db", &self.db)
            .finish_non_exhaustive()
    }
}

impl IndexedTable {
    /// Open `kind:source` (the database is `source` + the kind's suffix). Never fails: a
    /// missing or bad file shows up as `Unavailable` on lookup, and is picked up once fixed.
    pub(crate) fn open(
        spec: &str,
        kind: &str,
        source: &Path,
        warner: Warner,
    ) -> Result<IndexedTable, TableError> {
        let db =
            db_path(kind, source).ok_or_else(|| TableError::UnsupportedType(kind.to_string()))?;
        let table = IndexedTable {
            spec: spec.to_string(),
            source: source.to_path_buf(),
            db,
            recheck: Duration::from_secs(1),
            warner,
            state: Mutex::new(State {
                current: Err("not yet opened".to_string()),
                checked: None,
                failed_ident: None,
                warned_stale: None,
            }),
        };
        table.refresh(true);
        Ok(table)
    }

    /// Change how often the file's identity is re-checked (tests use zero).
    pub fn set_recheck_interval(&mut self, every: Duration) {
        self.recheck = every;
    }

    /// The database file path.
    pub fn db_path(&self) -> &Path {
        &self.db
    }

    /// The current file contents, re-read if it changed on disk.
    pub fn snapshot(&self) -> Result<Arc<IndexedFile>, TableError> {
        self.refresh(false);
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        match &state.current {
            Ok(loaded) => Ok(loaded.file.clone()),
            Err(reason) => Err(TableError::Unavailable {
                spec: self.spec.clone(),
                reason: reason.clone(),
            }),
        }
    }

    fn refresh(&self, force: bool) {
        let mut state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        let now = Instant::now();
        if !force {
            if let Some(at) = state.checked {
                if now.duration_since(at) < self.recheck {
                    return;
                }
            }
        }
        state.checked = Some(now);
        let ident = match std::fs::metadata(&self.db) {
            Ok(meta) => FileIdent::of(&meta),
            Err(e) => {
                state.current = Err(format!(
                    "open database {}: {}",
                    self.db.display(),
                    errno_text(&e)
                ));
                state.failed_ident = None;
                return;
            }
        };
        let unchanged = match &state.current {
            Ok(loaded) => loaded.ident == ident,
            Err(_) => state.failed_ident == Some(ident),
        };
        if unchanged {
            return;
        }
        match read_file(&self.db) {
            Ok((file, meta)) => {
                let ident = FileIdent::of(&meta);
                self.check_stale(&mut state, &meta, ident);
                state.current = Ok(Loaded {
                    file: Arc::new(file),
                    ident,
                    owner: (meta.uid(), meta.gid()),
                });
                state.failed_ident = None;
            }
            Err(reason) => {
                state.current = Err(reason);
                state.failed_ident = Some(ident);
            }
        }
    }

    fn check_stale(&self, state: &mut State, db: &std::fs::Metadata, ident: FileIdent) {
        if state.warned_stale == Some(ident) {
            return;
        }
        if let Ok(src) = std::fs::metadata(&self.source) {
            let older = (db.mtime(), db.mtime_nsec()) < (src.mtime(), src.mtime_nsec());
            if older {
                state.warned_stale = Some(ident);
                (self.warner)(&format!(
                    "database {} is older than source file {}",
                    self.db.display(),
                    self.source.display()
                ));
            }
        }
    }
}

impl Table for IndexedTable {
    fn lookup(&self, key: &str) -> Result<Option<String>, TableError> {
        Ok(self.snapshot()?.get(key).map(str::to_string))
    }

    fn spec(&self) -> &str {
        &self.spec
    }

    fn owner(&self) -> Option<(u32, u32)> {
        self.refresh(false);
        let state = self.state.lock().unwrap_or_else(|p| p.into_inner());
        state.current.as_ref().ok().map(|l| l.owner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn round_trip_cases() {
        let cases: Vec<BTreeMap<String, String>> = vec![
            map(&[]),
            map(&[("a", "1")]),
            map(&[("root", "admin"), ("postmaster", "root"), ("", "empty key")]),
            map(&[("ünïcode", "välue"), ("key with space", "v")]),
        ];
        for entries in cases {
            let bytes = encode(&entries, true).expect("encode");
            let file = IndexedFile::decode(bytes, Path::new("t")).expect("decode");
            assert_eq!(file.len(), entries.len());
            assert!(file.folded());
            for (k, v) in &entries {
                assert_eq!(file.get(k), Some(v.as_str()), "key {k:?}");
            }
            assert_eq!(file.get("no such key"), None);
            assert_eq!(file.to_map(), entries);
        }
    }

    #[test]
    fn decode_rejects_damage() {
        let good = encode(&map(&[("a", "1"), ("b", "2")]), false).expect("encode");
        let mut bad_magic = good.clone();
        bad_magic[0] = b'X';
        let mut bad_version = good.clone();
        bad_version[8] = 2;
        let mut bad_sum = good.clone();
        let last = bad_sum.len() - 1;
        bad_sum[last] ^= 0xff;
        let mut flipped_value = good.clone();
        let at = good.len() - CHECKSUM_LEN - 1;
        flipped_value[at] ^= 1;
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (Vec::new(), "file too short"),
            (good[..10].to_vec(), "file too short"),
            (bad_magic, "bad magic"),
            (bad_version, "unsupported format version 2"),
            (bad_sum, "checksum mismatch"),
            (flipped_value, "checksum mismatch"),
            (good[..good.len() - 1].to_vec(), "checksum mismatch"),
        ];
        for (bytes, want) in cases {
            let err = IndexedFile::decode(bytes, Path::new("/t.db")).expect_err(want);
            assert!(err.to_string().contains(want), "{err} !~ {want}");
        }
    }

    /// Re-seal a hand-edited body with a valid checksum, to reach the structural checks.
    fn reseal(mut body: Vec<u8>) -> Vec<u8> {
        let sum = fnv1a64(&body);
        body.extend_from_slice(&sum.to_le_bytes());
        body
    }

    #[test]
    fn decode_rejects_structural_lies() {
        let good = encode(&map(&[("a", "1"), ("b", "2")]), false).expect("encode");
        let body = good[..good.len() - CHECKSUM_LEN].to_vec();
        let mut huge_count = body.clone();
        huge_count[16..24].copy_from_slice(&u64::MAX.to_le_bytes());
        let mut bad_offset = body.clone();
        bad_offset[24..32].copy_from_slice(&10_000u64.to_le_bytes());
        let mut swapped = body.clone();
        let first = swapped[24..32].to_vec();
        let second = swapped[32..40].to_vec();
        swapped[24..32].copy_from_slice(&second);
        swapped[32..40].copy_from_slice(&first);
        let mut long_key = body.clone();
        let rec = HEADER_LEN + 2 * INDEX_ENTRY_LEN;
        long_key[rec..rec + 4].copy_from_slice(&u32::MAX.to_le_bytes());
        let cases: Vec<(Vec<u8>, &str)> = vec![
            (reseal(huge_count), "entry count larger than the file"),
            (reseal(bad_offset), "record offset out of bounds"),
            (reseal(swapped), "strictly increasing"),
            (reseal(long_key), "key out of bounds"),
        ];
        for (bytes, want) in cases {
            let err = IndexedFile::decode(bytes, Path::new("/t.db")).expect_err(want);
            assert!(err.to_string().contains(want), "{err} !~ {want}");
        }
    }

    #[test]
    fn db_paths() {
        let cases = [
            ("hash", Some("/etc/aliases.db")),
            ("btree", Some("/etc/aliases.db")),
            ("dbm", Some("/etc/aliases.db")),
            ("lmdb", Some("/etc/aliases.lmdb")),
            ("cdb", Some("/etc/aliases.cdb")),
            ("regexp", None),
        ];
        for (kind, want) in cases {
            assert_eq!(
                db_path(kind, Path::new("/etc/aliases")),
                want.map(PathBuf::from),
                "{kind}"
            );
        }
    }

    #[test]
    fn write_atomic_replaces_and_sets_mode() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        for (content, mode) in [(&b"one"[..], 0o640), (&b"two"[..], 0o644)] {
            write_atomic(&path, content, WriteOptions { mode, owner: None }).expect("write");
            assert_eq!(std::fs::read(&path).expect("read"), content);
            let meta = std::fs::metadata(&path).expect("meta");
            assert_eq!(meta.mode() & 0o777, mode);
        }
        let leftovers: Vec<_> = std::fs::read_dir(dir.path())
            .expect("readdir")
            .filter_map(Result::ok)
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .collect();
        assert!(leftovers.is_empty(), "temp files left: {leftovers:?}");
    }

    proptest! {
        #[test]
        fn round_trips_any_entries(
            entries in proptest::collection::btree_map("\\PC{0,12}", "\\PC{0,24}", 0..40),
            probe in "\\PC{0,12}",
        ) {
            let bytes = encode(&entries, false).expect("encode");
            let file = IndexedFile::decode(bytes, Path::new("p")).expect("decode");
            prop_assert_eq!(file.len(), entries.len());
            for (k, v) in &entries {
                prop_assert_eq!(file.get(k), Some(v.as_str()));
            }
            prop_assert_eq!(file.get(&probe), entries.get(&probe).map(String::as_str));
            let listed: Vec<(String, String)> =
                file.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            let expected: Vec<(String, String)> = entries.into_iter().collect();
            prop_assert_eq!(listed, expected);
        }

        #[test]
        fn decode_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
            let _ = IndexedFile::decode(bytes, Path::new("fuzz"));
        }

        #[test]
        fn decode_never_panics_on_resealed_mutations(
            idx in 0usize..64, val in any::<u8>(),
        ) {
            let good = encode(&map(&[("a", "1"), ("bb", "22"), ("ccc", "333")]), true)
                .expect("encode");
            let mut body = good[..good.len() - CHECKSUM_LEN].to_vec();
            let i = idx % body.len();
            body[i] = val;
            let _ = IndexedFile::decode(reseal(body), Path::new("fuzz"));
        }
    }
}
