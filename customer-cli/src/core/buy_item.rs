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

use shared::wire::Label;
use shared::wire::bodies::{OrderInfo, PurchaseInitiatedX0, PurchaseRequestX1, PurchaseResponseX2};
use shared::{Amount, ScripId, TxId, Uid};

use super::events::WalletEvent;
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{held_vendor_scrip, request_header, scrip_free};
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
    let held = held_vendor_scrip(state, merchant)?;
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
        vec![SavedPart::signed(&x0)],
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
        vec![SavedPart::sealed(
            merchant,
            [SavedInner::signed(&x1), SavedInner::secret_of(held)],
        )],
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
pub fn accept_initiated(reply: &Incoming<'_>) -> Decided {
    reply.unsigned_ack()?;
    Ok(reply.record_all(WalletEvent::PurchaseAnnounced, Vec::new()))
}

/// Step 4: M's `PurchaseResponse`, checked; V0 replaced by the change V1 (or deleted).
pub fn accept_purchase(
    reply: &Incoming<'_>,
    merchant: Uid,
    spent: ScripId,
    spent_value: Amount,
    order: &OrderInfo,
) -> Decided {
    let (verified, opened) = reply.sealed::<PurchaseResponseX2>()?;
    let body = verified.body;
    let paid = order.total()?;
    if body.order != *order || body.receipt.order_id != order.order_id || body.receipt.paid != paid
    {
        return Err(WalletError::OrderMismatch);
    }
    let change_value = spent_value.checked_sub(paid)?;
    let change = reply.change(&opened, body.change, merchant, change_value)?;
    let event = WalletEvent::ItemBought {
        spent,
        change,
        order_id: order.order_id,
        receipt: body.receipt,
    };
    Ok(reply.record(event, &verified.evidence))
}
