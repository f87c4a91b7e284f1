//! 6.3 Buy item, the customer's side (protocol.md section 6.3; paper 6.3, fig. 9).
//!
//! 1. C → B `PurchaseInitiated`: `Signed(X0 = UID_M, W_P)` in the clear; B answers `Ack`.
//! 2. C → M `PurchaseRequest`: `Sealed(to M){ Signed(X1 = V0, CS_V0, OI) }` (with
//!    `Secret(CS_V0)`), `W_P = price × quantity ≤ V0.value`.
//! 4. M → C `PurchaseResponse`: `Sealed(to C){ Signed(X2 = re, V1, CS_V1, OI, receipt) }`
//!    (exactly what `merchant::core::buy_item` builds: `change` is `None` when zero, with
//!    `Secret(CS_V1)` beside it otherwise). The wallet checks `OI` is echoed unchanged, the
//!    receipt names the order and `W_P`, and `V1 = V0 − W_P` is M's; then V0 is replaced
//!    by V1 (or deleted when nothing is left).
//!
//! Both requests are saved together, in one commit, before either leaves (section 7); the
//! caller sends step 1 first and step 2 once step 1 is acknowledged (so the broker has
//! `PurchaseOpened` before M's `PurchaseCompleted`; otherwise B records it unmatched, for
//! the auditor, and no value is at stake). The two requests complete independently: V0's
//! fate is decided by M's reply alone.

use shared::events::NewEvent;
use shared::wire::bodies::{OrderInfo, PurchaseInitiatedX0, PurchaseRequestX1, PurchaseResponseX2};
use shared::wire::{Body, Frame, Label};
use shared::{Amount, KeyPair, TxId, Uid};

use super::events::WalletEvent;
use super::mismatched_expect;
use super::reply::{
    check_new_scrip, event_time, evidence, new_secret, own_scrip, sealed_reply, unsigned_ack,
};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::{Pending, WalletState};
use super::{request_header, scrip_free};
use crate::error::WalletError;

/// Steps 1 and 2: the broker's notice and the purchase of `order` from `merchant`, paid
/// with the VendorScrip held of it.
pub fn request(
    state: &WalletState,
    tx: TxId,
    merchant: Uid,
    order: OrderInfo,
) -> Result<(SavedRequest, SavedRequest), WalletError> {
    let (identity, initiated_header) = request_header(state, Label::PurchaseInitiated, tx)?;
    let (_, purchase_header) = request_header(state, Label::PurchaseRequest, tx)?;
    let held = state
        .scrip
        .get(&merchant)
        .filter(|_| merchant != identity.broker)
        .ok_or(WalletError::NoScrip { producer: merchant })?;
    if state.key_of(merchant).is_none() {
        return Err(WalletError::UnknownPeer { uid: merchant });
    }
    let paid = order.total()?;
    if paid.is_zero() {
        return Err(WalletError::ZeroValue);
    }
    if paid > held.scrip.value() {
        return Err(WalletError::InsufficientScrip {
            held: held.scrip.value(),
            needed: paid,
        });
    }
    scrip_free(state, held.scrip.id())?;
    let x0 = PurchaseInitiatedX0 {
        merchant,
        value: paid,
    };
    let initiated = SavedRequest::new(
        initiated_header,
        identity.broker,
        vec![SavedPart::Signed {
            body: x0.to_bytes(),
        }],
        Expect::PurchaseInitiated {
            merchant,
            value: paid,
        },
    )?;
    let x1 = PurchaseRequestX1 {
        scrip: held.scrip.clone(),
        cs_hash: held.cs_hash.clone(),
        order: order.clone(),
    };
    let purchase = SavedRequest::new(
        purchase_header,
        merchant,
        vec![SavedPart::Sealed {
            to: merchant,
            inners: vec![
                SavedInner::Signed {
                    body: x1.to_bytes(),
                },
                SavedInner::Secret {
                    scrip_id: held.scrip.id(),
                },
            ],
        }],
        Expect::Purchase {
            merchant,
            spent: held.scrip.id(),
            spent_value: held.scrip.value(),
            order,
        },
    )?;
    Ok((initiated, purchase))
}

/// Step 1's `Ack` from the broker: unsigned (ADR 0008), so it is no evidence; what it
/// tells the wallet is that the broker logged the announcement and the purchase may go on.
pub fn accept_initiated(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    _keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::PurchaseInitiated { .. } = pending.request.expect else {
        return Err(mismatched_expect(pending));
    };
    unsigned_ack(state, pending, frame)?;
    Ok(NewEvent::new(
        event_time(now),
        pending.request.tx(),
        WalletEvent::PurchaseAnnounced,
    ))
}

/// Step 4: M's `PurchaseResponse`, checked; V0 replaced by the change V1 (or deleted).
pub fn accept_purchase(
    state: &WalletState,
    pending: &Pending,
    frame: &Frame,
    keys: &KeyPair,
    now: u64,
) -> Result<NewEvent<WalletEvent>, WalletError> {
    let Expect::Purchase {
        merchant,
        spent,
        spent_value,
        ref order,
    } = pending.request.expect
    else {
        return Err(mismatched_expect(pending));
    };
    let (verified, opened) = sealed_reply::<PurchaseResponseX2>(state, pending, frame, keys)?;
    let body = verified.body;
    let paid = order.total()?;
    if body.order != *order || body.receipt.order_id != order.order_id || body.receipt.paid != paid
    {
        return Err(WalletError::OrderMismatch);
    }
    let change_value = spent_value.checked_sub(paid)?;
    let tx = pending.request.tx();
    let change = match body.change {
        None if change_value.is_zero() => None,
        None => {
            return Err(WalletError::ValueMismatch {
                expected: change_value,
                found: Amount::ZERO,
            });
        }
        Some(change) => {
            check_new_scrip(&change.scrip, merchant, change_value)?;
            let cs = new_secret(&opened, change.scrip.id(), &change.cs_hash)?;
            Some(own_scrip(keys, change.scrip, &cs, change.cs_hash, tx)?)
        }
    };
    Ok(NewEvent::new(
        event_time(now),
        tx,
        WalletEvent::ItemBought {
            spent,
            change,
            order_id: order.order_id,
            receipt: body.receipt,
        },
    )
    .with_evidence(vec![evidence(&verified.evidence)]))
}
