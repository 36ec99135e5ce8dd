//! `main.cf`: loading, expansion, validation and typed access.
//!
//! Owns [`MainCf`], the validated view of one `main.cf` (plus any `-o`
//! overrides) that the rest of Postern reads. Loading follows postconf(5):
//! see `syntax.rs` for the line structure; a later setting overrides an
//! earlier one (with Postfix's warning `overriding earlier entry`); values
//! are expanded recursively with `$name` (`expand.rs`); a parameter's
//! default applies when `main.cf` does not set it.
//!
//! Invariants of a `MainCf` returned by the public constructors: every
//! parameter that Postern reads has a value of its kind (validated after
//! expansion, whether set or defaulted), so the typed getters never fail on
//! user input; they panic only when asked for a name that is not a parameter
//! of that kind, which is a programming error. Every known parameter (and
//! every user-defined one that is referenced) has been expanded once, so
//! getters are map lookups. The value is immutable and cheap to clone
//! (shared behind an `Arc`), so a reload builds a new one and swaps it.
//!
//! Failure: a malformed line (Postfix: fatal `missing '=' after attribute
//! name`), an expansion error or an invalid value is a [`ConfigError`] naming
//! the file, line and parameter; all of them are collected (the rest of the
//! file is still read) and returned together in a [`LoadError`]. Unknown
//! parameters, duplicate settings and stray continuation lines are warnings
//! (`/etc/postfix/main.cf: unused parameter: foo=bar`), never errors.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use crate::error::{ConfigError, ExpandError, LoadError};
use crate::expand::{expand_text, is_name_byte, is_space, Resolve};
use crate::params::{self, Kind};
use crate::value::{parse_bool, parse_int, parse_long, parse_time, split_list};
use crate::{host, master_cf, syntax};

/// One `name = value` setting and where it came from.
#[derive(Debug, Clone)]
pub(crate) struct Setting {
    pub(crate) value: String,
    pub(crate) file: PathBuf,
    pub(crate) line: usize,
    pub(crate) from_override: bool,
}

/// A validated, typed value of a parameter Postern reads.
#[derive(Debug, Clone, Copy)]
enum Typed {
    Bool(bool),
    Int(i64),
    Size(u64),
    Time(Duration),
}

/// What a `MainCf` is built from; kept so overrides can rebuild it.
#[derive(Debug, Clone)]
struct Source {
    config_dir: PathBuf,
    main_cf: PathBuf,
    settings: BTreeMap<String, Setting>,
    lex_warnings: Vec<String>,
    /// `(service name, command)` of each master.cf service.
    services: Vec<(String, String)>,
    /// Names referenced from master.cf `-o` values.
    master_refs: BTreeSet<String>,
}

struct Inner {
    source: Source,
    /// Computed defaults (host, load, master.cf services).
    dynamic: HashMap<String, String>,
    expanded: HashMap<String, String>,
    typed: HashMap<&'static str, Typed>,
    /// Names whose expansion failed (only in a lenient build).
    failed: BTreeSet<String>,
    /// Names referenced with `$name` from settings and master.cf.
    referenced: BTreeSet<String>,
    warnings: Vec<String>,
}

/// The configuration of one Postern instance: `main.cf` with its defaults,
/// expanded and validated.
#[derive(Clone)]
pub struct MainCf {
    inner: Arc<Inner>,
}

impl fmt::Debug for MainCf {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = &self.inner.source;
        f.debug_struct("MainCf")
            .field("config_directory", &s.config_dir)
            .field("main_cf", &s.main_cf)
            .field(
                "settings",
                &s.settings
                    .iter()
                    .map(|(n, v)| (n.as_str(), v.value.as_str()))
                    .collect::<BTreeMap<_, _>>(),
            )
            .finish_non_exhaustive()
    }
}

/// An I/O error without Rust's ` (os error N)` suffix, as Postfix prints `%m`.
pub(crate) fn io_reason(e: &std::io::Error) -> String {
    let s = e.to_string();
    match s.find(" (os error ") {
        Some(k) => s[..k].to_string(),
        None => s,
    }
}

/// The names `value` refers to with `$name`, `${name...}` or `$(name...)`,
/// found textually (also inside `{...}` values; `$$` is skipped).
pub(crate) fn references(value: &str) -> Vec<&str> {
    let b = value.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'$' {
            i += 1;
            continue;
        }
        let mut start = i + 1;
        match b.get(start) {
            Some(b'$') => {
                i += 2;
                continue;
            }
            Some(b'{' | b'(') => {
                start += 1;
                while start < b.len() && is_space(b[start]) {
                    start += 1;
                }
            }
            _ => {}
        }
        let mut end = start;
        while end < b.len() && is_name_byte(b[end]) {
            end += 1;
        }
        if end > start {
            out.push(&value[start..end]);
        }
        i = end.max(i + 1);
    }
    out
}

/// The running program's name, for `process_name`.
fn process_name() -> String {
    std::env::args_os()
        .next()
        .and_then(|a| {
            Path::new(&a)
                .file_name()
                .map(|f| f.to_string_lossy().into_owned())
        })
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| "postern".to_string())
}

/// Resolves names against settings, computed defaults and the static table,
/// expanding recursively with memoization.
struct CfResolver<'a> {
    settings: &'a BTreeMap<String, Setting>,
    dynamic: &'a HashMap<String, String>,
    /// Names that count as undefined unless set (while their own defaults
    /// are being computed).
    hidden: &'a [&'a str],
    memo: HashMap<String, String>,
    stack: Vec<String>,
    /// The innermost parameter whose expansion failed.
    origin: Option<String>,
}

impl<'a> CfResolver<'a> {
    fn new(
        settings: &'a BTreeMap<String, Setting>,
        dynamic: &'a HashMap<String, String>,
        hidden: &'a [&'a str],
    ) -> Self {
        CfResolver {
            settings,
            dynamic,
            hidden,
            memo: HashMap::new(),
            stack: Vec::new(),
            origin: None,
        }
    }

    fn raw(&self, name: &str) -> Option<&'a str> {
        let settings: &'a BTreeMap<String, Setting> = self.settings;
        if let Some(s) = settings.get(name) {
            return Some(s.value.as_str());
        }
        if self.hidden.contains(&name) {
            return None;
        }
        let dynamic: &'a HashMap<String, String> = self.dynamic;
        dynamic
            .get(name)
            .map(String::as_str)
            .or_else(|| params::static_default(name))
    }

    /// The expanded value, or empty when undefined or broken.
    fn value(&mut self, name: &str) -> String {
        self.resolve(name, 0).ok().flatten().unwrap_or_default()
    }
}

impl Resolve for CfResolver<'_> {
    fn resolve(&mut self, name: &str, depth: usize) -> Result<Option<String>, ExpandError> {
        if let Some(v) = self.memo.get(name) {
            return Ok(Some(v.clone()));
        }
        let Some(raw) = self.raw(name) else {
            return Ok(None);
        };
        if params::is_raw(name) {
            return Ok(Some(raw.to_string()));
        }
        if self.stack.iter().any(|n| n == name) {
            let mut chain = self.stack.clone();
            chain.push(name.to_string());
            return Err(ExpandError::Loop { chain });
        }
        self.stack.push(name.to_string());
        let result = expand_text(raw, self, depth + 1);
        self.stack.pop();
        match result {
            Ok(v) => {
                self.memo.insert(name.to_string(), v.clone());
                Ok(Some(v))
            }
            Err(e) => {
                if self.origin.is_none() {
                    self.origin = Some(name.to_string());
                }
                Err(e)
            }
        }
    }
}

/// Reads `text` into settings: the syntax errors, the lexical warnings.
fn read_settings(
    text: &str,
    file: &Path,
    settings: &mut BTreeMap<String, Setting>,
    warnings: &mut Vec<String>,
) -> Vec<ConfigError> {
    let mut errors = Vec::new();
    for l in syntax::logical_lines(text) {
        if l.orphan {
            warnings.push(format!(
                "{}: logical line must not start with whitespace: \"{}\"",
                file.display(),
                l.text
            ));
            continue;
        }
        match syntax::split_name_value(&l.text) {
            Err(message) => errors.push(ConfigError {
                file: file.to_path_buf(),
                line: l.line,
                param: None,
                message,
            }),
            Ok((name, value)) => {
                if let Some(old) = settings.get(name) {
                    warnings.push(format!(
                        "{}, line {}: overriding earlier entry: {}={}",
                        file.display(),
                        l.line,
                        name,
                        old.value
                    ));
                }
                settings.insert(
                    name.to_string(),
                    Setting {
                        value: value.to_string(),
                        file: file.to_path_buf(),
                        line: l.line,
                        from_override: false,
                    },
                );
            }
        }
    }
    errors
}

/// The master.cf facts `main.cf` loading needs: services and references.
fn master_facts(services: &[master_cf::Service]) -> (Vec<(String, String)>, BTreeSet<String>) {
    let list = services
        .iter()
        .map(|s| (s.name.clone(), s.command.clone()))
        .collect();
    let refs = services
        .iter()
        .flat_map(|s| s.overrides.iter())
        .flat_map(|(_, v)| references(v))
        .map(str::to_string)
        .collect();
    (list, refs)
}

impl MainCf {
    /// Loads `config_dir/main.cf` (and reads `config_dir/master.cf`, when
    /// present, for the names of its services and the parameters its `-o`
    /// options refer to, so those are not reported as unused).
    ///
    /// A missing `main.cf` is an error, as it is for Postfix.
    pub fn load(config_dir: &Path) -> Result<MainCf, LoadError> {
        let (cf, errors) = Self::load_lenient(config_dir)?;
        if errors.is_empty() {
            Ok(cf)
        } else {
            Err(LoadError { errors })
        }
    }

    /// Like [`MainCf::load`], but returns what could be built together with
    /// the errors; `Err` only when `main.cf` cannot be read. An invalid typed
    /// value reads as its default. For commands that must work on a broken
    /// configuration (`postfix stop`, `postfix status`).
    pub fn load_lenient(config_dir: &Path) -> Result<(MainCf, Vec<ConfigError>), LoadError> {
        let main_cf = config_dir.join("main.cf");
        let bytes = std::fs::read(&main_cf).map_err(|e| ConfigError {
            file: main_cf.clone(),
            line: 0,
            param: None,
            message: format!("open failed: {}", io_reason(&e)),
        })?;
        let text = String::from_utf8_lossy(&bytes);
        let master_path = config_dir.join("master.cf");
        let services = match std::fs::read(&master_path) {
            Ok(m) => master_cf::parse(&String::from_utf8_lossy(&m), &master_path).0,
            Err(_) => Vec::new(),
        };
        Ok(Self::parse_lenient(&text, &main_cf, config_dir, &services))
    }

    /// Parses `text` as the `main.cf` at `file` of the instance whose
    /// configuration directory is `config_dir` (the value of
    /// `config_directory` and the base of relative paths). Reads no files.
    pub fn parse(text: &str, file: &Path, config_dir: &Path) -> Result<MainCf, LoadError> {
        let (cf, errors) = Self::parse_lenient(text, file, config_dir, &[]);
        if errors.is_empty() {
            Ok(cf)
        } else {
            Err(LoadError { errors })
        }
    }

    /// Parses and builds, returning the errors beside the result.
    pub(crate) fn parse_lenient(
        text: &str,
        file: &Path,
        config_dir: &Path,
        services: &[master_cf::Service],
    ) -> (MainCf, Vec<ConfigError>) {
        let mut settings = BTreeMap::new();
        let mut lex_warnings = Vec::new();
        let syntax_errors = read_settings(text, file, &mut settings, &mut lex_warnings);
        let (services, master_refs) = master_facts(services);
        let source = Source {
            config_dir: config_dir.to_path_buf(),
            main_cf: file.to_path_buf(),
            settings,
            lex_warnings,
            services,
            master_refs,
        };
        let (cf, mut errors) = build(source);
        let mut all = syntax_errors;
        all.append(&mut errors);
        (cf, all)
    }

    /// A copy with `overrides` applied on top (as master.cf `-o name=value`
    /// options do), validated again. Errors name `config_dir/master.cf`
    /// without a line; use [`MainCf::with_overrides_at`] to name the
    /// service's line.
    pub fn with_overrides(&self, overrides: &[(String, String)]) -> Result<MainCf, LoadError> {
        let file = self.inner.source.config_dir.join("master.cf");
        self.with_overrides_at(overrides, &file, 0)
    }

    /// A copy with `overrides` applied on top, their origin given as `file`
    /// and `line` (for errors, warnings and [`MainCf::location`]).
    pub fn with_overrides_at(
        &self,
        overrides: &[(String, String)],
        file: &Path,
        line: usize,
    ) -> Result<MainCf, LoadError> {
        let (cf, errors) = self.with_overrides_lenient(overrides, file, line);
        if errors.is_empty() {
            Ok(cf)
        } else {
            Err(LoadError { errors })
        }
    }

    pub(crate) fn with_overrides_lenient(
        &self,
        overrides: &[(String, String)],
        file: &Path,
        line: usize,
    ) -> (MainCf, Vec<ConfigError>) {
        let mut source = self.inner.source.clone();
        for (name, value) in overrides {
            source.settings.insert(
                name.clone(),
                Setting {
                    value: value.clone(),
                    file: file.to_path_buf(),
                    line,
                    from_override: true,
                },
            );
        }
        build(source)
    }

    /// Warnings found while loading, each a complete line in Postfix's words
    /// (`/etc/postfix/main.cf: unused parameter: foo=bar`).
    pub fn warnings(&self) -> &[String] {
        &self.inner.warnings
    }

    /// The configuration directory this instance was loaded from.
    pub fn config_directory(&self) -> &Path {
        &self.inner.source.config_dir
    }

    /// The `main.cf` this instance was loaded from.
    pub fn main_cf_path(&self) -> &Path {
        &self.inner.source.main_cf
    }

    /// The value as written in `main.cf` (or by an override), else the
    /// default; not expanded. Empty for an unknown name.
    pub fn raw(&self, name: &str) -> String {
        let inner = &self.inner;
        if let Some(s) = inner.source.settings.get(name) {
            return s.value.clone();
        }
        inner
            .dynamic
            .get(name)
            .map(String::as_str)
            .or_else(|| params::static_default(name))
            .unwrap_or_default()
            .to_string()
    }

    /// The expanded value. Raw parameters (`forward_path`,
    /// `mailbox_command`, ...) are returned as written: their consumer
    /// expands them with its own names. Empty for an unknown name.
    pub fn str(&self, name: &str) -> String {
        if params::is_raw(name) {
            return self.raw(name);
        }
        match self.inner.expanded.get(name) {
            Some(v) => v.clone(),
            None => self.raw(name),
        }
    }

    /// The expanded value split as a Postfix list (commas and/or
    /// whitespace; `{ ... }` groups stay one item, braces included).
    pub fn list(&self, name: &str) -> Vec<String> {
        split_list(&self.str(name))
    }

    fn typed(&self, name: &str, what: &str) -> Typed {
        match self.inner.typed.get(name) {
            Some(t) => *t,
            None => panic!("postern-config: {name} is not a {what} parameter"),
        }
    }

    /// A `yes`/`no` parameter.
    ///
    /// # Panics
    /// When `name` is not a boolean parameter (a programming error).
    pub fn bool(&self, name: &str) -> bool {
        match self.typed(name, "boolean") {
            Typed::Bool(b) => b,
            _ => panic!("postern-config: {name} is not a boolean parameter"),
        }
    }

    /// An integer parameter (counts and limits).
    ///
    /// # Panics
    /// When `name` is not an integer parameter (a programming error).
    pub fn int(&self, name: &str) -> i64 {
        match self.typed(name, "integer") {
            Typed::Int(n) => n,
            _ => panic!("postern-config: {name} is not an integer parameter"),
        }
    }

    /// A byte-count parameter.
    ///
    /// # Panics
    /// When `name` is not a size parameter (a programming error).
    pub fn size(&self, name: &str) -> u64 {
        match self.typed(name, "size") {
            Typed::Size(n) => n,
            _ => panic!("postern-config: {name} is not a size parameter"),
        }
    }

    /// A time parameter, converted with its default unit.
    ///
    /// # Panics
    /// When `name` is not a time parameter (a programming error).
    pub fn time(&self, name: &str) -> Duration {
        match self.typed(name, "time") {
            Typed::Time(d) => d,
            _ => panic!("postern-config: {name} is not a time parameter"),
        }
    }

    /// The expanded value as a path; a relative path is taken relative to
    /// the configuration directory. An empty value gives an empty path (for
    /// parameters such as `maillog_file`, "not set").
    pub fn path(&self, name: &str) -> PathBuf {
        let v = self.str(name);
        if v.is_empty() {
            return PathBuf::new();
        }
        let p = Path::new(&v);
        if p.is_absolute() {
            p.to_path_buf()
        } else {
            self.inner.source.config_dir.join(p)
        }
    }

    /// Whether `main.cf` or an override sets `name`.
    pub fn is_set(&self, name: &str) -> bool {
        self.inner.source.settings.contains_key(name)
    }

    /// Where `name` is set: the file and 1-based line (0 for an override
    /// without a line).
    pub fn location(&self, name: &str) -> Option<(&Path, usize)> {
        self.inner
            .source
            .settings
            .get(name)
            .map(|s| (s.file.as_path(), s.line))
    }

    /// Settings read from `main.cf` itself (not overrides), by name.
    pub(crate) fn main_cf_settings(&self) -> impl Iterator<Item = (&str, &str)> {
        self.inner
            .source
            .settings
            .iter()
            .filter(|(_, s)| !s.from_override)
            .map(|(n, s)| (n.as_str(), s.value.as_str()))
    }

    /// Whether `name` is a parameter: known, computed, or set and referenced.
    pub(crate) fn is_defined(&self, name: &str) -> bool {
        let inner = &self.inner;
        params::static_default(name).is_some()
            || inner.dynamic.contains_key(name)
            || (inner.source.settings.contains_key(name) && inner.referenced.contains(name))
    }

    /// Every parameter name as `postconf` lists them: known, computed, and
    /// user-defined ones in use. Service-defined parameters appear only for
    /// the delivery services of this instance's master.cf.
    pub(crate) fn all_names(&self) -> BTreeSet<String> {
        let inner = &self.inner;
        let has_service = |service: &str| {
            inner
                .source
                .services
                .iter()
                .any(|(s, cmd)| s == service && params::is_delivery_command(cmd))
        };
        params::defaults()
            .filter(|(n, _)| params::data_file_service(n).is_none_or(has_service))
            .map(|(n, _)| n.to_string())
            .chain(inner.dynamic.keys().cloned())
            .chain(
                inner
                    .source
                    .settings
                    .keys()
                    .filter(|n| inner.referenced.contains(n.as_str()))
                    .cloned(),
            )
            .collect()
    }

    /// Whether expanding `name` failed (only possible in a lenient build).
    pub(crate) fn expansion_failed(&self, name: &str) -> bool {
        self.inner.failed.contains(name)
    }
}

/// Expands, validates and collects warnings for `source`.
fn build(source: Source) -> (MainCf, Vec<ConfigError>) {
    let mut errors = Vec::new();
    let settings = &source.settings;
    let is_set = |n: &str| settings.contains_key(n);

    // Defaults computed for this load.
    let mut dynamic: HashMap<String, String> = HashMap::new();
    dynamic.insert(
        "config_directory".into(),
        source.config_dir.display().to_string(),
    );
    dynamic.insert("process_id".into(), std::process::id().to_string());
    dynamic.insert("process_name".into(), process_name());
    for (service, command) in &source.services {
        for (name, default) in params::service_defined(service, command) {
            if params::static_default(&name).is_none() {
                dynamic.entry(name).or_insert(default);
            }
        }
    }
    compute_host_defaults(settings, &mut dynamic);

    // Which names are referenced (user-defined parameters in use).
    let mut referenced: BTreeSet<String> = source.master_refs.clone();
    for s in settings.values() {
        referenced.extend(references(&s.value).into_iter().map(str::to_string));
    }
    let is_known = |n: &str| params::static_default(n).is_some() || dynamic.contains_key(n);

    // Expand every known parameter and every set one.
    let mut resolver = CfResolver::new(settings, &dynamic, &[]);
    let mut failed = BTreeSet::new();
    let mut reported = BTreeSet::new();
    let mut loops_reported: BTreeSet<Vec<String>> = BTreeSet::new();
    let names: BTreeSet<&str> = params::defaults()
        .map(|(n, _)| n)
        .chain(dynamic.keys().map(String::as_str))
        .chain(settings.keys().map(String::as_str))
        .collect();
    for name in names {
        if params::is_raw(name) {
            continue;
        }
        resolver.origin = None;
        if let Err(e) = resolver.resolve(name, 0) {
            failed.insert(name.to_string());
            // Postfix never evaluates a parameter nobody uses.
            if !is_known(name) && !referenced.contains(name) {
                continue;
            }
            if let ExpandError::Loop { chain } = &e {
                // One error per cycle, however many names lead into it.
                let last = chain.last().cloned().unwrap_or_default();
                let start = chain.iter().position(|n| *n == last).unwrap_or(0);
                let mut cycle = chain[start..].to_vec();
                cycle.sort();
                cycle.dedup();
                if !loops_reported.insert(cycle) {
                    continue;
                }
            }
            let origin = resolver.origin.take().unwrap_or_else(|| name.to_string());
            if reported.insert(origin.clone()) {
                errors.push(error_at(
                    &source,
                    &origin,
                    format!("parameter {origin}: {e}"),
                ));
            }
        }
    }
    // Restriction classes name user-defined parameters.
    if let Some(classes) = resolver.memo.get("smtpd_restriction_classes") {
        referenced.extend(split_list(classes));
    }
    let expanded = resolver.memo;

    // Validate what Postern reads.
    let mut typed = HashMap::new();
    for spec in params::SPECS {
        let name = spec.name;
        let value = if params::is_raw(name) {
            match settings.get(name) {
                Some(s) => s.value.as_str(),
                None => params::static_default(name).unwrap_or_default(),
            }
        } else {
            match expanded.get(name) {
                Some(v) => v.as_str(),
                None => continue, // expansion failed and was reported
            }
        };
        match convert(name, spec.kind, value) {
            Ok(Some(t)) => {
                typed.insert(name, t);
            }
            Ok(None) => {}
            Err(message) => {
                errors.push(error_at(&source, name, message));
                // A lenient load still answers typed questions: with the default.
                let default = params::static_default(name).unwrap_or_default();
                if let Ok(Some(t)) = convert(name, spec.kind, default) {
                    typed.insert(name, t);
                }
            }
        }
        if let Some(check) = spec.check {
            if let Err(message) = check(name, value) {
                errors.push(error_at(&source, name, message));
            }
        }
    }
    let myhostname = expanded
        .get("myhostname")
        .map(String::as_str)
        .unwrap_or_default();
    let relayhost = expanded
        .get("relayhost")
        .map(String::as_str)
        .unwrap_or_default();
    if !myhostname.is_empty() && myhostname.eq_ignore_ascii_case(relayhost) {
        let at = if is_set("relayhost") {
            "relayhost"
        } else {
            "myhostname"
        };
        errors.push(error_at(
            &source,
            at,
            format!(
                "myhostname and relayhost parameter settings must not be identical: {myhostname}"
            ),
        ));
    }

    // Warnings, in Postfix's words.
    let mut warnings = source.lex_warnings.clone();
    for (name, s) in settings {
        if !is_known(name) && !referenced.contains(name.as_str()) {
            warnings.push(format!(
                "{}: unused parameter: {}={}",
                s.file.display(),
                name,
                s.value
            ));
        }
    }
    let mut undefined = BTreeSet::new();
    for (name, s) in settings {
        if params::is_raw(name) {
            continue;
        }
        for r in references(&s.value) {
            if !is_known(r) && !is_set(r) && undefined.insert(r.to_string()) {
                warnings.push(format!("{}: undefined parameter: {}", s.file.display(), r));
            }
        }
    }

    let inner = Inner {
        source,
        dynamic,
        expanded,
        typed,
        failed,
        referenced,
        warnings,
    };
    (
        MainCf {
            inner: Arc::new(inner),
        },
        errors,
    )
}

/// A `ConfigError` for parameter `name`, at its setting or else at `main.cf`.
fn error_at(source: &Source, name: &str, message: String) -> ConfigError {
    let (file, line) = match source.settings.get(name) {
        Some(s) => (s.file.clone(), s.line),
        None => (source.main_cf.clone(), 0),
    };
    ConfigError {
        file,
        line,
        param: Some(name.to_string()),
        message,
    }
}

/// Converts an expanded value to its kind, with Postfix's error wording.
/// `Ok(None)` for kinds that are read as text.
fn convert(name: &str, kind: Kind, v: &str) -> Result<Option<Typed>, String> {
    match kind {
        Kind::Str | Kind::List => Ok(None),
        Kind::Bool => parse_bool(v)
            .map(|b| Some(Typed::Bool(b)))
            .ok_or_else(|| format!("bad boolean configuration: {name} = {v}")),
        Kind::Int { min, max } => {
            let n =
                parse_int(v).ok_or_else(|| format!("bad numerical configuration: {name} = {v}"))?;
            check_range(name, n, min, max)?;
            Ok(Some(Typed::Int(n)))
        }
        Kind::Size { min, max } => {
            let n = parse_long(v)
                .ok_or_else(|| format!("bad numerical configuration: {name} = {v}"))?;
            check_range(name, n, min, max)?;
            let n =
                u64::try_from(n).map_err(|_| format!("invalid {name} parameter value {n} < 0"))?;
            Ok(Some(Typed::Size(n)))
        }
        Kind::Time { unit, min, max } => {
            let secs = parse_time(v, unit)
                .ok_or_else(|| format!("parameter {name}: bad time value or unit: {v}"))?;
            if secs < min {
                return Err(format!("invalid {name}: {secs} (min {min})"));
            }
            if secs > max {
                return Err(format!("invalid {name}: {secs} (max {max})"));
            }
            Ok(Some(Typed::Time(Duration::from_secs(secs))))
        }
    }
}

fn check_range(name: &str, n: i64, min: i64, max: i64) -> Result<(), String> {
    if n < min {
        Err(format!("invalid {name} parameter value {n} < {min}"))
    } else if n > max {
        Err(format!("invalid {name} parameter value {n} > {max}"))
    } else {
        Ok(())
    }
}

/// Computes the defaults of `myhostname`, `mydomain` (postconf(5): the FQDN
/// from gethostname(), else the short name plus `.$mydomain`; `$myhostname`
/// minus its first component, else `localdomain`) and `mynetworks` (from
/// `mynetworks_style`), for the names `settings` does not set.
fn compute_host_defaults(
    settings: &BTreeMap<String, Setting>,
    dynamic: &mut HashMap<String, String>,
) {
    const HIDDEN: &[&str] = &["myhostname", "mydomain", "mynetworks"];
    let set = |n: &str| settings.contains_key(n);
    let host = host::hostname();
    let myhostname_default = {
        let mut pre = CfResolver::new(settings, dynamic, HIDDEN);
        if host.contains('.') {
            host
        } else {
            let domain = if set("mydomain") {
                pre.value("mydomain")
            } else {
                "localdomain".to_string()
            };
            format!("{host}.{domain}")
        }
    };
    let mydomain_default = {
        let mut pre = CfResolver::new(settings, dynamic, HIDDEN);
        let name = if set("myhostname") {
            pre.value("myhostname")
        } else {
            myhostname_default.clone()
        };
        match name.split_once('.') {
            Some((_, rest)) if params::valid_hostname(rest) => rest.to_string(),
            _ => "localdomain".to_string(),
        }
    };
    dynamic.insert("myhostname".into(), myhostname_default);
    dynamic.insert("mydomain".into(), mydomain_default);
    if !set("mynetworks") {
        let mut pre = CfResolver::new(settings, dynamic, &["mynetworks"]);
        let style = pre.value("mynetworks_style");
        let protocols = pre.value("inet_protocols");
        let interfaces = pre.value("inet_interfaces");
        let value = host::mynetworks(
            &style,
            &protocols,
            &interfaces,
            &host::interface_addresses(),
        );
        dynamic.insert("mynetworks".into(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "/tmp/x/main.cf";

    fn parse(text: &str) -> Result<MainCf, LoadError> {
        MainCf::parse(text, Path::new(FILE), Path::new("/tmp/x"))
    }

    fn ok(text: &str) -> MainCf {
        match parse(text) {
            Ok(cf) => cf,
            Err(e) => panic!("{text:?} failed:\n{e}"),
        }
    }

    fn errors(text: &str) -> Vec<String> {
        match parse(text) {
            Ok(_) => Vec::new(),
            Err(e) => e.errors.iter().map(ToString::to_string).collect(),
        }
    }

    #[test]
    fn parser_cases() {
        // (main.cf, name, raw value wanted)
        let cases = [
            ("a = 1\n", "a", "1"),
            ("myorigin=example.com\n", "myorigin", "example.com"),
            ("# comment\nmyorigin = x.example\n", "myorigin", "x.example"),
            (
                "  # indented comment\nmyorigin = x.example\n",
                "myorigin",
                "x.example",
            ),
            (
                "smtpd_banner = $myhostname # not a comment\n",
                "smtpd_banner",
                "$myhostname # not a comment",
            ),
            ("mydestination = a,\n    b\n", "mydestination", "a,    b"),
            ("mydestination = a,\n# c\n\n  b\n", "mydestination", "a,  b"),
            ("mydestination = a   \t\n", "mydestination", "a"),
            (
                "myorigin = one.example\nmyorigin = two.example\n",
                "myorigin",
                "two.example",
            ),
            ("relayhost =\n", "relayhost", ""),
            ("relayhost = \n", "relayhost", ""),
            ("myorigin = x.example", "myorigin", "x.example"),
            ("myorigin = a.example\r\n", "myorigin", "a.example"),
        ];
        for (text, name, want) in cases {
            let cf = ok(text);
            assert_eq!(cf.raw(name), want, "{text:?}");
        }
    }

    #[test]
    fn malformed_lines_are_errors_and_the_rest_still_loads() {
        let text = "myorigin = a.example\nbadline here\n=value\nqueue_run_delay = 5m\n";
        let (cf, errs) = MainCf::parse_lenient(text, Path::new(FILE), Path::new("/tmp/x"), &[]);
        let got: Vec<String> = errs.iter().map(ToString::to_string).collect();
        assert_eq!(
            got,
            [
                "/tmp/x/main.cf, line 2: missing '=' after attribute name: \"badline here\"",
                "/tmp/x/main.cf, line 3: missing attribute name: \"=value\"",
            ]
        );
        assert_eq!(cf.time("queue_run_delay"), Duration::from_secs(300));
        assert_eq!(cf.str("myorigin"), "a.example");
        assert!(parse(text).is_err());
    }

    #[test]
    fn warnings_in_postfix_words() {
        let cf = ok(" stray = 1\nfoo = bar\nmyorigin = a.example\nmyorigin = b.example\nzz = 1\nmydestination = $zz, $nosuch\n");
        assert_eq!(
            cf.warnings(),
            [
                "/tmp/x/main.cf: logical line must not start with whitespace: \" stray = 1\"",
                "/tmp/x/main.cf, line 4: overriding earlier entry: myorigin=a.example",
                "/tmp/x/main.cf: unused parameter: foo=bar",
                "/tmp/x/main.cf: undefined parameter: nosuch",
            ]
        );
        assert_eq!(cf.list("mydestination"), ["1"]);
        assert!(cf.is_defined("zz"));
        assert!(!cf.is_defined("foo"));
    }

    #[test]
    fn expansion() {
        let cf = ok(concat!(
            "myhostname = mail.example.com\n",
            "mydestination = $myhostname, localhost.$mydomain, ${extra?{$extra}}\n",
            "extra = x.example\n",
            "cost = $$5\n",
            "forward_path = $home/.forward${recipient_delimiter}${extension}\n",
            "maillog_file = log/maillog\n",
        ));
        let cases = [
            ("myhostname", "mail.example.com"),
            ("mydomain", "example.com"),
            ("myorigin", "mail.example.com"),
            (
                "mydestination",
                "mail.example.com, localhost.example.com, x.example",
            ),
            ("cost", "$5"),
            ("local_transport", "local:mail.example.com"),
            ("mynetworks_style", "host"),
            ("relay_domains", ""),
            ("append_dot_mydomain", "no"),
            (
                "forward_path",
                "$home/.forward${recipient_delimiter}${extension}",
            ),
            ("nosuch", ""),
        ];
        for (name, want) in cases {
            assert_eq!(cf.str(name), want, "{name}");
        }
        assert_eq!(cf.raw("myorigin"), "$myhostname");
        assert_eq!(cf.path("maillog_file"), PathBuf::from("/tmp/x/log/maillog"));
        assert_eq!(
            cf.path("queue_directory"),
            PathBuf::from("/var/spool/postfix")
        );
        assert_eq!(cf.path("home_mailbox"), PathBuf::new());
        assert!(!cf.bool("append_dot_mydomain"));
        assert!(cf.bool("smtputf8_enable"));
    }

    #[test]
    fn expansion_errors_name_the_parameter() {
        let cases = [
            (
                "mydestination = ${myhostname\n",
                "/tmp/x/main.cf, line 1: parameter mydestination: truncated macro reference: \"${myhostname\"",
            ),
            (
                "a = $b\nb = $a\nmydestination = $a\n",
                "/tmp/x/main.cf, line 2: parameter b: unreasonable macro call nesting: \"a\" (parameter loop: a -> b -> a)",
            ),
            (
                "broken = ${x\nmydestination = $broken\n",
                "/tmp/x/main.cf, line 1: parameter broken: truncated macro reference: \"${x\"",
            ),
        ];
        for (text, want) in cases {
            assert_eq!(errors(text), [want], "{text:?}");
        }
        // A broken value nobody uses is not evaluated (Postfix ignores it).
        assert!(errors("unused_thing = ${x\n").is_empty());
    }

    #[test]
    fn validation_of_each_kind() {
        let cases: [(&str, Option<&str>); 22] = [
            ("queue_run_delay = 5m\n", None),
            ("queue_run_delay = 90\n", None),
            (
                "queue_run_delay = abc\n",
                Some("line 1: parameter queue_run_delay: bad time value or unit: abc"),
            ),
            (
                "queue_run_delay = 1h30m\n",
                Some("line 1: parameter queue_run_delay: bad time value or unit: 1h30m"),
            ),
            (
                "queue_run_delay = 0\n",
                Some("line 1: invalid queue_run_delay: 0 (min 1)"),
            ),
            ("maximal_queue_lifetime = 0\n", None),
            (
                "maximal_queue_lifetime = 101d\n",
                Some("line 1: invalid maximal_queue_lifetime: 8726400 (max 8640000)"),
            ),
            (
                "in_flow_delay = 11s\n",
                Some("line 1: invalid in_flow_delay: 11 (max 10)"),
            ),
            ("soft_bounce = yes\n", None),
            ("soft_bounce = YES\n", None),
            (
                "soft_bounce = true\n",
                Some("line 1: bad boolean configuration: soft_bounce = true"),
            ),
            ("hopcount_limit = 20\n", None),
            (
                "hopcount_limit = 0\n",
                Some("line 1: invalid hopcount_limit parameter value 0 < 1"),
            ),
            (
                "hopcount_limit = 5x\n",
                Some("line 1: bad numerical configuration: hopcount_limit = 5x"),
            ),
            (
                "default_process_limit = 200 # raised\n",
                Some("line 1: bad numerical configuration: default_process_limit = 200 # raised"),
            ),
            ("message_size_limit = 0\n", None),
            ("message_size_limit = 52428800000\n", None),
            (
                "message_size_limit = -1\n",
                Some("line 1: invalid message_size_limit parameter value -1 < 0"),
            ),
            (
                "line_length_limit = 100\n",
                Some("line 1: invalid line_length_limit parameter value 100 < 512"),
            ),
            ("limit = 7s\nqueue_run_delay = $limit\n", None),
            (
                "limit = 7x\nqueue_run_delay = $limit\n",
                Some("line 2: parameter queue_run_delay: bad time value or unit: 7x"),
            ),
            (
                "myorigin = a b\n",
                Some("line 1: myorigin parameter setting must not contain multiple values: a b"),
            ),
        ];
        for (text, want) in cases {
            let got = errors(text);
            match want {
                None => assert!(got.is_empty(), "{text:?}: {got:?}"),
                Some(w) => assert_eq!(got, [format!("/tmp/x/main.cf, {w}")], "{text:?}"),
            }
        }
        let err = parse("queue_run_delay = abc\n").expect_err("bad value");
        assert_eq!(err.errors[0].param.as_deref(), Some("queue_run_delay"));
        assert_eq!(err.errors[0].line, 1);
    }

    #[test]
    fn typed_getters() {
        let cf = ok("queue_run_delay = 5m\nmaximal_queue_lifetime = 2\ndelay_warning_time = 4\nmessage_size_limit = 0\nbiff = no\n");
        assert_eq!(cf.time("queue_run_delay"), Duration::from_secs(300));
        assert_eq!(
            cf.time("maximal_queue_lifetime"),
            Duration::from_secs(2 * 86_400)
        );
        assert_eq!(cf.time("delay_warning_time"), Duration::from_secs(4 * 3600));
        assert_eq!(cf.time("smtpd_timeout"), Duration::from_secs(300));
        assert_eq!(cf.size("message_size_limit"), 0);
        assert_eq!(cf.size("mailbox_size_limit"), 51_200_000);
        assert_eq!(cf.int("hopcount_limit"), 50);
        assert!(!cf.bool("biff"));
        assert_eq!(cf.list("alias_maps"), ["hash:/etc/aliases"]);
        assert_eq!(cf.list("postern_dns_nameservers"), Vec::<String>::new());
        assert_eq!(cf.str("compatibility_level"), "3.6");
        assert_eq!(cf.str("config_directory"), "/tmp/x");
    }

    #[test]
    #[should_panic(expected = "is not a boolean parameter")]
    fn typed_getter_of_wrong_kind_panics() {
        ok("").bool("myhostname");
    }

    #[test]
    fn host_defaults_follow_postconf5() {
        let host = host::hostname();
        let cf = ok("");
        if host.contains('.') {
            assert_eq!(cf.str("myhostname"), host);
        } else {
            assert_eq!(cf.str("myhostname"), format!("{host}.localdomain"));
            assert_eq!(cf.str("mydomain"), "localdomain");
            let cf = ok("mydomain = example.com\n");
            assert_eq!(cf.str("myhostname"), format!("{host}.example.com"));
        }
        let cases = [
            ("myhostname = a.b.c\n", "a.b.c", "b.c"),
            ("myhostname = abc\n", "abc", "localdomain"),
            ("myhostname = $mydomain\n", "localdomain", "localdomain"),
            (
                "myhostname = m.example\nmydomain = other.example\n",
                "m.example",
                "other.example",
            ),
        ];
        for (text, host, domain) in cases {
            let cf = ok(text);
            assert_eq!(
                (cf.str("myhostname").as_str(), cf.str("mydomain").as_str()),
                (host, domain),
                "{text:?}"
            );
        }
        assert!(!ok("").str("mynetworks").is_empty());
        assert_eq!(
            ok("mynetworks_style = subnet\nmynetworks = 10.0.0.0/8\n").str("mynetworks"),
            "10.0.0.0/8"
        );
        assert_eq!(
            errors("myhostname = bad..name\n"),
            ["/tmp/x/main.cf, line 1: parameter myhostname: bad parameter value: bad..name"]
        );
        assert_eq!(
            errors("myhostname = mx.example\nrelayhost = MX.example\n"),
            ["/tmp/x/main.cf, line 2: myhostname and relayhost parameter settings must not be identical: mx.example"]
        );
    }

    #[test]
    fn overrides() {
        let cf = ok("smtpd_timeout = 60s\nsubmission_level = encrypt\n");
        let o = |n: &str, v: &str| (n.to_string(), v.to_string());
        let sub = cf
            .with_overrides_at(
                &[
                    o("smtpd_timeout", "10s"),
                    o("syslog_name", "postfix/submission"),
                ],
                Path::new("/tmp/x/master.cf"),
                17,
            )
            .expect("valid overrides");
        assert_eq!(sub.time("smtpd_timeout"), Duration::from_secs(10));
        assert_eq!(sub.str("syslog_name"), "postfix/submission");
        assert_eq!(
            sub.location("smtpd_timeout"),
            Some((Path::new("/tmp/x/master.cf"), 17))
        );
        assert_eq!(cf.time("smtpd_timeout"), Duration::from_secs(60));
        let err = cf
            .with_overrides_at(
                &[o("smtpd_timeout", "soon")],
                Path::new("/tmp/x/master.cf"),
                17,
            )
            .expect_err("invalid override");
        assert_eq!(
            err.to_string(),
            "/tmp/x/master.cf, line 17: parameter smtpd_timeout: bad time value or unit: soon"
        );
        let plain = cf
            .with_overrides(&[o("x_unknown", "1")])
            .expect("unknown is a warning");
        assert!(plain
            .warnings()
            .contains(&"/tmp/x/master.cf: unused parameter: x_unknown=1".to_string()));
    }

    #[test]
    fn master_cf_services_define_parameters() {
        let (services, errs) = master_cf::parse(
            "mailman unix - n n - - pipe\n  flags=FRX user=list argv=/bin/true\nsubmission inet n - y - - smtpd\n  -o smtpd_tls_security_level=$submission_tls\n",
            Path::new("/tmp/x/master.cf"),
        );
        assert!(errs.is_empty(), "{errs:?}");
        let (cf, errs) = MainCf::parse_lenient(
            "mailman_destination_recipient_limit = 1\nsubmission_tls = encrypt\n",
            Path::new(FILE),
            Path::new("/tmp/x"),
            &services,
        );
        assert!(errs.is_empty(), "{errs:?}");
        assert!(cf.warnings().is_empty(), "{:?}", cf.warnings());
        assert_eq!(cf.str("mailman_time_limit"), "1000s");
    }

    #[test]
    fn references_are_found() {
        let cases: [(&str, &[&str]); 5] = [
            ("$a ${b} $(c)", &["a", "b", "c"]),
            ("$$a x", &[]),
            ("${ d ? {$e} : {${f}} }", &["d", "e", "f"]),
            (
                "${{$compatibility_level} <level {2} ? {x}}",
                &["compatibility_level"],
            ),
            ("$", &[]),
        ];
        for (v, want) in cases {
            assert_eq!(references(v), want, "{v:?}");
        }
    }

    #[test]
    fn load_reads_the_directory() {
        let dir = tempfile::tempdir().expect("tempdir");
        let err = MainCf::load(dir.path()).expect_err("no main.cf");
        assert_eq!(
            err.to_string(),
            format!(
                "{}/main.cf: open failed: No such file or directory",
                dir.path().display()
            )
        );
        std::fs::write(dir.path().join("main.cf"), "queue_directory = queue\n").expect("write");
        let cf = MainCf::load(dir.path()).expect("loads");
        assert_eq!(cf.path("queue_directory"), dir.path().join("queue"));
        assert_eq!(cf.main_cf_path(), dir.path().join("main.cf"));
        assert_eq!(cf.config_directory(), dir.path());
        assert_eq!(cf.str("config_directory"), dir.path().display().to_string());
        assert!(cf.is_set("queue_directory"));
        assert!(!cf.is_set("myhostname"));
    }
}
