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

#[test]
fn a_group_records_its_head_once_at_the_commit() {
    let (_dir, _path, log) = temp_log();
    log.append(vec![deposit(1, 1_000)], &Ledger).unwrap();
    let before = log.head().unwrap();
    let mut group = log.begin_group().unwrap();
    let mut last = None;
    for n in 2..=5 {
        last = group.append(vec![deposit(n, 10)], &Ledger).unwrap().pop();
    }
    // Nothing is visible before the commit, the head included.
    assert_eq!(log.head().unwrap(), before);
    group.commit().unwrap();
    let last = last.unwrap();
    assert_eq!(
        log.head().unwrap(),
        Some((5, last.chain_hash().unwrap())),
        "meta's head is the group's last event"
    );
    log.verify_chain().unwrap();
    // The next append (a group or not) continues the chain from it.
    let next = log.append(vec![deposit(6, 1)], &Ledger).unwrap();
    assert_eq!(next[0].seq, 6);
    assert_eq!(next[0].prev_hash, last.chain_hash().unwrap());
}

#[test]
fn projection_writes_of_a_group_commit_with_it_and_a_failed_one_poisons_it() {
    use crate::events::ProjectionError;
    use redb::{ReadableDatabase as _, TableDefinition};
    const STAGED: TableDefinition<'static, u64, u64> = TableDefinition::new("staged");

    let (_dir, _path, log) = temp_log();
    let mut group = log.begin_group().unwrap();
    group.append(vec![deposit(1, 500)], &Ledger).unwrap();
    group
        .write_projection(|txn| {
            txn.open_table(STAGED)?.insert(1, 500)?;
            Ok(())
        })
        .unwrap();
    group.commit().unwrap();
    let read = log.db().unwrap().begin_read().unwrap();
    let table = read.open_table(STAGED).unwrap();
    assert_eq!(table.get(1).unwrap().map(|v| v.value()), Some(500));
    drop((table, read));

    let before = log.head().unwrap();
    let mut group = log.begin_group().unwrap();
    group.append(vec![deposit(2, 7)], &Ledger).unwrap();
    let failed = group.write_projection(|_| Err(ProjectionError::Invariant("no".into())));
    assert!(
        matches!(failed, Err(LogError::Projection { seq: 2, .. })),
        "{failed:?}"
    );
    assert!(matches!(
        group.write_projection(|_| Ok(())),
        Err(LogError::GroupFailed)
    ));
    assert!(matches!(group.commit(), Err(LogError::GroupFailed)));
    assert_eq!(
        log.head().unwrap(),
        before,
        "nothing of the group is written"
    );
    assert_eq!(log.len().unwrap(), 1);
}
