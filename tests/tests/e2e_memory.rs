//! End to end over the [`MemoryBus`](shared::bus::MemoryBus) with real redb files in
//! temporary directories (architecture.md "Tests, in layers", layer 3): the deployment
//! fixture (`peerscrip_tests::deployment`) runs the broker and a merchant in their actor
//! shells (`shared::runtime`: node actor, group commit, gateway), and the customer's real
//! wallet drives them through `customer_cli::client`.
//!
//! - the bank opens accounts; a wallet registers (6.0), fetches the merchant's key (6.0b),
//!   buys BrokerScrip (6.1), tops it up (6.4), renews it early (6.8) and withdraws it (6.6);
//!   it buys an item at the merchant (6.3) with VendorScrip the merchant core issued
//!   directly, announcing the purchase to the broker (6.3 step 1); the merchant's reporter
//!   sends `PurchaseCompleted` and records the broker's `Ack`. At the end: conservation at
//!   every node, and every node's file reopened gives the state it had (replay equality).
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

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::Bytes;
use customer_cli::client::{Client, ClientError, collect_deliveries};
use customer_cli::core::HistoryKind;
use customer_cli::{Wallet, WalletError};
use merchant::core::catalogue::Item;
use peerscrip_tests::deployment::{Deployment, InMemory, TIMEOUT};
use peerscrip_tests::frames::{encoded, error_code, presenting, sealed_body, sealed_part};
use peerscrip_tests::invariants;
use peerscrip_tests::network::{NOW, NetworkSpec, Party, broker_keys, create_wallet};
use shared::bus::{Bus, MemoryBus};
use shared::events::Account;
use shared::runtime::{Clock, parallel_map};
use shared::wire::bodies::{
    BrokerScripTopUpX0, BrokerScripWithdrawX0, ChangeBrokerScripX4, OrderId, OrderInfo,
    PurchaseInitiatedX0, PurchaseRequestX1, PurchaseResponseX2, VendorScripNoticeX0,
    VendorScripRequestX1, VendorScripRequestX2, VendorScripResponseX6,
};
use shared::wire::{Decision, Frame, Label, sign};
use shared::{Amount, CustomerSecret, ErrorCode, Nonce, Scrip, Suite, TxId};

fn clock() -> shared::UnixSecs {
    NOW
}

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

/// The deployment of every test here, nothing serving yet: the broker; one merchant
/// selling tea at 4.50 (registered at setup by its own core, 6.0, as its daemon does); one
/// customer with 100.00 in the bank whose wallet, if `registered`, is registered (6.0)
/// with the merchant's key (6.0b).
fn deployment(suite: Suite, registered: bool) -> Deployment<InMemory> {
    let mut spec = NetworkSpec::new(suite, 1, 1, amount(10_000));
    spec.catalogues = vec![vec![Item::new("tea", "Green tea, 100 g", amount(450))]];
    spec.registered = registered;
    // One customer sends up to a thousand requests at once here (a spent-once race), far
    // above an honest wallet's request rate (section 10), which is not what is tested.
    spec.broker_config.quotas.burst = 2_000;
    Deployment::in_memory(&spec).unwrap()
}

/// [`deployment`] with the broker serving on `clock` and the customer's registered wallet
/// holding BrokerScrip of `value` bought through it (6.1); the customer's client.
async fn holding_broker_scrip(
    suite: Suite,
    clock: Clock,
    value: u64,
) -> (Deployment<InMemory>, Client<MemoryBus>) {
    let mut d = deployment(suite, true);
    d.serve_broker(clock).await.unwrap();
    let client = d.client(0).await.unwrap();
    let out = wallet(&mut d)
        .obtain_broker_scrip(amount(value), NOW)
        .unwrap();
    client.send(wallet(&mut d), out, NOW).await.unwrap();
    (d, client)
}

/// The customer's BrokerScrip and its secret, as a request presenting it carries them.
fn held_broker_scrip(d: &mut Deployment<InMemory>) -> (Scrip, CustomerSecret) {
    let w = wallet(d);
    let b0 = w.broker_scrip().unwrap().scrip.clone();
    let cs = w.customer_secret(b0.body.producer).unwrap();
    (b0, cs)
}

/// 6.2 step 1 of `w` with merchant `m` through the running broker, the customer subscribed
/// to its peer subject first: the subscription, for the deliveries to come, and the tx.
async fn announce_exchange(
    d: &mut Deployment<InMemory>,
    client: &Client<MemoryBus>,
    m: &Party,
    w: u64,
) -> (<MemoryBus as Bus>::Subscription, TxId) {
    let c = d.net.customers[0].party.uid();
    let deliveries = client.subscribe_deliveries(&c).await.unwrap();
    let out = wallet(d)
        .obtain_vendor_scrip(m.uid(), amount(w), NOW)
        .unwrap();
    let tx = out.tx;
    client.send(wallet(d), out, NOW).await.unwrap();
    (deliveries, tx)
}

/// The merchant and the customer, as the frames built by hand sign for them.
fn parties(d: &Deployment<InMemory>) -> (Party, Party) {
    (
        d.net.merchants[0].party.clone(),
        d.net.customers[0].party.clone(),
    )
}

/// The customer's wallet.
fn wallet(d: &mut Deployment<InMemory>) -> &mut Wallet {
    d.net.wallet_mut(0).unwrap()
}

/// Stops every node and checks what each test ends with: conservation at the broker and
/// at the merchant (section 5), and every node's and the wallet's file reopened to the
/// state it had (replay equality, chains verified).
async fn stop_and_check(d: &mut Deployment<InMemory>) {
    d.stop().await.unwrap();
    invariants::conserved(&d.net).unwrap();
    invariants::replayed(&mut d.net).unwrap();
}

/// The order of `quantity` teas.
fn tea(quantity: u64) -> OrderInfo {
    OrderInfo {
        item_id: "tea".into(),
        name: "Green tea, 100 g".into(),
        unit_price: amount(450),
        quantity,
        order_id: OrderId::random(),
    }
}

/// The whole path of one customer through the running nodes, in `suite`.
async fn customer_journey(suite: Suite) {
    let mut d = deployment(suite, false);
    let (m, c) = parties(&d);
    let broker_keys = broker_keys(suite);
    d.serve_broker(clock).await.unwrap();
    let client = d.client(0).await.unwrap();
    let bus = d.customer_bus(0).await.unwrap();

    // The customer: 6.0, 6.0b, 6.1, 6.4, 6.8, 6.6 through the running broker.
    let out = wallet(&mut d).register(NOW).unwrap();
    let done = client.send(wallet(&mut d), out, NOW).await.unwrap();
    assert_eq!(done.what, HistoryKind::Registered { uid: c.uid() });
    // Registered once: a second registration of the same key is refused by the broker.
    let mut other = create_wallet(&d.net.dir().join("second.redb"), &c).unwrap();
    let out = other.register(NOW).unwrap();
    let refused = client.send(&mut other, out.clone(), NOW).await;
    assert!(
        matches!(
            refused,
            Err(ClientError::Wallet(WalletError::Refused { .. }))
        ),
        "{refused:?}"
    );
    assert_eq!(out.to, broker_keys.uid());

    let out = wallet(&mut d).request_public_key(m.uid(), NOW).unwrap();
    let done = client.send(wallet(&mut d), out, NOW).await.unwrap();
    assert_eq!(done.what, HistoryKind::PeerKey { uid: m.uid() });

    let out = wallet(&mut d)
        .obtain_broker_scrip(amount(1_500), NOW)
        .unwrap();
    let done = client.send(wallet(&mut d), out, NOW).await.unwrap();
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
    let out = wallet(&mut d)
        .top_up_broker_scrip(amount(2_000), NOW)
        .unwrap();
    let lost = bus
        .request(
            &d.subjects.broker(),
            Bytes::from(out.frame.clone()),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(error_code(broker_keys, &lost), None);
    let again = wallet(&mut d).resend(out.tx, out.label).unwrap();
    assert_ne!(again.frame, out.frame, "fresh signatures and seals");
    let done = client.send(wallet(&mut d), again, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripToppedUp {
            from: amount(1_500),
            to: amount(2_000)
        }
    );
    let out = wallet(&mut d).renew(broker_keys.uid(), NOW).unwrap();
    let done = client.send(wallet(&mut d), out, NOW).await.unwrap();
    assert!(
        matches!(done.what, HistoryKind::ScripRenewed { value, .. } if value == amount(2_000)),
        "{:?}",
        done.what
    );
    let out = wallet(&mut d).withdraw_broker_scrip(NOW).unwrap();
    let done = client.send(wallet(&mut d), out, NOW).await.unwrap();
    assert_eq!(
        done.what,
        HistoryKind::BrokerScripWithdrawn {
            value: amount(2_000)
        }
    );
    assert!(wallet(&mut d).broker_scrip().is_none());

    // 6.3 at the running merchant, with VendorScrip its core issued directly.
    let (v0, cs_v0) = d
        .net
        .merchant_mut(0)
        .unwrap()
        .issue_vendor_scrip(c.uid(), amount(1_000), TxId::random(), NOW)
        .unwrap();
    d.serve_merchant(0, clock).await.unwrap();
    let tx = TxId::random();
    let order = tea(2);
    // Step 1: C announces W_P to the broker.
    let header = c.header(Label::PurchaseInitiated, tx);
    let x0 = PurchaseInitiatedX0 {
        merchant: m.uid(),
        value: amount(900),
    };
    let step1 = Frame::new(header, vec![sign(c.keys, &header, &x0).unwrap().into()])
        .encode()
        .unwrap();
    let ack = bus
        .request(&d.subjects.broker(), Bytes::from(step1), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(error_code(broker_keys, &ack), None);
    // Step 2: C pays M with V0.
    let pay = |order: OrderInfo, tx: TxId| {
        let body = PurchaseRequestX1 {
            scrip: v0.clone(),
            cs_hash: cs_v0.cs_hash(suite),
            order,
        };
        presenting(c.keys, m.keys, tx, None, &body, (&v0, &cs_v0))
    };
    let to_merchant = d.subjects.merchant(&m.uid());
    let step2 = pay(order.clone(), tx);
    let reply = bus
        .request(&to_merchant, Bytes::from(step2.clone()), TIMEOUT)
        .await
        .unwrap();
    let response: PurchaseResponseX2 = sealed_body(&reply, c.keys, m.keys);
    assert_eq!(response.order, order);
    let change = response.change.expect("change of 100");
    assert_eq!(change.scrip.body.value, amount(100));
    // The same request again (a lost reply): the stored reply, byte for byte.
    let again = bus
        .request(&to_merchant, Bytes::from(step2), TIMEOUT)
        .await
        .unwrap();
    assert_eq!(again, reply);
    // The same V0 again, in a new tx: refused Spent.
    let refused = bus
        .request(
            &to_merchant,
            Bytes::from(pay(order, TxId::random())),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(error_code(m.keys, &refused), Some(ErrorCode::Spent));

    // Step 5: the merchant's reporter sends `PurchaseCompleted` to the broker and records the
    // `Ack`. One round now, through the running merchant (the background reporter may have
    // been first; either way the report is recorded when the round returns).
    d.send_reports(0).await.unwrap();
    stop_and_check(&mut d).await;
    assert!(d.net.merchant(0).unwrap().pending_reports().is_empty());

    // The broker: the merchant's key registered; the customer's bank whole again, the
    // merchant's untouched, float:broker the live BrokerScrip (none).
    let state = d.net.broker().unwrap().state();
    assert!(
        state.peers.contains_key(&m.uid()),
        "the merchant registered"
    );
    assert_eq!(state.balance(&Account::Bank(c.pan.clone())), 10_000);
    assert_eq!(state.balance(&Account::Bank(m.pan.clone())), 0);
    assert_eq!(state.balance(&Account::FloatBroker), 0);
    let purchase = state.purchases.get(&tx).expect("purchase recorded");
    assert!(purchase.recorded, "steps 1 and 5 matched");
    // The merchant: issued = live + paid.
    let merchant = d.net.merchant(0).unwrap();
    let books = merchant.state().tables.books;
    assert_eq!(books.issued, amount(1_000));
    assert_eq!(books.paid, amount(900));
    assert_eq!(merchant.state().live_value().unwrap(), amount(100));
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
    let (mut d, _) = holding_broker_scrip(suite, clock, 1_000).await;
    let (_, c) = parties(&d);
    let broker_keys = broker_keys(suite);
    let (b0, cs) = held_broker_scrip(&mut d);
    let id = c.account_id();

    // 1,000 requests presenting B0, each its own tx: even ones withdraw, odd ones top up.
    let indexes: Vec<u64> = (0..N).collect();
    let frames = parallel_map(&indexes, |i| {
        let (tx, presented) = (TxId::random(), (&b0, &cs));
        if i.is_multiple_of(2) {
            let body = BrokerScripWithdrawX0 {
                scrip: b0.clone(),
                cs_hash: cs.cs_hash(suite),
            };
            presenting(c.keys, broker_keys, tx, Some(&id), &body, presented)
        } else {
            let body = BrokerScripTopUpX0 {
                scrip: b0.clone(),
                cs_hash: cs.cs_hash(suite),
                new_value: amount(1_000 + i),
                nonce: Nonce::random(),
            };
            presenting(c.keys, broker_keys, tx, Some(&id), &body, presented)
        }
    });
    let bus = d.customer_bus(0).await.unwrap();
    let tasks: Vec<_> = frames
        .into_iter()
        .map(|frame| {
            let bus = bus.clone();
            let subject = d.subjects.broker();
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

    // Conserved and replayed after the batches.
    stop_and_check(&mut d).await;
    let state = d.net.broker().unwrap().state();
    assert!(state.live.get(&b0.id()).is_none(), "B0 is spent");
    // Whatever won: C's bank plus the live BrokerScrip is what C deposited.
    let live: i128 = state
        .live
        .iter()
        .map(|(_, r)| i128::from(r.body.value.minor()))
        .sum();
    assert_eq!(state.balance(&Account::Bank(c.pan.clone())) + live, 10_000);
    assert_eq!(state.balance(&Account::FloatBroker), live);
    let winner = successes[0] as u64;
    let expected_live = if winner.is_multiple_of(2) {
        0
    } else {
        1_000 + winner
    };
    assert_eq!(live, i128::from(expected_live));
}

/// Section 7 through the client: with no broker listening, a request is sent
/// `attempts` times and given up as `NoReply`, and it stays pending in the wallet; once the
/// broker serves, the saved request is sent again and completes, once.
#[actix_rt::test]
async fn a_request_nobody_answers_stays_pending_and_completes_later() {
    let mut d = deployment(Suite::Paper, false);
    let client = d.client(0).await.unwrap();
    let out = wallet(&mut d).register(NOW).unwrap();
    let (tx, label) = (out.tx, out.label);
    let failed = client.send(wallet(&mut d), out, NOW).await;
    assert!(
        matches!(
            failed,
            Err(ClientError::NoReply {
                attempts: 3,
                last: shared::BusError::NoResponders,
                ..
            })
        ),
        "{failed:?}"
    );
    assert_eq!(
        wallet(&mut d).pending().count(),
        1,
        "still pending: its outcome is unknown"
    );
    assert_eq!(wallet(&mut d).state().registered, None);

    d.serve_broker(clock).await.unwrap();
    let again = wallet(&mut d).resend(tx, label).unwrap();
    let done = client.send(wallet(&mut d), again, NOW).await.unwrap();
    let uid = wallet(&mut d).uid();
    assert_eq!(done.what, HistoryKind::Registered { uid });
    assert_eq!(wallet(&mut d).pending().count(), 0);
    stop_and_check(&mut d).await;
    assert!(d.net.broker().unwrap().state().peers.contains_key(&uid));
}

/// The clock of a node started after the renewal grace of a scrip issued at [`NOW`] ended
/// (30 days of life, one year of grace: section 4 defaults).
fn after_grace() -> shared::UnixSecs {
    NOW.saturating_add_secs((30 + 365) * 24 * 3600 + 1)
}

/// The broker's timer in the shell (sections 4 and 7): a BrokerScrip bought from a running
/// broker, the broker stopped and started again from its file after the grace ended; its
/// timer lapses the scrip and the value goes back to the owner's bank account.
#[actix_rt::test]
async fn the_timer_of_a_restarted_broker_lapses_scrip_past_its_grace() {
    let (mut d, _) = holding_broker_scrip(Suite::Paper, clock, 2_500).await;
    let (_, c) = parties(&d);
    let b0 = wallet(&mut d).broker_scrip().unwrap().scrip.id();
    // Nothing is due at NOW.
    let addr = &d.broker_shell().unwrap().addr;
    assert_eq!(
        broker::shell::expire(addr).await.unwrap().unwrap().events,
        0
    );
    d.stop_broker().await.unwrap();
    let bank = |d: &Deployment<InMemory>| {
        let state = d.net.broker().unwrap().state();
        state.balance(&Account::Bank(c.pan.clone()))
    };
    assert_eq!(bank(&d), 7_500);

    d.net.reopen_broker().unwrap();
    d.serve_broker(after_grace).await.unwrap();
    // The timer runs at start: the lapse is recorded without waiting a period. (A call
    // of `expire` queued behind it finds nothing left to do, or does it itself.)
    let addr = &d.broker_shell().unwrap().addr;
    broker::shell::expire(addr).await.unwrap().unwrap();
    d.stop_broker().await.unwrap();
    invariants::conserved(&d.net).unwrap();
    let state = d.net.broker().unwrap().state();
    assert!(state.live.get(&b0).is_none(), "B0 lapsed");
    assert_eq!(bank(&d), 10_000);
    assert_eq!(state.balance(&Account::FloatBroker), 0);
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
    let (mut d, client) = holding_broker_scrip(suite, clock, 1_000).await;
    let (m, c) = parties(&d);
    let broker_keys = broker_keys(suite);
    let (b0, cs_b0) = held_broker_scrip(&mut d);

    d.serve_merchant(0, clock).await.unwrap();
    let mut deliveries = client.subscribe_deliveries(&c.uid()).await.unwrap();
    let bus = d.customer_bus(0).await.unwrap();

    // Step 1: the notice to the broker.
    let (tx, id) = (TxId::random(), c.account_id());
    let h = c.header(Label::VendorScripNotice, tx);
    let notice = VendorScripNoticeX0 { merchant: m.uid() };
    let part = sealed_part(c.keys, &h, broker_keys.public(), Some(&id), &notice, None);
    let reply = bus
        .request(
            &d.subjects.broker(),
            Bytes::from(encoded(h, vec![part])),
            TIMEOUT,
        )
        .await
        .unwrap();
    assert_eq!(
        Frame::decode(&reply).unwrap().header.label,
        Label::VendorScripNoticeResponse
    );
    // Step 2: X1 (for the broker, with CS_B0) and X2 (for M), W = 700.
    let h = c.header(Label::VendorScripRequest, tx);
    let x1 = VendorScripRequestX1 {
        scrip: b0.clone(),
        cs_hash: cs_b0.cs_hash(suite),
        value: amount(700),
    };
    let x2 = VendorScripRequestX2 { value: amount(700) };
    let presented = Some((&b0, &cs_b0));
    let to_b = sealed_part(c.keys, &h, broker_keys.public(), Some(&id), &x1, presented);
    let to_m = sealed_part(c.keys, &h, m.keys.public(), None, &x2, None);
    bus.publish(
        &d.subjects.merchant(&m.uid()),
        Bytes::from(encoded(h, vec![to_b, to_m])),
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
                let x4: ChangeBrokerScripX4 = sealed_body(frame, c.keys, broker_keys);
                assert_eq!(x4.outcome, Decision::Ok);
                assert!(x4.undertaking.is_some(), "M's undertaking");
                change = x4.change;
            }
            Label::VendorScripResponse => {
                let x6: VendorScripResponseX6 = sealed_body(frame, c.keys, m.keys);
                v0 = Some(x6.scrip);
            }
            other => panic!("unexpected delivery {other:?}"),
        }
    }
    assert_eq!(change.unwrap().scrip.value(), amount(300));
    let v0 = v0.unwrap();
    assert_eq!(v0.value(), amount(700));
    assert_eq!(v0.body.producer, m.uid());

    stop_and_check(&mut d).await;
    let merchant = d.net.merchant(0).unwrap();
    assert!(merchant.pending_broker_requests().is_empty());
    assert_eq!(merchant.state().tables.books.issued, amount(700));
    assert_eq!(merchant.state().live_value().unwrap(), amount(700));
    let state = d.net.broker().unwrap().state();
    assert_eq!(state.balance(&Account::Bank(m.pan.clone())), 700);
    assert_eq!(state.balance(&Account::Bank(c.pan.clone())), 9_000);
    assert_eq!(state.balance(&Account::FloatBroker), 300);
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
    let (mut d, client) = holding_broker_scrip(Suite::Paper, clock, 1_000).await;
    let (m, c) = parties(&d);
    d.serve_merchant(0, clock).await.unwrap();

    // 6.2: subscribe first, then step 1, then step 2 one way.
    let (mut deliveries, tx) = announce_exchange(&mut d, &client, &m, 700).await;
    let step2 = wallet(&mut d)
        .resend(tx, Label::VendorScripRequest)
        .unwrap();
    assert_eq!(step2.to, m.uid());
    client.publish(&step2).await.unwrap();
    let got = collect_deliveries(&mut deliveries, 2, TIMEOUT).await;
    assert_eq!(got.len(), 2, "the broker's change and the merchant's V0");
    let w = wallet(&mut d);
    for frame in &got {
        w.handle_reply(frame, NOW).unwrap();
    }
    assert_eq!(w.scrip(m.uid()).unwrap().scrip.value(), amount(700));
    assert_eq!(w.broker_scrip().unwrap().scrip.value(), amount(300));
    assert_eq!(w.pending().count(), 0);

    // 6.3 with V0: step 1 to the broker, step 2 to the merchant.
    let (initiated, purchase) = w.buy_item(m.uid(), tea(1), NOW).unwrap();
    let purchase_tx = initiated.tx;
    client.send(w, initiated, NOW).await.unwrap();
    client.send(w, purchase, NOW).await.unwrap();
    assert_eq!(
        w.scrip(m.uid()).unwrap().scrip.value(),
        amount(250),
        "the change"
    );
    d.send_reports(0).await.unwrap();
    d.stop_merchant(0).await.unwrap();
    let merchant = d.net.merchant(0).unwrap();
    assert!(merchant.pending_reports().is_empty());
    assert!(merchant.pending_broker_requests().is_empty());
    assert_eq!(merchant.state().live_value().unwrap(), amount(250));

    // The change (2.50) is never renewed; the merchant starts again from its file after its
    // grace: the lapse timer runs at the start (and `lapse` once more here, so the test
    // knows it ran), and one round of the reporter has the broker's Ack.
    d.net.reopen_merchant(0).unwrap();
    d.serve_merchant(0, after_grace).await.unwrap();
    merchant::shell::lapse(&d.merchant_shell(0).unwrap().addr)
        .await
        .unwrap();
    d.send_reports(0).await.unwrap();

    stop_and_check(&mut d).await;
    let merchant = d.net.merchant(0).unwrap();
    assert!(
        merchant.pending_broker_requests().is_empty(),
        "the lapse was acknowledged"
    );
    let books = merchant.state().tables.books;
    assert_eq!(books.issued, amount(700));
    assert_eq!(books.paid, amount(450));
    assert_eq!(books.withdrawn, amount(250), "the lapse, as a withdrawal");
    assert_eq!(merchant.state().live_value().unwrap(), amount(0));
    let state = d.net.broker().unwrap().state();
    assert_eq!(
        state.balance(&Account::Bank(c.pan.clone())),
        9_250,
        "90.00 + the lapsed 2.50"
    );
    assert_eq!(state.balance(&Account::Bank(m.pan.clone())), 450);
    assert_eq!(state.balance(&Account::FloatBroker), 300);
    assert!(
        state.purchases.get(&purchase_tx).unwrap().recorded,
        "steps 1 and 5 matched at the broker"
    );
    assert_eq!(
        state.memos.get(&m.uid()),
        Some(&0),
        "memo 700 - 450 - 250 lapsed"
    );
}

/// The running broker's clock in [`an_expired_exchange_reaches_the_wallet_on_its_peer_subject`]:
/// moved by the test past the exchange's deadline (no test waits on time).
static MOVABLE_NOW: AtomicU64 = AtomicU64::new(NOW.get());

fn movable_clock() -> shared::UnixSecs {
    shared::UnixSecs::new(MOVABLE_NOW.load(Ordering::SeqCst))
}

/// The broker's timer reaches the parties (sections 4 and 7): the wallet announces a 6.2
/// exchange (step 1) and step 2 never reaches the merchant; past the deadline one tick of
/// the running broker's timer closes the exchange and publishes its NOK `ChangeBrokerScrip`
/// to C's peer subject. The wallet takes it from there (no TransactionStatus), the tx ends
/// and B0 is Live again at both ends. Money adds up and every file replays to its state.
#[actix_rt::test]
async fn an_expired_exchange_reaches_the_wallet_on_its_peer_subject() {
    let suite = Suite::Modern;
    let (mut d, client) = holding_broker_scrip(suite, movable_clock, 1_000).await;
    let (m, c) = parties(&d);
    let broker_keys = broker_keys(suite);
    let b0 = wallet(&mut d).broker_scrip().unwrap().scrip.id();

    let (mut deliveries, tx) = announce_exchange(&mut d, &client, &m, 700).await;
    assert_eq!(wallet(&mut d).pending().count(), 1, "the exchange is open");
    // Nothing is due yet: a tick publishes nothing to C.
    d.tick_broker().await.unwrap();
    assert!(
        collect_deliveries(&mut deliveries, 1, Duration::ZERO)
            .await
            .is_empty()
    );

    let late = NOW.saturating_add_secs(24 * 3600);
    MOVABLE_NOW.store(late.get(), Ordering::SeqCst);
    d.tick_broker().await.unwrap();
    let got = collect_deliveries(&mut deliveries, 1, TIMEOUT).await;
    assert_eq!(got.len(), 1, "the NOK ChangeBrokerScrip");
    let x4: ChangeBrokerScripX4 = sealed_body(&got[0], c.keys, broker_keys);
    let Decision::Nok(reason) = &x4.outcome else {
        panic!("expected NOK, got {:?}", x4.outcome)
    };
    assert_eq!(reason.error_code(), Some(ErrorCode::DeadlinePassed));
    let w = wallet(&mut d);
    w.handle_reply(&got[0], late).unwrap();
    assert_eq!(w.pending().count(), 0, "the tx ended");
    let held = w.broker_scrip().unwrap();
    assert_eq!((held.scrip.id(), held.scrip.value()), (b0, amount(1_000)));

    stop_and_check(&mut d).await;
    let state = d.net.broker().unwrap().state();
    assert_eq!(
        state.live.get(&b0).map(|l| l.state),
        Some(shared::node::ScripState::Live),
        "B0 Live again at the broker"
    );
    assert_eq!(
        state.exchanges[&tx].state,
        broker::core::ExchangeState::Expired
    );
    assert_eq!(state.balance(&Account::Bank(c.pan.clone())), 9_000);
    assert_eq!(state.balance(&Account::FloatBroker), 1_000);
    // The bytes C got are the ones stored for TransactionStatus.
    assert_eq!(
        state.outbox.frames(&tx, &c.uid()).last(),
        Some(&got[0].to_vec())
    );
}
