//! The replicated log behind a node's own (docs/adr/0017): a [`Replica`] attached to an
//! [`EventLog`](super::EventLog) receives every group commit's events, exactly as stored,
//! and must hold them durably elsewhere before the commit returns, so that no reply of the
//! batch leaves before its events are on a quorum (the broker's high-availability mode,
//! whose replica is a JetStream stream: `shared::daemon::ha`).
//!
//! # Order of a commit
//!
//! The local write transaction commits first, then the replica is given the rows; only
//! when both succeeded does [`Group::commit`](super::Group::commit) return `Ok`. A replica
//! that fails leaves the file with a tail the replicated log may lack: a tail nobody was
//! answered for. The replica is then *fenced* ([`Replica::writable`] refuses from then
//! on), so the log refuses every later group and the node stays down, answering
//! `Unavailable`, until its daemon replaces the file's tail from the replicated log
//! (ADR 0017, "a local tail the stream lacks is never served").
//!
//! # Annexes
//!
//! An event whose effects include a table that is not a projection (the broker's secrets
//! table, written beside `AccountOpened`, protocol.md section 1) cannot be rebuilt from
//! the event alone. The node attaches an *annex* to such an event ([`Group::annex`]): bytes
//! that travel to the replica beside the event, outside the hash chain, already sealed by
//! the node (the broker seals an account ID to its own key).

use std::sync::Arc;

/// One stored event handed to a [`Replica`]: its seq, its bytes exactly as the log stores
/// them (what the hash chain covers), and its annex, if the node attached one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ReplicaRow {
    /// The event's seq.
    pub seq: u64,
    /// The event's stored bytes.
    pub bytes: Vec<u8>,
    /// What travels beside the event (see the module doc).
    pub annex: Option<Vec<u8>>,
}

/// Why a replica did not take a commit, or refuses to take more.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("the replicated log did not take the commit: {0}")]
pub struct ReplicaError(pub String);

/// Where a log's commits are replicated (see the module doc). Called on the thread that
/// commits (the node's batch, on tokio's blocking pool), so [`Replica::replicate`] may
/// block.
pub trait Replica: Send + Sync {
    /// Whether the log may begin a group: `Err` once the replica is fenced (it lost its
    /// lease, or the replicated log refused an append), for good.
    ///
    /// # Errors
    /// Why the replica is fenced.
    fn writable(&self) -> Result<(), ReplicaError>;

    /// Blocks until the replicated log holds every row, in order, durably; `Err` when it
    /// cannot (and the replica is fenced from then on).
    ///
    /// # Errors
    /// Why the rows were not taken.
    fn replicate(&self, rows: &[ReplicaRow]) -> Result<(), ReplicaError>;
}

/// A log's replica, shared with whoever owns it (the daemon watches it for fencing).
pub type SharedReplica = Arc<dyn Replica>;
