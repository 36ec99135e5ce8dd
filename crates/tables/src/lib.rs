//! Postern's lookup tables: the `Table` seam, its types, alias files, and `postmap`/`postalias`.
//!
//! Owns (DATABASE_README, postmap(1), postalias(1), aliases(5), regexp_table(5),
//! pcre_table(5)):
//! - the [`Table`] trait every lookup goes through, [`open`] for a `type:name` spec, and
//!   [`TableList`] for Postfix's ordered lists (`alias_maps = a, b`: first hit wins, and a
//!   table that fails stops the search with its error, as Postfix's maps do);
//! - the types: `inline:`, `static:`, `texthash:`, the indexed `hash:`/`btree:`/`dbm:`/`lmdb:`/
//!   `cdb:` files (Postern's own format, `docs/tables.md`), `regexp:`, `pcre:`,
//!   `unix:passwd.byname`/`unix:group.byname`, and `proxy:X` which opens X directly;
//! - the aliases(5) syntax ([`aliases`]) and the commands ([`postmap_main`],
//!   [`postalias_main`], [`newaliases`]).
//!
//! Invariants:
//! - [`Table::lookup`] is an exact-key lookup: fixed-case tables (`inline:`, `texthash:`, the
//!   indexed files) fold their keys to lower case when built, and callers fold the search
//!   string with [`fold_key`] where Postfix does (local(8) always does for aliases).
//! - A lookup fails only with [`TableError::Unavailable`], which is temporary: the caller
//!   defers the mail. Opening fails with a permanent error for a bad spec, an unsupported type
//!   or a bad regexp file; a missing indexed database does not fail `open` (it fails lookups
//!   until `postmap` builds it, then the table picks it up by itself).
//! - No input, file or bytes, panics this crate.
//!
//! This crate depends on no other Postern crate; the caller reads `main.cf`.

pub mod aliases;
mod commands;
mod error;
pub mod indexed;
pub mod inline;
pub mod regexp;
pub mod source;
pub mod texthash;
pub mod unix;
mod warn;

use std::path::Path;
use std::sync::Arc;

pub use commands::{
    newaliases, newaliases_with_stdin, postalias_main, postalias_with_stdin, postmap_main,
    postmap_with_stdin,
};
pub use error::TableError;
pub use source::fold_key;
pub use warn::{set_warning_sink, Warner};

/// A lookup table.
pub trait Table: Send + Sync + std::fmt::Debug {
    /// Exact-key lookup; the caller has already folded case where Postfix would.
    fn lookup(&self, key: &str) -> Result<Option<String>, TableError>;
    /// "type:name" as the admin wrote it, for log lines.
    fn spec(&self) -> &str;
    /// uid/gid owning the file the table reads (for indexed tables the database, as in
    /// Postfix, which `postmap` gives the source file's owner); local(8) runs alias commands
    /// as this owner. `None` for tables without a file.
    fn owner(&self) -> Option<(u32, u32)> {
        None
    }
}

/// How to open a table.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OpenFlags {
    /// Refuse `$n` substitution in `regexp:`/`pcre:` results (Postfix's rule for
    /// `alias_maps`: "for security reasons there is no support for $1, $2 etc.").
    pub no_regsub: bool,
}

/// Open the table named by `spec` (`type:name`).
pub fn open(spec: &str) -> Result<Arc<dyn Table>, TableError> {
    open_with(spec, OpenFlags::default())
}

/// Open the table named by `spec` with `flags`.
pub fn open_with(spec: &str, flags: OpenFlags) -> Result<Arc<dyn Table>, TableError> {
    open_inner(spec, spec, flags, &warn::current_sink())
}

/// Split `type:name`, or say it is not in that form.
pub fn split_spec(spec: &str) -> Result<(&str, &str), TableError> {
    match spec.split_once(':') {
        Some((kind, name)) if !kind.is_empty() => Ok((kind, name)),
        _ => Err(TableError::BadSpec {
            spec: spec.to_string(),
            message: "expecting \"type:name\" form".to_string(),
        }),
    }
}

/// Make the file name of a file-based table absolute, relative to `base` (the configuration
/// directory): `hash:aliases` → `hash:/etc/postfix/aliases`. Other specs are returned as they
/// are. Postern resolves relative paths in `main.cf` against the configuration directory.
pub fn absolute_spec(spec: &str, base: &Path) -> String {
    const FILE_TYPES: &[&str] = &[
        "hash", "btree", "lmdb", "cdb", "dbm", "texthash", "regexp", "pcre",
    ];
    if let Some(inner) = spec.strip_prefix("proxy:") {
        return format!("proxy:{}", absolute_spec(inner, base));
    }
    match split_spec(spec) {
        Ok((kind, name))
            if FILE_TYPES.contains(&kind) && !name.is_empty() && !name.starts_with('/') =>
        {
            format!("{kind}:{}", base.join(name).display())
        }
        _ => spec.to_string(),
    }
}

pub(crate) fn open_inner(
    shown: &str,
    spec: &str,
    flags: OpenFlags,
    warner: &Warner,
) -> Result<Arc<dyn Table>, TableError> {
    let (kind, name) = split_spec(spec)?;
    let need_file = || -> Result<&Path, TableError> {
        if name.is_empty() {
            Err(TableError::BadSpec {
                spec: shown.to_string(),
                message: "missing file name".to_string(),
            })
        } else {
            Ok(Path::new(name))
        }
    };
    Ok(match kind {
        "proxy" => return open_inner(shown, name, flags, warner),
        "inline" => Arc::new(inline::InlineTable::parse(shown, name, warner)?),
        "static" => Arc::new(inline::StaticTable::parse(shown, name)?),
        "texthash" => Arc::new(texthash::TextHashTable::open(shown, need_file()?, warner)?),
        "hash" | "btree" | "dbm" | "lmdb" | "cdb" => Arc::new(indexed::IndexedTable::open(
            shown,
            kind,
            need_file()?,
            warner.clone(),
        )?),
        "regexp" | "pcre" => {
            let dialect = if kind == "regexp" {
                regexp::Dialect::Posix
            } else {
                regexp::Dialect::Pcre
            };
            if name.trim_start().starts_with('{') {
                let text = inline::inline_rules(shown, name)?;
                Arc::new(regexp::RegexpTable::parse(
                    shown,
                    Path::new(shown),
                    &text,
                    dialect,
                    flags.no_regsub,
                    warner,
                )?)
            } else {
                Arc::new(regexp::RegexpTable::open(
                    shown,
                    need_file()?,
                    dialect,
                    flags.no_regsub,
                    warner,
                )?)
            }
        }
        "unix" => {
            let map = unix::UnixMap::from_name(name).ok_or_else(|| TableError::BadSpec {
                spec: shown.to_string(),
                message: format!("unknown table: unix:{name}"),
            })?;
            Arc::new(unix::UnixTable::new(shown, map))
        }
        other => return Err(TableError::UnsupportedType(other.to_string())),
    })
}

/// A list of tables searched in order, first hit wins (how Postfix uses `alias_maps = a, b`).
#[derive(Debug, Clone, Default)]
pub struct TableList {
    tables: Vec<Arc<dyn Table>>,
}

impl TableList {
    /// Open every spec, in order. The first spec that cannot be opened is the error.
    pub fn open(specs: &[String]) -> Result<TableList, TableError> {
        TableList::open_with(specs, OpenFlags::default())
    }

    /// As [`TableList::open`], with `flags` for every table.
    pub fn open_with(specs: &[String], flags: OpenFlags) -> Result<TableList, TableError> {
        let tables = specs
            .iter()
            .map(|s| open_with(s, flags))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(TableList { tables })
    }

    /// A list of already opened tables (tests, or tables built by the caller).
    pub fn from_tables(tables: Vec<Arc<dyn Table>>) -> TableList {
        TableList { tables }
    }

    /// Search the tables in order: the first hit and the table that had it. A table that
    /// fails ends the search with its (temporary) error, so a lookup never silently skips a
    /// table that should have answered.
    #[allow(clippy::type_complexity)] // the signature the callers were promised
    pub fn lookup(&self, key: &str) -> Result<Option<(String, Arc<dyn Table>)>, TableError> {
        for table in &self.tables {
            if let Some(value) = table.lookup(key)? {
                return Ok(Some((value, table.clone())));
            }
        }
        Ok(None)
    }

    /// True when the list has no tables.
    pub fn is_empty(&self) -> bool {
        self.tables.is_empty()
    }

    /// The tables, in search order.
    pub fn tables(&self) -> &[Arc<dyn Table>] {
        &self.tables
    }
}

/// Fuzz entry point: parse arbitrary bytes as an aliases file and split every right-hand side.
pub fn fuzz_aliases(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let (aliases, _errors) = aliases::parse(&text, Path::new("fuzz"));
    for alias in &aliases {
        let _ = aliases::parse_rhs(&alias.value);
    }
    let _ = aliases::parse_include(&text);
}

/// Fuzz entry point: decode arbitrary bytes as an indexed table file. Garbage comes back as
/// an error, never a panic or an allocation beyond a small multiple of the input's size; a
/// file that decodes is searched for each of its keys and for one that is not there.
pub fn fuzz_indexed(data: &[u8]) {
    if let Ok(file) = indexed::IndexedFile::decode(data.to_vec(), Path::new("fuzz")) {
        for (key, _) in file.iter() {
            let _ = file.get(key);
        }
        let _ = file.get("\u{10ffff}not a key");
    }
}

#[cfg(test)]
mod absolute_tests {
    use super::absolute_spec;
    use std::path::Path;

    #[test]
    fn relative_file_tables_resolve_against_the_config_directory() {
        let b = Path::new("/etc/postfix");
        assert_eq!(
            absolute_spec("hash:aliases", b),
            "hash:/etc/postfix/aliases"
        );
        assert_eq!(absolute_spec("hash:/etc/aliases", b), "hash:/etc/aliases");
        assert_eq!(
            absolute_spec("proxy:hash:x", b),
            "proxy:hash:/etc/postfix/x"
        );
        assert_eq!(absolute_spec("inline:{a=b}", b), "inline:{a=b}");
        assert_eq!(absolute_spec("unix:passwd.byname", b), "unix:passwd.byname");
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[derive(Debug)]
    struct Failing;
    impl Table for Failing {
        fn lookup(&self, _key: &str) -> Result<Option<String>, TableError> {
            Err(TableError::Unavailable {
                spec: "fail:x".into(),
                reason: "down".into(),
            })
        }
        fn spec(&self) -> &str {
            "fail:x"
        }
    }

    fn quiet() -> Warner {
        Arc::new(|_: &str| {})
    }

    #[test]
    fn open_dispatches_on_type() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("t");
        std::fs::write(&file, "Key value\n").expect("write");
        let f = file.display();
        let cases: Vec<(String, &str, Option<&str>)> = vec![
            ("inline:{key=v}".into(), "key", Some("v")),
            ("static:always".into(), "x", Some("always")),
            ("static:{ with space }".into(), "x", Some("with space")),
            (format!("texthash:{f}"), "key", Some("value")),
            (format!("texthash:{f}"), "Key", None),
            ("regexp:/".to_string(), "x", None),
            (format!("proxy:texthash:{f}"), "key", Some("value")),
            (
                "proxy:unix:passwd.byname".into(),
                "no-such-user-postern",
                None,
            ),
            (
                "pcre:{ {/^(a+)$/ got $1}, {/./ other} }".into(),
                "aa",
                Some("got aa"),
            ),
            (
                "regexp:{ {/^(a+)$/ got $1}, {/./ other} }".into(),
                "b",
                Some("other"),
            ),
        ];
        std::fs::write(dir.path().join("r"), "/^k/ v\n").expect("write");
        for (spec, key, want) in cases {
            let spec = if spec == "regexp:/" {
                format!("regexp:{}", dir.path().join("r").display())
            } else {
                spec
            };
            let t = open(&spec).unwrap_or_else(|e| panic!("{spec}: {e}"));
            assert_eq!(t.spec(), spec);
            assert_eq!(
                t.lookup(key).expect("lookup").as_deref(),
                want,
                "{spec} {key}"
            );
        }
    }

    #[test]
    fn open_errors() {
        type Check = fn(&TableError) -> bool;
        let cases: &[(&str, Check)] = &[
            (
                "nis:mail.aliases",
                |e| matches!(e, TableError::UnsupportedType(t) if t == "nis"),
            ),
            ("ldap:/etc/postfix/ldap.cf", |e| {
                matches!(e, TableError::UnsupportedType(_))
            }),
            (
                "proxy:mysql:/etc/x",
                |e| matches!(e, TableError::UnsupportedType(t) if t == "mysql"),
            ),
            ("unix:passwd.byuid", |e| {
                matches!(e, TableError::BadSpec { .. })
            }),
            ("/etc/aliases", |e| matches!(e, TableError::BadSpec { .. })),
            (":x", |e| matches!(e, TableError::BadSpec { .. })),
            ("hash:", |e| matches!(e, TableError::BadSpec { .. })),
            ("inline:a=b", |e| matches!(e, TableError::BadSpec { .. })),
            ("texthash:/nonexistent/postern", |e| e.is_temporary()),
            ("regexp:/nonexistent/postern", |e| e.is_temporary()),
        ];
        for (spec, check) in cases {
            let err = open(spec).expect_err(spec);
            assert!(check(&err), "{spec}: {err:?}");
        }
    }

    #[test]
    fn missing_database_opens_and_defers() {
        let t = open("hash:/nonexistent/postern-aliases").expect("open is lazy");
        let err = t.lookup("root").expect_err("missing db");
        assert!(err.is_temporary());
        assert_eq!(
            err.to_string(),
            "hash:/nonexistent/postern-aliases is unavailable. open database \
             /nonexistent/postern-aliases.db: No such file or directory"
        );
    }

    #[test]
    fn table_list_order_and_errors() {
        let first = open("inline:{a=1}").expect("a");
        let second = open("inline:{a=2, b=3}").expect("b");
        let list = TableList::from_tables(vec![first, second]);
        let cases = [
            ("a", Some(("1", "inline:{a=1}"))),
            ("b", Some(("3", "inline:{a=2, b=3}"))),
            ("c", None),
        ];
        for (key, want) in cases {
            let got = list.lookup(key).expect("lookup");
            let got = got.as_ref().map(|(v, t)| (v.as_str(), t.spec()));
            assert_eq!(got, want, "{key}");
        }
        assert!(!list.is_empty());
        assert!(TableList::default().is_empty());
        assert!(TableList::open(&[]).expect("empty").is_empty());

        let failing: Arc<dyn Table> = Arc::new(Failing);
        let later = open("static:never").expect("static");
        let list = TableList::from_tables(vec![failing, later]);
        assert!(list.lookup("x").expect_err("stops").is_temporary());

        let specs = vec!["inline:{a=1}".to_string(), "nis:mail.aliases".to_string()];
        assert!(TableList::open(&specs).is_err());
    }

    #[test]
    fn no_regsub_flag_reaches_regexp_tables() {
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("r");
        std::fs::write(&file, "/^(.*)$/ $1\n").expect("write");
        let spec = format!("pcre:{}", file.display());
        assert!(open(&spec).is_ok());
        let err = open_with(&spec, OpenFlags { no_regsub: true }).expect_err("regsub");
        assert!(matches!(err, TableError::Syntax { line: 1, .. }), "{err}");
    }

    #[test]
    fn warning_sink_receives_warnings() {
        static SEEN: Mutex<Vec<String>> = Mutex::new(Vec::new());
        let dir = tempfile::tempdir().expect("tempdir");
        let file = dir.path().join("t");
        std::fs::write(&file, "novalue\n").expect("write");
        let spec = format!("texthash:{}", file.display());
        let sink: Warner = Arc::new(|t: &str| {
            SEEN.lock()
                .unwrap_or_else(|p| p.into_inner())
                .push(t.to_string());
        });
        let _ = open_inner(&spec, &spec, OpenFlags::default(), &sink).expect("open");
        let seen = SEEN.lock().unwrap_or_else(|p| p.into_inner()).clone();
        assert_eq!(
            seen,
            vec![format!(
                "{}, line 1: expected format: key whitespace value",
                file.display()
            )]
        );
        let _ = quiet();
    }

    #[test]
    fn fuzz_entry_points_survive_garbage() {
        let inputs: &[&[u8]] = &[
            b"",
            b"\xff\xfe",
            b"PSTNMAP\n\x01\0\0\0\0\0\0\0\xff\xff\xff\xff\xff\xff\xff\xff",
            b"root: \"|cmd, (x) <y> \\",
        ];
        for input in inputs {
            fuzz_aliases(input);
            fuzz_indexed(input);
        }
    }
}
