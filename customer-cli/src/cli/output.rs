//! What a command shows: human lines by default, one JSON document with `--json`,
//! and a progress line on stderr during multi-step transactions, only when stderr is a
//! terminal and `--json` is off (a script's output stays one clean document).

use std::io::{IsTerminal as _, Write as _};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde_json::Value;
use shared::{Amount, UnixSecs};

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
/// The one amount format of every `--json` document of both binaries (`peerscrip` and
/// `peerscrip-ops`) and of the daemons' live view ([`shared::Money`]): a script reads
/// `minor` (an integer, exact) and shows `value`.
#[must_use]
pub fn amount_json(amount: Amount) -> Value {
    money_json(shared::Money::from(amount))
}

/// A signed balance in minor units (a ledger account, which may be below zero: the
/// broker's float, protocol.md section 5) as `-12.34` ([`shared::Balance`]).
#[must_use]
pub fn signed_amount_text(minor: i128) -> String {
    shared::Balance(minor).to_string()
}

/// A signed balance for JSON, in the format of [`amount_json`]: `{"value": "-12.34",
/// "minor": -1234}`.
#[must_use]
pub fn signed_amount_json(minor: i128) -> Value {
    money_json(shared::Money::from(shared::Balance(minor)))
}

fn money_json(money: shared::Money) -> Value {
    // A struct of a string and an integer (or its text) always converts.
    serde_json::to_value(money).unwrap_or(Value::Null)
}

/// An instant as RFC 3339 in UTC, `2026-12-07T20:19:13Z` ([`UnixSecs::rfc3339`]).
#[must_use]
pub fn rfc3339(t: UnixSecs) -> String {
    t.rfc3339()
}

/// A time for JSON: `{"unix": 1796674753, "rfc3339": "2026-12-07T20:19:13Z"}`
/// ([`shared::Moment`]).
#[must_use]
pub fn time_json(t: UnixSecs) -> Value {
    moment_json(&shared::Moment::at(t))
}

/// An expiry or deadline for JSON: [`time_json`] with `"relative"`, "expires in 3h 12m"
/// or "expired 5m ago" as of `now`.
#[must_use]
pub fn expiry_json(t: UnixSecs, now: UnixSecs) -> Value {
    moment_json(&shared::Moment::expiry(t, now))
}

fn moment_json(moment: &shared::Moment) -> Value {
    // A struct of integers and strings always converts.
    serde_json::to_value(moment).unwrap_or(Value::Null)
}

/// An expiry or deadline for people: `2026-12-07 20:19:13 UTC (expires in 3h 12m)`.
#[must_use]
pub fn expiry_text(t: UnixSecs, now: UnixSecs) -> String {
    format!("{} ({})", t.utc(), t.relative_to(now))
}

/// "expires in 3h 12m" when `t` is after `now`, else "expired 5m ago"
/// ([`UnixSecs::relative_to`]).
#[must_use]
pub fn relative(t: UnixSecs, now: UnixSecs) -> String {
    t.relative_to(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn amounts_have_one_json_format_signed_or_not() {
        assert_eq!(
            amount_json(Amount::from_minor(550)),
            serde_json::json!({"value": "5.50", "minor": 550})
        );
        assert_eq!(
            signed_amount_json(-1234),
            serde_json::json!({"value": "-12.34", "minor": -1234})
        );
        assert_eq!(signed_amount_text(5), "0.05");
        assert_eq!(signed_amount_text(-5), "-0.05");
    }

    #[test]
    fn times_are_utc_dates_with_a_relative_form() {
        let t = UnixSecs::new(1_796_674_753);
        assert_eq!(t.utc(), "2026-12-07 20:19:13 UTC");
        assert_eq!(rfc3339(t), "2026-12-07T20:19:13Z");
        assert_eq!(
            time_json(t),
            serde_json::json!({"unix": 1_796_674_753_u64, "rfc3339": "2026-12-07T20:19:13Z"})
        );
        let before = t.saturating_sub_secs(3 * 3600 + 12 * 60 + 7);
        assert_eq!(relative(t, before), "expires in 3h 12m");
        assert_eq!(
            expiry_text(t, before),
            "2026-12-07 20:19:13 UTC (expires in 3h 12m)"
        );
        assert_eq!(relative(t, t.saturating_add_secs(300)), "expired 5m ago");
        assert_eq!(relative(t, t), "expired 0s ago");
        assert_eq!(
            expiry_json(t, t.saturating_add_secs(45))["relative"],
            "expired 45s ago"
        );
    }
}
