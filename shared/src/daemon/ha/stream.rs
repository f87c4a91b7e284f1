//! The replicated log: a JetStream stream holding one node's events, one message each, in
//! seq order (docs/adr/0017).
//!
//! # A stream of its own
//!
//! The stream captures exactly one subject, `<prefix>.<node kind>.<uid>`, and is created
//! with `deny_delete` and `deny_purge`, so its sequence numbers are the events' seqs: the
//! message of event n is stream message n, and the expected last sequence of the append of
//! event n is n − 1. [`ReplicatedLog::open`] refuses a stream that captures other subjects,
//! allows deletion, or whose sequence numbers have a gap.
//!
//! # A message
//!
//! The payload is the event's stored bytes (what the hash chain covers). The headers:
//! - `Nats-Msg-Id: <uid>:<seq>:<hash>`, the first 16 hex digits of the event's SHA-256: a
//!   retried publish of the same event is stored once, while a different event of the
//!   same seq (a deposed writer's) is never taken for a duplicate of it and meets the
//!   expected-sequence check instead;
//! - `Nats-Expected-Last-Sequence: <seq − 1>`: the server refuses the append unless the
//!   stream ends with the event before ("wrong last sequence"), so two writers can never
//!   both extend the log. The stream-wide check, not the per-subject one: on a clustered
//!   stream the per-subject check refuses an append while another of the subject is in
//!   flight (error 10164, "not ready"), which would forbid pipelining a batch; on a stream
//!   of one subject the two are the same fence;
//! - the export's headers (node kind, UID, seq; `shared::export`), `Peerscrip-Annex`
//!   (hex) when the node attached an annex (`crate::events::replica`), and
//!   `Peerscrip-Check`, the writer's check value: a reader with another refuses the
//!   message (nodes of one deployment must share their secrets; the broker's check value
//!   is a hash of its root key).

use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::{self, consumer, stream};
use bytes::Bytes;
use futures::{Stream, StreamExt};

use crate::events::ReplicaRow;
use crate::events::chain::hash_bytes;
use crate::export::{HEADER_NODE_KIND, HEADER_NODE_UID, HEADER_SEQ};
use crate::ids::Uid;

use super::{DUPLICATE_WINDOW, HaError, HaSettings};

/// Header: an event's annex, hex (see the module doc).
pub const HEADER_ANNEX: &str = "Peerscrip-Annex";
/// Header: the writer's check value (see [`ReplicatedLog::open`]).
pub const HEADER_CHECK: &str = "Peerscrip-Check";

/// One node's replicated log in its stream (see the module doc).
#[derive(Clone, Debug)]
pub struct ReplicatedLog {
    js: jetstream::Context,
    stream: String,
    subject: String,
    node_kind: String,
    uid: Uid,
    check: String,
}

impl ReplicatedLog {
    /// The stream of `settings` for the log of node `uid` of `node_kind`, created if
    /// missing, and checked to be a replicated log's (see the module doc). Every message
    /// this handle writes carries `check`, and every message it reads must: a value
    /// derived from what the nodes of a deployment must share beside their key pair (the
    /// broker's root key, whose certificates every holder must verify), never the secret
    /// itself.
    ///
    /// # Errors
    /// [`HaError::Nats`] if JetStream does not answer; [`HaError::Stream`] for a stream
    /// that cannot hold the log.
    pub async fn open(
        js: jetstream::Context,
        settings: &HaSettings,
        node_kind: &str,
        uid: Uid,
        check: String,
    ) -> Result<ReplicatedLog, HaError> {
        let subject = format!("{}.{node_kind}.{uid}", settings.subject_prefix);
        let config = stream::Config {
            name: settings.stream.clone(),
            subjects: vec![subject.clone()],
            num_replicas: settings.replicas,
            deny_delete: true,
            deny_purge: true,
            duplicate_window: DUPLICATE_WINDOW,
            ..stream::Config::default()
        };
        let mut handle = js
            .get_or_create_stream(config)
            .await
            .map_err(|e| HaError::nats("opening the replicated log's stream", e))?;
        let info = handle
            .info()
            .await
            .map_err(|e| HaError::nats("reading the replicated log's stream", e))?;
        let refuse = |reason: String| HaError::Stream {
            stream: settings.stream.clone(),
            reason,
        };
        if info.config.subjects != [subject.clone()] {
            return Err(refuse(format!(
                "captures {:?}; a replicated log's stream captures only {subject}",
                info.config.subjects
            )));
        }
        if !info.config.deny_delete || !info.config.deny_purge {
            return Err(refuse(
                "allows deleting messages; a replicated log's stream denies it".to_owned(),
            ));
        }
        let log = ReplicatedLog {
            js,
            stream: settings.stream.clone(),
            subject,
            node_kind: node_kind.to_owned(),
            uid,
            check,
        };
        log.check_state(&info.state)?;
        Ok(log)
    }

    /// The subject of the node's events.
    #[must_use]
    pub fn subject(&self) -> &str {
        &self.subject
    }

    /// The stream's name.
    #[must_use]
    pub fn stream(&self) -> &str {
        &self.stream
    }

    /// The JetStream context the log was opened on.
    #[must_use]
    pub fn context(&self) -> &jetstream::Context {
        &self.js
    }

    /// The seq of the last event in the stream (0: none), as its leader reports it.
    ///
    /// # Errors
    /// [`HaError::Nats`] if JetStream does not answer; [`HaError::Stream`] for a gap.
    pub async fn last(&self) -> Result<u64, HaError> {
        let mut handle = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| HaError::nats("reading the replicated log's stream", e))?;
        let info = handle
            .info()
            .await
            .map_err(|e| HaError::nats("reading the replicated log's stream", e))?;
        self.check_state(&info.state)?;
        Ok(info.state.last_sequence)
    }

    /// The stored bytes of event `seq` in the stream, `None` if the stream does not hold
    /// it.
    ///
    /// # Errors
    /// [`HaError::Nats`] if JetStream does not answer.
    pub async fn payload(&self, seq: u64) -> Result<Option<Vec<u8>>, HaError> {
        let handle = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| HaError::nats("reading the replicated log's stream", e))?;
        match handle.get_raw_message(seq).await {
            Ok(message) => Ok(Some(message.payload.to_vec())),
            Err(e) if matches!(e.kind(), stream::RawMessageErrorKind::NoMessageFound) => Ok(None),
            Err(e) => Err(HaError::nats("reading the replicated log's stream", e)),
        }
    }

    /// Seqs are the stream's sequence numbers: nothing deleted, nothing missing.
    fn check_state(&self, state: &stream::State) -> Result<(), HaError> {
        let whole = state.messages == state.last_sequence
            && (state.messages == 0 || state.first_sequence == 1);
        if whole {
            Ok(())
        } else {
            Err(HaError::Stream {
                stream: self.stream.clone(),
                reason: format!(
                    "holds {} messages from {} to {}: a replicated log has no gap",
                    state.messages, state.first_sequence, state.last_sequence
                ),
            })
        }
    }

    /// The message that appends `row` (see the module doc).
    #[must_use]
    pub fn message(&self, row: &ReplicaRow) -> (HeaderMap, Bytes) {
        let mut headers = HeaderMap::new();
        let hash = hex::encode(&hash_bytes(&row.bytes)[..8]);
        headers.insert(
            "Nats-Msg-Id",
            format!("{}:{}:{hash}", self.uid, row.seq).as_str(),
        );
        headers.insert(
            "Nats-Expected-Last-Sequence",
            row.seq.saturating_sub(1).to_string().as_str(),
        );
        headers.insert(HEADER_NODE_KIND, self.node_kind.as_str());
        headers.insert(HEADER_NODE_UID, self.uid.to_string().as_str());
        headers.insert(HEADER_SEQ, row.seq.to_string().as_str());
        if let Some(annex) = &row.annex {
            headers.insert(HEADER_ANNEX, hex::encode(annex).as_str());
        }
        headers.insert(HEADER_CHECK, self.check.as_str());
        (headers, Bytes::from(row.bytes.clone()))
    }

    /// The events from `seq` on, in order, each once, as they are in the stream and as
    /// they arrive (an ordered consumer: it never ends by itself). Each is checked to be
    /// the message of its seq; an annex is decoded.
    ///
    /// # Errors
    /// [`HaError::Nats`] if the consumer cannot be created; each item, a message that is
    /// not an event of this log.
    pub async fn rows_from(
        &self,
        seq: u64,
    ) -> Result<impl Stream<Item = Result<ReplicaRow, HaError>> + Send + use<>, HaError> {
        let handle = self
            .js
            .get_stream(&self.stream)
            .await
            .map_err(|e| HaError::nats("reading the replicated log's stream", e))?;
        let consumer = handle
            .create_consumer(consumer::pull::OrderedConfig {
                filter_subject: self.subject.clone(),
                deliver_policy: consumer::DeliverPolicy::ByStartSequence {
                    start_sequence: seq.max(1),
                },
                ..consumer::pull::OrderedConfig::default()
            })
            .await
            .map_err(|e| HaError::nats("following the replicated log", e))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|e| HaError::nats("following the replicated log", e))?;
        let (stream_name, check) = (self.stream.clone(), self.check.clone());
        // An ordered consumer that recreates itself before its first message starts over
        // from the stream's first (async-nats 0.51), so what comes before `seq`, or again,
        // is skipped here: the caller sees each seq from `seq` on once, in order.
        let mut next = seq.max(1);
        Ok(messages.filter_map(move |message| {
            let row = message
                .map_err(|e| HaError::nats("following the replicated log", e))
                .and_then(|message| row_of(&stream_name, &check, &message));
            let keep = match &row {
                Ok(row) if row.seq < next => None,
                Ok(row) => {
                    next = row.seq + 1;
                    Some(row.clone())
                }
                Err(_) => None,
            };
            futures::future::ready(match (keep, row) {
                (Some(row), _) => Some(Ok(row)),
                (None, Err(e)) => Some(Err(e)),
                (None, Ok(_)) => None,
            })
        }))
    }
}

/// The event a message of the stream holds (see the module doc).
fn row_of(stream: &str, check: &str, message: &jetstream::Message) -> Result<ReplicaRow, HaError> {
    let refuse = |reason: String| HaError::Stream {
        stream: stream.to_owned(),
        reason,
    };
    let info = message
        .info()
        .map_err(|e| refuse(format!("a message without its stream sequence: {e}")))?;
    let seq = info.stream_sequence;
    let header = |name: &str| {
        message
            .headers
            .as_ref()
            .and_then(|h| h.get(name))
            .map(|v| v.as_str().to_owned())
    };
    if header(HEADER_SEQ).as_deref() != Some(seq.to_string().as_str()) {
        return Err(refuse(format!(
            "message {seq} is not event {seq} of a replicated log ({HEADER_SEQ}: {:?})",
            header(HEADER_SEQ)
        )));
    }
    if header(HEADER_CHECK).as_deref() != Some(check) {
        return Err(refuse(format!(
            "message {seq} was written by a node with other secrets (check value {:?}, this \
             node's {check}): every node of a deployment must have the same key pair and \
             root key",
            header(HEADER_CHECK)
        )));
    }
    let annex = header(HEADER_ANNEX)
        .map(|hex| hex::decode(hex).map_err(|e| refuse(format!("message {seq}'s annex: {e}"))))
        .transpose()?;
    Ok(ReplicaRow {
        seq,
        bytes: message.payload.to_vec(),
        annex,
    })
}

/// How long [`ReplicatedLog::rows_from`]'s caller may wait for the next message before it
/// asks the stream's end again (a standby's poll while the log is quiet).
pub const QUIET: Duration = Duration::from_millis(500);
