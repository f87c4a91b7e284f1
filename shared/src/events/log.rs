//! [`EventLog`]: a node's append-only, hash-chained event log in its redb file
//! (protocol.md section 8), with the node's projection tables in the same file.
//!
//! # One writer per file
//!
//! redb opens a file as a writer under an exclusive lock (its default
//! `ConcurrencyMode::ExclusiveWriter`). On Linux that lock is an open-file-description
//! byte-range lock (`fcntl(F_OFD_SETLK)`) over the whole file; on Windows `LockFileEx`; on
//! macOS a range lock likewise. It belongs to the open file, not to the process, so a second
//! open of the same file fails with `DatabaseAlreadyOpen`, whether it comes from this process
//! or another, and [`EventLog::open`] turns that into [`LogError::Locked`]. The kernel drops
//! the lock when the holder closes the file or dies, so a standby broker that retries `open`
//! takes over only once the serving one is gone: the exclusive lock of protocol.md section 1.
//! The lock is advisory: a program that does not use redb's locking can still write the file.
//! Network filesystems that do not implement these locks give no exclusion.
//!
//! # Storage faults and damaged files (protocol.md section 10)
//!
//! Every open checks the whole file (redb's integrity check on open: the checksum of every
//! page of the committed trees), so a file damaged outside redb is refused at open with
//! [`LogError::Storage`] naming the corruption, never trusted and never a panic later.
//!
//! After a failed write (a full disk, an I/O error), redb refuses every later operation on
//! that handle ("Previous I/O error occurred"). A failed commit writes nothing, so the file
//! still holds everything committed before it; [`EventLog::reopen`] drops the poisoned
//! handle and opens the file again (redb recovers its allocator state on the way), so a
//! node serves again as soon as the disk can take its next commit, without a restart.

use std::fmt;
use std::marker::PhantomData;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use redb::{
    Builder, Database, DatabaseError, ReadTransaction, ReadableDatabase, ReadableTableMetadata,
    StorageBackend, WriteTransaction,
};
use serde::Serialize;
use serde::de::DeserializeOwned;

use crate::events::chain::{self, ChainReport, ChainVerifier, GENESIS_PREV_HASH};
use crate::events::envelope::{ChainHash, Event, NewEvent};
use crate::events::error::LogError;
use crate::events::identity::LogIdentity;
use crate::events::meta::{self, EVENTS, META, RESERVED_TABLES, SCHEMA_VERSION};
use crate::events::posting::{self, PostingError};
use crate::events::projection::{Projection, ProjectionDump, ProjectionError, dump_projection};
use crate::events::replica::{ReplicaRow, SharedReplica};
use crate::ids::TxId;

/// A node's event log over events of kind `K` (see the module doc).
///
/// Every method takes `&self`; redb serialises write transactions, so concurrent appends
/// are safe, but one ledger actor owning the log and batching appends is the intended use.
pub struct EventLog<K> {
    /// `None` between a storage fault and a successful [`EventLog::reopen`].
    db: Option<Database>,
    /// Opens the file again (the way it was first opened).
    opener: Opener,
    path: PathBuf,
    identity: LogIdentity,
    /// Where every group commit is replicated before it returns (docs/adr/0017).
    replica: Option<SharedReplica>,
    _kind: PhantomData<fn(K) -> K>,
}

/// How a log's database is opened, kept to open it again after a storage fault.
type Opener = Arc<dyn Fn() -> Result<Database, DatabaseError> + Send + Sync>;

/// The builder of every open: the integrity check on open (see the module doc).
fn builder() -> Builder {
    let mut builder = Database::builder();
    builder.set_check_integrity_on_open(true);
    builder
}

impl<K> fmt::Debug for EventLog<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventLog")
            .field("path", &self.path)
            .field("identity", &self.identity)
            .finish_non_exhaustive()
    }
}

impl<K: Serialize + DeserializeOwned> EventLog<K> {
    /// Opens the log at `path`, creating the file when it is missing or empty. An existing
    /// file must record `identity` and this build's schema version. A new file is created
    /// mode 0600 whatever the umask ([`crate::private_dir`], protocol.md appendix E): a
    /// node's log holds its ledger, and the broker's the PAN → account table.
    pub fn open(path: impl AsRef<Path>, identity: LogIdentity) -> Result<Self, LogError> {
        let path = path.as_ref().to_owned();
        let file = path.clone();
        let opener: Opener = Arc::new(move || {
            crate::private_dir::create_if_missing(&file)?;
            builder().create(&file)
        });
        Self::open_with(path, opener, identity)
    }

    /// [`EventLog::open`] on the storage `backend` makes, called again at each
    /// [`EventLog::reopen`]; `path` names it in errors. For storage that is not a plain
    /// file, and for the tests that inject storage faults.
    pub fn open_on_backend<B: StorageBackend>(
        path: impl AsRef<Path>,
        backend: impl Fn() -> std::io::Result<B> + Send + Sync + 'static,
        identity: LogIdentity,
    ) -> Result<Self, LogError> {
        let opener: Opener = Arc::new(move || builder().create_with_backend(backend()?));
        Self::open_with(path.as_ref().to_owned(), opener, identity)
    }

    fn open_with(path: PathBuf, opener: Opener, identity: LogIdentity) -> Result<Self, LogError> {
        let db = opener().map_err(|e| lock_error(e, &path))?;
        let txn = db.begin_write()?;
        {
            let mut meta_table = txn.open_table(META)?;
            let events = txn.open_table(EVENTS)?;
            match meta::read_identity(&meta_table)? {
                Some((found_version, found)) => {
                    check_identity(found_version, found, &identity)?;
                }
                None if events.is_empty()? => meta::write_identity(&mut meta_table, &identity)?,
                None => return Err(LogError::NotALog { path }),
            }
        }
        txn.commit()?;
        Ok(EventLog {
            db: Some(db),
            opener,
            path,
            identity,
            replica: None,
            _kind: PhantomData,
        })
    }

    /// Drops the handle and opens the file again, as it was first opened: after a storage
    /// fault, redb refuses every operation of the old handle (see the module doc). On an
    /// error the log stays closed ([`LogError::Closed`]) until a later `reopen` succeeds.
    pub fn reopen(&mut self) -> Result<(), LogError> {
        if let Some(db) = self.db.take() {
            // The handle is poisoned; what closing it reports is the fault already known.
            let _ = db.close();
        }
        let db = (self.opener)().map_err(|e| lock_error(e, &self.path))?;
        self.db = Some(db);
        Ok(())
    }

    /// The open database, or [`LogError::Closed`] after a failed [`EventLog::reopen`].
    pub(crate) fn db(&self) -> Result<&Database, LogError> {
        self.db.as_ref().ok_or_else(|| LogError::Closed {
            path: self.path.clone(),
        })
    }

    /// Opens an existing log whatever its identity (for an auditor, who learns it from
    /// [`EventLog::identity`]). Refuses a file that is not a log of this schema version.
    pub fn open_existing(path: impl AsRef<Path>) -> Result<Self, LogError> {
        Self::open_existing_with(path.as_ref(), true)
    }

    /// [`EventLog::open_existing`] without the integrity check of every page, for a
    /// reader that opens again, chunk by chunk, a file it opened checked earlier in the
    /// same run (`peerscrip-ops export` between two chunks): the check reads the whole
    /// file, so repeating it per chunk would make reading a log quadratic in its length.
    pub fn open_existing_checked_before(path: impl AsRef<Path>) -> Result<Self, LogError> {
        Self::open_existing_with(path.as_ref(), false)
    }

    fn open_existing_with(path: &Path, check: bool) -> Result<Self, LogError> {
        let path = path.to_owned();
        let file = path.clone();
        let opener: Opener = Arc::new(move || {
            let mut builder = builder();
            builder.set_check_integrity_on_open(check);
            builder.open(&file)
        });
        let db = opener().map_err(|e| lock_error(e, &path))?;
        let found = {
            let txn = db.begin_read()?;
            let table = match txn.open_table(META) {
                Ok(table) => table,
                Err(redb::TableError::TableDoesNotExist(_)) => {
                    return Err(LogError::NotALog { path });
                }
                Err(e) => return Err(e.into()),
            };
            meta::read_identity(&table)?
        };
        let Some((version, identity)) = found else {
            return Err(LogError::NotALog { path });
        };
        check_schema(version)?;
        Ok(EventLog {
            db: Some(db),
            opener,
            path,
            identity,
            replica: None,
            _kind: PhantomData,
        })
    }

    /// Closes the file and releases its lock, reporting any error (dropping does the same
    /// silently).
    pub fn close(self) -> Result<(), LogError> {
        if let Some(db) = self.db {
            db.close()?;
        }
        Ok(())
    }

    /// The suite and node kind the file records.
    #[must_use]
    pub fn identity(&self) -> &LogIdentity {
        &self.identity
    }

    /// The file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Appends `events` in one durable commit (the group-commit path): numbers and chains
    /// them, checks each balances (protocol.md section 5), and folds each into `projection`
    /// in the same write transaction (section 8). Any failure writes nothing at all.
    /// Returns the stored events; an empty batch commits nothing.
    pub fn append<P: Projection<K> + ?Sized>(
        &self,
        events: Vec<NewEvent<K>>,
        projection: &P,
    ) -> Result<Vec<Event<K>>, LogError> {
        self.append_with(events, projection, |_, _| Ok(()))
    }

    /// [`EventLog::append`], plus `side_writes` in the same commit, after the projection:
    /// writes to tables that are not projections and cannot be rebuilt from the log (the
    /// broker's secrets table written with `AccountOpened`, protocol.md section 1). They
    /// must not touch the log's own tables (`events`, `meta`).
    pub fn append_with<P, F>(
        &self,
        events: Vec<NewEvent<K>>,
        projection: &P,
        side_writes: F,
    ) -> Result<Vec<Event<K>>, LogError>
    where
        P: Projection<K> + ?Sized,
        F: FnOnce(&WriteTransaction, &[Event<K>]) -> Result<(), ProjectionError>,
    {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut group = self.begin_group()?;
        let stored = group.append_with(events, projection, side_writes)?;
        group.commit()?;
        Ok(stored)
    }

    /// [`EventLog::append`], but the commit is not flushed to the disk: it becomes durable
    /// with the next commit that is (or when the log is closed), and a crash before then
    /// loses it and nothing else, as if it had never been appended. Only for an event whose
    /// loss the protocol tolerates because a repeat fetches it again: a wallet's record of
    /// a node's `Ack`, which the node answers again from its stored reply (protocol.md
    /// section 7). It saves a requester one disk flush between two requests of a
    /// transaction; a node's replies still wait for durable commits. A log with a replica
    /// commits it durably, as every other.
    pub fn append_deferred<P: Projection<K> + ?Sized>(
        &self,
        events: Vec<NewEvent<K>>,
        projection: &P,
    ) -> Result<Vec<Event<K>>, LogError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        let mut group = self.begin_group()?;
        let stored = group.append(events, projection)?;
        group.durable = self.replica.is_some();
        group.commit()?;
        Ok(stored)
    }

    /// Attaches `replica`: from now on every commit is replicated before it returns, and
    /// no group begins once the replica is fenced (docs/adr/0017,
    /// [`crate::events::replica`]). `None` detaches it.
    pub fn set_replica(&mut self, replica: Option<SharedReplica>) {
        self.replica = replica;
    }

    /// Whether a replica is attached.
    #[must_use]
    pub fn is_replicated(&self) -> bool {
        self.replica.is_some()
    }

    /// Begins a group commit (architecture.md "Each node", group commit): several
    /// decisions append into one write transaction, each seeing the ones before it (the
    /// chain and the projection continue inside the transaction), and one durable commit
    /// covers them all. The caller releases the replies of a group only after
    /// [`Group::commit`] returned `Ok`; if an append or the commit fails, nothing of the
    /// group is written and the caller must rebuild its in-memory state from the log.
    pub fn begin_group(&self) -> Result<Group<'_, K>, LogError> {
        if let Some(replica) = &self.replica {
            replica.writable().map_err(LogError::Replica)?;
        }
        Ok(Group {
            txn: Some(self.db()?.begin_write()?),
            durable: true,
            head: None,
            failed: false,
            appended: 0,
            replica: self.replica.clone(),
            rows: Vec::new(),
            _log: PhantomData,
        })
    }

    /// The event at `seq`, if there is one.
    pub fn read(&self, seq: u64) -> Result<Option<Event<K>>, LogError> {
        let txn = self.db()?.begin_read()?;
        let table = txn.open_table(EVENTS)?;
        let Some(bytes) = table.get(seq)? else {
            return Ok(None);
        };
        decode_row(seq, bytes.value()).map(Some)
    }

    /// Every event in seq order, streamed from one read snapshot.
    pub fn iter(&self) -> Result<EventIter<K>, LogError> {
        self.events_from(chain::FIRST_SEQ)
    }

    /// The events from `seq` on, in order, streamed from one read snapshot (appends after
    /// this call are not seen). Drop it when done: while a snapshot lives, redb cannot reuse
    /// the pages that later commits free.
    pub fn events_from(&self, seq: u64) -> Result<EventIter<K>, LogError> {
        let txn = self.db()?.begin_read()?;
        let rows = txn.open_table(EVENTS)?.range(seq..)?;
        Ok(EventIter {
            rows,
            _txn: txn,
            _kind: PhantomData,
        })
    }

    /// [`EventLog::events_from`], each event with the exact bytes stored for it: for a
    /// consumer that passes the log on (the JetStream export of `peerscrip-ops export`) and
    /// must hand over what the chain hash covers, not a re-encoding of it.
    pub fn stored_from(&self, seq: u64) -> Result<StoredIter<K>, LogError> {
        let txn = self.db()?.begin_read()?;
        let rows = txn.open_table(EVENTS)?.range(seq..)?;
        Ok(StoredIter {
            rows,
            _txn: txn,
            _kind: PhantomData,
        })
    }

    /// The last seq and its chain hash, as `meta` records them; `None` while empty.
    pub fn head(&self) -> Result<Option<(u64, ChainHash)>, LogError> {
        let txn = self.db()?.begin_read()?;
        meta::read_head(&txn.open_table(META)?)
    }

    /// The number of stored events.
    pub fn len(&self) -> Result<u64, LogError> {
        let txn = self.db()?.begin_read()?;
        Ok(txn.open_table(EVENTS)?.len()?)
    }

    /// Whether no event is stored.
    pub fn is_empty(&self) -> Result<bool, LogError> {
        Ok(self.len()? == 0)
    }

    /// Recomputes every link of the chain from the stored bytes, and names the event that
    /// was altered, removed or moved ([`LogError::Chain`]; rules in [`crate::events::chain`]).
    pub fn verify_chain(&self) -> Result<ChainReport, LogError> {
        let mut rows = VerifiedRows::<K>::new(self.db()?.begin_read()?)?;
        while rows.next_event()?.is_some() {}
        rows.finish()
    }

    /// A read snapshot of the file, for the node's queries of its projection tables.
    pub fn begin_read(&self) -> Result<ReadTransaction, LogError> {
        Ok(self.db()?.begin_read()?)
    }

    /// The rows of every table of `projection` in this file (see [`dump_projection`]).
    pub fn dump_projection<P: Projection<K> + ?Sized>(
        &self,
        projection: &P,
    ) -> Result<ProjectionDump, LogError> {
        Ok(dump_projection(self.db()?, projection)?)
    }
}

/// Stored events in seq order, from one read snapshot (see [`EventLog::events_from`]).
pub struct EventIter<K> {
    // Declared before the transaction so that it is dropped first.
    rows: redb::Range<'static, u64, &'static [u8]>,
    _txn: ReadTransaction,
    _kind: PhantomData<fn() -> K>,
}

impl<K> fmt::Debug for EventIter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventIter").finish_non_exhaustive()
    }
}

impl<K: DeserializeOwned> Iterator for EventIter<K> {
    type Item = Result<Event<K>, LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        Some(
            row.map_err(LogError::from)
                .and_then(|(key, bytes)| decode_row(key.value(), bytes.value())),
        )
    }
}

/// Stored events in seq order with their stored bytes, from one read snapshot (see
/// [`EventLog::stored_from`]).
pub struct StoredIter<K> {
    // Declared before the transaction so that it is dropped first.
    rows: redb::Range<'static, u64, &'static [u8]>,
    _txn: ReadTransaction,
    _kind: PhantomData<fn() -> K>,
}

impl<K> fmt::Debug for StoredIter<K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredIter").finish_non_exhaustive()
    }
}

impl<K: DeserializeOwned> Iterator for StoredIter<K> {
    type Item = Result<(Event<K>, Vec<u8>), LogError>;

    fn next(&mut self) -> Option<Self::Item> {
        let row = self.rows.next()?;
        Some(row.map_err(LogError::from).and_then(|(key, bytes)| {
            let bytes = bytes.value();
            decode_row(key.value(), bytes).map(|event| (event, bytes.to_vec()))
        }))
    }
}

/// Stored rows in order with the chain verified as they go: what replay and
/// [`EventLog::verify_chain`] walk.
pub(crate) struct VerifiedRows<K> {
    rows: redb::Range<'static, u64, &'static [u8]>,
    head: Option<(u64, ChainHash)>,
    verifier: ChainVerifier,
    _txn: ReadTransaction,
    _kind: PhantomData<fn() -> K>,
}

impl<K: Serialize + DeserializeOwned> VerifiedRows<K> {
    pub(crate) fn new(txn: ReadTransaction) -> Result<Self, LogError> {
        let head = meta::read_head(&txn.open_table(META)?)?;
        let rows = txn.open_table(EVENTS)?.range::<u64>(..)?;
        Ok(VerifiedRows {
            rows,
            head,
            verifier: ChainVerifier::new(),
            _txn: txn,
            _kind: PhantomData,
        })
    }

    /// The next event, once its row has passed the chain checks so far.
    pub(crate) fn next_event(&mut self) -> Result<Option<Event<K>>, LogError> {
        let Some(row) = self.rows.next() else {
            return Ok(None);
        };
        let (key, bytes) = row?;
        let key = key.value();
        match chain::examine::<K>(bytes.value()) {
            Ok((event, facts)) => {
                self.verifier.push(key, facts).map_err(chain_error)?;
                Ok(Some(event))
            }
            Err(reason) => Err(chain_error(self.verifier.reject(key, reason))),
        }
    }

    /// Checks the last event against the recorded head.
    pub(crate) fn finish(self) -> Result<ChainReport, LogError> {
        self.verifier.finish(self.head).map_err(chain_error)
    }
}

fn chain_error(b: chain::Break) -> LogError {
    LogError::Chain {
        seq: b.seq,
        reason: b.reason,
    }
}

/// An open group commit (see [`EventLog::begin_group`]). Dropping it uncommitted aborts
/// the write transaction: nothing of the group is written.
pub struct Group<'log, K> {
    txn: Option<WriteTransaction>,
    /// Whether the commit is flushed before it returns ([`EventLog::append_deferred`]).
    durable: bool,
    /// The last seq and chain hash the group has written, read from `meta` at the first
    /// append and written back once, at the commit: a batch's appends open `meta` once
    /// instead of once each.
    head: Option<Head>,
    failed: bool,
    appended: u64,
    /// The log's replica, if any, and the rows it will be given at the commit.
    replica: Option<SharedReplica>,
    rows: Vec<ReplicaRow>,
    _log: PhantomData<&'log EventLog<K>>,
}

impl<K> fmt::Debug for Group<'_, K> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Group")
            .field("failed", &self.failed)
            .field("appended", &self.appended)
            .finish_non_exhaustive()
    }
}

impl<K: Serialize> Group<'_, K> {
    /// Appends one decision's `events` inside the group's transaction, with the same checks
    /// and projection fold as [`EventLog::append`]. A failure poisons the group: the
    /// transaction may hold part of the batch, so [`Group::commit`] will refuse and abort.
    pub fn append<P: Projection<K> + ?Sized>(
        &mut self,
        events: Vec<NewEvent<K>>,
        projection: &P,
    ) -> Result<Vec<Event<K>>, LogError> {
        self.append_with(events, projection, |_, _| Ok(()))
    }

    /// [`Group::append`], plus `side_writes` in the group's transaction, as
    /// [`EventLog::append_with`] (the broker's secrets table with an `AccountOpened`).
    pub fn append_with<P, F>(
        &mut self,
        events: Vec<NewEvent<K>>,
        projection: &P,
        side_writes: F,
    ) -> Result<Vec<Event<K>>, LogError>
    where
        P: Projection<K> + ?Sized,
        F: FnOnce(&WriteTransaction, &[Event<K>]) -> Result<(), ProjectionError>,
    {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        if self.failed {
            return Err(LogError::GroupFailed);
        }
        let result = check_reserved(projection).and_then(|()| {
            for (index, event) in events.iter().enumerate() {
                check_postings(index, event)?;
            }
            let txn = self.txn.as_ref().ok_or(LogError::GroupFailed)?;
            let head = match &mut self.head {
                Some(head) => head,
                empty => empty.insert(read_head_of(txn)?),
            };
            let rows = self.replica.is_some().then_some(&mut self.rows);
            write_batch(txn, head, events, projection, side_writes, rows)
        });
        match result {
            Ok(stored) => {
                self.appended += stored.len() as u64;
                Ok(stored)
            }
            Err(e) => {
                // A check failure wrote nothing, but a write failure may have left part of
                // the batch in the transaction: either way the group is given up.
                self.failed = true;
                Err(e)
            }
        }
    }

    /// Writes to the projection tables in the group's transaction, outside any append:
    /// the rows a node staged over the batch's appends, written once each just before
    /// the commit (`shared::node::driver::Core::flush`). A failure poisons the group, as an
    /// append's does. Like an append's side writes, they must not touch the log's own
    /// tables.
    ///
    /// # Errors
    /// [`LogError::Projection`] (at the group's last seq) with what `write` returned;
    /// [`LogError::GroupFailed`] after an earlier failure.
    pub fn write_projection<F>(&mut self, write: F) -> Result<(), LogError>
    where
        F: FnOnce(&WriteTransaction) -> Result<(), ProjectionError>,
    {
        if self.failed {
            return Err(LogError::GroupFailed);
        }
        let seq = self.head.map_or(0, |(seq, _)| seq);
        let result = match self.txn.as_ref() {
            Some(txn) => write(txn).map_err(|source| LogError::Projection { seq, source }),
            None => Err(LogError::GroupFailed),
        };
        if result.is_err() {
            self.failed = true;
        }
        result
    }

    /// How many events the group holds so far.
    #[must_use]
    pub fn appended(&self) -> u64 {
        self.appended
    }

    /// Whether the group's events go to a replica: only then is an [`Group::annex`] kept,
    /// so a node builds one only when this says so.
    #[must_use]
    pub fn is_replicated(&self) -> bool {
        self.replica.is_some()
    }

    /// Attaches `annex` to the group's event `seq`, to travel to the replica beside it
    /// ([`crate::events::replica`], "Annexes"). Without a replica, or for a seq the group
    /// did not write, nothing happens.
    pub fn annex(&mut self, seq: u64, annex: Vec<u8>) {
        if let Some(row) = self.rows.iter_mut().find(|row| row.seq == seq) {
            row.annex = Some(annex);
        }
    }

    /// Commits every append of the group durably in one write transaction. Refuses (and
    /// aborts) a group one of whose appends failed. With a replica attached, returns only
    /// once the replica took the group's events too; if it did not
    /// ([`LogError::Replica`]), the file holds them but the log is fenced: see
    /// [`crate::events::replica`].
    pub fn commit(mut self) -> Result<(), LogError> {
        let txn = self.txn.take().ok_or(LogError::GroupFailed)?;
        if self.failed {
            abort(txn);
            return Err(LogError::GroupFailed);
        }
        if self.appended == 0 {
            abort(txn);
            return Ok(());
        }
        if let Some(head) = self.head
            && let Err(e) = write_head_of(&txn, head)
        {
            abort(txn);
            return Err(e);
        }
        let mut txn = txn;
        if !self.durable
            && let Err(e) = txn.set_durability(redb::Durability::None)
        {
            abort(txn);
            return Err(LogError::Storage(e.into()));
        }
        let started = std::time::Instant::now();
        txn.commit()?;
        crate::runtime::observe::commit(started.elapsed());
        match &self.replica {
            Some(replica) => replica.replicate(&self.rows).map_err(LogError::Replica),
            None => Ok(()),
        }
    }
}

impl<K> Drop for Group<'_, K> {
    fn drop(&mut self) {
        if let Some(txn) = self.txn.take() {
            abort(txn);
        }
    }
}

/// Inserts, chains and projects a checked batch inside `txn`; the caller commits or aborts.
/// The last seq written and its chain hash: `(0, GENESIS_PREV_HASH)` before the first event.
type Head = (u64, ChainHash);

/// The head `meta` records, as [`write_batch`] continues from it.
fn read_head_of(txn: &WriteTransaction) -> Result<Head, LogError> {
    let meta_table = txn.open_table(META)?;
    Ok(meta::read_head(&meta_table)?.unwrap_or((0, GENESIS_PREV_HASH)))
}

/// Records `head` in `meta` (nothing while the log is empty).
fn write_head_of(txn: &WriteTransaction, (seq, hash): Head) -> Result<(), LogError> {
    if seq == 0 {
        return Ok(());
    }
    let mut meta_table = txn.open_table(META)?;
    meta::write_head(&mut meta_table, seq, &hash)?;
    Ok(())
}

/// Writes `events` after `head` (and moves it past them), then folds them into
/// `projection` and runs `side_writes`; the caller records the head in `meta` before the
/// commit.
fn write_batch<K, P, F>(
    txn: &WriteTransaction,
    head: &mut Head,
    events: Vec<NewEvent<K>>,
    projection: &P,
    side_writes: F,
    mut rows: Option<&mut Vec<ReplicaRow>>,
) -> Result<Vec<Event<K>>, LogError>
where
    K: Serialize,
    P: Projection<K> + ?Sized,
    F: FnOnce(&WriteTransaction, &[Event<K>]) -> Result<(), ProjectionError>,
{
    let (mut seq, mut prev_hash) = *head;
    let mut stored = Vec::with_capacity(events.len());
    {
        let mut table = txn.open_table(EVENTS)?;
        for (index, new) in events.into_iter().enumerate() {
            seq = seq.checked_add(1).ok_or(LogError::SeqExhausted)?;
            let event = new.into_event(seq, prev_hash);
            let bytes = event
                .encode()
                .map_err(|source| LogError::Encode { index, source })?;
            prev_hash = chain::hash_bytes(&bytes);
            if table.insert(seq, bytes.as_slice())?.is_some() {
                // A row past the recorded head: the file was altered. Write nothing.
                return Err(LogError::Chain {
                    seq,
                    reason: chain::ChainBreak::BeyondHead,
                });
            }
            if let Some(rows) = rows.as_deref_mut() {
                rows.push(ReplicaRow {
                    seq,
                    bytes,
                    annex: None,
                });
            }
            stored.push(event);
        }
    }
    *head = (seq, prev_hash);
    for event in &stored {
        projection
            .apply(txn, event)
            .map_err(|source| LogError::Projection {
                seq: event.seq,
                source,
            })?;
    }
    side_writes(txn, &stored).map_err(LogError::SideTables)?;
    Ok(stored)
}

/// Aborts a failed write; the caller returns the error that caused it. An abort failure
/// changes nothing on disk (the transaction never committed), so it is only logged.
pub(crate) fn abort(txn: WriteTransaction) {
    if let Err(e) = txn.abort() {
        tracing::warn!(error = %e, "aborting an event-log write transaction failed");
    }
}

fn lock_error(e: DatabaseError, path: &Path) -> LogError {
    match e {
        DatabaseError::DatabaseAlreadyOpen | DatabaseError::LockProtocolMismatch => {
            LogError::Locked {
                path: path.to_owned(),
            }
        }
        other => other.into(),
    }
}

fn check_schema(found: u32) -> Result<(), LogError> {
    if found == SCHEMA_VERSION {
        Ok(())
    } else {
        Err(LogError::SchemaVersion {
            expected: SCHEMA_VERSION,
            found,
        })
    }
}

fn check_identity(
    found_version: u32,
    found: LogIdentity,
    expected: &LogIdentity,
) -> Result<(), LogError> {
    check_schema(found_version)?;
    if &found != expected {
        return Err(LogError::IdentityMismatch {
            expected: expected.clone(),
            found,
        });
    }
    Ok(())
}

/// Refuses a projection that lists a table of the log itself.
pub(crate) fn check_reserved<K, P: Projection<K> + ?Sized>(projection: &P) -> Result<(), LogError> {
    match projection
        .tables()
        .into_iter()
        .find(|t| RESERVED_TABLES.contains(&t.name()))
    {
        Some(table) => Err(LogError::ReservedTable {
            name: table.name().to_owned(),
        }),
        None => Ok(()),
    }
}

fn check_postings<K>(index: usize, event: &NewEvent<K>) -> Result<(), LogError> {
    let tx: TxId = event.tx;
    posting::check_balanced(&event.postings)
        .and_then(|_| posting::check_memos(&event.memos))
        .map_err(|e| match e {
            PostingError::Unbalanced {
                increases,
                decreases,
            } => LogError::Unbalanced {
                index,
                tx,
                increases,
                decreases,
            },
            PostingError::Overflow(source) => LogError::AmountOverflow { index, tx, source },
            PostingError::MemoAccount { account } => LogError::MemoAccount { index, tx, account },
        })
}

/// Decodes the row stored under `seq`, which must say it is `seq`.
fn decode_row<K: DeserializeOwned>(seq: u64, bytes: &[u8]) -> Result<Event<K>, LogError> {
    let event = Event::<K>::decode(bytes).map_err(|source| LogError::Decode { seq, source })?;
    if event.seq != seq {
        return Err(LogError::Chain {
            seq,
            reason: chain::ChainBreak::SeqMismatch { found: event.seq },
        });
    }
    Ok(event)
}
