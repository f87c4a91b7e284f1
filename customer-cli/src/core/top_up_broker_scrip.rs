//! 6.4 Top up BrokerScrip, the customer's side (protocol.md section 6.4; paper 6.4,
//! fig. 10).
//!
//! 1. C → B `BrokerScripTopUp`: `Sealed(to B){ IdProof(ID_C), Signed(X0 = B0, CS_B0, W_new, N) }`
//!    (with `Secret(CS_B0)`), `W_new > B0.value`.
//! 3. B → C `BrokerScripResponse`: `Sealed(to C){ Signed(X1 = B1, CS_B1, N) }`; the wallet
//!    checks the signature, `re`, `N`, that B1 is the broker's and of value `W_new`, and
//!    that CS_B1 hashes to its `cs_hash`; then B0 is deleted and B1 stored.

use shared::events::NewEvent;
use shared::wire::bodies::{BrokerScripResponseX1, BrokerScripTopUpX0};
use shared::wire::{Body, Frame, Label};
use shared::{Amount, KeyPair, Nonce, TxId};

use super::events::WalletEvent;
use super::mismatched_expect;
use super::reply::{check_new_scrip, event_time, evidence, new_secret, own_scrip, sealed_reply};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
use super::{request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: the request to replace the held BrokerScrip by one of `new_value`.
pub fn request(
    state: &WalletState,
    tx: TxId,
    new_value: Amount,
    nonce: Nonce,
) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::BrokerScripTopUp, tx)?;
    let held = state.broker_scrip().ok_or(WalletError::NoScrip {
        producer: identity.broker,
    })?;
    if new_value <= held.scrip.value() {
        return Err(WalletError::TopUpNotLarger {
            current: held.scrip.value(),
            requested: new_value,
        });
    }
    scrip_free(state, held.scrip.id())?;
    if state.account.is_none() {
        return Err(WalletError::NoAccount);
    }
    let x0 = BrokerScripTopUpX0 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
        new_value,
        nonce,
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
        Expect::TopUpBrokerScrip {
            spent: held.scrip.id(),
            new_value,
            nonce,
        },
    )
}

/// Step 3: the broker's `BrokerScripResponse`, checked; B0 replaced by B1.
pub fn accept(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::TopUpBrokerScrip {
        spent,
        new_value,
        nonce,
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let (verified, opened) = sealed_reply::<BrokerScripResponseX1>(state, pending, frame, keys)?;
    let body = verified.body;
    if body.nonce != nonce {
        return Err(WalletError::NonceMismatch);
    }
    check_new_scrip(&body.scrip, pending.request.to, new_value)?;
    let cs = new_secret(&opened, body.scrip.id(), &body.cs_hash)?;
    let tx = pending.request.tx();
    let scrip = own_scrip(keys, body.scrip, &cs, body.cs_hash, tx)?;
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::BrokerScripToppedUp { spent, scrip },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
