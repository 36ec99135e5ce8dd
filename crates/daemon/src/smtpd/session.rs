//! One SMTP session, as Postfix's smtpd(8) conducts it.
//!
//! The session reads command lines from a buffered stream, answers each in Postfix's words,
//! and writes replies in batches: a reply is flushed when no further command is already
//! waiting (PIPELINING). Message content goes through `smtp::data` (DATA) or is counted in
//! exact chunks (BDAT), then to cleanup, and `250 2.0.0 Ok: queued as ID` is sent only after
//! the queue file and its directory entry are durable.
//!
//! Guards, each with Postfix's reply and log line: `smtpd_timeout` on every read,
//! `line_length_limit` on command lines, `smtpd_soft_error_limit`/`smtpd_hard_error_limit`
//! with `smtpd_error_sleep_time`, `smtpd_junk_command_limit`, `smtpd_recipient_limit`,
//! `message_size_limit` (SIZE= and the content), `smtpd_forbid_unauth_pipelining` (commands
//! sent ahead of time where RFC 2920 forbids it), `smtpd_forbid_bare_newline`, and the TLS
//! policy (`smtpd_tls_security_level = encrypt`: nothing but EHLO/HELO, NOOP, RSET, QUIT and
//! STARTTLS before TLS). At STARTTLS everything the client pipelined after the command is
//! thrown away before the handshake (the 2011 injection bug class).
//!
//! A session ends on QUIT, on a fatal reply, on EOF or on an I/O error; nothing half-received
//! reaches the queue. Nothing here panics on input.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use smtp::command::{self, Command, ParseOptions};
use smtp::data::{BareNewline, ChunkCollector, Content, DataReader};
use smtp::reply::Reply;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::policy::{Request, Stage, Verdict};
use super::{Settings, TlsLevel};
use crate::cleanup::{CleanupError, Origin, SmtpOrigin, Submission};
use crate::runtime::Runtime;
use crate::{info, warning};

/// A byte stream a session can run over: TCP, TLS over TCP, stdin/stdout.
pub trait Io: AsyncRead + AsyncWrite + Unpin + Send {}
impl<T: AsyncRead + AsyncWrite + Unpin + Send> Io for T {}

/// The remote client.
#[derive(Clone, Debug)]
pub struct Client {
    pub addr: Option<IpAddr>,
    pub port: u16,
    /// Verified reverse name, or `unknown`.
    pub name: String,
}

impl Client {
    /// Reverse-resolve `addr` (and check that the name resolves back to it), with a short
    /// deadline so a broken resolver cannot stall the session.
    pub async fn lookup(addr: IpAddr, port: u16, enabled: bool) -> Client {
        let name = if enabled {
            let lookup = tokio::task::spawn_blocking(move || reverse_name(addr));
            match tokio::time::timeout(Duration::from_secs(5), lookup).await {
                Ok(Ok(Some(n))) => n,
                _ => "unknown".to_string(),
            }
        } else {
            "unknown".to_string()
        };
        Client {
            addr: Some(addr),
            port,
            name,
        }
    }

    /// `name[addr]` as Postfix logs it.
    pub fn label(&self) -> String {
        match self.addr {
            Some(a) => format!("{}[{}]", self.name, a),
            None => self.name.clone(),
        }
    }
}

fn reverse_name(addr: IpAddr) -> Option<String> {
    let sa: std::net::SocketAddr = (addr, 0).into();
    let (storage, len) = match sa {
        std::net::SocketAddr::V4(v4) => {
            // SAFETY: sockaddr_in is plain data; zeroed is a valid starting value.
            let mut s: libc::sockaddr_in = unsafe { std::mem::zeroed() };
            s.sin_family = libc::AF_INET as libc::sa_family_t;
            s.sin_addr.s_addr = u32::from_ne_bytes(v4.ip().octets());
            // SAFETY: sockaddr_storage is larger than sockaddr_in; both are plain data.
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            // SAFETY: copying the bytes of a sockaddr_in into sockaddr_storage.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    &s as *const _ as *const u8,
                    &mut st as *mut _ as *mut u8,
                    std::mem::size_of::<libc::sockaddr_in>(),
                )
            };
            (st, std::mem::size_of::<libc::sockaddr_in>())
        }
        std::net::SocketAddr::V6(v6) => {
            // SAFETY: sockaddr_in6 is plain data.
            let mut s: libc::sockaddr_in6 = unsafe { std::mem::zeroed() };
            s.sin6_family = libc::AF_INET6 as libc::sa_family_t;
            s.sin6_addr.s6_addr = v6.ip().octets();
            // SAFETY: as above.
            let mut st: libc::sockaddr_storage = unsafe { std::mem::zeroed() };
            // SAFETY: copying the bytes of a sockaddr_in6 into sockaddr_storage.
            unsafe {
                std::ptr::copy_nonoverlapping(
                    &s as *const _ as *const u8,
                    &mut st as *mut _ as *mut u8,
                    std::mem::size_of::<libc::sockaddr_in6>(),
                )
            };
            (st, std::mem::size_of::<libc::sockaddr_in6>())
        }
    };
    let mut host = [0 as libc::c_char; 1025];
    // SAFETY: getnameinfo with a valid sockaddr of the stated length and an output buffer.
    let r = unsafe {
        libc::getnameinfo(
            &storage as *const _ as *const libc::sockaddr,
            len as libc::socklen_t,
            host.as_mut_ptr(),
            host.len() as libc::socklen_t,
            std::ptr::null_mut(),
            0,
            libc::NI_NAMEREQD,
        )
    };
    if r != 0 {
        return None;
    }
    // SAFETY: getnameinfo wrote a NUL-terminated string into `host`.
    let name = unsafe { std::ffi::CStr::from_ptr(host.as_ptr()) }
        .to_string_lossy()
        .into_owned();
    // Forward-confirm, as Postfix does: the name must resolve back to the address.
    let back = std::net::ToSocketAddrs::to_socket_addrs(&(name.as_str(), 0)).ok()?;
    let confirmed = back
        .into_iter()
        .any(|a| super::canonical_ip(a.ip()) == addr);
    confirmed.then_some(name)
}

/// How the session begins.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    Normal,
    /// Over `smtpd_client_connection_count_limit`: say so and close.
    TooManyConnections,
}

/// Where accepted messages go.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Sink {
    /// Through cleanup into incoming/ (the daemon).
    Cleanup,
    /// Into maildrop/, for pickup (`sendmail -bs`, running as the submitting user).
    Maildrop { uid: u32 },
}

/// The commands Postfix counts in its `disconnect from` line, in its order.
const COUNTED: [&str; 14] = [
    "helo", "ehlo", "starttls", "auth", "mail", "rcpt", "data", "bdat", "rset", "noop", "vrfy",
    "etrn", "quit", "unknown",
];

#[derive(Default)]
struct Counters {
    /// name → (ok, total)
    by_name: BTreeMap<usize, (u32, u32)>,
}

impl Counters {
    fn count(&mut self, name: &str, ok: bool) {
        let idx = COUNTED
            .iter()
            .position(|n| *n == name)
            .unwrap_or(COUNTED.len() - 1);
        let e = self.by_name.entry(idx).or_default();
        e.1 += 1;
        if ok {
            e.0 += 1;
        }
    }

    /// `ehlo=1 mail=1 rcpt=0/1 ... commands=4/5`
    fn summary(&self) -> String {
        let fmt = |(ok, total): (u32, u32)| {
            if ok == total {
                format!("{ok}")
            } else {
                format!("{ok}/{total}")
            }
        };
        let mut parts: Vec<String> = self
            .by_name
            .iter()
            .map(|(i, v)| format!("{}={}", COUNTED[*i], fmt(*v)))
            .collect();
        let ok = self.by_name.values().map(|v| v.0).sum();
        let total = self.by_name.values().map(|v| v.1).sum();
        if total == 0 {
            // Postfix says `commands=0/0` for a client that sent nothing.
            parts.push("commands=0/0".to_string());
            return parts.join(" ");
        }
        parts.push(format!("commands={}", fmt((ok, total))));
        parts.join(" ")
    }
}

/// Why a session stops.
#[derive(Debug)]
enum End {
    /// Normal end after QUIT or a fatal reply (already sent).
    Done,
    /// The client went away (`lost connection after CMD`).
    Lost,
    /// A read timed out (`timeout after CMD`).
    Timeout,
}

struct Transaction {
    sender: String,
    params: command::MailParams,
    recipients: Vec<queue::Recipient>,
    /// A DISCARD or HOLD action from the access policy.
    discard: Option<String>,
    hold: Option<String>,
    /// RCPTs refused for `smtpd_recipient_limit` so far.
    overshoot: usize,
}

struct Session {
    io: Option<Box<dyn Io>>,
    rbuf: Vec<u8>,
    rpos: usize,
    out: Vec<u8>,
    s: Arc<Settings>,
    rt: Arc<Runtime>,
    sink: Sink,
    client: Client,
    helo: Option<String>,
    esmtp: bool,
    tls: Option<super::tls::Info>,
    tx: Option<Transaction>,
    counters: Counters,
    errors: u32,
    junk: u32,
    /// `smtpd_error_sleep_time` owed before the next replies go out.
    delay: Duration,
    /// The last command, for `lost connection after X` / `timeout after X`.
    last: String,
    /// bare_newline policy for this client.
    bare_newline: BareNewline,
    /// BDAT chunks received so far in this transaction.
    chunks: Option<ChunkCollector>,
    /// The client restrictions refused this client at connect (`smtpd_delay_reject = no`).
    access_denied: bool,
    /// A BDAT was seen in this transaction: DATA, MAIL and RCPT are refused until RSET.
    bdat_seen: bool,
    /// Size of the BDAT message being queued, for its `Ok: N bytes queued as ID` reply.
    bdat_total: Option<u64>,
}

/// Run a session to its end.
pub async fn serve(
    io: Box<dyn Io>,
    client: Client,
    s: Arc<Settings>,
    rt: Arc<Runtime>,
    start: Start,
    sink: Sink,
) {
    let bare_newline = match client.addr {
        Some(ip) if s.bare_newline_exclusions.iter().any(|n| n.contains(ip)) => BareNewline::Allow,
        _ => s.bare_newline,
    };
    let mut sess = Session {
        io: Some(io),
        rbuf: Vec::with_capacity(4096),
        rpos: 0,
        out: Vec::with_capacity(1024),
        s,
        rt,
        sink,
        client,
        helo: None,
        esmtp: false,
        tls: None,
        tx: None,
        counters: Counters::default(),
        errors: 0,
        junk: 0,
        delay: Duration::ZERO,
        last: "CONNECT".into(),
        bare_newline,
        chunks: None,
        access_denied: false,
        bdat_seen: false,
        bdat_total: None,
    };
    info!("smtpd", "connect from {}", sess.client.label());
    let end = sess.run(start).await;
    match end {
        End::Done => {}
        End::Lost => info!(
            "smtpd",
            "lost connection after {} from {}",
            sess.last,
            sess.client.label()
        ),
        End::Timeout => info!(
            "smtpd",
            "timeout after {} from {}",
            sess.last,
            sess.client.label()
        ),
    }
    info!(
        "smtpd",
        "disconnect from {} {}",
        sess.client.label(),
        sess.counters.summary()
    );
    if let Some(mut io) = sess.io.take() {
        let _ = io.shutdown().await;
    }
}

enum ReadErr {
    Eof,
    Timeout,
    TooLong,
}

impl Session {
    fn reply(&mut self, r: &Reply) {
        // As Postfix's smtpd_chat_reply(): once the client has made `smtpd_soft_error_limit`
        // errors, every reply waits `smtpd_error_sleep_time`.
        if self.errors >= self.s.soft_error_limit {
            self.delay += self.s.error_sleep;
        }
        self.out.extend_from_slice(&r.to_wire(true));
    }

    fn reply_text(&mut self, code: u16, dsn: &str, text: impl Into<String>) {
        let r = Reply::new(code, dsn, text);
        self.reply(&r);
    }

    async fn flush(&mut self) -> bool {
        if self.out.is_empty() {
            return true;
        }
        if !self.delay.is_zero() {
            tokio::time::sleep(std::mem::take(&mut self.delay)).await;
        }
        let Some(io) = self.io.as_mut() else {
            return false;
        };
        let out = std::mem::take(&mut self.out);
        io.write_all(&out).await.is_ok() && io.flush().await.is_ok()
    }

    /// Bytes already received and not yet used.
    fn pending(&self) -> &[u8] {
        &self.rbuf[self.rpos..]
    }

    fn consume(&mut self, n: usize) {
        self.rpos += n;
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        } else if self.rpos > 65536 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
    }

    /// Read more bytes into the buffer (flushing replies first).
    async fn fill(&mut self) -> Result<(), ReadErr> {
        if !self.flush().await {
            return Err(ReadErr::Eof);
        }
        let Some(io) = self.io.as_mut() else {
            return Err(ReadErr::Eof);
        };
        // Read straight into the buffer's spare room (no zeroing, no copy).
        self.rbuf.reserve(16384);
        match tokio::time::timeout(self.s.timeout, io.read_buf(&mut self.rbuf)).await {
            Err(_) => Err(ReadErr::Timeout),
            Ok(Ok(0)) | Ok(Err(_)) => Err(ReadErr::Eof),
            Ok(Ok(_)) => Ok(()),
        }
    }

    /// One command line, without its line end.
    async fn read_line(&mut self) -> Result<Vec<u8>, ReadErr> {
        let limit = self.s.line_length_limit;
        loop {
            if let Some(p) = memchr::memchr(b'\n', self.pending()) {
                let mut line = self.pending()[..p].to_vec();
                self.consume(p + 1);
                if line.last() == Some(&b'\r') {
                    line.pop();
                }
                if line.len() > limit {
                    return Err(ReadErr::TooLong);
                }
                return Ok(line);
            }
            if self.pending().len() > limit {
                // Discard the rest of the overlong line as it arrives.
                loop {
                    let skip = self.pending().len();
                    self.consume(skip);
                    self.fill().await?;
                    if let Some(p) = memchr::memchr(b'\n', self.pending()) {
                        self.consume(p + 1);
                        return Err(ReadErr::TooLong);
                    }
                }
            }
            self.fill().await?;
        }
    }

    /// Count an error reply; at the hard limit hang up (past the soft limit every reply is
    /// slowed down, see [`Session::reply`]).
    async fn error(&mut self) -> bool {
        self.errors += 1;
        if self.errors >= self.s.hard_error_limit {
            let r = Reply::new(
                421,
                "4.7.0",
                format!("{} Error: too many errors", self.s.myhostname),
            );
            self.reply(&r);
            self.flush().await;
            info!(
                "smtpd",
                "too many errors after {} from {}",
                self.last,
                self.client.label()
            );
            return false;
        }
        true
    }

    fn log_reject(&self, what: &str, reply: &Reply, rcpt: Option<&str>) {
        let from = self
            .tx
            .as_ref()
            .map(|t| format!(" from=<{}>", t.sender))
            .unwrap_or_default();
        let to = rcpt.map(|r| format!(" to=<{r}>")).unwrap_or_default();
        let helo = self
            .helo
            .as_ref()
            .map(|h| format!(" helo=<{h}>"))
            .unwrap_or_default();
        info!(
            "smtpd",
            "NOQUEUE: reject: {what} from {}: {reply};{from}{to} proto={}{helo}",
            self.client.label(),
            self.proto()
        );
    }

    /// `NOQUEUE: discard: RCPT from ...: <why>; from=<..> to=<..> proto=.. helo=<..>`
    fn log_action(&self, action: &str, why: &str, rcpt: &str) {
        let from = self.tx.as_ref().map(|t| t.sender.as_str()).unwrap_or("");
        let helo = self
            .helo
            .as_ref()
            .map(|h| format!(" helo=<{h}>"))
            .unwrap_or_default();
        info!(
            "smtpd",
            "NOQUEUE: {action}: RCPT from {}: {why}; from=<{from}> to=<{rcpt}> proto={}{helo}",
            self.client.label(),
            self.proto()
        );
    }

    fn proto(&self) -> &'static str {
        if self.esmtp {
            "ESMTP"
        } else {
            "SMTP"
        }
    }

    /// The protocol word of the Received header (`ESMTPS`, `SMTP`, ...).
    fn received_proto(&self) -> String {
        let mut p = self.proto().to_string();
        if self.tls.is_some() {
            p.push('S');
        }
        p
    }

    async fn run(&mut self, start: Start) -> End {
        if start == Start::TooManyConnections {
            let ip = self.client.addr.map(|a| a.to_string()).unwrap_or_default();
            self.reply_text(
                421,
                "4.7.0",
                format!(
                    "{} Error: too many connections from {ip}",
                    self.s.myhostname
                ),
            );
            self.flush().await;
            warning!(
                "smtpd",
                "Connection concurrency limit exceeded: {} from {} for service {}",
                self.s.connection_count_limit + 1,
                self.client.label(),
                self.s.service
            );
            return End::Done;
        }
        // A client that talks before the greeting breaks RFC 5321's synchronization.
        if self.s.forbid_unauth_pipelining && self.sink == Sink::Cleanup {
            if let Some(io) = self.io.as_mut() {
                let mut probe = [0u8; 1024];
                if let Ok(Ok(n)) =
                    tokio::time::timeout(Duration::from_millis(0), io.read(&mut probe)).await
                {
                    if n > 0 {
                        self.rbuf.extend_from_slice(&probe[..n]);
                    }
                }
            }
        }
        // smtpd_delay_reject = no: the client restrictions decide at connect. A refused client
        // hears why instead of the greeting, then 503 to everything but QUIT (as Postfix).
        if !self.policy_delayed() {
            if let Verdict::Refuse(r) = self.s.policy.check(Stage::Client, &self.request(None)) {
                info!(
                    "smtpd",
                    "NOQUEUE: reject: CONNECT from {}: {r}; proto=SMTP",
                    self.client.label()
                );
                self.reply(&r);
                self.access_denied = true;
            }
        }
        if !self.access_denied {
            let banner = self.s.banner.clone();
            self.reply_text(220, "", banner);
        }
        loop {
            if self.errors >= self.s.hard_error_limit {
                // Junk commands raise the error count without an error reply: Postfix checks
                // the limit before it reads each command.
                let r = Reply::new(
                    421,
                    "4.7.0",
                    format!("{} Error: too many errors", self.s.myhostname),
                );
                self.reply(&r);
                self.flush().await;
                info!(
                    "smtpd",
                    "too many errors after {} from {}",
                    self.last,
                    self.client.label()
                );
                return End::Done;
            }
            let line = match self.read_line().await {
                Ok(l) => l,
                Err(ReadErr::Eof) => return End::Lost,
                Err(ReadErr::Timeout) => {
                    let r = Reply::new(
                        421,
                        "4.4.2",
                        format!("{} Error: timeout exceeded", self.s.myhostname),
                    );
                    self.reply(&r);
                    self.flush().await;
                    return End::Timeout;
                }
                Err(ReadErr::TooLong) => {
                    self.counters.count("unknown", false);
                    self.reply_text(500, "5.5.2", "Error: line too long");
                    if !self.error().await {
                        return End::Done;
                    }
                    continue;
                }
            };
            match self.command(&line).await {
                Ok(true) => {}
                Ok(false) => {
                    self.flush().await;
                    return End::Done;
                }
                Err(end) => return end,
            }
            // Flush when the client is waiting for us.
            if self.pending().is_empty() && !self.flush().await {
                return End::Lost;
            }
        }
    }

    /// Handle one command line. Ok(false): the session is over.
    async fn command(&mut self, line: &[u8]) -> Result<bool, End> {
        let opts = ParseOptions {
            smtputf8: self.s.smtputf8,
            transaction_utf8: self.tx.as_ref().is_some_and(|t| t.params.smtputf8),
            max_line: self.s.line_length_limit,
        };
        let verb = command::verb(line);
        self.last = verb
            .map(|v| v.as_str().to_string())
            .unwrap_or_else(|| "UNKNOWN".into());
        let name = verb
            .map(|v| v.as_str().to_ascii_lowercase())
            .unwrap_or_else(|| "unknown".into());
        if self.access_denied && verb.is_some_and(|v| v != command::Verb::Quit) {
            self.counters.count(&name, false);
            let who = self.client.label();
            self.reply_text(503, "5.7.0", format!("Error: access denied for {who}"));
            return Ok(self.error().await);
        }
        if verb == Some(command::Verb::Vrfy) && self.s.vrfy_disabled {
            // Postfix refuses a disabled VRFY before looking at its argument.
            self.counters.count(&name, false);
            self.reply_text(502, "5.5.1", "VRFY command is disabled");
            return Ok(self.error().await);
        }
        let cmd = match command::parse(line, &opts) {
            Ok(c) => c,
            Err(e) => {
                let r = e.reply();
                self.counters.count(&name, false);
                self.reply(&r);
                if e.closes_session() {
                    return Ok(false);
                }
                return Ok(self.error().await);
            }
        };
        // Commands that must end a pipelined group (RFC 2920 §3.1) must not be followed by
        // more input; without PIPELINING nothing may be sent ahead.
        // (Not for `sendmail -bs`: a local program piping a whole session is trusted.)
        if self.s.forbid_unauth_pipelining
            && self.sink == Sink::Cleanup
            && !self.pending().is_empty()
        {
            let must_wait = matches!(
                cmd,
                Command::Ehlo(_)
                    | Command::Helo(_)
                    | Command::Data
                    | Command::Quit
                    | Command::StartTls
                    | Command::Noop
                    | Command::Vrfy(_)
            ) || !self.esmtp;
            if must_wait {
                info!(
                    "smtpd",
                    "improper command pipelining after {} from {}: {}",
                    self.last,
                    self.client.label(),
                    printable(self.pending())
                );
                self.counters.count(&name, false);
                self.reply_text(554, "5.5.0", "Error: SMTP protocol synchronization");
                return Ok(false);
            }
        }
        if self.s.tls_level == TlsLevel::Encrypt
            && self.tls.is_none()
            && self.s.tls.is_some()
            && matches!(
                cmd,
                Command::Mail { .. }
                    | Command::Rcpt { .. }
                    | Command::Data
                    | Command::Bdat { .. }
                    | Command::Vrfy(_)
                    | Command::Etrn(_)
                    | Command::Auth(_)
            )
        {
            self.counters.count(&name, false);
            self.reply_text(530, "5.7.0", "Must issue a STARTTLS command first");
            return Ok(self.error().await);
        }
        if self.bdat_seen {
            let what = match cmd {
                Command::Data => Some("DATA"),
                Command::Mail { .. } => Some("MAIL"),
                Command::Rcpt { .. } => Some("RCPT"),
                _ => None,
            };
            if let Some(what) = what {
                self.counters.count(&name, false);
                self.reply_text(503, "5.5.1", format!("Error: {what} after BDAT"));
                return Ok(self.error().await);
            }
        }
        if matches!(cmd, Command::Rset | Command::Ehlo(_) | Command::Helo(_)) {
            self.bdat_seen = false;
            self.chunks = None;
        }
        let ok = match cmd {
            Command::Ehlo(h) => self.ehlo(h, true),
            Command::Helo(h) => self.ehlo(h, false),
            Command::Mail { from, params } => self.mail(from, params),
            Command::Rcpt { to, params } => self.rcpt(to, params),
            Command::Data => return self.data(&name).await,
            Command::Bdat { size, last } => return self.bdat(size, last, &name).await,
            Command::Rset => {
                self.tx = None;
                self.reply_text(250, "2.0.0", "Ok");
                true
            }
            Command::Noop => {
                self.reply_text(250, "2.0.0", "Ok");
                true
            }
            Command::Quit => {
                self.counters.count("quit", true);
                self.reply_text(221, "2.0.0", "Bye");
                return Ok(false);
            }
            Command::StartTls => return self.starttls().await,
            Command::Vrfy(addr) => self.vrfy(addr),
            Command::Etrn(d) => {
                let d = d.trim_start_matches(['@', '#']).to_string();
                warning!("smtpd", "reject: ETRN {d}... from {}", self.client.label());
                self.reply_text(459, "", format!("<{d}>: service unavailable"));
                false
            }
            Command::Expn(_) | Command::Help(_) | Command::Auth(_) => {
                self.counters.count("unknown", false);
                self.reply_text(500, "5.5.2", "Error: command not recognized");
                return Ok(self.error().await);
            }
        };
        if matches!(
            verb,
            Some(
                command::Verb::Helo
                    | command::Verb::Ehlo
                    | command::Verb::Noop
                    | command::Verb::Rset
                    | command::Verb::Vrfy
                    | command::Verb::Etrn
            )
        ) {
            self.junk();
        }
        self.counters.count(&name, ok);
        if !ok {
            return Ok(self.error().await);
        }
        Ok(true)
    }

    /// HELO, EHLO, NOOP, RSET, VRFY and ETRN are junk past `smtpd_junk_command_limit`: each
    /// one after that counts as an error (Postfix: `if (junk_cmds++ > limit) error_count++`);
    /// the hard error limit is then enforced before the next command is read.
    fn junk(&mut self) {
        if self.junk > self.s.junk_limit {
            self.errors += 1;
        }
        self.junk += 1;
    }

    fn ehlo(&mut self, name: String, esmtp: bool) -> bool {
        self.tx = None;
        if !self.policy_delayed() {
            // smtpd_delay_reject = no: the HELO restrictions decide now. A refused name is
            // logged, then forgotten; the session stays plain SMTP (as Postfix).
            self.helo = Some(name.clone());
            self.esmtp = false;
            if let Verdict::Refuse(r) = self.s.policy.check(Stage::Helo, &self.request(None)) {
                info!(
                    "smtpd",
                    "NOQUEUE: reject: {} from {}: {r}; proto=SMTP helo=<{name}>",
                    if esmtp { "EHLO" } else { "HELO" },
                    self.client.label()
                );
                self.helo = None;
                self.reply(&r);
                return false;
            }
        }
        self.esmtp = esmtp;
        self.helo = Some(name);
        if !esmtp {
            let h = self.s.myhostname.clone();
            self.reply_text(250, "", h);
            return true;
        }
        let mut lines = vec![self.s.myhostname.clone()];
        let mut ext = vec!["PIPELINING".to_string()];
        if self.s.message_size_limit > 0 {
            ext.push(format!("SIZE {}", self.s.message_size_limit));
        } else {
            ext.push("SIZE".to_string());
        }
        if !self.s.vrfy_disabled {
            ext.push("VRFY".into());
        }
        ext.push("ETRN".into());
        if self.s.tls.is_some() && self.tls.is_none() {
            ext.push("STARTTLS".into());
        }
        ext.extend(["ENHANCEDSTATUSCODES", "8BITMIME", "DSN"].map(String::from));
        if self.s.smtputf8 {
            ext.push("SMTPUTF8".into());
        }
        ext.push("CHUNKING".into());
        ext.retain(|e| {
            let kw = e.split(' ').next().unwrap_or("").to_ascii_lowercase();
            !self.s.discard_ehlo.contains(&kw)
        });
        lines.extend(ext);
        let r = Reply::multiline(250, None, lines);
        self.reply(&r);
        true
    }

    fn request<'a>(&'a self, rcpt: Option<&'a str>) -> Request<'a> {
        Request {
            client_addr: self.client.addr,
            client_name: &self.client.name,
            helo: self.helo.as_deref(),
            sender: self.tx.as_ref().map(|t| t.sender.as_str()),
            recipient: rcpt,
        }
    }

    fn mail(&mut self, from: String, params: command::MailParams) -> bool {
        if self.helo.is_none() && self.s.helo_required {
            self.reply_text(503, "5.5.1", "Error: send HELO/EHLO first");
            return false;
        }
        if self.tx.is_some() {
            self.reply_text(503, "5.5.1", "Error: nested MAIL command");
            return false;
        }
        if let Some(size) = params.size {
            if self.s.message_size_limit > 0 && size > self.s.message_size_limit {
                let r = Reply::new(552, "5.3.4", "Message size exceeds fixed limit");
                let helo = self
                    .helo
                    .as_ref()
                    .map(|h| format!(" helo=<{h}>"))
                    .unwrap_or_default();
                info!(
                    "smtpd",
                    "NOQUEUE: reject: MAIL from {}: {r}; from=<{from}> proto={}{helo}",
                    self.client.label(),
                    self.proto()
                );
                self.reply(&r);
                return false;
            }
        }
        self.tx = Some(Transaction {
            sender: from,
            params,
            recipients: Vec::new(),
            discard: None,
            hold: None,
            overshoot: 0,
        });
        if !self.policy_delayed() {
            if let Verdict::Refuse(r) = self.s.policy.check(Stage::Sender, &self.request(None)) {
                self.log_reject("MAIL", &r, None);
                self.reply(&r);
                self.tx = None;
                return false;
            }
        }
        self.reply_text(250, "2.1.0", "Ok");
        true
    }

    fn policy_delayed(&self) -> bool {
        self.s.policy.delay_reject() || self.sink != Sink::Cleanup
    }

    fn rcpt(&mut self, to: String, params: command::RcptParams) -> bool {
        let Some(tx) = self.tx.as_ref() else {
            self.reply_text(503, "5.5.1", "Error: need MAIL command");
            return false;
        };
        if tx.recipients.len() >= self.s.recipient_limit {
            // Postfix counts this as a success (the client may go on with the recipients it
            // has) until smtpd_recipient_overshoot_limit refusals.
            let overshoot = tx.overshoot;
            if let Some(tx) = self.tx.as_mut() {
                tx.overshoot += 1;
            }
            self.reply_text(452, "4.5.3", "Error: too many recipients");
            return overshoot < self.s.recipient_overshoot_limit;
        }
        // Local submission (sendmail -bs) is trusted, as Postfix's stand-alone mode.
        if self.sink == Sink::Cleanup {
            match self
                .s
                .policy
                .check(Stage::Recipient, &self.request(Some(&to)))
            {
                Verdict::Pass => {}
                Verdict::Refuse(r) => {
                    self.log_reject("RCPT", &r, Some(&to));
                    self.reply(&r);
                    return false;
                }
                Verdict::Discard(why) => {
                    self.log_action("discard", &why, &to);
                    if let Some(tx) = self.tx.as_mut() {
                        tx.discard = Some(why);
                    }
                }
                Verdict::Hold(why) => {
                    self.log_action("hold", &why, &to);
                    if let Some(tx) = self.tx.as_mut() {
                        tx.hold = Some(why);
                    }
                }
            }
        }
        let mut r = queue::Recipient::new(to.as_str());
        r.notify = params.notify.unwrap_or(0);
        r.orcpt = params.orcpt.unwrap_or_default();
        if let Some(tx) = self.tx.as_mut() {
            tx.recipients.push(r);
        }
        self.reply_text(250, "2.1.5", "Ok");
        true
    }

    fn vrfy(&mut self, addr: String) -> bool {
        if self.s.vrfy_disabled {
            self.reply_text(502, "5.5.1", "VRFY command is disabled");
            return false;
        }
        let bare = addr
            .trim_start_matches('<')
            .trim_end_matches('>')
            .to_string();
        let req = Request {
            client_addr: self.client.addr,
            client_name: &self.client.name,
            helo: self.helo.as_deref(),
            sender: None,
            recipient: Some(&bare),
        };
        if let Verdict::Refuse(r) = self.s.policy.check(Stage::Recipient, &req) {
            let r = if r.code == 554
                && r.lines
                    .first()
                    .is_some_and(|l| l.ends_with("Relay access denied"))
            {
                // VRFY of a remote address is not a relay attempt: Postfix answers 252.
                Reply::new(252, "2.0.0", addr.clone())
            } else {
                // The reply already names the address in brackets, as Postfix does
                // (`<nosuch@example>` whether or not the client sent the brackets).
                let shown = r;
                info!(
                    "smtpd",
                    "NOQUEUE: reject: VRFY from {}: {shown}; to=<{bare}> proto={}{}",
                    self.client.label(),
                    self.proto(),
                    self.helo
                        .as_ref()
                        .map(|h| format!(" helo=<{h}>"))
                        .unwrap_or_default()
                );
                self.reply(&shown);
                return false;
            };
            self.reply(&r);
            return true;
        }
        self.reply_text(252, "2.0.0", addr);
        true
    }

    async fn starttls(&mut self) -> Result<bool, End> {
        let Some(config) = self.s.tls.clone() else {
            self.counters.count("starttls", false);
            self.reply_text(502, "5.5.1", "Error: command not implemented");
            return Ok(self.error().await);
        };
        if self.tls.is_some() {
            self.counters.count("starttls", false);
            self.reply_text(554, "5.5.1", "Error: TLS already active");
            return Ok(self.error().await);
        }
        self.reply_text(220, "2.0.0", "Ready to start TLS");
        if !self.flush().await {
            self.counters.count("starttls", false);
            return Err(End::Lost);
        }
        // Whatever the client pipelined after STARTTLS was sent in the clear: drop it.
        let stale = self.pending().len();
        self.consume(stale);
        self.rbuf.clear();
        self.rpos = 0;
        let Some(io) = self.io.take() else {
            return Err(End::Lost);
        };
        let acceptor = tokio_rustls::TlsAcceptor::from(config);
        let handshake = tokio::time::timeout(self.s.timeout, acceptor.accept(io)).await;
        match handshake {
            Ok(Ok(stream)) => {
                let info = super::tls::Info::from_connection(stream.get_ref().1);
                if self.s.tls_loglevel >= 1 {
                    info!(
                        "smtpd",
                        "Anonymous TLS connection established from {}: {}",
                        self.client.label(),
                        info.summary()
                    );
                }
                self.tls = Some(info);
                self.io = Some(Box::new(stream));
                // RFC 3207 §4.2: forget what the client said before TLS.
                self.helo = None;
                self.esmtp = false;
                self.tx = None;
                self.counters.count("starttls", true);
                Ok(true)
            }
            Ok(Err(e)) => {
                info!(
                    "smtpd",
                    "SSL_accept error from {}: {e}",
                    self.client.label()
                );
                self.counters.count("starttls", false);
                Err(End::Lost)
            }
            Err(_) => {
                self.counters.count("starttls", false);
                Err(End::Timeout)
            }
        }
    }

    /// Checks before DATA or BDAT; the reply when the transaction cannot take content.
    fn content_allowed(&mut self, bdat: bool) -> Option<Reply> {
        let Some(tx) = self.tx.as_ref() else {
            return Some(Reply::new(503, "5.5.1", "Error: need RCPT command"));
        };
        if tx.recipients.is_empty() {
            return Some(Reply::new(554, "5.5.1", "Error: no valid recipients"));
        }
        if !bdat && self.sink == Sink::Cleanup {
            if let Verdict::Refuse(r) = self.s.policy.check(Stage::Data, &self.request(None)) {
                self.log_reject("DATA", &r, None);
                return Some(r);
            }
        }
        None
    }

    async fn data(&mut self, name: &str) -> Result<bool, End> {
        if let Some(r) = self.content_allowed(false) {
            self.counters.count(name, false);
            self.reply(&r);
            return Ok(self.error().await);
        }
        self.reply_text(354, "", "End data with <CR><LF>.<CR><LF>");
        let mut reader = DataReader::new(self.bare_newline, self.s.message_size_limit);
        let mut received = 0usize;
        loop {
            let used = reader.feed(self.pending());
            self.consume(used);
            received += used;
            if reader.is_done() {
                self.last = "END-OF-MESSAGE".into();
                break;
            }
            // `timeout after DATA (28 bytes)`, `lost connection after DATA (0 bytes)`
            self.last = format!("{} ({received} bytes)", name.to_ascii_uppercase());
            match self.fill().await {
                Ok(()) => {}
                Err(ReadErr::Timeout) => {
                    let r = Reply::new(
                        421,
                        "4.4.2",
                        format!("{} Error: timeout exceeded", self.s.myhostname),
                    );
                    self.reply(&r);
                    self.flush().await;
                    self.counters.count(name, false);
                    self.tx = None;
                    return Err(End::Timeout);
                }
                Err(_) => {
                    self.counters.count(name, false);
                    self.tx = None;
                    return Err(End::Lost);
                }
            }
        }
        let content = reader.finish();
        let ok = self.finish_message(content).await;
        self.counters.count(name, ok);
        if !ok {
            return Ok(self.error().await);
        }
        Ok(true)
    }

    async fn bdat(&mut self, size: u64, last: bool, name: &str) -> Result<bool, End> {
        if size == 0 && !last {
            self.counters.count(name, false);
            self.reply_text(551, "5.7.1", "Null BDAT request");
            return Ok(self.error().await);
        }
        self.bdat_seen = true;
        // The chunk must be read whatever happens, to stay in step with the client.
        let refuse =
            if self.tx.as_ref().is_some_and(|t| t.recipients.is_empty()) || self.tx.is_none() {
                self.content_allowed(true)
            } else {
                None
            };
        let mut collector = self.take_chunks();
        let mut left = size;
        while left > 0 {
            if self.pending().is_empty() {
                match self.fill().await {
                    Ok(()) => {}
                    Err(ReadErr::Timeout) => {
                        let r = Reply::new(
                            421,
                            "4.4.2",
                            format!("{} Error: timeout exceeded", self.s.myhostname),
                        );
                        self.reply(&r);
                        self.flush().await;
                        self.counters.count(name, false);
                        return Err(End::Timeout);
                    }
                    Err(_) => {
                        self.counters.count(name, false);
                        return Err(End::Lost);
                    }
                }
            }
            let take = (self.pending().len() as u64).min(left) as usize;
            if refuse.is_none() {
                let bytes = self.pending()[..take].to_vec();
                collector.add(&bytes);
            }
            self.consume(take);
            left -= take as u64;
        }
        if let Some(r) = refuse {
            self.counters.count(name, false);
            self.reply(&r);
            self.chunks = None;
            return Ok(self.error().await);
        }
        if collector.too_big() {
            // The transaction is over; further chunks and DATA are refused until RSET.
            self.counters.count(name, false);
            self.tx = None;
            self.reply_text(552, "5.3.4", "Chunk exceeds message size limit");
            return Ok(self.error().await);
        }
        if !last {
            let total = collector.size();
            self.chunks = Some(collector);
            self.counters.count(name, true);
            self.reply_text(250, "2.0.0", format!("Ok: {total} bytes"));
            return Ok(true);
        }
        self.bdat_seen = false;
        self.bdat_total = Some(collector.size());
        let content = collector.finish();
        let ok = self.finish_message(content).await;
        self.bdat_total = None;
        self.counters.count(name, ok);
        if !ok {
            return Ok(self.error().await);
        }
        Ok(true)
    }

    fn take_chunks(&mut self) -> ChunkCollector {
        self.chunks
            .take()
            .unwrap_or_else(|| ChunkCollector::new(self.s.message_size_limit))
    }

    /// End of content: check, queue, answer. Returns whether the message was accepted.
    async fn finish_message(&mut self, content: Content) -> bool {
        let Some(tx) = self.tx.take() else {
            self.reply_text(503, "5.5.1", "Error: need RCPT command");
            return false;
        };
        if content.too_big {
            self.reply_text(552, "5.3.4", "Error: message file too big");
            return false;
        }
        if content.bare_lf && self.bare_newline == BareNewline::Reject {
            let code = self.s.bare_newline_reject_code;
            let dsn = if code / 100 == 4 { "4.5.2" } else { "5.5.2" };
            let r = Reply::new(
                code,
                dsn,
                format!("{} Error: bare <LF> received", self.s.myhostname),
            );
            // Postfix: `reject: END-OF-MESSAGE from C: bare <LF> received; from=<S> to=<R>
            // proto=ESMTP helo=<H>` (without the reply code; R is the last recipient).
            let to = tx
                .recipients
                .last()
                .map(|r| r.address.clone())
                .unwrap_or_default();
            let helo = self
                .helo
                .as_ref()
                .map(|h| format!(" helo=<{h}>"))
                .unwrap_or_default();
            info!(
                "smtpd",
                "NOQUEUE: reject: END-OF-MESSAGE from {}: bare <LF> received; from=<{}> to=<{to}> proto={}{helo}",
                self.client.label(),
                tx.sender,
                self.proto()
            );
            self.reply(&r);
            return false;
        }
        if self.sink == Sink::Cleanup {
            self.tx = Some(tx);
            let verdict = self.s.policy.check(Stage::EndOfData, &self.request(None));
            let Some(tx) = self.tx.take() else {
                return false;
            };
            if let Verdict::Refuse(r) = verdict {
                self.log_reject("END-OF-MESSAGE", &r, None);
                self.reply(&r);
                return false;
            }
            return self.queue(tx, content).await;
        }
        self.queue(tx, content).await
    }

    async fn queue(&mut self, tx: Transaction, content: Content) -> bool {
        let mut attrs = vec![("rewrite_context".to_string(), "remote".to_string())];
        if let Some(r) = tx.params.ret {
            attrs.push(("dsn_ret".into(), r.as_str().into()));
        }
        if let Some(e) = &tx.params.envid {
            attrs.push(("dsn_envid".into(), e.clone()));
        }
        if let Some(b) = tx.params.body {
            attrs.push(("body_type".into(), b.as_str().into()));
        }
        if tx.params.smtputf8 {
            attrs.push(("smtputf8".into(), "yes".into()));
        }
        let origin = SmtpOrigin {
            client_name: self.client.name.clone(),
            client_addr: self.client.addr.map(|a| a.to_string()).unwrap_or_default(),
            helo: self.helo.clone(),
            protocol: self.received_proto(),
            tls: if self.s.tls_received_header {
                self.tls.as_ref().map(|t| t.summary())
            } else {
                None
            },
            rewrite_headers: self
                .client
                .addr
                .is_none_or(|ip| self.s.rewrites_headers_for(ip)),
            hold: tx.hold.is_some(),
        };
        if tx.discard.is_some() {
            // Accepted and thrown away, as the access policy said (logged at RCPT). The
            // client sees an ordinary queue ID, as with Postfix.
            let now = SystemTime::now();
            let salt = now
                .duration_since(SystemTime::UNIX_EPOCH)
                .map(|d| u64::from(d.subsec_nanos()))
                .unwrap_or(0);
            let id = queue::id::make(now, u64::from(std::process::id()) << 20 ^ salt);
            info!("smtpd", "{id}: client={}", self.client.label());
            self.reply_text(250, "2.0.0", format!("Ok: queued as {id}"));
            return true;
        }
        match self.sink {
            Sink::Cleanup => {
                let sub = Submission {
                    id: None,
                    arrival: SystemTime::now(),
                    sender: tx.sender.clone(),
                    full_name: None,
                    recipients: tx.recipients.clone(),
                    attrs,
                    content: content.bytes,
                    origin: Origin::Smtp(origin),
                    extract_recipients: false,
                };
                let rt = self.rt.clone();
                let client = self.client.label();
                let result = tokio::task::spawn_blocking(move || {
                    let s = rt.settings();
                    s.cleanup.submit(sub)
                })
                .await;
                match result {
                    Ok(Ok(done)) => {
                        info!("smtpd", "{}: client={client}", done.id);
                        if tx.hold.is_none() {
                            self.rt.incoming(&done.id);
                        }
                        self.errors = 0;
                        let text = match self.bdat_total {
                            Some(n) => format!("Ok: {n} bytes queued as {}", done.id),
                            None => format!("Ok: queued as {}", done.id),
                        };
                        self.reply_text(250, "2.0.0", text);
                        true
                    }
                    Ok(Err(CleanupError::TooBig)) => {
                        self.reply_text(552, "5.3.4", "Error: message file too big");
                        false
                    }
                    Ok(Err(e)) => {
                        warning!("smtpd", "queue file write error from {client}: {e}");
                        self.reply_text(451, "4.3.0", "Error: queue file write error");
                        false
                    }
                    Err(_) => {
                        self.reply_text(451, "4.3.0", "Error: queue file write error");
                        false
                    }
                }
            }
            Sink::Maildrop { uid } => {
                match crate::smtpd::session::maildrop(&self.rt, &tx, attrs, &content.bytes, uid) {
                    Ok(id) => {
                        self.reply_text(250, "2.0.0", format!("Ok: queued as {id}"));
                        true
                    }
                    Err(e) => {
                        warning!("smtpd", "queue file write error: {e}");
                        self.reply_text(451, "4.3.0", "Error: queue file write error");
                        false
                    }
                }
            }
        }
    }
}

/// `sendmail -bs`: write the message into maildrop/ as sendmail does.
fn maildrop(
    rt: &Runtime,
    tx: &Transaction,
    attrs: Vec<(String, String)>,
    content: &[u8],
    _uid: u32,
) -> std::io::Result<String> {
    let env = queue::Envelope {
        arrival: SystemTime::now(),
        sender: tx.sender.clone(),
        full_name: None,
        attrs,
        recipients: tx.recipients.clone(),
    };
    let dir = rt.queue.dir(queue::QueueName::Maildrop);
    let mut f = queue::NewQueueFile::create(&dir, 0o640)?;
    f.write_all(&queue::record::encode(&env, content))?;
    let id = f.id().to_string();
    f.commit(&queue::DirSync::new(&dir))?;
    crate::master::trigger(&rt.queue, "pickup", b"W");
    Ok(id)
}

fn printable(b: &[u8]) -> String {
    let s: String = String::from_utf8_lossy(&b[..b.len().min(100)])
        .chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect();
    s.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::Counters;

    #[test]
    fn disconnect_summary_like_postfix() {
        let mut c = Counters::default();
        for (n, ok) in [
            ("ehlo", true),
            ("mail", true),
            ("rcpt", false),
            ("rcpt", true),
            ("data", true),
            ("quit", true),
        ] {
            c.count(n, ok);
        }
        assert_eq!(
            c.summary(),
            "ehlo=1 mail=1 rcpt=1/2 data=1 quit=1 commands=5/6"
        );
    }
}
