//! The merchant daemon's own requests to its broker outside any customer's transaction:
//! its registration (6.0) on the first start, and the public key of a customer it has not
//! met (6.0b, the only way a peer's key arrives, protocol.md section 6.0b). Each reply is
//! checked under the pinned broker key (section 1) before it is believed.

use std::time::Duration;

use bytes::Bytes;
use shared::bus::{Bus, BusError, Subjects};
use shared::wire::bodies::{
    ErrorBody, PublicKeyRequestX0, PublicKeyResponseX1, RegistrationRequestX0,
    RegistrationResponseX1,
};
use shared::wire::{Frame, Header, Label, WireError, id_proof, public_key_inner, seal, sign};
use shared::{AccountId, ErrorCode, KeyPair, Nonce, Pan, PublicKey, TxId, Uid};

/// Why a request to the broker did not give what was asked.
#[derive(Debug, thiserror::Error)]
pub enum BrokerClientError {
    /// The bus failed (the broker is unreachable, or did not answer in time).
    #[error(transparent)]
    Bus(#[from] BusError),
    /// The request could not be built, or the reply not decoded or verified.
    #[error("bad frame: {0}")]
    Wire(#[from] WireError),
    /// The broker refused, with its signed `Error`.
    #[error("the broker refused: {code}: {message}")]
    Refused {
        /// The error code's name (or number, if unknown to this build).
        code: String,
        /// The broker's message.
        message: String,
    },
    /// A verified reply that does not answer this request.
    #[error("the broker's reply does not answer the request: {0}")]
    Mismatch(&'static str),
}

/// What the registration came to.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Registration {
    /// The broker registered the key now.
    Registered,
    /// The broker already had this UID (an earlier start).
    AlreadyRegistered,
}

/// Registers the merchant's key for its account `pan` at the broker (6.0): `Sealed(to B){
/// Signed(X0 = PAN), IdProof(ID), PublicKey(K_M) }`; the broker's signed
/// `RegistrationResponse` is checked, and its `AlreadyRegistered` refusal accepted (the
/// merchant restarted before it recorded the registration).
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
    let header = Header::new(
        keys.suite(),
        Label::RegistrationRequest,
        TxId::random(),
        keys.uid(),
    );
    let part = seal(
        &header,
        broker,
        &[
            sign(keys, &header, &RegistrationRequestX0 { pan: pan.clone() })?.into(),
            id_proof(keys, &header, id)?,
            public_key_inner(keys.public()),
        ],
    )?;
    let frame = request(
        bus,
        subjects,
        Frame::new(header, vec![part]),
        broker,
        timeout,
    )
    .await?;
    match frame.header.label {
        Label::RegistrationResponse => {
            let x1 = frame
                .part(0)?
                .verify_signed::<RegistrationResponseX1>(broker)?;
            if x1.body.uid != keys.uid() || x1.body.re.sender != keys.uid() {
                return Err(BrokerClientError::Mismatch("another UID was registered"));
            }
            Ok(Registration::Registered)
        }
        _ => match refusal(&frame, broker)? {
            BrokerClientError::Refused { code, .. }
                if code == ErrorCode::AlreadyRegistered.name() =>
            {
                Ok(Registration::AlreadyRegistered)
            }
            other => Err(other),
        },
    }
}

/// The public key of `target` from the broker (6.0b): `Signed(X0 = UID_target, N)` in the
/// clear; the answer `Sealed(to M){ Signed(X1 = UID_target, K_target, N) }` is opened,
/// verified under the broker's key, and its nonce, target and the key's UID (the SHA-256
/// prefix of its SPKI DER) checked.
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
    let header = Header::new(
        keys.suite(),
        Label::PublicKeyRequest,
        TxId::random(),
        keys.uid(),
    );
    let nonce = Nonce::random();
    let part = sign(keys, &header, &PublicKeyRequestX0 { target, nonce })?.into();
    let frame = request(
        bus,
        subjects,
        Frame::new(header, vec![part]),
        broker,
        timeout,
    )
    .await?;
    if frame.header.label != Label::PublicKeyResponse {
        return Err(refusal(&frame, broker)?);
    }
    let x1 = frame
        .part(0)?
        .open_sealed(keys)?
        .signed::<PublicKeyResponseX1>(broker)?
        .body;
    if x1.nonce != nonce {
        return Err(BrokerClientError::Mismatch("the nonce differs"));
    }
    if x1.target != target {
        return Err(BrokerClientError::Mismatch("the key is of another UID"));
    }
    let key = PublicKey::from_spki_der(keys.suite(), &x1.spki_der)
        .map_err(|_| BrokerClientError::Mismatch("the key does not decode"))?;
    if key.uid() != target {
        return Err(BrokerClientError::Mismatch("the key's hash is not the UID"));
    }
    Ok(key)
}

/// Sends `frame` to the broker and returns its reply, decoded, from the broker and in
/// this transaction.
async fn request<B: Bus>(
    bus: &B,
    subjects: &Subjects,
    frame: Frame,
    broker: &PublicKey,
    timeout: Duration,
) -> Result<Frame, BrokerClientError> {
    let tx = frame.header.tx;
    let bytes = bus
        .request(&subjects.broker(), Bytes::from(frame.encode()?), timeout)
        .await?;
    let reply = Frame::decode(&bytes)?;
    if reply.header.sender != broker.uid() || reply.header.tx != tx {
        return Err(BrokerClientError::Mismatch(
            "not the broker's reply in this tx",
        ));
    }
    Ok(reply)
}

/// The broker's signed `Error` as a [`BrokerClientError::Refused`] (its code's name, or
/// number if this build does not know it, and message).
fn refusal(frame: &Frame, broker: &PublicKey) -> Result<BrokerClientError, BrokerClientError> {
    if frame.header.label != Label::Error {
        return Err(BrokerClientError::Mismatch("an unexpected label"));
    }
    let body = frame.part(0)?.verify_signed::<ErrorBody>(broker)?.body;
    Ok(BrokerClientError::Refused {
        code: ErrorCode::from_code(body.code)
            .map_or_else(|| format!("code {}", body.code), |c| c.name().to_owned()),
        message: body.message,
    })
}
