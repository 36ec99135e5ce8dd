//! Postfix-format logging.
//!
//! Every line looks like Postfix's: `Nov 25 16:08:21 host postfix/qmgr[1234]: 3Pt2mN2VXxznjll:
//! removed`, with the program name taken from `syslog_name` so that existing log parsers keep
//! working. Lines go to `maillog_file` when it is set (and allowed by `maillog_file_prefixes`),
//! else to stderr when running in the foreground, else to syslog through `/dev/log` (falling
//! back to stderr when there is no syslog socket).
//!
//! Each recipient outcome is a [`DeliveryEvent`]; its `Display` is Postfix's delivery line
//! (`src/global/log_adhoc.c` format) and it is the one thing tests observe.
//!
//! Logging never fails the caller: a write error is reported once on stderr and dropped.

use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock, RwLock};
use std::time::Duration;

#[derive(Debug)]
enum Sink {
    File(Mutex<File>),
    Stderr,
    Syslog(UnixDatagram),
    Null,
}

#[derive(Debug)]
struct Logger {
    sink: Sink,
    syslog_name: String,
    hostname: String,
    facility: u8,
}

static LOGGER: OnceLock<RwLock<Option<Logger>>> = OnceLock::new();

fn slot() -> &'static RwLock<Option<Logger>> {
    LOGGER.get_or_init(|| RwLock::new(None))
}

/// Where log lines should go.
#[derive(Clone, Debug)]
pub enum Target {
    File(PathBuf),
    Stderr,
    Syslog,
}

/// Install (or replace, on reload) the process-wide logger.
pub fn init(
    target: Target,
    syslog_name: &str,
    hostname: &str,
    facility: &str,
) -> std::io::Result<()> {
    let sink = match target {
        Target::File(path) => Sink::File(Mutex::new(open_log(&path)?)),
        Target::Stderr => Sink::Stderr,
        Target::Syslog => match UnixDatagram::unbound().and_then(|s| {
            s.connect("/dev/log")?;
            Ok(s)
        }) {
            Ok(s) => Sink::Syslog(s),
            // No syslog daemon: lines are dropped, as Postfix's would be.
            Err(_) => Sink::Null,
        },
    };
    let logger = Logger {
        sink,
        syslog_name: syslog_name.to_string(),
        hostname: hostname.split('.').next().unwrap_or(hostname).to_string(),
        facility: facility_code(facility),
    };
    *slot().write().unwrap_or_else(|e| e.into_inner()) = Some(logger);
    Ok(())
}

fn open_log(path: &Path) -> std::io::Result<File> {
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent)?;
    }
    OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)
        .map_err(|e| std::io::Error::new(e.kind(), format!("open {}: {e}", path.display())))
}

fn facility_code(name: &str) -> u8 {
    match name {
        "kern" => 0,
        "user" => 1,
        "daemon" => 3,
        "auth" => 4,
        "local0" => 16,
        "local1" => 17,
        "local2" => 18,
        "local3" => 19,
        "local4" => 20,
        "local5" => 21,
        "local6" => 22,
        "local7" => 23,
        _ => 2, // mail
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Level {
    Info,
    Warning,
    Error,
    Fatal,
}

impl Level {
    fn prefix(self) -> &'static str {
        match self {
            Level::Info => "",
            Level::Warning => "warning: ",
            Level::Error => "error: ",
            Level::Fatal => "fatal: ",
        }
    }
    fn severity(self) -> u8 {
        match self {
            Level::Info => 6,
            Level::Warning => 4,
            Level::Error => 3,
            Level::Fatal => 2,
        }
    }
}

/// Has [`init`] been called in this process?
pub fn is_initialized() -> bool {
    slot().read().map(|g| g.is_some()).unwrap_or(false)
}

/// Log one line for `service` (`qmgr`, `local`, `pickup`, ...).
pub fn log(service: &str, level: Level, text: &str) {
    let text = &queue::clean_error_text(text);
    let guard = slot().read().unwrap_or_else(|e| e.into_inner());
    let pid = std::process::id();
    let Some(logger) = guard.as_ref() else {
        let _ = writeln!(
            std::io::stderr(),
            "postfix/{service}[{pid}]: {}{text}",
            level.prefix()
        );
        return;
    };
    let tag = format!(
        "{}/{service}[{pid}]: {}{text}",
        logger.syslog_name,
        level.prefix()
    );
    let stamp = timestamp();
    match &logger.sink {
        Sink::File(f) => {
            let line = format!("{stamp} {} {tag}\n", logger.hostname);
            let mut f = f.lock().unwrap_or_else(|e| e.into_inner());
            let _ = f.write_all(line.as_bytes());
        }
        Sink::Stderr => {
            let _ = writeln!(std::io::stderr(), "{stamp} {} {tag}", logger.hostname);
        }
        Sink::Syslog(sock) => {
            let pri = u32::from(logger.facility) * 8 + u32::from(level.severity());
            let _ = sock.send(format!("<{pri}>{stamp} {tag}").as_bytes());
        }
        Sink::Null => {}
    }
}

fn timestamp() -> String {
    let now = jiff::ZonedDateTime::now();
    now.strftime("%b %e %H:%M:%S").to_string()
}

/// `info!("qmgr", "{id}: removed")`
#[macro_export]
macro_rules! info {
    ($svc:expr, $($arg:tt)*) => { $crate::log::log($svc, $crate::log::Level::Info, &format!($($arg)*)) };
}
#[macro_export]
macro_rules! warning {
    ($svc:expr, $($arg:tt)*) => { $crate::log::log($svc, $crate::log::Level::Warning, &format!($($arg)*)) };
}
#[macro_export]
macro_rules! error {
    ($svc:expr, $($arg:tt)*) => { $crate::log::log($svc, $crate::log::Level::Error, &format!($($arg)*)) };
}

/// The status word of a delivery line.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DeliveryStatus {
    Sent,
    Deferred,
    Bounced,
    Expired,
}

impl DeliveryStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryStatus::Sent => "sent",
            DeliveryStatus::Deferred => "deferred",
            DeliveryStatus::Bounced => "bounced",
            DeliveryStatus::Expired => "expired",
        }
    }
}

/// One recipient outcome: Postfix's `to=<...>, relay=..., delay=..., delays=..., dsn=...,
/// status=... (text)` line.
#[derive(Clone, Debug)]
pub struct DeliveryEvent {
    pub queue_id: String,
    pub recipient: String,
    /// Logged as `orig_to=` only when it differs from `recipient`.
    pub orig_recipient: String,
    pub relay: String,
    pub conn_use: u32,
    pub delay: Duration,
    /// a: before the active queue, b: in the active queue, c: connection setup, d: transmission.
    pub delays: [Duration; 4],
    pub dsn: String,
    pub status: DeliveryStatus,
    pub text: String,
}

/// Postfix's delay formatting (`delay_logging_resolution_limit = 2`): whole seconds from 10 s
/// up, one decimal from 1 s, two decimals below, trailing zeros dropped, `0` when tiny.
pub fn format_delay(d: Duration) -> String {
    let ms = d.as_millis();
    let text = if ms >= 10_000 {
        format!("{}", d.as_secs())
    } else if ms >= 1000 {
        format!("{}.{}", ms / 1000, (ms % 1000) / 100)
    } else {
        format!("0.{:02}", ms / 10)
    };
    if text.contains('.') {
        let t = text.trim_end_matches('0').trim_end_matches('.');
        if t.is_empty() {
            "0".to_string()
        } else {
            t.to_string()
        }
    } else {
        text
    }
}

impl fmt::Display for DeliveryEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: to=<{}>", self.queue_id, self.recipient)?;
        if !self.orig_recipient.is_empty() && self.orig_recipient != self.recipient {
            write!(f, ", orig_to=<{}>", self.orig_recipient)?;
        }
        write!(f, ", relay={}", self.relay)?;
        if self.conn_use > 1 {
            write!(f, ", conn_use={}", self.conn_use)?;
        }
        write!(
            f,
            ", delay={}, delays={}/{}/{}/{}, dsn={}, status={} ({})",
            format_delay(self.delay),
            format_delay(self.delays[0]),
            format_delay(self.delays[1]),
            format_delay(self.delays[2]),
            format_delay(self.delays[3]),
            self.dsn,
            self.status.as_str(),
            self.text
        )
    }
}

/// Log a delivery event under the agent's service name (`local`, `smtp`, `error`, ...).
pub fn delivery(service: &str, event: &DeliveryEvent) {
    log(service, Level::Info, &event.to_string());
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_are_formatted_like_postfix() {
        for (secs, want) in [
            (0.0, "0"),
            (0.004, "0"),
            (0.05, "0.05"),
            (0.1, "0.1"),
            (0.2901, "0.29"),
            (1.0, "1"),
            (1.44, "1.4"),
            (9.99, "9.9"),
            (11.7, "11"),
            (350.2, "350"),
        ] {
            assert_eq!(format_delay(Duration::from_secs_f64(secs)), want, "{secs}");
        }
    }

    #[test]
    fn delivery_line_matches_postfix_layout() {
        let e = DeliveryEvent {
            queue_id: "4Kc0Lw3Bxzz1hGm".into(),
            recipient: "bob@example.com".into(),
            orig_recipient: "team@example.com".into(),
            relay: "local".into(),
            conn_use: 1,
            delay: Duration::from_millis(50),
            delays: [
                Duration::from_millis(20),
                Duration::from_millis(20),
                Duration::ZERO,
                Duration::from_millis(10),
            ],
            dsn: "2.0.0".into(),
            status: DeliveryStatus::Sent,
            text: "delivered to mailbox".into(),
        };
        assert_eq!(
            e.to_string(),
            "4Kc0Lw3Bxzz1hGm: to=<bob@example.com>, orig_to=<team@example.com>, relay=local, \
             delay=0.05, delays=0.02/0.02/0/0.01, dsn=2.0.0, status=sent (delivered to mailbox)"
        );
    }
}
