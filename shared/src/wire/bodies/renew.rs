//! 6.8 Renew expired scrip (paper 6.8).

use serde::{Deserialize, Serialize};

use super::{Re, body, reply};
use crate::scrip::Scrip;

/// 6.8 step 1, C → producer, sealed to the producer with `Secret(CS_E0)`:
/// `X0 = E0, CS_E0`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewRequestX0 {
    /// `E0`, the expired scrip (within the grace period).
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_E0)`.
    pub cs_hash: Vec<u8>,
}
body!(RenewRequestX0 => RenewRequest);

/// 6.8 step 3, producer → C, sealed to C with `Secret(CS_E1)`: `X1 = E1, CS_E1`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RenewResponseX1 {
    /// The request answered.
    pub re: Re,
    /// `E1`: same value, new scrip id, cust id and expiry.
    pub scrip: Scrip,
    /// `H("peerscrip/cs" ‖ CS_E1)`.
    pub cs_hash: Vec<u8>,
}
reply!(RenewResponseX1 => RenewResponse);
