//! 6.0 Peer registration and 6.0b Public key request (paper 3.1 and 3.2).

use serde::{Deserialize, Serialize};

use super::{Re, body, reply};
use crate::ids::{Nonce, Pan, Uid};

/// 6.0 step 1, P → B, sealed to B with `IdProof(ID_P)` and `PublicKey(K_P)`: `X0 = PAN`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationRequestX0 {
    /// The account the key is registered for.
    pub pan: Pan,
}
body!(RegistrationRequestX0 => RegistrationRequest);

/// 6.0 step 3, B → P: `X1 = UID_P, I`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct RegistrationResponseX1 {
    /// The request answered.
    pub re: Re,
    /// The UID the broker registered.
    pub uid: Uid,
    /// `I`, the paper's information message.
    pub info: String,
}
reply!(RegistrationResponseX1 => RegistrationResponse);

/// 6.0b step 1, P → B, signed in the clear: `X0 = UID_target, N`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyRequestX0 {
    /// Whose key is asked for.
    pub target: Uid,
    /// `N`, echoed in the response.
    pub nonce: Nonce,
}
body!(PublicKeyRequestX0 => PublicKeyRequest);

/// 6.0b step 3, B → P, sealed to P: `X1 = UID_target, K_target, N`. The broker's signature
/// is the certificate of the key (section 1: the broker is the only CA).
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct PublicKeyResponseX1 {
    /// The request answered.
    pub re: Re,
    /// Whose key this is.
    pub target: Uid,
    /// `K_target`, SubjectPublicKeyInfo DER; its SHA-256 prefix must be `target`.
    pub spki_der: Vec<u8>,
    /// `N` of the request.
    pub nonce: Nonce,
}
reply!(PublicKeyResponseX1 => PublicKeyResponse);
