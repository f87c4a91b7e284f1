//! The broker's redb tables beside its log (protocol.md section 8; architecture.md,
//! "Storage").
//!
//! Projection tables mirror [`State`] row by row: key and value are the postcard encodings
//! of the state's key and value. [`LiveProjection`] folds each appended event into the
//! in-memory state with [`State::apply`] and rewrites exactly the rows it touched, inside
//! the log's write transaction, so the tables change in the same commit as the events.
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
use shared::events::{Projection, ProjectionDump, ProjectionError, ProjectionTable};
use shared::ids::{AccountId, Pan};
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
/// ScripId → [`shared::node::LiveRecord`].
pub static LIVE_SCRIP: Rows = TableDefinition::new("broker_live_scrip");
/// TxId → [`crate::core::Exchange`] (6.2).
pub static EXCHANGES: Rows = TableDefinition::new("broker_exchanges");
/// TxId → [`crate::core::Purchase`] (6.3).
pub static PURCHASES: Rows = TableDefinition::new("broker_purchases");
/// TxId → [`crate::core::Withdrawal`] (6.7).
pub static WITHDRAWALS: Rows = TableDefinition::new("broker_withdrawals");
/// TxId → [`crate::core::Escrow`] (6.5).
pub static ESCROWS: Rows = TableDefinition::new("broker_escrows");
/// (merchant, scrip id) → `()`: VendorScrip whose lapse was recorded (section 4).
pub static VENDOR_LAPSED: Rows = TableDefinition::new("broker_vendor_lapsed");
/// (sender, tx, label) → [`shared::node::StoredReply`].
pub static REPLIES: Rows = TableDefinition::new("broker_replies");
/// (tx, recipient) → the frames sent, in order.
pub static OUTBOX: Rows = TableDefinition::new("broker_outbox");
/// TxId → [`shared::node::TxBinding`].
pub static BINDINGS: Rows = TableDefinition::new("broker_bindings");
/// PAN → ID: the secrets table (not a projection, see the module doc).
pub static ACCOUNT_IDS: Rows = TableDefinition::new("broker_account_ids");

/// Every projection table, in a fixed order.
fn tables() -> Vec<&'static dyn ProjectionTable> {
    vec![
        &ACCOUNTS,
        &MEMOS,
        &PANS,
        &PEERS,
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
    for k in &touched.scrip {
        c.insert(enc(k)?, state.live.get(k).map(enc).transpose()?);
    }
    changes.push((&LIVE_SCRIP, std::mem::take(&mut c)));
    for k in &touched.exchanges {
        c.insert(enc(k)?, state.exchanges.get(k).map(enc).transpose()?);
    }
    changes.push((&EXCHANGES, std::mem::take(&mut c)));
    for k in &touched.purchases {
        c.insert(enc(k)?, state.purchases.get(k).map(enc).transpose()?);
    }
    changes.push((&PURCHASES, std::mem::take(&mut c)));
    for k in &touched.withdrawals {
        c.insert(enc(k)?, state.withdrawals.get(k).map(enc).transpose()?);
    }
    changes.push((&WITHDRAWALS, std::mem::take(&mut c)));
    for k in &touched.escrows {
        c.insert(enc(k)?, state.escrows.get(k).map(enc).transpose()?);
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
        c.insert(enc(k)?, state.replies.get(k).map(enc).transpose()?);
    }
    changes.push((&REPLIES, std::mem::take(&mut c)));
    for (tx, to) in &touched.outbox {
        let frames = state.outbox.frames(tx, to);
        let value = if frames.is_empty() {
            None
        } else {
            Some(enc(frames)?)
        };
        c.insert(enc(&(tx, to))?, value);
    }
    changes.push((&OUTBOX, std::mem::take(&mut c)));
    for k in &touched.bindings {
        c.insert(enc(k)?, state.bindings.get(k).map(enc).transpose()?);
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
    fn rows<K: Serialize, V: Serialize + ?Sized>(
        out: &mut ProjectionDump,
        def: &Rows,
        items: impl Iterator<Item = (K, Box<V>)>,
    ) -> Result<(), ProjectionError> {
        let mut sorted = BTreeMap::new();
        for (k, v) in items {
            sorted.insert(enc(&k)?, enc(&*v)?);
        }
        out.insert(
            redb::TableHandle::name(def).to_owned(),
            sorted.into_iter().collect(),
        );
        Ok(())
    }
    if let Some(illegal) = state.halted() {
        return Err(ProjectionError::Invariant(illegal.to_string()));
    }
    let mut out = ProjectionDump::new();
    rows(
        &mut out,
        &ACCOUNTS,
        state.accounts.iter().map(|(k, v)| (k, Box::new(*v))),
    )?;
    rows(
        &mut out,
        &MEMOS,
        state.memos.iter().map(|(k, v)| (k, Box::new(*v))),
    )?;
    rows(
        &mut out,
        &PANS,
        state.pans.iter().map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    rows(
        &mut out,
        &PEERS,
        state.peers.iter().map(|(k, p)| {
            (
                k,
                Box::new((p.public_key.spki_der().to_vec(), p.pan.clone())),
            )
        }),
    )?;
    rows(
        &mut out,
        &LIVE_SCRIP,
        state.live.iter().map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    rows(
        &mut out,
        &EXCHANGES,
        state
            .exchanges
            .iter()
            .map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    rows(
        &mut out,
        &VENDOR_LAPSED,
        state.vendor_lapsed.iter().map(|k| (k, Box::new(()))),
    )?;
    rows(
        &mut out,
        &WITHDRAWALS,
        state
            .withdrawals
            .iter()
            .map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    rows(
        &mut out,
        &ESCROWS,
        state.escrows.iter().map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    rows(
        &mut out,
        &PURCHASES,
        state
            .purchases
            .iter()
            .map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    rows(
        &mut out,
        &REPLIES,
        state.replies.iter().map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    rows(
        &mut out,
        &OUTBOX,
        state.outbox.iter().map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    rows(
        &mut out,
        &BINDINGS,
        state.bindings.iter().map(|(k, v)| (k, Box::new(v.clone()))),
    )?;
    Ok(out)
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
