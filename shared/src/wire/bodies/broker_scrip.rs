//! 6.1 Obtain BrokerScrip, 6.4 Top up BrokerScrip, 6.6 Withdraw BrokerScrip (paper 6.1,
//! 6.4, 6.6).

use serde::{Deserialize, Serialize};

use super::{Re, body, reply};
use crate::amount::Amount;
use crate::ids::Nonce;
use crate::scrip::Scrip;

/// 6.1 step 1, C → B, sealed to B with `IdProof(ID_C)`: `X0 = W, N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerScripRequestX0 {
    /// `W`, the value of the BrokerScrip asked for.
    pub value: Amount,
    /// `N`, echoed in the response.
    pub nonce: Nonce,
}
body!(BrokerScripRequestX0 => BrokerScripRequest);

/// 6.1 step 3 and 6.4 step 3, B → C, sealed to C with `Secret(CS)`: `X1 = B, CS_B, N`
/// (`B0` of 6.1, `B1` of 6.4).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerScripResponseX1 {
    /// The request answered.
    pub re: Re,
    /// The new BrokerScrip.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS)` of its CustomerSecret.
    pub cs_hash: Vec<u8>,
    /// `N` of the request.
    pub nonce: Nonce,
}
reply!(BrokerScripResponseX1 => BrokerScripResponse);

/// 6.4 step 1, C → B, sealed to B with `IdProof(ID_C)` and `Secret(CS_B0)`:
/// `X0 = B0, CS_B0, W_new, N`, with `W_new > B0.value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerScripTopUpX0 {
    /// `B0`, the live BrokerScrip.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_B0)`.
    pub cs_hash: Vec<u8>,
    /// `W_new`, the value of the replacement.
    pub new_value: Amount,
    /// `N`, echoed in the response.
    pub nonce: Nonce,
}
body!(BrokerScripTopUpX0 => BrokerScripTopUp);

/// 6.6 step 1, C → B, sealed to B with `IdProof(ID_C)` and `Secret(CS_B0)`:
/// `X0 = B0, CS_B0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerScripWithdrawX0 {
    /// `B0`, the BrokerScrip to cash in.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_B0)`.
    pub cs_hash: Vec<u8>,
}
body!(BrokerScripWithdrawX0 => BrokerScripWithdraw);

/// 6.6 step 3, B → C, signed in the clear: `X1 = I, value`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct BrokerScripWithdrawResponseX1 {
    /// The request answered.
    pub re: Re,
    /// `I`, the paper's information message.
    pub info: String,
    /// The value credited to the customer's bank account.
    pub value: Amount,
}
reply!(BrokerScripWithdrawResponseX1 => BrokerScripWithdrawResponse);
