//! 6.5 Top up VendorScrip, the customer's side (protocol.md section 6.5; paper 6.5,
//! fig. 11).
//!
//! 1. C → B `VendorTopUpRequest`: `Sealed(to B){ IdProof(ID_C), Signed(X0 = W_V1, W_V,
//!    UID_M, B0, CS_B0) }` (with `Secret(CS_B0)`), `Sealed(to M){ Signed(X1 = W_V1, V0,
//!    CS_V0) }` (with `Secret(CS_V0)`), `W_V1 = V0.value + W_V`. B answers `Ack { re,
//!    deadline }` once B0 is held in escrow (`VendorTopUpAcked`; the request stays open).
//! 5. M → C `VendorTopUpResponse` (a delivery): `Sealed(to C){ Signed(X4 = V1, CS_V1) }`,
//!    V1 of `W_V1` by M: V0 is replaced by V1.
//! 6. B → C `ChangeBrokerScrip` (appendix A: `outcome, change, undertaking`). OK: B0 spent,
//!    the change `B1 = B0 − W_V` stored (none when zero), and M's acceptance (its signed
//!    `X3 = accept(UID_C, W_V, W_V1, V0.scrip_id)` under its `VendorTopUpAccepted` header)
//!    verified with M's key and kept as evidence. NOK (declined, expired, released): B0 is
//!    live again, and so is V0 (M releases it on the same NOK); the top-up is over.
//!
//! Steps 5 and 6 may arrive in either order; the top-up ends when both are in, or on a
//! NOK. B0 stays committed until step 6, V0 until step 5 (or the NOK): neither is
//! presented elsewhere meanwhile.

use shared::events::{Evidence, NewEvent};
use shared::wire::bodies::{
    ChangeBrokerScripX5, VendorTopUpAcceptedX3, VendorTopUpRequestX0, VendorTopUpRequestX1,
    VendorTopUpResponseX4,
};
use shared::wire::{Body, Frame, Header, Label, Undertaking};
use shared::{Amount, KeyPair, TxId, Uid};

use super::change::{ChangeDecision, check_change};
use super::events::{Outcome, WalletEvent};
use super::mismatched_expect;
use super::reply;
use super::reply::{
    broker_delivery, check_new_scrip, delivery_from, event_time, evidence, new_secret, own_scrip,
};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
use super::{request_header, scrip_free};
use crate::error::WalletError;

/// Step 1: adds `top_up` from the BrokerScrip held to the VendorScrip held of `merchant`.
pub fn request(
    state: &WalletState,
    tx: TxId,
    merchant: Uid,
    top_up: Amount,
) -> Result<SavedRequest, WalletError> {
    let (identity, header) = request_header(state, Label::VendorTopUpRequest, tx)?;
    if top_up.is_zero() {
        return Err(WalletError::ZeroValue);
    }
    let b0 = state.broker_scrip().ok_or(WalletError::NoScrip {
        producer: identity.broker,
    })?;
    if b0.scrip.value() < top_up {
        return Err(WalletError::InsufficientScrip {
            held: b0.scrip.value(),
            needed: top_up,
        });
    }
    let v0 = state
        .scrip
        .get(&merchant)
        .filter(|_| merchant != identity.broker)
        .ok_or(WalletError::NoScrip { producer: merchant })?;
    if state.key_of(merchant).is_none() {
        return Err(WalletError::UnknownPeer { uid: merchant });
    }
    scrip_free(state, b0.scrip.id())?;
    scrip_free(state, v0.scrip.id())?;
    if state.account.is_none() {
        return Err(WalletError::NoAccount);
    }
    let new_value = v0.scrip.value().checked_add(top_up)?;
    let x0 = VendorTopUpRequestX0 {
        new_value,
        top_up,
        merchant,
        broker_scrip: b0.scrip.clone(),
        cs_hash: b0.cs_hash.clone(),
    };
    let x1 = VendorTopUpRequestX1 {
        new_value,
        vendor_scrip: v0.scrip.clone(),
        cs_hash: v0.cs_hash.clone(),
    };
    SavedRequest::new(
        header,
        identity.broker,
        vec![
            SavedPart::Sealed {
                to: identity.broker,
                inners: vec![
                    SavedInner::IdProof,
                    SavedInner::Signed {
                        body: x0.to_bytes(),
                    },
                    SavedInner::Secret {
                        scrip_id: b0.scrip.id(),
                    },
                ],
            },
            SavedPart::Sealed {
                to: merchant,
                inners: vec![
                    SavedInner::Signed {
                        body: x1.to_bytes(),
                    },
                    SavedInner::Secret {
                        scrip_id: v0.scrip.id(),
                    },
                ],
            },
        ],
        Expect::VendorTopUp {
            merchant,
            top_up,
            new_value,
            broker_spent: b0.scrip.id(),
            broker_value: b0.scrip.value(),
            vendor_spent: v0.scrip.id(),
        },
    )
}

/// Step 1's reply: B's `Ack { re, deadline }`.
pub fn accept_ack(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorTopUp { .. } = pending.request.expect else {
        return Err(mismatched_expect(pending));
    };
    reply::accept_ack(state, pending, frame, keys, now, |deadline| {
        WalletEvent::VendorTopUpAcked { deadline }
    })
}

/// Step 6: B's `ChangeBrokerScrip`, checked (see the module doc).
pub fn accept_change(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorTopUp {
        merchant,
        top_up,
        new_value,
        broker_spent,
        broker_value,
        vendor_spent,
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let (verified, opened) = broker_delivery::<ChangeBrokerScripX5>(state, frame, keys)?;
    let mut evidences = vec![evidence(&verified.evidence)];
    let body = verified.body;
    let tx = pending.request.tx();
    let (change, merchant_evidence) = check_change(
        state,
        keys,
        &opened,
        tx,
        ChangeDecision {
            outcome: &body.outcome,
            change: body.change,
            undertaking: body.undertaking.as_ref(),
            spent_value: broker_value,
            value: top_up,
            missing_undertaking: "an OK without the merchant's acceptance",
        },
        |u| check_acceptance(state, tx, merchant, (top_up, new_value, vendor_spent), u),
    )?;
    evidences.extend(merchant_evidence);
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::VendorTopUpSettled {
            spent: broker_spent,
            outcome: Outcome::from(&body.outcome),
            change,
        },
    )
    .with_evidence(evidences))
}

/// M's acceptance `X3 = accept(UID_C, W_V, W_V1, V0.scrip_id)`, signed under the header of
/// its `VendorTopUpAccepted` in this tx, verified with M's cached key; returned as evidence.
fn check_acceptance(
    state: &WalletState,
    tx: TxId,
    merchant: Uid,
    (top_up, new_value, vendor_spent): (Amount, Amount, shared::ScripId),
    undertaking: &Undertaking,
) -> Result<Evidence, WalletError> {
    let identity = state.identity.as_ref().ok_or(WalletError::NotAWallet)?;
    let key = state
        .key_of(merchant)
        .ok_or(WalletError::UnknownPeer { uid: merchant })?;
    let header = Header::new(identity.suite, Label::VendorTopUpAccepted, tx, merchant);
    let x3 = undertaking
        .verify::<VendorTopUpAcceptedX3>(&header, &key)
        .map_err(|_| WalletError::BadUndertaking)?;
    let expected = VendorTopUpAcceptedX3::Accept {
        customer: identity.me,
        top_up,
        new_value,
        scrip_id: vendor_spent,
    };
    if x3 != expected {
        return Err(WalletError::BadUndertaking);
    }
    Ok(Evidence {
        header: header.to_bytes().as_bytes().to_vec(),
        body: undertaking.body.clone(),
        sig: undertaking.sig.clone(),
        signer: merchant,
    })
}

/// Step 5: M's `VendorTopUpResponse`, checked; V0 replaced by V1.
pub fn accept_vendor_scrip(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::VendorTopUp {
        merchant,
        new_value,
        vendor_spent,
        ..
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let (verified, opened) = delivery_from::<VendorTopUpResponseX4>(state, frame, keys, merchant)?;
    let body = verified.body;
    check_new_scrip(&body.scrip, merchant, new_value)?;
    let cs = new_secret(&opened, body.scrip.id(), &body.cs_hash)?;
    let tx = pending.request.tx();
    let scrip = own_scrip(keys, body.scrip, &cs, body.cs_hash, tx)?;
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::VendorScripToppedUp {
            spent: vendor_spent,
            scrip,
        },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
