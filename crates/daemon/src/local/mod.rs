//! local: deliver mail for local users, as Postfix's local(8).
//!
//! Order, for each recipient: loop checks (`Delivered-To:` already naming the recipient,
//! more than `hopcount_limit` `Received:` headers), then `alias_maps` (with the
//! `recipient_delimiter` extension tried first), then the user's `.forward` (`forward_path`),
//! then `mailbox_command`, then `home_mailbox` (Maildir when it ends in `/`) or the mbox in
//! `mail_spool_directory`. Alias and .forward entries may be addresses (local ones delivered
//! here, recursively; others forwarded as a new message), `|commands`, `/files`,
//! `:include:/files` and `\user`; commands and files only where `allow_mail_to_commands` and
//! `allow_mail_to_files` allow them, and never from an address. An address in its own
//! expansion goes to that user's mailbox.
//!
//! Identity: when the daemon was started as root, a mailbox, `.forward`, or mailbox_command
//! delivery runs as the recipient (uid and primary gid; `default_privs` for root), alias
//! commands and files as the alias database owner (`default_privs` when that is root).
//! Otherwise everything runs as the daemon's own user.
//!
//! Outcome: every final address reached is one [`Member`] event (logged by the caller as
//! `to=<member>, orig_to=<recipient>`). The recipient is deferred if any member was
//! deferred (all members are tried again later, as Postfix does), else bounced members owe a
//! notice, else it is done.

pub mod action;
pub mod command;
mod copy;
pub mod exec;
pub mod maildir;
pub mod mbox;

use std::collections::HashSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use config::MainCf;
use smtp::address;
use tables::TableList;

use self::action::{Action, Done, Envelope, Locking, Stamp};
use self::exec::{Exec, Identity};
use crate::trivial_rewrite::{AddressClass, Rewriter};

/// Local delivery settings, taken from main.cf at start and on reload.
#[derive(Debug)]
pub struct Settings {
    pub rewriter: Rewriter,
    pub myhostname: String,
    pub myorigin: String,
    pub recipient_delimiter: String,
    pub aliases: Option<Arc<TableList>>,
    /// Why alias_maps could not be opened (deliveries are deferred with this reason).
    pub aliases_error: Option<String>,
    pub forward_path: String,
    pub allow_commands: Vec<String>,
    pub allow_files: Vec<String>,
    pub mailbox_command: String,
    pub home_mailbox: String,
    pub mail_spool_directory: PathBuf,
    pub mailbox_size_limit: u64,
    pub command_time_limit: Duration,
    pub locking: Locking,
    pub strict_mailbox_ownership: bool,
    pub prepend_delivered: Vec<String>,
    pub enable_original_recipient: bool,
    pub hopcount_limit: usize,
    pub local_command_shell: String,
    pub command_execution_directory: String,
    pub command_expansion_filter: String,
    pub forward_expansion_filter: String,
    pub export_environment: Vec<(String, String)>,
    pub owner_request_special: bool,
    pub frozen_delivered_to: bool,
    pub default_privs: Identity,
    pub duplicate_filter_limit: usize,
    /// Started as root: deliveries switch identity.
    pub switch_identity: bool,
    pub read_limit: u64,
}

impl Settings {
    pub fn new(cfg: &MainCf, switch_identity: bool) -> Settings {
        // NIS is not supported; like Postfix on a host without NIS, skip it with a warning
        // (Debian's main.cf names it in alias_maps).
        let specs: Vec<String> = cfg
            .list("alias_maps")
            .into_iter()
            .filter(|spec| {
                let nis = spec.starts_with("nis:");
                if nis {
                    crate::warning!(
                        "local",
                        "{spec}: NIS lookups are not supported; table ignored"
                    );
                }
                !nis
            })
            .map(|spec| tables::absolute_spec(&spec, cfg.config_directory()))
            .collect();
        let flags = tables::OpenFlags { no_regsub: true };
        let (aliases, aliases_error) = match TableList::open_with(&specs, flags) {
            Ok(t) => (Some(Arc::new(t)), None),
            Err(e) => (None, Some(e.to_string())),
        };
        let locks = cfg.list("mailbox_delivery_lock");
        let default_privs = nix::unistd::User::from_name(&cfg.str("default_privs"))
            .ok()
            .flatten()
            .map(|u| Identity {
                uid: u.uid.as_raw(),
                gid: u.gid.as_raw(),
            })
            .unwrap_or(Identity {
                uid: 65534,
                gid: 65534,
            });
        let export_environment = cfg
            .list("export_environment")
            .into_iter()
            .filter_map(|name| match name.split_once('=') {
                Some((k, v)) => Some((k.to_string(), v.to_string())),
                None => std::env::var(&name).ok().map(|v| (name, v)),
            })
            .collect();
        Settings {
            rewriter: Rewriter::new(cfg),
            myhostname: cfg.str("myhostname"),
            myorigin: cfg.str("myorigin"),
            recipient_delimiter: cfg.str("recipient_delimiter"),
            aliases,
            aliases_error,
            forward_path: cfg.raw("forward_path"),
            allow_commands: cfg.list("allow_mail_to_commands"),
            allow_files: cfg.list("allow_mail_to_files"),
            mailbox_command: cfg.raw("mailbox_command"),
            home_mailbox: cfg.str("home_mailbox"),
            mail_spool_directory: cfg.path("mail_spool_directory"),
            mailbox_size_limit: cfg.size("mailbox_size_limit"),
            command_time_limit: cfg.time("command_time_limit"),
            locking: Locking {
                fcntl: locks.iter().any(|l| l == "fcntl"),
                dotlock: locks.iter().any(|l| l == "dotlock"),
                flock: locks.iter().any(|l| l == "flock"),
                attempts: cfg.int("deliver_lock_attempts").clamp(1, 1000) as u32,
                delay: cfg.time("deliver_lock_delay"),
                stale: cfg.time("stale_lock_time"),
            },
            strict_mailbox_ownership: cfg.bool("strict_mailbox_ownership"),
            prepend_delivered: cfg.list("prepend_delivered_header"),
            enable_original_recipient: cfg.bool("enable_original_recipient"),
            hopcount_limit: cfg.int("hopcount_limit").max(0) as usize,
            local_command_shell: cfg.str("local_command_shell"),
            command_execution_directory: cfg.raw("command_execution_directory"),
            command_expansion_filter: cfg.str("command_expansion_filter"),
            forward_expansion_filter: cfg.str("forward_expansion_filter"),
            export_environment,
            owner_request_special: cfg.bool("owner_request_special"),
            frozen_delivered_to: cfg.bool("frozen_delivered_to"),
            default_privs,
            duplicate_filter_limit: cfg.int("duplicate_filter_limit").max(1) as usize,
            switch_identity,
            read_limit: 1 << 20,
        }
    }
}

/// The message being delivered.
#[derive(Debug)]
pub struct Message<'a> {
    pub queue_id: &'a str,
    pub sender: &'a str,
    pub arrival_secs: u64,
    pub content: &'a [u8],
    pub envid: &'a str,
}

/// One queued recipient to deliver.
#[derive(Clone, Debug)]
pub struct Job {
    pub idx: u32,
    pub address: String,
    pub orig: String,
    /// A delivery intent was left by a crash: look for an earlier copy first.
    pub check_first: bool,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MemberStatus {
    Sent,
    Deferred,
    Bounced,
}

/// One final address reached while delivering a recipient.
#[derive(Clone, Debug)]
pub struct Member {
    pub address: String,
    pub status: MemberStatus,
    pub dsn: String,
    pub text: String,
}

/// New message for forwarded addresses: the caller submits it through cleanup and returns
/// the new queue ID.
pub struct ForwardRequest {
    pub sender: String,
    pub recipients: Vec<String>,
    pub content: Vec<u8>,
}

pub type Forwarder<'a> = &'a dyn Fn(ForwardRequest) -> Result<String, String>;

#[derive(Clone, Debug)]
pub enum Aggregate {
    Done,
    Bounced,
    Deferred {
        address: String,
        dsn: String,
        text: String,
    },
}

#[derive(Debug)]
pub struct Outcome {
    pub members: Vec<Member>,
    pub aggregate: Aggregate,
}

/// Deliveries from this daemon to one mbox file take turns here instead of contending for
/// its dotlock (whose retry delay is a whole second); the file locks still keep other programs
/// out.
fn with_mailbox_turn<T>(path: &Path, f: impl FnOnce() -> T) -> T {
    use std::collections::HashMap;
    use std::sync::{Mutex, OnceLock};
    static TURNS: OnceLock<Mutex<HashMap<PathBuf, Arc<Mutex<()>>>>> = OnceLock::new();
    let table = TURNS.get_or_init(Default::default);
    let turn = table
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .entry(path.to_path_buf())
        .or_default()
        .clone();
    let result = {
        let _mine = turn.lock().unwrap_or_else(|e| e.into_inner());
        f()
    };
    let mut t = table.lock().unwrap_or_else(|e| e.into_inner());
    if Arc::strong_count(&turn) == 2 {
        t.remove(path);
    }
    result
}

/// The passwd entry of a local user.
#[derive(Clone, Debug)]
struct Pw {
    name: String,
    uid: u32,
    gid: u32,
    home: PathBuf,
    shell: String,
}

fn getpw(name: &str) -> Option<Pw> {
    let u = nix::unistd::User::from_name(name).ok().flatten()?;
    Some(Pw {
        name: u.name,
        uid: u.uid.as_raw(),
        gid: u.gid.as_raw(),
        home: u.dir,
        shell: u.shell.to_string_lossy().into_owned(),
    })
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Source {
    Alias,
    Include,
    Forward,
}

impl Source {
    fn word(self) -> &'static str {
        match self {
            Source::Alias => "alias",
            Source::Include => "include",
            Source::Forward => "forward",
        }
    }
}

/// Replace characters not in `allowed` with `_` (command_expansion_filter).
fn filter(value: &str, allowed: &str) -> String {
    value
        .chars()
        .map(|c| if allowed.contains(c) { c } else { '_' })
        .collect()
}

/// Split `local` into (user, extension) at the first recipient delimiter, unless the address
/// is one of those Postfix never splits.
fn split_extension<'a>(s: &Settings, local: &'a str) -> (&'a str, Option<&'a str>) {
    if s.recipient_delimiter.is_empty()
        || matches!(local, "postmaster" | "mailer-daemon" | "double-bounce")
        || (s.owner_request_special && (local.starts_with("owner-") || local.ends_with("-request")))
    {
        return (local, None);
    }
    match local
        .char_indices()
        .find(|(i, c)| *i > 0 && s.recipient_delimiter.contains(*c))
    {
        Some((i, c)) => (&local[..i], Some(&local[i + c.len_utf8()..])),
        None => (local, None),
    }
}

struct Walk<'a> {
    s: &'a Settings,
    exec: &'a dyn Exec,
    msg: &'a Message<'a>,
    job: &'a Job,
    delivered_to: Vec<String>,
    members: Vec<Member>,
    forwards: Vec<String>,
    forward_sender: Option<String>,
    seen: HashSet<String>,
    /// Addresses whose alias or .forward expansion is in progress, innermost last: meeting
    /// one again is a loop (`a: b`, `b: a`), to be bounced rather than dropped as a duplicate.
    chain: Vec<(String, Source)>,
    self_identity: Identity,
}

pub fn deliver(
    s: &Settings,
    exec: &dyn Exec,
    msg: &Message<'_>,
    job: &Job,
    forward: Forwarder<'_>,
) -> Outcome {
    let parsed = smtp::header::parse(msg.content);
    let delivered_to = parsed
        .headers
        .iter()
        .filter(|h| h.is("delivered-to"))
        .map(|h| h.value().trim().to_ascii_lowercase())
        .collect();
    let received = parsed.headers.iter().filter(|h| h.is("received")).count();
    let mut w = Walk {
        s,
        exec,
        msg,
        job,
        delivered_to,
        members: Vec::new(),
        forwards: Vec::new(),
        forward_sender: None,
        seen: HashSet::new(),
        chain: Vec::new(),
        self_identity: Identity {
            uid: nix::unistd::geteuid().as_raw(),
            gid: nix::unistd::getegid().as_raw(),
        },
    };
    if s.hopcount_limit > 0 && received > s.hopcount_limit {
        // Postfix's cleanup rejects such mail with CLEANUP_STAT_HOPS: 5.4.0 "too many hops".
        w.member(&job.address, Done::bounce("5.4.0", "too many hops"));
    } else {
        w.local(&job.address, 0, false, false);
    }
    if !w.forwards.is_empty() {
        let mut content = format!("Delivered-To: {}\n", job.address).into_bytes();
        content.extend_from_slice(msg.content);
        let req = ForwardRequest {
            sender: w
                .forward_sender
                .clone()
                .unwrap_or_else(|| msg.sender.to_string()),
            recipients: w.forwards.clone(),
            content,
        };
        let forwards = std::mem::take(&mut w.forwards);
        match forward(req) {
            Ok(id) => {
                for f in forwards {
                    w.member(&f, Done::Sent(format!("forwarded as {id}")));
                }
            }
            Err(e) => {
                for f in forwards {
                    w.member(&f, Done::defer("4.3.0", format!("cannot forward: {e}")));
                }
            }
        }
    }
    let aggregate = if let Some(d) = w
        .members
        .iter()
        .find(|m| m.status == MemberStatus::Deferred)
    {
        Aggregate::Deferred {
            address: d.address.clone(),
            dsn: d.dsn.clone(),
            text: d.text.clone(),
        }
    } else if w.members.iter().any(|m| m.status == MemberStatus::Bounced) {
        Aggregate::Bounced
    } else {
        Aggregate::Done
    };
    Outcome {
        members: w.members,
        aggregate,
    }
}

impl Walk<'_> {
    fn member(&mut self, address: &str, done: Done) {
        let (status, dsn, text) = match done {
            Done::Sent(t) => (MemberStatus::Sent, "2.0.0".to_string(), t),
            Done::Defer { dsn, text } => (MemberStatus::Deferred, dsn, text),
            Done::Bounce { dsn, text } => (MemberStatus::Bounced, dsn, text),
            Done::Data(_) | Done::Missing => (
                MemberStatus::Deferred,
                "4.3.0".to_string(),
                "internal error: unexpected agent reply".to_string(),
            ),
        };
        self.members.push(Member {
            address: address.to_string(),
            status,
            dsn,
            text,
        });
    }

    fn identity_of(&self, pw: &Pw) -> Identity {
        if !self.s.switch_identity {
            return self.self_identity;
        }
        if pw.uid == 0 {
            return self.s.default_privs;
        }
        Identity {
            uid: pw.uid,
            gid: pw.gid,
        }
    }

    /// Identity for commands and files from an alias table owned by (uid, gid).
    fn owner_identity(&self, owner: Option<(u32, u32)>) -> Identity {
        if !self.s.switch_identity {
            return self.self_identity;
        }
        match owner {
            Some((uid, gid)) if uid != 0 => Identity { uid, gid },
            _ => self.s.default_privs,
        }
    }

    fn envelope(&self, addr: &str, delivered_to: bool) -> Envelope {
        Envelope {
            sender: self.msg.sender.to_string(),
            return_path: true,
            original_to: if self.s.enable_original_recipient {
                self.job.orig.clone()
            } else {
                String::new()
            },
            // frozen_delivered_to (Postfix's default): Delivered-To names the recipient as
            // queued, also when an alias or .forward led to this address.
            delivered_to: if !delivered_to {
                String::new()
            } else if self.s.frozen_delivered_to {
                self.job.address.clone()
            } else {
                addr.to_string()
            },
        }
    }

    fn stamp(&self) -> Stamp {
        Stamp {
            queue_id: self.msg.queue_id.to_string(),
            rcpt: self.job.idx,
            arrival_secs: self.msg.arrival_secs,
            check_first: self.job.check_first,
        }
    }

    /// Deliver to a local address: aliases, .forward, mailbox.
    fn local(&mut self, addr: &str, level: u32, skip_alias: bool, mut skip_forward: bool) {
        if level > 20 {
            self.member(addr, Done::bounce("5.4.6", "mail forwarding loop"));
            return;
        }
        let lower = addr.to_ascii_lowercase();
        let looping = self
            .chain
            .iter()
            .find(|(a, _)| *a == lower)
            .map(|(_, src)| *src);
        if !skip_alias && looping == Some(Source::Alias) {
            // a: b, b: a. Postfix gives up on such nesting with this bounce.
            let (local, _) = address::split(addr);
            let lp = address::unquote_local(local).to_lowercase();
            self.member(
                addr,
                Done::bounce("5.4.6", format!("alias database loop for {lp}")),
            );
            return;
        }
        if looping == Some(Source::Forward) {
            // Back at a user whose .forward is being expanded: deliver to the mailbox
            // instead, as Postfix does for a .forward that (through an alias) lists its owner.
            skip_forward = true;
        }
        // `\user`, an address in its own expansion and a return to a .forward being expanded
        // mean the user's mailbox: not a duplicate of the address being expanded.
        let key = if skip_alias || skip_forward {
            format!("self:{lower}")
        } else {
            format!("addr:{lower}")
        };
        if !self.seen.insert(key) && level > 0 {
            return;
        }
        if self.delivered_to.contains(&addr.to_ascii_lowercase()) {
            self.member(
                addr,
                Done::bounce("5.4.6", format!("mail forwarding loop for {addr}")),
            );
            return;
        }
        let (local, _domain) = address::split(addr);
        let lp = address::unquote_local(local).to_lowercase();
        let (user, ext) = split_extension(self.s, &lp);
        let (user, ext) = (user.to_string(), ext.map(str::to_string));

        if !skip_alias {
            if let Some(err) = &self.s.aliases_error {
                self.member(
                    addr,
                    Done::defer("4.3.0", format!("alias database unavailable: {err}")),
                );
                return;
            }
            if let Some(aliases) = self.s.aliases.clone() {
                let mut found = None;
                for key in std::iter::once(lp.clone()).chain(ext.as_ref().map(|_| user.clone())) {
                    match aliases.lookup(&key) {
                        Ok(Some((value, table))) => {
                            found = Some((key, value, table.owner()));
                            break;
                        }
                        Ok(None) => {}
                        Err(e) => {
                            self.member(
                                addr,
                                Done::defer("4.3.0", format!("alias database unavailable: {e}")),
                            );
                            return;
                        }
                    }
                }
                if let Some((name, value, owner)) = found {
                    if level == 0 && self.s.owner_request_special {
                        if let Ok(Some((_, _))) = aliases.lookup(&format!("owner-{name}")) {
                            self.forward_sender = Some(format!("owner-{name}@{}", self.s.myorigin));
                        }
                    }
                    let items = tables::aliases::parse_rhs(&value);
                    let who = self.owner_identity(owner);
                    self.chain.push((lower, Source::Alias));
                    self.expand(
                        addr,
                        &[name.clone(), user.clone()],
                        items,
                        Source::Alias,
                        who,
                        None,
                        level,
                    );
                    self.chain.pop();
                    return;
                }
            }
        }

        let Some(pw) = getpw(&user) else {
            self.member(
                addr,
                Done::bounce("5.1.1", format!("unknown user: \"{lp}\"")),
            );
            return;
        };
        if !skip_forward {
            match self.read_forward(&pw, addr, &lp, ext.as_deref()) {
                Err(done) => {
                    self.member(addr, done);
                    return;
                }
                Ok(Some(items)) if !items.is_empty() => {
                    let who = self.identity_of(&pw);
                    self.chain.push((lower, Source::Forward));
                    self.expand(
                        addr,
                        &[user.clone(), lp.clone()],
                        items,
                        Source::Forward,
                        who,
                        Some(&pw),
                        level,
                    );
                    self.chain.pop();
                    return;
                }
                Ok(_) => {}
            }
        }
        self.mailbox(addr, &pw, &lp, ext.as_deref());
    }

    /// Expansion names for forward_path and command_execution_directory.
    fn local_names(
        &self,
        pw: Option<&Pw>,
        addr: &str,
        lp: &str,
        ext: Option<&str>,
    ) -> Vec<(String, String)> {
        let (_, domain) = address::split(addr);
        let mut v = vec![
            ("recipient".to_string(), addr.to_string()),
            ("local".to_string(), lp.to_string()),
            ("domain".to_string(), domain.unwrap_or("").to_string()),
            ("extension".to_string(), ext.unwrap_or("").to_string()),
            (
                "recipient_delimiter".to_string(),
                self.s.recipient_delimiter.clone(),
            ),
        ];
        if let Some(pw) = pw {
            v.push(("user".into(), pw.name.clone()));
            v.push(("home".into(), pw.home.to_string_lossy().into_owned()));
            v.push(("shell".into(), pw.shell.clone()));
        }
        v
    }

    /// Expand `template`; None when it refers to a name that is empty (Postfix skips such
    /// forward_path elements).
    fn expand_names(
        &self,
        template: &str,
        names: &[(String, String)],
        filter_chars: &str,
    ) -> Option<String> {
        let undefined = std::cell::Cell::new(false);
        let lookup = |n: &str| -> Option<String> {
            match names.iter().find(|(k, _)| k == n) {
                Some((_, v)) if !v.is_empty() => Some(filter(v, filter_chars)),
                _ => {
                    undefined.set(true);
                    None
                }
            }
        };
        let out = config::expand(template, &lookup).ok()?;
        (!undefined.get()).then_some(out)
    }

    fn read_forward(
        &mut self,
        pw: &Pw,
        addr: &str,
        lp: &str,
        ext: Option<&str>,
    ) -> Result<Option<Vec<String>>, Done> {
        let names = self.local_names(Some(pw), addr, lp, ext);
        let paths: Vec<PathBuf> = self
            .s
            .forward_path
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|p| !p.is_empty())
            .filter_map(|p| self.expand_names(p, &names, &self.s.forward_expansion_filter))
            .map(PathBuf::from)
            .collect();
        if paths.is_empty() {
            return Ok(None);
        }
        let who = self.identity_of(pw);
        let read = Action::ReadFile {
            paths,
            limit: self.s.read_limit,
            skip_unreadable: true,
        };
        match self.exec.run(who, &read, &[]) {
            Done::Data(d) => Ok(Some(tables::aliases::parse_include(
                &String::from_utf8_lossy(&d),
            ))),
            Done::Missing => Ok(None),
            other => Err(other),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn expand(
        &mut self,
        addr: &str,
        self_names: &[String],
        items: Vec<String>,
        source: Source,
        who: Identity,
        pw: Option<&Pw>,
        level: u32,
    ) {
        for item in items {
            let item = item.trim().to_string();
            if item.is_empty() {
                continue;
            }
            if !self.seen.insert(format!("item:{addr}:{item}"))
                || self.seen.len() > self.s.duplicate_filter_limit * 4
            {
                continue;
            }
            if let Some(cmd) = item.strip_prefix('|') {
                if !self.s.allow_commands.iter().any(|a| a == source.word()) {
                    self.member(
                        addr,
                        Done::bounce("5.7.1", format!("mail to command is restricted: {cmd}")),
                    );
                    continue;
                }
                let done = self.command(addr, cmd, who, pw, "command");
                self.member(addr, done);
            } else if item.starts_with('/') {
                if !self.s.allow_files.iter().any(|a| a == source.word()) {
                    self.member(
                        addr,
                        Done::bounce("5.7.1", format!("mail to file is restricted: {item}")),
                    );
                    continue;
                }
                let done = self.file(addr, &item, who);
                self.member(addr, done);
            } else if let Some(path) = item.strip_prefix(":include:") {
                let path = path.trim();
                if !path.starts_with('/') {
                    self.member(
                        addr,
                        Done::bounce("5.3.5", format!(":include:{path} is not an absolute path")),
                    );
                    continue;
                }
                let read = Action::ReadFile {
                    paths: vec![PathBuf::from(path)],
                    limit: self.s.read_limit,
                    skip_unreadable: false,
                };
                match self.exec.run(who, &read, &[]) {
                    Done::Data(d) => {
                        let inner = tables::aliases::parse_include(&String::from_utf8_lossy(&d));
                        self.expand(addr, self_names, inner, Source::Include, who, pw, level + 1);
                    }
                    Done::Missing => self.member(
                        addr,
                        Done::defer(
                            "4.3.0",
                            format!("cannot open include file {path}: No such file or directory"),
                        ),
                    ),
                    other => self.member(addr, other),
                }
            } else if let Some(name) = item.strip_prefix('\\') {
                let target = self.s.rewriter.rewrite(name);
                self.local(&target, level + 1, true, true);
            } else {
                let target = self.s.rewriter.rewrite(&item);
                let resolved = self.s.rewriter.resolve(&target);
                let (tl, _) = address::split(&resolved.address);
                let tl = address::unquote_local(tl).to_lowercase();
                let is_self = self_names.contains(&tl);
                // Members of an alias that has an owner- alias are sent on as a new message
                // from owner-name (Postfix's deliver_indirect), so that delivery problems
                // are reported to the owner, not to the original sender.
                let owned = source == Source::Alias && self.forward_sender.is_some() && !is_self;
                if resolved.class != AddressClass::Local || owned {
                    if !self.forwards.contains(&resolved.address) {
                        self.forwards.push(resolved.address);
                    }
                    continue;
                }
                if is_self {
                    // An address in its own expansion: deliver to that user's mailbox.
                    let skip_forward = source == Source::Forward;
                    self.local(&resolved.address, level + 1, true, skip_forward);
                } else {
                    self.local(&resolved.address, level + 1, false, false);
                }
            }
        }
    }

    fn command(
        &mut self,
        addr: &str,
        cmd: &str,
        who: Identity,
        pw: Option<&Pw>,
        _what: &str,
    ) -> Done {
        let (local, domain) = address::split(addr);
        let lp = address::unquote_local(local).to_lowercase();
        let (_, ext) = split_extension(self.s, &lp);
        let f = &self.s.command_expansion_filter;
        let mut env: Vec<(String, String)> = vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("SENDER".into(), filter(self.msg.sender, f)),
            ("RECIPIENT".into(), filter(addr, f)),
            ("LOCAL".into(), filter(&lp, f)),
            ("DOMAIN".into(), filter(domain.unwrap_or(""), f)),
            ("EXTENSION".into(), filter(ext.unwrap_or(""), f)),
            ("ORIGINAL_RECIPIENT".into(), filter(&self.job.orig, f)),
        ];
        if !self.msg.envid.is_empty() {
            env.push(("ENVID".into(), filter(self.msg.envid, f)));
        }
        if let Some(pw) = pw {
            env.push(("HOME".into(), pw.home.to_string_lossy().into_owned()));
            env.push(("USER".into(), pw.name.clone()));
            env.push(("LOGNAME".into(), pw.name.clone()));
            env.push(("SHELL".into(), pw.shell.clone()));
        }
        env.extend(self.s.export_environment.iter().cloned());
        let names = self.local_names(pw, addr, &lp, ext);
        let cwd = if !self.s.command_execution_directory.is_empty() {
            self.expand_names(&self.s.command_execution_directory, &names, f)
                .map(PathBuf::from)
                .unwrap_or_else(|| PathBuf::from("/"))
        } else {
            // The recipient's home, when the command may enter it: default_privs (mail for
            // root), or the one user of an unprivileged daemon, would fail to start there.
            let enter = |home: &Path| {
                if self.s.switch_identity {
                    who.uid == pw.map_or(u32::MAX, |p| p.uid)
                } else {
                    nix::unistd::access(home, nix::unistd::AccessFlags::X_OK).is_ok()
                }
            };
            match pw {
                Some(pw) if pw.home.is_dir() && enter(&pw.home) => pw.home.clone(),
                _ => PathBuf::from("/"),
            }
        };
        let action = Action::Command {
            command: cmd.to_string(),
            shell: self.s.local_command_shell.clone(),
            env,
            cwd,
            timeout: self.s.command_time_limit,
            size_limit: self.s.mailbox_size_limit,
            envelope: self.envelope(
                addr,
                self.s.prepend_delivered.iter().any(|p| p == "command"),
            ),
        };
        self.exec.run(who, &action, self.msg.content)
    }

    fn file(&mut self, addr: &str, path: &str, who: Identity) -> Done {
        let delivered = self.s.prepend_delivered.iter().any(|p| p == "file");
        if path.ends_with('/') {
            let action = Action::Maildir {
                dir: PathBuf::from(path),
                size_limit: self.s.mailbox_size_limit,
                hostname: self.s.myhostname.clone(),
                envelope: self.envelope(addr, delivered),
                stamp: Stamp {
                    check_first: false,
                    ..self.stamp()
                },
            };
            return self.exec.run(who, &action, self.msg.content);
        }
        let action = Action::Mbox {
            path: PathBuf::from(path),
            locking: self.s.locking.clone(),
            size_limit: self.s.mailbox_size_limit,
            require_owner: None,
            envelope: self.envelope(addr, delivered),
            // Files are at-least-once, as in Postfix: no recovery check, no queue ID.
            stamp: Stamp::default(),
        };
        let exec = self.exec;
        let content = self.msg.content;
        match with_mailbox_turn(Path::new(path), || exec.run(who, &action, content)) {
            Done::Sent(_) => Done::Sent(format!("delivered to file: {path}")),
            other => other,
        }
    }

    fn mailbox(&mut self, addr: &str, pw: &Pw, lp: &str, ext: Option<&str>) {
        let who = self.identity_of(pw);
        if !self.s.mailbox_command.is_empty() {
            let cmd = self.s.mailbox_command.clone();
            let done = match self.command(addr, &cmd, who, Some(pw), "mailbox_command") {
                Done::Sent(_) => Done::Sent(format!("delivered to command: {cmd}")),
                other => other,
            };
            self.member(addr, done);
            return;
        }
        let _ = (lp, ext);
        let (path, maildir, who) = if !self.s.home_mailbox.is_empty() {
            let p = pw.home.join(&self.s.home_mailbox);
            (p, self.s.home_mailbox.ends_with('/'), who)
        } else {
            let spool = &self.s.mail_spool_directory;
            let maildir = spool.to_string_lossy().ends_with('/');
            let p = spool.join(&pw.name);
            (p, maildir, self.spool_identity(who, spool))
        };
        let envelope = self.envelope(addr, true);
        let done = if maildir {
            let action = Action::Maildir {
                dir: path,
                size_limit: self.s.mailbox_size_limit,
                hostname: self.s.myhostname.clone(),
                envelope,
                stamp: self.stamp(),
            };
            self.exec.run(who, &action, self.msg.content)
        } else {
            let require_owner =
                (self.s.switch_identity && self.s.strict_mailbox_ownership).then_some(who.uid);
            let action = Action::Mbox {
                path: path.clone(),
                locking: self.s.locking.clone(),
                size_limit: self.s.mailbox_size_limit,
                require_owner,
                envelope,
                stamp: self.stamp(),
            };
            let (exec, content) = (self.exec, self.msg.content);
            with_mailbox_turn(&path, || exec.run(who, &action, content))
        };
        self.member(addr, done);
    }

    /// local(8) DELIVERY RIGHTS for the spool directory: a group-writable (not world-writable)
    /// spool is written with the recipient's uid and the spool's group.
    fn spool_identity(&self, who: Identity, spool: &Path) -> Identity {
        use std::os::unix::fs::MetadataExt;
        if !self.s.switch_identity {
            return who;
        }
        match std::fs::metadata(spool) {
            Ok(m) if m.mode() & 0o002 == 0 && m.mode() & 0o020 != 0 && m.gid() != 0 => Identity {
                uid: who.uid,
                gid: m.gid(),
            },
            _ => who,
        }
    }
}
