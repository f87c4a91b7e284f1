//! `peerscrip-ops demo` as a user runs it (issue 4): the built binary in both suites, its
//! files in a temporary `--data-dir`, its `--json` report read back. Exit 0, all ten
//! transactions, conservation at the end, one redb file per node.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use serde_json::Value;

fn run_demo(suite: &str) -> (Value, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(["demo", "--suite", suite, "--json", "--data-dir"])
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{suite}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    (serde_json::from_slice(&out.stdout).unwrap(), dir)
}

fn check(suite: &str) {
    let (report, dir) = run_demo(suite);
    let ids: Vec<&str> = report["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "6.0", "6.0b", "6.1", "6.2", "6.3", "6.4", "6.5", "6.6", "6.7", "6.8"
        ]
    );
    assert_eq!(report["suite"], suite);
    assert_eq!(report["conserved"], true);
    let checks = report["checks"].as_array().unwrap();
    assert!(checks.len() > 20, "{checks:?}");
    assert!(checks.iter().all(|c| c["held"] == true), "{checks:?}");
    // Final balances: the sum of the broker's accounts is zero; the money that entered
    // (150.00) is where the ten transactions left it.
    let balances = &report["balances"];
    assert_eq!(balances["sum_of_accounts"], "0.00");
    let bank: Vec<(&str, &str)> = balances["bank"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["holder"].as_str().unwrap(),
                b["balance"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        bank,
        [
            ("alice", "91.00"),
            ("bob", "30.00"),
            ("tea shop", "9.00"),
            ("book shop", "10.00")
        ]
    );
    assert_eq!(balances["float_broker"], "10.00");
    for v in balances["float_vendor"].as_array().unwrap() {
        assert_eq!(v["memo"], v["live_vendor_scrip"], "{v}");
    }
    // PANs redacted, the test-vector secret never printed.
    let text = report.to_string();
    assert!(!text.contains("GR1601101250000000012300695"));
    assert!(!text.contains("correct horse"));
    // One redb file per node, where the brief puts them.
    let mut files: Vec<String> = Vec::new();
    for entry in std::fs::read_dir(dir.path()).unwrap() {
        let sub = entry.unwrap().path();
        for f in std::fs::read_dir(&sub).unwrap() {
            let f = f.unwrap().path();
            if f.extension().is_some_and(|e| e == "redb") {
                files.push(f.strip_prefix(dir.path()).unwrap().display().to_string());
            }
        }
    }
    files.sort();
    assert_eq!(
        files,
        [
            "broker/broker.redb",
            "customer-alice/wallet.redb",
            "customer-bob/wallet.redb",
            "merchant-books/merchant.redb",
            "merchant-tea/merchant.redb"
        ]
    );
    assert_eq!(report["files"].as_array().unwrap().len(), 5);
}

#[test]
fn demo_paper_suite() {
    check("paper");
}

#[test]
fn demo_modern_suite() {
    check("modern");
}
