//! The wallet's redb tables (protocol.md section 8; ARCHITECTURE "Storage": "the customer
//! wallet is a redb file too"): projections of its event log, written row by row in the
//! same write transaction as the events that change them, and rebuilt by replay.
//!
//! Every table maps bytes to the postcard encoding of a row of [`WalletState`]; keys sort
//! as the state's `BTreeMap`s do (ids as raw bytes, seqs big-endian), so the tables dumped
//! from the file equal [`expected_dump`] of the state byte for byte.
//!
//! | table | key | value |
//! |---|---|---|
//! | `wallet_profile` | `identity`, `account`, `registration`, `tables_format` | [`Identity`](crate::core::Identity), [`AccountRecord`](crate::core::AccountRecord), `Uid`, `u32` ([`TABLES_FORMAT`]) |
//! | `wallet_peers` | peer UID | SPKI DER |
//! | `wallet_scrip` | producer UID | [`OwnedScrip`](crate::core::OwnedScrip) (CS sealed) |
//! | `wallet_pending` | tx ‖ label code | [`Pending`](crate::core::Pending) |
//! | `wallet_history` | seq (u64 BE) | [`HistoryEntry`](crate::core::HistoryEntry) |
//! | `wallet_names` | merchant UID | [`MerchantName`](shared::wire::bodies::MerchantName) (docs/adr/0016) |
//!
//! The tables are versioned apart from the log (whose own schema version,
//! `shared::events::SCHEMA_VERSION`, covers the events and is unchanged): a change of a row's
//! layout bumps [`TABLES_FORMAT`], and `Wallet::open` rebuilds the tables of a file of an
//! older format from its log, which holds everything they project (section 8).

use std::cell::RefCell;

use redb::{TableDefinition, WriteTransaction};
use serde::Serialize;
use shared::events::{Event, Projection, ProjectionDump, ProjectionError, ProjectionTable, Rows};

use crate::core::{Row, WalletEvent, WalletState};

type BytesTable = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Identity, account and registration rows.
pub const PROFILE: BytesTable = TableDefinition::new("wallet_profile");
/// Peer keys obtained by 6.0b.
pub const PEERS: BytesTable = TableDefinition::new("wallet_peers");
/// The scrip held, by producer.
pub const SCRIP: BytesTable = TableDefinition::new("wallet_scrip");
/// Pending requests.
pub const PENDING: BytesTable = TableDefinition::new("wallet_pending");
/// The history.
pub const HISTORY: BytesTable = TableDefinition::new("wallet_history");
/// Merchants' names (docs/adr/0016). A wallet written before it has no `MerchantNamed`
/// event, and its missing table reads as the empty one it should be: no format change.
pub const NAMES: BytesTable = TableDefinition::new("wallet_names");

/// The layout of the tables this build writes, kept in `wallet_profile` under
/// `tables_format` from the wallet's creation on:
///
/// - 0 (no `tables_format` row): a `wallet_pending` row lists the messages of its flow
///   received so far, as labels.
/// - 1: it holds the flow's named state instead ([`Progress`](crate::core::Progress)).
pub const TABLES_FORMAT: u32 = 1;

/// The key of the format row in `wallet_profile`.
const FORMAT_KEY: &[u8] = b"tables_format";

/// The format of the tables in `dump` (what [`shared::events::dump_projection`] read from a
/// file): 0 for a file written before the format was recorded.
pub fn stored_format(dump: &ProjectionDump) -> Result<u32, postcard::Error> {
    let row = dump
        .get(redb::TableHandle::name(&PROFILE))
        .and_then(|rows| rows.iter().find(|(key, _)| key.as_slice() == FORMAT_KEY));
    row.map_or(Ok(0), |(_, value)| postcard::from_bytes(value))
}

/// The value of the format row, once the wallet exists (`WalletCreated` writes it with the
/// identity).
fn format_value(state: &WalletState) -> Result<Option<Vec<u8>>, postcard::Error> {
    state
        .identity
        .as_ref()
        .map(|_| postcard::to_allocvec(&TABLES_FORMAT))
        .transpose()
}

/// Where a row lives and what it holds: `value` is `None` when the row is absent.
struct RowBytes {
    table: BytesTable,
    key: Vec<u8>,
    value: Option<Vec<u8>>,
}

/// The table, key and (if the row exists) value of `row` in `state`.
fn row_bytes(state: &WalletState, row: Row) -> Result<RowBytes, postcard::Error> {
    fn enc<T: Serialize>(v: Option<&T>) -> Result<Option<Vec<u8>>, postcard::Error> {
        v.map(postcard::to_allocvec).transpose()
    }
    let (table, key, value) = match row {
        Row::Identity => (PROFILE, b"identity".to_vec(), enc(state.identity.as_ref())?),
        Row::Account => (PROFILE, b"account".to_vec(), enc(state.account.as_ref())?),
        Row::Registration => (
            PROFILE,
            b"registration".to_vec(),
            enc(state.registered.as_ref())?,
        ),
        Row::Peer(uid) => (
            PEERS,
            uid.as_bytes().to_vec(),
            state.peers.get(&uid).cloned(),
        ),
        Row::Scrip(producer) => (
            SCRIP,
            producer.as_bytes().to_vec(),
            enc(state.scrip.get(&producer))?,
        ),
        Row::Pending(tx, label) => {
            let mut key = tx.as_bytes().to_vec();
            key.push(label.code());
            (PENDING, key, enc(state.pending.get(&(tx, label)))?)
        }
        Row::History(seq) => (
            HISTORY,
            seq.to_be_bytes().to_vec(),
            enc(state.history.get(&seq))?,
        ),
        Row::Name(uid) => (NAMES, uid.as_bytes().to_vec(), enc(state.names.get(&uid))?),
    };
    Ok(RowBytes { table, key, value })
}

/// Every row `state` holds.
fn all_rows(state: &WalletState) -> Vec<Row> {
    let mut rows = vec![Row::Identity, Row::Account, Row::Registration];
    rows.extend(state.peers.keys().map(|u| Row::Peer(*u)));
    rows.extend(state.scrip.keys().map(|u| Row::Scrip(*u)));
    rows.extend(state.pending.keys().map(|(t, l)| Row::Pending(*t, *l)));
    rows.extend(state.history.keys().map(|s| Row::History(*s)));
    rows.extend(state.names.keys().map(|u| Row::Name(*u)));
    rows
}

/// The tables `state` projects to, as [`shared::events::dump_projection`] reads them.
pub fn expected_dump(state: &WalletState) -> Result<ProjectionDump, postcard::Error> {
    let mut dump = ProjectionDump::new();
    for table in [PROFILE, PEERS, SCRIP, PENDING, HISTORY, NAMES] {
        dump.insert(redb::TableHandle::name(&table).to_owned(), Rows::new());
    }
    for row in all_rows(state) {
        let RowBytes { table, key, value } = row_bytes(state, row)?;
        if let (Some(value), Some(rows)) = (value, dump.get_mut(redb::TableHandle::name(&table))) {
            rows.push((key, value));
        }
    }
    if let (Some(value), Some(rows)) = (
        format_value(state)?,
        dump.get_mut(redb::TableHandle::name(&PROFILE)),
    ) {
        rows.push((FORMAT_KEY.to_vec(), value));
    }
    for rows in dump.values_mut() {
        rows.sort();
    }
    Ok(dump)
}

/// The wallet's [`Projection`]: folds each event into its [`WalletState`] with
/// [`WalletState::apply`] and writes the rows that changed. Live appends fold into a copy
/// of the wallet's state, which replaces the state only once the commit succeeded.
#[derive(Debug, Default)]
pub struct WalletProjection {
    state: RefCell<WalletState>,
}

impl WalletProjection {
    /// A projection that continues from `state`.
    #[must_use]
    pub fn from_state(state: WalletState) -> Self {
        WalletProjection {
            state: RefCell::new(state),
        }
    }

    /// The state after the events folded so far.
    #[must_use]
    pub fn into_state(self) -> WalletState {
        self.state.into_inner()
    }
}

impl Projection<WalletEvent> for WalletProjection {
    fn tables(&self) -> Vec<&dyn ProjectionTable> {
        vec![&PROFILE, &PEERS, &SCRIP, &PENDING, &HISTORY, &NAMES]
    }

    fn apply(
        &self,
        txn: &WriteTransaction,
        event: &Event<WalletEvent>,
    ) -> Result<(), ProjectionError> {
        let mut state = self.state.borrow_mut();
        let rows = state
            .apply(event)
            .map_err(|e| ProjectionError::Invariant(e.to_string()))?;
        if rows.contains(&Row::Identity)
            && let Some(value) =
                format_value(&state).map_err(|e| ProjectionError::Other(Box::new(e)))?
        {
            txn.open_table(PROFILE)?
                .insert(FORMAT_KEY, value.as_slice())?;
        }
        for row in rows {
            let RowBytes { table, key, value } =
                row_bytes(&state, row).map_err(|e| ProjectionError::Other(Box::new(e)))?;
            let mut table = txn.open_table(table)?;
            match value {
                Some(value) => {
                    table.insert(key.as_slice(), value.as_slice())?;
                }
                None => {
                    table.remove(key.as_slice())?;
                }
            }
        }
        Ok(())
    }
}
