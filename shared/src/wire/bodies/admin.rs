//! The operator's administration messages (an extension of protocol.md section 6, ADR 0010):
//! the bank operator's account openings, deposits, payouts and balance queries, and the
//! broker operator's list of registered peers, sent to a running broker over the bus.
//!
//! `AdminRequest` is sealed to the broker and signed by the operator key the broker is
//! configured with; no other key may send it. An account opening carries the PANSecret the
//! operator's tool drew as `Inner::PanSecret` beside the signed body, never inside it, so the
//! body can be kept as evidence without keeping a secret (the rule of section 3 for
//! CustomerSecrets). `AdminResponse` is sealed to the operator: balances are private.

use serde::{Deserialize, Serialize};

use super::{Re, body, reply};
use crate::amount::Amount;
use crate::ids::{Pan, Uid};
use crate::wire::codec::bounded_vec;

/// Most peers one `AdminResponse` lists; the operator pages with `after`.
pub const MAX_LISTED_PEERS: usize = 256;

/// What the operator asks.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminOp {
    /// Open `bank:<pan>`; the PANSecret travels as `Inner::PanSecret` in the same part.
    OpenAccount {
        /// The new account.
        pan: Pan,
    },
    /// `external −amount, bank:<pan> +amount`.
    Deposit {
        /// The account.
        pan: Pan,
        /// How much.
        amount: Amount,
    },
    /// `bank:<pan> −amount, external +amount`, limited as section 5 says.
    Payout {
        /// The account.
        pan: Pan,
        /// How much.
        amount: Amount,
    },
    /// The balance of `bank:<pan>` and what may be paid out of it.
    Balance {
        /// The account.
        pan: Pan,
    },
    /// The registered peers, in UID order, after `after` (the first page with `None`).
    Peers {
        /// The last UID of the previous page.
        after: Option<Uid>,
    },
}

/// `AdminRequest` (label 39), operator → B, sealed to B: `X0 = op`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminRequestX0 {
    /// The operation.
    pub op: AdminOp,
}
body!(AdminRequestX0 => AdminRequest);

/// One registered peer, as the broker operator sees it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PeerInfo {
    /// The peer's UID.
    pub uid: Uid,
    /// The account it registered for.
    pub pan: Pan,
}

/// What the broker did or found.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum AdminResult {
    /// The account is open.
    AccountOpened {
        /// The account.
        pan: Pan,
    },
    /// A deposit or payout was recorded; the balance after it.
    Moved {
        /// The account.
        pan: Pan,
        /// Its balance now.
        balance: Amount,
    },
    /// A balance.
    Balance {
        /// The account.
        pan: Pan,
        /// `bank:<pan>`.
        balance: Amount,
        /// What may be paid out: the balance less the memo `float:vendor:M` of the merchant
        /// registered on the account (section 5).
        available: Amount,
    },
    /// A page of registered peers.
    Peers {
        /// The peers, in UID order.
        #[serde(deserialize_with = "bounded_vec::<_, _, MAX_LISTED_PEERS>")]
        peers: Vec<PeerInfo>,
        /// Whether more peers follow the last one.
        more: bool,
    },
}

/// `AdminResponse` (label 40), B → operator, sealed to the operator.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct AdminResponseX1 {
    /// The request answered.
    pub re: Re,
    /// The outcome.
    pub result: AdminResult,
}
reply!(AdminResponseX1 => AdminResponse);
