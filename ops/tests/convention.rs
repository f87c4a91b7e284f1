//! One convention for every `peerscrip-ops` command, through the built binary: the exit
//! codes of `--help` (the table `peerscrip --help` shows too, one function makes both),
//! `--json` before or after the subcommand, one JSON document on stdout for a result and
//! for an error (`ok`, `error`, `exit_code`, `message`), and each failure class on its code:
//! usage 2, failed 1, refused 3, unreachable 4, timed out 5.
#![allow(clippy::unwrap_used)]

use std::path::Path;
use std::process::{Command, Output};

use customer_cli::cli::exit::{Exit, exit_codes_help};
use futures::StreamExt as _;
use peerscrip_tests::NatsServer;
use serde_json::Value;

fn ops(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"))
        .args(args)
        .env_remove("PEERSCRIP_NATS_URL")
        .env_remove("PEERSCRIP_OPERATOR_KEY")
        .env_remove("PEERSCRIP_BROKER_KEY")
        .output()
        .unwrap()
}

/// The one JSON document on stdout.
fn doc(out: &Output) -> Value {
    serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
        panic!(
            "stdout is not one JSON document ({e}): {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    })
}

/// `out` failed as `exit`, its `--json` error document on stdout saying so.
fn failed_as(out: &Output, exit: Exit) -> Value {
    assert_eq!(
        out.status.code(),
        Some(i32::from(exit.code())),
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let doc = doc(out);
    assert_eq!(doc["ok"], false, "{doc}");
    assert_eq!(doc["error"], exit.kind(), "{doc}");
    assert_eq!(doc["exit_code"], exit.code(), "{doc}");
    assert!(
        doc["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{doc}"
    );
    doc
}

/// A TCP port nothing listens on.
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn path(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn help_states_the_one_table_for_the_tool_and_every_subcommand() {
    let table = exit_codes_help();
    for exit in Exit::ALL {
        assert!(
            table.contains(&format!("\n  {}  {}", exit.code(), exit.meaning())),
            "{table}"
        );
    }
    let top = ops(&["--help"]);
    assert!(top.status.success());
    assert!(String::from_utf8_lossy(&top.stdout).contains(&table));
    for sub in [
        "keygen",
        "demo",
        "nats-config",
        "bank",
        "audit",
        "reconcile",
        "dispute",
        "export",
        "peers",
        "bench",
    ] {
        let out = ops(&[sub, "--help"]);
        assert!(out.status.success(), "{sub}");
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains(&table), "{sub}:\n{help}");
        assert!(help.contains("--json"), "{sub}:\n{help}");
    }
    for exempt in ["completions", "man"] {
        let out = ops(&[exempt, "--help"]);
        let help = String::from_utf8_lossy(&out.stdout);
        assert!(help.contains("--json does not apply"), "{exempt}:\n{help}");
    }
}

/// `--json` before or after the subcommand gives the same kind of document; a usage error
/// with `--json` is the error document, exit 2; without it clap's message, exit 2.
#[test]
fn json_goes_before_or_after_the_subcommand_and_usage_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let before = dir.path().join("before");
    let after = dir.path().join("after");
    let out = ops(&[
        "--json",
        "keygen",
        "--suite",
        "paper",
        "--out",
        path(&before),
    ]);
    assert!(out.status.success());
    let first = doc(&out);
    let out = ops(&[
        "keygen",
        "--suite",
        "paper",
        "--out",
        path(&after),
        "--json",
    ]);
    assert!(out.status.success());
    let second = doc(&out);
    for (d, dir) in [(&first, &before), (&second, &after)] {
        assert_eq!(d["ok"], true, "{d}");
        assert_eq!(d["suite"], "paper");
        assert_eq!(d["public_key"], path(&dir.join("key.pub.pem")));
        assert_eq!(d["uid"].as_str().unwrap().len(), 32);
    }

    let usage = failed_as(&ops(&["keygen", "--bogus", "--json"]), Exit::Usage);
    assert!(
        usage["message"].as_str().unwrap().contains("--bogus"),
        "{usage}"
    );
    let missing = failed_as(&ops(&["--json", "audit"]), Exit::Usage);
    assert_eq!(
        missing["message"],
        "the following required arguments were not provided: <TARGET>"
    );
    let out = ops(&["audit"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(out.stdout.is_empty());

    // nats-config --json: what it wrote.
    let conf = dir.path().join("conf");
    let broker_pem = before.join("key.pub.pem");
    let out = ops(&[
        "nats-config",
        "--suite",
        "paper",
        "--out",
        path(&conf),
        "--broker",
        path(&broker_pem),
        "--json",
    ]);
    let d = doc(&out);
    assert_eq!(d["ok"], true, "{d}");
    assert_eq!(d["config"], path(&conf.join("nats-server.conf")));
    assert_eq!(d["passwords"][0]["name"], "broker");
}

/// `bank balance --json` as the operator `key`, the broker pinned as `public`.
fn bank_balance(url: &str, timeout: &str, key: &Path, public: &Path) -> Output {
    ops(&[
        "bank",
        "--suite",
        "paper",
        "--nats-url",
        url,
        "--timeout",
        timeout,
        "--operator-key",
        path(key),
        "--broker-key",
        path(public),
        "balance",
        "--pan",
        "GR1601101250000000012300695",
        "--json",
    ])
}

/// Each failure class of the table on its code, with its JSON error document: a log that
/// cannot be read (1), a bundle that does not verify (3), a broker with no NATS server
/// (4), a broker request nobody answers (5), an export of a directory without a log (2).
#[test]
fn each_failure_class_exits_by_the_table_with_one_json_document() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("no-such-log.redb");
    let d = failed_as(&ops(&["audit", path(&missing), "--json"]), Exit::Failed);
    assert!(
        d["message"].as_str().unwrap().contains("no-such-log.redb"),
        "{d}"
    );
    let out = ops(&["audit", path(&missing)]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        out.stdout.is_empty(),
        "the error goes to stderr without --json"
    );
    assert!(
        String::from_utf8_lossy(&out.stderr).starts_with("peerscrip-ops: error: "),
        "{out:?}"
    );

    let keys = dir.path().join("keys");
    assert!(
        ops(&["keygen", "--suite", "paper", "--out", path(&keys)])
            .status
            .success()
    );
    let (key, public) = (keys.join("key.pem"), keys.join("key.pub.pem"));
    let garbage = dir.path().join("garbage.bundle");
    std::fs::write(&garbage, b"not a bundle").unwrap();
    failed_as(
        &ops(&[
            "dispute",
            "verify",
            path(&garbage),
            "--broker-key",
            path(&public),
            "--json",
        ]),
        Exit::Refused,
    );

    let d = failed_as(
        &bank_balance(
            &format!("nats://127.0.0.1:{}", closed_port()),
            "2",
            &key,
            &public,
        ),
        Exit::Unreachable,
    );
    assert!(
        d["message"]
            .as_str()
            .unwrap()
            .contains("cannot reach the NATS server"),
        "{d}"
    );

    // A server where something takes the request and never answers: timed out, 5 (the
    // deposit or payout may have been recorded: the same command again is safe).
    let server = NatsServer::start().unwrap();
    let url = server.url();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let timed_out = runtime.block_on(async move {
        let client = async_nats::connect(url.clone()).await.unwrap();
        let mut all = client.subscribe(">").await.unwrap();
        client.flush().await.unwrap();
        let silent = tokio::spawn(async move { while all.next().await.is_some() {} });
        let out = tokio::task::spawn_blocking(move || bank_balance(&url, "1", &key, &public))
            .await
            .unwrap();
        silent.abort();
        out
    });
    let d = failed_as(&timed_out, Exit::TimedOut);
    assert!(
        d["message"].as_str().unwrap().contains("did not answer"),
        "{d}"
    );

    let empty = dir.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    failed_as(
        &ops(&[
            "export",
            path(&empty),
            "--nats-url",
            &format!("nats://127.0.0.1:{}", closed_port()),
            "--stream",
            "AUDIT",
            "--json",
        ]),
        Exit::Usage,
    );
}
