//! The merchant's live view for its operator (README "Operate it"): its sales, its latest
//! orders, its live VendorScrip, the reports and requests it owes the broker, and the scrip
//! due to lapse. A pure function of the state, the configuration and the clock, like the
//! broker's (`broker::core::status`), and bounded the same way: counts and totals, and at
//! most [`MAX_LISTED`] orders.

use serde::{Deserialize, Serialize};
use shared::node::ScripState;

use super::state::Awaiting;
use super::{Config, State};

/// The most orders listed.
pub const MAX_LISTED: usize = 20;

/// The merchant's live view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantStatus {
    /// The merchant's UID.
    pub uid: String,
    /// The broker it serves under.
    pub broker: String,
    /// The deployment's suite.
    pub suite: String,
    /// When the view was taken, unix seconds.
    pub at: u64,
    /// The seq of the last event in the log.
    pub head: u64,
    /// Whether the merchant serves (`false` while it cannot write its log, section 10).
    pub serving: bool,
    /// The VendorScrip books (`issued = live + paid + withdrawn`).
    pub books: BooksView,
    /// Sales recorded (6.3).
    pub sales: usize,
    /// The latest orders, newest first.
    pub orders: Vec<OrderView>,
    /// The live table (section 4).
    pub live_scrip: LiveView,
    /// What the merchant owes the broker (section 7: sent until answered).
    pub pending: PendingView,
}

/// The VendorScrip books, minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksView {
    /// Value issued (6.2, 6.5).
    pub issued: u64,
    /// Value paid for goods (6.3).
    pub paid: u64,
    /// Value withdrawn (6.7) or lapsed (section 4).
    pub withdrawn: u64,
}

/// One recorded order.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderView {
    /// Its tx.
    pub tx: String,
    /// `UID_C`.
    pub customer: String,
    /// The catalogue's item id.
    pub item_id: String,
    /// How many.
    pub quantity: u64,
    /// `W_P`, minor units.
    pub paid: u64,
    /// When it was recorded, unix seconds.
    pub at: u64,
}

/// The live VendorScrip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveView {
    /// Scrip in the table.
    pub count: usize,
    /// Of which held by an escrow (6.5, 6.7).
    pub held: usize,
    /// Their value, minor units.
    pub value: u128,
    /// Live, unheld scrip whose renewal grace has ended: the next run of the timer lapses
    /// them back to their owners' bank accounts (section 4).
    pub due_to_lapse: usize,
}

/// The merchant's open duties towards the broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingView {
    /// `PurchaseCompleted` reports not yet acknowledged (6.3 step 5).
    pub reports: usize,
    /// Their value, minor units.
    pub reports_value: u128,
    /// 6.2 exchanges awaiting the broker's authorization.
    pub exchanges: usize,
    /// 6.5 top-ups awaiting the broker's settlement.
    pub top_ups: usize,
    /// 6.7 withdrawals awaiting the broker's redemption.
    pub withdrawals: usize,
    /// Lapse notices not yet acknowledged (section 4).
    pub lapses: usize,
}

/// The view of `state` under `config` at `now` (see the module doc).
#[must_use]
pub fn status(
    state: &State,
    config: &Config,
    now: u64,
    head: u64,
    serving: bool,
) -> MerchantStatus {
    let t = &state.tables;
    let mut orders: Vec<OrderView> = t
        .orders
        .iter()
        .map(|(tx, o)| OrderView {
            tx: tx.to_string(),
            customer: o.customer.to_string(),
            item_id: o.order.item_id.clone(),
            quantity: o.order.quantity,
            paid: o.receipt.paid.minor(),
            at: o.receipt.issued_at,
        })
        .collect();
    orders.sort_by(|a, b| b.at.cmp(&a.at).then_with(|| a.tx.cmp(&b.tx)));
    orders.truncate(MAX_LISTED);
    let mut live = LiveView {
        count: t.live.len(),
        held: 0,
        value: t.live.value(),
        due_to_lapse: 0,
    };
    for (_, record) in t.live.iter() {
        match record.state {
            ScripState::Held { .. } => live.held += 1,
            ScripState::Live => {
                if now
                    > record
                        .body
                        .expires
                        .saturating_add(config.renewal_grace_secs)
                {
                    live.due_to_lapse += 1;
                }
            }
        }
    }
    let mut pending = PendingView {
        reports: t.unreported.len(),
        reports_value: t
            .unreported
            .values()
            .map(|u| u128::from(u.value.minor()))
            .sum(),
        exchanges: 0,
        top_ups: 0,
        withdrawals: 0,
        lapses: 0,
    };
    for awaiting in t.awaiting.values() {
        match awaiting {
            Awaiting::Exchange { .. } => pending.exchanges += 1,
            Awaiting::TopUp { .. } => pending.top_ups += 1,
            Awaiting::Withdraw { .. } => pending.withdrawals += 1,
            Awaiting::Lapse { .. } => pending.lapses += 1,
        }
    }
    MerchantStatus {
        uid: config.mint.producer().to_string(),
        broker: config.broker.to_string(),
        suite: config.mint.suite().to_string(),
        at: now,
        head,
        serving,
        books: BooksView {
            issued: t.books.issued.minor(),
            paid: t.books.paid.minor(),
            withdrawn: t.books.withdrawn.minor(),
        },
        sales: t.orders.len(),
        orders,
        live_scrip: live,
        pending,
    }
}
