//! 6.0 Peer registration (paper 3.1, fig. 4), the merchant's side: its key registered for
//! its bank account on its first start (a merchant is a registered peer with an account,
//! protocol.md 6.0 and 6.2 step 3). Sans-IO, like every other file of the core:
//! [`registration`] builds the request, [`accept_registration`] checks the broker's answer
//! under its pinned key (section 1) before it is believed. The daemon's `broker_client`
//! sends it; the demo and the tests hand it to a `BrokerNode` directly.

use shared::wire::bodies::{RegistrationRequestX0, RegistrationResponseX1};
use shared::wire::{Frame, Header, Label, WireError, id_proof, public_key_inner, seal, sign};
use shared::{AccountId, ErrorCode, KeyPair, Pan, PublicKey, TxId};

use super::broker_reply::{AnswerError, broker_answer, refusal};

/// What the registration came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// The broker registered the key now.
    Registered,
    /// The broker already had this UID (an earlier start).
    AlreadyRegistered,
}

/// The merchant's `RegistrationRequest` in `tx` for its account `pan` (6.0):
/// `Sealed(to B){ Signed(X0 = PAN), IdProof(ID), PublicKey(K_M) }`.
///
/// # Errors
/// A frame that could not be signed, sealed or encoded.
pub fn registration(
    keys: &KeyPair,
    broker: &PublicKey,
    pan: &Pan,
    id: &AccountId,
    tx: TxId,
) -> Result<Vec<u8>, WireError> {
    let header = Header::new(keys.suite(), Label::RegistrationRequest, tx, keys.uid());
    let part = seal(
        &header,
        broker,
        &[
            sign(keys, &header, &RegistrationRequestX0 { pan: pan.clone() })?.into(),
            id_proof(keys, &header, id)?,
            public_key_inner(keys.public()),
        ],
    )?;
    Frame::new(header, vec![part]).encode()
}

/// Checks the broker's answer to [`registration`] in `tx`: its signed
/// `RegistrationResponse` for this UID, or its `AlreadyRegistered` refusal (the merchant
/// restarted before it recorded the registration).
///
/// # Errors
/// [`AnswerError`]: refused (`RegistrationRefused`: the bank operator has not opened the
/// account, the PANSecret is not the account's, or the account has a key already; the
/// broker does not say which, protocol.md 6.0), or a reply that does not verify.
pub fn accept_registration(
    reply: &[u8],
    keys: &KeyPair,
    broker: &PublicKey,
    tx: TxId,
) -> Result<Registration, AnswerError> {
    let frame = broker_answer(reply, broker, tx)?;
    match frame.header.label {
        Label::RegistrationResponse => {
            let x1 = frame
                .part(0)?
                .verify_signed::<RegistrationResponseX1>(broker)?;
            if x1.body.uid != keys.uid() || x1.body.re.sender != keys.uid() {
                return Err(AnswerError::Mismatch("another UID was registered"));
            }
            Ok(Registration::Registered)
        }
        _ => match refusal(&frame, broker)? {
            AnswerError::Refused { code, .. } if code == ErrorCode::AlreadyRegistered.name() => {
                Ok(Registration::AlreadyRegistered)
            }
            other => Err(other),
        },
    }
}
