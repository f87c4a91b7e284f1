//! 6.0b Public key request (paper 3.2, fig. 5), the merchant's side: the key of a
//! customer it has not met, the only way a peer's key arrives (protocol.md 6.0b). Sans-IO:
//! [`public_key_request`] builds the request, [`accept_public_key`] checks the broker's
//! answer under its pinned key (section 1). The daemon's `broker_client` sends it.

use shared::wire::bodies::{PublicKeyRequestX0, PublicKeyResponseX1};
use shared::wire::{Frame, Header, Label, WireError, sign};
use shared::{KeyPair, Nonce, PublicKey, TxId, Uid};

use super::broker_reply::{AnswerError, broker_answer, refusal};

/// The merchant's `PublicKeyRequest` in `tx` for `target` (6.0b): `Signed(X0 = UID_target,
/// N)` in the clear.
///
/// # Errors
/// A frame that could not be signed or encoded.
pub fn public_key_request(
    keys: &KeyPair,
    target: Uid,
    nonce: Nonce,
    tx: TxId,
) -> Result<Vec<u8>, WireError> {
    let header = Header::new(keys.suite(), Label::PublicKeyRequest, tx, keys.uid());
    let part = sign(keys, &header, &PublicKeyRequestX0 { target, nonce })?.into();
    Frame::new(header, vec![part]).encode()
}

/// Checks the broker's answer to [`public_key_request`] in `tx`: `Sealed(to M){ Signed(X1 =
/// UID_target, K_target, N) }` opened, verified under the broker's key, its nonce, target
/// and the key's UID (the SHA-256 prefix of its SPKI DER) checked.
///
/// # Errors
/// [`AnswerError`]: refused (`UnknownPeer`), or a reply that does not verify or answer.
pub fn accept_public_key(
    reply: &[u8],
    keys: &KeyPair,
    broker: &PublicKey,
    tx: TxId,
    target: Uid,
    nonce: Nonce,
) -> Result<PublicKey, AnswerError> {
    let frame = broker_answer(reply, broker, tx)?;
    if frame.header.label != Label::PublicKeyResponse {
        return Err(refusal(&frame, broker)?);
    }
    let x1 = frame
        .part(0)?
        .open_sealed(keys)?
        .signed::<PublicKeyResponseX1>(broker)?
        .body;
    if x1.nonce != nonce {
        return Err(AnswerError::Mismatch("the nonce differs"));
    }
    if x1.target != target {
        return Err(AnswerError::Mismatch("the key is of another UID"));
    }
    let key = PublicKey::from_spki_der(keys.suite(), &x1.spki_der)
        .map_err(|_| AnswerError::Mismatch("the key does not decode"))?;
    if key.uid() != target {
        return Err(AnswerError::Mismatch("the key's hash is not the UID"));
    }
    Ok(key)
}
