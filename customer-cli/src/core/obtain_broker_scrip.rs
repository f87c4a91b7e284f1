//! 6.1 Obtain BrokerScrip, the customer's side (protocol.md section 6.1; paper 6.1, fig. 7).
//!
//! 1. C → B `BrokerScripRequest`: `Sealed(to B){ IdProof(ID_C), Signed(X0 = W, N) }`.
//! 3. B → C `BrokerScripResponse`: `Sealed(to C){ Signed(X1 = B0, CS_B0, N) }` (with
//!    `Secret(CS_B0)` beside the body's `cs_hash`, section 3).
//! 4. C checks the signature, `N` and the value; stores B0 and CS_B0 encrypted under its
//!    own key.

use shared::events::Evidence;
use shared::wire::Label;
use shared::wire::bodies::{BrokerScripRequestX0, BrokerScripResponseX1};
use shared::{Amount, Nonce, TxId};

use super::events::{OwnedScrip, WalletEvent};
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{account_linked, already_pending, request_header};
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
    account_linked(state)?;
    let x0 = BrokerScripRequestX0 { value, nonce };
    SavedRequest::new(
        header,
        identity.broker,
        vec![SavedPart::to_broker(identity.broker, &x0, None)],
        Expect::ObtainBrokerScrip { value, nonce },
    )
}

/// Steps 3 and 4: the broker's `BrokerScripResponse`, checked; B0 stored with its CS sealed.
pub fn accept(reply: &Incoming<'_>, value: Amount, nonce: Nonce) -> Decided {
    let (scrip, evidence) = broker_scrip_response(reply, value, nonce)?;
    Ok(reply.record_all(WalletEvent::BrokerScripObtained { scrip }, evidence))
}

/// The broker's `BrokerScripResponse` (6.1 step 3, and 6.4 step 3 alike): its `N` the
/// request's, the BrokerScrip it issues the broker's and worth `value`, its CustomerSecret
/// matching the signed hash. Returns that scrip, kept, and the body as evidence.
pub(super) fn broker_scrip_response(
    reply: &Incoming<'_>,
    value: Amount,
    nonce: Nonce,
) -> Result<(OwnedScrip, Vec<Evidence>), WalletError> {
    let (verified, opened) = reply.sealed::<BrokerScripResponseX1>()?;
    let body = verified.body;
    if body.nonce != nonce {
        return Err(WalletError::NonceMismatch);
    }
    let broker = reply.pending.request.to;
    let scrip = reply.new_scrip(&opened, (body.scrip, body.cs_hash), broker, value)?;
    Ok((scrip, vec![Evidence::from(&verified.evidence)]))
}
