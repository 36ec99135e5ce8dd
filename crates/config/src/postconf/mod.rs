//! The `postconf` command (postconf(1)).
//!
//! Owns argument handling and output of the supported modes: no flags (every
//! parameter, sorted, `name = value`, values unexpanded), parameter names as
//! arguments (those only; an unknown name gets `postconf: warning: NAME:
//! unknown parameter`), `-n` (only what main.cf sets, plus
//! `config_directory` as Postfix prints it), `-d` (defaults), `-h` (values
//! only), `-H` (names only), `-x` (expanded values), `-c DIR` (else
//! `$MAIL_CONFIG`, else `/etc/postfix`), `-o name=value` (overrides), `-e
//! name=value ...` (also implied by any `name=value` argument), `-X name`,
//! `-# name` (see `edit.rs`), `-m` (table types), `-l` (lock types), `-M
//! [service[/type]...]` (master.cf services, one per line, as Postfix
//! prints them). Values are printed with runs of whitespace collapsed to one
//! space, as Postfix prints them. `-f` and `-v` are accepted and ignored.
//!
//! Failure: messages go to `err` prefixed `postconf: fatal: ` or `postconf:
//! warning: `; the return value is a sysexits code: 0 success, 64 usage, 66
//! main.cf or master.cf missing, 73/74 cannot write, 78 configuration error.
//! Like Postfix's postconf, display modes show values that do not validate
//! (each problem is a warning) so that `postconf -e` can repair them; a
//! malformed line is fatal.

mod edit;

use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};

use crate::error::ConfigError;
use crate::expand::is_space;
use crate::main_cf::MainCf;
use crate::master_cf;
use edit::{EditError, EditOp};

const EX_OK: i32 = 0;
const EX_USAGE: i32 = 64;
const EX_NOINPUT: i32 = 66;
const EX_CANTCREAT: i32 = 73;
const EX_IOERR: i32 = 74;
const EX_CONFIG: i32 = 78;

/// The lookup table types Postern supports.
const TABLE_TYPES: &[&str] = &[
    "hash", "inline", "lmdb", "pcre", "regexp", "static", "texthash",
];

/// The mailbox locking methods (`-l`), in Postfix's order.
const LOCK_TYPES: &[&str] = &["flock", "fcntl", "dotlock"];

const USAGE: &str = "usage: postconf [-c config_dir] [-d (parameter defaults)] [-e (edit configuration)] [-h (no names)] [-H (no values)] [-l (lock types)] [-m (map types)] [-M (master.cf)] [-n (non-default parameters)] [-o name=value (override parameter value)] [-x (expand parameter values)] [-X (exclude)] [-# (comment-out)] [name...]";

#[derive(Debug, Default)]
struct Opts {
    config_dir: Option<PathBuf>,
    defaults: bool,
    non_default: bool,
    edit: bool,
    remove: bool,
    comment: bool,
    hide_names: bool,
    hide_values: bool,
    expand: bool,
    master: bool,
    maps: bool,
    locks: bool,
    overrides: Vec<(String, String)>,
    operands: Vec<String>,
}

/// A message for `err` and the exit code.
struct Fatal {
    message: String,
    code: i32,
}

fn fatal(code: i32, message: impl Into<String>) -> Fatal {
    Fatal {
        message: message.into(),
        code,
    }
}

/// Output to `out` failed (a closed pipe, a full disk).
fn io_fatal(e: &std::io::Error) -> Fatal {
    fatal(
        EX_IOERR,
        format!("write error: {}", crate::main_cf::io_reason(e)),
    )
}

/// Runs postconf with `args` (without the program name); returns the exit status.
pub fn main(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> i32 {
    match run(args, out, err) {
        Ok(()) => EX_OK,
        Err(f) => {
            let _ = writeln!(err, "postconf: fatal: {}", f.message);
            if f.code == EX_USAGE && f.message.starts_with("invalid option") {
                let _ = writeln!(err, "postconf: fatal: {USAGE}");
            }
            f.code
        }
    }
}

fn parse_args(args: &[String]) -> Result<Opts, Fatal> {
    let mut o = Opts::default();
    let mut k = 0;
    let mut options_done = false;
    while k < args.len() {
        let arg = &args[k];
        k += 1;
        if options_done || arg.len() < 2 || !arg.starts_with('-') {
            o.operands.push(arg.clone());
            continue;
        }
        if arg == "--" {
            options_done = true;
            continue;
        }
        let flags: Vec<char> = arg[1..].chars().collect();
        let mut j = 0;
        while j < flags.len() {
            let c = flags[j];
            j += 1;
            match c {
                'c' | 'o' => {
                    let value: String = if j < flags.len() {
                        let v = flags[j..].iter().collect();
                        j = flags.len();
                        v
                    } else if k < args.len() {
                        k += 1;
                        args[k - 1].clone()
                    } else {
                        return Err(fatal(
                            EX_USAGE,
                            format!("invalid option -- '{c}' requires an argument"),
                        ));
                    };
                    if c == 'c' {
                        o.config_dir = Some(PathBuf::from(value));
                    } else {
                        let (name, v) = split_assignment(&value)?;
                        o.overrides.push((name, v));
                    }
                }
                'd' => o.defaults = true,
                'e' => o.edit = true,
                'h' => o.hide_names = true,
                'H' => o.hide_values = true,
                'l' => o.locks = true,
                'm' => o.maps = true,
                'M' => o.master = true,
                'n' => o.non_default = true,
                'x' => o.expand = true,
                'X' => o.remove = true,
                '#' => o.comment = true,
                'f' | 'p' | 'v' => {}
                'a' | 'A' | 'b' | 't' | 'T' | 'F' | 'P' | 'C' => {
                    return Err(fatal(
                        EX_USAGE,
                        format!("option -{c} is not supported by Postern"),
                    ));
                }
                _ => return Err(fatal(EX_USAGE, format!("invalid option -- '{c}'"))),
            }
        }
    }
    Ok(o)
}

/// Splits a command-line `name=value` (whitespace around `=` ignored).
fn split_assignment(arg: &str) -> Result<(String, String), Fatal> {
    let (name, value) = crate::syntax::split_name_value(
        arg.trim_start_matches(|c: char| c.is_ascii() && is_space(c as u8)),
    )
    .map_err(|m| fatal(EX_USAGE, m))?;
    if value.contains('\n') {
        return Err(fatal(
            EX_USAGE,
            format!("parameter value must not contain a newline: \"{arg}\""),
        ));
    }
    Ok((name.to_string(), value.to_string()))
}

fn run(args: &[String], out: &mut dyn Write, err: &mut dyn Write) -> Result<(), Fatal> {
    let mut o = parse_args(args)?;
    if !o.edit && !o.remove && !o.comment && !o.master && o.operands.iter().any(|a| a.contains('='))
    {
        o.edit = true;
    }
    let edits = [o.edit, o.remove, o.comment].iter().filter(|b| **b).count();
    if edits > 1 {
        return Err(fatal(EX_USAGE, "specify one of -e, -X, -#"));
    }
    if o.defaults && o.non_default {
        return Err(fatal(EX_USAGE, "specify one of -d -n"));
    }
    if o.hide_names && o.hide_values {
        return Err(fatal(EX_USAGE, "specify one of -h -H"));
    }
    if o.master && edits > 0 {
        return Err(fatal(
            EX_USAGE,
            "editing master.cf (-M with -e, -X or -#) is not supported by Postern",
        ));
    }
    let config_dir = crate::config_directory(o.config_dir.as_deref());

    if o.maps {
        return print_lines(out, TABLE_TYPES);
    }
    if o.locks {
        return print_lines(out, LOCK_TYPES);
    }
    if edits > 0 {
        return run_edit(&o, &config_dir, err);
    }
    if o.master {
        return run_master(&o, &config_dir, out);
    }
    run_display(&o, &config_dir, out, err)
}

fn print_lines(out: &mut dyn Write, lines: &[&str]) -> Result<(), Fatal> {
    for l in lines {
        writeln!(out, "{l}").map_err(|e| io_fatal(&e))?;
    }
    Ok(())
}

fn run_edit(o: &Opts, config_dir: &Path, err: &mut dyn Write) -> Result<(), Fatal> {
    let op = if o.edit {
        if o.operands.is_empty() {
            return Err(fatal(EX_USAGE, "-e requires name=value argument"));
        }
        let pairs = o
            .operands
            .iter()
            .map(|a| split_assignment(a))
            .collect::<Result<Vec<_>, _>>()?;
        EditOp::Set(pairs)
    } else {
        let flag = if o.remove { "-X" } else { "-#" };
        if o.operands.is_empty() {
            return Err(fatal(
                EX_USAGE,
                format!("{flag} requires parameter name argument"),
            ));
        }
        if let Some(bad) = o.operands.iter().find(|a| a.contains('=')) {
            return Err(fatal(
                EX_USAGE,
                format!("{flag} requires parameter names, not name=value: \"{bad}\""),
            ));
        }
        if o.remove {
            EditOp::Remove(o.operands.clone())
        } else {
            EditOp::Comment(o.operands.clone())
        }
    };
    let path = config_dir.join("main.cf");
    match edit::edit_file(&path, &op) {
        Ok(warnings) => {
            for w in warnings {
                let _ = writeln!(err, "postconf: warning: {w}");
            }
            Ok(())
        }
        Err(
            e @ EditError::Open {
                not_found: true, ..
            },
        ) => Err(fatal(EX_NOINPUT, e.to_string())),
        Err(e @ EditError::Open { .. }) => Err(fatal(EX_IOERR, e.to_string())),
        Err(e @ EditError::Write { .. }) => Err(fatal(EX_CANTCREAT, e.to_string())),
    }
}

fn run_master(o: &Opts, config_dir: &Path, out: &mut dyn Write) -> Result<(), Fatal> {
    let path = config_dir.join("master.cf");
    let bytes = std::fs::read(&path).map_err(|e| {
        let code = if e.kind() == std::io::ErrorKind::NotFound {
            EX_NOINPUT
        } else {
            EX_IOERR
        };
        fatal(
            code,
            format!("open {}: {}", path.display(), crate::main_cf::io_reason(&e)),
        )
    })?;
    let (services, errors) = master_cf::parse(&String::from_utf8_lossy(&bytes), &path);
    if let Some(first) = errors.first() {
        return Err(fatal(EX_CONFIG, first.to_string()));
    }
    for svc in &services {
        let wanted = o.operands.is_empty()
            || o.operands.iter().any(|f| match f.split_once('/') {
                Some((name, kind)) => svc.name == name && svc.kind.as_str() == kind,
                None => svc.name == *f,
            });
        if wanted {
            writeln!(out, "{}", svc.to_postconf_line()).map_err(|e| io_fatal(&e))?;
        }
    }
    Ok(())
}

/// Runs of whitespace collapsed to one space, ends trimmed.
fn collapse(v: &str) -> String {
    v.split(|c: char| c.is_ascii() && is_space(c as u8))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

fn run_display(
    o: &Opts,
    config_dir: &Path,
    out: &mut dyn Write,
    err: &mut dyn Write,
) -> Result<(), Fatal> {
    let (mut cf, mut errors) = if o.defaults {
        MainCf::parse_lenient(
            "",
            &config_dir.join("main.cf"),
            Path::new("/etc/postfix"),
            &[],
        )
    } else {
        MainCf::load_lenient(config_dir).map_err(|e| {
            let code = if e.errors.iter().any(|x| x.message.contains("No such file")) {
                EX_NOINPUT
            } else {
                EX_IOERR
            };
            fatal(code, e.to_string())
        })?
    };
    if !o.overrides.is_empty() {
        let (with, more) = cf.with_overrides_lenient(&o.overrides, Path::new("postconf -o"), 0);
        cf = with;
        errors.retain(|e| e.param.is_none());
        errors.extend(more);
    }
    // A malformed line is fatal, as in Postfix.
    if let Some(syntax) = errors.iter().find(|e| e.param.is_none()) {
        return Err(fatal(EX_CONFIG, syntax.to_string()));
    }
    if !o.defaults {
        for w in cf.warnings() {
            let _ = writeln!(err, "postconf: warning: {w}");
        }
        for e in &errors {
            let _ = writeln!(err, "postconf: warning: {e}");
        }
    }

    let names: Vec<String> = if !o.operands.is_empty() {
        let mut shown = Vec::new();
        for name in &o.operands {
            let wanted = if o.non_default {
                cf.main_cf_settings().any(|(n, _)| n == name) && cf.is_defined(name)
            } else {
                cf.is_defined(name)
            };
            if wanted {
                shown.push(name.clone());
            } else if !cf.is_defined(name) {
                let _ = writeln!(err, "postconf: warning: {name}: unknown parameter");
            }
        }
        shown
    } else if o.non_default {
        let mut set: BTreeSet<String> = cf
            .main_cf_settings()
            .filter(|(n, _)| cf.is_defined(n))
            .map(|(n, _)| n.to_string())
            .collect();
        set.insert("config_directory".to_string());
        set.into_iter().collect()
    } else {
        cf.all_names().into_iter().collect()
    };

    for name in &names {
        let value = if o.expand {
            if cf.expansion_failed(name) {
                return Err(fatal(
                    EX_CONFIG,
                    format!("{}: macro processing error", first_error_for(&errors, name)),
                ));
            }
            cf.str(name)
        } else {
            cf.raw(name)
        };
        let value = collapse(&value);
        let line = if o.hide_values {
            name.clone()
        } else if o.hide_names {
            value
        } else if value.is_empty() {
            format!("{name} =")
        } else {
            format!("{name} = {value}")
        };
        writeln!(out, "{line}").map_err(|e| io_fatal(&e))?;
    }
    Ok(())
}

/// Runs the `-e`, `-X` and `-#` editors over `data` (for [`crate::fuzz_main_cf`]).
pub(crate) fn fuzz_edit(data: &[u8], pairs: &[(String, String)]) {
    let names: Vec<String> = pairs.iter().map(|(n, _)| n.clone()).collect();
    for op in [
        EditOp::Set(pairs.to_vec()),
        EditOp::Remove(names.clone()),
        EditOp::Comment(names),
    ] {
        let _ = edit::edit_text(data, &op, Path::new("/fuzz/main.cf"));
    }
}

/// The error that explains why `name` did not expand (or the name itself).
fn first_error_for(errors: &[ConfigError], name: &str) -> String {
    errors
        .iter()
        .find(|e| e.param.as_deref() == Some(name))
        .or_else(|| errors.first())
        .map_or_else(|| name.to_string(), ToString::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Run {
        code: i32,
        out: String,
        err: String,
    }

    fn postconf(args: &[&str]) -> Run {
        let args: Vec<String> = args.iter().map(|s| s.to_string()).collect();
        let mut out = Vec::new();
        let mut err = Vec::new();
        let code = main(&args, &mut out, &mut err);
        Run {
            code,
            out: String::from_utf8_lossy(&out).into_owned(),
            err: String::from_utf8_lossy(&err).into_owned(),
        }
    }

    fn instance(main_cf: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().expect("tempdir");
        std::fs::write(dir.path().join("main.cf"), main_cf).expect("write main.cf");
        dir
    }

    fn dir_arg(d: &tempfile::TempDir) -> String {
        d.path().display().to_string()
    }

    #[test]
    fn non_default_matches_postfix_on_debian_main_cf() {
        let d = instance(include_str!("../testdata/main.cf.debian"));
        let r = postconf(&["-c", &dir_arg(&d), "-n"]);
        assert_eq!(r.code, 0, "{}", r.err);
        let want = include_str!("../testdata/main.cf.debian.postconf-n").replace(
            "config_directory = /tmp/cfggold",
            &format!("config_directory = {}", dir_arg(&d)),
        );
        assert_eq!(r.out, want);
        assert_eq!(r.err, "");
    }

    #[test]
    fn display_modes() {
        let d = instance("myhostname = mx.example.com\nmydestination = $myhostname,\n   localhost\nfoo = bar\nzz = 1\nmyorigin = $zz.example\n");
        let c = dir_arg(&d);
        let cases: [(&[&str], &str); 9] = [
            (&["myhostname", "mydestination"], "myhostname = mx.example.com\nmydestination = $myhostname, localhost\n"),
            (&["-x", "mydestination", "myorigin"], "mydestination = mx.example.com, localhost\nmyorigin = 1.example\n"),
            (&["-h", "myhostname"], "mx.example.com\n"),
            (&["-H", "myhostname", "relayhost"], "myhostname\nrelayhost\n"),
            (&["relayhost"], "relayhost =\n"),
            (&["-d", "myorigin", "config_directory", "relay_domains"], "myorigin = $myhostname\nconfig_directory = /etc/postfix\nrelay_domains = ${{$compatibility_level} <level {2} ? {$mydestination} : {}}\n"),
            (&["-dx", "relay_domains", "compatibility_level"], "relay_domains =\ncompatibility_level = 3.6\n"),
            (&["-o", "relayhost=[smart]:587", "relayhost"], "relayhost = [smart]:587\n"),
            (&["-n", "zz", "biff"], "zz = 1\n"),
        ];
        for (args, want) in cases {
            let mut all = vec!["-c", c.as_str()];
            all.extend_from_slice(args);
            let r = postconf(&all);
            assert_eq!(r.code, 0, "{args:?}: {}", r.err);
            assert_eq!(r.out, want, "{args:?}");
        }
        let r = postconf(&["-c", &c, "-n"]);
        assert_eq!(
            r.out,
            format!("config_directory = {c}\nmydestination = $myhostname, localhost\nmyhostname = mx.example.com\nmyorigin = $zz.example\nzz = 1\n")
        );
        assert_eq!(
            r.err,
            format!("postconf: warning: {c}/main.cf: unused parameter: foo=bar\n")
        );
        let r = postconf(&["-c", &c, "nosuch", "foo"]);
        assert_eq!(r.out, "");
        assert_eq!(
            r.err,
            format!("postconf: warning: {c}/main.cf: unused parameter: foo=bar\npostconf: warning: nosuch: unknown parameter\npostconf: warning: foo: unknown parameter\n")
        );
    }

    #[test]
    fn all_parameters_sorted_with_defaults() {
        let d = instance("queue_run_delay = abc\n");
        let r = postconf(&["-c", &dir_arg(&d)]);
        assert_eq!(r.code, 0, "{}", r.err);
        let lines: Vec<&str> = r.out.lines().collect();
        assert!(lines.len() > 800);
        // Service-defined parameters come from master.cf, as in Postfix.
        assert!(!lines.iter().any(|l| l.starts_with("bsmtp_time_limit")));
        let mut sorted = lines.clone();
        sorted.sort_unstable();
        assert_eq!(lines, sorted);
        assert!(lines.contains(&"queue_run_delay = abc"));
        assert!(lines.contains(&"alias_maps = hash:/etc/aliases"));
        assert!(lines.contains(&"postern_dns_nameservers ="));
        // Invalid values are shown, with a warning, so that -e can fix them.
        assert!(
            r.err
                .contains("line 1: parameter queue_run_delay: bad time value or unit: abc"),
            "{}",
            r.err
        );
        std::fs::write(
            d.path().join("master.cf"),
            include_str!("../testdata/master.cf.dist"),
        )
        .expect("write");
        let r = postconf(&["-c", &dir_arg(&d)]);
        assert!(r.out.lines().count() > 1000);
        assert!(r.out.contains("\nbsmtp_time_limit = $command_time_limit\n"));
    }

    #[test]
    fn errors_and_exit_codes() {
        let d = instance("badline\n");
        let c = dir_arg(&d);
        let cases: [(&[&str], i32, &str); 7] = [
            (&["-n"], EX_CONFIG, "postconf: fatal: {c}/main.cf, line 1: missing '=' after attribute name: \"badline\"\n"),
            (&["-q"], EX_USAGE, "postconf: fatal: invalid option -- 'q'\n"),
            (&["-d", "-n"], EX_USAGE, "postconf: fatal: specify one of -d -n\n"),
            (&["-e"], EX_USAGE, "postconf: fatal: -e requires name=value argument\n"),
            (&["-e", "noequals"], EX_USAGE, "postconf: fatal: missing '=' after attribute name: \"noequals\"\n"),
            (&["-X", "a=b"], EX_USAGE, "postconf: fatal: -X requires parameter names, not name=value: \"a=b\"\n"),
            (&["-P"], EX_USAGE, "postconf: fatal: option -P is not supported by Postern\n"),
        ];
        for (args, code, want) in cases {
            let mut all = vec!["-c", c.as_str()];
            all.extend_from_slice(args);
            let r = postconf(&all);
            assert_eq!(r.code, code, "{args:?}");
            let first = r.err.lines().next().unwrap_or_default();
            assert_eq!(format!("{first}\n"), want.replace("{c}", &c), "{args:?}");
        }
        let gone = tempfile::tempdir().expect("tempdir");
        let r = postconf(&["-c", &dir_arg(&gone), "-n"]);
        assert_eq!(r.code, EX_NOINPUT);
        assert!(r.err.starts_with("postconf: fatal: "), "{}", r.err);
        let d = instance("mydestination = ${myhostname\n");
        let r = postconf(&["-c", &dir_arg(&d), "-x", "mydestination"]);
        assert_eq!(r.code, EX_CONFIG);
        assert!(r.err.ends_with("macro processing error\n"), "{}", r.err);
    }

    #[test]
    fn edit_preserves_comments_and_order() {
        let d = instance(
            "# keep me\nmyhostname = a.example\n\n# and me\nrelayhost = old\n  # inside\n",
        );
        let c = dir_arg(&d);
        let r = postconf(&[
            "-c",
            &c,
            "-e",
            "relayhost = [new]:25",
            "myorigin=example.com",
        ]);
        assert_eq!(r.code, 0, "{}", r.err);
        let text = std::fs::read_to_string(d.path().join("main.cf")).expect("read");
        assert_eq!(text, "# keep me\nmyhostname = a.example\n\n# and me\nrelayhost = [new]:25\n  # inside\nmyorigin = example.com\n");
        let r = postconf(&["-c", &c, "biff=no"]);
        assert_eq!(r.code, 0, "{}", r.err);
        let r = postconf(&["-c", &c, "-#", "myhostname"]);
        assert_eq!(r.code, 0, "{}", r.err);
        let r = postconf(&["-c", &c, "-X", "relayhost"]);
        assert_eq!(r.code, 0, "{}", r.err);
        let text = std::fs::read_to_string(d.path().join("main.cf")).expect("read");
        assert_eq!(text, "# keep me\n#myhostname = a.example\n\n# and me\n  # inside\nmyorigin = example.com\nbiff = no\n");
        let r = postconf(&["-c", &c, "-h", "biff", "myorigin"]);
        assert_eq!(r.out, "no\nexample.com\n");
    }

    #[test]
    fn edit_repairs_an_invalid_value() {
        let d = instance("queue_run_delay = abc\n");
        let c = dir_arg(&d);
        assert_eq!(postconf(&["-c", &c, "-e", "queue_run_delay=5m"]).code, 0);
        assert!(MainCf::load(d.path()).is_ok());
    }

    #[test]
    fn master_cf_listing() {
        let d = instance("");
        let c = dir_arg(&d);
        let r = postconf(&["-c", &c, "-M"]);
        assert_eq!(r.code, EX_NOINPUT);
        std::fs::write(
            d.path().join("master.cf"),
            include_str!("../testdata/master.cf.dist"),
        )
        .expect("write");
        let r = postconf(&["-c", &c, "-M"]);
        assert_eq!(r.code, 0, "{}", r.err);
        assert_eq!(r.out, include_str!("../testdata/master.cf.dist.postconf-M"));
        let r = postconf(&["-c", &c, "-M", "smtp/inet", "relay"]);
        assert_eq!(
            r.out,
            "smtp       inet  n       -       y       -       -       smtpd\nrelay      unix  -       -       y       -       -       smtp -o syslog_name=postfix/$service_name\n"
        );
        std::fs::write(d.path().join("master.cf"), "smtp inet n\n").expect("write");
        let r = postconf(&["-c", &c, "-M"]);
        assert_eq!(r.code, EX_CONFIG);
        assert_eq!(
            r.err,
            format!("postconf: fatal: {c}/master.cf, line 1: bad field count\n")
        );
    }

    #[test]
    fn table_and_lock_types() {
        assert_eq!(
            postconf(&["-m"]).out,
            "hash\ninline\nlmdb\npcre\nregexp\nstatic\ntexthash\n"
        );
        assert_eq!(postconf(&["-l"]).out, "flock\nfcntl\ndotlock\n");
    }

    #[test]
    fn whitespace_is_collapsed() {
        let cases = [
            ("a \t   b  { x   y }", "a b { x y }"),
            ("", ""),
            ("  x  ", "x"),
        ];
        for (v, want) in cases {
            assert_eq!(collapse(v), want);
        }
    }
}
