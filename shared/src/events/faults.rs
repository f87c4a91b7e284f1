//! A storage backend that fails on demand: how the tests put a node on a full disk or a
//! failing one (protocol.md section 10, "Storage faults") without filling a real disk. Test
//! support only (feature `fixtures`).
//!
//! [`FaultyFile`] is redb's own file backend, except that while its [`Faults`] switch is on
//! every write, resize and sync fails with "no space left on device", as a full disk fails
//! them; reads go on, as they do on a full disk. Every backend opened with one switch
//! shares it, so a log reopened after a fault ([`crate::events::EventLog::reopen`]) is
//! still on the same failing disk until the test heals it. The switch also counts the
//! flushes that reached the disk ([`Faults::syncs`]), for the tests of which commits are
//! durable.

use std::fs::{File, OpenOptions};
use std::io;
use std::ops::Bound;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use redb::backends::FileBackend;
use redb::{BackendError, StorageBackend};

/// The switch of a [`FaultyFile`], and its count of flushes: clones share them.
#[derive(Clone, Debug, Default)]
pub struct Faults(Arc<Disk>);

#[derive(Debug, Default)]
struct Disk {
    full: AtomicBool,
    syncs: AtomicU64,
}

impl Faults {
    /// A switch that is off (the disk works).
    #[must_use]
    pub fn new() -> Faults {
        Faults::default()
    }

    /// From now on, writes fail: the disk is full.
    pub fn fill_disk(&self) {
        self.0.full.store(true, Ordering::SeqCst);
    }

    /// From now on, writes succeed again: space is back.
    pub fn free_space(&self) {
        self.0.full.store(false, Ordering::SeqCst);
    }

    /// How many flushes (`sync_data`) of the backends on this switch have succeeded.
    #[must_use]
    pub fn syncs(&self) -> u64 {
        self.0.syncs.load(Ordering::SeqCst)
    }

    fn check(&self) -> io::Result<()> {
        if self.0.full.load(Ordering::SeqCst) {
            Err(io::Error::new(
                io::ErrorKind::StorageFull,
                "no space left on device (injected)",
            ))
        } else {
            Ok(())
        }
    }
}

/// redb's file backend with a [`Faults`] switch (see the module doc).
#[derive(Debug)]
pub struct FaultyFile {
    inner: FileBackend,
    faults: Faults,
}

impl FaultyFile {
    /// The file at `path` (created if missing), failing while `faults` is on.
    pub fn open(path: &Path, faults: Faults) -> io::Result<FaultyFile> {
        let file: File = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)?;
        let inner = FileBackend::new(file).map_err(io::Error::other)?;
        Ok(FaultyFile { inner, faults })
    }
}

impl StorageBackend for FaultyFile {
    fn len(&self) -> io::Result<u64> {
        self.inner.len()
    }

    fn read(&self, offset: u64, out: &mut [u8]) -> io::Result<()> {
        self.inner.read(offset, out)
    }

    fn set_len(&self, len: u64) -> io::Result<()> {
        self.faults.check()?;
        self.inner.set_len(len)
    }

    fn sync_data(&self) -> io::Result<()> {
        self.faults.check()?;
        self.inner.sync_data()?;
        self.faults.0.syncs.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }

    fn write(&self, offset: u64, data: &[u8]) -> io::Result<()> {
        self.faults.check()?;
        self.inner.write(offset, data)
    }

    fn close(&self) -> io::Result<()> {
        self.inner.close()
    }

    fn try_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.try_lock_range(start, end)
    }

    fn try_lock_shared_range(
        &self,
        start: Bound<u64>,
        end: Bound<u64>,
    ) -> Result<bool, BackendError> {
        self.inner.try_lock_shared_range(start, end)
    }

    fn lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_range(start, end)
    }

    fn lock_shared_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.lock_shared_range(start, end)
    }

    fn unlock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<(), BackendError> {
        self.inner.unlock_range(start, end)
    }

    fn query_lock_range(&self, start: Bound<u64>, end: Bound<u64>) -> Result<bool, BackendError> {
        self.inner.query_lock_range(start, end)
    }
}
