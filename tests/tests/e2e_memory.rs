//! End to end over the [`MemoryBus`] with real redb files in temporary directories
//! (architecture.md "Tests, in layers", layer 3): the broker and a merchant run in their
//! actor shells (`shared::runtime`: node actor, group commit, gateway), the customer's real
//! wallet drives them through `customer_cli::client`.
//!
//! - the bank opens accounts; a wallet registers (6.0), fetches the merchant's key (6.0b),
//!   buys BrokerScrip (6.1), tops it up (6.4), renews it early (6.8) and withdraws it (6.6);
//!   it buys an item at the merchant (6.3) with VendorScrip the merchant core issued
//!   directly (the client side of 6.2 is not built yet), announcing the purchase to the
//!   broker (6.3 step 1); the merchant's reporter sends `PurchaseCompleted` and records the
//!   broker's `Ack`. At the end: conservation at every node, and every node's file reopened
//!   gives the state it had (replay equality).
//! - 6.2 with every message on the bus: the notice, step 2 handed to the merchant, the
//!   merchant's reporter asking the broker, the broker's change and the merchant's V0
//!   delivered to the customer's peer subject and collected by a deadline;
//! - the wallet's own 6.2 (step 2 handed to the merchant one way, both answers taken from
//!   its peer subject) and 6.3 with the VendorScrip it obtained;
//! - an exchange that expires: one tick of the broker's timer (`broker::shell::tick`, the
//!   broker's clock moved past the deadline) publishes the NOK `ChangeBrokerScrip` to the
//!   wallet's peer subject; the wallet ends the tx with B0 Live again;
//! - one scrip spent by 1,000 concurrent requests (withdrawals and top-ups mixed, each its
//!   own tx) through the running broker: exactly one succeeds, the rest are refused `Spent`,
//!   and the money adds up.
#![allow(clippy::unwrap_used)]

use std::time::Duration;

use broker::core::Config as BrokerConfig;
use broker::node::BrokerNode;
use bytes::Bytes;
use customer_cli::client::{Client, collect_deliveries};
use customer_cli::core::HistoryKind;
use customer_cli::{Wallet, WalletError};
use merchant::core::Config as MerchantConfig;
use merchant::core::catalogue::Item;
use merchant::node::MerchantNode;
use peerscrip_tests::network::{self, NOW, Party};
use shared::bus::{Bus, MemoryBus, Subjects};
use shared::events::Account;
use shared::runtime::parallel_map;
use shared::wire::bodies::{
    BrokerScripTopUpX0, BrokerScripWithdrawX0, ChangeBrokerScripX4, ErrorBody, OrderId, OrderInfo,
    PurchaseInitiatedX0, PurchaseRequestX1, PurchaseResponseX2, VendorScripNoticeX0,
    VendorScripRequestX1, VendorScripRequestX2, VendorScripResponseX6,
};
use shared::wire::{
    Decision, Frame, Header, Inner, Label, Part, id_proof, seal, secret_inner, sign,
};
use shared::{
    AccountId, Amount, CustomerSecret, ErrorCode, KeyPair, Nonce, Pan, PanSecret, Scrip, Suite,
    TxId, fixtures,
};

/// The customer's account: the PAN and PANSecret of test-vectors.md.
const PAN_C: &str = "GR1601101250000000012300695";
const SECRET_C: &str = "correct horse battery staple";
const PAN_M: &str = "GR9608100010000001234567890";
const SECRET_M: &str = "merchant account secret for tests";
/// Fixture key indexes.
const CUSTOMER: usize = 0;
const BROKER: usize = 1;
const MERCHANT: usize = 2;
/// Generous: a lost reply is retried, and nothing in these tests waits for a timeout.
const TIMEOUT: Duration = Duration::from_secs(60);

fn clock() -> u64 {
    NOW
}

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

/// The test kit's broker (`peerscrip_tests::network`) on `path`.
fn broker_node(suite: Suite, path: &std::path::Path) -> BrokerNode {
    network::open_broker(path, BrokerConfig::new(suite)).unwrap()
}

fn merchant_config(suite: Suite) -> MerchantConfig {
    let items = vec![Item::new("tea", "Green tea, 100 g", amount(450))];
    let party = Party::with_account(suite, MERCHANT, PAN_M, SECRET_M);
    network::merchant_config(&party, MERCHANT, items).unwrap()
}

fn merchant_node(suite: Suite, path: &std::path::Path) -> MerchantNode {
    MerchantNode::open(
        path,
        fixtures::keypair(suite, MERCHANT).clone(),
        merchant_config(suite),
        [
            fixtures::keypair(suite, BROKER).public().clone(),
            fixtures::keypair(suite, CUSTOMER).public().clone(),
        ],
    )
    .unwrap()
}

/// A wallet for fixture key `index` with the account `pan` linked (the test kit's).
fn wallet(suite: Suite, path: &std::path::Path, index: usize, pan: &str, secret: &str) -> Wallet {
    network::create_wallet(path, &Party::with_account(suite, index, pan, secret)).unwrap()
}

/// The `Error` code of a reply signed by `signer`, or `None` for any other reply.
fn error_code(signer: &KeyPair, reply: &[u8]) -> Option<ErrorCode> {
    let frame = Frame::decode(reply).unwrap();
    if frame.header.label != Label::Error {
        return None;
    }
    frame
        .part(0)
        .unwrap()
        .verify_signed::<ErrorBody>(signer.public())
        .unwrap()
        .body
        .error_code()
}

/// A request sealed to `to`: the customer's IdProof (when `id` is given), `Signed(body)`,
/// and the secret of the scrip presented.
fn presenting<B: shared::wire::Body>(
    from: &KeyPair,
    to: &KeyPair,
    tx: TxId,
    id: Option<&AccountId>,
    body: &B,
    scrip: &Scrip,
    cs: &CustomerSecret,
) -> Vec<u8> {
    let header = Header::new(from.suite(), B::LABEL, tx, from.uid());
    let mut inners: Vec<Inner> = Vec::new();
    if let Some(id) = id {
        inners.push(id_proof(from, &header, id).unwrap());
    }
    inners.push(sign(from, &header, body).unwrap().into());
    inners.push(secret_inner(scrip.id(), cs));
    let part: Part = seal(&header, to.public(), &inners).unwrap();
    Frame::new(header, vec![part]).encode().unwrap()
}

/// The whole path of one customer through the running nodes, in `suite`.
async fn customer_journey(suite: Suite) {
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let broker_keys = fixtures::keypair(suite, BROKER);
    let merchant_keys = fixtures::keypair(suite, MERCHANT);
    let customer_keys = fixtures::keypair(suite, CUSTOMER);
    let (pan_c, pan_m) = (Pan::new(PAN_C), Pan::new(PAN_M));

    // The bank opens both accounts and funds the customer's (operator API, before serving).
    let mut broker = broker_node(suite, &dir.path().join("broker.redb"));
    broker
        .open_account(&pan_c, &PanSecret::new(SECRET_C), NOW)
        .unwrap();
    broker
        .open_account(&pan_m, &PanSecret::new(SECRET_M), NOW)
        .unwrap();
    broker.deposit(&pan_c, amount(10_000), NOW).unwrap();
    let running_broker = broker::shell::serve(broker, bus.clone(), subjects.clone(), clock)
        .await
        .unwrap();

    let client = Client::new(bus.clone(), subjects.clone(), broker_keys.uid(), TIMEOUT, 3);

    // The merchant registers its key for its account (6.0); a wallet file is its 6.0
    // client here (the merchant binary's own registration is not built yet).
    let mut registrar = wallet(
        suite,
        &dir.path().join("merchant-registration.redb"),
        MERCHANT,
        PAN_M,
        SECRET_M,
    );
    let out = registrar.register(NOW).unwrap();
    let done = client.send(&mut registrar, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::Registered {
            uid: merchant_keys.uid()
        }
    );

    // The customer: 6.0, 6.0b, 6.1, 6.4, 6.8, 6.6 through the running broker.
    let wallet_path = dir.path().join("wallet.redb");
    let mut w = wallet(suite, &wallet_path, CUSTOMER, PAN_C, SECRET_C);
    let out = w.register(NOW).unwrap();
    let done = client.send(&mut w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::Registered {
            uid: customer_keys.uid()
        }
    );
    // Registered once: a second registration of the same key is refused by the broker.
    let out = {
        let mut other = wallet(
            suite,
            &dir.path().join("second.redb"),
            CUSTOMER,
            PAN_C,
            SECRET_C,
        );
        let out = other.register(NOW).unwrap();
        let refused = client.send(&mut other, out.clone(), NOW).await;
        assert!(
            matches!(
                refused,
                Err(customer_cli::client::ClientError::Wallet(
                    WalletError::Refused { .. }
                ))
            ),
            "{refused:?}"
        );
        out
    };
    assert_eq!(out.to, broker_keys.uid());

    let out = w.request_public_key(merchant_keys.uid(), NOW).unwrap();
    let done = client.send(&mut w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::PeerKey {
            uid: merchant_keys.uid()
        }
    );

    let out = w.obtain_broker_scrip(amount(1_500), NOW).unwrap();
    let done = client.send(&mut w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripObtained {
            value: amount(1_500)
        }
    );
    // 6.4 with a lost reply (section 7): the first frame reaches the broker, which commits
    // and answers, but the answer never reaches the wallet; the client sends the saved
    // request again (same bodies, fresh signatures, same digest) and the broker answers
    // with its stored reply, so the top-up happens once.
    let out = w.top_up_broker_scrip(amount(2_000), NOW).unwrap();
    let lost = bus
        .request(&subjects.broker(), Bytes::from(out.frame.clone()), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(error_code(broker_keys, &lost), None);
    let again = w.resend(out.tx, out.label).unwrap();
    assert_ne!(again.frame, out.frame, "fresh signatures and seals");
    let done = client.send(&mut w, again, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripToppedUp {
            from: amount(1_500),
            to: amount(2_000)
        }
    );
    let out = w.renew(broker_keys.uid(), NOW).unwrap();
    let done = client.send(&mut w, out, NOW).await.unwrap();
    assert!(
        matches!(done.what, HistoryKind::ScripRenewed { value, .. } if value == amount(2_000)),
        "{:?}",
        done.what
    );
    let out = w.withdraw_broker_scrip(NOW).unwrap();
    let done = client.send(&mut w, out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripWithdrawn {
            value: amount(2_000)
        }
    );
    assert!(w.broker_scrip().is_none());

    // 6.3 at the running merchant, with VendorScrip its core issued directly.
    let mut merchant = merchant_node(suite, &dir.path().join("merchant.redb"));
    let (v0, cs_v0) = merchant
        .issue_vendor_scrip(customer_keys.uid(), amount(1_000), TxId::random(), NOW)
        .unwrap();
    let running = merchant::shell::serve(merchant, bus.clone(), subjects.clone(), clock, TIMEOUT)
        .await
        .unwrap();
    let tx = TxId::random();
    let order = OrderInfo {
        item_id: "tea".into(),
        name: "Green tea, 100 g".into(),
        unit_price: amount(450),
        quantity: 2,
        order_id: OrderId::random(),
    };
    // Step 1: C announces W_P to the broker.
    let header = Header::new(suite, Label::PurchaseInitiated, tx, customer_keys.uid());
    let x0 = PurchaseInitiatedX0 {
        merchant: merchant_keys.uid(),
        value: amount(900),
    };
    let step1 = Frame::new(
        header,
        vec![sign(customer_keys, &header, &x0).unwrap().into()],
    )
    .encode()
    .unwrap();
    let ack = bus
        .request(&subjects.broker(), Bytes::from(step1), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(error_code(broker_keys, &ack), None);
    // Step 2: C pays M with V0.
    let body = PurchaseRequestX1 {
        scrip: v0.clone(),
        cs_hash: cs_v0.cs_hash(suite),
        order: order.clone(),
    };
    let step2 = presenting(customer_keys, merchant_keys, tx, None, &body, &v0, &cs_v0);
    let reply = bus
        .request(
            &subjects.merchant(&merchant_keys.uid()),
            Bytes::from(step2.clone()),
            TIMEOUT,
        )
        .await
        .unwrap();
    let frame = Frame::decode(&reply).unwrap();
    assert_eq!(frame.header.label, Label::PurchaseResponse, "{reply:?}");
    let opened = frame.part(0).unwrap().open_sealed(customer_keys).unwrap();
    let response = opened
        .signed::<PurchaseResponseX2>(merchant_keys.public())
        .unwrap()
        .body;
    assert_eq!(response.order, order);
    let change = response.change.expect("change of 100");
    assert_eq!(change.scrip.body.value, amount(100));
    // The same request again (a lost reply): the stored reply, byte for byte.
    let again = bus
        .request(
            &subjects.merchant(&merchant_keys.uid()),
            Bytes::from(step2),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(again, reply);
    // The same V0 again, in a new tx: refused Spent.
    let body = PurchaseRequestX1 {
        scrip: v0.clone(),
        cs_hash: cs_v0.cs_hash(suite),
        order,
    };
    let spent = presenting(
        customer_keys,
        merchant_keys,
        TxId::random(),
        None,
        &body,
        &v0,
        &cs_v0,
    );
    let refused = bus
        .request(
            &subjects.merchant(&merchant_keys.uid()),
            Bytes::from(spent),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(error_code(merchant_keys, &refused), Some(ErrorCode::Spent));

    // Stop everything; each node hands back its core.
    // Step 5: the merchant's reporter sends `PurchaseCompleted` to the broker and records the
    // `Ack`. One round now, through the running merchant (the background reporter may have
    // been first; either way the report is recorded when the round returns).
    merchant::shell::send_reports(&running.addr, &bus, &subjects, TIMEOUT)
        .await
        .unwrap();
    let merchant = running.stop().await.unwrap();
    assert!(merchant.pending_reports().is_empty());
    let broker = running_broker.stop().await.unwrap();

    // Conservation at the broker: accounts sum to zero, none negative, float:broker is the
    // live BrokerScrip (none); the customer's bank is whole again, the merchant's untouched.
    assert_eq!(broker.state().check_conserved(), Ok(()));
    assert_eq!(
        broker.state().balance(&Account::Bank(pan_c.clone())),
        10_000
    );
    assert_eq!(broker.state().balance(&Account::Bank(pan_m.clone())), 0);
    assert_eq!(broker.state().balance(&Account::FloatBroker), 0);
    let purchase = broker
        .state()
        .purchases
        .get(&tx)
        .expect("purchase recorded");
    assert!(purchase.recorded, "steps 1 and 5 matched");
    // Conservation at the merchant: issued = live + paid.
    let books = merchant.state().tables.books;
    assert_eq!(books.issued, amount(1_000));
    assert_eq!(books.paid, amount(900));
    assert_eq!(merchant.state().live_value().unwrap(), amount(100));

    // Replay equality: every node reopened from its file has the state it had.
    let broker_state = broker.state().clone();
    broker.close().unwrap();
    let reopened = broker_node(suite, &dir.path().join("broker.redb"));
    assert_eq!(reopened.state(), &broker_state);
    let merchant_tables = merchant.state().tables.clone();
    merchant.close().unwrap();
    let reopened = merchant_node(suite, &dir.path().join("merchant.redb"));
    assert_eq!(reopened.state().tables, merchant_tables);
    let wallet_state = w.state().clone();
    drop(w);
    let reopened = Wallet::open(&wallet_path, customer_keys.clone()).unwrap();
    reopened.check_tables().unwrap();
    assert_eq!(reopened.state(), &wallet_state);
}

#[actix_rt::test]
async fn customer_journey_paper_suite() {
    customer_journey(Suite::Paper).await;
}

#[actix_rt::test]
async fn customer_journey_modern_suite() {
    customer_journey(Suite::Modern).await;
}

/// Section 4 through the running broker: one BrokerScrip presented by 1,000 concurrent
/// requests, withdrawals and top-ups alternating, each in its own tx. They reach the actor
/// together, are opened in parallel and decided in batches against the state including
/// every earlier decision: exactly one succeeds, 999 are refused `Spent`, and the money
/// adds up.
#[actix_rt::test]
async fn one_scrip_one_thousand_concurrent_spends() {
    const N: u64 = 1_000;
    let suite = Suite::Paper;
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let broker_keys = fixtures::keypair(suite, BROKER);
    let customer_keys = fixtures::keypair(suite, CUSTOMER);
    let pan = Pan::new(PAN_C);
    let secret = PanSecret::new(SECRET_C);
    let mut broker = broker_node(suite, &dir.path().join("broker.redb"));
    broker.open_account(&pan, &secret, NOW).unwrap();
    broker.deposit(&pan, amount(10_000), NOW).unwrap();
    let running = broker::shell::serve(broker, bus.clone(), subjects.clone(), clock)
        .await
        .unwrap();
    let client = Client::new(bus.clone(), subjects.clone(), broker_keys.uid(), TIMEOUT, 3);
    let mut w = wallet(
        suite,
        &dir.path().join("wallet.redb"),
        CUSTOMER,
        PAN_C,
        SECRET_C,
    );
    let out = w.register(NOW).unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let out = w.obtain_broker_scrip(amount(1_000), NOW).unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let b0 = w.broker_scrip().unwrap().scrip.clone();
    let cs = w.customer_secret(broker_keys.uid()).unwrap();
    let id = AccountId::derive(suite, &secret, &pan);

    // 1,000 requests presenting B0, each its own tx: even ones withdraw, odd ones top up.
    let indexes: Vec<u64> = (0..N).collect();
    let frames = parallel_map(&indexes, |i| {
        let tx = TxId::random();
        if i.is_multiple_of(2) {
            let body = BrokerScripWithdrawX0 {
                scrip: b0.clone(),
                cs_hash: cs.cs_hash(suite),
            };
            presenting(customer_keys, broker_keys, tx, Some(&id), &body, &b0, &cs)
        } else {
            let body = BrokerScripTopUpX0 {
                scrip: b0.clone(),
                cs_hash: cs.cs_hash(suite),
                new_value: amount(1_000 + i),
                nonce: Nonce::random(),
            };
            presenting(customer_keys, broker_keys, tx, Some(&id), &body, &b0, &cs)
        }
    });
    let tasks: Vec<_> = frames
        .into_iter()
        .map(|frame| {
            let bus = bus.clone();
            let subject = subjects.broker();
            tokio::spawn(async move { bus.request(&subject, Bytes::from(frame), TIMEOUT).await })
        })
        .collect();
    let mut successes = Vec::new();
    for (i, task) in tasks.into_iter().enumerate() {
        let reply = task.await.unwrap().unwrap();
        match error_code(broker_keys, &reply) {
            None => successes.push(i),
            Some(code) => assert_eq!(code, ErrorCode::Spent, "request {i}"),
        }
    }
    assert_eq!(successes.len(), 1, "{successes:?}");

    let broker = running.stop().await.unwrap();
    let state = broker.state();
    assert_eq!(state.check_conserved(), Ok(()));
    assert!(state.live.get(&b0.id()).is_none(), "B0 is spent");
    // Whatever won: C's bank plus the live BrokerScrip is what C deposited.
    let live: i128 = state
        .live
        .iter()
        .map(|(_, r)| i128::from(r.body.value.minor()))
        .sum();
    assert_eq!(state.balance(&Account::Bank(pan.clone())) + live, 10_000);
    assert_eq!(state.balance(&Account::FloatBroker), live);
    let winner = successes[0] as u64;
    let expected_live = if winner.is_multiple_of(2) {
        0
    } else {
        1_000 + winner
    };
    assert_eq!(live, i128::from(expected_live));
    // Replay equality after the batches.
    let before = state.clone();
    broker.close().unwrap();
    let reopened = broker_node(suite, &dir.path().join("broker.redb"));
    assert_eq!(reopened.state(), &before);
}

/// Section 7 through the client: with no broker listening, a request is sent
/// `attempts` times and given up as `NoReply`, and it stays pending in the wallet; once the
/// broker serves, the saved request is sent again and completes, once.
#[actix_rt::test]
async fn a_request_nobody_answers_stays_pending_and_completes_later() {
    let suite = Suite::Paper;
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let broker_keys = fixtures::keypair(suite, BROKER);
    let pan = Pan::new(PAN_C);
    let client = Client::new(bus.clone(), subjects.clone(), broker_keys.uid(), TIMEOUT, 3);
    let mut w = wallet(
        suite,
        &dir.path().join("wallet.redb"),
        CUSTOMER,
        PAN_C,
        SECRET_C,
    );
    let out = w.register(NOW).unwrap();
    let (tx, label) = (out.tx, out.label);
    let failed = client.send(&mut w, out, NOW).await;
    assert!(
        matches!(
            failed,
            Err(customer_cli::client::ClientError::NoReply {
                attempts: 3,
                last: shared::BusError::NoResponders,
                ..
            })
        ),
        "{failed:?}"
    );
    assert_eq!(
        w.pending().count(),
        1,
        "still pending: its outcome is unknown"
    );
    assert_eq!(w.state().registered, None);

    let mut broker = broker_node(suite, &dir.path().join("broker.redb"));
    broker
        .open_account(&pan, &PanSecret::new(SECRET_C), NOW)
        .unwrap();
    let running = broker::shell::serve(broker, bus.clone(), subjects.clone(), clock)
        .await
        .unwrap();
    let again = w.resend(tx, label).unwrap();
    let done = client.send(&mut w, again, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::Registered {
            uid: fixtures::keypair(suite, CUSTOMER).uid()
        }
    );
    assert_eq!(w.pending().count(), 0);
    let broker = running.stop().await.unwrap();
    assert!(broker.state().peers.contains_key(&w.uid()));
    assert_eq!(broker.state().check_conserved(), Ok(()));
}

/// The clock of a broker started after the renewal grace of a scrip issued at [`NOW`]
/// ended (30 days of life, one year of grace: section 4 defaults).
fn after_grace() -> u64 {
    NOW + (30 + 365) * 24 * 3600 + 1
}

/// The broker's timer in the shell (sections 4 and 7): a BrokerScrip bought from a running
/// broker, the broker stopped and started again from its file after the grace ended; its
/// timer lapses the scrip and the value goes back to the owner's bank account.
#[actix_rt::test]
async fn the_timer_of_a_restarted_broker_lapses_scrip_past_its_grace() {
    let suite = Suite::Paper;
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("broker.redb");
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let broker_keys = fixtures::keypair(suite, BROKER);
    let pan = Pan::new(PAN_C);
    let mut broker = broker_node(suite, &path);
    broker
        .open_account(&pan, &PanSecret::new(SECRET_C), NOW)
        .unwrap();
    broker.deposit(&pan, amount(10_000), NOW).unwrap();
    let running = broker::shell::serve(broker, bus.clone(), subjects.clone(), clock)
        .await
        .unwrap();
    let client = Client::new(bus.clone(), subjects.clone(), broker_keys.uid(), TIMEOUT, 3);
    let mut w = wallet(
        suite,
        &dir.path().join("wallet.redb"),
        CUSTOMER,
        PAN_C,
        SECRET_C,
    );
    let out = w.register(NOW).unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let out = w.obtain_broker_scrip(amount(2_500), NOW).unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let b0 = w.broker_scrip().unwrap().scrip.id();
    // Nothing is due at NOW.
    assert_eq!(
        broker::shell::expire(&running.addr)
            .await
            .unwrap()
            .unwrap()
            .events,
        0
    );
    let broker = running.stop().await.unwrap();
    assert_eq!(broker.state().balance(&Account::Bank(pan.clone())), 7_500);
    broker.close().unwrap();

    let running = broker::shell::serve(
        broker_node(suite, &path),
        bus.clone(),
        subjects.clone(),
        after_grace,
    )
    .await
    .unwrap();
    // The timer runs at start: the lapse is recorded without waiting a period. (A call
    // of `expire` queued behind it finds nothing left to do, or does it itself.)
    broker::shell::expire(&running.addr).await.unwrap().unwrap();
    let broker = running.stop().await.unwrap();
    let state = broker.state();
    assert!(state.live.get(&b0).is_none(), "B0 lapsed");
    assert_eq!(state.balance(&Account::Bank(pan.clone())), 10_000);
    assert_eq!(state.balance(&Account::FloatBroker), 0);
    assert_eq!(state.check_conserved(), Ok(()));
}

/// A body sealed to `me` and signed by `signer`.
fn sealed_body<B: shared::wire::Body>(frame: &[u8], me: &KeyPair, signer: &KeyPair) -> B {
    let frame = Frame::decode(frame).unwrap();
    assert_eq!(frame.header.label, B::LABEL);
    let opened = frame.part(0).unwrap().open_sealed(me).unwrap();
    opened.signed::<B>(signer.public()).unwrap().body
}

/// 6.2 through the running nodes, every message over the bus: C subscribes to its peer
/// subject first, announces the exchange to the broker (step 1), hands step 2 to M (a
/// one-way frame: M holds C's answer until the broker decides); M's reporter asks the
/// broker (step 3), the broker decides, delivers C's change (step 4) and answers M, whose
/// reporter acts on the OK and publishes V0 to C (step 6). C collects both deliveries by a
/// deadline. Money adds up at both nodes, and both reopen to the state they had.
#[actix_rt::test]
async fn vendor_scrip_exchange_through_the_running_nodes() {
    let suite = Suite::Paper;
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let broker_keys = fixtures::keypair(suite, BROKER);
    let merchant_keys = fixtures::keypair(suite, MERCHANT);
    let customer_keys = fixtures::keypair(suite, CUSTOMER);
    let (pan_c, pan_m) = (Pan::new(PAN_C), Pan::new(PAN_M));
    let secret_c = PanSecret::new(SECRET_C);
    let mut broker = broker_node(suite, &dir.path().join("broker.redb"));
    broker.open_account(&pan_c, &secret_c, NOW).unwrap();
    broker
        .open_account(&pan_m, &PanSecret::new(SECRET_M), NOW)
        .unwrap();
    broker.deposit(&pan_c, amount(10_000), NOW).unwrap();
    let running_broker = broker::shell::serve(broker, bus.clone(), subjects.clone(), clock)
        .await
        .unwrap();
    let client = Client::new(bus.clone(), subjects.clone(), broker_keys.uid(), TIMEOUT, 3);
    let mut registrar = wallet(
        suite,
        &dir.path().join("merchant-registration.redb"),
        MERCHANT,
        PAN_M,
        SECRET_M,
    );
    let out = registrar.register(NOW).unwrap();
    client.send(&mut registrar, out, NOW).await.unwrap();
    let mut w = wallet(
        suite,
        &dir.path().join("wallet.redb"),
        CUSTOMER,
        PAN_C,
        SECRET_C,
    );
    let out = w.register(NOW).unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let out = w.obtain_broker_scrip(amount(1_000), NOW).unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let b0 = w.broker_scrip().unwrap().scrip.clone();
    let cs_b0 = w.customer_secret(broker_keys.uid()).unwrap();
    let id_c = AccountId::derive(suite, &secret_c, &pan_c);

    let merchant = merchant_node(suite, &dir.path().join("merchant.redb"));
    let running_merchant =
        merchant::shell::serve(merchant, bus.clone(), subjects.clone(), clock, TIMEOUT)
            .await
            .unwrap();
    let mut deliveries = client
        .subscribe_deliveries(&customer_keys.uid())
        .await
        .unwrap();

    // Step 1: the notice to the broker.
    let tx = TxId::random();
    let h = Header::new(suite, Label::VendorScripNotice, tx, customer_keys.uid());
    let notice = VendorScripNoticeX0 {
        merchant: merchant_keys.uid(),
    };
    let part = seal(
        &h,
        broker_keys.public(),
        &[
            id_proof(customer_keys, &h, &id_c).unwrap(),
            sign(customer_keys, &h, &notice).unwrap().into(),
        ],
    )
    .unwrap();
    let reply = bus
        .request(
            &subjects.broker(),
            Bytes::from(Frame::new(h, vec![part]).encode().unwrap()),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        Frame::decode(&reply).unwrap().header.label,
        Label::VendorScripNoticeResponse
    );
    // Step 2: X1 (for the broker, with CS_B0) and X2 (for M), W = 700.
    let h = Header::new(suite, Label::VendorScripRequest, tx, customer_keys.uid());
    let x1 = VendorScripRequestX1 {
        scrip: b0.clone(),
        cs_hash: cs_b0.cs_hash(suite),
        value: amount(700),
    };
    let x2 = VendorScripRequestX2 { value: amount(700) };
    let to_b = seal(
        &h,
        broker_keys.public(),
        &[
            id_proof(customer_keys, &h, &id_c).unwrap(),
            sign(customer_keys, &h, &x1).unwrap().into(),
            secret_inner(b0.id(), &cs_b0),
        ],
    )
    .unwrap();
    let to_m = seal(
        &h,
        merchant_keys.public(),
        &[sign(customer_keys, &h, &x2).unwrap().into()],
    )
    .unwrap();
    bus.publish(
        &subjects.merchant(&merchant_keys.uid()),
        Bytes::from(Frame::new(h, vec![to_b, to_m]).encode().unwrap()),
    )
    .await
    .unwrap();

    // Steps 3 to 6 happen between the nodes; C waits for its two deliveries.
    let got = collect_deliveries(&mut deliveries, 2, TIMEOUT).await;
    assert_eq!(got.len(), 2, "both deliveries arrived");
    let mut change = None;
    let mut v0 = None;
    for frame in &got {
        match Frame::decode(frame).unwrap().header.label {
            Label::ChangeBrokerScrip => {
                let x4: ChangeBrokerScripX4 = sealed_body(frame, customer_keys, broker_keys);
                assert_eq!(x4.outcome, Decision::Ok);
                assert!(x4.undertaking.is_some(), "M's undertaking");
                change = x4.change;
            }
            Label::VendorScripResponse => {
                let x6: VendorScripResponseX6 = sealed_body(frame, customer_keys, merchant_keys);
                v0 = Some(x6.scrip);
            }
            other => panic!("unexpected delivery {other:?}"),
        }
    }
    assert_eq!(change.unwrap().scrip.value(), amount(300));
    let v0 = v0.unwrap();
    assert_eq!(v0.value(), amount(700));
    assert_eq!(v0.body.producer, merchant_keys.uid());

    let merchant = running_merchant.stop().await.unwrap();
    let broker = running_broker.stop().await.unwrap();
    assert!(merchant.pending_broker_requests().is_empty());
    assert_eq!(broker.state().check_conserved(), Ok(()));
    assert_eq!(broker.state().balance(&Account::Bank(pan_m.clone())), 700);
    assert_eq!(broker.state().balance(&Account::Bank(pan_c.clone())), 9_000);
    assert_eq!(broker.state().balance(&Account::FloatBroker), 300);
    let books = merchant.state().tables.books;
    assert_eq!(books.issued, amount(700));
    assert_eq!(merchant.state().live_value().unwrap(), amount(700));
    let broker_state = broker.state().clone();
    broker.close().unwrap();
    assert_eq!(
        broker_node(suite, &dir.path().join("broker.redb")).state(),
        &broker_state
    );
    let tables = merchant.state().tables.clone();
    merchant.close().unwrap();
    assert_eq!(
        merchant_node(suite, &dir.path().join("merchant.redb"))
            .state()
            .tables,
        tables
    );
}

/// The wallet's own 6.2 and 6.3 through the running nodes: it subscribes to its peer
/// subject, announces the exchange (step 1, request/reply), hands step 2 to the merchant one
/// way, takes the broker's change and the merchant's V0 from its peer subject, then buys an
/// item with V0 (6.3 steps 1 and 2). Then the merchant is restarted after the change's
/// renewal grace ended: its lapse timer removes the change and its reporter tells the
/// broker, which pays the value back to the customer's bank account from the merchant's
/// (protocol.md section 4). Money adds up at every node and every file replays to the
/// state it had.
#[actix_rt::test]
async fn the_wallet_obtains_vendor_scrip_and_buys_through_the_running_nodes() {
    let suite = Suite::Paper;
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let broker_keys = fixtures::keypair(suite, BROKER);
    let merchant_keys = fixtures::keypair(suite, MERCHANT);
    let customer_keys = fixtures::keypair(suite, CUSTOMER);
    let (pan_c, pan_m) = (Pan::new(PAN_C), Pan::new(PAN_M));
    let mut broker = broker_node(suite, &dir.path().join("broker.redb"));
    broker
        .open_account(&pan_c, &PanSecret::new(SECRET_C), NOW)
        .unwrap();
    broker
        .open_account(&pan_m, &PanSecret::new(SECRET_M), NOW)
        .unwrap();
    broker.deposit(&pan_c, amount(10_000), NOW).unwrap();
    let running_broker = broker::shell::serve(broker, bus.clone(), subjects.clone(), clock)
        .await
        .unwrap();
    let client = Client::new(bus.clone(), subjects.clone(), broker_keys.uid(), TIMEOUT, 3);
    let mut registrar = wallet(
        suite,
        &dir.path().join("merchant-registration.redb"),
        MERCHANT,
        PAN_M,
        SECRET_M,
    );
    let out = registrar.register(NOW).unwrap();
    client.send(&mut registrar, out, NOW).await.unwrap();
    let wallet_path = dir.path().join("wallet.redb");
    let mut w = wallet(suite, &wallet_path, CUSTOMER, PAN_C, SECRET_C);
    for out in [
        w.register(NOW).unwrap(),
        w.request_public_key(merchant_keys.uid(), NOW).unwrap(),
    ] {
        client.send(&mut w, out, NOW).await.unwrap();
    }
    let out = w.obtain_broker_scrip(amount(1_000), NOW).unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let merchant = merchant_node(suite, &dir.path().join("merchant.redb"));
    let running_merchant =
        merchant::shell::serve(merchant, bus.clone(), subjects.clone(), clock, TIMEOUT)
            .await
            .unwrap();

    // 6.2: subscribe first, then step 1, then step 2 one way.
    let mut deliveries = client
        .subscribe_deliveries(&customer_keys.uid())
        .await
        .unwrap();
    let out = w
        .obtain_vendor_scrip(merchant_keys.uid(), amount(700), NOW)
        .unwrap();
    let tx = out.tx;
    client.send(&mut w, out, NOW).await.unwrap();
    let step2 = w.resend(tx, Label::VendorScripRequest).unwrap();
    assert_eq!(step2.to, merchant_keys.uid());
    client.publish(&step2).await.unwrap();
    let got = collect_deliveries(&mut deliveries, 2, TIMEOUT).await;
    assert_eq!(got.len(), 2, "the broker's change and the merchant's V0");
    for frame in &got {
        w.handle_reply(frame, NOW).unwrap();
    }
    assert_eq!(
        w.scrip(merchant_keys.uid()).unwrap().scrip.value(),
        amount(700)
    );
    assert_eq!(w.broker_scrip().unwrap().scrip.value(), amount(300));
    assert_eq!(w.pending().count(), 0);

    // 6.3 with V0: step 1 to the broker, step 2 to the merchant.
    let order = OrderInfo {
        item_id: "tea".into(),
        name: "Green tea, 100 g".into(),
        unit_price: amount(450),
        quantity: 1,
        order_id: OrderId::random(),
    };
    let (initiated, purchase) = w.buy_item(merchant_keys.uid(), order, NOW).unwrap();
    let purchase_tx = initiated.tx;
    client.send(&mut w, initiated, NOW).await.unwrap();
    client.send(&mut w, purchase, NOW).await.unwrap();
    assert_eq!(
        w.scrip(merchant_keys.uid()).unwrap().scrip.value(),
        amount(250),
        "the change"
    );
    merchant::shell::send_reports(&running_merchant.addr, &bus, &subjects, TIMEOUT)
        .await
        .unwrap();
    let merchant = running_merchant.stop().await.unwrap();
    assert!(merchant.pending_reports().is_empty());
    assert!(merchant.pending_broker_requests().is_empty());
    assert_eq!(merchant.state().live_value().unwrap(), amount(250));
    merchant.close().unwrap();

    // The change (2.50) is never renewed; the merchant starts again after its grace: the
    // lapse timer runs at the start (and `lapse` once more here, so the test knows it ran),
    // and one round of the reporter has the broker's Ack.
    let running_merchant = merchant::shell::serve(
        merchant_node(suite, &dir.path().join("merchant.redb")),
        bus.clone(),
        subjects.clone(),
        after_grace,
        TIMEOUT,
    )
    .await
    .unwrap();
    merchant::shell::lapse(&running_merchant.addr)
        .await
        .unwrap();
    merchant::shell::send_reports(&running_merchant.addr, &bus, &subjects, TIMEOUT)
        .await
        .unwrap();

    let merchant = running_merchant.stop().await.unwrap();
    let broker = running_broker.stop().await.unwrap();
    assert!(
        merchant.pending_broker_requests().is_empty(),
        "the lapse was acknowledged"
    );
    let state = broker.state();
    assert_eq!(state.check_conserved(), Ok(()));
    assert_eq!(
        state.balance(&Account::Bank(pan_c.clone())),
        9_250,
        "90.00 + the lapsed 2.50"
    );
    assert_eq!(state.balance(&Account::Bank(pan_m.clone())), 450);
    assert_eq!(state.balance(&Account::FloatBroker), 300);
    assert!(
        state.purchases.get(&purchase_tx).unwrap().recorded,
        "steps 1 and 5 matched at the broker"
    );
    assert_eq!(
        state.memos.get(&merchant_keys.uid()),
        Some(&0),
        "memo 700 - 450 - 250 lapsed"
    );
    let books = merchant.state().tables.books;
    assert_eq!(books.issued, amount(700));
    assert_eq!(books.paid, amount(450));
    assert_eq!(books.withdrawn, amount(250), "the lapse, as a withdrawal");
    assert_eq!(merchant.state().live_value().unwrap(), amount(0));

    let broker_state = broker.state().clone();
    broker.close().unwrap();
    assert_eq!(
        broker_node(suite, &dir.path().join("broker.redb")).state(),
        &broker_state
    );
    let tables = merchant.state().tables.clone();
    merchant.close().unwrap();
    assert_eq!(
        merchant_node(suite, &dir.path().join("merchant.redb"))
            .state()
            .tables,
        tables
    );
    let wallet_state = w.state().clone();
    drop(w);
    let reopened = Wallet::open(&wallet_path, customer_keys.clone()).unwrap();
    reopened.check_tables().unwrap();
    assert_eq!(reopened.state(), &wallet_state);
}

/// The running broker's clock in [`an_expired_exchange_reaches_the_wallet_on_its_peer_subject`]:
/// moved by the test past the exchange's deadline (no test waits on time).
static MOVABLE_NOW: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(NOW);

fn movable_clock() -> u64 {
    MOVABLE_NOW.load(std::sync::atomic::Ordering::SeqCst)
}

/// The broker's timer reaches the parties (sections 4 and 7): the wallet announces a 6.2
/// exchange (step 1) and step 2 never reaches the merchant; past the deadline one tick of
/// the running broker's timer closes the exchange and publishes its NOK `ChangeBrokerScrip`
/// to C's peer subject. The wallet takes it from there (no TransactionStatus), the tx ends
/// and B0 is Live again at both ends. Money adds up and every file replays to its state.
#[actix_rt::test]
async fn an_expired_exchange_reaches_the_wallet_on_its_peer_subject() {
    let suite = Suite::Modern;
    let dir = tempfile::tempdir().unwrap();
    let bus = MemoryBus::new();
    let subjects = Subjects::default();
    let broker_keys = fixtures::keypair(suite, BROKER);
    let merchant_keys = fixtures::keypair(suite, MERCHANT);
    let customer_keys = fixtures::keypair(suite, CUSTOMER);
    let (pan_c, pan_m) = (Pan::new(PAN_C), Pan::new(PAN_M));
    let broker_path = dir.path().join("broker.redb");
    let mut broker = broker_node(suite, &broker_path);
    broker
        .open_account(&pan_c, &PanSecret::new(SECRET_C), NOW)
        .unwrap();
    broker
        .open_account(&pan_m, &PanSecret::new(SECRET_M), NOW)
        .unwrap();
    broker.deposit(&pan_c, amount(10_000), NOW).unwrap();
    let running = broker::shell::serve(broker, bus.clone(), subjects.clone(), movable_clock)
        .await
        .unwrap();
    let client = Client::new(bus.clone(), subjects.clone(), broker_keys.uid(), TIMEOUT, 3);
    let mut registrar = wallet(
        suite,
        &dir.path().join("merchant-registration.redb"),
        MERCHANT,
        PAN_M,
        SECRET_M,
    );
    let out = registrar.register(NOW).unwrap();
    client.send(&mut registrar, out, NOW).await.unwrap();
    let wallet_path = dir.path().join("wallet.redb");
    let mut w = wallet(suite, &wallet_path, CUSTOMER, PAN_C, SECRET_C);
    for out in [
        w.register(NOW).unwrap(),
        w.request_public_key(merchant_keys.uid(), NOW).unwrap(),
    ] {
        client.send(&mut w, out, NOW).await.unwrap();
    }
    let out = w.obtain_broker_scrip(amount(1_000), NOW).unwrap();
    client.send(&mut w, out, NOW).await.unwrap();
    let b0 = w.broker_scrip().unwrap().scrip.id();

    let mut deliveries = client
        .subscribe_deliveries(&customer_keys.uid())
        .await
        .unwrap();
    let out = w
        .obtain_vendor_scrip(merchant_keys.uid(), amount(700), NOW)
        .unwrap();
    let tx = out.tx;
    client.send(&mut w, out, NOW).await.unwrap();
    assert_eq!(w.pending().count(), 1, "the exchange is open");
    // Nothing is due yet: a tick publishes nothing to C.
    assert!(broker::shell::tick(&running.addr, &bus, &subjects).await);
    assert!(
        collect_deliveries(&mut deliveries, 1, Duration::ZERO)
            .await
            .is_empty()
    );

    let late = NOW + 24 * 3600;
    MOVABLE_NOW.store(late, std::sync::atomic::Ordering::SeqCst);
    assert!(broker::shell::tick(&running.addr, &bus, &subjects).await);
    let got = collect_deliveries(&mut deliveries, 1, TIMEOUT).await;
    assert_eq!(got.len(), 1, "the NOK ChangeBrokerScrip");
    let x4: ChangeBrokerScripX4 = sealed_body(&got[0], customer_keys, broker_keys);
    let Decision::Nok(reason) = &x4.outcome else {
        panic!("expected NOK, got {:?}", x4.outcome)
    };
    assert_eq!(reason.error_code(), Some(ErrorCode::DeadlinePassed));
    w.handle_reply(&got[0], late).unwrap();
    assert_eq!(w.pending().count(), 0, "the tx ended");
    let held = w.broker_scrip().unwrap();
    assert_eq!((held.scrip.id(), held.scrip.value()), (b0, amount(1_000)));

    let broker = running.stop().await.unwrap();
    let state = broker.state();
    assert_eq!(state.check_conserved(), Ok(()));
    assert_eq!(
        state.live.get(&b0).map(|l| l.state),
        Some(shared::node::ScripState::Live),
        "B0 Live again at the broker"
    );
    assert_eq!(
        state.exchanges[&tx].state,
        broker::core::ExchangeState::Expired
    );
    assert_eq!(state.balance(&Account::Bank(pan_c.clone())), 9_000);
    assert_eq!(state.balance(&Account::FloatBroker), 1_000);
    // The bytes C got are the ones stored for TransactionStatus.
    assert_eq!(
        state.outbox.frames(&tx, &customer_keys.uid()).last(),
        Some(&got[0].to_vec())
    );
    let broker_state = state.clone();
    broker.close().unwrap();
    assert_eq!(broker_node(suite, &broker_path).state(), &broker_state);
    let wallet_state = w.state().clone();
    drop(w);
    let reopened = Wallet::open(&wallet_path, customer_keys.clone()).unwrap();
    reopened.check_tables().unwrap();
    assert_eq!(reopened.state(), &wallet_state);
}
