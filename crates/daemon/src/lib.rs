//! The Postern daemon: Postfix's programs as tokio tasks in one process (DESIGN.md).
//!
//! `master` starts everything; `pickup` takes local submissions from `maildrop/`; `cleanup`
//! finishes messages into `incoming/`; `qmgr` schedules deliveries with `trivial_rewrite`
//! deciding where each recipient goes; `local` delivers to mailboxes, files and commands;
//! `bounce` returns what fails; `log` writes Postfix-format log lines. `privsep` is the
//! root-side helper that lets deliveries run as their recipients.

pub mod log;

pub mod bounce;
pub mod cleanup;
pub mod local;
pub mod master;
pub mod pickup;
pub mod privsep;
pub mod qmgr;
pub mod runtime;
pub mod smtpd;
pub mod trivial_rewrite;
