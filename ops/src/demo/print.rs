//! How the demo reads: text for a person, or one JSON object (`--json`). Amounts as
//! `12.34`, PANs redacted, never a secret (no PANSecret, CustomerSecret or key is ever
//! part of a [`Report`]).

use serde_json::{Value, json};
use shared::{Amount, Suite};

use super::checks::Checks;
use super::steps::Step;

/// Everything the demo shows.
#[derive(Debug, Clone)]
pub struct Report {
    /// The suite it ran in.
    pub suite: Suite,
    /// The ten transactions.
    pub steps: Vec<Step>,
    /// The final checks and balances.
    pub checks: Checks,
}

/// A signed ledger balance as `12.34` (`-12.34` below zero).
fn money(minor: i128) -> String {
    let sign = if minor < 0 { "-" } else { "" };
    let abs = minor.unsigned_abs();
    let shown =
        u64::try_from(abs).map_or_else(|_| abs.to_string(), |m| Amount::from_minor(m).to_string());
    format!("{sign}{shown}")
}

/// Prints the report as text.
pub fn text(report: &Report) {
    println!(
        "peerscrip demo ({} suite): one broker, two merchants, two customers over the in-memory bus",
        report.suite
    );
    for step in &report.steps {
        println!();
        println!("[{}] {}", step.id, step.title);
        for line in &step.lines {
            println!("  {line}");
        }
    }
    let c = &report.checks;
    println!();
    println!("Final balances at the broker:");
    for (name, pan, b) in &c.bank {
        println!("  bank {name:<10} {pan}  {:>10}", money(*b));
    }
    println!("  float:broker               {:>10}", money(c.float_broker));
    for (name, memo, live) in &c.float_vendor {
        println!(
            "  memo float:vendor:{name:<10} {:>10}  (live VendorScrip {})",
            money(*memo),
            Amount::from_minor(*live)
        );
    }
    println!("  sum of all accounts        {:>10}", money(c.broker_sum));
    println!();
    println!("Checks:");
    for (name, ok) in &c.results {
        println!("  [{}] {name}", if *ok { "ok" } else { "FAILED" });
    }
    println!("Files: {}", c.files.join(", "));
}

/// The report as one JSON object.
#[must_use]
pub fn json(report: &Report) -> Value {
    let c = &report.checks;
    json!({
        "suite": report.suite.to_string(),
        "steps": report.steps.iter().map(|s| json!({
            "id": s.id, "title": s.title, "lines": s.lines,
        })).collect::<Vec<_>>(),
        "balances": {
            "bank": c.bank.iter().map(|(n, p, b)| json!({
                "holder": n, "pan": p, "balance": money(*b),
            })).collect::<Vec<_>>(),
            "float_broker": money(c.float_broker),
            "float_vendor": c.float_vendor.iter().map(|(n, m, l)| json!({
                "merchant": n, "memo": money(*m), "live_vendor_scrip": Amount::from_minor(*l).to_string(),
            })).collect::<Vec<_>>(),
            "sum_of_accounts": money(c.broker_sum),
        },
        "checks": c.results.iter().map(|(n, ok)| json!({"check": n, "held": ok})).collect::<Vec<_>>(),
        "conserved": c.failures().is_none(),
        "files": c.files,
    })
}
