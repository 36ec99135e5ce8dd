//! Running one delivery job on a blocking thread and recording its outcome.
//!
//! The outcome of each recipient is appended to the queue file here, before qmgr hears of
//! it: `D` (synced, unless this was the message's only unfinished recipient, whose file is then
//! simply removed), `B` per failed address (synced), `d` for a deferral. A mailbox delivery is
//! preceded by an `I` record, so that a crash between the mailbox `fsync` and the `D` record
//! is recognised on the next attempt (docs/architecture.md).
//!
//! Transports: `local` is local(8); `error` bounces with the next hop as the reason; `discard`
//! drops the mail; anything else (`smtp`, `relay`, ...) is not in this version and is deferred
//! with that reason, never lost.

use std::sync::Arc;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use queue::record::Status;

use super::active::{self, Loaded};
use super::{Event, Job, Sender};
use crate::cleanup::{Origin, Submission};
use crate::local::{self, Aggregate, ForwardRequest, MemberStatus};
use crate::log::{self, DeliveryEvent, DeliveryStatus};
use crate::runtime::Runtime;
use crate::warning;

pub struct Ctx {
    pub rt: Arc<Runtime>,
    pub msg: Arc<Loaded>,
    pub entered_active: SystemTime,
    pub tx: Sender,
}

#[derive(Debug)]
pub struct Report {
    pub job: Job,
    /// Recipients delivered whose `D` record was not written because their message is
    /// removed as soon as it finishes (see [`active::finish`]).
    pub unrecorded: Vec<u32>,
}

pub fn start(ctx: Ctx, job: Job) {
    tokio::task::spawn_blocking(move || {
        let tx = ctx.tx.clone();
        let unrecorded = run(&ctx, &job);
        let _ = tx.send(Event::Delivered(Report { job, unrecorded }));
    });
}

struct Timing {
    arrival: SystemTime,
    entered: SystemTime,
    started: SystemTime,
    clock: Instant,
}

impl Timing {
    #[allow(clippy::too_many_arguments)] // the fields of a delivery log line
    fn event(
        &self,
        id: &str,
        to: &str,
        orig: &str,
        relay: &str,
        dsn: &str,
        status: DeliveryStatus,
        text: &str,
    ) -> DeliveryEvent {
        let now = self.started + self.clock.elapsed();
        let since = |a: SystemTime, b: SystemTime| b.duration_since(a).unwrap_or_default();
        DeliveryEvent {
            queue_id: id.to_string(),
            recipient: to.to_string(),
            orig_recipient: orig.to_string(),
            relay: relay.to_string(),
            conn_use: 1,
            delay: since(self.arrival, now),
            delays: [
                since(self.arrival, self.entered),
                since(self.entered, self.started),
                std::time::Duration::ZERO,
                since(self.started, now),
            ],
            dsn: dsn.to_string(),
            status,
            text: text.to_string(),
        }
    }
}

/// Returns the recipients delivered without a `D` record.
fn run(ctx: &Ctx, job: &Job) -> Vec<u32> {
    let msg = &ctx.msg;
    let env = &msg.envelope;
    let timing = Timing {
        arrival: env.arrival,
        entered: ctx.entered_active,
        started: SystemTime::now(),
        clock: Instant::now(),
    };
    let unfinished = msg.states.iter().filter(|s| !s.is_final).count();
    let sole = unfinished <= job.rcpts.len();
    let mut unrecorded = Vec::new();
    match job.transport.as_str() {
        "local" => run_local(ctx, job, &timing, sole, &mut unrecorded),
        "error" | "retry" => {
            let (dsn, text) = split_dsn(
                &job.nexthop,
                if job.transport == "error" {
                    "5.0.0"
                } else {
                    "4.0.0"
                },
            );
            let bounce = dsn.starts_with('5');
            for &i in &job.rcpts {
                let r = &env.recipients[i as usize];
                let status = if bounce {
                    DeliveryStatus::Bounced
                } else {
                    DeliveryStatus::Deferred
                };
                log::delivery(
                    &job.transport,
                    &timing.event(&msg.id, &r.address, &r.orig, "none", &dsn, status, &text),
                );
                record(ctx, i, &r.address, &dsn, "none", &text, bounce);
            }
        }
        "discard" => {
            for &i in &job.rcpts {
                let r = &env.recipients[i as usize];
                let text = if job.nexthop.is_empty() {
                    "discarded".to_string()
                } else {
                    job.nexthop.clone()
                };
                log::delivery(
                    "discard",
                    &timing.event(
                        &msg.id,
                        &r.address,
                        &r.orig,
                        "none",
                        "2.0.0",
                        DeliveryStatus::Sent,
                        &text,
                    ),
                );
                record_done(ctx, i, sole, &mut unrecorded);
            }
        }
        other => {
            let text = format!("mail transport unavailable: transport \"{other}\" is not provided by this version of Postern");
            for &i in &job.rcpts {
                let r = &env.recipients[i as usize];
                log::delivery(
                    "qmgr",
                    &timing.event(
                        &msg.id,
                        &r.address,
                        &r.orig,
                        "none",
                        "4.3.0",
                        DeliveryStatus::Deferred,
                        &text,
                    ),
                );
                record(ctx, i, &r.address, "4.3.0", "none", &text, false);
            }
        }
    }
    unrecorded
}

/// `error:5.1.1 text` → ("5.1.1", "text"); a missing code gets `default`.
fn split_dsn(nexthop: &str, default: &str) -> (String, String) {
    let mut parts = nexthop.splitn(2, ' ');
    let first = parts.next().unwrap_or("");
    let is_dsn = first.split('.').count() == 3
        && first
            .split('.')
            .all(|p| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()));
    if is_dsn {
        (
            first.to_string(),
            parts.next().unwrap_or("").trim().to_string(),
        )
    } else if nexthop.is_empty() {
        (default.to_string(), "delivery failed".to_string())
    } else {
        (default.to_string(), nexthop.to_string())
    }
}

fn record_done(ctx: &Ctx, idx: u32, sole: bool, unrecorded: &mut Vec<u32>) {
    if sole {
        // The file is removed when the message finishes; qmgr carries this in memory.
        unrecorded.push(idx);
        return;
    }
    if let Err(e) = queue::append_status(&ctx.msg.path, &[Status::Done { rcpt: idx }], true) {
        warning!("qmgr", "{}: cannot record delivery: {e}", ctx.msg.id);
    }
}

fn record(ctx: &Ctx, idx: u32, address: &str, dsn: &str, relay: &str, reason: &str, bounce: bool) {
    let s = if bounce {
        Status::Bounced {
            rcpt: idx,
            address: address.to_string(),
            dsn: dsn.to_string(),
            relay: relay.to_string(),
            reason: reason.to_string(),
        }
    } else {
        Status::Deferred {
            rcpt: idx,
            address: address.to_string(),
            dsn: dsn.to_string(),
            relay: relay.to_string(),
            reason: reason.to_string(),
        }
    };
    if let Err(e) = queue::append_status(&ctx.msg.path, &[s], bounce) {
        warning!("qmgr", "{}: cannot record delivery status: {e}", ctx.msg.id);
    }
}

fn run_local(ctx: &Ctx, job: &Job, timing: &Timing, sole: bool, unrecorded: &mut Vec<u32>) {
    let msg = &ctx.msg;
    let env = &msg.envelope;
    let content = match active::content(&msg.path, &msg.content) {
        Ok(c) => c,
        Err(e) => {
            // The file went away (postsuper) or is unreadable: nothing delivered, nothing lost.
            warning!("local", "{}: cannot read message content: {e}", msg.id);
            return;
        }
    };
    let s = ctx.rt.settings();
    let message = local::Message {
        queue_id: &msg.id,
        sender: &env.sender,
        arrival_secs: env
            .arrival
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs())
            .unwrap_or(0),
        content: &content,
        envid: env.attr("dsn_envid").unwrap_or(""),
    };
    let rt = ctx.rt.clone();
    let tx = ctx.tx.clone();
    let forward = move |req: ForwardRequest| -> Result<String, String> {
        let s = rt.settings();
        let sub = Submission {
            id: None,
            arrival: SystemTime::now(),
            sender: req.sender,
            full_name: None,
            recipients: req
                .recipients
                .into_iter()
                .map(queue::Recipient::new)
                .collect(),
            attrs: Vec::new(),
            content: req.content,
            origin: Origin::Forward,
            extract_recipients: false,
        };
        let done = s.cleanup.submit(sub).map_err(|e| e.to_string())?;
        let _ = tx.send(Event::Incoming(done.id.clone()));
        Ok(done.id)
    };
    for &idx in &job.rcpts {
        let r = &env.recipients[idx as usize];
        let st = &msg.states[idx as usize];
        // Let a crash between the mailbox fsync and the D record be recognised.
        if let Err(e) = queue::append_status(&msg.path, &[Status::Intent { rcpt: idx }], false) {
            let text = format!("cannot update queue file: {e}");
            log::delivery(
                "local",
                &timing.event(
                    &msg.id,
                    &r.address,
                    &r.orig,
                    "local",
                    "4.3.0",
                    DeliveryStatus::Deferred,
                    &text,
                ),
            );
            continue;
        }
        let lj = local::Job {
            idx,
            address: r.address.clone(),
            orig: r.orig.clone(),
            check_first: st.intent,
        };
        let out = local::deliver(&s.local, ctx.rt.exec.as_ref(), &message, &lj, &forward);
        for m in &out.members {
            let status = match m.status {
                MemberStatus::Sent => DeliveryStatus::Sent,
                MemberStatus::Deferred => DeliveryStatus::Deferred,
                MemberStatus::Bounced => DeliveryStatus::Bounced,
            };
            let soft = s.qmgr_soft_bounce && status == DeliveryStatus::Bounced;
            let (status, dsn) = if soft {
                (
                    DeliveryStatus::Deferred,
                    format!("4{}", &m.dsn[1.min(m.dsn.len())..]),
                )
            } else {
                (status, m.dsn.clone())
            };
            log::delivery(
                "local",
                &timing.event(&msg.id, &m.address, &r.orig, "local", &dsn, status, &m.text),
            );
        }
        match out.aggregate {
            Aggregate::Done => record_done(ctx, idx, sole, unrecorded),
            Aggregate::Deferred { address, dsn, text } => {
                record(ctx, idx, &address, &dsn, "local", &text, false)
            }
            Aggregate::Bounced => {
                let mut recs = Vec::new();
                for m in out
                    .members
                    .iter()
                    .filter(|m| m.status == MemberStatus::Bounced)
                {
                    if s.qmgr_soft_bounce {
                        recs.push(Status::Deferred {
                            rcpt: idx,
                            address: m.address.clone(),
                            dsn: format!("4{}", &m.dsn[1.min(m.dsn.len())..]),
                            relay: "local".into(),
                            reason: m.text.clone(),
                        });
                    } else {
                        recs.push(Status::Bounced {
                            rcpt: idx,
                            address: m.address.clone(),
                            dsn: m.dsn.clone(),
                            relay: "local".into(),
                            reason: m.text.clone(),
                        });
                    }
                }
                if let Err(e) = queue::append_status(&msg.path, &recs, true) {
                    warning!("qmgr", "{}: cannot record bounce: {e}", msg.id);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::split_dsn;

    #[test]
    fn error_nexthop() {
        assert_eq!(
            split_dsn("5.1.1 no such user", "5.0.0"),
            ("5.1.1".into(), "no such user".into())
        );
        assert_eq!(
            split_dsn("gone away", "5.0.0"),
            ("5.0.0".into(), "gone away".into())
        );
        assert_eq!(
            split_dsn("", "4.0.0"),
            ("4.0.0".into(), "delivery failed".into())
        );
    }
}
