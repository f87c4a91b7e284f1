//! The report of `peerscrip-ops reconcile`, as text or one JSON object (amounts and times
//! in the format of every `--json` document, `customer_cli::cli::output`).

use customer_cli::cli::exit::Exit;
use customer_cli::cli::output::{signed_amount_json, time_json};

use super::*;

/// Prints `report` as text or one JSON object.
pub fn print(report: &Report, json: bool) {
    if json {
        let mismatches: Vec<_> = report
            .mismatches
            .iter()
            .map(|m| {
                serde_json::json!({
                    "tx": m.tx.map(|t| t.to_string()),
                    "check": m.check.to_string(),
                    "party": m.party.to_string(),
                    "expected": m.expected,
                    "found": m.found,
                })
            })
            .collect();
        let in_flight: Vec<_> = report
            .in_flight
            .iter()
            .map(|f| {
                serde_json::json!({
                    "tx": f.tx.to_string(),
                    "merchant": f.merchant.to_string(),
                    "what": f.what,
                    "amount": signed_amount_json(f.amount),
                    "since": time_json(f.since.to_secs()),
                })
            })
            .collect();
        let merchants: Vec<_> = report
            .merchants
            .iter()
            .map(|m| {
                serde_json::json!({
                    "path": m.path.display().to_string(),
                    "uid": m.uid.to_string(),
                    "memo": signed_amount_json(m.memo),
                    "live": signed_amount_json(m.live),
                    "in_flight": signed_amount_json(m.in_flight),
                })
            })
            .collect();
        let wallets: Vec<_> = report
            .wallets
            .iter()
            .map(|w| {
                serde_json::json!({
                    "path": w.path.display().to_string(),
                    "uid": w.uid.to_string(),
                    "compared": w.compared,
                    "skipped": w.skipped,
                })
            })
            .collect();
        let mut doc = serde_json::json!({
            "broker": report.broker.display().to_string(),
            "ok": report.ok(),
            "matched": report.matched,
            "as_of": time_json(report.as_of.to_secs()),
            "merchants": merchants,
            "wallets": wallets,
            "in_flight": in_flight,
            "mismatches": mismatches,
        });
        // Mismatches are the command's failure: the keys every `--json` error has.
        if !report.ok() {
            let message = format!("reconcile: {} mismatch(es)", report.mismatches.len());
            if let (Some(doc), serde_json::Value::Object(error)) = (
                doc.as_object_mut(),
                customer_cli::cli::exit::error_json(Exit::Refused, &message),
            ) {
                doc.extend(error);
            }
        }
        println!("{doc}");
        return;
    }
    println!("broker log {}", report.broker.display());
    for m in &report.merchants {
        println!(
            "  merchant {} ({}): memo {}, live VendorScrip {}, in flight {}",
            m.uid,
            m.path.display(),
            signed_amount(m.memo),
            signed_amount(m.live),
            signed_amount(m.in_flight)
        );
    }
    for w in &report.wallets {
        println!(
            "  wallet {} ({}): {} history facts compared, {} about merchants not given",
            w.uid,
            w.path.display(),
            w.compared,
            w.skipped
        );
    }
    for f in &report.in_flight {
        println!("in flight: tx {} ({}): {}", f.tx, f.merchant, f.what);
    }
    if report.ok() {
        println!(
            "OK: {} exchanges, purchases, top-ups and withdrawals match; every float and wallet agrees",
            report.matched
        );
    } else {
        for m in &report.mismatches {
            println!("MISMATCH {m}");
        }
        println!("FAILED: {} mismatch(es)", report.mismatches.len());
    }
}
