//! The broker's live view for its operator (README "Operate it"): what `/status` serves
//! and `peerscrip-ops status` prints, read from the state while the broker runs (audit
//! needs it stopped). A pure function of the state and the clock, so it is the same on a
//! live node and on its replay.
//!
//! Bounded whatever the state (protocol.md section 10): counts and totals for everything,
//! and only the first [`MAX_LISTED`] rows of each list (the open transactions by deadline,
//! the merchants by UID), with how many there are in all. Account numbers (PANs) are not
//! shown: the view is for watching the float, not for reading the bank's ledger.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::events::Account;
use shared::node::ScripState;
use shared::{Balance, Moment, Money, Uid, UnixSecs};

use super::{EscrowState, ExchangeState, State};

/// The most rows of each list in the view.
pub const MAX_LISTED: usize = 100;

/// The broker's live view.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerStatus {
    /// The broker's UID.
    pub uid: String,
    /// The deployment's suite.
    pub suite: String,
    /// When the view was taken.
    pub at: Moment,
    /// The seq of the last event in the log.
    pub head: u64,
    /// Whether the broker serves (`false` while it cannot write its log, section 10).
    pub serving: bool,
    /// The accounts of section 5.
    pub accounts: Accounts,
    /// BrokerScrip in the live table (section 4).
    pub live_scrip: LiveScripView,
    /// Each merchant's `float:vendor` and memo (section 5), by UID.
    pub floats: Listed<MerchantFloat>,
    /// Open exchanges of 6.2, earliest deadline first.
    pub exchanges: Listed<OpenExchange>,
    /// Open escrows of 6.5, earliest deadline first.
    pub escrows: Listed<OpenEscrow>,
    /// Registered peers (6.0).
    pub peers: Peers,
}

/// Section 5's accounts, summed: amounts in minor units.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Accounts {
    /// Bank accounts opened (`bank:<PAN>`).
    pub bank_accounts: usize,
    /// Their balances, summed.
    pub bank_total: Money,
    /// `float:broker`: the value of all live BrokerScrip.
    pub float_broker: Money,
    /// Every `float:vendor:<M>`, summed.
    pub float_vendor_total: Money,
    /// `external`: minus the money that entered through the bank.
    pub external: Money,
}

/// The live table's size and value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveScripView {
    /// Scrip in the table.
    pub count: usize,
    /// Of which held by an escrow (6.5).
    pub held: usize,
    /// Their value (equals `float:broker`).
    pub value: Money,
}

/// A bounded list: its first rows and how many there are in all.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Listed<T> {
    /// How many in all.
    pub total: usize,
    /// The first [`MAX_LISTED`].
    pub rows: Vec<T>,
}

impl<T> Listed<T> {
    fn of(rows: impl IntoIterator<Item = T>) -> Listed<T> {
        let mut total = 0;
        let mut kept = Vec::new();
        for row in rows {
            total += 1;
            if kept.len() < MAX_LISTED {
                kept.push(row);
            }
        }
        Listed { total, rows: kept }
    }
}

/// One merchant's float and memo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantFloat {
    /// `UID_M`.
    pub merchant: String,
    /// `float:vendor:<M>`: what the broker paid M for VendorScrip not yet spent nor
    /// withdrawn.
    pub float: Money,
    /// `memo float:vendor:<M>` (section 5).
    pub memo: Money,
}

/// An exchange of 6.2 waiting for its decision.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenExchange {
    /// Its tx.
    pub tx: String,
    /// `UID_C`.
    pub customer: String,
    /// `UID_M`.
    pub merchant: String,
    /// The timer closes it then.
    pub deadline: Moment,
}

/// An escrow of 6.5 holding a BrokerScrip.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OpenEscrow {
    /// Its tx.
    pub tx: String,
    /// `UID_C`.
    pub customer: String,
    /// `UID_M`.
    pub merchant: String,
    /// `W_V`.
    pub top_up: Money,
    /// The timer releases it then.
    pub deadline: Moment,
}

/// The registered peers by kind.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Peers {
    /// Registered peers in all.
    pub total: usize,
    /// Those the broker knows as merchants: each has a vendor float or memo, opened by the
    /// first VendorScrip it was paid for.
    pub merchants: usize,
    /// The rest: customers, and merchants that have not sold yet.
    pub customers: usize,
}

/// A merchant's float and memo as the fold sums them.
#[derive(Default)]
struct Float {
    float: i128,
    memo: i128,
}

/// The view of `state` at `now` (see the module doc).
#[must_use]
pub fn status(state: &State, uid: &Uid, now: u64, head: u64, serving: bool) -> BrokerStatus {
    let now = UnixSecs::new(now);
    let (mut bank_accounts, mut bank_total, mut float_broker) = (0, 0_i128, 0_i128);
    let (mut float_vendor_total, mut external) = (0_i128, 0_i128);
    let mut floats = BTreeMap::<Uid, Float>::new();
    for (account, balance) in &state.accounts {
        match account {
            Account::Bank(_) => {
                bank_accounts += 1;
                bank_total = bank_total.saturating_add(*balance);
            }
            Account::FloatBroker => float_broker = *balance,
            Account::FloatVendor(merchant) => {
                float_vendor_total = float_vendor_total.saturating_add(*balance);
                floats.entry(*merchant).or_default().float = *balance;
            }
            Account::External => external = *balance,
        }
    }
    for (merchant, memo) in &state.memos {
        floats.entry(*merchant).or_default().memo = *memo;
    }
    let merchants = state
        .peers
        .keys()
        .filter(|uid| floats.contains_key(uid))
        .count();
    let held = state
        .live
        .iter()
        .filter(|(_, record)| matches!(record.state, ScripState::Held { .. }))
        .count();
    let mut exchanges: Vec<_> = state
        .exchanges
        .iter()
        .filter(|(_, e)| e.state == ExchangeState::Open)
        .collect();
    exchanges.sort_by_key(|(tx, e)| (e.deadline, **tx));
    let mut escrows: Vec<_> = state
        .escrows
        .iter()
        .filter(|(_, e)| e.state == EscrowState::Open)
        .collect();
    escrows.sort_by_key(|(tx, e)| (e.deadline, **tx));
    let money = |minor: i128| Money::from(Balance(minor));
    BrokerStatus {
        uid: uid.to_string(),
        suite: state.suite.to_string(),
        at: Moment::at(now),
        head,
        serving,
        accounts: Accounts {
            bank_accounts,
            bank_total: money(bank_total),
            float_broker: money(float_broker),
            float_vendor_total: money(float_vendor_total),
            external: money(external),
        },
        live_scrip: LiveScripView {
            count: state.live.len(),
            held,
            value: Money::from(Balance::of_sum(state.live.value())),
        },
        floats: Listed::of(floats.into_iter().map(|(merchant, f)| MerchantFloat {
            merchant: merchant.to_string(),
            float: money(f.float),
            memo: money(f.memo),
        })),
        exchanges: Listed::of(exchanges.into_iter().map(|(tx, e)| OpenExchange {
            tx: tx.to_string(),
            customer: e.customer.to_string(),
            merchant: e.merchant.to_string(),
            deadline: Moment::expiry(UnixSecs::new(e.deadline), now),
        })),
        escrows: Listed::of(escrows.into_iter().map(|(tx, e)| OpenEscrow {
            tx: tx.to_string(),
            customer: e.customer.to_string(),
            merchant: e.merchant.to_string(),
            top_up: Money::from(e.top_up),
            deadline: Moment::expiry(UnixSecs::new(e.deadline), now),
        })),
        peers: Peers {
            total: state.peers.len(),
            merchants,
            customers: state.peers.len() - merchants,
        },
    }
}
