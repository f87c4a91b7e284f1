//! The event export's JetStream stream read back (protocol.md section 8): what
//! `peerscrip-ops export` and the daemons' `--export-stream` published, message by message,
//! and the check that a subject holds a node's whole log exactly once, in order, as the
//! stored bytes with their headers.
//!
//! Reading is bounded: [`ExportStream::messages`] first asks the stream how many messages
//! the subject holds, then reads exactly those through an ordered consumer, so a reader
//! never waits for a message that will not come (nor stops early on one that is late).
//!
//! Every function here panics when the server does not answer as a JetStream server does:
//! this is a test kit, and the panic is the test's failure message.

use std::path::Path;
use std::time::Duration;

use async_nats::jetstream::{self, consumer, stream};
use futures::StreamExt as _;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::Uid;
use shared::events::{ChainHash, Event, EventLog, GENESIS_PREV_HASH, chain::hash_bytes};
use shared::export::{
    DEFAULT_SUBJECT_PREFIX, HEADER_KIND, HEADER_NODE_KIND, HEADER_NODE_UID, HEADER_SEQ, HEADER_TX,
    Row,
};

use crate::NatsServer;

/// How long one message may take to arrive once the stream has said it holds it.
const MESSAGE_PATIENCE: Duration = Duration::from_secs(10);

/// One message as the stream holds it.
#[derive(Debug)]
pub struct Exported {
    /// Its place in the stream (all subjects).
    pub stream_seq: u64,
    /// Its headers.
    pub headers: async_nats::HeaderMap,
    /// Its payload: an event's stored bytes.
    pub payload: Vec<u8>,
}

impl Exported {
    /// The header `name`.
    ///
    /// # Panics
    /// When the message has no such header.
    #[must_use]
    pub fn header(&self, name: &str) -> &str {
        self.headers
            .get(name)
            .unwrap_or_else(|| panic!("no {name} header on stream message {}", self.stream_seq))
            .as_str()
    }
}

/// The subject of the events of the node of kind `node_kind` and UID `uid`, under the
/// default prefix (what `peerscrip-ops export` and the daemons publish on).
#[must_use]
pub fn node_subject(node_kind: &str, uid: &Uid) -> String {
    shared::export::subject(DEFAULT_SUBJECT_PREFIX, node_kind, uid)
}

/// The stream `name` on a server, through a JetStream context of its own connection.
pub struct ExportStream {
    js: jetstream::Context,
    name: String,
}

impl ExportStream {
    /// The stream `name` on `server` (which need not exist yet).
    ///
    /// # Panics
    /// When the server cannot be reached.
    pub async fn on(server: &NatsServer, name: &str) -> ExportStream {
        let client = async_nats::connect(server.url())
            .await
            .expect("connect to nats-server");
        ExportStream {
            js: jetstream::new(client),
            name: name.to_owned(),
        }
    }

    /// Another stream, `name`, over the same connection.
    #[must_use]
    pub fn named(&self, name: &str) -> ExportStream {
        ExportStream {
            js: self.js.clone(),
            name: name.to_owned(),
        }
    }

    /// The JetStream context, to publish or inspect as a test needs.
    #[must_use]
    pub fn jetstream(&self) -> &jetstream::Context {
        &self.js
    }

    /// Creates the stream on every subject of the default prefix, with `duplicate_window`
    /// (the server's default when `None`). A short window lets a test wait it out, so
    /// that only an exporter's own resume, not the server's `Nats-Msg-Id` deduplication,
    /// can keep a duplicate out.
    ///
    /// # Panics
    /// When the server refuses.
    pub async fn create(&self, duplicate_window: Option<Duration>) {
        let mut config = stream::Config {
            name: self.name.clone(),
            subjects: vec![format!("{DEFAULT_SUBJECT_PREFIX}.>")],
            ..Default::default()
        };
        if let Some(window) = duplicate_window {
            config.duplicate_window = window;
        }
        self.js
            .create_stream(config)
            .await
            .expect("create the stream");
    }

    /// Deletes the stream.
    ///
    /// # Panics
    /// When the server refuses.
    pub async fn delete(&self) {
        self.js
            .delete_stream(&self.name)
            .await
            .expect("delete the stream");
    }

    /// How many messages the stream holds on `subject` (0 before the stream exists).
    ///
    /// # Panics
    /// When the server does not answer.
    pub async fn count(&self, subject: &str) -> u64 {
        let Ok(mut stream) = self.js.get_stream(&self.name).await else {
            return 0;
        };
        let info = stream.info().await.expect("the stream's info");
        if info.state.messages == 0 {
            return 0;
        }
        let mut counts = stream
            .info_with_subjects(subject)
            .await
            .expect("the stream's subjects");
        let mut n = 0;
        while let Some(Ok((name, c))) = counts.next().await {
            if name == subject {
                n = c as u64;
            }
        }
        n
    }

    /// Every message on `subject`, in stream order (none before the stream exists).
    ///
    /// # Panics
    /// When a message the stream counts does not arrive within [`MESSAGE_PATIENCE`].
    pub async fn messages(&self, subject: &str) -> Vec<Exported> {
        let n = self.count(subject).await;
        if n == 0 {
            return Vec::new();
        }
        let stream = self.js.get_stream(&self.name).await.expect("the stream");
        let consumer = stream
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: subject.to_owned(),
                ..Default::default()
            })
            .await
            .expect("an ordered consumer");
        let mut messages = consumer.messages().await.expect("the consumer's messages");
        let mut out = Vec::new();
        while (out.len() as u64) < n {
            let message = tokio::time::timeout(MESSAGE_PATIENCE, messages.next())
                .await
                .unwrap_or_else(|_| panic!("message {} of {n} on {subject}", out.len() + 1))
                .expect("the consumer is open")
                .expect("a message");
            out.push(Exported {
                stream_seq: message.info().expect("a JetStream message").stream_sequence,
                headers: message.headers.clone().unwrap_or_default(),
                payload: message.payload.to_vec(),
            });
        }
        out
    }

    /// Asserts that the subject of the node (`node_kind`, `uid`) holds `rows`, the node's
    /// whole log as [`log_rows`] reads it: one message per event, in stream order, events
    /// 1..=n without a gap or a duplicate, each the stored bytes linking to the one
    /// before, with the headers naming its seq, tx, kind and node.
    ///
    /// # Panics
    /// When it does not.
    pub async fn assert_holds(&self, node_kind: &str, uid: &Uid, rows: &[Row]) {
        let messages = self.messages(&node_subject(node_kind, uid)).await;
        assert_eq!(
            messages.len(),
            rows.len(),
            "one message per event of the log"
        );
        let (mut prev, mut last_stream_seq) = (GENESIS_PREV_HASH, 0);
        for (i, (message, row)) in messages.iter().zip(rows).enumerate() {
            assert_eq!(row.seq, i as u64 + 1, "the whole log, from its first event");
            assert_eq!(message.header(HEADER_SEQ), row.seq.to_string());
            assert!(message.stream_seq > last_stream_seq, "in order");
            last_stream_seq = message.stream_seq;
            assert!(
                message.payload == row.bytes,
                "event {}: the stored bytes",
                row.seq
            );
            assert_eq!(
                row.prev_hash, prev,
                "event {} links to the one before",
                row.seq
            );
            prev = hash_bytes(&message.payload);
            assert_eq!(message.header(HEADER_TX), row.tx);
            assert_eq!(message.header(HEADER_KIND), row.kind);
            assert_eq!(message.header(HEADER_NODE_UID), uid.to_string());
            assert_eq!(message.header(HEADER_NODE_KIND), node_kind);
        }
    }
}

/// Asserts that `messages` (a subject read while its node still exports, so perhaps not
/// its whole log yet) are one chain of the node's events `K` from the first on: seq
/// headers 1, 2, …, each payload an event of that seq linking to the one before.
///
/// # Panics
/// When they are not.
pub fn assert_linked<K: DeserializeOwned>(messages: &[Exported]) {
    let mut prev: ChainHash = GENESIS_PREV_HASH;
    for (i, message) in messages.iter().enumerate() {
        let seq = i as u64 + 1;
        assert_eq!(message.header(HEADER_SEQ), seq.to_string());
        let event = Event::<K>::decode(&message.payload)
            .unwrap_or_else(|e| panic!("message {seq} is no event of the node: {e}"));
        assert_eq!(
            (event.seq, event.prev_hash),
            (seq, prev),
            "event {seq} links to the one before"
        );
        prev = hash_bytes(&message.payload);
    }
}

/// Every event of the closed log at `path` as the export reads it (`shared::export::rows`),
/// its kinds named by `name` (the node's `event_name`).
///
/// # Panics
/// When the log cannot be read.
#[must_use]
pub fn log_rows<K: Serialize + DeserializeOwned>(path: &Path, name: fn(&K) -> String) -> Vec<Row> {
    let log = EventLog::<K>::open_existing(path).expect("open the log");
    let rows = shared::export::rows(&log, 1, usize::MAX, name).expect("read the log");
    log.close().expect("close the log");
    rows
}
