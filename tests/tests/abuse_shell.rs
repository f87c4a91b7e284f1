//! The node shells under abuse (protocol.md sections 3 and 10): the real daemons on a real
//! `nats-server` running the configuration `peerscrip-ops nats-config` generates (one user
//! per node, each confined to its subjects), attacked by a customer with a raw NATS
//! client, and the merchant's reporter with a broker that leaves one request unanswered.
//!
//! - A request whose reply subject is another peer's inbox is answered by no node: bob
//!   cannot turn the broker's or the merchant's answers onto alice (section 3).
//! - Frames from made-up senders cost the merchant bounded key lookups, off the path of
//!   known customers, whose catalogue queries stay within twice their unloaded time; the
//!   merchant's log does not grow (section 10).
//! - The merchant's reporter sends its requests to the broker in parallel: one the broker
//!   does not answer holds up no other, and one answered is not sent again (section 10).
//!
//! Timing: the flood test measures the honest customer's queries without and with the
//! flood in the same test and asserts the ratio of the medians; every other wait is a
//! bounded safety net that fails with the logs, never an asserted duration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use broker::core::Config as BrokerConfig;
use broker::node::BrokerNode;
use bytes::Bytes;
use customer_cli::Wallet;
use customer_cli::client::{Client, collect_deliveries};
use futures::StreamExt as _;
use merchant::core::Config as MerchantConfig;
use merchant::node::MerchantNode;
use ops::nats_config::{self, NatsUser, Role};
use peerscrip_tests::NatsServer;
use peerscrip_tests::deployment::{Deployment as MemoryDeployment, InMemory, TIMEOUT};
use peerscrip_tests::network::NetworkSpec;
use peerscrip_tests::processes::{Daemon, PATIENCE};
use peerscrip_tests::site::Site;
use shared::bus::{Bus, MemoryBus, NatsBus, NatsCredentials, NatsOptions, Subjects};
use shared::wire::bodies::{OrderId, OrderInfo};
use shared::wire::{Frame, Header, Label, Part};
use shared::{
    AccountId, Amount, KeyPair, Mint, Pan, PanSecret, SecretBytes, Suite, TxId, Uid, UnixSecs,
    fixtures,
};

const SUITE: Suite = Suite::Paper;
const BROKER: usize = 1;
const MERCHANT: usize = 2;
const ALICE: usize = 0;
const BOB: usize = 3;
const PAN_ALICE: &str = "GR1601101250000000012300695";
const SECRET_ALICE: &str = "correct horse battery staple";
const PAN_BOB: &str = "GR1601101250000000012300777";
const SECRET_BOB: &str = "bob's account secret for tests";
/// The PAN of `ops/deploy/merchant.toml`.
const PAN_M: &str = "GR9608100010000001234567890";
const SECRET_M: &str = "merchant account secret for tests";
/// How long a wallet waits for one reply.
const WAIT: Duration = Duration::from_secs(10);

fn now() -> UnixSecs {
    shared::runtime::system_clock()
}

/// Writes `keys` as `keys/<who>/key.pem` and `key.pub.pem` of `site`, as `peerscrip-ops
/// keygen` does.
fn write_keys(site: &Site, who: &str, keys: &KeyPair) {
    let key = site.key(who);
    std::fs::create_dir_all(key.parent().unwrap()).unwrap();
    std::fs::write(&key, keys.to_pkcs8_pem(None).unwrap().as_bytes()).unwrap();
    std::fs::write(
        site.public_key(who),
        keys.public().to_pem().unwrap().as_bytes(),
    )
    .unwrap();
}

/// A deployment of fixture keys on a server running the generated per-node permissions:
/// the broker, the merchant of `ops/deploy/merchant.toml`, and the customers alice and bob
/// (both with a funded bank account), and mallory, a customer with a NATS user only.
struct Hostile {
    site: Site,
    server: NatsServer,
    users: Vec<NatsUser>,
    broker_keys: &'static KeyPair,
    merchant_keys: &'static KeyPair,
}

impl Hostile {
    fn new() -> Hostile {
        let site = Site::new(SUITE);
        let broker_keys = fixtures::keypair(SUITE, BROKER);
        let merchant_keys = fixtures::keypair(SUITE, MERCHANT);
        write_keys(&site, "broker", broker_keys);
        write_keys(&site, "merchant", merchant_keys);
        let users: Vec<NatsUser> = [
            ("broker", Role::Broker, broker_keys.uid()),
            ("merchant", Role::Merchant, merchant_keys.uid()),
            (
                "alice",
                Role::Customer,
                fixtures::keypair(SUITE, ALICE).uid(),
            ),
            ("bob", Role::Customer, fixtures::keypair(SUITE, BOB).uid()),
            ("mallory", Role::Customer, fixtures::keypair(SUITE, 4).uid()),
        ]
        .into_iter()
        .map(|(name, role, uid)| NatsUser::new(name, role, uid).unwrap())
        .collect();
        let server = NatsServer::start_with_config(&nats_config::server_config(
            &Subjects::default(),
            &users,
        ))
        .expect("the server takes the generated configuration");
        let h = Hostile {
            site,
            server,
            users,
            broker_keys,
            merchant_keys,
        };
        // The bank operator opens the accounts on the broker's file before it first starts.
        std::fs::create_dir_all(h.site.data("broker")).unwrap();
        let mut node = h.open_broker();
        for (pan, secret) in [
            (PAN_ALICE, SECRET_ALICE),
            (PAN_BOB, SECRET_BOB),
            (PAN_M, SECRET_M),
        ] {
            node.open_account(&Pan::new(pan), &PanSecret::new(secret), now())
                .unwrap();
        }
        node.close().unwrap();
        h
    }

    fn user(&self, who: &str) -> &NatsUser {
        self.users.iter().find(|u| u.name == who).unwrap()
    }

    fn password(&self, who: &str) -> String {
        self.user(who).password.as_str().to_owned()
    }

    fn broker(&self) -> Daemon {
        let mut command = self.site.broker_command(&self.server.url());
        command
            .args(["--nats-user", "broker"])
            .env("PEERSCRIP_NATS_PASSWORD", self.password("broker"));
        Daemon::start("peerscrip-broker", command, "broker serving")
    }

    fn merchant(&self) -> Daemon {
        let mut command = self.site.merchant_command("merchant", &self.server.url());
        command
            .args(["--nats-user", "merchant", "--request-timeout-secs", "5"])
            .env("PEERSCRIP_NATS_PASSWORD", self.password("merchant"))
            .env("PEERSCRIP_PAN_SECRET", SECRET_M);
        Daemon::start("peerscrip-merchant", command, "merchant serving")
    }

    /// `who`'s connection as the wallet makes it: its NATS user, replies under its own
    /// inbox `_INBOX.<uid>`.
    async fn bus(&self, who: &str) -> NatsBus {
        let user = self.user(who);
        let options = NatsOptions {
            inbox_prefix: Some(Subjects::default().inbox_prefix(&user.uid)),
            credentials: Some(NatsCredentials::UserPassword {
                user: user.name.clone(),
                password: SecretBytes::from_slice(user.password.as_bytes()),
            }),
            ..NatsOptions::default()
        };
        NatsBus::connect(&self.server.url(), options).await.unwrap()
    }

    /// A raw client of `who`, with the NATS client's default inbox (`_INBOX.<random>`):
    /// what an attacker publishes with.
    async fn raw(&self, who: &str) -> async_nats::Client {
        async_nats::ConnectOptions::with_user_and_password(who.to_owned(), self.password(who))
            .connect(self.server.url())
            .await
            .unwrap()
    }

    /// `who`'s wallet (fixture key `index`, its account linked) and client.
    async fn customer(
        &self,
        who: &str,
        index: usize,
        (pan, secret): (&str, &str),
    ) -> (Wallet, Client<NatsBus>) {
        let keys = fixtures::keypair(SUITE, index);
        let mut w = Wallet::create(
            self.site.path(&format!("{who}.redb")),
            keys.clone(),
            self.broker_keys.public(),
            now(),
        )
        .unwrap();
        w.link_account(Pan::new(pan), &PanSecret::new(secret), now())
            .unwrap();
        let client = Client::new(
            self.bus(who).await,
            Subjects::default(),
            self.broker_keys.uid(),
            WAIT,
            3,
        );
        (w, client)
    }

    fn open_broker(&self) -> BrokerNode {
        let dir = self.site.data("broker");
        let root = shared::daemon::load_or_create_root_key(&dir.join("root.key")).unwrap();
        BrokerNode::open(
            dir.join("broker.redb"),
            self.broker_keys.clone(),
            root,
            BrokerConfig::new(SUITE),
        )
        .unwrap()
    }

    fn open_merchant(&self) -> MerchantNode {
        let dir = self.site.data("merchant");
        let root = shared::daemon::load_or_create_root_key(&dir.join("root.key")).unwrap();
        let catalogue = merchant::config::catalogue::load(
            &peerscrip_tests::binaries::workspace().join("ops/deploy/catalogue.toml"),
        )
        .unwrap();
        let pan = Pan::new(PAN_M);
        let config = MerchantConfig::new(
            Mint::new(SUITE, self.merchant_keys.uid(), root),
            catalogue,
            self.broker_keys.uid(),
            pan.clone(),
            AccountId::derive(SUITE, &PanSecret::new(SECRET_M), &pan),
        );
        MerchantNode::open(
            dir.join("merchant.redb"),
            self.merchant_keys.clone(),
            config,
            [self.broker_keys.public().clone()],
        )
        .unwrap()
    }

    /// The number of events in the broker's and the merchant's logs (both stopped).
    fn log_lengths(&self) -> (u64, u64) {
        let broker = self.open_broker();
        let b = broker.log().len().unwrap();
        broker.close().unwrap();
        (b, self.merchant_log_length())
    }

    /// The number of events in the merchant's log (stopped).
    fn merchant_log_length(&self) -> u64 {
        let merchant = self.open_merchant();
        let m = merchant.log().len().unwrap();
        merchant.close().unwrap();
        m
    }
}

/// protocol.md section 3: bob publishes his own registration to the broker, and a
/// catalogue query to the merchant, each with a reply subject under alice's inbox. Neither
/// node answers (nothing reaches alice's inbox), neither processes them (the broker does
/// not register bob, the merchant does not look his key up, no log changes), and bob's
/// same registration with his own inbox is then answered and recorded.
#[actix_rt::test]
async fn a_request_whose_reply_subject_is_another_peers_inbox_is_answered_by_no_node() {
    let h = Hostile::new();
    let mut broker = h.broker();
    let mut merchant = h.merchant();
    let (mut bob_wallet, bob) = h.customer("bob", BOB, (PAN_BOB, SECRET_BOB)).await;
    let (alice_wallet, _) = h.customer("alice", ALICE, (PAN_ALICE, SECRET_ALICE)).await;
    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    let before = h.log_lengths();
    let mut broker = h.broker();
    let mut merchant = h.merchant();

    // Alice listens on her own inbox, as her permissions allow.
    let alice_raw = h.raw("alice").await;
    let alice_inbox = Subjects::default().inbox_prefix(&alice_wallet.uid());
    let mut redirected = alice_raw
        .subscribe(format!("{alice_inbox}.>"))
        .await
        .unwrap();
    alice_raw.flush().await.unwrap();

    let register = bob_wallet.register(now()).unwrap();
    let bob_raw = h.raw("bob").await;
    let subjects = Subjects::default();
    let merchant_subject = subjects.merchant(&h.merchant_keys.uid()).to_string();
    // A frame whose sender is bob and that the merchant would have to look up.
    let query = Frame::new(
        Header::new(
            SUITE,
            Label::CatalogueRequest,
            TxId::random(),
            bob_wallet.uid(),
        ),
        vec![Part::Clear {
            body: b"a query".to_vec(),
        }],
    )
    .encode()
    .unwrap();
    for (subject, frame) in [
        (subjects.broker().to_string(), register.frame.clone()),
        (merchant_subject.clone(), query),
    ] {
        bob_raw
            .publish_with_reply(subject, format!("{alice_inbox}.4711"), Bytes::from(frame))
            .await
            .unwrap();
    }
    bob_raw.flush().await.unwrap();

    // Taken after bob's frames by each gateway, which drops or serves in arrival order:
    // once these are answered, bob's were dropped.
    let key_request = bob_wallet
        .request_public_key(h.merchant_keys.uid(), now())
        .unwrap();
    let answered = bob.ask(&key_request).await.unwrap();
    assert_eq!(
        Frame::decode(&answered).unwrap().header.label,
        Label::Error,
        "bob is not registered: the broker refuses his key request"
    );
    alice_raw.flush().await.unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(500), redirected.next())
            .await
            .is_err(),
        "nothing reached alice's inbox"
    );
    assert_eq!(merchant.count("learned a customer's key"), 0);
    assert_eq!(
        merchant.count("could not be learned"),
        0,
        "no lookup of bob"
    );
    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    // Each counted the one it dropped, and says so at its stop.
    for daemon in [&merchant, &broker] {
        assert_eq!(daemon.count("foreign_reply=1"), 1, "{}", daemon.log());
    }
    assert_eq!(h.log_lengths(), before, "no log changed");
    assert!(
        !h.open_broker()
            .state()
            .peers
            .contains_key(&bob_wallet.uid()),
        "bob's registration was not processed"
    );

    // The same registration on bob's own inbox is answered and recorded.
    let mut broker = h.broker();
    bob.send(&mut bob_wallet, register, now()).await.unwrap();
    assert_eq!(bob_wallet.state().registered, Some(bob_wallet.uid()));
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    let after = h.log_lengths();
    assert_eq!(after.0, before.0 + 1, "bob's registration, once");
    assert_eq!(after.1, before.1);
    assert!(
        tokio::time::timeout(Duration::from_millis(200), redirected.next())
            .await
            .is_err()
    );
}

/// Frames of the made-up sender flood ([`made_up_senders_cost_bounded_lookups_off_the_path_of_known_customers`]).
const FLOOD: usize = 3_000;
/// The flood comes in this many rounds, each sent in bursts of [`BURST`] frames.
const ROUNDS: usize = 3;
/// Frames mallory publishes before she flushes and pauses for 10 ms.
const BURST: usize = 100;
/// The honest queries timed in each phase of a round.
const QUERIES: usize = 8;

/// Waits (bounded by [`PATIENCE`]) until the number of `daemon`'s log lines holding
/// `needle` stays the same for 100 ms (the key lookups of a round have drained); returns
/// it.
async fn settled(daemon: &Daemon, needle: &str) -> usize {
    let start = Instant::now();
    let mut last = daemon.count(needle);
    loop {
        tokio::time::sleep(Duration::from_millis(100)).await;
        let now = daemon.count(needle);
        if now == last {
            return now;
        }
        assert!(start.elapsed() < PATIENCE, "{}", daemon.log());
        last = now;
    }
}

/// The median of `times`.
fn median(mut times: Vec<Duration>) -> Duration {
    times.sort();
    times[times.len() / 2]
}

/// `QUERIES` catalogue queries of alice at the merchant, one after another: each one's time.
async fn query_times(w: &Wallet, client: &Client<NatsBus>, merchant: Uid) -> Vec<Duration> {
    let mut times = Vec::with_capacity(QUERIES);
    for _ in 0..QUERIES {
        let (query, out) = w.catalogue_query(merchant).unwrap();
        let start = Instant::now();
        let answer = client.ask(&out).await.unwrap();
        times.push(start.elapsed());
        let listing = w.handle_catalogue(&query, &answer).unwrap();
        assert!(listing.items.iter().any(|item| item.id == "tea"));
    }
    times
}

/// protocol.md section 10: mallory publishes 3,000 frames with random sender UIDs to the
/// merchant (in rounds) while alice, a registered customer it knows, queries its
/// catalogue. Alice's queries never wait behind the key lookups, and the lookups' budget
/// bounds what the flood makes the merchant and the broker spend: the median of her
/// queries under the flood is within twice the unloaded median, both measured in this
/// test. The lookups are bounded (the queue's worth per round and the rate's), the
/// merchant's log does not grow and both daemons stay up.
#[actix_rt::test]
async fn made_up_senders_cost_bounded_lookups_off_the_path_of_known_customers() {
    let h = Hostile::new();
    let mut broker = h.broker();
    let mut merchant = h.merchant();
    let (mut w, alice) = h.customer("alice", ALICE, (PAN_ALICE, SECRET_ALICE)).await;
    for out in [
        w.register(now()).unwrap(),
        w.request_public_key(h.merchant_keys.uid(), now()).unwrap(),
    ] {
        alice.send(&mut w, out, now()).await.unwrap();
    }
    // Alice's first query makes the merchant learn her key (6.0b); then the log's length.
    query_times(&w, &alice, h.merchant_keys.uid()).await;
    assert_eq!(merchant.count("learned a customer's key"), 1);
    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    let before = h.merchant_log_length();
    let mut merchant = h.merchant();

    let m = h.merchant_keys.uid();
    // Mallory floods from a thread and runtime of her own, so that her work in this test
    // process does not count in alice's times; she sends a round of frames when told.
    let (url, password) = (h.server.url(), h.password("mallory"));
    let subject = Subjects::default().merchant(&m).to_string();
    let (go, mut rounds) = tokio::sync::mpsc::unbounded_channel::<std::sync::mpsc::Sender<()>>();
    let flood = std::thread::spawn(move || {
        let runtime = tokio::runtime::Runtime::new().unwrap();
        runtime.block_on(async move {
            let mallory =
                async_nats::ConnectOptions::with_user_and_password("mallory".to_owned(), password)
                    .connect(url)
                    .await
                    .unwrap();
            while let Some(done) = rounds.recv().await {
                for burst in 0..FLOOD / ROUNDS / BURST {
                    for _ in 0..BURST {
                        let frame = Frame::new(
                            Header::new(
                                SUITE,
                                Label::CatalogueRequest,
                                TxId::random(),
                                Uid::random(),
                            ),
                            vec![Part::Signed {
                                body: vec![u8::try_from(burst).unwrap(); 32],
                                sig: vec![0; 128],
                            }],
                        )
                        .encode()
                        .unwrap();
                        mallory
                            .publish(subject.clone(), Bytes::from(frame))
                            .await
                            .unwrap();
                    }
                    mallory.flush().await.unwrap();
                    tokio::time::sleep(Duration::from_millis(10)).await;
                }
                let _ = done.send(());
            }
        });
    });

    // Rounds of alice's queries without and then with a part of the flood, so that the
    // machine's other load weighs on both alike.
    let (mut unloaded, mut loaded) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let lookups = settled(&merchant, "the sender's key could not be learned").await;
        unloaded.extend(query_times(&w, &alice, m).await);
        assert_eq!(
            merchant.count("the sender's key could not be learned"),
            lookups
        );
        let (done, flooded) = std::sync::mpsc::channel();
        go.send(done).unwrap();
        loaded.extend(query_times(&w, &alice, m).await);
        flooded.recv().unwrap();
    }
    drop(go);
    flood.join().unwrap();
    let (unloaded, loaded) = (median(unloaded), median(loaded));
    let ratio = loaded.as_secs_f64() / unloaded.as_secs_f64();
    let lookups = merchant.count("the sender's key could not be learned");
    println!(
        "catalogue query median: unloaded {unloaded:?}, under {FLOOD} made-up senders \
         {loaded:?}: ratio {ratio:.2}; {lookups} key lookups"
    );
    assert!(
        ratio <= 2.0,
        "unloaded {unloaded:?}, loaded {loaded:?}\n{}",
        merchant.log()
    );
    // Per round at most the queue's worth of senders, and those the rate starts while
    // the round lasts (well under a second).
    let limits = merchant::daemon::peers::LookupLimits::default();
    let bound = ROUNDS * (limits.queue + limits.per_sec as usize);
    assert!(
        lookups <= bound,
        "{lookups} lookups for {FLOOD} frames, bound {bound}"
    );
    assert!(broker.is_running() && merchant.is_running());
    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    assert_eq!(h.log_lengths().1, before, "the merchant's log did not grow");
}

/// The in-memory deployment of [`one_unanswered_request_to_the_broker_delays_no_other`]:
/// one merchant selling tea at 1.50, two customers with 100.00 each, registered with the
/// merchant's key.
fn two_customers() -> MemoryDeployment<InMemory> {
    let spec = NetworkSpec::new(SUITE, 1, 2, Amount::from_minor(10_000));
    MemoryDeployment::in_memory(&spec).unwrap()
}

fn clock() -> UnixSecs {
    now()
}

/// A stand-in broker subject: forwards every request to the real broker (served under
/// another prefix) except those of the tx of the first request it sees, which it takes and
/// holds unanswered until released; counts the requests of each tx it saw.
struct Proxy {
    held: Arc<Mutex<Vec<shared::bus::Incoming<MemoryBus>>>>,
    hold: Arc<Mutex<Option<TxId>>>,
    seen: Arc<Mutex<BTreeMap<TxId, usize>>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(bus: &MemoryBus, real: Subjects) -> Proxy {
        let mut requests = bus.subscribe(&Subjects::default().broker()).await.unwrap();
        let held = Arc::new(Mutex::new(Vec::new()));
        let hold = Arc::new(Mutex::new(None));
        let seen = Arc::new(Mutex::new(BTreeMap::new()));
        let (bus, keep, first, count) = (bus.clone(), held.clone(), hold.clone(), seen.clone());
        let task = tokio::spawn(async move {
            while let Some(request) = requests.next().await {
                let tx = Frame::header_of(request.payload()).unwrap().tx;
                *count.lock().unwrap().entry(tx).or_insert(0) += 1;
                if *first.lock().unwrap().get_or_insert(tx) == tx {
                    keep.lock().unwrap().push(request);
                    continue;
                }
                let (bus, real) = (bus.clone(), real.clone());
                tokio::spawn(async move {
                    if let Ok(reply) = bus
                        .request(&real.broker(), request.payload().clone(), TIMEOUT)
                        .await
                    {
                        let _ = request.respond(reply).await;
                    }
                });
            }
        });
        Proxy {
            held,
            hold,
            seen,
            task,
        }
    }

    fn seen(&self, tx: TxId) -> usize {
        self.seen.lock().unwrap().get(&tx).copied().unwrap_or(0)
    }
}

/// The merchant's pending reports, read through its actor.
async fn pending_reports(d: &MemoryDeployment<InMemory>) -> Vec<TxId> {
    let (tx, rx) = tokio::sync::oneshot::channel();
    d.merchant_shell(0)
        .unwrap()
        .addr
        .do_send(shared::runtime::Call(Box::new(
            move |s: &mut merchant::shell::Shelled, _| {
                let txs = s
                    .node
                    .pending_reports()
                    .iter()
                    .map(|o| Frame::header_of(&o.frame).unwrap().tx)
                    .collect();
                let _ = tx.send(txs);
            },
        )));
    rx.await.unwrap()
}

/// Waits (bounded by [`PATIENCE`], a safety net) until the merchant's pending reports are
/// `expected`.
async fn until_pending(d: &MemoryDeployment<InMemory>, expected: &[TxId]) {
    let start = Instant::now();
    loop {
        let mut pending = pending_reports(d).await;
        pending.sort();
        let mut want = expected.to_vec();
        want.sort();
        if pending == want {
            return;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "pending {pending:?}, expected {want:?}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// protocol.md section 10: the merchant owes the broker two purchase reports (6.3 step 5)
/// while the broker is away; when it is back, the broker (through a stand-in subject)
/// leaves the first report the reporter sends unanswered. The other is answered and
/// recorded while the first is still held (the merchant waits `TIMEOUT`, 60 s, for it),
/// and is not sent again; once the held one is answered too, nothing is owed, and the
/// books add up.
#[actix_rt::test]
async fn one_unanswered_request_to_the_broker_delays_no_other() {
    let mut d = two_customers();
    d.serve_broker(clock).await.unwrap();
    d.serve_merchant(0, clock).await.unwrap();
    let m = d.net.merchants[0].party.uid();
    let mut steps2 = Vec::new();
    for j in 0..2 {
        let client = d.client(j).await.unwrap();
        let c = d.net.customers[j].party.uid();
        let mut deliveries = client.subscribe_deliveries(&c).await.unwrap();
        let w = d.net.wallet_mut(j).unwrap();
        let out = w
            .obtain_broker_scrip(Amount::from_minor(1_000), clock())
            .unwrap();
        client.send(w, out, clock()).await.unwrap();
        let out = w
            .obtain_vendor_scrip(m, Amount::from_minor(1_000), clock())
            .unwrap();
        let tx = out.tx;
        client.send(w, out, clock()).await.unwrap();
        let step2 = w.resend(tx, Label::VendorScripRequest).unwrap();
        client.publish(&step2).await.unwrap();
        let got = collect_deliveries(&mut deliveries, 2, TIMEOUT).await;
        assert_eq!(got.len(), 2, "the broker's change and the merchant's V0");
        for frame in &got {
            w.handle_reply(frame, clock()).unwrap();
        }
        // 6.3 step 1 while the broker serves; step 2 later, with the broker away.
        let order = OrderInfo {
            item_id: "tea".into(),
            name: "Green tea".into(),
            unit_price: Amount::from_minor(150),
            quantity: 1,
            order_id: OrderId::random(),
        };
        let (initiated, purchase) = w.buy_item(m, order, clock()).unwrap();
        client.send(w, initiated, clock()).await.unwrap();
        steps2.push((client, purchase));
    }
    d.stop_broker().await.unwrap();
    let mut purchases = Vec::new();
    for (j, (client, purchase)) in steps2.into_iter().enumerate() {
        purchases.push(purchase.tx);
        client
            .send(d.net.wallet_mut(j).unwrap(), purchase, clock())
            .await
            .unwrap();
    }
    until_pending(&d, &purchases).await;

    // The broker is back, under another prefix behind the stand-in, which holds the
    // report that reaches it first.
    let bus = d.transport.0.clone();
    let real = Subjects::new("real").unwrap();
    let node = d.net.take_broker().unwrap();
    let broker = broker::shell::serve(node, bus.clone(), real.clone(), clock)
        .await
        .unwrap();
    let proxy = Proxy::start(&bus, real.clone()).await;

    // Both are answered but the held one, while it is still held.
    let start = Instant::now();
    let held = loop {
        let hold = *proxy.hold.lock().unwrap();
        if let Some(held) = hold {
            break held;
        }
        assert!(start.elapsed() < PATIENCE, "no report reached the broker");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let answered = *purchases.iter().find(|tx| **tx != held).unwrap();
    until_pending(&d, &[held]).await;
    assert_eq!(
        proxy.held.lock().unwrap().len(),
        1,
        "the held report is still unanswered"
    );
    assert_eq!(proxy.seen(answered), 1, "the answered report was sent once");

    // Released: the held request is answered now.
    let request = proxy.held.lock().unwrap().pop().unwrap();
    let reply = bus
        .request(&real.broker(), request.payload().clone(), TIMEOUT)
        .await
        .unwrap();
    request.respond(reply).await.unwrap();
    until_pending(&d, &[]).await;
    assert_eq!(
        proxy.seen(answered),
        1,
        "a recorded answer is never sent again"
    );
    proxy.task.abort();

    let node = broker.stop().await.unwrap();
    d.net.put_broker(node);
    d.stop().await.unwrap();
    peerscrip_tests::invariants::conserved(&d.net).unwrap();
    let state = d.net.broker().unwrap().state();
    for tx in &purchases {
        assert!(
            state.purchases.get(tx).unwrap().recorded,
            "{tx}: steps 1 and 5 matched"
        );
    }
}
