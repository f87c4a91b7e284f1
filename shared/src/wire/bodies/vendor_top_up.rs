//! 6.5 Top up VendorScrip (paper 6.5): BrokerScrip held in escrow by the broker, the
//! merchant's signed acceptance, and the broker's decision before the merchant issues.

use serde::{Deserialize, Serialize};

use super::exchange::ChangeBrokerScripX4;
use super::{Decision, Re, body, reply};
use crate::amount::Amount;
use crate::ids::{ScripId, Uid};
use crate::scrip::Scrip;

/// 6.5 step 1, C → B, the part sealed to B with `IdProof(ID_C)` and `Secret(CS_B0)`:
/// `X0 = W_V1, W_V, UID_M, B0, CS_B0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorTopUpRequestX0 {
    /// `W_V1 = V0.value + W_V`, the value of the new VendorScrip.
    pub new_value: Amount,
    /// `W_V`, the amount added, paid from `B0`.
    pub top_up: Amount,
    /// `UID_M`, the merchant.
    pub merchant: Uid,
    /// `B0`, the BrokerScrip paid with.
    pub broker_scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_B0)`.
    pub cs_hash: Vec<u8>,
}
body!(VendorTopUpRequestX0 => VendorTopUpRequest);

/// 6.5 step 1, C → B, the part sealed to M (with `Secret(CS_V0)`) that B forwards:
/// `X1 = W_V1, V0, CS_V0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorTopUpRequestX1 {
    /// `W_V1`.
    pub new_value: Amount,
    /// `V0`, the VendorScrip topped up.
    pub vendor_scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_V0)`.
    pub cs_hash: Vec<u8>,
}
body!(VendorTopUpRequestX1 => VendorTopUpRequest);

/// 6.5 step 2, B → M, sealed to M: `X2 = W_V1, W_V, UID_C, deadline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorTopUpAuthorizationX2 {
    /// `W_V1`.
    pub new_value: Amount,
    /// `W_V`.
    pub top_up: Amount,
    /// `UID_C`, the customer.
    pub customer: Uid,
    /// Unix seconds until which the broker holds `B0`.
    pub deadline: u64,
}
body!(VendorTopUpAuthorizationX2 => VendorTopUpAuthorization);

/// 6.5 step 3, M → B, sealed to B: `X3 = accept, UID_C, W_V, W_V1, V0.scrip_id` (M's
/// undertaking to issue `V1` of `W_V1` in place of `V0`) or
/// `X3 = decline(reason), UID_C, W_V`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum VendorTopUpAcceptedX3 {
    /// M accepts and holds `V0`.
    Accept {
        /// `UID_C`.
        customer: Uid,
        /// `W_V`.
        top_up: Amount,
        /// `W_V1`.
        new_value: Amount,
        /// `V0.scrip_id`, the VendorScrip M holds for this tx.
        scrip_id: ScripId,
    },
    /// M declines; nothing is held, the broker releases its escrow at once.
    Decline {
        /// Why.
        reason: String,
        /// `UID_C`.
        customer: Uid,
        /// `W_V`.
        top_up: Amount,
    },
}
body!(VendorTopUpAcceptedX3 => VendorTopUpAccepted);

impl VendorTopUpAcceptedX3 {
    /// `UID_C`, in either form.
    #[must_use]
    pub const fn customer(&self) -> Uid {
        match self {
            Self::Accept { customer, .. } | Self::Decline { customer, .. } => *customer,
        }
    }

    /// `W_V`, in either form.
    #[must_use]
    pub const fn top_up(&self) -> Amount {
        match self {
            Self::Accept { top_up, .. } | Self::Decline { top_up, .. } => *top_up,
        }
    }
}

/// 6.5 step 4, B → M, sealed to M, the reply to step 3: `re, R` (hardening: M issues
/// nothing before it). `R = NOK(expired)` when the escrow was already released.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorTopUpDecisionBody {
    /// The request answered (M's step 3).
    pub re: Re,
    /// `R`.
    pub decision: Decision,
}
reply!(VendorTopUpDecisionBody => VendorTopUpDecision);

/// 6.5 step 5, M → C, sealed to C with `Secret(CS_V1)`: `X4 = V1, CS_V1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorTopUpResponseX4 {
    /// `V1`, of value `W_V1`.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_V1)`.
    pub cs_hash: Vec<u8>,
}
body!(VendorTopUpResponseX4 => VendorTopUpResponse);

/// 6.5 step 6, B → C: `X5 = outcome, B1, CS_B1, X3 of M, sig of M`; the same body as
/// [`ChangeBrokerScripX4`] of 6.2 (one label, one shape), sent on every outcome (OK,
/// declined, expired).
pub type ChangeBrokerScripX5 = ChangeBrokerScripX4;
