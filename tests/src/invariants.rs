//! The invariants every test of a [`Network`] checks, as functions that say what broke
//! instead of panicking, so the simulator can report the seed with the failure.
//!
//! - After every event ([`conserved`]): the broker's accounts sum to zero, none is negative
//!   and `float:broker` equals the live BrokerScrip (section 5, `State::check_conserved`);
//!   every merchant's books hold `issued = live + paid + withdrawn`. A node down after a
//!   failed commit (section 10) is skipped until it recovers: its in-memory state may hold
//!   the failed batch's decisions, which its log (what it serves from once up) does not.
//! - Once the network is quiet ([`settled`]): no 6.2 exchange or 6.5 escrow is open, no
//!   scrip is held in escrow (6.5, 6.7) at the broker or a merchant, no wallet has a
//!   pending request, no merchant owes the broker a report or a request; each
//!   memo `float:vendor:M` equals M's live VendorScrip (section 5; it lags while a
//!   `PurchaseCompleted` is on its way, so it is checked only here, as the demo does); every
//!   wallet's scrip is live at its producer and owned by the wallet, or lapsed there with
//!   its value paid back (see [`settled`]), and every live scrip is in its owner's wallet.
//! - [`replayed`]: every log's hash chain verifies, and every node reopened from its file
//!   (replay of its log, tables checked against the replay) has the state it had.

use broker::core::{EscrowState, ExchangeState};
use customer_cli::Wallet;
use shared::node::{LiveScrip, ScripState, TxKind, lapse_tx};
use shared::{Amount, ScripId, Uid};

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
    let broker = network.broker()?;
    if !broker.is_down() {
        broker
            .state()
            .check_conserved()
            .map_err(|e| broken(format!("broker ledger: {e}")))?;
    }
    for i in 0..network.merchants.len() {
        if !network.merchant(i)?.is_down() {
            merchant_books(network, i)?;
        }
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
/// A wallet may hold a scrip that lapsed at its producer (section 4, "Lapse"): it learns
/// of a lapse only when it next presents the scrip, and a customer who never does keeps
/// it in the wallet for ever, as a real one would. So the check is not "the wallet holds
/// only live scrip" (which a run could force only by presenting every scrip at its end,
/// adding transactions no customer chose and hiding the state a real wallet is in), but
/// the stronger "each scrip it holds is live and its own, or its lapse is recorded at its
/// producer for this owner and, a VendorScrip, paid back by the broker
/// (`VendorScripLapsed`)"; such a scrip counts zero in the customer's value
/// (`Network::customer_value`), so [`value_kept`] checks that its value is in the bank
/// account instead, counted once.
///
/// # Errors
/// [`Violation`].
pub fn settled(network: &Network) -> Result<(), Violation> {
    for i in 0..network.merchants.len() {
        if network.merchant(i)?.is_down() {
            return Err(broken(format!("merchant {i} is still down")));
        }
    }
    if network.broker()?.is_down() {
        return Err(broken("the broker is still down".into()));
    }
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
        holds_what_is_live(network, wallet, network.broker_uid(), &broker.live)
            .map_err(|e| broken(format!("wallet {j}, BrokerScrip: {e}")))?;
        for (i, slot) in network.merchants.iter().enumerate() {
            holds_what_is_live(
                network,
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
/// the wallet, or lapsed (see [`settled`]); and the wallet holds every live scrip
/// `producer` records for it.
fn holds_what_is_live(
    network: &Network,
    wallet: &Wallet,
    producer: Uid,
    live: &LiveScrip,
) -> Result<(), String> {
    let me = wallet.uid();
    let mut held_live = 0;
    if let Some(owned) = wallet.scrip(producer) {
        let id = owned.scrip.id();
        match live.get(&id) {
            Some(record) if record.owner != me || record.body != owned.scrip.body => {
                return Err(format!("holds {id} which is not its own"));
            }
            Some(_) => held_live = 1,
            None => lapsed_for(network, me, producer, id)?,
        }
    }
    let owned_live = live.owned_by(&me).count();
    if owned_live == held_live {
        Ok(())
    } else {
        Err(format!(
            "the producer records {owned_live} live scrip of the wallet, it holds {held_live}"
        ))
    }
}

/// `Ok` if `producer` recorded the lapse of scrip `id` of `owner` (its lapse tx bound as a
/// lapse with `owner` a party) and, for a VendorScrip, the broker recorded the merchant's
/// notice (its value paid back to the owner's bank account, section 4).
fn lapsed_for(network: &Network, owner: Uid, producer: Uid, id: ScripId) -> Result<(), String> {
    let not_live = || format!("holds {id} which is not live and did not lapse");
    let tx = lapse_tx(id);
    let broker = network.broker().map_err(|e| e.to_string())?.state();
    let binding = if producer == network.broker_uid() {
        broker.bindings.get(&tx).cloned()
    } else {
        let i = network
            .merchants
            .iter()
            .position(|m| m.party.uid() == producer)
            .ok_or_else(not_live)?;
        let merchant = network.merchant(i).map_err(|e| e.to_string())?;
        if !broker.vendor_lapsed.contains(&(producer, id)) {
            return Err(format!(
                "holds {id}, lapsed at its merchant, whose lapse the broker never recorded"
            ));
        }
        merchant.state().tables.bindings.get(&tx).cloned()
    };
    match binding {
        Some(b) if b.kind == TxKind::Lapse && b.is_party(&owner) => Ok(()),
        _ => Err(not_live()),
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
