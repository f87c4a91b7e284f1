//! `peerscrip-ops export` (protocol.md section 8) against a harness `nats-server` with
//! JetStream and its own store directory: the demo's broker log arrives once, in order, as
//! the stored bytes with their headers; an exporter killed (SIGKILL) in the middle of a
//! large log, or while following a growing one, resumes after a restart so that the stream
//! holds every event exactly once, in order. The restarts come after the stream's duplicate
//! window has passed, so that only the exporter's own resume (not the server's `Nats-Msg-Id`
//! deduplication) can keep a duplicate out.
#![allow(clippy::unwrap_used)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use broker::core::Kind;
use ops::export::{DEFAULT_SUBJECT_PREFIX, HEADER_KIND, HEADER_SEQ};
use peerscrip_tests::export_stream::{ExportStream, log_rows, node_subject};
use peerscrip_tests::{NatsServer, bank_log};
use shared::events::EventLog;
use shared::export::Row;
use shared::node::Recorded;
use shared::{Suite, Uid};

mod common;

const STREAM: &str = "AUDIT";

/// A short duplicate window for the kill tests: waited out before each restart.
const SHORT_WINDOW: Duration = Duration::from_millis(300);

/// `peerscrip-ops export <target>` to [`STREAM`] on the server at `url`, with `extra`.
fn export_command(target: &Path, url: &str, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
    command
        .arg("export")
        .arg(target)
        .args(["--nats-url", url, "--stream", STREAM])
        .args(extra);
    command
}

/// [`export_command`] naming the node's UID, `uid`.
fn exporter(target: &Path, url: &str, uid: &Uid, extra: &[&str]) -> Command {
    let mut command = export_command(target, url, &["--uid", &uid.to_string()]);
    command.args(extra);
    command
}

fn run_ok(mut command: Command) -> Output {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{command:?}:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Runs `command`, which must stop with exit `code` (the table of `--help`: 2 a bad
/// argument, 3 a stream that disagrees with the log, 1 a log it cannot read): its standard
/// error, which says why.
fn refused(mut command: Command, code: i32) -> String {
    let out = command.output().unwrap();
    assert_eq!(out.status.code(), Some(code), "{command:?}");
    String::from_utf8(out.stderr).unwrap()
}

fn spawn(mut command: Command) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The subject of broker `uid`'s events.
fn subject(uid: &Uid) -> String {
    node_subject("broker", uid)
}

/// The broker log's events as the export reads them.
fn rows(path: &Path) -> Vec<Row> {
    log_rows(path, broker::node::event_name)
}

/// The kinds of the broker log's events, in order.
fn kinds(path: &Path) -> Vec<Kind> {
    let log = EventLog::<Recorded<Kind>>::open_existing(path).unwrap();
    let kinds = log.iter().unwrap().map(|e| e.unwrap().kind.kind).collect();
    log.close().unwrap();
    kinds
}

/// Asserts that the stream holds `path`'s events exactly once, in order, byte for byte,
/// with their headers.
async fn assert_exported_once(stream: &ExportStream, uid: &Uid, path: &Path) {
    stream.assert_holds("broker", uid, &rows(path)).await;
}

async fn wait_until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "timed out: {what}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// Kills `child` with SIGKILL and asserts that it was still running (it did not finish).
fn kill(mut child: Child) {
    use std::os::unix::process::ExitStatusExt as _;
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert_eq!(
        status.signal(),
        Some(9),
        "killed by SIGKILL, not finished: {status}"
    );
}

fn demo_broker_dir(dir: &Path) -> PathBuf {
    let data = dir.join("run");
    run_ok({
        let mut c = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
        c.args(["demo", "--suite", "paper", "--data-dir"])
            .arg(&data);
        c
    });
    data.join("broker")
}

#[tokio::test]
async fn the_demos_broker_log_is_exported_once_in_order_with_its_headers() {
    let dir = tempfile::tempdir().unwrap();
    let broker_dir = demo_broker_dir(dir.path());
    let log = broker_dir.join("broker.redb");
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    let uid = Uid::random();

    // The demo's directory records no node.toml: without --uid the export is refused.
    let stderr = refused(export_command(&broker_dir, &server.url(), &[]), 2);
    assert!(
        stderr.contains("(no node.toml): give it with --uid"),
        "{stderr}"
    );
    assert_eq!(stream.count(&subject(&uid)).await, 0, "nothing published");

    run_ok(exporter(&broker_dir, &server.url(), &uid, &[]));
    let events = kinds(&log);
    assert!(events.len() > 20, "the demo's log has its events");
    assert_exported_once(&stream, &uid, &log).await;
    let messages = stream.messages(&subject(&uid)).await;
    for (seq, (message, kind)) in (1..).zip(messages.iter().zip(&events)) {
        assert_eq!(message.header("Nats-Msg-Id"), format!("{uid}:{seq}"));
        let name = message.header(HEADER_KIND);
        assert!(
            !name.is_empty() && format!("{kind:?}").starts_with(name),
            "{name} names {kind:?}"
        );
    }
    assert_eq!(messages[0].header(HEADER_KIND), "AccountOpened");

    // A second run finds the stream complete and publishes nothing.
    let out = run_ok(exporter(&broker_dir, &server.url(), &uid, &[]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "0 events published, 0 already in the stream (duplicates dropped), last seq {n} \
             (the stream held up to seq {n} before)",
            n = events.len()
        )),
        "{text}"
    );
    assert_exported_once(&stream, &uid, &log).await;
    // `--json` (before the subcommand): the summary as one document.
    let mut json = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
    json.arg("--json")
        .arg("export")
        .arg(&broker_dir)
        .args(["--nats-url", &server.url(), "--stream", STREAM])
        .args(["--uid", &uid.to_string()]);
    let out = run_ok(json);
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        doc,
        serde_json::json!({
            "ok": true,
            "stream": STREAM,
            "subject": subject(&uid),
            "published": 0,
            "duplicates": 0,
            "last": events.len(),
            "resumed_after": events.len(),
        })
    );
    // No server: unreachable, exit 4, the error as one document with `--json`.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let out = exporter(
        &broker_dir,
        &format!("nats://127.0.0.1:{port}"),
        &uid,
        &["--json"],
    )
    .output()
    .unwrap();
    assert_eq!(out.status.code(), Some(4));
    let doc: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (&doc["ok"], &doc["error"]),
        (&false.into(), &"unreachable".into())
    );
}

#[tokio::test]
async fn an_exporter_killed_mid_stream_resumes_without_gap_or_duplicate() {
    const EVENTS: u64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, EVENTS).unwrap();
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    stream.create(Some(SHORT_WINDOW)).await;
    let uid = Uid::random();
    let subject = subject(&uid);

    let child = spawn(exporter(&log, &server.url(), &uid, &[]));
    wait_until("some events exported", async || {
        stream.count(&subject).await >= 2_000
    })
    .await;
    kill(child);
    let held = stream.count(&subject).await;
    assert!(held < EVENTS, "killed mid-stream ({held} of {EVENTS})");

    tokio::time::sleep(SHORT_WINDOW * 2).await;
    let out = run_ok(exporter(&log, &server.url(), &uid, &[]));
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains(&format!(
            "{} events published, 0 already in the stream (duplicates dropped), last seq \
             {EVENTS} (the stream held up to seq {held} before)",
            EVENTS - held
        )),
        "{text}"
    );
    assert_exported_once(&stream, &uid, &log).await;
}

#[tokio::test]
async fn a_following_exporter_killed_and_restarted_exports_a_growing_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 1_500).unwrap();
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    stream.create(Some(SHORT_WINDOW)).await;
    let uid = Uid::random();
    let subject = subject(&uid);
    let follow = ["--follow", "--poll-ms", "20"];

    let child = spawn(exporter(&log, &server.url(), &uid, &follow));
    wait_until("the first events exported", async || {
        stream.count(&subject).await == 1_500
    })
    .await;
    // The log grows while the exporter follows it (between its polls: each takes the
    // file's lock only while it reads).
    grow(&log, 3_000);
    wait_until("the new events followed", async || {
        stream.count(&subject).await == 3_000
    })
    .await;
    kill(child);

    grow(&log, 4_500);
    tokio::time::sleep(SHORT_WINDOW * 2).await;
    let child = spawn(exporter(&log, &server.url(), &uid, &follow));
    wait_until("the restarted exporter caught up", async || {
        stream.count(&subject).await >= 4_500
    })
    .await;
    kill(child);
    assert_exported_once(&stream, &uid, &log).await;
}

/// Extends the bank log to `events`, retrying while a following exporter holds the file.
fn grow(log: &Path, events: u64) {
    let start = Instant::now();
    loop {
        match bank_log::build(log, Suite::Paper, events) {
            Ok(()) => return,
            Err(bank_log::BuildError::Log(shared::events::LogError::Locked { .. }))
                if start.elapsed() < Duration::from_secs(30) =>
            {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => panic!("{e}"),
        }
    }
}

#[tokio::test]
async fn a_stream_holding_another_history_of_the_node_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let exported = dir.path().join("exported.redb");
    let other = dir.path().join("other.redb");
    let shorter = dir.path().join("shorter.redb");
    bank_log::build(&exported, Suite::Paper, 200).unwrap();
    // The same kinds of events, other txs: another history under the same UID.
    bank_log::build(&other, Suite::Paper, 300).unwrap();
    bank_log::build(&shorter, Suite::Paper, 100).unwrap();
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    let uid = Uid::random();
    let subject = subject(&uid);
    run_ok(exporter(&exported, &server.url(), &uid, &[]));
    assert_eq!(stream.count(&subject).await, 200);

    for (log, message) in [
        (
            &other,
            format!("the stream's event 200 on {subject} differs from the log's event 200"),
        ),
        (
            &shorter,
            format!("the stream holds {subject} up to seq 200, the log only up to 100"),
        ),
    ] {
        let stderr = refused(exporter(log, &server.url(), &uid, &[]), 3);
        assert!(stderr.contains(&message), "{stderr}");
        assert_exported_once(&stream, &uid, &exported).await;
    }
}

#[tokio::test]
async fn a_subject_with_a_doubled_or_foreign_message_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 50).unwrap();
    let first = rows(&log).remove(0).bytes;
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    stream.create(Some(SHORT_WINDOW)).await;
    let publish = async |uid: &Uid, headers: async_nats::HeaderMap| {
        stream
            .jetstream()
            .publish_with_headers(subject(uid), headers, first.clone().into())
            .await
            .unwrap()
            .await
            .unwrap();
    };

    // Event 1 twice (no Nats-Msg-Id, as a careless tool would): a doubled event.
    let doubled = Uid::random();
    for _ in 0..2 {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(HEADER_SEQ, "1");
        publish(&doubled, headers).await;
    }
    // A message that is no export at all.
    let foreign = Uid::random();
    publish(&foreign, async_nats::HeaderMap::new()).await;

    for (uid, held, message) in [
        (
            doubled,
            2,
            format!(
                "{} holds 2 messages but its last is seq 1: events are missing or doubled",
                subject(&doubled)
            ),
        ),
        (
            foreign,
            1,
            format!(
                "the stream's last message on {} is not an export: no {HEADER_SEQ} header",
                subject(&foreign)
            ),
        ),
    ] {
        let stderr = refused(exporter(&log, &server.url(), &uid, &[]), 3);
        assert!(stderr.contains(&message), "{stderr}");
        assert_eq!(
            stream.count(&subject(&uid)).await,
            held,
            "nothing published"
        );
    }
}

#[tokio::test]
async fn an_event_that_does_not_link_to_the_one_before_stops_the_export_before_it() {
    let dir = tempfile::tempdir().unwrap();
    let built = dir.path().join("built.redb");
    let log = dir.path().join("broker.redb");
    bank_log::build(&built, Suite::Paper, 50).unwrap();
    // Event 30's prev_hash altered (a tampered file; its own row still decodes).
    common::rewrite_event::<Recorded<Kind>>(&built, &log, 30, |event| event.prev_hash[0] ^= 1);
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    let uid = Uid::random();

    let stderr = refused(exporter(&log, &server.url(), &uid, &[]), 3);
    assert!(
        stderr.contains(
            "the log's event 30 does not link to the exported event before it (prev_hash)"
        ),
        "{stderr}"
    );
    let messages = stream.messages(&subject(&uid)).await;
    let seqs: Vec<String> = messages
        .iter()
        .map(|m| m.header(HEADER_SEQ).to_owned())
        .collect();
    assert_eq!(seqs, (1..30).map(|s| s.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_following_exporter_waits_while_the_log_is_locked_and_exports_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 100).unwrap();
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    let uid = Uid::random();
    let subject = subject(&uid);

    // Held as a running node holds it: exclusive.
    let held = EventLog::<Recorded<Kind>>::open(
        &log,
        shared::events::LogIdentity::new(Suite::Paper, "broker"),
    )
    .unwrap();
    // Without --follow a locked log is an error, naming the lock.
    let stderr = refused(exporter(&log, &server.url(), &uid, &[]), 1);
    assert!(
        stderr.contains(&format!(
            "event log {} is locked by another handle or process",
            log.display()
        )),
        "{stderr}"
    );

    let mut child = spawn(exporter(
        &log,
        &server.url(),
        &uid,
        &["--follow", "--poll-ms", "20"],
    ));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(child.try_wait().unwrap().is_none(), "still waiting");
    assert_eq!(stream.count(&subject).await, 0, "nothing read while locked");
    held.close().unwrap();
    wait_until("exported once free", async || {
        stream.count(&subject).await == 100
    })
    .await;
    kill(child);
    assert_exported_once(&stream, &uid, &log).await;
}

#[tokio::test]
async fn an_event_dropped_as_a_duplicate_of_another_message_stops_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 20).unwrap();
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    stream.create(None).await;
    let uid = Uid::random();
    // Another message took event 1's Nats-Msg-Id (on another subject) inside the window.
    let elsewhere = format!("{DEFAULT_SUBJECT_PREFIX}.other");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("{uid}:1").as_str());
    stream
        .jetstream()
        .publish_with_headers(elsewhere.clone(), headers, "not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let stderr = refused(exporter(&log, &server.url(), &uid, &[]), 3);
    assert!(
        stderr.contains(&format!(
            "publishing on {}: event 1 was dropped as a duplicate of stream message 1 on \
             {elsewhere}, which is not this event",
            subject(&uid)
        )),
        "{stderr}"
    );
    // The events published behind it in the same window were stored: the subject lacks
    // event 1, and the next start says so instead of extending it.
    assert_eq!(stream.count(&subject(&uid)).await, 19);
    let stderr = refused(exporter(&log, &server.url(), &uid, &[]), 3);
    assert!(
        stderr.contains(&format!(
            "{} holds 19 messages but its last is seq 20: events are missing or doubled",
            subject(&uid)
        )),
        "{stderr}"
    );
    assert_eq!(stream.count(&subject(&uid)).await, 19, "nothing published");
}

#[tokio::test]
async fn the_uid_comes_from_the_data_directorys_node_toml_and_a_bad_prefix_is_refused() {
    use shared::daemon::NodeIdentity;
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("broker");
    std::fs::create_dir(&data).unwrap();
    let log = data.join("broker.redb");
    bank_log::build(&log, Suite::Paper, 10).unwrap();
    let uid = Uid::random();
    let server = NatsServer::start().unwrap();
    let stream = ExportStream::on(&server, STREAM).await;
    let export = |extra: &[&str]| export_command(&data, &server.url(), extra);

    let stderr = refused(export(&["--subject", "peerscrip.*"]), 2);
    assert!(
        stderr.contains("--subject: subject prefix \"peerscrip.*\" contains a wildcard"),
        "{stderr}"
    );

    // A merchant's identity beside a broker's log: refused, naming both.
    NodeIdentity {
        kind: "merchant".to_owned(),
        suite: Suite::Paper,
        uid,
    }
    .check_or_record(&data)
    .unwrap();
    let stderr = refused(export(&[]), 1);
    assert!(
        stderr.contains("records a merchant, the log is a broker's"),
        "{stderr}"
    );
    assert_eq!(stream.count(&subject(&uid)).await, 0);

    std::fs::remove_file(data.join(shared::daemon::identity::IDENTITY_FILE)).unwrap();
    NodeIdentity {
        kind: "broker".to_owned(),
        suite: Suite::Paper,
        uid,
    }
    .check_or_record(&data)
    .unwrap();
    run_ok(export(&[]));
    assert_exported_once(&stream, &uid, &log).await;
}
