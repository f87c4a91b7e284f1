//! 6.0 Peer registration, the customer's side (protocol.md section 6.0; paper 3.1, fig. 4).
//!
//! 1. P → B `RegistrationRequest`: `Sealed(to B){ Signed(X0 = PAN), IdProof(ID_P), PublicKey(K_P) }`.
//! 3. B → P `RegistrationResponse`: `Signed(X1 = UID_P, I)` in the clear; the wallet checks
//!    the broker's signature, `re`, and that `UID_P` is its own UID.

use shared::events::NewEvent;
use shared::wire::bodies::{RegistrationRequestX0, RegistrationResponseX1};
use shared::wire::{Body, Frame, Label};
use shared::{KeyPair, TxId};

use super::events::WalletEvent;
use super::reply::{clear_reply, event_time, evidence};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
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
        vec![SavedPart::Sealed {
            to: identity.broker,
            inners: vec![
                SavedInner::Signed {
                    body: x0.to_bytes(),
                },
                SavedInner::IdProof,
                SavedInner::PublicKey,
            ],
        }],
        Expect::Registration,
    )
}

/// Step 3: the broker's `RegistrationResponse`, checked; the `Registered` event.
pub fn accept(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    _keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let verified = clear_reply::<RegistrationResponseX1>(state, pending, frame)?;
    let me = verified.body.re.sender;
    if verified.body.uid != me {
        return Err(WalletError::UidMismatch {
            expected: me,
            found: verified.body.uid,
        });
    }
    Ok(NewEvent::new(
        event_time(now),
        pending.request.tx(),
        WalletEvent::Registered {
            uid: verified.body.uid,
        },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
