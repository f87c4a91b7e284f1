//! What the highly available broker (docs/adr/0017) relies on, checked on a real
//! three-server JetStream cluster (`peerscrip_tests::nats_cluster`) before any broker code
//! leans on it:
//!
//! - **Fenced appends.** A publish carrying `Nats-Expected-Last-Subject-Sequence` lands
//!   only if the subject's last message is that one: a deposed writer that still appends
//!   with what it last saw is refused, and the log has one history.
//! - **Quorum.** With a stream of three replicas, appends go on with one server down, are
//!   not acknowledged with two down, and go on once one is back; every acknowledged append
//!   is still there, in order, and nothing else.
//! - **The lease.** A key in a three-replica KV bucket whose entries live `TTL`: one holder
//!   creates it, renews it by revision; a competitor can neither create it nor update it
//!   with a stale revision while it is renewed, and takes it once it lapses.
//! - **The replica on it** (`shared::daemon::ha::StreamReplica`): a batch is taken once
//!   even when published again; another writer's different event of a seq already taken
//!   is refused, not taken for a duplicate, and fences that writer for good; a batch of
//!   256 events is taken pipelined (the stream-wide expected sequence: the per-subject one
//!   refuses an append while another is in flight on a clustered stream).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use async_nats::HeaderMap;
use async_nats::jetstream::{self, kv, stream};
use bytes::Bytes;
use peerscrip_tests::nats_cluster::NatsCluster;
use peerscrip_tests::processes::PATIENCE;

const SUBJECT: &str = "peerscrip.ha.log";

/// A JetStream context on the cluster, its requests bounded by `timeout`.
async fn context(cluster: &NatsCluster, timeout: Duration) -> jetstream::Context {
    let servers: Vec<async_nats::ServerAddr> = cluster
        .servers
        .iter()
        .map(|s| s.url().parse().unwrap())
        .collect();
    let client = async_nats::ConnectOptions::new()
        .retry_on_initial_connect()
        .connect(servers)
        .await
        .unwrap();
    let mut js = jetstream::new(client);
    js.set_timeout(timeout);
    js
}

/// Appends `payload` if the subject's last message is `expected` (0: none): its stream
/// sequence, or the server's refusal.
async fn append(js: &jetstream::Context, expected: u64, payload: &str) -> Result<u64, String> {
    let mut headers = HeaderMap::new();
    headers.insert(
        "Nats-Expected-Last-Subject-Sequence",
        expected.to_string().as_str(),
    );
    headers.insert("Nats-Msg-Id", format!("{payload}:{expected}").as_str());
    let ack = js
        .publish_with_headers(SUBJECT, headers, Bytes::from(payload.to_owned()))
        .await
        .map_err(|e| e.to_string())?;
    ack.await.map(|a| a.sequence).map_err(|e| e.to_string())
}

/// [`append`] retried until acknowledged, within [`PATIENCE`] (the cluster electing a
/// leader, a client moving to another server).
async fn append_eventually(js: &jetstream::Context, expected: u64, payload: &str) -> u64 {
    let start = Instant::now();
    loop {
        match append(js, expected, payload).await {
            Ok(seq) => return seq,
            Err(e) => assert!(start.elapsed() < PATIENCE, "never acknowledged: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The stream of three replicas on [`SUBJECT`], created once the cluster has a JetStream
/// leader.
async fn log_stream(js: &jetstream::Context) -> stream::Stream {
    let start = Instant::now();
    loop {
        let created = js
            .get_or_create_stream(stream::Config {
                name: "PEERSCRIP_HA_LOG".to_owned(),
                subjects: vec![SUBJECT.to_owned()],
                num_replicas: 3,
                ..stream::Config::default()
            })
            .await;
        match created {
            Ok(stream) => return stream,
            Err(e) => assert!(start.elapsed() < PATIENCE, "no stream: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Every message of the stream, in order.
async fn contents(stream: &stream::Stream, last: u64) -> Vec<String> {
    let mut out = Vec::new();
    for seq in 1..=last {
        let message = stream.get_raw_message(seq).await.unwrap();
        out.push(String::from_utf8(message.payload.to_vec()).unwrap());
    }
    out
}

#[tokio::test]
async fn a_deposed_writer_cannot_extend_the_log_and_acknowledged_appends_survive_losing_servers() {
    let mut cluster = NatsCluster::start().expect("start the cluster");
    let js = context(&cluster, Duration::from_secs(2)).await;
    let stream = log_stream(&js).await;

    // Fencing: the writer that saw seq 2 appends; the one that still thinks 1 is last is
    // refused, and its event is not in the log.
    assert_eq!(append_eventually(&js, 0, "e1").await, 1);
    assert_eq!(append(&js, 1, "e2").await, Ok(2));
    // A retried append (same Nats-Msg-Id, same expected sequence) is acknowledged as the
    // duplicate it is, not refused for the sequence it now follows: the replica retries a
    // batch whose acknowledgements it did not get (shared::daemon::ha::replica).
    assert_eq!(append(&js, 1, "e2").await, Ok(2));
    let deposed = append(&js, 1, "stale").await;
    assert!(
        deposed
            .as_ref()
            .is_err_and(|e| e.contains("wrong last sequence")),
        "{deposed:?}"
    );

    // One server down: appends go on.
    cluster.servers[0].stop();
    assert_eq!(append_eventually(&js, 2, "e3").await, 3);
    // Two down: no quorum, no acknowledgement.
    cluster.servers[1].stop();
    let without_quorum = append(&js, 3, "e4").await;
    assert!(without_quorum.is_err(), "{without_quorum:?}");
    // One back: the append goes on (the same event, deduplicated by its id if the first
    // attempt was stored after all).
    cluster.servers[1].start_again().expect("restart a server");
    let seq = append_eventually(&js, 3, "e4").await;
    assert_eq!(seq, 4);
    cluster.servers[0].start_again().expect("restart a server");
    assert_eq!(contents(&stream, 4).await, ["e1", "e2", "e3", "e4"]);
    let info = js
        .get_stream("PEERSCRIP_HA_LOG")
        .await
        .unwrap()
        .info()
        .await
        .unwrap()
        .clone();
    assert_eq!(info.state.messages, 4);
}

#[tokio::test]
async fn the_lease_has_one_holder_at_a_time_and_passes_on_when_it_lapses() {
    const TTL: Duration = Duration::from_secs(3);
    let cluster = NatsCluster::start().expect("start the cluster");
    let js = context(&cluster, Duration::from_secs(5)).await;
    let start = Instant::now();
    let bucket = loop {
        let created = js
            .create_key_value(kv::Config {
                bucket: "peerscrip_ha_lease".to_owned(),
                history: 1,
                max_age: TTL,
                num_replicas: 3,
                ..kv::Config::default()
            })
            .await;
        match created {
            Ok(bucket) => break bucket,
            Err(e) => assert!(start.elapsed() < PATIENCE, "no bucket: {e}"),
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };

    let held = bucket.create("broker", Bytes::from("a")).await.unwrap();
    assert!(bucket.create("broker", Bytes::from("b")).await.is_err());
    // The holder renews by revision, twice within the TTL; the competitor's stale update
    // is refused.
    let mut revision = held;
    for _ in 0..2 {
        tokio::time::sleep(TTL / 2).await;
        revision = bucket
            .update("broker", Bytes::from("a"), revision)
            .await
            .unwrap();
        assert!(bucket.create("broker", Bytes::from("b")).await.is_err());
    }
    assert!(
        bucket
            .update("broker", Bytes::from("b"), held)
            .await
            .is_err()
    );
    // The holder stops renewing: past the TTL the competitor takes the lease.
    tokio::time::sleep(TTL + Duration::from_secs(1)).await;
    let taken = bucket.create("broker", Bytes::from("b")).await.unwrap();
    assert!(
        bucket
            .update("broker", Bytes::from("a"), revision)
            .await
            .is_err(),
        "the old holder cannot renew a lease it lost"
    );
    // The new holder renews by its revision. (Reads of the bucket may be served by a
    // follower and lag: only a write's answer says who holds the lease.)
    let renewed = bucket.update("broker", Bytes::from("b"), taken).await;
    assert!(renewed.is_ok_and(|r| r > taken));
}

/// `rows` through `replica`, on a blocking thread as the shell commits.
async fn replicate(
    replica: &std::sync::Arc<shared::daemon::ha::StreamReplica>,
    rows: Vec<shared::events::ReplicaRow>,
) -> Result<(), shared::events::ReplicaError> {
    use shared::events::Replica as _;
    let replica = replica.clone();
    tokio::task::spawn_blocking(move || replica.replicate(&rows))
        .await
        .unwrap()
}

fn row(seq: u64, bytes: &str) -> shared::events::ReplicaRow {
    shared::events::ReplicaRow {
        seq,
        bytes: bytes.as_bytes().to_vec(),
        annex: None,
    }
}

#[tokio::test]
async fn the_replica_takes_a_batch_once_and_fences_a_second_writer() {
    use shared::daemon::ha::{self, Fence, HaSettings, StreamReplica};
    use shared::events::Replica as _;
    use std::sync::Arc;

    let cluster = NatsCluster::start().expect("start the cluster");
    let uid = shared::fixtures::keypair(shared::Suite::Paper, 0).uid();
    let options = shared::bus::NatsOptions::default();
    let writer = |name: &str| {
        let mut settings = HaSettings::with_defaults(name.to_owned());
        settings.lease_ttl = Duration::from_secs(10);
        // Each its own lease bucket: the second writer believes it holds the lease, as a
        // deposed holder that has not noticed yet does. One stream for both.
        settings.bucket = format!("lease-{name}");
        settings
    };
    let open = |settings: HaSettings| {
        let (url, options) = (cluster.url(), options.clone());
        async move {
            let start = Instant::now();
            loop {
                match ha::open(&url, &options, &settings, "broker", uid, "check".to_owned()).await {
                    Ok(opened) => return opened,
                    Err(e) => assert!(start.elapsed() < PATIENCE, "no cluster: {e}"),
                }
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
        }
    };
    let lead = |(log, lease): (ha::ReplicatedLog, ha::Lease)| async move {
        let fence = Arc::new(Fence::default());
        let keeper = lease.try_take(fence.clone()).await.unwrap().unwrap();
        let replica = Arc::new(StreamReplica::spawn(
            log.clone(),
            fence.clone(),
            keeper.validity(),
            Duration::from_secs(2),
        ));
        (log, keeper, fence, replica)
    };
    let (log, _keeper, fence, first) = lead(open(writer("first")).await).await;
    let (_, _second_keeper, second_fence, second) = lead(open(writer("second")).await).await;

    replicate(&first, vec![row(1, "e1"), row(2, "e2")])
        .await
        .unwrap();
    // The same batch again (a retry whose acknowledgements were lost): taken once.
    replicate(&first, vec![row(2, "e2")]).await.unwrap();
    assert_eq!(log.last().await.unwrap(), 2);

    // The second writer's own event 2: refused, and it is fenced for good.
    let refused = replicate(&second, vec![row(2, "other")]).await.unwrap_err();
    assert!(refused.0.contains("wrong last sequence"), "{refused}");
    assert!(second.writable().is_err());
    assert!(second_fence.reason().is_some());
    assert_eq!(log.last().await.unwrap(), 2);
    assert_eq!(
        log.payload(2).await.unwrap().as_deref(),
        Some(b"e2".as_slice())
    );

    // The first goes on, a large batch pipelined: every event acknowledged at once, none
    // refused for the one in flight before it.
    assert!(fence.reason().is_none());
    let batch: Vec<_> = (3..=258).map(|seq| row(seq, &format!("e{seq}"))).collect();
    replicate(&first, batch).await.unwrap();
    assert_eq!(log.last().await.unwrap(), 258);
    assert_eq!(
        log.payload(200).await.unwrap().as_deref(),
        Some(b"e200".as_slice())
    );
    assert!(fence.reason().is_none());
}
