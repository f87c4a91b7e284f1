//! Chaos through the built binaries: several customers' wallets run mixed transactions
//! at the same time while the nodes under them are killed and restarted, and at the end
//! nothing is lost, nothing is stuck and every log agrees with every other
//! (protocol.md sections 4, 7 and 10).
//!
//! The deployment is the one an operator runs: a harness `nats-server`, keys from
//! `peerscrip-ops keygen`, the `peerscrip-broker` daemon, three `peerscrip-merchant`
//! daemons (`tea` and `books`, with the default scrip lifetime; `lapse`, whose VendorScrip
//! lives [`LAPSE_LIFETIME_SECS`] with a grace of [`LAPSE_GRACE_SECS`]), the bank operator's
//! `peerscrip-ops bank` over NATS, and [`WALLETS`] customers, each a `peerscrip` wallet
//! directory of its own, registered (6.0) and funded by the bank.
//!
//! 1. Each wallet buys BrokerScrip and some of `lapse`'s VendorScrip (6.1, 6.2); `lapse`
//!    is then stopped.
//! 2. Every wallet runs a loop of its own, each command a separate `peerscrip` process,
//!    all wallets at once: BrokerScrip buy, top-up, withdraw (6.1, 6.4, 6.6), VendorScrip
//!    of `tea` or `books` buy, top-up, withdraw (6.2, 6.5, 6.7), an item bought with
//!    change (6.3), renewals (6.8). Meanwhile, counted in wallet commands (not in time),
//!    the broker and `tea` are SIGKILLed and restarted (three times each, and once more
//!    per round beyond [`BASE_ROUNDS`]), the nats-server is restarted once, and `lapse` is started again after every wallet's scrip of it
//!    passed its grace: its lapse timer removes all of them in one run (section 4,
//!    docs/adr/0011), its reporter tells the broker, which pays each back.
//! 3. With every node up, each wallet finishes what it left pending (`peerscrip status`,
//!    a bounded number of rounds) and renews: `lapse`'s `Lapsed` drops the scrip it
//!    still holds. The daemons stop on SIGTERM (exit 0); while a merchant's report or
//!    notice is still on its way (a reporter in its back-off pause), they are started
//!    and stopped again, a bounded number of times.
//! 4. Every log audits clean (`peerscrip-ops audit`), `peerscrip-ops reconcile` of all of
//!    them exits 0 with nothing in flight, and value is conserved exactly, in minor units:
//!    for each customer, bank balance + scrip held + what it paid for items = what it
//!    deposited; for each merchant, bank balance = what it was paid for items + its live
//!    VendorScrip (which the broker paid for when it was sold, section 5) = the broker's
//!    memo; the broker's float = the BrokerScrip the wallets hold; and all bank accounts
//!    plus the live BrokerScrip = the total deposited.
//!
//! A wallet command may fail while a node is down: exit 3 (refused, e.g. `Lapsed`, or
//! the wallet's own check), 4 (unreachable) or 5 (timed out: the tx pending, or the wallet
//! busy) are expected and tallied (printed at the end). A command exiting 1 or 2, killed,
//! or printing a panic, a PANSecret or a passphrase fails the test at once, as does a
//! daemon that dies on its own or prints a panic.
//!
//! Bounds: the work is counted, not timed: [`DEFAULT_ROUNDS`] rounds of each wallet's loop
//! in CI (about five commands a round; well under the three minutes CI allows it, most of
//! it the processes' start-up), and the faults come every [`FAULT_GAP`] wallet commands.
//! `PEERSCRIP_CHAOS_ROUNDS=N` runs `N` rounds per wallet (e.g. 30, a few minutes), with
//! a kill of the broker and of `tea` more per round beyond [`BASE_ROUNDS`] and one more
//! nats-server restart every [`ROUNDS_PER_NATS_RESTART`] rounds. Every wait is bounded;
//! a hard deadline ([`deadline`]) is only a safety net, failing the test with the
//! daemons' logs. Nothing asserts on a duration.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use peerscrip_tests::NatsServer;
use peerscrip_tests::processes::{Daemon, Run};
use peerscrip_tests::site::Site;
use serde_json::Value;
use shared::Suite;

const SUITE: Suite = Suite::Paper;
/// How many customers, each with its own wallet and loop.
const WALLETS: usize = 4;
/// Rounds of each wallet's loop in CI (`PEERSCRIP_CHAOS_ROUNDS` overrides).
const DEFAULT_ROUNDS: usize = 6;
/// The rounds the base schedule of faults ([`schedule`]) is spread over; each round beyond
/// adds a kill of the broker and of `tea`.
const BASE_ROUNDS: usize = 4;
/// Beyond [`BASE_ROUNDS`], one more nats-server restart every this many rounds.
const ROUNDS_PER_NATS_RESTART: usize = 4;
/// What the bank pays into each customer's account, in minor units.
const DEPOSIT: u64 = 50_000;
/// The lifetime and grace of the `lapse` merchant's VendorScrip, seconds.
const LAPSE_LIFETIME_SECS: u64 = 2;
/// See [`LAPSE_LIFETIME_SECS`].
const LAPSE_GRACE_SECS: u64 = 2;
/// How long a wallet waits for each answer (`--timeout`).
const WALLET_TIMEOUT: &str = "3s";
/// The bound on one command's run: far beyond what its `--timeout` lets it take, so that
/// only a hung process reaches it.
const COMMAND_LIMIT: Duration = Duration::from_secs(120);
/// Wallet commands between two faults.
const FAULT_GAP: usize = 7;
/// Wallet commands a killed node stays down for.
const DOWN_FOR: usize = 3;
/// Rounds of `peerscrip status` for each wallet at the end.
const SETTLE_ROUNDS: usize = 40;
/// Times the daemons are started and stopped again at the end while something is still
/// in flight between them.
const QUIESCE_ROUNDS: usize = 8;
/// Exit codes a wallet command may end with while nodes fail (see the module doc).
const EXPECTED_EXITS: [i32; 4] = [0, 3, 4, 5];
/// The items the wallets buy, in turn: the cheaper ones of `ops/deploy/catalogue.toml`,
/// which every merchant sells (4.50 and 3.20), so that a purchase has change.
const ITEMS: [&str; 2] = ["tea", "cup"];

/// The rounds of this run.
fn rounds() -> usize {
    std::env::var("PEERSCRIP_CHAOS_ROUNDS")
        .ok()
        .map_or(DEFAULT_ROUNDS, |v| {
            v.parse()
                .unwrap_or_else(|_| panic!("PEERSCRIP_CHAOS_ROUNDS={v:?} is not a number"))
        })
}

/// The safety net: a run past this fails with the daemons' logs. Far beyond what the
/// counted work takes; it only ends a run that hangs.
fn deadline(rounds: usize) -> Duration {
    Duration::from_secs(600 + 60 * u64::try_from(rounds).unwrap())
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// An amount in minor units, from the `{"value": "-12.34", "minor": -1234}` of every
/// JSON document of both binaries (signed: a ledger account may be below zero), its text
/// checked against its minor units.
fn minor(v: &Value) -> i128 {
    let m = i128::from(
        v["minor"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an amount: {v}")),
    );
    assert_eq!(decimal(&v["value"]), m, "{v}");
    m
}

/// An amount's text (`"-12.34"`), in minor units, parsed exactly.
fn decimal(v: &Value) -> i128 {
    let s = text(v);
    let (sign, digits) = s.strip_prefix('-').map_or((1, s.as_str()), |d| (-1, d));
    let (units, cents) = digits
        .split_once('.')
        .unwrap_or_else(|| panic!("not an amount: {s}"));
    assert_eq!(cents.len(), 2, "not an amount: {s}");
    sign * (units.parse::<i128>().unwrap() * 100 + cents.parse::<i128>().unwrap())
}

fn text(v: &Value) -> String {
    v.as_str()
        .unwrap_or_else(|| panic!("not a string: {v}"))
        .to_owned()
}

/// Why a command's run is not one the chaos allows: an unexpected exit code (1 failed,
/// 2 usage, killed), a panic, or a secret printed.
fn misbehaviour(run: &Run, allowed: &[i32], secrets: &[String]) -> Option<String> {
    let out = format!("{}\n{}", run.stdout, run.stderr);
    if let Some(secret) = secrets.iter().find(|s| out.contains(s.as_str())) {
        return Some(format!("a secret ({} chars) was printed", secret.len()));
    }
    if out.contains("panicked") {
        return Some("it panicked".to_owned());
    }
    (!allowed.contains(&run.code)).then(|| format!("exit {}", run.code))
}

/// One customer: its wallet directory, its passphrase file and bank account.
struct Wallet {
    name: String,
    dir: PathBuf,
    passphrase_file: PathBuf,
    nats_url: String,
    pan: String,
}

impl Wallet {
    /// `peerscrip --json --timeout … <args>` on this wallet, bounded by [`COMMAND_LIMIT`].
    fn run(&self, args: &[&str]) -> Run {
        let mut command = Site::wallet_command(&self.dir, &self.passphrase_file, &self.nats_url);
        command.args(["--timeout", WALLET_TIMEOUT]).args(args);
        Run::within(command, COMMAND_LIMIT)
    }

    /// `peerscrip balance --json`, which works on the wallet file alone.
    fn balance(&self) -> Value {
        self.run(&["balance"]).ok()
    }
}

/// A merchant daemon's identity and settings.
struct Merchant {
    name: &'static str,
    uid: String,
    pan: String,
    flags: Vec<String>,
}

/// The deployment (`peerscrip_tests::site`: keys, secrets, data) and the server's URL.
struct Deployment {
    site: Site,
    nats_url: String,
    broker_uid: String,
}

impl Deployment {
    fn path(&self, rel: &str) -> PathBuf {
        self.site.path(rel)
    }

    /// `peerscrip-ops <args>`, bounded, its output kept.
    fn ops(&self, args: &[&str]) -> Run {
        self.site.ops(args)
    }

    fn keygen(&self, who: &str) -> String {
        text(&self.site.keygen(who)["uid"])
    }

    /// `peerscrip-ops bank --json … <args>` over NATS.
    fn bank(&self, args: &[&str]) -> Value {
        self.site.operator(&self.nats_url, "bank", args)
    }

    fn broker(&self) -> Daemon {
        let mut command = self.site.broker_command(&self.nats_url);
        // The timer that ends what ran out also caps the pause between re-sends of a
        // 6.5 authorization (ARCHITECTURE.md, "The actor shell"): a merchant back from a
        // kill gets it within seconds.
        command.args(["--expire-every-secs", "5"]);
        Daemon::start("peerscrip-broker", command, "broker serving")
    }

    fn merchant(&self, m: &Merchant) -> Daemon {
        let mut command = self.site.merchant_command(m.name, &self.nats_url);
        command
            .args(["--pan", &m.pan])
            .arg("--pan-secret-file")
            .arg(self.path(&format!("secrets/{}.pansecret", m.name)))
            .args(["--request-timeout-secs", "5", "--log-format", "json"])
            .args(&m.flags);
        Daemon::start("peerscrip-merchant", command, "merchant serving")
    }

    /// Every PANSecret the bank drew and every passphrase: none may ever be printed.
    fn secrets(&self) -> Vec<String> {
        let mut secrets = Vec::new();
        for entry in std::fs::read_dir(self.path("secrets")).unwrap() {
            let secret = std::fs::read_to_string(entry.unwrap().path()).unwrap();
            secrets.push(secret.trim().to_owned());
        }
        secrets
    }
}

/// The running daemons, and the log of every instance that ran (for a failure's report).
struct Nodes {
    server: NatsServer,
    broker: Daemon,
    /// `tea`, `books`, `lapse`, in [`World::merchants`] order; `lapse` is `None` while
    /// stopped.
    merchants: Vec<Option<Daemon>>,
    past: Vec<Daemon>,
}

impl Nodes {
    /// Fails the test with `why` and the tail of every daemon's log.
    fn fail(&self, why: &str) -> ! {
        let mut report = format!("{why}\n");
        let running = std::iter::once(&self.broker).chain(self.merchants.iter().flatten());
        for (i, d) in self.past.iter().chain(running).enumerate() {
            let log = d.log();
            let lines: Vec<&str> = log.lines().collect();
            let tail = &lines[lines.len().saturating_sub(60)..];
            report.push_str(&format!(
                "--- daemon instance {i}, last {} lines:\n{}\n",
                tail.len(),
                tail.join("\n")
            ));
        }
        report.push_str(&format!(
            "--- nats-server log: {}\n",
            self.server.log_path().display()
        ));
        panic!("{report}");
    }

    /// Fails the test unless every daemon that should run does and none printed a panic.
    fn check_alive(&mut self) {
        if let Some(why) = self.trouble() {
            self.fail(&why);
        }
    }

    /// What is wrong with the daemons: one that should run exited, or one panicked.
    fn trouble(&mut self) -> Option<String> {
        if !self.broker.is_running() {
            return Some("the broker exited on its own".to_owned());
        }
        if self.merchants.iter_mut().flatten().any(|m| !m.is_running()) {
            return Some("a merchant exited on its own".to_owned());
        }
        let running = std::iter::once(&self.broker).chain(self.merchants.iter().flatten());
        if self
            .past
            .iter()
            .chain(running)
            .any(|d| d.count("panicked") > 0)
        {
            return Some("a daemon panicked".to_owned());
        }
        None
    }

    /// SIGTERM to every daemon: each exits 0.
    fn terminate_all(&mut self) {
        for i in 0..self.merchants.len() {
            if let Some(mut m) = self.merchants[i].take() {
                let status = m.terminate();
                self.past.push(m);
                if status.code() != Some(0) {
                    self.fail(&format!("a merchant's SIGTERM ended it with {status}"));
                }
            }
        }
        let status = self.broker.terminate();
        if status.code() != Some(0) {
            self.fail(&format!("the broker's SIGTERM ended it with {status}"));
        }
    }
}

/// A fault the chaos injects.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    /// SIGKILL of the broker, restarted after [`DOWN_FOR`] wallet commands.
    KillBroker,
    /// SIGKILL of `tea`, restarted likewise.
    KillMerchant,
    /// The nats-server killed and started again on its port and store.
    RestartNats,
    /// `lapse` started again once every wallet's scrip of it passed its grace.
    LapseMerchantBack,
}

/// The faults of a run of `rounds` rounds, in order (see the module doc).
fn schedule(rounds: usize) -> Vec<Fault> {
    let mut faults = vec![
        Fault::KillBroker,
        Fault::KillMerchant,
        Fault::RestartNats,
        Fault::KillBroker,
        Fault::LapseMerchantBack,
        Fault::KillMerchant,
        Fault::KillBroker,
        Fault::KillMerchant,
    ];
    for extra in BASE_ROUNDS..rounds {
        faults.extend([Fault::KillBroker, Fault::KillMerchant]);
        if (extra + 1 - BASE_ROUNDS).is_multiple_of(ROUNDS_PER_NATS_RESTART) {
            faults.push(Fault::RestartNats);
        }
    }
    faults
}

/// What the wallets' loops share with the chaos: commands run so far, whether the
/// faults are all done, and whether to stop at once.
struct Progress {
    steps: AtomicUsize,
    chaos_done: AtomicBool,
    abort: AtomicBool,
    start: Instant,
    deadline: Duration,
}

/// One wallet loop's outcome: every command with its exit code, and why it stopped early.
#[derive(Default)]
struct Tally {
    runs: Vec<(String, i32)>,
    failure: Option<String>,
}

impl Tally {
    /// Runs `args` on `w`, records its exit code; `None` (and the failure kept) when the
    /// run is not one the chaos allows.
    fn run(&mut self, w: &Wallet, args: &[&str], secrets: &[String]) -> Option<Run> {
        let run = w.run(args);
        let mut name = args
            .iter()
            .take_while(|a| !a.chars().next().unwrap().is_ascii_digit() && a.len() < 20)
            .copied()
            .collect::<Vec<_>>()
            .join(" ");
        if run.code == 3 {
            // Which refusal: the node's code, or the wallet's own check.
            let doc: Value = serde_json::from_str(run.stdout.trim()).unwrap_or_default();
            let why = doc["code_name"].as_str().unwrap_or("by the wallet");
            name.push_str(&format!(" (refused: {why})"));
        }
        self.runs.push((name, run.code));
        match misbehaviour(&run, &EXPECTED_EXITS, secrets) {
            Some(why) => {
                self.failure = Some(format!(
                    "{}: `peerscrip {}`: {why}: {run:?}",
                    w.name,
                    args.join(" ")
                ));
                None
            }
            None => Some(run),
        }
    }
}

/// One wallet's loop of mixed transactions (see the module doc), `rounds` rounds and then
/// more (at most as many again) while faults remain; it stops early on a command that
/// misbehaves, on `abort`, or past the deadline.
fn wallet_loop(
    index: usize,
    w: &Wallet,
    merchants: [&str; 2],
    broker_uid: &str,
    rounds: usize,
    progress: &Progress,
    secrets: &[String],
) -> Tally {
    let mut tally = Tally::default();
    for round in 0..2 * rounds {
        if round >= rounds && progress.chaos_done.load(Ordering::SeqCst) {
            break;
        }
        let m = merchants[(index + round) % 2];
        let item = ITEMS[round % ITEMS.len()];
        let mut plan: Vec<Vec<String>> = Vec::new();
        let owned = |args: &[&str]| args.iter().map(|a| (*a).to_owned()).collect::<Vec<_>>();
        let Some(balance) = tally.run(w, &["balance"], secrets) else {
            progress.abort.store(true, Ordering::SeqCst);
            return tally;
        };
        let balance = balance.json();
        if balance["broker_scrip"].is_null() {
            plan.push(owned(&["broker-scrip", "buy", "30.00"]));
        } else {
            plan.push(owned(&["broker-scrip", "top-up", "10.00"]));
        }
        let holds_vendor = balance["vendor_scrip"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["merchant"] == m);
        if holds_vendor {
            plan.push(owned(&["vendor-scrip", "top-up", m, "5.00"]));
        } else {
            plan.push(owned(&["vendor-scrip", "buy", m, "12.00"]));
        }
        plan.push(owned(&["buy", m, item]));
        plan.push(owned(&[
            "renew",
            if round % 2 == 0 { m } else { broker_uid },
        ]));
        if round % 2 == 1 {
            plan.push(owned(&["vendor-scrip", "withdraw", m]));
        }
        if round % 3 == 2 {
            plan.push(owned(&["broker-scrip", "withdraw"]));
        }
        for args in plan {
            if progress.abort.load(Ordering::SeqCst) {
                return tally;
            }
            if progress.start.elapsed() > progress.deadline {
                tally.failure = Some(format!("{}: the run passed its deadline", w.name));
                return tally;
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let ran = tally.run(w, &args, secrets);
            progress.steps.fetch_add(1, Ordering::SeqCst);
            if ran.is_none() {
                progress.abort.store(true, Ordering::SeqCst);
                return tally;
            }
        }
    }
    tally
}

/// Waits (bounded by the deadline) until the wallets ran `steps` commands in all, or
/// stopped; `false` when the run must end (a failure or the deadline).
fn wait_steps(progress: &Progress, steps: usize, loops_running: &AtomicUsize) -> bool {
    loop {
        if progress.abort.load(Ordering::SeqCst) || progress.start.elapsed() > progress.deadline {
            return false;
        }
        if progress.steps.load(Ordering::SeqCst) >= steps
            || loops_running.load(Ordering::SeqCst) == 0
        {
            return true;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The whole deployment while it runs: its directory, the merchants, the customers'
/// wallets, the daemons and the secrets none may print.
struct World {
    d: Deployment,
    /// `tea`, `books` (the wallets' loops trade with both; `tea` is killed), `lapse`.
    merchants: Vec<Merchant>,
    wallets: Vec<Wallet>,
    nodes: Nodes,
    secrets: Vec<String>,
    /// The unix second after which every scrip of `lapse` is past its grace.
    lapse_due: u64,
}

/// The chaos's commands by name and exit code, with how many ran.
type Codes = BTreeMap<(String, i32), usize>;

impl World {
    /// Keys, the broker, the bank accounts (three merchants; the customers funded), the
    /// merchants (each registering itself, 6.0), and phase 1 of the module doc: each
    /// wallet created, registered, with BrokerScrip and `lapse`'s VendorScrip; `lapse`
    /// then stopped.
    fn set_up() -> World {
        let server = NatsServer::start().expect("start nats-server");
        let mut d = Deployment {
            site: Site::new(SUITE),
            nats_url: server.url(),
            broker_uid: String::new(),
        };
        d.broker_uid = d.keygen("broker");
        d.keygen("operator");
        let broker = d.broker();
        let mut merchants: Vec<Merchant> = ["tea", "books", "lapse"]
            .iter()
            .enumerate()
            .map(|(i, name)| Merchant {
                name,
                uid: d.keygen(name),
                pan: format!("GR96081000100000012345678{i:02}"),
                flags: Vec::new(),
            })
            .collect();
        merchants[2].flags = vec![
            "--scrip-lifetime-secs".to_owned(),
            LAPSE_LIFETIME_SECS.to_string(),
            "--grace-secs".to_owned(),
            LAPSE_GRACE_SECS.to_string(),
        ];
        let wallets: Vec<Wallet> = (0..WALLETS)
            .map(|i| Wallet {
                name: format!("customer-{i}"),
                dir: d.path(&format!("wallets/customer-{i}")),
                passphrase_file: d.path(&format!("secrets/customer-{i}.passphrase")),
                nats_url: d.nats_url.clone(),
                pan: format!("GR16011012500000000123007{i:02}"),
            })
            .collect();
        for m in &merchants {
            let secret = d.path(&format!("secrets/{}.pansecret", m.name));
            d.site.open_account(&d.nats_url, &m.pan, &secret);
        }
        let deposit = format!("{}.{:02}", DEPOSIT / 100, DEPOSIT % 100);
        for w in &wallets {
            std::fs::write(
                &w.passphrase_file,
                format!("the passphrase of {}'s wallet\n", w.name),
            )
            .unwrap();
            let secret = d.path(&format!("secrets/{}.pansecret", w.name));
            d.site.open_account(&d.nats_url, &w.pan, &secret);
            let paid_in = d.bank(&["deposit", "--pan", &w.pan, "--amount", &deposit]);
            assert_eq!(paid_in["balance"]["value"], deposit.as_str());
        }
        let secrets = d.secrets();
        let nodes = Nodes {
            server,
            broker,
            merchants: merchants.iter().map(|m| Some(d.merchant(m))).collect(),
            past: Vec::new(),
        };
        let mut world = World {
            d,
            merchants,
            wallets,
            nodes,
            secrets,
            lapse_due: 0,
        };

        let broker_pub = world.d.path("keys/broker/key.pub.pem");
        let lapse = world.merchants[2].uid.clone();
        for i in 0..WALLETS {
            let secret = world
                .d
                .path(&format!("secrets/{}.pansecret", world.wallets[i].name));
            world.setup_run(
                i,
                &[
                    "init",
                    "--suite",
                    SUITE.name(),
                    "--broker-key",
                    broker_pub.to_str().unwrap(),
                ],
            );
            let pan = world.wallets[i].pan.clone();
            world.setup_run(
                i,
                &[
                    "register",
                    "--pan",
                    &pan,
                    "--pan-secret-file",
                    secret.to_str().unwrap(),
                ],
            );
            world.setup_run(i, &["broker-scrip", "buy", "30.00"]);
            world.setup_run(i, &["vendor-scrip", "buy", &lapse, "6.00"]);
        }
        let mut stopped = world.nodes.merchants[2].take().unwrap();
        assert_eq!(stopped.terminate().code(), Some(0), "{}", stopped.log());
        world.nodes.past.push(stopped);
        // Every scrip of `lapse` was issued before its stop, so it has expired by
        // then and its grace ended after that: a lapse run past this second removes all.
        world.lapse_due = unix_now() + LAPSE_LIFETIME_SECS + LAPSE_GRACE_SECS + 1;
        world
    }

    /// A wallet command of the set-up, where nothing fails: exit 0 only.
    fn setup_run(&self, wallet: usize, args: &[&str]) {
        let w = &self.wallets[wallet];
        let run = w.run(args);
        if let Some(why) = misbehaviour(&run, &[0], &self.secrets) {
            self.nodes.fail(&format!(
                "{}: `peerscrip {}`: {why}: {run:?}",
                w.name,
                args.join(" ")
            ));
        }
    }

    /// Phase 2: every wallet's loop on a thread of its own, and the faults of `rounds`
    /// injected from this thread as the wallets' commands reach each one's turn. Returns
    /// the exit codes of the wallets' commands; fails the test on a command or daemon
    /// that misbehaves.
    fn chaos(&mut self, rounds: usize) -> Codes {
        let progress = Progress {
            steps: AtomicUsize::new(0),
            chaos_done: AtomicBool::new(false),
            abort: AtomicBool::new(false),
            start: Instant::now(),
            deadline: deadline(rounds),
        };
        let loops_running = AtomicUsize::new(WALLETS);
        let mut done = Vec::new();
        let World {
            d,
            merchants,
            wallets,
            nodes,
            secrets,
            lapse_due,
        } = self;
        let (wallets, secrets): (&[Wallet], &[String]) = (wallets, secrets);
        let pair = [merchants[0].uid.as_str(), merchants[1].uid.as_str()];
        let broker_uid = d.broker_uid.as_str();
        let tallies: Vec<Tally> = std::thread::scope(|scope| {
            let handles: Vec<_> = wallets
                .iter()
                .enumerate()
                .map(|(i, w)| {
                    let (progress, loops_running) = (&progress, &loops_running);
                    scope.spawn(move || {
                        let tally = wallet_loop(i, w, pair, broker_uid, rounds, progress, secrets);
                        loops_running.fetch_sub(1, Ordering::SeqCst);
                        tally
                    })
                })
                .collect();
            let mut at = 0;
            for fault in schedule(rounds) {
                at += FAULT_GAP;
                if !wait_steps(&progress, at, &loops_running) {
                    break;
                }
                let injected = inject(
                    fault,
                    nodes,
                    (d, merchants, *lapse_due),
                    &progress,
                    &loops_running,
                );
                match injected {
                    Ok(true) => done.push(fault),
                    // A wallet's failure or the deadline: reported below.
                    Ok(false) => break,
                    Err(why) => {
                        progress.abort.store(true, Ordering::SeqCst);
                        for handle in handles {
                            let _ = handle.join();
                        }
                        nodes.fail(&why);
                    }
                }
            }
            progress.chaos_done.store(true, Ordering::SeqCst);
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        if let Some(failure) = tallies.iter().find_map(|t| t.failure.clone()) {
            self.nodes.fail(&failure);
        }
        if done != schedule(rounds) {
            self.nodes.fail(&format!(
                "the chaos ended early, after {done:?} (the deadline or a failure)"
            ));
        }
        self.nodes.check_alive();
        eprintln!("chaos: {rounds} rounds, faults {done:?}");
        let mut codes = Codes::new();
        for t in &tallies {
            for (name, code) in &t.runs {
                *codes.entry((name.clone(), *code)).or_default() += 1;
            }
        }
        codes
    }

    /// Phase 3: every wallet (at once) finishes what it left pending and renews what
    /// expired, so that `lapse`'s `Lapsed` drops the scrip the broker paid back; each then
    /// has the one lapse in its history. Adds the commands' exit codes to `codes`.
    fn settle(&self, codes: &mut Codes) {
        let lapse = self.merchants[2].uid.as_str();
        let settled: Vec<Result<Tally, String>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .wallets
                .iter()
                .map(|w| scope.spawn(move || settle(w, lapse, &self.secrets)))
                .collect();
            handles.into_iter().map(|h| h.join().unwrap()).collect()
        });
        for s in settled {
            match s {
                Ok(t) => {
                    for (name, code) in t.runs {
                        *codes.entry((format!("(end) {name}"), code)).or_default() += 1;
                    }
                }
                Err(why) => self.nodes.fail(&why),
            }
        }
        for w in &self.wallets {
            let history = w.run(&["history"]).ok();
            let lapsed = history["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "scrip_lapsed" && e["producer"] == lapse)
                .count();
            if lapsed != 1 {
                self.nodes.fail(&format!(
                    "{} learned of {lapsed} lapses of `lapse`'s scrip, not 1: {history}",
                    w.name
                ));
            }
        }
    }

    /// Phase 3's end: SIGTERM (exit 0) and reconcile; while a report or notice is still
    /// in flight between the nodes, start them and stop them again (a restarted node
    /// resumes its open work at once, protocol.md section 10), a bounded number of times.
    /// Returns the reconciliation, which exited 0 with nothing in flight.
    fn stop_when_quiet(&mut self) -> Value {
        for round in 0..QUIESCE_ROUNDS {
            self.nodes.check_alive();
            self.nodes.terminate_all();
            let run = self.reconcile();
            if misbehaviour(&run, &[0], &self.secrets).is_some() {
                self.nodes.fail(&format!("reconcile failed: {run:?}"));
            }
            let report = run.json();
            if report["in_flight"].as_array().unwrap().is_empty() {
                return report;
            }
            if round + 1 == QUIESCE_ROUNDS {
                self.nodes.fail(&format!(
                    "still in flight after {QUIESCE_ROUNDS} restarts: {report}"
                ));
            }
            let old = std::mem::replace(&mut self.nodes.broker, self.d.broker());
            self.nodes.past.push(old);
            for (i, m) in self.merchants.iter().enumerate() {
                self.nodes.merchants[i] = Some(self.d.merchant(m));
            }
            std::thread::sleep(Duration::from_secs(2));
        }
        unreachable!("the last round returns or fails")
    }

    /// `peerscrip-ops reconcile --json` of every log.
    fn reconcile(&self) -> Run {
        let mut args = vec![
            "reconcile".to_owned(),
            "--json".to_owned(),
            self.d.path("data/broker").to_str().unwrap().to_owned(),
        ];
        for m in &self.merchants {
            let dir = self.d.path(&format!("data/{}", m.name));
            args.push(dir.to_str().unwrap().to_owned());
        }
        for w in &self.wallets {
            args.push("--wallet".to_owned());
            args.push(w.dir.to_str().unwrap().to_owned());
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        self.d.ops(&args)
    }

    /// `peerscrip-ops audit --json <args>`: exit 0, no finding; its report.
    fn audit(&self, args: &[&str]) -> Value {
        let run = self.d.ops(&[&["audit", "--json"][..], args].concat());
        if misbehaviour(&run, &[0], &self.secrets).is_some() {
            self.nodes.fail(&format!("audit {args:?}: {run:?}"));
        }
        let doc = run.json();
        assert!(doc["finding"].is_null(), "{doc}");
        doc
    }

    /// Phase 4: every log audits clean, and value is conserved exactly (module doc).
    fn check_books(&self, reconciled: &Value) {
        let broker_dir = self.d.path("data/broker");
        let broker = self.audit(&[broker_dir.to_str().unwrap()]);
        // A merchant's log brings no keys: the broker's is pinned, as every peer pins it
        // (protocol.md section 1), and the customers' come from the broker's log.
        let pinned = self.d.path("pinned");
        std::fs::create_dir_all(&pinned).unwrap();
        std::fs::copy(
            self.d.path("keys/broker/key.pub.pem"),
            pinned.join("broker.pem"),
        )
        .unwrap();
        let merchants: Vec<Value> = self
            .merchants
            .iter()
            .map(|m| {
                let dir = self.d.path(&format!("data/{}", m.name));
                self.audit(&[
                    dir.to_str().unwrap(),
                    "--keys",
                    pinned.to_str().unwrap(),
                    "--broker-log",
                    broker_dir.to_str().unwrap(),
                ])
            })
            .collect();
        let wallets: Vec<Value> = self
            .wallets
            .iter()
            .map(|w| self.audit(&[w.dir.to_str().unwrap()]))
            .collect();

        let balances = &broker["balances"];
        let bank = |pan: &str| minor(&balances[format!("bank:{pan}")]);
        let deposited = i128::from(DEPOSIT) * i128::try_from(WALLETS).unwrap();
        assert_eq!(minor(&balances["external"]), -deposited, "{broker}");
        let (mut broker_scrip, mut paid_by_customers, mut customers) = (0, 0, 0);
        for (w, audit) in self.wallets.iter().zip(&wallets) {
            let held: BTreeMap<String, i128> = audit["balances"]
                .as_object()
                .unwrap()
                .iter()
                .map(|(k, v)| (k.clone(), minor(v)))
                .collect();
            broker_scrip += held.get("scrip:broker").copied().unwrap_or(0);
            let history = w.run(&["history"]).ok();
            let paid: i128 = history["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "item_bought")
                .map(|e| minor(&e["paid"]))
                .sum();
            let held_total: i128 = held.values().sum();
            assert_eq!(
                bank(&w.pan) + held_total + paid,
                i128::from(DEPOSIT),
                "{}: bank {} + held {held:?} + paid for items {paid} = its deposit",
                w.name,
                bank(&w.pan)
            );
            paid_by_customers += paid;
            customers += bank(&w.pan) + held_total;
        }
        assert_eq!(
            minor(&balances["float:broker"]),
            broker_scrip,
            "the broker's float is the BrokerScrip the wallets hold"
        );
        let (mut paid_to_merchants, mut merchants_bank) = (0, 0);
        for (m, audit) in self.merchants.iter().zip(&merchants) {
            let (paid, live) = (
                minor(&audit["balances"]["books:paid"]),
                minor(&audit["balances"]["live"]),
            );
            let held: i128 = wallets
                .iter()
                .filter_map(|a| a["balances"].get(format!("scrip:{}", m.uid)))
                .map(minor)
                .sum();
            assert_eq!(
                live, held,
                "{}: live VendorScrip = what the wallets hold",
                m.name
            );
            assert_eq!(
                bank(&m.pan),
                paid + live,
                "{}: bank = paid for items + live VendorScrip",
                m.name
            );
            let memo = reconciled["merchants"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["uid"] == m.uid.as_str())
                .unwrap();
            assert_eq!(minor(&memo["memo"]), live, "{}: {memo}", m.name);
            paid_to_merchants += paid;
            merchants_bank += bank(&m.pan);
        }
        assert_eq!(
            paid_by_customers, paid_to_merchants,
            "what the customers paid for items is what the merchants were paid"
        );
        assert_eq!(
            customers + paid_by_customers,
            deposited,
            "the customers' banks and scrip + what they paid for items = the deposits"
        );
        let customers_bank: i128 = self.wallets.iter().map(|w| bank(&w.pan)).sum();
        assert_eq!(
            customers_bank + merchants_bank + minor(&balances["float:broker"]),
            deposited,
            "all bank accounts + the live BrokerScrip = the deposits (VendorScrip is paid \
             for in its merchant's bank account, section 5)"
        );
    }

    /// No daemon and no `peerscrip-ops` run printed a secret, no daemon a panic (the
    /// wallets' commands are checked as they run).
    fn check_printed(&self) {
        let printed = self.d.site.printed();
        if printed
            .iter()
            .any(|out| self.secrets.iter().any(|s| out.contains(s.as_str())))
        {
            self.nodes.fail("a peerscrip-ops command printed a secret");
        }
        for daemon in self.nodes.past.iter().chain([&self.nodes.broker]) {
            let log = daemon.log();
            if self.secrets.iter().any(|s| log.contains(s.as_str())) {
                self.nodes.fail("a daemon logged a secret");
            }
            if log.contains("panicked") {
                self.nodes.fail("a daemon panicked");
            }
        }
    }
}

#[test]
fn wallets_trade_at_once_while_nodes_are_killed_and_everything_adds_up() {
    let rounds = rounds();
    let mut world = World::set_up();
    let mut codes = world.chaos(rounds);
    world.settle(&mut codes);
    eprintln!("chaos: exit codes by command: {codes:?}");
    // The loops did real work: every kind of transaction succeeded at least once.
    for kind in [
        "broker-scrip buy",
        "broker-scrip top-up",
        "broker-scrip withdraw",
        "vendor-scrip buy",
        "vendor-scrip top-up",
        "vendor-scrip withdraw",
        "buy",
        "renew",
    ] {
        if !codes.contains_key(&(kind.to_owned(), 0)) {
            world
                .nodes
                .fail(&format!("no `{kind}` succeeded: {codes:?}"));
        }
    }
    let reconciled = world.stop_when_quiet();
    world.check_books(&reconciled);
    world.check_printed();
}

/// Injects one fault (see [`Fault`]) into `nodes` of the deployment `d`, whose `lapse`
/// merchant may start again after `lapse_due`. `Ok(false)` when the run stopped meanwhile (a wallet's failure or the deadline);
/// `Err` says what went wrong with the daemons.
fn inject(
    fault: Fault,
    nodes: &mut Nodes,
    (d, merchants, lapse_due): (&Deployment, &[Merchant], u64),
    progress: &Progress,
    loops_running: &AtomicUsize,
) -> Result<bool, String> {
    if let Some(why) = nodes.trouble() {
        return Err(why);
    }
    let down_until = |progress: &Progress| progress.steps.load(Ordering::SeqCst) + DOWN_FOR;
    match fault {
        Fault::KillBroker => {
            nodes.broker.kill();
            if !wait_steps(progress, down_until(progress), loops_running) {
                return Ok(false);
            }
            let old = std::mem::replace(&mut nodes.broker, d.broker());
            nodes.past.push(old);
        }
        Fault::KillMerchant => {
            let mut tea = nodes.merchants[0].take().unwrap();
            tea.kill();
            nodes.past.push(tea);
            if !wait_steps(progress, down_until(progress), loops_running) {
                return Ok(false);
            }
            nodes.merchants[0] = Some(d.merchant(&merchants[0]));
        }
        Fault::RestartNats => nodes
            .server
            .restart()
            .map_err(|e| format!("restarting nats-server: {e}"))?,
        Fault::LapseMerchantBack => {
            // A bounded pause, only if the wallets got here sooner.
            while unix_now() < lapse_due {
                std::thread::sleep(Duration::from_millis(100));
            }
            let mut lapse = d.merchant(&merchants[2]);
            lapse.wait_for("VendorScrip past its renewal grace lapsed", 1);
            let runs: Vec<u64> = lapse
                .log()
                .lines()
                .filter(|l| l.contains("past its renewal grace lapsed"))
                .map(|l| {
                    let line: Value = serde_json::from_str(l).unwrap();
                    line["fields"]["lapsed"].as_u64().unwrap()
                })
                .collect();
            nodes.merchants[2] = Some(lapse);
            if runs != [u64::try_from(WALLETS).unwrap()] {
                return Err(format!(
                    "every wallet's scrip of `lapse` should lapse in its first run: {runs:?}"
                ));
            }
        }
    }
    Ok(true)
}

/// Finishes what `w` left pending (`peerscrip status <tx>`, a bounded number of rounds)
/// and renews its expired scrip, until nothing is pending and it holds no scrip of
/// `lapse` (dropped on `lapse`'s `Lapsed`). `Err` says why it could not.
fn settle(w: &Wallet, lapse_uid: &str, secrets: &[String]) -> Result<Tally, String> {
    let mut tally = Tally::default();
    for _ in 0..SETTLE_ROUNDS {
        let balance = w.balance();
        let pending: Vec<String> = balance["pending"]
            .as_array()
            .unwrap()
            .iter()
            .map(|p| text(&p["tx"]))
            .collect();
        let holds_lapsed = balance["vendor_scrip"]
            .as_array()
            .unwrap()
            .iter()
            .any(|v| v["merchant"] == lapse_uid);
        if pending.is_empty() && !holds_lapsed {
            return Ok(tally);
        }
        for tx in &pending {
            if tally.run(w, &["status", tx], secrets).is_none() {
                return Err(tally.failure.unwrap());
            }
        }
        if pending.is_empty() && tally.run(w, &["renew"], secrets).is_none() {
            return Err(tally.failure.unwrap());
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    Err(format!(
        "{}: still pending or holding `lapse`'s scrip after {SETTLE_ROUNDS} rounds: {}",
        w.name,
        w.balance()
    ))
}
