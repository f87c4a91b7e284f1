//! The event log's one error type.

use std::path::PathBuf;

use crate::amount::AmountError;
use crate::events::chain::ChainBreak;
use crate::events::identity::LogIdentity;
use crate::events::posting::Account;
use crate::events::projection::ProjectionError;
use crate::ids::TxId;

/// Why the event log refused or failed an operation. A refused append writes nothing.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// Another handle, in this process or another, holds the file's lock: one serving node
    /// per log (protocol.md section 1). A standby retries until the holder is gone.
    #[error("event log {path} is locked by another handle or process")]
    Locked {
        /// The file that is held.
        path: PathBuf,
    },
    /// The log was closed by a storage fault and could not be opened again yet
    /// ([`crate::events::EventLog::reopen`]); a later reopen may succeed.
    #[error("event log {path} is closed after a storage fault; it is reopened at the next attempt")]
    Closed {
        /// The file.
        path: PathBuf,
    },
    /// An append of a group commit failed earlier, so the group was given up and nothing
    /// of it is written ([`crate::events::Group`]).
    #[error("an earlier append of this group commit failed; the group is aborted")]
    GroupFailed,
    /// The file opened is not an event log: it has no identity in its `meta` table.
    #[error("{path} is not an event log (no identity in its meta table)")]
    NotALog {
        /// The file opened.
        path: PathBuf,
    },
    /// redb failed (I/O, corruption, a table of the wrong type). Its message is part of
    /// this one, not a separate source, so a report of the chain says it once.
    #[error("event log storage: {0}")]
    Storage(redb::Error),
    /// The file belongs to another suite or another kind of node: a node never serves a log
    /// of another deployment (protocol.md section 2).
    #[error("event log is {found}, expected {expected}")]
    IdentityMismatch {
        /// What the caller asked for.
        expected: LogIdentity,
        /// What the file records.
        found: LogIdentity,
    },
    /// The file was written with another layout of the log's tables.
    #[error("event log schema version {found}, this build reads {expected}")]
    SchemaVersion {
        /// The version this build writes and reads.
        expected: u32,
        /// The version the file records.
        found: u32,
    },
    /// A value of the `meta` table is malformed.
    #[error("event log meta entry {key:?} is malformed")]
    Meta {
        /// The key whose value is malformed.
        key: &'static str,
    },
    /// An event of the batch could not be encoded (the caller's kind failed to serialize).
    #[error("event {index} of the batch does not encode: {source}")]
    Encode {
        /// Position in the batch.
        index: usize,
        /// The codec's error.
        source: postcard::Error,
    },
    /// A stored event does not decode (section 8; `verify_chain` names such an event too).
    #[error("stored event {seq} does not decode: {source}")]
    Decode {
        /// The seq of the row.
        seq: u64,
        /// The codec's error.
        source: postcard::Error,
    },
    /// An event's postings do not sum to zero (protocol.md section 5): nothing was written.
    #[error("event {index} of the batch (tx {tx}) is unbalanced: +{increases} −{decreases}")]
    Unbalanced {
        /// Position in the batch.
        index: usize,
        /// The event's tx.
        tx: TxId,
        /// Total of its increases.
        increases: crate::amount::Amount,
        /// Total of its decreases.
        decreases: crate::amount::Amount,
    },
    /// One side of an event's postings exceeds `u64::MAX` minor units (protocol.md
    /// section 1: every addition is checked): nothing was written.
    #[error("event {index} of the batch (tx {tx}): postings overflow: {source}")]
    AmountOverflow {
        /// Position in the batch.
        index: usize,
        /// The event's tx.
        tx: TxId,
        /// The arithmetic error.
        source: AmountError,
    },
    /// A memo posting names an account that is not a `float:vendor` (protocol.md section 5):
    /// nothing was written.
    #[error("event {index} of the batch (tx {tx}): memo on {account:?}, not a float:vendor")]
    MemoAccount {
        /// Position in the batch.
        index: usize,
        /// The event's tx.
        tx: TxId,
        /// The account the memo named.
        account: Account,
    },
    /// The hash chain does not verify (protocol.md section 8): `seq` is the event that was
    /// altered, removed or moved.
    #[error("hash chain broken at event {seq}: {reason}")]
    Chain {
        /// The event named.
        seq: u64,
        /// What is wrong with it.
        reason: ChainBreak,
    },
    /// The projection refused or failed to fold an event: the append or replay was undone.
    #[error("projection failed at event {seq}: {source}")]
    Projection {
        /// The event being applied.
        seq: u64,
        /// The projection's error.
        source: ProjectionError,
    },
    /// The caller's writes to non-projection tables, in the append's commit, failed: the
    /// append was undone.
    #[error("side-table writes failed: {0}")]
    SideTables(#[source] ProjectionError),
    /// A projection lists a table of the log itself (`events` or `meta`).
    #[error("table {name:?} belongs to the event log, not to a projection")]
    ReservedTable {
        /// The table's name.
        name: String,
    },
    /// The log holds `u64::MAX` events and cannot number another.
    #[error("event log sequence numbers exhausted")]
    SeqExhausted,
    /// The log's replica did not take a commit (which is then on this file only, answered
    /// to nobody), or is fenced and refuses more (docs/adr/0017).
    #[error(transparent)]
    Replica(crate::events::replica::ReplicaError),
}

macro_rules! redb_into_log_error {
    ($($t:ty),*) => {$(
        impl From<$t> for LogError {
            fn from(e: $t) -> Self {
                LogError::Storage(e.into())
            }
        }
    )*};
}
redb_into_log_error!(
    redb::Error,
    redb::DatabaseError,
    redb::TransactionError,
    redb::TableError,
    redb::StorageError,
    redb::CommitError
);
