//! 6.7 Withdraw VendorScrip (paper 6.7): the merchant holds the VendorScrip, the broker
//! decides and moves the money from the merchant's account to the customer's.

use serde::{Deserialize, Serialize};

use super::{Decision, Re, body, reply};
use crate::amount::Amount;
use crate::ids::Uid;
use crate::scrip::Scrip;

/// 6.7 step 1, C → M, the part sealed to M with `Secret(CS_V0)`: `X0 = V0, CS_V0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorWithdrawRequestX0 {
    /// `V0`, the VendorScrip to cash in.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_V0)`.
    pub cs_hash: Vec<u8>,
}
body!(VendorWithdrawRequestX0 => VendorWithdrawRequest);

/// 6.7 step 1, C → M, the part sealed to B with `IdProof(ID_C)`, which M forwards:
/// `X1 = W, UID_M`. B checks the relaying frame's sender is this `UID_M`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorWithdrawRequestX1 {
    /// `W = V0.value`.
    pub value: Amount,
    /// `UID_M`, the only party allowed to relay this part.
    pub merchant: Uid,
}
body!(VendorWithdrawRequestX1 => VendorWithdrawRequest);

/// 6.7 step 2, M → B, sealed to B with `IdProof(ID_M)`: `X2 = W, UID_C, deadline`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorWithdrawAuthorizationX2 {
    /// `W`.
    pub value: Amount,
    /// `UID_C`, the customer.
    pub customer: Uid,
    /// Unix seconds until which M holds `V0`; a first arrival after it is refused.
    pub deadline: u64,
}
body!(VendorWithdrawAuthorizationX2 => VendorWithdrawAuthorization);

/// 6.7 step 4, B → M, sealed to M, the reply to step 2: `X3 = re, R, UID_C, W`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorWithdrawResponseX3 {
    /// The request answered (M's step 2).
    pub re: Re,
    /// `R`: on OK M spends `V0`, on NOK it releases it.
    pub decision: Decision,
    /// `UID_C`.
    pub customer: Uid,
    /// `W`.
    pub value: Amount,
}
reply!(VendorWithdrawResponseX3 => VendorWithdrawResponse);

/// 6.7 step 5, B → C, sealed to C (signed by B: the paper's figure has typos):
/// `X4 = UID_M, R, I`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorWithdrawResultX4 {
    /// `UID_M`.
    pub merchant: Uid,
    /// `R`, the broker's decision.
    pub decision: Decision,
    /// `I`, the paper's information message.
    pub info: String,
}
body!(VendorWithdrawResultX4 => VendorWithdrawResult);
