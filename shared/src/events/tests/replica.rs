//! The replica of a log ([`crate::events::replica`], docs/adr/0017): every commit reaches
//! it, in order, with the stored bytes and the annexes; a failure fails the commit and
//! fences the log.

use std::sync::Arc;

use super::fixture::{Ledger, deposit, temp_log};
use crate::events::{LogError, ReplicaError};
use crate::fixtures::RecordingReplica as Recording;

#[test]
fn every_commit_reaches_the_replica_with_its_stored_bytes_and_annexes() {
    let (_dir, _path, mut log) = temp_log();
    log.append(vec![deposit(1, 1_000)], &Ledger).unwrap();
    let replica = Arc::new(Recording::default());
    log.set_replica(Some(replica.clone()));
    assert!(log.is_replicated());

    log.append(vec![deposit(2, 5), deposit(3, 6)], &Ledger)
        .unwrap();
    let mut group = log.begin_group().unwrap();
    assert!(group.is_replicated());
    let stored = group.append(vec![deposit(4, 7)], &Ledger).unwrap();
    group.annex(stored[0].seq, b"sealed".to_vec());
    group.annex(99, b"not in this group".to_vec());
    group.commit().unwrap();

    let rows = replica.rows();
    let stored: Vec<(u64, Vec<u8>)> = log
        .stored_from(2)
        .unwrap()
        .map(|row| row.map(|(event, bytes)| (event.seq, bytes)).unwrap())
        .collect();
    assert_eq!(
        rows.iter()
            .map(|r| (r.seq, r.bytes.clone()))
            .collect::<Vec<_>>(),
        stored,
        "the events after the replica was attached, as stored"
    );
    assert_eq!(
        rows.iter().map(|r| r.annex.clone()).collect::<Vec<_>>(),
        [None, None, Some(b"sealed".to_vec())]
    );
}

#[test]
fn a_refused_commit_fails_and_the_log_begins_no_group_after_it() {
    let (_dir, _path, mut log) = temp_log();
    let replica = Arc::new(Recording::default());
    log.set_replica(Some(replica.clone()));
    log.append(vec![deposit(1, 1_000)], &Ledger).unwrap();
    replica.refuse_with(Some("wrong last sequence"));

    let refused = log.append(vec![deposit(2, 5)], &Ledger);
    assert!(
        matches!(&refused, Err(LogError::Replica(ReplicaError(r))) if r == "wrong last sequence"),
        "{refused:?}"
    );
    // The local commit had happened: the file holds the event the replica lacks, which
    // nobody was answered for (the daemon replaces that tail from the replicated log).
    assert_eq!(log.len().unwrap(), 2);
    assert_eq!(replica.rows().len(), 1);
    // Fenced: no group begins, nothing more is written.
    assert!(matches!(
        log.begin_group(),
        Err(LogError::Replica(ReplicaError(r))) if r == "wrong last sequence"
    ));
    assert!(matches!(
        log.append(vec![deposit(3, 1)], &Ledger),
        Err(LogError::Replica(_))
    ));
    assert_eq!(log.len().unwrap(), 2);

    // Without a replica the log writes alone again (single-process mode).
    log.set_replica(None);
    assert!(!log.is_replicated());
    log.append(vec![deposit(3, 1)], &Ledger).unwrap();
    assert_eq!(log.len().unwrap(), 3);
}
