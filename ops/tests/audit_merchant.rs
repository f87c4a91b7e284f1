//! `peerscrip-ops audit` on a real merchant log (the demo's tea shop: an exchange, a
//! purchase with change, a top-up, a withdrawal), and on copies tampered in each way an
//! auditor must catch: an altered event (chain), a forged signature (evidence), a posting in a merchant's event (postings), a changed owner or scrip
//! id, a deleted event, a swapped pair, a late spend (live-spend), a changed amount
//! (change), a reissued id (scrip-issued-once), a purchase recorded twice (spent-once), a
//! misfiled stored reply (stored-reply), an escrow left open past its deadline (deadline),
//! an exchange issued twice and a top-up settled with no escrow (transition), and a changed
//! projection row (replay). Each is named by its exact event and check. A key the audit
//! was not given (a merchant's log brings none) is no finding: the audit stops naming it.
#![allow(clippy::unwrap_used)]

mod common;

use common::{
    NoTables, demo_run, events, finding, flip_event_byte, flip_row_byte, pinned_keys, rechain,
    rewrite_event,
};
use merchant::core::events::Kind;
use merchant::core::state::State;
use merchant::node::NODE_KIND;
use merchant::store::Mirror;
use ops::audit::{AuditError, Check, audit};
use shared::events::{Account, Posting};
use shared::node::Recorded;
use shared::{Amount, ScripId, Uid};

type MerchantEvent = shared::events::Event<Recorded<Kind>>;

/// The seq of the first event of `name`.
fn seq_of(all: &[MerchantEvent], name: &str) -> u64 {
    all.iter().find(|e| e.kind.kind.name() == name).unwrap().seq
}

#[test]
fn the_demo_merchant_log_passes_and_each_tampering_is_named() {
    let (dir, run) = demo_run();
    let keys = pinned_keys(dir.path(), &run);
    let original = run.join("merchant-tea").join("merchant.redb");

    let report = audit(&run.join("merchant-tea"), Some(&keys)).unwrap();
    assert!(report.ok(), "{:?}", report.finding);
    assert_eq!(report.node, NODE_KIND);
    assert_eq!(report.events, 8);
    for kind in [
        "ExchangeRequested",
        "VendorScripIssued",
        "PurchaseMade",
        "VendorEscrowOpened",
        "VendorScripToppedUp",
        "VendorScripWithdrawn",
    ] {
        assert!(report.by_kind.contains_key(kind), "{kind}: {report:?}");
    }
    assert_eq!(report.signatures, 8);
    let b = &report.balances;
    assert_eq!(
        b["books:issued"],
        b["live"] + b["books:paid"] + b["books:withdrawn"]
    );
    assert!(b["books:paid"] > 0 && b["books:withdrawn"] > 0, "{b:?}");

    let all: Vec<MerchantEvent> = events(&original);
    let issued = seq_of(&all, "VendorScripIssued");
    let purchase = seq_of(&all, "PurchaseMade");
    let at = |seq: u64| usize::try_from(seq - 1).unwrap();

    // Without the customers' and the broker's keys nothing a merchant kept can be checked:
    // no finding, but the key the first evidence needs, named, with how to give it.
    let Err(AuditError::MissingKey { seq, kind, uid, .. }) = audit(&original, None) else {
        panic!("a missing key is not a finding");
    };
    assert_eq!(seq, 1);
    assert!(kind.starts_with("customer (signer of its "), "{kind}");
    assert!(
        std::fs::read_dir(&keys)
            .unwrap()
            .any(|e| e.unwrap().file_name().to_string_lossy() == format!("{uid}.pub.pem")),
        "{uid} is one of the pinned keys"
    );

    // An altered event: the chain names it.
    let path = dir.path().join("altered.redb");
    flip_event_byte(&original, &path, purchase);
    let f = finding(&path, &keys);
    assert_eq!((f.seq, f.check), (purchase, Check::Chain), "{f}");

    // Its prev hash or its seq changed in place: the chain names it.
    let path = dir.path().join("prev-hash.redb");
    rewrite_event::<Recorded<Kind>>(&original, &path, purchase, |e| e.prev_hash[0] ^= 1);
    let f = finding(&path, &keys);
    assert_eq!((f.seq, f.check), (purchase, Check::Chain), "{f}");
    let path = dir.path().join("seq.redb");
    rewrite_event::<Recorded<Kind>>(&original, &path, purchase, |e| e.seq += 1);
    let f = finding(&path, &keys);
    assert_eq!((f.seq, f.check), (purchase, Check::Chain), "{f}");

    // A forged signature in a log re-chained around it, tables and all: evidence.
    let mut forged = all.clone();
    forged[at(purchase)].evidence[0].sig[0] ^= 1;
    let path = dir.path().join("forged.redb");
    rechain(forged, &path, NODE_KIND, &Mirror::new(State::new()));
    let f = finding(&path, &keys);
    assert_eq!((f.seq, f.check), (purchase, Check::Evidence), "{f}");
    assert_eq!(f.kind.as_deref(), Some("PurchaseMade"));
    assert_eq!(f.tx, Some(all[at(purchase)].tx));

    // A merchant keeps no accounts: a posting in its event is named.
    let mut posted = all.clone();
    posted[at(purchase)].postings = vec![
        Posting::increase(Account::External, Amount::from_minor(5)),
        Posting::decrease(Account::External, Amount::from_minor(5)),
    ];
    let path = dir.path().join("posted.redb");
    rechain(posted, &path, NODE_KIND, &NoTables);
    let f = finding(&path, &keys);
    assert_eq!((f.seq, f.check), (purchase, Check::Postings), "{f}");

    // Each content change below is named by the check it breaks, at the event where it
    // shows.
    let named = |name: &str, changed: Vec<MerchantEvent>, seq: u64, check: Check| {
        let path = dir.path().join(format!("{name}.redb"));
        rechain(changed, &path, NODE_KIND, &NoTables);
        let f = finding(&path, &keys);
        assert_eq!((f.seq, f.check), (seq, check), "{name}: {f}");
    };

    // A changed amount: the purchase pays more than V0 − V1.
    let mut paid = all.clone();
    if let Kind::PurchaseMade { receipt, .. } = &mut paid[at(purchase)].kind.kind {
        receipt.paid = receipt.paid.checked_add(Amount::from_minor(1)).unwrap();
    }
    named("paid", paid, purchase, Check::Change);

    // A changed owner: the purchase spends a scrip of someone else.
    let mut owner = all.clone();
    if let Kind::PurchaseMade { customer, .. } = &mut owner[at(purchase)].kind.kind {
        *customer = Uid([7; 16]);
    }
    named("owner", owner, purchase, Check::LiveSpend);

    // A changed scrip id at issue: the purchase spends an id that was never issued.
    let mut id = all.clone();
    if let Kind::VendorScripIssued { scrip, .. } = &mut id[at(issued)].kind.kind {
        scrip.scrip_id = ScripId([7; 16]);
    }
    named("scrip-id", id, purchase, Check::LiveSpend);

    // A deleted issue: the purchase (now one seq earlier) spends what was never issued.
    let mut deleted = all.clone();
    deleted.remove(at(issued));
    named("deleted", deleted, purchase - 1, Check::LiveSpend);

    // A swapped pair: the purchase comes before the issue of what it spends.
    let mut swapped = all.clone();
    swapped.swap(at(issued), at(purchase));
    named("swapped", swapped, issued, Check::LiveSpend);

    // The change issued under the id of the scrip it is change of: issued twice.
    let mut reissued = all.clone();
    if let Kind::PurchaseMade { spent, change, .. } = &mut reissued[at(purchase)].kind.kind {
        change.as_mut().unwrap().scrip_id = spent.scrip_id;
    }
    named("reissued", reissued, purchase, Check::ScripIssuedOnce);

    // The purchase recorded twice: its scrip is spent a second time.
    let mut twice = all.clone();
    twice.insert(at(purchase) + 1, all[at(purchase)].clone());
    named("twice", twice, purchase + 1, Check::SpentOnce);

    // The purchase made after its scrip expired.
    let mut late = all.clone();
    if let Kind::PurchaseMade { spent, .. } = &all[at(purchase)].kind.kind {
        late[at(purchase)].time = shared::UnixSecs::new(spent.expires + 1).to_millis();
    }
    named("late", late, purchase, Check::LiveSpend);

    // A lapse (section 4, docs/adr/0011) of the purchase's change, in the log as it was
    // right after the purchase (the change live): before its expiry it is named; after
    // it, a second lapse of the same scrip is a second spend.
    let (owner, change) = match &all[at(purchase)].kind.kind {
        Kind::PurchaseMade {
            customer, change, ..
        } => (*customer, change.unwrap()),
        _ => unreachable!("the purchase"),
    };
    let upto: Vec<MerchantEvent> = all[..=at(purchase)].to_vec();
    let lapse = |time_secs: u64| {
        let mut e = all[at(purchase)].clone();
        e.tx = shared::TxId(change.scrip_id.0);
        e.time = shared::UnixSecs::new(time_secs).to_millis();
        e.evidence = Vec::new();
        e.kind = Recorded {
            kind: Kind::ScripLapsed {
                owner,
                scrip: change,
                digest: vec![0; 32],
            },
            sent: Vec::new(),
        };
        e
    };
    let mut early = upto.clone();
    early.push(lapse(change.expires));
    named("lapse-early", early, purchase + 1, Check::LiveSpend);
    let mut twice_lapsed = upto;
    twice_lapsed.push(lapse(change.expires + 1));
    twice_lapsed.push(lapse(change.expires + 2));
    named("lapse-twice", twice_lapsed, purchase + 2, Check::SpentOnce);

    // The stored reply to the purchase filed under another tx.
    let misfiled = common::refiled(&all, at(purchase), |key| key.tx = shared::TxId([7; 16]));
    named("misfiled", misfiled, purchase, Check::StoredReply);

    // The stored reply to the purchase filed under a request it does not answer.
    let relabelled = common::refiled(&all, at(purchase), |key| {
        key.label = shared::wire::Label::RenewRequest;
    });
    named("relabelled", relabelled, purchase, Check::StoredReply);

    // An escrow (6.5) that nothing closed, in a log whose last event is past its deadline.
    let escrow = seq_of(&all, "VendorEscrowOpened");
    let mut open: Vec<MerchantEvent> = all[..at(escrow) + 1].to_vec();
    if let Kind::VendorEscrowOpened { until, .. } = &all[at(escrow)].kind.kind {
        open.push(all[at(escrow) - 1].clone());
        open.last_mut().unwrap().time = shared::UnixSecs::new(until + 1).to_millis();
        // A repeat of the report acknowledgement (nothing to fold) to end the log later.
        open.last_mut().unwrap().kind = Recorded {
            kind: Kind::PurchaseReported,
            sent: Vec::new(),
        };
        open.last_mut().unwrap().evidence.clear();
    }
    named("open", open, escrow, Check::Deadline);

    // The VendorScrip of the exchange issued a second time: the exchange was decided (the
    // merchant's own transition function, 6.2 step 7).
    let mut issued_twice = all.clone();
    issued_twice.insert(at(issued) + 1, all[at(issued)].clone());
    named("issued-twice", issued_twice, issued + 1, Check::Transition);

    // A top-up settled whose escrow was never opened (its `VendorEscrowOpened` removed).
    let topped = seq_of(&all, "VendorScripToppedUp");
    let mut unheld = all.clone();
    unheld.remove(at(escrow));
    named("unheld", unheld, topped - 1, Check::Transition);

    // A projection row changed in place: the replay check names the table.
    let path = dir.path().join("row.redb");
    flip_row_byte(&original, &path, "merchant_books");
    let f = finding(&path, &keys);
    assert_eq!(f.check, Check::Replay, "{f}");
    assert_eq!(f.seq, report_events(&original, &keys));
    assert!(f.expected.starts_with("table merchant_books"), "{f}");
}

/// The number of events the audit of `path` read.
fn report_events(path: &std::path::Path, keys: &std::path::Path) -> u64 {
    audit(path, Some(keys)).unwrap().events
}

/// The binary on a merchant's data directory: exit 0 with `--keys`, or with the broker's
/// key and `--broker-log` for the customers' keys; exit 1 for a `--broker-log` that is not
/// a broker's; exit 3 naming the first event without keys.
#[test]
fn the_command_audits_a_merchant_directory() {
    let (dir, run) = demo_run();
    let keys = pinned_keys(dir.path(), &run);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(["audit", "--json", "--keys"])
        .arg(&keys)
        .arg(run.join("merchant-books"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stdout)
    );
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["ok"], true);
    assert_eq!(json["node"], "merchant");

    // The broker's key pinned, the customers' taken from the broker's log.
    let broker_key = common::broker_key_only(dir.path(), &run);
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(["audit", "--keys"])
        .arg(&broker_key)
        .arg("--broker-log")
        .arg(run.join("broker"))
        .arg(run.join("merchant-tea"))
        .output()
        .unwrap();
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(out.status.success(), "{text}");
    assert!(text.contains("OK: chain"), "{text}");

    // A log that is not the broker's is refused as a source of keys, and nothing is judged.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(["audit", "--keys"])
        .arg(&broker_key)
        .arg("--broker-log")
        .arg(run.join("merchant-books"))
        .arg(run.join("merchant-tea"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(out.stdout.is_empty());
    let error = String::from_utf8(out.stderr).unwrap();
    assert!(
        error.contains("a merchant log of the modern suite, not the broker's log"),
        "{error}"
    );

    // Without the customers' keys the audit names the first one it needs, by kind and
    // UID, and the file it looked for; exit 2 (the audit's configuration), no finding.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(["audit", "--keys"])
        .arg(&broker_key)
        .arg(run.join("merchant-books"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());
    let error = String::from_utf8(out.stderr).unwrap();
    assert!(
        error.contains("merchant-books/merchant.redb needs the public key of the customer"),
        "{error}"
    );
    assert!(error.contains("(event 1)"), "{error}");
    assert!(error.contains("merchant-books/peers/"), "{error}");
    assert!(!error.contains("evidence check failed"), "{error}");

    // Without the broker's: named as the broker's, in the `--json` error document.
    let customers = dir.path().join("customers-only");
    std::fs::create_dir_all(&customers).unwrap();
    let broker_pem = std::fs::read(broker_key.join("broker.pub.pem")).unwrap();
    for entry in std::fs::read_dir(&keys).unwrap() {
        let path = entry.unwrap().path();
        if std::fs::read(&path).unwrap() != broker_pem {
            std::fs::copy(&path, customers.join(path.file_name().unwrap())).unwrap();
        }
    }
    let broker_uid = shared::PublicKey::from_pem(
        shared::Suite::Modern,
        std::str::from_utf8(&broker_pem).unwrap(),
    )
    .unwrap()
    .uid();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(["audit", "--keys"])
        .arg(&customers)
        .arg(run.join("merchant-books"))
        .arg("--json")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"], "usage");
    assert_eq!(doc["exit_code"], 2);
    let message = doc["message"].as_str().unwrap();
    assert!(
        message.contains("the public key of the broker (signer of its "),
        "{message}"
    );
    assert!(message.contains(&format!("UID {broker_uid}")), "{message}");
}
