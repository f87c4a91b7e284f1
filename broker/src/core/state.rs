//! The broker's state: the projection of its log (protocol.md sections 5 and 8), and
//! [`State::try_apply`], the fold that builds it.
//!
//! The fold is pure, and it is the only code that changes the state, live and in replay
//! alike, so the two cannot disagree. It returns the keys it touched ([`Touched`]) so that
//! the store writes exactly those rows' new values in the same redb commit. Before it
//! changes anything it asks the three-party machines ([`super::machine`], through
//! [`State::transition`], the question `decide` and the auditor ask too) whether the event
//! is a legal move of its transaction; one that is not is refused whole
//! ([`IllegalEvent`]), never folded.

use std::collections::{BTreeMap, BTreeSet, HashMap};

use shared::events::{Account, Direction, Posting};
use shared::ids::{Pan, ScripId, TxId, Uid};
use shared::machine::{Halt, IllegalEvent, Machine, TransitionError};
use shared::node::{
    LiveScrip, OpenKind, OpenTxs, Outbox, PURCHASE_WINDOW_SECS, Replies, ReplyKey, TxBinding,
    TxBindings, TxKind, record_sent,
};
use shared::wire::bodies::MerchantName;
use shared::{Amount, PublicKey, Suite};

use super::events::{BrokerEvent, Kind};
pub use super::machine::{EscrowState, ExchangeState, WithdrawalState};
use super::machine::{Moved, Step};

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

/// A registered peer's display name (docs/adr/0016) and when it was recorded.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Naming {
    /// The name.
    pub name: MerchantName,
    /// Unix seconds of its `MerchantNamed` event: the next change waits
    /// `NAME_CHANGE_INTERVAL_SECS` after it (section 10: the log's growth is bounded).
    pub at: u64,
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
    /// The decision: redeemed (OK) or refused (NOK).
    pub state: WithdrawalState,
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
    /// The names registered peers gave themselves (docs/adr/0016), by UID.
    pub names: BTreeMap<Uid, Naming>,
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
    /// The transactions each customer has open, by kind (section 10's caps): derived from
    /// the tables above by the fold, so replay rebuilds it.
    pub open: OpenTxs,
    /// The seq of each transaction's first event. The store keys a transaction's rows by it
    /// (`store::tx_row_key`), so that a batch's new rows go to the end of each table in log
    /// order instead of to random places of it: a random key (a TxId, a sender's UID) costs
    /// the commit one page per row once a table outgrows a batch, and made the broker slower
    /// the more purchases it had recorded (architecture.md, "Where the time goes").
    pub first_seq: HashMap<TxId, u64>,
    /// The first event [`State::apply`] could not fold, after which it folds nothing.
    halt: Halt,
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
    /// Names.
    pub names: BTreeSet<Uid>,
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

impl Touched {
    /// Adds every key of `other`: what a batch of events touched in all, each row once.
    pub fn merge(&mut self, other: Touched) {
        let Touched {
            accounts,
            memos,
            pans,
            peers,
            names,
            scrip,
            exchanges,
            purchases,
            withdrawals,
            escrows,
            vendor_lapsed,
            replies,
            outbox,
            bindings,
        } = other;
        self.accounts.extend(accounts);
        self.memos.extend(memos);
        self.pans.extend(pans);
        self.peers.extend(peers);
        self.names.extend(names);
        self.scrip.extend(scrip);
        self.exchanges.extend(exchanges);
        self.purchases.extend(purchases);
        self.withdrawals.extend(withdrawals);
        self.escrows.extend(escrows);
        self.vendor_lapsed.extend(vendor_lapsed);
        self.replies.extend(replies);
        self.outbox.extend(outbox);
        self.bindings.extend(bindings);
    }
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
            names: BTreeMap::new(),
            live: LiveScrip::new(),
            exchanges: BTreeMap::new(),
            purchases: BTreeMap::new(),
            withdrawals: BTreeMap::new(),
            escrows: BTreeMap::new(),
            vendor_lapsed: BTreeSet::new(),
            replies: Replies::new(),
            bindings: TxBindings::new(),
            outbox: Outbox::new(),
            open: OpenTxs::default(),
            first_seq: HashMap::new(),
            halt: Halt::default(),
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

    /// Where the exchange of `tx` stands (6.2), if it was opened.
    #[must_use]
    pub fn exchange_state(&self, tx: &TxId) -> Option<&ExchangeState> {
        self.exchanges.get(tx).map(|e| &e.state)
    }

    /// Where the escrow of `tx` stands (6.5), if it was opened.
    #[must_use]
    pub fn escrow_state(&self, tx: &TxId) -> Option<&EscrowState> {
        self.escrows.get(tx).map(|e| &e.state)
    }

    /// The decision on the withdrawal of `tx` (6.7), if it was taken.
    #[must_use]
    pub fn withdrawal_state(&self, tx: &TxId) -> Option<&WithdrawalState> {
        self.withdrawals.get(tx).map(|w| &w.state)
    }

    /// The move an event of `kind` in `tx` makes in its three-party transaction, checked
    /// against where the transaction stands ([`Machine::transition`]); `None` for an event
    /// of no three-party transaction. Pure: the question the fold asks before it changes
    /// anything, and the auditor of every event of a log.
    pub fn transition(&self, tx: &TxId, kind: &Kind) -> Result<Option<Moved>, TransitionError> {
        Ok(match Step::of(kind) {
            None => None,
            Some(Step::Exchange(step)) => Some(Moved::Exchange(ExchangeState::transition(
                self.exchange_state(tx),
                &step,
            )?)),
            Some(Step::Escrow(step)) => Some(Moved::Escrow(EscrowState::transition(
                self.escrow_state(tx),
                &step,
            )?)),
            Some(Step::Withdrawal(step)) => Some(Moved::Withdrawal(WithdrawalState::transition(
                self.withdrawal_state(tx),
                &step,
            )?)),
        })
    }

    /// Folds one stored event into the state (see the module doc) and returns what changed;
    /// an event that is no legal move of its transaction is refused and changes nothing.
    /// The ledger is the caller's to check after it ([`State::check_touched`]), as every
    /// live append and a node's replay do.
    pub fn try_apply(&mut self, event: &BrokerEvent) -> Result<Touched, IllegalEvent> {
        self.fold(event)
    }

    /// [`State::try_apply`] for a caller that folds a whole log and only then looks at the
    /// state (a node's replay, which renders the tables and compares them with its file's):
    /// the first event that is no legal move folds nothing and halts the state, which then
    /// folds nothing more, and `store::render` refuses a halted state with that event's
    /// [`IllegalEvent`]. So a replay never serves a state its log does not justify.
    pub fn apply(&mut self, event: &BrokerEvent) -> Touched {
        Halt::fold(self, |s| &mut s.halt, State::try_apply, event)
    }

    /// The event that halted [`State::apply`], if one did.
    #[must_use]
    pub fn halted(&self) -> Option<&IllegalEvent> {
        self.halt.event()
    }

    /// [`State::try_apply`] without the ledger assertion: for an auditor, who reads logs it
    /// does not trust and reports a broken invariant ([`State::check_conserved`]) instead of
    /// stopping.
    pub fn fold(&mut self, event: &BrokerEvent) -> Result<Touched, IllegalEvent> {
        let tx = event.tx;
        let kind = &event.kind.kind;
        let moved = self
            .transition(&tx, kind)
            .map_err(|e| e.at(event.seq, tx))?;
        self.first_seq.entry(tx).or_insert(event.seq);
        let was_open = self.open_in(&tx);
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
        self.apply_kind(tx, event.time, kind, &mut touched);
        match moved {
            Some(Moved::Exchange(s)) => {
                enter(&mut self.exchanges, &mut touched.exchanges, tx, kind, s)
            }
            Some(Moved::Escrow(s)) => enter(&mut self.escrows, &mut touched.escrows, tx, kind, s),
            Some(Moved::Withdrawal(s)) => {
                enter(&mut self.withdrawals, &mut touched.withdrawals, tx, kind, s);
            }
            None => {}
        }
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
        let is_open = self.open_in(&tx);
        if was_open != is_open {
            if let Some((kind, customer)) = was_open {
                self.open.close(kind, customer, &tx);
            }
            if let Some((kind, customer)) = is_open {
                let at = event.time.to_secs();
                if kind == OpenKind::Purchase {
                    let before = at.saturating_sub_secs(PURCHASE_WINDOW_SECS);
                    self.open.forget_before(kind, customer, before);
                }
                self.open.open(kind, customer, tx, at);
            }
        }
        Ok(touched)
    }

    /// What `tx` holds open against its peer's caps (section 10): an exchange with no
    /// decision, an escrow holding `B0` (the customer's), an announcement no
    /// `PurchaseCompleted` matched (the customer's), a report no announcement matched (the
    /// merchant's).
    fn open_in(&self, tx: &TxId) -> Option<(OpenKind, Uid)> {
        if let Some(e) = self.exchanges.get(tx) {
            return (e.state == ExchangeState::Open).then_some((OpenKind::Exchange, e.customer));
        }
        if let Some(e) = self.escrows.get(tx) {
            return (e.state == EscrowState::Open).then_some((OpenKind::Escrow, e.customer));
        }
        let p = self.purchases.get(tx)?;
        match (p.initiated, p.completed) {
            _ if p.recorded => None,
            (Some(_), _) => Some((OpenKind::Purchase, p.customer)),
            (None, Some(_)) => Some((OpenKind::Purchase, p.merchant)),
            (None, None) => None,
        }
    }

    fn apply_kind(
        &mut self,
        tx: TxId,
        time: shared::UnixMillis,
        kind: &Kind,
        touched: &mut Touched,
    ) {
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
                customer, merchant, ..
            } => {
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
            }
            // Binds the tx when no notice did (a refusal with no exchange, 6.2 step 4).
            Kind::ExchangeRefused {
                customer, merchant, ..
            } => {
                self.bind_with(
                    tx,
                    TxKind::ObtainVendorScrip,
                    *customer,
                    vec![*merchant],
                    touched,
                );
            }
            Kind::ExchangeExpired { .. } => {}
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
                customer, merchant, ..
            }
            | Kind::VendorWithdrawRefused {
                customer, merchant, ..
            } => self.bind_with(
                tx,
                TxKind::WithdrawVendorScrip,
                *customer,
                vec![*merchant],
                touched,
            ),
            Kind::EscrowOpened {
                customer,
                merchant,
                scrip,
                deadline,
                ..
            } => {
                let held = self.live.hold(scrip, tx, *deadline);
                debug_assert!(held, "escrow {tx} holds scrip {scrip} that was not live");
                touched.scrip.insert(*scrip);
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
            }
            Kind::EscrowReleased { scrip, .. } => {
                let released = self.live.release(scrip, tx);
                debug_assert!(
                    released,
                    "escrow {tx} released scrip {scrip} it did not hold"
                );
                touched.scrip.insert(*scrip);
            }
            Kind::VendorTopUpRefused { .. } => {}
            Kind::MerchantNamed { merchant, name } => {
                self.names.insert(
                    *merchant,
                    Naming {
                        name: name.clone(),
                        at: time.to_secs().get(),
                    },
                );
                touched.names.insert(*merchant);
            }
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

/// The row a three-party transaction keeps its state in, one per tx, in the table of its
/// machine: made by the transaction's first event, whose terms it records; the later
/// events change only its state.
trait Row: Sized {
    /// The machine's state.
    type State: PartialEq;

    /// The row the first event `kind` of the transaction makes, in `state`.
    fn opened(kind: &Kind, state: Self::State) -> Option<Self>;

    /// Its state.
    fn state_mut(&mut self) -> &mut Self::State;
}

impl Row for Exchange {
    type State = ExchangeState;

    fn opened(kind: &Kind, state: ExchangeState) -> Option<Exchange> {
        match *kind {
            Kind::ExchangeOpened {
                customer,
                merchant,
                deadline,
            } => Some(Exchange {
                customer,
                merchant,
                deadline,
                state,
            }),
            // Refused with no exchange announced (6.2 step 4): never open, so no deadline;
            // the row keeps the tx from opening later.
            Kind::ExchangeRefused {
                customer, merchant, ..
            } => Some(Exchange {
                customer,
                merchant,
                deadline: 0,
                state,
            }),
            _ => None,
        }
    }

    fn state_mut(&mut self) -> &mut ExchangeState {
        &mut self.state
    }
}

impl Row for Escrow {
    type State = EscrowState;

    fn opened(kind: &Kind, state: EscrowState) -> Option<Escrow> {
        match *kind {
            Kind::EscrowOpened {
                customer,
                merchant,
                scrip,
                top_up,
                new_value,
                deadline,
            } => Some(Escrow {
                customer,
                merchant,
                scrip,
                top_up,
                new_value,
                deadline,
                state,
            }),
            _ => None,
        }
    }

    fn state_mut(&mut self) -> &mut EscrowState {
        &mut self.state
    }
}

impl Row for Withdrawal {
    type State = WithdrawalState;

    /// 6.7 has no state at the broker before its decision: the decision makes the row.
    fn opened(kind: &Kind, state: WithdrawalState) -> Option<Withdrawal> {
        match *kind {
            Kind::VendorScripRedeemed {
                customer,
                merchant,
                value,
            }
            | Kind::VendorWithdrawRefused {
                customer,
                merchant,
                value,
                ..
            } => Some(Withdrawal {
                customer,
                merchant,
                value,
                state,
            }),
            _ => None,
        }
    }

    fn state_mut(&mut self) -> &mut WithdrawalState {
        &mut self.state
    }
}

/// Records the state a three-party transaction moved to (checked by
/// [`State::transition`]) in its row of `rows`: a new row for its first event, else the
/// row's new state. The tx is touched when its row changed.
fn enter<R: Row>(
    rows: &mut BTreeMap<TxId, R>,
    touched: &mut BTreeSet<TxId>,
    tx: TxId,
    kind: &Kind,
    state: R::State,
) {
    let changed = match rows.get_mut(&tx) {
        Some(row) => {
            let old = row.state_mut();
            let changed = *old != state;
            *old = state;
            changed
        }
        None => R::opened(kind, state)
            .map(|row| rows.insert(tx, row))
            .is_some(),
    };
    if changed {
        touched.insert(tx);
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
    use shared::node::{Recorded, ScripState};

    fn state() -> State {
        let mut s = State::new(Suite::Modern);
        s.accounts.insert(Account::External, -100);
        s.accounts.insert(Account::Bank(Pan::new("A")), 100);
        s
    }

    fn event(seq: u64, tx: TxId, kind: Kind) -> BrokerEvent {
        let sent = Vec::new();
        shared::fixtures::event(seq, tx, Recorded { kind, sent })
    }

    const C: Uid = Uid([1; 16]);
    const M: Uid = Uid([2; 16]);
    const TX: TxId = TxId([9; 16]);

    fn opened() -> Kind {
        Kind::ExchangeOpened {
            customer: C,
            merchant: M,
            deadline: 100,
        }
    }

    fn expired() -> Kind {
        Kind::ExchangeExpired {
            customer: C,
            merchant: M,
        }
    }

    fn refused() -> Kind {
        Kind::ExchangeRefused {
            customer: C,
            merchant: M,
            reason: shared::wire::Reason::new(shared::ErrorCode::DeadlinePassed, "late"),
        }
    }

    /// A refusal with no exchange announced (6.2 step 4) makes a refused row and binds the
    /// tx, so the notice cannot open it later; it holds nothing open.
    #[test]
    fn a_refusal_without_a_notice_closes_the_tx() {
        let mut s = State::new(Suite::Modern);
        let touched = s.try_apply(&event(1, TX, refused())).unwrap();
        assert!(touched.exchanges.contains(&TX) && touched.bindings.contains(&TX));
        assert_eq!(s.exchange_state(&TX), Some(&ExchangeState::Refused));
        assert!(
            s.try_apply(&event(2, TX, opened())).is_err(),
            "too late to open"
        );
        assert_eq!(s.open, OpenTxs::default());
    }

    /// The customer's open exchanges follow the fold: opened counts, decided does not.
    #[test]
    fn open_exchanges_are_counted_until_decided() {
        let mut s = State::new(Suite::Modern);
        s.try_apply(&event(1, TX, opened())).unwrap();
        assert_eq!(s.open.count(OpenKind::Exchange, C, None), 1);
        s.try_apply(&event(2, TX, expired())).unwrap();
        assert_eq!(s.open.count(OpenKind::Exchange, C, None), 0);
    }

    /// The fold moves an exchange through its machine: expired, then the late request's
    /// recorded NOK, which leaves it expired.
    #[test]
    fn the_fold_moves_an_exchange_through_its_machine() {
        let mut s = State::new(Suite::Modern);
        let touched = s.try_apply(&event(1, TX, opened())).unwrap();
        assert!(touched.exchanges.contains(&TX) && touched.bindings.contains(&TX));
        assert_eq!(s.exchange_state(&TX), Some(&ExchangeState::Open));
        s.try_apply(&event(2, TX, expired())).unwrap();
        let touched = s.try_apply(&event(3, TX, refused())).unwrap();
        assert_eq!(s.exchange_state(&TX), Some(&ExchangeState::Expired));
        assert!(
            touched.exchanges.is_empty(),
            "an unchanged row is not rewritten"
        );
    }

    /// An event that is no legal move is refused whole: nothing of it is folded, and the
    /// error names the event, the machine, the state and the step.
    #[test]
    fn the_fold_refuses_an_event_out_of_order() {
        let mut s = State::new(Suite::Modern);
        let before = s.clone();
        let illegal = s.try_apply(&event(1, TX, expired())).unwrap_err();
        assert_eq!((illegal.seq, illegal.tx), (1, TX));
        assert_eq!(illegal.transition.step, "ExchangeExpired");
        assert_eq!(illegal.transition.from, None);
        assert_eq!(s, before, "nothing folded");
        s.try_apply(&event(1, TX, opened())).unwrap();
        s.try_apply(&event(2, TX, expired())).unwrap();
        let illegal = s.try_apply(&event(3, TX, expired())).unwrap_err();
        assert_eq!(
            illegal.to_string(),
            format!(
                "event 3 of tx {TX}: 6.2 exchange at the broker: ExchangeExpired cannot follow \
                 Expired"
            )
        );
        assert!(
            s.try_apply(&event(3, TX, opened())).is_err(),
            "opened twice"
        );
    }

    /// `apply` (a replay that looks at the state only at the end) halts at the first
    /// illegal event and folds nothing after it.
    #[test]
    fn apply_halts_at_the_first_event_out_of_order() {
        let mut s = State::new(Suite::Modern);
        s.apply(&event(1, TX, expired()));
        assert_eq!(s.halted().map(|e| e.seq), Some(1));
        assert_eq!(s.apply(&event(2, TX, opened())), Touched::default());
        assert!(s.exchanges.is_empty());
        assert_eq!(s.halted().map(|e| e.seq), Some(1));
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
