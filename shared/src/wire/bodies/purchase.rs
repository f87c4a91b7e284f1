//! 6.3 Buy item (paper 6.3): the purchase with VendorScrip, reported to the broker in the
//! clear at both ends so that the broker does no private-key operation per purchase.

use std::fmt;

use serde::{Deserialize, Serialize};

use super::{Re, ScripWithSecret, body, reply};
use crate::amount::{Amount, AmountError};
use crate::ids::Uid;
use crate::scrip::Scrip;

/// 6.3 step 1, C → B, signed in the clear: `X0 = UID_M, W_P`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseInitiatedX0 {
    /// `UID_M`, the merchant.
    pub merchant: Uid,
    /// `W_P = price × quantity`.
    pub value: Amount,
}
body!(PurchaseInitiatedX0 => PurchaseInitiated);

/// 6.3 step 2, C → M, sealed to M with `Secret(CS_V0)`: `X1 = V0, CS_V0, OI`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseRequestX1 {
    /// `V0`, the VendorScrip paid with.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_V0)`.
    pub cs_hash: Vec<u8>,
    /// `OI`, what is bought.
    pub order: OrderInfo,
}
body!(PurchaseRequestX1 => PurchaseRequest);

/// 6.3 step 4, M → C, sealed to C with `Secret(CS_V1)` when there is change:
/// `X2 = V1, CS_V1, OI, receipt` (signed by M: the paper's `K_C` is a typo).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseResponseX2 {
    /// The request answered (C's step 2).
    pub re: Re,
    /// `V1, CS_V1`; `None` when the change is zero.
    pub change: Option<ScripWithSecret>,
    /// `OI` of the request.
    pub order: OrderInfo,
    /// The merchant's receipt.
    pub receipt: Receipt,
}
reply!(PurchaseResponseX2 => PurchaseResponse);

/// 6.3 step 5, M → B, signed in the clear: `X3 = UID_C, W_P`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PurchaseCompletedX3 {
    /// `UID_C`, the customer.
    pub customer: Uid,
    /// `W_P`.
    pub value: Amount,
}
body!(PurchaseCompletedX3 => PurchaseCompleted);

/// The customer's unique id of an order, 16 random bytes, shown as hex.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct OrderId(pub [u8; 16]);

impl OrderId {
    /// 16 bytes from the operating system's CSPRNG.
    #[must_use]
    pub fn random() -> OrderId {
        use rand::Rng;
        let mut b = [0u8; 16];
        rand::rng().fill_bytes(&mut b);
        OrderId(b)
    }
}

impl fmt::Display for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&hex::encode(self.0))
    }
}

impl fmt::Debug for OrderId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "OrderId({self})")
    }
}

/// `OI`: the order (6.3 step 2): the item id, its name, unit price, quantity and a unique
/// order id. The merchant checks it against its catalogue.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderInfo {
    /// The catalogue's id of the item.
    pub item_id: String,
    /// The item's name.
    pub name: String,
    /// Price of one item.
    pub unit_price: Amount,
    /// How many.
    pub quantity: u64,
    /// The customer's unique id of this order.
    pub order_id: OrderId,
}

impl OrderInfo {
    /// `W_P = unit price × quantity`, checked.
    pub fn total(&self) -> Result<Amount, AmountError> {
        self.unit_price.checked_mul(self.quantity)
    }
}

/// The merchant's receipt of a purchase (6.3 step 4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Receipt {
    /// The order paid for.
    pub order_id: OrderId,
    /// What was paid, `W_P`.
    pub paid: Amount,
    /// When the merchant recorded the purchase, unix seconds.
    pub issued_at: u64,
}
