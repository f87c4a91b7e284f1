//! `ops/deploy/quickstart`, the README's "Run it for real" in one script, run for real: its
//! own nats-server, the built `peerscrip-broker`, `peerscrip-merchant`, `peerscrip-ops` and
//! `peerscrip` binaries, bank accounts opened over the bus by the operator, and a purchase
//! with change from the command line; then the broker's log audited. Its nats-server runs
//! the configuration `peerscrip-ops nats-config` generated (one user per node, each
//! confined to its subjects, as `tests/tests/nats_permissions.rs` checks rule by rule), every
//! node connects as its user, and a client without one is refused. The script exits
//! non-zero on any failed step; this test also checks what it printed adds up.
#![allow(clippy::unwrap_used)]

use std::process::Command;

use peerscrip_tests::binaries::{built, workspace};

#[test]
fn the_quickstart_buys_an_item_and_the_books_add_up() {
    let work = tempfile::tempdir().unwrap();
    let out = Command::new("bash")
        .arg(workspace().join("ops/deploy/quickstart"))
        .arg("--bin-dir")
        .arg(built())
        .arg("--work-dir")
        .arg(work.path())
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "quickstart failed:\n{stdout}\n{stderr}"
    );
    for line in [
        "one user per node",
        "== the server refuses a client without credentials",
        "recorded; bank account GR1601101250000000012300695 now holds 100.00",
        "bought BrokerScrip 40.00 from your bank account",
        "received VendorScrip 15.00 of",
        "for 9.00",
        "change: VendorScrip 6.00",
        // 100.00 paid in = 60.00 in the bank + 25.00 BrokerScrip + 6.00 VendorScrip + 9.00
        // paid to the merchant, whose 15.00 less the 6.00 still held may be paid out.
        "bank account GR1601101250000000012300695: balance 60.00, available for payout 60.00",
        "total                         31.00",
        "bank account GR9608100010000001234567890: balance 15.00, available for payout 9.00",
        "OK: chain, postings,",
        // The live views: the broker's float and accounts, the merchant's sale.
        "float:broker   25.00 in 1 live BrokerScrip (0 held)",
        "bank accounts  2 holding 75.00; external -100.00",
        "live scrip     1 worth 6.00 (0 held, 0 due to lapse)",
        "sales          1",
        "  Green Tea House  memo float:vendor 6.00",
        "  merchant  Green Tea House",
        "  Green Tea House  modern  serving",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in:\n{stdout}");
    }
    // No secret on the terminal: the PANSecrets are only in their files.
    for secret in ["alice.pansecret", "merchant.pansecret"] {
        let value = std::fs::read_to_string(work.path().join("secrets").join(secret)).unwrap();
        assert!(!stdout.contains(value.trim()) && !stderr.contains(value.trim()));
    }
}
