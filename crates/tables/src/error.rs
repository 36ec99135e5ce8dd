//! The one error type of the tables crate.
//!
//! Owns: `TableError` and the rule that decides who must act on it. A lookup can only fail with
//! [`TableError::Unavailable`]: the table exists in the configuration but cannot answer right
//! now (database file missing, unreadable or damaged), and Postfix's answer to that is to defer
//! the mail and try again later. Every other variant comes from opening a table or parsing a
//! file and means an administrator must fix the configuration or the source file.
//!
//! Display texts follow Postfix's wording where Postfix has one (`hash:/etc/aliases is
//! unavailable. open database /etc/aliases.db: No such file or directory`,
//! `unsupported dictionary type: nis`, `/etc/aliases, line 3: need name:value pair`).

use std::path::PathBuf;

/// Why a table could not be opened or could not answer a lookup.
#[derive(thiserror::Error, Debug)]
pub enum TableError {
    /// The table cannot answer now (temporary: the caller defers the mail).
    #[error("{spec} is unavailable. {reason}")]
    Unavailable {
        /// `type:name` as configured.
        spec: String,
        /// What went wrong, e.g. `open database /etc/aliases.db: No such file or directory`.
        reason: String,
    },
    /// A bad line in a table's source file (regexp/pcre tables, alias files, postmap input).
    #[error("{}, line {line}: {message}", file.display())]
    Syntax {
        /// The source file (or the inline spec) holding the bad line.
        file: PathBuf,
        /// 1-based number of the line where the bad logical line starts.
        line: usize,
        /// What is wrong with it.
        message: String,
    },
    /// A table type Postern does not implement (`nis:`, `ldap:`, `mysql:`, ...).
    #[error("unsupported dictionary type: {0}")]
    UnsupportedType(String),
    /// A table name that is not `type:name`, or a malformed `inline:{...}`/`static:{...}`.
    #[error("{spec}: {message}")]
    BadSpec {
        /// The spec as given.
        spec: String,
        /// What is wrong with it.
        message: String,
    },
    /// An indexed database file whose bytes do not follow `docs/tables.md`.
    #[error("{}: {message}", path.display())]
    Corrupt {
        /// The database file (or `<memory>` when decoding bytes).
        path: PathBuf,
        /// Which check failed.
        message: String,
    },
    /// An I/O failure while reading a source file or writing a database.
    #[error("{context}: {source}")]
    Io {
        /// What was being done, in Postfix's words (`open /etc/aliases`).
        context: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
}

impl TableError {
    /// True when the condition may clear up by itself or by an admin rebuilding a file, so the
    /// mail that needed the lookup must be deferred (4xx, `4.3.0`), not bounced.
    pub fn is_temporary(&self) -> bool {
        matches!(
            self,
            TableError::Unavailable { .. } | TableError::Io { .. } | TableError::Corrupt { .. }
        )
    }

    pub(crate) fn io(context: impl Into<String>, source: std::io::Error) -> TableError {
        TableError::Io {
            context: context.into(),
            source,
        }
    }
}

/// `strerror`-style text for an I/O error, without Rust's " (os error 2)" suffix, so messages
/// read like Postfix's `open /etc/aliases: No such file or directory`.
pub(crate) fn errno_text(err: &std::io::Error) -> String {
    match err.raw_os_error() {
        Some(code) => nix::errno::Errno::from_raw(code).desc().to_string(),
        None => err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temporary_classification() {
        let cases: Vec<(TableError, bool)> = vec![
            (
                TableError::Unavailable {
                    spec: "hash:/x".into(),
                    reason: "r".into(),
                },
                true,
            ),
            (
                TableError::io("open /x", std::io::Error::from_raw_os_error(libc::EIO)),
                true,
            ),
            (
                TableError::Corrupt {
                    path: "/x.db".into(),
                    message: "m".into(),
                },
                true,
            ),
            (
                TableError::Syntax {
                    file: "/x".into(),
                    line: 1,
                    message: "m".into(),
                },
                false,
            ),
            (TableError::UnsupportedType("nis".into()), false),
            (
                TableError::BadSpec {
                    spec: "x".into(),
                    message: "m".into(),
                },
                false,
            ),
        ];
        for (err, temporary) in cases {
            assert_eq!(err.is_temporary(), temporary, "{err}");
        }
    }

    #[test]
    fn display_follows_postfix_wording() {
        let cases: Vec<(TableError, &str)> = vec![
            (
                TableError::Unavailable {
                    spec: "hash:/etc/aliases".into(),
                    reason: "open database /etc/aliases.db: No such file or directory".into(),
                },
                "hash:/etc/aliases is unavailable. open database /etc/aliases.db: No such file or directory",
            ),
            (
                TableError::Syntax {
                    file: "/etc/aliases".into(),
                    line: 3,
                    message: "need name:value pair".into(),
                },
                "/etc/aliases, line 3: need name:value pair",
            ),
            (
                TableError::UnsupportedType("nis".into()),
                "unsupported dictionary type: nis",
            ),
        ];
        for (err, text) in cases {
            assert_eq!(err.to_string(), text);
        }
    }

    #[test]
    fn errno_text_has_no_rust_suffix() {
        let err = std::io::Error::from_raw_os_error(libc::ENOENT);
        assert_eq!(errno_text(&err), "No such file or directory");
    }
}
