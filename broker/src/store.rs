//! The broker's redb tables beside its log (protocol.md section 8; architecture.md,
//! "Storage").
//!
//! Projection tables mirror [`State`] row by row: key and value are the postcard encodings
//! of the state's key and value, except that a transaction's rows (exchanges, purchases,
//! withdrawals, escrows, replies, outbox, bindings) are keyed first by the seq of the
//! transaction's first event ([`tx_row_key`], docs/adr/0015), so that new rows are
//! appended in log order. [`LiveProjection`] folds each appended event into the in-memory
//! state with [`State::apply`] and rewrites exactly the rows it touched, inside the log's
//! write transaction, so the tables change in the same commit as the events.
//! [`render`] writes the whole state as rows, for comparing it with the tables byte for byte
//! (at reopen and in tests).
//!
//! The secrets table `broker_account_ids` (PAN → ID) is not a projection: the log holds
//! only each ID's commitment, so it is written beside the `AccountOpened` event
//! (`EventLog::append_with`) and never rebuilt.

use std::cell::RefCell;
use std::collections::BTreeMap;

use redb::{ReadTransaction, ReadableTable, TableDefinition, TableError, WriteTransaction};
use serde::Serialize;

use shared::SecretBytes;
use shared::Suite;
use shared::events::{
    EventLog, LogError, Projection, ProjectionDump, ProjectionError, ProjectionTable,
};
use shared::ids::{AccountId, Pan, TxId};
use shared::node::Recorded;

use crate::core::{AccountIds, BrokerEvent, Kind, State, Touched};

type Rows = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// `Account` → balance (i128).
pub static ACCOUNTS: Rows = TableDefinition::new("broker_accounts");
/// Merchant UID → memo `float:vendor` (i128).
pub static MEMOS: Rows = TableDefinition::new("broker_memos");
/// PAN → [`crate::core::PanRecord`].
pub static PANS: Rows = TableDefinition::new("broker_pans");
/// UID → (SPKI DER, PAN).
pub static PEERS: Rows = TableDefinition::new("broker_peers");
/// UID → [`crate::core::Naming`]: the names peers gave themselves (docs/adr/0016). A file
/// written before this table has no `MerchantNamed` event, so its missing table is the
/// empty projection it should be: no layout change.
pub static NAMES: Rows = TableDefinition::new("broker_names");
/// ScripId → [`shared::node::LiveRecord`].
pub static LIVE_SCRIP: Rows = TableDefinition::new("broker_live_scrip");
/// (first seq, TxId) → [`crate::core::Exchange`] (6.2).
pub static EXCHANGES: Rows = TableDefinition::new("broker_exchanges");
/// (first seq, TxId) → [`crate::core::Purchase`] (6.3).
pub static PURCHASES: Rows = TableDefinition::new("broker_purchases");
/// (first seq, TxId) → [`crate::core::Withdrawal`] (6.7).
pub static WITHDRAWALS: Rows = TableDefinition::new("broker_withdrawals");
/// (first seq, TxId) → [`crate::core::Escrow`] (6.5).
pub static ESCROWS: Rows = TableDefinition::new("broker_escrows");
/// (merchant, scrip id) → `()`: VendorScrip whose lapse was recorded (section 4).
pub static VENDOR_LAPSED: Rows = TableDefinition::new("broker_vendor_lapsed");
/// (first seq of tx, (sender, tx, label)) → [`shared::node::StoredReply`].
pub static REPLIES: Rows = TableDefinition::new("broker_replies");
/// (first seq of tx, (tx, recipient)) → the frames sent, in order.
pub static OUTBOX: Rows = TableDefinition::new("broker_outbox");
/// (first seq, TxId) → [`shared::node::TxBinding`].
pub static BINDINGS: Rows = TableDefinition::new("broker_bindings");
/// PAN → ID: the secrets table (not a projection, see the module doc).
pub static ACCOUNT_IDS: Rows = TableDefinition::new("broker_account_ids");
/// `projection` → the layout of the projection tables (u32 big-endian): not a projection,
/// written with the tables' rebuild ([`settle_layout`]).
pub static LAYOUT: Rows = TableDefinition::new("broker_layout");
const LAYOUT_KEY: &[u8] = b"projection";

/// The layout of the projection tables this code writes and compares: 2 since a
/// transaction's rows are keyed by the seq of its first event ([`tx_row_key`]). A file with
/// no record has layout 1 (those rows keyed by their TxId), or no tables yet.
pub const PROJECTION_LAYOUT: u32 = 2;

/// Every projection table, in a fixed order.
fn tables() -> Vec<&'static dyn ProjectionTable> {
    vec![
        &ACCOUNTS,
        &MEMOS,
        &PANS,
        &PEERS,
        &NAMES,
        &LIVE_SCRIP,
        &EXCHANGES,
        &PURCHASES,
        &WITHDRAWALS,
        &ESCROWS,
        &VENDOR_LAPSED,
        &REPLIES,
        &OUTBOX,
        &BINDINGS,
    ]
}

fn enc<T: Serialize + ?Sized>(value: &T) -> Result<Vec<u8>, ProjectionError> {
    postcard::to_allocvec(value).map_err(|e| ProjectionError::Other(Box::new(e)))
}

/// The key of a row of transaction `tx`: the seq of its first event, 8 bytes big-endian
/// (so that redb's byte order is the log's), then `key` in postcard. A batch's new rows
/// then land at the end of each table, on a few pages, where keys drawn at random (a
/// TxId, a sender's UID) would each dirty a page of their own once the table outgrows a
/// batch, making every commit cost more the more transactions the broker has recorded.
/// A row's tx always has a first event: the rows are folded from the tx's own events.
///
/// # Errors
/// [`ProjectionError::Invariant`] for a row of a tx the state has no event of.
pub fn tx_row_key<K: Serialize + ?Sized>(
    state: &State,
    tx: &TxId,
    key: &K,
) -> Result<Vec<u8>, ProjectionError> {
    let seq = state.first_seq.get(tx).ok_or_else(|| {
        ProjectionError::Invariant(format!("a row of tx {tx}, which has no event"))
    })?;
    let mut bytes = seq.to_be_bytes().to_vec();
    bytes.extend(enc(key)?);
    Ok(bytes)
}

/// The projection that folds appended (or replayed) events into a state and its tables.
pub struct LiveProjection<'a> {
    state: RefCell<&'a mut State>,
    /// Where the rows each event touched go when they are written later, once per batch
    /// ([`write_rows`] at the group's flush); `None`: written at each event.
    staged: Option<RefCell<&'a mut Touched>>,
}

impl<'a> LiveProjection<'a> {
    /// Folds into `state` and writes each event's rows as it goes. If the append fails,
    /// `state` may be ahead of the file: the caller rebuilds it from the log.
    pub fn new(state: &'a mut State) -> LiveProjection<'a> {
        LiveProjection {
            state: RefCell::new(state),
            staged: None,
        }
    }

    /// Folds into `state` and adds the rows each event touched to `staged`, writing none:
    /// the node writes them once per batch with [`write_rows`], in the same group commit,
    /// so the tables still change in the commit of the events that justify them.
    pub fn staging(state: &'a mut State, staged: &'a mut Touched) -> LiveProjection<'a> {
        LiveProjection {
            state: RefCell::new(state),
            staged: Some(RefCell::new(staged)),
        }
    }
}

impl Projection<Recorded<Kind>> for LiveProjection<'_> {
    fn tables(&self) -> Vec<&dyn ProjectionTable> {
        tables()
    }

    fn apply(&self, txn: &WriteTransaction, event: &BrokerEvent) -> Result<(), ProjectionError> {
        let mut state = self.state.borrow_mut();
        // An event that is no legal move of its transaction, or that breaks the ledger
        // (section 5), is never written: the group fails, nothing of its batch is
        // committed, and the node reloads its state from the log (section 10).
        let touched = state
            .try_apply(event)
            .map_err(|illegal| ProjectionError::Invariant(illegal.to_string()))?;
        state
            .check_touched(&touched)
            .map_err(|e| ProjectionError::Invariant(format!("after event {}: {e}", event.seq)))?;
        match &self.staged {
            Some(staged) => {
                staged.borrow_mut().merge(touched);
                Ok(())
            }
            None => write_rows(txn, &state, &touched),
        }
    }
}

/// One table's rows keyed by encoded key: `Some(value)` to write, `None` to delete.
type Changes = BTreeMap<Vec<u8>, Option<Vec<u8>>>;

/// Writes the rows of `touched` as `state` holds them now (deleting those it no longer
/// holds): after an event, or once for a whole batch's staged keys.
///
/// # Errors
/// The table writes'.
pub fn write_rows(
    txn: &WriteTransaction,
    state: &State,
    touched: &Touched,
) -> Result<(), ProjectionError> {
    let mut changes: Vec<(&Rows, Changes)> = Vec::new();
    let mut c = Changes::new();
    for k in &touched.accounts {
        c.insert(enc(k)?, state.accounts.get(k).map(enc).transpose()?);
    }
    changes.push((&ACCOUNTS, std::mem::take(&mut c)));
    for k in &touched.memos {
        c.insert(enc(k)?, state.memos.get(k).map(enc).transpose()?);
    }
    changes.push((&MEMOS, std::mem::take(&mut c)));
    for k in &touched.pans {
        c.insert(enc(k)?, state.pans.get(k).map(enc).transpose()?);
    }
    changes.push((&PANS, std::mem::take(&mut c)));
    for k in &touched.peers {
        let value = state
            .peers
            .get(k)
            .map(|p| enc(&(p.public_key.spki_der(), &p.pan)))
            .transpose()?;
        c.insert(enc(k)?, value);
    }
    changes.push((&PEERS, std::mem::take(&mut c)));
    for k in &touched.names {
        c.insert(enc(k)?, state.names.get(k).map(enc).transpose()?);
    }
    changes.push((&NAMES, std::mem::take(&mut c)));
    for k in &touched.scrip {
        c.insert(enc(k)?, state.live.get(k).map(enc).transpose()?);
    }
    changes.push((&LIVE_SCRIP, std::mem::take(&mut c)));
    for k in &touched.exchanges {
        c.insert(
            tx_row_key(state, k, k)?,
            state.exchanges.get(k).map(enc).transpose()?,
        );
    }
    changes.push((&EXCHANGES, std::mem::take(&mut c)));
    for k in &touched.purchases {
        c.insert(
            tx_row_key(state, k, k)?,
            state.purchases.get(k).map(enc).transpose()?,
        );
    }
    changes.push((&PURCHASES, std::mem::take(&mut c)));
    for k in &touched.withdrawals {
        c.insert(
            tx_row_key(state, k, k)?,
            state.withdrawals.get(k).map(enc).transpose()?,
        );
    }
    changes.push((&WITHDRAWALS, std::mem::take(&mut c)));
    for k in &touched.escrows {
        c.insert(
            tx_row_key(state, k, k)?,
            state.escrows.get(k).map(enc).transpose()?,
        );
    }
    changes.push((&ESCROWS, std::mem::take(&mut c)));
    for k in &touched.vendor_lapsed {
        let value = state
            .vendor_lapsed
            .contains(k)
            .then(|| enc(&()))
            .transpose()?;
        c.insert(enc(k)?, value);
    }
    changes.push((&VENDOR_LAPSED, std::mem::take(&mut c)));
    for k in &touched.replies {
        c.insert(
            tx_row_key(state, &k.tx, k)?,
            state.replies.get(k).map(enc).transpose()?,
        );
    }
    changes.push((&REPLIES, std::mem::take(&mut c)));
    for (tx, to) in &touched.outbox {
        let frames = state.outbox.frames(tx, to);
        let value = if frames.is_empty() {
            None
        } else {
            Some(enc(frames)?)
        };
        c.insert(tx_row_key(state, tx, &(tx, to))?, value);
    }
    changes.push((&OUTBOX, std::mem::take(&mut c)));
    for k in &touched.bindings {
        c.insert(
            tx_row_key(state, k, k)?,
            state.bindings.get(k).map(enc).transpose()?,
        );
    }
    changes.push((&BINDINGS, c));

    for (def, rows) in changes {
        if rows.is_empty() {
            continue;
        }
        let mut table = txn.open_table(*def)?;
        for (key, value) in rows {
            match value {
                Some(v) => {
                    table.insert(key.as_slice(), v.as_slice())?;
                }
                None => {
                    table.remove(key.as_slice())?;
                }
            }
        }
    }
    Ok(())
}

/// The whole state as the rows its projection tables must hold, by table name, as
/// [`shared::events::dump_projection`] returns them (empty tables have no rows). A state
/// whose replay met an event that is no legal move ([`State::halted`]) has no rows that
/// the log justifies: refused with that event.
pub fn render(state: &State) -> Result<ProjectionDump, ProjectionError> {
    /// The rows of one table, sorted by encoded key as redb holds them.
    fn put(
        out: &mut ProjectionDump,
        def: &Rows,
        rows: impl Iterator<Item = Result<(Vec<u8>, Vec<u8>), ProjectionError>>,
    ) -> Result<(), ProjectionError> {
        let sorted = rows.collect::<Result<BTreeMap<_, _>, _>>()?;
        out.insert(
            redb::TableHandle::name(def).to_owned(),
            sorted.into_iter().collect(),
        );
        Ok(())
    }
    /// A row keyed by the state's key.
    fn row<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        key: &K,
        value: &V,
    ) -> Result<(Vec<u8>, Vec<u8>), ProjectionError> {
        Ok((enc(key)?, enc(value)?))
    }
    /// A row of transaction `tx` ([`tx_row_key`]).
    fn tx_row<K: Serialize + ?Sized, V: Serialize + ?Sized>(
        state: &State,
        tx: &TxId,
        key: &K,
        value: &V,
    ) -> Result<(Vec<u8>, Vec<u8>), ProjectionError> {
        Ok((tx_row_key(state, tx, key)?, enc(value)?))
    }
    if let Some(illegal) = state.halted() {
        return Err(ProjectionError::Invariant(illegal.to_string()));
    }
    let mut out = ProjectionDump::new();
    put(
        &mut out,
        &ACCOUNTS,
        state.accounts.iter().map(|(k, v)| row(k, v)),
    )?;
    put(&mut out, &MEMOS, state.memos.iter().map(|(k, v)| row(k, v)))?;
    put(&mut out, &PANS, state.pans.iter().map(|(k, v)| row(k, v)))?;
    put(
        &mut out,
        &PEERS,
        state
            .peers
            .iter()
            .map(|(k, p)| row(k, &(p.public_key.spki_der().to_vec(), p.pan.clone()))),
    )?;
    put(&mut out, &NAMES, state.names.iter().map(|(k, v)| row(k, v)))?;
    put(
        &mut out,
        &LIVE_SCRIP,
        state.live.iter().map(|(k, v)| row(k, v)),
    )?;
    put(
        &mut out,
        &VENDOR_LAPSED,
        state.vendor_lapsed.iter().map(|k| row(k, &())),
    )?;
    put(
        &mut out,
        &EXCHANGES,
        state.exchanges.iter().map(|(k, v)| tx_row(state, k, k, v)),
    )?;
    put(
        &mut out,
        &WITHDRAWALS,
        state
            .withdrawals
            .iter()
            .map(|(k, v)| tx_row(state, k, k, v)),
    )?;
    put(
        &mut out,
        &ESCROWS,
        state.escrows.iter().map(|(k, v)| tx_row(state, k, k, v)),
    )?;
    put(
        &mut out,
        &PURCHASES,
        state.purchases.iter().map(|(k, v)| tx_row(state, k, k, v)),
    )?;
    put(
        &mut out,
        &REPLIES,
        state
            .replies
            .iter()
            .map(|(k, v)| tx_row(state, &k.tx, k, v)),
    )?;
    put(
        &mut out,
        &OUTBOX,
        state.outbox.iter().map(|(k, v)| tx_row(state, &k.0, k, v)),
    )?;
    put(
        &mut out,
        &BINDINGS,
        state.bindings.iter().map(|(k, v)| tx_row(state, k, k, v)),
    )?;
    Ok(out)
}

/// Records that the projection tables have [`PROJECTION_LAYOUT`] (with their rebuild, or
/// in the first commit of a file built without the node, such as the bench's).
///
/// # Errors
/// The table write's.
pub fn write_layout(txn: &WriteTransaction) -> Result<(), ProjectionError> {
    let mut table = txn.open_table(LAYOUT)?;
    table.insert(LAYOUT_KEY, PROJECTION_LAYOUT.to_be_bytes().as_slice())?;
    Ok(())
}

/// The layout `txn`'s file records for its projection tables (1 when it records none).
///
/// # Errors
/// The table read's.
pub fn read_layout(txn: &ReadTransaction) -> Result<u32, ProjectionError> {
    let table = match txn.open_table(LAYOUT) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(1),
        Err(e) => return Err(e.into()),
    };
    Ok(table
        .get(LAYOUT_KEY)?
        .and_then(|v| <[u8; 4]>::try_from(v.value()).ok())
        .map_or(1, u32::from_be_bytes))
}

/// Brings a file's projection tables to [`PROJECTION_LAYOUT`] before the node checks them
/// against its replayed log: a file of another layout (written by an earlier version, or
/// new) has its tables rebuilt from the log (protocol.md section 8: they are the log's
/// projection, so the log alone rebuilds them) and the layout recorded, in one write
/// transaction. A file that records the current layout is left as it is, so tables that
/// disagree with their log are still found and refused at open. Returns whether it rebuilt.
///
/// # Errors
/// The log's: the chain did not verify, or an event did not fold.
pub fn settle_layout(log: &EventLog<Recorded<Kind>>, suite: Suite) -> Result<bool, LogError> {
    let layout = read_layout(&log.begin_read()?)
        .map_err(|source| LogError::Projection { seq: 0, source })?;
    if layout == PROJECTION_LAYOUT {
        return Ok(false);
    }
    let report =
        log.rebuild_projection_with(&LiveProjection::new(&mut State::new(suite)), write_layout)?;
    if report.events > 0 {
        tracing::info!(
            events = report.events,
            from = layout,
            to = PROJECTION_LAYOUT,
            "rebuilt the projection tables from the log in the current layout"
        );
    }
    Ok(true)
}

/// Writes the ID of `pan` to the secrets table, inside the commit of its `AccountOpened`.
pub fn write_account_id(
    txn: &WriteTransaction,
    pan: &Pan,
    id: &AccountId,
) -> Result<(), ProjectionError> {
    let mut table = txn.open_table(ACCOUNT_IDS)?;
    table.insert(enc(pan)?.as_slice(), id.expose())?;
    Ok(())
}

/// Every ID of the secrets table, from a read snapshot of the broker's file.
pub fn read_account_ids(txn: &ReadTransaction) -> Result<AccountIds, ProjectionError> {
    let mut ids = AccountIds::new();
    let table = match txn.open_table(ACCOUNT_IDS) {
        Ok(table) => table,
        Err(TableError::TableDoesNotExist(_)) => return Ok(ids),
        Err(e) => return Err(e.into()),
    };
    for row in table.iter()? {
        let (k, v) = row?;
        let pan: Pan =
            postcard::from_bytes(k.value()).map_err(|e| ProjectionError::Other(Box::new(e)))?;
        ids.insert(
            pan,
            AccountId::from_secret(SecretBytes::from_slice(v.value())),
        );
    }
    Ok(ids)
}
