//! The merchant daemon's own requests to its broker outside any customer's transaction:
//! its registration (6.0) on the first start, its display name (docs/adr/0016) when it
//! changed, and the public key of a customer it has not met (6.0b). The frames and the checks of the answers are the core's
//! (`core::register`, `core::public_key`); this is the IO: send, wait, hand the answer
//! back.

use std::time::Duration;

use bytes::Bytes;
use shared::bus::{Bus, BusError, Subjects};
use shared::{AccountId, KeyPair, Nonce, Pan, PublicKey, TxId, Uid};

use crate::core::broker_reply::AnswerError;
use crate::core::profile::{accept_profile, profile_request};
use crate::core::public_key::{accept_public_key, public_key_request};
pub use crate::core::register::Registration;
use crate::core::register::{accept_registration, registration};

/// Why a request to the broker did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BrokerClientError {
    /// The bus failed (the broker is unreachable, or did not answer in time).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The broker refused, or its answer does not verify or answer the request.
    #[error(transparent)]
    Answer(#[from] AnswerError),
}

/// Registers the merchant's key for its account `pan` at the broker (6.0,
/// `core::register`); the broker's `AlreadyRegistered` is accepted (the merchant restarted
/// before it recorded the registration).
///
/// # Errors
/// [`BrokerClientError`]: unreachable, refused (`RegistrationRefused`: the bank operator
/// has not opened the account, the PANSecret is not the account's, or the account has a
/// key already; the broker does not say which, protocol.md 6.0), or a reply that does not
/// verify.
pub async fn register<B: Bus>(
    bus: &B,
    subjects: &Subjects,
    keys: &KeyPair,
    broker: &PublicKey,
    pan: &Pan,
    id: &AccountId,
    timeout: Duration,
) -> Result<Registration, BrokerClientError> {
    let tx = TxId::random();
    let frame = registration(keys, broker, pan, id, tx).map_err(AnswerError::from)?;
    let reply = bus
        .request(&subjects.broker(), Bytes::from(frame), timeout)
        .await?;
    Ok(accept_registration(&reply, keys, broker, tx)?)
}

/// Registers the merchant's display name at the broker (docs/adr/0016,
/// `core::profile`).
///
/// # Errors
/// [`BrokerClientError`]: unreachable, refused, asked to repeat later, or a reply that
/// does not verify or does not answer.
pub async fn name_merchant<B: Bus>(
    bus: &B,
    subjects: &Subjects,
    keys: &KeyPair,
    broker: &PublicKey,
    name: &shared::wire::bodies::MerchantName,
    timeout: Duration,
) -> Result<(), BrokerClientError> {
    let tx = TxId::random();
    let (frame, digest) = profile_request(keys, name, tx).map_err(AnswerError::from)?;
    let reply = bus
        .request(&subjects.broker(), Bytes::from(frame), timeout)
        .await?;
    Ok(accept_profile(&reply, keys, broker, tx, &digest)?)
}

/// The public key of `target` from the broker (6.0b, `core::public_key`).
///
/// # Errors
/// [`BrokerClientError`]: unreachable, refused (`UnknownPeer`), or a reply that does not
/// verify or does not answer.
pub async fn fetch_public_key<B: Bus>(
    bus: &B,
    subjects: &Subjects,
    keys: &KeyPair,
    broker: &PublicKey,
    target: Uid,
    timeout: Duration,
) -> Result<PublicKey, BrokerClientError> {
    let (tx, nonce) = (TxId::random(), Nonce::random());
    let frame = public_key_request(keys, target, nonce, tx).map_err(AnswerError::from)?;
    let reply = bus
        .request(&subjects.broker(), Bytes::from(frame), timeout)
        .await?;
    Ok(accept_public_key(&reply, keys, broker, tx, target, nonce)?)
}
