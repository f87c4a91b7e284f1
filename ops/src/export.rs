//! `peerscrip-ops export`: publishes every event of a node's log to a JetStream stream, so
//! that an external auditor can follow the log without access to the node's file (protocol.md
//! section 8). What is published, and how an export resumes exactly once and in order
//! after a restart, is `shared::export`'s (the daemons' `export_stream` option uses the same
//! code); this module finds the log, names the node and reads its file.
//!
//! # Reading the log
//!
//! Read-only, through the log API (`EventLog::stored_from`, one redb read transaction per
//! chunk of [`CHUNK`] events). The file is opened per chunk and closed in between, so the
//! exporter holds the file's lock only while it reads: a node whose log it is can take the
//! file between two polls of `--follow`, and while the node holds it (a running node keeps
//! its log's exclusive lock, protocol.md section 1) `--follow` waits and tries again at the
//! next poll (at start as well). Without `--follow`, a locked log is an error. A running
//! daemon exports its own log instead (`export_stream`).

use std::path::{Path, PathBuf};
use std::time::Duration;

use customer_cli::cli::exit::Exit;
use shared::Uid;
use shared::daemon::NodeIdentity;
use shared::events::{EventLog, LogError};
pub use shared::export::{
    DEFAULT_SUBJECT_PREFIX, DUPLICATE_WINDOW, HEADER_KIND, HEADER_NODE_KIND, HEADER_NODE_UID,
    HEADER_SEQ, HEADER_TX, PUBLISH_WINDOW, Summary, subject,
};
use shared::export::{Exporter, Row, Source};

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
    /// TLS to NATS, required when set.
    pub tls: Option<shared::bus::NatsTls>,
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
    /// Each chunk published as one JSON object on its own line instead of text.
    pub json: bool,
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
    /// Connecting to NATS failed (the server, the credential or TLS).
    #[error("connecting to NATS: {0}")]
    Connect(#[source] shared::bus::BusError),
    /// The stream refused, or disagrees with the log (`shared::export`).
    #[error(transparent)]
    Stream(#[from] shared::export::ExportError),
}

/// The row of the exit-code table (`customer_cli::cli::exit::Exit`) of an export error:
/// a bad argument or configuration (the prefix, which log, the UID, the NATS credential
/// or TLS), the server or JetStream unreachable, a stream that disagrees with the log
/// (refused: a check did not hold), or failed (the log cannot be read).
#[must_use]
pub fn exit_of(e: &ExportError) -> Exit {
    use shared::bus::BusError;
    match e {
        ExportError::Prefix(_)
        | ExportError::NoLog { .. }
        | ExportError::NoUid { .. }
        | ExportError::Unsupported { .. }
        | ExportError::Connect(BusError::Tls(_) | BusError::Credentials(_)) => Exit::Usage,
        // The server or JetStream did not answer, or refused an operation: worth another
        // run once it serves (`shared::export::ExportError::is_transient`).
        ExportError::Connect(_) | ExportError::Stream(shared::export::ExportError::Nats { .. }) => {
            Exit::Unreachable
        }
        // The stream and the log disagree: no retry changes it.
        ExportError::Stream(_) => Exit::Refused,
        ExportError::Log { .. } | ExportError::Identity(_) => Exit::Failed,
    }
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

/// A log file, opened per read (module doc).
struct FileLog<'a> {
    path: &'a Path,
    node_kind: &'a str,
}

impl Source for FileLog<'_> {
    type Error = ExportError;

    async fn read(&mut self, from: u64, max: usize) -> Result<Vec<Row>, ExportError> {
        read_chunk(self.path, self.node_kind, from, max)
    }

    async fn head(&mut self) -> Result<u64, ExportError> {
        EventLog::<()>::open_existing_checked_before(self.path)
            .and_then(|log| log.len())
            .map_err(|source| ExportError::Log {
                path: self.path.to_owned(),
                source,
            })
    }
}

/// Exports the log of `options.target` (see the module doc); with `follow`, runs until an
/// error.
pub async fn export(options: &Options) -> Result<Summary, ExportError> {
    let prefix = shared::bus::Subjects::new(options.subject_prefix.as_str())?;
    let path = log_file(&options.target)?;
    let node_kind = loop {
        match EventLog::<()>::open_existing(&path) {
            Ok(log) => break log.identity().node_kind.clone(),
            Err(LogError::Locked { .. }) if options.follow => {
                tokio::time::sleep(options.poll).await;
            }
            Err(source) => return Err(ExportError::Log { path, source }),
        }
    };
    if !NODE_KINDS.contains(&node_kind.as_str()) {
        return Err(ExportError::Unsupported {
            path,
            kind: node_kind,
        });
    }
    let uid = node_uid(options.uid, &path, &node_kind)?;

    let connect = shared::bus::NatsOptions {
        name: Some("peerscrip-ops export".to_owned()),
        credentials: options.credentials.as_ref().map(|(user, password)| {
            shared::bus::NatsCredentials::UserPassword {
                user: user.clone(),
                password: shared::SecretBytes::from_slice(password.as_bytes()),
            }
        }),
        tls: options.tls.clone(),
        ..shared::bus::NatsOptions::default()
    };
    let client = shared::bus::NatsBus::client(&options.nats_url, &connect)
        .await
        .map_err(ExportError::Connect)?;
    let mut exporter = Exporter::open(client, &options.stream, &prefix, &node_kind, &uid).await?;
    let mut log = FileLog {
        path: &path,
        node_kind: &node_kind,
    };
    loop {
        match exporter.resume(&mut log).await {
            Ok(_) => break,
            Err(ExportError::Log {
                source: LogError::Locked { .. },
                ..
            }) if options.follow => tokio::time::sleep(options.poll).await,
            Err(e) => return Err(e),
        }
    }
    loop {
        let rows = match log.read(exporter.next(), CHUNK).await {
            Ok(rows) => rows,
            Err(ExportError::Log {
                source: LogError::Locked { .. },
                ..
            }) if options.follow => Vec::new(),
            Err(e) => return Err(e),
        };
        if rows.is_empty() {
            if !options.follow {
                return Ok(exporter.summary().clone());
            }
            tokio::time::sleep(options.poll).await;
            continue;
        }
        let first = exporter.next();
        exporter.publish(rows).await?;
        if options.json {
            println!(
                "{}",
                serde_json::json!({
                    "exported": {"first": first, "last": exporter.summary().last},
                    "stream": exporter.stream(),
                    "subject": exporter.subject(),
                })
            );
        } else {
            println!(
                "exported seq {first}..={} to stream {} subject {}",
                exporter.summary().last,
                exporter.stream(),
                exporter.subject(),
            );
        }
    }
}

/// `peerscrip-ops export` (the arguments of `cli::ExportArgs`): runs [`export`] on a
/// runtime of its own and prints what it did: text, or (`json`) one JSON object per chunk
/// published and the summary last (JSON Lines: `--follow` runs until killed).
pub fn run(args: crate::cli::ExportArgs, json: bool) -> anyhow::Result<()> {
    let credentials = match (args.nats_user, &args.nats_password_file) {
        (Some(user), Some(file)) => Some((user, crate::keygen::read_passphrase(file)?)),
        _ => None,
    };
    let options = Options {
        target: args.target,
        nats_url: args.nats_url,
        credentials,
        tls: args.tls.tls(),
        stream: args.stream,
        subject_prefix: args.subject_prefix,
        uid: args.uid,
        follow: args.follow,
        poll: Duration::from_millis(args.poll_ms),
        json,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let summary = runtime.block_on(export(&options))?;
    if json {
        println!(
            "{}",
            serde_json::json!({
                "ok": true,
                "stream": options.stream,
                "subject": summary.subject,
                "published": summary.published,
                "duplicates": summary.duplicates,
                "last": summary.last,
                "resumed_after": summary.resumed_after,
            })
        );
        return Ok(());
    }
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

/// Up to `max` events from `from` on, decoded with the node kind's own event type (for the
/// kind name and tx) beside the stored bytes; the file is closed again at once.
fn read_chunk(
    path: &Path,
    node_kind: &str,
    from: u64,
    max: usize,
) -> Result<Vec<Row>, ExportError> {
    let result = match node_kind {
        ::broker::node::NODE_KIND => rows(path, from, max, ::broker::node::event_name),
        ::merchant::node::NODE_KIND => rows(path, from, max, ::merchant::node::event_name),
        ::customer_cli::NODE_KIND => rows(
            path,
            from,
            max,
            shared::variant::variant_name::<::customer_cli::core::events::WalletEvent>,
        ),
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

fn rows<K: serde::Serialize + serde::de::DeserializeOwned>(
    path: &Path,
    from: u64,
    max: usize,
    name: impl Fn(&K) -> String,
) -> Result<Vec<Row>, LogError> {
    // Checked once, when `export` first opened it.
    let log = EventLog::<K>::open_existing_checked_before(path)?;
    let rows = shared::export::rows(&log, from, max, name)?;
    log.close()?;
    Ok(rows)
}
