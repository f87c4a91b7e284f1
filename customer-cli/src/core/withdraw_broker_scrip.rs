//! 6.6 Withdraw BrokerScrip, the customer's side (protocol.md section 6.6; paper 6.6,
//! fig. 12).
//!
//! 1. C → B `BrokerScripWithdraw`: `Sealed(to B){ IdProof(ID_C), Signed(X0 = B0, CS_B0) }`
//!    (with `Secret(CS_B0)`).
//! 3. B → C `BrokerScripWithdrawResponse`: `Signed(X1 = I, value)` in the clear; the wallet
//!    checks the signature, `re` and that the value credited is B0's, then deletes B0.

use shared::events::NewEvent;
use shared::wire::bodies::{BrokerScripWithdrawResponseX1, BrokerScripWithdrawX0};
use shared::wire::{Body, Frame, Label};
use shared::{KeyPair, TxId};

use super::events::WalletEvent;
use super::mismatched_expect;
use super::reply::{clear_reply, event_time, evidence};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
use super::{request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the request to cash in the held BrokerScrip.
pub fn request(state: &WalletState, tx: TxId) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::BrokerScripWithdraw, tx)?;
    let held = state.broker_scrip().ok_or(WalletError::NoScrip {
        producer: identity.broker,
    })?;
    scrip_free(state, held.scrip.id())?;
    if state.account.is_none() {
        return Err(WalletError::NoAccount);
    }
    let x0 = BrokerScripWithdrawX0 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
    };
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
                SavedInner::Secret {
                    scrip_id: held.scrip.id(),
                },
            ],
        }],
        Expect::WithdrawBrokerScrip {
            spent: held.scrip.id(),
            value: held.scrip.value(),
        },
    )
}

/// Step 3: the broker's `BrokerScripWithdrawResponse`, checked; B0 deleted.
pub fn accept(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    _keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::WithdrawBrokerScrip { spent, value } = pending.request.expect else {
        return Err(mismatched_expect(pending));
    };
    let verified = clear_reply::<BrokerScripWithdrawResponseX1>(state, pending, frame)?;
    if verified.body.value != value {
        return Err(WalletError::ValueMismatch {
            expected: value,
            found: verified.body.value,
        });
    }
    Ok(NewEvent::new(
        event_time(now),
        pending.request.tx(),
        WalletEvent::BrokerScripWithdrawn { spent, value },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
