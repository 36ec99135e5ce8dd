//! Shared helpers for the scenarios.
pub use testkit::{is_root, read_maildir, read_mbox, user, Instance, User};

pub const BIN: &str = env!("CARGO_BIN_EXE_postern");

/// An instance with the defaults every scenario starts from.
pub fn instance() -> testkit::Builder {
    Instance::builder(BIN)
}
