//! End-to-end scenarios: each module is one behaviour, proved by running the real `postern`
//! binary the way an admin would (its commands, its queue, its log) and reading what it
//! delivered with independent readers. One test binary keeps link time sane on two cores.

mod common;

mod mbox_delivery;
