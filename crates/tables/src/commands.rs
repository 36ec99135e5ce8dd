//! The `postmap`, `postalias` and `newaliases` commands (postmap(1), postalias(1)).
//!
//! Owns argument parsing, the build / incremental / query / delete / dump modes, and their
//! messages in Postfix's forms (`postmap: fatal: open /etc/postfix/virtual: No such file or
//! directory`, `postmap: warning: /etc/postfix/virtual, line 3: expected format: key
//! whitespace value`, `postalias: warning: /etc/aliases.db: duplicate entry: "root"`).
//!
//! Behaviour:
//! - build (default): read `file_name`, write its database (`hash` when no type is given)
//!   atomically; bad lines are warnings and the rest is built; duplicate keys keep the first
//!   value with a warning (`-r`: the last value, silently; `-w`: the first, silently); keys are
//!   folded to lower case unless `-f`. A new database gets the source file's group and other
//!   read bits (`-p`: mode 0644) and, when run as root, the source file's owner (`-o`: root);
//!   a rebuilt one keeps the old database's mode and owner.
//! - `-i`: add entries read from standard input to the existing database (created if absent).
//! - `-q key`: print the first value found, exit 0, or exit 1; `-q -`: read keys from standard
//!   input, print `key<TAB>value` (`postalias`: `key: value`) for each found; exit 0 when at
//!   least one was found. Queries open tables with the same code as the daemon, so any type
//!   `open` supports can be queried; the key is folded unless `-f` or the table is a regexp.
//! - `-d key` / `-d -`: remove the key(s) from each indexed database; exit 0 if any was found.
//! - `-s`: print every entry in database order.
//! - accepted and without effect: `-c dir`, `-N`, `-n`, `-u`, `-U`, `-v`. Refused: `-b`, `-h`,
//!   `-m` (message header/body queries) and `-F` (base64 file values).
//!
//! Exit status: 0 success, 1 for "not found" and for fatal errors (as Postfix's msg_fatal),
//! 64 (EX_USAGE) for a bad command line. Nothing here panics on any input.

use std::collections::BTreeMap;
use std::io::{BufRead, Write};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use crate::aliases;
use crate::error::{errno_text, TableError};
use crate::indexed::{self, IndexedTable, WriteOptions};
use crate::inline::InlineTable;
use crate::source::{fold_key, parse_source};
use crate::texthash::TextHashTable;
use crate::warn::Warner;
use crate::{open_inner, split_spec, OpenFlags};

const EX_OK: i32 = 0;
const EX_NOTFOUND: i32 = 1;
const EX_FATAL: i32 = 1;
const EX_USAGE: i32 = 64;

/// `postmap [-fiNnoprsuvw] [-c config_dir] [-d key] [-q key] [file_type:]file_name ...`,
/// reading standard input for `-i`, `-q -` and `-d -`.
pub fn postmap_main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    postmap_with_stdin(args, &mut lock, out, err)
}

/// [`postmap_main`] with standard input supplied by the caller (tests, pipelines).
pub fn postmap_with_stdin(
    args: &[String],
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    run(Program::Postmap, args, stdin, out, err)
}

/// `postalias [-fiNnoprsuvw] [-c config_dir] [-d key] [-q key] [file_type:]file_name ...`.
pub fn postalias_main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    postalias_with_stdin(args, &mut lock, out, err)
}

/// [`postalias_main`] with standard input supplied by the caller.
pub fn postalias_with_stdin(
    args: &[String],
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    run(Program::Postalias, args, stdin, out, err)
}

/// `newaliases`: run `postalias` on each entry of the `alias_database` parameter (the caller
/// reads and splits the parameter). Entries whose type is not an indexed file are skipped with
/// a warning. The exit status is the first non-zero one, or 0.
pub fn newaliases(alias_database: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    newaliases_with_stdin(alias_database, &mut lock, out, err)
}

/// [`newaliases`] with standard input supplied by the caller (it is not read).
pub fn newaliases_with_stdin(
    alias_database: &[String],
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut status = EX_OK;
    for entry in alias_database {
        let (kind, _) = type_and_name(entry);
        if indexed::suffix_for(kind).is_none() {
            let _ = writeln!(
                err,
                "postalias: warning: {entry}: unsupported database type for newaliases: {kind}"
            );
            continue;
        }
        let code = run(
            Program::Postalias,
            std::slice::from_ref(entry),
            stdin,
            out,
            err,
        );
        if status == EX_OK {
            status = code;
        }
    }
    status
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Program {
    Postmap,
    Postalias,
}

impl Program {
    fn name(self) -> &'static str {
        match self {
            Program::Postmap => "postmap",
            Program::Postalias => "postalias",
        }
    }

    fn usage(self) -> String {
        format!(
            "usage: {} [-Nfinoprsuvw] [-c config_dir] [-d key] [-q key] [map_type:]file...",
            self.name()
        )
    }

    /// How a found entry is printed by `-q -` and `-s`.
    fn pair(self, key: &str, value: &str) -> String {
        match self {
            Program::Postmap => format!("{key}\t{value}"),
            Program::Postalias => format!("{key}: {value}"),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Mode {
    Build,
    Query(String),
    Delete(String),
    Dump,
}

#[derive(Debug, Clone)]
struct Options {
    mode: Mode,
    incremental: bool,
    no_fold: bool,
    keep_root: bool,
    default_perms: bool,
    dup: Dup,
    maps: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Dup {
    Warn,
    Replace,
    Ignore,
}

struct Io<'a> {
    prog: Program,
    out: &'a mut dyn Write,
    err: &'a mut dyn Write,
}

impl Io<'_> {
    fn fatal(&mut self, message: &str) -> i32 {
        let _ = writeln!(self.err, "{}: fatal: {message}", self.prog.name());
        EX_FATAL
    }

    fn warning(&mut self, message: &str) {
        let _ = writeln!(self.err, "{}: warning: {message}", self.prog.name());
    }

    fn usage(&mut self) -> i32 {
        let usage = self.prog.usage();
        let _ = writeln!(self.err, "{}: fatal: {usage}", self.prog.name());
        EX_USAGE
    }
}

/// Message text for an error, in Postfix's `what: strerror` form.
fn describe(e: &TableError) -> String {
    match e {
        TableError::Unavailable { reason, .. } => reason.clone(),
        TableError::Io { context, source } => format!("{context}: {}", errno_text(source)),
        other => other.to_string(),
    }
}

fn parse_args(prog: Program, args: &[String]) -> Result<Options, String> {
    let mut opts = Options {
        mode: Mode::Build,
        incremental: false,
        no_fold: false,
        keep_root: false,
        default_perms: false,
        dup: Dup::Warn,
        maps: Vec::new(),
    };
    let mut i = 0;
    let set_mode = |opts: &mut Options, mode: Mode| -> Result<(), String> {
        if opts.mode != Mode::Build {
            return Err("specify only one of -d, -q or -s".to_string());
        }
        opts.mode = mode;
        Ok(())
    };
    while let Some(arg) = args.get(i) {
        i += 1;
        if arg == "--" {
            break;
        }
        let Some(flags) = arg.strip_prefix('-').filter(|f| !f.is_empty()) else {
            i -= 1;
            break;
        };
        for (at, c) in flags.char_indices() {
            match c {
                'c' | 'd' | 'q' => {
                    let rest = &flags[at + c.len_utf8()..];
                    let value = if !rest.is_empty() {
                        rest.to_string()
                    } else {
                        let v = args.get(i).cloned().ok_or_else(|| prog.usage())?;
                        i += 1;
                        v
                    };
                    match c {
                        'd' => set_mode(&mut opts, Mode::Delete(value))?,
                        'q' => set_mode(&mut opts, Mode::Query(value))?,
                        _ => {}
                    }
                    break;
                }
                's' => set_mode(&mut opts, Mode::Dump)?,
                'i' => opts.incremental = true,
                'f' => opts.no_fold = true,
                'o' => opts.keep_root = true,
                'p' => opts.default_perms = true,
                'r' => opts.dup = Dup::Replace,
                'w' => opts.dup = Dup::Ignore,
                'N' | 'n' | 'u' | 'v' => {}
                'U' if prog == Program::Postmap => {}
                'b' | 'h' | 'm' | 'F' if prog == Program::Postmap => {
                    return Err(format!("option -{c} is not supported"));
                }
                _ => return Err(prog.usage()),
            }
        }
    }
    opts.maps = args.get(i..).unwrap_or(&[]).to_vec();
    if opts.maps.is_empty() {
        return Err(prog.usage());
    }
    Ok(opts)
}

fn run(
    prog: Program,
    args: &[String],
    stdin: &mut dyn BufRead,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> i32 {
    let mut io = Io { prog, out, err };
    let opts = match parse_args(prog, args) {
        Ok(o) => o,
        Err(m) if m.starts_with("usage:") => return io.usage(),
        Err(m) => return io.fatal(&m),
    };
    let status = match opts.mode.clone() {
        Mode::Query(key) => query(&mut io, &opts, &key, stdin),
        Mode::Delete(key) => delete(&mut io, &opts, &key, stdin),
        Mode::Dump => dump(&mut io, &opts),
        Mode::Build => build_all(&mut io, &opts, stdin),
    };
    let _ = io.out.flush();
    status
}

/// `[type:]name` with the default type `hash`.
fn type_and_name(arg: &str) -> (&str, &str) {
    match split_spec(arg) {
        Ok((kind, name)) => (kind, name),
        Err(_) => ("hash", arg),
    }
}

fn full_spec(arg: &str) -> String {
    let (kind, name) = type_and_name(arg);
    format!("{kind}:{name}")
}

/// Whether lookups in this table use folded keys (everything but regular expressions).
fn folds(spec: &str) -> bool {
    let mut spec = spec;
    while let Some(inner) = spec.strip_prefix("proxy:") {
        spec = inner;
    }
    !(spec.starts_with("regexp:") || spec.starts_with("pcre:"))
}

/// A warning sink that collects warnings so they can be written to `err` in order.
fn collecting_sink() -> (Warner, Arc<Mutex<Vec<String>>>) {
    let seen = Arc::new(Mutex::new(Vec::new()));
    let sink = seen.clone();
    let warner: Warner = Arc::new(move |t: &str| {
        sink.lock()
            .unwrap_or_else(|p| p.into_inner())
            .push(t.to_string());
    });
    (warner, seen)
}

fn flush_warnings(io: &mut Io<'_>, seen: &Arc<Mutex<Vec<String>>>) {
    let drained: Vec<String> = seen
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .drain(..)
        .collect();
    for w in drained {
        io.warning(&w);
    }
}

fn read_keys(stdin: &mut dyn BufRead) -> Result<Vec<String>, std::io::Error> {
    let mut text = String::new();
    let mut bytes = Vec::new();
    stdin.read_to_end(&mut bytes)?;
    text.push_str(&String::from_utf8_lossy(&bytes));
    Ok(text
        .lines()
        .map(|l| l.strip_suffix('\r').unwrap_or(l).to_string())
        .collect())
}

fn query(io: &mut Io<'_>, opts: &Options, key: &str, stdin: &mut dyn BufRead) -> i32 {
    let (warner, seen) = collecting_sink();
    let mut tables = Vec::new();
    for arg in &opts.maps {
        let spec = full_spec(arg);
        match open_inner(&spec, &spec, OpenFlags::default(), &warner) {
            Ok(t) => tables.push((folds(&spec), t)),
            Err(e) => {
                flush_warnings(io, &seen);
                return io.fatal(&describe(&e));
            }
        }
    }
    flush_warnings(io, &seen);
    let keys = if key == "-" {
        match read_keys(stdin) {
            Ok(k) => k,
            Err(e) => return io.fatal(&format!("read standard input: {}", errno_text(&e))),
        }
    } else {
        vec![key.to_string()]
    };
    let mut found_any = false;
    for k in &keys {
        for (fold, table) in &tables {
            let search = if *fold && !opts.no_fold {
                fold_key(k)
            } else {
                k.clone()
            };
            let result = table.lookup(&search);
            flush_warnings(io, &seen);
            match result {
                Ok(Some(value)) => {
                    found_any = true;
                    let line = if key == "-" {
                        io.prog.pair(k, &value)
                    } else {
                        value
                    };
                    let _ = writeln!(io.out, "{line}");
                    break;
                }
                Ok(None) => {}
                Err(e) => return io.fatal(&describe(&e)),
            }
        }
    }
    if found_any {
        EX_OK
    } else {
        EX_NOTFOUND
    }
}

/// The database path for a map argument, or a fatal message for a type that has none.
fn db_for(arg: &str, what: &str) -> Result<(PathBuf, PathBuf), String> {
    let (kind, name) = type_and_name(arg);
    if name.is_empty() {
        return Err(format!("{arg}: missing file name"));
    }
    let source = PathBuf::from(name);
    match indexed::db_path(kind, &source) {
        Some(db) => Ok((source, db)),
        None => Err(format!("unsupported map type for {what}: {kind}")),
    }
}

fn delete(io: &mut Io<'_>, opts: &Options, key: &str, stdin: &mut dyn BufRead) -> i32 {
    let keys = if key == "-" {
        match read_keys(stdin) {
            Ok(k) => k,
            Err(e) => return io.fatal(&format!("read standard input: {}", errno_text(&e))),
        }
    } else {
        vec![key.to_string()]
    };
    let mut found_any = false;
    for arg in &opts.maps {
        let (_, db) = match db_for(arg, "delete") {
            Ok(p) => p,
            Err(m) => return io.fatal(&m),
        };
        let (file, meta) = match indexed::read_file(&db) {
            Ok(r) => r,
            Err(reason) => return io.fatal(&reason),
        };
        let mut entries = file.to_map();
        let mut changed = false;
        for k in &keys {
            let k = if opts.no_fold { k.clone() } else { fold_key(k) };
            if entries.remove(&k).is_some() {
                changed = true;
            }
        }
        if !changed {
            continue;
        }
        found_any = true;
        let write = WriteOptions {
            mode: meta.mode() & 0o7777,
            owner: Some((meta.uid(), meta.gid())),
        };
        if let Err(e) = indexed::encode(&entries, file.folded())
            .and_then(|bytes| indexed::write_atomic(&db, &bytes, write))
        {
            return io.fatal(&describe(&e));
        }
    }
    if found_any {
        EX_OK
    } else {
        EX_NOTFOUND
    }
}

fn dump(io: &mut Io<'_>, opts: &Options) -> i32 {
    let (warner, seen) = collecting_sink();
    for arg in &opts.maps {
        let spec = full_spec(arg);
        let mut inner = spec.as_str();
        while let Some(rest) = inner.strip_prefix("proxy:") {
            inner = rest;
        }
        let (kind, name) = type_and_name(inner);
        let entries: Vec<(String, String)> = if indexed::suffix_for(kind).is_some() {
            let table = IndexedTable::open(&spec, kind, Path::new(name), warner.clone())
                .and_then(|t| t.snapshot());
            flush_warnings(io, &seen);
            match table {
                Ok(file) => file
                    .iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect(),
                Err(e) => return io.fatal(&describe(&e)),
            }
        } else if kind == "texthash" {
            let table = TextHashTable::open(&spec, Path::new(name), &warner);
            flush_warnings(io, &seen);
            match table {
                Ok(t) => t.entries().clone().into_iter().collect(),
                Err(e) => return io.fatal(&describe(&e)),
            }
        } else if kind == "inline" {
            match InlineTable::parse(&spec, name, &warner) {
                Ok(t) => t.entries().clone().into_iter().collect(),
                Err(e) => return io.fatal(&describe(&e)),
            }
        } else {
            return io.fatal(&format!("table {spec}: sequential access is not supported"));
        };
        for (k, v) in entries {
            let line = io.prog.pair(&k, &v);
            let _ = writeln!(io.out, "{line}");
        }
    }
    EX_OK
}

/// One key/value to store, with where it came from for messages.
struct Entry {
    key: String,
    value: String,
}

fn build_all(io: &mut Io<'_>, opts: &Options, stdin: &mut dyn BufRead) -> i32 {
    let stdin_text = if opts.incremental {
        let mut bytes = Vec::new();
        if let Err(e) = stdin.read_to_end(&mut bytes) {
            return io.fatal(&format!("read standard input: {}", errno_text(&e)));
        }
        Some(String::from_utf8_lossy(&bytes).into_owned())
    } else {
        None
    };
    for arg in &opts.maps {
        let status = build_one(io, opts, arg, stdin_text.as_deref());
        if status != EX_OK {
            return status;
        }
    }
    EX_OK
}

fn build_one(io: &mut Io<'_>, opts: &Options, arg: &str, stdin_text: Option<&str>) -> i32 {
    let (source, db) = match db_for(arg, "creating") {
        Ok(p) => p,
        Err(m) => return io.fatal(&m),
    };
    let source_meta = std::fs::metadata(&source).ok();
    let (text, label) = match stdin_text {
        Some(t) => (t.to_string(), PathBuf::from("stdin")),
        None => match std::fs::read(&source) {
            Ok(bytes) => (String::from_utf8_lossy(&bytes).into_owned(), source.clone()),
            Err(e) => return io.fatal(&format!("open {}: {}", source.display(), errno_text(&e))),
        },
    };
    let (parsed, diags) = parse_entries(io.prog, &text, &label);
    for d in diags {
        io.warning(&d);
    }

    let existing = if opts.incremental {
        match std::fs::metadata(&db) {
            Ok(_) => match indexed::read_file(&db) {
                Ok((file, meta)) => Some((file.to_map(), Some(meta))),
                Err(reason) => return io.fatal(&reason),
            },
            Err(_) => None,
        }
    } else {
        None
    };
    let (mut entries, _) = existing.unwrap_or((BTreeMap::new(), None));
    for e in parsed {
        let key = if opts.no_fold {
            e.key
        } else {
            fold_key(&e.key)
        };
        match (entries.contains_key(&key), opts.dup) {
            (false, _) | (true, Dup::Replace) => {
                entries.insert(key, e.value);
            }
            (true, Dup::Warn) => {
                io.warning(&format!("{}: duplicate entry: \"{key}\"", db.display()));
            }
            (true, Dup::Ignore) => {}
        }
    }
    if io.prog == Program::Postalias && !opts.incremental {
        // Sendmail compatibility: the "@:@" signature marks a complete alias database.
        entries
            .entry("@".to_string())
            .or_insert_with(|| "@".to_string());
    }

    let write = write_options(opts, &db, source_meta.as_ref());
    match indexed::encode(&entries, !opts.no_fold)
        .and_then(|bytes| indexed::write_atomic(&db, &bytes, write))
    {
        Ok(()) => EX_OK,
        Err(e) => io.fatal(&describe(&e)),
    }
}

/// Mode and owner for the database: an existing database keeps its own; a new one gets the
/// source's group/other read bits (or 0644 with `-p`) and, unless `-o`, the source's owner.
fn write_options(opts: &Options, db: &Path, source: Option<&std::fs::Metadata>) -> WriteOptions {
    if let Ok(meta) = std::fs::metadata(db) {
        return WriteOptions {
            mode: meta.mode() & 0o7777,
            owner: Some((meta.uid(), meta.gid())),
        };
    }
    let mode = match (opts.default_perms, source) {
        (false, Some(src)) => 0o600 | (src.mode() & 0o044),
        _ => 0o644,
    };
    let owner = match (opts.keep_root, source) {
        (false, Some(src)) => Some((src.uid(), src.gid())),
        _ => None,
    };
    WriteOptions { mode, owner }
}

/// Parse source text as postmap input or as an aliases file; returns entries and warnings.
fn parse_entries(prog: Program, text: &str, label: &Path) -> (Vec<Entry>, Vec<String>) {
    match prog {
        Program::Postmap => {
            let (entries, diags) = parse_source(text);
            (
                entries
                    .into_iter()
                    .map(|e| Entry {
                        key: e.key,
                        value: e.value,
                    })
                    .collect(),
                diags
                    .into_iter()
                    .map(|d| format!("{}, line {}: {}", label.display(), d.line, d.message))
                    .collect(),
            )
        }
        Program::Postalias => {
            let (entries, errors) = aliases::parse(text, label);
            (
                entries
                    .into_iter()
                    .map(|a| Entry {
                        key: a.name,
                        value: a.value,
                    })
                    .collect(),
                errors.iter().map(ToString::to_string).collect(),
            )
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Table;
    use std::time::Duration;

    struct Run {
        status: i32,
        out: String,
        err: String,
    }

    fn run_cmd(prog: Program, args: &[&str], stdin: &str) -> Run {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut input = std::io::Cursor::new(stdin.as_bytes().to_vec());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let status = run(prog, &args, &mut input, &mut out, &mut err);
        Run {
            status,
            out: String::from_utf8_lossy(&out).into_owned(),
            err: String::from_utf8_lossy(&err).into_owned(),
        }
    }

    fn postmap(args: &[&str], stdin: &str) -> Run {
        run_cmd(Program::Postmap, args, stdin)
    }

    fn postalias(args: &[&str], stdin: &str) -> Run {
        run_cmd(Program::Postalias, args, stdin)
    }

    #[test]
    fn build_query_dump_delete() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("virtual");
        let s = src.display().to_string();
        std::fs::write(
            &src,
            "# virtual\nInfo@Example.com   alice\nsales@example.com bob,\n  carol\nbroken\ninfo@example.com dup\n",
        )
        .expect("write");

        let r = postmap(&[&s], "");
        assert_eq!(r.status, 0, "{}", r.err);
        assert_eq!(
            r.err,
            format!(
                "postmap: warning: {s}, line 5: expected format: key whitespace value\n\
                 postmap: warning: {s}.db: duplicate entry: \"info@example.com\"\n"
            )
        );
        assert!(dir.path().join("virtual.db").exists());

        let cases: &[(&[&str], i32, &str)] = &[
            (&["-q", "info@example.com"], 0, "alice\n"),
            (&["-q", "INFO@EXAMPLE.COM"], 0, "alice\n"),
            (&["-f", "-q", "INFO@EXAMPLE.COM"], 1, ""),
            (&["-q", "sales@example.com"], 0, "bob,  carol\n"),
            (&["-q", "nobody@example.com"], 1, ""),
            (&["-qinfo@example.com"], 0, "alice\n"),
        ];
        for (args, status, out) in cases {
            let mut a: Vec<&str> = args.to_vec();
            let spec = format!("hash:{s}");
            a.push(&spec);
            let r = postmap(&a, "");
            assert_eq!(
                (r.status, r.out.as_str()),
                (*status, *out),
                "{args:?}: {}",
                r.err
            );
        }

        let r = postmap(
            &["-q", "-", &s],
            "Info@example.com\nnobody\nsales@example.com\n",
        );
        assert_eq!(r.status, 0);
        assert_eq!(
            r.out,
            "Info@example.com\talice\nsales@example.com\tbob,  carol\n"
        );
        let r = postmap(&["-q", "-", &s], "nobody\n");
        assert_eq!((r.status, r.out.as_str()), (1, ""));

        let r = postmap(&["-s", &s], "");
        assert_eq!(r.status, 0);
        assert_eq!(
            r.out,
            "info@example.com\talice\nsales@example.com\tbob,  carol\n"
        );

        let r = postmap(&["-d", "INFO@example.com", &s], "");
        assert_eq!(r.status, 0, "{}", r.err);
        let r = postmap(&["-d", "info@example.com", &s], "");
        assert_eq!(r.status, 1);
        let r = postmap(&["-s", &s], "");
        assert_eq!(r.out, "sales@example.com\tbob,  carol\n");
        let r = postmap(&["-d", "-", &s], "nobody\nsales@example.com\n");
        assert_eq!(r.status, 0);
        let r = postmap(&["-s", &s], "");
        assert_eq!(r.out, "");
    }

    #[test]
    fn duplicate_policies_and_no_fold_build() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("t");
        let s = src.display().to_string();
        std::fs::write(&src, "Key first\nkey second\n").expect("write");
        let cases: &[(&[&str], &str, &str)] = &[
            (&[], "key\tfirst\n", "duplicate entry"),
            (&["-r"], "key\tsecond\n", ""),
            (&["-w"], "key\tfirst\n", ""),
            (&["-f"], "Key\tfirst\nkey\tsecond\n", ""),
        ];
        for (flags, dump, warn) in cases {
            let mut a = flags.to_vec();
            a.push(&s);
            let r = postmap(&a, "");
            assert_eq!(r.status, 0, "{flags:?}: {}", r.err);
            if warn.is_empty() {
                assert_eq!(r.err, "", "{flags:?}");
            } else {
                assert!(r.err.contains(warn), "{flags:?}: {}", r.err);
            }
            let r = postmap(&["-s", &s], "");
            assert_eq!(r.out, *dump, "{flags:?}");
        }
    }

    #[test]
    fn incremental_adds_from_stdin() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("access");
        let s = src.display().to_string();
        // No database yet, no source file needed: -i creates it.
        let r = postmap(&["-i", &s], "a 1\nB 2\n");
        assert_eq!(r.status, 0, "{}", r.err);
        let r = postmap(&["-i", &s], "c 3\na 9\n");
        assert_eq!(r.status, 0);
        assert!(r.err.contains("duplicate entry: \"a\""), "{}", r.err);
        let r = postmap(&["-s", &s], "");
        assert_eq!(r.out, "a\t1\nb\t2\nc\t3\n");
        let r = postmap(&["-i", "-r", &s], "a 9\n");
        assert_eq!(r.status, 0);
        let r = postmap(&["-q", "a", &s], "");
        assert_eq!(r.out, "9\n");
    }

    #[test]
    fn other_types_query_and_dump() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("t");
        std::fs::write(&src, "Key value\n").expect("write");
        let rx = dir.path().join("r");
        std::fs::write(&rx, "/^(Ab)c$/ got $1\n").expect("write");
        let th = format!("texthash:{}", src.display());
        let re = format!("regexp:{}", rx.display());
        let pc = format!("pcre:{}", rx.display());
        let cases: Vec<(Vec<&str>, i32, &str)> = vec![
            (vec!["-q", "KEY", &th], 0, "value\n"),
            (vec!["-s", &th], 0, "key\tvalue\n"),
            (vec!["-q", "ABC", &re], 0, "got AB\n"),
            (vec!["-q", "xabc", &pc], 1, ""),
            (vec!["-q", "k", "inline:{K=v}"], 0, "v\n"),
            (vec!["-s", "inline:{b=2, a=1}"], 0, "a\t1\nb\t2\n"),
            (vec!["-q", "x", "static:{ s v }"], 0, "s v\n"),
            (
                vec!["-q", "x", "inline:{a=1}", "static:fallback"],
                0,
                "fallback\n",
            ),
            (vec!["-q", "root", "proxy:unix:passwd.byname"], 0, ""),
        ];
        for (args, status, out) in cases {
            let r = postmap(&args, "");
            assert_eq!(r.status, status, "{args:?}: {}", r.err);
            if args.contains(&"proxy:unix:passwd.byname") {
                assert!(r.out.starts_with("root:"), "{}", r.out);
            } else {
                assert_eq!(r.out, out, "{args:?}");
            }
        }
    }

    #[test]
    fn fatal_errors_and_usage() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing");
        let m = missing.display().to_string();
        let rx = dir.path().join("bad");
        std::fs::write(&rx, "/(?!x)/ r\n").expect("write");
        let bad_re = format!("pcre:{}", rx.display());
        let cases: Vec<(Vec<&str>, i32, String)> = vec![
            (vec![], 64, "postmap: fatal: usage: postmap".into()),
            (vec!["-q"], 64, "postmap: fatal: usage:".into()),
            (vec!["-Z", "x"], 64, "postmap: fatal: usage:".into()),
            (vec!["-q", "k", "-s", "x"], 1, "specify only one of".into()),
            (vec!["-b", "x"], 1, "option -b is not supported".into()),
            (
                vec![&m],
                1,
                format!("postmap: fatal: open {m}: No such file or directory"),
            ),
            (
                vec!["-q", "k", &m],
                1,
                format!("postmap: fatal: open database {m}.db: No such file or directory"),
            ),
            (
                vec!["-s", &m],
                1,
                format!("postmap: fatal: open database {m}.db: No such file or directory"),
            ),
            (
                vec!["-d", "k", &m],
                1,
                format!("postmap: fatal: open database {m}.db: No such file or directory"),
            ),
            (
                vec!["-q", "k", "nis:mail.aliases"],
                1,
                "unsupported dictionary type: nis".into(),
            ),
            (
                vec!["-q", "k", &bad_re],
                1,
                "line 1: bad regular expression".into(),
            ),
            (
                vec!["-s", &bad_re],
                1,
                "sequential access is not supported".into(),
            ),
            (
                vec![&bad_re],
                1,
                "unsupported map type for creating: pcre".into(),
            ),
        ];
        for (args, status, err) in cases {
            let r = postmap(&args, "");
            assert_eq!(r.status, status, "{args:?}: {}", r.err);
            assert!(r.err.contains(&err), "{args:?}: {}", r.err);
        }
    }

    #[test]
    fn postalias_build_query_dump() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("aliases");
        let s = src.display().to_string();
        std::fs::write(
            &src,
            "# aliases\nPostmaster: root\nlist: alice,\n  \"|/usr/bin/cmd a, b\"\nbroken\n\"a b\": c\n",
        )
        .expect("write");
        let r = postalias(&[&s], "");
        assert_eq!(r.status, 0, "{}", r.err);
        assert_eq!(
            r.err,
            format!("postalias: warning: {s}, line 5: need name:value pair\n")
        );
        let cases: &[(&str, i32, &str)] = &[
            ("postmaster", 0, "root\n"),
            ("POSTMASTER", 0, "root\n"),
            ("list", 0, "alice,  \"|/usr/bin/cmd a, b\"\n"),
            ("a b", 0, "c\n"),
            ("nobody", 1, ""),
        ];
        for (key, status, out) in cases {
            let r = postalias(&["-q", key, &s], "");
            assert_eq!((r.status, r.out.as_str()), (*status, *out), "{key}");
        }
        let r = postalias(&["-q", "-", &s], "postmaster\nnobody\n");
        assert_eq!(r.out, "postmaster: root\n");
        let r = postalias(&["-s", &s], "");
        assert_eq!(
            r.out,
            "@: @\na b: c\nlist: alice,  \"|/usr/bin/cmd a, b\"\npostmaster: root\n"
        );
        // The daemon reads the same file through the same reader.
        let t = crate::open(&format!("hash:{s}")).expect("open");
        assert_eq!(t.lookup("postmaster").expect("l").as_deref(), Some("root"));
    }

    #[test]
    fn newaliases_builds_each_database() {
        let dir = tempfile::tempdir().expect("tempdir");
        let a = dir.path().join("aliases");
        let b = dir.path().join("more");
        std::fs::write(&a, "root: admin\n").expect("write");
        std::fs::write(&b, "x: y\n").expect("write");
        let dbs = vec![
            format!("hash:{}", a.display()),
            format!("lmdb:{}", b.display()),
            "nis:mail.aliases".to_string(),
        ];
        let mut input = std::io::Cursor::new(Vec::new());
        let mut out = Vec::new();
        let mut err = Vec::new();
        let status = newaliases_with_stdin(&dbs, &mut input, &mut out, &mut err);
        assert_eq!(status, 0);
        let err = String::from_utf8_lossy(&err);
        assert!(
            err.contains("unsupported database type for newaliases: nis"),
            "{err}"
        );
        assert!(dir.path().join("aliases.db").exists());
        assert!(dir.path().join("more.lmdb").exists());

        let dbs = vec![format!("hash:{}", dir.path().join("nope").display())];
        let mut err = Vec::new();
        let status = newaliases_with_stdin(&dbs, &mut input, &mut out, &mut err);
        assert_eq!(status, 1);
    }

    #[test]
    fn permissions_follow_the_source() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let cases: &[(&[&str], u32, u32)] = &[
            (&[], 0o640, 0o640),
            (&[], 0o600, 0o600),
            (&[], 0o755, 0o644),
            (&["-p"], 0o600, 0o644),
        ];
        for (i, (flags, src_mode, db_mode)) in cases.iter().enumerate() {
            let src = dir.path().join(format!("t{i}"));
            std::fs::write(&src, "k v\n").expect("write");
            std::fs::set_permissions(&src, std::fs::Permissions::from_mode(*src_mode))
                .expect("chmod");
            let s = src.display().to_string();
            let mut a = flags.to_vec();
            a.push(&s);
            assert_eq!(postmap(&a, "").status, 0);
            let meta = std::fs::metadata(format!("{s}.db")).expect("meta");
            assert_eq!(meta.mode() & 0o777, *db_mode, "{flags:?} {src_mode:o}");
        }
    }

    #[test]
    fn daemon_reader_sees_rebuilds_and_stale_databases() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("transport");
        let s = src.display().to_string();
        std::fs::write(&src, "a 1\n").expect("write");
        assert_eq!(postmap(&[&s], "").status, 0);

        let (warner, seen) = collecting_sink();
        let mut table =
            IndexedTable::open(&format!("hash:{s}"), "hash", &src, warner).expect("open");
        table.set_recheck_interval(Duration::ZERO);
        assert_eq!(table.lookup("a").expect("l").as_deref(), Some("1"));
        assert_eq!(table.lookup("b").expect("l"), None);

        std::fs::write(&src, "a 2\nb 3\n").expect("write");
        assert_eq!(postmap(&[&s], "").status, 0);
        assert_eq!(table.lookup("a").expect("l").as_deref(), Some("2"));
        assert_eq!(table.lookup("b").expect("l").as_deref(), Some("3"));
        assert!(table.owner().is_some());

        // The source changes after the build: one warning per database version.
        let db = dir.path().join("transport.db");
        let old = std::fs::File::options()
            .write(true)
            .open(&db)
            .expect("open db");
        old.set_modified(std::time::SystemTime::UNIX_EPOCH + Duration::from_secs(1_000_000))
            .expect("set mtime");
        drop(old);
        assert_eq!(table.lookup("a").expect("l").as_deref(), Some("2"));
        assert_eq!(table.lookup("a").expect("l").as_deref(), Some("2"));
        let warnings = seen.lock().expect("l").clone();
        assert_eq!(
            warnings,
            vec![format!("database {s}.db is older than source file {s}")]
        );

        // Removed: unavailable (temporary); rebuilt: back.
        std::fs::remove_file(&db).expect("rm");
        let err = table.lookup("a").expect_err("gone");
        assert!(err.is_temporary());
        assert_eq!(postmap(&[&s], "").status, 0);
        assert_eq!(table.lookup("b").expect("l").as_deref(), Some("3"));

        // Damaged: unavailable with the reason.
        std::fs::write(&db, b"garbage").expect("write");
        let err = table.lookup("a").expect_err("damaged");
        assert!(err.to_string().contains("file too short"), "{err}");
    }

    #[test]
    fn recheck_interval_limits_stat_calls() {
        let dir = tempfile::tempdir().expect("tempdir");
        let src = dir.path().join("t");
        let s = src.display().to_string();
        std::fs::write(&src, "a 1\n").expect("write");
        assert_eq!(postmap(&[&s], "").status, 0);
        let (warner, _seen) = collecting_sink();
        let table = IndexedTable::open(&format!("hash:{s}"), "hash", &src, warner).expect("open");
        assert_eq!(table.lookup("a").expect("l").as_deref(), Some("1"));
        std::fs::write(&src, "a 2\n").expect("write");
        assert_eq!(postmap(&[&s], "").status, 0);
        // Within the one-second window the old contents are still served.
        assert_eq!(table.lookup("a").expect("l").as_deref(), Some("1"));
        std::thread::sleep(Duration::from_millis(1100));
        assert_eq!(table.lookup("a").expect("l").as_deref(), Some("2"));
    }

    #[test]
    fn arg_parsing() {
        let ok = |args: &[&str]| {
            let a: Vec<String> = args.iter().map(|s| s.to_string()).collect();
            parse_args(Program::Postmap, &a)
        };
        let o = ok(&["-fir", "-c", "/etc/postfix", "x"]).expect("parse");
        assert!(o.no_fold && o.incremental && o.dup == Dup::Replace);
        assert_eq!(o.maps, vec!["x"]);
        let o = ok(&["-c/etc/postfix", "-qkey", "a", "b"]).expect("parse");
        assert_eq!(o.mode, Mode::Query("key".into()));
        assert_eq!(o.maps, vec!["a", "b"]);
        let o = ok(&["--", "-weird-name"]).expect("parse");
        assert_eq!(o.maps, vec!["-weird-name"]);
        let o = ok(&["-Nnuvw", "x"]).expect("parse");
        assert_eq!(o.dup, Dup::Ignore);
        assert!(ok(&["-d", "k", "-q", "k", "x"]).is_err());
        let a: Vec<String> = vec!["-U".into(), "x".into()];
        assert!(parse_args(Program::Postalias, &a).is_err());
    }
}
