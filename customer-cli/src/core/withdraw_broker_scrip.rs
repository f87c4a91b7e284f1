//! 6.6 Withdraw BrokerScrip, the customer's side (protocol.md section 6.6; paper 6.6,
//! fig. 12).
//!
//! 1. C → B `BrokerScripWithdraw`: `Sealed(to B){ IdProof(ID_C), Signed(X0 = B0, CS_B0) }`
//!    (with `Secret(CS_B0)`).
//! 3. B → C `BrokerScripWithdrawResponse`: `Signed(X1 = I, value)` in the clear; the wallet
//!    checks the signature, `re` and that the value credited is B0's, then deletes B0.

use shared::wire::Label;
use shared::wire::bodies::{BrokerScripWithdrawResponseX1, BrokerScripWithdrawX0};
use shared::{Amount, ScripId, TxId};

use super::events::WalletEvent;
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{account_linked, held_broker_scrip, request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the request to cash in the held BrokerScrip.
pub fn request(state: &WalletState, tx: TxId) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::BrokerScripWithdraw, tx)?;
    let held = held_broker_scrip(state)?;
    scrip_free(state, held.scrip.id())?;
    account_linked(state)?;
    let x0 = BrokerScripWithdrawX0 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
    };
    SavedRequest::new(
        header,
        identity.broker,
        vec![SavedPart::to_broker(identity.broker, &x0, Some(held))],
        Expect::WithdrawBrokerScrip {
            spent: held.scrip.id(),
            value: held.scrip.value(),
        },
    )
}

/// Step 3: the broker's `BrokerScripWithdrawResponse`, checked; B0 deleted.
pub fn accept(reply: &Incoming<'_>, spent: ScripId, value: Amount) -> Decided {
    let verified = reply.clear::<BrokerScripWithdrawResponseX1>()?;
    if verified.body.value != value {
        return Err(WalletError::ValueMismatch {
            expected: value,
            found: verified.body.value,
        });
    }
    Ok(reply.record(
        WalletEvent::BrokerScripWithdrawn { spent, value },
        &verified.evidence,
    ))
}
