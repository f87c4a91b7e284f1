//! The invariants every test of a [`Network`] checks, as functions that say what broke
//! instead of panicking, so the simulator can report the seed with the failure.
//!
//! - After every event ([`conserved`]): the broker's accounts sum to zero, none is negative
//!   and `float:broker` equals the live BrokerScrip (section 5, `State::check_conserved`);
//!   every merchant's books hold `issued = live + paid + withdrawn`.
//! - Once the network is quiet ([`settled`]): no 6.2 exchange or 6.5 escrow is open, no
//!   scrip is held in escrow (6.5, 6.7) at the broker or a merchant, no wallet has a
//!   pending request, no merchant owes the broker a report or a request; each
//!   memo `float:vendor:M` equals M's live VendorScrip (section 5; it lags while a
//!   `PurchaseCompleted` is on its way, so it is checked only here, as the demo does); every
//!   wallet's scrip is live at its producer, owned by the wallet, and every live scrip is in
//!   its owner's wallet.
//! - [`replayed`]: every log's hash chain verifies, and every node reopened from its file
//!   (replay of its log, tables checked against the replay) has the state it had.

use broker::core::{EscrowState, ExchangeState};
use customer_cli::Wallet;
use shared::node::{LiveScrip, ScripState};
use shared::{Amount, Uid};

use crate::network::{Network, NetworkError};

/// A broken invariant, or a node the check could not reach.
#[derive(Debug, thiserror::Error)]
pub enum Violation {
    /// The invariant named here does not hold.
    #[error("{0}")]
    Broken(String),
    /// A node could not be read or reopened.
    #[error(transparent)]
    Network(#[from] NetworkError),
}

fn broken(what: String) -> Violation {
    Violation::Broken(what)
}

/// Section 5 at the broker and every merchant's books (see the module doc).
///
/// # Errors
/// [`Violation`].
pub fn conserved(network: &Network) -> Result<(), Violation> {
    network
        .broker()?
        .state()
        .check_conserved()
        .map_err(|e| broken(format!("broker ledger: {e}")))?;
    for i in 0..network.merchants.len() {
        merchant_books(network, i)?;
    }
    Ok(())
}

/// Merchant `i`'s books: `issued = live + paid + withdrawn`.
fn merchant_books(network: &Network, i: usize) -> Result<(), Violation> {
    let state = network.merchant(i)?.state();
    let books = state.tables.books;
    let accounted = state
        .live_value()
        .and_then(|live| live.checked_add(books.paid))
        .and_then(|v| v.checked_add(books.withdrawn))
        .map_err(|e| broken(format!("merchant {i}'s books overflow: {e}")))?;
    if accounted == books.issued {
        Ok(())
    } else {
        Err(broken(format!(
            "merchant {i}: issued {} but live + paid + withdrawn is {accounted}",
            books.issued
        )))
    }
}

/// The network is quiet and its parties agree (see the module doc).
///
/// # Errors
/// [`Violation`].
pub fn settled(network: &Network) -> Result<(), Violation> {
    let broker = network.broker()?.state();
    if let Some((tx, _)) = broker
        .exchanges
        .iter()
        .find(|(_, e)| e.state == ExchangeState::Open)
    {
        return Err(broken(format!("exchange {tx} is still open")));
    }
    if let Some((tx, _)) = broker
        .escrows
        .iter()
        .find(|(_, e)| e.state == EscrowState::Open)
    {
        return Err(broken(format!("escrow {tx} is still open")));
    }
    none_held("the broker", &broker.live)?;
    for (i, slot) in network.merchants.iter().enumerate() {
        let node = network.merchant(i)?;
        none_held(&format!("merchant {i}"), &node.state().tables.live)?;
        if !node.pending_reports().is_empty() || !node.pending_broker_requests().is_empty() {
            return Err(broken(format!(
                "merchant {i} still owes the broker {} reports and {} requests",
                node.pending_reports().len(),
                node.pending_broker_requests().len()
            )));
        }
        let live = node
            .state()
            .live_value()
            .map_err(|e| broken(format!("merchant {i}'s live value: {e}")))?;
        let memo = broker.memo(&slot.party.uid());
        if memo != i128::from(live.minor()) {
            return Err(broken(format!(
                "memo float:vendor of merchant {i} is {memo}, its live VendorScrip {live}"
            )));
        }
    }
    for j in 0..network.customers.len() {
        let wallet = network.wallet(j)?;
        if let Some(p) = wallet.pending().next() {
            return Err(broken(format!(
                "wallet {j} still has {} of tx {} pending ({:?})",
                p.request.label(),
                p.request.tx(),
                p.status
            )));
        }
        holds_what_is_live(wallet, network.broker_uid(), &broker.live)
            .map_err(|e| broken(format!("wallet {j}, BrokerScrip: {e}")))?;
        for (i, slot) in network.merchants.iter().enumerate() {
            holds_what_is_live(
                wallet,
                slot.party.uid(),
                &network.merchant(i)?.state().tables.live,
            )
            .map_err(|e| broken(format!("wallet {j}, merchant {i}'s VendorScrip: {e}")))?;
        }
    }
    Ok(())
}

/// No escrow (6.5, 6.7) still holds a scrip of `live`: every hold ended with its settle or
/// release event.
fn none_held(who: &str, live: &LiveScrip) -> Result<(), Violation> {
    match live
        .iter()
        .find(|(_, r)| matches!(r.state, ScripState::Held { .. }))
    {
        Some((id, _)) => Err(broken(format!("{who} still holds scrip {id} in escrow"))),
        None => Ok(()),
    }
}

/// Every scrip of `producer` in `wallet` is live in `live` with the same body and owned by
/// the wallet, and the wallet holds every live scrip `producer` records for it.
fn holds_what_is_live(wallet: &Wallet, producer: Uid, live: &LiveScrip) -> Result<(), String> {
    let me = wallet.uid();
    let held = wallet.scrip(producer);
    if let Some(owned) = held {
        let record = live
            .get(&owned.scrip.id())
            .ok_or_else(|| format!("holds {} which is not live", owned.scrip.id()))?;
        if record.owner != me || record.body != owned.scrip.body {
            return Err(format!("holds {} which is not its own", owned.scrip.id()));
        }
    }
    let owned_live = live.owned_by(&me).count();
    if owned_live == usize::from(held.is_some()) {
        Ok(())
    } else {
        Err(format!(
            "the producer records {owned_live} live scrip of the wallet, it holds {}",
            usize::from(held.is_some())
        ))
    }
}

/// Every chain verifies; every node reopened from its file has the state it had (the
/// broker's whole state, each merchant's tables, each wallet's state and tables).
///
/// # Errors
/// [`Violation`].
pub fn replayed(network: &mut Network) -> Result<(), Violation> {
    let chain = |who: &str, r: Result<shared::events::ChainReport, shared::events::LogError>| {
        r.map(|_| ())
            .map_err(|e| broken(format!("{who}'s chain: {e}")))
    };
    chain("broker", network.broker()?.log().verify_chain())?;
    let before = network.broker()?.state().clone();
    network.reopen_broker()?;
    if network.broker()?.state() != &before {
        return Err(broken("the broker's replay differs from its state".into()));
    }
    for i in 0..network.merchants.len() {
        let node = network.merchant(i)?;
        chain(&format!("merchant {i}"), node.log().verify_chain())?;
        node.check_tables()
            .map_err(|e| broken(format!("merchant {i}'s tables: {e}")))?;
        let before = node.state().tables.clone();
        network.reopen_merchant(i)?;
        if network.merchant(i)?.state().tables != before {
            return Err(broken(format!(
                "merchant {i}'s replay differs from its tables"
            )));
        }
    }
    for j in 0..network.customers.len() {
        let wallet = network.wallet(j)?;
        chain(&format!("wallet {j}"), wallet.log().verify_chain())?;
        wallet
            .check_tables()
            .map_err(|e| broken(format!("wallet {j}'s tables: {e}")))?;
        let before = wallet.state().clone();
        network.reopen_wallet(j)?;
        if network.wallet(j)?.state() != &before {
            return Err(broken(format!(
                "wallet {j}'s replay differs from its state"
            )));
        }
    }
    Ok(())
}

/// Customer `j`'s value now equals its deposit less what it paid for goods (6.3): nobody
/// gains or loses value through 6.1, 6.2, 6.4–6.8, whatever was lost or repeated.
///
/// # Errors
/// [`Violation`].
pub fn value_kept(network: &Network, j: usize, paid: Amount) -> Result<(), Violation> {
    let deposit = network
        .customers
        .get(j)
        .map(|c| c.deposit)
        .ok_or_else(|| broken(format!("no customer {j}")))?;
    let expected = deposit
        .checked_sub(paid)
        .map_err(|e| broken(format!("customer {j} paid more than it had: {e}")))?;
    let value = network.customer_value(j)?;
    if value == expected {
        Ok(())
    } else {
        Err(broken(format!(
            "customer {j} holds {value}, expected {expected} (deposit {deposit} less {paid} paid)"
        )))
    }
}
