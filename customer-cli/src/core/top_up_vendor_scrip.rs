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

use shared::wire::Label;
use shared::wire::bodies::{
    VendorTopUpAcceptedX3, VendorTopUpRequestX0, VendorTopUpRequestX1, VendorTopUpResponseX4,
};
use shared::{Amount, ScripId, TxId, Uid};

use super::change::{Payment, settlement};
use super::events::WalletEvent;
use super::reply::{Decided, Incoming};
use super::request::{Expect, SavedInner, SavedPart, SavedRequest};
use super::state::WalletState;
use super::{account_linked, held_broker_scrip, held_vendor_scrip, request_header, scrip_free};
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
    let b0 = held_broker_scrip(state)?;
    if b0.scrip.value() < top_up {
        return Err(WalletError::InsufficientScrip {
            held: b0.scrip.value(),
            needed: top_up,
        });
    }
    let v0 = held_vendor_scrip(state, merchant)?;
    scrip_free(state, b0.scrip.id())?;
    scrip_free(state, v0.scrip.id())?;
    account_linked(state)?;
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
            SavedPart::to_broker(identity.broker, &x0, Some(b0)),
            SavedPart::sealed(
                merchant,
                [SavedInner::signed(&x1), SavedInner::secret_of(v0)],
            ),
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

/// Step 6: B's `ChangeBrokerScrip`, checked (see the module doc) against B0 `(spent,
/// value)` and M's acceptance of `(W_V, W_V1, V0)`. (Step 1's reply, B's `Ack { re,
/// deadline }`, is `Incoming::ack`.)
pub fn accept_change(
    reply: &Incoming<'_>,
    merchant: Uid,
    (spent, spent_value): (ScripId, Amount),
    (top_up, new_value, vendor_spent): (Amount, Amount, ScripId),
) -> Decided {
    let acceptance = VendorTopUpAcceptedX3::Accept {
        customer: reply.keys.uid(),
        top_up,
        new_value,
        scrip_id: vendor_spent,
    };
    let payment = Payment {
        merchant,
        spent_value,
        value: top_up,
        undertaking: acceptance,
    };
    let settled = settlement(reply, &payment)?;
    let event = WalletEvent::VendorTopUpSettled {
        spent,
        outcome: settled.outcome,
        change: settled.change,
    };
    Ok(reply.record_all(event, settled.evidence))
}

/// Step 5: M's `VendorTopUpResponse`, checked; V0 (`spent`) replaced by V1 of `new_value`.
pub fn accept_vendor_scrip(
    reply: &Incoming<'_>,
    merchant: Uid,
    new_value: Amount,
    spent: ScripId,
) -> Decided {
    let (verified, opened) = reply.delivery::<VendorTopUpResponseX4>(merchant)?;
    let issued = (verified.body.scrip, verified.body.cs_hash);
    let scrip = reply.new_scrip(&opened, issued, merchant, new_value)?;
    Ok(reply.record(
        WalletEvent::VendorScripToppedUp { spent, scrip },
        &verified.evidence,
    ))
}
