//! qmgr: the queue manager.
//!
//! Owns the in-memory active queue: at most `qmgr_message_active_limit` messages, taken from
//! `incoming/` and `deferred/` in turn (fairness), their recipients resolved by
//! trivial-rewrite into per-transport, per-destination queues, and deliveries started round
//! robin within each transport's process limit and each destination's concurrency limit
//! (`local_destination_concurrency_limit`, `default_destination_concurrency_limit`; a
//! transport with recipient limit 1 — local — groups by recipient). `deferred/` is scanned
//! every `queue_run_delay` for files whose retry time (mtime) has come; a flush (`postqueue
//! -f`, `sendmail -q`) scans everything now.
//!
//! The active queue is a cache of the queue directory (DESIGN.md invariant 2): at start-up
//! everything in `active/` goes back to `incoming/`, and every outcome is appended to the queue
//! file by the delivery itself before qmgr forgets it. Memory is bounded by the active limit,
//! not by the size of the deferred queue.

pub mod active;
mod deliver;

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use config::MainCf;
use queue::QueueName;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use self::active::{Finished, LoadResult, Loaded};
use crate::runtime::Runtime;
use crate::{info, warning};

/// qmgr's parameters.
#[derive(Debug, Clone)]
pub struct Settings {
    pub queue_run_delay: Duration,
    pub minimal_backoff_time: Duration,
    pub maximal_backoff_time: Duration,
    pub maximal_queue_lifetime: Duration,
    pub bounce_queue_lifetime: Duration,
    pub delay_warning_time: Duration,
    pub active_limit: usize,
    pub process_limit: usize,
    pub local_concurrency: usize,
    pub local_recipient_limit: usize,
    pub default_concurrency: usize,
    pub default_recipient_limit: usize,
}

impl Settings {
    pub fn new(cfg: &MainCf) -> Settings {
        let pos = |n: &str| cfg.int(n).max(1) as usize;
        let maximal_queue_lifetime = cfg.time("maximal_queue_lifetime");
        let mut bounce_queue_lifetime = cfg.time("bounce_queue_lifetime");
        if bounce_queue_lifetime > maximal_queue_lifetime {
            warning!(
                "qmgr",
                "bounce_queue_lifetime is larger than maximal_queue_lifetime - adjusting bounce_queue_lifetime"
            );
            bounce_queue_lifetime = maximal_queue_lifetime;
        }
        Settings {
            queue_run_delay: cfg.time("queue_run_delay").max(Duration::from_millis(100)),
            minimal_backoff_time: cfg.time("minimal_backoff_time"),
            maximal_backoff_time: cfg.time("maximal_backoff_time"),
            maximal_queue_lifetime,
            bounce_queue_lifetime,
            delay_warning_time: cfg.time("delay_warning_time"),
            active_limit: pos("qmgr_message_active_limit"),
            process_limit: pos("default_process_limit"),
            local_concurrency: pos("local_destination_concurrency_limit"),
            local_recipient_limit: pos("local_destination_recipient_limit"),
            default_concurrency: pos("default_destination_concurrency_limit"),
            default_recipient_limit: pos("default_destination_recipient_limit"),
        }
    }
}

/// What reaches qmgr from the rest of the daemon.
#[derive(Debug)]
pub enum Event {
    /// cleanup committed this message to incoming/.
    Incoming(String),
    /// Bytes written to the `public/qmgr` FIFO: `I` scan incoming, `D` scan deferred, `A`
    /// ignore retry times on the next deferred scan, `F` forget dead destinations.
    Trigger(u8),
    Loaded(LoadResult, QueueName),
    Delivered(deliver::Report),
    Finished(String, Finished),
    /// A queue listing; the flag says whether retry times were ignored.
    Scanned(QueueName, Vec<String>, bool),
}

pub type Sender = mpsc::UnboundedSender<Event>;

/// One delivery request: recipients of one message for one transport and next hop.
#[derive(Debug, Clone)]
pub struct Job {
    pub id: String,
    pub rcpts: Vec<u32>,
    pub transport: String,
    pub nexthop: String,
    pub dest: String,
}

#[derive(Debug, Default)]
struct Dest {
    jobs: VecDeque<Job>,
    busy: usize,
}

#[derive(Debug, Default)]
struct Transport {
    dests: HashMap<String, Dest>,
    /// Destinations with waiting jobs, in round-robin order.
    ready: VecDeque<String>,
    busy: usize,
}

struct ActiveMsg {
    loaded: Arc<Loaded>,
    outstanding: usize,
    /// Delivered recipients whose status lives only here until the message finishes.
    unrecorded: Vec<u32>,
    entered: SystemTime,
}

pub struct Qmgr {
    rt: Arc<Runtime>,
    tx: Sender,
    rx: mpsc::UnboundedReceiver<Event>,
    active: HashMap<String, ActiveMsg>,
    /// IDs being loaded or finished (not yet or no longer in `active`).
    in_transit: HashSet<String>,
    incoming: VecDeque<String>,
    deferred: VecDeque<String>,
    known: HashSet<String>,
    transports: HashMap<String, Transport>,
    take_deferred_next: bool,
    ignore_retry_time: bool,
    scanning: HashSet<QueueName>,
    /// A scan found more than we keep in memory: scan that queue again once its list drains.
    /// The flag says whether that scan ignores retry times (a flush in progress).
    rescan: HashMap<QueueName, bool>,
}

/// The common case, decided without reading the file again: every recipient that was
/// unfinished at activation was delivered in this pass, nothing was owed before, and nobody
/// asked for a success notice.
fn all_simply_delivered(m: &ActiveMsg) -> bool {
    let env = &m.loaded.envelope;
    m.loaded.states.iter().enumerate().all(|(i, st)| {
        if st.is_final {
            st.bounces_owed.is_empty() && !st.success_owed
        } else {
            m.unrecorded.contains(&(i as u32))
                && env.recipients[i].notify & queue::notify::SUCCESS == 0
        }
    })
}

impl Qmgr {
    pub fn new(rt: Arc<Runtime>) -> (Qmgr, Sender) {
        let (tx, rx) = mpsc::unbounded_channel();
        (
            Qmgr {
                rt,
                tx: tx.clone(),
                rx,
                active: HashMap::new(),
                in_transit: HashSet::new(),
                incoming: VecDeque::new(),
                deferred: VecDeque::new(),
                known: HashSet::new(),
                transports: HashMap::new(),
                take_deferred_next: false,
                ignore_retry_time: false,
                scanning: HashSet::new(),
                rescan: HashMap::new(),
            },
            tx,
        )
    }

    /// Put messages left in active/ by a previous run back into incoming/ (as Postfix's qmgr
    /// does at start-up). Blocking; call before [`run`](Self::run).
    pub fn recover_active(rt: &Runtime) {
        match rt.queue.list(QueueName::Active) {
            Ok(ids) => {
                for id in ids {
                    if let Err(e) = rt
                        .queue
                        .move_file(&id, QueueName::Active, QueueName::Incoming)
                    {
                        warning!("qmgr", "{id}: cannot move back to incoming: {e}");
                    }
                }
            }
            Err(e) => warning!("qmgr", "{e}"),
        }
    }

    pub async fn run(mut self, shutdown: CancellationToken) {
        self.scan(QueueName::Incoming);
        self.scan(QueueName::Deferred);
        let mut tick = tokio::time::interval(self.rt.settings().qmgr.queue_run_delay);
        tick.tick().await;
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = tick.tick() => {
                    self.scan(QueueName::Incoming);
                    self.scan(QueueName::Deferred);
                }
                ev = self.rx.recv() => match ev {
                    Some(ev) => self.handle(ev),
                    None => break,
                },
            }
            self.fill();
            self.dispatch();
        }
    }

    fn handle(&mut self, ev: Event) {
        match ev {
            Event::Incoming(id) => {
                if self.known.insert(id.clone()) {
                    self.incoming.push_back(id);
                }
            }
            Event::Trigger(b) => match b {
                b'I' => self.scan(QueueName::Incoming),
                b'D' => self.scan(QueueName::Deferred),
                b'A' => self.ignore_retry_time = true,
                _ => {}
            },
            Event::Scanned(q, mut ids, ignored) => {
                self.scanning.remove(&q);
                // Memory stays bounded by configuration, not by queue size: keep at most a
                // few active-queue loads of IDs; the rest stays on disk for the next scan.
                let cap = self
                    .rt
                    .settings()
                    .qmgr
                    .active_limit
                    .saturating_mul(2)
                    .max(100);
                if ids.len() > cap {
                    ids.truncate(cap);
                    self.rescan.insert(q, ignored);
                }
                for id in ids {
                    if self.known.insert(id.clone()) {
                        match q {
                            QueueName::Incoming => self.incoming.push_back(id),
                            _ => self.deferred.push_back(id),
                        }
                    }
                }
            }
            Event::Loaded(res, _from) => self.loaded(res),
            Event::Delivered(report) => self.delivered(report),
            Event::Finished(id, how) => {
                self.in_transit.remove(&id);
                self.known.remove(&id);
                if how == Finished::Deferred {
                    // Nothing else to do: the deferred scan will find it when it is due.
                }
            }
        }
    }

    /// List a queue on a blocking thread; results come back as `Event::Scanned`.
    fn scan(&mut self, q: QueueName) {
        if !self.scanning.insert(q) {
            return;
        }
        let ignore = q == QueueName::Deferred && std::mem::take(&mut self.ignore_retry_time);
        let rt = self.rt.clone();
        let tx = self.tx.clone();
        tokio::task::spawn_blocking(move || {
            let now = SystemTime::now();
            let mut ids = match rt.queue.list(q) {
                Ok(ids) => ids,
                Err(e) => {
                    warning!("qmgr", "{e}");
                    Vec::new()
                }
            };
            if q == QueueName::Deferred && !ignore {
                ids.retain(|id| {
                    std::fs::metadata(rt.queue.file(q, id))
                        .and_then(|m| m.modified())
                        .map(|m| m <= now)
                        .unwrap_or(false)
                });
            }
            ids.sort();
            let _ = tx.send(Event::Scanned(q, ids, ignore));
        });
    }

    /// Bring messages into the active queue while there is room, incoming and deferred in turn.
    fn fill(&mut self) {
        let limit = self.rt.settings().qmgr.active_limit;
        while self.active.len() + self.in_transit.len() < limit {
            let next = if self.take_deferred_next {
                self.deferred
                    .pop_front()
                    .map(|id| (id, QueueName::Deferred))
                    .or_else(|| {
                        self.incoming
                            .pop_front()
                            .map(|id| (id, QueueName::Incoming))
                    })
            } else {
                self.incoming
                    .pop_front()
                    .map(|id| (id, QueueName::Incoming))
                    .or_else(|| {
                        self.deferred
                            .pop_front()
                            .map(|id| (id, QueueName::Deferred))
                    })
            };
            let Some((id, from)) = next else {
                // Lists are empty: pick up where a truncated scan stopped.
                for (q, ignored) in std::mem::take(&mut self.rescan) {
                    if ignored {
                        self.ignore_retry_time = true;
                    }
                    self.scan(q);
                }
                break;
            };
            self.take_deferred_next = from == QueueName::Incoming;
            if self.active.contains_key(&id) || !self.in_transit.insert(id.clone()) {
                continue;
            }
            let rt = self.rt.clone();
            let tx = self.tx.clone();
            tokio::task::spawn_blocking(move || {
                let res = active::activate(&rt, &id, from);
                if !matches!(res, LoadResult::Loaded(_)) {
                    let _ = tx.send(Event::Finished(id, Finished::Gone));
                }
                let _ = tx.send(Event::Loaded(res, from));
            });
        }
    }

    fn loaded(&mut self, res: LoadResult) {
        let LoadResult::Loaded(msg) = res else { return };
        let id = msg.id.clone();
        self.in_transit.remove(&id);
        let s = self.rt.settings();
        let env = &msg.envelope;
        info!(
            "qmgr",
            "{id}: from=<{}>, size={}, nrcpt={} (queue active)",
            env.sender,
            msg.content.len(),
            env.recipients.len()
        );
        // Group the recipients that still need delivery by transport and next hop.
        let mut groups: HashMap<(String, String, String), Vec<u32>> = HashMap::new();
        let mut order = Vec::new();
        for (i, r) in env.recipients.iter().enumerate() {
            if msg.states[i].is_final {
                continue;
            }
            let res = s.local.rewriter.resolve(&r.address);
            let per_rcpt = res.transport == "local" && s.qmgr.local_recipient_limit == 1;
            let dest = if per_rcpt {
                res.address.to_ascii_lowercase()
            } else {
                res.nexthop.to_ascii_lowercase()
            };
            let key = (res.transport, res.nexthop, dest);
            if !groups.contains_key(&key) {
                order.push(key.clone());
            }
            groups.entry(key).or_default().push(i as u32);
        }
        let mut jobs = Vec::new();
        for key in order {
            let rcpts = groups.remove(&key).unwrap_or_default();
            let limit = if key.0 == "local" {
                s.qmgr.local_recipient_limit
            } else {
                s.qmgr.default_recipient_limit
            };
            for chunk in rcpts.chunks(limit.max(1)) {
                jobs.push(Job {
                    id: id.clone(),
                    rcpts: chunk.to_vec(),
                    transport: key.0.clone(),
                    nexthop: key.1.clone(),
                    dest: key.2.clone(),
                });
            }
        }
        let loaded = Arc::new(msg);
        self.active.insert(
            id.clone(),
            ActiveMsg {
                loaded: loaded.clone(),
                outstanding: jobs.len(),
                unrecorded: Vec::new(),
                entered: SystemTime::now(),
            },
        );
        if jobs.is_empty() {
            self.finish(&id);
            return;
        }
        for job in jobs {
            let t = self.transports.entry(job.transport.clone()).or_default();
            let d = t.dests.entry(job.dest.clone()).or_default();
            if d.jobs.is_empty() && !t.ready.contains(&job.dest) {
                t.ready.push_back(job.dest.clone());
            }
            d.jobs.push_back(job);
        }
    }

    /// Start deliveries round robin within each transport's and destination's limits.
    fn dispatch(&mut self) {
        let s = self.rt.settings();
        let names: Vec<String> = self.transports.keys().cloned().collect();
        for name in names {
            let dest_limit = if name == "local" {
                s.qmgr.local_concurrency
            } else {
                s.qmgr.default_concurrency
            };
            let mut started = Vec::new();
            {
                let Some(t) = self.transports.get_mut(&name) else {
                    continue;
                };
                let mut rounds = t.ready.len();
                while t.busy < s.qmgr.process_limit && rounds > 0 {
                    rounds -= 1;
                    let Some(dest) = t.ready.pop_front() else {
                        break;
                    };
                    let Some(d) = t.dests.get_mut(&dest) else {
                        continue;
                    };
                    if d.busy >= dest_limit {
                        // Waits for a completion to put it back in the ready list.
                        continue;
                    }
                    let Some(job) = d.jobs.pop_front() else {
                        continue;
                    };
                    d.busy += 1;
                    t.busy += 1;
                    if !d.jobs.is_empty() {
                        t.ready.push_back(dest.clone());
                        rounds += 1;
                    }
                    started.push(job);
                }
            }
            for job in started {
                let Some(msg) = self.active.get(&job.id) else {
                    continue;
                };
                let ctx = deliver::Ctx {
                    rt: self.rt.clone(),
                    msg: msg.loaded.clone(),
                    entered_active: msg.entered,
                    tx: self.tx.clone(),
                };
                deliver::start(ctx, job);
            }
        }
    }

    fn delivered(&mut self, report: deliver::Report) {
        let job = &report.job;
        if let Some(t) = self.transports.get_mut(&job.transport) {
            t.busy = t.busy.saturating_sub(1);
            let mut remove = false;
            if let Some(d) = t.dests.get_mut(&job.dest) {
                d.busy = d.busy.saturating_sub(1);
                if !d.jobs.is_empty() && !t.ready.contains(&job.dest) {
                    t.ready.push_back(job.dest.clone());
                }
                remove = d.jobs.is_empty() && d.busy == 0;
            }
            if remove {
                t.dests.remove(&job.dest);
            }
        }
        let id = job.id.clone();
        let done = match self.active.get_mut(&id) {
            Some(m) => {
                m.unrecorded.extend(report.unrecorded.iter().copied());
                m.outstanding = m.outstanding.saturating_sub(1);
                m.outstanding == 0
            }
            None => false,
        };
        if done {
            self.finish(&id);
        }
    }

    fn finish(&mut self, id: &str) {
        let Some(m) = self.active.remove(id) else {
            return;
        };
        self.in_transit.insert(id.to_string());
        let rt = self.rt.clone();
        let tx = self.tx.clone();
        let id = id.to_string();
        tokio::task::spawn_blocking(move || {
            let how = if all_simply_delivered(&m) {
                active::remove(&rt, &m.loaded)
            } else {
                active::finish(&rt, &m.loaded, &m.unrecorded)
            };
            let _ = tx.send(Event::Finished(id, how));
        });
    }
}
