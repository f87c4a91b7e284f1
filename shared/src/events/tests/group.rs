//! Group commit ([`crate::events::EventLog::begin_group`]): several decisions in one write
//! transaction, each seeing the ones before it; all or nothing.

use super::fixture::{FailAt, Ledger, bank, deposit, temp_log, transfer};
use crate::events::{Account, LogError};

#[test]
fn appends_of_a_group_chain_on_and_commit_together() {
    let (_dir, _path, log) = temp_log();
    log.append(vec![deposit(1, 1_000)], &Ledger).unwrap();
    let mut group = log.begin_group().unwrap();
    let first = group.append(vec![deposit(2, 500)], &Ledger).unwrap();
    let second = group
        .append(
            vec![
                transfer(3, bank(1), Account::FloatBroker, 100),
                deposit(4, 7),
            ],
            &Ledger,
        )
        .unwrap();
    assert_eq!(first[0].seq, 2);
    assert_eq!(second.iter().map(|e| e.seq).collect::<Vec<_>>(), [3, 4]);
    assert_eq!(second[0].prev_hash, first[0].chain_hash().unwrap());
    assert_eq!(group.appended(), 3);
    group.commit().unwrap();
    assert_eq!(log.len().unwrap(), 4);
    log.verify_chain().unwrap();
    assert_eq!(super::fixture::balance(&log, &bank(1)), 900);
}

#[test]
fn an_uncommitted_group_writes_nothing() {
    let (_dir, _path, log) = temp_log();
    log.append(vec![deposit(1, 1_000)], &Ledger).unwrap();
    let before = log.head().unwrap();
    {
        let mut group = log.begin_group().unwrap();
        group.append(vec![deposit(2, 500)], &Ledger).unwrap();
        // Dropped without commit: aborted.
    }
    assert_eq!(log.head().unwrap(), before);
    assert_eq!(log.len().unwrap(), 1);
    assert_eq!(super::fixture::balance(&log, &bank(2)), 0);
}

#[test]
fn a_failed_append_poisons_the_whole_group() {
    let (_dir, _path, log) = temp_log();
    log.append(vec![deposit(1, 1_000)], &Ledger).unwrap();
    let before = log.head().unwrap();
    let mut group = log.begin_group().unwrap();
    group.append(vec![deposit(2, 500)], &Ledger).unwrap();
    // The projection fails at seq 4, after seq 3 of the same batch was written.
    let failed = group.append(vec![deposit(3, 1), deposit(4, 2)], &FailAt(4));
    assert!(
        matches!(failed, Err(LogError::Projection { seq: 4, .. })),
        "{failed:?}"
    );
    // Later appends and the commit are refused; nothing of the group is written.
    assert!(matches!(
        group.append(vec![deposit(5, 1)], &Ledger),
        Err(LogError::GroupFailed)
    ));
    assert!(matches!(group.commit(), Err(LogError::GroupFailed)));
    assert_eq!(log.head().unwrap(), before);
    assert_eq!(log.len().unwrap(), 1);
    log.verify_chain().unwrap();
    // The log takes appends again.
    log.append(vec![deposit(6, 3)], &Ledger).unwrap();
    assert_eq!(log.len().unwrap(), 2);
}
