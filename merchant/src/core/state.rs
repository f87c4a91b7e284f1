//! The merchant's state (docs/adr/0006): the in-memory projection of its
//! log, `BTreeMap`s in deterministic order, plus the peer keys it was given.
//!
//! [`Tables`] is what replay rebuilds (protocol.md section 8) and what the redb projection
//! mirrors row by row (`store`); [`State::try_apply`] is the one fold, used live and in
//! replay, and reports the rows it touched so that the projection writes exactly those.
//! Before it changes anything it asks the three-party machines ([`super::machine`], through
//! [`State::transition`], the question `decide` and the auditor ask too) whether the event
//! is a legal move of its transaction; one that is not is refused whole
//! ([`IllegalEvent`]), never folded. The peer keys are not derived from the log and are
//! kept beside the tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::events::Event;
use shared::machine::{Halt, IllegalEvent, Machine, TransitionError};
use shared::node::{
    LiveScrip, OpenKind, OpenTxs, Outbox, Recorded, Replies, ReplyKey, TxBinding, TxBindings,
    TxKind, record_sent,
};
use shared::wire::Label;
use shared::wire::bodies::{OrderInfo, Receipt};
use shared::{Amount, PublicKey, ScripId, TxId, Uid};

use super::events::{Escrow, Kind};
use super::machine::{
    ExchangeState, ExchangeStep, Moved, Step, TopUpState, TopUpStep, WithdrawState, WithdrawStep,
};

/// A request of the merchant to the broker that awaits the broker's signed decision
/// (protocol.md section 7: the merchant repeats it until it has the decision, and never
/// undoes on its own timer). Its frame is in the outbox under (tx, broker).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum Awaiting {
    /// 6.2 step 3: `ExchangeAuthorizationRequest`; C's request is answered on the decision.
    Exchange {
        /// `UID_C`.
        customer: Uid,
        /// `W`.
        value: Amount,
        /// C's request, answered once the broker decides.
        request: ReplyKey,
        /// Its digest.
        digest: Vec<u8>,
    },
    /// 6.5 step 3: `VendorTopUpAccepted` (accept, V0 held; or decline, nothing held).
    TopUp {
        /// `UID_C`.
        customer: Uid,
        /// Accepted with V0 held, or declined (never `Decided`: a decided top-up awaits
        /// nothing).
        state: TopUpState,
        /// `W_V`.
        top_up: Amount,
        /// `W_V1` (zero for a decline).
        new_value: Amount,
        /// The digest of the merchant's step 3, which the decision's `re` must carry.
        digest: Vec<u8>,
    },
    /// 6.7 step 2: `VendorWithdrawAuthorization`, V0 held.
    Withdraw {
        /// `UID_C`.
        customer: Uid,
        /// V0.
        held: ScripId,
        /// `W = V0.value`.
        value: Amount,
    },
    /// Section 4, lapse: `ScripLapsedNotice`, the scrip already removed; the broker's
    /// signed `Ack` must carry `digest`.
    Lapse {
        /// The scrip's owner.
        owner: Uid,
        /// The lapsed scrip.
        scrip_id: ScripId,
        /// Its value.
        value: Amount,
        /// The notice's request digest.
        digest: Vec<u8>,
    },
}

impl Awaiting {
    /// The label of the merchant's request to the broker.
    #[must_use]
    pub const fn label(&self) -> Label {
        match self {
            Awaiting::Exchange { .. } => Label::ExchangeAuthorizationRequest,
            Awaiting::TopUp { .. } => Label::VendorTopUpAccepted,
            Awaiting::Withdraw { .. } => Label::VendorWithdrawAuthorization,
            Awaiting::Lapse { .. } => Label::ScripLapsedNotice,
        }
    }

    /// `UID_C` (for a lapse, the scrip's owner).
    #[must_use]
    pub const fn customer(&self) -> Uid {
        match self {
            Awaiting::Exchange { customer, .. }
            | Awaiting::TopUp { customer, .. }
            | Awaiting::Withdraw { customer, .. }
            | Awaiting::Lapse {
                owner: customer, ..
            } => *customer,
        }
    }
}

/// A recorded purchase (6.3 step 3, "order recorded").
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Order {
    /// Who bought.
    pub customer: Uid,
    /// What, as the customer signed it.
    pub order: OrderInfo,
    /// The merchant's receipt: W_P and the time.
    pub receipt: Receipt,
}

/// A `PurchaseCompleted` report the merchant owes the broker (6.3 step 5): recorded with
/// the purchase, sent (again after every restart) until the broker acknowledges it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Unreported {
    /// `UID_C`.
    pub customer: Uid,
    /// `W_P`.
    pub value: Amount,
}

/// The merchant's VendorScrip books: every unit of value the merchant ever issued against
/// a payment by the broker is either still live, was paid for goods, or was withdrawn to
/// the customer's bank account (6.7). Renewal and change move value between scrip and
/// create none (protocol.md section 4, "Value is conserved"): `issued = live + paid +
/// withdrawn`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Books {
    /// Value issued by `VendorScripIssued` (6.2, 6.5).
    pub issued: Amount,
    /// Value paid for goods by `PurchaseMade` (6.3).
    pub paid: Amount,
    /// Value withdrawn by `VendorScripWithdrawn` (6.7).
    pub withdrawn: Amount,
}

/// The projection of the merchant's log (protocol.md section 8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// The live VendorScrip of this merchant (section 4's lookup table).
    pub live: LiveScrip,
    /// Stored replies by (sender, tx, label), for repeats (section 7).
    pub replies: Replies,
    /// Who each tx belongs to (section 7).
    pub bindings: TxBindings,
    /// Every frame sent, by (tx, recipient), for `TransactionStatus` (section 7).
    pub outbox: Outbox,
    /// Recorded purchases, by tx.
    pub orders: BTreeMap<TxId, Order>,
    /// `PurchaseCompleted` reports not yet acknowledged by the broker, by tx.
    pub unreported: BTreeMap<TxId, Unreported>,
    /// The VendorScrip books.
    pub books: Books,
    /// The merchant's requests to the broker awaiting its decision (6.2, 6.5, 6.7), by tx.
    pub awaiting: BTreeMap<TxId, Awaiting>,
}

/// The rows one event changed, by table: what the redb projection rewrites.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Touched {
    /// Live-table rows (issued or removed).
    pub live: Vec<ScripId>,
    /// Stored replies added.
    pub replies: Vec<ReplyKey>,
    /// Bindings added.
    pub bindings: Vec<TxId>,
    /// Outbox rows appended to.
    pub outbox: Vec<(TxId, Uid)>,
    /// Orders added.
    pub orders: Vec<TxId>,
    /// Unreported rows added or removed.
    pub unreported: Vec<TxId>,
    /// Whether the books changed.
    pub books: bool,
    /// Awaiting rows added or removed.
    pub awaiting: Vec<TxId>,
}

impl Touched {
    /// Adds every row of `other`: what a batch of events touched in all.
    pub fn merge(&mut self, other: Touched) {
        let Touched {
            live,
            replies,
            bindings,
            outbox,
            orders,
            unreported,
            books,
            awaiting,
        } = other;
        self.live.extend(live);
        self.replies.extend(replies);
        self.bindings.extend(bindings);
        self.outbox.extend(outbox);
        self.orders.extend(orders);
        self.unreported.extend(unreported);
        self.books |= books;
        self.awaiting.extend(awaiting);
    }

    /// Each row once (rows several events of a batch touched are written once).
    pub fn dedup(&mut self) {
        fn once<T: Ord>(rows: &mut Vec<T>) {
            rows.sort_unstable();
            rows.dedup();
        }
        once(&mut self.live);
        once(&mut self.replies);
        once(&mut self.bindings);
        once(&mut self.outbox);
        once(&mut self.orders);
        once(&mut self.unreported);
        once(&mut self.awaiting);
    }
}

/// The merchant's state.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Public keys of peers, by UID. In this session a test (and later the actor shell)
    /// fills it; the shell will fetch a missing key from the broker by 6.0b, the only way a
    /// key arrives (protocol.md section 6.0b). Not derived from the log, so not replayed.
    peers: BTreeMap<Uid, PublicKey>,
    /// The projection.
    pub tables: Tables,
    /// The requests each customer has open with the broker through this merchant, by kind
    /// (section 10's caps): derived from `tables.awaiting` by the fold, so replay rebuilds
    /// it.
    pub open: OpenTxs,
    /// The first event [`State::apply`] could not fold, after which it folds nothing.
    halt: Halt,
}

/// The books do not balance: `issued` differs from `live + paid + withdrawn`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "VendorScrip books: issued {issued}, but live {live} + paid {paid} + withdrawn {withdrawn}"
)]
pub struct BooksError {
    /// Value issued, minor units.
    pub issued: u128,
    /// Value of the live (and held) VendorScrip.
    pub live: u128,
    /// Value paid for goods.
    pub paid: u128,
    /// Value withdrawn (6.7) or lapsed (section 4).
    pub withdrawn: u128,
}

impl State {
    /// The merchant's ledger invariant ([`Books`]): `issued = live + paid + withdrawn`, in
    /// the time of an event, not of the state (the live table keeps its value as it
    /// changes). A node checks it after every event it appends, release builds included,
    /// and refuses to write an event that breaks it (`store::Mirror`).
    pub fn check_books(&self) -> Result<(), BooksError> {
        let t = &self.tables;
        let error = BooksError {
            issued: u128::from(t.books.issued.minor()),
            live: t.live.value(),
            paid: u128::from(t.books.paid.minor()),
            withdrawn: u128::from(t.books.withdrawn.minor()),
        };
        if error.issued == error.live + error.paid + error.withdrawn {
            Ok(())
        } else {
            Err(error)
        }
    }

    /// An empty state with no known peers.
    #[must_use]
    pub fn new() -> State {
        State::default()
    }

    /// An empty state that knows these peers.
    #[must_use]
    pub fn with_peers(peers: impl IntoIterator<Item = PublicKey>) -> State {
        let mut state = State::new();
        for key in peers {
            state.add_peer(key);
        }
        state
    }

    /// Records a peer's public key under its UID (the UID is the key's hash, so it cannot
    /// be recorded under another).
    pub fn add_peer(&mut self, key: PublicKey) {
        self.peers.insert(key.uid(), key);
    }

    /// The public key of `uid`, if known.
    #[must_use]
    pub fn peer_key(&self, uid: &Uid) -> Option<&PublicKey> {
        self.peers.get(uid)
    }

    /// Every known peer key, in UID order.
    pub fn peer_keys(&self) -> impl Iterator<Item = &PublicKey> {
        self.peers.values()
    }

    /// The value of every live (and held) VendorScrip, checked.
    pub fn live_value(&self) -> Result<Amount, shared::AmountError> {
        Amount::checked_sum(self.tables.live.iter().map(|(_, r)| r.body.value))
    }

    /// Where the exchange of `tx` stands (6.2), if it began.
    #[must_use]
    pub fn exchange_state(&self, tx: &TxId) -> Option<ExchangeState> {
        self.standing(
            tx,
            TxKind::ObtainVendorScrip,
            ExchangeState::Decided,
            |row| matches!(row, Awaiting::Exchange { .. }).then_some(ExchangeState::Requested),
        )
    }

    /// Where the top-up of `tx` stands (6.5), if it began.
    #[must_use]
    pub fn top_up_state(&self, tx: &TxId) -> Option<TopUpState> {
        self.standing(
            tx,
            TxKind::TopUpVendorScrip,
            TopUpState::Decided,
            |row| match row {
                Awaiting::TopUp { state, .. } => Some(*state),
                _ => None,
            },
        )
    }

    /// Where the withdrawal of `tx` stands (6.7), if it began.
    #[must_use]
    pub fn withdraw_state(&self, tx: &TxId) -> Option<WithdrawState> {
        let held = |row: &Awaiting| match row {
            Awaiting::Withdraw { held, .. } => Some(WithdrawState::Held { held: *held }),
            _ => None,
        };
        self.standing(
            tx,
            TxKind::WithdrawVendorScrip,
            WithdrawState::Decided,
            held,
        )
    }

    /// Where `tx` stands in the machine of the transactions of `kind` (see
    /// [`super::machine`]): the state its `awaiting` row keeps, as `waiting` reads it (a row
    /// of another machine reads as none); else, bound to `kind` and awaiting nothing,
    /// `decided`; else nowhere (not begun).
    fn standing<S>(
        &self,
        tx: &TxId,
        kind: TxKind,
        decided: S,
        waiting: impl FnOnce(&Awaiting) -> Option<S>,
    ) -> Option<S> {
        match self.tables.awaiting.get(tx) {
            Some(row) => waiting(row),
            None => {
                let bound = self.tables.bindings.get(tx);
                bound.is_some_and(|b| b.kind == kind).then_some(decided)
            }
        }
    }

    /// The step of a three-party transaction an event of `kind` in `tx` is, if any. A
    /// `VendorScripIssued` is 6.2's step only in a tx of 6.2 (an operator's issuance is
    /// none); a `VendorEscrowReleased` ends the escrow of the tx's own transaction.
    fn step(&self, tx: &TxId, kind: &Kind) -> Option<Step> {
        Some(match kind {
            Kind::ExchangeRequested { .. } => Step::Exchange(ExchangeStep::Requested),
            Kind::VendorScripIssued { .. } => {
                self.exchange_state(tx)?;
                Step::Exchange(ExchangeStep::Issued)
            }
            Kind::ExchangeRefused { .. } => Step::Exchange(ExchangeStep::Refused),
            Kind::VendorEscrowOpened {
                scrip_id,
                escrow: Escrow::TopUp { .. },
                ..
            } => Step::TopUp(TopUpStep::Accepted { held: *scrip_id }),
            Kind::VendorEscrowOpened {
                scrip_id,
                escrow: Escrow::Withdraw { .. },
                ..
            } => Step::Withdraw(WithdrawStep::Held { held: *scrip_id }),
            Kind::VendorTopUpDeclined { .. } => Step::TopUp(TopUpStep::Declined),
            Kind::VendorTopUpClosed => Step::TopUp(TopUpStep::Closed),
            Kind::VendorScripToppedUp { old, .. } => Step::TopUp(TopUpStep::ToppedUp {
                spent: old.scrip_id,
            }),
            Kind::VendorScripWithdrawn { spent, .. } => Step::Withdraw(WithdrawStep::Withdrawn {
                spent: spent.scrip_id,
            }),
            Kind::VendorEscrowReleased { scrip_id, .. } => {
                if self.withdraw_state(tx).is_some() {
                    Step::Withdraw(WithdrawStep::Released { scrip: *scrip_id })
                } else {
                    Step::TopUp(TopUpStep::Released { scrip: *scrip_id })
                }
            }
            Kind::PurchaseMade { .. }
            | Kind::PurchaseReported
            | Kind::ScripRenewed { .. }
            | Kind::ScripLapsed { .. }
            | Kind::LapseReported => return None,
        })
    }

    /// The move an event of `kind` in `tx` makes in its three-party transaction, checked
    /// against where the transaction stands ([`Machine::transition`]); `None` for an event
    /// of no three-party transaction. Pure: the question the fold asks before it changes
    /// anything, and the auditor of every event of a log.
    pub fn transition(&self, tx: &TxId, kind: &Kind) -> Result<Option<Moved>, TransitionError> {
        Ok(match self.step(tx, kind) {
            None => None,
            Some(Step::Exchange(step)) => Some(Moved::Exchange(ExchangeState::transition(
                self.exchange_state(tx).as_ref(),
                &step,
            )?)),
            Some(Step::TopUp(step)) => Some(Moved::TopUp(TopUpState::transition(
                self.top_up_state(tx).as_ref(),
                &step,
            )?)),
            Some(Step::Withdraw(step)) => Some(Moved::Withdraw(WithdrawState::transition(
                self.withdraw_state(tx).as_ref(),
                &step,
            )?)),
        })
    }

    /// [`State::try_apply`] for a caller that folds a whole log and only then looks at the
    /// state (a node's replay, which renders the tables and compares them with its file's):
    /// the first event that is no legal move folds nothing and halts the state, which then
    /// folds nothing more, and `store::rows_of` refuses a halted state with that event's
    /// [`IllegalEvent`]. So a replay never serves a state its log does not justify.
    pub fn apply(&mut self, event: &Event<Recorded<Kind>>) -> Touched {
        Halt::fold(self, |s| &mut s.halt, State::try_apply, event)
    }

    /// The event that halted [`State::apply`], if one did.
    #[must_use]
    pub fn halted(&self) -> Option<&IllegalEvent> {
        self.halt.event()
    }

    /// Folds one stored event into the tables (protocol.md section 8) and returns the rows
    /// it touched; an event that is no legal move of its transaction is refused and changes
    /// nothing. The invariants `decide` guaranteed are asserted in debug builds (a scrip
    /// spent is live, a purchase conserves value: consumed = paid + change).
    pub fn try_apply(&mut self, event: &Event<Recorded<Kind>>) -> Result<Touched, IllegalEvent> {
        let tx = event.tx;
        let kind = &event.kind.kind;
        let moved = self
            .transition(&tx, kind)
            .map_err(|e| e.at(event.seq, tx))?;
        let was_open = self.open_in(&tx);
        let mut touched = Touched::default();
        let t = &mut self.tables;
        match kind {
            Kind::VendorScripIssued { scrip, owner } => {
                t.live.issue(*scrip, *owner);
                touched.live.push(scrip.scrip_id);
                t.books.issued = add(t.books.issued, scrip.value);
                touched.books = true;
            }
            Kind::PurchaseMade {
                customer,
                spent,
                change,
                order,
                receipt,
            } => {
                let removed = t.live.remove(&spent.scrip_id);
                debug_assert!(removed.is_some(), "purchase spent a scrip that is not live");
                touched.live.push(spent.scrip_id);
                let change_value = change.map_or(Amount::default(), |c| c.value);
                debug_assert_eq!(
                    spent.value.checked_sub(receipt.paid).ok(),
                    Some(change_value),
                    "a purchase must conserve value: consumed = paid + change"
                );
                if let Some(change) = change {
                    t.live.issue(*change, *customer);
                    touched.live.push(change.scrip_id);
                }
                bind(
                    t,
                    &mut touched,
                    tx,
                    TxKind::BuyItem,
                    *customer,
                    spent.producer,
                );
                t.orders.insert(
                    tx,
                    Order {
                        customer: *customer,
                        order: order.clone(),
                        receipt: receipt.clone(),
                    },
                );
                touched.orders.push(tx);
                t.unreported.insert(
                    tx,
                    Unreported {
                        customer: *customer,
                        value: receipt.paid,
                    },
                );
                touched.unreported.push(tx);
                t.books.paid = add(t.books.paid, receipt.paid);
                touched.books = true;
            }
            Kind::PurchaseReported => {
                t.unreported.remove(&tx);
                touched.unreported.push(tx);
            }
            Kind::ScripRenewed { owner, old, new } => {
                let removed = t.live.remove(&old.scrip_id);
                debug_assert!(removed.is_some(), "renewal spent a scrip that is not live");
                debug_assert_eq!(old.value, new.value, "a renewal keeps the value");
                t.live.issue(*new, *owner);
                touched.live.extend([old.scrip_id, new.scrip_id]);
                bind(t, &mut touched, tx, TxKind::Renew, *owner, old.producer);
            }
            Kind::ExchangeRequested {
                customer, merchant, ..
            } => {
                bind(
                    t,
                    &mut touched,
                    tx,
                    TxKind::ObtainVendorScrip,
                    *customer,
                    *merchant,
                );
            }
            Kind::ExchangeRefused { .. } | Kind::VendorTopUpClosed => {}
            Kind::VendorEscrowOpened {
                customer,
                scrip_id,
                until,
                escrow,
            } => {
                let held = t.live.hold(scrip_id, tx, *until);
                debug_assert!(held, "an escrow held a scrip that is not live");
                touched.live.push(*scrip_id);
                let kind = match escrow {
                    Escrow::TopUp { .. } => TxKind::TopUpVendorScrip,
                    Escrow::Withdraw { .. } => TxKind::WithdrawVendorScrip,
                };
                let me = t.live.get(scrip_id).map(|r| r.body.producer);
                if let Some(me) = me {
                    bind(t, &mut touched, tx, kind, *customer, me);
                }
            }
            Kind::VendorTopUpDeclined {
                customer, merchant, ..
            } => {
                bind(
                    t,
                    &mut touched,
                    tx,
                    TxKind::TopUpVendorScrip,
                    *customer,
                    *merchant,
                );
            }
            Kind::VendorScripToppedUp { customer, old, new } => {
                let removed = t.live.remove(&old.scrip_id);
                debug_assert!(
                    matches!(removed, Some(ref r) if r.state != shared::node::ScripState::Live),
                    "a top-up spent a scrip its escrow did not hold"
                );
                t.live.issue(*new, *customer);
                touched.live.extend([old.scrip_id, new.scrip_id]);
                let added = new.value.checked_sub(old.value);
                debug_assert!(added.is_ok(), "a top-up must not lower the value");
                t.books.issued = add(t.books.issued, added.unwrap_or_default());
                touched.books = true;
            }
            Kind::VendorScripWithdrawn { spent, .. } => {
                let removed = t.live.remove(&spent.scrip_id);
                debug_assert!(
                    removed.is_some(),
                    "a withdrawal spent a scrip that is not live"
                );
                touched.live.push(spent.scrip_id);
                t.books.withdrawn = add(t.books.withdrawn, spent.value);
                touched.books = true;
            }
            Kind::ScripLapsed {
                owner,
                scrip,
                digest,
            } => {
                let removed = t.live.remove(&scrip.scrip_id);
                debug_assert!(
                    matches!(removed, Some(ref r) if r.state == shared::node::ScripState::Live),
                    "a lapse removed a scrip that is not live or is held"
                );
                touched.live.push(scrip.scrip_id);
                t.books.withdrawn = add(t.books.withdrawn, scrip.value);
                touched.books = true;
                // The merchant starts this tx; the owner is its counterparty (the broker
                // binds it the same way, section 7).
                if t.bindings.bind(
                    tx,
                    TxBinding {
                        kind: TxKind::Lapse,
                        initiator: scrip.producer,
                        counterparties: vec![*owner],
                    },
                ) {
                    touched.bindings.push(tx);
                }
                t.awaiting.insert(
                    tx,
                    Awaiting::Lapse {
                        owner: *owner,
                        scrip_id: scrip.scrip_id,
                        value: scrip.value,
                        digest: digest.clone(),
                    },
                );
                touched.awaiting.push(tx);
            }
            Kind::LapseReported => {
                t.awaiting.remove(&tx);
                touched.awaiting.push(tx);
            }
            Kind::VendorEscrowReleased { scrip_id, .. } => {
                let released = t.live.release(scrip_id, tx);
                debug_assert!(released, "released a scrip this tx did not hold");
                touched.live.push(*scrip_id);
            }
        }
        if let Some(moved) = moved {
            enter(t, &mut touched, tx, kind, moved);
        }
        record_sent(&mut t.replies, &mut t.outbox, tx, &event.kind.sent);
        for sent in &event.kind.sent {
            touched.outbox.push((tx, sent.to));
            if let Some(answered) = &sent.answers {
                touched.replies.push(answered.key);
            }
        }
        let is_open = self.open_in(&tx);
        if was_open != is_open {
            if let Some((kind, customer)) = was_open {
                self.open.close(kind, customer, &tx);
            }
            if let Some((kind, customer)) = is_open {
                self.open.open(kind, customer, tx, event.time.to_secs());
            }
        }
        Ok(touched)
    }

    /// What `tx` holds open against its customer's caps (section 10): a request to the
    /// broker of 6.2 (an exchange), 6.5 or 6.7 (an escrow) awaiting its decision.
    fn open_in(&self, tx: &TxId) -> Option<(OpenKind, Uid)> {
        match self.tables.awaiting.get(tx)? {
            Awaiting::Exchange { customer, .. } => Some((OpenKind::Exchange, *customer)),
            Awaiting::TopUp { customer, .. } | Awaiting::Withdraw { customer, .. } => {
                Some((OpenKind::Escrow, *customer))
            }
            Awaiting::Lapse { .. } => None,
        }
    }
}

/// Records the state a three-party transaction moved to (checked by
/// [`State::transition`]): a waiting state is the request the merchant repeats, its
/// `awaiting` row, made from the event that began it; a final one takes the row away.
fn enter(t: &mut Tables, touched: &mut Touched, tx: TxId, kind: &Kind, moved: Moved) {
    touched.awaiting.push(tx);
    if moved.is_final() {
        t.awaiting.remove(&tx);
        return;
    }
    let row = match (moved, kind) {
        (
            Moved::Exchange(_),
            Kind::ExchangeRequested {
                customer,
                value,
                request,
                digest,
                ..
            },
        ) => Awaiting::Exchange {
            customer: *customer,
            value: *value,
            request: *request,
            digest: digest.clone(),
        },
        (Moved::TopUp(state), _) => {
            let (customer, top_up, new_value, digest) = match kind {
                Kind::VendorEscrowOpened {
                    customer,
                    escrow:
                        Escrow::TopUp {
                            top_up,
                            new_value,
                            digest,
                        },
                    ..
                } => (customer, top_up, *new_value, digest),
                // A decline undertakes no new value.
                Kind::VendorTopUpDeclined {
                    customer,
                    top_up,
                    digest,
                    ..
                } => (customer, top_up, Amount::default(), digest),
                _ => return,
            };
            Awaiting::TopUp {
                customer: *customer,
                state,
                top_up: *top_up,
                new_value,
                digest: digest.clone(),
            }
        }
        (
            Moved::Withdraw(WithdrawState::Held { held }),
            Kind::VendorEscrowOpened {
                customer,
                escrow: Escrow::Withdraw { value },
                ..
            },
        ) => Awaiting::Withdraw {
            customer: *customer,
            held,
            value: *value,
        },
        // Every waiting state is entered by one of the events above.
        _ => return,
    };
    t.awaiting.insert(tx, row);
}

/// Binds `tx` to its two parties with its first event (section 7); a later event of the
/// same tx keeps the first binding.
fn bind(t: &mut Tables, touched: &mut Touched, tx: TxId, kind: TxKind, initiator: Uid, me: Uid) {
    let binding = TxBinding {
        kind,
        initiator,
        counterparties: vec![me],
    };
    if t.bindings.bind(tx, binding) {
        touched.bindings.push(tx);
    }
}

/// A checked sum in the fold. `decide` refuses a request whose sum would overflow
/// (`AmountOutOfRange`), so this never saturates on an event it produced.
fn add(a: Amount, b: Amount) -> Amount {
    let sum = a.checked_add(b);
    debug_assert!(sum.is_ok(), "decide let an amount overflow");
    sum.unwrap_or(Amount::from_minor(u64::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;
    use shared::wire::{Label, Reason};
    use shared::{CustId, ErrorCode, ScripBody};

    const C: Uid = Uid([1; 16]);
    const M: Uid = Uid([2; 16]);
    const TX: TxId = TxId([9; 16]);

    fn event(seq: u64, tx: TxId, kind: Kind) -> Event<Recorded<Kind>> {
        let sent = Vec::new();
        shared::fixtures::event(seq, tx, Recorded { kind, sent })
    }

    fn requested() -> Kind {
        Kind::ExchangeRequested {
            customer: C,
            merchant: M,
            value: Amount::from_minor(5),
            request: ReplyKey {
                sender: C,
                tx: TX,
                label: Label::VendorScripRequest,
            },
            digest: vec![1],
        }
    }

    fn refused() -> Kind {
        Kind::ExchangeRefused {
            reason: Reason::new(ErrorCode::ExceedsScrip, "no"),
        }
    }

    fn issued(id: u8) -> Kind {
        Kind::VendorScripIssued {
            scrip: ScripBody {
                producer: M,
                value: Amount::from_minor(5),
                scrip_id: ScripId([id; 16]),
                cust_id: CustId([id; 16]),
                expires: 1_000,
            },
            owner: C,
        }
    }

    /// The exchange waits in `awaiting` until the decision, which takes it out; the tx is
    /// then decided, and nothing of 6.2 may follow.
    #[test]
    fn an_exchange_awaits_its_decision_then_is_decided() {
        let mut s = State::new();
        assert_eq!(s.exchange_state(&TX), None);
        s.try_apply(&event(1, TX, requested())).unwrap();
        assert_eq!(s.exchange_state(&TX), Some(ExchangeState::Requested));
        let touched = s.try_apply(&event(2, TX, issued(3))).unwrap();
        assert_eq!(touched.awaiting, vec![TX]);
        assert!(s.tables.awaiting.is_empty());
        assert_eq!(s.exchange_state(&TX), Some(ExchangeState::Decided));
        let before = s.tables.clone();
        for (seq, kind) in [(3, refused()), (3, issued(4)), (3, requested())] {
            let illegal = s.try_apply(&event(seq, TX, kind)).unwrap_err();
            assert_eq!(illegal.transition.from, Some("Decided"), "{illegal}");
        }
        assert_eq!(s.tables, before, "nothing folded");
    }

    /// An issuance in a tx of no exchange (the operator's) is no step of 6.2; a refusal
    /// there is out of order.
    #[test]
    fn an_issuance_outside_an_exchange_is_no_step() {
        let mut s = State::new();
        let other = TxId([8; 16]);
        assert_eq!(s.transition(&other, &issued(3)), Ok(None));
        s.try_apply(&event(1, other, issued(3))).unwrap();
        let illegal = s.try_apply(&event(2, TX, refused())).unwrap_err();
        assert_eq!(illegal.transition.machine, "6.2 exchange at the merchant");
        assert_eq!(illegal.transition.from, None);
    }

    /// A release with no escrow is refused before it touches the live table.
    #[test]
    fn a_release_of_no_escrow_is_refused() {
        let mut s = State::new();
        let release = Kind::VendorEscrowReleased {
            scrip_id: ScripId([3; 16]),
            reason: Reason::new(ErrorCode::DeadlinePassed, "late"),
        };
        let illegal = s.try_apply(&event(1, TX, release.clone())).unwrap_err();
        assert_eq!(illegal.transition.step, "VendorEscrowReleased");
        s.apply(&event(1, TX, release));
        assert_eq!(s.halted().map(|e| e.seq), Some(1));
        s.apply(&event(2, TX, requested()));
        assert!(s.tables.awaiting.is_empty(), "a halted state folds nothing");
    }
}
