//! The merchant's redb projection tables (protocol.md section 8; architecture.md,
//! "Storage"): the core's [`Tables`] mirrored row by row in the node's redb file, written in
//! the same write transaction as the events that change them.
//!
//! How: [`Mirror`] is the [`Projection`] of the merchant's log. It owns a [`State`] and
//! folds each event with the core's own [`State::try_apply`], which reports the rows it touched;
//! the mirror then writes those rows' new values (or removes them). So the tables cannot
//! say something the core's fold does not, and replay (`replay_into` a fresh file) runs the
//! very same code. [`rows_of`] encodes a whole in-memory state the same way, so a reopened
//! node checks that the state rebuilt from the log equals the tables on disk.
//!
//! Every key is fixed-width raw bytes (ids are 16 bytes), so redb's byte order is the
//! order of the in-memory maps; values are postcard.

use std::cell::RefCell;
use std::collections::BTreeMap;

use redb::{TableDefinition, WriteTransaction};
use serde::Serialize;
use shared::events::{Event, Projection, ProjectionDump, ProjectionError, ProjectionTable, Rows};
use shared::node::{Recorded, ReplyKey};
use shared::{TxId, Uid};

use crate::core::events::Kind;
use crate::core::state::{State, Touched};

type Table = TableDefinition<'static, &'static [u8], &'static [u8]>;

/// Live VendorScrip: scrip id → `LiveRecord` (section 4's lookup table).
pub const LIVE: Table = TableDefinition::new("merchant_live");
/// Stored replies: sender ‖ tx ‖ label code → `StoredReply` (section 7).
pub const REPLIES: Table = TableDefinition::new("merchant_replies");
/// Tx bindings: tx → `TxBinding` (section 7).
pub const BINDINGS: Table = TableDefinition::new("merchant_bindings");
/// Outbox: tx ‖ recipient → the frames sent, in order (section 7).
pub const OUTBOX: Table = TableDefinition::new("merchant_outbox");
/// Orders: tx → `Order` (6.3).
pub const ORDERS: Table = TableDefinition::new("merchant_orders");
/// Reports owed to the broker: tx → `Unreported` (6.3 step 5).
pub const UNREPORTED: Table = TableDefinition::new("merchant_unreported");
/// The VendorScrip books: one row, [`BOOKS_KEY`] → `Books`.
pub const BOOKS: Table = TableDefinition::new("merchant_books");
/// Requests to the broker awaiting its decision: tx → `Awaiting` (6.2, 6.5, 6.7).
pub const AWAITING: Table = TableDefinition::new("merchant_awaiting");
/// The key of the one row of [`BOOKS`].
pub const BOOKS_KEY: &[u8] = b"books";

/// Every table, in the order [`Mirror`] lists them.
const TABLES: [Table; 8] = [
    LIVE, REPLIES, BINDINGS, OUTBOX, ORDERS, UNREPORTED, BOOKS, AWAITING,
];

/// The projection of the merchant's log: a [`State`] folded event by event, its touched
/// rows written to the tables.
#[derive(Debug)]
pub struct Mirror {
    state: RefCell<State>,
    /// The rows the events touched, when they are written later, once per batch
    /// ([`write_rows`] at the group's flush); `None`: written at each event.
    staged: Option<RefCell<Touched>>,
}

impl Mirror {
    /// A mirror that continues from `state` (live appends) or from an empty state with the
    /// same peers (replay), writing each event's rows as it goes.
    #[must_use]
    pub fn new(state: State) -> Mirror {
        Mirror {
            state: RefCell::new(state),
            staged: None,
        }
    }

    /// A mirror that continues from `state` and adds the rows each event touched to
    /// `staged`, writing none: the node writes them once per batch with [`write_rows`],
    /// in the same group commit.
    #[must_use]
    pub fn staging(state: State, staged: Touched) -> Mirror {
        Mirror {
            state: RefCell::new(state),
            staged: Some(RefCell::new(staged)),
        }
    }

    /// The state after the events folded so far.
    #[must_use]
    pub fn into_state(self) -> State {
        self.state.into_inner()
    }

    /// The state after the events folded so far, and the rows staged (none unless
    /// [`Mirror::staging`]).
    #[must_use]
    pub fn into_parts(self) -> (State, Touched) {
        (
            self.state.into_inner(),
            self.staged.map(RefCell::into_inner).unwrap_or_default(),
        )
    }
}

impl Projection<Recorded<Kind>> for Mirror {
    fn tables(&self) -> Vec<&dyn ProjectionTable> {
        TABLES.iter().map(|t| t as &dyn ProjectionTable).collect()
    }

    fn apply(
        &self,
        txn: &WriteTransaction,
        event: &Event<Recorded<Kind>>,
    ) -> Result<(), ProjectionError> {
        let mut state = self.state.borrow_mut();
        // An event that is no legal move of its transaction, or after which the books do
        // not balance, is never written: the group fails, nothing of its batch is
        // committed, and the node reloads its state from the log (section 10).
        let touched = state
            .try_apply(event)
            .map_err(|illegal| ProjectionError::Invariant(illegal.to_string()))?;
        state
            .check_books()
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

/// Writes the new value of every row in `touched` as `state` holds it now (or removes it
/// when it is gone): after an event, or once for a whole batch's staged rows. Only the
/// tables with a touched row are opened.
///
/// # Errors
/// The table writes'.
pub fn write_rows(
    txn: &WriteTransaction,
    state: &State,
    touched: &Touched,
) -> Result<(), ProjectionError> {
    let t = &state.tables;
    if !touched.live.is_empty() {
        let mut live = txn.open_table(LIVE)?;
        for id in &touched.live {
            put(&mut live, id.as_bytes(), t.live.get(id))?;
        }
    }
    if !touched.replies.is_empty() {
        let mut replies = txn.open_table(REPLIES)?;
        for key in &touched.replies {
            put(&mut replies, &reply_key(key), t.replies.get(key))?;
        }
    }
    if !touched.bindings.is_empty() {
        let mut bindings = txn.open_table(BINDINGS)?;
        for tx in &touched.bindings {
            put(&mut bindings, tx.as_bytes(), t.bindings.get(tx))?;
        }
    }
    if !touched.outbox.is_empty() {
        let mut outbox = txn.open_table(OUTBOX)?;
        for (tx, to) in &touched.outbox {
            let frames = t.outbox.frames(tx, to);
            put(
                &mut outbox,
                &outbox_key(tx, to),
                (!frames.is_empty()).then_some(&frames),
            )?;
        }
    }
    if !touched.orders.is_empty() {
        let mut orders = txn.open_table(ORDERS)?;
        for tx in &touched.orders {
            put(&mut orders, tx.as_bytes(), t.orders.get(tx))?;
        }
    }
    if !touched.unreported.is_empty() {
        let mut unreported = txn.open_table(UNREPORTED)?;
        for tx in &touched.unreported {
            put(&mut unreported, tx.as_bytes(), t.unreported.get(tx))?;
        }
    }
    if touched.books {
        let mut books = txn.open_table(BOOKS)?;
        put(&mut books, BOOKS_KEY, Some(&t.books))?;
    }
    if !touched.awaiting.is_empty() {
        let mut awaiting = txn.open_table(AWAITING)?;
        for tx in &touched.awaiting {
            put(&mut awaiting, tx.as_bytes(), t.awaiting.get(tx))?;
        }
    }
    Ok(())
}

/// Writes `value` under `key`, or removes `key` when `value` is `None`.
fn put<T: Serialize>(
    table: &mut redb::Table<'_, &'static [u8], &'static [u8]>,
    key: &[u8],
    value: Option<&T>,
) -> Result<(), ProjectionError> {
    match value {
        Some(v) => {
            table.insert(key, encode(v)?.as_slice())?;
        }
        None => {
            table.remove(key)?;
        }
    }
    Ok(())
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ProjectionError> {
    postcard::to_allocvec(value).map_err(|e| ProjectionError::Other(Box::new(e)))
}

/// `sender (16) ‖ tx (16) ‖ label code (1)`.
fn reply_key(key: &ReplyKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(33);
    out.extend_from_slice(key.sender.as_bytes());
    out.extend_from_slice(key.tx.as_bytes());
    out.push(key.label.code());
    out
}

/// `tx (16) ‖ recipient (16)`.
fn outbox_key(tx: &TxId, to: &Uid) -> Vec<u8> {
    let mut out = Vec::with_capacity(32);
    out.extend_from_slice(tx.as_bytes());
    out.extend_from_slice(to.as_bytes());
    out
}

/// The rows the tables hold for `state`, encoded exactly as [`Mirror`] writes them, in
/// redb's key order: compared with the file's dump when a node reopens. A state whose
/// replay met an event that is no legal move ([`State::halted`]) has no rows that the log
/// justifies: refused with that event.
pub fn rows_of(state: &State) -> Result<ProjectionDump, ProjectionError> {
    if let Some(illegal) = state.halted() {
        return Err(ProjectionError::Invariant(illegal.to_string()));
    }
    let t = &state.tables;
    let mut dump = ProjectionDump::new();
    let mut table = |def: Table, rows: Result<BTreeMap<Vec<u8>, Vec<u8>>, ProjectionError>| {
        rows.map(|rows| {
            dump.insert(
                redb::TableHandle::name(&def).to_owned(),
                rows.into_iter().collect::<Rows>(),
            );
        })
    };
    table(
        LIVE,
        t.live
            .iter()
            .map(|(id, r)| Ok((id.as_bytes().to_vec(), encode(r)?)))
            .collect(),
    )?;
    table(
        REPLIES,
        t.replies
            .iter()
            .map(|(k, r)| Ok((reply_key(k), encode(r)?)))
            .collect(),
    )?;
    table(
        BINDINGS,
        t.bindings
            .iter()
            .map(|(tx, b)| Ok((tx.as_bytes().to_vec(), encode(b)?)))
            .collect(),
    )?;
    table(
        OUTBOX,
        t.outbox
            .iter()
            .map(|((tx, to), frames)| Ok((outbox_key(tx, to), encode(frames)?)))
            .collect(),
    )?;
    table(
        ORDERS,
        t.orders
            .iter()
            .map(|(tx, o)| Ok((tx.as_bytes().to_vec(), encode(o)?)))
            .collect(),
    )?;
    table(
        UNREPORTED,
        t.unreported
            .iter()
            .map(|(tx, u)| Ok((tx.as_bytes().to_vec(), encode(u)?)))
            .collect(),
    )?;
    let books = if t.books == Default::default() {
        Ok(BTreeMap::new())
    } else {
        encode(&t.books).map(|b| BTreeMap::from([(BOOKS_KEY.to_vec(), b)]))
    };
    table(BOOKS, books)?;
    table(
        AWAITING,
        t.awaiting
            .iter()
            .map(|(tx, a)| Ok((tx.as_bytes().to_vec(), encode(a)?)))
            .collect(),
    )?;
    Ok(dump)
}
