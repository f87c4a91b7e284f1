//! `peerscrip-ops audit` on a real broker log (the demo's), and on copies tampered in each
//! way an auditor must catch: an altered event (chain), a forged signature in a
//! re-chained log (evidence), a changed amount in a re-chained log (ledger), a deleted event
//! in a re-chained log (ledger), and a changed projection row (replay); a three-party
//! transaction moved out of order (transition); and each named invariant of sections 4–7
//! (scrip-issued-once, spent-once, live-spend, change, deadline, stored-reply). Each is
//! named by its event and check; the exit code is 3.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::Command;

use broker::core::{Kind, State};
use broker::node::NODE_KIND;
use broker::store::LiveProjection;
use ops::audit::{Check, audit};
use shared::Suite;
use shared::events::Event;
use shared::node::Recorded;

mod common;

use common::{NoTables, flip_event_byte, flip_row_byte};

/// A broker log written by the demo (modern suite), in a temp dir.
fn demo_log() -> (tempfile::TempDir, PathBuf) {
    let (dir, data) = common::demo_run();
    (dir, data.join("broker").join("broker.redb"))
}

fn events(path: &Path) -> Vec<Event<Recorded<Kind>>> {
    common::events(path)
}

/// A new log at `to` holding `events` (as changed by the caller), appended through the log
/// API: a valid chain and tables that match, so only the content checks can object.
fn rechain(events: Vec<Event<Recorded<Kind>>>, to: &Path) {
    let mut state = State::new(Suite::Modern);
    common::rechain(events, to, NODE_KIND, &LiveProjection::new(&mut state));
}

/// As [`rechain`], with no tables written (the broker's own fold would refuse the events).
fn rechain_without_tables(events: Vec<Event<Recorded<Kind>>>, to: &Path) {
    common::rechain(events, to, NODE_KIND, &NoTables);
}

fn finding(path: &Path) -> ops::audit::Finding {
    let report = audit(path, None).unwrap();
    report.finding.expect("the audit must fail")
}

#[test]
fn the_demo_log_passes_and_each_tampering_is_named() {
    let (dir, original) = demo_log();
    let report = audit(&original, None).unwrap();
    assert!(report.ok(), "{:?}", report.finding);
    assert!(report.events > 20);
    assert_eq!(report.by_kind["PeerRegistered"], 4);
    assert!(report.signatures >= report.events - report.by_kind["AccountOpened"]);
    assert_eq!(report.balances.values().sum::<i128>(), 0);
    let all = events(&original);

    // An altered event: the chain names it.
    let altered = dir.path().join("altered.redb");
    flip_event_byte(&original, &altered, 7);
    let f = finding(&altered);
    assert_eq!((f.seq, f.check), (7, Check::Chain));

    // A forged signature in a log re-chained around it: the evidence check names it.
    let (index, _) = all
        .iter()
        .enumerate()
        .find(|(_, e)| matches!(e.kind.kind, Kind::BrokerScripIssued { .. }))
        .unwrap();
    let mut forged = all.clone();
    forged[index].evidence[0].sig[0] ^= 1;
    let path = dir.path().join("forged.redb");
    rechain(forged, &path);
    let f = finding(&path);
    assert_eq!((f.seq, f.check), (all[index].seq, Check::Evidence));
    assert_eq!(f.kind.as_deref(), Some("BrokerScripIssued"));
    assert_eq!(f.tx, Some(all[index].tx));

    // A deposit removed from a re-chained log: an account goes below zero later, or the
    // ledger no longer adds up; the ledger check names the first event where it shows.
    let (deposit, _) = all
        .iter()
        .enumerate()
        .find(|(_, e)| matches!(e.kind.kind, Kind::Deposited { .. }))
        .unwrap();
    let mut deleted = all.clone();
    deleted.remove(deposit);
    let path = dir.path().join("deleted.redb");
    rechain_without_tables(deleted, &path);
    let f = finding(&path);
    assert_eq!(f.check, Check::Ledger, "{f}");

    // A projection row changed in place: the replay check names the table.
    let row = dir.path().join("row.redb");
    flip_row_byte(&original, &row, "broker_accounts");
    let f = finding(&row);
    assert_eq!(f.check, Check::Replay, "{f}");
    assert!(f.expected.starts_with("table broker_accounts"), "{f}");
}

/// The binary: exit 0 and `ok` for the real log, exit 3 naming the event for a tampered one.
#[test]
fn the_command_exits_3_naming_the_event() {
    let (dir, original) = demo_log();
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(["audit", "--json"])
        .arg(original.parent().unwrap())
        .output()
        .unwrap();
    assert!(out.status.success());
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);

    let mut all = events(&original);
    all[2].evidence.clear();
    all[2].evidence.push(shared::events::Evidence {
        header: vec![0; 36],
        body: vec![],
        sig: vec![],
        signer: shared::Uid([9; 16]),
    });
    let path = dir.path().join("unknown-signer.redb");
    rechain(all, &path);
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .arg("audit")
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("FAILED: event 3"), "{text}");
    assert!(text.contains("evidence check failed"), "{text}");
}

/// The named invariants of sections 4–7 on the broker's log: each tampering is named by
/// its exact event and invariant.
#[test]
fn each_named_invariant_is_named_in_a_broker_log() {
    let (dir, original) = demo_log();
    let all = events(&original);
    let index = |f: &dyn Fn(&Kind) -> bool| all.iter().position(|e| f(&e.kind.kind)).unwrap();
    let named = |name: &str, changed: Vec<Event<Recorded<Kind>>>, seq: u64, check: Check| {
        let path = dir.path().join(format!("{name}.redb"));
        rechain_without_tables(changed, &path);
        let f = finding(&path);
        assert_eq!((f.seq, f.check), (seq, check), "{name}: {f}");
        f
    };
    let withdrawn = index(&|k| matches!(k, Kind::BrokerScripWithdrawn { .. }));
    let authorized = index(&|k| {
        matches!(
            k,
            Kind::ExchangeAuthorized {
                change: Some(_),
                ..
            }
        )
    });
    let opened = index(&|k| matches!(k, Kind::ExchangeOpened { .. }));

    // The change of an exchange issued under the id of the scrip it is change of.
    let mut reissued = all.clone();
    if let Kind::ExchangeAuthorized { spent, change, .. } = &mut reissued[authorized].kind.kind {
        change.as_mut().unwrap().scrip_id = *spent;
    }
    named(
        "reissued",
        reissued,
        all[authorized].seq,
        Check::ScripIssuedOnce,
    );

    // A withdrawal recorded twice: its scrip spent a second time.
    let mut twice = all.clone();
    twice.insert(withdrawn + 1, all[withdrawn].clone());
    named("twice", twice, all[withdrawn].seq + 1, Check::SpentOnce);

    // A withdrawal by someone other than the scrip's owner.
    let mut owner = all.clone();
    if let Kind::BrokerScripWithdrawn { customer, .. } = &mut owner[withdrawn].kind.kind {
        *customer = shared::Uid([7; 16]);
    }
    named("owner", owner, all[withdrawn].seq, Check::LiveSpend);

    // A withdrawal crediting more than the scrip's value.
    let mut value = all.clone();
    if let Kind::BrokerScripWithdrawn { value, .. } = &mut value[withdrawn].kind.kind {
        *value = value.checked_add(shared::Amount::from_minor(1)).unwrap();
    }
    named("value", value, all[withdrawn].seq, Check::Change);

    // An exchange opened and never decided, in a log that ends past its deadline.
    let mut open = all[..=opened].to_vec();
    let Kind::ExchangeOpened { deadline, .. } = &all[opened].kind.kind else {
        panic!("not the exchange's opening");
    };
    let deadline = shared::UnixSecs::new(*deadline);
    open[opened].time = deadline.saturating_add_secs(1).to_millis();
    let f = named("open", open, all[opened].seq, Check::Deadline);
    // Its times as UTC dates, how late as the relative form.
    assert!(
        f.expected
            .ends_with(&format!("open within its deadline {}", deadline.utc())),
        "{f}"
    );
    assert!(
        f.found.ends_with(&format!(
            "{} (the deadline expired 1s ago)",
            deadline.saturating_add_secs(1).utc()
        )),
        "{f}"
    );

    // An exchange authorized twice: the second decision cannot follow the first (the
    // broker's own transition function, 6.2 step 4), named before its spend is.
    let mut decided_twice = all.clone();
    decided_twice.insert(authorized + 1, all[authorized].clone());
    named(
        "decided-twice",
        decided_twice,
        all[authorized].seq + 1,
        Check::Transition,
    );

    // An exchange authorized that was never opened (its notice removed): the authorization,
    // one seq earlier now, moves nothing.
    let mut unopened = all.clone();
    unopened.remove(opened);
    named(
        "unopened",
        unopened,
        all[authorized].seq - 1,
        Check::Transition,
    );

    // A BrokerScrip that expired while its escrow held it is still settled by that escrow's
    // decision (section 4: only the decision ends the hold): no finding.
    let settled = index(&|k| matches!(k, Kind::VendorTopUpSettled { .. }));
    let Kind::VendorTopUpSettled { spent, .. } = &all[settled].kind.kind else {
        unreachable!()
    };
    let expires = all
        .iter()
        .find_map(|e| match &e.kind.kind {
            Kind::BrokerScripIssued { scrip, .. }
            | Kind::BrokerScripToppedUp { issued: scrip, .. }
                if scrip.scrip_id == *spent =>
            {
                Some(scrip.expires)
            }
            Kind::ExchangeAuthorized {
                change: Some(scrip),
                ..
            } if scrip.scrip_id == *spent => Some(scrip.expires),
            _ => None,
        })
        .unwrap();
    let mut late = all.clone();
    late[settled].time = shared::UnixSecs::new(expires + 1).to_millis();
    let path = dir.path().join("settled-late.redb");
    rechain(late, &path);
    let report = audit(&path, None).unwrap();
    assert!(report.ok(), "{:?}", report.finding);

    // The stored reply to the notice filed under a request it does not answer.
    let relabelled = common::refiled(&all, opened, |key| {
        key.label = shared::wire::Label::RenewRequest;
    });
    named(
        "relabelled",
        relabelled,
        all[opened].seq,
        Check::StoredReply,
    );
}

/// A log file damaged outside redb (16 bytes inverted at offset 8192, inside a page of the
/// demo broker's committed data) is refused when it is opened: exit 1 and the storage error
/// naming the corruption, never a panic (protocol.md section 10, "Files").
#[test]
fn a_damaged_file_is_refused_with_an_error_not_a_panic() {
    let (_dir, path) = demo_log();
    let mut bytes = std::fs::read(&path).unwrap();
    for b in &mut bytes[8192..8208] {
        *b = !*b;
    }
    std::fs::write(&path, &bytes).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .arg("audit")
        .arg(&path)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("DB corrupted"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(
        stderr.matches("DB corrupted").count(),
        1,
        "said once: {stderr}"
    );
}
