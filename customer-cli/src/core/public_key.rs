//! 6.0b Public key request, the customer's side (protocol.md section 6.0b; paper 3.2,
//! fig. 5). A peer's key arrives no other way: the broker's signature is its certificate.
//!
//! 1. P → B `PublicKeyRequest`: `Signed(X0 = UID_target, N)` in the clear.
//! 3. B → P `PublicKeyResponse`: `Sealed(to P){ Signed(X1 = UID_target, K_target, N) }`;
//!    the wallet checks the broker's signature, `re`, `N`, the target, and that the key's
//!    UID (SHA-256 prefix of its SPKI DER, section 1) is the target.

use shared::wire::Label;
use shared::wire::bodies::{PublicKeyRequestX0, PublicKeyResponseX1};
use shared::{Nonce, PublicKey, TxId, Uid};

use super::events::WalletEvent;
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedPart, SavedRequest};
use super::request_header;
use super::state::WalletState;
use crate::error::WalletError;

/// Step 1: the request for `target`'s key, with the nonce `N`.
pub fn request(
    state: &WalletState,
    tx: TxId,
    target: Uid,
    nonce: Nonce,
) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::PublicKeyRequest, tx)?;
    let x0 = PublicKeyRequestX0 { target, nonce };
    SavedRequest::new(
        header,
        identity.broker,
        vec![SavedPart::signed(&x0)],
        Expect::PublicKey { target, nonce },
    )
}

/// Step 3: the broker's `PublicKeyResponse`, checked; the `PeerKeyCached` event.
pub fn accept(reply: &Incoming<'_>, target: Uid, nonce: Nonce) -> Decided {
    let (verified, _) = reply.sealed::<PublicKeyResponseX1>()?;
    let body = &verified.body;
    if body.nonce != nonce {
        return Err(WalletError::NonceMismatch);
    }
    if body.target != target {
        return Err(WalletError::UidMismatch {
            expected: target,
            found: body.target,
        });
    }
    let key = PublicKey::from_spki_der(reply.keys.suite(), &body.spki_der)
        .map_err(|_| WalletError::BadPeerKey { target })?;
    if key.uid() != target {
        return Err(WalletError::BadPeerKey { target });
    }
    let spki_der = body.spki_der.clone();
    Ok(reply.record(
        WalletEvent::PeerKeyCached {
            uid: target,
            spki_der,
        },
        &verified.evidence,
    ))
}
