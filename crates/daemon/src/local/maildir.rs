//! Maildir delivery: write `tmp/NAME`, `fsync`, rename to `new/NAME`, `fsync` the `new/`
//! directory. Missing `tmp/ new/ cur/` are created (mode 0700), as Postfix does.
//!
//! NAME is `<arrival seconds>.Q<queue id>R<recipient>.<host>`: unique per queued recipient
//! and the same on every attempt, so that after a crash ([`Stamp::check_first`]) an earlier
//! copy in `new/` or `cur/` (where a reader moved it, adding `:2,` flags) is recognised and not
//! delivered again.

use std::fs::{self, DirBuilder, OpenOptions};
use std::io::{self, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::Path;

use super::action::{Done, Envelope, Stamp};
use super::copy;

/// Maildir names may not contain `/` or `:`; hosts are escaped as the Maildir spec suggests.
fn safe_host(host: &str) -> String {
    host.replace('/', "\\057").replace(':', "\\072")
}

pub fn file_name(stamp: &Stamp, hostname: &str) -> String {
    format!(
        "{}.Q{}R{}.{}",
        stamp.arrival_secs,
        stamp.queue_id,
        stamp.rcpt,
        safe_host(hostname)
    )
}

fn already_delivered(dir: &Path, name: &str) -> io::Result<bool> {
    if fs::symlink_metadata(dir.join("new").join(name)).is_ok() {
        return Ok(true);
    }
    let prefix = format!("{name}:");
    for entry in fs::read_dir(dir.join("cur"))? {
        let n = entry?.file_name();
        let n = n.to_string_lossy();
        if *n == *name || n.starts_with(&prefix) {
            return Ok(true);
        }
    }
    Ok(false)
}

pub fn deliver(
    dir: &Path,
    size_limit: u64,
    hostname: &str,
    envelope: &Envelope,
    stamp: &Stamp,
    message: &[u8],
) -> Done {
    let fail = |dsn: &str, why: String| -> Done {
        let text = format!("cannot update maildir {}. {why}", dir.display());
        if dsn.starts_with('5') {
            Done::bounce(dsn, text)
        } else {
            Done::defer(dsn, text)
        }
    };
    for sub in ["", "tmp", "new", "cur"] {
        let d = dir.join(sub);
        match DirBuilder::new().mode(0o700).create(&d) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {}
            Err(e) => return fail("4.2.0", format!("create directory {}: {e}", d.display())),
        }
    }
    let name = file_name(stamp, hostname);
    if stamp.check_first {
        match already_delivered(dir, &name) {
            Ok(true) => return Done::Sent("delivered to maildir".into()),
            Ok(false) => {}
            Err(e) => return fail("4.2.0", format!("cannot check for an earlier copy: {e}")),
        }
    }
    let text = copy::body(envelope, message, copy::MAILDIR);
    if size_limit > 0 && text.len() as u64 > size_limit {
        return fail("5.2.2", "error writing message: File too large".into());
    }
    let tmp = dir.join("tmp").join(&name);
    let new = dir.join("new").join(&name);
    let result = (|| -> io::Result<()> {
        let _ = fs::remove_file(&tmp);
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(&tmp)?;
        f.write_all(&text)?;
        f.sync_data()?;
        drop(f);
        fs::rename(&tmp, &new)?;
        fs::File::open(dir.join("new"))?.sync_all()
    })();
    match result {
        Ok(()) => Done::Sent("delivered to maildir".into()),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            let dsn = match e.raw_os_error() {
                Some(libc::EFBIG) | Some(libc::EDQUOT) => "5.2.2",
                _ => "4.2.0",
            };
            fail(dsn, format!("create maildir file {}: {e}", tmp.display()))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stamp(check: bool) -> Stamp {
        Stamp {
            queue_id: "4Kc0Lw3Bxzz1hGm".into(),
            rcpt: 2,
            arrival_secs: 1_795_000_000,
            check_first: check,
        }
    }

    #[test]
    fn delivers_and_recognises_earlier_copy() {
        let dir = tempfile::tempdir().unwrap();
        let md = dir.path().join("Maildir");
        let env = Envelope {
            sender: "a@x".into(),
            return_path: true,
            original_to: String::new(),
            delivered_to: "b@x".into(),
        };
        let d = deliver(&md, 0, "host:1", &env, &stamp(false), b"Subject: x\n\nhi\n");
        assert_eq!(d, Done::Sent("delivered to maildir".into()));
        let names: Vec<_> = fs::read_dir(md.join("new")).unwrap().collect();
        assert_eq!(names.len(), 1);
        let name = names[0]
            .as_ref()
            .unwrap()
            .file_name()
            .into_string()
            .unwrap();
        assert_eq!(name, "1795000000.Q4Kc0Lw3Bxzz1hGmR2.host\\0721");
        let text = fs::read_to_string(md.join("new").join(&name)).unwrap();
        assert_eq!(
            text,
            "Return-Path: <a@x>\nDelivered-To: b@x\nSubject: x\n\nhi\n"
        );
        assert_eq!(fs::read_dir(md.join("tmp")).unwrap().count(), 0);

        // A reader moved it to cur/ with flags; a crash-recovery attempt must not deliver again.
        fs::rename(
            md.join("new").join(&name),
            md.join("cur").join(format!("{name}:2,S")),
        )
        .unwrap();
        let d = deliver(&md, 0, "host:1", &env, &stamp(true), b"Subject: x\n\nhi\n");
        assert_eq!(d, Done::Sent("delivered to maildir".into()));
        assert_eq!(fs::read_dir(md.join("new")).unwrap().count(), 0);
    }
}
