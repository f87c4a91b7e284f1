//! [`StreamReplica`]: the [`Replica`] of a node in HA mode (docs/adr/0017). Each group
//! commit's events are published to the node's [`ReplicatedLog`], pipelined on one
//! connection, and the commit returns once every one is acknowledged: stored on a quorum
//! of the stream's replicas, on disk if the servers run with `sync_interval: always`.
//!
//! # Retries and fencing
//!
//! When an attempt does not end with every acknowledgement (a timeout, no quorum, a lost
//! connection, or a refusal of one publish that makes those behind it fail their expected
//! sequence), the replica asks the stream where it ends and reads back what it holds at
//! the batch's seqs. An event the stream holds byte for byte is taken (the server stores
//! each once: `Nats-Msg-Id`); the rest is published again, with a growing pause, for as
//! long as the lease is valid ([`Validity`]). So a node that lost a server of three goes
//! on, and one that lost two stops answering until a server returns or its lease lapses.
//! Two findings end it for good and fence the node ([`Fence`]): the lease lapsed before the
//! batch was taken, or the stream holds *another* event at one of the batch's seqs
//! (another writer extended the log). The node then steps down; the batch, committed to
//! its own file only, was answered to nobody. A "wrong last sequence" alone proves
//! neither: in a pipeline it follows any failed publish before it.
//!
//! # Blocking
//!
//! [`Replica::replicate`] is called on the thread that commits (tokio's blocking pool in
//! the shell) and blocks it; the publishing runs on a task of the runtime the replica was
//! made on. It must not be called on a thread of that runtime.

use std::sync::Arc;
use std::time::Duration;

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

/// Publishes `rows` until they are taken, the lease lapses or the stream holds another
/// event at one of their seqs (see the module doc).
async fn publish_batch(
    log: &ReplicatedLog,
    rows: &[ReplicaRow],
    fence: &Fence,
    validity: &Validity,
    timeout: Duration,
) -> Result<(), ReplicaError> {
    let mut backoff = Backoff::new(RETRY_FIRST, RETRY_MAX);
    let mut pending = rows;
    loop {
        if let Some(reason) = fence.reason() {
            return Err(ReplicaError(reason));
        }
        if !validity.holds(Instant::now()) {
            return Err(ReplicaError(
                "the lease lapsed before the commit was replicated".to_owned(),
            ));
        }
        let Err(reason) = attempt(log, pending, timeout).await else {
            return Ok(());
        };
        // What of the batch is in the stream now, and is it ours?
        match taken(log, pending).await {
            Ok(Taken::All) => return Ok(()),
            Ok(Taken::Upto(count)) => pending = &pending[count..],
            Ok(Taken::Other(seq)) => {
                return Err(ReplicaError(format!(
                    "another writer extended the replicated log: it holds another event {seq} \
                     ({reason})"
                )));
            }
            Err(e) => tracing::debug!(error = %e, "could not read the stream back"),
        }
        let first = pending.first().map_or(0, |r| r.seq);
        tracing::warn!(%reason, first, events = pending.len(), "the replicated log did not take a commit; trying again");
        tokio::time::sleep(backoff.pause()).await;
    }
}

/// Publishes every row, pipelined, then waits for each acknowledgement in order; the
/// first failure, if any.
async fn attempt(
    log: &ReplicatedLog,
    rows: &[ReplicaRow],
    timeout: Duration,
) -> Result<(), String> {
    let js = log.context();
    let mut acks = Vec::with_capacity(rows.len());
    for row in rows {
        let (headers, payload) = log.message(row);
        let ack = js
            .publish_with_headers(log.subject().to_owned(), headers, payload)
            .await
            .map_err(|e| e.to_string())?;
        acks.push((row.seq, ack));
    }
    for (seq, ack) in acks {
        let ack = tokio::time::timeout(timeout, ack)
            .await
            .map_err(|_| format!("no acknowledgement of event {seq} in {timeout:?}"))?
            .map_err(|e| e.to_string())?;
        if ack.sequence != seq {
            // Not this log's stream alone: what it holds at `seq` decides (`taken`).
            return Err(format!("event {seq} stored as message {}", ack.sequence));
        }
    }
    Ok(())
}

/// How much of a batch the stream holds.
enum Taken {
    /// Every row, byte for byte.
    All,
    /// The first `n` rows, byte for byte, and nothing at the seqs after.
    Upto(usize),
    /// Another event at this seq of the batch.
    Other(u64),
}

/// Reads back what the stream holds at the seqs of `rows` (see [`Taken`]).
async fn taken(log: &ReplicatedLog, rows: &[ReplicaRow]) -> Result<Taken, super::HaError> {
    let last = log.last().await?;
    let mut count = 0;
    for row in rows.iter().take_while(|row| row.seq <= last) {
        if log.payload(row.seq).await?.as_deref() != Some(row.bytes.as_slice()) {
            return Ok(Taken::Other(row.seq));
        }
        count += 1;
    }
    Ok(if count == rows.len() {
        Taken::All
    } else {
        Taken::Upto(count)
    })
}
