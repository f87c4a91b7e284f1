//! The broker's live view for its operator (README "Operate it"): what `/status` serves
//! and `peerscrip-ops status` prints, read from the state while the broker runs (audit
//! needs it stopped). A pure function of the state and the clock, so it is the same on a
//! live node and on its replay.
//!
//! Bounded whatever the state (protocol.md section 10): counts and totals for everything,
//! and only the first [`MAX_LISTED`] rows of each list (the open transactions by deadline,
//! the merchants by UID), with how many there are in all. Account numbers (PANs) are not
//! shown: the view is for watching the float, not for reading the bank's ledger.

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
    /// Each merchant's name (docs/adr/0016) and `memo float:vendor:<M>` (section 5), by
    /// UID.
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
    /// Every merchant's `memo float:vendor:<M>`, summed: the VendorScrip the broker has
    /// paid for and that is neither spent nor withdrawn (outside the zero sum, section 5).
    pub vendor_memo_total: Money,
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

/// One merchant's name and memo.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct MerchantFloat {
    /// `UID_M`.
    pub merchant: String,
    /// The name it registered (docs/adr/0016), if any.
    pub name: Option<String>,
    /// `memo float:vendor:<M>` (section 5): what the broker paid M for VendorScrip not
    /// yet spent nor withdrawn.
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
    /// The first [`MAX_LISTED`] by UID, each with its kind.
    pub rows: Vec<PeerRow>,
    /// Those the broker knows as merchants: each registered a name (docs/adr/0016) or has
    /// a vendor memo, opened by the first VendorScrip it was paid for.
    pub merchants: usize,
    /// The rest: customers, and merchants that have not sold yet.
    pub customers: usize,
}

/// A registered peer (6.0) and what the broker knows it as.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerRow {
    /// Its UID.
    pub uid: String,
    /// `merchant` (a registered name or a vendor memo) or `customer`.
    pub kind: String,
    /// The name it registered (docs/adr/0016), if any.
    pub name: Option<String>,
}

/// The view of `state` at `now` (see the module doc).
#[must_use]
pub fn status(state: &State, uid: &Uid, now: u64, head: u64, serving: bool) -> BrokerStatus {
    let now = UnixSecs::new(now);
    let (mut bank_accounts, mut bank_total, mut float_broker) = (0, 0_i128, 0_i128);
    let mut external = 0_i128;
    for (account, balance) in &state.accounts {
        match account {
            Account::Bank(_) => {
                bank_accounts += 1;
                bank_total = bank_total.saturating_add(*balance);
            }
            Account::FloatBroker => float_broker = *balance,
            // A memo account only (section 5): never posted to the zero sum.
            Account::FloatVendor(_) => {}
            Account::External => external = *balance,
        }
    }
    let vendor_memo_total = state
        .memos
        .values()
        .fold(0_i128, |sum, memo| sum.saturating_add(*memo));
    let known: std::collections::BTreeSet<&Uid> =
        state.memos.keys().chain(state.names.keys()).collect();
    let merchants = state.peers.keys().filter(|uid| known.contains(uid)).count();
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
            vendor_memo_total: money(vendor_memo_total),
            external: money(external),
        },
        live_scrip: LiveScripView {
            count: state.live.len(),
            held,
            value: Money::from(Balance::of_sum(state.live.value())),
        },
        floats: Listed::of(known.iter().map(|merchant| {
            MerchantFloat {
                merchant: merchant.to_string(),
                name: state
                    .names
                    .get(*merchant)
                    .map(|n| n.name.as_str().to_owned()),
                memo: money(state.memos.get(*merchant).copied().unwrap_or(0)),
            }
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
            rows: state
                .peers
                .keys()
                .take(MAX_LISTED)
                .map(|uid| PeerRow {
                    uid: uid.to_string(),
                    kind: if known.contains(uid) {
                        "merchant"
                    } else {
                        "customer"
                    }
                    .to_owned(),
                    name: state.names.get(uid).map(|n| n.name.as_str().to_owned()),
                })
                .collect(),
            merchants,
            customers: state.peers.len() - merchants,
        },
    }
}

#[cfg(test)]
mod tests {
    use shared::ids::{Pan, TxId};
    use shared::{Suite, Uid};

    use super::*;
    use crate::core::state::Exchange;

    fn exchange(deadline: u64, state: ExchangeState) -> Exchange {
        Exchange {
            customer: Uid([1; 16]),
            merchant: Uid([2; 16]),
            deadline,
            state,
        }
    }

    #[test]
    fn the_view_sums_the_accounts_and_lists_open_exchanges_earliest_first_within_its_bound() {
        let mut state = State::new(Suite::Paper);
        state
            .accounts
            .insert(Account::Bank(Pan::new("GR01")), 6_000);
        state
            .accounts
            .insert(Account::Bank(Pan::new("GR02")), 1_500);
        state.accounts.insert(Account::FloatBroker, 2_500);
        state.accounts.insert(Account::External, -10_000);
        state.memos.insert(Uid([2; 16]), 600);
        state.memos.insert(Uid([3; 16]), 0);
        let now = 1_796_674_753;
        let open = MAX_LISTED + 50;
        for i in 0..open as u64 {
            // Deadlines in reverse order of insertion, all after `now`.
            state.exchanges.insert(
                TxId::random(),
                exchange(now + 1_000 - i, ExchangeState::Open),
            );
        }
        state
            .exchanges
            .insert(TxId::random(), exchange(now, ExchangeState::Authorized));

        let view = status(&state, &Uid([9; 16]), now, 42, true);
        assert_eq!(view.head, 42);
        assert_eq!(view.at, Moment::at(UnixSecs::new(now)));
        assert_eq!(view.accounts.bank_accounts, 2);
        assert_eq!(view.accounts.bank_total, Money::from(Balance(7_500)));
        assert_eq!(view.accounts.float_broker.value, "25.00");
        assert_eq!(view.accounts.external.value, "-100.00");
        assert_eq!(view.accounts.vendor_memo_total.minor, 600);
        assert_eq!(view.floats.total, 2);
        // Only the authorized one is not open; the list keeps the earliest deadlines.
        assert_eq!(view.exchanges.total, open);
        assert_eq!(view.exchanges.rows.len(), MAX_LISTED);
        let deadlines: Vec<u64> = view
            .exchanges
            .rows
            .iter()
            .map(|e| e.deadline.unix)
            .collect();
        let mut sorted = deadlines.clone();
        sorted.sort_unstable();
        assert_eq!(deadlines, sorted);
        assert_eq!(deadlines[0], now + 1_000 - (open as u64 - 1));
        assert_eq!(
            view.exchanges.rows[0].deadline.relative.as_deref(),
            Some("expires in 14m 11s")
        );
        assert_eq!(view.escrows.total, 0);
        assert!(view.escrows.rows.is_empty());
    }
}
