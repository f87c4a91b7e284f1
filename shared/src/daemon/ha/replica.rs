//! [`StreamReplica`]: the [`Replica`] of a node in HA mode (docs/adr/0017). Each group
//! commit's events are published to the node's [`ReplicatedLog`], pipelined on one
//! connection, and the commit returns once every one is acknowledged: stored on a quorum
//! of the stream's replicas, on disk if the servers run with `sync_interval: always`.
//!
//! # Retries and fencing
//!
//! A publish that is not acknowledged (a timeout, no quorum, a lost connection) is tried
//! again, the whole batch, with a growing pause, for as long as the lease is valid
//! ([`Validity`]): the server stores each event once (`Nats-Msg-Id`) and in order (the
//! expected last sequence). So a node that lost a server of three goes on, and one that
//! lost two stops answering until a server returns or its lease lapses. Two answers end
//! it for good, and fence the node ([`Fence`]): the lease lapsed before the batch was
//! taken, or the server refused an append with "wrong last sequence" (another writer
//! extended the log). The node then steps down; the batch, committed to its own file
//! only, was answered to nobody.
//!
//! # Blocking
//!
//! [`Replica::replicate`] is called on the thread that commits (tokio's blocking pool in
//! the shell) and blocks it; the publishing runs on a task of the runtime the replica was
//! made on. It must not be called on a thread of that runtime.

use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::context::PublishErrorKind;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::events::{Replica, ReplicaError, ReplicaRow};
use crate::runtime::Backoff;

use super::{Fence, ReplicatedLog, Validity};

/// The first pause before a batch is published again; it doubles up to [`RETRY_MAX`].
pub const RETRY_FIRST: Duration = Duration::from_millis(50);
/// The longest pause between two attempts.
pub const RETRY_MAX: Duration = Duration::from_secs(1);

struct Job {
    rows: Vec<ReplicaRow>,
    done: std::sync::mpsc::SyncSender<Result<(), ReplicaError>>,
}

/// See the module doc.
pub struct StreamReplica {
    jobs: mpsc::UnboundedSender<Job>,
    fence: Arc<Fence>,
    validity: Arc<Validity>,
}

impl std::fmt::Debug for StreamReplica {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StreamReplica")
            .field("fenced", &self.fence.reason())
            .finish_non_exhaustive()
    }
}

impl StreamReplica {
    /// A replica publishing to `log` while `validity` holds, fencing `fence` on a refusal;
    /// its task runs on the current tokio runtime until the replica is dropped. Each
    /// acknowledgement is waited for at most `timeout` before the batch is tried again.
    #[must_use]
    pub fn spawn(
        log: ReplicatedLog,
        fence: Arc<Fence>,
        validity: Arc<Validity>,
        timeout: Duration,
    ) -> StreamReplica {
        let (jobs, rx) = mpsc::unbounded_channel();
        tokio::spawn(publish_jobs(
            log,
            rx,
            fence.clone(),
            validity.clone(),
            timeout,
        ));
        StreamReplica {
            jobs,
            fence,
            validity,
        }
    }
}

impl Replica for StreamReplica {
    fn writable(&self) -> Result<(), ReplicaError> {
        if let Some(reason) = self.fence.reason() {
            return Err(ReplicaError(reason));
        }
        if !self.validity.holds(Instant::now()) {
            return Err(ReplicaError("the lease is not held".to_owned()));
        }
        Ok(())
    }

    fn replicate(&self, rows: &[ReplicaRow]) -> Result<(), ReplicaError> {
        self.writable()?;
        let (done, result) = std::sync::mpsc::sync_channel(1);
        let job = Job {
            rows: rows.to_vec(),
            done,
        };
        let gone = || {
            self.fence.fence("the replica's task is gone");
            ReplicaError("the replica's task is gone".to_owned())
        };
        self.jobs.send(job).map_err(|_| gone())?;
        result.recv().map_err(|_| gone())?
    }
}

/// The replica's task: each batch in turn, until every handle is dropped.
async fn publish_jobs(
    log: ReplicatedLog,
    mut jobs: mpsc::UnboundedReceiver<Job>,
    fence: Arc<Fence>,
    validity: Arc<Validity>,
    timeout: Duration,
) {
    while let Some(job) = jobs.recv().await {
        let result = publish_batch(&log, &job.rows, &fence, &validity, timeout).await;
        if let Err(e) = &result {
            fence.fence(e.0.clone());
        }
        // The committing thread waits for this; it is gone only if it panicked.
        let _ = job.done.send(result);
    }
}

/// What one attempt at a batch came to, when it did not take.
enum Attempt {
    /// Worth trying again while the lease holds.
    Retry(String),
    /// Never worth trying again: the node is fenced.
    Refused(String),
}

/// Publishes `rows` until they are taken, the lease lapses or the server refuses them
/// (see the module doc).
async fn publish_batch(
    log: &ReplicatedLog,
    rows: &[ReplicaRow],
    fence: &Fence,
    validity: &Validity,
    timeout: Duration,
) -> Result<(), ReplicaError> {
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    loop {
        if let Some(reason) = fence.reason() {
            return Err(ReplicaError(reason));
        }
        if !validity.holds(Instant::now()) {
            return Err(ReplicaError(
                "the lease lapsed before the commit was replicated".to_owned(),
            ));
        }
        match attempt(log, rows, timeout).await {
            Ok(()) => return Ok(()),
            Err(Attempt::Refused(reason)) => return Err(ReplicaError(reason)),
            Err(Attempt::Retry(reason)) => {
                let first = rows.first().map_or(0, |r| r.seq);
                tracing::warn!(%reason, first, events = rows.len(), "the replicated log did not take a commit; trying again");
                tokio::time::sleep(backoff.pause()).await;
            }
        }
    }
}

/// Publishes every row, pipelined, then waits for each acknowledgement in order.
async fn attempt(
    log: &ReplicatedLog,
    rows: &[ReplicaRow],
    timeout: Duration,
) -> Result<(), Attempt> {
    let js = log.context();
    let mut acks = Vec::with_capacity(rows.len());
    for row in rows {
        let (headers, payload) = log.message(row);
        let ack = js
            .publish_with_headers(log.subject().to_owned(), headers, payload)
            .await
            .map_err(|e| classify(e.kind(), &e.to_string()))?;
        acks.push((row.seq, ack));
    }
    for (seq, ack) in acks {
        let ack = tokio::time::timeout(timeout, ack)
            .await
            .map_err(|_| {
                Attempt::Retry(format!("no acknowledgement of event {seq} in {timeout:?}"))
            })?
            .map_err(|e| classify(e.kind(), &e.to_string()))?;
        if ack.sequence != seq {
            return Err(Attempt::Refused(format!(
                "the stream stored event {seq} as message {}: it is not this log's alone",
                ack.sequence
            )));
        }
    }
    Ok(())
}

fn classify(kind: PublishErrorKind, message: &str) -> Attempt {
    match kind {
        PublishErrorKind::WrongLastSequence => Attempt::Refused(format!(
            "another writer extended the replicated log ({message})"
        )),
        _ => Attempt::Retry(message.to_owned()),
    }
}
