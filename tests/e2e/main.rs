//! End-to-end scenarios: each module is one behaviour, proved by running the real `postern`
//! binary the way an admin would (its commands, its queue, its log) and reading what it
//! delivered with independent readers. One test binary keeps link time sane on two cores.

mod common;

mod mbox_delivery;
mod bounce_unknown_user;
mod defer_retry;
mod expiry;
mod double_bounce;
mod crash_exactly_once;
mod corrupt_queue_file;
mod mbox_concurrency;
mod single_user_mode;
mod sendmail_callers;
mod sendmail_errors;
mod queue_listing;
mod postsuper_ops;
mod maildir_delivery;
mod postcat_show;
mod aliases;
mod dotforward;
mod procmail_mda;
mod daemon_control;
mod delivery_identity;
mod mail_loops;
