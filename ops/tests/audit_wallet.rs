//! `peerscrip-ops audit` on real wallet logs (the demo's alice: registration, 6.0b, every
//! BrokerScrip and VendorScrip flow; bob: a refusal, an abandon, a renewal), and on copies
//! tampered in each way an auditor must catch: an altered event (chain), a
//! forged signature and a cached key that is not the one the broker certified (evidence), a
//! posting (postings), a deleted event, a swapped pair (ledger), a scrip spent that is not
//! held or after it expired (live-spend), a reissued id (scrip-issued-once), a purchase
//! recorded twice (spent-once), a receipt for more than the change allows (change), a 6.7
//! withdrawal left undecided past its deadline (deadline), a changed projection row
//! (replay). The audit needs no key or passphrase of the wallet and
//! prints none of its sealed secrets.
#![allow(clippy::unwrap_used)]

mod common;

use common::{NoTables, demo_run, events, flip_event_byte, flip_row_byte, rechain, rewrite_event};
use customer_cli::NODE_KIND;
use customer_cli::core::WalletEvent;
use customer_cli::store::WalletProjection;
use ops::audit::{Check, audit};
use shared::events::{Account, Event, Posting};
use shared::{Amount, ScripId};

type Events = Vec<Event<WalletEvent>>;

/// The seq of the first event of `name` (its `Debug` variant name).
fn seq_of(all: &Events, name: &str) -> u64 {
    all.iter()
        .find(|e| format!("{:?}", e.kind).starts_with(name))
        .unwrap()
        .seq
}

fn finding(path: &std::path::Path) -> ops::audit::Finding {
    audit(path, None)
        .unwrap()
        .finding
        .expect("the audit must fail")
}

#[test]
fn the_demo_wallet_logs_pass_and_each_tampering_is_named() {
    let (dir, run) = demo_run();
    let original = run.join("customer-alice").join("wallet.redb");

    let report = audit(&run.join("customer-alice"), None).unwrap();
    assert!(report.ok(), "{:?}", report.finding);
    assert_eq!(report.node, NODE_KIND);
    for kind in [
        "WalletCreated",
        "PeerKeyCached",
        "BrokerScripObtained",
        "ExchangeSettled",
        "ItemBought",
        "VendorTopUpSettled",
        "VendorScripToppedUp",
        "VendorWithdrawDecided",
    ] {
        assert!(report.by_kind.contains_key(kind), "{kind}: {report:?}");
    }
    assert!(report.signatures >= 15, "{report:?}");
    let bob = audit(&run.join("customer-bob"), None).unwrap();
    assert!(bob.ok(), "{:?}", bob.finding);
    assert!(bob.by_kind.contains_key("ScripRenewed"), "{bob:?}");
    assert_eq!(bob.balances["scrip:broker"], 1000, "{bob:?}");

    let all: Events = events(&original);
    let at = |seq: u64| usize::try_from(seq - 1).unwrap();
    let bought = seq_of(&all, "ItemBought");
    let cached = seq_of(&all, "PeerKeyCached");
    let obtained = seq_of(&all, "BrokerScripObtained");

    // An altered event: the chain names it.
    let path = dir.path().join("altered.redb");
    flip_event_byte(&original, &path, bought);
    let f = finding(&path);
    assert_eq!((f.seq, f.check), (bought, Check::Chain), "{f}");

    // Its prev hash or its seq changed in place: the chain names it.
    let path = dir.path().join("prev-hash.redb");
    rewrite_event::<WalletEvent>(&original, &path, bought, |e| e.prev_hash[0] ^= 1);
    let f = finding(&path);
    assert_eq!((f.seq, f.check), (bought, Check::Chain), "{f}");
    let path = dir.path().join("seq.redb");
    rewrite_event::<WalletEvent>(&original, &path, bought, |e| e.seq += 1);
    let f = finding(&path);
    assert_eq!((f.seq, f.check), (bought, Check::Chain), "{f}");

    // A forged signature of the merchant's receipt, tables and all: evidence.
    let mut forged = all.clone();
    forged[at(bought)].evidence[0].sig[0] ^= 1;
    let path = dir.path().join("forged.redb");
    rechain(forged, &path, NODE_KIND, &WalletProjection::default());
    let f = finding(&path);
    assert_eq!((f.seq, f.check), (bought, Check::Evidence), "{f}");
    assert_eq!(f.kind.as_deref(), Some("ItemBought"));

    // A cached key that is not the one the broker's signed answer names: evidence.
    let mut rekeyed = all.clone();
    let WalletEvent::WalletCreated { identity } = &all[0].kind else {
        panic!("a wallet log starts with WalletCreated");
    };
    if let WalletEvent::PeerKeyCached { spki_der, .. } = &mut rekeyed[at(cached)].kind {
        spki_der.clone_from(&identity.broker_key);
    }
    let path = dir.path().join("rekeyed.redb");
    rechain(rekeyed, &path, NODE_KIND, &WalletProjection::default());
    let f = finding(&path);
    assert_eq!((f.seq, f.check), (cached, Check::Evidence), "{f}");

    // A wallet keeps no accounts.
    let mut posted = all.clone();
    posted[at(bought)].postings = vec![
        Posting::increase(Account::External, Amount::from_minor(5)),
        Posting::decrease(Account::External, Amount::from_minor(5)),
    ];
    let path = dir.path().join("posted.redb");
    rechain(posted, &path, NODE_KIND, &NoTables);
    let f = finding(&path);
    assert_eq!((f.seq, f.check), (bought, Check::Postings), "{f}");

    // Content the wallet's own fold refuses, named where it shows.
    let named = |name: &str, changed: Events, seq: u64, check: Check| {
        let path = dir.path().join(format!("{name}.redb"));
        rechain(changed, &path, NODE_KIND, &NoTables);
        let f = finding(&path);
        assert_eq!((f.seq, f.check), (seq, check), "{name}: {f}");
    };
    let mut spent = all.clone();
    if let WalletEvent::ItemBought { spent, .. } = &mut spent[at(bought)].kind {
        *spent = ScripId([7; 16]);
    }
    named("spent-id", spent, bought, Check::LiveSpend);
    // The request a reply answers, deleted: the reply (one seq earlier) answers nothing.
    let mut deleted = all.clone();
    deleted.remove(at(obtained - 1));
    named("deleted", deleted, obtained - 1, Check::Ledger);
    let mut swapped = all.clone();
    swapped.swap(at(obtained - 1), at(obtained));
    named("swapped", swapped, obtained - 1, Check::Ledger);

    // The change of a purchase received under the id of the scrip it replaces.
    let mut reissued = all.clone();
    if let WalletEvent::ItemBought { spent, change, .. } = &mut reissued[at(bought)].kind {
        change.as_mut().unwrap().scrip.body.scrip_id = *spent;
    }
    named("reissued", reissued, bought, Check::ScripIssuedOnce);

    // The purchase recorded twice: its scrip spent a second time.
    let mut twice = all.clone();
    twice.insert(at(bought) + 1, all[at(bought)].clone());
    named("twice", twice, bought + 1, Check::SpentOnce);

    // A receipt for more than V0 − V1.
    let mut paid = all.clone();
    if let WalletEvent::ItemBought { receipt, .. } = &mut paid[at(bought)].kind {
        receipt.paid = receipt.paid.checked_add(Amount::from_minor(1)).unwrap();
    }
    named("paid", paid, bought, Check::Change);

    // A BrokerScrip spent after it expired: the request presenting it saved too late.
    let topped = seq_of(&all, "BrokerScripToppedUp");
    let mut late = all.clone();
    let expires = match &all[at(obtained)].kind {
        WalletEvent::BrokerScripObtained { scrip } => scrip.scrip.body.expires,
        _ => unreachable!(),
    };
    late[at(topped) - 1].time = shared::UnixSecs::new(expires + 1).to_millis();
    named("late", late, topped, Check::LiveSpend);

    // A withdrawal of VendorScrip (6.7) acknowledged, never decided, and the log's last
    // event past its deadline.
    let acked = seq_of(&all, "VendorWithdrawAcked");
    let mut open: Events = all[..at(acked) + 1].to_vec();
    if let WalletEvent::VendorWithdrawAcked { deadline } = &all[at(acked)].kind {
        open[at(acked)].time = shared::UnixSecs::new(deadline + 1).to_millis();
    }
    named("open", open, acked, Check::Deadline);

    // A projection row changed in place: the replay check names the table.
    let path = dir.path().join("row.redb");
    flip_row_byte(&original, &path, "wallet_history");
    let f = finding(&path);
    assert_eq!(f.check, Check::Replay, "{f}");
    assert!(f.expected.starts_with("table wallet_history"), "{f}");
}

/// The binary audits a wallet directory without its key or passphrase, and neither its
/// report nor a finding shows a sealed secret or any event's content.
#[test]
fn the_command_audits_a_wallet_and_prints_no_secret() {
    let (dir, run) = demo_run();
    let wallet = run.join("customer-alice");
    let all: Events = events(&wallet.join("wallet.redb"));
    let mut tampered = all.clone();
    let linked = seq_of(&all, "AccountLinked");
    let bought = seq_of(&all, "ItemBought");
    tampered[usize::try_from(bought - 1).unwrap()].evidence[0].sig[0] ^= 1;
    let path = dir.path().join("tampered.redb");
    rechain(tampered, &path, NODE_KIND, &WalletProjection::default());

    // What would show if the content of an event (the sealed ID, a sealed CS) leaked.
    let WalletEvent::AccountLinked { account } = &all[usize::try_from(linked - 1).unwrap()].kind
    else {
        panic!("AccountLinked");
    };
    let leaks = [
        hex::encode(&account.sealed_id.ciphertext),
        format!("{:?}", &account.sealed_id.ciphertext[..8]),
        "sealed".to_owned(),
        "ciphertext".to_owned(),
    ];
    for (target, json, code) in [
        (wallet.clone(), false, 0),
        (wallet, true, 0),
        (path.clone(), false, 3),
        (path, true, 3),
    ] {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
        cmd.arg("audit").arg(&target);
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().unwrap();
        assert_eq!(out.status.code(), Some(code));
        let printed = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        for leak in &leaks {
            assert!(!printed.contains(leak.as_str()), "{leak} in {printed}");
        }
        if code == 3 {
            assert!(printed.contains(&format!("event {bought}")), "{printed}");
        }
    }
}
