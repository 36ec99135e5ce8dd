//! In-place editing of `main.cf` for `postconf -e`, `-X` and `-#`.
//!
//! Owns the edit as postconf(1) performs it: `-e name=value` replaces every
//! logical line that sets `name` (its first physical line becomes
//! `name = value`, its continuation lines go, comment lines inside it stay)
//! and appends the names not yet present at the end, in argument order; `-X`
//! removes the logical lines; `-#` puts `#` before each of their physical
//! lines. Every other byte of the file is kept as it was, comments and order
//! included. More than one entry for a name gets Postfix's warning
//! `multiple entries for "name"`.
//!
//! The file is replaced atomically: a temporary file in the same directory,
//! written, given the original's mode (and owner, when permitted),
//! `fsync`ed, renamed over `main.cf`, then the directory is `fsync`ed.
//!
//! Failure: an unreadable `main.cf` or any step of the write is an
//! [`EditError`]; on failure the original file is untouched.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::main_cf::io_reason;
use crate::syntax;

/// One edit request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum EditOp {
    /// `-e`: set these parameters.
    Set(Vec<(String, String)>),
    /// `-X`: remove these parameters.
    Remove(Vec<String>),
    /// `-#`: comment these parameters out.
    Comment(Vec<String>),
}

/// Why `main.cf` could not be edited.
#[derive(Debug, thiserror::Error)]
pub(crate) enum EditError {
    /// The file could not be read.
    #[error("open {}: {reason}", .path.display())]
    Open {
        path: PathBuf,
        reason: String,
        not_found: bool,
    },
    /// The new file could not be written or put in place.
    #[error("{step} {}: {reason}", .path.display())]
    Write {
        step: &'static str,
        path: PathBuf,
        reason: String,
    },
}

enum Action {
    Keep,
    Replace(Vec<u8>),
    Delete,
    Comment,
}

/// Applies `op` to the bytes of a `main.cf`; returns the new bytes and the
/// warnings. `file` names the file in warnings.
pub(crate) fn edit_text(original: &[u8], op: &EditOp, file: &Path) -> (Vec<u8>, Vec<String>) {
    let text = String::from_utf8_lossy(original);
    let lines: Vec<&[u8]> = original.split(|&c| c == b'\n').collect();
    let mut actions: Vec<Action> = lines.iter().map(|_| Action::Keep).collect();
    let mut warnings = Vec::new();

    let (set, names): (BTreeMap<&str, &str>, Vec<&str>) = match op {
        EditOp::Set(pairs) => (
            pairs
                .iter()
                .map(|(n, v)| (n.as_str(), v.as_str()))
                .collect(),
            pairs.iter().map(|(n, _)| n.as_str()).collect(),
        ),
        EditOp::Remove(n) | EditOp::Comment(n) => {
            (BTreeMap::new(), n.iter().map(String::as_str).collect())
        }
    };
    let mut seen: BTreeMap<&str, usize> = BTreeMap::new();
    for l in syntax::logical_lines(&text) {
        if l.orphan {
            continue;
        }
        let Ok((name, _)) = syntax::split_name_value(&l.text) else {
            continue;
        };
        let Some(&wanted) = names.iter().find(|n| **n == name) else {
            continue;
        };
        *seen.entry(wanted).or_insert(0) += 1;
        for (k, &idx) in l.phys.iter().enumerate() {
            let Some(slot) = actions.get_mut(idx) else {
                continue;
            };
            *slot = match op {
                EditOp::Set(_) if k == 0 => {
                    let value = set.get(wanted).copied().unwrap_or_default();
                    Action::Replace(format!("{wanted} = {value}").into_bytes())
                }
                EditOp::Set(_) | EditOp::Remove(_) => Action::Delete,
                EditOp::Comment(_) => Action::Comment,
            };
        }
    }
    for (name, count) in &seen {
        if *count > 1 {
            warnings.push(format!(
                "{}: multiple entries for \"{}\"",
                file.display(),
                name
            ));
        }
    }

    let mut kept: Vec<Vec<u8>> = Vec::with_capacity(lines.len());
    for (line, action) in lines.iter().zip(actions) {
        match action {
            Action::Keep => kept.push(line.to_vec()),
            Action::Replace(new) => kept.push(new),
            Action::Delete => {}
            Action::Comment => {
                let mut c = Vec::with_capacity(line.len() + 1);
                c.push(b'#');
                c.extend_from_slice(line);
                kept.push(c);
            }
        }
    }
    let mut out = kept.join(&b'\n');
    // Postfix ends every line it writes with a newline.
    if !out.is_empty() && !out.ends_with(b"\n") {
        out.push(b'\n');
    }
    if let EditOp::Set(pairs) = op {
        let mut appended: Vec<&str> = Vec::new();
        for (name, _) in pairs {
            if seen.contains_key(name.as_str()) || appended.contains(&name.as_str()) {
                continue;
            }
            appended.push(name);
            let value = set.get(name.as_str()).copied().unwrap_or_default();
            out.extend_from_slice(format!("{name} = {value}\n").as_bytes());
        }
    }
    (out, warnings)
}

/// Edits the file at `path` in place; returns the warnings.
pub(crate) fn edit_file(path: &Path, op: &EditOp) -> Result<Vec<String>, EditError> {
    let original = std::fs::read(path).map_err(|e| EditError::Open {
        path: path.to_path_buf(),
        reason: io_reason(&e),
        not_found: e.kind() == std::io::ErrorKind::NotFound,
    })?;
    let (new, warnings) = edit_text(&original, op, path);
    write_atomically(path, &new)?;
    Ok(warnings)
}

/// Replaces `path` with `data`: temp file, write, mode, fsync, rename, fsync(dir).
fn write_atomically(path: &Path, data: &[u8]) -> Result<(), EditError> {
    let fail = |step: &'static str, p: &Path, e: &std::io::Error| EditError::Write {
        step,
        path: p.to_path_buf(),
        reason: io_reason(e),
    };
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d,
        _ => Path::new("."),
    };
    let mut tmp = tempfile::Builder::new()
        .prefix(".main.cf.")
        .suffix(".tmp")
        .tempfile_in(dir)
        .map_err(|e| fail("create temporary file in", dir, &e))?;
    tmp.write_all(data)
        .map_err(|e| fail("write", tmp.path(), &e))?;
    if let Ok(meta) = std::fs::metadata(path) {
        use std::os::unix::fs::MetadataExt;
        tmp.as_file()
            .set_permissions(meta.permissions())
            .map_err(|e| fail("chmod", tmp.path(), &e))?;
        // Keep the owner when we may (root editing another user's file).
        let _ = std::os::unix::fs::fchown(tmp.as_file(), Some(meta.uid()), Some(meta.gid()));
    }
    tmp.as_file()
        .sync_all()
        .map_err(|e| fail("fsync", tmp.path(), &e))?;
    tmp.persist(path)
        .map_err(|e| fail("rename to", path, &e.error))?;
    std::fs::File::open(dir)
        .and_then(|d| d.sync_all())
        .map_err(|e| fail("fsync", dir, &e))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    const ORIG: &str = "# top comment\nmyhostname = a.b\n# mid\nmydestination = a,\n    b,\n  # inner comment\n    c\nrelayhost = x\n\n# trailing\n";

    fn run(text: &str, op: EditOp) -> (String, Vec<String>) {
        let (out, w) = edit_text(text.as_bytes(), &op, Path::new("/x/main.cf"));
        (String::from_utf8(out).expect("utf-8"), w)
    }

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    fn names(n: &[&str]) -> Vec<String> {
        n.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn set_replaces_in_place_keeps_comments_and_appends_new() {
        // The expected text is what Postfix 3.7.11 `postconf -e` wrote
        // (with new names appended in argument order).
        let (got, w) = run(
            ORIG,
            EditOp::Set(pairs(&[
                ("mydestination", "new1, new2"),
                ("relayhost", "[y]:25"),
                ("myorigin", "z"),
                ("foo", "bar"),
            ])),
        );
        assert_eq!(
            got,
            "# top comment\nmyhostname = a.b\n# mid\nmydestination = new1, new2\n  # inner comment\nrelayhost = [y]:25\n\n# trailing\nmyorigin = z\nfoo = bar\n"
        );
        assert!(w.is_empty());
    }

    #[test]
    fn remove_and_comment_out() {
        let cases = [
            (
                EditOp::Remove(names(&["mydestination", "nosuch"])),
                "# top comment\nmyhostname = a.b\n# mid\n  # inner comment\nrelayhost = x\n\n# trailing\n",
            ),
            (
                EditOp::Comment(names(&["mydestination", "relayhost", "nosuch"])),
                "# top comment\nmyhostname = a.b\n# mid\n#mydestination = a,\n#    b,\n  # inner comment\n#    c\n#relayhost = x\n\n# trailing\n",
            ),
        ];
        for (op, want) in cases {
            assert_eq!(run(ORIG, op).0, want);
        }
    }

    #[test]
    fn every_entry_is_edited_with_a_warning() {
        let text = "a = 1\nmyorigin = x\nb = 2\nmyorigin = y\n  cont\n";
        let (got, w) = run(text, EditOp::Set(pairs(&[("myorigin", "z")])));
        assert_eq!(got, "a = 1\nmyorigin = z\nb = 2\nmyorigin = z\n");
        assert_eq!(w, ["/x/main.cf: multiple entries for \"myorigin\""]);
        assert_eq!(
            run(text, EditOp::Set(pairs(&[("myorigin", "")]))).0,
            "a = 1\nmyorigin = \nb = 2\nmyorigin = \n"
        );
    }

    #[test]
    fn edge_cases() {
        let cases = [
            ("", EditOp::Set(pairs(&[("a", "1")])), "a = 1\n"),
            ("x = 1", EditOp::Set(pairs(&[("a", "1")])), "x = 1\na = 1\n"),
            ("x = 1", EditOp::Set(pairs(&[("x", "2")])), "x = 2\n"),
            (
                "x = 1\n",
                EditOp::Set(pairs(&[("a", "1"), ("a", "2")])),
                "x = 1\na = 2\n",
            ),
            (
                "bad line\nx = 1\n",
                EditOp::Remove(names(&["x"])),
                "bad line\n",
            ),
            ("x = 1\n", EditOp::Remove(names(&["x"])), ""),
        ];
        for (text, op, want) in cases {
            assert_eq!(run(text, op.clone()).0, want, "{text:?} {op:?}");
        }
    }

    #[test]
    fn non_utf8_bytes_survive() {
        let text = b"# caf\xe9\nx = 1\n";
        let (out, _) = edit_text(text, &EditOp::Set(pairs(&[("x", "2")])), Path::new("m"));
        assert_eq!(out, b"# caf\xe9\nx = 2\n");
    }

    #[test]
    fn file_is_replaced_atomically_with_its_mode() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("main.cf");
        std::fs::write(&path, ORIG).expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o640)).expect("chmod");
        edit_file(&path, &EditOp::Set(pairs(&[("relayhost", "")]))).expect("edits");
        let text = std::fs::read_to_string(&path).expect("read");
        assert!(text.contains("\nrelayhost = \n"));
        let mode = std::fs::metadata(&path).expect("stat").permissions().mode() & 0o777;
        assert_eq!(mode, 0o640);
        let leftovers = std::fs::read_dir(dir.path()).expect("readdir").count();
        assert_eq!(leftovers, 1, "no temporary file is left behind");
        let missing = edit_file(&dir.path().join("nope.cf"), &EditOp::Remove(names(&["x"])));
        assert!(matches!(
            missing,
            Err(EditError::Open {
                not_found: true,
                ..
            })
        ));
    }
}
