//! Projections (protocol.md section 8): the lookup tables a node derives from its log (live
//! scrip, accounts, peers, open transactions, stored replies).
//!
//! A [`Projection`] updates its tables inside the log's write transaction, so the tables
//! change in the same commit as the events that justify them; it lists its tables so the log
//! can clear them for a replay and dump them for a byte-for-byte comparison of the live
//! tables with the ones rebuilt from the log alone.

use std::collections::BTreeMap;

use redb::{
    Key, MultimapTableDefinition, ReadTransaction, ReadableDatabase, TableDefinition, TableError,
    Value, WriteTransaction,
};

use crate::events::envelope::Event;

/// The rows of one table as raw `(key, value)` bytes, in key order.
pub type Rows = Vec<(Vec<u8>, Vec<u8>)>;

/// Every table of a projection, by name: what [`dump_projection`] returns.
pub type ProjectionDump = BTreeMap<String, Rows>;

/// Why a projection could not take an event. Any of them aborts the whole append or replay:
/// nothing is written (protocol.md section 8: tables change only with their events).
#[derive(Debug, thiserror::Error)]
pub enum ProjectionError {
    /// redb refused a table operation.
    #[error("projection storage: {0}")]
    Storage(#[from] redb::Error),
    /// The event contradicts the projection's state (an invariant of protocol.md would
    /// break, e.g. an account below zero): the node must stop rather than write it.
    #[error("projection invariant: {0}")]
    Invariant(String),
    /// The caller's own failure.
    #[error("projection: {0}")]
    Other(#[source] Box<dyn std::error::Error + Send + Sync>),
}

macro_rules! redb_into_projection_error {
    ($($t:ty),*) => {$(
        impl From<$t> for ProjectionError {
            fn from(e: $t) -> Self {
                ProjectionError::Storage(e.into())
            }
        }
    )*};
}
redb_into_projection_error!(redb::TableError, redb::StorageError);

/// One table of a projection, whatever its key and value types: what replay clears and what
/// a dump reads. Implemented for every [`TableDefinition`] and [`MultimapTableDefinition`].
pub trait ProjectionTable {
    /// The table's name in the redb file.
    fn name(&self) -> &str;

    /// Removes the table and all its rows (replay rebuilds it from nothing).
    fn clear(&self, txn: &WriteTransaction) -> Result<(), redb::Error>;

    /// All rows as raw bytes, in key order; an absent table has none.
    fn rows(&self, txn: &ReadTransaction) -> Result<Rows, redb::Error>;
}

impl<K: Key + 'static, V: Value + 'static> ProjectionTable for TableDefinition<'_, K, V> {
    fn name(&self) -> &str {
        redb::TableHandle::name(self)
    }

    fn clear(&self, txn: &WriteTransaction) -> Result<(), redb::Error> {
        txn.delete_table(*self)?;
        Ok(())
    }

    fn rows(&self, txn: &ReadTransaction) -> Result<Rows, redb::Error> {
        let table = match txn.open_table(*self) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut rows = Vec::new();
        for row in table.range::<K::SelfType<'_>>(..)? {
            let (k, v) = row?;
            rows.push((
                K::as_bytes(&k.value()).as_ref().to_vec(),
                V::as_bytes(&v.value()).as_ref().to_vec(),
            ));
        }
        Ok(rows)
    }
}

/// A multimap table dumps one row per (key, value) pair, in key then value order.
impl<K: Key + 'static, V: Key + 'static> ProjectionTable for MultimapTableDefinition<'_, K, V> {
    fn name(&self) -> &str {
        redb::MultimapTableHandle::name(self)
    }

    fn clear(&self, txn: &WriteTransaction) -> Result<(), redb::Error> {
        txn.delete_multimap_table(*self)?;
        Ok(())
    }

    fn rows(&self, txn: &ReadTransaction) -> Result<Rows, redb::Error> {
        let table = match txn.open_multimap_table(*self) {
            Ok(table) => table,
            Err(TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
            Err(e) => return Err(e.into()),
        };
        let mut rows = Vec::new();
        for row in table.range::<K::SelfType<'_>>(..)? {
            let (k, values) = row?;
            let key = K::as_bytes(&k.value()).as_ref().to_vec();
            for v in values {
                rows.push((key.clone(), V::as_bytes(&v?.value()).as_ref().to_vec()));
            }
        }
        Ok(rows)
    }
}

/// How a node folds its events of kind `K` into its lookup tables (protocol.md section 8).
///
/// `apply` must be a function of the event and the tables alone (no clock, no randomness,
/// no table outside [`Projection::tables`]) so that a replay gives identical tables. It must
/// not touch the log's own tables (`events`, `meta`).
pub trait Projection<K> {
    /// Every table `apply` writes. Replay clears exactly these.
    fn tables(&self) -> Vec<&dyn ProjectionTable>;

    /// Folds one event into the tables, inside the log's write transaction.
    fn apply(&self, txn: &WriteTransaction, event: &Event<K>) -> Result<(), ProjectionError>;
}

/// The rows of every table of `projection` in `db` (the live file or a replay target), for
/// comparing them byte for byte. Loads the tables into memory: for tests and audits.
pub fn dump_projection<K, P: Projection<K> + ?Sized>(
    db: &impl ReadableDatabase,
    projection: &P,
) -> Result<ProjectionDump, redb::Error> {
    let txn = db.begin_read()?;
    projection
        .tables()
        .into_iter()
        .map(|table| Ok((table.name().to_owned(), table.rows(&txn)?)))
        .collect()
}
