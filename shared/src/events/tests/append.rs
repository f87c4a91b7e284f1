//! Appending: numbering, chaining, projecting, and refusing without a trace.

use redb::{Database, ReadableDatabase, TableDefinition};

use super::fixture::{
    FailAt, Ledger, Log, TestKind, a, balance, balance_sum, bank, deposit, history, identity,
    temp_log, transfer, tx, vendor,
};
use crate::amount::AmountError;
use crate::events::{
    Account, ChainReport, GENESIS_PREV_HASH, LogError, NewEvent, Posting, Projection,
    ProjectionError, ProjectionTable, dump_projection,
};
use crate::ids::Pan;

#[test]
fn append_numbers_chains_and_projects() {
    let (_dir, _path, log) = temp_log();
    assert_eq!(log.head().unwrap(), None);
    assert!(log.is_empty().unwrap());

    let stored = log
        .append(
            vec![
                deposit(1, 10_000),
                transfer(2, bank(1), Account::FloatBroker, 2_500),
                deposit(3, 1),
            ],
            &Ledger,
        )
        .unwrap();

    assert_eq!(stored.iter().map(|e| e.seq).collect::<Vec<_>>(), [1, 2, 3]);
    assert_eq!(stored[0].prev_hash, GENESIS_PREV_HASH);
    let hashes: Vec<_> = stored.iter().map(|e| e.chain_hash().unwrap()).collect();
    assert_eq!(stored[1].prev_hash, hashes[0]);
    assert_eq!(stored[2].prev_hash, hashes[1]);
    assert_eq!(log.head().unwrap(), Some((3, hashes[2])));
    assert_eq!(log.len().unwrap(), 3);
    assert_eq!(stored[1].tx, tx(2));
    assert_eq!(stored[1].memos, [Posting::increase(vendor(9), a(2_500))]);

    assert_eq!(log.read(2).unwrap().as_ref(), Some(&stored[1]));
    assert_eq!(log.read(0).unwrap(), None);
    assert_eq!(log.read(4).unwrap(), None);
    let all: Vec<_> = log.iter().unwrap().map(Result::unwrap).collect();
    assert_eq!(all, stored);
    let tail: Vec<_> = log.events_from(2).unwrap().map(Result::unwrap).collect();
    assert_eq!(tail, stored[1..]);
    // With the bytes as stored: each the event's encoding, hashing to the next link.
    let with_bytes: Vec<_> = log.stored_from(2).unwrap().map(Result::unwrap).collect();
    assert_eq!(with_bytes.len(), 2);
    for (i, (event, bytes)) in with_bytes.iter().enumerate() {
        assert_eq!(event, &stored[i + 1]);
        assert_eq!(bytes, &stored[i + 1].encode().unwrap());
        assert_eq!(crate::events::chain::hash_bytes(bytes), hashes[i + 1]);
    }
    assert_eq!(log.stored_from(4).unwrap().count(), 0);

    assert_eq!(balance(&log, &Account::External), -10_001);
    assert_eq!(balance(&log, &bank(1)), 7_500);
    assert_eq!(balance(&log, &Account::FloatBroker), 2_500);
    assert_eq!(balance(&log, &bank(3)), 1);
    assert_eq!(
        log.verify_chain().unwrap(),
        ChainReport {
            events: 3,
            head: Some((3, hashes[2]))
        }
    );
}

#[test]
fn the_chain_continues_across_batches() {
    let (_dir, _path, log) = temp_log();
    let first = log.append(vec![deposit(1, 5)], &Ledger).unwrap();
    let second = log.append(vec![deposit(2, 6)], &Ledger).unwrap();
    assert_eq!(second[0].seq, 2);
    assert_eq!(second[0].prev_hash, first[0].chain_hash().unwrap());
}

#[test]
fn an_empty_batch_commits_nothing() {
    let (_dir, _path, log) = temp_log();
    history(&log);
    let head = log.head().unwrap();
    assert_eq!(log.append(Vec::new(), &Ledger).unwrap(), []);
    assert_eq!(log.head().unwrap(), head);
}

#[test]
fn an_iterator_reads_one_snapshot() {
    let (_dir, _path, log) = temp_log();
    history(&log);
    let iter = log.iter().unwrap();
    log.append(vec![deposit(7, 1)], &Ledger).unwrap();
    assert_eq!(iter.count(), 7);
    assert_eq!(log.iter().unwrap().count(), 8);
}

/// What a refused append must leave untouched.
fn state(log: &Log) -> (u64, Option<(u64, [u8; 32])>, crate::events::ProjectionDump) {
    (
        log.len().unwrap(),
        log.head().unwrap(),
        log.dump_projection(&Ledger).unwrap(),
    )
}

#[test]
fn a_failing_projection_leaves_nothing_behind() {
    let (_dir, _path, log) = temp_log();
    history(&log);
    let before = state(&log);
    // The poisoned event's postings are written by the projection before it fails.
    let poison =
        NewEvent::new(crate::UnixMillis::new(1), tx(8), TestKind::Poison).with_postings(vec![
            Posting::decrease(Account::External, a(50)),
            Posting::increase(bank(8), a(50)),
        ]);
    let err = log
        .append(vec![deposit(7, 1_000), poison], &Ledger)
        .unwrap_err();
    assert!(
        matches!(
            &err,
            LogError::Projection { seq: 9, source: ProjectionError::Invariant(m) } if m == "poisoned event"
        ),
        "{err:?}"
    );
    assert_eq!(state(&log), before);
    assert_eq!(balance(&log, &bank(7)), 0);

    // No seq was used up.
    let next = log.append(vec![deposit(7, 1_000)], &Ledger).unwrap();
    assert_eq!(next[0].seq, 8);
    log.verify_chain().unwrap();
}

#[test]
fn an_unbalanced_append_is_refused_and_leaves_nothing_behind() {
    let (_dir, _path, log) = temp_log();
    history(&log);
    let before = state(&log);
    let lopsided = NewEvent::new(crate::UnixMillis::new(1), tx(8), TestKind::Deposit)
        .with_postings(vec![
            Posting::decrease(Account::External, a(100)),
            Posting::increase(bank(8), a(99)),
        ]);
    let err = log
        .append(vec![deposit(7, 1_000), lopsided], &Ledger)
        .unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Unbalanced { index: 1, tx: t, increases, decreases }
                if t == tx(8) && increases == a(99) && decreases == a(100)
        ),
        "{err:?}"
    );
    assert_eq!(state(&log), before);
}

#[test]
fn overflowing_postings_and_bad_memos_are_refused() {
    let (_dir, _path, log) = temp_log();
    let huge =
        NewEvent::new(crate::UnixMillis::new(1), tx(1), TestKind::Deposit).with_postings(vec![
            Posting::increase(bank(1), a(u64::MAX)),
            Posting::increase(bank(2), a(1)),
            Posting::decrease(Account::External, a(u64::MAX)),
        ]);
    let err = log.append(vec![huge], &Ledger).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::AmountOverflow {
                index: 0,
                source: AmountError::Overflow,
                ..
            }
        ),
        "{err:?}"
    );

    let pan = Account::Bank(Pan::new("GR1601101250000000012300695"));
    let memo_on_bank = deposit(2, 5).with_memos(vec![Posting::increase(pan.clone(), a(5))]);
    let err = log.append(vec![memo_on_bank], &Ledger).unwrap_err();
    assert!(
        matches!(&err, LogError::MemoAccount { index: 0, account, .. } if *account == pan),
        "{err:?}"
    );
    // The error text redacts the PAN.
    assert!(!err.to_string().contains("GR160110125"), "{err}");
    assert_eq!(log.len().unwrap(), 0);
    assert_eq!(log.head().unwrap(), None);
}

/// A table that is not a projection, written with the events (the broker's secrets).
const SECRETS: TableDefinition<&str, &[u8]> = TableDefinition::new("secrets");

#[test]
fn side_writes_commit_with_the_events_or_not_at_all() {
    let (_dir, _path, log) = temp_log();
    log.append_with(vec![deposit(1, 5)], &Ledger, |txn, events| {
        assert_eq!(events[0].seq, 1);
        txn.open_table(SECRETS)?.insert("PAN1", b"id".as_slice())?;
        Ok(())
    })
    .unwrap();

    let before = state(&log);
    let err = log
        .append_with(vec![deposit(2, 5)], &Ledger, |txn, _| {
            txn.open_table(SECRETS)?.insert("PAN2", b"id".as_slice())?;
            Err(ProjectionError::Invariant("refused".into()))
        })
        .unwrap_err();
    assert!(
        matches!(err, LogError::SideTables(ProjectionError::Invariant(_))),
        "{err:?}"
    );
    assert_eq!(state(&log), before);

    // A rebuild touches projection tables only: the side table survives it.
    log.rebuild_projection(&Ledger).unwrap();
    let txn = log.begin_read().unwrap();
    let secrets = txn.open_table(SECRETS).unwrap();
    assert_eq!(secrets.get("PAN1").unwrap().unwrap().value(), b"id");
    assert!(secrets.get("PAN2").unwrap().is_none());
}

struct ClaimsTheLog;

impl Projection<TestKind> for ClaimsTheLog {
    fn tables(&self) -> Vec<&dyn ProjectionTable> {
        const EVENTS: TableDefinition<u64, &[u8]> = TableDefinition::new("events");
        vec![&EVENTS]
    }

    fn apply(
        &self,
        _txn: &redb::WriteTransaction,
        _event: &crate::events::Event<TestKind>,
    ) -> Result<(), ProjectionError> {
        Ok(())
    }
}

#[test]
fn a_projection_cannot_claim_the_log_tables() {
    let (_dir, _path, log) = temp_log();
    for err in [
        log.append(vec![deposit(1, 5)], &ClaimsTheLog).unwrap_err(),
        log.rebuild_projection(&ClaimsTheLog).unwrap_err(),
    ] {
        assert!(
            matches!(&err, LogError::ReservedTable { name } if name == "events"),
            "{err:?}"
        );
    }
    assert_eq!(log.len().unwrap(), 0);
}

/// protocol.md section 8: replay from the log alone gives identical tables.
#[test]
fn reopen_then_replay_into_a_fresh_file_gives_identical_tables() {
    let (dir, path, log) = temp_log();
    history(&log);
    log.close().unwrap();

    let log = Log::open(&path, identity()).unwrap();
    let appended = log
        .append(vec![transfer(7, bank(1), bank(2), 1)], &Ledger)
        .unwrap();
    assert_eq!(appended[0].seq, 8);

    let fresh = Database::create(dir.path().join("rebuilt.redb")).unwrap();
    let report = log.replay_into(&Ledger, &fresh).unwrap();
    assert_eq!(report.events, 8);
    assert_eq!(report.head, log.head().unwrap());

    let live = log.dump_projection(&Ledger).unwrap();
    let rebuilt = dump_projection(&fresh, &Ledger).unwrap();
    assert_eq!(live, rebuilt);
    assert_eq!(live.len(), 4);
    assert!(live.values().all(|rows| !rows.is_empty()), "{live:?}");
    assert_eq!(balance_sum(&fresh.begin_read().unwrap()), 0);
    assert_eq!(balance_sum(&log.begin_read().unwrap()), 0);

    // Replaying again over the same target starts from cleared tables.
    log.replay_into(&Ledger, &fresh).unwrap();
    assert_eq!(dump_projection(&fresh, &Ledger).unwrap(), live);
}

#[test]
fn rebuild_restores_altered_projection_tables() {
    let (_dir, path, log) = temp_log();
    history(&log);
    let live = log.dump_projection(&Ledger).unwrap();
    log.close().unwrap();

    {
        let db = Database::open(&path).unwrap();
        let txn = db.begin_write().unwrap();
        {
            let mut balances = txn.open_table(super::fixture::BALANCES).unwrap();
            balances.insert("bank:PAN1", 1_000_000_i128).unwrap();
            balances.insert("bank:ghost", 5_i128).unwrap();
            let mut by_account = txn
                .open_multimap_table(super::fixture::TXS_BY_ACCOUNT)
                .unwrap();
            by_account.insert("external", &[0xaa; 16]).unwrap();
        }
        txn.commit().unwrap();
    }

    let log = Log::open(&path, identity()).unwrap();
    assert_ne!(log.dump_projection(&Ledger).unwrap(), live);
    let report = log.rebuild_projection(&Ledger).unwrap();
    assert_eq!(report.events, 7);
    assert_eq!(log.dump_projection(&Ledger).unwrap(), live);
}

#[test]
fn a_failing_replay_changes_nothing() {
    let (dir, _path, log) = temp_log();
    history(&log);
    let before = state(&log);
    let err = log.rebuild_projection(&FailAt(4)).unwrap_err();
    assert!(
        matches!(
            err,
            LogError::Projection {
                seq: 4,
                source: ProjectionError::Invariant(_)
            }
        ),
        "{err:?}"
    );
    assert_eq!(state(&log), before);

    let fresh = Database::create(dir.path().join("rebuilt.redb")).unwrap();
    let err = log.replay_into(&FailAt(6), &fresh).unwrap_err();
    assert!(
        matches!(err, LogError::Projection { seq: 6, .. }),
        "{err:?}"
    );
}
