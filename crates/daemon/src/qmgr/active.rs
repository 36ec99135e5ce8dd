//! Blocking queue-file work for qmgr: bring a message into the active queue, record outcomes,
//! and finish a message (notices, removal, or back to `deferred/` with its retry time).
//!
//! Every function here runs on a blocking thread and touches one queue file. A file that
//! cannot be decoded goes to `corrupt/` with a log line and never stops the daemon. A file
//! that vanished (postsuper took it) is simply forgotten.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use queue::record::{self, Envelope, RecipientState, Status};
use queue::{QueueName, ReadError};

use crate::bounce::{self, NoticeKind};
use crate::runtime::Runtime;
use crate::{info, warning};

/// A message in the active queue (in memory: envelope and per-recipient state, no content).
#[derive(Debug)]
pub struct Loaded {
    pub id: String,
    pub path: PathBuf,
    pub envelope: Arc<Envelope>,
    pub content: std::ops::Range<usize>,
    pub states: Vec<RecipientState>,
    pub warned: bool,
    pub file_len: u64,
}

#[derive(Debug)]
pub enum LoadResult {
    Loaded(Loaded),
    /// Gone or moved away by someone else.
    Gone,
    /// Moved to corrupt/.
    Corrupt,
}

/// Move `id` from `from` into `active/` and read it.
pub fn activate(rt: &Runtime, id: &str, from: QueueName) -> LoadResult {
    let q = &rt.queue;
    if from != QueueName::Active {
        if let Err(e) = q.move_file(id, from, QueueName::Active) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warning!("qmgr", "{id}: cannot move to active queue: {e}");
            }
            return LoadResult::Gone;
        }
    }
    let path = q.file(QueueName::Active, id);
    match queue::read(&path) {
        Ok((qf, _buf)) => {
            if (qf.decoded.valid_len as u64) < qf.file_len {
                if let Err(e) = queue::file::truncate_torn_tail(&path, qf.decoded.valid_len as u64)
                {
                    warning!("qmgr", "{id}: cannot remove torn status record: {e}");
                }
            }
            let states = record::replay(&qf.decoded);
            let warned = record::warned(&qf.decoded);
            LoadResult::Loaded(Loaded {
                id: id.to_string(),
                path,
                envelope: Arc::new(qf.decoded.envelope),
                content: qf.decoded.content,
                states,
                warned,
                file_len: qf.decoded.valid_len as u64,
            })
        }
        Err(e) if e.is_not_found() => LoadResult::Gone,
        Err(e @ ReadError::Format { .. }) => {
            corrupt(rt, id, QueueName::Active, &e.to_string());
            LoadResult::Corrupt
        }
        Err(e) => {
            warning!("qmgr", "{id}: cannot read queue file: {e}");
            // Leave it for a later scan: put it back where deferred mail waits.
            let _ = q.move_file(id, QueueName::Active, QueueName::Deferred);
            LoadResult::Gone
        }
    }
}

/// Move an unusable file to corrupt/ and say so, in Postfix's words: what is wrong, then
/// `saving corrupt file "ID" from queue "active" to queue "corrupt"`.
pub fn corrupt(rt: &Runtime, id: &str, from: QueueName, why: &str) {
    warning!("qmgr", "{id}: {why}");
    match rt.queue.move_file(id, from, QueueName::Corrupt) {
        Ok(_) => warning!(
            "qmgr",
            "saving corrupt file \"{id}\" from queue \"{from}\" to queue \"corrupt\""
        ),
        Err(e) => warning!(
            "qmgr",
            "{id}: cannot save corrupt file from queue \"{from}\": {e}"
        ),
    }
}

/// Read the message content of an active file.
pub fn content(path: &std::path::Path, range: &std::ops::Range<usize>) -> std::io::Result<Vec<u8>> {
    use std::io::{Read, Seek, SeekFrom};
    let mut f = std::fs::File::open(path)?;
    f.seek(SeekFrom::Start(range.start as u64))?;
    let mut buf = Vec::with_capacity(range.len());
    f.take(range.len() as u64).read_to_end(&mut buf)?;
    if buf.len() != range.len() {
        return Err(std::io::ErrorKind::UnexpectedEof.into());
    }
    Ok(buf)
}

/// Remove a message all of whose recipients are done and owe nothing.
pub fn remove(_rt: &Runtime, msg: &Loaded) -> Finished {
    match std::fs::remove_file(&msg.path) {
        Ok(()) => {
            info!("qmgr", "{}: removed", msg.id);
            Finished::Removed
        }
        Err(e) => {
            if e.kind() != std::io::ErrorKind::NotFound {
                warning!("qmgr", "{}: cannot remove queue file: {e}", msg.id);
            }
            Finished::Gone
        }
    }
}

/// How a message left the active queue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Finished {
    Removed,
    Deferred,
    Gone,
}

/// Finish a message whose deliveries are all done for this pass. `unrecorded` are recipients
/// delivered without a `D` record (the message was expected to be removed).
pub fn finish(rt: &Runtime, msg: &Loaded, unrecorded: &[u32]) -> Finished {
    let s = rt.settings();
    let id = &msg.id;
    // Re-read: deliveries appended status records since activation.
    let (qf, _) = match queue::read(&msg.path) {
        Ok(x) => x,
        Err(e) if e.is_not_found() => return Finished::Gone,
        Err(e @ ReadError::Format { .. }) => {
            corrupt(rt, id, QueueName::Active, &e.to_string());
            return Finished::Gone;
        }
        Err(e) => {
            warning!("qmgr", "{id}: cannot read queue file: {e}");
            return Finished::Gone;
        }
    };
    let env = &qf.decoded.envelope;
    let mut states = record::replay(&qf.decoded);
    for &i in unrecorded {
        if let Some(st) = states.get_mut(i as usize) {
            st.is_final = true;
            st.delivered = true;
            st.deferred = None;
            st.intent = false;
            st.success_owed = env.recipients[i as usize].notify & queue::notify::SUCCESS != 0;
        }
    }
    let record_unrecorded = || {
        let recs: Vec<Status> = unrecorded
            .iter()
            .map(|&i| Status::Done { rcpt: i })
            .collect();
        if !recs.is_empty() {
            if let Err(e) = queue::append_status(&msg.path, &recs, true) {
                warning!("qmgr", "{id}: cannot record delivery: {e}");
            }
        }
    };
    let now = SystemTime::now();
    let age = now.duration_since(env.arrival).unwrap_or_default();
    let null_sender = env.sender.is_empty();
    let lifetime = if null_sender {
        s.qmgr.bounce_queue_lifetime
    } else {
        s.qmgr.maximal_queue_lifetime
    };

    // Expiry: checked after a delivery attempt, as Postfix does.
    let pending: Vec<usize> = (0..states.len()).filter(|&i| !states[i].is_final).collect();
    if !pending.is_empty() && age >= lifetime {
        let mut records = Vec::new();
        for &i in &pending {
            let last = states[i].deferred.clone().unwrap_or_default();
            let dsn = if last.dsn.is_empty() {
                "4.7.0".to_string()
            } else {
                last.dsn.clone()
            };
            let reason = if last.reason.is_empty() {
                "delivery temporarily suspended".to_string()
            } else {
                last.reason.clone()
            };
            records.push(Status::Bounced {
                rcpt: i as u32,
                address: if last.address.is_empty() {
                    env.recipients[i].address.clone()
                } else {
                    last.address
                },
                dsn,
                relay: last.relay,
                reason,
            });
        }
        if let Err(e) = queue::append_status(&msg.path, &records, true) {
            warning!("qmgr", "{id}: cannot record expiry: {e}");
            record_unrecorded();
            return defer(rt, msg, env, now, age);
        }
        info!(
            "qmgr",
            "{id}: from=<{}>, status=expired, returned to sender", env.sender
        );
        for r in records {
            if let Status::Bounced {
                rcpt,
                address,
                dsn,
                relay,
                reason,
            } = r
            {
                let st = &mut states[rcpt as usize];
                st.is_final = true;
                st.bounces_owed.push(record::Outcome {
                    address,
                    dsn,
                    relay,
                    reason,
                });
            }
        }
    }

    // Notices owed: failures, and successes for NOTIFY=SUCCESS.
    let content = content(&msg.path, &qf.decoded.content).unwrap_or_default();
    let mut notified = Vec::new();
    let failed: Vec<(usize, record::Outcome)> = states
        .iter()
        .enumerate()
        .flat_map(|(i, st)| st.bounces_owed.iter().cloned().map(move |o| (i, o)))
        .collect();
    if !failed.is_empty() {
        match bounce::notify(rt, &s, id, env, &content, &failed, NoticeKind::Failure) {
            Ok(()) => notified.extend(failed.iter().map(|(i, _)| *i)),
            Err(e) => {
                warning!(
                    "qmgr",
                    "{id}: cannot queue delivery status notification: {e}"
                );
                record_unrecorded();
                return defer(rt, msg, env, now, age);
            }
        }
    }
    let succeeded: Vec<(usize, record::Outcome)> = states
        .iter()
        .enumerate()
        .filter(|(_, st)| st.success_owed)
        .map(|(i, _)| {
            (
                i,
                record::Outcome {
                    address: env.recipients[i].address.clone(),
                    dsn: "2.0.0".into(),
                    relay: "local".into(),
                    reason: "delivery successful".into(),
                },
            )
        })
        .collect();
    if !succeeded.is_empty() && !null_sender {
        if let Err(e) = bounce::notify(rt, &s, id, env, &content, &succeeded, NoticeKind::Success) {
            warning!("qmgr", "{id}: cannot queue success notification: {e}");
        }
        notified.extend(succeeded.iter().map(|(i, _)| *i));
    }

    let all_final = states.iter().all(|st| st.is_final);
    if all_final {
        if let Err(e) = std::fs::remove_file(&msg.path) {
            if e.kind() != std::io::ErrorKind::NotFound {
                warning!("qmgr", "{id}: cannot remove queue file: {e}");
            }
            return Finished::Gone;
        }
        info!("qmgr", "{id}: removed");
        return Finished::Removed;
    }
    record_unrecorded();
    if !notified.is_empty() {
        notified.sort_unstable();
        notified.dedup();
        let recs: Vec<Status> = notified
            .into_iter()
            .map(|i| Status::Notified { rcpt: i as u32 })
            .collect();
        if let Err(e) = queue::append_status(&msg.path, &recs, true) {
            warning!("qmgr", "{id}: cannot record notification: {e}");
        }
    }
    // Delay warning.
    let warn_after = s.qmgr.delay_warning_time;
    if !warn_after.is_zero()
        && age >= warn_after
        && !msg.warned
        && !record::warned(&qf.decoded)
        && !null_sender
    {
        let delayed: Vec<(usize, record::Outcome)> = states
            .iter()
            .enumerate()
            .filter(|(i, st)| {
                let n = env.recipients[*i].notify;
                !st.is_final && (n == 0 || n & queue::notify::DELAY != 0)
            })
            .map(|(i, st)| (i, st.deferred.clone().unwrap_or_default()))
            .collect();
        if !delayed.is_empty() {
            match bounce::notify(rt, &s, id, env, &content, &delayed, NoticeKind::Delay) {
                Ok(()) => {
                    let _ = queue::append_status(&msg.path, &[Status::Warned], true);
                }
                Err(e) => warning!("qmgr", "{id}: cannot queue delay warning: {e}"),
            }
        }
    }
    defer(rt, msg, env, now, age)
}

/// Back to deferred/ with the next retry time as the file's modification time.
fn defer(rt: &Runtime, msg: &Loaded, _env: &Envelope, now: SystemTime, age: Duration) -> Finished {
    let s = rt.settings();
    let backoff = age.clamp(
        s.qmgr.minimal_backoff_time,
        s.qmgr.maximal_backoff_time.max(s.qmgr.minimal_backoff_time),
    );
    if let Err(e) = queue::file::set_mtime(&msg.path, now + backoff) {
        warning!("qmgr", "{}: cannot set retry time: {e}", msg.id);
    }
    match rt
        .queue
        .move_file(&msg.id, QueueName::Active, QueueName::Deferred)
    {
        Ok(_) => Finished::Deferred,
        Err(e) => {
            warning!("qmgr", "{}: cannot move to deferred queue: {e}", msg.id);
            Finished::Gone
        }
    }
}
