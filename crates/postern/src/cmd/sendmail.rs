//! sendmail(1): the Sendmail-compatible submission interface.
//!
//! Reads a message from standard input (to EOF, or to a line with a single `.` unless `-i` or
//! `-oi`), and drops it into `maildrop/` as a queue file, then pokes pickup. It works whether
//! or not the daemon runs, and exits 0 only once the file and its directory entry are on disk.
//!
//! Flags as Postfix's sendmail: `-f`/`-r` sender, `-F` full name, `-t` (recipients also from
//! To/Cc/Bcc, which cleanup extracts; Bcc is removed), `-i`/`-oi`, `-N` `-R` `-V` (DSN), `-B`,
//! `-C` (configuration), `-bp` (mailq), `-bi`/`-I` (newaliases), `-bd` (postfix start), `-q`
//! (flush). The legacy flags Postfix ignores (`-o*`, `-odi`, `-oem`, `-e*`, `-m`, `-n`, `-h`,
//! `-L`, `-U`, `-v`, `-X`, ...) are accepted and ignored. A malformed address exits EX_NOUSER
//! with nothing queued; a queue that cannot be written exits EX_TEMPFAIL.

use std::io::Read;
use std::path::PathBuf;
use std::time::SystemTime;

use queue::{notify, DirSync, Envelope, NewQueueFile, Queue, QueueName, Recipient};

use crate::getopt::{getopt, Opt};
use crate::sysexits::*;
use crate::{fatal, load_config, warn};

const PROG: &str = "sendmail";
/// Postfix's sendmail option string (src/sendmail/sendmail.c), `-q` handled separately.
const SPEC: &str = "A:B:C:F:GIL:N:O:R:UV:X:b:ce:f:h:imno:p:r:tvx";

#[derive(Debug, Default)]
struct Options {
    mode: Mode,
    config: Option<PathBuf>,
    sender: Option<String>,
    full_name: Option<String>,
    extract: bool,
    dot_is_eof: bool,
    notify: Option<String>,
    ret: Option<String>,
    envid: Option<String>,
    body_type: Option<String>,
    recipients: Vec<String>,
}

#[derive(Debug, Default, PartialEq, Eq)]
enum Mode {
    #[default]
    Enqueue,
    Mailq,
    Newaliases,
    Daemon,
    Flush,
    Smtp,
    Verify,
}

/// Split out `-q...` (which takes an optional attached value) before getopt sees it.
fn take_q(args: &[String]) -> (Vec<String>, Option<String>) {
    let mut rest = Vec::new();
    let mut q = None;
    let mut options_done = false;
    for a in args {
        if !options_done && a == "--" {
            options_done = true;
            rest.push(a.clone());
        } else if !options_done && a.starts_with("-q") {
            q = Some(a[2..].to_string());
        } else {
            rest.push(a.clone());
        }
    }
    (rest, q)
}

fn parse(args: &[String]) -> Result<Options, i32> {
    let (args, q) = take_q(args);
    let (opts, operands) =
        getopt(&args, SPEC).map_err(|e| fatal(PROG, EX_USAGE, format!("usage: {e}")))?;
    let mut o = Options {
        dot_is_eof: true,
        recipients: operands,
        ..Options::default()
    };
    if let Some(q) = q {
        o.mode = Mode::Flush;
        let _ = q; // -qinterval is ignored; -qR/-qI flush everything here
    }
    for opt in opts {
        match opt {
            Opt::Arg('B', v) => o.body_type = Some(v.to_ascii_uppercase()),
            Opt::Arg('C', v) => {
                let p = PathBuf::from(&v);
                // -C takes a file (main.cf) or a directory.
                o.config = Some(if p.is_dir() {
                    p
                } else {
                    p.parent().map(|d| d.to_path_buf()).unwrap_or(p)
                });
            }
            Opt::Arg('F', v) => o.full_name = Some(v),
            Opt::Flag('I') => o.mode = Mode::Newaliases,
            Opt::Arg('N', v) => o.notify = Some(v),
            Opt::Arg('R', v) => o.ret = Some(v),
            Opt::Arg('V', v) => o.envid = Some(v),
            Opt::Arg('b', v) => {
                o.mode = match v.chars().next() {
                    Some('m') => Mode::Enqueue,
                    Some('p') => Mode::Mailq,
                    Some('i') => Mode::Newaliases,
                    Some('d') | Some('l') => Mode::Daemon,
                    Some('s') => Mode::Smtp,
                    Some('v') => Mode::Verify,
                    Some('h') | Some('H') => o.mode,
                    _ => return Err(fatal(PROG, EX_USAGE, format!("unsupported: -b{v}"))),
                }
            }
            Opt::Arg('f', v) | Opt::Arg('r', v) => o.sender = Some(v),
            Opt::Flag('i') => o.dot_is_eof = false,
            Opt::Arg('o', v) if v == "i" => o.dot_is_eof = false,
            // -oA, -od*, -oe*, -om, -o7, -o8 and the other -o options are ignored, as in Postfix.
            Opt::Flag('t') => o.extract = true,
            _ => {} // accepted and ignored for compatibility
        }
    }
    Ok(o)
}

/// DSN NOTIFY bits from `-N never|success,failure,delay`.
fn notify_bits(v: &str) -> Result<u8, String> {
    let mut bits = 0;
    for word in v.split(',').map(|w| w.trim().to_ascii_lowercase()) {
        bits |= match word.as_str() {
            "never" => notify::NEVER,
            "success" => notify::SUCCESS,
            "failure" => notify::FAILURE,
            "delay" => notify::DELAY,
            _ => return Err(format!("bad -N option value: {v}")),
        };
    }
    if bits & notify::NEVER != 0 && bits != notify::NEVER {
        return Err(format!("bad -N option value: {v}"));
    }
    Ok(bits)
}

/// Parse each command-line recipient as an RFC 822 address list (some programs pass
/// `"a@x, b@y"` or `Name <a@x>`), and validate every address.
fn recipients(args: &[String], allow_utf8: bool) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for a in args {
        if a.chars().any(|c| c.is_control()) {
            return Err(format!(
                "bad address syntax: {}: control character in address",
                a.escape_debug()
            ));
        }
        // A plain address must parse as one; list syntax (commas, `Name <addr>`, comments) is
        // only taken where the argument uses it, so nothing is silently dropped.
        if !a.contains([',', '<', '(']) {
            let addr = smtp::address::parse_envelope(a, allow_utf8)
                .map_err(|e| format!("bad address syntax: {a}: {e}"))?;
            if addr.is_empty() {
                return Err(format!("bad address syntax: {a}"));
            }
            out.push(addr);
            continue;
        }
        let list = smtp::address::parse_address_list(a);
        if list.is_empty() {
            return Err(format!("bad address syntax: {a}"));
        }
        for mb in list {
            let addr = smtp::address::parse_envelope(&mb.address, allow_utf8)
                .map_err(|e| format!("bad address syntax: {}: {e}", mb.address))?;
            if addr.is_empty() {
                return Err(format!("bad address syntax: {a}"));
            }
            out.push(addr);
        }
    }
    Ok(out)
}

fn read_message(dot_is_eof: bool, limit: u64) -> Result<Vec<u8>, i32> {
    let mut input = Vec::new();
    let stdin = std::io::stdin();
    let mut lock = stdin.lock();
    if let Err(e) = (&mut lock)
        .take(limit.saturating_add(1))
        .read_to_end(&mut input)
    {
        return Err(fatal(PROG, EX_DATAERR, format!("error reading input: {e}")));
    }
    if limit > 0 && input.len() as u64 > limit {
        return Err(fatal(PROG, EX_DATAERR, "message file too big"));
    }
    if dot_is_eof {
        let mut pos = 0;
        while pos < input.len() {
            let end = memchr_nl(&input[pos..]).map_or(input.len(), |p| pos + p + 1);
            let line = &input[pos..end];
            let bare = line.strip_suffix(b"\n").unwrap_or(line);
            let bare = bare.strip_suffix(b"\r").unwrap_or(bare);
            if bare == b"." {
                input.truncate(pos);
                break;
            }
            pos = end;
        }
    }
    Ok(input)
}

fn memchr_nl(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

fn login_name() -> Option<String> {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(|u| u.name)
}

/// Postfix's fullname(): `$NAME`, else the first field of the user's GECOS entry.
fn default_full_name() -> Option<String> {
    let clean = |n: String| (!n.is_empty() && !n.contains(['\r', '\n', '\0'])).then_some(n);
    if let Ok(n) = std::env::var("NAME") {
        return clean(n);
    }
    let user = nix::unistd::User::from_uid(nix::unistd::getuid())
        .ok()
        .flatten()?;
    let gecos = user.gecos.to_string_lossy().into_owned();
    let first = gecos.split(',').next().unwrap_or("").trim().to_string();
    // `&` in GECOS stands for the login name, capitalized.
    let mut name = user.name.clone();
    if let Some(c) = name.get(..1) {
        name = c.to_uppercase() + &name[1..];
    }
    clean(first.replace('&', &name))
}

fn has_header_recipients(content: &[u8]) -> bool {
    let parsed = smtp::header::parse(content);
    let resent = parsed
        .headers
        .iter()
        .any(|h| h.is("resent-to") || h.is("resent-cc") || h.is("resent-bcc"));
    let names: &[&str] = if resent {
        &["resent-to", "resent-cc", "resent-bcc"]
    } else {
        &["to", "cc", "bcc"]
    };
    parsed
        .headers
        .iter()
        .filter(|h| names.iter().any(|n| h.is(n)))
        .any(|h| {
            smtp::address::parse_address_list(&h.value())
                .iter()
                .any(|m| !m.address.is_empty())
        })
}

pub fn main(args: &[String]) -> i32 {
    let o = match parse(args) {
        Ok(o) => o,
        Err(code) => return code,
    };
    match o.mode {
        Mode::Mailq => {
            let mut a = vec!["-p".to_string()];
            if let Some(c) = &o.config {
                a.extend(["-c".to_string(), c.to_string_lossy().into_owned()]);
            }
            return super::postqueue::main("mailq", &a);
        }
        Mode::Newaliases => {
            let a = o
                .config
                .iter()
                .flat_map(|c| ["-c".to_string(), c.to_string_lossy().into_owned()])
                .collect::<Vec<_>>();
            return newaliases(&a);
        }
        Mode::Flush => {
            let mut a = vec!["-f".to_string()];
            if let Some(c) = &o.config {
                a.extend(["-c".to_string(), c.to_string_lossy().into_owned()]);
            }
            return super::postqueue::main("sendmail", &a);
        }
        Mode::Daemon => {
            let mut a = Vec::new();
            if let Some(c) = &o.config {
                a.extend(["-c".to_string(), c.to_string_lossy().into_owned()]);
            }
            a.push("start".to_string());
            return super::postfix::main(&a);
        }
        Mode::Smtp => return smtp_on_stdin(o.config.as_deref()),
        Mode::Verify => {
            return fatal(
                PROG,
                EX_UNAVAILABLE,
                "-bv (address verification) is not available in this version of Postern",
            )
        }
        Mode::Enqueue => {}
    }
    let cfg = match load_config(PROG, o.config.as_deref()) {
        Ok(c) => c,
        Err(_) => return EX_CONFIG,
    };
    crate::init_cli_logging(&cfg);
    let allow_utf8 = cfg.bool("smtputf8_enable");
    let sender = match &o.sender {
        Some(s) => match smtp::address::parse_envelope(s, allow_utf8) {
            Ok(a) => a,
            Err(e) => {
                return fatal(
                    PROG,
                    EX_NOUSER,
                    format!("bad sender address syntax: {s}: {e}"),
                )
            }
        },
        None => match login_name() {
            Some(n) => n,
            None => {
                return fatal(
                    PROG,
                    EX_OSERR,
                    format!("no login name found for user ID {}", nix::unistd::getuid()),
                )
            }
        },
    };
    let rcpts = match recipients(&o.recipients, allow_utf8) {
        Ok(r) => r,
        Err(e) => return fatal(PROG, EX_NOUSER, e),
    };
    let who = format!("{sender}({})", nix::unistd::getuid());
    if rcpts.is_empty() && !o.extract {
        return fatal(PROG, EX_USAGE, format!("{who}: Recipient addresses must be specified on the command line or via the -t option"));
    }
    // As Postfix's sendmail: a bad -N or -R value is a warning and is ignored.
    let notify = match o.notify.as_deref().map(notify_bits) {
        None => 0,
        Some(Ok(b)) => b,
        Some(Err(_)) => {
            warn(PROG, "bad -N option value -- ignored");
            0
        }
    };
    let ret = o
        .ret
        .as_ref()
        .filter(|r| r.eq_ignore_ascii_case("hdrs") || r.eq_ignore_ascii_case("full"));
    if o.ret.is_some() && ret.is_none() {
        warn(PROG, "bad -R option value -- ignored");
    }
    if let Some(b) = &o.body_type {
        if b != "7BIT" && b != "8BITMIME" {
            return fatal(PROG, EX_USAGE, format!("bad -B option value: {b}"));
        }
    }
    for field in [&o.full_name, &o.envid].into_iter().flatten() {
        if field.contains(['\0', '\r', '\n']) {
            return fatal(
                PROG,
                EX_USAGE,
                "control characters in a command-line argument",
            );
        }
    }
    let content = match read_message(o.dot_is_eof, cfg.size("message_size_limit")) {
        Ok(c) => c,
        Err(code) => return code,
    };
    if o.extract && rcpts.is_empty() && !has_header_recipients(&content) {
        return fatal(
            PROG,
            EX_USAGE,
            format!("{who}: No recipient addresses found in message header"),
        );
    }
    let mut attrs = vec![("rewrite_context".to_string(), "local".to_string())];
    if o.extract {
        attrs.push(("extract_recipients".into(), "yes".into()));
    }
    if let Some(r) = ret {
        attrs.push(("dsn_ret".into(), r.to_ascii_uppercase()));
    }
    if let Some(v) = &o.envid {
        attrs.push(("dsn_envid".into(), v.clone()));
    }
    if let Some(b) = &o.body_type {
        attrs.push(("body_type".into(), b.clone()));
    }
    let full_name = o.full_name.clone().or_else(default_full_name);
    let env = Envelope {
        arrival: SystemTime::now(),
        sender: sender.clone(),
        full_name,
        attrs,
        recipients: rcpts
            .into_iter()
            .map(|a| Recipient {
                notify,
                ..Recipient::new(a)
            })
            .collect(),
    };
    let queue = Queue::new(cfg.path("queue_directory"));
    match drop_file(&queue, &env, &content) {
        Ok(_) => {
            daemon::master::trigger(&queue, "pickup", b"W");
            EX_OK
        }
        Err(e) => fatal(
            PROG,
            EX_TEMPFAIL,
            format!("{who}: error writing queue file: {e}"),
        ),
    }
}

fn drop_file(queue: &Queue, env: &Envelope, content: &[u8]) -> std::io::Result<String> {
    let dir = queue.dir(QueueName::Maildrop);
    if !dir.is_dir() && !nix::unistd::geteuid().is_root() {
        // A fresh single-user instance: create the queue as the daemon would.
        queue.setup(None)?;
    }
    let mut f = NewQueueFile::create(&dir, 0o640)?;
    f.write_all(&queue::record::encode(env, content))?;
    let id = f.id().to_string();
    f.commit(&DirSync::new(&dir))?;
    Ok(id)
}

/// `sendmail -bs`: an SMTP session on standard input and output, as the submitting user.
/// Accepted messages go into maildrop/, like any local submission; relay restrictions do not
/// apply (Postfix's stand-alone mode).
fn smtp_on_stdin(config: Option<&std::path::Path>) -> i32 {
    let cfg = match load_config(PROG, config) {
        Ok(c) => c,
        Err(_) => return EX_CONFIG,
    };
    crate::init_cli_logging(&cfg);
    let queue = Queue::new(cfg.path("queue_directory"));
    if !queue.dir(QueueName::Maildrop).is_dir() && !nix::unistd::geteuid().is_root() {
        if let Err(e) = queue.setup(None) {
            return fatal(PROG, EX_TEMPFAIL, format!("queue directory: {e}"));
        }
    }
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => return fatal(PROG, EX_OSERR, e),
    };
    let settings = std::sync::Arc::new(daemon::smtpd::Settings::new(
        &cfg,
        "sendmail",
        None,
        &Default::default(),
    ));
    let runtime = std::sync::Arc::new(daemon::runtime::Runtime::new(
        cfg,
        std::sync::Arc::new(daemon::local::exec::InProcess),
        false,
    ));
    let uid = nix::unistd::getuid().as_raw();
    rt.block_on(async move {
        let io: Box<dyn daemon::smtpd::session::Io> =
            Box::new(tokio::io::join(tokio::io::stdin(), tokio::io::stdout()));
        let client = daemon::smtpd::session::Client {
            addr: None,
            port: 0,
            name: "localhost".to_string(),
        };
        daemon::smtpd::session::serve(
            io,
            client,
            settings,
            runtime,
            daemon::smtpd::session::Start::Normal,
            daemon::smtpd::session::Sink::Maildrop { uid },
        )
        .await;
    });
    EX_OK
}

/// newaliases(1): postalias on every entry of `alias_database`.
pub fn newaliases(args: &[String]) -> i32 {
    let (opts, _) = match getopt(args, "c:oA:v") {
        Ok(x) => x,
        Err(e) => return fatal("newaliases", EX_USAGE, format!("usage: {e}")),
    };
    let dir = opts.iter().find_map(|o| match o {
        Opt::Arg('c', d) => Some(PathBuf::from(d)),
        _ => None,
    });
    let cfg = match load_config("newaliases", dir.as_deref()) {
        Ok(c) => c,
        Err(_) => return EX_CONFIG,
    };
    let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
    let dbs: Vec<String> = cfg
        .list("alias_database")
        .iter()
        .map(|spec| tables::absolute_spec(spec, cfg.config_directory()))
        .collect();
    if dbs.is_empty() {
        warn("newaliases", "alias_database is empty: nothing to do");
    }
    tables::newaliases(&dbs, &mut out, &mut err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(s: &[&str]) -> Vec<String> {
        s.iter().map(|x| x.to_string()).collect()
    }

    #[test]
    fn callers_flags_parse() {
        // cronie, Debian cron, PHP mail(), mailx, git send-email.
        let o = parse(&v(&[
            "-FCronDaemon",
            "-i",
            "-odi",
            "-oem",
            "-oi",
            "-t",
            "-f",
            "root",
        ]))
        .unwrap();
        assert!(o.extract && !o.dot_is_eof);
        assert_eq!(o.full_name.as_deref(), Some("CronDaemon"));
        assert_eq!(o.sender.as_deref(), Some("root"));
        let o = parse(&v(&["-FCronDaemon", "-i", "-B8BITMIME", "-oem", "alice"])).unwrap();
        assert_eq!(o.recipients, v(&["alice"]));
        assert_eq!(o.body_type.as_deref(), Some("8BITMIME"));
        let o = parse(&v(&["-t", "-i", "-fwww@example.com"])).unwrap();
        assert_eq!(o.sender.as_deref(), Some("www@example.com"));
        let o = parse(&v(&["-oi", "-f", "root@host", "-t"])).unwrap();
        assert!(o.extract);
        let o = parse(&v(&["-i", "a@x", "b@y"])).unwrap();
        assert_eq!(o.recipients.len(), 2);
        assert_eq!(parse(&v(&["-bp"])).unwrap().mode, Mode::Mailq);
        assert_eq!(parse(&v(&["-q"])).unwrap().mode, Mode::Flush);
        assert_eq!(parse(&v(&["-q30m"])).unwrap().mode, Mode::Flush);
        assert_eq!(parse(&v(&["-I"])).unwrap().mode, Mode::Newaliases);
        let o = parse(&v(&[
            "-N",
            "success,delay",
            "-R",
            "hdrs",
            "-V",
            "env1",
            "x",
        ]))
        .unwrap();
        assert_eq!(
            notify_bits(o.notify.as_deref().unwrap()).unwrap(),
            notify::SUCCESS | notify::DELAY
        );
        assert!(notify_bits("never,success").is_err());
        assert!(parse(&v(&[
            "-m", "-n", "-U", "-v", "-h", "5", "-L", "x", "-Am", "-em", "-X", "/tmp/log", "u"
        ]))
        .is_ok());
    }

    #[test]
    fn recipient_lists() {
        assert_eq!(
            recipients(&v(&["a@x, Bob <b@y>"]), false).unwrap(),
            v(&["a@x", "b@y"])
        );
        assert!(recipients(&v(&["-oops@x"]), false).is_err());
        assert!(recipients(&v(&["a\r\n@x"]), false).is_err());
    }
}
