//! `texthash:/path`: a postmap(1) source file used directly, without building a database.
//!
//! Owns reading the file at open time (DATABASE_README: "similar results as hash: files,
//! except that you don't need to run postmap ... and that texthash: does not detect changes
//! after the file is read"; the file name is taken literally, no suffix is appended).
//!
//! Invariants: keys are folded to lower case at load (postmap's default) and lookups are exact.
//! As with postmap, a bad line or a duplicate key is reported to the warning sink and skipped
//! (the first value of a key wins), and the rest of the file loads. A file that cannot be read
//! makes `open` fail with `Unavailable` (temporary: the caller defers mail).

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::Path;

use crate::error::{errno_text, TableError};
use crate::source::{fold_key, parse_source};
use crate::warn::Warner;
use crate::Table;

/// A `texthash:` table.
#[derive(Debug, Clone)]
pub struct TextHashTable {
    spec: String,
    entries: BTreeMap<String, String>,
    owner: Option<(u32, u32)>,
}

impl TextHashTable {
    /// Read and parse `path`.
    pub fn open(spec: &str, path: &Path, warner: &Warner) -> Result<TextHashTable, TableError> {
        let unavailable = |e: std::io::Error| TableError::Unavailable {
            spec: spec.to_string(),
            reason: format!("open {}: {}", path.display(), errno_text(&e)),
        };
        let bytes = std::fs::read(path).map_err(unavailable)?;
        let owner = std::fs::metadata(path).ok().map(|m| (m.uid(), m.gid()));
        let text = String::from_utf8_lossy(&bytes);
        let (parsed, diags) = parse_source(&text);
        for d in diags {
            warner(&format!(
                "{}, line {}: {}",
                path.display(),
                d.line,
                d.message
            ));
        }
        let mut entries = BTreeMap::new();
        for e in parsed {
            let key = fold_key(&e.key);
            if entries.contains_key(&key) {
                warner(&format!(
                    "{}, line {}: duplicate entry: \"{key}\"",
                    path.display(),
                    e.line
                ));
                continue;
            }
            entries.insert(key, e.value);
        }
        Ok(TextHashTable {
            spec: spec.to_string(),
            entries,
            owner,
        })
    }

    /// All entries in key order (for `postmap -s`).
    pub fn entries(&self) -> &BTreeMap<String, String> {
        &self.entries
    }
}

impl Table for TextHashTable {
    fn lookup(&self, key: &str) -> Result<Option<String>, TableError> {
        Ok(self.entries.get(key).cloned())
    }

    fn spec(&self) -> &str {
        &self.spec
    }

    fn owner(&self) -> Option<(u32, u32)> {
        self.owner
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[test]
    fn lookups_folding_and_warnings() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("virtual");
        std::fs::write(
            &path,
            "# comment\nUser@Example.COM  local1\nbroken\nother  a,\n  b\nuser@example.com dup\n",
        )
        .expect("write");
        let seen = Arc::new(Mutex::new(Vec::<String>::new()));
        let sink = seen.clone();
        let warner: Warner = Arc::new(move |t: &str| {
            sink.lock().expect("lock").push(t.to_string());
        });
        let spec = format!("texthash:{}", path.display());
        let t = TextHashTable::open(&spec, &path, &warner).expect("open");
        let cases = [
            ("user@example.com", Some("local1")),
            ("User@Example.COM", None),
            ("other", Some("a,  b")),
            ("broken", None),
            ("missing", None),
        ];
        for (key, want) in cases {
            assert_eq!(t.lookup(key).expect("l"), want.map(str::to_string), "{key}");
        }
        let warnings = seen.lock().expect("lock").clone();
        assert_eq!(
            warnings,
            vec![
                format!(
                    "{}, line 3: expected format: key whitespace value",
                    path.display()
                ),
                format!(
                    "{}, line 6: duplicate entry: \"user@example.com\"",
                    path.display()
                ),
            ]
        );
        assert!(t.owner().is_some());
    }

    #[test]
    fn missing_file_is_unavailable() {
        let warner: Warner = Arc::new(|_: &str| {});
        let err = TextHashTable::open(
            "texthash:/nonexistent/x",
            Path::new("/nonexistent/x"),
            &warner,
        )
        .expect_err("missing");
        assert!(err.is_temporary());
        assert_eq!(
            err.to_string(),
            "texthash:/nonexistent/x is unavailable. open /nonexistent/x: No such file or directory"
        );
    }
}
