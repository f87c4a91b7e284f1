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

use async_nats::jetstream::{self, consumer, stream};
use broker::core::Kind;
use futures::StreamExt;
use ops::export::{
    DEFAULT_SUBJECT_PREFIX, HEADER_KIND, HEADER_NODE_KIND, HEADER_NODE_UID, HEADER_SEQ, HEADER_TX,
};
use peerscrip_tests::{NatsServer, bank_log};
use shared::events::EventLog;
use shared::node::Recorded;
use shared::{Suite, Uid};

const STREAM: &str = "AUDIT";

/// A short duplicate window for the kill tests: waited out before each restart.
const SHORT_WINDOW: Duration = Duration::from_millis(300);

fn exporter(target: &Path, url: &str, uid: &Uid, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
    command
        .arg("export")
        .arg(target)
        .args(["--nats-url", url, "--stream", STREAM, "--uid"])
        .arg(uid.to_string())
        .args(extra);
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

fn spawn(mut command: Command) -> Child {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap()
}

/// The subject of broker `uid`'s events.
fn subject(uid: &Uid) -> String {
    ops::export::subject(DEFAULT_SUBJECT_PREFIX, "broker", uid)
}

/// The log's events as stored: (seq, tx, kind name, bytes).
fn stored(path: &Path) -> Vec<(u64, String, Kind, Vec<u8>)> {
    let log = EventLog::<Recorded<Kind>>::open_existing(path).unwrap();
    let rows = log
        .stored_from(1)
        .unwrap()
        .map(|row| {
            let (event, bytes) = row.unwrap();
            (event.seq, event.tx.to_string(), event.kind.kind, bytes)
        })
        .collect();
    log.close().unwrap();
    rows
}

async fn js(server: &NatsServer) -> jetstream::Context {
    jetstream::new(async_nats::connect(server.url()).await.unwrap())
}

/// How many messages the stream holds on `subject` (0 before the stream exists).
async fn count(js: &jetstream::Context, subject: &str) -> u64 {
    let Ok(mut stream) = js.get_stream(STREAM).await else {
        return 0;
    };
    let info = stream.info().await.unwrap();
    if info.state.messages == 0 {
        return 0;
    }
    let mut counts = stream.info_with_subjects(subject).await.unwrap();
    let mut n = 0;
    while let Some(Ok((name, c))) = counts.next().await {
        if name == subject {
            n = c as u64;
        }
    }
    n
}

/// One message as the stream holds it.
struct Exported {
    stream_seq: u64,
    headers: async_nats::HeaderMap,
    payload: Vec<u8>,
}

/// Every message on `subject`, in stream order.
async fn messages(js: &jetstream::Context, subject: &str) -> Vec<Exported> {
    let n = count(js, subject).await;
    let stream = js.get_stream(STREAM).await.unwrap();
    let consumer = stream
        .create_consumer(consumer::pull::OrderedConfig {
            filter_subject: subject.to_owned(),
            ..Default::default()
        })
        .await
        .unwrap();
    let mut messages = consumer.messages().await.unwrap();
    let mut out = Vec::new();
    while (out.len() as u64) < n {
        let message = tokio::time::timeout(Duration::from_secs(10), messages.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        out.push(Exported {
            stream_seq: message.info().unwrap().stream_sequence,
            headers: message.headers.clone().unwrap_or_default(),
            payload: message.payload.to_vec(),
        });
    }
    out
}

fn header<'a>(message: &'a Exported, name: &str) -> &'a str {
    message.headers.get(name).unwrap().as_str()
}

/// Asserts that the stream holds `path`'s events exactly once, in order, byte for byte.
async fn assert_exported_once(js: &jetstream::Context, uid: &Uid, path: &Path) {
    let events = stored(path);
    let messages = messages(js, &subject(uid)).await;
    assert_eq!(messages.len(), events.len(), "one message per event");
    let mut last_stream_seq = 0;
    for (message, (seq, _, _, bytes)) in messages.iter().zip(&events) {
        assert_eq!(header(message, HEADER_SEQ), seq.to_string());
        assert!(message.stream_seq > last_stream_seq, "in order");
        last_stream_seq = message.stream_seq;
        assert!(message.payload == *bytes, "event {seq}: the stored bytes");
    }
}

/// A stream on the default prefix with a short duplicate window, so that a restart after it
/// cannot lean on the server's deduplication.
async fn short_window_stream(js: &jetstream::Context) {
    js.create_stream(stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{DEFAULT_SUBJECT_PREFIX}.>")],
        duplicate_window: SHORT_WINDOW,
        ..Default::default()
    })
    .await
    .unwrap();
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
    let js = js(&server).await;
    let uid = Uid::random();

    // The demo's directory records no node.toml: without --uid the export is refused.
    let mut bare = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
    bare.arg("export")
        .arg(&broker_dir)
        .args(["--nats-url", &server.url(), "--stream", STREAM]);
    let out = bare.output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("(no node.toml): give it with --uid"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(count(&js, &subject(&uid)).await, 0, "nothing published");

    run_ok(exporter(&broker_dir, &server.url(), &uid, &[]));
    let events = stored(&log);
    assert!(events.len() > 20, "the demo's log has its events");
    assert_exported_once(&js, &uid, &log).await;
    let messages = messages(&js, &subject(&uid)).await;
    for (message, (seq, tx, kind, _)) in messages.iter().zip(&events) {
        assert_eq!(header(message, HEADER_NODE_KIND), "broker");
        assert_eq!(header(message, HEADER_NODE_UID), uid.to_string());
        assert_eq!(header(message, HEADER_TX), *tx);
        assert_eq!(header(message, "Nats-Msg-Id"), format!("{uid}:{seq}"));
        let name = header(message, HEADER_KIND);
        assert!(
            !name.is_empty() && format!("{kind:?}").starts_with(name),
            "{name} names {kind:?}"
        );
    }
    assert_eq!(header(&messages[0], HEADER_KIND), "AccountOpened");

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
    assert_exported_once(&js, &uid, &log).await;
}

#[tokio::test]
async fn an_exporter_killed_mid_stream_resumes_without_gap_or_duplicate() {
    const EVENTS: u64 = 30_000;
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, EVENTS).unwrap();
    let server = NatsServer::start().unwrap();
    let js = js(&server).await;
    short_window_stream(&js).await;
    let uid = Uid::random();
    let subject = subject(&uid);

    let child = spawn(exporter(&log, &server.url(), &uid, &[]));
    wait_until("some events exported", async || {
        count(&js, &subject).await >= 2_000
    })
    .await;
    kill(child);
    let held = count(&js, &subject).await;
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
    assert_exported_once(&js, &uid, &log).await;
}

#[tokio::test]
async fn a_following_exporter_killed_and_restarted_exports_a_growing_log_once() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 1_500).unwrap();
    let server = NatsServer::start().unwrap();
    let js = js(&server).await;
    short_window_stream(&js).await;
    let uid = Uid::random();
    let subject = subject(&uid);
    let follow = ["--follow", "--poll-ms", "20"];

    let child = spawn(exporter(&log, &server.url(), &uid, &follow));
    wait_until("the first events exported", async || {
        count(&js, &subject).await == 1_500
    })
    .await;
    // The log grows while the exporter follows it (between its polls: each takes the
    // file's lock only while it reads).
    grow(&log, 3_000);
    wait_until("the new events followed", async || {
        count(&js, &subject).await == 3_000
    })
    .await;
    kill(child);

    grow(&log, 4_500);
    tokio::time::sleep(SHORT_WINDOW * 2).await;
    let child = spawn(exporter(&log, &server.url(), &uid, &follow));
    wait_until("the restarted exporter caught up", async || {
        count(&js, &subject).await >= 4_500
    })
    .await;
    kill(child);
    assert_exported_once(&js, &uid, &log).await;
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
    let js = js(&server).await;
    let uid = Uid::random();
    let subject = subject(&uid);
    run_ok(exporter(&exported, &server.url(), &uid, &[]));
    assert_eq!(count(&js, &subject).await, 200);

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
        let out = exporter(log, &server.url(), &uid, &[]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&message), "{stderr}");
        assert_exported_once(&js, &uid, &exported).await;
    }
}

#[tokio::test]
async fn a_subject_with_a_doubled_or_foreign_message_is_refused_and_left_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 50).unwrap();
    let first = stored(&log).remove(0).3;
    let server = NatsServer::start().unwrap();
    let js = js(&server).await;
    short_window_stream(&js).await;
    let publish = async |uid: &Uid, headers: async_nats::HeaderMap| {
        js.publish_with_headers(subject(uid), headers, first.clone().into())
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
        let out = exporter(&log, &server.url(), &uid, &[]).output().unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(stderr.contains(&message), "{stderr}");
        assert_eq!(count(&js, &subject(&uid)).await, held, "nothing published");
    }
}

#[tokio::test]
async fn an_event_that_does_not_link_to_the_one_before_stops_the_export_before_it() {
    use redb::ReadableTable as _;
    const EVENTS: redb::TableDefinition<u64, &[u8]> = redb::TableDefinition::new("events");
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 50).unwrap();
    // Event 30's prev_hash altered (a tampered file; its own row still decodes).
    {
        let db = redb::Database::open(&log).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut table = txn.open_table(EVENTS).unwrap();
            let bytes = table.get(30).unwrap().unwrap().value().to_vec();
            let mut event = shared::events::Event::<Recorded<Kind>>::decode(&bytes).unwrap();
            event.prev_hash[0] ^= 1;
            table
                .insert(30, event.encode().unwrap().as_slice())
                .unwrap();
        }
        txn.commit().unwrap();
    }
    let server = NatsServer::start().unwrap();
    let js = js(&server).await;
    let uid = Uid::random();

    let out = exporter(&log, &server.url(), &uid, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(
            "the log's event 30 does not link to the exported event before it (prev_hash)"
        ),
        "{stderr}"
    );
    let messages = messages(&js, &subject(&uid)).await;
    let seqs: Vec<String> = messages
        .iter()
        .map(|m| header(m, HEADER_SEQ).to_owned())
        .collect();
    assert_eq!(seqs, (1..30).map(|s| s.to_string()).collect::<Vec<_>>());
}

#[tokio::test]
async fn a_following_exporter_waits_while_the_log_is_locked_and_exports_once_it_is_free() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 100).unwrap();
    let server = NatsServer::start().unwrap();
    let js = js(&server).await;
    let uid = Uid::random();
    let subject = subject(&uid);

    // Held as a running node holds it: exclusive.
    let held = EventLog::<Recorded<Kind>>::open(
        &log,
        shared::events::LogIdentity::new(Suite::Paper, "broker"),
    )
    .unwrap();
    // Without --follow a locked log is an error, naming the lock.
    let out = exporter(&log, &server.url(), &uid, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
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
    assert_eq!(count(&js, &subject).await, 0, "nothing read while locked");
    held.close().unwrap();
    wait_until("exported once free", async || {
        count(&js, &subject).await == 100
    })
    .await;
    kill(child);
    assert_exported_once(&js, &uid, &log).await;
}

#[tokio::test]
async fn an_event_dropped_as_a_duplicate_of_another_message_stops_the_export() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("broker.redb");
    bank_log::build(&log, Suite::Paper, 20).unwrap();
    let server = NatsServer::start().unwrap();
    let js = js(&server).await;
    js.create_stream(stream::Config {
        name: STREAM.to_owned(),
        subjects: vec![format!("{DEFAULT_SUBJECT_PREFIX}.>")],
        ..Default::default()
    })
    .await
    .unwrap();
    let uid = Uid::random();
    // Another message took event 1's Nats-Msg-Id (on another subject) inside the window.
    let elsewhere = format!("{DEFAULT_SUBJECT_PREFIX}.other");
    let mut headers = async_nats::HeaderMap::new();
    headers.insert("Nats-Msg-Id", format!("{uid}:1").as_str());
    js.publish_with_headers(elsewhere.clone(), headers, "not an event".into())
        .await
        .unwrap()
        .await
        .unwrap();

    let out = exporter(&log, &server.url(), &uid, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
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
    assert_eq!(count(&js, &subject(&uid)).await, 19);
    let out = exporter(&log, &server.url(), &uid, &[]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&format!(
            "{} holds 19 messages but its last is seq 20: events are missing or doubled",
            subject(&uid)
        )),
        "{stderr}"
    );
    assert_eq!(count(&js, &subject(&uid)).await, 19, "nothing published");
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
    let js = js(&server).await;
    let export = |extra: &[&str]| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_peerscrip-ops"));
        c.arg("export")
            .arg(&data)
            .args(["--nats-url", &server.url(), "--stream", STREAM])
            .args(extra);
        c.output().unwrap()
    };

    let out = export(&["--subject", "peerscrip.*"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
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
    let out = export(&[]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("records a merchant, the log is a broker's"),
        "{stderr}"
    );
    assert_eq!(count(&js, &subject(&uid)).await, 0);

    std::fs::remove_file(data.join(shared::daemon::identity::IDENTITY_FILE)).unwrap();
    NodeIdentity {
        kind: "broker".to_owned(),
        suite: Suite::Paper,
        uid,
    }
    .check_or_record(&data)
    .unwrap();
    let out = export(&[]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_exported_once(&js, &uid, &log).await;
}
