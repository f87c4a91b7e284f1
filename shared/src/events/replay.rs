//! Replay (protocol.md section 8): the projection tables rebuilt from the log alone must be
//! identical to the live ones.
//!
//! Both forms clear the projection's tables, then fold every event into them in seq order,
//! verifying the hash chain as they go: a broken chain stops the replay with
//! [`LogError::Chain`] rather than build tables from a tampered log.
//!
//! - [`EventLog::rebuild_projection`] rebuilds the live tables in the log's own file, in
//!   one write transaction: the tables are either the old ones or the rebuilt ones, never
//!   half of each, even after a crash.
//! - [`EventLog::replay_into`] rebuilds them in another redb file (a scratch file of an
//!   auditor or a test), committing every [`REPLAY_BATCH`] events so a long log does not
//!   build one huge transaction. Compare the two with [`crate::events::dump_projection`].

use redb::{Database, ReadableDatabase, WriteTransaction};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::chain::ChainReport;
use crate::events::error::LogError;
use crate::events::log::{EventLog, VerifiedRows, abort, check_reserved};
use crate::events::projection::{Projection, ProjectionError};

/// Events folded per commit by [`EventLog::replay_into`].
pub const REPLAY_BATCH: u64 = 4096;

impl<K: Serialize + DeserializeOwned> EventLog<K> {
    /// Clears the projection's tables in this file and rebuilds them from the log, in one
    /// write transaction (appends wait until it commits). On any error nothing changes.
    pub fn rebuild_projection<P: Projection<K> + ?Sized>(
        &self,
        projection: &P,
    ) -> Result<ChainReport, LogError> {
        self.rebuild_projection_with(projection, |_| Ok(()))
    }

    /// [`EventLog::rebuild_projection`], plus `side_writes` in the same write transaction
    /// once the tables are rebuilt (a node recording which layout its tables now have, so
    /// that the rebuild and the record of it commit together). Like an append's side
    /// writes, they must not touch the log's own tables.
    pub fn rebuild_projection_with<P, F>(
        &self,
        projection: &P,
        side_writes: F,
    ) -> Result<ChainReport, LogError>
    where
        P: Projection<K> + ?Sized,
        F: FnOnce(&WriteTransaction) -> Result<(), ProjectionError>,
    {
        check_reserved(projection)?;
        let db = self.db()?;
        let txn = db.begin_write()?;
        // Taken while this write transaction excludes appends: the latest committed log.
        let result = db
            .begin_read()
            .map_err(LogError::from)
            .and_then(VerifiedRows::new)
            .and_then(|mut rows| {
                clear_tables(&txn, projection)?;
                while let Some(event) = rows.next_event()? {
                    apply(&txn, projection, &event)?;
                }
                let report = rows.finish()?;
                side_writes(&txn).map_err(|source| LogError::Projection {
                    seq: report.events,
                    source,
                })?;
                Ok(report)
            });
        match result {
            Ok(report) => {
                txn.commit()?;
                Ok(report)
            }
            Err(e) => {
                abort(txn);
                Err(e)
            }
        }
    }

    /// Clears the projection's tables in `target` (another redb file) and rebuilds them from
    /// this log's current snapshot, committing every [`REPLAY_BATCH`] events. On an error the
    /// target holds a partial rebuild: it is scratch, to be discarded.
    pub fn replay_into<P: Projection<K> + ?Sized>(
        &self,
        projection: &P,
        target: &Database,
    ) -> Result<ChainReport, LogError> {
        check_reserved(projection)?;
        let mut rows = VerifiedRows::<K>::new(self.db()?.begin_read()?)?;
        let mut txn = target.begin_write()?;
        if let Err(e) = clear_tables(&txn, projection) {
            abort(txn);
            return Err(e);
        }
        let mut in_batch = 0u64;
        loop {
            let event = match rows.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(e) => {
                    abort(txn);
                    return Err(e);
                }
            };
            if let Err(e) = apply(&txn, projection, &event) {
                abort(txn);
                return Err(e);
            }
            in_batch += 1;
            if in_batch == REPLAY_BATCH {
                txn.commit()?;
                txn = target.begin_write()?;
                in_batch = 0;
            }
        }
        match rows.finish() {
            Ok(report) => {
                txn.commit()?;
                Ok(report)
            }
            Err(e) => {
                abort(txn);
                Err(e)
            }
        }
    }
}

fn clear_tables<K, P: Projection<K> + ?Sized>(
    txn: &WriteTransaction,
    projection: &P,
) -> Result<(), LogError> {
    for table in projection.tables() {
        table.clear(txn)?;
    }
    Ok(())
}

fn apply<K, P: Projection<K> + ?Sized>(
    txn: &WriteTransaction,
    projection: &P,
    event: &crate::events::envelope::Event<K>,
) -> Result<(), LogError> {
    projection
        .apply(txn, event)
        .map_err(|source| LogError::Projection {
            seq: event.seq,
            source,
        })
}
