//! `peerscrip-ops export`: publishes every event of a node's log to a JetStream stream, so
//! that an external auditor can follow the log without access to the node's file (issue 6,
//! "Event export").
//!
//! # What is published
//!
//! One message per event, in seq order, on the subject `<prefix>.<node kind>.<uid>` (one
//! subject per node, so one stream can hold a whole deployment and each node's events are
//! found by subject). The payload is the event's postcard bytes exactly as the log stores
//! them: the bytes the hash chain covers (protocol.md section 8), so a consumer checks the
//! chain across messages (`prev_hash` of message n is the SHA-256 of message n−1's payload)
//! and decodes with the node's own event type. The headers repeat, for a consumer that does
//! not decode, the node kind ([`HEADER_NODE_KIND`]), its UID ([`HEADER_NODE_UID`]), the
//! event's seq ([`HEADER_SEQ`]), tx ([`HEADER_TX`]) and kind name ([`HEADER_KIND`]).
//!
//! # Exactly once, in order, across restarts
//!
//! The exporter keeps no state of its own: the stream is the record of what was exported.
//! - On start it reads the stream's last message on the node's subject and continues at its
//!   seq + 1. Before it publishes anything it checks that the stream and the log agree: the
//!   last exported payload must be the log's event of that seq byte for byte, and the
//!   subject must hold exactly that many messages (seqs 1..=n, none missing, none twice);
//!   otherwise it refuses ([`ExportError::Diverged`], [`ExportError::Count`],
//!   [`ExportError::StreamAhead`]) rather than extend a stream that is not this log's.
//! - Every event it publishes must link to the one before (its `prev_hash` is the hash of
//!   the previous payload, the last exported one after a restart): an export never splices
//!   two different histories ([`ExportError::Unlinked`]).
//! - Each message carries `Nats-Msg-Id: <uid>:<seq>`, so a re-publish inside the stream's
//!   duplicate window (an exporter killed after the server stored a message but before it
//!   read the ack, restarted at once; or two exporters of one log) is dropped by the server.
//! - Publishes are pipelined ([`PUBLISH_WINDOW`] unacknowledged at most) on one connection,
//!   which the server processes in order: a killed exporter leaves a prefix of its
//!   messages stored, never a gap. Any failed acknowledgement stops the export with an
//!   error, and a duplicate is accepted only if the message the server kept under that id
//!   is this event on this subject ([`ExportError::NotStored`]). The publishes already sent
//!   behind a refused one may be stored, so the next start re-checks the stream as above
//!   and refuses a subject with a gap.
//!
//! # Reading the log
//!
//! Read-only, through the log API (`EventLog::stored_from`, one redb read transaction per
//! chunk of [`CHUNK`] events). The file is opened per chunk and closed in between, so the
//! exporter holds the file's lock only while it reads: a node whose log it is can take the
//! file between two polls of `--follow`, and while the node holds it (a running node keeps
//! its log's exclusive lock, protocol.md section 1) `--follow` waits and tries again at the
//! next poll (at start as well). Without `--follow`, a locked log is an error.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::variant::variant_name;
use async_nats::HeaderMap;
use async_nats::jetstream::{self, context::PublishAckFuture, stream};
use bytes::Bytes;
use futures::TryStreamExt;
use serde::Serialize;
use serde::de::DeserializeOwned;
use shared::Uid;
use shared::daemon::NodeIdentity;
use shared::events::{ChainHash, EventLog, GENESIS_PREV_HASH, LogError, chain::hash_bytes};
use shared::node::Recorded;

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

/// Events read per read transaction (the file is closed between chunks, see the module doc).
pub const CHUNK: usize = 4096;

/// The log file names inside a node's data directory (the wallet's is the one
/// `peerscrip` keeps in its wallet directory).
const LOG_FILES: [&str; 3] = [
    ::broker::config::LOG_FILE,
    ::merchant::config::LOG_FILE,
    "wallet.redb",
];

/// The node kinds whose events the exporter names.
const NODE_KINDS: [&str; 3] = [
    ::broker::node::NODE_KIND,
    ::merchant::node::NODE_KIND,
    ::customer_cli::NODE_KIND,
];

/// What to export, and where.
#[derive(Debug, Clone)]
pub struct Options {
    /// The log file, or the node's data directory.
    pub target: PathBuf,
    /// The NATS server (never printed: it may carry credentials).
    pub nats_url: String,
    /// A user and password, if the server asks for them.
    pub credentials: Option<(String, zeroize::Zeroizing<String>)>,
    /// The JetStream stream; created (on `<prefix>.>`) if missing.
    pub stream: String,
    /// The subject prefix.
    pub subject_prefix: String,
    /// The node's UID; read from the data directory's `node.toml` when not given.
    pub uid: Option<Uid>,
    /// Keep polling the log for new events.
    pub follow: bool,
    /// How often `follow` polls.
    pub poll: Duration,
}

/// What an export did (the last pass of a `--follow` export).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Summary {
    /// The subject of the node's events.
    pub subject: String,
    /// The seq the stream held when the export started (0: none).
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
    /// The subject prefix breaks the NATS subject rules (the bus's own rules for a prefix:
    /// no empty token, no wildcard, plain ASCII).
    #[error("--subject: {0}")]
    Prefix(#[from] shared::bus::SubjectError),
    /// No log in the data directory, or more than one.
    #[error("{dir} holds {found} node logs ({files}); give the log file itself")]
    NoLog {
        /// The directory.
        dir: PathBuf,
        /// How many it holds.
        found: usize,
        /// Which names were looked for.
        files: String,
    },
    /// The log could not be opened or read.
    #[error("reading {path}: {source}")]
    Log {
        /// The file.
        path: PathBuf,
        /// Why.
        source: LogError,
    },
    /// A log of a kind this exporter cannot name events of.
    #[error("{path} is a {kind} log; the exporter knows broker, merchant and wallet logs")]
    Unsupported {
        /// The file.
        path: PathBuf,
        /// Its kind.
        kind: String,
    },
    /// The node's UID is neither given nor recorded beside the log.
    #[error("the node's UID is not recorded beside {path} (no node.toml): give it with --uid")]
    NoUid {
        /// The log file.
        path: PathBuf,
    },
    /// `node.toml` could not be read, or records another kind of node than the log.
    #[error("the data directory's identity: {0}")]
    Identity(String),
    /// A NATS or JetStream operation failed.
    #[error("{what}: {source}")]
    Nats {
        /// What the exporter was doing.
        what: &'static str,
        /// Why.
        source: async_nats::Error,
    },
    /// A message on the node's subject is not one the exporter wrote.
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

/// One event as read from the log.
#[derive(Debug, Clone)]
struct Row {
    seq: u64,
    tx: String,
    kind: String,
    prev_hash: ChainHash,
    bytes: Vec<u8>,
}

/// The log file of `target`: the file itself, or the one node log inside a data directory.
pub fn log_file(target: &Path) -> Result<PathBuf, ExportError> {
    if !target.is_dir() {
        return Ok(target.to_owned());
    }
    let found: Vec<PathBuf> = LOG_FILES
        .iter()
        .map(|name| target.join(name))
        .filter(|p| p.is_file())
        .collect();
    match <[PathBuf; 1]>::try_from(found) {
        Ok([file]) => Ok(file),
        Err(found) => Err(ExportError::NoLog {
            dir: target.to_owned(),
            found: found.len(),
            files: LOG_FILES.join(", "),
        }),
    }
}

/// The subject of a node's events under `prefix`.
#[must_use]
pub fn subject(prefix: &str, node_kind: &str, uid: &Uid) -> String {
    format!("{prefix}.{node_kind}.{uid}")
}

/// Exports the log of `options.target` (see the module doc); with `follow`, runs until an
/// error.
pub async fn export(options: &Options) -> Result<Summary, ExportError> {
    shared::bus::Subjects::new(options.subject_prefix.as_str())?;
    let path = log_file(&options.target)?;
    let log_error = |source: LogError| ExportError::Log {
        path: path.clone(),
        source,
    };
    let node_kind = loop {
        match EventLog::<()>::open_existing(&path) {
            Ok(log) => break log.identity().node_kind.clone(),
            Err(LogError::Locked { .. }) if options.follow => {
                tokio::time::sleep(options.poll).await;
            }
            Err(source) => return Err(log_error(source)),
        }
    };
    if !NODE_KINDS.contains(&node_kind.as_str()) {
        return Err(ExportError::Unsupported {
            path,
            kind: node_kind,
        });
    }
    let uid = node_uid(options.uid, &path, &node_kind)?;
    let subject = subject(&options.subject_prefix, &node_kind, &uid);

    let mut connect = async_nats::ConnectOptions::new().name("peerscrip-ops export");
    if let Some((user, password)) = &options.credentials {
        connect = connect.user_and_password(user.clone(), password.to_string());
    }
    let client = connect
        .connect(options.nats_url.as_str())
        .await
        .map_err(|e| ExportError::Nats {
            what: "connecting to NATS",
            source: e.into(),
        })?;
    let js = jetstream::new(client);
    let stream = js
        .get_or_create_stream(stream::Config {
            name: options.stream.clone(),
            subjects: vec![format!("{}.>", options.subject_prefix)],
            duplicate_window: DUPLICATE_WINDOW,
            ..Default::default()
        })
        .await
        .map_err(|e| ExportError::Nats {
            what: "creating or opening the stream",
            source: e.into(),
        })?;

    let (resumed_after, mut prev) = loop {
        match resume_point(&stream, &subject, &path, &node_kind).await {
            Err(ExportError::Log {
                source: LogError::Locked { .. },
                ..
            }) if options.follow => tokio::time::sleep(options.poll).await,
            other => break other?,
        }
    };
    let mut summary = Summary {
        subject: subject.clone(),
        resumed_after,
        published: 0,
        duplicates: 0,
        last: resumed_after,
    };
    let publisher = Publisher {
        js: &js,
        handle: &stream,
        stream: &options.stream,
        subject: &subject,
        node_kind: &node_kind,
        uid: uid.to_string(),
    };
    loop {
        let rows = match read_chunk(&path, &node_kind, summary.last + 1) {
            Ok(rows) => rows,
            Err(ExportError::Log {
                source: LogError::Locked { .. },
                ..
            }) if options.follow => Vec::new(),
            Err(e) => return Err(e),
        };
        if rows.is_empty() {
            if !options.follow {
                return Ok(summary);
            }
            tokio::time::sleep(options.poll).await;
            continue;
        }
        let first = summary.last + 1;
        publisher.publish(rows, &mut prev, &mut summary).await?;
        println!(
            "exported seq {first}..={} to stream {} subject {subject}",
            summary.last, options.stream
        );
    }
}

/// `peerscrip-ops export` (the arguments of `cli::ExportArgs`): runs [`export`] on a
/// runtime of its own and prints what it did.
pub fn run(args: crate::cli::ExportArgs) -> anyhow::Result<()> {
    let credentials = match (args.nats_user, &args.nats_password_file) {
        (Some(user), Some(file)) => Some((user, crate::keygen::read_passphrase(file)?)),
        _ => None,
    };
    let options = Options {
        target: args.target,
        nats_url: args.nats_url,
        credentials,
        stream: args.stream,
        subject_prefix: args.subject_prefix,
        uid: args.uid,
        follow: args.follow,
        poll: Duration::from_millis(args.poll_ms),
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(export(&options))?;
    let before = match summary.resumed_after {
        0 => "none of them".to_owned(),
        seq => format!("up to seq {seq}"),
    };
    println!(
        "{}: {} events published, {} already in the stream (duplicates dropped), last seq {} \
         (the stream held {before} before)",
        summary.subject, summary.published, summary.duplicates, summary.last,
    );
    Ok(())
}

/// The node's UID: given, or from `node.toml` in the log's directory (which must record the
/// log's kind).
fn node_uid(given: Option<Uid>, path: &Path, node_kind: &str) -> Result<Uid, ExportError> {
    if let Some(uid) = given {
        return Ok(uid);
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    match NodeIdentity::read(dir).map_err(|e| ExportError::Identity(e.to_string()))? {
        Some(identity) if identity.kind == node_kind => Ok(identity.uid),
        Some(identity) => Err(ExportError::Identity(format!(
            "{} records a {}, the log is a {node_kind}'s",
            dir.display(),
            identity.kind
        ))),
        None => Err(ExportError::NoUid {
            path: path.to_owned(),
        }),
    }
}

/// Where the stream stands for this node: the last seq exported and the hash of its payload
/// (0 and the genesis hash when none), after checking it against the log (module doc).
async fn resume_point(
    stream: &stream::Stream,
    subject: &str,
    path: &Path,
    node_kind: &str,
) -> Result<(u64, ChainHash), ExportError> {
    let last = match stream.get_last_raw_message_by_subject(subject).await {
        Ok(message) => message,
        Err(e) if e.kind() == stream::LastRawMessageErrorKind::NoMessageFound => {
            return Ok((0, GENESIS_PREV_HASH));
        }
        Err(e) => {
            return Err(ExportError::Nats {
                what: "reading the stream's last message",
                source: e.into(),
            });
        }
    };
    let foreign = |reason: String| ExportError::Foreign {
        subject: subject.to_owned(),
        reason,
    };
    let seq: u64 = last
        .headers
        .get(HEADER_SEQ)
        .ok_or_else(|| foreign(format!("no {HEADER_SEQ} header")))?
        .as_str()
        .parse()
        .map_err(|e| foreign(format!("{HEADER_SEQ}: {e}")))?;
    let stored = read_chunk_limited(path, node_kind, seq, 1)?;
    match stored.first() {
        Some(row) if row.seq == seq && row.bytes == last.payload.as_ref() => {}
        Some(row) if row.seq == seq => {
            return Err(ExportError::Diverged {
                subject: subject.to_owned(),
                seq,
            });
        }
        _ => {
            let head = EventLog::<()>::open_existing(path)
                .and_then(|log| log.len())
                .map_err(|source| ExportError::Log {
                    path: path.to_owned(),
                    source,
                })?;
            return Err(ExportError::StreamAhead {
                subject: subject.to_owned(),
                stream: seq,
                log: head,
            });
        }
    }
    let mut counts = stream
        .info_with_subjects(subject)
        .await
        .map_err(|e| ExportError::Nats {
            what: "reading the stream's subjects",
            source: e.into(),
        })?;
    let mut count = 0u64;
    while let Some((name, n)) = counts.try_next().await.map_err(|e| ExportError::Nats {
        what: "reading the stream's subjects",
        source: e.into(),
    })? {
        if name == subject {
            count = n as u64;
        }
    }
    if count != seq {
        return Err(ExportError::Count {
            subject: subject.to_owned(),
            count,
            last: seq,
        });
    }
    Ok((seq, hash_bytes(&last.payload)))
}

/// Publishes awaiting their acknowledgement: (seq, payload, ack).
type Pending = VecDeque<(u64, Bytes, PublishAckFuture)>;

/// Publishes rows to the node's subject.
struct Publisher<'a> {
    js: &'a jetstream::Context,
    /// The stream, to look up the message a duplicate acknowledgement points to.
    handle: &'a stream::Stream,
    stream: &'a str,
    subject: &'a str,
    node_kind: &'a str,
    uid: String,
}

impl Publisher<'_> {
    /// Publishes `rows` in order, each linked to `prev`, pipelined (module doc); updates
    /// `prev` and `summary` as acknowledgements arrive.
    async fn publish(
        &self,
        rows: Vec<Row>,
        prev: &mut ChainHash,
        summary: &mut Summary,
    ) -> Result<(), ExportError> {
        let mut pending: Pending = VecDeque::new();
        for row in rows {
            if row.prev_hash != *prev {
                self.drain(&mut pending, summary).await?;
                return Err(ExportError::Unlinked { seq: row.seq });
            }
            *prev = hash_bytes(&row.bytes);
            let mut headers = HeaderMap::new();
            headers.insert(
                async_nats::header::NATS_MESSAGE_ID,
                format!("{}:{}", self.uid, row.seq).as_str(),
            );
            headers.insert(HEADER_NODE_KIND, self.node_kind);
            headers.insert(HEADER_NODE_UID, self.uid.as_str());
            headers.insert(HEADER_SEQ, row.seq.to_string().as_str());
            headers.insert(HEADER_TX, row.tx.as_str());
            headers.insert(HEADER_KIND, row.kind.as_str());
            let payload = Bytes::from(row.bytes);
            let ack = self
                .js
                .publish_with_headers(self.subject.to_owned(), headers, payload.clone())
                .await
                .map_err(|e| ExportError::Nats {
                    what: "publishing an event",
                    source: e.into(),
                })?;
            pending.push_back((row.seq, payload, ack));
            if pending.len() >= PUBLISH_WINDOW {
                self.settle_one(&mut pending, summary).await?;
            }
        }
        self.drain(&mut pending, summary).await
    }

    async fn drain(&self, pending: &mut Pending, summary: &mut Summary) -> Result<(), ExportError> {
        while !pending.is_empty() {
            self.settle_one(pending, summary).await?;
        }
        Ok(())
    }

    /// Waits for the oldest acknowledgement. A duplicate is accepted only if the message the
    /// server kept under that `Nats-Msg-Id` is this event on this subject: an id taken by
    /// anything else would otherwise drop the event unseen.
    async fn settle_one(
        &self,
        pending: &mut Pending,
        summary: &mut Summary,
    ) -> Result<(), ExportError> {
        let Some((seq, payload, ack)) = pending.pop_front() else {
            return Ok(());
        };
        let ack = ack.await.map_err(|e| ExportError::Nats {
            what: "waiting for an acknowledgement",
            source: e.into(),
        })?;
        if ack.stream != self.stream {
            return Err(ExportError::NotStored {
                subject: self.subject.to_owned(),
                reason: format!("stored by stream {}, not {}", ack.stream, self.stream),
            });
        }
        if ack.duplicate {
            let kept = self
                .handle
                .get_raw_message(ack.sequence)
                .await
                .map_err(|e| ExportError::Nats {
                    what: "reading the message a duplicate points to",
                    source: e.into(),
                })?;
            if kept.subject.as_str() != self.subject || kept.payload != payload {
                return Err(ExportError::NotStored {
                    subject: self.subject.to_owned(),
                    reason: format!(
                        "event {seq} was dropped as a duplicate of stream message {} on {}, \
                         which is not this event",
                        ack.sequence, kept.subject
                    ),
                });
            }
            summary.duplicates += 1;
        } else {
            summary.published += 1;
        }
        summary.last = seq;
        Ok(())
    }
}

/// Up to [`CHUNK`] events of the log from `from` on.
fn read_chunk(path: &Path, node_kind: &str, from: u64) -> Result<Vec<Row>, ExportError> {
    read_chunk_limited(path, node_kind, from, CHUNK)
}

/// Up to `max` events from `from` on, decoded with the node kind's own event type (for the
/// kind name and tx) beside the stored bytes.
fn read_chunk_limited(
    path: &Path,
    node_kind: &str,
    from: u64,
    max: usize,
) -> Result<Vec<Row>, ExportError> {
    let result = match node_kind {
        ::broker::node::NODE_KIND => {
            rows::<Recorded<::broker::core::Kind>>(path, from, max, |k| variant_name(&k.kind))
        }
        ::merchant::node::NODE_KIND => {
            rows::<Recorded<::merchant::core::events::Kind>>(path, from, max, |k| {
                k.kind.name().to_owned()
            })
        }
        ::customer_cli::NODE_KIND => {
            rows::<::customer_cli::core::events::WalletEvent>(path, from, max, variant_name)
        }
        other => {
            return Err(ExportError::Unsupported {
                path: path.to_owned(),
                kind: other.to_owned(),
            });
        }
    };
    result.map_err(|source| ExportError::Log {
        path: path.to_owned(),
        source,
    })
}

fn rows<K: Serialize + DeserializeOwned>(
    path: &Path,
    from: u64,
    max: usize,
    name: impl Fn(&K) -> String,
) -> Result<Vec<Row>, LogError> {
    let log = EventLog::<K>::open_existing(path)?;
    let rows = log
        .stored_from(from)?
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
        .collect::<Result<Vec<_>, _>>()?;
    log.close()?;
    Ok(rows)
}
