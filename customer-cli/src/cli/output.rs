//! What a command shows: human lines by default, one JSON document with `--json`,
//! and a progress line on stderr during multi-step transactions, only when stderr is a
//! terminal and `--json` is off (a script's output stays one clean document).

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use shared::Amount;

use super::exit::CliError;

/// A command's result: the lines a person reads and the document a script parses.
#[derive(Debug)]
pub struct Done {
    /// Human output, one entry per line.
    pub lines: Vec<String>,
    /// The `--json` document (an object; `"ok": true` is added when printed).
    pub json: Value,
}

impl Done {
    /// A result with these lines and this document.
    #[must_use]
    pub fn new(lines: Vec<String>, json: Value) -> Done {
        Done { lines, json }
    }
}

/// The progress line of one command (a no-op unless stderr is a terminal and not `--json`).
#[derive(Debug)]
pub struct Progress {
    bar: Option<ProgressBar>,
}

impl Progress {
    /// A progress line for a command run with or without `--json`.
    #[must_use]
    pub fn new(json: bool) -> Progress {
        let bar = (!json && std::io::stderr().is_terminal()).then(|| {
            let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr());
            if let Ok(style) = ProgressStyle::with_template("{spinner} {msg} ({elapsed})") {
                bar.set_style(style);
            }
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Progress { bar }
    }

    /// Shows what the command is doing now.
    pub fn step(&self, message: impl Into<String>) {
        if let Some(bar) = &self.bar {
            bar.set_message(message.into());
        }
    }

    /// Removes the line.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }
}

impl Drop for Progress {
    /// A command that ends early (an error) leaves no spinner behind.
    fn drop(&mut self) {
        self.finish();
    }
}

/// A warning on stderr, one line, whatever the output format: it must reach the person at
/// the terminal without spoiling the JSON document on stdout.
pub fn warn(message: &str) {
    let _ = writeln!(std::io::stderr(), "peerscrip: warning: {message}");
}

/// The suite's warning for an open network (`Suite::open_network_warning`: the paper
/// suite's), once per command that uses the wallet.
pub fn warn_of_suite(suite: shared::Suite) {
    if let Some(warning) = suite.open_network_warning() {
        warn(warning);
    }
}

/// Prints `result` as the command's output and returns the exit code: human lines to
/// stdout (errors to stderr), or one JSON document to stdout.
pub fn emit(result: Result<Done, CliError>, json: bool) -> u8 {
    let mut out = std::io::stdout().lock();
    match (result, json) {
        (Ok(done), false) => {
            for line in &done.lines {
                let _ = writeln!(out, "{line}");
            }
            0
        }
        (Ok(mut done), true) => {
            if let Value::Object(map) = &mut done.json {
                map.insert("ok".to_owned(), Value::Bool(true));
            }
            let _ = writeln!(out, "{}", done.json);
            0
        }
        (Err(e), false) => {
            let mut err = std::io::stderr().lock();
            let _ = writeln!(err, "peerscrip: {e}");
            if let Some(hint) = e.hint() {
                let _ = writeln!(err, "hint: {hint}");
            }
            e.exit_code()
        }
        (Err(e), true) => {
            let _ = writeln!(out, "{}", e.to_json());
            e.exit_code()
        }
    }
}

/// An amount for JSON: its decimal text (`"12.34"`, never a float) and its minor units.
#[must_use]
pub fn amount_json(amount: Amount) -> Value {
    serde_json::json!({ "value": amount.to_string(), "minor": amount.minor() })
}
