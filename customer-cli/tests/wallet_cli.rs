//! The built `peerscrip` binary end to end: a real `nats-server` from the
//! harness, the broker and a merchant served in-process by their shells on `NatsBus`
//! connections, and the customer's wallet driven only through the command line, every
//! command with `--json` parsed and checked.
//!
//! - the journey: init → register → broker-scrip buy → shop → vendor-scrip buy → buy (with
//!   change) → refusals (more than the scrip holds, an unknown item: exit 3, nothing
//!   changed) → vendor-scrip top-up → withdraw → broker-scrip top-up → renew → history →
//!   balance, then conservation at
//!   the broker and the merchant (bank + scrip add up) and no secret in any output;
//! - resume: 6.2 with the merchant not served and a short `--timeout` leaves the tx pending
//!   (exit 5); once the merchant serves, `status <tx>` finishes it; 6.7 with the merchant
//!   gone is unreachable (exit 4) with the tx pending, and the next command finishes it;
//!   the customer paid once each time;
//! - no server at the URL: exit 4; the key file is `ENCRYPTED PRIVATE KEY` and a wrong
//!   passphrase fails clearly (exit 2) without echoing it.
//! - a new passphrase of fewer than 8 characters is refused (exit 2) before anything is
//!   written, 8 are enough, and unlocking is not held to it; `completions` needs no
//!   wallet.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use shared::UnixSecs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use broker::core::Config as BrokerConfig;
use broker::node::BrokerNode;
use merchant::core::Config as MerchantConfig;
use merchant::core::catalogue::{Catalogue, Item};
use merchant::node::MerchantNode;
use peerscrip_tests::NatsServer;
use peerscrip_tests::processes::timeless;
use serde_json::Value;
use shared::bus::{NatsBus, NatsCredentials, NatsOptions, Subjects};
use shared::events::Account;
use shared::wire::bodies::RegistrationRequestX0;
use shared::wire::{Frame, Header, Label, id_proof, public_key_inner, seal, sign};
use shared::{AccountId, Amount, KeyPair, Mint, Pan, PanSecret, PublicKey, Suite, TxId, fixtures};

const PAN: &str = "GR1601101250000000012300695";
const PAN_SECRET: &str = "correct horse battery staple";
const MERCHANT_PAN: &str = "GR9608100010000001234567890";
const MERCHANT_SECRET: &str = "the tea shop's own secret";
const PASSPHRASE: &str = "a long wallet passphrase 7";
/// The customer's bank deposit, minor units (100.00).
const DEPOSIT: u64 = 10_000;
const TIMEOUT: Duration = Duration::from_secs(30);

fn clock() -> UnixSecs {
    UnixSecs::new(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_secs(),
    )
}

fn amount(text: &str) -> Amount {
    text.parse().unwrap()
}

/// What one run of the binary gave.
#[derive(Debug)]
struct Run {
    code: i32,
    stdout: String,
    stderr: String,
}

impl Run {
    /// The one JSON document on stdout.
    fn json(&self) -> Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not one JSON document ({e}): {self:?}"))
    }

    /// The JSON of a successful run.
    fn ok(&self) -> Value {
        assert_eq!(self.code, 0, "{self:?}");
        let doc = self.json();
        assert_eq!(doc["ok"], true, "{self:?}");
        doc
    }
}

/// The customer: a wallet directory and everything its commands printed.
struct Customer {
    suite: Suite,
    dir: PathBuf,
    passphrase_file: PathBuf,
    nats_url: String,
    outputs: Vec<String>,
}

impl Customer {
    fn new(suite: Suite, root: &Path, nats_url: &str) -> Customer {
        let passphrase_file = root.join("passphrase");
        std::fs::write(&passphrase_file, format!("{PASSPHRASE}\n")).unwrap();
        Customer {
            suite,
            dir: root.join("wallet"),
            passphrase_file,
            nats_url: nats_url.to_owned(),
            outputs: Vec::new(),
        }
    }

    /// Runs `peerscrip <args> --json` (with the wallet dir, URL and passphrase file).
    async fn run(&mut self, args: &[&str]) -> Run {
        self.run_with(args, &[]).await
    }

    /// Runs `peerscrip <args> --json` with `env` set besides.
    async fn run_with(&mut self, args: &[&str], env: &[(&str, &str)]) -> Run {
        let mut command = self.command(args);
        command.arg("--json").envs(env.iter().copied());
        self.exec(command).await
    }

    /// Runs `peerscrip <args>` with human output (no `--json`).
    async fn run_human(&mut self, args: &[&str]) -> Run {
        let command = self.command(args);
        self.exec(command).await
    }

    /// `peerscrip <args>` with the wallet dir, URL and passphrase file, and nothing from the
    /// environment that would name another wallet, secret or NATS user.
    fn command(&self, args: &[&str]) -> tokio::process::Command {
        let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_peerscrip"));
        command
            .args(args)
            .arg("--wallet-dir")
            .arg(&self.dir)
            .arg("--passphrase-file")
            .arg(&self.passphrase_file)
            .env_remove("PEERSCRIP_PASSPHRASE")
            .env_remove("PEERSCRIP_PAN_SECRET")
            .env_remove("PEERSCRIP_WALLET_DIR")
            .env_remove("PEERSCRIP_NATS_USER")
            .env_remove("PEERSCRIP_NATS_PASSWORD_FILE")
            .env("PEERSCRIP_NATS_URL", &self.nats_url)
            .stdin(std::process::Stdio::null());
        command
    }

    /// Runs `command`, keeping what it printed (to check no secret was).
    async fn exec(&mut self, mut command: tokio::process::Command) -> Run {
        let out = command.output().await.expect("run peerscrip");
        let run = Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8(out.stdout).unwrap(),
            stderr: String::from_utf8(out.stderr).unwrap(),
        };
        self.outputs.push(format!("{}\n{}", run.stdout, run.stderr));
        run
    }

    /// The wallet's public key, as `init` wrote it.
    fn public_key(&self) -> PublicKey {
        PublicKey::from_pem(
            self.suite,
            &std::fs::read_to_string(self.dir.join("key.pub.pem")).unwrap(),
        )
        .unwrap()
    }

    /// No secret in anything any command printed.
    fn assert_no_secret_printed(&self) {
        for out in &self.outputs {
            assert!(!out.contains(PAN_SECRET), "the PANSecret leaked: {out}");
            assert!(!out.contains(PASSPHRASE), "the passphrase leaked: {out}");
            assert!(!out.contains(PAN), "the full PAN was printed: {out}");
        }
    }
}

/// The merchant registers its key for its account at the broker before serving (6.0, as
/// the demo's setup does).
fn register_merchant(
    suite: Suite,
    broker: &mut BrokerNode,
    broker_key: &PublicKey,
    keys: &KeyPair,
) {
    let pan = Pan::new(MERCHANT_PAN);
    let id = AccountId::derive(suite, &PanSecret::new(MERCHANT_SECRET), &pan);
    let h = Header::new(
        suite,
        Label::RegistrationRequest,
        TxId::random(),
        keys.uid(),
    );
    let part = seal(
        &h,
        broker_key,
        &[
            sign(keys, &h, &RegistrationRequestX0 { pan })
                .unwrap()
                .into(),
            id_proof(keys, &h, &id).unwrap(),
            public_key_inner(keys.public()),
        ],
    )
    .unwrap();
    let reply = broker
        .handle(&Frame::new(h, vec![part]).encode().unwrap(), clock())
        .unwrap();
    assert_eq!(
        Frame::decode(reply.reply_frame()).unwrap().header.label,
        Label::RegistrationResponse
    );
}

/// The broker and the merchant (served or not) on one nats-server.
struct World {
    suite: Suite,
    credentials: Option<NatsCredentials>,
    server: NatsServer,
    tmp: tempfile::TempDir,
    broker_keys: KeyPair,
    broker: Option<broker::shell::Running>,
    merchant_keys: KeyPair,
    merchant: Option<merchant::shell::Running>,
    subjects: Subjects,
    /// The nodes' clock (the wallet's is the system's).
    clock: fn() -> UnixSecs,
}

impl World {
    /// Starts nats-server and the broker (accounts opened, the merchant registered); the
    /// merchant is not served yet.
    async fn start(suite: Suite) -> World {
        World::start_on(suite, NatsServer::start().expect("start nats-server"), None).await
    }

    /// As [`World::start`], the nodes running on `clock`.
    async fn start_clocked(suite: Suite, clock: fn() -> UnixSecs) -> World {
        let server = NatsServer::start().expect("start nats-server");
        World::start_with(suite, server, None, clock).await
    }

    /// As [`World::start`], on `server`, the nodes connecting with `credentials`.
    async fn start_on(
        suite: Suite,
        server: NatsServer,
        credentials: Option<NatsCredentials>,
    ) -> World {
        World::start_with(suite, server, credentials, clock).await
    }

    /// As [`World::start_on`], the nodes running on `clock`.
    async fn start_with(
        suite: Suite,
        server: NatsServer,
        credentials: Option<NatsCredentials>,
        clock: fn() -> UnixSecs,
    ) -> World {
        let tmp = tempfile::tempdir().unwrap();
        let broker_keys = fixtures::keypair(suite, 1).clone();
        let merchant_keys = fixtures::keypair(suite, 2).clone();
        let mut node = BrokerNode::open(
            tmp.path().join("broker.redb"),
            broker_keys.clone(),
            fixtures::root_key(1),
            BrokerConfig::new(suite),
        )
        .unwrap();
        let now = clock().get();
        node.open_account(
            &Pan::new(PAN),
            &PanSecret::new(PAN_SECRET),
            UnixSecs::new(now),
        )
        .unwrap();
        node.deposit(
            &Pan::new(PAN),
            Amount::from_minor(DEPOSIT),
            UnixSecs::new(now),
        )
        .unwrap();
        node.open_account(
            &Pan::new(MERCHANT_PAN),
            &PanSecret::new(MERCHANT_SECRET),
            UnixSecs::new(now),
        )
        .unwrap();
        register_merchant(suite, &mut node, broker_keys.public(), &merchant_keys);
        let subjects = Subjects::default();
        let bus = connect_as(&server, "broker", credentials.clone()).await;
        let broker = broker::shell::serve(node, bus, subjects.clone(), clock)
            .await
            .unwrap();
        std::fs::write(
            tmp.path().join("broker.pub.pem"),
            broker_keys.public().to_pem().unwrap(),
        )
        .unwrap();
        World {
            suite,
            credentials,
            server,
            tmp,
            broker_keys,
            broker: Some(broker),
            merchant_keys,
            merchant: None,
            subjects,
            clock,
        }
    }

    fn broker_pem(&self) -> PathBuf {
        self.tmp.path().join("broker.pub.pem")
    }

    fn merchant(&self) -> String {
        self.merchant_keys.uid().to_string()
    }

    /// Serves the merchant, knowing the customer's key.
    async fn serve_merchant(&mut self, customer: PublicKey) {
        let pan = Pan::new(MERCHANT_PAN);
        let config = MerchantConfig::new(
            Mint::new(self.suite, self.merchant_keys.uid(), fixtures::root_key(2)),
            Catalogue::new([
                Item::new("tea", "Green tea, 100 g", amount("4.50")),
                Item::new("pot", "Tea pot", amount("25.00")),
            ])
            .unwrap(),
            self.broker_keys.uid(),
            pan.clone(),
            AccountId::derive(self.suite, &PanSecret::new(MERCHANT_SECRET), &pan),
        );
        let node = MerchantNode::open(
            self.tmp.path().join("merchant.redb"),
            self.merchant_keys.clone(),
            config,
            [self.broker_keys.public().clone(), customer],
        )
        .unwrap();
        let bus = connect_as(&self.server, "merchant", self.credentials.clone()).await;
        self.merchant = Some(
            merchant::shell::serve(node, bus, self.subjects.clone(), self.clock, TIMEOUT)
                .await
                .unwrap(),
        );
    }

    /// Stops serving the merchant (its reports flushed first) and closes its file.
    async fn stop_merchant(&mut self) {
        let m = self.merchant.take().unwrap();
        let bus = connect_as(&self.server, "reporter", self.credentials.clone()).await;
        merchant::shell::send_reports(&m.addr, &bus, &self.subjects, TIMEOUT)
            .await
            .unwrap();
        m.stop().await.unwrap().close().unwrap();
    }

    /// Stops both nodes (the merchant's reports flushed first) and checks conservation:
    /// the broker's accounts balance; the customer's bank, the merchant's bank and the
    /// live BrokerScrip add up to the deposit; the VendorScrip the wallet holds is the
    /// merchant's live scrip and the broker's memo of it; the merchant's bank holds what
    /// was bought plus the VendorScrip still live. Returns (customer bank, merchant bank).
    async fn stop_and_check(
        mut self,
        wallet_broker_scrip: u64,
        wallet_vendor_scrip: u64,
        bought: u64,
    ) -> (i128, i128) {
        if let Some(m) = self.merchant.take() {
            let bus = connect_as(&self.server, "reporter", self.credentials.clone()).await;
            merchant::shell::send_reports(&m.addr, &bus, &self.subjects, TIMEOUT)
                .await
                .unwrap();
            let node = m.stop().await.unwrap();
            assert!(node.pending_reports().is_empty());
            assert_eq!(
                node.state().live_value().unwrap(),
                Amount::from_minor(wallet_vendor_scrip)
            );
        }
        let broker = self.broker.take().unwrap().stop().await.unwrap();
        let state = broker.state();
        assert_eq!(state.check_conserved(), Ok(()));
        let bank_c = state.balance(&Account::Bank(Pan::new(PAN)));
        let bank_m = state.balance(&Account::Bank(Pan::new(MERCHANT_PAN)));
        let float = state.balance(&Account::FloatBroker);
        assert_eq!(float, i128::from(wallet_broker_scrip));
        assert_eq!(bank_c + bank_m + float, i128::from(DEPOSIT));
        assert_eq!(
            state.memo(&self.merchant_keys.uid()),
            i128::from(wallet_vendor_scrip)
        );
        assert_eq!(bank_m, i128::from(bought + wallet_vendor_scrip));
        (bank_c, bank_m)
    }
}

async fn connect_as(
    server: &NatsServer,
    name: &str,
    credentials: Option<NatsCredentials>,
) -> NatsBus {
    NatsBus::connect(
        &server.url(),
        NatsOptions {
            name: Some(name.into()),
            credentials,
            ..NatsOptions::default()
        },
    )
    .await
    .unwrap()
}

/// A time of a `--json` document, checked: its unix seconds, the same second in RFC 3339
/// UTC, and (an expiry or deadline) its relative form; returned as found, so that a whole
/// document can be compared.
fn time_of(doc: &Value, unix: u64) -> Value {
    assert_eq!(doc["unix"], unix, "{doc}");
    let rfc3339 = doc["rfc3339"].as_str().unwrap();
    let utc = UnixSecs::new(unix).utc();
    assert_eq!(
        rfc3339,
        format!("{}T{}Z", &utc[..10], &utc[11..19]),
        "{doc}"
    );
    let relative = doc["relative"].as_str().unwrap();
    assert!(
        relative.starts_with("expires in ")
            || (relative.starts_with("expired ") && relative.ends_with(" ago")),
        "{doc}"
    );
    doc.clone()
}

/// A human line without the relative form of a time (` (expires in 3h 12m)`, ` (expired
/// 5m ago)`), which depends on when the command ran.
fn without_relative(line: &str) -> String {
    for open in [" (expires in ", " (expired "] {
        if let Some(at) = line.find(open)
            && let Some(len) = line[at..].find(')')
        {
            return format!("{}{}", &line[..at], &line[at + len + 1..]);
        }
    }
    line.to_owned()
}

/// The minor units of an amount in a JSON document (`{"value": "12.34", "minor": 1234}`),
/// checking the two agree.
fn minor(v: &Value) -> u64 {
    let m = v["minor"]
        .as_u64()
        .unwrap_or_else(|| panic!("no amount: {v}"));
    assert_eq!(
        v["value"].as_str().unwrap(),
        Amount::from_minor(m).to_string()
    );
    m
}

/// The kinds of the history lines in `lines` (a command's `recorded`, `history` or
/// `entries`), in order.
fn kinds_of(lines: &Value) -> Vec<&str> {
    let lines = lines
        .as_array()
        .unwrap_or_else(|| panic!("no lines: {lines}"));
    lines.iter().map(|e| e["kind"].as_str().unwrap()).collect()
}

/// The history line of `kind` among `lines`.
fn line<'a>(lines: &'a Value, kind: &str) -> &'a Value {
    let all = lines
        .as_array()
        .unwrap_or_else(|| panic!("no lines: {lines}"));
    all.iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {lines}"))
}

/// Creates and registers the customer's wallet; returns the customer.
async fn init_and_register(world: &World) -> Customer {
    init_and_register_with(world, &[]).await
}

/// As [`init_and_register`], with more arguments to `init`.
async fn init_and_register_with(world: &World, init_args: &[&str]) -> Customer {
    let mut c = Customer::new(world.suite, world.tmp.path(), &world.server.url());
    let pem = world.broker_pem();
    let init = c
        .run(
            &[
                &[
                    "init",
                    "--broker-key",
                    pem.to_str().unwrap(),
                    "--suite",
                    world.suite.name(),
                ],
                init_args,
            ]
            .concat(),
        )
        .await
        .ok();
    assert_eq!(init["suite"], world.suite.name());
    assert_eq!(init["broker_uid"], world.broker_keys.uid().to_string());
    assert_eq!(init["encrypted"], true);
    assert_eq!(init["uid"], c.public_key().uid().to_string());
    let register = c
        .run_with(
            &["register", "--pan", PAN],
            &[("PEERSCRIP_PAN_SECRET", PAN_SECRET)],
        )
        .await
        .ok();
    assert_eq!(register["uid"], init["uid"]);
    assert_eq!(register["account"], "…0695");
    c
}

#[actix_rt::test]
async fn a_customer_shops_pays_gets_change_and_withdraws_through_the_binary_paper() {
    journey(Suite::Paper).await;
}

#[actix_rt::test]
async fn a_customer_shops_pays_gets_change_and_withdraws_through_the_binary_modern() {
    journey(Suite::Modern).await;
}

async fn journey(suite: Suite) {
    let mut world = World::start(suite).await;
    let mut c = init_and_register(&world).await;
    world.serve_merchant(c.public_key()).await;
    let m = world.merchant();

    // More than the bank account holds: the broker's signed refusal (exit 3, its code),
    // the refused request given up, nothing held, and the next request goes through.
    let refused = c.run(&["broker-scrip", "buy", "500.00"]).await;
    assert_eq!(refused.code, 3, "{refused:?}");
    let doc = refused.json();
    assert_eq!(doc["error"], "refused");
    assert_eq!(doc["code_name"], "InsufficientFunds");
    let empty = c.run(&["balance"]).await.ok();
    assert!(empty["broker_scrip"].is_null());
    assert_eq!(empty["pending"].as_array().unwrap().len(), 0);

    let bought = c.run(&["broker-scrip", "buy", "40.00"]).await.ok();
    assert_eq!(minor(&bought["value"]), 4_000);

    let shop = c.run(&["shop", &m]).await.ok();
    let items = shop["items"].as_array().unwrap();
    assert_eq!(items.len(), 2);
    assert_eq!(items[1]["id"], "tea");
    assert_eq!(items[1]["name"], "Green tea, 100 g");
    assert_eq!(minor(&items[1]["unit_price"]), 450);
    assert_eq!(shop["omitted"], 0);

    let vendor = c.run(&["vendor-scrip", "buy", &m, "15.00"]).await.ok();
    let kinds = kinds_of(&vendor["recorded"]);
    assert!(kinds.contains(&"exchange_settled"), "{vendor}");
    assert!(kinds.contains(&"vendor_scrip_obtained"), "{vendor}");

    let buy = c.run(&["buy", &m, "tea", "--qty", "2"]).await.ok();
    assert_eq!(minor(&buy["paid"]), 900);
    assert_eq!(minor(&buy["change"]), 600);
    assert_eq!(buy["quantity"], 2);

    // Refusals: more than the VendorScrip holds, an item not listed. Exit 3, nothing
    // changed in the wallet.
    let before = c.run(&["balance"]).await.ok();
    let history_before = c.run(&["history"]).await.ok();
    let too_much = c.run(&["buy", &m, "pot"]).await;
    assert_eq!(too_much.code, 3, "{too_much:?}");
    assert_eq!(too_much.json()["error"], "refused");
    assert!(
        too_much.json()["message"]
            .as_str()
            .unwrap()
            .contains("25.00")
    );
    let unknown = c.run(&["buy", &m, "coffee"]).await;
    assert_eq!(unknown.code, 3, "{unknown:?}");
    assert!(
        unknown.json()["message"]
            .as_str()
            .unwrap()
            .contains("coffee")
    );
    let after = c.run(&["balance"]).await.ok();
    assert_eq!(timeless(&before), timeless(&after));
    assert_eq!(
        timeless(&history_before),
        timeless(&c.run(&["history"]).await.ok())
    );

    let top_up = c.run(&["vendor-scrip", "top-up", &m, "5.00"]).await.ok();
    let topped = line(&top_up["recorded"], "vendor_scrip_topped_up").clone();
    assert_eq!(minor(&topped["from"]), 600);
    assert_eq!(minor(&topped["to"]), 1_100);

    let withdraw = c.run(&["vendor-scrip", "withdraw", &m]).await.ok();
    assert_eq!(minor(&withdraw["value"]), 1_100);
    let decided = line(&withdraw["recorded"], "vendor_withdraw_decided").clone();
    assert_eq!(decided["ok_decision"], true);

    // 6.4 and 6.8 on the BrokerScrip: 20.00 + 5.00 from the bank, then renewed early.
    let top_up = c.run(&["broker-scrip", "top-up", "5.00"]).await.ok();
    assert_eq!(minor(&top_up["from"]), 2_000);
    assert_eq!(minor(&top_up["to"]), 2_500);
    let broker_uid = world.broker_keys.uid().to_string();
    let renewed = c.run(&["renew", &broker_uid]).await.ok();
    assert_eq!(renewed["renewed"][0]["kind"], "scrip_renewed");
    assert_eq!(minor(&renewed["renewed"][0]["value"]), 2_500);
    // A withdrawal cashes in the whole scrip: another amount is a usage error.
    let partial = c.run(&["broker-scrip", "withdraw", "1.00"]).await;
    assert_eq!(partial.code, 2, "{partial:?}");

    let history = c.run(&["history"]).await.ok();
    let kinds = kinds_of(&history["entries"]);
    for expected in [
        "registered",
        "peer_key",
        "broker_scrip_obtained",
        "exchange_settled",
        "vendor_scrip_obtained",
        "item_bought",
        "vendor_top_up_settled",
        "vendor_scrip_topped_up",
        "vendor_withdraw_decided",
        "broker_scrip_topped_up",
        "scrip_renewed",
    ] {
        assert!(kinds.contains(&expected), "{expected} missing: {kinds:?}");
    }

    let balance = c.run(&["balance"]).await.ok();
    // 40.00 − 15.00 (6.2) − 5.00 (6.5) + 5.00 (6.4) = 25.00 of BrokerScrip; the
    // VendorScrip was cashed in.
    assert_eq!(minor(&balance["broker_scrip"]["value"]), 2_500);
    assert_eq!(balance["vendor_scrip"].as_array().unwrap().len(), 0);
    assert_eq!(minor(&balance["total"]), 2_500);
    assert_eq!(balance["pending"].as_array().unwrap().len(), 0);
    assert_eq!(balance["registered"], true);

    // Human output: lines a person reads, no JSON, nothing on stderr (not a terminal, so
    // no progress line either) but the paper suite's warning, in that suite.
    let human = c.run_human(&["balance"]).await;
    assert_eq!(human.code, 0, "{human:?}");
    assert!(human.stdout.starts_with("BrokerScrip"), "{human:?}");
    assert!(human.stdout.contains("25.00"), "{human:?}");
    let warning = c
        .suite
        .open_network_warning()
        .map(|w| format!("peerscrip: warning: {w}\n"))
        .unwrap_or_default();
    assert_eq!(human.stderr, warning, "{human:?}");
    let shop = c.run_human(&["shop", &m]).await;
    assert!(shop.stdout.contains("Green tea, 100 g"), "{shop:?}");
    assert!(shop.stdout.contains("4.50"), "{shop:?}");
    // Times: the expiry as a UTC date and how far off it is, in words and in JSON
    // (unix seconds, RFC 3339, relative); every history line to the second.
    let first = human.stdout.lines().next().unwrap();
    assert!(
        first.contains(" UTC (expires in ") && first.ends_with(')'),
        "{human:?}"
    );
    let expires = &balance["broker_scrip"]["expires"];
    time_of(expires, expires["unix"].as_u64().unwrap());
    assert!(
        expires["relative"]
            .as_str()
            .unwrap()
            .starts_with("expires in "),
        "{expires}"
    );
    for entry in history["entries"].as_array().unwrap() {
        let time = &entry["time"];
        let unix = time["unix"].as_u64().unwrap();
        let utc = UnixSecs::new(unix).utc();
        assert_eq!(
            time,
            &serde_json::json!({
                "unix": unix,
                "rfc3339": format!("{}T{}Z", &utc[..10], &utc[11..19]),
            })
        );
    }
    let renewed_line = line(&history["entries"], "scrip_renewed");
    time_of(
        &renewed_line["expires"],
        renewed_line["expires"]["unix"].as_u64().unwrap(),
    );
    let human_history = c.run_human(&["history"]).await;
    assert!(
        human_history
            .stdout
            .lines()
            .all(|l| l.get(19..24) == Some(" UTC ")),
        "every line starts with its UTC date: {human_history:?}"
    );
    // One table of exit codes, the one `peerscrip-ops --help` shows too.
    let help = c.run_human(&["--help"]).await;
    assert_eq!(help.code, 0);
    assert!(
        help.stdout
            .contains(&customer_cli::cli::exit::exit_codes_help()),
        "{help:?}"
    );
    assert!(help.stdout.contains("\n  5  timed out"), "{help:?}");

    c.assert_no_secret_printed();
    // 100.00 − 40.00 + 11.00 withdrawn − 5.00 topped up = 66.00 in the customer's bank;
    // 9.00 bought.
    let (bank_c, bank_m) = world.stop_and_check(2_500, 0, 900).await;
    assert_eq!((bank_c, bank_m), (6_600, 900));
}

#[actix_rt::test]
async fn interrupted_transactions_are_finished_later_and_paid_once() {
    let mut world = World::start(Suite::Paper).await;
    let mut c = init_and_register(&world).await;
    let m = world.merchant();
    c.run(&["broker-scrip", "buy", "40.00"]).await.ok();

    // 6.2 with the merchant not served: the broker holds the exchange, step 2 finds no
    // one; the deadline passes with the tx pending.
    let timed_out = c
        .run(&["vendor-scrip", "buy", &m, "15.00", "--timeout", "1s"])
        .await;
    assert_eq!(timed_out.code, 5, "{timed_out:?}");
    let doc = timed_out.json();
    assert_eq!(doc["error"], "timed_out");
    let tx = doc["tx"].as_str().unwrap().to_owned();
    let pending = c.run(&["balance", "--timeout", "1s"]).await.ok();
    assert_eq!(pending["pending"][0]["tx"], tx.as_str());
    assert_eq!(pending["pending"][0]["label"], "VendorScripRequest");
    // A second exchange cannot spend the committed BrokerScrip again: the wallet refuses
    // it before anything is sent (exit 3), naming the pending tx.
    let again = c
        .run(&["vendor-scrip", "buy", &m, "15.00", "--timeout", "1s"])
        .await;
    assert_eq!(again.code, 3, "{again:?}");
    assert!(
        again.json()["message"].as_str().unwrap().contains(&tx),
        "{again:?}"
    );

    // The merchant comes up; `status` repeats step 2 and takes both deliveries.
    world.serve_merchant(c.public_key()).await;
    let status = c.run(&["status", &tx]).await.ok();
    assert_eq!(status["pending"], false);
    let kinds = kinds_of(&status["history"]);
    assert!(kinds.contains(&"vendor_scrip_obtained"), "{status}");
    assert!(kinds.contains(&"exchange_settled"), "{status}");

    let balance = c.run(&["balance"]).await.ok();
    assert_eq!(minor(&balance["broker_scrip"]["value"]), 2_500);
    assert_eq!(minor(&balance["vendor_scrip"][0]["value"]), 1_500);
    assert_eq!(balance["pending"].as_array().unwrap().len(), 0);

    // 6.7 with the merchant gone: no responder (exit 4), the request saved and pending.
    world.stop_merchant().await;
    let gone = c
        .run(&["vendor-scrip", "withdraw", &m, "--timeout", "1s"])
        .await;
    assert_eq!(gone.code, 4, "{gone:?}");
    let doc = gone.json();
    assert_eq!(doc["error"], "unreachable");
    let tx = doc["tx"].as_str().unwrap().to_owned();
    // The merchant is back: the next command (here `balance`) finishes the withdrawal
    // first: the saved request repeated, the broker's result taken.
    world.serve_merchant(c.public_key()).await;
    let balance = c.run(&["balance"]).await.ok();
    assert_eq!(balance["resumed"][0]["tx"], tx.as_str());
    assert_eq!(balance["resumed"][0]["pending"], false);
    let kinds = kinds_of(&balance["resumed"][0]["recorded"]);
    assert!(kinds.contains(&"vendor_withdraw_decided"), "{balance}");
    assert_eq!(balance["vendor_scrip"].as_array().unwrap().len(), 0);
    assert_eq!(balance["pending"].as_array().unwrap().len(), 0);
    c.assert_no_secret_printed();
    // Paid once each way: the merchant was credited 15.00 once and paid it back once.
    let (bank_c, bank_m) = world.stop_and_check(2_500, 0, 0).await;
    assert_eq!((bank_c, bank_m), (7_500, 0));
}

#[actix_rt::test]
async fn no_server_is_unreachable_and_a_wrong_passphrase_is_refused_clearly() {
    let tmp = tempfile::tempdir().unwrap();
    let broker_pem = tmp.path().join("broker.pub.pem");
    std::fs::write(
        &broker_pem,
        fixtures::keypair(Suite::Modern, 1)
            .public()
            .to_pem()
            .unwrap(),
    )
    .unwrap();
    // A port nothing listens on: bind one, then free it.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Customer::new(
        Suite::Modern,
        tmp.path(),
        &format!("nats://127.0.0.1:{port}"),
    );
    c.run(&["init", "--broker-key", broker_pem.to_str().unwrap()])
        .await
        .ok();
    let pem = std::fs::read_to_string(c.dir.join("key.pem")).unwrap();
    assert!(
        pem.starts_with("-----BEGIN ENCRYPTED PRIVATE KEY-----"),
        "{pem}"
    );
    // The default suite is modern; the key opens with the passphrase and not without.
    assert!(KeyPair::from_pkcs8_pem(Suite::Modern, &pem, Some(PASSPHRASE.as_bytes())).is_ok());
    assert!(KeyPair::from_pkcs8_pem(Suite::Modern, &pem, None).is_err());

    let unreachable = c.run(&["broker-scrip", "buy", "1.00"]).await;
    assert_eq!(unreachable.code, 4, "{unreachable:?}");
    assert_eq!(unreachable.json()["error"], "unreachable");
    // Nothing was saved: the wallet holds nothing and nothing is pending.
    let balance = c.run(&["balance"]).await.ok();
    assert_eq!(balance["pending"].as_array().unwrap().len(), 0);
    assert!(balance["broker_scrip"].is_null());

    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "not the passphrase\n").unwrap();
    let right = std::mem::replace(&mut c.passphrase_file, wrong);
    let refused = c.run(&["balance"]).await;
    c.passphrase_file = right;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("wrong passphrase"),
        "{refused:?}"
    );
    assert!(!refused.stdout.contains("not the passphrase"));
    // Human output too: the error goes to stderr, without the passphrase.
    let mut human = tokio::process::Command::new(env!("CARGO_BIN_EXE_peerscrip"));
    let out = human
        .args(["balance", "--wallet-dir"])
        .arg(&c.dir)
        .env("PEERSCRIP_PASSPHRASE", "not the passphrase")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert!(stderr.contains("wrong passphrase"), "{stderr}");
    assert!(!stderr.contains("not the passphrase"));
    c.assert_no_secret_printed();
}

/// Every command of `peerscrip` ends by the one table (`peerscrip --help`) and prints one
/// JSON document with `--json`, before or after the subcommand: with no NATS server, each
/// command that needs the network exits 4 with the error document (`ok`, `error`,
/// `exit_code`, `message`); a bad amount is a usage error (2) in the same document; the
/// local commands answer with their documents; `completions` prints its script, `--json`
/// or not.
#[actix_rt::test]
async fn every_command_exits_by_the_table_and_prints_one_json_document() {
    let tmp = tempfile::tempdir().unwrap();
    let broker_pem = tmp.path().join("broker.pub.pem");
    std::fs::write(
        &broker_pem,
        fixtures::keypair(Suite::Paper, 1)
            .public()
            .to_pem()
            .unwrap(),
    )
    .unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut c = Customer::new(
        Suite::Paper,
        tmp.path(),
        &format!("nats://127.0.0.1:{port}"),
    );
    let init = c
        .run(&[
            "init",
            "--broker-key",
            broker_pem.to_str().unwrap(),
            "--suite",
            "paper",
        ])
        .await
        .ok();
    assert_eq!(init["ok"], true);
    let secret = tmp.path().join("pan.secret");
    std::fs::write(&secret, format!("{PAN_SECRET}\n")).unwrap();
    let merchant = fixtures::keypair(Suite::Paper, 2).uid().to_string();
    let tx = TxId([7; 16]).to_string();
    let network: [&[&str]; 12] = [
        &[
            "register",
            "--pan",
            PAN,
            "--pan-secret-file",
            secret.to_str().unwrap(),
        ],
        &["broker-scrip", "buy", "1.00"],
        &["broker-scrip", "top-up", "1.00"],
        &["broker-scrip", "withdraw"],
        &["vendor-scrip", "buy", &merchant, "1.00"],
        &["vendor-scrip", "top-up", &merchant, "1.00"],
        &["vendor-scrip", "withdraw", &merchant],
        &["shop", &merchant],
        &["buy", &merchant, "tea"],
        &["renew"],
        &["renew", &merchant],
        &["status", &tx],
    ];
    for args in network {
        let run = c.run(&[args, &["--timeout", "1s"]].concat()).await;
        assert_eq!(run.code, 4, "{args:?}: {run:?}");
        let doc = run.json();
        assert_eq!(doc["ok"], false, "{args:?}");
        assert_eq!(doc["error"], "unreachable", "{args:?}");
        assert_eq!(doc["exit_code"], 4, "{args:?}");
        assert!(doc["message"].is_string(), "{args:?}: {doc}");
    }
    // A usage error, `--json` before the subcommand: the same document, exit 2.
    let mut before = c.command(&[]);
    before.args(["--json", "broker-scrip", "buy", "1.234"]);
    let usage = c.exec(before).await;
    assert_eq!(usage.code, 2, "{usage:?}");
    let doc = usage.json();
    assert_eq!(
        (&doc["ok"], &doc["error"], &doc["exit_code"]),
        (&Value::Bool(false), &Value::from("usage"), &Value::from(2))
    );
    // The local commands, `--json` after (the harness) or before the subcommand: the same
    // document.
    let after = c.run(&["balance"]).await.ok();
    let mut first = c.command(&[]);
    first.args(["--json", "balance"]);
    assert_eq!(timeless(&c.exec(first).await.ok()), timeless(&after));
    assert_eq!(minor(&after["total"]), 0);
    let history = c.run(&["history"]).await.ok();
    assert_eq!(history["entries"], serde_json::json!([]));
    // `completions` writes its script whatever the flags.
    let script = c.run(&["completions", "bash"]).await;
    assert_eq!(script.code, 0, "{script:?}");
    assert!(script.stdout.contains("peerscrip"), "{script:?}");
    c.assert_no_secret_printed();
}

/// The refusal of a new passphrase of fewer than 8 characters, word for word.
const SHORT_PASSPHRASE: &str =
    "the new passphrase is too short: it needs at least 8 characters; nothing was written";

/// A broker public key (PEM) in `dir`, for `init`.
fn broker_pem_in(dir: &Path) -> PathBuf {
    let path = dir.join("broker.pub.pem");
    std::fs::write(
        &path,
        fixtures::keypair(Suite::Modern, 1)
            .public()
            .to_pem()
            .unwrap(),
    )
    .unwrap();
    path
}

#[actix_rt::test]
async fn a_new_passphrase_shorter_than_8_characters_is_refused_and_8_are_enough() {
    let tmp = tempfile::tempdir().unwrap();
    let broker_pem = broker_pem_in(tmp.path());
    let mut c = Customer::new(Suite::Modern, tmp.path(), "nats://127.0.0.1:1");
    let init = ["init", "--broker-key", broker_pem.to_str().unwrap()];

    // Seven characters from the file: refused before anything is written.
    let short = tmp.path().join("short");
    std::fs::write(&short, "seven c\n").unwrap();
    c.passphrase_file = short;
    let refused = c.run(&init).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    let doc = refused.json();
    assert_eq!(doc["error"], "usage", "{refused:?}");
    assert_eq!(doc["message"], SHORT_PASSPHRASE, "{refused:?}");
    assert!(!c.dir.exists(), "the wallet directory was created");
    assert!(!refused.stdout.contains("seven c") && !refused.stderr.contains("seven c"));

    // Seven characters of two bytes each (fourteen bytes), from the environment, with
    // human output: the message on stderr, and still nothing written.
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_peerscrip"))
        .args(init)
        .arg("--wallet-dir")
        .arg(&c.dir)
        .env("PEERSCRIP_PASSPHRASE", "ééééééé")
        .stdin(std::process::Stdio::null())
        .output()
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    assert!(out.stdout.is_empty(), "{out:?}");
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end(), format!("peerscrip: {SHORT_PASSPHRASE}"));
    assert!(!c.dir.exists(), "the wallet directory was created");

    // Eight characters (one of them two bytes long) are enough, and open the wallet after.
    let eight = "eight-çh";
    let enough = tmp.path().join("enough");
    std::fs::write(&enough, format!("{eight}\n")).unwrap();
    c.passphrase_file = enough;
    c.run(&init).await.ok();
    let pem = std::fs::read_to_string(c.dir.join("key.pem")).unwrap();
    assert!(KeyPair::from_pkcs8_pem(Suite::Modern, &pem, Some(eight.as_bytes())).is_ok());
    c.run(&["balance"]).await.ok();

    // Unlocking is never held to the rule: a short wrong passphrase is just wrong.
    let wrong = tmp.path().join("wrong");
    std::fs::write(&wrong, "seven c\n").unwrap();
    c.passphrase_file = wrong;
    let refused = c.run(&["balance"]).await;
    assert_eq!(refused.code, 2, "{refused:?}");
    let message = refused.json()["message"].as_str().unwrap().to_owned();
    assert!(message.contains("wrong passphrase"), "{message}");
    assert!(!message.contains("too short"), "{message}");
}

#[actix_rt::test]
async fn completions_are_printed_without_a_wallet_and_an_unknown_shell_is_a_usage_error() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = Customer::new(Suite::Modern, tmp.path(), "nats://127.0.0.1:1");
    let bash = c.run_human(&["completions", "bash"]).await;
    assert_eq!(bash.code, 0, "{bash:?}");
    assert!(bash.stdout.contains("peerscrip"), "{bash:?}");
    for word in ["vendor-scrip", "top-up", "--passphrase-file"] {
        assert!(bash.stdout.contains(word), "no {word} in the bash script");
    }
    assert!(bash.stderr.is_empty(), "{bash:?}");
    assert!(!c.dir.exists(), "completions made a wallet directory");

    let unknown = c.run_human(&["completions", "tcsh"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert!(unknown.stdout.is_empty(), "{unknown:?}");
    assert!(unknown.stderr.contains("tcsh"), "{unknown:?}");
    let unknown = c.run(&["completions", "tcsh"]).await;
    assert_eq!(unknown.code, 2, "{unknown:?}");
    assert_eq!(unknown.json()["error"], "usage", "{unknown:?}");
}

/// The customer's NATS user and password file are kept in its config (the password itself
/// is not) and used by every later command; a password the server refuses is a
/// configuration error (exit 2), and no password appears in any output.
#[actix_rt::test]
async fn the_nats_user_comes_from_the_config() {
    const ALICE_PASSWORD: &str = "alice-nats-password-0123";
    const NODE_PASSWORD: &str = "node-nats-password-4567";
    let config = format!(
        "authorization {{\n  users = [\n    {{ user: \"node\", password: \"{NODE_PASSWORD}\" }}\n    \
         {{ user: \"alice\", password: \"{ALICE_PASSWORD}\" }}\n  ]\n}}\n"
    );
    let server = NatsServer::start_with_config(&config).expect("start nats-server");
    let node = NatsCredentials::UserPassword {
        user: "node".into(),
        password: shared::SecretBytes::from_slice(NODE_PASSWORD.as_bytes()),
    };
    let world = World::start_on(Suite::Paper, server, Some(node)).await;
    let password_file = world.tmp.path().join("alice.password");
    std::fs::write(&password_file, format!("{ALICE_PASSWORD}\n")).unwrap();
    let mut c = init_and_register_with(
        &world,
        &[
            "--nats-user",
            "alice",
            "--nats-password-file",
            password_file.to_str().unwrap(),
        ],
    )
    .await;
    let config = std::fs::read_to_string(c.dir.join("config.toml")).unwrap();
    assert!(config.contains("nats_user = \"alice\""), "{config}");
    assert!(!config.contains(ALICE_PASSWORD), "{config}");
    c.run(&["broker-scrip", "buy", "1.00"]).await.ok();

    let wrong = world.tmp.path().join("wrong.password");
    std::fs::write(&wrong, "not-alice's-password\n").unwrap();
    let refused = c
        .run(&[
            "broker-scrip",
            "top-up",
            "1.00",
            "--nats-password-file",
            wrong.to_str().unwrap(),
        ])
        .await;
    assert_eq!(refused.code, 2, "{refused:?}");
    assert!(
        refused.json()["message"]
            .as_str()
            .unwrap()
            .contains("refused the wallet's credentials"),
        "{refused:?}"
    );
    for out in &c.outputs {
        assert!(!out.contains(ALICE_PASSWORD) && !out.contains("not-alice's-password"));
    }
    c.assert_no_secret_printed();
}

/// How far behind the system clock the nodes of
/// [`lapsed_scrip_is_shown_apart_and_renew_goes_on_after_each_lapse`] run while the
/// customer buys: two years, more than a scrip's lifetime and its renewal grace together.
static NODES_LAG_SECS: std::sync::atomic::AtomicU64 =
    std::sync::atomic::AtomicU64::new(2 * 365 * 24 * 3600);

/// The nodes' clock of that test: the system's, less [`NODES_LAG_SECS`].
fn lagging_clock() -> UnixSecs {
    clock().saturating_sub_secs(NODES_LAG_SECS.load(std::sync::atomic::Ordering::SeqCst))
}

/// Lapse (protocol.md section 4) through the binary: the customer bought BrokerScrip and
/// VendorScrip two years ago (the nodes' clock), so both are past expiry and the default
/// one-year grace; both producers lapse them (the value back in the bank account). Then
/// `balance` lists both as lapsed, with where the value went, and holds 0.00; `renew`
/// asks both producers, each refuses `Lapsed`, and renew goes on from the first to the
/// second, dropping and reporting each (exit 0); the 100.00 paid in is all in the bank.
#[actix_rt::test]
async fn lapsed_scrip_is_shown_apart_and_renew_goes_on_after_each_lapse() {
    let suite = Suite::Paper;
    let mut world = World::start_clocked(suite, lagging_clock).await;
    let mut c = init_and_register(&world).await;
    world.serve_merchant(c.public_key()).await;
    let m = world.merchant();
    let b = world.broker_keys.uid().to_string();
    let issued_from = lagging_clock().get();
    c.run(&["broker-scrip", "buy", "40.00"]).await.ok();
    c.run(&["vendor-scrip", "buy", &m, "10.00"]).await.ok();
    let issued_to = lagging_clock().get();

    // The producers' clock catches up: the broker's timer lapses the BrokerScrip, the
    // merchant's the VendorScrip, whose notice the broker pays back.
    NODES_LAG_SECS.store(0, std::sync::atomic::Ordering::SeqCst);
    let lapsed = broker::shell::expire(&world.broker.as_ref().unwrap().addr)
        .await
        .unwrap()
        .unwrap();
    assert_eq!(lapsed.events, 1, "the BrokerScrip lapsed");
    let addr = world.merchant.as_ref().unwrap().addr.clone();
    assert_eq!(merchant::shell::lapse(&addr).await, Some(1));
    let bus = connect_as(&world.server, "reporter", None).await;
    merchant::shell::send_reports(&addr, &bus, &world.subjects, TIMEOUT)
        .await
        .unwrap();

    // What the wallet shows: nothing held, both lapsed, their value in the bank account.
    let grace = 365 * 24 * 3600_u64;
    let shown = c.run(&["balance"]).await.ok();
    let mut expected = vec![
        (b.clone(), "BrokerScrip", "30.00", 3_000_u64),
        (m.clone(), "VendorScrip", "10.00", 1_000),
    ];
    expected.sort();
    let lapsed = shown["lapsed"].as_array().unwrap();
    assert_eq!(lapsed.len(), 2, "{shown}");
    let mut lines = vec!["BrokerScrip            none".to_owned()];
    for (entry, (producer, kind, value, minor)) in lapsed.iter().zip(&expected) {
        let expires = entry["expires"]["unix"].as_u64().unwrap();
        let lifetime = broker::core::Config::new(suite).scrip_lifetime_secs;
        assert!(
            (issued_from + lifetime..=issued_to + lifetime).contains(&expires),
            "{entry}"
        );
        assert_eq!(
            entry,
            &serde_json::json!({
                "kind": kind,
                "producer": producer,
                "value": {"value": value, "minor": minor},
                "expires": time_of(&entry["expires"], expires),
                "renewable_until": time_of(&entry["renewable_until"], expires + grace),
                "returned_to": "the bank account …0695",
            })
        );
        lines.push(format!(
            "lapsed: {kind} of {producer}  {value}  grace ended at {}: its value went back \
             to the bank account …0695",
            UnixSecs::new(expires + grace).utc()
        ));
    }
    lines.push(format!("total                  {:>12}", "0.00"));
    assert_eq!(shown["broker_scrip"], Value::Null, "{shown}");
    assert_eq!(shown["vendor_scrip"], serde_json::json!([]), "{shown}");
    assert_eq!(minor(&shown["total"]), 0, "{shown}");
    assert_eq!(shown["renewal_grace_secs"], grace);
    let human = c.run_human(&["balance"]).await;
    assert_eq!(human.code, 0, "{human:?}");
    assert_eq!(
        human
            .stdout
            .lines()
            .map(without_relative)
            .collect::<Vec<_>>(),
        lines
    );

    // renew asks both producers; each says Lapsed, and renew goes on to the next.
    let renew = c.run(&["renew"]).await.ok();
    assert_eq!(renew["renewed"], serde_json::json!([]), "{renew}");
    let reported: Vec<Value> = expected
        .iter()
        .map(|(producer, _, value, minor)| {
            serde_json::json!({
                "kind": "scrip_lapsed",
                "producer": producer,
                "value": {"value": value, "minor": minor},
                "label": "RenewRequest",
            })
        })
        .collect();
    // Each with its own tx and time, which are the wallet's to draw.
    let mut got = renew["lapsed"].as_array().unwrap().clone();
    for entry in &mut got {
        let entry = entry.as_object_mut().unwrap();
        assert!(entry.remove("tx").unwrap().is_string());
        assert!(entry.remove("time").unwrap()["unix"].is_u64());
    }
    assert_eq!(got, reported, "{renew}");
    let after = c.run(&["balance"]).await.ok();
    assert_eq!(after["lapsed"], serde_json::json!([]), "{after}");
    assert_eq!(after["pending"], serde_json::json!([]), "{after}");
    assert_eq!(minor(&after["total"]), 0);
    let history = c.run(&["history"]).await.ok();
    let dropped = kinds_of(&history["entries"])
        .iter()
        .filter(|kind| **kind == "scrip_lapsed")
        .count();
    assert_eq!(dropped, 2, "{history}");

    // Conserved: no scrip anywhere, the 100.00 in the customer's bank account.
    let (bank_c, bank_m) = world.stop_and_check(0, 0, 0).await;
    assert_eq!((bank_c, bank_m), (i128::from(DEPOSIT), 0));
    c.assert_no_secret_printed();
}

/// One command at a time per wallet: while another handle holds the wallet file, a command
/// waits (it does not fail at once), and runs as soon as the file is released; a holder
/// that keeps it for the whole `--timeout` makes it exit 5 (timed out), saying why, with
/// nothing done.
#[actix_rt::test]
async fn a_command_waits_for_a_wallet_in_use_and_gives_up_after_its_timeout() {
    let suite = Suite::Paper;
    let tmp = tempfile::tempdir().unwrap();
    let broker_pem = tmp.path().join("broker.pub.pem");
    std::fs::write(
        &broker_pem,
        fixtures::keypair(suite, 1).public().to_pem().unwrap(),
    )
    .unwrap();
    // No node is needed: `balance` of a wallet with nothing pending is local.
    let mut c = Customer::new(suite, tmp.path(), "nats://127.0.0.1:9");
    c.run(&[
        "init",
        "--broker-key",
        broker_pem.to_str().unwrap(),
        "--suite",
        suite.name(),
    ])
    .await
    .ok();
    let pem = std::fs::read_to_string(c.dir.join("key.pem")).unwrap();
    let keys = KeyPair::from_pkcs8_pem(suite, &pem, Some(PASSPHRASE.as_bytes())).unwrap();
    let wallet_file = c.dir.join("wallet.redb");
    let hold = |keys: &KeyPair| customer_cli::Wallet::open(&wallet_file, keys.clone()).unwrap();

    // Held for 1.5 s of a 20 s timeout: the command waits, then succeeds.
    let held = hold(&keys);
    let release = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(1500));
        drop(held);
    });
    let started = std::time::Instant::now();
    let waited = c.run(&["balance", "--timeout", "20s"]).await;
    let elapsed = started.elapsed();
    release.join().unwrap();
    let doc = waited.ok();
    assert_eq!(doc["command"], "balance");
    assert!(
        elapsed >= Duration::from_millis(1500),
        "it waited for the release: {elapsed:?}"
    );
    assert!(elapsed < Duration::from_secs(20), "{elapsed:?}");

    // Held for longer than the command's 1 s timeout: exit 5, nothing done.
    let held = hold(&keys);
    let len = held.log().len().unwrap();
    let started = std::time::Instant::now();
    let busy = c.run(&["balance", "--timeout", "1s"]).await;
    let elapsed = started.elapsed();
    assert_eq!(busy.code, 5, "{busy:?}");
    assert!(elapsed >= Duration::from_secs(1), "{elapsed:?}");
    let doc = busy.json();
    assert_eq!(doc["ok"], false);
    assert_eq!(doc["error"], "timed_out");
    assert_eq!(doc["exit_code"], 5);
    assert!(
        doc["message"]
            .as_str()
            .unwrap()
            .starts_with("the wallet is in use by another peerscrip command; waited 1s"),
        "{doc}"
    );
    let human = c.run_human(&["balance", "--timeout", "250ms"]).await;
    assert_eq!(human.code, 5, "{human:?}");
    assert!(
        human
            .stderr
            .contains("the wallet is in use by another peerscrip command"),
        "{human:?}"
    );
    assert_eq!(held.log().len().unwrap(), len, "nothing was done");
    drop(held);
    c.run(&["balance"]).await.ok();
    c.assert_no_secret_printed();
}
