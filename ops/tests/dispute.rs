//! `peerscrip-ops dispute` on the demo's purchase: the bundle verifies with the
//! logs gone, and tells what each party signed and did; any byte flipped fails it with the
//! reason; a change made behind a recomputed digest is named by the check it breaks (a
//! signature, a key certificate) or, for a log's own unsigned claim, by the verdict; a wrong
//! broker key is refused.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use ops::dispute::words::{Source, Statement, Topic, Value, tell};
use ops::dispute::{Bundle, BundleError, Node, transactions, verify};
use shared::events::Event;
use shared::node::Recorded;
use shared::{Amount, PublicKey, Suite};

fn ops(args: &[&std::ffi::OsStr]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(args)
        .output()
        .unwrap()
}

/// The demo's data directory, and the tea shop's purchase tx (alice's 2 × tea for 9.00).
fn demo(dir: &Path) -> (PathBuf, String) {
    let data = dir.join("run");
    let out = ops(&["demo".as_ref(), "--data-dir".as_ref(), data.as_os_str()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let purchase = transactions(&data.join("merchant-tea"))
        .unwrap()
        .into_iter()
        .find(|line| line.kinds == ["PurchaseMade", "PurchaseReported"])
        .unwrap();
    // `dispute txs --json`: the same list, each tx's time as `{"unix", "rfc3339"}`.
    let out = ops(&[
        "dispute".as_ref(),
        "txs".as_ref(),
        data.join("merchant-tea").as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    let listed = doc["txs"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["tx"] == purchase.tx.to_string().as_str())
        .unwrap();
    assert_eq!(
        listed["kinds"],
        serde_json::json!(["PurchaseMade", "PurchaseReported"])
    );
    assert_eq!(listed["time"]["unix"], purchase.time.to_secs().get());
    assert!(
        listed["time"]["rfc3339"].as_str().unwrap().ends_with('Z'),
        "{listed}"
    );
    (data, purchase.tx.to_string())
}

/// The bundle of the demo's purchase and the pinned broker key, written by the commands
/// into `dir`; the demo's logs are then deleted.
fn bundle_without_logs(dir: &Path) -> (PathBuf, PathBuf, String) {
    let (data, tx) = demo(dir);
    let bundle = dir.join("purchase.bundle");
    let key = dir.join("broker.pub.pem");
    let out = ops(&[
        "dispute".as_ref(),
        "bundle".as_ref(),
        tx.as_ref(),
        "--logs".as_ref(),
        data.join("broker").as_os_str(),
        data.join("merchant-tea").as_os_str(),
        data.join("customer-alice").as_os_str(),
        "--out".as_ref(),
        bundle.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&doc["ok"], &doc["tx"]),
        (&true.into(), &tx.as_str().into())
    );
    assert_eq!(doc["keys"], 2);
    let out = ops(&[
        "dispute".as_ref(),
        "pinned-key".as_ref(),
        data.join("customer-alice").as_os_str(),
        "--out".as_ref(),
        key.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({"ok": true, "out": key.to_str().unwrap()})
    );
    std::fs::remove_dir_all(&data).unwrap();
    (bundle, key, tx)
}

fn read(path: &Path) -> (Vec<u8>, Bundle) {
    let bytes = std::fs::read(path).unwrap();
    let bundle = Bundle::from_file_bytes(&bytes).unwrap();
    (bytes, bundle)
}

#[test]
fn the_demo_purchase_bundle_verifies_without_the_logs() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle_path, key_path, tx) = bundle_without_logs(dir.path());
    let (_, bundle) = read(&bundle_path);
    let pem = std::fs::read_to_string(&key_path).unwrap();
    assert_eq!(bundle.tx.to_string(), tx);
    // Broker: PurchaseOpened, PurchaseRecorded; tea shop: PurchaseMade, PurchaseReported;
    // alice: two saved requests, PurchaseAnnounced, ItemBought.
    let nodes: Vec<Node> = bundle.records.iter().map(|r| r.node).collect();
    assert_eq!(
        nodes,
        [
            [Node::Broker; 2].as_slice(),
            &[Node::Merchant; 2],
            &[Node::Wallet; 4]
        ]
        .concat()
    );
    assert_eq!(bundle.keys.len(), 2, "alice's and the tea shop's");

    let account = tell(verify(&bundle, &pem).unwrap());
    assert!(account.consistent(), "{:?}", account.contradictions);
    // Four signed bodies: C's X0 and X1, M's X2 and X3 (protocol.md 6.3), plus the two
    // certificates.
    assert_eq!(account.verified.signatures, 6);
    let signed: Vec<String> = account
        .statements
        .iter()
        .filter_map(|s| match &s.source {
            Source::Signed { label, .. } => Some(format!("{} {label}", account.name(&s.party))),
            Source::Logged { .. } => None,
        })
        .collect();
    let customer = account.name(&bundle.records[6].owner);
    let merchant = account.name(&bundle.records[2].owner);
    assert!(customer.starts_with("customer "), "{customer}");
    assert!(merchant.starts_with("merchant "), "{merchant}");
    assert_eq!(
        signed,
        [
            format!("{customer} PurchaseInitiated"),
            format!("{merchant} PurchaseCompleted"),
            format!("{customer} PurchaseRequest"),
            format!("{merchant} PurchaseResponse"),
        ]
    );

    // The command says it in words.
    let out = ops(&[
        "dispute".as_ref(),
        "verify".as_ref(),
        bundle_path.as_os_str(),
        "--broker-key".as_ref(),
        key_path.as_os_str(),
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(
        text.contains(&format!(
            "{customer} signed PurchaseInitiated, kept in the broker's log"
        )),
        "{text}"
    );
    assert!(text.contains("for 2 × Green tea, 100 g at 4.50"), "{text}");
    assert!(text.contains("gave a receipt for 9.00"), "{text}");
    assert!(text.contains("and change 6.00"), "{text}");
    assert!(
        text.contains("verdict: consistent: every signed statement and every log agree"),
        "{text}"
    );

    // `--json`, after the subcommand: one document, the amounts of every claim as
    // `{"value", "minor"}`, each log's event time as `{"unix", "rfc3339"}`.
    let out = ops(&[
        "dispute".as_ref(),
        "verify".as_ref(),
        bundle_path.as_os_str(),
        "--broker-key".as_ref(),
        key_path.as_os_str(),
        "--json".as_ref(),
    ]);
    assert!(out.status.success());
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(doc["ok"], true);
    assert_eq!(doc["verdict"], "consistent");
    assert_eq!(doc["tx"], tx.as_str());
    assert_eq!(doc["signatures"], 6);
    let statements = doc["statements"].as_array().unwrap();
    let paid: Vec<&serde_json::Value> = statements
        .iter()
        .flat_map(|s| s["claims"].as_array().unwrap())
        .filter(|c| c["topic"] == "the amount paid")
        .map(|c| &c["value"])
        .collect();
    assert!(!paid.is_empty(), "{doc}");
    for value in paid {
        assert_eq!(value, &serde_json::json!({"value": "9.00", "minor": 900}));
    }
    for s in statements.iter().filter(|s| s["signed"] == false) {
        let unix = s["time"]["unix"].as_u64().unwrap();
        let utc = shared::UnixSecs::new(unix).utc();
        assert_eq!(
            s["time"]["rfc3339"],
            format!("{}T{}Z", &utc[..10], &utc[11..19]),
            "{s}"
        );
    }
}

#[test]
fn a_flipped_byte_or_a_forged_part_fails_with_its_reason() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle_path, key_path, _) = bundle_without_logs(dir.path());
    let (bytes, bundle) = read(&bundle_path);
    let pem = std::fs::read_to_string(&key_path).unwrap();

    // Any byte flipped, content or digest: the digest names it.
    let step = (bytes.len() / 211).max(1);
    let positions: Vec<usize> = (0..bytes.len())
        .step_by(step)
        .chain(bytes.len() - 40..bytes.len())
        .collect();
    assert!(positions.len() > 200);
    for at in positions {
        let mut flipped = bytes.clone();
        flipped[at] ^= 0x01;
        assert_eq!(
            Bundle::from_file_bytes(&flipped),
            Err(BundleError::Digest),
            "byte {at}"
        );
    }
    assert_eq!(
        Bundle::from_file_bytes(&bytes[..bytes.len() - 1]),
        Err(BundleError::Digest)
    );
    assert_eq!(
        Bundle::from_file_bytes(&bytes[..20]),
        Err(BundleError::TooShort)
    );

    // Behind a recomputed digest, a signature changed in the broker's first event (alice's
    // signed PurchaseInitiated) is named by record, evidence and signer.
    let mut forged = bundle.clone();
    let mut event: Event<Recorded<broker::core::Kind>> =
        Event::decode(&forged.records[0].event).unwrap();
    let signer = event.evidence[0].signer;
    event.evidence[0].sig[7] ^= 0x80;
    forged.records[0].event = event.encode().unwrap();
    let reread = Bundle::from_file_bytes(&forged.to_file_bytes().unwrap()).unwrap();
    assert_eq!(
        verify(&reread, &pem).unwrap_err(),
        BundleError::BadSignature {
            record: 0,
            evidence: 0,
            signer
        }
    );

    // Its signed body changed instead (the amount announced): the same.
    let mut forged = bundle.clone();
    let mut event: Event<Recorded<broker::core::Kind>> =
        Event::decode(&forged.records[0].event).unwrap();
    let last = event.evidence[0].body.len() - 1;
    event.evidence[0].body[last] ^= 0x01;
    forged.records[0].event = event.encode().unwrap();
    assert_eq!(
        verify(&forged, &pem).unwrap_err(),
        BundleError::BadSignature {
            record: 0,
            evidence: 0,
            signer
        }
    );

    // A key whose broker certificate is gone: not traced to the broker.
    let mut forged = bundle.clone();
    let mut registration: Event<Recorded<broker::core::Kind>> =
        Event::decode(&forged.keys[0].registration).unwrap();
    registration.kind.sent.clear();
    forged.keys[0].registration = registration.encode().unwrap();
    assert_eq!(
        verify(&forged, &pem).unwrap_err(),
        BundleError::KeyNotCertified {
            uid: bundle.keys[0].uid,
            reason: "no RegistrationResponse signed by the broker names it".to_owned()
        }
    );

    // One party's key record swapped for the other's registration.
    let mut forged = bundle.clone();
    forged.keys[0].registration = bundle.keys[1].registration.clone();
    assert_eq!(
        verify(&forged, &pem).unwrap_err(),
        BundleError::KeyNotCertified {
            uid: bundle.keys[0].uid,
            reason: "its registration is of another UID".to_owned()
        }
    );

    // A signer's key left out: its signatures have no certified key.
    let mut forged = bundle.clone();
    forged.keys.retain(|k| k.uid != signer);
    assert_eq!(
        verify(&forged, &pem).unwrap_err(),
        BundleError::UnknownSigner {
            record: 0,
            evidence: 0,
            signer
        }
    );

    // The merchant's events claimed as the customer's log: the frames they stored were
    // sent by the merchant, so the owner is refused.
    let mut forged = bundle.clone();
    let customer = forged.records[6].owner;
    forged.records[2].owner = customer;
    assert_eq!(
        verify(&forged, &pem).unwrap_err(),
        BundleError::Owner {
            record: 2,
            owner: customer
        }
    );

    // A format this build does not read.
    let mut forged = bundle.clone();
    forged.format = 2;
    assert_eq!(
        Bundle::from_file_bytes(&forged.to_file_bytes().unwrap()),
        Err(BundleError::Format { found: 2 })
    );

    // The merchant's own unsigned claim changed (its log says 8.00 was paid): every
    // signature still holds, and the verdict names the merchant's PurchaseMade against
    // the customer's signed PurchaseInitiated.
    let mut forged = bundle.clone();
    let mut made: Event<Recorded<merchant::core::events::Kind>> =
        Event::decode(&forged.records[2].event).unwrap();
    let merchant::core::events::Kind::PurchaseMade { receipt, .. } = &mut made.kind.kind else {
        panic!("record 2 is the PurchaseMade");
    };
    receipt.paid = Amount::from_minor(800);
    forged.records[2].event = made.encode().unwrap();
    let account = tell(verify(&forged, &pem).unwrap());
    assert_eq!(
        account.contradictions.len(),
        1,
        "{:?}",
        account.contradictions
    );
    let c = &account.contradictions[0];
    assert_eq!(c.topic, Topic::Paid);
    let (first, second) = (&account.statements[c.first], &account.statements[c.second]);
    assert!(
        matches!(&first.source, Source::Signed { label, .. } if *label == shared::wire::Label::PurchaseInitiated)
    );
    assert!(
        matches!(&second.source, Source::Logged { kind, node: Node::Merchant, .. } if kind == "PurchaseMade")
    );

    // The command: exit 3 for a damaged file, 4 for a contradicted one.
    let damaged = dir.path().join("damaged.bundle");
    let mut flipped = bytes.clone();
    flipped[100] ^= 0x01;
    std::fs::write(&damaged, &flipped).unwrap();
    let out = ops(&[
        "dispute".as_ref(),
        "verify".as_ref(),
        damaged.as_os_str(),
        "--broker-key".as_ref(),
        key_path.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("digest does not match"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let contradicted = dir.path().join("contradicted.bundle");
    std::fs::write(&contradicted, forged.to_file_bytes().unwrap()).unwrap();
    let out = ops(&[
        "dispute".as_ref(),
        "verify".as_ref(),
        contradicted.as_os_str(),
        "--broker-key".as_ref(),
        key_path.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    let text = String::from_utf8(out.stdout).unwrap();
    assert!(text.contains("verdict: CONTRADICTED"), "{text}");
    assert!(text.contains("on the amount paid:"), "{text}");
    assert!(text.contains("(8.00) contradicts"), "{text}");

    // With `--json` (before the subcommand): each failure one document on stdout, exit 3
    // (refused: a check did not hold), the contradicted one with its verdict.
    for (file, verdict) in [(&damaged, None), (&contradicted, Some("contradicted"))] {
        let out = ops(&[
            "--json".as_ref(),
            "dispute".as_ref(),
            "verify".as_ref(),
            file.as_os_str(),
            "--broker-key".as_ref(),
            key_path.as_os_str(),
        ]);
        assert_eq!(out.status.code(), Some(3));
        let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(doc["ok"], false, "{doc}");
        assert_eq!(doc["error"], "refused", "{doc}");
        assert_eq!(doc["exit_code"], 3, "{doc}");
        assert!(doc["message"].is_string(), "{doc}");
        assert_eq!(
            doc.get("verdict").and_then(|v| v.as_str()),
            verdict,
            "{doc}"
        );
    }
    let contradicted_doc: serde_json::Value = serde_json::from_slice(
        &ops(&[
            "dispute".as_ref(),
            "verify".as_ref(),
            contradicted.as_os_str(),
            "--broker-key".as_ref(),
            key_path.as_os_str(),
            "--json".as_ref(),
        ])
        .stdout,
    )
    .unwrap();
    let c = &contradicted_doc["contradictions"][0];
    assert_eq!(c["topic"], "the amount paid");
    let claims = &contradicted_doc["statements"][c["second"].as_u64().unwrap() as usize]["claims"];
    assert!(
        claims
            .as_array()
            .unwrap()
            .contains(&serde_json::json!({"topic": "the amount paid", "value": {"value": "8.00", "minor": 800}})),
        "{claims}"
    );
}

#[test]
fn a_wrong_broker_key_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let (bundle_path, _, _) = bundle_without_logs(dir.path());
    let (_, bundle) = read(&bundle_path);
    // The tea shop's key: real, registered, and not the broker's.
    let registration: Event<Recorded<broker::core::Kind>> =
        Event::decode(&bundle.keys[0].registration).unwrap();
    let broker::core::Kind::PeerRegistered { spki_der, .. } = &registration.kind.kind else {
        panic!("a registration");
    };
    let other = PublicKey::from_spki_der(Suite::Modern, spki_der).unwrap();
    let pem = other.to_pem().unwrap();
    assert_eq!(
        verify(&bundle, &pem).unwrap_err(),
        BundleError::WrongBroker {
            bundle: bundle.broker,
            given: other.uid()
        }
    );
    assert!(matches!(
        verify(&bundle, "not a key").unwrap_err(),
        BundleError::BrokerKey(_)
    ));

    let key = dir.path().join("other.pub.pem");
    std::fs::write(&key, pem).unwrap();
    let out = ops(&[
        "dispute".as_ref(),
        "verify".as_ref(),
        bundle_path.as_os_str(),
        "--broker-key".as_ref(),
        key.as_os_str(),
    ]);
    assert_eq!(out.status.code(), Some(3));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains(&format!(
            "the bundle is of broker {}, the key given is {}'s",
            bundle.broker,
            other.uid()
        )),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The demo's 6.2, 6.5 and 6.7 at the tea shop, each bundled from the three logs: each
/// verifies and is consistent, and each party's signed messages are those of protocol.md
/// section 6, read by their fields (a claim on the amount of the transaction).
#[test]
fn every_three_party_transaction_of_the_demo_verifies() {
    use ops::dispute::collect;
    use shared::wire::Label as L;
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = demo(dir.path());
    let logs = [
        data.join("broker"),
        data.join("merchant-tea"),
        data.join("customer-alice"),
    ];
    let pem = ops::dispute::pinned_broker_key(&data.join("customer-alice")).unwrap();
    let lines = transactions(&data.join("merchant-tea")).unwrap();
    for (first_kind, topic, labels) in [
        (
            "ExchangeRequested",
            Topic::Exchanged,
            vec![
                L::VendorScripNotice,
                L::ExchangeAuthorizationRequest,
                L::VendorScripRequest,
                L::VendorScripRequest,
                L::ExchangeAuthorizationResponse,
                L::VendorScripNoticeResponse,
                L::ChangeBrokerScrip,
                L::VendorScripResponse,
            ],
        ),
        (
            "VendorEscrowOpened",
            Topic::TopUp,
            vec![
                L::VendorTopUpRequest,
                L::VendorTopUpAccepted,
                L::VendorTopUpAuthorization,
                L::VendorTopUpRequest,
                L::VendorTopUpDecision,
                L::Ack,
                L::ChangeBrokerScrip,
                L::VendorTopUpResponse,
            ],
        ),
    ] {
        let line = lines.iter().find(|l| l.kinds[0] == first_kind).unwrap();
        let bundle = collect(line.tx, &logs).unwrap();
        let bytes = bundle.to_file_bytes().unwrap();
        let account = tell(verify(&Bundle::from_file_bytes(&bytes).unwrap(), &pem).unwrap());
        assert!(account.consistent(), "{:?}", account.contradictions);
        let signed: Vec<L> = account
            .statements
            .iter()
            .filter_map(|s| match &s.source {
                Source::Signed { label, .. } => Some(*label),
                Source::Logged { .. } => None,
            })
            .collect();
        assert_eq!(signed, labels, "{first_kind}");
        let claims = account
            .statements
            .iter()
            .filter(|s| s.claims.iter().any(|(t, _)| *t == topic))
            .count();
        assert!(claims >= 6, "{first_kind}: {claims} claims on {topic}");
    }
    // 6.7: the withdrawal (the second escrow at the tea shop).
    let line = lines
        .iter()
        .find(|l| l.kinds == ["VendorEscrowOpened", "VendorScripWithdrawn"])
        .unwrap();
    let account = tell(verify(&collect(line.tx, &logs).unwrap(), &pem).unwrap());
    assert!(account.consistent(), "{:?}", account.contradictions);
    let withdrawn: Vec<&Statement> = account
        .statements
        .iter()
        .filter(|s| {
            s.claims
                .contains(&(Topic::Withdrawn, Value::Amount(Amount::from_minor(1_100))))
        })
        .collect();
    // M's X2, C's two parts, B's X3, B's event, M's two events, C's event.
    assert_eq!(withdrawn.len(), 8);
}

/// A bundle needs the broker's log (the key chain), and a tx some log has.
#[test]
fn a_bundle_without_the_broker_log_or_of_an_unknown_tx_is_refused() {
    use ops::dispute::{CollectError, collect};
    let dir = tempfile::tempdir().unwrap();
    let (data, tx) = demo(dir.path());
    let tx: shared::TxId = tx.parse().unwrap();
    let err = collect(tx, &[data.join("merchant-tea")]).unwrap_err();
    assert!(matches!(err, CollectError::BrokerLogs(0)), "{err}");
    let err = collect(tx, &[data.join("broker"), data.join("broker")]).unwrap_err();
    assert!(matches!(err, CollectError::BrokerLogs(2)), "{err}");
    let unknown = shared::TxId([0xab; 16]);
    let err = collect(unknown, &[data.join("broker"), data.join("merchant-tea")]).unwrap_err();
    assert!(
        matches!(err, CollectError::NoEvents(t) if t == unknown),
        "{err}"
    );
    // The output file is never overwritten.
    let out = dir.path().join("exists.bundle");
    std::fs::write(&out, b"keep").unwrap();
    let bundle = collect(tx, &[data.join("broker")]).unwrap();
    assert!(ops::dispute::write(&bundle, &out).is_err());
    assert_eq!(std::fs::read(&out).unwrap(), b"keep");
}
