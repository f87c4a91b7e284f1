//! 6.2 Obtain VendorScrip from a merchant (paper 6.2): the exchange of BrokerScrip for
//! VendorScrip, authorized by the broker.

use serde::{Deserialize, Serialize};

use super::{Decision, Re, ScripWithSecret, Undertaking, body, reply};
use crate::amount::Amount;
use crate::ids::Uid;
use crate::scrip::Scrip;

/// 6.2 step 1, C → B, sealed to B with `IdProof(ID_C)`: `X0 = UID_M`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorScripNoticeX0 {
    /// The merchant the customer will exchange with.
    pub merchant: Uid,
}
body!(VendorScripNoticeX0 => VendorScripNotice);

/// 6.2 step 1 reply, B → C: `X0′ = re, deadline`. C sends step 2 only after it.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorScripNoticeResponseX0 {
    /// The request answered.
    pub re: Re,
    /// Unix seconds after which the broker closes the exchange (`ExchangeExpired`).
    pub deadline: u64,
}
reply!(VendorScripNoticeResponseX0 => VendorScripNoticeResponse);

/// 6.2 step 2, C → M, the part sealed to B (with `IdProof(ID_C)` and `Secret(CS_B0)`),
/// which M forwards unread: `X1 = B0, CS_B0, W`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorScripRequestX1 {
    /// `B0`, the BrokerScrip paid with.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_B0)`.
    pub cs_hash: Vec<u8>,
    /// `W`, the VendorScrip value asked for.
    pub value: Amount,
}
body!(VendorScripRequestX1 => VendorScripRequest);

/// 6.2 step 2, C → M, the part sealed to M: `X2 = W`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorScripRequestX2 {
    /// `W`, the VendorScrip value asked for.
    pub value: Amount,
}
body!(VendorScripRequestX2 => VendorScripRequest);

/// 6.2 step 3, M → B, sealed to B with `IdProof(ID_M)`: `X3 = W, UID_C`. By signing it, M
/// undertakes to issue VendorScrip of `W` to C if the broker says OK.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeAuthorizationRequestX3 {
    /// `W`.
    pub value: Amount,
    /// `UID_C`, the customer.
    pub customer: Uid,
}
body!(ExchangeAuthorizationRequestX3 => ExchangeAuthorizationRequest);

/// 6.2 step 5 (and 6.5 step 6, as [`ChangeBrokerScripX5`](super::ChangeBrokerScripX5)),
/// B → C, sealed to C with `Secret(CS_B1)` when there is change:
/// `X4 = outcome, B1, CS_B1, X3 of M, sig of M`.
///
/// The broker's decision travels with it (protocol.md 6.2 step 5, ADR 0004):
/// the broker tells C the outcome of every 6.2 and 6.5 it decides, NOK included (refused,
/// declined, expired, released), so that C never waits on a merchant for a transaction the
/// broker already ended. `Ok` carries the change (`None` when zero) and M's undertaking;
/// `Nok` carries neither, and C's `B0` is `Live` again at the broker (6.5) or was never
/// spent (6.2).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChangeBrokerScripX4 {
    /// `R`: the broker's decision of this tx.
    pub outcome: Decision,
    /// `B1, CS_B1`; `None` when the change is zero (no change scrip is issued) and on NOK.
    pub change: Option<ScripWithSecret>,
    /// M's signed `X3`, the customer's proof of what M undertook; `None` on NOK.
    pub undertaking: Option<Undertaking>,
}
body!(ChangeBrokerScripX4 => ChangeBrokerScrip);

/// 6.2 step 6, B → M, sealed to M, the reply to step 3: `X5 = re, R, UID_C, W`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ExchangeAuthorizationResponseX5 {
    /// The request answered (M's step 3).
    pub re: Re,
    /// `R`: M acts only on OK.
    pub decision: Decision,
    /// `UID_C`.
    pub customer: Uid,
    /// `W`.
    pub value: Amount,
}
reply!(ExchangeAuthorizationResponseX5 => ExchangeAuthorizationResponse);

/// 6.2 step 7, M → C, sealed to C with `Secret(CS_V0)`, the reply to step 2:
/// `X6 = V0, CS_V0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct VendorScripResponseX6 {
    /// The request answered (C's step 2).
    pub re: Re,
    /// `V0`, the new VendorScrip.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_V0)`.
    pub cs_hash: Vec<u8>,
}
reply!(VendorScripResponseX6 => VendorScripResponse);
