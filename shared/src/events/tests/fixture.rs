//! A small node for the tests: its event kind, a ledger projection (balances, memos, and a
//! per-tx table), and helpers to make logs and events.

use std::path::PathBuf;

use redb::{
    MultimapTableDefinition, ReadTransaction, ReadableTable, TableDefinition, WriteTransaction,
};
use serde::{Deserialize, Serialize};
use tempfile::TempDir;

use crate::amount::Amount;
use crate::events::{
    Account, Event, EventLog, LogIdentity, NewEvent, Posting, Projection, ProjectionError,
    ProjectionTable,
};
use crate::ids::{Pan, TxId, Uid};
use crate::suite::Suite;

/// What happened, in the test node's terms.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub(super) enum TestKind {
    Deposit,
    Transfer {
        note: String,
    },
    /// The ledger projection writes its postings, then refuses this event.
    Poison,
}

/// Account → balance (increases minus decreases).
pub(super) const BALANCES: TableDefinition<&str, i128> = TableDefinition::new("balances");
/// Account → memo balance.
pub(super) const MEMOS: TableDefinition<&str, i128> = TableDefinition::new("memos");
/// tx → (events of that tx, last seq).
pub(super) const PER_TX: TableDefinition<&[u8; 16], (u64, u64)> = TableDefinition::new("per_tx");

/// Account → every tx that moved it (a multimap projection).
pub(super) const TXS_BY_ACCOUNT: MultimapTableDefinition<&str, &[u8; 16]> =
    MultimapTableDefinition::new("txs_by_account");

pub(super) type Log = EventLog<TestKind>;

/// The test projection.
pub(super) struct Ledger;

impl Projection<TestKind> for Ledger {
    fn tables(&self) -> Vec<&dyn ProjectionTable> {
        vec![&BALANCES, &MEMOS, &PER_TX, &TXS_BY_ACCOUNT]
    }

    fn apply(
        &self,
        txn: &WriteTransaction,
        event: &Event<TestKind>,
    ) -> Result<(), ProjectionError> {
        fold(txn, BALANCES, &event.postings)?;
        fold(txn, MEMOS, &event.memos)?;
        let mut per_tx = txn.open_table(PER_TX)?;
        let count = per_tx.get(event.tx.as_bytes())?.map_or(0, |v| v.value().0);
        per_tx.insert(event.tx.as_bytes(), (count + 1, event.seq))?;
        let mut by_account = txn.open_multimap_table(TXS_BY_ACCOUNT)?;
        for p in &event.postings {
            by_account.insert(p.account.to_string().as_str(), event.tx.as_bytes())?;
        }
        if event.kind == TestKind::Poison {
            return Err(ProjectionError::Invariant("poisoned event".into()));
        }
        Ok(())
    }
}

fn fold(
    txn: &WriteTransaction,
    def: TableDefinition<&str, i128>,
    postings: &[Posting],
) -> Result<(), ProjectionError> {
    let mut table = txn.open_table(def)?;
    for p in postings {
        let key = p.account.to_string();
        let current = table.get(key.as_str())?.map_or(0, |v| v.value());
        let delta = i128::from(p.amount.minor());
        let next = match p.direction {
            crate::events::Direction::Increase => current.checked_add(delta),
            crate::events::Direction::Decrease => current.checked_sub(delta),
        }
        .ok_or_else(|| ProjectionError::Invariant("balance overflow".into()))?;
        table.insert(key.as_str(), next)?;
    }
    Ok(())
}

/// A projection that fails at one seq and otherwise is the [`Ledger`].
pub(super) struct FailAt(pub u64);

impl Projection<TestKind> for FailAt {
    fn tables(&self) -> Vec<&dyn ProjectionTable> {
        Ledger.tables()
    }

    fn apply(
        &self,
        txn: &WriteTransaction,
        event: &Event<TestKind>,
    ) -> Result<(), ProjectionError> {
        Ledger.apply(txn, event)?;
        if event.seq == self.0 {
            return Err(ProjectionError::Invariant(format!("fail at {}", self.0)));
        }
        Ok(())
    }
}

pub(super) fn identity() -> LogIdentity {
    LogIdentity::new(Suite::Modern, "test")
}

/// A fresh log in a temporary directory (kept alive by the returned guard).
pub(super) fn temp_log() -> (TempDir, PathBuf, Log) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("node.redb");
    let log = Log::open(&path, identity()).unwrap();
    (dir, path, log)
}

pub(super) fn bank(n: u8) -> Account {
    Account::Bank(Pan::new(format!("PAN{n}")))
}

pub(super) fn vendor(n: u8) -> Account {
    Account::FloatVendor(Uid([n; 16]))
}

pub(super) fn a(minor: u64) -> Amount {
    Amount::from_minor(minor)
}

pub(super) fn tx(n: u8) -> TxId {
    TxId([n; 16])
}

/// `external −v, bank:n +v`.
pub(super) fn deposit(n: u8, v: u64) -> NewEvent<TestKind> {
    NewEvent::new(
        crate::UnixMillis::new(1_700_000_000_000 + u64::from(n)),
        tx(n),
        TestKind::Deposit,
    )
    .with_postings(vec![
        Posting::decrease(Account::External, a(v)),
        Posting::increase(bank(n), a(v)),
    ])
}

/// `from −v, to +v`, with a memo on a vendor float.
pub(super) fn transfer(t: u8, from: Account, to: Account, v: u64) -> NewEvent<TestKind> {
    NewEvent::new(
        crate::UnixMillis::new(1_700_000_100_000),
        tx(t),
        TestKind::Transfer {
            note: format!("transfer {t}"),
        },
    )
    .with_postings(vec![
        Posting::decrease(from, a(v)),
        Posting::increase(to, a(v)),
    ])
    .with_memos(vec![Posting::increase(vendor(9), a(v))])
}

/// Three batches, seven events, money in every table.
pub(super) fn history(log: &Log) {
    log.append(vec![deposit(1, 10_000), deposit(2, 5_000)], &Ledger)
        .unwrap();
    log.append(
        vec![
            transfer(3, bank(1), Account::FloatBroker, 2_500),
            transfer(3, Account::FloatBroker, bank(2), 1_000),
        ],
        &Ledger,
    )
    .unwrap();
    log.append(
        vec![
            deposit(4, 700),
            transfer(5, bank(2), Account::External, 300),
            transfer(6, bank(4), vendor(1), 100),
        ],
        &Ledger,
    )
    .unwrap();
}

/// Sum of the balances table.
pub(super) fn balance_sum(txn: &ReadTransaction) -> i128 {
    let table = txn.open_table(BALANCES).unwrap();
    table
        .range::<&str>(..)
        .unwrap()
        .map(|row| row.unwrap().1.value())
        .sum()
}

/// One balance, zero when absent.
pub(super) fn balance(log: &Log, account: &Account) -> i128 {
    let txn = log.begin_read().unwrap();
    let table = txn.open_table(BALANCES).unwrap();
    table
        .get(account.to_string().as_str())
        .unwrap()
        .map_or(0, |v| v.value())
}
