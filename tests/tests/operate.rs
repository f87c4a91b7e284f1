//! Operating the daemons (README "Operate it") through the built binaries: the broker and
//! a merchant started with `--admin-listen`, a customer's purchases with the `peerscrip`
//! wallet on a harness `nats-server`, then what an operator sees:
//!
//! - `/metrics` passes `promtool check metrics` and counts what happened: the requests by
//!   label and outcome, the refusal by its code, and the state as gauges;
//! - `/status` and `peerscrip-ops status` give the known state of both nodes, and value
//!   adds up between them;
//! - `/healthz`, `/readyz` answer, and `/readyz` says when NATS is away and when it is back;
//! - the broker's listener wants its bearer token for `/metrics` and `/status`;
//! - one `info` line per request and per refusal, the NATS loss and the retries at `warn`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use peerscrip_tests::NatsServer;
use peerscrip_tests::admin_http::{admin_url, get, readyz_until, status_until};
use peerscrip_tests::binaries::built;
use peerscrip_tests::processes::{Daemon, PATIENCE, Run, clean_command, minor};
use peerscrip_tests::site::{Site, path_str};
use serde_json::Value;
use shared::Suite;

const SUITE: Suite = Suite::Paper;
const PAN_C: &str = "GR1601101250000000012300695";
/// The PAN of `ops/deploy/merchant.toml`.
const PAN_M: &str = "GR9608100010000001234567890";
const PASSPHRASE: &str = "the operated wallet's passphrase";
const TOKEN: &str = "0123456789abcdef0123456789abcdef0123456789abcdef";

/// The value of the sample `series` (its name and labels, as rendered) in a scrape.
fn sample(scrape: &str, series: &str) -> Option<f64> {
    scrape
        .lines()
        .find_map(|l| l.strip_prefix(series)?.strip_prefix(' '))
        .map(|v| v.trim().parse().unwrap())
}

/// `promtool check metrics` of a scrape: passes, with no lint problem.
fn assert_promtool_accepts(scrape: &str) {
    use std::io::Write as _;
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (Debian's prometheus package; ops/test-all.sh installs it)");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(scrape.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success() && out.stdout.is_empty() && out.stderr.is_empty(),
        "promtool check metrics: {}\n{}{}\n--- scrape:\n{scrape}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `peerscrip-ops status URL …`.
fn ops_status(url: &str, args: &[&str]) -> Run {
    let mut command = clean_command(&built().join("peerscrip-ops"));
    command.arg("status").arg(url).args(args);
    Run::of(command)
}

struct World {
    site: Site,
    nats_url: String,
}

impl World {
    /// `peerscrip --json …` on `who`'s wallet.
    fn wallet_of(&self, who: &str, args: &[&str]) -> Run {
        self.site.wallet(who, &self.nats_url, args)
    }

    /// `peerscrip --json …` on alice's wallet.
    fn wallet(&self, args: &[&str]) -> Run {
        self.wallet_of("alice", args)
    }

    fn token_file(&self) -> PathBuf {
        self.site.path("secrets/admin.token")
    }
}

#[test]
fn an_operator_scrapes_probes_and_reads_the_live_view_of_both_daemons() {
    let mut server = NatsServer::start().expect("start nats-server");
    let world = World {
        site: Site::new(SUITE),
        nats_url: server.url(),
    };
    for who in ["alice", "bob"] {
        std::fs::write(
            world.site.path(&format!("secrets/{who}.passphrase")),
            format!("{PASSPHRASE}\n"),
        )
        .unwrap();
    }
    std::fs::write(world.token_file(), format!("{TOKEN}\n")).unwrap();
    let _ = world.site.keygen("broker");
    let _ = world.site.keygen("operator");
    let merchant_uid = world.site.keygen("merchant")["uid"]
        .as_str()
        .unwrap()
        .to_owned();

    let mut command = world.site.broker_command(&world.nats_url);
    command
        .args(["--admin-listen", "127.0.0.1:0", "--admin-token-file"])
        .arg(world.token_file())
        .args(["--export-stream", "PEERSCRIP_OPERATED"]);
    let mut broker = Daemon::start("peerscrip-broker", command, "broker serving");
    let broker_url = admin_url(&broker);
    let secret_m = world.site.path("secrets/merchant.pansecret");
    let secret_c = world.site.path("secrets/alice.pansecret");
    for (pan, secret) in [(PAN_M, &secret_m), (PAN_C, &secret_c)] {
        world.site.open_account(&world.nats_url, pan, secret);
    }
    let deposit = ["deposit", "--pan", PAN_C, "--amount", "100.00"];
    let _ = world.site.operator(&world.nats_url, "bank", &deposit);
    let mut merchant = world
        .site
        .start_merchant("merchant", &world.nats_url, &secret_m);
    let merchant_url = admin_url(&merchant);

    // The customer: registered, 40.00 of BrokerScrip, 15.00 of VendorScrip, two teas for
    // 9.00. Then bob's wallet tries to register alice's account, which has a key: the
    // broker refuses it (RegistrationRefused, 6.0).
    let broker_key = world.site.public_key("broker");
    let init = [
        "init",
        "--suite",
        SUITE.name(),
        "--broker-key",
        path_str(&broker_key),
    ];
    let _ = world.wallet(&init).ok();
    let register = [
        "register",
        "--pan",
        PAN_C,
        "--pan-secret-file",
        path_str(&secret_c),
    ];
    let _ = world.wallet(&register).ok();
    let _ = world.wallet(&["broker-scrip", "buy", "40.00"]).ok();
    let _ = world
        .wallet(&["vendor-scrip", "buy", &merchant_uid, "15.00"])
        .ok();
    let buy = world
        .wallet(&["buy", &merchant_uid, "tea", "--qty", "2"])
        .ok();
    assert_eq!(minor(&buy["paid"]), 900);
    let _ = world.wallet_of("bob", &init).ok();
    let refused = world.wallet_of("bob", &register);
    assert_eq!(refused.code, 3, "{refused:?}");

    // The probes: open, no token needed; both nodes serve and reach NATS.
    for url in [&broker_url, &merchant_url] {
        assert_eq!(
            get(&format!("{url}/healthz"), None),
            (200, "ok\n".to_owned())
        );
        let ready = readyz_until(url, 200);
        assert_eq!(
            ready,
            serde_json::json!({"ready": true, "node": "serving", "nats": "connected"})
        );
    }

    // The broker's listener wants its token for the ledger's numbers.
    for path in ["/metrics", "/status"] {
        let (code, body) = get(&format!("{broker_url}{path}"), None);
        assert_eq!(code, 401, "{path}: {body}");
        let (code, _) = get(&format!("{broker_url}{path}"), Some("not the token"));
        assert_eq!(code, 401, "{path}");
    }

    // The merchant's view, once its report of the sale is acknowledged (6.3 step 5).
    let m = status_until(&merchant_url, None, |m| m["pending"]["reports"] == 0);
    assert_eq!(m["uid"], merchant_uid.as_str());
    assert_eq!(
        m["name"], "Green Tea House",
        "ops/deploy/merchant.toml's name"
    );
    assert_eq!(m["serving"], true);
    assert_eq!(m["sales"], 1);
    assert_eq!(
        m["books"],
        serde_json::json!({
            "issued": {"value": "15.00", "minor": 1500},
            "paid": {"value": "9.00", "minor": 900},
            "withdrawn": {"value": "0.00", "minor": 0},
        })
    );
    assert_eq!(m["live_scrip"]["count"], 1);
    assert_eq!(minor(&m["live_scrip"]["value"]), 600);
    assert_eq!(m["orders"][0]["item_id"], "tea");
    assert_eq!(m["orders"][0]["quantity"], 2);
    assert_eq!(minor(&m["orders"][0]["paid"]), 900);
    assert!(
        m["orders"][0]["at"]["rfc3339"]
            .as_str()
            .unwrap()
            .ends_with('Z')
    );

    // The broker's: 100.00 entered; 60.00 left in the customer's account and 15.00 paid to
    // the merchant's; 25.00 of live BrokerScrip (the change of 6.2); the merchant's memo
    // is what it still owes in VendorScrip, 6.00.
    let b = status_until(&broker_url, Some(TOKEN), |_| true);
    let a = &b["accounts"];
    assert_eq!(
        a["external"],
        serde_json::json!({"value": "-100.00", "minor": -10_000})
    );
    assert_eq!(a["bank_accounts"], 2);
    assert_eq!(minor(&a["bank_total"]), 7_500);
    assert_eq!(minor(&a["float_broker"]), 2_500);
    assert_eq!(b["live_scrip"]["count"], 1);
    assert_eq!(minor(&b["live_scrip"]["value"]), 2_500);
    assert_eq!(b["floats"]["total"], 1);
    assert_eq!(b["floats"]["rows"][0]["merchant"], merchant_uid.as_str());
    assert_eq!(b["floats"]["rows"][0]["name"], m["name"]);
    assert_eq!(
        b["floats"]["rows"][0]["memo"], m["live_scrip"]["value"],
        "the broker's memo of the merchant's float is its live VendorScrip"
    );
    assert_eq!(a["vendor_memo_total"], m["live_scrip"]["value"]);
    assert_eq!(b["peers"]["total"], 2);
    assert_eq!(b["peers"]["merchants"], 1);
    let merchant_row = b["peers"]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["uid"] == merchant_uid.as_str())
        .unwrap();
    assert_eq!(merchant_row["kind"], "merchant");
    assert_eq!(merchant_row["name"], "Green Tea House");
    assert_eq!(b["peers"]["rows"].as_array().unwrap().len(), 2);
    assert_eq!(b["exchanges"]["total"], 0);
    assert_eq!(b["escrows"]["total"], 0);
    // Conservation, as the view shows it: what entered is in the bank accounts and the
    // float, nothing more, nothing less.
    let signed = |v: &Value| v["minor"].as_i64().unwrap();
    assert_eq!(
        signed(&a["bank_total"]) + signed(&a["float_broker"]),
        -signed(&a["external"])
    );

    // The scrapes: well-formed, and counting what happened; the live export has caught up
    // with the log (it polls the node, so this may take a moment).
    let start = Instant::now();
    let broker_scrape = loop {
        let (code, scrape) = get(&format!("{broker_url}/metrics"), Some(TOKEN));
        assert_eq!(code, 200);
        if sample(&scrape, "peerscrip_export_lag_events") == Some(0.0) {
            break scrape;
        }
        assert!(
            start.elapsed() < PATIENCE,
            "the export never caught up:\n{scrape}"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_promtool_accepts(&broker_scrape);
    let (code, merchant_scrape) = get(&format!("{merchant_url}/metrics"), None);
    assert_eq!(code, 200);
    assert_promtool_accepts(&merchant_scrape);
    let b_sample = |series: &str| {
        sample(&broker_scrape, series).unwrap_or_else(|| panic!("{series}:\n{broker_scrape}"))
    };
    let m_sample = |series: &str| {
        sample(&merchant_scrape, series).unwrap_or_else(|| panic!("{series}:\n{merchant_scrape}"))
    };
    assert_eq!(
        b_sample(r#"peerscrip_requests_total{label="RegistrationRequest",outcome="answered"}"#),
        2.0,
        "the merchant's and the customer's registrations"
    );
    assert_eq!(
        b_sample(r#"peerscrip_requests_total{label="RegistrationRequest",outcome="refused"}"#),
        1.0
    );
    assert_eq!(
        b_sample(r#"peerscrip_refusals_total{code="RegistrationRefused"}"#),
        1.0
    );
    assert_eq!(
        b_sample(r#"peerscrip_requests_total{label="PurchaseCompleted",outcome="answered"}"#),
        1.0
    );
    assert_eq!(
        b_sample(r#"peerscrip_float_minor{account="broker"}"#),
        2_500.0
    );
    assert_eq!(
        b_sample(r#"peerscrip_float_minor{account="vendor_memo"}"#),
        600.0
    );
    assert_eq!(b_sample(r#"peerscrip_peers{kind="merchant"}"#), 1.0);
    assert_eq!(b_sample(r#"peerscrip_peers{kind="customer"}"#), 1.0);
    assert_eq!(b_sample("peerscrip_bank_balance_minor"), 7_500.0);
    assert_eq!(
        b_sample(r#"peerscrip_open_transactions{kind="exchange"}"#),
        0.0
    );
    assert_eq!(b_sample("peerscrip_serving"), 1.0);
    assert_eq!(b_sample("peerscrip_nats_connected"), 1.0);
    assert_eq!(
        b_sample("peerscrip_log_head_seq"),
        b["head"].as_f64().unwrap()
    );
    assert!(b_sample("peerscrip_commit_duration_seconds_count") >= 1.0);
    assert!(b_sample("peerscrip_batch_frames_count") >= 1.0);
    assert_eq!(
        m_sample(r#"peerscrip_requests_total{label="PurchaseRequest",outcome="answered"}"#),
        1.0
    );
    assert_eq!(m_sample("peerscrip_sales"), 1.0);
    assert_eq!(m_sample("peerscrip_sales_value_minor"), 900.0);
    assert_eq!(m_sample("peerscrip_live_scrip_value_minor"), 600.0);
    assert_eq!(
        m_sample(r#"peerscrip_open_transactions{kind="report"}"#),
        0.0
    );
    assert_eq!(m_sample("peerscrip_key_lookups_queued"), 0.0);

    // `peerscrip-ops status`: the same documents with --json, and a view for a person.
    let token_file = world.token_file();
    let run = ops_status(
        &broker_url,
        &["--json", "--token-file", path_str(&token_file)],
    );
    let doc = run.ok();
    assert_eq!(doc["accounts"], b["accounts"]);
    let run = ops_status(&broker_url, &["--token-file", path_str(&token_file)]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(
        run.stdout
            .contains("float:broker   25.00 in 1 live BrokerScrip"),
        "{run:?}"
    );
    assert!(
        run.stdout
            .contains("bank accounts  2 holding 75.00; external -100.00"),
        "{run:?}"
    );
    let run = ops_status(&merchant_url, &[]);
    assert_eq!(run.code, 0, "{run:?}");
    assert!(run.stdout.contains("sales          1"), "{run:?}");
    assert!(run.stdout.contains("2 × tea  paid 9.00"), "{run:?}");
    let refused = ops_status(&broker_url, &[]);
    assert_eq!(refused.code, 3, "{refused:?}");
    assert!(refused.stderr.contains("bearer token"), "{refused:?}");
    assert!(!refused.stderr.contains(TOKEN));

    // The logs: one line per request, with its outcome; the refusal with its code.
    assert!(
        broker.count("request outcome=answered") >= 5,
        "{}",
        broker.log()
    );
    assert_eq!(
        broker.count("request outcome=refused code=RegistrationRefused"),
        1,
        "{}",
        broker.log()
    );
    assert!(
        merchant.count("request outcome=answered") >= 2,
        "{}",
        merchant.log()
    );
    for daemon in [&broker, &merchant] {
        assert!(!daemon.log().contains(TOKEN));
    }

    // NATS away: not ready, said at warn; back: ready again.
    server.stop();
    let down = readyz_until(&broker_url, 503);
    assert_eq!(down["nats"], "disconnected", "{down}");
    assert_eq!(down["node"], "serving", "{down}");
    readyz_until(&merchant_url, 503);
    broker.wait_for("lost the NATS connection", 1);
    broker.wait_for("reconnecting to NATS", 1);
    assert_eq!(get(&format!("{broker_url}/healthz"), None).0, 200);
    server.start_again().expect("restart nats-server");
    readyz_until(&broker_url, 200);
    readyz_until(&merchant_url, 200);
    let (_, scrape) = get(&format!("{merchant_url}/metrics"), None);
    assert_eq!(sample(&scrape, "peerscrip_nats_connected"), Some(1.0));

    // A graceful stop closes the listeners with the daemons.
    assert!(broker.terminate().success(), "{}", broker.log());
    assert!(merchant.terminate().success(), "{}", merchant.log());
    assert!(ureq::get(&format!("{broker_url}/healthz")).call().is_err());
}

/// systemd's `Type=notify` (ops/deploy/systemd): the broker says READY=1 once it serves
/// and STOPPING=1 when its stop begins, on the socket `NOTIFY_SOCKET` names.
#[test]
fn the_broker_tells_systemd_when_it_serves_and_when_it_stops() {
    use std::os::unix::net::UnixDatagram;
    let server = NatsServer::start().expect("start nats-server");
    let site = Site::new(SUITE);
    let _ = site.keygen("broker");
    let socket_path = site.path("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).unwrap();
    socket.set_read_timeout(Some(PATIENCE)).unwrap();
    let mut command = site.broker_command(&server.url());
    command.env("NOTIFY_SOCKET", &socket_path);
    let mut broker = Daemon::spawn("peerscrip-broker", command);
    let mut buffer = [0_u8; 256];
    let n = socket
        .recv(&mut buffer)
        .expect("READY=1 within the patience");
    let ready = String::from_utf8_lossy(&buffer[..n]).into_owned();
    assert_eq!(ready, "READY=1\nSTATUS=serving\n");
    // Said after the subscription is up (the daemon logs "broker serving" first).
    broker.wait_for("broker serving", 1);
    assert!(broker.terminate().success(), "{}", broker.log());
    let n = socket.recv(&mut buffer).expect("STOPPING=1 at the stop");
    assert_eq!(
        String::from_utf8_lossy(&buffer[..n]),
        "STOPPING=1\nSTATUS=stopping\n"
    );
}
