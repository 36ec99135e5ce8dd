//! End-to-end scenarios: each module is one behaviour, proved by running the real `postern`
//! binary the way an admin would (its commands, its queue, its log) and reading what it
//! delivered with independent readers. One test binary keeps link time sane on two cores.

mod common;
mod smtp_talk;
mod smtp_wire;

mod aliases;
mod bounce_unknown_user;
mod corrupt_queue_file;
mod crash_exactly_once;
mod daemon_control;
mod defer_retry;
mod delivery_identity;
mod dotforward;
mod double_bounce;
mod expiry;
mod mail_loops;
mod maildir_delivery;
mod mbox_concurrency;
mod mbox_delivery;
mod postcat_show;
mod postsuper_ops;
mod procmail_mda;
mod queue_listing;
mod sendmail_callers;
mod sendmail_errors;
mod single_user_mode;
mod smtp_failsafe;
mod smtp_limits;
mod smtp_listeners;
mod smtp_relay_control;
mod smtp_restrictions;
mod smtp_session;
mod smtp_smuggling;
mod smtp_tls;
