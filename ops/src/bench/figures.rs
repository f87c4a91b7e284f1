//! The figures of `peerscrip-ops bench` and how they are shown: one [`Figure`] per
//! measurement, each with the bound it is measured against (taken in the same run, so a
//! figure reads as a ratio rather than as an absolute number on a machine nobody else has),
//! printed as a table or as one JSON document (`--json`).

use std::io::Write;

use serde::Serialize;

/// Which way a figure's ratio is good.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Better {
    /// A throughput: met when its ratio reaches the target (`ratio >= target`).
    Higher,
    /// A latency: met when its ratio stays within the target (`ratio <= target`).
    Lower,
}

/// One measured figure.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Figure {
    /// What was measured, e.g. `paper broker 6.3 batch 256`.
    pub name: String,
    /// The measurement (always positive).
    pub value: f64,
    /// Its unit, e.g. `purchases/s`.
    pub unit: &'static str,
    /// What it is measured against, in the same unit and the same run; `None` for a
    /// figure that is itself a rate or a bound.
    pub bound: Option<f64>,
    /// `value / bound`, when there is a bound.
    pub ratio: Option<f64>,
    /// The ratio the figure must reach, or for a latency stay within (the performance
    /// targets), when it has one.
    pub target: Option<f64>,
    /// Whether the ratio met the target (`>=` it, or `<=` it for [`Better::Lower`]), when
    /// there is a target.
    pub met: Option<bool>,
    /// Which way the ratio is good.
    pub better: Better,
}

impl Figure {
    /// A figure with no bound (a primitive's rate, a bound itself).
    #[must_use]
    pub fn plain(name: impl Into<String>, value: f64, unit: &'static str) -> Figure {
        Figure {
            name: name.into(),
            value,
            unit,
            bound: None,
            ratio: None,
            target: None,
            met: None,
            better: Better::Higher,
        }
    }

    /// A figure measured against `bound`, and against `target` if any.
    #[must_use]
    pub fn bounded(
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        bound: f64,
        target: Option<f64>,
    ) -> Figure {
        let ratio = value / bound;
        Figure {
            name: name.into(),
            value,
            unit,
            bound: Some(bound),
            ratio: Some(ratio),
            target,
            met: target.map(|t| ratio >= t),
            better: Better::Higher,
        }
    }

    /// A figure where lower is better (a latency), measured against `limit`: its ratio
    /// is `value / limit`, its target 1, met when the value stays within the limit.
    #[must_use]
    pub fn at_most(name: impl Into<String>, value: f64, unit: &'static str, limit: f64) -> Figure {
        let ratio = value / limit;
        Figure {
            name: name.into(),
            value,
            unit,
            bound: Some(limit),
            ratio: Some(ratio),
            target: Some(1.0),
            met: Some(ratio <= 1.0),
            better: Better::Lower,
        }
    }

    /// A figure where lower is better (a latency) measured against `bound` without a
    /// target: its ratio is `value / bound`, `met` not applicable (e.g. a latency in HA
    /// mode against the single process's, docs/adr/0017).
    #[must_use]
    pub fn lower_against(
        name: impl Into<String>,
        value: f64,
        unit: &'static str,
        bound: f64,
    ) -> Figure {
        Figure {
            name: name.into(),
            value,
            unit,
            bound: Some(bound),
            ratio: Some(value / bound),
            target: None,
            met: None,
            better: Better::Lower,
        }
    }
}

/// The whole run, as `--json` prints it.
#[derive(Clone, Debug, Serialize)]
pub struct Report {
    /// The suites measured (`paper`, `modern`).
    pub suites: Vec<String>,
    /// Whether this was a `--quick` run (fewer frames, shorter primitive timings).
    pub quick: bool,
    /// Every figure, in the order measured.
    pub figures: Vec<Figure>,
}

/// A number in three significant figures or more, without exponent.
fn number(x: f64) -> String {
    if x >= 100.0 {
        format!("{x:.0}")
    } else if x >= 10.0 {
        format!("{x:.1}")
    } else {
        format!("{x:.2}")
    }
}

fn optional(x: Option<f64>) -> String {
    x.map_or_else(|| "-".to_owned(), number)
}

/// The target column: `<=` before a latency's.
fn target(f: &Figure) -> String {
    match (f.target, f.better) {
        (Some(t), Better::Lower) => format!("<={}", number(t)),
        (t, _) => optional(t),
    }
}

/// Writes the report as a table: name, value, unit, bound, ratio, target, met.
///
/// # Errors
/// The writer's.
pub fn write_table<W: Write>(out: &mut W, report: &Report) -> std::io::Result<()> {
    let width = report
        .figures
        .iter()
        .map(|f| f.name.len())
        .max()
        .unwrap_or(4)
        .max(4);
    writeln!(
        out,
        "{:<width$}  {:>10}  {:<12}  {:>10}  {:>6}  {:>6}  met",
        "name", "value", "unit", "bound", "ratio", "target"
    )?;
    for f in &report.figures {
        let met = match f.met {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "-",
        };
        writeln!(
            out,
            "{:<width$}  {:>10}  {:<12}  {:>10}  {:>6}  {:>6}  {met}",
            f.name,
            number(f.value),
            f.unit,
            optional(f.bound),
            optional(f.ratio),
            target(f),
        )?;
    }
    Ok(())
}

/// Writes the report as one JSON document.
///
/// # Errors
/// The writer's, or serialization's (none for these types).
pub fn write_json<W: Write>(out: &mut W, report: &Report) -> std::io::Result<()> {
    serde_json::to_writer_pretty(&mut *out, report)?;
    writeln!(out)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    #[test]
    fn a_bounded_figure_carries_its_ratio_and_whether_it_met_its_target() {
        let f = Figure::bounded("x", 80.0, "purchases/s", 100.0, Some(0.8));
        assert_eq!(f.ratio, Some(0.8));
        assert_eq!(f.met, Some(true));
        let f = Figure::bounded("x", 79.0, "purchases/s", 100.0, Some(0.8));
        assert_eq!(f.met, Some(false));
        let f = Figure::bounded("x", 79.0, "purchases/s", 100.0, None);
        assert_eq!(f.met, None);
    }

    #[test]
    fn a_latency_meets_its_limit_when_it_stays_within_it() {
        let f = Figure::at_most("p50", 4.0, "ms", 5.0);
        assert_eq!(
            (f.ratio, f.target, f.met),
            (Some(0.8), Some(1.0), Some(true))
        );
        assert_eq!(f.better, Better::Lower);
        assert_eq!(Figure::at_most("p50", 6.0, "ms", 5.0).met, Some(false));
    }

    #[test]
    fn a_latency_against_a_bound_without_target_has_no_verdict() {
        let f = Figure::lower_against("p50", 6.0, "ms", 4.0);
        assert_eq!(
            (f.ratio, f.target, f.met, f.better),
            (Some(1.5), None, None, Better::Lower)
        );
    }

    #[test]
    fn the_table_has_one_line_per_figure_under_its_header() {
        let report = Report {
            suites: vec!["paper".into()],
            quick: true,
            figures: vec![
                Figure::plain("paper verify", 12_345.6, "ops/s"),
                Figure::bounded(
                    "paper broker 6.3 batch 256",
                    50.0,
                    "purchases/s",
                    100.0,
                    Some(0.8),
                ),
            ],
        };
        let mut out = Vec::new();
        write_table(&mut out, &report).unwrap();
        let text = String::from_utf8(out).unwrap();
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 3, "{text}");
        assert!(lines[0].starts_with("name"));
        assert!(
            lines[1].contains("12346") && lines[1].ends_with('-'),
            "{text}"
        );
        assert!(
            lines[2].contains("0.50") && lines[2].ends_with("NO"),
            "{text}"
        );
    }
}
