//! The merchant's live view for its operator (README "Operate it"): its sales, its latest
//! orders, its live VendorScrip, the reports and requests it owes the broker, and the scrip
//! due to lapse. A pure function of the state, the configuration and the clock, like the
//! broker's (`broker::core::status`), and bounded the same way: counts and totals, and at
//! most [`MAX_LISTED`] orders.

use serde::{Deserialize, Serialize};
use shared::node::ScripState;
use shared::{Balance, Moment, Money, UnixSecs};

use super::state::Awaiting;
use super::{Config, State};

/// The most orders listed.
pub const MAX_LISTED: usize = 20;

/// The merchant's live view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantStatus {
    /// The merchant's UID.
    pub uid: String,
    /// Its display name (docs/adr/0016), if configured.
    pub name: Option<String>,
    /// The broker it serves under.
    pub broker: String,
    /// The deployment's suite.
    pub suite: String,
    /// When the view was taken.
    pub at: Moment,
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

/// The VendorScrip books.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BooksView {
    /// Value issued (6.2, 6.5).
    pub issued: Money,
    /// Value paid for goods (6.3).
    pub paid: Money,
    /// Value withdrawn (6.7) or lapsed (section 4).
    pub withdrawn: Money,
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
    /// `W_P`.
    pub paid: Money,
    /// When it was recorded.
    pub at: Moment,
}

/// The live VendorScrip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveView {
    /// Scrip in the table.
    pub count: usize,
    /// Of which held by an escrow (6.5, 6.7).
    pub held: usize,
    /// Their value.
    pub value: Money,
    /// Live, unheld scrip whose renewal grace has ended: the next run of the timer lapses
    /// them back to their owners' bank accounts (section 4).
    pub due_to_lapse: usize,
}

/// The merchant's open duties towards the broker.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PendingView {
    /// `PurchaseCompleted` reports not yet acknowledged (6.3 step 5).
    pub reports: usize,
    /// Their value.
    pub reports_value: Money,
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
    let mut orders: Vec<_> = t.orders.iter().collect();
    orders.sort_by(|(a_tx, a), (b_tx, b)| {
        b.receipt
            .issued_at
            .cmp(&a.receipt.issued_at)
            .then_with(|| a_tx.cmp(b_tx))
    });
    let orders = orders
        .into_iter()
        .take(MAX_LISTED)
        .map(|(tx, o)| OrderView {
            tx: tx.to_string(),
            customer: o.customer.to_string(),
            item_id: o.order.item_id.clone(),
            quantity: o.order.quantity,
            paid: Money::from(o.receipt.paid),
            at: Moment::at(UnixSecs::new(o.receipt.issued_at)),
        })
        .collect();
    let mut live = LiveView {
        count: t.live.len(),
        held: 0,
        value: Money::from(Balance::of_sum(t.live.value())),
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
        reports_value: Money::from(Balance::of_sum(
            t.unreported
                .values()
                .map(|u| u128::from(u.value.minor()))
                .sum(),
        )),
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
        name: config.name.as_ref().map(|n| n.as_str().to_owned()),
        broker: config.broker.to_string(),
        suite: config.mint.suite().to_string(),
        at: Moment::at(UnixSecs::new(now)),
        head,
        serving,
        books: BooksView {
            issued: Money::from(t.books.issued),
            paid: Money::from(t.books.paid),
            withdrawn: Money::from(t.books.withdrawn),
        },
        sales: t.orders.len(),
        orders,
        live_scrip: live,
        pending,
    }
}
