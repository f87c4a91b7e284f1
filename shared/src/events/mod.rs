//! The event log (protocol.md sections 5 and 8): every node's append-only, hash-chained
//! record of what happened, in its own redb file, with the lookup tables derived from it.
//!
//! - [`envelope`]: the stored [`Event`] (seq, time, tx, prev hash, postings, memos,
//!   evidence, and the node's own kind `K`), the [`NewEvent`] a caller proposes, and the
//!   [`Evidence`] of each signed part that justified it.
//! - [`posting`]: the broker's double-entry [`Account`]s and [`Posting`]s; the postings of
//!   one event must balance (section 5); memos are a ledger apart.
//! - [`chain`]: the hash chain. Each event stores `prev_hash`, the SHA-256 of the previous
//!   event's postcard encoding; seq 1 stores 32 zero bytes. SHA-256 whatever the suite: the
//!   log is local storage, not a protocol primitive, and a chain needs the collision
//!   resistance SHA-1 lacks.
//! - [`log`]: [`EventLog`], the redb file. Tables `events` (seq → encoded event) and `meta`
//!   (schema version, suite, node kind, head); the caller's projection tables live in the
//!   same file and change in the same write transaction as the events (section 8). One
//!   writer holds the file's lock (section 1; see [`log`]).
//! - [`projection`]: the [`Projection`] a node implements to fold events into its tables.
//! - [`replay`]: rebuilding the projection tables from the log alone, in the live file or a
//!   fresh one, to compare them byte for byte.
//! - [`replica`]: the [`Replica`] every group commit reaches before it returns, when one
//!   is attached (the broker's high-availability mode, docs/adr/0017).
//! - `faults` (feature `fixtures`): a storage backend that fails on demand, for the tests
//!   of section 10's storage faults.
//!
//! Sequence numbers start at 1 and have no gaps, so a caller's watermark of 0 means "no event
//! yet" and `len() == head seq`.

pub mod chain;
pub mod envelope;
#[cfg(feature = "io")]
mod error;
#[cfg(all(feature = "io", any(test, feature = "fixtures")))]
pub mod faults;
mod identity;
#[cfg(feature = "io")]
pub mod log;
#[cfg(feature = "io")]
mod meta;
pub mod posting;
#[cfg(feature = "io")]
pub mod projection;
#[cfg(feature = "io")]
pub mod replay;
pub mod replica;

// The tests need the log; the crate's tests always build with `io` (its dev-dependency
// on itself enables `daemon`, which needs it).
#[cfg(test)]
mod tests;

pub use chain::{ChainBreak, ChainReport, FIRST_SEQ, GENESIS_PREV_HASH};
pub use envelope::{ChainHash, Event, Evidence, NewEvent};
#[cfg(feature = "io")]
pub use error::LogError;
pub use identity::LogIdentity;
#[cfg(feature = "io")]
pub use log::{EventIter, EventLog, Group, StoredIter};
#[cfg(feature = "io")]
pub use meta::SCHEMA_VERSION;
pub use posting::{
    Account, Direction, ParseAccountError, Posting, PostingError, check_balanced, check_memos,
};
#[cfg(feature = "io")]
pub use projection::{
    Projection, ProjectionDump, ProjectionError, ProjectionTable, Rows, dump_projection,
};
#[cfg(feature = "io")]
pub use replay::REPLAY_BATCH;
pub use replica::{Replica, ReplicaError, ReplicaRow, SharedReplica};
