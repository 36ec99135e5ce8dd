//! Where the tables crate sends warnings that do not stop a lookup.
//!
//! Owns the process-wide warning sink. Postfix logs some table conditions as warnings and
//! carries on (`database /etc/aliases.db is older than source file /etc/aliases`, a skipped
//! texthash line, a regexp rule without a result). Tables cannot know where the process logs,
//! so they call the sink; the daemon installs one that writes its log, commands keep the
//! default, which writes `PROGRAM: warning: TEXT` to standard error like Postfix's commands.
//!
//! Invariant: the text handed to a sink has no `warning:` prefix; the sink adds what its log
//! format needs. A sink must not panic.

use std::sync::{Arc, RwLock};

/// A warning sink: receives the warning text without prefix.
pub type Warner = Arc<dyn Fn(&str) + Send + Sync>;

static SINK: RwLock<Option<Warner>> = RwLock::new(None);

/// Install the process-wide sink (the daemon's log). Tables opened afterwards use it.
pub fn set_warning_sink(sink: Warner) {
    let mut guard = SINK.write().unwrap_or_else(|p| p.into_inner());
    *guard = Some(sink);
}

/// The sink to give a table being opened now: the installed one, or standard error.
pub fn current_sink() -> Warner {
    let guard = SINK.read().unwrap_or_else(|p| p.into_inner());
    match guard.as_ref() {
        Some(sink) => sink.clone(),
        None => Arc::new(stderr_warning),
    }
}

fn stderr_warning(text: &str) {
    let program = std::env::args_os()
        .next()
        .and_then(|a| {
            std::path::Path::new(&a)
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| "postern".to_string());
    eprintln!("{program}: warning: {text}");
}
