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
use shared::Uid;
use shared::events::Account;
use shared::node::ScripState;

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
    /// When the view was taken, unix seconds.
    pub at: u64,
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
    pub bank_total: u128,
    /// `float:broker`: the value of all live BrokerScrip.
    pub float_broker: u128,
    /// Every `float:vendor:<M>`, summed.
    pub float_vendor_total: u128,
    /// `external`: minus the money that entered through the bank.
    pub external: i128,
}

/// The live table's size and value.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct LiveScripView {
    /// Scrip in the table.
    pub count: usize,
    /// Of which held by an escrow (6.5).
    pub held: usize,
    /// Their value, minor units (equals `float:broker`).
    pub value: u128,
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

    fn sorted_by_key<K: Ord>(mut all: Vec<T>, key: impl Fn(&T) -> K) -> Listed<T> {
        all.sort_by_key(key);
        Listed::of(all)
    }
}

/// One merchant's float and memo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantFloat {
    /// `UID_M`.
    pub merchant: String,
    /// `float:vendor:<M>`: what the broker paid M for VendorScrip not yet spent nor
    /// withdrawn.
    pub float: i128,
    /// `memo float:vendor:<M>` (section 5).
    pub memo: i128,
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
    /// Unix seconds; the timer closes it then.
    pub deadline: u64,
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
    /// `W_V`, minor units.
    pub top_up: u64,
    /// Unix seconds; the timer releases it then.
    pub deadline: u64,
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

/// The row of `merchant` in `floats`, zero until filled.
fn float_row(floats: &mut BTreeMap<Uid, MerchantFloat>, merchant: Uid) -> &mut MerchantFloat {
    floats.entry(merchant).or_insert_with(|| MerchantFloat {
        merchant: merchant.to_string(),
        float: 0,
        memo: 0,
    })
}

/// The view of `state` at `now` (see the module doc).
#[must_use]
pub fn status(state: &State, uid: &Uid, now: u64, head: u64, serving: bool) -> BrokerStatus {
    let mut accounts = Accounts {
        bank_accounts: 0,
        bank_total: 0,
        float_broker: 0,
        float_vendor_total: 0,
        external: 0,
    };
    let mut floats = BTreeMap::<Uid, MerchantFloat>::new();
    for (account, balance) in &state.accounts {
        // Every account but `external` is never negative (section 5).
        let positive = u128::try_from(*balance).unwrap_or(0);
        match account {
            Account::Bank(_) => {
                accounts.bank_accounts += 1;
                accounts.bank_total = accounts.bank_total.saturating_add(positive);
            }
            Account::FloatBroker => accounts.float_broker = positive,
            Account::FloatVendor(merchant) => {
                accounts.float_vendor_total = accounts.float_vendor_total.saturating_add(positive);
                float_row(&mut floats, *merchant).float = *balance;
            }
            Account::External => accounts.external = *balance,
        }
    }
    for (merchant, memo) in &state.memos {
        float_row(&mut floats, *merchant).memo = *memo;
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
    let exchanges = state
        .exchanges
        .iter()
        .filter(|(_, e)| e.state == ExchangeState::Open)
        .map(|(tx, e)| OpenExchange {
            tx: tx.to_string(),
            customer: e.customer.to_string(),
            merchant: e.merchant.to_string(),
            deadline: e.deadline,
        })
        .collect();
    let escrows = state
        .escrows
        .iter()
        .filter(|(_, e)| e.state == EscrowState::Open)
        .map(|(tx, e)| OpenEscrow {
            tx: tx.to_string(),
            customer: e.customer.to_string(),
            merchant: e.merchant.to_string(),
            top_up: e.top_up.minor(),
            deadline: e.deadline,
        })
        .collect();
    BrokerStatus {
        uid: uid.to_string(),
        suite: state.suite.to_string(),
        at: now,
        head,
        serving,
        accounts,
        live_scrip: LiveScripView {
            count: state.live.len(),
            held,
            value: state.live.value(),
        },
        floats: Listed::of(floats.into_values()),
        exchanges: Listed::sorted_by_key(exchanges, |e: &OpenExchange| e.deadline),
        escrows: Listed::sorted_by_key(escrows, |e: &OpenEscrow| e.deadline),
        peers: Peers {
            total: state.peers.len(),
            merchants,
            customers: state.peers.len() - merchants,
        },
    }
}
