//! Queue IDs in Postfix's long form (`enable_long_queue_ids = yes`): the arrival second and
//! microsecond in base 52, a `z`, then the file's inode number in base 51, e.g. `4Kc0Lw3Bxzz1hGm`.
//!
//! Postern always uses this form. A long ID is never recycled: two files can share an inode
//! only one after the other, and then their creation times differ. `pickup` relies on that
//! when it keeps the ID of the `maildrop/` file it came from (see docs/architecture.md).

use std::time::{SystemTime, UNIX_EPOCH};

/// Digits and consonants, as in Postfix's long queue IDs.
const ALPHABET: &[u8; 52] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxyz";
/// The inode part leaves out `z`, which separates it from the time part.
const INODE_ALPHABET: &[u8] = b"0123456789BCDFGHJKLMNPQRSTVWXYZbcdfghjklmnpqrstvwxy";

/// Longest ID we accept from a file name (6+4+1+13 fits a 64-bit inode; leave room).
pub const MAX_ID_LEN: usize = 32;

fn encode(mut n: u64, alphabet: &[u8], min_width: usize, out: &mut Vec<u8>) {
    let base = alphabet.len() as u64;
    let mut digits = Vec::with_capacity(16);
    loop {
        digits.push(alphabet[(n % base) as usize]);
        n /= base;
        if n == 0 {
            break;
        }
    }
    while digits.len() < min_width {
        digits.push(alphabet[0]);
    }
    out.extend(digits.iter().rev());
}

/// The ID for a file created at `when` with inode `ino`.
pub fn make(when: SystemTime, ino: u64) -> String {
    let since = when.duration_since(UNIX_EPOCH).unwrap_or_default();
    let mut out = Vec::with_capacity(20);
    encode(since.as_secs(), ALPHABET, 6, &mut out);
    encode(u64::from(since.subsec_micros()), ALPHABET, 4, &mut out);
    out.push(b'z');
    encode(ino, INODE_ALPHABET, 1, &mut out);
    // Every byte comes from an ASCII alphabet.
    String::from_utf8(out).unwrap_or_default()
}

/// Does `name` look like a queue ID (and therefore like a complete queue file)?
/// Temporary files never do: they start with `.`.
pub fn is_valid(name: &str) -> bool {
    let bytes = name.as_bytes();
    if bytes.len() < 12 || bytes.len() > MAX_ID_LEN {
        return false;
    }
    let Some(z) = bytes[10..].iter().position(|&b| b == b'z').map(|p| p + 10) else {
        return false;
    };
    z + 1 < bytes.len()
        && bytes[..z].iter().all(|b| ALPHABET.contains(b))
        && bytes[z + 1..].iter().all(|b| INODE_ALPHABET.contains(b))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn shape() {
        let t = UNIX_EPOCH + Duration::new(1_795_000_000, 123_456_000);
        let id = make(t, 1234567);
        assert!(is_valid(&id), "{id}");
        assert_eq!(&id[10..11], "z");
        assert!(id.len() >= 12);
    }

    #[test]
    fn distinct_inode_or_time_gives_distinct_id() {
        let t = UNIX_EPOCH + Duration::new(1_795_000_000, 5_000);
        assert_ne!(make(t, 1), make(t, 2));
        assert_ne!(make(t, 1), make(t + Duration::from_micros(1), 1));
        assert_ne!(make(t, 1), make(t + Duration::from_secs(1), 1));
    }

    #[test]
    fn validity() {
        for bad in [
            "",
            ".tmp.1.2",
            "4Kc0Lw3Bxz",
            "4Kc0Lw3Bxzz",
            "4Kc0Lw3Bxaz1",
            "4Kc0Lw3Bx/z1",
            "../../etc/passwdz",
        ] {
            assert!(!is_valid(bad), "{bad}");
        }
        assert!(is_valid("4Kc0Lw3Bxzz1hGm"));
    }
}
