//! The daemons as an operator runs them: the real `peerscrip-broker` and
//! `peerscrip-merchant` binaries, configured by `ops/deploy/broker.toml` and
//! `ops/deploy/merchant.toml` with flags on top, on a real `nats-server` from the harness,
//! driven by the customer's real wallet library (`customer_cli::Wallet` and
//! `customer_cli::client` over `NatsBus`).
//!
//! How the binaries are found: `peerscrip_tests::binaries::built` builds them once per test
//! run with the cargo that runs the tests, into the same target directory and profile.
//!
//! The processes are run by `peerscrip_tests::processes` ([`Daemon`]): each wait is
//! bounded, and a wait that runs out fails the test with the daemon's log. Nothing asserts
//! on a duration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use broker::core::Config as BrokerConfig;
use broker::node::BrokerNode;
use bytes::Bytes;
use customer_cli::client::{Client, ClientError, collect_deliveries};
use customer_cli::core::HistoryEntry;
use customer_cli::{Outgoing, Wallet};
use futures::StreamExt as _;
use merchant::core::Config as MerchantConfig;
use merchant::node::MerchantNode;
use peerscrip_tests::NatsServer;
use peerscrip_tests::deployment::{OnNats, Transport as _};
use peerscrip_tests::export_stream::{ExportStream, assert_linked, log_rows, node_subject};
use peerscrip_tests::processes::{Daemon, PATIENCE};
use peerscrip_tests::site::Site;
use shared::UnixSecs;
use shared::bus::{NatsBus, Subjects};
use shared::events::Account;
use shared::wire::bodies::{OrderId, OrderInfo};
use shared::wire::{Frame, Label};
use shared::{AccountId, Amount, KeyPair, Mint, Pan, PanSecret, Suite, fixtures};

const SUITE: Suite = Suite::Paper;
const BROKER: usize = 1;
const MERCHANT: usize = 2;
const CUSTOMER: usize = 0;
const PAN_C: &str = "GR1601101250000000012300695";
const SECRET_C: &str = "correct horse battery staple";
/// The PAN of `ops/deploy/merchant.toml`.
const PAN_M: &str = "GR9608100010000001234567890";
const SECRET_M: &str = "merchant account secret for tests";
/// How long the wallet waits for one reply.
const TIMEOUT: Duration = Duration::from_secs(10);
/// The tea of `ops/deploy/catalogue.toml`.
const TEA_PRICE: u64 = 450;

fn amount(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

fn deploy() -> PathBuf {
    peerscrip_tests::binaries::workspace().join("ops/deploy")
}

/// Writes `keys` as `keys/<who>/key.pem` and `key.pub.pem` of `site`, as `peerscrip-ops
/// keygen` does: the private key's file.
fn write_keys(site: &Site, who: &str, keys: &KeyPair) -> PathBuf {
    let key = site.key(who);
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, keys.to_pkcs8_pem(None).unwrap().as_bytes()).unwrap();
    std::fs::write(
        site.public_key(who),
        keys.public().to_pem().unwrap().as_bytes(),
    )
    .unwrap();
    key
}

/// A deployment (`peerscrip_tests::site`) of fixture keys, the bank accounts opened at the
/// broker (its operator's work, on the stopped broker's file).
struct Deployment {
    site: Site,
    broker_keys: KeyPair,
    merchant_keys: KeyPair,
    customer_keys: KeyPair,
}

impl Deployment {
    fn new() -> Deployment {
        let site = Site::new(SUITE);
        let broker_keys = fixtures::keypair(SUITE, BROKER).clone();
        let merchant_keys = fixtures::keypair(SUITE, MERCHANT).clone();
        let customer_keys = fixtures::keypair(SUITE, CUSTOMER).clone();
        write_keys(&site, "broker", &broker_keys);
        write_keys(&site, "merchant", &merchant_keys);
        let d = Deployment {
            site,
            broker_keys,
            merchant_keys,
            customer_keys,
        };
        // The bank operator opens both accounts and funds the customer's, on the broker's
        // file before the daemon first starts (with the root key the daemon will read).
        std::fs::create_dir_all(d.broker_dir()).unwrap();
        let mut node = d.open_broker();
        let now = system_clock();
        node.open_account(
            &Pan::new(PAN_C),
            &PanSecret::new(SECRET_C),
            UnixSecs::new(now),
        )
        .unwrap();
        node.open_account(
            &Pan::new(PAN_M),
            &PanSecret::new(SECRET_M),
            UnixSecs::new(now),
        )
        .unwrap();
        node.deposit(&Pan::new(PAN_C), amount(10_000), UnixSecs::new(now))
            .unwrap();
        node.close().unwrap();
        d
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.site.path(rel)
    }

    fn broker_dir(&self) -> PathBuf {
        self.site.data("broker")
    }

    fn broker_log(&self) -> PathBuf {
        self.broker_dir().join("broker.redb")
    }

    fn merchant_dir(&self) -> PathBuf {
        self.site.data("merchant")
    }

    fn broker(&self, server: &NatsServer) -> Daemon {
        self.broker_with(server, &[])
    }

    fn broker_with(&self, server: &NatsServer, flags: &[&str]) -> Daemon {
        let mut command = self.site.broker_command(&server.url());
        command.args(flags);
        Daemon::start("peerscrip-broker", command, "broker serving")
    }

    fn merchant(&self, server: &NatsServer) -> Daemon {
        self.merchant_with(server, &[])
    }

    /// The merchant daemon of `ops/deploy/merchant.toml`'s account, its PANSecret given in
    /// `PEERSCRIP_PAN_SECRET`.
    fn merchant_command(&self, server: &NatsServer) -> Command {
        let mut command = self.site.merchant_command("merchant", &server.url());
        command.env("PEERSCRIP_PAN_SECRET", SECRET_M);
        command
    }

    fn merchant_with(&self, server: &NatsServer, flags: &[&str]) -> Daemon {
        let mut command = self.merchant_command(server);
        command.args(["--request-timeout-secs", "5"]).args(flags);
        Daemon::start("peerscrip-merchant", command, "merchant serving")
    }

    /// Both daemons serving on `server`, and the customer's wallet and client.
    async fn start(&self, server: &NatsServer) -> (Daemon, Daemon, Wallet, Client<NatsBus>) {
        let broker = self.broker(server);
        let merchant = self.merchant(server);
        let (w, client) = self.customer(server).await;
        (broker, merchant, w, client)
    }

    /// The broker's file, opened as the daemon opens it: chain verified, replayed, tables
    /// compared with the replay (`BrokerNode::open` refuses a difference).
    fn open_broker(&self) -> BrokerNode {
        let root =
            shared::daemon::load_or_create_root_key(&self.broker_dir().join("root.key")).unwrap();
        BrokerNode::open(
            self.broker_log(),
            self.broker_keys.clone(),
            root,
            BrokerConfig::new(SUITE),
        )
        .unwrap()
    }

    /// The merchant's file, opened as the daemon opens it (`MerchantNode::open` verifies
    /// the chain and compares the tables with the replay).
    fn open_merchant(&self) -> MerchantNode {
        let root =
            shared::daemon::load_or_create_root_key(&self.merchant_dir().join("root.key")).unwrap();
        let catalogue =
            merchant::config::catalogue::load(&deploy().join("catalogue.toml")).unwrap();
        let pan = Pan::new(PAN_M);
        let config = MerchantConfig::new(
            Mint::new(SUITE, self.merchant_keys.uid(), root),
            catalogue,
            self.broker_keys.uid(),
            pan.clone(),
            AccountId::derive(SUITE, &PanSecret::new(SECRET_M), &pan),
        );
        MerchantNode::open(
            self.merchant_dir().join("merchant.redb"),
            self.merchant_keys.clone(),
            config,
            [self.broker_keys.public().clone()],
        )
        .unwrap()
    }

    /// The customer's wallet (created on first use) and its client on its own NATS
    /// connection, replies under `_INBOX.<uid>`.
    async fn customer(&self, server: &NatsServer) -> (Wallet, Client<NatsBus>) {
        let path = self.path("wallet.redb");
        let w = if path.exists() {
            Wallet::open(&path, self.customer_keys.clone()).unwrap()
        } else {
            let mut w = Wallet::create(
                &path,
                self.customer_keys.clone(),
                self.broker_keys.public(),
                UnixSecs::new(system_clock()),
            )
            .unwrap();
            w.link_account(
                Pan::new(PAN_C),
                &PanSecret::new(SECRET_C),
                UnixSecs::new(system_clock()),
            )
            .unwrap();
            w
        };
        let nats = OnNats { url: server.url() };
        let bus = nats
            .join(&self.customer_keys.uid(), "customer")
            .await
            .unwrap();
        let client = Client::new(bus, Subjects::default(), self.broker_keys.uid(), TIMEOUT, 3);
        (w, client)
    }
}

/// Sends `out` and, while nobody answers (a node or the server restarting), sends the same
/// request again ([`Wallet::resend`]: same bodies, so a node that did get it answers with
/// its stored reply, protocol.md section 7), until [`PATIENCE`] runs out.
async fn send_until_served(
    client: &Client<NatsBus>,
    w: &mut Wallet,
    out: Outgoing,
) -> HistoryEntry {
    let (tx, label) = (out.tx, out.label);
    let start = Instant::now();
    let mut out = out;
    loop {
        match client.send(w, out, UnixSecs::new(system_clock())).await {
            Ok(done) => return done,
            Err(ClientError::NoReply { .. }) if start.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(200)).await;
                out = w.resend(tx, label).unwrap();
            }
            Err(e) => panic!("{label:?} of tx {tx}: {e}"),
        }
    }
}

/// 6.0, 6.0b of the merchant's key, 6.1 of 10.00 and 6.2 of 10.00 of the merchant's
/// VendorScrip: the customer ready to buy.
async fn register_and_get_vendor_scrip(d: &Deployment, w: &mut Wallet, client: &Client<NatsBus>) {
    register_and_get_broker_scrip(d, w, client).await;
    exchange_for_vendor_scrip(d, w, client, TIMEOUT, |_| Then::GoOn).await;
}

/// 6.0 and 6.1 of 10.00 of BrokerScrip: the tx of 6.1.
async fn register_and_buy_broker_scrip(w: &mut Wallet, client: &Client<NatsBus>) -> shared::TxId {
    let now = system_clock();
    let register = w.register(UnixSecs::new(now)).unwrap();
    client.send(w, register, UnixSecs::new(now)).await.unwrap();
    let obtain = w
        .obtain_broker_scrip(amount(1_000), UnixSecs::new(now))
        .unwrap();
    let tx = obtain.tx;
    client.send(w, obtain, UnixSecs::new(now)).await.unwrap();
    tx
}

/// 6.0, 6.0b of the merchant's key and 6.1 of 10.00 of BrokerScrip.
async fn register_and_get_broker_scrip(d: &Deployment, w: &mut Wallet, client: &Client<NatsBus>) {
    let now = system_clock();
    for out in [
        w.register(UnixSecs::new(now)).unwrap(),
        w.request_public_key(d.merchant_keys.uid(), UnixSecs::new(now))
            .unwrap(),
        w.obtain_broker_scrip(amount(1_000), UnixSecs::new(now))
            .unwrap(),
    ] {
        client.send(w, out, UnixSecs::new(now)).await.unwrap();
    }
}

/// The moments of 6.2 at which a test may stop or start a node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Moment {
    /// Step 1 answered (the exchange opened at the broker), step 2 not yet sent.
    BeforeStep2,
    /// Step 2 sent to the merchant, the customer not yet waiting for its deliveries.
    AfterStep2,
}

/// What the customer does after a [`Moment`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Then {
    /// Go on.
    GoOn,
    /// Send step 2 again (the same bodies, [`Wallet::resend`]), as the wallet does when the
    /// deliveries do not come.
    SendStep2Again,
}

/// 6.2 of all 10.00 of BrokerScrip for the merchant's VendorScrip; `at` runs at each
/// [`Moment`]; the customer then waits up to `wait` for the broker's change and the
/// merchant's V0.
async fn exchange_for_vendor_scrip(
    d: &Deployment,
    w: &mut Wallet,
    client: &Client<NatsBus>,
    wait: Duration,
    mut at: impl FnMut(Moment) -> Then,
) {
    let now = system_clock();
    let mut deliveries = client
        .subscribe_deliveries(&d.customer_keys.uid())
        .await
        .unwrap();
    let out = w
        .obtain_vendor_scrip(d.merchant_keys.uid(), amount(1_000), UnixSecs::new(now))
        .unwrap();
    let tx = out.tx;
    client.send(w, out, UnixSecs::new(now)).await.unwrap();
    for moment in [Moment::BeforeStep2, Moment::AfterStep2] {
        if at(moment) == Then::SendStep2Again || moment == Moment::BeforeStep2 {
            let step2 = w.resend(tx, Label::VendorScripRequest).unwrap();
            client.publish(&step2).await.unwrap();
        }
    }
    let got = collect_deliveries(&mut deliveries, 2, wait).await;
    assert_eq!(got.len(), 2, "the broker's change and the merchant's V0");
    for frame in &got {
        w.handle_reply(frame, UnixSecs::new(system_clock()))
            .unwrap();
    }
    assert_eq!(
        w.scrip(d.merchant_keys.uid()).unwrap().scrip.value(),
        amount(1_000)
    );
    assert_eq!(w.pending().count(), 0, "tx {tx} ended");
}

/// One tea (6.3): the order and its two saved steps (1 to the broker, 2 to the merchant).
fn order_tea(d: &Deployment, w: &mut Wallet) -> (Outgoing, Outgoing) {
    let order = OrderInfo {
        item_id: "tea".into(),
        name: "Green tea, 100 g".into(),
        unit_price: amount(TEA_PRICE),
        quantity: 1,
        order_id: OrderId::random(),
    };
    w.buy_item(d.merchant_keys.uid(), order, UnixSecs::new(system_clock()))
        .unwrap()
}

/// One tea (6.3) through the daemons: both steps sent and answered. The purchase's tx.
async fn buy_tea(d: &Deployment, w: &mut Wallet, client: &Client<NatsBus>) -> shared::TxId {
    let (initiated, purchase) = order_tea(d, w);
    let tx = initiated.tx;
    client
        .send(w, initiated, UnixSecs::new(system_clock()))
        .await
        .unwrap();
    client
        .send(w, purchase, UnixSecs::new(system_clock()))
        .await
        .unwrap();
    tx
}

/// The value of the customer's VendorScrip of the merchant.
fn vendor_scrip(d: &Deployment, w: &Wallet) -> Amount {
    w.scrip(d.merchant_keys.uid()).unwrap().scrip.value()
}

/// SIGTERM to both daemons: each exits 0, and after `purchases` teas the books add up
/// and replay ([`check_books`]).
fn stop_cleanly(d: &Deployment, mut merchant: Daemon, mut broker: Daemon, purchases: u64) {
    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    check_books(d, purchases);
}

/// The broker's NOK of `tx`, by its deadline, is the one delivery the customer gets: the
/// wallet takes it and the tx ends.
async fn nok_by_the_deadline(
    w: &mut Wallet,
    deliveries: &mut <NatsBus as shared::bus::Bus>::Subscription,
    tx: shared::TxId,
) {
    let got = collect_deliveries(deliveries, 1, TIMEOUT).await;
    assert_eq!(got.len(), 1, "the broker's NOK by the deadline");
    w.handle_reply(&got[0], UnixSecs::new(system_clock()))
        .unwrap();
    assert_eq!(w.pending().count(), 0, "tx {tx} ended");
}

/// Asserts that the (stopped) broker's books add up and its log holds an event of `tx`
/// of the kind `is` picks (`what` names it).
fn assert_logged(
    d: &Deployment,
    tx: shared::TxId,
    is: fn(&broker::core::Kind) -> bool,
    what: &str,
) {
    let node = d.open_broker();
    node.state().check_conserved().unwrap();
    assert!(
        node.log()
            .iter()
            .unwrap()
            .map(Result::unwrap)
            .any(|e| e.tx == tx && is(&e.kind.kind)),
        "{what} of tx {tx}"
    );
    node.close().unwrap();
}

/// After `purchases` teas from 10.00 of VendorScrip: the broker's and merchant's files
/// verify and replay to their tables, money is conserved and where it should be.
fn check_books(d: &Deployment, purchases: u64) {
    let broker = d.open_broker();
    let state = broker.state();
    assert_eq!(state.check_conserved(), Ok(()));
    assert_eq!(state.balance(&Account::Bank(Pan::new(PAN_C))), 9_000);
    assert_eq!(state.balance(&Account::Bank(Pan::new(PAN_M))), 1_000);
    assert_eq!(state.balance(&Account::FloatBroker), 0);
    assert_eq!(
        state.memos.get(&d.merchant_keys.uid()),
        Some(&i128::from(1_000 - purchases * TEA_PRICE)),
        "the memo float of the merchant: issued less what purchases paid"
    );
    assert_eq!(
        state.purchases.values().filter(|p| p.recorded).count() as u64,
        purchases,
        "steps 1 and 5 matched at the broker for every purchase"
    );
    broker.close().unwrap();
    let merchant = d.open_merchant();
    let books = merchant.state().tables.books;
    assert_eq!(books.issued, amount(1_000));
    assert_eq!(books.paid, amount(purchases * TEA_PRICE));
    assert_eq!(
        merchant.state().live_value().unwrap(),
        amount(1_000 - purchases * TEA_PRICE)
    );
    assert!(merchant.pending_reports().is_empty());
    merchant.close().unwrap();
}

/// The customer's journey through both daemons, a NATS restart in the middle that neither
/// daemon is restarted for, and SIGTERM: exit status 0 and logs that verify.
#[actix_rt::test]
async fn a_purchase_survives_a_nats_restart_and_sigterm_stops_both_daemons_cleanly() {
    let mut server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let mut broker = d.broker(&server);
    let mut merchant = d.merchant_with(&server, &["--log-format", "json"]);
    let (mut w, client) = d.customer(&server).await;
    register_and_get_vendor_scrip(&d, &mut w, &client).await;

    let mut purchases = vec![buy_tea(&d, &mut w, &client).await];
    merchant.wait_for("the broker acknowledged the report", 1);

    server.restart().expect("restart nats-server");
    let (initiated, purchase) = order_tea(&d, &mut w);
    purchases.push(initiated.tx);
    send_until_served(&client, &mut w, initiated).await;
    send_until_served(&client, &mut w, purchase).await;
    merchant.wait_for("the broker acknowledged the report", 2);
    assert_eq!(vendor_scrip(&d, &w), amount(1_000 - 2 * TEA_PRICE));
    assert!(broker.is_running() && merchant.is_running());

    let status = merchant.terminate();
    assert_eq!(status.code(), Some(0), "{}", merchant.log());
    let status = broker.terminate();
    assert_eq!(status.code(), Some(0), "{}", broker.log());
    assert_eq!(broker.count("broker stopped; log closed"), 1);
    check_books(&d, 2);
    // The merchant's log (JSON here) names each purchase's tx on the line of its report.
    let log = merchant.log();
    for tx in purchases {
        assert!(
            log.lines().any(|l| l.contains("acknowledged the report")
                && l.contains(&format!("\"tx\":\"{tx}\""))),
            "no report line of tx {tx}:\n{log}"
        );
    }
    assert!(
        log.lines().all(|l| l.starts_with('{') && l.ends_with('}')),
        "one JSON object per line:\n{log}"
    );
}

/// SIGKILL of the broker between 6.3's step 1 (recorded at the broker) and step 5 (the
/// broker's Ack of the merchant's report): the broker restarts on its file, the customer
/// completes the purchase, the merchant's report reaches the restarted broker, and the
/// books add up and replay.
#[actix_rt::test]
async fn the_broker_killed_in_the_middle_of_a_purchase_restarts_and_the_purchase_completes() {
    let server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let (mut broker, mut merchant, mut w, client) = d.start(&server).await;
    register_and_get_vendor_scrip(&d, &mut w, &client).await;

    let (initiated, purchase) = order_tea(&d, &mut w);
    client
        .send(&mut w, initiated, UnixSecs::new(system_clock()))
        .await
        .unwrap();
    broker.kill();
    let broker = d.broker(&server);
    send_until_served(&client, &mut w, purchase).await;
    merchant.wait_for("the broker acknowledged the report", 1);
    assert_eq!(vendor_scrip(&d, &w), amount(1_000 - TEA_PRICE));
    assert_eq!(w.pending().count(), 0, "nothing left to reconcile");
    stop_cleanly(&d, merchant, broker, 1);
}

/// SIGKILL of the broker between 6.2's step 1 (the exchange opened at the broker, the
/// BrokerScrip held, protocol.md section 4) and step 3 (the merchant asking the broker to
/// decide): the broker restarts on its file with the exchange still open, decides it when
/// the merchant asks, and the customer ends with its VendorScrip; the books add up and
/// replay.
#[actix_rt::test]
async fn the_broker_killed_in_the_middle_of_an_exchange_restarts_and_the_exchange_completes() {
    let server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let (mut broker, merchant, mut w, client) = d.start(&server).await;
    register_and_get_broker_scrip(&d, &mut w, &client).await;
    exchange_for_vendor_scrip(&d, &mut w, &client, TIMEOUT, |moment| {
        if moment == Moment::BeforeStep2 {
            broker.kill();
            broker = d.broker(&server);
        }
        Then::GoOn
    })
    .await;
    stop_cleanly(&d, merchant, broker, 0);
}

/// SIGKILL of the broker after 6.2's step 1, and step 2 reaching a merchant that has not
/// met the customer while the broker is down: the merchant cannot learn the customer's key
/// (6.0b) and refuses the frame, without remembering the customer as unknown (the broker
/// said nothing of it). The broker restarts on its file with the exchange still open, the
/// customer sends step 2 again (the same bodies, protocol.md section 7), the merchant
/// learns the key and asks the broker (step 3), and the customer ends with its VendorScrip
/// and change; the books add up and replay.
#[actix_rt::test]
async fn a_step_2_refused_while_the_broker_is_down_goes_through_when_sent_again() {
    let server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let (mut broker, mut merchant, mut w, client) = d.start(&server).await;
    register_and_get_broker_scrip(&d, &mut w, &client).await;
    exchange_for_vendor_scrip(&d, &mut w, &client, TIMEOUT, |moment| match moment {
        Moment::BeforeStep2 => {
            broker.kill();
            Then::GoOn
        }
        Moment::AfterStep2 => {
            merchant.wait_for("the sender's key could not be learned", 1);
            broker = d.broker(&server);
            Then::SendStep2Again
        }
    })
    .await;
    assert_eq!(
        merchant.count("learned a customer's key from the broker (6.0b)"),
        1
    );

    assert!(merchant.is_running());
    stop_cleanly(&d, merchant, broker, 0);
}

/// SIGKILL of the broker after 6.2's step 1, at a merchant that knows the customer (its
/// key kept in the merchant's `peers/` from an earlier meeting): step 2 reaches the
/// merchant, whose step 3 to the broker gets no answer and stays pending
/// (`merchant::shell`'s reporter). The broker restarts on its file with the exchange open
/// and its BrokerScrip held (protocol.md section 4); the reporter's next round sends the
/// same step 3 and gets the decision (section 7), and the customer, waiting on its peer
/// subject, gets its change and V0. The books add up and replay.
#[actix_rt::test]
async fn a_step_3_sent_while_the_broker_is_down_is_decided_after_its_restart() {
    let server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let peers = d.merchant_dir().join("peers");
    std::fs::create_dir_all(&peers).unwrap();
    std::fs::write(
        peers.join(format!("{}.pub.pem", d.customer_keys.uid())),
        d.customer_keys.public().to_pem().unwrap().as_bytes(),
    )
    .unwrap();
    let (mut broker, mut merchant, mut w, client) = d.start(&server).await;
    register_and_get_broker_scrip(&d, &mut w, &client).await;
    // The reporter sends again after `REPORT_RETRY` at the latest: wait past it.
    let wait = merchant::shell::REPORT_RETRY + TIMEOUT;
    exchange_for_vendor_scrip(&d, &mut w, &client, wait, |moment| {
        match moment {
            Moment::BeforeStep2 => broker.kill(),
            Moment::AfterStep2 => {
                merchant.wait_for("got no answer; it stays pending", 1);
                broker = d.broker(&server);
            }
        }
        Then::GoOn
    })
    .await;
    assert_eq!(
        merchant.count("learned a customer's key from the broker"),
        0
    );
    stop_cleanly(&d, merchant, broker, 0);
}

/// Lapse through the daemons (protocol.md section 4, docs/adr/0011): a merchant whose
/// VendorScrip lives one second with one second of grace is stopped, and started again
/// after the grace ended; its lapse timer runs at the start, removes the customer's 10.00
/// and its reporter tells the broker, which pays it back from the merchant's bank account
/// to the customer's. Nothing is lost; both logs verify and replay.
#[actix_rt::test]
async fn a_merchant_started_after_a_grace_ended_lapses_the_scrip_and_the_broker_pays_it_back() {
    let server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let short = ["--scrip-lifetime-secs", "1", "--grace-secs", "1"];
    let mut broker = d.broker(&server);
    let mut merchant = d.merchant_with(&server, &short);
    let (mut w, client) = d.customer(&server).await;
    register_and_get_vendor_scrip(&d, &mut w, &client).await;
    assert_eq!(merchant.terminate().code(), Some(0));
    // Past the expiry (1 s) and the grace (1 s) by the wall clock the merchant reads.
    std::thread::sleep(Duration::from_secs(3));

    let mut merchant = d.merchant_with(&server, &short);
    merchant.wait_for("past its renewal grace lapsed", 1);
    merchant.wait_for("the broker acknowledged the report", 1);
    assert_eq!(merchant.terminate().code(), Some(0));
    assert_eq!(broker.terminate().code(), Some(0));

    let node = d.open_broker();
    let state = node.state();
    assert_eq!(state.check_conserved(), Ok(()));
    assert_eq!(state.balance(&Account::Bank(Pan::new(PAN_C))), 10_000);
    assert_eq!(state.balance(&Account::Bank(Pan::new(PAN_M))), 0);
    assert_eq!(state.memos.get(&d.merchant_keys.uid()), Some(&0));
    node.close().unwrap();
    let node = d.open_merchant();
    let books = node.state().tables.books;
    assert_eq!(
        (books.issued, books.withdrawn),
        (amount(1_000), amount(1_000))
    );
    assert_eq!(node.state().live_value().unwrap(), amount(0));
    assert!(node.pending_broker_requests().is_empty());
    node.close().unwrap();
}

/// The length and head of a node's log, to compare before and after.
type Head = (u64, Option<(u64, [u8; 32])>);

fn heads(d: &Deployment) -> (Head, Head) {
    let broker = d.open_broker();
    let b = (broker.log().len().unwrap(), broker.log().head().unwrap());
    broker.close().unwrap();
    let merchant = d.open_merchant();
    let m = (
        merchant.log().len().unwrap(),
        merchant.log().head().unwrap(),
    );
    merchant.close().unwrap();
    (b, m)
}

/// Garbage, an oversized frame and replays of real requests, published by a raw NATS
/// client to the broker's and the merchant's subjects: each gets an error reply, the
/// stored reply (a replay on the customer's inbox) or nothing (a replay on another inbox:
/// a node answers only on its sender's, protocol.md section 3); both daemons stay up and
/// serve the next request; neither log changes.
#[actix_rt::test]
async fn garbage_oversized_and_replayed_frames_change_no_log_and_the_daemons_stay_up() {
    let server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let subjects = Subjects::default();
    let broker_subject = subjects.broker();
    let merchant_subject = subjects.merchant(&d.merchant_keys.uid());
    let raw = async_nats::connect(server.url()).await.unwrap();
    // Capture the customer's requests as an eavesdropper on the server would see them.
    let mut to_broker = raw
        .subscribe(broker_subject.as_str().to_owned())
        .await
        .unwrap();
    let mut to_merchant = raw
        .subscribe(merchant_subject.as_str().to_owned())
        .await
        .unwrap();
    raw.flush().await.unwrap();

    let (mut broker, mut merchant, mut w, client) = d.start(&server).await;
    register_and_get_vendor_scrip(&d, &mut w, &client).await;
    buy_tea(&d, &mut w, &client).await;
    merchant.wait_for("the broker acknowledged the report", 1);

    // The first request of `label` the customer sent that `captured` saw.
    let customer = d.customer_keys.uid();
    let first_request = async |captured: &mut async_nats::Subscriber, label: Label| loop {
        let m = captured.next().await.unwrap();
        if Frame::decode(&m.payload)
            .is_ok_and(|f| f.header.label == label && f.header.sender == customer)
        {
            return m.payload;
        }
    };
    let broker_replay = first_request(&mut to_broker, Label::BrokerScripRequest).await;
    let merchant_replay = first_request(&mut to_merchant, Label::PurchaseRequest).await;

    // The logs as they are now.
    assert_eq!(merchant.terminate().code(), Some(0));
    assert_eq!(broker.terminate().code(), Some(0));
    let before = heads(&d);
    let mut broker = d.broker(&server);
    let mut merchant = d.merchant(&server);

    let ask = |subject: String, payload: Bytes, patience: Duration| {
        let raw = raw.clone();
        async move { tokio::time::timeout(patience, raw.request(subject, payload)).await }
    };
    // The replayer with the customer's inbox prefix (no permissions on this server).
    let as_customer = async_nats::ConnectOptions::new()
        .custom_inbox_prefix(Subjects::default().inbox_prefix(&customer).as_str())
        .connect(server.url())
        .await
        .unwrap();
    // Long enough for a node that answers to answer; a frame with no answer costs this.
    let no_answer = Duration::from_secs(1);
    for subject in [broker_subject.as_str(), merchant_subject.as_str()] {
        // Garbage: no frame to answer under, so no answer; an oversized message is dropped
        // before any decoding (protocol.md section 3).
        for payload in [
            Bytes::from_static(b"\x00\xffnot a frame at all"),
            Bytes::from(vec![7u8; 70 * 1024]),
        ] {
            match ask(subject.to_owned(), payload, no_answer).await {
                Err(_) => {}
                Ok(Ok(reply)) => assert_eq!(
                    Frame::decode(&reply.payload).unwrap().header.label,
                    Label::Error
                ),
                Ok(Err(e)) => panic!("{subject}: {e}"),
            }
        }
    }
    // A replay is answered with the stored reply on the customer's inbox, on no other,
    // and appends nothing.
    for (subject, replay, answer) in [
        (&broker_subject, broker_replay, Label::BrokerScripResponse),
        (&merchant_subject, merchant_replay, Label::PurchaseResponse),
    ] {
        assert!(
            ask(subject.as_str().to_owned(), replay.clone(), no_answer)
                .await
                .is_err(),
            "{subject}: no answer on another inbox"
        );
        let reply = tokio::time::timeout(
            TIMEOUT,
            as_customer.request(subject.as_str().to_owned(), replay),
        )
        .await
        .unwrap()
        .unwrap();
        assert_eq!(Frame::decode(&reply.payload).unwrap().header.label, answer);
    }

    // Both still serve: a read at the broker, answered.
    let out = w
        .request_public_key(d.merchant_keys.uid(), UnixSecs::new(system_clock()))
        .unwrap();
    client
        .send(&mut w, out, UnixSecs::new(system_clock()))
        .await
        .unwrap();
    assert!(broker.is_running() && merchant.is_running());
    assert_eq!(merchant.terminate().code(), Some(0));
    assert_eq!(broker.terminate().code(), Some(0));
    assert_eq!(heads(&d), before, "no log changed");
}

/// The broker daemon on `d`'s data directory with `suite` and `key`, which must refuse to
/// start: it exits 1 (the log says why).
fn refused_broker(d: &Deployment, server: &NatsServer, suite: Suite, key: &Path) -> Daemon {
    let command = d.site.broker_command_as(&server.url(), suite, key);
    let mut refused = Daemon::spawn("peerscrip-broker", command);
    assert_eq!(refused.wait_exit().code(), Some(1), "{}", refused.log());
    refused
}

/// A data directory is refused, with the reason and a non-zero exit, by a broker of another
/// suite or with another key (and left as it was: neither is opened), and so is a log
/// altered on disk (its chain or tables do not verify), and a file damaged on disk.
#[actix_rt::test]
async fn a_data_dir_of_another_suite_or_key_and_an_altered_log_are_refused() {
    let server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let mut broker = d.broker(&server);
    assert_eq!(broker.terminate().code(), Some(0));
    let identity = std::fs::read(d.broker_dir().join("node.toml")).unwrap();
    let log = std::fs::read(d.broker_log()).unwrap();

    let modern = write_keys(&d.site, "modern", fixtures::keypair(Suite::Modern, BROKER));
    let other = write_keys(&d.site, "other", fixtures::keypair(SUITE, 3));
    for (suite, key, expected) in [
        (
            Suite::Modern,
            &modern,
            format!(
                "data directory {} was created for suite paper, but this node is configured \
                 for suite modern",
                d.broker_dir().display()
            ),
        ),
        (
            SUITE,
            &other,
            format!(
                "the key's UID {} does not match the UID {} recorded in data directory {}",
                fixtures::keypair(SUITE, 3).uid(),
                d.broker_keys.uid(),
                d.broker_dir().display()
            ),
        ),
    ] {
        let refused = refused_broker(&d, &server, suite, key);
        assert!(refused.log().contains(&expected), "{}", refused.log());
        assert!(
            std::fs::read(d.broker_dir().join("node.toml")).unwrap() == identity,
            "the identity record is unchanged"
        );
        assert!(
            std::fs::read(d.broker_log()).unwrap() == log,
            "the log file is unchanged"
        );
    }

    // A log whose bytes were altered on disk: one digit of the customer's PAN, wherever
    // the file holds it (its event and its table rows).
    let mut altered = log.clone();
    let pan = PAN_C.as_bytes();
    let mut changed = 0;
    for start in 0..altered.len().saturating_sub(pan.len()) {
        if &altered[start..start + pan.len()] == pan {
            altered[start + pan.len() - 1] ^= 0x01;
            changed += 1;
        }
    }
    assert!(changed > 0, "the PAN is in the file");
    std::fs::write(d.broker_log(), &altered).unwrap();
    let refused = refused_broker(&d, &server, SUITE, &d.site.key("broker"));
    assert!(
        refused.log().contains(&format!(
            "cannot open the broker's log {}",
            d.broker_log().display()
        )),
        "{}",
        refused.log()
    );

    // A file damaged outside redb (16 bytes inverted at the start of every 4 KiB page
    // after the header's, so that pages of the committed data are among them, wherever
    // redb put them): refused at open by redb's integrity check, exit 1, never a panic.
    let mut damaged = log.clone();
    for page in damaged.chunks_mut(4096).skip(2) {
        for b in page.iter_mut().take(16) {
            *b = !*b;
        }
    }
    std::fs::write(d.broker_log(), &damaged).unwrap();
    let refused = refused_broker(&d, &server, SUITE, &d.site.key("broker"));
    assert!(refused.log().contains("DB corrupted"), "{}", refused.log());
    assert!(!refused.log().contains("panicked"), "{}", refused.log());
}

/// A merchant whose bank account the broker does not know is refused registration (6.0)
/// on its first start: it exits 1 with the broker's reason and records no registration.
#[actix_rt::test]
async fn a_merchant_with_an_unknown_account_stops_with_the_brokers_refusal() {
    let server = NatsServer::start().expect("start nats-server");
    let d = Deployment::new();
    let mut broker = d.broker(&server);
    let mut command = d.merchant_command(&server);
    command.args(["--pan", "GR0000000000000000000000000"]);
    let mut merchant = Daemon::spawn("peerscrip-merchant", command);
    assert_eq!(merchant.wait_exit().code(), Some(1), "{}", merchant.log());
    assert!(
        merchant
            .log()
            .contains("registration at the broker failed: the broker refused: RegistrationRefused"),
        "{}",
        merchant.log()
    );
    assert!(!d.merchant_dir().join("registered").exists());
    assert!(broker.is_running());
    assert_eq!(broker.terminate().code(), Some(0));
}

/// The NATS credential of the configuration: with the right password (from
/// `PEERSCRIP_NATS_PASSWORD`) the broker connects and serves, with a wrong one it stops at
/// once, saying it could not connect; the password appears in neither log.
#[actix_rt::test]
async fn the_broker_authenticates_with_its_configured_nats_password() {
    let server = NatsServer::start_with_config(
        "authorization { users = [ { user: broker, password: \"right-s3cret\" } ] }\n",
    )
    .expect("start nats-server");
    let d = Deployment::new();
    for (password, serves) in [("wrong-s3cret", false), ("right-s3cret", true)] {
        let mut command = d.site.broker_command(&server.url());
        command
            .args(["--nats-user", "broker"])
            .env("PEERSCRIP_NATS_PASSWORD", password);
        let mut broker = Daemon::spawn("peerscrip-broker", command);
        if serves {
            broker.wait_for("broker serving", 1);
            assert_eq!(broker.terminate().code(), Some(0));
        } else {
            assert_eq!(broker.wait_exit().code(), Some(1), "{}", broker.log());
            assert!(
                broker.log().contains("cannot connect to the NATS server"),
                "{}",
                broker.log()
            );
        }
        assert!(!broker.log().contains("s3cret"), "{}", broker.log());
    }
}

/// 6.5 started while the merchant is away: the customer holds 10.00 of its VendorScrip
/// and 5.00 of BrokerScrip, the merchant is stopped (SIGTERM), and the customer, subscribed
/// to its peer subject, sends step 1 of a top-up of 2.00, which the broker takes (its B0
/// held, its authorization to M published to nobody). Returns the subscription and the tx.
async fn top_up_with_the_merchant_away(
    d: &Deployment,
    w: &mut Wallet,
    client: &Client<NatsBus>,
    mut merchant: Daemon,
) -> (<NatsBus as shared::bus::Bus>::Subscription, shared::TxId) {
    register_and_get_vendor_scrip(d, w, client).await;
    let out = w
        .obtain_broker_scrip(amount(500), UnixSecs::new(system_clock()))
        .unwrap();
    client
        .send(w, out, UnixSecs::new(system_clock()))
        .await
        .unwrap();
    assert!(merchant.terminate().success());

    let deliveries = client
        .subscribe_deliveries(&d.customer_keys.uid())
        .await
        .unwrap();
    let out = w
        .top_up_vendor_scrip(
            d.merchant_keys.uid(),
            amount(200),
            UnixSecs::new(system_clock()),
        )
        .unwrap();
    let tx = out.tx;
    client
        .send(w, out, UnixSecs::new(system_clock()))
        .await
        .unwrap();
    (deliveries, tx)
}

/// A merchant offline during 6.5: the broker takes the customer's top-up, holds
/// B0 in escrow with its deadline and sends the authorization to a merchant nobody serves;
/// at the deadline its timer releases the escrow and tells the customer with a NOK, and B0
/// is live again at its value. Nothing is lost: the books add up at the broker, the wallet
/// has nothing pending.
#[actix_rt::test]
async fn a_merchant_offline_during_a_vendor_top_up_is_ended_by_the_brokers_deadline() {
    let d = Deployment::new();
    let server = NatsServer::start().unwrap();
    let mut broker = d.broker_with(
        &server,
        &["--escrow-window-secs", "2", "--expire-every-secs", "1"],
    );
    let merchant = d.merchant(&server);
    let (mut w, client) = d.customer(&server).await;
    let (mut deliveries, tx) = top_up_with_the_merchant_away(&d, &mut w, &client, merchant).await;
    nok_by_the_deadline(&mut w, &mut deliveries, tx).await;
    assert_eq!(w.broker_scrip().unwrap().scrip.value(), amount(500));
    assert_eq!(vendor_scrip(&d, &w), amount(1_000));

    assert!(broker.terminate().success());
    let released = |k: &broker::core::Kind| matches!(k, broker::core::Kind::EscrowReleased { .. });
    assert_logged(&d, tx, released, "the escrow released");
}

/// Restarted work resumes at once (protocol.md section 7: on restart every node resumes
/// each open tx): a 6.5 top-up whose authorization (step 2) reached no merchant, and whose
/// broker is then SIGKILLed, completes within seconds of both restarts, because the
/// restarted broker re-sends its open authorizations at start rather than at its timer's
/// first period (60 s here, as in the default configuration).
#[actix_rt::test]
async fn a_vendor_top_up_interrupted_by_a_broker_kill_completes_soon_after_the_restart() {
    let d = Deployment::new();
    let server = NatsServer::start().unwrap();
    let mut broker = d.broker(&server);
    let merchant = d.merchant(&server);
    let (mut w, client) = d.customer(&server).await;
    let (mut deliveries, tx) = top_up_with_the_merchant_away(&d, &mut w, &client, merchant).await;
    broker.kill();
    let mut merchant = d.merchant(&server);
    let mut broker = d.broker(&server);

    // Well inside the timer's period: only the re-send at start can finish it in time.
    let within = Duration::from_secs(15);
    assert!(within < broker::shell::EXPIRE_EVERY);
    let got = collect_deliveries(&mut deliveries, 2, within).await;
    assert_eq!(got.len(), 2, "the merchant's V1 and the broker's change");
    for frame in &got {
        w.handle_reply(frame, UnixSecs::new(system_clock()))
            .unwrap();
    }
    assert_eq!(w.pending().count(), 0, "tx {tx} ended");
    assert_eq!(w.broker_scrip().unwrap().scrip.value(), amount(300));
    assert_eq!(vendor_scrip(&d, &w), amount(1_200));

    assert!(merchant.terminate().success());
    assert!(broker.terminate().success());
    let node = d.open_broker();
    let state = node.state();
    assert_eq!(state.check_conserved(), Ok(()));
    assert_eq!(state.balance(&Account::Bank(Pan::new(PAN_C))), 8_500);
    assert_eq!(state.balance(&Account::Bank(Pan::new(PAN_M))), 1_200);
    assert_eq!(state.balance(&Account::FloatBroker), 300);
    assert_eq!(state.memos.get(&d.merchant_keys.uid()), Some(&1_200));
    node.close().unwrap();
    let node = d.open_merchant();
    assert_eq!(node.state().live_value().unwrap(), amount(1_200));
    assert!(node.pending_broker_requests().is_empty());
    node.close().unwrap();
}

/// A tmpfs mounted over a directory for one test (its files moved onto it), unmounted when
/// dropped: a disk small enough to fill. The test needs root, as CI runs: a machine where
/// it cannot mount fails the test, never skips it.
struct Tmpfs {
    dir: PathBuf,
}

impl Tmpfs {
    fn mount_over(dir: &Path, size: &str) -> Tmpfs {
        let aside = dir.with_extension("aside");
        std::fs::rename(dir, &aside).unwrap();
        std::fs::create_dir(dir).unwrap();
        let status = std::process::Command::new("mount")
            .args([
                "-t",
                "tmpfs",
                "-o",
                &format!("size={size},mode=0700"),
                "peerscrip-test",
            ])
            .arg(dir)
            .status()
            .expect("run mount");
        assert!(
            status.success(),
            "cannot mount a tmpfs at {} (this test needs root, as CI runs)",
            dir.display()
        );
        let tmpfs = Tmpfs {
            dir: dir.to_owned(),
        };
        for entry in std::fs::read_dir(&aside).unwrap() {
            let entry = entry.unwrap();
            std::fs::copy(entry.path(), dir.join(entry.file_name())).unwrap();
        }
        std::fs::remove_dir_all(&aside).unwrap();
        tmpfs
    }

    fn filler(&self) -> PathBuf {
        self.dir.join("filler")
    }

    /// Writes a filler file until the file system refuses with "no space left on device".
    fn fill(&self) {
        use std::io::Write as _;
        let mut file = std::fs::File::create(self.filler()).unwrap();
        for chunk in [1 << 16, 1 << 12, 1 << 9, 1] {
            let bytes = vec![0_u8; chunk];
            loop {
                match file.write_all(&bytes) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(28) => break,
                    Err(e) => panic!("filling the tmpfs: {e}"),
                }
            }
        }
    }

    fn free(&self) {
        std::fs::remove_file(self.filler()).unwrap();
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let _ = std::process::Command::new("umount")
            .arg("-l")
            .arg(&self.dir)
            .status();
    }
}

/// A full disk under the broker daemon (protocol.md section 10, "Storage faults"): its data
/// directory is on a small tmpfs that the test fills. The customer's BrokerScrip goes back
/// and forth (6.6, 6.1) until a commit fails: that request is answered `Unavailable` (the
/// wallet keeps it pending), the daemon stays up and says why, and once space is back the
/// same request is served without a restart. Nothing acknowledged is lost: the books add up
/// and replay.
#[actix_rt::test]
async fn a_broker_on_a_full_disk_answers_unavailable_and_serves_again_once_space_is_back() {
    let server = NatsServer::start().unwrap();
    let d = Deployment::new();
    let disk = Tmpfs::mount_over(&d.broker_dir(), "8m");
    let mut broker = d.broker(&server);
    let (mut w, client) = d.customer(&server).await;
    for out in [
        w.register(UnixSecs::new(system_clock())).unwrap(),
        w.obtain_broker_scrip(amount(1_000), UnixSecs::new(system_clock()))
            .unwrap(),
    ] {
        client
            .send(&mut w, out, UnixSecs::new(system_clock()))
            .await
            .unwrap();
    }

    disk.fill();
    let mut served = 0;
    let refused = loop {
        assert!(served < 500, "the full disk never refused a commit");
        let out = if w.broker_scrip().is_some() {
            w.withdraw_broker_scrip(UnixSecs::new(system_clock()))
                .unwrap()
        } else {
            w.obtain_broker_scrip(amount(1_000), UnixSecs::new(system_clock()))
                .unwrap()
        };
        let (tx, label) = (out.tx, out.label);
        match client
            .send(&mut w, out, UnixSecs::new(system_clock()))
            .await
        {
            Ok(_) => served += 1,
            Err(ClientError::Unavailable { .. }) => break (tx, label),
            Err(e) => panic!("{label:?} of tx {tx}: {e}"),
        }
    };
    assert!(broker.is_running(), "the daemon stays up on a full disk");
    broker.wait_for("cannot write its log; answered Unavailable", 1);
    assert_eq!(w.pending().count(), 1, "the refused request stays pending");

    disk.free();
    let start = Instant::now();
    loop {
        let out = w.resend(refused.0, refused.1).unwrap();
        match client
            .send(&mut w, out, UnixSecs::new(system_clock()))
            .await
        {
            Ok(_) => break,
            Err(ClientError::Unavailable { .. }) if start.elapsed() < PATIENCE => {
                tokio::time::sleep(Duration::from_millis(500)).await;
            }
            Err(e) => panic!("after space came back: {e}"),
        }
    }
    assert_eq!(w.pending().count(), 0);
    let held = w.broker_scrip().map_or(0, |b| b.scrip.value().minor());
    assert_eq!(broker.terminate().code(), Some(0));

    let node = d.open_broker();
    let state = node.state();
    assert_eq!(state.check_conserved(), Ok(()));
    assert_eq!(
        state.balance(&Account::Bank(Pan::new(PAN_C))),
        i128::from(10_000 - held),
        "every acknowledged 6.1 and 6.6 is in the log, the refused one once"
    );
    assert_eq!(state.balance(&Account::FloatBroker), i128::from(held));
    node.close().unwrap();
    drop(disk);
}

/// A merchant offline during 6.2: the customer announces the exchange (step 1,
/// its BrokerScrip held, protocol.md section 4) but the merchant is gone; the broker's
/// exchange window (2 s here) ends it (`ExchangeExpired`) and its NOK `ChangeBrokerScrip`,
/// the BrokerScrip back, reaches the customer's peer subject. Nothing pending, nothing lost.
#[actix_rt::test]
async fn a_merchant_offline_during_an_exchange_is_ended_by_the_brokers_deadline() {
    let d = Deployment::new();
    let server = NatsServer::start().unwrap();
    let mut broker = d.broker_with(
        &server,
        &["--exchange-window-secs", "2", "--expire-every-secs", "1"],
    );
    let mut merchant = d.merchant(&server);
    let (mut w, client) = d.customer(&server).await;
    register_and_get_broker_scrip(&d, &mut w, &client).await;
    assert!(merchant.terminate().success());

    let mut deliveries = client
        .subscribe_deliveries(&d.customer_keys.uid())
        .await
        .unwrap();
    let out = w
        .obtain_vendor_scrip(
            d.merchant_keys.uid(),
            amount(400),
            UnixSecs::new(system_clock()),
        )
        .unwrap();
    let tx = out.tx;
    client
        .send(&mut w, out, UnixSecs::new(system_clock()))
        .await
        .unwrap();
    let step2 = w.resend(tx, Label::VendorScripRequest).unwrap();
    client.publish(&step2).await.unwrap();
    nok_by_the_deadline(&mut w, &mut deliveries, tx).await;
    assert_eq!(w.broker_scrip().unwrap().scrip.value(), amount(1_000));
    assert!(w.scrip(d.merchant_keys.uid()).is_none());

    assert!(broker.terminate().success());
    let expired = |k: &broker::core::Kind| matches!(k, broker::core::Kind::ExchangeExpired { .. });
    assert_logged(&d, tx, expired, "the exchange expired");
    let node = d.open_broker();
    let state = node.state();
    assert_eq!(state.balance(&Account::FloatBroker), 1_000);
    assert_eq!(state.balance(&Account::Bank(Pan::new(PAN_M))), 0);
    node.close().unwrap();
}

/// A broker stopped while its NATS server is gone still stops: the last flush gives up
/// after its bound (`ROUND_TRIP_TIMEOUT`) instead of waiting for a reconnection that never
/// comes, and the daemon exits 0 with its log closed and verified.
#[actix_rt::test]
async fn a_broker_stopped_while_its_server_is_down_still_stops_cleanly() {
    let d = Deployment::new();
    let server = NatsServer::start().unwrap();
    let mut broker = d.broker(&server);
    drop(server);
    assert!(broker.terminate().success());
    d.open_broker().close().unwrap();
}

/// The stream of the export tests, and its short duplicate window: created before the
/// broker starts and waited out before each restart, so that only the export's own resume
/// from the stream (not the server's `Nats-Msg-Id` deduplication) keeps a duplicate out.
const EXPORT_STREAM: &str = "AUDIT";
const SHORT_WINDOW: Duration = Duration::from_millis(300);

/// The broker's events as the export reads them from its (closed) log.
fn broker_rows(d: &Deployment) -> Vec<shared::export::Row> {
    log_rows(&d.broker_log(), broker::node::event_name)
}

/// Asserts that the export stream holds the (stopped) broker's whole log, `rows`, on the
/// broker's subject.
async fn assert_broker_exported(
    stream: &ExportStream,
    d: &Deployment,
    rows: &[shared::export::Row],
) {
    stream
        .assert_holds(broker::node::NODE_KIND, &d.broker_keys.uid(), rows)
        .await;
}

/// Waits until the stream holds an event of `tx` (the export runs beside the serving),
/// the broker's events up to it one chain.
async fn wait_exported(stream: &ExportStream, subject: &str, tx: shared::TxId) {
    let start = Instant::now();
    loop {
        let messages = stream.messages(subject).await;
        if messages
            .iter()
            .any(|m| m.header(shared::export::HEADER_TX) == tx.to_string())
        {
            assert_linked::<shared::node::Recorded<broker::core::Kind>>(&messages);
            return;
        }
        assert!(start.elapsed() < PATIENCE, "tx {tx} was not exported");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The event export (protocol.md section 8) from the running daemon: a broker started with
/// `--export-stream` publishes its log while it serves — the bank operator's setup, then
/// the customer's registration and 6.1 — each event once, in order, linked. SIGKILLed
/// right after a reply (its event committed, likely not exported yet) and restarted, it
/// resumes from the stream; after more requests and a clean stop the stream holds exactly
/// the log's events, byte for byte, with their headers.
#[actix_rt::test]
async fn the_brokers_export_stream_holds_every_event_once_in_order_across_a_sigkill() {
    let server = NatsServer::start().expect("start nats-server");
    let stream = ExportStream::on(&server, EXPORT_STREAM).await;
    stream.create(Some(SHORT_WINDOW)).await;
    let d = Deployment::new();
    let subject = node_subject(broker::node::NODE_KIND, &d.broker_keys.uid());
    let export = ["--export-stream", EXPORT_STREAM];
    let mut broker = d.broker_with(&server, &export);
    broker.wait_for("exporting the log's events", 1);
    assert!(broker.log().contains("resumed_after=0"), "{}", broker.log());
    let (mut w, client) = d.customer(&server).await;
    let tx = register_and_buy_broker_scrip(&mut w, &client).await;
    wait_exported(&stream, &subject, tx).await;
    let before_kill = stream.count(&subject).await;
    assert!(
        before_kill > 3,
        "the bank's setup and the customer's requests"
    );

    let now = system_clock();
    let top_up = w
        .top_up_broker_scrip(amount(1_500), UnixSecs::new(now))
        .unwrap();
    let killed_tx = top_up.tx;
    client
        .send(&mut w, top_up, UnixSecs::new(now))
        .await
        .unwrap();
    broker.kill();
    tokio::time::sleep(SHORT_WINDOW * 2).await;

    let mut broker = d.broker_with(&server, &export);
    broker.wait_for("exporting the log's events", 1);
    assert!(
        !broker.log().contains("resumed_after=0"),
        "the restart resumes after the stream's last event:\n{}",
        broker.log()
    );
    wait_exported(&stream, &subject, killed_tx).await;
    let now = system_clock();
    let withdraw = w.withdraw_broker_scrip(UnixSecs::new(now)).unwrap();
    let last_tx = withdraw.tx;
    send_until_served(&client, &mut w, withdraw).await;
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    assert_eq!(broker.count("event export caught up with the log"), 1);

    // The clean stop published the last events before closing the file.
    let rows = broker_rows(&d);
    assert_broker_exported(&stream, &d, &rows).await;
    assert!(rows.iter().any(|r| r.tx == last_tx.to_string()));
}

/// The export never stands in the way of serving: while the stream cannot be created (a
/// stream of another name already takes its subjects, as a misconfigured server would)
/// the broker answers every request and logs that the export is delayed; once the
/// obstacle is gone, the export catches up with every event, once, in order.
#[actix_rt::test]
async fn a_broker_whose_export_stream_is_unavailable_serves_and_exports_once_it_is_back() {
    let server = NatsServer::start().expect("start nats-server");
    let stream = ExportStream::on(&server, EXPORT_STREAM).await;
    let squatter = stream.named("SQUATTER");
    squatter.create(None).await;
    let d = Deployment::new();
    let subject = node_subject(broker::node::NODE_KIND, &d.broker_keys.uid());
    let mut broker = d.broker_with(&server, &["--export-stream", EXPORT_STREAM]);
    broker.wait_for("the event export is delayed; retrying", 1);
    let (mut w, client) = d.customer(&server).await;
    let tx = register_and_buy_broker_scrip(&mut w, &client).await;
    assert_eq!(w.broker_scrip().unwrap().scrip.value(), amount(1_000));
    assert_eq!(broker.count("exporting the log's events"), 0);

    squatter.delete().await;
    broker.wait_for("exporting the log's events", 1);
    wait_exported(&stream, &subject, tx).await;
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    assert_broker_exported(&stream, &d, &broker_rows(&d)).await;
}

/// One stream for the whole deployment: the broker and the merchant, both started with
/// `--export-stream`, export their own logs on their own subjects while the customer buys
/// a tea; after a clean stop each subject is its node's log.
#[actix_rt::test]
async fn a_broker_and_a_merchant_export_their_logs_to_one_stream() {
    let server = NatsServer::start().expect("start nats-server");
    let stream = ExportStream::on(&server, EXPORT_STREAM).await;
    let d = Deployment::new();
    let export = ["--export-stream", EXPORT_STREAM];
    let mut broker = d.broker_with(&server, &export);
    let mut merchant = d.merchant_with(&server, &export);
    let (mut w, client) = d.customer(&server).await;
    register_and_get_vendor_scrip(&d, &mut w, &client).await;
    buy_tea(&d, &mut w, &client).await;
    merchant.wait_for("the broker acknowledged the report", 1);
    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    assert_eq!(merchant.count("event export caught up with the log"), 1);

    let rows = log_rows(
        &d.merchant_dir().join("merchant.redb"),
        merchant::node::event_name,
    );
    assert!(rows.iter().any(|r| r.kind == "PurchaseMade"), "{rows:?}");
    stream
        .assert_holds(merchant::node::NODE_KIND, &d.merchant_keys.uid(), &rows)
        .await;
    assert_broker_exported(&stream, &d, &broker_rows(&d)).await;
    check_books(&d, 1);
}

/// The live export under the deployment's NATS permissions (`peerscrip-ops nats-config`):
/// on a server running the generated configuration, the broker, connected as
/// its own user, exports its log to the stream its grant names (`--export-stream`) and
/// catches up before it stops; with a configuration generated without the grant the server
/// refuses the export, which the broker logs as delayed while it goes on serving.
#[actix_rt::test]
async fn the_live_export_works_within_the_generated_nats_permissions() {
    use ops::nats_config::{ExportGrant, NatsUser, Role};
    let d = Deployment::new();
    let user = NatsUser::new("broker", Role::Broker, d.broker_keys.uid()).unwrap();
    let grant = ExportGrant::new(
        EXPORT_STREAM.to_owned(),
        shared::export::DEFAULT_SUBJECT_PREFIX.to_owned(),
    )
    .unwrap();
    for granted in [true, false] {
        let config = ops::nats_config::server_config_with_export(
            &Subjects::default(),
            std::slice::from_ref(&user),
            granted.then_some(&grant),
        );
        let server = NatsServer::start_with_config(&config).expect("start nats-server");
        let mut command = d.site.broker_command(&server.url());
        command
            .args(["--nats-user", "broker", "--export-stream", EXPORT_STREAM])
            .env("PEERSCRIP_NATS_PASSWORD", user.password.as_str());
        let mut broker = Daemon::start("peerscrip-broker", command, "broker serving");
        if granted {
            assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
            assert_eq!(
                broker.count("event export caught up with the log"),
                1,
                "{}",
                broker.log()
            );
            assert_eq!(broker.count("the event export is delayed"), 0);
        } else {
            broker.wait_for("the event export is delayed; retrying", 1);
            assert!(broker.is_running());
            assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
            assert_eq!(broker.count("event export caught up with the log"), 0);
        }
        assert!(!broker.log().contains(user.password.as_str()));
    }
}

/// The system clock in the unit the wallet's calls take (unix seconds, bare).
fn system_clock() -> u64 {
    shared::runtime::system_clock().get()
}
