//! 6.0b Public key request, the customer's side (protocol.md section 6.0b; paper 3.2,
//! fig. 5). A peer's key arrives no other way: the broker's signature is its certificate.
//!
//! 1. P → B `PublicKeyRequest`: `Signed(X0 = UID_target, N)` in the clear.
//! 3. B → P `PublicKeyResponse`: `Sealed(to P){ Signed(X1 = UID_target, K_target, N) }`;
//!    the wallet checks the broker's signature, `re`, `N`, the target, and that the key's
//!    UID (SHA-256 prefix of its SPKI DER, section 1) is the target.

use shared::events::NewEvent;
use shared::wire::bodies::{PublicKeyRequestX0, PublicKeyResponseX1};
use shared::wire::{Body, Frame, Label};
use shared::{KeyPair, Nonce, PublicKey, TxId, Uid};

use super::events::WalletEvent;
use super::mismatched_expect;
use super::reply::{event_time, evidence, sealed_reply};
use super::request::{Expect, SavedPart, SavedRequest};
use super::request_header;
use super::state::{Pending, WalletState};
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
        vec![SavedPart::Signed {
            body: x0.to_bytes(),
        }],
        Expect::PublicKey { target, nonce },
    )
}

/// Step 3: the broker's `PublicKeyResponse`, checked; the `PeerKeyCached` event.
pub fn accept(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::PublicKey { target, nonce } = pending.request.expect else {
        return Err(mismatched_expect(pending));
    };
    let (verified, _) = sealed_reply::<PublicKeyResponseX1>(state, pending, frame, keys)?;
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
    let key = PublicKey::from_spki_der(keys.suite(), &body.spki_der)
        .map_err(|_| WalletError::BadPeerKey { target })?;
    if key.uid() != target {
        return Err(WalletError::BadPeerKey { target });
    }
    Ok(NewEvent::new(
        event_time(now),
        pending.request.tx(),
        WalletEvent::PeerKeyCached {
            uid: target,
            spki_der: body.spki_der.clone(),
        },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
