//! Errors of the configuration layer.
//!
//! Owns the three error types others see: [`ConfigError`] (one problem at a
//! file and line, worded as Postfix words it), [`LoadError`] (every problem
//! found while loading, so an operator fixes them all in one pass) and
//! [`ExpandError`] (a `$name` expansion that cannot be evaluated).
//!
//! Invariants: a `ConfigError` with `line == 0` has no line to point at (a
//! missing file, an `-o` override without a known origin) and renders as
//! `file: message`; otherwise it renders as `file, line N: message`, the form
//! Postfix uses for `main.cf` and `master.cf` diagnostics.

use std::fmt;
use std::path::PathBuf;

/// One configuration problem, located at a file and line.
///
/// `Display` gives `/etc/postfix/main.cf, line 7: parameter queue_run_delay:
/// bad time value or unit: abc` (or `file: message` when `line` is 0).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}{}: {}", .file.display(), LineSuffix(*.line), .message)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// The 1-based line of the logical line that holds the problem; 0 when unknown.
    pub line: usize,
    /// The parameter concerned, when there is one.
    pub param: Option<String>,
    /// What is wrong, in Postfix's words where Postfix has words for it.
    pub message: String,
}

/// Renders `, line N` for a known line and nothing for line 0.
struct LineSuffix(usize);

impl fmt::Display for LineSuffix {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0 > 0 {
            write!(f, ", line {}", self.0)
        } else {
            Ok(())
        }
    }
}

/// Everything that stopped a configuration from loading.
///
/// `Display` renders one error per line, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", render_all(.errors))]
pub struct LoadError {
    /// The problems, in the order they were found (file order, then validation order).
    pub errors: Vec<ConfigError>,
}

fn render_all(errors: &[ConfigError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

impl From<ConfigError> for LoadError {
    fn from(e: ConfigError) -> Self {
        LoadError { errors: vec![e] }
    }
}

/// Why a `$name` expression could not be evaluated.
///
/// The wording follows Postfix's `mac_expand` diagnostics (`postconf -x`
/// reports the same cases); `context` shows the text around the problem as
/// `...before>>>after`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ExpandError {
    /// A parameter refers back to itself, directly or through others.
    #[error("unreasonable macro call nesting: \"{}\" (parameter loop: {})", .chain.last().map(String::as_str).unwrap_or(""), .chain.join(" -> "))]
    Loop {
        /// The names being expanded, outermost first, ending with the repeated one.
        chain: Vec<String>,
    },
    /// Expressions nest deeper than Postern is willing to follow.
    #[error("unreasonable macro call nesting: more than {limit} levels")]
    TooDeep {
        /// The nesting limit.
        limit: usize,
    },
    /// `$` followed by something that is not a name, `$`, `{` or `(`.
    #[error("empty macro name: \"{context}\"")]
    EmptyName {
        /// The text holding the stray `$`.
        context: String,
    },
    /// `${` or `$(` without its closing bracket.
    #[error("truncated macro reference: \"{context}\"")]
    Truncated {
        /// The text from the `$` on.
        context: String,
    },
    /// A name inside `${...}` contains a character outside `[a-zA-Z0-9_]`.
    #[error("attribute name syntax error at: \"{context}\"")]
    NameSyntax {
        /// Where the bad character is.
        context: String,
    },
    /// `${name?{value1}` followed by something other than `:` or the end.
    #[error("\":\" expected at: \"{context}\"")]
    ColonExpected {
        /// Where the `:` was expected.
        context: String,
    },
    /// Text after the last `{value}` of an expression.
    #[error("unexpected input at: \"{context}\"")]
    UnexpectedInput {
        /// Where the extra text starts.
        context: String,
    },
    /// A relational expression without a valid operator.
    #[error("\"==\", \"!=\", \"<\", \"<=\", \">=\" or \">\" expected at: \"{context}\"")]
    OperatorExpected {
        /// Where the operator was expected.
        context: String,
    },
    /// An operator followed by something other than `level`, whitespace or `{`.
    #[error("bad operator suffix at: \"{context}\"")]
    OperatorSuffix {
        /// Where the bad suffix starts.
        context: String,
    },
    /// The right operand of a relational expression is not inside `{}`.
    #[error("\"{{\" expected at: \"{context}\"")]
    BraceExpected {
        /// Where the `{` was expected.
        context: String,
    },
    /// An operand of a `<level`-style comparison is not `major[.minor[.patch]]`.
    #[error("malformed compatibility level syntax: \"{value}\"")]
    BadLevel {
        /// The operand as expanded.
        value: String,
    },
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn config_error_display() {
        let cases = [
            (
                ConfigError {
                    file: PathBuf::from("/tmp/x/main.cf"),
                    line: 7,
                    param: Some("queue_run_delay".into()),
                    message: "parameter queue_run_delay: bad time value or unit: abc".into(),
                },
                "/tmp/x/main.cf, line 7: parameter queue_run_delay: bad time value or unit: abc",
            ),
            (
                ConfigError {
                    file: PathBuf::from("/etc/postfix/main.cf"),
                    line: 0,
                    param: None,
                    message: "open failed: No such file or directory".into(),
                },
                "/etc/postfix/main.cf: open failed: No such file or directory",
            ),
        ];
        for (err, want) in cases {
            assert_eq!(err.to_string(), want);
        }
    }

    #[test]
    fn load_error_is_one_error_per_line() {
        let e = |line| ConfigError {
            file: PathBuf::from("m"),
            line,
            param: None,
            message: "x".into(),
        };
        let all = LoadError {
            errors: vec![e(1), e(2)],
        };
        assert_eq!(all.to_string(), "m, line 1: x\nm, line 2: x");
    }

    #[test]
    fn loop_names_the_chain() {
        let e = ExpandError::Loop {
            chain: vec!["a".into(), "b".into(), "a".into()],
        };
        assert_eq!(
            e.to_string(),
            "unreasonable macro call nesting: \"a\" (parameter loop: a -> b -> a)"
        );
    }
}
