//! The merchant's state (design brief of issue 4, point 2): the in-memory projection of its
//! log, `BTreeMap`s in deterministic order, plus the peer keys it was given.
//!
//! [`Tables`] is what replay rebuilds (protocol.md section 8) and what the redb projection
//! mirrors row by row; the peer keys are not derived from the log and are kept beside it.

use std::collections::BTreeMap;

use shared::wire::bodies::{OrderInfo, Receipt};
use shared::{Amount, PublicKey, TxId, Uid};

/// A recorded purchase (6.3 step 3, "order recorded").
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
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
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Unreported {
    /// `UID_C`.
    pub customer: Uid,
    /// `W_P`.
    pub value: Amount,
}

/// The merchant's VendorScrip books: every unit of value the merchant ever issued against
/// a payment by the broker is either still live, or was paid for goods. Renewal and
/// change move value between scrip and create none (protocol.md section 4, "Value is
/// conserved").
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Books {
    /// Value issued by `VendorScripIssued` (6.2, 6.5).
    pub issued: Amount,
    /// Value paid for goods by `PurchaseMade` (6.3).
    pub paid: Amount,
}

/// The projection of the merchant's log (protocol.md section 8).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Tables {
    /// Recorded purchases, by tx.
    pub orders: BTreeMap<TxId, Order>,
    /// `PurchaseCompleted` reports not yet acknowledged by the broker, by tx.
    pub unreported: BTreeMap<TxId, Unreported>,
    /// The VendorScrip books.
    pub books: Books,
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

impl State {
    /// An empty state with no known peers.
    #[must_use]
    pub fn new() -> State {
        State::default()
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
}
