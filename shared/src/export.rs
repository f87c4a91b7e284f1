//! The event export to a JetStream stream (protocol.md section 8): what `peerscrip-ops
//! export` and a daemon's `export_stream` option share, so that an external auditor can
//! follow a node's log without access to its file.
//!
//! # What is published
//!
//! One message per event, in seq order, on the subject `<prefix>.<node kind>.<uid>`
//! ([`subject`]: one subject per node, so one stream can hold a whole deployment and each
//! node's events are found by subject). The payload is the event's postcard bytes exactly
//! as the log stores them: the bytes the hash chain covers (protocol.md section 8), so a
//! consumer checks the chain across messages (`prev_hash` of message n is the SHA-256 of
//! message n−1's payload) and decodes with the node's own event type. The headers repeat,
//! for a consumer that does not decode, the node kind ([`HEADER_NODE_KIND`]), its UID
//! ([`HEADER_NODE_UID`]), the event's seq ([`HEADER_SEQ`]), tx ([`HEADER_TX`]) and kind
//! name ([`HEADER_KIND`]).
//!
//! # Exactly once, in order, across restarts
//!
//! An [`Exporter`] keeps no state outside the stream: the stream is the record of what was
//! exported.
//! - [`Exporter::resume`] reads the stream's last message on the node's subject and
//!   continues at its seq + 1. Before anything is published it checks that the stream and
//!   the log agree: the last exported payload must be the log's event of that seq byte for
//!   byte, and the subject must hold exactly that many messages (seqs 1..=n, none missing,
//!   none twice); otherwise it refuses ([`ExportError::Diverged`], [`ExportError::Count`],
//!   [`ExportError::StreamAhead`]) rather than extend a stream that is not this log's.
//! - Every event published must link to the one before (its `prev_hash` is the hash of the
//!   previous payload, the last exported one after a restart): an export never splices two
//!   different histories ([`ExportError::Unlinked`]).
//! - Each message carries `Nats-Msg-Id: <uid>:<seq>`, so a re-publish inside the stream's
//!   duplicate window (an exporter killed after the server stored a message but before it
//!   read the ack, restarted at once; or two exporters of one log) is dropped by the server.
//! - Publishes are pipelined ([`PUBLISH_WINDOW`] unacknowledged at most) on one connection,
//!   which the server processes in order: a killed exporter leaves a prefix of its
//!   messages stored, never a gap. Any failed acknowledgement stops the pass with an error,
//!   and a duplicate is accepted only if the message the server kept under that id is this
//!   event on this subject ([`ExportError::NotStored`]). The publishes already sent behind
//!   a refused one may be stored, so the next resume re-checks the stream as above and
//!   refuses a subject with a gap.
//!
//! Where the events come from is the caller's ([`Source`]): the ops command opens the file
//! per chunk between a node's runs, a running daemon asks its own node actor
//! (`shared::daemon::export`), so the log is never opened twice.

use std::collections::VecDeque;
use std::future::Future;
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::bus::Subjects;
use crate::events::{ChainHash, EventLog, GENESIS_PREV_HASH, LogError, chain::hash_bytes};
use crate::ids::Uid;

/// Header: the node kind recorded in the log (`broker`, `merchant`, `wallet`).
pub const HEADER_NODE_KIND: &str = "Peerscrip-Node-Kind";
/// Header: the node's UID.
pub const HEADER_NODE_UID: &str = "Peerscrip-Node-Uid";
/// Header: the event's seq in its log.
pub const HEADER_SEQ: &str = "Peerscrip-Seq";
/// Header: the event's tx.
pub const HEADER_TX: &str = "Peerscrip-Tx";
/// Header: the name of the event's kind (its variant, e.g. `Deposited`).
pub const HEADER_KIND: &str = "Peerscrip-Kind";

/// The default subject prefix: beside the deployment's own subjects (`peerscrip.broker`,
/// `peerscrip.merchant.<uid>`, `peerscrip.peer.<uid>`), never among them, so a stream on
/// `peerscrip.events.>` captures no request or delivery.
pub const DEFAULT_SUBJECT_PREFIX: &str = "peerscrip.events";

/// The duplicate window of a stream the exporter creates: how long the server remembers a
/// `Nats-Msg-Id` (the JetStream default, stated so the guarantee is written down).
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// At most this many publishes wait for their acknowledgement: enough to keep the
/// connection busy, few enough that an error stops the export close to where it happened.
pub const PUBLISH_WINDOW: usize = 256;

/// One event as read from the log: its stored bytes and what the headers repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Row {
    /// Its seq.
    pub seq: u64,
    /// Its tx.
    pub tx: String,
    /// The name of its kind.
    pub kind: String,
    /// Its link to the event before.
    pub prev_hash: ChainHash,
    /// Its bytes exactly as stored (what the chain hashes).
    pub bytes: Vec<u8>,
}

/// Up to `max` events of `log` from `from` on, each with its stored bytes and its kind's
/// name (`name`, the node's own naming), in one read transaction.
///
/// # Errors
/// As [`EventLog::stored_from`].
pub fn rows<K: Serialize + DeserializeOwned>(
    log: &EventLog<K>,
    from: u64,
    max: usize,
    name: impl Fn(&K) -> String,
) -> Result<Vec<Row>, LogError> {
    log.stored_from(from)?
        .take(max)
        .map(|row| {
            row.map(|(event, bytes)| Row {
                seq: event.seq,
                tx: event.tx.to_string(),
                kind: name(&event.kind),
                prev_hash: event.prev_hash,
                bytes,
            })
        })
        .collect()
}

/// The subject of a node's events under `prefix`.
#[must_use]
pub fn subject(prefix: &str, node_kind: &str, uid: &Uid) -> String {
    format!("{prefix}.{node_kind}.{uid}")
}

/// Where an export reads the node's events. Its error type carries the export's own
/// errors too, so that a caller gets one error type from [`Exporter::resume`].
pub trait Source {
    /// What reading fails with (and what the export's errors become).
    type Error: From<ExportError>;

    /// Up to `max` events from `from` on, in seq order (fewer, or none, at the log's end).
    fn read(
        &mut self,
        from: u64,
        max: usize,
    ) -> impl Future<Output = Result<Vec<Row>, Self::Error>> + Send;

    /// The log's last seq (0: empty).
    fn head(&mut self) -> impl Future<Output = Result<u64, Self::Error>> + Send;
}

/// What an export did so far.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The subject of the node's events.
    pub subject: String,
    /// The seq the stream held when the export (re)started (0: none).
    pub resumed_after: u64,
    /// Messages published and stored.
    pub published: u64,
    /// Messages the server dropped as duplicates (already stored under their `Nats-Msg-Id`).
    pub duplicates: u64,
    /// The last seq exported.
    pub last: u64,
}

/// Why an export stopped.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// A NATS or JetStream operation failed (the server or JetStream is unreachable, a
    /// permission is missing): worth retrying.
    #[error("{what}: {source}")]
    Nats {
        /// What the exporter was doing.
        what: &'static str,
        /// Why.
        source: async_nats::Error,
    },
    /// A message on the node's subject is not one an exporter wrote.
    #[error("the stream's last message on {subject} is not an export: {reason}")]
    Foreign {
        /// The subject.
        subject: String,
        /// What is wrong with it.
        reason: String,
    },
    /// The server did not store an event as this exporter's (another stream took the
    /// subject, or its `Nats-Msg-Id` was already taken by another message).
    #[error("publishing on {subject}: {reason}")]
    NotStored {
        /// The subject.
        subject: String,
        /// What the server did instead.
        reason: String,
    },
    /// The stream holds more of this node's events than the log.
    #[error("the stream holds {subject} up to seq {stream}, the log only up to {log}")]
    StreamAhead {
        /// The subject.
        subject: String,
        /// The last seq in the stream.
        stream: u64,
        /// The log's last seq.
        log: u64,
    },
    /// The stream's copy of an event differs from the log's.
    #[error("the stream's event {seq} on {subject} differs from the log's event {seq}")]
    Diverged {
        /// The subject.
        subject: String,
        /// The seq.
        seq: u64,
    },
    /// The subject does not hold exactly seqs 1..=last.
    #[error(
        "{subject} holds {count} messages but its last is seq {last}: events are missing or doubled"
    )]
    Count {
        /// The subject.
        subject: String,
        /// Messages on it.
        count: u64,
        /// The last seq.
        last: u64,
    },
    /// An event does not link to the one exported before it.
    #[error("the log's event {seq} does not link to the exported event before it (prev_hash)")]
    Unlinked {
        /// The event.
        seq: u64,
    },
}

impl ExportError {
    /// Whether retrying can help: only a NATS failure; every other error says the stream
    /// and the log disagree, which no retry changes.
    #[must_use]
    pub fn is_transient(&self) -> bool {
        matches!(self, ExportError::Nats { .. })
    }
}

fn nats(what: &'static str) -> impl FnOnce(async_nats::Error) -> ExportError {
    move |source| ExportError::Nats { what, source }
}

/// Publishes awaiting their acknowledgement: (seq, payload, ack).
type Pending = VecDeque<(u64, Bytes, PublishAckFuture)>;

/// One node's export to one stream (see the module doc).
#[derive(Debug)]
pub struct Exporter {
    js: jetstream::Context,
    /// The stream, to read its last message and the message a duplicate points to.
    handle: stream::Stream,
    stream: String,
    node_kind: String,
    uid: String,
    /// The hash of the last exported payload (the genesis hash before the first).
    prev: ChainHash,
    summary: Summary,
}

impl Exporter {
    /// Opens (or creates, on `<prefix>.>` with [`DUPLICATE_WINDOW`]) the stream `stream`
    /// on `client` for the events of the node `node_kind` `uid`. Call [`Exporter::resume`]
    /// before publishing.
    ///
    /// # Errors
    /// [`ExportError::Nats`] when the stream cannot be created or opened.
    pub async fn open(
        client: async_nats::Client,
        stream: &str,
        prefix: &Subjects,
        node_kind: &str,
        uid: &Uid,
    ) -> Result<Exporter, ExportError> {
        let js = jetstream::new(client);
        let handle = js
            .get_or_create_stream(stream::Config {
                name: stream.to_owned(),
                subjects: vec![format!("{}.>", prefix.prefix())],
                duplicate_window: DUPLICATE_WINDOW,
                ..Default::default()
            })
            .await
            .map_err(|e| nats("creating or opening the stream")(e.into()))?;
        let subject = subject(prefix.prefix(), node_kind, uid);
        Ok(Exporter {
            js,
            handle,
            stream: stream.to_owned(),
            node_kind: node_kind.to_owned(),
            uid: uid.to_string(),
            prev: GENESIS_PREV_HASH,
            summary: Summary {
                subject,
                resumed_after: 0,
                published: 0,
                duplicates: 0,
                last: 0,
            },
        })
    }

    /// What the export did so far.
    #[must_use]
    pub fn summary(&self) -> &Summary {
        &self.summary
    }

    /// The node's subject.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.summary.subject
    }

    /// The stream's name.
    #[must_use]
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The next seq to export.
    #[must_use]
    pub fn next(&self) -> u64 {
        self.summary.last + 1
    }

    /// Where the stream stands for this node, checked against `source` (module doc): sets
    /// the next seq to export after the stream's last one, and returns that last seq (0:
    /// none).
    ///
    /// # Errors
    /// The source's, or the refusals of the module doc.
    pub async fn resume<S: Source>(&mut self, source: &mut S) -> Result<u64, S::Error> {
        let subject = self.summary.subject.clone();
        let last = match self.handle.get_last_raw_message_by_subject(&subject).await {
            Ok(message) => message,
            Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
                self.set_resumed(0, GENESIS_PREV_HASH);
                return Ok(0);
            }
            Err(e) => return Err(nats("reading the stream's last message")(e.into()).into()),
        };
        let foreign = |reason: String| ExportError::Foreign {
            subject: subject.clone(),
            reason,
        };
        let seq: u64 = last
            .headers
            .get(HEADER_SEQ)
            .ok_or_else(|| foreign(format!("no {HEADER_SEQ} header")))?
            .as_str()
            .parse()
            .map_err(|e| foreign(format!("{HEADER_SEQ}: {e}")))?;
        let stored = source.read(seq, 1).await?;
        match stored.first() {
            Some(row) if row.seq == seq && row.bytes == last.payload.as_ref() => {}
            Some(row) if row.seq == seq => {
                return Err(ExportError::Diverged { subject, seq }.into());
            }
            _ => {
                let log = source.head().await?;
                return Err(ExportError::StreamAhead {
                    subject,
                    stream: seq,
                    log,
                }
                .into());
            }
        }
        let mut counts = self
            .handle
            .info_with_subjects(subject.as_str())
            .await
            .map_err(|e| nats("reading the stream's subjects")(e.into()))?;
        let mut count = 0u64;
        while let Some((name, n)) = counts
            .try_next()
            .await
            .map_err(|e| nats("reading the stream's subjects")(e.into()))?
        {
            if name == subject {
                count = n as u64;
            }
        }
        if count != seq {
            return Err(ExportError::Count {
                subject,
                count,
                last: seq,
            }
            .into());
        }
        self.set_resumed(seq, hash_bytes(&last.payload));
        Ok(seq)
    }

    fn set_resumed(&mut self, seq: u64, prev: ChainHash) {
        self.summary.resumed_after = seq;
        self.summary.last = seq;
        self.prev = prev;
    }

    /// Publishes `rows` (the next events, in order, from [`Exporter::next`] on), each linked
    /// to the one before, pipelined (module doc); the summary follows the
    /// acknowledgements.
    ///
    /// # Errors
    /// [`ExportError::Unlinked`] (the rows before it are published), a NATS failure, or
    /// [`ExportError::NotStored`].
    pub async fn publish(&mut self, rows: Vec<Row>) -> Result<(), ExportError> {
        let mut pending: Pending = VecDeque::new();
        let mut prev = self.prev;
        for row in rows {
            if row.prev_hash != prev {
                self.drain(&mut pending).await?;
                return Err(ExportError::Unlinked { seq: row.seq });
            }
            prev = hash_bytes(&row.bytes);
            let mut headers = HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{}:{}", self.uid, row.seq).as_str(),
            );
            headers.insert(HEADER_NODE_KIND, self.node_kind.as_str());
            headers.insert(HEADER_NODE_UID, self.uid.as_str());
            headers.insert(HEADER_SEQ, row.seq.to_string().as_str());
            headers.insert(HEADER_TX, row.tx.as_str());
            headers.insert(HEADER_KIND, row.kind.as_str());
            let payload = Bytes::from(row.bytes);
            let ack = self
                .js
                .publish_with_headers(self.summary.subject.clone(), headers, payload.clone())
                .await
                .map_err(|e| nats("publishing an event")(e.into()))?;
            pending.push_back((row.seq, payload, ack));
            if pending.len() >= PUBLISH_WINDOW {
                self.settle_one(&mut pending).await?;
            }
        }
        self.drain(&mut pending).await
    }

    /// Reads and publishes chunks of `chunk` events from `source` until it has no more;
    /// returns how many it exported.
    ///
    /// # Errors
    /// The source's, or [`Exporter::publish`]'s.
    pub async fn catch_up<S: Source>(
        &mut self,
        source: &mut S,
        chunk: usize,
    ) -> Result<u64, S::Error> {
        let first = self.next();
        loop {
            let rows = source.read(self.next(), chunk).await?;
            if rows.is_empty() {
                return Ok(self.next() - first);
            }
            self.publish(rows).await?;
        }
    }

    async fn drain(&mut self, pending: &mut Pending) -> Result<(), ExportError> {
        while !pending.is_empty() {
            self.settle_one(pending).await?;
        }
        Ok(())
    }

    /// Waits for the oldest acknowledgement. A duplicate is accepted only if the message the
    /// server kept under that `Nats-Msg-Id` is this event on this subject: an id taken by
    /// anything else would otherwise drop the event unseen.
    async fn settle_one(&mut self, pending: &mut Pending) -> Result<(), ExportError> {
        let Some((seq, payload, ack)) = pending.pop_front() else {
            return Ok(());
        };
        let ack = ack
            .await
            .map_err(|e| nats("waiting for an acknowledgement")(e.into()))?;
        let subject = &self.summary.subject;
        if ack.stream != self.stream {
            return Err(ExportError::NotStored {
                subject: subject.clone(),
                reason: format!("stored by stream {}, not {}", ack.stream, self.stream),
            });
        }
        if ack.duplicate {
            let kept = self
                .handle
                .get_raw_message(ack.sequence)
                .await
                .map_err(|e| nats("reading the message a duplicate points to")(e.into()))?;
            if kept.subject.as_str() != subject || kept.payload != payload {
                return Err(ExportError::NotStored {
                    subject: subject.clone(),
                    reason: format!(
                        "event {seq} was dropped as a duplicate of stream message {} on {}, \
                         which is not this event",
                        ack.sequence, kept.subject
                    ),
                });
            }
            self.summary.duplicates += 1;
        } else {
            self.summary.published += 1;
        }
        self.prev = hash_bytes(&payload);
        self.summary.last = seq;
        Ok(())
    }
}
