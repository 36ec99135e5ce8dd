//! SMTP command lines (RFC 5321 §4.1) as Postfix's smtpd(8) reads them, without I/O.
//!
//! Owns: turning one command line (already split at its line end, CRLF removed) into a
//! [`Command`] with its ESMTP parameters (SIZE, BODY, SMTPUTF8, DSN RET/ENVID/NOTIFY/ORCPT,
//! AUTH), or into a [`CommandError`] that knows the exact reply Postfix 3.7 sends for it
//! ([`CommandError::reply`]); the command word of a line ([`verb`]) so that smtpd can apply
//! its state checks and per-command counters even to lines that do not parse.
//!
//! What is *not* here: session state (HELO first, nested MAIL, need RCPT …), policy (size
//! limits, `disable_vrfy_command`, `smtpd_forbidden_commands`, relay checks) and whether an
//! extension is enabled, except SMTPUTF8 which [`ParseOptions`] carries because it changes
//! what an address may contain. Postfix checks state before syntax for MAIL, RCPT, DATA and
//! ETRN (a `MAIL FROM:<a b>` inside a transaction gets `503 5.5.1 Error: nested MAIL
//! command`), so smtpd should look at [`verb`] first and call [`parse`] after its state
//! checks; for RSET, STARTTLS and BDAT Postfix reports syntax first.
//!
//! Checks, in Postfix's order where Postfix has one: line length ([`ParseOptions::max_line`]),
//! NUL/CR/LF anywhere, UTF-8 validity, the command word; for MAIL/RCPT the address syntax
//! ([`address::parse_envelope`], which also refuses a leading `-`), then each parameter left
//! to right (unknown, malformed or repeated), then 8-bit characters in the address, which
//! need SMTPUTF8 (RFC 6531).
//!
//! Invariants: [`parse`] never panics, runs in time linear in the line and allocates at most
//! a small constant times the line length; every string it returns comes from the line (a
//! piece of it, an address in its canonical external form, or an ENVID/ORCPT xtext decoding)
//! and contains no NUL, CR or LF. Keywords and fixed values are case-insensitive.
//!
//! Failure: every rejection is a [`CommandError`] variant with one fixed reply; the texts are
//! those Postfix 3.7.11 sends (observed with its stand-alone smtpd), except where a variant's
//! documentation says otherwise.

use crate::address;
use crate::reply::Reply;
use crate::xtext;
use std::fmt;
use std::net::{Ipv4Addr, Ipv6Addr};

/// Longest command line accepted when [`ParseOptions::max_line`] is 0: Postfix's
/// `line_length_limit` default (bytes, without CRLF).
pub const DEFAULT_MAX_LINE: usize = 2048;
/// Longest `ENVID=` value, in characters as sent (RFC 3461 §4.4).
pub const MAX_ENVID_LEN: usize = 100;
/// Longest `ORCPT=` value (`addr-type;xtext`), in characters as sent (RFC 3461 §4.2).
pub const MAX_ORCPT_LEN: usize = 500;
/// Largest BDAT chunk size Postfix accepts (`off_t`); a larger count is a syntax error.
pub const MAX_BDAT_SIZE: u64 = i64::MAX as u64;

/// DSN NOTIFY bits, the same values as `queue::notify` (the queue file stores them).
pub mod notify {
    pub const NEVER: u8 = 1;
    pub const SUCCESS: u8 = 2;
    pub const FAILURE: u8 = 4;
    pub const DELAY: u8 = 8;
}

/// One parsed SMTP command.
///
/// Postfix implements neither EXPN nor HELP and answers both with
/// `500 5.5.2 Error: command not recognized` ([`CommandError::Unrecognized`]'s reply); they
/// are parsed here so that smtpd can count and answer them like Postfix does.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Command {
    /// `HELO name`: the rest of the line, trimmed (Postfix accepts `HELO a b`).
    Helo(String),
    /// `EHLO name`: the rest of the line, trimmed.
    Ehlo(String),
    /// `MAIL FROM:<address> [params]`.
    Mail {
        /// The sender in external form (see [`address::parse_envelope`]), `""` for `<>`.
        from: String,
        params: MailParams,
    },
    /// `RCPT TO:<address> [params]`.
    Rcpt {
        /// The recipient in external form; never empty.
        to: String,
        params: RcptParams,
    },
    /// `DATA` (no argument).
    Data,
    /// `BDAT size [LAST]` (RFC 3030). `size` is at most [`MAX_BDAT_SIZE`]; `BDAT 0` without
    /// LAST is returned as is (Postfix answers it `551 5.7.1 Null BDAT request`, a policy).
    Bdat { size: u64, last: bool },
    /// `RSET` (no argument).
    Rset,
    /// `NOOP`, any argument ignored (RFC 5321 §4.1.1.9).
    Noop,
    /// `QUIT`, any argument ignored (as Postfix does).
    Quit,
    /// `STARTTLS` (no argument, RFC 3207).
    StartTls,
    /// `VRFY address [SMTPUTF8]`: the address as the client wrote it (Postfix echoes it:
    /// `252 2.0.0 <x@y>`), already checked to be a valid, non-null address.
    Vrfy(String),
    /// `EXPN list`: the rest of the line, trimmed, unchecked.
    Expn(String),
    /// `HELP [topic]`.
    Help(Option<String>),
    /// `ETRN domain`: the argument as given, with its optional `@` or `#` prefix; checked to
    /// be a host name or address literal as Postfix does.
    Etrn(String),
    /// `AUTH ...`: the rest of the line, trimmed, for the SASL layer.
    Auth(String),
}

/// The ESMTP parameters of `MAIL FROM`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MailParams {
    /// `SIZE=n` (RFC 1870). A value too large for `u64` is kept as `u64::MAX`, so that smtpd
    /// answers it like Postfix does (`552 5.3.4 Message size exceeds file system imposed
    /// limit`) rather than as a syntax error.
    pub size: Option<u64>,
    /// `BODY=7BIT|8BITMIME` (RFC 6152).
    pub body: Option<Body>,
    /// `SMTPUTF8` (RFC 6531); only accepted when [`ParseOptions::smtputf8`] is set.
    pub smtputf8: bool,
    /// `RET=FULL|HDRS` (RFC 3461).
    pub ret: Option<Ret>,
    /// `ENVID=`, xtext-decoded: printable ASCII, 1 to [`MAX_ENVID_LEN`] characters as sent.
    pub envid: Option<String>,
    /// `AUTH=` (RFC 4954), exactly as sent (`<>` or xtext), unchecked: the SASL layer decides
    /// (Postfix without SASL ignores it, whatever it holds).
    pub auth: Option<String>,
}

/// `BODY=` values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    SevenBit,
    EightBitMime,
    /// RFC 3030 BINARYMIME. Postfix does not offer it and answers `BODY=BINARYMIME` with
    /// `555 5.5.4 Unsupported option: BODY=BINARYMIME`, so [`parse`] never returns it.
    BinaryMime,
}

impl Body {
    /// The keyword as written in `BODY=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Body::SevenBit => "7BIT",
            Body::EightBitMime => "8BITMIME",
            Body::BinaryMime => "BINARYMIME",
        }
    }
}

/// `RET=` values (RFC 3461 §4.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Ret {
    Full,
    Hdrs,
}

impl Ret {
    /// The keyword as written in `RET=`.
    pub fn as_str(self) -> &'static str {
        match self {
            Ret::Full => "FULL",
            Ret::Hdrs => "HDRS",
        }
    }
}

/// The ESMTP parameters of `RCPT TO`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RcptParams {
    /// `NOTIFY=` as [`notify`] bits: `NEVER` alone, or any of SUCCESS, FAILURE, DELAY.
    pub notify: Option<u8>,
    /// `ORCPT=addr-type;xtext`, decoded: `"rfc822;user@example.com"`. The addr-type is kept
    /// as sent; the address part may be empty (Postfix accepts `ORCPT=rfc822;`).
    pub orcpt: Option<String>,
}

/// What the session allows; smtpd fills this in per command.
#[derive(Debug, Clone, Copy, Default)]
pub struct ParseOptions {
    /// The server announced SMTPUTF8 (Postfix `smtputf8_enable = yes`). Without it the
    /// `SMTPUTF8` parameter is an unsupported option.
    pub smtputf8: bool,
    /// The MAIL command of the current transaction had SMTPUTF8 (used for RCPT).
    pub transaction_utf8: bool,
    /// Longest command line accepted, in bytes without CRLF; 0 means [`DEFAULT_MAX_LINE`].
    pub max_line: usize,
}

/// The command word of a line, for state checks and Postfix's per-command counters
/// (`ehlo=1 mail=1 rcpt=0/1 ...` in the `disconnect from` log line).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Helo,
    Ehlo,
    Mail,
    Rcpt,
    Data,
    Bdat,
    Rset,
    Noop,
    Quit,
    StartTls,
    Vrfy,
    Expn,
    Help,
    Etrn,
    Auth,
}

const VERBS: [Verb; 15] = [
    Verb::Helo,
    Verb::Ehlo,
    Verb::Mail,
    Verb::Rcpt,
    Verb::Data,
    Verb::Bdat,
    Verb::Rset,
    Verb::Noop,
    Verb::Quit,
    Verb::StartTls,
    Verb::Vrfy,
    Verb::Expn,
    Verb::Help,
    Verb::Etrn,
    Verb::Auth,
];

impl Verb {
    /// The command word in upper case (`"STARTTLS"`).
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Helo => "HELO",
            Verb::Ehlo => "EHLO",
            Verb::Mail => "MAIL",
            Verb::Rcpt => "RCPT",
            Verb::Data => "DATA",
            Verb::Bdat => "BDAT",
            Verb::Rset => "RSET",
            Verb::Noop => "NOOP",
            Verb::Quit => "QUIT",
            Verb::StartTls => "STARTTLS",
            Verb::Vrfy => "VRFY",
            Verb::Expn => "EXPN",
            Verb::Help => "HELP",
            Verb::Etrn => "ETRN",
            Verb::Auth => "AUTH",
        }
    }

    fn from_word(word: &[u8]) -> Option<Verb> {
        VERBS
            .into_iter()
            .find(|v| v.as_str().as_bytes().eq_ignore_ascii_case(word))
    }
}

impl fmt::Display for Verb {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Command {
    /// The command word this command was given with.
    pub fn verb(&self) -> Verb {
        match self {
            Command::Helo(_) => Verb::Helo,
            Command::Ehlo(_) => Verb::Ehlo,
            Command::Mail { .. } => Verb::Mail,
            Command::Rcpt { .. } => Verb::Rcpt,
            Command::Data => Verb::Data,
            Command::Bdat { .. } => Verb::Bdat,
            Command::Rset => Verb::Rset,
            Command::Noop => Verb::Noop,
            Command::Quit => Verb::Quit,
            Command::StartTls => Verb::StartTls,
            Command::Vrfy(_) => Verb::Vrfy,
            Command::Expn(_) => Verb::Expn,
            Command::Help(_) => Verb::Help,
            Command::Etrn(_) => Verb::Etrn,
            Command::Auth(_) => Verb::Auth,
        }
    }
}

/// The command word of `line` if it is one [`parse`] knows (case-insensitive, leading
/// white space skipped), whether or not the rest of the line parses. `None` for anything
/// else, which Postfix counts as `unknown`.
pub fn verb(line: &[u8]) -> Option<Verb> {
    let (word, _) = split_word(trim_start(line));
    Verb::from_word(word)
}

/// An ESMTP parameter that [`parse`] interprets, for errors about its value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Param {
    Size,
    Body,
    Smtputf8,
    Ret,
    Envid,
    Auth,
    Notify,
    Orcpt,
}

impl Param {
    /// The keyword (`"ENVID"`).
    pub fn keyword(self) -> &'static str {
        match self {
            Param::Size => "SIZE",
            Param::Body => "BODY",
            Param::Smtputf8 => "SMTPUTF8",
            Param::Ret => "RET",
            Param::Envid => "ENVID",
            Param::Auth => "AUTH",
            Param::Notify => "NOTIFY",
            Param::Orcpt => "ORCPT",
        }
    }

    /// Postfix's reply to a bad value of this parameter.
    fn bad_value_reply(self) -> Reply {
        match self {
            Param::Size => Reply::new(501, "5.5.4", "Bad message size syntax"),
            Param::Notify | Param::Orcpt => Reply::new(
                501,
                "5.5.4",
                format!("Error: Bad {} parameter syntax", self.keyword()),
            ),
            _ => Reply::new(
                501,
                "5.5.4",
                format!("Bad {} parameter syntax", self.keyword()),
            ),
        }
    }
}

impl fmt::Display for Param {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.keyword())
    }
}

/// Why a command line was refused. Each variant has one reply ([`CommandError::reply`]).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum CommandError {
    /// The line is longer than [`ParseOptions::max_line`]. `500 5.5.2 Error: line too long`.
    /// (Postfix itself silently cuts such a line at `line_length_limit` and discards the
    /// rest; Postern refuses it instead, so that a cut can never change a command's meaning.)
    #[error("line too long")]
    LineTooLong,
    /// The line contains NUL, CR or LF. `500 5.5.2 Error: bad syntax`. (Postfix tolerates
    /// these inside arguments; Postern refuses them everywhere.)
    #[error("NUL, CR or LF in command line")]
    BadChar,
    /// The line is empty or only white space. `500 5.5.2 Error: bad syntax`.
    #[error("empty command line")]
    EmptyLine,
    /// The line is not valid UTF-8. `500 5.5.2 Error: bad UTF-8 syntax` (what Postfix sends
    /// with `smtputf8_enable = yes`; Postern refuses it whatever the setting).
    #[error("command line is not valid UTF-8")]
    BadUtf8,
    /// Not a command Postern knows. `500 5.5.2 Error: command not recognized`.
    #[error("command not recognized")]
    Unrecognized,
    /// The line looks like a message header (`Subject: ...`, `MAILFROM:<x>`): the client is
    /// not speaking SMTP. `221 2.7.0 Error: I can break rules, too. Goodbye.`, and smtpd
    /// closes the session ([`CommandError::closes_session`]). Postfix does this for every
    /// unknown command in `Label:` form, besides its `smtpd_forbidden_commands` list.
    #[error("non-SMTP command")]
    NonSmtp,
    /// HELO/EHLO without a name. `501 Syntax: HELO hostname` / `501 Syntax: EHLO hostname`
    /// (no enhanced status code, as in Postfix).
    #[error("Syntax: {} hostname", if *.ehlo { "EHLO" } else { "HELO" })]
    HeloSyntax { ehlo: bool },
    /// MAIL not followed by `FROM:` and an address. `501 5.5.4 Syntax: MAIL FROM:<address>`.
    #[error("Syntax: MAIL FROM:<address>")]
    MailSyntax,
    /// RCPT not followed by `TO:` and an address. `501 5.5.4 Syntax: RCPT TO:<address>`.
    #[error("Syntax: RCPT TO:<address>")]
    RcptSyntax,
    /// The sender (as given) is not a valid address. `501 5.1.7 Bad sender address syntax`.
    #[error("Bad sender address syntax: {0}")]
    BadSender(String),
    /// The recipient (as given, in RCPT or VRFY) is not a valid, non-null address.
    /// `501 5.1.3 Bad recipient address syntax`.
    #[error("Bad recipient address syntax: {0}")]
    BadRecipient(String),
    /// Non-ASCII address without SMTPUTF8 (RFC 6531 §3.4).
    /// `553 5.6.7 Must declare SMTPUTF8 to send unicode address` (Postfix's text with
    /// `strict_smtputf8 = yes`; Postern always applies it).
    #[error("Must declare SMTPUTF8 to send unicode address")]
    EightBitWithoutSmtputf8,
    /// An unknown parameter, a known one without its value (or with one it must not have),
    /// or a `BODY=` value other than 7BIT or 8BITMIME; holds the parameter as sent.
    /// `555 5.5.4 Unsupported option: FOO=bar`.
    #[error("Unsupported option: {0}")]
    UnsupportedParam(String),
    /// A parameter value that does not parse: `501 5.5.4 Bad message size syntax` (SIZE),
    /// `501 5.5.4 Bad RET parameter syntax` (likewise ENVID, and BODY, SMTPUTF8 and AUTH,
    /// for which Postfix has no such reply), `501 5.5.4 Error: Bad NOTIFY parameter syntax`
    /// (likewise ORCPT).
    #[error("bad {0} parameter value")]
    BadParamValue(Param),
    /// A parameter given twice. Same reply as [`CommandError::BadParamValue`] (what Postfix
    /// sends for a repeated RET, ENVID, NOTIFY or ORCPT), except AUTH:
    /// `503 5.5.4 Error: multiple AUTH= options`. (Postfix lets a repeated SIZE, BODY or
    /// SMTPUTF8 pass, the last one winning; Postern refuses every repeat.)
    #[error("{0} parameter given twice")]
    DuplicateParam(Param),
    /// BDAT without a valid count, or with something other than LAST after it.
    /// `521 5.5.4 Syntax: BDAT count [LAST]`; Postfix then closes the session, since it
    /// cannot tell where the chunk ends ([`CommandError::closes_session`]).
    #[error("Syntax: BDAT count [LAST]")]
    BdatSyntax,
    /// DATA, RSET or STARTTLS with an argument. `501 5.5.4 Syntax: DATA` (etc.).
    #[error("Syntax: {0}")]
    UnexpectedArgument(Verb),
    /// VRFY without an argument. `501 5.5.4 Syntax: VRFY address [SMTPUTF8]`.
    #[error("Syntax: VRFY address [SMTPUTF8]")]
    VrfySyntax,
    /// ETRN without exactly one argument. `500 Syntax: ETRN domain` (no enhanced code).
    #[error("Syntax: ETRN domain")]
    EtrnSyntax,
    /// ETRN with something that is not a domain. `501 Error: invalid parameter syntax`.
    #[error("Error: invalid parameter syntax")]
    EtrnDomain,
}

impl CommandError {
    /// The reply smtpd sends for this error.
    pub fn reply(&self) -> Reply {
        use CommandError as E;
        match self {
            E::LineTooLong => Reply::new(500, "5.5.2", "Error: line too long"),
            E::BadChar | E::EmptyLine => Reply::new(500, "5.5.2", "Error: bad syntax"),
            E::BadUtf8 => Reply::new(500, "5.5.2", "Error: bad UTF-8 syntax"),
            E::Unrecognized => Reply::new(500, "5.5.2", "Error: command not recognized"),
            E::NonSmtp => Reply::new(221, "2.7.0", "Error: I can break rules, too. Goodbye."),
            E::HeloSyntax { ehlo } => Reply::new(
                501,
                "",
                format!("Syntax: {} hostname", if *ehlo { "EHLO" } else { "HELO" }),
            ),
            E::MailSyntax => Reply::new(501, "5.5.4", "Syntax: MAIL FROM:<address>"),
            E::RcptSyntax => Reply::new(501, "5.5.4", "Syntax: RCPT TO:<address>"),
            E::BadSender(_) => Reply::new(501, "5.1.7", "Bad sender address syntax"),
            E::BadRecipient(_) => Reply::new(501, "5.1.3", "Bad recipient address syntax"),
            E::EightBitWithoutSmtputf8 => Reply::new(
                553,
                "5.6.7",
                "Must declare SMTPUTF8 to send unicode address",
            ),
            E::UnsupportedParam(p) => Reply::new(555, "5.5.4", format!("Unsupported option: {p}")),
            E::BadParamValue(p) => p.bad_value_reply(),
            E::DuplicateParam(Param::Auth) => {
                Reply::new(503, "5.5.4", "Error: multiple AUTH= options")
            }
            E::DuplicateParam(p) => p.bad_value_reply(),
            E::BdatSyntax => Reply::new(521, "5.5.4", "Syntax: BDAT count [LAST]"),
            E::UnexpectedArgument(v) => Reply::new(501, "5.5.4", format!("Syntax: {v}")),
            E::VrfySyntax => Reply::new(501, "5.5.4", "Syntax: VRFY address [SMTPUTF8]"),
            E::EtrnSyntax => Reply::new(500, "", "Syntax: ETRN domain"),
            E::EtrnDomain => Reply::new(501, "", "Error: invalid parameter syntax"),
        }
    }

    /// Whether smtpd must close the session after sending [`CommandError::reply`]
    /// (the 221 to a non-SMTP command, the 521 to a bad BDAT).
    pub fn closes_session(&self) -> bool {
        matches!(self, CommandError::NonSmtp | CommandError::BdatSyntax)
    }
}

/// Parse one command line (without the trailing CRLF). Verbs are case-insensitive; extra
/// white space between `FROM:` and `<` is accepted (as Postfix does by default); the address
/// must be in angle brackets for MAIL/RCPT unless it is a bare address (Postfix accepts
/// `MAIL FROM:user@x` when strict_rfc821_envelopes = no — do the same); parameters are
/// KEYWORD or KEYWORD=value separated by spaces.
///
/// White space is space or tab. See the module contract for the order of the checks.
pub fn parse(line: &[u8], opts: &ParseOptions) -> Result<Command, CommandError> {
    let max = if opts.max_line == 0 {
        DEFAULT_MAX_LINE
    } else {
        opts.max_line
    };
    if line.len() > max {
        return Err(CommandError::LineTooLong);
    }
    if line.iter().any(|&b| matches!(b, 0 | b'\r' | b'\n')) {
        return Err(CommandError::BadChar);
    }
    let text = std::str::from_utf8(line).map_err(|_| CommandError::BadUtf8)?;
    let text = trim(text);
    if text.is_empty() {
        return Err(CommandError::EmptyLine);
    }
    let (word, rest) = split_word_str(text);
    let Some(verb) = Verb::from_word(word.as_bytes()) else {
        return Err(if looks_like_header(word) {
            CommandError::NonSmtp
        } else {
            CommandError::Unrecognized
        });
    };
    let rest = trim(rest);
    match verb {
        Verb::Helo | Verb::Ehlo => {
            let ehlo = verb == Verb::Ehlo;
            if rest.is_empty() {
                return Err(CommandError::HeloSyntax { ehlo });
            }
            let name = rest.to_owned();
            Ok(if ehlo {
                Command::Ehlo(name)
            } else {
                Command::Helo(name)
            })
        }
        Verb::Mail => parse_mail(rest, opts),
        Verb::Rcpt => parse_rcpt(rest, opts),
        Verb::Data => no_argument(rest, verb, Command::Data),
        Verb::Rset => no_argument(rest, verb, Command::Rset),
        Verb::StartTls => no_argument(rest, verb, Command::StartTls),
        Verb::Noop => Ok(Command::Noop),
        Verb::Quit => Ok(Command::Quit),
        Verb::Bdat => parse_bdat(rest),
        Verb::Vrfy => parse_vrfy(rest, opts),
        Verb::Expn => Ok(Command::Expn(rest.to_owned())),
        Verb::Help => Ok(Command::Help((!rest.is_empty()).then(|| rest.to_owned()))),
        Verb::Etrn => parse_etrn(rest),
        Verb::Auth => Ok(Command::Auth(rest.to_owned())),
    }
}

fn no_argument(rest: &str, verb: Verb, cmd: Command) -> Result<Command, CommandError> {
    if rest.is_empty() {
        Ok(cmd)
    } else {
        Err(CommandError::UnexpectedArgument(verb))
    }
}

fn parse_mail(rest: &str, opts: &ParseOptions) -> Result<Command, CommandError> {
    let after = strip_prefix_ci(rest, "FROM:").ok_or(CommandError::MailSyntax)?;
    let after = trim(after);
    if after.is_empty() {
        return Err(CommandError::MailSyntax);
    }
    let (raw, params_text) = split_address(after).map_err(CommandError::BadSender)?;
    let from =
        address::parse_envelope(raw, true).map_err(|_| CommandError::BadSender(raw.to_owned()))?;

    let mut params = MailParams::default();
    for token in words(params_text) {
        let (key, value) = split_param(token);
        let unsupported = || CommandError::UnsupportedParam(token.to_owned());
        let param = match key.to_ascii_uppercase().as_str() {
            "SIZE" => Param::Size,
            "BODY" => Param::Body,
            "SMTPUTF8" => Param::Smtputf8,
            "RET" => Param::Ret,
            "ENVID" => Param::Envid,
            "AUTH" => Param::Auth,
            _ => return Err(unsupported()),
        };
        if param == Param::Smtputf8 {
            if value.is_some() || !opts.smtputf8 {
                return Err(unsupported());
            }
            if params.smtputf8 {
                return Err(CommandError::DuplicateParam(param));
            }
            params.smtputf8 = true;
            continue;
        }
        let Some(value) = value else {
            return Err(unsupported());
        };
        let duplicate = match param {
            Param::Size => params.size.is_some(),
            Param::Body => params.body.is_some(),
            Param::Ret => params.ret.is_some(),
            Param::Envid => params.envid.is_some(),
            _ => params.auth.is_some(),
        };
        if duplicate {
            return Err(CommandError::DuplicateParam(param));
        }
        let bad = || CommandError::BadParamValue(param);
        match param {
            Param::Size => params.size = Some(parse_size(value).ok_or_else(bad)?),
            Param::Body => {
                params.body = Some(if value.eq_ignore_ascii_case("7BIT") {
                    Body::SevenBit
                } else if value.eq_ignore_ascii_case("8BITMIME") {
                    Body::EightBitMime
                } else {
                    return Err(unsupported());
                });
            }
            Param::Ret => {
                params.ret = Some(if value.eq_ignore_ascii_case("FULL") {
                    Ret::Full
                } else if value.eq_ignore_ascii_case("HDRS") {
                    Ret::Hdrs
                } else {
                    return Err(bad());
                });
            }
            Param::Envid => {
                if value.is_empty() || value.len() > MAX_ENVID_LEN {
                    return Err(bad());
                }
                params.envid = Some(xtext::decode(value).map_err(|_| bad())?);
            }
            _ => params.auth = Some(value.to_owned()),
        }
    }
    check_eight_bit(raw, opts.smtputf8 && params.smtputf8)?;
    Ok(Command::Mail { from, params })
}

fn parse_rcpt(rest: &str, opts: &ParseOptions) -> Result<Command, CommandError> {
    let after = strip_prefix_ci(rest, "TO:").ok_or(CommandError::RcptSyntax)?;
    let after = trim(after);
    if after.is_empty() {
        return Err(CommandError::RcptSyntax);
    }
    let (raw, params_text) = split_address(after).map_err(CommandError::BadRecipient)?;
    let to = match address::parse_envelope(raw, true) {
        Ok(a) if !a.is_empty() => a,
        _ => return Err(CommandError::BadRecipient(raw.to_owned())),
    };

    let mut params = RcptParams::default();
    for token in words(params_text) {
        let (key, value) = split_param(token);
        let param = match key.to_ascii_uppercase().as_str() {
            "NOTIFY" => Param::Notify,
            "ORCPT" => Param::Orcpt,
            _ => return Err(CommandError::UnsupportedParam(token.to_owned())),
        };
        let Some(value) = value else {
            return Err(CommandError::UnsupportedParam(token.to_owned()));
        };
        let bad = CommandError::BadParamValue(param);
        if param == Param::Notify {
            if params.notify.is_some() {
                return Err(CommandError::DuplicateParam(param));
            }
            params.notify = Some(parse_notify(value).ok_or(bad)?);
        } else {
            if params.orcpt.is_some() {
                return Err(CommandError::DuplicateParam(param));
            }
            params.orcpt = Some(parse_orcpt(value).ok_or(bad)?);
        }
    }
    check_eight_bit(raw, opts.smtputf8 && opts.transaction_utf8)?;
    Ok(Command::Rcpt { to, params })
}

/// An address with non-ASCII characters needs SMTPUTF8 in use (RFC 6531 §3.4).
fn check_eight_bit(addr: &str, smtputf8_in_use: bool) -> Result<(), CommandError> {
    if addr.is_ascii() || smtputf8_in_use {
        Ok(())
    } else {
        Err(CommandError::EightBitWithoutSmtputf8)
    }
}

/// `NEVER`, or a comma-separated list of SUCCESS, FAILURE, DELAY. Like Postfix, empty list
/// elements and repeats are tolerated (`SUCCESS,` and `SUCCESS,SUCCESS` pass).
fn parse_notify(value: &str) -> Option<u8> {
    let mut mask = 0u8;
    for item in value.split(',').filter(|s| !s.is_empty()) {
        mask |= if item.eq_ignore_ascii_case("NEVER") {
            notify::NEVER
        } else if item.eq_ignore_ascii_case("SUCCESS") {
            notify::SUCCESS
        } else if item.eq_ignore_ascii_case("FAILURE") {
            notify::FAILURE
        } else if item.eq_ignore_ascii_case("DELAY") {
            notify::DELAY
        } else {
            return None;
        };
    }
    let valid = mask != 0 && (mask == notify::NEVER || mask & notify::NEVER == 0);
    valid.then_some(mask)
}

/// `addr-type ";" xtext` with addr-type an RFC 5322 atom; returns `addr-type;decoded`.
fn parse_orcpt(value: &str) -> Option<String> {
    if value.len() > MAX_ORCPT_LEN {
        return None;
    }
    let (kind, addr) = value.split_once(';')?;
    if kind.is_empty() || !kind.chars().all(|c| c.is_ascii() && address::is_atext(c)) {
        return None;
    }
    let decoded = xtext::decode(addr).ok()?;
    Some(format!("{kind};{decoded}"))
}

/// Decimal digits only (no sign); saturates at `u64::MAX`.
fn parse_size(value: &str) -> Option<u64> {
    if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    Some(value.bytes().fold(0u64, |n, d| {
        n.saturating_mul(10).saturating_add(u64::from(d - b'0'))
    }))
}

fn parse_bdat(rest: &str) -> Result<Command, CommandError> {
    let mut it = words(rest);
    let (Some(count), last, None) = (it.next(), it.next(), it.next()) else {
        return Err(CommandError::BdatSyntax);
    };
    let last = match last {
        None => false,
        Some(w) if w.eq_ignore_ascii_case("LAST") => true,
        Some(_) => return Err(CommandError::BdatSyntax),
    };
    if count.is_empty() || !count.bytes().all(|b| b.is_ascii_digit()) {
        return Err(CommandError::BdatSyntax);
    }
    match count.parse::<u64>() {
        Ok(size) if size <= MAX_BDAT_SIZE => Ok(Command::Bdat { size, last }),
        _ => Err(CommandError::BdatSyntax),
    }
}

/// `VRFY address [SMTPUTF8]`: Postfix checks the address like a recipient.
fn parse_vrfy(rest: &str, opts: &ParseOptions) -> Result<Command, CommandError> {
    if rest.is_empty() {
        return Err(CommandError::VrfySyntax);
    }
    let (mut addr, mut utf8) = (rest, false);
    if opts.smtputf8 {
        if let Some(i) = rest.rfind([' ', '\t']) {
            let (head, last) = (rest.get(..i), rest.get(i + 1..));
            if let (Some(head), Some(last)) = (head, last) {
                if last.eq_ignore_ascii_case("SMTPUTF8") {
                    addr = trim(head);
                    utf8 = true;
                }
            }
        }
    }
    match address::parse_envelope(addr, true) {
        Ok(a) if !a.is_empty() => {}
        _ => return Err(CommandError::BadRecipient(addr.to_owned())),
    }
    check_eight_bit(addr, opts.smtputf8 && utf8)?;
    Ok(Command::Vrfy(addr.to_owned()))
}

/// `ETRN [@|#]domain`: one word, a host name (not all-numeric) or an address literal.
fn parse_etrn(rest: &str) -> Result<Command, CommandError> {
    let mut it = words(rest);
    let (Some(arg), None) = (it.next(), it.next()) else {
        return Err(CommandError::EtrnSyntax);
    };
    let domain = arg.strip_prefix(['@', '#']).unwrap_or(arg);
    if !valid_etrn_domain(domain) {
        return Err(CommandError::EtrnDomain);
    }
    Ok(Command::Etrn(arg.to_owned()))
}

fn valid_etrn_domain(d: &str) -> bool {
    if let Some(inner) = d.strip_prefix('[').and_then(|s| s.strip_suffix(']')) {
        if inner.parse::<Ipv4Addr>().is_ok() {
            return true;
        }
        let is_v6_tag = inner
            .get(..5)
            .is_some_and(|t| t.eq_ignore_ascii_case("IPv6:"));
        return is_v6_tag
            && inner
                .get(5..)
                .is_some_and(|a| a.parse::<Ipv6Addr>().is_ok());
    }
    if d.is_empty() || d.len() > address::MAX_DOMAIN_LEN {
        return false;
    }
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
    });
    let all_numeric = d.bytes().all(|b| b.is_ascii_digit() || b == b'.');
    labels_ok && !all_numeric
}

/// Split the address off the front of `s` (which is not empty and starts with no white
/// space): `<...>` up to the `>` outside quotes, or a bare address up to white space outside
/// quotes. Returns the address text and the rest. Text glued to a closing `>` is an error
/// naming that whole word.
fn split_address(s: &str) -> Result<(&str, &str), String> {
    let bytes = s.as_bytes();
    let angle = bytes.first() == Some(&b'<');
    let mut in_quote = false;
    let mut i = 0;
    let mut end = None;
    while let Some(&b) = bytes.get(i) {
        if in_quote {
            match b {
                b'\\' => i += 1,
                b'"' => in_quote = false,
                _ => {}
            }
        } else {
            match b {
                b'"' => in_quote = true,
                b'>' if angle => {
                    end = Some(i + 1);
                    break;
                }
                b' ' | b'\t' if !angle => {
                    end = Some(i);
                    break;
                }
                _ => {}
            }
        }
        i += 1;
    }
    // Unterminated `<` or quote: the whole remainder is the (bad) address.
    let end = end.unwrap_or(s.len()).min(s.len());
    let (addr, rest) = s.split_at_checked(end).unwrap_or((s, ""));
    if !rest.is_empty() && !rest.starts_with([' ', '\t']) {
        let (glued, _) = split_word_str(s);
        return Err(glued.to_owned());
    }
    Ok((addr, rest))
}

/// `KEYWORD` or `KEYWORD=value` (split at the first `=`).
fn split_param(token: &str) -> (&str, Option<&str>) {
    match token.split_once('=') {
        Some((k, v)) => (k, Some(v)),
        None => (token, None),
    }
}

/// A line in `Label:` form: an unknown first word made of printable ASCII up to a `:`.
fn looks_like_header(word: &str) -> bool {
    match word.find(':') {
        Some(i) if i > 0 => word.bytes().take(i).all(|b| (0x21..=0x7e).contains(&b)),
        _ => false,
    }
}

fn is_ws(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

fn trim(s: &str) -> &str {
    s.trim_matches([' ', '\t'])
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|&&c| is_ws(c)).count();
    b.get(n..).unwrap_or(&[])
}

/// First word of `b` and the rest (starting at the white space after it).
fn split_word(b: &[u8]) -> (&[u8], &[u8]) {
    let n = b.iter().position(|&c| is_ws(c)).unwrap_or(b.len());
    b.split_at_checked(n).unwrap_or((b, &[]))
}

fn split_word_str(s: &str) -> (&str, &str) {
    let n = s.find([' ', '\t']).unwrap_or(s.len());
    s.split_at_checked(n).unwrap_or((s, ""))
}

fn words(s: &str) -> impl Iterator<Item = &str> {
    s.split([' ', '\t']).filter(|w| !w.is_empty())
}

fn strip_prefix_ci<'a>(s: &'a str, prefix: &str) -> Option<&'a str> {
    let head = s.get(..prefix.len())?;
    if head.eq_ignore_ascii_case(prefix) {
        s.get(prefix.len()..)
    } else {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// No SMTPUTF8 offered.
    const PLAIN: ParseOptions = ParseOptions {
        smtputf8: false,
        transaction_utf8: false,
        max_line: 0,
    };
    /// SMTPUTF8 offered (Postfix's default), MAIL of this transaction without it.
    const UTF8: ParseOptions = ParseOptions {
        smtputf8: true,
        transaction_utf8: false,
        max_line: 0,
    };
    /// SMTPUTF8 offered and used by this transaction's MAIL.
    const UTF8_TX: ParseOptions = ParseOptions {
        smtputf8: true,
        transaction_utf8: true,
        max_line: 0,
    };

    fn mail(from: &str, params: MailParams) -> Command {
        Command::Mail {
            from: from.into(),
            params,
        }
    }

    fn rcpt(to: &str, params: RcptParams) -> Command {
        Command::Rcpt {
            to: to.into(),
            params,
        }
    }

    fn wire(e: &CommandError) -> String {
        String::from_utf8_lossy(&e.reply().to_wire(true)).into_owned()
    }

    #[test]
    fn parses_every_command() {
        let cases: Vec<(&str, Command)> = vec![
            (
                "HELO client.example",
                Command::Helo("client.example".into()),
            ),
            (
                "EHLO client.example",
                Command::Ehlo("client.example".into()),
            ),
            ("EHLO [192.0.2.1]", Command::Ehlo("[192.0.2.1]".into())),
            ("HELO a b", Command::Helo("a b".into())),
            ("HELO  x ", Command::Helo("x".into())),
            ("EHLO é.example", Command::Ehlo("é.example".into())),
            (
                "MAIL FROM:<a@b.example>",
                mail("a@b.example", MailParams::default()),
            ),
            ("MAIL FROM:<>", mail("", MailParams::default())),
            ("MAIL FROM: <>", mail("", MailParams::default())),
            (
                "MAIL FROM:  <a@b.example>",
                mail("a@b.example", MailParams::default()),
            ),
            (
                "MAIL FROM:\t<a@b.example>",
                mail("a@b.example", MailParams::default()),
            ),
            (
                "MAIL  FROM:<a@b.example>",
                mail("a@b.example", MailParams::default()),
            ),
            (
                "MAIL\tFROM:<a@b.example>",
                mail("a@b.example", MailParams::default()),
            ),
            (
                "MAIL FROM:a@b.example",
                mail("a@b.example", MailParams::default()),
            ),
            (
                "MAIL FROM: a@b.example",
                mail("a@b.example", MailParams::default()),
            ),
            (
                "MAIL FROM:<\"a b\"@b.example>",
                mail("\"a b\"@b.example", MailParams::default()),
            ),
            (
                "MAIL FROM:\"a b\"@b.example",
                mail("\"a b\"@b.example", MailParams::default()),
            ),
            (
                "MAIL FROM:<\"a>b\"@b.example>",
                mail("\"a>b\"@b.example", MailParams::default()),
            ),
            (
                "MAIL FROM:<@r1,@r2:a@b.example>",
                mail("a@b.example", MailParams::default()),
            ),
            (
                "MAIL FROM:<a@[192.0.2.1]>",
                mail("a@[192.0.2.1]", MailParams::default()),
            ),
            (
                "MAIL FROM:<a@b.example> ",
                mail("a@b.example", MailParams::default()),
            ),
            (
                "RCPT TO:<x@y.example>",
                rcpt("x@y.example", RcptParams::default()),
            ),
            (
                "RCPT TO: <x@y.example>",
                rcpt("x@y.example", RcptParams::default()),
            ),
            (
                "RCPT TO:x@y.example",
                rcpt("x@y.example", RcptParams::default()),
            ),
            (
                "RCPT TO:<postmaster>",
                rcpt("postmaster", RcptParams::default()),
            ),
            ("DATA", Command::Data),
            (
                "BDAT 0",
                Command::Bdat {
                    size: 0,
                    last: false,
                },
            ),
            (
                "BDAT 0 LAST",
                Command::Bdat {
                    size: 0,
                    last: true,
                },
            ),
            (
                "BDAT 1000",
                Command::Bdat {
                    size: 1000,
                    last: false,
                },
            ),
            (
                "BDAT 10 last",
                Command::Bdat {
                    size: 10,
                    last: true,
                },
            ),
            (
                "BDAT 005",
                Command::Bdat {
                    size: 5,
                    last: false,
                },
            ),
            (
                "BDAT  5 LAST ",
                Command::Bdat {
                    size: 5,
                    last: true,
                },
            ),
            (
                "BDAT 9223372036854775807",
                Command::Bdat {
                    size: MAX_BDAT_SIZE,
                    last: false,
                },
            ),
            ("RSET", Command::Rset),
            ("NOOP", Command::Noop),
            ("NOOP anything at all", Command::Noop),
            ("QUIT", Command::Quit),
            ("QUIT now", Command::Quit),
            ("STARTTLS", Command::StartTls),
            ("VRFY x", Command::Vrfy("x".into())),
            ("VRFY <x@y.example>", Command::Vrfy("<x@y.example>".into())),
            ("VRFY x SMTPUTF8", Command::Vrfy("x".into())),
            ("VRFY x smtputf8", Command::Vrfy("x".into())),
            ("EXPN staff", Command::Expn("staff".into())),
            ("EXPN", Command::Expn(String::new())),
            ("HELP", Command::Help(None)),
            ("HELP  MAIL ", Command::Help(Some("MAIL".into()))),
            ("ETRN x.example", Command::Etrn("x.example".into())),
            ("ETRN @x.example", Command::Etrn("@x.example".into())),
            ("ETRN #x.example", Command::Etrn("#x.example".into())),
            ("ETRN [192.0.2.1]", Command::Etrn("[192.0.2.1]".into())),
            (
                "ETRN [IPv6:2001:db8::1]",
                Command::Etrn("[IPv6:2001:db8::1]".into()),
            ),
            ("ETRN [ipv6:::1]", Command::Etrn("[ipv6:::1]".into())),
            ("ETRN a_b", Command::Etrn("a_b".into())),
            ("ETRN 1a.2", Command::Etrn("1a.2".into())),
            ("ETRN x.123", Command::Etrn("x.123".into())),
            ("ETRN 0x1", Command::Etrn("0x1".into())),
            ("ETRN  x", Command::Etrn("x".into())),
            (
                "AUTH PLAIN dGVzdAB0ZXN0AHRlc3Q=",
                Command::Auth("PLAIN dGVzdAB0ZXN0AHRlc3Q=".into()),
            ),
            ("AUTH", Command::Auth(String::new())),
            (" NOOP", Command::Noop),
            ("\tNOOP", Command::Noop),
            ("NOOP\t", Command::Noop),
        ];
        for (line, want) in cases {
            let got = parse(line.as_bytes(), &UTF8);
            assert_eq!(got.as_ref(), Ok(&want), "{line:?}");
            assert_eq!(verb(line.as_bytes()), Some(want.verb()), "{line:?}");
        }
    }

    /// Each error with the exact reply Postfix 3.7 sends, and lines that produce it
    /// (SMTPUTF8 offered, no transaction yet).
    #[test]
    fn every_error_has_postfix_reply() {
        use CommandError as E;
        let cases: Vec<(E, &str, &[&str])> = vec![
            (
                E::BadChar,
                "500 5.5.2 Error: bad syntax",
                &[
                    "NO\0OP",
                    "NOOP a\0b",
                    "NOOP a\rb",
                    "NOOP\n",
                    "MAIL FROM:<a\r@b>",
                ],
            ),
            (E::EmptyLine, "500 5.5.2 Error: bad syntax", &["", " \t "]),
            (
                E::Unrecognized,
                "500 5.5.2 Error: command not recognized",
                &[
                    "FOO",
                    "TURN",
                    "XCLIENT NAME=x",
                    "noop2",
                    "NéOP",
                    "FOO BAR:",
                    "FéO:",
                ],
            ),
            (
                E::NonSmtp,
                "221 2.7.0 Error: I can break rules, too. Goodbye.",
                &["Subject: hello", "X-Foo:bar", "MAILFROM:<a@b>", "NOOP:"],
            ),
            (
                E::HeloSyntax { ehlo: false },
                "501 Syntax: HELO hostname",
                &["HELO"],
            ),
            (
                E::HeloSyntax { ehlo: true },
                "501 Syntax: EHLO hostname",
                &["EHLO  "],
            ),
            (
                E::MailSyntax,
                "501 5.5.4 Syntax: MAIL FROM:<address>",
                &[
                    "MAIL",
                    "MAIL FROM",
                    "MAIL FROM:",
                    "MAIL FROM: ",
                    "MAIL TO:<a@b>",
                    "MAIL FROM :<a@b>",
                ],
            ),
            (
                E::RcptSyntax,
                "501 5.5.4 Syntax: RCPT TO:<address>",
                &["RCPT", "RCPT TO", "RCPT TO:", "RCPT FROM:<x@y>"],
            ),
            (
                E::EightBitWithoutSmtputf8,
                "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
                &["MAIL FROM:<é@b.example>", "RCPT TO:<é@y.example>", "VRFY é"],
            ),
            (
                E::BadParamValue(Param::Size),
                "501 5.5.4 Bad message size syntax",
                &[
                    "MAIL FROM:<a@b> SIZE=abc",
                    "MAIL FROM:<a@b> SIZE=",
                    "MAIL FROM:<a@b> SIZE=+5",
                    "MAIL FROM:<a@b> SIZE=-1",
                    "MAIL FROM:<a@b> SIZE=5x",
                    "MAIL FROM:<a@b> SIZE=5=6",
                ],
            ),
            (
                E::BadParamValue(Param::Ret),
                "501 5.5.4 Bad RET parameter syntax",
                &["MAIL FROM:<a@b> RET=x", "MAIL FROM:<a@b> RET="],
            ),
            (
                E::BadParamValue(Param::Envid),
                "501 5.5.4 Bad ENVID parameter syntax",
                &[
                    "MAIL FROM:<a@b> ENVID=",
                    "MAIL FROM:<a@b> ENVID=+zz",
                    "MAIL FROM:<a@b> ENVID=+",
                    "MAIL FROM:<a@b> ENVID=+0A",
                    "MAIL FROM:<a@b> ENVID=+2b",
                    "MAIL FROM:<a@b> ENVID=a=b",
                    "MAIL FROM:<a@b> ENVID=é",
                ],
            ),
            (
                E::BadParamValue(Param::Notify),
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
                &[
                    "RCPT TO:<x@y> NOTIFY=",
                    "RCPT TO:<x@y> NOTIFY=,",
                    "RCPT TO:<x@y> NOTIFY=FOO",
                    "RCPT TO:<x@y> NOTIFY=NEVER,SUCCESS",
                ],
            ),
            (
                E::BadParamValue(Param::Orcpt),
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
                &[
                    "RCPT TO:<x@y> ORCPT=a@b",
                    "RCPT TO:<x@y> ORCPT=;a@b",
                    "RCPT TO:<x@y> ORCPT=rfc822;+zz",
                    "RCPT TO:<x@y> ORCPT=rfc822;é@x",
                    "RCPT TO:<x@y> ORCPT=rf(c;a@b",
                ],
            ),
            (
                E::DuplicateParam(Param::Ret),
                "501 5.5.4 Bad RET parameter syntax",
                &["MAIL FROM:<a@b> RET=HDRS RET=FULL"],
            ),
            (
                E::DuplicateParam(Param::Envid),
                "501 5.5.4 Bad ENVID parameter syntax",
                &["MAIL FROM:<a@b> ENVID=x ENVID=y"],
            ),
            (
                E::DuplicateParam(Param::Size),
                "501 5.5.4 Bad message size syntax",
                &[
                    "MAIL FROM:<a@b> SIZE=10 SIZE=20",
                    "MAIL FROM:<a@b> size=10 SIZE=x",
                ],
            ),
            (
                E::DuplicateParam(Param::Body),
                "501 5.5.4 Bad BODY parameter syntax",
                &["MAIL FROM:<a@b> BODY=7BIT BODY=8BITMIME"],
            ),
            (
                E::DuplicateParam(Param::Smtputf8),
                "501 5.5.4 Bad SMTPUTF8 parameter syntax",
                &["MAIL FROM:<a@b> SMTPUTF8 smtputf8"],
            ),
            (
                E::DuplicateParam(Param::Auth),
                "503 5.5.4 Error: multiple AUTH= options",
                &["MAIL FROM:<a@b> AUTH=x AUTH=y"],
            ),
            (
                E::DuplicateParam(Param::Notify),
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
                &["RCPT TO:<x@y> NOTIFY=SUCCESS NOTIFY=DELAY"],
            ),
            (
                E::DuplicateParam(Param::Orcpt),
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
                &["RCPT TO:<x@y> ORCPT=rfc822;a@b ORCPT=rfc822;c@d"],
            ),
            (
                E::BdatSyntax,
                "521 5.5.4 Syntax: BDAT count [LAST]",
                &[
                    "BDAT",
                    "BDAT x",
                    "BDAT +5",
                    "BDAT -5",
                    "BDAT 5x",
                    "BDAT 5 FOO",
                    "BDAT 5 LAST x",
                    "BDAT 9223372036854775808",
                    "BDAT 99999999999999999999999",
                ],
            ),
            (
                E::UnexpectedArgument(Verb::Data),
                "501 5.5.4 Syntax: DATA",
                &["DATA x"],
            ),
            (
                E::UnexpectedArgument(Verb::Rset),
                "501 5.5.4 Syntax: RSET",
                &["RSET x"],
            ),
            (
                E::UnexpectedArgument(Verb::StartTls),
                "501 5.5.4 Syntax: STARTTLS",
                &["STARTTLS x"],
            ),
            (
                E::VrfySyntax,
                "501 5.5.4 Syntax: VRFY address [SMTPUTF8]",
                &["VRFY"],
            ),
            (
                E::EtrnSyntax,
                "500 Syntax: ETRN domain",
                &["ETRN", "ETRN x y"],
            ),
            (
                E::EtrnDomain,
                "501 Error: invalid parameter syntax",
                &[
                    "ETRN é",
                    "ETRN a..b",
                    "ETRN -x",
                    "ETRN a-",
                    "ETRN a.-b",
                    "ETRN a/b",
                    "ETRN a+b",
                    "ETRN @",
                    "ETRN #",
                    "ETRN @@x",
                    "ETRN x.",
                    "ETRN 123",
                    "ETRN 1.2.3.4",
                    "ETRN [1.2.3]",
                    "ETRN [x]",
                ],
            ),
        ];
        for (want, reply, lines) in cases {
            assert_eq!(wire(&want), format!("{reply}\r\n"), "{want:?}");
            for line in lines {
                assert_eq!(parse(line.as_bytes(), &UTF8), Err(want.clone()), "{line:?}");
            }
        }

        // Errors that hold what the client sent.
        let bs = |s: &str| E::BadSender(s.into());
        let br = |s: &str| E::BadRecipient(s.into());
        let un = |s: &str| E::UnsupportedParam(s.into());
        let held: Vec<(&str, E)> = vec![
            ("MAIL FROM:<a b>", bs("<a b>")),
            ("MAIL FROM:<a b> FOO", bs("<a b>")),
            ("MAIL FROM:<a@b.example", bs("<a@b.example")),
            ("MAIL FROM:<-a@b.example>", bs("<-a@b.example>")),
            ("MAIL FROM:<\"-a\"@b>", bs("<\"-a\"@b>")),
            ("MAIL FROM:<a@b>SIZE=5", bs("<a@b>SIZE=5")),
            ("MAIL FROM:<a@b>\u{7f}", bs("<a@b>\u{7f}")),
            ("MAIL FROM:<a\u{1}@b>", bs("<a\u{1}@b>")),
            ("RCPT TO:<a b>", br("<a b>")),
            ("RCPT TO:<>", br("<>")),
            ("RCPT TO:<-x@y>", br("<-x@y>")),
            ("VRFY x y", br("x y")),
            ("VRFY <>", br("<>")),
            ("VRFY x FOO", br("x FOO")),
            ("MAIL FROM:<a@b> FOO", un("FOO")),
            ("MAIL FROM:<a@b> FOO=bar", un("FOO=bar")),
            ("MAIL FROM:<a@b> =5", un("=5")),
            ("MAIL FROM:<a@b> SIZE", un("SIZE")),
            ("MAIL FROM:<a@b> BODY=foo", un("BODY=foo")),
            ("MAIL FROM:<a@b> BODY=", un("BODY=")),
            ("MAIL FROM:<a@b> BODY=BINARYMIME", un("BODY=BINARYMIME")),
            ("MAIL FROM:<a@b> RET", un("RET")),
            ("MAIL FROM:<a@b> ENVID", un("ENVID")),
            ("MAIL FROM:<a@b> AUTH", un("AUTH")),
            ("MAIL FROM:<a@b> SMTPUTF8=yes", un("SMTPUTF8=yes")),
            ("MAIL FROM:<a@b> NOTIFY=NEVER", un("NOTIFY=NEVER")),
            ("MAIL FROM:<a@b> ENVID=a b", un("b")),
            ("MAIL FROM:John <j@b>", un("<j@b>")),
            ("MAIL FROM:<a@b> <c@d>", un("<c@d>")),
            ("RCPT TO:<x@y> SIZE=5", un("SIZE=5")),
            ("RCPT TO:<x@y> RET=FULL", un("RET=FULL")),
            ("RCPT TO:<x@y> NOTIFY", un("NOTIFY")),
            ("RCPT TO:<x@y> ORCPT=rfc822;a b", un("b")),
        ];
        for (line, want) in held {
            let reply = match &want {
                E::BadSender(_) => "501 5.1.7 Bad sender address syntax".to_owned(),
                E::BadRecipient(_) => "501 5.1.3 Bad recipient address syntax".to_owned(),
                E::UnsupportedParam(p) => format!("555 5.5.4 Unsupported option: {p}"),
                _ => String::new(),
            };
            assert_eq!(wire(&want), format!("{reply}\r\n"), "{line:?}");
            assert_eq!(parse(line.as_bytes(), &UTF8), Err(want), "{line:?}");
        }

        // RFC 3461 length limits and RFC 1035 label length, at the boundary.
        let generated: Vec<(String, E)> = vec![
            (
                format!("MAIL FROM:<a@b> ENVID={}", "x".repeat(MAX_ENVID_LEN + 1)),
                E::BadParamValue(Param::Envid),
            ),
            (
                format!(
                    "RCPT TO:<x@y> ORCPT=rfc822;{}",
                    "x".repeat(MAX_ORCPT_LEN - 6)
                ),
                E::BadParamValue(Param::Orcpt),
            ),
            (format!("ETRN {}", "a".repeat(64)), E::EtrnDomain),
        ];
        for (line, want) in generated {
            assert_eq!(parse(line.as_bytes(), &UTF8), Err(want), "{line:?}");
        }
    }

    #[test]
    fn invalid_utf8_is_refused() {
        let cases: &[&[u8]] = &[
            b"\xff",
            b"NOOP \xff",
            b"HELO \xc3",
            b"MAIL FROM:<\xff@b>",
            b"FOO \xff",
        ];
        for line in cases {
            for opts in [PLAIN, UTF8, UTF8_TX] {
                let got = parse(line, &opts);
                assert_eq!(got, Err(CommandError::BadUtf8), "{line:?}");
            }
        }
        assert_eq!(
            wire(&CommandError::BadUtf8),
            "500 5.5.2 Error: bad UTF-8 syntax\r\n"
        );
    }

    #[test]
    fn reply_of_every_variant() {
        use CommandError as E;
        let cases: Vec<(E, &str)> = vec![
            (E::LineTooLong, "500 5.5.2 Error: line too long"),
            (E::BadChar, "500 5.5.2 Error: bad syntax"),
            (E::EmptyLine, "500 5.5.2 Error: bad syntax"),
            (E::BadUtf8, "500 5.5.2 Error: bad UTF-8 syntax"),
            (E::Unrecognized, "500 5.5.2 Error: command not recognized"),
            (
                E::NonSmtp,
                "221 2.7.0 Error: I can break rules, too. Goodbye.",
            ),
            (E::HeloSyntax { ehlo: false }, "501 Syntax: HELO hostname"),
            (E::HeloSyntax { ehlo: true }, "501 Syntax: EHLO hostname"),
            (E::MailSyntax, "501 5.5.4 Syntax: MAIL FROM:<address>"),
            (E::RcptSyntax, "501 5.5.4 Syntax: RCPT TO:<address>"),
            (
                E::BadSender("x".into()),
                "501 5.1.7 Bad sender address syntax",
            ),
            (
                E::BadRecipient("x".into()),
                "501 5.1.3 Bad recipient address syntax",
            ),
            (
                E::EightBitWithoutSmtputf8,
                "553 5.6.7 Must declare SMTPUTF8 to send unicode address",
            ),
            (
                E::UnsupportedParam("X=1".into()),
                "555 5.5.4 Unsupported option: X=1",
            ),
            (
                E::BadParamValue(Param::Size),
                "501 5.5.4 Bad message size syntax",
            ),
            (
                E::BadParamValue(Param::Body),
                "501 5.5.4 Bad BODY parameter syntax",
            ),
            (
                E::BadParamValue(Param::Smtputf8),
                "501 5.5.4 Bad SMTPUTF8 parameter syntax",
            ),
            (
                E::BadParamValue(Param::Ret),
                "501 5.5.4 Bad RET parameter syntax",
            ),
            (
                E::BadParamValue(Param::Envid),
                "501 5.5.4 Bad ENVID parameter syntax",
            ),
            (
                E::BadParamValue(Param::Auth),
                "501 5.5.4 Bad AUTH parameter syntax",
            ),
            (
                E::BadParamValue(Param::Notify),
                "501 5.5.4 Error: Bad NOTIFY parameter syntax",
            ),
            (
                E::BadParamValue(Param::Orcpt),
                "501 5.5.4 Error: Bad ORCPT parameter syntax",
            ),
            (
                E::DuplicateParam(Param::Auth),
                "503 5.5.4 Error: multiple AUTH= options",
            ),
            (
                E::DuplicateParam(Param::Ret),
                "501 5.5.4 Bad RET parameter syntax",
            ),
            (E::BdatSyntax, "521 5.5.4 Syntax: BDAT count [LAST]"),
            (E::UnexpectedArgument(Verb::Data), "501 5.5.4 Syntax: DATA"),
            (E::VrfySyntax, "501 5.5.4 Syntax: VRFY address [SMTPUTF8]"),
            (E::EtrnSyntax, "500 Syntax: ETRN domain"),
            (E::EtrnDomain, "501 Error: invalid parameter syntax"),
        ];
        let closing = [E::NonSmtp, E::BdatSyntax];
        for (e, want) in cases {
            assert_eq!(e.reply().to_string(), want, "{e:?}");
            assert_eq!(e.closes_session(), closing.contains(&e), "{e:?}");
            // Permanent, except the 221 that ends a non-SMTP session.
            assert_eq!(e.reply().is_permanent(), e != E::NonSmtp, "{e:?}");
        }
        // Without ENHANCEDSTATUSCODES the enhanced code is left out.
        assert_eq!(
            E::MailSyntax.reply().to_wire(false),
            b"501 Syntax: MAIL FROM:<address>\r\n"
        );
    }

    #[test]
    fn verbs_and_keywords_are_case_insensitive() {
        let cases: Vec<(&str, Command)> = vec![
            ("helo x", Command::Helo("x".into())),
            ("eHlO x", Command::Ehlo("x".into())),
            ("mail from:<a@b>", mail("a@b", MailParams::default())),
            ("Mail From:<a@b>", mail("a@b", MailParams::default())),
            ("rcpt to:<a@b>", rcpt("a@b", RcptParams::default())),
            ("RcPt To:<a@b>", rcpt("a@b", RcptParams::default())),
            ("data", Command::Data),
            (
                "bdat 1 Last",
                Command::Bdat {
                    size: 1,
                    last: true,
                },
            ),
            ("rset", Command::Rset),
            ("noop", Command::Noop),
            ("quit", Command::Quit),
            ("StartTLS", Command::StartTls),
            ("vrfy x", Command::Vrfy("x".into())),
            ("expn x", Command::Expn("x".into())),
            ("help", Command::Help(None)),
            ("etrn x", Command::Etrn("x".into())),
            ("auth login", Command::Auth("login".into())),
            (
                "mail from:<a@b> size=10 body=8bitmime ret=hdrs envid=x smtputf8 auth=<>",
                mail(
                    "a@b",
                    MailParams {
                        size: Some(10),
                        body: Some(Body::EightBitMime),
                        smtputf8: true,
                        ret: Some(Ret::Hdrs),
                        envid: Some("x".into()),
                        auth: Some("<>".into()),
                    },
                ),
            ),
            (
                "rcpt to:<a@b> notify=success,Delay orcpt=RFC822;a@b",
                rcpt(
                    "a@b",
                    RcptParams {
                        notify: Some(notify::SUCCESS | notify::DELAY),
                        orcpt: Some("RFC822;a@b".into()),
                    },
                ),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(parse(line.as_bytes(), &UTF8), Ok(want), "{line:?}");
        }
    }

    #[test]
    fn mail_parameters() {
        let p = |size, body, smtputf8, ret, envid: Option<&str>, auth: Option<&str>| MailParams {
            size,
            body,
            smtputf8,
            ret,
            envid: envid.map(str::to_owned),
            auth: auth.map(str::to_owned),
        };
        let max_envid = "x".repeat(MAX_ENVID_LEN);
        let envid_line = format!("MAIL FROM:<a@b> ENVID={max_envid}");
        let cases: Vec<(&str, MailParams)> = vec![
            (
                "MAIL FROM:<a@b> SIZE=0",
                p(Some(0), None, false, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> SIZE=0005",
                p(Some(5), None, false, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> SIZE=10240000",
                p(Some(10_240_000), None, false, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> SIZE=18446744073709551615",
                p(Some(u64::MAX), None, false, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> SIZE=99999999999999999999999",
                p(Some(u64::MAX), None, false, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> BODY=7BIT",
                p(None, Some(Body::SevenBit), false, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> BODY=8bitmime",
                p(None, Some(Body::EightBitMime), false, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> SMTPUTF8",
                p(None, None, true, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> RET=FULL",
                p(None, None, false, Some(Ret::Full), None, None),
            ),
            (
                "MAIL FROM:<a@b> RET=hdrs",
                p(None, None, false, Some(Ret::Hdrs), None, None),
            ),
            (
                "MAIL FROM:<a@b> ENVID=QQ+2Bx",
                p(None, None, false, None, Some("QQ+x"), None),
            ),
            (
                "MAIL FROM:<a@b> ENVID=a+20b",
                p(None, None, false, None, Some("a b"), None),
            ),
            (
                &envid_line,
                p(None, None, false, None, Some(&max_envid), None),
            ),
            (
                "MAIL FROM:<a@b> AUTH=<>",
                p(None, None, false, None, None, Some("<>")),
            ),
            (
                "MAIL FROM:<a@b> AUTH=",
                p(None, None, false, None, None, Some("")),
            ),
            (
                "MAIL FROM:<a@b> AUTH=u+2Bx@y",
                p(None, None, false, None, None, Some("u+2Bx@y")),
            ),
            (
                "MAIL FROM:<a@b> AUTH=+zz",
                p(None, None, false, None, None, Some("+zz")),
            ),
            (
                "MAIL FROM:<a@b>  SIZE=5\tBODY=7BIT  ",
                p(Some(5), Some(Body::SevenBit), false, None, None, None),
            ),
            (
                "MAIL FROM:<a@b> SIZE=5 BODY=8BITMIME RET=HDRS ENVID=QQ+2Bx SMTPUTF8 AUTH=<>",
                p(
                    Some(5),
                    Some(Body::EightBitMime),
                    true,
                    Some(Ret::Hdrs),
                    Some("QQ+x"),
                    Some("<>"),
                ),
            ),
            (
                "MAIL FROM:<a@b> AUTH=<> SMTPUTF8 ENVID=e RET=FULL BODY=7BIT SIZE=1",
                p(
                    Some(1),
                    Some(Body::SevenBit),
                    true,
                    Some(Ret::Full),
                    Some("e"),
                    Some("<>"),
                ),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                parse(line.as_bytes(), &UTF8),
                Ok(mail("a@b", want)),
                "{line:?}"
            );
        }
    }

    #[test]
    fn first_bad_parameter_wins() {
        let cases: &[(&str, CommandError)] = &[
            (
                "MAIL FROM:<a@b> FOO SIZE=x",
                CommandError::UnsupportedParam("FOO".into()),
            ),
            (
                "MAIL FROM:<a@b> SIZE=x FOO",
                CommandError::BadParamValue(Param::Size),
            ),
            (
                "MAIL FROM:<é@b> FOO",
                CommandError::UnsupportedParam("FOO".into()),
            ),
            (
                "MAIL FROM:<é@b> SIZE=x",
                CommandError::BadParamValue(Param::Size),
            ),
            (
                "MAIL FROM:<é b@b> SMTPUTF8",
                CommandError::BadSender("<é b@b>".into()),
            ),
            (
                "RCPT TO:<x@y> FOO NOTIFY=x",
                CommandError::UnsupportedParam("FOO".into()),
            ),
            (
                "RCPT TO:<é@y> NOTIFY=x",
                CommandError::BadParamValue(Param::Notify),
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                parse(line.as_bytes(), &UTF8).as_ref(),
                Err(want),
                "{line:?}"
            );
        }
    }

    #[test]
    fn rcpt_parameters() {
        let n = |bits| RcptParams {
            notify: Some(bits),
            orcpt: None,
        };
        let o = |s: &str| RcptParams {
            notify: None,
            orcpt: Some(s.into()),
        };
        let long_orcpt = format!("rfc822;{}", "x".repeat(MAX_ORCPT_LEN - 7));
        let long_line = format!("RCPT TO:<x@y> ORCPT={long_orcpt}");
        let cases: Vec<(&str, RcptParams)> = vec![
            ("RCPT TO:<x@y> NOTIFY=NEVER", n(notify::NEVER)),
            ("RCPT TO:<x@y> NOTIFY=never", n(notify::NEVER)),
            ("RCPT TO:<x@y> NOTIFY=SUCCESS", n(notify::SUCCESS)),
            (
                "RCPT TO:<x@y> NOTIFY=SUCCESS,FAILURE,DELAY",
                n(notify::SUCCESS | notify::FAILURE | notify::DELAY),
            ),
            (
                "RCPT TO:<x@y> NOTIFY=DELAY,FAILURE",
                n(notify::DELAY | notify::FAILURE),
            ),
            ("RCPT TO:<x@y> NOTIFY=SUCCESS,", n(notify::SUCCESS)),
            ("RCPT TO:<x@y> NOTIFY=SUCCESS,SUCCESS", n(notify::SUCCESS)),
            ("RCPT TO:<x@y> NOTIFY=NEVER,NEVER", n(notify::NEVER)),
            ("RCPT TO:<x@y> ORCPT=rfc822;a@b.c", o("rfc822;a@b.c")),
            ("RCPT TO:<x@y> ORCPT=rfc822;a+2Bb@b.c", o("rfc822;a+b@b.c")),
            ("RCPT TO:<x@y> ORCPT=rfc822;", o("rfc822;")),
            ("RCPT TO:<x@y> ORCPT=foo;a@b", o("foo;a@b")),
            (
                "RCPT TO:<x@y> ORCPT=utf-8;a\\x{E9}@b",
                o("utf-8;a\\x{E9}@b"),
            ),
            ("RCPT TO:<x@y> ORCPT=rfc822;a+3Bb", o("rfc822;a;b")),
            (&long_line, o(&long_orcpt)),
            (
                "RCPT TO:<x@y> ORCPT=rfc822;o@x NOTIFY=FAILURE",
                RcptParams {
                    notify: Some(notify::FAILURE),
                    orcpt: Some("rfc822;o@x".into()),
                },
            ),
        ];
        for (line, want) in cases {
            assert_eq!(
                parse(line.as_bytes(), &UTF8),
                Ok(rcpt("x@y", want)),
                "{line:?}"
            );
        }
        // The bits are the queue file's (queue::notify).
        assert_eq!(
            (
                notify::NEVER,
                notify::SUCCESS,
                notify::FAILURE,
                notify::DELAY
            ),
            (1, 2, 4, 8)
        );
    }

    #[test]
    fn eight_bit_needs_smtputf8() {
        use CommandError::EightBitWithoutSmtputf8 as E8;
        let cases: Vec<(&str, ParseOptions, Result<Command, CommandError>)> = vec![
            // MAIL: the address may be UTF-8 only with SMTPUTF8 offered and requested.
            ("MAIL FROM:<é@b.example>", PLAIN, Err(E8)),
            ("MAIL FROM:<é@b.example>", UTF8, Err(E8)),
            ("MAIL FROM:<a@é.example>", UTF8, Err(E8)),
            (
                "MAIL FROM:<é@b.example> SMTPUTF8",
                UTF8,
                Ok(mail(
                    "é@b.example",
                    MailParams {
                        smtputf8: true,
                        ..MailParams::default()
                    },
                )),
            ),
            (
                "MAIL FROM:<é@b.example> SMTPUTF8",
                PLAIN,
                Err(CommandError::UnsupportedParam("SMTPUTF8".into())),
            ),
            (
                "MAIL FROM:<a@b.example> SMTPUTF8",
                UTF8,
                Ok(mail(
                    "a@b.example",
                    MailParams {
                        smtputf8: true,
                        ..MailParams::default()
                    },
                )),
            ),
            // RCPT follows the transaction's MAIL.
            ("RCPT TO:<é@y.example>", PLAIN, Err(E8)),
            ("RCPT TO:<é@y.example>", UTF8, Err(E8)),
            ("RCPT TO:<x@é.example>", UTF8, Err(E8)),
            (
                "RCPT TO:<é@y.example>",
                UTF8_TX,
                Ok(rcpt("é@y.example", RcptParams::default())),
            ),
            (
                "RCPT TO:<x@é.example>",
                UTF8_TX,
                Ok(rcpt("x@é.example", RcptParams::default())),
            ),
            // Inconsistent options: no SMTPUTF8 offered means none in use.
            (
                "RCPT TO:<é@y.example>",
                ParseOptions {
                    smtputf8: false,
                    transaction_utf8: true,
                    max_line: 0,
                },
                Err(E8),
            ),
            // VRFY carries its own SMTPUTF8 (RFC 6531 §3.7.4).
            ("VRFY é", UTF8, Err(E8)),
            ("VRFY é SMTPUTF8", UTF8, Ok(Command::Vrfy("é".into()))),
            (
                "VRFY é SMTPUTF8",
                PLAIN,
                Err(CommandError::BadRecipient("é SMTPUTF8".into())),
            ),
            // Elsewhere UTF-8 is just text.
            (
                "HELO é.example",
                PLAIN,
                Ok(Command::Helo("é.example".into())),
            ),
            ("NOOP é", PLAIN, Ok(Command::Noop)),
            (
                "MAIL FROM:<a@b> AUTH=é",
                PLAIN,
                Ok(mail(
                    "a@b",
                    MailParams {
                        auth: Some("é".into()),
                        ..MailParams::default()
                    },
                )),
            ),
            ("EXPN é", PLAIN, Ok(Command::Expn("é".into()))),
            // 8-bit in the verb is simply not a verb (Postfix: not recognized).
            ("NOOé", UTF8, Err(CommandError::Unrecognized)),
        ];
        for (line, opts, want) in cases {
            assert_eq!(parse(line.as_bytes(), &opts), want, "{line:?} {opts:?}");
        }
    }

    #[test]
    fn line_length_limit() {
        let opts = |max_line| ParseOptions { max_line, ..UTF8 };
        let noop = |len: usize| format!("NOOP {}", "x".repeat(len - 5));
        let cases: Vec<(String, usize, Result<Command, CommandError>)> = vec![
            (noop(2048), 0, Ok(Command::Noop)),
            (noop(2049), 0, Err(CommandError::LineTooLong)),
            (noop(2049), 4096, Ok(Command::Noop)),
            (noop(10), 10, Ok(Command::Noop)),
            (noop(11), 10, Err(CommandError::LineTooLong)),
            // Length is checked first, before any other rule.
            (
                format!("{}\0", "x".repeat(20)),
                10,
                Err(CommandError::LineTooLong),
            ),
            ("\0".into(), 10, Err(CommandError::BadChar)),
        ];
        for (line, max, want) in cases {
            assert_eq!(
                parse(line.as_bytes(), &opts(max)),
                want,
                "len {} max {max}",
                line.len()
            );
        }
    }

    #[test]
    fn verb_of_lines_that_do_not_parse() {
        let cases: &[(&[u8], Option<Verb>)] = &[
            (b"MAIL FROM:<a b>", Some(Verb::Mail)),
            (b"rcpt", Some(Verb::Rcpt)),
            (b"  data x", Some(Verb::Data)),
            (b"BDAT x", Some(Verb::Bdat)),
            (b"STARTTLS x", Some(Verb::StartTls)),
            (b"etrn", Some(Verb::Etrn)),
            (b"NOOP \xff", Some(Verb::Noop)),
            (b"FOO", None),
            (b"", None),
            (b"MAILFROM:<a@b>", None),
            (b"\xff", None),
        ];
        for (line, want) in cases {
            assert_eq!(verb(line), *want, "{line:?}");
        }
        for v in VERBS {
            assert_eq!(
                Verb::from_word(v.as_str().to_lowercase().as_bytes()),
                Some(v)
            );
            assert_eq!(v.to_string(), v.as_str());
        }
    }

    #[test]
    fn names() {
        assert_eq!(
            [Body::SevenBit, Body::EightBitMime, Body::BinaryMime].map(Body::as_str),
            ["7BIT", "8BITMIME", "BINARYMIME"]
        );
        assert_eq!([Ret::Full, Ret::Hdrs].map(Ret::as_str), ["FULL", "HDRS"]);
        assert_eq!(Param::Envid.to_string(), "ENVID");
        assert_eq!(
            CommandError::BadSender("<a b>".into()).to_string(),
            "Bad sender address syntax: <a b>"
        );
        assert_eq!(
            CommandError::HeloSyntax { ehlo: true }.to_string(),
            "Syntax: EHLO hostname"
        );
    }

    proptest! {
        #[test]
        fn parse_never_panics_on_bytes(
            data in proptest::collection::vec(any::<u8>(), 0..300),
            smtputf8 in any::<bool>(),
            transaction_utf8 in any::<bool>(),
            max_line in 0usize..400,
        ) {
            let opts = ParseOptions { smtputf8, transaction_utf8, max_line };
            let _ = parse(&data, &opts);
            crate::fuzz_command(&data);
        }

        #[test]
        fn parse_never_panics_on_command_soup(
            verb in "(?i)(mail from:|rcpt to:|bdat|vrfy|etrn|helo|data|x-h:)",
            rest in "[<>\"@a-c.:;,=+ \t0-9A-F\\\\é\\-\\[\\]]{0,60}",
            params in "( (SIZE|BODY|RET|ENVID|AUTH|NOTIFY|ORCPT|SMTPUTF8)(=[a-zA-Z0-9+;,@<>]{0,12})?){0,4}",
        ) {
            let line = format!("{verb}{rest}{params}");
            for opts in [PLAIN, UTF8, UTF8_TX] {
                let _ = parse(line.as_bytes(), &opts);
            }
            crate::fuzz_command(line.as_bytes());
        }
    }
}
