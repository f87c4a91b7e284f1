//! A daemon's live event export (the `export_stream` option; protocol.md section 8):
//! while the node serves, a task of its own publishes every event the node appends to a
//! JetStream stream with `shared::export`, the code of `peerscrip-ops export`, so an
//! external auditor follows the log live and the stream's guarantees are the command's:
//! every event once, in order, resumed from the stream after any restart (a SIGKILL
//! included) with the stream checked against the log first.
//!
//! # Reading the node's own log
//!
//! A running node holds its log's exclusive lock (protocol.md section 1), so the task reads
//! through the node actor: a `shared::runtime::Call` returning `stored_from(next)` for at
//! most [`CHUNK`] events, run between two batches on the blocking pool like any operator
//! call. The file is never opened a second time, and what the task reads is committed
//! (a batch's events are read only after its group commit).
//!
//! # Serving first
//!
//! The task never holds the node: it asks for a chunk every [`POLL`] (sooner while it is
//! behind) and publishes without it, on a NATS connection of its own, so a slow or absent
//! JetStream delays the export and never a reply. A NATS failure is logged and retried
//! with a growing pause (up to [`RETRY_MAX`]), each retry resuming from the stream as a
//! restart would. A stream that disagrees with the log (another history, a gap, a foreign
//! message) stops the export with an error in the log; the node keeps serving.
//!
//! On a graceful stop the daemon hands the task the node it got back from its actor
//! ([`ExportTask::finish`]): the events of the last batches are published before the file
//! is closed (bounded by [`FINISH_WITHIN`]; what is left goes out after the next start).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use actix::Addr;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{oneshot, watch};

use crate::bus::{BusError, NatsBus, NatsOptions, Subjects};
use crate::events::{EventLog, LogError};
use crate::export::{self, ExportError, Exporter, Row, Source};
use crate::ids::Uid;
use crate::runtime::{Backoff, Call, NodeActor, ServeNode};

/// How often the task asks the node for new events when it has caught up.
pub const POLL: Duration = Duration::from_millis(200);

/// The most events one call reads: bounds how long a read holds the node between two
/// batches.
pub const CHUNK: usize = 1024;

/// The longest pause between two attempts while NATS or JetStream fails.
pub const RETRY_MAX: Duration = Duration::from_secs(5);

/// How long a graceful stop waits for the export to catch up before the file closes.
pub const FINISH_WITHIN: Duration = Duration::from_secs(5);

/// The `export_stream` option, resolved: where the node's events go.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExportSettings {
    /// The JetStream stream (created on `<prefix>.>` if missing).
    pub stream: String,
    /// The subject prefix of the events (`<prefix>.<node kind>.<uid>`).
    pub subjects: Subjects,
}

/// Whether `name` is a JetStream stream name: not empty, printable ASCII, none of
/// whitespace, `.`, `*`, `>`, `/`, `\` (the server's rules).
#[must_use]
pub fn is_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_graphic() && !matches!(c, '.' | '*' | '>' | '/' | '\\'))
}

/// How the task finds the events in the node: its log, and its naming of an event's kind
/// (the `Peerscrip-Kind` header).
pub struct NodeLog<N, K> {
    /// The node's log.
    pub log: fn(&N) -> &EventLog<K>,
    /// The name of an event's kind.
    pub name: fn(&K) -> String,
}

impl<N, K> Clone for NodeLog<N, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<N, K> Copy for NodeLog<N, K> {}

/// Why a pass of the export failed.
#[derive(Debug, thiserror::Error)]
pub enum TaskError {
    /// NATS could not be reached.
    #[error("connecting to NATS for the export: {0}")]
    Connect(#[source] BusError),
    /// The node could not read its log.
    #[error("reading the node's log for the export: {0}")]
    Log(#[source] LogError),
    /// The stream refused or failed (`shared::export`).
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The node actor has stopped.
    #[error("the node actor has stopped")]
    Stopped,
}

impl TaskError {
    /// Whether a retry can help (module doc): anything but a stream that disagrees with
    /// the log.
    fn is_transient(&self) -> bool {
        match self {
            TaskError::Export(e) => e.is_transient(),
            _ => true,
        }
    }
}

/// The node's log, read through its actor.
struct ActorLog<N: ServeNode, K> {
    addr: Addr<NodeActor<N>>,
    view: NodeLog<N, K>,
}

impl<N, K> ActorLog<N, K>
where
    N: ServeNode,
    K: 'static,
{
    /// Runs `f` on the node between two batches and returns its result.
    async fn call<T: Send + 'static>(
        &self,
        f: impl FnOnce(&N) -> T + Send + 'static,
    ) -> Result<T, TaskError> {
        let (tx, rx) = oneshot::channel();
        // A stopped actor drops the call and `tx` with it: the receiver says so.
        self.addr.do_send(Call(Box::new(move |node: &mut N, _| {
            let _ = tx.send(f(node));
        })));
        rx.await.map_err(|_| TaskError::Stopped)
    }
}

impl<N, K> Source for ActorLog<N, K>
where
    N: ServeNode,
    K: Serialize + DeserializeOwned + 'static,
{
    type Error = TaskError;

    async fn read(&mut self, from: u64, max: usize) -> Result<Vec<Row>, TaskError> {
        let view = self.view;
        self.call(move |node| export::rows((view.log)(node), from, max, view.name))
            .await?
            .map_err(TaskError::Log)
    }

    async fn head(&mut self) -> Result<u64, TaskError> {
        let view = self.view;
        self.call(move |node| (view.log)(node).len())
            .await?
            .map_err(TaskError::Log)
    }
}

/// The node's log read directly, once the actor has handed the node back.
struct DirectLog<'a, K> {
    log: &'a EventLog<K>,
    name: fn(&K) -> String,
}

impl<K> Source for DirectLog<'_, K>
where
    K: Serialize + DeserializeOwned + Sync,
{
    type Error = TaskError;

    async fn read(&mut self, from: u64, max: usize) -> Result<Vec<Row>, TaskError> {
        export::rows(self.log, from, max, self.name).map_err(TaskError::Log)
    }

    async fn head(&mut self) -> Result<u64, TaskError> {
        self.log.len().map_err(TaskError::Log)
    }
}

/// Who the node is and where it exports: what [`spawn`] needs besides the actor.
#[derive(Clone, Debug)]
pub struct Target {
    /// The stream and prefix.
    pub settings: ExportSettings,
    /// The NATS server(s) (never logged: the URL may carry a credential).
    pub nats_url: String,
    /// The connection's options (the node's credential and inbox prefix).
    pub options: NatsOptions,
    /// The node kind recorded in its log.
    pub node_kind: &'static str,
    /// The node's UID.
    pub uid: Uid,
}

/// The running export task.
#[derive(Debug)]
pub struct ExportTask {
    stop: watch::Sender<bool>,
    handle: tokio::task::JoinHandle<Option<Exporter>>,
    exported: Arc<AtomicU64>,
}

/// Starts the export of the node in `addr` to `target` (module doc).
pub fn spawn<N, K>(addr: Addr<NodeActor<N>>, view: NodeLog<N, K>, target: Target) -> ExportTask
where
    N: ServeNode,
    K: Serialize + DeserializeOwned + Send + 'static,
{
    let (stop, stopped) = watch::channel(false);
    let source = ActorLog { addr, view };
    let exported = Arc::new(AtomicU64::new(0));
    let handle = tokio::spawn(run(source, target, stopped, exported.clone()));
    ExportTask {
        stop,
        handle,
        exported,
    }
}

impl ExportTask {
    /// How far behind a log whose last event is `head` the export is: the events it has
    /// not published yet (the admin listener's `peerscrip_export_lag_events`). Grows while
    /// JetStream is away, and for good once the export stopped on a disagreement.
    #[must_use]
    pub fn lag(&self) -> super::admin::ExportLag {
        let exported = self.exported.clone();
        Arc::new(move |head| Some(head.saturating_sub(exported.load(Ordering::Relaxed))))
    }

    /// The graceful stop (module doc): the task ends after its current pass, then the
    /// events it has not exported yet are published from `log` (the node the actor handed
    /// back), within [`FINISH_WITHIN`]. Never fails the daemon's stop: what is not exported
    /// is logged and goes out after the next start.
    pub async fn finish<K>(self, log: &EventLog<K>, name: fn(&K) -> String)
    where
        K: Serialize + DeserializeOwned + Sync,
    {
        let _ = self.stop.send(true);
        let mut handle = self.handle;
        let finished = tokio::time::timeout(FINISH_WITHIN, async {
            let mut exporter = (&mut handle).await.ok().flatten()?;
            let mut source = DirectLog { log, name };
            let done = exporter.catch_up(&mut source, CHUNK).await;
            Some((exporter, done))
        })
        .await;
        match finished {
            Ok(Some((exporter, Ok(_)))) => {
                let summary = exporter.summary();
                tracing::info!(
                    stream = exporter.stream(),
                    subject = %summary.subject,
                    last = summary.last,
                    "event export caught up with the log"
                );
            }
            Ok(Some((_, Err(e)))) => {
                tracing::warn!(error = %e, "the event export did not catch up before the stop; the next start resumes it");
            }
            Ok(None) => {
                tracing::warn!(
                    "the event export was not running at the stop; the next start resumes it"
                );
            }
            Err(_) => {
                handle.abort();
                tracing::warn!(within = ?FINISH_WITHIN, "the event export did not catch up before the stop; the next start resumes it");
            }
        }
    }
}

/// The task: a pass every [`POLL`], a growing pause after a failure, until stopped or the
/// stream disagrees with the log. Returns the exporter if it is resumed and sound.
async fn run<N, K>(
    mut source: ActorLog<N, K>,
    target: Target,
    mut stopped: watch::Receiver<bool>,
    exported: Arc<AtomicU64>,
) -> Option<Exporter>
where
    N: ServeNode,
    K: Serialize + DeserializeOwned + Send + 'static,
{
    let mut client = None;
    let mut exporter = None;
    let mut retry = Backoff::new(POLL, RETRY_MAX);
    loop {
        if *stopped.borrow() {
            return exporter;
        }
        let wait = match pass(&mut client, &mut exporter, &mut source, &target).await {
            Ok(_) => {
                retry.reset();
                if let Some(exporter) = &exporter {
                    exported.store(exporter.summary().last, Ordering::Relaxed);
                }
                POLL
            }
            Err(TaskError::Stopped) => return exporter,
            Err(e) if !e.is_transient() => {
                tracing::error!(
                    error = %e,
                    stream = %target.settings.stream,
                    "the event export stopped: the stream disagrees with the log (serving goes on)"
                );
                return None;
            }
            Err(e) => {
                let wait = retry.pause();
                tracing::warn!(error = %e, retry_in = ?wait, "the event export is delayed; retrying");
                exporter = None;
                wait
            }
        };
        tokio::select! {
            () = tokio::time::sleep(wait) => {}
            _ = stopped.changed() => {}
        }
    }
}

/// One pass: connect and resume from the stream if needed, then publish every event the
/// node has committed since.
async fn pass<N, K>(
    client: &mut Option<async_nats::Client>,
    exporter: &mut Option<Exporter>,
    source: &mut ActorLog<N, K>,
    target: &Target,
) -> Result<u64, TaskError>
where
    N: ServeNode,
    K: Serialize + DeserializeOwned + Send + 'static,
{
    if exporter.is_none() {
        let connection = match client {
            Some(connection) => connection.clone(),
            None => {
                let connection = NatsBus::client(&target.nats_url, &target.options)
                    .await
                    .map_err(TaskError::Connect)?;
                client.insert(connection).clone()
            }
        };
        let mut opened = Exporter::open(
            connection,
            &target.settings.stream,
            &target.settings.subjects,
            target.node_kind,
            &target.uid,
        )
        .await?;
        let after = opened.resume(source).await?;
        tracing::info!(
            stream = %target.settings.stream,
            subject = %opened.subject(),
            resumed_after = after,
            "exporting the log's events"
        );
        *exporter = Some(opened);
    }
    let Some(exporter) = exporter.as_mut() else {
        return Ok(0);
    };
    exporter.catch_up(source, CHUNK).await
}
