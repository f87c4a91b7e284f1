//! `peerscrip-ops reconcile` on the logs of a real run (the demo's: everything agrees) and
//! on copies of a merchant's log with one forged transaction appended through the log API
//! a purchase the merchant logged and the broker did not, and VendorScrip issued
//! without the broker's authorization. Each is named by its tx and check, with the float
//! of that merchant; the exit code is 3.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use redb::ReadableTable as _;

use merchant::core::events::Kind;
use merchant::core::state::State;
use merchant::node::NODE_KIND;
use merchant::store::Mirror;
use ops::reconcile::{Check, Mismatch, reconcile};
use shared::events::{Event, EventLog, LogIdentity, NewEvent};
use shared::node::Recorded;
use shared::wire::bodies::{OrderId, OrderInfo, Receipt};
use shared::{Amount, CustId, ScripBody, ScripId, Suite, TxId, Uid};

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
        time,
        tx,
        Recorded {
            kind,
            sent: Vec::new(),
        },
    )
}

/// The book shop's live VendorScrip after the demo (bob's change from his purchase), and
/// a second after the last event of all the demo's logs: a forged event then is recent, not
/// stuck.
fn books_scrip(data: &Path) -> (ScripBody, Uid, u64) {
    let (_, state) = replay(&data.join("merchant-books").join(merchant::config::LOG_FILE));
    let (_, row) = state.tables.live.iter().next().unwrap();
    let end = reconcile(&data.join("broker"), &merchants(data), &wallets(data))
        .unwrap()
        .as_of;
    (row.body, row.owner, end + 1000)
}

fn checks(mismatches: &[Mismatch]) -> Vec<(Option<TxId>, Check, Uid)> {
    mismatches
        .iter()
        .map(|m| (m.tx, m.check, m.party))
        .collect()
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

    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .arg("reconcile")
        .arg(data.join("broker"))
        .args(merchants(&data))
        .arg("--wallet")
        .arg(data.join("customer-alice"))
        .arg("--wallet")
        .arg(data.join("customer-bob"))
        .arg("--json")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["matched"], 6);
    assert_eq!(json["mismatches"].as_array().unwrap().len(), 0);
}

/// A purchase the merchant logged (and says the broker acknowledged) that the broker never
/// recorded: named with its tx, the book shop's float is off by its price, and bob's
/// wallet does not show it.
#[test]
fn a_purchase_the_broker_did_not_record_is_named() {
    let (dir, data) = demo();
    let (v1, bob, time) = books_scrip(&data);
    let paid = Amount::from_minor(100);
    let change = ScripBody {
        value: v1.value.checked_sub(paid).unwrap(),
        scrip_id: ScripId::random(),
        cust_id: CustId::random(),
        ..v1
    };
    let order_id = OrderId::random();
    let tx = TxId::random();
    let forged = dir.path().join("merchant-books-forged");
    forge(
        &data.join("merchant-books"),
        &forged,
        vec![
            recorded(
                time,
                tx,
                Kind::PurchaseMade {
                    customer: bob,
                    spent: v1,
                    change: Some(change),
                    order: OrderInfo {
                        item_id: "map".into(),
                        name: "City map".into(),
                        unit_price: paid,
                        quantity: 1,
                        order_id,
                    },
                    receipt: Receipt {
                        order_id,
                        paid,
                        issued_at: time / 1000,
                    },
                },
            ),
            recorded(time, tx, Kind::PurchaseReported),
        ],
    );
    let given = vec![data.join("merchant-tea"), forged.clone()];
    let report = reconcile(&data.join("broker"), &given, &wallets(&data)).unwrap();
    let books = report.merchants[1].uid;
    assert_eq!(
        checks(&report.mismatches),
        vec![
            (Some(tx), Check::PurchaseNotRecorded, books),
            (None, Check::FloatVendor, books),
            (Some(tx), Check::MissingFromWallet, bob),
        ]
    );
    assert_eq!(report.mismatches[0].found, "none in the broker's log");
    assert_eq!(
        report.mismatches[0].expected,
        format!("the broker's event for the merchant's 1.00 for {bob}")
    );
    assert_eq!(report.mismatches[1].found, "the broker's memo 6.80");
    assert_eq!(
        report.mismatches[1].expected,
        format!("float:vendor:{books} = 5.80 (live VendorScrip 5.80 + in flight 0.00)")
    );
    assert_eq!(
        report.mismatches[2].expected,
        format!("purchase of 1.00 made at {books}, change 5.80")
    );
    assert!(report.in_flight.is_empty());

    // The command: exit 3, each mismatch on its own line.
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .arg("reconcile")
        .arg(data.join("broker"))
        .args(&given)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
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
    let (dir, data) = demo();
    let (v1, bob, time) = books_scrip(&data);
    let order_id = OrderId::random();
    let tx = TxId::random();
    let forged = dir.path().join("merchant-books-unreported");
    forge(
        &data.join("merchant-books"),
        &forged,
        vec![recorded(
            time,
            tx,
            Kind::PurchaseMade {
                customer: bob,
                spent: v1,
                change: None,
                order: OrderInfo {
                    item_id: "map".into(),
                    name: "City map".into(),
                    unit_price: v1.value,
                    quantity: 1,
                    order_id,
                },
                receipt: Receipt {
                    order_id,
                    paid: v1.value,
                    issued_at: time / 1000,
                },
            },
        )],
    );
    let given = vec![data.join("merchant-tea"), forged];
    let report = reconcile(&data.join("broker"), &given, &[]).unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    assert_eq!(report.in_flight.len(), 1);
    assert_eq!(report.in_flight[0].tx, tx);
    assert_eq!(report.in_flight[0].amount, 680);
    assert_eq!(report.merchants[1].live, 0);
    assert_eq!(report.merchants[1].memo, 680);
}

/// A VendorScrip the merchant lapsed (section 4, docs/adr/0011) whose notice the broker has
/// not recorded yet: in flight under the lapse's tx (the scrip id), not a mismatch; the
/// broker's memo still counts the value the merchant's live table no longer holds.
#[test]
fn a_lapse_the_broker_has_not_recorded_is_in_flight() {
    let (dir, data) = demo();
    let (v1, bob, time) = books_scrip(&data);
    let tx = TxId(v1.scrip_id.0);
    let forged = dir.path().join("merchant-books-lapsed");
    forge(
        &data.join("merchant-books"),
        &forged,
        vec![recorded(
            time,
            tx,
            Kind::ScripLapsed {
                owner: bob,
                scrip: v1,
                digest: vec![0; 32],
            },
        )],
    );
    let given = vec![data.join("merchant-tea"), forged];
    let report = reconcile(&data.join("broker"), &given, &[]).unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    assert_eq!(report.in_flight.len(), 1, "{:?}", report.in_flight);
    assert_eq!(report.in_flight[0].tx, tx);
    assert_eq!(report.in_flight[0].amount, 680);
    assert!(report.in_flight[0].what.contains("lapsed at the merchant"));
    assert_eq!(report.merchants[1].live, 0);
    assert_eq!(report.merchants[1].memo, 680);
}

/// The same lapse two hours later by the logs' own clock (the merchant's log goes on with
/// an event of another tx) and still unrecorded by the broker: stuck, named with its tx and
/// amount, exit 3; the float itself still balances. With a longer `--max-age-secs` it is
/// in flight again.
#[test]
fn a_lapse_unrecorded_for_longer_than_the_max_age_is_stuck() {
    let (dir, data) = demo();
    let (v1, bob, time) = books_scrip(&data);
    let tx = TxId(v1.scrip_id.0);
    let two_hours = 2 * 3600 * 1000;
    let forged = dir.path().join("merchant-books-stuck");
    forge(
        &data.join("merchant-books"),
        &forged,
        vec![
            recorded(
                time,
                tx,
                Kind::ScripLapsed {
                    owner: bob,
                    scrip: v1,
                    digest: vec![0; 32],
                },
            ),
            recorded(time + two_hours, TxId::random(), Kind::PurchaseReported),
        ],
    );
    let given = vec![data.join("merchant-tea"), forged.clone()];
    let report = reconcile(&data.join("broker"), &given, &[]).unwrap();
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
    assert_eq!(report.as_of, time + two_hours);
    assert_eq!(report.merchants[1].memo, 680, "the float still balances");
    assert_eq!(report.merchants[1].in_flight, 680);

    let longer = ops::reconcile::Options {
        max_age_secs: 3 * 3600,
    };
    let report = ops::reconcile::reconcile_with(&data.join("broker"), &given, &[], longer).unwrap();
    assert!(report.ok(), "{:?}", report.mismatches);
    assert_eq!(report.in_flight.len(), 1);

    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .arg("reconcile")
        .arg(data.join("broker"))
        .arg(data.join("merchant-tea"))
        .arg(&forged)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], false);
    assert_eq!(json["mismatches"][0]["check"], "stuck");
    assert_eq!(json["mismatches"][0]["tx"], tx.to_string());
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .arg("reconcile")
        .arg(data.join("broker"))
        .arg(data.join("merchant-tea"))
        .arg(&forged)
        .args(["--max-age-secs", "10800"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
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
    let suite = Suite::Modern;
    let mut node = broker::node::BrokerNode::open(
        &log,
        shared::fixtures::keypair(suite, 1).clone(),
        shared::fixtures::root_key(1),
        broker::core::Config::new(suite),
    )
    .unwrap();
    let live: Vec<_> = node
        .state()
        .live
        .iter()
        .map(|(id, record)| (*id, record.body.value))
        .collect();
    assert!(!live.is_empty(), "the demo leaves BrokerScrip held");
    let far = 4_000_000_000;
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
    let mut node = broker::node::BrokerNode::open(
        &log,
        shared::fixtures::keypair(suite, 1).clone(),
        shared::fixtures::root_key(1),
        broker::core::Config::new(suite),
    )
    .unwrap();
    let (pan, _) = node.state().pans.iter().next().unwrap();
    let pan = pan.clone();
    node.deposit(&pan, Amount::from_minor(1), far + 7200)
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
    let (dir, data) = demo();
    let (v1, bob, time) = books_scrip(&data);
    let tx = TxId::random();
    let minted = ScripBody {
        value: Amount::from_minor(5_000),
        scrip_id: ScripId::random(),
        cust_id: CustId::random(),
        ..v1
    };
    let forged = dir.path().join("merchant-books-minted");
    forge(
        &data.join("merchant-books"),
        &forged,
        vec![recorded(
            time,
            tx,
            Kind::VendorScripIssued {
                scrip: minted,
                owner: bob,
            },
        )],
    );
    let given = vec![data.join("merchant-tea"), forged];
    let report = reconcile(&data.join("broker"), &given, &wallets(&data)).unwrap();
    let books = report.merchants[1].uid;
    assert_eq!(
        checks(&report.mismatches),
        vec![
            (Some(tx), Check::VendorScripUnauthorized, books),
            (None, Check::FloatVendor, books),
            (Some(tx), Check::MissingFromWallet, bob),
        ]
    );
    assert_eq!(
        report.mismatches[0].expected,
        format!("the broker's event for the merchant's 50.00 for {bob}")
    );
    assert_eq!(report.mismatches[0].found, "none in the broker's log");
    assert_eq!(
        report.mismatches[1].expected,
        format!("float:vendor:{books} = 56.80 (live VendorScrip 56.80 + in flight 0.00)")
    );
    assert_eq!(
        report.mismatches[2].expected,
        format!("VendorScrip 50.00 issued by {books}")
    );

    // The command's JSON lists the same, exit 3.
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .arg("reconcile")
        .arg(data.join("broker"))
        .args(&given)
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
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
    assert_eq!(json["merchants"][1]["live"], "56.80");
    assert_eq!(json["merchants"][1]["memo"], "6.80");
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
    let log = EventLog::open(
        to.join(merchant::config::LOG_FILE),
        LogIdentity::new(Suite::Modern, NODE_KIND),
    )
    .unwrap();
    let mirror = Mirror::new(State::new());
    for e in events.into_iter().filter(|e| !dropped(e)) {
        let new = NewEvent {
            time: e.time,
            tx: e.tx,
            postings: e.postings,
            memos: e.memos,
            evidence: e.evidence,
            kind: e.kind,
        };
        log.append(vec![new], &mirror).unwrap();
    }
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
    assert_eq!(
        checks(&report.mismatches),
        vec![
            (Some(tx), Check::PurchaseNotMade, m),
            (None, Check::FloatVendor, m),
            (Some(tx), Check::WalletHistory, bob),
        ]
    );
    assert_eq!(
        report.mismatches[0].expected,
        format!("the merchant's event for the broker's 3.20 for {bob}")
    );
    assert_eq!(report.mismatches[0].found, "none in the merchant's log");
    assert_eq!(
        report.mismatches[1].expected,
        format!("float:vendor:{m} = 10.00 (live VendorScrip 10.00 + in flight 0.00)")
    );
    assert_eq!(
        report.mismatches[2].expected,
        format!("purchase of 3.20 made at {m}, change 6.80")
    );
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
    std::fs::copy(data.join("broker").join("broker.redb"), &copy).unwrap();
    {
        let db = redb::Database::open(&copy).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let events: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
            let mut table = txn.open_table(events).unwrap();
            let mut bytes = table.get(5).unwrap().unwrap().value().to_vec();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            table.insert(5, bytes.as_slice()).unwrap();
        }
        txn.commit().unwrap();
    }
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
