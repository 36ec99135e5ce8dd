//! Postern's configuration layer: Postfix's `main.cf` and `master.cf`, the
//! parameter table, `$name` expansion and the `postconf` command.
//!
//! What it owns: reading `main.cf` with Postfix's syntax and defaults
//! ([`MainCf`]); the table of parameter names, defaults and kinds (the
//! verbatim `postconf -d` of Debian's Postfix 3.7.11 with Postern's values
//! laid over the build- and host-specific ones); `$name` expansion as a
//! standalone function ([`expand`], and [`expand_verbatim`] for values that
//! are data) for agents that expand with their own names; Postfix list
//! splitting ([`split_list`]); the `master.cf` service table ([`master_cf`]); the `postconf`
//! command ([`postconf`]); the choice of configuration directory
//! ([`config_directory`]).
//!
//! Invariants: a [`MainCf`] obtained from [`MainCf::load`], [`MainCf::parse`]
//! or [`MainCf::with_overrides`] holds a valid value of the right kind for
//! every parameter Postern reads, so its typed getters never fail on user
//! input. Unknown parameters are warnings, never errors. This crate depends
//! on no other Postern crate.
//!
//! How it fails: every configuration problem is a [`ConfigError`] naming the
//! file, line and parameter in Postfix's words; loading collects all of them
//! in a [`LoadError`]. No input, however malformed, makes it panic (see
//! [`fuzz_main_cf`]).

mod error;
mod expand;
mod host;
mod main_cf;
pub mod master_cf;
mod params;
pub mod postconf;
mod syntax;
mod value;

use std::path::{Path, PathBuf};

pub use error::{ConfigError, ExpandError, LoadError};
pub use expand::{expand, expand_verbatim};
pub use main_cf::MainCf;
pub use value::split_list;

/// The configuration directory: `-c DIR` when given, else `$MAIL_CONFIG`
/// when set and non-empty, else `/etc/postfix`.
pub fn config_directory(cli: Option<&Path>) -> PathBuf {
    let dir = match (cli, std::env::var_os("MAIL_CONFIG")) {
        (Some(dir), _) => dir.to_path_buf(),
        (None, Some(dir)) if !dir.is_empty() => PathBuf::from(dir),
        _ => PathBuf::from("/etc/postfix"),
    };
    // A relative directory (`postfix -c quickstart`) is taken from the current directory, once,
    // so that paths derived from it stay valid whatever directory a process moves to later.
    if dir.is_relative() {
        if let Ok(cwd) = std::env::current_dir() {
            return cwd.join(dir);
        }
    }
    dir
}

/// Parses `data` as `main.cf` and as `master.cf`, expands every parameter,
/// reads every typed value and runs the `postconf` editor over it. Must
/// never panic; this is the body of the `main.cf` fuzz target.
pub fn fuzz_main_cf(data: &[u8]) {
    let text = String::from_utf8_lossy(data);
    let file = Path::new("/fuzz/main.cf");
    let dir = Path::new("/fuzz");
    let (services, _) = master_cf::parse(&text, Path::new("/fuzz/master.cf"));
    for svc in &services {
        let _ = svc.to_postconf_line();
    }
    let (lenient, _) = MainCf::parse_lenient(&text, file, dir, &services);
    for name in lenient.all_names() {
        let _ = lenient.str(&name);
        let _ = lenient.raw(&name);
        let _ = lenient.list(&name);
    }
    if let Ok(cf) = MainCf::parse(&text, file, dir) {
        for spec in params::SPECS {
            match spec.kind {
                params::Kind::Bool => {
                    let _ = cf.bool(spec.name);
                }
                params::Kind::Int { .. } => {
                    let _ = cf.int(spec.name);
                }
                params::Kind::Size { .. } => {
                    let _ = cf.size(spec.name);
                }
                params::Kind::Time { .. } => {
                    let _ = cf.time(spec.name);
                }
                params::Kind::Str | params::Kind::List => {
                    let _ = cf.path(spec.name);
                }
            }
        }
        let _ = cf.with_overrides(&[("smtpd_timeout".to_string(), text.to_string())]);
    }
    let _ = expand(&text, &|name| {
        Some(lenient.raw(name)).filter(|v| !v.is_empty())
    });
    let _ = expand_verbatim(&text, &|name| Some(name.to_string()));
    let pairs: Vec<(String, String)> = syntax::logical_lines(&text)
        .into_iter()
        .filter_map(|l| {
            syntax::split_name_value(&l.text)
                .ok()
                .map(|(n, v)| (n.to_string(), v.to_string()))
        })
        .take(4)
        .collect();
    postconf::fuzz_edit(data, &pairs);
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn main_cf_can_be_shared_between_threads() {
        fn shareable<T: Clone + Send + Sync + std::fmt::Debug + 'static>() {}
        shareable::<MainCf>();
        shareable::<master_cf::Service>();
        shareable::<LoadError>();
    }

    #[test]
    fn config_directory_precedence() {
        assert_eq!(config_directory(Some(Path::new("/x"))), PathBuf::from("/x"));
        // The environment is process-wide: only read it here, never set it.
        let want = match std::env::var_os("MAIL_CONFIG") {
            Some(d) if !d.is_empty() => PathBuf::from(d),
            _ => PathBuf::from("/etc/postfix"),
        };
        assert_eq!(config_directory(None), want);
    }

    #[test]
    fn fuzz_entry_point_survives_nasty_inputs() {
        let cases: [&[u8]; 8] = [
            b"",
            b"\xff\xfe\n=\n \n",
            b"a = $a\nmydestination = $a\n",
            b"queue_run_delay = ${{1}<level{x}?y}\n",
            b"x = ${{{{{{{{{{\n",
            b"smtp inet n - - - - smtpd -o { a = b\n",
            b"mydestination = ${myhostname?{${myhostname?{${myhostname?{x}}}}}}\n",
            b"2525 inet n - n - - smtpd -o x=$y\nmailman unix - n n - - pipe\n",
        ];
        for data in cases {
            fuzz_main_cf(data);
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn parse_and_expand_never_panic(text in "([a-z_=${}():?<>!. \t\n#,-]|level|myhostname|queue_run_delay|\\{\\{|\\$\\$){0,80}") {
            let _ = MainCf::parse(&text, Path::new("/p/main.cf"), Path::new("/p"));
            let _ = expand(&text, &|n| if n.len() < 3 { Some(format!("${n}{n}")) } else { None });
            let _ = master_cf::parse(&text, Path::new("/p/master.cf"));
        }

        #[test]
        fn arbitrary_bytes_never_panic(data in proptest::collection::vec(any::<u8>(), 0..200)) {
            fuzz_main_cf(&data);
        }
    }
}
