//! The merchant's state (docs/adr/0006): the in-memory projection of its
//! log, `BTreeMap`s in deterministic order, plus the peer keys it was given.
//!
//! [`Tables`] is what replay rebuilds (protocol.md section 8) and what the redb projection
//! mirrors row by row (`store`); [`State::apply`] is the one fold, used live and in replay,
//! and reports the rows it touched so that the projection writes exactly those. The peer
//! keys are not derived from the log and are kept beside the tables.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use shared::events::Event;
use shared::node::{
    LiveScrip, Outbox, Recorded, Replies, ReplyKey, TxBinding, TxBindings, TxKind, record_sent,
};
use shared::wire::Label;
use shared::wire::bodies::{OrderInfo, Receipt};
use shared::{Amount, PublicKey, ScripId, TxId, Uid};

use super::events::{Escrow, Kind};

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
        /// V0 when accepted and held; `None` for a decline.
        held: Option<ScripId>,
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

/// The merchant's state.
#[derive(Clone, Debug, Default)]
pub struct State {
    /// Public keys of peers, by UID. In this session a test (and later the actor shell)
    /// fills it; the shell will fetch a missing key from the broker by 6.0b, the only way a
    /// key arrives (protocol.md section 6.0b). Not derived from the log, so not replayed.
    peers: BTreeMap<Uid, PublicKey>,
    /// The projection.
    pub tables: Tables,
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

    /// Folds one stored event into the tables (protocol.md section 8) and returns the rows
    /// it touched. Total: it never fails on an event `decide` produced; the invariants
    /// `decide` guaranteed are asserted in debug builds (a scrip spent is live, a purchase
    /// conserves value: consumed = paid + change).
    pub fn apply(&mut self, event: &Event<Recorded<Kind>>) -> Touched {
        let mut touched = Touched::default();
        let t = &mut self.tables;
        let tx = event.tx;
        match &event.kind.kind {
            Kind::VendorScripIssued { scrip, owner } => {
                t.live.issue(*scrip, *owner);
                touched.live.push(scrip.scrip_id);
                t.books.issued = add(t.books.issued, scrip.value);
                touched.books = true;
                // 6.2 step 7: the issue answers the exchange this tx awaited (only that: an
                // operator's issuance names no awaited exchange).
                let answers = matches!(
                    t.awaiting.get(&tx),
                    Some(Awaiting::Exchange { customer, value, .. })
                        if customer == owner && *value == scrip.value
                );
                if answers {
                    t.awaiting.remove(&tx);
                    touched.awaiting.push(tx);
                }
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
                customer,
                merchant,
                value,
                request,
                digest,
            } => {
                bind(
                    t,
                    &mut touched,
                    tx,
                    TxKind::ObtainVendorScrip,
                    *customer,
                    *merchant,
                );
                t.awaiting.insert(
                    tx,
                    Awaiting::Exchange {
                        customer: *customer,
                        value: *value,
                        request: *request,
                        digest: digest.clone(),
                    },
                );
                touched.awaiting.push(tx);
            }
            Kind::ExchangeRefused { .. } | Kind::VendorTopUpClosed => {
                t.awaiting.remove(&tx);
                touched.awaiting.push(tx);
            }
            Kind::VendorEscrowOpened {
                customer,
                scrip_id,
                until,
                escrow,
            } => {
                let held = t.live.hold(scrip_id, tx, *until);
                debug_assert!(held, "an escrow held a scrip that is not live");
                touched.live.push(*scrip_id);
                let (kind, awaiting) = match escrow {
                    Escrow::TopUp {
                        top_up,
                        new_value,
                        digest,
                    } => (
                        TxKind::TopUpVendorScrip,
                        Awaiting::TopUp {
                            customer: *customer,
                            held: Some(*scrip_id),
                            top_up: *top_up,
                            new_value: *new_value,
                            digest: digest.clone(),
                        },
                    ),
                    Escrow::Withdraw { value } => (
                        TxKind::WithdrawVendorScrip,
                        Awaiting::Withdraw {
                            customer: *customer,
                            held: *scrip_id,
                            value: *value,
                        },
                    ),
                };
                let me = t.live.get(scrip_id).map(|r| r.body.producer);
                if let Some(me) = me {
                    bind(t, &mut touched, tx, kind, *customer, me);
                }
                t.awaiting.insert(tx, awaiting);
                touched.awaiting.push(tx);
            }
            Kind::VendorTopUpDeclined {
                customer,
                merchant,
                top_up,
                digest,
                ..
            } => {
                bind(
                    t,
                    &mut touched,
                    tx,
                    TxKind::TopUpVendorScrip,
                    *customer,
                    *merchant,
                );
                t.awaiting.insert(
                    tx,
                    Awaiting::TopUp {
                        customer: *customer,
                        held: None,
                        top_up: *top_up,
                        new_value: Amount::default(),
                        digest: digest.clone(),
                    },
                );
                touched.awaiting.push(tx);
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
                t.awaiting.remove(&tx);
                touched.awaiting.push(tx);
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
                t.awaiting.remove(&tx);
                touched.awaiting.push(tx);
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
                t.awaiting.remove(&tx);
                touched.awaiting.push(tx);
            }
        }
        record_sent(&mut t.replies, &mut t.outbox, tx, &event.kind.sent);
        for sent in &event.kind.sent {
            touched.outbox.push((tx, sent.to));
            if let Some(answered) = &sent.answers {
                touched.replies.push(answered.key);
            }
        }
        touched
    }
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
