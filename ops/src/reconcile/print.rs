//! The report of `peerscrip-ops reconcile`, as text or one JSON object.

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
                    "amount": signed_amount(f.amount),
                    "since_ms": f.since,
                })
            })
            .collect();
        let merchants: Vec<_> = report
            .merchants
            .iter()
            .map(|m| {
                serde_json::json!({
                    "path": m.path,
                    "uid": m.uid.to_string(),
                    "memo": signed_amount(m.memo),
                    "live": signed_amount(m.live),
                    "in_flight": signed_amount(m.in_flight),
                })
            })
            .collect();
        let wallets: Vec<_> = report
            .wallets
            .iter()
            .map(|w| {
                serde_json::json!({
                    "path": w.path,
                    "uid": w.uid.to_string(),
                    "compared": w.compared,
                    "skipped": w.skipped,
                })
            })
            .collect();
        println!(
            "{}",
            serde_json::json!({
                "broker": report.broker,
                "ok": report.ok(),
                "matched": report.matched,
                "as_of_ms": report.as_of,
                "merchants": merchants,
                "wallets": wallets,
                "in_flight": in_flight,
                "mismatches": mismatches,
            })
        );
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
