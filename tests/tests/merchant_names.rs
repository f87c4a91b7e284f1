//! Merchants by name (docs/adr/0016) through the built binaries only: keys from
//! `peerscrip-ops keygen`, the broker and a merchant daemon started with `--name`, the
//! bank operator's accounts, and the customer's `peerscrip`:
//!
//! the merchant registers its name at the broker after its start → `peerscrip merchants
//! --json` lists (UID, name) → `shop` names the merchant (its signed catalogue carries the
//! name) → a `vendor-scrip buy` and a `buy` name it, in `--json` and in human output →
//! `balance` and `history` name it → a restart with the same name sends nothing again →
//! the broker's and the wallet's logs audit clean.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::process::Command;

use peerscrip_tests::NatsServer;
use peerscrip_tests::binaries::built;
use peerscrip_tests::processes::{Daemon, Run, clean_command, minor};
use peerscrip_tests::site::{Site, path_str};
use serde_json::Value;
use shared::Suite;

const SUITE: Suite = Suite::Paper;
const PAN_C: &str = "GR1601101250000000012300695";
/// The PAN of `ops/deploy/merchant.toml`.
const PAN_M: &str = "GR9608100010000001234567890";
const PASSPHRASE: &str = "the names wallet's passphrase";
const NAME: &str = "Leaf & Kettle";
/// What the merchant daemon logs once the broker acknowledged its name.
const NAMED: &str = "the broker lists the merchant under its name";

struct World {
    site: Site,
    nats_url: String,
}

impl World {
    fn wallet_base(&self, json: bool) -> Command {
        let mut command = clean_command(&built().join("peerscrip"));
        if json {
            command.arg("--json");
        }
        command
            .arg("--wallet-dir")
            .arg(self.site.path("alice"))
            .arg("--passphrase-file")
            .arg(self.site.path("secrets/alice.passphrase"))
            .args(["--nats-url", &self.nats_url]);
        command
    }

    /// `peerscrip --json <args>`.
    fn wallet(&self, args: &[&str]) -> Value {
        let mut command = self.wallet_base(true);
        command.args(args);
        self.site.record(Run::of(command)).ok()
    }

    /// `peerscrip <args>` without `--json`: its human output.
    fn human(&self, args: &[&str]) -> String {
        let mut command = self.wallet_base(false);
        command.args(args);
        let run = self.site.record(Run::of(command));
        assert_eq!(run.code, 0, "{run:?}");
        run.stdout
    }

    fn merchant(&self) -> Daemon {
        let mut command = self.site.merchant_command("merchant", &self.nats_url);
        command
            .arg("--pan-secret-file")
            .arg(self.site.path("secrets/merchant.pansecret"))
            .args(["--name", NAME]);
        Daemon::start("peerscrip-merchant", command, "merchant serving")
    }
}

#[test]
fn a_named_merchant_is_listed_and_every_wallet_output_names_it() {
    let server = NatsServer::start().expect("start nats-server");
    let world = World {
        site: Site::new(SUITE),
        nats_url: server.url(),
    };
    std::fs::write(
        world.site.path("secrets/alice.passphrase"),
        format!("{PASSPHRASE}\n"),
    )
    .unwrap();
    for who in ["broker", "operator"] {
        assert_eq!(world.site.keygen(who)["suite"], SUITE.name());
    }
    let merchant_uid = world.site.keygen("merchant")["uid"]
        .as_str()
        .unwrap()
        .to_owned();
    let command = world.site.broker_command(&world.nats_url);
    let mut broker = Daemon::start("peerscrip-broker", command, "broker serving");
    let secret_m = world.site.path("secrets/merchant.pansecret");
    let secret_c = world.site.path("secrets/alice.pansecret");
    for (pan, secret) in [(PAN_M, &secret_m), (PAN_C, &secret_c)] {
        world.site.open_account(&world.nats_url, pan, secret);
    }
    let deposit = world.site.operator(
        &world.nats_url,
        "bank",
        &["deposit", "--pan", PAN_C, "--amount", "50.00"],
    );
    assert_eq!(minor(&deposit["balance"]), 5_000);

    // The merchant registers (6.0), then its name, off its serving path.
    let mut merchant = world.merchant();
    merchant.wait_for(NAMED, 1);

    // The customer.
    let broker_key = world.site.public_key("broker");
    world.wallet(&[
        "init",
        "--suite",
        SUITE.name(),
        "--broker-key",
        path_str(&broker_key),
    ]);
    world.wallet(&[
        "register",
        "--pan",
        PAN_C,
        "--pan-secret-file",
        path_str(&secret_c),
    ]);

    // `merchants`: the broker's signed directory.
    let listed = world.wallet(&["merchants"]);
    assert_eq!(listed["command"], "merchants");
    let merchants = listed["merchants"].as_array().unwrap();
    assert_eq!(merchants.len(), 1, "{listed}");
    let uid = merchants[0]["uid"].as_str().unwrap().to_owned();
    assert_eq!(uid, merchant_uid);
    assert_eq!(merchants[0]["name"], NAME);
    let human = world.human(&["merchants"]);
    assert!(human.contains(&format!("{uid}  {NAME}")), "{human}");
    let shown = format!("{NAME} ({uid})");

    // `shop`: the merchant's signed catalogue carries its name.
    let shop = world.wallet(&["shop", &uid]);
    assert_eq!(shop["merchant"], uid.as_str());
    assert_eq!(shop["merchant_name"], NAME);
    let human = world.human(&["shop", &uid]);
    assert!(human.contains(&format!("catalogue of {shown}:")), "{human}");

    // 6.1, 6.2 and 6.3: every output names the merchant.
    world.wallet(&["broker-scrip", "buy", "20.00"]);
    let vendor = world.wallet(&["vendor-scrip", "buy", &uid, "10.00"]);
    assert_eq!(vendor["merchant_name"], NAME);
    let obtained = vendor["recorded"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["kind"] == "vendor_scrip_obtained")
        .unwrap();
    assert_eq!(obtained["merchant_name"], NAME, "{vendor}");
    let buy = world.wallet(&["buy", &uid, "tea"]);
    assert_eq!(buy["merchant_name"], NAME);
    let human = world.human(&["buy", &uid, "tea"]);
    assert!(human.contains(&format!("from {shown} for")), "{human}");

    // The wallet remembers: balance and history name the merchant without asking anyone.
    let balance = world.wallet(&["balance"]);
    assert_eq!(
        balance["vendor_scrip"][0]["merchant_name"], NAME,
        "{balance}"
    );
    let human = world.human(&["balance"]);
    assert!(human.contains(&shown), "{human}");
    let human = world.human(&["history"]);
    assert!(human.contains(&format!("paid 4.50 to {shown}")), "{human}");

    // A restart with the same name sends nothing: the broker already lists it.
    merchant.terminate();
    let mut merchant = world.merchant();
    std::thread::sleep(std::time::Duration::from_millis(500));
    assert_eq!(merchant.count(NAMED), 0, "{}", merchant.log());
    assert_eq!(
        world.wallet(&["merchants"])["merchants"],
        listed["merchants"]
    );

    merchant.terminate();
    broker.terminate();

    // The logs with the names in them audit clean: the broker's (MerchantNamed folded into
    // broker_names) and the wallet's (its remembered names in wallet_names).
    for (dir, node) in [
        (world.site.data("broker"), "broker"),
        (world.site.path("alice"), "wallet"),
    ] {
        let audit = world.site.ops(&["audit", "--json", path_str(&dir)]).ok();
        assert_eq!(audit["node"], node, "{audit}");
        assert_eq!(audit["finding"], Value::Null, "{audit}");
    }
}
