//! The daemons' structured logs: `tracing` to standard error, human-readable or
//! one JSON object per line. Every line about a frame is inside its `frame{tx=…}` span
//! (`runtime::frame_span`), so a transaction's lines can be found by its tx id; nothing a
//! node logs holds a secret (keys, root keys, PANSecrets and CustomerSecrets have no
//! `Display` and a redacted `Debug`).

use std::fmt;
use std::io::IsTerminal as _;
use std::str::FromStr;

use tracing_subscriber::EnvFilter;

/// How log lines are written.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum LogFormat {
    /// One readable line per event (the default in a terminal).
    #[default]
    Human,
    /// One JSON object per line, with the span fields (`tx`, `label`, `sender`).
    Json,
}

impl fmt::Display for LogFormat {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            LogFormat::Human => "human",
            LogFormat::Json => "json",
        })
    }
}

/// A log format other than `human` or `json`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown log format {0:?} (expected human or json)")]
pub struct UnknownLogFormat(pub String);

impl FromStr for LogFormat {
    type Err = UnknownLogFormat;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "human" => Ok(LogFormat::Human),
            "json" => Ok(LogFormat::Json),
            other => Err(UnknownLogFormat(other.to_owned())),
        }
    }
}

/// The filter: `level` when configured (flag, environment or file), else `RUST_LOG`, else
/// `info`. `level` takes `RUST_LOG`'s syntax (`debug`, `info,broker=debug`).
///
/// # Errors
/// The directive's parse error, as text.
pub fn filter(level: Option<&str>) -> Result<EnvFilter, String> {
    match level {
        Some(level) => EnvFilter::try_new(level).map_err(|e| format!("log level {level:?}: {e}")),
        None => Ok(EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"))),
    }
}

/// Installs the global subscriber writing to standard error.
///
/// # Errors
/// A bad level directive, or a subscriber already installed.
pub fn init(format: LogFormat, level: Option<&str>) -> Result<(), String> {
    let filter = filter(level)?;
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::stderr().is_terminal())
        .with_writer(std::io::stderr);
    let result = match format {
        LogFormat::Human => builder.try_init(),
        LogFormat::Json => builder
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .try_init(),
    };
    result.map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_parse_and_an_unknown_one_is_named() {
        assert_eq!("human".parse(), Ok(LogFormat::Human));
        assert_eq!("json".parse(), Ok(LogFormat::Json));
        assert_eq!(
            "xml".parse::<LogFormat>(),
            Err(UnknownLogFormat("xml".to_owned()))
        );
    }

    #[test]
    fn a_bad_level_is_refused_with_the_directive() {
        let e = filter(Some("info,=[")).unwrap_err();
        assert!(e.contains("info,=["), "{e}");
        assert!(filter(Some("debug")).is_ok());
    }
}
