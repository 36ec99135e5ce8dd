//! `postern`: one binary with Postfix's command names.
//!
//! The command is chosen by the name the binary was run as (`sendmail`, `mailq`,
//! `newaliases`, `postqueue`, `postsuper`, `postcat`, `postmap`, `postalias`, `postconf`,
//! `postfix`) or, when run as `postern`, by its first argument (`postern sendmail -t`).
//! `postern master` is the daemon itself, which `postfix start` launches.
//!
//! Every command takes `-c DIR` (sendmail: `-C`) and honours `MAIL_CONFIG`. Errors are printed
//! as Postfix prints them (`sendmail: fatal: ...`) and the exit status follows <sysexits.h>.

mod cmd;
mod getopt;
mod sysexits;

use std::path::{Path, PathBuf};

fn main() {
    let mut args: Vec<String> = std::env::args().collect();
    let argv0 = args.first().cloned().unwrap_or_else(|| "postern".into());
    let mut name = Path::new(&argv0)
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "postern".into());
    args.remove(0);
    if name == "postern" || name.starts_with("postern-") {
        match args.first() {
            Some(sub) if !sub.starts_with('-') => {
                name = sub.clone();
                args.remove(0);
            }
            _ => {
                eprintln!("usage: postern COMMAND [ARGS...]\ncommands: sendmail mailq newaliases postqueue postsuper postcat postmap postalias postconf postfix");
                std::process::exit(sysexits::EX_USAGE);
            }
        }
    }
    let code = match name.as_str() {
        "sendmail" => cmd::sendmail::main(&args),
        "mailq" => cmd::postqueue::main("mailq", &[vec!["-p".to_string()], args].concat()),
        "newaliases" => cmd::sendmail::newaliases(&args),
        "postqueue" => cmd::postqueue::main("postqueue", &args),
        "postsuper" => cmd::postsuper::main(&args),
        "postcat" => cmd::postcat::main(&args),
        "postconf" => {
            let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
            config::postconf::main(&args, &mut out, &mut err)
        }
        "postmap" => {
            let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
            tables::postmap_main(&args, &mut out, &mut err)
        }
        "postalias" => {
            let (mut out, mut err) = (std::io::stdout(), std::io::stderr());
            tables::postalias_main(&args, &mut out, &mut err)
        }
        "postfix" => cmd::postfix::main(&args),
        "master" => cmd::postfix::master(&args),
        other => {
            eprintln!("postern: unknown command: {other}");
            sysexits::EX_USAGE
        }
    };
    std::process::exit(code);
}

/// Print `prog: fatal: text` and return `code`.
/// Print `prog: fatal: text` (and log it, once logging is set up) and return `code`.
pub fn fatal(prog: &str, code: i32, text: impl std::fmt::Display) -> i32 {
    let text = queue::clean_error_text(&text.to_string());
    eprintln!("{prog}: fatal: {text}");
    if daemon::log::is_initialized() {
        daemon::log::log(prog, daemon::log::Level::Fatal, &text);
    }
    code
}

pub fn warn(prog: &str, text: impl std::fmt::Display) {
    eprintln!(
        "{prog}: warning: {}",
        queue::clean_error_text(&text.to_string())
    );
}

/// Command-line tools log like Postfix's: to maillog_file when set, else to syslog.
pub fn init_cli_logging(cfg: &config::MainCf) {
    if daemon::master::init_logging(cfg, false).is_err() {
        let _ = daemon::log::init(
            daemon::log::Target::Syslog,
            &cfg.str("syslog_name"),
            &cfg.str("myhostname"),
            "mail",
        );
    }
}

/// Load main.cf from `-c DIR`, else `$MAIL_CONFIG`, else /etc/postfix; print warnings.
pub fn load_config(prog: &str, dir: Option<&Path>) -> Result<config::MainCf, i32> {
    let dir: PathBuf = config::config_directory(dir);
    match config::MainCf::load(&dir) {
        Ok(cfg) => {
            for w in cfg.warnings() {
                warn(prog, w);
            }
            Ok(cfg)
        }
        Err(e) => {
            for err in &e.errors {
                eprintln!("{prog}: fatal: {err}");
            }
            Err(1)
        }
    }
}
