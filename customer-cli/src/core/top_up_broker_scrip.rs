//! 6.4 Top up BrokerScrip, the customer's side (protocol.md section 6.4; paper 6.4,
//! fig. 10).
//!
//! 1. C → B `BrokerScripTopUp`: `Sealed(to B){ IdProof(ID_C), Signed(X0 = B0, CS_B0, W_new, N) }`
//!    (with `Secret(CS_B0)`), `W_new > B0.value`.
//! 3. B → C `BrokerScripResponse`: `Sealed(to C){ Signed(X1 = B1, CS_B1, N) }`; the wallet
//!    checks the signature, `re`, `N`, that B1 is the broker's and of value `W_new`, and
//!    that CS_B1 hashes to its `cs_hash`; then B0 is deleted and B1 stored.

use shared::wire::Label;
use shared::wire::bodies::BrokerScripTopUpX0;
use shared::{Amount, Nonce, ScripId, TxId};

use super::events::WalletEvent;
use super::obtain_broker_scrip::broker_scrip_response;
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{account_linked, held_broker_scrip, request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the request to replace the held BrokerScrip by one of `new_value`.
pub fn request(
    state: &WalletState,
    tx: TxId,
    new_value: Amount,
    nonce: Nonce,
) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::BrokerScripTopUp, tx)?;
    let held = held_broker_scrip(state)?;
    if new_value <= held.scrip.value() {
        return Err(WalletError::TopUpNotLarger {
            current: held.scrip.value(),
            requested: new_value,
        });
    }
    scrip_free(state, held.scrip.id())?;
    account_linked(state)?;
    let x0 = BrokerScripTopUpX0 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
        new_value,
        nonce,
    };
    SavedRequest::new(
        header,
        identity.broker,
        vec![SavedPart::to_broker(identity.broker, &x0, Some(held))],
        Expect::TopUpBrokerScrip {
            spent: held.scrip.id(),
            new_value,
            nonce,
        },
    )
}

/// Step 3: the broker's `BrokerScripResponse`, checked as in 6.1; B0 replaced by B1.
pub fn accept(reply: &Incoming<'_>, spent: ScripId, new_value: Amount, nonce: Nonce) -> Decided {
    let (scrip, evidence) = broker_scrip_response(reply, new_value, nonce)?;
    Ok(reply.record_all(WalletEvent::BrokerScripToppedUp { spent, scrip }, evidence))
}
