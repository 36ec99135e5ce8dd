//! `master.cf`: the service table (master(5)).
//!
//! Owns parsing of service lines: `service type private unpriv chroot wakeup
//! maxproc command [args...]`, with `-` for a field's default, `y`/`n` for
//! the boolean fields, a trailing `?` on the wakeup time, `{ ... }` around
//! an argument that contains whitespace (whitespace after `{` and before `}`
//! ignored), and `-o name=value` / `-o { name = value }` options collected as
//! parameter overrides. As with the daemons' getopt, only the options before
//! the first non-option argument are options: in `pipe ... argv=/bin/x -o y`
//! the `-o y` belongs to the command. For `inet` services the service name is
//! parsed as an endpoint (`smtp`, `2525`, `127.0.0.1:2525`, `[::1]:2525`,
//! `::1:smtp`, `host:port`); port names are looked up in `/etc/services`,
//! falling back to smtp 25, submission 587, smtps/submissions 465.
//!
//! Invariants: when two lines define the same name and type, only the last
//! is kept (master(5)), at its own position. Comments, continuation lines
//! and orphan continuation lines follow `syntax.rs`.
//!
//! Failure: a bad line (too few fields, bad type, bad y/n, bad wakeup or
//! process limit, an `-o` without `=`, an unclosed `{`, an unknown port) is
//! a [`ConfigError`] naming the file and line, worded like Postfix's
//! (`invalid type field "foo" in "..."`); the other lines are still parsed.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;
use std::sync::LazyLock;

use crate::error::{ConfigError, LoadError};
use crate::expand::is_space;
use crate::main_cf::io_reason;
use crate::syntax;

/// The service type (second field).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ServiceKind {
    /// A TCP/IP listener.
    Inet,
    /// A UNIX-domain stream socket.
    Unix,
    /// A UNIX-domain datagram socket.
    UnixDgram,
    /// A named pipe (obsolete in Postfix, still accepted).
    Fifo,
    /// A UNIX-domain socket receiving file descriptors.
    Pass,
}

impl ServiceKind {
    /// The name as written in master.cf.
    pub fn as_str(self) -> &'static str {
        match self {
            ServiceKind::Inet => "inet",
            ServiceKind::Unix => "unix",
            ServiceKind::UnixDgram => "unix-dgram",
            ServiceKind::Fifo => "fifo",
            ServiceKind::Pass => "pass",
        }
    }

    fn parse(s: &str) -> Option<ServiceKind> {
        Some(match s {
            "inet" => ServiceKind::Inet,
            "unix" => ServiceKind::Unix,
            "unix-dgram" => ServiceKind::UnixDgram,
            "fifo" => ServiceKind::Fifo,
            "pass" => ServiceKind::Pass,
            _ => return None,
        })
    }
}

impl fmt::Display for ServiceKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where an `inet` service listens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InetEndpoint {
    /// The host or address (brackets removed); `None` means every address
    /// of `inet_interfaces`.
    pub host: Option<String>,
    /// The TCP port.
    pub port: u16,
}

/// The wakeup field: wake the service every `seconds` (0: never); with
/// `after_first_use` (a trailing `?`) only once it has been used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Wakeup {
    /// The interval in seconds.
    pub seconds: u32,
    /// Whether no wakeup is sent before the service is first used.
    pub after_first_use: bool,
}

/// One master.cf service line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Service {
    /// The service name as written (`smtp`, `127.0.0.1:2525`, `pickup`).
    pub name: String,
    /// The service type.
    pub kind: ServiceKind,
    /// For `inet` services, the parsed listening endpoint.
    pub endpoint: Option<InetEndpoint>,
    /// `Some(true)` for `y`, `Some(false)` for `n`, `None` for `-` (default y).
    pub private: Option<bool>,
    /// Unprivileged field (default y).
    pub unpriv: Option<bool>,
    /// Chroot field (default n since Postfix 3.0).
    pub chroot: Option<bool>,
    /// Wakeup field; `None` for `-` (default 0, no wakeup).
    pub wakeup: Option<Wakeup>,
    /// Process limit; `None` for `-` (`$default_process_limit`), 0 unlimited.
    pub maxproc: Option<u32>,
    /// The daemon program name.
    pub command: String,
    /// The command arguments other than `-o` overrides, braces removed.
    pub args: Vec<String>,
    /// The `-o name=value` overrides, in order.
    pub overrides: Vec<(String, String)>,
    /// The 1-based line where the service's logical line starts.
    pub line: usize,
}

impl Service {
    /// The line as `postconf -M` prints it: columns aligned as Postfix
    /// aligns them, `-o` overrides first (`-o {name=value}` when the value
    /// has whitespace), then the other arguments.
    pub fn to_postconf_line(&self) -> String {
        const STOPS: [usize; 8] = [0, 11, 17, 25, 33, 41, 49, 57];
        let flag = |b: Option<bool>| match b {
            None => "-".to_string(),
            Some(true) => "y".to_string(),
            Some(false) => "n".to_string(),
        };
        let wakeup = match self.wakeup {
            None => "-".to_string(),
            Some(w) => format!("{}{}", w.seconds, if w.after_first_use { "?" } else { "" }),
        };
        let maxproc = self.maxproc.map_or("-".to_string(), |n| n.to_string());
        let mut command = self.command.clone();
        for (name, value) in &self.overrides {
            if value.bytes().any(is_space) {
                command.push_str(&format!(" -o {{{name}={value}}}"));
            } else {
                command.push_str(&format!(" -o {name}={value}"));
            }
        }
        for arg in &self.args {
            command.push(' ');
            command.push_str(arg);
        }
        let fields = [
            self.name.clone(),
            self.kind.as_str().to_string(),
            flag(self.private),
            flag(self.unpriv),
            flag(self.chroot),
            wakeup,
            maxproc,
            command,
        ];
        let mut line = String::new();
        for (k, field) in fields.iter().enumerate() {
            if k > 0 {
                if line.len() < STOPS[k] {
                    let pad = STOPS[k] - line.len();
                    line.push_str(&" ".repeat(pad));
                } else {
                    line.push(' ');
                }
            }
            line.push_str(field);
        }
        line
    }
}

/// A token of a service line: its text and whether it was `{ ... }`.
struct Token {
    text: String,
    braced: bool,
}

/// Splits a logical line into whitespace-separated tokens, `{ ... }`
/// (nesting allowed) being one token with the outer braces and the
/// whitespace just inside them removed.
fn tokenize(line: &str) -> Result<Vec<Token>, String> {
    let b = line.as_bytes();
    let mut out = Vec::new();
    let mut p = 0;
    while p < b.len() {
        while p < b.len() && is_space(b[p]) {
            p += 1;
        }
        if p == b.len() {
            break;
        }
        if b[p] == b'{' {
            let mut level = 0usize;
            let mut q = p;
            let mut end = None;
            while q < b.len() {
                match b[q] {
                    b'{' => level += 1,
                    b'}' => {
                        level -= 1;
                        if level == 0 {
                            end = Some(q);
                            break;
                        }
                    }
                    _ => {}
                }
                q += 1;
            }
            let Some(end) = end else {
                return Err(format!("missing '}}' in \"{}\"", &line[p..]));
            };
            let inner = line[p + 1..end].trim_matches(|c: char| c.is_ascii() && is_space(c as u8));
            out.push(Token {
                text: inner.to_string(),
                braced: true,
            });
            p = end + 1;
        } else {
            let start = p;
            while p < b.len() && !is_space(b[p]) {
                p += 1;
            }
            out.push(Token {
                text: line[start..p].to_string(),
                braced: false,
            });
        }
    }
    Ok(out)
}

/// Splits an override `name=value` (short form) or `name = value` (long
/// form, whitespace around `=` ignored).
fn split_override(text: &str) -> Result<(String, String), String> {
    let trim = |s: &str| {
        s.trim_matches(|c: char| c.is_ascii() && is_space(c as u8))
            .to_string()
    };
    match text.split_once('=') {
        None => Err(format!("missing '=' after attribute name: \"{text}\"")),
        Some((name, _)) if trim(name).is_empty() => {
            Err(format!("missing attribute name: \"{text}\""))
        }
        Some((name, value)) => Ok((trim(name), trim(value))),
    }
}

/// Daemon options (common to all Postfix daemons) that take an argument.
const OPTIONS_WITH_ARGUMENT: &[&str] = &["-i", "-m", "-n", "-s", "-t"];

/// Command arguments other than overrides, and the `-o` overrides.
type Arguments = (Vec<String>, Vec<(String, String)>);

/// Separates the command arguments into overrides and other arguments.
fn split_arguments(tokens: &[Token]) -> Result<Arguments, String> {
    let mut args = Vec::new();
    let mut overrides = Vec::new();
    let mut options = true;
    let mut k = 0;
    while k < tokens.len() {
        let tok = &tokens[k];
        let option = options && !tok.braced && tok.text.len() > 1 && tok.text.starts_with('-');
        if !option {
            options = false;
            args.push(tok.text.clone());
        } else if tok.text == "-o" {
            k += 1;
            let Some(value) = tokens.get(k) else {
                return Err("option -o requires a name=value argument".to_string());
            };
            overrides.push(split_override(&value.text)?);
        } else if let Some(rest) = tok.text.strip_prefix("-o") {
            let rest = rest
                .strip_prefix('{')
                .and_then(|r| r.strip_suffix('}'))
                .unwrap_or(rest);
            overrides.push(split_override(rest)?);
        } else {
            if tok.text == "--" {
                options = false;
            }
            args.push(tok.text.clone());
            if OPTIONS_WITH_ARGUMENT.contains(&tok.text.as_str()) {
                k += 1;
                if let Some(arg) = tokens.get(k) {
                    args.push(arg.text.clone());
                }
            }
        }
        k += 1;
    }
    Ok((args, overrides))
}

fn parse_flag(field: &str, value: &str, line: &str) -> Result<Option<bool>, String> {
    match value {
        "-" => Ok(None),
        "y" => Ok(Some(true)),
        "n" => Ok(Some(false)),
        _ => Err(format!("invalid {field} field \"{value}\" in \"{line}\"")),
    }
}

fn parse_wakeup(value: &str, line: &str) -> Result<Option<Wakeup>, String> {
    if value == "-" {
        return Ok(None);
    }
    let (digits, after_first_use) = match value.strip_suffix('?') {
        Some(d) => (d, true),
        None => (value, false),
    };
    if digits.is_empty() || !digits.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!("invalid wakeup field \"{value}\" in \"{line}\""));
    }
    let seconds = digits
        .parse()
        .map_err(|_| format!("invalid wakeup field \"{value}\" in \"{line}\""))?;
    Ok(Some(Wakeup {
        seconds,
        after_first_use,
    }))
}

fn parse_maxproc(value: &str, line: &str) -> Result<Option<u32>, String> {
    if value == "-" {
        return Ok(None);
    }
    if value.is_empty() || !value.bytes().all(|c| c.is_ascii_digit()) {
        return Err(format!(
            "invalid process_limit field \"{value}\" in \"{line}\""
        ));
    }
    value
        .parse()
        .map(Some)
        .map_err(|_| format!("invalid process_limit field \"{value}\" in \"{line}\""))
}

/// Built-in ports for the service names SMTP listeners use.
const BUILTIN_PORTS: &[(&str, u16)] = &[
    ("smtp", 25),
    ("submission", 587),
    ("smtps", 465),
    ("submissions", 465),
];

/// Parses `/etc/services` text into TCP service name (and alias) → port.
fn parse_services(text: &str) -> HashMap<String, u16> {
    let mut map = HashMap::new();
    for line in text.lines() {
        let line = line.split('#').next().unwrap_or_default();
        let mut fields = line.split_whitespace();
        let (Some(name), Some(port_proto)) = (fields.next(), fields.next()) else {
            continue;
        };
        let Some((port, "tcp")) = port_proto.split_once('/') else {
            continue;
        };
        let Ok(port) = port.parse::<u16>() else {
            continue;
        };
        for n in std::iter::once(name).chain(fields) {
            map.entry(n.to_string()).or_insert(port);
        }
    }
    map
}

static SERVICES: LazyLock<HashMap<String, u16>> = LazyLock::new(|| {
    std::fs::read_to_string("/etc/services")
        .map(|t| parse_services(&t))
        .unwrap_or_default()
});

fn lookup_port(name: &str, services: &HashMap<String, u16>) -> Option<u16> {
    services.get(name).copied().or_else(|| {
        BUILTIN_PORTS
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, p)| *p)
    })
}

/// The TCP port of a numeric port or a service name (from `/etc/services`
/// when present, else the built-in smtp, submission, smtps, submissions).
pub fn resolve_port(name: &str) -> Option<u16> {
    resolve_port_with(name, &SERVICES)
}

fn resolve_port_with(name: &str, services: &HashMap<String, u16>) -> Option<u16> {
    if !name.is_empty() && name.bytes().all(|c| c.is_ascii_digit()) {
        return name.parse::<u16>().ok().filter(|p| *p != 0);
    }
    lookup_port(name, services)
}

/// Parses an inet service name into its endpoint.
pub fn parse_endpoint(name: &str) -> Result<InetEndpoint, String> {
    parse_endpoint_with(name, &SERVICES)
}

fn parse_endpoint_with(
    name: &str,
    services: &HashMap<String, u16>,
) -> Result<InetEndpoint, String> {
    let (host, port) = if let Some(rest) = name.strip_prefix('[') {
        let Some((host, after)) = rest.split_once(']') else {
            return Err(format!("missing ']' in service name \"{name}\""));
        };
        let Some(port) = after.strip_prefix(':') else {
            return Err(format!("missing port in service name \"{name}\""));
        };
        (Some(host), port)
    } else {
        match name.rsplit_once(':') {
            Some((host, port)) => (Some(host), port),
            None => (None, name),
        }
    };
    let port =
        resolve_port_with(port, services).ok_or_else(|| format!("unknown service: {port}/tcp"))?;
    Ok(InetEndpoint {
        host: host.filter(|h| !h.is_empty()).map(str::to_string),
        port,
    })
}

/// Parses one logical line into a service.
fn parse_service(
    text: &str,
    line: usize,
    services: &HashMap<String, u16>,
) -> Result<Service, String> {
    let tokens = tokenize(text)?;
    if tokens.len() < 8 {
        return Err("bad field count".to_string());
    }
    let field = |k: usize| tokens[k].text.as_str();
    let kind = ServiceKind::parse(field(1))
        .ok_or_else(|| format!("invalid type field \"{}\" in \"{text}\"", field(1)))?;
    let endpoint = match kind {
        ServiceKind::Inet => Some(parse_endpoint_with(field(0), services)?),
        _ => None,
    };
    let (args, overrides) = split_arguments(&tokens[8..])?;
    Ok(Service {
        name: field(0).to_string(),
        kind,
        endpoint,
        private: parse_flag("private", field(2), text)?,
        unpriv: parse_flag("unprivileged", field(3), text)?,
        chroot: parse_flag("chroot", field(4), text)?,
        wakeup: parse_wakeup(field(5), text)?,
        maxproc: parse_maxproc(field(6), text)?,
        command: field(7).to_string(),
        args,
        overrides,
        line,
    })
}

/// Parses master.cf `text` (from `file`, for error messages): the services
/// and the errors of the lines that could not be parsed.
pub fn parse(text: &str, file: &Path) -> (Vec<Service>, Vec<ConfigError>) {
    parse_with(text, file, &SERVICES)
}

fn parse_with(
    text: &str,
    file: &Path,
    services: &HashMap<String, u16>,
) -> (Vec<Service>, Vec<ConfigError>) {
    let mut out: Vec<Service> = Vec::new();
    let mut errors = Vec::new();
    for l in syntax::logical_lines(text) {
        if l.orphan {
            continue;
        }
        match parse_service(&l.text, l.line, services) {
            Ok(svc) => {
                out.retain(|s| !(s.name == svc.name && s.kind == svc.kind));
                out.push(svc);
            }
            Err(message) => errors.push(ConfigError {
                file: file.to_path_buf(),
                line: l.line,
                param: None,
                message,
            }),
        }
    }
    (out, errors)
}

/// Loads `config_dir/master.cf`; any bad line (or a missing file) is an error.
pub fn load(config_dir: &Path) -> Result<Vec<Service>, LoadError> {
    let file = config_dir.join("master.cf");
    let bytes = std::fs::read(&file).map_err(|e| ConfigError {
        file: file.clone(),
        line: 0,
        param: None,
        message: format!("open failed: {}", io_reason(&e)),
    })?;
    let (services, errors) = parse(&String::from_utf8_lossy(&bytes), &file);
    if errors.is_empty() {
        Ok(services)
    } else {
        Err(LoadError { errors })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STOCK: &str = include_str!("testdata/master.cf.dist");
    const STOCK_M: &str = include_str!("testdata/master.cf.dist.postconf-M");

    fn no_services() -> HashMap<String, u16> {
        HashMap::new()
    }

    fn one(text: &str) -> Service {
        let (svcs, errs) = parse_with(text, Path::new("/m/master.cf"), &no_services());
        assert!(errs.is_empty(), "{text:?}: {errs:?}");
        assert_eq!(svcs.len(), 1, "{text:?}");
        svcs.into_iter().next().expect("one service")
    }

    #[test]
    fn stock_debian_master_cf_parses_and_prints_as_postfix() {
        let (svcs, errs) = parse(STOCK, Path::new("master.cf.dist"));
        assert!(errs.is_empty(), "{errs:?}");
        let printed: Vec<String> = svcs.iter().map(Service::to_postconf_line).collect();
        let want: Vec<&str> = STOCK_M.lines().collect();
        assert_eq!(printed, want);
        let smtp = &svcs[0];
        assert_eq!(
            (smtp.name.as_str(), smtp.kind, smtp.command.as_str()),
            ("smtp", ServiceKind::Inet, "smtpd")
        );
        assert_eq!(
            smtp.endpoint,
            Some(InetEndpoint {
                host: None,
                port: 25
            })
        );
        for system in [
            "/usr/share/postfix/master.cf.dist",
            "/etc/postfix/master.cf",
        ] {
            if let Ok(text) = std::fs::read_to_string(system) {
                let (_, errs) = parse(&text, Path::new(system));
                assert!(errs.is_empty(), "{system}: {errs:?}");
                break;
            }
        }
    }

    #[test]
    fn fields_and_defaults() {
        let s = one("pickup    unix  n       -       y       60      1       pickup\n");
        assert_eq!(s.kind, ServiceKind::Unix);
        assert_eq!(
            (s.private, s.unpriv, s.chroot),
            (Some(false), None, Some(true))
        );
        assert_eq!(
            s.wakeup,
            Some(Wakeup {
                seconds: 60,
                after_first_use: false
            })
        );
        assert_eq!(s.maxproc, Some(1));
        assert_eq!(s.endpoint, None);
        let s = one("tlsmgr unix - - y 1000? 1 tlsmgr\n");
        assert_eq!(
            s.wakeup,
            Some(Wakeup {
                seconds: 1000,
                after_first_use: true
            })
        );
        let s = one("postlog unix-dgram n - n - 1 postlogd\n");
        assert_eq!(s.kind, ServiceKind::UnixDgram);
        let s = one("x fifo - - - - - x\n");
        assert_eq!(
            (s.kind, s.wakeup, s.maxproc),
            (ServiceKind::Fifo, None, None)
        );
    }

    #[test]
    fn overrides_and_arguments() {
        let s = one(concat!(
            "submission inet n - y - - smtpd\n",
            "  -o syslog_name=postfix/submission\n",
            "  -o { smtpd_tls_security_level = encrypt }\n",
            "  -o {smtpd_banner = a b c }\n",
            "  -o\n  z=w -o{y=1}\n",
            "  -v { arg with space } plain -o not_an_override=1\n",
        ));
        assert_eq!(
            s.overrides,
            [
                ("syslog_name".to_string(), "postfix/submission".to_string()),
                (
                    "smtpd_tls_security_level".to_string(),
                    "encrypt".to_string()
                ),
                ("smtpd_banner".to_string(), "a b c".to_string()),
                ("z".to_string(), "w".to_string()),
                ("y".to_string(), "1".to_string()),
            ]
        );
        assert_eq!(
            s.args,
            ["-v", "arg with space", "plain", "-o", "not_an_override=1"]
        );
        assert_eq!(
            s.to_postconf_line(),
            "submission inet  n       -       y       -       -       smtpd -o syslog_name=postfix/submission -o smtpd_tls_security_level=encrypt -o {smtpd_banner=a b c} -o z=w -o y=1 -v arg with space plain -o not_an_override=1"
        );
        let s = one("maildrop unix - n n - - pipe\n  flags=DRXhu user=vmail argv=/usr/bin/maildrop -d ${recipient} -o x=y\n");
        assert!(s.overrides.is_empty());
        assert_eq!(s.args.last().map(String::as_str), Some("x=y"));
        let s = one("a unix - - - - - cmd -n name -o p=q\n");
        assert_eq!(s.args, ["-n", "name"]);
        assert_eq!(s.overrides, [("p".to_string(), "q".to_string())]);
    }

    #[test]
    fn endpoints() {
        let services = parse_services(
            "smtp 25/tcp mail\nsmtp 25/udp\nmysvc\t2600/tcp alias1 # comment\n# x 1/tcp\n",
        );
        let cases = [
            ("smtp", Ok((None, 25))),
            ("mail", Ok((None, 25))),
            ("2525", Ok((None, 2525))),
            ("127.0.0.1:2525", Ok((Some("127.0.0.1"), 2525))),
            ("[::1]:2525", Ok((Some("::1"), 2525))),
            ("::1:smtp", Ok((Some("::1"), 25))),
            ("mx.example:submission", Ok((Some("mx.example"), 587))),
            ("0.0.0.0:smtps", Ok((Some("0.0.0.0"), 465))),
            ("submissions", Ok((None, 465))),
            ("alias1", Ok((None, 2600))),
            (":25", Ok((None, 25))),
            ("nosuchservice", Err("unknown service: nosuchservice/tcp")),
            ("host:0", Err("unknown service: 0/tcp")),
            ("70000", Err("unknown service: 70000/tcp")),
            ("[::1]", Err("missing port in service name \"[::1]\"")),
            ("[::1:25", Err("missing ']' in service name \"[::1:25\"")),
        ];
        for (name, want) in cases {
            let got = parse_endpoint_with(name, &services);
            let got = got
                .as_ref()
                .map(|e| (e.host.as_deref(), e.port))
                .map_err(String::as_str);
            assert_eq!(got, want, "{name:?}");
        }
    }

    #[test]
    fn bad_lines_are_errors_naming_file_and_line() {
        let cases = [
            ("bad inet n\n", "/m/master.cf, line 1: bad field count"),
            ("bad2 foo n - - - - x\n", "/m/master.cf, line 1: invalid type field \"foo\" in \"bad2 foo n - - - - x\""),
            ("b3 unix q - - - - x\n", "/m/master.cf, line 1: invalid private field \"q\" in \"b3 unix q - - - - x\""),
            ("b3 unix yes - - - - x\n", "/m/master.cf, line 1: invalid private field \"yes\" in \"b3 unix yes - - - - x\""),
            ("b4 unix - - - abc - x\n", "/m/master.cf, line 1: invalid wakeup field \"abc\" in \"b4 unix - - - abc - x\""),
            ("b5 unix - - - - -5 x\n", "/m/master.cf, line 1: invalid process_limit field \"-5\" in \"b5 unix - - - - -5 x\""),
            ("smtp inet - - - - - smtpd -o { foo }\n", "/m/master.cf, line 1: missing '=' after attribute name: \"foo\""),
            ("smtp inet - - - - - smtpd -o =bar\n", "/m/master.cf, line 1: missing attribute name: \"=bar\""),
            ("smtp inet - - - - - smtpd -o\n", "/m/master.cf, line 1: option -o requires a name=value argument"),
            ("smtp inet - - - - - smtpd { foo\n", "/m/master.cf, line 1: missing '}' in \"{ foo\""),
            ("\n# c\nnosuch inet - - - - - smtpd\n", "/m/master.cf, line 3: unknown service: nosuch/tcp"),
        ];
        for (text, want) in cases {
            let (svcs, errs) = parse_with(text, Path::new("/m/master.cf"), &no_services());
            assert!(svcs.is_empty(), "{text:?}");
            let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
            assert_eq!(got, [want], "{text:?}");
        }
    }

    #[test]
    fn later_definition_wins_and_good_lines_survive_bad_ones() {
        let text = "smtp inet n - y - - smtpd\nbroken unix\n2525 inet n - n - - smtpd\nsmtp inet n - y - - smtpd -v\n";
        let (svcs, errs) = parse_with(text, Path::new("m"), &no_services());
        assert_eq!(errs.len(), 1);
        let names: Vec<(&str, usize)> = svcs.iter().map(|s| (s.name.as_str(), s.line)).collect();
        assert_eq!(names, [("2525", 3), ("smtp", 4)]);
        assert_eq!(svcs[1].args, ["-v"]);
    }

    #[test]
    fn load_requires_the_file() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert!(load(dir.path()).is_err());
        std::fs::write(dir.path().join("master.cf"), "2525 inet n - n - - smtpd\n").expect("write");
        let svcs = load(dir.path()).expect("loads");
        assert_eq!(
            svcs[0].endpoint,
            Some(InetEndpoint {
                host: None,
                port: 2525
            })
        );
    }
}
