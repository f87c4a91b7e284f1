//! The whole of protocol.md section 6 through the built binaries only, as an
//! operator and a customer run them: a harness `nats-server`, keys from `peerscrip-ops
//! keygen`, the `peerscrip-broker` and `peerscrip-merchant` daemons as processes, the bank
//! operator's `peerscrip-ops bank` over NATS, and the customer's `peerscrip` wallet, every
//! command run with `--json` and its document checked:
//!
//! keygen → broker → bank open-account ×2, deposit → merchant (6.0 on its first start) →
//! init → register (6.0) → broker-scrip buy (6.1) → shop → vendor-scrip buy (6.0b, 6.2) →
//! buy with change (6.3) → two refused buys (nothing changed) → vendor-scrip top-up (6.5) →
//! vendor-scrip withdraw (6.7) → broker-scrip top-up (6.4) → renew (6.8) → broker-scrip
//! withdraw (6.6) → history, balance → bank balances → SIGTERM → audit of the broker's log.
//!
//! Value is conserved across the run: the 100.00 the bank paid in ends in the two bank
//! accounts (91.00 the customer's, 9.00 the merchant's, what the teas cost), with no scrip
//! left, and the broker's log audits clean with those balances. No secret (a PANSecret,
//! the wallet's passphrase) appears in anything any command printed.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::Path;

use peerscrip_tests::NatsServer;
use peerscrip_tests::processes::{Daemon, Run, kinds, minor, timeless};
use peerscrip_tests::site::{Site, path_str};
use serde_json::Value;
use shared::Suite;

const SUITE: Suite = Suite::Paper;
const PAN_C: &str = "GR1601101250000000012300695";
/// The PAN of `ops/deploy/merchant.toml`.
const PAN_M: &str = "GR9608100010000001234567890";
const PASSPHRASE: &str = "the journey wallet's passphrase";

/// The recorded wallet event of `kind` in a command's JSON.
fn recorded<'a>(doc: &'a Value, kind: &str) -> &'a Value {
    doc["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == kind)
        .unwrap_or_else(|| panic!("no {kind} in {doc}"))
}

/// The deployment (`peerscrip_tests::site`) on a harness `nats-server`, with the customer
/// alice's wallet directory and passphrase.
struct World {
    site: Site,
    nats_url: String,
}

impl World {
    /// An empty deployment on `server`; alice's passphrase written.
    fn new(server: &NatsServer) -> World {
        let world = World {
            site: Site::new(SUITE),
            nats_url: server.url(),
        };
        std::fs::write(
            world.site.path("secrets/alice.passphrase"),
            format!("{PASSPHRASE}\n"),
        )
        .unwrap();
        world
    }

    /// `peerscrip-ops keygen` into `keys/<who>`: its UID.
    fn keygen(&self, who: &str) -> String {
        let doc = self.site.keygen(who);
        assert_eq!(doc["suite"], SUITE.name());
        assert_eq!(doc["encrypted"], false);
        assert!(Path::new(doc["public_key"].as_str().unwrap()).exists());
        doc["uid"].as_str().unwrap().to_owned()
    }

    /// `peerscrip-ops bank --json … <args>`: the operator's signed request over NATS.
    fn bank(&self, args: &[&str]) -> Value {
        self.site.operator(&self.nats_url, "bank", args)
    }

    /// The bank opens the account `pan`, its PANSecret drawn into `secret_out`.
    fn open_account(&self, pan: &str, secret_out: &Path) {
        self.site.open_account(&self.nats_url, pan, secret_out);
    }

    /// `peerscrip-ops peers --json`: the registered peers the broker lists to its operator.
    fn peers(&self) -> Vec<Value> {
        let doc = self.site.operator(&self.nats_url, "peers", &[]);
        doc["peers"].as_array().unwrap().clone()
    }

    /// `peerscrip --json <global flags> <args>`: the customer's wallet.
    fn wallet(&self, args: &[&str]) -> Run {
        self.site.wallet("alice", &self.nats_url, args)
    }

    /// `peerscrip init`: a new wallet pinning the broker's key.
    fn init(&self) -> Value {
        let broker_key = self.site.public_key("broker");
        let args = [
            "init",
            "--suite",
            SUITE.name(),
            "--broker-key",
            path_str(&broker_key),
        ];
        self.wallet(&args).ok()
    }

    /// `peerscrip register` of the account `pan` with the PANSecret in `secret`.
    fn register(&self, pan: &str, secret: &Path) -> Run {
        self.wallet(&[
            "register",
            "--pan",
            pan,
            "--pan-secret-file",
            path_str(secret),
        ])
    }

    fn broker(&self) -> Daemon {
        let command = self.site.broker_command(&self.nats_url);
        Daemon::start("peerscrip-broker", command, "broker serving")
    }

    fn merchant(&self) -> Daemon {
        let mut command = self.site.merchant_command("merchant", &self.nats_url);
        command
            .arg("--pan-secret-file")
            .arg(self.site.path("secrets/merchant.pansecret"));
        Daemon::start("peerscrip-merchant", command, "merchant serving")
    }

    /// Nothing printed holds a PANSecret or the passphrase, or a full customer PAN from the
    /// wallet (the bank operator's own commands name the accounts they work on).
    fn assert_no_secret_printed(&self) {
        self.assert_no_secret_printed_of(&[
            "secrets/alice.pansecret",
            "secrets/merchant.pansecret",
        ]);
    }

    /// Nothing printed holds the secret of any of `files`, or the passphrase.
    fn assert_no_secret_printed_of(&self, files: &[&str]) {
        let secrets: Vec<String> = files
            .iter()
            .map(|f| {
                std::fs::read_to_string(self.site.path(f))
                    .unwrap()
                    .trim()
                    .to_owned()
            })
            .chain([PASSPHRASE.to_owned()])
            .collect();
        for out in &self.site.printed() {
            for secret in &secrets {
                assert!(!out.contains(secret.as_str()), "a secret leaked: {out}");
            }
        }
    }
}

#[test]
fn the_whole_protocol_runs_through_the_binaries_and_every_json_output_adds_up() {
    let server = NatsServer::start().expect("start nats-server");
    let world = World::new(&server);

    // The operator's keys and the broker, serving the operator's signed requests.
    let broker_uid = world.keygen("broker");
    let operator_uid = world.keygen("operator");
    let merchant_uid = world.keygen("merchant");
    assert_ne!(broker_uid, operator_uid);
    let mut broker = world.broker();

    // The bank opens both accounts (drawing their PANSecrets into files) and funds the
    // customer's.
    let secret_m = world.site.path("secrets/merchant.pansecret");
    let secret_c = world.site.path("secrets/alice.pansecret");
    for (pan, secret) in [(PAN_M, &secret_m), (PAN_C, &secret_c)] {
        world.open_account(pan, secret);
    }
    let deposit = world.bank(&["deposit", "--pan", PAN_C, "--amount", "100.00"]);
    assert_eq!(deposit["result"], "recorded");
    assert_eq!(deposit["balance"]["value"], "100.00");

    // The merchant registers its key for its account on its first start (6.0).
    let mut merchant = world.merchant();

    // The customer.
    let init = world.init();
    assert_eq!(init["suite"], SUITE.name());
    assert_eq!(init["broker_uid"], broker_uid.as_str());
    assert_eq!(init["encrypted"], true);
    let register = world.register(PAN_C, &secret_c).ok();
    assert_eq!(register["uid"], init["uid"]);
    assert_eq!(register["account"], "…0695");

    // 6.1: 40.00 of BrokerScrip from the bank account.
    let bought = world.wallet(&["broker-scrip", "buy", "40.00"]).ok();
    assert_eq!(minor(&bought["value"]), 4_000);

    let shop = world.wallet(&["shop", &merchant_uid]).ok();
    let items = shop["items"].as_array().unwrap();
    let tea = items.iter().find(|i| i["id"] == "tea").unwrap();
    assert_eq!(tea["name"], "Green tea, 100 g");
    assert_eq!(minor(&tea["unit_price"]), 450);
    assert_eq!(items.len(), 3, "{shop}");

    // 6.0b and 6.2: 15.00 of BrokerScrip exchanged for the merchant's VendorScrip.
    let vendor = world
        .wallet(&["vendor-scrip", "buy", &merchant_uid, "15.00"])
        .ok();
    recorded(&vendor, "exchange_settled");
    recorded(&vendor, "vendor_scrip_obtained");

    // 6.3: two teas, 9.00, from the 15.00: 6.00 of change.
    let buy = world
        .wallet(&["buy", &merchant_uid, "tea", "--qty", "2"])
        .ok();
    assert_eq!(minor(&buy["paid"]), 900);
    assert_eq!(minor(&buy["change"]), 600);
    assert_eq!(buy["quantity"], 2);

    // More than the VendorScrip holds, and an item not listed: refused (exit 3), nothing
    // changed.
    let before = world.wallet(&["balance"]).ok();
    let too_much = world.wallet(&["buy", &merchant_uid, "pot"]);
    assert_eq!(too_much.code, 3, "{too_much:?}");
    assert_eq!(too_much.json()["error"], "refused");
    let unknown = world.wallet(&["buy", &merchant_uid, "coffee"]);
    assert_eq!(unknown.code, 3, "{unknown:?}");
    assert!(
        unknown.json()["message"]
            .as_str()
            .unwrap()
            .contains("coffee"),
        "{unknown:?}"
    );
    assert_eq!(
        timeless(&world.wallet(&["balance"]).ok()),
        timeless(&before)
    );

    // 6.5: 5.00 more of VendorScrip, paid with BrokerScrip.
    let top_up = world
        .wallet(&["vendor-scrip", "top-up", &merchant_uid, "5.00"])
        .ok();
    let topped = recorded(&top_up, "vendor_scrip_topped_up");
    assert_eq!((minor(&topped["from"]), minor(&topped["to"])), (600, 1_100));

    // 6.7: the VendorScrip cashed in to the bank account through the broker.
    let withdraw = world
        .wallet(&["vendor-scrip", "withdraw", &merchant_uid])
        .ok();
    assert_eq!(minor(&withdraw["value"]), 1_100);
    assert_eq!(
        recorded(&withdraw, "vendor_withdraw_decided")["ok_decision"],
        true
    );

    // 6.4: 5.00 more of BrokerScrip from the bank (40.00 − 15.00 − 5.00 = 20.00 → 25.00).
    let top_up = world.wallet(&["broker-scrip", "top-up", "5.00"]).ok();
    assert_eq!(
        (minor(&top_up["from"]), minor(&top_up["to"])),
        (2_000, 2_500)
    );

    // 6.8: the BrokerScrip renewed early.
    let renewed = world.wallet(&["renew", &broker_uid]).ok();
    assert_eq!(renewed["renewed"][0]["kind"], "scrip_renewed");
    assert_eq!(minor(&renewed["renewed"][0]["value"]), 2_500);

    // 6.6: the BrokerScrip cashed in to the bank account.
    let cashed = world.wallet(&["broker-scrip", "withdraw"]).ok();
    assert_eq!(minor(&cashed["value"]), 2_500);

    // Every transaction of the journey is in the wallet's history.
    let history = world.wallet(&["history"]).ok();
    let kinds = kinds(&history["entries"]);
    for (transaction, records) in [
        ("6.0", &["registered"][..]),
        ("6.0b", &["peer_key"]),
        ("6.1", &["broker_scrip_obtained"]),
        ("6.2", &["exchange_settled", "vendor_scrip_obtained"]),
        ("6.3", &["item_bought"]),
        ("6.5", &["vendor_top_up_settled", "vendor_scrip_topped_up"]),
        ("6.7", &["vendor_withdraw_decided"]),
        ("6.4", &["broker_scrip_topped_up"]),
        ("6.8", &["scrip_renewed"]),
    ] {
        for kind in records {
            assert!(
                kinds.contains(kind),
                "{transaction}: {kind} missing: {kinds:?}"
            );
        }
    }
    let balance = world.wallet(&["balance"]).ok();
    assert!(balance["broker_scrip"].is_null(), "{balance}");
    assert_eq!(balance["vendor_scrip"].as_array().unwrap().len(), 0);
    assert_eq!(minor(&balance["total"]), 0);
    assert_eq!(balance["pending"].as_array().unwrap().len(), 0);
    assert_eq!(balance["registered"], true);

    // The bank's view: 100.00 − 40.00 + 11.00 − 5.00 + 25.00 = 91.00 the customer's; the
    // merchant's 15.00 + 5.00 − 11.00 = 9.00, all of it payable (no VendorScrip out).
    let c = world.bank(&["balance", "--pan", PAN_C]);
    assert_eq!(
        (
            c["balance"]["value"].as_str(),
            c["available"]["value"].as_str()
        ),
        (Some("91.00"), Some("91.00"))
    );
    let m = world.bank(&["balance", "--pan", PAN_M]);
    assert_eq!(
        (
            m["balance"]["value"].as_str(),
            m["available"]["value"].as_str()
        ),
        (Some("9.00"), Some("9.00"))
    );

    // SIGTERM: both daemons stop cleanly; the broker's log audits clean, with the same
    // balances.
    assert_eq!(merchant.terminate().code(), Some(0), "{}", merchant.log());
    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    let broker_dir = world.site.data("broker");
    let audit = world
        .site
        .ops(&["audit", "--json", path_str(&broker_dir)])
        .ok();
    assert_eq!(audit["node"], "broker");
    assert_eq!(audit["finding"], Value::Null);
    let balances = &audit["balances"];
    assert_eq!(balances[format!("bank:{PAN_C}")]["minor"], 9100, "{audit}");
    assert_eq!(balances[format!("bank:{PAN_M}")]["minor"], 900, "{audit}");
    world.assert_no_secret_printed();
}

/// 6.0 through the binaries: the real broker daemon refuses a wrong PANSecret and an
/// unknown account number with the one `RegistrationRefused` (exit 3, the same message,
/// nothing pending in the wallet, no peer registered, no money moved), and the wallet,
/// which ended each request, registers with the right details and then buys BrokerScrip
/// (6.1) from the account, the 100.00 paid in conserved.
#[test]
fn a_refused_registration_leaves_nothing_pending_and_the_corrected_one_registers() {
    let server = NatsServer::start().expect("start nats-server");
    let world = World::new(&server);
    world.keygen("broker");
    world.keygen("operator");
    let mut broker = world.broker();
    let secret_c = world.site.path("secrets/alice.pansecret");
    world.open_account(PAN_C, &secret_c);
    world.bank(&["deposit", "--pan", PAN_C, "--amount", "100.00"]);
    let init = world.init();
    assert_eq!(init["encrypted"], true);
    let wrong_secret = world.site.path("secrets/wrong.pansecret");
    // As long as a real one (128 bits and more, hex), but not the account's.
    std::fs::write(&wrong_secret, "0123456789abcdef0123456789abcdef\n").unwrap();

    let mut messages = Vec::new();
    for (pan, secret) in [
        (PAN_C, &wrong_secret),
        ("GR1601101250000000012300696", &secret_c),
    ] {
        let refused = world.register(pan, secret);
        assert_eq!(refused.code, 3, "{refused:?}");
        let doc = refused.json();
        assert_eq!(doc["error"], "refused", "{doc}");
        assert_eq!(doc["code"], 36, "{doc}");
        assert_eq!(doc["code_name"], "RegistrationRefused", "{doc}");
        let message = doc["message"].as_str().unwrap().to_owned();
        assert!(
            message.contains("run `peerscrip register` again"),
            "{message}"
        );
        let tx = doc["tx"].as_str().unwrap().to_owned();
        messages.push(message);

        // The wallet ended the request: nothing pending, the history says why.
        let balance = world.wallet(&["balance"]).ok();
        assert_eq!(balance["pending"], serde_json::json!([]), "{balance}");
        assert_eq!(balance["registered"], false);
        let status = world.wallet(&["status", &tx]).ok();
        assert_eq!(status["pending"], false, "{status}");
        assert_eq!(
            kinds(&status["history"]),
            ["refused", "abandoned"],
            "{status}"
        );
        assert_eq!(status["history"][0]["code"], 36, "{status}");
        // The broker changed nothing: no peer, the account's money untouched.
        assert_eq!(world.peers(), Vec::<Value>::new());
        let balance = world.bank(&["balance", "--pan", PAN_C]);
        assert_eq!(balance["balance"]["value"], "100.00", "{balance}");
    }
    assert_eq!(
        messages[0], messages[1],
        "one message: no account is told apart"
    );

    // The right details: registered, and 6.1 works.
    let register = world.register(PAN_C, &secret_c).ok();
    assert_eq!(register["account"], "…0695");
    let peers = world.peers();
    assert_eq!(peers.len(), 1, "{peers:?}");
    assert_eq!(peers[0]["uid"], register["uid"]);
    let bought = world.wallet(&["broker-scrip", "buy", "40.00"]).ok();
    assert_eq!(minor(&bought["value"]), 4_000);
    let balance = world.bank(&["balance", "--pan", PAN_C]);
    assert_eq!(balance["balance"]["value"], "60.00", "{balance}");
    let held = world.wallet(&["balance"]).ok();
    assert_eq!(
        minor(&held["total"]),
        4_000,
        "100.00 = 60.00 in the bank + 40.00 held"
    );

    assert_eq!(broker.terminate().code(), Some(0), "{}", broker.log());
    world.assert_no_secret_printed_of(&["secrets/alice.pansecret", "secrets/wrong.pansecret"]);
}
