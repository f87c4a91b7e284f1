//! The deferred append ([`crate::events::EventLog::append_deferred`]): committed and
//! folded like any append, but flushed only by the next durable commit; with a replica,
//! durable and replicated as every commit.

use std::sync::Arc;

use super::fixture::{Ledger, Log, balance, bank, deposit, identity};
use crate::events::faults::{Faults, FaultyFile};
use crate::fixtures::RecordingReplica as Recording;

/// A fresh log `node.redb` in a temporary directory, on a backend that counts its flushes.
fn faulty_log() -> (tempfile::TempDir, Faults, Log) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let faults = Faults::new();
    let (file, switch) = (path.clone(), faults.clone());
    let log = Log::open_on_backend(
        &path,
        move || FaultyFile::open(&file, switch.clone()),
        identity(),
    )
    .unwrap();
    (dir, faults, log)
}

#[test]
fn a_deferred_append_is_flushed_by_the_next_durable_commit_and_not_before() {
    let (dir, faults, log) = faulty_log();
    let path = dir.path().join("node.redb");
    log.append(vec![deposit(1, 1_000)], &Ledger).unwrap();
    let flushed = faults.syncs();
    assert!(flushed > 0, "a durable append flushes");

    let stored = log.append_deferred(vec![deposit(2, 5)], &Ledger).unwrap();
    assert_eq!(stored[0].seq, 2);
    assert_eq!(
        faults.syncs(),
        flushed,
        "the deferred append flushed nothing"
    );
    // Committed all the same: the event and its projection rows are there.
    assert_eq!(log.len().unwrap(), 2);
    assert_eq!(balance(&log, &bank(2)), 5);

    log.append(vec![deposit(3, 7)], &Ledger).unwrap();
    assert!(
        faults.syncs() > flushed,
        "the next durable append flushes both"
    );
    log.close().unwrap();

    let reopened = Log::open(&path, identity()).unwrap();
    assert_eq!(reopened.len().unwrap(), 3);
    reopened.verify_chain().unwrap();
    assert_eq!(
        (balance(&reopened, &bank(2)), balance(&reopened, &bank(3))),
        (5, 7)
    );
}

#[test]
fn a_deferred_append_to_a_replicated_log_is_durable_and_replicated() {
    let (_dir, faults, mut log) = faulty_log();
    let replica = Arc::new(Recording::default());
    log.set_replica(Some(replica.clone()));
    let flushed = faults.syncs();

    log.append_deferred(vec![deposit(1, 9)], &Ledger).unwrap();

    assert!(
        faults.syncs() > flushed,
        "flushed before the replica got it"
    );
    assert_eq!(
        replica.rows().iter().map(|r| r.seq).collect::<Vec<_>>(),
        [1]
    );
}

#[test]
fn an_empty_deferred_append_commits_nothing() {
    let (_dir, _path, log) = super::fixture::temp_log();
    assert!(log.append_deferred(vec![], &Ledger).unwrap().is_empty());
    assert_eq!(log.len().unwrap(), 0);
}
