//! `peerscrip-ops bank --stopped-broker`: the bank operator works on the data
//! directory of a broker that is not running, through its own configuration file. Every
//! write is one committed event, a refusal changes nothing, and a running broker's file
//! (held by its lock) is refused.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

const PAN: &str = "GR1601101250000000012300695";

fn ops(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap()
}

fn bank(dir: &Path, args: &[&str]) -> Output {
    let mut all = vec!["bank", "--stopped-broker", "broker.toml"];
    all.extend_from_slice(args);
    ops(dir, &all)
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_bank_works_on_a_stopped_brokers_data_dir() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    assert!(
        ops(d, &["keygen", "--suite", "paper", "--out", "keys/broker"])
            .status
            .success()
    );
    std::fs::write(
        d.join("broker.toml"),
        "[node]\nsuite = \"paper\"\ndata_dir = \"data/broker\"\nkey = \"keys/broker/key.pem\"\n",
    )
    .unwrap();

    let out = bank(
        d,
        &[
            "open-account",
            "--pan",
            PAN,
            "--secret-out",
            "alice.pansecret",
        ],
    );
    assert!(out.status.success(), "{}", text(&out));
    assert!(d.join("alice.pansecret").exists());
    let out = bank(d, &["deposit", "--pan", PAN, "--amount", "50.00"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&format!("bank account {PAN} now holds 50.00")));

    // Refusals: exit 3, nothing written.
    let out = bank(d, &["payout", "--pan", PAN, "--amount", "60.00"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    assert!(text(&out).contains("InsufficientFunds"), "{}", text(&out));
    let out = bank(
        d,
        &[
            "open-account",
            "--pan",
            PAN,
            "--secret-out",
            "again.pansecret",
        ],
    );
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));

    let out = bank(d, &["--json", "balance", "--pan", PAN]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let fifty = serde_json::json!({"value": "50.00", "minor": 5000});
    assert_eq!(json["balance"], fifty);
    assert_eq!(json["available"], fifty);
    assert_eq!(json["ok"], true);
    let out = ops(d, &["peers", "--stopped-broker", "broker.toml"]);
    assert!(text(&out).contains("0 registered peers"), "{}", text(&out));
    let out = ops(d, &["peers", "--stopped-broker", "broker.toml", "--json"]);
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json, serde_json::json!({"ok": true, "peers": []}));
    // A refusal with `--json`: the error document on stdout, exit 3.
    let out = bank(d, &["--json", "payout", "--pan", PAN, "--amount", "60.00"]);
    assert_eq!(out.status.code(), Some(3), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&json["ok"], &json["error"]),
        (&false.into(), &"refused".into())
    );
    assert!(
        json["message"]
            .as_str()
            .unwrap()
            .contains("InsufficientFunds"),
        "{json}"
    );

    // A broker that runs holds its log: the tool is refused and changes nothing.
    {
        let args = <broker::config::BrokerArgs as clap::Parser>::try_parse_from([
            "peerscrip-broker",
            "--config",
            d.join("broker.toml").to_str().unwrap(),
        ])
        .unwrap();
        let config = broker::config::BrokerConfig::load(&args, &|_| None).unwrap();
        let _running = broker::daemon::open_node(&config).unwrap();
        let out = bank(d, &["deposit", "--pan", PAN, "--amount", "1.00"]);
        assert_eq!(out.status.code(), Some(1), "{}", text(&out));
        assert!(
            text(&out).contains("opening the stopped broker"),
            "{}",
            text(&out)
        );
    }

    // Over NATS with no server there: exit 4, unreachable (nothing sent).
    assert!(
        ops(d, &["keygen", "--suite", "paper", "--out", "keys/operator"])
            .status
            .success()
    );
    let out = ops(
        d,
        &[
            "bank",
            "--suite",
            "paper",
            "--nats-url",
            "nats://127.0.0.1:1",
            "--timeout",
            "2",
            "--operator-key",
            "keys/operator/key.pem",
            "--broker-key",
            "keys/broker/key.pub.pem",
            "balance",
            "--pan",
            PAN,
        ],
    );
    assert_eq!(out.status.code(), Some(4), "{}", text(&out));
    assert!(
        text(&out).contains("cannot reach the NATS server"),
        "{}",
        text(&out)
    );

    // The log: the opening and the deposit, nothing of the refusals, and it audits clean.
    let out = ops(d, &["audit", "--json", "data/broker"]);
    assert!(out.status.success(), "{}", text(&out));
    let json: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(json["events"], 2);
    assert_eq!(json["by_kind"]["AccountOpened"], 1);
    assert_eq!(json["by_kind"]["Deposited"], 1);
}
