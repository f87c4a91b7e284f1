//! 6.1 Obtain BrokerScrip, the customer's side (protocol.md section 6.1; paper 6.1, fig. 7).
//!
//! 1. C → B `BrokerScripRequest`: `Sealed(to B){ IdProof(ID_C), Signed(X0 = W, N) }`.
//! 3. B → C `BrokerScripResponse`: `Sealed(to C){ Signed(X1 = B0, CS_B0, N) }` (with
//!    `Secret(CS_B0)` beside the body's `cs_hash`, section 3).
//! 4. C checks the signature, `N` and the value; stores B0 and CS_B0 encrypted under its
//!    own key.

use shared::events::NewEvent;
use shared::wire::bodies::{BrokerScripRequestX0, BrokerScripResponseX1};
use shared::wire::{Body, Frame, Label};
use shared::{Amount, KeyPair, Nonce, TxId};

use super::events::WalletEvent;
use super::mismatched_expect;
use super::reply::{check_new_scrip, event_time, evidence, new_secret, own_scrip, sealed_reply};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
use super::{already_pending, request_header};
use crate::error::WalletError;

/// Step 1: the request for a BrokerScrip of `value`. Refused locally while a BrokerScrip is
/// live (section 4: at most one; top it up instead, 6.4) or another 6.1 is pending.
pub fn request(
    state: &WalletState,
    tx: TxId,
    value: Amount,
    nonce: Nonce,
) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::BrokerScripRequest, tx)?;
    if let Some(held) = state.broker_scrip() {
        return Err(WalletError::BrokerScripLive {
            value: held.scrip.value(),
        });
    }
    already_pending(state, Label::BrokerScripRequest)?;
    if state.account.is_none() {
        return Err(WalletError::NoAccount);
    }
    let x0 = BrokerScripRequestX0 { value, nonce };
    SavedRequest::new(
        header,
        identity.broker,
        vec![SavedPart::Sealed {
            to: identity.broker,
            inners: vec![
                SavedInner::IdProof,
                SavedInner::Signed {
                    body: x0.to_bytes(),
                },
            ],
        }],
        Expect::ObtainBrokerScrip { value, nonce },
    )
}

/// Steps 3 and 4: the broker's `BrokerScripResponse`, checked; B0 stored with its CS sealed.
pub fn accept(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::ObtainBrokerScrip { value, nonce } = pending.request.expect else {
        return Err(mismatched_expect(pending));
    };
    let (verified, opened) = sealed_reply::<BrokerScripResponseX1>(state, pending, frame, keys)?;
    let body = verified.body;
    if body.nonce != nonce {
        return Err(WalletError::NonceMismatch);
    }
    check_new_scrip(&body.scrip, pending.request.to, value)?;
    let cs = new_secret(&opened, body.scrip.id(), &body.cs_hash)?;
    let tx = pending.request.tx();
    let scrip = own_scrip(keys, body.scrip, &cs, body.cs_hash, tx)?;
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::BrokerScripObtained { scrip },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
