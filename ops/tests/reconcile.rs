//! `peerscrip-ops reconcile` on the logs of a real run (the demo's: everything agrees) and
//! on copies of a merchant's log with one forged transaction appended through the log API
//! a purchase the merchant logged and the broker did not, and VendorScrip issued
//! without the broker's authorization. Each is named by its tx and check, with the float
//! of that merchant; the exit code is 3.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use merchant::core::events::Kind;
use merchant::core::state::State;
use merchant::node::NODE_KIND;
use merchant::store::Mirror;
use ops::reconcile::{Check, Mismatch, Report, reconcile};
use shared::events::{Event, EventLog, LogIdentity, NewEvent};
use shared::node::Recorded;
use shared::wire::bodies::{OrderId, OrderInfo, Receipt};
use shared::{Amount, CustId, ScripBody, ScripId, Suite, TxId, Uid, UnixMillis, UnixSecs};

mod common;

use common::demo_run as demo;

fn merchants(data: &Path) -> Vec<PathBuf> {
    vec![data.join("merchant-tea"), data.join("merchant-books")]
}

fn wallets(data: &Path) -> Vec<PathBuf> {
    vec![data.join("customer-alice"), data.join("customer-bob")]
}

/// The merchant log at `path`, replayed: its events and its state.
fn replay(path: &Path) -> (Vec<Event<Recorded<Kind>>>, State) {
    let log = EventLog::<Recorded<Kind>>::open_existing(path).unwrap();
    let events: Vec<_> = log.iter().unwrap().map(Result::unwrap).collect();
    let mut state = State::new();
    for e in &events {
        state.apply(e);
    }
    (events, state)
}

/// A copy of the merchant directory `from` at `to`, with `forged` appended to its log
/// through the log API (valid chain, tables kept by the merchant's own projection), so
/// that only the cross-party checks can object.
fn forge(from: &Path, to: &Path, forged: Vec<NewEvent<Recorded<Kind>>>) {
    std::fs::create_dir_all(to).unwrap();
    let log_path = to.join(merchant::config::LOG_FILE);
    std::fs::copy(from.join(merchant::config::LOG_FILE), &log_path).unwrap();
    let (_, state) = replay(&log_path);
    let log = EventLog::open(&log_path, LogIdentity::new(Suite::Modern, NODE_KIND)).unwrap();
    log.append(forged, &Mirror::new(state)).unwrap();
}

fn recorded(time: u64, tx: TxId, kind: Kind) -> NewEvent<Recorded<Kind>> {
    NewEvent::new(
        UnixMillis::new(time),
        tx,
        Recorded {
            kind,
            sent: Vec::new(),
        },
    )
}

/// A demo run (`common::demo_run`) and its book shop after it: the book shop's live
/// VendorScrip (bob's change from his purchase), bob, and a time a second after the last
/// event of all the demo's logs, so that a forged event then is recent, not stuck.
struct Demo {
    dir: tempfile::TempDir,
    data: PathBuf,
    v1: ScripBody,
    bob: Uid,
    time: u64,
}

impl Demo {
    fn new() -> Demo {
        let (dir, data) = demo();
        let (_, state) = replay(&data.join("merchant-books").join(merchant::config::LOG_FILE));
        let (_, row) = state.tables.live.iter().next().unwrap();
        let end = reconcile(&data.join("broker"), &merchants(&data), &wallets(&data))
            .unwrap()
            .as_of;
        Demo {
            v1: row.body,
            bob: row.owner,
            time: end.get() + 1000,
            dir,
            data,
        }
    }

    /// The book shop's log forged at `name` with `forged` appended ([`forge`]), given in
    /// place of the demo's: the merchant directories to reconcile, tea first.
    fn with_forged_books(&self, name: &str, forged: Vec<NewEvent<Recorded<Kind>>>) -> Vec<PathBuf> {
        let to = self.dir.path().join(name);
        forge(&self.data.join("merchant-books"), &to, forged);
        vec![self.data.join("merchant-tea"), to]
    }

    /// The reconciliation of the demo's broker with `merchants` (and its wallets, if
    /// `with_wallets`).
    fn reconcile(&self, merchants: &[PathBuf], with_wallets: bool) -> Report {
        let wallets = if with_wallets {
            wallets(&self.data)
        } else {
            Vec::new()
        };
        reconcile(&self.data.join("broker"), merchants, &wallets).unwrap()
    }
}

/// Asserts that `report` agrees but for one thing in flight, `tx`: the book shop's 6.80,
/// no longer in its live table and still in the broker's memo.
fn assert_books_in_flight(report: &Report, tx: TxId) {
    assert!(report.ok(), "{:?}", report.mismatches);
    assert_eq!(report.in_flight.len(), 1, "{:?}", report.in_flight);
    assert_eq!(report.in_flight[0].tx, tx);
    assert_eq!(report.in_flight[0].amount, 680);
    assert_eq!(report.merchants[1].live, 0);
    assert_eq!(report.merchants[1].memo, 680);
}

/// A purchase by `customer` of one city map at `price`, paid with `spent` at `time`, the
/// change (if any) in a fresh scrip.
fn map_bought(customer: Uid, spent: ScripBody, price: Amount, time: u64) -> Kind {
    let order_id = OrderId::random();
    let change = spent.value.checked_sub(price).unwrap();
    Kind::PurchaseMade {
        customer,
        spent,
        change: (!change.is_zero()).then(|| ScripBody {
            value: change,
            scrip_id: ScripId::random(),
            cust_id: CustId::random(),
            ..spent
        }),
        order: OrderInfo {
            item_id: "map".into(),
            name: "City map".into(),
            unit_price: price,
            quantity: 1,
            order_id,
        },
        receipt: Receipt {
            order_id,
            paid: price,
            issued_at: UnixMillis::new(time).to_secs().get(),
        },
    }
}

/// The lapse of `owner`'s `scrip` at the merchant.
fn lapsed(owner: Uid, scrip: ScripBody) -> Kind {
    Kind::ScripLapsed {
        owner,
        scrip,
        digest: vec![0; 32],
    }
}

fn checks(mismatches: &[Mismatch]) -> Vec<(Option<TxId>, Check, Uid)> {
    mismatches
        .iter()
        .map(|m| (m.tx, m.check, m.party))
        .collect()
}

/// Asserts that `report` names exactly `named`, in order: each mismatch's tx, check, party
/// and what it expected.
fn assert_named(report: &Report, named: &[(Option<TxId>, Check, Uid, String)]) {
    let got: Vec<_> = report
        .mismatches
        .iter()
        .map(|m| (m.tx, m.check, m.party, m.expected.clone()))
        .collect();
    assert_eq!(got, named);
}

/// `peerscrip-ops reconcile <broker> <merchants…> [--wallet <wallet>]… <extra…>`: its exit
/// code and standard output.
fn reconcile_command(
    broker: &Path,
    merchants: &[PathBuf],
    wallets: &[PathBuf],
    extra: &[&str],
) -> (Option<i32>, String) {
    let mut command = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
    command.arg("reconcile").arg(broker).args(merchants);
    for w in wallets {
        command.arg("--wallet").arg(w);
    }
    let out = command.args(extra).output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert!(
        matches!(out.status.code(), Some(0 | 3)),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code(), stdout)
}

/// The broker's node on the (copied) log at `log`, as the demo's broker opens it.
fn open_broker(log: &Path) -> broker::node::BrokerNode {
    let suite = Suite::Modern;
    broker::node::BrokerNode::open(
        log,
        shared::fixtures::keypair(suite, 1).clone(),
        shared::fixtures::root_key(1),
        broker::core::Config::new(suite),
    )
    .unwrap()
}

#[test]
fn the_demo_logs_agree() {
    let (_dir, data) = demo();
    let report = reconcile(&data.join("broker"), &merchants(&data), &wallets(&data)).unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    assert!(report.in_flight.is_empty(), "{:?}", report.in_flight);
    // 6.2 twice, 6.3 twice, 6.5 and 6.7 once: each matched on both sides.
    assert_eq!(report.matched, 6);
    assert_eq!(report.merchants.len(), 2);
    for m in &report.merchants {
        assert_eq!(m.memo, m.live, "{m:?}");
        assert_eq!(m.in_flight, 0);
    }
    // bob's book shop VendorScrip: 10.00 issued, 3.20 spent.
    assert_eq!(report.merchants[1].live, 680);
    assert_eq!(report.wallets.len(), 2);
    assert!(
        report
            .wallets
            .iter()
            .all(|w| w.compared > 0 && w.skipped == 0)
    );

    let (code, out) = reconcile_command(
        &data.join("broker"),
        &merchants(&data),
        &wallets(&data),
        &["--json"],
    );
    assert_eq!(code, Some(0));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["matched"], 6);
    assert_eq!(json["mismatches"].as_array().unwrap().len(), 0);
}

/// A purchase the merchant logged (and says the broker acknowledged) that the broker never
/// recorded: named with its tx, the book shop's float is off by its price, and bob's
/// wallet does not show it.
#[test]
fn a_purchase_the_broker_did_not_record_is_named() {
    let d = Demo::new();
    let Demo { v1, bob, time, .. } = d;
    let tx = TxId::random();
    let given = d.with_forged_books(
        "merchant-books-forged",
        vec![
            recorded(time, tx, map_bought(bob, v1, Amount::from_minor(100), time)),
            recorded(time, tx, Kind::PurchaseReported),
        ],
    );
    let report = d.reconcile(&given, true);
    let books = report.merchants[1].uid;
    assert_named(
        &report,
        &[
            (
                Some(tx),
                Check::PurchaseNotRecorded,
                books,
                format!("the broker's event for the merchant's 1.00 for {bob}"),
            ),
            (
                None,
                Check::FloatVendor,
                books,
                format!("float:vendor:{books} = 5.80 (live VendorScrip 5.80 + in flight 0.00)"),
            ),
            (
                Some(tx),
                Check::MissingFromWallet,
                bob,
                format!("purchase of 1.00 made at {books}, change 5.80"),
            ),
        ],
    );
    assert_eq!(report.mismatches[0].found, "none in the broker's log");
    assert_eq!(report.mismatches[1].found, "the broker's memo 6.80");
    assert!(report.in_flight.is_empty());

    // The command: exit 3, each mismatch on its own line.
    let (code, text) = reconcile_command(&d.data.join("broker"), &given, &[], &[]);
    assert_eq!(code, Some(3));
    assert!(
        text.contains(&format!(
            "MISMATCH tx {tx}: purchase-not-recorded ({books})"
        )),
        "{text}"
    );
    assert!(text.contains("FAILED: 2 mismatch(es)"), "{text}");
}

/// The same purchase not yet reported to the broker is in flight by the merchant's own log
/// (it repeats its report until acknowledged, 6.3 step 5): listed, and counted in the
/// float, not a mismatch.
#[test]
fn an_unreported_purchase_is_in_flight() {
    let d = Demo::new();
    let Demo { v1, bob, time, .. } = d;
    let tx = TxId::random();
    let given = d.with_forged_books(
        "merchant-books-unreported",
        vec![recorded(time, tx, map_bought(bob, v1, v1.value, time))],
    );
    let report = d.reconcile(&given, false);
    assert_books_in_flight(&report, tx);
}

/// A VendorScrip the merchant lapsed (section 4, docs/adr/0011) whose notice the broker has
/// not recorded yet: in flight under the lapse's tx (the scrip id), not a mismatch; the
/// broker's memo still counts the value the merchant's live table no longer holds.
#[test]
fn a_lapse_the_broker_has_not_recorded_is_in_flight() {
    let d = Demo::new();
    let Demo { v1, bob, time, .. } = d;
    let tx = TxId(v1.scrip_id.0);
    let given = d.with_forged_books(
        "merchant-books-lapsed",
        vec![recorded(time, tx, lapsed(bob, v1))],
    );
    let report = d.reconcile(&given, false);
    assert_books_in_flight(&report, tx);
    assert!(report.in_flight[0].what.contains("lapsed at the merchant"));
}

/// The same lapse two hours later by the logs' own clock (the merchant's log goes on with
/// an event of another tx) and still unrecorded by the broker: stuck, named with its tx and
/// amount, exit 3; the float itself still balances. With a longer `--max-age-secs` it is
/// in flight again.
#[test]
fn a_lapse_unrecorded_for_longer_than_the_max_age_is_stuck() {
    let d = Demo::new();
    let Demo { v1, bob, time, .. } = d;
    let tx = TxId(v1.scrip_id.0);
    let two_hours = 2 * 3600 * 1000;
    let given = d.with_forged_books(
        "merchant-books-stuck",
        vec![
            recorded(time, tx, lapsed(bob, v1)),
            recorded(time + two_hours, TxId::random(), Kind::PurchaseReported),
        ],
    );
    let report = d.reconcile(&given, false);
    let books = report.merchants[1].uid;
    assert_eq!(
        checks(&report.mismatches),
        vec![(Some(tx), Check::Stuck, books)]
    );
    assert!(
        report.mismatches[0]
            .found
            .contains("of 6.80 lapsed at the merchant")
            && report.mismatches[0].found.contains("in flight for 7200 s"),
        "{}",
        report.mismatches[0].found
    );
    assert_eq!(report.as_of, UnixMillis::new(time + two_hours));
    assert_eq!(report.merchants[1].memo, 680, "the float still balances");
    assert_eq!(report.merchants[1].in_flight, 680);

    let longer = ops::reconcile::Options {
        max_age_secs: 3 * 3600,
    };
    let report =
        ops::reconcile::reconcile_with(&d.data.join("broker"), &given, &[], longer).unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    assert_eq!(report.in_flight.len(), 1);

    let (code, out) = reconcile_command(&d.data.join("broker"), &given, &[], &["--json"]);
    assert_eq!(code, Some(3));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["mismatches"][0]["check"], "stuck");
    assert_eq!(json["mismatches"][0]["tx"], tx.to_string());
    let longer = ["--max-age-secs", "10800"];
    let (code, _) = reconcile_command(&d.data.join("broker"), &given, &[], &longer);
    assert_eq!(code, Some(0));
}

/// A BrokerScrip the broker lapsed and paid back (section 4) that a wallet still holds: in
/// flight while it is recent (the wallet learns of it when it next presents the scrip), and
/// `stuck` once the logs run on for longer than the age limit, named with its tx (the
/// scrip id) and value.
#[test]
fn a_wallet_still_holding_a_scrip_the_broker_paid_back_is_in_flight_then_stuck() {
    let (dir, data) = demo();
    let broker = dir.path().join("broker-lapsed");
    std::fs::create_dir_all(&broker).unwrap();
    let log = broker.join("broker.redb");
    std::fs::copy(data.join("broker").join("broker.redb"), &log).unwrap();
    let mut node = open_broker(&log);
    let live: Vec<_> = node
        .state()
        .live
        .iter()
        .map(|(id, record)| (*id, record.body.value))
        .collect();
    assert!(!live.is_empty(), "the demo leaves BrokerScrip held");
    let far = UnixSecs::new(4_000_000_000);
    assert_eq!(
        node.expire(far).unwrap().events,
        live.len(),
        "every one lapses"
    );
    node.close().unwrap();

    let report = reconcile(&broker, &merchants(&data), &wallets(&data)).unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    let held: Vec<_> = report
        .in_flight
        .iter()
        .filter(|f| f.what.contains("still holds scrip"))
        .collect();
    assert_eq!(held.len(), live.len(), "{:?}", report.in_flight);

    // Two hours later by the broker's own log, the wallets have still not noticed.
    let mut node = open_broker(&log);
    let (pan, _) = node.state().pans.iter().next().unwrap();
    let pan = pan.clone();
    node.deposit(&pan, Amount::from_minor(1), far.saturating_add_secs(7200))
        .unwrap();
    node.close().unwrap();
    let report = reconcile(&broker, &merchants(&data), &wallets(&data)).unwrap();
    let stuck: Vec<_> = report
        .mismatches
        .iter()
        .filter(|m| m.check == Check::Stuck)
        .collect();
    assert_eq!(stuck.len(), live.len(), "{:?}", report.mismatches);
    for (id, value) in &live {
        let m = stuck
            .iter()
            .find(|m| m.tx == Some(TxId(id.0)))
            .expect("named with the lapse's tx");
        assert!(
            m.found.contains(&format!("scrip {id} of {value}")),
            "{}",
            m.found
        );
    }
}

/// VendorScrip the merchant issued with no authorization by the broker: named with its
/// tx; the float is off by its value; bob's wallet never received it.
#[test]
fn vendor_scrip_issued_without_authorization_is_named() {
    let d = Demo::new();
    let Demo { v1, bob, time, .. } = d;
    let tx = TxId::random();
    let minted = ScripBody {
        value: Amount::from_minor(5_000),
        scrip_id: ScripId::random(),
        cust_id: CustId::random(),
        ..v1
    };
    let issued = Kind::VendorScripIssued {
        scrip: minted,
        owner: bob,
    };
    let given = d.with_forged_books("merchant-books-minted", vec![recorded(time, tx, issued)]);
    let report = d.reconcile(&given, true);
    let books = report.merchants[1].uid;
    assert_named(
        &report,
        &[
            (
                Some(tx),
                Check::VendorScripUnauthorized,
                books,
                format!("the broker's event for the merchant's 50.00 for {bob}"),
            ),
            (
                None,
                Check::FloatVendor,
                books,
                format!("float:vendor:{books} = 56.80 (live VendorScrip 56.80 + in flight 0.00)"),
            ),
            (
                Some(tx),
                Check::MissingFromWallet,
                bob,
                format!("VendorScrip 50.00 issued by {books}"),
            ),
        ],
    );
    assert_eq!(report.mismatches[0].found, "none in the broker's log");

    // The command's JSON lists the same, exit 3.
    let (code, out) = reconcile_command(&d.data.join("broker"), &given, &[], &["--json"]);
    assert_eq!(code, Some(3));
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["ok"], false);
    let listed: Vec<(String, String)> = json["mismatches"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["tx"].as_str().unwrap_or("-").to_owned(),
                m["check"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert_eq!(
        listed,
        [
            (tx.to_string(), "vendor-scrip-unauthorized".to_owned()),
            ("-".to_owned(), "float-vendor".to_owned()),
        ]
    );
    assert_eq!(
        json["merchants"][1]["live"],
        serde_json::json!({"value": "56.80", "minor": 5680})
    );
    assert_eq!(
        json["merchants"][1]["memo"],
        serde_json::json!({"value": "6.80", "minor": 680})
    );
    // The mismatches are the command's failure: the keys of every `--json` error.
    assert_eq!(json["error"], "refused");
    assert_eq!(json["exit_code"], 3);
    assert_eq!(json["message"], "reconcile: 2 mismatch(es)");
    let as_of = &json["as_of"];
    assert!(as_of["unix"].is_u64(), "{as_of}");
    assert!(as_of["rfc3339"].as_str().unwrap().ends_with('Z'), "{as_of}");
}

/// A merchant's log given as the broker's is refused by name, reading nothing further.
#[test]
fn a_log_in_the_wrong_place_is_refused() {
    let (_dir, data) = demo();
    let err = reconcile(
        &data.join("merchant-tea").join(merchant::config::LOG_FILE),
        &merchants(&data),
        &[],
    )
    .unwrap_err();
    assert!(
        matches!(
            &err,
            ops::reconcile::ReconcileError::WrongKind { expected: "broker", found, .. } if found == "merchant"
        ),
        "{err}"
    );
}

/// A copy of the merchant log at `from` re-chained at `to` without the events of `drop_tx`
/// (a valid chain and tables, through the log API): a purchase the broker recorded and the
/// merchant's log does not show.
fn without_tx(from: &Path, to: &Path, drop_tx: TxId) {
    without(from, to, |e| e.tx == drop_tx);
}

/// As [`without_tx`], leaving out the events `dropped` picks.
fn without(from: &Path, to: &Path, dropped: impl Fn(&Event<Recorded<Kind>>) -> bool) {
    std::fs::create_dir_all(to).unwrap();
    let (events, _) = replay(&from.join(merchant::config::LOG_FILE));
    let kept = events.into_iter().filter(|e| !dropped(e)).collect();
    let mirror = Mirror::new(State::new());
    common::rechain(
        kept,
        &to.join(merchant::config::LOG_FILE),
        NODE_KIND,
        &mirror,
    );
}

/// The broker recorded bob's purchase; the book shop's log (re-chained without it) does
/// not show it: named with its tx, the float is off (bob's VendorScrip is still live at
/// 10.00), and bob's wallet history shows a purchase the merchant's log does not.
#[test]
fn a_purchase_the_merchant_did_not_log_is_named() {
    let (dir, data) = demo();
    let books = data.join("merchant-books");
    let (events, _) = replay(&books.join(merchant::config::LOG_FILE));
    let purchase = events
        .iter()
        .find(|e| matches!(e.kind.kind, Kind::PurchaseMade { .. }))
        .unwrap();
    let (tx, bob) = match &purchase.kind.kind {
        Kind::PurchaseMade { customer, .. } => (purchase.tx, *customer),
        _ => unreachable!(),
    };
    let forged = dir.path().join("merchant-books-without");
    without_tx(&books, &forged, tx);
    let given = vec![data.join("merchant-tea"), forged];
    let report = reconcile(&data.join("broker"), &given, &wallets(&data)).unwrap();
    let m = report.merchants[1].uid;
    assert_named(
        &report,
        &[
            (
                Some(tx),
                Check::PurchaseNotMade,
                m,
                format!("the merchant's event for the broker's 3.20 for {bob}"),
            ),
            (
                None,
                Check::FloatVendor,
                m,
                format!("float:vendor:{m} = 10.00 (live VendorScrip 10.00 + in flight 0.00)"),
            ),
            (
                Some(tx),
                Check::WalletHistory,
                bob,
                format!("purchase of 3.20 made at {m}, change 6.80"),
            ),
        ],
    );
    assert_eq!(report.mismatches[0].found, "none in the merchant's log");
    assert_eq!(
        report.mismatches[2].found,
        format!("purchase of 3.20 at {m} recorded")
    );
}

/// A wallet's lines about a merchant whose log is not given are skipped and counted, not
/// reported.
#[test]
fn lines_about_a_merchant_not_given_are_skipped() {
    let (_dir, data) = demo();
    let report = reconcile(
        &data.join("broker"),
        &[data.join("merchant-tea")],
        &[data.join("customer-bob")],
    )
    .unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    // bob's VendorScrip obtained from and his purchase at the book shop.
    assert_eq!(report.wallets[0].skipped, 2);
}

/// A log whose chain does not verify is refused: reconcile reads only logs that audit.
#[test]
fn a_broken_chain_is_refused() {
    let (dir, data) = demo();
    let copy = dir.path().join("broker.redb");
    common::flip_event_byte(&data.join("broker").join("broker.redb"), &copy, 5);
    let err = reconcile(&copy, &merchants(&data), &[]).unwrap_err();
    assert!(
        matches!(&err, ops::reconcile::ReconcileError::Chain { path, .. } if *path == copy),
        "{err}"
    );
}

/// The broker paid alice's VendorScrip withdrawal; the tea shop's log stops before it spent
/// the scrip (it still awaits the decision, 6.7 step 4): in flight, by its own log, with
/// the float off by exactly that amount; alice's wallet, already told, agrees.
#[test]
fn a_withdrawal_the_merchant_has_not_applied_is_in_flight() {
    let (dir, data) = demo();
    let tea = data.join("merchant-tea");
    let copy = dir.path().join("merchant-tea-lagging");
    without(&tea, &copy, |e| {
        matches!(e.kind.kind, Kind::VendorScripWithdrawn { .. })
    });
    let (events, _) = replay(&tea.join(merchant::config::LOG_FILE));
    let tx = events
        .iter()
        .find(|e| matches!(e.kind.kind, Kind::VendorScripWithdrawn { .. }))
        .unwrap()
        .tx;
    let given = vec![copy, data.join("merchant-books")];
    // The demo's clock runs on for more than an hour after the withdrawal: judged with a
    // day's patience it is in flight (with the default hour it is stuck, tested above).
    let patient = ops::reconcile::Options {
        max_age_secs: 24 * 3600,
    };
    let report =
        ops::reconcile::reconcile_with(&data.join("broker"), &given, &wallets(&data), patient)
            .unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    assert_eq!(report.in_flight.len(), 1, "{:?}", report.in_flight);
    assert_eq!(report.in_flight[0].tx, tx);
    assert_eq!(report.in_flight[0].amount, -1_100);
    assert_eq!(
        (
            report.merchants[0].memo,
            report.merchants[0].live,
            report.merchants[0].in_flight
        ),
        (0, 1_100, -1_100)
    );
}
