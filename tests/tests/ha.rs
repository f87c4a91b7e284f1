//! The broker highly available (docs/adr/0017, README "Run it highly available"), through
//! the built binaries on a real three-server JetStream cluster (`nats-server` 2.15.1, each
//! server its own port and store, `sync_interval: always`): two or three
//! `peerscrip-broker --ha` processes with one key, the operator's `peerscrip-ops`, and
//! customers' `peerscrip` wallets, all given the three servers' URLs.
//!
//! - **Takeover**: the leader is SIGKILLed while wallets transact with it and with a
//!   merchant daemon (6.3, 6.4, 6.5); the standby serves; every transaction a wallet saw
//!   acknowledged is in the new leader's log, every pending one finishes, the merchant's
//!   reports arrive, the logs audit clean, reconcile finds nothing in flight and no
//!   mismatch, and value is conserved to the minor unit. A third broker started on an empty data directory then
//!   catches up from the stream: its events and tables equal the leader's.
//! - **Fencing**: the leader is SIGSTOPped past its lease; the standby takes over and
//!   serves a request that the frozen leader also holds, undelivered; on SIGCONT the old
//!   leader steps down without appending it, and rejoins as a standby whose file equals
//!   the new leader's.
//! - **Quorum**: with one server of three down the broker goes on serving; with two down
//!   it acknowledges nothing; with one back it serves again, losing nothing.
//! - **One root key**: a broker given another root key than the deployment's (whose scrip
//!   certificates the others would refuse) does not follow the log: it stops, saying why.
//!
//! Nothing asserts on a duration: every wait is bounded by [`PATIENCE`]. The takeover
//! time is printed (`--nocapture`), the figure of the README.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::BTreeSet;
use std::path::Path;
use std::time::{Duration, Instant};

use broker::core::{Kind, State};
use broker::store::LiveProjection;
use peerscrip_tests::admin_http::{admin_url, status_until};
use peerscrip_tests::nats_cluster::NatsCluster;
use peerscrip_tests::processes::{Daemon, PATIENCE, Run, minor};
use peerscrip_tests::site::{Site, path_str};
use serde_json::Value;
use shared::Suite;
use shared::events::EventLog;
use shared::node::Recorded;

const SUITE: Suite = Suite::Paper;
/// The lease TTL of the tests' brokers, seconds: short, so that a takeover is quick.
const LEASE_TTL_SECS: u64 = 3;
const DEPOSIT: u64 = 10_000;
/// The PAN of `ops/deploy/merchant.toml`.
const PAN_M: &str = "GR9608100010000001234567890";
const PASSPHRASE: &str = "an available wallet's passphrase";
/// The log line of a broker that took the lease and serves.
const LEADING: &str = "holding the lease: serving";
/// The log line of a broker following the stream without the lease.
const STANDING_BY: &str = "standing by: following the replicated log";
/// The log line of a fenced broker.
const STEPPING_DOWN: &str = "stepping down: no longer serving";

/// The deployment: the cluster, the site and the customers.
struct Ha {
    cluster: NatsCluster,
    site: Site,
    url: String,
    wallets: Vec<Wallet>,
}

struct Wallet {
    name: String,
    pan: String,
}

impl Ha {
    /// The cluster, the keys, and `customers` wallets; no broker yet.
    fn new(customers: usize) -> Ha {
        let cluster = NatsCluster::start().expect("start the cluster");
        let url = cluster.url();
        let site = Site::new(SUITE);
        let _ = site.keygen("broker");
        let _ = site.keygen("operator");
        let wallets = (0..customers)
            .map(|i| Wallet {
                name: format!("wallet{i}"),
                pan: format!("GR16011012500000000123006{i:02}"),
            })
            .collect();
        Ha {
            cluster,
            site,
            url,
            wallets,
        }
    }

    /// `peerscrip-broker --ha` as instance `who` on `data/<who>`.
    fn broker(&self, who: &str) -> Daemon {
        let command = self.site.ha_broker_command(&self.url, who, LEASE_TTL_SECS);
        Daemon::spawn("peerscrip-broker", command)
    }

    /// Accounts opened and funded, wallets registered, each with 40.00 of BrokerScrip.
    fn onboard(&self) {
        let broker_key = self.site.public_key("broker");
        for w in &self.wallets {
            let secret = self.site.path(&format!("secrets/{}.pansecret", w.name));
            self.site.open_account(&self.url, &w.pan, &secret);
            let amount = format!("{}.{:02}", DEPOSIT / 100, DEPOSIT % 100);
            let deposit = ["deposit", "--pan", &w.pan, "--amount", &amount];
            let _ = self.site.operator(&self.url, "bank", &deposit);
            std::fs::write(
                self.site.path(&format!("secrets/{}.passphrase", w.name)),
                format!("{PASSPHRASE}\n"),
            )
            .unwrap();
            let init = [
                "init",
                "--suite",
                SUITE.name(),
                "--broker-key",
                path_str(&broker_key),
            ];
            let _ = self.wallet(w, &init).ok();
            let register = [
                "register",
                "--pan",
                &w.pan,
                "--pan-secret-file",
                path_str(&secret),
            ];
            let _ = self.wallet(w, &register).ok();
            let _ = self.wallet(w, &["broker-scrip", "buy", "40.00"]).ok();
        }
    }

    /// `peerscrip --json --timeout 2s <args>` on `w`'s wallet.
    fn wallet(&self, w: &Wallet, args: &[&str]) -> Run {
        let all = [&["--timeout", "2s"][..], args].concat();
        self.site.wallet(&w.name, &self.url, &all)
    }

    /// Finishes what `w` left pending (`peerscrip status <tx>`), a bounded number of
    /// rounds; panics with the wallet's balance if it cannot.
    fn settle(&self, w: &Wallet) {
        for _ in 0..40 {
            let balance = self.wallet(w, &["balance"]).ok();
            let pending: Vec<String> = balance["pending"]
                .as_array()
                .unwrap()
                .iter()
                .map(|p| p["tx"].as_str().unwrap().to_owned())
                .collect();
            if pending.is_empty() {
                return;
            }
            for tx in &pending {
                let _ = self.wallet(w, &["status", tx]);
            }
            std::thread::sleep(Duration::from_millis(300));
        }
        panic!(
            "{} still has pending transactions: {}",
            w.name,
            self.wallet(w, &["balance"]).stdout
        );
    }

    /// The books after everything settled ([`Ha::settle`]: nothing pending in any wallet),
    /// checked on the stopped broker's data directory `who` (and the stopped merchant's,
    /// if there is one): the logs audit clean; `peerscrip-ops reconcile` of the broker,
    /// the merchant and every wallet agrees, with nothing in flight; each customer's bank
    /// balance, scrip and what it paid for items add up to its deposit; the broker's float
    /// is the BrokerScrip the wallets hold.
    fn check_books(&self, who: &str, merchant: Option<&str>) {
        let dir = self.site.data(who);
        let audit = self.site.ops(&["audit", "--json", path_str(&dir)]).ok();
        assert!(audit["finding"].is_null(), "{audit}");
        if let Some(merchant) = merchant {
            let mut args = vec!["reconcile".to_owned(), "--json".to_owned()];
            args.push(path_str(&dir).to_owned());
            args.push(path_str(&self.site.data(merchant)).to_owned());
            for w in &self.wallets {
                args.push("--wallet".to_owned());
                args.push(path_str(&self.site.path(&w.name)).to_owned());
            }
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            let reconciled = self.site.ops(&args).ok();
            assert_eq!(
                reconciled["in_flight"],
                serde_json::json!([]),
                "{reconciled}"
            );
            assert_eq!(
                reconciled["mismatches"],
                serde_json::json!([]),
                "{reconciled}"
            );
        }
        let balances = &audit["balances"];
        let mut float = 0;
        for w in &self.wallets {
            let wallet = self
                .site
                .ops(&["audit", "--json", path_str(&self.site.path(&w.name))])
                .ok();
            assert!(wallet["finding"].is_null(), "{wallet}");
            let held: u64 = wallet["balances"]
                .as_object()
                .unwrap()
                .values()
                .map(minor)
                .sum();
            let paid: u64 = self.wallet(w, &["history"]).ok()["entries"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|e| e["kind"] == "item_bought")
                .map(|e| minor(&e["paid"]))
                .sum();
            let bank = minor(&balances[format!("bank:{}", w.pan)]);
            assert_eq!(
                bank + held + paid,
                DEPOSIT,
                "{}: bank {bank} + scrip {held} + paid for items {paid} = its deposit",
                w.name
            );
            float += wallet["balances"].get("scrip:broker").map_or(0, minor);
        }
        assert_eq!(minor(&balances["float:broker"]), float, "{audit}");
    }
}

/// The txs of the events of the broker's log in `dir` (stopped).
fn logged_txs(dir: &Path) -> BTreeSet<String> {
    let log = EventLog::<Recorded<Kind>>::open_existing(dir.join("broker.redb")).unwrap();
    log.iter()
        .unwrap()
        .map(|event| event.unwrap().tx.to_string())
        .collect()
}

/// The stored bytes of every event and the projection tables of the broker's log in `dir`
/// (stopped): what two copies of one replicated log must agree on.
fn contents(dir: &Path) -> (Vec<Vec<u8>>, shared::events::ProjectionDump) {
    let log = EventLog::<Recorded<Kind>>::open_existing(dir.join("broker.redb")).unwrap();
    let events = log
        .stored_from(1)
        .unwrap()
        .map(|row| row.unwrap().1)
        .collect();
    let tables = log
        .dump_projection(&LiveProjection::new(&mut State::new(SUITE)))
        .unwrap();
    (events, tables)
}

/// The `tx` of an acknowledged wallet command, `None` for one that was not.
fn acknowledged(run: &Run) -> Option<String> {
    assert!(
        [0, 3, 4, 5].contains(&run.code),
        "a wallet command may be refused, unreachable or time out while brokers change, \
         nothing else: {run:?}"
    );
    (run.code == 0).then(|| {
        let doc: Value = run.json();
        doc["tx"].as_str().unwrap().to_owned()
    })
}

/// `ops/deploy/ha/nats-*.conf` are valid for the cluster's server version.
#[test]
fn the_example_cluster_configurations_are_valid() {
    let binary = peerscrip_tests::nats_cluster::binary();
    for i in 1..=3 {
        let conf =
            peerscrip_tests::binaries::workspace().join(format!("ops/deploy/ha/nats-{i}.conf"));
        let out = std::process::Command::new(&binary)
            .arg("-t")
            .arg("-c")
            .arg(&conf)
            .output()
            .expect("run nats-server -t (ops/test-all.sh installs it)");
        assert!(
            out.status.success(),
            "{}: {}{}",
            conf.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

#[test]
fn the_standby_takes_over_from_a_killed_leader_losing_nothing_acknowledged() {
    let ha = Ha::new(3);
    let merchant_uid = ha.site.keygen("merchant")["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let mut a = ha.broker("broker-a");
    a.wait_for(LEADING, 1);
    let mut b = ha.broker("broker-b");
    b.wait_for(STANDING_BY, 1);
    let secret_m = ha.site.path("secrets/merchant.pansecret");
    ha.site.open_account(&ha.url, PAN_M, &secret_m);
    let mut merchant = ha.site.start_merchant("merchant", &ha.url, &secret_m);
    let merchant_url = admin_url(&merchant);
    ha.onboard();
    for w in &ha.wallets {
        let _ = ha
            .wallet(w, &["vendor-scrip", "buy", &merchant_uid, "15.00"])
            .ok();
    }

    // The wallets transact, one thread each: BrokerScrip top-ups (6.4), items bought with
    // change (6.3: the broker records the purchase, the merchant reports it) and
    // VendorScrip top-ups (6.5: an escrow at the broker, the merchant's authorization).
    // The leader is killed once every wallet has had a few commands answered.
    let answered = std::sync::atomic::AtomicUsize::new(0);
    let acked: Vec<BTreeSet<String>> = std::thread::scope(|scope| {
        let workers: Vec<_> = ha
            .wallets
            .iter()
            .map(|w| {
                let (answered, ha, m) = (&answered, &ha, merchant_uid.as_str());
                scope.spawn(move || {
                    let mut acked = BTreeSet::new();
                    for round in 0..9 {
                        let args: Vec<&str> = match round % 3 {
                            0 => vec!["buy", m, "tea"],
                            1 => vec!["vendor-scrip", "top-up", m, "5.00"],
                            _ => vec!["broker-scrip", "top-up", "1.00"],
                        };
                        acked.extend(acknowledged(&ha.wallet(w, &args)));
                        answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    acked
                })
            })
            .collect();
        while answered.load(std::sync::atomic::Ordering::SeqCst) < ha.wallets.len() * 3 {
            std::thread::sleep(Duration::from_millis(20));
        }
        a.kill();
        let killed = Instant::now();
        b.wait_for(LEADING, 1);
        println!(
            "takeover: the standby served {:?} after the leader was killed (lease TTL {LEASE_TTL_SECS} s)",
            killed.elapsed()
        );
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    for w in &ha.wallets {
        ha.settle(w);
    }
    // Every wallet can transact through the new leader; the merchant's reports of its
    // sales all reach it.
    for w in &ha.wallets {
        let _ = ha.wallet(w, &["broker-scrip", "top-up", "2.00"]).ok();
    }
    let _ = status_until(&merchant_url, None, |m| m["pending"]["reports"] == 0);
    assert!(merchant.terminate().success());

    // A third broker on an empty data directory catches up from the stream; with the
    // leader stopped, it takes the lease after reading the whole stream.
    let mut c = ha.broker("broker-c");
    c.wait_for(STANDING_BY, 1);
    assert!(b.terminate().success());
    c.wait_for(LEADING, 1);
    assert!(c.terminate().success());
    let (b_events, b_tables) = contents(&ha.site.data("broker-b"));
    let (c_events, c_tables) = contents(&ha.site.data("broker-c"));
    assert_eq!(c_events, b_events, "the stream's copy is the leader's log");
    assert_eq!(c_tables, b_tables, "and its tables the leader's");

    let logged = logged_txs(&ha.site.data("broker-b"));
    for (w, acked) in ha.wallets.iter().zip(&acked) {
        assert!(!acked.is_empty(), "{}: nothing acknowledged", w.name);
        let lost: Vec<_> = acked.difference(&logged).collect();
        assert!(
            lost.is_empty(),
            "{}: acknowledged, not in the log: {lost:?}",
            w.name
        );
    }
    ha.check_books("broker-b", Some("merchant"));
}

#[test]
fn a_frozen_leader_is_fenced_and_appends_nothing_after_the_standby_took_over() {
    let ha = Ha::new(1);
    let mut a = ha.broker("broker-a");
    a.wait_for(LEADING, 1);
    let mut b = ha.broker("broker-b");
    b.wait_for(STANDING_BY, 1);
    ha.onboard();
    let w = &ha.wallets[0];

    a.signal("STOP");
    b.wait_for(LEADING, 1);
    // Both are subscribed: B answers; A, frozen, holds the request undelivered.
    let run = ha.wallet(w, &["broker-scrip", "top-up", "1.00"]);
    let tx = acknowledged(&run).unwrap_or_else(|| panic!("{run:?}\n{}", b.log()));
    a.signal("CONT");
    a.wait_for(STEPPING_DOWN, 1);
    a.wait_for(STANDING_BY, 2);
    let _ = ha.wallet(w, &["broker-scrip", "top-up", "1.00"]).ok();

    assert!(b.terminate().success());
    a.wait_for(LEADING, 2);
    assert!(a.terminate().success());
    let (a_events, a_tables) = contents(&ha.site.data("broker-a"));
    let (b_events, b_tables) = contents(&ha.site.data("broker-b"));
    assert_eq!(a_events, b_events, "one history, the new leader's");
    assert_eq!(a_tables, b_tables);
    assert!(
        logged_txs(&ha.site.data("broker-b")).contains(&tx),
        "the top-up B acknowledged is in the log"
    );
    assert!(
        !a.log().contains("the file is set aside"),
        "A wrote nothing the stream lacks:\n{}",
        a.log()
    );
    ha.check_books("broker-b", None);
}

#[test]
fn losing_one_server_of_three_is_survived_and_losing_two_only_pauses_the_broker() {
    let mut ha = Ha::new(1);
    let mut a = ha.broker("broker-a");
    a.wait_for(LEADING, 1);
    ha.onboard();
    let w = &ha.wallets[0];

    ha.cluster.servers[2].stop();
    let one_down = ha.wallet(w, &["broker-scrip", "top-up", "1.00"]);
    let mut acked: BTreeSet<String> = acknowledged(&one_down).into_iter().collect();
    assert_eq!(
        one_down.code, 0,
        "one server down: still serving: {one_down:?}"
    );

    ha.cluster.servers[1].stop();
    let two_down = ha.wallet(w, &["broker-scrip", "top-up", "1.00"]);
    assert_ne!(
        two_down.code, 0,
        "no quorum: nothing acknowledged: {two_down:?}"
    );

    ha.cluster.servers[1]
        .start_again()
        .expect("restart a server");
    let start = Instant::now();
    let back = loop {
        ha.settle(w);
        let run = ha.wallet(w, &["broker-scrip", "top-up", "1.00"]);
        if run.code == 0 {
            break run;
        }
        assert!(
            start.elapsed() < PATIENCE * 2,
            "never served again: {run:?}\n{}",
            a.log()
        );
    };
    acked.extend(acknowledged(&back));
    ha.settle(w);
    assert!(a.terminate().success());
    let logged = logged_txs(&ha.site.data("broker-a"));
    assert!(acked.is_subset(&logged), "{acked:?} not all in the log");
    ha.check_books("broker-a", None);
}

#[test]
fn a_broker_with_another_root_key_refuses_to_follow_the_deployments_log() {
    let ha = Ha::new(1);
    let mut a = ha.broker("broker-a");
    a.wait_for(LEADING, 1);
    ha.onboard();
    let other_root = ha.site.path("secrets/another.root.key");
    let command =
        ha.site
            .ha_broker_command_with_root(&ha.url, "broker-b", LEASE_TTL_SECS, &other_root);
    let mut b = Daemon::spawn("peerscrip-broker", command);
    let status = b.wait_exit();
    assert!(!status.success(), "{}", b.log());
    assert!(
        b.log()
            .contains("every node of a deployment must have the same key pair and root key"),
        "{}",
        b.log()
    );
    // Nothing of it reached the stream: the leader serves on, its log audits clean.
    let w = &ha.wallets[0];
    let _ = ha.wallet(w, &["broker-scrip", "top-up", "1.00"]).ok();
    assert!(a.terminate().success());
    ha.check_books("broker-a", None);
}
