//! How the demo reads. Text (the default) is printed step by step, each step flushed the
//! moment it completes, so a person watching sees the run progress; `--json` prints one
//! JSON document at the end, whatever the outcome (the steps done, the balances and checks
//! if the run got that far, and `ok`; on a failure `error`, `exit_code` and `message` as
//! in every `--json` error document), so a program reads one value. Amounts as `12.34` in
//! text, `{"value": "12.34", "minor": 1234}` in JSON; PANs redacted, never a secret (no PANSecret, CustomerSecret or key
//! is ever part of a [`Step`] or [`Checks`]).

use std::io::Write;

use customer_cli::cli::output::{amount_json, signed_amount_json, signed_amount_text};
use serde_json::{Value, json};
use shared::{Amount, Suite};

use super::checks::{Check, Checks};
use super::steps::{Kind, Step};

/// Where the demo's output goes, and in which form (see the module doc).
#[derive(Debug)]
pub struct Printer<W: Write> {
    out: W,
    json: bool,
    suite: Suite,
    steps: Vec<Step>,
    checks: Option<Checks>,
}

impl Printer<std::io::Stdout> {
    /// The printer of the command: standard output.
    ///
    /// # Errors
    /// Standard output could not be written.
    pub fn stdout(suite: Suite, json: bool) -> std::io::Result<Self> {
        Printer::new(std::io::stdout(), suite, json)
    }
}

impl<W: Write> Printer<W> {
    /// A printer to `out`; in text mode it prints the heading at once.
    ///
    /// # Errors
    /// `out` could not be written.
    pub fn new(out: W, suite: Suite, json: bool) -> std::io::Result<Self> {
        let mut printer = Printer {
            out,
            json,
            suite,
            steps: Vec::new(),
            checks: None,
        };
        if !json {
            writeln!(
                printer.out,
                "peerscrip demo ({suite} suite): one broker, two merchants, two customers over the in-memory bus"
            )?;
            printer.out.flush()?;
        }
        Ok(printer)
    }

    /// A step has completed: printed now (text), kept for the end (JSON).
    ///
    /// # Errors
    /// `out` could not be written.
    pub fn step(&mut self, step: Step) -> std::io::Result<()> {
        if !self.json {
            writeln!(self.out)?;
            writeln!(self.out, "[{}] {}", step.id, step.title)?;
            for line in &step.lines {
                writeln!(self.out, "  {line}")?;
            }
            for check in &step.checks {
                writeln!(self.out, "  {}", check_line(check))?;
            }
            self.out.flush()?;
        }
        self.steps.push(step);
        Ok(())
    }

    /// The final balances and checks: printed now (text), kept for the end (JSON).
    ///
    /// # Errors
    /// `out` could not be written.
    pub fn checks(&mut self, checks: Checks) -> std::io::Result<()> {
        if !self.json {
            text_checks(&mut self.out, &checks)?;
            self.out.flush()?;
        }
        self.checks = Some(checks);
        Ok(())
    }

    /// The run is over with `result`: the JSON document (text has said everything already;
    /// the error goes to standard error from `main`).
    ///
    /// # Errors
    /// `out` could not be written.
    pub fn finish(&mut self, result: &anyhow::Result<()>) -> std::io::Result<()> {
        if self.json {
            let doc = self.document(result);
            let text = serde_json::to_string_pretty(&doc).map_err(std::io::Error::other)?;
            writeln!(self.out, "{text}")?;
            self.out.flush()?;
        }
        Ok(())
    }

    /// The output written so far.
    #[must_use]
    pub fn output(&self) -> &W {
        &self.out
    }

    fn document(&self, result: &anyhow::Result<()>) -> Value {
        let mut doc = match result {
            Ok(()) => json!({"ok": true, "exit_code": 0}),
            Err(e) => customer_cli::cli::exit::error_json(super::exit_of(e), &format!("{e:#}")),
        };
        doc["suite"] = self.suite.to_string().into();
        doc["steps"] = self.steps.iter().map(step_json).collect::<Vec<_>>().into();
        if let (Some(c), Some(map)) = (&self.checks, doc.as_object_mut()) {
            map.insert("balances".into(), balances_json(c));
            map.insert(
                "checks".into(),
                c.results.iter().map(check_json).collect::<Vec<_>>().into(),
            );
            map.insert("conserved".into(), c.failures().is_empty().into());
            map.insert("files".into(), c.files.clone().into());
        }
        doc
    }
}

/// A signed ledger balance as `12.34` (`-12.34` below zero).
fn money(minor: i128) -> String {
    signed_amount_text(minor)
}

/// `[ok] name` or `[FAILED] name (detail)`.
fn check_line(check: &Check) -> String {
    format!("[{}] {check}", if check.held { "ok" } else { "FAILED" })
}

fn text_checks<W: Write>(out: &mut W, c: &Checks) -> std::io::Result<()> {
    writeln!(out)?;
    writeln!(out, "Final balances at the broker:")?;
    for (name, pan, b) in &c.bank {
        writeln!(out, "  bank {name:<10} {pan}  {:>10}", money(*b))?;
    }
    writeln!(
        out,
        "  float:broker               {:>10}",
        money(c.float_broker)
    )?;
    for (name, memo, live) in &c.float_vendor {
        writeln!(
            out,
            "  memo float:vendor:{name:<10} {:>10}  (live VendorScrip {})",
            money(*memo),
            Amount::from_minor(*live)
        )?;
    }
    writeln!(
        out,
        "  sum of all accounts        {:>10}",
        money(c.broker_sum)
    )?;
    writeln!(out)?;
    writeln!(out, "Checks:")?;
    for check in &c.results {
        writeln!(out, "  {}", check_line(check))?;
    }
    writeln!(out, "Files: {}", c.files.join(", "))
}

fn check_json(c: &Check) -> Value {
    json!({"check": c.name, "held": c.held, "detail": c.detail})
}

fn step_json(s: &Step) -> Value {
    let (kind, refused_with) = match s.kind {
        Kind::Transaction => ("transaction", None),
        Kind::Refusal(code) => ("refusal", Some(code.name())),
        Kind::Repeat => ("repeat", None),
    };
    json!({
        "id": s.id,
        "title": s.title,
        "kind": kind,
        "refused_with": refused_with,
        "lines": s.lines,
        "checks": s.checks.iter().map(check_json).collect::<Vec<_>>(),
    })
}

fn balances_json(c: &Checks) -> Value {
    json!({
        "bank": c.bank.iter().map(|(n, p, b)| json!({
            "holder": n, "pan": p, "balance": signed_amount_json(*b),
        })).collect::<Vec<_>>(),
        "float_broker": signed_amount_json(c.float_broker),
        "float_vendor": c.float_vendor.iter().map(|(n, m, l)| json!({
            "merchant": n, "memo": signed_amount_json(*m),
            "live_vendor_scrip": amount_json(Amount::from_minor(*l)),
        })).collect::<Vec<_>>(),
        "sum_of_accounts": signed_amount_json(c.broker_sum),
    })
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;
    use shared::ErrorCode;

    fn step(id: &'static str) -> Step {
        Step {
            id,
            title: "Spent scrip presented again",
            kind: Kind::Refusal(ErrorCode::Spent),
            lines: vec!["the tea shop refused it: Spent".to_owned()],
            checks: vec![Check::new("refused with Spent", Ok(()))],
        }
    }

    fn written(p: &Printer<Vec<u8>>) -> String {
        String::from_utf8(p.output().clone()).unwrap()
    }

    /// Text mode: each step is in the output the moment it is handed over, before the run
    /// ends (what a person watching sees).
    #[test]
    fn text_prints_each_step_when_it_completes() {
        let mut p = Printer::new(Vec::new(), Suite::Paper, false).unwrap();
        assert_eq!(
            written(&p),
            "peerscrip demo (paper suite): one broker, two merchants, two customers over the in-memory bus\n"
        );
        p.step(step("6.3-spent")).unwrap();
        assert!(
            written(&p).ends_with(
                "\n[6.3-spent] Spent scrip presented again\n  the tea shop refused it: Spent\n  [ok] refused with Spent\n"
            ),
            "{}",
            written(&p)
        );
        let before = written(&p);
        p.finish(&Ok(())).unwrap();
        assert_eq!(written(&p), before, "text says nothing more at the end");
    }

    /// JSON mode: nothing until the end, then one document with the outcome; a failed
    /// check is in it with its exit code.
    #[test]
    fn json_prints_one_document_at_the_end_with_the_outcome() {
        let mut p = Printer::new(Vec::new(), Suite::Modern, true).unwrap();
        p.step(step("6.3-spent")).unwrap();
        assert_eq!(written(&p), "");
        let failed = Check::new("refused with Spent", Err("it was accepted".to_owned()));
        let result = Err(super::super::DemoError::ChecksFailed(vec![failed]).into());
        p.finish(&result).unwrap();
        let doc: Value = serde_json::from_str(&written(&p)).unwrap();
        assert_eq!(doc["suite"], "modern");
        assert_eq!(doc["ok"], false);
        assert_eq!(doc["exit_code"], 3);
        assert_eq!(doc["error"], "refused");
        assert_eq!(
            doc["message"],
            "check failed: refused with Spent (it was accepted)"
        );
        assert_eq!(doc["steps"][0]["id"], "6.3-spent");
        assert_eq!(doc["steps"][0]["kind"], "refusal");
        assert_eq!(doc["steps"][0]["refused_with"], "Spent");
        assert_eq!(doc["steps"][0]["checks"][0]["held"], true);
        assert!(doc.get("checks").is_none(), "the run did not get that far");
    }

    #[test]
    fn a_failed_check_reads_failed_with_what_was_found() {
        let c = Check::new("broker log chain", Err("event 4 altered".to_owned()));
        assert_eq!(
            check_line(&c),
            "[FAILED] broker log chain (event 4 altered)"
        );
        let c = Check::new("broker log chain", Ok(()));
        assert_eq!(check_line(&c), "[ok] broker log chain");
    }
}
