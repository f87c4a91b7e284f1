//! 6.0 Peer registration, the customer's side (protocol.md section 6.0; paper 3.1, fig. 4).
//!
//! 1. P → B `RegistrationRequest`: `Sealed(to B){ Signed(X0 = PAN), IdProof(ID_P), PublicKey(K_P) }`.
//! 3. B → P `RegistrationResponse`: `Signed(X1 = UID_P, I)` in the clear; the wallet checks
//!    the broker's signature, `re`, and that `UID_P` is its own UID.

use shared::TxId;
use shared::wire::Label;
use shared::wire::bodies::{RegistrationRequestX0, RegistrationResponseX1};

use super::events::WalletEvent;
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{already_pending, request_header};
use crate::error::WalletError;

/// Step 1: the request, to be saved and sent. Refused locally when the wallet is already
/// registered, has no linked account, or has a registration pending.
pub fn request(state: &WalletState, tx: TxId) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::RegistrationRequest, tx)?;
    if let Some(uid) = state.registered {
        return Err(WalletError::AlreadyRegistered { uid });
    }
    already_pending(state, Label::RegistrationRequest)?;
    let account = state.account.as_ref().ok_or(WalletError::NoAccount)?;
    let x0 = RegistrationRequestX0 {
        pan: account.pan.clone(),
    };
    SavedRequest::new(
        header,
        identity.broker,
        vec![SavedPart::sealed(
            identity.broker,
            [
                SavedInner::signed(&x0),
                SavedInner::IdProof,
                SavedInner::PublicKey,
            ],
        )],
        Expect::Registration,
    )
}

/// Step 3: the broker's `RegistrationResponse`, checked; the `Registered` event.
pub fn accept(reply: &Incoming<'_>) -> Decided {
    let verified = reply.clear::<RegistrationResponseX1>()?;
    let me = verified.body.re.sender;
    if verified.body.uid != me {
        return Err(WalletError::UidMismatch {
            expected: me,
            found: verified.body.uid,
        });
    }
    let uid = verified.body.uid;
    Ok(reply.record(WalletEvent::Registered { uid }, &verified.evidence))
}
