//! The broker's state: the projection of its log (protocol.md sections 5 and 8), and
//! [`State::apply`], the fold that builds it.
//!
//! `apply` is pure and total: it never fails on an event that `decide` produced, and it is
//! the only code that changes the state, live and in replay alike, so the two cannot
//! disagree. It returns the keys it touched ([`Touched`]) so that the store writes exactly
//! those rows' new values in the same redb commit.

use std::collections::{BTreeMap, BTreeSet};

use shared::events::{Account, Direction, Posting};
use shared::ids::{Pan, ScripId, TxId, Uid};
use shared::node::{
    LiveScrip, Outbox, Replies, ReplyKey, TxBinding, TxBindings, TxKind, record_sent,
};
use shared::wire::Reason;
use shared::{Amount, PublicKey, Suite};

use super::events::{BrokerEvent, Kind};

/// A bank account's record (sections 1 and 6.0): the ID commitment and who registered a key
/// for it (one key per account).
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PanRecord {
    /// `H("peerscrip/id-commit" ‖ ID)`, as `AccountOpened` recorded it.
    pub id_commitment: Vec<u8>,
    /// The peer registered for this account, if any (6.0: `PanRegistered` otherwise).
    pub registered: Option<Uid>,
}

/// A registered peer (6.0).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    /// Its key, certified by the broker (section 1: the only CA).
    pub public_key: PublicKey,
    /// Its bank account.
    pub pan: Pan,
}

/// Where an exchange of 6.2 stands.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum ExchangeState {
    /// Announced (step 1), no decision yet.
    Open,
    /// Authorized (step 4, OK).
    Authorized,
    /// Refused (step 4, NOK), final.
    Refused,
    /// Closed by its deadline with no decision.
    Expired,
}

/// An exchange of 6.2, by tx.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Exchange {
    /// `UID_C`.
    pub customer: Uid,
    /// `UID_M`.
    pub merchant: Uid,
    /// Unix seconds.
    pub deadline: u64,
    /// Where it stands.
    pub state: ExchangeState,
}

/// A purchase of 6.3 as the broker saw it, by tx.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Purchase {
    /// `UID_C`.
    pub customer: Uid,
    /// `UID_M`.
    pub merchant: Uid,
    /// `W_P` of C's `PurchaseInitiated`, once it arrived.
    pub initiated: Option<Amount>,
    /// `W_P` of M's `PurchaseCompleted`, once it arrived.
    pub completed: Option<Amount>,
    /// Whether the two matched and the memo was posted.
    pub recorded: bool,
}

/// A VendorScrip withdrawal of 6.7 as the broker decided it, by tx.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Withdrawal {
    /// `UID_C`.
    pub customer: Uid,
    /// `UID_M`.
    pub merchant: Uid,
    /// `W`.
    pub value: Amount,
    /// Whether it was redeemed (OK) or refused (NOK).
    pub redeemed: bool,
}

/// Where an escrow of 6.5 stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum EscrowState {
    /// `B0` held, waiting for M's step 3 until the deadline.
    Open,
    /// M accepted in time: `B0` spent, M paid.
    Settled,
    /// Released with this NOK (declined, mismatched, or deadline passed); `B0` live again.
    Released(Reason),
}

/// An escrow of 6.5 (Top up VendorScrip), by tx.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Escrow {
    /// `UID_C`.
    pub customer: Uid,
    /// `UID_M`.
    pub merchant: Uid,
    /// `B0`, held while `Open`.
    pub scrip: ScripId,
    /// `W_V`.
    pub top_up: Amount,
    /// `W_V1`.
    pub new_value: Amount,
    /// Unix seconds.
    pub deadline: u64,
    /// Where it stands.
    pub state: EscrowState,
}

/// The broker's projection (see the module doc). Compared whole in tests: live == replayed.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct State {
    /// The suite of the deployment (peer keys are parsed in it).
    pub suite: Suite,
    /// Balances, increases minus decreases (section 5; `external` is negative by the money
    /// that entered). Signed so that `external` fits; every bank and float account ≥ 0.
    pub accounts: BTreeMap<Account, i128>,
    /// The memo ledger `memo float:vendor:<M>` (section 5), outside the zero sum.
    pub memos: BTreeMap<Uid, i128>,
    /// Bank accounts by PAN.
    pub pans: BTreeMap<Pan, PanRecord>,
    /// Registered peers by UID.
    pub peers: BTreeMap<Uid, Peer>,
    /// Live BrokerScrip (section 4).
    pub live: LiveScrip,
    /// Exchanges of 6.2, by tx.
    pub exchanges: BTreeMap<TxId, Exchange>,
    /// Purchases of 6.3, by tx.
    pub purchases: BTreeMap<TxId, Purchase>,
    /// VendorScrip withdrawals of 6.7, by tx.
    pub withdrawals: BTreeMap<TxId, Withdrawal>,
    /// Escrows of 6.5, by tx.
    pub escrows: BTreeMap<TxId, Escrow>,
    /// VendorScrip whose lapse merchants reported (section 4), by (merchant, scrip id).
    pub vendor_lapsed: BTreeSet<(Uid, ScripId)>,
    /// Stored replies (section 7).
    pub replies: Replies,
    /// Tx bindings (section 7).
    pub bindings: TxBindings,
    /// Every frame sent, by tx and recipient (section 7).
    pub outbox: Outbox,
}

/// The keys an event changed, by table: the rows the store rewrites (or deletes when the
/// key is gone from the state).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Accounts whose balance changed.
    pub accounts: BTreeSet<Account>,
    /// Memo accounts that changed.
    pub memos: BTreeSet<Uid>,
    /// PAN records.
    pub pans: BTreeSet<Pan>,
    /// Peers.
    pub peers: BTreeSet<Uid>,
    /// Live scrip rows (issued, spent, held or released).
    pub scrip: BTreeSet<ScripId>,
    /// Exchanges.
    pub exchanges: BTreeSet<TxId>,
    /// Purchases.
    pub purchases: BTreeSet<TxId>,
    /// Withdrawals.
    pub withdrawals: BTreeSet<TxId>,
    /// Escrows.
    pub escrows: BTreeSet<TxId>,
    /// Lapsed VendorScrip.
    pub vendor_lapsed: BTreeSet<(Uid, ScripId)>,
    /// Stored replies.
    pub replies: BTreeSet<ReplyKey>,
    /// Outbox entries.
    pub outbox: BTreeSet<(TxId, Uid)>,
    /// Tx bindings.
    pub bindings: BTreeSet<TxId>,
}

/// A broken invariant of section 5, found by [`State::check_conserved`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LedgerError {
    /// The accounts do not sum to zero.
    #[error("accounts sum to {0}, not zero")]
    NotConserved(i128),
    /// A bank or float account is below zero.
    #[error("account {0} is negative: {1}")]
    Negative(Account, i128),
    /// `float:broker` differs from the value of live BrokerScrip.
    #[error("float:broker is {float}, live BrokerScrip is worth {live}")]
    FloatMismatch {
        /// The float.
        float: i128,
        /// The sum of live scrip values.
        live: i128,
    },
}

impl State {
    /// The empty state of a fresh log.
    #[must_use]
    pub fn new(suite: Suite) -> State {
        State {
            suite,
            accounts: BTreeMap::new(),
            memos: BTreeMap::new(),
            pans: BTreeMap::new(),
            peers: BTreeMap::new(),
            live: LiveScrip::new(),
            exchanges: BTreeMap::new(),
            purchases: BTreeMap::new(),
            withdrawals: BTreeMap::new(),
            escrows: BTreeMap::new(),
            vendor_lapsed: BTreeSet::new(),
            replies: Replies::new(),
            bindings: TxBindings::new(),
            outbox: Outbox::new(),
        }
    }

    /// The balance of `account` (zero if never posted).
    #[must_use]
    pub fn balance(&self, account: &Account) -> i128 {
        self.accounts.get(account).copied().unwrap_or(0)
    }

    /// The balance of `bank:<pan>` as an amount (never negative, section 5).
    #[must_use]
    pub fn bank_balance(&self, pan: &Pan) -> Amount {
        amount_of(self.balance(&Account::Bank(pan.clone())))
    }

    /// The memo `float:vendor:<uid>` (zero if never posted).
    #[must_use]
    pub fn memo(&self, merchant: &Uid) -> i128 {
        self.memos.get(merchant).copied().unwrap_or(0)
    }

    /// Section 5's invariants: all accounts sum to zero, no bank or float account is
    /// negative, and `float:broker` equals the value of the live BrokerScrip.
    pub fn check_conserved(&self) -> Result<(), LedgerError> {
        let sum: i128 = self.accounts.values().sum();
        if sum != 0 {
            return Err(LedgerError::NotConserved(sum));
        }
        if let Some((account, balance)) = self
            .accounts
            .iter()
            .find(|(a, b)| !matches!(a, Account::External) && **b < 0)
        {
            return Err(LedgerError::Negative(account.clone(), *balance));
        }
        self.check_float()
    }

    /// [`State::check_conserved`] after one event, in the time of the event, not of the
    /// state (what a node checks before every commit, release builds included: a broken
    /// invariant is refused, never written). The accounts still sum to zero because every
    /// event's postings balance (`EventLog` refuses one that does not, before it reaches
    /// the state) and the state it started from summed to zero (checked in full when the
    /// log was opened); so it is enough that no account the event `touched` went below
    /// zero and that `float:broker` still equals the live BrokerScrip's value, which the
    /// live table keeps as it changes.
    pub fn check_touched(&self, touched: &Touched) -> Result<(), LedgerError> {
        for account in &touched.accounts {
            let balance = self.balance(account);
            if !matches!(account, Account::External) && balance < 0 {
                return Err(LedgerError::Negative(account.clone(), balance));
            }
        }
        self.check_float()
    }

    /// `float:broker` equals the value of the live BrokerScrip (section 5).
    fn check_float(&self) -> Result<(), LedgerError> {
        let live = i128::try_from(self.live.value()).unwrap_or(i128::MAX);
        let float = self.balance(&Account::FloatBroker);
        if float != live {
            return Err(LedgerError::FloatMismatch { float, live });
        }
        Ok(())
    }

    /// Folds one stored event into the state (see the module doc) and returns what changed.
    /// The ledger invariants are checked after it ([`State::check_touched`]): a live append
    /// refuses an event that breaks them (`store::LiveProjection`), and a log that replays
    /// into a broken ledger is not served.
    pub fn apply(&mut self, event: &BrokerEvent) -> Result<Touched, LedgerError> {
        let touched = self.fold(event);
        self.check_touched(&touched)?;
        Ok(touched)
    }

    /// [`State::apply`] without the assertion: for an auditor, who reads logs it does not
    /// trust and reports a broken invariant ([`State::check_conserved`]) instead of
    /// stopping.
    pub fn fold(&mut self, event: &BrokerEvent) -> Touched {
        let mut touched = Touched::default();
        for p in &event.postings {
            post(&mut self.accounts, p);
            touched.accounts.insert(p.account.clone());
        }
        for m in &event.memos {
            if let Account::FloatVendor(uid) = &m.account {
                *self.memos.entry(*uid).or_insert(0) += signed(m);
                touched.memos.insert(*uid);
            }
        }
        self.apply_kind(event.tx, &event.kind.kind, &mut touched);
        record_sent(
            &mut self.replies,
            &mut self.outbox,
            event.tx,
            &event.kind.sent,
        );
        for s in &event.kind.sent {
            touched.outbox.insert((event.tx, s.to));
            if let Some(a) = &s.answers {
                touched.replies.insert(a.key);
            }
        }
        touched
    }

    fn apply_kind(&mut self, tx: TxId, kind: &Kind, touched: &mut Touched) {
        match kind {
            Kind::AccountOpened { pan, id_commitment } => {
                self.pans.insert(
                    pan.clone(),
                    PanRecord {
                        id_commitment: id_commitment.clone(),
                        registered: None,
                    },
                );
                touched.pans.insert(pan.clone());
            }
            Kind::Deposited { .. } | Kind::PaidOut { .. } => {}
            Kind::PeerRegistered { uid, spki_der, pan } => {
                // `decide` parsed this key before the event was written; a key that no
                // longer parses is a corrupted log, which the chain check catches first.
                match PublicKey::from_spki_der(self.suite, spki_der) {
                    Ok(public_key) => {
                        self.peers.insert(
                            *uid,
                            Peer {
                                public_key,
                                pan: pan.clone(),
                            },
                        );
                        touched.peers.insert(*uid);
                    }
                    Err(_) => debug_assert!(false, "registered key of {uid} does not parse"),
                }
                if let Some(record) = self.pans.get_mut(pan) {
                    record.registered = Some(*uid);
                    touched.pans.insert(pan.clone());
                }
                self.bind(tx, TxKind::Registration, *uid, touched);
            }
            Kind::BrokerScripIssued { customer, scrip } => {
                self.live.issue(*scrip, *customer);
                touched.scrip.insert(scrip.scrip_id);
                self.bind(tx, TxKind::ObtainBrokerScrip, *customer, touched);
            }
            Kind::BrokerScripToppedUp {
                customer,
                spent,
                issued,
            } => {
                self.spend(spent, touched);
                self.live.issue(*issued, *customer);
                touched.scrip.insert(issued.scrip_id);
                self.bind(tx, TxKind::TopUpBrokerScrip, *customer, touched);
            }
            Kind::BrokerScripWithdrawn {
                customer, spent, ..
            } => {
                self.spend(spent, touched);
                self.bind(tx, TxKind::WithdrawBrokerScrip, *customer, touched);
            }
            Kind::ScripRenewed {
                customer,
                spent,
                issued,
            } => {
                self.spend(spent, touched);
                self.live.issue(*issued, *customer);
                touched.scrip.insert(issued.scrip_id);
                self.bind(tx, TxKind::Renew, *customer, touched);
            }
            Kind::ExchangeOpened {
                customer,
                merchant,
                deadline,
            } => {
                self.exchanges.insert(
                    tx,
                    Exchange {
                        customer: *customer,
                        merchant: *merchant,
                        deadline: *deadline,
                        state: ExchangeState::Open,
                    },
                );
                touched.exchanges.insert(tx);
                self.bind_with(
                    tx,
                    TxKind::ObtainVendorScrip,
                    *customer,
                    vec![*merchant],
                    touched,
                );
            }
            Kind::ExchangeAuthorized {
                customer,
                spent,
                change,
                ..
            } => {
                self.spend(spent, touched);
                if let Some(body) = change {
                    self.live.issue(*body, *customer);
                    touched.scrip.insert(body.scrip_id);
                }
                self.close_exchange(tx, ExchangeState::Authorized, touched);
            }
            Kind::ExchangeRefused { .. } => {
                self.close_exchange(tx, ExchangeState::Refused, touched);
            }
            Kind::ExchangeExpired { .. } => {
                self.close_exchange(tx, ExchangeState::Expired, touched);
            }
            Kind::PurchaseOpened {
                customer,
                merchant,
                value,
            } => {
                self.purchase(tx, *customer, *merchant, touched).initiated = Some(*value);
            }
            Kind::PurchaseRecorded {
                customer,
                merchant,
                value,
            } => {
                let p = self.purchase(tx, *customer, *merchant, touched);
                p.completed = Some(*value);
                p.recorded = true;
            }
            Kind::PurchaseUnmatched {
                customer,
                merchant,
                value,
            } => {
                self.purchase(tx, *customer, *merchant, touched).completed = Some(*value);
            }
            Kind::VendorScripRedeemed {
                customer,
                merchant,
                value,
            } => self.withdrawal(tx, *customer, *merchant, *value, true, touched),
            Kind::VendorWithdrawRefused {
                customer,
                merchant,
                value,
                ..
            } => self.withdrawal(tx, *customer, *merchant, *value, false, touched),
            Kind::EscrowOpened {
                customer,
                merchant,
                scrip,
                top_up,
                new_value,
                deadline,
            } => {
                let held = self.live.hold(scrip, tx, *deadline);
                debug_assert!(held, "escrow {tx} holds scrip {scrip} that was not live");
                touched.scrip.insert(*scrip);
                self.escrows.insert(
                    tx,
                    Escrow {
                        customer: *customer,
                        merchant: *merchant,
                        scrip: *scrip,
                        top_up: *top_up,
                        new_value: *new_value,
                        deadline: *deadline,
                        state: EscrowState::Open,
                    },
                );
                touched.escrows.insert(tx);
                self.bind_with(
                    tx,
                    TxKind::TopUpVendorScrip,
                    *customer,
                    vec![*merchant],
                    touched,
                );
            }
            Kind::VendorTopUpSettled {
                customer,
                spent,
                change,
                ..
            } => {
                self.spend(spent, touched);
                if let Some(body) = change {
                    self.live.issue(*body, *customer);
                    touched.scrip.insert(body.scrip_id);
                }
                self.close_escrow(tx, EscrowState::Settled, touched);
            }
            Kind::EscrowReleased { scrip, reason, .. } => {
                let released = self.live.release(scrip, tx);
                debug_assert!(
                    released,
                    "escrow {tx} released scrip {scrip} it did not hold"
                );
                touched.scrip.insert(*scrip);
                self.close_escrow(tx, EscrowState::Released(reason.clone()), touched);
            }
            Kind::VendorTopUpRefused { .. } => {}
            Kind::ScripLapsed {
                owner, scrip_id, ..
            } => {
                self.spend(scrip_id, touched);
                // Bound under its tx (the scrip id): the owner presenting it later is told
                // that it lapsed (section 4; `ScripCheckError::refusal`).
                self.bind(tx, TxKind::Lapse, *owner, touched);
            }
            Kind::VendorScripLapsed {
                merchant,
                owner,
                scrip_id,
                ..
            } => {
                self.vendor_lapsed.insert((*merchant, *scrip_id));
                touched.vendor_lapsed.insert((*merchant, *scrip_id));
                self.bind_with(tx, TxKind::Lapse, *merchant, vec![*owner], touched);
            }
            Kind::MemoAlarm { .. } => {}
        }
    }

    /// Closes an open exchange; a decision recorded for an exchange already closed (e.g. a
    /// NOK answering a request that came after the deadline) leaves it as it was.
    fn close_exchange(&mut self, tx: TxId, to: ExchangeState, touched: &mut Touched) {
        if let Some(exchange) = self.exchanges.get_mut(&tx) {
            if exchange.state == ExchangeState::Open {
                exchange.state = to;
                touched.exchanges.insert(tx);
            }
        } else {
            debug_assert!(false, "decision for exchange {tx} that was never opened");
        }
    }

    /// Closes an open escrow with its outcome.
    fn close_escrow(&mut self, tx: TxId, to: EscrowState, touched: &mut Touched) {
        match self.escrows.get_mut(&tx) {
            Some(escrow) if escrow.state == EscrowState::Open => {
                escrow.state = to;
                touched.escrows.insert(tx);
            }
            _ => debug_assert!(false, "outcome for escrow {tx} that is not open"),
        }
    }

    /// Records the broker's decision on the withdrawal of `tx` (and binds the tx).
    fn withdrawal(
        &mut self,
        tx: TxId,
        customer: Uid,
        merchant: Uid,
        value: Amount,
        redeemed: bool,
        touched: &mut Touched,
    ) {
        let previous = self.withdrawals.insert(
            tx,
            Withdrawal {
                customer,
                merchant,
                value,
                redeemed,
            },
        );
        debug_assert!(previous.is_none(), "withdrawal {tx} decided twice");
        touched.withdrawals.insert(tx);
        self.bind_with(
            tx,
            TxKind::WithdrawVendorScrip,
            customer,
            vec![merchant],
            touched,
        );
    }

    /// The purchase of `tx`, created (and the tx bound) on its first event.
    fn purchase(
        &mut self,
        tx: TxId,
        customer: Uid,
        merchant: Uid,
        touched: &mut Touched,
    ) -> &mut Purchase {
        touched.purchases.insert(tx);
        self.bind_with(tx, TxKind::BuyItem, customer, vec![merchant], touched);
        self.purchases.entry(tx).or_insert(Purchase {
            customer,
            merchant,
            initiated: None,
            completed: None,
            recorded: false,
        })
    }

    fn spend(&mut self, id: &ScripId, touched: &mut Touched) {
        let removed = self.live.remove(id);
        debug_assert!(removed.is_some(), "spent scrip {id} was not live");
        touched.scrip.insert(*id);
    }

    fn bind(&mut self, tx: TxId, kind: TxKind, initiator: Uid, touched: &mut Touched) {
        self.bind_with(tx, kind, initiator, Vec::new(), touched);
    }

    fn bind_with(
        &mut self,
        tx: TxId,
        kind: TxKind,
        initiator: Uid,
        counterparties: Vec<Uid>,
        touched: &mut Touched,
    ) {
        let binding = TxBinding {
            kind,
            initiator,
            counterparties,
        };
        if self.bindings.bind(tx, binding) {
            touched.bindings.insert(tx);
        }
    }
}

fn signed(p: &Posting) -> i128 {
    let v = i128::from(p.amount.minor());
    match p.direction {
        Direction::Increase => v,
        Direction::Decrease => -v,
    }
}

fn post(accounts: &mut BTreeMap<Account, i128>, p: &Posting) {
    *accounts.entry(p.account.clone()).or_insert(0) += signed(p);
}

/// A non-negative balance as an amount (bank and float balances are never negative and
/// never above `u64::MAX`, being sums of checked amounts; anything else reads as zero).
fn amount_of(balance: i128) -> Amount {
    u64::try_from(balance).map_or(Amount::ZERO, Amount::from_minor)
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::Amount;
    use shared::node::ScripState;

    fn state() -> State {
        let mut s = State::new(Suite::Modern);
        s.accounts.insert(Account::External, -100);
        s.accounts.insert(Account::Bank(Pan::new("A")), 100);
        s
    }

    #[test]
    fn the_ledger_check_finds_each_broken_invariant() {
        assert_eq!(state().check_conserved(), Ok(()));
        let mut s = state();
        s.accounts.insert(Account::External, -99);
        assert_eq!(s.check_conserved(), Err(LedgerError::NotConserved(1)));
        let mut s = state();
        s.accounts.insert(Account::Bank(Pan::new("A")), -1);
        s.accounts.insert(Account::Bank(Pan::new("B")), 101);
        assert!(matches!(
            s.check_conserved(),
            Err(LedgerError::Negative(_, -1))
        ));
        let mut s = state();
        s.accounts.insert(Account::Bank(Pan::new("A")), 60);
        s.accounts.insert(Account::FloatBroker, 40);
        assert_eq!(
            s.check_conserved(),
            Err(LedgerError::FloatMismatch { float: 40, live: 0 })
        );
        s.live.issue(
            shared::ScripBody {
                producer: Uid([1; 16]),
                value: Amount::from_minor(40),
                scrip_id: ScripId([2; 16]),
                cust_id: shared::CustId([3; 16]),
                expires: 10,
            },
            Uid([4; 16]),
        );
        assert_eq!(s.check_conserved(), Ok(()));
        assert_eq!(
            s.live.get(&ScripId([2; 16])).map(|r| r.state),
            Some(ScripState::Live)
        );
    }
}
