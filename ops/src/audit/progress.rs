//! The audit's progress bar (a large log takes a while): on stderr, so that
//! stdout stays the report (one JSON document with `--json`); shown only for a log of many
//! events, only when stderr is a terminal, and never with `--json`.

use std::cell::OnceCell;
use std::io::IsTerminal as _;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::walk::Progress;

/// A log shorter than this is audited before a bar would be worth drawing.
pub const FROM_EVENTS: u64 = 10_000;

/// Whether to draw a bar: asked for (`--json` is off), stderr a terminal, and a log of at
/// least [`FROM_EVENTS`] events.
#[must_use]
pub fn shown(asked: bool, terminal: bool, events: u64) -> bool {
    asked && terminal && events >= FROM_EVENTS
}

/// The bar on stderr, drawn once the walk says how many events it will check.
pub(super) struct Bar {
    asked: bool,
    bar: OnceCell<ProgressBar>,
}

impl Bar {
    /// A bar, drawn only if `asked` (and see [`shown`]).
    pub fn new(asked: bool) -> Bar {
        Bar {
            asked,
            bar: OnceCell::new(),
        }
    }
}

impl Progress for Bar {
    fn start(&self, events: u64) {
        if !shown(self.asked, std::io::stderr().is_terminal(), events) {
            return;
        }
        let bar = ProgressBar::with_draw_target(Some(events), ProgressDrawTarget::stderr());
        if let Ok(style) = ProgressStyle::with_template(
            "auditing {bar:40} {pos}/{len} events ({per_sec}, {eta} left)",
        ) {
            bar.set_style(style);
        }
        let _ = self.bar.set(bar);
    }

    fn inc(&self) {
        if let Some(bar) = self.bar.get() {
            bar.inc(1);
        }
    }

    fn finish(&self) {
        if let Some(bar) = self.bar.get() {
            bar.finish_and_clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_for_many_events_on_a_terminal_without_json() {
        assert!(shown(true, true, FROM_EVENTS));
        assert!(!shown(true, true, FROM_EVENTS - 1), "a short log");
        assert!(!shown(true, false, FROM_EVENTS), "stderr not a terminal");
        assert!(!shown(false, true, FROM_EVENTS), "--json");
    }
}
