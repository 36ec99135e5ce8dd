//! The parameter table: every name Postern knows, its default and its kind.
//!
//! Owns three things. The defaults, parsed once from
//! `postfix-defaults.txt` (the verbatim output of Debian 12's Postfix
//! 3.7.11 `postconf -d`), with Postern's own values laid over the entries
//! that only made sense for that build ([`POSTERN_DEFAULTS`]) and the
//! entries that are computed per host and per load (`COMPUTED`, see
//! `host.rs` and `main_cf.rs`). The kinds of the parameters Postern reads
//! ([`SPECS`]): every other known name is an unvalidated `Str`. The raw
//! parameters ([`RAW`]), whose values are not subject to `main.cf` `$name`
//! expansion because a delivery agent expands them with its own names.
//!
//! Invariants: names are unique; every name in `SPECS` has a default; a
//! `Time` default unit is one of `s m h d w`. The service-defined names
//! (`<service>_destination_recipient_limit`, ...) are derived from master.cf
//! service names by [`service_defined`].
//!
//! Failure: none at run time; the data file is part of the build and a
//! malformed line in it is skipped (a unit test checks there are none).

use std::collections::BTreeMap;
use std::sync::LazyLock;

use crate::expand::parse_level;
use crate::value::split_list;

/// The verbatim `postconf -d` output of Debian 12's Postfix 3.7.11.
const POSTFIX_DEFAULTS: &str = include_str!("postfix-defaults.txt");

/// Postern's defaults where Debian's build of Postfix had its own (or where
/// Postern adds a parameter). `mail_version` is Postern's version.
pub(crate) const POSTERN_DEFAULTS: &[(&str, &str)] = &[
    // No NIS: Postern reads aliases from the indexed file only.
    ("alias_maps", "hash:/etc/aliases"),
    ("alias_database", "hash:/etc/aliases"),
    // Modern defaults (host mynetworks, empty relay_domains, SMTPUTF8 ...),
    // what Debian writes into a fresh main.cf.
    ("compatibility_level", "3.6"),
    ("mail_version", env!("CARGO_PKG_VERSION")),
    ("mail_name", "Postern"),
    ("mail_spool_directory", "/var/mail"),
    // Paths of Debian's Postfix package that Postern does not have.
    ("daemon_directory", "/usr/libexec/postern"),
    ("shlib_directory", "no"),
    ("html_directory", "no"),
    ("readme_directory", "no"),
    // Postern-specific: nameservers (`ip` or `ip:port`) for the resolver;
    // empty means the system's resolver configuration.
    ("postern_dns_nameservers", ""),
    // smtpd: Postfix 3.9's defaults against SMTP smuggling and unauthorized pipelining, and
    // a definite refusal for relaying (issue 3: "554 5.7.1 Relay access denied").
    ("smtpd_forbid_bare_newline", "normalize"),
    ("smtpd_forbid_unauth_pipelining", "yes"),
    (
        "smtpd_relay_restrictions",
        "permit_mynetworks, permit_sasl_authenticated, reject_unauth_destination",
    ),
    // TLS details in the log and the Received header by default (issue 3).
    ("smtpd_tls_loglevel", "1"),
    ("smtpd_tls_received_header", "yes"),
];

/// Parameters whose defaults are computed for each load (`main_cf.rs`), not
/// taken from the data file, whose values describe the machine `postconf
/// -d` ran on. Listed for the tests that check the computation covers them.
#[cfg(test)]
pub(crate) const COMPUTED: &[&str] = &[
    "myhostname",
    "mydomain",
    "mynetworks",
    "config_directory",
    "process_id",
    "process_name",
];

/// Parameters that are not subject to `main.cf` `$name` expansion: a
/// delivery agent or the SMTP server expands them with its own names
/// (postconf(5): "not subject to Postfix configuration parameter $name
/// expansion").
pub(crate) const RAW: &[&str] = &[
    "alternate_config_directories",
    "command_execution_directory",
    "command_expansion_filter",
    "default_rbl_reply",
    "forward_expansion_filter",
    "forward_path",
    "luser_relay",
    "mailbox_command",
    "postscreen_expansion_filter",
    "postscreen_reject_footer",
    "smtpd_expansion_filter",
    "smtpd_reject_footer",
];

/// Per-transport parameters that exist for each delivery service in
/// master.cf (postconf(5) `transport_destination_concurrency_limit` etc.),
/// with their defaults. `_time_limit` exists for pipe(8) services only.
const TRANSPORT_SUFFIXES: &[(&str, &str)] = &[
    ("_delivery_slot_cost", "$default_delivery_slot_cost"),
    ("_delivery_slot_discount", "$default_delivery_slot_discount"),
    ("_delivery_slot_loan", "$default_delivery_slot_loan"),
    (
        "_destination_concurrency_failed_cohort_limit",
        "$default_destination_concurrency_failed_cohort_limit",
    ),
    (
        "_destination_concurrency_limit",
        "$default_destination_concurrency_limit",
    ),
    (
        "_destination_concurrency_negative_feedback",
        "$default_destination_concurrency_negative_feedback",
    ),
    (
        "_destination_concurrency_positive_feedback",
        "$default_destination_concurrency_positive_feedback",
    ),
    ("_destination_rate_delay", "$default_destination_rate_delay"),
    (
        "_destination_recipient_limit",
        "$default_destination_recipient_limit",
    ),
    ("_extra_recipient_limit", "$default_extra_recipient_limit"),
    (
        "_initial_destination_concurrency",
        "$initial_destination_concurrency",
    ),
    ("_minimum_delivery_slots", "$default_minimum_delivery_slots"),
    ("_recipient_limit", "$default_recipient_limit"),
    ("_recipient_refill_delay", "$default_recipient_refill_delay"),
    ("_recipient_refill_limit", "$default_recipient_refill_limit"),
    ("_transport_rate_delay", "$default_transport_rate_delay"),
];

/// The master.cf commands that are delivery agents scheduled by qmgr.
const DELIVERY_COMMANDS: &[&str] = &["error", "lmtp", "local", "pipe", "smtp", "virtual"];

/// The delivery services of the Debian master.cf that `postconf -d` read
/// when it wrote the data file: the file holds their service-defined
/// parameters too (212 of its lines).
const DATA_FILE_SERVICES: &[&str] = &[
    "bsmtp",
    "error",
    "ifmail",
    "lmtp",
    "local",
    "maildrop",
    "mailman",
    "relay",
    "retry",
    "scalemail-backend",
    "smtp",
    "uucp",
    "virtual",
];

/// Built-in parameters that look service-defined.
const BUILTIN_TRANSPORT_PARAMS: &[&str] = &[
    "local_destination_concurrency_limit",
    "local_destination_recipient_limit",
];

/// For a data-file parameter that exists only because Debian's master.cf
/// defines a delivery service, that service's name.
pub(crate) fn data_file_service(name: &str) -> Option<&'static str> {
    if BUILTIN_TRANSPORT_PARAMS.contains(&name) {
        return None;
    }
    DATA_FILE_SERVICES.iter().copied().find(|service| {
        name.strip_prefix(service).is_some_and(|suffix| {
            suffix == "_time_limit" || TRANSPORT_SUFFIXES.iter().any(|(s, _)| *s == suffix)
        })
    })
}

/// Whether a master.cf command is a delivery agent (has service-defined
/// parameters).
pub(crate) fn is_delivery_command(command: &str) -> bool {
    DELIVERY_COMMANDS.contains(&command)
}

/// The service-defined parameters of one master.cf service: its name plus a
/// transport suffix, with the default.
pub(crate) fn service_defined(service: &str, command: &str) -> Vec<(String, String)> {
    if !is_delivery_command(command) {
        return Vec::new();
    }
    let mut out: Vec<(String, String)> = TRANSPORT_SUFFIXES
        .iter()
        .map(|(suffix, default)| (format!("{service}{suffix}"), (*default).to_string()))
        .collect();
    if command == "pipe" {
        out.push((
            format!("{service}_time_limit"),
            "$command_time_limit".to_string(),
        ));
    }
    out
}

/// How a parameter's value is validated and read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// Any text.
    Str,
    /// `yes` or `no`.
    Bool,
    /// An integer within a C `int`, with Postfix's bounds.
    Int { min: i64, max: i64 },
    /// A time value; `unit` applies when the value has none.
    Time { unit: u8, min: u64, max: u64 },
    /// A byte count.
    Size { min: i64, max: i64 },
    /// A comma/whitespace separated list.
    List,
}

/// Checks an expanded value (`name`, `value`); the error is the whole message.
pub(crate) type Check = fn(&str, &str) -> Result<(), String>;

/// A parameter Postern reads: its kind and any further check of the value.
pub(crate) struct Spec {
    pub(crate) name: &'static str,
    pub(crate) kind: Kind,
    /// Checks the expanded value; the error is the whole message.
    pub(crate) check: Option<Check>,
}

const INT_MAX: i64 = i32::MAX as i64;

const fn s(name: &'static str) -> Spec {
    Spec {
        name,
        kind: Kind::Str,
        check: None,
    }
}
const fn sc(name: &'static str, check: Check) -> Spec {
    Spec {
        name,
        kind: Kind::Str,
        check: Some(check),
    }
}
const fn b(name: &'static str) -> Spec {
    Spec {
        name,
        kind: Kind::Bool,
        check: None,
    }
}
const fn l(name: &'static str) -> Spec {
    Spec {
        name,
        kind: Kind::List,
        check: None,
    }
}
const fn lc(name: &'static str, check: Check) -> Spec {
    Spec {
        name,
        kind: Kind::List,
        check: Some(check),
    }
}
const fn i(name: &'static str, min: i64) -> Spec {
    Spec {
        name,
        kind: Kind::Int { min, max: INT_MAX },
        check: None,
    }
}
const fn t(name: &'static str, unit: u8, min: u64, max: u64) -> Spec {
    Spec {
        name,
        kind: Kind::Time { unit, min, max },
        check: None,
    }
}
const fn z(name: &'static str, min: i64, max: i64) -> Spec {
    Spec {
        name,
        kind: Kind::Size { min, max },
        check: None,
    }
}

/// No upper bound for a time value beyond `conv_time`'s own.
const NO_MAX: u64 = u64::MAX;

/// The parameters Postern reads, with their kinds. Minimums and maximums
/// are Postfix's (its daemons' parameter tables); where Postfix disables
/// the check (minimum 0 for an `int`) Postern still refuses negative counts.
pub(crate) static SPECS: &[Spec] = &[
    // Identity and addressing.
    sc("myhostname", check_hostname),
    sc("mydomain", check_hostname),
    sc("myorigin", check_single_value),
    l("mydestination"),
    sc("relayhost", check_single_value),
    l("relay_domains"),
    l("inet_interfaces"),
    lc("inet_protocols", check_inet_protocols),
    l("mynetworks"),
    sc("mynetworks_style", check_mynetworks_style),
    sc("compatibility_level", check_level),
    l("postern_dns_nameservers"),
    // Directories and identities.
    sc("queue_directory", check_non_empty),
    s("config_directory"),
    sc("command_directory", check_non_empty),
    sc("daemon_directory", check_non_empty),
    sc("data_directory", check_non_empty),
    sc("mail_owner", check_non_empty),
    sc("setgid_group", check_non_empty),
    sc("default_privs", check_non_empty),
    // Local delivery.
    l("alias_maps"),
    l("alias_database"),
    s("home_mailbox"),
    s("mail_spool_directory"),
    s("mailbox_command"),
    l("forward_path"),
    s("recipient_delimiter"),
    lc("allow_mail_to_commands", check_delivery_mask),
    lc("allow_mail_to_files", check_delivery_mask),
    l("local_recipient_maps"),
    s("local_command_shell"),
    s("command_execution_directory"),
    s("command_expansion_filter"),
    s("forward_expansion_filter"),
    l("export_environment"),
    lc("prepend_delivered_header", check_prepend_mask),
    b("frozen_delivered_to"),
    lc("mailbox_delivery_lock", check_lock_mask),
    b("strict_mailbox_ownership"),
    i("deliver_lock_attempts", 1),
    t("deliver_lock_delay", b's', 1, NO_MAX),
    t("stale_lock_time", b's', 1, NO_MAX),
    t("command_time_limit", b's', 1, NO_MAX),
    z("mailbox_size_limit", 0, i64::MAX),
    b("biff"),
    // Address rewriting and routing.
    b("owner_request_special"),
    b("allow_percent_hack"),
    b("swap_bangpath"),
    b("resolve_dequoted_address"),
    b("append_at_myorigin"),
    b("append_dot_mydomain"),
    s("empty_address_recipient"),
    s("local_transport"),
    s("default_transport"),
    s("relay_transport"),
    l("transport_maps"),
    l("virtual_alias_maps"),
    l("virtual_alias_domains"),
    l("canonical_maps"),
    l("sender_canonical_maps"),
    l("recipient_canonical_maps"),
    b("enable_original_recipient"),
    // Queue manager.
    t("queue_run_delay", b's', 1, NO_MAX),
    t("minimal_backoff_time", b's', 1, NO_MAX),
    t("maximal_backoff_time", b's', 1, NO_MAX),
    t("maximal_queue_lifetime", b'd', 0, 8_640_000),
    t("bounce_queue_lifetime", b'd', 0, 8_640_000),
    t("delay_warning_time", b'h', 0, NO_MAX),
    i("qmgr_message_active_limit", 1),
    i("qmgr_message_recipient_limit", 1),
    i("local_destination_concurrency_limit", 0),
    i("local_destination_recipient_limit", 0),
    i("default_destination_concurrency_limit", 0),
    i("default_destination_recipient_limit", 0),
    i("initial_destination_concurrency", 1),
    i("default_process_limit", 1),
    t("transport_retry_time", b's', 1, NO_MAX),
    t("qmgr_clog_warn_time", b's', 0, NO_MAX),
    // Bounces and notices.
    z("bounce_size_limit", 1, INT_MAX),
    lc("notify_classes", check_notify_mask),
    b("soft_bounce"),
    s("double_bounce_sender"),
    s("2bounce_notice_recipient"),
    s("bounce_notice_recipient"),
    s("delay_notice_recipient"),
    s("error_notice_recipient"),
    sc("header_from_format", check_header_from_format),
    // Message content.
    z("message_size_limit", 0, i64::MAX),
    i("hopcount_limit", 1),
    z("line_length_limit", 512, INT_MAX),
    z("header_size_limit", 1, INT_MAX),
    i("duplicate_filter_limit", 0),
    s("undisclosed_recipients_header"),
    b("smtputf8_enable"),
    // Logging.
    s("maillog_file"),
    sc("syslog_name", check_non_empty),
    sc("syslog_facility", check_syslog_facility),
    // SMTP server and IPC.
    i("smtpd_recipient_limit", 1),
    t("smtpd_timeout", b's', 1, NO_MAX),
    s("smtpd_banner"),
    i("smtpd_soft_error_limit", 0),
    i("smtpd_hard_error_limit", 1),
    i("smtpd_junk_command_limit", 1),
    t("smtpd_error_sleep_time", b's', 0, NO_MAX),
    i("smtpd_client_connection_count_limit", 0),
    i("smtpd_recipient_overshoot_limit", 0),
    b("smtpd_helo_required"),
    b("disable_vrfy_command"),
    b("smtpd_delay_reject"),
    b("smtpd_reject_unlisted_recipient"),
    b("smtpd_peername_lookup"),
    b("smtpd_forbid_unauth_pipelining"),
    b("smtpd_tls_received_header"),
    i("smtpd_tls_loglevel", 0),
    b("strict_rfc821_envelopes"),
    sc("smtpd_forbid_bare_newline", check_bare_newline),
    l("smtpd_forbid_bare_newline_exclusions"),
    i("smtpd_forbid_bare_newline_reject_code", 400),
    l("smtpd_discard_ehlo_keywords"),
    l("local_header_rewrite_clients"),
    l("smtpd_client_restrictions"),
    l("smtpd_helo_restrictions"),
    l("smtpd_sender_restrictions"),
    l("smtpd_relay_restrictions"),
    l("smtpd_recipient_restrictions"),
    l("smtpd_data_restrictions"),
    l("smtpd_end_of_data_restrictions"),
    sc("smtpd_tls_security_level", check_tls_level),
    s("smtpd_tls_cert_file"),
    s("smtpd_tls_key_file"),
    i("access_map_reject_code", 400),
    i("access_map_defer_code", 400),
    i("relay_domains_reject_code", 400),
    i("unknown_local_recipient_reject_code", 400),
    i("non_fqdn_reject_code", 400),
    i("invalid_hostname_reject_code", 400),
    i("unknown_address_reject_code", 400),
    i("reject_code", 400),
    i("defer_code", 400),
    t("in_flow_delay", b's', 0, 10),
    t("max_idle", b's', 1, NO_MAX),
    t("ipc_timeout", b's', 1, NO_MAX),
    sc("default_database_type", check_non_empty),
];

fn check_bare_newline(name: &str, value: &str) -> Result<(), String> {
    match value {
        "normalize" | "reject" | "no" | "yes" => Ok(()),
        _ => Err(format!(
            "bad value for {name}: \"{value}\" (expected normalize, reject or no)"
        )),
    }
}

fn check_tls_level(name: &str, value: &str) -> Result<(), String> {
    match value {
        "" | "none" | "may" | "encrypt" => Ok(()),
        _ => Err(format!(
            "invalid {name} value: \"{value}\" (expected none, may or encrypt)"
        )),
    }
}

/// Static defaults: the data file with Postern's values laid over it.
static DEFAULTS: LazyLock<BTreeMap<&'static str, &'static str>> = LazyLock::new(|| {
    let mut map: BTreeMap<&'static str, &'static str> = POSTFIX_DEFAULTS
        .lines()
        .filter_map(|line| {
            let (name, rest) = line.split_once(" =")?;
            Some((name, rest.strip_prefix(' ').unwrap_or(rest)))
        })
        .collect();
    for (name, value) in POSTERN_DEFAULTS {
        map.insert(name, value);
    }
    map
});

#[cfg(test)]
static SPEC_INDEX: LazyLock<BTreeMap<&'static str, &'static Spec>> =
    LazyLock::new(|| SPECS.iter().map(|s| (s.name, s)).collect());

/// The static default of a known parameter (the data file's value for a
/// `COMPUTED` one; callers override those).
pub(crate) fn static_default(name: &str) -> Option<&'static str> {
    DEFAULTS.get(name).copied()
}

/// Every known parameter name with its static default, sorted by name.
pub(crate) fn defaults() -> impl Iterator<Item = (&'static str, &'static str)> {
    DEFAULTS.iter().map(|(n, v)| (*n, *v))
}

/// The spec of a parameter Postern reads.
#[cfg(test)]
pub(crate) fn spec(name: &str) -> Option<&'static Spec> {
    SPEC_INDEX.get(name).copied()
}

/// Whether `name` is expanded by its consumer rather than by `main.cf`.
pub(crate) fn is_raw(name: &str) -> bool {
    RAW.contains(&name)
}

fn check_non_empty(name: &str, v: &str) -> Result<(), String> {
    if v.is_empty() {
        Err(format!("bad string length 0 < 1: {name} = {v}"))
    } else {
        Ok(())
    }
}

/// Postfix's `valid_hostname`: 1..255 characters, labels of 1..63 letters,
/// digits, `-` or `_`, no label starting or ending with `-`, not all numeric.
pub(crate) fn valid_hostname(v: &str) -> bool {
    if v.is_empty() || v.len() > 255 {
        return false;
    }
    let labels_ok = v.split('.').all(|label| {
        !label.is_empty()
            && label.len() <= 63
            && label
                .bytes()
                .all(|c| c.is_ascii_alphanumeric() || c == b'-' || c == b'_')
            && !label.starts_with('-')
            && !label.ends_with('-')
    });
    labels_ok && !v.bytes().all(|c| c.is_ascii_digit() || c == b'.')
}

fn check_hostname(name: &str, v: &str) -> Result<(), String> {
    if valid_hostname(v) {
        Ok(())
    } else {
        Err(format!("parameter {name}: bad parameter value: {v}"))
    }
}

fn check_single_value(name: &str, v: &str) -> Result<(), String> {
    if v.bytes().any(|c| c == b',' || crate::expand::is_space(c)) {
        Err(format!(
            "{name} parameter setting must not contain multiple values: {v}"
        ))
    } else if name == "myorigin" {
        check_non_empty(name, v)
    } else {
        Ok(())
    }
}

fn check_mynetworks_style(name: &str, v: &str) -> Result<(), String> {
    match v {
        "host" | "subnet" | "class" => Ok(()),
        _ => Err(format!("unknown {name} value: {v}")),
    }
}

fn check_inet_protocols(name: &str, v: &str) -> Result<(), String> {
    match split_list(v)
        .iter()
        .find(|p| !matches!(p.as_str(), "all" | "ipv4" | "ipv6"))
    {
        Some(bad) => Err(format!("parameter {name}: unknown protocol name: {bad}")),
        None => Ok(()),
    }
}

fn check_level(name: &str, v: &str) -> Result<(), String> {
    parse_level(v)
        .map(|_| ())
        .map_err(|e| format!("parameter {name}: {e}"))
}

fn check_header_from_format(name: &str, v: &str) -> Result<(), String> {
    match v {
        "standard" | "obsolete" => Ok(()),
        _ => Err(format!("invalid {name} value: \"{v}\"")),
    }
}

fn check_syslog_facility(name: &str, v: &str) -> Result<(), String> {
    const FACILITIES: &[&str] = &[
        "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog",
        "user", "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6",
        "local7",
    ];
    if FACILITIES.contains(&v) {
        Ok(())
    } else {
        Err(format!("parameter {name}: unrecognized value: {v}"))
    }
}

/// Postfix's `name_mask`: every item must be one of `allowed` (any case).
fn check_mask(name: &str, v: &str, allowed: &[&str]) -> Result<(), String> {
    match split_list(v)
        .iter()
        .find(|item| !allowed.iter().any(|a| a.eq_ignore_ascii_case(item)))
    {
        Some(bad) => Err(format!("unknown {name} value \"{bad}\" in \"{v}\"")),
        None => Ok(()),
    }
}

fn check_delivery_mask(name: &str, v: &str) -> Result<(), String> {
    check_mask(name, v, &["alias", "forward", "include"])
}

fn check_prepend_mask(name: &str, v: &str) -> Result<(), String> {
    check_mask(name, v, &["command", "file", "forward"])
}

fn check_lock_mask(name: &str, v: &str) -> Result<(), String> {
    check_mask(name, v, &["flock", "fcntl", "dotlock"])
}

fn check_notify_mask(name: &str, v: &str) -> Result<(), String> {
    check_mask(
        name,
        v,
        &[
            "bounce", "2bounce", "data", "delay", "policy", "protocol", "resource", "software",
        ],
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn data_file_is_complete_and_well_formed() {
        let lines = POSTFIX_DEFAULTS.lines().count();
        let parsed = POSTFIX_DEFAULTS
            .lines()
            .filter(|l| l.split_once(" =").is_some())
            .count();
        assert_eq!(
            lines, parsed,
            "every line of postfix-defaults.txt is `name = value`"
        );
        assert!(
            lines > 1000,
            "the 3.7.11 table has over a thousand parameters"
        );
        assert_eq!(static_default("queue_run_delay"), Some("300s"));
        assert_eq!(static_default("home_mailbox"), Some(""));
        assert_eq!(
            static_default("2bounce_notice_recipient"),
            Some("postmaster")
        );
    }

    #[test]
    fn postern_overrides_win() {
        let cases = [
            ("alias_maps", "hash:/etc/aliases"),
            ("compatibility_level", "3.6"),
            ("mail_version", env!("CARGO_PKG_VERSION")),
            ("postern_dns_nameservers", ""),
        ];
        for (name, want) in cases {
            assert_eq!(static_default(name), Some(want), "{name}");
        }
    }

    #[test]
    fn every_spec_has_a_default_and_a_sane_kind() {
        for spec in SPECS {
            assert!(
                static_default(spec.name).is_some(),
                "{} has no default",
                spec.name
            );
            if let Kind::Time { unit, .. } = spec.kind {
                assert!(b"smhdw".contains(&unit), "{}", spec.name);
            }
            assert_eq!(
                SPECS.iter().filter(|s| s.name == spec.name).count(),
                1,
                "{}",
                spec.name
            );
        }
        for name in RAW.iter().chain(COMPUTED) {
            assert!(static_default(name).is_some(), "{name}");
        }
    }

    #[test]
    fn hostnames() {
        let cases = [
            ("vm", true),
            ("mail.example.com", true),
            ("a_b.example", true),
            ("", false),
            ("-a.example", false),
            ("a-.example", false),
            ("a..b", false),
            ("a.b.", false),
            ("127.0.0.1", false),
            ("a b", false),
        ];
        for (v, want) in cases {
            assert_eq!(valid_hostname(v), want, "{v:?}");
        }
    }

    #[test]
    fn value_checks() {
        let cases: [(&str, &str, bool); 12] = [
            ("myorigin", "example.com", true),
            ("myorigin", "a, b", false),
            ("relayhost", "", true),
            ("relayhost", "[mx]:25 x", false),
            ("mynetworks_style", "subnet", true),
            ("mynetworks_style", "net", false),
            ("inet_protocols", "ipv4, ipv6", true),
            ("inet_protocols", "ipx", false),
            ("allow_mail_to_commands", "alias, forward, include", true),
            ("allow_mail_to_commands", "alias, everything", false),
            ("compatibility_level", "3.6", true),
            ("compatibility_level", "three", false),
        ];
        for (name, v, ok) in cases {
            let check = spec(name).and_then(|s| s.check).expect("has a check");
            assert_eq!(check(name, v).is_ok(), ok, "{name} = {v}");
        }
    }

    #[test]
    fn service_defined_names() {
        let got = service_defined("mailman", "pipe");
        assert!(got.contains(&(
            "mailman_destination_recipient_limit".into(),
            "$default_destination_recipient_limit".into()
        )));
        assert!(got.iter().any(|(n, _)| n == "mailman_time_limit"));
        assert!(!service_defined("relay", "smtp")
            .iter()
            .any(|(n, _)| n == "relay_time_limit"));
        assert!(service_defined("pickup", "pickup").is_empty());
    }

    #[test]
    fn data_file_service_parameters() {
        let cases = [
            ("bsmtp_time_limit", Some("bsmtp")),
            ("smtp_destination_concurrency_limit", Some("smtp")),
            (
                "scalemail-backend_recipient_limit",
                Some("scalemail-backend"),
            ),
            ("local_destination_concurrency_limit", None),
            ("smtp_helo_timeout", None),
            ("error_notice_recipient", None),
        ];
        for (name, want) in cases {
            assert_eq!(data_file_service(name), want, "{name}");
        }
        let count = defaults()
            .filter(|(n, _)| data_file_service(n).is_some())
            .count();
        assert_eq!(count, 212);
    }
}
