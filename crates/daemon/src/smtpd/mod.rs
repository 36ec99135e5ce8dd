//! smtpd: the SMTP server.
//!
//! [`bind`] opens the `inet` smtpd services of `master.cf` on the addresses of
//! `inet_interfaces` (or the service's own address), before privileges are dropped. Without a
//! master.cf there is no listener, only local submission. [`run`] accepts connections on them and runs one [`session`] per client, within
//! the service's process limit (the `maxproc` column, else `default_process_limit`) and
//! `smtpd_client_connection_count_limit` per client address. Each service's settings are
//! main.cf plus its `-o name=value` overrides; they are rebuilt on `postfix reload` (new
//! certificates included) and each session keeps the snapshot it started with.

pub mod policy;
pub mod session;
pub mod tls;

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use config::master_cf::{self, Service, ServiceKind};
use config::MainCf;
use smtp::data::BareNewline;
use tokio_util::sync::CancellationToken;

use self::policy::{Cidr, Policy};
use crate::runtime::Runtime;
use crate::warning;

/// `smtpd_tls_security_level`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TlsLevel {
    None,
    May,
    Encrypt,
}

/// One smtpd service's settings: main.cf with the service's overrides applied.
#[derive(Debug)]
pub struct Settings {
    pub service: String,
    pub myhostname: String,
    pub banner: String,
    pub message_size_limit: u64,
    pub recipient_limit: usize,
    pub recipient_overshoot_limit: usize,
    pub line_length_limit: usize,
    pub timeout: Duration,
    pub soft_error_limit: u32,
    pub hard_error_limit: u32,
    pub error_sleep: Duration,
    pub junk_limit: u32,
    pub connection_count_limit: u32,
    pub connection_limit_exceptions: Vec<Cidr>,
    pub helo_required: bool,
    pub vrfy_disabled: bool,
    pub smtputf8: bool,
    pub discard_ehlo: Vec<String>,
    pub bare_newline: BareNewline,
    pub bare_newline_exclusions: Vec<Cidr>,
    pub bare_newline_reject_code: u16,
    pub forbid_unauth_pipelining: bool,
    pub tls: Option<Arc<rustls::ServerConfig>>,
    pub tls_level: TlsLevel,
    pub tls_received_header: bool,
    pub tls_loglevel: i64,
    pub peername_lookup: bool,
    pub policy: Policy,
    pub header_rewrite_clients: Vec<String>,
    pub process_limit: usize,
}

fn cidrs(cfg: &MainCf, name: &str) -> Vec<Cidr> {
    let mut v = Vec::new();
    for item in cfg.list(name) {
        if let Some(c) = Cidr::parse(&item) {
            v.push(c);
        }
    }
    v
}

impl Settings {
    pub fn new(
        cfg: &MainCf,
        service: &str,
        maxproc: Option<u32>,
        files: &HashMap<std::path::PathBuf, Vec<u8>>,
    ) -> Settings {
        let tls_level = match cfg.str("smtpd_tls_security_level").as_str() {
            "may" => TlsLevel::May,
            "encrypt" => TlsLevel::Encrypt,
            _ => TlsLevel::None,
        };
        let tls = if tls_level == TlsLevel::None {
            None
        } else {
            match tls::load(
                &cfg.path("smtpd_tls_cert_file"),
                &cfg.path("smtpd_tls_key_file"),
                files,
            ) {
                Ok(c) => Some(c),
                Err(e) => {
                    warning!("smtpd", "{e}; TLS is not available for service {service}");
                    None
                }
            }
        };
        let bare_newline = match cfg.str("smtpd_forbid_bare_newline").as_str() {
            "reject" => BareNewline::Reject,
            "no" => BareNewline::Allow,
            _ => BareNewline::Normalize,
        };
        let count = |n: &str| u32::try_from(cfg.int(n).max(0)).unwrap_or(u32::MAX);
        Settings {
            service: service.to_string(),
            myhostname: cfg.str("myhostname"),
            banner: cfg.str("smtpd_banner"),
            message_size_limit: cfg.size("message_size_limit"),
            recipient_limit: cfg.int("smtpd_recipient_limit").max(1) as usize,
            recipient_overshoot_limit: cfg.int("smtpd_recipient_overshoot_limit").max(0) as usize,
            line_length_limit: cfg.size("line_length_limit").max(512) as usize,
            timeout: cfg.time("smtpd_timeout"),
            soft_error_limit: count("smtpd_soft_error_limit"),
            hard_error_limit: count("smtpd_hard_error_limit").max(1),
            error_sleep: cfg.time("smtpd_error_sleep_time"),
            junk_limit: count("smtpd_junk_command_limit").max(1),
            connection_count_limit: count("smtpd_client_connection_count_limit"),
            connection_limit_exceptions: cidrs(cfg, "smtpd_client_event_limit_exceptions"),
            helo_required: cfg.bool("smtpd_helo_required"),
            vrfy_disabled: cfg.bool("disable_vrfy_command"),
            smtputf8: cfg.bool("smtputf8_enable"),
            discard_ehlo: cfg
                .list("smtpd_discard_ehlo_keywords")
                .into_iter()
                .map(|k| k.to_ascii_lowercase())
                .collect(),
            bare_newline,
            bare_newline_exclusions: cidrs(cfg, "smtpd_forbid_bare_newline_exclusions"),
            bare_newline_reject_code: u16::try_from(
                cfg.int("smtpd_forbid_bare_newline_reject_code"),
            )
            .unwrap_or(550),
            forbid_unauth_pipelining: cfg.bool("smtpd_forbid_unauth_pipelining"),
            tls,
            tls_level,
            tls_received_header: cfg.bool("smtpd_tls_received_header"),
            tls_loglevel: cfg.int("smtpd_tls_loglevel"),
            peername_lookup: cfg.bool("smtpd_peername_lookup"),
            policy: Policy::new(cfg),
            header_rewrite_clients: cfg.list("local_header_rewrite_clients"),
            process_limit: maxproc
                .map(|m| m as usize)
                .unwrap_or_else(|| cfg.int("default_process_limit").max(1) as usize),
        }
    }

    /// Does `local_header_rewrite_clients` cover this client (so its headers are rewritten
    /// and missing ones added, as for local submissions)?
    pub fn rewrites_headers_for(&self, ip: IpAddr) -> bool {
        self.header_rewrite_clients
            .iter()
            .any(|r| match r.as_str() {
                "permit_inet_interfaces" => self.policy.is_inet_interface(ip),
                "permit_mynetworks" => self.policy.in_mynetworks(ip),
                "static:all" => true,
                _ => false,
            })
    }
}

/// A listening socket of one smtpd service.
#[derive(Debug)]
pub struct Bound {
    pub service: String,
    pub socket: TcpListener,
}

/// The smtpd services of master.cf (`inet` services whose command is smtpd).
pub fn services(cfg: &MainCf) -> Result<Vec<Service>, String> {
    let path = cfg.config_directory().join("master.cf");
    if !path.exists() {
        return Ok(Vec::new());
    }
    let services = master_cf::load(cfg.config_directory()).map_err(|e| e.to_string())?;
    Ok(services
        .into_iter()
        .filter(|s| s.kind == ServiceKind::Inet && s.command == "smtpd")
        .collect())
}

/// Settings for each smtpd service, by service name.
pub fn settings_for(
    cfg: &MainCf,
    files: &HashMap<std::path::PathBuf, Vec<u8>>,
) -> HashMap<String, Arc<Settings>> {
    let mut map = HashMap::new();
    match services(cfg) {
        Ok(list) => {
            for svc in list {
                let cfg = match cfg.with_overrides_at(
                    &svc.overrides,
                    &cfg.config_directory().join("master.cf"),
                    svc.line,
                ) {
                    Ok(c) => c,
                    Err(e) => {
                        warning!("smtpd", "service {}: {e}", svc.name);
                        continue;
                    }
                };
                map.insert(
                    svc.name.clone(),
                    Arc::new(Settings::new(&cfg, &svc.name, svc.maxproc, files)),
                );
            }
        }
        Err(e) => warning!("smtpd", "{e}"),
    }
    map
}

/// Addresses to bind for a service with no host part, from `inet_interfaces` and
/// `inet_protocols`.
fn interface_addresses(cfg: &MainCf) -> Vec<IpAddr> {
    let protocols = cfg.list("inet_protocols");
    let all = protocols.is_empty() || protocols.iter().any(|p| p == "all");
    let v4 = all || protocols.iter().any(|p| p == "ipv4");
    let v6 = all || protocols.iter().any(|p| p == "ipv6");
    let mut out = Vec::new();
    for i in cfg.list("inet_interfaces") {
        match i.as_str() {
            "all" => {
                if v4 {
                    out.push(IpAddr::from([0, 0, 0, 0]));
                }
                if v6 {
                    out.push(IpAddr::from([0u16; 8]));
                }
            }
            "loopback-only" => {
                if v4 {
                    out.push(IpAddr::from([127, 0, 0, 1]));
                }
                if v6 {
                    out.push(IpAddr::from([0, 0, 0, 0, 0, 0, 0, 1]));
                }
            }
            other => {
                if let Ok(ip) = other
                    .trim_matches(|c| c == '[' || c == ']')
                    .parse::<IpAddr>()
                {
                    if (ip.is_ipv4() && v4) || (ip.is_ipv6() && v6) {
                        out.push(ip);
                    }
                }
            }
        }
    }
    out
}

fn listen(addr: SocketAddr) -> std::io::Result<TcpListener> {
    let domain = if addr.is_ipv4() {
        socket2::Domain::IPV4
    } else {
        socket2::Domain::IPV6
    };
    let s = socket2::Socket::new(domain, socket2::Type::STREAM, Some(socket2::Protocol::TCP))?;
    s.set_reuse_address(true)?;
    if addr.is_ipv6() {
        s.set_only_v6(true)?;
    }
    s.bind(&addr.into())?;
    s.listen(1024)?;
    s.set_nonblocking(true)?;
    s.set_cloexec(true)?;
    Ok(s.into())
}

/// Bind every smtpd service's sockets. Called before privileges are dropped.
pub fn bind(cfg: &MainCf) -> Result<Vec<Bound>, String> {
    let mut out = Vec::new();
    for svc in services(cfg)? {
        let Some(ep) = &svc.endpoint else { continue };
        let hosts: Vec<IpAddr> = match &ep.host {
            Some(h) if h != "*" => {
                let h = h.trim_matches(|c| c == '[' || c == ']');
                match h.parse::<IpAddr>() {
                    Ok(ip) => vec![ip],
                    Err(_) => std::net::ToSocketAddrs::to_socket_addrs(&(h, ep.port))
                        .map_err(|e| format!("master.cf line {}: {h}: {e}", svc.line))?
                        .map(|a| a.ip())
                        .collect(),
                }
            }
            _ => interface_addresses(cfg),
        };
        let from_interfaces = !matches!(&ep.host, Some(h) if h != "*");
        for ip in hosts {
            let addr = SocketAddr::new(ip, ep.port);
            let socket = match listen(addr) {
                Ok(s) => s,
                // `loopback-only` or `all` on a host without IPv6: bind what exists, as Postfix.
                Err(e)
                    if from_interfaces
                        && ip.is_ipv6()
                        && (e.kind() == std::io::ErrorKind::AddrNotAvailable
                            || e.raw_os_error() == Some(libc::EAFNOSUPPORT)) =>
                {
                    continue
                }
                Err(e) => return Err(format!("bind {addr} for service {}: {e}", svc.name)),
            };
            out.push(Bound {
                service: svc.name.clone(),
                socket,
            });
        }
    }
    Ok(out)
}

/// Connections per client address (Postfix's anvil, for the connection count limit).
#[derive(Debug, Default)]
pub struct Anvil {
    counts: Mutex<HashMap<IpAddr, u32>>,
}

impl Anvil {
    /// Count a new connection; returns the count including it.
    fn connect(&self, ip: IpAddr) -> u32 {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        let c = m.entry(ip).or_insert(0);
        *c += 1;
        *c
    }

    fn disconnect(&self, ip: IpAddr) {
        let mut m = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = m.get_mut(&ip) {
            *c -= 1;
            if *c == 0 {
                m.remove(&ip);
            }
        }
    }
}

/// Accept connections on every bound socket until shutdown.
pub async fn run(rt: Arc<Runtime>, bound: Vec<Bound>, shutdown: CancellationToken) {
    let anvil = Arc::new(Anvil::default());
    let tracker = tokio_util::task::TaskTracker::new();
    let mut limits: HashMap<String, Arc<tokio::sync::Semaphore>> = HashMap::new();
    for b in bound {
        let listener = match tokio::net::TcpListener::from_std(b.socket) {
            Ok(l) => l,
            Err(e) => {
                warning!("smtpd", "service {}: {e}", b.service);
                continue;
            }
        };
        let limit = rt
            .settings()
            .smtpd
            .get(&b.service)
            .map(|s| s.process_limit)
            .unwrap_or(100);
        let sem = limits
            .entry(b.service.clone())
            .or_insert_with(|| Arc::new(tokio::sync::Semaphore::new(limit)))
            .clone();
        tracker.spawn(accept_loop(
            rt.clone(),
            listener,
            b.service,
            sem,
            anvil.clone(),
            shutdown.clone(),
            tracker.clone(),
        ));
    }
    tracker.close();
    shutdown.cancelled().await;
    let _ = tokio::time::timeout(Duration::from_secs(5), tracker.wait()).await;
}

#[allow(clippy::too_many_arguments)]
async fn accept_loop(
    rt: Arc<Runtime>,
    listener: tokio::net::TcpListener,
    service: String,
    sem: Arc<tokio::sync::Semaphore>,
    anvil: Arc<Anvil>,
    shutdown: CancellationToken,
    tracker: tokio_util::task::TaskTracker,
) {
    loop {
        let permit = tokio::select! {
            _ = shutdown.cancelled() => return,
            p = sem.clone().acquire_owned() => match p {
                Ok(p) => p,
                Err(_) => return,
            },
        };
        let (stream, peer) = tokio::select! {
            _ = shutdown.cancelled() => return,
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    warning!("smtpd", "accept: {e}");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                    continue;
                }
            },
        };
        let _ = stream.set_nodelay(true);
        let Some(settings) = rt.settings().smtpd.get(&service).cloned() else {
            warning!(
                "smtpd",
                "service {service} is no longer configured; closing connection from {peer}"
            );
            continue;
        };
        let rt = rt.clone();
        let anvil = anvil.clone();
        let shutdown = shutdown.clone();
        tracker.spawn(async move {
            let ip = canonical_ip(peer.ip());
            let count = anvil.connect(ip);
            let client = session::Client::lookup(ip, peer.port(), settings.peername_lookup).await;
            let over = settings.connection_count_limit > 0
                && count > settings.connection_count_limit
                && !settings
                    .connection_limit_exceptions
                    .iter()
                    .any(|n| n.contains(ip));
            let io: Box<dyn session::Io> = Box::new(stream);
            let mode = if over {
                session::Start::TooManyConnections
            } else {
                session::Start::Normal
            };
            let fut = session::serve(io, client, settings, rt, mode, session::Sink::Cleanup);
            tokio::select! {
                _ = fut => {}
                _ = shutdown.cancelled() => {}
            }
            anvil.disconnect(ip);
            drop(permit);
        });
    }
}

/// IPv4-mapped IPv6 addresses are IPv4 clients.
pub fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    }
}
