//! The honest customer's latency under each flood of protocol.md section 10, in process:
//! the broker and a merchant in their actor shells on the memory bus
//! (`peerscrip_tests::deployment`), the honest customer's real wallet buying a tea (6.3) or
//! topping up its VendorScrip (6.5) through `customer_cli::client`, and the attacker's frames ([`Forger`]) published on the
//! same bus. A benchmark, not a test: `cargo bench -p tests --bench abuse`; run without
//! `--bench` (as `cargo test --all-targets` does), it does nothing.
//!
//! For each flood it prints the median time of the honest operation the flood competes
//! with (a tea, 6.3, or for the exchange flood at the merchant a top-up, 6.5, as
//! `tests/tests/abuse.rs` measures) without and with the flood and their
//! ratio ([`ratio`]: measured in the same run, so it reads as a ratio rather than an
//! absolute number on a machine nobody else has). Section 10's bound is a ratio of at most
//! 2; `tests/tests/abuse.rs` asserts it through the daemons on NATS. The nodes run their
//! default quotas here (the bench measures what a deployment gets by default); the
//! frames a node does not answer on the memory bus (no reply subject) still cost it what
//! checking them costs.
//!
//! The same attacks as `tests/tests/abuse.rs`: junk at the broker (garbage, bit-flipped
//! signed frames, made-up senders, junk registrations), validly signed 6.3 announcements
//! never completed, 6.2 notices never followed, a request-rate flood of
//! `TransactionStatus`, and 6.2 step 2 with no notice at the merchant.
//! `PEERSCRIP_BENCH_K=N` changes how many operations each median is of (default 9).

use std::time::Duration;

use bytes::Bytes;
use customer_cli::Wallet;
use customer_cli::client::{Client, collect_deliveries};
use merchant::core::catalogue::Item;
use peerscrip_tests::attacker::{
    BusSink, Flood, Forger, Latency, Pace, bit_flipped, garbage, random_sender, ratio, seeded,
    throwaway_key,
};
use peerscrip_tests::deployment::Deployment;
use peerscrip_tests::network::{NOW, NetworkSpec, broker_keys};
use rand::RngExt as _;
use shared::bus::{MemoryBus, Subject};
use shared::wire::Label;
use shared::wire::bodies::{
    OrderId, OrderInfo, PublicKeyRequestX0, PurchaseInitiatedX0, TransactionStatusBody,
};
use shared::{Amount, KeyPair, Nonce, Suite, TxId, UnixSecs};

const SUITE: Suite = Suite::Paper;
const HONEST: usize = 0;
const ATTACKER: usize = 1;
const TEA: u64 = 450;

fn clock() -> UnixSecs {
    NOW
}

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

fn main() {
    if !std::env::args().any(|a| a == "--bench") {
        println!("abuse is a benchmark: run it with `cargo bench -p tests --bench abuse`");
        return;
    }
    let k = std::env::var("PEERSCRIP_BENCH_K")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(9);
    actix_rt::System::new().block_on(run(k));
}

/// The deployment, the honest customer ready to buy, and each flood in turn.
async fn run(k: usize) {
    let mut spec = NetworkSpec::new(SUITE, 1, 2, amount(0));
    spec.deposits = vec![amount(1_000_000), amount(0)];
    spec.catalogues = vec![vec![Item::new("tea", "Green tea, 100 g", amount(TEA))]];
    let mut d = Deployment::in_memory(&spec).expect("the network");
    d.serve_broker(clock).await.expect("the broker serves");
    d.serve_merchant(0, clock)
        .await
        .expect("the merchant serves");
    let client = d.client(HONEST).await.expect("the honest client");
    let merchant = d.net.merchants[0].party.clone();
    {
        let w = d.net.wallet_mut(HONEST).expect("the honest wallet");
        let out = w
            .obtain_broker_scrip(amount(950_000), NOW)
            .expect("6.1 step 1");
        client.send(w, out, NOW).await.expect("6.1");
        exchange(&client, w, merchant.uid(), amount(900_000)).await;
    }
    let attacker = d.net.customers[ATTACKER].party.clone();
    let forger = Forger::new(
        attacker.keys.clone(),
        attacker.account_id(),
        broker_keys(SUITE).public().clone(),
    );
    let bus = d.customer_bus(ATTACKER).await.expect("the attacker's bus");
    let (broker, to_merchant) = (d.subjects.broker(), d.subjects.merchant(&merchant.uid()));

    let floods: Vec<(&str, Op, Subject, Vec<Bytes>)> = vec![
        (
            "3,000 junk frames at the broker",
            Op::Buy,
            broker.clone(),
            junk(&forger, merchant.uid()),
        ),
        (
            "300 signed PurchaseInitiated never completed",
            Op::Buy,
            broker.clone(),
            announcements(&forger, merchant.uid()),
        ),
        (
            "300 VendorScripNotice never followed",
            Op::Buy,
            broker.clone(),
            notices(&forger, merchant.uid()),
        ),
        (
            "400 signed TransactionStatus",
            Op::Buy,
            broker,
            statuses(&forger),
        ),
        (
            "200 VendorScripRequest with no notice at the merchant",
            Op::TopUp,
            to_merchant,
            exchanges(&forger, merchant.keys),
        ),
    ];
    let mut results: Vec<(&str, Op, Latency)> = Vec::new();
    for (what, op, subject, frames) in floods {
        let pace = Pace {
            batch: 50,
            every: Duration::from_millis(20),
            max: frames.len(),
        };
        let sink = BusSink {
            bus: bus.clone(),
            subject,
        };
        let w = d.net.wallet_mut(HONEST).expect("the honest wallet");
        let latency = ratio(
            what,
            k,
            async || match op {
                Op::Buy => buy_tea(&client, w, merchant.uid()).await,
                Op::TopUp => top_up(&client, w, merchant.uid()).await,
            },
            || Flood::start(sink, frames, pace),
            50,
        )
        .await;
        results.push((what, op, latency));
        // Let the node finish the flood's backlog before the next one is measured.
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    println!(
        "\nthe honest operation's latency under each flood, median of {k} (section 10: ratio ≤ 2)"
    );
    for (what, op, l) in &results {
        println!(
            "  {what:<55} {:<12} {:>10.2?} → {:>10.2?}  ratio {:>6.2}",
            op.name(),
            l.unloaded,
            l.loaded,
            l.ratio
        );
    }
    d.stop().await.expect("the nodes stop");
}

/// The honest operation measured under a flood: the one the attack slows, if any.
#[derive(Clone, Copy, Debug)]
enum Op {
    /// A tea (6.3): the broker's step 1 and the merchant's step 2.
    Buy,
    /// A top-up of the merchant's VendorScrip (6.5): both nodes and the merchant's
    /// requests to the broker, which an exchange flood at the merchant competes with.
    TopUp,
}

impl Op {
    fn name(self) -> &'static str {
        match self {
            Op::Buy => "6.3 purchase",
            Op::TopUp => "6.5 top-up",
        }
    }
}

/// 6.5 of 0.01 through the running nodes: the broker's change and the merchant's V1 taken.
async fn top_up(client: &Client<MemoryBus>, w: &mut Wallet, merchant: shared::Uid) {
    let mut deliveries = client
        .subscribe_deliveries(&w.uid())
        .await
        .expect("the peer subject");
    let out = w
        .top_up_vendor_scrip(merchant, amount(1), NOW)
        .expect("6.5 step 1");
    client.send(w, out, NOW).await.expect("6.5 step 1");
    for frame in collect_deliveries(&mut deliveries, 2, Duration::from_secs(30)).await {
        w.handle_reply(&frame, NOW).expect("a delivery of 6.5");
    }
    assert_eq!(w.pending().count(), 0, "6.5 ended");
}

/// 6.2 of `value` through the running nodes: both deliveries taken.
async fn exchange(
    client: &Client<MemoryBus>,
    w: &mut Wallet,
    merchant: shared::Uid,
    value: Amount,
) {
    let mut deliveries = client
        .subscribe_deliveries(&w.uid())
        .await
        .expect("the peer subject");
    let out = w
        .obtain_vendor_scrip(merchant, value, NOW)
        .expect("6.2 step 1");
    let tx = out.tx;
    client.send(w, out, NOW).await.expect("6.2 step 1");
    let step2 = w.resend(tx, Label::VendorScripRequest).expect("6.2 step 2");
    client.publish(&step2).await.expect("6.2 step 2");
    for frame in collect_deliveries(&mut deliveries, 2, Duration::from_secs(30)).await {
        w.handle_reply(&frame, NOW).expect("a delivery of 6.2");
    }
    assert_eq!(w.pending().count(), 0, "6.2 ended");
}

/// One tea (6.3): step 1 to the broker, step 2 to the merchant, both answered.
async fn buy_tea(client: &Client<MemoryBus>, w: &mut Wallet, merchant: shared::Uid) {
    let order = OrderInfo {
        item_id: "tea".into(),
        name: "Green tea, 100 g".into(),
        unit_price: amount(TEA),
        quantity: 1,
        order_id: OrderId::random(),
    };
    let (initiated, purchase) = w.buy_item(merchant, order, NOW).expect("6.3");
    client.send(w, initiated, NOW).await.expect("6.3 step 1");
    client.send(w, purchase, NOW).await.expect("6.3 step 2");
}

/// Garbage, the attacker's signed frames with a bit flipped, made-up senders and junk
/// registrations, 750 of each.
fn junk(forger: &Forger, merchant: shared::Uid) -> Vec<Bytes> {
    let mut rng = seeded(3);
    let throwaways: Vec<KeyPair> = (0..4).map(|_| throwaway_key(SUITE)).collect();
    (0..3_000)
        .map(|i| match i % 4 {
            0 => garbage(&mut rng, 512),
            1 => {
                let body = PublicKeyRequestX0 {
                    target: merchant,
                    nonce: Nonce(rng.random()),
                };
                let signed = forger.signed(TxId(rng.random()), broker_keys(SUITE).uid(), &body);
                bit_flipped(&mut rng, &signed)
            }
            2 => random_sender(&mut rng, forger.keys()),
            _ => forger.junk_registration(
                &mut rng,
                &throwaways[i % 4],
                &throwaways[(i + 1) % 4],
                i % 8 == 3,
            ),
        })
        .collect()
}

/// 6.3 step 1 of 10,000,000.00, 300 times, never followed by a purchase.
fn announcements(forger: &Forger, merchant: shared::Uid) -> Vec<Bytes> {
    let mut rng = seeded(4);
    (0..300)
        .map(|_| {
            let body = PurchaseInitiatedX0 {
                merchant,
                value: amount(1_000_000_000),
            };
            forger.signed(TxId(rng.random()), broker_keys(SUITE).uid(), &body)
        })
        .collect()
}

/// 6.2 step 1 on 300 fresh txs, never followed by step 2.
fn notices(forger: &Forger, merchant: shared::Uid) -> Vec<Bytes> {
    let mut rng = seeded(2);
    (0..300)
        .map(|_| forger.vendor_scrip_notice(&mut rng, merchant).1)
        .collect()
}

/// `TransactionStatus` of 400 random txs.
fn statuses(forger: &Forger) -> Vec<Bytes> {
    let mut rng = seeded(5);
    (0..400)
        .map(|_| {
            let tx = TxId(rng.random());
            forger.signed(tx, broker_keys(SUITE).uid(), &TransactionStatusBody { tx })
        })
        .collect()
}

/// 6.2 step 2 on 200 fresh txs with no notice at the broker, half with a broker part that
/// does not open.
fn exchanges(forger: &Forger, merchant: &KeyPair) -> Vec<Bytes> {
    let mut rng = seeded(1);
    (0..200)
        .map(|i| {
            forger
                .vendor_scrip_request(&mut rng, merchant.public(), amount(1_000_000), i % 2 == 1)
                .1
        })
        .collect()
}
