//! Postern's on-disk queue: the queue file format, queue IDs, the commit protocol and the
//! queue directory tree.
//!
//! Invariants this crate keeps (DESIGN.md 1–4):
//! - a queue file is visible under its ID only once it is complete and `fsync`ed, and its
//!   directory entry is durable before [`NewQueueFile::commit`] returns;
//! - a reader accepts a file only up to a valid end record (CRC-checked);
//! - per-recipient outcomes are appended, never rewritten in place.
//!
//! Everything here is synchronous `std::fs` code; the daemon calls it from blocking threads.
//! Errors are `io::Error`s with the path and the operation in their text, or [`FormatError`]s
//! for files that are not valid queue files (those belong in `corrupt/`).

pub mod crc;
pub mod dirs;
pub mod file;
pub mod id;
pub mod record;
pub mod sync;

pub use dirs::{Owners, Queue, QueueName};
pub use file::{append_status, read, NewQueueFile, QueueFile, ReadError};
pub use record::{
    notify, replay, Decoded, Envelope, FormatError, Outcome, Recipient, RecipientState, Status,
};
pub use sync::DirSync;

/// Decode arbitrary bytes as a queue file; for the `cargo fuzz` target. Never panics.
pub fn fuzz_decode(data: &[u8]) {
    let _ = record::decode(data);
}

/// Remove the ` (os error N)` that Rust appends to system error messages, so texts read
/// like Postfix's (`Permission denied`, not `Permission denied (os error 13)`).
pub fn clean_error_text(text: &str) -> String {
    const MARK: &str = " (os error ";
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(p) = rest.find(MARK) {
        let after = &rest[p + MARK.len()..];
        let digits = after.bytes().take_while(u8::is_ascii_digit).count();
        if digits > 0 && after[digits..].starts_with(')') {
            out.push_str(&rest[..p]);
            rest = &after[digits + 1..];
        } else {
            out.push_str(&rest[..p + MARK.len()]);
            rest = after;
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn os_error_suffix_is_removed() {
        assert_eq!(
            super::clean_error_text("open /x: Permission denied (os error 13); and (os error x)"),
            "open /x: Permission denied; and (os error x)"
        );
    }
}
