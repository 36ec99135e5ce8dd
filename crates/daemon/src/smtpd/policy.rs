//! Access policy for smtpd: Postfix's restriction lists (SMTPD_ACCESS_README, postconf(5)).
//!
//! Lists, evaluated in this order for a recipient: `smtpd_client_restrictions`,
//! `smtpd_helo_restrictions`, `smtpd_sender_restrictions` (all three at RCPT time when
//! `smtpd_delay_reject = yes`, the default), `smtpd_relay_restrictions`,
//! `smtpd_recipient_restrictions`; then `smtpd_data_restrictions` at DATA and
//! `smtpd_end_of_data_restrictions` after the content. Within a list the first restriction
//! that decides wins; `permit` (and a permit_* that matches) ends only its own list — the
//! request must still pass the others. An access table's HOLD decides nothing: it is
//! remembered and the evaluation goes on. A recipient that is local must then be known
//! (`local_recipient_maps`, `smtpd_reject_unlisted_recipient`).
//!
//! A list that names an unknown restriction, or a table that cannot be opened, is a
//! configuration error: the request gets `451 4.3.5 Server configuration error` and the log
//! says why, as with Postfix.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Arc;

use config::MainCf;
use smtp::address;
use smtp::reply::Reply;
use tables::{Table, TableList};

use crate::trivial_rewrite::{AddressClass, Rewriter};

/// A network in `mynetworks` notation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cidr {
    addr: IpAddr,
    prefix: u8,
}

impl Cidr {
    pub fn parse(s: &str) -> Option<Cidr> {
        let s = s.trim();
        let s = s
            .strip_prefix('[')
            .map(|r| r.replacen(']', "", 1))
            .unwrap_or_else(|| s.to_string());
        let (a, p) = match s.split_once('/') {
            Some((a, p)) => (a.to_string(), Some(p.to_string())),
            None => (s.clone(), None),
        };
        let addr: IpAddr = a.trim_matches(|c| c == '[' || c == ']').parse().ok()?;
        let max = if addr.is_ipv4() { 32 } else { 128 };
        let prefix = match p {
            Some(p) => p.parse().ok().filter(|&n: &u8| n <= max)?,
            None => max,
        };
        Some(Cidr { addr, prefix })
    }

    pub fn contains(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u32::MAX << (32 - self.prefix)
                };
                u32::from(n) & mask == u32::from(a) & mask
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                let mask = if self.prefix == 0 {
                    0
                } else {
                    u128::MAX << (128 - self.prefix)
                };
                u128::from(n) & mask == u128::from(a) & mask
            }
            _ => false,
        }
    }
}

/// Where in the session a list is evaluated.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Stage {
    Client,
    Helo,
    Sender,
    Recipient,
    Data,
    EndOfData,
}

#[derive(Clone, Debug)]
enum Rule {
    Permit,
    Reject,
    Defer,
    PermitMynetworks,
    PermitInetInterfaces,
    PermitAuthDestination,
    RejectUnauthDestination,
    DeferUnauthDestination,
    RejectNonFqdnRecipient,
    RejectNonFqdnSender,
    RejectNonFqdnHelo,
    RejectInvalidHelo,
    RejectUnknownRecipientDomain,
    RejectUnknownSenderDomain,
    RejectUnlistedRecipient,
    RejectUnlistedSender,
    Check(AccessKind, Arc<dyn Table>),
    /// SASL is not offered: never matches.
    PermitSaslAuthenticated,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum AccessKind {
    Client,
    Helo,
    Sender,
    Recipient,
}

impl AccessKind {
    fn what(self) -> &'static str {
        match self {
            AccessKind::Client => "Client host",
            AccessKind::Helo => "Helo command",
            AccessKind::Sender => "Sender address",
            AccessKind::Recipient => "Recipient address",
        }
    }
}

/// The decision of a restriction list or of the whole policy.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// Passed (or explicitly permitted).
    Pass,
    /// Refused, for good (5xx) or for now (4xx).
    Refuse(Reply),
    /// Accept, then throw the message away (an access table said DISCARD).
    Discard(String),
    /// Accept into the hold queue (HOLD).
    Hold(String),
}

/// Everything known about the request being judged.
#[derive(Clone, Debug, Default)]
pub struct Request<'a> {
    pub client_addr: Option<IpAddr>,
    pub client_name: &'a str,
    pub helo: Option<&'a str>,
    pub sender: Option<&'a str>,
    pub recipient: Option<&'a str>,
}

#[derive(Debug, Clone)]
pub struct Codes {
    access_map_reject: u16,
    access_map_defer: u16,
    relay_domains_reject: u16,
    unknown_local_recipient_reject: u16,
    non_fqdn_reject: u16,
    invalid_hostname_reject: u16,
    unknown_address_reject: u16,
    reject: u16,
    defer: u16,
}

#[derive(Debug)]
pub struct Policy {
    lists: HashMap<&'static str, Result<Vec<Rule>, String>>,
    delay_reject: bool,
    mynetworks: Vec<Cidr>,
    my_addresses: Vec<IpAddr>,
    rewriter: Rewriter,
    local_recipients: Option<Result<TableList, String>>,
    reject_unlisted_recipient: bool,
    codes: Codes,
}

const LISTS: [&str; 7] = [
    "smtpd_client_restrictions",
    "smtpd_helo_restrictions",
    "smtpd_sender_restrictions",
    "smtpd_relay_restrictions",
    "smtpd_recipient_restrictions",
    "smtpd_data_restrictions",
    "smtpd_end_of_data_restrictions",
];

fn parse_list(words: &[String], base: &std::path::Path) -> Result<Vec<Rule>, String> {
    let mut rules = Vec::new();
    let mut it = words.iter();
    while let Some(w) = it.next() {
        let lw = w.to_ascii_lowercase();
        let rule = match lw.as_str() {
            "permit" => Rule::Permit,
            "reject" => Rule::Reject,
            "defer" => Rule::Defer,
            "permit_mynetworks" => Rule::PermitMynetworks,
            "permit_inet_interfaces" => Rule::PermitInetInterfaces,
            "permit_auth_destination" => Rule::PermitAuthDestination,
            "reject_unauth_destination" => Rule::RejectUnauthDestination,
            "defer_unauth_destination" => Rule::DeferUnauthDestination,
            "reject_non_fqdn_recipient" => Rule::RejectNonFqdnRecipient,
            "reject_non_fqdn_sender" => Rule::RejectNonFqdnSender,
            "reject_non_fqdn_helo_hostname" | "reject_non_fqdn_hostname" => Rule::RejectNonFqdnHelo,
            "reject_invalid_helo_hostname" | "reject_invalid_hostname" => Rule::RejectInvalidHelo,
            "reject_unknown_recipient_domain" => Rule::RejectUnknownRecipientDomain,
            "reject_unknown_sender_domain" => Rule::RejectUnknownSenderDomain,
            "reject_unlisted_recipient" | "check_recipient_maps" => Rule::RejectUnlistedRecipient,
            "reject_unlisted_sender" => Rule::RejectUnlistedSender,
            "permit_sasl_authenticated" => Rule::PermitSaslAuthenticated,
            "check_client_access"
            | "check_helo_access"
            | "check_sender_access"
            | "check_recipient_access" => {
                let spec = it
                    .next()
                    .ok_or_else(|| format!("restriction {w} requires a table argument"))?;
                let table = tables::open(&tables::absolute_spec(spec, base))
                    .map_err(|e| format!("{w} {spec}: {e}"))?;
                let kind = match lw.as_str() {
                    "check_client_access" => AccessKind::Client,
                    "check_helo_access" => AccessKind::Helo,
                    "check_sender_access" => AccessKind::Sender,
                    _ => AccessKind::Recipient,
                };
                Rule::Check(kind, table)
            }
            _ => return Err(format!("unknown smtpd restriction: \"{w}\"")),
        };
        rules.push(rule);
    }
    Ok(rules)
}

fn code(cfg: &MainCf, name: &str) -> u16 {
    u16::try_from(cfg.int(name)).unwrap_or(554)
}

impl Policy {
    pub fn new(cfg: &MainCf) -> Policy {
        let base = cfg.config_directory();
        let mut lists = HashMap::new();
        for name in LISTS {
            lists.insert(name, parse_list(&cfg.list(name), base));
        }
        let mynetworks = cfg
            .list("mynetworks")
            .iter()
            .filter_map(|n| Cidr::parse(n))
            .collect();
        let mut my_addresses: Vec<IpAddr> = vec![
            "127.0.0.1".parse().expect("literal"),
            "::1".parse().expect("literal"),
        ];
        for a in cfg.list("inet_interfaces") {
            if let Ok(ip) = a.trim_matches(|c| c == '[' || c == ']').parse() {
                my_addresses.push(ip);
            }
        }
        let lrm = cfg.list("local_recipient_maps");
        let local_recipients = if lrm.is_empty() {
            None
        } else {
            let specs: Vec<String> = lrm
                .iter()
                .filter(|s| !s.starts_with("nis:"))
                .map(|s| tables::absolute_spec(s, base))
                .collect();
            Some(TableList::open(&specs).map_err(|e| e.to_string()))
        };
        Policy {
            lists,
            delay_reject: cfg.bool("smtpd_delay_reject"),
            mynetworks,
            my_addresses,
            rewriter: Rewriter::new(cfg),
            local_recipients,
            reject_unlisted_recipient: cfg.bool("smtpd_reject_unlisted_recipient"),
            codes: Codes {
                access_map_reject: code(cfg, "access_map_reject_code"),
                access_map_defer: code(cfg, "access_map_defer_code"),
                relay_domains_reject: code(cfg, "relay_domains_reject_code"),
                unknown_local_recipient_reject: code(cfg, "unknown_local_recipient_reject_code"),
                non_fqdn_reject: code(cfg, "non_fqdn_reject_code"),
                invalid_hostname_reject: code(cfg, "invalid_hostname_reject_code"),
                unknown_address_reject: code(cfg, "unknown_address_reject_code"),
                reject: code(cfg, "reject_code"),
                defer: code(cfg, "defer_code"),
            },
        }
    }

    pub fn in_mynetworks(&self, ip: IpAddr) -> bool {
        self.mynetworks.iter().any(|n| n.contains(ip))
    }

    /// Is this client one of our own interfaces (local_header_rewrite_clients default)?
    pub fn is_inet_interface(&self, ip: IpAddr) -> bool {
        let ip = match ip {
            IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
            v4 => v4,
        };
        ip.is_loopback() || self.my_addresses.contains(&ip)
    }

    pub fn delay_reject(&self) -> bool {
        self.delay_reject
    }

    /// Lists that apply when a request reaches `stage`.
    fn lists_for(&self, stage: Stage) -> Vec<&'static str> {
        match stage {
            Stage::Client if !self.delay_reject => vec!["smtpd_client_restrictions"],
            Stage::Helo if !self.delay_reject => vec!["smtpd_helo_restrictions"],
            Stage::Sender if !self.delay_reject => vec!["smtpd_sender_restrictions"],
            Stage::Client | Stage::Helo | Stage::Sender => vec![],
            Stage::Recipient if self.delay_reject => vec![
                "smtpd_client_restrictions",
                "smtpd_helo_restrictions",
                "smtpd_sender_restrictions",
                "smtpd_relay_restrictions",
                "smtpd_recipient_restrictions",
            ],
            Stage::Recipient => vec!["smtpd_relay_restrictions", "smtpd_recipient_restrictions"],
            Stage::Data => vec!["smtpd_data_restrictions"],
            Stage::EndOfData => vec!["smtpd_end_of_data_restrictions"],
        }
    }

    /// Judge a request at `stage`. At the recipient stage this includes the check that a
    /// local recipient exists.
    pub fn check(&self, stage: Stage, req: &Request<'_>) -> Verdict {
        let mut ctx = Ctx::default();
        for name in self.lists_for(stage) {
            let rules = match self.lists.get(name) {
                Some(Ok(r)) => r,
                Some(Err(e)) => return config_error(&format!("{name}: {e}")),
                None => continue,
            };
            (ctx.name, ctx.class) = subject(name, req);
            match self.evaluate(rules, req, &mut ctx) {
                Verdict::Pass => continue,
                other => return other,
            }
        }
        if stage == Stage::Recipient && self.reject_unlisted_recipient {
            if let Some(rcpt) = req.recipient {
                if let refused @ Verdict::Refuse(_) = self.unlisted_recipient(rcpt) {
                    return refused;
                }
            }
        }
        match ctx.hold {
            Some(why) => Verdict::Hold(why),
            None => Verdict::Pass,
        }
    }

    fn evaluate(&self, rules: &[Rule], req: &Request<'_>, ctx: &mut Ctx) -> Verdict {
        for rule in rules {
            match self.apply(rule, req, ctx) {
                Decision::Dunno => continue,
                Decision::Permit => return Verdict::Pass,
                // HOLD does not end the evaluation (access(5)): the request must still pass
                // every other restriction, relay control included.
                Decision::Verdict(Verdict::Hold(why)) => {
                    ctx.hold.get_or_insert(why);
                }
                Decision::Verdict(v) => return v,
            }
        }
        Verdict::Pass
    }

    fn is_local_or_relay(&self, addr: &str) -> bool {
        let resolved = self.rewriter.resolve(addr);
        resolved.class == AddressClass::Local || resolved.class == AddressClass::Relay
    }

    fn apply(&self, rule: &Rule, req: &Request<'_>, ctx: &mut Ctx) -> Decision {
        let c = &self.codes;
        match rule {
            Rule::Permit => Decision::Permit,
            Rule::Reject => Decision::refuse(
                c.reject,
                "5.7.1",
                &format!("<{}>: {} rejected: Access denied", ctx.name, ctx.class),
            ),
            Rule::Defer => Decision::refuse(
                c.defer,
                "4.3.2",
                &format!("<{}>: {} rejected: Try again later", ctx.name, ctx.class),
            ),
            Rule::PermitMynetworks => match req.client_addr {
                Some(ip) if self.in_mynetworks(ip) => Decision::Permit,
                _ => Decision::Dunno,
            },
            Rule::PermitInetInterfaces => match req.client_addr {
                Some(ip) if self.is_inet_interface(ip) => Decision::Permit,
                _ => Decision::Dunno,
            },
            Rule::PermitSaslAuthenticated => Decision::Dunno,
            Rule::PermitAuthDestination => match req.recipient {
                Some(r) if self.is_local_or_relay(r) => Decision::Permit,
                _ => Decision::Dunno,
            },
            Rule::RejectUnauthDestination | Rule::DeferUnauthDestination => match req.recipient {
                Some(r) if !self.is_local_or_relay(r) => {
                    let (code, dsn) = if matches!(rule, Rule::RejectUnauthDestination) {
                        (c.relay_domains_reject, "5.7.1")
                    } else {
                        (454, "4.7.1")
                    };
                    Decision::refuse(code, dsn, &format!("<{r}>: Relay access denied"))
                }
                _ => Decision::Dunno,
            },
            Rule::RejectNonFqdnRecipient => match req.recipient {
                Some(r) if !fqdn_address(r) => Decision::refuse(
                    c.non_fqdn_reject,
                    "5.5.2",
                    &format!("<{r}>: Recipient address rejected: need fully-qualified address"),
                ),
                _ => Decision::Dunno,
            },
            Rule::RejectNonFqdnSender => match req.sender {
                Some(s) if !s.is_empty() && !fqdn_address(s) => Decision::refuse(
                    c.non_fqdn_reject,
                    "5.5.2",
                    &format!("<{s}>: Sender address rejected: need fully-qualified address"),
                ),
                _ => Decision::Dunno,
            },
            Rule::RejectNonFqdnHelo => match req.helo {
                Some(h) if h.starts_with('[') => match invalid_helo(h) {
                    Some(why) => Decision::refuse(
                        c.invalid_hostname_reject,
                        "5.5.2",
                        &format!("<{h}>: Helo command rejected: {why}"),
                    ),
                    None => Decision::Dunno,
                },
                Some(h) if !fqdn_hostname(h) => Decision::refuse(
                    c.non_fqdn_reject,
                    "5.5.2",
                    &format!("<{h}>: Helo command rejected: need fully-qualified hostname"),
                ),
                _ => Decision::Dunno,
            },
            Rule::RejectInvalidHelo => match req.helo.map(|h| (h, invalid_helo(h))) {
                Some((h, Some(why))) => Decision::refuse(
                    c.invalid_hostname_reject,
                    "5.5.2",
                    &format!("<{h}>: Helo command rejected: {why}"),
                ),
                _ => Decision::Dunno,
            },
            Rule::RejectUnknownRecipientDomain => match req.recipient {
                Some(r) => self.unknown_domain(r, "Recipient address"),
                None => Decision::Dunno,
            },
            Rule::RejectUnknownSenderDomain => match req.sender {
                Some(s) if !s.is_empty() => self.unknown_domain(s, "Sender address"),
                _ => Decision::Dunno,
            },
            Rule::RejectUnlistedRecipient => match req.recipient {
                Some(r) => match self.unlisted_recipient(r) {
                    Verdict::Pass => Decision::Dunno,
                    v => Decision::Verdict(v),
                },
                None => Decision::Dunno,
            },
            Rule::RejectUnlistedSender => match req.sender {
                Some(s) if !s.is_empty() => match self.unlisted_local(
                    s,
                    "Sender address",
                    "User unknown in local recipient table",
                ) {
                    Verdict::Pass => Decision::Dunno,
                    v => Decision::Verdict(v),
                },
                _ => Decision::Dunno,
            },
            Rule::Check(kind, table) => self.check_access(*kind, table.as_ref(), req, ctx),
        }
    }

    /// `reject_unknown_*_domain`: the domain must be ours, or resolve in DNS. Without a DNS
    /// resolver in this version, a domain is known when the system resolver finds an address.
    fn unknown_domain(&self, addr: &str, what: &str) -> Decision {
        let (_, domain) = address::split(addr);
        let Some(domain) = domain else {
            return Decision::Dunno;
        };
        if self.is_local_or_relay(addr) || domain.starts_with('[') {
            return Decision::Dunno;
        }
        let found = std::net::ToSocketAddrs::to_socket_addrs(&(domain, 25))
            .is_ok_and(|mut a| a.next().is_some());
        if found {
            Decision::Dunno
        } else {
            let dsn = if what.starts_with("Sender") {
                "4.1.8"
            } else {
                "4.1.2"
            };
            Decision::refuse(
                self.codes.unknown_address_reject,
                dsn,
                &format!("<{addr}>: {what} rejected: Domain not found"),
            )
        }
    }

    /// A recipient in a local domain must be a known user or alias.
    fn unlisted_recipient(&self, rcpt: &str) -> Verdict {
        self.unlisted_local(
            rcpt,
            "Recipient address",
            "User unknown in local recipient table",
        )
    }

    fn unlisted_local(&self, addr: &str, what: &str, why: &str) -> Verdict {
        let resolved = self.rewriter.resolve(addr);
        if resolved.class != AddressClass::Local {
            return Verdict::Pass;
        }
        let Some(tables) = &self.local_recipients else {
            return Verdict::Pass;
        };
        let tables = match tables {
            Ok(t) => t,
            Err(e) => return config_error(&format!("local_recipient_maps: {e}")),
        };
        let (local, domain) = address::split(&resolved.address);
        let lp = address::unquote_local(local).to_lowercase();
        // Postfix looks up user@domain, user, and (with an extension) the base name.
        let mut keys = vec![format!("{lp}@{}", domain.unwrap_or("")), lp.clone()];
        if let Some((base, _)) = lp.split_once('+') {
            keys.push(base.to_string());
        }
        for key in keys {
            match tables.lookup(&key) {
                Ok(Some(_)) => return Verdict::Pass,
                Ok(None) => {}
                Err(e) => {
                    return Verdict::Refuse(Reply::new(
                        450,
                        "4.3.0",
                        format!("<{addr}>: {what} rejected: Temporary lookup failure ({e})"),
                    ))
                }
            }
        }
        Verdict::Refuse(Reply::new(
            self.codes.unknown_local_recipient_reject,
            "5.1.1",
            format!("<{addr}>: {what} rejected: {why}"),
        ))
    }

    fn check_access(
        &self,
        kind: AccessKind,
        table: &dyn Table,
        req: &Request<'_>,
        ctx: &mut Ctx,
    ) -> Decision {
        let keys: Vec<String> = match kind {
            AccessKind::Client => {
                let mut k = Vec::new();
                if !req.client_name.is_empty() && req.client_name != "unknown" {
                    k.extend(domain_keys(req.client_name));
                }
                if let Some(ip) = req.client_addr {
                    k.extend(ip_keys(ip));
                }
                k
            }
            AccessKind::Helo => match req.helo {
                Some(h) => domain_keys(h),
                None => return Decision::Dunno,
            },
            AccessKind::Sender | AccessKind::Recipient => {
                let addr = if kind == AccessKind::Sender {
                    req.sender
                } else {
                    req.recipient
                };
                match addr {
                    Some("") => vec!["<>".to_string()],
                    Some(a) => address_keys(a),
                    None => return Decision::Dunno,
                }
            }
        };
        let shown = match kind {
            AccessKind::Client => format!(
                "{}[{}]",
                req.client_name,
                req.client_addr.map(|a| a.to_string()).unwrap_or_default()
            ),
            AccessKind::Helo => req.helo.unwrap_or("").to_string(),
            AccessKind::Sender => req.sender.unwrap_or("").to_string(),
            AccessKind::Recipient => req.recipient.unwrap_or("").to_string(),
        };
        for key in keys {
            match table.lookup(&key.to_ascii_lowercase()) {
                Ok(Some(action)) => return self.access_action(&action, kind, &shown, req, ctx),
                Ok(None) => {}
                Err(e) => {
                    return Decision::Verdict(Verdict::Refuse(Reply::new(
                        451,
                        "4.3.0",
                        format!("<{shown}>: Temporary lookup failure ({e})"),
                    )))
                }
            }
        }
        Decision::Dunno
    }

    /// An access table's right-hand side (access(5)).
    fn access_action(
        &self,
        action: &str,
        kind: AccessKind,
        shown: &str,
        req: &Request<'_>,
        ctx: &mut Ctx,
    ) -> Decision {
        let action = action.trim();
        let (word, text) = match action.split_once(char::is_whitespace) {
            Some((w, t)) => (w, t.trim()),
            None => (action, ""),
        };
        let prefix = format!("<{shown}>: {} rejected", kind.what());
        let with = |t: &str, default: &str| {
            if t.is_empty() {
                format!("{prefix}: {default}")
            } else {
                format!("{prefix}: {t}")
            }
        };
        match word.to_ascii_uppercase().as_str() {
            "OK" => return Decision::Permit,
            "DUNNO" => return Decision::Dunno,
            "REJECT" => {
                return Decision::refuse(
                    self.codes.access_map_reject,
                    "5.7.1",
                    &with(text, "Access denied"),
                )
            }
            "DEFER" | "DEFER_IF_PERMIT" | "DEFER_IF_REJECT" => {
                return Decision::refuse(
                    self.codes.access_map_defer,
                    "4.7.1",
                    &with(text, "Access denied"),
                )
            }
            "DISCARD" | "HOLD" => {
                let why = if text.is_empty() {
                    format!(
                        "<{shown}>: {} triggers {} action",
                        kind.what(),
                        word.to_ascii_uppercase()
                    )
                } else {
                    format!("<{shown}>: {} {text}", kind.what())
                };
                return Decision::Verdict(if word.eq_ignore_ascii_case("DISCARD") {
                    Verdict::Discard(why)
                } else {
                    Verdict::Hold(why)
                });
            }
            "WARN" | "INFO" | "PREPEND" | "FILTER" | "REDIRECT" | "BCC" => return Decision::Dunno,
            _ => {}
        }
        // A numeric result: `450 text` / `554 5.7.1 text`; all-numeric means OK (access(5)).
        if word.chars().all(|ch| ch.is_ascii_digit()) {
            if word.len() == 3
                && !text.is_empty()
                && (word.starts_with('4') || word.starts_with('5'))
            {
                let code: u16 = word.parse().unwrap_or(554);
                let (dsn, text) = match text.split_once(' ') {
                    Some((d, t)) if is_dsn(d) => (d.to_string(), t.trim().to_string()),
                    _ if is_dsn(text) => (text.to_string(), String::new()),
                    _ => (format!("{}.7.1", &word[..1]), text.to_string()),
                };
                return Decision::refuse(code, &dsn, &with(&text, "Access denied"));
            }
            return Decision::Permit;
        }
        // A restriction name (or a list of them) as the result.
        let words: Vec<String> = action
            .split([' ', ',', '\t'])
            .filter(|w| !w.is_empty())
            .map(str::to_string)
            .collect();
        match parse_list(&words, std::path::Path::new("/")) {
            Ok(rules) => {
                // Replies of the nested list speak of what the table was asked about.
                let outer = (
                    std::mem::replace(&mut ctx.name, shown.to_string()),
                    std::mem::replace(&mut ctx.class, kind.what()),
                );
                let verdict = self.evaluate(&rules, req, ctx);
                (ctx.name, ctx.class) = outer;
                match verdict {
                    Verdict::Pass => Decision::Dunno,
                    v => Decision::Verdict(v),
                }
            }
            Err(e) => Decision::Verdict(config_error(&format!(
                "access table result \"{action}\": {e}"
            ))),
        }
    }
}

/// What the list being evaluated judges (`<name>: class rejected: ...` in `reject` and
/// `defer` replies), and a HOLD decided on the way.
#[derive(Default)]
struct Ctx {
    name: String,
    class: &'static str,
    hold: Option<String>,
}

/// The name and class a list's replies speak of (Postfix's `reply_name`, `reply_class`).
fn subject(list: &str, req: &Request<'_>) -> (String, &'static str) {
    match list {
        "smtpd_client_restrictions" => (
            format!(
                "{}[{}]",
                req.client_name,
                req.client_addr.map(|a| a.to_string()).unwrap_or_default()
            ),
            "Client host",
        ),
        "smtpd_helo_restrictions" => (req.helo.unwrap_or("").to_string(), "Helo command"),
        "smtpd_sender_restrictions" => (req.sender.unwrap_or("").to_string(), "Sender address"),
        "smtpd_data_restrictions" => ("DATA".to_string(), "Data command"),
        "smtpd_end_of_data_restrictions" => ("END-OF-MESSAGE".to_string(), "End-of-data"),
        _ => (req.recipient.unwrap_or("").to_string(), "Recipient address"),
    }
}

enum Decision {
    Dunno,
    Permit,
    Verdict(Verdict),
}

impl Decision {
    fn refuse(code: u16, dsn: &str, text: &str) -> Decision {
        // The DSN class follows the reply code (a 4xx access_map code with a 5.x.x default).
        let class = if code / 100 == 4 { '4' } else { '5' };
        let dsn = format!("{class}{}", &dsn[1.min(dsn.len())..]);
        Decision::Verdict(Verdict::Refuse(Reply::new(code, &dsn, text.to_string())))
    }
}

fn config_error(why: &str) -> Verdict {
    crate::warning!("smtpd", "{why}");
    Verdict::Refuse(Reply::new(451, "4.3.5", "Server configuration error"))
}

fn is_dsn(s: &str) -> bool {
    let p: Vec<&str> = s.split('.').collect();
    p.len() == 3
        && matches!(p[0], "2" | "4" | "5")
        && p[1..]
            .iter()
            .all(|x| !x.is_empty() && x.len() <= 3 && x.bytes().all(|b| b.is_ascii_digit()))
}

/// Why a HELO name is invalid (`reject_invalid_helo_hostname`): a bad `[address]` literal, or
/// neither a hostname nor a bare IP address.
fn invalid_helo(h: &str) -> Option<&'static str> {
    if h.starts_with('[') {
        return (!valid_hostname_or_literal(h)).then_some("invalid ip address");
    }
    (!valid_hostname_or_literal(h) && h.parse::<IpAddr>().is_err()).then_some("Invalid name")
}

fn fqdn_address(addr: &str) -> bool {
    match address::split(addr).1 {
        Some(d) => fqdn_hostname(d) || d.starts_with('['),
        None => false,
    }
}

fn fqdn_hostname(h: &str) -> bool {
    let h = h.trim_end_matches('.');
    h.contains('.') && valid_hostname_or_literal(h)
}

fn valid_hostname_or_literal(h: &str) -> bool {
    if h.starts_with('[') && h.ends_with(']') {
        let inner = &h[1..h.len() - 1];
        let inner = inner
            .strip_prefix("IPv6:")
            .or_else(|| inner.strip_prefix("ipv6:"))
            .unwrap_or(inner);
        return inner.parse::<IpAddr>().is_ok();
    }
    let h = h.trim_end_matches('.');
    !h.is_empty()
        && h.len() <= 255
        && h.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        })
        && !h
            .split('.')
            .next_back()
            .is_some_and(|t| t.bytes().all(|b| b.is_ascii_digit()))
}

/// access(5) lookup order for a domain: `host.example.com`, `example.com`, `com`.
fn domain_keys(name: &str) -> Vec<String> {
    let name = name.trim_end_matches('.').to_ascii_lowercase();
    let mut keys = vec![name.clone()];
    let mut rest = name.as_str();
    while let Some((_, parent)) = rest.split_once('.') {
        keys.push(parent.to_string());
        rest = parent;
    }
    keys
}

/// access(5) lookup order for an address: `1.2.3.4`, `1.2.3`, `1.2`, `1`.
fn ip_keys(ip: IpAddr) -> Vec<String> {
    let ip = match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map(IpAddr::V4).unwrap_or(ip),
        v4 => v4,
    };
    let s = ip.to_string();
    let sep = if ip.is_ipv4() { '.' } else { ':' };
    let mut keys = vec![s.clone()];
    let mut rest = s.as_str();
    while let Some((head, _)) = rest.rsplit_once(sep) {
        if head.is_empty() {
            break;
        }
        keys.push(head.to_string());
        rest = head;
    }
    keys
}

/// access(5) lookup order for an e-mail address: `user@domain`, the domain and its parents,
/// `user@`.
fn address_keys(addr: &str) -> Vec<String> {
    let (local, domain) = address::split(addr);
    let mut keys = vec![addr.to_ascii_lowercase()];
    if let Some(d) = domain {
        keys.extend(domain_keys(d));
    }
    keys.push(format!("{}@", local.to_ascii_lowercase()));
    keys
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn policy(extra: &str) -> Policy {
        let text = format!(
            "myhostname = mail.example.com\nmydomain = example.com\n\
             mydestination = $myhostname, localhost\nmynetworks = 127.0.0.0/8, [::1]/128\n\
             local_recipient_maps =\n{extra}"
        );
        let cfg = MainCf::parse(&text, Path::new("/t/main.cf"), Path::new("/t")).unwrap();
        Policy::new(&cfg)
    }

    fn rcpt<'a>(ip: &str, r: &'a str) -> Request<'a> {
        Request {
            client_addr: Some(ip.parse().unwrap()),
            client_name: "unknown",
            helo: Some("client.example"),
            sender: Some("s@client.example"),
            recipient: Some(r),
        }
    }

    #[test]
    fn cidr_matching() {
        let n = Cidr::parse("127.0.0.0/8").unwrap();
        assert!(n.contains("127.1.2.3".parse().unwrap()));
        assert!(n.contains("::ffff:127.0.0.2".parse().unwrap()));
        assert!(!n.contains("10.0.0.1".parse().unwrap()));
        assert!(Cidr::parse("[::1]/128")
            .unwrap()
            .contains("::1".parse().unwrap()));
        assert!(Cidr::parse("10.0.0.0/33").is_none());
    }

    #[test]
    fn default_is_not_an_open_relay() {
        let p = policy("");
        let v = p.check(
            Stage::Recipient,
            &rcpt("192.0.2.7", "victim@elsewhere.example"),
        );
        assert_eq!(
            v,
            Verdict::Refuse(Reply::new(
                554,
                "5.7.1",
                "<victim@elsewhere.example>: Relay access denied"
            ))
        );
        assert_eq!(
            p.check(Stage::Recipient, &rcpt("127.0.0.1", "x@elsewhere.example")),
            Verdict::Pass
        );
        assert_eq!(
            p.check(Stage::Recipient, &rcpt("192.0.2.7", "bob@mail.example.com")),
            Verdict::Pass
        );
    }

    #[test]
    fn fqdn_checks() {
        let p = policy(
            "smtpd_recipient_restrictions = reject_non_fqdn_recipient, reject_non_fqdn_sender\n",
        );
        let mut r = rcpt("127.0.0.1", "bob");
        assert!(matches!(p.check(Stage::Recipient, &r), Verdict::Refuse(ref x) if x.code == 504));
        r.recipient = Some("bob@mail.example.com");
        r.sender = Some("s@localhost");
        assert!(matches!(p.check(Stage::Recipient, &r), Verdict::Refuse(ref x) if x.code == 504));
    }

    #[test]
    fn access_table_results() {
        let p = policy(
            "smtpd_sender_restrictions = check_sender_access inline:{ spam.example=REJECT, \
             ok.example=OK, slow.example=DEFER, { custom.example = 550 5.7.0 go away }, \
             drop.example=DISCARD }\n",
        );
        let mut r = rcpt("192.0.2.1", "bob@mail.example.com");
        r.sender = Some("a@spam.example");
        assert_eq!(
            p.check(Stage::Recipient, &r),
            Verdict::Refuse(Reply::new(
                554,
                "5.7.1",
                "<a@spam.example>: Sender address rejected: Access denied"
            ))
        );
        r.sender = Some("a@sub.slow.example");
        assert!(matches!(p.check(Stage::Recipient, &r), Verdict::Refuse(ref x) if x.code == 450));
        r.sender = Some("a@custom.example");
        assert_eq!(
            p.check(Stage::Recipient, &r),
            Verdict::Refuse(Reply::new(
                550,
                "5.7.0",
                "<a@custom.example>: Sender address rejected: go away"
            ))
        );
        r.sender = Some("a@drop.example");
        assert_eq!(
            p.check(Stage::Recipient, &r),
            Verdict::Discard("<a@drop.example>: Sender address triggers DISCARD action".into())
        );
        // OK ends the sender list only: relaying is still judged.
        r.sender = Some("a@ok.example");
        r.recipient = Some("x@far.example");
        assert!(matches!(p.check(Stage::Recipient, &r), Verdict::Refuse(ref x) if x.code == 554));
    }

    #[test]
    fn generic_replies_name_what_their_list_judges() {
        let p = policy("smtpd_client_restrictions = reject\n");
        assert_eq!(
            p.check(Stage::Recipient, &rcpt("192.0.2.7", "bob@mail.example.com")),
            Verdict::Refuse(Reply::new(
                554,
                "5.7.1",
                "<unknown[192.0.2.7]>: Client host rejected: Access denied"
            ))
        );
        let p = policy("smtpd_recipient_restrictions = defer\n");
        assert_eq!(
            p.check(Stage::Recipient, &rcpt("127.0.0.1", "bob@mail.example.com")),
            Verdict::Refuse(Reply::new(
                450,
                "4.3.2",
                "<bob@mail.example.com>: Recipient address rejected: Try again later"
            ))
        );
        // A restriction as an access table's result speaks of what the table looked up.
        let p = policy(
            "smtpd_recipient_restrictions = check_sender_access inline:{ s@client.example=reject }\n",
        );
        assert_eq!(
            p.check(Stage::Recipient, &rcpt("127.0.0.1", "bob@mail.example.com")),
            Verdict::Refuse(Reply::new(
                554,
                "5.7.1",
                "<s@client.example>: Sender address rejected: Access denied"
            ))
        );
    }

    #[test]
    fn hold_lets_the_other_restrictions_decide() {
        let p =
            policy("smtpd_client_restrictions = check_client_access inline:{ 192.0.2.7=HOLD }\n");
        assert!(matches!(
            p.check(Stage::Recipient, &rcpt("192.0.2.7", "x@elsewhere.example")),
            Verdict::Refuse(ref r) if r.code == 554
        ));
        assert!(matches!(
            p.check(Stage::Recipient, &rcpt("192.0.2.7", "bob@mail.example.com")),
            Verdict::Hold(_)
        ));
    }

    #[test]
    fn helo_validity_as_postfix_sees_it() {
        assert_eq!(invalid_helo("1.2.3.4"), None);
        assert_eq!(invalid_helo("[1.2.3.4]"), None);
        assert_eq!(invalid_helo("[garbage]"), Some("invalid ip address"));
        assert_eq!(invalid_helo("bad_host!"), Some("Invalid name"));
        assert_eq!(invalid_helo("a..b.example"), Some("Invalid name"));
    }

    #[test]
    fn unknown_restriction_is_a_configuration_error() {
        let p = policy("smtpd_recipient_restrictions = permit_nonsense\n");
        assert_eq!(
            p.check(Stage::Recipient, &rcpt("127.0.0.1", "bob@mail.example.com")),
            Verdict::Refuse(Reply::new(451, "4.3.5", "Server configuration error"))
        );
    }

    #[test]
    fn lookup_keys() {
        assert_eq!(
            domain_keys("a.b.example"),
            vec!["a.b.example", "b.example", "example"]
        );
        assert_eq!(
            ip_keys("192.0.2.7".parse().unwrap()),
            vec!["192.0.2.7", "192.0.2", "192.0", "192"]
        );
        assert_eq!(
            address_keys("Joe@X.example"),
            vec!["joe@x.example", "x.example", "example", "joe@"]
        );
    }

    #[test]
    fn helo_names() {
        assert!(valid_hostname_or_literal("mail.example.com"));
        assert!(valid_hostname_or_literal("[127.0.0.1]"));
        assert!(!valid_hostname_or_literal("bad_host!"));
        assert!(!valid_hostname_or_literal("1.2.3.4"));
        assert!(!fqdn_hostname("localhost"));
    }
}
